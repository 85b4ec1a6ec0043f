/*
 * test_conn: relay/conn.c on a real loop over loopback TCP, against a plain
 * socket peer that this test drives by hand: the bound on output queued for
 * a peer that never reads, and the refusal of writes while a TLS handshake
 * is in progress (no plaintext may be mixed into the handshake), and a
 * write to a peer that reset the connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <uv.h>

#include "conn.h"
#include "tap.h"

#define WAIT_MS 5000
#define FLOOD_MAX (2 * (size_t)CONN_PENDING_MAX) /* and far above kernel buffers */

struct probe {
	unsigned events[CONN_EV_CLOSED + 1];
};

static void probe_event(struct conn *c, int ev, void *arg)
{
	struct probe *p = arg;

	(void)c;
	if (ev >= 0 && ev <= CONN_EV_CLOSED)
		p->events[ev]++;
}

static const struct conn_ops probe_ops = { probe_event };

static int contains(const char *p, size_t n, const char *word)
{
	size_t k = strlen(word);

	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(p + i, word, k) == 0)
			return 1;
	return 0;
}

/* Run the loop until *counter reaches want or WAIT_MS pass; 1 if it did. */
static int spin(uv_loop_t *loop, const unsigned *counter, unsigned want)
{
	uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000;

	while (*counter < want && uv_hrtime() < deadline) {
		uv_run(loop, UV_RUN_NOWAIT);
		if (*counter < want)
			usleep(1000);
	}
	return *counter >= want;
}

/* A listening socket on 127.0.0.1 with a port of the kernel's choice. */
static int listen_loopback(struct sockaddr_in *sa, int rcvbuf)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Set before listen(): accepted sockets inherit it. */
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)sa, &len) < 0) {
		perror("listen");
		exit(1);
	}
	return fd;
}

/* An outbound conn connected to a plain socket; *peer is the far end. */
static struct conn *connect_pair(uv_loop_t *loop, struct probe *p, int *peer, int rcvbuf)
{
	struct sockaddr_in sa;
	int lfd = listen_loopback(&sa, rcvbuf);
	struct conn *c = conn_new(loop, &probe_ops, p, 65536);

	CHECK_INT(conn_connect(c, (struct sockaddr *)&sa), 0);
	CHECK(spin(loop, &p->events[CONN_EV_CONNECTED], 1), "no CONN_EV_CONNECTED");
	*peer = accept(lfd, NULL, NULL);
	CHECK(*peer >= 0, "accept: %s", strerror(errno));
	close(lfd);
	return c;
}

/* Everything the peer receives within quiet_ms of silence (at most size). */
static size_t peer_read(uv_loop_t *loop, int fd, char *buf, size_t size, int quiet_ms)
{
	size_t n = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t k;

		uv_run(loop, UV_RUN_NOWAIT);
		if (poll(&pfd, 1, quiet_ms) <= 0)
			break;
		k = recv(fd, buf + n, size - n, 0);
		if (k <= 0)
			break;
		n += (size_t)k;
		if (n == size)
			break;
	}
	return n;
}

static void close_conn(uv_loop_t *loop, struct conn *c, struct probe *p)
{
	conn_close(c);
	CHECK(spin(loop, &p->events[CONN_EV_CLOSED], 1), "no CONN_EV_CLOSED");
}

/*
 * A peer that never reads: conn_write() must start failing with RL_ETOOBIG
 * once CONN_PENDING_MAX bytes wait, whatever was flushed in between, and
 * work again once the peer has read and the output drained.
 */
static void test_write_cap(uv_loop_t *loop)
{
	static char chunk[65536];
	struct probe p = { { 0 } };
	size_t total = 0, most = 0;
	char sink[65536];
	int peer, rc = 0;
	struct conn *c = connect_pair(loop, &p, &peer, 65536);

	memset(chunk, 'x', sizeof(chunk));
	while (total < FLOOD_MAX) {
		rc = conn_write(c, chunk, sizeof(chunk));
		if (rc < 0)
			break;
		total += sizeof(chunk);
		if (conn_pending(c) > most)
			most = conn_pending(c);
		conn_flush(c);
		uv_run(loop, UV_RUN_NOWAIT);
	}
	CHECK_INT(rc, RL_ETOOBIG);
	CHECK(total < FLOOD_MAX, "wrote %zu bytes to a peer that never reads", total);
	CHECK(most <= CONN_PENDING_MAX, "pending %zu > %u", most, CONN_PENDING_MAX);
	CHECK_INT(p.events[CONN_EV_ERROR], 0);

	/* The peer reads everything: the output drains and writes work again. */
	p.events[CONN_EV_DRAINED] = 0;
	while (!p.events[CONN_EV_DRAINED] && peer_read(loop, peer, sink, sizeof(sink), 200) > 0)
		;
	CHECK_INT(p.events[CONN_EV_DRAINED] > 0, 1);
	CHECK_INT(conn_pending(c), 0);
	CHECK_INT(conn_write(c, "250 ok\r\n", 8), 0);
	close_conn(loop, c, &p);
	close(peer);
}

/*
 * The peer resets the connection while we are not reading: the failed
 * write alone must reach the owner as CONN_EV_ERROR at once, with its
 * cause; after it nothing more is accepted for the dead peer, and no
 * second error event comes.
 */
static void test_write_after_reset(uv_loop_t *loop)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct probe p = { { 0 } };
	const char *text = "";
	uint64_t start;
	int peer, rc;
	struct conn *c = connect_pair(loop, &p, &peer, 0);

	conn_pause(c);
	setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(peer);
	start = uv_hrtime();
	CHECK_INT(conn_write(c, "RCPT TO:<a@b.test>\r\n", 20), 0);
	rc = conn_flush(c);
	CHECK(rc <= 0, "flush %d", rc);
	CHECK(spin(loop, &p.events[CONN_EV_ERROR], 1), "no CONN_EV_ERROR after a failed write");
	CHECK((uv_hrtime() - start) / 1000000 < 1000, "error after %llu ms",
	      (unsigned long long)((uv_hrtime() - start) / 1000000));
	CHECK(conn_error(c, &text) < 0 && (strcmp(text, "connection reset by peer") == 0 ||
					   strcmp(text, "broken pipe") == 0),
	      "error text \"%s\"", text);
	rc = conn_write(c, "DATA\r\n", 6);
	CHECK(rc < 0, "conn_write after the reset: %d", rc);
	rc = conn_flush(c);
	CHECK(rc < 0, "conn_flush after the reset: %d", rc);
	for (int i = 0; i < 10; i++)
		uv_run(loop, UV_RUN_NOWAIT);
	CHECK_INT(p.events[CONN_EV_ERROR], 1);
	close_conn(loop, c, &p);
}

/* Client side: after conn_tls_client(), only handshake records go out. */
static void test_client_handshake_write(uv_loop_t *loop, gnutls_certificate_credentials_t cred,
					gnutls_priority_t prio)
{
	struct probe p = { { 0 } };
	char got[65536];
	size_t n;
	int peer;
	struct conn *c = connect_pair(loop, &p, &peer, 0);

	CHECK_INT(conn_tls_client(c, cred, prio, "mx.test"), 0);
	CHECK_INT(conn_write(c, "EHLO client.test\r\n", 18), RL_EPROTO);
	CHECK_INT(conn_printf(c, "MAIL FROM:<%s>\r\n", "a@client.test"), RL_EPROTO);
	conn_flush(c);
	n = peer_read(loop, peer, got, sizeof(got), 200);
	CHECK(n > 5, "no ClientHello (%zu bytes)", n);
	CHECK(n > 0 && got[0] == 0x16, "first byte 0x%02x, want a handshake record",
	      n ? (unsigned char)got[0] : 0);
	CHECK(!contains(got, n, "EHLO") && !contains(got, n, "MAIL"),
	      "plaintext sent inside the handshake");
	CHECK_INT(conn_tls_active(c), 0);
	CHECK_INT(p.events[CONN_EV_ERROR], 0);
	close_conn(loop, c, &p);
	close(peer);
}

struct server {
	uv_tcp_t tcp;
	struct conn *c;
	struct probe p;
	unsigned accepted;
	unsigned closed;
};

/* The server lives on the stack: wait for its close before returning. */
static void server_closed(uv_handle_t *h)
{
	((struct server *)h->data)->closed = 1;
}

static void server_close(uv_loop_t *loop, struct server *s)
{
	uv_close((uv_handle_t *)&s->tcp, server_closed);
	CHECK(spin(loop, &s->closed, 1), "server handle not closed");
}

static void server_on_connection(uv_stream_t *srv, int status)
{
	struct server *s = srv->data;

	if (status < 0 || s->c)
		return;
	s->c = conn_new(srv->loop, &probe_ops, &s->p, 65536);
	CHECK_INT(conn_accept(s->c, srv), 0);
	s->accepted = 1;
}

/* Server side: after STARTTLS's 220, a reply written before the handshake
 * ends (a timeout's 421, say) is refused, not sent in the clear. */
static void test_server_handshake_write(uv_loop_t *loop, gnutls_certificate_credentials_t cred,
					gnutls_priority_t prio)
{
	struct server s = { .c = NULL };
	struct sockaddr_in sa;
	int len = sizeof(sa);
	char got[4096];
	size_t n;
	int peer = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	uv_tcp_init(loop, &s.tcp);
	s.tcp.data = &s;
	CHECK_INT(uv_tcp_bind(&s.tcp, (struct sockaddr *)&sa, 0), 0);
	CHECK_INT(uv_listen((uv_stream_t *)&s.tcp, 4, server_on_connection), 0);
	CHECK_INT(uv_tcp_getsockname(&s.tcp, (struct sockaddr *)&sa, &len), 0);
	CHECK_INT(connect(peer, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CHECK(spin(loop, &s.accepted, 1), "no accept");
	if (!s.c) {
		server_close(loop, &s);
		close(peer);
		return;
	}
	CHECK_INT(conn_write(s.c, "220 2.0.0 Ready to start TLS\r\n", 30), 0);
	conn_flush(s.c);
	CHECK_INT(conn_tls_server(s.c, cred, prio), 0);
	CHECK_INT(conn_write(s.c, "421 4.4.2 timeout\r\n", 19), RL_EPROTO);
	conn_flush(s.c);
	n = peer_read(loop, peer, got, sizeof(got), 200);
	CHECK_INT(n, 30);
	CHECK(!contains(got, n, "421"), "plaintext sent inside the handshake");
	close_conn(loop, s.c, &s.p);
	server_close(loop, &s);
	close(peer);
}

int main(void)
{
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	uv_loop_t loop;

	/* As the relay does (serve): a write to a reset socket is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&loop);
	if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    gnutls_priority_init(&prio, "NORMAL", NULL) < 0) {
		fprintf(stderr, "cannot set up GnuTLS\n");
		return 1;
	}
	test_write_cap(&loop);
	test_write_after_reset(&loop);
	test_client_handshake_write(&loop, cred, prio);
	test_server_handshake_write(&loop, cred, prio);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
	gnutls_priority_deinit(prio);
	gnutls_certificate_free_credentials(cred);
	return TEST_DONE();
}
