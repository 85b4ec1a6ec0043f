/*
 * test_https_parse: the Content-Type media type reader of relay/net
 * (https_media_type(), RFC 9110 section 8.3.1).
 */
#include <stdio.h>
#include <string.h>

#include "https.h"
#include "tap.h"

struct type_case {
	const char *in;
	int rc;
	const char *want;
};

static const struct type_case cases[] = {
    {"text/plain", 0, "text/plain"},
    {"Text/PLAIN", 0, "text/plain"},
    {"text/plain; charset=utf-8", 0, "text/plain"},
    {"text/plain;charset=\"utf-8\"", 0, "text/plain"},
    {"  text/plain  ", 0, "text/plain"},
    {"\ttext/plain\t;\tcharset=us-ascii", 0, "text/plain"},
    {"text/plain;", 0, "text/plain"},
    {"text/plain; ; charset=utf-8;", 0, "text/plain"},
    {"text/plain; a=b; c=\"d;e\"; f=\"g\\\"h\"", 0, "text/plain"},
    {"text/html", 0, "text/html"},
    {"application/tlsrpt+gzip", 0, "application/tlsrpt+gzip"},
    {"text/plain; charset=\"\"", 0, "text/plain"},
    {"", RL_EPARSE, ""},
    {"   ", RL_EPARSE, ""},
    {"text", RL_EPARSE, ""},
    {"text/", RL_EPARSE, ""},
    {"/plain", RL_EPARSE, ""},
    {"text /plain", RL_EPARSE, ""},
    {"text/ plain", RL_EPARSE, ""},
    {"text/plain/x", RL_EPARSE, ""},
    {"text/plain charset=utf-8", RL_EPARSE, ""},
    {"text/plain; charset", RL_EPARSE, ""},
    {"text/plain; charset=", RL_EPARSE, ""},
    {"text/plain; =utf-8", RL_EPARSE, ""},
    {"text/plain; charset = utf-8", RL_EPARSE, ""},
    {"text/plain; charset=\"utf-8", RL_EPARSE, ""},
    {"text/plain; charset=\"a\\", RL_EPARSE, ""},
    {"text/plain; charset=\"a\rb\"", RL_EPARSE, ""},
    {"text/plain\r\nX-Injected: 1", RL_EPARSE, ""},
    {"text/pl\x01"
     "ain",
     RL_EPARSE, ""},
    {"text/pl\xc3\xa4in", RL_EPARSE, ""},
    {"text/plain; charset=\"caf\xc3\xa9\"", 0, "text/plain"},
};

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct type_case *c = &cases[i];
		char out[HTTPS_TYPE_MAX];
		struct rl_why why = {0, NULL, 0};
		int rc;

		memset(out, 'x', sizeof(out));
		rc = https_media_type(c->in, strlen(c->in), out, sizeof(out), &why);
		CHECK(rc == c->rc, "\"%s\": rc %d want %d (%s)", c->in, rc, c->rc,
		      why.reason ? why.reason : "-");
		CHECK(strcmp(out, c->want) == 0, "\"%s\": got \"%s\" want \"%s\"", c->in, out,
		      c->want);
		if (rc < 0)
			CHECK(why.code == rc && why.reason, "\"%s\": why not filled", c->in);
	}
}

static void test_bounds(void)
{
	char small[11];

	/* "text/plain" needs 11 bytes with its NUL. */
	CHECK_INT(https_media_type("text/plain", 10, small, sizeof(small), NULL), 0);
	CHECK_STR(small, "text/plain");
	CHECK_INT(https_media_type("text/plain", 10, small, 10, NULL), RL_ETOOBIG);
	CHECK_STR(small, "");
	/* Only len bytes are read: a prefix of a valid type is checked alone. */
	CHECK_INT(https_media_type("text/plainXYZ", 10, small, sizeof(small), NULL), 0);
	CHECK_STR(small, "text/plain");
	CHECK_INT(https_media_type("text/plain; a=\"b\"", 16, small, sizeof(small), NULL),
		  RL_EPARSE);
	/* An embedded NUL is not a token character. */
	CHECK_INT(https_media_type("text/pl\0in", 10, small, sizeof(small), NULL), RL_EPARSE);
	CHECK_INT(https_media_type(NULL, 0, small, sizeof(small), NULL), RL_EPARSE);
}

int main(void)
{
	test_cases();
	test_bounds();
	return TEST_DONE();
}
