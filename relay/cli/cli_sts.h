/*
 * cli_sts: the MTA-STS lookups of `policy show` and `certs probe`
 * (INTERFACE.md, "Where a domain's policy comes from", rule 3).
 *
 * The lookup is the relay's own (mtasts_lookup_report() in
 * relay/deliver/mtasts.c): the "_mta-sts" TXT record, the cached policy,
 * the HTTPS fetch from mta-sts.DOMAIN and the choice between them, with
 * one difference: nothing is ever written to the cache, so a look changes
 * no state.  The cache is read through a read-only open of the queue (as
 * mailq does); without a queue nothing is cached.  The policy then goes
 * through pol_peer_sts() in policy/, after pol_peer_resolve() and
 * pol_peer_dane(), as for a session of the relay (qmgr_sess.c), so what
 * the tools print is what the relay decides.
 *
 * As the relay, the tools look a policy up only when mta_sts = yes and no
 * entry of the policy file names the domain.  Each look runs a loop of its
 * own with the relay's resolver and fetcher until the lookup is over; the
 * steps are bounded by the DNS timeout and MTASTS_FETCH_TIMEOUT_MS.  The
 * lines go to stdout: a failed step is part of the answer.
 *
 *   MTA-STS cache: none cached | id ID, fetched T, expires T, mode M, max_age N, mx: P, ...
 *   MTA-STS record: id ID (_mta-sts.D) | none (WHY)
 *   MTA-STS fetch: id ID, mode M, ... (https://mta-sts.D/.well-known/mta-sts.txt)
 *                | failed (sts-policy-fetch-error|sts-webpki-invalid|sts-policy-invalid): REASON
 *                | not made (WHY)
 *   MTA-STS: in force: MODE (the fetched|cached policy, id ID...) | none (WHY)
 *
 * Main thread only.
 */
#ifndef CLI_STS_H
#define CLI_STS_H

#include <stddef.h>

#include "cfg.h"
#include "pol.h"
#include "pol_peer.h"

/* One domain's policy as the relay would apply it. */
struct cli_sts;

/*
 * `policy show DOMAIN` (domain in A-labels), once its MX hosts are known:
 * "MTA-STS: not used (mta_sts = no)", "MTA-STS: not looked up (...)" for
 * a domain with an entry e, or the lookup with a fetch also when the
 * cache is current, and its lines.  Returns the policy for
 * cli_sts_show_host(); NULL (said) when memory ran out.
 */
struct cli_sts *cli_sts_show(const struct cfg *c, const struct pol_entry *e, const char *domain);

/*
 * One MX host of `policy show`, whose session s came through
 * pol_peer_resolve() and pol_peer_dane() without a deferral: where a
 * policy is in force, pol_peer_sts() on s and one line saying which rule
 * won and the level, "  rule: MTA-STS enforce (level verify: ...)" (or
 * DANE, or "MTA-STS testing", or "...: mail deferred: REASON").  Nothing
 * when no policy is in force (the level line said it all).  st NULL: no-op.
 */
void cli_sts_show_host(const struct cli_sts *st, const struct cfg *c, struct pol_peer_sess *s,
		       const char *host);

/*
 * `certs probe --domain D HOST`, when MTA-STS can apply (mta_sts = yes, no
 * entry, no usable DANE records on s): the relay's lookup of D's policy
 * (the cache when it is current, else a fetch; never stored), its lines,
 * and pol_peer_sts() on s for HOST with a line "rule: ...".  *out holds
 * what s then points to: keep it while s is used and free it with
 * cli_sts_free().  Returns 0 (also without a policy); RL_EPOLICY with
 * reason when the relay would defer (enforce, HOST not listed); -1 when D
 * is not a domain name (said on stderr).
 */
int cli_sts_peer(const struct cfg *c, const char *domain, const char *host, struct pol_peer_sess *s,
		 struct cli_sts **out, char *reason, size_t rsize) RL_WUR;

void cli_sts_free(struct cli_sts *st);

#endif
