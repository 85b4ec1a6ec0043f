/*
 * tally: named per-minute counters of events that have no queue write of
 * their own (inbound sessions, failed AUTH attempts), kept in memory and
 * added to the queue's "counts" database (queue_counts_add) for `tlsrelay
 * status`.
 *
 * - The table (struct tally_tab) is pure and fixed in size: at most
 *   TALLY_MINUTES_MAX minutes of at most TALLY_NAMES_MAX counters.  When a
 *   new minute finds it full, the oldest minute goes (counted in dropped):
 *   memory stays bounded whatever happens to the writes.
 * - The counter (struct tally) owns one table of what has not been written
 *   yet.  Its deltas reach LMDB in a transaction the committer writes
 *   anyway: as the rider of the committer's next batch (committer_on_batch),
 *   so while mail flows they cost no fsync of their own; when a whole
 *   TALLY_FLUSH_MS went by without any batch, one small request of their
 *   own goes to the committer (its worker thread: never an fsync on the
 *   loop), so an idle relay writes at most once a minute; and at
 *   tally_stop() (SIGTERM), the rest.  A message never waits for them: the
 *   rider joins a batch that leaves anyway, and adds a few keys to it.
 * - What a crash takes: the deltas not yet written, at most about two
 *   minutes' (2 * TALLY_FLUSH_MS) when idle, and the ones since the last
 *   batch while mail flows.  Counters for a status screen, not accounting:
 *   that is accepted.  A failed write puts its deltas back into the table
 *   (within its bound); at stop it drops them, so that shutdown ends.
 *
 * Loop thread only, except the request's apply (the committer's worker).
 * Names are borrowed for the counter's life and must be valid counts names
 * (queue.h): a bad one fails every write it is in (RL_REQUIRE at tally_new).
 */
#ifndef TALLY_H
#define TALLY_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "commit.h"

#define TALLY_NAMES_MAX	  8	/* counters of one tally */
#define TALLY_MINUTES_MAX 16	/* minutes not yet written; the oldest goes past this */
#define TALLY_FLUSH_MS	  60000 /* an idle relay writes at most this often */

struct tally_min {
	int64_t minute; /* epoch seconds / 60 */
	uint64_t n[TALLY_NAMES_MAX];
};

struct tally_tab {
	size_t nmin;
	struct tally_min m[TALLY_MINUTES_MAX];
	uint64_t dropped; /* counts lost to the bound (the oldest minutes) */
};

/* Add n to counter k (< TALLY_NAMES_MAX) of minute; saturates.  Pure. */
void tally_tab_add(struct tally_tab *t, int64_t minute, size_t k, uint64_t n);
/* Add every count of from into into (the same bound applies).  Pure. */
void tally_tab_merge(struct tally_tab *into, const struct tally_tab *from);
/* Whether t holds no count. */
int tally_tab_empty(const struct tally_tab *t);

struct tally;

/*
 * A counter of names[0..n-1] (n <= TALLY_NAMES_MAX; names borrowed until
 * tally_free) writing through c, which must outlive it; it becomes c's
 * rider (committer_on_batch) and starts a TALLY_FLUSH_MS timer on loop.
 * NULL when out of memory.
 */
struct tally *tally_new(uv_loop_t *loop, struct committer *c, const char *const *names, size_t n);
/* Count n events of counter k in the current minute.  t NULL, or stopped: nothing. */
void tally_add(struct tally *t, size_t k, uint64_t n);
/* Hand what is counted to the committer now (unless both writes of ours are out). */
void tally_flush(struct tally *t);
/* No more counting: stop the timer and write the rest (idempotent; NULL: no-op). */
void tally_stop(struct tally *t);
/* Nothing counted is unwritten and no write is in flight (NULL: idle). */
int tally_idle(const struct tally *t);
/* Free; after tally_stop() once the loop closed the timer.  NULL: no-op. */
void tally_free(struct tally *t);

#endif
