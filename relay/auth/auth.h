/*
 * auth: SMTP AUTH (RFC 4954) for the listener, without the session.
 *
 * - The password file (auth_parse.c, pure): `user:hash` lines, `#`
 *   comments and blank lines; the hash is crypt(3) output of libxcrypt,
 *   yescrypt (`$y$`) or SHA-512 (`$6$`) only.  Anything else (MD5, SHA-256,
 *   bcrypt, DES, a locked `!`/`*` entry, an empty hash) is refused at load
 *   with the line, as is a duplicate user.  auth_db_load() reads the file.
 * - The SASL codec (auth_sasl.c, pure): the AUTH command's arguments, a
 *   strict base64 decoder, the PLAIN message (RFC 4616).
 * - The check (auth_verify.c): crypt_rn() and a constant-time compare.  It
 *   is slow on purpose (that is the hash's job): run it off the loop.
 * - The failure table (auth_throttle.c): failed AUTH attempts and checks in
 *   flight per client (IPv4 address or IPv6 /64) within the last minute, in
 *   a table of fixed size, and the failures of all clients together.
 *
 * Ownership: every function borrows its arguments; a struct auth_db and a
 * struct auth_throttle belong to whoever made them.  auth_verify() is safe
 * on any thread (it keeps no state); the rest is for one thread at a time.
 * Errors are negative codes (rl.h) with struct rl_why where input is parsed.
 */
#ifndef AUTH_H
#define AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "rl.h"

#define AUTH_USER_MAX  255		  /* octets of a user name (authcid) */
#define AUTH_PASS_MAX  1024		  /* octets of a password; longer never matches */
#define AUTH_HASH_MAX  512		  /* octets of a stored hash */
#define AUTH_LINE_MAX  12288		  /* AUTH command and response lines, RFC 4954 section 4 */
#define AUTH_FILE_MAX  (8u * 1024 * 1024) /* bytes of a password file */
#define AUTH_USERS_MAX 100000		  /* entries of a password file */

/* --- the password file ---------------------------------------------------- */

struct auth_db;

/*
 * Parse a password file's text.  On success *out is a new table (free it
 * with auth_db_free()).  On failure returns RL_EPARSE (or -ENOMEM,
 * RL_ETOOBIG) with *out NULL, *line the 1-based line at fault (0: none)
 * and why->reason a static message.  A duplicate user is reported on its
 * second line.  No I/O; allocation is bounded by AUTH_USERS_MAX entries.
 */
int auth_db_parse(const char *text, size_t len, struct auth_db **out, unsigned *line,
		  struct rl_why *why) RL_WUR;
/* auth_db_free(NULL) is a no-op. */
void auth_db_free(struct auth_db *db);
size_t auth_db_count(const struct auth_db *db);
/*
 * The stored hash of user (n octets, compared exactly), or NULL.  Valid
 * until auth_db_free(db).
 */
const char *auth_db_hash(const struct auth_db *db, const char *user, size_t n);
/*
 * What to check user's password against, so that the time taken does not
 * tell whether the user exists: the stored hash (*known 1), or for an
 * unknown user (*known 0) the scheme and cost of a real entry (the entry
 * at a hash of the name modulo the count, so one name always gets the same
 * entry) with a made-up salt, made at load.  NULL (with *known 0) for an
 * empty or NULL table.  Valid until auth_db_free(db).
 */
const char *auth_db_setting(const struct auth_db *db, const char *user, size_t n, int *known);

/*
 * Read path (a regular file, at most AUTH_FILE_MAX) and parse it.  On
 * failure err holds one line ready to log: "PATH:LINE: message" or
 * "PATH: message".  *others_read is set when the file is readable by
 * others (mode o+r), for a warning.  Blocking file I/O.
 */
int auth_db_load(const char *path, struct auth_db **out, int *others_read, char *err,
		 size_t errsize) RL_WUR;

/* --- the SASL codec ---------------------------------------------------- */

enum auth_mech { AUTH_MECH_PLAIN = 1, AUTH_MECH_LOGIN = 2 };

struct auth_cmd {
	int mech;	  /* enum auth_mech */
	int has_resp;	  /* an initial response was given */
	const char *resp; /* base64 text, a slice of the input ("=": empty) */
	size_t resplen;
};

/*
 * The argument of AUTH: "MECHANISM [initial-response]" (RFC 4954 section
 * 4; the mechanism in any case).  RL_EPARSE for bad syntax, -ENOTSUP for a
 * mechanism other than PLAIN and LOGIN.
 */
int auth_cmd_parse(const char *arg, size_t len, struct auth_cmd *out, struct rl_why *why) RL_WUR;

/*
 * Strict base64 (RFC 4648 section 4): padding required, no blanks, no
 * other characters, no non-zero pad bits; "=" alone decodes to nothing
 * (RFC 4954's empty response).  Writes at most cap octets to out.
 * RL_EPARSE on bad input, RL_ETOOBIG when out is too small.
 */
int auth_b64_decode(const char *in, size_t n, unsigned char *out, size_t cap,
		    size_t *outlen) RL_WUR;

/* RFC 4616's message: [authzid] NUL authcid NUL passwd, slices of the input. */
struct auth_plain {
	const char *authzid, *user, *pass;
	size_t authzidlen, userlen, passlen;
};

/*
 * Split a decoded PLAIN response.  RL_EPARSE unless there are exactly two
 * NULs, the user name is 1..AUTH_USER_MAX octets, the authzid is empty or
 * equal to the user name (no proxy authorization).
 */
int auth_plain_parse(const unsigned char *buf, size_t n, struct auth_plain *out,
		     struct rl_why *why) RL_WUR;

/* --- the check --------------------------------------------------------- */

/*
 * Does pass (n octets) match hash (a stored `$y$` or `$6$` string)?  1 yes,
 * 0 no.  For an unknown user pass the setting auth_db_setting() gave and
 * ignore the answer (it costs what a real entry costs); hash NULL (an empty
 * table) computes a built-in yescrypt setting and answers 0.  Its own buffers are
 * wiped before it returns.  Blocking and slow: a worker thread's job.
 */
int auth_verify(const char *pass, size_t n, const char *hash);

/* --- failures per client -------------------------------------------- */

#define AUTH_THROTTLE_WINDOW_MS 60000 /* failures count for a minute */

/*
 * Whose failures count together: an IPv4 address, or the /64 of an IPv6
 * address (an IPv4-mapped IPv6 address is its IPv4 address); family 0 for
 * anything else.
 */
struct auth_key {
	int family; /* 4, 6 or 0 */
	unsigned char b[8];
};

struct sockaddr;

/* The key of a client address (sockaddr_in or sockaddr_in6; NULL: family 0). */
void auth_key_of(const struct sockaddr *sa, struct auth_key *k);
int auth_key_eq(const struct auth_key *a, const struct auth_key *b);
/* "192.0.2.1", "2001:db8:1:2::/64" or "unknown", for logs. */
void auth_key_text(const struct auth_key *k, char *out, size_t size);

struct auth_throttle;

/*
 * A table of at most cap keys.  When it is full the key whose last failure
 * is oldest makes room, but never a key with a check in flight.
 */
int auth_throttle_new(size_t cap, struct auth_throttle **out) RL_WUR;
void auth_throttle_free(struct auth_throttle *t);
/* Failures of k within the window before now_ms (0 when unknown). */
unsigned auth_throttle_count(struct auth_throttle *t, const struct auth_key *k, uint64_t now_ms);
/* Checks of k begun and not yet ended. */
unsigned auth_throttle_pending(struct auth_throttle *t, const struct auth_key *k);
/*
 * A check of k begins (its pending count goes up).  -ENOSPC when the table
 * has no room (every slot has a check in flight).  Every begin is paired
 * with one auth_throttle_end().
 */
int auth_throttle_begin(struct auth_throttle *t, const struct auth_key *k, uint64_t now_ms) RL_WUR;
/*
 * The check ends: pending goes down and, when failed, one failure of k at
 * now_ms is counted (also in the total).  Returns k's failures in the window.
 */
unsigned auth_throttle_end(struct auth_throttle *t, const struct auth_key *k, uint64_t now_ms,
			   int failed);
/* Failures of all keys within the window before now_ms (by whole seconds). */
unsigned auth_throttle_total(const struct auth_throttle *t, uint64_t now_ms);

#endif
