/*
 * queue_posture: the TLS posture counters, the "posture" database of the
 * queue's LMDB environment (contract in queue.h, record format in
 * queue_posture_int.h).
 *
 * The counters live with the queue so that the relay has one store and
 * one writer path: it adds to them through its committer.  `tlsrelay
 * report` reads them with a read-only open while the relay runs.
 */
#include "queue.h"
#include "queue_db.h"
#include "queue_int.h"
#include "queue_posture_int.h"

#include <errno.h>
#include <string.h>

#define POSTURE_KEY_MAX (4 + QUEUE_STS_DOMAIN_MAX)

static int posture_key(uint32_t day, const char *domain, unsigned char *key, size_t *klen)
{
	size_t dlen;
	int rc;

	key[0] = (unsigned char)(day >> 24);
	key[1] = (unsigned char)(day >> 16);
	key[2] = (unsigned char)(day >> 8);
	key[3] = (unsigned char)day;
	rc = queue_sts_key(domain, strlen(domain), (char *)key + 4, &dlen);
	*klen = 4 + dlen;
	return rc;
}

int queue_posture_add(struct queue_txn *t, uint32_t day, const char *domain,
		      const struct queue_posture *delta)
{
	unsigned char key[POSTURE_KEY_MAX + 1], rec[QUEUE_POSTURE_REC_MAX];
	struct queue_posture cur;
	MDB_val k, v;
	size_t klen;
	int rc;

	RL_REQUIRE(t->write && t->q->has_posture);
	if (t->err)
		return t->err;
	rc = posture_key(day, domain, key, &klen);
	if (rc < 0)
		return rc;
	k.mv_data = key;
	k.mv_size = klen;
	rc = mdb_get(t->txn, t->q->posture, &k, &v);
	if (rc && rc != MDB_NOTFOUND)
		return queue_db_fail(t, rc);
	/* A damaged or newer record is replaced: these are statistics. */
	if (rc || queue_posture_rec_decode(v.mv_data, v.mv_size, &cur) < 0)
		memset(&cur, 0, sizeof(cur));
	queue_posture_merge(&cur, delta);
	v.mv_data = rec;
	v.mv_size = queue_posture_rec_encode(&cur, rec);
	return queue_db_fail(t, mdb_put(t->txn, t->q->posture, &k, &v, 0));
}

/* One entry for foreach: 0 with day, domain and rec set; -1 to skip it. */
static int posture_entry(const MDB_val *k, const MDB_val *v, uint32_t *day, char *domain,
			 struct queue_posture *rec)
{
	const unsigned char *kp = k->mv_data;
	size_t len;

	if (k->mv_size <= 4 || k->mv_size > POSTURE_KEY_MAX)
		return -1;
	*day = (uint32_t)kp[0] << 24 | (uint32_t)kp[1] << 16 | (uint32_t)kp[2] << 8 | kp[3];
	/* Only a domain that is its own key came from queue_posture_add(). */
	if (queue_sts_key((const char *)kp + 4, k->mv_size - 4, domain, &len) < 0 ||
	    len != k->mv_size - 4 || memcmp(domain, kp + 4, len) != 0)
		return -1;
	return queue_posture_rec_decode(v->mv_data, v->mv_size, rec) < 0 ? -1 : 0;
}

int queue_posture_foreach(struct queue_txn *t, uint32_t from_day,
			  int (*fn)(void *arg, uint32_t day, const char *domain,
				    const struct queue_posture *rec),
			  void *arg)
{
	char domain[QUEUE_STS_DOMAIN_MAX + 1];
	unsigned char start[4] = {(unsigned char)(from_day >> 24), (unsigned char)(from_day >> 16),
				  (unsigned char)(from_day >> 8), (unsigned char)from_day};
	struct queue_posture rec;
	MDB_cursor *c;
	MDB_val k = {.mv_size = sizeof(start), .mv_data = start}, v;
	uint32_t day;
	int mrc, rc = 0;

	if (t->err)
		return t->err;
	if (!t->q->has_posture)
		return 0;
	mrc = mdb_cursor_open(t->txn, t->q->posture, &c);
	if (mrc)
		return queue_db_fail(t, mrc);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !mrc && !rc;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		if (posture_entry(&k, &v, &day, domain, &rec) == 0)
			rc = fn(arg, day, domain, &rec);
	mdb_cursor_close(c);
	if (rc == 0 && mrc != MDB_NOTFOUND)
		rc = queue_db_fail(t, mrc);
	return rc;
}
