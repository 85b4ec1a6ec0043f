/*
 * Unit tests for the queue module: the record codec (round trips, limits,
 * truncated, mutated and random input) and the LMDB queue (insert, load,
 * ID collisions, schedule, delete, listing, statistics, control counter,
 * read-only opens, a full map, another process growing the map, damaged
 * records).  Every LMDB test uses its own environment under one mkdtemp
 * directory, removed at the end.
 */
#include "queue.h"
#include "queue_int.h"
#include "tap.h"
#include "testdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_queue.XXXXXX";

/* Path of a test's own environment; valid until the next call. */
static const char *subdir(const char *name)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static struct queue *open_q(const char *name, uint64_t mapsize, unsigned flags)
{
	struct rl_why why = {0, NULL, 0};
	struct queue *q = NULL;
	int rc = queue_open(subdir(name), mapsize, flags, &q, &why);

	CHECK(rc == 0, "open %s: %s (%s)", name, rl_strerror(rc), why.reason ? why.reason : "");
	return q;
}

static int streq_opt(const char *a, const char *b)
{
	/* An empty reason is stored as "none". */
	return !strcmp(a ? a : "", b ? b : "");
}

/* Name of the first field where a and b differ, or NULL. */
static const char *msg_diff(const struct queue_msg *a, const struct queue_msg *b)
{
	size_t i;

	if (strcmp(a->sender, b->sender))
		return "sender";
	if (a->arrival != b->arrival || a->next_attempt != b->next_attempt)
		return "times";
	if (a->attempts != b->attempts || a->flags != b->flags || a->size != b->size)
		return "counters";
	if (a->nrcpt != b->nrcpt)
		return "nrcpt";
	for (i = 0; i < a->nrcpt; i++) {
		const struct queue_rcpt *x = &a->rcpt[i], *y = &b->rcpt[i];

		if (strcmp(x->address, y->address) || x->state != y->state)
			return "rcpt address/state";
		if (strcmp(x->dsn, y->dsn) || !streq_opt(x->reason, y->reason))
			return "rcpt dsn/reason";
	}
	return NULL;
}

static char long_addr[QUEUE_REC_ADDR_MAX + 2];
static char long_reason[QUEUE_REC_REASON_MAX + 2];

static struct queue_rcpt rc_one[] = {
    {"a@example.org", QUEUE_RCPT_PENDING, "", NULL},
};
static struct queue_rcpt rc_mix[] = {
    {"b@example.net", QUEUE_RCPT_DEFERRED, "4.7.5", "TLS required but not offered"},
    {"c@example.net", QUEUE_RCPT_SENT, "2.0.0", ""},
    {"d@example.com", QUEUE_RCPT_BOUNCED, "5.1.1", "user unknown"},
    {"\xc3\xa9@example.com", QUEUE_RCPT_PENDING, "", NULL},
};
static struct queue_rcpt rc_big[] = {
    {long_addr, QUEUE_RCPT_DEFERRED, "4.4.1", long_reason},
};

static const struct rec_case {
	const char *name;
	struct queue_msg m;
} rec_cases[] = {
    {"one", {"", "s@example.org", 1700000000, 1700000300, 0, 0, 120, 1, rc_one}},
    {"null sender", {"", "", 1, 2, 3, QUEUE_F_BOUNCE, 4, 1, rc_one}},
    {"mixed", {"", "x@y", -1, INT64_MIN, UINT32_MAX, 0xffffffffu, UINT64_MAX, 4, rc_mix}},
    {"no rcpt", {"", "z@example.org", INT64_MAX, 0, 7, QUEUE_F_HOLD, 0, 0, NULL}},
    {"limits", {"", long_addr, 5, 6, 1, QUEUE_F_SMTPUTF8, 99, 1, rc_big}},
    {"requiretls", {"", "r@example.org", 7, 8, 0, QUEUE_F_REQUIRETLS | QUEUE_F_8BITMIME, 10, 1,
		    rc_one}},
};

static void test_rec_roundtrip(void)
{
	size_t i;

	for (i = 0; i < sizeof(rec_cases) / sizeof(rec_cases[0]); i++) {
		const struct rec_case *c = &rec_cases[i];
		struct queue_msg *m = NULL;
		struct rl_buf a, b;
		const char *d;
		int rc;

		rl_buf_init(&a, QUEUE_REC_MAX);
		rl_buf_init(&b, QUEUE_REC_MAX);
		rc = queue_rec_encode(&c->m, &a);
		CHECK(rc == 0, "%s: encode %s", c->name, rl_strerror(rc));
		rc = queue_rec_decode(a.data, a.len, &m);
		CHECK(rc == 0 && m, "%s: decode %s", c->name, rl_strerror(rc));
		if (m) {
			d = msg_diff(m, &c->m);
			CHECK(d == NULL, "%s: %s differs", c->name, d);
			CHECK_STR(m->id, "");
			/* Canonical: the decoded message encodes to the same bytes. */
			CHECK_INT(queue_rec_encode(m, &b), 0);
			CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len), "%s: re-encode",
			      c->name);
		}
		queue_msg_free(m);
		rl_buf_fini(&a);
		rl_buf_fini(&b);
	}
}

static void test_rec_limits(void)
{
	struct queue_rcpt r = {"a@b", QUEUE_RCPT_PENDING, "", NULL};
	struct queue_msg m = {"", "s@b", 0, 0, 0, 0, 0, 1, &r};
	struct rl_buf b;

	rl_buf_init(&b, QUEUE_REC_MAX);
	CHECK_INT(queue_rec_encode(&m, &b), 0);
	r.address = long_addr;
	long_addr[QUEUE_REC_ADDR_MAX] = 'x'; /* one byte over */
	CHECK_INT(queue_rec_encode(&m, &b), RL_ETOOBIG);
	m.sender = long_addr;
	r.address = "a@b";
	CHECK_INT(queue_rec_encode(&m, &b), RL_ETOOBIG);
	long_addr[QUEUE_REC_ADDR_MAX] = '\0';
	m.sender = "s@b";
	long_reason[QUEUE_REC_REASON_MAX] = 'x';
	r.reason = long_reason;
	CHECK_INT(queue_rec_encode(&m, &b), RL_ETOOBIG);
	long_reason[QUEUE_REC_REASON_MAX] = '\0';
	r.reason = NULL;
	memset(r.dsn, '4', sizeof(r.dsn)); /* not terminated */
	CHECK_INT(queue_rec_encode(&m, &b), RL_ETOOBIG);
	r.dsn[0] = '\0';
	r.address = "";
	CHECK_INT(queue_rec_encode(&m, &b), -EINVAL);
	r.address = "a@b";
	m.nrcpt = QUEUE_REC_RCPT_MAX + 1;
	CHECK_INT(queue_rec_encode(&m, &b), RL_ETOOBIG);
	m.nrcpt = 1;
	/* A failed append leaves the buffer as it was. */
	{
		size_t len = b.len;
		struct rl_buf small;

		rl_buf_init(&small, 40);
		CHECK_INT(queue_rec_encode(&m, &small), RL_ETOOBIG);
		CHECK_INT(small.len, 0);
		rl_buf_fini(&small);
		CHECK_INT(b.len, len);
	}
	rl_buf_fini(&b);
}

/* The smallest useful record: sender "s", one pending recipient "r" with
 * no DSN and no reason; one field per line, offsets on the right. */
/* clang-format off */
static const unsigned char rec_min[] = {
	1,                              /*  0 version */
	0, 0, 0, 0,                     /*  1 flags */
	0, 0, 0, 0,                     /*  5 attempts */
	1, 0, 0, 0, 0, 0, 0, 0,         /*  9 arrival */
	2, 0, 0, 0, 0, 0, 0, 0,         /* 17 next_attempt */
	3, 0, 0, 0, 0, 0, 0, 0,         /* 25 size */
	1, 0, 0, 0, 's',                /* 33 sender */
	1, 0, 0, 0,                     /* 38 nrcpt */
	0,                              /* 42 state */
	0,                              /* 43 dsn length */
	1, 0, 0, 0, 'r',                /* 44 address */
	0, 0, 0, 0,                     /* 49 reason */
};
/* clang-format on */

static void test_rec_mutations(void)
{
	static const struct {
		size_t off;
		unsigned char byte;
		int want;
	} cases[] = {
	    {0, 0, RL_EPARSE},	   /* version 0 */
	    {0, 2, RL_EVERSION},   /* newer */
	    {0, 255, RL_EVERSION}, /* newer */
	    {33, 255, RL_EPARSE},  /* sender longer than the record */
	    {36, 1, RL_EPARSE},	   /* sender length above 2^24 */
	    {37, 0, RL_EPARSE},	   /* NUL in sender */
	    {38, 2, RL_EPARSE},	   /* two recipients, one present */
	    {41, 255, RL_EPARSE},  /* absurd recipient count */
	    {42, 4, RL_EPARSE},	   /* unknown state */
	    {43, 12, RL_EPARSE},   /* DSN too long */
	    {43, 1, RL_EPARSE},	   /* DSN shifts the rest */
	    {44, 0, RL_EPARSE},	   /* empty address */
	    {48, 0, RL_EPARSE},	   /* NUL in address */
	    {49, 1, RL_EPARSE},	   /* reason past the end */
	    {42, 3, 0},		   /* bounced is fine */
	    {1, 0xff, 0},	   /* unknown flags survive */
	};
	unsigned char buf[sizeof(rec_min) + 1];
	struct queue_msg *m;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(buf, rec_min, sizeof(rec_min));
		buf[cases[i].off] = cases[i].byte;
		m = (struct queue_msg *)&m; /* must be reset to NULL on failure */
		CHECK(queue_rec_decode(buf, sizeof(rec_min), &m) == cases[i].want,
		      "case %zu: want %d", i, cases[i].want);
		CHECK(cases[i].want == 0 ? m != NULL : m == NULL, "case %zu: out", i);
		queue_msg_free(m);
	}
	/* Every truncation fails, and so does a trailing byte. */
	for (i = 0; i < sizeof(rec_min); i++) {
		CHECK(queue_rec_decode(rec_min, i, &m) == RL_EPARSE, "prefix %zu", i);
		CHECK(m == NULL, "prefix %zu: out", i);
	}
	memcpy(buf, rec_min, sizeof(rec_min));
	buf[sizeof(rec_min)] = 0;
	CHECK_INT(queue_rec_decode(buf, sizeof(buf), &m), RL_EPARSE);
	CHECK_INT(queue_rec_decode(rec_min, sizeof(rec_min), &m), 0);
	CHECK(m && m->nrcpt == 1 && !strcmp(m->rcpt[0].address, "r") && !m->rcpt[0].reason,
	      "minimal record");
	CHECK(m && m->arrival == 1 && m->next_attempt == 2 && m->size == 3, "minimal times");
	queue_msg_free(m);
}

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Random bytes and random corruptions of a real record must decode cleanly
 * or fail cleanly; whatever decodes must re-encode to the same bytes. */
static void test_rec_garbage(void)
{
	unsigned char buf[512];
	struct queue_msg *m;
	struct rl_buf a, b;
	uint32_t seed = 12345;
	int i, bad = 0, ok = 0;

	rl_buf_init(&a, QUEUE_REC_MAX);
	CHECK_INT(queue_rec_encode(&rec_cases[2].m, &a), 0);
	for (i = 0; i < 20000; i++) {
		size_t n, j;
		int rc;

		if (i % 2) {
			n = lcg(&seed) % sizeof(buf);
			for (j = 0; j < n; j++)
				buf[j] = (unsigned char)lcg(&seed);
			buf[0] = 1; /* mostly past the version check */
		} else {
			n = a.len < sizeof(buf) ? a.len : sizeof(buf);
			memcpy(buf, a.data, n);
			buf[lcg(&seed) % n] = (unsigned char)lcg(&seed);
		}
		rc = queue_rec_decode(buf, n, &m);
		if (rc == RL_EPARSE || rc == RL_EVERSION) {
			bad += m != NULL;
			continue;
		}
		bad += rc != 0 || m == NULL;
		ok++;
		rl_buf_init(&b, QUEUE_REC_MAX);
		bad += m && (queue_rec_encode(m, &b) != 0 || b.len != n || memcmp(b.data, buf, n));
		rl_buf_fini(&b);
		queue_msg_free(m);
	}
	CHECK(bad == 0, "%d bad results", bad);
	CHECK(ok > 0, "no mutation decoded");
	rl_buf_fini(&a);
}

static void test_rec_peek(void)
{
	struct queue_rec_head h;

	CHECK_INT(queue_rec_peek(rec_min, sizeof(rec_min), &h), 0);
	CHECK(h.version == 1 && h.arrival == 1 && h.next_attempt == 2 && h.size == 3, "head");
	CHECK_INT(queue_rec_peek(rec_min, QUEUE_REC_HEAD_LEN - 1, &h), RL_EPARSE);
	CHECK_INT(queue_rec_peek(rec_min, QUEUE_REC_HEAD_LEN, &h), 0);
}

/* Runs before anything else makes IDs: the "last ID" state is per process. */
static void test_id_make(void)
{
	static const struct {
		int64_t sec;
		long usec;
		const char *want;
	} cases[] = {
	    {1, 2, "0000100002"},
	    {0x100005, 999999, "00005F423F"}, /* seconds wrap at 2^20 */
	    {0x100005, 999999, "0000600000"}, /* same time: bump carries */
	    {3, 0, "0000600001"},	      /* clock went back */
	    {-5, -1, "0000600002"},	      /* clamped, still later */
	};
	static const struct {
		const char *id;
		int valid;
	} ids[] = {
	    {"0000600002", 1},	{"ABCDEF0123", 1}, {"0000a00002", 0}, {"000060000", 0},
	    {"00006000021", 0}, {"", 0},	   {"G000000000", 0}, {"00006 0002", 0},
	};
	char id[QUEUE_ID_SIZE], prev[QUEUE_ID_SIZE];
	struct timespec ts;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		queue_id_make(id, cases[i].sec, cases[i].usec);
		CHECK_STR(id, cases[i].want);
	}
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		CHECK(queue_id_valid(ids[i].id) == ids[i].valid, "id \"%s\"", ids[i].id);
	clock_gettime(CLOCK_REALTIME, &ts);
	queue_id_make(prev, ts.tv_sec, ts.tv_nsec / 1000);
	for (i = 0; i < 2000; i++) {
		queue_id_make(id, ts.tv_sec, ts.tv_nsec / 1000);
		CHECK(queue_id_valid(id) && strcmp(id, prev) > 0, "%s after %s", id, prev);
		memcpy(prev, id, sizeof(id));
	}
}

static void test_state_names(void)
{
	static const struct {
		int state;
		const char *want;
	} cases[] = {
	    {QUEUE_RCPT_PENDING, "pending"},
	    {QUEUE_RCPT_DEFERRED, "deferred"},
	    {QUEUE_RCPT_SENT, "sent"},
	    {QUEUE_RCPT_BOUNCED, "bounced"},
	    {-1, "unknown"},
	    {4, "unknown"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_STR(queue_rcpt_state_name(cases[i].state), cases[i].want);
}

static int insert_one(struct queue *q, struct queue_msg *m, const void *body, size_t len)
{
	struct queue_txn *t;
	int rc = queue_txn_begin(q, 1, &t);

	if (rc < 0)
		return rc;
	rc = queue_msg_insert(t, m, body, len);
	if (rc < 0) {
		queue_txn_abort(t);
		return rc;
	}
	return queue_txn_commit(t);
}

static const char body1[] = "Subject: hi\r\n\r\nhello\r\n";

static void test_insert_load(void)
{
	struct queue_msg a = rec_cases[1].m, b = rec_cases[0].m, *m = NULL;
	struct queue *q = open_q("insert", 0, QUEUE_O_NOSYNC);
	struct queue_txn *t;
	const void *data;
	size_t len;

	if (!q)
		return;
	CHECK_INT(insert_one(q, &a, body1, strlen(body1)), 0);
	CHECK(queue_id_valid(a.id), "made id \"%s\"", a.id);
	CHECK_INT(a.size, strlen(body1));
	/* An explicit ID that is taken is replaced and written back. */
	memcpy(b.id, a.id, QUEUE_ID_SIZE);
	CHECK_INT(insert_one(q, &b, "x", 1), 0);
	CHECK(queue_id_valid(b.id) && strcmp(a.id, b.id) != 0, "%s vs %s", b.id, a.id);
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_msg_load(t, a.id, &m), 0);
	CHECK(m && msg_diff(m, &a) == NULL, "loaded a: %s", m ? msg_diff(m, &a) : "none");
	CHECK(m && !strcmp(m->id, a.id), "loaded id");
	queue_msg_free(m);
	CHECK_INT(queue_msg_load(t, b.id, &m), 0);
	CHECK(m && !strcmp(m->sender, b.sender), "loaded b");
	queue_msg_free(m);
	CHECK_INT(queue_body_get(t, a.id, &data, &len), 0);
	CHECK(len == strlen(body1) && !memcmp(data, body1, len), "body of a");
	CHECK_INT(queue_msg_load(t, "0000000000", &m), RL_ENOTFOUND);
	CHECK(m == NULL, "no message");
	CHECK_INT(queue_msg_load(t, "../etc", &m), RL_ENOTFOUND);
	CHECK_INT(queue_body_get(t, "0000000000", &data, &len), RL_ENOTFOUND);
	CHECK_INT(queue_txn_commit(t), 0);
	/* A free explicit ID is kept; a malformed one is refused without
	 * failing the transaction; an aborted insert leaves nothing. */
	memcpy(b.id, "00000ABCDE", QUEUE_ID_SIZE);
	CHECK_INT(insert_one(q, &b, "y", 1), 0);
	CHECK_STR(b.id, "00000ABCDE");
	CHECK_INT(queue_txn_begin(q, 1, &t), 0);
	memcpy(b.id, "abc", 4);
	CHECK_INT(queue_msg_insert(t, &b, "z", 1), -EINVAL);
	b.id[0] = '\0';
	CHECK_INT(queue_msg_insert(t, &b, "z", 1), 0);
	queue_txn_abort(t);
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_msg_load(t, b.id, &m), RL_ENOTFOUND);
	queue_txn_abort(t);
	queue_close(q);
}

/* Messages of the schedule test, named by label. */
static struct queue_rcpt rc_pending[] = {{"p@x", QUEUE_RCPT_PENDING, "", NULL}};
static struct queue_rcpt rc_deferred[] = {{"d@x", QUEUE_RCPT_DEFERRED, "4.4.1", "timeout"}};
static struct queue_rcpt rc_partly[] = {{"s@x", QUEUE_RCPT_SENT, "2.0.0", NULL},
					{"p@x", QUEUE_RCPT_PENDING, "", NULL}};
static struct queue_rcpt rc_done[] = {{"s@x", QUEUE_RCPT_SENT, "", NULL},
				      {"b@x", QUEUE_RCPT_BOUNCED, "5.1.1", "no"}};
static struct queue_rcpt rc_allsent[] = {{"s@x", QUEUE_RCPT_SENT, "", NULL},
					 {"t@x", QUEUE_RCPT_SENT, "", NULL}};

static struct sched_msg {
	const char *label;
	struct queue_msg m;
} sched_msgs[] = {
    {"t300", {"", "f@x", 0, 300, 0, 0, 0, 1, rc_pending}},
    {"t100", {"", "f@x", 0, 100, 1, 0, 0, 1, rc_deferred}},
    {"t200", {"", "f@x", 0, 200, 1, 0, 0, 2, rc_partly}},
    {"held", {"", "f@x", 0, 50, 0, QUEUE_F_HOLD, 0, 1, rc_pending}},
    {"done", {"", "f@x", 0, 10, 2, 0, 0, 2, rc_done}},
    {"neg", {"", "f@x", 0, -5, 0, 0, 0, 1, rc_pending}},
};
#define NSCHED (sizeof(sched_msgs) / sizeof(sched_msgs[0]))

static struct queue_msg *sched_find(const char *label)
{
	size_t i;

	for (i = 0; i < NSCHED; i++)
		if (!strcmp(sched_msgs[i].label, label))
			return &sched_msgs[i].m;
	RL_REQUIRE(!"unknown label");
	return NULL;
}

struct due_case {
	int64_t now;
	size_t max;
	const char *want[NSCHED + 1]; /* labels, NULL-terminated */
	int64_t next;
};

/* Up to NSCHED + 1 due IDs in a fresh read transaction. */
static void due_list(struct queue *q, int64_t now, size_t max, char (*ids)[QUEUE_ID_SIZE],
		     size_t *n, int64_t *next)
{
	struct queue_txn *t;

	*n = 99;
	*next = 0;
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	if (!t)
		return;
	CHECK_INT(queue_due(t, now, max > NSCHED + 1 ? NSCHED + 1 : max, ids, n, next), 0);
	queue_txn_abort(t);
}

static void check_due(struct queue *q, const char *step, const struct due_case *c)
{
	char ids[NSCHED + 1][QUEUE_ID_SIZE];
	int64_t next;
	size_t n, i;

	due_list(q, c->now, c->max, ids, &n, &next);
	for (i = 0; c->want[i]; i++)
		CHECK(i < n && !strcmp(ids[i], sched_find(c->want[i])->id),
		      "%s now=%lld: #%zu not %s", step, (long long)c->now, i, c->want[i]);
	CHECK(n == i, "%s now=%lld: got %zu want %zu", step, (long long)c->now, n, i);
	CHECK(next == c->next, "%s now=%lld: next %lld want %lld", step, (long long)c->now,
	      (long long)next, (long long)c->next);
}

static int update_one(struct queue *q, const struct queue_msg *m)
{
	struct queue_txn *t;
	int rc = queue_txn_begin(q, 1, &t);

	if (rc < 0)
		return rc;
	rc = queue_msg_update(t, m);
	if (rc < 0) {
		queue_txn_abort(t);
		return rc;
	}
	return queue_txn_commit(t);
}

static void test_schedule(void)
{
	static const struct due_case before[] = {
	    {1000, 16, {"neg", "t100", "t200", "t300"}, INT64_MAX},
	    {150, 16, {"neg", "t100"}, 200},
	    {1000, 2, {"neg", "t100"}, 200},
	    {-1, 16, {NULL}, 0},
	    {1000, 0, {NULL}, 0},
	};
	static const struct due_case after[] = {
	    {1000, 16, {"neg", "t300", "held", "t200"}, INT64_MAX},
	    {55, 16, {"neg", "t300"}, 60},
	};
	static const char *const moved[] = {"t300", "t100", "held", "t200"};
	struct queue *q = open_q("sched", 0, QUEUE_O_NOSYNC);
	struct queue_msg bad = sched_msgs[0].m;
	size_t i;

	if (!q)
		return;
	for (i = 0; i < NSCHED; i++)
		CHECK_INT(insert_one(q, &sched_msgs[i].m, "b", 1), 0);
	for (i = 0; i < sizeof(before) / sizeof(before[0]); i++)
		check_due(q, "before", &before[i]);
	/* Move t300 earlier, hold t100, release "held", finish t200 then
	 * bring it back with a deferred recipient. */
	sched_find("t300")->next_attempt = 40;
	sched_find("t100")->flags |= QUEUE_F_HOLD;
	sched_find("held")->flags = 0;
	sched_find("held")->next_attempt = 60;
	sched_find("t200")->rcpt = rc_allsent;
	for (i = 0; i < sizeof(moved) / sizeof(moved[0]); i++)
		CHECK_INT(update_one(q, sched_find(moved[i])), 0);
	sched_find("t200")->rcpt = rc_partly;
	sched_find("t200")->next_attempt = 500;
	CHECK_INT(update_one(q, sched_find("t200")), 0);
	for (i = 0; i < sizeof(after) / sizeof(after[0]); i++)
		check_due(q, "after", &after[i]);
	memcpy(bad.id, "0000000000", QUEUE_ID_SIZE);
	CHECK_INT(update_one(q, &bad), RL_ENOTFOUND);
	memcpy(bad.id, "bad", 4);
	CHECK_INT(update_one(q, &bad), RL_ENOTFOUND);
	queue_close(q);
}

static void test_delete(void)
{
	static const struct due_case after = {1000, 16, {"t100"}, INT64_MAX};
	struct queue *q = open_q("delete", 0, QUEUE_O_NOSYNC);
	struct queue_msg *m;
	struct queue_txn *t;
	const void *data;
	size_t len;

	if (!q)
		return;
	/* Reuse the schedule table's first two messages under new IDs. */
	sched_msgs[0].m.id[0] = sched_msgs[1].m.id[0] = '\0';
	sched_msgs[1].m.flags = 0;
	CHECK_INT(insert_one(q, &sched_msgs[0].m, "b", 1), 0);
	CHECK_INT(insert_one(q, &sched_msgs[1].m, "b", 1), 0);
	CHECK_INT(queue_txn_begin(q, 1, &t), 0);
	CHECK_INT(queue_msg_delete(t, sched_msgs[0].m.id), 0);
	CHECK_INT(queue_msg_delete(t, sched_msgs[0].m.id), RL_ENOTFOUND);
	CHECK_INT(queue_msg_delete(t, "nonsense"), RL_ENOTFOUND);
	CHECK_INT(queue_txn_commit(t), 0);
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_msg_load(t, sched_msgs[0].m.id, &m), RL_ENOTFOUND);
	CHECK_INT(queue_body_get(t, sched_msgs[0].m.id, &data, &len), RL_ENOTFOUND);
	queue_txn_abort(t);
	check_due(q, "delete", &after);
	queue_close(q);
}

struct visit {
	char ids[8][QUEUE_ID_SIZE];
	int n, stop_at;
};

static int visit_cb(void *arg, const struct queue_msg *m)
{
	struct visit *v = arg;

	if (v->n < 8)
		memcpy(v->ids[v->n], m->id, QUEUE_ID_SIZE);
	v->n++;
	return v->n == v->stop_at ? 7 : 0;
}

static void check_listing(struct queue *q, uint64_t want_bytes)
{
	struct visit v = {.n = 0, .stop_at = 0};
	struct queue_txn *t;
	uint64_t nmsg, bytes, gen;
	int i;

	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_foreach(t, visit_cb, &v), 0);
	CHECK_INT(v.n, 5);
	for (i = 1; i < v.n; i++)
		CHECK(strcmp(v.ids[i - 1], v.ids[i]) < 0, "order at %d", i);
	v.n = 0;
	v.stop_at = 2;
	CHECK_INT(queue_foreach(t, visit_cb, &v), 7);
	CHECK_INT(v.n, 2);
	CHECK_INT(queue_stat(t, &nmsg, &bytes), 0);
	CHECK_INT(nmsg, 5);
	CHECK_INT(bytes, want_bytes);
	CHECK_INT(queue_ctl_get(t, &gen), 0);
	CHECK_INT(gen, 2);
	queue_txn_abort(t);
}

static void test_listing(void)
{
	static char body[50];
	struct queue *q = open_q("list", 0, QUEUE_O_NOSYNC);
	struct queue_msg m = rec_cases[0].m;
	struct queue_txn *t;
	uint64_t gen = 99, total = 0;
	size_t i;

	if (!q)
		return;
	for (i = 0; i < 5; i++) {
		m.id[0] = '\0';
		m.size = 12345; /* replaced by the real length */
		CHECK_INT(insert_one(q, &m, body, 10 * (i + 1)), 0);
		total += 10 * (i + 1);
	}
	CHECK_INT(queue_txn_begin(q, 1, &t), 0);
	CHECK_INT(queue_ctl_get(t, &gen), 0);
	CHECK_INT(gen, 0);
	CHECK_INT(queue_ctl_bump(t), 0);
	CHECK_INT(queue_ctl_bump(t), 0);
	CHECK_INT(queue_txn_commit(t), 0);
	check_listing(q, total);
	queue_close(q);

	/* Read-only: same answers, no writes. */
	q = open_q("list", 0, QUEUE_O_RDONLY);
	if (!q)
		return;
	check_listing(q, total);
	t = (struct queue_txn *)&t;
	CHECK_INT(queue_txn_begin(q, 1, &t), -EROFS);
	CHECK(t == NULL, "no txn");
	queue_close(q);
}

/* queue_summary: messages by the queue mailq shows them in, the oldest, the map. */
static void test_summary(void)
{
	static const struct {
		int64_t arrival;
		uint32_t attempts, flags;
		int active;
	} msgs[] = {
	    {1000, 0, 0, 0},		/* incoming */
	    {900, 0, 0, 0},		/* incoming, the oldest */
	    {1100, 2, 0, 0},		/* deferred */
	    {1200, 1, QUEUE_F_HOLD, 0}, /* hold wins over attempts */
	    {1300, 0, QUEUE_F_HOLD, 1}, /* and over in delivery */
	    {1400, 3, 0, 1},		/* active */
	};
	struct queue *q = open_q("summary", 0, QUEUE_O_NOSYNC);
	struct queue_summary s;
	struct queue_txn *t;

	if (!q)
		return;
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_summary(t, &s), 0);
	queue_txn_abort(t);
	CHECK(s.incoming + s.active + s.deferred + s.hold == 0 && s.oldest == 0,
	      "empty queue: %llu %lld", (unsigned long long)s.incoming, (long long)s.oldest);
	CHECK(s.map_size >= 4 * 1024 * 1024 && s.map_used > 0 && s.map_used < s.map_size,
	      "map %llu of %llu", (unsigned long long)s.map_used, (unsigned long long)s.map_size);
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		struct queue_msg m = rec_cases[0].m;

		m.arrival = msgs[i].arrival;
		m.attempts = msgs[i].attempts;
		m.flags = msgs[i].flags;
		CHECK_INT(insert_one(q, &m, body1, sizeof(body1) - 1), 0);
		if (!msgs[i].active)
			continue;
		CHECK_INT(queue_txn_begin(q, 1, &t), 0);
		CHECK_INT(queue_active_set(t, m.id, 1), 0);
		CHECK_INT(queue_txn_commit(t), 0);
	}
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_summary(t, &s), 0);
	queue_txn_abort(t);
	CHECK_INT(s.incoming, 2);
	CHECK_INT(s.deferred, 1);
	CHECK_INT(s.hold, 2);
	CHECK_INT(s.active, 1);
	CHECK_INT(s.oldest, 900);
	CHECK(s.map_used > 0 && s.map_used < s.map_size, "map %llu of %llu",
	      (unsigned long long)s.map_used, (unsigned long long)s.map_size);
	queue_close(q);
}

static void test_open_errors(void)
{
	struct rl_why why = {0, NULL, 0};
	struct queue *q = (struct queue *)&q;
	char file[PATH_MAX];
	FILE *f;

	CHECK_INT(queue_open(subdir("missing"), 0, QUEUE_O_RDONLY, &q, &why), -ENOENT);
	CHECK(q == NULL && why.code == -ENOENT && why.reason, "why for missing dir");
	snprintf(file, sizeof(file), "%s", subdir("afile"));
	f = fopen(file, "w");
	if (f)
		fclose(f);
	CHECK_INT(queue_open(file, 0, 0, &q, &why), -ENOTDIR);
	/* An empty directory is not a queue, read-only. */
	mkdir(subdir("empty"), 0700);
	CHECK(queue_open(subdir("empty"), 0, QUEUE_O_RDONLY, &q, &why) < 0, "empty dir");
	CHECK(q == NULL, "no queue");
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 31u + i * 7u);
}

static unsigned char full_body[16 * 1024];

static void check_bodies(struct queue *q, char (*ids)[QUEUE_ID_SIZE], int n)
{
	struct queue_txn *t;
	const void *data;
	size_t len;
	int i;

	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	if (!t)
		return;
	for (i = 0; i < n; i++) {
		fill(full_body, sizeof(full_body), (unsigned)i);
		CHECK_INT(queue_body_get(t, ids[i], &data, &len), 0);
		CHECK(len == sizeof(full_body) && !memcmp(data, full_body, len), "body %d", i);
	}
	queue_txn_abort(t);
}

/* Fill a 256 KiB map with 16 KiB bodies until RL_EQFULL. */
static int fill_queue(struct queue *q, char (*ids)[QUEUE_ID_SIZE], int max)
{
	struct queue_msg m = rec_cases[0].m;
	struct queue_txn *t;
	int n, rc = 0;

	for (n = 0; n < max && rc == 0; n++) {
		fill(full_body, sizeof(full_body), (unsigned)n);
		m.id[0] = '\0';
		rc = queue_txn_begin(q, 1, &t);
		if (rc < 0)
			break;
		rc = queue_msg_insert(t, &m, full_body, sizeof(full_body));
		if (rc < 0) {
			/* The failure sticks: later calls and the commit
			 * report it, and the commit stores nothing. */
			CHECK_INT(queue_msg_insert(t, &m, "x", 1), rc);
			CHECK_INT(queue_txn_commit(t), rc);
			break;
		}
		rc = queue_txn_commit(t);
		if (rc == 0)
			memcpy(ids[n], m.id, QUEUE_ID_SIZE);
	}
	CHECK_INT(rc, RL_EQFULL);
	return n;
}

/* The reserve refuses new mail while a bounce of the relay still fits. */
static void test_reserve(void)
{
	static char ids[512][QUEUE_ID_SIZE];
	struct queue_msg m = rec_cases[0].m;
	struct queue *q = open_q("reserve", 4 * 1024 * 1024, QUEUE_O_NOSYNC);
	int n;

	if (!q)
		return;
	n = fill_queue(q, ids, 512);
	CHECK(n >= 150, "%d messages fit in 4 MiB", n);
	m.id[0] = '\0';
	CHECK_INT(insert_one(q, &m, full_body, sizeof(full_body)), RL_EQFULL);
	m.flags |= QUEUE_F_BOUNCE;
	m.id[0] = '\0';
	CHECK_INT(insert_one(q, &m, full_body, sizeof(full_body)), 0);
	queue_close(q);
}

static void test_map_full(void)
{
	char ids[64][QUEUE_ID_SIZE];
	struct queue_msg m = rec_cases[0].m;
	struct queue *q = open_q("full", 256 * 1024, QUEUE_O_NOSYNC);
	int n;

	if (!q)
		return;
	n = fill_queue(q, ids, 64);
	CHECK(n >= 2 && n < 16, "%d messages fit in 256 KiB", n);
	queue_close(q);
	/* The queue still opens and holds what was committed. */
	q = open_q("full", 256 * 1024, QUEUE_O_NOSYNC);
	if (!q)
		return;
	check_bodies(q, ids, n);
	CHECK_INT(insert_one(q, &m, full_body, sizeof(full_body)), RL_EQFULL);
	queue_close(q);
	/* A larger configured size is applied to an existing queue... */
	q = open_q("full", 1024 * 1024, QUEUE_O_NOSYNC);
	if (!q)
		return;
	m.id[0] = '\0';
	CHECK_INT(insert_one(q, &m, full_body, sizeof(full_body)), 0);
	queue_close(q);
	/* ...and a smaller one later does not shrink it again. */
	q = open_q("full", 256 * 1024, QUEUE_O_NOSYNC);
	if (!q)
		return;
	m.id[0] = '\0';
	CHECK_INT(insert_one(q, &m, full_body, sizeof(full_body)), 0);
	check_bodies(q, ids, n);
	queue_close(q);
}

static unsigned char fork_body[1024 * 1024];
static const char *self_path; /* argv[0], to run the child mode */

/*
 * The child mode (test_queue --child DIR): another process opens the queue
 * with a larger map and inserts a body that does not fit the parent's map,
 * so the parent must follow the growth.  It is exec'd rather than just
 * forked: LMDB handles must not cross a fork(), and a fresh process is what
 * mailq or sendmail are.
 */
static int fork_child(const char *dir)
{
	struct queue_msg m = rec_cases[0].m;
	struct queue *q = NULL;
	int rc;

	fill(fork_body, sizeof(fork_body), 3);
	rc = queue_open(dir, 4 * 1024 * 1024, QUEUE_O_NOSYNC, &q, NULL);
	if (rc == 0) {
		memcpy(m.id, "00000C0DE1", QUEUE_ID_SIZE);
		rc = insert_one(q, &m, fork_body, sizeof(fork_body));
	}
	if (rc == 0 && strcmp(m.id, "00000C0DE1") != 0)
		rc = -EEXIST;
	if (rc < 0)
		fprintf(stderr, "child: %s\n", rl_strerror(rc));
	queue_close(q);
	return rc == 0 ? 0 : 1;
}

static void run_child(void)
{
	int status = -1;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		execl(self_path, self_path, "--child", subdir("fork"), (char *)NULL);
		_exit(127);
	}
	CHECK(pid > 0, "fork: %s", strerror(errno));
	if (pid > 0)
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
			  WEXITSTATUS(status) == 0,
		      "child status %d", status);
}

static void test_fork(void)
{
	struct queue *q = open_q("fork", 256 * 1024, QUEUE_O_NOSYNC);
	struct queue_msg m = rec_cases[0].m, *got = NULL;
	struct queue_txn *t;
	const void *data;
	size_t len;

	if (!q)
		return;
	fill(fork_body, sizeof(fork_body), 3);
	CHECK_INT(insert_one(q, &m, "parent", 6), 0);
	/* The parent keeps its queue open while the child writes. */
	run_child();
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	if (t) {
		CHECK_INT(queue_msg_load(t, "00000C0DE1", &got), 0);
		queue_msg_free(got);
		CHECK_INT(queue_body_get(t, "00000C0DE1", &data, &len), 0);
		CHECK(len == sizeof(fork_body) && !memcmp(data, fork_body, len), "child's body");
		CHECK_INT(queue_body_get(t, m.id, &data, &len), 0);
		CHECK(len == 6 && !memcmp(data, "parent", 6), "parent's body");
		queue_txn_abort(t);
	}
	m.id[0] = '\0';
	CHECK_INT(insert_one(q, &m, "again", 5), 0);
	queue_close(q);
}

/* Write straight into one of the queue's databases, as damage would. */
static void raw_put(const char *dir, const char *db, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc;

	rc = mdb_env_create(&env);
	if (rc) {
		CHECK(0, "raw env: %s", mdb_strerror(rc));
		return;
	}
	rc = mdb_env_set_maxdbs(env, 8);
	if (!rc)
		rc = mdb_env_open(env, dir, MDB_NOSYNC, 0600);
	if (!rc)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (!rc) {
		rc = mdb_dbi_open(txn, db, 0, &dbi);
		if (!rc)
			rc = mdb_put(txn, dbi, &k, &v, 0);
		if (!rc)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	mdb_env_close(env);
	CHECK(rc == 0, "raw put: %s", mdb_strerror(rc));
}

static void check_damaged(struct queue *q, const struct queue_msg *x, const struct queue_msg *y)
{
	char ids[NSCHED + 1][QUEUE_ID_SIZE];
	struct queue_msg *m = NULL;
	struct queue_txn *t;
	uint64_t nmsg, bytes;
	int64_t next;
	size_t n;

	due_list(q, 1000, 16, ids, &n, &next);
	CHECK(n == 2 && !strcmp(ids[0], x->id) && !strcmp(ids[1], y->id), "due before: %zu", n);
	CHECK_INT(queue_txn_begin(q, 1, &t), 0);
	if (!t)
		return;
	CHECK_INT(queue_msg_load(t, x->id, &m), RL_EPARSE);
	CHECK_INT(queue_msg_load(t, y->id, &m), RL_EVERSION);
	CHECK_INT(queue_foreach(t, visit_cb, &(struct visit){.n = 0}), RL_EPARSE);
	CHECK_INT(queue_stat(t, &nmsg, &bytes), 0);
	CHECK(nmsg == 2 && bytes == 0, "stat %llu %llu", (unsigned long long)nmsg,
	      (unsigned long long)bytes);
	/* A newer record is left alone; a damaged one can still go, and its
	 * schedule entry with it. */
	CHECK_INT(queue_msg_update(t, y), RL_EVERSION);
	CHECK_INT(queue_msg_delete(t, y->id), RL_EVERSION);
	CHECK_INT(queue_msg_delete(t, x->id), 0);
	CHECK_INT(queue_txn_commit(t), 0);
	due_list(q, 1000, 16, ids, &n, &next);
	CHECK(n == 1 && !strcmp(ids[0], y->id), "due after: %zu", n);
}

static void test_damaged(void)
{
	struct queue_msg x = rec_cases[0].m, y = rec_cases[0].m;
	struct rl_why why = {0, NULL, 0};
	struct queue *q = open_q("damaged", 0, QUEUE_O_NOSYNC);
	struct rl_buf rec;

	if (!q)
		return;
	x.next_attempt = 100;
	y.next_attempt = 200;
	CHECK_INT(insert_one(q, &x, "x", 1), 0);
	CHECK_INT(insert_one(q, &y, "y", 1), 0);
	queue_close(q);
	raw_put(subdir("damaged"), "msg", x.id, QUEUE_ID_LEN, "\x01\x02\x03", 3);
	rl_buf_init(&rec, QUEUE_REC_MAX);
	CHECK_INT(queue_rec_encode(&y, &rec), 0);
	if (rec.data) {
		rec.data[0] = QUEUE_REC_VERSION + 1;
		raw_put(subdir("damaged"), "msg", y.id, QUEUE_ID_LEN, rec.data, rec.len);
	}
	rl_buf_fini(&rec);
	q = open_q("damaged", 0, QUEUE_O_NOSYNC);
	if (q)
		check_damaged(q, &x, &y);
	queue_close(q);
	/* A queue laid out by a newer version is refused, not misread. */
	raw_put(subdir("damaged"), "meta", "version", 7, "\x02\x00\x00\x00", 4);
	q = (struct queue *)&q;
	CHECK_INT(queue_open(subdir("damaged"), 0, 0, &q, &why), RL_EVERSION);
	CHECK(q == NULL && why.code == RL_EVERSION && why.reason, "why for newer format");
	CHECK_INT(queue_open(subdir("damaged"), 0, QUEUE_O_RDONLY, &q, &why), RL_EVERSION);
}

/*
 * Content from a file (a body spilled while receiving): longer than one
 * pread chunk, copied exactly; a file shorter than promised fails the
 * transaction and stores nothing.
 */
static void test_insert_fd(void)
{
	struct queue_msg a = rec_cases[1].m, b = rec_cases[0].m;
	struct queue *q = open_q("insert_fd", 0, QUEUE_O_NOSYNC);
	size_t len = 3 * 1024 * 1024 + 17, got = 0;
	char path[512], *body = malloc(len);
	struct queue_txn *t;
	const void *data;
	uint64_t nmsg = 0, bytes = 0;
	int fd;

	if (!q || !body) {
		free(body);
		return;
	}
	for (size_t i = 0; i < len; i++)
		body[i] = (char)('a' + i % 23);
	snprintf(path, sizeof(path), "%s/spill", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, body, len) == (ssize_t)len, "write %s", path);
	a.id[0] = '\0';
	CHECK_INT(queue_txn_begin(q, 1, &t), 0);
	CHECK_INT(queue_msg_insert_fd(t, &a, fd, len), 0);
	CHECK_INT(queue_txn_commit(t), 0);
	CHECK_INT(a.size, len);
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_body_get(t, a.id, &data, &got), 0);
	CHECK(got == len && !memcmp(data, body, len), "body from file: %zu of %zu", got, len);
	queue_txn_abort(t);
	b.id[0] = '\0';
	CHECK_INT(queue_txn_begin(q, 1, &t), 0);
	CHECK_INT(queue_msg_insert_fd(t, &b, fd, len + 1), -EIO);
	CHECK_INT(queue_txn_commit(t), -EIO);
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_stat(t, &nmsg, &bytes), 0);
	CHECK(nmsg == 1 && bytes == len, "after a short file: %llu messages, %llu bytes",
	      (unsigned long long)nmsg, (unsigned long long)bytes);
	queue_txn_abort(t);
	close(fd);
	unlink(path);
	free(body);
	queue_close(q);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--child"))
		return fork_child(argv[2]);
	self_path = argv[0];
	memset(long_addr, 'a', QUEUE_REC_ADDR_MAX);
	memset(long_reason, 'r', QUEUE_REC_REASON_MAX);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_id_make();
	test_state_names();
	test_rec_roundtrip();
	test_rec_limits();
	test_rec_mutations();
	test_rec_garbage();
	test_rec_peek();
	test_insert_load();
	test_insert_fd();
	test_schedule();
	test_delete();
	test_listing();
	test_summary();
	test_open_errors();
	test_map_full();
	test_reserve();
	test_fork();
	test_damaged();
	rm_tree(tmpdir);
	return TEST_DONE();
}
