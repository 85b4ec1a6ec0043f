/*
 * status_fmt: the screen of `tlsrelay status` and its JSON form; pure
 * (status.h).  Fixed rows and columns, so that a script can read the
 * text too, and about 40 lines at most, so that it fits one screen.
 * Peer text (reasons) has its control octets shown as '?', as in mailq.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mailq.h"
#include "status.h"

static const char *const queue_names[STATUS_Q_N] = {"incoming", "active", "deferred", "hold"};
static const char *const status_names[QUEUE_PS_N] = {"sent", "deferred", "bounced"};
/* Columns of the last hour, strongest protection first. */
static const int hour_cols[] = {QUEUE_PT_DANE,	  QUEUE_PT_STS,	      QUEUE_PT_VERIFIED,
				QUEUE_PT_TRUSTED, QUEUE_PT_UNTRUSTED, QUEUE_PT_ANONYMOUS,
				QUEUE_PT_NONE,	  QUEUE_PT_NOSESS};
#define HOUR_NCOLS (sizeof(hour_cols) / sizeof(hour_cols[0]))

static const char *tls_col(int k)
{
	return k == QUEUE_PT_NOSESS ? "no-conn" : queue_posture_tls_name(k);
}

/* "2026-12-07 00:31:02 UTC" */
static void utc_text(char *out, size_t size, int64_t when)
{
	time_t t = (time_t)when;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, size, "@%lld", (long long)when);
}

static int fmt_run(struct rl_buf *out, const struct status_run *r, int64_t now)
{
	char age[32], since[40];

	if (!r->running)
		return rl_buf_puts(out, "relay:      not running\n");
	if (r->pid && r->started > 0) {
		status_age(age, sizeof(age), now - r->started);
		utc_text(since, sizeof(since), r->started);
		return rl_buf_printf(out, "relay:      running, pid %lu, up %s (since %s)\n",
				     (unsigned long)r->pid, age, since);
	}
	if (r->pid)
		return rl_buf_printf(out, "relay:      running, pid %lu (start time not known)\n",
				     (unsigned long)r->pid);
	return rl_buf_puts(out, "relay:      running (pid and start time not known)\n");
}

static int fmt_queue(struct rl_buf *out, const struct status_agg *a, int64_t now)
{
	uint64_t n = 0, b = 0;
	char age[32], when[40];
	int rc = rl_buf_printf(out, "%-12s %12s %12s\n", "queue", "messages", "bytes");

	for (int i = 0; i < STATUS_Q_N && rc == 0; i++) {
		rc = rl_buf_printf(out, "  %-10s %12llu %12llu\n", queue_names[i],
				   (unsigned long long)a->msgs[i], (unsigned long long)a->bytes[i]);
		n += a->msgs[i];
		b += a->bytes[i];
	}
	if (rc == 0)
		rc = rl_buf_printf(out, "  %-10s %12llu %12llu\n", "total", (unsigned long long)n,
				   (unsigned long long)b);
	if (rc == 0 && !a->oldest_id[0])
		return rl_buf_puts(out, "oldest:     none (the queue is empty)\n");
	status_age(age, sizeof(age), now - a->oldest);
	utc_text(when, sizeof(when), a->oldest);
	return rc ? rc
		  : rl_buf_printf(out, "oldest:     %s, %s old (arrived %s)\n", a->oldest_id, age,
				  when);
}

static int fmt_hour(struct rl_buf *out, const struct status_agg *a)
{
	int rc = rl_buf_puts(out, "last hour  ");

	for (size_t c = 0; c < HOUR_NCOLS && rc == 0; c++)
		rc = rl_buf_printf(out, " %s", tls_col(hour_cols[c]));
	if (rc == 0)
		rc = rl_buf_puts(out, " total\n");
	for (int s = 0; s < QUEUE_PS_N && rc == 0; s++) {
		uint64_t sum = 0;

		rc = rl_buf_printf(out, "  %-9s", status_names[s]);
		for (size_t c = 0; c < HOUR_NCOLS && rc == 0; c++) {
			uint64_t v = a->hour[s][hour_cols[c]];

			rc = rl_buf_printf(out, " %*llu", (int)strlen(tls_col(hour_cols[c])),
					   (unsigned long long)v);
			sum += v;
		}
		if (rc == 0)
			rc = rl_buf_printf(out, " %5llu\n", (unsigned long long)sum);
	}
	return rc;
}

/* A count, "~" first when it is an upper bound (status.h). */
static void count_text(char *out, size_t size, uint64_t n, int approx)
{
	snprintf(out, size, "%s%llu", approx ? "~" : "", (unsigned long long)n);
}

/* The inbound sessions and AUTH failures of the last hour (status_in). */
static int fmt_inbound(struct rl_buf *out, const struct status_agg *a)
{
	const uint64_t *v = a->in_hour;

	return rl_buf_printf(out,
			     "inbound last hour\n"
			     "  sessions allowed   network %llu, certificate %llu, auth %llu\n"
			     "  sessions refused   %llu (Relay access denied)\n"
			     "  failed AUTH        %llu attempt%s\n",
			     (unsigned long long)v[STATUS_IN_NETWORK],
			     (unsigned long long)v[STATUS_IN_CERTIFICATE],
			     (unsigned long long)v[STATUS_IN_AUTH],
			     (unsigned long long)v[STATUS_IN_REFUSED],
			     (unsigned long long)v[STATUS_IN_AUTH_FAILED],
			     v[STATUS_IN_AUTH_FAILED] == 1 ? "" : "s");
}

static int fmt_group(struct rl_buf *out, const struct status_group *g, int64_t now)
{
	char age[32], msgs[32];
	int rc;

	status_age(age, sizeof(age), now - g->oldest);
	count_text(msgs, sizeof(msgs), g->msgs, g->err > 0);
	rc = rl_buf_printf(out, "  %5s %5llu %7s  ", msgs, (unsigned long long)g->rcpts, age);
	if (rc == 0)
		rc = mailq_text_string(out, g->domain);
	if (rc == 0)
		rc = rl_buf_puts(out, ": ");
	if (rc == 0)
		rc = mailq_text_string(out, g->reason);
	return rc ? rc : rl_buf_puts(out, g->cut ? "...\n" : "\n");
}

static int fmt_failing(struct rl_buf *out, const struct status_agg *a, int64_t now)
{
	uint64_t more = 0;
	size_t shown = a->ng < STATUS_SHOW_MAX ? a->ng : STATUS_SHOW_MAX;
	int rc = 0, approx = 0;
	char n[32];

	if (a->ng == 0)
		return rl_buf_puts(out, "failing:    none\n");
	for (size_t i = shown; i < a->ng; i++) {
		more += a->g[i].msgs;
		approx |= a->g[i].err > 0;
	}
	if (a->replaced)
		rc = rl_buf_printf(out,
				   "failing:    more than %d destinations and reasons, worst first "
				   "(~: at most)\n",
				   STATUS_GROUPS_MAX);
	else
		rc = rl_buf_printf(out, "failing:    %zu destination%s and reason%s, worst first\n",
				   a->ng, a->ng == 1 ? "" : "s", a->ng == 1 ? "" : "s");
	if (rc == 0)
		rc = rl_buf_puts(out, "   msgs rcpts  oldest  domain: reason\n");
	for (size_t i = 0; i < shown && rc == 0; i++)
		rc = fmt_group(out, &a->g[i], now);
	count_text(n, sizeof(n), more, approx);
	if (rc == 0 && a->ng > shown)
		rc = rl_buf_printf(out,
				   "  ... and %zu more (%s messages); `tlsrelay mailq` lists "
				   "them all\n",
				   a->ng - shown, n);
	return rc;
}

int status_format_text(struct rl_buf *out, const struct status_agg *a, const struct status_run *r,
		       int64_t now, const char *hostname)
{
	char when[40];
	int rc;

	utc_text(when, sizeof(when), now);
	rc = rl_buf_puts(out, "tlsrelay status of ");
	if (rc == 0)
		rc = mailq_text_string(out, hostname);
	if (rc == 0)
		rc = rl_buf_printf(out, " at %s\n", when);
	if (rc == 0)
		rc = fmt_run(out, r, now);
	if (rc == 0)
		rc = rl_buf_puts(out, "\n");
	if (rc == 0)
		rc = fmt_queue(out, a, now);
	if (rc == 0)
		rc = rl_buf_puts(out, "\n");
	if (rc == 0)
		rc = fmt_hour(out, a);
	if (rc == 0)
		rc = rl_buf_puts(out, "\n");
	if (rc == 0)
		rc = fmt_inbound(out, a);
	if (rc == 0)
		rc = rl_buf_puts(out, "\n");
	return rc ? rc : fmt_failing(out, a, now);
}

static int json_run(struct rl_buf *out, const struct status_run *r, int64_t now)
{
	int rc = rl_buf_printf(out, "\"running\":%s", r->running ? "true" : "false");

	if (rc == 0 && r->running && r->pid)
		rc = rl_buf_printf(out, ",\"pid\":%lu", (unsigned long)r->pid);
	if (rc == 0 && r->running && r->started > 0)
		rc = rl_buf_printf(out, ",\"started\":%lld,\"uptime\":%lld", (long long)r->started,
				   (long long)(now - r->started));
	return rc;
}

static int json_queue(struct rl_buf *out, const struct status_agg *a, int64_t now)
{
	int rc = rl_buf_puts(out, ",\"queue\":{");

	for (int i = 0; i < STATUS_Q_N && rc == 0; i++)
		rc = rl_buf_printf(out, "%s\"%s\":{\"messages\":%llu,\"bytes\":%llu}", i ? "," : "",
				   queue_names[i], (unsigned long long)a->msgs[i],
				   (unsigned long long)a->bytes[i]);
	if (rc == 0 && a->oldest_id[0])
		rc =
		    rl_buf_printf(out,
				  "},\"oldest\":{\"queue_id\":\"%s\",\"arrival_time\":%lld,"
				  "\"age\":%lld}",
				  a->oldest_id, (long long)a->oldest, (long long)(now - a->oldest));
	else if (rc == 0)
		rc = rl_buf_puts(out, "},\"oldest\":null");
	return rc;
}

static int json_hour(struct rl_buf *out, const struct status_agg *a)
{
	int rc = rl_buf_puts(out, ",\"last_hour\":{");

	for (int s = 0; s < QUEUE_PS_N && rc == 0; s++) {
		rc = rl_buf_printf(out, "%s\"%s\":{", s ? "," : "", status_names[s]);
		for (size_t c = 0; c < HOUR_NCOLS && rc == 0; c++) {
			int k = hour_cols[c];

			rc = rl_buf_printf(out, "%s\"%s\":%llu", c ? "," : "",
					   k == QUEUE_PT_NOSESS ? "no-connection" : tls_col(k),
					   (unsigned long long)a->hour[s][k]);
		}
		if (rc == 0)
			rc = rl_buf_puts(out, "}");
	}
	return rc ? rc : rl_buf_puts(out, "}");
}

static int json_inbound(struct rl_buf *out, const struct status_agg *a)
{
	const uint64_t *v = a->in_hour;

	return rl_buf_printf(out,
			     ",\"inbound_last_hour\":{\"allowed\":{\"network\":%llu,"
			     "\"certificate\":%llu,\"auth\":%llu},\"refused\":%llu,"
			     "\"auth_failed\":%llu}",
			     (unsigned long long)v[STATUS_IN_NETWORK],
			     (unsigned long long)v[STATUS_IN_CERTIFICATE],
			     (unsigned long long)v[STATUS_IN_AUTH],
			     (unsigned long long)v[STATUS_IN_REFUSED],
			     (unsigned long long)v[STATUS_IN_AUTH_FAILED]);
}

static int json_failing(struct rl_buf *out, const struct status_agg *a)
{
	int rc = rl_buf_puts(out, ",\"failing\":[");

	for (size_t i = 0; i < a->ng && rc == 0; i++) {
		const struct status_group *g = &a->g[i];

		rc = rl_buf_puts(out, i ? ",{\"domain\":" : "{\"domain\":");
		if (rc == 0)
			rc = mailq_json_string(out, g->domain);
		if (rc == 0)
			rc = rl_buf_puts(out, ",\"reason\":");
		if (rc == 0)
			rc = mailq_json_string(out, g->reason);
		if (rc == 0)
			rc = rl_buf_printf(out,
					   ",\"messages\":%llu,\"approx\":%s,\"error\":%llu,"
					   "\"recipients\":%llu,\"oldest_arrival\":%lld}",
					   (unsigned long long)g->msgs, g->err ? "true" : "false",
					   (unsigned long long)g->err, (unsigned long long)g->rcpts,
					   (long long)g->oldest);
	}
	if (rc == 0)
		rc = rl_buf_printf(out, "],\"failing_exact\":%s", a->replaced ? "false" : "true");
	return rc;
}

int status_format_json(struct rl_buf *out, const struct status_agg *a, const struct status_run *r,
		       int64_t now, const char *hostname)
{
	int rc = rl_buf_puts(out, "{\"hostname\":");

	if (rc == 0)
		rc = mailq_json_string(out, hostname);
	if (rc == 0)
		rc = rl_buf_printf(out, ",\"time\":%lld,", (long long)now);
	if (rc == 0)
		rc = json_run(out, r, now);
	if (rc == 0)
		rc = json_queue(out, a, now);
	if (rc == 0)
		rc = json_hour(out, a);
	if (rc == 0)
		rc = json_inbound(out, a);
	if (rc == 0)
		rc = json_failing(out, a);
	return rc ? rc : rl_buf_puts(out, "}\n");
}
