/*
 * queue_db: the LMDB state shared by the queue's LMDB files, queue.c (the
 * environment, transactions, messages) and queue_sts.c (the MTA-STS
 * cache).  Only this module includes it; nothing here escapes queue.h.
 */
#ifndef QUEUE_DB_H
#define QUEUE_DB_H

#include <lmdb.h>
#include <pthread.h>

#include "queue.h"

struct queue {
	MDB_env *env;
	MDB_dbi msg, body, sched, meta, active, sts, tlsrpt;
	/* "sts" is open.  Only a read-only open of a queue that an older
	 * version made can lack it: that open cannot create it. */
	int has_sts;
	int has_tlsrpt; /* likewise for "tlsrpt" */
	unsigned flags;
	/* Transactions open in this process, counted before they begin.  The
	 * map may be moved (after another process grew it) only at zero,
	 * since moving it would leave their pointers dangling.  Threads (the
	 * loop, the committer, the metrics scan) share it: resize_lock makes
	 * "count, then begin" and "zero, then resize" exclude each other. */
	int ntxn;
	pthread_mutex_t resize_lock;
	/* TLS posture counters (queue_posture.c); has_posture as has_sts. */
	MDB_dbi posture;
	int has_posture;
	/* Activity counters per minute (queue_counts.c); as has_sts. */
	MDB_dbi counts;
	int has_counts;
	/* The lock file a running relay holds (queue_run.c); -1: none. */
	int runfd;
};

struct queue_txn {
	struct queue *q;
	MDB_txn *txn;
	int write;
	int err; /* first failure of a write transaction; commit aborts */
};

/*
 * Translate an LMDB code (0 stays 0) and, for a real failure in a write
 * transaction, remember it so that commit aborts (queue.c, txn_fail).
 */
int queue_db_fail(struct queue_txn *t, int mdbrc);

#endif
