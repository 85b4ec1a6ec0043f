/*
 * fpr_parse: the text form of a fingerprint, as operators write it in the
 * policy file (`match=3A:...:9F`).  Pure: no I/O, no allocation, no GnuTLS.
 */
#include <string.h>

#include "fpr.h"

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int refuse(struct fpr_digest *out, struct rl_why *why, const char *reason, size_t off)
{
	memset(out, 0, sizeof(*out));
	return rl_fail(why, RL_EPARSE, reason, off);
}

/*
 * Straight-line: every byte is two hex digits, and every byte but the last
 * is followed by one colon.  Accepting missing colons or single digits
 * would make "A:B" and "0A0B" ambiguous, and an ambiguous pin is a pin the
 * operator did not mean.
 */
int fpr_parse(const char *s, size_t len, struct fpr_digest *out, struct rl_why *why)
{
	size_t pos = 0, n = 0;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return refuse(out, why, "empty fingerprint", 0);
	for (;;) {
		int hi, lo;

		if (n == FPR_MAX_LEN)
			return refuse(out, why, "fingerprint longer than 32 bytes", pos);
		if (len - pos < 2)
			return refuse(out, why, "expected two hex digits", pos);
		hi = hex_value(s[pos]);
		lo = hex_value(s[pos + 1]);
		if (hi < 0)
			return refuse(out, why, "expected a hex digit", pos);
		if (lo < 0)
			return refuse(out, why, "expected a hex digit", pos + 1);
		out->bytes[n++] = (unsigned char)(hi << 4 | lo);
		pos += 2;
		if (pos == len)
			break;
		if (s[pos] != ':')
			return refuse(out, why, "expected a colon between bytes", pos);
		pos++;
	}
	if (n != FPR_SHA1_LEN && n != FPR_SHA256_LEN)
		return refuse(out, why, "fingerprint must be 20 (SHA-1) or 32 (SHA-256) bytes", 0);
	out->len = n;
	return 0;
}

void fpr_format(const struct fpr_digest *d, char *out, size_t osize)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t pos = 0;

	RL_REQUIRE(d->len >= 1 && d->len <= FPR_MAX_LEN);
	RL_REQUIRE(osize >= d->len * 3);
	for (size_t i = 0; i < d->len; i++) {
		if (i > 0)
			out[pos++] = ':';
		out[pos++] = hex[d->bytes[i] >> 4];
		out[pos++] = hex[d->bytes[i] & 0x0f];
	}
	out[pos] = '\0';
}
