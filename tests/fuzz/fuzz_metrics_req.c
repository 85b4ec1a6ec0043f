/* Fuzz the metrics endpoint's request head parser, fed whole and byte by byte as it arrives. */
#include <stdint.h>
#include <string.h>

#include "metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *p, size_t n)
{
	struct metrics_req r;
	struct rl_why why = {0};
	int rc = metrics_req_parse(p, n, &r, &why);

	RL_REQUIRE(rc == 0 || rc == 1);
	if (rc == 0) {
		RL_REQUIRE(n < METRICS_REQ_MAX);
		return;
	}
	RL_REQUIRE(r.status == 200 || r.status == 400 || r.status == 404 || r.status == 405 ||
		   r.status == 431 || r.status == 505);
	if (r.status == 200 || r.status == 404 || r.status == 405) {
		RL_REQUIRE(r.used > 0 && r.used <= n && r.used <= METRICS_REQ_MAX);
		RL_REQUIRE(r.method == p && r.methodlen > 0 && r.methodlen < r.used);
		RL_REQUIRE(r.path > p && r.path + r.pathlen <= p + r.used && r.path[0] == '/');
	}
	if (r.status == 200)
		RL_REQUIRE(r.pathlen == 8 && memcmp(r.path, "/metrics", 8) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;

	check(p, size);
	/* As the server sees it: each prefix until the first complete answer. */
	for (size_t n = 0; n < size && n < 512; n++) {
		struct metrics_req r;

		if (metrics_req_parse(p, n, &r, NULL) == 1)
			break;
		check(p, n);
	}
	return 0;
}
