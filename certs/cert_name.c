/*
 * cert_name: the server-name matcher (RFC 6125 section 6.4, Postfix
 * tls_verify.c match_servername) and the resolution of a policy's match=
 * keywords into patterns.  Pure: no I/O, no allocation, no GnuTLS.
 */
#include <stdbool.h>
#include <string.h>

#include "cert.h"

enum name_kind {
	NAME_CERT,    /* a name presented in a certificate: may start with "*." */
	NAME_PATTERN, /* an operator's pattern: may start with "." */
};

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Letters, digits, '-' and '_' (seen in real certificates).  Non-ASCII
 * bytes are refused: internationalised names are compared as A-labels. */
static bool label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Does s[0..len) consist of labels of 1..63 label characters, at least
 * min_labels of them? */
static bool labels_ok(const char *s, size_t len, size_t min_labels)
{
	size_t labels = 0, run = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (run == 0 || run > 63)
				return false;
			labels++;
			run = 0;
		} else if (label_char(s[i])) {
			run++;
		} else {
			return false;
		}
	}
	return labels >= min_labels;
}

/*
 * Copy in to out (CERT_PATTERN_SIZE bytes) in lower case without one
 * trailing dot, and check it.  A certificate's "*." wildcard must cover one
 * whole label and be followed by at least two labels, so "*.com" is refused
 * (RFC 6125 6.4.3 leaves that to the client; browsers and GnuTLS refuse it).
 * Returns the length, or 0 when invalid.
 */
static size_t name_normalize(const char *in, enum name_kind kind, char *out)
{
	size_t len = strlen(in), skip = 0, min_labels = 1;
	size_t max = kind == NAME_PATTERN && in[0] == '.' ? CERT_NAME_MAX + 1 : CERT_NAME_MAX;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > max)
		return 0;
	for (size_t i = 0; i < len; i++)
		out[i] = lower(in[i]);
	out[len] = '\0';
	if (kind == NAME_CERT && len >= 2 && out[0] == '*' && out[1] == '.') {
		skip = 2;
		min_labels = 2;
	} else if (kind == NAME_PATTERN && out[0] == '.') {
		skip = 1;
	}
	if (skip >= len || !labels_ok(out + skip, len - skip, min_labels))
		return 0;
	return len;
}

int cert_name_match(const char *certname, const char *pattern)
{
	char c[CERT_PATTERN_SIZE], p[CERT_PATTERN_SIZE];
	size_t cl = name_normalize(certname, NAME_CERT, c);
	size_t pl = name_normalize(pattern, NAME_PATTERN, p);
	const char *parent;

	if (cl == 0 || pl == 0)
		return 0;
	/*
	 * Suffix pattern ".example.com": the certificate name must end in it
	 * after at least one more label.  A wildcard name "*.example.com" is
	 * such a name, so it matches too (Postfix does the same).
	 */
	if (p[0] == '.')
		return cl > pl && memcmp(c + cl - pl, p, pl) == 0;
	if (c[0] != '*')
		return strcmp(c, p) == 0;
	/* "*.example.com" stands for exactly one left-most label. */
	parent = strchr(p, '.');
	return parent != NULL && strcmp(parent, c + 1) == 0;
}

/* Append one pattern: prefix ("" or ".") + name, validated and normalised. */
static int add_pattern(const char *prefix, const char *name, struct cert_pattern *out, size_t max,
		       size_t *nout, size_t index, struct rl_why *why)
{
	char joined[CERT_PATTERN_SIZE + 1];
	size_t plen = strlen(prefix);

	if (name == NULL || name[0] == '\0')
		return rl_fail(why, RL_EPARSE, "match keyword has no value here", index);
	if (*nout >= max)
		return rl_fail(why, RL_ETOOBIG, "too many match patterns", index);
	if (strlen(name) > CERT_NAME_MAX + 1)
		return rl_fail(why, RL_EPARSE, "match name too long", index);
	memcpy(joined, prefix, plen);
	memcpy(joined + plen, name, strlen(name) + 1);
	if (plen > 0 && name[0] == '.')
		return rl_fail(why, RL_EPARSE, "invalid match name", index);
	if (name_normalize(joined, NAME_PATTERN, out[*nout].name) == 0)
		return rl_fail(why, RL_EPARSE,
			       "invalid match name (ASCII host name or .domain; "
			       "write internationalised names as xn-- A-labels)",
			       index);
	(*nout)++;
	return 0;
}

static bool keyword(const char *tok, const char *kw)
{
	size_t i;

	for (i = 0; tok[i] && kw[i]; i++)
		if (lower(tok[i]) != kw[i])
			return false;
	return tok[i] == kw[i];
}

int cert_match_resolve(const char *const *tokens, size_t n, const char *hostname,
		       const char *nexthop, struct cert_pattern *out, size_t max, size_t *nout,
		       struct rl_why *why)
{
	int rc = 0;

	*nout = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *t = tokens[i];

		if (keyword(t, "hostname"))
			rc = add_pattern("", hostname, out, max, nout, i, why);
		else if (keyword(t, "nexthop"))
			rc = add_pattern("", nexthop, out, max, nout, i, why);
		else if (keyword(t, "dot-nexthop"))
			rc = add_pattern(".", nexthop, out, max, nout, i, why);
		else
			rc = add_pattern("", t, out, max, nout, i, why);
	}
	if (rc < 0)
		*nout = 0;
	return rc;
}
