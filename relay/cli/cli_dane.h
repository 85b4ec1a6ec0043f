/*
 * cli_dane: the relay's DNS lookups for DANE, made by a command-line tool
 * (INTERFACE.md, "Where a domain's policy comes from").
 *
 * The lookups are the relay's own (relay/deliver/qmgr_resolve.c): the MX
 * RRset of the domain in its A-label form, the addresses of each MX host,
 * and, where DANE can apply (pol_peer_dane_applies() of the domain's
 * entry) and the host's A or AAAA answer was DNSSEC-secure, its TLSA
 * records through danehost (alias target first).  The level then comes from
 * pol_peer_resolve() and pol_peer_dane() in policy/, as for a session of the
 * relay, so what the tools print is what the relay decides.
 *
 * The tools are one-shot: each call runs a loop of its own with the
 * relay's resolver (dns_new() from the configuration) until the lookups
 * are over, and the whole of it is bounded by DNS_TIMEOUT_MS; a lookup
 * still outstanding then ends as a failure ("no answer within 30 s"),
 * never as "no records".  Output goes to stdout (a failed lookup is part
 * of the answer, not an error of the tool).  Main thread only.
 */
#ifndef CLI_DANE_H
#define CLI_DANE_H

#include <stddef.h>

#include "cfg.h"
#include "danehost.h"
#include "dns.h"
#include "pol.h"
#include "pol_peer.h"
#include "rl.h"

/*
 * `policy show DOMAIN`, after the lines of the policy file: the lookups,
 * then per MX host in preference order one line
 *   mx: HOST (pref N): MX secure, addresses secure (IP, ...), TLSA ...
 * and one line with the level a session to it runs under and where that
 * came from ("  level: dane (DANE: usable TLSA records; MX RRset secure
 * -> Verified)").  Once the MX hosts are known, the MTA-STS lines come
 * before them (cli_sts_show()), and where a policy is in force each host
 * gets one more line, the rule that won ("  rule: MTA-STS enforce (level
 * verify: ...)", cli_sts_show_host()).  t: the policy table (borrowed).
 * Returns 0, also when lookups failed (the lines say so).
 */
int cli_dane_show(const struct cfg *c, const struct pol_table *t, const char *domain);

/* What `certs probe` keeps of its lookups (cli_dane_peer()). */
struct cli_dane_peer {
	struct dns_addr_result addrs; /* HOST's addresses from the relay's resolver */
	struct danehost tlsa;	      /* the TLSA outcome; s's records point here */
	int mx_secure;		      /* the MX RRset was secure and lists HOST */
};

/*
 * `certs probe --domain D HOST[:PORT]`: the lookups of the relay for HOST
 * as an MX host of domain (its addresses; its TLSA records at
 * _PORT._tcp when they were DNSSEC-secure; the MX RRset of domain, which
 * counts as secure only when it was and lists HOST), then pol_peer_dane()
 * on s (resolved by the caller with pol_peer_resolve() under entry e).
 * Prints the "MX:", "addresses:", "TLSA:" and "level:" lines.  out holds
 * the records s then points to: keep it until s is no longer used, and
 * free it with cli_dane_peer_fini().  Returns 0; RL_EPOLICY with reason
 * when the relay would defer (a failed TLSA lookup, dane-only without
 * records); -1 when HOST has no address (said on stderr).
 */
int cli_dane_peer(const struct cfg *c, const struct pol_entry *e, const char *domain,
		  const char *host, unsigned port, struct pol_peer_sess *s,
		  struct cli_dane_peer *out, char *reason, size_t rsize) RL_WUR;

/* Free the records of cli_dane_peer(); a zeroed struct is fine. */
void cli_dane_peer_fini(struct cli_dane_peer *p);

#endif
