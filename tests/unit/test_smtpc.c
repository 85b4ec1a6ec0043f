/*
 * test_smtpc: the outbound client's content stage on a real loop, against a
 * scripted receiving MX in a child process on loopback.  Built with
 * SMTPC_BODY_IDLE_MS=1000, so the stage's timeout is one second:
 *   - a peer that reads the content slowly, for several times that long,
 *     gets the whole message (the timeout bounds inactivity, not the
 *     transfer);
 *   - a peer that stops reading makes the session fail with TEMPFAIL,
 *     "timed out while sending message body", soon after;
 *   - a peer that resets the connection while the content is being written
 *     (or while RCPT waits for its reply) ends the session at once, the
 *     message deferred with "lost connection ... : connection reset by peer".
 *
 * And the reply classes (RFC 5321 4.3.2): the table itself, then scripted
 * hostile peers answering 354 after the end of data, 354 to RCPT, 334 to
 * MAIL, 250 to DATA, ... : never delivered, never accepted, the session
 * ends with QUIT at most, the reason says "protocol error".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "log.h"
#include "pol.h"
#include "queue.h"
#include "smtp.h"
#include "smtpc.h"
#include "tap.h"

#define BODY_SIZE (78u * 100000) /* whole 78-byte lines */
#define PEER_RCVBUF 32768
#define SLOW_CHUNK 16384
#define SLOW_PAUSE_US 8000 /* about 2 MB/s: BODY_SIZE takes some seconds */
#define IDLE_MS 1000       /* SMTPC_BODY_IDLE_MS of this build */

/* --- the receiving MX (child process, blocking I/O) --------------------- */

/*
 * PEER_RESET_BODY: reads some content, then resets the connection (SO_LINGER
 * 0 close) while the client is still writing it.  PEER_RESET_RCPT: answers
 * MAIL, reads the RCPT command and resets instead of answering.
 */
enum peer_mode { PEER_SLOW, PEER_STALL, PEER_RESET_BODY, PEER_RESET_RCPT };

#define RESET_AFTER (256 * 1024) /* content read before the reset */

static int peer_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		if (recv(fd, buf + n, 1, 0) != 1)
			return -1;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return 0;
}

static int peer_say(int fd, const char *line)
{
	size_t n = strlen(line);

	return send(fd, line, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* One command, checked by prefix, and its reply. */
static int peer_step(int fd, const char *want, const char *reply)
{
	char line[1024];

	if (peer_line(fd, line, sizeof(line)) < 0 || strncmp(line, want, strlen(want)) != 0)
		return -1;
	return peer_say(fd, reply);
}

/* Read the content up to the final dot, pausing pause_us per chunk; its
 * size, or -1. */
static long peer_body(int fd, unsigned pause_us)
{
	static char buf[SLOW_CHUNK];
	char tail[5] = { 0 };
	long total = 0;

	for (;;) {
		ssize_t k = recv(fd, buf, sizeof(buf), 0);

		if (k <= 0)
			return -1;
		total += k;
		for (ssize_t i = 0; i < k; i++) {
			memmove(tail, tail + 1, 4);
			tail[4] = buf[i];
		}
		if (memcmp(tail, "\r\n.\r\n", 5) == 0)
			return total;
		usleep(pause_us);
	}
}

/* Close with an RST, not a FIN: what a crashed or rebooted peer sends. */
static int peer_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	return 0;
}

static int peer_run_reset(int fd, int mode)
{
	static char buf[SLOW_CHUNK];
	long total = 0;

	if (peer_say(fd, "220 mx.test ESMTP\r\n") < 0 ||
	    peer_step(fd, "EHLO ", "250 mx.test\r\n") < 0 ||
	    peer_step(fd, "MAIL FROM:", "250 2.1.0 Ok\r\n") < 0)
		return 2;
	if (mode == PEER_RESET_RCPT)
		return peer_line(fd, buf, sizeof(buf)) < 0 ? 3 : peer_reset(fd);
	if (peer_step(fd, "RCPT TO:", "250 2.1.5 Ok\r\n") < 0 ||
	    peer_step(fd, "DATA", "354 go ahead\r\n") < 0)
		return 2;
	while (total < RESET_AFTER) {
		ssize_t k = recv(fd, buf, sizeof(buf), 0);

		if (k <= 0)
			return 3;
		total += k;
	}
	return peer_reset(fd);
}

static int peer_run(int lfd, int mode)
{
	int fd = accept(lfd, NULL, NULL);
	long got;

	if (fd >= 0 && (mode == PEER_RESET_BODY || mode == PEER_RESET_RCPT))
		return peer_run_reset(fd, mode);
	if (fd < 0 || peer_say(fd, "220 mx.test ESMTP\r\n") < 0 ||
	    peer_step(fd, "EHLO ", "250 mx.test\r\n") < 0 ||
	    peer_step(fd, "MAIL FROM:", "250 2.1.0 Ok\r\n") < 0 ||
	    peer_step(fd, "RCPT TO:", "250 2.1.5 Ok\r\n") < 0 ||
	    peer_step(fd, "DATA", "354 go ahead\r\n") < 0)
		return 2;
	if (mode == PEER_STALL) {
		sleep(10); /* the client gives up long before; then killed */
		return 0;
	}
	got = peer_body(fd, SLOW_PAUSE_US);
	/* Content of BODY_SIZE in 78-byte lines: nothing to stuff; plus the dot. */
	if (got != (long)BODY_SIZE + 3)
		return 3;
	if (peer_say(fd, "250 2.0.0 Ok: queued\r\n") < 0 ||
	    peer_step(fd, "QUIT", "221 Bye\r\n") < 0)
		return 4;
	close(fd);
	return 0;
}

/* --- scripted hostile peers -------------------------------------------- */

#define GREET NULL      /* the step that sends the greeting */
#define BODY "<body>"   /* the step that reads the content up to the dot */
#define STEPS_MAX 10

struct script {
	const char *name;
	int level;                         /* enum pol_level of the session */
	const char *steps[STEPS_MAX][2];   /* { command prefix, GREET or BODY; reply } */
	size_t nrcpt;                      /* 1 or 2 */
	/* What must come of it. */
	int offered;                       /* a message was asked for */
	int result[2];                     /* per recipient */
	const char *dsn;                   /* of recipient 0, or NULL */
	const char *reason;                /* in recipient 0's reason, or NULL */
	const char *closed_reason;         /* in the session's reason, or NULL */
};

/*
 * Play the script; then the client may say QUIT or close, nothing else (a
 * protocol error ends the session: no DATA, no content, no RSET).
 */
static int peer_script(int lfd, const struct script *sc)
{
	int fd = accept(lfd, NULL, NULL);
	char line[1024];

	if (fd < 0)
		return 2;
	for (size_t i = 0; i < STEPS_MAX && sc->steps[i][1]; i++) {
		const char *want = sc->steps[i][0];
		int rc;

		if (want == GREET)
			rc = peer_say(fd, sc->steps[i][1]);
		else if (strcmp(want, BODY) == 0)
			rc = peer_body(fd, 0) < 0 ? -1 : peer_say(fd, sc->steps[i][1]);
		else
			rc = peer_step(fd, want, sc->steps[i][1]);
		if (rc < 0)
			return 3;
	}
	if (peer_line(fd, line, sizeof(line)) < 0 || line[0] == '\0')
		return 0; /* closed without QUIT */
	if (strncmp(line, "QUIT", 4) != 0)
		return 5; /* a command after the protocol error */
	peer_say(fd, "221 Bye\r\n");
	close(fd);
	return 0;
}

/* Fork the MX; returns its pid and fills *sa with its address. */
static pid_t peer_start(int mode, const struct script *sc, struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int rcvbuf = PEER_RCVBUF;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	pid_t pid;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* A small window makes the link slow for real (set before listen). */
	setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(lfd, (struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)sa, &len) < 0) {
		perror("peer listen");
		exit(1);
	}
	pid = fork();
	if (pid == 0)
		_exit(sc ? peer_script(lfd, sc) : peer_run(lfd, mode));
	close(lfd);
	return pid;
}

/* Its exit status: the slow peer exits by itself after QUIT, the stalled
 * one never does. */
static int peer_reap(pid_t pid, int mode)
{
	int status = 0;

	for (int i = 0; mode != PEER_STALL && i < 500; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return status;
}

/* --- the client side ---------------------------------------------------- */

struct run {
	struct smtpc_msg msg;
	struct smtpc_rcpt rcpt;
	int offered, done, closed;
};

/* Content: 76 'x' and CRLF per line, BODY_SIZE bytes in all. */
static int body_read(void *arg, uint64_t off, char *buf, size_t len, size_t *got)
{
	size_t n = 0;

	(void)arg;
	while (n < len && off + n < BODY_SIZE) {
		uint64_t col = (off + n) % 78;

		buf[n++] = col < 76 ? 'x' : col == 76 ? '\r' : '\n';
	}
	*got = n;
	return 0;
}

static struct smtpc_msg *run_next(struct smtpc *s, void *arg)
{
	struct run *r = arg;

	(void)s;
	if (r->offered++)
		return NULL;
	return &r->msg;
}

static void run_msg_done(struct smtpc *s, struct smtpc_msg *m, void *arg)
{
	struct run *r = arg;

	(void)s;
	(void)m;
	r->done++;
}

static void run_closed(struct smtpc *s, int established, int class, const char *reason,
		       int plain_retry, void *arg)
{
	struct run *r = arg;

	(void)s, (void)established, (void)class, (void)reason, (void)plain_retry;
	r->closed = 1;
}

static const struct smtpc_ops run_ops = { run_next, run_msg_done, run_closed };

/* Deliver one BODY_SIZE message to a peer in mode; returns elapsed ms. */
static uint64_t deliver(int mode, struct run *r, int *peer_status)
{
	struct pol_peer_policy pol = { .level = POL_LEVEL_NONE };
	struct smtpc_tls tls = { .loglevel = 0 };
	struct smtpc_target t = { .domain = "dest.test", .host = "mx.test", .pol = &pol };
	struct smtpc_params p = { .helo_name = "client.test", .tls = &tls, .target = &t,
				  .ops = &run_ops, .arg = r };
	struct sockaddr_in sa;
	struct smtpc *s;
	uv_loop_t loop;
	uint64_t start;
	pid_t pid = peer_start(mode, NULL, &sa);

	memset(r, 0, sizeof(*r));
	r->rcpt.address = "rcpt@dest.test";
	r->msg = (struct smtpc_msg){ .id = "TEST000001", .sender = "a@client.test",
				     .size = BODY_SIZE, .rcpt = &r->rcpt, .nrcpt = 1,
				     .read = body_read };
	memcpy(&t.addr, &sa, sizeof(sa));
	uv_loop_init(&loop);
	p.loop = &loop;
	start = uv_hrtime();
	CHECK_INT(smtpc_start(&p, &s), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
	*peer_status = peer_reap(pid, mode);
	CHECK_INT(r->closed, 1);
	CHECK_INT(r->done, 1);
	return (uv_hrtime() - start) / 1000000;
}

static void test_slow_reader_delivered(void)
{
	struct run r;
	int status = 0;
	uint64_t ms = deliver(PEER_SLOW, &r, &status);

	CHECK_INT(r.rcpt.result, SMTPC_DELIVERED);
	if (r.rcpt.result != SMTPC_DELIVERED)
		fprintf(stderr, "reason: %s\n", r.rcpt.reason);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "peer status 0x%x", status);
	/* Otherwise the test proved nothing: the link was not slow enough. */
	CHECK(ms > 2 * IDLE_MS, "delivery took only %llu ms", (unsigned long long)ms);
}

static void test_stalled_reader_times_out(void)
{
	struct run r;
	int status = 0;
	uint64_t ms = deliver(PEER_STALL, &r, &status);

	CHECK_INT(r.rcpt.result, SMTPC_TEMPFAIL);
	CHECK(strstr(r.rcpt.reason, "timed out while sending message body") != NULL,
	      "reason \"%s\"", r.rcpt.reason);
	CHECK(ms < 10 * IDLE_MS, "gave up only after %llu ms", (unsigned long long)ms);
}

/*
 * A peer that resets the connection while the client writes the content:
 * the session ends at once (not after the stage's timeout, IDLE_MS here),
 * and the message is deferred with the cause in its reason.
 */
static void test_reset_while_writing_body(void)
{
	struct run r;
	int status = 0;
	uint64_t ms = deliver(PEER_RESET_BODY, &r, &status);
	const char *want = "lost connection with mx.test[127.0.0.1] while sending message body: ";

	CHECK_INT(r.rcpt.result, SMTPC_TEMPFAIL);
	CHECK(strncmp(r.rcpt.reason, want, strlen(want)) == 0 &&
		      (strstr(r.rcpt.reason, "connection reset by peer") ||
		       strstr(r.rcpt.reason, "broken pipe")),
	      "reason \"%s\"", r.rcpt.reason);
	CHECK_STR(r.rcpt.dsn, "4.4.2");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "peer status 0x%x", status);
	CHECK(ms < IDLE_MS / 2, "noticed only after %llu ms", (unsigned long long)ms);
}

/*
 * The same before the content: the reset comes while the client waits for
 * the reply to RCPT, whose state's timeout is 300 s.
 */
static void test_reset_at_rcpt(void)
{
	struct run r;
	int status = 0;
	uint64_t ms = deliver(PEER_RESET_RCPT, &r, &status);

	CHECK_INT(r.rcpt.result, SMTPC_TEMPFAIL);
	CHECK_STR(r.rcpt.reason, "lost connection with mx.test[127.0.0.1] while sending RCPT TO: "
		  "connection reset by peer");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "peer status 0x%x", status);
	CHECK(ms < 5000, "noticed only after %llu ms", (unsigned long long)ms);
}

/* --- reply classes ------------------------------------------------------ */

static void test_reply_verdict_table(void)
{
	static const struct {
		int step, code, want;
	} t[] = {
		{ SMTP_STEP_GREETING, 220, SMTP_VERDICT_OK },
		{ SMTP_STEP_GREETING, 554, SMTP_VERDICT_REFUSED },
		{ SMTP_STEP_GREETING, 421, SMTP_VERDICT_REFUSED },
		{ SMTP_STEP_GREETING, 250, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_GREETING, 354, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_EHLO, 250, SMTP_VERDICT_OK },
		{ SMTP_STEP_EHLO, 502, SMTP_VERDICT_REFUSED },
		{ SMTP_STEP_EHLO, 220, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_EHLO, 354, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_HELO, 250, SMTP_VERDICT_OK },
		{ SMTP_STEP_HELO, 251, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_STARTTLS, 220, SMTP_VERDICT_OK },
		{ SMTP_STEP_STARTTLS, 454, SMTP_VERDICT_REFUSED },
		{ SMTP_STEP_STARTTLS, 250, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_MAIL, 250, SMTP_VERDICT_OK },
		{ SMTP_STEP_MAIL, 451, SMTP_VERDICT_REFUSED },
		{ SMTP_STEP_MAIL, 550, SMTP_VERDICT_REFUSED },
		{ SMTP_STEP_MAIL, 334, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_MAIL, 354, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_MAIL, 221, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_RCPT, 250, SMTP_VERDICT_OK },
		{ SMTP_STEP_RCPT, 251, SMTP_VERDICT_OK },
		{ SMTP_STEP_RCPT, 252, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_RCPT, 354, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_RCPT, 452, SMTP_VERDICT_REFUSED },
		{ SMTP_STEP_RCPT, 550, SMTP_VERDICT_REFUSED },
		{ SMTP_STEP_DATA, 354, SMTP_VERDICT_OK },
		{ SMTP_STEP_DATA, 250, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_DATA, 334, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_DATA, 554, SMTP_VERDICT_REFUSED },
		{ SMTP_STEP_DOT, 250, SMTP_VERDICT_OK },
		{ SMTP_STEP_DOT, 354, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_DOT, 251, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_DOT, 221, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_DOT, 451, SMTP_VERDICT_REFUSED },
		{ SMTP_STEP_DOT, 552, SMTP_VERDICT_REFUSED },
		{ SMTP_STEP_RSET, 250, SMTP_VERDICT_OK },
		{ SMTP_STEP_RSET, 354, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_QUIT, 221, SMTP_VERDICT_OK },
		{ SMTP_STEP_QUIT, 250, SMTP_VERDICT_PROTO },
		/* 1xx, out-of-range and other odd codes are never success. */
		{ SMTP_STEP_DOT, 150, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_RCPT, 199, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_MAIL, 0, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_MAIL, 600, SMTP_VERDICT_PROTO },
		{ SMTP_STEP_MAIL, -250, SMTP_VERDICT_PROTO },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int got = smtp_reply_verdict(t[i].step, t[i].code);

		CHECK(got == t[i].want, "step %d (%s) code %d: got %d want %d", t[i].step,
		      smtp_step_name(t[i].step), t[i].code, got, t[i].want);
	}
	CHECK_STR(smtp_step_name(SMTP_STEP_DOT), "to end of data");
}

#define OK250 "250 2.0.0 Ok\r\n"
#define EHLO250 { "EHLO ", "250 mx.test\r\n" }
#define MAIL250 { "MAIL FROM:", "250 2.1.0 Ok\r\n" }
#define RCPT250 { "RCPT TO:", "250 2.1.5 Ok\r\n" }
#define GREET220 { GREET, "220 mx.test ESMTP\r\n" }
#define PROTO "protocol error: unexpected reply "
#define HOSTIP " from mx.test[127.0.0.1]"

static const struct script scripts[] = {
	{ "354 after the end of data", POL_LEVEL_NONE,
	  { GREET220, EHLO250, MAIL250, RCPT250, { "DATA", "354 go ahead\r\n" },
	    { BODY, "354 3.0.0 Send more\r\n" } },
	  1, 1, { SMTPC_TEMPFAIL }, "4.5.0",
	  PROTO "\"354 3.0.0 Send more\" to end of data" HOSTIP, NULL },
	{ "354 to RCPT", POL_LEVEL_NONE,
	  { GREET220, EHLO250, MAIL250, { "RCPT TO:", "354 Start mail input\r\n" } },
	  1, 1, { SMTPC_TEMPFAIL }, "4.5.0",
	  PROTO "\"354 Start mail input\" to RCPT TO" HOSTIP, NULL },
	{ "354 to the second RCPT", POL_LEVEL_NONE,
	  { GREET220, EHLO250, MAIL250, RCPT250, { "RCPT TO:", "354 go on\r\n" } },
	  2, 1, { SMTPC_TEMPFAIL, SMTPC_TEMPFAIL }, "4.5.0",
	  PROTO "\"354 go on\" to RCPT TO" HOSTIP, NULL },
	{ "334 to MAIL", POL_LEVEL_NONE,
	  { GREET220, EHLO250, { "MAIL FROM:", "334 VXNlcm5hbWU6\r\n" } },
	  1, 1, { SMTPC_TEMPFAIL }, "4.5.0", PROTO "\"334 VXNlcm5hbWU6\" to MAIL FROM", NULL },
	{ "250 to DATA", POL_LEVEL_NONE,
	  { GREET220, EHLO250, MAIL250, RCPT250, { "DATA", "250 2.0.0 Ok: queued\r\n" } },
	  1, 1, { SMTPC_TEMPFAIL }, "4.5.0", PROTO "\"250 2.0.0 Ok: queued\" to DATA", NULL },
	{ "221 after the end of data", POL_LEVEL_NONE,
	  { GREET220, EHLO250, MAIL250, RCPT250, { "DATA", "354 go ahead\r\n" },
	    { BODY, "221 2.0.0 Bye\r\n" } },
	  1, 1, { SMTPC_TEMPFAIL }, "4.5.0", PROTO "\"221 2.0.0 Bye\" to end of data", NULL },
	{ "354 to RSET", POL_LEVEL_NONE,
	  { GREET220, EHLO250, { "MAIL FROM:", "550 5.7.1 Not you\r\n" },
	    { "RCPT TO:", "503 5.5.1 Need MAIL\r\n" }, { "DATA", "503 5.5.1 Need RCPT\r\n" },
	    { "RSET", "354 what\r\n" } },
	  1, 1, { SMTPC_PERMFAIL }, "5.7.1", "Not you", PROTO "\"354 what\" to RSET" },
	{ "250 as the greeting", POL_LEVEL_NONE, { { GREET, "250 mx.test\r\n" } },
	  1, 0, { SMTPC_NONE }, NULL, NULL, PROTO "\"250 mx.test\" as the initial greeting" HOSTIP },
	{ "354 to EHLO", POL_LEVEL_NONE, { GREET220, { "EHLO ", "354 mx.test\r\n" } },
	  1, 0, { SMTPC_NONE }, NULL, NULL, PROTO "\"354 mx.test\" to EHLO" },
	{ "250 to STARTTLS", POL_LEVEL_MAY,
	  { GREET220, { "EHLO ", "250-mx.test\r\n250 STARTTLS\r\n" }, { "STARTTLS", OK250 } },
	  1, 0, { SMTPC_NONE }, NULL, NULL, PROTO "\"250 2.0.0 Ok\" to STARTTLS" },
	/* Allowed codes still work: 251 to RCPT is an accepted recipient. */
	{ "251 to RCPT delivers", POL_LEVEL_NONE,
	  { GREET220, EHLO250, MAIL250, { "RCPT TO:", "251 2.1.5 Will forward\r\n" },
	    { "DATA", "354 go ahead\r\n" }, { BODY, "250 2.0.0 Ok: queued as X\r\n" } },
	  1, 1, { SMTPC_DELIVERED }, "2.0.0", "250 2.0.0 Ok: queued as X", NULL },
	/* Peer text reaches reasons without control octets. */
	{ "control octets in a refusal", POL_LEVEL_NONE,
	  { GREET220, EHLO250, MAIL250,
	    { "RCPT TO:", "550 5.1.1 No\x01such\x1b[31m user\x7f\r\n" },
	    { "DATA", "554 5.5.1 No valid recipients\r\n" }, { "RSET", OK250 } },
	  1, 1, { SMTPC_PERMFAIL }, "5.1.1", "550 5.1.1 No?such?[31m user?", NULL },
};

struct srun {
	struct smtpc_msg msg;
	struct smtpc_rcpt rcpt[2];
	int offered, done, closed, established, class;
	char reason[SMTPC_REASON_MAX];
};

static int small_read(void *arg, uint64_t off, char *buf, size_t len, size_t *got)
{
	static const char body[] = "Subject: t\r\n\r\nhello\r\n";

	(void)arg;
	*got = off < sizeof(body) - 1 ? sizeof(body) - 1 - (size_t)off : 0;
	if (*got > len)
		*got = len;
	memcpy(buf, body + off, *got);
	return 0;
}

static struct smtpc_msg *srun_next(struct smtpc *s, void *arg)
{
	struct srun *r = arg;

	(void)s;
	return r->offered++ ? NULL : &r->msg;
}

static void srun_msg_done(struct smtpc *s, struct smtpc_msg *m, void *arg)
{
	(void)s, (void)m;
	((struct srun *)arg)->done++;
}

static void srun_closed(struct smtpc *s, int established, int class, const char *reason,
			int plain_retry, void *arg)
{
	struct srun *r = arg;

	(void)s, (void)plain_retry;
	r->closed = 1;
	r->established = established;
	r->class = class;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

static const struct smtpc_ops srun_ops = { srun_next, srun_msg_done, srun_closed };

/* No control octet (CR, LF, ESC, DEL, ...) in a reason. */
static int clean_text(const char *t)
{
	for (; *t; t++) {
		if ((unsigned char)*t < 0x20 || (unsigned char)*t > 0x7e)
			return 0;
	}
	return 1;
}

static void script_check(const struct script *sc, const struct srun *r, int status)
{
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "%s: peer status 0x%x (3: script broken off, 5: a command after the error)", sc->name,
	      status);
	CHECK(r->closed == 1, "%s: closed %d", sc->name, r->closed);
	CHECK((r->offered > 0) == sc->offered, "%s: offered %d", sc->name, r->offered);
	CHECK(r->done == sc->offered, "%s: done %d", sc->name, r->done);
	for (size_t i = 0; sc->offered && i < sc->nrcpt; i++) {
		CHECK(r->rcpt[i].result == sc->result[i], "%s: rcpt %zu result %d want %d (%s)",
		      sc->name, i, r->rcpt[i].result, sc->result[i], r->rcpt[i].reason);
		CHECK(clean_text(r->rcpt[i].reason) && clean_text(r->rcpt[i].reply),
		      "%s: control octets in \"%s\"", sc->name, r->rcpt[i].reason);
	}
	if (sc->dsn)
		CHECK(strcmp(r->rcpt[0].dsn, sc->dsn) == 0, "%s: dsn %s want %s", sc->name,
		      r->rcpt[0].dsn, sc->dsn);
	if (sc->reason)
		CHECK(strstr(r->rcpt[0].reason, sc->reason) != NULL, "%s: reason \"%s\" want \"%s\"",
		      sc->name, r->rcpt[0].reason, sc->reason);
	if (sc->closed_reason)
		CHECK(r->class == SMTPC_TEMPFAIL && strstr(r->reason, sc->closed_reason) != NULL,
		      "%s: closed class %d reason \"%s\" want \"%s\"", sc->name, r->class, r->reason,
		      sc->closed_reason);
	CHECK(clean_text(r->reason), "%s: control octets in \"%s\"", sc->name, r->reason);
}

/* Play one script against a session; the message carries flags (QUEUE_F_*). */
static void run_script(const struct script *sc, uint32_t flags)
{
	struct pol_peer_policy pol = { .level = sc->level };
	struct smtpc_tls tls = { .loglevel = 0 };
	struct smtpc_target t = { .domain = "dest.test", .host = "mx.test", .pol = &pol };
	struct srun r;
	struct smtpc_params p = { .helo_name = "client.test", .tls = &tls, .target = &t,
				  .ops = &srun_ops, .arg = &r };
	struct sockaddr_in sa;
	struct smtpc *s;
	uv_loop_t loop;
	pid_t pid = peer_start(0, sc, &sa);

	memset(&r, 0, sizeof(r));
	r.rcpt[0].address = "rcpt@dest.test";
	r.rcpt[1].address = "rcpt2@dest.test";
	r.msg = (struct smtpc_msg){ .id = "TEST000002", .sender = "a@client.test",
				    .flags = flags, .size = 22, .rcpt = r.rcpt,
				    .nrcpt = sc->nrcpt, .read = small_read };
	memcpy(&t.addr, &sa, sizeof(sa));
	uv_loop_init(&loop);
	p.loop = &loop;
	CHECK_INT(smtpc_start(&p, &s), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
	script_check(sc, &r, peer_reap(pid, PEER_SLOW));
}

static void test_reply_scripts(void)
{
	for (size_t k = 0; k < sizeof(scripts) / sizeof(scripts[0]); k++)
		run_script(&scripts[k], 0);
}

/*
 * REQUIRETLS mail (RFC 8689) on sessions that never become verified TLS:
 * the server offers REQUIRETLS, yet no MAIL is ever sent (the peer fails
 * the script with status 5 on any command but QUIT); the recipients
 * bounce at once with 5.7.30 and the session ends with QUIT.
 */
#define EHLO_RTLS { "EHLO ", "250-mx.test\r\n250-PIPELINING\r\n250 REQUIRETLS\r\n" }
#define NOT_TLS "REQUIRETLS: the connection to mx.test[127.0.0.1] is not protected by TLS"

static const struct script rtls_scripts[] = {
	{ "REQUIRETLS at level none", POL_LEVEL_NONE, { GREET220, EHLO_RTLS },
	  2, 1, { SMTPC_PERMFAIL, SMTPC_PERMFAIL }, "5.7.30", NOT_TLS " (level none)", NULL },
	{ "REQUIRETLS at level may, no STARTTLS offered", POL_LEVEL_MAY, { GREET220, EHLO_RTLS },
	  1, 1, { SMTPC_PERMFAIL }, "5.7.30", NOT_TLS " (level may)", NULL },
	{ "REQUIRETLS at level may, STARTTLS refused", POL_LEVEL_MAY,
	  { GREET220,
	    { "EHLO ", "250-mx.test\r\n250-STARTTLS\r\n250 REQUIRETLS\r\n" },
	    { "STARTTLS", "454 4.7.0 TLS not available now\r\n" } },
	  1, 1, { SMTPC_PERMFAIL }, "5.7.30", NOT_TLS " (level may)", NULL },
	{ "REQUIRETLS, the server does not offer it (in clear)", POL_LEVEL_NONE,
	  { GREET220, EHLO250 }, 1, 1, { SMTPC_PERMFAIL }, "5.7.30", NOT_TLS, NULL },
};

static void test_requiretls_scripts(void)
{
	for (size_t k = 0; k < sizeof(rtls_scripts) / sizeof(rtls_scripts[0]); k++)
		run_script(&rtls_scripts[k], QUEUE_F_REQUIRETLS);
	/* The same peer takes an ordinary message: the flag alone made the difference. */
	run_script(&(const struct script){ "no REQUIRETLS: delivered in clear", POL_LEVEL_NONE,
					   { GREET220, EHLO_RTLS, MAIL250, RCPT250,
					     { "DATA", "354 go ahead\r\n" },
					     { BODY, "250 2.0.0 Ok: queued as X\r\n" } },
					   1, 1, { SMTPC_DELIVERED }, "2.0.0", NULL, NULL },
		   0);
}

int main(void)
{
	log_init("test_smtpc", "client.test", LOG_ERR);
	/* As the relay does (serve): a write to a reset socket is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	test_slow_reader_delivered();
	test_stalled_reader_times_out();
	test_reset_while_writing_body();
	test_reset_at_rcpt();
	test_reply_verdict_table();
	test_reply_scripts();
	test_requiretls_scripts();
	return TEST_DONE();
}
