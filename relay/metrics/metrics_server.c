/*
 * metrics_server: the HTTP/1.1 responder of the metrics endpoint, on the
 * relay's loop.
 *
 * One request per connection: the head is read into a fixed buffer of
 * METRICS_REQ_MAX bytes and handed to metrics_req_parse(); the answer
 * carries "Connection: close", and after it the server shuts its side
 * down and reads on, dropping the bytes, until the client closes or the
 * timer fires.  Closing at once with unread bytes in the socket would
 * send a reset that can destroy the answer before the client reads it
 * (the lingering close of RFC 9112 section 9.6).  A client that sends
 * nothing complete within METRICS_REQ_MS is cut off without an answer.
 *
 * The queue is read for a scrape in one read transaction (queue_summary,
 * a pass over the envelopes' heads), at most once per METRICS_CACHE_MS.
 * That pass costs about 0.35 s per million messages, so it runs on a
 * libuv pool thread (uv_queue_work), never on the loop: a scrape must not
 * stall SMTP and delivery, and anyone who reaches metrics_listen could
 * otherwise do so once a second.  The read transaction begins and ends
 * inside the work callback, on one thread, as queue.h asks; the queue's
 * environment is opened with MDB_NOTLS, so a read transaction is not tied
 * to a thread's slot and a pool thread may hold one while the loop and the
 * committer's thread hold theirs (LMDB readers never block the writer).
 * One scan at a time: a scrape that finds the last read too old waits for
 * the scan in flight, or starts one; all waiting scrapes are answered from
 * the after-work callback, on the loop.  A client that goes away meanwhile
 * is closed and freed as usual; the scan's result lives in the server,
 * never in a connection, and the server is freed only once no scan runs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

#define METRICS_LINGER_MS 1000	       /* after the answer, for the client's FIN */
#define METRICS_BODY_MAX  (256 * 1024) /* far more than the families need */
#define METRICS_WAIT_MS	  30000	       /* the most a scrape waits for a queue scan */

struct metrics_conn {
	struct metrics_server *srv;
	struct metrics_conn *prev, *next;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wr;
	uv_shutdown_t sh;
	char buf[METRICS_REQ_MAX];
	size_t len;
	struct rl_buf out;
	int answered;
	int waiting; /* for the queue scan in flight */
	int closing;
	int open_handles; /* freed when both handles are closed */
};

struct metrics_server {
	uv_loop_t *loop;
	uv_tcp_t listen;
	struct queue *q;
	const struct metrics_counts *counts;
	uint64_t (*smtpd_connections)(void *arg);
	void *arg;
	struct metrics_conn *conns;
	unsigned nconn;
	int stopping;
	int listen_open;
	/* The last queue read and when (uv_now), valid when have_summary. */
	struct queue_summary summary;
	uint64_t summary_at;
	int have_summary;
	/* The scan off the loop: scan and scan_rc belong to the pool thread
	 * while scanning is set, to the loop otherwise. */
	uv_work_t work;
	int scanning;
	struct queue_summary scan;
	int scan_rc;
};

static void server_maybe_free(struct metrics_server *s)
{
	if (s->stopping && !s->listen_open && s->conns == NULL && !s->scanning)
		free(s);
}

static void conn_on_close(uv_handle_t *h)
{
	struct metrics_conn *c = h->data;
	struct metrics_server *s = c->srv;

	if (--c->open_handles > 0)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconn--;
	rl_buf_fini(&c->out);
	free(c);
	server_maybe_free(s);
}

static void conn_close(struct metrics_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	uv_close((uv_handle_t *)&c->tcp, conn_on_close);
	uv_close((uv_handle_t *)&c->timer, conn_on_close);
}

static void conn_on_timer(uv_timer_t *t)
{
	conn_close(t->data);
}

static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
	struct metrics_conn *c = req->data;

	if (status < 0)
		conn_close(c);
}

static void conn_on_write(uv_write_t *req, int status)
{
	struct metrics_conn *c = req->data;

	if (c->closing)
		return;
	if (status < 0 || uv_shutdown(&c->sh, (uv_stream_t *)&c->tcp, conn_on_shutdown) < 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, conn_on_timer, METRICS_LINGER_MS, 0);
}

/* Whether the last queue read may still be served. */
static int server_fresh(const struct metrics_server *s)
{
	return s->have_summary && uv_now(s->loop) - s->summary_at < METRICS_CACHE_MS;
}

/* On a pool thread: one read transaction, begun and ended here. */
static void server_scan_work(uv_work_t *w)
{
	struct metrics_server *s = w->data;
	struct queue_txn *t;
	int rc = queue_txn_begin(s->q, 0, &t);

	if (rc == 0) {
		rc = queue_summary(t, &s->scan);
		queue_txn_abort(t);
	}
	s->scan_rc = rc;
}

static void conn_reply(struct metrics_conn *c, int status);

/* Back on the loop: keep the result and answer every scrape that waited. */
static void server_scan_after(uv_work_t *w, int status)
{
	struct metrics_server *s = w->data;

	s->scanning = 0;
	if (status < 0)
		s->scan_rc = status;
	if (s->scan_rc < 0) {
		log_warn("metrics: cannot read the queue: %s", rl_strerror(s->scan_rc));
		s->have_summary = 0;
	} else {
		s->summary = s->scan;
		s->summary_at = uv_now(s->loop);
		s->have_summary = 1;
	}
	/* conn_reply() may close a connection, which only unlinks it in the
	 * close callback, on a later loop turn: the list stays intact here. */
	for (struct metrics_conn *c = s->conns; c && !s->stopping; c = c->next) {
		if (c->waiting && !c->closing) {
			c->waiting = 0;
			conn_reply(c, s->scan_rc < 0 ? 500 : 200);
		}
	}
	server_maybe_free(s);
}

/* Start the scan unless one runs; RL or libuv code when it cannot start. */
static int server_scan_start(struct metrics_server *s)
{
	int rc;

	if (s->scanning)
		return 0;
	if (!s->q)
		return -EAGAIN;
	s->work.data = s;
	rc = uv_queue_work(s->loop, &s->work, server_scan_work, server_scan_after);
	if (rc == 0)
		s->scanning = 1;
	return rc;
}

static const char *status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 505:
		return "HTTP Version Not Supported";
	case 500:
		return "Internal Server Error";
	default:
		return "Bad Request";
	}
}

/* The body of a 200 from the last queue read; any failure makes it a 500. */
static int conn_body(struct metrics_conn *c, struct rl_buf *body)
{
	struct metrics_server *s = c->srv;
	struct metrics_gauges g = {0};

	if (!s->have_summary)
		return 500;
	g.q = s->summary;
	g.now = (int64_t)time(NULL);
	g.smtpd_connections = s->smtpd_connections ? s->smtpd_connections(s->arg) : 0;
	if (metrics_format(body, s->counts, &g) < 0)
		return 500;
	return 200;
}

/* Write the answer; for a 200 the last queue read must be in s->summary. */
static void conn_reply(struct metrics_conn *c, int status)
{
	struct rl_buf body;
	uv_buf_t b;
	int rc;

	rl_buf_init(&body, METRICS_BODY_MAX);
	if (status == 200)
		status = conn_body(c, &body);
	if (status != 200) {
		rl_buf_reset(&body);
		if (rl_buf_printf(&body, "%d %s\n", status, status_text(status)) < 0)
			rl_buf_reset(&body);
	}
	rc = rl_buf_printf(&c->out,
			   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			   "%sConnection: close\r\n\r\n",
			   status, status_text(status),
			   status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
					 : "text/plain; charset=utf-8",
			   body.len, status == 405 ? "Allow: GET\r\n" : "");
	if (rc == 0)
		rc = rl_buf_append(&c->out, body.data, body.len);
	rl_buf_fini(&body);
	b = uv_buf_init(c->out.data, (unsigned)c->out.len);
	if (rc < 0 || uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, conn_on_write) < 0)
		conn_close(c);
}

/*
 * A complete request: answer now, or, for a scrape when the last queue
 * read is too old, wait for a scan (at most METRICS_WAIT_MS).
 */
static void conn_answer(struct metrics_conn *c, int status)
{
	struct metrics_server *s = c->srv;

	c->answered = 1;
	if (status != 200 || server_fresh(s)) {
		conn_reply(c, status);
		return;
	}
	if (server_scan_start(s) < 0) {
		conn_reply(c, 500);
		return;
	}
	c->waiting = 1;
	uv_timer_start(&c->timer, conn_on_timer, METRICS_WAIT_MS, 0);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct metrics_conn *c = h->data;

	(void)hint;
	/* Once answered, whatever comes is read into the whole buffer and dropped. */
	if (c->answered)
		*b = uv_buf_init(c->buf, sizeof(c->buf));
	else
		*b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void conn_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct metrics_conn *c = st->data;
	struct metrics_req r;
	int rc;

	(void)b;
	if (c->closing)
		return;
	if (n < 0) {
		conn_close(c);
		return;
	}
	if (n == 0 || c->answered)
		return;
	c->len += (size_t)n;
	rc = metrics_req_parse(c->buf, c->len, &r, NULL);
	if (rc > 0)
		conn_answer(c, r.status);
}

static void server_on_connection(uv_stream_t *l, int status)
{
	struct metrics_server *s = l->data;
	struct metrics_conn *c;

	if (status < 0 || s->stopping) {
		if (status < 0)
			log_warn("metrics: accept: %s", uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return; /* the kernel keeps it in the backlog; we try with the next */
	c->srv = s;
	rl_buf_init(&c->out, METRICS_BODY_MAX + 1024);
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->tcp.data = c->timer.data = c->wr.data = c->sh.data = c;
	c->open_handles = 2;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconn++;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0 || s->nconn > METRICS_CONN_MAX) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, conn_on_timer, METRICS_REQ_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read) < 0)
		conn_close(c);
}

void metrics_server_queue_adopt(struct metrics_server *s, struct queue *q)
{
	if (s)
		s->q = q;
}

int metrics_server_start(const struct metrics_params *p, struct metrics_server **out)
{
	struct metrics_server *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->loop = p->loop;
	s->q = p->q;
	s->counts = p->counts;
	s->smtpd_connections = p->smtpd_connections;
	s->arg = p->arg;
	uv_tcp_init(s->loop, &s->listen);
	s->listen.data = s;
	s->listen_open = 1;
	rc = uv_tcp_bind(&s->listen, p->addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->listen, 64, server_on_connection);
	if (rc < 0) {
		metrics_server_stop(s);
		return rc;
	}
	*out = s;
	return 0;
}

static void server_on_listen_close(uv_handle_t *h)
{
	struct metrics_server *s = h->data;

	s->listen_open = 0;
	server_maybe_free(s);
}

void metrics_server_stop(struct metrics_server *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = 1;
	for (struct metrics_conn *c = s->conns; c; c = c->next)
		conn_close(c);
	uv_close((uv_handle_t *)&s->listen, server_on_listen_close);
}
