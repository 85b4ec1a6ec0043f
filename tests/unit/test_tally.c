/*
 * Unit tests for the per-minute counters of `status` (relay/store/tally.h):
 * the pure table (sums per minute, saturation, the bound on minutes and
 * what it drops, merge, empty), and the counter on a real loop, committer
 * and queue: counts ride on a batch the committer forms for someone else
 * (no flush of their own), also when the next batch forms before the
 * last one's done() ran, tally_stop() writes the rest alone, and the
 * names and minutes land in the "counts" database.  One mkdtemp queue.
 */
#include "commit.h"
#include "queue.h"
#include "tally.h"
#include "tap.h"
#include "testdir.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_tally.XXXXXX";

static void test_tab(void)
{
	struct tally_tab t = {0}, u = {0};

	CHECK(tally_tab_empty(&t), "new table is empty");
	tally_tab_add(&t, 100, 0, 0);
	CHECK(tally_tab_empty(&t), "adding 0 counts nothing");
	CHECK_INT(t.nmin, 0);
	tally_tab_add(&t, 100, 0, 2);
	tally_tab_add(&t, 100, 0, 3);
	tally_tab_add(&t, 100, 4, 1);
	tally_tab_add(&t, 101, 0, 7);
	CHECK(!tally_tab_empty(&t), "counted");
	CHECK_INT(t.nmin, 2);
	CHECK_INT(t.m[0].minute, 100);
	CHECK_INT(t.m[0].n[0], 5);
	CHECK_INT(t.m[0].n[4], 1);
	CHECK_INT(t.m[1].n[0], 7);
	tally_tab_add(&t, 101, 0, UINT64_MAX);
	CHECK(t.m[1].n[0] == UINT64_MAX, "saturates");

	/* The bound: the oldest minute makes room, and its counts are dropped. */
	memset(&t, 0, sizeof(t));
	for (int64_t m = 0; m < TALLY_MINUTES_MAX; m++)
		tally_tab_add(&t, 1000 + m, 1, 10);
	CHECK_INT(t.nmin, TALLY_MINUTES_MAX);
	CHECK_INT(t.dropped, 0);
	tally_tab_add(&t, 1000 + TALLY_MINUTES_MAX, 1, 1);
	CHECK_INT(t.nmin, TALLY_MINUTES_MAX);
	CHECK_INT(t.dropped, 10);
	for (size_t i = 0; i < t.nmin; i++)
		CHECK(t.m[i].minute != 1000, "minute 1000 went");
	/* A minute older than all kept goes itself. */
	tally_tab_add(&t, 5, 1, 4);
	CHECK_INT(t.dropped, 14);
	for (size_t i = 0; i < t.nmin; i++)
		CHECK(t.m[i].minute != 5, "minute 5 not kept");

	/* Merge: sums by minute, carries dropped, keeps the bound. */
	memset(&t, 0, sizeof(t));
	tally_tab_add(&t, 200, 2, 1);
	tally_tab_add(&u, 200, 2, 2);
	tally_tab_add(&u, 201, 3, 3);
	u.dropped = 9;
	tally_tab_merge(&t, &u);
	CHECK_INT(t.nmin, 2);
	CHECK_INT(t.m[0].n[2], 3);
	CHECK_INT(t.m[1].minute, 201);
	CHECK_INT(t.m[1].n[3], 3);
	CHECK_INT(t.dropped, 9);
}

static const char *const names[] = {"test:a", "test:b"};

struct seen {
	uint64_t n[2];
	int64_t minute;
};

static int seen_cb(void *arg, int64_t minute, const char *name, uint64_t n)
{
	struct seen *s = arg;

	for (int k = 0; k < 2; k++) {
		if (strcmp(name, names[k]) == 0) {
			s->n[k] += n;
			s->minute = minute;
		}
	}
	return 0;
}

static struct seen read_counts(struct queue *q)
{
	struct seen s = {{0, 0}, 0};
	struct queue_txn *t;

	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_counts_foreach(t, 0, seen_cb, &s), 0);
	queue_txn_abort(t);
	return s;
}

/* Someone else's write: touches nothing, says it ran. */
struct other {
	struct commit_req req;
	int applied, done;
};

static int other_apply(struct queue_txn *t, struct commit_req *r)
{
	(void)t;
	((struct other *)r)->applied++;
	return 0;
}

static void other_done(struct commit_req *r)
{
	((struct other *)r)->done = 1;
}

static void test_loop(void)
{
	char dir[PATH_MAX];
	uv_loop_t loop;
	struct queue *q = NULL;
	struct committer *c;
	struct tally *t;
	struct other o = {.req = {.apply = other_apply, .done = other_done}};
	struct other o2 = {.req = {.apply = other_apply, .done = other_done}};
	struct seen s;
	int64_t minute = (int64_t)time(NULL) / 60;

	snprintf(dir, sizeof(dir), "%s/q", tmpdir);
	CHECK_INT(queue_open(dir, 0, QUEUE_O_NOSYNC, &q, NULL), 0);
	CHECK_INT(uv_loop_init(&loop), 0);
	c = committer_new(&loop, q);
	t = tally_new(&loop, c, names, 2);
	CHECK(c && t, "made");
	CHECK(tally_idle(t), "idle when new");
	tally_add(t, 0, 2);
	tally_add(t, 1, 1);
	tally_add(NULL, 1, 1); /* not counting */
	CHECK(!tally_idle(t), "something to write");

	/* Another request's batch takes the counts along. */
	committer_submit(c, &o.req);
	for (int i = 0; i < 1000 && !o.done; i++)
		uv_run(&loop, UV_RUN_ONCE);
	CHECK_INT(o.applied, 1);
	CHECK(tally_idle(t), "the rider wrote them");
	s = read_counts(q);
	CHECK_INT(s.n[0], 2);
	CHECK_INT(s.n[1], 1);
	CHECK(s.minute == minute || s.minute == minute + 1, "minute %lld", (long long)s.minute);

	/*
	 * Back to back: the second batch forms before the first one's done()
	 * ran, and still takes what was counted meanwhile.
	 */
	o.done = 0;
	o2.done = 0;
	tally_add(t, 0, 1);
	committer_submit(c, &o.req);
	tally_add(t, 0, 10);
	committer_submit(c, &o2.req); /* waits: a batch is on the worker */
	for (int i = 0; i < 1000 && !(o.done && o2.done); i++)
		uv_run(&loop, UV_RUN_ONCE);
	CHECK_INT(o2.applied, 1);
	CHECK(tally_idle(t), "both rode");
	s = read_counts(q);
	CHECK_INT(s.n[0], 13);

	/* Nothing flowing: the stop writes the rest alone. */
	tally_add(t, 1, 5);
	tally_stop(t);
	tally_add(t, 1, 100); /* stopped: not counted */
	for (int i = 0; i < 1000 && !(tally_idle(t) && committer_idle(c)); i++)
		uv_run(&loop, UV_RUN_ONCE);
	CHECK(tally_idle(t), "written at stop");
	s = read_counts(q);
	CHECK_INT(s.n[0], 13);
	CHECK_INT(s.n[1], 6);
	tally_stop(t); /* idempotent */

	uv_run(&loop, UV_RUN_DEFAULT); /* the timer's close */
	CHECK_INT(uv_loop_close(&loop), 0);
	committer_free(c);
	tally_free(t);
	tally_free(NULL);
	queue_close(q);
}

int main(void)
{
	test_tab();
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_loop();
	rm_tree(tmpdir);
	return TEST_DONE();
}
