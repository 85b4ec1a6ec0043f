/*
 * status: the one screen of `tlsrelay status` (INTERFACE.md: uptime, queue
 * by state, oldest message, last hour's deliveries by TLS level,
 * destinations failing now and why), as pure aggregation of decoded
 * envelopes and counters and pure formatting into a bounded buffer; also
 * the inbound counters of the last hour (sessions by how the client was
 * allowed to relay, refused ones, failed AUTH attempts).  No
 * I/O: relay/cli/cli_status.c reads the queue and hands everything in.
 *
 * Memory is bounded whatever the queue holds: the table of failing
 * destinations keeps at most STATUS_GROUPS_MAX (domain, reason) pairs,
 * each reason cut to STATUS_REASON_MAX octets.  Past the cap it works as
 * Space-Saving (Metwally, Agrawal, El Abbadi, 2005): a new pair takes the
 * slot of the pair with the fewest messages (a min-heap finds it in
 * O(log N)), inheriting that count as its error.  So with T messages
 * counted per pair in all, every pair with more than T / STATUS_GROUPS_MAX
 * messages is in the table, and each kept pair's msgs is at least its true
 * count and at most err more.  For a pair that took a slot (err > 0),
 * rcpts and oldest describe only the messages seen since it took it.
 */
#ifndef STATUS_H
#define STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "queue.h"
#include "rl.h"

#define STATUS_GROUPS_MAX 4096 /* (domain, reason) pairs kept */
#define STATUS_REASON_MAX 200  /* octets of a reason kept for grouping and shown */
#define STATUS_SHOW_MAX	  15   /* failing pairs printed on the screen; JSON has all */
#define STATUS_HOUR_MIN	  60   /* minutes summed for "last hour", the current one included */

enum status_queue {
	STATUS_Q_INCOMING = 0,
	STATUS_Q_ACTIVE,
	STATUS_Q_DEFERRED,
	STATUS_Q_HOLD,
	STATUS_Q_N
};

/*
 * Inbound counters of the last hour, by index; status_in_name() gives
 * each one's name in the queue's "counts" database, which the relay
 * writes (relay/store/tally.h) and status_agg_count() reads.  Sessions
 * count once each: allowed at their first accepted recipient, refused at
 * their first "Relay access denied".
 */
enum status_in {
	STATUS_IN_NETWORK = 0,	/* "smtpd:allowed:network": the address is in mynetworks */
	STATUS_IN_CERTIFICATE,	/* "smtpd:allowed:certificate": a client certificate */
	STATUS_IN_AUTH,		/* "smtpd:allowed:auth": SMTP AUTH */
	STATUS_IN_REFUSED,	/* "smtpd:refused": a recipient got Relay access denied */
	STATUS_IN_AUTH_FAILED,	/* "smtpd:auth-failed": one failed AUTH attempt */
	STATUS_IN_N
};

/* The counts name of an enum status_in; NULL out of range. */
const char *status_in_name(int k);
/* The names in enum status_in order, STATUS_IN_N of them (static). */
const char *const *status_in_names(void);

/* One failing destination and reason: deferred recipients of mail not on hold. */
struct status_group {
	char *domain; /* lower case */
	char *reason; /* cut to STATUS_REASON_MAX octets */
	int cut;      /* the reason was longer */
	uint64_t msgs, rcpts;
	/* msgs may exceed the true count by up to err (0: exact); see above. */
	uint64_t err;
	int64_t oldest; /* arrival of its oldest message */
	uint64_t seen;	/* private: the message last counted */
	uint32_t hash;	/* private: of (domain, reason) */
	uint32_t heap;	/* private: its position in the min-heap */
};

struct status_agg {
	uint64_t msgs[STATUS_Q_N], bytes[STATUS_Q_N];
	int64_t oldest; /* arrival; 0 with oldest_id "" when the queue is empty */
	char oldest_id[QUEUE_ID_SIZE];
	/* "delivery:STATUS:TLS" counts of the last hour, [status][tls]. */
	uint64_t hour[QUEUE_PS_N][QUEUE_PT_N];
	/* The inbound counters of the last hour, by enum status_in. */
	uint64_t in_hour[STATUS_IN_N];
	struct status_group *g; /* ng of them; sorted by status_agg_sort() */
	size_t ng;
	/* Pairs that took the slot of another (0: every count is exact). */
	uint64_t replaced;
	/* private: open-addressing index into g (slot holds index + 1), and
	 * the indexes of g as a min-heap by msgs */
	uint32_t *slot, *heap;
	uint64_t seq;
};

/* Whether a relay runs: the lock holder and what it recorded. */
struct status_run {
	int running;
	uint32_t pid;	 /* 0: unknown */
	int64_t started; /* 0: unknown */
};

void status_agg_init(struct status_agg *a);
void status_agg_fini(struct status_agg *a);

/*
 * Count one message: its queue (as mailq names it, active: a relay is
 * delivering it), size, age, and, unless held, each deferred recipient
 * under (its domain, its reason).  m is borrowed.  -ENOMEM.
 */
int status_agg_msg(struct status_agg *a, const struct queue_msg *m, int active) RL_WUR;

/*
 * Add one counter of the queue (queue_counts_foreach) when its minute is
 * within the last hour before now (STATUS_HOUR_MIN minutes, the current
 * one included); names other than "delivery:STATUS:TLS" and those of
 * enum status_in are ignored.
 */
void status_agg_count(struct status_agg *a, int64_t now, int64_t minute, const char *name,
		      uint64_t n);

/* Order the failing pairs worst first: most messages, then oldest, then name. */
void status_agg_sort(struct status_agg *a);

/* "3d 4h", "2h 10m", "5m 3s", "42s" (two units at most); negative as 0s. */
void status_age(char *out, size_t size, int64_t secs);

/* The screen (INTERFACE.md's `status`); hostname as in the banner. */
int status_format_text(struct rl_buf *out, const struct status_agg *a, const struct status_run *r,
		       int64_t now, const char *hostname) RL_WUR;

/* The same as one JSON object and a newline (`status --json`). */
int status_format_json(struct rl_buf *out, const struct status_agg *a, const struct status_run *r,
		       int64_t now, const char *hostname) RL_WUR;

#endif
