/*
 * Certificates made in a unit test with the GnuTLS API (no certtool): an
 * ECDSA P-256 key and an X.509 v3 certificate for cn, a CA when is_ca,
 * valid from..until, signed by issuer (NULL: itself).  Shared by the tests
 * of the certificate decisions (test_pol_peer, test_dane_match).
 */
#ifndef TESTCERT_H
#define TESTCERT_H

#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "rl.h"

#define TC_OK(expr) RL_REQUIRE((expr) >= 0)

struct made {
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	gnutls_datum_t der;
};

static void testcert_make(struct made *m, const char *cn, int is_ca, const struct made *issuer,
			  time_t from, time_t until)
{
	static unsigned char serial = 1;
	unsigned char sn[4] = {1, 2, 3, serial++};

	TC_OK(gnutls_x509_privkey_init(&m->key));
	TC_OK(gnutls_x509_privkey_generate(m->key, GNUTLS_PK_ECDSA,
					   GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0));
	TC_OK(gnutls_x509_crt_init(&m->crt));
	TC_OK(gnutls_x509_crt_set_version(m->crt, 3));
	TC_OK(gnutls_x509_crt_set_serial(m->crt, sn, sizeof(sn)));
	TC_OK(gnutls_x509_crt_set_activation_time(m->crt, from));
	TC_OK(gnutls_x509_crt_set_expiration_time(m->crt, until));
	TC_OK(gnutls_x509_crt_set_dn_by_oid(m->crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
					    strlen(cn)));
	TC_OK(gnutls_x509_crt_set_key(m->crt, m->key));
	TC_OK(gnutls_x509_crt_set_basic_constraints(m->crt, is_ca, -1));
	if (is_ca) {
		TC_OK(gnutls_x509_crt_set_key_usage(m->crt,
						    GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN));
	} else {
		TC_OK(gnutls_x509_crt_set_key_usage(m->crt, GNUTLS_KEY_DIGITAL_SIGNATURE));
		TC_OK(gnutls_x509_crt_set_key_purpose_oid(m->crt, GNUTLS_KP_TLS_WWW_SERVER, 0));
		TC_OK(gnutls_x509_crt_set_subject_alt_name(m->crt, GNUTLS_SAN_DNSNAME, cn,
							   (unsigned)strlen(cn), GNUTLS_FSAN_SET));
	}
	if (!issuer)
		issuer = m;
	TC_OK(gnutls_x509_crt_sign2(m->crt, issuer->crt, issuer->key, GNUTLS_DIG_SHA256, 0));
	TC_OK(gnutls_x509_crt_export2(m->crt, GNUTLS_X509_FMT_DER, &m->der));
}

static void testcert_free(struct made *m)
{
	gnutls_x509_crt_deinit(m->crt);
	gnutls_x509_privkey_deinit(m->key);
	gnutls_free(m->der.data);
}

#endif
