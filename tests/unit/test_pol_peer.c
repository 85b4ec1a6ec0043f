/*
 * test_pol_peer: the one certificate decision (policy/pol_peer.c) that the
 * relay and `certs probe` share.  Every level, from a policy line through
 * pol_table_parse(), pol_peer_resolve() and pol_peer_check(), against real
 * certificates made here with the GnuTLS API: a CA, a leaf it signed for
 * mx.example.test, one for another name, and a self-signed leaf.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "pol_peer.h"
#include "tap.h"
#include "testcert.h"

#define PEER "mx.example.test[127.0.0.1]:25"

static struct made ca, good, wrong, self;

#define OK(expr) RL_REQUIRE((expr) >= 0)

/* A certificate for cn valid around now, signed by issuer (NULL: itself). */
static void make(struct made *m, const char *cn, int is_ca, const struct made *issuer)
{
	time_t now = time(NULL);

	testcert_make(m, cn, is_ca, issuer, now - 3600, now + 86400);
}

/* A trust list holding the CA (its own copy: the list frees it). */
static gnutls_x509_trust_list_t ca_trust(void)
{
	gnutls_x509_trust_list_t tl;
	gnutls_x509_crt_t c;

	OK(gnutls_x509_trust_list_init(&tl, 0));
	OK(gnutls_x509_crt_init(&c));
	OK(gnutls_x509_crt_import(c, &ca.der, GNUTLS_X509_FMT_DER));
	RL_REQUIRE(gnutls_x509_trust_list_add_cas(tl, &c, 1, 0) == 1);
	return tl;
}

/* Chains the server may show. */
enum chain { NOCERT, GOOD, GOOD_CA, WRONG, SELF };
/* The digest that a fingerprint entry's match= names. */
enum fp { FP_NONE, FP_SELF_CERT, FP_SELF_PKEY, FP_SELF_SHA1, FP_GOOD_CERT };

struct peer_case {
	const char *entry; /* the policy line's level and attributes; NULL: default level */
	enum fp fp;
	int anchors; /* 1: the CA is trusted; 0: no anchors */
	enum chain chain;
	int pass;
	const char *trust;  /* the word of the TLS line */
	const char *reason; /* the start of the reason */
};

#define NOTVER "Server certificate not verified: "
#define NOTTRU "Server certificate not trusted ("
#define NODANE                                                                                     \
	"TLS is required with DANE authentication, but no usable TLSA records "                    \
	"are available for " PEER

static const struct peer_case cases[] = {
    {"none", FP_NONE, 1, GOOD, 1, "Trusted", "the relay would not use TLS"},
    {"none", FP_NONE, 1, NOCERT, 1, "Anonymous", "no certificate"},
    {"may", FP_NONE, 1, SELF, 1, "Untrusted", "no authentication required"},
    {"may", FP_NONE, 1, NOCERT, 1, "Anonymous", "no certificate"},
    {"encrypt", FP_NONE, 1, GOOD, 1, "Trusted", "no authentication required"},
    {"encrypt", FP_NONE, 1, SELF, 1, "Untrusted", "no authentication required"},
    {"encrypt", FP_NONE, 0, GOOD, 1, "Untrusted", "no authentication required"},
    {"dane", FP_NONE, 1, GOOD, 1, "Trusted", "no usable TLSA records: encrypt"},
    {"dane", FP_NONE, 1, SELF, 1, "Untrusted", "no usable TLSA records: encrypt"},
    /* No TLSA lookup yet: dane-only defers even a certificate verify passes. */
    {"dane-only", FP_NONE, 1, GOOD, 0, "Trusted", NODANE},
    {"dane-only", FP_NONE, 1, SELF, 0, "Untrusted", NODANE},
    {"dane-only", FP_NONE, 1, NOCERT, 0, "Anonymous", NOTVER "no certificate"},
    {NULL, FP_NONE, 1, GOOD_CA, 0, "Trusted", NODANE}, /* default_tls_level */
    {"fingerprint", FP_SELF_CERT, 1, SELF, 1, "Verified", "certificate digest matched"},
    {"fingerprint", FP_SELF_PKEY, 1, SELF, 1, "Verified", "public key digest matched"},
    {"fingerprint", FP_SELF_SHA1, 0, SELF, 1, "Verified", "certificate digest matched"},
    {"fingerprint", FP_GOOD_CERT, 1, SELF, 0, "Untrusted", NOTVER "no match= fingerprint matches"},
    {"fingerprint", FP_SELF_CERT, 1, NOCERT, 0, "Anonymous", NOTVER "no certificate"},
    {"verify", FP_NONE, 1, GOOD, 1, "Verified", "name matched mx.example.test"},
    {"verify", FP_NONE, 1, GOOD_CA, 1, "Verified", "name matched mx.example.test"},
    {"verify", FP_NONE, 1, WRONG, 0, "Trusted",
     NOTVER "name mismatch (expected mx.example.test; certificate CN=other.example.net)"},
    {"verify", FP_NONE, 1, SELF, 0, "Untrusted", NOTTRU},
    {"verify", FP_NONE, 0, GOOD, 0, "Untrusted", NOTTRU},
    {"verify", FP_NONE, 1, NOCERT, 0, "Anonymous", NOTVER "no certificate"},
    {"secure", FP_NONE, 1, GOOD, 1, "Verified", "name matched mx.example.test"},
    {"secure match=mx.other.test", FP_NONE, 1, GOOD, 0, "Trusted",
     NOTVER "name mismatch (expected mx.other.test; certificate CN=mx.example.test)"},
    {"secure", FP_NONE, 1, SELF, 0, "Untrusted", NOTTRU},
    {"secure", FP_NONE, 1, NOCERT, 0, "Anonymous", NOTVER "no certificate"},
};

/* The match= text for a case's fingerprint entry. */
static void fp_text(enum fp fp, char *out, size_t size)
{
	const gnutls_datum_t *der = fp == FP_GOOD_CERT ? &good.der : &self.der;
	struct fpr_digest d;
	char hex[FPR_TEXT_SIZE];

	out[0] = '\0';
	if (fp == FP_NONE)
		return;
	OK(fpr_compute(der->data, der->size, fp == FP_SELF_PKEY ? FPR_PUBKEY : FPR_CERT,
		       fp == FP_SELF_SHA1 ? FPR_SHA1_LEN : FPR_SHA256_LEN, &d));
	fpr_format(&d, hex, sizeof(hex));
	snprintf(out, size, " match=%s", hex);
}

/* The chain of a case, leaf first; *n certificates. */
static const gnutls_datum_t *chain_of(enum chain c, gnutls_datum_t *buf, size_t *n)
{
	*n = c == NOCERT ? 0 : c == GOOD_CA ? 2 : 1;
	buf[0] = c == WRONG ? wrong.der : c == SELF ? self.der : good.der;
	buf[1] = ca.der;
	return c == NOCERT ? NULL : buf;
}

static void run_case(size_t i, const struct peer_case *c, gnutls_x509_trust_list_t tl)
{
	char line[512], fp[FPR_TEXT_SIZE + 16], reason[600];
	struct pol_table *t = NULL;
	struct pol_peer_sess sess;
	struct pol_verdict v;
	gnutls_datum_t buf[2];
	const gnutls_datum_t *chain;
	size_t n;
	int rc;

	fp_text(c->fp, fp, sizeof(fp));
	snprintf(line, sizeof(line), "example.test %s%s\n", c->entry ? c->entry : "dane", fp);
	CHECK(pol_table_parse("p", line, strlen(line), &t, NULL) == 0, "case %zu: %s", i, line);
	rc = pol_peer_resolve(c->entry ? pol_table_lookup(t, "example.test") : NULL,
			      POL_LEVEL_DANE_ONLY, "example.test", "mx.example.test",
			      c->anchors ? tl : NULL, NULL, &sess, reason, sizeof(reason));
	CHECK(rc == 0, "case %zu: resolve: %s", i, reason);
	chain = chain_of(c->chain, buf, &n);
	rc = pol_peer_check(&sess.pol, PEER, chain, n, &v, reason, sizeof(reason));
	CHECK(rc == (c->pass ? 0 : RL_EPOLICY) && v.pass == c->pass,
	      "case %zu (%s, chain %d): got rc %d pass %d want pass %d: %s", i,
	      c->entry ? c->entry : "default", (int)c->chain, rc, v.pass, c->pass, reason);
	CHECK(strcmp(pol_trust_word(v.trust), c->trust) == 0, "case %zu (%s): trust got %s want %s",
	      i, line, pol_trust_word(v.trust), c->trust);
	CHECK(strncmp(reason, c->reason, strlen(c->reason)) == 0,
	      "case %zu (%s): reason got \"%s\" want \"%s...\"", i, line, reason, c->reason);
	CHECK(c->pass ? v.dsn == NULL : v.dsn && strcmp(v.dsn, "4.7.5") == 0, "case %zu: dsn %s", i,
	      v.dsn ? v.dsn : "(none)");
	/* A fingerprint mismatch shows what was seen, for the administrator. */
	CHECK(!!v.seen[0] == (c->fp == FP_GOOD_CERT), "case %zu: seen \"%s\"", i, v.seen);
	pol_table_free(t);
}

static void test_levels(void)
{
	gnutls_x509_trust_list_t tl = ca_trust();
	int covered[POL_LEVEL_COUNT] = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char level[32] = "dane-only";

		run_case(i, &cases[i], tl);
		if (cases[i].entry)
			sscanf(cases[i].entry, "%31s", level);
		covered[pol_level_from_name(level, strlen(level))] = 1;
	}
	for (int l = 0; l < POL_LEVEL_COUNT; l++)
		CHECK(covered[l], "level %s has no case", pol_level_name(l));
	gnutls_x509_trust_list_deinit(tl, 1);
}

/* Resolution: servername=, default match rules, and a host name that
 * cannot be a match name (fails closed before any connection). */
static void test_resolve(void)
{
	static const char text[] = "a.test verify servername=hostname\n"
				   "b.test secure servername=nexthop\n"
				   "c.test encrypt servername=sni.example\n";
	struct pol_table *t = NULL;
	struct pol_peer_sess s;
	char reason[300], names[300];

	RL_REQUIRE(pol_table_parse("p", text, strlen(text), &t, NULL) == 0);
	CHECK_INT(pol_peer_resolve(pol_table_lookup(t, "a.test"), POL_LEVEL_MAY, "a.test",
				   "mx.a.test", NULL, NULL, &s, reason, sizeof(reason)),
		  0);
	CHECK_STR(s.pol.servername, "mx.a.test");
	pol_peer_names_text(&s.pol, names, sizeof(names));
	CHECK_STR(names, "mx.a.test");
	CHECK_INT(pol_peer_resolve(pol_table_lookup(t, "b.test"), POL_LEVEL_MAY, "b.test",
				   "mx.b.test", NULL, NULL, &s, reason, sizeof(reason)),
		  0);
	CHECK_STR(s.pol.servername, "b.test");
	pol_peer_names_text(&s.pol, names, sizeof(names));
	CHECK_STR(names, "b.test, .b.test");
	CHECK_INT(pol_peer_resolve(pol_table_lookup(t, "c.test"), POL_LEVEL_MAY, "c.test",
				   "mx.c.test", NULL, NULL, &s, reason, sizeof(reason)),
		  0);
	CHECK_STR(s.pol.servername, "sni.example");
	CHECK_INT(s.pol.nnames, 0);
	CHECK_INT(pol_peer_resolve(NULL, POL_LEVEL_ENCRYPT, "d.test", "mx.d.test", NULL, NULL, &s,
				   reason, sizeof(reason)),
		  0);
	CHECK_INT(s.pol.level, POL_LEVEL_ENCRYPT);
	CHECK(s.pol.servername == NULL && s.entry == NULL, "defaults: no SNI, no entry");
	CHECK_INT(pol_peer_resolve(pol_table_lookup(t, "a.test"), POL_LEVEL_MAY, "a.test",
				   "bad..host", NULL, NULL, &s, reason, sizeof(reason)),
		  RL_EPARSE);
	CHECK(strncmp(reason, NOTVER "no usable match name for bad..host",
		      strlen(NOTVER "no usable match name for bad..host")) == 0,
	      "got %s", reason);
	pol_table_free(t);
}

/* A DANE-EE 3 0 1 record of certificate m (SHA-256 of its DER). */
static void ee_record(struct dane_tlsa *t, unsigned char *buf, const struct made *m)
{
	OK(gnutls_hash_fast(GNUTLS_DIG_SHA256, m->der.data, m->der.size, buf));
	*t = (struct dane_tlsa){.usage = 3, .selector = 0, .mtype = 1, .len = 32, .data = buf};
}

/*
 * pol_peer_dane: which entries DANE touches, what each state makes of
 * the session, and the verdicts pol_peer_check gives under DANE.
 */
static void test_dane(void)
{
	static const char text[] = "dane.test dane\n"
				   "only.test dane-only\n"
				   "enc.test encrypt\n"
				   "ver.test verify\n";
	static const struct {
		const char *domain; /* NULL: no entry */
		int deflevel;
		int state;
		int rc;
		int level;	/* the level after pol_peer_dane (rc 0) */
		size_t ntlsa;	/* records the session checks */
		const char *reason; /* the start of the reason (rc < 0) */
	} dcases[] = {
	    {"dane.test", POL_LEVEL_MAY, POL_DANE_USABLE, 0, POL_LEVEL_DANE, 1, NULL},
	    {"dane.test", POL_LEVEL_MAY, POL_DANE_NONE, 0, POL_LEVEL_DANE, 0, NULL},
	    {"dane.test", POL_LEVEL_MAY, POL_DANE_UNUSABLE, 0, POL_LEVEL_DANE, 0, NULL},
	    {"dane.test", POL_LEVEL_MAY, POL_DANE_FAIL, RL_EPOLICY, 0, 0, "TLSA lookup error"},
	    {"only.test", POL_LEVEL_MAY, POL_DANE_USABLE, 0, POL_LEVEL_DANE_ONLY, 1, NULL},
	    {"only.test", POL_LEVEL_MAY, POL_DANE_NONE, RL_EPOLICY, 0, 0,
	     "TLS is required with DANE authentication, but mx.x.test has no DNSSEC-secure"},
	    {"only.test", POL_LEVEL_MAY, POL_DANE_UNUSABLE, RL_EPOLICY, 0, 0,
	     "TLS is required with DANE authentication, but mx.x.test has no usable"},
	    /* The administrator's word wins over DANE, failures included. */
	    {"enc.test", POL_LEVEL_MAY, POL_DANE_USABLE, 0, POL_LEVEL_ENCRYPT, 0, NULL},
	    {"enc.test", POL_LEVEL_MAY, POL_DANE_FAIL, 0, POL_LEVEL_ENCRYPT, 0, NULL},
	    {"ver.test", POL_LEVEL_MAY, POL_DANE_USABLE, 0, POL_LEVEL_VERIFY, 0, NULL},
	    /* No entry: DANE raises default_tls_level, whatever it is. */
	    {NULL, POL_LEVEL_ENCRYPT, POL_DANE_USABLE, 0, POL_LEVEL_DANE, 1, NULL},
	    {NULL, POL_LEVEL_NONE, POL_DANE_USABLE, 0, POL_LEVEL_DANE, 1, NULL},
	    {NULL, POL_LEVEL_VERIFY, POL_DANE_USABLE, 0, POL_LEVEL_DANE, 1, NULL},
	    {NULL, POL_LEVEL_ENCRYPT, POL_DANE_NONE, 0, POL_LEVEL_ENCRYPT, 0, NULL},
	    /* Records, none usable: TLS all the same (RFC 7672 2.2), never clear. */
	    {NULL, POL_LEVEL_MAY, POL_DANE_UNUSABLE, 0, POL_LEVEL_ENCRYPT, 0, NULL},
	    {NULL, POL_LEVEL_NONE, POL_DANE_UNUSABLE, 0, POL_LEVEL_ENCRYPT, 0, NULL},
	    {NULL, POL_LEVEL_VERIFY, POL_DANE_UNUSABLE, 0, POL_LEVEL_VERIFY, 0, NULL},
	    {NULL, POL_LEVEL_MAY, POL_DANE_FAIL, RL_EPOLICY, 0, 0, "TLSA lookup error"},
	    {NULL, POL_LEVEL_DANE_ONLY, POL_DANE_NONE, RL_EPOLICY, 0, 0, "TLS is required"},
	};
	static unsigned char buf[32];
	struct dane_tlsa rec;
	struct pol_table *t = NULL;
	struct pol_peer_sess s;
	char reason[300];

	ee_record(&rec, buf, &good);
	RL_REQUIRE(pol_table_parse("p", text, strlen(text), &t, NULL) == 0);
	for (size_t i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		const struct pol_entry *e = dcases[i].domain ? pol_table_lookup(t, dcases[i].domain)
							    : NULL;
		struct pol_dane dn = {dcases[i].state, &rec, 1, "mx.x.test", 1,
				      "TLSA lookup error for _25._tcp.mx.x.test: DNSSEC validation failed"};
		const char *dsn = NULL;
		int rc;

		RL_REQUIRE(!dcases[i].domain || e);
		RL_REQUIRE(pol_peer_resolve(e, dcases[i].deflevel, "x.test", "mx.x.test", NULL, NULL,
					    &s, reason, sizeof(reason)) == 0);
		CHECK_INT(pol_peer_dane_applies(e), !e || e->level == POL_LEVEL_DANE ||
							e->level == POL_LEVEL_DANE_ONLY);
		rc = pol_peer_dane(&s, &dn, "mx.x.test", &dsn, reason, sizeof(reason));
		CHECK(rc == dcases[i].rc, "case %zu: rc %d want %d (%s)", i, rc, dcases[i].rc, reason);
		if (rc < 0) {
			CHECK(strncmp(reason, dcases[i].reason, strlen(dcases[i].reason)) == 0,
			      "case %zu: reason %s", i, reason);
			CHECK(dsn && strcmp(dsn, "4.7.5") == 0, "case %zu: dsn", i);
			continue;
		}
		CHECK(s.pol.level == dcases[i].level, "case %zu: level %d want %d", i, s.pol.level,
		      dcases[i].level);
		CHECK(s.pol.ntlsa == dcases[i].ntlsa, "case %zu: ntlsa %zu", i, s.pol.ntlsa);
		if (s.pol.ntlsa)
			CHECK(s.pol.servername && strcmp(s.pol.servername, "mx.x.test") == 0,
			      "case %zu: SNI is the base domain", i);
	}

	/* The verdicts under DANE: one per state of the MX RRset and chain. */
	{
		struct pol_dane dn = {POL_DANE_USABLE, &rec, 1, "mx.example.test", 1, NULL};
		struct pol_verdict v;
		const char *dsn;

		RL_REQUIRE(pol_peer_resolve(NULL, POL_LEVEL_ENCRYPT, "example.test",
					    "mx.example.test", NULL, NULL, &s, reason,
					    sizeof(reason)) == 0);
		RL_REQUIRE(pol_peer_dane(&s, &dn, "mx.example.test", &dsn, reason,
					 sizeof(reason)) == 0);
		CHECK_INT(pol_peer_check(&s.pol, PEER, &good.der, 1, &v, reason, sizeof(reason)),
			  0);
		CHECK(v.dane && v.trust == POL_TRUST_VERIFIED, "match: Verified, dane");
		CHECK(strncmp(reason, "TLSA record matched (3 0 1 ", 27) == 0, "got %s", reason);
		CHECK_INT(pol_peer_check(&s.pol, PEER, &wrong.der, 1, &v, reason, sizeof(reason)),
			  RL_EPOLICY);
		CHECK(!v.dane && v.dsn && strcmp(v.dsn, "4.7.5") == 0, "mismatch: 4.7.5");
		CHECK(strncmp(reason, NOTVER "no TLSA record matches (3 0 1 ",
			      strlen(NOTVER "no TLSA record matches (3 0 1 ")) == 0,
		      "got %s", reason);
		/* A bare key (no certificate) never passes DANE. */
		CHECK_INT(pol_peer_check(&s.pol, PEER, NULL, 0, &v, reason, sizeof(reason)),
			  RL_EPOLICY);
		/* An insecure MX RRset: the same match is only Trusted. */
		dn.mx_secure = 0;
		RL_REQUIRE(pol_peer_resolve(NULL, POL_LEVEL_ENCRYPT, "example.test",
					    "mx.example.test", NULL, NULL, &s, reason,
					    sizeof(reason)) == 0);
		RL_REQUIRE(pol_peer_dane(&s, &dn, "mx.example.test", &dsn, reason,
					 sizeof(reason)) == 0);
		CHECK_INT(pol_peer_check(&s.pol, PEER, &good.der, 1, &v, reason, sizeof(reason)),
			  0);
		CHECK(v.dane && v.trust == POL_TRUST_TRUSTED, "insecure MX: Trusted");
		/* REQUIRETLS: only what can end Verified will do. */
		CHECK_INT(pol_peer_can_verify(&s.pol), 0);
		s.pol.dane_mx_secure = 1;
		CHECK_INT(pol_peer_can_verify(&s.pol), 1);
		s.pol.ntlsa = 0;
		s.pol.level = POL_LEVEL_ENCRYPT;
		CHECK_INT(pol_peer_can_verify(&s.pol), 0);
		s.pol.level = POL_LEVEL_DANE;
		CHECK_INT(pol_peer_can_verify(&s.pol), 0);
		s.pol.level = POL_LEVEL_VERIFY;
		CHECK_INT(pol_peer_can_verify(&s.pol), 1);
		s.pol.level = POL_LEVEL_FINGERPRINT;
		CHECK_INT(pol_peer_can_verify(&s.pol), 1);
	}
	pol_table_free(t);
}

int main(void)
{
	make(&ca, "Test CA", 1, NULL);
	make(&good, "mx.example.test", 0, &ca);
	make(&wrong, "other.example.net", 0, &ca);
	make(&self, "mx.example.test", 0, NULL);
	test_levels();
	test_resolve();
	test_dane();
	testcert_free(&self);
	testcert_free(&wrong);
	testcert_free(&good);
	testcert_free(&ca);
	return TEST_DONE();
}
