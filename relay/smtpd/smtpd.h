/*
 * smtpd: the inbound ESMTP server.  A struct smtpd_server holds every
 * client session; the daemon gives it what it needs in smtpd_params (the
 * loop, the configuration, the committer, the STARTTLS credentials) and
 * hears back through two callbacks, so smtpd never sees the daemon's own
 * context (the arrows point one way: daemon -> smtpd).
 *
 * Relaying: at every RCPT the session asks pol_relay_decide() (policy/)
 * with its client's address class, certificate and AUTH identity; nothing
 * else decides.  With smtpd_tls_ask_ccert = yes a client certificate is
 * asked for (not required) at STARTTLS; its SHA-256 digests are looked up
 * in relay_clientcerts and its chain verified against relay_client_ca_file
 * once, after the handshake.
 *
 * Ownership: params and what they point to are borrowed and must outlive
 * the server; cfg is read at each use (a reload replaces it in place).
 * smtpd_server_free() only when smtpd_server_sessions() is 0 and the loop
 * has run to its end (a password check may outlive its session on a worker
 * thread; its completion still touches the server).  Loop thread only.
 */
#ifndef SMTPD_H
#define SMTPD_H

#include <stdint.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <uv.h>

#include "auth.h"
#include "cfg.h"
#include "commit.h"
#include "metrics.h"
#include "pol_relay.h"
#include "rl.h"
#include "tally.h"

struct smtpd_params {
	uv_loop_t *loop;
	const struct cfg *cfg;
	struct committer *commit;
	gnutls_certificate_credentials_t cred; /* NULL: no STARTTLS */
	gnutls_priority_t prio;
	void (*queued)(void *arg); /* a message is durable in the queue */
	void (*gone)(void *arg);   /* a session ended (shutdown waits for the last) */
	void *arg;
	/*
	 * Who may relay besides mynetworks, read at each use, so a reload that
	 * replaces them takes effect at the next RCPT (the list) or the next
	 * handshake (the CAs).  NULL, or pointing to NULL: none.
	 */
	struct pol_ccerts *const *ccerts;	   /* relay_clientcerts */
	const gnutls_x509_trust_list_t *client_ca; /* relay_client_ca_file */
	/*
	 * SMTP AUTH: the daemon's password table, read at each AUTH (a SIGHUP
	 * replaces *sasl on the loop thread); *sasl NULL: AUTH not offered.
	 */
	struct auth_db *const *sasl;
	struct metrics_counts *metrics; /* NULL: not counted */
	/*
	 * The same events for `tlsrelay status`, by enum status_in (status.h):
	 * sessions allowed (network, certificate, auth) or refused relaying,
	 * once each, and failed AUTH attempts.  NULL: not counted.
	 */
	struct tally *tally;
};

struct smtpd_server;

/* A server with no session yet; -ENOMEM. */
int smtpd_server_new(const struct smtpd_params *p, struct smtpd_server **out) RL_WUR;
/* Free; only when no session is left.  smtpd_server_free(NULL) is a no-op. */
void smtpd_server_free(struct smtpd_server *sv);

/* Accept one connection from a listener. */
void smtpd_accept(struct smtpd_server *sv, uv_stream_t *listener);
/* Refuse new clients and ask every session to finish (SIGTERM). */
void smtpd_stop_all(struct smtpd_server *sv);
/* Sessions still open. */
unsigned smtpd_server_sessions(const struct smtpd_server *sv);

#endif
