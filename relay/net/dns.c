/*
 * dns: libunbound on the libuv loop (see dns.h for the contract).
 *
 * Threads: ub_ctx_async(ctx, 1) makes libunbound resolve in a thread of its
 * own.  Answers come back through a pipe whose read end is ub_fd(); a
 * uv_poll_t watches it and ub_process() runs the libunbound callbacks on the
 * loop thread.  So everything in this file runs on the loop thread, and no
 * lock is needed.  ub_process() takes no lock while it calls a callback, so a
 * callback may start or cancel lookups (libunbound is re-entrant there).
 *
 * Requests: one lookup of ours is one or two libunbound queries (MX; TLSA;
 * TXT; or AAAA + A).  Each lookup has a slot in a table; its id carries the slot
 * index and a generation count, so an id that has completed (or a guess)
 * never cancels a later lookup that reuses the slot.  The libunbound
 * callback argument is the query's struct dns_sub, which lives exactly as
 * long as the query is pending: it is freed only after ub_cancel(), and in
 * threaded mode a cancelled query's callback is never called.
 *
 * Timeouts: libunbound gives up on an unresponsive server only after its
 * own retries (about 17 s with a fresh context, much longer once the
 * server's RTT estimate has backed off), so each lookup also has a deadline
 * of our own.  Lookups are kept in deadline order and one timer is armed for
 * the earliest.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <idn2.h>
#include <unbound.h>

#include "dns.h"
#include "netaddr.h"

/* RFC 1035 section 3.2.2/3.2.4 and RFC 3596 section 2.1. */
#define DNS_TYPE_A    1
#define DNS_TYPE_MX   15
#define DNS_TYPE_TXT  16
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_TLSA 52 /* RFC 6698 section 7.1 */
#define DNS_TYPE_DNSKEY 48 /* RFC 4034 section 2 */
#define DNS_CLASS_IN  1
/* RFC 1035 section 4.1.1. */
#define DNS_RCODE_NOERROR  0
#define DNS_RCODE_NXDOMAIN 3

/* An id is (generation << DNS_SLOT_BITS) | slot and stays a positive int. */
#define DNS_SLOT_BITS 16
#define DNS_GEN_MASK  0x7fffu
#define DNS_NO_SLOT   UINT32_MAX

_Static_assert(DNS_PENDING_MAX == 1u << DNS_SLOT_BITS, "ids hold DNS_SLOT_BITS of slot");

enum dns_kind { DNS_KIND_MX, DNS_KIND_ADDRS, DNS_KIND_TLSA, DNS_KIND_TXT, DNS_KIND_CHECK };

struct dns_req;

/* One libunbound query of a lookup, and what its answer said. */
struct dns_sub {
	struct dns_req *req;
	int qtype;
	int ub_id;
	int pending; /* with libunbound: the callback is still to come */
	int status;  /* enum dns_status, once answered */
	int secure;
	size_t naddr; /* addresses kept from an A or AAAA answer */
	unsigned char addr[DNS_ADDR_MAX][16];
	char canon[DNS_NAME_MAX]; /* the CNAME-expanded name, "" if no CNAME */
	char why[256];
};

struct dns_req {
	struct dns *d;
	int id;
	uint32_t slot;
	enum dns_kind kind;
	uint64_t deadline;	     /* uv_now() time; UINT64_MAX: none */
	struct dns_req *prev, *next; /* in deadline order */
	void (*mx_cb)(void *arg, const struct dns_mx_result *r);
	void (*addr_cb)(void *arg, const struct dns_addr_result *r);
	void (*tlsa_cb)(void *arg, const struct dns_tlsa_result *r);
	void (*txt_cb)(void *arg, const struct dns_txt_result *r);
	void (*check_cb)(void *arg, const struct dns_check_result *r);
	void *arg;
	char name[DNS_NAME_MAX];     /* as queried: A-labels only */
	const char *idn_error;       /* static: the name has no A-label form */
	struct dns_sub sub[2]; /* MX, TLSA, TXT: [0]; addresses: [0] AAAA, [1] A */
	int nsub;
};

struct dns_slot {
	struct dns_req *req; /* NULL when free */
	uint32_t gen;	     /* bumped on release: stale ids stop matching */
	uint32_t next_free;
};

struct dns {
	uv_loop_t *loop;
	uv_poll_t poll;
	uv_timer_t timer;
	struct ub_ctx *ub;
	struct dns_slot *slots;
	uint32_t nslots;
	uint32_t free_head;
	uint32_t nreq;
	struct dns_req *first, *last; /* outstanding lookups by deadline */
	uint64_t timeout_ms;
	uint64_t rng;
	int closing;
	int nclose; /* handle closes still to come */
	int broken; /* ub_process() failed: no answer will ever come */
};

static void on_readable(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *t);

/* -- small helpers ------------------------------------------------------ */

/* snprintf for the why texts: a name near 253 octets may cut the text short,
 * which is fine for a message (and keeps -Wformat-truncation quiet). */
RL_PRINTF(3, 4) static void why_set(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
}

static void set_err(char *err, size_t errlen, const char *what, const char *arg, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "dns: %s%s%s: %s", what, arg ? " " : "", arg ? arg : "", why);
}

/* libunbound errors seen by our callers: all are "resolver unusable". */
static int ub_code(int ub_err)
{
	return ub_err == UB_NOMEM ? -ENOMEM : -EIO;
}

static const char *type_name(int qtype)
{
	switch (qtype) {
	case DNS_TYPE_A:
		return "A";
	case DNS_TYPE_AAAA:
		return "AAAA";
	case DNS_TYPE_TLSA:
		return "TLSA";
	case DNS_TYPE_TXT:
		return "TXT";
	default:
		return "MX";
	}
}

/*
 * xorshift64*: the order of equal-preference MX hosts only spreads load
 * (RFC 5321 section 5.1), so it needs no cryptographic strength, but it
 * must not be predictable across processes either: the seed comes from
 * getrandom().  rand() would share state with any other user of it.
 */
static uint64_t rng_seed(const void *salt)
{
	uint64_t s = 0;
	struct timespec ts;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		s = (uint64_t)ts.tv_nsec << 32 ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid() ^
		    (uint64_t)(uintptr_t)salt;
	}
	return s ? s : 0x9E3779B97F4A7C15ULL; /* xorshift must not start at 0 */
}

static uint32_t rng_next(struct dns *d)
{
	uint64_t x = d->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	d->rng = x;
	return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Copy libunbound's text into why with non-printables replaced. */
static void copy_text(char *out, size_t size, const char *s)
{
	size_t i = 0;

	for (; s && s[i] && i + 1 < size; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[i] = '\0';
}

/* -- the request table -------------------------------------------------- */

static int slots_grow(struct dns *d)
{
	uint32_t n = d->nslots ? d->nslots * 2 : 16;
	struct dns_slot *s;

	if (d->nslots >= DNS_PENDING_MAX)
		return RL_ETOOBIG;
	if (n > DNS_PENDING_MAX)
		n = DNS_PENDING_MAX;
	s = realloc(d->slots, n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* New slots go on the free list, lowest index first. */
	for (uint32_t i = n; i-- > d->nslots;) {
		s[i].req = NULL;
		s[i].gen = 0;
		s[i].next_free = d->free_head;
		d->free_head = i;
	}
	d->slots = s;
	d->nslots = n;
	return 0;
}

/* Put req into the deadline-ordered list; arm the timer if it is first. */
static void req_link(struct dns *d, struct dns_req *req)
{
	struct dns_req *after = d->last;

	/* Deadlines only go down when dns_set_timeout() lowers the bound, so
	 * the walk from the end is nearly always zero steps. */
	while (after && after->deadline > req->deadline)
		after = after->prev;
	req->prev = after;
	req->next = after ? after->next : d->first;
	if (req->next)
		req->next->prev = req;
	else
		d->last = req;
	if (after)
		after->next = req;
	else
		d->first = req;
	if (d->first == req && req->deadline != UINT64_MAX) {
		uint64_t now = uv_now(d->loop);

		uv_timer_start(&d->timer, on_timer, req->deadline > now ? req->deadline - now : 0,
			       0);
	}
}

/*
 * The name to query.  A UTF-8 name (U-labels, as SMTPUTF8 mail carries
 * them) is looked up by its A-labels, as Postfix does: IDNA2008 with NFC
 * and nontransitional processing (the German sharp s stays itself), then
 * transitional processing for names only that allows.  A name that has no
 * A-label form is not refused here: the lookup ends with a permanent
 * failure that says why (req->idn_error), like a name that does not exist.
 */
int dns_alabel(const char *name, char *out, size_t outlen, const char **err)
{
	const char *use = name;
	char *ascii = NULL;
	int rc = IDN2_OK;

	*err = NULL;
	for (const char *p = name; *p; p++) {
		if ((unsigned char)*p < 0x80)
			continue;
		rc = idn2_to_ascii_8z(name, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
		if (rc != IDN2_OK)
			rc = idn2_to_ascii_8z(name, &ascii, IDN2_NFC_INPUT | IDN2_TRANSITIONAL);
		use = ascii;
		break;
	}
	if (rc != IDN2_OK) {
		*err = idn2_strerror(rc);
		return RL_EPARSE;
	}
	rc = dns_parse_host(use, strlen(use), out, outlen) < 0 ? -EINVAL : 0;
	idn2_free(ascii);
	return rc;
}

static int req_name(struct dns_req *req, const char *name)
{
	const char *err;
	int rc = dns_alabel(name, req->name, sizeof(req->name), &err);

	if (rc == RL_EPARSE && err) {
		req->idn_error = err;
		return 0;
	}
	return rc;
}

static int req_new(struct dns *d, enum dns_kind kind, const char *name, struct dns_req **out)
{
	struct dns_req *req;
	uint32_t slot;
	int rc = 0;

	if (d->closing || d->broken)
		return -EIO;
	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	/* The root is no host name, but the DNSSEC check asks for its keys. */
	if (kind == DNS_KIND_CHECK && strcmp(name, ".") == 0)
		memcpy(req->name, ".", 2);
	else
		rc = req_name(req, name);
	if (rc < 0) {
		free(req);
		return rc;
	}
	if (d->free_head == DNS_NO_SLOT && (rc = slots_grow(d)) < 0) {
		free(req);
		return rc;
	}
	slot = d->free_head;
	d->free_head = d->slots[slot].next_free;
	d->slots[slot].req = req;
	req->d = d;
	req->kind = kind;
	req->slot = slot;
	req->id = (int)((d->slots[slot].gen & DNS_GEN_MASK) << DNS_SLOT_BITS | slot);
	req->deadline = d->timeout_ms ? uv_now(d->loop) + d->timeout_ms : UINT64_MAX;
	if (req->idn_error)
		req->deadline = uv_now(d->loop); /* a callback, but not from within */
	req_link(d, req);
	/* While lookups are outstanding the loop must keep running. */
	if (d->nreq++ == 0)
		uv_ref((uv_handle_t *)&d->poll);
	*out = req;
	return 0;
}

/* Forget req: out of the list and the table, freed.  No callback. */
static void req_release(struct dns_req *req)
{
	struct dns *d = req->d;
	struct dns_slot *s = &d->slots[req->slot];

	if (req->prev)
		req->prev->next = req->next;
	else
		d->first = req->next;
	if (req->next)
		req->next->prev = req->prev;
	else
		d->last = req->prev;
	s->req = NULL;
	s->gen++;
	s->next_free = d->free_head;
	d->free_head = req->slot;
	free(req);
	if (--d->nreq == 0) {
		uv_timer_stop(&d->timer);
		uv_unref((uv_handle_t *)&d->poll);
	}
}

/* Withdraw the libunbound queries still pending for req. */
static void req_withdraw(struct dns_req *req)
{
	for (int i = 0; i < req->nsub; i++) {
		struct dns_sub *s = &req->sub[i];

		if (!s->pending)
			continue;
		/* In threaded mode ub_cancel() only fails for a query whose
		 * answer was already delivered, and delivery clears pending
		 * first: if it failed here, libunbound could still call back
		 * into memory we are about to free. */
		RL_REQUIRE(ub_cancel(req->d->ub, s->ub_id) == UB_NOERROR);
		s->pending = 0;
	}
}

/* -- answers ------------------------------------------------------------ */

/*
 * Sort one libunbound answer into a dns_status, with the text for a failure
 * as Postfix's dns_strerror() words it ("Host not found, try again"): the
 * caller's sentence ("Host or domain name not found. Name service error
 * for name=N type=T: ") already names the name and type, so the text does
 * not say them again.  Validation failure comes first: a bogus NXDOMAIN or
 * NODATA proves nothing.
 */
static int classify(int err, const struct ub_result *res, int *secure, char *why, size_t whylen)
{
	char bogus[200];

	*secure = 0;
	why[0] = '\0';
	if (err != 0 || !res) {
		why_set(why, whylen, "Host not found, try again (%s)", ub_strerror(err));
		return DNS_TEMPFAIL;
	}
	if (res->bogus) {
		copy_text(bogus, sizeof(bogus), res->why_bogus ? res->why_bogus : "bogus");
		why_set(why, whylen, "DNSSEC validation failed: %s", bogus);
		return DNS_BOGUS;
	}
	*secure = res->secure != 0;
	if (res->rcode == DNS_RCODE_NXDOMAIN || res->nxdomain) {
		why_set(why, whylen, "Host not found");
		return DNS_NXDOMAIN;
	}
	if (res->rcode != DNS_RCODE_NOERROR) {
		/* SERVFAIL, REFUSED, ...: Postfix's TRY_AGAIN. */
		why_set(why, whylen, "Host not found, try again");
		return DNS_TEMPFAIL;
	}
	if (!res->havedata || !res->data || !res->data[0]) {
		why_set(why, whylen, "No data");
		return DNS_NODATA;
	}
	return DNS_OK;
}

/* Keep h among the best DNS_MX_MAX hosts by (preference, random key). */
static void mx_keep(struct dns_mx_result *r, uint32_t *key, const struct dns_mx_host *h, uint32_t k)
{
	size_t worst = 0;

	if (r->nhosts < DNS_MX_MAX) {
		r->hosts[r->nhosts] = *h;
		key[r->nhosts++] = k;
		return;
	}
	for (size_t i = 1; i < r->nhosts; i++)
		if (r->hosts[i].pref > r->hosts[worst].pref ||
		    (r->hosts[i].pref == r->hosts[worst].pref && key[i] > key[worst]))
			worst = i;
	if (h->pref < r->hosts[worst].pref || (h->pref == r->hosts[worst].pref && k < key[worst])) {
		r->hosts[worst] = *h;
		key[worst] = k;
	}
}

/*
 * Order by preference, and among equal preferences by the random key: a
 * uniformly random order of equals (RFC 5321 section 5.1).  Insertion sort:
 * at most DNS_MX_MAX entries.
 */
static void mx_sort(struct dns_mx_result *r, uint32_t *key)
{
	for (size_t i = 1; i < r->nhosts; i++) {
		struct dns_mx_host h = r->hosts[i];
		uint32_t k = key[i];
		size_t j = i;

		for (; j > 0 && (r->hosts[j - 1].pref > h.pref ||
				 (r->hosts[j - 1].pref == h.pref && key[j - 1] > k));
		     j--) {
			r->hosts[j] = r->hosts[j - 1];
			key[j] = key[j - 1];
		}
		r->hosts[j] = h;
		key[j] = k;
	}
}

/* The hosts of an MX answer that classify() found usable. */
static void mx_hosts(struct dns *d, const char *name, const struct ub_result *res,
		     struct dns_mx_result *r)
{
	uint32_t key[DNS_MX_MAX];
	struct dns_mx_host h;
	size_t nrec = 0, nroot = 0;

	for (size_t i = 0; res->data[i]; i++) {
		nrec++;
		/* A record we cannot read is skipped, not fatal: the others
		 * may still name a host we can deliver to. */
		if (res->len[i] < 0 ||
		    dns_parse_mx((const unsigned char *)res->data[i], (size_t)res->len[i], &h) < 0)
			continue;
		/* The root as exchange is the null MX; next to other records
		 * (which RFC 7505 section 3 forbids) it names no host. */
		if (h.name[0] == '\0') {
			nroot += h.pref == 0;
			continue;
		}
		mx_keep(r, key, &h, rng_next(d));
	}
	if (nrec == 1 && nroot == 1) {
		r->null_mx = 1;
		why_set(r->why, sizeof(r->why), "Domain %s does not accept mail (nullMX)", name);
		return;
	}
	if (r->nhosts == 0) {
		/* Nothing to deliver to, but no statement that the domain
		 * takes no mail either: defer rather than bounce. */
		r->status = DNS_TEMPFAIL;
		why_set(r->why, sizeof(r->why), "MX records name no usable host");
		return;
	}
	mx_sort(r, key);
}

static void mx_fill(struct dns_req *req, int err, const struct ub_result *res,
		    struct dns_mx_result *r)
{
	memset(r, 0, sizeof(*r));
	r->status = classify(err, res, &r->secure, r->why, sizeof(r->why));
	if (r->status == DNS_NODATA) {
		/* RFC 5321 section 5.1: no MX, so the domain is its own
		 * single MX host with preference 0. */
		r->status = DNS_OK;
		r->implicit = 1;
		r->nhosts = 1;
		memcpy(r->hosts[0].name, req->name, sizeof(req->name));
		r->hosts[0].pref = 0;
		r->why[0] = '\0';
		return;
	}
	if (r->status == DNS_OK)
		mx_hosts(req->d, req->name, res, r);
}

/* Hand r to the owner; req is gone before the callback runs, so the
 * callback may cancel, start lookups or call dns_free(). */
static void mx_finish(struct dns_req *req, const struct dns_mx_result *r)
{
	void (*cb)(void *, const struct dns_mx_result *) = req->mx_cb;
	void *arg = req->arg;

	req_release(req);
	cb(arg, r);
}

static void addr_collect(struct dns_req *req, struct dns_sub *s, int err,
			 const struct ub_result *res)
{
	size_t want = s->qtype == DNS_TYPE_AAAA ? 16 : 4;

	s->status = classify(err, res, &s->secure, s->why, sizeof(s->why));
	if (s->status != DNS_OK)
		return;
	/* libunbound names the end of a CNAME chain; "" when there was none. */
	if (!res->canonname || dns_parse_host(res->canonname, strlen(res->canonname), s->canon,
					      sizeof(s->canon)) < 0 ||
	    strcasecmp(s->canon, req->name) == 0)
		s->canon[0] = '\0';
	for (size_t i = 0; res->data[i] && s->naddr < DNS_ADDR_MAX; i++)
		if (res->len[i] == (int)want)
			memcpy(s->addr[s->naddr++], res->data[i], want);
	if (s->naddr == 0) {
		s->status = DNS_NODATA;
		why_set(s->why, sizeof(s->why), "Malformed %s records", type_name(s->qtype));
	}
}

static void addr_put(struct dns_addr_result *r, int family, const unsigned char *bytes)
{
	struct dns_addr *a = &r->addr[r->naddr++];

	memset(a, 0, sizeof(*a));
	if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->sa;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, bytes, 16);
		a->len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, bytes, 4);
		a->len = sizeof(*sin);
	}
}

/* The status of two answers without addresses, and whose text explains it. */
static int addrs_status(const struct dns_sub *s6, const struct dns_sub *s4, const char **why)
{
	static const int worst[] = {DNS_BOGUS, DNS_TEMPFAIL};

	/* A failure to look one family up hides nothing less than a denial:
	 * report it, so the delivery is deferred, not bounced. */
	for (size_t i = 0; i < sizeof(worst) / sizeof(worst[0]); i++) {
		if (s4->status == worst[i] || s6->status == worst[i]) {
			*why = s4->status == worst[i] ? s4->why : s6->why;
			return worst[i];
		}
	}
	if (s4->status == DNS_NXDOMAIN && s6->status == DNS_NXDOMAIN) {
		*why = s4->why;
		return DNS_NXDOMAIN;
	}
	*why = NULL;
	return DNS_NODATA;
}

static void addrs_finish(struct dns_req *req)
{
	const struct dns_sub *s6 = &req->sub[0], *s4 = &req->sub[1];
	void (*cb)(void *, const struct dns_addr_result *) = req->addr_cb;
	void *arg = req->arg;
	struct dns_addr_result r;
	const char *why = NULL;

	memset(&r, 0, sizeof(r));
	for (size_t i = 0; i < s6->naddr && r.naddr < DNS_ADDR_MAX; i++)
		addr_put(&r, AF_INET6, s6->addr[i]);
	for (size_t i = 0; i < s4->naddr && r.naddr < DNS_ADDR_MAX; i++)
		addr_put(&r, AF_INET, s4->addr[i]);
	/* Both answers shaped the result (one by its addresses, the other
	 * by having none), so it is only as trustworthy as the weaker. */
	r.secure = s6->secure && s4->secure;
	r.secure6 = s6->secure;
	r.secure4 = s4->secure;
	r.status = r.naddr > 0 ? DNS_OK : addrs_status(s6, s4, &why);
	/* The alias target, from whichever answer gave addresses (IPv6 first). */
	rl_strlcpy(r.canon, s6->naddr ? s6->canon : s4->canon, sizeof(r.canon));
	r.canon_secure = s6->naddr && s6->canon[0] ? s6->secure : s4->secure;
	if (why)
		copy_text(r.why, sizeof(r.why), why);
	else if (r.status == DNS_NODATA)
		why_set(r.why, sizeof(r.why), "No address associated with hostname");
	req_release(req);
	cb(arg, &r);
}

/*
 * The records of a TLSA answer, pointing into res (alive until the callback
 * has returned).  A record too large for DANE_DATA_MAX, or past the first
 * DNS_TLSA_MAX, is counted, not kept: the caller sees that records were
 * there, so "present but none usable" stays distinguishable from "none".
 */
static void tlsa_fill(int err, const struct ub_result *res, struct dns_tlsa_result *r)
{
	memset(r, 0, sizeof(*r));
	r->status = classify(err, res, &r->secure, r->why, sizeof(r->why));
	if (r->status != DNS_OK)
		return;
	for (size_t i = 0; res->data[i]; i++) {
		if (res->len[i] < 0 || res->len[i] > DNS_TLSA_RDATA_MAX || r->nrec >= DNS_TLSA_MAX) {
			r->ndropped++;
			continue;
		}
		r->rec[r->nrec].data = (const unsigned char *)res->data[i];
		r->rec[r->nrec++].len = (size_t)res->len[i];
	}
}

static void tlsa_finish(struct dns_req *req, const struct dns_tlsa_result *r)
{
	void (*cb)(void *, const struct dns_tlsa_result *) = req->tlsa_cb;
	void *arg = req->arg;

	req_release(req);
	cb(arg, r);
}

/*
 * The records of a TXT answer, as tlsa_fill() does it: rdata pointing into
 * res, a record over DNS_TXT_RDATA_MAX or past DNS_TXT_MAX counted, not
 * kept.  The character-strings are not checked here: the rdata goes as it
 * came to the parsers in policy/ (sts_txt_parse()), which read it as
 * untrusted bytes.
 */
static void txt_fill(int err, const struct ub_result *res, struct dns_txt_result *r)
{
	memset(r, 0, sizeof(*r));
	r->status = classify(err, res, &r->secure, r->why, sizeof(r->why));
	if (r->status != DNS_OK)
		return;
	for (size_t i = 0; res->data[i]; i++) {
		if (res->len[i] < 0 || res->len[i] > DNS_TXT_RDATA_MAX || r->nrec >= DNS_TXT_MAX) {
			r->ndropped++;
			continue;
		}
		r->rec[r->nrec].data = (const unsigned char *)res->data[i];
		r->rec[r->nrec++].len = (size_t)res->len[i];
	}
}

static void txt_finish(struct dns_req *req, const struct dns_txt_result *r)
{
	void (*cb)(void *, const struct dns_txt_result *) = req->txt_cb;
	void *arg = req->arg;

	req_release(req);
	cb(arg, r);
}

/* -- the DNSSEC check (dns_check_dnssec) -------------------------------- */

static const char *rcode_name(int rcode)
{
	/* RFC 1035 section 4.1.1. */
	static const char *names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
				      "NXDOMAIN", "NOTIMP",  "REFUSED"};

	return rcode >= 0 && rcode < 6 ? names[rcode] : "an error rcode";
}

/*
 * What the DNSKEY answer says about validation.  Secure: it works.  Bogus:
 * libunbound says why (typically "no DNSKEY rrset from SERVER", when the
 * server strips DNSSEC records).  An answer that is neither was not
 * validated at all: no trust anchor covers the zone, or nothing was signed.
 */
static void check_fill(int err, const struct ub_result *res, struct dns_check_result *r)
{
	char text[200];

	memset(r, 0, sizeof(*r));
	if (err != 0 || !res) {
		r->verdict = DNS_CHECK_NOANSWER;
		why_set(r->why, sizeof(r->why), "no answer (%s)", ub_strerror(err));
	} else if (res->bogus) {
		r->verdict = DNS_CHECK_BOGUS;
		copy_text(text, sizeof(text), res->why_bogus ? res->why_bogus : "bogus");
		why_set(r->why, sizeof(r->why), "DNSSEC validation failed: %s", text);
	} else if (res->secure) {
		r->verdict = DNS_CHECK_SECURE;
	} else if (res->rcode != DNS_RCODE_NOERROR && res->rcode != DNS_RCODE_NXDOMAIN) {
		r->verdict = DNS_CHECK_NOANSWER;
		why_set(r->why, sizeof(r->why), "no answer (%s)", rcode_name(res->rcode));
	} else {
		r->verdict = DNS_CHECK_INSECURE;
		why_set(r->why, sizeof(r->why),
			"the answer is insecure: not signed, or no trust anchor for it");
	}
}

static void check_finish(struct dns_req *req, const struct dns_check_result *r)
{
	void (*cb)(void *, const struct dns_check_result *) = req->check_cb;
	void *arg = req->arg;

	req_release(req);
	cb(arg, r);
}

/* End a one-query lookup (MX, TLSA, TXT, check) without an answer: status and why. */
static void single_finish(struct dns_req *req, int status, const char *why)
{
	if (req->kind == DNS_KIND_CHECK) {
		struct dns_check_result r;

		memset(&r, 0, sizeof(r));
		r.verdict = DNS_CHECK_NOANSWER;
		copy_text(r.why, sizeof(r.why), why);
		check_finish(req, &r);
	} else if (req->kind == DNS_KIND_MX) {
		struct dns_mx_result r;

		memset(&r, 0, sizeof(r));
		r.status = status;
		copy_text(r.why, sizeof(r.why), why);
		mx_finish(req, &r);
	} else if (req->kind == DNS_KIND_TXT) {
		struct dns_txt_result r;

		memset(&r, 0, sizeof(r));
		r.status = status;
		copy_text(r.why, sizeof(r.why), why);
		txt_finish(req, &r);
	} else {
		struct dns_tlsa_result r;

		memset(&r, 0, sizeof(r));
		r.status = status;
		copy_text(r.why, sizeof(r.why), why);
		tlsa_finish(req, &r);
	}
}

/* libunbound's callback, from ub_process() on the loop thread. */
static void on_answer(void *mydata, int err, struct ub_result *res)
{
	struct dns_sub *s = mydata;
	struct dns_req *req = s->req;

	s->pending = 0;
	if (req->kind == DNS_KIND_CHECK) {
		struct dns_check_result r;

		check_fill(err, res, &r);
		ub_resolve_free(res);
		check_finish(req, &r);
		return;
	}
	if (req->kind == DNS_KIND_TLSA) {
		struct dns_tlsa_result r;

		/* The records point into res: free it only afterwards. */
		tlsa_fill(err, res, &r);
		tlsa_finish(req, &r);
		ub_resolve_free(res);
		return;
	}
	if (req->kind == DNS_KIND_TXT) {
		struct dns_txt_result r;

		txt_fill(err, res, &r);
		txt_finish(req, &r);
		ub_resolve_free(res);
		return;
	}
	if (req->kind == DNS_KIND_MX) {
		struct dns_mx_result r;

		mx_fill(req, err, res, &r);
		ub_resolve_free(res);
		mx_finish(req, &r);
		return;
	}
	addr_collect(req, s, err, res);
	ub_resolve_free(res);
	if (!req->sub[0].pending && !req->sub[1].pending)
		addrs_finish(req);
}

/* End req now with DNS_TEMPFAIL for every query still pending. */
static void req_fail(struct dns_req *req, const char *reason)
{
	for (int i = 0; i < req->nsub; i++) {
		struct dns_sub *s = &req->sub[i];

		if (!s->pending)
			continue;
		s->status = DNS_TEMPFAIL;
		s->secure = 0;
		if (req->kind == DNS_KIND_CHECK)
			why_set(s->why, sizeof(s->why), "no answer (%s)", reason);
		else
			why_set(s->why, sizeof(s->why), "Host not found, try again (%s)", reason);
	}
	req_withdraw(req);
	if (req->kind != DNS_KIND_ADDRS) {
		single_finish(req, DNS_TEMPFAIL, req->sub[0].why);
		return;
	}
	addrs_finish(req);
}

/* End req, whose name has no A-label form, with a permanent failure. */
static void req_refuse(struct dns_req *req)
{
	for (int i = 0; i < req->nsub; i++) {
		struct dns_sub *s = &req->sub[i];

		s->status = DNS_NXDOMAIN;
		s->secure = 0;
		why_set(s->why, sizeof(s->why),
			"Host not found (not a valid internationalized domain name: %s)",
			req->idn_error);
	}
	if (req->kind != DNS_KIND_ADDRS) {
		single_finish(req, DNS_NXDOMAIN, req->sub[0].why);
		return;
	}
	addrs_finish(req);
}

/* -- loop callbacks ----------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
	struct dns *d = t->data;
	uint64_t now = uv_now(d->loop);

	/* Re-read the head every time: a callback may cancel other lookups,
	 * start new ones or free the resolver. */
	while (!d->closing && d->first && d->first->deadline <= now)
		if (d->first->idn_error)
			req_refuse(d->first);
		else
			req_fail(d->first, "timed out");
	if (!d->closing && d->first && d->first->deadline != UINT64_MAX)
		uv_timer_start(&d->timer, on_timer, d->first->deadline - now, 0);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	struct dns *d = h->data;
	int rc = status;

	if (d->closing)
		return;
	if (rc == 0)
		rc = ub_process(d->ub);
	if (rc == 0 || d->closing)
		return;
	/* The pipe from the resolver thread is broken: no answer will come.
	 * Stop watching (a dead pipe would be readable forever) and fail
	 * what is outstanding, so every delivery waiting on it is deferred. */
	d->broken = 1;
	uv_poll_stop(&d->poll);
	while (!d->closing && d->first)
		req_fail(d->first, status < 0 ? uv_strerror(status) : ub_strerror(rc));
}

static void on_close(uv_handle_t *h)
{
	struct dns *d = h->data;

	if (--d->nclose > 0)
		return;
	/* Only now, outside any ub_process(): ub_ctx_delete() stops and
	 * joins the resolver thread and frees the cancelled queries. */
	ub_ctx_delete(d->ub);
	free(d->slots);
	free(d);
}

/* -- public ------------------------------------------------------------- */

/* A dns_servers address in libunbound's own "IP@PORT" notation. */
static int fwd_text(const struct cfg_addr *a, char *out, size_t size)
{
	char ip[NETADDR_TEXT_SIZE];
	unsigned port;

	if (netaddr_text((const struct sockaddr *)&a->sa, ip, sizeof(ip), &port) < 0)
		return -EINVAL;
	snprintf(out, size, "%s@%u", ip, port);
	return 0;
}

/* dns_unbound_config, then the servers, then the trust anchors (dns.h). */
static int ub_setup(struct ub_ctx *ub, const struct cfg *cfg, char *err, size_t errlen)
{
	int rc;

	if ((rc = ub_ctx_async(ub, 1)) != 0) {
		set_err(err, errlen, "cannot use a resolver thread", NULL, ub_strerror(rc));
		return ub_code(rc);
	}
	/* libunbound reports a missing file as a syntax error; say what it is. */
	if (cfg->dns_unbound_config && access(cfg->dns_unbound_config, R_OK) != 0) {
		set_err(err, errlen, "cannot read dns_unbound_config", cfg->dns_unbound_config,
			strerror(errno));
		return RL_ECONFIG;
	}
	if (cfg->dns_unbound_config && (rc = ub_ctx_config(ub, cfg->dns_unbound_config)) != 0) {
		set_err(err, errlen, "cannot load dns_unbound_config", cfg->dns_unbound_config,
			ub_strerror(rc));
		return RL_ECONFIG;
	}
	if (cfg->dns_system && (rc = ub_ctx_resolvconf(ub, NULL)) != 0) {
		set_err(err, errlen, "cannot use", "/etc/resolv.conf", ub_strerror(rc));
		return RL_ECONFIG;
	}
	for (size_t i = 0; !cfg->dns_system && i < cfg->ndns; i++) {
		char fwd[INET6_ADDRSTRLEN + 8];

		if (fwd_text(&cfg->dns[i], fwd, sizeof(fwd)) < 0) {
			set_err(err, errlen, "cannot use a DNS server", NULL, "bad address");
			return RL_ECONFIG;
		}
		if ((rc = ub_ctx_set_fwd(ub, fwd)) != 0) {
			set_err(err, errlen, "cannot use DNS server", fwd, ub_strerror(rc));
			return RL_ECONFIG;
		}
	}
	/* The default anchor (Debian's root key) may not be installed; then
	 * nothing validates and DANE is simply never usable. */
	if (cfg->dns_trust_anchor_file && access(cfg->dns_trust_anchor_file, R_OK) == 0 &&
	    (rc = ub_ctx_add_ta_file(ub, cfg->dns_trust_anchor_file)) != 0) {
		set_err(err, errlen, "cannot load dns_trust_anchor_file",
			cfg->dns_trust_anchor_file, ub_strerror(rc));
		return RL_ECONFIG;
	}
	return 0;
}

int dns_new(uv_loop_t *loop, const struct cfg *cfg, struct dns **out, char *err, size_t errlen)
{
	struct dns *d;
	int rc, fd;

	RL_REQUIRE(loop && cfg && out);
	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->loop = loop;
	d->free_head = DNS_NO_SLOT;
	d->timeout_ms = DNS_TIMEOUT_MS;
	d->rng = rng_seed(d);
	d->ub = ub_ctx_create();
	if (!d->ub) {
		set_err(err, errlen, "cannot create the resolver", NULL, "out of memory");
		free(d);
		return -ENOMEM;
	}
	rc = ub_setup(d->ub, cfg, err, errlen);
	fd = rc == 0 ? ub_fd(d->ub) : -1;
	if (rc == 0 && fd < 0) {
		set_err(err, errlen, "cannot create the resolver", NULL, "no result pipe");
		rc = -EIO;
	}
	if (rc == 0 && (rc = uv_poll_init(loop, &d->poll, fd)) < 0)
		set_err(err, errlen, "cannot watch the resolver", NULL, uv_strerror(rc));
	if (rc < 0) {
		ub_ctx_delete(d->ub);
		free(d);
		return rc;
	}
	/* From here on d is freed only through the close callbacks. */
	uv_timer_init(loop, &d->timer);
	d->poll.data = d;
	d->timer.data = d;
	uv_poll_start(&d->poll, UV_READABLE, on_readable);
	uv_unref((uv_handle_t *)&d->poll);
	*out = d;
	return 0;
}

void dns_free(struct dns *d)
{
	if (!d || d->closing)
		return;
	d->closing = 1;
	while (d->first) {
		struct dns_req *req = d->first;

		req_withdraw(req);
		req_release(req);
	}
	d->nclose = 2;
	uv_close((uv_handle_t *)&d->poll, on_close);
	uv_close((uv_handle_t *)&d->timer, on_close);
}

void dns_set_timeout(struct dns *d, uint64_t ms)
{
	RL_REQUIRE(d);
	d->timeout_ms = ms;
}

/* Send query i of req; on failure req is left for the caller to release. */
static int sub_start(struct dns_req *req, int i, int qtype)
{
	struct dns_sub *s = &req->sub[i];
	int rc;

	s->req = req;
	s->qtype = qtype;
	if (req->idn_error)
		return 0; /* ended by the timer at once (req_refuse) */
	rc = ub_resolve_async(req->d->ub, req->name, qtype, DNS_CLASS_IN, s, on_answer, &s->ub_id);
	if (rc != 0)
		return ub_code(rc);
	s->pending = 1;
	return 0;
}

int dns_mx(struct dns *d, const char *domain, void (*cb)(void *arg, const struct dns_mx_result *r),
	   void *arg)
{
	struct dns_req *req;
	int rc;

	RL_REQUIRE(d && domain && cb);
	rc = req_new(d, DNS_KIND_MX, domain, &req);
	if (rc < 0)
		return rc;
	req->mx_cb = cb;
	req->arg = arg;
	req->nsub = 1;
	rc = sub_start(req, 0, DNS_TYPE_MX);
	if (rc < 0) {
		req_release(req);
		return rc;
	}
	return req->id;
}

int dns_addrs(struct dns *d, const char *host,
	      void (*cb)(void *arg, const struct dns_addr_result *r), void *arg)
{
	struct dns_req *req;
	int rc;

	RL_REQUIRE(d && host && cb);
	rc = req_new(d, DNS_KIND_ADDRS, host, &req);
	if (rc < 0)
		return rc;
	req->addr_cb = cb;
	req->arg = arg;
	req->nsub = 2;
	rc = sub_start(req, 0, DNS_TYPE_AAAA);
	if (rc == 0)
		rc = sub_start(req, 1, DNS_TYPE_A);
	if (rc < 0) {
		req_withdraw(req);
		req_release(req);
		return rc;
	}
	return req->id;
}

int dns_tlsa(struct dns *d, const char *name,
	     void (*cb)(void *arg, const struct dns_tlsa_result *r), void *arg)
{
	struct dns_req *req;
	int rc;

	RL_REQUIRE(d && name && cb);
	rc = req_new(d, DNS_KIND_TLSA, name, &req);
	if (rc < 0)
		return rc;
	req->tlsa_cb = cb;
	req->arg = arg;
	req->nsub = 1;
	rc = sub_start(req, 0, DNS_TYPE_TLSA);
	if (rc < 0) {
		req_release(req);
		return rc;
	}
	return req->id;
}

int dns_txt(struct dns *d, const char *name, void (*cb)(void *arg, const struct dns_txt_result *r),
	    void *arg)
{
	struct dns_req *req;
	int rc;

	RL_REQUIRE(d && name && cb);
	rc = req_new(d, DNS_KIND_TXT, name, &req);
	if (rc < 0)
		return rc;
	req->txt_cb = cb;
	req->arg = arg;
	req->nsub = 1;
	rc = sub_start(req, 0, DNS_TYPE_TXT);
	if (rc < 0) {
		req_release(req);
		return rc;
	}
	return req->id;
}

int dns_check_dnssec(struct dns *d, const char *zone,
		     void (*cb)(void *arg, const struct dns_check_result *r), void *arg)
{
	struct dns_req *req;
	int rc;

	RL_REQUIRE(d && cb);
	rc = req_new(d, DNS_KIND_CHECK, zone && zone[0] ? zone : ".", &req);
	if (rc < 0)
		return rc;
	req->check_cb = cb;
	req->arg = arg;
	req->nsub = 1;
	rc = sub_start(req, 0, DNS_TYPE_DNSKEY);
	if (rc < 0) {
		req_release(req);
		return rc;
	}
	return req->id;
}

void dns_cancel(struct dns *d, int id)
{
	uint32_t slot;
	struct dns_req *req;

	if (!d || id < 0)
		return;
	slot = (uint32_t)id & (DNS_PENDING_MAX - 1);
	if (slot >= d->nslots)
		return;
	req = d->slots[slot].req;
	/* A completed or cancelled id no longer matches: its slot is free or
	 * carries a newer generation. */
	if (!req || req->id != id)
		return;
	req_withdraw(req);
	req_release(req);
}
