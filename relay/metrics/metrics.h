/*
 * metrics: the Prometheus endpoint of `serve` (INTERFACE.md, "Metrics").
 *
 * - The counts (metrics_count.c): a plain struct the daemon owns and lends
 *   to delivery (qmgr_params), so that it lives as long as the process and
 *   a SIGHUP, which rebuilds no part of it, keeps the counts.  Loop thread
 *   only.  Every counting function takes NULL as "not counting".
 * - The request parser (metrics_parse.c): a pure function over the bytes
 *   a client sent, bounded by METRICS_REQ_MAX.
 * - The exposition (metrics_fmt.c): the text format 0.0.4 of the counts
 *   and of the gauges read at scrape time.  Pure.
 * - The server (metrics_server.c): a minimal HTTP/1.1 responder on the
 *   loop: GET /metrics only, one request per connection, at most
 *   METRICS_REQ_MAX bytes of request head and METRICS_REQ_MS to send it,
 *   at most METRICS_CONN_MAX connections at once.
 *
 * Errors are negative codes (rl.h).  Strings passed in are borrowed.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "queue.h"
#include "rl.h"

/* --- counts -------------------------------------------------------------- */

enum metrics_status { METRICS_SENT, METRICS_DEFERRED, METRICS_BOUNCED, METRICS_STATUS_N };
/* The TLS words of the delivery line, in the order of queue_posture_tls_index(). */
#define METRICS_TLS_N 7

/* How an inbound session came to be allowed to relay ("Who may relay"). */
enum metrics_allowed {
	METRICS_ALLOWED_NETWORK = 0, /* its address is in mynetworks */
	METRICS_ALLOWED_CERTIFICATE, /* a client certificate (relay_clientcerts, relay_client_ca_file) */
	METRICS_ALLOWED_AUTH,	     /* SMTP AUTH */
	METRICS_ALLOWED_N
};

struct metrics_counts {
	uint64_t deliveries[METRICS_STATUS_N][METRICS_TLS_N];
	/* Indexed by enum queue_tlsrpt_result (0 unused). */
	uint64_t tls_failures[QUEUE_TLSRPT_R_END];
	/* Inbound sessions by what allowed them to relay (pol_relay_decide),
	 * counted once each, at the first recipient accepted. */
	uint64_t smtpd_allowed[METRICS_ALLOWED_N];
	uint64_t auth_failures; /* failed AUTH attempts (535, and those cut off by 421) */
	/* Delay DSNs (delay_warning_time) queued to senders. */
	uint64_t delay_warnings;
};

/*
 * One recipient's outcome as the delivery line says it: status "sent",
 * "deferred" or "bounced", tls the line's tls= word ("none", ...,
 * "mta-sts"; NULL or unknown: none).  c NULL: nothing.
 */
void metrics_count_delivery(struct metrics_counts *c, const char *status, const char *tls);
/* One outbound session that failed with an RFC 8460 result type (enum queue_tlsrpt_result). */
void metrics_count_tls_failure(struct metrics_counts *c, int result);
/* One inbound session that may relay, by how (enum metrics_allowed). */
void metrics_count_smtpd_allowed(struct metrics_counts *c, int how);
/* One failed AUTH attempt. */
void metrics_count_auth_failure(struct metrics_counts *c);
/* One delay warning (an RFC 3464 delay DSN) queued for a message's sender. */
void metrics_count_delay_warning(struct metrics_counts *c);

/* --- the request --------------------------------------------------------- */

/* The most bytes of a request head (request line and header fields). */
#define METRICS_REQ_MAX 4096

struct metrics_req {
	int status;	    /* the answer it gets: 200, 400, 404, 405, 431 or 505 */
	const char *method; /* slices of the input; valid when status is not 400/431 */
	size_t methodlen;
	const char *path; /* the request target up to '?' */
	size_t pathlen;
	size_t used; /* bytes of the head, its blank line included */
};

/*
 * Parse what a client sent so far (RFC 9112 sections 2-5).  Returns 1 with
 * *r filled once the head is complete (a blank line seen; r->status is the
 * answer, 400 for a malformed head, 431 for one over METRICS_REQ_MAX), 0
 * when more bytes are needed (fewer than METRICS_REQ_MAX so far).  why, if
 * given, says what was wrong.  Pure: no I/O, no allocation.
 */
int metrics_req_parse(const char *buf, size_t len, struct metrics_req *r, struct rl_why *why);

/* --- the exposition ------------------------------------------------------ */

/* What is read at scrape time. */
struct metrics_gauges {
	struct queue_summary q; /* zero when the read failed */
	int64_t now;		/* epoch seconds, for the oldest message's age */
	uint64_t smtpd_connections;
};

/* The text format of c and g, appended to out. */
int metrics_format(struct rl_buf *out, const struct metrics_counts *c,
		   const struct metrics_gauges *g) RL_WUR;

/* --- the server ---------------------------------------------------------- */

#define METRICS_REQ_MS	 5000 /* a request must arrive within this, or the connection closes */
#define METRICS_CONN_MAX 16   /* connections at once; more are closed at accept */
#define METRICS_CACHE_MS 1000 /* the queue is read at most once per this */

struct metrics_server;

/* What the server needs, borrowed for its lifetime. */
struct metrics_params {
	uv_loop_t *loop;
	const struct sockaddr *addr; /* copied */
	struct queue *q;
	const struct metrics_counts *counts;
	/* Inbound sessions open now. */
	uint64_t (*smtpd_connections)(void *arg);
	void *arg;
};

/* Bind and listen; RL_... or a libuv code (negative) on failure, with *out NULL. */
int metrics_server_start(const struct metrics_params *p, struct metrics_server **out) RL_WUR;
/*
 * The queue whose gauges are served, when it opens after the bind (a relay
 * started as root binds, drops privileges, then opens the queue as its
 * user; until then p->q may be NULL, and no request is served before the
 * loop runs).  q is borrowed and kept until metrics_server_stop().
 */
void metrics_server_queue_adopt(struct metrics_server *s, struct queue *q);
/*
 * Stop listening and close every connection; the server frees itself once
 * the loop closed its handles (the loop must run on).  NULL: no-op.
 */
void metrics_server_stop(struct metrics_server *s);

#endif
