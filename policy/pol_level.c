/*
 * pol_level: the one table of TLS level names and their meaning.
 */
#include <string.h>

#include "pol.h"

static const struct {
	const char *name;
	int requires_tls;
	int requires_auth;
} pol_levels[POL_LEVEL_COUNT] = {
	[POL_LEVEL_NONE] = { "none", 0, 0 },
	[POL_LEVEL_MAY] = { "may", 0, 0 },
	[POL_LEVEL_ENCRYPT] = { "encrypt", 1, 0 },
	/* dane falls back to encrypt, never to cleartext (INTERFACE.md). */
	[POL_LEVEL_DANE] = { "dane", 1, 0 },
	[POL_LEVEL_DANE_ONLY] = { "dane-only", 1, 1 },
	[POL_LEVEL_FINGERPRINT] = { "fingerprint", 1, 1 },
	[POL_LEVEL_VERIFY] = { "verify", 1, 1 },
	[POL_LEVEL_SECURE] = { "secure", 1, 1 },
};

int pol_level_from_name(const char *name, size_t len)
{
	for (int i = 0; i < POL_LEVEL_COUNT; i++) {
		if (strlen(pol_levels[i].name) == len &&
		    memcmp(pol_levels[i].name, name, len) == 0)
			return i;
	}
	return -1;
}

const char *pol_level_name(int level)
{
	RL_REQUIRE(level >= 0 && level < POL_LEVEL_COUNT);
	return pol_levels[level].name;
}

int pol_level_requires_tls(int level)
{
	RL_REQUIRE(level >= 0 && level < POL_LEVEL_COUNT);
	return pol_levels[level].requires_tls;
}

int pol_level_requires_auth(int level)
{
	RL_REQUIRE(level >= 0 && level < POL_LEVEL_COUNT);
	return pol_levels[level].requires_auth;
}
