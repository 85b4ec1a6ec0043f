/*
 * test_dsn: delivery status notifications (relay/dsn.c).  Every report built
 * here is also checked for the shape any MTA needs: CRLF lines of at most 998
 * octets, 7-bit, one header section, and exactly the MIME delimiters we wrote.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"
#include "rl.h"
#include "tap.h"

/* CHECK_INT evaluates its arguments again on failure: call once. */
#define CHECK_RC(call, want)                                                                       \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		CHECK_INT(rc_, want);                                                              \
	} while (0)

#define OUT_LIMIT (1 << 20)
#define NOW	  1533289815  /* Fri, 3 Aug 2018 09:50:15 +0000 */
#define ARRIVAL	  (NOW - 600) /* 09:40:15 */
#define BOUNDARY  "ABCDEF0123.1533289815/relay.test"

static const char orig_msg[] = "Received: from x\r\n"
			       "From: <alice@client.test>\r\n"
			       "Subject: hello\r\n"
			       "\r\n"
			       "BODY-SECRET\r\n";

/* A report for three recipients: a folded SMTP reply, a local reason, and a
 * multi-line reply with an invalid status (the golden output below). */
static const char golden[] =
    "From: MAILER-DAEMON@relay.test (Mail Delivery System)\r\n"
    "To: <alice@client.test>\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "Date: Fri, 3 Aug 2018 09:50:15 +0000\r\n"
    "Message-ID: <20180803095015.ABCDEF0123@relay.test>\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    "\tboundary=\"ABCDEF0123.1533289815/relay.test\"\r\n"
    "\r\n"
    "This is a MIME-encapsulated message.\r\n"
    "\r\n"
    "--ABCDEF0123.1533289815/relay.test\r\n"
    "Content-Description: Notification\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "This is the mail system at host relay.test.\r\n"
    "\r\n"
    "I'm sorry to have to inform you that your message could not\r\n"
    "be delivered to one or more recipients. The headers of your\r\n"
    "message are attached below.\r\n"
    "\r\n"
    "For further assistance, please send mail to postmaster.\r\n"
    "\r\n"
    "If you do so, please include this problem report. You can\r\n"
    "delete your own text from the attached returned message.\r\n"
    "\r\n"
    "                   The mail system\r\n"
    "\r\n"
    "<bob@dest.test>: host mx.dest.test[192.0.2.1] said: 550 5.1.1\r\n"
    "    <bob@dest.test>: Recipient address rejected: User unknown in local\r\n"
    "    recipient table\r\n"
    "\r\n"
    "<carol@dest.test>: Server certificate not verified\r\n"
    "\r\n"
    "<dave@dest.test>: host mx2.dest.test[192.0.2.2] said: 550-5.7.1 line one 550\r\n"
    "    5.7.1 line two Subject: evil\r\n"
    "\r\n"
    "--ABCDEF0123.1533289815/relay.test\r\n"
    "Content-Description: Delivery report\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; relay.test\r\n"
    "X-Tlsrelay-Queue-ID: ABCDEF0123\r\n"
    "Arrival-Date: Fri, 3 Aug 2018 09:40:15 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822; bob@dest.test\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Remote-MTA: dns; mx.dest.test\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <bob@dest.test>: Recipient address\r\n"
    "    rejected: User unknown in local recipient table\r\n"
    "\r\n"
    "Final-Recipient: rfc822; carol@dest.test\r\n"
    "Action: failed\r\n"
    "Status: 5.7.1\r\n"
    "Diagnostic-Code: X-tlsrelay; Server certificate not verified\r\n"
    "\r\n"
    "Final-Recipient: rfc822; dave@dest.test\r\n"
    "Action: failed\r\n"
    "Status: 5.0.0\r\n"
    "Remote-MTA: dns; mx2.dest.test\r\n"
    "Diagnostic-Code: smtp; 550-5.7.1 line one 550 5.7.1 line two Subject: evil\r\n"
    "\r\n"
    "--ABCDEF0123.1533289815/relay.test\r\n"
    "Content-Description: Undelivered Message Headers\r\n"
    "Content-Type: text/rfc822-headers\r\n"
    "\r\n"
    "Received: from x\r\n"
    "From: <alice@client.test>\r\n"
    "Subject: hello\r\n"
    "\r\n"
    "--ABCDEF0123.1533289815/relay.test--\r\n";

static struct dsn_info base_info(void)
{
	struct dsn_info info = {
	    .reporting_mta = "relay.test",
	    .queue_id = "ABCDEF0123",
	    .sender = "alice@client.test",
	    .arrival = ARRIVAL,
	    .now = NOW,
	    .boundary = BOUNDARY,
	    .message_id = "20180803095015.ABCDEF0123@relay.test",
	};

	return info;
}

/*
 * Offset of the first byte that breaks the wire shape (a line not ending in
 * CRLF, a bare CR or LF, a line over 998 octets, a control or 8-bit byte),
 * or -1 when the whole text is well-formed.
 */
static long bad_line(const char *p, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r') {
			if (i + 1 >= n || p[i + 1] != '\n' || i - start > 998)
				return (long)(i - start > 998 ? start : i);
			i++;
			start = i + 1;
		} else if (c == '\n' || (c < 0x20 && c != '\t') || c >= 0x7f) {
			return (long)i;
		}
	}
	return start == n ? -1 : (long)start;
}

/* Call fn on each line (without CRLF) of p[0..n); stops when fn returns
 * non-zero and returns that. */
static int each_line(const char *p, size_t n, int (*fn)(void *, const char *, size_t), void *arg)
{
	size_t i = 0;

	while (i < n) {
		const char *e = memchr(p + i, '\r', n - i);
		size_t len = e ? (size_t)(e - p) - i : n - i;
		int rc = fn(arg, p + i, len);

		if (rc)
			return rc;
		i += len + 2;
	}
	return 0;
}

struct match {
	const char *text;
	size_t hits;
	int whole; /* the whole line, else a prefix */
};

static int match_line(void *arg, const char *line, size_t len)
{
	struct match *m = arg;
	size_t n = strlen(m->text);

	if (m->whole ? (len == n && memcmp(line, m->text, n) == 0)
		     : (len >= n && memcmp(line, m->text, n) == 0))
		m->hits++;
	return 0;
}

/* Lines of b equal to (whole) or starting with text. */
static size_t count_lines(const struct rl_buf *b, const char *text, int whole)
{
	struct match m = {text, 0, whole};

	if (b->data)
		(void)each_line(b->data, b->len, match_line, &m);
	return m.hits;
}

static size_t header_len(const struct rl_buf *b)
{
	const char *e = strstr(b->data, "\r\n\r\n");

	return e ? (size_t)(e - b->data) + 2 : 0;
}

/* Lines of the report's own header section starting with text. */
static size_t count_header_fields(const struct rl_buf *b, const char *text)
{
	struct rl_buf h = {b->data, header_len(b), 0, 0, 0};

	return count_lines(&h, text, 0);
}

/* The boundary parameter of the Content-Type header, into out. */
static void get_boundary(const struct rl_buf *b, char *out, size_t size)
{
	const char *p = strstr(b->data, "\tboundary=\"");
	const char *q = p ? strchr(p + 11, '"') : NULL;

	out[0] = '\0';
	if (p && q && (size_t)(q - p - 11) < size) {
		memcpy(out, p + 11, (size_t)(q - p - 11));
		out[q - p - 11] = '\0';
	}
}

/*
 * Content of part k (0-based) of the report: after the part's empty line, up
 * to the CRLF in front of the next delimiter.  NULL if there is no such part.
 */
static const char *get_part(const struct rl_buf *b, int k, size_t *len)
{
	char bnd[80], delim[90];
	const char *p, *start, *end;

	get_boundary(b, bnd, sizeof(bnd));
	snprintf(delim, sizeof(delim), "\r\n--%s", bnd);
	p = strstr(b->data, delim);
	for (int i = 0; i < k && p; i++)
		p = strstr(p + 1, delim);
	start = p ? strstr(p, "\r\n\r\n") : NULL;
	end = start ? strstr(start + 2, delim) : NULL;
	if (!end)
		return NULL;
	start += 4;
	*len = start > end ? 0 : (size_t)(end - start);
	return start > end ? end : start;
}

/* The shape every report must have: well-formed lines, one Subject in the
 * header section, and exactly three delimiters and one close delimiter. */
static void check_shape(const char *name, const struct rl_buf *b)
{
	char bnd[80], line[90];
	long bad = bad_line(b->data, b->len);

	CHECK(bad < 0, "%s: bad line at offset %ld: \"%.60s\"", name, bad,
	      bad < 0 ? "" : b->data + bad);
	CHECK_INT(count_header_fields(b, "Subject:"), 1);
	CHECK_INT(count_header_fields(b, "Content-Type:"), 1);
	get_boundary(b, bnd, sizeof(bnd));
	CHECK(bnd[0] && strlen(bnd) <= 70, "%s: boundary \"%s\"", name, bnd);
	snprintf(line, sizeof(line), "--%s", bnd);
	CHECK(count_lines(b, line, 1) == 3, "%s: %zu delimiters", name, count_lines(b, line, 1));
	CHECK(count_lines(b, line, 0) == 4, "%s: %zu lines start with the delimiter", name,
	      count_lines(b, line, 0));
	snprintf(line, sizeof(line), "--%s--", bnd);
	CHECK(count_lines(b, line, 1) == 1, "%s: no close delimiter", name);
	CHECK(b->len >= strlen(line) + 2 &&
		  memcmp(b->data + b->len - strlen(line) - 2, line, strlen(line)) == 0,
	      "%s: close delimiter not last", name);
}

static int build(struct rl_buf *b, const struct dsn_info *info, const struct dsn_rcpt *r, size_t n,
		 const char *orig, size_t origlen)
{
	rl_buf_init(b, OUT_LIMIT);
	return dsn_build(b, info, r, n, orig, origlen);
}

static const struct dsn_rcpt golden_rcpt[3] = {
    {"bob@dest.test", "failed", "5.1.1", "mx.dest.test[192.0.2.1]",
     "550 5.1.1 <bob@dest.test>: Recipient address rejected: User unknown in local "
     "recipient table",
     1},
    {"carol@dest.test", "failed", "5.7.1", NULL, "Server certificate not verified", 0},
    {"dave@dest.test", "failed", NULL, "mx2.dest.test[192.0.2.2]",
     "550-5.7.1 line one\r\n550 5.7.1 line two\r\nSubject: evil", 1},
};

static void test_golden(void)
{
	struct dsn_info info = base_info();
	struct rl_buf b;
	int rc = build(&b, &info, golden_rcpt, 3, orig_msg, strlen(orig_msg));

	CHECK_INT(rc, 0);
	CHECK(b.len == strlen(golden) && memcmp(b.data, golden, b.len) == 0, "got:\n%s\nwant:\n%s",
	      b.data, golden);
	check_shape("golden", &b);
	CHECK(strstr(b.data, "BODY-SECRET") == NULL, "the body was included");
	rl_buf_fini(&b);
}

/* Exact lines for each variant of a recipient. */
static void test_fields(void)
{
	static const struct {
		const char *name;
		struct dsn_rcpt r;
		const char *want[5];
		const char *absent;
	} cases[] = {
	    {"smtp reply",
	     {"bob@dest.test", "failed", "5.1.1", "mx.dest.test[192.0.2.1]",
	      "550 5.1.1 No such user", 1},
	     {"<bob@dest.test>: host mx.dest.test[192.0.2.1] said: 550 5.1.1 No such user",
	      "Remote-MTA: dns; mx.dest.test", "Diagnostic-Code: smtp; 550 5.1.1 No such user",
	      "Final-Recipient: rfc822; bob@dest.test", "Status: 5.1.1"},
	     NULL},
	    {"local reason",
	     {"carol@dest.test", "failed", "4.7.5", NULL, "TLS is required", 0},
	     {"<carol@dest.test>: TLS is required", "Diagnostic-Code: X-tlsrelay; TLS is required",
	      "Action: failed", "Status: 4.7.5", NULL},
	     "Remote-MTA:"},
	    {"host but no reply",
	     {"d@dest.test", "failed", "5.7.0", "mx.dest.test[192.0.2.1]", "Handshake failed", 0},
	     {"<d@dest.test>: host mx.dest.test[192.0.2.1]: Handshake failed",
	      "Remote-MTA: dns; mx.dest.test", "Diagnostic-Code: X-tlsrelay; Handshake failed",
	      NULL, NULL},
	     "said:"},
	    {"relay with port",
	     {"p@dest.test", "failed", "5.1.1", "mx.dest.test[2001:db8::1]:25", "550 5.1.1 no", 1},
	     {"<p@dest.test>: host mx.dest.test[2001:db8::1] said: 550 5.1.1 no",
	      "Remote-MTA: dns; mx.dest.test", NULL, NULL, NULL},
	     ":25"},
	    {"address literal only",
	     {"e@dest.test", "failed", "5.0.0", "[192.0.2.9]", "550 no", 1},
	     {"Remote-MTA: dns; [192.0.2.9]", "<e@dest.test>: host [192.0.2.9] said: 550 no", NULL,
	      NULL, NULL},
	     NULL},
	    {"bad status, failed",
	     {"f@dest.test", "failed", "5.1.1\r\nX-Evil: 1", NULL, "x", 0},
	     {"Status: 5.0.0", NULL, NULL, NULL, NULL},
	     "X-Evil"},
	    {"no status, delayed",
	     {"g@dest.test", "delayed", NULL, NULL, "", 0},
	     {"Status: 4.0.0", "Action: delayed", "<g@dest.test>: no diagnostic available",
	      "Diagnostic-Code: X-tlsrelay; no diagnostic available", NULL},
	     NULL},
	    {"status too long",
	     {"h@dest.test", "failed", "5.1234.1", NULL, "x", 0},
	     {"Status: 5.0.0", NULL, NULL, NULL, NULL},
	     NULL},
	    {"status class 3",
	     {"h@dest.test", "failed", "3.1.1", NULL, "x", 0},
	     {"Status: 5.0.0", NULL, NULL, NULL, NULL},
	     NULL},
	    {"8-bit and controls",
	     {"i\xc3\xa9@dest.test", "failed", "5.0.0", NULL, "bad\x01\x7f\tthing  here", 0},
	     {"Final-Recipient: rfc822; i??@dest.test", "<i??@dest.test>: bad?? thing here", NULL,
	      NULL, NULL},
	     NULL},
	};
	struct dsn_info info = base_info();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_buf b;
		int rc = build(&b, &info, &cases[i].r, 1, orig_msg, strlen(orig_msg));

		CHECK(rc == 0, "%s: rc %d", cases[i].name, rc);
		for (size_t k = 0; k < 5 && cases[i].want[k] && rc == 0; k++)
			CHECK(count_lines(&b, cases[i].want[k], 1) == 1,
			      "%s: no line \"%s\" in\n%s", cases[i].name, cases[i].want[k], b.data);
		if (cases[i].absent && rc == 0)
			CHECK(strstr(b.data, cases[i].absent) == NULL, "%s: \"%s\" present",
			      cases[i].name, cases[i].absent);
		if (rc == 0)
			check_shape(cases[i].name, &b);
		rl_buf_fini(&b);
	}
}

static void test_subject(void)
{
	static const struct dsn_rcpt r[2] = {
	    {"a@dest.test", "delayed", "4.4.1", NULL, "connection timed out", 0},
	    {"b@dest.test", "failed", "5.1.1", NULL, "no such user", 0},
	};
	struct dsn_info info = base_info();
	struct rl_buf b;

	CHECK_RC(build(&b, &info, r, 1, orig_msg, strlen(orig_msg)), 0);
	CHECK_INT(count_lines(&b, "Subject: Delayed Mail (still being retried)", 1), 1);
	CHECK_INT(count_lines(&b,
			      "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR "
			      "MESSAGE. #",
			      1),
		  1);
	CHECK_INT(count_lines(&b, "Content-Description: Delayed Message Headers", 1), 1);
	check_shape("delayed", &b);
	rl_buf_fini(&b);

	CHECK_RC(build(&b, &info, r, 2, orig_msg, strlen(orig_msg)), 0);
	CHECK_INT(count_lines(&b, "Subject: Undelivered Mail Returned to Sender", 1), 1);
	CHECK_INT(count_lines(&b, "Action: delayed", 1), 1);
	CHECK_INT(count_lines(&b, "Action: failed", 1), 1);
	check_shape("mixed", &b);
	rl_buf_fini(&b);
}

/* The delivery-status part, exactly: per-message fields, then one block per
 * recipient separated by empty lines and no empty line at the end. */
static void test_status_part(void)
{
	static const struct dsn_rcpt r[2] = {
	    {"a@dest.test", "failed", "5.1.1", "mx.dest.test", "550 5.1.1 no", 1},
	    {"b@dest.test", "failed", "5.4.7", NULL, "delivery time expired", 0},
	};
	static const char want[] = "Reporting-MTA: dns; relay.test\r\n"
				   "X-Tlsrelay-Queue-ID: ABCDEF0123\r\n"
				   "Arrival-Date: Fri, 3 Aug 2018 09:40:15 +0000\r\n"
				   "\r\n"
				   "Final-Recipient: rfc822; a@dest.test\r\n"
				   "Action: failed\r\n"
				   "Status: 5.1.1\r\n"
				   "Remote-MTA: dns; mx.dest.test\r\n"
				   "Diagnostic-Code: smtp; 550 5.1.1 no\r\n"
				   "\r\n"
				   "Final-Recipient: rfc822; b@dest.test\r\n"
				   "Action: failed\r\n"
				   "Status: 5.4.7\r\n"
				   "Diagnostic-Code: X-tlsrelay; delivery time expired\r\n";
	struct dsn_info info = base_info();
	struct rl_buf b;
	const char *p;
	size_t len = 0;

	CHECK_RC(build(&b, &info, r, 2, NULL, 0), 0);
	p = get_part(&b, 1, &len);
	CHECK(p && len == strlen(want) && memcmp(p, want, len) == 0, "got:\n%.*s\nwant:\n%s",
	      p ? (int)len : 0, p ? p : "", want);
	/* No original at all: the headers part is there, and empty. */
	p = get_part(&b, 2, &len);
	CHECK(p && len == 0, "headers part: %zu bytes", len);
	check_shape("status part", &b);
	rl_buf_fini(&b);
}

/* A hostile MX reply or address must not add a header field or MIME part. */
static void test_injection(void)
{
	static const struct dsn_rcpt r[2] = {
	    {"x@dest.test\r\nBcc: victim@else.test", "failed", "5.0.0", "mx\r\nX-Host: 1",
	     "550 evil\r\nSubject: evil\r\n\r\n--" BOUNDARY "\r\nContent-Type: text/html\r\n\r\n"
	     "<b>gotcha</b>\r\n--" BOUNDARY "--\r\n",
	     1},
	    {"y@dest.test", "failed", "5.0.0", NULL, "451 a\rSubject: cr\nSubject: lf", 0},
	};
	struct dsn_info info = base_info();
	struct rl_buf b;

	info.sender = "alice@client.test\r\nSubject: evil sender";
	info.reporting_mta = "relay.test\r\nX-Evil: 1";
	info.message_id = "id>\r\nX-Evil: 2";
	CHECK_RC(build(&b, &info, r, 2, orig_msg, strlen(orig_msg)), 0);
	check_shape("injection", &b);
	CHECK_INT(count_lines(&b, "Subject: evil", 0), 0);
	CHECK_INT(count_lines(&b, "Subject: cr", 0), 0);
	CHECK_INT(count_lines(&b, "Subject: lf", 0), 0);
	CHECK_INT(count_lines(&b, "Bcc:", 0), 0);
	CHECK_INT(count_lines(&b, "X-Evil:", 0), 0);
	CHECK_INT(count_lines(&b, "X-Host:", 0), 0);
	CHECK_INT(count_lines(&b, "Content-Type: text/html", 0), 0);
	CHECK_INT(count_lines(&b, "<b>", 0), 0);
	/* The text is still there, flattened onto continuation lines. */
	CHECK(strstr(b.data, "Subject: evil") != NULL, "diagnostic dropped");
	CHECK_INT(count_lines(&b, "Message-ID: <id???X-Evil:?2>", 1), 1);
	CHECK_INT(count_lines(&b, "Remote-MTA: dns; mx??X-Host:?1", 1), 1);
	CHECK_INT(count_lines(&b, "Final-Recipient: rfc822; x@dest.test Bcc: victim@else.test", 1),
		  1);
	rl_buf_fini(&b);
}

/* The original headers contain the caller's boundary: the report must use
 * another one, and still be well-formed. */
static void test_boundary_collision(void)
{
	static const char orig[] = "Subject: hi\r\n"
				   "X-Trap: --" BOUNDARY "\r\n"
				   "--" BOUNDARY "\r\n"
				   "X-Trap2: " BOUNDARY "--\r\n"
				   "\r\n"
				   "body\r\n";
	static const struct dsn_rcpt r = {"a@dest.test", "failed", "5.0.0", NULL, "no", 0};
	struct dsn_info info = base_info();
	struct rl_buf b;
	char bnd[80];
	const char *p;
	size_t len = 0;

	CHECK_RC(build(&b, &info, &r, 1, orig, strlen(orig)), 0);
	get_boundary(&b, bnd, sizeof(bnd));
	CHECK(strncmp(bnd, BOUNDARY "=_", strlen(BOUNDARY) + 2) == 0 &&
		  strlen(bnd) == strlen(BOUNDARY) + 18,
	      "boundary \"%s\"", bnd);
	check_shape("collision", &b);
	p = get_part(&b, 2, &len);
	CHECK(p && len == strlen(orig) - 8 && memcmp(p, orig, len) == 0, "headers part \"%.*s\"",
	      p ? (int)len : 0, p ? p : "");
	rl_buf_fini(&b);

	/* The same in a diagnostic also moves the boundary. */
	{
		struct dsn_rcpt r2 = {"a@dest.test", "failed", "5.0.0", NULL, "x " BOUNDARY, 0};

		CHECK_RC(build(&b, &info, &r2, 1, NULL, 0), 0);
		get_boundary(&b, bnd, sizeof(bnd));
		CHECK(strcmp(bnd, BOUNDARY) != 0, "boundary \"%s\"", bnd);
		check_shape("collision in diagnostic", &b);
		rl_buf_fini(&b);
	}
}

/* The caller's boundary is reduced to RFC 2046 bchars and at most 70. */
static void test_boundary_chars(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"a b\"c\r\n;d", "a.b.c...d"},
	    {"", "tlsrelay-dsn"},
	    {NULL, "tlsrelay-dsn"},
	    {"0123456789012345678901234567890123456789TOOLONG",
	     "0123456789012345678901234567890123456789"},
	    {"ok'()+_,-./:=?", "ok'()+_,-./:=?"},
	};
	static const struct dsn_rcpt r = {"a@dest.test", "failed", "5.0.0", NULL, "no", 0};
	struct dsn_info info = base_info();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_buf b;
		char bnd[80];

		info.boundary = cases[i].in;
		CHECK_RC(build(&b, &info, &r, 1, orig_msg, strlen(orig_msg)), 0);
		get_boundary(&b, bnd, sizeof(bnd));
		CHECK_STR(bnd, cases[i].want);
		check_shape(cases[i].want, &b);
		rl_buf_fini(&b);
	}
}

/* Long values: cut at 900 characters, folded where there are spaces, and no
 * line ever over 998 octets. */
static void test_long_values(void)
{
	char *nospace = malloc(5001), *spaces = malloc(5001), *addr = malloc(2001);
	struct dsn_rcpt r[3] = {
	    {NULL, "failed", "5.0.0", NULL, NULL, 1},
	    {NULL, "failed", "5.0.0", NULL, NULL, 0},
	    {NULL, "failed", "5.0.0", NULL, "x", 0},
	};
	struct dsn_info info = base_info();
	struct rl_buf b;

	RL_REQUIRE(nospace && spaces && addr);
	memset(nospace, 'x', 5000);
	nospace[5000] = '\0';
	for (size_t i = 0; i < 5000; i++)
		spaces[i] = i % 7 == 6 ? ' ' : 'y';
	spaces[5000] = '\0';
	memset(addr, 'a', 2000);
	addr[2000] = '\0';
	r[0].address = "a@dest.test";
	r[0].diagnostic = nospace;
	r[0].remote_mta = addr;
	r[1].address = "b@dest.test";
	r[1].diagnostic = spaces;
	r[2].address = addr;
	info.reporting_mta = addr;
	info.sender = addr;
	info.message_id = NULL;
	info.queue_id = addr;
	CHECK_RC(build(&b, &info, r, 3, NULL, 0), 0);
	check_shape("long", &b);
	CHECK(strstr(b.data, "xxx...") != NULL, "no cut marker");
	CHECK(strstr(b.data, "y...\r\n") != NULL, "no cut marker");
	CHECK(count_lines(&b, "    yyyyyy ", 0) > 5, "not folded");
	rl_buf_fini(&b);
	free(nospace);
	free(spaces);
	free(addr);
}

static void test_message_id(void)
{
	static const struct dsn_rcpt r = {"a@dest.test", "failed", "5.0.0", NULL, "no", 0};
	struct dsn_info info = base_info();
	struct rl_buf b;

	info.message_id = NULL;
	CHECK_RC(build(&b, &info, &r, 1, NULL, 0), 0);
	CHECK_INT(count_lines(&b, "Message-ID: <ABCDEF0123.1533289815@relay.test>", 1), 1);
	rl_buf_fini(&b);
	info.message_id = "";
	CHECK_RC(build(&b, &info, &r, 1, NULL, 0), 0);
	CHECK_INT(count_lines(&b, "Message-ID: <ABCDEF0123.1533289815@relay.test>", 1), 1);
	rl_buf_fini(&b);
}

/* The original header section: never the body, 7-bit, CRLF, capped. */
static void test_orig_headers(void)
{
	static const struct {
		const char *name, *orig, *want;
	} cases[] = {
	    {"no body", "A: 1\r\nB: 2\r\n", "A: 1\r\nB: 2\r\n"},
	    {"no final CRLF", "A: 1\r\nB: 2", "A: 1\r\nB: 2\r\n"},
	    {"empty header", "\r\nbody\r\n", ""},
	    {"empty", "", ""},
	    {"bare LF", "A: 1\nB: 2\n\nbody\n", "A: 1\r\nB: 2\r\n"},
	    {"folded", "A: 1\r\n\tcont\r\n\r\nbody", "A: 1\r\n\tcont\r\n"},
	    {"8-bit and controls", "S: caf\xc3\xa9\x01\r\nT: a\rb\r\n\r\n",
	     "S: caf???\r\nT: a?b\r\n"},
	};
	static const struct dsn_rcpt r = {"a@dest.test", "failed", "5.0.0", NULL, "no", 0};
	struct dsn_info info = base_info();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_buf b;
		const char *p;
		size_t len = 0;

		CHECK_RC(build(&b, &info, &r, 1, cases[i].orig, strlen(cases[i].orig)), 0);
		p = get_part(&b, 2, &len);
		CHECK(p && len == strlen(cases[i].want) && memcmp(p, cases[i].want, len) == 0,
		      "%s: got \"%.*s\" want \"%s\"", cases[i].name, p ? (int)len : 0, p ? p : "",
		      cases[i].want);
		check_shape(cases[i].name, &b);
		rl_buf_fini(&b);
	}
}

/*
 * REQUIRETLS mail (RFC 8689 section 5): the report returns only the
 * Message-ID field, with its folding, and says so; nothing else of the
 * original (Subject, addresses, other fields' continuation lines, body).
 */
static void test_redacted(void)
{
	static const struct {
		const char *name, *orig, *want;
	} cases[] = {
	    {"Message-ID kept, the rest dropped",
	     "Received: from x\r\nFrom: <alice@client.test>\r\nSubject: secret plans\r\n"
	     "Message-ID: <m1@client.test>\r\nTo: <bob@dest.test>\r\n\r\nsecret body\r\n",
	     "Message-ID: <m1@client.test>\r\n"},
	    {"folded Message-ID, folded neighbours",
	     "Subject: secret\r\n plans\r\nMessage-Id:\r\n\t<m2@client.test>\r\n"
	     "X-Other: a\r\n\tsecret continuation\r\n\r\nbody",
	     "Message-Id:\r\n\t<m2@client.test>\r\n"},
	    {"any case, blanks before the colon", "MESSAGE-ID : <m3@c.test>\r\nSubject: s\r\n",
	     "MESSAGE-ID : <m3@c.test>\r\n"},
	    {"no Message-ID: nothing", "Subject: secret\r\nFrom: a@b.test\r\n\r\nbody", ""},
	    {"look-alike names are not it",
	     "Message-IDs: <x@c.test>\r\nX-Message-ID: <y@c.test>\r\nMessage-I: z\r\n"
	     "Message-ID\r\n", ""},
	    {"empty original", "", ""},
	};
	static const struct dsn_rcpt r = {"a@dest.test", "failed", "5.7.30", "mx.dest.test[127.0.0.5]",
					  "REQUIRETLS: host mx.dest.test[127.0.0.5] does not offer "
					  "REQUIRETLS", 0};
	struct dsn_info info = base_info();

	info.redacted = 1;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_buf b;
		const char *p;
		size_t len = 0;

		CHECK_RC(build(&b, &info, &r, 1, cases[i].orig, strlen(cases[i].orig)), 0);
		p = get_part(&b, 2, &len);
		CHECK(p && len == strlen(cases[i].want) && memcmp(p, cases[i].want, len) == 0,
		      "%s: got \"%.*s\" want \"%s\"", cases[i].name, p ? (int)len : 0, p ? p : "",
		      cases[i].want);
		CHECK(b.data && !strstr(b.data, "secret") && !strstr(b.data, "body"),
		      "%s: content of the original in the report", cases[i].name);
		CHECK(b.data && strstr(b.data, "only its Message-ID is attached below"),
		      "%s: the text does not say what was left out", cases[i].name);
		CHECK(b.data && strstr(b.data, "Status: 5.7.30\r\n"), "%s: no status 5.7.30",
		      cases[i].name);
		check_shape(cases[i].name, &b);
		rl_buf_fini(&b);
	}
	/* Not redacted: the whole header section, as before. */
	{
		struct rl_buf b;
		const char *p;
		size_t len = 0;

		info.redacted = 0;
		CHECK_RC(build(&b, &info, &r, 1, cases[0].orig, strlen(cases[0].orig)), 0);
		p = get_part(&b, 2, &len);
		CHECK(p && len > 60 && strstr(b.data, "\r\nSubject: secret plans\r\nMessage-ID:"),
		      "unredacted report lost headers");
		CHECK(b.data && !strstr(b.data, "only its Message-ID"), "unredacted text says redacted");
		rl_buf_fini(&b);
	}
}

/* Huge header sections: lines cut at 998, the whole at 64 KiB. */
static void test_orig_caps(void)
{
	static const struct dsn_rcpt r = {"a@dest.test", "failed", "5.0.0", NULL, "no", 0};
	size_t n = 200 * 1024;
	char *orig = malloc(n);
	struct dsn_info info = base_info();
	struct rl_buf b;
	const char *p;
	size_t len = 0;

	RL_REQUIRE(orig);
	/* One 3000-byte line, then many short ones, then a body. */
	memset(orig, 'h', n);
	memcpy(orig, "Long: ", 6);
	memcpy(orig + 3000, "\r\n", 2);
	for (size_t i = 3002; i + 12 < n - 100; i += 12)
		memcpy(orig + i, "X-Pad: 1234\n", 12);
	memcpy(orig + n - 100, "\r\n\r\nBODYBODY", 12);
	CHECK_RC(build(&b, &info, &r, 1, orig, n), 0);
	check_shape("caps", &b);
	p = get_part(&b, 2, &len);
	CHECK(p && len <= 64 * 1024 && len > 60 * 1024, "headers part of %zu bytes", len);
	CHECK(p && memcmp(p, "Long: ", 6) == 0 && memcmp(p + 998, "\r\nX-Pad: 1234\r\n", 15) == 0,
	      "long line not cut at 998");
	CHECK(strstr(b.data, "BODYBODY") == NULL, "body included");
	rl_buf_fini(&b);
	free(orig);
}

/*
 * The delay warning (delay_warning_time): every recipient "delayed", its
 * own Subject and text, Will-Retry-Until (RFC 3464 section 2.3.8) with the
 * end of the queue lifetime, the original's headers attached.
 */
static void test_delay_warning(void)
{
	static const struct dsn_rcpt r[2] = {
	    {"a@dest.test", "delayed", "4.7.1", "mx.dest.test[192.0.2.1]:25",
	     "451 4.7.1 <a@dest.test>: try again later", 1},
	    {"b@dest.test", "delayed", "4.4.1", NULL, "connect to mx.dest.test[192.0.2.1]:25: "
	     "Connection refused", 0},
	};
	static const char want_status[] =
	    "Reporting-MTA: dns; relay.test\r\n"
	    "X-Tlsrelay-Queue-ID: ABCDEF0123\r\n"
	    "Arrival-Date: Fri, 3 Aug 2018 09:40:15 +0000\r\n"
	    "\r\n"
	    "Final-Recipient: rfc822; a@dest.test\r\n"
	    "Action: delayed\r\n"
	    "Status: 4.7.1\r\n"
	    "Remote-MTA: dns; mx.dest.test\r\n"
	    "Diagnostic-Code: smtp; 451 4.7.1 <a@dest.test>: try again later\r\n"
	    "Will-Retry-Until: Wed, 8 Aug 2018 09:40:15 +0000\r\n"
	    "\r\n"
	    "Final-Recipient: rfc822; b@dest.test\r\n"
	    "Action: delayed\r\n"
	    "Status: 4.4.1\r\n"
	    "Diagnostic-Code: X-tlsrelay; connect to mx.dest.test[192.0.2.1]:25:\r\n"
	    "    Connection refused\r\n"
	    "Will-Retry-Until: Wed, 8 Aug 2018 09:40:15 +0000\r\n";
	static const char want_text[] =
	    "This is the mail system at host relay.test.\r\n"
	    "\r\n"
	    "####################################################################\r\n"
	    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
	    "####################################################################\r\n"
	    "\r\n"
	    "Your message could not yet be delivered to the recipients\r\n"
	    "listed below. The mail system will keep trying to deliver it.\r\n"
	    "It will be retried until Wed, 8 Aug 2018 09:40:15 +0000.\r\n"
	    "The headers of your message are attached below.\r\n"
	    "\r\n";
	struct dsn_info info = base_info();
	struct rl_buf b;
	const char *p;
	size_t len = 0;

	info.will_retry_until = ARRIVAL + 5 * 86400;
	CHECK_RC(build(&b, &info, r, 2, orig_msg, strlen(orig_msg)), 0);
	check_shape("delay warning", &b);
	CHECK_INT(count_header_fields(&b, "Subject: Delayed Mail (still being retried)"), 1);
	CHECK_INT(count_header_fields(&b, "Content-Type: multipart/report; "
					  "report-type=delivery-status;"), 1);
	p = get_part(&b, 0, &len);
	CHECK(p && len > strlen(want_text) && memcmp(p, want_text, strlen(want_text)) == 0,
	      "text got:\n%.*s\nwant it to start:\n%s", p ? (int)len : 0, p ? p : "", want_text);
	CHECK(p && strstr(p, "<a@dest.test>: host mx.dest.test[192.0.2.1] said: 451 4.7.1"),
	      "no reason for a@ in the text");
	p = get_part(&b, 1, &len);
	CHECK(p && len == strlen(want_status) && memcmp(p, want_status, len) == 0,
	      "status got:\n%.*s\nwant:\n%s", p ? (int)len : 0, p ? p : "", want_status);
	p = get_part(&b, 2, &len);
	CHECK(p && len == strlen("Received: from x\r\nFrom: <alice@client.test>\r\n"
				 "Subject: hello\r\n"),
	      "headers part: %zu bytes", len);
	CHECK_INT(count_lines(&b, "Content-Description: Delayed Message Headers", 1), 1);
	CHECK(strstr(b.data, "BODY-SECRET") == NULL, "the body was included");
	rl_buf_fini(&b);

	/* No expiry given: no Will-Retry-Until, no date in the text. */
	info.will_retry_until = 0;
	CHECK_RC(build(&b, &info, r, 1, orig_msg, strlen(orig_msg)), 0);
	CHECK_INT(count_lines(&b, "Will-Retry-Until:", 0), 0);
	CHECK(strstr(b.data, "retried until") == NULL, "a date without an expiry");
	CHECK_INT(count_lines(&b, "The headers of your message are attached below.", 1), 1);
	check_shape("delay warning, no expiry", &b);
	rl_buf_fini(&b);

	/* Only "delayed" blocks carry the field (RFC 3464 section 2.3.8). */
	{
		const struct dsn_rcpt mixed[2] = {
		    r[0], {"c@dest.test", "failed", "5.1.1", NULL, "no such user", 0}};

		info.will_retry_until = ARRIVAL + 5 * 86400;
		CHECK_RC(build(&b, &info, mixed, 2, orig_msg, strlen(orig_msg)), 0);
		CHECK_INT(count_lines(&b, "Will-Retry-Until:", 0), 1);
		CHECK_INT(count_lines(&b, "Subject: Undelivered Mail Returned to Sender", 1), 1);
		check_shape("mixed with expiry", &b);
		rl_buf_fini(&b);
	}
}

/* A delay warning for REQUIRETLS mail is redacted as a bounce is. */
static void test_delay_warning_redacted(void)
{
	static const struct dsn_rcpt r = {"a@dest.test", "delayed", "4.7.5",
					  "mx.dest.test[127.0.0.5]",
					  "Server certificate not verified", 0};
	static const char orig[] = "Subject: secret plans\r\nMessage-ID: <m1@client.test>\r\n"
				   "To: <bob@dest.test>\r\n\r\nsecret body\r\n";
	struct dsn_info info = base_info();
	struct rl_buf b;
	const char *p;
	size_t len = 0;

	info.redacted = 1;
	info.will_retry_until = ARRIVAL + 86400;
	CHECK_RC(build(&b, &info, &r, 1, orig, strlen(orig)), 0);
	check_shape("redacted delay warning", &b);
	p = get_part(&b, 2, &len);
	CHECK(p && len == strlen("Message-ID: <m1@client.test>\r\n") &&
		  memcmp(p, "Message-ID: <m1@client.test>\r\n", len) == 0,
	      "headers part: \"%.*s\"", p ? (int)len : 0, p ? p : "");
	CHECK(!strstr(b.data, "secret"), "content of the original in the report");
	CHECK(strstr(b.data, "Your message required TLS (REQUIRETLS), so only its\r\n"
			     "Message-ID is attached below.\r\n"),
	      "the text does not say what was left out");
	CHECK(!strstr(b.data, "The headers of your message are attached"), "text says headers");
	CHECK_INT(count_lines(&b, "Action: delayed", 1), 1);
	CHECK_INT(count_lines(&b, "Will-Retry-Until: Sat, 4 Aug 2018 09:40:15 +0000", 1), 1);
	rl_buf_fini(&b);
}

static void test_errors(void)
{
	static const struct dsn_rcpt ok = {"a@dest.test", "failed", "5.0.0", NULL, "no", 0};
	static const struct dsn_rcpt bad = {"a@dest.test", "bounced", "5.0.0", NULL, "no", 0};
	struct dsn_info info = base_info();
	struct rl_buf b;

	/* Errors leave what was in the buffer untouched. */
	rl_buf_init(&b, 1000);
	CHECK_RC(rl_buf_puts(&b, "keep"), 0);
	CHECK_RC(dsn_build(&b, &info, &ok, 0, NULL, 0), -EINVAL);
	CHECK_RC(dsn_build(&b, &info, &bad, 1, NULL, 0), -EINVAL);
	info.sender = "";
	CHECK_RC(dsn_build(&b, &info, &ok, 1, NULL, 0), -EINVAL);
	info.sender = NULL;
	CHECK_RC(dsn_build(&b, &info, &ok, 1, NULL, 0), -EINVAL);
	info = base_info();
	CHECK_RC(dsn_build(&b, &info, &ok, 1, orig_msg, strlen(orig_msg)), RL_ETOOBIG);
	CHECK(b.len == 4 && strcmp(b.data, "keep") == 0, "buffer changed: \"%s\"", b.data);
	info.now = (int64_t)1 << 60;
	CHECK_RC(dsn_build(&b, &info, &ok, 1, NULL, 0), -EOVERFLOW);
	info = base_info();
	info.arrival = -2208988801LL; /* 1899-12-31 23:59:59 */
	CHECK_RC(dsn_build(&b, &info, &ok, 1, NULL, 0), -EOVERFLOW);
	CHECK(b.len == 4 && strcmp(b.data, "keep") == 0, "buffer changed: \"%s\"", b.data);
	rl_buf_fini(&b);

	/* Success appends after what was there. */
	info = base_info();
	rl_buf_init(&b, OUT_LIMIT);
	CHECK_RC(rl_buf_puts(&b, "keep"), 0);
	CHECK_RC(dsn_build(&b, &info, &ok, 1, NULL, 0), 0);
	CHECK(strncmp(b.data, "keepFrom: MAILER-DAEMON@relay.test", 34) == 0, "prefix lost");
	rl_buf_fini(&b);
}

int main(void)
{
	test_golden();
	test_fields();
	test_subject();
	test_status_part();
	test_injection();
	test_boundary_collision();
	test_boundary_chars();
	test_long_values();
	test_message_id();
	test_orig_headers();
	test_orig_caps();
	test_redacted();
	test_delay_warning();
	test_delay_warning_redacted();
	test_errors();
	return TEST_DONE();
}
