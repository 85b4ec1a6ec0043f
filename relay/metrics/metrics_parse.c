/*
 * metrics_parse: the request head of the metrics endpoint (RFC 9112).
 *
 * Only what the endpoint needs is taken from the head: the method and the
 * path of an origin-form target.  Everything else is checked for form and
 * dropped.  Validation is straight-line: the first bad line decides 400.
 * A recipient may take a bare LF as a line end (RFC 9112 section 2.2); a
 * CR anywhere else, obs-fold and NUL are refused.
 */
#include <string.h>
#include <strings.h>

#include "metrics.h"

/* RFC 9110 section 5.6.2: tchar. */
static int is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* The end of the head: the index after its blank line, 0 when not there yet. */
static size_t head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* One line of [s, end): its length without CRLF/LF into *n; where the next begins. */
static const char *line_next(const char *s, const char *end, size_t *n)
{
	const char *lf = memchr(s, '\n', (size_t)(end - s));
	size_t l = lf ? (size_t)(lf - s) : (size_t)(end - s);

	*n = l && s[l - 1] == '\r' ? l - 1 : l;
	return lf ? lf + 1 : end;
}

static int fail(struct metrics_req *r, struct rl_why *why, int status, const char *reason,
		size_t off)
{
	r->status = status;
	if (why)
		*why = (struct rl_why){status == 431 ? RL_ETOOBIG : RL_EPARSE, reason, off};
	return 1;
}

/* "HTTP/1.1", "HTTP/1.0": 0; another HTTP/d.d: 505; anything else: 400. */
static int version_check(const char *s, size_t n)
{
	if (n != 8 || memcmp(s, "HTTP/", 5) != 0 || s[5] < '0' || s[5] > '9' || s[6] != '.' ||
	    s[7] < '0' || s[7] > '9')
		return 400;
	return s[5] == '1' ? 0 : 505;
}

/* method SP request-target SP HTTP-version (RFC 9112 section 3). */
static int request_line(const char *s, size_t n, struct metrics_req *r, struct rl_why *why)
{
	const char *end = s + n, *sp1, *sp2, *q;
	int v;

	sp1 = memchr(s, ' ', n);
	if (!sp1 || sp1 == s)
		return fail(r, why, 400, "no method", 0);
	for (const char *p = s; p < sp1; p++)
		if (!is_tchar((unsigned char)*p))
			return fail(r, why, 400, "bad method", (size_t)(p - s));
	sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return fail(r, why, 400, "no request target", (size_t)(sp1 - s));
	if (sp1[1] != '/')
		return fail(r, why, 400, "request target not in origin form",
			    (size_t)(sp1 + 1 - s));
	for (const char *p = sp1 + 1; p < sp2; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return fail(r, why, 400, "bad octet in request target", (size_t)(p - s));
	v = version_check(sp2 + 1, (size_t)(end - sp2 - 1));
	if (v)
		return fail(r, why, v, v == 505 ? "HTTP version not supported" : "bad HTTP version",
			    (size_t)(sp2 + 1 - s));
	r->method = s;
	r->methodlen = (size_t)(sp1 - s);
	r->path = sp1 + 1;
	q = memchr(r->path, '?', (size_t)(sp2 - r->path));
	r->pathlen = (size_t)((q ? q : sp2) - r->path);
	return 0;
}

/* field-name ":" OWS field-value OWS (RFC 9112 section 5); *host set for Host. */
static int header_line(const char *s, size_t n, int *host)
{
	const char *colon = memchr(s, ':', n);

	if (!colon || colon == s)
		return -1;
	for (const char *p = s; p < colon; p++)
		if (!is_tchar((unsigned char)*p))
			return -1; /* also obs-fold (a leading blank) and blanks before ':' */
	for (const char *p = colon + 1; p < s + n; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			return -1;
	if (colon - s == 4 && strncasecmp(s, "host", 4) == 0)
		(*host)++;
	return 0;
}

int metrics_req_parse(const char *buf, size_t len, struct metrics_req *r, struct rl_why *why)
{
	size_t used = head_end(buf, len), n;
	const char *s = buf, *end, *next;
	int host = 0, http11;

	memset(r, 0, sizeof(*r));
	if (used == 0 && len < METRICS_REQ_MAX)
		return 0;
	if (used == 0 || used > METRICS_REQ_MAX)
		return fail(r, why, 431, "request head too large", METRICS_REQ_MAX);
	r->used = used;
	end = buf + used;
	/* Bytes that are never allowed: NUL, and a CR not before LF. */
	for (size_t i = 0; i < used; i++)
		if (buf[i] == '\0' || (buf[i] == '\r' && buf[i + 1] != '\n'))
			return fail(r, why, 400, "NUL or bare CR", i);
	next = line_next(s, end, &n);
	if (request_line(s, n, r, why) != 0)
		return 1;
	http11 = s[n - 1] == '1';
	for (s = next; s < end; s = next) {
		next = line_next(s, end, &n);
		if (n == 0)
			break;
		if (header_line(s, n, &host) < 0)
			return fail(r, why, 400, "bad header field", (size_t)(s - buf));
	}
	/* RFC 9112 section 3.2: exactly one Host in HTTP/1.1, at most one before. */
	if ((http11 && host != 1) || host > 1)
		return fail(r, why, 400, "missing or repeated Host", 0);
	if (r->pathlen != 8 || memcmp(r->path, "/metrics", 8) != 0)
		r->status = 404;
	else if (r->methodlen != 3 || memcmp(r->method, "GET", 3) != 0)
		r->status = 405;
	else
		r->status = 200;
	return 1;
}
