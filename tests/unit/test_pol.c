/*
 * test_pol: the policy module: levels, protocol lists, the policy file
 * parser (policy/pol_parse.c) and the table lookup (policy/pol_table.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pol.h"
#include "tap.h"

#define SHA1_A "3A:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:9F"
#define SHA1_B "b1:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:07"
#define SHA256_A                                                                                   \
	"00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:"     \
	"1C:1D:1E:1F"

/* Parse a C string as file "p"; errors joined with '\n' into buf. */
static int parse_len(const char *text, size_t len, struct pol_table **t, char *buf, size_t size)
{
	static struct pol_errors errs;
	int rc = pol_table_parse("p", text, len, t, &errs);

	buf[0] = '\0';
	for (size_t i = 0; i < errs.count; i++) {
		if (i)
			strncat(buf, "\n", size - strlen(buf) - 1);
		strncat(buf, errs.e[i].msg, size - strlen(buf) - 1);
	}
	CHECK(rc == 0 || *t == NULL, "failed parse left a table");
	CHECK(rc != 0 || errs.count == 0, "success with errors: %s", buf);
	return rc;
}

static int parse(const char *text, struct pol_table **t, char *buf, size_t size)
{
	return parse_len(text, strlen(text), t, buf, size);
}

static void test_levels(void)
{
	static const char *const names[] = {"none",	 "may",		"encrypt", "dane",
					    "dane-only", "fingerprint", "verify",  "secure"};

	for (int i = 0; i < POL_LEVEL_COUNT; i++) {
		CHECK_STR(pol_level_name(i), names[i]);
		CHECK_INT(pol_level_from_name(names[i], strlen(names[i])), i);
	}
	CHECK_INT(pol_level_from_name("Encrypt", 7), -1);
	CHECK_INT(pol_level_requires_tls(POL_LEVEL_MAY), 0);
	CHECK_INT(pol_level_requires_tls(POL_LEVEL_DANE), 1);
	CHECK_INT(pol_level_requires_auth(POL_LEVEL_DANE), 0);
	CHECK_INT(pol_level_requires_auth(POL_LEVEL_FINGERPRINT), 1);
}

struct proto_case {
	const char *text;
	unsigned bits; /* 0: refused with msg */
	const char *msg;
};

static const struct proto_case proto_cases[] = {
    {">=TLSv1.2", POL_TLS1_2 | POL_TLS1_3, NULL},
    {">=TLSv1.3", POL_TLS1_3, NULL},
    {"<=TLSv1.2", POL_TLS1_0 | POL_TLS1_1 | POL_TLS1_2, NULL},
    {"!SSLv2:!SSLv3", POL_TLS_ALL, NULL},
    {"!SSLv2:!SSLv3:!TLSv1:!TLSv1.1", POL_TLS1_2 | POL_TLS1_3, NULL},
    {"TLSv1.2:TLSv1.3", POL_TLS1_2 | POL_TLS1_3, NULL},
    {"TLSv1.2, TLSv1.3", POL_TLS1_2 | POL_TLS1_3, NULL},
    {">=TLSv1.1 <=TLSv1.2", POL_TLS1_1 | POL_TLS1_2, NULL},
    {"tlsv1.3", POL_TLS1_3, NULL},
    {"TLSv1", POL_TLS1_0, NULL},
    {"TLSv1.4", 0,
     "unknown protocol \"TLSv1.4\" (expected SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)"},
    {"!TLSv1.2:TLSv1.0", 0,
     "unknown protocol \"TLSv1.0\" (expected SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)"},
    {"SSLv3", 0, "SSLv3 is never enabled; it may only be excluded (!SSLv3)"},
    {">=SSLv2", 0, "SSLv2 is never enabled; it may only be excluded (!SSLv2)"},
    {">=TLSv1.3:<=TLSv1.2", 0, "no protocol left in \">=TLSv1.3:<=TLSv1.2\""},
    {"", 0, "no protocol left in \"\""},
    {"::", 0, "no protocol left in \"::\""},
};

static void test_protocols(void)
{
	char msg[200], names[64];

	for (size_t i = 0; i < sizeof(proto_cases) / sizeof(proto_cases[0]); i++) {
		const struct proto_case *t = &proto_cases[i];
		struct rl_why why = {0, NULL, 0};
		unsigned bits = 0;
		int rc = pol_protocols_parse(t->text, strlen(t->text), &bits, &why);

		if (t->bits) {
			CHECK(rc == 0 && bits == t->bits, "%s: rc %d bits 0x%x want 0x%x", t->text,
			      rc, bits, t->bits);
			continue;
		}
		CHECK(rc == RL_EPARSE, "%s: rc %d", t->text, rc);
		pol_protocols_error(t->text, strlen(t->text), &why, msg, sizeof(msg));
		CHECK_STR(msg, t->msg);
	}
	pol_protocols_names(POL_TLS1_2 | POL_TLS1_3, names, sizeof(names));
	CHECK_STR(names, "TLSv1.2 TLSv1.3");
	pol_protocols_names(POL_TLS_ALL, names, sizeof(names));
	CHECK_STR(names, "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3");
}

/* A valid file; the lookups below run against it. */
static const char good_file[] =
    "# next-hop domain   level         attributes\n"
    "\n"
    "example.com         encrypt\n"
    ".example.com        secure        match=.example.com\n"
    ".b.example.com      verify\n"
    "x.b.example.com     none\n"
    "bank.example        fingerprint   match=" SHA1_A "\n"
    "                    match=" SHA256_A "|" SHA1_B "\n"
    "partner.example     verify        match=hostname:nexthop  protocols=>=TLSv1.3\n"
    "   # a comment between continuation lines\n"
    "\tciphers=medium exclude=3DES:aNULL\r\n"
    "Legacy.EXAMPLE.     May\n"
    "relay.example       dane servername=nexthop\n"
    "mx.example          dane-only protocols=!SSLv2:!SSLv3,ciphers=high\n"
    "secure.example      secure tafile=/etc/ta.pem servername=mx.secure.example\n"
    ".com                may\n";

struct lookup_case {
	const char *domain;
	const char *key; /* NULL: no entry */
	int level;
	unsigned line;
};

static const struct lookup_case lookup_cases[] = {
    /* An exact entry wins over ".example.com". */
    {"example.com", "example.com", POL_LEVEL_ENCRYPT, 3},
    {"EXAMPLE.com.", "example.com", POL_LEVEL_ENCRYPT, 3},
    {"mx.example.com", ".example.com", POL_LEVEL_SECURE, 4},
    /* The closest parent: .b.example.com before .example.com. */
    {"a.b.example.com", ".b.example.com", POL_LEVEL_VERIFY, 5},
    {"c.a.b.example.com", ".b.example.com", POL_LEVEL_VERIFY, 5},
    {"b.example.com", ".example.com", POL_LEVEL_SECURE, 4},
    {"x.b.example.com", "x.b.example.com", POL_LEVEL_NONE, 6},
    {"y.x.b.example.com", ".b.example.com", POL_LEVEL_VERIFY, 5},
    {"bank.example", "bank.example", POL_LEVEL_FINGERPRINT, 7},
    {"legacy.example", "legacy.example", POL_LEVEL_MAY, 12},
    {"Legacy.Example", "legacy.example", POL_LEVEL_MAY, 12},
    {"relay.example", "relay.example", POL_LEVEL_DANE, 13},
    {"mx.example", "mx.example", POL_LEVEL_DANE_ONLY, 14},
    /* ".com" applies to any name under com without a closer entry. */
    {"other.com", ".com", POL_LEVEL_MAY, 16},
    {"com", NULL, 0, 0},
    {"sub.bank.example", NULL, 0, 0},
    {"example", NULL, 0, 0},
    {"", NULL, 0, 0},
    {".", NULL, 0, 0},
};

static void test_lookup(void)
{
	struct pol_table *t = NULL;
	char errs[4096];
	int rc = parse(good_file, &t, errs, sizeof(errs));

	CHECK(rc == 0, "rc %d: %s", rc, errs);
	if (rc != 0)
		return;
	CHECK_INT(pol_table_count(t), 11);
	for (size_t i = 0; i < sizeof(lookup_cases) / sizeof(lookup_cases[0]); i++) {
		const struct lookup_case *c = &lookup_cases[i];
		const struct pol_entry *e = pol_table_lookup(t, c->domain);

		if (!c->key) {
			CHECK(e == NULL, "%s: got %s want none", c->domain, e ? e->domain : "");
			continue;
		}
		CHECK(e != NULL, "%s: no entry, want %s", c->domain, c->key);
		if (!e)
			continue;
		CHECK_STR(e->domain, c->key);
		CHECK(e->level == c->level && e->line == c->line, "%s: level %d line %u", c->domain,
		      e->level, e->line);
	}
	/* Entries come in key order. */
	for (size_t i = 1; i < pol_table_count(t); i++)
		CHECK(strcmp(pol_table_entry(t, i - 1)->domain, pol_table_entry(t, i)->domain) < 0,
		      "order at %zu", i);
	CHECK(pol_table_lookup(NULL, "example.com") == NULL, "NULL table");
	pol_table_free(t);
	pol_table_free(NULL);
}

static const struct pol_entry *get(const struct pol_table *t, const char *d)
{
	const struct pol_entry *e = pol_table_lookup(t, d);

	CHECK(e != NULL, "no entry for %s", d);
	return e;
}

static void test_attributes(void)
{
	struct pol_table *t = NULL;
	const struct pol_entry *e;
	char errs[4096], fp[FPR_TEXT_SIZE];

	if (parse(good_file, &t, errs, sizeof(errs)) != 0)
		return;
	/* Digests: one per match=, or several joined by '|'; both lengths. */
	e = get(t, "bank.example");
	CHECK_INT(e->ndigests, 3);
	CHECK_INT(e->nmatch, 0);
	fpr_format(&e->digests[0], fp, sizeof(fp));
	CHECK_STR(fp, SHA1_A);
	CHECK_INT(e->digests[1].len, 32);
	fpr_format(&e->digests[1], fp, sizeof(fp));
	CHECK_STR(fp, SHA256_A);
	CHECK_INT(e->digests[2].len, 20);
	CHECK(e->digests[2].bytes[0] == 0xb1 && e->digests[2].bytes[19] == 0x07, "digest 3");
	CHECK_STR(e->priority_suffix, "");
	CHECK(!e->protocols && !e->protocols_text && !e->servername && !e->tafile, "unset");
	/* verify with match=, protocols=, ciphers= and exclude= on continuation lines. */
	e = get(t, "partner.example");
	CHECK_INT(e->nmatch, 2);
	CHECK_STR(e->match[0], "hostname");
	CHECK_STR(e->match[1], "nexthop");
	CHECK_INT(e->match_default, 0);
	CHECK_INT(e->protocols, POL_TLS1_3);
	CHECK_STR(e->protocols_text, ">=TLSv1.3");
	CHECK_INT(e->grade, POL_GRADE_MEDIUM);
	CHECK_STR(e->exclude_text, "3DES:aNULL");
	CHECK_STR(e->priority_suffix,
		  ":+AES-256-CBC:+AES-128-CBC:+SHA256:+SHA384:+SHA1:+RSA:-3DES-CBC");
	/* Defaults of match= as in Postfix. */
	e = get(t, "mx.example.com");
	CHECK(e->nmatch == 1 && e->match_default == 0, "explicit .example.com");
	CHECK_STR(e->match[0], ".example.com");
	e = get(t, "q.b.example.com");
	CHECK(e->nmatch == 1 && e->match_default == 1, "verify default");
	CHECK_STR(e->match[0], "hostname");
	e = get(t, "secure.example");
	CHECK(e->nmatch == 2 && e->match_default == 1, "secure default");
	CHECK_STR(e->match[0], "nexthop");
	CHECK_STR(e->match[1], "dot-nexthop");
	CHECK_STR(e->tafile, "/etc/ta.pem");
	CHECK_STR(e->servername, "mx.secure.example");
	/* Commas separate attributes. */
	e = get(t, "relay.example");
	CHECK_STR(e->servername, "nexthop");
	e = get(t, "mx.example");
	CHECK_INT(e->protocols, POL_TLS_ALL);
	CHECK_INT(e->grade, POL_GRADE_HIGH);
	CHECK_STR(e->priority_suffix, "");
	e = get(t, "example.com");
	CHECK(e->nmatch == 0 && e->ndigests == 0 && e->grade == POL_GRADE_DEFAULT, "encrypt");
	pol_table_free(t);
}

struct bad_case {
	const char *text;
	const char *errs; /* every message, in line order, joined with '\n' */
};

static const struct bad_case bad_cases[] = {
    {"a.example encrypt\nb.example securee\n",
     "p:2: unknown TLS level \"securee\" (expected one of none, may, encrypt, dane, dane-only, "
     "fingerprint, verify, secure)"},
    {"a.example\n", "p:1: missing TLS level after \"a.example\""},
    {"a.example encrypt match=x.example\n", "p:1: attribute match= is not valid at level encrypt"},
    {"a.example dane match=x.example\n", "p:1: attribute match= is not valid at level dane"},
    {"a.example dane-only match=x\n", "p:1: attribute match= is not valid at level dane-only"},
    {"a.example none protocols=TLSv1.3\n", "p:1: attribute protocols= is not valid at level none"},
    {"a.example fingerprint tafile=/x\n",
     "p:1: attribute tafile= is not valid at level fingerprint\n"
     "p:1: fingerprint needs at least one match= digest"},
    {"\n\n\n\nd.example fingerprint\n", "p:5: fingerprint needs at least one match= digest"},
    {"a.example fingerprint\n  protocols=TLSv1.3\n",
     "p:1: fingerprint needs at least one match= digest"},
    {"\n\n\n\n\n\ne.example fingerprint match=3A:ZZ\n",
     "p:7: bad digest \"3A:ZZ\" (20 or 32 colon-separated hex bytes)"},
    {"e.example fingerprint match=" SHA1_A "|3A3B\n",
     "p:1: bad digest \"3A3B\" (20 or 32 colon-separated hex bytes)"},
    {"e.example fingerprint match=" SHA1_A ":00\n",
     "p:1: bad digest \"" SHA1_A ":00\" (20 or 32 colon-separated hex bytes)"},
    {"e.example fingerprint match=|\n", "p:1: empty value for match="},
    {"e.example fingerprint match=\n", "p:1: empty value for match="},
    {"a.example verify match=hostname::bad..name\n",
     "p:1: bad match name \"bad..name\": empty label (expected hostname, nexthop, dot-nexthop, "
     "a name or .name)"},
    {"a.example secure match=:\n", "p:1: empty value for match="},
    {"a.example encrypt foo=bar\n", "p:1: unknown attribute \"foo\""},
    {"a.example encrypt connection_reuse=yes\n", "p:1: unknown attribute \"connection_reuse\""},
    {"a.example encrypt protocols=\n", "p:1: empty value for protocols="},
    {"a.example encrypt ciphers=\n", "p:1: empty value for ciphers="},
    {"a.example verify tafile=\n", "p:1: empty value for tafile="},
    {"a.example encrypt servername=\n", "p:1: empty value for servername="},
    {"a.example encrypt exclude=:\n", "p:1: empty value for exclude="},
    {"a.example encrypt protocols=TLSv1.4\n",
     "p:1: protocols: unknown protocol \"TLSv1.4\" (expected SSLv2, SSLv3, TLSv1, TLSv1.1, "
     "TLSv1.2 or TLSv1.3)"},
    {"a.example encrypt protocols=>=TLSv1.3:<=TLSv1.2\n",
     "p:1: protocols: no protocol left in \">=TLSv1.3:<=TLSv1.2\""},
    {"a.example encrypt protocols=SSLv3\n",
     "p:1: protocols: SSLv3 is never enabled; it may only be excluded (!SSLv3)"},
    {"a.example encrypt protocols=TLSv1.3 protocols=TLSv1.2\n",
     "p:1: protocols= given twice (first on line 1)"},
    {"a.example encrypt ciphers=low\n",
     "p:1: ciphers=low is refused as unsafe (use high or medium)"},
    {"a.example encrypt ciphers=EXPORT\n",
     "p:1: ciphers=EXPORT is refused as unsafe (use high or medium)"},
    {"a.example encrypt ciphers=null\n",
     "p:1: ciphers=null is refused as unsafe (use high or medium)"},
    {"a.example encrypt ciphers=strong\n",
     "p:1: unknown cipher grade \"strong\" (expected high or medium)"},
    {"a.example encrypt exclude=3DES:FOO:BAR\n",
     "p:1: exclude: unknown cipher name \"FOO\"\np:1: exclude: unknown cipher name \"BAR\""},
    {"a.example encrypt servername=-bad.example\n",
     "p:1: bad servername \"-bad.example\": label starts or ends with a hyphen"},
    {"a.example encrypt\n  # comment\n\n  servername=x\n  servername=y\n",
     "p:5: servername= given twice (first on line 4)"},
    {"a.example encrypt\nb.example may\nA.Example. none\n",
     "p:3: duplicate entry for \"a.example\" (first on line 1)"},
    {"a.example encrypt\n[a.example] may\nA.example encrypt\n",
     "p:3: duplicate entry for \"a.example\" (first on line 1)"},
    {"[a.example:25 encrypt\n",
     "p:1: bad next-hop \"[a.example:25\" (expected DOMAIN, .DOMAIN, [HOST] or [HOST]:PORT)"},
    {"[a.example]:0 encrypt\n",
     "p:1: bad next-hop \"[a.example]:0\" (expected DOMAIN, .DOMAIN, [HOST] or [HOST]:PORT)"},
    {"[.a.example] encrypt\n",
     "p:1: bad next-hop \"[.a.example]\" (expected DOMAIN, .DOMAIN, [HOST] or [HOST]:PORT)"},
    {"a.example:25 encrypt\n",
     "p:1: bad domain \"a.example:25\": only letters, digits, hyphens, underscores and dots are "
     "allowed"},
    {"g..example may\n", "p:1: bad domain \"g..example\": empty label"},
    {". may\n", "p:1: bad domain \".\": empty name"},
    {"  a.example may\n",
     "p:1: continuation line (starts with a blank) without an entry before it"},
    /* Postfix 3.0 "{ name = value }" groups: closed on their line, nothing glued on. */
    {"a.example encrypt { protocols = >=TLSv1.2\n  }\n",
     "p:1: missing '}' after \"{ protocols = >=TLSv1.2\" (a { name = value } group must end "
     "on the line it starts)\np:2: expected name=value, got \"}\""},
    {"a.example encrypt {protocols=TLSv1.3}x\n", "p:1: text after '}' in \"{protocols=TLSv1.3}x\""},
    {"a.example encrypt { }\n", "p:1: expected name=value, got \"{ }\""},
    {"a.example encrypt { = high }\n", "p:1: unknown attribute \"\""},
    {"a.example encrypt { ciphers = }\n", "p:1: empty value for ciphers="},
    {"a.example secure { match = : }\n", "p:1: empty value for match="},
    {"a.example secure { match = a.example b.example }\n",
     "p:1: bad match name \"a.example b.example\": only letters, digits, hyphens, underscores "
     "and dots are allowed (expected hostname, nexthop, dot-nexthop, a name or .name)"},
    {"a.example may # trailing comment here\n",
     "p:1: expected name=value, got \"#\" (a comment must start its own line)"},
    {"a.example may\nb.example\tm\x01y\n", "p:2: control character 0x01 in line"},
    /* Every error of a file, in line order, and nothing loaded. */
    {"a.example encrypt\n"
     "b.example securee\n"
     "c.example encrypt match=foo\n"
     "d.example fingerprint\n"
     "e.example fingerprint match=3A:ZZ\n"
     "A.example. none\n"
     "f.example verify protocols=TLSv1.4 ciphers=low\n"
     " tafile=\n",
     "p:2: unknown TLS level \"securee\" (expected one of none, may, encrypt, dane, dane-only, "
     "fingerprint, verify, secure)\n"
     "p:3: attribute match= is not valid at level encrypt\n"
     "p:4: fingerprint needs at least one match= digest\n"
     "p:5: bad digest \"3A:ZZ\" (20 or 32 colon-separated hex bytes)\n"
     "p:6: duplicate entry for \"a.example\" (first on line 1)\n"
     "p:7: protocols: unknown protocol \"TLSv1.4\" (expected SSLv2, SSLv3, TLSv1, TLSv1.1, "
     "TLSv1.2 or TLSv1.3)\n"
     "p:7: ciphers=low is refused as unsafe (use high or medium)\n"
     "p:8: empty value for tafile="},
};

static void test_bad(void)
{
	char errs[8192];

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct pol_table *t = (struct pol_table *)&errs; /* must be reset to NULL */
		int rc = parse(bad_cases[i].text, &t, errs, sizeof(errs));

		CHECK(rc == RL_EPARSE && t == NULL, "case %zu: rc %d", i, rc);
		CHECK(strcmp(errs, bad_cases[i].errs) == 0, "case %zu:\ngot  \"%s\"\nwant \"%s\"",
		      i, errs, bad_cases[i].errs);
	}
}

/*
 * Lines that cannot be read at all, byte by byte: a NUL is named as such
 * (it was reported as "control character (over 4096 bytes)"), and a long
 * line is only "line too long".
 */
static void test_bad_bytes(void)
{
	static char text[POL_LINE_MAX + 64];
	struct {
		const char *text;
		size_t len;
		const char *errs;
	} cases[] = {
	    {"a.example may\nb.example m\0y\n", 26, "p:2: NUL character"},
	    {"\0", 1, "p:1: NUL character"},
	    {"a.example may\n\0\0\n", 17, "p:2: NUL character"},
	    {"a.example m\x1by\n", 14, "p:1: control character 0x1b in line"},
	    {"a.example m\x7fy\n", 14, "p:1: control character 0x7f in line"},
	    {text, POL_LINE_MAX + 7, "p:2: line too long (over 4096 bytes)"},
	};
	char errs[1024];

	/* "x may\n", then one line of POL_LINE_MAX + 1 bytes with a NUL. */
	memcpy(text, "x may\n", 6);
	memset(text + 6, 'a', POL_LINE_MAX + 1);
	text[10] = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pol_table *t = NULL;
		int rc = parse_len(cases[i].text, cases[i].len, &t, errs, sizeof(errs));

		CHECK(rc == RL_EPARSE && t == NULL, "case %zu: rc %d", i, rc);
		CHECK(strcmp(errs, cases[i].errs) == 0, "case %zu:\ngot  \"%s\"\nwant \"%s\"", i,
		      errs, cases[i].errs);
	}
}

/* More errors than are kept: the count says so, the first ones are kept. */
static void test_error_cap(void)
{
	static struct pol_errors errs;
	struct pol_table *t = NULL;
	char *text = malloc(100 * 32);
	size_t len = 0;
	int rc;

	if (!text)
		return;
	for (int i = 0; i < 100; i++)
		len += (size_t)snprintf(text + len, 32, "d%d.example bogus\n", i);
	rc = pol_table_parse("p", text, len, &t, &errs);
	CHECK(rc == RL_EPARSE && t == NULL, "rc %d", rc);
	CHECK_INT(errs.count, POL_ERRORS_MAX);
	CHECK_INT(errs.total, 100);
	CHECK(strncmp(errs.e[0].msg, "p:1: unknown TLS level \"bogus\"", 30) == 0, "%s",
	      errs.e[0].msg);
	CHECK_INT(errs.e[POL_ERRORS_MAX - 1].line, POL_ERRORS_MAX);
	free(text);
	/* A NULL errs is allowed. */
	rc = pol_table_parse("p", "x bogus\n", 8, &t, NULL);
	CHECK(rc == RL_EPARSE && t == NULL, "rc %d", rc);
}

static void test_empty(void)
{
	static const char *const texts[] = {"", "\n", "# only a comment\n\n   \n", "\r\n"};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct pol_table *t = NULL;
		char errs[512];
		int rc = parse(texts[i], &t, errs, sizeof(errs));

		CHECK(rc == 0 && t != NULL, "case %zu: rc %d %s", i, rc, errs);
		CHECK_INT(pol_table_count(t), 0);
		CHECK(pol_table_lookup(t, "example.com") == NULL, "empty lookup");
		pol_table_free(t);
	}
}

struct equal_case {
	const char *a, *b;
	int equal;
};

static const struct equal_case equal_cases[] = {
    {"a.example encrypt\n", "# moved\n\na.example encrypt\n", 1},
    {"a.example encrypt\n", "A.EXAMPLE. Encrypt\n", 1},
    {"a.example encrypt\n", "a.example may\n", 0},
    {"a.example encrypt\n", "a.example encrypt protocols=>=TLSv1.2\n", 0},
    {"a.example encrypt protocols=>=TLSv1.2\n", "a.example encrypt protocols=TLSv1.2:TLSv1.3\n", 1},
    {"a.example verify\n", "a.example verify match=hostname\n", 0},
    {"a.example verify match=hostname:nexthop\n", "a.example verify match=hostname match=nexthop\n",
     1},
    {"a.example fingerprint match=" SHA1_A "\n", "a.example fingerprint match=" SHA1_B "\n", 0},
    {"a.example encrypt exclude=3DES\n", "a.example encrypt exclude=3DES:aNULL\n", 1},
    {"a.example encrypt exclude=RC4\n", "a.example encrypt exclude=3DES\n", 0},
    {"a.example verify tafile=/a\n", "a.example verify tafile=/b\n", 0},
    {"a.example encrypt servername=hostname\n", "a.example encrypt\n", 0},
};

static void test_equal(void)
{
	for (size_t i = 0; i < sizeof(equal_cases) / sizeof(equal_cases[0]); i++) {
		struct pol_table *a = NULL, *b = NULL;
		char errs[1024];

		if (parse(equal_cases[i].a, &a, errs, sizeof(errs)) == 0 &&
		    parse(equal_cases[i].b, &b, errs, sizeof(errs)) == 0)
			CHECK(pol_entry_equal(pol_table_entry(a, 0), pol_table_entry(b, 0)) ==
				  equal_cases[i].equal,
			      "case %zu", i);
		else
			CHECK(0, "case %zu: parse: %s", i, errs);
		pol_table_free(a);
		pol_table_free(b);
	}
}

static void test_priority(void)
{
	struct rl_buf b;
	size_t n;
	const char *const *d;

	rl_buf_init(&b, 1024);
	CHECK_INT(pol_priority_build("NORMAL", POL_TLS1_2 | POL_TLS1_3, ":-3DES-CBC", &b), 0);
	CHECK_STR(b.data, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-3DES-CBC");
	rl_buf_reset(&b);
	CHECK_INT(pol_priority_build("NORMAL", POL_TLS_ALL, NULL, &b), 0);
	CHECK_STR(b.data, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:+VERS-TLS1.1:+VERS-TLS1.0");
	rl_buf_reset(&b);
	CHECK_INT(pol_priority_build("NORMAL", 0, "", &b), 0);
	CHECK_STR(b.data, "NORMAL");
	rl_buf_fini(&b);
	rl_buf_init(&b, 8);
	CHECK_INT(pol_priority_build("NORMAL", POL_TLS1_3, NULL, &b), RL_ETOOBIG);
	rl_buf_fini(&b);
	d = pol_match_defaults(POL_LEVEL_VERIFY, &n);
	CHECK(n == 1 && strcmp(d[0], "hostname") == 0, "verify defaults");
	d = pol_match_defaults(POL_LEVEL_SECURE, &n);
	CHECK(n == 2 && strcmp(d[1], "dot-nexthop") == 0, "secure defaults");
	d = pol_match_defaults(POL_LEVEL_ENCRYPT, &n);
	CHECK(n == 0 && d == NULL, "encrypt defaults");
}

/* Every exclude= name maps, and every level parses in any case. */
static void test_forms(void)
{
	static const char *const ok[] = {
	    "a.example none\n",
	    "a.example MAY protocols=!SSLv2:!SSLv3\n",
	    "a.example Dane-Only servername=hostname\n",
	    "a.example encrypt exclude=3DES:DES:RC4:AES128:AES256:AES:AESGCM:AESCCM:CHACHA20\n"
	    "  exclude2=x\n",
	    "a.example encrypt exclude=CAMELLIA:SHA1:SHA:kRSA:kDHE:kEDH:DHE:EDH:DSS:aNULL:eNULL\n",
	    "a.example encrypt exclude=NULL:ADH:AECDH:EXPORT:EXP:LOW:MD5:IDEA:SEED:PSK:SRP\n",
	    "a.example secure match=nexthop:dot-nexthop:.example.com:mx.example.com\n",
	    "a.example verify match=HOSTNAME tafile=/etc/ssl/ta.pem\n",
	    "a.example fingerprint MATCH=" SHA1_A "||" SHA1_B "\n",
	    "a_b.example encrypt\n",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct pol_table *t = NULL;
		char errs[1024];
		int rc = parse(ok[i], &t, errs, sizeof(errs));

		/* The exclude2= line is the one error we want there. */
		if (strstr(ok[i], "exclude2"))
			CHECK(rc == RL_EPARSE &&
				  strcmp(errs, "p:2: unknown attribute \"exclude2\"") == 0,
			      "case %zu: %s", i, errs);
		else
			CHECK(rc == 0 && pol_table_count(t) == 1, "case %zu: rc %d %s", i, rc,
			      errs);
		pol_table_free(t);
	}
}

static int diff_collect(const char *key, void *arg)
{
	char *out = arg;

	strncat(out, key, 255 - strlen(out));
	strncat(out, " ", 255 - strlen(out));
	return 0;
}

static void test_diff(void)
{
	struct pol_table *a = NULL, *b = NULL;
	char errs[1024], keys[256] = "";

	CHECK_INT(parse("a.example encrypt\nb.example may\n.c.example secure\nd.example none\n",
			&a, errs, sizeof(errs)), 0);
	/* b changed level, .c moved lines only, d removed, e added. */
	CHECK_INT(parse("# moved\n.c.example secure\na.example encrypt\nb.example encrypt\n"
			"e.example may\n", &b, errs, sizeof(errs)), 0);
	CHECK_INT(pol_table_diff(a, b, diff_collect, keys), 0);
	CHECK_STR(keys, "b.example d.example e.example ");
	keys[0] = '\0';
	CHECK_INT(pol_table_diff(NULL, a, diff_collect, keys), 0);
	CHECK_STR(keys, ".c.example a.example b.example d.example ");
	keys[0] = '\0';
	CHECK_INT(pol_table_diff(a, a, diff_collect, keys), 0);
	CHECK_STR(keys, "");
	CHECK_INT(pol_table_index(b, pol_table_lookup(b, "x.c.example")), 0);
	CHECK_INT(pol_table_index(b, pol_table_lookup(b, "E.example.")), 3);
	pol_table_free(a);
	pol_table_free(b);

	CHECK_INT(pol_key_applies("example.com", "example.com"), 1);
	CHECK_INT(pol_key_applies("example.com", "EXAMPLE.com."), 1);
	CHECK_INT(pol_key_applies("example.com", "a.example.com"), 0);
	CHECK_INT(pol_key_applies(".example.com", "a.example.com"), 1);
	CHECK_INT(pol_key_applies(".example.com", "a.b.Example.COM"), 1);
	CHECK_INT(pol_key_applies(".example.com", "example.com"), 0);
	CHECK_INT(pol_key_applies(".example.com", "badexample.com"), 0);
	CHECK_INT(pol_key_applies("example.com", "xample.com"), 0);
}

/*
 * A table as Postfix administrators write it, copied unchanged: "{ name =
 * value }" groups (Postfix 3.0 and later) with blanks and commas inside,
 * '|' between digests, ':' between names, continuation lines.
 */
static void test_braces(void)
{
	static const char text[] =
	    "# migrated from /etc/postfix/tls_policy\n"
	    "mail.example.org  secure { match = nexthop : dot-nexthop }\n"
	    "example.net   secure  match=.example.com:example.net\n"
	    "  { protocols = !SSLv2, !SSLv3 }, {ciphers=high}\n"
	    "  { exclude = 3DES RC4 }\n"
	    "thumb.example fingerprint { match = " SHA1_A " | " SHA256_A " }\n"
	    "sni.example   verify { servername = mx.sni.example } { tafile = /etc/my ta.pem }\n";
	struct pol_table *t = NULL;
	const struct pol_entry *e;
	char errs[2048], fp[FPR_TEXT_SIZE];

	if (parse(text, &t, errs, sizeof(errs)) != 0) {
		CHECK(0, "braces: %s", errs);
		return;
	}
	e = get(t, "mail.example.org");
	CHECK(e->level == POL_LEVEL_SECURE && e->nmatch == 2, "braced match");
	CHECK_STR(e->match[0], "nexthop");
	CHECK_STR(e->match[1], "dot-nexthop");
	e = get(t, "example.net");
	CHECK_INT(e->nmatch, 2);
	CHECK_STR(e->match[0], ".example.com");
	CHECK_STR(e->match[1], "example.net");
	CHECK_INT(e->protocols, POL_TLS_ALL);
	CHECK_STR(e->protocols_text, "!SSLv2, !SSLv3");
	CHECK_INT(e->grade, POL_GRADE_HIGH);
	CHECK_STR(e->exclude_text, "3DES RC4");
	CHECK_STR(e->priority_suffix, ":-3DES-CBC:-ARCFOUR-128");
	e = get(t, "thumb.example");
	CHECK_INT(e->ndigests, 2);
	fpr_format(&e->digests[0], fp, sizeof(fp));
	CHECK_STR(fp, SHA1_A);
	fpr_format(&e->digests[1], fp, sizeof(fp));
	CHECK_STR(fp, SHA256_A);
	e = get(t, "sni.example");
	CHECK_STR(e->servername, "mx.sni.example");
	CHECK_STR(e->tafile, "/etc/my ta.pem");
	pol_table_free(t);
}

/* The warnings of the last parse_len(), joined with '\n'. */
static void warnings_of(const struct pol_errors *errs, char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 0; i < errs->nwarn; i++) {
		if (i)
			strncat(buf, "\n", size - strlen(buf) - 1);
		strncat(buf, errs->w[i].msg, size - strlen(buf) - 1);
	}
}

#define NEXTHOP_WARNING                                                                            \
	" names an explicit next hop, which tlsrelay never uses (it delivers to each domain's MX " \
	"hosts); the entry is ignored. Write the domain without brackets to set its policy."

/*
 * "[host]" and "[host]:port" keys (Postfix: an explicit next hop, which
 * the relay never has) apply to no domain: "[relay.example]:25 none" must
 * not send mail for relay.example in clear.  They are checked like any
 * entry, warned about, and no duplicate of the domain's own key.
 */
static void test_nexthop(void)
{
	static const char text[] =
	    "# from Postfix\n"
	    "[relay.example]:25   none\n"
	    "[Example.COM]        may\n"
	    "example.com          secure\n"
	    "[mail.example.org]:587  secure { match = nexthop : dot-nexthop }\n"
	    "[192.0.2.1]          encrypt\n";
	static const char bad[] = "a.example encrypt\n"
				  "[b.example]:25 encrypt match=b.example\n"
				  "[c.example] bogus\n"
				  "[d.example]:25 verify\n"
				  "  protocols=TLSv1.4\n"
				  "[e.example]:99999 may\n";
	static struct pol_errors errs;
	struct pol_table *t = NULL;
	const struct pol_entry *e;
	const struct pol_msg *m;
	size_t ie = 0, iw = 0;
	int warning;
	char buf[2048];
	int rc = pol_table_parse("p", text, strlen(text), &t, &errs);

	CHECK(rc == 0 && errs.count == 0, "rc %d: %s", rc, errs.count ? errs.e[0].msg : "");
	if (rc != 0)
		return;
	CHECK_INT(pol_table_count(t), 1);
	CHECK(pol_table_lookup(t, "relay.example") == NULL, "[relay.example]:25 applies");
	CHECK(pol_table_lookup(t, "mail.example.org") == NULL, "[mail.example.org]:587 applies");
	CHECK(pol_table_lookup(t, "192.0.2.1") == NULL, "[192.0.2.1] applies");
	e = get(t, "example.com");
	CHECK(e && e->level == POL_LEVEL_SECURE && e->line == 4, "example.com");
	pol_table_free(t);
	warnings_of(&errs, buf, sizeof(buf));
	CHECK_STR(buf, "p:2: warning: [relay.example]:25" NEXTHOP_WARNING "\n"
		       "p:3: warning: [Example.COM]" NEXTHOP_WARNING "\n"
		       "p:5: warning: [mail.example.org]:587" NEXTHOP_WARNING "\n"
		       "p:6: warning: [192.0.2.1]" NEXTHOP_WARNING);
	CHECK_INT(errs.wtotal, 4);
	CHECK(errs.w[0].line == 2 && errs.w[3].line == 6, "warning lines");
	/* For a log that says "warning: " itself: "p:2: " and the words. */
	CHECK_INT(errs.w[0].prefix, 5);
	CHECK_STR(errs.w[0].msg + errs.w[0].text, "[relay.example]:25" NEXTHOP_WARNING);

	/* Errors inside an ignored entry are still errors; merged in line order. */
	rc = pol_table_parse("p", bad, strlen(bad), &t, &errs);
	CHECK(rc == RL_EPARSE && t == NULL, "bad: rc %d", rc);
	buf[0] = '\0';
	while ((m = pol_errors_next(&errs, &ie, &iw, &warning)) != NULL) {
		strncat(buf, warning ? "W " : "E ", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, m->msg, sizeof(buf) - strlen(buf) - 1);
		strncat(buf, "\n", sizeof(buf) - strlen(buf) - 1);
	}
	CHECK_STR(buf,
		  "E p:2: attribute match= is not valid at level encrypt\n"
		  "W p:2: warning: [b.example]:25" NEXTHOP_WARNING "\n"
		  "E p:3: unknown TLS level \"bogus\" (expected one of none, may, encrypt, dane, "
		  "dane-only, fingerprint, verify, secure)\n"
		  "W p:3: warning: [c.example]" NEXTHOP_WARNING "\n"
		  "W p:4: warning: [d.example]:25" NEXTHOP_WARNING "\n"
		  "E p:5: protocols: unknown protocol \"TLSv1.4\" (expected SSLv2, SSLv3, TLSv1, "
		  "TLSv1.1, TLSv1.2 or TLSv1.3)\n"
		  "E p:6: bad next-hop \"[e.example]:99999\" (expected DOMAIN, .DOMAIN, [HOST] or "
		  "[HOST]:PORT)\n");
	CHECK(errs.total == 4 && errs.wtotal == 3, "totals %zu %zu", errs.total, errs.wtotal);
}

int main(void)
{
	test_levels();
	test_protocols();
	test_lookup();
	test_attributes();
	test_bad();
	test_bad_bytes();
	test_error_cap();
	test_empty();
	test_equal();
	test_priority();
	test_forms();
	test_diff();
	test_braces();
	test_nexthop();
	return TEST_DONE();
}
