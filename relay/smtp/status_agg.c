/*
 * status_agg: what `tlsrelay status` counts, from decoded envelopes and
 * the per-minute counters; pure (status.h).  The failing destinations are
 * a hash table of (domain, reason) pairs with a fixed cap, so a queue of
 * a million messages to a million domains costs at most STATUS_GROUPS_MAX
 * pairs of memory.  Past the cap the table is a Space-Saving summary
 * (status.h): the pair with the fewest messages, the root of a min-heap,
 * gives its slot to the new one, which inherits that count as its error.
 * The queue is read in ID order, which says nothing about where the big
 * destinations are; keeping the first pairs met instead (as this did
 * before) could leave out the worst destination of all.  Each step costs
 * O(log N) for the heap and a short probe of the hash table; nothing
 * scans the table.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailq.h"
#include "status.h"

#define STATUS_SLOTS (2 * STATUS_GROUPS_MAX) /* load factor at most 1/2 */

void status_agg_init(struct status_agg *a)
{
	memset(a, 0, sizeof(*a));
}

void status_agg_fini(struct status_agg *a)
{
	for (size_t i = 0; a->g && i < STATUS_GROUPS_MAX; i++) {
		free(a->g[i].domain);
		free(a->g[i].reason);
	}
	free(a->g);
	free(a->slot);
	free(a->heap);
	memset(a, 0, sizeof(*a));
}

/* FNV-1a over the domain, a separator and the reason. */
static uint32_t group_hash(const char *dom, size_t dlen, const char *why, size_t wlen)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < dlen; i++)
		h = (h ^ (unsigned char)tolower((unsigned char)dom[i])) * 16777619u;
	h = (h ^ 0xffu) * 16777619u;
	for (size_t i = 0; i < wlen; i++)
		h = (h ^ (unsigned char)why[i]) * 16777619u;
	return h;
}

static int group_is(const struct status_group *g, const char *dom, size_t dlen, const char *why,
		    size_t wlen)
{
	return strlen(g->domain) == dlen && strncasecmp(g->domain, dom, dlen) == 0 &&
	       strlen(g->reason) == wlen && memcmp(g->reason, why, wlen) == 0;
}

/* The three arrays, made at the first deferred recipient.  -ENOMEM. */
static int agg_alloc(struct status_agg *a)
{
	if (a->slot)
		return 0;
	a->g = calloc(STATUS_GROUPS_MAX, sizeof(*a->g));
	a->heap = calloc(STATUS_GROUPS_MAX, sizeof(*a->heap));
	a->slot = calloc(STATUS_SLOTS, sizeof(*a->slot));
	if (a->g && a->heap && a->slot)
		return 0;
	free(a->g);
	free(a->heap);
	free(a->slot);
	a->g = NULL;
	a->heap = a->slot = NULL;
	return -ENOMEM;
}

static void heap_swap(struct status_agg *a, uint32_t i, uint32_t j)
{
	uint32_t x = a->heap[i];

	a->heap[i] = a->heap[j];
	a->heap[j] = x;
	a->g[a->heap[i]].heap = i;
	a->g[a->heap[j]].heap = j;
}

static uint64_t heap_key(const struct status_agg *a, uint32_t i)
{
	return a->g[a->heap[i]].msgs;
}

/* A new entry (the fewest messages of all, 0) at the end rises to its place. */
static void heap_up(struct status_agg *a, uint32_t i)
{
	while (i > 0 && heap_key(a, (i - 1) / 2) > heap_key(a, i)) {
		heap_swap(a, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

/* An entry whose count grew sinks below the smaller ones. */
static void heap_down(struct status_agg *a, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < a->ng && heap_key(a, l) < heap_key(a, m))
			m = l;
		if (r < a->ng && heap_key(a, r) < heap_key(a, m))
			m = r;
		if (m == i)
			return;
		heap_swap(a, i, m);
		i = m;
	}
}

/* Give g the pair's names (the domain in lower case); g unchanged on -ENOMEM. */
static int group_names(struct status_group *g, const char *dom, size_t dlen, const char *why,
		       size_t wlen)
{
	char *d = malloc(dlen + 1), *r = malloc(wlen + 1);

	if (!d || !r) {
		free(d);
		free(r);
		return -ENOMEM;
	}
	for (size_t i = 0; i < dlen; i++)
		d[i] = (char)tolower((unsigned char)dom[i]);
	d[dlen] = '\0';
	memcpy(r, why, wlen);
	r[wlen] = '\0';
	free(g->domain);
	free(g->reason);
	g->domain = d;
	g->reason = r;
	return 0;
}

/*
 * Drop entry gi from the index: linear probing's deletion by backward
 * shift, which moves later entries of the run into the hole unless their
 * home slot lies cyclically after it, so every lookup still finds them.
 */
static void slot_remove(struct status_agg *a, uint32_t gi)
{
	uint32_t i = a->g[gi].hash % STATUS_SLOTS, j, k;

	while (a->slot[i] != gi + 1)
		i = (i + 1) % STATUS_SLOTS;
	for (j = (i + 1) % STATUS_SLOTS; a->slot[j]; j = (j + 1) % STATUS_SLOTS) {
		k = a->g[a->slot[j] - 1].hash % STATUS_SLOTS;
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		a->slot[i] = a->slot[j];
		i = j;
	}
	a->slot[i] = 0;
}

static void slot_insert(struct status_agg *a, uint32_t gi)
{
	uint32_t i = a->g[gi].hash % STATUS_SLOTS;

	while (a->slot[i])
		i = (i + 1) % STATUS_SLOTS;
	a->slot[i] = gi + 1;
}

/*
 * The entry of a pair not in the table: a fresh one while there is room,
 * else the slot of the pair with the fewest messages (Space-Saving), whose
 * count stays as the new pair's error.  NULL when out of memory.
 */
static struct status_group *group_add(struct status_agg *a, uint32_t h, const char *dom,
				      size_t dlen, const char *why, size_t wlen)
{
	uint32_t gi = a->ng < STATUS_GROUPS_MAX ? (uint32_t)a->ng : a->heap[0];
	struct status_group *g = &a->g[gi];

	if (group_names(g, dom, dlen, why, wlen) < 0)
		return NULL;
	if (gi < a->ng) {
		slot_remove(a, gi);
		g->err = g->msgs; /* still the heap's root: no move */
		a->replaced++;
	} else {
		g->msgs = g->err = 0;
		g->heap = gi;
		a->heap[gi] = gi;
		a->ng++;
		heap_up(a, gi);
	}
	g->rcpts = 0;
	g->cut = 0;
	g->seen = 0; /* a->seq is at least 1 while a message is counted */
	g->oldest = INT64_MAX;
	g->hash = h;
	slot_insert(a, gi);
	return g;
}

/* The pair's entry, made or taken over if need be; NULL when out of memory. */
static struct status_group *group_get(struct status_agg *a, const char *dom, size_t dlen,
				      const char *why, size_t wlen)
{
	uint32_t h = group_hash(dom, dlen, why, wlen), i;

	if (agg_alloc(a) < 0)
		return NULL;
	for (i = h % STATUS_SLOTS; a->slot[i]; i = (i + 1) % STATUS_SLOTS) {
		struct status_group *g = &a->g[a->slot[i] - 1];

		if (g->hash == h && group_is(g, dom, dlen, why, wlen))
			return g;
	}
	return group_add(a, h, dom, dlen, why, wlen);
}

/* The domain of an address: after its last '@' (the whole address if none). */
static const char *addr_domain(const char *addr, size_t *len)
{
	const char *at = strrchr(addr, '@');
	const char *d = at ? at + 1 : addr;

	*len = strlen(d);
	return d;
}

static int agg_rcpt(struct status_agg *a, const struct queue_msg *m, const struct queue_rcpt *r)
{
	const char *why = r->reason && r->reason[0] ? r->reason : "(no reason recorded)";
	size_t dlen, wlen = strlen(why);
	const char *dom = addr_domain(r->address, &dlen);
	struct status_group *g;

	if (wlen > STATUS_REASON_MAX)
		wlen = STATUS_REASON_MAX;
	g = group_get(a, dom, dlen, why, wlen);
	if (!g)
		return -ENOMEM;
	if (wlen < strlen(why))
		g->cut = 1;
	g->rcpts++;
	if (g->seen != a->seq) {
		/* A message counts once per pair, however many recipients share it. */
		g->seen = a->seq;
		g->msgs++;
		heap_down(a, g->heap);
		if (m->arrival < g->oldest)
			g->oldest = m->arrival;
	}
	return 0;
}

static int queue_index(const char *name)
{
	static const char *const names[STATUS_Q_N] = {"incoming", "active", "deferred", "hold"};

	for (int i = 0; i < STATUS_Q_N; i++) {
		if (strcmp(name, names[i]) == 0)
			return i;
	}
	return STATUS_Q_DEFERRED;
}

/* Older arrival first; within one second, the smaller (earlier) ID. */
static int older(const struct queue_msg *m, const struct status_agg *a)
{
	if (!a->oldest_id[0] || m->arrival < a->oldest)
		return 1;
	return m->arrival == a->oldest && strcmp(m->id, a->oldest_id) < 0;
}

int status_agg_msg(struct status_agg *a, const struct queue_msg *m, int active)
{
	int q = queue_index(mailq_queue_name(m, active)), rc = 0;

	a->msgs[q]++;
	a->bytes[q] += m->size;
	if (older(m, a)) {
		a->oldest = m->arrival;
		rl_strlcpy(a->oldest_id, m->id, sizeof(a->oldest_id));
	}
	if (m->flags & QUEUE_F_HOLD)
		return 0; /* waits for the administrator, not for a destination */
	a->seq++;
	for (size_t i = 0; i < m->nrcpt && rc == 0; i++) {
		if (m->rcpt[i].state == QUEUE_RCPT_DEFERRED)
			rc = agg_rcpt(a, m, &m->rcpt[i]);
	}
	return rc;
}

static const char *const in_names[STATUS_IN_N] = {
    [STATUS_IN_NETWORK] = "smtpd:allowed:network",
    [STATUS_IN_CERTIFICATE] = "smtpd:allowed:certificate",
    [STATUS_IN_AUTH] = "smtpd:allowed:auth",
    [STATUS_IN_REFUSED] = "smtpd:refused",
    [STATUS_IN_AUTH_FAILED] = "smtpd:auth-failed",
};

const char *status_in_name(int k)
{
	return k >= 0 && k < STATUS_IN_N ? in_names[k] : NULL;
}

const char *const *status_in_names(void)
{
	return in_names;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/* An inbound counter ("smtpd:..."); 1 when name was one. */
static int agg_inbound(struct status_agg *a, const char *name, uint64_t n)
{
	for (int k = 0; k < STATUS_IN_N; k++) {
		if (strcmp(name, in_names[k]) == 0) {
			a->in_hour[k] = sat_add(a->in_hour[k], n);
			return 1;
		}
	}
	return 0;
}

void status_agg_count(struct status_agg *a, int64_t now, int64_t minute, const char *name,
		      uint64_t n)
{
	static const char *const status[QUEUE_PS_N] = {"sent", "deferred", "bounced"};
	const char *p = name, *colon;
	int s = -1, t;

	if (minute > now / 60 || minute <= now / 60 - STATUS_HOUR_MIN)
		return;
	if (agg_inbound(a, name, n))
		return;
	if (strncmp(p, "delivery:", 9) != 0)
		return;
	p += 9;
	colon = strchr(p, ':');
	if (!colon)
		return;
	for (int i = 0; i < QUEUE_PS_N; i++) {
		if ((size_t)(colon - p) == strlen(status[i]) &&
		    strncmp(p, status[i], colon - p) == 0)
			s = i;
	}
	t = strcmp(colon + 1, "no-connection") == 0 ? QUEUE_PT_NOSESS
						    : queue_posture_tls_index(colon + 1);
	if (s < 0 || t < 0 || t >= QUEUE_PT_N)
		return;
	a->hour[s][t] = sat_add(a->hour[s][t], n);
}

static int group_cmp(const void *x, const void *y)
{
	const struct status_group *a = x, *b = y;
	int c;

	if (a->msgs != b->msgs)
		return a->msgs > b->msgs ? -1 : 1;
	if (a->oldest != b->oldest)
		return a->oldest < b->oldest ? -1 : 1;
	c = strcmp(a->domain, b->domain);
	return c ? c : strcmp(a->reason, b->reason);
}

void status_agg_sort(struct status_agg *a)
{
	if (a->ng > 1)
		qsort(a->g, a->ng, sizeof(*a->g), group_cmp);
	/* The index and the heap no longer match: no more status_agg_msg() after this. */
	free(a->slot);
	free(a->heap);
	a->slot = a->heap = NULL;
}

void status_age(char *out, size_t size, int64_t secs)
{
	static const struct {
		int64_t len;
		char unit;
	} u[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
	size_t i = 0;

	if (secs < 0)
		secs = 0;
	while (i < 3 && secs < u[i].len)
		i++;
	if (i == 3 || secs % u[i].len / u[i + 1].len == 0)
		snprintf(out, size, "%lld%c", (long long)(secs / u[i].len), u[i].unit);
	else
		snprintf(out, size, "%lld%c %lld%c", (long long)(secs / u[i].len), u[i].unit,
			 (long long)(secs % u[i].len / u[i + 1].len), u[i + 1].unit);
}
