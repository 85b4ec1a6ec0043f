/*
 * cli_sts: the MTA-STS lookups of `policy show` and `certs probe` (cli_sts.h).
 *
 * The lookup itself is mtasts_lookup_report() with MTASTS_NO_STORE, on a
 * loop of this file's own with the relay's resolver (dns_new) and fetcher
 * (https_new): the choice between the cache and a fetch is the relay's
 * code, not a copy of it.  The cache line is read here separately, before
 * the lookup, so that an expired or damaged entry (which the lookup
 * ignores) is shown too.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "cli.h"
#include "cli_sts.h"
#include "dns.h"
#include "https.h"
#include "mtasts.h"
#include "queue.h"
#include "sts.h"

#define STS_TEXT 1024 /* one reason or rule line */

struct cli_sts {
	const struct cfg *c;
	char domain[DNS_NAME_MAX]; /* A-labels, lower case: the policy domain */
	/* The lookup's resources, while it runs. */
	struct dns *dns;
	struct https *https;
	int done;
	/* The outcome, as mtasts_cb gave it. */
	int mode;	       /* enum pol_sts_mode */
	struct sts_policy pol; /* mode != NONE: the policy in force */
	char source[16];       /* "cache", "fetched", "none" */
	char id[STS_ID_MAX + 1];
	struct mtasts_report rep;  /* what each step saw */
	struct sts_policy scratch; /* the cache line's parse */
};

static void time_text(int64_t t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		rl_strlcpy(out, "?", size);
}

/* "mode M, max_age N, mx: P, P" (no newline). */
static void policy_print(const struct sts_policy *p)
{
	printf("mode %s, max_age %u", sts_mode_name(p->mode), (unsigned)p->max_age);
	for (size_t i = 0; i < p->nmx; i++)
		printf("%s%s", i ? ", " : ", mx: ", p->mx[i]);
}

/* The cache line, from a read-only open of the queue (as mailq opens it). */
static void cache_print(struct cli_sts *st, struct queue *q, const struct rl_why *qwhy, int qrc)
{
	struct queue_txn *t = NULL;
	struct queue_sts rec;
	struct rl_why why = {0};
	char from[40], until[40];
	int rc;

	if (!q && qrc == -ENOENT) {
		printf("MTA-STS cache: none cached (no queue at %s yet)\n", st->c->queue_dir);
		return;
	}
	if (!q) {
		printf("MTA-STS cache: none cached (cannot open the queue %s: %s)\n",
		       st->c->queue_dir, qwhy->reason ? qwhy->reason : rl_strerror(qrc));
		return;
	}
	rc = queue_txn_begin(q, 0, &t);
	if (rc == 0)
		rc = queue_sts_get(t, st->domain, &rec);
	if (rc == -ENOENT) {
		printf("MTA-STS cache: none cached\n");
	} else if (rc < 0) {
		printf("MTA-STS cache: not read (%s)\n", rl_strerror(rc));
	} else {
		time_text(rec.fetched, from, sizeof(from));
		time_text(rec.expires, until, sizeof(until));
		printf("MTA-STS cache: id %s, fetched %s, expires %s%s", rec.id, from, until,
		       rec.expires <= (int64_t)time(NULL) ? " (expired)" : "");
		if (sts_policy_parse(rec.body, rec.len, &st->scratch, &why) == 0) {
			printf(", ");
			policy_print(&st->scratch);
			printf("\n");
		} else {
			printf(": not usable (%s)\n",
			       why.reason ? why.reason : rl_strerror(why.code));
		}
	}
	queue_txn_abort(t);
}

/* The lookup is over: keep its outcome and let the loop end. */
static void sts_on_result(void *arg, const struct mtasts_result *r)
{
	struct cli_sts *st = arg;

	st->done = 1;
	st->mode = r->mode;
	if (r->mode != POL_STS_NONE)
		st->pol = *r->policy;
	rl_strlcpy(st->source, r->source, sizeof(st->source));
	rl_strlcpy(st->id, r->id, sizeof(st->id));
	/* Both are safe to free inside their own callbacks. */
	dns_free(st->dns);
	https_free(st->https);
	st->dns = NULL;
	st->https = NULL;
}

/* Why the policy in force is the one it is (the relay's choice, mtasts.c). */
static void in_force_print(const struct cli_sts *st)
{
	const struct mtasts_report *rep = &st->rep;
	int cache = strcmp(st->source, "cache") == 0;
	const char *why;

	if (strcmp(st->source, "none") == 0) {
		printf("MTA-STS: in force: none (%s, nothing cached)\n",
		       rep->txt_id[0] ? "the fetch failed" : "no MTA-STS record");
		return;
	}
	if (!cache)
		why = "";
	else if (rep->txt_id[0] && strcmp(rep->txt_id, st->id) == 0 && !rep->stale)
		why = ": the record's id";
	else if (!rep->txt_id[0])
		why = ": no MTA-STS record, kept until it expires";
	else
		why = ": the fetch failed, kept until it expires";
	if (st->mode == POL_STS_NONE)
		printf("MTA-STS: in force: none (mode none: the %s policy, id %s%s)\n",
		       cache ? "cached" : "fetched", st->id, why);
	else
		printf("MTA-STS: in force: %s (the %s policy, id %s%s)\n",
		       st->mode == POL_STS_ENFORCE ? "enforce" : "testing",
		       cache ? "cached" : "fetched", st->id, why);
}

/* The lines of the lookup's steps. */
static void steps_print(const struct cli_sts *st)
{
	const struct mtasts_report *rep = &st->rep;

	if (rep->txt_id[0])
		printf("MTA-STS record: id %s (_mta-sts.%s)\n", rep->txt_id, st->domain);
	else
		printf("MTA-STS record: none (%s)\n", rep->txt_why);
	if (rep->fetch == MTASTS_FETCHED_OK) {
		printf("MTA-STS fetch: id %s, ", rep->txt_id);
		policy_print(&rep->fetched);
		printf(" (https://mta-sts.%s/.well-known/mta-sts.txt)\n", st->domain);
	} else if (rep->fetch == MTASTS_FETCHED_FAILED) {
		printf("MTA-STS fetch: failed (%s): %s\n", rep->fail_type, rep->fail_why);
	} else {
		printf("MTA-STS fetch: not made (%s)\n",
		       rep->txt_id[0] ? "the cached policy has the record's id"
				      : "no MTA-STS record");
	}
	in_force_print(st);
}

/* Open what the lookup needs on loop; 0, or -1 with the reason printed. */
static int sts_open(struct cli_sts *st, uv_loop_t *loop)
{
	char err[300];

	if (dns_new(loop, st->c, &st->dns, err, sizeof(err)) < 0 ||
	    https_new(loop, &st->https, err, sizeof(err)) < 0) {
		printf("MTA-STS: not looked up (%s)\n", err);
		return -1;
	}
	return 0;
}

/*
 * The relay's lookup (flags: MTASTS_NO_STORE and maybe MTASTS_FETCH) with
 * its lines.  When it cannot be made, no policy is in force (said).
 */
static void sts_look(struct cli_sts *st, unsigned flags)
{
	struct rl_why qwhy = {0};
	struct queue *q = NULL;
	struct mtasts *m = NULL;
	uv_loop_t loop;
	int qrc, rc;

	rl_strlcpy(st->source, "none", sizeof(st->source));
	qrc = cli_queue_privs(st->c, 0) < 0
		  ? RL_ECONFIG
		  : queue_open(st->c->queue_dir, st->c->queue_max_size, QUEUE_O_RDONLY, &q, &qwhy);
	cache_print(st, q, &qwhy, qrc);
	rc = uv_loop_init(&loop);
	if (rc < 0) {
		printf("MTA-STS: not looked up (cannot make a loop: %s)\n", uv_strerror(rc));
		queue_close(q);
		return;
	}
	rc = sts_open(st, &loop);
	if (rc == 0) {
		m = mtasts_new(&(struct mtasts_params){st->dns, st->https, q, NULL, st->c});
		rc = m ? mtasts_lookup_report(m, st->domain, flags, &st->rep, sts_on_result, st)
		       : -ENOMEM;
		if (rc < 0)
			printf("MTA-STS: not looked up (%s)\n", rl_strerror(rc));
	}
	if (rc < 0) {
		dns_free(st->dns);
		https_free(st->https);
		st->dns = NULL;
		st->https = NULL;
	}
	/* Runs until the lookup ends (or, after a failure, the handles close). */
	uv_run(&loop, UV_RUN_DEFAULT);
	mtasts_free(m);
	RL_REQUIRE(uv_loop_close(&loop) == 0);
	queue_close(q);
	if (st->done)
		steps_print(st);
}

static struct cli_sts *sts_new(const struct cfg *c, const char *domain)
{
	struct cli_sts *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->c = c;
	rl_strlcpy(st->domain, domain, sizeof(st->domain));
	/* The relay's key for the policy and its cache (mtasts.c). */
	for (char *p = st->domain; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	return st;
}

struct cli_sts *cli_sts_show(const struct cfg *c, const struct pol_entry *e, const char *domain)
{
	struct cli_sts *st;

	if (!c->mta_sts) {
		printf("MTA-STS: not used (mta_sts = no)\n");
		return NULL;
	}
	if (e) {
		/* As dest_sts_start(): the administrator's word wins, nothing is fetched. */
		printf("MTA-STS: not looked up (the policy entry %s wins, policy file %s:%u)\n",
		       e->domain, c->policy_file, e->line);
		return NULL;
	}
	st = sts_new(c, domain);
	if (!st) {
		printf("MTA-STS: not looked up (%s)\n", rl_strerror(-ENOMEM));
		return NULL;
	}
	/* Fetched also when the cache is current: the show prints both. */
	sts_look(st, MTASTS_NO_STORE | MTASTS_FETCH);
	return st;
}

/*
 * pol_peer_sts() on s, as sess_policy() applies it, and the rule that won
 * into text.  Returns what pol_peer_sts() returned (reason set).
 */
static int sts_apply(const struct cli_sts *st, const struct cfg *c, struct pol_peer_sess *s,
		     const char *host, char *reason, size_t rsize, char *text, size_t tsize)
{
	const char *level = pol_level_name(s->pol.level), *dsn;
	struct pol_sts sp = {st->mode, sts_mx_match(&st->pol, host), st->domain};
	int rc = pol_peer_sts(s, &sp, host, &dsn, reason, rsize);

	if (rc < 0)
		snprintf(text, tsize, "MTA-STS enforce: mail deferred: %s", reason);
	else if (s->entry)
		snprintf(text, tsize, "policy file entry (level %s: it wins over MTA-STS)", level);
	else if (s->pol.ntlsa > 0)
		snprintf(text, tsize, "DANE (level %s: usable TLSA records win over MTA-STS)",
			 level);
	else if (s->pol.sts_enforce)
		snprintf(text, tsize,
			 "MTA-STS enforce (level verify: %s matches the policy of %s, id %s; the "
			 "certificate must chain to %s and be valid for %s)",
			 host, st->domain, st->id,
			 c->tls_ca_file ? c->tls_ca_file : "the system trust store", host);
	else
		snprintf(text, tsize,
			 "MTA-STS testing (level %s, from default_tls_level; %s %s the policy of "
			 "%s, id %s; what enforce would refuse is only reported)",
			 level, host, sp.mx_match ? "matches" : "does not match", st->domain,
			 st->id);
	return rc;
}

void cli_sts_show_host(const struct cli_sts *st, const struct cfg *c, struct pol_peer_sess *s,
		       const char *host)
{
	char reason[STS_TEXT], text[2 * STS_TEXT];

	if (!st || st->mode == POL_STS_NONE)
		return;
	(void)sts_apply(st, c, s, host, reason, sizeof(reason), text, sizeof(text));
	printf("  rule: %s\n", text);
}

int cli_sts_peer(const struct cfg *c, const char *domain, const char *host, struct pol_peer_sess *s,
		 struct cli_sts **out, char *reason, size_t rsize)
{
	char alabel[DNS_NAME_MAX], text[2 * STS_TEXT];
	const char *err = NULL;
	struct cli_sts *st;

	*out = NULL;
	reason[0] = '\0';
	if (dns_alabel(domain, alabel, sizeof(alabel), &err) < 0) {
		fprintf(stderr, "tlsrelay: %s: %s\n", domain, err ? err : "bad name");
		return -1;
	}
	st = sts_new(c, alabel);
	if (!st) {
		printf("MTA-STS: not looked up (%s)\n", rl_strerror(-ENOMEM));
		return 0;
	}
	*out = st;
	/* As the relay looks it up: the cache while it is current. */
	sts_look(st, MTASTS_NO_STORE);
	if (st->mode == POL_STS_NONE)
		return 0;
	if (sts_apply(st, c, s, host, reason, rsize, text, sizeof(text)) < 0) {
		printf("rule: %s\n", text);
		return RL_EPOLICY;
	}
	printf("rule: %s\n", text);
	return 0;
}

void cli_sts_free(struct cli_sts *st)
{
	free(st);
}
