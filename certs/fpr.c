/*
 * fpr: digests of a DER certificate and of its SubjectPublicKeyInfo, and the
 * `fingerprint` level match (leaf only, as Postfix).
 */
#include <errno.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "cert_int.h"
#include "fpr.h"

/* The DER that is hashed: the certificate itself or its public key. */
static int export_der(gnutls_x509_crt_t crt, enum fpr_what what, gnutls_datum_t *der)
{
	gnutls_pubkey_t pk;
	int rc;

	if (what == FPR_CERT)
		return gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, der) < 0 ? RL_EPARSE : 0;
	if (gnutls_pubkey_init(&pk) < 0)
		return -ENOMEM;
	rc = gnutls_pubkey_import_x509(pk, crt, 0);
	if (rc >= 0)
		rc = gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, der);
	gnutls_pubkey_deinit(pk);
	return rc < 0 ? RL_EPARSE : 0;
}

static int digest_crt(gnutls_x509_crt_t crt, enum fpr_what what, size_t hashlen,
		      struct fpr_digest *out)
{
	gnutls_digest_algorithm_t alg;
	gnutls_datum_t der = {NULL, 0};
	int rc;

	memset(out, 0, sizeof(*out));
	if (hashlen == FPR_SHA1_LEN)
		alg = GNUTLS_DIG_SHA1;
	else if (hashlen == FPR_SHA256_LEN)
		alg = GNUTLS_DIG_SHA256;
	else
		return -EINVAL;
	rc = export_der(crt, what, &der);
	if (rc < 0)
		return rc;
	if (gnutls_hash_fast(alg, der.data, der.size, out->bytes) < 0)
		rc = -ENOMEM;
	else
		out->len = hashlen;
	gnutls_free(der.data);
	return rc;
}

int fpr_compute(const unsigned char *der, size_t len, enum fpr_what what, size_t hashlen,
		struct fpr_digest *out)
{
	gnutls_x509_crt_t crt;
	int rc;

	memset(out, 0, sizeof(*out));
	if (hashlen != FPR_SHA1_LEN && hashlen != FPR_SHA256_LEN)
		return -EINVAL;
	rc = cert_import(der, len, &crt);
	if (rc < 0)
		return rc;
	rc = digest_crt(crt, what, hashlen, out);
	gnutls_x509_crt_deinit(crt);
	return rc;
}

/* Constant-time comparison is not needed (digests are public), but the
 * lengths must agree: a SHA-1 pin is never compared with SHA-256 bytes. */
static int digest_equal(const struct fpr_digest *a, const struct fpr_digest *b)
{
	return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

int fpr_match(const unsigned char *leaf_der, size_t len, const struct fpr_digest *want,
	      size_t nwant, int *which)
{
	static const size_t lens[] = {FPR_SHA1_LEN, FPR_SHA256_LEN};
	struct fpr_digest got[2][2]; /* [cert, pubkey][sha1, sha256] */
	gnutls_x509_crt_t crt;
	int rc = 0;

	if (which)
		*which = -1;
	rc = cert_import(leaf_der, len, &crt);
	if (rc < 0)
		return rc;
	for (int w = FPR_CERT; w <= FPR_PUBKEY && rc == 0; w++)
		for (size_t h = 0; h < 2 && rc == 0; h++)
			rc = digest_crt(crt, (enum fpr_what)w, lens[h], &got[w][h]);
	gnutls_x509_crt_deinit(crt);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < nwant; i++) {
		for (int w = FPR_CERT; w <= FPR_PUBKEY; w++) {
			for (size_t h = 0; h < 2; h++) {
				if (!digest_equal(&want[i], &got[w][h]))
					continue;
				if (which)
					*which = w;
				return 1;
			}
		}
	}
	return 0;
}
