/*
 * auth_parse: the password file of smtpd_sasl_password_file, a pure parser.
 *
 * One entry per line, "user:hash", nothing else on the line (no blanks
 * around the colon: a blank would be part of the name or the hash, which
 * is never what was meant).  Lines whose first character is '#' and empty
 * lines are skipped.  The hash must be the output of crypt(3) with one of
 * the two schemes we accept; every other scheme is refused at load rather
 * than at the first AUTH, so a weak or locked entry can never be in force
 * unnoticed:
 *   yescrypt  $y$PARAMS$SALT$HASH   (libxcrypt's default on Debian 12)
 *   SHA-512   $6$[rounds=N$]SALT$HASH   (SALT 1-16, HASH 86 characters)
 * The table is sorted by name, so a lookup is a binary search and two
 * entries for one name are found (and refused) at load.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

struct auth_entry {
	char *user; /* NUL-terminated; names hold no NUL */
	size_t userlen;
	char *hash;
	char *dummy; /* the hash's setting with a made-up salt (auth_db_setting) */
	unsigned line;
};

struct auth_db {
	struct auth_entry *e;
	size_t n, cap;
};

/* crypt(3)'s alphabet for salts and hashes (not RFC 4648's base64). */
static int is_crypt64(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '/';
}

/* Length of the run of crypt64 characters at s[0..n). */
static size_t crypt64_run(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && is_crypt64((unsigned char)s[i]))
		i++;
	return i;
}

/* "$6$[rounds=N$]SALT$HASH": the layout libxcrypt's SHA-512 crypt writes. */
static int hash_sha512_ok(const char *h, size_t n)
{
	size_t pos = 3, k;

	if (n - pos > 7 && memcmp(h + pos, "rounds=", 7) == 0) {
		pos += 7;
		for (k = 0; pos + k < n && h[pos + k] >= '0' && h[pos + k] <= '9';)
			k++;
		if (k == 0 || k > 9 || pos + k >= n || h[pos + k] != '$')
			return 0;
		pos += k + 1;
	}
	k = crypt64_run(h + pos, n - pos);
	if (k == 0 || k > 16 || pos + k >= n || h[pos + k] != '$')
		return 0;
	pos += k + 1;
	return n - pos == 86 && crypt64_run(h + pos, n - pos) == 86;
}

/* "$y$PARAMS$SALT$HASH": yescrypt as libxcrypt writes it (43-character hash). */
static int hash_yescrypt_ok(const char *h, size_t n)
{
	size_t pos = 3, k;

	for (int field = 0; field < 2; field++) {
		k = crypt64_run(h + pos, n - pos);
		if (k == 0 || pos + k >= n || h[pos + k] != '$')
			return 0;
		pos += k + 1;
	}
	return n - pos == 43 && crypt64_run(h + pos, n - pos) == 43;
}

static int hash_check(const char *h, size_t n, struct rl_why *why)
{
	if (n == 0)
		return rl_fail(why, RL_EPARSE, "empty password hash", 0);
	if (h[0] == '!' || h[0] == '*')
		return rl_fail(why, RL_EPARSE, "locked account (hash starts with ! or *)", 0);
	if (n > AUTH_HASH_MAX)
		return rl_fail(why, RL_EPARSE, "password hash too long", 0);
	if (n >= 3 && memcmp(h, "$6$", 3) == 0)
		return hash_sha512_ok(h, n)
			   ? 0
			   : rl_fail(why, RL_EPARSE, "malformed SHA-512 ($6$) hash", 0);
	if (n >= 3 && memcmp(h, "$y$", 3) == 0)
		return hash_yescrypt_ok(h, n)
			   ? 0
			   : rl_fail(why, RL_EPARSE, "malformed yescrypt ($y$) hash", 0);
	return rl_fail(why, RL_EPARSE,
		       "unsupported password hash scheme (only yescrypt $y$ and SHA-512 $6$)", 0);
}

/*
 * Names: printable ASCII or UTF-8 octets, no blank, no colon.  Also none of
 * ( ) \ ": the name goes into the Received header's comment
 * "(Authenticated sender: NAME)" (RFC 5322 section 3.2.2), where those
 * would end the comment early or quote what follows; refusing them at load
 * is simpler and safer than escaping at every use.
 */
static int user_check(const char *u, size_t n, struct rl_why *why)
{
	if (n == 0)
		return rl_fail(why, RL_EPARSE, "empty user name", 0);
	if (n > AUTH_USER_MAX)
		return rl_fail(why, RL_EPARSE, "user name too long (over 255 octets)", 0);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];

		if (c <= 0x20 || c == 0x7f)
			return rl_fail(why, RL_EPARSE, "blank or control character in user name",
				       i);
		if (c == '(' || c == ')' || c == '\\' || c == '"')
			return rl_fail(why, RL_EPARSE,
				       "( ) \\ or \" in user name (it goes into a header comment)",
				       i);
	}
	return 0;
}

/*
 * The setting a check for an unknown user uses when it lands on this entry:
 * the entry's scheme and cost ("$y$PARAMS$" or "$6$[rounds=N$]") with a
 * salt of '.' (zero bits, so any length crypt accepts for the real salt is
 * accepted here too) as long as the entry's own.  crypt then costs what
 * the entry costs.  h is a hash that hash_check() accepted: it has at
 * least three '$' after its first character, the last two around the salt.
 */
static char *dummy_of(const char *h, size_t n)
{
	size_t last = n, prev;
	char *d;

	while (h[--last] != '$')
		;
	for (prev = last; h[--prev] != '$';)
		;
	d = malloc(last + 1);
	if (!d)
		return NULL;
	memcpy(d, h, prev + 1);
	memset(d + prev + 1, '.', last - prev - 1);
	d[last] = '\0';
	return d;
}

static int db_add(struct auth_db *db, const char *u, size_t ulen, const char *h, size_t hlen,
		  unsigned line)
{
	struct auth_entry *e;

	if (db->n == AUTH_USERS_MAX)
		return RL_ETOOBIG;
	if (db->n == db->cap) {
		size_t cap = db->cap ? db->cap * 2 : 16;

		e = realloc(db->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		db->e = e;
		db->cap = cap;
	}
	e = &db->e[db->n];
	e->user = strndup(u, ulen);
	e->hash = strndup(h, hlen);
	e->dummy = dummy_of(h, hlen);
	e->userlen = ulen;
	e->line = line;
	if (!e->user || !e->hash || !e->dummy) {
		free(e->user);
		free(e->hash);
		free(e->dummy);
		return -ENOMEM;
	}
	db->n++;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct auth_entry *x = a, *y = b;
	int c = strcmp(x->user, y->user);

	if (c)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* One "user:hash" line. */
static int line_parse(struct auth_db *db, const char *s, size_t n, unsigned line,
		      struct rl_why *why)
{
	const char *colon = memchr(s, ':', n);
	size_t ulen;
	int rc;

	if (!colon)
		return rl_fail(why, RL_EPARSE, "expected user:hash", 0);
	ulen = (size_t)(colon - s);
	rc = user_check(s, ulen, why);
	if (rc == 0)
		rc = hash_check(colon + 1, n - ulen - 1, why);
	if (rc < 0)
		return rc;
	rc = db_add(db, s, ulen, colon + 1, n - ulen - 1, line);
	if (rc == RL_ETOOBIG)
		return rl_fail(why, rc, "too many entries (over 100000)", 0);
	if (rc < 0)
		return rl_fail(why, rc, "out of memory", 0);
	return 0;
}

/* After sorting: two entries for one name are an error, named on the later line. */
static int db_dups(const struct auth_db *db, unsigned *line, struct rl_why *why)
{
	unsigned worst = 0;

	for (size_t i = 1; i < db->n; i++)
		if (strcmp(db->e[i - 1].user, db->e[i].user) == 0 &&
		    (worst == 0 || db->e[i].line < worst))
			worst = db->e[i].line;
	if (worst == 0)
		return 0;
	*line = worst;
	return rl_fail(why, RL_EPARSE, "duplicate user (an earlier line has the same name)", 0);
}

int auth_db_parse(const char *text, size_t len, struct auth_db **out, unsigned *line,
		  struct rl_why *why)
{
	struct auth_db *db = calloc(1, sizeof(*db));
	struct rl_lines it;
	const char *s;
	size_t n;
	int rc = 0, more;

	*out = NULL;
	*line = 0;
	if (!db)
		return rl_fail(why, -ENOMEM, "out of memory", 0);
	/* A line holds a name, a colon and a hash: both bounded above. */
	rl_lines_init(&it, text, len, AUTH_USER_MAX + 1 + AUTH_HASH_MAX);
	while (rc == 0 && (more = rl_lines_next(&it, &s, &n, why)) != 0) {
		*line = it.line;
		if (more < 0)
			rc = more;
		else if (n > 0 && s[0] != '#')
			rc = line_parse(db, s, n, it.line, why);
	}
	if (rc == 0) {
		*line = 0;
		if (db->n > 1)
			qsort(db->e, db->n, sizeof(db->e[0]), entry_cmp);
		rc = db_dups(db, line, why);
	}
	if (rc < 0) {
		auth_db_free(db);
		return rc;
	}
	*out = db;
	return 0;
}

void auth_db_free(struct auth_db *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->n; i++) {
		rl_wipe(db->e[i].hash, strlen(db->e[i].hash));
		free(db->e[i].hash);
		free(db->e[i].dummy);
		free(db->e[i].user);
	}
	free(db->e);
	free(db);
}

size_t auth_db_count(const struct auth_db *db)
{
	return db ? db->n : 0;
}

static const struct auth_entry *db_find(const struct auth_db *db, const char *user, size_t n)
{
	size_t lo = 0, hi = db ? db->n : 0;

	/* A name with a NUL in it is in no table (names hold none). */
	if (n == 0 || n > AUTH_USER_MAX || memchr(user, '\0', n))
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct auth_entry *e = &db->e[mid];
		size_t m = e->userlen < n ? e->userlen : n;
		int c = memcmp(e->user, user, m);

		if (c == 0)
			c = e->userlen < n ? -1 : e->userlen > n;
		if (c == 0)
			return e;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *auth_db_hash(const struct auth_db *db, const char *user, size_t n)
{
	const struct auth_entry *e = db_find(db, user, n);

	return e ? e->hash : NULL;
}

/* FNV-1a: spreads unknown names over the entries; no secret depends on it. */
static uint32_t name_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

const char *auth_db_setting(const struct auth_db *db, const char *user, size_t n, int *known)
{
	const struct auth_entry *e = db_find(db, user, n);

	*known = e != NULL;
	if (e)
		return e->hash;
	if (!db || db->n == 0)
		return NULL;
	return db->e[name_hash(user, n) % db->n].dummy;
}
