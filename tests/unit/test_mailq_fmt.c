/*
 * test_mailq_fmt: the mailq text and JSON listings (relay/mailq_fmt.c),
 * byte for byte against INTERFACE.md "Queue listing".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailq.h"
#include "queue.h"
#include "rl.h"
#include "tap.h"

#define CASE_INT(name, got, want)                                          \
	CHECK((long long)(got) == (long long)(want), "%s: got %lld want %lld", \
	      (name), (long long)(got), (long long)(want))
#define CASE_STR(name, got, want)                                          \
	do {                                                               \
		const char *cg_ = (got), *cw_ = (want);                    \
		CHECK(cg_ && cw_ && strcmp(cg_, cw_) == 0,                 \
		      "%s:\n--- got\n%s--- want\n%s---", (name),           \
		      cg_ ? cg_ : "(null)\n", cw_ ? cw_ : "(null)\n");     \
	} while (0)

/* Fri Aug  3 09:50:15 2018 UTC, the arrival time of the contract's example. */
#define ARRIVAL 1533289815
#define ID "4C2E81A0F3"

/* Column blanks of the layout: recipient lines, and reason lines. */
#define SP41 "                                         "
_Static_assert(sizeof(SP41) - 1 == 41, "SP41");
#define SP10 "          "
_Static_assert(sizeof(SP10) - 1 == 10, "SP10");

#define PENDING QUEUE_RCPT_PENDING
#define DEFERRED QUEUE_RCPT_DEFERRED
#define SENT QUEUE_RCPT_SENT
#define BOUNCED QUEUE_RCPT_BOUNCED

/* A recipient as tables write it. */
struct rcpt_spec {
	const char *address;
	int state;
	const char *reason; /* NULL: none */
};

/* A message as tables write it. */
struct msg_spec {
	const char *sender;
	int64_t arrival; /* 0: ARRIVAL */
	uint64_t size;
	uint32_t attempts;
	uint32_t flags;
	struct rcpt_spec rcpt[8]; /* address NULL ends */
};

struct built {
	struct queue_msg m;
	struct queue_rcpt r[8];
};

/* Fill b->m from s; the strings are borrowed from s (never freed). */
static void build(struct built *b, const struct msg_spec *s)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->m.id, sizeof(b->m.id), "%s", ID);
	b->m.sender = (char *)(uintptr_t)s->sender;
	b->m.arrival = s->arrival ? s->arrival : ARRIVAL;
	b->m.next_attempt = b->m.arrival + 300;
	b->m.attempts = s->attempts;
	b->m.flags = s->flags;
	b->m.size = s->size;
	for (size_t i = 0; i < 8 && s->rcpt[i].address; i++) {
		b->r[i].address = (char *)(uintptr_t)s->rcpt[i].address;
		b->r[i].state = s->rcpt[i].state;
		b->r[i].reason = (char *)(uintptr_t)s->rcpt[i].reason;
		snprintf(b->r[i].dsn, sizeof(b->r[i].dsn), "%s",
			 s->rcpt[i].state == DEFERRED ? "4.7.5" :
			 s->rcpt[i].state == BOUNCED ? "5.1.1" : "");
		b->m.nrcpt = i + 1;
	}
	b->m.rcpt = b->m.nrcpt ? b->r : NULL;
}

/* ------------------------------------------------------------ queue names */

static void test_queue_name(void)
{
	static const struct {
		const char *name;
		struct msg_spec m;
		int active;
		const char *want;
	} cases[] = {
		{ "new message", { "a@example.com", 0, 10, 0, 0, { { "b@example.com", PENDING, NULL } } },
		  0, "incoming" },
		{ "attempted", { "a@example.com", 0, 10, 1, 0, { { "b@example.com", PENDING, NULL } } },
		  0, "deferred" },
		{ "a deferred recipient",
		  { "a@example.com", 0, 10, 0, 0, { { "b@example.com", DEFERRED, "x" } } }, 0,
		  "deferred" },
		{ "deferred and attempted",
		  { "a@example.com", 0, 10, 3, 0,
		    { { "b@example.com", SENT, NULL }, { "c@example.com", DEFERRED, "x" } } },
		  0, "deferred" },
		{ "in delivery", { "a@example.com", 0, 10, 0, 0, { { "b@example.com", PENDING, NULL } } },
		  1, "active" },
		{ "deferred, in delivery again",
		  { "a@example.com", 0, 10, 2, 0, { { "b@example.com", DEFERRED, "x" } } }, 1,
		  "active" },
		{ "on hold",
		  { "a@example.com", 0, 10, 0, QUEUE_F_HOLD, { { "b@example.com", PENDING, NULL } } },
		  0, "hold" },
		{ "deferred, on hold",
		  { "a@example.com", 0, 10, 2, QUEUE_F_HOLD, { { "b@example.com", DEFERRED, "x" } } },
		  0, "hold" },
		{ "other flags are not hold",
		  { "a@example.com", 0, 10, 0, QUEUE_F_8BITMIME | QUEUE_F_SMTPUTF8 | QUEUE_F_BOUNCE,
		    { { "b@example.com", PENDING, NULL } } },
		  0, "incoming" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct built b;
		char name[96];

		build(&b, &cases[i].m);
		snprintf(name, sizeof(name), "queue_name %s", cases[i].name);
		CASE_STR(name, mailq_queue_name(&b.m, cases[i].active), cases[i].want);
	}

	/* Listed recipients: those still to be delivered. */
	{
		static const struct {
			int state;
			int want;
		} st[] = { { PENDING, 1 }, { DEFERRED, 1 }, { SENT, 0 }, { BOUNCED, 0 } };

		for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
			struct queue_rcpt r;
			char name[64];

			memset(&r, 0, sizeof(r));
			r.address = (char *)(uintptr_t)"x@example.com";
			r.state = st[i].state;
			snprintf(name, sizeof(name), "rcpt_listed state %d", st[i].state);
			CASE_INT(name, mailq_rcpt_listed(&r) != 0, st[i].want);
		}
	}
}

/* ------------------------------------------------------------- text layout */

#define R76 "0123456789012345678901234567890123456789012345678901234567890123456789012345"
#define R77 R76 "6"
#define R75 "012345678901234567890123456789012345678901234567890123456789012345678901234"
_Static_assert(sizeof(R76) - 1 == 76 && sizeof(R75) - 1 == 75, "reason lengths");

static void test_text(void)
{
	static const struct {
		const char *name;
		struct msg_spec m;
		int active;
		const char *want;
	} cases[] = {
		{ "contract example",
		  { "root@send.example.com", 0, 330, 1, 0,
		    { { "recipient@receive.example.com", DEFERRED, "Server certificate not verified" } } },
		  0,
		  "4C2E81A0F3      330 Fri Aug  3 09:50:15  root@send.example.com\n"
		  "                                             (Server certificate not verified)\n"
		  "                                         recipient@receive.example.com\n" },
		{ "not yet tried: no reason line",
		  { "a@example.com", 0, 1234, 0, 0, { { "b@example.com", PENDING, NULL } } },
		  0,
		  "4C2E81A0F3     1234 Fri Aug  3 09:50:15  a@example.com\n"
		  SP41 "b@example.com\n" },
		{ "null sender",
		  { "", 0, 2048, 0, 0, { { "b@example.com", PENDING, NULL } } },
		  0,
		  "4C2E81A0F3     2048 Fri Aug  3 09:50:15  MAILER-DAEMON\n"
		  SP41 "b@example.com\n" },
		{ "on hold",
		  { "a@example.com", 0, 7, 0, QUEUE_F_HOLD, { { "b@example.com", PENDING, NULL } } },
		  0,
		  "4C2E81A0F3!       7 Fri Aug  3 09:50:15  a@example.com\n"
		  SP41 "b@example.com\n" },
		{ "requiretls: the Postfix layout has no place for it",
		  { "a@example.com", 0, 7, 0, QUEUE_F_REQUIRETLS, { { "b@example.com", PENDING, NULL } } },
		  0,
		  "4C2E81A0F3        7 Fri Aug  3 09:50:15  a@example.com\n"
		  SP41 "b@example.com\n" },
		{ "in delivery",
		  { "a@example.com", 0, 7, 0, 0, { { "b@example.com", PENDING, NULL } } },
		  1,
		  "4C2E81A0F3*       7 Fri Aug  3 09:50:15  a@example.com\n"
		  SP41 "b@example.com\n" },
		{ "size of 7 digits",
		  { "a@example.com", 0, 9999999, 0, 0, { { "b@example.com", PENDING, NULL } } },
		  0,
		  "4C2E81A0F3  9999999 Fri Aug  3 09:50:15  a@example.com\n"
		  SP41 "b@example.com\n" },
		{ "size of 8 digits pushes the line",
		  { "a@example.com", 0, 12345678, 0, 0, { { "b@example.com", PENDING, NULL } } },
		  0,
		  "4C2E81A0F3  12345678 Fri Aug  3 09:50:15  a@example.com\n"
		  SP41 "b@example.com\n" },
		{ "size 0",
		  { "a@example.com", 0, 0, 0, 0, { { "b@example.com", PENDING, NULL } } },
		  0,
		  "4C2E81A0F3        0 Fri Aug  3 09:50:15  a@example.com\n"
		  SP41 "b@example.com\n" },
		{ "two-digit day and other time",
		  { "a@example.com", 1700000000, 10, 0, 0, { { "b@example.com", PENDING, NULL } } },
		  0,
		  "4C2E81A0F3       10 Tue Nov 14 22:13:20  a@example.com\n"
		  SP41 "b@example.com\n" },
		{ "reason of 75 characters: one space",
		  { "a@example.com", 0, 10, 1, 0, { { "b@example.com", DEFERRED, R75 } } },
		  0,
		  "4C2E81A0F3       10 Fri Aug  3 09:50:15  a@example.com\n"
		  " (" R75 ")\n"
		  SP41 "b@example.com\n" },
		{ "reason of 76 characters: no space",
		  { "a@example.com", 0, 10, 1, 0, { { "b@example.com", DEFERRED, R76 } } },
		  0,
		  "4C2E81A0F3       10 Fri Aug  3 09:50:15  a@example.com\n"
		  "(" R76 ")\n"
		  SP41 "b@example.com\n" },
		{ "reason longer than 76: no leading spaces",
		  { "a@example.com", 0, 10, 1, 0, { { "b@example.com", DEFERRED, R77 } } },
		  0,
		  "4C2E81A0F3       10 Fri Aug  3 09:50:15  a@example.com\n"
		  "(" R77 ")\n"
		  SP41 "b@example.com\n" },
		{ "recipients grouped by identical reason",
		  { "a@example.com", 0, 10, 2, 0,
		    { { "r1@example.com", DEFERRED, "connection timed out" },
		      { "r2@example.org", DEFERRED, "Server certificate not verified" },
		      { "r3@example.com", DEFERRED, "connection timed out" },
		      { "r4@example.org", DEFERRED, "Server certificate not verified" },
		      { "r5@example.net", DEFERRED, "TLS is required, but was not offered" } } },
		  0,
		  "4C2E81A0F3       10 Fri Aug  3 09:50:15  a@example.com\n"
		  "                                                        (connection timed out)\n"
		  SP41 "r1@example.com\n"
		  SP41 "r3@example.com\n"
		  "                                             (Server certificate not verified)\n"
		  SP41 "r2@example.org\n"
		  SP41 "r4@example.org\n"
		  "                                        (TLS is required, but was not offered)\n"
		  SP41 "r5@example.net\n" },
		{ "sent and bounced recipients not listed",
		  { "a@example.com", 0, 10, 2, 0,
		    { { "sent@example.com", SENT, NULL },
		      { "bounced@example.com", BOUNCED, "host said: 550 5.1.1 unknown user" },
		      { "late@example.com", DEFERRED, "connection timed out" },
		      { "sent2@example.com", SENT, "250 2.0.0 ok" } } },
		  0,
		  "4C2E81A0F3       10 Fri Aug  3 09:50:15  a@example.com\n"
		  "                                                        (connection timed out)\n"
		  SP41 "late@example.com\n" },
		{ "bounced reason shared with a deferred one is no group of its own",
		  { "a@example.com", 0, 10, 2, 0,
		    { { "bounced@example.com", BOUNCED, "same" },
		      { "late@example.com", DEFERRED, "same" } } },
		  0,
		  "4C2E81A0F3       10 Fri Aug  3 09:50:15  a@example.com\n"
		  "                                                                        (same)\n"
		  SP41 "late@example.com\n" },
		{ "nothing left to deliver",
		  { "a@example.com", 0, 10, 2, 0,
		    { { "sent@example.com", SENT, NULL }, { "b@example.com", BOUNCED, "gone" } } },
		  0,
		  "4C2E81A0F3       10 Fri Aug  3 09:50:15  a@example.com\n" },
		{ "several recipients not yet tried",
		  { "a@example.com", 0, 10, 0, 0,
		    { { "b@example.com", PENDING, NULL }, { "c@example.com", PENDING, NULL } } },
		  0,
		  "4C2E81A0F3       10 Fri Aug  3 09:50:15  a@example.com\n"
		  SP41 "b@example.com\n"
		  SP41 "c@example.com\n" },
	};

	/* TZ=UTC (set in main) makes asctime() stable. */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct built b;
		struct rl_buf out;
		char name[128];
		int rc;

		build(&b, &cases[i].m);
		rl_buf_init(&out, 1 << 16);
		rc = mailq_format_text(&out, &b.m, cases[i].active);
		snprintf(name, sizeof(name), "text %s", cases[i].name);
		CASE_INT(name, rc, 0);
		CASE_STR(name, out.data ? out.data : "", cases[i].want);
		rl_buf_fini(&out);
	}

	/* Reason lines end their ')' in column 78 for every length up to 76. */
	for (size_t len = 1; len <= 80; len++) {
		struct msg_spec s = { "a@example.com", 0, 10, 1, 0, { { "b@example.com", DEFERRED,
									 NULL } } };
		char reason[100], want[400], name[64];
		struct built b;
		struct rl_buf out;
		size_t pad = len < 76 ? 76 - len : 0;
		int rc;

		memset(reason, 'r', len);
		reason[len] = '\0';
		s.rcpt[0].reason = reason;
		snprintf(want, sizeof(want),
			 "4C2E81A0F3       10 Fri Aug  3 09:50:15  a@example.com\n"
			 "%*s(%s)\n" SP41 "b@example.com\n",
			 (int)pad, "", reason);
		build(&b, &s);
		rl_buf_init(&out, 1 << 16);
		rc = mailq_format_text(&out, &b.m, 0);
		snprintf(name, sizeof(name), "text reason of %zu characters", len);
		CASE_INT(name, rc, 0);
		CASE_STR(name, out.data ? out.data : "", want);
		if (len <= 76 && out.data) {
			/* The second line is 78 columns, ')' last. */
			const char *l2 = strchr(out.data, '\n') + 1;
			const char *e2 = strchr(l2, '\n');

			CASE_INT(name, e2 - l2, 78);
			CHECK(e2[-1] == ')', "%s: line does not end in ')'", name);
		}
		rl_buf_fini(&out);
	}
}

/*
 * Recipients not yet tried and deferred ones in one message: each reason line
 * heads exactly the recipients that share it.  INTERFACE.md does not fix the
 * order of the untried group against the reason groups (Postfix lists the
 * deferred recipients first), so either order is accepted.
 */
static void test_text_mixed(void)
{
	static const struct msg_spec s = {
		"a@example.com", 0, 10, 1, 0,
		{ { "new1@example.com", PENDING, NULL },
		  { "late@example.com", DEFERRED, "connection timed out" },
		  { "sent@example.com", SENT, NULL },
		  { "new2@example.com", PENDING, NULL } }
	};
	static const char head[] = "4C2E81A0F3       10 Fri Aug  3 09:50:15  a@example.com\n";
	static const char untried[] = SP41 "new1@example.com\n" SP41 "new2@example.com\n";
	static const char reasoned[] =
		"                                                        (connection timed out)\n"
		SP41 "late@example.com\n";
	char want1[1024], want2[1024];
	struct built b;
	struct rl_buf out;
	int rc;

	snprintf(want1, sizeof(want1), "%s%s%s", head, untried, reasoned);
	snprintf(want2, sizeof(want2), "%s%s%s", head, reasoned, untried);
	build(&b, &s);
	rl_buf_init(&out, 1 << 16);
	rc = mailq_format_text(&out, &b.m, 0);
	CHECK_INT(rc, 0);
	CHECK(out.data && (strcmp(out.data, want1) == 0 || strcmp(out.data, want2) == 0),
	      "text mixed:\n--- got\n%s--- want\n%s--- or\n%s---", out.data ? out.data : "",
	      want1, want2);
	rl_buf_fini(&out);
}

/* The output buffer's limit is honoured: RL_ETOOBIG, never a partial overrun. */
static void test_text_limit(void)
{
	static const struct msg_spec s = {
		"root@send.example.com", 0, 330, 1, 0,
		{ { "recipient@receive.example.com", DEFERRED, "Server certificate not verified" } }
	};
	struct built b;
	struct rl_buf out;
	int rc;

	build(&b, &s);
	rl_buf_init(&out, 40);
	rc = mailq_format_text(&out, &b.m, 0);
	CHECK_INT(rc, RL_ETOOBIG);
	CHECK(out.len <= 40, "len %zu past limit", out.len);
	rl_buf_fini(&out);
}

static void test_trailer(void)
{
	static const struct {
		uint64_t bytes, count;
		const char *want;
	} cases[] = {
		{ 330, 1, "-- 0 Kbytes in 1 Request.\n" },
		{ 1023, 1, "-- 0 Kbytes in 1 Request.\n" },
		{ 1024, 1, "-- 1 Kbytes in 1 Request.\n" },
		{ 2047, 2, "-- 1 Kbytes in 2 Requests.\n" },
		{ 5 * 1024 * 1024, 10, "-- 5120 Kbytes in 10 Requests.\n" },
		{ 4294967296ULL * 1024, 123456, "-- 4294967296 Kbytes in 123456 Requests.\n" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_buf out;
		char name[96];
		int rc;

		rl_buf_init(&out, 256);
		rc = mailq_format_trailer(&out, cases[i].bytes, cases[i].count);
		snprintf(name, sizeof(name), "trailer %llu bytes %llu messages",
			 (unsigned long long)cases[i].bytes, (unsigned long long)cases[i].count);
		CASE_INT(name, rc, 0);
		CASE_STR(name, out.data ? out.data : "", cases[i].want);
		rl_buf_fini(&out);
	}
}

/* The whole listing of two messages as mailq prints it. */
static void test_listing(void)
{
	static const struct msg_spec s1 = {
		"root@send.example.com", 0, 330, 1, 0,
		{ { "recipient@receive.example.com", DEFERRED, "Server certificate not verified" } }
	};
	static const struct msg_spec s2 = {
		"", 1700000000, 2000, 0, QUEUE_F_HOLD, { { "x@example.org", PENDING, NULL } }
	};
	static const char want[] =
		"-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n"
		"4C2E81A0F3      330 Fri Aug  3 09:50:15  root@send.example.com\n"
		"                                             (Server certificate not verified)\n"
		"                                         recipient@receive.example.com\n"
		"\n"
		"4C2E81A0F3!    2000 Tue Nov 14 22:13:20  MAILER-DAEMON\n"
		"                                         x@example.org\n"
		"\n"
		"-- 2 Kbytes in 2 Requests.\n";
	struct built b1, b2;
	struct rl_buf out;
	int rc;

	build(&b1, &s1);
	build(&b2, &s2);
	rl_buf_init(&out, 1 << 16);
	rc = rl_buf_puts(&out, "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n");
	if (rc == 0)
		rc = mailq_format_text(&out, &b1.m, 0);
	if (rc == 0)
		rc = rl_buf_puts(&out, "\n");
	if (rc == 0)
		rc = mailq_format_text(&out, &b2.m, 0);
	if (rc == 0)
		rc = rl_buf_puts(&out, "\n");
	if (rc == 0)
		rc = mailq_format_trailer(&out, 330 + 2000, 2);
	CHECK_INT(rc, 0);
	CASE_STR("listing of two messages", out.data ? out.data : "", want);
	rl_buf_fini(&out);
}

/* ------------------------------------------------------------------- JSON */

static void test_json(void)
{
	static const struct {
		const char *name;
		struct msg_spec m;
		int active;
		const char *want;
	} cases[] = {
		{ "contract example",
		  { "root@send.example.com", 0, 330, 1, 0,
		    { { "recipient@receive.example.com", DEFERRED, "Server certificate not verified" } } },
		  0,
		  "{\"queue_name\": \"deferred\", \"queue_id\": \"4C2E81A0F3\", "
		  "\"arrival_time\": 1533289815, \"message_size\": 330, \"forced_expire\": false, "
		  "\"sender\": \"root@send.example.com\", \"recipients\": [{\"address\": "
		  "\"recipient@receive.example.com\", \"delay_reason\": "
		  "\"Server certificate not verified\"}]}\n" },
		{ "incoming, no delay_reason",
		  { "a@example.com", 0, 1234, 0, 0, { { "b@example.com", PENDING, NULL } } },
		  0,
		  "{\"queue_name\": \"incoming\", \"queue_id\": \"4C2E81A0F3\", "
		  "\"arrival_time\": 1533289815, \"message_size\": 1234, \"forced_expire\": false, "
		  "\"sender\": \"a@example.com\", \"recipients\": [{\"address\": "
		  "\"b@example.com\"}]}\n" },
		{ "hold",
		  { "a@example.com", 0, 1, 1, QUEUE_F_HOLD, { { "b@example.com", DEFERRED, "why" } } },
		  0,
		  "{\"queue_name\": \"hold\", \"queue_id\": \"4C2E81A0F3\", "
		  "\"arrival_time\": 1533289815, \"message_size\": 1, \"forced_expire\": false, "
		  "\"sender\": \"a@example.com\", \"recipients\": [{\"address\": "
		  "\"b@example.com\", \"delay_reason\": \"why\"}]}\n" },
		{ "active",
		  { "a@example.com", 1700000000, 99, 0, 0, { { "b@example.com", PENDING, NULL } } },
		  1,
		  "{\"queue_name\": \"active\", \"queue_id\": \"4C2E81A0F3\", "
		  "\"arrival_time\": 1700000000, \"message_size\": 99, \"forced_expire\": false, "
		  "\"sender\": \"a@example.com\", \"recipients\": [{\"address\": "
		  "\"b@example.com\"}]}\n" },
		{ "null sender",
		  { "", 0, 5, 0, 0, { { "b@example.com", PENDING, NULL } } },
		  0,
		  "{\"queue_name\": \"incoming\", \"queue_id\": \"4C2E81A0F3\", "
		  "\"arrival_time\": 1533289815, \"message_size\": 5, \"forced_expire\": false, "
		  "\"sender\": \"\", \"recipients\": [{\"address\": \"b@example.com\"}]}\n" },
		{ "delay_reason only for deferred recipients; done ones not listed",
		  { "a@example.com", 0, 10, 2, 0,
		    { { "p@example.com", PENDING, "an old reason" },
		      { "d@example.com", DEFERRED, "connection refused" },
		      { "s@example.com", SENT, "250 ok" },
		      { "b@example.com", BOUNCED, "550 no such user" },
		      { "e@example.com", DEFERRED, "greeting timeout" } } },
		  0,
		  "{\"queue_name\": \"deferred\", \"queue_id\": \"4C2E81A0F3\", "
		  "\"arrival_time\": 1533289815, \"message_size\": 10, \"forced_expire\": false, "
		  "\"sender\": \"a@example.com\", \"recipients\": ["
		  "{\"address\": \"p@example.com\"}, "
		  "{\"address\": \"d@example.com\", \"delay_reason\": \"connection refused\"}, "
		  "{\"address\": \"e@example.com\", \"delay_reason\": \"greeting timeout\"}]}\n" },
		{ "no recipient left",
		  { "a@example.com", 0, 10, 2, 0, { { "s@example.com", SENT, NULL } } },
		  0,
		  "{\"queue_name\": \"deferred\", \"queue_id\": \"4C2E81A0F3\", "
		  "\"arrival_time\": 1533289815, \"message_size\": 10, \"forced_expire\": false, "
		  "\"sender\": \"a@example.com\", \"recipients\": []}\n" },
		{ "quotes and backslashes escaped",
		  { "\"odd\\user\"@example.com", 0, 10, 1, 0,
		    { { "\"x\"@example.com", DEFERRED, "said \"no\" \\ twice" } } },
		  0,
		  "{\"queue_name\": \"deferred\", \"queue_id\": \"4C2E81A0F3\", "
		  "\"arrival_time\": 1533289815, \"message_size\": 10, \"forced_expire\": false, "
		  "\"sender\": \"\\\"odd\\\\user\\\"@example.com\", \"recipients\": ["
		  "{\"address\": \"\\\"x\\\"@example.com\", "
		  "\"delay_reason\": \"said \\\"no\\\" \\\\ twice\"}]}\n" },
		{ "requiretls shown last, only when set",
		  { "a@example.com", 0, 10, 1, QUEUE_F_REQUIRETLS | QUEUE_F_8BITMIME,
		    { { "b@example.com", DEFERRED, "why" } } },
		  0,
		  "{\"queue_name\": \"deferred\", \"queue_id\": \"4C2E81A0F3\", "
		  "\"arrival_time\": 1533289815, \"message_size\": 10, \"forced_expire\": false, "
		  "\"sender\": \"a@example.com\", \"recipients\": [{\"address\": "
		  "\"b@example.com\", \"delay_reason\": \"why\"}], \"requiretls\": true}\n" },
		{ "requiretls on hold, no recipient left",
		  { "a@example.com", 0, 10, 1, QUEUE_F_REQUIRETLS | QUEUE_F_HOLD,
		    { { "s@example.com", SENT, NULL } } },
		  0,
		  "{\"queue_name\": \"hold\", \"queue_id\": \"4C2E81A0F3\", "
		  "\"arrival_time\": 1533289815, \"message_size\": 10, \"forced_expire\": false, "
		  "\"sender\": \"a@example.com\", \"recipients\": [], \"requiretls\": true}\n" },
		{ "other flags: no requiretls",
		  { "a@example.com", 0, 10, 0, QUEUE_F_SMTPUTF8 | QUEUE_F_8BITMIME | QUEUE_F_BOUNCE,
		    { { "b@example.com", PENDING, NULL } } },
		  0,
		  "{\"queue_name\": \"incoming\", \"queue_id\": \"4C2E81A0F3\", "
		  "\"arrival_time\": 1533289815, \"message_size\": 10, \"forced_expire\": false, "
		  "\"sender\": \"a@example.com\", \"recipients\": [{\"address\": "
		  "\"b@example.com\"}]}\n" },
		{ "UTF-8 passes through",
		  { "j\xc3\xb6rg@example.com", 0, 10, 0, 0, { { "\xe7\x94\xa8@example.com", PENDING, NULL } } },
		  0,
		  "{\"queue_name\": \"incoming\", \"queue_id\": \"4C2E81A0F3\", "
		  "\"arrival_time\": 1533289815, \"message_size\": 10, \"forced_expire\": false, "
		  "\"sender\": \"j\xc3\xb6rg@example.com\", \"recipients\": ["
		  "{\"address\": \"\xe7\x94\xa8@example.com\"}]}\n" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct built b;
		struct rl_buf out;
		char name[128];
		int rc;

		build(&b, &cases[i].m);
		rl_buf_init(&out, 1 << 16);
		rc = mailq_format_json(&out, &b.m, cases[i].active);
		snprintf(name, sizeof(name), "json %s", cases[i].name);
		CASE_INT(name, rc, 0);
		CASE_STR(name, out.data ? out.data : "", cases[i].want);
		rl_buf_fini(&out);
	}
}

/*
 * Decode the JSON string literal at s (RFC 8259 7); returns the octets
 * after it, or NULL if it is not a valid literal.  \u escapes above 0x7f
 * are encoded as UTF-8.
 */
static const char *json_decode(const char *s, char *out, size_t size)
{
	size_t o = 0;

	if (*s++ != '"')
		return NULL;
	while (*s != '"') {
		unsigned c = (unsigned char)*s++;

		if (c == 0 || c < 0x20 || o + 4 >= size)
			return NULL;
		if (c != '\\') {
			out[o++] = (char)c;
			continue;
		}
		c = (unsigned char)*s++;
		switch (c) {
		case '"': case '\\': case '/': out[o++] = (char)c; break;
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u': {
			unsigned v = 0;

			for (int k = 0; k < 4; k++) {
				char h = *s++;

				v <<= 4;
				if (h >= '0' && h <= '9')
					v |= (unsigned)(h - '0');
				else if (h >= 'a' && h <= 'f')
					v |= (unsigned)(h - 'a' + 10);
				else if (h >= 'A' && h <= 'F')
					v |= (unsigned)(h - 'A' + 10);
				else
					return NULL;
			}
			if (v < 0x80) {
				out[o++] = (char)v;
			} else if (v < 0x800) {
				out[o++] = (char)(0xC0 | (v >> 6));
				out[o++] = (char)(0x80 | (v & 0x3F));
			} else {
				out[o++] = (char)(0xE0 | (v >> 12));
				out[o++] = (char)(0x80 | ((v >> 6) & 0x3F));
				out[o++] = (char)(0x80 | (v & 0x3F));
			}
			break;
		}
		default:
			return NULL;
		}
	}
	out[o] = '\0';
	return s + 1;
}

/* mailq_json_string: exact where the choice is fixed, else decoded back. */
static void test_json_string(void)
{
	static const struct {
		const char *in;
		const char *want; /* exact output; NULL: any valid escaping */
	} cases[] = {
		{ "", "\"\"" },
		{ "plain@example.com", "\"plain@example.com\"" },
		{ "a\"b", "\"a\\\"b\"" },
		{ "a\\b", "\"a\\\\b\"" },
		{ "\\\"", "\"\\\\\\\"\"" },
		{ "/slash/", NULL },
		{ "line\nbreak", NULL },
		{ "cr\rlf\n", NULL },
		{ "tab\there", NULL },
		{ "\x01\x02\x1f", NULL },
		{ "bs\b ff\f", NULL },
		{ "del\x7f", NULL },
		{ "\xc3\xa9t\xc3\xa9", "\"\xc3\xa9t\xc3\xa9\"" },
		{ "mix \"q\" \\ \n\x1b[0m end", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_buf out;
		char name[160], dec[512], shown[128];
		const char *rest;
		int rc;

		/* The input, printable, for messages. */
		{
			size_t o = 0;

			for (const unsigned char *p = (const unsigned char *)cases[i].in;
			     *p && o + 6 < sizeof(shown); p++) {
				if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
					o += (size_t)snprintf(shown + o, 6, "\\x%02x", *p);
				else
					shown[o++] = (char)*p;
			}
			shown[o] = '\0';
		}
		snprintf(name, sizeof(name), "json_string \"%s\"", shown);
		rl_buf_init(&out, 1024);
		rc = mailq_json_string(&out, cases[i].in);
		CASE_INT(name, rc, 0);
		if (!out.data) {
			CHECK(0, "%s: no output", name);
			continue;
		}
		if (cases[i].want)
			CASE_STR(name, out.data, cases[i].want);
		/* Valid JSON: no raw control octets, and it decodes to the input. */
		for (size_t k = 0; k < out.len; k++) {
			unsigned char c = (unsigned char)out.data[k];

			CHECK(c >= 0x20 && c != 0x7f, "%s: raw octet 0x%02x at %zu in %s", name, c, k,
			      out.data);
		}
		rest = json_decode(out.data, dec, sizeof(dec));
		CHECK(rest != NULL, "%s: not a JSON string: %s", name, out.data);
		if (rest) {
			CHECK(*rest == '\0', "%s: trailing \"%s\"", name, rest);
			CHECK(strcmp(dec, cases[i].in) == 0, "%s: decodes to something else: %s", name,
			      out.data);
		}
		rl_buf_fini(&out);
	}

	/* A control character in a JSON listing is escaped, not raw. */
	{
		static const struct msg_spec s = {
			"a@example.com", 0, 10, 1, 0,
			{ { "b@example.com", DEFERRED, "host said:\r\n421 bye\ttab" } }
		};
		struct built b;
		struct rl_buf out;
		int rc, raw = 0;

		build(&b, &s);
		rl_buf_init(&out, 4096);
		rc = mailq_format_json(&out, &b.m, 0);
		CHECK_INT(rc, 0);
		for (size_t k = 0; out.data && k + 1 < out.len; k++)
			raw |= (unsigned char)out.data[k] < 0x20;
		CHECK(!raw, "json with raw control octets: %s", out.data ? out.data : "");
		CHECK(out.len && out.data[out.len - 1] == '\n', "json line not ended by newline");
		CHECK(out.data && strstr(out.data, "\"delay_reason\": \"host said:") != NULL,
		      "delay_reason missing: %s", out.data ? out.data : "");
		rl_buf_fini(&out);
	}
}

/*
 * Records made before sendmail checked envelope addresses (or crafted
 * ones) may hold CR, LF and other control octets: each stays one '?', so
 * every listing line is one line and the columns still add up.
 */
static void test_text_control(void)
{
	static const struct {
		const char *name;
		struct msg_spec m;
		const char *want;
	} cases[] = {
		{ "CR LF in the sender",
		  { "a@src>\r\nRCPT TO:<x@evil", 0, 234, 0, 0, { { "b@c.test", PENDING, NULL } } },
		  "4C2E81A0F3      234 Fri Aug  3 09:50:15  a@src>??RCPT TO:<x@evil\n"
		  SP41 "b@c.test\n" },
		{ "CR LF in a recipient",
		  { "a@b.test", 0, 10, 0, 0,
		    { { "b@c.test>\r\nRCPT TO:<x@evil.test", PENDING, NULL } } },
		  "4C2E81A0F3       10 Fri Aug  3 09:50:15  a@b.test\n"
		  SP41 "b@c.test>??RCPT TO:<x@evil.test\n" },
		{ "LF, tab, ESC, DEL in a reason",
		  { "a@b.test", 0, 10, 1, 0, { { "b@c.test", DEFERRED, "x\ny\tz\x1b[0m\x7f" } } },
		  "4C2E81A0F3       10 Fri Aug  3 09:50:15  a@b.test\n"
		  "                                                                  (x?y?z?[0m?)\n"
		  SP41 "b@c.test\n" },
		{ "bare CR alone",
		  { "\r", 0, 10, 0, 0, { { "\n", PENDING, NULL } } },
		  "4C2E81A0F3       10 Fri Aug  3 09:50:15  ?\n" SP41 "?\n" },
		{ "UTF-8 kept",
		  { "j\xc3\xb6@b.test", 0, 10, 0, 0, { { "b@c.test", PENDING, NULL } } },
		  "4C2E81A0F3       10 Fri Aug  3 09:50:15  j\xc3\xb6@b.test\n" SP41 "b@c.test\n" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct built b;
		struct rl_buf out;
		char name[96];
		size_t lines = 0;
		int rc;

		build(&b, &cases[i].m);
		rl_buf_init(&out, 4096);
		rc = mailq_format_text(&out, &b.m, 0);
		snprintf(name, sizeof(name), "text control %s", cases[i].name);
		CASE_INT(name, rc, 0);
		CASE_STR(name, out.data ? out.data : "", cases[i].want);
		for (size_t k = 0; k < out.len; k++) {
			lines += out.data[k] == '\n';
			CHECK(out.data[k] == '\n' || ((unsigned char)out.data[k] >= 32 &&
						      out.data[k] != 127),
			      "%s: raw octet 0x%02x", name, (unsigned char)out.data[k]);
		}
		CASE_INT(name, lines, cases[i].m.rcpt[0].reason ? 3 : 2);
		rl_buf_fini(&out);
	}
	/* mailq_text_string on its own. */
	{
		struct rl_buf out;

		rl_buf_init(&out, 64);
		CASE_INT("text_string rc", mailq_text_string(&out, "a\r\nb\0c"), 0);
		CASE_STR("text_string", out.data, "a??b");
		rl_buf_fini(&out);
	}
}

/* Octets that are not UTF-8 become U+FFFD: the line stays valid JSON. */
static void test_json_utf8(void)
{
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
		{ "j\xc3\xb6@b.test", "\"j\xc3\xb6@b.test\"" },
		{ "\xf0\x9f\x93\xa7", "\"\xf0\x9f\x93\xa7\"" },
		{ "a\xff" "b", "\"a\\ufffdb\"" },
		{ "a\xc3", "\"a\\ufffd\"" },
		{ "\xc3(", "\"\\ufffd(\"" },
		{ "\xc0\xaf", "\"\\ufffd\\ufffd\"" },             /* overlong '/' */
		{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" },   /* surrogate */
		{ "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" }, /* > U+10FFFF */
		{ "\xe2\x82", "\"\\ufffd\\ufffd\"" },
		{ "x\r\n\xff", "\"x\\u000d\\u000a\\ufffd\"" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_buf out;
		char name[64];

		snprintf(name, sizeof(name), "json utf8 case %zu", i);
		rl_buf_init(&out, 256);
		CASE_INT(name, mailq_json_string(&out, cases[i].in), 0);
		CASE_STR(name, out.data ? out.data : "", cases[i].want);
		rl_buf_fini(&out);
	}
}

int main(void)
{
	if (setenv("TZ", "UTC", 1) != 0) {
		perror("setenv");
		return 1;
	}
	tzset();
	test_queue_name();
	test_text();
	test_text_mixed();
	test_text_control();
	test_json_utf8();
	test_text_limit();
	test_trailer();
	test_listing();
	test_json();
	test_json_string();
	return TEST_DONE();
}
