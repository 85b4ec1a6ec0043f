/*
 * tlscred: the one place that builds every TLS credential of the relay,
 * from the configuration: the inbound STARTTLS certificate and priority,
 * and the outbound ones (trust store, client certificate, priority narrowed
 * by tls_protocols) with the trust list the TLS policy checks peers
 * against.  The daemon builds both at start and lends them to smtpd and
 * qmgr; `certs probe` builds the outbound ones the same way, so it presents
 * the same client certificate and trusts the same store as the relay.
 *
 * Failures are reported through say(), the daemon's log or the probe's
 * stderr (err != 0: the start must stop; 0: a
 * warning, the build goes on) with the same texts the daemon logs, and the
 * functions return -1.  The structs own what they hold; *_fini frees it
 * (safe on a zeroed or half-built struct).  Loop thread or a plain CLI.
 */
#ifndef TLSCRED_H
#define TLSCRED_H

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "cfg.h"
#include "smtpc.h"

/*
 * A private key readable or writable by group or others is refused at
 * start with a clear message (Postfix only warns): 0 if fine, -1 (said).
 */
int tlscred_check_key(const char *path, void (*say)(int err, const char *text));

/* Inbound STARTTLS; both NULL when smtpd_tls_cert_file is unset. */
struct tlscred_in {
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
};
int tlscred_in_init(const struct cfg *c, struct tlscred_in *in,
		    void (*say)(int err, const char *text));
void tlscred_in_fini(struct tlscred_in *in);

/*
 * Outbound: tls.cred holds the trust store (tls_ca_file, else the system's)
 * and tls_cert_file/tls_key_file (its key's mode checked first); tls.prio is
 * tls_priority narrowed by tls_protocols.  trust is the list the policy
 * checks chains against, NULL (with a warning) when there is no system
 * store: verify and secure deliveries are then deferred.
 */
struct tlscred_out {
	struct smtpc_tls tls;
	gnutls_x509_trust_list_t trust;
};
int tlscred_out_init(const struct cfg *c, struct tlscred_out *out,
		     void (*say)(int err, const char *text));
void tlscred_out_fini(struct tlscred_out *out);

#endif
