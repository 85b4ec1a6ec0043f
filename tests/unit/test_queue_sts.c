/*
 * Unit tests for the MTA-STS policy cache of the queue module: the record
 * codec (round trips, exact bytes, limits, truncated, mutated and random
 * input), the key of a domain, and the "sts" database (put, get,
 * overwrite, delete, foreach, close and reopen, read-only opens, a queue
 * made before the cache existed, damaged entries), and that the mail
 * listing and statistics do not see cache entries.  Every LMDB test uses
 * its own environment under one mkdtemp directory, removed at the end.
 */
#include "queue.h"
#include "queue_int.h"
#include "tap.h"
#include "testdir.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_queue_sts.XXXXXX";

static const char *subdir(const char *name)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static struct queue *open_q(const char *name, unsigned flags)
{
	struct rl_why why = {0, NULL, 0};
	struct queue *q = NULL;
	int rc = queue_open(subdir(name), 0, flags, &q, &why);

	CHECK(rc == 0, "open %s: %s (%s)", name, rl_strerror(rc), why.reason ? why.reason : "");
	return q;
}

static char big_body[QUEUE_STS_BODY_MAX + 1];
static const char id32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
static const char policy[] = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
			     "max_age: 86400\r\n";

static int sts_eq(const struct queue_sts *a, const struct queue_sts *b)
{
	return !strcmp(a->id, b->id) && a->fetched == b->fetched && a->expires == b->expires &&
	       a->len == b->len && (a->len == 0 || !memcmp(a->body, b->body, a->len));
}

/* -- the codec ---------------------------------------------------------- */

static void test_rec_roundtrip(void)
{
	const struct queue_sts cases[] = {
	    {"a", 0, 0, "", 0},
	    {"20240101", 1700000000, 1700086400, policy, sizeof(policy) - 1},
	    {"", INT64_MAX, INT64_MAX, "\0\xff\r\n", 4},
	    {"Z9", 5, 31557605, NULL, 0},
	    {"", 1, 2, big_body, QUEUE_STS_BODY_MAX},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct queue_sts s = cases[i], got;
		struct rl_buf b;

		if (i == 2 || i == 4)
			memcpy(s.id, id32, sizeof(id32));
		rl_buf_init(&b, QUEUE_STS_REC_MAX);
		CHECK_INT(queue_sts_rec_encode(&s, &b), 0);
		CHECK_INT(b.len, QUEUE_STS_REC_HEAD + strlen(s.id) + 20 + s.len);
		CHECK_INT(queue_sts_rec_decode(b.data, b.len, &got), 0);
		CHECK(sts_eq(&s, &got), "case %zu: round trip", i);
		CHECK(got.len == 0 || got.body == (const char *)b.data + b.len - got.len,
		      "case %zu: body points into the record", i);
		rl_buf_fini(&b);
	}
}

/* The exact bytes of version 1, so a change of format cannot go unnoticed. */
static void test_rec_bytes(void)
{
	static const unsigned char want[] = {
	    1,    2,    'i',  'D',  0x01, 0x02, 0,    0,    0,    0,    0,    0,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 3,    0,    0,    0,
	    'a',  0,    'b',
	};
	struct queue_sts s = {"iD", 0x0201, INT64_MAX, "a\0b", 3}, got;
	struct rl_buf b;

	rl_buf_init(&b, QUEUE_STS_REC_MAX);
	CHECK_INT(queue_sts_rec_encode(&s, &b), 0);
	CHECK(b.len == sizeof(want) && !memcmp(b.data, want, sizeof(want)), "bytes (%zu)", b.len);
	rl_buf_fini(&b);
	CHECK_INT(queue_sts_rec_decode(want, sizeof(want), &got), 0);
	CHECK(sts_eq(&s, &got), "decode of the exact bytes");
}

static void test_rec_limits(void)
{
	static const struct {
		const char *id;
		int64_t fetched, expires;
		size_t len;
		int want;
	} cases[] = {
	    {"", 0, 0, 0, -EINVAL},
	    {"abc-1", 0, 0, 0, -EINVAL},
	    {"abc 1", 0, 0, 0, -EINVAL},
	    {"ab.c", 0, 0, 0, -EINVAL},
	    {"abc", -1, 0, 0, -EINVAL},
	    {"abc", 10, 9, 0, -EINVAL},
	    {"abc", INT64_MIN, INT64_MIN, 0, -EINVAL},
	    {"abc", 0, 0, QUEUE_STS_BODY_MAX + 1, RL_ETOOBIG},
	    {"abc", 10, 10, QUEUE_STS_BODY_MAX, 0},
	};
	struct queue_sts s;
	struct rl_buf b;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&s, 0, sizeof(s));
		snprintf(s.id, sizeof(s.id), "%s", cases[i].id);
		s.fetched = cases[i].fetched;
		s.expires = cases[i].expires;
		s.body = big_body;
		s.len = cases[i].len;
		rl_buf_init(&b, QUEUE_STS_REC_MAX);
		CHECK(queue_sts_rec_encode(&s, &b) == cases[i].want, "case %zu", i);
		CHECK(cases[i].want == 0 || b.len == 0, "case %zu: nothing written", i);
		rl_buf_fini(&b);
	}
	/* An id without its NUL within the field (33 letters). */
	memset(&s, 0, sizeof(s));
	memset(s.id, 'a', sizeof(s.id));
	rl_buf_init(&b, QUEUE_STS_REC_MAX);
	CHECK_INT(queue_sts_rec_encode(&s, &b), -EINVAL);
	rl_buf_fini(&b);
	/* The buffer's own limit: refused, and what was there stays. */
	memset(&s, 0, sizeof(s));
	memcpy(s.id, "abc", 4);
	s.body = big_body;
	s.len = 100;
	rl_buf_init(&b, 50);
	CHECK_INT(rl_buf_append(&b, "xy", 2), 0);
	CHECK_INT(queue_sts_rec_encode(&s, &b), RL_ETOOBIG);
	CHECK(b.len == 2 && !memcmp(b.data, "xy", 2), "buffer kept: %zu", b.len);
	rl_buf_fini(&b);
}

/* A valid record in buf; its length. */
static size_t rec_make(unsigned char *buf, size_t size, const struct queue_sts *s)
{
	struct rl_buf b;
	size_t n = 0;

	rl_buf_init(&b, QUEUE_STS_REC_MAX);
	if (queue_sts_rec_encode(s, &b) == 0 && b.len <= size) {
		memcpy(buf, b.data, b.len);
		n = b.len;
	}
	rl_buf_fini(&b);
	CHECK(n > 0, "rec_make");
	return n;
}

static void test_rec_damage(void)
{
	struct queue_sts s = {"abc", 100, 200, "body", 4}, got;
	unsigned char rec[64], bad[65];
	size_t n = rec_make(rec, sizeof(rec), &s);
	static const struct {
		size_t off;
		unsigned char val;
		int want;
	} muts[] = {
	    {0, 0, RL_EPARSE},            /* version 0 */
	    {0, 2, RL_EVERSION},          /* a newer version */
	    {0, 0xff, RL_EVERSION},
	    {1, 0, RL_EPARSE},            /* empty id */
	    {1, 2, RL_EPARSE},            /* id length off by one: rest misaligned */
	    {1, 4, RL_EPARSE},
	    {1, 33, RL_EPARSE},           /* over QUEUE_STS_ID_MAX */
	    {3, '-', RL_EPARSE},          /* not a letter or digit */
	    {3, 0, RL_EPARSE},
	    {12, 0x80, RL_EPARSE},        /* fetched negative */
	    {13, 0x01, RL_EPARSE},        /* fetched > expires */
	    {21, 5, RL_EPARSE},           /* body length past the end */
	    {21, 3, RL_EPARSE},           /* bytes after the body */
	    {23, 1, RL_EPARSE},           /* body length over QUEUE_STS_BODY_MAX */
	    {26, 0, 0},                   /* body bytes are anything */
	    {3, 'Z', 0},
	};

	/* Every truncation, and every extension by one byte. */
	for (size_t k = 0; k < n; k++) {
		CHECK(queue_sts_rec_decode(rec, k, &got) == RL_EPARSE, "truncated to %zu", k);
		CHECK(got.len == 0 && got.id[0] == '\0' && !got.body, "zeroed at %zu", k);
	}
	memcpy(bad, rec, n);
	bad[n] = 'x';
	CHECK_INT(queue_sts_rec_decode(bad, n + 1, &got), RL_EPARSE);
	CHECK_INT(queue_sts_rec_decode(NULL, 0, &got), RL_EPARSE);
	for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
		memcpy(bad, rec, n);
		bad[muts[i].off] = muts[i].val;
		CHECK(queue_sts_rec_decode(bad, n, &got) == muts[i].want, "mutation %zu", i);
	}
}

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Random bytes, and valid records with random bytes changed: never a
 * crash, and whatever decodes encodes back to the same bytes. */
static void test_rec_garbage(void)
{
	struct queue_sts s = {"x1", 1, 2, policy, sizeof(policy) - 1}, got;
	unsigned char rec[256], buf[256];
	size_t n = rec_make(rec, sizeof(rec), &s);
	uint32_t seed = 12345;
	int accepted = 0;

	for (int round = 0; round < 20000; round++) {
		size_t len = round & 1 ? n : lcg(&seed) % sizeof(buf);
		struct rl_buf b;

		if (round & 1) {
			memcpy(buf, rec, n);
			buf[lcg(&seed) % n] = (unsigned char)lcg(&seed);
		} else {
			for (size_t i = 0; i < len; i++)
				buf[i] = (unsigned char)lcg(&seed);
		}
		if (queue_sts_rec_decode(buf, len, &got) != 0)
			continue;
		accepted++;
		rl_buf_init(&b, QUEUE_STS_REC_MAX);
		CHECK(queue_sts_rec_encode(&got, &b) == 0 && b.len == len &&
			  !memcmp(b.data, buf, len),
		      "round %d: canonical", round);
		rl_buf_fini(&b);
	}
	CHECK(accepted > 0, "some mutations are valid records");
}

/* -- the key ------------------------------------------------------------ */

static void test_key(void)
{
	static char long_label[80], longest[QUEUE_STS_DOMAIN_MAX + 3];
	static const struct {
		const char *in, *want; /* want NULL: -EINVAL */
	} cases[] = {
	    {"example.com", "example.com"},
	    {"Example.COM.", "example.com"},
	    {"_mta-sts.x.test", "_mta-sts.x.test"},
	    {"xn--bcher-kva.test", "xn--bcher-kva.test"},
	    {"a", "a"},
	    {"", NULL},
	    {".", NULL},
	    {".a", NULL},
	    {"a..b", NULL},
	    {"a..", NULL},
	    {"a b", NULL},
	    {"a/b", NULL},
	    {"b\xc3\xbc" "cher.test", NULL},
	};
	char out[QUEUE_STS_DOMAIN_MAX + 1];
	size_t len;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = queue_sts_key(cases[i].in, strlen(cases[i].in), out, &len);

		if (!cases[i].want) {
			CHECK(rc == -EINVAL && len == 0 && out[0] == '\0', "key \"%s\": %d",
			      cases[i].in, rc);
			continue;
		}
		CHECK_INT(rc, 0);
		CHECK_STR(out, cases[i].want);
		CHECK_INT(len, strlen(cases[i].want));
	}
	/* Labels up to 63 octets, names up to 253 (with the dot 254). */
	memset(long_label, 'a', 63);
	CHECK_INT(queue_sts_key(long_label, 63, out, &len), 0);
	memset(long_label, 'a', 64);
	CHECK_INT(queue_sts_key(long_label, 64, out, &len), -EINVAL);
	for (size_t i = 0; i < QUEUE_STS_DOMAIN_MAX; i++)
		longest[i] = i % 50 == 49 ? '.' : 'b';
	CHECK_INT(queue_sts_key(longest, QUEUE_STS_DOMAIN_MAX, out, &len), 0);
	CHECK_INT(len, QUEUE_STS_DOMAIN_MAX);
	longest[QUEUE_STS_DOMAIN_MAX] = '.';
	CHECK_INT(queue_sts_key(longest, QUEUE_STS_DOMAIN_MAX + 1, out, &len), 0);
	longest[QUEUE_STS_DOMAIN_MAX] = 'b';
	CHECK_INT(queue_sts_key(longest, QUEUE_STS_DOMAIN_MAX + 1, out, &len), -EINVAL);
}

/* -- the database -------------------------------------------------------- */

static int put_one(struct queue *q, const char *domain, const struct queue_sts *s)
{
	struct queue_txn *t;
	int rc = queue_txn_begin(q, 1, &t);

	if (rc < 0)
		return rc;
	rc = queue_sts_put(t, domain, s);
	if (rc < 0) {
		queue_txn_abort(t);
		return rc;
	}
	return queue_txn_commit(t);
}

/* Get domain in a read transaction and compare with want (NULL: absent). */
static void check_get(struct queue *q, const char *domain, const struct queue_sts *want, int rc)
{
	struct queue_txn *t;
	struct queue_sts got;

	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	if (!t)
		return;
	CHECK(queue_sts_get(t, domain, &got) == rc, "get %s", domain);
	if (rc == 0)
		CHECK(sts_eq(&got, want), "get %s: id %s len %zu", domain, got.id, got.len);
	else
		CHECK(got.len == 0 && got.id[0] == '\0' && !got.body, "get %s: zeroed", domain);
	queue_txn_abort(t);
}

struct seen {
	char domains[8][QUEUE_STS_DOMAIN_MAX + 1];
	int n, stop_at;
};

static int seen_cb(void *arg, const char *domain, const struct queue_sts *rec)
{
	struct seen *v = arg;

	CHECK(rec->id[0] != '\0' && (rec->len == 0 || rec->body), "rec for %s", domain);
	if (v->n < 8)
		snprintf(v->domains[v->n], sizeof(v->domains[0]), "%s", domain);
	v->n++;
	return v->n == v->stop_at ? 9 : 0;
}

static int msg_cb(void *arg, const struct queue_msg *m)
{
	(void)m;
	(*(int *)arg)++;
	return 0;
}

/* The mail listing and statistics: nmsg messages, whatever the cache holds. */
static void check_mail(struct queue *q, int nmsg)
{
	struct queue_txn *t;
	uint64_t n = 99, bytes = 99;
	int visited = 0;

	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	if (!t)
		return;
	CHECK_INT(queue_foreach(t, msg_cb, &visited), 0);
	CHECK_INT(visited, nmsg);
	CHECK_INT(queue_stat(t, &n, &bytes), 0);
	CHECK_INT(n, nmsg);
	queue_txn_abort(t);
}

static void test_db_basic(void)
{
	struct queue *q = open_q("basic", QUEUE_O_NOSYNC);
	struct queue_sts a = {"id1", 1000, 2000, policy, sizeof(policy) - 1};
	struct queue_sts b = {"id2", 3000, 4000, "mode: none\n", 11}, got;
	struct seen v = {.n = 0};
	struct queue_txn *t;

	if (!q)
		return;
	check_get(q, "example.com", NULL, -ENOENT);
	CHECK_INT(put_one(q, "Example.COM.", &a), 0);
	CHECK_INT(put_one(q, "b.example", &b), 0);
	CHECK_INT(put_one(q, "_mta-sts.c.example", &b), 0);
	check_get(q, "example.com", &a, 0);
	check_get(q, "EXAMPLE.com", &a, 0);
	check_get(q, "b.example.", &b, 0);
	check_get(q, "bad..name", NULL, -EINVAL);
	/* Overwrite, and see the change inside the same write transaction. */
	CHECK_INT(queue_txn_begin(q, 1, &t), 0);
	CHECK_INT(queue_sts_put(t, "example.com", &b), 0);
	CHECK_INT(queue_sts_get(t, "example.com", &got), 0);
	CHECK(sts_eq(&got, &b), "overwritten in txn");
	CHECK_INT(queue_sts_del(t, "b.example"), 0);
	CHECK_INT(queue_sts_del(t, "b.example"), 0); /* absent: still 0 */
	CHECK_INT(queue_sts_del(t, "nowhere.example"), 0);
	CHECK_INT(queue_sts_del(t, "a b"), -EINVAL);
	CHECK_INT(queue_sts_get(t, "b.example", &got), -ENOENT);
	CHECK_INT(queue_txn_commit(t), 0);
	check_get(q, "example.com", &b, 0);
	check_get(q, "b.example", NULL, -ENOENT);
	/* foreach: domain order, stop on non-zero. */
	CHECK_INT(put_one(q, "a.example", &a), 0);
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_sts_foreach(t, seen_cb, &v), 0);
	CHECK_INT(v.n, 3);
	CHECK_STR(v.domains[0], "_mta-sts.c.example");
	CHECK_STR(v.domains[1], "a.example");
	CHECK_STR(v.domains[2], "example.com");
	v.n = 0;
	v.stop_at = 2;
	CHECK_INT(queue_sts_foreach(t, seen_cb, &v), 9);
	CHECK_INT(v.n, 2);
	queue_txn_abort(t);
	check_mail(q, 0);
	queue_close(q);
}

/* Refused puts write nothing and leave the transaction usable. */
static void test_db_limits(void)
{
	struct queue *q = open_q("limits", QUEUE_O_NOSYNC);
	struct queue_sts s = {"", 1, 1, big_body, QUEUE_STS_BODY_MAX};
	struct queue_sts bad_id = {"a-b", 1, 1, "", 0}, bad_time = {"ab", 5, 4, "", 0};
	struct queue_txn *t;

	if (!q)
		return;
	memcpy(s.id, id32, sizeof(id32));
	CHECK_INT(queue_txn_begin(q, 1, &t), 0);
	s.len = QUEUE_STS_BODY_MAX + 1;
	CHECK_INT(queue_sts_put(t, "big.example", &s), RL_ETOOBIG);
	CHECK_INT(queue_sts_put(t, "big.example", &bad_id), -EINVAL);
	CHECK_INT(queue_sts_put(t, "big.example", &bad_time), -EINVAL);
	CHECK_INT(queue_sts_put(t, "big..example", &bad_time), -EINVAL);
	s.len = QUEUE_STS_BODY_MAX;
	CHECK_INT(queue_sts_put(t, "big.example", &s), 0);
	CHECK_INT(queue_txn_commit(t), 0);
	check_get(q, "big.example", &s, 0);
	queue_close(q);
}

/* Entries last across close and reopen, read-only opens included, and
 * live next to mail without changing its listing. */
static void test_db_reopen(void)
{
	struct queue *q = open_q("reopen", 0);
	struct queue_sts a = {"persist1", 10, 20, policy, sizeof(policy) - 1};
	struct queue_rcpt rcpt = {"r@example.com", QUEUE_RCPT_PENDING, "", NULL};
	struct queue_msg m = {.sender = "s@example.org", .nrcpt = 1, .rcpt = &rcpt};
	struct seen v = {.n = 0};
	struct queue_txn *t;

	if (!q)
		return;
	CHECK_INT(put_one(q, "persist.example", &a), 0);
	check_mail(q, 0);
	CHECK_INT(queue_txn_begin(q, 1, &t), 0);
	CHECK_INT(queue_msg_insert(t, &m, "hello\r\n", 7), 0);
	CHECK_INT(queue_txn_commit(t), 0);
	check_mail(q, 1);
	queue_close(q);
	q = open_q("reopen", 0);
	if (!q)
		return;
	check_get(q, "persist.example", &a, 0);
	check_mail(q, 1);
	queue_close(q);
	q = open_q("reopen", QUEUE_O_RDONLY);
	if (!q)
		return;
	check_get(q, "persist.example", &a, 0);
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_sts_foreach(t, seen_cb, &v), 0);
	CHECK_INT(v.n, 1);
	queue_txn_abort(t);
	check_mail(q, 1);
	queue_close(q);
}

/* Open the environment of a test directly, as damage or an old version would. */
static int raw_env(const char *name, MDB_env **env, MDB_txn **txn)
{
	int rc = mdb_env_create(env);

	if (rc)
		return rc;
	rc = mdb_env_set_maxdbs(*env, 8);
	if (!rc)
		rc = mdb_env_open(*env, subdir(name), MDB_NOSYNC, 0600);
	if (!rc)
		rc = mdb_txn_begin(*env, NULL, 0, txn);
	if (rc)
		mdb_env_close(*env);
	return rc;
}

static void raw_sts_put(const char *name, const void *key, size_t klen, const void *val,
			size_t vlen)
{
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc = raw_env(name, &env, &txn);

	if (rc) {
		CHECK(0, "raw env: %s", mdb_strerror(rc));
		return;
	}
	rc = mdb_dbi_open(txn, "sts", 0, &dbi);
	if (!rc)
		rc = mdb_put(txn, dbi, &k, &v, 0);
	if (!rc)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	mdb_env_close(env);
	CHECK(rc == 0, "raw put: %s", mdb_strerror(rc));
}

/* Damaged entries: get says RL_EPARSE, foreach skips them, put repairs. */
static void test_db_damaged(void)
{
	struct queue *q = open_q("damaged", QUEUE_O_NOSYNC);
	struct queue_sts a = {"good", 1, 2, "x", 1};
	unsigned char rec[64];
	size_t n = rec_make(rec, sizeof(rec), &a);
	struct seen v = {.n = 0};
	struct queue_txn *t;

	if (!q)
		return;
	CHECK_INT(put_one(q, "good.example", &a), 0);
	CHECK_INT(put_one(q, "newer.example", &a), 0);
	queue_close(q);
	raw_sts_put("damaged", "bad.example", 11, "\x01\x05short", 7);
	rec[0] = QUEUE_STS_REC_VERSION + 1;
	raw_sts_put("damaged", "newer.example", 13, rec, n);
	rec[0] = QUEUE_STS_REC_VERSION;
	/* Keys that queue_sts_put() never writes. */
	raw_sts_put("damaged", "UPPER.example", 13, rec, n);
	raw_sts_put("damaged", "a..b", 4, rec, n);
	q = open_q("damaged", QUEUE_O_NOSYNC);
	if (!q)
		return;
	check_get(q, "bad.example", NULL, RL_EPARSE);
	check_get(q, "newer.example", NULL, RL_EPARSE);
	check_get(q, "good.example", &a, 0);
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_sts_foreach(t, seen_cb, &v), 0);
	queue_txn_abort(t);
	CHECK(v.n == 1 && !strcmp(v.domains[0], "good.example"), "foreach over damage: %d",
	      v.n);
	CHECK_INT(put_one(q, "bad.example", &a), 0);
	check_get(q, "bad.example", &a, 0);
	CHECK_INT(queue_txn_begin(q, 1, &t), 0);
	CHECK_INT(queue_sts_del(t, "newer.example"), 0);
	CHECK_INT(queue_txn_commit(t), 0);
	check_get(q, "newer.example", NULL, -ENOENT);
	check_mail(q, 0);
	queue_close(q);
}

/*
 * A queue made before the cache existed has no "sts" database: a read-only
 * open (mailq) still works and sees an empty cache; the next writable open
 * adds it.
 */
static void test_db_old_queue(void)
{
	struct queue *q = open_q("old", 0);
	struct queue_sts a = {"new1", 1, 2, "x", 1}, got;
	struct seen v = {.n = 0};
	struct queue_txn *t;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc;

	if (!q)
		return;
	queue_close(q);
	rc = raw_env("old", &env, &txn);
	if (!rc) {
		rc = mdb_dbi_open(txn, "sts", 0, &dbi);
		if (!rc)
			rc = mdb_drop(txn, dbi, 1); /* delete the database itself */
		if (!rc)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		mdb_env_close(env);
	}
	CHECK(rc == 0, "drop sts: %s", mdb_strerror(rc));
	q = open_q("old", QUEUE_O_RDONLY);
	if (!q)
		return;
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_sts_get(t, "x.example", &got), -ENOENT);
	CHECK_INT(queue_sts_get(t, "x..example", &got), -EINVAL);
	CHECK_INT(queue_sts_foreach(t, seen_cb, &v), 0);
	CHECK_INT(v.n, 0);
	queue_txn_abort(t);
	check_mail(q, 0);
	queue_close(q);
	q = open_q("old", QUEUE_O_NOSYNC);
	if (!q)
		return;
	CHECK_INT(put_one(q, "x.example", &a), 0);
	check_get(q, "x.example", &a, 0);
	queue_close(q);
}

int main(void)
{
	for (size_t i = 0; i < sizeof(big_body); i++)
		big_body[i] = (char)('a' + i % 26);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_rec_roundtrip();
	test_rec_bytes();
	test_rec_limits();
	test_rec_damage();
	test_rec_garbage();
	test_key();
	test_db_basic();
	test_db_limits();
	test_db_reopen();
	test_db_damaged();
	test_db_old_queue();
	rm_tree(tmpdir);
	return TEST_DONE();
}
