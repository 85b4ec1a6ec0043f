/*
 * tlsrpt_send: one day's TLS-RPT reports out (RFC 8460 section 3 and 5).
 *
 * Domains go one after another, each in steps on the loop: the
 * "_smtp._tls" TXT lookup, then each https: rua (address lookup, POST),
 * then one write transaction that queues a message per mailto: rua and
 * marks the day's record as sent, so that a report is never queued twice
 * (across restarts too).  A domain whose lookup fails temporarily or
 * whose POST fails is left unmarked, to be tried on the next run, and
 * counts as a failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns.h"
#include "https.h"
#include "log.h"
#include "sts.h"
#include "tlsrpt.h"

struct send_dom {
	char domain[QUEUE_STS_DOMAIN_MAX + 1];
	uint64_t ok, fail;
};

struct tlsrpt_send {
	struct tlsrpt_send_params p;
	struct send_dom *dom;
	size_t ndom, cap, cur;
	int failures;
	/* The domain in progress. */
	struct sts_tlsrpt rua;
	size_t https_next;
	int dom_failed;
	unsigned char *gz;
	size_t gzlen;
	char host[DNS_NAME_MAX], path[STS_URI_MAX + 1];
	unsigned port;
	uv_idle_t kick; /* the next step from a fresh loop turn */
	int kick_open;
	/* The write of the domain (mail + mark). */
	struct commit_req req;
	struct rl_buf *mail;
	size_t nmail;
};

static void send_next(struct tlsrpt_send *s);

static void domain_totals(const struct queue_tlsrpt *r, uint64_t *ok, uint64_t *fail)
{
	*ok = *fail = 0;
	for (size_t i = 0; i < r->npol; i++) {
		*ok += r->pol[i].ok;
		*fail += r->pol[i].fail;
	}
}

static int collect(void *arg, const char *domain, const struct queue_tlsrpt *rec)
{
	struct tlsrpt_send *s = arg;
	struct send_dom *d;

	if (rec->sent || rec->npol == 0)
		return 0;
	if (s->ndom == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct send_dom *n = realloc(s->dom, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->dom = n;
		s->cap = cap;
	}
	d = &s->dom[s->ndom++];
	rl_strlcpy(d->domain, domain, sizeof(d->domain));
	domain_totals(rec, &d->ok, &d->fail);
	return 0;
}

static void send_closed(uv_handle_t *h)
{
	struct tlsrpt_send *s = h->data;
	void (*done)(void *, int) = s->p.done;
	void *arg = s->p.arg;
	int failures = s->failures;

	free(s->dom);
	free(s);
	done(arg, failures);
}

static void send_finish(struct tlsrpt_send *s)
{
	uv_close((uv_handle_t *)&s->kick, send_closed);
}

static void send_kick_cb(uv_idle_t *h)
{
	struct tlsrpt_send *s = h->data;

	uv_idle_stop(h);
	send_next(s);
}

/* The next domain, from a fresh loop turn (never recursing). */
static void send_advance(struct tlsrpt_send *s)
{
	free(s->gz);
	s->gz = NULL;
	s->cur++;
	uv_idle_start(&s->kick, send_kick_cb);
}

static void dom_fail(struct tlsrpt_send *s, const char *what, const char *detail)
{
	log_warn("tlsrpt: %s: %s%s", s->dom[s->cur].domain, what, detail);
	s->failures++;
	send_advance(s);
}

/* The report of the current domain: JSON, then gzip. */
static int build_report(struct tlsrpt_send *s)
{
	const struct cfg *c = s->p.cfg;
	struct queue_txn *t;
	struct queue_tlsrpt *rec = malloc(sizeof(*rec));
	char org[256], contact[256], id[600];
	char *json = NULL;
	int rc;

	if (!rec)
		return -ENOMEM;
	rc = queue_txn_begin(s->p.q, 0, &t);
	if (rc == 0) {
		rc = queue_tlsrpt_get(t, s->p.day, s->dom[s->cur].domain, rec);
		queue_txn_abort(t);
	}
	cfg_tlsrpt_org_name(c, org, sizeof(org));
	cfg_tlsrpt_contact_info(c, contact, sizeof(contact));
	tlsrpt_report_id(c, s->p.day, s->dom[s->cur].domain, id, sizeof(id));
	if (rc == 0) {
		struct tlsrpt_meta m = {org, contact, s->p.day, id};

		rc = tlsrpt_json(&m, s->dom[s->cur].domain, rec, &json);
	}
	free(rec);
	if (rc == 0)
		rc = tlsrpt_gzip(json, strlen(json), &s->gz, &s->gzlen);
	free(json);
	return rc;
}

static void log_sent(const struct tlsrpt_send *s, const char *rua)
{
	const struct send_dom *d = &s->dom[s->cur];

	log_info("tlsrpt: report for %s (%s) sent to %s: %llu successful, %llu failed sessions",
		 d->domain, s->p.day, rua, (unsigned long long)d->ok, (unsigned long long)d->fail);
}

/* --- the write: mail for each mailto: rua, and the mark ------------------ */

static int write_apply(struct queue_txn *t, struct commit_req *r)
{
	struct tlsrpt_send *s = (struct tlsrpt_send *)((char *)r - offsetof(struct tlsrpt_send, req));
	const struct send_dom *d = &s->dom[s->cur];
	char from[256], to[STS_URI_MAX + 1];
	struct queue_tlsrpt *rec = malloc(sizeof(*rec));
	int rc = 0;

	if (!rec)
		return -ENOMEM;
	cfg_tlsrpt_sender(s->p.cfg, from, sizeof(from));
	for (size_t i = 0; i < s->nmail && rc == 0; i++) {
		struct queue_rcpt qr = {0};
		struct queue_msg m = {0};

		if (tlsrpt_mailto_addr(s->rua.mailto[i], to, sizeof(to)) < 0)
			continue;
		qr.address = to;
		m.sender = from;
		m.arrival = m.next_attempt = (int64_t)time(NULL);
		m.flags = QUEUE_F_TLSRPT;
		m.size = s->mail[i].len;
		m.nrcpt = 1;
		m.rcpt = &qr;
		rc = queue_msg_insert(t, &m, s->mail[i].data, s->mail[i].len);
	}
	if (rc == 0)
		rc = queue_tlsrpt_get(t, s->p.day, d->domain, rec);
	if (rc == 0) {
		rec->sent = (int64_t)time(NULL);
		rc = queue_tlsrpt_put(t, s->p.day, d->domain, rec);
	}
	if (rc == 0)
		rc = queue_ctl_bump(t);
	free(rec);
	return rc;
}

static void write_done(struct commit_req *r)
{
	struct tlsrpt_send *s = (struct tlsrpt_send *)((char *)r - offsetof(struct tlsrpt_send, req));
	char to[STS_URI_MAX + 1];

	for (size_t i = 0; i < s->nmail; i++) {
		if (r->result == 0 && tlsrpt_mailto_addr(s->rua.mailto[i], to, sizeof(to)) == 0)
			log_sent(s, s->rua.mailto[i]);
		rl_buf_fini(&s->mail[i]);
	}
	free(s->mail);
	s->mail = NULL;
	if (r->result < 0) {
		dom_fail(s, "cannot queue the report: ", rl_strerror(r->result));
		return;
	}
	send_advance(s);
}

/* Compose one message per usable mailto: rua. */
static int compose_mail(struct tlsrpt_send *s)
{
	const struct cfg *c = s->p.cfg;
	const char *domain = s->dom[s->cur].domain;
	char from[256], org[256], id[600], unique[600], to[STS_URI_MAX + 1];
	struct tm tm = {0};
	int rc = 0;

	cfg_tlsrpt_sender(c, from, sizeof(from));
	cfg_tlsrpt_org_name(c, org, sizeof(org));
	tlsrpt_report_id(c, s->p.day, domain, id, sizeof(id));
	snprintf(unique, sizeof(unique), "%s.%s", s->p.day, domain);
	sscanf(s->p.day, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	s->nmail = s->rua.nmailto;
	s->mail = calloc(s->nmail ? s->nmail : 1, sizeof(*s->mail));
	if (!s->mail)
		return -ENOMEM;
	for (size_t i = 0; i < s->nmail; i++) {
		int64_t begin = (int64_t)timegm(&tm);
		struct tlsrpt_mail_params m = {from,  to,	 domain, org,	  id, s->p.day, c->myhostname,
					       unique, (int64_t)time(NULL), begin, begin + 86399,
					       s->gz,  s->gzlen};

		rl_buf_init(&s->mail[i], HTTPS_POST_MAX);
		if (tlsrpt_mailto_addr(s->rua.mailto[i], to, sizeof(to)) < 0) {
			log_warn("tlsrpt: %s: unusable report address %s", domain, s->rua.mailto[i]);
			continue;
		}
		if (rc == 0)
			rc = tlsrpt_mail(&m, &s->mail[i]);
	}
	return rc;
}

static void send_write(struct tlsrpt_send *s)
{
	struct queue_txn *t;
	int rc = compose_mail(s);

	memset(&s->req, 0, sizeof(s->req));
	s->req.apply = write_apply;
	s->req.done = write_done;
	if (rc == 0 && s->p.commit) {
		committer_submit(s->p.commit, &s->req);
		return;
	}
	/* The command line: one transaction of its own. */
	if (rc == 0)
		rc = queue_txn_begin(s->p.q, 1, &t);
	if (rc == 0) {
		rc = write_apply(t, &s->req);
		rc = rc == 0 ? queue_txn_commit(t) : (queue_txn_abort(t), rc);
	}
	s->req.result = rc;
	write_done(&s->req);
}

/* --- https: rua ----------------------------------------------------------- */

static void https_step(struct tlsrpt_send *s);

static void post_cb(void *arg, const struct https_result *r)
{
	struct tlsrpt_send *s = arg;
	const char *uri = s->rua.https[s->https_next];

	if (r->status == HTTPS_OK) {
		log_sent(s, uri);
	} else if (r->status == HTTPS_HTTP && r->http_code >= 400 && r->http_code < 500) {
		/* The receiver refused the report itself: retrying the same
		 * report hourly would not change its mind (nor should the
		 * other ruas get it again). */
		log_warn("tlsrpt: %s: POST to %s refused, not retried: %s",
			 s->dom[s->cur].domain, uri, r->why);
	} else {
		log_warn("tlsrpt: %s: POST to %s failed: %s", s->dom[s->cur].domain, uri, r->why);
		s->dom_failed = 1;
	}
	s->https_next++;
	https_step(s);
}

static void addrs_cb(void *arg, const struct dns_addr_result *r)
{
	struct tlsrpt_send *s = arg;
	struct https_req req = {0};
	const char *uri = s->rua.https[s->https_next];
	int rc = -ENOENT;

	if (r->status == DNS_OK && r->naddr > 0) {
		req.host = s->host;
		req.path = s->path;
		req.port = s->port;
		req.addr = r->addr;
		req.naddr = r->naddr < HTTPS_ADDR_MAX ? r->naddr : HTTPS_ADDR_MAX;
		req.ca_file = s->p.cfg->tls_ca_file;
		req.body = s->gz;
		req.body_len = s->gzlen;
		req.content_type = "application/tlsrpt+gzip";
		rc = https_post(s->p.https, &req, post_cb, s);
	}
	if (rc < 0) {
		log_warn("tlsrpt: %s: cannot POST to %s: %s", s->dom[s->cur].domain, uri,
			 r->status == DNS_OK ? rl_strerror(rc) : r->why);
		s->dom_failed = 1;
		s->https_next++;
		https_step(s);
	}
}

static void https_step(struct tlsrpt_send *s)
{
	while (s->https_next < s->rua.nhttps) {
		const char *uri = s->rua.https[s->https_next];

		if (tlsrpt_https_parse(uri, s->host, sizeof(s->host), &s->port, s->path,
				       sizeof(s->path)) < 0) {
			/* A URI we cannot use stays unusable: no retry for it. */
			log_warn("tlsrpt: %s: cannot POST to %s: not a usable https URI",
				 s->dom[s->cur].domain, uri);
			s->https_next++;
			continue;
		}
		if (dns_addrs(s->p.dns, s->host, addrs_cb, s) >= 0)
			return;
		log_warn("tlsrpt: %s: cannot POST to %s", s->dom[s->cur].domain, uri);
		s->dom_failed = 1;
		s->https_next++;
	}
	if (s->dom_failed) {
		dom_fail(s, "report not sent to every rua; it stays due", "");
		return;
	}
	send_write(s);
}

/* --- the record ----------------------------------------------------------- */

static void txt_cb(void *arg, const struct dns_txt_result *r)
{
	struct tlsrpt_send *s = arg;
	struct sts_txt rr[DNS_TXT_MAX];
	struct rl_why why = {0, NULL, 0};
	int rc = RL_ENOTFOUND;

	memset(&s->rua, 0, sizeof(s->rua));
	if (r->status == DNS_TEMPFAIL || r->status == DNS_BOGUS) {
		dom_fail(s, "TLS-RPT record lookup failed: ", r->why);
		return;
	}
	for (size_t i = 0; i < r->nrec; i++)
		rr[i] = (struct sts_txt){r->rec[i].data, r->rec[i].len};
	if (r->status == DNS_OK)
		rc = sts_tlsrpt_parse(rr, r->nrec, &s->rua, &why);
	if (rc < 0 && rc != RL_ENOTFOUND)
		log_info("tlsrpt: %s: TLS-RPT record unusable: %s", s->dom[s->cur].domain,
			 why.reason ? why.reason : rl_strerror(rc));
	if (rc < 0) {
		/* No report wanted: mark the day as done, nothing to send. */
		memset(&s->rua, 0, sizeof(s->rua));
		send_write(s);
		return;
	}
	rc = build_report(s);
	if (rc < 0) {
		dom_fail(s, "cannot build the report: ", rl_strerror(rc));
		return;
	}
	s->https_next = 0;
	s->dom_failed = 0;
	https_step(s);
}

static void send_next(struct tlsrpt_send *s)
{
	char name[DNS_NAME_MAX + 16];

	if (s->cur >= s->ndom) {
		send_finish(s);
		return;
	}
	snprintf(name, sizeof(name), "_smtp._tls.%s", s->dom[s->cur].domain);
	if (dns_txt(s->p.dns, name, txt_cb, s) < 0)
		dom_fail(s, "cannot look up the TLS-RPT record", "");
}

int tlsrpt_send_start(const struct tlsrpt_send_params *p)
{
	struct tlsrpt_send *s = calloc(1, sizeof(*s));
	struct queue_txn *t;
	int rc;

	if (!s)
		return -ENOMEM;
	s->p = *p;
	rc = queue_txn_begin(p->q, 0, &t);
	if (rc == 0) {
		rc = queue_tlsrpt_foreach(t, p->day, collect, s);
		queue_txn_abort(t);
	}
	if (rc < 0) {
		free(s->dom);
		free(s);
		return rc;
	}
	uv_idle_init(p->loop, &s->kick);
	s->kick.data = s;
	uv_idle_start(&s->kick, send_kick_cb);
	return 0;
}
