/*
 * queue_sts: the MTA-STS policy cache, the "sts" database of the queue's
 * LMDB environment (contract in queue.h, record format in queue_int.h).
 *
 * The cache lives in the queue's environment so that entries last across
 * restarts and the relay needs one store and one writer path only: the
 * relay writes through its committer, in the same write transactions as
 * queue changes.  Nothing that lists or counts mail opens this database,
 * so the queue listing does not change with it.
 */
#include "queue.h"
#include "queue_db.h"
#include "queue_int.h"

#include <errno.h>
#include <string.h>

static MDB_val sts_val(const void *p, size_t n)
{
	/* LMDB never writes through a key or value given to get/put/del. */
	MDB_val v = {.mv_size = n, .mv_data = (void *)p};

	return v;
}

int queue_sts_get(struct queue_txn *t, const char *domain, struct queue_sts *out)
{
	char key[QUEUE_STS_DOMAIN_MAX + 1];
	MDB_val k, v;
	size_t klen;
	int rc;

	memset(out, 0, sizeof(*out));
	if (t->err)
		return t->err;
	rc = queue_sts_key(domain, strlen(domain), key, &klen);
	if (rc < 0)
		return rc;
	if (!t->q->has_sts)
		return -ENOENT;
	k = sts_val(key, klen);
	rc = mdb_get(t->txn, t->q->sts, &k, &v);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	if (rc)
		return queue_db_fail(t, rc);
	/* A newer version's record is as unusable here as a damaged one. */
	return queue_sts_rec_decode(v.mv_data, v.mv_size, out) < 0 ? RL_EPARSE : 0;
}

int queue_sts_put(struct queue_txn *t, const char *domain, const struct queue_sts *rec)
{
	char key[QUEUE_STS_DOMAIN_MAX + 1];
	struct rl_buf b;
	MDB_val k, v;
	size_t klen;
	int rc;

	RL_REQUIRE(t->write && t->q->has_sts);
	if (t->err)
		return t->err;
	rc = queue_sts_key(domain, strlen(domain), key, &klen);
	if (rc < 0)
		return rc;
	/* Refusals come before any write: the transaction stays usable. */
	rl_buf_init(&b, QUEUE_STS_REC_MAX);
	rc = queue_sts_rec_encode(rec, &b);
	if (rc == 0) {
		k = sts_val(key, klen);
		v = sts_val(b.data, b.len);
		rc = queue_db_fail(t, mdb_put(t->txn, t->q->sts, &k, &v, 0));
	}
	rl_buf_fini(&b);
	return rc;
}

int queue_sts_del(struct queue_txn *t, const char *domain)
{
	char key[QUEUE_STS_DOMAIN_MAX + 1];
	MDB_val k;
	size_t klen;
	int rc;

	RL_REQUIRE(t->write && t->q->has_sts);
	if (t->err)
		return t->err;
	rc = queue_sts_key(domain, strlen(domain), key, &klen);
	if (rc < 0)
		return rc;
	k = sts_val(key, klen);
	rc = mdb_del(t->txn, t->q->sts, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : queue_db_fail(t, rc);
}

/* One entry for foreach: 0 with domain and rec set, or -1 to skip it. */
static int sts_entry(const MDB_val *k, const MDB_val *v, char *domain, struct queue_sts *rec)
{
	size_t len;

	/* Only a key that is its own normal form came from queue_sts_put(). */
	if (k->mv_size > QUEUE_STS_DOMAIN_MAX ||
	    queue_sts_key(k->mv_data, k->mv_size, domain, &len) < 0 || len != k->mv_size ||
	    memcmp(domain, k->mv_data, len) != 0)
		return -1;
	return queue_sts_rec_decode(v->mv_data, v->mv_size, rec) < 0 ? -1 : 0;
}

int queue_sts_foreach(struct queue_txn *t,
		      int (*fn)(void *arg, const char *domain, const struct queue_sts *rec),
		      void *arg)
{
	char domain[QUEUE_STS_DOMAIN_MAX + 1];
	struct queue_sts rec;
	MDB_cursor *c;
	MDB_val k, v;
	int mrc, rc = 0;

	if (t->err)
		return t->err;
	if (!t->q->has_sts)
		return 0;
	mrc = mdb_cursor_open(t->txn, t->q->sts, &c);
	if (mrc)
		return queue_db_fail(t, mrc);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !mrc && !rc;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		if (sts_entry(&k, &v, domain, &rec) == 0)
			rc = fn(arg, domain, &rec);
	mdb_cursor_close(c);
	if (rc == 0 && mrc != MDB_NOTFOUND)
		rc = queue_db_fail(t, mrc);
	return rc;
}
