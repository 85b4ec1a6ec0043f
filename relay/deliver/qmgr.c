/*
 * qmgr: due messages -> jobs per destination -> smtpc sessions -> one
 * durable write per finished message.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "dns.h"
#include "dsn.h"
#include "log.h"
#include "mailq.h"
#include "msg.h"
#include "pol.h"
#include "qmgr.h"
#include "queue.h"
#include "selfaddr.h"
#include "smtpc.h"
#include "tlspol.h"

#define QMGR_POLL_MS 500        /* schedule poll: queue control acts within 1 s */
#define QMGR_ACTIVE_LIMIT 10000 /* messages in memory at once (Postfix: 20000) */
#define QMGR_MSG_BUCKETS 4096
#define QMGR_DEST_BUCKETS 4096
#define QMGR_DUE_BATCH 1000     /* messages taken per poll */
#define QMGR_DSN_HEADERS_MAX 65536
#define QMGR_RELAY_MAX 320
#define QMGR_DEST_SESS_MAX 256 /* sessions to one destination, whatever the config */
#define QMGR_FIN_RETRY_MAX_MS 60000 /* cap of the backoff of a failed final write */
#define QMGR_DEAD_KEEP_MAX 10000 /* suspended destinations kept at most (memory bound) */
#define QMGR_HOPS_READ 262144  /* header bytes scanned for Received: (as smtpd) */

enum qdest_state { QD_IDLE = 0, QD_MX, QD_ADDR, QD_READY };

struct qmsg {
	struct qmsg *hnext;
	struct qmgr *q;
	struct queue_msg *m;
	struct smtpc_rcpt *res;            /* per recipient of m; NONE: not tried */
	char (*relay)[QMGR_RELAY_MAX];     /* per recipient: where it was tried */
	struct queue_rcpt *upd;            /* new states, for the final write */
	struct dsn_rcpt *dr;               /* bounced recipients, for the DSN */
	unsigned jobs;                     /* jobs not yet finished */
	int64_t now;                       /* time of the final write */
	int64_t next_attempt;
	int tried;
	struct rl_buf dsn;                 /* a DSN to queue with the update */
	struct queue_msg dsnmsg;
	struct queue_rcpt dsnrcpt;
	struct commit_req mark;            /* the in-delivery mark */
	struct commit_req fin;             /* the final write */
	struct qmsg *fnext;                /* in qmgr's list of writes to retry */
	unsigned fin_tries;                /* failed final writes so far */
};

struct qjob {
	struct qjob *next;
	struct qmsg *qm;
	struct qdest *d;
	struct smtpc_msg sm;
	size_t *idx; /* index in qm->m->rcpt of each sm.rcpt */
	size_t min_target; /* > 0: a 4xx elsewhere sent it on to later MX hosts */
	unsigned nhosts;   /* MX hosts that answered it with a 4xx this round */
};

struct addr_ctx {
	struct qdest *d;
	size_t host;
};

/*
 * Membership of a destination in one of qmgr's lists (intrusive, doubly
 * linked; d is NULL while not on the list).
 */
struct qlink {
	struct qlink *next, *prev;
	struct qdest *d;
};

struct qlist {
	struct qlink *head, *tail;
	size_t n;
};

struct qtarget {
	char host[DNS_NAME_MAX];
	unsigned pref;                 /* MX preference of host */
	struct sockaddr_storage addr;
};

struct qdest {
	struct qdest *hnext;
	struct qmgr *q;
	char domain[DNS_NAME_MAX];
	struct qjob *head, **tail;
	unsigned nwait;
	unsigned nsess;
	int state;
	int mxq;                       /* MX query in flight, -1 none */
	/*
	 * This round's MX hosts (NULL between rounds): a copy of only the
	 * hosts of the resolver's result, not the whole ~8.6 KB of it.
	 */
	struct dns_mx_host *hosts;
	size_t nhosts;
	int implicit;                  /* no MX: hosts[0] is the domain itself */
	struct dns_addr_result *addrs; /* per MX host */
	int *addrq;                    /* address queries in flight, -1 done */
	struct addr_ctx *actx;         /* callback arguments of those queries */
	size_t addr_pending;
	struct qtarget *targets;
	size_t ntargets, cursor;
	int fail_class;
	char fail_reason[SMTPC_REASON_MAX];
	char fail_dsn[16];
	char fail_relay[QMGR_RELAY_MAX]; /* "none" unless the host answered */
	/*
	 * Destination concurrency feedback (Postfix's qmgr): the window
	 * starts at smtp_initial_destination_concurrency, grows by one per
	 * session that got through and falls by one per session that did
	 * not.  A round in which every MX address failed and no session got
	 * through marks the destination dead until dead_until: its mail is
	 * deferred at once with "delivery temporarily suspended: REASON"
	 * instead of tying up sessions (a tarpit cannot starve the others).
	 */
	unsigned win;
	int proven;                    /* a server of it answered a transaction */
	int round_ok;                  /* a session got through this round */
	unsigned nanswered;            /* hosts that answered and failed, this round */
	int64_t dead_until;
	char dead_reason[SMTPC_REASON_MAX];
	char dead_dsn[16];
	struct qlink wait;             /* in q->waitq: waiting for a session slot */
	struct qlink busy;             /* in q->busy: may have jobs, sessions, lookups */
	struct qlink dead;             /* in q->dead: suspended, by dead_until */
};

#define QMGR_NAMES_MAX 16

struct qsess {
	struct qsess *next, *prev;
	struct qdest *d;
	struct smtpc *s;
	struct qjob *job;
	size_t target;
	struct smtpc_target t;
	struct tlspol *polref;             /* the policy snapshot ps came from */
	struct pol_peer_sess ps;           /* what t.pol points to */
	unsigned taken;                    /* messages it was given */
	unsigned replied;                  /* of those, answered by the server */
};

struct qmgr {
	struct qmgr_params p;
	uv_timer_t timer;
	struct dns *dns;
	struct smtpc_tls tls;
	gnutls_x509_trust_list_t trust;    /* tls_ca_file or the system store */
	struct qmsg *msgs[QMGR_MSG_BUCKETS];
	unsigned nmsgs;
	struct qdest *dests[QMGR_DEST_BUCKETS]; /* every destination, by domain */
	/*
	 * Periodic work visits these lists only, never the whole table:
	 * busy holds the destinations that got jobs and have not been seen
	 * idle by a poll since; dead the suspended ones, soonest end first.
	 * A destination on neither is freed.
	 */
	struct qlist busy, dead;
	struct qlist waitq;                /* waiting for a session slot, oldest first */
	struct qsess *sessions;
	unsigned nsess;
	struct selfaddr self;              /* addresses that loop back to us */
	uint64_t flush_gen;                /* `queue flush` counter last seen */
	int flush_seen;
	uint32_t pid;
	int stopping;
	int stop_reported;                 /* p.stopped ran */
	uv_timer_t grace;
	uv_timer_t fin_timer;              /* retries failed final writes */
	struct qmsg *finq;                 /* messages whose final write failed */
	int timers_open;
	int trimmed;                       /* memory handed back since the last work */
};

static void dest_kick(struct qdest *d);
static void qmgr_grant(struct qmgr *q);
static void qmsg_finish(struct qmsg *qm);
static void qmgr_check_stopped(struct qmgr *q);

static unsigned hash_str(const char *s, unsigned buckets)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % buckets;
}

static struct qmsg *qmsg_find(struct qmgr *q, const char *id)
{
	struct qmsg *m = q->msgs[hash_str(id, QMGR_MSG_BUCKETS)];

	while (m && strcmp(m->m->id, id) != 0)
		m = m->hnext;
	return m;
}

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

static struct qdest *dest_get(struct qmgr *q, const char *domain)
{
	unsigned h = hash_str(domain, QMGR_DEST_BUCKETS);
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

static void dest_unwait(struct qdest *d)
{
	qlist_remove(&d->q->waitq, &d->wait);
}

/* The most sessions a destination may ever have. */
static unsigned dest_limit(const struct qdest *d)
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
	unsigned lim = dest_limit(d);
	const struct qmgr *q = d->q;

	if (!d->proven && q->nsess * 2 >= q->p.cfg->smtp_max_connections)
		lim = 1;
	return d->win < lim ? d->win : lim;
}

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

static const char *class_status(int class)
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
static void log_rcpt(const struct queue_msg *m, const char *rcpt, const char *relay,
		     const char *dsn, const char *status, const char *note, const char *reason)
{
	char delay[32];

	fmt_delay(delay, sizeof(delay), m->arrival);
	log_info("%s: to=<%s>, relay=%s, delay=%s, dsn=%s, status=%s (%s%s)", m->id, rcpt, relay,
		 delay, dsn[0] ? dsn : "4.0.0", status, note, reason);
}

/* --- jobs --------------------------------------------------------------- */

static void job_free(struct qjob *j)
{
	if (!j)
		return;
	free(j->sm.rcpt);
	free(j->idx);
	free(j);
}

/* Results of a job go to its message; the last job finishes the message. */
static void job_done(struct qjob *j, const char *relay)
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
		}
		log_rcpt(qm->m, r->address, qm->relay[k], r->dsn, class_status(r->result), "",
			 r->reason);
	}
	job_free(j);
	if (--qm->jobs == 0)
		qmsg_finish(qm);
}

/* Give a job one outcome for all its recipients (no session got that far). */
static void job_fail(struct qjob *j, int class, const char *dsn, const char *reason,
		     const char *relay)
{
	for (size_t i = 0; i < j->sm.nrcpt; i++) {
		struct smtpc_rcpt *r = &j->sm.rcpt[i];

		r->result = class;
		rl_strlcpy(r->dsn, dsn, sizeof(r->dsn));
		rl_strlcpy(r->reason, reason, sizeof(r->reason));
		r->reply[0] = '\0';
	}
	job_done(j, relay);
}

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
static struct qjob *dest_pop(struct qdest *d, size_t target)
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
static size_t dest_next_target(const struct qdest *d)
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
static size_t dest_start_target(const struct qdest *d)
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
		*pp = j->next;
		if (d->tail == &j->next)
			d->tail = pp;
		d->nwait--;
		j->next = done;
		done = j;
	}
	while ((j = done)) {
		done = j->next;
		j->next = NULL;
		job_done(j, "none");
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
static int job_send_on(struct qjob *j, size_t target, const char *relay)
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
		if (r.result != SMTPC_TEMPFAIL) {
			log_rcpt(qm->m, r.address, relay, r.dsn, class_status(r.result), "",
				 r.reason);
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

/*
 * Every waiting job of the destination gets the same outcome.  The caller
 * names the enhanced status along with the class (from the resolver's
 * result or the session's failure); NULL: the default of the class.
 */
static void dest_fail_all(struct qdest *d, int class, const char *dsn, const char *reason)
{
	const char *relay = d->fail_relay[0] ? d->fail_relay : "none";
	struct qjob *j;

	if (!dsn || !dsn[0])
		dsn = class == SMTPC_PERMFAIL ? "5.4.4" : class == SMTPC_POLICYFAIL ? "4.7.5" :
										    "4.4.3";
	while ((j = dest_pop(d, SIZE_MAX)))
		job_fail(j, class, dsn, reason, relay);
}

/*
 * What a resolver result that gives no host means for the mail: its class
 * and enhanced status, from the result's status (never from its text).
 * RFC 7505 section 4.2: a null MX bounces with 5.1.10; RFC 3463: a domain
 * that does not exist is a bad destination system address (5.1.2; Postfix
 * says 5.4.4); anything else (SERVFAIL, timeout, bogus, MX records that
 * name no usable host) is a directory server failure, retried (4.4.3).
 */
static int dns_outcome(int status, int null_mx, const char **dsn)
{
	if (null_mx) {
		*dsn = "5.1.10";
		return SMTPC_PERMFAIL;
	}
	if (status == DNS_NXDOMAIN) {
		*dsn = "5.1.2";
		return SMTPC_PERMFAIL;
	}
	*dsn = "4.4.3";
	return SMTPC_TEMPFAIL;
}

/* The address lookups of the round, once over or cancelled. */
static void dest_addrs_free(struct qdest *d)
{
	free(d->addrs);
	free(d->addrq);
	free(d->actx);
	d->actx = NULL;
	d->addrs = NULL;
	d->addrq = NULL;
}

/* The round is over: forget the MX hosts; the next jobs resolve afresh. */
static void dest_reset(struct qdest *d)
{
	if (d->addrq && d->hosts) {
		for (size_t i = 0; i < d->nhosts; i++) {
			if (d->addrq[i] >= 0)
				dns_cancel(d->q->dns, d->addrq[i]);
		}
	}
	if (d->mxq >= 0)
		dns_cancel(d->q->dns, d->mxq);
	d->mxq = -1;
	free(d->hosts);
	d->hosts = NULL;
	d->nhosts = 0;
	dest_unwait(d);
	d->round_ok = 0;
	d->nanswered = 0;
	dest_addrs_free(d);
	free(d->targets);
	d->targets = NULL;
	d->ntargets = d->cursor = d->addr_pending = 0;
	d->state = QD_IDLE;
	d->fail_class = 0;
	d->fail_reason[0] = '\0';
	d->fail_dsn[0] = '\0';
	d->fail_relay[0] = '\0';
}

/* --- sessions ----------------------------------------------------------- */

static struct smtpc_msg *sess_next(struct smtpc *s, void *arg)
{
	struct qsess *qs = arg;
	struct qjob *j = qs->d->q->stopping ? NULL : dest_pop(qs->d, qs->target);

	(void)s;
	qs->job = j;
	qs->taken += j != NULL;
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
	if (!job_send_on(j, qs->target, smtpc_relay(s)))
		job_done(j, smtpc_relay(s));
}

static void sess_start(struct qdest *d, size_t target, int no_starttls);

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
	if (good && d->win < dest_limit(d))
		d->win++;
	else if (bad && d->win > 1)
		d->win--;
	if (!established && plain_retry && !q->stopping) {
		/* `may`: the handshake failed, so try the same host in clear. */
		sess_start(d, target, 1);
	} else if (!established) {
		d->fail_class = class;
		rl_strlcpy(d->fail_reason, reason, sizeof(d->fail_reason));
		rl_strlcpy(d->fail_dsn, smtpc_fail_dsn(s), sizeof(d->fail_dsn));
		rl_strlcpy(d->fail_relay, smtpc_connected(s) ? smtpc_relay(s) : "none",
			   sizeof(d->fail_relay));
		dest_target_failed(d, target, smtpc_handshaken(s));
	}
	/* A freed slot goes to the destination that has waited longest. */
	qmgr_grant(q);
	dest_kick(d);
	qmgr_check_stopped(q);
}

static const struct smtpc_ops qmgr_smtpc_ops = { sess_next, sess_msg_done, sess_closed };

/*
 * The TLS policy of a session: the entry of the policy file in force for
 * the destination (or default_tls_level), resolved for this MX host.  The
 * session keeps a reference to the snapshot, so a reload meanwhile changes
 * only sessions started after it.
 */
static int sess_policy(struct qsess *qs, const struct qtarget *t, char *reason, size_t rsize)
{
	struct qmgr *q = qs->d->q;

	if (tlspol_resolve(*q->p.pol, qs->d->domain, t->host, q->p.cfg->default_tls_level,
			   q->trust, &qs->ps, reason, rsize) < 0)
		return -1;
	qs->polref = tlspol_ref(*q->p.pol);
	qs->t.pol = &qs->ps.pol;
	return 0;
}

static void sess_start(struct qdest *d, size_t target, int no_starttls)
{
	struct qmgr *q = d->q;
	const struct cfg *c = q->p.cfg;
	struct qsess *qs = calloc(1, sizeof(*qs));
	struct smtpc_params p;
	struct qtarget *t = &d->targets[target];
	int rc;

	if (!qs) {
		/* Move on, or dest_kick() would ask for this target forever. */
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
	if (sess_policy(qs, t, d->fail_reason, sizeof(d->fail_reason)) < 0) {
		/* A host name that cannot be matched fails closed, like a bad cert. */
		d->fail_class = SMTPC_POLICYFAIL;
		d->fail_dsn[0] = d->fail_relay[0] = '\0';
		dest_target_failed(d, target, 0);
		free(qs);
		return;
	}
	p = (struct smtpc_params){ q->p.loop, c->myhostname, &q->tls, &qs->t,
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

/* --- resolution --------------------------------------------------------- */

/*
 * "Loops back to myself" (Postfix's smtp_addr.c): the lowest preference of
 * an MX host with an address that is ourselves (or unspecified), UINT_MAX
 * when none is.  Hosts from that preference on are never connected to: we
 * would be talking to ourselves (a mail loop), or we are a backup MX of
 * the domain and those hosts are no better than us.
 */
static unsigned dest_self_pref(const struct qdest *d)
{
	unsigned best = UINT_MAX;

	for (size_t i = 0; i < d->nhosts; i++) {
		for (size_t k = 0; d->addrs[i].status == DNS_OK && k < d->addrs[i].naddr; k++) {
			const struct sockaddr *sa = (const struct sockaddr *)&d->addrs[i].addr[k].sa;

			if (selfaddr_is_self(&d->q->self, sa) && d->hosts[i].pref < best)
				best = d->hosts[i].pref;
		}
	}
	return best;
}

/*
 * The addresses to try, in MX order: none that loops back to us, and at
 * most smtp_mx_address_limit of them (Postfix's limit: a domain listing
 * hundreds of addresses cannot aim the relay at all of them).  Returns 1
 * when the best MX is ourselves (the mail must bounce), else 0.
 */
static int dest_targets(struct qdest *d)
{
	const struct cfg *c = d->q->p.cfg;
	unsigned self;
	size_t n = 0;

	if (d->q->self.port != c->remote_port) /* changed by a reload */
		selfaddr_init(&d->q->self, c);
	self = dest_self_pref(d);
	/* Room for the addresses there are, not for the limit (memory per destination). */
	for (size_t i = 0; i < d->nhosts; i++)
		n += d->addrs[i].status == DNS_OK ? d->addrs[i].naddr : 0;
	if (n > c->smtp_mx_address_limit)
		n = c->smtp_mx_address_limit;
	d->targets = calloc(n ? n : 1, sizeof(*d->targets));
	for (size_t i = 0; d->targets && i < d->nhosts; i++) {
		if (d->hosts[i].pref >= self)
			break; /* hosts come by preference */
		for (size_t k = 0; d->addrs[i].status == DNS_OK && k < d->addrs[i].naddr; k++) {
			struct qtarget *t = &d->targets[d->ntargets];

			if (d->ntargets == n)
				break;
			d->ntargets++;
			rl_strlcpy(t->host, d->hosts[i].name, sizeof(t->host));
			t->pref = d->hosts[i].pref;
			t->addr = d->addrs[i].addr[k].sa;
			if (t->addr.ss_family == AF_INET)
				((struct sockaddr_in *)&t->addr)->sin_port = htons((uint16_t)c->remote_port);
			else
				((struct sockaddr_in6 *)&t->addr)->sin6_port = htons((uint16_t)c->remote_port);
		}
	}
	/*
	 * Bounce only when we are the best MX (Postfix's "loops back to
	 * myself"); when better hosts exist but gave no address, the mail
	 * waits for them.
	 */
	return self != UINT_MAX && d->ntargets == 0 && d->nhosts > 0 &&
	       self <= d->hosts[0].pref;
}

static void dest_addr_cb(void *arg, const struct dns_addr_result *r)
{
	struct addr_ctx *ac = arg;
	struct qdest *d = ac->d;
	char why[SMTPC_REASON_MAX];
	const char *dsn;
	int temp = 0, class;

	d->addrs[ac->host] = *r;
	d->addrq[ac->host] = -1;
	if (--d->addr_pending > 0)
		return;
	if (dest_targets(d)) {
		/* The best MX is ourselves: Postfix bounces such mail (5.4.6). */
		snprintf(d->fail_reason, sizeof(d->fail_reason),
			 "mail for %s loops back to myself", d->domain);
		dest_fail_all(d, SMTPC_PERMFAIL, "5.4.6", d->fail_reason);
		dest_reset(d);
		return;
	}
	if (d->ntargets > 0) {
		/* The targets hold all the round needs from the lookups. */
		dest_addrs_free(d);
		d->state = QD_READY;
		dest_kick(d);
		return;
	}
	for (size_t i = 0; i < d->nhosts; i++)
		temp |= d->addrs[i].status == DNS_TEMPFAIL || d->addrs[i].status == DNS_BOGUS;
	if (d->implicit && !temp) {
		/* No MX and no address: the domain has no mail host at all. */
		dns_fail_text(why, sizeof(why), d->domain, "A", DNS_NXDOMAIN, "Host not found");
		class = dns_outcome(DNS_NXDOMAIN, 0, &dsn);
		dest_fail_all(d, class, dsn, why);
	} else {
		dest_fail_all(d, SMTPC_TEMPFAIL, "4.4.3",
			      "no usable address for the MX hosts of the domain");
	}
	dest_reset(d);
}

static void dest_mx_cb(void *arg, const struct dns_mx_result *r)
{
	struct qdest *d = arg;
	char why[SMTPC_REASON_MAX];
	const char *dsn;
	int class;

	d->mxq = -1;
	if (r->status != DNS_OK || r->null_mx || r->nhosts == 0) {
		/* The resolver words a null MX itself ("Domain D does not accept mail"). */
		if (r->null_mx)
			rl_strlcpy(why, r->why, sizeof(why));
		else
			dns_fail_text(why, sizeof(why), d->domain, "MX", r->status, r->why);
		class = dns_outcome(r->status, r->null_mx, &dsn);
		dest_fail_all(d, class, dsn, why);
		dest_reset(d);
		return;
	}
	d->hosts = calloc(r->nhosts, sizeof(*d->hosts));
	if (!d->hosts) {
		dest_fail_all(d, SMTPC_TEMPFAIL, "4.4.3", "out of memory");
		dest_reset(d);
		return;
	}
	memcpy(d->hosts, r->hosts, r->nhosts * sizeof(*d->hosts));
	d->nhosts = r->nhosts;
	d->implicit = r->implicit;
	d->addrs = calloc(r->nhosts, sizeof(*d->addrs));
	d->addrq = calloc(r->nhosts, sizeof(*d->addrq));
	d->actx = calloc(r->nhosts, sizeof(*d->actx));
	d->state = QD_ADDR;
	d->addr_pending = r->nhosts;
	for (size_t i = 0; i < r->nhosts; i++) {
		struct addr_ctx *ac = d->actx ? &d->actx[i] : NULL;
		int id;

		if (ac) {
			ac->d = d;
			ac->host = i;
		}
		id = ac && d->addrs && d->addrq ? dns_addrs(d->q->dns, r->hosts[i].name,
							    dest_addr_cb, ac) : -ENOMEM;
		if (id < 0) {
			if (d->addrs)
				d->addrs[i].status = DNS_TEMPFAIL;
			if (d->addrq)
				d->addrq[i] = -1;
			d->addr_pending--;
			continue;
		}
		d->addrq[i] = id;
	}
	if (d->addr_pending == 0) {
		dest_fail_all(d, SMTPC_TEMPFAIL, "4.4.3", "cannot look up the MX hosts of the domain");
		dest_reset(d);
	}
}

/* --- destinations ------------------------------------------------------- */

/* Is the destination suspended after a round in which every host failed? */
static int dest_dead(const struct qdest *d, int64_t now)
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
static void dest_defer_dead(struct qdest *d)
{
	char why[SMTPC_REASON_MAX];
	struct qjob *j;

	/* The reason is cut to fit; a truncated reason is still useful. */
	rl_strlcpy(why, "delivery temporarily suspended: ", sizeof(why));
	rl_strlcpy(why + strlen(why), d->dead_reason, sizeof(why) - strlen(why));
	while ((j = dest_pop(d, SIZE_MAX)))
		job_fail(j, SMTPC_TEMPFAIL, d->dead_dsn, why, "none");
}

/* Start the MX lookup of a new round; 0 if started (or failed already). */
static void dest_resolve(struct qdest *d)
{
	struct qmgr *q = d->q;

	if (dest_dead(d, (int64_t)time(NULL))) {
		dest_defer_dead(d);
		return;
	}
	d->state = QD_MX;
	d->mxq = dns_mx(q->dns, d->domain, dest_mx_cb, d);
	if (d->mxq < 0) {
		dest_fail_all(d, SMTPC_TEMPFAIL, "4.4.3", "cannot start a DNS lookup");
		dest_reset(d);
	}
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
		dest_resolve(d);
		return;
	}
	if (d->state != QD_READY)
		return;
	while (!q->stopping && d->nsess < dest_window(d)) {
		size_t t = dest_start_target(d);

		if (t == SIZE_MAX)
			break;
		if (max_new == 0 || q->nsess >= c->smtp_max_connections) {
			dest_wait(d);
			break;
		}
		max_new--;
		sess_start(d, t, 0); /* a failure moves the target on */
	}
	if (d->nsess > 0)
		return;
	/* No session left: either every MX failed, or the work is done. */
	if (d->nwait > 0 && dest_next_target(d) == SIZE_MAX) {
		if (!d->round_ok)
			dest_mark_dead(d);
		dest_fail_all(d, d->fail_class ? d->fail_class : SMTPC_TEMPFAIL, d->fail_dsn,
			      d->fail_reason[0] ? d->fail_reason : "no MX host could be reached");
	}
	if (d->nwait == 0 || q->stopping)
		dest_reset(d);
}

/*
 * Hand free session slots to the destinations waiting for them, oldest
 * first, one slot at a time (round robin): a destination that keeps its
 * sessions busy, or fails them, cannot take every freed slot for itself.
 */
static void qmgr_grant(struct qmgr *q)
{
	const struct cfg *c = q->p.cfg;
	struct qdest *d;

	while (!q->stopping && q->nsess < c->smtp_max_connections && q->waitq.head) {
		d = q->waitq.head->d;
		dest_unwait(d);
		dest_kick_n(d, 1);
	}
}

static void dest_kick(struct qdest *d)
{
	qmgr_grant(d->q);
	dest_kick_n(d, UINT_MAX);
}

/* Only where no callback of d can be on the stack: it has no work left. */
static void dest_free(struct qdest *d)
{
	struct qmgr *q = d->q;
	struct qdest **pp = &q->dests[hash_str(d->domain, QMGR_DEST_BUCKETS)];

	while (*pp && *pp != d)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = d->hnext;
	dest_unwait(d);
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
	while (q->dead.head && !dest_dead(q->dead.head->d, now)) {
		struct qdest *d = q->dead.head->d;

		qlist_remove(&q->dead, &d->dead);
		if (!d->busy.d)
			dest_free(d);
	}
}

/*
 * The poll: destinations with waiting jobs start sessions.  Those with
 * nothing to do leave the busy list here (a safe point: no callback of
 * theirs is on the stack) and are freed unless suspended, so memory
 * follows the mail in delivery, not every domain ever seen, and the cost
 * of a poll follows the destinations with work, not those known.
 */
static void qmgr_kick_all(struct qmgr *q)
{
	qmgr_grant(q);
	/* Nothing below frees or unlists another destination than d. */
	for (struct qlink *k = q->busy.head, *next; k; k = next) {
		struct qdest *d = k->d;

		next = k->next;
		if (d->nwait > 0) {
			dest_kick(d);
		} else if (dest_idle(d)) {
			qlist_remove(&q->busy, &d->busy);
			if (!d->dead.d)
				dest_free(d);
		}
	}
	qmgr_expire_dead(q, (int64_t)time(NULL));
	qmgr_trim(q);
}

/* `queue flush` or a policy change: suspended destinations are tried again. */
static void qmgr_revive_all(struct qmgr *q)
{
	while (q->dead.head) {
		struct qdest *d = q->dead.head->d;

		d->dead_until = 0;
		qlist_remove(&q->dead, &d->dead);
		if (!d->busy.d)
			dest_free(d);
	}
}

/* --- messages ----------------------------------------------------------- */

static void qmsg_free(struct qmsg *qm)
{
	struct qmgr *q = qm->q;
	struct qmsg **pp = &q->msgs[hash_str(qm->m->id, QMGR_MSG_BUCKETS)];

	while (*pp && *pp != qm)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = qm->hnext;
		q->nmsgs--;
	}
	queue_msg_free(qm->m);
	free(qm->res);
	free(qm->relay);
	free(qm->upd);
	free(qm->dr);
	rl_buf_fini(&qm->dsn);
	free(qm);
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
		out->hash[i] = hash_str(out->name[i], UINT_MAX);
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
	d = dest_get(qm->q, dm->name[i]);
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

/* Bounce one recipient before any delivery (logged as job_done does). */
static void qmsg_refuse(struct qmsg *qm, size_t k, const char *dsn, const char *reason)
{
	struct smtpc_rcpt *r = &qm->res[k];

	r->address = qm->m->rcpt[k].address;
	r->result = SMTPC_PERMFAIL;
	rl_strlcpy(r->dsn, dsn, sizeof(r->dsn));
	rl_strlcpy(r->reason, reason, sizeof(r->reason));
	r->reply[0] = '\0';
	rl_strlcpy(qm->relay[k], "none", sizeof(qm->relay[k]));
	log_rcpt(qm->m, r->address, "none", dsn, "bounced", "", reason);
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
static void qmgr_take(struct qmgr *q, struct queue_txn *t, const char *id)
{
	struct qmsg *qm = calloc(1, sizeof(*qm));
	unsigned h = hash_str(id, QMGR_MSG_BUCKETS);
	int rc;

	if (!qm)
		return;
	qm->q = q;
	rc = queue_msg_load(t, id, &qm->m);
	if (rc == 0) {
		qm->res = calloc(qm->m->nrcpt + 1, sizeof(*qm->res));
		qm->relay = calloc(qm->m->nrcpt + 1, sizeof(*qm->relay));
		/* All the final write needs, so that finishing cannot fail. */
		qm->upd = calloc(qm->m->nrcpt + 1, sizeof(*qm->upd));
		qm->dr = calloc(qm->m->nrcpt + 1, sizeof(*qm->dr));
		if (!qm->res || !qm->relay || !qm->upd || !qm->dr)
			rc = -ENOMEM;
	}
	if (rc < 0) {
		log_warn("%s: cannot load queued message: %s", id, rl_strerror(rc));
		if (qm->m)
			queue_msg_free(qm->m);
		free(qm->res);
		free(qm->relay);
		free(qm->upd);
		free(qm->dr);
		free(qm);
		return;
	}
	rl_buf_init(&qm->dsn, q->p.cfg->max_message_size + QMGR_DSN_HEADERS_MAX * 2);
	qm->hnext = q->msgs[h];
	q->msgs[h] = qm;
	q->nmsgs++;
	memcpy(qm->mark.msg.id, qm->m->id, QUEUE_ID_SIZE);
	qm->mark.apply = qmsg_mark_apply;
	qm->mark.done = qmsg_mark_done;
	committer_submit(q->p.commit, &qm->mark);
	if (time(NULL) - qm->m->arrival >= q->p.cfg->queue_lifetime) {
		qmsg_finish(qm); /* expired before this attempt: bounce as it is */
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
		qmsg_finish(qm);
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
			qmgr_take(q, t, ids[i]);
	}
	queue_txn_abort(t);
	free(ids);
	if (rc < 0)
		log_warn("cannot read the queue schedule: %s", rl_strerror(rc));
	qmgr_kick_all(q);
}

static void qmgr_timer_cb(uv_timer_t *t)
{
	qmgr_poll(t->data);
}

/* Backoff: retry_min doubling per attempt, at most retry_max (Postfix-like). */
static int64_t qmgr_backoff(const struct cfg *c, uint32_t attempts)
{
	int64_t d = c->retry_min;

	for (uint32_t i = 1; i < attempts && d < c->retry_max; i++)
		d *= 2;
	return d < c->retry_max ? d : c->retry_max;
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
	int rc = queue_msg_load(t, qm->m->id, &cur), left = 0;

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
	rc = left ? queue_msg_update(t, cur) : queue_msg_delete(t, cur->id);
	if (rc == 0) {
		rc = queue_active_clear(t, cur->id);
		rc = rc == RL_ENOTFOUND ? 0 : rc;
	}
	if (rc == 0 && qm->dsn.len)
		rc = queue_msg_insert(t, &qm->dsnmsg, qm->dsn.data, qm->dsn.len);
	queue_msg_free(cur);
	return rc;
}

static void qmgr_fin_retry_cb(uv_timer_t *t)
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
	qmsg_free(qm);
	qmgr_check_stopped(q);
}

/* A DSN for the bounced recipients, to the sender (never for a bounce). */
static void qmsg_dsn(struct qmsg *qm, const struct dsn_rcpt *dr, size_t n)
{
	const struct cfg *c = qm->q->p.cfg;
	char headers[QMGR_DSN_HEADERS_MAX], boundary[128], msgid[256];
	struct dsn_info info;
	size_t got = 0;

	if (n == 0 || !qm->m->sender[0] || (qm->m->flags & QUEUE_F_BOUNCE))
		return;
	if (queue_body_read(qm->q->p.q, qm->m->id, 0, headers, sizeof(headers), &got) < 0)
		got = 0;
	queue_id_make(qm->dsnmsg.id, qm->now, 0);
	qm->dsnmsg.id[0] = '\0'; /* the queue picks the final ID */
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", qm->m->id, (long long)qm->now,
		 c->myhostname);
	snprintf(msgid, sizeof(msgid), "%lld.%s.bounce@%s", (long long)qm->now, qm->m->id,
		 c->myhostname);
	info = (struct dsn_info){ c->myhostname, qm->m->id, qm->m->sender, qm->m->arrival,
				  qm->now, boundary, msgid };
	if (dsn_build(&qm->dsn, &info, dr, n, headers, got) < 0) {
		log_err("%s: cannot build a non-delivery notification", qm->m->id);
		rl_buf_reset(&qm->dsn);
		return;
	}
	qm->dsnrcpt.address = qm->m->sender;
	qm->dsnmsg.sender = "";
	qm->dsnmsg.arrival = qm->dsnmsg.next_attempt = qm->now;
	qm->dsnmsg.flags = QUEUE_F_BOUNCE;
	qm->dsnmsg.nrcpt = 1;
	qm->dsnmsg.rcpt = &qm->dsnrcpt;
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
		if (u->state != QUEUE_RCPT_BOUNCED)
			continue;
		/* The contract knows sent|deferred|bounced: an expiry is a bounce. */
		if (class != SMTPC_PERMFAIL)
			log_rcpt(m, u->address, "none", u->dsn, "bounced",
				 "message expired after queue_lifetime: ", r->reason);
		dr[nd++] = (struct dsn_rcpt){ u->address, "failed", u->dsn,
					      strcmp(qm->relay[i], "none") ? qm->relay[i] : NULL,
					      r->reply[0] ? r->reply : r->reason, r->reply[0] != 0 };
	}
	return nd;
}

static void qmsg_finish(struct qmsg *qm)
{
	const struct cfg *c = qm->q->p.cfg;
	int expired;
	size_t nd;

	qm->now = time(NULL);
	expired = qm->now - qm->m->arrival >= c->queue_lifetime;
	nd = qmsg_outcome(qm, qm->dr, expired);
	qm->next_attempt = qm->now + qmgr_backoff(c, qm->m->attempts + 1);
	qmsg_dsn(qm, qm->dr, nd);
	memcpy(qm->fin.msg.id, qm->m->id, QUEUE_ID_SIZE);
	qm->fin.apply = qmsg_fin_apply;
	qm->fin.done = qmsg_fin_done;
	committer_submit(qm->q->p.commit, &qm->fin);
}

/* --- start and stop ----------------------------------------------------- */

static int qmgr_tls_init(struct qmgr *q)
{
	const struct cfg *c = q->p.cfg;
	struct rl_buf prio;
	int rc;

	struct rl_why why = { 0 };

	if (gnutls_certificate_allocate_credentials(&q->tls.cred) < 0)
		return -ENOMEM;
	/* Our own trust list for verify/secure; GnuTLS's is only for logging. */
	if (cert_trust_load(c->tls_ca_file, &q->trust, &why) < 0) {
		if (c->tls_ca_file) {
			log_err("cannot load tls_ca_file %s: %s", c->tls_ca_file,
				why.reason ? why.reason : "no certificates");
			return -1;
		}
		log_warn("no system trust store: verify and secure deliveries will be deferred");
		q->trust = NULL;
	}
	rc = c->tls_ca_file ? gnutls_certificate_set_x509_trust_file(q->tls.cred, c->tls_ca_file,
								      GNUTLS_X509_FMT_PEM)
			    : gnutls_certificate_set_x509_system_trust(q->tls.cred);
	if (rc < 0 && c->tls_ca_file) {
		log_err("cannot load tls_ca_file %s: %s", c->tls_ca_file, gnutls_strerror(rc));
		return -1;
	}
	if (c->tls_cert_file) {
		rc = gnutls_certificate_set_x509_key_file2(q->tls.cred, c->tls_cert_file,
							   c->tls_key_file, GNUTLS_X509_FMT_PEM,
							   NULL, 0);
		if (rc < 0) {
			log_err("cannot load tls_cert_file %s: %s", c->tls_cert_file,
				gnutls_strerror(rc));
			return -1;
		}
	}
	/* tls_protocols narrows the versions of tls_priority. */
	rl_buf_init(&prio, 4096);
	rc = tlspol_priority_text(c, 0, NULL, &prio);
	if (rc == 0)
		rc = rl_buf_append(&prio, "", 1);
	if (rc == 0) {
		rc = gnutls_priority_init2(&q->tls.prio, prio.data, NULL, 0);
		if (rc < 0)
			log_err("%s: bad tls_priority \"%s\": %s", q->p.cfg->path, prio.data,
				gnutls_strerror(rc));
	}
	rl_buf_fini(&prio);
	if (rc < 0)
		return -1;
	q->tls.loglevel = c->tls_loglevel;
	return 0;
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
	if (qmgr_tls_init(q) < 0)
		return RL_ECONFIG;
	rc = dns_new(p->loop, p->cfg, &q->dns, err, sizeof(err));
	if (rc < 0) {
		log_err("cannot start the resolver: %s", err);
		return rc;
	}
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

static void qmgr_check_stopped(struct qmgr *q)
{
	if (!q->stopping || q->nsess > 0 || q->nmsgs > 0 || q->stop_reported)
		return;
	q->stop_reported = 1;
	if (q->timers_open) {
		uv_close((uv_handle_t *)&q->timer, qmgr_closed_cb);
		uv_close((uv_handle_t *)&q->grace, qmgr_closed_cb);
		uv_close((uv_handle_t *)&q->fin_timer, qmgr_closed_cb);
		q->timers_open = 0;
	}
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

/* --- policy changes ----------------------------------------------------- */

/*
 * A policy reload changed the entries of some keys: mail deferred for a
 * domain under one of them is made due now.  The write goes through the
 * committer (off the loop, with its fsync).  Finding that mail scans the
 * queue once per reload: reloads are rare and made by hand, and the scan
 * runs on the worker thread, so fresh mail is not held up by it.
 */
struct qpolchg {
	struct commit_req req;
	struct qmgr *q;
	char **keys;
	size_t nkeys, cap;
	char (*ids)[QUEUE_ID_SIZE];
	size_t nids, idcap;
	int64_t now;
	size_t made_due;
};

static int qpolchg_add_key(const char *key, void *arg)
{
	struct qpolchg *c = arg;

	if (c->nkeys == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		char **k = realloc(c->keys, cap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		c->keys = k;
		c->cap = cap;
	}
	c->keys[c->nkeys] = strdup(key);
	return c->keys[c->nkeys++] ? 0 : -ENOMEM;
}

static int qpolchg_affects(const struct qpolchg *c, const struct queue_msg *m)
{
	for (size_t i = 0; i < m->nrcpt; i++) {
		const char *at = strrchr(m->rcpt[i].address, '@');

		if (!at || m->rcpt[i].state != QUEUE_RCPT_DEFERRED)
			continue;
		for (size_t k = 0; k < c->nkeys; k++)
			if (pol_key_applies(c->keys[k], at + 1))
				return 1;
	}
	return 0;
}

static int qpolchg_collect(void *arg, const struct queue_msg *m)
{
	struct qpolchg *c = arg;

	if ((m->flags & QUEUE_F_HOLD) || m->next_attempt <= c->now || !qpolchg_affects(c, m))
		return 0;
	if (c->nids == c->idcap) {
		size_t cap = c->idcap ? c->idcap * 2 : 64;
		void *p = realloc(c->ids, cap * sizeof(*c->ids));

		if (!p)
			return -ENOMEM;
		c->ids = p;
		c->idcap = cap;
	}
	memcpy(c->ids[c->nids++], m->id, QUEUE_ID_SIZE);
	return 0;
}

/* Worker thread, inside the batch's write transaction. */
static int qpolchg_apply(struct queue_txn *t, struct commit_req *r)
{
	struct qpolchg *c = (struct qpolchg *)r;
	int rc;

	c->nids = 0;
	c->made_due = 0;
	rc = queue_foreach(t, qpolchg_collect, c);
	for (size_t i = 0; rc == 0 && i < c->nids; i++) {
		struct queue_msg *m = NULL;

		rc = queue_msg_load(t, c->ids[i], &m);
		if (rc == 0) {
			m->next_attempt = c->now;
			rc = queue_msg_update(t, m);
			c->made_due += rc == 0;
		}
		queue_msg_free(m);
	}
	return rc;
}

static void qpolchg_done(struct commit_req *r)
{
	struct qpolchg *c = (struct qpolchg *)r;

	if (r->result < 0)
		log_warn("policy change: cannot make deferred mail due: %s; it is retried "
			 "on its own schedule", rl_strerror(r->result));
	else if (c->made_due)
		log_info("policy change: %zu deferred message%s retried now", c->made_due,
			 c->made_due == 1 ? "" : "s");
	qmgr_wake(c->q);
	for (size_t i = 0; i < c->nkeys; i++)
		free(c->keys[i]);
	free(c->keys);
	free(c->ids);
	free(c);
}

void qmgr_policy_changed(struct qmgr *q, const struct pol_table *old, const struct pol_table *cur)
{
	struct qpolchg *c;

	if (!q || q->stopping)
		return;
	qmgr_revive_all(q); /* a host held back by policy may pass now */
	c = calloc(1, sizeof(*c));
	if (!c || pol_table_diff(old, cur, qpolchg_add_key, c) < 0) {
		log_warn("policy change: out of memory; deferred mail is retried on its own "
			 "schedule");
		if (c) {
			c->q = q;
			c->req.result = 0;
			qpolchg_done(&c->req);
		}
		return;
	}
	if (c->nkeys == 0) {
		free(c);
		return;
	}
	c->q = q;
	c->now = (int64_t)time(NULL);
	c->req.apply = qpolchg_apply;
	c->req.done = qpolchg_done;
	committer_submit(q->p.commit, &c->req);
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

		while ((j = dest_pop(d, SIZE_MAX)))
			job_done(j, "none"); /* never started: nothing changes */
		if (d->nsess == 0)
			dest_reset(d);
	}
	qmgr_check_stopped(q);
}

void qmgr_free(struct qmgr *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < QMGR_DEST_BUCKETS; i++)
		while (q->dests[i])
			dest_free(q->dests[i]);
	if (q->tls.cred)
		gnutls_certificate_free_credentials(q->tls.cred);
	if (q->tls.prio)
		gnutls_priority_deinit(q->tls.prio);
	if (q->trust)
		cert_trust_free(q->trust);
	dns_free(q->dns);
	free(q);
}
