/*
 * dns_parse: decode the little wire data that libunbound hands back in
 * ub_result->data (the rdata of each record of the answer), for dns.c.
 *
 * libunbound expands names in rdata (RFC 3597 section 4: the types it knows
 * are stored uncompressed), so a compression pointer here can only be an
 * attack or a bug; it is refused rather than followed.  That also means no
 * decoder loop can be made to run forever or read outside the rdata.
 *
 * The text form is what the rest of the relay compares, logs and puts into
 * SMTP and TLS name checks, so only host-name characters are let through
 * (letters, digits, '-' and '_').  Anything else (a '.' or a NUL inside a
 * label, control bytes, 8-bit bytes) fails with RL_EPARSE instead of being
 * escaped: no MX host we could deliver to has such a name.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dns.h"

/* RFC 1035 section 2.3.4: labels of 63 octets or less, names of 255 or less. */
#define DNS_LABEL_MAX 63
#define DNS_WIRE_MAX  255

/* The two top bits of a length octet: 00 is a plain label, 11 a compression
 * pointer, 01 and 10 the obsolete extended label types (RFC 6891 section
 * 5); only 00 may appear in rdata from libunbound. */
#define DNS_LABEL_TYPE_MASK 0xC0

static int host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* dns_parse_name() without the reset of out on failure. */
static int name_decode(const unsigned char *p, size_t len, size_t *used, char *out, size_t outlen)
{
	size_t pos = 0, o = 0;

	for (;;) {
		size_t n;

		if (pos >= len)
			return RL_EPARSE; /* no terminating root label */
		n = p[pos];
		if (n & DNS_LABEL_TYPE_MASK)
			return RL_EPARSE; /* pointer or extended label type */
		if (n == 0)
			break;
		if (pos + 1 + n >= DNS_WIRE_MAX)
			return RL_EPARSE; /* with its root octet, over 255 */
		if (n > len - pos - 1)
			return RL_EPARSE; /* label runs past the input */
		/* The separating dot, the label and the final NUL must fit. */
		if (o + (o > 0) + n >= outlen)
			return RL_ETOOBIG;
		if (o > 0)
			out[o++] = '.';
		for (size_t i = 0; i < n; i++) {
			unsigned char c = p[pos + 1 + i];

			if (!host_char(c))
				return RL_EPARSE;
			out[o++] = (char)c;
		}
		pos += 1 + n;
	}
	out[o] = '\0';
	*used = pos + 1;
	return 0;
}

int dns_parse_name(const unsigned char *p, size_t len, size_t *used, char *out, size_t outlen)
{
	size_t n = 0;
	int rc;

	RL_REQUIRE(out && outlen > 0 && (p || len == 0));
	rc = name_decode(p, len, &n, out, outlen);
	if (rc < 0)
		out[0] = '\0'; /* never hand back half a name */
	else if (used)
		*used = n;
	return rc;
}

int dns_parse_mx(const unsigned char *rdata, size_t len, struct dns_mx_host *out)
{
	size_t used = 0;
	int rc;

	RL_REQUIRE(out);
	/* RFC 1035 section 3.3.9: a 16-bit preference, then the exchange. */
	if (len < 3)
		return RL_EPARSE;
	rc = dns_parse_name(rdata + 2, len - 2, &used, out->name, sizeof(out->name));
	if (rc < 0)
		return rc;
	/* Bytes after the name mean the rdata is not what it claims to be. */
	if (used != len - 2)
		return RL_EPARSE;
	out->pref = (unsigned)rdata[0] << 8 | rdata[1];
	return 0;
}

int dns_parse_host(const char *s, size_t len, char *out, size_t outlen)
{
	size_t label = 0;

	RL_REQUIRE(out && outlen > 0 && (s || len == 0));
	out[0] = '\0';
	/* "example.com." and "example.com" name the same host. */
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0)
		return RL_EPARSE; /* the root is no mail domain */
	/* 255 wire octets are 253 text octets once the length octets of the
	 * first label and of the root are gone (RFC 1035 section 2.3.4). */
	if (len > DNS_WIRE_MAX - 2)
		return RL_EPARSE;
	if (len >= outlen)
		return RL_ETOOBIG;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.' && label == 0)
			return RL_EPARSE; /* empty label: ".a", "a..b" */
		if (c == '.') {
			label = 0;
			continue;
		}
		if (!host_char(c))
			return RL_EPARSE;
		if (++label > DNS_LABEL_MAX)
			return RL_EPARSE;
	}
	if (label == 0)
		return RL_EPARSE; /* "a.." */
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* -- texts from files the operator gives (trust anchors, resolv.conf) ---- */

/* The fields of one line: at most DNS_FIELDS_MAX, a ';' starts a comment. */
#define DNS_FIELDS_MAX 6

struct dns_fields {
	const char *f[DNS_FIELDS_MAX];
	size_t n[DNS_FIELDS_MAX];
	size_t count;
	int indented; /* the line starts with a blank: no owner field */
};

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static void fields_split(const char *line, size_t len, struct dns_fields *fl)
{
	size_t i = 0;

	fl->count = 0;
	fl->indented = len > 0 && blank(line[0]);
	while (i < len && fl->count < DNS_FIELDS_MAX) {
		size_t start;

		while (i < len && blank(line[i]))
			i++;
		if (i >= len || line[i] == ';')
			return;
		start = i;
		while (i < len && !blank(line[i]) && line[i] != ';')
			i++;
		fl->f[fl->count] = line + start;
		fl->n[fl->count++] = i - start;
	}
}

static int field_is(const struct dns_fields *fl, size_t k, const char *word)
{
	size_t n = strlen(word);

	if (k >= fl->count || fl->n[k] != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = fl->f[k][i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c != word[i])
			return 0;
	}
	return 1;
}

/* A TTL (digits, maybe with BIND's units) or a class (RFC 1035 section
 * 5.1, RFC 3597 section 5 for CLASSnn). */
static int field_ttl_or_class(const struct dns_fields *fl, size_t k)
{
	const char *f = k < fl->count ? fl->f[k] : NULL;
	size_t n = f ? fl->n[k] : 0, i = 5;

	if (!f)
		return 0;
	if ((f[0] >= '0' && f[0] <= '9') || field_is(fl, k, "IN") || field_is(fl, k, "CH") ||
	    field_is(fl, k, "HS") || field_is(fl, k, "CS"))
		return 1;
	if (n <= 5 || strncasecmp(f, "CLASS", 5) != 0)
		return 0;
	while (i < n && f[i] >= '0' && f[i] <= '9')
		i++;
	return i == n;
}

/* The parenthesis depth after a line (RFC 1035 section 5.1: a record may
 * span lines inside parentheses; comments do not count). */
static int paren_depth(const char *line, size_t len, int depth)
{
	for (size_t i = 0; i < len && line[i] != ';'; i++)
		depth += line[i] == '(' ? 1 : line[i] == ')' ? -1 : 0;
	return depth < 0 ? 0 : depth;
}

/*
 * name (n octets, as written in the file) made absolute against origin
 * ("" for the root) into abs, without a final dot ("" for the root).
 */
static int owner_absolute(const char *name, size_t n, const char *origin, char *abs, size_t abslen)
{
	size_t o = strlen(origin);

	if (n == 1 && name[0] == '@')
		n = 0; /* the origin itself */
	else if (n > 0 && name[n - 1] == '.')
		o = 0; /* absolute already: no origin */
	if (n + 1 + o + 1 > abslen)
		return RL_ETOOBIG;
	memcpy(abs, name, n);
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n > 0 && o > 0)
		abs[n++] = '.';
	memcpy(abs + n, origin, o);
	abs[n + o] = '\0';
	return 0;
}

/* The owner as dns_parse_anchor_owner() hands it back: "." or a host name. */
static int owner_out(const char *abs, char *out, size_t outlen)
{
	if (abs[0] != '\0')
		return dns_parse_host(abs, strlen(abs), out, outlen);
	if (outlen < 2)
		return RL_ETOOBIG;
	memcpy(out, ".", 2);
	return 0;
}

int dns_parse_anchor_owner(const char *text, size_t len, char *out, size_t outlen)
{
	char origin[DNS_NAME_MAX] = "", abs[DNS_NAME_MAX + 2];
	struct dns_fields fl;
	size_t pos = 0;
	int depth = 0;

	RL_REQUIRE(out && outlen > 0 && (text || len == 0));
	out[0] = '\0';
	while (pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos, k;
		int continued = depth > 0;

		pos += n + (nl != NULL);
		depth = paren_depth(line, n, depth);
		fields_split(line, n, &fl);
		if (continued || fl.count == 0 || line[0] == '#')
			continue;
		if (field_is(&fl, 0, "$ORIGIN") && fl.count >= 2) {
			if (owner_absolute(fl.f[1], fl.n[1], origin, abs, sizeof(abs)) < 0 ||
			    strlen(abs) >= sizeof(origin))
				return RL_EPARSE;
			memcpy(origin, abs, strlen(abs) + 1);
			continue;
		}
		if (fl.f[0][0] == '$')
			continue; /* $TTL, $INCLUDE: no owner here */
		/* owner [TTL] [class] type: TTL and class in either order. */
		k = fl.indented ? 0 : 1;
		for (int i = 0; i < 2 && field_ttl_or_class(&fl, k); i++)
			k++;
		if (!field_is(&fl, k, "DS") && !field_is(&fl, k, "DNSKEY"))
			continue;
		if (fl.indented)
			memcpy(abs, origin, strlen(origin) + 1);
		else if (owner_absolute(fl.f[0], fl.n[0], origin, abs, sizeof(abs)) < 0)
			return RL_EPARSE;
		return owner_out(abs, out, outlen);
	}
	return RL_ENOTFOUND;
}

/* The characters of an address in resolv.conf: IPv4, IPv6, a %scope. */
static int addr_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '.' || c == ':' || c == '%' || c == '_' || c == '-';
}

size_t dns_parse_resolv(const char *text, size_t len, char *out, size_t outlen)
{
	struct dns_fields fl;
	size_t pos = 0, o = 0, count = 0;

	RL_REQUIRE(out && outlen > 0 && (text || len == 0));
	out[0] = '\0';
	while (pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos, need, i;

		pos += n + (nl != NULL);
		fields_split(line, n, &fl);
		/* resolv.conf(5): "nameserver ADDR"; '#' or ';' start comments. */
		if (fl.count < 2 || fl.n[0] != 10 || memcmp(fl.f[0], "nameserver", 10) != 0)
			continue;
		for (i = 0; i < fl.n[1] && addr_char(fl.f[1][i]); i++)
			;
		if (i != fl.n[1])
			continue; /* not an address: never copied into a log line */
		need = (o ? 2 : 0) + fl.n[1];
		if (o + need >= outlen)
			break; /* whole entries only */
		if (o) {
			memcpy(out + o, ", ", 2);
			o += 2;
		}
		memcpy(out + o, fl.f[1], fl.n[1]);
		o += fl.n[1];
		out[o] = '\0';
		count++;
	}
	return count;
}

/* -- the words of a failed lookup ----------------------------------------- */

#define DNS_BOGUS_PREFIX "DNSSEC validation failed: "

void dns_fail_text(char *out, size_t size, const char *name, const char *type, int status,
		   const char *why)
{
	size_t n = sizeof(DNS_BOGUS_PREFIX) - 1;

	RL_REQUIRE(out && size > 0 && name && type);
	if (status == DNS_BOGUS) {
		/* The answer was there but failed validation: "not found" would
		 * send the administrator after the wrong problem.  The resolver's
		 * why already starts with the same words; say them once. */
		if (why && strncmp(why, DNS_BOGUS_PREFIX, n) == 0)
			why += n;
		snprintf(out, size, "DNSSEC validation failed for name=%s type=%s: %s", name, type,
			 why && why[0] ? why : "the answer is bogus");
		return;
	}
	if (!why || !why[0])
		why = status == DNS_NXDOMAIN ? "Host not found"
		      : status == DNS_NODATA ? "No address associated with hostname"
					     : "Host not found, try again";
	snprintf(out, size,
		 "Host or domain name not found. Name service error for name=%s type=%s: %s", name,
		 type, why);
}
