/*
 * Unit tests of relay/auth: the password file parser, the SASL codec
 * (AUTH arguments, base64, PLAIN), the hash check and the failure table.
 */
#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "tap.h"

#define S(x) x, sizeof(x) - 1

/* Valid hashes of "pw" (made once with libxcrypt). */
#define H_Y "$y$j9T$olqQmJ4PVZL9ixK9pBLNm/$vSbNvaLsEOWHVke0CRwkBY/HBRK.9XMEc1NApY6iVV9"
#define H_6                                                                                        \
	"$6$sf9Tb.tNbrkqL7fi$Ci6dlTrih4bB.i1iG8XYqReCdr.5TITKSnFkwtmNCoZB0nxbuxjzYzh9He3p/"        \
	"YmQJvhXy9Sl"                                                                              \
	"yHSZlCWIpU0ym/"
#define H_6R                                                                                       \
	"$6$rounds=5000$sf9Tb.tNbrkqL7fi$Ci6dlTrih4bB.i1iG8XYqReCdr."                              \
	"5TITKSnFkwtmNCoZB0nxbuxjzYzh9He3p"                                                        \
	"/YmQJvhXy9SlyHSZlCWIpU0ym/"

static void test_db_parse(void)
{
	static const struct {
		const char *text;
		int rc;
		unsigned line;
		const char *reason; /* a part of it */
		size_t count;
	} t[] = {
	    {"", 0, 0, NULL, 0},
	    {"# nobody\n\n", 0, 0, NULL, 0},
	    {"alice:" H_Y "\nbob:" H_6 "\r\n# c\ncarol:" H_6R, 0, 0, NULL, 3},
	    {"u\xc3\xa9@example.com:" H_Y "\n", 0, 0, NULL, 1},
	    {"alice:" H_Y "\nalice:" H_6 "\n", RL_EPARSE, 2, "duplicate", 0},
	    {"b:" H_Y "\na:" H_Y "\nb:" H_6 "\na:" H_6 "\n", RL_EPARSE, 3, "duplicate", 0},
	    {"alice\n", RL_EPARSE, 1, "user:hash", 0},
	    {"\nalice:\n", RL_EPARSE, 2, "empty password hash", 0},
	    {":" H_Y "\n", RL_EPARSE, 1, "empty user", 0},
	    {"al ice:" H_Y "\n", RL_EPARSE, 1, "blank", 0},
	    {"alice: " H_Y "\n", RL_EPARSE, 1, "unsupported", 0},
	    {"alice:" H_Y " \n", RL_EPARSE, 1, "malformed yescrypt", 0},
	    {"alice:!" H_Y "\n", RL_EPARSE, 1, "locked", 0},
	    {"alice:*\n", RL_EPARSE, 1, "locked", 0},
	    {"alice:$1$ZUQ7VVye$rO92oZStidtQlzh6xl1MF1\n", RL_EPARSE, 1, "unsupported", 0},
	    {"alice:$5$da0UyeuTOzMjP4G3$X4P.zfX0onBrzFZyozhzLlqTEgLubW89XGGRSS2FrlB\n", RL_EPARSE,
	     1, "unsupported", 0},
	    {"alice:$2b$05$/pSzHGZxwY4.jwiXo2ruI.iu5XsSeLmdzhRqXIdZBGhwLyacDpbfe\n", RL_EPARSE, 1,
	     "unsupported", 0},
	    {"alice:abJnggxhB/yWI\n", RL_EPARSE, 1, "unsupported", 0},
	    {"alice:$6$salt$short\n", RL_EPARSE, 1, "malformed SHA-512", 0},
	    {"alice:$6$rounds=$sf9Tb.tNbrkqL7fi$x\n", RL_EPARSE, 1, "malformed SHA-512", 0},
	    {"alice:$y$j9T$salt\n", RL_EPARSE, 1, "malformed yescrypt", 0},
	    {"alice:" H_6 ":extra\n", RL_EPARSE, 1, "malformed SHA-512", 0},
	    {"alice:" H_Y "\nbob:\x01" H_Y "\n", RL_EPARSE, 2, "control", 0},
	    {"alice:" H_Y "\nbob\x01:" H_Y "\n", RL_EPARSE, 2, "control", 0},
	    {"al\tice:" H_Y "\n", RL_EPARSE, 1, "blank", 0},
	    {"bob)x:" H_Y "\n", RL_EPARSE, 1, "header comment", 0},
	    {"a:" H_Y "\n(bob:" H_Y "\n", RL_EPARSE, 2, "header comment", 0},
	    {"bo\\b:" H_Y "\n", RL_EPARSE, 1, "header comment", 0},
	    {"\"bob\"@x:" H_Y "\n", RL_EPARSE, 1, "header comment", 0},
	    {"bob[1]+x@example.com:" H_Y "\n", 0, 0, NULL, 1},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct auth_db *db = NULL;
		struct rl_why why = {0, NULL, 0};
		unsigned line = 99;
		int rc = auth_db_parse(t[i].text, strlen(t[i].text), &db, &line, &why);

		CHECK(rc == t[i].rc, "case %zu: rc %d want %d (%s)", i, rc, t[i].rc,
		      why.reason ? why.reason : "");
		CHECK(line == t[i].line, "case %zu: line %u want %u", i, line, t[i].line);
		if (t[i].reason)
			CHECK(why.reason && strstr(why.reason, t[i].reason), "case %zu: reason %s",
			      i, why.reason ? why.reason : "(null)");
		CHECK((rc == 0) == (db != NULL), "case %zu: db %p", i, (void *)db);
		CHECK(auth_db_count(db) == t[i].count, "case %zu: count %zu", i, auth_db_count(db));
		auth_db_free(db);
	}
}

static void test_db_lookup(void)
{
	static const char text[] = "zed:" H_Y "\nalice:" H_6 "\nal:" H_6R "\n";
	struct auth_db *db = NULL;
	unsigned line;
	int rc = auth_db_parse(text, sizeof(text) - 1, &db, &line, NULL);

	CHECK_INT(rc, 0);
	CHECK_STR(auth_db_hash(db, S("alice")), H_6);
	CHECK_STR(auth_db_hash(db, S("al")), H_6R);
	CHECK_STR(auth_db_hash(db, S("zed")), H_Y);
	CHECK(auth_db_hash(db, S("Alice")) == NULL, "names are exact");
	CHECK(auth_db_hash(db, S("alic")) == NULL, "prefix");
	CHECK(auth_db_hash(db, S("alicee")) == NULL, "longer");
	CHECK(auth_db_hash(db, S("al\0ice")) == NULL, "NUL");
	CHECK(auth_db_hash(db, "", 0) == NULL, "empty");
	CHECK(auth_db_hash(NULL, S("alice")) == NULL, "no table");
	auth_db_free(db);
	auth_db_free(NULL);
}

static void test_cmd(void)
{
	static const struct {
		const char *arg;
		int rc, mech, has;
		const char *resp;
	} t[] = {
	    {"PLAIN", 0, AUTH_MECH_PLAIN, 0, NULL},
	    {"plain", 0, AUTH_MECH_PLAIN, 0, NULL},
	    {"LOGIN", 0, AUTH_MECH_LOGIN, 0, NULL},
	    {"PLAIN AGFsaWNlAHB3", 0, AUTH_MECH_PLAIN, 1, "AGFsaWNlAHB3"},
	    {"LOGIN =", 0, AUTH_MECH_LOGIN, 1, "="},
	    {"CRAM-MD5", -ENOTSUP, 0, 0, NULL},
	    {"PLAINX", -ENOTSUP, 0, 0, NULL},
	    {"", RL_EPARSE, 0, 0, NULL},
	    {" PLAIN", RL_EPARSE, 0, 0, NULL},
	    {"PLAIN ", RL_EPARSE, 0, 0, NULL},
	    {"PLAIN a b", RL_EPARSE, 0, 0, NULL},
	    {"PLAIN  a", RL_EPARSE, 0, 0, NULL},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct auth_cmd c;
		int rc = auth_cmd_parse(t[i].arg, strlen(t[i].arg), &c, NULL);

		CHECK(rc == t[i].rc, "case %zu (%s): rc %d want %d", i, t[i].arg, rc, t[i].rc);
		if (rc < 0)
			continue;
		CHECK_INT(c.mech, t[i].mech);
		CHECK_INT(c.has_resp, t[i].has);
		if (t[i].resp)
			CHECK(c.resplen == strlen(t[i].resp) &&
				  memcmp(c.resp, t[i].resp, c.resplen) == 0,
			      "case %zu resp", i);
	}
}

static void test_b64(void)
{
	static const struct {
		const char *in;
		int rc;
		const char *out;
		size_t outlen;
	} t[] = {
	    {"=", 0, "", 0},
	    {"Zg==", 0, "f", 1},
	    {"Zm8=", 0, "fo", 2},
	    {"Zm9v", 0, "foo", 3},
	    {"Zm9vYmFy", 0, "foobar", 6},
	    {"AGFsaWNlAHB3", 0, "\0alice\0pw", 9},
	    {"+/+/", 0, "\xfb\xff\xbf", 3},
	    {"", RL_EPARSE, NULL, 0},
	    {"Zg=", RL_EPARSE, NULL, 0},
	    {"Zg", RL_EPARSE, NULL, 0},
	    {"Zh==", RL_EPARSE, NULL, 0}, /* non-zero pad bits */
	    {"Zm9=", RL_EPARSE, NULL, 0}, /* non-zero pad bits */
	    {"Z===", RL_EPARSE, NULL, 0},
	    {"Zg==Zg==", RL_EPARSE, NULL, 0},
	    {"Zm=v", RL_EPARSE, NULL, 0},
	    {"Zm9 ", RL_EPARSE, NULL, 0},
	    {"Zm9v\r\n", RL_EPARSE, NULL, 0},
	    {"Zm-_", RL_EPARSE, NULL, 0},
	    {"====", RL_EPARSE, NULL, 0},
	};
	unsigned char out[16];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n = 99;
		int rc = auth_b64_decode(t[i].in, strlen(t[i].in), out, sizeof(out), &n);

		CHECK(rc == t[i].rc, "case %zu (%s): rc %d want %d", i, t[i].in, rc, t[i].rc);
		if (rc == 0)
			CHECK(n == t[i].outlen && memcmp(out, t[i].out, n) == 0,
			      "case %zu: %zu octets", i, n);
	}
	{
		size_t n;

		CHECK_INT(auth_b64_decode(S("Zm9vYmFy"), out, 5, &n), RL_ETOOBIG);
		CHECK_INT(auth_b64_decode(S("Zm9vYmFy"), out, 6, &n), 0);
	}
}

static void test_plain(void)
{
	static const struct {
		const char *in;
		size_t n;
		int rc;
		const char *user, *pass;
	} t[] = {
	    {S("\0alice\0pw"), 0, "alice", "pw"},  {S("alice\0alice\0pw"), 0, "alice", "pw"},
	    {S("\0alice\0"), 0, "alice", ""},	   {S("bob\0alice\0pw"), RL_EPARSE, NULL, NULL},
	    {S("\0\0pw"), RL_EPARSE, NULL, NULL},  {S("alice\0pw"), RL_EPARSE, NULL, NULL},
	    {S("alicepw"), RL_EPARSE, NULL, NULL}, {S("\0alice\0p\0w"), RL_EPARSE, NULL, NULL},
	    {"", 0, RL_EPARSE, NULL, NULL},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct auth_plain p;
		int rc = auth_plain_parse((const unsigned char *)t[i].in, t[i].n, &p, NULL);

		CHECK(rc == t[i].rc, "case %zu: rc %d want %d", i, rc, t[i].rc);
		if (rc < 0)
			continue;
		CHECK(p.userlen == strlen(t[i].user) && memcmp(p.user, t[i].user, p.userlen) == 0,
		      "case %zu user", i);
		CHECK(p.passlen == strlen(t[i].pass) && memcmp(p.pass, t[i].pass, p.passlen) == 0,
		      "case %zu pass", i);
	}
	{
		char big[AUTH_USER_MAX + 8];
		struct auth_plain p;

		memset(big, 'u', sizeof(big));
		big[0] = '\0';
		big[AUTH_USER_MAX + 2] = '\0';
		CHECK_INT(auth_plain_parse((unsigned char *)big, AUTH_USER_MAX + 4, &p, NULL),
			  RL_EPARSE);
		memset(big, 'u', sizeof(big));
		big[0] = '\0';
		big[AUTH_USER_MAX + 1] = '\0';
		CHECK_INT(auth_plain_parse((unsigned char *)big, AUTH_USER_MAX + 4, &p, NULL), 0);
	}
}

/* A fresh hash of pw with the scheme prefix ("$y$" or "$6$"). */
static char *make_hash(const char *prefix, const char *pw)
{
	struct crypt_data cd;
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];

	memset(&cd, 0, sizeof(cd));
	if (!crypt_gensalt_rn(prefix, 0, NULL, 0, setting, sizeof(setting)))
		return NULL;
	if (!crypt_rn(pw, setting, &cd, sizeof(cd)))
		return NULL;
	return strdup(cd.output);
}

static void test_verify(void)
{
	const char *prefixes[] = {"$y$", "$6$"};

	for (size_t i = 0; i < 2; i++) {
		char *h = make_hash(prefixes[i], "s3cret pass");
		struct auth_db *db = NULL;
		char text[1024];
		unsigned line;

		CHECK(h != NULL, "hash %s", prefixes[i]);
		if (!h)
			continue;
		snprintf(text, sizeof(text), "u:%s\n", h);
		CHECK(auth_db_parse(text, strlen(text), &db, &line, NULL) == 0,
		      "libxcrypt's own %s hash loads: %s", prefixes[i], h);
		CHECK_INT(auth_verify(S("s3cret pass"), h), 1);
		CHECK_INT(auth_verify(S("s3cret pasS"), h), 0);
		CHECK_INT(auth_verify(S("s3cret pass "), h), 0);
		CHECK_INT(auth_verify(S("s3cret\0pass"), h), 0);
		CHECK_INT(auth_verify("", 0, h), 0);
		auth_db_free(db);
		free(h);
	}
	CHECK_INT(auth_verify(S("pw"), H_Y), 0);
	CHECK_INT(auth_verify(S("no such user"), NULL), 0);
	CHECK_INT(auth_verify(S("pw"), "$6$broken"), 0);
	{
		char *h = make_hash("$6$", "");
		char *long_pw = malloc(AUTH_PASS_MAX + 2);

		memset(long_pw, 'a', AUTH_PASS_MAX + 2);
		CHECK_INT(auth_verify(long_pw, AUTH_PASS_MAX + 1, h), 0);
		CHECK_INT(auth_verify("", 0, h), 1);
		free(long_pw);
		free(h);
	}
}

/* Length of a hash's scheme and cost part: up to the '$' before the salt. */
static size_t cost_len(const char *h, int has_hash)
{
	const char *p = strrchr(h, '$');

	if (has_hash)
		while (p > h && *--p != '$')
			;
	return (size_t)(p - h) + 1;
}

/*
 * An unknown user is checked against the scheme and cost of a real entry
 * (with a salt of the same length), never against a fixed yescrypt hash:
 * a file of cheap $6$ entries must not make unknown users the slow ones.
 */
static void test_unknown_setting(void)
{
	char *h[3] = {make_hash("$y$", "a"), make_hash("$6$", "b"), NULL};
	char text[2048], name[32];
	struct auth_db *db = NULL;
	unsigned line, hit[3] = {0, 0, 0};
	int known = 7;

	{
		struct crypt_data cd;
		char setting[CRYPT_GENSALT_OUTPUT_SIZE];

		memset(&cd, 0, sizeof(cd));
		CHECK(crypt_gensalt_rn("$6$", 1000, NULL, 0, setting, sizeof(setting)) != NULL,
		      "gensalt rounds");
		if (crypt_rn("c", setting, &cd, sizeof(cd)))
			h[2] = strdup(cd.output);
	}
	CHECK(h[0] && h[1] && h[2], "hashes");
	if (!h[0] || !h[1] || !h[2])
		return;
	CHECK(strncmp(h[2], "$6$rounds=1000$", 15) == 0, "rounds: %s", h[2]);
	snprintf(text, sizeof(text), "ya:%s\nsix:%s\nrounds:%s\n", h[0], h[1], h[2]);
	CHECK_INT(auth_db_parse(text, strlen(text), &db, &line, NULL), 0);
	CHECK_STR(auth_db_setting(db, S("six"), &known), h[1]);
	CHECK_INT(known, 1);
	for (int i = 0; i < 60; i++) {
		const char *st, *again;
		int k2 = 1, match = 0;
		struct crypt_data cd;

		snprintf(name, sizeof(name), "nobody%d", i);
		st = auth_db_setting(db, name, strlen(name), &known);
		again = auth_db_setting(db, name, strlen(name), &k2);
		CHECK(st && known == 0 && st == again && k2 == 0, "unknown %s", name);
		if (!st)
			continue;
		for (int j = 0; j < 3; j++) {
			size_t n = cost_len(h[j], 1);

			if (cost_len(st, 0) == n && strncmp(st, h[j], n) == 0 &&
			    strlen(st) == (size_t)(strrchr(h[j], '$') - h[j])) {
				match = 1;
				hit[j]++;
			}
		}
		CHECK(match, "%s: setting %s has the scheme and cost of no entry", name, st);
		CHECK(strspn(st + cost_len(st, 0), ".") == strlen(st + cost_len(st, 0)),
		      "made-up salt: %s", st);
		memset(&cd, 0, sizeof(cd));
		CHECK(crypt_rn("x", st, &cd, sizeof(cd)) && cd.output[0] != '*', "crypt accepts %s",
		      st);
		CHECK_INT(auth_verify(S("a"), st), 0);
	}
	CHECK(hit[0] && hit[1] && hit[2], "every entry serves some name: %u %u %u", hit[0], hit[1],
	      hit[2]);
	auth_db_free(db);
	CHECK(auth_db_setting(NULL, S("x"), &known) == NULL && known == 0, "no table");
	CHECK_INT(auth_db_parse("# none\n", 7, &db, &line, NULL), 0);
	CHECK(auth_db_setting(db, S("x"), &known) == NULL && known == 0, "empty table");
	auth_db_free(db);
	for (int j = 0; j < 3; j++)
		free(h[j]);
}

static struct sockaddr_storage sa_of(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		CHECK_INT(inet_pton(AF_INET6, text, &a->sin6_addr), 1);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		CHECK_INT(inet_pton(AF_INET, text, &a->sin_addr), 1);
	}
	return ss;
}

static struct auth_key key(const char *text)
{
	struct sockaddr_storage ss = sa_of(text);
	struct auth_key k;

	auth_key_of((struct sockaddr *)&ss, &k);
	return k;
}

/* IPv4 by address, IPv6 by /64, v4-mapped as IPv4. */
static void test_key(void)
{
	static const struct {
		const char *a, *b;
		int same;
		const char *text; /* of a */
	} t[] = {
	    {"192.0.2.1", "192.0.2.1", 1, "192.0.2.1"},
	    {"192.0.2.1", "192.0.2.2", 0, "192.0.2.1"},
	    {"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", 1, "2001:db8:1:2::/64"},
	    {"2001:db8:1:2::1", "2001:db8:1:3::1", 0, "2001:db8:1:2::/64"},
	    {"2001:db8::1", "2001:db9::1", 0, "2001:db8::/64"},
	    {"::ffff:192.0.2.1", "192.0.2.1", 1, "192.0.2.1"},
	    {"::ffff:192.0.2.1", "::ffff:192.0.2.2", 0, "192.0.2.1"},
	    {"::1", "::2", 1, "::/64"},
	    {"192.0.2.1", "::ffff:0:c000:201", 0, "192.0.2.1"},
	};
	struct auth_key k, u;
	char text[64];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct auth_key a = key(t[i].a), b = key(t[i].b);

		CHECK(auth_key_eq(&a, &b) == t[i].same, "case %zu: %s vs %s", i, t[i].a, t[i].b);
		auth_key_text(&a, text, sizeof(text));
		CHECK_STR(text, t[i].text);
	}
	auth_key_of(NULL, &k);
	CHECK_INT(k.family, 0);
	auth_key_text(&k, text, sizeof(text));
	CHECK_STR(text, "unknown");
	u = key("0.0.0.0");
	CHECK(!auth_key_eq(&k, &u), "unknown is not 0.0.0.0");
}

static unsigned fail_at(struct auth_throttle *t, const char *addr, uint64_t now)
{
	struct auth_key k = key(addr);

	CHECK_INT(auth_throttle_begin(t, &k, now), 0);
	return auth_throttle_end(t, &k, now, 1);
}

static void test_throttle(void)
{
	struct auth_throttle *t = NULL;
	struct auth_key k1 = key("192.0.2.1"), k2 = key("192.0.2.2"), k6 = key("2001:db8::4");
	char a[64];

	CHECK_INT(auth_throttle_new(3, &t), 0);
	CHECK_INT(auth_throttle_count(t, &k1, 1000), 0);
	for (unsigned i = 1; i <= 5; i++)
		CHECK_INT(fail_at(t, "192.0.2.1", 1000 + i * 1000), i);
	CHECK_INT(auth_throttle_count(t, &k1, 6000), 5);
	CHECK_INT(auth_throttle_count(t, &k2, 6000), 0);
	/* A minute after the last failure it is forgotten. */
	CHECK_INT(auth_throttle_count(t, &k1, 6000 + AUTH_THROTTLE_WINDOW_MS), 0);
	CHECK_INT(fail_at(t, "192.0.2.1", 6000 + AUTH_THROTTLE_WINDOW_MS), 1);
	/* A full table: the oldest failure makes room. */
	CHECK_INT(fail_at(t, "192.0.2.2", 70000), 1);
	CHECK_INT(fail_at(t, "192.0.2.3", 70001), 1);
	CHECK_INT(fail_at(t, "192.0.2.3", 70002), 2);
	CHECK_INT(fail_at(t, "2001:db8::4", 70003), 1);
	CHECK_INT(auth_throttle_count(t, &k1, 70004), 0);
	CHECK_INT(auth_throttle_count(t, &k2, 70004), 1);
	CHECK_INT(auth_throttle_count(t, &k6, 70004), 1);
	/*
	 * IPv6 rotation: every address of one /64 counts together, so fresh
	 * addresses give no fresh guesses; the next /64 is another client.
	 */
	for (unsigned i = 2; i <= 12; i++) {
		snprintf(a, sizeof(a), "2001:db8::%x:%x", (i * 7919) & 0xffff, i);
		CHECK_INT(fail_at(t, a, 70004 + i), i);
	}
	CHECK_INT(auth_throttle_count(t, &k6, 70100), 12);
	CHECK_INT(fail_at(t, "2001:db8:0:1::4", 70101), 1);
	/* A v4-mapped client is its IPv4 address. */
	CHECK_INT(fail_at(t, "::ffff:192.0.2.3", 70102), 3);
	auth_throttle_free(t);

	/* Checks in flight count, and hold their slot. */
	CHECK_INT(auth_throttle_new(2, &t), 0);
	CHECK_INT(auth_throttle_begin(t, &k1, 1000), 0);
	CHECK_INT(auth_throttle_begin(t, &k1, 1000), 0);
	CHECK_INT(auth_throttle_pending(t, &k1), 2);
	CHECK_INT(auth_throttle_count(t, &k1, 1000), 0);
	CHECK_INT(auth_throttle_begin(t, &k2, 1000), 0);
	CHECK_INT(auth_throttle_begin(t, &k6, 1000), -ENOSPC);
	CHECK_INT(auth_throttle_end(t, &k2, 1001, 0), 0); /* a success */
	CHECK_INT(auth_throttle_pending(t, &k2), 0);
	CHECK_INT(auth_throttle_begin(t, &k6, 1002), 0); /* k2's slot was free */
	CHECK_INT(auth_throttle_end(t, &k1, 1003, 1), 1);
	CHECK_INT(auth_throttle_pending(t, &k1), 1);
	CHECK_INT(auth_throttle_end(t, &k1, 1004, 1), 2);
	CHECK_INT(auth_throttle_pending(t, &k1), 0);
	CHECK_INT(auth_throttle_end(t, &k6, 1005, 1), 1);
	auth_throttle_free(t);

	/* The total of all clients, by second, over the last minute. */
	CHECK_INT(auth_throttle_new(8, &t), 0);
	CHECK_INT(auth_throttle_total(t, 0), 0);
	for (unsigned i = 0; i < 150; i++) {
		snprintf(a, sizeof(a), "198.51.100.%u", i);
		(void)fail_at(t, a, 5000 + i * 100); /* 15 s, 10 a second */
	}
	CHECK_INT(auth_throttle_total(t, 20000), 150);
	CHECK_INT(auth_throttle_total(t, 5000 + AUTH_THROTTLE_WINDOW_MS), 140);
	CHECK_INT(auth_throttle_total(t, 20000 + AUTH_THROTTLE_WINDOW_MS), 0);
	auth_throttle_free(t);
	auth_throttle_free(NULL);
	CHECK_INT(auth_throttle_count(NULL, &k1, 1), 0);
	CHECK_INT(auth_throttle_total(NULL, 1), 0);
}

int main(void)
{
	test_db_parse();
	test_db_lookup();
	test_cmd();
	test_b64();
	test_plain();
	test_verify();
	test_unknown_setting();
	test_key();
	test_throttle();
	return TEST_DONE();
}
