/*
 * qmgr: due messages -> jobs per destination -> smtpc sessions -> one
 * durable write per finished message.
 *
 * This file starts and stops the scheduler and polls the schedule: which
 * due messages to take, a `queue flush` seen, the timers.  What a taken
 * message becomes is in qmgr_msg.c (qmgr_msg_take builds the message there,
 * next to its free and its jobs); qmgr_int.h lists the other files.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"
#include "log.h"
#include "qmgr_int.h"

#define QMGR_POLL_MS 500        /* schedule poll: queue control acts within 1 s */
#define QMGR_ACTIVE_LIMIT 10000 /* messages in memory at once (Postfix: 20000) */
#define QMGR_DUE_BATCH 1000     /* messages taken per poll */

unsigned qmgr_hash_str(const char *s, unsigned buckets)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % buckets;
}

static struct qmsg *qmsg_find(struct qmgr *q, const char *id)
{
	struct qmsg *m = q->msgs[qmgr_hash_str(id, QMGR_MSG_BUCKETS)];

	while (m && strcmp(m->m->id, id) != 0)
		m = m->hnext;
	return m;
}

/* A `queue flush` since the last poll also ends every suspension. */
static void qmgr_check_flush(struct qmgr *q, struct queue_txn *t)
{
	uint64_t gen;

	if (queue_flush_get(t, &gen) < 0)
		return;
	if (q->flush_seen && gen != q->flush_gen)
		qmgr_revive_all(q);
	q->flush_gen = gen;
	q->flush_seen = 1;
}

/* Poll the schedule for due messages (cost: what is due, not the queue). */
static void qmgr_poll(struct qmgr *q)
{
	char (*ids)[QUEUE_ID_SIZE];
	struct queue_txn *t;
	size_t n = 0, room;
	int64_t next;
	int rc;

	if (q->stopping || q->nmsgs >= QMGR_ACTIVE_LIMIT)
		return;
	room = QMGR_ACTIVE_LIMIT - q->nmsgs;
	if (room > QMGR_DUE_BATCH)
		room = QMGR_DUE_BATCH;
	/* Active messages are still due in the schedule: ask for them too. */
	ids = calloc(room + q->nmsgs, sizeof(*ids));
	if (!ids)
		return;
	rc = queue_txn_begin(q->p.q, 0, &t);
	if (rc == 0)
		qmgr_check_flush(q, t);
	if (rc == 0)
		rc = queue_due(t, time(NULL), room + q->nmsgs, ids, &n, &next);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!qmsg_find(q, ids[i]))
			qmgr_msg_take(q, t, ids[i]);
	}
	queue_txn_abort(t);
	free(ids);
	if (rc < 0)
		log_warn("cannot read the queue schedule: %s", rl_strerror(rc));
	qmgr_kick_all(q);
}

static void qmgr_timer_cb(uv_timer_t *t)
{
	struct qmgr *q = t->data;

	qmgr_posture_tick(q->posture);
	qmgr_poll(q);
}

static int qmgr_clear_marks(struct qmgr *q)
{
	struct queue_txn *t;
	int rc = queue_txn_begin(q->p.q, 1, &t);

	if (rc < 0)
		return rc;
	rc = queue_active_clear_all(t);
	if (rc < 0) {
		queue_txn_abort(t);
		return rc;
	}
	return queue_txn_commit(t);
}

int qmgr_start(const struct qmgr_params *p, struct qmgr **out)
{
	struct qmgr *q = calloc(1, sizeof(*q));
	char err[256];
	int rc;

	if (!q)
		return -ENOMEM;
	q->p = *p;
	q->pid = (uint32_t)getpid();
	selfaddr_init(&q->self, p->cfg);
	*out = q;
	rc = dns_new(p->loop, p->cfg, &q->dns, err, sizeof(err));
	if (rc < 0) {
		log_err("cannot start the resolver: %s", err);
		return rc;
	}
	rc = https_new(p->loop, &q->https, err, sizeof(err));
	if (rc < 0) {
		log_err("cannot start the HTTPS client (MTA-STS): %s", err);
		return rc;
	}
	q->sts = mtasts_new(&(struct mtasts_params){q->dns, q->https, p->q, p->commit, p->cfg});
	if (!q->sts)
		return -ENOMEM;
	q->posture = qmgr_posture_new(q);
	if (!q->posture)
		return -ENOMEM;
	/* Marks of a previous run are stale: that process is gone. */
	rc = qmgr_clear_marks(q);
	if (rc < 0) {
		log_err("cannot reset in-delivery marks: %s", rl_strerror(rc));
		return rc;
	}
	uv_timer_init(p->loop, &q->timer);
	uv_timer_init(p->loop, &q->grace);
	uv_timer_init(p->loop, &q->fin_timer);
	q->timer.data = q->grace.data = q->fin_timer.data = q;
	q->timers_open = 1;
	uv_timer_start(&q->timer, qmgr_timer_cb, 0, QMGR_POLL_MS);
	return 0;
}

static void qmgr_closed_cb(uv_handle_t *h)
{
	(void)h;
}

void qmgr_check_stopped(struct qmgr *q)
{
	if (!q->stopping || q->nsess > 0 || q->nmsgs > 0 || q->stop_reported)
		return;
	q->stop_reported = 1;
	/* The last counts go to the committer, which the daemon waits for. */
	qmgr_posture_flush(q->posture);
	if (q->timers_open) {
		uv_close((uv_handle_t *)&q->timer, qmgr_closed_cb);
		uv_close((uv_handle_t *)&q->grace, qmgr_closed_cb);
		uv_close((uv_handle_t *)&q->fin_timer, qmgr_closed_cb);
		q->timers_open = 0;
	}
	mtasts_free(q->sts);
	q->sts = NULL;
	https_free(q->https);
	q->https = NULL;
	dns_free(q->dns);
	q->dns = NULL;
	if (q->p.stopped)
		q->p.stopped(q->p.arg);
}

static void qmgr_grace_cb(uv_timer_t *t)
{
	struct qmgr *q = t->data;

	/* Deliveries that did not finish in time are cut; they stay queued. */
	for (struct qsess *s = q->sessions; s; s = s->next)
		smtpc_abort(s->s);
}

void qmgr_wake(struct qmgr *q)
{
	if (q && q->timers_open && !q->stopping)
		uv_timer_start(&q->timer, qmgr_timer_cb, 0, QMGR_POLL_MS);
}

void qmgr_stop(struct qmgr *q, unsigned grace_ms)
{
	q->stopping = 1;
	if (q->timers_open) {
		uv_timer_stop(&q->timer);
		uv_timer_start(&q->grace, qmgr_grace_cb, grace_ms, 0);
		/* Results waiting for a retried write get their last try now. */
		if (q->finq)
			uv_timer_start(&q->fin_timer, qmgr_fin_retry_cb, 0, 0);
	}
	/*
	 * A session with no message in flight has nothing to finish: one still
	 * waiting for a greeting (a tarpit) would otherwise hold the stop for
	 * the whole grace time.
	 */
	for (struct qsess *s = q->sessions, *next; s; s = next) {
		next = s->next;
		if (s->job)
			smtpc_stop(s->s);
		else
			smtpc_abort(s->s);
	}
	/* Only busy destinations can have jobs. */
	for (struct qlink *k = q->busy.head; k; k = k->next) {
		struct qdest *d = k->d;
		struct qjob *j;

		while ((j = qmgr_dest_pop(d, SIZE_MAX)))
			qmgr_job_done(j, "none", NULL); /* never started: nothing changes */
		if (d->nsess == 0)
			qmgr_dest_reset(d);
	}
	qmgr_check_stopped(q);
}

void qmgr_free(struct qmgr *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < QMGR_DEST_BUCKETS; i++)
		while (q->dests[i])
			qmgr_dest_free(q->dests[i]);
	mtasts_free(q->sts);
	https_free(q->https);
	dns_free(q->dns);
	qmgr_posture_free(q->posture);
	free(q);
}
