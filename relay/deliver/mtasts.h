/*
 * mtasts: the MTA-STS policy (RFC 8461) of a destination domain, for the
 * delivery round: DNS, the HTTPS fetch and the cache in LMDB.
 *
 * A lookup asks for the `_mta-sts.DOMAIN` TXT record, reads the cached
 * policy of the domain, and decides:
 *   - the record's id is the cached one and the cache has not expired:
 *     the cached policy, no fetch;
 *   - otherwise (no cache, a new id, expired, or in the last quarter of
 *     its max_age: refreshed while mail flows, before it expires): fetch
 *     https://mta-sts.DOMAIN/.well-known/mta-sts.txt (the name resolved by
 *     the relay's own resolver; no redirects, HTTP 200, text/plain, at most
 *     64 KiB, certificate valid for mta-sts.DOMAIN under tls_ca_file or the
 *     system store), parse it, store it with fetch time and expiry;
 *   - no record, a DNS failure, a failed fetch or an invalid body: the
 *     cached policy while it has not expired (a removed TXT record or a
 *     web server down does not drop it early), else no policy.
 * Lookups happen only when mail to the domain is being delivered, so idle
 * domains are never fetched.  Each fetch and failure is logged:
 *   mta-sts: D: policy id ID fetched (mode M, max_age N)
 *   mta-sts: D: policy fetch failed (sts-policy-fetch-error): REASON
 *   mta-sts: D: policy fetch failed (sts-webpki-invalid): REASON
 *   mta-sts: D: policy invalid (sts-policy-invalid): REASON
 * (the RFC 8460 result types, for TLS-RPT: sts-webpki-invalid when the
 * policy host's certificate failed the check, RFC 8460 4.3.2.2; the
 * result's failure carries the same type to the caller).
 *
 * Cache writes go through the committer (a worker thread), never on the
 * loop.  The command-line tools (`policy show`, `certs probe`) make the
 * same lookup with mtasts_lookup_report(): never writing the cache, and
 * with the steps recorded for them to print instead of logged.
 * Memory: one lookup holds one policy (~17 KB) while in flight.  Loop
 * thread only.
 */
#ifndef MTASTS_H
#define MTASTS_H

#include <stdint.h>

#include <uv.h>

#include "cfg.h"
#include "commit.h"
#include "dns.h"
#include "https.h"
#include "queue.h"
#include "rl.h"
#include "sts.h"

#define MTASTS_FETCH_TIMEOUT_MS 30000

struct mtasts_params {
	struct dns *dns;
	struct https *https;
	struct queue *q;	  /* NULL: no cache (nothing read, nothing written) */
	struct committer *commit; /* NULL only when every lookup has MTASTS_NO_STORE */
	const struct cfg *cfg; /* read at each use (a reload changes it in place) */
};

struct mtasts_result {
	int mode;			  /* enum pol_sts_mode: NONE when no policy applies */
	const struct sts_policy *policy;  /* mode != NONE: valid during the callback */
	const char *source;		  /* "cache" or "fetched" */
	const char *id;			  /* the policy's id */
	/*
	 * NULL, or the RFC 8460 result type (MTASTS_FETCH_ERROR,
	 * MTASTS_WEBPKI, MTASTS_INVALID: static strings) of a fetch that
	 * failed in this lookup.  Set also when the cached policy stands in
	 * (mode != NONE): the caller decides whether the failure matters.
	 */
	const char *failure;
};

typedef void (*mtasts_cb)(void *arg, const struct mtasts_result *r);

struct mtasts;

struct mtasts *mtasts_new(const struct mtasts_params *p);
/* Cancel every lookup (no callbacks); writes in flight finish on their own. */
void mtasts_free(struct mtasts *m);

/*
 * The policy of domain (A-labels); cb(arg, r) runs once, on the loop,
 * never inside this call.  Returns an id > 0, or a negative code with
 * nothing started.
 */
int mtasts_lookup(struct mtasts *m, const char *domain, mtasts_cb cb, void *arg) RL_WUR;

/* mtasts_lookup_report() flags. */
#define MTASTS_NO_STORE 0x01 /* never write the cache: a look that changes nothing */
#define MTASTS_FETCH	0x02 /* fetch even when the cached policy will do; the outcome stays */

/* The RFC 8460 result types of a policy that could not be had. */
#define MTASTS_FETCH_ERROR "sts-policy-fetch-error"
#define MTASTS_INVALID	   "sts-policy-invalid"
#define MTASTS_WEBPKI	   "sts-webpki-invalid"

enum mtasts_fetch { MTASTS_FETCHED_NOT = 0, MTASTS_FETCHED_OK, MTASTS_FETCHED_FAILED };

/*
 * What one lookup saw, step by step.  Everything a report holds is a copy:
 * it stays valid after the callback.
 */
struct mtasts_report {
	char txt_id[STS_ID_MAX + 1]; /* the TXT record's id; "" when it gave none */
	char txt_why[600];	     /* txt_id "": why (the DNS outcome, or the record's fault) */
	int cached;		     /* an unexpired cached policy that parses was read */
	int stale;		     /* cached: in the last quarter of its max_age */
	char cached_id[STS_ID_MAX + 1];
	int fetch;		   /* enum mtasts_fetch */
	const char *fail_type;	   /* FAILED: MTASTS_FETCH_ERROR, _WEBPKI or _INVALID */
	char fail_why[600];	   /* FAILED: the reason, as the log line says it */
	struct sts_policy fetched; /* OK: the policy as fetched */
};

/*
 * mtasts_lookup() for the command-line tools: the same steps and the same
 * outcome (cb), with flags (MTASTS_*), and *rep (borrowed until cb has
 * run; zeroed here) filled with what each step saw instead of the log
 * lines.  With MTASTS_FETCH the policy is fetched for the report also
 * when the cached one is current, and the outcome is still the cached one.
 */
int mtasts_lookup_report(struct mtasts *m, const char *domain, unsigned flags,
			 struct mtasts_report *rep, mtasts_cb cb, void *arg) RL_WUR;

/* Cancel a lookup by id: its callback does not run. */
void mtasts_cancel(struct mtasts *m, int id);

#endif
