/* Fuzz the RFC 5322 header walker and address-list extractor. */
#include <stdint.h>
#include <string.h>

#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_addr(void *arg, const char *addr, size_t len)
{
	RL_REQUIRE(len > 0 && len < 1024 && addr);
	(*(size_t *)arg)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t hend = msg_header_end(p, size), pos = 0, n = 0;
	struct msg_field f;

	RL_REQUIRE(hend <= size);
	/* Each counted field starts a line, so there are fewer than lines. */
	RL_REQUIRE(msg_received_count(p, size) <= size / 9);
	while (msg_header_next(p, size, &pos, &f) == 1) {
		RL_REQUIRE(f.start < f.end && f.end <= size && pos == f.end);
		RL_REQUIRE(f.value + f.valuelen == p + f.end);
		if (msg_addr_list(f.value, f.valuelen, count_addr, &n) != 0)
			break;
	}
	return 0;
}
