/*
 * rl_line: the bounded line splitter over a text buffer (part of the
 * bounded-buffer code).  It never copies or allocates: each line is a slice
 * of the caller's text.
 */
#include "rl.h"

#include <string.h>

void rl_lines_init(struct rl_lines *it, const char *text, size_t len, size_t max)
{
	RL_REQUIRE(text || len == 0);
	it->text = text;
	it->len = len;
	it->pos = 0;
	it->max = max;
	it->line = 0;
}

/*
 * The checks every line of a text file of ours gets before any of it is
 * read as a value: lines that are too long are refused whole (the callers'
 * fixed limits), and control characters are refused because names and
 * values reach log lines, SMTP greetings and error messages.  A tab is
 * allowed as a blank; a CR is allowed only as part of a CRLF ending, which
 * rl_lines_next() has already removed.
 */
static int line_check(const char *s, size_t n, size_t max, struct rl_why *why)
{
	if (n > max)
		return rl_fail(why, RL_ETOOBIG, "line too long", max);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		/* A NUL gets its own reason: it usually means a binary or
		 * UTF-16 file, which "control character 0x00" would hide. */
		if (ch == '\0')
			return rl_fail(why, RL_EPARSE, "NUL character", i);
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return rl_fail(why, RL_EPARSE, "control character", i);
	}
	return 0;
}

int rl_lines_next(struct rl_lines *it, const char **line, size_t *n, struct rl_why *why)
{
	const char *s, *nl;
	size_t l;
	int rc;

	if (it->pos >= it->len)
		return 0;
	s = it->text + it->pos;
	nl = memchr(s, '\n', it->len - it->pos);
	l = nl ? (size_t)(nl - s) : it->len - it->pos;
	it->pos += l + (nl ? 1 : 0);
	if (l && s[l - 1] == '\r')
		l--;
	it->line++;
	*line = s;
	*n = l;
	rc = line_check(s, l, it->max, why);
	return rc < 0 ? rc : 1;
}
