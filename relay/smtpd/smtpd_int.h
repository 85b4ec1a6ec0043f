/*
 * smtpd_int.h: what smtpd.c and smtpd_auth.c share (the session and the
 * server); nothing outside relay/smtpd includes it.  Loop thread only.
 */
#ifndef SMTPD_INT_H
#define SMTPD_INT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "commit.h"
#include "conn.h"
#include "fpr.h"
#include "queue.h"
#include "smtp.h"
#include "smtpd.h"
#include "spill.h"
#include "status.h"

#define SMTPD_ERROR_LIMIT  20 /* Postfix smtpd_hard_error_limit */
#define SMTPD_IN_LIMIT	   (64 * 1024)
#define SMTPD_RECEIVED_MAX 1024
/*
 * Replies waiting for a client that pipelines (RFC 2920) but does not read
 * them: above this we stop executing and reading commands until they drain.
 * Well below CONN_PENDING_MAX, so one more command's replies always fit.
 */
#define SMTPD_OUT_HIGH (256 * 1024)

/* Postfix shows this much of a client certificate's CN and issuer CN. */
#define SMTPD_CN_MAX 64

/* The client certificate of the TLS session, when one was presented. */
struct smtpd_ccert {
	int presented;
	struct fpr_digest cert, spki; /* SHA-256 of the certificate and of its public key */
	int ca_ok;		      /* verified by relay_client_ca_file */
	int out_of_date;	      /* now is outside its validity dates */
	unsigned status;	      /* the verification status (cert_status_text) */
	char cn[SMTPD_CN_MAX + 1], issuer[SMTPD_CN_MAX + 1];
	char fpr[FPR_TEXT_SIZE];
};

enum smtpd_state {
	SMTPD_S_CMD = 0, /* reading commands */
	SMTPD_S_DATA,	 /* reading message content */
	SMTPD_S_COMMIT,	 /* waiting for the queue to make it durable */
	SMTPD_S_TLS,	 /* TLS handshake after STARTTLS */
	SMTPD_S_AUTH,	 /* a password is being checked (or its reply delayed) */
	SMTPD_S_DONE,	 /* closing */
};

struct smtpd_server {
	struct smtpd_params p;
	struct smtpd *sessions; /* every live session */
	unsigned nsessions;
	uint64_t spill_bytes; /* in spill files of messages in progress */
	int stopping;
	/* SMTP AUTH (smtpd_auth.c): failures and checks in flight per client
	 * address (or IPv6 /64), hash checks running on worker threads, and
	 * those waiting for a free worker, in one lane per address. */
	struct auth_throttle *throttle;
	unsigned auth_running;
	struct smtpd_auth_job *auth_lanes, *auth_lanes_tail;
};

struct smtpd {
	struct smtpd_server *sv;
	struct conn *conn;
	struct smtpd *prev, *next;
	int state;
	char addr[INET6_ADDRSTRLEN];
	char helo[SMTP_DOMAIN_MAX + 1];
	int said_helo; /* 0 none, 1 HELO, 2 EHLO */
	struct sockaddr_storage peer; /* the client's address (family 0: unknown) */
	int in_mynet;	   /* in mynetworks: for the connection limits only */
	int relay_counted; /* counted in the metrics as allowed to relay */
	int refused_counted; /* counted in the tally as refused relaying */
	int ccert_asked;   /* a client certificate was asked for at STARTTLS */
	struct smtpd_ccert ccert;
	int skip_line; /* discarding the rest of an over-long command line */
	int in_mail;
	struct smtp_path from;
	struct smtp_mail_params mp;
	struct queue_rcpt *rcpt;
	size_t nrcpt, rcap;
	struct rl_buf msg; /* our Received header, then what has not spilled */
	size_t rcvd_len;   /* bytes of our Received header */
	size_t hops;	   /* Received: fields the client sent */
	int hops_known;
	struct spill spill; /* the message beyond smtpd_spill_threshold */
	int spill_err;	    /* the spill file failed: 452 at the end */
	struct smtp_data data;
	struct commit_req creq;
	int commit_pending;
	int conn_gone; /* CONN_EV_CLOSED seen */
	int throttled; /* reading stopped until our replies drain */
	unsigned errors;
	uint64_t deadline; /* uv_now() limit for the whole session */
	char tls[160];	   /* summary of the inbound TLS session */
	/*
	 * SMTP AUTH.  auth_user is the authenticated identity ("" until AUTH
	 * succeeded; smtpd_auth_user() gives NULL then), kept for the session
	 * (RSET and EHLO keep it; RFC 4954 section 4).  sasl_step is where a
	 * SASL exchange stands while the client owes a response; job is the
	 * hash check in flight (smtpd_auth.c owns it).
	 */
	char auth_user[AUTH_USER_MAX + 1];
	const char *auth_mech;		   /* "PLAIN" or "LOGIN" once authenticated */
	int sasl_step;			   /* SMTPD_SASL_* */
	char sasl_user[AUTH_USER_MAX + 1]; /* LOGIN: the name, until the password comes */
	size_t sasl_userlen;
	struct smtpd_auth_job *job;
};

/* Where a SASL exchange stands (struct smtpd's sasl_step). */
enum smtpd_sasl_step {
	SMTPD_SASL_NONE = 0,
	SMTPD_SASL_PLAIN,      /* "334 " sent: the PLAIN response is due */
	SMTPD_SASL_LOGIN_USER, /* "334 VXNlcm5hbWU6" (Username:) sent */
	SMTPD_SASL_LOGIN_PASS, /* "334 UGFzc3dvcmQ6" (Password:) sent */
};

/* smtpd.c: the session's own helpers. */
void smtpd_set_state(struct smtpd *s, int state);
void smtpd_reply(struct smtpd *s, const char *fmt, ...) RL_PRINTF(2, 3);
void smtpd_close(struct smtpd *s);
/* "CODE HOST TEXT" and close: a timeout, too many errors, shutdown. */
void smtpd_bye(struct smtpd *s, const char *code, const char *text);
void smtpd_arm_timer(struct smtpd *s);
/* Execute the commands waiting in the input buffer; flush the replies. */
void smtpd_process(struct smtpd *s);
/* An asynchronous step (commit, AUTH check) is over: back to reading
 * and executing commands (reading stays paused while throttled). */
void smtpd_resume_commands(struct smtpd *s);

/* smtpd_relay.c: who may relay. */
/* The client certificate after the TLS handshake, if one was asked for. */
void smtpd_ccert_read(struct smtpd *s);
void smtpd_ccert_log(const struct smtpd *s);
/* pol_relay_decide() for this session; counts the first allowed or refused. */
enum pol_relay_by smtpd_relay_check(struct smtpd *s);

/* smtpd_auth.c: SMTP AUTH (RFC 4954). */
/* Is AUTH offered to this session (a password file, and under TLS)? */
int smtpd_auth_offered(const struct smtpd *s);
/* The authenticated user, or NULL. */
const char *smtpd_auth_user(const struct smtpd *s);
/* The AUTH command. */
void smtpd_auth_cmd(struct smtpd *s, const struct smtp_cmd *c);
/* A line while s->sasl_step is not SMTPD_SASL_NONE: the client's response. */
void smtpd_auth_response(struct smtpd *s, const char *line, size_t len);
/* The session is being freed: a check in flight goes on alone and is dropped. */
void smtpd_auth_detach(struct smtpd *s);
/* The server's AUTH state (the failure table); -ENOMEM. */
int smtpd_auth_server_init(struct smtpd_server *sv) RL_WUR;
void smtpd_auth_server_fini(struct smtpd_server *sv);

#endif
