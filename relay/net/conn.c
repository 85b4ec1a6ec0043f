/*
 * conn: libuv TCP transport with GnuTLS over in-memory queues.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

#define CONN_READ_CHUNK 16384      /* one TLS record's worth */
#define CONN_CIPHER_LIMIT (256 * 1024) /* ciphertext waiting for GnuTLS */
/* conn_write() keeps to CONN_PENDING_MAX; the rest is TLS record overhead. */
#define CONN_OUT_LIMIT (CONN_PENDING_MAX + CONN_PENDING_MAX / 16)
#define CONN_DRAIN_MS 5000 /* how long a closing connection may flush */

enum conn_tls_state { CONN_TLS_OFF = 0, CONN_TLS_HANDSHAKE, CONN_TLS_ON };

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	const struct conn_ops *ops;
	void *arg;
	struct rl_buf in;  /* plaintext for the owner (secret: may hold AUTH data) */
	struct rl_buf cin; /* ciphertext for GnuTLS */
	struct rl_buf out; /* bytes for the socket, not yet handed to uv_write */
	struct rl_buf pout; /* plaintext waiting to be encrypted at conn_flush() */
	size_t inflight;   /* bytes handed to uv_write, not yet written */
	unsigned writes;   /* uv_write requests in flight */
	gnutls_session_t tls;
	int tls_state;
	int starved;    /* GnuTLS asked for more ciphertext than there was */
	int reading;
	int paused;
	int closing;    /* conn_close() was called */
	int closed;     /* handles are being closed */
	int pending_closes;
	int err;
	const char *errtext;
	int err_pending; /* CONN_EV_ERROR waits for the timer (conn_fail_soon) */
};

struct conn_creq {
	uv_connect_t req;
	struct conn *c;
};

struct conn_wreq {
	uv_write_t req;
	struct conn *c;
	size_t len;
	char *data;
};

static void conn_read_start(struct conn *c);
static void conn_close_handles(struct conn *c);
static void conn_timer_cb(uv_timer_t *t);
static int conn_encrypt(struct conn *c);

static void conn_emit(struct conn *c, int ev)
{
	if (!c->closed)
		c->ops->event(c, ev, c->arg);
}

static void conn_fail(struct conn *c, int err, const char *text)
{
	if (c->closing)
		return;
	c->err = err;
	c->errtext = text;
	conn_emit(c, CONN_EV_ERROR);
}

/*
 * A failure found inside a call from the owner (conn_flush): report it from
 * the loop, through the connection's own timer at 0 ms, so the owner never
 * sees CONN_EV_ERROR in the middle of its own code (it would end the session
 * under its feet).  The caller gets the code now.
 */
static int conn_fail_soon(struct conn *c, int err, const char *text)
{
	if (c->closing)
		return err;
	if (!c->err) {
		c->err = err;
		c->errtext = text;
	}
	c->err_pending = 1;
	uv_timer_start(&c->timer, conn_timer_cb, 0, 0);
	return err;
}

struct conn *conn_new(uv_loop_t *loop, const struct conn_ops *ops, void *arg, size_t in_limit)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ops = ops;
	c->arg = arg;
	rl_buf_init(&c->in, in_limit);
	/*
	 * The plaintext may carry a password's base64 (AUTH): growing,
	 * consuming, resetting (STARTTLS drops pipelined input) and freeing it
	 * leave no copy behind.
	 */
	rl_buf_set_secret(&c->in);
	rl_buf_init(&c->cin, CONN_CIPHER_LIMIT);
	rl_buf_init(&c->out, CONN_OUT_LIMIT);
	rl_buf_init(&c->pout, CONN_OUT_LIMIT);
	uv_tcp_init(loop, &c->tcp);
	uv_timer_init(loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	return c;
}

int conn_accept(struct conn *c, uv_stream_t *server)
{
	int rc = uv_accept(server, (uv_stream_t *)&c->tcp);

	if (rc < 0)
		return rc;
	/* Replies must not wait behind Nagle for a delayed ACK. */
	uv_tcp_nodelay(&c->tcp, 1);
	conn_read_start(c);
	return 0;
}

static void conn_connect_cb(uv_connect_t *req, int status)
{
	struct conn_creq *r = (struct conn_creq *)req;
	struct conn *c = r->c;

	free(r);
	if (c->closed || c->closing)
		return;
	if (status < 0) {
		conn_fail(c, status, uv_strerror(status));
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	conn_read_start(c);
	conn_emit(c, CONN_EV_CONNECTED);
}

int conn_connect(struct conn *c, const struct sockaddr *sa)
{
	struct conn_creq *r = malloc(sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	r->c = c;
	rc = uv_tcp_connect(&r->req, &c->tcp, sa, conn_connect_cb);
	if (rc < 0)
		free(r);
	return rc;
}

int conn_peer(struct conn *c, struct sockaddr_storage *ss)
{
	int len = sizeof(*ss);

	return uv_tcp_getpeername(&c->tcp, (struct sockaddr *)ss, &len);
}

int conn_local(struct conn *c, struct sockaddr_storage *ss)
{
	int len = sizeof(*ss);

	return uv_tcp_getsockname(&c->tcp, (struct sockaddr *)ss, &len);
}

struct rl_buf *conn_in(struct conn *c)
{
	return &c->in;
}

/* --- reading ------------------------------------------------------------ */

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	struct rl_buf *b = c->tls_state == CONN_TLS_OFF ? &c->in : &c->cin;
	size_t avail = 0;
	char *p = rl_buf_space(b, CONN_READ_CHUNK, &avail);

	(void)suggested;
	/* A zero-length buffer makes libuv report UV_ENOBUFS: input is full. */
	*buf = uv_buf_init(p, p ? (unsigned)avail : 0);
}

/*
 * Decrypt what GnuTLS can from the ciphertext queue into the input buffer.
 * GNUTLS_E_AGAIN means "no more data" only when GnuTLS actually ran out of
 * ciphertext; after a post-handshake message (a TLS 1.3 session ticket) it
 * also returns GNUTLS_E_AGAIN with the next records already buffered inside,
 * and stopping there would leave a reply unread until the peer sends more.
 */
static int conn_tls_recv(struct conn *c)
{
	for (int spins = 0; spins < 64;) {
		size_t avail = 0;
		char *p = rl_buf_space(&c->in, CONN_READ_CHUNK, &avail);
		ssize_t n;

		if (!p)
			return RL_ETOOBIG;
		c->starved = 0;
		n = gnutls_record_recv(c->tls, p, avail);
		if (n > 0) {
			rl_buf_commit(&c->in, (size_t)n);
			continue;
		}
		if (n == 0)
			return UV_EOF;
		if ((n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) && c->starved)
			return 0;
		if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED && gnutls_error_is_fatal((int)n))
			return RL_ETLS;
		spins++;
	}
	return 0;
}

static void conn_tls_handshake(struct conn *c)
{
	int rc = gnutls_handshake(c->tls);

	conn_flush(c);
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
		return;
	if (rc < 0) {
		conn_fail(c, RL_ETLS, gnutls_strerror(rc));
		return;
	}
	c->tls_state = CONN_TLS_ON;
	conn_emit(c, CONN_EV_TLS_READY);
}

static void conn_read_tls(struct conn *c)
{
	int rc;

	if (c->tls_state == CONN_TLS_HANDSHAKE) {
		conn_tls_handshake(c);
		if (c->tls_state != CONN_TLS_ON || c->closing)
			return;
	}
	rc = conn_tls_recv(c);
	if (c->in.len > 0)
		conn_emit(c, CONN_EV_READABLE);
	if (rc == UV_EOF)
		conn_emit(c, CONN_EV_EOF);
	else if (rc == RL_ETOOBIG)
		conn_fail(c, rc, "input buffer full");
	else if (rc < 0)
		conn_fail(c, rc, "TLS record error");
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf;
	if (c->closing)
		return;
	if (nread == UV_EOF) {
		conn_emit(c, CONN_EV_EOF);
		return;
	}
	if (nread == UV_ENOBUFS) {
		conn_fail(c, RL_ETOOBIG, "input buffer full");
		return;
	}
	if (nread < 0) {
		conn_fail(c, (int)nread, uv_strerror((int)nread));
		return;
	}
	if (nread == 0)
		return;
	if (c->tls_state == CONN_TLS_OFF) {
		rl_buf_commit(&c->in, (size_t)nread);
		conn_emit(c, CONN_EV_READABLE);
		return;
	}
	rl_buf_commit(&c->cin, (size_t)nread);
	conn_read_tls(c);
}

static void conn_read_start(struct conn *c)
{
	if (c->reading || c->paused || c->closing)
		return;
	if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) == 0)
		c->reading = 1;
}

void conn_pause(struct conn *c)
{
	c->paused = 1;
	if (c->reading)
		uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = 0;
}

void conn_resume(struct conn *c)
{
	c->paused = 0;
	conn_read_start(c);
}

/* --- writing ------------------------------------------------------------ */

static void conn_write_cb(uv_write_t *req, int status)
{
	struct conn_wreq *w = (struct conn_wreq *)req;
	struct conn *c = w->c;

	c->writes--;
	c->inflight -= w->len;
	free(w->data);
	free(w);
	if (c->closed)
		return;
	if (status < 0 && !c->closing) {
		conn_fail(c, status, uv_strerror(status));
		return;
	}
	if (c->writes == 0 && c->out.len == 0) {
		if (c->closing)
			conn_close_handles(c);
		else
			conn_emit(c, CONN_EV_DRAINED);
	}
}

int conn_flush(struct conn *c)
{
	struct conn_wreq *w;
	uv_buf_t buf;
	int rc;

	if (c->closed)
		return RL_EPROTO;
	if (c->err)
		return c->err;
	if (c->pout.len && conn_encrypt(c) < 0)
		return conn_fail_soon(c, RL_ETLS, "TLS record error");
	if (c->out.len == 0)
		return 0;
	w = malloc(sizeof(*w));
	if (!w)
		return conn_fail_soon(c, -ENOMEM, "out of memory");
	w->c = c;
	w->data = rl_buf_take(&c->out, &w->len);
	buf = uv_buf_init(w->data, (unsigned)w->len);
	rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, conn_write_cb);
	if (rc < 0) {
		free(w->data);
		free(w);
		return conn_fail_soon(c, rc, uv_strerror(rc));
	}
	c->writes++;
	c->inflight += w->len;
	return 0;
}

size_t conn_pending(const struct conn *c)
{
	return c->pout.len + c->out.len + c->inflight;
}

int conn_write(struct conn *c, const void *p, size_t n)
{
	if (c->closed)
		return RL_EPROTO;
	/* After a failure (a reset, a failed write) nothing reaches the peer. */
	if (c->err)
		return c->err;
	/*
	 * During the handshake c->out carries handshake records: plaintext
	 * appended there would reach the peer in the clear, mixed into the
	 * handshake.  Holding it until the handshake ends is no better: it
	 * would be the first thing sent under TLS, ahead of anything the peer
	 * asks for there, where both sides start afresh (RFC 3207 4.2).  So
	 * the bytes are refused and dropped, and the caller is told.
	 */
	if (c->tls_state == CONN_TLS_HANDSHAKE)
		return RL_EPROTO;
	/*
	 * A peer that never reads must not make us buffer without bound:
	 * everything queued or in flight counts, not just one flush's worth.
	 */
	if (n > CONN_PENDING_MAX || conn_pending(c) > CONN_PENDING_MAX - n)
		return RL_ETOOBIG;
	/* With TLS, replies gather and are encrypted together at the flush. */
	return rl_buf_append(c->tls_state == CONN_TLS_ON ? &c->pout : &c->out, p, n);
}

/* Encrypt the gathered plaintext; our push callback never blocks. */
static int conn_encrypt(struct conn *c)
{
	size_t off = 0;

	while (off < c->pout.len) {
		ssize_t k = gnutls_record_send(c->tls, c->pout.data + off, c->pout.len - off);

		if (k < 0 && gnutls_error_is_fatal((int)k))
			return RL_ETLS;
		if (k > 0)
			off += (size_t)k;
	}
	rl_buf_reset(&c->pout);
	return 0;
}

int conn_printf(struct conn *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return RL_ETOOBIG;
	return conn_write(c, line, (size_t)n);
}

/* --- TLS ---------------------------------------------------------------- */

static ssize_t conn_tls_push(gnutls_transport_ptr_t ptr, const void *p, size_t n)
{
	struct conn *c = ptr;

	if (rl_buf_append(&c->out, p, n) < 0) {
		gnutls_transport_set_errno(c->tls, ENOMEM);
		return -1;
	}
	return (ssize_t)n;
}

static ssize_t conn_tls_pull(gnutls_transport_ptr_t ptr, void *p, size_t n)
{
	struct conn *c = ptr;

	if (c->cin.len == 0) {
		c->starved = 1;
		gnutls_transport_set_errno(c->tls, EAGAIN);
		return -1;
	}
	if (n > c->cin.len)
		n = c->cin.len;
	memcpy(p, c->cin.data, n);
	rl_buf_consume(&c->cin, n);
	return (ssize_t)n;
}

int conn_tls_server(struct conn *c, gnutls_certificate_credentials_t cred,
		    gnutls_priority_t prio)
{
	int rc;

	RL_REQUIRE(c->tls_state == CONN_TLS_OFF);
	rl_buf_reset(&c->in);
	rc = gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (rc < 0)
		return RL_ETLS;
	if (gnutls_priority_set(c->tls, prio) < 0 ||
	    gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, cred) < 0)
		return RL_ETLS;
	gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_IGNORE);
	gnutls_transport_set_ptr(c->tls, c);
	gnutls_transport_set_push_function(c->tls, conn_tls_push);
	gnutls_transport_set_pull_function(c->tls, conn_tls_pull);
	c->tls_state = CONN_TLS_HANDSHAKE;
	return 0;
}

void conn_tls_ask_cert(struct conn *c)
{
	RL_REQUIRE(c->tls_state == CONN_TLS_HANDSHAKE && c->tls);
	gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_REQUEST);
	/*
	 * The credentials hold no trust anchors, so the CertificateRequest
	 * names no CA: clients send the certificate they have (Postfix does the
	 * same unless told otherwise), and one listed by digest may come from
	 * any issuer.
	 */
}

int conn_tls_client(struct conn *c, gnutls_certificate_credentials_t cred,
		    gnutls_priority_t prio, const char *servername)
{
	int rc;

	RL_REQUIRE(c->tls_state == CONN_TLS_OFF);
	rl_buf_reset(&c->in);
	rc = gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (rc < 0)
		return RL_ETLS;
	if (gnutls_priority_set(c->tls, prio) < 0 ||
	    gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, cred) < 0)
		return RL_ETLS;
	if (servername && gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, servername,
						 strlen(servername)) < 0)
		return RL_ETLS;
	gnutls_transport_set_ptr(c->tls, c);
	gnutls_transport_set_push_function(c->tls, conn_tls_push);
	gnutls_transport_set_pull_function(c->tls, conn_tls_pull);
	c->tls_state = CONN_TLS_HANDSHAKE;
	/* The client speaks first: send the ClientHello now. */
	conn_tls_handshake(c);
	return 0;
}

gnutls_session_t conn_tls_session(const struct conn *c)
{
	return c->tls_state == CONN_TLS_ON ? c->tls : NULL;
}

int conn_tls_active(const struct conn *c)
{
	return c->tls_state == CONN_TLS_ON;
}

void conn_tls_summary(const struct conn *c, char *out, size_t size)
{
	const char *proto, *suite;
	unsigned bits;

	out[0] = '\0';
	if (c->tls_state != CONN_TLS_ON)
		return;
	proto = gnutls_protocol_get_name(gnutls_protocol_get_version(c->tls));
	suite = gnutls_ciphersuite_get(c->tls);
	bits = (unsigned)gnutls_cipher_get_key_size(gnutls_cipher_get(c->tls)) * 8;
	/* Postfix spells versions "TLSv1.3"; GnuTLS says "TLS1.3". */
	if (proto && strncmp(proto, "TLS", 3) == 0)
		snprintf(out, size, "TLSv%s with cipher %s (%u/%u bits)", proto + 3,
			 suite ? suite : "unknown", bits, bits);
	else
		snprintf(out, size, "%s with cipher %s (%u/%u bits)", proto ? proto : "unknown",
			 suite ? suite : "unknown", bits, bits);
}

/* --- timer, errors, closing -------------------------------------------- */

static void conn_timer_cb(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->closing)
		conn_close_handles(c); /* the drain deadline passed */
	else if (c->err_pending)
		conn_emit(c, CONN_EV_ERROR);
	else
		conn_emit(c, CONN_EV_TIMEOUT);
}

void conn_set_timeout(struct conn *c, uint64_t ms)
{
	/* A pending CONN_EV_ERROR keeps the timer (conn_fail_soon). */
	if (c->closing || c->err_pending)
		return;
	if (ms == 0)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, conn_timer_cb, ms, 0);
}

int conn_error(const struct conn *c, const char **text)
{
	if (text)
		*text = c->errtext ? c->errtext : "no error";
	return c->err;
}

static void conn_close_cb(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->pending_closes > 0)
		return;
	c->ops->event(c, CONN_EV_CLOSED, c->arg);
	if (c->tls)
		gnutls_deinit(c->tls);
	rl_buf_fini(&c->in);
	rl_buf_fini(&c->cin);
	rl_buf_fini(&c->out);
	rl_buf_fini(&c->pout);
	free(c);
}

static void conn_close_handles(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = 1;
	c->closing = 1;
	c->pending_closes = 2;
	uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
	uv_close((uv_handle_t *)&c->timer, conn_close_cb);
}

void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	conn_pause(c);
	conn_flush(c);
	if (c->writes == 0) {
		conn_close_handles(c);
		return;
	}
	/* Let the last reply (a 221 or 421) reach the peer, within a bound. */
	uv_timer_start(&c->timer, conn_timer_cb, CONN_DRAIN_MS, 0);
}

void conn_abort(struct conn *c)
{
	c->closing = 1;
	conn_pause(c);
	conn_close_handles(c);
}

int conn_closing(const struct conn *c)
{
	return c->closing;
}
