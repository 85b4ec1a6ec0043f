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
#include "smtp.h"

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

/*
 * An envelope address given to local submission (sendmail -f, recipient
 * arguments, To/Cc/Bcc with -t): "addr" or "<addr>", spaces around it
 * ignored; "@myhostname" is added to a name without '@', as in Postfix.  The
 * result must pass the listener's path rules (smtp_path_parse), so CR, LF,
 * NUL and other control octets, parameters and stray brackets are refused.
 * An empty address is the null path when allow_null.  Returns 0 with *out
 * filled, or RL_EPARSE with why filled.
 */
int msg_envelope_addr(const char *a, size_t n, const char *myhostname, int allow_null,
		      struct smtp_path *out, struct rl_why *why) RL_WUR;

/*
 * Resumable reader of a message handed to local submission, as Postfix's
 * sendmail reads it: each line ends in LF or CRLF (one CR before the LF
 * is dropped) and is stored with CRLF; a last line without LF is given one.
 * With dot_ends (no -i) a line of one dot ends the message and is not
 * stored.  Content beyond max octets, or a line beyond SMTP_TEXT_LINE_MAX
 * octets (as the listener refuses it), stops the reader at once, so memory
 * never follows the input.  Bare CR and NUL octets are kept for now: see
 * msg_body_clean().
 */
struct msg_body {
	size_t max;     /* most content octets, CRLFs included */
	int dot_ends;   /* a line "." ends the message (no -i) */
	int cr;         /* the previous octet was a CR not yet stored */
	int dot;        /* the line so far is a single dot */
	int done;       /* the end (dot line) was seen; ignore the rest */
	int eightbit;   /* an octet >= 0x80 was seen */
	size_t linelen; /* octets in the current line */
};

void msg_body_init(struct msg_body *b, size_t max, int dot_ends);
/*
 * Feed n octets; content goes to out.  Returns 0 (check b->done), RL_ETOOBIG
 * past max, RL_EPARSE on a line over SMTP_TEXT_LINE_MAX, or -ENOMEM.
 */
int msg_body_feed(struct msg_body *b, const char *p, size_t n, struct rl_buf *out) RL_WUR;
/* The input ended: finish the last line.  Same returns as msg_body_feed. */
int msg_body_finish(struct msg_body *b, struct rl_buf *out) RL_WUR;
/*
 * In place, replace each bare CR (one not followed by LF) and each NUL by a
 * space, as Postfix's cleanup_replace_stray_cr_lf does, so the content
 * leaves with CRLF line ends only.  Lengths are unchanged.
 */
void msg_body_clean(char *p, size_t n);

#endif
