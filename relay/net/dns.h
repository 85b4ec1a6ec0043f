/*
 * dns: asynchronous, DNSSEC-validating lookups with libunbound, driven by
 * the libuv loop (ub_fd watched by a uv_poll_t; ub_process() on readable).
 *
 * Results carry their DNSSEC status (secure, insecure or bogus) so that DANE
 * can rely on them later.  A bogus answer is a temporary failure: mail is
 * deferred, never sent on an answer that failed validation.
 *
 * Lifetime: dns_free() cancels outstanding queries; their callbacks are not
 * called.  dns_cancel() cancels one.  Callbacks run on the loop thread, never
 * inside dns_mx()/dns_addrs()/dns_tlsa()/dns_txt() themselves.  Loop thread only.
 *
 * Loop handles: the resolver owns a uv_poll_t and a uv_timer_t.  They keep
 * the loop alive only while lookups are outstanding, so a short-lived tool
 * can uv_run() until its lookups are done.  dns_free() starts closing them
 * and the memory is released from the last close callback, so the loop
 * must run once more before uv_loop_close() (which then returns 0).
 *
 * Every lookup is bounded in time (DNS_TIMEOUT_MS, see dns_set_timeout()):
 * a lookup that takes longer completes with DNS_TEMPFAIL.
 *
 * Names: a UTF-8 name is looked up by its A-labels (IDNA2008 via libidn2);
 * one that has no A-label form ends with DNS_NXDOMAIN and a why saying so
 * (permanent), through the callback like any answer.
 *
 * Errors: dns_new() fails with a negative code and a message; dns_mx(),
 * dns_addrs(), dns_tlsa(), dns_txt() and dns_check_dnssec() return -EINVAL
 * for a name that is not a host name (the check also takes "."),
 * RL_ETOOBIG when DNS_PENDING_MAX lookups are outstanding, -ENOMEM, or -EIO
 * when the resolver is unusable.  Lookup outcomes come back in the result's status.
 */
#ifndef DNS_H
#define DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "cfg.h"
#include "rl.h"

#define DNS_NAME_MAX 256 /* text form, without the trailing dot */
#define DNS_MX_MAX 32
#define DNS_ADDR_MAX 16
/* TLSA records of one answer that are kept (more are counted, not kept),
 * and the largest rdata kept: usage, selector, matching type and a full
 * certificate or key of DANE_DATA_MAX (policy/dane.h) octets. */
#define DNS_TLSA_MAX 32
#define DNS_TLSA_RDATA_MAX (3 + 4096)
/* TXT records of one answer that are kept (more are counted, not kept),
 * and the largest rdata kept.  MTA-STS and TLS-RPT records (RFC 8461 3.1,
 * RFC 8460 3) are a few dozen octets; an RRset full of other TXT records
 * (site verifications) only needs to be seen as "more than one". */
#define DNS_TXT_MAX 16
#define DNS_TXT_RDATA_MAX 4096
#define DNS_TIMEOUT_MS 30000   /* default bound on one lookup */
#define DNS_PENDING_MAX 65536  /* outstanding lookups per resolver */

enum dns_status {
	DNS_OK = 0,    /* records found */
	DNS_NXDOMAIN,  /* the name does not exist (permanent) */
	DNS_NODATA,    /* the name exists but has no such records */
	DNS_TEMPFAIL,  /* SERVFAIL, timeout, no server reachable */
	DNS_BOGUS,     /* DNSSEC validation failed (treated as temporary) */
};

struct dns_mx_host {
	char name[DNS_NAME_MAX];
	unsigned pref;
};

/*
 * A null MX is status DNS_OK with null_mx = 1 and no hosts.  MX records of
 * which none names a usable host (unreadable names, a "." next to other
 * records) give DNS_TEMPFAIL: nothing to deliver to, but no refusal either.
 */
struct dns_mx_result {
	int status;       /* enum dns_status of the MX query */
	int secure;       /* the MX answer (or its denial) was DNSSEC-validated */
	int null_mx;      /* RFC 7505: a single "0 ." MX */
	int implicit;     /* no MX: hosts[0] is the domain itself (RFC 5321 5.1) */
	size_t nhosts;
	struct dns_mx_host hosts[DNS_MX_MAX]; /* by preference; random among equals */
	/* Text for a failure as Postfix's dns_strerror() words it ("Host not
	 * found, try again"), without the name and type: the caller's
	 * "Host or domain name not found. Name service error for name=N
	 * type=T: " sentence says those. */
	char why[256];
};

struct dns_addr {
	struct sockaddr_storage sa; /* sockaddr_in or _in6; port 0 */
	socklen_t len;
};

struct dns_addr_result {
	int status;       /* DNS_OK if either A or AAAA gave addresses */
	int secure;       /* both the AAAA and the A answer were validated */
	/* Each family on its own: its answer, or its denial, was validated
	 * (DANE asks for secure address records of either family). */
	int secure6, secure4;
	size_t naddr;
	struct dns_addr addr[DNS_ADDR_MAX]; /* IPv6 first, then IPv4 */
	/*
	 * When the host name is an alias: the end of its CNAME chain (RFC 7672
	 * section 2.2.2 looks for TLSA records there first), else "".
	 * canon_secure: the answer that named it was validated.
	 */
	char canon[DNS_NAME_MAX];
	int canon_secure;
	char why[256];
};

struct dns_tlsa_rr {
	const unsigned char *data; /* valid only during the callback */
	size_t len;		   /* 0 .. DNS_TLSA_RDATA_MAX */
};

/*
 * The result classes DANE needs (RFC 7672 section 2.2): DNS_OK with secure
 * = 1 (usable records); DNS_NODATA/DNS_NXDOMAIN with secure = 1 (a proven
 * absence: no DANE); any status with secure = 0 (insecure: no DANE);
 * DNS_TEMPFAIL (SERVFAIL, timeout) and DNS_BOGUS (validation failed) are
 * temporary failures that must never be taken for "no TLSA".  secure is
 * libunbound's own validation (ub_result->secure), never a server's AD bit.
 * DNS_OK may come with nrec = 0 when every record was dropped (ndropped).
 */
struct dns_tlsa_result {
	int status;	  /* enum dns_status */
	int secure;	  /* the answer or its denial was DNSSEC-validated */
	size_t nrec;
	struct dns_tlsa_rr rec[DNS_TLSA_MAX]; /* raw rdata, in answer order */
	size_t ndropped;  /* records over DNS_TLSA_RDATA_MAX or DNS_TLSA_MAX */
	char why[256];    /* for a failure, e.g. "DNSSEC validation failed: ..." */
};

struct dns_txt_rr {
	/* The rdata in wire form: one or more character-strings (a length
	 * octet, then that many octets), as received and not checked; valid
	 * only during the callback.  struct sts_txt (policy/sts.h) takes it. */
	const unsigned char *data;
	size_t len; /* 0 .. DNS_TXT_RDATA_MAX */
};

/*
 * A TXT RRset (`_mta-sts.example.com`, `_smtp._tls.example.com`), with the
 * same result classes as TLSA: DNS_OK (records, secure or not); DNS_NODATA
 * and DNS_NXDOMAIN (none; secure says whether that was proven);
 * DNS_TEMPFAIL and DNS_BOGUS, which say nothing about the records and must
 * not be taken for "none".  ndropped > 0 means the RRset had records that
 * are not in rec[] (over DNS_TXT_RDATA_MAX, or past DNS_TXT_MAX): a caller
 * that needs the whole RRset (RFC 8461 3.1: exactly one STSv1 record) must
 * not treat what is kept as all of it.  DNS_OK may come with nrec = 0.
 */
struct dns_txt_result {
	int status;	 /* enum dns_status: OK, NXDOMAIN, NODATA, TEMPFAIL, BOGUS */
	int secure;	 /* the answer or its denial was DNSSEC-validated */
	size_t nrec;
	struct dns_txt_rr rec[DNS_TXT_MAX]; /* in answer order */
	size_t ndropped; /* records over DNS_TXT_RDATA_MAX or DNS_TXT_MAX */
	char why[256];	 /* for a failure, as for TLSA */
};

struct dns;

/*
 * Create the resolver from the configuration: dns_unbound_config (loaded
 * first), then dns_servers (`system`: /etc/resolv.conf; else forwarders
 * IP[@PORT]), then dns_trust_anchor_file if it exists.  On failure err holds
 * one line for the log.
 */
int dns_new(uv_loop_t *loop, const struct cfg *cfg, struct dns **out, char *err,
	    size_t errlen) RL_WUR;
/*
 * Cancel every outstanding lookup (no callback runs) and close the handles;
 * d is released from the last close callback and must not be used after
 * this call.  Safe inside a dns callback.  dns_free(NULL) is a no-op.
 */
void dns_free(struct dns *d);

/* Bound lookups started from now on to ms milliseconds (0: no bound). */
void dns_set_timeout(struct dns *d, uint64_t ms);

/*
 * MX lookup with implicit-MX and null-MX handling; returns a query id >= 0.
 * domain is a host name in ASCII (A-labels), with or without the final dot.
 */
int dns_mx(struct dns *d, const char *domain,
	   void (*cb)(void *arg, const struct dns_mx_result *r), void *arg) RL_WUR;

/* A and AAAA of a host, merged into one result; returns a query id >= 0. */
int dns_addrs(struct dns *d, const char *host,
	      void (*cb)(void *arg, const struct dns_addr_result *r), void *arg) RL_WUR;

/*
 * TLSA records at name (`_25._tcp.mx.example.com`); returns a query id >= 0.
 * The record pointers in the result are valid only during the callback.
 */
int dns_tlsa(struct dns *d, const char *name,
	     void (*cb)(void *arg, const struct dns_tlsa_result *r), void *arg) RL_WUR;

/*
 * TXT records at name; returns a query id >= 0.  Names with underscore
 * labels are host names here (dns_parse_host()).  The record pointers in
 * the result are valid only during the callback.
 */
int dns_txt(struct dns *d, const char *name,
	    void (*cb)(void *arg, const struct dns_txt_result *r), void *arg) RL_WUR;

/*
 * The one sentence a failed lookup is reported with, as Postfix's
 * smtp_addr.c words it: "Host or domain name not found. Name service error
 * for name=NAME type=TYPE: WHY", WHY being the result's why (or, when it
 * has none, the dns_strerror() text for status).  A DNS_BOGUS answer leads
 * with its cause instead: "DNSSEC validation failed for name=NAME
 * type=TYPE: WHY" (the "DNSSEC validation failed: " that starts the why of
 * a bogus result is not said twice).  Used for the deferral and bounce
 * reasons of mail, so that the wording lives in one place.  Pure
 * (dns_parse.c); out is always terminated.
 */
void dns_fail_text(char *out, size_t size, const char *name, const char *type, int status,
		   const char *why);

/*
 * Does DNSSEC validation work through the configured servers?  A resolver
 * that does not pass DNSSEC records through (many site and ISP resolvers)
 * makes every DANE lookup bogus, and mail to DANE domains is deferred with
 * no hint why; this check says so once, at start and in `policy show`.
 *
 * dns_check_dnssec() asks for the DNSKEY RRset of zone (NULL or "." for the
 * root), a zone with a trust anchor: when validation works, that answer
 * validates.  The result comes back through cb on the loop, like every
 * lookup (never from within the call), bounded by the lookup timeout;
 * dns_cancel() and dns_free() work on its id as on any other.
 */
enum dns_check_verdict {
	DNS_CHECK_SECURE = 0, /* the DNSKEY RRset validated: validation works */
	DNS_CHECK_BOGUS,      /* validation failed (why: libunbound's why_bogus) */
	DNS_CHECK_INSECURE,   /* an answer, not validated: unsigned, or no trust anchor */
	DNS_CHECK_NOANSWER,   /* SERVFAIL, REFUSED, timeout, no server reachable */
};

struct dns_check_result {
	int verdict;   /* enum dns_check_verdict */
	char why[256]; /* for all but DNS_CHECK_SECURE: what failed, one line */
};

int dns_check_dnssec(struct dns *d, const char *zone,
		     void (*cb)(void *arg, const struct dns_check_result *r), void *arg) RL_WUR;

/*
 * For the check's callers (dns_check.c; these read files, so not on a busy
 * loop): the zone to check, being the owner of the first DS or DNSKEY
 * record in dns_trust_anchor_file, or "." when that file is missing or has
 * none; and where queries go, for the log, e.g. "10.0.0.2 (dns_servers =
 * system: /etc/resolv.conf)", "the root name servers (dns_servers =
 * recursive)" or "127.0.0.1@5353 (dns_servers)", each with ", dns_unbound_config
 * = FILE" inside the parentheses when one is set (it may redirect queries).
 */
void dns_check_zone(const struct cfg *cfg, char *out, size_t size);
void dns_servers_text(const struct cfg *cfg, char *out, size_t size);

/* Cancel a query by id; its callback will not run. */
void dns_cancel(struct dns *d, int id);

/*
 * The name to query for a domain: a UTF-8 name (U-labels, as SMTPUTF8 mail
 * carries them) becomes its A-labels, as Postfix does: IDNA2008 with NFC
 * and nontransitional processing (the German sharp s stays itself), then
 * transitional processing for names only that allows.  The result is also
 * the key of the domain's TLS policy, so that an entry written in A-labels
 * applies to mail addressed in U-labels.  RL_EPARSE with *err set when the
 * name has no A-label form; -EINVAL when the result is not a host name.
 * Any thread.
 */
int dns_alabel(const char *name, char *out, size_t outlen, const char **err) RL_WUR;

/*
 * Pure helpers (dns_parse.c), exposed for tests and fuzzing: decode MX rdata
 * (preference + uncompressed wire-format name) into a host; decode a wire
 * name into text without the trailing dot ("" for the root).
 */
int dns_parse_mx(const unsigned char *rdata, size_t len, struct dns_mx_host *out) RL_WUR;
int dns_parse_name(const unsigned char *p, size_t len, size_t *used, char *out,
		   size_t outlen) RL_WUR;
/*
 * Check a host name in text form (letters, digits, '-', '_'; labels of 1 to
 * 63 octets; at most 253 octets) and copy it to out without a final dot.
 * RL_EPARSE for anything else, RL_ETOOBIG if out is too small.
 */
int dns_parse_host(const char *s, size_t len, char *out, size_t outlen) RL_WUR;
/*
 * The owner of the first DS or DNSKEY record in the text of a trust-anchor
 * file (zone file format, as libunbound's trust-anchor-file and
 * /usr/share/dns/root.key): "." for the root, else the name without its
 * final dot.  Comments (';', and lines starting with '#'), blank lines,
 * other record types and the continuation lines of a record in parentheses
 * are skipped; $ORIGIN applies to relative owners and '@', and a line that
 * starts with a blank has the origin as its owner.  0 with out set;
 * RL_ENOTFOUND: no DS or DNSKEY record; RL_EPARSE: that record's owner is
 * not a host name (out is then ""); RL_ETOOBIG: out is too small.
 */
int dns_parse_anchor_owner(const char *text, size_t len, char *out, size_t outlen) RL_WUR;
/*
 * The addresses of the "nameserver ADDR" lines of a resolv.conf text, as
 * "10.0.0.2, ::1" in out (whole entries only, as many as fit; a token that
 * is not made of address characters is skipped, so nothing else reaches a
 * log line).  Returns how many are in out.
 */
size_t dns_parse_resolv(const char *text, size_t len, char *out, size_t outlen);

#endif
