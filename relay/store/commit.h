/*
 * commit: group commit of new messages into the queue.
 *
 * Sessions hand in finished messages; the committer writes the messages
 * that are waiting (up to 8 MiB of bodies, at least one) in one LMDB write
 * transaction with one fsync, on a libuv
 * worker thread so the loop never blocks on the disk.  While one batch is
 * being written the next one gathers.  A batch that fails (map full) is
 * retried one message per transaction so that one oversized message cannot
 * fail its neighbours.  Each request's done() runs on the loop thread after
 * its message is durable (result 0) or known not to be (result < 0).
 *
 * A rider (committer_on_batch) may add one small request of its own to each
 * batch as it leaves, so that bookkeeping such as the per-minute counters
 * of `tlsrelay status` goes into a transaction that is written anyway and
 * costs no fsync of its own.
 */
#ifndef COMMIT_H
#define COMMIT_H

#include <stddef.h>

#include <uv.h>

#include "queue.h"

struct commit_req {
	/*
	 * The write to make, on the worker thread, inside the batch's write
	 * transaction.  NULL means "insert msg with body".  apply must touch
	 * only what the request points to: the loop thread leaves that alone
	 * until done() runs.  An error fails the request (and makes the batch
	 * be retried one request per transaction).
	 */
	int (*apply)(struct queue_txn *t, struct commit_req *r);
	struct queue_msg msg; /* borrowed strings; msg.id may be changed */
	const char *body;     /* borrowed until done() */
	size_t len;
	int result;           /* set before done() */
	void (*done)(struct commit_req *r);
	struct commit_req *next; /* private */
};

struct committer;

struct committer *committer_new(uv_loop_t *loop, struct queue *q);
/* Free; only when committer_idle(). committer_free(NULL) is a no-op. */
void committer_free(struct committer *c);
/* Queue r; r and what it points to must stay valid until r->done(). */
void committer_submit(struct committer *c, struct commit_req *r);
int committer_idle(const struct committer *c);
/*
 * cb(arg) runs on the loop thread each time a batch has finished (its
 * done() callbacks have run) and nothing waits: for a shutdown that
 * completes by events.  cb may submit again; it must not free c.
 */
void committer_on_idle(struct committer *c, void (*cb)(void *arg), void *arg);
/*
 * rider(arg) runs on the loop thread each time a batch is formed, just
 * before it goes to the worker.  A request it returns (NULL: none) joins
 * that batch, last, outside the batch's byte bound: its apply must be
 * small and must fail only when the transaction fails anyway (storage
 * errors), since an error makes the batch be retried one request per
 * transaction.  Its done() runs like any other's.  One rider per
 * committer; a later call replaces it.
 */
void committer_on_batch(struct committer *c, struct commit_req *(*rider)(void *arg), void *arg);

#endif
