/*
 * sts_txt: what the MTA-STS and TLS-RPT record parsers share: a cursor
 * over a TXT record's character-strings, the choice of the one record of
 * an RRset (RFC 8461 3.1, RFC 8460 3), the common field grammar, and the
 * host name check.  Pure: no I/O, no logging, no globals, no allocation.
 */
#include <string.h>

#include "sts_int.h"

static int is_alnum(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

char sts_lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* Step over length octets (and empty strings) to the next text octet. */
static void cur_settle(struct sts_cur *c)
{
	while (c->left == 0 && c->pos < c->len) {
		c->left = c->p[c->pos++];
		RL_REQUIRE(c->left <= c->len - c->pos);
	}
}

int sts_cur_peek(struct sts_cur *c)
{
	cur_settle(c);
	return c->left ? c->p[c->pos] : -1;
}

void sts_cur_skip(struct sts_cur *c)
{
	cur_settle(c);
	RL_REQUIRE(c->left > 0);
	c->pos++;
	c->left--;
	c->off++;
}

void sts_cur_skip_wsp(struct sts_cur *c)
{
	int ch;

	while ((ch = sts_cur_peek(c)) == ' ' || ch == '\t')
		sts_cur_skip(c);
}

/* Works on a copy, so a partial match leaves *c where it was. */
int sts_cur_accept(struct sts_cur *c, const char *tag)
{
	struct sts_cur t = *c;

	for (; *tag; tag++) {
		if (sts_cur_peek(&t) != (unsigned char)*tag)
			return 0;
		sts_cur_skip(&t);
	}
	*c = t;
	return 1;
}

/*
 * A TXT rdata is one or more character-strings, each a length octet and
 * that many octets (RFC 1035 3.3.14), filling the rdata exactly.  The
 * resolver should never hand over anything else, but the cursor's bounds
 * rest on this check, so it is made here and not assumed.
 */
static int rdata_valid(const unsigned char *p, size_t len)
{
	size_t pos = 0;

	if (len == 0)
		return 0;
	while (pos < len) {
		if (p[pos] > len - pos - 1)
			return 0;
		pos += 1 + (size_t)p[pos];
	}
	return 1;
}

static int has_tag(const struct sts_txt *rr, const char *tag, struct sts_cur *c)
{
	int ch;

	c->p = rr->rdata;
	c->len = rr->len;
	c->pos = c->left = c->off = 0;
	if (!sts_cur_accept(c, tag))
		return 0;
	ch = sts_cur_peek(c);
	return ch == -1 || ch == ';' || ch == ' ' || ch == '\t';
}

/*
 * RFC 8461 3.1 (and RFC 8460 3 alike): "records that do not begin with
 * v=STSv1; are discarded.  If the number of resulting records is not one
 * [...] senders MUST assume the recipient domain does not have an
 * available MTA-STS Policy".  Two records could come from a half-done
 * update; picking either would be a guess, so neither is used.  The tag
 * may be followed by blanks before the ";" (the grammar's field-delim
 * allows them).  Every rdata is checked before any is read.
 */
int sts_txt_pick(const struct sts_txt *rrset, size_t n, const char *tag, struct sts_cur *c,
		 struct rl_why *why)
{
	struct sts_cur t;
	size_t found = 0;

	RL_REQUIRE(rrset || n == 0);
	for (size_t i = 0; i < n; i++)
		if (!rdata_valid(rrset[i].rdata, rrset[i].len))
			return rl_fail(why, RL_EPARSE, "TXT rdata is not a sequence of strings", 0);
	for (size_t i = 0; i < n; i++) {
		if (!has_tag(&rrset[i], tag, &t))
			continue;
		if (found++)
			return rl_fail(why, RL_EPARSE, "more than one record with the version tag",
				       0);
		*c = t;
	}
	if (!found)
		return rl_fail(why, RL_ENOTFOUND, "no record with the version tag", 0);
	return 0;
}

/* RFC 8461 3.1 sts-ext-name, RFC 8460 3 tlsrpt-ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" /
 * "-" / "."). */
int sts_cur_field_name(struct sts_cur *c, char name[STS_FIELD_NAME_MAX + 1], struct rl_why *why)
{
	size_t n = 0;
	int ch = sts_cur_peek(c);

	if (!is_alnum(ch))
		return rl_fail(why, RL_EPARSE, "expected a field name", c->off);
	while (is_alnum(ch) || ch == '_' || ch == '-' || ch == '.') {
		if (n == STS_FIELD_NAME_MAX)
			return rl_fail(why, RL_EPARSE, "field name longer than 32 characters",
				       c->off);
		name[n++] = (char)ch;
		sts_cur_skip(c);
		ch = sts_cur_peek(c);
	}
	name[n] = '\0';
	if (ch != '=')
		return rl_fail(why, RL_EPARSE, "expected '=' after the field name", c->off);
	sts_cur_skip(c);
	return 0;
}

/* Visible ASCII but "=" and ";" (RFC 8461 sts-ext-value, RFC 8460 tlsrpt-ext-value). */
int sts_cur_ext_value(struct sts_cur *c, struct rl_why *why)
{
	size_t start = c->off;
	int ch;

	while ((ch = sts_cur_peek(c)) >= 0x21 && ch <= 0x7e && ch != '=' && ch != ';')
		sts_cur_skip(c);
	if (c->off == start)
		return rl_fail(why, RL_EPARSE, "empty or invalid field value", c->off);
	return 0;
}

int sts_cur_field_end(struct sts_cur *c, struct rl_why *why)
{
	int ch;

	sts_cur_skip_wsp(c);
	ch = sts_cur_peek(c);
	if (ch == -1)
		return 0;
	if (ch != ';')
		return rl_fail(why, RL_EPARSE, "expected ';' after a field", c->off);
	sts_cur_skip(c);
	sts_cur_skip_wsp(c);
	/* The grammar allows one ";" after the last field. */
	return sts_cur_peek(c) == -1 ? 0 : 1;
}

/*
 * RFC 5321 4.1.2 Domain: sub-domain *("." sub-domain), sub-domain =
 * Let-dig [Ldh-str], so a label starts and ends with a letter or digit;
 * RFC 1035 2.3.4 bounds labels to 63 octets.  Anything else (underscores,
 * "*", empty labels, 8-bit octets) is not a host name an MX can have.
 */
int sts_name_valid(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > STS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
			return 0;
		if (label == 0 && s[i] == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label != 0 && s[n - 1] != '-';
}
