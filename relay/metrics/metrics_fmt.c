/*
 * metrics_fmt: the Prometheus text exposition format (version 0.0.4) of
 * the relay's metrics.  Each family gets its HELP and TYPE lines once,
 * before its samples; label values are fixed words that need no escaping.
 * Every label combination is written, zeros included, so that a rate over
 * a series that has just started is defined.
 */
#include <inttypes.h>

#include "metrics.h"

/* Label values of tls, as queue_posture_tls_index() orders the log's words
 * ("mta-sts" is written mta_sts, the contract's label value). */
static const char *const metrics_tls_names[METRICS_TLS_N] = {
    "none", "anonymous", "untrusted", "trusted", "verified", "dane", "mta_sts",
};
static const char *const metrics_status_names[METRICS_STATUS_N] = {"sent", "deferred", "bounced"};

static int family(struct rl_buf *out, const char *name, const char *type, const char *help)
{
	return rl_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int fmt_queue(struct rl_buf *out, const struct metrics_gauges *g)
{
	const struct queue_summary *q = &g->q;
	int64_t age = q->oldest > 0 && g->now > q->oldest ? g->now - q->oldest : 0;
	int rc = family(out, "tlsrelay_queue_messages", "gauge",
			"Messages in the queue by state (as mailq shows them).");

	if (rc == 0)
		rc = rl_buf_printf(out,
				   "tlsrelay_queue_messages{state=\"incoming\"} %" PRIu64 "\n"
				   "tlsrelay_queue_messages{state=\"active\"} %" PRIu64 "\n"
				   "tlsrelay_queue_messages{state=\"deferred\"} %" PRIu64 "\n"
				   "tlsrelay_queue_messages{state=\"hold\"} %" PRIu64 "\n",
				   q->incoming, q->active, q->deferred, q->hold);
	if (rc == 0)
		rc = family(out, "tlsrelay_queue_oldest_seconds", "gauge",
			    "Age of the oldest message in the queue, in seconds (0: empty).");
	if (rc == 0)
		rc = rl_buf_printf(out, "tlsrelay_queue_oldest_seconds %" PRId64 "\n", age);
	if (rc == 0)
		rc = family(out, "tlsrelay_queue_map_used_bytes", "gauge",
			    "Bytes of the queue's LMDB map in pages that hold data.");
	if (rc == 0)
		rc = rl_buf_printf(out, "tlsrelay_queue_map_used_bytes %" PRIu64 "\n", q->map_used);
	if (rc == 0)
		rc = family(out, "tlsrelay_queue_map_size_bytes", "gauge",
			    "Size of the queue's LMDB map: the most bytes the queue may hold.");
	if (rc == 0)
		rc = rl_buf_printf(out, "tlsrelay_queue_map_size_bytes %" PRIu64 "\n", q->map_size);
	return rc;
}

static int fmt_deliveries(struct rl_buf *out, const struct metrics_counts *c)
{
	int rc = family(out, "tlsrelay_deliveries_total", "counter",
			"Recipient delivery outcomes (the delivery log lines) by status and "
			"TLS level reached.");

	for (int s = 0; rc == 0 && s < METRICS_STATUS_N; s++)
		for (int t = 0; rc == 0 && t < METRICS_TLS_N; t++)
			rc = rl_buf_printf(out,
					   "tlsrelay_deliveries_total{status=\"%s\",tls=\"%s\"} "
					   "%" PRIu64 "\n",
					   metrics_status_names[s], metrics_tls_names[t],
					   c->deliveries[s][t]);
	return rc;
}

static int fmt_failures(struct rl_buf *out, const struct metrics_counts *c)
{
	int rc = family(out, "tlsrelay_tls_failures_total", "counter",
			"Outbound sessions that failed TLS or its policy, by RFC 8460 "
			"result type.");

	for (int r = 1; rc == 0 && r < QUEUE_TLSRPT_R_END; r++)
		rc = rl_buf_printf(out, "tlsrelay_tls_failures_total{reason=\"%s\"} %" PRIu64 "\n",
				   queue_tlsrpt_result_name(r), c->tls_failures[r]);
	return rc;
}

static const char *const metrics_allowed_names[METRICS_ALLOWED_N] = {"network", "certificate",
									"auth"};

/* Inbound sessions by how they may relay, and failed AUTH attempts. */
static int fmt_smtpd(struct rl_buf *out, const struct metrics_counts *c)
{
	int rc = family(out, "tlsrelay_smtpd_sessions_allowed_total", "counter",
			"Inbound sessions allowed to relay, by how: client network (mynetworks), "
			"client certificate, or SMTP AUTH.");

	for (int a = 0; rc == 0 && a < METRICS_ALLOWED_N; a++)
		rc = rl_buf_printf(out,
				   "tlsrelay_smtpd_sessions_allowed_total{by=\"%s\"} %" PRIu64 "\n",
				   metrics_allowed_names[a], c->smtpd_allowed[a]);
	if (rc == 0)
		rc = family(out, "tlsrelay_smtpd_auth_failures_total", "counter",
			    "Failed SMTP AUTH attempts (wrong user or password).");
	if (rc == 0)
		rc = rl_buf_printf(out, "tlsrelay_smtpd_auth_failures_total %" PRIu64 "\n",
				   c->auth_failures);
	return rc;
}

int metrics_format(struct rl_buf *out, const struct metrics_counts *c,
		   const struct metrics_gauges *g)
{
	int rc = fmt_queue(out, g);

	if (rc == 0)
		rc = fmt_deliveries(out, c);
	if (rc == 0)
		rc = fmt_failures(out, c);
	if (rc == 0)
		rc = fmt_smtpd(out, c);
	if (rc == 0)
		rc = family(out, "tlsrelay_delay_warnings_total", "counter",
			    "Delay warnings (RFC 3464 delay DSNs, delay_warning_time) queued to "
			    "senders.");
	if (rc == 0)
		rc = rl_buf_printf(out, "tlsrelay_delay_warnings_total %" PRIu64 "\n",
				   c->delay_warnings);
	if (rc == 0)
		rc = family(out, "tlsrelay_smtpd_connections", "gauge",
			    "Inbound SMTP sessions open now.");
	if (rc == 0)
		rc = rl_buf_printf(out, "tlsrelay_smtpd_connections %" PRIu64 "\n",
				   g->smtpd_connections);
	return rc;
}
