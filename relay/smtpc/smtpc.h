/*
 * smtpc: one outbound SMTP session to one MX address (RFC 5321, 3207, 2920,
 * 1870, 6152, 6531), under one TLS security level.
 *
 * The session connects, reads the banner, says EHLO (HELO as fallback),
 * negotiates STARTTLS as the level demands, and then asks its owner for
 * messages one after another over the same connection (connection reuse),
 * until the owner has none and it says QUIT.  Each message's recipients get
 * a class: DELIVERED, TEMPFAIL, PERMFAIL or POLICYFAIL, with the reply or
 * reason; the queue retries from that class alone.  A TLS level is never
 * lowered: when the level requires TLS and it cannot be had, no MAIL FROM
 * is ever sent on that connection.  A message with QUEUE_F_REQUIRETLS (RFC
 * 8689) is sent only when the session's TLS peer was verified and the server
 * offers REQUIRETLS after STARTTLS; otherwise its recipients get PERMFAIL
 * with 5.7.30 and no MAIL FROM is sent for it.
 *
 * Ownership: everything passed in is borrowed and must outlive the session
 * (until ops->closed runs).  ops->closed is the last callback; the session
 * frees itself after it returns.  Loop thread only.
 */
#ifndef SMTPC_H
#define SMTPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <uv.h>

#include "cert.h"
#include "fpr.h"
#include "pol_peer.h"
#include "rl.h"

enum smtpc_class {
	SMTPC_NONE = 0,   /* not decided yet */
	SMTPC_DELIVERED,
	SMTPC_TEMPFAIL,
	SMTPC_PERMFAIL,
	SMTPC_POLICYFAIL, /* TLS policy not met: retried like TEMPFAIL */
};

#define SMTPC_REASON_MAX 600

struct smtpc_rcpt {
	const char *address;
	int result;                    /* enum smtpc_class */
	char dsn[16];                  /* enhanced status, e.g. "5.1.1" */
	char reason[SMTPC_REASON_MAX]; /* "host X[ip] said: 550 ..." or ours */
	char reply[SMTPC_REASON_MAX];  /* the server's reply alone; "" if none */
};

struct smtpc_msg {
	const char *id;
	const char *sender;
	uint32_t flags; /* QUEUE_F_* */
	uint64_t size;
	struct smtpc_rcpt *rcpt;
	size_t nrcpt;
	/* Read content bytes from off; *got = 0 at the end. */
	int (*read)(void *arg, uint64_t off, char *buf, size_t len, size_t *got);
	void *arg;
	/* Set by smtpc when the message is done: the SHA-256 digest of the
	 * public key of the server's leaf certificate (has_pk 0: no TLS or no
	 * certificate), for the TLS posture counters. */
	unsigned char pk_sha256[32];
	int has_pk;
};

/* TLS material shared by all sessions (built once from the config). */
struct smtpc_tls {
	gnutls_certificate_credentials_t cred; /* trust store and client cert */
	gnutls_priority_t prio;
	int loglevel; /* tls_loglevel */
};

struct smtpc_target {
	const char *domain;   /* next-hop domain */
	const char *host;     /* MX host name */
	struct sockaddr_storage addr; /* with remote_port set */
	const struct pol_peer_policy *pol; /* resolved by the owner (pol_peer_resolve) */
	int no_starttls;      /* retrying a `may` session in clear */
};

struct smtpc;

struct smtpc_ops {
	/* The next message for this connection, or NULL to end it. */
	struct smtpc_msg *(*next)(struct smtpc *s, void *arg);
	/* A message got its results (every recipient's result is set). */
	void (*msg_done)(struct smtpc *s, struct smtpc_msg *m, void *arg);
	/*
	 * The session is over.  established: it got as far as asking for
	 * messages.  Otherwise class and reason say why it could not (for
	 * trying the next MX); plain_retry asks for a `may` retry in clear.
	 */
	void (*closed)(struct smtpc *s, int established, int class, const char *reason,
		       int plain_retry, void *arg);
};

struct smtpc_params {
	uv_loop_t *loop;
	const char *helo_name;         /* myhostname */
	const struct smtpc_tls *tls;
	const struct smtpc_target *target;
	const struct smtpc_ops *ops;
	void *arg;
};

/* Start a session; on failure nothing was started and no callback runs. */
int smtpc_start(const struct smtpc_params *p, struct smtpc **out) RL_WUR;

/* Ask the session to finish after the current message (shutdown). */
void smtpc_stop(struct smtpc *s);

/* Cut the session now; a message in progress is deferred (shutdown). */
void smtpc_abort(struct smtpc *s);

/* Did the session get a TCP connection (for relay= in log lines)? */
int smtpc_connected(const struct smtpc *s);
/*
 * Did the server complete the initial handshake (greeting and EHLO)?  A
 * failure after that counts against smtp_mx_session_limit, as in Postfix.
 */
int smtpc_handshaken(const struct smtpc *s);
/* Enhanced status of the failure that ended the session (in ops->closed). */
const char *smtpc_fail_dsn(const struct smtpc *s);

/*
 * The protection of the session so far, as the contract's log lines say it:
 * "none" (no TLS), "anonymous", "untrusted", "trusted", "verified" or "dane"
 * (verified by a TLSA record), "mta-sts" (by MTA-STS enforce).  A static
 * string.
 */
const char *smtpc_tls(const struct smtpc *s);
/* "host[ip]:port" of the session, for log lines. */
const char *smtpc_relay(const struct smtpc *s);
/*
 * The SHA-256 digest of the public key of the server's leaf certificate
 * (32 bytes, valid until the session ends), or NULL before TLS or when the
 * server showed no certificate or it did not decode.
 */
const unsigned char *smtpc_pk_sha256(const struct smtpc *s);

/*
 * What became of TLS in the session, for TLS-RPT (RFC 8460 4.3): NONE
 * when TLS was not tried (no connection, no answer, level none, a retry
 * in clear), OK when the peer met the policy, else the failure.  Under an
 * MTA-STS testing policy a peer that would have failed it gets the type of
 * that failure although the session went on.
 */
enum smtpc_tls_result {
	SMTPC_TR_NONE = 0,
	SMTPC_TR_OK,
	SMTPC_TR_STARTTLS,	/* not offered or refused: starttls-not-supported */
	SMTPC_TR_HOST_MISMATCH, /* certificate-host-mismatch */
	SMTPC_TR_EXPIRED,	/* certificate-expired */
	SMTPC_TR_NOT_TRUSTED,	/* certificate-not-trusted */
	SMTPC_TR_VALIDATION,	/* validation-failure: handshake, DANE, fingerprint, MX not in the MTA-STS policy */
};
int smtpc_tls_result(const struct smtpc *s);
/* The relay's own address on the connection ("" before it is made). */
const char *smtpc_local_ip(const struct smtpc *s);

#endif
