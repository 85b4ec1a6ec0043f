/*
 * tlsrpt_mail: the report as mail (RFC 8460 section 5.3) and the report
 * URIs of a "_smtp._tls" record taken apart (mailto: address, https:
 * host, port and path).  Pure: no I/O; output bounded by the caller's buffer.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tlsrpt.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int tlsrpt_mailto_addr(const char *uri, char *out, size_t size)
{
	const char *p = uri + 7, *at = NULL;
	size_t n = 0;

	if (strncasecmp(uri, "mailto:", 7) != 0) /* schemes ignore case (RFC 3986 3.1) */
		return -EINVAL;
	/* RFC 6068: the address ends at "?" (headers) or the end; %XX decoded. */
	for (; *p && *p != '?'; p++) {
		int c = (unsigned char)*p;

		if (c == '%') {
			int h = hexval(p[1]), l = h < 0 ? -1 : hexval(p[2]);

			if (l < 0)
				return -EINVAL;
			c = h * 16 + l;
			p += 2;
		}
		/* An envelope address: printable, no blank, brackets or commas. */
		if (c <= ' ' || c > '~' || strchr("<>(),;:\\\"[]", c) || n + 1 >= size)
			return -EINVAL;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	at = strchr(out, '@');
	return n > 2 && at && at != out && at[1] && !strchr(at + 1, '@') ? 0 : -EINVAL;
}

int tlsrpt_https_parse(const char *uri, char *host, size_t hsize, unsigned *port, char *path,
		       size_t psize)
{
	const char *p = uri + 8, *slash, *colon;
	size_t hn;

	if (strncasecmp(uri, "https://", 8) != 0)
		return -EINVAL;
	slash = strchr(p, '/');
	hn = slash ? (size_t)(slash - p) : strlen(p);
	colon = memchr(p, ':', hn);
	*port = 443;
	if (colon) {
		unsigned v = 0;

		for (const char *q = colon + 1; q < p + hn; q++) {
			if (*q < '0' || *q > '9' || v > 6553)
				return -EINVAL;
			v = v * 10 + (unsigned)(*q - '0');
		}
		if (v == 0 || v > 65535)
			return -EINVAL;
		*port = v;
		hn = (size_t)(colon - p);
	}
	if (hn == 0 || hn >= hsize || memchr(p, '@', hn) || memchr(p, '[', hn))
		return -EINVAL;
	memcpy(host, p, hn);
	host[hn] = '\0';
	if (snprintf(path, psize, "%s", slash ? slash : "/") >= (int)psize)
		return -EINVAL;
	return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* RFC 2045 6.8: base64 in lines of 76 characters. */
static int put_base64(struct rl_buf *b, const unsigned char *p, size_t n)
{
	char line[80];
	size_t col = 0;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);

		line[col++] = b64[v >> 18 & 63];
		line[col++] = b64[v >> 12 & 63];
		line[col++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		line[col++] = i + 2 < n ? b64[v & 63] : '=';
		if (col == 76 || i + 3 >= n) {
			line[col++] = '\r';
			line[col++] = '\n';
			rc = rl_buf_append(b, line, col);
			col = 0;
		}
	}
	return rc;
}

int tlsrpt_mail(const struct tlsrpt_mail_params *m, struct rl_buf *out)
{
	char date[64], fname[600];
	struct tm tm;
	time_t now = (time_t)m->now;
	int rc;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* RFC 8460 5.1: receiver!policy-domain!begin!end!unique.json.gz */
	snprintf(fname, sizeof(fname), "%s!%s!%lld!%lld!%s.json.gz", m->submitter, m->domain,
		 (long long)m->begin, (long long)m->end, m->unique);
	rc = rl_buf_printf(out,
			   "From: %s\r\nTo: %s\r\nDate: %s\r\n"
			   "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n"
			   "Message-ID: <%s.%lld@%s>\r\n"
			   "TLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\n"
			   "MIME-Version: 1.0\r\n"
			   "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n"
			   "\tboundary=\"%s\"\r\n\r\n"
			   "This is a MIME-formatted message.\r\n\r\n"
			   "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
			   "This is an aggregate TLS report from %s for %s, %s (UTC).\r\n\r\n"
			   "--%s\r\nContent-Type: application/tlsrpt+gzip\r\n"
			   "Content-Transfer-Encoding: base64\r\n"
			   "Content-Disposition: attachment;\r\n\tfilename=\"%s\"\r\n\r\n",
			   m->from, m->to, date, m->domain, m->org_name, m->report_id, m->unique,
			   (long long)m->now, m->submitter, m->domain, m->org_name, TLSRPT_BOUNDARY,
			   TLSRPT_BOUNDARY, m->org_name, m->domain, m->day, TLSRPT_BOUNDARY, fname);
	if (rc == 0)
		rc = put_base64(out, m->gz, m->gzlen);
	if (rc == 0)
		rc = rl_buf_printf(out, "\r\n--%s--\r\n", TLSRPT_BOUNDARY);
	return rc;
}
