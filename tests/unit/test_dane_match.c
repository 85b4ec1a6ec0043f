/*
 * test_dane_match: dane_match() (policy/dane_match.c) against real
 * certificates made here with the GnuTLS API: a CA, an intermediate it
 * signed, leaves for mx.example.test under each, an expired leaf, a leaf
 * for another name, an expired intermediate with a current leaf under it,
 * and a second CA with the first one's name but its own key.  TLSA records
 * are built directly from those certificates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "dane.h"
#include "tap.h"
#include "testcert.h"

#define OK(expr) RL_REQUIRE((expr) >= 0)
#define DAY	 86400

/* The certificates, by the names the case table uses. */
enum who { GOOD, DEEP, EXPIRED, WRONG, CA, CA2, INTER, OLDINTER, OLDDEEP, NWHO };
static struct made certs[NWHO];


static void make_all(time_t now)
{
	testcert_make(&certs[CA], "Test CA", 1, NULL, now - DAY, now + 30 * DAY);
	/* Same subject as CA, another key: a name match, never a signature. */
	testcert_make(&certs[CA2], "Test CA", 1, NULL, now - DAY, now + 30 * DAY);
	testcert_make(&certs[INTER], "Test Intermediate", 1, &certs[CA], now - DAY, now + 30 * DAY);
	testcert_make(&certs[GOOD], "mx.example.test", 0, &certs[CA], now - DAY, now + DAY);
	testcert_make(&certs[DEEP], "mx.example.test", 0, &certs[INTER], now - DAY, now + DAY);
	testcert_make(&certs[EXPIRED], "mx.example.test", 0, &certs[CA], now - 10 * DAY, now - DAY);
	testcert_make(&certs[WRONG], "other.example.net", 0, &certs[CA], now - DAY, now + DAY);
	/* An expired intermediate above a current leaf. */
	testcert_make(&certs[OLDINTER], "Old Intermediate", 1, &certs[CA], now - 10 * DAY, now - DAY);
	testcert_make(&certs[OLDDEEP], "mx.example.test", 0, &certs[OLDINTER], now - DAY, now + DAY);
}

/* A TLSA record for certificate w (usage u, selector s, matching m). */
static void record(struct dane_tlsa *t, unsigned u, unsigned s, unsigned m, enum who w)
{
	gnutls_datum_t obj = certs[w].der, spki = {NULL, 0};
	gnutls_pubkey_t key;
	/* Each record made keeps its own data (the struct borrows it). */
	static unsigned char pool[16][DANE_DATA_MAX];
	static size_t npool;
	unsigned char *buf = pool[npool++ % 16];

	memset(t, 0, sizeof(*t));
	t->data = buf;
	t->usage = (uint8_t)u;
	t->selector = (uint8_t)s;
	t->mtype = (uint8_t)m;
	if (s == DANE_SEL_SPKI) {
		OK(gnutls_pubkey_init(&key));
		OK(gnutls_pubkey_import_x509(key, certs[w].crt, 0));
		OK(gnutls_pubkey_export2(key, GNUTLS_X509_FMT_DER, &spki));
		gnutls_pubkey_deinit(key);
		obj = spki;
	}
	if (m == DANE_MATCH_SHA256 || m == DANE_MATCH_SHA512) {
		OK(gnutls_hash_fast(m == 1 ? GNUTLS_DIG_SHA256 : GNUTLS_DIG_SHA512, obj.data,
				    obj.size, buf));
		t->len = m == 1 ? 32 : 64;
	} else {
		RL_REQUIRE(obj.size <= DANE_DATA_MAX);
		memcpy(buf, obj.data, obj.size);
		t->len = obj.size;
	}
	gnutls_free(spki.data);
}

struct rspec {
	unsigned u, s, m;
	enum who w;
};

struct match_case {
	const char *what;
	struct rspec recs[3];
	size_t nrecs;
	enum who chain[3]; /* as the server sends it, leaf first */
	size_t nchain;
	const char *base; /* the MX host name */
	const char *name; /* one extra name pattern, or NULL */
	time_t skew;	  /* added to the current time for now */
	int pass;
	size_t which;	    /* the matching record, when pass */
	const char *reason; /* a part of the reason, when not pass */
};

#define MX	       "mx.example.test"
#define R1(u, s, m, w) {{u, s, m, w}}, 1
#define NOMATCH	       "no TLSA record matches ("

/* One case a line reads best. */
// clang-format off
static const struct match_case cases[] = {
    {"3 1 1 match", R1(3, 1, 1, GOOD), {GOOD, CA}, 2, MX, NULL, 0, 1, 0, NULL},
    {"3 1 1 mismatch", R1(3, 1, 1, WRONG), {GOOD, CA}, 2, MX, NULL, 0, 0, 0, NOMATCH "3 1 1 "},
    {"3 0 1 match", R1(3, 0, 1, GOOD), {GOOD}, 1, MX, NULL, 0, 1, 0, NULL},
    {"3 0 0 full DER", R1(3, 0, 0, GOOD), {GOOD, CA}, 2, MX, NULL, 0, 1, 0, NULL},
    {"3 1 0 full SPKI", R1(3, 1, 0, GOOD), {GOOD, CA}, 2, MX, NULL, 0, 1, 0, NULL},
    {"3 1 2 SHA-512", R1(3, 1, 2, GOOD), {GOOD, CA}, 2, MX, NULL, 0, 1, 0, NULL},
    {"3 0 2 of the CA: EE looks at the leaf only",
     R1(3, 0, 2, CA), {GOOD, CA}, 2, MX, NULL, 0, 0, 0, NOMATCH "3 0 2 "},
    {"3 x x ignores names", R1(3, 1, 1, WRONG), {WRONG, CA}, 2, MX, NULL, 0, 1, 0, NULL},
    {"3 1 1 expired leaf passes", R1(3, 1, 1, EXPIRED), {EXPIRED, CA}, 2, MX, NULL, 0, 1, 0, NULL},
    {"2 0 1 CA sent", R1(2, 0, 1, CA), {GOOD, CA}, 2, MX, NULL, 0, 1, 0, NULL},
    {"2 1 1 CA sent", R1(2, 1, 1, CA), {GOOD, CA}, 2, MX, NULL, 0, 1, 0, NULL},
    {"2 0 0 CA sent", R1(2, 0, 0, CA), {GOOD, CA}, 2, MX, NULL, 0, 1, 0, NULL},
    {"2 0 1 CA not sent", R1(2, 0, 1, CA), {GOOD}, 1, MX, NULL, 0, 0, 0, NOMATCH "2 0 1 "},
    {"2 0 1 intermediate anchor, CA not sent",
     R1(2, 0, 1, INTER), {DEEP, INTER}, 2, MX, NULL, 0, 1, 0, NULL},
    {"2 1 2 intermediate anchor, CA sent",
     R1(2, 1, 2, INTER), {DEEP, INTER, CA}, 3, MX, NULL, 0, 1, 0, NULL},
    {"2 0 1 CA through the intermediate",
     R1(2, 0, 1, CA), {DEEP, INTER, CA}, 3, MX, NULL, 0, 1, 0, NULL},
    {"2 0 1 CA, chain out of order",
     R1(2, 0, 1, CA), {DEEP, CA, INTER}, 3, MX, NULL, 0, 1, 0, NULL},
    {"2 0 1 CA, intermediate missing",
     R1(2, 0, 1, CA), {DEEP, CA}, 2, MX, NULL, 0, 0, 0,
     "DANE-TA: the server's chain does not lead to the anchor"},
    {"2 0 1 same-named CA, other key",
     R1(2, 0, 1, CA2), {GOOD, CA2}, 2, MX, NULL, 0, 0, 0, "DANE-TA: "},
    {"2 0 1 the leaf is no anchor",
     R1(2, 0, 1, GOOD), {GOOD, CA}, 2, MX, NULL, 0, 0, 0, NOMATCH "2 0 1 "},
    {"2 0 1 expired leaf fails",
     R1(2, 0, 1, CA), {EXPIRED, CA}, 2, MX, NULL, 0, 0, 0, "; DANE-TA: certificate has expired"},
    {"2 0 1 dates at the given now",
     R1(2, 0, 1, CA), {GOOD, CA}, 2, MX, NULL, 2 * DAY, 0, 0, "DANE-TA: certificate has expired"},
    {"2 0 1 leaf not yet valid at now",
     R1(2, 0, 1, CA), {GOOD, CA}, 2, MX, NULL, -2 * DAY, 0, 0,
     "DANE-TA: certificate is not yet valid"},
    {"2 0 1 expired anchor", R1(2, 0, 1, OLDINTER), {OLDDEEP, OLDINTER}, 2, MX, NULL, 0, 0, 0,
     "DANE-TA: certificate has expired"},
    {"2 0 1 expired certificate on the path", R1(2, 0, 1, CA), {OLDDEEP, OLDINTER, CA}, 3, MX,
     NULL, 0, 0, 0, "DANE-TA: certificate has expired"},
    {"3 1 1 under an expired intermediate", R1(3, 1, 1, OLDDEEP), {OLDDEEP, OLDINTER, CA}, 3, MX,
     NULL, 0, 1, 0, NULL},
    {"2 0 1 wrong name",
     R1(2, 0, 1, CA), {WRONG, CA}, 2, MX, NULL, 0, 0, 0,
     "DANE-TA: certificate name does not match"},
    {"2 0 1 wrong name, names[] has it",
     R1(2, 0, 1, CA), {WRONG, CA}, 2, MX, "other.example.net", 0, 1, 0, NULL},
    {"2 0 1 wrong name, names[] suffix",
     R1(2, 0, 1, CA), {WRONG, CA}, 2, MX, ".example.net", 0, 1, 0, NULL},
    {"2 0 1 base case and trailing dot",
     R1(2, 0, 1, CA), {GOOD, CA}, 2, "MX.Example.TEST.", NULL, 0, 1, 0, NULL},
    {"2 0 1 other base",
     R1(2, 0, 1, CA), {GOOD, CA}, 2, "mx2.example.test", NULL, 0, 0, 0,
     "certificate name does not match"},
    {"2 0 1 no base, names[] has it", R1(2, 0, 1, CA), {GOOD, CA}, 2, NULL, MX, 0, 1, 0, NULL},
    {"mixed: only the 2 matches",
     {{3, 1, 1, WRONG}, {2, 0, 1, CA}}, 2, {GOOD, CA}, 2, MX, NULL, 0, 1, 1, NULL},
    {"mixed: only the 3 matches",
     {{2, 0, 1, INTER}, {3, 1, 1, GOOD}}, 2, {GOOD, CA}, 2, MX, NULL, 0, 1, 1, NULL},
    {"mixed: none matches",
     {{2, 0, 1, INTER}, {3, 1, 1, WRONG}, {3, 0, 1, WRONG}}, 3, {GOOD, CA}, 2, MX, NULL, 0, 0, 0,
     NOMATCH "2 0 1 "},
    {"1 1 1 (PKIX-EE) is never used",
     R1(1, 1, 1, GOOD), {GOOD, CA}, 2, MX, NULL, 0, 0, 0, "no usable TLSA records"},
    {"0 0 1 (PKIX-TA) is never used",
     R1(0, 0, 1, CA), {GOOD, CA}, 2, MX, NULL, 0, 0, 0, "no usable TLSA records"},
    {"PKIX-EE skipped, DANE-EE mismatch",
     {{1, 1, 1, GOOD}, {3, 1, 1, WRONG}}, 2, {GOOD, CA}, 2, MX, NULL, 0, 0, 0, NOMATCH "3 1 1 "},
    {"selector 2 is unusable",
     R1(3, 2, 1, GOOD), {GOOD}, 1, MX, NULL, 0, 0, 0, "no usable TLSA records"},
    {"matching 3 is unusable",
     R1(3, 1, 3, GOOD), {GOOD}, 1, MX, NULL, 0, 0, 0, "no usable TLSA records"},
    {"empty chain", R1(3, 1, 1, GOOD), {GOOD}, 0, MX, NULL, 0, 0, 0, "no server certificate"},
    {"empty set", {{0}}, 0, {GOOD}, 1, MX, NULL, 0, 0, 0, "no usable TLSA records"},
};
// clang-format on

static struct dane_tlsa set[3];

static void run_case(size_t i, const struct match_case *c, time_t now)
{
	gnutls_datum_t chain[3];
	struct cert_pattern pat;
	char reason[300];
	size_t which = 99;
	int rc;

	for (size_t r = 0; r < c->nrecs; r++)
		record(&set[r], c->recs[r].u, c->recs[r].s, c->recs[r].m, c->recs[r].w);
	for (size_t k = 0; k < c->nchain; k++)
		chain[k] = certs[c->chain[k]].der;
	if (c->name)
		rl_strlcpy(pat.name, c->name, sizeof(pat.name));
	rc = dane_match(set, c->nrecs, c->nchain ? chain : NULL, c->nchain, c->base,
			c->name ? &pat : NULL, c->name ? 1 : 0, now + c->skew, &which, reason,
			sizeof(reason));
	CHECK(rc == (c->pass ? 0 : RL_EPOLICY), "case %zu (%s): rc %d want pass %d: %s", i, c->what,
	      rc, c->pass, reason);
	if (c->pass)
		CHECK(which == c->which, "case %zu (%s): which %zu want %zu", i, c->what, which,
		      c->which);
	else
		CHECK(strstr(reason, c->reason) != NULL, "case %zu (%s): reason \"%s\" want \"%s\"",
		      i, c->what, reason, c->reason);
}

/* The reason names the record as text: its usage, selector, type, data. */
static void test_reason_text(time_t now)
{
	char reason[300], want[80];
	gnutls_datum_t chain = certs[GOOD].der;
	size_t which;

	record(&set[0], 3, 1, 1, WRONG);
	snprintf(want, sizeof(want), NOMATCH "3 1 1 %02X%02X%02X%02X%02X%02X%02X%02X...)",
		 set[0].data[0], set[0].data[1], set[0].data[2], set[0].data[3], set[0].data[4],
		 set[0].data[5], set[0].data[6], set[0].data[7]);
	CHECK(dane_match(set, 1, &chain, 1, MX, NULL, 0, now, &which, reason, sizeof(reason)) ==
		  RL_EPOLICY,
	      "mismatch");
	CHECK_STR(reason, want);
	/* A short buffer truncates; NULL reason is allowed. */
	CHECK(dane_match(set, 1, &chain, 1, MX, NULL, 0, now, &which, reason, 10) == RL_EPOLICY,
	      "short");
	CHECK(strlen(reason) == 9, "short reason \"%s\"", reason);
	CHECK(dane_match(set, 1, &chain, 1, MX, NULL, 0, now, NULL, NULL, 0) == RL_EPOLICY, "null");
}

/* Bytes that are no certificate never match a selector 1 or DANE-TA
 * record, and do not crash. */
static void test_garbage(time_t now)
{
	unsigned char junk[64] = {0x30, 0x82, 0x01};
	gnutls_datum_t chain[2] = {{junk, sizeof(junk)}, {junk, 3}};
	char reason[300];
	size_t which;

	record(&set[0], 3, 1, 1, GOOD);
	record(&set[1], 2, 0, 1, CA);
	CHECK(dane_match(set, 2, chain, 2, MX, NULL, 0, now, &which, reason, sizeof(reason)) ==
		  RL_EPOLICY,
	      "garbage: %s", reason);
	/* Full-DER DANE-EE compares the bytes as sent, decodable or not. */
	set[0].usage = 3;
	set[0].selector = 0;
	set[0].mtype = 0;
	set[0].data = junk;
	set[0].len = sizeof(junk);
	CHECK(dane_match(set, 1, chain, 2, MX, NULL, 0, now, &which, reason, sizeof(reason)) == 0,
	      "garbage 3 0 0: %s", reason);
}

int main(void)
{
	time_t now = time(NULL);

	make_all(now);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(i, &cases[i], now);
	test_reason_text(now);
	test_garbage(now);
	for (size_t i = 0; i < NWHO; i++)
		testcert_free(&certs[i]);
	return TEST_DONE();
}
