/*
 * msg_parse: RFC 5322 header fields and address lists.
 */
#include <string.h>

#include "msg.h"

#define MSG_ADDR_MAX 1024 /* longest addr-spec we pass on */

size_t msg_header_end(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const char *lf = memchr(p + i, '\n', len - i);

		if (!lf)
			return len;
		if ((lf == p + i + 1 && p[i] == '\r') || lf == p + i)
			return (size_t)(lf - p) + 1;
		i = (size_t)(lf - p) + 1;
	}
	return len;
}

static size_t line_end(const char *p, size_t n, size_t i)
{
	const char *lf = memchr(p + i, '\n', n - i);

	return lf ? (size_t)(lf - p) + 1 : n;
}

/* Does the line p[0..n) start the field "Received", in any case? */
static int line_is_received(const char *p, size_t n)
{
	static const char name[] = "received";
	size_t k = sizeof(name) - 1, i;

	if (n <= k)
		return 0;
	for (i = 0; i < k; i++) {
		char c = p[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (c != name[i])
			return 0;
	}
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':';
}

size_t msg_received_count(const char *data, size_t len)
{
	size_t i = 0, count = 0;

	while (i < len) {
		size_t end = line_end(data, len, i);

		/* An empty line ends the header section; the body may say anything. */
		if (data[i] == '\n' || (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n'))
			break;
		/* Continuation lines start with a blank and belong to their field. */
		if (line_is_received(data + i, end - i))
			count++;
		i = end;
	}
	return count;
}

int msg_header_next(const char *p, size_t hlen, size_t *pos, struct msg_field *f)
{
	size_t i = *pos, colon, end;

	if (i >= hlen || p[i] == '\r' || p[i] == '\n')
		return 0;
	for (colon = i; colon < hlen && p[colon] != ':'; colon++) {
		/* Field names are printable ASCII without space (3.6.8). */
		if ((unsigned char)p[colon] <= 32 || (unsigned char)p[colon] >= 127)
			return RL_EPARSE;
	}
	if (colon == i || colon >= hlen)
		return RL_EPARSE;
	end = line_end(p, hlen, colon);
	while (end < hlen && (p[end] == ' ' || p[end] == '\t'))
		end = line_end(p, hlen, end);
	f->name = p + i;
	f->namelen = colon - i;
	f->value = p + colon + 1;
	f->valuelen = end - colon - 1;
	f->start = i;
	f->end = end;
	*pos = end;
	return 1;
}

int msg_field_is(const struct msg_field *f, const char *name)
{
	size_t n = strlen(name);

	if (f->namelen != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char a = f->name[i], b = name[i];

		if (a >= 'A' && a <= 'Z')
			a = (char)(a + 32);
		if (b >= 'A' && b <= 'Z')
			b = (char)(b + 32);
		if (a != b)
			return 0;
	}
	return 1;
}

struct addr_scan {
	char seg[MSG_ADDR_MAX]; /* bare addr-spec text, whitespace removed */
	size_t seglen;
	char angle[MSG_ADDR_MAX]; /* last <angle-addr> of the mailbox */
	size_t anglelen;
	int has_angle;
	int overflow;
};

static void scan_put(char *buf, size_t *len, char c, int *overflow)
{
	if (*len + 1 < MSG_ADDR_MAX)
		buf[(*len)++] = c;
	else
		*overflow = 1;
}

static int scan_emit(struct addr_scan *s, int (*cb)(void *, const char *, size_t), void *arg)
{
	const char *a = s->has_angle ? s->angle : s->seg;
	size_t n = s->has_angle ? s->anglelen : s->seglen;
	int rc = 0;

	if (n && !s->overflow)
		rc = cb(arg, a, n);
	s->seglen = s->anglelen = 0;
	s->has_angle = s->overflow = 0;
	return rc;
}

/* Index just past a quoted string or comment starting at v[i]. */
static size_t skip_quoted(const char *v, size_t n, size_t i, struct addr_scan *s, int keep)
{
	char close = v[i] == '"' ? '"' : ')';
	int depth = 1;

	if (keep)
		scan_put(s->seg, &s->seglen, v[i], &s->overflow);
	for (i++; i < n && depth; i++) {
		if (v[i] == '\\' && i + 1 < n) {
			if (keep) {
				scan_put(s->seg, &s->seglen, v[i], &s->overflow);
				scan_put(s->seg, &s->seglen, v[i + 1], &s->overflow);
			}
			i++;
			continue;
		}
		if (close == ')' && v[i] == '(')
			depth++;
		else if (v[i] == close)
			depth--;
		if (keep)
			scan_put(s->seg, &s->seglen, v[i], &s->overflow);
	}
	return i;
}

/* Copy a domain literal "[...]" verbatim into buf; index past ']'. */
static size_t copy_literal(const char *v, size_t n, size_t i, char *buf, size_t *len, int *overflow)
{
	for (; i < n && v[i] != ']'; i++)
		scan_put(buf, len, v[i], overflow);
	if (i < n)
		scan_put(buf, len, v[i++], overflow);
	return i;
}

/* Inside <...>: keep quoted strings and literals, drop comments and space. */
static size_t scan_angle(const char *v, size_t n, size_t i, struct addr_scan *s)
{
	s->anglelen = 0;
	for (i++; i < n && v[i] != '>';) {
		if (v[i] == '(') {
			struct addr_scan junk;

			memset(&junk, 0, sizeof(junk));
			i = skip_quoted(v, n, i, &junk, 0);
		} else if (v[i] == '"') {
			size_t before = s->seglen;

			/* Reuse the quoted-string copier, then move its output. */
			i = skip_quoted(v, n, i, s, 1);
			for (size_t k = before; k < s->seglen; k++)
				scan_put(s->angle, &s->anglelen, s->seg[k], &s->overflow);
			s->seglen = before;
		} else if (v[i] == '[') {
			i = copy_literal(v, n, i, s->angle, &s->anglelen, &s->overflow);
		} else {
			if (v[i] != ' ' && v[i] != '\t' && v[i] != '\r' && v[i] != '\n')
				scan_put(s->angle, &s->anglelen, v[i], &s->overflow);
			i++;
		}
	}
	s->has_angle = 1;
	return i + 1;
}

int msg_addr_list(const char *v, size_t n, int (*cb)(void *arg, const char *addr, size_t len),
		  void *arg)
{
	struct addr_scan s;
	size_t i = 0;
	int rc = 0;

	memset(&s, 0, sizeof(s));
	while (i < n && rc == 0) {
		char c = v[i];

		if (c == '"' || c == '(') {
			i = skip_quoted(v, n, i, &s, c == '"');
		} else if (c == '<') {
			i = scan_angle(v, n, i, &s);
		} else if (c == '[') {
			i = copy_literal(v, n, i, s.seg, &s.seglen, &s.overflow);
		} else if (c == ':' && !s.has_angle) {
			s.seglen = 0; /* a group's display name */
			i++;
		} else if (c == ',' || c == ';') {
			rc = scan_emit(&s, cb, arg);
			i++;
		} else {
			if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
				scan_put(s.seg, &s.seglen, c, &s.overflow);
			i++;
		}
	}
	return rc ? rc : scan_emit(&s, cb, arg);
}

/* Control octets never belong in an address; say so plainly. */
static int has_control(const char *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)a[i] < 32 || a[i] == 127)
			return 1;
	}
	return 0;
}

int msg_envelope_addr(const char *a, size_t n, const char *myhostname, int allow_null,
		      struct smtp_path *out, struct rl_why *why)
{
	char buf[SMTP_PATH_MAX + 2];
	size_t host = 0, len;

	if (has_control(a, n))
		return rl_fail(why, RL_EPARSE, "control character in address", 0);
	while (n && *a == ' ')
		a++, n--;
	while (n && a[n - 1] == ' ')
		n--;
	/* One pair of brackets may enclose it, as on the SMTP command line. */
	if (n >= 2 && a[0] == '<' && a[n - 1] == '>')
		a++, n -= 2;
	if (n && !memchr(a, '@', n))
		host = strlen(myhostname) + 1;
	if (n + host + 2 > SMTP_PATH_MAX)
		return rl_fail(why, RL_EPARSE, "address too long", 0);
	buf[0] = '<';
	memcpy(buf + 1, a, n);
	len = 1 + n;
	if (host) {
		buf[len] = '@';
		memcpy(buf + len + 1, myhostname, host - 1);
		len += host;
	}
	buf[len++] = '>';
	return smtp_path_parse(buf, len, allow_null, out, why);
}

void msg_body_init(struct msg_body *b, size_t max, int dot_ends)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
	b->dot_ends = dot_ends;
}

/* Store line content, within the size and line length limits. */
static int body_put(struct msg_body *b, struct rl_buf *out, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (b->linelen + n > SMTP_TEXT_LINE_MAX)
		return RL_EPARSE;
	if (out->len + n > b->max)
		return RL_ETOOBIG;
	b->dot = b->linelen == 0 && n == 1 && p[0] == '.';
	b->linelen += n;
	return rl_buf_append(out, p, n);
}

/* A line ended: the end marker (its dot taken back), or a CRLF. */
static int body_eol(struct msg_body *b, struct rl_buf *out)
{
	if (b->dot && b->dot_ends) {
		out->len--;
		out->data[out->len] = '\0';
		b->done = 1;
		return 0;
	}
	b->dot = 0;
	b->linelen = 0;
	if (out->len + 2 > b->max)
		return RL_ETOOBIG;
	return rl_buf_append(out, "\r\n", 2);
}

int msg_body_feed(struct msg_body *b, const char *p, size_t n, struct rl_buf *out)
{
	size_t i = 0, span;
	int rc = 0;

	while (i < n && !b->done && rc == 0) {
		if (b->cr) {
			/* CR LF ends a line; a CR before anything else stays. */
			b->cr = 0;
			if (p[i] == '\n') {
				rc = body_eol(b, out);
				i++;
			} else {
				rc = body_put(b, out, "\r", 1);
			}
			continue;
		}
		if (p[i] == '\r' || p[i] == '\n') {
			b->cr = p[i] == '\r';
			rc = p[i] == '\n' ? body_eol(b, out) : 0;
			i++;
			continue;
		}
		for (span = i; span < n && p[span] != '\r' && p[span] != '\n'; span++)
			b->eightbit |= (unsigned char)p[span] >= 0x80;
		rc = body_put(b, out, p + i, span - i);
		i = span;
	}
	return rc;
}

int msg_body_finish(struct msg_body *b, struct rl_buf *out)
{
	/* A CR at the very end ends the last line, like CR LF. */
	if (b->done || (!b->cr && b->linelen == 0))
		return 0;
	b->cr = 0;
	return body_eol(b, out);
}

void msg_body_clean(char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\0' || (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n')))
			p[i] = ' ';
	}
}
