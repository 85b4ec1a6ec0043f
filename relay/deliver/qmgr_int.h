/*
 * qmgr_int.h: what the files of the scheduler share.  No other module
 * includes it: qmgr.h is the module's public face (STYLE.md section 1).
 *
 * The scheduler is cut by responsibility, one file each, so that the next
 * features land in one place each (DANE and MTA-STS in resolution and
 * sessions, metrics in the final write) and no file passes ~600 lines:
 *   qmgr.c         start, stop, free; the poll of the schedule, flush
 *                  detection, wake;
 *   qmgr_dest.c    destinations: lookup, the busy/dead lists, the wait
 *                  queue and its grants, the feedback window, suspension,
 *                  kick, and freeing the idle ones;
 *   qmgr_resolve.c a destination's round: MX and address lookups, loop
 *                  detection (self preference), the targets, the reset;
 *   qmgr_sess.c    smtpc sessions, and which target each job goes to
 *                  (including sending it on after a 4xx);
 *   qmgr_msg.c     messages in memory: taking a due one, the prechecks,
 *                  its jobs and their results, the delivery log line;
 *   qmgr_fin.c     the end of a message: outcome, DSN, delay warning, the
 *                  final write and its retry;
 *   qmgr_polchg.c  making deferred mail due after a policy change.
 * Loop thread only, except the apply functions of commit requests, which
 * run on the committer's worker thread.
 */
#ifndef QMGR_INT_H
#define QMGR_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <uv.h>

#include "commit.h"
#include "danehost.h"
#include "dns.h"
#include "https.h"
#include "mtasts.h"
#include "qmgr.h"
#include "queue.h"
#include "rl.h"
#include "selfaddr.h"
#include "smtpc.h"
#include "tlspol.h"
#include "tlsrpt.h"

struct addr_ctx; /* qmgr_resolve.c's: one address lookup of a round */

#define QMGR_MSG_BUCKETS 4096
#define QMGR_DEST_BUCKETS 4096
#define QMGR_DSN_HEADERS_MAX 65536
#define QMGR_RELAY_MAX 320
#define QMGR_DEST_SESS_MAX 256 /* sessions to one destination, whatever the config */
/*
 * A round's lookups (MX, addresses, TLSA, MTA-STS) are used for new
 * sessions this long at most; then, once its sessions end, the
 * destination is resolved again: a withdrawn TLSA record or a changed
 * policy does not stay in force while mail keeps flowing.
 */
#define QMGR_ROUND_MAX_S 300

/* QD_LATE: addresses known; TLSA and MTA-STS lookups still running. */
enum qdest_state { QD_IDLE = 0, QD_MX, QD_ADDR, QD_LATE, QD_READY };

struct qmsg {
	struct qmsg *hnext;
	struct qmgr *q;
	struct queue_msg *m;
	struct smtpc_rcpt *res;            /* per recipient of m; NONE: not tried */
	char (*relay)[QMGR_RELAY_MAX];     /* per recipient: where it was tried */
	const char **tls;                  /* per recipient: that session's protection */
	struct queue_rcpt *upd;            /* new states, for the final write */
	struct dsn_rcpt *dr;               /* bounced recipients, for the DSN */
	unsigned jobs;                     /* jobs not yet finished */
	int64_t now;                       /* time of the final write */
	int64_t next_attempt;
	int tried;
	struct rl_buf dsn;                 /* a DSN to queue with the update */
	struct queue_msg dsnmsg;
	struct queue_rcpt dsnrcpt;
	struct rl_buf warn;                /* a delay warning to queue with it */
	struct queue_msg warnmsg;
	struct queue_rcpt warnrcpt;
	struct commit_req mark;            /* the in-delivery mark */
	struct commit_req fin;             /* the final write */
	/* This attempt's recipient outcomes by status and protection, added
	 * to the queue's per-minute counters in the final write. */
	uint32_t counts[QUEUE_PS_N][QUEUE_PT_N];
	struct qmsg *fnext;                /* in qmgr's list of writes to retry */
	unsigned fin_tries;                /* failed final writes so far */
};

struct qjob {
	struct qjob *next;
	struct qmsg *qm;
	struct qdest *d;
	struct smtpc_msg sm;
	size_t *idx; /* index in qm->m->rcpt of each sm.rcpt */
	size_t min_target; /* > 0: a 4xx elsewhere sent it on to later MX hosts */
	unsigned nhosts;   /* MX hosts that answered it with a 4xx this round */
};

/*
 * Membership of a destination in one of qmgr's lists (intrusive, doubly
 * linked; d is NULL while not on the list).
 */
struct qlink {
	struct qlink *next, *prev;
	struct qdest *d;
};

struct qlist {
	struct qlink *head, *tail;
	size_t n;
};

struct qtarget {
	char host[DNS_NAME_MAX];
	unsigned pref;                 /* MX preference of host */
	size_t hostidx;                /* its index in the round's MX hosts */
	struct sockaddr_storage addr;
};

struct qdest {
	struct qdest *hnext;
	struct qmgr *q;
	char domain[DNS_NAME_MAX];
	struct qjob *head, **tail;
	unsigned nwait;
	unsigned nsess;
	int state;
	int mxq;                       /* MX query in flight, -1 none */
	/*
	 * This round's MX hosts (NULL between rounds): a copy of only the
	 * hosts of the resolver's result, not the whole ~8.6 KB of it.
	 */
	struct dns_mx_host *hosts;
	size_t nhosts;
	int implicit;                  /* no MX: hosts[0] is the domain itself */
	struct dns_addr_result *addrs; /* per MX host */
	int *addrq;                    /* address queries in flight, -1 done */
	struct addr_ctx *actx;         /* callback arguments of those queries */
	size_t addr_pending;
	struct qtarget *targets;
	size_t ntargets, cursor;
	/*
	 * DANE: the MX RRset (or its absence) was DNSSEC-secure; the TLSA
	 * lookups of the hosts with targets (NULL when DANE cannot apply to
	 * the domain, e.g. a policy entry of another level).
	 */
	int mx_secure;
	int64_t round_start;           /* when the round's lookups began */
	int stale;                     /* no new sessions: resolve again once idle */
	struct danehost *dane;         /* per MX host; POL_DANE_NONE if not looked up */
	size_t dane_pending;
	/*
	 * MTA-STS: the policy's mode (enum pol_sts_mode) and, per MX host,
	 * whether it matches the policy's mx patterns; stsq: the lookup in
	 * flight (0: none).
	 */
	int stsq;
	int sts_mode;
	unsigned char *sts_match;
	char *sts_text;                /* the policy's lines, for TLS-RPT; NULL: none */
	/* No policy because the fetch failed: its RFC 8460 result type
	 * (mtasts.h's static strings), counted for each session; NULL: none. */
	const char *sts_fail;
	int fail_class;
	char fail_reason[SMTPC_REASON_MAX];
	char fail_dsn[16];
	char fail_relay[QMGR_RELAY_MAX]; /* "none" unless the host answered */
	const char *fail_tls;            /* that session's protection (static) */
	/*
	 * Destination concurrency feedback (Postfix's qmgr): the window
	 * starts at smtp_initial_destination_concurrency, grows by one per
	 * session that got through and falls by one per session that did
	 * not.  A round in which every MX address failed and no session got
	 * through marks the destination dead until dead_until: its mail is
	 * deferred at once with "delivery temporarily suspended: REASON"
	 * instead of tying up sessions (a tarpit cannot starve the others).
	 */
	unsigned win;
	int proven;                    /* a server of it answered a transaction */
	int round_ok;                  /* a session got through this round */
	unsigned nanswered;            /* hosts that answered and failed, this round */
	int64_t dead_until;
	char dead_reason[SMTPC_REASON_MAX];
	char dead_dsn[16];
	struct qlink wait;             /* in q->waitq: waiting for a session slot */
	struct qlink busy;             /* in q->busy: may have jobs, sessions, lookups */
	struct qlink dead;             /* in q->dead: suspended, by dead_until */
};

struct qsess {
	struct qsess *next, *prev;
	struct qdest *d;
	struct smtpc *s;
	struct qjob *job;
	size_t target;
	struct smtpc_target t;
	struct tlspol *polref;             /* the policy snapshot ps came from */
	struct pol_peer_sess ps;           /* what t.pol points to */
	unsigned taken;                    /* messages it was given */
	unsigned replied;                  /* of those, answered by the server */
	int nocount;                       /* carries TLS-RPT reports: not counted */
	int tlsa_invalid;                  /* the host's TLSA RRset: malformed, none usable */
};

struct qmgr {
	struct qmgr_params p;
	uv_timer_t timer;
	struct dns *dns;
	struct https *https;               /* MTA-STS fetches */
	struct mtasts *sts;
	struct qmsg *msgs[QMGR_MSG_BUCKETS];
	unsigned nmsgs;
	struct qdest *dests[QMGR_DEST_BUCKETS]; /* every destination, by domain */
	/*
	 * Periodic work visits these lists only, never the whole table:
	 * busy holds the destinations that got jobs and have not been seen
	 * idle by a poll since; dead the suspended ones, soonest end first.
	 * A destination on neither is freed.
	 */
	struct qlist busy, dead;
	struct qlist waitq;                /* waiting for a session slot, oldest first */
	struct qsess *sessions;
	unsigned nsess;
	struct selfaddr self;              /* addresses that loop back to us */
	uint64_t flush_gen;                /* `queue flush` counter last seen */
	int flush_seen;
	uint32_t pid;
	int stopping;
	int stop_reported;                 /* p.stopped ran */
	uv_timer_t grace;
	uv_timer_t fin_timer;              /* retries failed final writes */
	struct qmsg *finq;                 /* messages whose final write failed */
	int timers_open;
	int trimmed;                       /* memory handed back since the last work */
	struct qposture *posture;          /* TLS posture counters (qmgr_posture.c) */
	uint64_t delay_warnings;           /* delay DSNs queued since start */
};

/* qmgr.c */
unsigned qmgr_hash_str(const char *s, unsigned buckets);
/* p.stopped once stopping and nothing is in flight any more. */
void qmgr_check_stopped(struct qmgr *q);

/* qmgr_dest.c */
struct qdest *qmgr_dest_get(struct qmgr *q, const char *domain);
void qmgr_dest_unwait(struct qdest *d);
unsigned qmgr_dest_limit(const struct qdest *d);
void qmgr_dest_fail_all(struct qdest *d, int class, const char *dsn, const char *reason);
int qmgr_dest_dead(const struct qdest *d, int64_t now);
void qmgr_dest_defer_dead(struct qdest *d);
void qmgr_grant(struct qmgr *q);
void qmgr_dest_kick(struct qdest *d);
void qmgr_dest_free(struct qdest *d);
void qmgr_kick_all(struct qmgr *q);
void qmgr_revive_all(struct qmgr *q);

/* qmgr_resolve.c */
void qmgr_dest_reset(struct qdest *d);
void qmgr_dest_resolve(struct qdest *d);

/* qmgr_sess.c */
struct qjob *qmgr_dest_pop(struct qdest *d, size_t target);
size_t qmgr_dest_next_target(const struct qdest *d);
size_t qmgr_dest_start_target(const struct qdest *d);
void qmgr_sess_start(struct qdest *d, size_t target, int no_starttls);

/* qmgr_msg.c */
const char *qmgr_class_status(int class);
void qmgr_log_rcpt(struct qmgr *q, const struct queue_msg *m, const char *rcpt, const char *relay, const char *tls,
		   const char *dsn,
		   const char *status, const char *note, const char *reason);
void qmgr_job_done(struct qjob *j, const char *relay, const char *tls);
void qmgr_job_fail(struct qjob *j, int class, const char *dsn, const char *reason,
		   const char *relay, const char *tls);
void qmgr_msg_free(struct qmsg *qm);
void qmgr_msg_take(struct qmgr *q, struct queue_txn *t, const char *id);

/* qmgr_posture.c: counters for `tlsrelay report` (NULL p: no-ops) */
struct qposture;
struct qposture *qmgr_posture_new(struct qmgr *q);
void qmgr_posture_free(struct qposture *p);
void qmgr_posture_note(struct qposture *p, const char *domain, int class, const char *relay,
		       const char *tls, const char *reason, const unsigned char *pk);
void qmgr_posture_tick(struct qposture *p);
void qmgr_posture_flush(struct qposture *p);

/* qmgr_fin.c */
void qmgr_msg_finish(struct qmsg *qm);
void qmgr_fin_retry_cb(uv_timer_t *t);

#endif
