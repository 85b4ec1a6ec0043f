/*
 * smtpd_auth: SMTP AUTH (RFC 4954) on the listener, PLAIN (RFC 4616) and
 * LOGIN, against smtpd_sasl_password_file.
 *
 * - Offered only under TLS (RFC 4954 section 4 lets a server require it;
 *   the contract does): before STARTTLS, AUTH gets 530 5.7.0.
 * - Clients are told apart by their key (auth_key_of): the IPv4 address, or
 *   the /64 of an IPv6 address, so that rotating through one /64 gives no
 *   fresh guesses.  "Address" below means that key.
 * - The hash check is slow on purpose, so it runs on libuv's worker threads
 *   (uv_queue_work), at most SMTPD_AUTH_JOBS_MAX at once.  Further checks
 *   wait in one lane per address (at most one check per session, and an
 *   address has fewer than SMTPD_AUTH_CLOSE_AT checks in flight, see the
 *   gate below); a free worker takes the first check of the next lane,
 *   round robin, so one address's backlog never sits in front of another
 *   address's check: a check waits for at most one check of each other
 *   address that has one waiting.  (Rather than answer 454 beyond a small
 *   per-address cap, a session's check is held in its lane: the gate caps
 *   the lane, and the session's reply simply comes when its turn does.)
 *   The session reads nothing meanwhile, but its timeouts (smtpd_timeout,
 *   smtpd_max_session_time) keep running: a check that waits too long ends
 *   the session with 421 like any idle one.  A job is its own allocation:
 *   a session that goes away while its check runs leaves the job behind,
 *   which finishes, counts, wipes itself and is freed.
 * - Failures count per address (auth_throttle, a fixed-size table): from
 *   the SMTPD_AUTH_SLOW_AFTER-th failure within a minute the 535 of that
 *   address comes later and later (a timer of the job, never a wait on the
 *   loop), and at SMTPD_AUTH_CLOSE_AT the session gets 421 and is closed.
 *   The gate at AUTH counts checks in flight as failures to be: when an
 *   address's failures plus its pending checks reach SMTPD_AUTH_CLOSE_AT,
 *   AUTH gets 421 at once, with no check, so opening many sessions and
 *   guessing in all of them at once gains nothing.  Other addresses are
 *   not slowed.
 * - A global budget: when more than SMTPD_AUTH_GLOBAL_MAX failures of all
 *   addresses together fall within a minute (many addresses guessing), every
 *   failure's reply waits at least SMTPD_AUTH_GLOBAL_DELAY_MS.  Only
 *   failures wait: a right password is answered as soon as its check ends.
 * - Secrets: the password is copied once, for the worker, and wiped (with
 *   every decoded buffer and the command line that carried its base64) as
 *   soon as it has been used.  No log line holds a password or its base64.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "smtpd_int.h"

#define SMTPD_AUTH_JOBS_MAX	   2	 /* hash checks at once, on worker threads */
#define SMTPD_AUTH_TRACK	   4096	 /* client addresses whose failures are kept */
#define SMTPD_AUTH_SLOW_AFTER	   5	 /* failures within a minute before replies slow */
#define SMTPD_AUTH_CLOSE_AT	   10	 /* failures within a minute that end the session */
#define SMTPD_AUTH_DELAY_MS	   1000	 /* added per failure from SMTPD_AUTH_SLOW_AFTER on */
#define SMTPD_AUTH_DELAY_MAX	   10000 /* the longest delay of one reply */
#define SMTPD_AUTH_GLOBAL_MAX	   100	 /* failures of everyone within a minute before all slow */
#define SMTPD_AUTH_GLOBAL_DELAY_MS 3000	 /* the least delay of a failure's reply then */
/* Room for a decoded response: RFC 4954's line limit, 3 octets per 4 characters. */
#define SMTPD_AUTH_DECODED_MAX (AUTH_LINE_MAX / 4 * 3)

struct smtpd_auth_job {
	uv_work_t work;
	uv_timer_t timer; /* the delay of a failure's reply */
	struct smtpd *s;  /* NULL once the session is gone */
	struct smtpd_server *sv;
	char *pass; /* the password, wiped and freed after the check */
	size_t passlen;
	char *hash; /* a copy of the stored hash, or of the unknown user's setting */
	int known;  /* the user exists (else the check only takes the time) */
	char user[AUTH_USER_MAX + 1];
	const char *mech;
	struct auth_key key; /* the client's address (or /64): its lane and its count */
	int ok;		     /* the worker's verdict */
	int state;	     /* SMTPD_JOB_* */
	/*
	 * Waiting: the first check of a lane is in the server's list of lanes
	 * (next); the others of that address follow it (same), oldest first.
	 */
	int head;
	struct smtpd_auth_job *next, *same;
};

enum { SMTPD_JOB_WAITING = 0, SMTPD_JOB_RUNNING, SMTPD_JOB_DELAY };

int smtpd_auth_server_init(struct smtpd_server *sv)
{
	return auth_throttle_new(SMTPD_AUTH_TRACK, &sv->throttle);
}

void smtpd_auth_server_fini(struct smtpd_server *sv)
{
	RL_REQUIRE(sv->auth_running == 0 && sv->auth_lanes == NULL);
	auth_throttle_free(sv->throttle);
	sv->throttle = NULL;
}

static const struct auth_db *smtpd_auth_db(const struct smtpd *s)
{
	return s->sv->p.sasl ? *s->sv->p.sasl : NULL;
}

int smtpd_auth_offered(const struct smtpd *s)
{
	return smtpd_auth_db(s) != NULL && conn_tls_active(s->conn);
}

const char *smtpd_auth_user(const struct smtpd *s)
{
	return s->auth_user[0] ? s->auth_user : NULL;
}

/* The session's client as the failure table knows it (address or /64). */
static void smtpd_auth_key(const struct smtpd *s, struct auth_key *k)
{
	auth_key_of(s->peer.ss_family ? (const struct sockaddr *)&s->peer : NULL, k);
}

static void job_free(struct smtpd_auth_job *j)
{
	if (j->pass) {
		rl_wipe(j->pass, j->passlen);
		free(j->pass);
	}
	if (j->hash) {
		rl_wipe(j->hash, strlen(j->hash));
		free(j->hash);
	}
	rl_wipe(j, sizeof(*j));
	free(j);
}

static void job_timer_closed(uv_handle_t *h)
{
	job_free(h->data);
}

/* The exchange is over (either way): read and execute commands again. */
static void smtpd_auth_resume(struct smtpd *s)
{
	s->job = NULL;
	if (s->state == SMTPD_S_DONE)
		return;
	smtpd_resume_commands(s);
}

static void job_reply_failure(struct smtpd_auth_job *j)
{
	struct smtpd *s = j->s;

	if (!s)
		return;
	if (s->state == SMTPD_S_DONE) {
		s->job = NULL;
		return;
	}
	smtpd_reply(s, "535 5.7.8 Error: authentication failed");
	smtpd_auth_resume(s);
}

static void job_delay_done(uv_timer_t *t)
{
	struct smtpd_auth_job *j = t->data;

	job_reply_failure(j);
	uv_close((uv_handle_t *)&j->timer, job_timer_closed);
}

static void job_start(struct smtpd_auth_job *j);

/* Append a lane head to the server's list of lanes. */
static void lanes_append(struct smtpd_server *sv, struct smtpd_auth_job *j)
{
	j->head = 1;
	j->next = NULL;
	if (sv->auth_lanes_tail)
		sv->auth_lanes_tail->next = j;
	else
		sv->auth_lanes = j;
	sv->auth_lanes_tail = j;
}

/* A new check waits at the end of its address's lane. */
static void lanes_add(struct smtpd_server *sv, struct smtpd_auth_job *j)
{
	struct smtpd_auth_job *l = sv->auth_lanes;

	while (l && !auth_key_eq(&l->key, &j->key))
		l = l->next;
	if (!l) {
		lanes_append(sv, j);
		return;
	}
	while (l->same)
		l = l->same;
	l->same = j;
}

/*
 * A worker is free: the first check of the first lane runs, and the rest
 * of that lane goes to the end of the list (round robin by address).
 */
static void jobs_next(struct smtpd_server *sv)
{
	struct smtpd_auth_job *j;

	while (sv->auth_running < SMTPD_AUTH_JOBS_MAX && sv->auth_lanes) {
		j = sv->auth_lanes;
		sv->auth_lanes = j->next;
		if (!sv->auth_lanes)
			sv->auth_lanes_tail = NULL;
		if (j->same)
			lanes_append(sv, j->same);
		j->next = j->same = NULL;
		j->head = 0;
		job_start(j);
	}
}

/* Take a waiting check out of the lanes (its session went away). */
static void lanes_remove(struct smtpd_server *sv, struct smtpd_auth_job *j)
{
	struct smtpd_auth_job **pp, *prev = NULL;

	if (j->head) {
		for (pp = &sv->auth_lanes; *pp && *pp != j; pp = &(*pp)->next)
			prev = *pp;
		RL_REQUIRE(*pp == j);
		if (j->same) {
			/* The next check of the address keeps the lane's place. */
			*pp = j->same;
			j->same->head = 1;
			j->same->next = j->next;
			if (sv->auth_lanes_tail == j)
				sv->auth_lanes_tail = j->same;
		} else {
			*pp = j->next;
			if (sv->auth_lanes_tail == j)
				sv->auth_lanes_tail = prev;
		}
		return;
	}
	for (struct smtpd_auth_job *l = sv->auth_lanes; l; l = l->next) {
		if (!auth_key_eq(&l->key, &j->key))
			continue;
		for (pp = &l->same; *pp && *pp != j; pp = &(*pp)->same)
			;
		RL_REQUIRE(*pp == j);
		*pp = j->same;
		return;
	}
	RL_REQUIRE(!"waiting check in no lane");
}

static void smtpd_auth_success(struct smtpd *s, struct smtpd_auth_job *j)
{
	rl_strlcpy(s->auth_user, j->user, sizeof(s->auth_user));
	s->auth_mech = j->mech;
	log_info("unknown[%s]: sasl_method=%s, sasl_username=%s", s->addr, j->mech, s->auth_user);
	smtpd_reply(s, "235 2.7.0 Authentication successful");
	smtpd_auth_resume(s);
}

/*
 * A failure: count it for the address, then answer now, later, or with
 * 421.  Returns 1 when the job must stay (its delay timer runs).
 */
static int smtpd_auth_failure(struct smtpd *s, struct smtpd_auth_job *j, unsigned n)
{
	unsigned total = auth_throttle_total(s->sv->throttle, uv_now(s->sv->p.loop));
	uint64_t delay = 0;
	char net[64];

	metrics_count_auth_failure(s->sv->p.metrics);
	tally_add(s->sv->p.tally, STATUS_IN_AUTH_FAILED, 1);
	auth_key_text(&j->key, net, sizeof(net));
	log_warn("unknown[%s]: SASL %s authentication failed (%u failure%s from %s%s "
		 "within a minute)",
		 s->addr, j->mech, n, n == 1 ? "" : "s",
		 j->key.family == 6 ? "its network " : "this address",
		 j->key.family == 6 ? net : "");
	if (n >= SMTPD_AUTH_CLOSE_AT) {
		s->job = NULL;
		smtpd_bye(s, "421 4.7.0", "Error: too many failed authentication attempts");
		return 0;
	}
	if (n >= SMTPD_AUTH_SLOW_AFTER)
		delay = (uint64_t)(n - SMTPD_AUTH_SLOW_AFTER + 1) * SMTPD_AUTH_DELAY_MS;
	if (delay > SMTPD_AUTH_DELAY_MAX)
		delay = SMTPD_AUTH_DELAY_MAX;
	/* Many addresses failing together: everyone's failures slow down. */
	if (total > SMTPD_AUTH_GLOBAL_MAX && delay < SMTPD_AUTH_GLOBAL_DELAY_MS)
		delay = SMTPD_AUTH_GLOBAL_DELAY_MS;
	if (delay == 0) {
		job_reply_failure(j);
		return 0;
	}
	uv_timer_init(s->sv->p.loop, &j->timer);
	j->timer.data = j;
	j->state = SMTPD_JOB_DELAY;
	uv_timer_start(&j->timer, job_delay_done, delay, 0);
	return 1;
}

/* Worker thread: only the job's own copies are touched. */
static void job_work(uv_work_t *w)
{
	struct smtpd_auth_job *j = w->data;

	j->ok = auth_verify(j->pass, j->passlen, j->hash) && j->known;
	rl_wipe(j->pass, j->passlen);
}

/* Loop thread, after the check. */
static void job_after(uv_work_t *w, int status)
{
	struct smtpd_auth_job *j = w->data;
	struct smtpd_server *sv = j->sv;
	struct smtpd *s = j->s;
	int keep = 0;
	unsigned n;

	sv->auth_running--;
	if (status < 0)
		j->ok = 0;
	/* A failure counts even when its session left meanwhile. */
	n = auth_throttle_end(sv->throttle, &j->key, uv_now(sv->p.loop), !j->ok);
	if (s && s->state != SMTPD_S_DONE) {
		if (j->ok)
			smtpd_auth_success(s, j);
		else
			keep = smtpd_auth_failure(s, j, n);
		conn_flush(s->conn);
	} else if (s) {
		s->job = NULL;
	}
	if (!keep)
		job_free(j);
	jobs_next(sv);
}

static void job_start(struct smtpd_auth_job *j)
{
	j->state = SMTPD_JOB_RUNNING;
	j->sv->auth_running++;
	j->work.data = j;
	/* uv_queue_work() fails only without a work callback. */
	RL_REQUIRE(uv_queue_work(j->sv->p.loop, &j->work, job_work, job_after) == 0);
}

void smtpd_auth_detach(struct smtpd *s)
{
	struct smtpd_auth_job *j = s->job;

	rl_wipe(s->sasl_user, sizeof(s->sasl_user));
	if (!j)
		return;
	s->job = NULL;
	j->s = NULL;
	if (j->state == SMTPD_JOB_WAITING) {
		/* Never checked: no failure, and no longer pending. */
		lanes_remove(s->sv, j);
		(void)auth_throttle_end(s->sv->throttle, &j->key, uv_now(s->sv->p.loop), 0);
		job_free(j);
	} else if (j->state == SMTPD_JOB_DELAY) {
		uv_timer_stop(&j->timer);
		uv_close((uv_handle_t *)&j->timer, job_timer_closed);
	}
	/* SMTPD_JOB_RUNNING: job_after() sees j->s NULL and frees it. */
}

/*
 * User name and password are known: hand the check to a worker.  The
 * password is copied for it; the caller wipes its own buffers.
 */
static void smtpd_auth_check(struct smtpd *s, const char *mech, const char *user, size_t ulen,
			     const char *pass, size_t plen)
{
	struct smtpd_auth_job *j = calloc(1, sizeof(*j));
	int known = 0;
	/* An unknown user costs what a real entry costs (auth_db_setting). */
	const char *hash = auth_db_setting(smtpd_auth_db(s), user, ulen, &known);

	s->sasl_step = SMTPD_SASL_NONE;
	if (j && plen > AUTH_PASS_MAX)
		plen = AUTH_PASS_MAX + 1; /* never matches; no need to copy it all */
	if (j) {
		j->pass = malloc(plen ? plen : 1);
		j->hash = hash ? strdup(hash) : NULL;
	}
	if (j)
		smtpd_auth_key(s, &j->key);
	/* -ENOSPC: the failure table is full of checks in flight. */
	if (!j || !j->pass || (hash && !j->hash) ||
	    auth_throttle_begin(s->sv->throttle, &j->key, uv_now(s->sv->p.loop)) < 0) {
		if (j)
			job_free(j);
		smtpd_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	memcpy(j->pass, pass, plen);
	j->passlen = plen;
	j->known = known;
	memcpy(j->user, user, ulen);
	j->mech = mech;
	j->s = s;
	j->sv = s->sv;
	s->job = j;
	smtpd_set_state(s, SMTPD_S_AUTH);
	/*
	 * Pipelined input waits in the buffer.  The session's timeouts keep
	 * running: a check that waits longer than smtpd_timeout (or past the
	 * session's time limit) ends the session with 421.
	 */
	conn_pause(s->conn);
	smtpd_arm_timer(s);
	lanes_add(s->sv, j);
	jobs_next(s->sv);
}

/* A decoded PLAIN response (RFC 4616). */
static void smtpd_auth_plain(struct smtpd *s, const unsigned char *buf, size_t n)
{
	struct auth_plain pl;

	s->sasl_step = SMTPD_SASL_NONE;
	if (auth_plain_parse(buf, n, &pl, NULL) < 0) {
		smtpd_reply(s, "501 5.5.2 Invalid PLAIN response");
		return;
	}
	smtpd_auth_check(s, "PLAIN", pl.user, pl.userlen, pl.pass, pl.passlen);
}

/* A decoded LOGIN response: the user name, then the password. */
static void smtpd_auth_login(struct smtpd *s, const unsigned char *buf, size_t n)
{
	if (s->sasl_step == SMTPD_SASL_LOGIN_PASS) {
		smtpd_auth_check(s, "LOGIN", s->sasl_user, s->sasl_userlen, (const char *)buf, n);
		rl_wipe(s->sasl_user, sizeof(s->sasl_user));
		s->sasl_userlen = 0;
		return;
	}
	if (n == 0 || n > AUTH_USER_MAX || memchr(buf, '\0', n)) {
		s->sasl_step = SMTPD_SASL_NONE;
		smtpd_reply(s, "501 5.5.2 Invalid user name");
		return;
	}
	memcpy(s->sasl_user, buf, n);
	s->sasl_userlen = n;
	s->sasl_step = SMTPD_SASL_LOGIN_PASS;
	smtpd_reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
}

void smtpd_auth_response(struct smtpd *s, const char *line, size_t len)
{
	unsigned char *buf;
	size_t n = 0;
	int rc;

	/* RFC 4954 section 4: "*" cancels the exchange. */
	if (len == 1 && line[0] == '*') {
		s->sasl_step = SMTPD_SASL_NONE;
		rl_wipe(s->sasl_user, sizeof(s->sasl_user));
		smtpd_reply(s, "501 5.7.0 Authentication aborted");
		return;
	}
	buf = malloc(SMTPD_AUTH_DECODED_MAX);
	if (!buf) {
		s->sasl_step = SMTPD_SASL_NONE;
		smtpd_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	rc = auth_b64_decode(line, len, buf, SMTPD_AUTH_DECODED_MAX, &n);
	if (rc < 0) {
		s->sasl_step = SMTPD_SASL_NONE;
		rl_wipe(s->sasl_user, sizeof(s->sasl_user));
		smtpd_reply(s, "501 5.5.2 Cannot decode response");
	} else if (s->sasl_step == SMTPD_SASL_PLAIN) {
		smtpd_auth_plain(s, buf, n);
	} else {
		smtpd_auth_login(s, buf, n);
	}
	rl_wipe(buf, SMTPD_AUTH_DECODED_MAX);
	free(buf);
}

/*
 * The address's failures within the minute plus its checks in flight (each
 * may become a failure): what AUTH is gated on.
 */
static unsigned smtpd_auth_gate(struct smtpd *s)
{
	struct auth_key k;

	smtpd_auth_key(s, &k);
	return auth_throttle_count(s->sv->throttle, &k, uv_now(s->sv->p.loop)) +
	       auth_throttle_pending(s->sv->throttle, &k);
}

/* Why AUTH cannot start now, answered; 0 when it can. */
static int smtpd_auth_refuse(struct smtpd *s)
{
	if (!smtpd_auth_db(s))
		smtpd_reply(s, "502 5.5.1 Error: authentication not enabled");
	else if (!conn_tls_active(s->conn))
		smtpd_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
	else if (!s->said_helo)
		smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
	else if (smtpd_auth_user(s))
		smtpd_reply(s, "503 5.5.1 Error: already authenticated");
	else if (s->in_mail)
		smtpd_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
	else if (smtpd_auth_gate(s) >= SMTPD_AUTH_CLOSE_AT) {
		log_warn("unknown[%s]: AUTH refused: too many failed authentication attempts",
			 s->addr);
		smtpd_bye(s, "421 4.7.0", "Error: too many failed authentication attempts");
	} else
		return 0;
	return 1;
}

void smtpd_auth_cmd(struct smtpd *s, const struct smtp_cmd *c)
{
	struct auth_cmd ac;
	int rc;

	if (smtpd_auth_refuse(s))
		return;
	rc = auth_cmd_parse(c->arg, c->arglen, &ac, NULL);
	if (rc == -ENOTSUP) {
		smtpd_reply(s, "504 5.5.4 Unsupported authentication mechanism");
		return;
	}
	if (rc < 0) {
		smtpd_reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		return;
	}
	s->sasl_step = ac.mech == AUTH_MECH_PLAIN ? SMTPD_SASL_PLAIN : SMTPD_SASL_LOGIN_USER;
	if (ac.has_resp) {
		smtpd_auth_response(s, ac.resp, ac.resplen);
		return;
	}
	/* PLAIN: an empty challenge; LOGIN: "Username:". */
	smtpd_reply(s, ac.mech == AUTH_MECH_PLAIN ? "334 " : "334 VXNlcm5hbWU6");
}
