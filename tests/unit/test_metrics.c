/*
 * test_metrics: the metrics endpoint's pure parts (relay/metrics): the
 * request head parser, the counters and the exposition text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
	test_req();
	test_req_size();
	test_format();
	return TEST_DONE();
}
