/*
 * pol: TLS security levels, protocol lists and the per-domain policy table
 * (INTERFACE.md, "TLS policy file").
 *
 * Levels are ordered by the protection they demand; the predicates below
 * are the only place that encodes what each level means.  Each level name
 * has exactly one entry in the table of pol_level.c.
 *
 * The policy table is the text form of Postfix smtp_tls_policy_maps, parsed
 * by pol_table_parse() (pol_parse.c) from bytes the caller read; lookups
 * (pol_table.c) follow Postfix: an exact entry wins, else the closest
 * ".parent" entry.  A table is immutable once built, so one table may be
 * read from any number of threads; the relay swaps tables on reload.
 *
 * This module does no I/O and no logging: parse errors and warnings come
 * back as "FILE:LINE: message" strings in struct pol_errors for the
 * caller to print or log.  Errors: RL_EPARSE (invalid input), RL_ETOOBIG (a cap
 * below was exceeded), -ENOMEM.
 *
 * The decision on a peer's certificate chain under a level is in pol_peer.h.
 *
 * Ownership: arguments are borrowed; a table owns its entries and every
 * string and array in them until pol_table_free().
 */
#ifndef POL_H
#define POL_H

#include <stddef.h>

#include "fpr.h"
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

/*
 * Protocol versions, as bits.  Equal in value to CFG_TLS1_0..3 of the
 * relay's configuration, which uses this parser for tls_protocols.
 */
#define POL_TLS1_0 0x01u
#define POL_TLS1_1 0x02u
#define POL_TLS1_2 0x04u
#define POL_TLS1_3 0x08u
#define POL_TLS_ALL (POL_TLS1_0 | POL_TLS1_1 | POL_TLS1_2 | POL_TLS1_3)

/*
 * Parse a Postfix protocol list (smtp_tls_protocols syntax): ">=TLSv1.2",
 * "<=TLSv1.3", names (only those) and exclusions ("!TLSv1"), separated by
 * blanks, commas or colons; all forms combine; names compare without
 * regard to case.  SSLv2 and SSLv3 may only be excluded.  s need not be
 * NUL-terminated.  On success *bits holds the POL_TLS* bits left (never
 * 0).  On failure returns RL_EPARSE and fills *why (optional): why->offset
 * is the start of the offending token; pol_protocols_error() words it.
 */
int pol_protocols_parse(const char *s, size_t n, unsigned *bits, struct rl_why *why) RL_WUR;

/*
 * The message for a failure of pol_protocols_parse(s, n) described by why,
 * e.g. 'unknown protocol "TLSv1.4" (expected SSLv2, ...)', into buf.
 */
void pol_protocols_error(const char *s, size_t n, const struct rl_why *why, char *buf,
			 size_t size);

/* "TLSv1.2 TLSv1.3" for bits (lowest first), into buf. */
void pol_protocols_names(unsigned bits, char *buf, size_t size);

/* Caps of the policy file. */
#define POL_FILE_MAX (16 * 1024 * 1024) /* bytes of a policy file */
#define POL_LINE_MAX 4096		/* bytes of one physical line */
#define POL_ENTRIES_MAX 100000		/* entries of one table */
#define POL_TOKENS_MAX 128		/* domain, level and attributes of an entry */
#define POL_MATCH_MAX 64		/* digests or names of an entry's match= */
#define POL_ERRORS_MAX 64		/* errors kept by one parse */
#define POL_WARNINGS_MAX 64		/* warnings kept by one parse */
#define POL_ERROR_SIZE 320		/* bytes of one "FILE:LINE: message" */

/* ciphers= (Postfix grades we accept; low, export and null are refused). */
enum pol_grade {
	POL_GRADE_DEFAULT = 0, /* not set: tls_priority as configured */
	POL_GRADE_HIGH,	       /* the default already is: adds nothing */
	POL_GRADE_MEDIUM,      /* also AES-CBC with SHA-1/SHA-2 MACs and RSA key exchange */
};

/*
 * One policy entry.  Strings are NUL-terminated and owned by the table.
 */
struct pol_entry {
	char *domain;	      /* "example.com" or ".example.com"; lower case, no trailing dot */
	int level;	      /* enum pol_level */
	unsigned line;	      /* line of the domain in the file (1-based) */
	struct fpr_digest *digests; /* fingerprint: the match= digests */
	size_t ndigests;	    /* >= 1 for fingerprint, else 0 */
	/*
	 * verify/secure: the match= tokens, each "hostname", "nexthop",
	 * "dot-nexthop" (keywords, lower case), a name, or ".name" (its
	 * subdomains).  Without match= the Postfix defaults are filled in
	 * and match_default is 1.  Empty (0) at other levels.
	 */
	char **match;
	size_t nmatch;
	int match_default;
	unsigned protocols;	/* POL_TLS* bits, 0 = not set (use tls_protocols) */
	char *protocols_text;	/* protocols= as written, NULL if not set */
	int grade;		/* enum pol_grade */
	char *exclude_text;	/* exclude= as written, NULL if not set */
	/*
	 * GnuTLS priority tokens that ciphers= and exclude= add to the
	 * configured tls_priority: "" or ":+TOKEN:-TOKEN..." (never NULL).
	 */
	char *priority_suffix;
	char *servername;	/* SNI: a host name, "hostname" or "nexthop"; NULL if not set */
	char *tafile;		/* verify/secure: trust anchor file; NULL if not set */
};

/*
 * One message of a parse; line 0 is about the whole file.  msg is what a
 * command prints; a log that marks warnings itself prints the first
 * prefix bytes ("FILE:LINE: ") and then msg + text, the message proper.
 */
struct pol_msg {
	unsigned line;
	unsigned prefix;	  /* length of "FILE:LINE: " */
	unsigned text;		  /* offset of the words after "FILE:LINE: [warning: ]" */
	char msg[POL_ERROR_SIZE]; /* "FILE:LINE: message" or "FILE:LINE: warning: message" */
};

/*
 * The messages of one parse, each list in line order.  Errors make the
 * file invalid.  Warnings do not: they name entries that are parsed and
 * checked but never apply ("[host]" and "[host]:port" keys), as
 * "FILE:LINE: warning: message".
 */
struct pol_errors {
	size_t count; /* errors kept in e[] (at most POL_ERRORS_MAX) */
	size_t total; /* errors found, count of them kept */
	struct pol_msg e[POL_ERRORS_MAX];
	size_t nwarn;  /* warnings kept in w[] (at most POL_WARNINGS_MAX) */
	size_t wtotal; /* warnings found, nwarn of them kept */
	struct pol_msg w[POL_WARNINGS_MAX];
};

/*
 * The kept messages of errs, errors and warnings merged in line order:
 * start with *ie = *iw = 0 and call until NULL; *warning says which kind
 * each message is.  Valid while errs is.
 */
const struct pol_msg *pol_errors_next(const struct pol_errors *errs, size_t *ie, size_t *iw,
				      int *warning);

struct pol_table;

/*
 * Parse a policy file's text (len bytes; need not be NUL-terminated).
 * path names the file in messages only.  On success returns 0 and sets
 * *out to a new table (empty for an empty file); free it with
 * pol_table_free().  On failure returns RL_EPARSE (or RL_ETOOBIG,
 * -ENOMEM), sets *out to NULL and fills errs (optional) with every error
 * found, up to POL_ERRORS_MAX: a file with any error yields no table.
 * Either way errs also gets the warnings (up to POL_WARNINGS_MAX).
 *
 * Keys "[host]" and "[host]:port" (Postfix: the policy of an explicit
 * next hop, a transport or relayhost that suppresses MX lookups) are
 * checked like any entry, but the relay never delivers to an explicit
 * next hop, only to the recipient domain's MX hosts: such an entry is
 * left out of the table (it applies to no domain, and is no duplicate of
 * the key "host") and is named in a warning.
 * Pure: no I/O, no logging, no globals.
 */
int pol_table_parse(const char *path, const char *text, size_t len, struct pol_table **out,
		    struct pol_errors *errs) RL_WUR;

void pol_table_free(struct pol_table *t);

/* Number of entries. */
size_t pol_table_count(const struct pol_table *t);

/* Entry i (0 <= i < count), in key order; valid until pol_table_free(). */
const struct pol_entry *pol_table_entry(const struct pol_table *t, size_t i);

/*
 * The entry that applies to domain (a next-hop domain, any case, with or
 * without a trailing dot): the exact entry, else the closest ".parent"
 * entry (for a.b.example.com: .b.example.com, then .example.com, then
 * .com), else NULL.  ".example.com" never applies to example.com itself.
 * Valid until pol_table_free().
 */
const struct pol_entry *pol_table_lookup(const struct pol_table *t, const char *domain);

/*
 * Do two entries say the same thing?  Compares the key and every setting,
 * not the line number, so moving an entry in the file is no change.
 */
int pol_entry_equal(const struct pol_entry *a, const struct pol_entry *b);

/* The index of entry e (from a lookup) in t: 0 <= index < count. */
size_t pol_table_index(const struct pol_table *t, const struct pol_entry *e);

/*
 * Call fn(key, arg) once for each key whose entry differs between a and b
 * (added, removed or changed; either table may be NULL for "no entries").
 * Stops at the first nonzero return of fn and returns it; else 0.
 */
int pol_table_diff(const struct pol_table *a, const struct pol_table *b,
		   int (*fn)(const char *key, void *arg), void *arg);

/*
 * Could the entry of key ("example.com" or ".example.com") apply to mail
 * for domain?  Exact keys match the domain alone (any case, trailing dot
 * ignored), dot keys its subdomains only.
 */
int pol_key_applies(const char *key, const char *domain);

/*
 * The Postfix default match= rules of a level: {"hostname"} for verify,
 * {"nexthop", "dot-nexthop"} for secure; *n = 0 (NULL) for other levels.
 * Static storage.
 */
const char *const *pol_match_defaults(int level, size_t *n);

/*
 * The GnuTLS priority string in force: base (tls_priority), then
 * ":-VERS-ALL" and "+VERS-TLS1.x" for each bit of protocols (highest
 * first), then suffix (an entry's priority_suffix, or NULL).  Appended to
 * out; RL_ETOOBIG or -ENOMEM on failure.
 */
int pol_priority_build(const char *base, unsigned protocols, const char *suffix,
		       struct rl_buf *out) RL_WUR;

#endif
