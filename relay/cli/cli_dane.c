/*
 * cli_dane: the DANE lookups of `policy show` and `certs probe` (cli_dane.h).
 *
 * The lookups run as the relay runs them in qmgr_resolve.c: MX, then the
 * addresses of each host, then TLSA (danehost) for a host whose A or AAAA
 * answer was DNSSEC-secure, where the domain's entry lets DANE apply.  The
 * probe knows its host already, so its address lookup starts with the MX
 * lookup.  A timer bounds the whole of it; when it fires, what is still
 * outstanding is cancelled and reported as failed.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "cli_dane.h"
#include "cli_sts.h"
#include "netaddr.h"

#define LINE_MAX_TEXT 4096 /* one printed line (records past it are cut) */
#define REC_TEXT      160  /* one record: "3 1 2 " and a SHA-512 in hex */

enum { TL_NOT = 0, TL_PENDING, TL_DONE };

struct look;

/* One MX host and its lookups. */
struct host {
	struct look *l;
	char name[DNS_NAME_MAX];
	unsigned pref;
	int addrq; /* in flight, -1 none */
	int addr_done;
	struct dns_addr_result a;
	int tlsa;	  /* TL_*: the TLSA lookup */
	const char *skip; /* TL_NOT: why it was not made */
	struct danehost h;
};

/* The lookups of one command, on a loop of their own. */
struct look {
	uv_loop_t loop;
	uv_timer_t timer;
	struct dns *dns;
	int ended;
	int dane;		   /* DANE can apply: look TLSA up */
	char nodane[80];	   /* when not: why */
	unsigned port;		   /* of _PORT._tcp */
	char domain[DNS_NAME_MAX]; /* A-labels */
	int mxq;		   /* in flight, -1 none */
	int mx_done;
	struct dns_mx_result mx;
	int from_mx; /* the hosts are those of the MX answer; else given */
	struct host *hosts;
	size_t nhosts;
	size_t pending;
	int timed_out;
	char err[300];		   /* the resolver could not be made */
	struct pol_peer_sess sess; /* `policy show`: one host's session at a time */
};

/* Append to a line; what does not fit is cut. */
static void RL_PRINTF(3, 4) cat(char *out, size_t size, const char *fmt, ...)
{
	size_t used = strlen(out);
	va_list ap;

	if (used + 1 >= size)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(out + used, size - used, fmt, ap);
	va_end(ap);
}

/* ---- the lookups ------------------------------------------------------- */

static void look_end(struct look *l)
{
	if (l->ended)
		return;
	l->ended = 1;
	/* Cancels what is still outstanding: no callback runs after this. */
	dns_free(l->dns);
	l->dns = NULL;
	uv_timer_stop(&l->timer);
	uv_close((uv_handle_t *)&l->timer, NULL);
}

static void look_done(struct look *l)
{
	if (--l->pending == 0)
		look_end(l);
}

static void look_on_tlsa(void *arg, struct danehost *dh)
{
	struct host *h = arg;

	(void)dh;
	h->tlsa = TL_DONE;
	look_done(h->l);
}

/*
 * The TLSA lookup of a host whose addresses are known, under the relay's
 * rule (qmgr_resolve.c, dest_dane_start): only where DANE can apply and
 * the A or AAAA answer was DNSSEC-secure; an alias is looked for at the
 * end of its chain first when the answer naming it was secure.
 */
static void look_tlsa(struct look *l, struct host *h)
{
	const struct dns_addr_result *a = &h->a;
	int rc;

	if (!l->dane) {
		h->skip = l->nodane;
		return;
	}
	if (a->status != DNS_OK || a->naddr == 0) {
		h->skip = "no address";
		return;
	}
	if (!(a->secure4 || a->secure6)) {
		h->skip = "addresses not DNSSEC-secure";
		return;
	}
	rc = danehost_start(&h->h, l->dns, h->name, a->canon_secure ? a->canon : "", l->port,
			    look_on_tlsa, h);
	if (rc < 0) {
		/* As the relay does: a lookup that cannot start has failed. */
		h->h.state = POL_DANE_FAIL;
		snprintf(h->h.why, sizeof(h->h.why), "TLSA lookup error for %s: %s", h->h.qname,
			 rl_strerror(rc));
		h->tlsa = TL_DONE;
		return;
	}
	h->tlsa = TL_PENDING;
	l->pending++;
}

static void look_on_addrs(void *arg, const struct dns_addr_result *r)
{
	struct host *h = arg;

	h->addrq = -1;
	h->a = *r;
	h->addr_done = 1;
	look_tlsa(h->l, h);
	look_done(h->l);
}

static void look_addrs(struct look *l, struct host *h)
{
	int id = dns_addrs(l->dns, h->name, look_on_addrs, h);

	if (id < 0) {
		h->a.status = DNS_TEMPFAIL;
		snprintf(h->a.why, sizeof(h->a.why), "%s", rl_strerror(id));
		h->addr_done = 1;
		h->skip = "no address";
		return;
	}
	h->addrq = id;
	l->pending++;
}

/* Room for n hosts, each with nothing in flight. */
static int look_hosts(struct look *l, size_t n)
{
	l->hosts = calloc(n, sizeof(*l->hosts));
	if (!l->hosts)
		return -ENOMEM;
	l->nhosts = n;
	for (size_t i = 0; i < n; i++) {
		l->hosts[i].l = l;
		l->hosts[i].addrq = -1;
		l->hosts[i].h.qid = -1;
	}
	return 0;
}

static void look_on_mx(void *arg, const struct dns_mx_result *r)
{
	struct look *l = arg;

	l->mxq = -1;
	l->mx = *r;
	l->mx_done = 1;
	if (l->from_mx && r->status == DNS_OK && !r->null_mx && r->nhosts > 0) {
		if (look_hosts(l, r->nhosts) < 0) {
			l->mx.status = DNS_TEMPFAIL;
			rl_strlcpy(l->mx.why, "out of memory", sizeof(l->mx.why));
		}
		for (size_t i = 0; i < l->nhosts; i++) {
			rl_strlcpy(l->hosts[i].name, r->hosts[i].name, sizeof(l->hosts[i].name));
			l->hosts[i].pref = r->hosts[i].pref;
			look_addrs(l, &l->hosts[i]);
		}
	}
	look_done(l);
}

/* The bound on the whole: what is outstanding fails, never "no records". */
static void look_on_timer(uv_timer_t *t)
{
	struct look *l = t->data;
	char why[64];

	snprintf(why, sizeof(why), "no answer within %d s", DNS_TIMEOUT_MS / 1000);
	l->timed_out = 1;
	if (l->mxq >= 0) {
		l->mx.status = DNS_TEMPFAIL;
		rl_strlcpy(l->mx.why, why, sizeof(l->mx.why));
		l->mx_done = 1;
	}
	for (size_t i = 0; i < l->nhosts; i++) {
		struct host *h = &l->hosts[i];

		if (h->addrq >= 0) {
			h->a.status = DNS_TEMPFAIL;
			rl_strlcpy(h->a.why, why, sizeof(h->a.why));
			h->addr_done = 1;
			h->skip = "no address";
		}
		if (h->tlsa == TL_PENDING) {
			danehost_clear(&h->h);
			h->h.state = POL_DANE_FAIL;
			snprintf(h->h.why, sizeof(h->h.why), "TLSA lookup error for %s: %s",
				 h->h.qname, why);
			h->tlsa = TL_DONE;
		}
	}
	look_end(l);
}

/* What the lookups are for: DANE applies under entry e; TLSA port. */
static void look_init(struct look *l, const struct pol_entry *e, unsigned port, int from_mx)
{
	l->mxq = -1;
	l->port = port;
	l->from_mx = from_mx;
	l->dane = pol_peer_dane_applies(e);
	if (!l->dane)
		snprintf(l->nodane, sizeof(l->nodane), "the policy entry's level %s wins over DANE",
			 pol_level_name(e->level));
}

/*
 * Run the lookups to their end (or the bound).  Returns 0, or a negative
 * code with l->err set when the resolver cannot be made.
 */
static int look_run(struct look *l, const struct cfg *c)
{
	int rc = uv_loop_init(&l->loop);

	if (rc < 0) {
		snprintf(l->err, sizeof(l->err), "dns: cannot make a loop: %s", uv_strerror(rc));
		return rc;
	}
	rc = dns_new(&l->loop, c, &l->dns, l->err, sizeof(l->err));
	if (rc < 0) {
		RL_REQUIRE(uv_loop_close(&l->loop) == 0);
		return rc;
	}
	uv_timer_init(&l->loop, &l->timer);
	l->timer.data = l;
	uv_timer_start(&l->timer, look_on_timer, DNS_TIMEOUT_MS, 0);
	l->mxq = dns_mx(l->dns, l->domain, look_on_mx, l);
	if (l->mxq < 0) {
		l->mx.status = DNS_TEMPFAIL;
		rl_strlcpy(l->mx.why, rl_strerror(l->mxq), sizeof(l->mx.why));
		l->mx_done = 1;
		l->mxq = -1;
	} else {
		l->pending++;
	}
	for (size_t i = 0; !l->from_mx && i < l->nhosts; i++)
		look_addrs(l, &l->hosts[i]);
	if (l->pending == 0)
		look_end(l);
	uv_run(&l->loop, UV_RUN_DEFAULT);
	RL_REQUIRE(uv_loop_close(&l->loop) == 0);
	return 0;
}

static void look_free(struct look *l)
{
	for (size_t i = 0; i < l->nhosts; i++)
		danehost_clear(&l->hosts[i].h);
	free(l->hosts);
	free(l);
}

/* ---- what they found, as text ------------------------------------------- */

/* "secure (127.0.0.5, ::1)", "insecure (...)", "none (Host not found)". */
static void addrs_text(const struct dns_addr_result *a, char *out, size_t size)
{
	char ip[NETADDR_TEXT_SIZE];

	out[0] = '\0';
	if (a->status == DNS_TEMPFAIL || a->status == DNS_BOGUS) {
		cat(out, size, "lookup error (%s)",
		    a->why[0] ? a->why : "Host not found, try again");
		return;
	}
	if (a->status != DNS_OK || a->naddr == 0) {
		cat(out, size, "none (%s%s)", a->why[0] ? a->why : "Host not found",
		    a->secure ? ", DNSSEC-secure" : "");
		return;
	}
	cat(out, size, "%s (",
	    a->secure	 ? "secure"
	    : a->secure4 ? "A secure, AAAA insecure"
	    : a->secure6 ? "AAAA secure, A insecure"
			 : "insecure");
	for (size_t i = 0; i < a->naddr; i++) {
		if (netaddr_text((const struct sockaddr *)&a->addr[i].sa, ip, sizeof(ip), NULL) < 0)
			rl_strlcpy(ip, "?", sizeof(ip));
		cat(out, size, "%s%s", i ? ", " : "", ip);
	}
	if (a->canon[0])
		cat(out, size, "; alias of %s, %s", a->canon,
		    a->canon_secure ? "secure" : "insecure");
	cat(out, size, ")");
}

/* "TLSA secure at Q: 3 1 1 AB.., 2 0 1 CD..", "TLSA: none (...)", the error. */
static void tlsa_text(const struct host *h, char *out, size_t size)
{
	const struct danehost *d = &h->h;
	char rec[REC_TEXT];

	out[0] = '\0';
	if (h->tlsa == TL_NOT) {
		cat(out, size, "TLSA: not looked up (%s)", h->skip ? h->skip : "no address");
		return;
	}
	switch (d->state) {
	case POL_DANE_USABLE:
		cat(out, size, "TLSA secure at %s: ", d->qname);
		for (size_t i = 0; i < d->nrec; i++) {
			dane_tlsa_text(&d->rec[i], rec, sizeof(rec));
			cat(out, size, "%s%s", i ? ", " : "", rec);
		}
		if (d->nunusable)
			cat(out, size, " (and %zu unusable)", d->nunusable);
		return;
	case POL_DANE_UNUSABLE:
		cat(out, size, "TLSA secure at %s: no usable records (%zu unusable)", d->qname,
		    d->nunusable);
		return;
	case POL_DANE_FAIL:
		cat(out, size, "%s", d->why);
		return;
	default:
		if (d->secure)
			cat(out, size, "TLSA: none (secure denial at %s)", d->qname);
		else
			cat(out, size, "TLSA: insecure at %s (not used)", d->qname);
		return;
	}
}

/*
 * "level: LEVEL (SOURCE)" for a session resolved and then given to
 * pol_peer_dane() (rc and reason: what that returned), or "level: LEVEL
 * (SOURCE): mail deferred: REASON".
 */
static void level_text(const struct cfg *c, const struct pol_entry *e,
		       const struct pol_peer_sess *s, const struct pol_dane *dn, int rc,
		       const char *reason, char *out, size_t size)
{
	char src[600];

	if (e)
		snprintf(src, sizeof(src), "policy file %s:%u", c->policy_file, e->line);
	else
		snprintf(src, sizeof(src), "default_tls_level, config %s", c->path);
	out[0] = '\0';
	cat(out, size, "level: %s (", pol_level_name(s->pol.level));
	if (rc < 0)
		cat(out, size, "%s): mail deferred: %s", src, reason);
	else if (s->pol.ntlsa > 0)
		cat(out, size, "%s%sDANE: usable TLSA records; MX RRset %s)", e ? src : "",
		    e ? "; " : "", dn->mx_secure ? "secure -> Verified" : "insecure -> Trusted");
	else if (!pol_peer_dane_applies(e))
		cat(out, size, "%s; the entry wins over DANE)", src);
	else
		cat(out, size, "%s; no usable TLSA records)", src);
}

/* ---- policy show ----------------------------------------------------------- */

/*
 * One MX host: what the lookups found, and the level of a session to it;
 * then MTA-STS (st: the domain's policy, NULL when none is looked up).
 */
static void show_host(struct look *l, const struct cfg *c, const struct pol_entry *e,
		      const struct host *h, const struct cli_sts *st)
{
	char *text = malloc(3 * LINE_MAX_TEXT), *addrs, *tlsa, reason[600];
	const char *dsn;
	struct pol_dane dn;
	int rc;

	if (!text) {
		printf("mx: %s: %s\n", h->name, rl_strerror(-ENOMEM));
		return;
	}
	addrs = text + LINE_MAX_TEXT;
	tlsa = addrs + LINE_MAX_TEXT;
	addrs_text(&h->a, addrs, LINE_MAX_TEXT);
	tlsa_text(h, tlsa, LINE_MAX_TEXT);
	if (l->mx.implicit)
		printf("mx: %s (no MX records: the domain itself): MX %s, addresses %s, %s\n",
		       h->name, l->mx.secure ? "absence secure" : "absence insecure", addrs, tlsa);
	else
		printf("mx: %s (pref %u): MX %s, addresses %s, %s\n", h->name, h->pref,
		       l->mx.secure ? "secure" : "insecure", addrs, tlsa);
	if (h->a.status != DNS_OK || h->a.naddr == 0) {
		printf("  level: - (no address: the relay does not connect to %s)\n", h->name);
		free(text);
		return;
	}
	/* As sess_policy() does for a session of the relay. */
	danehost_pol(&h->h, l->mx.secure, &dn);
	rc = pol_peer_resolve(e, c->default_tls_level, l->domain, h->name, NULL, NULL, &l->sess,
			      reason, sizeof(reason));
	if (rc == 0)
		rc = pol_peer_dane(&l->sess, &dn, h->name, &dsn, reason, sizeof(reason));
	level_text(c, e, &l->sess, &dn, rc, reason, text, LINE_MAX_TEXT);
	printf("  %s\n", text);
	if (rc == 0)
		cli_sts_show_host(st, c, &l->sess, h->name);
	free(text);
}

static void show_print(struct look *l, const struct cfg *c, const struct pol_entry *e)
{
	const struct dns_mx_result *mx = &l->mx;
	struct cli_sts *st;
	char line[600];

	if (mx->status != DNS_OK) {
		dns_fail_text(line, sizeof(line), l->domain, "MX", mx->status, mx->why);
		printf("mx: %s%s\n", line, mx->secure ? " (DNSSEC-secure)" : "");
		return;
	}
	if (mx->null_mx) {
		printf("mx: none (null MX, %s): %s\n", mx->secure ? "secure" : "insecure", mx->why);
		return;
	}
	/* The relay looks MTA-STS up once the domain has MX hosts (qmgr_resolve.c). */
	st = cli_sts_show(c, e, l->domain);
	for (size_t i = 0; i < l->nhosts; i++)
		show_host(l, c, e, &l->hosts[i], st);
	cli_sts_free(st);
}

int cli_dane_show(const struct cfg *c, const struct pol_table *t, const char *domain)
{
	struct look *l = calloc(1, sizeof(*l));
	const struct pol_entry *e;
	const char *err = NULL;
	int rc;

	if (!l) {
		printf("mx: not looked up: %s\n", rl_strerror(-ENOMEM));
		return 0;
	}
	/* The relay's key for the domain's policy and lookups (dns_alabel). */
	rc = dns_alabel(domain, l->domain, sizeof(l->domain), &err);
	if (rc < 0) {
		printf("mx: not looked up: %s is not a domain name (%s)\n", domain,
		       err ? err : rl_strerror(rc));
		free(l);
		return 0;
	}
	e = pol_table_lookup(t, l->domain);
	look_init(l, e, c->remote_port, 1);
	if (look_run(l, c) < 0)
		printf("mx: not looked up: %s\n", l->err);
	else
		show_print(l, c, e);
	look_free(l);
	return 0;
}

/* ---- certs probe ------------------------------------------------------------ */

/* Does the MX answer list host (both in A-labels)? */
static int mx_lists(const struct dns_mx_result *mx, const char *host)
{
	for (size_t i = 0; mx->status == DNS_OK && i < mx->nhosts; i++)
		if (strcasecmp(mx->hosts[i].name, host) == 0)
			return 1;
	return 0;
}

/* The "MX:" line; returns what the DANE decision takes as mx_secure. */
static int peer_mx(const struct look *l, const struct host *h)
{
	const struct dns_mx_result *mx = &l->mx;
	int listed = mx_lists(mx, h->name);
	char line[600];

	if (mx->status != DNS_OK) {
		dns_fail_text(line, sizeof(line), l->domain, "MX", mx->status, mx->why);
		printf("MX: %s (a TLSA match is only Trusted)\n", line);
		return 0;
	}
	printf("MX: %s: %s, %s %s (a TLSA match is %s)\n", l->domain,
	       mx->secure ? "secure" : "insecure", listed ? "lists" : "does not list", h->name,
	       mx->secure && listed ? "Verified" : "only Trusted");
	return mx->secure && listed;
}

/* The lookups of cli_dane_peer() and their lines; text: a line buffer. */
static int peer_look(struct look *l, const struct cfg *c, const struct pol_entry *e,
		     const char *domain, const char *host, unsigned port, struct cli_dane_peer *out,
		     char *text)
{
	struct host *h = &l->hosts[0];
	const char *err = NULL;

	if (dns_alabel(domain, l->domain, sizeof(l->domain), &err) < 0 ||
	    dns_alabel(host, h->name, sizeof(h->name), &err) < 0) {
		fprintf(stderr, "tlsrelay: %s or %s: %s\n", domain, host, err ? err : "bad name");
		return -1;
	}
	look_init(l, e, port, 0);
	if (look_run(l, c) < 0) {
		fprintf(stderr, "tlsrelay: %s\n", l->err);
		return -1;
	}
	out->mx_secure = peer_mx(l, h);
	addrs_text(&h->a, text, LINE_MAX_TEXT);
	printf("addresses of %s: %s\n", h->name, text);
	tlsa_text(h, text, LINE_MAX_TEXT);
	printf("%s\n", text);
	if (h->a.status != DNS_OK || h->a.naddr == 0) {
		/* The relay has no address to connect to either. */
		dns_fail_text(text, LINE_MAX_TEXT, h->name, "A", h->a.status, h->a.why);
		fprintf(stderr, "tlsrelay: cannot resolve %s: %s\n", host, text);
		return -1;
	}
	out->addrs = h->a;
	/* The records move to out, which outlives the session that uses them. */
	out->tlsa = h->h;
	h->h.rec = NULL;
	h->h.nrec = 0;
	return 0;
}

int cli_dane_peer(const struct cfg *c, const struct pol_entry *e, const char *domain,
		  const char *host, unsigned port, struct pol_peer_sess *s,
		  struct cli_dane_peer *out, char *reason, size_t rsize)
{
	struct look *l = calloc(1, sizeof(*l));
	char *text = malloc(LINE_MAX_TEXT);
	const char *dsn;
	struct pol_dane dn;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	out->tlsa.qid = -1;
	reason[0] = '\0';
	if (!l || !text || look_hosts(l, 1) < 0)
		fprintf(stderr, "tlsrelay: %s\n", rl_strerror(-ENOMEM));
	else
		rc = peer_look(l, c, e, domain, host, port, out, text);
	/* s == NULL: its policy did not resolve; there is nothing to decide. */
	if (rc == 0 && s) {
		danehost_pol(&out->tlsa, out->mx_secure, &dn);
		rc = pol_peer_dane(s, &dn, host, &dsn, reason, rsize);
		level_text(c, e, s, &dn, rc, reason, text, LINE_MAX_TEXT);
		printf("%s\n", text);
	}
	if (l)
		look_free(l);
	free(text);
	return rc;
}

void cli_dane_peer_fini(struct cli_dane_peer *p)
{
	p->tlsa.qid = -1; /* its lookup ended with the resolver */
	danehost_clear(&p->tlsa);
}
