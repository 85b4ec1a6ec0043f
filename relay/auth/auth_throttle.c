/*
 * auth_throttle: failed AUTH attempts and checks in flight per client.
 *
 * The key of a client is its IPv4 address, or the /64 of its IPv6 address
 * (an IPv4-mapped IPv6 address counts as the IPv4 address it carries): a
 * single IPv6 subscriber or server usually holds a whole /64, and keying on
 * the full address would give it 2^64 fresh counts.
 *
 * A table of fixed capacity, so memory is bounded by configuration and not
 * by the number of clients that ever failed: when it is full, the entry
 * whose last failure is oldest makes room (it is the one least likely to
 * matter), but never one with a check in flight, whose count the check's
 * end must find.  A key's failures are forgotten once AUTH_THROTTLE_WINDOW_MS
 * pass without a failure from it.  Lookups scan the table; it is small (a
 * few thousand entries) and consulted only on AUTH.
 *
 * Besides, the failures of all clients together per second over the last
 * window (AUTH_THROTTLE_WINDOW_MS / 1000 buckets), for a global budget.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth.h"

#define AUTH_BUCKETS (AUTH_THROTTLE_WINDOW_MS / 1000)

struct auth_slot {
	struct auth_key key;
	int used;	  /* else free */
	unsigned count;	  /* failures in the window ending at last */
	unsigned pending; /* checks begun and not ended */
	uint64_t last;	  /* ms of the last failure (0: none yet) */
};

struct auth_throttle {
	struct auth_slot *s;
	size_t cap;
	uint64_t sec[AUTH_BUCKETS]; /* the second each bucket counts */
	unsigned n[AUTH_BUCKETS];   /* failures of all keys in that second */
};

void auth_key_of(const struct sockaddr *sa, struct auth_key *k)
{
	memset(k, 0, sizeof(*k));
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		k->family = 4;
		memcpy(k->b, &in->sin_addr, 4);
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const unsigned char *a = in6->sin6_addr.s6_addr;
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			k->family = 4;
			memcpy(k->b, a + 12, 4);
		} else {
			k->family = 6;
			memcpy(k->b, a, 8); /* the /64 */
		}
	}
	/* Anything else (an unknown peer) shares the one key of family 0. */
}

int auth_key_eq(const struct auth_key *a, const struct auth_key *b)
{
	return a->family == b->family && memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

void auth_key_text(const struct auth_key *k, char *out, size_t size)
{
	unsigned char a6[16] = {0};
	char t[INET6_ADDRSTRLEN] = "unknown";

	if (k->family == 4) {
		inet_ntop(AF_INET, k->b, t, sizeof(t));
	} else if (k->family == 6) {
		memcpy(a6, k->b, 8);
		inet_ntop(AF_INET6, a6, t, sizeof(t));
	}
	snprintf(out, size, "%s%s", t, k->family == 6 ? "/64" : "");
}

int auth_throttle_new(size_t cap, struct auth_throttle **out)
{
	struct auth_throttle *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t || cap == 0 || !(t->s = calloc(cap, sizeof(*t->s)))) {
		free(t);
		return -ENOMEM;
	}
	t->cap = cap;
	*out = t;
	return 0;
}

void auth_throttle_free(struct auth_throttle *t)
{
	if (!t)
		return;
	free(t->s);
	free(t);
}

static struct auth_slot *slot_find(struct auth_throttle *t, const struct auth_key *k)
{
	for (size_t i = 0; i < t->cap; i++)
		if (t->s[i].used && auth_key_eq(&t->s[i].key, k))
			return &t->s[i];
	return NULL;
}

static int slot_live(const struct auth_slot *s, uint64_t now)
{
	return s && s->count && now - s->last < AUTH_THROTTLE_WINDOW_MS;
}

/*
 * Room for k: a free slot, else one whose failures expired, else the one
 * whose last failure is oldest; never one with a check in flight.  NULL
 * when every slot has one (more checks in flight than the table holds).
 */
static struct auth_slot *slot_make(struct auth_throttle *t, const struct auth_key *k, uint64_t now)
{
	struct auth_slot *best = NULL;

	for (size_t i = 0; i < t->cap; i++) {
		struct auth_slot *s = &t->s[i];

		if (!s->used || (s->pending == 0 && !slot_live(s, now))) {
			best = s;
			break;
		}
		if (s->pending == 0 && (!best || s->last < best->last))
			best = s;
	}
	if (!best)
		return NULL;
	memset(best, 0, sizeof(*best));
	best->used = 1;
	best->key = *k;
	return best;
}

unsigned auth_throttle_count(struct auth_throttle *t, const struct auth_key *k, uint64_t now_ms)
{
	struct auth_slot *s = t ? slot_find(t, k) : NULL;

	return slot_live(s, now_ms) ? s->count : 0;
}

unsigned auth_throttle_pending(struct auth_throttle *t, const struct auth_key *k)
{
	struct auth_slot *s = t ? slot_find(t, k) : NULL;

	return s ? s->pending : 0;
}

int auth_throttle_begin(struct auth_throttle *t, const struct auth_key *k, uint64_t now_ms)
{
	struct auth_slot *s = slot_find(t, k);

	if (!s && !(s = slot_make(t, k, now_ms)))
		return -ENOSPC;
	s->pending++;
	return 0;
}

/* The global count: one failure in the bucket of now's second. */
static void total_add(struct auth_throttle *t, uint64_t now)
{
	uint64_t sec = now / 1000;
	size_t b = (size_t)(sec % AUTH_BUCKETS);

	if (t->sec[b] != sec) {
		t->sec[b] = sec;
		t->n[b] = 0;
	}
	if (t->n[b] < UINT32_MAX)
		t->n[b]++;
}

unsigned auth_throttle_end(struct auth_throttle *t, const struct auth_key *k, uint64_t now_ms,
			   int failed)
{
	struct auth_slot *s = slot_find(t, k);

	/* Begun and not ended: the slot was kept (slot_make spares it). */
	RL_REQUIRE(s && s->pending > 0);
	s->pending--;
	if (!failed)
		return slot_live(s, now_ms) ? s->count : 0;
	total_add(t, now_ms);
	/* 0 marks "no failure yet": a clock at 0 counts as 1 ms. */
	if (now_ms == 0)
		now_ms = 1;
	if (!slot_live(s, now_ms))
		s->count = 0;
	if (s->count < UINT32_MAX)
		s->count++;
	s->last = now_ms;
	return s->count;
}

unsigned auth_throttle_total(const struct auth_throttle *t, uint64_t now_ms)
{
	uint64_t sec = now_ms / 1000;
	unsigned sum = 0;

	if (!t)
		return 0;
	for (size_t b = 0; b < AUTH_BUCKETS; b++)
		if (t->n[b] && t->sec[b] <= sec && sec - t->sec[b] < AUTH_BUCKETS)
			sum += t->n[b];
	return sum;
}
