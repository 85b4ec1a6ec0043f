/*
 * test_smtpc: the outbound client's content stage on a real loop, against a
 * scripted receiving MX in a child process on loopback.  Built with
 * SMTPC_BODY_IDLE_MS=1000, so the stage's timeout is one second:
 *   - a peer that reads the content slowly, for several times that long,
 *     gets the whole message (the timeout bounds inactivity, not the
 *     transfer);
 *   - a peer that stops reading makes the session fail with TEMPFAIL,
 *     "timed out while sending message body", soon after.
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
#include "smtpc.h"
#include "tap.h"

#define BODY_SIZE (78u * 100000) /* whole 78-byte lines */
#define PEER_RCVBUF 32768
#define SLOW_CHUNK 16384
#define SLOW_PAUSE_US 8000 /* about 2 MB/s: BODY_SIZE takes some seconds */
#define IDLE_MS 1000       /* SMTPC_BODY_IDLE_MS of this build */

/* --- the receiving MX (child process, blocking I/O) --------------------- */

enum peer_mode { PEER_SLOW, PEER_STALL };

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

/* Read the content at a crawl up to the final dot; its size, or -1. */
static long peer_slow_body(int fd)
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
		usleep(SLOW_PAUSE_US);
	}
}

static int peer_run(int lfd, int mode)
{
	int fd = accept(lfd, NULL, NULL);
	long got;

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
	got = peer_slow_body(fd);
	/* Content of BODY_SIZE in 78-byte lines: nothing to stuff; plus the dot. */
	if (got != (long)BODY_SIZE + 3)
		return 3;
	if (peer_say(fd, "250 2.0.0 Ok: queued\r\n") < 0 ||
	    peer_step(fd, "QUIT", "221 Bye\r\n") < 0)
		return 4;
	close(fd);
	return 0;
}

/* Fork the MX; returns its pid and fills *sa with its address. */
static pid_t peer_start(int mode, struct sockaddr_in *sa)
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
		_exit(peer_run(lfd, mode));
	close(lfd);
	return pid;
}

/* Its exit status: the slow peer exits by itself after QUIT, the stalled
 * one never does. */
static int peer_reap(pid_t pid, int mode)
{
	int status = 0;

	for (int i = 0; mode == PEER_SLOW && i < 500; i++) {
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
	struct smtpc_policy pol = { .level = POL_LEVEL_NONE };
	struct smtpc_tls tls = { .loglevel = 0 };
	struct smtpc_target t = { .domain = "dest.test", .host = "mx.test", .pol = &pol };
	struct smtpc_params p = { .helo_name = "client.test", .tls = &tls, .target = &t,
				  .ops = &run_ops, .arg = r };
	struct sockaddr_in sa;
	struct smtpc *s;
	uv_loop_t loop;
	uint64_t start;
	pid_t pid = peer_start(mode, &sa);

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

int main(void)
{
	log_init("test_smtpc", "client.test", LOG_ERR);
	test_slow_reader_delivered();
	test_stalled_reader_times_out();
	return TEST_DONE();
}
