/*
 * cli_submit: `sendmail` for users who may not write the queue.
 *
 * The queue belongs to the relay's user (mode 0700), so an application
 * running as www-data cannot open it.  Postfix solves this with a setgid
 * postdrop program; we keep setgid bits off a binary this large and hand
 * the message to the running relay over SMTP instead, on its own first
 * listen address (a wildcard one is reached through the loopback address
 * of its family).  That address is in mynetworks in any sane setup, and
 * any local user could connect to it anyway, so nothing is granted that
 * was not already there.  The relay's 250 after the data means the
 * message is on disk (the contract's acceptance rule), which is exactly
 * the promise sendmail's exit 0 makes.
 *
 * Only a socket of the relay's own gets the message: one owned by root
 * (the relay binds before it drops privileges) or by the owner of
 * queue_dir.  Otherwise a local user who bound the port while the relay
 * was down could answer 250 and take the mail; /proc/net/tcp says who owns
 * the socket that will take the connection (procnet.h).
 *
 * Blocking sockets with a timeout on every read and write: a one-shot
 * tool, no event loop.  Any refusal ends the transaction before DATA, so
 * a message is queued for all of its recipients or for none.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli_submit.h"
#include "netaddr.h"
#include "procnet.h"
#include "smtp.h"

#define SUBMIT_TIMEOUT_S 120 /* per read or write; the reply to the dot waits for a sync */

struct submit_conn {
	int fd;
	char buf[8192];
	size_t len;
	char where[NETADDR_TEXT_SIZE + 16];
};

/* The address to reach the listener at: wildcards become loopback. */
static void listen_target(const struct cfg_addr *a, struct sockaddr_storage *out, socklen_t *len)
{
	*out = a->sa;
	*len = a->len;
	if (out->ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)out;

		if (in->sin_addr.s_addr == htonl(INADDR_ANY))
			in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (out->ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

		if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			in6->sin6_addr = in6addr_loopback;
	}
}

#define SUBMIT_PROC_MAX (16u << 20)

/*
 * Is every socket listening where ss leads the relay's own?  Returns 0, or
 * prints why not and returns -1.
 */
static int submit_listener_ok(const struct cfg *cfg, const struct sockaddr *ss,
			      const char *where)
{
	static const char *const files[2] = {"/proc/net/tcp", "/proc/net/tcp6"};
	uint32_t uids[PROCNET_UIDS_MAX];
	size_t found = 0;
	struct stat st;
	uid_t owner = 0;

	if (stat(cfg->queue_dir, &st) == 0)
		owner = st.st_uid;
	for (int v6 = ss->sa_family == AF_INET6; v6 < 2; v6++) {
		struct rl_buf b;
		size_t n = 0;
		int rc;

		rl_buf_init(&b, SUBMIT_PROC_MAX);
		rc = rl_buf_read_file(&b, files[v6], SUBMIT_PROC_MAX, NULL);
		if (rc == 0)
			rc = procnet_listeners(b.data, b.len, v6, ss, uids, &n);
		rl_buf_fini(&b);
		if (rc == -ENOENT && v6)
			continue; /* no IPv6 in this kernel */
		if (rc < 0) {
			fprintf(stderr, "sendmail: cannot tell who listens at %s (%s: %s); "
					"not handing the message over\n",
				where, files[v6], rl_strerror(rc));
			return -1;
		}
		for (size_t i = 0; i < n; i++)
			if (uids[i] != 0 && uids[i] != owner) {
				fprintf(stderr, "sendmail: the socket listening at %s belongs to uid "
						"%lu, not to the relay (root or uid %lu, the owner of "
						"%s); not handing the message over\n",
					where, (unsigned long)uids[i], (unsigned long)owner,
					cfg->queue_dir);
				return -1;
			}
		found += n;
	}
	if (found == 0) {
		fprintf(stderr, "sendmail: cannot write the queue and no relay listens at %s\n",
			where);
		return -1;
	}
	return 0;
}

static int submit_connect(struct submit_conn *c, const struct cfg *cfg)
{
	struct timeval tv = {SUBMIT_TIMEOUT_S, 0};
	struct sockaddr_storage ss;
	char ip[NETADDR_TEXT_SIZE];
	unsigned port = 0;
	socklen_t len;
	int fd;

	if (cfg->nlisten == 0)
		return -ENOENT;
	listen_target(&cfg->listen[0], &ss, &len);
	if (netaddr_text((struct sockaddr *)&ss, ip, sizeof(ip), &port) < 0)
		return RL_EPARSE;
	snprintf(c->where, sizeof(c->where), "[%s]:%u", ip, port);
	if (submit_listener_ok(cfg, (struct sockaddr *)&ss, c->where) < 0)
		return RL_EPOLICY;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Linux honours SO_SNDTIMEO for connect() too. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&ss, len) < 0) {
		int err = errno == EINPROGRESS ? ETIMEDOUT : errno;

		close(fd);
		return -err;
	}
	c->fd = fd;
	c->len = 0;
	return 0;
}

static int submit_write(struct submit_conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno == EAGAIN ? RL_ETIMEDOUT : -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The next whole reply into *r. */
static int submit_reply(struct submit_conn *c, struct smtp_reply *r)
{
	for (;;) {
		size_t used;
		int rc = smtp_reply_parse(c->buf, c->len, r, &used);
		ssize_t got;

		if (rc < 0)
			return rc;
		if (rc == 1) {
			memmove(c->buf, c->buf + used, c->len - used);
			c->len -= used;
			return 0;
		}
		if (c->len == sizeof(c->buf))
			return RL_EPARSE;
		got = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return errno == EAGAIN ? RL_ETIMEDOUT : -errno;
		if (got == 0)
			return -ECONNRESET;
		c->len += (size_t)got;
	}
}

/*
 * Send one command (NULL: none, just read) and judge the reply for step.
 * Returns 0 on the step's success, else the exit code to leave with after
 * printing one line: 69 for a 5xx, 75 for anything temporary.
 */
static int submit_step(struct submit_conn *c, const char *cmd, int step)
{
	struct smtp_reply r;
	char line[600];
	int rc = cmd ? submit_write(c, cmd, strlen(cmd)) : 0;

	if (rc == 0)
		rc = submit_reply(c, &r);
	if (rc < 0) {
		fprintf(stderr, "sendmail: relay %s: %s (waiting for the reply %s)\n", c->where,
			rl_strerror(rc), smtp_step_name(step));
		return CLI_EX_TEMPFAIL;
	}
	switch (smtp_reply_verdict(step, r.code)) {
	case SMTP_VERDICT_OK:
		return 0;
	case SMTP_VERDICT_REFUSED:
		smtp_reply_oneline(&r, line, sizeof(line));
		fprintf(stderr, "sendmail: relay %s said %s %s\n", c->where, line,
			smtp_step_name(step));
		return r.code >= 500 ? CLI_EX_UNAVAILABLE : CLI_EX_TEMPFAIL;
	default:
		fprintf(stderr, "sendmail: relay %s: unexpected reply %d %s\n", c->where, r.code,
			smtp_step_name(step));
		return CLI_EX_TEMPFAIL;
	}
}

/* The message with a dot doubled at the start of every line, then ".". */
static int submit_data(struct submit_conn *c, const struct rl_buf *msg)
{
	const char *p = msg->data, *end = msg->data + msg->len;
	int rc = 0;

	while (rc == 0 && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		if (*p == '.')
			rc = submit_write(c, ".", 1);
		if (rc == 0)
			rc = submit_write(c, p, n);
		p += n;
	}
	if (rc == 0 && msg->len > 0 && msg->data[msg->len - 1] != '\n')
		rc = submit_write(c, "\r\n", 2);
	return rc == 0 ? submit_write(c, ".\r\n", 3) : rc;
}

static int submit_dialogue(struct submit_conn *c, const struct cli_submit *s)
{
	char cmd[SMTP_PATH_MAX + 64];
	int rc = submit_step(c, NULL, SMTP_STEP_GREETING);

	if (rc == 0) {
		snprintf(cmd, sizeof(cmd), "EHLO %s\r\n", s->cfg->myhostname);
		rc = submit_step(c, cmd, SMTP_STEP_EHLO);
	}
	if (rc == 0) {
		snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>%s%s\r\n", s->sender,
			 s->eightbit ? " BODY=8BITMIME" : "", s->smtputf8 ? " SMTPUTF8" : "");
		rc = submit_step(c, cmd, SMTP_STEP_MAIL);
	}
	for (size_t i = 0; rc == 0 && i < s->nrcpt; i++) {
		snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", s->rcpt[i]);
		rc = submit_step(c, cmd, SMTP_STEP_RCPT);
	}
	if (rc == 0)
		rc = submit_step(c, "DATA\r\n", SMTP_STEP_DATA);
	if (rc == 0 && (rc = submit_data(c, s->msg)) < 0) {
		fprintf(stderr, "sendmail: relay %s: %s while sending the message\n", c->where,
			rl_strerror(rc));
		return CLI_EX_TEMPFAIL;
	}
	if (rc == 0)
		rc = submit_step(c, NULL, SMTP_STEP_DOT);
	(void)!submit_write(c, "QUIT\r\n", 6);
	return rc;
}

int cli_submit_smtp(const struct cli_submit *s)
{
	struct submit_conn c = { .fd = -1 };
	int rc = submit_connect(&c, s->cfg);

	if (rc == RL_EPOLICY)
		return CLI_EX_TEMPFAIL; /* said why */
	if (rc < 0) {
		fprintf(stderr, "sendmail: cannot write the queue and cannot reach the relay at %s: "
				"%s\n", c.where[0] ? c.where : "(no listen address)", rl_strerror(rc));
		return CLI_EX_TEMPFAIL;
	}
	rc = submit_dialogue(&c, s);
	close(c.fd);
	return rc;
}
