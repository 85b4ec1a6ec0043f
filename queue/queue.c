/*
 * queue: the LMDB side of the mail queue; the contract is in queue.h and the
 * record format in queue_int.h.
 *
 * Every MDB_* code is translated here by queue_mdb_err() and never escapes.
 * A write transaction remembers its first real failure (struct queue_txn
 * err): after MDB_MAP_FULL and most other write errors LMDB only allows an
 * abort, and a half-done insert must never be committed, so every later call
 * and the commit itself report that first failure.
 */
#include "queue.h"
#include "queue_db.h"
#include "queue_int.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Version of the database layout (names, keys); stored in meta. */
#define QUEUE_FORMAT 1
/* 4 GiB of address space costs nothing on 64-bit systems; LMDB does not
 * grow the file until the data does. */
#define QUEUE_MAPSIZE_DEFAULT (SIZE_MAX > 0xffffffffu ? (uint64_t)4 << 30 : (uint64_t)1 << 30)
#define QUEUE_MAXDBS	      16
/* queue_msg_insert_fd() reads its file in pieces of this size. */
#define QUEUE_PREAD_CHUNK (1024 * 1024)
/* Inserts retry on ID collisions with other processes; each try uses a
 * later ID, so a handful always suffices unless something is broken. */
#define QUEUE_ID_TRIES	    100
#define QUEUE_RESIZE_TRIES  4
#define QUEUE_SCHED_KEY_LEN (8 + QUEUE_ID_LEN)

static int queue_mdb_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		return RL_EQFULL;
	case MDB_NOTFOUND:
		return RL_ENOTFOUND;
	case MDB_KEYEXIST:
		return -EEXIST;
	default:
		break;
	}
	/* LMDB passes system errors through as positive errno values and
	 * keeps its own codes in a negative range. */
	if (rc > 0)
		return -rc;
	return RL_EQUEUE;
}

/*
 * Translate a failure inside a transaction and, for a write transaction,
 * remember it.  MDB_NOTFOUND and MDB_KEYEXIST are answers, not failures:
 * LMDB leaves the transaction usable after them.
 */
static int txn_fail(struct queue_txn *t, int mdbrc)
{
	int rc = queue_mdb_err(mdbrc);

	if (rc < 0 && t->write && !t->err && mdbrc != MDB_NOTFOUND && mdbrc != MDB_KEYEXIST)
		t->err = rc;
	return rc;
}

int queue_db_fail(struct queue_txn *t, int mdbrc)
{
	return txn_fail(t, mdbrc);
}

/* Mark a write transaction failed after it has been partly changed, so that
 * commit cannot make half of an operation durable. */
static int txn_poison(struct queue_txn *t, int rc)
{
	if (rc < 0 && !t->err)
		t->err = rc;
	return rc;
}

static void le_store(unsigned char *p, uint64_t v, size_t width)
{
	size_t i;

	for (i = 0; i < width; i++, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

static uint64_t le_load(const unsigned char *p, size_t width)
{
	uint64_t v = 0;

	while (width--)
		v = v << 8 | p[width];
	return v;
}

static MDB_val mdb_val(const void *p, size_t n)
{
	/* LMDB's MDB_val is not const-correct; it never writes through a key
	 * or a value passed to get/put/del. */
	MDB_val v = {.mv_size = n, .mv_data = (void *)p};

	return v;
}

/*
 * The last ID time handed out, in microseconds since the epoch.  This is the
 * module's one piece of process-wide state: IDs must be unique within a
 * process even for two calls in the same microsecond, and only a shared
 * "last" can see that.  Atomic, because the relay may insert from workers.
 */
static _Atomic uint64_t queue_id_last;

void queue_id_make(char out[QUEUE_ID_SIZE], int64_t sec, long usec)
{
	uint64_t t, last, next;

	/* Clamp so that sec * 10^6 + usec cannot overflow. */
	if (sec < 0)
		sec = 0;
	if (sec > INT64_MAX / 1000000 - 1)
		sec = INT64_MAX / 1000000 - 1;
	if (usec < 0 || usec > 999999)
		usec = usec < 0 ? 0 : 999999;
	t = (uint64_t)sec * 1000000u + (uint64_t)usec;
	last = atomic_load(&queue_id_last);
	do {
		/* Strictly after the last ID, even if the clock stepped back;
		 * a bump past 999999 us carries into the seconds. */
		next = t > last ? t : last + 1;
	} while (!atomic_compare_exchange_weak(&queue_id_last, &last, next));
	/* 5 hex digits of seconds (wrapping every 2^20 s, about 12 days) and
	 * 5 of microseconds (999999 < 0xFFFFF), as Postfix short IDs. */
	snprintf(out, QUEUE_ID_SIZE, "%05X%05X", (unsigned)((next / 1000000) & 0xFFFFF),
		 (unsigned)(next % 1000000));
}

/*
 * mkdir -p: missing parents are made 0755 (as `install -d`), the queue
 * directory itself 0700.  A fresh machine running the example
 * configuration has no /tmp/tlsrelay-example yet.
 */
static int dir_make(const char *dir)
{
	char path[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (size_t i = 1; i < n; i++) {
		if (path[i] != '/')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		path[i] = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * Create the directory if allowed and learn whether the environment is new:
 * a data file that does not exist yet, or is empty, has never been set up,
 * and only then does this open decide the recorded map size.
 */
static int queue_dir_prepare(const char *dir, unsigned flags, int *is_new, struct rl_why *why)
{
	char path[PATH_MAX];
	struct stat st;
	int rc = flags & QUEUE_O_RDONLY ? 0 : dir_make(dir), n;

	if (rc < 0)
		return rl_fail(why, rc, "cannot create queue directory", 0);
	if (stat(dir, &st) < 0)
		return rl_fail(why, -errno, "cannot access queue directory", 0);
	if (!S_ISDIR(st.st_mode))
		return rl_fail(why, -ENOTDIR, "queue path is not a directory", 0);
	n = snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return rl_fail(why, -ENAMETOOLONG, "queue directory name too long", 0);
	if (stat(path, &st) < 0)
		*is_new = errno == ENOENT;
	else
		*is_new = st.st_size == 0;
	return 0;
}

static int queue_env_open(struct queue *q, const char *dir, uint64_t want, int is_new,
			  struct rl_why *why)
{
	unsigned f = MDB_NOTLS; /* read transactions may run on any thread */
	int rc;

	rc = mdb_env_create(&q->env);
	if (rc) {
		q->env = NULL;
		return rl_fail(why, queue_mdb_err(rc), "cannot create LMDB environment", 0);
	}
	rc = mdb_env_set_maxdbs(q->env, QUEUE_MAXDBS);
	/* A new file records the size it is created with; see queue_env_grow
	 * for existing ones. */
	if (!rc && is_new && !(q->flags & QUEUE_O_RDONLY))
		rc = mdb_env_set_mapsize(q->env, (size_t)want);
	if (rc)
		return rl_fail(why, queue_mdb_err(rc), "cannot configure LMDB environment", 0);
	if (q->flags & QUEUE_O_RDONLY)
		f |= MDB_RDONLY;
	if (q->flags & QUEUE_O_NOSYNC)
		f |= MDB_NOSYNC;
	rc = mdb_env_open(q->env, dir, f, 0600);
	if (rc)
		return rl_fail(why, queue_mdb_err(rc), "cannot open LMDB environment", 0);
	return 0;
}

/*
 * Grow, never shrink, an existing environment's map.  Opened without a
 * configured size, LMDB 0.9 maps the larger of its built-in 1 MiB and the
 * size recorded in the file; mdb_env_set_mapsize(env, 0) adopts exactly the
 * recorded size (rounded up to the data present).  A larger configured size
 * is applied.  A smaller one is ignored: the relay may have configured the
 * larger size on purpose, and a sendmail or queue command opening with the
 * default must not then fail with RL_EQFULL where the relay would succeed.
 */
static int queue_env_grow(struct queue *q, uint64_t want)
{
	MDB_envinfo info;
	int rc;

	rc = mdb_env_set_mapsize(q->env, 0);
	if (!rc)
		rc = mdb_env_info(q->env, &info);
	if (!rc && want > info.me_mapsize)
		rc = mdb_env_set_mapsize(q->env, (size_t)want);
	return queue_mdb_err(rc);
}

/*
 * Begin an LMDB transaction, following another process's map growth: when a
 * writer elsewhere has grown the data past our map, LMDB refuses with
 * MDB_MAP_RESIZED, and mdb_env_set_mapsize(env, 0) adopts the recorded size.
 * That moves the map, so it is done only while this process has no
 * transaction open (-EBUSY otherwise).  A transaction is counted before it
 * begins, under resize_lock, so no thread can be between its count and its
 * begin while another resizes.  On success the count stays.
 */
static int queue_mdb_begin(struct queue *q, unsigned f, MDB_txn **txn)
{
	int rc, tries;

	*txn = NULL;
	for (tries = 0;; tries++) {
		pthread_mutex_lock(&q->resize_lock);
		q->ntxn++;
		pthread_mutex_unlock(&q->resize_lock);
		rc = mdb_txn_begin(q->env, NULL, f, txn);
		if (rc == 0)
			return 0;
		*txn = NULL;
		pthread_mutex_lock(&q->resize_lock);
		q->ntxn--;
		if (rc == MDB_MAP_RESIZED && tries < QUEUE_RESIZE_TRIES)
			rc = q->ntxn > 0 ? -EBUSY : mdb_env_set_mapsize(q->env, 0);
		pthread_mutex_unlock(&q->resize_lock);
		if (rc)
			break;
	}
	return rc == -EBUSY ? rc : queue_mdb_err(rc);
}

/* A transaction of queue_mdb_begin() has ended (committed or aborted). */
static void queue_mdb_end(struct queue *q)
{
	pthread_mutex_lock(&q->resize_lock);
	q->ntxn--;
	pthread_mutex_unlock(&q->resize_lock);
}

/* The named databases (queue.h); mdb_env_set_maxdbs() must allow them all. */
static const char *const queue_db_names[] = {"msg",    "body", "sched",  "meta",   "active",
					     "sts",    "tlsrpt", "posture", "counts"};
/* Those from QUEUE_DB_LATER on came later: see queue_dbs_open(). */
#define QUEUE_DB_LATER 5
_Static_assert(sizeof(queue_db_names) / sizeof(queue_db_names[0]) <= QUEUE_MAXDBS,
	       "QUEUE_MAXDBS too small for the named databases");

static int queue_dbs_open(struct queue *q, MDB_txn *txn)
{
	MDB_dbi *dbis[] = {&q->msg, &q->body,   &q->sched,   &q->meta,  &q->active,
			   &q->sts, &q->tlsrpt, &q->posture, &q->counts};
	int *has[] = {&q->has_sts, &q->has_tlsrpt, &q->has_posture, &q->has_counts};
	unsigned f = (q->flags & QUEUE_O_RDONLY) ? 0 : MDB_CREATE;
	size_t n = sizeof(dbis) / sizeof(dbis[0]);
	int rc = 0;

	_Static_assert(sizeof(dbis) / sizeof(dbis[0]) ==
			   sizeof(queue_db_names) / sizeof(queue_db_names[0]),
		       "one handle per named database");
	_Static_assert(sizeof(has) / sizeof(has[0]) ==
			   sizeof(dbis) / sizeof(dbis[0]) - QUEUE_DB_LATER,
		       "one flag per database that came later");
	for (size_t i = 0; i < QUEUE_DB_LATER && !rc; i++)
		rc = mdb_dbi_open(txn, queue_db_names[i], f, dbis[i]);
	/*
	 * The MTA-STS cache, the TLS-RPT, the posture and the activity
	 * counters came later: a queue made before them has none, which a read-only open
	 * (mailq, report) must accept as empty; a writer creates them.
	 */
	for (size_t i = QUEUE_DB_LATER; i < n && !rc; i++) {
		rc = mdb_dbi_open(txn, queue_db_names[i], f, dbis[i]);
		*has[i - QUEUE_DB_LATER] = rc == 0;
		if (rc == MDB_NOTFOUND && (q->flags & QUEUE_O_RDONLY))
			rc = 0;
	}
	return rc;
}

/* Check (or, in a new queue, write) the layout version in meta.  A newer
 * layout is refused rather than misread. */
static int queue_format_check(struct queue *q, MDB_txn *txn, struct rl_why *why)
{
	unsigned char buf[4];
	MDB_val k = mdb_val("version", 7), v;
	uint64_t ver;
	int rc;

	rc = mdb_get(txn, q->meta, &k, &v);
	if (rc == MDB_NOTFOUND && !(q->flags & QUEUE_O_RDONLY)) {
		le_store(buf, QUEUE_FORMAT, sizeof(buf));
		v = mdb_val(buf, sizeof(buf));
		rc = mdb_put(txn, q->meta, &k, &v, 0);
		return rc ? rl_fail(why, queue_mdb_err(rc), "cannot initialise queue", 0) : 0;
	}
	if (rc == MDB_NOTFOUND)
		return rl_fail(why, RL_EQUEUE, "queue was never initialised", 0);
	if (rc)
		return rl_fail(why, queue_mdb_err(rc), "cannot read queue format", 0);
	if (v.mv_size != sizeof(buf))
		return rl_fail(why, RL_EQUEUE, "bad queue format record", 0);
	ver = le_load(v.mv_data, sizeof(buf));
	if (ver > QUEUE_FORMAT)
		return rl_fail(why, RL_EVERSION, "queue format is newer than this program", 0);
	if (ver == 0)
		return rl_fail(why, RL_EQUEUE, "bad queue format version", 0);
	return 0;
}

static int queue_setup(struct queue *q, uint64_t want, int is_new, struct rl_why *why)
{
	int rdonly = (q->flags & QUEUE_O_RDONLY) != 0, rc;
	MDB_txn *txn;

	if (!rdonly && !is_new) {
		rc = queue_env_grow(q, want);
		if (rc < 0)
			return rl_fail(why, rc, "cannot set queue map size", 0);
	}
	rc = queue_mdb_begin(q, rdonly ? MDB_RDONLY : 0, &txn);
	if (rc < 0)
		return rl_fail(why, rc, "cannot begin queue transaction", 0);
	rc = queue_dbs_open(q, txn);
	if (rc) {
		mdb_txn_abort(txn);
		queue_mdb_end(q);
		/* Read-only opens cannot create: a missing database means
		 * this LMDB environment is not a queue. */
		return rl_fail(why, rc == MDB_NOTFOUND ? RL_EQUEUE : queue_mdb_err(rc),
			       "cannot open queue databases", 0);
	}
	rc = queue_format_check(q, txn, why);
	if (rc < 0) {
		mdb_txn_abort(txn);
		queue_mdb_end(q);
		return rc;
	}
	/* Commit even a read transaction: database handles opened in it
	 * become usable by later transactions only through a commit. */
	rc = mdb_txn_commit(txn);
	queue_mdb_end(q);
	if (rc)
		return rl_fail(why, queue_mdb_err(rc), "cannot commit queue setup", 0);
	return 0;
}

int queue_open(const char *dir, uint64_t mapsize, unsigned flags, struct queue **out,
	       struct rl_why *why)
{
	uint64_t want = mapsize ? mapsize : QUEUE_MAPSIZE_DEFAULT;
	struct queue *q;
	int is_new = 0, rc;

	*out = NULL;
	if (want > SIZE_MAX)
		return rl_fail(why, -EOVERFLOW, "map size too large for this system", 0);
	rc = queue_dir_prepare(dir, flags, &is_new, why);
	if (rc < 0)
		return rc;
	q = calloc(1, sizeof(*q));
	if (!q)
		return rl_fail(why, -ENOMEM, "out of memory", 0);
	q->flags = flags;
	q->runfd = -1;
	pthread_mutex_init(&q->resize_lock, NULL);
	rc = queue_env_open(q, dir, want, is_new, why);
	if (!rc)
		rc = queue_setup(q, want, is_new, why);
	if (rc < 0) {
		queue_close(q);
		return rc;
	}
	*out = q;
	return 0;
}

void queue_close(struct queue *q)
{
	if (!q)
		return;
	/* LMDB requires every transaction to end before the environment. */
	RL_REQUIRE(q->ntxn == 0);
	/* Closing the lock file ends the claim of queue_run_claim(). */
	if (q->runfd >= 0)
		close(q->runfd);
	if (q->env)
		mdb_env_close(q->env);
	pthread_mutex_destroy(&q->resize_lock);
	free(q);
}

int queue_txn_begin(struct queue *q, int write, struct queue_txn **out)
{
	struct queue_txn *t;
	int rc;

	*out = NULL;
	if (write && (q->flags & QUEUE_O_RDONLY))
		return -EROFS;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	rc = queue_mdb_begin(q, write ? 0 : MDB_RDONLY, &t->txn);
	if (rc < 0) {
		free(t);
		return rc;
	}
	t->q = q;
	t->write = write != 0;
	*out = t;
	return 0;
}

static void txn_free(struct queue_txn *t)
{
	queue_mdb_end(t->q);
	free(t);
}

int queue_txn_commit(struct queue_txn *t)
{
	int rc;

	RL_REQUIRE(t != NULL);
	if (t->err) {
		rc = t->err;
		mdb_txn_abort(t->txn);
	} else {
		/* mdb_txn_commit() frees the transaction even when it fails. */
		rc = queue_mdb_err(mdb_txn_commit(t->txn));
	}
	txn_free(t);
	return rc;
}

void queue_txn_abort(struct queue_txn *t)
{
	if (!t)
		return;
	mdb_txn_abort(t->txn);
	txn_free(t);
}

/* Big-endian time first, so LMDB's byte order is the order of attempts;
 * the ID after it keeps keys unique and ties in ID (arrival) order. */
static void sched_key(unsigned char key[QUEUE_SCHED_KEY_LEN], int64_t when, const char *id)
{
	uint64_t u = when < 0 ? 0 : (uint64_t)when;
	int i;

	for (i = 0; i < 8; i++)
		key[i] = (unsigned char)(u >> (56 - 8 * i));
	memcpy(key + 8, id, QUEUE_ID_LEN);
}

static int64_t sched_key_time(const unsigned char *key)
{
	uint64_t u = 0;
	int i;

	for (i = 0; i < 8; i++)
		u = u << 8 | key[i];
	return u > INT64_MAX ? INT64_MAX : (int64_t)u;
}

static int sched_put(struct queue_txn *t, int64_t when, const char *id)
{
	unsigned char key[QUEUE_SCHED_KEY_LEN];
	MDB_val k, v;

	sched_key(key, when, id);
	k = mdb_val(key, sizeof(key));
	v = mdb_val(key, 0);
	return txn_fail(t, mdb_put(t->txn, t->q->sched, &k, &v, 0));
}

/* Remove the entry at (when, id) if there is one. */
static int sched_del(struct queue_txn *t, int64_t when, const char *id)
{
	unsigned char key[QUEUE_SCHED_KEY_LEN];
	MDB_val k;
	int rc;

	sched_key(key, when, id);
	k = mdb_val(key, sizeof(key));
	rc = mdb_del(t->txn, t->q->sched, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : txn_fail(t, rc);
}

/*
 * Remove every schedule entry of id by scanning the whole schedule.  Only
 * for a record too damaged to say where its entry is; the normal paths never
 * scan.  Without it a damaged message could never leave the schedule, and
 * queue_due() would hand it out forever.
 */
static int sched_purge(struct queue_txn *t, const char *id)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	rc = mdb_cursor_open(t->txn, t->q->sched, &c);
	if (rc)
		return txn_fail(t, rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !rc;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != QUEUE_SCHED_KEY_LEN ||
		    memcmp((const char *)k.mv_data + 8, id, QUEUE_ID_LEN) != 0)
			continue;
		/* After a cursor delete LMDB's MDB_NEXT yields the entry that
		 * moved into the deleted one's place, so none is skipped. */
		rc = mdb_cursor_del(c, 0);
		if (rc)
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : txn_fail(t, rc);
}

/* Store an envelope under id unless the ID is taken (-EEXIST, and the
 * transaction stays usable). */
static int msg_put_new(struct queue_txn *t, const char *id, const struct rl_buf *rec)
{
	MDB_val k = mdb_val(id, QUEUE_ID_LEN), v = mdb_val(rec->data, rec->len);

	return txn_fail(t, mdb_put(t->txn, t->q->msg, &k, &v, MDB_NOOVERWRITE));
}

static int msg_put_fresh(struct queue_txn *t, const struct queue_msg *m, const struct rl_buf *rec,
			 char id[QUEUE_ID_SIZE])
{
	struct timespec ts;
	int rc = -EEXIST, i;

	if (m->id[0]) {
		if (!queue_id_valid(m->id))
			return -EINVAL;
		memcpy(id, m->id, QUEUE_ID_SIZE);
		rc = msg_put_new(t, id, rec);
	}
	/* The caller's ID is taken, or another process made the same ID
	 * from the same clock: queue_id_make() only moves forward, so every
	 * try asks about a new ID. */
	for (i = 0; rc == -EEXIST && i < QUEUE_ID_TRIES; i++) {
		if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
			return -errno;
		queue_id_make(id, (int64_t)ts.tv_sec, ts.tv_nsec / 1000);
		rc = msg_put_new(t, id, rec);
	}
	return rc;
}

/*
 * Does a new message of len bytes leave the reserve free?  The reserve
 * (QUEUE_RESERVE_PCT of the map) keeps room for what the relay must be
 * able to write whatever happens: delivery results and bounces.  Pages in
 * use are read from each database's header (mdb_stat: no scan); pages on
 * LMDB's free list are not counted, so a queue just emptied may count as
 * fuller than it is until those pages are reused.
 */
static int queue_has_room(struct queue_txn *t, size_t len)
{
	MDB_dbi dbis[] = { 0, t->q->msg, t->q->body, t->q->sched, t->q->meta, t->q->active,
			   t->q->has_sts ? t->q->sts : 0, t->q->has_tlsrpt ? t->q->tlsrpt : 0,
			   t->q->has_counts ? t->q->counts : 0 };
	size_t ndbi = sizeof(dbis) / sizeof(dbis[0]);
	MDB_envinfo info;
	MDB_stat st;
	uint64_t pages = 0, psize, cap;

	if (mdb_env_info(t->q->env, &info) != 0 || mdb_stat(t->txn, 0, &st) != 0)
		return 1; /* cannot tell: LMDB's own MDB_MAP_FULL still guards */
	psize = st.ms_psize;
	for (size_t i = 0; i < ndbi; i++) {
		if (i > 0 && dbis[i] == 0)
			continue; /* an optional database this queue lacks */
		if (mdb_stat(t->txn, dbis[i], &st) != 0)
			return 1;
		pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
	}
	cap = (uint64_t)info.me_mapsize / 100 * (100 - QUEUE_RESERVE_PCT);
	return pages * psize + len + 2 * psize <= cap;
}

/*
 * Copy len bytes of fd (from offset 0) into dst, in chunks, so that the
 * caller never holds a second copy of a large body in memory.
 */
static int body_pread(int fd, char *dst, size_t len)
{
	size_t off = 0;

	while (off < len) {
		size_t want = len - off < QUEUE_PREAD_CHUNK ? len - off : QUEUE_PREAD_CHUNK;
		ssize_t got = pread(fd, dst + off, want, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			return -EIO; /* the file is shorter than promised */
		off += (size_t)got;
	}
	return 0;
}

/* The body value: from memory, or reserved in the map and read from fd. */
static int body_put(struct queue_txn *t, const char *id, const void *body, int fd, size_t len)
{
	MDB_val k = mdb_val(id, QUEUE_ID_LEN), v = mdb_val(len ? body : id, len);
	int rc;

	if (fd < 0)
		return txn_fail(t, mdb_put(t->txn, t->q->body, &k, &v, 0));
	rc = txn_fail(t, mdb_put(t->txn, t->q->body, &k, &v, MDB_RESERVE));
	return rc < 0 ? rc : body_pread(fd, v.mv_data, len);
}

static int msg_insert(struct queue_txn *t, struct queue_msg *m, const void *body, int fd,
		      size_t len)
{
	struct queue_msg rm = *m;
	char id[QUEUE_ID_SIZE];
	struct rl_buf rec;
	int rc;

	RL_REQUIRE(t->write);
	if (t->err)
		return t->err;
	/* New mail may not eat the reserve; bounces made by the relay may. */
	if (!(m->flags & QUEUE_F_BOUNCE) && !queue_has_room(t, len))
		return txn_poison(t, RL_EQFULL);
	/* The stored size is the content's, whatever the caller filled in,
	 * so that statistics add up. */
	rm.size = len;
	rl_buf_init(&rec, QUEUE_REC_MAX);
	rc = queue_rec_encode(&rm, &rec);
	if (!rc)
		rc = msg_put_fresh(t, &rm, &rec, id);
	rl_buf_fini(&rec);
	if (rc < 0)
		return rc;
	/* The envelope is written: from here any failure must fail the
	 * transaction, or a commit could store a message without content. */
	rc = body_put(t, id, body, fd, len);
	if (!rc && queue_msg_is_scheduled(&rm))
		rc = sched_put(t, rm.next_attempt, id);
	if (rc < 0)
		return txn_poison(t, rc);
	memcpy(m->id, id, QUEUE_ID_SIZE);
	m->size = len;
	return 0;
}

int queue_msg_insert(struct queue_txn *t, struct queue_msg *m, const void *body, size_t len)
{
	RL_REQUIRE(body != NULL || len == 0);
	return msg_insert(t, m, body, -1, len);
}

int queue_msg_insert_fd(struct queue_txn *t, struct queue_msg *m, int fd, size_t len)
{
	RL_REQUIRE(fd >= 0);
	return msg_insert(t, m, NULL, fd, len);
}

/*
 * Find the stored record of id and read its fixed part, which says where its
 * schedule entry is.  *damaged is set when the record cannot say (then the
 * caller purges by scanning).  A record of a newer version is refused: its
 * layout is unknown, and rewriting it would drop what that version added.
 */
static int msg_old_head(struct queue_txn *t, const char *id, struct queue_rec_head *h, int *damaged)
{
	MDB_val k = mdb_val(id, QUEUE_ID_LEN), v;
	int rc;

	*damaged = 0;
	if (!queue_id_valid(id))
		return RL_ENOTFOUND;
	rc = mdb_get(t->txn, t->q->msg, &k, &v);
	if (rc)
		return txn_fail(t, rc);
	rc = queue_rec_peek(v.mv_data, v.mv_size, h);
	if (rc == RL_EPARSE)
		*damaged = 1;
	return rc == RL_EPARSE ? 0 : rc;
}

int queue_msg_update(struct queue_txn *t, const struct queue_msg *m)
{
	struct queue_rec_head old;
	struct rl_buf rec;
	MDB_val k, v;
	int damaged, rc;

	RL_REQUIRE(t->write);
	if (t->err)
		return t->err;
	rc = msg_old_head(t, m->id, &old, &damaged);
	if (rc < 0)
		return rc;
	rl_buf_init(&rec, QUEUE_REC_MAX);
	rc = queue_rec_encode(m, &rec);
	if (rc < 0)
		goto out;
	/* Remove the entry at the old time even if the old flags say there
	 * is none, in case an earlier inconsistency left one there. */
	rc = damaged ? sched_purge(t, m->id) : sched_del(t, old.next_attempt, m->id);
	k = mdb_val(m->id, QUEUE_ID_LEN);
	v = mdb_val(rec.data, rec.len);
	if (!rc)
		rc = txn_fail(t, mdb_put(t->txn, t->q->msg, &k, &v, 0));
	if (!rc && queue_msg_is_scheduled(m))
		rc = sched_put(t, m->next_attempt, m->id);
	rc = txn_poison(t, rc);
out:
	rl_buf_fini(&rec);
	return rc;
}

int queue_msg_delete(struct queue_txn *t, const char *id)
{
	struct queue_rec_head old;
	MDB_val k = mdb_val(id, QUEUE_ID_LEN);
	int damaged, rc;

	RL_REQUIRE(t->write);
	if (t->err)
		return t->err;
	rc = msg_old_head(t, id, &old, &damaged);
	if (rc < 0)
		return rc;
	rc = damaged ? sched_purge(t, id) : sched_del(t, old.next_attempt, id);
	if (!rc)
		rc = txn_fail(t, mdb_del(t->txn, t->q->msg, &k, NULL));
	if (!rc) {
		/* Content may be missing after an earlier inconsistency; the
		 * envelope is what makes the message exist. */
		rc = mdb_del(t->txn, t->q->body, &k, NULL);
		rc = rc == MDB_NOTFOUND ? 0 : txn_fail(t, rc);
	}
	if (!rc) {
		rc = mdb_del(t->txn, t->q->active, &k, NULL);
		rc = rc == MDB_NOTFOUND ? 0 : txn_fail(t, rc);
	}
	return txn_poison(t, rc);
}

int queue_msg_load(struct queue_txn *t, const char *id, struct queue_msg **out)
{
	MDB_val k = mdb_val(id, QUEUE_ID_LEN), v;
	struct queue_msg *m;
	int rc;

	*out = NULL;
	if (t->err)
		return t->err;
	if (!queue_id_valid(id))
		return RL_ENOTFOUND;
	rc = mdb_get(t->txn, t->q->msg, &k, &v);
	if (rc)
		return txn_fail(t, rc);
	rc = queue_rec_decode(v.mv_data, v.mv_size, &m);
	if (rc < 0)
		return rc;
	memcpy(m->id, id, QUEUE_ID_SIZE);
	*out = m;
	return 0;
}

int queue_body_get(struct queue_txn *t, const char *id, const void **data, size_t *len)
{
	MDB_val k = mdb_val(id, QUEUE_ID_LEN), v;
	int rc;

	*data = NULL;
	*len = 0;
	if (t->err)
		return t->err;
	if (!queue_id_valid(id))
		return RL_ENOTFOUND;
	/* The pointer is into the map: stable for a read transaction; in a
	 * write transaction LMDB keeps it only until the next change. */
	rc = mdb_get(t->txn, t->q->body, &k, &v);
	if (rc)
		return txn_fail(t, rc);
	*data = v.mv_data;
	*len = v.mv_size;
	return 0;
}

/* Decode one "msg" entry; keys are always IDs, anything else is damage. */
static int msg_entry_decode(const MDB_val *k, const MDB_val *v, struct queue_msg **out)
{
	char id[QUEUE_ID_SIZE];
	int rc;

	*out = NULL;
	if (k->mv_size != QUEUE_ID_LEN)
		return RL_EQUEUE;
	memcpy(id, k->mv_data, QUEUE_ID_LEN);
	id[QUEUE_ID_LEN] = '\0';
	if (!queue_id_valid(id))
		return RL_EQUEUE;
	rc = queue_rec_decode(v->mv_data, v->mv_size, out);
	if (rc == 0)
		memcpy((*out)->id, id, QUEUE_ID_SIZE);
	return rc;
}

int queue_foreach(struct queue_txn *t, int (*cb)(void *arg, const struct queue_msg *m), void *arg)
{
	struct queue_msg *m;
	MDB_cursor *c;
	MDB_val k, v;
	int mrc, rc = 0;

	if (t->err)
		return t->err;
	mrc = mdb_cursor_open(t->txn, t->q->msg, &c);
	if (mrc)
		return txn_fail(t, mrc);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !mrc && !rc;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		rc = msg_entry_decode(&k, &v, &m);
		if (rc == 0)
			rc = cb(arg, m);
		queue_msg_free(m);
	}
	mdb_cursor_close(c);
	if (rc == 0 && mrc != MDB_NOTFOUND)
		rc = txn_fail(t, mrc);
	return rc;
}

int queue_due(struct queue_txn *t, int64_t now, size_t max, char (*ids)[QUEUE_ID_SIZE], size_t *n,
	      int64_t *next)
{
	MDB_cursor *c;
	MDB_val k, v;
	int64_t when;
	int mrc, rc = 0;

	*n = 0;
	*next = INT64_MAX;
	if (t->err)
		return t->err;
	mrc = mdb_cursor_open(t->txn, t->q->sched, &c);
	if (mrc)
		return txn_fail(t, mrc);
	/* Keys sort by time, so this stops at the first entry not taken and
	 * costs what it returns, whatever the queue's size. */
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !mrc;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != QUEUE_SCHED_KEY_LEN) {
			rc = RL_EQUEUE;
			break;
		}
		when = sched_key_time(k.mv_data);
		if (when > now || *n == max) {
			*next = when;
			break;
		}
		memcpy(ids[*n], (const char *)k.mv_data + 8, QUEUE_ID_LEN);
		ids[*n][QUEUE_ID_LEN] = '\0';
		(*n)++;
	}
	mdb_cursor_close(c);
	if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
		rc = txn_fail(t, mrc);
	return rc;
}

/*
 * The message count comes from LMDB's statistics, but the byte total needs
 * every record's size: this is a full scan of "msg", acceptable only here,
 * because statistics are asked for by operators (mailq, queue stat) and
 * never on the delivery path.  Only each record's fixed part is read; a
 * record too damaged to read is counted but adds no bytes.
 */
int queue_stat(struct queue_txn *t, uint64_t *nmsg, uint64_t *bytes)
{
	struct queue_rec_head h;
	MDB_cursor *c;
	MDB_stat st;
	MDB_val k, v;
	int mrc;

	*nmsg = 0;
	*bytes = 0;
	if (t->err)
		return t->err;
	mrc = mdb_stat(t->txn, t->q->msg, &st);
	if (!mrc)
		mrc = mdb_cursor_open(t->txn, t->q->msg, &c);
	if (mrc)
		return txn_fail(t, mrc);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !mrc;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (queue_rec_peek(v.mv_data, v.mv_size, &h) < 0)
			continue;
		*bytes = h.size > UINT64_MAX - *bytes ? UINT64_MAX : *bytes + h.size;
	}
	mdb_cursor_close(c);
	if (mrc != MDB_NOTFOUND)
		return txn_fail(t, mrc);
	*nmsg = st.ms_entries;
	return 0;
}

/* A u64 counter in meta under key; absent means 0. */
static int counter_get(struct queue_txn *t, const char *key, uint64_t *gen)
{
	MDB_val k = mdb_val(key, strlen(key)), v;
	int rc;

	*gen = 0;
	if (t->err)
		return t->err;
	rc = mdb_get(t->txn, t->q->meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return txn_fail(t, rc);
	if (v.mv_size != 8)
		return RL_EQUEUE;
	*gen = le_load(v.mv_data, 8);
	return 0;
}

static int counter_bump(struct queue_txn *t, const char *key)
{
	MDB_val k = mdb_val(key, strlen(key)), v;
	unsigned char buf[8];
	uint64_t gen;
	int rc;

	RL_REQUIRE(t->write);
	rc = counter_get(t, key, &gen);
	if (rc < 0)
		return rc;
	/* Readers compare for inequality, so wrapping is harmless. */
	le_store(buf, gen + 1, sizeof(buf));
	v = mdb_val(buf, sizeof(buf));
	return txn_fail(t, mdb_put(t->txn, t->q->meta, &k, &v, 0));
}

int queue_ctl_get(struct queue_txn *t, uint64_t *gen)
{
	return counter_get(t, "ctl", gen);
}

int queue_ctl_bump(struct queue_txn *t)
{
	return counter_bump(t, "ctl");
}

int queue_flush_get(struct queue_txn *t, uint64_t *gen)
{
	return counter_get(t, "flush", gen);
}

int queue_flush_bump(struct queue_txn *t)
{
	return counter_bump(t, "flush");
}

/* --- in-delivery marks ---------------------------------------------------- */

int queue_active_set(struct queue_txn *t, const char *id, uint32_t pid)
{
	unsigned char buf[4];
	MDB_val k = mdb_val(id, QUEUE_ID_LEN), v;

	RL_REQUIRE(t->write);
	if (t->err)
		return t->err;
	le_store(buf, pid, sizeof(buf));
	v = mdb_val(buf, sizeof(buf));
	return txn_poison(t, txn_fail(t, mdb_put(t->txn, t->q->active, &k, &v, 0)));
}

int queue_active_get(struct queue_txn *t, const char *id, uint32_t *pid)
{
	MDB_val k = mdb_val(id, QUEUE_ID_LEN), v;
	int rc = mdb_get(t->txn, t->q->active, &k, &v);

	if (rc)
		return queue_mdb_err(rc);
	if (v.mv_size != 4)
		return RL_EQUEUE;
	*pid = (uint32_t)le_load(v.mv_data, 4);
	return 0;
}

int queue_active_clear(struct queue_txn *t, const char *id)
{
	MDB_val k = mdb_val(id, QUEUE_ID_LEN);
	int rc;

	RL_REQUIRE(t->write);
	if (t->err)
		return t->err;
	rc = mdb_del(t->txn, t->q->active, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : txn_poison(t, txn_fail(t, rc));
}

int queue_active_clear_all(struct queue_txn *t)
{
	RL_REQUIRE(t->write);
	if (t->err)
		return t->err;
	/* Empties the database but keeps it: cost is the marks, not the queue. */
	return txn_poison(t, txn_fail(t, mdb_drop(t->txn, t->q->active, 0)));
}

int queue_body_read(struct queue *q, const char *id, uint64_t off, void *buf, size_t len,
		    size_t *got)
{
	struct queue_txn *t;
	const void *data;
	size_t total;
	int rc = queue_txn_begin(q, 0, &t);

	*got = 0;
	if (rc < 0)
		return rc;
	rc = queue_body_get(t, id, &data, &total);
	if (rc == 0 && off < total) {
		*got = total - off < len ? (size_t)(total - off) : len;
		memcpy(buf, (const char *)data + off, *got);
	}
	queue_txn_abort(t);
	return rc;
}

int queue_reclaim(struct queue *q)
{
	static const char key[] = "reclaim";

	/*
	 * LMDB 0.9 reuses the pages a transaction frees only after two more
	 * write transactions; a queue emptied while full would refuse every
	 * big message until then.  Two tiny commits make the space usable.
	 */
	for (int i = 0; i < 2; i++) {
		struct queue_txn *t;
		unsigned char buf[8];
		MDB_val k = mdb_val(key, sizeof(key) - 1), v;
		int rc = queue_txn_begin(q, 1, &t);

		if (rc < 0)
			return rc;
		le_store(buf, (uint64_t)i, sizeof(buf));
		v = mdb_val(buf, sizeof(buf));
		rc = txn_fail(t, mdb_put(t->txn, q->meta, &k, &v, 0));
		if (rc < 0) {
			queue_txn_abort(t);
			return rc;
		}
		rc = queue_txn_commit(t);
		if (rc < 0)
			return rc;
	}
	return 0;
}
