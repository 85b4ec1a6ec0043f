/*
 * cert: certificate loading, chain verification and server-name checks for
 * the `verify` and `secure` TLS levels (INTERFACE.md, "TLS policy file").
 *
 * relay/ collects the peer's chain as DER (leaf first) and passes it in;
 * certs/ never touches the network and never logs.  Name checks follow
 * Postfix (tls_verify.c, smtp_tls_policy.c) and RFC 6125:
 *   - the peer names are the leaf's subjectAltName dNSName entries, or, only
 *     when there is no dNSName entry at all, the subject CN (the last one);
 *   - a pattern is an exact name ("mx.example.com") or a suffix
 *     (".example.com": any subdomain, not example.com itself);
 *   - a certificate name "*.example.com" stands for exactly one whole
 *     left-most label; partial-label wildcards ("a*.example.com",
 *     "xn--*.example"), wildcards elsewhere and wildcards over a single label
 *     ("*.com") are refused (never match);
 *   - comparison ignores ASCII case and one trailing dot; internationalised
 *     names are compared as A-labels (xn--...), byte for byte.  Bytes outside
 *     ASCII letters, digits, '-', '_' and '.' make a name invalid.
 * Chain verification (trust anchors, signatures, validity dates, key
 * purpose) is GnuTLS's, without its host-name check: names are ours.
 *
 * Postfix defaults a caller should apply when a policy entry has no match=:
 * `verify` -> "hostname"; `secure` -> "nexthop", "dot-nexthop".
 *
 * Ownership: arguments are borrowed; results go to caller storage, except
 * where a function says it allocates.  No globals; a trust list may be used
 * from several threads only for verification (GnuTLS allows that), loaded
 * and freed by one.
 *
 * Errors: RL_EPARSE (undecodable certificate or bad name), RL_ETOOBIG,
 * RL_ENOTFOUND, RL_ECONFIG (unusable CA file or trust store), negated errno
 * (file access, -ENOMEM).  GnuTLS error codes never leave certs/; GnuTLS
 * verification status bits (GNUTLS_CERT_*) do, as the `status` of
 * cert_chain_verify().
 */
#ifndef CERT_H
#define CERT_H

#include <stddef.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "rl.h"

/* A DNS name is at most 253 characters without the trailing dot (RFC 1035
 * 3.1); a suffix pattern adds its leading dot; plus the NUL. */
#define CERT_NAME_MAX	  253
#define CERT_PATTERN_SIZE (CERT_NAME_MAX + 2)

/* A resolved match pattern: "mx.example.com" (exact) or ".example.com"
 * (any subdomain).  Lower case, no trailing dot, never a keyword. */
struct cert_pattern {
	char name[CERT_PATTERN_SIZE];
};

/*
 * Does the certificate name certname match pattern?  Both are
 * NUL-terminated; an invalid name or pattern never matches.  Pure.
 * Returns 1 or 0.
 */
int cert_name_match(const char *certname, const char *pattern);

/*
 * Turn a policy's match tokens into patterns: "hostname" -> the MX host
 * name, "nexthop" -> the next-hop domain, "dot-nexthop" -> "." + next-hop
 * domain (keywords in any case), anything else -> the name as written
 * (".name" for subdomains).  hostname and nexthop are borrowed and may be
 * NULL when no token names them.  Writes up to max patterns to out and their
 * number to *nout.  Returns 0, RL_EPARSE (an invalid name, or a keyword whose
 * value is missing or invalid) or RL_ETOOBIG (more than max patterns); on
 * error *why (optional) has the reason and, as offset, the token's index.
 * Pure.
 */
int cert_match_resolve(const char *const *tokens, size_t n, const char *hostname,
		       const char *nexthop, struct cert_pattern *out, size_t max, size_t *nout,
		       struct rl_why *why) RL_WUR;

/*
 * Check the leaf's names (see above) against the patterns.  Returns 1 on
 * the first match, copying the certificate name that matched into matched
 * (msize bytes, truncated, NUL-terminated; may be NULL when msize is 0);
 * 0 when nothing matches or the leaf has no usable name; RL_EPARSE when the
 * leaf or its subjectAltName does not decode; -ENOMEM.  Callers treat
 * anything but 1 as a failed check.
 */
int cert_names_match(const unsigned char *leaf_der, size_t len, const struct cert_pattern *pats,
		     size_t n, char *matched, size_t msize);

/*
 * Load trust anchors: the PEM (or DER) CA certificates of cafile, or the
 * system trust store when cafile is NULL.  Returns 0 and a new *out (free
 * with cert_trust_free), or -errno (file unreadable), RL_ECONFIG (no CA
 * certificate found), -ENOMEM, with *why (optional) saying which.
 */
int cert_trust_load(const char *cafile, gnutls_x509_trust_list_t *out, struct rl_why *why) RL_WUR;
/* Free a trust list from cert_trust_load; NULL is a no-op. */
void cert_trust_free(gnutls_x509_trust_list_t tl);

/* Added by cert_chain_verify to the GnuTLS status when the peer's leaf is
 * self-signed and not itself a trust anchor (no GNUTLS_CERT_* uses it). */
#define CERT_STATUS_SELF_SIGNED (1u << 30)

/*
 * Verify a peer chain (DER, leaf first; the rest may come in any order)
 * against tl: signatures up to a trust anchor, validity dates against the
 * current time, CA constraints and the TLS server key purpose.  No
 * host-name check (cert_names_match does that).  Sets *status to 0 when
 * trusted, else to GNUTLS_CERT_* bits (GNUTLS_CERT_INVALID among them) plus
 * perhaps CERT_STATUS_SELF_SIGNED.  Returns 1 trusted, 0 not trusted,
 * RL_EPARSE when n is 0 or a certificate does not decode, -ENOMEM; on
 * error *status is GNUTLS_CERT_INVALID, so it never reads as trusted.
 */
int cert_chain_verify(const gnutls_datum_t *chain, size_t n, gnutls_x509_trust_list_t tl,
		      unsigned *status);

/* Added by cert_client_verify in place of GNUTLS_CERT_PURPOSE_MISMATCH:
 * the leaf (or a CA above it) has an extended key usage without clientAuth. */
#define CERT_STATUS_NOT_CLIENT (1u << 29)

/*
 * Verify a client's chain (DER, leaf first) against tl, for the relay's
 * relay_client_ca_file: as cert_chain_verify (signatures, validity dates,
 * CA constraints), but for TLS client use: the leaf must list clientAuth in
 * its extended key usage or have no such extension at all (not even
 * anyExtendedKeyUsage), and a CA with an extended key usage must allow
 * clientAuth.  A refusal for key usage reads CERT_STATUS_NOT_CLIENT.
 * Returns like cert_chain_verify.
 */
int cert_client_verify(const gnutls_datum_t *chain, size_t n, gnutls_x509_trust_list_t tl,
		       unsigned *status);

/*
 * A short reason for a verification status, for deferral reasons and logs:
 * "trusted" for 0, else e.g. "certificate has expired", "signer not found",
 * "self-signed certificate".  Static strings; never NULL.
 */
const char *cert_status_text(unsigned status);

/*
 * Read the certificates of a file: every certificate of a PEM file, or one
 * DER certificate.  Allocates *chain (n entries, each data malloc'ed);
 * free with cert_chain_free.  Returns 0, -errno (unreadable file),
 * RL_ETOOBIG (file over 16 MiB), RL_EPARSE (no certificate, or one does
 * not decode), -ENOMEM, with *why (optional) saying which.
 */
int cert_file_load(const char *path, gnutls_datum_t **chain, size_t *n, struct rl_why *why) RL_WUR;
/* Free a chain from cert_file_load; NULL is a no-op. */
void cert_chain_free(gnutls_datum_t *chain, size_t n);

/*
 * The subject DN of a DER certificate as RFC 4514 text ("CN=mx.example.com"),
 * made safe to print: control and non-ASCII bytes become '?', truncated to
 * osize - 1 bytes.  Returns 0, RL_EPARSE or -ENOMEM (out is "" then).
 */
int cert_subject_text(const unsigned char *der, size_t len, char *out, size_t osize) RL_WUR;

/* The issuer DN of a DER certificate, like cert_subject_text(). */
int cert_issuer_text(const unsigned char *der, size_t len, char *out, size_t osize) RL_WUR;

/*
 * The first common name (CN) of the subject (issuer 0) or of the issuer
 * (issuer 1) of a DER certificate, as Postfix names client certificates;
 * bytes other than printable ASCII, and '"', backslash, '(' and ')', become
 * '?'; truncated to osize - 1 bytes.  "" when there is no CN.  Returns 0,
 * RL_EPARSE or -ENOMEM (out is "" then).
 */
int cert_cn_text(const unsigned char *der, size_t len, int issuer, char *out,
		 size_t osize) RL_WUR;

/*
 * The validity period of a DER certificate (notBefore, notAfter) as
 * seconds since the epoch.  Returns 0, RL_EPARSE (undecodable certificate
 * or unreadable time; both times are (time_t)-1 then) or -ENOMEM.
 */
int cert_validity(const unsigned char *der, size_t len, time_t *not_before,
		  time_t *not_after) RL_WUR;

#endif
