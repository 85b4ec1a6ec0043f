/*
 * queue_int: declarations shared by queue.c and queue_sts.c (LMDB) and the
 * pure record codecs, queue_rec.c (envelopes) and queue_sts_rec.c (the
 * MTA-STS cache).  Other modules never include this file; the fuzz
 * target and the unit test do, to reach the codec directly.
 *
 * Record format, version 1 (all integers little-endian, fixed width):
 *
 *   u8   version                  QUEUE_REC_VERSION
 *   u32  flags                    QUEUE_F_*
 *   u32  attempts
 *   i64  arrival                  two's complement
 *   i64  next_attempt             two's complement
 *   u64  size
 *   str  sender                   0..QUEUE_REC_ADDR_MAX bytes
 *   u32  nrcpt                    0..QUEUE_REC_RCPT_MAX
 *   nrcpt times:
 *     u8   state                  enum queue_rcpt_state
 *     u8   dsn length, then bytes 0..QUEUE_REC_DSN_MAX
 *     str  address                1..QUEUE_REC_ADDR_MAX bytes
 *     str  reason                 0..QUEUE_REC_REASON_MAX bytes; 0 = none
 *
 * where str is a u32 length followed by that many bytes, none of them NUL.
 * The queue ID is the LMDB key and is not repeated in the record.  The
 * encoding is canonical: decode accepts exactly the byte strings that encode
 * can produce, so encode(decode(x)) == x for every accepted x.
 */
#ifndef QUEUE_INT_H
#define QUEUE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "queue.h"
#include "rl.h"

#define QUEUE_REC_VERSION 1
/* RFC 5321 4.5.3.1.3 caps a path at 256 octets; leave room for SMTPUTF8 and
 * for whatever an older relay accepted, but keep a hard bound. */
#define QUEUE_REC_ADDR_MAX   1024
#define QUEUE_REC_REASON_MAX 4096
#define QUEUE_REC_DSN_MAX    (sizeof(((struct queue_rcpt *)0)->dsn) - 1)
#define QUEUE_REC_RCPT_MAX   100000
/* Fixed part before the sender: version, flags, attempts, three 64-bit. */
#define QUEUE_REC_HEAD_LEN (1 + 4 + 4 + 8 + 8 + 8)
/* Smallest encoded recipient: state, dsn length, 1-byte address, reason. */
#define QUEUE_REC_RCPT_MIN (1 + 1 + 4 + 1 + 4)
#define QUEUE_REC_RCPT_BIG                                                                         \
	(1 + 1 + QUEUE_REC_DSN_MAX + 4 + QUEUE_REC_ADDR_MAX + 4 + QUEUE_REC_REASON_MAX)
/* Largest record encode can produce: the rl_buf limit for encoding. */
#define QUEUE_REC_MAX                                                                              \
	(QUEUE_REC_HEAD_LEN + 4 + QUEUE_REC_ADDR_MAX + 4 +                                         \
	 (size_t)QUEUE_REC_RCPT_MAX * QUEUE_REC_RCPT_BIG)

/* The fixed part of a record, readable without decoding the rest. */
struct queue_rec_head {
	unsigned version;
	uint32_t flags;
	uint32_t attempts;
	int64_t arrival;
	int64_t next_attempt;
	uint64_t size;
};

/*
 * Append the record for m to out (the ID is not part of it).  An empty
 * reason is written as "none".  Returns RL_ETOOBIG when a string or the
 * recipient count exceeds the format's limits, or out's own limit is hit;
 * -EINVAL for an empty recipient address; -ENOMEM.  On failure out is
 * left as it was.  Requires m->sender and each address to be non-NULL and
 * each state to be valid (programmer bugs).
 */
int queue_rec_encode(const struct queue_msg *m, struct rl_buf *out) RL_WUR;

/*
 * Decode n bytes at p into a new message (id left ""), freed with
 * queue_msg_free().  Safe on arbitrary bytes.  Returns RL_EPARSE for
 * anything malformed (short, long, bad length, NUL in a string, unknown
 * state), RL_EVERSION for a newer record version, -ENOMEM.  *out is NULL on
 * failure.
 */
int queue_rec_decode(const void *p, size_t n, struct queue_msg **out) RL_WUR;

/*
 * Read only the fixed part of a record (cheap; no allocation).  RL_EPARSE
 * when shorter than the fixed part or version 0, RL_EVERSION when newer.
 */
int queue_rec_peek(const void *p, size_t n, struct queue_rec_head *h) RL_WUR;

/* Whether m must have a schedule entry: not held, and some recipient is
 * still PENDING or DEFERRED. */
int queue_msg_is_scheduled(const struct queue_msg *m);

/* Whether id is exactly QUEUE_ID_LEN upper-case hex digits. */
int queue_id_valid(const char *id);

/*
 * MTA-STS cache record ("sts" database, queue_sts_rec.c), version 1, all
 * integers little-endian:
 *
 *   u8   version                  QUEUE_STS_REC_VERSION
 *   u8   id length, then the id   1..QUEUE_STS_ID_MAX letters and digits
 *   i64  fetched                  two's complement, >= 0
 *   i64  expires                  two's complement, >= fetched
 *   u32  body length, then body   0..QUEUE_STS_BODY_MAX octets, any value
 *
 * The domain is the LMDB key (queue_sts_key()), not repeated here.  As for
 * envelopes the encoding is canonical: decode accepts exactly what encode
 * produces, nothing may follow the body.
 */
#define QUEUE_STS_REC_VERSION 1
#define QUEUE_STS_REC_HEAD (1 + 1)
#define QUEUE_STS_REC_MAX (QUEUE_STS_REC_HEAD + QUEUE_STS_ID_MAX + 8 + 8 + 4 + QUEUE_STS_BODY_MAX)

/*
 * Append the record of s to out.  -EINVAL for a bad id or times,
 * RL_ETOOBIG for a body over QUEUE_STS_BODY_MAX or out's limit, -ENOMEM;
 * on failure out is left as it was.  s->body may be NULL when s->len is 0.
 */
int queue_sts_rec_encode(const struct queue_sts *s, struct rl_buf *out) RL_WUR;

/*
 * Decode n bytes at p into *out: the id is copied, out->body points into p.
 * Safe on arbitrary bytes; no allocation.  RL_EPARSE for anything
 * malformed, RL_EVERSION for a newer version.  *out is zeroed on failure.
 */
int queue_sts_rec_decode(const void *p, size_t n, struct queue_sts *out) RL_WUR;

/*
 * The key of a domain (see queue.h): lower case, no final dot, checked;
 * out holds at least QUEUE_STS_DOMAIN_MAX + 1 octets and is NUL-terminated.
 * Sets *len.  -EINVAL for anything that is not a host name.  A key read
 * back from disk is sound when it is its own key.
 */
int queue_sts_key(const char *domain, size_t dlen, char *out, size_t *len) RL_WUR;

/*
 * TLS-RPT record ("tlsrpt" database, queue_tlsrpt_rec.c), version 1,
 * integers little-endian, strings as a length then octets (no NUL, the
 * bounds of queue.h):
 *
 *   u8   version                    QUEUE_TLSRPT_REC_VERSION
 *   i64  sent                       >= 0
 *   u8   npol                       <= QUEUE_TLSRPT_POL_MAX
 *   per policy:
 *     u8 type; u16 strings; u8 nmx, per MX u8 host;
 *     u64 ok; u64 fail; u8 ndet, per detail:
 *       u8 result; u8 sending-ip; u8 mx; u8 receiving-ip; u64 count
 *
 * Canonical: nothing may follow the last detail.  The key is
 * "YYYY-MM-DD:" + the domain key (queue_tlsrpt_key()).
 */
#define QUEUE_TLSRPT_REC_VERSION 1
#define QUEUE_TLSRPT_DET_SIZE (1 + 3 + 2 * QUEUE_TLSRPT_IP_MAX + QUEUE_TLSRPT_HOST_MAX + 8)
#define QUEUE_TLSRPT_POL_SIZE                                                            \
	(1 + 2 + QUEUE_TLSRPT_STR_MAX + 1 + QUEUE_TLSRPT_MX_MAX * (1 + QUEUE_TLSRPT_HOST_MAX) + \
	 16 + 1 + QUEUE_TLSRPT_DET_MAX * QUEUE_TLSRPT_DET_SIZE)
#define QUEUE_TLSRPT_REC_MAX (1 + 8 + 1 + QUEUE_TLSRPT_POL_MAX * QUEUE_TLSRPT_POL_SIZE)
#define QUEUE_TLSRPT_KEY_MAX (QUEUE_TLSRPT_DAY_LEN + 1 + QUEUE_STS_DOMAIN_MAX)

/* Append the record of r to out: -EINVAL for a field out of bounds, RL_ETOOBIG, -ENOMEM. */
int queue_tlsrpt_rec_encode(const struct queue_tlsrpt *r, struct rl_buf *out) RL_WUR;
/* Decode untrusted bytes: RL_EPARSE, RL_EVERSION; *out zeroed on failure. */
int queue_tlsrpt_rec_decode(const void *p, size_t n, struct queue_tlsrpt *out) RL_WUR;
/* The key of (day, domain) into out (QUEUE_TLSRPT_KEY_MAX + 1): -EINVAL if either is bad. */
int queue_tlsrpt_key(const char *day, const char *domain, size_t dlen, char *out,
		     size_t *len) RL_WUR;

#endif
