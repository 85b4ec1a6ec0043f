/*
 * queue_run: is a relay running on this queue?  The contract is in
 * queue.h.
 *
 * `serve` holds an fcntl write lock on queue_dir/serve.lock for its whole
 * life.  The kernel drops it when the process ends, however it ends, so a
 * crashed relay never leaves a stale claim behind (a pid file would).
 * `status` asks with F_GETLK, which names the holder's pid and takes no
 * lock itself, so it can never make a starting relay think the queue is
 * taken.  Two relays on one queue would both clear and set in-delivery
 * marks and deliver the same due messages twice: the second is refused.
 */
#include "queue.h"
#include "queue_db.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define RUN_LOCK_NAME "serve.lock"
#define RUN_META_KEY  "serve"
#define RUN_META_LEN  (8 + 4) /* i64 start, u32 pid, little-endian */

static int run_path(struct queue *q, char *path, size_t size)
{
	const char *dir = NULL;
	int n;

	if (mdb_env_get_path(q->env, &dir) != 0 || !dir)
		return RL_EQUEUE;
	n = snprintf(path, size, "%s/%s", dir, RUN_LOCK_NAME);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static void run_lock_init(struct flock *l, short type)
{
	memset(l, 0, sizeof(*l));
	l->l_type = type;
	l->l_whence = SEEK_SET; /* start 0, length 0: the whole file */
}

static int run_record(struct queue *q, uint32_t pid, int64_t now)
{
	unsigned char buf[RUN_META_LEN];
	uint64_t s = (uint64_t)now;
	struct queue_txn *t;
	MDB_val k = {.mv_size = strlen(RUN_META_KEY), .mv_data = (void *)RUN_META_KEY};
	MDB_val v = {.mv_size = sizeof(buf), .mv_data = buf};
	int rc;

	for (int i = 0; i < 8; i++, s >>= 8)
		buf[i] = (unsigned char)(s & 0xff);
	for (int i = 8; i < 12; i++, pid >>= 8)
		buf[i] = (unsigned char)(pid & 0xff);
	rc = queue_txn_begin(q, 1, &t);
	if (rc < 0)
		return rc;
	rc = queue_db_fail(t, mdb_put(t->txn, q->meta, &k, &v, 0));
	if (rc < 0) {
		queue_txn_abort(t);
		return rc;
	}
	return queue_txn_commit(t);
}

int queue_run_claim(struct queue *q, uint32_t pid, int64_t now, uint32_t *holder)
{
	char path[PATH_MAX];
	struct flock l;
	int fd, rc;

	*holder = 0;
	if (q->flags & QUEUE_O_RDONLY)
		return -EROFS;
	RL_REQUIRE(q->runfd < 0);
	rc = run_path(q, path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	run_lock_init(&l, F_WRLCK);
	if (fcntl(fd, F_SETLK, &l) < 0) {
		rc = errno == EACCES || errno == EAGAIN ? -EBUSY : -errno;
		run_lock_init(&l, F_WRLCK);
		if (rc == -EBUSY && fcntl(fd, F_GETLK, &l) == 0 && l.l_type != F_UNLCK &&
		    l.l_pid > 0)
			*holder = (uint32_t)l.l_pid;
		close(fd);
		return rc;
	}
	q->runfd = fd;
	return run_record(q, pid, now);
}

int queue_run_holder(struct queue *q, uint32_t *pid)
{
	char path[PATH_MAX];
	struct flock l;
	int fd, rc;

	*pid = 0;
	rc = run_path(q, path, sizeof(path));
	if (rc < 0)
		return rc;
	/* F_GETLK needs no write access: root and the queue's owner alike. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	run_lock_init(&l, F_WRLCK);
	rc = fcntl(fd, F_GETLK, &l) < 0 ? -errno : l.l_type != F_UNLCK;
	if (rc == 1 && l.l_pid > 0)
		*pid = (uint32_t)l.l_pid;
	close(fd);
	return rc;
}

int queue_run_info(struct queue_txn *t, uint32_t *pid, int64_t *started)
{
	MDB_val k = {.mv_size = strlen(RUN_META_KEY), .mv_data = (void *)RUN_META_KEY}, v;
	const unsigned char *p;
	uint64_t s = 0;
	uint32_t n = 0;
	int mrc;

	*pid = 0;
	*started = 0;
	if (t->err)
		return t->err;
	mrc = mdb_get(t->txn, t->q->meta, &k, &v);
	if (mrc == MDB_NOTFOUND || (mrc == 0 && v.mv_size != RUN_META_LEN))
		return RL_ENOTFOUND;
	if (mrc)
		return queue_db_fail(t, mrc);
	p = v.mv_data;
	for (int i = 7; i >= 0; i--)
		s = s << 8 | p[i];
	for (int i = 11; i >= 8; i--)
		n = n << 8 | p[i];
	*pid = n;
	*started = (int64_t)s;
	return 0;
}
