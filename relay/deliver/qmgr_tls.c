/*
 * qmgr_tls: the credentials of outbound sessions (client certificate,
 * priority string narrowed by tls_protocols) and the trust list that the
 * TLS policy checks peers against.  Its own file so that building every
 * TLS credential can later move to one place in the daemon as a whole.
 */
#include <errno.h>

#include "cert.h"
#include "log.h"
#include "qmgr_int.h"

int qmgr_tls_init(struct qmgr *q)
{
	const struct cfg *c = q->p.cfg;
	struct rl_buf prio;
	int rc;

	struct rl_why why = { 0 };

	if (gnutls_certificate_allocate_credentials(&q->tls.cred) < 0)
		return -ENOMEM;
	/* Our own trust list for verify/secure; GnuTLS's is only for logging. */
	if (cert_trust_load(c->tls_ca_file, &q->trust, &why) < 0) {
		if (c->tls_ca_file) {
			log_err("cannot load tls_ca_file %s: %s", c->tls_ca_file,
				why.reason ? why.reason : "no certificates");
			return -1;
		}
		log_warn("no system trust store: verify and secure deliveries will be deferred");
		q->trust = NULL;
	}
	rc = c->tls_ca_file ? gnutls_certificate_set_x509_trust_file(q->tls.cred, c->tls_ca_file,
								      GNUTLS_X509_FMT_PEM)
			    : gnutls_certificate_set_x509_system_trust(q->tls.cred);
	if (rc < 0 && c->tls_ca_file) {
		log_err("cannot load tls_ca_file %s: %s", c->tls_ca_file, gnutls_strerror(rc));
		return -1;
	}
	if (c->tls_cert_file) {
		rc = gnutls_certificate_set_x509_key_file2(q->tls.cred, c->tls_cert_file,
							   c->tls_key_file, GNUTLS_X509_FMT_PEM,
							   NULL, 0);
		if (rc < 0) {
			log_err("cannot load tls_cert_file %s: %s", c->tls_cert_file,
				gnutls_strerror(rc));
			return -1;
		}
	}
	/* tls_protocols narrows the versions of tls_priority. */
	rl_buf_init(&prio, 4096);
	rc = tlspol_priority_text(c, 0, NULL, &prio);
	if (rc == 0)
		rc = rl_buf_append(&prio, "", 1);
	if (rc == 0) {
		rc = gnutls_priority_init2(&q->tls.prio, prio.data, NULL, 0);
		if (rc < 0)
			log_err("%s: bad tls_priority \"%s\": %s", q->p.cfg->path, prio.data,
				gnutls_strerror(rc));
	}
	rl_buf_fini(&prio);
	if (rc < 0)
		return -1;
	q->tls.loglevel = c->tls_loglevel;
	return 0;
}

void qmgr_tls_fini(struct qmgr *q)
{
	if (q->tls.cred)
		gnutls_certificate_free_credentials(q->tls.cred);
	if (q->tls.prio)
		gnutls_priority_deinit(q->tls.prio);
	if (q->trust)
		cert_trust_free(q->trust);
}
