/*
 * queue: the durable mail queue, one LMDB environment in queue_dir.
 *
 * Only this module touches LMDB; nobody above sees MDB_* codes.  Errors are
 * rl codes: RL_EQFULL when the map is full (the caller answers 452 4.3.1),
 * RL_EQUEUE for any other storage failure, RL_ENOTFOUND for an unknown ID,
 * -EEXIST only when no free ID could be found (an explicit ID that is taken
 * is replaced, see queue_msg_insert()), RL_EVERSION for a record or queue
 * written by a newer version, negated errno values for system errors.
 *
 * After a write operation fails, the transaction is failed: later calls on
 * it return the same code and queue_txn_commit() aborts and returns it, so
 * half of an operation is never committed.
 *
 * Layout (named databases in one environment):
 *   "msg"   queue ID -> envelope record (versioned binary, see queue_rec.c)
 *   "body"  queue ID -> message content, CRLF lines, not dot-stuffed
 *   "sched" 8-byte big-endian next-attempt time + queue ID -> empty;
 *           every message that is neither held nor finished has exactly one
 *           entry, so due work is found by a cursor from the start and
 *           never by scanning the queue
 *   "meta"  small named values (format version, control generation)
 *   "active" queue ID -> pid of the relay delivering it
 *   "sts"   domain (lower case) -> cached MTA-STS policy (queue_sts_*);
 *           nothing that lists or counts mail reads it.  A queue made by
 *           an older version has no "sts" until a writer opens it; a
 *           read-only open then sees an empty cache.
 *   "tlsrpt" "YYYY-MM-DD:domain" -> that UTC day's TLS-RPT counts for the
 *           policy domain (queue_tlsrpt_*), and whether its report went
 *           out; absent from older queues as "sts" is.
 *   "posture" UTC day + domain -> TLS posture counters (queue_posture_*).
 *   "counts" 8-byte big-endian minute + name -> u64: activity counters
 *           per minute (queue_counts_*), for `tlsrelay status`; absent
 *           from older queues as "sts" is.
 * Besides the LMDB files, queue_dir holds "serve.lock", the lock a running
 * relay holds for its whole life (queue_run_*).
 *
 * Threads and processes: a struct queue may be used from one thread at a
 * time, except that transactions may run on other threads alongside (the
 * relay's committer writes, its metrics scan reads, on libuv pool threads;
 * the environment is opened MDB_NOTLS, so read transactions are not bound
 * to a thread).  A transaction begins and ends inside one function call of the
 * caller and on one thread (LMDB binds write transactions to their thread);
 * never keep one across an event loop turn.  Several processes (the relay,
 * mailq, sendmail, queue control) open the same directory at once; LMDB's
 * lock file serialises their writers.
 *
 * Durability: queue_txn_commit() returns only after the data is on disk
 * (fsync), unless the queue was opened with QUEUE_O_NOSYNC (tests only).
 */
#ifndef QUEUE_H
#define QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "rl.h"

struct queue;
struct queue_txn;

/* Queue IDs are 10 upper-case hex digits (Postfix short-ID style), so that
 * an ID plus its mailq marker fits the 11-column field. */
#define QUEUE_ID_LEN 10
#define QUEUE_ID_SIZE (QUEUE_ID_LEN + 1)

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING = 0, /* not yet attempted */
	QUEUE_RCPT_DEFERRED,    /* attempted, temporary failure; reason set */
	QUEUE_RCPT_SENT,        /* delivered; kept until the message is done */
	QUEUE_RCPT_BOUNCED,     /* permanent failure; reason set */
};

/* Message flags (persisted). */
#define QUEUE_F_HOLD 0x01     /* on hold: not scheduled until released */
#define QUEUE_F_8BITMIME 0x02 /* MAIL FROM had BODY=8BITMIME */
#define QUEUE_F_SMTPUTF8 0x04 /* MAIL FROM had SMTPUTF8 */
#define QUEUE_F_BOUNCE 0x08   /* a DSN made by the relay: never bounce it */
#define QUEUE_F_REQUIRETLS 0x10 /* MAIL FROM had REQUIRETLS (RFC 8689) */
#define QUEUE_F_TLSRPT 0x20   /* a TLS-RPT report: its sessions are not counted */
#define QUEUE_F_WARNED 0x40   /* its sender got the delay warning (one per message) */

struct queue_rcpt {
	char *address;  /* without angle brackets */
	int state;      /* enum queue_rcpt_state */
	char dsn[12];   /* last enhanced status, "4.7.5"; "" if none */
	char *reason;   /* last reason text; NULL if none */
};

/*
 * A decoded envelope.  Strings and the recipient array belong to the
 * struct: queue_msg_free() releases them.  A caller building a message for
 * queue_msg_insert() may fill it with its own (borrowed) pointers instead and
 * must then not call queue_msg_free() on it.
 */
struct queue_msg {
	char id[QUEUE_ID_SIZE]; /* "" to let queue_msg_insert() pick one */
	char *sender;           /* "" for the null sender */
	int64_t arrival;        /* epoch seconds */
	int64_t next_attempt;   /* epoch seconds; meaningful when scheduled */
	uint32_t attempts;      /* delivery attempts so far */
	uint32_t flags;         /* QUEUE_F_* */
	uint64_t size;          /* bytes of content */
	size_t nrcpt;
	struct queue_rcpt *rcpt;
};

/* queue_open() flags */
#define QUEUE_O_RDONLY 0x01 /* read-only (mailq, queue show) */
#define QUEUE_O_NOSYNC 0x02 /* no fsync at commit: tests and benchmarks only */

/*
 * Open (creating if needed, mode 0700) the queue in dir.  mapsize is the
 * most bytes the queue may ever hold (0: the default, 4 GiB); an existing
 * queue keeps a larger size that an earlier open recorded (LMDB never
 * shrinks it).  QUEUE_O_RDONLY needs an existing queue and a writable lock
 * file.  On failure *out is NULL and why (if given) says what went wrong.
 * One process must open a directory only once at a time (an LMDB rule).
 */
int queue_open(const char *dir, uint64_t mapsize, unsigned flags,
	       struct queue **out, struct rl_why *why) RL_WUR;
void queue_close(struct queue *q);

/*
 * Begin a transaction; write != 0 for a write transaction (-EROFS on a
 * read-only queue).  If another process grew the map, the new size is
 * adopted first, which needs this process to have no other transaction
 * open (-EBUSY otherwise).
 */
int queue_txn_begin(struct queue *q, int write, struct queue_txn **out) RL_WUR;
/* Commit (and for a write transaction sync); frees t whatever the result.
 * A failed transaction (see above) is aborted and its failure returned. */
int queue_txn_commit(struct queue_txn *t) RL_WUR;
/* Abandon; frees t.  queue_txn_abort(NULL) is a no-op. */
void queue_txn_abort(struct queue_txn *t);

/*
 * Make a fresh queue ID from a time (seconds, microseconds).  The result is
 * unique among IDs made in one process; queue_msg_insert() still checks.
 */
void queue_id_make(char out[QUEUE_ID_SIZE], int64_t sec, long usec);

/*
 * Store a new message: envelope and content.  If m->id is "" an ID is made
 * from the clock; if m->id is set but taken, a fresh ID is made and written
 * back to m->id (so callers always learn the final ID there).  The message
 * is scheduled at m->next_attempt unless QUEUE_F_HOLD is set (or no
 * recipient is PENDING or DEFERRED, as for queue_msg_update()).  m->size is
 * set to len.  An explicit m->id must be QUEUE_ID_LEN upper-case hex digits
 * (-EINVAL otherwise).  Borrowed: m's strings and body.  RL_EQFULL when
 * the message would eat into the last QUEUE_RESERVE_PCT percent of the
 * map, which is kept for delivery results and bounces (QUEUE_F_BOUNCE
 * messages may use it).
 */
#define QUEUE_RESERVE_PCT 5

int queue_msg_insert(struct queue_txn *t, struct queue_msg *m,
		     const void *body, size_t len) RL_WUR;

/*
 * As queue_msg_insert(), with the content read from the file fd: its first
 * len bytes, by pread() in chunks straight into space reserved in the map
 * (MDB_RESERVE), so a large message is never a second time in memory.  fd
 * is borrowed and its offset untouched.  A short or failed read fails the
 * transaction (-EIO or the negated errno).  For bodies the relay spilled to
 * a temporary file while receiving them.
 */
int queue_msg_insert_fd(struct queue_txn *t, struct queue_msg *m, int fd,
			size_t len) RL_WUR;

/*
 * Rewrite an existing message's envelope (recipient states, attempts,
 * flags, next_attempt) and move its schedule entry to match: removed when
 * held or when no recipient is PENDING or DEFERRED, else at next_attempt.
 */
int queue_msg_update(struct queue_txn *t, const struct queue_msg *m) RL_WUR;

/* Remove a message, its content and its schedule entry. */
int queue_msg_delete(struct queue_txn *t, const char *id) RL_WUR;

/* Decode one message's envelope; *out is freed with queue_msg_free(). */
int queue_msg_load(struct queue_txn *t, const char *id,
		   struct queue_msg **out) RL_WUR;
void queue_msg_free(struct queue_msg *m);

/* Content of a message; the pointer is valid until the transaction ends
 * (in a write transaction: until its next change). */
int queue_body_get(struct queue_txn *t, const char *id, const void **data,
		   size_t *len) RL_WUR;

/*
 * Visit every message in ID order; stops early and returns cb's value when
 * cb returns non-zero.  m is valid only during the call.
 */
int queue_foreach(struct queue_txn *t,
		  int (*cb)(void *arg, const struct queue_msg *m), void *arg);

/*
 * Due work: fill ids[] with up to max IDs whose next attempt is <= now, in
 * order of next attempt, and set *n.  *next is set to the time of the first
 * entry not returned (INT64_MAX when none), so the caller can arm a timer.
 * Cost is proportional to what is returned, not to the queue's size.
 */
int queue_due(struct queue_txn *t, int64_t now, size_t max,
	      char (*ids)[QUEUE_ID_SIZE], size_t *n, int64_t *next) RL_WUR;

/* The queue at a glance (queue_summary.c), for the metrics endpoint. */
struct queue_summary {
	/* Messages by the Postfix queue they are shown in (mailq_queue_name):
	 * held; else in delivery (an "active" entry); else attempted before;
	 * else not yet attempted. */
	uint64_t hold, active, deferred, incoming;
	int64_t oldest;	   /* arrival (epoch seconds) of the oldest message; 0: none */
	uint64_t map_used; /* bytes of the map in pages holding data */
	uint64_t map_size; /* the map's size: the most the queue may hold */
};

/* Fill s in one pass over the envelopes' heads (no recipient decoded). */
int queue_summary(struct queue_txn *t, struct queue_summary *s) RL_WUR;

/* Number of messages and total content bytes (for statistics). */
int queue_stat(struct queue_txn *t, uint64_t *nmsg, uint64_t *bytes) RL_WUR;

/*
 * A counter that queue control commands (flush, hold, release, delete) bump
 * so the running relay notices their changes without scanning.
 */
int queue_ctl_bump(struct queue_txn *t) RL_WUR;
int queue_ctl_get(struct queue_txn *t, uint64_t *gen) RL_WUR;
/*
 * A counter that `queue flush` bumps: the relay then also retries the
 * destinations it has suspended as dead (Postfix's flush does the same).
 */
int queue_flush_bump(struct queue_txn *t) RL_WUR;
int queue_flush_get(struct queue_txn *t, uint64_t *gen) RL_WUR;

/*
 * In-delivery marks ("active" database): the relay marks a message while it
 * delivers it so that mailq can show '*'; pid names the relay process, so a
 * mark left by a process that died is recognisably stale.  Deleting a
 * message removes its mark.  clear_all empties the marks (relay start).
 */
int queue_active_set(struct queue_txn *t, const char *id, uint32_t pid) RL_WUR;
int queue_active_get(struct queue_txn *t, const char *id, uint32_t *pid) RL_WUR;
int queue_active_clear(struct queue_txn *t, const char *id) RL_WUR;
int queue_active_clear_all(struct queue_txn *t) RL_WUR;

/*
 * Copy up to len content bytes from offset off into buf, in a read
 * transaction of its own (so nothing stays open across loop turns); *got is
 * 0 at the end.  Safe on any thread.
 */
int queue_body_read(struct queue *q, const char *id, uint64_t off, void *buf, size_t len,
		    size_t *got) RL_WUR;

/*
 * Make space freed by deletions usable again (LMDB reuses freed pages only
 * two write transactions later); call after RL_EQFULL, then retry once.
 */
int queue_reclaim(struct queue *q) RL_WUR;

/*
 * The MTA-STS policy cache ("sts" database): per policy domain, the policy
 * body as last fetched and the TXT record id it was fetched under (RFC 8461
 * section 5.1: a cached policy is used until it expires, and refreshed when
 * the record's id changes).  Entries last across restarts.  This module
 * stores and bounds; it does not parse the body (policy/sts.h does).
 *
 * domain: a host name in A-labels (converting U-labels is the caller's
 * job): letters, digits, '-', '_', labels of 1..63 octets, at most
 * QUEUE_STS_DOMAIN_MAX octets, one final dot allowed.  It is stored in
 * lower case without the dot, so "Example.COM." and "example.com" are one
 * entry.  Anything else: -EINVAL.
 */
#define QUEUE_STS_ID_MAX 32       /* RFC 8461 3.1: sts-id = 1*32(ALPHA / DIGIT) */
#define QUEUE_STS_BODY_MAX 65536  /* the largest policy body stored */
#define QUEUE_STS_DOMAIN_MAX 253  /* text form, without the final dot */

/* One cached MTA-STS policy (RFC 8461 section 5.1): the body as fetched. */
struct queue_sts {
	char id[QUEUE_STS_ID_MAX + 1]; /* the TXT record's id the body was fetched under */
	int64_t fetched;               /* epoch seconds, >= 0 */
	int64_t expires;               /* fetched + max_age; >= fetched */
	/* The policy text, not NUL-terminated.  From queue_sts_get() and
	 * queue_sts_foreach() it points into the map: valid until the
	 * transaction ends (in a write transaction, until its next change). */
	const char *body;
	size_t len;                    /* at most QUEUE_STS_BODY_MAX */
};

/*
 * The entry of domain into *out.  0; -ENOENT when there is none;
 * RL_EPARSE for a record that does not decode (damaged, or written by a
 * newer version: a cache entry, so the caller refetches and overwrites
 * it); -EINVAL for a bad domain; RL_EQUEUE or a negated errno for a
 * storage failure.  *out is zeroed on failure.
 */
int queue_sts_get(struct queue_txn *t, const char *domain, struct queue_sts *out) RL_WUR;

/*
 * Store rec as the entry of domain (write transaction), replacing any
 * earlier one.  rec is borrowed.  -EINVAL for a bad domain, an id that is
 * not 1..QUEUE_STS_ID_MAX letters and digits, fetched < 0 or expires <
 * fetched; RL_ETOOBIG for a body over QUEUE_STS_BODY_MAX (nothing written,
 * the transaction stays usable); RL_EQFULL or RL_EQUEUE from storage
 * (the transaction is failed).
 */
int queue_sts_put(struct queue_txn *t, const char *domain, const struct queue_sts *rec) RL_WUR;

/* Remove the entry of domain (write transaction); 0 also when there was
 * none.  -EINVAL for a bad domain. */
int queue_sts_del(struct queue_txn *t, const char *domain) RL_WUR;

/*
 * Visit every entry in domain order (for `policy show` and tools).  domain
 * and rec are valid only during the call.  Entries whose key or record
 * does not decode are skipped (queue_sts_get() reports them as RL_EPARSE;
 * a put or del replaces them).  Stops at and returns fn's first non-zero
 * value; otherwise 0, or a storage error.
 */
int queue_sts_foreach(struct queue_txn *t,
		      int (*fn)(void *arg, const char *domain, const struct queue_sts *rec),
		      void *arg) RL_WUR;

/*
 * TLS posture counters ("posture" database, queue_posture.c): per UTC day
 * and destination domain, what the relay's deliveries reached.  The relay
 * adds to them through its committer; `tlsrelay report` reads them.
 * Nothing that lists or counts mail reads them.  A queue made before them
 * has no "posture" database until a writer opens it; a read-only open then
 * sees no counters.
 *
 * The record is bounded: counts per status and TLS word, the
 * QUEUE_POSTURE_REASONS most frequent failure reasons (each cut to
 * QUEUE_POSTURE_REASON_MAX octets; the rest only counted), and the
 * QUEUE_POSTURE_FPRS most frequent SHA-256 public-key digests of the peer's
 * leaf certificate (likewise).  Counts saturate at UINT32_MAX.  Domains are
 * keys as for the "sts" database (lower case, no final dot, -EINVAL
 * otherwise).
 */
enum queue_posture_tls {
	QUEUE_PT_NONE = 0,  /* a session, no TLS: cleartext */
	QUEUE_PT_ANONYMOUS,
	QUEUE_PT_UNTRUSTED,
	QUEUE_PT_TRUSTED,
	QUEUE_PT_VERIFIED,  /* verified under the policy file (or default level) */
	QUEUE_PT_DANE,
	QUEUE_PT_STS,       /* "mta-sts" */
	QUEUE_PT_NOSESS,    /* no server answered (relay=none) */
	QUEUE_PT_N
};

enum queue_posture_status { QUEUE_PS_SENT = 0, QUEUE_PS_DEFERRED, QUEUE_PS_BOUNCED, QUEUE_PS_N };

#define QUEUE_POSTURE_REASONS 8
#define QUEUE_POSTURE_REASON_MAX 120
#define QUEUE_POSTURE_FPRS 4
#define QUEUE_POSTURE_FPR_LEN 32 /* SHA-256 */

struct queue_posture_reason {
	uint32_t count;
	char text[QUEUE_POSTURE_REASON_MAX + 1]; /* 1..REASON_MAX octets, no NUL */
};

struct queue_posture_fpr {
	uint32_t count;
	unsigned char sha256[QUEUE_POSTURE_FPR_LEN];
};

struct queue_posture {
	uint32_t count[QUEUE_PS_N][QUEUE_PT_N];
	uint32_t reason_other;  /* failures whose reason was not kept */
	size_t nreason;
	struct queue_posture_reason reason[QUEUE_POSTURE_REASONS];
	uint32_t fpr_other;     /* TLS deliveries whose digest was not kept or unknown */
	size_t nfpr;
	struct queue_posture_fpr fpr[QUEUE_POSTURE_FPRS];
};

/* The index of a contract tls= word ("none" .. "mta-sts"); NULL gives
 * QUEUE_PT_NONE; an unknown word -1.  And back (QUEUE_PT_NOSESS: "-"). */
int queue_posture_tls_index(const char *word);
const char *queue_posture_tls_name(int tls);

/*
 * Count one recipient outcome into p (pure, in memory): status and tls
 * index; reason (may be NULL or "") is kept for a deferred or bounced
 * outcome; pk (may be NULL) is the leaf's SHA-256 public-key digest, kept
 * for a sent outcome over TLS.  Out-of-range indexes are programmer bugs.
 */
void queue_posture_count(struct queue_posture *p, int status, int tls, const char *reason,
			 const unsigned char *pk);

/* Add from's counts to into (pure), keeping the bounds above. */
void queue_posture_merge(struct queue_posture *into, const struct queue_posture *from);

/*
 * Add delta to the record of (day, domain) (write transaction); day counts
 * UTC days since 1970-01-01.  A record that does not decode is replaced.
 * -EINVAL for a bad domain; RL_EQFULL or RL_EQUEUE from storage.
 */
int queue_posture_add(struct queue_txn *t, uint32_t day, const char *domain,
		      const struct queue_posture *delta) RL_WUR;

/*
 * Visit the records of days >= from_day, by day then domain.  domain and
 * rec are valid only during the call; records that do not decode are
 * skipped.  Stops at and returns fn's first non-zero value; otherwise 0,
 * or a storage error.
 */
int queue_posture_foreach(struct queue_txn *t, uint32_t from_day,
			  int (*fn)(void *arg, uint32_t day, const char *domain,
				    const struct queue_posture *rec),
			  void *arg) RL_WUR;

/*
 * TLS-RPT counts (RFC 8460), the "tlsrpt" database: per UTC day and
 * policy domain, the sessions counted under each policy (type, policy
 * strings, MX hosts), successes and failures, the failures by result type
 * and addresses, and whether that day's report was sent.  Every part is
 * bounded: what does not fit (a fifth policy, a seventeenth failure
 * detail, a ninth MX host) is dropped, except that a failure always
 * counts in its policy's summary.
 *
 * day: "YYYY-MM-DD"; domain: as for the "sts" database (lower-cased).
 */
#define QUEUE_TLSRPT_DAY_LEN 10
#define QUEUE_TLSRPT_POL_MAX 4
#define QUEUE_TLSRPT_STR_MAX 1024 /* policy strings, LF-separated */
#define QUEUE_TLSRPT_MX_MAX 8
#define QUEUE_TLSRPT_DET_MAX 16
#define QUEUE_TLSRPT_HOST_MAX 253
#define QUEUE_TLSRPT_IP_MAX 45 /* INET6_ADDRSTRLEN - 1 */

/* RFC 8460 4.4: policy-type. */
enum queue_tlsrpt_type {
	QUEUE_TLSRPT_STS = 1,
	QUEUE_TLSRPT_TLSA,
	QUEUE_TLSRPT_NOPOLICY,
	QUEUE_TLSRPT_TYPE_END,
};

/* RFC 8460 4.3: result-type of a failure. */
enum queue_tlsrpt_result {
	QUEUE_TLSRPT_R_STARTTLS = 1,	/* starttls-not-supported */
	QUEUE_TLSRPT_R_HOST_MISMATCH,	/* certificate-host-mismatch */
	QUEUE_TLSRPT_R_EXPIRED,		/* certificate-expired */
	QUEUE_TLSRPT_R_NOT_TRUSTED,	/* certificate-not-trusted */
	QUEUE_TLSRPT_R_VALIDATION,	/* validation-failure */
	QUEUE_TLSRPT_R_TLSA_INVALID,	/* tlsa-invalid */
	QUEUE_TLSRPT_R_DNSSEC_INVALID,	/* dnssec-invalid */
	QUEUE_TLSRPT_R_DANE_REQUIRED,	/* dane-required */
	QUEUE_TLSRPT_R_STS_FETCH,	/* sts-policy-fetch-error */
	QUEUE_TLSRPT_R_STS_INVALID,	/* sts-policy-invalid */
	QUEUE_TLSRPT_R_STS_WEBPKI,	/* sts-webpki-invalid */
	QUEUE_TLSRPT_R_END,
};

struct queue_tlsrpt_detail {
	int result; /* enum queue_tlsrpt_result */
	char sending_ip[QUEUE_TLSRPT_IP_MAX + 1];
	char mx[QUEUE_TLSRPT_HOST_MAX + 1];
	char receiving_ip[QUEUE_TLSRPT_IP_MAX + 1];
	uint64_t count;
};

struct queue_tlsrpt_policy {
	int type; /* enum queue_tlsrpt_type */
	char strings[QUEUE_TLSRPT_STR_MAX + 1];
	size_t nmx;
	char mx[QUEUE_TLSRPT_MX_MAX][QUEUE_TLSRPT_HOST_MAX + 1];
	uint64_t ok, fail;
	size_t ndet;
	struct queue_tlsrpt_detail det[QUEUE_TLSRPT_DET_MAX];
};

struct queue_tlsrpt {
	int64_t sent; /* when the report went out (epoch seconds); 0: not yet */
	size_t npol;
	struct queue_tlsrpt_policy pol[QUEUE_TLSRPT_POL_MAX];
};

/* One session, as counted (borrowed strings; "" when unknown). */
struct queue_tlsrpt_sess {
	int type;	     /* enum queue_tlsrpt_type */
	const char *strings; /* the policy's lines, LF-separated */
	const char *mx;	     /* the MX host */
	int result;	     /* 0: success, else enum queue_tlsrpt_result */
	const char *sending_ip, *receiving_ip;
};

/* Whether day is "YYYY-MM-DD" (digits and dashes in place). */
int queue_tlsrpt_day_valid(const char *day, size_t len);
/* Count one session into r (pure; bounded as above). */
void queue_tlsrpt_add(struct queue_tlsrpt *r, const struct queue_tlsrpt_sess *s);
/* Add the counts of src to dst (pure); dst->sent is kept if set. */
void queue_tlsrpt_merge(struct queue_tlsrpt *dst, const struct queue_tlsrpt *src);
/* "sts", "tlsa", "no-policy-found"; result types as RFC 8460 4.3 writes them. */
const char *queue_tlsrpt_type_name(int type);
const char *queue_tlsrpt_result_name(int result);

/* The day's entry of domain: 0, -ENOENT, RL_EPARSE (damaged), -EINVAL, storage errors. */
int queue_tlsrpt_get(struct queue_txn *t, const char *day, const char *domain,
		     struct queue_tlsrpt *out) RL_WUR;
/* Store rec as the day's entry of domain (write transaction). */
int queue_tlsrpt_put(struct queue_txn *t, const char *day, const char *domain,
		     const struct queue_tlsrpt *rec) RL_WUR;
/*
 * Visit the entries of day in domain order (damaged ones skipped).  rec
 * is valid only during the call.  Stops at fn's first non-zero value and
 * returns it; otherwise 0 or a storage error.
 */
int queue_tlsrpt_foreach(struct queue_txn *t, const char *day,
			 int (*fn)(void *arg, const char *domain, const struct queue_tlsrpt *rec),
			 void *arg) RL_WUR;

/*
 * Activity counters ("counts" database, queue_counts.c): named counts
 * per minute, so that `tlsrelay status` can show the last hour.  The key
 * is the minute (epoch seconds / 60, 8 bytes big-endian) followed by the
 * name; the value a u64 (little-endian).  The relay adds them inside the
 * write transaction that records what they count (a delivery's final
 * write), so they cost no fsync of their own and never disagree with the
 * queue.  Each add also removes minutes older than QUEUE_COUNTS_KEEP_MIN
 * (at most QUEUE_COUNTS_PRUNE_MAX keys per call), so the table stays
 * bounded: at most QUEUE_COUNTS_KEEP_MIN minutes times the names in use.
 *
 * Names: 1..QUEUE_COUNTS_NAME_MAX octets of a-z 0-9 '.' ':' '_' '-'
 * (-EINVAL otherwise).  In use:
 *   "delivery:STATUS:TLS"  recipient outcomes of delivery attempts, as the
 *                          delivery log line says them: STATUS sent,
 *                          deferred or bounced; TLS a contract tls= word,
 *                          or "no-connection" (relay=none).
 * Room for more (e.g. inbound sessions by how the client was allowed,
 * "smtpd:allowed:network"): a new name needs no change of format.
 */
#define QUEUE_COUNTS_NAME_MAX 48
#define QUEUE_COUNTS_KEEP_MIN 120
#define QUEUE_COUNTS_PRUNE_MAX 64

struct queue_count {
	const char *name;
	uint64_t n;
};

/*
 * Add each v[i].n to the count of v[i].name in the minute of now (write
 * transaction; counts saturate at UINT64_MAX), and prune old minutes.  A
 * damaged value is replaced.  -EINVAL for a bad name (nothing written);
 * RL_EQFULL or RL_EQUEUE from storage (the transaction is failed).
 */
int queue_counts_add(struct queue_txn *t, int64_t now, const struct queue_count *v,
		     size_t n) RL_WUR;

/*
 * Visit every count of the minutes >= from_minute, by minute then name.
 * name is valid only during the call; damaged entries are skipped.  Stops
 * at and returns fn's first non-zero value; otherwise 0 or a storage
 * error.  A queue without the database has no counts.
 */
int queue_counts_foreach(struct queue_txn *t, int64_t from_minute,
			 int (*fn)(void *arg, int64_t minute, const char *name, uint64_t n),
			 void *arg) RL_WUR;

/*
 * Whether a relay runs on this queue (queue_run.c).  `serve` claims the
 * queue for its whole life: an fcntl write lock on queue_dir/serve.lock
 * (created 0600), held until queue_close(), and its pid and start time in
 * "meta".  Nothing else in the process may open serve.lock (closing any
 * descriptor of it would drop the lock: POSIX record locks).
 *
 * queue_run_claim: take the lock and record pid and now (write
 * transaction of its own, synced).  -EBUSY when another process holds it,
 * with its pid in *holder (0 when the kernel cannot say); -EROFS on a
 * read-only queue; a negated errno when the file cannot be opened.
 */
int queue_run_claim(struct queue *q, uint32_t pid, int64_t now, uint32_t *holder) RL_WUR;

/*
 * Is the queue claimed?  1 with the holder's pid in *pid (0 when the
 * kernel cannot say, e.g. another pid namespace), 0 when no process holds
 * the lock (no lock file: never run), or a negated errno.  It only tests
 * (F_GETLK): it never takes the lock, so it cannot get in a starting
 * relay's way.
 */
int queue_run_holder(struct queue *q, uint32_t *pid) RL_WUR;

/* What the last queue_run_claim() recorded: 0, or RL_ENOTFOUND. */
int queue_run_info(struct queue_txn *t, uint32_t *pid, int64_t *started) RL_WUR;

/* Text of a recipient state for listings: "pending", "deferred", ... */
const char *queue_rcpt_state_name(int state);

#endif
