/*
 * smtp: the pure SMTP codec shared by the inbound server and (later) the
 * outbound client.  No I/O, no logging, no allocation beyond the bounded
 * buffers the caller passes in; every function here takes untrusted bytes
 * and has a table-driven unit test and a fuzz target.
 *
 * Limits follow RFC 5321 section 4.5.3.1, except the command line limit,
 * which is Postfix's line_length_limit: SIZE, BODY and SMTPUTF8 parameters
 * plus a 256-octet path do not fit the RFC's 512 octets comfortably.
 */
#ifndef SMTP_H
#define SMTP_H

#include <stddef.h>
#include <stdint.h>

#include "rl.h"

#define SMTP_CMD_LINE_MAX 2048 /* octets incl. CRLF; RFC 5321 says 512 */
#define SMTP_TEXT_LINE_MAX 998 /* octets excl. CRLF, 4.5.3.1.6 */
#define SMTP_PATH_MAX 256      /* octets incl. brackets, 4.5.3.1.3 */
#define SMTP_DOMAIN_MAX 255    /* 4.5.3.1.2 */
#define SMTP_REPLY_LINE_MAX 512 /* 4.5.3.1.5 */

enum smtp_verb {
	SMTP_V_UNKNOWN = 0,
	SMTP_V_HELO,
	SMTP_V_EHLO,
	SMTP_V_MAIL,
	SMTP_V_RCPT,
	SMTP_V_DATA,
	SMTP_V_RSET,
	SMTP_V_NOOP,
	SMTP_V_QUIT,
	SMTP_V_VRFY,
	SMTP_V_EXPN,
	SMTP_V_HELP,
	SMTP_V_STARTTLS,
	SMTP_V_BDAT,
	SMTP_V_AUTH,
};

/*
 * Find the next complete line in buf.  Returns 1 and sets *linelen (without
 * the CRLF) and *consumed (with it) when a CRLF-terminated line is there;
 * 0 when more input is needed; RL_EPROTO when a bare LF, or a CR followed by
 * anything but LF, appears (RFC 5321 2.3.8: only CRLF ends a line).
 */
int smtp_line_next(const char *buf, size_t len, size_t *linelen,
		   size_t *consumed) RL_WUR;

/* A command line split into verb and argument (a slice of the line). */
struct smtp_cmd {
	int verb;        /* enum smtp_verb */
	const char *arg; /* after the verb and one space; "" if none */
	size_t arglen;
};

/* Split a command line (without CRLF).  RL_EPARSE on NUL or 8-bit bytes
 * in the verb, or a verb not followed by space or end of line. */
int smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out,
		   struct rl_why *why) RL_WUR;

/* Kinds of domain: a name, or an address literal (RFC 5321 4.1.3). */
#define SMTP_LIT_NONE 0
#define SMTP_LIT_IPV4 1 /* [192.0.2.1] */
#define SMTP_LIT_IPV6 2 /* [IPv6:2001:db8::1] */

/* A mailbox from a reverse-path or forward-path, without brackets. */
struct smtp_path {
	char addr[SMTP_PATH_MAX + 1]; /* "" for the null path <> */
	size_t len;
	int utf8;    /* contains octets >= 0x80 (needs SMTPUTF8) */
	int literal; /* SMTP_LIT_*: the domain is an address literal */
};

#define SMTP_BODY_NONE 0
#define SMTP_BODY_7BIT 1
#define SMTP_BODY_8BITMIME 2

struct smtp_mail_params {
	int64_t size; /* SIZE=, -1 when absent */
	int body;     /* SMTP_BODY_* */
	int smtputf8; /* SMTPUTF8 given */
	int requiretls; /* REQUIRETLS given (RFC 8689 section 2; it takes no value) */
	int auth;       /* AUTH=<> or AUTH=xtext given (RFC 4954 section 5); never passed on */
};

/*
 * Paths: an address literal must be a valid IPv4 address or "IPv6:" and a
 * valid IPv6 address (RL_EPARSE otherwise); path->literal says which.
 *
 * "FROM:<path> [params]" (the argument of MAIL).  The null path is allowed.
 * Source routes (<@a,@b:user@d>) are accepted and dropped (RFC 5321 4.1.2,
 * C.).  Unknown parameters are RL_EPARSE ("555 5.5.4" at the caller).
 */
int smtp_mail_parse(const char *arg, size_t len, struct smtp_path *from,
		    struct smtp_mail_params *p, struct rl_why *why) RL_WUR;

/* "TO:<path> [params]" (the argument of RCPT); the path needs a domain. */
int smtp_rcpt_parse(const char *arg, size_t len, struct smtp_path *to,
		    struct rl_why *why) RL_WUR;

/* Is this a syntactically valid EHLO/HELO argument (domain or literal)? */
int smtp_helo_valid(const char *arg, size_t len);

/*
 * Resumable decoder of the DATA stream (RFC 5321 4.1.1.4, 4.5.2).  It removes
 * dot-stuffing, keeps CRLF line ends, and stops exactly after CRLF.CRLF.  A
 * bare CR or LF anywhere is an error, so <LF>.<LF> and its variants can never
 * end the data (SMTP smuggling).  Content beyond the output buffer's limit is
 * counted and dropped, so the caller can answer 552 after the end.
 */
struct smtp_data {
	int bol;        /* at the beginning of a line */
	int dot;        /* the line so far is a single leading dot */
	int cr;         /* the previous octet was CR */
	int done;       /* the end of data was seen */
	int overflow;   /* content did not fit the output buffer */
	int long_line;  /* a line was longer than SMTP_TEXT_LINE_MAX */
	int eightbit;   /* an octet >= 0x80 was seen */
	size_t linelen; /* octets in the current line */
	uint64_t total; /* content octets, including dropped ones */
};

void smtp_data_init(struct smtp_data *d);
/*
 * Feed n octets.  Content goes to out.  Sets *consumed to the octets used:
 * all of them, or fewer when the end of data came first (d->done) or an
 * error stopped it.  Returns 0, RL_EPROTO on a bare CR or LF, or -ENOMEM.
 */
int smtp_data_feed(struct smtp_data *d, const char *p, size_t n,
		   struct rl_buf *out, size_t *consumed) RL_WUR;

/*
 * Replies (RFC 5321 4.2): one complete reply, possibly multi-line, with
 * its lines kept (joined by '\n') for EHLO keywords, logs and DSNs.  Lines
 * ending in a bare LF are accepted from servers, as most clients do.
 */
#define SMTP_REPLY_TEXT_MAX 4096 /* all lines together; more is cut */
#define SMTP_REPLY_LINES_MAX 100 /* a longer reply is refused */
/*
 * Longest reply line accepted (octets before the LF, CR included: the same
 * count whether or not the CR has arrived yet).  RFC 5321 4.5.3.1.5
 * says 512 with CRLF, but servers send longer ones (URLs in refusals), so
 * we tolerate Postfix's line_length_limit; beyond it the reply is refused,
 * whether or not the line's end has arrived yet.
 */
#define SMTP_REPLY_LINE_LIMIT 2048

struct smtp_reply {
	int code;                          /* 200..599 */
	char enh[16];                      /* enhanced status "5.1.1" or "" */
	char text[SMTP_REPLY_TEXT_MAX];    /* the lines without codes, '\n'-joined */
	size_t textlen;
	unsigned nlines;
};

/*
 * Assemble the next complete reply from buf.  Returns 1 with *r filled and
 * *consumed set, 0 when more input is needed, RL_EPARSE on a malformed reply
 * (bad code, codes that differ between lines, too many lines, a line over
 * SMTP_REPLY_LINE_LIMIT, complete or not).  Non-printable octets in the text
 * (NUL included) are replaced by '?'.  The enhanced status code of the first
 * line goes to enh and is dropped from every line that repeats it; a line
 * of only "250 2.0.0" leaves an empty text.  A line that does not fit the
 * text whole is left out (never cut), so keywords are never truncated.
 */
int smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *r, size_t *consumed) RL_WUR;

/* "250 2.0.0 text text2" on one line for logs and reasons, into out
 * (truncated to size; no trailing space when the text is empty). */
void smtp_reply_oneline(const struct smtp_reply *r, char *out, size_t size);

/*
 * The steps of a client's dialogue whose replies are judged by
 * smtp_reply_verdict() (RFC 5321 4.3.2), and the verdicts: OK (the step's
 * success code: 220 greeting and STARTTLS, 250 EHLO/HELO/MAIL/end of
 * data/RSET, 250 or 251 RCPT, 354 DATA, 221 QUIT), REFUSED (any 4xx or
 * 5xx: the server's temporary or permanent refusal), PROTO (anything else:
 * a protocol error, never success; the client ends the session).
 */
enum smtp_step {
	SMTP_STEP_GREETING = 0,
	SMTP_STEP_EHLO,
	SMTP_STEP_HELO,
	SMTP_STEP_STARTTLS,
	SMTP_STEP_MAIL,
	SMTP_STEP_RCPT,
	SMTP_STEP_DATA,
	SMTP_STEP_DOT, /* the reply to the end of data */
	SMTP_STEP_RSET,
	SMTP_STEP_QUIT,
	SMTP_STEP_COUNT
};

enum smtp_verdict { SMTP_VERDICT_OK = 0, SMTP_VERDICT_REFUSED, SMTP_VERDICT_PROTO };

/* The verdict on reply code (any int) after step; a bad step aborts. */
int smtp_reply_verdict(int step, int code);
/* "to end of data", "as the initial greeting", ...: for reasons (static). */
const char *smtp_step_name(int step);

#define SMTP_EXT_STARTTLS 0x01
#define SMTP_EXT_PIPELINING 0x02
#define SMTP_EXT_SIZE 0x04
#define SMTP_EXT_8BITMIME 0x08
#define SMTP_EXT_SMTPUTF8 0x10
#define SMTP_EXT_ENHANCEDSTATUSCODES 0x20
#define SMTP_EXT_REQUIRETLS 0x40

struct smtp_ehlo {
	unsigned ext;      /* SMTP_EXT_* */
	uint64_t size_max; /* SIZE value; 0 when none or unlimited */
};

/*
 * The extensions of a 250 reply to EHLO (keywords from line 2 on, any
 * case; the first line is the server's name).  SIZE takes a decimal value
 * of up to 18 digits; anything else there leaves size_max 0 (no limit
 * known).  Unknown keywords are ignored.
 */
void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *out);

/*
 * One whole "<path>" (s[0..n) and nothing else) under the same rules as
 * MAIL FROM and RCPT TO: for envelope addresses from local submission.
 * The null path "<>" only when allow_null.  RL_EPARSE with why filled.
 */
int smtp_path_parse(const char *s, size_t n, int allow_null, struct smtp_path *path,
		    struct rl_why *why) RL_WUR;

#endif
