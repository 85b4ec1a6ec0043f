/*
 * auth_sasl: the pure SASL codec of SMTP AUTH (RFC 4954), PLAIN (RFC 4616)
 * and LOGIN (draft-murchison-sasl-login).  Input is what a client sent;
 * outputs are slices of it or octets in the caller's buffer.
 */
#include <errno.h>
#include <string.h>

#include "auth.h"

static int ascii_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char x = a[i], y = b[i];

		if (x >= 'a' && x <= 'z')
			x = (char)(x - 'a' + 'A');
		if (x != y)
			return 0;
	}
	return 1;
}

int auth_cmd_parse(const char *arg, size_t len, struct auth_cmd *out, struct rl_why *why)
{
	const char *sp = memchr(arg, ' ', len);
	size_t mlen = sp ? (size_t)(sp - arg) : len;

	memset(out, 0, sizeof(*out));
	if (mlen == 0)
		return rl_fail(why, RL_EPARSE, "mechanism name expected", 0);
	if (mlen == 5 && ascii_ieq(arg, "PLAIN", 5))
		out->mech = AUTH_MECH_PLAIN;
	else if (mlen == 5 && ascii_ieq(arg, "LOGIN", 5))
		out->mech = AUTH_MECH_LOGIN;
	else
		return rl_fail(why, -ENOTSUP, "unsupported mechanism", 0);
	if (!sp)
		return 0;
	/* One space, then the response: nothing before, nothing after it. */
	out->resp = sp + 1;
	out->resplen = len - mlen - 1;
	if (out->resplen == 0 || memchr(out->resp, ' ', out->resplen))
		return rl_fail(why, RL_EPARSE, "one initial response expected", mlen + 1);
	out->has_resp = 1;
	return 0;
}

/* The value of a base64 character (RFC 4648 table 1), or -1. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* One group of four characters: 1..3 octets out, or -1. */
static int b64_group(const char *g, int last, unsigned char o[3])
{
	int v[4], pad = 0;

	for (int i = 0; i < 4; i++) {
		if (g[i] == '=' && last && i >= 2 && (i == 3 || g[3] == '=')) {
			v[i] = 0;
			pad++;
			continue;
		}
		v[i] = b64_value((unsigned char)g[i]);
		if (v[i] < 0)
			return -1;
	}
	/* The bits a padded group leaves unused must be zero (canonical form). */
	if ((pad == 2 && (v[1] & 0x0f)) || (pad == 1 && (v[2] & 0x03)))
		return -1;
	o[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
	o[1] = (unsigned char)((v[1] & 0x0f) << 4 | v[2] >> 2);
	o[2] = (unsigned char)((v[2] & 0x03) << 6 | v[3]);
	return 3 - pad;
}

int auth_b64_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
	size_t k = 0;

	*outlen = 0;
	/* RFC 4954 section 4: "=" is an initial response of zero length. */
	if (n == 1 && in[0] == '=')
		return 0;
	if (n == 0 || n % 4 != 0)
		return RL_EPARSE;
	for (size_t i = 0; i < n; i += 4) {
		unsigned char o[3];
		int got = b64_group(in + i, i + 4 == n, o);

		if (got < 0) {
			rl_wipe(o, sizeof(o));
			return RL_EPARSE;
		}
		if (k + (size_t)got > cap) {
			rl_wipe(o, sizeof(o));
			return RL_ETOOBIG;
		}
		memcpy(out + k, o, (size_t)got);
		rl_wipe(o, sizeof(o));
		k += (size_t)got;
	}
	*outlen = k;
	return 0;
}

int auth_plain_parse(const unsigned char *buf, size_t n, struct auth_plain *out, struct rl_why *why)
{
	const unsigned char *z1 = memchr(buf, '\0', n), *z2;

	memset(out, 0, sizeof(*out));
	if (!z1)
		return rl_fail(why, RL_EPARSE, "no NUL after the authorization identity", 0);
	z2 = memchr(z1 + 1, '\0', n - (size_t)(z1 + 1 - buf));
	if (!z2)
		return rl_fail(why, RL_EPARSE, "no NUL after the user name", (size_t)(z1 - buf));
	if (memchr(z2 + 1, '\0', n - (size_t)(z2 + 1 - buf)))
		return rl_fail(why, RL_EPARSE, "NUL in the password", (size_t)(z2 - buf));
	out->authzid = (const char *)buf;
	out->authzidlen = (size_t)(z1 - buf);
	out->user = (const char *)z1 + 1;
	out->userlen = (size_t)(z2 - z1 - 1);
	out->pass = (const char *)z2 + 1;
	out->passlen = n - (size_t)(z2 + 1 - buf);
	if (out->userlen == 0 || out->userlen > AUTH_USER_MAX)
		return rl_fail(why, RL_EPARSE, "bad user name length", (size_t)(z1 - buf) + 1);
	/* We act for no one else: an authzid must name the user itself. */
	if (out->authzidlen &&
	    (out->authzidlen != out->userlen || memcmp(out->authzid, out->user, out->userlen)))
		return rl_fail(why, RL_EPARSE, "authorization identity differs from the user", 0);
	return 0;
}
