/*
 * tlsrpt_json: the aggregate report of RFC 8460 section 4 from one day's
 * counts of one policy domain, built with jansson, and its gzip form
 * (section 5.1: "application/tlsrpt+gzip").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <zlib.h>

#include "tlsrpt.h"

void tlsrpt_report_id(const struct cfg *c, const char *day, const char *domain, char *out,
		      size_t size)
{
	snprintf(out, size, "%s_%s@%s", day, domain, c->myhostname);
}

/* policy-string: the policy's lines (LF-separated in the record). */
static json_t *policy_strings(const char *s)
{
	json_t *a = json_array();

	while (a && *s) {
		const char *e = strchr(s, '\n');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		if (n && json_array_append_new(a, json_stringn(s, n)) < 0) {
			json_decref(a);
			return NULL;
		}
		s += n + (e != NULL);
	}
	return a;
}

static json_t *failure_details(const struct queue_tlsrpt_policy *p)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < p->ndet; i++) {
		const struct queue_tlsrpt_detail *d = &p->det[i];
		json_t *o = json_pack("{s:s, s:I}", "result-type",
				      queue_tlsrpt_result_name(d->result), "failed-session-count",
				      (json_int_t)d->count);

		/* RFC 8460 4.3: the addresses and name where known. */
		if (o && d->sending_ip[0])
			json_object_set_new(o, "sending-mta-ip", json_string(d->sending_ip));
		if (o && d->mx[0])
			json_object_set_new(o, "receiving-mx-hostname", json_string(d->mx));
		if (o && d->receiving_ip[0])
			json_object_set_new(o, "receiving-ip", json_string(d->receiving_ip));
		if (!o || json_array_append_new(a, o) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *one_policy(const char *domain, const struct queue_tlsrpt_policy *p)
{
	json_t *mx = json_array(), *pol, *o;

	for (size_t i = 0; mx && i < p->nmx; i++)
		json_array_append_new(mx, json_string(p->mx[i]));
	pol = json_pack("{s:s, s:s, s:o*}", "policy-type", queue_tlsrpt_type_name(p->type),
			"policy-domain", domain, "mx-host", mx);
	if (pol && p->strings[0])
		json_object_set_new(pol, "policy-string", policy_strings(p->strings));
	o = json_pack("{s:o*, s:{s:I, s:I}}", "policy", pol, "summary",
		      "total-successful-session-count", (json_int_t)p->ok,
		      "total-failure-session-count", (json_int_t)p->fail);
	if (o && p->ndet)
		json_object_set_new(o, "failure-details", failure_details(p));
	return o;
}

int tlsrpt_json(const struct tlsrpt_meta *m, const char *domain, const struct queue_tlsrpt *rec,
		char **out)
{
	char start[32], end[32];
	json_t *root, *pols = json_array();

	*out = NULL;
	if (!queue_tlsrpt_day_valid(m->day, strlen(m->day))) {
		json_decref(pols);
		return -EINVAL;
	}
	/* RFC 8460 4.4: the UTC day, as RFC 3339 date-times. */
	snprintf(start, sizeof(start), "%sT00:00:00Z", m->day);
	snprintf(end, sizeof(end), "%sT23:59:59Z", m->day);
	for (size_t i = 0; pols && i < rec->npol; i++)
		json_array_append_new(pols, one_policy(domain, &rec->pol[i]));
	root = json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:o*}", "organization-name", m->org_name,
			 "date-range", "start-datetime", start, "end-datetime", end,
			 "contact-info", m->contact_info, "report-id", m->report_id, "policies",
			 pols);
	if (!root)
		return -ENOMEM;
	*out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	return *out ? 0 : -ENOMEM;
}

int tlsrpt_gzip(const void *p, size_t len, unsigned char **out, size_t *outlen)
{
	z_stream z;
	uLong cap;
	int rc;

	*out = NULL;
	*outlen = 0;
	memset(&z, 0, sizeof(z));
	/* 15 + 16: a gzip header and trailer, not zlib's. */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&z, (uLong)len) + 32;
	*out = malloc(cap);
	if (!*out) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)p;
	z.avail_in = (uInt)len;
	z.next_out = *out;
	z.avail_out = (uInt)cap;
	rc = deflate(&z, Z_FINISH);
	*outlen = cap - z.avail_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(*out);
		*out = NULL;
		*outlen = 0;
		return -ENOMEM;
	}
	return 0;
}
