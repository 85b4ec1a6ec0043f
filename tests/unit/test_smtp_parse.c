/*
 * test_smtp_parse: the SMTP codec (relay/smtp_parse.c): line splitting,
 * commands, MAIL/RCPT paths and parameters, HELO names, the DATA decoder,
 * and what MX hosts send back: replies and EHLO keywords.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl.h"
#include "smtp.h"
#include "tap.h"

/* A string literal and its length (so NUL bytes can be part of an input). */
#define S(lit) lit, sizeof(lit) - 1

#define CASE_INT(name, got, want)                                          \
	CHECK((long long)(got) == (long long)(want), "%s: got %lld want %lld", \
	      (name), (long long)(got), (long long)(want))

/* Printable form of n bytes: C escapes for CR, LF, NUL and other octets.
 * Four rotating buffers, so one message can show several. */
static const char *esc(const char *p, size_t n)
{
	static char bufs[4][512];
	static int k;
	char *b = bufs[k++ % 4];
	size_t o = 0;

	for (size_t i = 0; i < n && o + 8 < sizeof(bufs[0]); i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r')
			o += (size_t)snprintf(b + o, 8, "\\r");
		else if (c == '\n')
			o += (size_t)snprintf(b + o, 8, "\\n");
		else if (c == '"' || c == '\\')
			o += (size_t)snprintf(b + o, 8, "\\%c", c);
		else if (c < 32 || c >= 127)
			o += (size_t)snprintf(b + o, 8, "\\x%02x", c);
		else
			b[o++] = (char)c;
	}
	if (o + 8 >= sizeof(bufs[0]))
		o += (size_t)snprintf(b + o, 8, "...");
	b[o] = '\0';
	return b;
}

/* Byte-exact comparison that prints both sides escaped. */
#define CASE_MEM(name, got, gotlen, want, wantlen)                          \
	CHECK((gotlen) == (wantlen) && memcmp((got), (want), (wantlen)) == 0,  \
	      "%s: got \"%s\" want \"%s\"", (name), esc((got), (gotlen)),     \
	      esc((want), (wantlen)))

static const char *rc_name(int rc)
{
	static char b[32];

	switch (rc) {
	case 0: return "0";
	case 1: return "1";
	case RL_EPARSE: return "RL_EPARSE";
	case RL_EPROTO: return "RL_EPROTO";
	case RL_ETOOBIG: return "RL_ETOOBIG";
	case -ENOTSUP: return "-ENOTSUP";
	case -ENOMEM: return "-ENOMEM";
	default: snprintf(b, sizeof(b), "%d", rc); return b;
	}
}

#define CASE_RC(name, got, want)                                            \
	do {                                                                \
		int rg_ = (got), rw_ = (want);                              \
		char gn_[32];                                               \
		snprintf(gn_, sizeof(gn_), "%s", rc_name(rg_));             \
		CHECK(rg_ == rw_, "%s: got %s want %s", (name), gn_,        \
		      rc_name(rw_));                                        \
	} while (0)

/* ------------------------------------------------------------------ lines */

static void test_line_next(void)
{
	static const struct {
		const char *name;
		const char *in;
		size_t len;
		int rc;
		size_t linelen, consumed; /* when rc == 1 */
	} cases[] = {
		{ "complete line", S("EHLO client.example\r\n"), 1, 19, 21 },
		{ "complete line then more", S("NOOP\r\nQUIT\r\n"), 1, 4, 6 },
		{ "complete line then partial", S("NOOP\r\nQU"), 1, 4, 6 },
		{ "CRLF at start (empty line)", S("\r\nNOOP\r\n"), 1, 0, 2 },
		{ "CRLF only", S("\r\n"), 1, 0, 2 },
		{ "NUL inside a line is still a line", S("NO\0OP\r\n"), 1, 5, 7 },
		{ "empty buffer", S(""), 0, 0, 0 },
		{ "partial line", S("EHLO client"), 0, 0, 0 },
		{ "CR at end of buffer: need more", S("EHLO client\r"), 0, 0, 0 },
		{ "lone CR: need more", S("\r"), 0, 0, 0 },
		{ "bare LF", S("EHLO client\n"), RL_EPROTO, 0, 0 },
		{ "bare LF at start", S("\n"), RL_EPROTO, 0, 0 },
		{ "bare LF then CRLF", S("NOOP\nQUIT\r\n"), RL_EPROTO, 0, 0 },
		{ "bare CR mid-buffer", S("NO\rOP\r\n"), RL_EPROTO, 0, 0 },
		{ "bare CR mid-buffer, no LF yet", S("NO\rOP"), RL_EPROTO, 0, 0 },
		{ "CR CR LF", S("NOOP\r\r\n"), RL_EPROTO, 0, 0 },
		{ "CR at start then text", S("\rNOOP\r\n"), RL_EPROTO, 0, 0 },
		{ "LF CR (reversed)", S("NOOP\n\r"), RL_EPROTO, 0, 0 },
		{ "bare LF after a good line is next call's problem", S("NOOP\r\nQUIT\n"), 1, 4,
		  6 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t linelen = 12345, consumed = 12345;
		int rc = smtp_line_next(cases[i].in, cases[i].len, &linelen, &consumed);
		char name[128];

		snprintf(name, sizeof(name), "line_next %s \"%s\"", cases[i].name,
			 esc(cases[i].in, cases[i].len));
		CASE_RC(name, rc, cases[i].rc);
		if (rc == 1 && cases[i].rc == 1) {
			CASE_INT(name, linelen, cases[i].linelen);
			CASE_INT(name, consumed, cases[i].consumed);
		}
	}
}

/* --------------------------------------------------------------- commands */

static void test_cmd_parse(void)
{
	static const struct {
		const char *in;
		size_t len;
		int rc;
		int verb;
		const char *arg; /* when rc == 0 */
	} cases[] = {
		{ S("EHLO client.example"), 0, SMTP_V_EHLO, "client.example" },
		{ S("ehlo client.example"), 0, SMTP_V_EHLO, "client.example" },
		{ S("eHlO client.example"), 0, SMTP_V_EHLO, "client.example" },
		{ S("HELO client.example"), 0, SMTP_V_HELO, "client.example" },
		{ S("MAIL FROM:<a@example.com> SIZE=10"), 0, SMTP_V_MAIL,
		  "FROM:<a@example.com> SIZE=10" },
		{ S("mail from:<>"), 0, SMTP_V_MAIL, "from:<>" },
		{ S("RCPT TO:<b@example.com>"), 0, SMTP_V_RCPT, "TO:<b@example.com>" },
		{ S("Rcpt To:<b@example.com>"), 0, SMTP_V_RCPT, "To:<b@example.com>" },
		{ S("DATA"), 0, SMTP_V_DATA, "" },
		{ S("data"), 0, SMTP_V_DATA, "" },
		{ S("RSET"), 0, SMTP_V_RSET, "" },
		{ S("NOOP"), 0, SMTP_V_NOOP, "" },
		{ S("NOOP anything goes"), 0, SMTP_V_NOOP, "anything goes" },
		{ S("QUIT"), 0, SMTP_V_QUIT, "" },
		{ S("quit"), 0, SMTP_V_QUIT, "" },
		{ S("VRFY root"), 0, SMTP_V_VRFY, "root" },
		{ S("EXPN staff"), 0, SMTP_V_EXPN, "staff" },
		{ S("HELP"), 0, SMTP_V_HELP, "" },
		{ S("STARTTLS"), 0, SMTP_V_STARTTLS, "" },
		{ S("StartTLS"), 0, SMTP_V_STARTTLS, "" },
		{ S("BDAT 100 LAST"), 0, SMTP_V_BDAT, "100 LAST" },
		{ S("AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q="), 0, SMTP_V_AUTH, "PLAIN dGVzdAB0ZXN0AHRlc3Q=" },
		/* Trailing spaces are dropped from the argument. */
		{ S("DATA "), 0, SMTP_V_DATA, "" },
		{ S("QUIT   "), 0, SMTP_V_QUIT, "" },
		{ S("MAIL FROM:<a@example.com>   "), 0, SMTP_V_MAIL, "FROM:<a@example.com>" },
		{ S("EHLO x "), 0, SMTP_V_EHLO, "x" },
		/* Only one space after the verb belongs to the separator. */
		{ S("NOOP  x"), 0, SMTP_V_NOOP, " x" },
		/* Unknown verbs are not errors, just unknown. */
		{ S("XYZZY"), 0, SMTP_V_UNKNOWN, "" },
		{ S("XCLIENT ADDR=1.2.3.4"), 0, SMTP_V_UNKNOWN, "ADDR=1.2.3.4" },
		{ S("MAILX FROM:<>"), 0, SMTP_V_UNKNOWN, "FROM:<>" },
		{ S("MAI FROM:<>"), 0, SMTP_V_UNKNOWN, "FROM:<>" },
		{ S("STARTTLSX"), 0, SMTP_V_UNKNOWN, "" },
		{ S(""), 0, SMTP_V_UNKNOWN, "" },
		/* NUL anywhere is refused. */
		{ S("NOOP\0"), RL_EPARSE, 0, NULL },
		{ S("NO\0OP"), RL_EPARSE, 0, NULL },
		{ S("\0"), RL_EPARSE, 0, NULL },
		{ S("MAIL FROM:<a@example.com>\0 SIZE=1"), RL_EPARSE, 0, NULL },
		/* smtp.h: 8-bit bytes in the verb are RL_EPARSE. */
		{ S("M\xc3\x81IL FROM:<>"), RL_EPARSE, 0, NULL },
		{ S("NOOP\xff"), RL_EPARSE, 0, NULL },
		{ S("\x80"), RL_EPARSE, 0, NULL },
		/* smtp.h: a verb not followed by space or end of line is RL_EPARSE. */
		{ S("NOOP\tx"), RL_EPARSE, 0, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_cmd c;
		struct rl_why why = { 0, NULL, 0 };
		char name[160];
		int rc;

		memset(&c, 0xA5, sizeof(c));
		rc = smtp_cmd_parse(cases[i].in, cases[i].len, &c, &why);
		snprintf(name, sizeof(name), "cmd_parse \"%s\"", esc(cases[i].in, cases[i].len));
		CASE_RC(name, rc, cases[i].rc);
		if (rc == 0 && cases[i].rc == 0) {
			size_t al = strlen(cases[i].arg);

			CASE_INT(name, c.verb, cases[i].verb);
			CHECK(c.arg != NULL, "%s: arg is NULL", name);
			if (c.arg) {
				CASE_MEM(name, c.arg, c.arglen, cases[i].arg, al);
				/* The argument is a slice of the line. */
				CHECK(c.arg >= cases[i].in && c.arg + c.arglen <= cases[i].in + cases[i].len,
				      "%s: arg is not a slice of the line", name);
			}
		}
		if (rc < 0 && cases[i].rc < 0) {
			CASE_INT(name, why.code, rc);
			CHECK(why.reason != NULL, "%s: no reason given", name);
		}
	}

	/* A NULL why is allowed. */
	{
		struct smtp_cmd c;
		int rc = smtp_cmd_parse(S("NO\0OP"), &c, NULL);

		CASE_RC("cmd_parse NUL with NULL why", rc, RL_EPARSE);
	}
}

/* ------------------------------------------------------------- MAIL FROM */

struct mail_case {
	const char *in;
	size_t len;
	int rc;
	const char *addr; /* when rc == 0 */
	int utf8;
	int64_t size;
	int body;
	int smtputf8;
};

static void run_mail(const char *label, const struct mail_case *t)
{
	struct smtp_path from;
	struct smtp_mail_params mp;
	struct rl_why why = { 0, NULL, 0 };
	char name[200];
	int rc;

	memset(&from, 0xA5, sizeof(from));
	memset(&mp, 0xA5, sizeof(mp));
	rc = smtp_mail_parse(t->in, t->len, &from, &mp, &why);
	snprintf(name, sizeof(name), "mail_parse %s\"%s\"", label, esc(t->in, t->len));
	CASE_RC(name, rc, t->rc);
	if (rc == 0 && t->rc == 0) {
		CASE_MEM(name, from.addr, strnlen(from.addr, sizeof(from.addr)), t->addr,
			 strlen(t->addr));
		CASE_INT(name, from.len, strlen(t->addr));
		CASE_INT(name, from.utf8, t->utf8);
		CASE_INT(name, mp.size, t->size);
		CASE_INT(name, mp.body, t->body);
		CASE_INT(name, mp.smtputf8, t->smtputf8);
	}
	if (rc < 0 && t->rc < 0) {
		CASE_INT(name, why.code, rc);
		CHECK(why.reason != NULL, "%s: no reason given", name);
		CHECK(why.offset <= t->len, "%s: offset %zu past input", name, why.offset);
	}
}

#define NB SMTP_BODY_NONE
#define B7 SMTP_BODY_7BIT
#define B8 SMTP_BODY_8BITMIME

static void test_mail_parse(void)
{
	static const struct mail_case cases[] = {
		/* The null path and plain addresses. */
		{ S("FROM:<>"), 0, "", 0, -1, NB, 0 },
		{ S("FROM:<a@example.com>"), 0, "a@example.com", 0, -1, NB, 0 },
		{ S("from:<a@example.com>"), 0, "a@example.com", 0, -1, NB, 0 },
		{ S("From:<First.Last+tag@Mail.Example.COM>"), 0, "First.Last+tag@Mail.Example.COM",
		  0, -1, NB, 0 },
		{ S("FROM:<a!#$%&'*+-/=?^_`{|}~@example.com>"), 0,
		  "a!#$%&'*+-/=?^_`{|}~@example.com", 0, -1, NB, 0 },
		/* Space after the colon (Postfix-lenient). */
		{ S("FROM: <a@example.com>"), 0, "a@example.com", 0, -1, NB, 0 },
		{ S("FROM:   <>"), 0, "", 0, -1, NB, 0 },
		/* Parameters. */
		{ S("FROM:<a@example.com> SIZE=12345"), 0, "a@example.com", 0, 12345, NB, 0 },
		{ S("FROM:<a@example.com> size=0"), 0, "a@example.com", 0, 0, NB, 0 },
		{ S("FROM:<a@example.com> SIZE=999999999999999999"), 0, "a@example.com", 0,
		  999999999999999999LL, NB, 0 },
		{ S("FROM:<a@example.com> BODY=8BITMIME"), 0, "a@example.com", 0, -1, B8, 0 },
		{ S("FROM:<a@example.com> body=8bitmime"), 0, "a@example.com", 0, -1, B8, 0 },
		{ S("FROM:<a@example.com> BODY=7BIT"), 0, "a@example.com", 0, -1, B7, 0 },
		{ S("FROM:<a@example.com> SMTPUTF8"), 0, "a@example.com", 0, -1, NB, 1 },
		{ S("FROM:<a@example.com> smtputf8"), 0, "a@example.com", 0, -1, NB, 1 },
		{ S("FROM:<> SIZE=100 BODY=8BITMIME SMTPUTF8"), 0, "", 0, 100, B8, 1 },
		{ S("FROM:<a@example.com>  SIZE=1   BODY=7BIT  "), 0, "a@example.com", 0, 1, B7, 0 },
		{ S("FROM:<a@example.com> "), 0, "a@example.com", 0, -1, NB, 0 },
		/* Unknown or unsupported parameters: -ENOTSUP (555 5.5.4). */
		{ S("FROM:<a@example.com> BODY=BINARYMIME"), -ENOTSUP, NULL, 0, 0, 0, 0 },
		/* RFC 4954 section 5: AUTH=<> and AUTH=xtext are taken (and dropped). */
		{ S("FROM:<a@example.com> AUTH=<>"), 0, "a@example.com", 0, -1, NB, 0 },
		{ S("FROM:<a@example.com> AUTH=u+2Bx@example.com SIZE=5"), 0, "a@example.com", 0, 5, NB, 0 },
		{ S("FROM:<a@example.com> AUTH="), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com> AUTH=a=b"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com> AUTH=a+2"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com> AUTH=a+2b"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com> AUTH"), -ENOTSUP, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com> RET=HDRS"), -ENOTSUP, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com> SMTPUTF8=yes"), -ENOTSUP, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com> SIZE=10 XFOO"), -ENOTSUP, NULL, 0, 0, 0, 0 },
		/* Bad parameter values and bad syntax: RL_EPARSE. */
		{ S("FROM:<a@example.com> SIZE=abc"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com> SIZE="), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com> SIZE=-1"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com> SIZE=1234567890123456789"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com>SIZE=1"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com>>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM<a@example.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM <a@example.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("TO:<a@example.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S(""), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		/* Missing brackets. */
		{ S("FROM:a@example.com"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:a@example.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com SIZE=1"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		/* A mailbox needs a local part and a domain. */
		{ S("FROM:<a>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<@example.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a b@example.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@b@example.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a(x)@example.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		/* Source routes are accepted and dropped. */
		{ S("FROM:<@relay.example:user@example.com>"), 0, "user@example.com", 0, -1, NB, 0 },
		{ S("FROM:<@r1.example,@r2.example:user@example.com> SIZE=5"), 0,
		  "user@example.com", 0, 5, NB, 0 },
		/* Quoted local parts. */
		{ S("FROM:<\"john doe\"@example.com>"), 0, "\"john doe\"@example.com", 0, -1, NB, 0 },
		{ S("FROM:<\"a\\\"b\"@example.com>"), 0, "\"a\\\"b\"@example.com", 0, -1, NB, 0 },
		{ S("FROM:<\"a@b\"@example.com>"), 0, "\"a@b\"@example.com", 0, -1, NB, 0 },
		{ S("FROM:<\"abc@example.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<\"a\tb\"@example.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		/* Address literals. */
		{ S("FROM:<a@[192.0.2.1]>"), 0, "a@[192.0.2.1]", 0, -1, NB, 0 },
		{ S("FROM:<a@[IPv6:2001:db8::1]>"), 0, "a@[IPv6:2001:db8::1]", 0, -1, NB, 0 },
		{ S("FROM:<a@[]>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@[192.0.2.1>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@[192.0.2.1 ]>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		/* UTF-8 addresses need SMTPUTF8. */
		{ S("FROM:<j\xc3\xb6rg@example.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<j\xc3\xb6rg@example.com> SMTPUTF8"), 0, "j\xc3\xb6rg@example.com", 1, -1,
		  NB, 1 },
		{ S("FROM:<a@b\xc3\xbc" "cher.example> SMTPUTF8"), 0, "a@b\xc3\xbc" "cher.example", 1,
		  -1, NB, 1 },
		{ S("FROM:<a@b\xc3\xbc" "cher.example>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a> "
		    "SMTPUTF8 BODY=8BITMIME"),
		  0, "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", 1,
		  -1, B8, 1 },
		{ S("FROM:<\xf0\x9f\x98\x80@example.com> SMTPUTF8"), 0, "\xf0\x9f\x98\x80@example.com",
		  1, -1, NB, 1 },
		/* Invalid UTF-8 is refused even with SMTPUTF8. */
		{ S("FROM:<j\xf6rg@example.com> SMTPUTF8"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a\xc3@example.com> SMTPUTF8"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a\xc0\xaf@example.com> SMTPUTF8"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a\xe0\x80\xaf@example.com> SMTPUTF8"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a\xed\xa0\x80@example.com> SMTPUTF8"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a\xf4\x90\x80\x80@example.com> SMTPUTF8"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a\x80@example.com> SMTPUTF8"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@b\xff.example> SMTPUTF8"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<\"j\xf6rg\"@example.com> SMTPUTF8"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		/* Domain labels. */
		{ S("FROM:<a@ex-ample.com>"), 0, "a@ex-ample.com", 0, -1, NB, 0 },
		{ S("FROM:<a@x--y.example>"), 0, "a@x--y.example", 0, -1, NB, 0 },
		{ S("FROM:<a@123.example>"), 0, "a@123.example", 0, -1, NB, 0 },
		{ S("FROM:<a@localhost>"), 0, "a@localhost", 0, -1, NB, 0 },
		{ S("FROM:<a@-example.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example-.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com->"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.-com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@ex..com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@.example.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com.>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@ex_ample.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@ex ample.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example.com >"), RL_EPARSE, NULL, 0, 0, 0, 0 },
		{ S("FROM:<a@example\0.com>"), RL_EPARSE, NULL, 0, 0, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_mail("", &cases[i]);
}

/* Paths and labels at and past their limits, built at run time. */
static void test_mail_limits(void)
{
	static const struct {
		const char *name;
		size_t local;        /* 'a' octets in the local part */
		size_t labels[5];    /* octets of each domain label (0 ends) */
		int rc;
	} cases[] = {
		/* path = "<" local "@" domain ">" <= 256 octets (SMTP_PATH_MAX) */
		{ "path 254+2 octets", 242, { 7, 3 }, 0 },        /* 242+1+11 = 254 */
		{ "path 255+2 octets", 243, { 7, 3 }, RL_EPARSE },
		{ "path far too long", 1000, { 7, 3 }, RL_EPARSE },
		{ "label 63", 1, { 63, 7 }, 0 },
		{ "label 64", 1, { 64, 7 }, RL_EPARSE },
		{ "last label 63", 1, { 7, 63 }, 0 },
		{ "last label 64", 1, { 7, 64 }, RL_EPARSE },
		{ "domain 251 octets", 1, { 63, 63, 63, 59 }, 0 },   /* 63*3+59+3 = 251 */
		{ "domain 255 octets", 1, { 63, 63, 63, 63 }, RL_EPARSE }, /* path 259 */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char in[1500], addr[1400], label[64];
		size_t o = 0;
		struct mail_case t;

		memset(addr, 'a', cases[i].local);
		o = cases[i].local;
		addr[o++] = '@';
		for (size_t k = 0; k < 5 && cases[i].labels[k]; k++) {
			if (k)
				addr[o++] = '.';
			memset(addr + o, 'a' + (int)k + 1, cases[i].labels[k]);
			o += cases[i].labels[k];
		}
		addr[o] = '\0';
		snprintf(in, sizeof(in), "FROM:<%s> SIZE=1", addr);
		t.in = in;
		t.len = strlen(in);
		t.rc = cases[i].rc;
		t.addr = addr;
		t.utf8 = 0;
		t.size = 1;
		t.body = NB;
		t.smtputf8 = 0;
		snprintf(label, sizeof(label), "[%s] ", cases[i].name);
		run_mail(label, &t);
	}
}

/* REQUIRETLS (RFC 8689 section 2): a MAIL parameter without a value. */
static void test_mail_requiretls(void)
{
	static const struct {
		const char *in;
		size_t len;
		int rc;
		int requiretls; /* when rc == 0 */
		int smtputf8;
		int64_t size;
	} t[] = {
		{ S("FROM:<a@example.com>"), 0, 0, 0, -1 },
		{ S("FROM:<a@example.com> REQUIRETLS"), 0, 1, 0, -1 },
		{ S("FROM:<a@example.com> requiretls"), 0, 1, 0, -1 },
		{ S("FROM:<a@example.com> RequireTLS"), 0, 1, 0, -1 },
		{ S("FROM:<> REQUIRETLS"), 0, 1, 0, -1 },
		{ S("FROM:<a@example.com> SIZE=10 REQUIRETLS SMTPUTF8"), 0, 1, 1, 10 },
		{ S("FROM:<a@example.com> REQUIRETLS REQUIRETLS"), 0, 1, 0, -1 },
		{ S("FROM:<a@example.com>  REQUIRETLS  "), 0, 1, 0, -1 },
		/* No value, and nothing that merely starts or ends like it. */
		{ S("FROM:<a@example.com> REQUIRETLS=yes"), -ENOTSUP, 0, 0, 0 },
		{ S("FROM:<a@example.com> REQUIRETLS="), -ENOTSUP, 0, 0, 0 },
		{ S("FROM:<a@example.com> REQUIRETL"), -ENOTSUP, 0, 0, 0 },
		{ S("FROM:<a@example.com> REQUIRETLSX"), -ENOTSUP, 0, 0, 0 },
		{ S("FROM:<a@example.com> XREQUIRETLS"), -ENOTSUP, 0, 0, 0 },
		{ S("FROM:<a@example.com> REQUIRE-TLS"), -ENOTSUP, 0, 0, 0 },
		{ S("FROM:<a@example.com> REQUIRETLS\0"), -ENOTSUP, 0, 0, 0 },
		{ S("FROM:<a@example.com>REQUIRETLS"), RL_EPARSE, 0, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct smtp_path from;
		struct smtp_mail_params mp;
		struct rl_why why = { 0, NULL, 0 };
		char name[200];
		int rc;

		memset(&mp, 0xA5, sizeof(mp));
		rc = smtp_mail_parse(t[i].in, t[i].len, &from, &mp, &why);
		snprintf(name, sizeof(name), "mail_parse requiretls \"%s\"", esc(t[i].in, t[i].len));
		CASE_RC(name, rc, t[i].rc);
		if (rc == 0 && t[i].rc == 0) {
			CASE_INT(name, mp.requiretls, t[i].requiretls);
			CASE_INT(name, mp.smtputf8, t[i].smtputf8);
			CASE_INT(name, mp.size, t[i].size);
		}
		if (rc < 0 && t[i].rc < 0)
			CHECK(why.reason != NULL, "%s: no reason given", name);
	}
}

/* ---------------------------------------------------------------- RCPT TO */

/* Address literals (RFC 5321 4.1.3): IPv4 and IPv6 only, and valid. */
static void test_literals(void)
{
	static const struct {
		const char *in;
		int rc;
		int literal;
	} cases[] = {
		{ "TO:<u@[127.0.4.100]>", 0, SMTP_LIT_IPV4 },
		{ "TO:<u@[0.0.0.0]>", 0, SMTP_LIT_IPV4 },
		{ "TO:<u@[255.255.255.255]>", 0, SMTP_LIT_IPV4 },
		{ "TO:<u@[001.02.3.4]>", 0, SMTP_LIT_IPV4 }, /* Snum = 1*3DIGIT */
		{ "TO:<u@[IPv6:::1]>", 0, SMTP_LIT_IPV6 },
		{ "TO:<u@[ipv6:2001:db8::1]>", 0, SMTP_LIT_IPV6 },
		{ "TO:<u@[IPv6:2001:db8:0:0:0:0:0:1]>", 0, SMTP_LIT_IPV6 },
		{ "TO:<u@[IPv6:::ffff:192.0.2.1]>", 0, SMTP_LIT_IPV6 },
		{ "TO:<u@example.com>", 0, SMTP_LIT_NONE },
		{ "TO:<u@[300.1.1.1]>", RL_EPARSE, 0 },
		{ "TO:<u@[256.0.0.0]>", RL_EPARSE, 0 },
		{ "TO:<u@[1.2.3]>", RL_EPARSE, 0 },
		{ "TO:<u@[1.2.3.4.5]>", RL_EPARSE, 0 },
		{ "TO:<u@[1..2.3]>", RL_EPARSE, 0 },
		{ "TO:<u@[1.2.3.4.]>", RL_EPARSE, 0 },
		{ "TO:<u@[.1.2.3.4]>", RL_EPARSE, 0 },
		{ "TO:<u@[1234.1.1.1]>", RL_EPARSE, 0 },
		{ "TO:<u@[-1.1.1.1]>", RL_EPARSE, 0 },
		{ "TO:<u@[ 1.1.1.1]>", RL_EPARSE, 0 },
		{ "TO:<u@[]>", RL_EPARSE, 0 },
		{ "TO:<u@[1.2.3.4>", RL_EPARSE, 0 },
		{ "TO:<u@[::1]>", RL_EPARSE, 0 },            /* needs the IPv6: tag */
		{ "TO:<u@[IPv6:]>", RL_EPARSE, 0 },
		{ "TO:<u@[IPv6:1.2.3.4]>", RL_EPARSE, 0 },
		{ "TO:<u@[IPv6:2001:db8:::1]>", RL_EPARSE, 0 },
		{ "TO:<u@[IPv6:12345::1]>", RL_EPARSE, 0 },
		{ "TO:<u@[IPv6:2001:db8::1%eth0]>", RL_EPARSE, 0 },
		{ "TO:<u@[IPv6:0000:0000:0000:0000:0000:0000:0000:0000:0]>", RL_EPARSE, 0 },
		{ "TO:<u@[x-tag:whatever]>", RL_EPARSE, 0 }, /* no other tag exists */
		{ "TO:<u@[1.2.3.4]x>", RL_EPARSE, 0 },
		{ "TO:<u@[1.2.3.4].example>", RL_EPARSE, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_path to;
		struct smtp_mail_params mp;
		char name[160], from[160];
		size_t len = strlen(cases[i].in);
		int rc = smtp_rcpt_parse(cases[i].in, len, &to, NULL);

		snprintf(name, sizeof(name), "literal \"%s\"", cases[i].in);
		CASE_RC(name, rc, cases[i].rc);
		if (rc == 0 && cases[i].rc == 0)
			CASE_INT(name, to.literal, cases[i].literal);
		/* MAIL FROM reads paths the same way. */
		snprintf(from, sizeof(from), "FROM:%s", cases[i].in + 3);
		rc = smtp_mail_parse(from, strlen(from), &to, &mp, NULL);
		CASE_RC(from, rc, cases[i].rc);
		if (rc == 0 && cases[i].rc == 0)
			CASE_INT(from, to.literal, cases[i].literal);
	}
}

static void test_rcpt_parse(void)
{
	static const struct {
		const char *in;
		size_t len;
		int rc;
		const char *addr;
		int utf8;
	} cases[] = {
		{ S("TO:<b@example.com>"), 0, "b@example.com", 0 },
		{ S("to:<b@example.com>"), 0, "b@example.com", 0 },
		{ S("To: <b@example.com>"), 0, "b@example.com", 0 },
		{ S("TO:<b@example.com>   "), 0, "b@example.com", 0 },
		{ S("TO:<@r.example:b@example.com>"), 0, "b@example.com", 0 },
		{ S("TO:<b@[192.0.2.1]>"), 0, "b@[192.0.2.1]", 0 },
		{ S("TO:<\"b c\"@example.com>"), 0, "\"b c\"@example.com", 0 },
		/* UTF-8 is parsed; whether SMTPUTF8 was declared is the caller's check. */
		{ S("TO:<j\xc3\xb6rg@example.com>"), 0, "j\xc3\xb6rg@example.com", 1 },
		/* The path needs a domain; the null path is refused. */
		{ S("TO:<b>"), RL_EPARSE, NULL, 0 },
		{ S("TO:<postmaster>"), RL_EPARSE, NULL, 0 },
		{ S("TO:<b@>"), RL_EPARSE, NULL, 0 },
		{ S("TO:<>"), RL_EPARSE, NULL, 0 },
		{ S("TO:<> "), RL_EPARSE, NULL, 0 },
		/* Syntax. */
		{ S("TO:b@example.com"), RL_EPARSE, NULL, 0 },
		{ S("TO:<b@example.com"), RL_EPARSE, NULL, 0 },
		{ S("FROM:<b@example.com>"), RL_EPARSE, NULL, 0 },
		{ S("TO"), RL_EPARSE, NULL, 0 },
		{ S(""), RL_EPARSE, NULL, 0 },
		{ S("TO:<b@-example.com>"), RL_EPARSE, NULL, 0 },
		{ S("TO:<b\xff@example.com>"), RL_EPARSE, NULL, 0 },
		/* No RCPT parameters are offered. */
		{ S("TO:<b@example.com> NOTIFY=NEVER"), -ENOTSUP, NULL, 0 },
		{ S("TO:<b@example.com> ORCPT=rfc822;b@example.com"), -ENOTSUP, NULL, 0 },
		{ S("TO:<b@example.com>  SIZE=1 "), -ENOTSUP, NULL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_path to;
		struct rl_why why = { 0, NULL, 0 };
		char name[160];
		int rc;

		memset(&to, 0xA5, sizeof(to));
		rc = smtp_rcpt_parse(cases[i].in, cases[i].len, &to, &why);
		snprintf(name, sizeof(name), "rcpt_parse \"%s\"", esc(cases[i].in, cases[i].len));
		CASE_RC(name, rc, cases[i].rc);
		if (rc == 0 && cases[i].rc == 0) {
			CASE_MEM(name, to.addr, strnlen(to.addr, sizeof(to.addr)), cases[i].addr,
				 strlen(cases[i].addr));
			CASE_INT(name, to.len, strlen(cases[i].addr));
			CASE_INT(name, to.utf8, cases[i].utf8);
		}
		if (rc < 0 && cases[i].rc < 0) {
			CASE_INT(name, why.code, rc);
			CHECK(why.reason != NULL, "%s: no reason given", name);
		}
	}
}

/* ------------------------------------------------------------- HELO names */

static void test_helo_valid(void)
{
	static const struct {
		const char *in;
		size_t len;
		int want;
	} cases[] = {
		{ S("client.example.com"), 1 },
		{ S("localhost"), 1 },
		{ S("Mail-1.Example.COM"), 1 },
		{ S("[192.0.2.1]"), 1 },
		{ S("[IPv6:2001:db8::1]"), 1 },
		{ S(""), 0 },
		{ S("-client.example"), 0 },
		{ S("client-.example"), 0 },
		{ S("client.example-"), 0 },
		{ S("client..example"), 0 },
		{ S(".client.example"), 0 },
		{ S("client example"), 0 },
		{ S("client_1.example"), 0 },
		{ S("client.example>"), 0 },
		{ S("<client.example>"), 0 },
		{ S("[192.0.2.1"), 0 },
		{ S("[192.0.2.1]x"), 0 },
		{ S("[]"), 0 },
		{ S("client\0.example"), 0 },
		{ S("client.ex\xff"), 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[160];

		snprintf(name, sizeof(name), "helo_valid \"%s\"", esc(cases[i].in, cases[i].len));
		CASE_INT(name, smtp_helo_valid(cases[i].in, cases[i].len) != 0, cases[i].want);
	}

	/* Label and name lengths. */
	{
		static const struct {
			size_t labels[6];
			int want;
		} lens[] = {
			{ { 63, 7 }, 1 },
			{ { 64, 7 }, 0 },
			{ { 7, 64 }, 0 },
			{ { 63, 63, 63, 63 }, 1 },     /* 255 octets */
			{ { 63, 63, 63, 61, 1 }, 1 },  /* 255 octets */
			{ { 63, 63, 63, 62, 1 }, 0 },  /* 256 octets */
		};

		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			char h[400], name[64];
			size_t o = 0;

			for (size_t k = 0; k < 6 && lens[i].labels[k]; k++) {
				if (k)
					h[o++] = '.';
				memset(h + o, 'a' + (int)k, lens[i].labels[k]);
				o += lens[i].labels[k];
			}
			snprintf(name, sizeof(name), "helo_valid %zu octets, row %zu", o, i);
			CASE_INT(name, smtp_helo_valid(h, o) != 0, lens[i].want);
		}
	}
}

/* ------------------------------------------------------------ DATA decoder */

struct data_case {
	const char *name;
	const char *in;
	size_t len;
	size_t limit;     /* output buffer limit; 0: 1 MiB */
	const char *want; /* content (with overflow: what out must be a prefix of) */
	size_t wantlen;
	int done;
	size_t consumed;
	int rc;
	int overflow, long_line, eightbit;
};

struct data_result {
	int rc, done, overflow, long_line, eightbit;
	size_t consumed;
	uint64_t total;
	struct rl_buf out;
};

/*
 * Feed t->in in pieces: first `first` octets, then `chunk` octets at a
 * time, until done, an error, or the input ends.
 */
static void data_run(const struct data_case *t, size_t first, size_t chunk,
		     struct data_result *r)
{
	struct smtp_data d;
	size_t pos = 0;

	smtp_data_init(&d);
	rl_buf_init(&r->out, t->limit ? t->limit : 1 << 20);
	r->rc = 0;
	while (pos < t->len) {
		size_t n = pos == 0 && first ? first : chunk, used = 12345;

		if (n > t->len - pos)
			n = t->len - pos;
		r->rc = smtp_data_feed(&d, t->in + pos, n, &r->out, &used);
		CHECK(used <= n, "%s: consumed %zu of %zu", t->name, used, n);
		if (used > n)
			break;
		pos += used;
		if (r->rc < 0 || d.done)
			break;
		CHECK(used == n, "%s: consumed %zu of %zu without done or error", t->name, used, n);
		if (used != n)
			break;
	}
	r->consumed = pos;
	r->done = d.done;
	r->overflow = d.overflow;
	r->long_line = d.long_line;
	r->eightbit = d.eightbit;
	r->total = d.total;
}

static void data_check(const struct data_case *t, const char *how, const struct data_result *r)
{
	char name[160];

	snprintf(name, sizeof(name), "data %s (%s)", t->name, how);
	CASE_RC(name, r->rc, t->rc);
	CASE_INT(name, r->done, t->done);
	CASE_INT(name, r->consumed, t->consumed);
	CASE_INT(name, r->overflow, t->overflow);
	CASE_INT(name, r->long_line, t->long_line);
	CASE_INT(name, r->eightbit, t->eightbit);
	if (!t->overflow) {
		CASE_MEM(name, r->out.data ? r->out.data : "", r->out.len, t->want, t->wantlen);
		CASE_INT(name, r->total, t->wantlen);
	} else {
		/* What was kept is a prefix of the content, within the limit; the
		 * total still counts every content octet. */
		CHECK(r->out.len <= t->limit, "%s: out %zu past limit %zu", name, r->out.len,
		      t->limit);
		CHECK(r->out.len <= t->wantlen &&
			      (r->out.len == 0 || memcmp(r->out.data, t->want, r->out.len) == 0),
		      "%s: got \"%s\", not a prefix of \"%s\"", name,
		      esc(r->out.data ? r->out.data : "", r->out.len), esc(t->want, t->wantlen));
		CASE_INT(name, r->total, t->wantlen);
	}
}

/* Whole, one octet at a time, and split in two at every offset. */
static void data_case_run(const struct data_case *t)
{
	struct data_result r;
	char how[64];

	data_run(t, 0, t->len ? t->len : 1, &r);
	data_check(t, "whole", &r);
	rl_buf_fini(&r.out);
	data_run(t, 0, 1, &r);
	data_check(t, "byte at a time", &r);
	rl_buf_fini(&r.out);
	for (size_t k = 1; k < t->len; k++) {
		data_run(t, k, t->len, &r);
		snprintf(how, sizeof(how), "split at %zu", k);
		data_check(t, how, &r);
		rl_buf_fini(&r.out);
	}
}

/* Content literal and its length. */
#define W(lit) lit, sizeof(lit) - 1
#define ALL(lit) sizeof(lit) - 1

static void test_data(void)
{
	static const struct data_case cases[] = {
		{ "simple message", S("Subject: hi\r\n\r\nHello\r\n.\r\n"), 0,
		  W("Subject: hi\r\n\r\nHello\r\n"), 1, ALL("Subject: hi\r\n\r\nHello\r\n.\r\n"), 0,
		  0, 0, 0 },
		{ "dot-unstuffing ..", S("..\r\n.\r\n"), 0, W(".\r\n"), 1, 7, 0, 0, 0, 0 },
		{ "dot-unstuffing .x", S(".x\r\n.\r\n"), 0, W("x\r\n"), 1, 7, 0, 0, 0, 0 },
		{ "dot-unstuffing mid message", S("a\r\n..b\r\n...\r\n. \r\n.\r\n"), 0,
		  W("a\r\n.b\r\n..\r\n \r\n"), 1, ALL("a\r\n..b\r\n...\r\n. \r\n.\r\n"), 0, 0, 0,
		  0 },
		{ "dots not at line start kept", S("a.\r\n a.b .\r\nx..\r\n.\r\n"), 0,
		  W("a.\r\n a.b .\r\nx..\r\n"), 1, ALL("a.\r\n a.b .\r\nx..\r\n.\r\n"), 0, 0, 0, 0 },
		{ "end marker as first line: empty message", S(".\r\n"), 0, W(""), 1, 3, 0, 0, 0, 0 },
		{ "empty line then end", S("\r\n.\r\n"), 0, W("\r\n"), 1, 5, 0, 0, 0, 0 },
		{ "bytes after the end not consumed", S("Hello\r\n.\r\nQUIT\r\n"), 0, W("Hello\r\n"),
		  1, 10, 0, 0, 0, 0 },
		{ "pipelined command after end", S("x\r\n.\r\nMAIL FROM:<>\r\n"), 0, W("x\r\n"), 1,
		  6, 0, 0, 0, 0 },
		{ "not ended: complete lines", S("Hello\r\nWorld\r\n"), 0, W("Hello\r\nWorld\r\n"),
		  0, 14, 0, 0, 0, 0 },
		{ "not ended: trailing CR", S("Hello\r"), 0, W("Hello"), 0, 6, 0, 0, 0, 0 },
		{ "not ended: dot", S("Hello\r\n."), 0, W("Hello\r\n"), 0, 8, 0, 0, 0, 0 },
		{ "not ended: dot CR", S("Hello\r\n.\r"), 0, W("Hello\r\n"), 0, 9, 0, 0, 0, 0 },
		{ "NUL in content is content", S("a\0b\r\n.\r\n"), 0, W("a\0b\r\n"), 1, 8, 0, 0, 0,
		  0 },
		/* Smuggling: only CRLF.CRLF ends the data; every other variant is an error. */
		{ "smuggling \\n.\\n", S("Hello\n.\nMAIL FROM:<>\r\n"), 0, W("Hello"), 0, 5,
		  RL_EPROTO, 0, 0, 0 },
		{ "smuggling \\r\\n.\\r", S("Hello\r\n.\rMAIL FROM:<>\r\n"), 0, W("Hello\r\n"), 0,
		  9, RL_EPROTO, 0, 0, 0 },
		{ "smuggling \\n.\\r\\n", S("Hello\n.\r\nMAIL FROM:<>\r\n"), 0, W("Hello"), 0, 5,
		  RL_EPROTO, 0, 0, 0 },
		{ "smuggling \\r.\\r\\n", S("Hello\r.\r\nMAIL FROM:<>\r\n"), 0, W("Hello"), 0, 6,
		  RL_EPROTO, 0, 0, 0 },
		{ "smuggling \\r\\n.\\n", S("Hello\r\n.\nMAIL FROM:<>\r\n"), 0, W("Hello\r\n"), 0,
		  8, RL_EPROTO, 0, 0, 0 },
		{ "smuggling .\\n as first line", S(".\nMAIL FROM:<>\r\n"), 0, W(""), 0, 1,
		  RL_EPROTO, 0, 0, 0 },
		{ "smuggling .\\r as first line", S(".\rMAIL FROM:<>\r\n"), 0, W(""), 0, 2,
		  RL_EPROTO, 0, 0, 0 },
		{ "smuggling \\n.\\n then proper end", S("Hello\n.\n\r\n.\r\n"), 0, W("Hello"), 0,
		  5, RL_EPROTO, 0, 0, 0 },
		{ "bare LF in a line", S("a\nb\r\n.\r\n"), 0, W("a"), 0, 1, RL_EPROTO, 0, 0, 0 },
		{ "bare CR in a line", S("a\rb\r\n.\r\n"), 0, W("a"), 0, 2, RL_EPROTO, 0, 0, 0 },
		{ "CR CR LF", S("a\r\r\n.\r\n"), 0, W("a"), 0, 2, RL_EPROTO, 0, 0, 0 },
		{ "bare LF as first octet", S("\n.\r\n"), 0, W(""), 0, 0, RL_EPROTO, 0, 0, 0 },
		/* Overflow: keeps consuming to the end, counts every octet. */
		{ "overflow", S("0123456789\r\nabc\r\n.\r\nQUIT\r\n"), 8, W("0123456789\r\nabc\r\n"),
		  1, ALL("0123456789\r\nabc\r\n.\r\n"), 0, 1, 0, 0 },
		{ "overflow on the line end", S("Hello\r\n.\r\n"), 6, W("Hello\r\n"), 1, 10, 0, 1, 0,
		  0 },
		{ "exactly at the limit", S("Hello\r\n.\r\n"), 7, W("Hello\r\n"), 1, 10, 0, 0, 0, 0 },
		{ "overflow then smuggling still an error", S("0123456789\n.\nX"), 4,
		  W("0123456789"), 0, 10, RL_EPROTO, 1, 0, 0 },
		/* 8-bit octets are noted. */
		{ "8-bit octet", S("caf\xc3\xa9\r\n.\r\n"), 0, W("caf\xc3\xa9\r\n"), 1, 10, 0, 0, 0,
		  1 },
		{ "8-bit stuffed line", S("..\xff\r\n.\r\n"), 0, W(".\xff\r\n"), 1, 8, 0, 0, 0, 1 },
		{ "7-bit only", S("\x7f\x01\r\n.\r\n"), 0, W("\x7f\x01\r\n"), 1, 7, 0, 0, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		data_case_run(&cases[i]);
}

/* Line length: 998 octets per line is the limit (SMTP_TEXT_LINE_MAX). */
static void test_data_long_lines(void)
{
	static const struct {
		const char *name;
		size_t line;  /* octets of the test line */
		int stuffed;  /* begins with ".." (one dot removed) */
		int long_line;
	} cases[] = {
		{ "998-octet line", 998, 0, 0 },
		{ "999-octet line", 999, 0, 1 },
		{ "5000-octet line", 5000, 0, 1 },
		{ "998 content octets after a stuffed dot", 998, 1, 0 },
		{ "999 content octets after a stuffed dot", 999, 1, 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = cases[i].line, o = 0, w = 0;
		char *in = malloc(n + 32), *want = malloc(n + 32);
		struct data_case t;

		if (!in || !want) {
			CHECK(0, "out of memory");
			free(in);
			free(want);
			return;
		}
		/* "short\r\n" [.] LINE "\r\nshort\r\n.\r\n" */
		memcpy(in, "short\r\n", 7), o = 7;
		memcpy(want, "short\r\n", 7), w = 7;
		if (cases[i].stuffed)
			in[o++] = '.';
		memset(in + o, 'x', n), o += n;
		memset(want + w, 'x', n), w += n;
		if (cases[i].stuffed) /* the content line itself begins with a dot */
			in[8] = '.', want[7] = '.';
		memcpy(in + o, "\r\nshort\r\n.\r\n", 12), o += 12;
		memcpy(want + w, "\r\nshort\r\n", 9), w += 9;
		memset(&t, 0, sizeof(t));
		t.name = cases[i].name;
		t.in = in;
		t.len = o;
		t.want = want;
		t.wantlen = w;
		t.done = 1;
		t.consumed = o;
		t.long_line = cases[i].long_line;
		{
			struct data_result r;

			data_run(&t, 0, t.len, &r);
			data_check(&t, "whole", &r);
			rl_buf_fini(&r.out);
			data_run(&t, 0, 1, &r);
			data_check(&t, "byte at a time", &r);
			rl_buf_fini(&r.out);
			data_run(&t, 500, 7, &r);
			data_check(&t, "500 then 7 at a time", &r);
			rl_buf_fini(&r.out);
		}
		free(in);
		free(want);
	}
}

/* After the end, further input is not taken; init starts afresh. */
static void test_data_after_end(void)
{
	struct smtp_data d;
	struct rl_buf out;
	size_t used = 99;
	int rc;

	smtp_data_init(&d);
	CHECK_INT(d.bol, 1);
	CHECK_INT(d.done, 0);
	CHECK_INT(d.total, 0);
	rl_buf_init(&out, 1024);
	rc = smtp_data_feed(&d, S("a\r\n.\r\n"), &out, &used);
	CHECK_INT(rc, 0);
	CHECK_INT(used, 6);
	CHECK_INT(d.done, 1);
	used = 99;
	rc = smtp_data_feed(&d, S("b\r\n.\r\n"), &out, &used);
	CHECK_INT(rc, 0);
	CHECK_INT(used, 0);
	CHECK_INT(d.done, 1);
	CASE_MEM("data after end", out.data, out.len, "a\r\n", (size_t)3);

	/* A fresh decoder after init for the next message. */
	rl_buf_reset(&out);
	smtp_data_init(&d);
	rc = smtp_data_feed(&d, S("..\r\n.\r\n"), &out, &used);
	CHECK_INT(rc, 0);
	CHECK_INT(used, 7);
	CHECK_INT(d.done, 1);
	CASE_MEM("data second message", out.data, out.len, ".\r\n", (size_t)3);

	/* Feeding zero octets changes nothing. */
	smtp_data_init(&d);
	used = 99;
	rc = smtp_data_feed(&d, "", 0, &out, &used);
	CHECK_INT(rc, 0);
	CHECK_INT(used, 0);
	CHECK_INT(d.done, 0);
	rl_buf_fini(&out);
}

/* One whole "<path>" for local submission: the listener's rules, no more. */
static void test_path_parse(void)
{
	static const struct {
		const char *in;
		size_t len;
		int allow_null;
		int rc;
		const char *addr;
	} t[] = {
		{ S("<a@b.test>"), 0, 0, "a@b.test" },
		{ S("<>"), 1, 0, "" },
		{ S("<>"), 0, RL_EPARSE, NULL },
		{ S("<a@b.test> SIZE=10"), 0, RL_EPARSE, NULL },
		{ S("<a@b.test>\r\nRCPT TO:<x@evil.test>"), 0, RL_EPARSE, NULL },
		{ S("<a@b.test\r\nRCPT TO:<x@evil.test>>"), 0, RL_EPARSE, NULL },
		{ S("<a@b.test>\0"), 0, RL_EPARSE, NULL },
		{ S("<\"a\rb\"@b.test>"), 0, RL_EPARSE, NULL },
		{ S("a@b.test"), 0, RL_EPARSE, NULL },
		{ S("<a@b.test"), 0, RL_EPARSE, NULL },
		{ S("<a>"), 0, RL_EPARSE, NULL },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct smtp_path p;
		struct rl_why why = { 0 };
		int rc = smtp_path_parse(t[i].in, t[i].len, t[i].allow_null, &p, &why);
		char name[160];

		snprintf(name, sizeof(name), "path_parse \"%s\"", esc(t[i].in, t[i].len));
		CASE_INT(name, rc, t[i].rc);
		if (rc == 0)
			CASE_MEM(name, p.addr, p.len, t[i].addr, strlen(t[i].addr));
	}
}

/* ---------------------------------------------------------------- replies */

/*
 * Parse n bytes from an exact-size heap copy, so that a read past the end
 * is caught by AddressSanitizer rather than hidden by a string literal's NUL.
 */
static int reply_parse_exact(const char *in, size_t n, struct smtp_reply *r, size_t *used)
{
	char *copy = malloc(n ? n : 1);
	int rc;

	if (!copy)
		abort();
	memcpy(copy, in, n);
	rc = smtp_reply_parse(copy, n, r, used);
	free(copy);
	return rc;
}

static void test_reply_parse(void)
{
	static const struct {
		const char *in;
		size_t len;
		int rc;
		int code;
		const char *enh, *text;
		unsigned nlines;
		size_t used;
	} t[] = {
		{ S("250 ok\r\n"), 1, 250, "", "ok", 1, 8 },
		{ S("250 ok\n"), 1, 250, "", "ok", 1, 7 }, /* bare LF from a server */
		{ S("250\r\n"), 1, 250, "", "", 1, 5 },
		{ S("250 \r\n"), 1, 250, "", "", 1, 6 },
		/* A bare enhanced status code and no text (the Exim/OpenSMTPD bug). */
		{ S("250 2.0.0\r\n"), 1, 250, "2.0.0", "", 1, 11 },
		{ S("250 2.0.0 \r\n"), 1, 250, "2.0.0", "", 1, 12 },
		{ S("250 2.0.0"), 0, 0, "", "", 0, 0 },
		{ S("250 2.0."), 0, 0, "", "", 0, 0 },
		{ S("250-2.0.0\r\n250 2.0.0\r\n"), 1, 250, "2.0.0", "\n", 2, 22 },
		{ S("250-2.0.0 a\r\n250 2.0.0 b\r\n"), 1, 250, "2.0.0", "a\nb", 2, 26 },
		/* Only the first line's code is dropped from later lines, and only whole. */
		{ S("250-2.0.0 a\r\n250 2.0.0x\r\n"), 1, 250, "2.0.0", "a\n2.0.0x", 2, 25 },
		{ S("250-2.0.0 a\r\n250 2.1.0 b\r\n"), 1, 250, "2.0.0", "a\n2.1.0 b", 2, 26 },
		{ S("550 5.1.1 no such user\r\n"), 1, 550, "5.1.1", "no such user", 1, 24 },
		{ S("250 5.1.1 wrong class\r\n"), 1, 250, "", "5.1.1 wrong class", 1, 23 },
		{ S("250 2.0.0x\r\n"), 1, 250, "", "2.0.0x", 1, 12 },
		{ S("250 2.0000.0 x\r\n"), 1, 250, "", "2.0000.0 x", 1, 16 },
		{ S("250 2..0 x\r\n"), 1, 250, "", "2..0 x", 1, 12 },
		{ S("250 2.0.0.0 x\r\n"), 1, 250, "", "2.0.0.0 x", 1, 15 },
		{ S("451 4.7.1\r\n"), 1, 451, "4.7.1", "", 1, 11 },
		/* Multi-line replies: codes must agree on every line. */
		{ S("250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n"), 1, 250, "",
		  "mx.example\nPIPELINING\nSTARTTLS", 3, 46 },
		{ S("250-a\r\n251 b\r\n"), RL_EPARSE, 0, "", "", 0, 0 },
		{ S("250-a\r\n550 b\r\n"), RL_EPARSE, 0, "", "", 0, 0 },
		{ S("550-5.7.1 a\r\n250 2.0.0 b\r\n"), RL_EPARSE, 0, "", "", 0, 0 },
		{ S("250-a\r\n250-b\r\n"), 0, 0, "", "", 0, 0 },
		{ S("250-\r\n250 x\r\n"), 1, 250, "", "\nx", 2, 13 },
		{ S("250-a\r\n250\r\n"), 1, 250, "", "a\n", 2, 12 },
		/* The first complete reply only; the rest stays for the next call. */
		{ S("220 a\r\n250 b\r\n"), 1, 220, "", "a", 1, 7 },
		/* Malformed codes and separators. */
		{ S("25\r\n"), RL_EPARSE, 0, "", "", 0, 0 },
		{ S("\r\n"), RL_EPARSE, 0, "", "", 0, 0 },
		{ S("abc ok\r\n"), RL_EPARSE, 0, "", "", 0, 0 },
		{ S("250x\r\n"), RL_EPARSE, 0, "", "", 0, 0 },
		{ S("199 x\r\n"), RL_EPARSE, 0, "", "", 0, 0 },
		{ S("600 x\r\n"), RL_EPARSE, 0, "", "", 0, 0 },
		{ S("2 0 x\r\n"), RL_EPARSE, 0, "", "", 0, 0 },
		/* NUL bytes: in the code refused, in the text replaced. */
		{ S("2\0000 x\r\n"), RL_EPARSE, 0, "", "", 0, 0 },
		{ S("250\000x\r\n"), RL_EPARSE, 0, "", "", 0, 0 },
		{ S("250 a\000b\r\n"), 1, 250, "", "a?b", 1, 9 },
		{ S("250 2.0.0\000\r\n"), 1, 250, "", "2.0.0?", 1, 12 },
		{ S("250-a\r\n250 \000\000\r\n"), 1, 250, "", "a\n??", 2, 15 },
		{ S("250 a\rb\x1b[1m\x7f\xff\r\n"), 1, 250, "", "a?b?[1m??", 1, 15 },
		{ S(""), 0, 0, "", "", 0, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct smtp_reply r;
		size_t used = 0;
		int rc = reply_parse_exact(t[i].in, t[i].len, &r, &used);
		char name[160];

		snprintf(name, sizeof(name), "reply_parse \"%s\"", esc(t[i].in, t[i].len));
		CASE_RC(name, rc, t[i].rc);
		if (rc != 1 || t[i].rc != 1)
			continue;
		CASE_INT(name, r.code, t[i].code);
		CASE_MEM(name, r.enh, strlen(r.enh), t[i].enh, strlen(t[i].enh));
		CASE_MEM(name, r.text, r.textlen, t[i].text, strlen(t[i].text));
		CASE_INT(name, r.nlines, t[i].nlines);
		CASE_INT(name, used, t[i].used);
	}
}

/* A buffer of n octets: "250-" lines of fill, or one line of fill. */
static char *make_lines(size_t nlines, size_t fill, char last, size_t *len)
{
	size_t per = 4 + fill + 2;
	char *b = malloc(nlines * per);

	if (!b)
		abort();
	for (size_t i = 0; i < nlines; i++) {
		char *l = b + i * per;

		memcpy(l, "250-", 4);
		if (i + 1 == nlines)
			l[3] = last;
		memset(l + 4, 'x', fill);
		memcpy(l + 4 + fill, "\r\n", 2);
	}
	*len = nlines * per;
	return b;
}

/* Lines of 1 MB, long lines around the limit (which counts the CR), and
 * line counts. */
static void test_reply_limits(void)
{
	static const struct {
		const char *name;
		size_t nlines, fill;
		char last;
		size_t cut; /* octets removed from the end (0: whole input) */
		int rc;
	} t[] = {
		{ "1 MB line", 1, 1024 * 1024, ' ', 0, RL_EPARSE },
		{ "1 MB line, no end yet", 1, 1024 * 1024, ' ', 2, RL_EPARSE },
		{ "1 MB line after one line", 2, 1024 * 1024, ' ', 0, RL_EPARSE },
		{ "line at the limit", 1, SMTP_REPLY_LINE_LIMIT - 5, ' ', 0, 1 },
		{ "line at the limit, no end yet", 1, SMTP_REPLY_LINE_LIMIT - 5, ' ', 1, 0 },
		{ "line over the limit", 1, SMTP_REPLY_LINE_LIMIT - 4, ' ', 0, RL_EPARSE },
		{ "line over the limit, no end yet", 1, SMTP_REPLY_LINE_LIMIT - 4, ' ', 1,
		  RL_EPARSE },
		{ "longest lines, most lines", SMTP_REPLY_LINES_MAX, SMTP_REPLY_LINE_LIMIT - 5, ' ',
		  0, 1 },
		{ "one line too many", SMTP_REPLY_LINES_MAX + 1, 10, ' ', 0, RL_EPARSE },
		{ "most lines", SMTP_REPLY_LINES_MAX, 10, ' ', 0, 1 },
		{ "most lines, unfinished", SMTP_REPLY_LINES_MAX, 10, '-', 0, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct smtp_reply r;
		size_t len, used = 0;
		char *b = make_lines(t[i].nlines, t[i].fill, t[i].last, &len);
		int rc = reply_parse_exact(b, len - t[i].cut, &r, &used);

		CASE_RC(t[i].name, rc, t[i].rc);
		if (rc == 1) {
			CASE_INT(t[i].name, used, len);
			CHECK(r.textlen < sizeof(r.text) && r.text[r.textlen] == '\0' &&
				      strlen(r.text) == r.textlen,
			      "%s: textlen %zu", t[i].name, r.textlen);
		}
		free(b);
	}
}

static void test_reply_oneline(void)
{
	static const struct {
		const char *in, *want;
		size_t size;
	} t[] = {
		{ "250 2.0.0\r\n", "250 2.0.0", 64 },
		{ "250 ok\r\n", "250 ok", 64 },
		{ "250\r\n", "250", 64 },
		{ "550-5.1.1 a\r\n550 5.1.1 b\r\n", "550 5.1.1 a b", 64 },
		{ "550 5.1.1 no such user\r\n", "550 5.1", 8 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct smtp_reply r;
		size_t used;
		char out[64];

		if (smtp_reply_parse(t[i].in, strlen(t[i].in), &r, &used) != 1) {
			CHECK(0, "oneline: cannot parse \"%s\"", esc(t[i].in, strlen(t[i].in)));
			continue;
		}
		smtp_reply_oneline(&r, out, t[i].size);
		CHECK_STR(out, t[i].want);
	}
}

#define EXT_COMMON (SMTP_EXT_PIPELINING | SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_STARTTLS)

static void test_ehlo_parse(void)
{
	static const struct {
		const char *in;
		size_t len;
		unsigned ext;
		uint64_t size_max;
	} t[] = {
		{ S("250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
		    "250 STARTTLS\r\n"), EXT_COMMON, 10240000 },
		{ S("250-mx\r\n250-starttls\r\n250-SmtpUtf8\r\n250-ENHANCEDSTATUSCODES\r\n"
		    "250 REQUIRETLS\r\n"), SMTP_EXT_STARTTLS | SMTP_EXT_SMTPUTF8 |
		  SMTP_EXT_ENHANCEDSTATUSCODES | SMTP_EXT_REQUIRETLS, 0 },
		/* The first line is the server's name, never a keyword. */
		{ S("250 STARTTLS\r\n"), 0, 0 },
		{ S("250 2.0.0\r\n"), 0, 0 },
		{ S("250-2.0.0 mx\r\n250 2.0.0 STARTTLS\r\n"), SMTP_EXT_STARTTLS, 0 },
		{ S("250-mx\r\n250 STARTTLSX\r\n"), 0, 0 },
		{ S("250-mx\r\n250 STARTTL\r\n"), 0, 0 },
		{ S("250-mx\r\n250  STARTTLS\r\n"), SMTP_EXT_STARTTLS, 0 }, /* spaces skipped */
		{ S("250-mx\r\n250 STARTTLS extra\r\n"), SMTP_EXT_STARTTLS, 0 },
		/* A NUL is no end of string: "STARTTLS\0" is not STARTTLS. */
		{ S("250-mx\r\n250 STARTTLS\000\r\n"), 0, 0 },
		{ S("250-mx\r\n250 START\000TLS\r\n"), 0, 0 },
		{ S("250-mx\r\n250-SIZE\000 5\r\n250 STARTTLS\r\n"), SMTP_EXT_STARTTLS, 0 },
		/* SIZE values: only plain decimal numbers count. */
		{ S("250-mx\r\n250 SIZE\r\n"), SMTP_EXT_SIZE, 0 },
		{ S("250-mx\r\n250 SIZE \r\n"), SMTP_EXT_SIZE, 0 },
		{ S("250-mx\r\n250 SIZE 0\r\n"), SMTP_EXT_SIZE, 0 },
		{ S("250-mx\r\n250 SIZE -5\r\n"), SMTP_EXT_SIZE, 0 },
		{ S("250-mx\r\n250 SIZE 12abc\r\n"), SMTP_EXT_SIZE, 0 },
		{ S("250-mx\r\n250 SIZE 999999999999999999\r\n"), SMTP_EXT_SIZE,
		  999999999999999999ull },
		{ S("250-mx\r\n250 SIZE 99999999999999999999999\r\n"), SMTP_EXT_SIZE, 0 },
		{ S("250-mx\r\n250 size 52428800\r\n"), SMTP_EXT_SIZE, 52428800 },
		{ S("250-mx\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"), SMTP_EXT_8BITMIME, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct smtp_reply r;
		struct smtp_ehlo e;
		size_t used;
		char name[200];

		snprintf(name, sizeof(name), "ehlo_parse \"%s\"", esc(t[i].in, t[i].len));
		if (reply_parse_exact(t[i].in, t[i].len, &r, &used) != 1) {
			CHECK(0, "%s: reply not parsed", name);
			continue;
		}
		smtp_ehlo_parse(&r, &e);
		CASE_INT(name, e.ext, t[i].ext);
		CASE_INT(name, e.size_max, t[i].size_max);
	}
}

/*
 * An EHLO reply longer than the text buffer: a keyword line that does not
 * fit is left out whole, never cut ("SIZE 10485760" must not become
 * "SIZE 10", which would bounce every larger message as too big).
 */
static void test_ehlo_cut(void)
{
	/* "mx" + 3 fill lines leave room for "\nSIZE 10" and no more. */
	size_t fill[3] = { 1400, 1400, SMTP_REPLY_TEXT_MAX - 1 - 8 - 2 - 3 - 2800 };
	char *b = malloc(3 * (SMTP_REPLY_LINE_LIMIT + 6) + 64);
	size_t n = 0, used = 0;
	struct smtp_reply r;
	struct smtp_ehlo e;

	if (!b)
		abort();
	n += (size_t)snprintf(b, 64, "250-mx\r\n");
	for (int i = 0; i < 3; i++) {
		memcpy(b + n, "250-", 4);
		memset(b + n + 4, 'x', fill[i]);
		memcpy(b + n + 4 + fill[i], "\r\n", 2);
		n += fill[i] + 6;
	}
	n += (size_t)snprintf(b + n, 64, "250-SIZE 10485760\r\n250 PIPELINING\r\n");
	CASE_RC("ehlo cut", reply_parse_exact(b, n, &r, &used), 1);
	smtp_ehlo_parse(&r, &e);
	CHECK(e.size_max == 0 || e.size_max == 10485760, "ehlo cut: size_max %llu",
	      (unsigned long long)e.size_max);
	CHECK(r.textlen < sizeof(r.text), "ehlo cut: textlen %zu", r.textlen);
	CASE_INT("ehlo cut nlines", r.nlines, 6);
	free(b);
}

int main(void)
{
	test_line_next();
	test_cmd_parse();
	test_mail_parse();
	test_mail_requiretls();
	test_mail_limits();
	test_rcpt_parse();
	test_literals();
	test_helo_valid();
	test_data();
	test_data_long_lines();
	test_data_after_end();
	test_path_parse();
	test_reply_parse();
	test_reply_limits();
	test_reply_oneline();
	test_ehlo_parse();
	test_ehlo_cut();
	return TEST_DONE();
}
