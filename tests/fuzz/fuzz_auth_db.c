/* Fuzz the SMTP AUTH password file parser; every name it accepts is found again. */
#include <stdint.h>
#include <string.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct auth_db *db = NULL;
	struct rl_why why = {0, NULL, 0};
	unsigned line = 0;
	int rc = auth_db_parse(p, size, &db, &line, &why);

	RL_REQUIRE((rc == 0) == (db != NULL));
	if (rc < 0) {
		RL_REQUIRE(why.reason != NULL);
		return 0;
	}
	RL_REQUIRE(line == 0);
	/* Each entry line's name maps to its own hash. */
	for (size_t pos = 0; pos < size;) {
		const char *nl = memchr(p + pos, '\n', size - pos);
		size_t n = nl ? (size_t)(nl - (p + pos)) : size - pos;
		const char *colon = memchr(p + pos, ':', n);

		if (n && p[pos] != '#' && colon) {
			const char *h = auth_db_hash(db, p + pos, (size_t)(colon - (p + pos)));
			size_t hl = n - (size_t)(colon - (p + pos)) - 1;

			if (hl && colon[hl] == '\r')
				hl--;
			RL_REQUIRE(h && strlen(h) == hl && memcmp(h, colon + 1, hl) == 0);
			RL_REQUIRE(h[0] == '$' && (h[1] == 'y' || h[1] == '6') && h[2] == '$');
			/* A name one longer is unknown: a made-up setting of the same scheme. */
			{
				char other[AUTH_USER_MAX + 2];
				size_t ul = (size_t)(colon - (p + pos));
				const char *d;
				int known = 1;

				memcpy(other, p + pos, ul);
				other[ul] = '!';
				d = auth_db_setting(db, other, ul + 1, &known);
				RL_REQUIRE(ul + 1 > AUTH_USER_MAX ||
					   auth_db_hash(db, other, ul + 1) ||
					   (known == 0 && d && d[0] == '$' && d[2] == '$' &&
					    strlen(d) < AUTH_HASH_MAX));
			}
		}
		pos += n + 1;
	}
	auth_db_free(db);
	return 0;
}
