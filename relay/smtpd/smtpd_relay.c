/*
 * smtpd_relay: who may relay, as the inbound session sees it.  The client
 * certificate is read once after the handshake (digests, dates, the
 * verdict of relay_client_ca_file) and logged; at each RCPT the decision
 * is pol_relay_decide()'s (policy/pol_relay.h), with the session's
 * address, certificate and AUTH identity.  Loop thread only.
 */
#include <gnutls/gnutls.h>
#include <string.h>
#include <time.h>

#include "cert.h"
#include "fpr.h"
#include "log.h"
#include "smtpd_int.h"

/*
 * May this client relay?  pol_relay_decide() says, from what the session
 * knows; the first allowed recipient counts the session in the metrics
 * and, for `tlsrelay status`, in the tally; so does the first refused one.
 */
enum pol_relay_by smtpd_relay_check(struct smtpd *s)
{
	static const int metric[POL_RELAY_BY_COUNT] = {
	    [POL_RELAY_DENY] = -1,
	    [POL_RELAY_NETWORK] = METRICS_ALLOWED_NETWORK,
	    [POL_RELAY_CERTIFICATE] = METRICS_ALLOWED_CERTIFICATE,
	    [POL_RELAY_AUTH] = METRICS_ALLOWED_AUTH,
	};
	static const int tally[POL_RELAY_BY_COUNT] = {
	    [POL_RELAY_DENY] = STATUS_IN_REFUSED,
	    [POL_RELAY_NETWORK] = STATUS_IN_NETWORK,
	    [POL_RELAY_CERTIFICATE] = STATUS_IN_CERTIFICATE,
	    [POL_RELAY_AUTH] = STATUS_IN_AUTH,
	};
	struct pol_relay_in in = {0};
	enum pol_relay_by by;
	const char *why;

	in.client = (const struct sockaddr *)&s->peer;
	in.mynetworks = s->sv->p.cfg->mynetworks;
	in.nmynetworks = s->sv->p.cfg->nmynetworks;
	in.cert_presented = s->ccert.presented;
	in.cert_sha256 = s->ccert.cert;
	in.spki_sha256 = s->ccert.spki;
	in.cert_out_of_date = s->ccert.out_of_date;
	in.listed = s->sv->p.ccerts ? *s->sv->p.ccerts : NULL;
	in.ca_verified = s->ccert.ca_ok;
	in.auth_user = smtpd_auth_user(s);
	by = pol_relay_decide(&in, &why);
	log_debug("smtpd %s: relay %s: %s", s->addr, pol_relay_by_name(by), why);
	if (by != POL_RELAY_DENY && !s->relay_counted) {
		s->relay_counted = 1;
		metrics_count_smtpd_allowed(s->sv->p.metrics, metric[by]);
		tally_add(s->sv->p.tally, (size_t)tally[by], 1);
	} else if (by == POL_RELAY_DENY && !s->refused_counted) {
		s->refused_counted = 1;
		tally_add(s->sv->p.tally, (size_t)tally[by], 1);
	}
	return by;
}

/*
 * After the handshake: the client certificate, if one was asked for and
 * presented.  Its digests are kept for pol_relay_decide() at each RCPT;
 * the chain is verified once against relay_client_ca_file in force now.
 * GnuTLS has already checked that the client holds the certificate's key.
 */
void smtpd_ccert_read(struct smtpd *s)
{
	const gnutls_x509_trust_list_t *ca = s->sv->p.client_ca;
	struct smtpd_ccert *cc = &s->ccert;
	const gnutls_datum_t *chain;
	unsigned n = 0;
	int rc;

	memset(cc, 0, sizeof(*cc));
	if (!s->ccert_asked)
		return;
	chain = gnutls_certificate_get_peers(conn_tls_session(s->conn), &n);
	if (!chain || n == 0)
		return;
	rc = fpr_compute(chain[0].data, chain[0].size, FPR_CERT, FPR_SHA256_LEN, &cc->cert);
	if (rc == 0)
		rc = fpr_compute(chain[0].data, chain[0].size, FPR_PUBKEY, FPR_SHA256_LEN,
				 &cc->spki);
	if (rc < 0) {
		log_warn("unknown[%s]: client certificate ignored: %s", s->addr, rl_strerror(rc));
		memset(cc, 0, sizeof(*cc));
		return;
	}
	cc->presented = 1;
	fpr_format(&cc->cert, cc->fpr, sizeof(cc->fpr));
	(void)!cert_cn_text(chain[0].data, chain[0].size, 0, cc->cn, sizeof(cc->cn));
	(void)!cert_cn_text(chain[0].data, chain[0].size, 1, cc->issuer, sizeof(cc->issuer));
	{
		time_t nb, na, now = time(NULL);

		cc->out_of_date = cert_validity(chain[0].data, chain[0].size, &nb, &na) < 0 ||
				  now < nb || now > na;
	}
	cc->status = GNUTLS_CERT_INVALID;
	if (ca && *ca)
		cc->ca_ok = cert_client_verify(chain, n, *ca, &cc->status) == 1;
}

/* One line naming the client certificate, its digests and its verification. */
void smtpd_ccert_log(const struct smtpd *s)
{
	const struct smtpd_ccert *cc = &s->ccert;
	char spki[FPR_TEXT_SIZE];
	int have_ca = s->sv->p.client_ca && *s->sv->p.client_ca;

	if (!cc->presented) {
		if (s->ccert_asked)
			log_debug("unknown[%s]: no client certificate presented", s->addr);
		return;
	}
	fpr_format(&cc->spki, spki, sizeof(spki));
	log_info("unknown[%s]: client certificate: CN=\"%s\", issuer CN=\"%s\", "
		 "sha256=%s, pubkey sha256=%s, relay_client_ca_file: %s%s", s->addr, cc->cn,
		 cc->issuer, cc->fpr, spki,
		 !have_ca ? "none" : cc->ca_ok ? "verified OK" : cert_status_text(cc->status),
		 cc->out_of_date ? "; outside its validity dates (not accepted by digest)" : "");
}
