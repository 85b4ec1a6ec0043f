/*
 * mailq_fmt: the text and JSON queue listings, byte for byte as Postfix's
 * showq prints them, so that existing scripts and monitoring checks work.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mailq.h"

const char *mailq_queue_name(const struct queue_msg *m, int active)
{
	if (m->flags & QUEUE_F_HOLD)
		return "hold";
	if (active)
		return "active";
	for (size_t i = 0; i < m->nrcpt; i++) {
		if (m->rcpt[i].state == QUEUE_RCPT_DEFERRED)
			return "deferred";
	}
	return m->attempts ? "deferred" : "incoming";
}

int mailq_rcpt_listed(const struct queue_rcpt *r)
{
	return r->state == QUEUE_RCPT_PENDING || r->state == QUEUE_RCPT_DEFERRED;
}

/* The first 20 characters of asctime(): "Fri Aug  3 09:50:15 ". */
static void arrival_text(int64_t when, char out[21])
{
	time_t t = (time_t)when;
	struct tm tm;
	char buf[64];

	if (!localtime_r(&t, &tm) || !asctime_r(&tm, buf))
		memcpy(buf, "???                 ", 21);
	memcpy(out, buf, 20);
	out[20] = '\0';
	/* "%-20s" then drops nothing, but asctime ends the field in a space. */
}

/*
 * Append s for the text layout: CR, LF and other control octets become
 * '?', one for one, so a line of the listing stays one line and the column
 * arithmetic (reason lines end in column 78) still holds.  Records made
 * before envelope addresses were checked may hold such octets.
 */
int mailq_text_string(struct rl_buf *out, const char *s)
{
	size_t start = 0, i;
	int rc = 0;

	for (i = 0; s[i] && rc == 0; i++) {
		if ((unsigned char)s[i] >= 32 && s[i] != 127)
			continue;
		rc = rl_buf_append(out, s + start, i - start);
		if (rc == 0)
			rc = rl_buf_append(out, "?", 1);
		start = i + 1;
	}
	return rc ? rc : rl_buf_append(out, s + start, i - start);
}

static int same_reason(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Recipients sharing reason (NULL: not yet tried), after their reason line. */
static int format_group(struct rl_buf *out, const struct queue_msg *m, const char *reason)
{
	int rc = 0;
	size_t len;

	if (reason) {
		len = strlen(reason);
		rc = rl_buf_printf(out, "%*s(", len < 76 ? (int)(76 - len) : 0, "");
		if (rc == 0)
			rc = mailq_text_string(out, reason);
		if (rc == 0)
			rc = rl_buf_puts(out, ")\n");
	}
	for (size_t i = 0; i < m->nrcpt && rc == 0; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];

		if (!mailq_rcpt_listed(r) || !same_reason(r->reason, reason))
			continue;
		rc = rl_buf_printf(out, "%41s", "");
		if (rc == 0)
			rc = mailq_text_string(out, r->address);
		if (rc == 0)
			rc = rl_buf_puts(out, "\n");
	}
	return rc;
}

/* Was this recipient's reason already printed by an earlier group? */
static int reason_seen_before(const struct queue_msg *m, size_t k)
{
	for (size_t i = 0; i < k; i++) {
		if (mailq_rcpt_listed(&m->rcpt[i]) && same_reason(m->rcpt[i].reason, m->rcpt[k].reason))
			return 1;
	}
	return 0;
}

int mailq_format_text(struct rl_buf *out, const struct queue_msg *m, int active)
{
	char id[QUEUE_ID_SIZE + 2], when[21], size[24];
	int rc;

	snprintf(id, sizeof(id), "%s%s", m->id,
		 (m->flags & QUEUE_F_HOLD) ? "!" : active ? "*" : "");
	snprintf(size, sizeof(size), "%llu", (unsigned long long)m->size);
	arrival_text(m->arrival, when);
	rc = rl_buf_printf(out, "%-11s %7s %-20s ", id, size, when);
	if (rc == 0)
		rc = mailq_text_string(out, m->sender[0] ? m->sender : "MAILER-DAEMON");
	if (rc == 0)
		rc = rl_buf_puts(out, "\n");
	/* Recipients not yet tried first, then one group per distinct reason. */
	if (rc == 0)
		rc = format_group(out, m, NULL);
	for (size_t i = 0; i < m->nrcpt && rc == 0; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];

		if (mailq_rcpt_listed(r) && r->reason && !reason_seen_before(m, i))
			rc = format_group(out, m, r->reason);
	}
	return rc;
}

int mailq_format_trailer(struct rl_buf *out, uint64_t bytes, uint64_t count)
{
	return rl_buf_printf(out, "-- %llu Kbytes in %llu Request%s.\n",
			     (unsigned long long)(bytes / 1024), (unsigned long long)count,
			     count == 1 ? "" : "s");
}

/*
 * Length of the well-formed UTF-8 sequence at p (1 for ASCII), or 0: no
 * overlong forms, surrogates or code points beyond U+10FFFF (RFC 3629).
 * p is NUL-terminated, so a cut sequence stops at the NUL.
 */
static size_t utf8_len(const unsigned char *p)
{
	size_t want = 0;
	unsigned cp;

	if (p[0] < 0x80)
		want = 1;
	else if (p[0] >= 0xC2 && p[0] <= 0xDF)
		want = 2;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		want = 3;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		want = 4;
	cp = want == 2 ? p[0] & 0x1Fu : want == 3 ? p[0] & 0x0Fu : p[0] & 0x07u;

	for (size_t i = 1; i < want; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3Fu);
	}
	if ((want == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (want == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return want;
}

/*
 * A JSON string (RFC 8259 section 7): quotes, backslashes and control
 * octets escaped; octets that are not UTF-8 become U+FFFD, so a reader
 * that insists on valid UTF-8 still parses every line.
 */
int mailq_json_string(struct rl_buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int rc = rl_buf_puts(out, "\"");

	while (*p && rc == 0) {
		size_t k = utf8_len(p);

		if (*p == '"' || *p == '\\')
			rc = rl_buf_printf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			rc = rl_buf_printf(out, "\\u%04x", *p);
		else if (k == 0)
			rc = rl_buf_puts(out, "\\ufffd");
		else
			rc = rl_buf_append(out, p, k);
		p += k ? k : 1;
	}
	return rc ? rc : rl_buf_puts(out, "\"");
}

static int format_json_rcpt(struct rl_buf *out, const struct queue_rcpt *r, int first)
{
	int rc = rl_buf_puts(out, first ? "{\"address\": " : ", {\"address\": ");

	if (rc == 0)
		rc = mailq_json_string(out, r->address);
	if (rc == 0 && r->state == QUEUE_RCPT_DEFERRED && r->reason) {
		rc = rl_buf_puts(out, ", \"delay_reason\": ");
		if (rc == 0)
			rc = mailq_json_string(out, r->reason);
	}
	return rc ? rc : rl_buf_puts(out, "}");
}

int mailq_format_json(struct rl_buf *out, const struct queue_msg *m, int active)
{
	int rc, first = 1;

	rc = rl_buf_printf(out,
			   "{\"queue_name\": \"%s\", \"queue_id\": \"%s\", \"arrival_time\": %lld, "
			   "\"message_size\": %llu, \"forced_expire\": false, \"sender\": ",
			   mailq_queue_name(m, active), m->id, (long long)m->arrival,
			   (unsigned long long)m->size);
	if (rc == 0)
		rc = mailq_json_string(out, m->sender);
	if (rc == 0)
		rc = rl_buf_puts(out, ", \"recipients\": [");
	for (size_t i = 0; i < m->nrcpt && rc == 0; i++) {
		if (!mailq_rcpt_listed(&m->rcpt[i]))
			continue;
		rc = format_json_rcpt(out, &m->rcpt[i], first);
		first = 0;
	}
	if (rc == 0)
		rc = rl_buf_puts(out, "]");
	/* Ours, beyond postqueue -j: present only on REQUIRETLS mail (RFC 8689). */
	if (rc == 0 && (m->flags & QUEUE_F_REQUIRETLS))
		rc = rl_buf_puts(out, ", \"requiretls\": true");
	return rc ? rc : rl_buf_puts(out, "}\n");
}
