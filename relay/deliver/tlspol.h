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
 * Entries naming the same tafile share one trust list, read once per load.
 * The policy file and tafiles must be regular files: a FIFO or device is
 * refused ("FILE: not a regular file (a FIFO)"), never opened blocking.
 *
 * Snapshots are reference-counted: the daemon holds the current one, and
 * each outbound session holds the one it started under, so a reload never
 * pulls data from under a session.  Loop thread only (the counts are not
 * atomic), except tlspol_load*(), which touch nothing shared and run on a
 * worker thread for the daemon's reloads (struct tlspol_reload below).
 */
#ifndef TLSPOL_H
#define TLSPOL_H

#include <stddef.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <uv.h>

#include "cert.h"
#include "cfg.h"
#include "pol.h"
#include "pol_peer.h"
#include "rl.h"

struct tlspol;

/*
 * Read, parse and prepare the policy file at path, under the outbound
 * settings of c (tls_priority, tls_protocols).  A missing file is a policy
 * with no entries (*missing = 1 when given).  On failure returns < 0, sets
 * *out to NULL and fills errs with "FILE:LINE: message" lines (line 0 for
 * the whole file, e.g. "cannot read").  Either way errs holds the parse's
 * warnings (pol_table_parse()).  *out starts with one reference.
 */
int tlspol_load(const char *path, const struct cfg *c, struct tlspol **out,
		struct pol_errors *errs, int *missing) RL_WUR;

/* The outbound settings a load depends on (borrowed for the call). */
struct tlspol_base {
	const char *tls_priority;
	unsigned tls_protocols;
};

/* tlspol_load() with the settings given apart from a struct cfg. */
int tlspol_load_base(const char *path, const struct tlspol_base *base, struct tlspol **out,
		     struct pol_errors *errs, int *missing) RL_WUR;

/*
 * Read a policy file into b (rl_buf_read_file(), so only a regular file),
 * whose limit should be POL_FILE_MAX + 1: a longer file is cut there, which
 * is enough for the parser to refuse it.  -ENOENT when the file does not
 * exist (no entries, as in Postfix); RL_ECONFIG with why->reason for a file
 * that is not a regular file.
 */
int tlspol_read_file(const char *path, struct rl_buf *b, struct rl_why *why) RL_WUR;

/*
 * Reloads off the loop (tlspol_reload.c).  The daemon's reload reads the
 * policy file and its tafiles and compiles the priorities on a libuv
 * worker thread; done() then runs on the loop thread with the result.
 * A reload asked for while one runs is coalesced: one more load runs when
 * the current one ends, with the latest path and settings, and only its
 * result is handed over.
 */
struct tlspol_reload;

struct tlspol_reload_result {
	int rc;                  /* 0, or < 0: errs says why */
	struct tlspol *pol;      /* on success; adopted by done() */
	int missing;             /* the file does not exist: no entries */
	const char *why;         /* the why given to the start that won */
	const char *path;        /* the file read */
	const struct pol_errors *errs;
};

typedef void (*tlspol_reload_done)(void *arg, const struct tlspol_reload_result *r);

/* A reloader on loop; done(arg, ...) is called once per finished reload. */
struct tlspol_reload *tlspol_reload_new(uv_loop_t *loop, tlspol_reload_done done, void *arg);

/*
 * Start a reload of path under the settings of c (both copied), or
 * coalesce with the one running.  why is a static string for the log.
 */
int tlspol_reload_start(struct tlspol_reload *r, const char *path, const struct cfg *c,
			const char *why) RL_WUR;

/* Free; a reload still running is abandoned (freed when it ends, no done()). */
void tlspol_reload_free(struct tlspol_reload *r);

struct tlspol *tlspol_ref(struct tlspol *p);
/* Drop a reference; the last one frees.  tlspol_unref(NULL) is a no-op. */
void tlspol_unref(struct tlspol *p);

/* The table (never NULL; possibly empty); valid while a reference is held. */
const struct pol_table *tlspol_table(const struct tlspol *p);

/* The prepared priority of entry e, or NULL for the shared default. */
gnutls_priority_t tlspol_priority(const struct tlspol *p, const struct pol_entry *e);

/*
 * Resolve the session policy for mail to domain through MX host: the
 * entry in force (pol_table_lookup) with what this snapshot prepared for
 * it (priority, tafile= anchors), decided by pol_peer_resolve().  p may be
 * NULL (no policy file loaded: defaults only).  default_level is
 * default_tls_level; trust the anchors of tls_ca_file (or NULL when there
 * are none: verify/secure then fail closed).  out points into p: keep a
 * reference while it is used.  Returns 0, or -1 with a reason for the
 * recipients (a match name that cannot be used).
 */
int tlspol_resolve(const struct tlspol *p, const char *domain, const char *host,
		   int default_level, gnutls_x509_trust_list_t trust, struct pol_peer_sess *out,
		   char *reason, size_t rsize);

/*
 * The GnuTLS priority string for base settings of c with protocols bits
 * (0: tls_protocols) and an entry's suffix (NULL: none), into out.
 */
int tlspol_priority_text(const struct cfg *c, unsigned protocols, const char *suffix,
			 struct rl_buf *out) RL_WUR;

#endif
