/*
 * commit: one fsync for many messages, off the loop thread.
 */
#include <stdlib.h>

#include "commit.h"

/* Content bytes one batch may write (one request always goes). */
#define COMMIT_BATCH_BYTES (8 * 1024 * 1024)

struct committer {
	uv_loop_t *loop;
	struct queue *q;
	uv_work_t work;
	int busy;                  /* a batch is on the worker */
	struct commit_req *batch;  /* on the worker */
	struct commit_req *head;   /* waiting for the next batch */
	struct commit_req **tail;
	void (*idle)(void *arg);   /* see committer_on_idle() */
	void *idle_arg;
	struct commit_req *(*rider)(void *arg); /* see committer_on_batch() */
	void *rider_arg;
};

struct committer *committer_new(uv_loop_t *loop, struct queue *q)
{
	struct committer *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->loop = loop;
	c->q = q;
	c->tail = &c->head;
	c->work.data = c;
	return c;
}

void committer_free(struct committer *c)
{
	if (!c)
		return;
	RL_REQUIRE(committer_idle(c));
	free(c);
}

int committer_idle(const struct committer *c)
{
	return !c->busy && !c->head;
}

/* Write the given requests in one transaction; 0 or the failing code. */
static int commit_batch(struct queue *q, struct commit_req *list)
{
	struct queue_txn *t;
	int rc = queue_txn_begin(q, 1, &t);

	if (rc < 0)
		return rc;
	for (struct commit_req *r = list; r; r = r->next) {
		rc = r->apply ? r->apply(t, r) : queue_msg_insert(t, &r->msg, r->body, r->len);
		if (rc < 0) {
			queue_txn_abort(t);
			return rc;
		}
	}
	return queue_txn_commit(t);
}

/* Worker thread: LMDB's write transaction begins and ends here. */
static void commit_work_cb(uv_work_t *w)
{
	struct committer *c = w->data;
	int rc = commit_batch(c->q, c->batch);

	if (rc == RL_EQFULL && !c->batch->next && queue_reclaim(c->q) == 0)
		rc = commit_batch(c->q, c->batch);
	if (rc == 0 || !c->batch->next) {
		for (struct commit_req *r = c->batch; r; r = r->next)
			r->result = rc;
		return;
	}
	/* Isolate the message that does not fit, after freeing what we can. */
	if (rc == RL_EQFULL && queue_reclaim(c->q) < 0)
		rc = RL_EQFULL; /* nothing more to try; the singles below will say */
	for (struct commit_req *r = c->batch; r; r = r->next) {
		struct commit_req *next = r->next;

		r->next = NULL;
		r->result = commit_batch(c->q, r);
		r->next = next;
	}
}

static void commit_start(struct committer *c);

static void commit_after_cb(uv_work_t *w, int status)
{
	struct committer *c = w->data;
	struct commit_req *r = c->batch, *next;

	c->busy = 0;
	c->batch = NULL;
	/* Start the next batch first, so its disk write overlaps our replies. */
	commit_start(c);
	for (; r; r = next) {
		next = r->next;
		r->next = NULL;
		if (status < 0)
			r->result = status;
		r->done(r);
	}
	if (c->idle && committer_idle(c))
		c->idle(c->idle_arg);
}

void committer_on_idle(struct committer *c, void (*cb)(void *arg), void *arg)
{
	c->idle = cb;
	c->idle_arg = arg;
}

void committer_on_batch(struct committer *c, struct commit_req *(*rider)(void *arg), void *arg)
{
	c->rider = rider;
	c->rider_arg = arg;
}

static void commit_start(struct committer *c)
{
	struct commit_req *last;
	size_t bytes;
	int rc;

	if (c->busy || !c->head)
		return;
	c->batch = c->head;
	last = c->head;
	bytes = last->len;
	/* Without MDB_WRITEMAP a transaction's new pages are in memory until
	 * the commit: bound the bodies one batch holds. */
	while (last->next && bytes + last->next->len <= COMMIT_BATCH_BYTES) {
		last = last->next;
		bytes += last->len;
	}
	c->head = last->next;
	last->next = NULL;
	if (!c->head)
		c->tail = &c->head;
	/* The rider's request shares this batch's transaction and fsync. */
	if (c->rider) {
		struct commit_req *r = c->rider(c->rider_arg);

		if (r) {
			r->next = NULL;
			r->result = 0;
			last->next = r;
		}
	}
	c->busy = 1;
	rc = uv_queue_work(c->loop, &c->work, commit_work_cb, commit_after_cb);
	RL_REQUIRE(rc == 0);
}

void committer_submit(struct committer *c, struct commit_req *r)
{
	r->next = NULL;
	r->result = 0;
	*c->tail = r;
	c->tail = &r->next;
	commit_start(c);
}
