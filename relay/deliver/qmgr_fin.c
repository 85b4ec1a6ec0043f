/*
 * qmgr_fin: the end of a message's delivery.  Each recipient's new state
 * (an expired deferral becomes a bounce), a DSN for the bounced ones, the
 * sender's one delay warning once delay_warning_time has passed, and the
 * one final write that records all of it in a single transaction, with
 * its retry when the write fails (the results live only in memory until it
 * succeeds).  Apart from qmgr_msg.c because this path is about durability:
 * its apply function runs on the committer's worker thread.
 */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn.h"
#include "log.h"
#include "mailq.h"
#include "qmgr_int.h"

#define QMGR_FIN_RETRY_MAX_MS 60000 /* cap of the backoff of a failed final write */

/* Backoff: retry_min doubling per attempt, at most retry_max (Postfix-like). */
static int64_t qmgr_backoff(const struct cfg *c, uint32_t attempts)
{
	int64_t d = c->retry_min;

	for (uint32_t i = 1; i < attempts && d < c->retry_max; i++)
		d *= 2;
	return d < c->retry_max ? d : c->retry_max;
}

/*
 * The attempt's outcomes into the per-minute counters of `tlsrelay
 * status` ("delivery:STATUS:TLS"), in the final write's own transaction:
 * no fsync of their own, and a failed write (retried whole) counts nothing.
 */
static int qmsg_fin_count(struct queue_txn *t, const struct qmsg *qm)
{
	static const char *const status[QUEUE_PS_N] = { "sent", "deferred", "bounced" };
	char names[QUEUE_PS_N * QUEUE_PT_N][QUEUE_COUNTS_NAME_MAX + 1];
	struct queue_count v[QUEUE_PS_N * QUEUE_PT_N];
	size_t n = 0;

	for (int s = 0; s < QUEUE_PS_N; s++) {
		for (int k = 0; k < QUEUE_PT_N; k++) {
			if (!qm->counts[s][k])
				continue;
			snprintf(names[n], sizeof(names[n]), "delivery:%s:%s", status[s],
				 k == QUEUE_PT_NOSESS ? "no-connection" : queue_posture_tls_name(k));
			v[n] = (struct queue_count){ names[n], qm->counts[s][k] };
			n++;
		}
	}
	return n ? queue_counts_add(t, qm->now, v, n) : 0;
}

/*
 * Worker thread: record the outcome.  The record is read again so that a
 * hold or delete made by `tlsrelay queue` during the delivery wins; a
 * deleted message gets no DSN.
 */
static int qmsg_fin_apply(struct queue_txn *t, struct commit_req *r)
{
	struct qmsg *qm = (struct qmsg *)((char *)r - offsetof(struct qmsg, fin));
	struct queue_msg *cur = NULL;
	int rc = queue_msg_load(t, qm->m->id, &cur), left = 0, warn;

	qm->warnmsg.id[0] = '\0'; /* set below only when this write queues it */

	if (rc == 0 || rc == RL_ENOTFOUND) {
		int crc = qmsg_fin_count(t, qm);

		if (crc < 0) {
			queue_msg_free(cur);
			return crc;
		}
	}
	if (rc == RL_ENOTFOUND) {
		/* Deleted meanwhile: no DSN, and no in-delivery mark left behind. */
		rc = queue_active_clear(t, qm->m->id);
		return rc == RL_ENOTFOUND ? 0 : rc;
	}
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < cur->nrcpt && i < qm->m->nrcpt; i++) {
		const struct queue_rcpt *u = &qm->upd[i];

		if (u->state >= 0 && strcmp(cur->rcpt[i].address, u->address) == 0) {
			free(cur->rcpt[i].reason);
			cur->rcpt[i].reason = u->reason ? strdup(u->reason) : NULL;
			cur->rcpt[i].state = u->state;
			memcpy(cur->rcpt[i].dsn, u->dsn, sizeof(u->dsn));
		}
		left |= mailq_rcpt_listed(&cur->rcpt[i]);
	}
	if (qm->tried) {
		cur->attempts++;
		cur->next_attempt = qm->next_attempt;
	}
	/* The delay warning and its mark are written together: one per message. */
	warn = qm->warn.len && left && !(cur->flags & QUEUE_F_WARNED);
	if (warn)
		cur->flags |= QUEUE_F_WARNED;
	rc = left ? queue_msg_update(t, cur) : queue_msg_delete(t, cur->id);
	if (rc == 0) {
		rc = queue_active_clear(t, cur->id);
		rc = rc == RL_ENOTFOUND ? 0 : rc;
	}
	if (rc == 0 && qm->dsn.len)
		rc = queue_msg_insert(t, &qm->dsnmsg, qm->dsn.data, qm->dsn.len);
	if (rc == 0 && warn)
		rc = queue_msg_insert(t, &qm->warnmsg, qm->warn.data, qm->warn.len);
	queue_msg_free(cur);
	return rc;
}

void qmgr_fin_retry_cb(uv_timer_t *t)
{
	struct qmgr *q = t->data;
	struct qmsg *qm = q->finq;

	q->finq = NULL;
	for (struct qmsg *next; qm; qm = next) {
		next = qm->fnext;
		qm->fnext = NULL;
		committer_submit(q->p.commit, &qm->fin);
	}
}

/*
 * The final write failed (disk or map full): the recipients' results live
 * only here.  Freeing them would make the message due again as it was and
 * deliver it twice, so the message stays in the active set (the poller
 * leaves it alone) and the same write is tried again with a growing delay.
 * At shutdown one last try is made; if that fails too, it is said loudly.
 */
static int qmsg_fin_retry(struct qmsg *qm, int result)
{
	struct qmgr *q = qm->q;
	uint64_t ms = 1000;

	if (q->stopping && qm->fin_tries > 0) {
		log_err("%s: cannot record delivery results: %s; giving up at shutdown: "
			"recipients delivered in this attempt will get the message again",
			qm->m->id, rl_strerror(result));
		return -1;
	}
	for (unsigned i = 0; i < qm->fin_tries && ms < QMGR_FIN_RETRY_MAX_MS; i++)
		ms *= 2;
	if (ms > QMGR_FIN_RETRY_MAX_MS || q->stopping)
		ms = q->stopping ? 0 : QMGR_FIN_RETRY_MAX_MS;
	qm->fin_tries++;
	log_err("%s: cannot record delivery results: %s; trying again in %llu ms", qm->m->id,
		rl_strerror(result), (unsigned long long)ms);
	qm->fnext = q->finq;
	q->finq = qm;
	if (q->timers_open && (ms == 0 || !uv_is_active((uv_handle_t *)&q->fin_timer)))
		uv_timer_start(&q->fin_timer, qmgr_fin_retry_cb, ms, 0);
	return 0;
}

static void qmsg_fin_done(struct commit_req *r)
{
	struct qmsg *qm = (struct qmsg *)((char *)r - offsetof(struct qmsg, fin));
	struct qmgr *q = qm->q;

	if (r->result < 0 && qmsg_fin_retry(qm, r->result) == 0)
		return;
	if (r->result == 0 && qm->dsn.len)
		log_info("%s: sender non-delivery notification: %s", qm->m->id, qm->dsnmsg.id);
	if (r->result == 0 && qm->warn.len && qm->warnmsg.id[0]) {
		/* Postfix's line, with what it was about. */
		log_info("%s: sender delay notification: %s (delay warning: not delivered after "
			 "%llds)",
			 qm->m->id, qm->warnmsg.id, (long long)(qm->now - qm->m->arrival));
		q->delay_warnings++;
		metrics_count_delay_warning(q->p.metrics);
	}
	qmgr_msg_free(qm);
	qmgr_check_stopped(q);
}

/* Where one notification goes before the final write queues it. */
struct qdsn_out {
	struct rl_buf *buf;
	struct queue_msg *msg;
	struct queue_rcpt *rcpt;
	int delay; /* a delay warning, else a non-delivery notification */
};

/*
 * Build one DSN to the sender into out, from the original's header section
 * (headers/got).  RFC 8689 section 5: the report of REQUIRETLS mail would
 * need REQUIRETLS itself, unless redacted.  We redact it (only the
 * Message-ID of the original comes back) and send it as ordinary mail
 * under the sender domain's policy, so it can reach a sender whose MX does
 * not offer REQUIRETLS.  A delay warning says until when we retry: the end
 * of queue_lifetime.
 */
static void qmsg_dsn_make(struct qmsg *qm, const struct qdsn_out *out, const struct dsn_rcpt *dr,
			  size_t n, const char *headers, size_t got)
{
	const struct cfg *c = qm->q->p.cfg;
	const char *kind = out->delay ? "delay" : "bounce";
	char boundary[128], msgid[256];
	struct dsn_info info;

	snprintf(boundary, sizeof(boundary), "%s.%lld%s/%s", qm->m->id, (long long)qm->now,
		 out->delay ? ".delay" : "", c->myhostname);
	snprintf(msgid, sizeof(msgid), "%lld.%s.%s@%s", (long long)qm->now, qm->m->id, kind,
		 c->myhostname);
	info = (struct dsn_info){ c->myhostname, qm->m->id, qm->m->sender, qm->m->arrival,
				  qm->now, boundary, msgid,
				  (qm->m->flags & QUEUE_F_REQUIRETLS) != 0,
				  out->delay ? qm->m->arrival + c->queue_lifetime : 0 };
	if (dsn_build(out->buf, &info, dr, n, headers, got) < 0) {
		log_err("%s: cannot build a %s notification", qm->m->id,
			out->delay ? "delay" : "non-delivery");
		rl_buf_reset(out->buf);
		return;
	}
	out->rcpt->address = qm->m->sender;
	out->msg->id[0] = '\0'; /* the queue picks the ID */
	out->msg->sender = "";
	out->msg->arrival = out->msg->next_attempt = qm->now;
	out->msg->flags = QUEUE_F_BOUNCE;
	out->msg->nrcpt = 1;
	out->msg->rcpt = out->rcpt;
}

/*
 * The DSNs to the sender (never to the null sender, never for a DSN): one
 * for the nd bounced recipients dr[0..nd), and the delay warning for the
 * nw deferred ones dr[nd..nd+nw).
 */
static void qmsg_dsns(struct qmsg *qm, const struct dsn_rcpt *dr, size_t nd, size_t nw)
{
	const struct qdsn_out bounce = { &qm->dsn, &qm->dsnmsg, &qm->dsnrcpt, 0 };
	const struct qdsn_out warn = { &qm->warn, &qm->warnmsg, &qm->warnrcpt, 1 };
	char *headers;
	size_t got = 0;

	if ((nd == 0 && nw == 0) || !qm->m->sender[0] || (qm->m->flags & QUEUE_F_BOUNCE))
		return;
	headers = malloc(QMGR_DSN_HEADERS_MAX);
	if (!headers || queue_body_read(qm->q->p.q, qm->m->id, 0, headers, QMGR_DSN_HEADERS_MAX,
					&got) < 0)
		got = 0;
	if (nd > 0)
		qmsg_dsn_make(qm, &bounce, dr, nd, headers, got);
	if (nw > 0)
		qmsg_dsn_make(qm, &warn, dr + nd, nw, headers, got);
	free(headers);
}

/*
 * Is the sender's delay warning due?  Once per message (QUEUE_F_WARNED),
 * when delay_warning_time is on and has passed since arrival, and the
 * message is not out of time (then it bounces instead).
 */
static int qmsg_warn_due(const struct qmsg *qm, int expired)
{
	const struct cfg *c = qm->q->p.cfg;
	const struct queue_msg *m = qm->m;

	/* Not for our own DSNs or TLS-RPT reports: no one reads their sender. */
	return c->delay_warning_time > 0 && !expired && m->sender[0] &&
	       !(m->flags & (QUEUE_F_BOUNCE | QUEUE_F_WARNED | QUEUE_F_TLSRPT)) &&
	       qm->now - m->arrival >= c->delay_warning_time;
}

/*
 * The recipients a delay warning names: those deferred after this attempt,
 * with the reason of their last try (this one's, or the stored one for
 * recipients not tried now).  Into dr; returns how many.
 */
static size_t qmsg_delayed(struct qmsg *qm, struct dsn_rcpt *dr)
{
	const struct queue_msg *m = qm->m;
	size_t nw = 0;

	for (size_t i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *u = &qm->upd[i];
		const struct smtpc_rcpt *r = &qm->res[i];
		struct dsn_rcpt *d = &dr[nw];

		if (u->state < 0) {
			/* Not tried in this attempt: its stored state and reason. */
			if (m->rcpt[i].state != QUEUE_RCPT_DEFERRED)
				continue;
			*d = (struct dsn_rcpt){ m->rcpt[i].address, "delayed", m->rcpt[i].dsn,
						NULL, m->rcpt[i].reason, 0 };
		} else {
			if (u->state != QUEUE_RCPT_DEFERRED)
				continue;
			*d = (struct dsn_rcpt){ m->rcpt[i].address, "delayed", u->dsn,
						strcmp(qm->relay[i], "none") ? qm->relay[i] : NULL,
						r->reply[0] ? r->reply : u->reason, r->reply[0] != 0 };
		}
		nw++;
	}
	return nw;
}

/* Count recipient i's outcome as its delivery line says it. */
static void qmsg_count(struct qmsg *qm, size_t i, int state)
{
	int s = state == QUEUE_RCPT_SENT ? QUEUE_PS_SENT :
		state == QUEUE_RCPT_BOUNCED ? QUEUE_PS_BOUNCED : QUEUE_PS_DEFERRED;
	int k = strcmp(qm->relay[i], "none") == 0 ? QUEUE_PT_NOSESS :
						      queue_posture_tls_index(qm->tls[i]);

	if (k < 0 || k >= QUEUE_PT_N)
		k = QUEUE_PT_NONE;
	if (qm->counts[s][k] < UINT32_MAX)
		qm->counts[s][k]++;
}

/* Decide each recipient's new state; expired deferrals become bounces. */
static size_t qmsg_outcome(struct qmsg *qm, struct dsn_rcpt *dr, int expired)
{
	const struct queue_msg *m = qm->m;
	size_t nd = 0;

	for (size_t i = 0; i < m->nrcpt; i++) {
		struct smtpc_rcpt *r = &qm->res[i];
		struct queue_rcpt *u = &qm->upd[i];
		int class = r->result;

		u->address = m->rcpt[i].address;
		u->state = -1; /* unchanged */
		if (class == SMTPC_NONE && expired && mailq_rcpt_listed(&m->rcpt[i])) {
			/* Never tried in this round, but out of time: keep its last reason. */
			class = SMTPC_TEMPFAIL;
			rl_strlcpy(r->reason, m->rcpt[i].reason ? m->rcpt[i].reason :
					      "delivery time expired", sizeof(r->reason));
			rl_strlcpy(r->dsn, m->rcpt[i].dsn[0] ? m->rcpt[i].dsn : "4.4.7", sizeof(r->dsn));
			rl_strlcpy(qm->relay[i], "none", sizeof(qm->relay[i]));
		}
		if (class == SMTPC_NONE)
			continue;
		qm->tried |= r->result != SMTPC_NONE;
		u->state = class == SMTPC_DELIVERED ? QUEUE_RCPT_SENT :
			   class == SMTPC_PERMFAIL || expired ? QUEUE_RCPT_BOUNCED :
								  QUEUE_RCPT_DEFERRED;
		u->reason = class == SMTPC_DELIVERED ? NULL : r->reason;
		rl_strlcpy(u->dsn, r->dsn, sizeof(u->dsn));
		qmsg_count(qm, i, u->state);
		if (u->state != QUEUE_RCPT_BOUNCED)
			continue;
		/* The contract knows sent|deferred|bounced: an expiry is a bounce. */
		if (class != SMTPC_PERMFAIL)
			qmgr_log_rcpt(qm->q, m, u->address, "none", NULL, u->dsn, "bounced",
				      "message expired after queue_lifetime: ", r->reason);
		dr[nd++] = (struct dsn_rcpt){ u->address, "failed", u->dsn,
					      strcmp(qm->relay[i], "none") ? qm->relay[i] : NULL,
					      r->reply[0] ? r->reply : r->reason, r->reply[0] != 0 };
	}
	return nd;
}

/*
 * When to try next: the backoff, brought forward to the time the delay
 * warning falls due if that comes first, so the sender is told on time and
 * not up to retry_max later.
 */
static int64_t qmsg_next_attempt(const struct qmsg *qm, int warned)
{
	const struct cfg *c = qm->q->p.cfg;
	const struct queue_msg *m = qm->m;
	int64_t next = qm->now + qmgr_backoff(c, m->attempts + 1);
	int64_t warn_at = m->arrival + c->delay_warning_time;

	if (c->delay_warning_time > 0 && !warned && m->sender[0] &&
	    !(m->flags & (QUEUE_F_BOUNCE | QUEUE_F_WARNED)) && warn_at > qm->now &&
	    warn_at < next)
		next = warn_at;
	return next;
}

void qmgr_msg_finish(struct qmsg *qm)
{
	const struct cfg *c = qm->q->p.cfg;
	int expired;
	size_t nd, nw = 0;

	qm->now = time(NULL);
	expired = qm->now - qm->m->arrival >= c->queue_lifetime;
	nd = qmsg_outcome(qm, qm->dr, expired);
	/* dr has room for every recipient: the bounced ones, then the delayed. */
	if (qmsg_warn_due(qm, expired))
		nw = qmsg_delayed(qm, qm->dr + nd);
	qm->next_attempt = qmsg_next_attempt(qm, nw > 0);
	qmsg_dsns(qm, qm->dr, nd, nw);
	memcpy(qm->fin.msg.id, qm->m->id, QUEUE_ID_SIZE);
	qm->fin.apply = qmsg_fin_apply;
	qm->fin.done = qmsg_fin_done;
	committer_submit(qm->q->p.commit, &qm->fin);
}

uint64_t qmgr_delay_warnings(const struct qmgr *q)
{
	return q ? q->delay_warnings : 0;
}
