/*
 * Unit tests for the TLS posture counters of the queue module: counting
 * and merging within the record's bounds (reasons cut and capped, the least
 * frequent evicted to "other", digests likewise, saturation), the record
 * codec (round trip, every truncation, trailing bytes, bad counts, newer
 * version), and the "posture" database (add merges, foreach by day from a
 * start day, read-only open).  One mkdtemp directory, removed at the end.
 */
#include "queue.h"
#include "queue_posture_int.h"
#include "tap.h"
#include "testdir.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_queue_posture.XXXXXX";

static void test_names(void)
{
	static const struct {
		const char *word;
		int want;
	} cases[] = {
		{"none", QUEUE_PT_NONE},       {"anonymous", QUEUE_PT_ANONYMOUS},
		{"untrusted", QUEUE_PT_UNTRUSTED}, {"trusted", QUEUE_PT_TRUSTED},
		{"verified", QUEUE_PT_VERIFIED}, {"dane", QUEUE_PT_DANE},
		{"mta-sts", QUEUE_PT_STS},     {NULL, QUEUE_PT_NONE},
		{"-", -1},                     {"Verified", -1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_INT(queue_posture_tls_index(cases[i].word), cases[i].want);
		if (cases[i].want >= 0 && cases[i].word)
			CHECK_STR(queue_posture_tls_name(cases[i].want), cases[i].word);
	}
}

static void test_count(void)
{
	struct queue_posture p;
	unsigned char k1[32], k2[32];
	char reason[300], want[QUEUE_POSTURE_REASON_MAX + 1];

	memset(&p, 0, sizeof(p));
	memset(k1, 1, sizeof(k1));
	memset(k2, 2, sizeof(k2));
	queue_posture_count(&p, QUEUE_PS_SENT, QUEUE_PT_VERIFIED, NULL, k1);
	queue_posture_count(&p, QUEUE_PS_SENT, QUEUE_PT_VERIFIED, NULL, k1);
	queue_posture_count(&p, QUEUE_PS_SENT, QUEUE_PT_TRUSTED, NULL, k2);
	queue_posture_count(&p, QUEUE_PS_SENT, QUEUE_PT_ANONYMOUS, NULL, NULL);
	queue_posture_count(&p, QUEUE_PS_SENT, QUEUE_PT_NONE, NULL, k1); /* cleartext: no digest */
	CHECK_INT(p.count[QUEUE_PS_SENT][QUEUE_PT_VERIFIED], 2);
	CHECK_INT(p.nfpr, 2);
	CHECK_INT(p.fpr[0].count, 2);
	CHECK_INT(p.fpr_other, 1);
	CHECK_INT(p.nreason, 0);
	/* Reasons: cut to REASON_MAX; 9 distinct ones keep 8. */
	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	queue_posture_count(&p, QUEUE_PS_DEFERRED, QUEUE_PT_NOSESS, reason, NULL);
	queue_posture_count(&p, QUEUE_PS_DEFERRED, QUEUE_PT_NOSESS, reason, NULL);
	memset(want, 'x', QUEUE_POSTURE_REASON_MAX);
	want[QUEUE_POSTURE_REASON_MAX] = '\0';
	CHECK_INT(p.nreason, 1);
	CHECK_STR(p.reason[0].text, want);
	CHECK_INT(p.reason[0].count, 2);
	for (int i = 0; i < 8; i++) {
		snprintf(reason, sizeof(reason), "reason %d", i);
		queue_posture_count(&p, QUEUE_PS_BOUNCED, QUEUE_PT_NONE, reason, NULL);
	}
	CHECK_INT(p.nreason, QUEUE_POSTURE_REASONS);
	CHECK_INT(p.reason_other, 1);
	queue_posture_count(&p, QUEUE_PS_BOUNCED, QUEUE_PT_NONE, "", NULL);
	CHECK_INT(p.reason_other, 2);
	CHECK_INT(p.count[QUEUE_PS_BOUNCED][QUEUE_PT_NONE], 9);
	/* Saturation. */
	p.count[QUEUE_PS_SENT][QUEUE_PT_DANE] = UINT32_MAX;
	queue_posture_count(&p, QUEUE_PS_SENT, QUEUE_PT_DANE, NULL, k1);
	CHECK(p.count[QUEUE_PS_SENT][QUEUE_PT_DANE] == UINT32_MAX, "saturates");
}

static void test_merge(void)
{
	struct queue_posture a, b;
	unsigned char k[6][32];
	char r[32];

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	for (int i = 0; i < 6; i++)
		memset(k[i], 'a' + i, 32);
	for (int i = 0; i < 4; i++)
		queue_posture_count(&a, QUEUE_PS_SENT, QUEUE_PT_TRUSTED, NULL, k[i]);
	/* b: a frequent new digest evicts a rare one; a rare new one is other. */
	for (int i = 0; i < 3; i++)
		queue_posture_count(&b, QUEUE_PS_SENT, QUEUE_PT_TRUSTED, NULL, k[4]);
	queue_posture_count(&b, QUEUE_PS_SENT, QUEUE_PT_TRUSTED, NULL, k[0]);
	queue_posture_merge(&a, &b);
	CHECK_INT(a.nfpr, 4);
	CHECK_INT(a.count[QUEUE_PS_SENT][QUEUE_PT_TRUSTED], 8);
	/* k4 (3) evicted k0 (1); then b's k0 (1) no longer beats any kept one. */
	CHECK_INT(a.fpr_other, 2);
	memset(&b, 0, sizeof(b));
	queue_posture_count(&b, QUEUE_PS_SENT, QUEUE_PT_TRUSTED, NULL, k[5]);
	queue_posture_merge(&a, &b);
	CHECK_INT(a.fpr_other, 3);
	for (int i = 0; i < 10; i++) {
		snprintf(r, sizeof(r), "r%d", i);
		queue_posture_count(&b, QUEUE_PS_DEFERRED, QUEUE_PT_NONE, r, NULL);
	}
	queue_posture_merge(&a, &b);
	CHECK_INT(a.nreason, 8);
	CHECK_INT(a.reason_other, 2);
}

static void test_codec(void)
{
	struct queue_posture p, q;
	unsigned char buf[QUEUE_POSTURE_REC_MAX], again[QUEUE_POSTURE_REC_MAX];
	unsigned char k[32];
	size_t n;

	memset(&p, 0, sizeof(p));
	memset(k, 7, sizeof(k));
	n = queue_posture_rec_encode(&p, buf);
	CHECK_INT(n, 1 + 4 * QUEUE_PS_N * QUEUE_PT_N + 4 + 1 + 4 + 1);
	CHECK_INT(queue_posture_rec_decode(buf, n, &q), 0);
	queue_posture_count(&p, QUEUE_PS_SENT, QUEUE_PT_DANE, NULL, k);
	queue_posture_count(&p, QUEUE_PS_DEFERRED, QUEUE_PT_NOSESS, "connect refused", NULL);
	p.count[QUEUE_PS_BOUNCED][QUEUE_PT_STS] = 0x01020304;
	n = queue_posture_rec_encode(&p, buf);
	CHECK_INT(queue_posture_rec_decode(buf, n, &q), 0);
	CHECK(memcmp(&p.count, &q.count, sizeof(p.count)) == 0, "counts round trip");
	CHECK_STR(q.reason[0].text, "connect refused");
	CHECK_INT(q.nfpr, 1);
	CHECK(memcmp(q.fpr[0].sha256, k, 32) == 0, "digest round trip");
	CHECK_INT(queue_posture_rec_encode(&q, again), n);
	CHECK(memcmp(buf, again, n) == 0, "canonical");
	for (size_t i = 0; i < n; i++)
		CHECK_INT(queue_posture_rec_decode(buf, i, &q), RL_EPARSE);
	memcpy(again, buf, n);
	again[n] = 0;
	CHECK_INT(queue_posture_rec_decode(again, n + 1, &q), RL_EPARSE);
	again[0] = 2;
	CHECK_INT(queue_posture_rec_decode(again, n, &q), RL_EVERSION);
	again[0] = 0;
	CHECK_INT(queue_posture_rec_decode(again, n, &q), RL_EPARSE);
	/* nreason over the bound; a zero reason count; a NUL in a reason. */
	memcpy(again, buf, n);
	again[1 + 4 * QUEUE_PS_N * QUEUE_PT_N + 4] = QUEUE_POSTURE_REASONS + 1;
	CHECK_INT(queue_posture_rec_decode(again, n, &q), RL_EPARSE);
	memcpy(again, buf, n);
	memset(again + 1 + 4 * QUEUE_PS_N * QUEUE_PT_N + 4 + 1, 0, 4);
	CHECK_INT(queue_posture_rec_decode(again, n, &q), RL_EPARSE);
	memcpy(again, buf, n);
	again[1 + 4 * QUEUE_PS_N * QUEUE_PT_N + 4 + 1 + 4 + 1 + 3] = '\0';
	CHECK_INT(queue_posture_rec_decode(again, n, &q), RL_EPARSE);
	CHECK_INT(q.nreason, 0);
}

struct seen {
	char line[8][300];
	int n;
};

static int seen_cb(void *arg, uint32_t day, const char *domain, const struct queue_posture *rec)
{
	struct seen *s = arg;

	if (s->n < 8)
		snprintf(s->line[s->n++], sizeof(s->line[0]), "%u %s %u %u", day, domain,
			 rec->count[QUEUE_PS_SENT][QUEUE_PT_VERIFIED],
			 rec->count[QUEUE_PS_DEFERRED][QUEUE_PT_NOSESS]);
	return 0;
}

static void test_db(void)
{
	char dir[PATH_MAX];
	struct queue *q;
	struct queue_txn *t;
	struct queue_posture d;
	struct seen s = {0};

	snprintf(dir, sizeof(dir), "%s/db", tmpdir);
	CHECK_INT(queue_open(dir, 1 << 24, QUEUE_O_NOSYNC, &q, NULL), 0);
	memset(&d, 0, sizeof(d));
	queue_posture_count(&d, QUEUE_PS_SENT, QUEUE_PT_VERIFIED, NULL, NULL);
	CHECK_INT(queue_txn_begin(q, 1, &t), 0);
	CHECK_INT(queue_posture_add(t, 20000, "B.example.", &d), 0);
	CHECK_INT(queue_posture_add(t, 20000, "b.example", &d), 0);
	CHECK_INT(queue_posture_add(t, 19999, "a.example", &d), 0);
	CHECK_INT(queue_posture_add(t, 20001, "a.example", &d), 0);
	CHECK_INT(queue_posture_add(t, 20001, "bad domain", &d), -EINVAL);
	CHECK_INT(queue_txn_commit(t), 0);
	queue_close(q);
	CHECK_INT(queue_open(dir, 0, QUEUE_O_RDONLY, &q, NULL), 0);
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_posture_foreach(t, 20000, seen_cb, &s), 0);
	queue_txn_abort(t);
	queue_close(q);
	CHECK_INT(s.n, 2);
	CHECK_STR(s.line[0], "20000 b.example 2 0");
	CHECK_STR(s.line[1], "20001 a.example 1 0");
}

int main(void)
{
	if (!mkdtemp(tmpdir))
		return 1;
	test_names();
	test_count();
	test_merge();
	test_codec();
	test_db();
	rm_tree(tmpdir);
	return TEST_DONE();
}
