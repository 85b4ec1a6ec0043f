/*
 * fuzz_pol: libFuzzer target for the policy file parser (pol_table_parse())
 * and the protocol-list parser it shares with the configuration.
 *
 * Besides memory errors, it aborts when a table that parsed breaks a
 * promise of pol.h (every entry complete and findable by lookup), or when
 * a refused file comes without a "FILE:LINE: message".
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry(const struct pol_table *t, const struct pol_entry *e)
{
	char sub[300];
	const struct pol_entry *got;

	RL_REQUIRE(e->domain && e->domain[0] && e->line >= 1);
	RL_REQUIRE(e->level >= 0 && e->level < POL_LEVEL_COUNT);
	RL_REQUIRE(e->priority_suffix != NULL);
	RL_REQUIRE((e->level == POL_LEVEL_FINGERPRINT) == (e->ndigests > 0));
	RL_REQUIRE((e->level == POL_LEVEL_VERIFY || e->level == POL_LEVEL_SECURE) ==
		   (e->nmatch > 0));
	RL_REQUIRE(e->ndigests <= POL_MATCH_MAX && e->nmatch <= POL_MATCH_MAX);
	for (size_t i = 0; i < e->ndigests; i++)
		RL_REQUIRE(e->digests[i].len == 20 || e->digests[i].len == 32);
	RL_REQUIRE((e->protocols & ~POL_TLS_ALL) == 0 && !e->protocols == !e->protocols_text);
	RL_REQUIRE(pol_entry_equal(e, e));
	/* An exact key finds itself; ".x" finds itself for "a.x" unless a closer one exists. */
	if (e->domain[0] != '.') {
		RL_REQUIRE(pol_table_lookup(t, e->domain) == e);
		return;
	}
	snprintf(sub, sizeof(sub), "a%s", e->domain);
	got = pol_table_lookup(t, sub);
	RL_REQUIRE(got != NULL);
	RL_REQUIRE(got == e || strlen(got->domain) >= strlen(e->domain));
}

static void check_protocols(const char *s, size_t n)
{
	struct rl_why why = {0, NULL, 0};
	unsigned bits = 0;
	char msg[200], names[64];

	if (pol_protocols_parse(s, n, &bits, &why) == 0) {
		RL_REQUIRE(bits != 0 && (bits & ~POL_TLS_ALL) == 0);
		pol_protocols_names(bits, names, sizeof(names));
		RL_REQUIRE(names[0] != '\0');
		return;
	}
	RL_REQUIRE(why.code == RL_EPARSE && why.reason && why.offset <= n);
	pol_protocols_error(s, n, &why, msg, sizeof(msg));
	RL_REQUIRE(msg[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pol_errors errs;
	struct pol_table *t = NULL;
	const char *s = (const char *)data;
	int rc;

	check_protocols(s, size < 256 ? size : 256);
	rc = pol_table_parse("f", s, size, &t, &errs);

	/* Warnings (ignored [host] entries) come in line order, whatever the outcome. */
	RL_REQUIRE(errs.nwarn <= POL_WARNINGS_MAX && errs.wtotal >= errs.nwarn);
	for (size_t i = 0; i < errs.nwarn; i++) {
		RL_REQUIRE(strncmp(errs.w[i].msg, "f:", 2) == 0);
		RL_REQUIRE(strstr(errs.w[i].msg, ": warning: ") != NULL);
		RL_REQUIRE(i == 0 || errs.w[i - 1].line < errs.w[i].line);
	}
	if (rc != 0) {
		RL_REQUIRE(t == NULL && errs.count >= 1 && errs.total >= errs.count);
		for (size_t i = 0; i < errs.count; i++) {
			RL_REQUIRE(strncmp(errs.e[i].msg, "f:", 2) == 0);
			RL_REQUIRE(i == 0 || errs.e[i - 1].line <= errs.e[i].line);
		}
		return 0;
	}
	RL_REQUIRE(errs.count == 0);
	for (size_t i = 0; i < pol_table_count(t); i++)
		check_entry(t, pol_table_entry(t, i));
	pol_table_free(t);
	return 0;
}
