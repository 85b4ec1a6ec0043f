/*
 * cli_report_json: the report as one JSON document (for --json and for the
 * page's data) and the day as text; shared by cli_report.c and
 * cli_report_html.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_report.h"
#include "fpr.h"
#include "mailq.h"

void report_day_text(uint32_t day, char out[16])
{
	time_t t = (time_t)day * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
}

static int json_dom(struct rl_buf *o, const struct report_dom *d)
{
	char fp[FPR_TEXT_SIZE];
	int rc = rl_buf_puts(o, "{\"domain\": ");

	rc = rc ? rc : mailq_json_string(o, d->domain);
	rc = rc ? rc
		: rl_buf_printf(o,
				", \"delivered\": {\"dane\": %u, \"mta-sts\": %u, "
				"\"policy\": %u, \"encrypted\": %u, \"cleartext\": %u}, "
				"\"deferred\": %u, \"bounced\": %u, \"failures\": [",
				d->dane, d->sts, d->policy, d->encrypted, d->cleartext, d->deferred,
				d->bounced);
	for (size_t j = 0; j < d->sum.nreason && rc == 0; j++) {
		rc = rl_buf_puts(o, j ? ", {\"reason\": " : "{\"reason\": ");
		rc = rc ? rc : mailq_json_string(o, d->sum.reason[j].text);
		rc = rc ? rc : rl_buf_printf(o, ", \"count\": %u}", d->sum.reason[j].count);
	}
	rc = rc ? rc
		: rl_buf_printf(o, "], \"failures_other\": %u, \"fingerprints\": [",
				d->sum.reason_other);
	for (size_t j = 0; j < d->sum.nfpr && rc == 0; j++) {
		struct fpr_digest k = {.len = FPR_SHA256_LEN};

		memcpy(k.bytes, d->sum.fpr[j].sha256, FPR_SHA256_LEN);
		fpr_format(&k, fp, sizeof(fp));
		rc = rl_buf_printf(o, "%s{\"sha256\": \"%s\", \"count\": %u}", j ? ", " : "", fp,
				   d->sum.fpr[j].count);
	}
	rc = rc ? rc : rl_buf_puts(o, "], \"suggestion\": ");
	if (rc == 0)
		rc =
		    d->suggestion[0] ? mailq_json_string(o, d->suggestion) : rl_buf_puts(o, "null");
	return rc ? rc : rl_buf_puts(o, "}");
}

int report_json(struct rl_buf *o, const struct report *r)
{
	char from[16], to[16];
	int rc;

	report_day_text(r->from_day, from);
	report_day_text(r->to_day, to);
	rc = rl_buf_printf(o, "{\"from\": \"%s\", \"until\": \"%s\", \"domains\": [", from, to);
	for (size_t i = 0; i < r->n && rc == 0; i++) {
		rc = i ? rl_buf_puts(o, ", ") : 0;
		rc = rc ? rc : json_dom(o, &r->dom[i]);
	}
	return rc ? rc : rl_buf_puts(o, "]}\n");
}
