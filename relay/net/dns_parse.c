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
#include <string.h>

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
