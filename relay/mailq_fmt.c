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
		rc = rl_buf_printf(out, "%*s(%s)\n", len < 76 ? (int)(76 - len) : 0, "", reason);
	}
	for (size_t i = 0; i < m->nrcpt && rc == 0; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];

		if (mailq_rcpt_listed(r) && same_reason(r->reason, reason))
			rc = rl_buf_printf(out, "%41s%s\n", "", r->address);
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
	rc = rl_buf_printf(out, "%-11s %7s %-20s %s\n", id, size, when,
			   m->sender[0] ? m->sender : "MAILER-DAEMON");
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

int mailq_json_string(struct rl_buf *out, const char *s)
{
	int rc = rl_buf_puts(out, "\"");

	for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
		if (*p == '"' || *p == '\\')
			rc = rl_buf_printf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			rc = rl_buf_printf(out, "\\u%04x", *p);
		else
			rc = rl_buf_append(out, p, 1);
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
	return rc ? rc : rl_buf_puts(out, "]}\n");
}
