/*
 * queue_tlsrpt: the TLS-RPT counts, the "tlsrpt" database of the queue's
 * LMDB environment (contract in queue.h, record format in queue_int.h).
 *
 * Keys begin with the day, so one day's entries are one cursor range.
 * The relay writes through its committer; `tlsrpt show` and `tlsrpt send`
 * read (and send marks the day's reports as sent).
 */
#include "queue.h"
#include "queue_db.h"
#include "queue_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static MDB_val rpt_val(const void *p, size_t n)
{
	/* LMDB never writes through a key or value given to get/put. */
	MDB_val v = {.mv_size = n, .mv_data = (void *)p};

	return v;
}

int queue_tlsrpt_get(struct queue_txn *t, const char *day, const char *domain,
		     struct queue_tlsrpt *out)
{
	char key[QUEUE_TLSRPT_KEY_MAX + 1];
	MDB_val k, v;
	size_t klen;
	int rc;

	memset(out, 0, sizeof(*out));
	if (t->err)
		return t->err;
	rc = queue_tlsrpt_key(day, domain, strlen(domain), key, &klen);
	if (rc < 0)
		return rc;
	if (!t->q->has_tlsrpt)
		return -ENOENT;
	k = rpt_val(key, klen);
	rc = mdb_get(t->txn, t->q->tlsrpt, &k, &v);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	if (rc)
		return queue_db_fail(t, rc);
	return queue_tlsrpt_rec_decode(v.mv_data, v.mv_size, out) < 0 ? RL_EPARSE : 0;
}

int queue_tlsrpt_put(struct queue_txn *t, const char *day, const char *domain,
		     const struct queue_tlsrpt *rec)
{
	char key[QUEUE_TLSRPT_KEY_MAX + 1];
	struct rl_buf b;
	MDB_val k, v;
	size_t klen;
	int rc;

	RL_REQUIRE(t->write && t->q->has_tlsrpt);
	if (t->err)
		return t->err;
	rc = queue_tlsrpt_key(day, domain, strlen(domain), key, &klen);
	if (rc < 0)
		return rc;
	rl_buf_init(&b, QUEUE_TLSRPT_REC_MAX);
	rc = queue_tlsrpt_rec_encode(rec, &b);
	if (rc == 0) {
		k = rpt_val(key, klen);
		v = rpt_val(b.data, b.len);
		rc = queue_db_fail(t, mdb_put(t->txn, t->q->tlsrpt, &k, &v, 0));
	}
	rl_buf_fini(&b);
	return rc;
}

/* One entry of day for foreach: 0 with domain and rec set, or -1 to skip. */
static int rpt_entry(const MDB_val *k, const MDB_val *v, char *domain, struct queue_tlsrpt *rec)
{
	const char *key = k->mv_data;
	size_t len;

	/* Only a key that is its own normal form came from queue_tlsrpt_put(). */
	if (k->mv_size <= QUEUE_TLSRPT_DAY_LEN + 1 || k->mv_size > QUEUE_TLSRPT_KEY_MAX ||
	    queue_sts_key(key + QUEUE_TLSRPT_DAY_LEN + 1, k->mv_size - QUEUE_TLSRPT_DAY_LEN - 1,
			  domain, &len) < 0 ||
	    len != k->mv_size - QUEUE_TLSRPT_DAY_LEN - 1 ||
	    memcmp(domain, key + QUEUE_TLSRPT_DAY_LEN + 1, len) != 0)
		return -1;
	return queue_tlsrpt_rec_decode(v->mv_data, v->mv_size, rec) < 0 ? -1 : 0;
}

int queue_tlsrpt_foreach(struct queue_txn *t, const char *day,
			 int (*fn)(void *arg, const char *domain, const struct queue_tlsrpt *rec),
			 void *arg)
{
	char domain[QUEUE_STS_DOMAIN_MAX + 1], prefix[QUEUE_TLSRPT_DAY_LEN + 1];
	struct queue_tlsrpt *rec;
	MDB_cursor *c;
	MDB_val k, v;
	int mrc, rc = 0;

	if (t->err)
		return t->err;
	if (!queue_tlsrpt_day_valid(day, strnlen(day, QUEUE_TLSRPT_DAY_LEN + 1)))
		return -EINVAL;
	if (!t->q->has_tlsrpt)
		return 0;
	rec = malloc(sizeof(*rec)); /* ~30 KB: not on the stack */
	if (!rec)
		return -ENOMEM;
	memcpy(prefix, day, QUEUE_TLSRPT_DAY_LEN);
	prefix[QUEUE_TLSRPT_DAY_LEN] = ':';
	mrc = mdb_cursor_open(t->txn, t->q->tlsrpt, &c);
	if (mrc) {
		free(rec);
		return queue_db_fail(t, mrc);
	}
	k = rpt_val(prefix, sizeof(prefix));
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !mrc && !rc;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < sizeof(prefix) || memcmp(k.mv_data, prefix, sizeof(prefix)) != 0) {
			mrc = MDB_NOTFOUND; /* past the day */
			break;
		}
		if (rpt_entry(&k, &v, domain, rec) == 0)
			rc = fn(arg, domain, rec);
	}
	mdb_cursor_close(c);
	free(rec);
	if (rc == 0 && mrc != MDB_NOTFOUND)
		rc = queue_db_fail(t, mrc);
	return rc;
}
