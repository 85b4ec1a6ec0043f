/*
 * conn: one TCP connection on the libuv loop, optionally wrapped in TLS.
 *
 * The connection owns its uv_tcp_t, its timer and its gnutls_session_t.
 * GnuTLS reads and writes through in-memory queues (push/pull callbacks): the
 * uv read callback fills the ciphertext queue, and GnuTLS's output is
 * collected and handed to uv_write.  The owner sees plaintext only, through
 * one callback with a small set of events, and an input buffer it consumes.
 *
 * Lifetime: conn_close() is idempotent; it flushes what is queued (bounded
 * by a short timer), closes the handles, delivers CONN_EV_CLOSED as the very
 * last event and then frees the connection.  Events are never delivered
 * after CONN_EV_CLOSED, and a connection is never freed inside one of its
 * own callbacks.  Loop thread only.
 */
#ifndef CONN_H
#define CONN_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>
#include <uv.h>

#include "rl.h"

struct conn;

enum conn_event {
	CONN_EV_CONNECTED, /* outbound connect finished */
	CONN_EV_TLS_READY, /* handshake finished */
	CONN_EV_READABLE,  /* new plaintext in conn_in() */
	CONN_EV_DRAINED,   /* every queued byte was written */
	CONN_EV_TIMEOUT,   /* the timer of conn_set_timeout() fired */
	CONN_EV_EOF,       /* the peer closed its side */
	CONN_EV_ERROR,     /* I/O or TLS failure; conn_error() says which */
	CONN_EV_CLOSED,    /* last event: the connection is gone after it */
};

struct conn_ops {
	void (*event)(struct conn *c, int event, void *arg);
};

/*
 * A new, unconnected connection.  in_limit bounds the plaintext input
 * buffer; a peer that sends more without the owner consuming it gets an
 * error.  ops and arg are borrowed for the connection's whole life.
 */
struct conn *conn_new(uv_loop_t *loop, const struct conn_ops *ops, void *arg,
		      size_t in_limit);

/* Accept a pending connection on server and start reading. */
int conn_accept(struct conn *c, uv_stream_t *server) RL_WUR;

/*
 * Connect to sa (sockaddr_in/_in6) and start reading once connected;
 * CONN_EV_CONNECTED or CONN_EV_ERROR follows.  The caller arms a timeout.
 */
int conn_connect(struct conn *c, const struct sockaddr *sa) RL_WUR;

/* The peer's and our own address. */
int conn_peer(struct conn *c, struct sockaddr_storage *ss) RL_WUR;
int conn_local(struct conn *c, struct sockaddr_storage *ss) RL_WUR;

/*
 * Received plaintext not yet consumed; the owner calls rl_buf_consume().
 * It is a secret buffer (rl_buf_set_secret): consuming, growing, the reset
 * at STARTTLS and the free at close leave no copy of it in memory.
 */
struct rl_buf *conn_in(struct conn *c);

/*
 * Most bytes a connection holds for its peer, queued or in flight, so that
 * a peer that never reads cannot make us buffer without bound.  Owners keep
 * their own high-water mark far below it (stop producing, wait for
 * CONN_EV_DRAINED): smtpd at 256 KiB of replies, smtpc at 256 KiB of
 * content.  It is this large for the biggest burst that must still fit in
 * one go, an outbound pipelined RCPT group (RFC 2920), whose recipient
 * count only the message limits.
 */
#define CONN_PENDING_MAX (64u * 1024 * 1024)

/*
 * Queue bytes for the peer (encrypted when TLS is up); sent by conn_flush().
 * The bytes are copied.  Returns 0, or:
 *   RL_ETOOBIG  conn_pending() would pass CONN_PENDING_MAX; nothing queued.
 *   RL_EPROTO   the connection is closed, or a TLS handshake is in progress
 *               (between conn_tls_server/_client and CONN_EV_TLS_READY):
 *               the bytes are refused and dropped, never sent in the clear
 *               inside the handshake nor held to go out after it.
 *   other       the connection already failed (conn_error()'s code, e.g.
 *               UV_ECONNRESET): nothing more can reach the peer.
 * The caller usually ends the session on an error.
 */
int conn_write(struct conn *c, const void *p, size_t n) RL_WUR;
int conn_printf(struct conn *c, const char *fmt, ...) RL_PRINTF(2, 3) RL_WUR;
/*
 * Start writing everything queued.  Returns 0, or the error (as in
 * conn_error()) when the bytes cannot be handed to the socket at all; the
 * owner then also gets CONN_EV_ERROR, from the loop, never from inside this
 * call.  A write that fails later (the peer reset the connection: its
 * uv_write callback reports the error) is CONN_EV_ERROR as soon as the
 * loop learns of it, so the owner never waits for a timeout to notice.
 */
int conn_flush(struct conn *c);
/* Bytes queued or in flight; CONN_EV_DRAINED follows when it reaches 0. */
size_t conn_pending(const struct conn *c);

/* Stop and restart reading from the socket (back-pressure). */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);

/*
 * Start a server-side TLS handshake.  Plaintext input not yet consumed is
 * discarded first: a client must not pipeline across STARTTLS (RFC 3207 4.2,
 * command injection).  cred and prio are borrowed and must outlive c.
 * CONN_EV_TLS_READY or CONN_EV_ERROR follows.
 */
int conn_tls_server(struct conn *c, gnutls_certificate_credentials_t cred,
		    gnutls_priority_t prio) RL_WUR;
/*
 * Ask the client for a certificate in the handshake conn_tls_server() just
 * started (GnuTLS GNUTLS_CERT_REQUEST: asked, not required; no CA names are
 * sent).  Without this call no certificate is ever requested.  What the
 * client presented is read from conn_tls_session() after CONN_EV_TLS_READY.
 */
void conn_tls_ask_cert(struct conn *c);
/*
 * Start a client-side TLS handshake (after the 220 reply to STARTTLS).
 * servername (may be NULL) is sent as SNI.  Any plaintext the server sent
 * after its 220 reply is discarded (RFC 3207 5: it cannot be trusted).
 */
int conn_tls_client(struct conn *c, gnutls_certificate_credentials_t cred,
		    gnutls_priority_t prio, const char *servername) RL_WUR;
int conn_tls_active(const struct conn *c);
/* The GnuTLS session for peer-certificate checks; NULL before TLS. */
gnutls_session_t conn_tls_session(const struct conn *c);
/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"; "" if none. */
void conn_tls_summary(const struct conn *c, char *out, size_t size);

/* (Re)arm the connection's timer; 0 stops it.  CONN_EV_TIMEOUT on expiry. */
void conn_set_timeout(struct conn *c, uint64_t ms);

/* Last error: a negative rl code or negated errno, and a static text. */
int conn_error(const struct conn *c, const char **text);

/* Flush what is queued, then close; CONN_EV_CLOSED follows.  Idempotent. */
void conn_close(struct conn *c);
/* Close at once, dropping queued output. */
void conn_abort(struct conn *c);
int conn_closing(const struct conn *c);

#endif
