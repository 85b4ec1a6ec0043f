/*
 * dsn: delivery status notifications (RFC 3464, RFC 3461 section 6, RFC 6522
 * multipart/report), built as a complete message ready to queue with the
 * null sender.  Pure: no I/O, output into a bounded buffer.
 */
#ifndef DSN_H
#define DSN_H

#include <stddef.h>
#include <stdint.h>

#include "rl.h"

struct dsn_rcpt {
	const char *address;    /* the recipient, as in the envelope */
	const char *action;     /* "failed" or "delayed" */
	const char *status;     /* enhanced status code, "5.1.1" */
	const char *remote_mta; /* host name of the MX that answered, or
				   "name[address]" or "name[address]:port" (the
				   log's relay=; Remote-MTA then shows the name,
				   the text drops the port); NULL if none */
	const char *diagnostic; /* the MX's reply ("550 5.1.1 ... unknown user"),
				   or our reason when no MX answered */
	int smtp_reply;         /* diagnostic is an SMTP reply (Diagnostic-Code: smtp;) */
};

struct dsn_info {
	const char *reporting_mta; /* myhostname */
	const char *queue_id;      /* of the original message */
	const char *sender;        /* original envelope sender: the DSN's To: */
	int64_t arrival;           /* original arrival time */
	int64_t now;               /* time of the report (Date:) */
	const char *boundary;      /* unique MIME boundary, e.g. "ID.time/host" */
	const char *message_id;    /* Message-ID for the DSN, without <> */
	int redacted;              /* the original was REQUIRETLS mail (RFC 8689
				      section 5): return only its Message-ID */
	int64_t will_retry_until;  /* when retries stop (the end of the queue
				      lifetime): Will-Retry-Until of each
				      "delayed" recipient (RFC 3464 section
				      2.3.8); 0: not said */
};

/*
 * Append a whole DSN message (headers, CRLF lines) to out: a human-readable
 * part, the message/delivery-status part with one block per recipient, and
 * the original message's header section as text/rfc822-headers (RFC 3462).
 * orig/origlen is the original message content; only its headers are used,
 * and with info->redacted only its Message-ID field (the report can then
 * travel without REQUIRETLS: it carries no content of the message).
 *
 * All strings are borrowed.  Text from outside (addresses, diagnostics, the
 * original headers) is made printable US-ASCII (CR/LF in a diagnostic become
 * spaces, other control and 8-bit bytes '?') and long values are cut, so
 * every line ends in CRLF and is at most 998 octets.  An invalid status
 * becomes the action's generic code (5.0.0, 4.0.0, 2.0.0).  The boundary is
 * info->boundary reduced to MIME boundary characters, with a suffix added
 * when it occurs in the content.  The Subject says "Delayed Mail" when every
 * action is "delayed"; such a delay warning's text says that the relay keeps
 * trying (until info->will_retry_until, when set), and with it set each
 * delayed recipient gets a Will-Retry-Until field.
 * info->message_id NULL or empty: one is made from the queue ID, time and
 * reporting_mta.
 *
 * Returns 0; -EINVAL when the sender is empty (never notify the null
 * sender), nrcpt is 0 or an action is not one of RFC 3464's; -EOVERFLOW for
 * a time outside years 1900-9999; RL_ETOOBIG or -ENOMEM from out.  On error
 * out is left as it was.
 */
int dsn_build(struct rl_buf *out, const struct dsn_info *info, const struct dsn_rcpt *rcpt,
	      size_t nrcpt, const char *orig, size_t origlen) RL_WUR;

#endif
