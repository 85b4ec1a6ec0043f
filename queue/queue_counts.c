/*
 * queue_counts: the activity counters per minute ("counts" database), the
 * last hour that `tlsrelay status` shows.  The contract is in queue.h.
 *
 * Keys sort by minute first (big-endian), so the oldest minutes are at
 * the front: pruning looks at the first keys only, and a reader of the
 * last hour starts its cursor at the first minute it wants.
 */
#include "queue.h"
#include "queue_db.h"

#include <errno.h>
#include <string.h>

#define COUNTS_KEY_MAX (8 + QUEUE_COUNTS_NAME_MAX)

static int counts_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > QUEUE_COUNTS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == ':' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static size_t counts_key(unsigned char *key, int64_t minute, const char *name, size_t len)
{
	uint64_t m = (uint64_t)minute;

	for (int i = 7; i >= 0; i--, m >>= 8)
		key[i] = (unsigned char)(m & 0xff);
	memcpy(key + 8, name, len);
	return 8 + len;
}

static int64_t counts_key_minute(const unsigned char *key)
{
	uint64_t m = 0;

	for (int i = 0; i < 8; i++)
		m = m << 8 | key[i];
	return (int64_t)m;
}

static uint64_t counts_value(const MDB_val *v, int *ok)
{
	const unsigned char *p = v->mv_data;
	uint64_t n = 0;

	*ok = v->mv_size == 8;
	if (!*ok)
		return 0;
	for (int i = 7; i >= 0; i--)
		n = n << 8 | p[i];
	return n;
}

/* Remove up to QUEUE_COUNTS_PRUNE_MAX entries of minutes before keep_from. */
static int counts_prune(struct queue_txn *t, int64_t keep_from)
{
	MDB_cursor *c;
	MDB_val k, v;
	int mrc, n = 0;

	mrc = mdb_cursor_open(t->txn, t->q->counts, &c);
	if (mrc)
		return queue_db_fail(t, mrc);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !mrc && n < QUEUE_COUNTS_PRUNE_MAX;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT), n++) {
		/* A key too short to hold a minute is damage: it goes too. */
		if (k.mv_size >= 8 && counts_key_minute(k.mv_data) >= keep_from)
			break;
		mrc = mdb_cursor_del(c, 0);
		if (mrc)
			break;
	}
	mdb_cursor_close(c);
	return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : queue_db_fail(t, mrc);
}

static int counts_add_one(struct queue_txn *t, int64_t minute, const struct queue_count *e)
{
	unsigned char key[COUNTS_KEY_MAX], buf[8];
	MDB_val k, v;
	uint64_t have = 0, sum;
	int ok, mrc;

	k.mv_data = key;
	k.mv_size = counts_key(key, minute, e->name, strlen(e->name));
	mrc = mdb_get(t->txn, t->q->counts, &k, &v);
	if (mrc == 0)
		have = counts_value(&v, &ok); /* damaged (ok == 0): replaced */
	else if (mrc != MDB_NOTFOUND)
		return queue_db_fail(t, mrc);
	sum = have + e->n < have ? UINT64_MAX : have + e->n;
	for (int i = 0; i < 8; i++, sum >>= 8)
		buf[i] = (unsigned char)(sum & 0xff);
	v.mv_data = buf;
	v.mv_size = sizeof(buf);
	return queue_db_fail(t, mdb_put(t->txn, t->q->counts, &k, &v, 0));
}

int queue_counts_add(struct queue_txn *t, int64_t now, const struct queue_count *v, size_t n)
{
	int64_t minute = (now < 0 ? 0 : now) / 60;
	int rc = 0;

	RL_REQUIRE(t->write && t->q->has_counts);
	if (t->err)
		return t->err;
	for (size_t i = 0; i < n; i++) {
		if (!v[i].name || !counts_name_valid(v[i].name, strlen(v[i].name)))
			return -EINVAL;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (v[i].n > 0)
			rc = counts_add_one(t, minute, &v[i]);
	}
	if (rc == 0)
		rc = counts_prune(t, minute - QUEUE_COUNTS_KEEP_MIN + 1);
	return rc;
}

int queue_counts_foreach(struct queue_txn *t, int64_t from_minute,
			 int (*fn)(void *arg, int64_t minute, const char *name, uint64_t n),
			 void *arg)
{
	unsigned char key[8];
	char name[QUEUE_COUNTS_NAME_MAX + 1];
	MDB_cursor *c;
	MDB_val k, v;
	int mrc, rc = 0, ok;

	if (t->err)
		return t->err;
	if (!t->q->has_counts)
		return 0;
	mrc = mdb_cursor_open(t->txn, t->q->counts, &c);
	if (mrc)
		return queue_db_fail(t, mrc);
	k.mv_data = key;
	k.mv_size = counts_key(key, from_minute < 0 ? 0 : from_minute, "", 0);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !mrc && rc == 0;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t n = counts_value(&v, &ok);
		size_t len = k.mv_size - 8;

		if (!ok || k.mv_size <= 8 || !counts_name_valid((const char *)k.mv_data + 8, len))
			continue;
		memcpy(name, (const char *)k.mv_data + 8, len);
		name[len] = '\0';
		rc = fn(arg, counts_key_minute(k.mv_data), name, n);
	}
	mdb_cursor_close(c);
	if (rc)
		return rc;
	return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : queue_db_fail(t, mrc);
}
