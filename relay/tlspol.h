/*
 * tlspol: the TLS policy in force, ready for sessions.
 *
 * A struct tlspol is one loaded policy file: the parsed table plus what
 * each entry needs at connection time and is costly or fallible to make,
 * made once at load: the GnuTLS priority of entries with protocols=,
 * ciphers= or exclude=, and the trust list of entries with tafile=.  A
 * priority GnuTLS refuses or a tafile that cannot be read makes the whole
 * file invalid, with "FILE:LINE: message", exactly like a syntax error: a
 * policy is never half-loaded.
 *
 * Snapshots are reference-counted: the daemon holds the current one, and
 * each outbound session holds the one it started under, so a reload never
 * pulls data from under a session.  Loop thread only (the counts are not
 * atomic).
 */
#ifndef TLSPOL_H
#define TLSPOL_H

#include <stddef.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "cert.h"
#include "cfg.h"
#include "pol.h"
#include "rl.h"
#include "smtpc.h"

struct tlspol;

/*
 * Read, parse and prepare the policy file at path, under the outbound
 * settings of c (tls_priority, tls_protocols).  A missing file is a policy
 * with no entries (*missing = 1 when given).  On failure returns < 0, sets
 * *out to NULL and fills errs with "FILE:LINE: message" lines (line 0 for
 * the whole file, e.g. "cannot read").  *out starts with one reference.
 */
int tlspol_load(const char *path, const struct cfg *c, struct tlspol **out,
		struct pol_errors *errs, int *missing) RL_WUR;

/*
 * Read a policy file into b, whose limit should be POL_FILE_MAX + 1: a
 * longer file is cut there, which is enough for the parser to refuse it.
 * -ENOENT when the file does not exist (no entries, as in Postfix).
 */
int tlspol_read_file(const char *path, struct rl_buf *b) RL_WUR;

struct tlspol *tlspol_ref(struct tlspol *p);
/* Drop a reference; the last one frees.  tlspol_unref(NULL) is a no-op. */
void tlspol_unref(struct tlspol *p);

/* The table (never NULL; possibly empty); valid while a reference is held. */
const struct pol_table *tlspol_table(const struct tlspol *p);

/* The prepared priority of entry e, or NULL for the shared default. */
gnutls_priority_t tlspol_priority(const struct tlspol *p, const struct pol_entry *e);

/*
 * What one outbound session uses, resolved from an entry (or defaults)
 * for one next-hop domain and MX host.  pol points into the struct and
 * into the snapshot it was resolved from: keep both alive together.
 */
#define TLSPOL_NAMES_MAX POL_MATCH_MAX
struct tlspol_sess {
	struct smtpc_policy pol;
	const struct pol_entry *entry; /* NULL: no entry, default_tls_level */
	struct cert_pattern names[TLSPOL_NAMES_MAX];
	char servername[CERT_NAME_MAX + 1];
};

/*
 * Resolve the session policy for mail to domain through MX host.  p may be
 * NULL (no policy file loaded: defaults only).  default_level is
 * default_tls_level; trust the anchors of tls_ca_file (or NULL when there
 * are none: verify/secure then fail closed).  Returns 0, or -1 with a
 * reason for the recipients (a match name that cannot be used).
 */
int tlspol_resolve(const struct tlspol *p, const char *domain, const char *host,
		   int default_level, gnutls_x509_trust_list_t trust, struct tlspol_sess *out,
		   char *reason, size_t rsize);

/*
 * The GnuTLS priority string for base settings of c with protocols bits
 * (0: tls_protocols) and an entry's suffix (NULL: none), into out.
 */
int tlspol_priority_text(const struct cfg *c, unsigned protocols, const char *suffix,
			 struct rl_buf *out) RL_WUR;

#endif
