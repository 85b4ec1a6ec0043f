/*
 * sts_match: is an MX host allowed by an MTA-STS policy (RFC 8461 4.1)?
 * Pure: no I/O, no logging, no globals, no allocation.
 */
#include <string.h>

#include "sts_int.h"

/* a[0..n) equals the lower-case b[0..n) in ASCII case-insensitively? */
static int same_name(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (sts_lower(a[i]) != b[i])
			return 0;
	return 1;
}

/*
 * RFC 8461 4.1: matching follows RFC 6125, "with the restriction that the
 * wildcard character '*' may only be used to match the entire left-most
 * label": "*.example.com" matches "mail.example.com" but not "example.com"
 * or "foo.bar.example.com".  So the host's first label is dropped (it is
 * never empty: the host passed sts_name_valid()) and the rest compared
 * whole.  Patterns were lowered and checked by sts_policy_parse().
 */
static int pattern_match(const char *pat, const char *host, size_t n)
{
	const char *dot;
	size_t plen = strlen(pat);

	if (pat[0] != '*')
		return plen == n && same_name(host, pat, n);
	dot = memchr(host, '.', n);
	if (!dot)
		return 0;
	dot++;
	n -= (size_t)(dot - host);
	return plen - 2 == n && same_name(dot, pat + 2, n);
}

/*
 * The host comes from DNS (an MX record's target), so it is checked like
 * a pattern before any comparison: a name that is no host name (a "*"
 * label, empty labels, odd octets) matches nothing, which in enforce mode
 * means the mail is not sent there.
 */
int sts_mx_match(const struct sts_policy *p, const char *host)
{
	size_t n = strlen(host);

	RL_REQUIRE(p->nmx <= STS_MX_MAX);
	if (n > 0 && host[n - 1] == '.')
		n--;
	if (!sts_name_valid(host, n))
		return 0;
	for (size_t i = 0; i < p->nmx; i++)
		if (pattern_match(p->mx[i], host, n))
			return 1;
	return 0;
}
