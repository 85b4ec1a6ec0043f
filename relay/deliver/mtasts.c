/*
 * mtasts: TXT record, cache, fetch (RFC 8461 sections 3 and 5).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mtasts.h"
#include "pol_peer.h"

struct mreq {
	struct mreq *next, *prev;
	struct mtasts *m;
	int id;
	mtasts_cb cb;
	void *arg;
	unsigned flags;		   /* MTASTS_NO_STORE, MTASTS_FETCH */
	struct mtasts_report *rep; /* NULL: log the steps */
	int keep_cache;		   /* MTASTS_FETCH fetched although the cache was current */
	const char *failure;	   /* the fetch failed: its RFC 8460 result type */
	int dnsq;		   /* DNS lookup in flight, -1 none */
	int httpq;		   /* fetch in flight, 0 none */
	char domain[DNS_NAME_MAX];
	char host[DNS_NAME_MAX + 8]; /* mta-sts.DOMAIN */
	char txt_id[STS_ID_MAX + 1]; /* "" when the record gave none */
	/* The cached policy, when there is one that has not expired. */
	int cached;
	int stale; /* in the last quarter of its life: refresh it while mail flows */
	char cached_id[STS_ID_MAX + 1];
	struct sts_policy cpol;
	struct sts_policy fpol; /* the one just fetched */
};

/* A cache write on the committer's thread; frees itself when done. */
struct mwrite {
	struct commit_req req;
	char domain[DNS_NAME_MAX];
	struct queue_sts rec;
	char *body;
};

struct mtasts {
	struct mtasts_params p;
	struct mreq *reqs;
	int next_id;
};

struct mtasts *mtasts_new(const struct mtasts_params *p)
{
	struct mtasts *m = calloc(1, sizeof(*m));

	if (m)
		m->p = *p;
	return m;
}

static void mreq_unlink(struct mreq *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		r->m->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
}

static void mreq_stop(struct mreq *r)
{
	if (r->dnsq >= 0)
		dns_cancel(r->m->p.dns, r->dnsq);
	if (r->httpq > 0)
		https_cancel(r->m->p.https, r->httpq);
	r->dnsq = -1;
	r->httpq = 0;
}

void mtasts_free(struct mtasts *m)
{
	struct mreq *r;

	if (!m)
		return;
	while ((r = m->reqs)) {
		mreq_stop(r);
		mreq_unlink(r);
		free(r);
	}
	free(m);
}

void mtasts_cancel(struct mtasts *m, int id)
{
	for (struct mreq *r = m->reqs; r; r = r->next) {
		if (r->id == id) {
			mreq_stop(r);
			mreq_unlink(r);
			free(r);
			return;
		}
	}
}

/* Hand the outcome over and forget the request. */
static void mreq_done(struct mreq *r, const struct sts_policy *pol, const char *source,
		      const char *id)
{
	struct mtasts_result res = {POL_STS_NONE, NULL, source, id, r->failure};
	mtasts_cb cb = r->cb;
	void *arg = r->arg;

	if (pol && pol->mode != STS_MODE_NONE) {
		res.mode = pol->mode == STS_MODE_ENFORCE ? POL_STS_ENFORCE : POL_STS_TESTING;
		res.policy = pol;
	}
	mreq_unlink(r);
	cb(arg, &res);
	free(r);
}

/* No usable new policy: the cached one while it lasts, else none. */
static void mreq_fallback(struct mreq *r)
{
	if (r->cached)
		mreq_done(r, &r->cpol, "cache", r->cached_id);
	else
		mreq_done(r, NULL, "none", "");
}

/* Read the domain's cache entry; keep it when it parses and has not expired. */
static void mreq_read_cache(struct mreq *r)
{
	struct queue_txn *t = NULL;
	struct queue_sts rec;
	int64_t now = (int64_t)time(NULL);

	r->cached = 0;
	if (!r->m->p.q || queue_txn_begin(r->m->p.q, 0, &t) < 0)
		return;
	if (queue_sts_get(t, r->domain, &rec) == 0 && rec.expires > now &&
	    sts_policy_parse(rec.body, rec.len, &r->cpol, NULL) == 0) {
		r->cached = 1;
		r->stale = (rec.expires - now) * 4 < rec.expires - rec.fetched;
		rl_strlcpy(r->cached_id, rec.id, sizeof(r->cached_id));
	}
	queue_txn_abort(t);
	if (r->rep) {
		r->rep->cached = r->cached;
		r->rep->stale = r->cached && r->stale;
		rl_strlcpy(r->rep->cached_id, r->cached ? r->cached_id : "",
			   sizeof(r->rep->cached_id));
	}
}

static int mwrite_apply(struct queue_txn *t, struct commit_req *req)
{
	struct mwrite *w = (struct mwrite *)req;

	return queue_sts_put(t, w->domain, &w->rec);
}

static void mwrite_done(struct commit_req *req)
{
	struct mwrite *w = (struct mwrite *)req;

	if (req->result < 0)
		log_warn("mta-sts: %s: cannot cache the policy: %s", w->domain,
			 rl_strerror(req->result));
	free(w->body);
	free(w);
}

/* Store a fetched policy (best effort: a failure only costs a refetch). */
static void mreq_store(struct mreq *r, const char *body, size_t len, uint32_t max_age)
{
	struct mwrite *w = calloc(1, sizeof(*w));
	int64_t now = (int64_t)time(NULL);

	if (!w || !(w->body = malloc(len ? len : 1))) {
		free(w);
		return;
	}
	memcpy(w->body, body, len);
	rl_strlcpy(w->domain, r->domain, sizeof(w->domain));
	rl_strlcpy(w->rec.id, r->txt_id, sizeof(w->rec.id));
	w->rec.fetched = now;
	w->rec.expires = now + (int64_t)max_age;
	w->rec.body = w->body;
	w->rec.len = len;
	w->req.len = len; /* counts toward the batch's size */
	w->req.apply = mwrite_apply;
	w->req.done = mwrite_done;
	committer_submit(r->m->p.commit, &w->req);
}

/* No policy from the fetch (type: the RFC 8460 result type): say why, fall back. */
static void mreq_fail(struct mreq *r, const char *type, const char *why)
{
	r->failure = type;
	if (r->rep) {
		r->rep->fetch = MTASTS_FETCHED_FAILED;
		r->rep->fail_type = type;
		rl_strlcpy(r->rep->fail_why, why, sizeof(r->rep->fail_why));
	} else {
		log_info("mta-sts: %s: policy %s (%s): %s", r->domain,
			 strcmp(type, MTASTS_INVALID) == 0 ? "invalid" : "fetch failed", type, why);
	}
	mreq_fallback(r);
}

static void mreq_on_fetch(void *arg, const struct https_result *hr)
{
	struct mreq *r = arg;
	struct rl_why why = {0};

	r->httpq = 0;
	if (hr->status != HTTPS_OK) {
		/* RFC 8460 4.3.2.2: a policy host whose certificate fails PKIX
		 * validation is sts-webpki-invalid; any other failure to get
		 * the body is sts-policy-fetch-error. */
		mreq_fail(r, hr->status == HTTPS_CERT ? MTASTS_WEBPKI : MTASTS_FETCH_ERROR,
			  hr->why[0] ? hr->why : https_status_name(hr->status));
		return;
	}
	if (sts_policy_parse(hr->body, hr->body_len, &r->fpol, &why) < 0) {
		mreq_fail(r, MTASTS_INVALID, why.reason ? why.reason : "cannot parse");
		return;
	}
	if (r->rep) {
		r->rep->fetch = MTASTS_FETCHED_OK;
		r->rep->fetched = r->fpol;
	} else {
		log_info("mta-sts: %s: policy id %s fetched (mode %s, max_age %u)", r->domain,
			 r->txt_id, sts_mode_name(r->fpol.mode), (unsigned)r->fpol.max_age);
	}
	if (r->keep_cache) {
		/* Fetched only to be shown: the relay would have used the cache. */
		mreq_done(r, &r->cpol, "cache", r->cached_id);
		return;
	}
	if (!(r->flags & MTASTS_NO_STORE))
		mreq_store(r, hr->body, hr->body_len, r->fpol.max_age);
	mreq_done(r, &r->fpol, "fetched", r->txt_id);
}

static void mreq_on_addrs(void *arg, const struct dns_addr_result *a)
{
	struct mreq *r = arg;
	const struct cfg *c = r->m->p.cfg;
	struct https_req hq = {
	    .host = r->host,
	    .path = "/.well-known/mta-sts.txt",
	    .addr = a->addr,
	    .naddr = a->naddr,
	    .ca_file = c->tls_ca_file,
	    .timeout_ms = MTASTS_FETCH_TIMEOUT_MS,
	    .body_max = STS_POLICY_MAX,
	    .require_text_plain = 1,
	};
	char why[300];
	int id;

	r->dnsq = -1;
	if (a->status != DNS_OK || a->naddr == 0) {
		dns_fail_text(why, sizeof(why), r->host, "A", a->status, a->why);
		mreq_fail(r, MTASTS_FETCH_ERROR, why);
		return;
	}
	id = https_get(r->m->p.https, &hq, mreq_on_fetch, r);
	if (id <= 0) {
		mreq_fail(r, MTASTS_FETCH_ERROR, rl_strerror(id));
		return;
	}
	r->httpq = id;
}

/* The TXT step into the report: the id, or why there is none. */
static void mreq_report_txt(struct mreq *r, const struct dns_txt_result *t,
			    const struct rl_why *why)
{
	struct mtasts_report *rep = r->rep;
	char name[DNS_NAME_MAX + 16];

	rl_strlcpy(rep->txt_id, r->txt_id, sizeof(rep->txt_id));
	if (r->txt_id[0])
		return;
	snprintf(name, sizeof(name), "_mta-sts.%s", r->domain);
	if (t->status != DNS_OK)
		dns_fail_text(rep->txt_why, sizeof(rep->txt_why), name, "TXT", t->status, t->why);
	else if (why->code == RL_ENOTFOUND || t->nrec == 0)
		snprintf(rep->txt_why, sizeof(rep->txt_why), "no v=STSv1 record at %s", name);
	else
		snprintf(rep->txt_why, sizeof(rep->txt_why), "the record at %s is not usable: %s",
			 name, why->reason ? why->reason : rl_strerror(why->code));
}

static void mreq_on_txt(void *arg, const struct dns_txt_result *t)
{
	struct mreq *r = arg;
	struct sts_txt rrs[DNS_TXT_MAX];
	struct sts_record rec;
	struct rl_why why = {0};
	int id;

	r->dnsq = -1;
	mreq_read_cache(r);
	r->txt_id[0] = '\0';
	/* RFC 8461 3.1: exactly one STSv1 record; with records dropped
	 * (too many, too large) that cannot be told: no record. */
	if (t->status == DNS_OK && t->ndropped == 0) {
		for (size_t i = 0; i < t->nrec; i++)
			rrs[i] = (struct sts_txt){t->rec[i].data, t->rec[i].len};
		if (sts_txt_parse(rrs, t->nrec, &rec, &why) == 0)
			rl_strlcpy(r->txt_id, rec.id, sizeof(r->txt_id));
	}
	if (r->rep)
		mreq_report_txt(r, t, &why);
	if (!r->txt_id[0]) {
		/* No record (or a DNS failure): the cache decides, as it lasts. */
		mreq_fallback(r);
		return;
	}
	if (r->cached && !r->stale && strcmp(r->txt_id, r->cached_id) == 0) {
		if (!(r->flags & MTASTS_FETCH)) {
			mreq_done(r, &r->cpol, "cache", r->cached_id);
			return;
		}
		r->keep_cache = 1;
	}
	id = dns_addrs(r->m->p.dns, r->host, mreq_on_addrs, r);
	if (id < 0) {
		mreq_fallback(r);
		return;
	}
	r->dnsq = id;
}

int mtasts_lookup(struct mtasts *m, const char *domain, mtasts_cb cb, void *arg)
{
	return mtasts_lookup_report(m, domain, 0, NULL, cb, arg);
}

int mtasts_lookup_report(struct mtasts *m, const char *domain, unsigned flags,
			 struct mtasts_report *rep, mtasts_cb cb, void *arg)
{
	struct mreq *r;
	char name[DNS_NAME_MAX + 16];
	int id;

	RL_REQUIRE(m->p.commit || (flags & MTASTS_NO_STORE));
	if (rep)
		memset(rep, 0, sizeof(*rep));
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->m = m;
	r->cb = cb;
	r->arg = arg;
	r->flags = flags;
	r->rep = rep;
	r->dnsq = -1;
	rl_strlcpy(r->domain, domain, sizeof(r->domain));
	for (char *p = r->domain; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p); /* the cache key */
	if (snprintf(r->host, sizeof(r->host), "mta-sts.%s", domain) >= (int)sizeof(r->host) ||
	    snprintf(name, sizeof(name), "_mta-sts.%s", domain) >= (int)sizeof(name)) {
		free(r);
		return -EINVAL;
	}
	id = dns_txt(m->p.dns, name, mreq_on_txt, r);
	if (id < 0) {
		free(r);
		return id;
	}
	r->dnsq = id;
	r->id = ++m->next_id > 0 ? m->next_id : (m->next_id = 1);
	r->next = m->reqs;
	if (r->next)
		r->next->prev = r;
	m->reqs = r;
	return r->id;
}
