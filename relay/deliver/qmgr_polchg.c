/*
 * qmgr_polchg: after a policy reload, mail deferred for a domain whose
 * entry changed is made due now, and suspended destinations are tried
 * again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pol.h"
#include "qmgr_int.h"

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
	/* Rounds looked up under the old file (TLSA, MTA-STS only where no
	 * entry stood) start no new session; they are resolved again. */
	for (struct qlink *k = q->busy.head; k; k = k->next)
		k->d->stale = 1;
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
