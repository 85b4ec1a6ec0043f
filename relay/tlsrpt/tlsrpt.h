/*
 * tlsrpt: SMTP TLS Reporting (RFC 8460) for outbound sessions.
 *
 * - The counter (tlsrpt_count.c): delivery counts each outbound TLS
 *   session here; the counts gather in memory (bounded) and go to the
 *   queue's "tlsrpt" database through the committer every
 *   TLSRPT_FLUSH_MS and at shutdown.  Loop thread only.
 * - The report (tlsrpt_json.c): one day's counts of one policy domain as
 *   the JSON of RFC 8460 section 4 (jansson), and its gzip form (zlib).
 *   Pure apart from allocation; any thread.
 * - Sending (tlsrpt_send.c): `tlsrpt send` and the daily run of serve.
 *
 * Errors are negative codes (rl.h).  Strings passed in are borrowed.
 */
#ifndef TLSRPT_H
#define TLSRPT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cfg.h"
#include "commit.h"
#include "queue.h"
#include "rl.h"

/* Domain-days kept in memory between flushes (each up to ~30 KB). */
#define TLSRPT_MEM_MAX 64
#define TLSRPT_FLUSH_MS 5000

struct tlsrpt_counter;

/* A counter that flushes through commit every TLSRPT_FLUSH_MS; NULL: no memory. */
struct tlsrpt_counter *tlsrpt_counter_new(uv_loop_t *loop, struct committer *commit);
/* Count one session of domain (the policy domain) on the UTC day of now.  c may be NULL. */
void tlsrpt_count(struct tlsrpt_counter *c, const char *domain, int64_t now,
		  const struct queue_tlsrpt_sess *s);
/* Hand what is in memory to the committer now (unless a flush is in flight). */
void tlsrpt_counter_flush(struct tlsrpt_counter *c);
/* Shutdown: stop the timer, flush; later counts are ignored. */
void tlsrpt_counter_stop(struct tlsrpt_counter *c);
/* Nothing in memory and nothing in flight (NULL: 1). */
int tlsrpt_counter_idle(const struct tlsrpt_counter *c);
/* Free; after tlsrpt_counter_stop() and the loop closed the timer.  NULL: no-op. */
void tlsrpt_counter_free(struct tlsrpt_counter *c);

/* "YYYY-MM-DD" of the UTC day of when (epoch seconds). */
void tlsrpt_day(int64_t when, char *out, size_t size);

/* What a report says about its sender. */
struct tlsrpt_meta {
	const char *org_name;	  /* organization-name */
	const char *contact_info; /* contact-info */
	const char *day;	  /* "YYYY-MM-DD": the report covers that UTC day */
	const char *report_id;	  /* report-id */
};

/* The report-id of (day, domain): "DAY_DOMAIN@myhostname" into out. */
void tlsrpt_report_id(const struct cfg *c, const char *day, const char *domain, char *out,
		      size_t size);

/*
 * The RFC 8460 section 4 report of rec for the policy domain, as JSON
 * text into *out (malloc'd, NUL-terminated; the caller frees it).
 * Returns 0, -ENOMEM, or -EINVAL for a day that is not a date.
 */
int tlsrpt_json(const struct tlsrpt_meta *m, const char *domain, const struct queue_tlsrpt *rec,
		char **out) RL_WUR;

/* gzip (RFC 1952) of len bytes into *out (malloc'd), *outlen.  0 or -ENOMEM. */
int tlsrpt_gzip(const void *p, size_t len, unsigned char **out, size_t *outlen) RL_WUR;

/* The address of a mailto: URI (RFC 6068, %XX decoded, "?..." dropped) into out. */
int tlsrpt_mailto_addr(const char *uri, char *out, size_t size) RL_WUR;
/* host, port (443 by default) and path ("/" by default) of an https: URI. */
int tlsrpt_https_parse(const char *uri, char *host, size_t hsize, unsigned *port, char *path,
		       size_t psize) RL_WUR;

#define TLSRPT_BOUNDARY "=_tlsrpt_report_part"

/* What the report mail says (RFC 8460 5.3); strings borrowed, printable ASCII. */
struct tlsrpt_mail_params {
	const char *from, *to;
	const char *domain, *org_name, *report_id, *day;
	const char *submitter; /* the filename's receiver: myhostname */
	const char *unique;    /* the filename's unique-id and the Message-ID's left part */
	int64_t now, begin, end;
	const unsigned char *gz; /* the gzip'd JSON */
	size_t gzlen;
};

/*
 * The report mail (CRLF lines): From, To, Subject "Report Domain: D
 * Submitter: ORG Report-ID: <ID>", TLS-Report-Domain, TLS-Report-Submitter,
 * multipart/report; report-type="tlsrpt" with a text part and the
 * application/tlsrpt+gzip attachment in base64.  Appends to out.
 */
int tlsrpt_mail(const struct tlsrpt_mail_params *m, struct rl_buf *out) RL_WUR;

struct dns;
struct https;

/* Sending one day's reports (tlsrpt_send.c). */
struct tlsrpt_send_params {
	uv_loop_t *loop;
	const struct cfg *cfg;
	struct queue *q;
	struct dns *dns;
	struct https *https;
	struct committer *commit; /* writes go through it; NULL: direct transactions (the CLI) */
	char day[QUEUE_TLSRPT_DAY_LEN + 1];
	/* At the end: failures = reports that could not be queued or posted. */
	void (*done)(void *arg, int failures);
	void *arg;
};

/*
 * For each domain with counts on p->day whose report has not been sent:
 * look up "_smtp._tls.DOMAIN" TXT, and send the report to each rua
 * (mailto: a queued message with QUEUE_F_TLSRPT; https: a POST of the
 * gzip'd JSON); when all went, mark the day's record as sent (domains
 * without a record are marked too: nothing is owed).  One log line per
 * report sent.  p->done runs once, on the loop, never inside this call.
 * Returns 0, or a negative code with nothing started.
 */
int tlsrpt_send_start(const struct tlsrpt_send_params *p) RL_WUR;

#endif
