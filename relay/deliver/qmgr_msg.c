/*
 * qmgr_msg: messages in memory.  Taking a due message into the active set
 * (and the in-delivery mark for mailq), the checks made before each attempt,
 * its jobs (one per destination domain), the results a job hands back, and
 * the one writer of the contract's delivery log line.  What happens once
 * every job is done is in qmgr_fin.c.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn.h"
#include "log.h"
#include "mailq.h"
#include "msg.h"
#include "qmgr_int.h"

#define QMGR_HOPS_READ 262144  /* header bytes scanned for Received: (as smtpd) */

/* "1.23" seconds since arrival, as Postfix prints delay=. */
static void fmt_delay(char *out, size_t size, int64_t arrival)
{
	struct timespec ts;
	double d;

	clock_gettime(CLOCK_REALTIME, &ts);
	d = (double)(ts.tv_sec - arrival) + ts.tv_nsec / 1e9;
	if (d < 0)
		d = 0;
	snprintf(out, size, d < 10 ? "%.2f" : d < 100 ? "%.1f" : "%.0f", d);
}

const char *qmgr_class_status(int class)
{
	switch (class) {
	case SMTPC_DELIVERED: return "sent";
	case SMTPC_PERMFAIL: return "bounced";
	default: return "deferred";
	}
}

/*
 * The one writer of the contract's delivery line, Postfix's
 * "ID: to=<r>, relay=HOST[IP]:PORT, delay=S, dsn=X.Y.Z, status=S (text)";
 * note (may be "") goes before reason inside the parentheses.
 */
/*
 * The contract's delivery line.  tls= (the protection of that delivery)
 * only when a host answered: "relay=none" lines have none.
 */
void qmgr_log_rcpt(struct qmgr *q, const struct queue_msg *m, const char *rcpt, const char *relay,
		   const char *tls, const char *dsn, const char *status, const char *note,
		   const char *reason)
{
	char delay[32], tlsf[32] = "";

	fmt_delay(delay, sizeof(delay), m->arrival);
	if (strcmp(relay, "none") != 0)
		snprintf(tlsf, sizeof(tlsf), ", tls=%s", tls ? tls : "none");
	log_info("%s: to=<%s>, relay=%s, delay=%s%s, dsn=%s, status=%s (%s%s)", m->id, rcpt, relay,
		 delay, tlsf, dsn[0] ? dsn : "4.0.0", status, note, reason);
	/* The metrics count what this line says, as it says it. */
	metrics_count_delivery(q->p.metrics, status,
			       strcmp(relay, "none") != 0 && tls ? tls : "none");
}

static void job_free(struct qjob *j)
{
	if (!j)
		return;
	free(j->sm.rcpt);
	free(j->idx);
	free(j);
}

/* Results of a job go to its message; the last job finishes the message. */
void qmgr_job_done(struct qjob *j, const char *relay, const char *tls)
{
	struct qmsg *qm = j->qm;

	for (size_t i = 0; i < j->sm.nrcpt; i++) {
		struct smtpc_rcpt *r = &j->sm.rcpt[i];
		size_t k = j->idx[i];

		if (r->result == SMTPC_NONE && j->min_target && qm->res[k].result != SMTPC_NONE) {
			/* No later MX host got to it: the earlier 4xx stands. */
			r = &qm->res[k];
		} else if (r->result == SMTPC_NONE) {
			continue; /* cut short by shutdown: stays queued as it was */
		} else {
			qm->res[k] = *r;
			rl_strlcpy(qm->relay[k], relay, sizeof(qm->relay[k]));
			qm->tls[k] = tls;
		}
		qmgr_log_rcpt(qm->q, qm->m, r->address, qm->relay[k], qm->tls[k], r->dsn,
			      qmgr_class_status(r->result),
			      "", r->reason);
		qmgr_posture_note(qm->q->posture, j->d->domain, r->result, qm->relay[k], qm->tls[k],
				  r->reason, r == &qm->res[k] || !j->sm.has_pk ? NULL : j->sm.pk_sha256);
	}
	job_free(j);
	if (--qm->jobs == 0)
		qmgr_msg_finish(qm);
}

/* Give a job one outcome for all its recipients (no session got that far). */
void qmgr_job_fail(struct qjob *j, int class, const char *dsn, const char *reason,
		   const char *relay, const char *tls)
{
	for (size_t i = 0; i < j->sm.nrcpt; i++) {
		struct smtpc_rcpt *r = &j->sm.rcpt[i];

		r->result = class;
		rl_strlcpy(r->dsn, dsn, sizeof(r->dsn));
		rl_strlcpy(r->reason, reason, sizeof(r->reason));
		r->reply[0] = '\0';
	}
	qmgr_job_done(j, relay, tls);
}

/* What a message owns; also for one that never made it into the set. */
static void qmsg_parts_free(struct qmsg *qm)
{
	queue_msg_free(qm->m);
	free(qm->res);
	free(qm->relay);
	free(qm->tls);
	free(qm->upd);
	free(qm->dr);
	rl_buf_fini(&qm->dsn);
	rl_buf_fini(&qm->warn);
	free(qm);
}

void qmgr_msg_free(struct qmsg *qm)
{
	struct qmgr *q = qm->q;
	struct qmsg **pp = &q->msgs[qmgr_hash_str(qm->m->id, QMGR_MSG_BUCKETS)];

	while (*pp && *pp != qm)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = qm->hnext;
		q->nmsgs--;
	}
	qmsg_parts_free(qm);
}

static int job_read(void *arg, uint64_t off, char *buf, size_t len, size_t *got)
{
	struct qjob *j = arg;

	return queue_body_read(j->qm->q->p.q, j->qm->m->id, off, buf, len, got);
}

/*
 * The destination of an address: its domain in A-labels, lower case.  The
 * policy file's keys are A-labels too, so `xn--bcher-kva.example secure`
 * applies to mail for user@bücher.example (a U-label key would never
 * match, and the mail would go at default_tls_level).  *err (static) says
 * why a domain has no A-label form.
 */
static int domain_of(const char *addr, char *out, size_t size, const char **err)
{
	const char *at = strrchr(addr, '@');
	int rc;

	*err = NULL;
	rc = dns_alabel(at ? at + 1 : "", out, size, err);
	for (char *p = out; rc == 0 && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return rc;
}

/*
 * The destination domain of each recipient still to deliver ("" for the
 * others), with a hash of it, computed once per message: grouping then
 * costs one comparison of hashes per pair, not one IDNA conversion.
 */
struct qdoms {
	char (*name)[DNS_NAME_MAX];
	unsigned *hash;
};

static int qdoms_make(const struct qmsg *qm, struct qdoms *out)
{
	const struct queue_msg *m = qm->m;
	const char *err;

	out->name = calloc(m->nrcpt + 1, sizeof(*out->name));
	out->hash = calloc(m->nrcpt + 1, sizeof(*out->hash));
	if (!out->name || !out->hash)
		return -ENOMEM;
	for (size_t i = 0; i < m->nrcpt; i++) {
		if (!mailq_rcpt_listed(&m->rcpt[i]) || qm->res[i].result != SMTPC_NONE ||
		    domain_of(m->rcpt[i].address, out->name[i], DNS_NAME_MAX, &err) < 0)
			out->name[i][0] = '\0'; /* done, or refused by qmsg_precheck */
		out->hash[i] = qmgr_hash_str(out->name[i], UINT_MAX);
	}
	return 0;
}

/* Queue a job for the recipients of qm whose domain is that of recipient i. */
static int qmsg_job(struct qmsg *qm, const struct qdoms *dm, size_t i, unsigned char *done)
{
	const struct queue_msg *m = qm->m;
	size_t n = 0;
	struct qjob *j;
	struct qdest *d;

	/* Arrays of the job's own size: a message to 1,000 domains makes 1,000 small jobs. */
	for (size_t k = i; k < m->nrcpt; k++)
		n += !done[k] && dm->hash[k] == dm->hash[i] && !strcmp(dm->name[k], dm->name[i]);
	d = qmgr_dest_get(qm->q, dm->name[i]);
	j = calloc(1, sizeof(*j));
	if (j) {
		j->sm.rcpt = calloc(n, sizeof(*j->sm.rcpt));
		j->idx = calloc(n, sizeof(*j->idx));
	}
	if (!d || !j || !j->sm.rcpt || !j->idx) {
		job_free(j);
		return -ENOMEM;
	}
	for (size_t k = i; k < m->nrcpt && j->sm.nrcpt < n; k++) {
		if (done[k] || dm->hash[k] != dm->hash[i] || strcmp(dm->name[k], dm->name[i]))
			continue;
		done[k] = 1;
		j->idx[j->sm.nrcpt] = k;
		j->sm.rcpt[j->sm.nrcpt++].address = m->rcpt[k].address;
	}
	j->qm = qm;
	j->d = d;
	j->sm.id = m->id;
	j->sm.sender = m->sender;
	j->sm.flags = m->flags;
	j->sm.size = m->size;
	j->sm.read = job_read;
	j->sm.arg = j;
	*d->tail = j;
	d->tail = &j->next;
	d->nwait++;
	qm->jobs++;
	return 0;
}

/* One job per destination domain, over the recipients still to deliver. */
static int qmsg_jobs(struct qmsg *qm)
{
	const struct queue_msg *m = qm->m;
	unsigned char *done = calloc(m->nrcpt + 1, 1);
	struct qdoms dm = { 0 };
	int rc = done ? qdoms_make(qm, &dm) : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < m->nrcpt; i++) {
		if (!done[i] && dm.name[i][0])
			rc = qmsg_job(qm, &dm, i, done);
	}
	free(dm.name);
	free(dm.hash);
	free(done);
	return rc;
}

/* Worker thread: mark a message as in delivery (for mailq's '*'). */
static int qmsg_mark_apply(struct queue_txn *t, struct commit_req *r)
{
	struct qmsg *qm = (struct qmsg *)((char *)r - offsetof(struct qmsg, mark));

	return queue_active_set(t, r->msg.id, qm->q->pid);
}

static void qmsg_mark_done(struct commit_req *r)
{
	if (r->result < 0)
		log_warn("%s: cannot mark as in delivery: %s", r->msg.id, rl_strerror(r->result));
}

/* Bounce one recipient before any delivery (logged as qmgr_job_done does). */
static void qmsg_refuse(struct qmsg *qm, size_t k, const char *dsn, const char *reason)
{
	struct smtpc_rcpt *r = &qm->res[k];

	r->address = qm->m->rcpt[k].address;
	r->result = SMTPC_PERMFAIL;
	rl_strlcpy(r->dsn, dsn, sizeof(r->dsn));
	rl_strlcpy(r->reason, reason, sizeof(r->reason));
	r->reply[0] = '\0';
	rl_strlcpy(qm->relay[k], "none", sizeof(qm->relay[k]));
	qmgr_log_rcpt(qm->q, qm->m, r->address, "none", NULL, dsn, "bounced", "", reason);
}

/* An address no peer may see: one with a control character. */
static int addr_has_control(const char *a)
{
	for (const char *p = a; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return 1;
	return 0;
}

/* A recipient we never deliver to: a control character, an address literal. */
static const char *rcpt_unsendable(const char *a)
{
	const char *at = strrchr(a, '@');

	if (addr_has_control(a))
		return "bad address syntax (control character)";
	if (at && at[1] == '[')
		return "address literals are not relayed";
	return NULL;
}

/*
 * Checks made before each attempt (the hop count: the first only) on what smtpd and sendmail
 * should already have refused (records written by older versions, mail
 * injected by other means): a message that came with hopcount_limit
 * Received: fields is a mail loop and bounces (5.4.6, as Postfix), and addresses
 * that could inject commands or aim at an address literal are never sent.
 */
static void qmsg_precheck(struct qmsg *qm)
{
	const struct queue_msg *m = qm->m;
	int bad = addr_has_control(m->sender);
	char reason[SMTPC_REASON_MAX], dom[DNS_NAME_MAX], *hdr = NULL;
	size_t got = 0, hops = 0;

	/* The hop count does not change: it is read before the first attempt only. */
	if (m->attempts == 0)
		hdr = malloc(QMGR_HOPS_READ);
	if (hdr && queue_body_read(qm->q->p.q, m->id, 0, hdr, QMGR_HOPS_READ, &got) == 0)
		hops = msg_received_count(hdr, got);
	free(hdr);
	snprintf(reason, sizeof(reason), "too many hops (%zu Received: header fields)", hops);
	for (size_t k = 0; k < m->nrcpt; k++) {
		const char *why = rcpt_unsendable(m->rcpt[k].address), *idn = NULL;
		char idnwhy[SMTPC_REASON_MAX];

		if (!mailq_rcpt_listed(&m->rcpt[k]))
			continue;
		/*
		 * Our own Received: field (smtpd's or sendmail's) is one of them:
		 * the listener refused hopcount_limit fields before adding it.
		 */
		if (hops > qm->q->p.cfg->hopcount_limit) {
			qmsg_refuse(qm, k, "5.4.6", reason);
		} else if (bad) {
			qmsg_refuse(qm, k, "5.1.7", "bad sender address syntax");
		} else if (why) {
			qmsg_refuse(qm, k, why[0] == 'b' ? "5.1.3" : "5.7.1", why);
		} else if (domain_of(m->rcpt[k].address, dom, sizeof(dom), &idn) < 0) {
			snprintf(idnwhy, sizeof(idnwhy), "Host or domain name not found: %s",
				 idn ? idn : "not a valid domain name");
			qmsg_refuse(qm, k, "5.1.2", idnwhy);
		}
	}
}

/* Take one due message into the active set and hand out its jobs. */
void qmgr_msg_take(struct qmgr *q, struct queue_txn *t, const char *id)
{
	struct qmsg *qm = calloc(1, sizeof(*qm));
	unsigned h = qmgr_hash_str(id, QMGR_MSG_BUCKETS);
	int rc;

	if (!qm)
		return;
	qm->q = q;
	rc = queue_msg_load(t, id, &qm->m);
	if (rc == 0) {
		qm->res = calloc(qm->m->nrcpt + 1, sizeof(*qm->res));
		qm->relay = calloc(qm->m->nrcpt + 1, sizeof(*qm->relay));
		qm->tls = calloc(qm->m->nrcpt + 1, sizeof(*qm->tls));
		/* All the final write needs, so that finishing cannot fail. */
		qm->upd = calloc(qm->m->nrcpt + 1, sizeof(*qm->upd));
		qm->dr = calloc(qm->m->nrcpt + 1, sizeof(*qm->dr));
		if (!qm->res || !qm->relay || !qm->tls || !qm->upd || !qm->dr)
			rc = -ENOMEM;
	}
	if (rc < 0) {
		log_warn("%s: cannot load queued message: %s", id, rl_strerror(rc));
		qmsg_parts_free(qm);
		return;
	}
	rl_buf_init(&qm->dsn, q->p.cfg->max_message_size + QMGR_DSN_HEADERS_MAX * 2);
	rl_buf_init(&qm->warn, q->p.cfg->max_message_size + QMGR_DSN_HEADERS_MAX * 2);
	qm->hnext = q->msgs[h];
	q->msgs[h] = qm;
	q->nmsgs++;
	memcpy(qm->mark.msg.id, qm->m->id, QUEUE_ID_SIZE);
	qm->mark.apply = qmsg_mark_apply;
	qm->mark.done = qmsg_mark_done;
	committer_submit(q->p.commit, &qm->mark);
	if (time(NULL) - qm->m->arrival >= q->p.cfg->queue_lifetime) {
		qmgr_msg_finish(qm); /* expired before this attempt: bounce as it is */
		return;
	}
	qmsg_precheck(qm);
	/*
	 * Jobs handed out before a failure run; their end finishes the
	 * message (the rest stay as they were, due again).
	 */
	rc = qmsg_jobs(qm);
	if (rc < 0)
		log_warn("%s: cannot plan delivery: %s", qm->m->id, rl_strerror(rc));
	if (qm->jobs == 0)
		qmgr_msg_finish(qm);
}
