/*
 * Unit tests for the `status` screen's pure parts (relay/smtp/status.h):
 * ages, messages by queue and the oldest one, the grouping of deferred
 * recipients by (domain, reason) (a message counts once per pair, held
 * mail not at all, long reasons cut, the cap and what goes past it: the
 * Space-Saving replacement, the review's case of a big destination met
 * after thousands of small ones, and a property test against an exact
 * count), the worst-first order, the last-hour sums of per-minute
 * counters (deliveries and the inbound ones), and the text and JSON
 * layouts on a known queue.
 */
#include "status.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_age(void)
{
	static const struct {
		int64_t secs;
		const char *want;
	} cases[] = {
	    {-5, "0s"},	    {0, "0s"},	       {42, "42s"},	      {60, "1m"},
	    {303, "5m 3s"}, {3600, "1h"},      {7800, "2h 10m"},      {7801, "2h 10m"},
	    {86400, "1d"},  {273600, "3d 4h"}, {86400 * 400, "400d"},
	};
	char out[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		status_age(out, sizeof(out), cases[i].secs);
		CHECK_STR(out, cases[i].want);
	}
}

/* A message with rcpts "state:address:reason" (reason "" for none). */
static struct queue_msg *msg(const char *id, int64_t arrival, uint32_t attempts, uint32_t flags,
			     uint64_t size, const char *const *rcpts, size_t n)
{
	struct queue_msg *m = calloc(1, sizeof(*m));

	rl_strlcpy(m->id, id, sizeof(m->id));
	m->sender = strdup("s@client.test");
	m->arrival = arrival;
	m->attempts = attempts;
	m->flags = flags;
	m->size = size;
	m->nrcpt = n;
	m->rcpt = calloc(n, sizeof(*m->rcpt));
	for (size_t i = 0; i < n; i++) {
		const char *a = strchr(rcpts[i], ':') + 1, *r = strchr(a, ':');

		m->rcpt[i].state = rcpts[i][0] == 'D'	? QUEUE_RCPT_DEFERRED
				   : rcpts[i][0] == 'S' ? QUEUE_RCPT_SENT
							: QUEUE_RCPT_PENDING;
		m->rcpt[i].address = strndup(a, (size_t)(r - a));
		m->rcpt[i].reason = r[1] ? strdup(r + 1) : NULL;
	}
	return m;
}

static void feed(struct status_agg *a, const char *id, int64_t arrival, uint32_t attempts,
		 uint32_t flags, int active, const char *const *rcpts, size_t n)
{
	struct queue_msg *m = msg(id, arrival, attempts, flags, 100, rcpts, n);

	CHECK_INT(status_agg_msg(a, m, active), 0);
	queue_msg_free(m);
}

#define NOW   1700000000
#define R451  "host mx1.refuse.test[127.0.0.63] said: 451 4.3.0 try later"
#define RDEAD "delivery temporarily suspended: connect to mx1.dead.test[127.0.0.64]:25: refused"

static void known_queue(struct status_agg *a)
{
	const char *const r1[] = {"D:a@Refuse.test:" R451, "D:b@refuse.test:" R451, "S:c@ok.test:"};
	const char *const r2[] = {"D:d@refuse.test:" R451};
	const char *const r3[] = {"D:e@dead.test:" RDEAD};
	const char *const r4[] = {"D:f@refuse.test:" R451}; /* on hold */
	const char *const r5[] = {"P:g@new.test:"};
	const char *const r6[] = {"D:h@dead.test:connect to mx1.dead.test[127.0.0.64]:25: refused",
				  "P:i@dead.test:"};

	status_agg_init(a);
	feed(a, "00000000A1", NOW - 600, 1, 0, 0, r1, 3);
	feed(a, "00000000A2", NOW - 300, 2, 0, 0, r2, 1);
	feed(a, "00000000A3", NOW - 200, 1, 0, 0, r3, 1);
	feed(a, "00000000A0", NOW - 900, 1, QUEUE_F_HOLD, 0, r4, 1);
	feed(a, "00000000A4", NOW - 10, 0, 0, 0, r5, 1);
	feed(a, "00000000A5", NOW - 700, 1, 0, 1, r6, 2);
}

static void test_agg(void)
{
	struct status_agg a;

	known_queue(&a);
	CHECK_INT(a.msgs[STATUS_Q_INCOMING], 1);
	CHECK_INT(a.msgs[STATUS_Q_ACTIVE], 1);
	CHECK_INT(a.msgs[STATUS_Q_DEFERRED], 3);
	CHECK_INT(a.msgs[STATUS_Q_HOLD], 1);
	CHECK_INT(a.bytes[STATUS_Q_DEFERRED], 300);
	CHECK_STR(a.oldest_id, "00000000A0");
	CHECK_INT(a.oldest, NOW - 900);
	status_agg_sort(&a);
	CHECK_INT(a.ng, 3);
	/* refuse.test: two messages (the held one not counted), 3 recipients,
	 * the domain in lower case; then the two dead.test pairs, oldest first. */
	CHECK_STR(a.g[0].domain, "refuse.test");
	CHECK_STR(a.g[0].reason, R451);
	CHECK_INT(a.g[0].msgs, 2);
	CHECK_INT(a.g[0].rcpts, 3);
	CHECK_INT(a.g[0].oldest, NOW - 600);
	CHECK_STR(a.g[1].reason, "connect to mx1.dead.test[127.0.0.64]:25: refused");
	CHECK_INT(a.g[1].oldest, NOW - 700);
	CHECK_STR(a.g[2].reason, RDEAD);
	CHECK_INT(a.g[2].msgs, 1);
	status_agg_fini(&a);
}

static void test_oldest_tie(void)
{
	const char *const r[] = {"P:x@y.test:"};
	struct status_agg a;

	status_agg_init(&a);
	feed(&a, "00000000B2", NOW, 0, 0, 0, r, 1);
	feed(&a, "00000000B1", NOW, 0, 0, 0, r, 1);
	feed(&a, "00000000B3", NOW, 0, 0, 0, r, 1);
	CHECK_STR(a.oldest_id, "00000000B1");
	status_agg_fini(&a);
}

static void test_long_reason_and_cap(void)
{
	char reason[400], rc[520], dom[64];
	const char *r[1] = {rc};
	struct status_agg a;

	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	status_agg_init(&a);
	snprintf(rc, sizeof(rc), "D:a@long.test:%s", reason);
	feed(&a, "00000000C1", NOW, 1, 0, 0, r, 1);
	CHECK_INT(a.ng, 1);
	CHECK_INT(strlen(a.g[0].reason), STATUS_REASON_MAX);
	CHECK_INT(a.g[0].cut, 1);
	/* Reasons equal in their first STATUS_REASON_MAX octets are one pair. */
	snprintf(rc, sizeof(rc), "D:b@long.test:%sy", reason);
	feed(&a, "00000000C2", NOW, 1, 0, 0, r, 1);
	CHECK_INT(a.ng, 1);
	CHECK_INT(a.g[0].msgs, 2);
	/* Fill the table and go past it: each new pair takes the slot of one
	 * with the fewest messages (one), never long.test's (two). */
	for (int i = 1; i < STATUS_GROUPS_MAX + 10; i++) {
		snprintf(dom, sizeof(dom), "d%d.test", i);
		snprintf(rc, sizeof(rc), "D:u@%s:busy", dom);
		feed(&a, "00000000C3", NOW, 1, 0, 0, r, 1);
	}
	CHECK_INT(a.ng, STATUS_GROUPS_MAX);
	CHECK_INT(a.replaced, 10);
	/* A pair met after the table is full: it inherits the smallest count
	 * (1) as its error, then counts on. */
	snprintf(rc, sizeof(rc), "D:z@big.test:busy");
	feed(&a, "00000000C4", NOW - 5, 1, 0, 0, r, 1);
	feed(&a, "00000000C5", NOW - 9, 1, 0, 0, r, 1);
	CHECK_INT(a.replaced, 11);
	status_agg_sort(&a);
	CHECK_STR(a.g[0].domain, "big.test");
	CHECK_INT(a.g[0].msgs, 3);
	CHECK_INT(a.g[0].err, 1);
	CHECK_INT(a.g[0].rcpts, 2); /* since it took the slot */
	CHECK_INT(a.g[0].oldest, NOW - 9);
	/* long.test kept its exact count; those that took a slot (1 + 1) tie with it. */
	for (size_t i = 1; i < a.ng; i++) {
		if (strcmp(a.g[i].domain, "long.test") == 0) {
			CHECK_INT(a.g[i].msgs, 2);
			CHECK_INT(a.g[i].err, 0);
			break;
		}
		CHECK(i < 12, "long.test not among the first: %s", a.g[i].domain);
	}
	status_agg_fini(&a);
}

/*
 * The review's case: 5000 dead destinations of one message each come
 * first in ID order, then 10000 messages to one domain.  The big one must
 * lead the list (it was missing when the first 4096 pairs were kept).
 */
static void test_big_after_many(void)
{
	char rc[64];
	const char *r[1] = {rc};
	struct status_agg a;
	struct status_run run = {0, 0, 0};
	struct rl_buf out;

	status_agg_init(&a);
	for (int i = 0; i < 5000; i++) {
		snprintf(rc, sizeof(rc), "D:u@dead%d.example:refused", i);
		feed(&a, "00000000E1", NOW - 100, 1, 0, 0, r, 1);
	}
	snprintf(rc, sizeof(rc), "D:u@big.example:451 try later");
	for (int i = 0; i < 10000; i++)
		feed(&a, "00000000E2", NOW - 50, 1, 0, 0, r, 1);
	status_agg_sort(&a);
	CHECK_STR(a.g[0].domain, "big.example");
	CHECK(a.g[0].msgs - a.g[0].err <= 10000 && a.g[0].msgs >= 10000, "msgs %llu err %llu",
	      (unsigned long long)a.g[0].msgs, (unsigned long long)a.g[0].err);
	CHECK(a.g[1].msgs - a.g[1].err == 1, "%s", a.g[1].domain);
	rl_buf_init(&out, 1 << 22);
	CHECK_INT(status_format_text(&out, &a, &run, NOW, "relay.test"), 0);
	CHECK_INT(rl_buf_append(&out, "", 1), 0);
	CHECK(strstr(out.data, "failing:    more than 4096 destinations and reasons, worst first "
			       "(~: at most)\n   msgs rcpts  oldest  domain: reason\n"
			       "  ~10001 10000     50s  big.example: 451 try later\n") != NULL,
	      "%.2000s", out.data);
	rl_buf_reset(&out);
	CHECK_INT(status_format_json(&out, &a, &run, NOW, "relay.test"), 0);
	CHECK_INT(rl_buf_append(&out, "", 1), 0);
	CHECK(strstr(out.data, "\"failing\":[{\"domain\":\"big.example\",\"reason\":\"451 try "
			       "later\",\"messages\":10001,\"approx\":true,\"error\":1,") != NULL,
	      "%.2000s", out.data);
	CHECK(strstr(out.data, "\"failing_exact\":false}") != NULL, "%.200s", out.data);
	rl_buf_fini(&out);
	status_agg_fini(&a);
}

/* A small deterministic generator (64-bit LCG, high bits), for the property test. */
static uint32_t rnd(uint64_t *st)
{
	*st = *st * 6364136223846793005u + 1442695040888963407u;
	return (uint32_t)(*st >> 33);
}

#define PROP_HEAVY 8
#define PROP_LIGHT 20000
#define PROP_PAIRS (PROP_HEAVY + PROP_LIGHT)

/*
 * Against an exact count, on shuffled input with far more pairs than the
 * table holds, some messages with two recipients (of one pair or two):
 * every kept pair's count is within [true, true + err], every pair with
 * more than T / STATUS_GROUPS_MAX messages is kept, and the heavy pairs,
 * spaced wider than that bound, lead the list in their true order.
 */
static void test_space_saving_property(void)
{
	static const uint32_t heavy[PROP_HEAVY] = {3000, 2500, 2000, 1500, 1000, 700, 450, 250};
	uint32_t *exact = calloc(PROP_PAIRS, sizeof(*exact)), *stream, n = 0, t = 0;
	uint64_t st = 42;
	char r1[64], r2[64];
	const char *r[2] = {r1, r2};
	struct status_agg a;

	for (int i = 0; i < PROP_HEAVY; i++)
		n += heavy[i];
	stream = calloc(n + 3 * PROP_LIGHT, sizeof(*stream));
	n = 0;
	for (uint32_t i = 0; i < PROP_HEAVY; i++)
		for (uint32_t k = 0; k < heavy[i]; k++)
			stream[n++] = i;
	for (uint32_t i = PROP_HEAVY; i < PROP_PAIRS; i++)
		for (uint32_t k = 1 + rnd(&st) % 3; k > 0; k--)
			stream[n++] = i;
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = rnd(&st) % (i + 1), x = stream[i];

		stream[i] = stream[j];
		stream[j] = x;
	}
	status_agg_init(&a);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t p = stream[i], q = rnd(&st) % 4 ? p : rnd(&st) % PROP_PAIRS;

		snprintf(r1, sizeof(r1), "D:u@p%u.test:r%u", p, p % 7);
		snprintf(r2, sizeof(r2), "D:v@p%u.test:r%u", q, q % 7);
		feed(&a, "00000000F1", NOW, 1, 0, 0, r, i % 3 ? 1 : 2);
		exact[p]++;
		if (i % 3 == 0 && q != p)
			exact[q]++;
	}
	for (uint32_t i = 0; i < PROP_PAIRS; i++)
		t += exact[i];
	status_agg_sort(&a);
	CHECK_INT(a.ng, STATUS_GROUPS_MAX);
	for (size_t i = 0; i < a.ng; i++) {
		uint32_t p = (uint32_t)strtoul(a.g[i].domain + 1, NULL, 10);

		CHECK(a.g[i].msgs >= exact[p] && a.g[i].msgs - a.g[i].err <= exact[p],
		      "%s: msgs %llu err %llu exact %u", a.g[i].domain,
		      (unsigned long long)a.g[i].msgs, (unsigned long long)a.g[i].err, exact[p]);
		if (exact[p] > t / STATUS_GROUPS_MAX)
			exact[p] = 0; /* seen */
	}
	for (uint32_t i = 0; i < PROP_PAIRS; i++)
		CHECK(exact[i] <= t / STATUS_GROUPS_MAX, "p%u (%u messages of %u) missing", i,
		      exact[i], t);
	for (int i = 0; i < PROP_HEAVY; i++) {
		char want[32];

		snprintf(want, sizeof(want), "p%d.test", i);
		CHECK_STR(a.g[i].domain, want);
	}
	status_agg_fini(&a);
	free(stream);
	free(exact);
}

static void test_hour(void)
{
	struct status_agg a;
	int64_t m = NOW / 60;

	status_agg_init(&a);
	status_agg_count(&a, NOW, m, "delivery:sent:untrusted", 2);
	status_agg_count(&a, NOW, m - 59, "delivery:sent:untrusted", 1);   /* oldest minute in */
	status_agg_count(&a, NOW, m - 60, "delivery:sent:untrusted", 100); /* out */
	status_agg_count(&a, NOW, m + 1, "delivery:sent:untrusted", 100);  /* future: out */
	status_agg_count(&a, NOW, m, "delivery:sent:mta-sts", 4);
	status_agg_count(&a, NOW, m, "delivery:deferred:no-connection", 5);
	status_agg_count(&a, NOW, m, "delivery:bounced:none", 6);
	status_agg_count(&a, NOW, m, "delivery:sent:bogus", 100);
	status_agg_count(&a, NOW, m, "delivery:lost:none", 100);
	status_agg_count(&a, NOW, m, "smtpd:allowed:network", 100); /* not a delivery */
	status_agg_count(&a, NOW, m, "delivery:sent", 100);
	CHECK_INT(a.hour[QUEUE_PS_SENT][QUEUE_PT_UNTRUSTED], 3);
	CHECK_INT(a.hour[QUEUE_PS_SENT][QUEUE_PT_STS], 4);
	CHECK_INT(a.hour[QUEUE_PS_DEFERRED][QUEUE_PT_NOSESS], 5);
	CHECK_INT(a.hour[QUEUE_PS_BOUNCED][QUEUE_PT_NONE], 6);
	status_agg_count(&a, NOW, m, "delivery:sent:mta-sts", UINT64_MAX);
	CHECK(a.hour[QUEUE_PS_SENT][QUEUE_PT_STS] == UINT64_MAX, "saturates");
	status_agg_fini(&a);
}

/* The inbound counters: each name to its index, the same window, saturation. */
static void test_inbound(void)
{
	struct status_agg a;
	int64_t m = NOW / 60;

	CHECK_STR(status_in_name(STATUS_IN_NETWORK), "smtpd:allowed:network");
	CHECK_STR(status_in_name(STATUS_IN_CERTIFICATE), "smtpd:allowed:certificate");
	CHECK_STR(status_in_name(STATUS_IN_AUTH), "smtpd:allowed:auth");
	CHECK_STR(status_in_name(STATUS_IN_REFUSED), "smtpd:refused");
	CHECK_STR(status_in_name(STATUS_IN_AUTH_FAILED), "smtpd:auth-failed");
	CHECK(status_in_name(STATUS_IN_N) == NULL, "past the end");
	CHECK(status_in_name(-1) == NULL, "before the start");
	CHECK(status_in_names()[STATUS_IN_AUTH] == status_in_name(STATUS_IN_AUTH), "same table");
	status_agg_init(&a);
	status_agg_count(&a, NOW, m, "smtpd:allowed:network", 3);
	status_agg_count(&a, NOW, m - 59, "smtpd:allowed:network", 1);   /* oldest minute in */
	status_agg_count(&a, NOW, m - 60, "smtpd:allowed:network", 100); /* out */
	status_agg_count(&a, NOW, m + 1, "smtpd:allowed:auth", 100);	   /* future: out */
	status_agg_count(&a, NOW, m, "smtpd:allowed:certificate", 2);
	status_agg_count(&a, NOW, m - 10, "smtpd:allowed:auth", 5);
	status_agg_count(&a, NOW, m, "smtpd:refused", 6);
	status_agg_count(&a, NOW, m, "smtpd:auth-failed", 7);
	status_agg_count(&a, NOW, m, "smtpd:auth-failed", 1);
	status_agg_count(&a, NOW, m, "smtpd:allowed", 100);
	status_agg_count(&a, NOW, m, "smtpd:allowed:networks", 100);
	status_agg_count(&a, NOW, m, "smtpd:allowed:network:x", 100);
	CHECK_INT(a.in_hour[STATUS_IN_NETWORK], 4);
	CHECK_INT(a.in_hour[STATUS_IN_CERTIFICATE], 2);
	CHECK_INT(a.in_hour[STATUS_IN_AUTH], 5);
	CHECK_INT(a.in_hour[STATUS_IN_REFUSED], 6);
	CHECK_INT(a.in_hour[STATUS_IN_AUTH_FAILED], 8);
	for (int s = 0; s < QUEUE_PS_N; s++) {
		for (int t = 0; t < QUEUE_PT_N; t++)
			CHECK_INT(a.hour[s][t], 0);
	}
	status_agg_count(&a, NOW, m, "smtpd:refused", UINT64_MAX);
	CHECK(a.in_hour[STATUS_IN_REFUSED] == UINT64_MAX, "saturates");
	status_agg_fini(&a);
}

static const char want_text[] =
    "tlsrelay status of relay.test at 2023-11-14 22:13:20 UTC\n"
    "relay:      running, pid 4242, up 2d 3h (since 2023-11-12 19:13:20 UTC)\n"
    "\n"
    "queue            messages        bytes\n"
    "  incoming              1          100\n"
    "  active                1          100\n"
    "  deferred              3          300\n"
    "  hold                  1          100\n"
    "  total                 6          600\n"
    "oldest:     00000000A0, 15m old (arrived 2023-11-14 21:58:20 UTC)\n"
    "\n"
    "last hour   dane mta-sts verified trusted untrusted anonymous none no-conn total\n"
    "  sent         0       0        0       0         2         0    1       0     3\n"
    "  deferred     0       0        0       0         0         0    0       2     2\n"
    "  bounced      0       0        0       0         0         0    0       0     0\n"
    "\n"
    "inbound last hour\n"
    "  sessions allowed   network 4, certificate 0, auth 2\n"
    "  sessions refused   1 (Relay access denied)\n"
    "  failed AUTH        3 attempts\n"
    "\n"
    "failing:    3 destinations and reasons, worst first\n"
    "   msgs rcpts  oldest  domain: reason\n"
    "      2     3     10m  refuse.test: " R451 "\n"
    "      1     1 11m 40s  dead.test: connect to mx1.dead.test[127.0.0.64]:25: refused\n"
    "      1     1  3m 20s  dead.test: " RDEAD "\n";

static void test_text(void)
{
	struct status_agg a;
	struct status_run r = {1, 4242, NOW - 183600};
	struct rl_buf out;

	known_queue(&a);
	status_agg_count(&a, NOW, NOW / 60, "delivery:sent:untrusted", 2);
	status_agg_count(&a, NOW, NOW / 60, "delivery:sent:none", 1);
	status_agg_count(&a, NOW, NOW / 60, "delivery:deferred:no-connection", 2);
	status_agg_count(&a, NOW, NOW / 60 - 1, "smtpd:allowed:network", 3);
	status_agg_count(&a, NOW, NOW / 60, "smtpd:allowed:network", 1);
	status_agg_count(&a, NOW, NOW / 60, "smtpd:allowed:auth", 2);
	status_agg_count(&a, NOW, NOW / 60, "smtpd:refused", 1);
	status_agg_count(&a, NOW, NOW / 60, "smtpd:auth-failed", 3);
	status_agg_sort(&a);
	rl_buf_init(&out, 1 << 16);
	CHECK_INT(status_format_text(&out, &a, &r, NOW, "relay.test"), 0);
	CHECK_INT(rl_buf_append(&out, "", 1), 0);
	CHECK_STR(out.data, want_text);
	rl_buf_reset(&out);
	r = (struct status_run){0, 0, 0};
	CHECK_INT(status_format_text(&out, &a, &r, NOW, "relay.test"), 0);
	CHECK_INT(rl_buf_append(&out, "", 1), 0);
	CHECK(strstr(out.data, "\nrelay:      not running\n") != NULL, "%s", out.data);
	rl_buf_reset(&out);
	CHECK_INT(status_format_json(&out, &a, &r, NOW, "relay.test"), 0);
	CHECK_INT(rl_buf_append(&out, "", 1), 0);
	CHECK(strncmp(out.data,
		      "{\"hostname\":\"relay.test\",\"time\":1700000000,"
		      "\"running\":false,\"queue\":{\"incoming\":{\"messages\":1,"
		      "\"bytes\":100},",
		      100) == 0,
	      "%s", out.data);
	CHECK(strstr(out.data, "\"oldest\":{\"queue_id\":\"00000000A0\",\"arrival_time\":"
			       "1699999100,\"age\":900}") != NULL,
	      "%s", out.data);
	CHECK(strstr(out.data,
		     "\"sent\":{\"dane\":0,\"mta-sts\":0,\"verified\":0,\"trusted\":0,"
		     "\"untrusted\":2,\"anonymous\":0,\"none\":1,\"no-connection\":0}") != NULL,
	      "%s", out.data);
	CHECK(strstr(out.data,
		     ",\"inbound_last_hour\":{\"allowed\":{\"network\":4,\"certificate\":0,"
		     "\"auth\":2},\"refused\":1,\"auth_failed\":3},\"failing\":[") != NULL,
	      "%s", out.data);
	CHECK(strstr(out.data, "{\"domain\":\"refuse.test\",\"reason\":\"" R451
			       "\",\"messages\":2,\"approx\":false,\"error\":0,\"recipients\":3,"
			       "\"oldest_arrival\":1699999400}") != NULL,
	      "%s", out.data);
	CHECK(strstr(out.data, "],\"failing_exact\":true}\n") != NULL, "%s", out.data);
	rl_buf_fini(&out);
	status_agg_fini(&a);
}

/* Past STATUS_SHOW_MAX pairs the screen says how many more; control octets show as '?'. */
static void test_text_more(void)
{
	char rc[64], dom[32];
	const char *r[1] = {rc};
	struct status_agg a;
	struct status_run run = {0, 0, 0};
	struct rl_buf out;

	status_agg_init(&a);
	for (int i = 0; i < STATUS_SHOW_MAX + 3; i++) {
		snprintf(dom, sizeof(dom), "d%02d.test", i);
		snprintf(rc, sizeof(rc), "D:u@%s:bad\rthing", dom);
		feed(&a, "00000000D1", NOW - i, 1, 0, 0, r, 1);
	}
	status_agg_sort(&a);
	rl_buf_init(&out, 1 << 16);
	CHECK_INT(status_format_text(&out, &a, &run, NOW, "relay.test"), 0);
	CHECK_INT(rl_buf_append(&out, "", 1), 0);
	CHECK(strstr(out.data, "      1     1     17s  d17.test: bad?thing\n") != NULL, "%s",
	      out.data);
	CHECK(strstr(out.data, "d02.test") == NULL, "%s", out.data);
	CHECK(strstr(out.data,
		     "  ... and 3 more (3 messages); `tlsrelay mailq` lists them all\n") != NULL,
	      "%s", out.data);
	rl_buf_fini(&out);
	status_agg_fini(&a);
}

int main(void)
{
	test_age();
	test_agg();
	test_oldest_tie();
	test_long_reason_and_cap();
	test_big_after_many();
	test_space_saving_property();
	test_hour();
	test_inbound();
	test_text();
	test_text_more();
	return TEST_DONE();
}
