/*
 * fuzz_tlsrpt_txt: libFuzzer target for the TLS-RPT record parser
 * (sts_tlsrpt_parse(), policy/sts_tlsrpt_parse.c).  The input becomes an
 * RRset as fuzz_txt.h describes.
 *
 * Besides memory errors, it aborts when a promise of sts.h breaks: the
 * answer agrees with the harness's own reading of the RRset (RL_ENOTFOUND
 * exactly when no well-formed record carries the tag), a parsed record
 * keeps 1 to STS_RUA_MAX URIs of each scheme, each a mailto: or https: URI
 * of visible ASCII without ",", "!" or ";" and at most STS_URI_MAX long
 * that the record holds, a refusal names its reason and keeps no URI, and
 * the URIs written out again as one canonical record parse to the same.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_txt.h"
#include "sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* uri begins with "scheme:" in any case? */
static int has_scheme(const char *uri, const char *scheme)
{
	size_t n = strlen(scheme);

	for (size_t i = 0; i < n; i++) {
		char c = uri[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != scheme[i])
			return 0;
	}
	return uri[n] == ':';
}

static void check_uri(const struct fuzz_txt *t, size_t which, const char *uri, const char *scheme)
{
	size_t n;

	RL_REQUIRE(memchr(uri, '\0', STS_URI_MAX + 1) != NULL);
	n = strlen(uri);
	RL_REQUIRE(n > strlen(scheme) + 1 && has_scheme(uri, scheme));
	if (strcmp(scheme, "https") == 0)
		RL_REQUIRE(n > 8 && uri[6] == '/' && uri[7] == '/');
	for (size_t i = 0; i < n; i++)
		RL_REQUIRE(uri[i] > 0x20 && uri[i] < 0x7f && !strchr(",!;", uri[i]));
	RL_REQUIRE(fuzz_txt_contains(t, which, uri, n));
}

/* "v=TLSRPTv1; rua=" and the URIs, mailto: first; it must parse to the same. */
static void check_render(const struct sts_tlsrpt *r)
{
	static char text[2 * STS_RUA_MAX * (STS_URI_MAX + 1) + 32];
	static unsigned char wire[sizeof(text) + sizeof(text) / 255 + 8];
	static struct sts_tlsrpt q;
	struct rl_why why = {0, NULL, 0};
	struct sts_txt rr;
	size_t pos = (size_t)snprintf(text, sizeof(text), "v=TLSRPTv1; rua=");

	for (size_t i = 0; i < r->nmailto; i++)
		pos += (size_t)snprintf(text + pos, sizeof(text) - pos, "%s%s", i ? "," : "",
					r->mailto[i]);
	for (size_t i = 0; i < r->nhttps; i++)
		pos += (size_t)snprintf(text + pos, sizeof(text) - pos, "%s%s",
					i || r->nmailto ? " , " : "", r->https[i]);
	RL_REQUIRE(pos < sizeof(text));
	rr.rdata = wire;
	rr.len = fuzz_txt_put(wire, text, pos);
	RL_REQUIRE(sts_tlsrpt_parse(&rr, 1, &q, &why) == 0);
	RL_REQUIRE(q.nmailto == r->nmailto && q.nhttps == r->nhttps);
	for (size_t i = 0; i < r->nmailto; i++)
		RL_REQUIRE(strcmp(q.mailto[i], r->mailto[i]) == 0);
	for (size_t i = 0; i < r->nhttps; i++)
		RL_REQUIRE(strcmp(q.https[i], r->https[i]) == 0);
}

static void check_parsed(const struct fuzz_txt *t, const struct sts_tlsrpt *r)
{
	size_t tagged = 0, which = 0;

	for (size_t i = 0; i < t->n; i++) {
		RL_REQUIRE(t->valid[i]);
		if (fuzz_txt_tagged(t, i, "v=TLSRPTv1")) {
			tagged++;
			which = i;
		}
	}
	RL_REQUIRE(tagged == 1);
	RL_REQUIRE(r->nmailto <= STS_RUA_MAX && r->nhttps <= STS_RUA_MAX);
	RL_REQUIRE(r->nmailto + r->nhttps >= 1);
	RL_REQUIRE(fuzz_txt_contains(t, which, "rua=", 4));
	for (size_t i = 0; i < r->nmailto; i++)
		check_uri(t, which, r->mailto[i], "mailto");
	for (size_t i = 0; i < r->nhttps; i++)
		check_uri(t, which, r->https[i], "https");
	check_render(r);
}

static void check_refused(const struct fuzz_txt *t, int rc, const struct sts_tlsrpt *r,
			  const struct rl_why *why)
{
	size_t tagged = 0, valid = 0;

	RL_REQUIRE(rc == RL_EPARSE || rc == RL_ENOTFOUND || rc == RL_ETOOBIG);
	RL_REQUIRE(why->code == rc && why->reason != NULL);
	RL_REQUIRE(r->nmailto == 0 && r->nhttps == 0);
	for (size_t i = 0; i < t->n; i++) {
		valid += (size_t)t->valid[i];
		tagged += (size_t)fuzz_txt_tagged(t, i, "v=TLSRPTv1");
	}
	if (rc == RL_ENOTFOUND)
		RL_REQUIRE(valid == t->n && tagged == 0);
	else
		RL_REQUIRE(valid < t->n || tagged >= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sts_tlsrpt r;
	struct fuzz_txt t;
	struct rl_why why = {0, NULL, 0};
	int rc;

	fuzz_txt_split(data, size, &t);
	memset(&r, 0x5a, sizeof(r));
	rc = sts_tlsrpt_parse(t.rr, t.n, &r, &why);
	if (rc == 0)
		check_parsed(&t, &r);
	else
		check_refused(&t, rc, &r, &why);
	fuzz_txt_free(&t);
	return 0;
}
