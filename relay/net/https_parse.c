/*
 * https_parse: the one piece of an HTTP response that we read ourselves,
 * the media type of its Content-Type field (RFC 9110 section 8.3.1):
 *
 *   media-type = type "/" subtype parameters
 *   parameters = *( OWS ";" OWS [ parameter ] )
 *   parameter  = parameter-name "=" ( token / quoted-string )
 *
 * Pure: no I/O, no allocation, any thread.  Everything else of the
 * response (status line, framing, other fields) is curl's to parse.
 */
#include <stddef.h>
#include <string.h>

#include "https.h"

/* RFC 9110 section 5.6.2: tchar. */
static int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 9110 section 5.6.4: qdtext, and what may follow a backslash. */
static int is_qdtext(unsigned char c)
{
	return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
	       (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

static int is_quotable(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c <= 0x7e) || c >= 0x80;
}

static size_t skip_ows(const char *s, size_t len, size_t i)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

static size_t skip_token(const char *s, size_t len, size_t i)
{
	while (i < len && is_tchar((unsigned char)s[i]))
		i++;
	return i;
}

/* A quoted-string starting at s[*i] == '"'; *i ends past its closing quote. */
static int skip_quoted(const char *s, size_t len, size_t *i, struct rl_why *why)
{
	size_t p = *i + 1;

	while (p < len && s[p] != '"') {
		unsigned char c = (unsigned char)s[p];

		if (c == '\\' && p + 1 < len && is_quotable((unsigned char)s[p + 1]))
			p += 2;
		else if (c != '\\' && is_qdtext(c))
			p++;
		else
			return rl_fail(why, RL_EPARSE, "bad character in a quoted string", p);
	}
	if (p >= len)
		return rl_fail(why, RL_EPARSE, "unterminated quoted string", *i);
	*i = p + 1;
	return 0;
}

/* The parameters after the subtype, from s[i] to the end. */
static int check_params(const char *s, size_t len, size_t i, struct rl_why *why)
{
	size_t start;
	int rc;

	/* Each round consumes at least the ';', so the loop ends. */
	for (;;) {
		i = skip_ows(s, len, i);
		if (i == len)
			return 0;
		if (s[i] != ';')
			return rl_fail(why, RL_EPARSE, "expected ';' before a parameter", i);
		i = skip_ows(s, len, i + 1);
		if (i == len || s[i] == ';')
			continue; /* an empty parameter is allowed */
		start = i;
		i = skip_token(s, len, i);
		if (i == start)
			return rl_fail(why, RL_EPARSE, "bad parameter name", i);
		if (i == len || s[i] != '=')
			return rl_fail(why, RL_EPARSE, "no '=' after a parameter name", i);
		i++;
		if (i < len && s[i] == '"') {
			if ((rc = skip_quoted(s, len, &i, why)) < 0)
				return rc;
			continue;
		}
		start = i;
		i = skip_token(s, len, i);
		if (i == start)
			return rl_fail(why, RL_EPARSE, "bad parameter value", i);
	}
}

int https_media_type(const char *s, size_t len, char *out, size_t outlen, struct rl_why *why)
{
	size_t type, slash, end;
	int rc;

	RL_REQUIRE(s || len == 0);
	RL_REQUIRE(out && outlen > 0);
	out[0] = '\0';
	type = skip_ows(s, len, 0);
	slash = skip_token(s, len, type);
	if (slash == type)
		return rl_fail(why, RL_EPARSE, "no media type", type);
	if (slash == len || s[slash] != '/')
		return rl_fail(why, RL_EPARSE, "no '/' after the type", slash);
	end = skip_token(s, len, slash + 1);
	if (end == slash + 1)
		return rl_fail(why, RL_EPARSE, "no subtype", end);
	if ((rc = check_params(s, len, end, why)) < 0)
		return rc;
	if (end - type >= outlen)
		return rl_fail(why, RL_ETOOBIG, "media type too long", type);
	/* Type and subtype are case-insensitive (RFC 9110 section 8.3.1). */
	for (size_t i = type; i < end; i++) {
		char c = s[i];

		out[i - type] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[end - type] = '\0';
	return 0;
}
