/*
 * qmgr_sess: the smtpc sessions of the scheduler and the jobs they take.
 * Which target (MX address) a waiting job goes to, where a new session is
 * needed, moving on from a target that failed, sending the recipients of a
 * 4xx on to the next MX host; the smtpc callbacks (next message, message
 * done, closed, with the feedback they give the destination's window);
 * starting a session under the TLS policy in force.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "netaddr.h"
#include "qmgr_int.h"

/* The target a waiting job goes to next: past failed ones and its 4xx host. */
static size_t job_target(const struct qdest *d, const struct qjob *j)
{
	return j->min_target > d->cursor ? j->min_target : d->cursor;
}

/*
 * The first waiting job for target (any job: SIZE_MAX).  A session takes
 * only the jobs meant for its own host: fresh mail is not sent to a backup
 * just because a session to it is open, nor a 4xx'd job back to its host.
 */
struct qjob *qmgr_dest_pop(struct qdest *d, size_t target)
{
	struct qjob **pp = &d->head, *j;

	while (*pp && target != SIZE_MAX && job_target(d, *pp) != target)
		pp = &(*pp)->next;
	j = *pp;
	if (!j)
		return NULL;
	*pp = j->next;
	if (d->tail == &j->next)
		d->tail = pp;
	d->nwait--;
	j->next = NULL;
	return j;
}

/* The lowest target a waiting job can still go to: SIZE_MAX when none. */
size_t qmgr_dest_next_target(const struct qdest *d)
{
	size_t t = SIZE_MAX;

	for (const struct qjob *j = d->head; j; j = j->next) {
		size_t jt = job_target(d, j);

		t = jt < t ? jt : t;
	}
	return t < d->ntargets ? t : SIZE_MAX;
}

/*
 * Where a new session is needed: waiting jobs in queue order are matched
 * with the sessions already open to their target (each session will take
 * one); the first job left over names the target.  SIZE_MAX: none needed.
 */
size_t qmgr_dest_start_target(const struct qdest *d)
{
	size_t open[QMGR_DEST_SESS_MAX], n = 0;

	for (const struct qsess *qs = d->q->sessions; qs && n < QMGR_DEST_SESS_MAX; qs = qs->next)
		if (qs->d == d)
			open[n++] = qs->target;
	for (const struct qjob *j = d->head; j; j = j->next) {
		size_t jt = job_target(d, j), k;

		if (jt >= d->ntargets)
			continue;
		for (k = 0; k < n && open[k] != jt; k++)
			;
		if (k == n)
			return jt;
		open[k] = open[--n]; /* that session is spoken for */
	}
	return SIZE_MAX;
}

/* Unlink *pp (a waiting job of d) onto the list *done. */
static void job_take(struct qdest *d, struct qjob **pp, struct qjob **done)
{
	struct qjob *j = *pp;

	*pp = j->next;
	if (d->tail == &j->next)
		d->tail = pp;
	d->nwait--;
	j->next = *done;
	*done = j;
}

/*
 * Target failed before any mail went: move on from it.  Jobs sent on to
 * it (after a 4xx elsewhere) go on to the one after.  answered: the host
 * completed the SMTP handshake; after smtp_mx_session_limit such hosts the round
 * tries no more (Postfix's smtp_mx_session_limit: one message cannot make
 * the relay talk to any number of hosts a domain lists).
 */
static void dest_target_failed(struct qdest *d, size_t target, int answered)
{
	struct qjob **pp = &d->head, *done = NULL, *j;

	if (target == d->cursor) {
		d->cursor++;
		if (answered && ++d->nanswered >= d->q->p.cfg->smtp_mx_session_limit)
			d->cursor = d->ntargets;
	}
	while ((j = *pp)) {
		/* Only jobs sent on after a 4xx carry a target (> 0) of their own. */
		if (j->min_target && j->min_target == target)
			j->min_target = target + 1;
		if (!j->min_target || job_target(d, j) < d->ntargets) {
			pp = &j->next;
			continue;
		}
		/* Sent on after a 4xx, and no host is left: that 4xx stands. */
		job_take(d, pp, &done);
	}
	while ((j = done)) {
		done = j->next;
		j->next = NULL;
		qmgr_job_done(j, "none", NULL);
	}
}

/*
 * A 4xx from this MX host for some recipients of job j: as Postfix does,
 * they go on to the next host of the domain in this same round (the
 * primary may be greylisting or overloaded; a backup may take them).  The
 * recipients with a final outcome are recorded now; the 4xx ones keep
 * their reply as the provisional outcome, in case no later host gets to
 * them.  Returns 1 if j was queued again, 0 if it is done.
 */
static int job_send_on(struct qjob *j, size_t target, const char *relay, const char *tls)
{
	struct qdest *d = j->d;
	struct qmsg *qm = j->qm;
	size_t n = 0, temp = 0;

	if (d->q->stopping || target + 1 >= d->ntargets ||
	    ++j->nhosts >= d->q->p.cfg->smtp_mx_session_limit)
		return 0;
	for (size_t i = 0; i < j->sm.nrcpt; i++)
		temp += j->sm.rcpt[i].result == SMTPC_TEMPFAIL;
	if (temp == 0)
		return 0;
	for (size_t i = 0; i < j->sm.nrcpt; i++) {
		struct smtpc_rcpt r = j->sm.rcpt[i];
		size_t k = j->idx[i];

		if (r.result == SMTPC_NONE)
			continue;
		qm->res[k] = r;
		rl_strlcpy(qm->relay[k], relay, sizeof(qm->relay[k]));
		qm->tls[k] = tls;
		if (r.result != SMTPC_TEMPFAIL) {
			qmgr_log_rcpt(qm->q, qm->m, r.address, relay, tls, r.dsn, qmgr_class_status(r.result),
				      "", r.reason);
			continue;
		}
		j->sm.rcpt[n] = (struct smtpc_rcpt){ .address = r.address };
		j->idx[n++] = k;
	}
	j->sm.nrcpt = n;
	j->min_target = target + 1;
	j->next = d->head;
	if (!d->head)
		d->tail = &j->next;
	d->head = j;
	d->nwait++;
	return 1;
}

/* --- TLS-RPT (RFC 8460) ---------------------------------------------- */

/* The TLSA records of the session as policy-string lines, bounded. */
static void tlsa_text(const struct pol_peer_policy *p, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < p->ntlsa; i++) {
		char rec[QUEUE_TLSRPT_STR_MAX];
		size_t len;

		dane_tlsa_text(&p->tlsa[i], rec, sizeof(rec));
		len = strlen(rec);
		if (n + len + 2 > size)
			break;
		n += (size_t)snprintf(out + n, size - n, "%s%s", n ? "\n" : "", rec);
	}
}

/* smtpc's result as RFC 8460's result type (0: success). */
static int sess_result_type(int tr)
{
	switch (tr) {
	case SMTPC_TR_STARTTLS: return QUEUE_TLSRPT_R_STARTTLS;
	case SMTPC_TR_HOST_MISMATCH: return QUEUE_TLSRPT_R_HOST_MISMATCH;
	case SMTPC_TR_EXPIRED: return QUEUE_TLSRPT_R_EXPIRED;
	case SMTPC_TR_NOT_TRUSTED: return QUEUE_TLSRPT_R_NOT_TRUSTED;
	case SMTPC_TR_OK: return 0;
	default: return QUEUE_TLSRPT_R_VALIDATION;
	}
}

/*
 * Count one session for the domain's TLS-RPT report: under the policy it
 * ran (or was to run) under; result 0 for a success.  Sessions that carry
 * reports are not counted, so reports about reports cannot loop.
 */
static void sess_count(struct qsess *qs, int type, int result, const char *local_ip)
{
	struct qdest *d = qs->d;
	char strings[QUEUE_TLSRPT_STR_MAX + 1] = "", rip[NETADDR_TEXT_SIZE] = "";
	struct queue_tlsrpt_sess rs;
	unsigned port;

	/* The metrics count every failed session, report mail's too. */
	metrics_count_tls_failure(d->q->p.metrics, result);
	if (!d->q->p.rpt || qs->nocount)
		return;
	if (type == QUEUE_TLSRPT_TLSA)
		tlsa_text(&qs->ps.pol, strings, sizeof(strings));
	else if (type == QUEUE_TLSRPT_STS && d->sts_text)
		rl_strlcpy(strings, d->sts_text, sizeof(strings));
	if (netaddr_text((const struct sockaddr *)&qs->t.addr, rip, sizeof(rip), &port) < 0)
		rip[0] = '\0';
	rs = (struct queue_tlsrpt_sess){type, strings, qs->t.host, result, local_ip, rip};
	tlsrpt_count(d->q->p.rpt, d->domain, (int64_t)time(NULL), &rs);
}

/* The policy type a resolved session runs under. */
static int sess_policy_type(const struct qsess *qs)
{
	if (qs->ps.pol.ntlsa > 0)
		return QUEUE_TLSRPT_TLSA;
	if (qs->ps.pol.sts_enforce || qs->ps.pol.sts_testing)
		return QUEUE_TLSRPT_STS;
	return QUEUE_TLSRPT_NOPOLICY;
}

/* The result type of a policy fetch that failed (mtasts.h's strings). */
static int sts_fail_result(const char *fail)
{
	if (strcmp(fail, MTASTS_INVALID) == 0)
		return QUEUE_TLSRPT_R_STS_INVALID;
	if (strcmp(fail, MTASTS_WEBPKI) == 0)
		return QUEUE_TLSRPT_R_STS_WEBPKI;
	return QUEUE_TLSRPT_R_STS_FETCH;
}

/*
 * Count a session that reached the server.  A session that ran without a
 * policy because the domain's policy could not be had (RFC 8460 4.3.2:
 * malformed TLSA records and no usable one; an MTA-STS policy that could
 * not be fetched, or was invalid, with no cached one to stand in) is a
 * failure of that policy, whatever became of its TLS: the domain owner
 * needs to hear that the policy it published is not being applied.  It
 * goes under no-policy-found (the policy applied; there is no policy
 * text to show) for MTA-STS, and under tlsa for the TLSA records.
 * DANE comes first, as it does in sess_policy.
 */
static void sess_count_closed(struct qsess *qs, int tr, const char *local_ip)
{
	int type = sess_policy_type(qs), result = sess_result_type(tr);

	if (type == QUEUE_TLSRPT_NOPOLICY && qs->tlsa_invalid) {
		type = QUEUE_TLSRPT_TLSA;
		result = QUEUE_TLSRPT_R_TLSA_INVALID;
	} else if (type == QUEUE_TLSRPT_NOPOLICY && qs->d->sts_fail) {
		result = sts_fail_result(qs->d->sts_fail);
	}
	sess_count(qs, type, result, local_ip);
}

static struct smtpc_msg *sess_next(struct smtpc *s, void *arg)
{
	struct qsess *qs = arg;
	struct qjob *j = qs->d->q->stopping ? NULL : qmgr_dest_pop(qs->d, qs->target);

	(void)s;
	qs->job = j;
	qs->taken += j != NULL;
	if (j && (j->sm.flags & QUEUE_F_TLSRPT))
		qs->nocount = 1;
	return j ? &j->sm : NULL;
}

static void sess_msg_done(struct smtpc *s, struct smtpc_msg *m, void *arg)
{
	struct qsess *qs = arg;
	struct qjob *j = qs->job;

	RL_REQUIRE(j && &j->sm == m);
	qs->job = NULL;
	for (size_t i = 0; i < m->nrcpt; i++) {
		if (m->rcpt[i].reply[0]) {
			qs->replied++; /* the server answered: not a stall */
			break;
		}
	}
	if (!job_send_on(j, qs->target, smtpc_relay(s), smtpc_tls(s)))
		qmgr_job_done(j, smtpc_relay(s), smtpc_tls(s));
}

static void sess_closed(struct smtpc *s, int established, int class, const char *reason,
			int plain_retry, void *arg)
{
	struct qsess *qs = arg;
	struct qdest *d = qs->d;
	struct qmgr *q = d->q;
	size_t target = qs->target;
	/*
	 * Feedback: a session counts as a success when the server answered
	 * a mail transaction, and as a failure when it failed before that or
	 * when every message it took ended without an answer (a host that
	 * greets and then stalls).  One that got through but had nothing to
	 * do is neither.
	 */
	int good = established && qs->replied > 0;
	int bad = established ? qs->taken > 0 && qs->replied == 0 : !plain_retry;
	int tr = smtpc_tls_result(s);

	if (tr != SMTPC_TR_NONE)
		sess_count_closed(qs, tr, smtpc_local_ip(s));
	if (qs->prev)
		qs->prev->next = qs->next;
	else
		q->sessions = qs->next;
	if (qs->next)
		qs->next->prev = qs->prev;
	tlspol_unref(qs->polref);
	free(qs);
	d->nsess--;
	q->nsess--;
	d->round_ok |= established;
	d->proven |= good;
	if (good && d->win < qmgr_dest_limit(d))
		d->win++;
	else if (bad && d->win > 1)
		d->win--;
	if (!established && plain_retry && !q->stopping) {
		/* `may`: the handshake failed, so try the same host in clear. */
		qmgr_sess_start(d, target, 1);
	} else if (!established) {
		d->fail_class = class;
		rl_strlcpy(d->fail_reason, reason, sizeof(d->fail_reason));
		rl_strlcpy(d->fail_dsn, smtpc_fail_dsn(s), sizeof(d->fail_dsn));
		rl_strlcpy(d->fail_relay, smtpc_connected(s) ? smtpc_relay(s) : "none",
			   sizeof(d->fail_relay));
		d->fail_tls = smtpc_tls(s);
		dest_target_failed(d, target, smtpc_handshaken(s));
	}
	/* A freed slot goes to the destination that has waited longest. */
	qmgr_grant(q);
	qmgr_dest_kick(d);
	qmgr_check_stopped(q);
}

static const struct smtpc_ops qmgr_smtpc_ops = { sess_next, sess_msg_done, sess_closed };

/*
 * The TLS policy of a session: the entry of the policy file in force for
 * the destination (or default_tls_level), resolved for this MX host, then
 * raised by what the host's TLSA lookup found (pol_peer_dane), then by
 * the domain's MTA-STS policy (pol_peer_sts).  The
 * session keeps a reference to the snapshot, so a reload meanwhile changes
 * only sessions started after it.  On failure *dsn is the enhanced status
 * ("" when it has none).
 */
static int sess_policy(struct qsess *qs, const struct qtarget *t, const char **dsn, char *reason,
		       size_t rsize)
{
	struct qdest *d = qs->d;
	struct qmgr *q = d->q;
	struct danehost none = {.state = POL_DANE_NONE, .qid = -1};
	const struct danehost *h = d->dane ? &d->dane[t->hostidx] : &none;
	struct pol_dane dn;

	*dsn = "";
	if (tlspol_resolve(*q->p.pol, d->domain, t->host, q->p.cfg->default_tls_level,
			   q->p.trust, &qs->ps, reason, rsize) < 0)
		return -1;
	/* The records stay with the round, which outlives its sessions. */
	danehost_pol(h, d->mx_secure, &dn);
	/* RFC 8460 4.3.2.1 tlsa-invalid: records, but none valid (malformed ones). */
	qs->tlsa_invalid = h->state == POL_DANE_UNUSABLE && h->nmalformed > 0;
	if (pol_peer_dane(&qs->ps, &dn, t->host, dsn, reason, rsize) < 0) {
		*dsn = *dsn ? *dsn : "";
		/* RFC 8460 4.3: a failed (bogus) TLSA lookup, or dane-only without records. */
		sess_count(qs, QUEUE_TLSRPT_TLSA,
			   dn.state == POL_DANE_FAIL ? QUEUE_TLSRPT_R_DNSSEC_INVALID
			   : qs->tlsa_invalid	     ? QUEUE_TLSRPT_R_TLSA_INVALID
						     : QUEUE_TLSRPT_R_DANE_REQUIRED,
			   "");
		return -1;
	}
	/* Then MTA-STS, which neither an entry nor usable DANE leaves room for. */
	if (d->sts_mode != POL_STS_NONE) {
		struct pol_sts st = {d->sts_mode, d->sts_match && d->sts_match[t->hostidx],
				     d->domain};

		if (pol_peer_sts(&qs->ps, &st, t->host, dsn, reason, rsize) < 0) {
			*dsn = *dsn ? *dsn : "";
			/*
			 * Enforce, and the MX host is not in the policy: no
			 * certificate was seen (certificate-host-mismatch) and
			 * the policy itself was authenticated (not
			 * sts-webpki-invalid), so the general validation-failure.
			 */
			sess_count(qs, QUEUE_TLSRPT_STS, QUEUE_TLSRPT_R_VALIDATION, "");
			return -1;
		}
	}
	qs->polref = tlspol_ref(*q->p.pol);
	qs->t.pol = &qs->ps.pol;
	return 0;
}

/* Is the first job waiting for target a TLS-RPT report (the session's first message)? */
static int sess_first_is_report(const struct qdest *d, size_t target)
{
	for (const struct qjob *j = d->head; j; j = j->next)
		if (job_target(d, j) == target)
			return (j->sm.flags & QUEUE_F_TLSRPT) != 0;
	return 0;
}

/*
 * REQUIRETLS mail waiting for target, under a session policy that cannot
 * end Verified: bounced now with 5.7.30 (RFC 8689), before any connection,
 * so that a server without STARTTLS cannot keep it deferred until it
 * expires.  Returns the number of jobs still waiting for target.
 */
static size_t sess_bounce_requiretls(struct qdest *d, size_t target,
				     const struct pol_peer_policy *p)
{
	struct qjob **pp = &d->head, *j, *done = NULL;
	size_t left = 0;
	char why[SMTPC_REASON_MAX];

	if (pol_peer_can_verify(p))
		return 1;
	while ((j = *pp)) {
		if (job_target(d, j) != target || !(j->qm->m->flags & QUEUE_F_REQUIRETLS)) {
			left += job_target(d, j) == target;
			pp = &j->next;
			continue;
		}
		job_take(d, pp, &done);
	}
	snprintf(why, sizeof(why),
		 "REQUIRETLS: the TLS policy of %s (level %s) cannot verify %s", d->domain,
		 pol_level_name(p->level), d->targets[target].host);
	while ((j = done)) {
		done = j->next;
		j->next = NULL;
		qmgr_job_fail(j, SMTPC_PERMFAIL, "5.7.30", why, "none", NULL);
	}
	return left;
}

void qmgr_sess_start(struct qdest *d, size_t target, int no_starttls)
{
	struct qmgr *q = d->q;
	const struct cfg *c = q->p.cfg;
	struct qsess *qs = calloc(1, sizeof(*qs));
	struct smtpc_params p;
	struct qtarget *t = &d->targets[target];
	const char *dsn;
	int rc;

	if (!qs) {
		/* Move on, or qmgr_dest_kick() would ask for this target forever. */
		d->fail_class = SMTPC_TEMPFAIL;
		rl_strlcpy(d->fail_reason, "out of memory", sizeof(d->fail_reason));
		d->fail_dsn[0] = d->fail_relay[0] = '\0';
		dest_target_failed(d, target, 0);
		return;
	}
	qs->d = d;
	qs->target = target;
	qs->t.domain = d->domain;
	qs->t.host = t->host;
	qs->t.addr = t->addr;
	qs->t.no_starttls = no_starttls;
	qs->nocount = sess_first_is_report(d, target);
	if (sess_policy(qs, t, &dsn, d->fail_reason, sizeof(d->fail_reason)) < 0) {
		/* A host name that cannot be matched, a failed TLSA lookup,
		 * dane-only without records: fail closed, like a bad cert. */
		d->fail_class = SMTPC_POLICYFAIL;
		rl_strlcpy(d->fail_dsn, dsn, sizeof(d->fail_dsn));
		d->fail_relay[0] = '\0';
		dest_target_failed(d, target, 0);
		free(qs);
		return;
	}
	if (sess_bounce_requiretls(d, target, &qs->ps.pol) == 0) {
		/* Nothing left for this host: no session (the caller's loop
		 * looks for the next target). */
		tlspol_unref(qs->polref);
		free(qs);
		return;
	}
	p = (struct smtpc_params){ q->p.loop, c->myhostname, q->p.tls, &qs->t,
				   &qmgr_smtpc_ops, qs };
	rc = smtpc_start(&p, &qs->s);
	if (rc < 0) {
		d->fail_class = SMTPC_TEMPFAIL;
		snprintf(d->fail_reason, sizeof(d->fail_reason), "connect to %s: %s", t->host,
			 rl_strerror(rc));
		d->fail_dsn[0] = d->fail_relay[0] = '\0';
		dest_target_failed(d, target, 0);
		tlspol_unref(qs->polref);
		free(qs);
		return;
	}
	qs->next = q->sessions;
	if (qs->next)
		qs->next->prev = qs;
	q->sessions = qs;
	d->nsess++;
	q->nsess++;
}
