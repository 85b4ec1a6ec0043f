/*
 * tally: per-minute counters in memory, written into the queue's "counts"
 * database as the rider of the committer's batches, or by themselves when
 * the relay is idle (tally.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "queue.h"
#include "tally.h"

/* What is being written: a copy of the table, taken whole. */
struct tally_req {
	struct commit_req req;
	struct tally *t;
	struct tally_tab tab;
	int busy; /* handed to the committer, done() not yet run */
};

/*
 * Two writes may be out at once: the committer forms its next batch (and
 * asks the rider) before it runs the done() callbacks of the one that
 * just finished, so with one slot every other batch would go without
 * the counts.
 */
#define TALLY_SLOTS 2

struct tally {
	uv_timer_t timer;
	struct committer *commit;
	const char *const *names;
	size_t nnames;
	struct tally_tab pending;	 /* counted, not yet handed to the committer */
	struct tally_req w[TALLY_SLOTS]; /* the writes; busy ones are out */
	int inflight;			 /* busy slots */
	int batched;			 /* the committer formed a batch since the last tick */
	int failing;			 /* the last write failed (logged once) */
	int stopping;
};

/* --- the table (pure) ------------------------------------------------------ */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static uint64_t min_sum(const struct tally_min *m)
{
	uint64_t s = 0;

	for (size_t k = 0; k < TALLY_NAMES_MAX; k++)
		s = sat_add(s, m->n[k]);
	return s;
}

/* The slot of minute, made if needed; full: the oldest minute makes room. */
static struct tally_min *tab_slot(struct tally_tab *t, int64_t minute)
{
	size_t old = 0;

	for (size_t i = 0; i < t->nmin; i++) {
		if (t->m[i].minute == minute)
			return &t->m[i];
		if (t->m[i].minute < t->m[old].minute)
			old = i;
	}
	if (t->nmin < TALLY_MINUTES_MAX) {
		memset(&t->m[t->nmin], 0, sizeof(t->m[0]));
		t->m[t->nmin].minute = minute;
		return &t->m[t->nmin++];
	}
	/* A minute older than all we keep is the one that goes. */
	if (minute < t->m[old].minute)
		return NULL;
	t->dropped = sat_add(t->dropped, min_sum(&t->m[old]));
	memset(&t->m[old], 0, sizeof(t->m[0]));
	t->m[old].minute = minute;
	return &t->m[old];
}

void tally_tab_add(struct tally_tab *t, int64_t minute, size_t k, uint64_t n)
{
	struct tally_min *m;

	RL_REQUIRE(k < TALLY_NAMES_MAX);
	if (n == 0)
		return;
	m = tab_slot(t, minute);
	if (!m) {
		t->dropped = sat_add(t->dropped, n);
		return;
	}
	m->n[k] = sat_add(m->n[k], n);
}

void tally_tab_merge(struct tally_tab *into, const struct tally_tab *from)
{
	for (size_t i = 0; i < from->nmin; i++) {
		for (size_t k = 0; k < TALLY_NAMES_MAX; k++)
			tally_tab_add(into, from->m[i].minute, k, from->m[i].n[k]);
	}
	into->dropped = sat_add(into->dropped, from->dropped);
}

int tally_tab_empty(const struct tally_tab *t)
{
	for (size_t i = 0; i < t->nmin; i++) {
		if (min_sum(&t->m[i]))
			return 0;
	}
	return 1;
}

/* --- the write ------------------------------------------------------------- */

/* Worker thread: each minute's non-zero counts, in the batch's transaction. */
static int tally_apply(struct queue_txn *qt, struct commit_req *r)
{
	struct tally_req *w = (struct tally_req *)r;
	const struct tally *t = w->t;
	struct queue_count v[TALLY_NAMES_MAX];
	int rc = 0;

	for (size_t i = 0; i < w->tab.nmin && rc == 0; i++) {
		size_t n = 0;

		for (size_t k = 0; k < t->nnames; k++) {
			if (w->tab.m[i].n[k])
				v[n++] = (struct queue_count){t->names[k], w->tab.m[i].n[k]};
		}
		if (n)
			rc = queue_counts_add(qt, w->tab.m[i].minute * 60, v, n);
	}
	return rc;
}

static void tally_done(struct commit_req *r)
{
	struct tally_req *w = (struct tally_req *)r;
	struct tally *t = w->t;

	w->busy = 0;
	t->inflight--;
	if (r->result < 0) {
		if (!t->failing)
			log_warn("cannot write the activity counters to the queue: %s%s",
				 rl_strerror(r->result),
				 t->stopping ? " (lost)" : " (kept for the next write)");
		t->failing = 1;
		/* At stop they go, so that the shutdown ends. */
		if (!t->stopping)
			tally_tab_merge(&t->pending, &w->tab);
	} else {
		t->failing = 0;
	}
	if (t->pending.dropped) {
		log_warn("%llu activity count(s) lost: more than %d minutes were not written",
			 (unsigned long long)t->pending.dropped, TALLY_MINUTES_MAX);
		t->pending.dropped = 0;
	}
	/* What gathered meanwhile goes at once when stopping. */
	if (t->stopping)
		tally_flush(t);
}

/* Move the pending counts into a free request; NULL when there is nothing or no free slot. */
static struct commit_req *tally_take(struct tally *t)
{
	struct tally_req *w = NULL;

	for (size_t i = 0; i < TALLY_SLOTS && !w; i++)
		w = t->w[i].busy ? NULL : &t->w[i];
	if (!w || tally_tab_empty(&t->pending))
		return NULL;
	w->tab = t->pending;
	w->tab.dropped = 0;
	t->pending.nmin = 0;
	w->req.apply = tally_apply;
	w->req.done = tally_done;
	w->busy = 1;
	t->inflight++;
	return &w->req;
}

/* The committer forms a batch: our counts ride along. */
static struct commit_req *tally_rider(void *arg)
{
	struct tally *t = arg;

	t->batched = 1;
	return tally_take(t);
}

void tally_flush(struct tally *t)
{
	struct commit_req *r;

	if (!t)
		return;
	r = tally_take(t);
	/* The committer asks tally_rider() too: the pending table is empty now. */
	if (r)
		committer_submit(t->commit, r);
}

/* Idle: no batch took the counts for a whole period, so they go alone. */
static void tally_tick(uv_timer_t *h)
{
	struct tally *t = h->data;

	if (!t->batched)
		tally_flush(t);
	t->batched = 0;
}

struct tally *tally_new(uv_loop_t *loop, struct committer *c, const char *const *names, size_t n)
{
	struct tally *t;

	RL_REQUIRE(n <= TALLY_NAMES_MAX);
	for (size_t k = 0; k < n; k++)
		RL_REQUIRE(names[k] && strlen(names[k]) <= QUEUE_COUNTS_NAME_MAX);
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->commit = c;
	t->names = names;
	t->nnames = n;
	for (size_t i = 0; i < TALLY_SLOTS; i++)
		t->w[i].t = t;
	uv_timer_init(loop, &t->timer);
	t->timer.data = t;
	uv_timer_start(&t->timer, tally_tick, TALLY_FLUSH_MS, TALLY_FLUSH_MS);
	committer_on_batch(c, tally_rider, t);
	return t;
}

void tally_add(struct tally *t, size_t k, uint64_t n)
{
	if (!t || t->stopping)
		return;
	RL_REQUIRE(k < t->nnames);
	tally_tab_add(&t->pending, (int64_t)time(NULL) / 60, k, n);
}

void tally_stop(struct tally *t)
{
	if (!t || t->stopping)
		return;
	t->stopping = 1;
	uv_timer_stop(&t->timer);
	uv_close((uv_handle_t *)&t->timer, NULL);
	tally_flush(t);
}

int tally_idle(const struct tally *t)
{
	return !t || (!t->inflight && tally_tab_empty(&t->pending));
}

void tally_free(struct tally *t)
{
	if (!t)
		return;
	RL_REQUIRE(t->inflight == 0);
	free(t);
}
