/*
 * tlsrpt_count: TLS-RPT session counts in memory, flushed to the queue's
 * "tlsrpt" database through the committer.
 *
 * Sessions are counted per (UTC day, policy domain) into at most
 * TLSRPT_MEM_MAX records in memory.  Every TLSRPT_FLUSH_MS, when the
 * table fills up, and at shutdown the table moves into one commit request
 * whose apply merges each record into the stored one (on the worker
 * thread, in one write transaction), and a fresh table starts.  While a
 * flush is in flight and the new table is full, further sessions are not
 * counted (memory stays bounded; a busy relay flushes every few seconds).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "queue.h"
#include "tlsrpt.h"

struct rpt_entry {
	char day[QUEUE_TLSRPT_DAY_LEN + 1];
	char domain[QUEUE_STS_DOMAIN_MAX + 1];
	struct queue_tlsrpt *rec;
};

struct rpt_batch {
	struct commit_req req;
	struct tlsrpt_counter *c;
	size_t n;
	struct rpt_entry e[TLSRPT_MEM_MAX];
};

struct tlsrpt_counter {
	uv_timer_t timer;
	struct committer *commit;
	size_t n;
	struct rpt_entry e[TLSRPT_MEM_MAX];
	struct rpt_batch *inflight;
	uint64_t dropped;
	int stopping, closed;
};

void tlsrpt_day(int64_t when, char *out, size_t size)
{
	time_t t = (time_t)when;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%d", &tm);
}

static void entries_free(struct rpt_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].rec);
		e[i].rec = NULL;
	}
}

/* Worker thread: merge each record of the batch into the stored one. */
static int batch_apply(struct queue_txn *t, struct commit_req *r)
{
	struct rpt_batch *b = (struct rpt_batch *)r;
	struct queue_tlsrpt *cur = malloc(sizeof(*cur));
	int rc = 0;

	if (!cur)
		return -ENOMEM;
	for (size_t i = 0; i < b->n && rc == 0; i++) {
		rc = queue_tlsrpt_get(t, b->e[i].day, b->e[i].domain, cur);
		if (rc == -ENOENT || rc == RL_EPARSE) {
			/* Nothing yet, or a damaged record: start again from ours. */
			memset(cur, 0, sizeof(*cur));
			rc = 0;
		}
		if (rc == 0) {
			queue_tlsrpt_merge(cur, b->e[i].rec);
			rc = queue_tlsrpt_put(t, b->e[i].day, b->e[i].domain, cur);
		}
	}
	free(cur);
	return rc;
}

static void batch_done(struct commit_req *r)
{
	struct rpt_batch *b = (struct rpt_batch *)r;
	struct tlsrpt_counter *c = b->c;

	if (r->result < 0)
		log_warn("tlsrpt: cannot store the counts of %zu domain(s): %s", b->n,
			 rl_strerror(r->result));
	entries_free(b->e, b->n);
	free(b);
	c->inflight = NULL;
	/* What gathered meanwhile goes at once when stopping. */
	if (c->stopping && c->n)
		tlsrpt_counter_flush(c);
}

void tlsrpt_counter_flush(struct tlsrpt_counter *c)
{
	struct rpt_batch *b;

	if (c->inflight || c->n == 0)
		return;
	b = calloc(1, sizeof(*b));
	if (!b)
		return; /* the next flush tries again */
	b->c = c;
	b->n = c->n;
	memcpy(b->e, c->e, c->n * sizeof(c->e[0]));
	memset(c->e, 0, sizeof(c->e));
	c->n = 0;
	b->req.apply = batch_apply;
	b->req.done = batch_done;
	c->inflight = b;
	committer_submit(c->commit, &b->req);
}

static void counter_tick(uv_timer_t *t)
{
	tlsrpt_counter_flush(t->data);
}

struct tlsrpt_counter *tlsrpt_counter_new(uv_loop_t *loop, struct committer *commit)
{
	struct tlsrpt_counter *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->commit = commit;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	uv_timer_start(&c->timer, counter_tick, TLSRPT_FLUSH_MS, TLSRPT_FLUSH_MS);
	return c;
}

static struct rpt_entry *counter_entry(struct tlsrpt_counter *c, const char *day,
				       const char *domain)
{
	struct rpt_entry *e;

	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->e[i].day, day) == 0 && strcasecmp(c->e[i].domain, domain) == 0)
			return &c->e[i];
	if (c->n == TLSRPT_MEM_MAX)
		tlsrpt_counter_flush(c);
	if (c->n == TLSRPT_MEM_MAX)
		return NULL;
	e = &c->e[c->n];
	e->rec = calloc(1, sizeof(*e->rec));
	if (!e->rec)
		return NULL;
	rl_strlcpy(e->day, day, sizeof(e->day));
	rl_strlcpy(e->domain, domain, sizeof(e->domain));
	c->n++;
	return e;
}

void tlsrpt_count(struct tlsrpt_counter *c, const char *domain, int64_t now,
		  const struct queue_tlsrpt_sess *s)
{
	char day[QUEUE_TLSRPT_DAY_LEN + 1];
	struct rpt_entry *e;

	if (!c || c->closed)
		return;
	tlsrpt_day(now, day, sizeof(day));
	e = counter_entry(c, day, domain);
	if (!e) {
		if (c->dropped++ == 0)
			log_warn("tlsrpt: counts table full, sessions not counted until it is written");
		return;
	}
	queue_tlsrpt_add(e->rec, s);
}

void tlsrpt_counter_stop(struct tlsrpt_counter *c)
{
	if (!c || c->stopping)
		return;
	c->stopping = 1;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, NULL);
	c->closed = 1;
	tlsrpt_counter_flush(c);
}

int tlsrpt_counter_idle(const struct tlsrpt_counter *c)
{
	return !c || (!c->inflight && c->n == 0);
}

void tlsrpt_counter_free(struct tlsrpt_counter *c)
{
	if (!c)
		return;
	entries_free(c->e, c->n);
	free(c);
}
