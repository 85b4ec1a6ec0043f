/*
 * fuzz_sts_policy: libFuzzer target for the MTA-STS policy body parser
 * (sts_policy_parse(), policy/sts_parse.c) and the mx matcher
 * (sts_mx_match(), policy/sts_match.c).
 *
 * Besides memory errors, it aborts when a promise of sts.h breaks:
 * - a refusal names its reason, points inside the body and leaves an
 *   empty policy; a body over STS_POLICY_MAX is RL_ETOOBIG;
 * - a parsed policy is within its bounds (mode, max_age, at most
 *   STS_MX_MAX patterns, at least one unless mode is none), each pattern
 *   is a lower-case host name or "*." and one, matches what RFC 8461 4.1
 *   says it matches (itself in any case and with a trailing dot; for a
 *   wildcard one more label, never the bare domain nor two more labels),
 *   and the policy written out again in canonical form parses to the same;
 * - the input's first line as an MX host: matching ignores case, and a
 *   match is backed by the harness's own comparison with some pattern.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static int name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* What one pattern must and must not match, checked on a policy of that pattern alone. */
static void check_pattern(const char *pat)
{
	static struct sts_policy one;
	char host[STS_NAME_MAX + 8];
	size_t n = strlen(pat);
	const char *dom = pat;

	RL_REQUIRE(n >= 1 && n <= STS_NAME_MAX);
	if (pat[0] == '*') {
		RL_REQUIRE(n >= 3 && pat[1] == '.');
		dom = pat + 2;
	}
	for (const char *c = dom; *c; c++)
		RL_REQUIRE(name_char(*c));
	RL_REQUIRE(dom[0] != '.' && dom[0] != '-' && pat[n - 1] != '.' && !strstr(dom, ".."));
	memset(&one, 0, sizeof(one));
	one.mode = STS_MODE_ENFORCE;
	one.nmx = 1;
	memcpy(one.mx[0], pat, n + 1);
	if (pat[0] != '*') {
		RL_REQUIRE(sts_mx_match(&one, pat) == 1);
		for (size_t i = 0; i <= n; i++)
			host[i] = upper(pat[i]);
		RL_REQUIRE(sts_mx_match(&one, host) == 1);
		snprintf(host, sizeof(host), "%s.", pat);
		RL_REQUIRE(sts_mx_match(&one, host) == 1);
		snprintf(host, sizeof(host), "x%s", pat);
		RL_REQUIRE(sts_mx_match(&one, host) == 0);
		return;
	}
	RL_REQUIRE(sts_mx_match(&one, pat) == 0);
	RL_REQUIRE(sts_mx_match(&one, dom) == 0);
	snprintf(host, sizeof(host), "x.y.%s", dom);
	RL_REQUIRE(sts_mx_match(&one, host) == 0);
	snprintf(host, sizeof(host), "Mx.%s.", dom);
	RL_REQUIRE(sts_mx_match(&one, host) == (n + 1 <= STS_NAME_MAX));
}

/* Canonical text: the four keys, CRLF; it must parse to the same policy. */
static void check_render(const struct sts_policy *p)
{
	static char text[STS_MX_MAX * (STS_NAME_MAX + 8) + 128];
	static struct sts_policy q;
	struct rl_why why = {0, NULL, 0};
	size_t pos;

	pos = (size_t)snprintf(text, sizeof(text), "version: STSv1\r\nmode: %s\r\nmax_age: %u\r\n",
			       sts_mode_name(p->mode), (unsigned)p->max_age);
	for (size_t i = 0; i < p->nmx; i++)
		pos += (size_t)snprintf(text + pos, sizeof(text) - pos, "mx: %s\r\n", p->mx[i]);
	RL_REQUIRE(pos < sizeof(text));
	RL_REQUIRE(sts_policy_parse(text, pos, &q, &why) == 0);
	RL_REQUIRE(q.mode == p->mode && q.max_age == p->max_age && q.nmx == p->nmx);
	for (size_t i = 0; i < p->nmx; i++)
		RL_REQUIRE(strcmp(q.mx[i], p->mx[i]) == 0);
}

static void check_policy(const struct sts_policy *p)
{
	RL_REQUIRE(p->mode == STS_MODE_NONE || p->mode == STS_MODE_TESTING ||
		   p->mode == STS_MODE_ENFORCE);
	RL_REQUIRE(p->max_age <= STS_MAX_AGE_MAX);
	RL_REQUIRE(p->nmx <= STS_MX_MAX);
	RL_REQUIRE(p->mode == STS_MODE_NONE || p->nmx >= 1);
	for (size_t i = 0; i < p->nmx; i++) {
		RL_REQUIRE(memchr(p->mx[i], '\0', sizeof(p->mx[i])) != NULL);
		check_pattern(p->mx[i]);
	}
	check_render(p);
}

/* Case-insensitive a == b[0..n). */
static int same(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++)
		if (lower(a[i]) != lower(b[i]))
			return 0;
	return 1;
}

/* The harness's own reading of RFC 8461 4.1 for a host that matched. */
static int backed(const struct sts_policy *p, const char *host)
{
	size_t n = strlen(host);
	const char *dot;

	if (n > 0 && host[n - 1] == '.')
		n--;
	for (size_t i = 0; i < n; i++)
		if (!name_char(lower(host[i])))
			return 0;
	dot = memchr(host, '.', n);
	for (size_t i = 0; i < p->nmx; i++) {
		const char *pat = p->mx[i];

		if (pat[0] != '*' && same(host, n, pat, strlen(pat)))
			return 1;
		if (pat[0] == '*' && dot && dot > host &&
		    same(dot + 1, n - (size_t)(dot + 1 - host), pat + 2, strlen(pat + 2)))
			return 1;
	}
	return 0;
}

static void check_host(const struct sts_policy *p, const uint8_t *data, size_t size)
{
	char host[300], up[300];
	size_t n = 0;
	int m;

	while (n < size && n < sizeof(host) - 1 && data[n] != '\n' && data[n] != '\0') {
		host[n] = (char)data[n];
		up[n] = upper(host[n]);
		n++;
	}
	host[n] = up[n] = '\0';
	m = sts_mx_match(p, host);
	RL_REQUIRE(m == 0 || m == 1);
	RL_REQUIRE(sts_mx_match(p, up) == m);
	if (m)
		RL_REQUIRE(backed(p, host));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sts_policy p, fixed;
	static int have_fixed;
	static const char fixed_body[] = "version: STSv1\nmode: enforce\nmax_age: 86400\n"
					 "mx: mail.example.com\nmx: *.example.net\n";
	struct rl_why why = {0, NULL, 0};
	int rc;

	if (!have_fixed) {
		RL_REQUIRE(sts_policy_parse(fixed_body, sizeof(fixed_body) - 1, &fixed, NULL) == 0);
		have_fixed = 1;
	}
	memset(&p, 0x5a, sizeof(p));
	rc = sts_policy_parse((const char *)data, size, &p, &why);
	if (size > STS_POLICY_MAX)
		RL_REQUIRE(rc == RL_ETOOBIG);
	if (rc == 0) {
		check_policy(&p);
		check_host(&p, data, size);
	} else {
		RL_REQUIRE(rc == RL_EPARSE || rc == RL_EVERSION || rc == RL_ETOOBIG);
		RL_REQUIRE(why.code == rc && why.reason != NULL);
		RL_REQUIRE(why.offset <= size ||
			   (rc == RL_ETOOBIG && why.offset == STS_POLICY_MAX));
		RL_REQUIRE(p.nmx == 0 && p.max_age == 0 && p.mode == STS_MODE_NONE);
	}
	check_host(&fixed, data, size);
	return 0;
}
