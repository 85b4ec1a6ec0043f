/*
 * test_metrics: the metrics endpoint's pure parts (relay/metrics): the
 * request head parser, the counters and the exposition text.
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "tap.h"

static void test_req(void)
{
	static const struct {
		const char *in;
		int rc;	    /* 1 complete, 0 more needed */
		int status; /* when complete */
	} cases[] = {
	    {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1, 200},
	    {"GET /metrics HTTP/1.0\r\n\r\n", 1, 200},
	    {"GET /metrics HTTP/1.1\nHost: x\n\n", 1, 200},
	    {"GET /metrics?name[]=x HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", 1, 200},
	    {"GET /metrics HTTP/1.1\r\nhOsT:x\r\nUser-Agent: Prometheus/2.45\r\n\r\n", 1, 200},
	    /* incomplete */
	    {"", 0, 0},
	    {"GET /metrics HTTP/1.1\r\nHost: x\r\n", 0, 0},
	    {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r", 0, 0},
	    /* elsewhere, other methods */
	    {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, 404},
	    {"GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n", 1, 404},
	    {"GET /Metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1, 404},
	    {"GET /other HTTP/1.1\r\nHost: x\r\n\r\n", 1, 404},
	    {"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 1, 405},
	    {"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1, 405},
	    {"get /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1, 405},
	    /* malformed */
	    {"GET /metrics HTTP/1.1\r\n\r\n", 1, 400},			     /* no Host in 1.1 */
	    {"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 1, 400}, /* two */
	    {"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", 1, 505},
	    {"GET /metrics HTTP/1.10\r\nHost: x\r\n\r\n", 1, 400},
	    {"GET /metrics http/1.1\r\nHost: x\r\n\r\n", 1, 400},
	    {"GET /metrics\r\nHost: x\r\n\r\n", 1, 400},
	    {"GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1, 400},
	    {"GET http://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1, 400},
	    {"GET /met\x01rics HTTP/1.1\r\nHost: x\r\n\r\n", 1, 400},
	    {"G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1, 400},
	    {"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 1, 400},
	    {"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", 1, 400},
	    {"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", 1, 400},
	    {"GET /metrics HTTP/1.1\r\nHost: x\ry\r\n\r\n", 1, 400},
	    {"GET /metrics HTTP/1.1\r\nHost: x\x7f\r\n\r\n", 1, 400},
	    {"\r\n\r\n", 1, 400},
	};
	struct metrics_req r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = metrics_req_parse(cases[i].in, strlen(cases[i].in), &r, NULL);

		CHECK(rc == cases[i].rc && (rc == 0 || r.status == cases[i].status),
		      "case %zu %s: got rc %d status %d want %d %d", i, cases[i].in, rc, r.status,
		      cases[i].rc, cases[i].status);
	}
	/* A NUL inside the head. */
	CHECK_INT(metrics_req_parse("GET /metrics HTTP/1.0\r\nX: \0\r\n\r\n", 31, &r, NULL), 1);
	CHECK_INT(r.status, 400);
}

/* The size bound: 431 at METRICS_REQ_MAX bytes without a blank line, or a longer head. */
static void test_req_size(void)
{
	size_t n = METRICS_REQ_MAX + 100;
	char *buf = malloc(n);
	struct metrics_req r;
	struct rl_why why = {0};
	const char *head = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ";
	size_t hl = strlen(head);

	memcpy(buf, head, hl);
	memset(buf + hl, 'a', n - hl);
	CHECK_INT(metrics_req_parse(buf, METRICS_REQ_MAX - 1, &r, NULL), 0);
	CHECK_INT(metrics_req_parse(buf, METRICS_REQ_MAX, &r, &why), 1);
	CHECK_INT(r.status, 431);
	CHECK_INT(why.code, RL_ETOOBIG);
	/* A blank line just inside the bound is fine, just outside it is not. */
	memcpy(buf + METRICS_REQ_MAX - 4, "\r\n\r\n", 4);
	CHECK_INT(metrics_req_parse(buf, METRICS_REQ_MAX, &r, NULL), 1);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.used, METRICS_REQ_MAX);
	memset(buf + hl, 'a', n - hl);
	memcpy(buf + METRICS_REQ_MAX - 3, "\r\n\r\n", 4);
	CHECK_INT(metrics_req_parse(buf, METRICS_REQ_MAX + 1, &r, NULL), 1);
	CHECK_INT(r.status, 431);
	free(buf);
}

static void test_format(void)
{
	struct metrics_counts c;
	struct metrics_gauges g = {0};
	struct rl_buf out;

	memset(&c, 0, sizeof(c));
	metrics_count_delivery(&c, "sent", "mta-sts");
	metrics_count_delivery(&c, "sent", "mta-sts");
	metrics_count_delivery(&c, "deferred", NULL);
	metrics_count_delivery(&c, "bounced", "verified");
	metrics_count_delivery(&c, "bounced", "-");
	metrics_count_delivery(NULL, "sent", "dane");
	metrics_count_tls_failure(&c, QUEUE_TLSRPT_R_STARTTLS);
	metrics_count_tls_failure(&c, 0);
	metrics_count_tls_failure(&c, QUEUE_TLSRPT_R_END);
	metrics_count_smtpd_allowed(&c, METRICS_ALLOWED_AUTH);
	metrics_count_smtpd_allowed(&c, METRICS_ALLOWED_AUTH);
	metrics_count_smtpd_allowed(&c, METRICS_ALLOWED_NETWORK);
	metrics_count_smtpd_allowed(&c, METRICS_ALLOWED_N);
	metrics_count_smtpd_allowed(NULL, METRICS_ALLOWED_AUTH);
	metrics_count_auth_failure(&c);
	metrics_count_auth_failure(NULL);
	metrics_count_delay_warning(&c);
	metrics_count_delay_warning(&c);
	metrics_count_delay_warning(NULL);
	g.q.incoming = 1;
	g.q.deferred = 2;
	g.q.hold = 3;
	g.q.active = 4;
	g.q.oldest = 1000;
	g.q.map_used = 65536;
	g.q.map_size = 1048576;
	g.now = 1042;
	g.smtpd_connections = 5;
	rl_buf_init(&out, 1 << 20);
	CHECK_INT(metrics_format(&out, &c, &g), 0);
	static const char *const want[] = {
	    "# HELP tlsrelay_queue_messages ",
	    "\n# TYPE tlsrelay_queue_messages gauge\n",
	    "\ntlsrelay_queue_messages{state=\"incoming\"} 1\n",
	    "\ntlsrelay_queue_messages{state=\"active\"} 4\n",
	    "\ntlsrelay_queue_messages{state=\"deferred\"} 2\n",
	    "\ntlsrelay_queue_messages{state=\"hold\"} 3\n",
	    "\n# TYPE tlsrelay_queue_oldest_seconds gauge\ntlsrelay_queue_oldest_seconds 42\n",
	    "\n# TYPE tlsrelay_queue_map_used_bytes gauge\ntlsrelay_queue_map_used_bytes 65536\n",
	    "\n# TYPE tlsrelay_queue_map_size_bytes gauge\ntlsrelay_queue_map_size_bytes 1048576\n",
	    "\n# TYPE tlsrelay_deliveries_total counter\n",
	    "\ntlsrelay_deliveries_total{status=\"sent\",tls=\"mta_sts\"} 2\n",
	    "\ntlsrelay_deliveries_total{status=\"sent\",tls=\"dane\"} 0\n",
	    "\ntlsrelay_deliveries_total{status=\"deferred\",tls=\"none\"} 1\n",
	    "\ntlsrelay_deliveries_total{status=\"bounced\",tls=\"verified\"} 1\n",
	    "\ntlsrelay_deliveries_total{status=\"bounced\",tls=\"none\"} 1\n",
	    "\n# TYPE tlsrelay_tls_failures_total counter\n",
	    "\ntlsrelay_tls_failures_total{reason=\"starttls-not-supported\"} 1\n",
	    "\ntlsrelay_tls_failures_total{reason=\"sts-webpki-invalid\"} 0\n",
	    "\n# TYPE tlsrelay_smtpd_connections gauge\ntlsrelay_smtpd_connections 5\n",
	    "\n# TYPE tlsrelay_smtpd_sessions_allowed_total counter\n",
	    "\ntlsrelay_smtpd_sessions_allowed_total{by=\"network\"} 1\n",
	    "\ntlsrelay_smtpd_sessions_allowed_total{by=\"certificate\"} 0\n",
	    "\ntlsrelay_smtpd_sessions_allowed_total{by=\"auth\"} 2\n",
	    "\n# TYPE tlsrelay_smtpd_auth_failures_total counter\n"
	    "tlsrelay_smtpd_auth_failures_total 1\n",
	    "\n# HELP tlsrelay_delay_warnings_total ",
	    "\n# TYPE tlsrelay_delay_warnings_total counter\ntlsrelay_delay_warnings_total 2\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK(strstr(out.data, want[i]) != NULL, "missing %s in\n%s", want[i], out.data);
	CHECK(strstr(out.data, "mta-sts") == NULL, "the log's word leaked: %s", out.data);
	CHECK(out.data[out.len - 1] == '\n', "ends with a newline");
	/* An empty queue has no age. */
	rl_buf_reset(&out);
	memset(&g.q, 0, sizeof(g.q));
	CHECK_INT(metrics_format(&out, &c, &g), 0);
	CHECK(strstr(out.data, "\ntlsrelay_queue_oldest_seconds 0\n") != NULL, "%s", out.data);
	rl_buf_fini(&out);
}

/* --- the scrape of a large queue leaves the loop free -------------------- */

#define SCAN_MSGS 300000 /* tens of ms of scan (0.35 s per million) */

struct scrape {
	uv_loop_t *loop;
	uv_tcp_t tcp;
	uv_connect_t conn;
	uv_write_t wr;
	uv_timer_t tick;
	char got[1 << 16];
	size_t len;
	int done;
	unsigned ticks; /* loop turns (1 ms timer) while the answer was awaited */
};

static void scrape_close_cb(uv_handle_t *h)
{
	(void)h;
}

static void scrape_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct scrape *sc = h->data;

	(void)hint;
	*b = uv_buf_init(sc->got + sc->len, (unsigned)(sizeof(sc->got) - 1 - sc->len));
}

static void scrape_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct scrape *sc = st->data;

	(void)b;
	if (n > 0) {
		sc->len += (size_t)n;
		return;
	}
	if (n < 0 && !sc->done) {
		sc->done = 1;
		sc->got[sc->len] = '\0';
		uv_close((uv_handle_t *)&sc->tcp, scrape_close_cb);
		uv_timer_stop(&sc->tick);
		uv_close((uv_handle_t *)&sc->tick, scrape_close_cb);
	}
}

static void scrape_on_tick(uv_timer_t *t)
{
	struct scrape *sc = t->data;

	sc->ticks++;
}

static void scrape_written(uv_write_t *w, int status)
{
	struct scrape *sc = w->data;

	CHECK_INT(status, 0);
	/* From here until the answer, count the loop's timer turns. */
	uv_timer_start(&sc->tick, scrape_on_tick, 1, 1);
}

static void scrape_connected(uv_connect_t *c, int status)
{
	static char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	struct scrape *sc = c->data;
	uv_buf_t b = uv_buf_init(req, sizeof(req) - 1);

	CHECK_INT(status, 0);
	uv_read_start((uv_stream_t *)&sc->tcp, scrape_alloc, scrape_read);
	CHECK_INT(uv_write(&sc->wr, (uv_stream_t *)&sc->tcp, &b, 1, scrape_written), 0);
}

static int fill_queue(struct queue *q)
{
	char rcpt_addr[] = "r@example.test", sender[] = "s@example.test";
	struct queue_rcpt r = {.address = rcpt_addr};
	int rc = 0;

	for (int batch = 0; batch < SCAN_MSGS / 10000 && rc == 0; batch++) {
		struct queue_txn *t;

		rc = queue_txn_begin(q, 1, &t);
		for (int i = 0; i < 10000 && rc == 0; i++) {
			struct queue_msg m = {
			    .sender = sender, .arrival = 1000, .nrcpt = 1, .rcpt = &r, .size = 3};

			rc = queue_msg_insert(t, &m, "x\r\n", 3);
		}
		if (rc == 0)
			rc = queue_txn_commit(t);
		else
			queue_txn_abort(t);
	}
	return rc;
}

/* The queue directory: LMDB's files, no subdirectories. */
static void rm_flat(const char *dir)
{
	char sub[512];
	struct dirent *e;
	DIR *d = opendir(dir);

	while (d && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		unlink(sub);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* A port on 127.0.0.1 that was free a moment ago. */
static int free_port(struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	     getsockname(fd, (struct sockaddr *)sa, &len) < 0;
	if (fd >= 0)
		close(fd);
	return rc ? -errno : 0;
}

/*
 * The queue scan of a scrape runs off the loop: while a scrape of a queue
 * of SCAN_MSGS messages is answered, a 1 ms timer keeps firing.  Scanning
 * on the loop (as before) lets it fire once at most, after the scan.
 */
static void test_scan_off_loop(void)
{
	char dir[] = "/tmp/test_metrics.XXXXXX", want[80];
	struct metrics_counts counts = {0};
	struct sockaddr_in sa;
	struct metrics_params p = {0};
	struct metrics_server *srv = NULL;
	struct queue *q = NULL;
	struct scrape *sc = calloc(1, sizeof(*sc));
	uv_loop_t loop;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	CHECK_INT(queue_open(dir, 1u << 30, QUEUE_O_NOSYNC, &q, NULL), 0);
	CHECK_INT(fill_queue(q), 0);
	CHECK_INT(free_port(&sa), 0);
	CHECK_INT(uv_loop_init(&loop), 0);
	p = (struct metrics_params){&loop, (struct sockaddr *)&sa, q, &counts, NULL, NULL};
	CHECK_INT(metrics_server_start(&p, &srv), 0);
	sc->loop = &loop;
	uv_tcp_init(&loop, &sc->tcp);
	uv_timer_init(&loop, &sc->tick);
	sc->tcp.data = sc->conn.data = sc->wr.data = sc->tick.data = sc;
	CHECK_INT(uv_tcp_connect(&sc->conn, &sc->tcp, (struct sockaddr *)&sa, scrape_connected), 0);
	while (!sc->done && uv_run(&loop, UV_RUN_ONCE))
		;
	metrics_server_stop(srv);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
	CHECK(strncmp(sc->got, "HTTP/1.1 200 ", 13) == 0, "%.200s", sc->got);
	snprintf(want, sizeof(want), "\ntlsrelay_queue_messages{state=\"incoming\"} %d\n",
		 SCAN_MSGS);
	CHECK(strstr(sc->got, want) != NULL, "%.2000s", sc->got);
	CHECK(sc->ticks >= 5, "the loop turned %u times while the queue was scanned", sc->ticks);
	queue_close(q);
	rm_flat(dir);
	free(sc);
}

int main(void)
{
	test_req();
	test_req_size();
	test_format();
	test_scan_off_loop();
	return TEST_DONE();
}
