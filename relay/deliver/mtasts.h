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
 *   mta-sts: D: policy invalid (sts-policy-invalid): REASON
 * (the RFC 8460 result types, for TLS-RPT).
 *
 * Cache writes go through the committer (a worker thread), never on the
 * loop.  Memory: one lookup holds one policy (~17 KB) while in flight.
 * Loop thread only.
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
	struct queue *q;
	struct committer *commit;
	const struct cfg *cfg; /* read at each use (a reload changes it in place) */
};

struct mtasts_result {
	int mode;			  /* enum pol_sts_mode: NONE when no policy applies */
	const struct sts_policy *policy;  /* mode != NONE: valid during the callback */
	const char *source;		  /* "cache" or "fetched" */
	const char *id;			  /* the policy's id */
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

/* Cancel a lookup by id: its callback does not run. */
void mtasts_cancel(struct mtasts *m, int id);

#endif
