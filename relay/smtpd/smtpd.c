/*
 * smtpd: the inbound ESMTP server (RFC 5321, 1870, 2920, 3207, 6152, 6531,
 * 2034).  One struct smtpd per client connection, driven by conn events.
 *
 * Acceptance rule: 250 after DATA is sent only after the committer says the
 * message is on disk.  Line rule: only CRLF ends a line; a bare CR or LF
 * anywhere ends the session with 521 (as Postfix's smtpd_forbid_bare_newline
 * = reject), so no variant of <LF>.<LF> can end DATA or smuggle a message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cert.h"
#include "conn.h"
#include "fpr.h"
#include "log.h"
#include "msg.h"
#include "netaddr.h"
#include "smtp.h"
#include "smtpd.h"
#include "smtpd_int.h"
#include "spill.h"


void smtpd_set_state(struct smtpd *s, int state)
{
	log_debug("smtpd %s: state %d -> %d", s->addr, s->state, state);
	s->state = state;
}

void smtpd_reply(struct smtpd *s, const char *fmt, ...)
{
	char line[SMTP_REPLY_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	if (conn_write(s->conn, line, (size_t)n + 2) < 0)
		conn_abort(s->conn);
	if (line[0] == '4' || line[0] == '5')
		s->errors++;
}

void smtpd_close(struct smtpd *s)
{
	if (s->state != SMTPD_S_DONE)
		smtpd_set_state(s, SMTPD_S_DONE);
	conn_close(s->conn);
}

/* 421 and close: a timeout, too many errors, shutdown. */
void smtpd_bye(struct smtpd *s, const char *code, const char *text)
{
	smtpd_reply(s, "%s %s %s", code, s->sv->p.cfg->myhostname, text);
	smtpd_close(s);
}

static void smtpd_tx_reset(struct smtpd *s)
{
	for (size_t i = 0; i < s->nrcpt; i++)
		free(s->rcpt[i].address);
	s->nrcpt = 0;
	s->in_mail = 0;
	rl_buf_fini(&s->msg);
	s->sv->spill_bytes -= s->spill.len;
	spill_close(&s->spill);
	s->hops_known = 0;
	s->spill_err = 0;
}

static void smtpd_free(struct smtpd *s)
{
	struct smtpd_server *sv = s->sv;

	smtpd_tx_reset(s);
	smtpd_auth_detach(s);
	free(s->rcpt);
	if (s->prev)
		s->prev->next = s->next;
	else
		sv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	sv->nsessions--;
	free(s);
	if (sv->p.gone)
		sv->p.gone(sv->p.arg);
}

void smtpd_arm_timer(struct smtpd *s)
{
	uint64_t now = uv_now(s->sv->p.loop);
	uint64_t idle = (uint64_t)s->sv->p.cfg->smtpd_timeout * 1000;
	uint64_t left = s->deadline > now ? s->deadline - now : 1;

	conn_set_timeout(s->conn, idle < left ? idle : left);
}

/* --- commands ------------------------------------------------------------ */

/* Postfix's reject line; to NULL (a refused MAIL) leaves out to=. */
static void smtpd_log_reject(struct smtpd *s, const char *what, const char *reply,
			     const char *to)
{
	log_info("NOQUEUE: reject: %s from unknown[%s]: %s; from=<%s>%s%s%s proto=%s helo=<%s>",
		 what, s->addr, reply, s->from.addr, to ? " to=<" : "", to ? to : "",
		 to ? ">" : "", s->said_helo == 2 ? "ESMTP" : "SMTP", s->helo);
}

/* May this session use REQUIRETLS (RFC 8689): under TLS, and when offered. */
static int smtpd_requiretls_ok(const struct smtpd *s)
{
	return s->sv->p.cfg->requiretls && conn_tls_active(s->conn);
}

static void cmd_helo(struct smtpd *s, const struct smtp_cmd *c, int esmtp)
{
	const struct cfg *cfg = s->sv->p.cfg;

	if (c->arglen == 0) {
		smtpd_reply(s, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return;
	}
	smtpd_tx_reset(s);
	log_sanitize(s->helo, sizeof(s->helo), c->arg, c->arglen);
	s->said_helo = esmtp ? 2 : 1;
	if (!esmtp) {
		smtpd_reply(s, "250 %s", cfg->myhostname);
		return;
	}
	smtpd_reply(s, "250-%s", cfg->myhostname);
	smtpd_reply(s, "250-PIPELINING");
	smtpd_reply(s, "250-SIZE %llu", (unsigned long long)cfg->max_message_size);
	if (s->sv->p.cred && !conn_tls_active(s->conn))
		smtpd_reply(s, "250-STARTTLS");
	/* RFC 4954: offered only under TLS, so no password crosses in clear. */
	if (smtpd_auth_offered(s))
		smtpd_reply(s, "250-AUTH PLAIN LOGIN");
	smtpd_reply(s, "250-ENHANCEDSTATUSCODES");
	smtpd_reply(s, "250-8BITMIME");
	/* RFC 8689 section 2: offered only once the session is under TLS. */
	if (smtpd_requiretls_ok(s))
		smtpd_reply(s, "250-REQUIRETLS");
	smtpd_reply(s, "250 SMTPUTF8");
}

static void cmd_mail(struct smtpd *s, const struct smtp_cmd *c)
{
	struct rl_why why = { 0 };
	int rc;

	if (!s->said_helo) {
		smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->in_mail) {
		smtpd_reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	rc = smtp_mail_parse(c->arg, c->arglen, &s->from, &s->mp, &why);
	if (rc == -ENOTSUP) {
		smtpd_reply(s, "555 5.5.4 Unsupported option: %s", why.reason);
		return;
	}
	if (rc < 0) {
		smtpd_reply(s, "501 5.1.7 Bad sender address syntax (%s)", why.reason);
		return;
	}
	/* AUTH= (RFC 4954 section 5) only where AUTH is offered; dropped there. */
	if (s->mp.auth && !smtpd_auth_offered(s)) {
		smtpd_reply(s, "555 5.5.4 Unsupported option: AUTH");
		return;
	}
	if (s->mp.size > 0 && (uint64_t)s->mp.size > s->sv->p.cfg->max_message_size) {
		smtpd_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	/*
	 * REQUIRETLS where it was not offered (before STARTTLS, or requiretls =
	 * no): we cannot take on its promise here, and the sender must learn
	 * that now rather than have the message travel unprotected.  5.7.30 is
	 * RFC 8689's code ("REQUIRETLS support required"), 550 its basic code.
	 */
	if (s->mp.requiretls && !smtpd_requiretls_ok(s)) {
		char reply[SMTP_REPLY_LINE_MAX];

		snprintf(reply, sizeof(reply), "550 5.7.30 REQUIRETLS support required: %s",
			 !s->sv->p.cfg->requiretls ? "not offered by this server"
			 : s->sv->p.cred	   ? "issue a STARTTLS command first"
						   : "TLS is not available on this server");
		smtpd_log_reject(s, "MAIL", reply, NULL);
		smtpd_reply(s, "%s", reply);
		return;
	}
	s->in_mail = 1;
	smtpd_reply(s, "250 2.1.0 Ok");
}

static void cmd_rcpt(struct smtpd *s, const struct smtp_cmd *c)
{
	struct rl_why why = { 0 };
	struct smtp_path to;
	char reply[SMTP_REPLY_LINE_MAX];
	int rc;

	if (!s->in_mail) {
		smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	rc = smtp_rcpt_parse(c->arg, c->arglen, &to, &why);
	if (rc == -ENOTSUP) {
		smtpd_reply(s, "555 5.5.4 Unsupported option: %s", why.reason);
		return;
	}
	if (rc < 0) {
		smtpd_reply(s, "501 5.1.3 Bad recipient address syntax (%s)", why.reason);
		return;
	}
	if (smtpd_relay_check(s) == POL_RELAY_DENY) {
		snprintf(reply, sizeof(reply), "554 5.7.1 <%s>: Relay access denied", to.addr);
		smtpd_log_reject(s, "RCPT", reply, to.addr);
		smtpd_reply(s, "%s", reply);
		return;
	}
	/*
	 * We deliver by MX lookup and TLS policy per domain: an address literal
	 * has neither (no name for a certificate to match), and would let
	 * clients aim the relay at any IP address.  Refused for good.
	 */
	if (to.literal) {
		snprintf(reply, sizeof(reply), "550 5.7.1 <%s>: address literals are not relayed",
			 to.addr);
		smtpd_log_reject(s, "RCPT", reply, to.addr);
		smtpd_reply(s, "%s", reply);
		return;
	}
	if (to.utf8 && !s->mp.smtputf8) {
		smtpd_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send UTF8 addresses");
		return;
	}
	if (s->nrcpt >= s->sv->p.cfg->smtpd_max_recipients) {
		smtpd_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (s->nrcpt == s->rcap) {
		size_t cap = s->rcap ? s->rcap * 2 : 8;
		struct queue_rcpt *r = realloc(s->rcpt, cap * sizeof(*r));

		if (!r) {
			smtpd_reply(s, "451 4.3.0 Error: out of memory");
			return;
		}
		s->rcpt = r;
		s->rcap = cap;
	}
	memset(&s->rcpt[s->nrcpt], 0, sizeof(s->rcpt[0]));
	s->rcpt[s->nrcpt].address = strdup(to.addr);
	if (!s->rcpt[s->nrcpt].address) {
		smtpd_reply(s, "451 4.3.0 Error: out of memory");
		return;
	}
	s->nrcpt++;
	smtpd_reply(s, "250 2.1.5 Ok");
}

/* RFC 5322 date-time of now, in the C locale. */
static void smtpd_date(char *out, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/*
 * Our Received header (RFC 5321 4.4), first line of the stored message.
 * The protocol keyword follows RFC 3848; the TLS clause follows Postfix.
 */
static int smtpd_received(struct smtpd *s, const char *id)
{
	char date[64];
	/* RFC 3848: ESMTPA/ESMTPSA once the client authenticated. */
	const char *proto = s->said_helo != 2 ? "SMTP"
			    : s->tls[0]	      ? (s->auth_user[0] ? "ESMTPSA" : "ESMTPS")
					      : (s->auth_user[0] ? "ESMTPA" : "ESMTP");
	int rc;

	smtpd_date(date, sizeof(date));
	rc = rl_buf_printf(&s->msg, "Received: from %s (unknown [%s])\r\n", s->helo, s->addr);
	if (rc == 0 && s->tls[0])
		rc = rl_buf_printf(&s->msg, "\t(using %s)\r\n", s->tls);
	/* Postfix's client certificate clause, with the certificate's digest. */
	if (rc == 0 && s->ccert.presented)
		rc = rl_buf_printf(&s->msg, "\t(Client CN \"%s\", Issuer \"%s\" (%s),\r\n"
				   "\t SHA-256 %s)\r\n", s->ccert.cn, s->ccert.issuer,
				   s->ccert.ca_ok ? "verified OK" : "not verified", s->ccert.fpr);
	/*
	 * As Postfix's smtpd_sasl_authenticated_header.  The name is safe in a
	 * comment as it is: the password file refuses names with ( ) \ ",
	 * blanks or controls at load (auth_parse.c user_check).
	 */
	if (rc == 0 && s->auth_user[0])
		rc = rl_buf_printf(&s->msg, "\t(Authenticated sender: %s)\r\n", s->auth_user);
	if (rc == 0)
		rc = rl_buf_printf(&s->msg, "\tby %s (tlsrelay) with %s id %s", s->sv->p.cfg->myhostname,
				   proto, id);
	if (rc == 0 && s->nrcpt == 1)
		rc = rl_buf_printf(&s->msg, "\r\n\tfor <%s>", s->rcpt[0].address);
	if (rc == 0)
		rc = rl_buf_printf(&s->msg, "; %s\r\n", date);
	return rc;
}

static void cmd_data(struct smtpd *s, const struct smtp_cmd *c)
{
	struct timespec ts;

	if (!s->in_mail) {
		smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->nrcpt == 0) {
		smtpd_reply(s, "503 5.5.1 Error: need RCPT command");
		return;
	}
	if (c->arglen) {
		smtpd_reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(&s->creq, 0, sizeof(s->creq));
	queue_id_make(s->creq.msg.id, ts.tv_sec, ts.tv_nsec / 1000);
	s->creq.msg.arrival = ts.tv_sec;
	rl_buf_init(&s->msg, SMTPD_RECEIVED_MAX);
	if (smtpd_received(s, s->creq.msg.id) < 0) {
		smtpd_reply(s, "451 4.3.0 Error: out of memory");
		return;
	}
	/*
	 * The header is ours; max_message_size counts the client's octets
	 * exactly (the slack of SMTPD_RECEIVED_MAX used to go to the client).
	 */
	s->rcvd_len = s->msg.len;
	s->msg.limit = s->msg.len + s->sv->p.cfg->max_message_size;
	smtp_data_init(&s->data);
	smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtpd_set_state(s, SMTPD_S_DATA);
}

static void smtpd_commit_done(struct commit_req *r)
{
	struct smtpd *s = (struct smtpd *)((char *)r - offsetof(struct smtpd, creq));

	s->commit_pending = 0;
	if (r->result == 0) {
		log_info("%s: from=<%s>, size=%llu, nrcpt=%zu%s%s%s%s%s%s", r->msg.id, s->from.addr,
			 (unsigned long long)r->msg.size, s->nrcpt,
			 s->ccert.presented ? ", ccert_subject=" : "",
			 s->ccert.presented ? s->ccert.cn : "",
			 s->ccert.presented ? ", ccert_fingerprint=" : "",
			 s->ccert.presented ? s->ccert.fpr : "",
			 s->auth_user[0] ? ", sasl_username=" : "", s->auth_user);
		if (s->sv->p.queued)
			s->sv->p.queued(s->sv->p.arg);
	}
	else
		log_warn("unknown[%s]: queue write failed: %s", s->addr, rl_strerror(r->result));
	if (s->conn_gone) {
		smtpd_free(s);
		return;
	}
	if (r->result == 0)
		smtpd_reply(s, "250 2.0.0 Ok: queued as %s", r->msg.id);
	else if (r->result == RL_EQFULL || r->result == -ENOSPC)
		smtpd_reply(s, "452 4.3.1 Insufficient system storage");
	else
		smtpd_reply(s, "451 4.3.0 Error: queue file write error");
	smtpd_tx_reset(s);
	if (s->state == SMTPD_S_DONE) {
		conn_close(s->conn);
		return;
	}
	smtpd_resume_commands(s);
}

void smtpd_resume_commands(struct smtpd *s)
{
	smtpd_set_state(s, SMTPD_S_CMD);
	/* While throttled, CONN_EV_DRAINED resumes reading instead. */
	if (!s->throttled)
		conn_resume(s->conn);
	smtpd_arm_timer(s);
	smtpd_process(s);
}

/*
 * Memory per message in progress is bounded: past smtpd_spill_threshold
 * (and from then on after every input buffer) what is in memory moves to the
 * spill file, and the buffer's limit shrinks by as much, so the size check
 * stays exact.  The Received: fields are counted before the first spill, on
 * the first smtpd_spill_threshold bytes (a header section longer than that
 * is counted that far).
 */
static void smtpd_spill(struct smtpd *s)
{
	size_t n = s->msg.len;
	int rc = 0;

	if (s->spill.fd < 0 && !s->spill_err && !s->data.overflow) {
		s->hops = msg_received_count(s->msg.data + s->rcvd_len, n - s->rcvd_len);
		s->hops_known = 1;
		rc = spill_open(&s->spill, s->sv->p.cfg->queue_dir);
	}
	/* After an overflow or a failure the answer is known: only discard. */
	/*
	 * Spill files together stay within queue_max_size: what does not fit
	 * there could not be committed anyway, and disk is bounded by config.
	 */
	if (rc == 0 && s->spill.fd >= 0 && !s->spill_err && !s->data.overflow &&
	    s->sv->spill_bytes + n > s->sv->p.cfg->queue_max_size)
		rc = -ENOSPC;
	if (rc == 0 && s->spill.fd >= 0 && !s->spill_err && !s->data.overflow) {
		uint64_t before = s->spill.len;

		rc = spill_write(&s->spill, s->msg.data, n);
		s->sv->spill_bytes += s->spill.len - before;
	}
	if (rc < 0) {
		log_warn("unknown[%s]: cannot write message to a file in %s: %s", s->addr,
			 s->sv->p.cfg->queue_dir, rl_strerror(rc));
		s->spill_err = rc;
	}
	s->msg.limit -= n;
	if (s->msg.cap > 2 * SMTPD_IN_LIMIT) {
		size_t limit = s->msg.limit;

		rl_buf_fini(&s->msg);
		rl_buf_init(&s->msg, limit);
	} else {
		rl_buf_reset(&s->msg);
	}
}

/* Refusals after the data; 1 when the message was refused. */
static int smtpd_data_refuse(struct smtpd *s)
{
	char reply[SMTP_REPLY_LINE_MAX];

	if (s->data.overflow)
		smtpd_reply(s, "552 5.3.4 Message size exceeds fixed limit");
	else if (s->spill_err)
		smtpd_reply(s, "452 4.3.1 Insufficient system storage");
	else if (s->data.long_line)
		smtpd_reply(s, "554 5.6.0 Message has lines too long for transport "
			       "(RFC 5322 limit is 998 octets)");
	else if (s->hops >= s->sv->p.cfg->hopcount_limit) {
		/* RFC 5321 6.3: a loop; Postfix's hopcount_limit and reply. */
		snprintf(reply, sizeof(reply), "554 5.4.6 too many hops (%zu Received: fields, "
			 "hopcount_limit %u)", s->hops, s->sv->p.cfg->hopcount_limit);
		smtpd_log_reject(s, "END-OF-MESSAGE", reply, s->rcpt[0].address);
		smtpd_reply(s, "554 5.4.6 too many hops");
	} else
		return 0;
	smtpd_tx_reset(s);
	return 1;
}

/* Worker thread: copy the spilled message into the queue. */
static int smtpd_spill_apply(struct queue_txn *t, struct commit_req *r)
{
	struct smtpd *s = (struct smtpd *)((char *)r - offsetof(struct smtpd, creq));

	return queue_msg_insert_fd(t, &r->msg, s->spill.fd, r->len);
}

/* The end of data was seen: refuse, or hand the message to the queue. */
static void smtpd_data_end(struct smtpd *s)
{
	struct queue_msg *m = &s->creq.msg;

	smtpd_set_state(s, SMTPD_S_CMD);
	if (s->spill.fd >= 0 || s->spill_err)
		smtpd_spill(s); /* the tail */
	if (!s->hops_known)
		s->hops = msg_received_count(s->msg.data + s->rcvd_len, s->msg.len - s->rcvd_len);
	if (smtpd_data_refuse(s))
		return;
	m->sender = s->from.addr;
	m->next_attempt = m->arrival;
	m->flags = (s->mp.body == SMTP_BODY_8BITMIME ? QUEUE_F_8BITMIME : 0) |
		   (s->mp.smtputf8 ? QUEUE_F_SMTPUTF8 : 0) |
		   (s->mp.requiretls ? QUEUE_F_REQUIRETLS : 0);
	m->nrcpt = s->nrcpt;
	m->rcpt = s->rcpt;
	s->creq.body = s->msg.data;
	s->creq.len = s->msg.len;
	if (s->spill.fd >= 0) {
		s->creq.apply = smtpd_spill_apply;
		s->creq.body = NULL;
		s->creq.len = (size_t)s->spill.len;
	}
	m->size = s->creq.len;
	s->creq.done = smtpd_commit_done;
	s->commit_pending = 1;
	smtpd_set_state(s, SMTPD_S_COMMIT);
	/* Pipelined input waits in the buffer; read no more until we reply. */
	conn_pause(s->conn);
	conn_set_timeout(s->conn, 0);
	committer_submit(s->sv->p.commit, &s->creq);
}

static void cmd_starttls(struct smtpd *s, const struct smtp_cmd *c)
{
	if (!s->sv->p.cred) {
		smtpd_reply(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	if (conn_tls_active(s->conn)) {
		smtpd_reply(s, "554 5.5.1 Error: TLS already active");
		return;
	}
	if (c->arglen) {
		smtpd_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	smtpd_reply(s, "220 2.0.0 Ready to start TLS");
	conn_flush(s->conn);
	/* RFC 3207 4.2: forget everything said before the handshake. */
	smtpd_tx_reset(s);
	s->said_helo = 0;
	s->helo[0] = '\0';
	if (conn_tls_server(s->conn, s->sv->p.cred, s->sv->p.prio) < 0) {
		log_warn("unknown[%s]: cannot start TLS", s->addr);
		smtpd_close(s);
		return;
	}
	/* Asked, never required (Postfix smtpd_tls_ask_ccert); never without it. */
	s->ccert_asked = s->sv->p.cfg->smtpd_tls_ask_ccert;
	if (s->ccert_asked)
		conn_tls_ask_cert(s->conn);
	smtpd_set_state(s, SMTPD_S_TLS);
}

static void smtpd_command(struct smtpd *s, const char *line, size_t len)
{
	struct smtp_cmd c;

	if (smtp_cmd_parse(line, len, &c, NULL) < 0) {
		smtpd_reply(s, "500 5.5.2 Error: bad syntax");
		return;
	}
	switch (c.verb) {
	case SMTP_V_EHLO: cmd_helo(s, &c, 1); break;
	case SMTP_V_HELO: cmd_helo(s, &c, 0); break;
	case SMTP_V_MAIL: cmd_mail(s, &c); break;
	case SMTP_V_RCPT: cmd_rcpt(s, &c); break;
	case SMTP_V_DATA: cmd_data(s, &c); break;
	case SMTP_V_STARTTLS: cmd_starttls(s, &c); break;
	case SMTP_V_RSET:
		smtpd_tx_reset(s);
		smtpd_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_V_NOOP: smtpd_reply(s, "250 2.0.0 Ok"); break;
	case SMTP_V_QUIT:
		smtpd_reply(s, "221 2.0.0 Bye");
		smtpd_close(s);
		break;
	case SMTP_V_VRFY: smtpd_reply(s, "502 5.5.1 VRFY command is disabled"); break;
	case SMTP_V_EXPN: smtpd_reply(s, "502 5.5.1 EXPN command is disabled"); break;
	case SMTP_V_HELP: smtpd_reply(s, "214 2.0.0 See RFC 5321"); break;
	case SMTP_V_AUTH: smtpd_auth_cmd(s, &c); break;
	default: smtpd_reply(s, "502 5.5.2 Error: command not recognized"); break;
	}
}

/* Bare CR or LF: the only safe answer is to stop listening (smuggling). */
static void smtpd_bare_eol(struct smtpd *s)
{
	log_warn("unknown[%s]: bare <CR> or <LF> received, disconnecting", s->addr);
	smtpd_tx_reset(s);
	smtpd_reply(s, "521 5.5.2 %s Error: bare <LF> received", s->sv->p.cfg->myhostname);
	smtpd_close(s);
}

/*
 * RFC 4954 section 4: an AUTH command and the client's SASL responses may
 * be 12288 octets long; other command lines keep SMTP_CMD_LINE_MAX.
 */
static size_t smtpd_line_limit(const struct smtpd *s, const struct rl_buf *in)
{
	if (s->sasl_step != SMTPD_SASL_NONE)
		return AUTH_LINE_MAX;
	if (in->len >= 5 && strncasecmp(in->data, "AUTH ", 5) == 0)
		return AUTH_LINE_MAX;
	return SMTP_CMD_LINE_MAX;
}

/* One step in command state; returns 0 when more input is needed. */
static int smtpd_step_cmd(struct smtpd *s, struct rl_buf *in)
{
	char line[AUTH_LINE_MAX];
	size_t limit = smtpd_line_limit(s, in), linelen, used;
	int rc, secret = limit == AUTH_LINE_MAX;

	if (s->skip_line) {
		const char *lf = memchr(in->data, '\n', in->len);

		rl_buf_consume(in, lf ? (size_t)(lf - in->data) + 1 : in->len);
		s->skip_line = !lf;
		return lf != NULL;
	}
	rc = smtp_line_next(in->data, in->len, &linelen, &used);
	if (rc < 0) {
		smtpd_bare_eol(s);
		return 0;
	}
	if (rc == 0 || used > limit) {
		if (in->len < limit && rc == 0)
			return 0;
		/* An over-long SASL response ends the exchange. */
		s->sasl_step = SMTPD_SASL_NONE;
		smtpd_reply(s, "500 5.5.2 Error: line too long");
		s->skip_line = 1;
		return 1;
	}
	/*
	 * Consume first: STARTTLS drops whatever follows the command.  The
	 * input is a secret buffer (conn_in()): every consume, not only an AUTH
	 * line's, wipes the copy its shift leaves past the new end, since a
	 * later line in the buffer (AUTH PLAIN <base64>) moves forward too.
	 */
	memcpy(line, in->data, linelen);
	rl_buf_consume(in, used);
	if (s->sasl_step != SMTPD_SASL_NONE)
		smtpd_auth_response(s, line, linelen);
	else
		smtpd_command(s, line, linelen);
	if (secret)
		rl_wipe(line, linelen);
	return 1;
}

static int smtpd_step_data(struct smtpd *s, struct rl_buf *in)
{
	size_t used = 0;
	int rc = smtp_data_feed(&s->data, in->data, in->len, &s->msg, &used);

	rl_buf_consume(in, used);
	if (rc == 0 && (s->spill.fd >= 0 || s->msg.len > s->sv->p.cfg->smtpd_spill_threshold))
		smtpd_spill(s);
	if (rc == RL_EPROTO) {
		smtpd_bare_eol(s);
		return 0;
	}
	if (rc < 0) {
		smtpd_reply(s, "451 4.3.0 Error: out of memory");
		smtpd_close(s);
		return 0;
	}
	if (!s->data.done)
		return 0;
	smtpd_data_end(s);
	return 1;
}

/*
 * Back-pressure.  A client may pipeline commands without ever reading our
 * replies; each command then adds a reply to the output and memory would
 * grow without bound.  Above SMTPD_OUT_HIGH we stop reading and leave the
 * commands already read in the buffer until CONN_EV_DRAINED.  The idle timer
 * keeps running meanwhile, so a client that never reads meets smtpd_timeout.
 */
static int smtpd_throttle(struct smtpd *s)
{
	if (conn_pending(s->conn) < SMTPD_OUT_HIGH)
		return 0;
	if (!s->throttled) {
		log_debug("smtpd %s: %zu bytes of replies unread, reading paused", s->addr,
			  conn_pending(s->conn));
		s->throttled = 1;
		conn_pause(s->conn);
	}
	return 1;
}

/* Our replies drained: read and execute commands again. */
static void smtpd_unthrottle(struct smtpd *s)
{
	if (!s->throttled || s->state == SMTPD_S_DONE)
		return;
	s->throttled = 0;
	/* During the commit (a password check), smtpd_commit_done()
	 * (smtpd_auth.c) resumes reading and the timer. */
	if (s->state == SMTPD_S_COMMIT || s->state == SMTPD_S_AUTH)
		return;
	conn_resume(s->conn);
	/* The client read our replies: that is activity, as a command is. */
	smtpd_arm_timer(s);
	smtpd_process(s);
}

void smtpd_process(struct smtpd *s)
{
	struct rl_buf *in = conn_in(s->conn);
	int more = 1;

	while (more && in->len > 0 && s->errors < SMTPD_ERROR_LIMIT && !smtpd_throttle(s)) {
		if (s->state == SMTPD_S_CMD)
			more = smtpd_step_cmd(s, in);
		else if (s->state == SMTPD_S_DATA)
			more = smtpd_step_data(s, in);
		else
			more = 0;
	}
	if (s->errors >= SMTPD_ERROR_LIMIT && s->state == SMTPD_S_CMD)
		smtpd_bye(s, "421 4.7.0", "Error: too many errors");
	/* RFC 2920: replies to a pipelined group go out together. */
	conn_flush(s->conn);
}

static void smtpd_on_timeout(struct smtpd *s)
{
	if (uv_now(s->sv->p.loop) >= s->deadline)
		smtpd_bye(s, "421 4.4.2", "Error: session time limit exceeded");
	else
		smtpd_bye(s, "421 4.4.2", "Error: timeout exceeded");
	log_info("timeout after %s from unknown[%s]",
		 s->state == SMTPD_S_DATA ? "DATA" : "command", s->addr);
}

static void smtpd_event(struct conn *c, int ev, void *arg)
{
	struct smtpd *s = arg;
	const char *text;

	switch (ev) {
	case CONN_EV_READABLE:
		if (s->state == SMTPD_S_DONE)
			return;
		smtpd_arm_timer(s);
		smtpd_process(s);
		break;
	case CONN_EV_TLS_READY:
		conn_tls_summary(c, s->tls, sizeof(s->tls));
		smtpd_ccert_read(s);
		/* Postfix's words: Trusted = verified, Untrusted = not verified. */
		log_info("%s TLS connection established from unknown[%s]: %s",
			 !s->ccert.presented ? "Anonymous"
			 : s->ccert.ca_ok    ? "Trusted"
					     : "Untrusted",
			 s->addr, s->tls);
		smtpd_ccert_log(s);
		smtpd_set_state(s, SMTPD_S_CMD);
		break;
	case CONN_EV_DRAINED: smtpd_unthrottle(s); break;
	case CONN_EV_TIMEOUT: smtpd_on_timeout(s); break;
	case CONN_EV_EOF:
		if (s->state == SMTPD_S_DATA)
			log_info("lost connection after DATA from unknown[%s]", s->addr);
		smtpd_close(s);
		break;
	case CONN_EV_ERROR:
		conn_error(c, &text);
		log_info("%s from unknown[%s]: %s",
			 s->state == SMTPD_S_TLS ? "SSL_accept error" : "lost connection", s->addr,
			 text);
		conn_abort(c);
		break;
	case CONN_EV_CLOSED:
		log_info("disconnect from unknown[%s]", s->addr);
		s->conn_gone = 1;
		if (!s->commit_pending)
			smtpd_free(s);
		break;
	default: break;
	}
}

static const struct conn_ops smtpd_conn_ops = { smtpd_event };

/*
 * Admission (Postfix's smtpd_client_connection_count_limit, with
 * smtpd_client_event_limit_exceptions = $mynetworks): a client outside
 * mynetworks may hold at most smtpd_client_connection_count_limit sessions,
 * and all of them together at most smtpd_max_connections minus the
 * smtpd_mynetworks_reserve share, so a flood from outside (one address or
 * many) never locks out the clients that may relay.  The counts come from
 * the session list itself: no table to bound or to free.  Returns 0 to
 * admit, else answers 421 and closes.
 */
static int smtpd_admit(struct smtpd *s)
{
	const struct cfg *cfg = s->sv->p.cfg;
	unsigned live = 0, outside = 0, same = 0;
	unsigned outside_max = cfg->smtpd_max_connections -
			       cfg->smtpd_max_connections * cfg->smtpd_mynetworks_reserve / 100;

	for (const struct smtpd *o = s->sv->sessions; o; o = o->next) {
		if (o == s || o->state == SMTPD_S_DONE)
			continue;
		live++;
		outside += !o->in_mynet;
		same += strcmp(o->addr, s->addr) == 0;
	}
	if (s->sv->stopping || live >= cfg->smtpd_max_connections ||
	    (!s->in_mynet && outside >= outside_max)) {
		log_warn("unknown[%s]: too many connections (%u, %u from outside mynetworks)",
			 s->addr, live, outside);
		smtpd_bye(s, "421 4.7.0", "Error: too many connections");
		return -1;
	}
	if (!s->in_mynet && cfg->smtpd_client_connection_count_limit &&
	    same >= cfg->smtpd_client_connection_count_limit) {
		log_warn("Connection concurrency limit exceeded: %u from unknown[%s]", same + 1,
			 s->addr);
		smtpd_reply(s, "421 4.7.0 %s Error: too many connections from %s",
			    cfg->myhostname, s->addr);
		smtpd_close(s);
		return -1;
	}
	return 0;
}

int smtpd_server_new(const struct smtpd_params *p, struct smtpd_server **out)
{
	struct smtpd_server *sv = calloc(1, sizeof(*sv));

	*out = sv;
	if (!sv)
		return -ENOMEM;
	sv->p = *p;
	if (smtpd_auth_server_init(sv) < 0) {
		free(sv);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

void smtpd_server_free(struct smtpd_server *sv)
{
	if (!sv)
		return;
	RL_REQUIRE(sv->nsessions == 0);
	smtpd_auth_server_fini(sv);
	free(sv);
}

unsigned smtpd_server_sessions(const struct smtpd_server *sv)
{
	return sv ? sv->nsessions : 0;
}

void smtpd_accept(struct smtpd_server *sv, uv_stream_t *server)
{
	struct smtpd *s = calloc(1, sizeof(*s));

	if (!s)
		return;
	spill_init(&s->spill);
	s->sv = sv;
	s->conn = conn_new(sv->p.loop, &smtpd_conn_ops, s, SMTPD_IN_LIMIT);
	if (!s->conn) {
		free(s);
		return;
	}
	s->next = sv->sessions;
	if (s->next)
		s->next->prev = s;
	sv->sessions = s;
	sv->nsessions++;
	s->deadline = uv_now(sv->p.loop) + (uint64_t)sv->p.cfg->smtpd_max_session_time * 1000;
	rl_strlcpy(s->addr, "unknown", sizeof(s->addr));
	if (conn_accept(s->conn, server) < 0) {
		conn_abort(s->conn);
		return;
	}
	if (conn_peer(s->conn, &s->peer) == 0) {
		(void)!netaddr_text((struct sockaddr *)&s->peer, s->addr, sizeof(s->addr), NULL);
		s->in_mynet = cfg_net_match(sv->p.cfg, (struct sockaddr *)&s->peer);
	}
	log_info("connect from unknown[%s]", s->addr);
	if (smtpd_admit(s) < 0)
		return;
	smtpd_reply(s, "220 %s ESMTP tlsrelay", sv->p.cfg->myhostname);
	conn_flush(s->conn);
	smtpd_arm_timer(s);
}

void smtpd_stop_all(struct smtpd_server *sv)
{
	sv->stopping = 1;
	for (struct smtpd *s = sv->sessions; s; s = s->next) {
		if (s->state == SMTPD_S_DONE)
			continue;
		if (s->state == SMTPD_S_COMMIT) {
			/* Answer the message first; the commit callback closes. */
			smtpd_set_state(s, SMTPD_S_DONE);
			continue;
		}
		smtpd_bye(s, "421 4.3.2", "Service shutting down");
	}
}
