/*
 * auth_throttle: failed AUTH attempts per client address.
 *
 * A table of fixed capacity, so memory is bounded by configuration and not
 * by the number of addresses that ever failed: when it is full, the entry
 * whose last failure is oldest makes room (it is the one least likely to
 * matter).  An address's count is forgotten once AUTH_THROTTLE_WINDOW_MS
 * pass without a failure from it.  Lookups scan the table; it is small
 * (a few thousand entries) and consulted only on AUTH.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

#define AUTH_ADDR_MAX 46 /* INET6_ADDRSTRLEN */

struct auth_slot {
	char addr[AUTH_ADDR_MAX];
	unsigned count;
	uint64_t last; /* ms of the last failure; 0: free slot */
};

struct auth_throttle {
	struct auth_slot *s;
	size_t cap;
};

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

static struct auth_slot *slot_find(struct auth_throttle *t, const char *addr)
{
	for (size_t i = 0; i < t->cap; i++)
		if (t->s[i].last && strcmp(t->s[i].addr, addr) == 0)
			return &t->s[i];
	return NULL;
}

static int slot_live(const struct auth_slot *s, uint64_t now)
{
	return s && s->last && now - s->last < AUTH_THROTTLE_WINDOW_MS;
}

unsigned auth_throttle_count(struct auth_throttle *t, const char *addr, uint64_t now_ms)
{
	struct auth_slot *s = t ? slot_find(t, addr) : NULL;

	return slot_live(s, now_ms) ? s->count : 0;
}

unsigned auth_throttle_fail(struct auth_throttle *t, const char *addr, uint64_t now_ms)
{
	struct auth_slot *s, *old;

	if (!t)
		return 0;
	/* 0 marks a free slot: a clock at 0 counts as 1 ms. */
	if (now_ms == 0)
		now_ms = 1;
	s = slot_find(t, addr);
	if (!s) {
		old = &t->s[0];
		for (size_t i = 0; i < t->cap && old->last; i++)
			if (!t->s[i].last || t->s[i].last < old->last)
				old = &t->s[i];
		s = old;
		memset(s, 0, sizeof(*s));
		rl_strlcpy(s->addr, addr, sizeof(s->addr));
	}
	if (!slot_live(s, now_ms))
		s->count = 0;
	if (s->count < UINT32_MAX)
		s->count++;
	s->last = now_ms;
	return s->count;
}
