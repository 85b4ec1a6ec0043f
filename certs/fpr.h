/*
 * fpr: certificate and public-key fingerprints for the `fingerprint` TLS
 * level and for `tlsrelay certs fingerprint`.
 *
 * A fingerprint is a digest of the DER certificate or of its DER
 * SubjectPublicKeyInfo, written as upper-case colon-separated hex
 * ("3A:...:9F").  Its length names the algorithm: 20 bytes = SHA-1,
 * 32 bytes = SHA-256 (INTERFACE.md, "TLS policy file").
 *
 * As in Postfix (tls_fprint.c, smtp_tls_policy_maps `fingerprint`), only the
 * peer's leaf certificate is matched: a digest of an intermediate or root
 * certificate in the chain never satisfies the policy.
 *
 * Ownership: every argument is borrowed; results are written into caller
 * storage (struct fpr_digest holds its bytes inline).  No globals, no I/O,
 * no logging; safe on any thread.
 *
 * Errors: RL_EPARSE (bad fingerprint text, or DER that GnuTLS cannot
 * decode), -ENOMEM.  fpr_parse() explains a refusal in struct rl_why.
 * fpr_parse() and fpr_format() (fpr_parse.c) are pure and do not need GnuTLS.
 */
#ifndef FPR_H
#define FPR_H

#include <stddef.h>

#include "rl.h"

#define FPR_SHA1_LEN   20
#define FPR_SHA256_LEN 32
#define FPR_MAX_LEN    FPR_SHA256_LEN
/* Room for the text form of the longest digest: two hex digits per byte,
 * a colon between bytes, and the terminating NUL. */
#define FPR_TEXT_SIZE (FPR_MAX_LEN * 3)

struct fpr_digest {
	size_t len; /* FPR_SHA1_LEN or FPR_SHA256_LEN */
	unsigned char bytes[FPR_MAX_LEN];
};

/* What a digest was taken of. */
enum fpr_what {
	FPR_CERT,   /* the whole DER certificate */
	FPR_PUBKEY, /* its DER SubjectPublicKeyInfo */
};

/*
 * Parse the text form of a fingerprint: 20 or 32 bytes, each exactly two
 * hex digits (either case), separated by single colons, nothing before or
 * after.  s need not be NUL-terminated.  On success fills *out; on failure
 * returns RL_EPARSE, zeroes *out and fills *why (optional) with the byte
 * offset of the first offending character.
 */
int fpr_parse(const char *s, size_t len, struct fpr_digest *out, struct rl_why *why) RL_WUR;

/*
 * Write d as upper-case colon-separated hex into out (NUL-terminated).
 * osize must be at least d->len * 3 (FPR_TEXT_SIZE always is); d->len must
 * be 1..FPR_MAX_LEN.  Both are programmer errors (RL_REQUIRE) otherwise.
 */
void fpr_format(const struct fpr_digest *d, char *out, size_t osize);

/*
 * Digest of a DER certificate (what = FPR_CERT) or of its public key
 * (FPR_PUBKEY) with SHA-1 (hashlen FPR_SHA1_LEN) or SHA-256
 * (FPR_SHA256_LEN).  Returns 0 and fills *out, or RL_EPARSE when the DER
 * does not decode, -EINVAL for another hashlen, -ENOMEM.
 */
int fpr_compute(const unsigned char *der, size_t len, enum fpr_what what, size_t hashlen,
		struct fpr_digest *out) RL_WUR;

/*
 * The `fingerprint` level check: does any wanted digest equal the leaf's
 * certificate digest or public-key digest of the same length (20 = SHA-1,
 * 32 = SHA-256)?  Returns 1 on a match (and sets *which, if not NULL, to
 * FPR_CERT or FPR_PUBKEY), 0 when none matches (including nwant == 0), or a
 * negative code when the leaf does not decode; callers treat anything but 1
 * as a failed check.  Wanted digests of another length never match.
 */
int fpr_match(const unsigned char *leaf_der, size_t len, const struct fpr_digest *want,
	      size_t nwant, int *which) RL_WUR;

#endif
