/*
 * metrics_count: the counters of the metrics endpoint, kept in memory by
 * the daemon for the life of the process.
 */
#include <string.h>

#include "metrics.h"

void metrics_count_delivery(struct metrics_counts *c, const char *status, const char *tls)
{
	int st, t;

	if (!c || !status)
		return;
	if (strcmp(status, "sent") == 0)
		st = METRICS_SENT;
	else if (strcmp(status, "bounced") == 0)
		st = METRICS_BOUNCED;
	else
		st = METRICS_DEFERRED;
	/* No session (relay=none) and an unknown word both mean no TLS. */
	t = queue_posture_tls_index(tls);
	if (t < 0 || t >= METRICS_TLS_N)
		t = QUEUE_PT_NONE;
	c->deliveries[st][t]++;
}

void metrics_count_tls_failure(struct metrics_counts *c, int result)
{
	if (!c || result <= 0 || result >= QUEUE_TLSRPT_R_END)
		return;
	c->tls_failures[result]++;
}

void metrics_count_smtpd_allowed(struct metrics_counts *c, int how)
{
	if (!c || how < 0 || how >= METRICS_ALLOWED_N)
		return;
	c->smtpd_allowed[how]++;
}

void metrics_count_auth_failure(struct metrics_counts *c)
{
	if (c)
		c->auth_failures++;
}

void metrics_count_delay_warning(struct metrics_counts *c)
{
	if (c)
		c->delay_warnings++;
}
