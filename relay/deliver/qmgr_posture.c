/*
 * qmgr_posture: the TLS posture counters of `tlsrelay report`, kept in
 * memory per (UTC day, destination domain) and added to the queue's
 * "posture" database through the committer, batched: every
 * QPOST_FLUSH_MS and when the scheduler stops.
 *
 * Memory is bounded: at most QPOST_MAX entries gather while one batch
 * of at most QPOST_MAX is being written.  An outcome that finds both full
 * is dropped and counted (these are statistics; mail never waits on them).
 * Loop thread, except posture_apply, which runs on the committer's worker
 * thread and touches only the batch, which the loop leaves alone until
 * posture_done.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "qmgr_int.h"

#define QPOST_MAX      64   /* (day, domain) entries per batch */
#define QPOST_FLUSH_MS 5000 /* how often the gathered counts are written */

struct qpost_ent {
	uint32_t day;
	char domain[DNS_NAME_MAX];
	struct queue_posture rec;
};

struct qposture {
	struct qmgr *q;
	struct qpost_ent cur[QPOST_MAX]; /* gathering */
	size_t ncur;
	struct qpost_ent flight[QPOST_MAX]; /* being written */
	size_t nflight;
	int inflight;
	uint64_t last_ms;
	unsigned long dropped;
	struct commit_req req;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct qposture *qmgr_posture_new(struct qmgr *q)
{
	struct qposture *p = calloc(1, sizeof(*p));

	if (p) {
		p->q = q;
		p->last_ms = now_ms();
	}
	return p;
}

void qmgr_posture_free(struct qposture *p)
{
	if (!p)
		return;
	RL_REQUIRE(!p->inflight);
	free(p);
}

/* Worker thread: add each entry of the batch in this write transaction. */
static int posture_apply(struct queue_txn *t, struct commit_req *r)
{
	struct qposture *p = (struct qposture *)((char *)r - offsetof(struct qposture, req));
	int rc;

	for (size_t i = 0; i < p->nflight; i++) {
		rc = queue_posture_add(t, p->flight[i].day, p->flight[i].domain, &p->flight[i].rec);
		/* A name the store cannot key (an address literal) is skipped. */
		if (rc < 0 && rc != -EINVAL)
			return rc;
	}
	return 0;
}

static void posture_done(struct commit_req *r)
{
	struct qposture *p = (struct qposture *)((char *)r - offsetof(struct qposture, req));

	if (r->result < 0)
		log_warn("posture counters: cannot write %zu entries: %s", p->nflight,
			 rl_strerror(r->result));
	p->inflight = 0;
	p->nflight = 0;
	/* Stopping: what gathered meanwhile goes too, before the committer idles. */
	if (p->q->stopping)
		qmgr_posture_flush(p);
}

void qmgr_posture_flush(struct qposture *p)
{
	if (!p || p->inflight || p->ncur == 0)
		return;
	memcpy(p->flight, p->cur, p->ncur * sizeof(p->cur[0]));
	p->nflight = p->ncur;
	p->ncur = 0;
	p->inflight = 1;
	p->last_ms = now_ms();
	memset(&p->req, 0, sizeof(p->req));
	p->req.apply = posture_apply;
	p->req.done = posture_done;
	committer_submit(p->q->p.commit, &p->req);
}

void qmgr_posture_tick(struct qposture *p)
{
	if (p && now_ms() - p->last_ms >= QPOST_FLUSH_MS)
		qmgr_posture_flush(p);
}

static struct qpost_ent *posture_slot(struct qposture *p, uint32_t day, const char *domain)
{
	for (size_t i = 0; i < p->ncur; i++)
		if (p->cur[i].day == day && strcasecmp(p->cur[i].domain, domain) == 0)
			return &p->cur[i];
	if (p->ncur == QPOST_MAX)
		qmgr_posture_flush(p);
	if (p->ncur == QPOST_MAX)
		return NULL;
	memset(&p->cur[p->ncur], 0, sizeof(p->cur[0]));
	p->cur[p->ncur].day = day;
	rl_strlcpy(p->cur[p->ncur].domain, domain, sizeof(p->cur[0].domain));
	return &p->cur[p->ncur++];
}

void qmgr_posture_note(struct qposture *p, const char *domain, int class, const char *relay,
		       const char *tls, const char *reason, const unsigned char *pk)
{
	int status = class == SMTPC_DELIVERED  ? QUEUE_PS_SENT
		     : class == SMTPC_PERMFAIL ? QUEUE_PS_BOUNCED
					       : QUEUE_PS_DEFERRED;
	int idx = strcmp(relay, "none") == 0 ? QUEUE_PT_NOSESS : queue_posture_tls_index(tls);
	struct qpost_ent *e;

	if (!p || class == SMTPC_NONE)
		return;
	if (idx < 0)
		idx = QUEUE_PT_ANONYMOUS; /* a word this table does not know yet */
	e = posture_slot(p, (uint32_t)(time(NULL) / 86400), domain);
	if (!e) {
		if (p->dropped++ == 0)
			log_warn(
			    "posture counters: too many destinations at once; some not counted");
		return;
	}
	queue_posture_count(&e->rec, status, idx, reason, status == QUEUE_PS_SENT ? pk : NULL);
}
