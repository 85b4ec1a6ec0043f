/*
 * smtpc: the outbound SMTP client session.
 *
 * One state enum, one setter (smtpc_set_state) that arms the state's
 * timeout; smtpc_send_<cmd>() queue a command and set the next state, and a
 * single dispatcher hands each complete reply (from the pure smtp_reply
 * assembler) to the handler of the state it belongs to.  Policy checkpoints
 * are explicit: after EHLO (is STARTTLS there when the level needs it?) and
 * after the handshake (smtpc_tls_check), and only a pass leads to MAIL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "log.h"
#include "netaddr.h"
#include "pol.h"
#include "queue.h"
#include "smtp.h"
#include "smtpc.h"

#define SMTPC_IN_LIMIT (256 * 1024)
#define SMTPC_CHUNK 65536        /* content read per step */
#define SMTPC_HIGH_WATER 262144  /* stop feeding DATA above this much queued */
#define SMTPC_RELAY_MAX 320      /* "host[ip]:port" */

enum smtpc_state {
	SMTPC_S_CONNECT = 0,
	SMTPC_S_BANNER,
	SMTPC_S_EHLO,
	SMTPC_S_HELO,
	SMTPC_S_STARTTLS,
	SMTPC_S_TLS,
	SMTPC_S_MAIL,   /* MAIL, RCPT and DATA replies (pipelined or not) */
	SMTPC_S_BODY,   /* sending content */
	SMTPC_S_DOT,    /* waiting for the reply to the final dot */
	SMTPC_S_RSET,
	SMTPC_S_QUIT,
	SMTPC_S_DONE,
	SMTPC_S_COUNT
};

/* Per-state timeouts in seconds (Postfix's smtp_*_timeout defaults). */
static const struct {
	const char *name;  /* for "while ..." in reasons */
	unsigned timeout;
} smtpc_states[SMTPC_S_COUNT] = {
	[SMTPC_S_CONNECT] = { "connecting", 30 },
	[SMTPC_S_BANNER] = { "receiving the initial server greeting", 300 },
	[SMTPC_S_EHLO] = { "performing the EHLO handshake", 300 },
	[SMTPC_S_HELO] = { "performing the HELO handshake", 300 },
	[SMTPC_S_STARTTLS] = { "sending STARTTLS", 300 },
	[SMTPC_S_TLS] = { "performing the TLS handshake", 300 },
	[SMTPC_S_MAIL] = { "sending MAIL FROM", 300 },
	[SMTPC_S_BODY] = { "sending message body", 180 },
	[SMTPC_S_DOT] = { "sending end of data -- message may be sent more than once", 600 },
	[SMTPC_S_RSET] = { "sending RSET", 20 },
	[SMTPC_S_QUIT] = { "sending QUIT", 300 },
	[SMTPC_S_DONE] = { "closing", 5 },
};

struct smtpc {
	struct smtpc_params p;
	struct smtpc_target t;
	char helo[256];    /* a copy: a reload may free the configuration */
	struct conn *conn;
	int state;
	char relay[SMTPC_RELAY_MAX];  /* "host[ip]:port" */
	char hostip[SMTPC_RELAY_MAX]; /* "host[ip]" */
	char vsteps[SMTPC_REASON_MAX]; /* verification steps, for tls_loglevel 2 */
	struct smtp_ehlo ehlo;
	int esmtp;
	int connected;     /* the TCP connection was made */
	int established;   /* asked the owner for messages at least once */
	int stopping;
	int finished;      /* ops->closed already ran */
	int fail_class;    /* why the session failed, before messages */
	const char *fail_dsn; /* enhanced status for that failure; NULL: by class */
	char fail_reason[SMTPC_REASON_MAX];
	int plain_retry;
	const char *tls;   /* protection of the session for log lines: "none", ... */
	unsigned char pk[FPR_SHA256_LEN]; /* leaf public-key SHA-256 (has_pk) */
	int has_pk;
	int tls_result;    /* enum smtpc_tls_result */
	char local_ip[NETADDR_TEXT_SIZE];
	int verified;      /* TLS whose peer check ended POL_TRUST_VERIFIED (REQUIRETLS) */
	int quit_on_fail;  /* end with QUIT rather than a bare close */
	/* The transaction in progress. */
	struct smtpc_msg *msg;
	size_t sent;       /* commands sent: 0 = MAIL, 1..n = RCPT, n+1 = DATA */
	size_t acked;      /* replies handled, same numbering */
	size_t accepted;   /* recipients with a 2xx to RCPT */
	int mail_ok;
	uint64_t off;      /* content bytes sent */
	int bol;           /* the content so far ends at a line start */
	int body_done;
};

static void smtpc_finish(struct smtpc *s);
static void smtpc_note_local(struct smtpc *s);
static void smtpc_next_msg(struct smtpc *s);
static int smtpc_on_data_reply(struct smtpc *s, const struct smtp_reply *r);

static void smtpc_set_state(struct smtpc *s, int state)
{
	log_debug("smtp %s: state %d -> %d", s->relay, s->state, state);
	s->state = state;
	conn_set_timeout(s->conn, (uint64_t)smtpc_states[state].timeout * 1000);
}

static int smtpc_send(struct smtpc *s, const char *fmt, ...) RL_PRINTF(2, 3);

static int smtpc_send(struct smtpc *s, const char *fmt, ...)
{
	char line[SMTP_CMD_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return RL_ETOOBIG;
	/*
	 * A command is one line: an address from an old queue record (or any
	 * other path) carrying CR or LF must never add a command to the stream.
	 */
	if (memchr(line, '\r', (size_t)n) || memchr(line, '\n', (size_t)n))
		return RL_EPARSE;
	memcpy(line + n, "\r\n", 2);
	return conn_write(s->conn, line, (size_t)n + 2);
}

/* Give every undecided recipient of the current message a result. */
static void smtpc_rcpt_all(struct smtpc *s, int class, const char *dsn, const char *reason,
			   const char *reply)
{
	if (!s->msg)
		return;
	for (size_t i = 0; i < s->msg->nrcpt; i++) {
		struct smtpc_rcpt *r = &s->msg->rcpt[i];

		/* Recipients refused at RCPT already have their result. */
		if (r->result != SMTPC_NONE)
			continue;
		r->result = class;
		rl_strlcpy(r->dsn, dsn, sizeof(r->dsn));
		rl_strlcpy(r->reason, reason, sizeof(r->reason));
		rl_strlcpy(r->reply, reply ? reply : "", sizeof(r->reply));
	}
}

/*
 * Reasons end up in mailq, in log lines and in DSNs, and carry text from the
 * peer (replies, certificate names): whatever built them, no CR, LF or
 * other control or 8-bit octet leaves this module (no forged log lines or
 * mailq entries).  Applied where results are handed to the owner.
 */
static void smtpc_clean(char *text, size_t size)
{
	for (size_t i = 0; i < size && text[i]; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c < 0x20 || c > 0x7e)
			text[i] = '?';
	}
}

/* The message is decided: hand it back to the owner. */
static void smtpc_msg_finish(struct smtpc *s)
{
	struct smtpc_msg *m = s->msg;

	s->msg = NULL;
	if (!m)
		return;
	for (size_t i = 0; i < m->nrcpt; i++) {
		smtpc_clean(m->rcpt[i].reason, sizeof(m->rcpt[i].reason));
		smtpc_clean(m->rcpt[i].reply, sizeof(m->rcpt[i].reply));
	}
	m->has_pk = s->has_pk;
	if (s->has_pk)
		memcpy(m->pk_sha256, s->pk, sizeof(m->pk_sha256));
	s->p.ops->msg_done(s, m, s->p.arg);
}

/*
 * A failure that ends the session.  Recipients of a message in progress get
 * TEMPFAIL (or class) with the reason; before any message the class and
 * reason go to ops->closed so the owner can try the next MX.
 */
static void smtpc_fail(struct smtpc *s, int class, const char *fmt, ...) RL_PRINTF(3, 4);

static void smtpc_fail(struct smtpc *s, int class, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->fail_reason, sizeof(s->fail_reason), fmt, ap);
	va_end(ap);
	s->fail_class = class;
	if (!s->fail_dsn)
		s->fail_dsn = class == SMTPC_PERMFAIL ? "5.0.0" : class == SMTPC_POLICYFAIL ? "4.7.5" :
										      "4.4.2";
	if (s->msg) {
		smtpc_rcpt_all(s, class, s->fail_dsn, s->fail_reason, NULL);
		smtpc_msg_finish(s);
	}
	smtpc_set_state(s, SMTPC_S_DONE);
	/* QUIT is the one command a session may still send after an error. */
	if (s->quit_on_fail && smtpc_send(s, "QUIT") == 0)
		conn_close(s->conn);
	else
		conn_abort(s->conn);
}

/* --- commands ----------------------------------------------------------- */

/*
 * What the session was doing, for reasons: the state's name, or in the MAIL
 * state that of command i (0 = MAIL, 1..n = RCPT, n+1 = DATA).
 */
static const char *smtpc_doing(const struct smtpc *s, size_t i)
{
	if (s->state != SMTPC_S_MAIL || !s->msg)
		return smtpc_states[s->state].name;
	return i == 0 ? "sending MAIL FROM" : i <= s->msg->nrcpt ? "sending RCPT TO" : "sending DATA";
}

/*
 * Bytes for the peer could not be queued or written (rc from smtpc_send,
 * conn_write or conn_flush).  The session ends now and its message is
 * deferred: waiting for the state's timeout would hold it for minutes on a
 * connection that is known to be dead.
 */
static void smtpc_write_failed(struct smtpc *s, int rc, const char *doing)
{
	const char *text;

	if (conn_error(s->conn, &text) != 0)
		smtpc_fail(s, SMTPC_TEMPFAIL, "lost connection with %s while %s: %s", s->hostip,
			   doing, text);
	else
		smtpc_fail(s, SMTPC_TEMPFAIL, "cannot send to %s while %s: %s", s->hostip, doing,
			   rl_strerror(rc));
}

/* After queueing (rc of that): flush.  0, or the session failed. */
static int smtpc_push(struct smtpc *s, int rc, const char *doing)
{
	if (rc == 0)
		rc = conn_flush(s->conn);
	if (rc < 0)
		smtpc_write_failed(s, rc, doing);
	return rc;
}

static void smtpc_send_ehlo(struct smtpc *s)
{
	smtpc_set_state(s, SMTPC_S_EHLO);
	smtpc_push(s, smtpc_send(s, "EHLO %s", s->p.helo_name), smtpc_states[s->state].name);
}

static void smtpc_send_quit(struct smtpc *s)
{
	smtpc_set_state(s, SMTPC_S_QUIT);
	if (smtpc_send(s, "QUIT") < 0 || conn_flush(s->conn) < 0) {
		/* Every message is decided: nothing rides on QUIT; just close. */
		smtpc_set_state(s, SMTPC_S_DONE);
		conn_abort(s->conn);
	}
}

/* MAIL FROM with the parameters the server offers and the message needs. */
static int smtpc_send_mail(struct smtpc *s)
{
	const struct smtpc_msg *m = s->msg;
	char params[128] = "";
	size_t n = 0;

	if (s->ehlo.ext & SMTP_EXT_SIZE)
		n += (size_t)snprintf(params + n, sizeof(params) - n, " SIZE=%llu",
				      (unsigned long long)m->size);
	if ((m->flags & QUEUE_F_8BITMIME) && (s->ehlo.ext & SMTP_EXT_8BITMIME))
		n += (size_t)snprintf(params + n, sizeof(params) - n, " BODY=8BITMIME");
	if ((m->flags & QUEUE_F_SMTPUTF8) && (s->ehlo.ext & SMTP_EXT_SMTPUTF8))
		n += (size_t)snprintf(params + n, sizeof(params) - n, " SMTPUTF8");
	if (m->flags & QUEUE_F_REQUIRETLS) {
		/* smtpc_requiretls_fits() let the message this far: never in clear. */
		RL_REQUIRE(s->verified && (s->ehlo.ext & SMTP_EXT_REQUIRETLS));
		snprintf(params + n, sizeof(params) - n, " REQUIRETLS");
	}
	return smtpc_send(s, "MAIL FROM:<%s>%s", m->sender, params);
}

/* Send what may be sent now: everything when pipelining, else the next. */
static void smtpc_send_more(struct smtpc *s)
{
	size_t last = s->msg->nrcpt + 1; /* index of DATA */
	int pipelining = (s->ehlo.ext & SMTP_EXT_PIPELINING) != 0;

	while (s->sent <= last && (pipelining || s->sent == s->acked)) {
		int rc;

		if (s->sent == 0)
			rc = smtpc_send_mail(s);
		else if (s->sent <= s->msg->nrcpt)
			rc = smtpc_send(s, "RCPT TO:<%s>", s->msg->rcpt[s->sent - 1].address);
		else
			rc = smtpc_send(s, "DATA");
		if (rc < 0) {
			smtpc_write_failed(s, rc, smtpc_doing(s, s->sent));
			return;
		}
		s->sent++;
	}
	/* RFC 2920: the whole group goes out in one write. */
	smtpc_push(s, 0, smtpc_doing(s, s->sent - 1));
}

/*
 * RFC 8689 section 4.2.1: a REQUIRETLS message goes only over TLS whose
 * peer was verified (DANE, MTA-STS, verify, secure, fingerprint: the peer
 * check's POL_TRUST_VERIFIED), and only to a server that offers REQUIRETLS
 * after STARTTLS (the EHLO of this session; s->ehlo was forgotten at the
 * handshake).  Otherwise its recipients bounce at once with 5.7.30, before
 * MAIL: waiting would not change the MX host, and the sender asked for
 * failure over an unprotected hop.
 */
static int smtpc_requiretls_fits(struct smtpc *s)
{
	char why[SMTPC_REASON_MAX];
	const char *level = pol_level_name(s->t.pol->level);

	if (!(s->msg->flags & QUEUE_F_REQUIRETLS))
		return 1;
	if (!conn_tls_active(s->conn))
		snprintf(why, sizeof(why),
			 "REQUIRETLS: the connection to %s is not protected by TLS (level %s)",
			 s->hostip, level);
	else if (!s->verified)
		snprintf(why, sizeof(why),
			 "REQUIRETLS: the TLS connection to %s was not verified (level %s)",
			 s->hostip, level);
	else if (!(s->ehlo.ext & SMTP_EXT_REQUIRETLS))
		snprintf(why, sizeof(why), "REQUIRETLS: host %s does not offer REQUIRETLS",
			 s->hostip);
	else
		return 1;
	smtpc_rcpt_all(s, SMTPC_PERMFAIL, "5.7.30", why, NULL);
	return 0;
}

/* Checks before a message is offered to this server at all. */
static int smtpc_msg_fits(struct smtpc *s)
{
	const struct smtpc_msg *m = s->msg;
	char why[SMTPC_REASON_MAX];

	if (!smtpc_requiretls_fits(s))
		return 0;
	if ((m->flags & QUEUE_F_SMTPUTF8) && !(s->ehlo.ext & SMTP_EXT_SMTPUTF8)) {
		snprintf(why, sizeof(why), "SMTPUTF8 is required, but was not offered by host %s",
			 s->hostip);
		smtpc_rcpt_all(s, SMTPC_PERMFAIL, "5.6.7", why, NULL);
		return 0;
	}
	if (s->ehlo.size_max && m->size > s->ehlo.size_max) {
		snprintf(why, sizeof(why), "message size %llu exceeds size limit %llu of server %s",
			 (unsigned long long)m->size, (unsigned long long)s->ehlo.size_max,
			 s->hostip);
		smtpc_rcpt_all(s, SMTPC_PERMFAIL, "5.3.4", why, NULL);
		return 0;
	}
	return 1;
}

static void smtpc_start_msg(struct smtpc *s)
{
	s->sent = s->acked = s->accepted = 0;
	s->mail_ok = 0;
	s->off = 0;
	s->bol = 1;
	s->body_done = 0;
	for (size_t i = 0; i < s->msg->nrcpt; i++)
		s->msg->rcpt[i].result = SMTPC_NONE;
	if (!smtpc_msg_fits(s)) {
		smtpc_msg_finish(s);
		smtpc_next_msg(s);
		return;
	}
	smtpc_set_state(s, SMTPC_S_MAIL);
	smtpc_send_more(s);
}

/* Between messages: the owner decides whether the connection is reused. */
static void smtpc_next_msg(struct smtpc *s)
{
	if (s->state == SMTPC_S_DONE)
		return;
	s->established = 1;
	s->msg = s->stopping ? NULL : s->p.ops->next(s, s->p.arg);
	if (!s->msg) {
		smtpc_send_quit(s);
		return;
	}
	smtpc_start_msg(s);
}

/* --- content ------------------------------------------------------------ */

/*
 * Append content to the connection with dot-stuffing (RFC 5321 4.5.2):
 * a line that starts with '.' gets one more.
 */
static int smtpc_stuff(struct smtpc *s, const char *p, size_t n)
{
	size_t start = 0;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		if (s->bol && p[i] == '.') {
			rc = conn_write(s->conn, p + start, i - start);
			if (rc == 0)
				rc = conn_write(s->conn, ".", 1);
			start = i;
		}
		s->bol = p[i] == '\n';
	}
	if (rc == 0)
		rc = conn_write(s->conn, p + start, n - start);
	return rc;
}

/*
 * The content stage's timeout bounds inactivity, not the whole transfer
 * (Postfix's smtp_data_xfer_timeout): a large message on a slow link may
 * take far longer than it, as long as it keeps moving.  Tests shrink it.
 */
#ifndef SMTPC_BODY_IDLE_MS
#define SMTPC_BODY_IDLE_MS ((uint64_t)smtpc_states[SMTPC_S_BODY].timeout * 1000)
#endif

/*
 * Feed content until the connection has enough queued; end with the dot.
 * Runs when the content stage starts and on every CONN_EV_DRAINED after
 * it: each run follows progress, so it restarts the stage's timer.
 */
static void smtpc_send_body(struct smtpc *s)
{
	char buf[SMTPC_CHUNK];

	conn_set_timeout(s->conn, SMTPC_BODY_IDLE_MS);
	while (!s->body_done && conn_pending(s->conn) < SMTPC_HIGH_WATER) {
		size_t got = 0;
		int rc = s->msg->read(s->msg->arg, s->off, buf, sizeof(buf), &got);

		if (rc < 0) {
			smtpc_fail(s, SMTPC_TEMPFAIL, "cannot read message %s from the queue: %s",
				   s->msg->id, rl_strerror(rc));
			return;
		}
		if (got == 0) {
			/* Content ends in CRLF; if not, end the last line first. */
			rc = conn_write(s->conn, s->bol ? ".\r\n" : "\r\n.\r\n", s->bol ? 3 : 5);
			s->body_done = 1;
		} else {
			s->off += got;
			rc = smtpc_stuff(s, buf, got);
		}
		if (smtpc_push(s, rc, smtpc_states[SMTPC_S_BODY].name) < 0)
			return;
		if (s->body_done)
			smtpc_set_state(s, SMTPC_S_DOT);
	}
}

/* --- replies ------------------------------------------------------------ */

/* Class of a refusal (smtp_reply_verdict REFUSED): 4xx temporary, 5xx permanent. */
static int smtpc_refusal_class(int code)
{
	return code < 500 ? SMTPC_TEMPFAIL : SMTPC_PERMFAIL;
}

/* The peer text quoted in a protocol error reason is capped (STYLE 6). */
#define SMTPC_QUOTE_MAX 200

/*
 * A reply the step may not get (smtp_reply_verdict says PROTO): the server
 * is broken or hostile, so nothing it said in this transaction is trusted.
 * The session ends (QUIT at most), the recipients of a message in progress
 * are deferred and never counted as delivered or accepted, and before any
 * message the owner gets the reason to try the next MX.
 */
static int smtpc_proto_error(struct smtpc *s, int step, const struct smtp_reply *r)
{
	char line[SMTPC_QUOTE_MAX + 1];

	smtp_reply_oneline(r, line, sizeof(line));
	s->fail_dsn = "4.5.0"; /* RFC 3463: other or undefined protocol status */
	s->quit_on_fail = 1;
	smtpc_fail(s, SMTPC_TEMPFAIL, "protocol error: unexpected reply \"%s\" %s from %s", line,
		   smtp_step_name(step), s->hostip);
	return 0;
}

/* Reason text "host X[ip] said: 550 5.1.1 ... (in reply to RCPT TO command)". */
static void smtpc_said(struct smtpc *s, const struct smtp_reply *r, const char *cmd, char *out,
		       size_t size, char *reply, size_t rsize)
{
	smtp_reply_oneline(r, reply, rsize);
	/* A reply longer than the reason is cut; the reason stays one line. */
	if (snprintf(out, size, "host %s said: %s (in reply to %s command)", s->hostip, reply,
		     cmd) >= (int)size)
		memcpy(out + size - 4, "...", 4);
}

static const char *smtpc_dsn_of(const struct smtp_reply *r, int class)
{
	if (r->enh[0])
		return r->enh;
	return class == SMTPC_DELIVERED ? "2.0.0" : class == SMTPC_TEMPFAIL ? "4.0.0" : "5.0.0";
}

static int smtpc_on_banner_reply(struct smtpc *s, const struct smtp_reply *r)
{
	char line[SMTPC_REASON_MAX];
	int v = smtp_reply_verdict(SMTP_STEP_GREETING, r->code);

	if (v == SMTP_VERDICT_PROTO)
		return smtpc_proto_error(s, SMTP_STEP_GREETING, r);
	if (v == SMTP_VERDICT_REFUSED) {
		smtp_reply_oneline(r, line, sizeof(line));
		smtpc_fail(s, SMTPC_TEMPFAIL, "host %s refused to talk to me: %s", s->hostip, line);
		return 0;
	}
	smtpc_send_ehlo(s);
	return 0;
}

/* Policy checkpoint after EHLO/HELO: STARTTLS now, proceed, or refuse. */
static int smtpc_after_ehlo(struct smtpc *s)
{
	int needs = pol_level_requires_tls(s->t.pol->level);

	/* no_starttls (a retry in clear after a failed handshake) only ever
	 * comes for a level that does not require TLS; never trust it else. */
	if (conn_tls_active(s->conn) || s->t.pol->level == POL_LEVEL_NONE ||
	    (s->t.no_starttls && !needs)) {
		smtpc_next_msg(s);
		return 0;
	}
	if (s->ehlo.ext & SMTP_EXT_STARTTLS) {
		smtpc_set_state(s, SMTPC_S_STARTTLS);
		smtpc_push(s, smtpc_send(s, "STARTTLS"), smtpc_states[s->state].name);
		return 0;
	}
	s->tls_result = SMTPC_TR_STARTTLS;
	if (needs) {
		s->fail_dsn = "4.7.4"; /* RFC 3463: security features not supported */
		smtpc_fail(s, SMTPC_POLICYFAIL, "TLS is required, but was not offered by host %s",
			   s->hostip);
		return 0;
	}
	smtpc_next_msg(s);
	return 0;
}

static int smtpc_on_ehlo_reply(struct smtpc *s, const struct smtp_reply *r)
{
	int v = smtp_reply_verdict(SMTP_STEP_EHLO, r->code);

	if (v == SMTP_VERDICT_PROTO)
		return smtpc_proto_error(s, SMTP_STEP_EHLO, r);
	if (v == SMTP_VERDICT_REFUSED) {
		/* RFC 5321 3.2: fall back to HELO (no extensions, so no STARTTLS). */
		smtpc_set_state(s, SMTPC_S_HELO);
		smtpc_push(s, smtpc_send(s, "HELO %s", s->p.helo_name), smtpc_states[s->state].name);
		return 0;
	}
	s->esmtp = 1;
	smtp_ehlo_parse(r, &s->ehlo);
	return smtpc_after_ehlo(s);
}

static int smtpc_on_helo_reply(struct smtpc *s, const struct smtp_reply *r)
{
	char line[SMTPC_REASON_MAX];
	int v = smtp_reply_verdict(SMTP_STEP_HELO, r->code);

	if (v == SMTP_VERDICT_PROTO)
		return smtpc_proto_error(s, SMTP_STEP_HELO, r);
	if (v == SMTP_VERDICT_REFUSED) {
		smtp_reply_oneline(r, line, sizeof(line));
		smtpc_fail(s, SMTPC_TEMPFAIL, "host %s refused to talk to me: %s", s->hostip, line);
		return 0;
	}
	memset(&s->ehlo, 0, sizeof(s->ehlo));
	return smtpc_after_ehlo(s);
}

static const char *smtpc_servername(const struct smtpc *s)
{
	const char *name = s->t.pol->servername;
	struct in6_addr a6;
	struct in_addr a4;

	/* SNI carries a host name, never an address literal (RFC 6066 3). */
	if (!name || inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1)
		return NULL;
	return name;
}

static int smtpc_on_starttls_reply(struct smtpc *s, const struct smtp_reply *r, size_t extra)
{
	char line[SMTPC_REASON_MAX];
	int needs = pol_level_requires_tls(s->t.pol->level);
	int v = smtp_reply_verdict(SMTP_STEP_STARTTLS, r->code);

	if (v == SMTP_VERDICT_PROTO)
		return smtpc_proto_error(s, SMTP_STEP_STARTTLS, r);
	if (v == SMTP_VERDICT_REFUSED) {
		smtp_reply_oneline(r, line, sizeof(line));
		s->tls_result = SMTPC_TR_STARTTLS;
		if (needs) {
			smtpc_fail(s, SMTPC_POLICYFAIL,
				   "TLS is required, but host %s refused to start TLS: %s", s->hostip,
				   line);
			return 0;
		}
		smtpc_next_msg(s); /* `may`: continue in clear, as Postfix does */
		return 0;
	}
	if (extra) {
		/* Bytes after the 220 were sent before TLS: command injection. */
		s->tls_result = SMTPC_TR_VALIDATION;
		smtpc_fail(s, needs ? SMTPC_POLICYFAIL : SMTPC_TEMPFAIL,
			   "host %s sent data after its STARTTLS reply (possible injection)",
			   s->hostip);
		return 0;
	}
	smtpc_set_state(s, SMTPC_S_TLS);
	if (conn_tls_client(s->conn, s->p.tls->cred, s->t.pol->prio ? s->t.pol->prio : s->p.tls->prio,
			    smtpc_servername(s)) < 0) {
		smtpc_fail(s, needs ? SMTPC_POLICYFAIL : SMTPC_TEMPFAIL,
			   "Cannot start TLS: cannot set up the TLS session");
		return 0;
	}
	return 0;
}

/* Digests of the leaf, for reasons and logs: "cert SHA-256 3A:.., pkey SHA-256 B1:..". */
static void smtpc_seen_digests(const gnutls_datum_t *leaf, char *out, size_t size)
{
	struct fpr_digest c, k;
	char ct[FPR_TEXT_SIZE], kt[FPR_TEXT_SIZE];

	if (fpr_compute(leaf->data, leaf->size, FPR_CERT, FPR_SHA256_LEN, &c) < 0 ||
	    fpr_compute(leaf->data, leaf->size, FPR_PUBKEY, FPR_SHA256_LEN, &k) < 0) {
		snprintf(out, size, "undecodable certificate");
		return;
	}
	fpr_format(&c, ct, sizeof(ct));
	fpr_format(&k, kt, sizeof(kt));
	snprintf(out, size, "certificate SHA-256 %s, public key SHA-256 %s", ct, kt);
}

/* What was checked, for tls_loglevel 2: "chain trusted; name matched ..". */
static void smtpc_vsteps(struct smtpc *s, const struct pol_verdict *v, const char *reason)
{
	const struct pol_peer_policy *p = s->t.pol;
	char want[600];
	size_t n;

	snprintf(s->vsteps, sizeof(s->vsteps), "chain %s",
		 v->chain == POL_CHAIN_UNCHECKED ? "not checked (no trust anchors)"
		 : v->chain == POL_CHAIN_TRUSTED ? "trusted"
						 : cert_status_text(v->status));
	n = strlen(s->vsteps);
	pol_peer_names_text(p, want, sizeof(want));
	if (p->level == POL_LEVEL_FINGERPRINT)
		snprintf(s->vsteps + n, sizeof(s->vsteps) - n, "; %s",
			 v->pass ? "fingerprint matched" : "no fingerprint matched");
	else if ((p->level == POL_LEVEL_VERIFY || p->level == POL_LEVEL_SECURE) &&
		 v->chain == POL_CHAIN_TRUSTED)
		snprintf(s->vsteps + n, sizeof(s->vsteps) - n, "; %s (wanted %s)",
			 v->named ? reason : "no name matched", want[0] ? want : "(none)");
}

/*
 * The TLS-RPT result type of a verdict (RFC 8460 4.3.1).  The MX host's
 * certificate under MTA-STS is judged like any other (enforce is level
 * verify for the MX name): sts-webpki-invalid is about the policy host's
 * certificate (4.3.2.2), which mtasts reports.  A testing policy that
 * would not have been met says why in v->sts_fail.  Otherwise DANE
 * records that do not match are a validation failure, and a chain check
 * says why: expired, not trusted, or trusted for another name.
 */
static int smtpc_result_of(const struct pol_peer_policy *p, const struct pol_verdict *v, int rc)
{
	if (rc == 0) {
		switch (v->sts_fail) {
		case POL_STS_FAIL_NONE: return SMTPC_TR_OK;
		case POL_STS_FAIL_UNTRUSTED:
			return (v->sts_status & GNUTLS_CERT_EXPIRED) ? SMTPC_TR_EXPIRED
								     : SMTPC_TR_NOT_TRUSTED;
		case POL_STS_FAIL_NAME: return SMTPC_TR_HOST_MISMATCH;
		default: return SMTPC_TR_VALIDATION; /* not in the policy; no certificate */
		}
	}
	if (p->ntlsa > 0 || p->level == POL_LEVEL_FINGERPRINT || v->chain == POL_CHAIN_NONE)
		return SMTPC_TR_VALIDATION;
	if (v->chain == POL_CHAIN_UNTRUSTED)
		return (v->status & GNUTLS_CERT_EXPIRED) ? SMTPC_TR_EXPIRED : SMTPC_TR_NOT_TRUSTED;
	if (v->chain == POL_CHAIN_TRUSTED && !v->named)
		return SMTPC_TR_HOST_MISMATCH;
	return SMTPC_TR_VALIDATION;
}

/*
 * The policy checkpoint after the handshake: pol_peer_check() decides,
 * as it does for `certs probe`.  Sets *trust to the word of the log line.
 * Returns 0 when the level is satisfied, else fails the session (fail
 * closed) with the verdict's reason and status, and returns -1.
 */
static int smtpc_peer_check(struct smtpc *s, const gnutls_datum_t *chain, unsigned n,
			    const char **trust, const char **mech)
{
	struct pol_verdict v;
	char reason[SMTPC_REASON_MAX];
	int rc = pol_peer_check(s->t.pol, s->relay, chain, chain ? n : 0, &v, reason,
				sizeof(reason));

	*trust = pol_trust_word(v.trust);
	/* tls=dane / tls=mta-sts: verified by that mechanism. */
	*mech = v.trust != POL_TRUST_VERIFIED ? NULL : v.dane ? "dane" : v.sts ? "mta-sts" : NULL;
	if (v.sts_note[0])
		log_info("mta-sts: %s: testing policy not met: %s with %s", s->t.pol->sts_domain,
			 v.sts_note, s->relay);
	if (chain && n > 0)
		smtpc_vsteps(s, &v, reason);
	/* For REQUIRETLS: only a Verified peer will do (DANE, verify, ...). */
	s->verified = rc == 0 && v.trust == POL_TRUST_VERIFIED;
	s->tls_result = smtpc_result_of(s->t.pol, &v, rc);
	if (rc == 0)
		return 0;
	s->fail_dsn = v.dsn;
	if (v.seen[0])
		smtpc_fail(s, SMTPC_POLICYFAIL, "%s (seen %s)", reason, v.seen);
	else
		smtpc_fail(s, SMTPC_POLICYFAIL, "%s", reason);
	return -1;
}

/* The contract's tls= value for a log line: the trust word in lower case. */
static const char *smtpc_tls_word(const char *trust)
{
	static const char *const words[] = { "anonymous", "untrusted", "trusted", "verified" };

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasecmp(trust, words[i]) == 0)
			return words[i];
	return "anonymous";
}

/* Remember the leaf's public-key digest for the posture counters. */
static void smtpc_note_pk(struct smtpc *s, const gnutls_datum_t *chain, unsigned n)
{
	struct fpr_digest k;

	s->has_pk = chain && n > 0 &&
		    fpr_compute(chain[0].data, chain[0].size, FPR_PUBKEY, FPR_SHA256_LEN, &k) == 0;
	if (s->has_pk)
		memcpy(s->pk, k.bytes, sizeof(s->pk));
}

const unsigned char *smtpc_pk_sha256(const struct smtpc *s)
{
	return s->has_pk ? s->pk : NULL;
}

static int smtpc_tls_check(struct smtpc *s)
{
	gnutls_session_t t = conn_tls_session(s->conn);
	unsigned n = 0;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(t, &n);
	const char *trust = "Anonymous", *mech = NULL;
	char summary[200];
	int rc;

	conn_tls_summary(s->conn, summary, sizeof(summary));
	smtpc_note_pk(s, chain, n);
	/* Log first: the TLS line tells what was established, even if refused. */
	rc = smtpc_peer_check(s, chain, n, &trust, &mech);
	/* A Trusted DANE match is "trusted", not "dane". */
	if (rc == 0)
		s->tls = mech ? mech : smtpc_tls_word(trust);
	if (s->p.tls->loglevel >= 1)
		log_info("%s TLS connection established to %s: %s", trust, s->relay, summary);
	if (s->p.tls->loglevel >= 2 && chain && n > 0) {
		char seen[400];

		smtpc_seen_digests(&chain[0], seen, sizeof(seen));
		log_info("%s: level=%s, chain=%u, %s", s->relay, pol_level_name(s->t.pol->level), n,
			 seen);
		/* As Postfix at level 2: each certificate, then what was checked. */
		for (unsigned i = 0; i < n; i++) {
			char subj[300], iss[300];

			if (cert_subject_text(chain[i].data, chain[i].size, subj, sizeof(subj)) < 0)
				rl_strlcpy(subj, "?", sizeof(subj));
			if (cert_issuer_text(chain[i].data, chain[i].size, iss, sizeof(iss)) < 0)
				rl_strlcpy(iss, "?", sizeof(iss));
			/* Names come from the peer's certificate: no forged log lines. */
			smtpc_clean(subj, sizeof(subj));
			smtpc_clean(iss, sizeof(iss));
			log_info("%s: depth=%u subject=%s, issuer=%s", s->relay, i, subj, iss);
		}
		if (s->vsteps[0])
			log_info("%s: verification: %s", s->relay, s->vsteps);
	}
	return rc;
}

static void smtpc_on_tls_ready(struct smtpc *s)
{
	if (smtpc_tls_check(s) < 0)
		return;
	/* RFC 3207 4.2: forget what the server said before TLS; ask again. */
	memset(&s->ehlo, 0, sizeof(s->ehlo));
	smtpc_send_ehlo(s);
}

/* Reply to MAIL (acked 0), RCPT (1..n) or DATA (n+1). */
static int smtpc_on_mail_reply(struct smtpc *s, const struct smtp_reply *r)
{
	struct smtpc_msg *m = s->msg;
	size_t i = s->acked++;
	int step = i == 0 ? SMTP_STEP_MAIL : i <= m->nrcpt ? SMTP_STEP_RCPT : SMTP_STEP_DATA;
	int v = smtp_reply_verdict(step, r->code);
	int class = smtpc_refusal_class(r->code);
	char reason[SMTPC_REASON_MAX], reply[SMTPC_REASON_MAX];

	if (step == SMTP_STEP_DATA)
		return smtpc_on_data_reply(s, r);
	/* Checked even after a refused MAIL: a broken server is not talked to. */
	if (v == SMTP_VERDICT_PROTO)
		return smtpc_proto_error(s, step, r);
	if (step == SMTP_STEP_MAIL) {
		s->mail_ok = v == SMTP_VERDICT_OK;
		if (!s->mail_ok) {
			smtpc_said(s, r, "MAIL FROM", reason, sizeof(reason), reply, sizeof(reply));
			smtpc_rcpt_all(s, class, smtpc_dsn_of(r, class), reason, reply);
		}
	} else if (s->mail_ok && v == SMTP_VERDICT_OK) {
		s->accepted++;
	} else if (s->mail_ok) {
		struct smtpc_rcpt *rc = &m->rcpt[i - 1];

		smtpc_said(s, r, "RCPT TO", rc->reason, sizeof(rc->reason), rc->reply,
			   sizeof(rc->reply));
		rl_strlcpy(rc->dsn, smtpc_dsn_of(r, class), sizeof(rc->dsn));
		rc->result = class;
	}
	smtpc_send_more(s);
	return 0;
}

/* After a failed transaction: RSET, then the next message. */
static void smtpc_send_rset(struct smtpc *s)
{
	smtpc_msg_finish(s);
	smtpc_set_state(s, SMTPC_S_RSET);
	smtpc_push(s, smtpc_send(s, "RSET"), smtpc_states[s->state].name);
}

/* Only 354 lets the content go, and only to accepted recipients; a 2xx
 * instead (the content never sent) is a protocol error, not success. */
static int smtpc_on_data_reply(struct smtpc *s, const struct smtp_reply *r)
{
	int v = smtp_reply_verdict(SMTP_STEP_DATA, r->code);
	int class = smtpc_refusal_class(r->code);
	char reason[SMTPC_REASON_MAX], reply[SMTPC_REASON_MAX];

	if (v == SMTP_VERDICT_PROTO)
		return smtpc_proto_error(s, SMTP_STEP_DATA, r);
	if (v == SMTP_VERDICT_OK && s->mail_ok && s->accepted > 0) {
		smtpc_set_state(s, SMTPC_S_BODY);
		smtpc_send_body(s);
		return 0;
	}
	if (v == SMTP_VERDICT_OK) {
		/* DATA accepted with no valid recipient: never send the content. */
		smtpc_fail(s, SMTPC_TEMPFAIL, "host %s accepted DATA without recipients",
			   s->hostip);
		return 0;
	}
	if (s->mail_ok && s->accepted > 0) {
		smtpc_said(s, r, "DATA", reason, sizeof(reason), reply, sizeof(reply));
		smtpc_rcpt_all(s, class, smtpc_dsn_of(r, class), reason, reply);
	}
	smtpc_send_rset(s);
	return 0;
}

/* Only a 250 delivers: a 354 or other 2xx/3xx here is a protocol error. */
static int smtpc_on_dot_reply(struct smtpc *s, const struct smtp_reply *r)
{
	int v = smtp_reply_verdict(SMTP_STEP_DOT, r->code);
	int class = smtpc_refusal_class(r->code);
	char reason[SMTPC_REASON_MAX], reply[SMTPC_REASON_MAX];

	if (v == SMTP_VERDICT_PROTO)
		return smtpc_proto_error(s, SMTP_STEP_DOT, r);
	if (v == SMTP_VERDICT_OK) {
		smtp_reply_oneline(r, reply, sizeof(reply));
		smtpc_rcpt_all(s, SMTPC_DELIVERED, smtpc_dsn_of(r, SMTPC_DELIVERED), reply, reply);
	} else {
		smtpc_said(s, r, "end of DATA", reason, sizeof(reason), reply, sizeof(reply));
		smtpc_rcpt_all(s, class, smtpc_dsn_of(r, class), reason, reply);
	}
	smtpc_msg_finish(s);
	smtpc_next_msg(s);
	return 0;
}

static int smtpc_on_rset_reply(struct smtpc *s, const struct smtp_reply *r)
{
	int v = smtp_reply_verdict(SMTP_STEP_RSET, r->code);

	if (v == SMTP_VERDICT_PROTO)
		return smtpc_proto_error(s, SMTP_STEP_RSET, r);
	if (v == SMTP_VERDICT_OK)
		smtpc_next_msg(s);
	else
		smtpc_send_quit(s);
	return 0;
}

static int smtpc_on_reply(struct smtpc *s, const struct smtp_reply *r, size_t extra)
{
	switch (s->state) {
	case SMTPC_S_BANNER: return smtpc_on_banner_reply(s, r);
	case SMTPC_S_EHLO: return smtpc_on_ehlo_reply(s, r);
	case SMTPC_S_HELO: return smtpc_on_helo_reply(s, r);
	case SMTPC_S_STARTTLS: return smtpc_on_starttls_reply(s, r, extra);
	case SMTPC_S_MAIL: return smtpc_on_mail_reply(s, r);
	case SMTPC_S_DOT: return smtpc_on_dot_reply(s, r);
	case SMTPC_S_RSET: return smtpc_on_rset_reply(s, r);
	case SMTPC_S_QUIT:
		/* Whatever the reply, the session is over; nothing rides on it. */
		smtpc_set_state(s, SMTPC_S_DONE);
		conn_close(s->conn);
		return 0;
	default:
		/* A reply nobody asked for (e.g. during the content): give up. */
		smtpc_fail(s, SMTPC_TEMPFAIL, "host %s sent an unexpected reply %d while %s",
			   s->hostip, r->code, smtpc_states[s->state].name);
		return 0;
	}
}

static void smtpc_read(struct smtpc *s)
{
	struct rl_buf *in = conn_in(s->conn);

	while (in->len > 0 && s->state != SMTPC_S_DONE && s->state != SMTPC_S_TLS) {
		struct smtp_reply r;
		size_t used = 0;
		int rc = smtp_reply_parse(in->data, in->len, &r, &used);

		if (rc == 0)
			return;
		if (rc < 0) {
			smtpc_fail(s, SMTPC_TEMPFAIL, "host %s sent a malformed reply while %s",
				   s->hostip, smtpc_states[s->state].name);
			return;
		}
		rl_buf_consume(in, used);
		smtpc_on_reply(s, &r, in->len);
	}
}

static void smtpc_on_error(struct smtpc *s, int ev)
{
	const char *text = "connection closed";
	int needs = pol_level_requires_tls(s->t.pol->level);

	if (ev == CONN_EV_ERROR)
		conn_error(s->conn, &text);
	if (s->state == SMTPC_S_CONNECT) {
		s->fail_dsn = "4.4.1"; /* RFC 3463: no answer from host */
		smtpc_fail(s, SMTPC_TEMPFAIL, "connect to %s: %s", s->relay,
			   ev == CONN_EV_TIMEOUT ? "Connection timed out" : text);
	} else if (s->state == SMTPC_S_TLS) {
		s->plain_retry = !needs && !s->established;
		s->tls_result = SMTPC_TR_VALIDATION;
		smtpc_fail(s, needs ? SMTPC_POLICYFAIL : SMTPC_TEMPFAIL,
			   "Cannot start TLS: handshake failure with %s: %s", s->hostip, text);
	} else if (s->state == SMTPC_S_QUIT || s->state == SMTPC_S_DONE) {
		smtpc_set_state(s, SMTPC_S_DONE);
		conn_abort(s->conn);
	} else if (ev == CONN_EV_TIMEOUT) {
		smtpc_fail(s, SMTPC_TEMPFAIL, "conversation with %s timed out while %s", s->hostip,
			   smtpc_states[s->state].name);
	} else if (ev == CONN_EV_ERROR) {
		/* The cause (a reset, a failed write) says what went wrong. */
		smtpc_fail(s, SMTPC_TEMPFAIL, "lost connection with %s while %s: %s", s->hostip,
			   smtpc_doing(s, s->acked), text);
	} else {
		smtpc_fail(s, SMTPC_TEMPFAIL, "lost connection with %s while %s", s->hostip,
			   smtpc_doing(s, s->acked));
	}
}

static void smtpc_event(struct conn *c, int ev, void *arg)
{
	struct smtpc *s = arg;

	switch (ev) {
	case CONN_EV_CONNECTED:
		s->connected = 1;
		smtpc_note_local(s);
		smtpc_set_state(s, SMTPC_S_BANNER);
		break;
	case CONN_EV_READABLE: smtpc_read(s); break;
	case CONN_EV_TLS_READY:
		smtpc_on_tls_ready(s);
		smtpc_read(s);
		break;
	case CONN_EV_DRAINED:
		if (s->state == SMTPC_S_BODY)
			smtpc_send_body(s);
		break;
	case CONN_EV_TIMEOUT:
	case CONN_EV_EOF:
	case CONN_EV_ERROR: smtpc_on_error(s, ev); break;
	case CONN_EV_CLOSED: smtpc_finish(s); break;
	default: break;
	}
	(void)c;
}

static const struct conn_ops smtpc_conn_ops = { smtpc_event };

/* The relay's address on the connection, for TLS-RPT's sending-mta-ip. */
static void smtpc_note_local(struct smtpc *s)
{
	struct sockaddr_storage ss;
	unsigned port;

	if (conn_local(s->conn, &ss) < 0 ||
	    netaddr_text((const struct sockaddr *)&ss, s->local_ip, sizeof(s->local_ip), &port) < 0)
		s->local_ip[0] = '\0';
}

static void smtpc_finish(struct smtpc *s)
{
	if (!s->p.ops) { /* smtpc_start() failed: nobody is listening */
		free(s);
		return;
	}
	if (s->msg) {
		smtpc_rcpt_all(s, SMTPC_TEMPFAIL, "4.4.2",
			       s->fail_reason[0] ? s->fail_reason : "connection closed", NULL);
		smtpc_msg_finish(s);
	}
	smtpc_clean(s->fail_reason, sizeof(s->fail_reason));
	s->p.ops->closed(s, s->established, s->fail_class ? s->fail_class : SMTPC_TEMPFAIL,
			 s->fail_reason, s->plain_retry, s->p.arg);
	free(s);
}

static void smtpc_names(struct smtpc *s)
{
	char ip[NETADDR_TEXT_SIZE];
	unsigned port;

	/* An unknown family shows as "?" with port 0: the names are only text. */
	(void)!netaddr_text((const struct sockaddr *)&s->t.addr, ip, sizeof(ip), &port);
	snprintf(s->hostip, sizeof(s->hostip), "%s[%s]", s->t.host, ip);
	snprintf(s->relay, sizeof(s->relay), "%s[%s]:%u", s->t.host, ip, port);
}

int smtpc_start(const struct smtpc_params *p, struct smtpc **out)
{
	struct smtpc *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	s->p = *p;
	s->t = *p->target;
	s->p.target = &s->t;
	rl_strlcpy(s->helo, p->helo_name, sizeof(s->helo));
	s->p.helo_name = s->helo;
	smtpc_names(s);
	s->conn = conn_new(p->loop, &smtpc_conn_ops, s, SMTPC_IN_LIMIT);
	if (!s->conn) {
		free(s);
		return -ENOMEM;
	}
	rc = conn_connect(s->conn, (const struct sockaddr *)&s->t.addr);
	if (rc < 0) {
		/* conn_abort delivers CLOSED, which would call ops->closed: avoid. */
		s->p.ops = NULL;
		conn_abort(s->conn);
		return rc;
	}
	smtpc_set_state(s, SMTPC_S_CONNECT);
	*out = s;
	return 0;
}

void smtpc_stop(struct smtpc *s)
{
	s->stopping = 1;
}

void smtpc_abort(struct smtpc *s)
{
	if (s->state != SMTPC_S_DONE)
		smtpc_fail(s, SMTPC_TEMPFAIL, "delivery to %s cut short by shutdown", s->hostip);
}

int smtpc_connected(const struct smtpc *s)
{
	return s->connected;
}

const char *smtpc_fail_dsn(const struct smtpc *s)
{
	return s->fail_dsn ? s->fail_dsn : "4.4.2";
}

const char *smtpc_relay(const struct smtpc *s)
{
	return s->relay;
}

int smtpc_handshaken(const struct smtpc *s)
{
	return s->esmtp;
}

const char *smtpc_tls(const struct smtpc *s)
{
	return s->tls ? s->tls : "none";
}

int smtpc_tls_result(const struct smtpc *s)
{
	return s->tls_result;
}

const char *smtpc_local_ip(const struct smtpc *s)
{
	return s->local_ip;
}
