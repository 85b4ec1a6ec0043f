/*
 * smtp_parse: pure parsers of what SMTP peers send (RFC 5321).
 *
 * Every function validates straight-line: it rejects at the first failed
 * check and reaches success only at its end.  Nothing here allocates except
 * through the caller's bounded rl_buf.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "smtp.h"

static int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int ascii_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
			return 0;
	}
	return 1;
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int is_alnum(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int smtp_line_next(const char *buf, size_t len, size_t *linelen, size_t *consumed)
{
	const char *lf = memchr(buf, '\n', len);
	const char *cr = memchr(buf, '\r', lf ? (size_t)(lf - buf) : len);

	/* A CR is legal only immediately before the LF that ends the line. */
	if (cr && (size_t)(cr - buf) + 1 < len && cr + 1 != lf)
		return RL_EPROTO;
	if (!lf)
		return 0;
	if (lf == buf || lf[-1] != '\r')
		return RL_EPROTO;
	*linelen = (size_t)(lf - buf) - 1;
	*consumed = (size_t)(lf - buf) + 1;
	return 1;
}

static const struct {
	const char *name;
	int verb;
} smtp_verbs[] = {
	{ "HELO", SMTP_V_HELO }, { "EHLO", SMTP_V_EHLO },
	{ "MAIL", SMTP_V_MAIL }, { "RCPT", SMTP_V_RCPT },
	{ "DATA", SMTP_V_DATA }, { "RSET", SMTP_V_RSET },
	{ "NOOP", SMTP_V_NOOP }, { "QUIT", SMTP_V_QUIT },
	{ "VRFY", SMTP_V_VRFY }, { "EXPN", SMTP_V_EXPN },
	{ "HELP", SMTP_V_HELP }, { "STARTTLS", SMTP_V_STARTTLS },
	{ "BDAT", SMTP_V_BDAT }, { "AUTH", SMTP_V_AUTH },
};

int smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out, struct rl_why *why)
{
	size_t n = 0;

	if (memchr(line, '\0', len))
		return rl_fail(why, RL_EPARSE, "NUL in command", 0);
	/* A verb is letters only (RFC 5321 4.1.1), ended by a space or the line. */
	while (n < len && line[n] != ' ') {
		if (!is_alnum((unsigned char)line[n]) || is_digit((unsigned char)line[n]))
			return rl_fail(why, RL_EPARSE, "bad command verb", n);
		n++;
	}
	out->verb = SMTP_V_UNKNOWN;
	out->arg = n < len ? line + n + 1 : line + len;
	out->arglen = n < len ? len - n - 1 : 0;
	for (size_t i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++) {
		if (strlen(smtp_verbs[i].name) == n && ascii_ieq(line, smtp_verbs[i].name, n))
			out->verb = smtp_verbs[i].verb;
	}
	/* RFC 5321 4.1.1: trailing spaces are tolerated by most servers. */
	while (out->arglen && out->arg[out->arglen - 1] == ' ')
		out->arglen--;
	return 0;
}

/*
 * Length of a well-formed UTF-8 sequence of non-ASCII octets at p (at most
 * n octets), or 0 if malformed (overlong, surrogate, beyond U+10FFFF).
 */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	size_t want;
	unsigned cp;

	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		want = 2, cp = p[0] & 0x1F;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		want = 3, cp = p[0] & 0x0F;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		want = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n < want)
		return 0;
	for (size_t i = 1; i < want; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((want == 3 && cp < 0x800) || (want == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return want;
}

/* RFC 5322 atext (RFC 5321 4.1.2 Atom). */
static int is_atext(int c)
{
	return is_alnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Local-part: Dot-string or Quoted-string (4.1.2), UTF-8 allowed (RFC 6531). */
static int parse_local(const unsigned char *p, size_t n, size_t *used, int *utf8)
{
	size_t i = 0;

	if (n && p[0] == '"') {
		for (i = 1; i < n && p[i] != '"'; i++) {
			if (p[i] == '\\' && i + 1 < n && p[i + 1] >= 32 && p[i + 1] <= 126)
				i++;
			else if (p[i] >= 0x80) {
				size_t k = utf8_seq(p + i, n - i);
				if (!k)
					return RL_EPARSE;
				*utf8 = 1;
				i += k - 1;
			} else if (p[i] < 32 || p[i] > 126 || p[i] == '\\')
				return RL_EPARSE;
		}
		if (i >= n || i == 1)
			return RL_EPARSE;
		*used = i + 1;
		return 0;
	}
	/* Dot-string, leniently allowing empty atoms between dots as most MTAs do. */
	while (i < n && (is_atext(p[i]) || p[i] == '.' || p[i] >= 0x80)) {
		if (p[i] >= 0x80) {
			size_t k = utf8_seq(p + i, n - i);
			if (!k)
				return RL_EPARSE;
			*utf8 = 1;
			i += k;
		} else {
			i++;
		}
	}
	if (i == 0)
		return RL_EPARSE;
	*used = i;
	return 0;
}

/* An IPv4 address literal body: four Snum of 1-3 digits, 0..255 (4.1.3). */
static int literal_ipv4(const unsigned char *p, size_t n)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t start;

		if (part > 0 && (i >= n || p[i++] != '.'))
			return 0;
		start = i;
		while (i < n && is_digit(p[i]) && i - start < 3)
			v = v * 10 + (unsigned)(p[i++] - '0');
		if (i == start || v > 255)
			return 0;
	}
	return i == n;
}

/* "IPv6:" and an IPv6 address in any form of RFC 5321 4.1.3. */
static int literal_ipv6(const unsigned char *p, size_t n)
{
	char text[INET6_ADDRSTRLEN];
	unsigned char bin[16];

	if (n < 6 || n - 5 >= sizeof(text) || !ascii_ieq((const char *)p, "IPv6:", 5))
		return 0;
	memcpy(text, p + 5, n - 5);
	text[n - 5] = '\0';
	return inet_pton(AF_INET6, text, bin) == 1;
}

/*
 * An address literal "[...]" at p: IPv4 or IPv6 only.  The General-address-
 * literal of 4.1.3 has no other registered tag, so anything else (and
 * "[300.1.1.1]", "[1.2.3]") is malformed.
 */
static int parse_literal(const unsigned char *p, size_t n, size_t *used, int *literal)
{
	const unsigned char *close = memchr(p, ']', n);
	size_t len = close ? (size_t)(close - p) - 1 : 0;

	if (!close || len == 0)
		return RL_EPARSE;
	if (literal_ipv4(p + 1, len))
		*literal = SMTP_LIT_IPV4;
	else if (literal_ipv6(p + 1, len))
		*literal = SMTP_LIT_IPV6;
	else
		return RL_EPARSE;
	*used = len + 2;
	return 0;
}

/* Domain (LDH labels, UTF-8 U-labels) or an address literal in brackets. */
static int parse_domain(const unsigned char *p, size_t n, size_t *used, int *utf8, int *literal)
{
	size_t i = 0, label = 0;

	*literal = SMTP_LIT_NONE;
	if (n && p[0] == '[')
		return parse_literal(p, n, used, literal);
	for (; i < n && p[i] != '>' && p[i] != ' '; i++) {
		if (p[i] == '.') {
			if (label == 0 || p[i - 1] == '-')
				return RL_EPARSE;
			label = 0;
			continue;
		}
		if (p[i] >= 0x80) {
			size_t k = utf8_seq(p + i, n - i);
			if (!k)
				return RL_EPARSE;
			*utf8 = 1;
			i += k - 1;
			label += k;
		} else if (is_alnum(p[i]) || (p[i] == '-' && label > 0)) {
			label++;
		} else {
			return RL_EPARSE;
		}
		if (label > 63)
			return RL_EPARSE;
	}
	if (label == 0 || p[i - 1] == '-' || i > SMTP_DOMAIN_MAX)
		return RL_EPARSE;
	*used = i;
	return 0;
}

/* Skip an obsolete source route "@a,@b:" (RFC 5321 4.1.2 A-d-l, C). */
static size_t skip_route(const unsigned char *p, size_t n)
{
	size_t i = 0;

	if (n == 0 || p[0] != '@')
		return 0;
	while (i < n && p[i] != ':' && p[i] != '>')
		i++;
	return i < n && p[i] == ':' ? i + 1 : 0;
}

/*
 * "<mailbox>" at the start of p; sets *used past '>'.  The null path "<>"
 * is accepted when allow_null.
 */
static int parse_path(const char *s, size_t n, int allow_null, struct smtp_path *path,
		      size_t *used, struct rl_why *why)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i, k = 0, start;
	int rc;

	path->utf8 = 0;
	path->literal = SMTP_LIT_NONE;
	path->len = 0;
	path->addr[0] = '\0';
	if (n < 2 || p[0] != '<')
		return rl_fail(why, RL_EPARSE, "path must be in angle brackets", 0);
	if (p[1] == '>') {
		if (!allow_null)
			return rl_fail(why, RL_EPARSE, "null path not allowed", 1);
		*used = 2;
		return 0;
	}
	i = 1 + skip_route(p + 1, n - 1);
	start = i;
	rc = parse_local(p + i, n - i, &k, &path->utf8);
	if (rc < 0)
		return rl_fail(why, RL_EPARSE, "bad local part", i);
	i += k;
	if (i >= n || p[i] != '@')
		return rl_fail(why, RL_EPARSE, "address needs a domain", i);
	i++;
	rc = parse_domain(p + i, n - i, &k, &path->utf8, &path->literal);
	if (rc < 0)
		return rl_fail(why, RL_EPARSE, "bad domain", i);
	i += k;
	if (i >= n || p[i] != '>')
		return rl_fail(why, RL_EPARSE, "missing closing bracket", i);
	if (i - start + 2 > SMTP_PATH_MAX)
		return rl_fail(why, RL_EPARSE, "path too long", i);
	memcpy(path->addr, p + start, i - start);
	path->len = i - start;
	path->addr[path->len] = '\0';
	*used = i + 1;
	return 0;
}

/* Skip "FROM:" / "TO:" and optional spaces after the colon (Postfix-lenient). */
static int skip_keyword(const char *arg, size_t len, const char *kw, size_t *pos)
{
	size_t k = strlen(kw);

	if (len < k || !ascii_ieq(arg, kw, k))
		return RL_EPARSE;
	while (k < len && arg[k] == ' ')
		k++;
	*pos = k;
	return 0;
}

static int parse_number(const char *p, size_t n, int64_t *out)
{
	int64_t v = 0;

	if (n == 0 || n > 18)
		return RL_EPARSE;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit((unsigned char)p[i]))
			return RL_EPARSE;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

/* RFC 3461 section 4: xtext, printable ASCII but "+" and "=", "+XX" hex escapes. */
static int xtext_ok(const char *v, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '+') {
			for (int k = 1; k <= 2; k++) {
				char h = i + (size_t)k < n ? v[i + (size_t)k] : '\0';

				if (!((h >= '0' && h <= '9') || (h >= 'A' && h <= 'F')))
					return 0;
			}
			i += 2;
		} else if (c < 0x21 || c > 0x7e || c == '=') {
			return 0;
		}
	}
	return 1;
}

/* One ESMTP parameter "KEY[=VALUE]" of MAIL FROM (RFC 1870, 6152, 6531, 8689, 4954).
 * Whether the session may use a parameter is the caller's decision. */
static int mail_param(const char *p, size_t n, struct smtp_mail_params *mp, struct rl_why *why,
		      size_t off)
{
	const char *eq = memchr(p, '=', n);
	size_t kl = eq ? (size_t)(eq - p) : n;
	const char *v = eq ? eq + 1 : NULL;
	size_t vl = eq ? n - kl - 1 : 0;

	if (kl == 4 && ascii_ieq(p, "SIZE", 4) && v) {
		if (parse_number(v, vl, &mp->size) < 0)
			return rl_fail(why, RL_EPARSE, "bad SIZE value", off);
		return 0;
	}
	if (kl == 4 && ascii_ieq(p, "BODY", 4) && v) {
		if (vl == 4 && ascii_ieq(v, "7BIT", 4))
			mp->body = SMTP_BODY_7BIT;
		else if (vl == 8 && ascii_ieq(v, "8BITMIME", 8))
			mp->body = SMTP_BODY_8BITMIME;
		else
			return rl_fail(why, -ENOTSUP, "unsupported BODY type", off);
		return 0;
	}
	if (kl == 8 && ascii_ieq(p, "SMTPUTF8", 8) && !v) {
		mp->smtputf8 = 1;
		return 0;
	}
	/*
	 * RFC 4954 section 5: AUTH=<> or AUTH=xtext.  Checked and flagged
	 * (the session refuses it where AUTH is not offered), then dropped: it
	 * is never passed on, so no next hop is told whom we vouch for.
	 */
	if (kl == 4 && ascii_ieq(p, "AUTH", 4) && v) {
		if (!xtext_ok(v, vl))
			return rl_fail(why, RL_EPARSE, "bad AUTH value", off);
		mp->auth = 1;
		return 0;
	}
	if (kl == 10 && ascii_ieq(p, "REQUIRETLS", 10) && !v) {
		mp->requiretls = 1;
		return 0;
	}
	return rl_fail(why, -ENOTSUP, "unsupported parameter", off);
}

int smtp_mail_parse(const char *arg, size_t len, struct smtp_path *from,
		    struct smtp_mail_params *p, struct rl_why *why)
{
	size_t pos, used, end;
	int rc;

	p->size = -1;
	p->body = SMTP_BODY_NONE;
	p->smtputf8 = 0;
	p->requiretls = 0;
	p->auth = 0;
	if (skip_keyword(arg, len, "FROM:", &pos) < 0)
		return rl_fail(why, RL_EPARSE, "expected FROM:<address>", 0);
	rc = parse_path(arg + pos, len - pos, 1, from, &used, why);
	if (rc < 0)
		return rc;
	for (pos += used; pos < len; pos = end) {
		if (arg[pos] != ' ')
			return rl_fail(why, RL_EPARSE, "garbage after address", pos);
		while (pos < len && arg[pos] == ' ')
			pos++;
		for (end = pos; end < len && arg[end] != ' ';)
			end++;
		if (end > pos && (rc = mail_param(arg + pos, end - pos, p, why, pos)) < 0)
			return rc;
	}
	if (from->utf8 && !p->smtputf8)
		return rl_fail(why, RL_EPARSE, "non-ASCII address without SMTPUTF8", 0);
	return 0;
}

int smtp_rcpt_parse(const char *arg, size_t len, struct smtp_path *to, struct rl_why *why)
{
	size_t pos, used;
	int rc;

	if (skip_keyword(arg, len, "TO:", &pos) < 0)
		return rl_fail(why, RL_EPARSE, "expected TO:<address>", 0);
	rc = parse_path(arg + pos, len - pos, 0, to, &used, why);
	if (rc < 0)
		return rc;
	pos += used;
	while (pos < len && arg[pos] == ' ')
		pos++;
	/* No RCPT parameters are offered (DSN comes later). */
	if (pos < len)
		return rl_fail(why, -ENOTSUP, "unsupported parameter", pos);
	return 0;
}

int smtp_helo_valid(const char *arg, size_t len)
{
	size_t used = 0;
	int utf8 = 0, literal;

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return 0;
	if (parse_domain((const unsigned char *)arg, len, &used, &utf8, &literal) < 0)
		return 0;
	return used == len;
}

void smtp_data_init(struct smtp_data *d)
{
	memset(d, 0, sizeof(*d));
	d->bol = 1;
}

/* Append content unless the message already overflowed its limit. */
static int data_emit(struct smtp_data *d, struct rl_buf *out, const char *p, size_t n)
{
	int rc;

	d->total += n;
	if (d->overflow || n == 0)
		return 0;
	rc = rl_buf_append(out, p, n);
	if (rc == RL_ETOOBIG) {
		d->overflow = 1;
		return 0;
	}
	return rc;
}

/* A complete line ended (CRLF seen): either the end of data or a line break. */
static int data_eol(struct smtp_data *d, struct rl_buf *out)
{
	if (d->dot) {
		d->done = 1;
		return 0;
	}
	d->bol = 1;
	d->linelen = 0;
	return data_emit(d, out, "\r\n", 2);
}

int smtp_data_feed(struct smtp_data *d, const char *p, size_t n, struct rl_buf *out,
		   size_t *consumed)
{
	size_t i = 0, span;
	int rc = 0;

	while (i < n && !d->done && rc == 0) {
		unsigned char c = (unsigned char)p[i];

		if (d->cr) {
			d->cr = 0;
			if (c != '\n')
				break;
			i++;
			rc = data_eol(d, out);
			continue;
		}
		if (c == '\r') {
			d->cr = 1;
			i++;
			continue;
		}
		if (c == '\n')
			break;
		if (d->bol && c == '.') {
			/* The first dot of a line is stuffing or the end marker. */
			d->bol = 0;
			d->dot = 1;
			i++;
			continue;
		}
		/* Copy a run of ordinary octets at once. */
		for (span = i; span < n && p[span] != '\r' && p[span] != '\n'; span++)
			d->eightbit |= (unsigned char)p[span] >= 0x80;
		d->bol = 0;
		d->dot = 0;
		d->linelen += span - i;
		if (d->linelen > SMTP_TEXT_LINE_MAX)
			d->long_line = 1;
		rc = data_emit(d, out, p + i, span - i);
		i = span;
	}
	*consumed = i;
	if (rc < 0)
		return rc;
	if (!d->done && i < n)
		return RL_EPROTO;
	return 0;
}

/* Three digits, first 2..5 (RFC 5321 4.2). */
static int reply_code(const char *p)
{
	if (p[0] < '2' || p[0] > '5' || !is_digit((unsigned char)p[1]) ||
	    !is_digit((unsigned char)p[2]))
		return -1;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* "x.y.z" at the start of text, with class matching the reply (RFC 3463). */
static size_t reply_enh(const char *t, size_t n, int code, char out[16])
{
	size_t i = 0, parts = 0, digits = 0;

	if (n < 5 || t[0] - '0' != code / 100 || t[1] != '.')
		return 0;
	for (; i < n && i < 15; i++) {
		if (is_digit((unsigned char)t[i])) {
			if (++digits > 3)
				return 0;
		} else if (t[i] == '.' && digits) {
			parts++;
			digits = 0;
		} else {
			break;
		}
	}
	if (parts != 2 || digits == 0 || (i < n && t[i] != ' '))
		return 0;
	memcpy(out, t, i);
	out[i] = '\0';
	return i;
}

/*
 * Append one line's text.  A continuation line goes in whole or not at all:
 * a keyword cut at the end of the buffer would be misread by
 * smtp_ehlo_parse() (a cut "SIZE 10485760" reads as "SIZE 10", and every
 * larger message would bounce as too big).  The first line always fits
 * (SMTP_REPLY_LINE_LIMIT < SMTP_REPLY_TEXT_MAX).
 */
static void reply_add_text(struct smtp_reply *r, const char *t, size_t n)
{
	if (r->nlines > 1) {
		if (r->textlen + 1 + n >= sizeof(r->text))
			return;
		r->text[r->textlen++] = '\n';
	}
	for (size_t i = 0; i < n && r->textlen + 1 < sizeof(r->text); i++) {
		unsigned char c = (unsigned char)t[i];

		/* NUL and other controls would cut or forge log lines. */
		r->text[r->textlen++] = (c >= 32 && c < 127) ? (char)c : '?';
	}
	r->text[r->textlen] = '\0';
}

/*
 * Length of the enhanced status code that starts text t[0..n) of a reply
 * line: the first line's code is parsed (RFC 3463, class matching the
 * reply), later lines repeat it (RFC 2034 says every line carries it) and
 * only that exact code followed by a space or the end is skipped.
 */
static size_t reply_line_enh(struct smtp_reply *r, const char *t, size_t n)
{
	size_t k = strlen(r->enh);

	if (r->nlines == 1)
		return reply_enh(t, n, r->code, r->enh);
	if (k == 0 || n < k || memcmp(t, r->enh, k) != 0 || (n > k && t[k] != ' '))
		return 0;
	return k;
}

/*
 * One line of n octets (without CR LF) at p.  Returns 1 when it ends the
 * reply, 0 when more lines follow, RL_EPARSE when malformed.
 */
static int reply_line(struct smtp_reply *r, const char *p, size_t n)
{
	int code;
	size_t e;

	if (n < 3 || (code = reply_code(p)) < 0 || (n > 3 && p[3] != ' ' && p[3] != '-'))
		return RL_EPARSE;
	if (r->nlines && code != r->code)
		return RL_EPARSE;
	if (++r->nlines > SMTP_REPLY_LINES_MAX)
		return RL_EPARSE;
	r->code = code;
	if (n <= 4) {
		reply_add_text(r, "", 0);
		return n == 3 || p[3] == ' ';
	}
	e = reply_line_enh(r, p + 4, n - 4);
	while (e < n - 4 && p[4 + e] == ' ')
		e++;
	reply_add_text(r, p + 4 + e, n - 4 - e);
	return p[3] == ' ';
}

int smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *r, size_t *consumed)
{
	size_t pos = 0;

	memset(r, 0, sizeof(*r));
	for (;;) {
		const char *lf = memchr(buf + pos, '\n', len - pos);
		size_t n = lf ? (size_t)(lf - (buf + pos)) : len - pos;
		int rc;

		/*
		 * The same bound whether or not the line's end has arrived, so
		 * the verdict never depends on how TCP split the reply.
		 */
		if (n > SMTP_REPLY_LINE_LIMIT)
			return RL_EPARSE;
		if (!lf)
			return 0;
		rc = reply_line(r, buf + pos, n && buf[pos + n - 1] == '\r' ? n - 1 : n);
		pos += n + 1;
		if (rc != 0) {
			if (rc == 1)
				*consumed = pos;
			return rc;
		}
	}
}

void smtp_reply_oneline(const struct smtp_reply *r, char *out, size_t size)
{
	int n = snprintf(out, size, "%d%s%s%s%s", r->code, r->enh[0] ? " " : "", r->enh,
			 r->textlen ? " " : "", r->text);

	for (int i = 0; i < n && (size_t)i < size; i++) {
		if (out[i] == '\n')
			out[i] = ' ';
	}
}

void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *out)
{
	static const struct {
		const char *kw;
		unsigned bit;
	} kws[] = {
		{ "STARTTLS", SMTP_EXT_STARTTLS }, { "PIPELINING", SMTP_EXT_PIPELINING },
		{ "SIZE", SMTP_EXT_SIZE },         { "8BITMIME", SMTP_EXT_8BITMIME },
		{ "SMTPUTF8", SMTP_EXT_SMTPUTF8 }, { "ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES },
		{ "REQUIRETLS", SMTP_EXT_REQUIRETLS },
	};
	const char *p = memchr(r->text, '\n', r->textlen);

	memset(out, 0, sizeof(*out));
	while (p) {
		const char *line = p + 1, *end = memchr(line, '\n', r->text + r->textlen - line);
		size_t n = end ? (size_t)(end - line) : (size_t)(r->text + r->textlen - line), k = 0;

		while (k < n && line[k] != ' ')
			k++;
		for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++) {
			if (strlen(kws[i].kw) == k && ascii_ieq(line, kws[i].kw, k))
				out->ext |= kws[i].bit;
		}
		if (k == 4 && ascii_ieq(line, "SIZE", 4) && k + 1 < n) {
			int64_t v;

			if (parse_number(line + 5, n - 5, &v) == 0)
				out->size_max = (uint64_t)v;
		}
		p = end;
	}
}

/*
 * The listener's path rules for addresses that arrive by other ways than
 * SMTP (local submission): the whole input must be one "<path>", so no
 * parameter, CR, LF or other trailing text can ride along.
 */
int smtp_path_parse(const char *s, size_t n, int allow_null, struct smtp_path *path,
		    struct rl_why *why)
{
	size_t used = 0;
	int rc = parse_path(s, n, allow_null, path, &used, why);

	if (rc < 0)
		return rc;
	if (used != n)
		return rl_fail(why, RL_EPARSE, "garbage after address", used);
	return 0;
}
