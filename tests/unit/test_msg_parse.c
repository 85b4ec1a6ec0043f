/*
 * test_msg_parse: RFC 5322 header walker and address-list extractor
 * (relay/msg_parse.c), as sendmail -t uses them.
 */
#include <stdio.h>
#include <string.h>

#include "msg.h"
#include "rl.h"
#include "tap.h"

#define CASE_INT(name, got, want)                                          \
	CHECK((long long)(got) == (long long)(want), "%s: got %lld want %lld", \
	      (name), (long long)(got), (long long)(want))

/* Printable form of n bytes (CR, LF, tabs and other octets escaped). */
static const char *esc(const char *p, size_t n)
{
	static char bufs[4][1024];
	static int k;
	char *b = bufs[k++ % 4];
	size_t o = 0;

	for (size_t i = 0; i < n && o + 8 < sizeof(bufs[0]); i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r')
			o += (size_t)snprintf(b + o, 8, "\\r");
		else if (c == '\n')
			o += (size_t)snprintf(b + o, 8, "\\n");
		else if (c == '\t')
			o += (size_t)snprintf(b + o, 8, "\\t");
		else if (c == '"' || c == '\\')
			o += (size_t)snprintf(b + o, 8, "\\%c", c);
		else if (c < 32 || c >= 127)
			o += (size_t)snprintf(b + o, 8, "\\x%02x", c);
		else
			b[o++] = (char)c;
	}
	b[o] = '\0';
	return b;
}

#define CASE_MEM(name, got, gotlen, want, wantlen)                          \
	CHECK((gotlen) == (wantlen) && memcmp((got), (want), (wantlen)) == 0,  \
	      "%s: got \"%s\" want \"%s\"", (name), esc((got), (gotlen)),     \
	      esc((want), (wantlen)))

/* ------------------------------------------------------------ header end */

static void test_header_end(void)
{
	static const struct {
		const char *in;
		size_t want; /* (size_t)-1: the input's length */
	} cases[] = {
		{ "Subject: hi\r\n\r\nbody\r\n", 15 },
		{ "A: 1\r\nB: 2\r\n\r\n", 14 },
		{ "A: 1\r\nB: 2\r\n\r\n\r\nbody", 14 },
		{ "\r\nbody starts at once\r\n", 2 },
		{ "\r\n", 2 },
		{ "A: 1\r\n \r\nB: 2\r\n\r\nbody", 17 }, /* " \r\n" is not empty */
		{ "A: 1\r\n\tfolded\r\n\r\nx", 17 },
		{ "A: 1\r\nB: 2\r\n", (size_t)-1 },         /* no empty line */
		{ "A: 1\r\nno empty line, no CRLF", (size_t)-1 },
		{ "", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);
		size_t want = cases[i].want == (size_t)-1 ? len : cases[i].want;
		char name[128];

		snprintf(name, sizeof(name), "header_end \"%s\"", esc(cases[i].in, len));
		CASE_INT(name, msg_header_end(cases[i].in, len), want);
	}
}

/* --------------------------------------------------------- header fields */

static void test_header_next(void)
{
	static const struct {
		const char *name;
		const char *in;
		struct {
			const char *name, *value;
		} fields[4];      /* expected in turn (name NULL ends) */
		int last_rc;      /* what ends the walk: 0 or RL_EPARSE */
		size_t last_pos;  /* *pos when it ends */
	} cases[] = {
		{ "two fields",
		  "Subject: hi\r\nFrom: a@example.com\r\n\r\nbody\r\n",
		  { { "Subject", " hi\r\n" }, { "From", " a@example.com\r\n" } },
		  0, 34 },
		{ "folded field",
		  "To: a@example.com,\r\n b@example.com,\r\n\tc@example.com\r\nX-Y: z\r\n\r\n",
		  { { "To", " a@example.com,\r\n b@example.com,\r\n\tc@example.com\r\n" },
		    { "X-Y", " z\r\n" } },
		  0, 61 },
		{ "folded last field",
		  "A: 1\r\n 2\r\n",
		  { { "A", " 1\r\n 2\r\n" } },
		  0, 10 },
		{ "empty value",
		  "X:\r\nY:z\r\n\r\n",
		  { { "X", "\r\n" }, { "Y", "z\r\n" } },
		  0, 9 },
		{ "value with colons",
		  "Date: Fri, 3 Aug 2018 09:50:15 +0000\r\n\r\n",
		  { { "Date", " Fri, 3 Aug 2018 09:50:15 +0000\r\n" } },
		  0, 38 },
		{ "odd printable name",
		  "X-Foo_Bar.1!#: v\r\n\r\n",
		  { { "X-Foo_Bar.1!#", " v\r\n" } },
		  0, 18 },
		{ "no empty line, last line unterminated",
		  "A: 1\r\nB: 2",
		  { { "A", " 1\r\n" }, { "B", " 2" } },
		  0, 10 },
		{ "non-field line ends the walk",
		  "Subject: hi\r\nnot a field\r\nX: y\r\n\r\n",
		  { { "Subject", " hi\r\n" } },
		  RL_EPARSE, 13 },
		{ "mbox From_ line",
		  "From nobody Fri Aug  3 09:50:15 2018\r\nSubject: x\r\n\r\n",
		  { { NULL, NULL } },
		  RL_EPARSE, 0 },
		{ "name with space before colon",
		  "Subject : hi\r\n\r\n",
		  { { NULL, NULL } },
		  RL_EPARSE, 0 },
		{ "name with space inside",
		  "To: a@example.com\r\nX Header: v\r\n\r\n",
		  { { "To", " a@example.com\r\n" } },
		  RL_EPARSE, 19 },
		{ "empty name",
		  ": v\r\n\r\n",
		  { { NULL, NULL } },
		  RL_EPARSE, 0 },
		{ "8-bit name",
		  "Subj\xc3\xa9" "ct: v\r\n\r\n",
		  { { NULL, NULL } },
		  RL_EPARSE, 0 },
		{ "no colon at all",
		  "Subject",
		  { { NULL, NULL } },
		  RL_EPARSE, 0 },
		{ "continuation line first",
		  " folded: v\r\n\r\n",
		  { { NULL, NULL } },
		  RL_EPARSE, 0 },
		{ "empty header section",
		  "\r\nbody\r\n",
		  { { NULL, NULL } },
		  0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *p = cases[i].in;
		size_t len = strlen(p), hlen = msg_header_end(p, len), pos = 0, k = 0;
		char name[160];
		int rc;

		for (;;) {
			struct msg_field f;

			memset(&f, 0, sizeof(f));
			rc = msg_header_next(p, hlen, &pos, &f);
			if (rc != 1)
				break;
			snprintf(name, sizeof(name), "header_next %s field %zu", cases[i].name, k);
			CHECK(k < 4 && cases[i].fields[k].name, "%s: unexpected field \"%s\"", name,
			      esc(f.name, f.namelen));
			if (k >= 4 || !cases[i].fields[k].name)
				break;
			CASE_MEM(name, f.name, f.namelen, cases[i].fields[k].name,
				 strlen(cases[i].fields[k].name));
			CASE_MEM(name, f.value, f.valuelen, cases[i].fields[k].value,
				 strlen(cases[i].fields[k].value));
			/* Slices of the input: the field spans [start, end), its name
			 * starts it, and pos moves to its end. */
			CHECK(f.name == p + f.start, "%s: name not at start", name);
			CHECK(f.value + f.valuelen == p + f.end, "%s: value does not reach end", name);
			CASE_INT(name, pos, f.end);
			CHECK(f.start < f.end && f.end <= hlen, "%s: start %zu end %zu hlen %zu", name,
			      f.start, f.end, hlen);
			k++;
		}
		snprintf(name, sizeof(name), "header_next %s", cases[i].name);
		{
			size_t nwant = 0;

			while (nwant < 4 && cases[i].fields[nwant].name)
				nwant++;
			CASE_INT(name, k, nwant);
		}
		CASE_INT(name, rc, cases[i].last_rc);
		CASE_INT(name, pos, cases[i].last_pos);
	}
}

/* ------------------------------------------------------------ field names */

static void test_field_is(void)
{
	static const struct {
		const char *field, *name;
		int want;
	} cases[] = {
		{ "Content-Type", "Content-Type", 1 },
		{ "content-type", "Content-Type", 1 },
		{ "CONTENT-TYPE", "content-type", 1 },
		{ "Content-Typ", "Content-Type", 0 },
		{ "Content-Types", "Content-Type", 0 },
		{ "To", "to", 1 },
		{ "Bcc", "Cc", 0 },
		{ "Cc", "Bcc", 0 },
		{ "Message-ID", "Message-Id", 1 },
		{ "X-A[", "x-a{", 0 }, /* no case folding outside A-Z */
		{ "From", "Frm", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct msg_field f;
		char name[128];

		memset(&f, 0, sizeof(f));
		f.name = cases[i].field;
		f.namelen = strlen(cases[i].field);
		snprintf(name, sizeof(name), "field_is(\"%s\", \"%s\")", cases[i].field,
			 cases[i].name);
		CASE_INT(name, msg_field_is(&f, cases[i].name) != 0, cases[i].want);
	}

	/* The name is a slice: only namelen octets count. */
	{
		struct msg_field f;

		memset(&f, 0, sizeof(f));
		f.name = "To: x";
		f.namelen = 2;
		CHECK_INT(msg_field_is(&f, "to"), 1);
		CHECK_INT(msg_field_is(&f, "To:"), 0);
	}
}

/* ---------------------------------------------------------- address lists */

#define MAXADDR 8

struct collect {
	char addr[MAXADDR][256];
	size_t n;
	int stop_at; /* return 7 from the call that gets this address (1-based) */
};

static int collect_cb(void *arg, const char *addr, size_t len)
{
	struct collect *c = arg;

	if (c->n < MAXADDR) {
		snprintf(c->addr[c->n], sizeof(c->addr[0]), "%.*s", (int)len, addr);
		CHECK(strlen(c->addr[c->n]) == len, "address with NUL or too long: \"%s\"",
		      esc(addr, len));
	}
	c->n++;
	return c->stop_at && (int)c->n == c->stop_at ? 7 : 0;
}

static void test_addr_list(void)
{
	static const struct {
		const char *in;
		const char *want[MAXADDR]; /* NULL ends */
	} cases[] = {
		/* Empty lists. */
		{ "", { NULL } },
		{ "   \r\n", { NULL } },
		{ ",", { NULL } },
		/* Bare addresses. */
		{ " a@example.com\r\n", { "a@example.com" } },
		{ "a@example.com", { "a@example.com" } },
		{ "a@example.com, b@example.com", { "a@example.com", "b@example.com" } },
		{ "a@example.com,b@example.com,,c@example.com",
		  { "a@example.com", "b@example.com", "c@example.com" } },
		{ "\"john doe\"@example.com", { "\"john doe\"@example.com" } },
		/* Angle addresses and display names. */
		{ "<a@example.com>", { "a@example.com" } },
		{ "< a@example.com >", { "a@example.com" } },
		{ "John Doe <john@example.com>", { "john@example.com" } },
		{ "John Doe <john@example.com>, Jane <jane@example.com>",
		  { "john@example.com", "jane@example.com" } },
		{ "Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
		  { "mary@x.test", "jdoe@example.org", "one@y.test" } },
		{ "<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
		  { "boss@nil.test", "sysservices@example.net" } },
		/* Quoted display names containing commas, semicolons, colons, brackets. */
		{ "\"Doe, John\" <john@example.com>, jane@example.com",
		  { "john@example.com", "jane@example.com" } },
		{ "\"Smith; J.\" <js@example.com>", { "js@example.com" } },
		{ "\"Team: A\" <team@example.com>", { "team@example.com" } },
		{ "\"<fake@evil.example>\" <real@example.com>", { "real@example.com" } },
		{ "\"A \\\"quoted\\\" name, with comma\" <q@example.com>", { "q@example.com" } },
		/* Comments. */
		{ "a@example.com (Alice, from work)", { "a@example.com" } },
		{ "(comment) a@example.com", { "a@example.com" } },
		{ "a@example.com (note: x; y)", { "a@example.com" } },
		{ "Alice (nested (comment, x)) <a@example.com>, b@example.com",
		  { "a@example.com", "b@example.com" } },
		{ "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
		  { "pete@silly.test" } },
		/* Groups. */
		{ "undisclosed-recipients:;", { NULL } },
		{ "undisclosed-recipients: ;", { NULL } },
		{ "Undisclosed recipients:;", { NULL } },
		{ "grp: a@b, c@d;", { "a@b", "c@d" } },
		{ "grp: a@b, c@d;, e@f", { "a@b", "c@d", "e@f" } },
		{ "grp: A <a@b>, \"C, D\" <c@d>; e@f", { "a@b", "c@d", "e@f" } },
		{ "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
		  { "c@a.test", "joe@where.test", "jdoe@one.test" } },
		{ "g1: a@b;, g2: ;, g3: c@d;", { "a@b", "c@d" } },
		{ "A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n"
		  "         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)",
		  { "c@public.example", "joe@example.org", "jdoe@one.test" } },
		/* Folded values (as msg_header_next returns them). */
		{ " Alice <a@example.com>,\r\n\tBob <b@example.com>\r\n",
		  { "a@example.com", "b@example.com" } },
		/* Domain literals. */
		{ "a@[192.0.2.1]", { "a@[192.0.2.1]" } },
		{ "<a@[IPv6:2001:db8::1]>", { "a@[IPv6:2001:db8::1]" } },
		{ "a@[IPv6:2001:db8::1]", { "a@[IPv6:2001:db8::1]" } },
		/* A quoted local part keeps its spaces, bare or in angle brackets. */
		{ "\"John Doe\" <\"john doe\"@example.com>", { "\"john doe\"@example.com" } },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct collect c;
		const char *in = cases[i].in;
		size_t nwant = 0;
		char name[300];
		int rc;

		memset(&c, 0, sizeof(c));
		rc = msg_addr_list(in, strlen(in), collect_cb, &c);
		snprintf(name, sizeof(name), "addr_list \"%s\"", esc(in, strlen(in)));
		CASE_INT(name, rc, 0);
		while (nwant < MAXADDR && cases[i].want[nwant])
			nwant++;
		if (c.n != nwant) {
			char got[1024] = "";

			for (size_t k = 0; k < c.n && k < MAXADDR; k++) {
				strncat(got, k ? " | " : "", sizeof(got) - strlen(got) - 1);
				strncat(got, c.addr[k], sizeof(got) - strlen(got) - 1);
			}
			CHECK(0, "%s: got %zu addresses [%s] want %zu", name, c.n, got, nwant);
			continue;
		}
		for (size_t k = 0; k < nwant; k++) {
			CHECK(strcmp(c.addr[k], cases[i].want[k]) == 0,
			      "%s: address %zu: got \"%s\" want \"%s\"", name, k, c.addr[k],
			      cases[i].want[k]);
		}
	}

	/* A non-zero callback result stops the walk and is returned. */
	{
		static const struct {
			const char *in;
			int stop_at;
			int rc;
			size_t calls;
		} stops[] = {
			{ "a@b, c@d, e@f", 1, 7, 1 },
			{ "a@b, c@d, e@f", 2, 7, 2 },
			{ "a@b, c@d, e@f", 3, 7, 3 },
			{ "a@b, c@d, e@f", 4, 0, 3 },
			{ "g: a@b; c@d", 1, 7, 1 },
		};

		for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
			struct collect c;
			char name[128];
			int rc;

			memset(&c, 0, sizeof(c));
			c.stop_at = stops[i].stop_at;
			rc = msg_addr_list(stops[i].in, strlen(stops[i].in), collect_cb, &c);
			snprintf(name, sizeof(name), "addr_list stop at %d of \"%s\"", stops[i].stop_at,
				 stops[i].in);
			CASE_INT(name, rc, stops[i].rc);
			CASE_INT(name, c.n, stops[i].calls);
		}
	}

	/* The value is a slice: only n octets are read. */
	{
		struct collect c;
		int rc;

		memset(&c, 0, sizeof(c));
		rc = msg_addr_list("a@b, c@d", 3, collect_cb, &c);
		CHECK_INT(rc, 0);
		CHECK_INT(c.n, 1);
		CHECK_STR(c.addr[0], "a@b");
	}
}

/* Walk a whole message as sendmail -t does: To/Cc/Bcc recipients. */
static void test_walk(void)
{
	static const char msg[] =
		"From: Sender <s@example.com>\r\n"
		"To: \"Doe, J\" <j@example.com>,\r\n"
		"  k@example.com\r\n"
		"Subject: To: not@this.example\r\n"
		"cc: undisclosed-recipients:;\r\n"
		"BCC: hidden@example.com (secret)\r\n"
		"\r\n"
		"To: body@not.example\r\n";
	static const char *want[] = { "j@example.com", "k@example.com", "hidden@example.com" };
	size_t len = sizeof(msg) - 1, hlen = msg_header_end(msg, len), pos = 0;
	struct msg_field f;
	struct collect c;
	int rc, nfields = 0;

	memset(&c, 0, sizeof(c));
	CHECK_INT(hlen, len - strlen("To: body@not.example\r\n"));
	while ((rc = msg_header_next(msg, hlen, &pos, &f)) == 1) {
		nfields++;
		if (msg_field_is(&f, "To") || msg_field_is(&f, "Cc") || msg_field_is(&f, "Bcc")) {
			int r = msg_addr_list(f.value, f.valuelen, collect_cb, &c);

			CHECK_INT(r, 0);
		}
	}
	CHECK_INT(rc, 0);
	CHECK_INT(nfields, 5);
	CHECK_INT(pos, hlen - 2);
	CHECK_INT(c.n, 3);
	for (size_t k = 0; k < 3 && k < c.n; k++)
		CHECK_STR(c.addr[k], want[k]);
}

/* ------------------------------------------------------ Received count */

static void test_received_count(void)
{
	static const struct {
		const char *in;
		size_t want;
	} cases[] = {
		{ "", 0 },
		{ "Received: a\r\n", 1 },
		{ "Received: a\r\nreceived: b\r\nRECEIVED: c\r\nReCeIvEd:d\r\n\r\n", 4 },
		/* Folded lines are part of their field. */
		{ "Received: from a\r\n\tby b\r\n Received: not a field\r\n\r\n", 1 },
		/* Obsolete syntax: blanks before the colon. */
		{ "Received \t: a\r\n", 1 },
		/* Other names that only look alike. */
		{ "Received-SPF: pass\r\nX-Received: a\r\nReceived\r\nReceive: a\r\n", 0 },
		{ "Received", 0 },
		{ "Received:", 1 }, /* no line end: up to len */
		/* The body is not headers. */
		{ "Subject: x\r\n\r\nReceived: in the body\r\n", 0 },
		{ "Received: a\r\n\r\nReceived: b\r\n", 1 },
		{ "\r\nReceived: b\r\n", 0 },
		/* A bare LF ends a line and an empty one the section. */
		{ "Received: a\nReceived: b\n\nReceived: c\n", 2 },
		/* A line that is not a field is skipped, not the end. */
		{ "Received: a\r\nnot a field\r\nReceived: b\r\n", 2 },
		/* " \r\n" is a continuation, not the empty line. */
		{ "Received: a\r\n \r\nReceived: b\r\n", 2 },
		{ "Subject: x\rReceived: y\r\n", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);
		char name[160];

		snprintf(name, sizeof(name), "received_count \"%s\"", esc(cases[i].in, len));
		CASE_INT(name, msg_received_count(cases[i].in, len), cases[i].want);
	}
}

/* ------------------------------------------------- local envelope addresses */

/* What sendmail -f, recipient arguments and -t headers may put in the queue. */
static void test_envelope_addr(void)
{
	static const struct {
		const char *in;
		size_t len; /* 0: strlen */
		int allow_null;
		int rc;
		const char *want; /* the stored address when rc == 0 */
		int utf8;
	} t[] = {
		{ "a@b.test", 0, 0, 0, "a@b.test", 0 },
		{ "<a@b.test>", 0, 0, 0, "a@b.test", 0 },
		{ "  <a@b.test> ", 0, 0, 0, "a@b.test", 0 },
		{ "<a@b.test>\t", 0, 0, RL_EPARSE, NULL, 0 },
		{ "root", 0, 0, 0, "root@h.test", 0 },
		{ "<root>", 0, 0, 0, "root@h.test", 0 },
		{ "\"a b\"@b.test", 0, 0, 0, "\"a b\"@b.test", 0 },
		{ "a@[127.0.0.1]", 0, 0, 0, "a@[127.0.0.1]", 0 },
		{ "<@relay.test:a@b.test>", 0, 0, 0, "a@b.test", 0 },
		{ "j\xc3\xb6@b.test", 0, 0, 0, "j\xc3\xb6@b.test", 1 },
		/* The null sender, where allowed. */
		{ "", 0, 1, 0, "", 0 },
		{ "<>", 0, 1, 0, "", 0 },
		{ "<>", 0, 0, RL_EPARSE, NULL, 0 },
		{ "", 0, 0, RL_EPARSE, NULL, 0 },
		/* Injection: CR, LF, NUL and other control octets anywhere. */
		{ "a@src>\r\nRCPT TO:<x@evil", 0, 1, RL_EPARSE, NULL, 0 },
		{ "a@b.test\r\n", 0, 0, RL_EPARSE, NULL, 0 },
		{ "a@b.test\n", 0, 0, RL_EPARSE, NULL, 0 },
		{ "a@b.test\r", 0, 0, RL_EPARSE, NULL, 0 },
		{ "a@b.test\0x@evil", 16, 0, RL_EPARSE, NULL, 0 },
		{ "\"a\r\n RCPT TO:<x@evil>\"@b.test", 0, 0, RL_EPARSE, NULL, 0 },
		{ "\"a\rb\"@b.test", 0, 0, RL_EPARSE, NULL, 0 },
		{ "a\x01@b.test", 0, 0, RL_EPARSE, NULL, 0 },
		{ "a@b.test\x7f", 0, 0, RL_EPARSE, NULL, 0 },
		{ "a\t@b.test", 0, 0, RL_EPARSE, NULL, 0 },
		/* Parameters, stray brackets and spaces inside. */
		{ "a@b.test> SIZE=1", 0, 0, RL_EPARSE, NULL, 0 },
		{ "<a@b.test> NOTIFY=NEVER", 0, 0, RL_EPARSE, NULL, 0 },
		{ "<<a@b.test>>", 0, 0, RL_EPARSE, NULL, 0 },
		{ "a@b.test>", 0, 0, RL_EPARSE, NULL, 0 },
		{ "a b@c.test", 0, 0, RL_EPARSE, NULL, 0 },
		{ "a@b.test,c@d.test", 0, 0, RL_EPARSE, NULL, 0 },
		{ "a@-b.test", 0, 0, RL_EPARSE, NULL, 0 },
		{ "a@", 0, 0, RL_EPARSE, NULL, 0 },
		{ "j\xc3@b.test", 0, 0, RL_EPARSE, NULL, 0 },
	};
	char long_local[300];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t len = t[i].len ? t[i].len : strlen(t[i].in);
		struct rl_why why = { 0 };
		struct smtp_path p;
		int rc = msg_envelope_addr(t[i].in, len, "h.test", t[i].allow_null, &p, &why);
		char name[200];

		snprintf(name, sizeof(name), "envelope_addr \"%s\"", esc(t[i].in, len));
		CASE_INT(name, rc, t[i].rc);
		if (rc == 0 && t[i].want) {
			CASE_MEM(name, p.addr, p.len, t[i].want, strlen(t[i].want));
			CASE_INT(name, p.utf8, t[i].utf8);
		}
		if (rc < 0)
			CHECK(why.reason != NULL, "%s: no reason", name);
	}
	/* Longer than the listener's 256-octet path: refused as it would be. */
	memset(long_local, 'a', sizeof(long_local));
	memcpy(long_local + 240, "@b.test", 8);
	{
		struct smtp_path p;
		int rc = msg_envelope_addr(long_local, 247, "h.test", 0, &p, NULL);

		CASE_INT("envelope_addr 247 octets", rc, 0);
		memset(long_local, 'a', sizeof(long_local));
		memcpy(long_local + 260, "@b.test", 8);
		rc = msg_envelope_addr(long_local, 267, "h.test", 0, &p, NULL);
		CASE_INT("envelope_addr 267 octets", rc, RL_EPARSE);
	}
}

/* -------------------------------------------------- local submission body */

/* Feed in one piece, or one octet at a time (split CRLFs and dots). */
static int body_run(const char *in, size_t n, size_t max, int dot_ends, int bytewise,
		    struct rl_buf *out, struct msg_body *b)
{
	int rc = 0;

	msg_body_init(b, max, dot_ends);
	if (!bytewise)
		rc = msg_body_feed(b, in, n, out);
	for (size_t i = 0; bytewise && i < n && rc == 0 && !b->done; i++)
		rc = msg_body_feed(b, in + i, 1, out);
	if (rc == 0)
		rc = msg_body_finish(b, out);
	if (rc == 0)
		msg_body_clean(out->data ? out->data : (char *)"", out->len);
	return rc;
}

static void test_body(void)
{
	static const struct {
		const char *name;
		const char *in;
		size_t len; /* 0: strlen */
		int dot_ends;
		size_t max; /* 0: 1 MB */
		int rc;
		const char *want;
		size_t wantlen; /* 0: strlen */
	} t[] = {
		{ "LF to CRLF", "a\nb\n", 0, 1, 0, 0, "a\r\nb\r\n", 0 },
		{ "CRLF kept", "a\r\nb\r\n", 0, 1, 0, 0, "a\r\nb\r\n", 0 },
		{ "last line given CRLF", "a\nb", 0, 1, 0, 0, "a\r\nb\r\n", 0 },
		{ "final CR ends line", "a\r", 0, 1, 0, 0, "a\r\n", 0 },
		{ "empty input", "", 0, 1, 0, 0, "", 0 },
		{ "bare CR to space", "a\rb\n", 0, 1, 0, 0, "a b\r\n", 0 },
		{ "CR CR LF", "a\r\r\nb\n", 0, 1, 0, 0, "a \r\nb\r\n", 0 },
		{ "CR at line start", "\rx\n", 0, 1, 0, 0, " x\r\n", 0 },
		{ "NUL to space", "a\0b\n", 4, 1, 0, 0, "a b\r\n", 0 },
		{ "LF CR LF", "a\n\r\nb\n", 0, 1, 0, 0, "a\r\n\r\nb\r\n", 0 },
		/* Without -i a line of one dot ends the message. */
		{ "dot ends", "a\n.\nb\n", 0, 1, 0, 0, "a\r\n", 0 },
		{ "dot CRLF ends", "a\r\n.\r\nb\n", 0, 1, 0, 0, "a\r\n", 0 },
		{ "dot at EOF ends", "a\n.", 0, 1, 0, 0, "a\r\n", 0 },
		{ "dot first line", ".\nb\n", 0, 1, 0, 0, "", 0 },
		{ "two dots kept", "a\n..\nb\n", 0, 1, 0, 0, "a\r\n..\r\nb\r\n", 0 },
		{ "dot text kept", "a\n.x\nb\n", 0, 1, 0, 0, "a\r\n.x\r\nb\r\n", 0 },
		{ "dot CR x kept", "a\n.\rx\n", 0, 1, 0, 0, "a\r\n. x\r\n", 0 },
		{ "dot after bare CR", "a\r.\nb\n", 0, 1, 0, 0, "a .\r\nb\r\n", 0 },
		/* With -i dots are text. */
		{ "-i dot kept", "a\n.\nb\n", 0, 0, 0, 0, "a\r\n.\r\nb\r\n", 0 },
		{ "-i dot at EOF", "a\n.", 0, 0, 0, 0, "a\r\n.\r\n", 0 },
		/* Limits: the size, CRLFs included; the line length. */
		{ "size exact", "abc\n", 0, 1, 5, 0, "abc\r\n", 0 },
		{ "size over by CRLF", "abcd\n", 0, 1, 5, RL_ETOOBIG, NULL, 0 },
		{ "size over by text", "abcdef", 0, 1, 5, RL_ETOOBIG, NULL, 0 },
		{ "size over by final CRLF", "abcd", 0, 1, 5, RL_ETOOBIG, NULL, 0 },
	};
	static char big[2100];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		for (int bytewise = 0; bytewise < 2; bytewise++) {
			size_t len = t[i].len ? t[i].len : strlen(t[i].in);
			struct rl_buf out;
			struct msg_body b;
			char name[100];
			int rc;

			rl_buf_init(&out, 1 << 20);
			rc = body_run(t[i].in, len, t[i].max ? t[i].max : 1 << 20, t[i].dot_ends,
				      bytewise, &out, &b);
			snprintf(name, sizeof(name), "body %s%s", t[i].name,
				 bytewise ? " (bytewise)" : "");
			CASE_INT(name, rc, t[i].rc);
			if (rc == 0 && t[i].want)
				CASE_MEM(name, out.data ? out.data : "", out.len, t[i].want,
					 t[i].wantlen ? t[i].wantlen : strlen(t[i].want));
			rl_buf_fini(&out);
		}
	}
	/* 998 octets pass, 999 are refused as the listener refuses them. */
	for (size_t n = 997; n <= 1000; n++) {
		struct rl_buf out;
		struct msg_body b;
		int rc;

		memset(big, 'x', sizeof(big));
		big[n] = '\n';
		rl_buf_init(&out, 1 << 20);
		rc = body_run(big, n + 1, 1 << 20, 1, 0, &out, &b);
		CASE_INT("line length", rc, n <= 998 ? 0 : RL_EPARSE);
		rl_buf_fini(&out);
		/* A bare CR counts as an octet of its line. */
		big[500] = '\r';
		rl_buf_init(&out, 1 << 20);
		rc = body_run(big, n + 1, 1 << 20, 1, 1, &out, &b);
		CASE_INT("line length with CR", rc, n <= 998 ? 0 : RL_EPARSE);
		rl_buf_fini(&out);
	}
	/* The 8-bit flag. */
	{
		struct rl_buf out;
		struct msg_body b;

		rl_buf_init(&out, 100);
		CASE_INT("8bit rc", body_run("a\xc3\xa9\n", 4, 100, 1, 0, &out, &b), 0);
		CASE_INT("8bit", b.eightbit, 1);
		rl_buf_reset(&out);
		CASE_INT("7bit rc", body_run("abc\n", 4, 100, 1, 0, &out, &b), 0);
		CASE_INT("7bit", b.eightbit, 0);
		rl_buf_fini(&out);
	}
}

int main(void)
{
	test_header_end();
	test_header_next();
	test_field_is();
	test_addr_list();
	test_walk();
	test_received_count();
	test_envelope_addr();
	test_body();
	return TEST_DONE();
}
