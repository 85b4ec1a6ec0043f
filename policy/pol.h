/*
 * pol: TLS security levels and (later) the per-domain policy table.
 *
 * Levels are ordered by the protection they demand; the predicates below
 * are the only place that encodes what each level means.  Each level name
 * has exactly one entry in the table of pol_level.c.  This module does no
 * I/O and no logging.
 */
#ifndef POL_H
#define POL_H

#include "rl.h"

enum pol_level {
	POL_LEVEL_NONE = 0,
	POL_LEVEL_MAY,
	POL_LEVEL_ENCRYPT,
	POL_LEVEL_DANE,
	POL_LEVEL_DANE_ONLY,
	POL_LEVEL_FINGERPRINT,
	POL_LEVEL_VERIFY,
	POL_LEVEL_SECURE,
	POL_LEVEL_COUNT
};

/* "encrypt" -> POL_LEVEL_ENCRYPT; -1 if the name is not a level. */
int pol_level_from_name(const char *name, size_t len);
/* POL_LEVEL_ENCRYPT -> "encrypt". */
const char *pol_level_name(int level);

/* Must the session be encrypted (no cleartext fallback)? */
int pol_level_requires_tls(int level);
/* Must the peer be authenticated (certificate, key or TLSA match)? */
int pol_level_requires_auth(int level);

#endif
