/*
 * queue_posture_int: the TLS posture record codec (queue_posture_rec.c),
 * shared by queue_posture.c, the unit test and the fuzz target only.
 *
 * Record format, version 1 (integers little-endian, fixed width):
 *
 *   u8   version                       QUEUE_POSTURE_REC_VERSION
 *   u32  count[status][tls]            QUEUE_PS_N * QUEUE_PT_N of them
 *   u32  reason_other
 *   u8   nreason                       0..QUEUE_POSTURE_REASONS
 *   nreason times: u32 count (>= 1), u8 length (1..REASON_MAX), bytes (no NUL)
 *   u32  fpr_other
 *   u8   nfpr                          0..QUEUE_POSTURE_FPRS
 *   nfpr times: u32 count (>= 1), 32 bytes of SHA-256
 *
 * Key: u32 big-endian UTC day (so a cursor walks days in order), then the
 * domain as queue_sts_key() normalises it.  The encoding is canonical:
 * decode accepts exactly what encode produces (nothing may follow).
 */
#ifndef QUEUE_POSTURE_INT_H
#define QUEUE_POSTURE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "queue.h"
#include "rl.h"

#define QUEUE_POSTURE_REC_VERSION 1
#define QUEUE_POSTURE_REC_MAX                                                                      \
	(1 + 4 * QUEUE_PS_N * QUEUE_PT_N + 4 + 1 +                                                 \
	 QUEUE_POSTURE_REASONS * (4 + 1 + QUEUE_POSTURE_REASON_MAX) + 4 + 1 +                      \
	 QUEUE_POSTURE_FPRS * (4 + QUEUE_POSTURE_FPR_LEN))

/* Encode p into out (at least QUEUE_POSTURE_REC_MAX octets); returns the
 * length.  p must be well formed (counts, lengths, no NUL: RL_REQUIRE). */
size_t queue_posture_rec_encode(const struct queue_posture *p, unsigned char *out);

/* Decode n bytes at p into *out; safe on arbitrary bytes, no allocation.
 * RL_EPARSE for anything malformed, RL_EVERSION for a newer version; *out
 * is zeroed on failure. */
int queue_posture_rec_decode(const void *p, size_t n, struct queue_posture *out) RL_WUR;

#endif
