/*
 * pol_peer: the certificate decision, made once for everyone.
 *
 * After the TLS handshake the relay (smtpc) and `certs probe` both ask one
 * question: does the peer's chain satisfy the destination's policy?  Both
 * get the answer here, from the same pure function, so what the probe
 * prints is what the relay does.  This is also where DANE (TLSA records
 * as match rules) and MTA-STS will plug in.
 *
 * Two steps:
 * - pol_peer_resolve(): the policy of one session, from the policy file's
 *   entry (or default_tls_level) for the next-hop domain and MX host:
 *   level, digests, match names resolved against host and domain, trust
 *   anchors, SNI name.  The caller supplies what needs I/O or GnuTLS
 *   setup (the trust list of tafile= or tls_ca_file, the priority).
 * - pol_peer_check(): the verdict on the peer's chain (DER, leaf first).
 *
 * No I/O, no logging, no globals.  Arguments are borrowed for the call;
 * a struct pol_peer_sess points into the entry it was resolved from and
 * into itself (keep both alive together).  Any thread.
 */
#ifndef POL_PEER_H
#define POL_PEER_H

#include <stddef.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "cert.h"
#include "dane.h"
#include "fpr.h"
#include "pol.h"
#include "rl.h"

/* The policy one session runs under. */
struct pol_peer_policy {
	int level;			  /* enum pol_level */
	const struct fpr_digest *digests; /* fingerprint: wanted digests */
	size_t ndigests;
	const struct cert_pattern *names; /* verify/secure: resolved match names */
	size_t nnames;
	gnutls_x509_trust_list_t trust; /* anchors (tafile= or tls_ca_file); NULL: none */
	/*
	 * DANE (level dane/dane-only with usable records, set by
	 * pol_peer_dane()): the records, the TLSA base domain their DANE-TA
	 * names are checked against, and whether a match is Verified (the MX
	 * RRset was DNSSEC-secure) or only Trusted (it was not).
	 */
	const struct dane_tlsa *tlsa;
	size_t ntlsa;
	const char *dane_base;
	int dane_mx_secure;
	/*
	 * MTA-STS (set by pol_peer_sts()): sts_enforce makes the level's
	 * check (verify: chain and the MX host name) the policy's, with its
	 * reasons and tls=mta-sts; sts_testing asks pol_peer_check to judge
	 * the chain the same way on the side, for the log and TLS-RPT, without
	 * changing the verdict.  sts_domain names the policy in reasons.
	 */
	int sts_enforce, sts_testing;
	int sts_mx_match;
	const char *sts_domain;
	/* Session setup, not read by pol_peer_check(): */
	gnutls_priority_t prio; /* protocols=, ciphers=, exclude=; NULL: the default */
	const char *servername; /* SNI; NULL: none (Postfix's default) */
};

/* A resolved policy with the storage its pointers use. */
struct pol_peer_sess {
	struct pol_peer_policy pol;
	const struct pol_entry *entry; /* NULL: no entry, default_tls_level */
	struct cert_pattern names[POL_MATCH_MAX];
	char servername[CERT_NAME_MAX + 1];
};

/*
 * Resolve the policy of a session to host (MX host name) for mail to
 * domain (next hop) under entry e (NULL: default_level, no attributes).
 * trust: the anchors for this entry (its tafile=, else tls_ca_file or the
 * system store; NULL when there are none: verify/secure then fail).  prio
 * is stored as given.  Returns 0, or RL_EPARSE with a reason for the
 * recipients in reason (a match name that cannot be used: fail closed).
 */
int pol_peer_resolve(const struct pol_entry *e, int default_level, const char *domain,
		     const char *host, gnutls_x509_trust_list_t trust, gnutls_priority_t prio,
		     struct pol_peer_sess *out, char *reason, size_t rsize) RL_WUR;

/* What the TLSA lookup of the session's MX host found (RFC 7672 2.2). */
enum pol_dane_state {
	POL_DANE_NONE = 0, /* not looked up, insecure, or a secure denial: no DANE */
	POL_DANE_USABLE,   /* secure records, at least one usable */
	POL_DANE_UNUSABLE, /* secure records, none usable: no authentication */
	POL_DANE_FAIL,	   /* SERVFAIL, timeout, bogus: never taken for "none" */
};

struct pol_dane {
	int state;		    /* enum pol_dane_state */
	const struct dane_tlsa *rec; /* POL_DANE_USABLE: the usable records */
	size_t nrec;
	const char *base;	    /* the TLSA base domain (the MX host, or its alias target) */
	int mx_secure;		    /* the MX RRset (or its absence) was DNSSEC-secure */
	const char *why;	    /* POL_DANE_FAIL: "TLSA lookup error for ...: ..." */
};

/*
 * Apply DANE to a resolved session (INTERFACE.md, "Where a domain's policy
 * comes from"): an entry of another level wins and nothing changes; for an
 * entry of dane or dane-only, or no entry at all, usable records make the
 * session check them (level dane, or dane-only as written; SNI = the base
 * domain, RFC 7672 8.1).  Without usable records dane stays (encrypt
 * semantics) and no entry keeps default_tls_level.  Fails closed with a
 * reason, returning RL_EPOLICY (*dsn the enhanced status): a failed lookup
 * wherever DANE could apply, and dane-only without usable records.  dn's
 * pointers must outlive s.  Pure.
 */
int pol_peer_dane(struct pol_peer_sess *s, const struct pol_dane *dn, const char *host,
		  const char **dsn, char *reason, size_t rsize) RL_WUR;

/* What the MTA-STS policy of the session's domain says (RFC 8461). */
enum pol_sts_mode { POL_STS_NONE = 0, POL_STS_TESTING, POL_STS_ENFORCE };

struct pol_sts {
	int mode;	    /* enum pol_sts_mode; NONE: no policy (or mode none) */
	int mx_match;	    /* the MX host matches one of the policy's mx patterns */
	const char *domain; /* the policy domain, for reasons */
};

/*
 * Apply MTA-STS to a session after pol_peer_dane(): an entry of the
 * policy file wins, and so do usable DANE records; otherwise enforce
 * replaces default_tls_level with a check of the chain (tls_ca_file or
 * the system store) and of the MX host name, and testing leaves the level
 * alone (pol_peer_check then reports in v->sts_note whether the policy
 * would have been met).  Enforce with an MX host that does not match
 * fails closed: RL_EPOLICY with "MTA-STS policy of D (enforce): MX host H
 * does not match" (*dsn 4.7.5).  st's pointers must outlive s.  Pure.
 */
int pol_peer_sts(struct pol_peer_sess *s, const struct pol_sts *st, const char *host,
		 const char **dsn, char *reason, size_t rsize) RL_WUR;

/*
 * Can a session under p end Verified at all (RFC 8689: what REQUIRETLS
 * mail needs)?  fingerprint, verify, secure, DANE records under a secure
 * MX RRset, MTA-STS enforce; not encrypt, may, none, nor DANE over an
 * insecure MX RRset (Trusted at best).
 */
int pol_peer_can_verify(const struct pol_peer_policy *p);

/* Would DANE apply to mail under entry e (NULL: no entry)?  Decides whether to look TLSA up. */
int pol_peer_dane_applies(const struct pol_entry *e);

/* The word of Postfix's "... TLS connection established" line. */
enum pol_trust {
	POL_TRUST_ANONYMOUS = 0, /* no certificate */
	POL_TRUST_UNTRUSTED,	 /* the chain does not verify (or was not checked) */
	POL_TRUST_TRUSTED,	 /* the chain verifies */
	POL_TRUST_VERIFIED,	 /* the level's own check passed (names, digest, TLSA) */
};

/* "Anonymous", "Untrusted", "Trusted", "Verified". */
const char *pol_trust_word(int trust);

/* What became of the chain check. */
enum pol_chain {
	POL_CHAIN_NONE = 0,  /* no certificate */
	POL_CHAIN_UNCHECKED, /* no trust anchors */
	POL_CHAIN_TRUSTED,
	POL_CHAIN_UNTRUSTED, /* status says why */
};

/* The verdict on one peer. */
/* Why an MTA-STS testing policy would not have been met (TLS-RPT's result type). */
enum pol_sts_fail {
	POL_STS_FAIL_NONE = 0,
	POL_STS_FAIL_MX,	/* the MX host is not in the policy */
	POL_STS_FAIL_NOCERT,	/* no certificate */
	POL_STS_FAIL_UNTRUSTED, /* the chain does not verify (sts_status says why) */
	POL_STS_FAIL_NAME,	/* trusted, but not valid for the MX host */
};

struct pol_verdict {
	int pass;	 /* 1: the level is satisfied; 0: defer (fail closed) */
	int trust;	 /* enum pol_trust */
	const char *dsn; /* on failure the enhanced status (RFC 3463), else NULL */
	int chain;	 /* enum pol_chain */
	unsigned status; /* POL_CHAIN_UNTRUSTED: GnuTLS status bits (cert_status_text) */
	int named;	 /* verify/secure: a name matched (checked even when untrusted) */
	char matched[CERT_PATTERN_SIZE]; /* the certificate name that matched */
	int fpr_which;			 /* fingerprint passed: FPR_CERT or FPR_PUBKEY */
	int dane;			 /* a TLSA record matched (trust says Verified or Trusted) */
	int sts;			 /* MTA-STS enforce was met (trust Verified) */
	/* MTA-STS testing: why the policy would not have been met ("" if it would). */
	char sts_note[300];
	int sts_fail;	      /* the same as a code: enum pol_sts_fail (0 if it would) */
	unsigned sts_status;  /* POL_STS_FAIL_UNTRUSTED: GnuTLS status bits */
	/* On a fingerprint failure: "certificate SHA-256 .., public key SHA-256 ..". */
	char seen[2 * FPR_TEXT_SIZE + 64];
};

/*
 * Decide whether the chain (n DER certificates, leaf first; n = 0 or
 * chain NULL: none) satisfies p.  peer ("host[ip]:port") names the server
 * in reasons.  Fills *v.  On success returns 0 and reason holds what
 * satisfied the level ("name matched mx.example.com", "no authentication
 * required", ...); on failure returns RL_EPOLICY and reason holds the
 * reason for the recipients ("Server certificate not trusted (...)"),
 * v->dsn the enhanced status.  reason is cut to rsize bytes.  Level none
 * passes (no TLS is asked for: the caller does not start it).
 */
int pol_peer_check(const struct pol_peer_policy *p, const char *peer, const gnutls_datum_t *chain,
		   size_t n, struct pol_verdict *v, char *reason, size_t rsize) RL_WUR;

/* The names of p, for messages: "mx.example.com, .example.com" ("" if none). */
void pol_peer_names_text(const struct pol_peer_policy *p, char *out, size_t size);

#endif
