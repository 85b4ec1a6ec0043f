/*
 * cert_int: helpers shared by the files of certs/ (cert.c, fpr.c); other
 * modules never include this header.
 */
#ifndef CERT_INT_H
#define CERT_INT_H

#include <stddef.h>

#include <gnutls/x509.h>

#include "rl.h"

/*
 * Decode one DER certificate.  Returns 0 and a new *out (free it with
 * gnutls_x509_crt_deinit), RL_EPARSE when the bytes are not a certificate,
 * -ENOMEM.  GnuTLS error codes never leave certs/.
 */
int cert_import(const unsigned char *der, size_t len, gnutls_x509_crt_t *out) RL_WUR;

#endif
