/*
 * cli_report: `tlsrelay report` (cli_report.c: reading and summing the
 * posture counters, the table; cli_report_json.c: the JSON document;
 * cli_report_html.c: the page).  Shared by those three files only.
 */
#ifndef CLI_REPORT_H
#define CLI_REPORT_H

#include <stdint.h>

#include "queue.h"
#include "rl.h"

/* One destination domain over the period. */
struct report_dom {
	char domain[QUEUE_STS_DOMAIN_MAX + 1];
	struct queue_posture sum;
	uint32_t dane, sts, policy, encrypted, cleartext; /* delivered, by level reached */
	uint32_t deferred, bounced;
	char suggestion[400]; /* a policy file line, or "" */
};

struct report {
	uint32_t from_day, to_day;
	struct report_dom *dom;
	size_t n;
};

/* The whole report as one JSON document (also what the page embeds). */
int report_json(struct rl_buf *out, const struct report *r) RL_WUR;
/* The self-contained page: inline CSS, the data, an inline script drawing
 * the charts on <canvas>; no external resources. */
int report_html(struct rl_buf *out, const struct report *r) RL_WUR;
/* "YYYY-MM-DD" of a UTC day number. */
void report_day_text(uint32_t day, char out[16]);

#endif
