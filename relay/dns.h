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
 * inside dns_mx()/dns_addrs() themselves.  Loop thread only.
 */
#ifndef DNS_H
#define DNS_H

#include <stddef.h>
#include <sys/socket.h>

#include <uv.h>

#include "cfg.h"
#include "rl.h"

#define DNS_NAME_MAX 256 /* text form, without the trailing dot */
#define DNS_MX_MAX 32
#define DNS_ADDR_MAX 16

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

struct dns_mx_result {
	int status;       /* enum dns_status of the MX query */
	int secure;       /* the MX answer (or its denial) was DNSSEC-validated */
	int null_mx;      /* RFC 7505: a single "0 ." MX */
	int implicit;     /* no MX: hosts[0] is the domain itself (RFC 5321 5.1) */
	size_t nhosts;
	struct dns_mx_host hosts[DNS_MX_MAX]; /* by preference; random among equals */
	char why[256];    /* text for a failure, e.g. "Host or domain name not found" */
};

struct dns_addr {
	struct sockaddr_storage sa; /* sockaddr_in or _in6; port 0 */
	socklen_t len;
};

struct dns_addr_result {
	int status;       /* DNS_OK if either A or AAAA gave addresses */
	int secure;       /* every answer used was validated */
	size_t naddr;
	struct dns_addr addr[DNS_ADDR_MAX]; /* IPv6 first, then IPv4 */
	char why[256];
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
void dns_free(struct dns *d);

/* MX lookup with implicit-MX and null-MX handling; returns a query id >= 0. */
int dns_mx(struct dns *d, const char *domain,
	   void (*cb)(void *arg, const struct dns_mx_result *r), void *arg) RL_WUR;

/* A and AAAA of a host, merged into one result; returns a query id >= 0. */
int dns_addrs(struct dns *d, const char *host,
	      void (*cb)(void *arg, const struct dns_addr_result *r), void *arg) RL_WUR;

/* Cancel a query by id; its callback will not run. */
void dns_cancel(struct dns *d, int id);

/*
 * Pure helpers (dns_parse.c), exposed for tests and fuzzing: decode MX rdata
 * (preference + uncompressed wire-format name) into a host; decode a wire
 * name into text without the trailing dot ("" for the root).
 */
int dns_parse_mx(const unsigned char *rdata, size_t len, struct dns_mx_host *out) RL_WUR;
int dns_parse_name(const unsigned char *p, size_t len, size_t *used, char *out,
		   size_t outlen) RL_WUR;

#endif
