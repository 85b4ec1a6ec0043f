/*
 * qmgr_dest: destinations (next-hop domains).  Finding or making one, the
 * busy and dead lists that periodic work visits instead of the whole table,
 * the FIFO of destinations waiting for a session slot and the grants from
 * it, the concurrency feedback window, suspension of a dead destination,
 * starting sessions for waiting jobs (kick), and freeing idle ones.  A
 * round's lookups are in qmgr_resolve.c; which target a job goes to is in
 * qmgr_sess.c.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "log.h"
#include "qmgr_int.h"

#define QMGR_DEAD_KEEP_MAX 10000 /* suspended destinations kept at most (memory bound) */

/* Put k (of d) on l after the link after (NULL: at the head). */
static void qlist_insert(struct qlist *l, struct qlink *after, struct qlink *k, struct qdest *d)
{
	RL_REQUIRE(!k->d);
	k->d = d;
	k->prev = after;
	k->next = after ? after->next : l->head;
	if (k->next)
		k->next->prev = k;
	else
		l->tail = k;
	if (after)
		after->next = k;
	else
		l->head = k;
	l->n++;
}

static void qlist_remove(struct qlist *l, struct qlink *k)
{
	if (!k->d)
		return;
	if (k->prev)
		k->prev->next = k->next;
	else
		l->head = k->next;
	if (k->next)
		k->next->prev = k->prev;
	else
		l->tail = k->prev;
	k->next = k->prev = NULL;
	k->d = NULL;
	l->n--;
}

struct qdest *qmgr_dest_get(struct qmgr *q, const char *domain)
{
	unsigned h = qmgr_hash_str(domain, QMGR_DEST_BUCKETS);
	struct qdest *d = q->dests[h];

	while (d && strcmp(d->domain, domain) != 0)
		d = d->hnext;
	if (d && !d->busy.d) /* a suspended one, kept without work */
		qlist_insert(&q->busy, q->busy.tail, &d->busy, d);
	if (d)
		return d;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->q = q;
	d->win = q->p.cfg->smtp_initial_destination_concurrency;
	rl_strlcpy(d->domain, domain, sizeof(d->domain));
	d->tail = &d->head;
	d->mxq = -1;
	d->hnext = q->dests[h];
	q->dests[h] = d;
	/* It is about to get a job: the poll looks at it until it is idle. */
	qlist_insert(&q->busy, q->busy.tail, &d->busy, d);
	return d;
}

/* The FIFO of destinations waiting for a session slot (fairness). */
static void dest_wait(struct qdest *d)
{
	if (!d->wait.d)
		qlist_insert(&d->q->waitq, d->q->waitq.tail, &d->wait, d);
}

void qmgr_dest_unwait(struct qdest *d)
{
	qlist_remove(&d->q->waitq, &d->wait);
}

/* The most sessions a destination may ever have. */
unsigned qmgr_dest_limit(const struct qdest *d)
{
	unsigned lim = d->q->p.cfg->smtp_destination_concurrency_limit;

	return lim < QMGR_DEST_SESS_MAX ? lim : QMGR_DEST_SESS_MAX;
}

/*
 * Sessions a destination may have now: its feedback window, capped.  While
 * the relay is more than half busy, a destination none of whose servers
 * has answered a transaction yet gets one session: a crowd of tarpit
 * domains (hosts that take TCP and never greet, for the 300 s greeting
 * timeout) then holds one slot each instead of a full window each.
 */
static unsigned dest_window(const struct qdest *d)
{
	unsigned lim = qmgr_dest_limit(d);
	const struct qmgr *q = d->q;

	if (!d->proven && q->nsess * 2 >= q->p.cfg->smtp_max_connections)
		lim = 1;
	return d->win < lim ? d->win : lim;
}

/*
 * Every waiting job of the destination gets the same outcome.  The caller
 * names the enhanced status along with the class (from the resolver's
 * result or the session's failure); NULL: the default of the class.
 */
void qmgr_dest_fail_all(struct qdest *d, int class, const char *dsn, const char *reason)
{
	const char *relay = d->fail_relay[0] ? d->fail_relay : "none";
	struct qjob *j;

	if (!dsn || !dsn[0])
		dsn = class == SMTPC_PERMFAIL ? "5.4.4" : class == SMTPC_POLICYFAIL ? "4.7.5" :
										    "4.4.3";
	while ((j = qmgr_dest_pop(d, SIZE_MAX)))
		qmgr_job_fail(j, class, dsn, reason, relay, d->fail_tls);
}

/* Is the destination suspended after a round in which every host failed? */
int qmgr_dest_dead(const struct qdest *d, int64_t now)
{
	return d->dead_until > now;
}

/*
 * Every MX address failed and no session got through: suspend the
 * destination for retry_min (Postfix throttles a dead destination for
 * minimal_backoff_time).  `queue flush` and policy changes end it early.
 */
static void dest_mark_dead(struct qdest *d)
{
	const struct cfg *c = d->q->p.cfg;
	int64_t t = c->retry_min > 0 ? c->retry_min : 1;
	struct qlink *after;

	/* Kept dead destinations cost memory: their number is bounded. */
	qlist_remove(&d->q->dead, &d->dead);
	d->dead_until = 0;
	if (d->q->dead.n >= QMGR_DEAD_KEEP_MAX)
		return;
	d->dead_until = (int64_t)time(NULL) + t;
	/* By end of suspension; from the tail, as retry_min changes only on reload. */
	for (after = d->q->dead.tail; after && after->d->dead_until > d->dead_until;)
		after = after->prev;
	qlist_insert(&d->q->dead, after, &d->dead, d);
	rl_strlcpy(d->dead_reason, d->fail_reason[0] ? d->fail_reason :
			"no MX host could be reached", sizeof(d->dead_reason));
	rl_strlcpy(d->dead_dsn, d->fail_dsn[0] ? d->fail_dsn : "4.4.1", sizeof(d->dead_dsn));
	log_info("%s: delivery temporarily suspended for %llds: %s", d->domain, (long long)t,
		 d->dead_reason);
}

/* Mail for a dead destination is deferred without a connection. */
void qmgr_dest_defer_dead(struct qdest *d)
{
	char why[SMTPC_REASON_MAX];
	struct qjob *j;

	/* The reason is cut to fit; a truncated reason is still useful. */
	rl_strlcpy(why, "delivery temporarily suspended: ", sizeof(why));
	rl_strlcpy(why + strlen(why), d->dead_reason, sizeof(why) - strlen(why));
	while ((j = qmgr_dest_pop(d, SIZE_MAX)))
		qmgr_job_fail(j, SMTPC_TEMPFAIL, d->dead_dsn, why, "none", NULL);
}

/*
 * A new round for the waiting jobs: they forget the MX hosts of the old
 * one (a job sent on after a 4xx starts again from the best host).
 */
static void dest_restart(struct qdest *d)
{
	for (struct qjob *j = d->head; j; j = j->next) {
		j->min_target = 0;
		j->nhosts = 0;
	}
	qmgr_dest_reset(d);
	if (d->nwait > 0 && !d->q->stopping)
		qmgr_dest_resolve(d);
}

/*
 * Start at most max_new sessions for the destination's waiting jobs,
 * within its window.  When the relay-wide limit stops it, the destination
 * queues for the next free slot (dest_wait), behind those already waiting.
 */
static void dest_kick_n(struct qdest *d, unsigned max_new)
{
	struct qmgr *q = d->q;
	const struct cfg *c = q->p.cfg;

	if (d->state == QD_IDLE && d->nwait > 0 && !q->stopping) {
		qmgr_dest_resolve(d);
		return;
	}
	if (d->state != QD_READY)
		return;
	if (d->stale || (int64_t)time(NULL) - d->round_start > QMGR_ROUND_MAX_S) {
		/* Old lookups start no new session; once idle, a new round. */
		d->stale = 1;
		if (d->nsess > 0)
			return;
		dest_restart(d);
		return;
	}
	while (!q->stopping && d->nsess < dest_window(d)) {
		size_t t = qmgr_dest_start_target(d);

		if (t == SIZE_MAX)
			break;
		if (max_new == 0 || q->nsess >= c->smtp_max_connections) {
			dest_wait(d);
			break;
		}
		max_new--;
		qmgr_sess_start(d, t, 0); /* a failure moves the target on */
	}
	if (d->nsess > 0)
		return;
	/* No session left: either every MX failed, or the work is done. */
	if (d->nwait > 0 && qmgr_dest_next_target(d) == SIZE_MAX) {
		if (!d->round_ok)
			dest_mark_dead(d);
		qmgr_dest_fail_all(d, d->fail_class ? d->fail_class : SMTPC_TEMPFAIL, d->fail_dsn,
				   d->fail_reason[0] ? d->fail_reason
						     : "no MX host could be reached");
	}
	if (d->nwait == 0 || q->stopping)
		qmgr_dest_reset(d);
}

/*
 * Hand free session slots to the destinations waiting for them, oldest
 * first, one slot at a time (round robin): a destination that keeps its
 * sessions busy, or fails them, cannot take every freed slot for itself.
 */
void qmgr_grant(struct qmgr *q)
{
	const struct cfg *c = q->p.cfg;
	struct qdest *d;

	while (!q->stopping && q->nsess < c->smtp_max_connections && q->waitq.head) {
		d = q->waitq.head->d;
		qmgr_dest_unwait(d);
		dest_kick_n(d, 1);
	}
}

void qmgr_dest_kick(struct qdest *d)
{
	qmgr_grant(d->q);
	dest_kick_n(d, UINT_MAX);
}

/* Only where no callback of d can be on the stack: it has no work left. */
void qmgr_dest_free(struct qdest *d)
{
	struct qmgr *q = d->q;
	struct qdest **pp = &q->dests[qmgr_hash_str(d->domain, QMGR_DEST_BUCKETS)];

	while (*pp && *pp != d)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = d->hnext;
	qmgr_dest_unwait(d);
	qlist_remove(&q->busy, &d->busy);
	qlist_remove(&q->dead, &d->dead);
	free(d->hosts);
	free(d->addrs);
	free(d->addrq);
	free(d->actx);
	free(d->targets);
	free(d);
}

/* Nothing waiting, no session, no lookup: the destination holds no work. */
static int dest_idle(const struct qdest *d)
{
	return d->nwait == 0 && d->nsess == 0 && d->state == QD_IDLE;
}

/*
 * Nothing in delivery any more: hand the memory of the load back to the
 * system, once.  glibc keeps freed memory in its arenas (the heap cannot
 * shrink below a live block, and each thread has its own arena), so after
 * a burst to many destinations the relay would otherwise keep its peak
 * size while idle.
 */
static void qmgr_trim(struct qmgr *q)
{
	if (q->nmsgs > 0 || q->busy.n > 0) {
		q->trimmed = 0;
		return;
	}
	if (q->trimmed)
		return;
	q->trimmed = 1;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

/* Suspensions that ended: those destinations are freed unless busy again. */
static void qmgr_expire_dead(struct qmgr *q, int64_t now)
{
	while (q->dead.head && !qmgr_dest_dead(q->dead.head->d, now)) {
		struct qdest *d = q->dead.head->d;

		qlist_remove(&q->dead, &d->dead);
		if (!d->busy.d)
			qmgr_dest_free(d);
	}
}

/*
 * The poll: destinations with waiting jobs start sessions.  Those with
 * nothing to do leave the busy list here (a safe point: no callback of
 * theirs is on the stack) and are freed unless suspended, so memory
 * follows the mail in delivery, not every domain ever seen, and the cost
 * of a poll follows the destinations with work, not those known.
 */
void qmgr_kick_all(struct qmgr *q)
{
	qmgr_grant(q);
	/* Nothing below frees or unlists another destination than d. */
	for (struct qlink *k = q->busy.head, *next; k; k = next) {
		struct qdest *d = k->d;

		next = k->next;
		if (d->nwait > 0) {
			qmgr_dest_kick(d);
		} else if (dest_idle(d)) {
			qlist_remove(&q->busy, &d->busy);
			if (!d->dead.d)
				qmgr_dest_free(d);
		}
	}
	qmgr_expire_dead(q, (int64_t)time(NULL));
	qmgr_trim(q);
}

/* `queue flush` or a policy change: suspended destinations are tried again. */
void qmgr_revive_all(struct qmgr *q)
{
	while (q->dead.head) {
		struct qdest *d = q->dead.head->d;

		d->dead_until = 0;
		qlist_remove(&q->dead, &d->dead);
		if (!d->busy.d)
			qmgr_dest_free(d);
	}
}
