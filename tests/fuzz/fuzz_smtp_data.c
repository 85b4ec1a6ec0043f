/*
 * Fuzz the DATA decoder: fed in two arbitrary pieces it must give the same
 * result as fed whole, never end on anything but CRLF.CRLF, and never emit
 * a bare CR or LF.
 */
#include <stdint.h>
#include <string.h>

#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run(const char *p, size_t n, size_t split, struct rl_buf *out, struct smtp_data *d,
	       size_t *used)
{
	size_t u1 = 0, u2 = 0;
	int rc;

	smtp_data_init(d);
	rc = smtp_data_feed(d, p, split, out, &u1);
	if (rc == 0 && !d->done && u1 == split)
		rc = smtp_data_feed(d, p + split, n - split, out, &u2);
	*used = u1 + u2;
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rl_buf a, b;
	struct smtp_data da, db;
	size_t ua, ub, split = size ? data[0] % (size + 1) : 0;
	int ra, rb;

	rl_buf_init(&a, 4096);
	rl_buf_init(&b, 4096);
	ra = run((const char *)data, size, size, &a, &da, &ua);
	rb = run((const char *)data, size, split, &b, &db, &ub);
	RL_REQUIRE(ra == rb && ua == ub && da.done == db.done && a.len == b.len);
	RL_REQUIRE(a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
	if (da.done)
		RL_REQUIRE(ua >= 5 || (ua >= 3 && memcmp(data, ".\r\n", 3) == 0));
	if (da.done && ua >= 5)
		RL_REQUIRE(memcmp(data + ua - 5, "\r\n.\r\n", 5) == 0);
	for (size_t i = 0; i < a.len; i++) {
		if (a.data[i] == '\n')
			RL_REQUIRE(i > 0 && a.data[i - 1] == '\r');
		if (a.data[i] == '\r')
			RL_REQUIRE(i + 1 < a.len && a.data[i + 1] == '\n');
	}
	rl_buf_fini(&a);
	rl_buf_fini(&b);
	return 0;
}
