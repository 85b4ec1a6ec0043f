/*
 * Fuzz the SMTP AUTH codec as the listener uses it: the AUTH argument,
 * the base64 of a response, and the PLAIN message inside it.
 */
#include <stdint.h>
#include <string.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char out[AUTH_LINE_MAX / 4 * 3];

static void check_plain(const unsigned char *b, size_t n)
{
	struct auth_plain pl;

	if (auth_plain_parse(b, n, &pl, NULL) < 0)
		return;
	RL_REQUIRE(pl.userlen > 0 && pl.userlen <= AUTH_USER_MAX);
	RL_REQUIRE(pl.authzidlen + 1 + pl.userlen + 1 + pl.passlen == n);
	RL_REQUIRE(!memchr(pl.user, '\0', pl.userlen) && !memchr(pl.pass, '\0', pl.passlen));
	RL_REQUIRE(pl.authzidlen == 0 ||
		   (pl.authzidlen == pl.userlen && memcmp(pl.authzid, pl.user, pl.userlen) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct auth_cmd c;
	size_t n = 0;

	if (auth_cmd_parse(p, size, &c, NULL) == 0) {
		RL_REQUIRE(c.mech == AUTH_MECH_PLAIN || c.mech == AUTH_MECH_LOGIN);
		if (c.has_resp) {
			RL_REQUIRE(c.resp > p && c.resp + c.resplen == p + size && c.resplen > 0);
			if (auth_b64_decode(c.resp, c.resplen, out, sizeof(out), &n) == 0)
				check_plain(out, n);
		}
	}
	/* The whole input as a response line, and its decoding as PLAIN. */
	if (auth_b64_decode(p, size, out, sizeof(out), &n) == 0) {
		RL_REQUIRE(n <= size / 4 * 3);
		check_plain(out, n);
	}
	check_plain(data, size);
	return 0;
}
