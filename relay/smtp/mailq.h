/*
 * mailq: the queue listing of INTERFACE.md ("Queue listing"), as pure
 * formatting of decoded envelopes into a bounded buffer.  No I/O.
 */
#ifndef MAILQ_H
#define MAILQ_H

#include <stdint.h>

#include "queue.h"
#include "rl.h"

/* The Postfix queue a message is shown in: "hold", "active" (in delivery),
 * "deferred" (attempted before) or "incoming" (not yet attempted). */
const char *mailq_queue_name(const struct queue_msg *m, int active);

/* Does the listing show this recipient (still to be delivered)? */
int mailq_rcpt_listed(const struct queue_rcpt *r);

/* Append one message in the text layout (no separating blank line). */
int mailq_format_text(struct rl_buf *out, const struct queue_msg *m, int active) RL_WUR;

/* Append the trailer: "-- N Kbytes in N Request(s).\n". */
int mailq_format_trailer(struct rl_buf *out, uint64_t bytes, uint64_t count) RL_WUR;

/* Append one message as a JSON object and a newline (postqueue -j), with
 * "requiretls": true last when the message carries QUEUE_F_REQUIRETLS. */
int mailq_format_json(struct rl_buf *out, const struct queue_msg *m, int active) RL_WUR;

/* Append s for the text layout, each control octet (CR, LF, ...) as '?'. */
int mailq_text_string(struct rl_buf *out, const char *s) RL_WUR;

/* Append s as a JSON string literal, quotes included; control octets are
 * escaped and octets that are not UTF-8 become \ufffd. */
int mailq_json_string(struct rl_buf *out, const char *s) RL_WUR;

#endif
