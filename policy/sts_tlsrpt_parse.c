/*
 * sts_tlsrpt_parse: the TLS-RPT record of "_smtp._tls.DOMAIN" (RFC 8460
 * section 3): where a domain wants its daily TLS reports.  Pure: no I/O,
 * no logging, no globals, no allocation.
 */
#include <string.h>

#include "sts_int.h"

static int is_alpha(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static int is_hex(int ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F') || (ch >= 'a' && ch <= 'f');
}

/*
 * RFC 3986 URI characters (unreserved, gen-delims, sub-delims, "%")
 * without the three RFC 8460 3 says MUST be percent-encoded in a rua:
 * "," separates URIs, ";" separates fields, and "!" is DMARC's size
 * suffix, which TLS-RPT does not have.
 */
static int is_uri_char(int ch)
{
	return is_alpha(ch) || (ch >= '0' && ch <= '9') ||
	       (ch > 0 && strchr("-._~:/?#[]@$&'()*+=%", ch) != NULL);
}

/* Read one URI into uri[STS_URI_MAX + 1]; *n is its length. */
static int read_uri(struct sts_cur *c, char *uri, size_t *n, struct rl_why *why)
{
	int ch;

	*n = 0;
	while ((ch = sts_cur_peek(c)) != -1 && ch != ',' && ch != ';' && ch != ' ' && ch != '\t') {
		if (ch == '!')
			return rl_fail(why, RL_EPARSE, "'!' in a rua URI must be percent-encoded",
				       c->off);
		if (!is_uri_char(ch))
			return rl_fail(why, RL_EPARSE, "character not allowed in a rua URI",
				       c->off);
		if (*n == STS_URI_MAX)
			return rl_fail(why, RL_ETOOBIG, "rua URI longer than 512 characters",
				       c->off);
		uri[(*n)++] = (char)ch;
		sts_cur_skip(c);
	}
	uri[*n] = '\0';
	if (*n == 0)
		return rl_fail(why, RL_EPARSE, "empty rua URI", c->off);
	for (size_t i = 0; i < *n; i++)
		if (uri[i] == '%' && (i + 2 >= *n || !is_hex(uri[i + 1]) || !is_hex(uri[i + 2])))
			return rl_fail(why, RL_EPARSE,
				       "'%' in a rua URI not followed by two hex digits",
				       c->off - *n + i);
	return 0;
}

/* uri begins with scheme followed by ':', ignoring case (RFC 3986 3.1)? */
static int scheme_is(const char *uri, const char *scheme)
{
	size_t n = strlen(scheme);

	for (size_t i = 0; i < n; i++)
		if (sts_lower(uri[i]) != scheme[i])
			return 0;
	return uri[n] == ':';
}

/*
 * Sort one URI: mailto: and https: are the two schemes RFC 8460 3 defines
 * and are kept (up to STS_RUA_MAX each, so a record cannot make us send
 * more reports than that); other schemes are skipped.  A URI that names
 * no destination at all is malformed.
 */
static int keep_uri(const char *uri, size_t n, struct sts_tlsrpt *out, size_t off,
		    struct rl_why *why)
{
	size_t s = 0;

	while (s < n &&
	       (is_alpha(uri[s]) || (s > 0 && ((uri[s] >= '0' && uri[s] <= '9') || uri[s] == '+' ||
					       uri[s] == '-' || uri[s] == '.'))))
		s++;
	if (s == 0 || s == n || uri[s] != ':')
		return rl_fail(why, RL_EPARSE, "rua URI without a scheme", off);
	if (scheme_is(uri, "mailto")) {
		if (n == s + 1)
			return rl_fail(why, RL_EPARSE, "mailto: URI without an address", off);
		if (out && out->nmailto < STS_RUA_MAX)
			memcpy(out->mailto[out->nmailto++], uri, n + 1);
		return 0;
	}
	if (scheme_is(uri, "https")) {
		if (n < s + 4 || memcmp(uri + s + 1, "//", 2) != 0 || strchr("/?#", uri[s + 3]))
			return rl_fail(why, RL_EPARSE, "https: URI without a host", off);
		if (out && out->nhttps < STS_RUA_MAX)
			memcpy(out->https[out->nhttps++], uri, n + 1);
		return 0;
	}
	return 0;
}

/* RFC 8460 3: tlsrpt-rua = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri). */
static int read_rua(struct sts_cur *c, struct sts_tlsrpt *out, struct rl_why *why)
{
	char uri[STS_URI_MAX + 1];
	size_t n, start;
	int rc;

	for (;;) {
		start = c->off;
		rc = read_uri(c, uri, &n, why);
		if (rc < 0)
			return rc;
		rc = keep_uri(uri, n, out, start, why);
		if (rc < 0)
			return rc;
		sts_cur_skip_wsp(c);
		if (sts_cur_peek(c) != ',')
			return 0;
		sts_cur_skip(c);
		sts_cur_skip_wsp(c);
	}
}

static int refuse(struct sts_tlsrpt *out, int rc)
{
	memset(out, 0, sizeof(*out));
	return rc;
}

/*
 * Straight-line over the fields, as sts_txt_parse().  RFC 8460 says
 * nothing of a repeated rua; RFC 8461 3.2's rule for the sibling record
 * (the first counts, later ones are ignored) is applied, and a later
 * one is still checked against the grammar.
 */
int sts_tlsrpt_parse(const struct sts_txt *rrset, size_t n, struct sts_tlsrpt *out,
		     struct rl_why *why)
{
	struct sts_cur c;
	char name[STS_FIELD_NAME_MAX + 1];
	int rc, more, have_rua = 0;

	memset(out, 0, sizeof(*out));
	rc = sts_txt_pick(rrset, n, "v=TLSRPTv1", &c, why);
	if (rc < 0)
		return rc;
	more = sts_cur_field_end(&c, why);
	while (more == 1) {
		rc = sts_cur_field_name(&c, name, why);
		if (rc < 0)
			return refuse(out, rc);
		if (strcmp(name, "rua") == 0) {
			rc = read_rua(&c, have_rua ? NULL : out, why);
			have_rua = 1;
		} else {
			rc = sts_cur_ext_value(&c, why);
		}
		if (rc < 0)
			return refuse(out, rc);
		more = sts_cur_field_end(&c, why);
	}
	if (more < 0)
		return refuse(out, more);
	if (!have_rua)
		return rl_fail(why, RL_EPARSE, "no rua field", c.off);
	if (out->nmailto + out->nhttps == 0)
		return rl_fail(why, RL_EPARSE, "no mailto: or https: URI in rua", c.off);
	return 0;
}
