/*
 * Unit tests for the queue's activity counters per minute ("counts":
 * adds sum per minute and name, saturate, bad names are refused, old
 * minutes are pruned by later adds, foreach starts at a minute, a
 * read-only open of a queue without the database sees none) and for the
 * run claim (serve.lock: one holder, the holder's pid and start time,
 * released by queue_close, refused on a read-only open).  One mkdtemp
 * directory, removed at the end.
 */
#include "queue.h"
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
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_queue_counts.XXXXXX";

struct seen {
	size_t n;
	char line[64][96];
};

static int seen_cb(void *arg, int64_t minute, const char *name, uint64_t n)
{
	struct seen *s = arg;

	if (s->n < 64)
		snprintf(s->line[s->n++], sizeof(s->line[0]), "%lld %s %llu", (long long)minute,
			 name, (unsigned long long)n);
	return 0;
}

static int add(struct queue *q, int64_t now, const char *name, uint64_t n)
{
	struct queue_count v = {name, n};
	struct queue_txn *t;
	int rc = queue_txn_begin(q, 1, &t);

	if (rc < 0)
		return rc;
	rc = queue_counts_add(t, now, &v, 1);
	if (rc < 0) {
		queue_txn_abort(t);
		return rc;
	}
	return queue_txn_commit(t);
}

static void list(struct queue *q, int64_t from, struct seen *s)
{
	struct queue_txn *t;

	memset(s, 0, sizeof(*s));
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_counts_foreach(t, from, seen_cb, s), 0);
	queue_txn_abort(t);
}

static void test_counts(void)
{
	char dir[PATH_MAX];
	int64_t base = (int64_t)1000000 * 60; /* minute 1000000 */
	struct queue_count two[] = {{"delivery:sent:dane", 2},
				    {"delivery:sent:none", 0},
				    {"delivery:deferred:no-connection", 5}};
	struct queue_count bad[] = {{"delivery:sent:dane", 1}, {"Bad Name", 1}};
	struct queue *q;
	struct queue_txn *t;
	struct seen s;

	snprintf(dir, sizeof(dir), "%s/counts", tmpdir);
	CHECK_INT(queue_open(dir, 0, QUEUE_O_NOSYNC, &q, NULL), 0);
	CHECK_INT(add(q, base, "delivery:sent:dane", 1), 0);
	CHECK_INT(add(q, base + 59, "delivery:sent:dane", 3), 0); /* same minute */
	CHECK_INT(add(q, base + 60, "delivery:sent:dane", 1), 0); /* the next one */
	CHECK_INT(queue_txn_begin(q, 1, &t), 0);
	CHECK_INT(queue_counts_add(t, base + 61, two, 3), 0);
	/* A bad name anywhere: nothing of the call is written. */
	CHECK_INT(queue_counts_add(t, base + 61, bad, 2), -EINVAL);
	CHECK_INT(queue_txn_commit(t), 0);
	CHECK_INT(add(q, base, "", 1), -EINVAL);
	CHECK_INT(add(q, base, "x23456789012345678901234567890123456789012345678901", 1), -EINVAL);
	list(q, 0, &s);
	CHECK_INT(s.n, 3);
	CHECK_STR(s.line[0], "1000000 delivery:sent:dane 4");
	CHECK_STR(s.line[1], "1000001 delivery:deferred:no-connection 5");
	CHECK_STR(s.line[2], "1000001 delivery:sent:dane 3");
	list(q, 1000001, &s);
	CHECK_INT(s.n, 2);
	/* Saturation instead of wrapping. */
	CHECK_INT(add(q, base, "delivery:sent:dane", UINT64_MAX), 0);
	list(q, 1000000, &s);
	CHECK_STR(s.line[0], "1000000 delivery:sent:dane 18446744073709551615");
	/* An add QUEUE_COUNTS_KEEP_MIN minutes later prunes the first minute
	 * only; the second is still within the window. */
	CHECK_INT(add(q, base + 60 * QUEUE_COUNTS_KEEP_MIN, "delivery:bounced:none", 1), 0);
	list(q, 0, &s);
	CHECK_INT(s.n, 3);
	CHECK_STR(s.line[0], "1000001 delivery:deferred:no-connection 5");
	CHECK_STR(s.line[2], "1000120 delivery:bounced:none 1");
	/* Far later: everything older goes. */
	CHECK_INT(add(q, base + 60 * 100000, "delivery:sent:none", 1), 0);
	list(q, 0, &s);
	CHECK_INT(s.n, 1);
	CHECK_STR(s.line[0], "1100000 delivery:sent:none 1");
	queue_close(q);
	/* Read-only: the same counts. */
	CHECK_INT(queue_open(dir, 0, QUEUE_O_RDONLY, &q, NULL), 0);
	list(q, 0, &s);
	CHECK_INT(s.n, 1);
	queue_close(q);
}

/* The pruning is bounded per add, yet keeps up: many minutes, then one add. */
static void test_prune_bounded(void)
{
	char dir[PATH_MAX];
	int64_t base = (int64_t)2000000 * 60;
	struct queue *q;
	struct seen s;

	snprintf(dir, sizeof(dir), "%s/prune", tmpdir);
	CHECK_INT(queue_open(dir, 0, QUEUE_O_NOSYNC, &q, NULL), 0);
	for (int i = 0; i < QUEUE_COUNTS_KEEP_MIN; i++)
		CHECK_INT(add(q, base + 60 * i, "delivery:sent:none", 1), 0);
	list(q, 0, &s);
	CHECK_INT(s.n, 64); /* seen caps at 64 lines */
	CHECK_INT(add(q, base + 60 * (2 * QUEUE_COUNTS_KEEP_MIN), "delivery:sent:none", 1), 0);
	list(q, 0, &s);
	/* At most QUEUE_COUNTS_PRUNE_MAX went in that one add. */
	CHECK_STR(s.line[0], "2000064 delivery:sent:none 1");
	CHECK_INT(add(q, base + 60 * (2 * QUEUE_COUNTS_KEEP_MIN), "delivery:sent:none", 1), 0);
	list(q, 0, &s);
	CHECK_INT(s.n, 1);
	CHECK_STR(s.line[0], "2000240 delivery:sent:none 2");
	queue_close(q);
}

static void test_run(void)
{
	char dir[PATH_MAX];
	struct queue *q, *ro;
	struct queue_txn *t;
	uint32_t pid = 0, holder = 1;
	int64_t started = 0;
	pid_t child;
	int st;

	snprintf(dir, sizeof(dir), "%s/run", tmpdir);
	CHECK_INT(queue_open(dir, 0, QUEUE_O_NOSYNC, &q, NULL), 0);
	CHECK_INT(queue_open(dir, 0, QUEUE_O_RDONLY, &ro, NULL), 0);
	/* Never claimed: not running, nothing recorded. */
	CHECK_INT(queue_run_holder(ro, &pid), 0);
	CHECK_INT(queue_txn_begin(ro, 0, &t), 0);
	CHECK_INT(queue_run_info(t, &pid, &started), RL_ENOTFOUND);
	queue_txn_abort(t);
	CHECK_INT(queue_run_claim(ro, 42, 1000, &holder), -EROFS);
	CHECK_INT(queue_run_claim(q, (uint32_t)getpid(), 1234567, &holder), 0);
	queue_close(ro);
	/* Another process sees the holder and cannot claim. */
	child = fork();
	if (child == 0) {
		struct queue *c;
		uint32_t p = 0, h = 0;
		int ok;

		if (queue_open(dir, 0, QUEUE_O_NOSYNC, &c, NULL) < 0)
			_exit(9);
		ok = queue_run_holder(c, &p) == 1 && p == (uint32_t)getppid() &&
		     queue_run_claim(c, 7, 7, &h) == -EBUSY && h == (uint32_t)getppid();
		queue_close(c);
		_exit(ok ? 0 : 1);
	}
	CHECK(child > 0, "fork");
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child saw the claim: status %d", st);
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_run_info(t, &pid, &started), 0);
	queue_txn_abort(t);
	CHECK_INT(pid, getpid());
	CHECK_INT(started, 1234567);
	queue_close(q);
	/* Released: another process may claim now. */
	child = fork();
	if (child == 0) {
		struct queue *c;
		uint32_t p = 1, h = 0;
		int ok;

		if (queue_open(dir, 0, QUEUE_O_NOSYNC, &c, NULL) < 0)
			_exit(9);
		ok = queue_run_holder(c, &p) == 0 && p == 0 && queue_run_claim(c, 7, 7, &h) == 0;
		queue_close(c);
		_exit(ok ? 0 : 1);
	}
	CHECK(child > 0 && waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "claim after release: status %d", st);
}

int main(void)
{
	if (!mkdtemp(tmpdir))
		return 1;
	test_counts();
	test_prune_bounded();
	test_run();
	rm_tree(tmpdir);
	return TEST_DONE();
}
