/*
 * pol_peer: resolve one session's policy; decide on the peer's chain.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pol_peer.h"

/*
 * RFC 3463 X.7.5, "cryptographic failure": the certificate did not pass.
 * Temporary (4.x): the queue retries, and the administrator may fix the
 * policy or the peer its certificate in the meantime.
 */
#define POL_PEER_DSN "4.7.5"

/* Postfix's servername: a name, or the MX host ("hostname") or next hop. */
static void resolve_servername(const struct pol_entry *e, const char *domain, const char *host,
			       struct pol_peer_sess *out)
{
	const char *sn;

	if (!e || !e->servername)
		return;
	sn = strcmp(e->servername, "hostname") == 0  ? host
	     : strcmp(e->servername, "nexthop") == 0 ? domain
						     : e->servername;
	rl_strlcpy(out->servername, sn, sizeof(out->servername));
	out->pol.servername = out->servername;
}

int pol_peer_resolve(const struct pol_entry *e, int default_level, const char *domain,
		     const char *host, gnutls_x509_trust_list_t trust, gnutls_priority_t prio,
		     struct pol_peer_sess *out, char *reason, size_t rsize)
{
	struct pol_peer_policy *sp = &out->pol;
	const char *const *tokens = NULL;
	struct rl_why why = {0};
	size_t ntok = 0;

	memset(sp, 0, sizeof(*sp));
	out->entry = e;
	out->servername[0] = '\0';
	sp->level = e ? e->level : default_level;
	sp->trust = trust;
	sp->prio = prio;
	if (e) {
		sp->digests = e->digests;
		sp->ndigests = e->ndigests;
		tokens = (const char *const *)e->match;
		ntok = e->nmatch;
	}
	resolve_servername(e, domain, host, out);
	if (!ntok)
		tokens = pol_match_defaults(sp->level, &ntok);
	if (ntok && cert_match_resolve(tokens, ntok, host, domain, out->names, POL_MATCH_MAX,
				       &sp->nnames, &why) < 0) {
		snprintf(reason, rsize,
			 "Server certificate not verified: no usable match name "
			 "for %s%s%s",
			 host, why.reason ? ": " : "", why.reason ? why.reason : "");
		return RL_EPARSE;
	}
	sp->names = out->names;
	return 0;
}

int pol_peer_can_verify(const struct pol_peer_policy *p)
{
	if (p->ntlsa > 0)
		return p->dane_mx_secure;
	return p->level == POL_LEVEL_FINGERPRINT || p->level == POL_LEVEL_VERIFY ||
	       p->level == POL_LEVEL_SECURE;
}

int pol_peer_dane_applies(const struct pol_entry *e)
{
	return !e || e->level == POL_LEVEL_DANE || e->level == POL_LEVEL_DANE_ONLY;
}

int pol_peer_dane(struct pol_peer_sess *s, const struct pol_dane *dn, const char *host,
		  const char **dsn, char *reason, size_t rsize)
{
	struct pol_peer_policy *p = &s->pol;

	*dsn = NULL;
	reason[0] = '\0';
	if (!pol_peer_dane_applies(s->entry))
		return 0; /* the administrator's word wins */
	if (dn->state == POL_DANE_FAIL) {
		/* Not knowing whether DANE applies is never "it does not". */
		*dsn = POL_PEER_DSN;
		snprintf(reason, rsize, "%s", dn->why ? dn->why : "TLSA lookup error");
		return RL_EPOLICY;
	}
	if (dn->state == POL_DANE_USABLE && dn->nrec > 0) {
		if (p->level != POL_LEVEL_DANE_ONLY)
			p->level = POL_LEVEL_DANE;
		if (!s->entry)
			p->nnames = 0; /* default_tls_level's match names do not apply */
		p->tlsa = dn->rec;
		p->ntlsa = dn->nrec;
		p->dane_base = dn->base;
		p->dane_mx_secure = dn->mx_secure;
		rl_strlcpy(s->servername, dn->base, sizeof(s->servername));
		p->servername = s->servername;
		return 0;
	}
	if (dn->state == POL_DANE_UNUSABLE && !s->entry &&
	    !pol_level_requires_tls(p->level)) {
		/* RFC 7672 2.2: records present but none usable still mean
		 * mandatory (unauthenticated) TLS, never cleartext. */
		p->level = POL_LEVEL_ENCRYPT;
		return 0;
	}
	if (p->level != POL_LEVEL_DANE_ONLY)
		return 0; /* dane: encrypt; no entry: default_tls_level */
	*dsn = POL_PEER_DSN;
	snprintf(reason, rsize,
		 "TLS is required with DANE authentication, but %s has %s", host,
		 dn->state == POL_DANE_UNUSABLE ? "no usable TLSA records"
						: "no DNSSEC-secure TLSA records");
	return RL_EPOLICY;
}

int pol_peer_sts(struct pol_peer_sess *s, const struct pol_sts *st, const char *host,
		 const char **dsn, char *reason, size_t rsize)
{
	static const char *const hostname[] = {"hostname"};
	struct pol_peer_policy *p = &s->pol;
	struct rl_why why = {0};

	*dsn = NULL;
	reason[0] = '\0';
	if (s->entry || p->ntlsa > 0 || st->mode == POL_STS_NONE)
		return 0; /* the administrator's entry, then DANE, win */
	p->sts_domain = st->domain;
	p->sts_mx_match = st->mx_match;
	if (st->mode == POL_STS_TESTING) {
		p->sts_testing = 1;
		if (!p->nnames &&
		    cert_match_resolve(hostname, 1, host, st->domain, s->names, POL_MATCH_MAX,
				       &p->nnames, &why) == 0)
			p->names = s->names; /* for the check on the side */
		return 0;
	}
	*dsn = POL_PEER_DSN;
	if (!st->mx_match) {
		snprintf(reason, rsize, "MTA-STS policy of %s (enforce): MX host %s does not match",
			 st->domain, host);
		return RL_EPOLICY;
	}
	if (cert_match_resolve(hostname, 1, host, st->domain, s->names, POL_MATCH_MAX, &p->nnames,
			       &why) < 0) {
		snprintf(reason, rsize,
			 "MTA-STS policy of %s (enforce): certificate not valid for %s: %s",
			 st->domain, host, why.reason ? why.reason : "no usable name");
		return RL_EPOLICY;
	}
	*dsn = NULL;
	p->names = s->names;
	p->level = POL_LEVEL_VERIFY;
	p->sts_enforce = 1;
	return 0;
}

const char *pol_trust_word(int trust)
{
	static const char *const words[] = {"Anonymous", "Untrusted", "Trusted", "Verified"};

	RL_REQUIRE(trust >= POL_TRUST_ANONYMOUS && trust <= POL_TRUST_VERIFIED);
	return words[trust];
}

void pol_peer_names_text(const struct pol_peer_policy *p, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < p->nnames && n + 1 < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%s%s", i ? ", " : "", p->names[i].name);
}

static int say(char *reason, size_t rsize, const char *fmt, ...) RL_PRINTF(3, 4);

static int say(char *reason, size_t rsize, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, rsize, fmt, ap);
	va_end(ap);
	return 0;
}

/* A failed check: the enhanced status, and RL_EPOLICY for the caller. */
static int refuse(struct pol_verdict *v)
{
	v->pass = 0;
	v->dsn = POL_PEER_DSN;
	return RL_EPOLICY;
}

/* Digests of the leaf, for the reason of a fingerprint mismatch. */
static void seen_digests(const gnutls_datum_t *leaf, char *out, size_t size)
{
	struct fpr_digest c, k;
	char ct[FPR_TEXT_SIZE], kt[FPR_TEXT_SIZE];

	if (fpr_compute(leaf->data, leaf->size, FPR_CERT, FPR_SHA256_LEN, &c) < 0 ||
	    fpr_compute(leaf->data, leaf->size, FPR_PUBKEY, FPR_SHA256_LEN, &k) < 0) {
		rl_strlcpy(out, "undecodable certificate", size);
		return;
	}
	fpr_format(&c, ct, sizeof(ct));
	fpr_format(&k, kt, sizeof(kt));
	snprintf(out, size, "certificate SHA-256 %s, public key SHA-256 %s", ct, kt);
}

/* fingerprint: a match= digest of the leaf or of its public key. */
static int check_fingerprint(const struct pol_peer_policy *p, const gnutls_datum_t *leaf,
			     struct pol_verdict *v, char *reason, size_t rsize)
{
	v->fpr_which = FPR_CERT;
	if (fpr_match(leaf->data, leaf->size, p->digests, p->ndigests, &v->fpr_which) == 1) {
		v->trust = POL_TRUST_VERIFIED;
		return say(reason, rsize, "%s digest matched",
			   v->fpr_which == FPR_PUBKEY ? "public key" : "certificate");
	}
	seen_digests(leaf, v->seen, sizeof(v->seen));
	say(reason, rsize, "Server certificate not verified: no match= fingerprint matches");
	return refuse(v);
}

/* verify/secure: the chain must be trusted and a name must match. */
static int check_names(const struct pol_peer_policy *p, const gnutls_datum_t *leaf,
		       struct pol_verdict *v, char *reason, size_t rsize)
{
	char want[600], subject[400];

	/* Checked even for an untrusted chain: the probe shows what else to fix. */
	v->named = cert_names_match(leaf->data, leaf->size, p->names, p->nnames, v->matched,
				    sizeof(v->matched)) == 1;
	if (!v->named)
		v->matched[0] = '\0';
	if (v->chain != POL_CHAIN_TRUSTED) {
		say(reason, rsize, "Server certificate not trusted (%s)",
		    cert_status_text(v->status));
		return refuse(v);
	}
	if (v->named) {
		v->trust = POL_TRUST_VERIFIED;
		return say(reason, rsize, "name matched %s", v->matched);
	}
	pol_peer_names_text(p, want, sizeof(want));
	if (cert_subject_text(leaf->data, leaf->size, subject, sizeof(subject)) < 0)
		rl_strlcpy(subject, "?", sizeof(subject));
	say(reason, rsize,
	    "Server certificate not verified: name mismatch (expected %s; "
	    "certificate %s)",
	    want[0] ? want : "(none)", subject);
	return refuse(v);
}

/*
 * DANE: one usable record must match (dane_match).  The verdict is
 * Verified when the MX RRset was secure, Trusted when only the host's own
 * records were (the host name itself came from an unsigned answer).
 */
static int check_dane(const struct pol_peer_policy *p, const gnutls_datum_t *chain, size_t n,
		      struct pol_verdict *v, char *reason, size_t rsize)
{
	char why[400], rec[120];
	size_t which = 0;

	if (dane_match(p->tlsa, p->ntlsa, chain, n, p->dane_base, p->names, p->nnames, time(NULL),
		       &which, why, sizeof(why)) == 0) {
		v->dane = 1;
		v->trust = p->dane_mx_secure ? POL_TRUST_VERIFIED : POL_TRUST_TRUSTED;
		dane_tlsa_text(&p->tlsa[which], rec, sizeof(rec));
		return say(reason, rsize, "TLSA record matched (%s)", rec);
	}
	say(reason, rsize, "Server certificate not verified: %s", why);
	return refuse(v);
}

/* The chain against the anchors: sets v->chain, v->status and v->trust. */
static void check_chain(const struct pol_peer_policy *p, const gnutls_datum_t *chain, size_t n,
			struct pol_verdict *v)
{
	v->status = GNUTLS_CERT_INVALID;
	v->chain = POL_CHAIN_UNCHECKED;
	if (p->trust)
		v->chain = cert_chain_verify(chain, n, p->trust, &v->status) == 1
			       ? POL_CHAIN_TRUSTED
			       : POL_CHAIN_UNTRUSTED;
	if (v->chain == POL_CHAIN_TRUSTED)
		v->status = 0;
	v->trust = v->chain == POL_CHAIN_TRUSTED ? POL_TRUST_TRUSTED : POL_TRUST_UNTRUSTED;
}

/*
 * MTA-STS testing: would the policy have been met?  The chain against the
 * anchors and the MX host name, as enforce checks them; into v->sts_note.
 */
static void sts_testing_note(const struct pol_peer_policy *p, const gnutls_datum_t *chain,
			     size_t n, struct pol_verdict *v)
{
	unsigned status = GNUTLS_CERT_INVALID;

	if (!p->sts_mx_match) {
		v->sts_fail = POL_STS_FAIL_MX;
		snprintf(v->sts_note, sizeof(v->sts_note), "MX host does not match");
		return;
	}
	if (!chain || n == 0) {
		v->sts_fail = POL_STS_FAIL_NOCERT;
		snprintf(v->sts_note, sizeof(v->sts_note), "no certificate");
		return;
	}
	if (!p->trust || cert_chain_verify(chain, n, p->trust, &status) != 1) {
		v->sts_fail = POL_STS_FAIL_UNTRUSTED;
		v->sts_status = p->trust ? status : 0;
		snprintf(v->sts_note, sizeof(v->sts_note), "certificate not trusted (%s)",
			 p->trust ? cert_status_text(status) : "no trust anchors");
		return;
	}
	if (cert_names_match(chain[0].data, chain[0].size, p->names, p->nnames, NULL, 0) != 1) {
		v->sts_fail = POL_STS_FAIL_NAME;
		snprintf(v->sts_note, sizeof(v->sts_note), "certificate not valid for the MX host");
	}
}

static int check_verdict(const struct pol_peer_policy *p, const char *peer,
			 const gnutls_datum_t *chain, size_t n, struct pol_verdict *v, char *reason,
			 size_t rsize);

int pol_peer_check(const struct pol_peer_policy *p, const char *peer, const gnutls_datum_t *chain,
		   size_t n, struct pol_verdict *v, char *reason, size_t rsize)
{
	char why[600];
	int rc = check_verdict(p, peer, chain, n, v, why, sizeof(why));

	if (p->sts_testing && !p->sts_enforce)
		sts_testing_note(p, chain, n, v);
	if (!p->sts_enforce) {
		snprintf(reason, rsize, "%s", why);
		return rc;
	}
	if (rc == 0) {
		v->sts = 1;
		snprintf(reason, rsize, "MTA-STS policy of %s (enforce): %s", p->sts_domain, why);
		return 0;
	}
	snprintf(reason, rsize, "MTA-STS policy of %s (enforce): certificate not valid for %s: %s",
		 p->sts_domain, p->names && p->nnames ? p->names[0].name : "the MX host", why);
	return rc;
}

static int check_verdict(const struct pol_peer_policy *p, const char *peer,
			 const gnutls_datum_t *chain, size_t n, struct pol_verdict *v, char *reason,
			 size_t rsize)
{
	memset(v, 0, sizeof(*v));
	v->pass = 1;
	reason[0] = '\0';
	if (!chain || n == 0) {
		/* DANE with usable records authenticates: a bare key never passes. */
		if (!pol_level_requires_auth(p->level) && p->ntlsa == 0)
			return say(reason, rsize, "no certificate");
		say(reason, rsize, "Server certificate not verified: no certificate");
		return refuse(v);
	}
	check_chain(p, chain, n, v);
	switch (p->level) {
	case POL_LEVEL_FINGERPRINT:
		return check_fingerprint(p, &chain[0], v, reason, rsize);
	case POL_LEVEL_VERIFY:
	case POL_LEVEL_SECURE:
		return check_names(p, &chain[0], v, reason, rsize);
	case POL_LEVEL_DANE_ONLY:
	case POL_LEVEL_DANE:
		if (p->ntlsa > 0)
			return check_dane(p, chain, n, v, reason, rsize);
		if (p->level == POL_LEVEL_DANE)
			return say(reason, rsize,
				   "no usable TLSA records: encrypt, "
				   "no authentication required");
		/* dane-only without records: nothing can authenticate this peer. */
		say(reason, rsize,
		    "TLS is required with DANE authentication, but no usable "
		    "TLSA records are available for %s",
		    peer);
		return refuse(v);
	case POL_LEVEL_NONE:
		return say(reason, rsize, "the relay would not use TLS");
	default:
		return say(reason, rsize, "no authentication required");
	}
}
