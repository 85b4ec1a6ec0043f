/*
 * dsn: delivery status notifications laid out as Postfix's bounce daemon
 * writes them: an RFC 6522 multipart/report holding a human-readable part,
 * the RFC 3464 message/delivery-status part and the original header section
 * as text/rfc822-headers.
 *
 * Everything that comes from outside (the MX's reply, addresses, the original
 * headers) passes through a sanitizer before it reaches the output, so that a
 * hostile reply cannot add header fields or MIME parts to the report.  The
 * result is 7-bit, every line ends in CRLF and no line is longer than 998
 * octets (RFC 5322 section 2.1.1).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dsn.h"
#include "msg.h"

/* RFC 5322 section 2.1.1: at most 998 octets per line, excluding CRLF. */
#define DSN_LINE_MAX 998
/* Fold fields and text before this column, as Postfix's line_wrap() does. */
#define DSN_WRAP   76
#define DSN_INDENT "    "
/*
 * Longest value (address, host name, diagnostic) copied into the report; a
 * longer one is cut and ends in "...".  With a field name or "<...>:" around
 * it and an indent in front, a value that cannot be folded (no spaces) still
 * fits in DSN_LINE_MAX.
 */
#define DSN_VALUE_MAX 900
/* Most of the original header section returned (RFC 6522 section 4). */
#define DSN_HEADERS_MAX (64 * 1024)
/*
 * RFC 2046 section 5.1.1: a boundary is 1 to 70 characters.  The caller's
 * boundary is cut to DSN_BOUNDARY_BASE_MAX to leave room for "=_" and 16 hex
 * digits, added when the plain one occurs in the content.
 */
#define DSN_BOUNDARY_MAX      70
#define DSN_BOUNDARY_BASE_MAX 40
#define DSN_BOUNDARY_TRIES    8
/* One logical line (field or text paragraph) before it is folded. */
#define DSN_SCRATCH_MAX 4096

enum san_mode {
	SAN_TEXT, /* whitespace runs become one space */
	SAN_WORD, /* spaces become '?' too */
};

/*
 * Copy src into dst as printable US-ASCII.  CR and LF never pass: in text
 * mode they fold with other whitespace into one space (a multi-line SMTP
 * reply becomes one line, as in Postfix), elsewhere they become '?' like
 * every control and 8-bit byte.  At most DSN_VALUE_MAX characters are kept.
 */
static void sanitize(char dst[DSN_VALUE_MAX + 2], const char *src, enum san_mode mode)
{
	const unsigned char *p = (const unsigned char *)(src ? src : "");
	size_t n = 0;
	int space = 0;

	for (; *p && n <= DSN_VALUE_MAX; p++) {
		if (mode == SAN_TEXT && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
			space = n > 0;
			continue;
		}
		if (space) {
			dst[n++] = ' ';
			space = 0;
			if (n > DSN_VALUE_MAX)
				break;
		}
		dst[n++] = (*p > 0x20 && *p < 0x7f) ? (char)*p : '?';
	}
	if (n > DSN_VALUE_MAX) {
		n = DSN_VALUE_MAX - 3;
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
}

/*
 * Append line (printable ASCII words separated by spaces) and CRLF, folded
 * before a word that would pass column DSN_WRAP; continuation lines start
 * with DSN_INDENT, which makes this RFC 5322 folding for header fields and
 * Postfix's layout for text.  A word longer than the width stays whole;
 * sanitize() bounds words, so no line passes DSN_LINE_MAX.
 */
static int put_folded(struct rl_buf *b, const char *line)
{
	const char *w = line;
	size_t col = 0;
	int rc = 0;

	while (*w && rc == 0) {
		const char *sp = strchr(w, ' ');
		size_t wl = sp ? (size_t)(sp - w) : strlen(w);

		if (wl == 0) {
			/* An empty value left two spaces in a row. */
			w++;
			continue;
		}
		if (col == 0) {
			rc = rl_buf_append(b, w, wl);
			col = wl;
		} else if (col + 1 + wl > DSN_WRAP && col > strlen(DSN_INDENT)) {
			rc = rl_buf_puts(b, "\r\n" DSN_INDENT);
			if (rc == 0)
				rc = rl_buf_append(b, w, wl);
			col = strlen(DSN_INDENT) + wl;
		} else {
			rc = rl_buf_puts(b, " ");
			if (rc == 0)
				rc = rl_buf_append(b, w, wl);
			col += 1 + wl;
		}
		w = sp ? sp + 1 : w + wl;
	}
	return rc ? rc : rl_buf_puts(b, "\r\n");
}

static int put_field(struct rl_buf *b, struct rl_buf *scratch, const char *fmt, ...)
    RL_PRINTF(3, 4);

/* Format one logical line into scratch, then fold it into b. */
static int put_field(struct rl_buf *b, struct rl_buf *scratch, const char *fmt, ...)
{
	va_list ap;
	int rc;

	rl_buf_reset(scratch);
	va_start(ap, fmt);
	rc = rl_buf_vprintf(scratch, fmt, ap);
	va_end(ap);
	return rc ? rc : put_folded(b, scratch->data);
}

/* "Fri, 3 Aug 2018 09:50:15 +0000" (RFC 5322 section 3.3) in UTC, with
 * English names whatever the locale. */
#define DSN_DATE_MAX 40

static int fmt_date(char out[DSN_DATE_MAX], int64_t when)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)when;
	struct tm tm;

	/* RFC 5322 years have four digits from 1900 on. */
	if ((int64_t)t != when || !gmtime_r(&t, &tm) || tm.tm_year < 0 || tm.tm_year > 9999 - 1900)
		return -EOVERFLOW;
	snprintf(out, DSN_DATE_MAX, "%s, %d %s %d %02d:%02d:%02d +0000", days[tm.tm_wday],
		 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
	return 0;
}

/* "Name: DATE" and CRLF. */
static int put_date(struct rl_buf *b, const char *name, int64_t when)
{
	char date[DSN_DATE_MAX];
	int rc = fmt_date(date, when);

	return rc ? rc : rl_buf_printf(b, "%s: %s\r\n", name, date);
}

/* RFC 3464 section 2.3.3. */
static int action_valid(const char *a)
{
	static const char *const actions[] = {"failed", "delayed", "delivered", "relayed",
					      "expanded"};

	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (strcmp(a, actions[i]) == 0)
			return 1;
	}
	return 0;
}

/* RFC 3463 section 2: class "." subject "." detail, class 2, 4 or 5. */
static int status_valid(const char *s)
{
	size_t i = 2, d;

	if (!s || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	for (int part = 0; part < 2; part++) {
		for (d = 0; s[i] >= '0' && s[i] <= '9'; i++)
			d++;
		if (d < 1 || d > 3)
			return 0;
		if (part == 0 && s[i++] != '.')
			return 0;
	}
	return s[i] == '\0';
}

/* The status to report: the caller's if well-formed (it may come from a
 * peer's reply), else the generic code of the action's class. */
static const char *rcpt_status(const struct dsn_rcpt *r)
{
	if (status_valid(r->status))
		return r->status;
	if (strcmp(r->action, "failed") == 0)
		return "5.0.0";
	return strcmp(r->action, "delayed") == 0 ? "4.0.0" : "2.0.0";
}

static int all_delayed(const struct dsn_rcpt *rcpt, size_t nrcpt)
{
	for (size_t i = 0; i < nrcpt; i++) {
		if (strcmp(rcpt[i].action, "delayed") != 0)
			return 0;
	}
	return 1;
}

static const char text_failed[] = "I'm sorry to have to inform you that your message could not\r\n"
				  "be delivered to one or more recipients. The headers of your\r\n"
				  "message are attached below.\r\n"
				  "\r\n";

/* RFC 8689 section 5: the report of REQUIRETLS mail says what it left out. */
static const char text_failed_redacted[] =
    "I'm sorry to have to inform you that your message could not\r\n"
    "be delivered to one or more recipients. Your message required\r\n"
    "TLS (REQUIRETLS), so only its Message-ID is attached below.\r\n"
    "\r\n";

static const char text_delayed[] =
    "####################################################################\r\n"
    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
    "####################################################################\r\n"
    "\r\n"
    "Your message could not yet be delivered to the recipients\r\n"
    "listed below. The mail system will keep trying to deliver it.\r\n";

/* The end of the delay warning's first paragraph. */
static const char text_delayed_end[] = "The headers of your message are attached below.\r\n"
				       "\r\n";

/* RFC 8689 section 5, as for text_failed_redacted. */
static const char text_delayed_end_redacted[] =
    "Your message required TLS (REQUIRETLS), so only its\r\n"
    "Message-ID is attached below.\r\n"
    "\r\n";

static const char text_common[] = "For further assistance, please send mail to postmaster.\r\n"
				  "\r\n"
				  "If you do so, please include this problem report. You can\r\n"
				  "delete your own text from the attached returned message.\r\n"
				  "\r\n"
				  "                   The mail system\r\n";

/* "<rcpt>: host mx.example[192.0.2.1] said: 550 5.1.1 ...", folded. */
static int put_rcpt_text(struct rl_buf *b, struct rl_buf *scratch, const struct dsn_rcpt *r)
{
	char addr[DSN_VALUE_MAX + 2], host[DSN_VALUE_MAX + 2], diag[DSN_VALUE_MAX + 2];
	char *bracket;

	sanitize(addr, r->address, SAN_TEXT);
	sanitize(host, r->remote_mta, SAN_WORD);
	sanitize(diag, r->diagnostic, SAN_TEXT);
	if (!diag[0])
		rl_strlcpy(diag, "no diagnostic available", sizeof(diag));
	/* "mx[192.0.2.1]:25" (the log's relay=) reads "mx[192.0.2.1]", as in
	 * Postfix's text. */
	bracket = strrchr(host, ']');
	if (bracket && bracket[1] == ':')
		bracket[1] = '\0';
	if (r->remote_mta && r->smtp_reply)
		return put_field(b, scratch, "<%s>: host %s said: %s", addr, host, diag);
	if (r->remote_mta)
		return put_field(b, scratch, "<%s>: host %s: %s", addr, host, diag);
	return put_field(b, scratch, "<%s>: %s", addr, diag);
}

/* The delay warning's explanation: retried until when, what is attached. */
static int put_delayed_text(struct rl_buf *b, const struct dsn_info *info)
{
	char date[DSN_DATE_MAX];
	int rc = rl_buf_puts(b, text_delayed);

	if (rc == 0 && info->will_retry_until > 0) {
		rc = fmt_date(date, info->will_retry_until);
		if (rc == 0)
			rc = rl_buf_printf(b, "It will be retried until %s.\r\n", date);
	}
	if (rc == 0)
		rc = rl_buf_puts(b, info->redacted ? text_delayed_end_redacted : text_delayed_end);
	return rc;
}

/* Part 1, text/plain: Postfix's explanation, then one paragraph per
 * recipient. */
static int build_text(struct rl_buf *b, struct rl_buf *scratch, const struct dsn_info *info,
		      const struct dsn_rcpt *rcpt, size_t nrcpt)
{
	char host[DSN_VALUE_MAX + 2];
	int rc;

	sanitize(host, info->reporting_mta, SAN_WORD);
	rc = rl_buf_printf(b, "This is the mail system at host %s.\r\n\r\n", host);
	if (rc == 0 && all_delayed(rcpt, nrcpt))
		rc = put_delayed_text(b, info);
	else if (rc == 0)
		rc = rl_buf_puts(b, info->redacted ? text_failed_redacted : text_failed);
	if (rc == 0)
		rc = rl_buf_puts(b, text_common);
	for (size_t i = 0; i < nrcpt && rc == 0; i++) {
		rc = rl_buf_puts(b, "\r\n");
		if (rc == 0)
			rc = put_rcpt_text(b, scratch, &rcpt[i]);
	}
	return rc;
}

/* One per-recipient block of RFC 3464 section 2.3. */
static int put_rcpt_status(struct rl_buf *b, struct rl_buf *scratch, const struct dsn_rcpt *r,
			   int64_t until)
{
	char addr[DSN_VALUE_MAX + 2], host[DSN_VALUE_MAX + 2], diag[DSN_VALUE_MAX + 2];
	char *bracket;
	int rc;

	sanitize(addr, r->address, SAN_TEXT);
	sanitize(diag, r->diagnostic, SAN_TEXT);
	if (!diag[0])
		rl_strlcpy(diag, "no diagnostic available", sizeof(diag));
	rc = put_field(b, scratch, "Final-Recipient: rfc822; %s", addr);
	if (rc == 0)
		rc = put_field(b, scratch, "Action: %s", r->action);
	if (rc == 0)
		rc = put_field(b, scratch, "Status: %s", rcpt_status(r));
	if (rc == 0 && r->remote_mta) {
		/* Remote-MTA names the host; "mx.example[192.0.2.1]" gives
		 * "mx.example", a bare "[192.0.2.1]" stays as it is. */
		sanitize(host, r->remote_mta, SAN_WORD);
		bracket = strchr(host, '[');
		if (bracket && bracket != host)
			*bracket = '\0';
		rc = put_field(b, scratch, "Remote-MTA: dns; %s", host);
	}
	if (rc == 0)
		rc = put_field(b, scratch, "Diagnostic-Code: %s; %s",
			       r->smtp_reply ? "smtp" : "X-tlsrelay", diag);
	/* RFC 3464 section 2.3.8: only with the "delayed" action. */
	if (rc == 0 && until > 0 && strcmp(r->action, "delayed") == 0)
		rc = put_date(b, "Will-Retry-Until", until);
	return rc;
}

/* Part 2, message/delivery-status: per-message fields, then one block per
 * recipient, blocks separated by empty lines. */
static int build_status(struct rl_buf *b, struct rl_buf *scratch, const struct dsn_info *info,
			const struct dsn_rcpt *rcpt, size_t nrcpt)
{
	char host[DSN_VALUE_MAX + 2], id[DSN_VALUE_MAX + 2];
	int rc;

	sanitize(host, info->reporting_mta, SAN_WORD);
	sanitize(id, info->queue_id, SAN_WORD);
	rc = put_field(b, scratch, "Reporting-MTA: dns; %s", host);
	if (rc == 0)
		rc = put_field(b, scratch, "X-Tlsrelay-Queue-ID: %s", id);
	if (rc == 0)
		rc = put_date(b, "Arrival-Date", info->arrival);
	for (size_t i = 0; i < nrcpt && rc == 0; i++) {
		rc = rl_buf_puts(b, "\r\n");
		if (rc == 0)
			rc = put_rcpt_status(b, scratch, &rcpt[i], info->will_retry_until);
	}
	return rc;
}

/* Append one line of the original header section and CRLF, with every byte
 * other than printable ASCII and TAB replaced: the report stays 7-bit and a
 * stray CR cannot end a line early. */
static int put_clean_line(struct rl_buf *b, const char *p, size_t len)
{
	size_t avail;
	char *dst = rl_buf_space(b, len + 2, &avail);

	if (!dst || avail < len + 2)
		return RL_ETOOBIG;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		dst[i] = ((c >= 0x20 && c < 0x7f) || c == '\t') ? (char)c : '?';
	}
	dst[len] = '\r';
	dst[len + 1] = '\n';
	rl_buf_commit(b, len + 2);
	return 0;
}

/*
 * Is the line p[0..len) the start of a Message-ID field?  The name in any
 * case, blanks allowed before the colon (RFC 5322 4.5.3 obsolete syntax).
 */
static int is_message_id(const char *p, size_t len)
{
	static const char name[] = "message-id";
	size_t i = sizeof(name) - 1;

	if (len < i)
		return 0;
	for (size_t k = 0; k < i; k++) {
		char c = p[k] >= 'A' && p[k] <= 'Z' ? (char)(p[k] - 'A' + 'a') : p[k];

		if (c != name[k])
			return 0;
	}
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < len && p[i] == ':';
}

/*
 * Part 3, text/rfc822-headers: the original header section up to its empty
 * line (all of it when there is none), never the body.  Lines longer than
 * DSN_LINE_MAX are cut; the section is cut at a line end once it would pass
 * DSN_HEADERS_MAX.  redacted: only the Message-ID field, with its folded
 * continuation lines (RFC 8689 section 5).
 */
static int build_headers(struct rl_buf *b, const char *orig, size_t origlen, int redacted)
{
	size_t hend = orig ? msg_header_end(orig, origlen) : 0, i = 0;
	int rc = 0, keep = !redacted;

	while (i < hend && rc == 0) {
		const char *lf = memchr(orig + i, '\n', hend - i);
		size_t end = lf ? (size_t)(lf - orig) : hend;
		size_t len = end - i;

		if (len > 0 && orig[end - 1] == '\r')
			len--;
		if (len == 0)
			break; /* the empty line that ends the section */
		/* A line starting with a blank continues the field before it. */
		if (redacted && orig[i] != ' ' && orig[i] != '\t')
			keep = is_message_id(orig + i, len);
		if (len > DSN_LINE_MAX)
			len = DSN_LINE_MAX;
		if (b->len + len + 2 > DSN_HEADERS_MAX)
			break;
		if (keep)
			rc = put_clean_line(b, orig + i, len);
		i = lf ? end + 1 : hend;
	}
	return rc;
}

/* RFC 2046 section 5.1.1 bchars, less the space. */
static int boundary_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("'()+_,-./:=?", c) != NULL);
}

static int contains(const struct rl_buf *hay, const char *needle)
{
	size_t m = strlen(needle);

	for (size_t i = 0; hay->len >= m && i <= hay->len - m; i++) {
		const char *p = memchr(hay->data + i, needle[0], hay->len - m - i + 1);

		if (!p)
			return 0;
		i = (size_t)(p - hay->data);
		if (memcmp(p, needle, m) == 0)
			return 1;
	}
	return 0;
}

static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/*
 * The boundary: the caller's, reduced to bchars, if it occurs nowhere in the
 * parts' content.  The included headers are the sender's text and the
 * caller's boundary (queue ID and time) is guessable, so on a collision we
 * append "=_" and a hash of the content itself, which the content cannot
 * predict.  RL_EPARSE if every try collides.
 */
static int choose_boundary(char out[DSN_BOUNDARY_MAX + 1], const char *base,
			   const struct rl_buf *const parts[3])
{
	const unsigned char *p = (const unsigned char *)(base ? base : "");
	char clean[DSN_BOUNDARY_BASE_MAX + 1];
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t n = 0;

	for (; *p && n < DSN_BOUNDARY_BASE_MAX; p++)
		clean[n++] = boundary_char(*p) ? (char)*p : '.';
	clean[n] = '\0';
	if (n == 0)
		rl_strlcpy(clean, "tlsrelay-dsn", sizeof(clean));
	for (int k = 0; k < 3; k++)
		h = fnv1a(h, parts[k]->data, parts[k]->len);
	for (int t = 0; t < DSN_BOUNDARY_TRIES; t++) {
		if (t == 0) {
			snprintf(out, DSN_BOUNDARY_MAX + 1, "%s", clean);
		} else {
			h = fnv1a(h, out, strlen(out));
			snprintf(out, DSN_BOUNDARY_MAX + 1, "%s=_%016llx", clean,
				 (unsigned long long)h);
		}
		if (!contains(parts[0], out) && !contains(parts[1], out) &&
		    !contains(parts[2], out))
			return 0;
	}
	return RL_EPARSE;
}

/* The report's own header section (Postfix's bounce headers plus RFC 3834
 * Auto-Submitted), ending in the empty line. */
static int put_top_headers(struct rl_buf *b, struct rl_buf *scratch, const struct dsn_info *info,
			   const char *boundary, int delayed)
{
	char host[DSN_VALUE_MAX + 2], to[DSN_VALUE_MAX + 2], mid[DSN_VALUE_MAX + 2];
	char raw[2 * DSN_VALUE_MAX + 64];
	int rc;

	sanitize(host, info->reporting_mta, SAN_WORD);
	sanitize(to, info->sender, SAN_TEXT);
	if (info->message_id && info->message_id[0]) {
		sanitize(mid, info->message_id, SAN_WORD);
	} else {
		sanitize(mid, info->queue_id, SAN_WORD);
		snprintf(raw, sizeof(raw), "%s.%lld@%s", mid, (long long)info->now, host);
		sanitize(mid, raw, SAN_WORD);
	}
	/* The angle brackets are ours (RFC 5322 section 3.6.4). */
	for (char *c = mid; *c; c++)
		*c = (*c == '<' || *c == '>') ? '?' : *c;
	rc = put_field(b, scratch, "From: MAILER-DAEMON@%s (Mail Delivery System)", host);
	if (rc == 0)
		rc = put_field(b, scratch, "To: <%s>", to);
	if (rc == 0)
		rc = rl_buf_puts(b, delayed ? "Subject: Delayed Mail (still being retried)\r\n"
					    : "Subject: Undelivered Mail Returned to Sender\r\n");
	if (rc == 0)
		rc = put_date(b, "Date", info->now);
	if (rc == 0)
		rc = put_field(b, scratch, "Message-ID: <%s>", mid);
	if (rc == 0)
		rc =
		    rl_buf_printf(b,
				  "Auto-Submitted: auto-replied\r\n"
				  "MIME-Version: 1.0\r\n"
				  "Content-Type: multipart/report; report-type=delivery-status;\r\n"
				  "\tboundary=\"%s\"\r\n"
				  "\r\n"
				  "This is a MIME-encapsulated message.\r\n",
				  boundary);
	return rc;
}

/* Each part: delimiter, its header, an empty line, its content; the CRLF
 * in front of the next delimiter belongs to that delimiter (RFC 2046). */
static int put_part(struct rl_buf *b, const char *boundary, const char *desc, const char *type,
		    const struct rl_buf *content)
{
	int rc = rl_buf_printf(b,
			       "\r\n--%s\r\n"
			       "Content-Description: %s\r\n"
			       "Content-Type: %s\r\n"
			       "\r\n",
			       boundary, desc, type);

	return rc ? rc : rl_buf_append(b, content->data, content->len);
}

static int check_args(const struct dsn_info *info, const struct dsn_rcpt *rcpt, size_t nrcpt)
{
	RL_REQUIRE(info && info->reporting_mta && info->queue_id);
	RL_REQUIRE(rcpt || nrcpt == 0);
	/* RFC 3461 section 6.2: never a notification to the null sender. */
	if (!info->sender || !info->sender[0] || nrcpt == 0)
		return -EINVAL;
	for (size_t i = 0; i < nrcpt; i++) {
		RL_REQUIRE(rcpt[i].address && rcpt[i].action);
		if (!action_valid(rcpt[i].action))
			return -EINVAL;
	}
	return 0;
}

static int put_message(struct rl_buf *out, struct rl_buf *scratch, const struct dsn_info *info,
		       int delayed, const struct rl_buf *const parts[3])
{
	char boundary[DSN_BOUNDARY_MAX + 1];
	int rc = choose_boundary(boundary, info->boundary, parts);

	if (rc == 0)
		rc = put_top_headers(out, scratch, info, boundary, delayed);
	if (rc == 0)
		rc = put_part(out, boundary, "Notification", "text/plain; charset=us-ascii",
			      parts[0]);
	if (rc == 0)
		rc =
		    put_part(out, boundary, "Delivery report", "message/delivery-status", parts[1]);
	if (rc == 0)
		rc = put_part(out, boundary,
			      delayed ? "Delayed Message Headers" : "Undelivered Message Headers",
			      "text/rfc822-headers", parts[2]);
	if (rc == 0)
		rc = rl_buf_printf(out, "\r\n--%s--\r\n", boundary);
	return rc;
}

int dsn_build(struct rl_buf *out, const struct dsn_info *info, const struct dsn_rcpt *rcpt,
	      size_t nrcpt, const char *orig, size_t origlen)
{
	struct rl_buf text, status, headers, scratch;
	const struct rl_buf *const parts[3] = {&text, &status, &headers};
	size_t start;
	int rc;

	RL_REQUIRE(out);
	start = out->len;
	rc = check_args(info, rcpt, nrcpt);
	if (rc < 0)
		return rc;
	rl_buf_init(&text, out->limit);
	rl_buf_init(&status, out->limit);
	rl_buf_init(&headers, DSN_HEADERS_MAX);
	rl_buf_init(&scratch, DSN_SCRATCH_MAX);
	rc = build_text(&text, &scratch, info, rcpt, nrcpt);
	if (rc == 0)
		rc = build_status(&status, &scratch, info, rcpt, nrcpt);
	if (rc == 0)
		rc = build_headers(&headers, orig, origlen, info->redacted);
	if (rc == 0)
		rc = put_message(out, &scratch, info, all_delayed(rcpt, nrcpt), parts);
	rl_buf_fini(&text);
	rl_buf_fini(&status);
	rl_buf_fini(&headers);
	rl_buf_fini(&scratch);
	if (rc < 0) {
		/* Leave out as it was: no half report. */
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return rc;
}
