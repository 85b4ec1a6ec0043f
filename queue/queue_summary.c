/*
 * queue_summary: what the metrics endpoint shows of the queue, read in one
 * read transaction: messages by Postfix queue name (as mailq names them),
 * the oldest arrival, and how much of the LMDB map is in use.
 *
 * Only the fixed head of each envelope is decoded (queue_rec_peek), never
 * its recipients, so a scrape costs one cursor pass over "msg" and one
 * lookup in "active" per message.
 */
#include "queue.h"
#include "queue_db.h"
#include "queue_int.h"

#include <string.h>

static void summary_map(struct queue_txn *t, struct queue_summary *s)
{
	MDB_dbi dbis[] = {0,
			  t->q->msg,
			  t->q->body,
			  t->q->sched,
			  t->q->meta,
			  t->q->active,
			  t->q->has_sts ? t->q->sts : 0,
			  t->q->has_tlsrpt ? t->q->tlsrpt : 0,
			  t->q->has_posture ? t->q->posture : 0,
			  t->q->has_counts ? t->q->counts : 0};
	MDB_envinfo info;
	MDB_stat st;
	uint64_t pages = 0;

	if (mdb_env_info(t->q->env, &info) != 0 || mdb_stat(t->txn, 0, &st) != 0)
		return;
	s->map_size = (uint64_t)info.me_mapsize;
	/* Pages that hold data now (as queue_has_room counts them, which decides
	 * 452 4.3.1), not LMDB's free list: the fill the relay refuses mail by. */
	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
		MDB_stat ds;

		if (i > 0 && dbis[i] == 0)
			continue;
		if (mdb_stat(t->txn, dbis[i], &ds) != 0)
			return;
		pages += ds.ms_branch_pages + ds.ms_leaf_pages + ds.ms_overflow_pages;
	}
	s->map_used = pages * st.ms_psize;
}

int queue_summary(struct queue_txn *t, struct queue_summary *s)
{
	struct queue_rec_head h;
	MDB_cursor *c;
	MDB_val k, v, a;
	int mrc;

	memset(s, 0, sizeof(*s));
	if (t->err)
		return t->err;
	summary_map(t, s);
	mrc = mdb_cursor_open(t->txn, t->q->msg, &c);
	if (mrc)
		return queue_db_fail(t, mrc);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !mrc;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (queue_rec_peek(v.mv_data, v.mv_size, &h) < 0)
			continue;
		if (h.flags & QUEUE_F_HOLD)
			s->hold++;
		else if (mdb_get(t->txn, t->q->active, &k, &a) == 0)
			s->active++;
		else if (h.attempts)
			s->deferred++;
		else
			s->incoming++;
		if (s->oldest == 0 || h.arrival < s->oldest)
			s->oldest = h.arrival;
	}
	mdb_cursor_close(c);
	return mrc == MDB_NOTFOUND ? 0 : queue_db_fail(t, mrc);
}
