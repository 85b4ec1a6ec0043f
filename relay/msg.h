/*
 * msg: pure parsing of RFC 5322 message headers, for local submission
 * (sendmail -t takes recipients from To/Cc/Bcc and drops Bcc; missing From,
 * Date and Message-ID are added as Postfix's cleanup does).  No I/O, no
 * allocation; results are slices of the input.
 */
#ifndef MSG_H
#define MSG_H

#include <stddef.h>

#include "rl.h"

/* One header field; offsets are into the message. */
struct msg_field {
	const char *name;
	size_t namelen;
	const char *value; /* after the colon, folding lines included */
	size_t valuelen;
	size_t start, end; /* the whole field including its final CRLF */
};

/* Offset of the body: just past the empty line ending the header section,
 * or len when there is none. Lines end in CRLF. */
size_t msg_header_end(const char *p, size_t len);

/*
 * Next field of the header section p[0..hlen) from *pos.  Returns 1 with f
 * filled and *pos advanced, 0 at the end, RL_EPARSE on a line that is not a
 * field (the header section then ends there for our purposes).
 */
int msg_header_next(const char *p, size_t hlen, size_t *pos, struct msg_field *f) RL_WUR;

/* Case-insensitive field name test. */
int msg_field_is(const struct msg_field *f, const char *name);

/*
 * Number of Received: header fields in the header section of data[0..len):
 * up to the first empty line, or len.  The field name is matched without
 * regard to case, with optional blanks before the colon (RFC 5322 4.5.3
 * obsolete syntax, as Postfix reads it); folded continuation lines belong
 * to their field and are not counted again.  A line that is not a field is
 * skipped, not an end.  Lines end in LF (CRLF or bare).  For the hop limit
 * (mail loops, RFC 5321 6.3), on arriving and on queued mail.
 */
size_t msg_received_count(const char *data, size_t len);

/*
 * Call cb with each addr-spec of an address-list value (RFC 5322 3.4):
 * display names, comments and group syntax are dropped.  The address passed
 * to cb is a slice of a scratch buffer valid during the call.  Stops and
 * returns cb's result when it is non-zero.
 */
int msg_addr_list(const char *v, size_t n, int (*cb)(void *arg, const char *addr, size_t len),
		  void *arg) RL_WUR;

#endif
