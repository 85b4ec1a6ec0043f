/*
 * Fuzz the RFC 5322 header walker and address-list extractor, the local
 * submission reader (msg_body_*) and envelope address check that sendmail
 * runs on whatever a local user pipes in.
 */
#include <stdint.h>
#include <string.h>

#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every address the -t walk finds goes through the envelope check. */
static int check_addr(void *arg, const char *addr, size_t len)
{
	struct smtp_path p;

	RL_REQUIRE(len > 0 && len < 1024 && addr);
	(*(size_t *)arg)++;
	if (msg_envelope_addr(addr, len, "h.test", 0, &p, NULL) == 0) {
		RL_REQUIRE(p.len == strlen(p.addr) && p.len < SMTP_PATH_MAX && strchr(p.addr, '@'));
		for (size_t i = 0; i < p.len; i++)
			RL_REQUIRE((unsigned char)p.addr[i] >= 32 && p.addr[i] != 127);
	}
	return 0;
}

/* The reader's output has CRLF line ends only and keeps its limits. */
static void fuzz_body(const char *p, size_t size, int dot_ends, size_t chunk)
{
	struct rl_buf out;
	struct msg_body b;
	int rc = 0;

	rl_buf_init(&out, 1 << 20);
	msg_body_init(&b, 4096, dot_ends);
	for (size_t off = 0; off < size && rc == 0 && !b.done; off += chunk)
		rc = msg_body_feed(&b, p + off, size - off < chunk ? size - off : chunk, &out);
	if (rc == 0)
		rc = msg_body_finish(&b, &out);
	RL_REQUIRE(out.len <= 4096);
	if (rc == 0 && out.len) {
		msg_body_clean(out.data, out.len);
		RL_REQUIRE(out.data[out.len - 1] == '\n');
		for (size_t i = 0; i < out.len; i++) {
			RL_REQUIRE(out.data[i] != '\0');
			RL_REQUIRE(out.data[i] != '\r' || out.data[i + 1] == '\n');
			RL_REQUIRE(out.data[i] != '\n' || (i > 0 && out.data[i - 1] == '\r'));
		}
	}
	rl_buf_fini(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t hend = msg_header_end(p, size), pos = 0, n = 0;
	struct msg_field f;
	struct smtp_path path;

	RL_REQUIRE(hend <= size);
	/* Each counted field starts a line, so there are fewer than lines. */
	RL_REQUIRE(msg_received_count(p, size) <= size / 9);
	while (msg_header_next(p, size, &pos, &f) == 1) {
		RL_REQUIRE(f.start < f.end && f.end <= size && pos == f.end);
		RL_REQUIRE(f.value + f.valuelen == p + f.end);
		if (msg_addr_list(f.value, f.valuelen, check_addr, &n) != 0)
			break;
	}
	if (size < 400 && msg_envelope_addr(p, size, "h.test", 1, &path, NULL) == 0)
		RL_REQUIRE(path.len == strlen(path.addr));
	fuzz_body(p, size, 1, size ? size : 1);
	fuzz_body(p, size, 0, 7);
	return 0;
}
