/*
 * qmgr_resolve: a destination's round.  The MX lookup, then the addresses
 * of every MX host, then the targets (addresses in MX order, without those
 * that loop back to us, at most smtp_mx_address_limit); a result that gives
 * no host fails the waiting jobs with a class and DSN code taken from the
 * resolver's status.  qmgr_dest_reset ends a round and cancels its lookups.
 * Then, where DANE can apply, the TLSA records of each MX host whose
 * addresses were DNSSEC-secure (danehost.c), and, where MTA-STS can, the
 * domain's policy (mtasts.c, started with the address lookups), before
 * any session starts.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qmgr_int.h"

struct addr_ctx {
	struct qdest *d;
	size_t host;
};

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

static void dest_sts_free(struct qdest *d)
{
	if (d->stsq > 0)
		mtasts_cancel(d->q->sts, d->stsq);
	d->stsq = 0;
	d->sts_mode = POL_STS_NONE;
	free(d->sts_match);
	d->sts_match = NULL;
	free(d->sts_text);
	d->sts_text = NULL;
	d->sts_fail = NULL;
}

/* The policy as TLS-RPT's policy-string lists it (RFC 8460 4.4): its lines. */
static char *sts_policy_text(const struct sts_policy *p)
{
	char *t = malloc(QUEUE_TLSRPT_STR_MAX + 1);
	size_t n;

	if (!t)
		return NULL;
	n = (size_t)snprintf(t, QUEUE_TLSRPT_STR_MAX + 1, "version: STSv1\nmode: %s\nmax_age: %u",
			     sts_mode_name(p->mode), (unsigned)p->max_age);
	for (size_t i = 0; i < p->nmx && n < QUEUE_TLSRPT_STR_MAX; i++) {
		size_t need = strlen(p->mx[i]) + 5;

		if (n + need > QUEUE_TLSRPT_STR_MAX)
			break; /* bounded: the lines that fit */
		n += (size_t)snprintf(t + n, QUEUE_TLSRPT_STR_MAX + 1 - n, "\nmx: %s", p->mx[i]);
	}
	return t;
}

static void dest_dane_free(struct qdest *d)
{
	for (size_t i = 0; d->dane && i < d->nhosts; i++)
		danehost_clear(&d->dane[i]);
	free(d->dane);
	d->dane = NULL;
	d->dane_pending = 0;
}

/* The round is over: forget the MX hosts; the next jobs resolve afresh. */
void qmgr_dest_reset(struct qdest *d)
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
	dest_dane_free(d); /* before the hosts are forgotten: it walks them */
	dest_sts_free(d);
	free(d->hosts);
	d->hosts = NULL;
	d->nhosts = 0;
	qmgr_dest_unwait(d);
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
			t->hostidx = i;
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

/* The last of the late lookups (TLSA, MTA-STS) is in: sessions may start. */
static void dest_late_done(struct qdest *d)
{
	if (d->state != QD_LATE || d->dane_pending > 0 || d->stsq > 0)
		return;
	d->state = QD_READY;
	qmgr_dest_kick(d);
}

static void dest_dane_cb(void *arg, struct danehost *h)
{
	struct qdest *d = arg;

	(void)h;
	d->dane_pending--;
	dest_late_done(d);
}

static void dest_sts_cb(void *arg, const struct mtasts_result *r)
{
	struct qdest *d = arg;

	d->stsq = 0;
	/* A failed fetch with no cached policy to stand in: TLS-RPT reports it. */
	d->sts_fail = r->mode == POL_STS_NONE ? r->failure : NULL;
	if (r->mode != POL_STS_NONE && r->policy && !d->sts_text)
		d->sts_text = sts_policy_text(r->policy);
	if (r->mode != POL_STS_NONE) {
		d->sts_match = calloc(d->nhosts ? d->nhosts : 1, 1);
		if (d->sts_match) {
			d->sts_mode = r->mode;
			for (size_t i = 0; i < d->nhosts; i++)
				d->sts_match[i] = (unsigned char)sts_mx_match(r->policy, d->hosts[i].name);
		} else if (r->mode == POL_STS_ENFORCE) {
			d->sts_mode = r->mode; /* no host matches: fail closed */
			d->sts_match = NULL;
		}
	}
	dest_late_done(d);
}

/*
 * Start the MTA-STS lookup of the round: when mta_sts = yes and no entry
 * of the policy file names the domain (the administrator's word wins).
 * Returns 0, or < 0 when the lookup cannot start (the round must not go
 * on as if the domain had no policy: a cached enforce policy may apply).
 */
static int dest_sts_start(struct qdest *d)
{
	struct qmgr *q = d->q;
	const struct tlspol *pol = *q->p.pol;
	int id;

	if (!q->p.cfg->mta_sts || !q->sts ||
	    (pol && pol_table_lookup(tlspol_table(pol), d->domain)))
		return 0;
	id = mtasts_lookup(q->sts, d->domain, dest_sts_cb, d);
	if (id <= 0)
		return id < 0 ? id : -EIO;
	d->stsq = id;
	return 0;
}

/*
 * Start the TLSA lookups of the round (RFC 7672 2.2): for each MX host
 * with a target whose A or AAAA answer was DNSSEC-secure, unless the
 * policy entry of the domain sets a level DANE does not touch.  An
 * insecure MX RRset does not stop it: a match is then Trusted, not
 * Verified (pol_peer_dane).  Returns the number of lookups started, or
 * SIZE_MAX when there is no memory to keep their results.
 */
static size_t dest_dane_start(struct qdest *d)
{
	struct qmgr *q = d->q;
	const struct tlspol *pol = *q->p.pol;
	const struct pol_entry *e = pol ? pol_table_lookup(tlspol_table(pol), d->domain) : NULL;

	if (!pol_peer_dane_applies(e))
		return 0;
	d->dane = calloc(d->nhosts, sizeof(*d->dane));
	if (!d->dane)
		return SIZE_MAX; /* the round cannot know: it is deferred */
	for (size_t i = 0; i < d->nhosts; i++)
		d->dane[i].qid = -1;
	for (size_t k = 0; k < d->ntargets; k++) {
		size_t i = d->targets[k].hostidx;
		const struct dns_addr_result *a = &d->addrs[i];
		struct danehost *h = &d->dane[i];
		int rc;

		if (h->dns || !(a->secure4 || a->secure6))
			continue; /* looked up already, or not secure: no DANE */
		rc = danehost_start(h, q->dns, d->hosts[i].name, a->canon_secure ? a->canon : "",
				    q->p.cfg->remote_port, dest_dane_cb, d);
		if (rc < 0) {
			h->state = POL_DANE_FAIL;
			if (snprintf(h->why, sizeof(h->why), "TLSA lookup error for %s: %s",
				     h->qname, rl_strerror(rc)) < 0)
				h->why[0] = '\0';
			continue;
		}
		d->dane_pending++;
	}
	return d->dane_pending;
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
		qmgr_dest_fail_all(d, SMTPC_PERMFAIL, "5.4.6", d->fail_reason);
		qmgr_dest_reset(d);
		return;
	}
	if (d->ntargets > 0) {
		if (dest_dane_start(d) == SIZE_MAX) {
			/* Never "no DANE" for want of memory: try again later. */
			qmgr_dest_fail_all(d, SMTPC_TEMPFAIL, "4.3.0",
					   "cannot look up TLSA records: out of memory");
			qmgr_dest_reset(d);
			return;
		}
		/* The targets and TLSA lookups hold all the round needs from them. */
		dest_addrs_free(d);
		d->state = QD_LATE;
		dest_late_done(d);
		return;
	}
	for (size_t i = 0; i < d->nhosts; i++)
		temp |= d->addrs[i].status == DNS_TEMPFAIL || d->addrs[i].status == DNS_BOGUS;
	if (d->implicit && !temp) {
		/* No MX and no address: the domain has no mail host at all. */
		dns_fail_text(why, sizeof(why), d->domain, "A", DNS_NXDOMAIN, "Host not found");
		class = dns_outcome(DNS_NXDOMAIN, 0, &dsn);
		qmgr_dest_fail_all(d, class, dsn, why);
	} else if (temp) {
		/* Say why: a bogus answer first, it is the one to fix. */
		size_t k = 0;

		for (size_t i = 0; i < d->nhosts; i++) {
			if (d->addrs[i].status == DNS_BOGUS) {
				k = i;
				break;
			}
			if (d->addrs[i].status == DNS_TEMPFAIL && d->addrs[k].status != DNS_TEMPFAIL)
				k = i;
		}
		dns_fail_text(why, sizeof(why), d->hosts[k].name, "A", d->addrs[k].status,
			      d->addrs[k].why);
		qmgr_dest_fail_all(d, SMTPC_TEMPFAIL, "4.4.3", why);
	} else {
		qmgr_dest_fail_all(d, SMTPC_TEMPFAIL, "4.4.3",
				   "no usable address for the MX hosts of the domain");
	}
	qmgr_dest_reset(d);
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
		qmgr_dest_fail_all(d, class, dsn, why);
		qmgr_dest_reset(d);
		return;
	}
	d->mx_secure = r->secure;
	d->hosts = calloc(r->nhosts, sizeof(*d->hosts));
	if (!d->hosts) {
		qmgr_dest_fail_all(d, SMTPC_TEMPFAIL, "4.4.3", "out of memory");
		qmgr_dest_reset(d);
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
		qmgr_dest_fail_all(d, SMTPC_TEMPFAIL, "4.4.3",
				   "cannot look up the MX hosts of the domain");
		qmgr_dest_reset(d);
		return;
	}
	if (dest_sts_start(d) < 0) {
		qmgr_dest_fail_all(d, SMTPC_TEMPFAIL, "4.3.0",
				   "cannot look up the MTA-STS policy of the domain");
		qmgr_dest_reset(d);
	}
}

/* Start the MX lookup of a new round; 0 if started (or failed already). */
void qmgr_dest_resolve(struct qdest *d)
{
	struct qmgr *q = d->q;

	if (qmgr_dest_dead(d, (int64_t)time(NULL))) {
		qmgr_dest_defer_dead(d);
		return;
	}
	d->state = QD_MX;
	d->round_start = (int64_t)time(NULL);
	d->stale = 0;
	d->mxq = dns_mx(q->dns, d->domain, dest_mx_cb, d);
	if (d->mxq < 0) {
		qmgr_dest_fail_all(d, SMTPC_TEMPFAIL, "4.4.3", "cannot start a DNS lookup");
		qmgr_dest_reset(d);
	}
}
