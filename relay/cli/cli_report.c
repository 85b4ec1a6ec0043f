/*
 * cli_report: `tlsrelay report [--since 7d] [--json | --html FILE]`, the
 * TLS posture per destination domain from the queue's posture counters
 * (queue.h), read with a read-only open, so it works while `serve` runs.
 *
 * Per domain: deliveries by the level reached (DANE, MTA-STS, verified
 * under the policy file, encrypted only, cleartext), failures by reason,
 * and a suggested policy line where the evidence is strong:
 *   - every delivery of the period verified under the policy file
 *     (tls=verified): "DOMAIN secure";
 *   - otherwise every delivery over TLS with one and the same leaf public
 *     key, and none in cleartext: "DOMAIN fingerprint match=SHA256" in the
 *     form `tlsrelay certs fingerprint` prints;
 *   - otherwise, or when DANE or MTA-STS already verify it, none.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_report.h"
#include "fpr.h"
#include "mailq.h"
#include "pol.h"

#define REPORT_DOMAINS_MAX 100000 /* bounds memory on a damaged store */


/* "7d", "36h", "30m", "90s": a period ending now; 0 or -1 on error. */
static int parse_since(const char *s, uint64_t *secs)
{
	char *end;
	unsigned long long v;
	uint64_t unit;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end[0] == '\0' || end[1] != '\0')
		return -1;
	unit = *end == 'd' ? 86400 : *end == 'h' ? 3600 : *end == 'm' ? 60 : *end == 's' ? 1 : 0;
	if (unit == 0 || v == 0 || v > 36500ULL * 86400 / unit)
		return -1;
	*secs = v * unit;
	return 0;
}

static int report_add(void *arg, uint32_t day, const char *domain, const struct queue_posture *rec)
{
	struct report *r = arg;
	size_t i;

	if (day > r->to_day)
		return 0;
	for (i = 0; i < r->n && strcmp(r->dom[i].domain, domain) != 0; i++)
		;
	if (i == r->n) {
		struct report_dom *d;

		if (r->n >= REPORT_DOMAINS_MAX)
			return RL_ETOOBIG;
		d = realloc(r->dom, (r->n + 1) * sizeof(*d));
		if (!d)
			return -ENOMEM;
		r->dom = d;
		memset(&d[i], 0, sizeof(d[i]));
		rl_strlcpy(d[i].domain, domain, sizeof(d[i].domain));
		r->n++;
	}
	queue_posture_merge(&r->dom[i].sum, rec);
	return 0;
}

/*
 * A policy line where the evidence is strong, never one that would change
 * a pin or repeat the entry in force (e: the domain's entry, NULL: none).
 * `secure`: every delivery went over a chain that verified under the
 * relay's CAs (tls=trusted at encrypt, tls=verified at verify/secure), and
 * none failed.  A fingerprint: one public key across every TLS delivery.
 */
static void dom_suggest(struct report_dom *d, const struct pol_entry *e)
{
	const struct queue_posture *p = &d->sum;
	uint32_t tls = d->policy + d->encrypted, sent = tls + d->cleartext;
	uint32_t ca = p->count[QUEUE_PS_SENT][QUEUE_PT_TRUSTED] + d->policy;
	struct fpr_digest k = {.len = FPR_SHA256_LEN};
	char text[FPR_TEXT_SIZE];

	d->suggestion[0] = '\0';
	if (sent == 0 || d->dane || d->sts)
		return;
	if (e && (e->level == POL_LEVEL_SECURE || e->level == POL_LEVEL_FINGERPRINT ||
		  e->level == POL_LEVEL_DANE_ONLY))
		return; /* already authenticated by the administrator's choice */
	if (ca == sent && d->deferred == 0 && d->bounced == 0) {
		snprintf(d->suggestion, sizeof(d->suggestion), "%s secure", d->domain);
		return;
	}
	if (d->cleartext || p->nfpr != 1 || p->fpr_other || p->fpr[0].count != tls)
		return;
	memcpy(k.bytes, p->fpr[0].sha256, FPR_SHA256_LEN);
	fpr_format(&k, text, sizeof(text));
	snprintf(d->suggestion, sizeof(d->suggestion), "%s fingerprint match=%s", d->domain, text);
}

static void dom_finish(struct report_dom *d, const struct pol_table *pol)
{
	const uint32_t *s = d->sum.count[QUEUE_PS_SENT];

	d->dane = s[QUEUE_PT_DANE];
	d->sts = s[QUEUE_PT_STS];
	d->policy = s[QUEUE_PT_VERIFIED];
	d->encrypted = s[QUEUE_PT_TRUSTED] + s[QUEUE_PT_UNTRUSTED] + s[QUEUE_PT_ANONYMOUS];
	d->cleartext = s[QUEUE_PT_NONE];
	for (int t = 0; t < QUEUE_PT_N; t++) {
		d->deferred += d->sum.count[QUEUE_PS_DEFERRED][t];
		d->bounced += d->sum.count[QUEUE_PS_BOUNCED][t];
	}
	dom_suggest(d, pol ? pol_table_lookup(pol, d->domain) : NULL);
}

static int dom_cmp(const void *a, const void *b)
{
	return strcmp(((const struct report_dom *)a)->domain,
		      ((const struct report_dom *)b)->domain);
}

static int report_text(struct rl_buf *o, const struct report *r)
{
	char from[16], to[16];
	int rc, any = 0;

	report_day_text(r->from_day, from);
	report_day_text(r->to_day, to);
	rc = rl_buf_printf(o, "TLS posture %s .. %s (UTC)\n\n%-32s %7s %7s %7s %9s %9s %8s %7s\n",
			   from, to, "DOMAIN", "DANE", "MTA-STS", "POLICY", "ENCRYPTED",
			   "CLEARTEXT", "DEFERRED", "BOUNCED");
	for (size_t i = 0; i < r->n && rc == 0; i++) {
		const struct report_dom *d = &r->dom[i];

		rc = rl_buf_printf(o, "%-32s %7u %7u %7u %9u %9u %8u %7u\n", d->domain, d->dane,
				   d->sts, d->policy, d->encrypted, d->cleartext, d->deferred,
				   d->bounced);
		for (size_t j = 0; j < d->sum.nreason && rc == 0; j++)
			rc = rl_buf_printf(o, "    %6u x %s\n", d->sum.reason[j].count,
					   d->sum.reason[j].text);
		if (rc == 0 && d->sum.reason_other)
			rc = rl_buf_printf(o, "    %6u x (other reasons)\n", d->sum.reason_other);
	}
	if (rc == 0 && r->n == 0)
		rc = rl_buf_puts(o, "(no deliveries in this period)\n");
	for (size_t i = 0; i < r->n && rc == 0; i++) {
		if (!r->dom[i].suggestion[0])
			continue;
		if (!any++)
			rc = rl_buf_puts(o, "\nSuggested policy lines:\n");
		if (rc == 0)
			rc = rl_buf_printf(o, "%s\n", r->dom[i].suggestion);
	}
	return rc;
}



static int report_usage(void)
{
	fprintf(stderr, "usage: tlsrelay report [-c FILE] [--since 7d] [--json | --html FILE]\n");
	return CLI_EX_USAGE;
}

/* Read the counters of the period into r (sorted by domain). */
static int report_load(const char *cfgpath, uint64_t secs, struct report *r)
{
	struct queue *q = NULL;
	struct queue_txn *t = NULL;
	struct pol_table *pol = NULL;
	struct cfg c;
	time_t now = time(NULL);
	int rc, missing = 0;

	r->to_day = (uint32_t)(now / 86400);
	r->from_day =
	    (uint32_t)((uint64_t)(now - (time_t)(secs < (uint64_t)now ? secs : (uint64_t)now)) /
		       86400);
	if (cli_load_cfg(cfgpath, &c) < 0)
		return -1;
	/* The entries in force, so that no suggestion repeats or undoes one. */
	if (cli_load_policy(c.policy_file, &pol, &missing) < 0)
		pol = NULL;
	rc = cli_open_queue(&c, QUEUE_O_RDONLY, &q);
	cfg_fini(&c);
	if (rc < 0)
		return -1;
	rc = queue_txn_begin(q, 0, &t);
	if (rc == 0)
		rc = queue_posture_foreach(t, r->from_day, report_add, r);
	queue_txn_abort(t);
	queue_close(q);
	if (rc < 0) {
		fprintf(stderr, "tlsrelay: cannot read the posture counters: %s\n",
			rl_strerror(rc));
		pol_table_free(pol);
		return -1;
	}
	if (r->n > 0) /* qsort(NULL, 0, ...) is undefined */
		qsort(r->dom, r->n, sizeof(*r->dom), dom_cmp);
	for (size_t i = 0; i < r->n; i++)
		dom_finish(&r->dom[i], pol);
	pol_table_free(pol);
	return 0;
}

static int report_write(const char *html, FILE *f, const struct rl_buf *b)
{
	int bad;

	bad = fwrite(b->data, 1, b->len, f) != b->len;
	bad |= html ? fclose(f) != 0 : fflush(f) != 0;
	if (bad) {
		fprintf(stderr, "tlsrelay: %s: write failed\n", html ? html : "stdout");
		return CLI_EX_FAIL;
	}
	return CLI_EX_OK;
}

int cli_report(const char *cfgpath, int argc, char **argv)
{
	struct report r = {0};
	struct rl_buf b;
	const char *html = NULL;
	FILE *out;
	uint64_t secs = 7 * 86400;
	int json = 0, rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--html") == 0 && i + 1 < argc)
			html = argv[++i];
		else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc &&
			 parse_since(argv[i + 1], &secs) == 0)
			i++;
		else
			return report_usage();
	}
	if (json && html)
		return report_usage();
	/* Opened before the queue: run as root with `user` set, opening the
	 * queue makes this process that user (cli_queue_privs()), and the
	 * file is where root asked for it. */
	out = html ? fopen(html, "w") : stdout;
	if (!out) {
		fprintf(stderr, "tlsrelay: %s: %s\n", html, strerror(errno));
		return CLI_EX_FAIL;
	}
	if (report_load(cfgpath, secs, &r) < 0) {
		free(r.dom);
		if (html)
			fclose(out);
		return CLI_EX_FAIL;
	}
	rl_buf_init(&b, SIZE_MAX / 2);
	rc = html ? report_html(&b, &r) : json ? report_json(&b, &r) : report_text(&b, &r);
	free(r.dom);
	if (rc < 0) {
		fprintf(stderr, "tlsrelay: cannot format the report: %s\n", rl_strerror(rc));
		rl_buf_fini(&b);
		if (html)
			fclose(out);
		return CLI_EX_FAIL;
	}
	rc = report_write(html, out, &b);
	rl_buf_fini(&b);
	return rc;
}
