/*
 * qmgr: the delivery scheduler of the running relay.
 *
 * Due messages are found through the queue's schedule (never a scan),
 * loaded into an in-memory active set, and split into jobs: the recipients
 * of one message at one destination (next-hop domain).  Each destination
 * resolves its MX hosts once per round and runs up to its concurrency limit
 * of smtpc sessions, which take its jobs one after another (connection
 * reuse).  When every job of a message is done, one write (through the group
 * committer) records each recipient's outcome, reschedules the message with
 * exponential backoff or removes it, and queues a DSN for bounced
 * recipients (and, once per message after delay_warning_time, a delay DSN
 * for the deferred ones), all in one transaction.
 *
 * Queue control from other processes (flush, hold, release, delete) needs no
 * signal: the schedule is polled every QMGR_POLL_MS, and the final write of
 * a delivery re-reads the record, so a hold or delete made meanwhile wins.
 * Loop thread only.
 */
#ifndef QMGR_H
#define QMGR_H

#include <gnutls/x509.h>
#include <uv.h>

#include "cfg.h"
#include "commit.h"
#include "metrics.h"
#include "queue.h"
#include "smtpc.h"

struct qmgr;
struct tlspol;

/*
 * What the scheduler needs from the daemon, borrowed for its lifetime: it
 * never sees the daemon's own context (the arrows point one way).  cfg is
 * read at each use (a reload replaces it in place); *pol is the policy
 * snapshot in force, which the daemon replaces on a reload.  tls (the
 * outbound credentials and priority) and trust (the list the policy checks
 * chains against; NULL: no trust store, verify and secure are deferred)
 * are built by the daemon (daemon/tlscred.h), not here.
 */
struct tlsrpt_counter;

struct qmgr_params {
	uv_loop_t *loop;
	const struct cfg *cfg;
	struct queue *q;
	struct committer *commit;
	struct tlspol *const *pol;
	const struct smtpc_tls *tls;
	gnutls_x509_trust_list_t trust;
	void (*stopped)(void *arg); /* after qmgr_stop(): nothing in flight any more */
	void *arg;
	struct tlsrpt_counter *rpt; /* TLS-RPT counts of the sessions; NULL: none */
	/* The metrics' counters (deliveries, TLS failures); NULL: none.  The
	 * daemon's, so that they outlive a reload. */
	struct metrics_counts *metrics;
};

/* Create and start the scheduler. */
int qmgr_start(const struct qmgr_params *p, struct qmgr **out);
/*
 * Stop taking new work; sessions finish their current message; after
 * grace_ms the rest are cut (their recipients stay queued).  p.stopped
 * runs once nothing is in flight any more.
 */
void qmgr_stop(struct qmgr *q, unsigned grace_ms);
/* New mail was queued: look at the schedule now rather than at the next poll. */
void qmgr_wake(struct qmgr *q);

struct pol_table;
/*
 * The policy file was reloaded: mail deferred for a domain whose entry
 * differs between old and cur (added, removed or changed) is retried now.
 */
void qmgr_policy_changed(struct qmgr *q, const struct pol_table *old, const struct pol_table *cur);

/*
 * Delay warnings (delay_warning_time) queued since qmgr_start(): the count
 * of one-per-message delay DSNs whose final write committed.  A reload
 * keeps it; a restart starts again at 0.
 */
uint64_t qmgr_delay_warnings(const struct qmgr *q);

/* Free; only after p.stopped ran.  qmgr_free(NULL) is a no-op. */
void qmgr_free(struct qmgr *q);

#endif
