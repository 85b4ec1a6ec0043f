/*
 * test_pol_relay: who may relay (pol_relay_decide) over every combination
 * of what a session knows, and the relay_clientcerts parser.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pol_relay.h"
#include "tap.h"

/* Digest text of 32 bytes all equal to b. */
static void digest_text(unsigned char b, char *out, size_t size)
{
	struct fpr_digest d = {FPR_SHA256_LEN, {0}};

	memset(d.bytes, b, sizeof(d.bytes));
	fpr_format(&d, out, size);
}

static struct fpr_digest digest_of(unsigned char b)
{
	struct fpr_digest d = {FPR_SHA256_LEN, {0}};

	memset(d.bytes, b, sizeof(d.bytes));
	return d;
}

static struct pol_ccerts *parse_ok(const char *text)
{
	struct pol_ccerts *l = NULL;
	struct pol_errors errs;
	int rc = pol_ccerts_parse("f", text, strlen(text), &l, &errs);

	CHECK(rc == 0 && l, "rc %d: %s", rc, errs.count ? errs.e[0].msg : "");
	return l;
}

/* mynetworks of the tests: 127.0.0.1/32 and [::1]/128. */
static const struct rl_net test_nets[] = {
    {AF_INET, {127, 0, 0, 1}, 32},
    {AF_INET6, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128},
};

/* A client address from text (IPv4 or IPv6) into ss. */
static const struct sockaddr *client_addr(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		CHECK(inet_pton(AF_INET6, text, &a->sin6_addr) == 1, "address %s", text);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		CHECK(inet_pton(AF_INET, text, &a->sin_addr) == 1, "address %s", text);
	}
	return (const struct sockaddr *)ss;
}

/* The client address against the networks, as the decision sees it. */
static void test_networks(void)
{
	static const struct {
		const char *client; /* NULL: unknown */
		size_t nnets;	    /* of test_nets */
		enum pol_relay_by want;
	} cases[] = {
	    {"127.0.0.1", 2, POL_RELAY_NETWORK},
	    {"127.0.0.9", 2, POL_RELAY_DENY},
	    {"192.0.2.1", 2, POL_RELAY_DENY},
	    {"::1", 2, POL_RELAY_NETWORK},
	    {"::2", 2, POL_RELAY_DENY},
	    {"::ffff:127.0.0.1", 2, POL_RELAY_NETWORK}, /* a dual-stack listener's IPv4 client */
	    {"::ffff:127.0.0.9", 2, POL_RELAY_DENY},
	    {"::127.0.0.1", 2, POL_RELAY_DENY}, /* IPv4-compatible is not mapped */
	    {"127.0.0.1", 0, POL_RELAY_DENY},   /* mynetworks empty */
	    {"::1", 1, POL_RELAY_DENY},	    /* only the IPv4 network */
	    {NULL, 2, POL_RELAY_DENY},
	};
	static const struct rl_net wide[] = {{AF_INET, {10}, 8}, {AF_INET6, {0x20, 0x01, 0x0d, 0xb8}, 32}};
	struct sockaddr_storage ss;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pol_relay_in in = {0};

		in.client = cases[i].client ? client_addr(cases[i].client, &ss) : NULL;
		in.mynetworks = test_nets;
		in.nmynetworks = cases[i].nnets;
		CHECK(pol_relay_decide(&in, NULL) == cases[i].want, "%s with %zu networks",
		      cases[i].client ? cases[i].client : "(none)", cases[i].nnets);
	}
	{
		struct pol_relay_in in = {0};

		in.mynetworks = wide;
		in.nmynetworks = 2;
		in.client = client_addr("10.200.3.4", &ss);
		CHECK(pol_relay_decide(&in, NULL) == POL_RELAY_NETWORK, "10/8");
		in.client = client_addr("11.0.0.1", &ss);
		CHECK(pol_relay_decide(&in, NULL) == POL_RELAY_DENY, "outside 10/8");
		in.client = client_addr("2001:db8:ffff::1", &ss);
		CHECK(pol_relay_decide(&in, NULL) == POL_RELAY_NETWORK, "2001:db8::/32");
		in.client = client_addr("2001:db9::1", &ss);
		CHECK(pol_relay_decide(&in, NULL) == POL_RELAY_DENY, "outside 2001:db8::/32");
	}
}

/*
 * Every combination: address in mynetworks or not; no certificate, one
 * listed by certificate digest, by public-key digest, or not listed; CA
 * verified or not; authenticated, not, or with an empty identity.  The
 * want column is written out, one row per case, Postfix's order
 * (mynetworks, client certificate, AUTH) deciding the name.
 */
static void test_decide(void)
{
	enum { NONE, BY_CERT, BY_SPKI, UNLISTED };
	static const struct {
		int net, cert, ca;
		const char *user;
		enum pol_relay_by want;
	} cases[] = {
	    /* outside mynetworks */
	    {0, NONE, 0, NULL, POL_RELAY_DENY},
	    {0, NONE, 0, "", POL_RELAY_DENY},
	    {0, NONE, 0, "alice", POL_RELAY_AUTH},
	    {0, NONE, 1, NULL, POL_RELAY_DENY}, /* a verdict without a certificate is void */
	    {0, NONE, 1, "alice", POL_RELAY_AUTH},
	    {0, BY_CERT, 0, NULL, POL_RELAY_CERTIFICATE},
	    {0, BY_CERT, 0, "alice", POL_RELAY_CERTIFICATE},
	    {0, BY_CERT, 1, NULL, POL_RELAY_CERTIFICATE},
	    {0, BY_SPKI, 0, NULL, POL_RELAY_CERTIFICATE},
	    {0, BY_SPKI, 1, "", POL_RELAY_CERTIFICATE},
	    {0, UNLISTED, 0, NULL, POL_RELAY_DENY},
	    {0, UNLISTED, 0, "", POL_RELAY_DENY},
	    {0, UNLISTED, 0, "alice", POL_RELAY_AUTH},
	    {0, UNLISTED, 1, NULL, POL_RELAY_CERTIFICATE},
	    {0, UNLISTED, 1, "alice", POL_RELAY_CERTIFICATE},
	    /* inside mynetworks: always, and named so */
	    {1, NONE, 0, NULL, POL_RELAY_NETWORK},
	    {1, NONE, 0, "alice", POL_RELAY_NETWORK},
	    {1, BY_CERT, 0, NULL, POL_RELAY_NETWORK},
	    {1, BY_SPKI, 1, "alice", POL_RELAY_NETWORK},
	    {1, UNLISTED, 0, "", POL_RELAY_NETWORK},
	    {1, UNLISTED, 1, NULL, POL_RELAY_NETWORK},
	};
	char a[FPR_TEXT_SIZE], b[FPR_TEXT_SIZE], text[512];
	struct pol_ccerts *l;
	struct sockaddr_storage ss;
	size_t covered = 0;

	/* Listed: 0xAA (a certificate digest) and 0xBB (a public key digest). */
	digest_text(0xAA, a, sizeof(a));
	digest_text(0xBB, b, sizeof(b));
	snprintf(text, sizeof(text), "match=%s\nmatch=%s\n", a, b);
	l = parse_ok(text);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pol_relay_in in = {0};
		const char *why = NULL;
		enum pol_relay_by got;

		in.client = client_addr(cases[i].net ? "127.0.0.1" : "127.0.0.9", &ss);
		in.mynetworks = test_nets;
		in.nmynetworks = 2;
		in.cert_presented = cases[i].cert != NONE;
		in.cert_sha256 = digest_of(cases[i].cert == BY_CERT ? 0xAA : 0x01);
		in.spki_sha256 = digest_of(cases[i].cert == BY_SPKI ? 0xBB : 0x02);
		in.listed = l;
		in.ca_verified = cases[i].ca;
		in.auth_user = cases[i].user;
		got = pol_relay_decide(&in, &why);
		CHECK(got == cases[i].want, "case %zu: got %s want %s", i, pol_relay_by_name(got),
		      pol_relay_by_name(cases[i].want));
		CHECK(why && why[0], "case %zu: no reason", i);
		/* The same without a list: only a listed digest changes. */
		in.listed = NULL;
		got = pol_relay_decide(&in, NULL);
		if (cases[i].want == POL_RELAY_CERTIFICATE && !cases[i].ca)
			CHECK(got == (cases[i].user && cases[i].user[0] ? POL_RELAY_AUTH
									: POL_RELAY_DENY),
			      "case %zu without list: got %s", i, pol_relay_by_name(got));
		else
			CHECK(got == cases[i].want, "case %zu without list: got %s", i,
			      pol_relay_by_name(got));
	}
	/*
	 * All 48 combinations against the contract's sentence: mynetworks, or
	 * a listed certificate or public key, or a chain verified to
	 * relay_client_ca_file, or AUTH; else refused.
	 */
	for (int net = 0; net < 2; net++)
		for (int cert = NONE; cert <= UNLISTED; cert++)
			for (int ca = 0; ca < 2; ca++)
				for (int u = 0; u < 3; u++) {
					static const char *const users[] = {NULL, "", "bob"};
					struct pol_relay_in in = {0};
					enum pol_relay_by want = POL_RELAY_DENY, got;

					in.client = client_addr(net ? "::1" : "::9", &ss);
					in.mynetworks = test_nets;
					in.nmynetworks = 2;
					in.cert_presented = cert != NONE;
					in.cert_sha256 = digest_of(cert == BY_CERT ? 0xAA : 0x03);
					in.spki_sha256 = digest_of(cert == BY_SPKI ? 0xBB : 0x04);
					in.listed = l;
					in.ca_verified = ca;
					in.auth_user = users[u];
					if (net)
						want = POL_RELAY_NETWORK;
					else if (cert == BY_CERT || cert == BY_SPKI ||
						 (cert != NONE && ca))
						want = POL_RELAY_CERTIFICATE;
					else if (u == 2)
						want = POL_RELAY_AUTH;
					got = pol_relay_decide(&in, NULL);
					CHECK(got == want,
					      "net %d cert %d ca %d user %d: got %s want %s", net,
					      cert, ca, u, pol_relay_by_name(got),
					      pol_relay_by_name(want));
					covered++;
				}
	CHECK_INT(covered, 48);
	pol_ccerts_free(l);
	CHECK_STR(pol_relay_by_name(POL_RELAY_DENY), "deny");
	CHECK_STR(pol_relay_by_name(POL_RELAY_NETWORK), "network");
	CHECK_STR(pol_relay_by_name(POL_RELAY_CERTIFICATE), "certificate");
	CHECK_STR(pol_relay_by_name(POL_RELAY_AUTH), "auth");
}

/* The text `tlsrelay certs fingerprint` prints, and the other accepted forms. */
static void test_parse_ok(void)
{
	char a[FPR_TEXT_SIZE], b[FPR_TEXT_SIZE], c[FPR_TEXT_SIZE], lower[FPR_TEXT_SIZE];
	char text[2048];
	struct pol_ccerts *l;

	digest_text(0xAA, a, sizeof(a));
	digest_text(0xBB, b, sizeof(b));
	digest_text(0xCC, c, sizeof(c));
	for (size_t i = 0; i < sizeof(lower); i++)
		lower[i] = (char)(a[i] >= 'A' && a[i] <= 'F' ? a[i] + 32 : a[i]);
	/* What certs fingerprint prints, as is. */
	snprintf(text, sizeof(text),
		 "# SHA-256 of certificate CN=client.test\nmatch=%s\n"
		 "# SHA-256 of public key\nmatch=%s\n",
		 a, b);
	l = parse_ok(text);
	CHECK_INT(pol_ccerts_count(l), 2);
	{
		struct fpr_digest da = digest_of(0xAA), db = digest_of(0xBB), dc = digest_of(0xCC);
		struct fpr_digest sha1 = {FPR_SHA1_LEN, {0}};

		memset(sha1.bytes, 0xAA, FPR_SHA1_LEN);
		CHECK_INT(pol_ccerts_listed(l, &da), 1);
		CHECK_INT(pol_ccerts_listed(l, &db), 1);
		CHECK_INT(pol_ccerts_listed(l, &dc), 0);
		CHECK_INT(pol_ccerts_listed(l, &sha1), 0);
		CHECK_INT(pol_ccerts_listed(NULL, &da), 0);
	}
	pol_ccerts_free(l);
	/* Several per line, '|' joined, blanks, CRLF, comments, duplicates, Postfix form. */
	snprintf(text, sizeof(text),
		 "\n   \n\t# indented comment\r\n  match=%s match=%s|%s  # laptop\r\n"
		 "match=%s\n%s mail.example.com OK\n%s\n",
		 a, b, c, lower, c, a);
	l = parse_ok(text);
	CHECK_INT(pol_ccerts_count(l), 3);
	pol_ccerts_free(l);
	/* Empty file, comments only: an empty list, no error. */
	l = parse_ok("");
	CHECK_INT(pol_ccerts_count(l), 0);
	pol_ccerts_free(l);
	l = parse_ok("# nothing yet\n");
	CHECK_INT(pol_ccerts_count(l), 0);
	pol_ccerts_free(l);
	pol_ccerts_free(NULL);
	CHECK_INT(pol_ccerts_count(NULL), 0);
}

/* fmt with every "%s" replaced by d. */
static void subst(const char *fmt, const char *d, char *out, size_t size)
{
	size_t j = 0;

	for (const char *p = fmt; *p && j + FPR_TEXT_SIZE + 1 < size; p++) {
		if (p[0] == '%' && p[1] == 's') {
			memcpy(out + j, d, strlen(d));
			j += strlen(d);
			p++;
			continue;
		}
		out[j++] = *p;
	}
	out[j] = '\0';
}

/* Every error is FILE:LINE: message, all reported, and no list comes back. */
static void test_parse_errors(void)
{
	char a[FPR_TEXT_SIZE], text[1024];
	static const struct {
		const char *fmt;  /* %s: a good digest */
		const char *want; /* first message */
		size_t nerr;
	} cases[] = {
	    {"match=%s\nmatch=zz\n", "f:2: bad digest \"zz\"", 1},
	    {"match=\n", "f:1: empty match=", 1},
	    {"match=%s|\n", "f:1: empty digest", 1},
	    {"match=%s||%s\n", "f:1: empty digest", 1},
	    {"match=%s extra\n", "f:1: expected match=DIGEST, got \"extra\"", 1},
	    {"match=AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD\n",
	     "f:1: SHA-1 digest", 1},
	    {"hello world\n", "f:1: bad digest \"hello\"", 1},
	    {"MATCH=%s\n", "f:1: bad digest \"MATCH=", 1},
	    {"# ok\nmatch=%s\nbad\n\nmatch=x|y\n", "f:3: bad digest \"bad\"", 3},
	    {"match=%s\n\001\n", "f:2: control character 0x01 in line", 1},
	};
	struct pol_errors errs;

	digest_text(0x11, a, sizeof(a));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pol_ccerts *l = (struct pol_ccerts *)1;
		int rc;

		subst(cases[i].fmt, a, text, sizeof(text));
		rc = pol_ccerts_parse("f", text, strlen(text), &l, &errs);
		CHECK(rc == RL_EPARSE && l == NULL, "case %zu: rc %d", i, rc);
		CHECK(errs.count >= 1 &&
			  strncmp(errs.e[0].msg, cases[i].want, strlen(cases[i].want)) == 0,
		      "case %zu: got \"%s\" want \"%s\"", i, errs.count ? errs.e[0].msg : "",
		      cases[i].want);
		CHECK(errs.total == cases[i].nerr, "case %zu: got %zu errors want %zu", i,
		      errs.total, cases[i].nerr);
	}
	/* A NUL (a binary file saved by mistake) and an over-long line. */
	{
		static const char nul[] = "match=\0x\n";
		char *big = malloc(POL_LINE_MAX + 10);
		struct pol_ccerts *l = NULL;

		CHECK_INT(pol_ccerts_parse("f", nul, sizeof(nul) - 1, &l, &errs), RL_EPARSE);
		CHECK_STR(errs.e[0].msg, "f:1: NUL character");
		memset(big, '#', POL_LINE_MAX + 9);
		big[0] = 'x';
		big[POL_LINE_MAX + 9] = '\n';
		CHECK_INT(pol_ccerts_parse("f", big, POL_LINE_MAX + 10, &l, &errs), RL_EPARSE);
		CHECK(strstr(errs.e[0].msg, "f:1: line too long") != NULL, "%s", errs.e[0].msg);
		free(big);
		CHECK_INT(pol_ccerts_parse("f", "", POL_CCERTS_FILE_MAX + 1, &l, &errs),
			  RL_ETOOBIG);
		CHECK(strstr(errs.e[0].msg, "f: file too large") != NULL, "%s", errs.e[0].msg);
	}
}

/* A listed certificate outside its validity dates allows nothing by its digest. */
static void test_out_of_date(void)
{
	char a[FPR_TEXT_SIZE], text[256];
	struct pol_ccerts *l;
	struct sockaddr_storage ss;
	struct pol_relay_in in = {0};

	digest_text(0xAA, a, sizeof(a));
	snprintf(text, sizeof(text), "match=%s\n", a);
	l = parse_ok(text);
	in.client = client_addr("127.0.0.9", &ss);
	in.mynetworks = test_nets;
	in.nmynetworks = 2;
	in.cert_presented = 1;
	in.cert_sha256 = digest_of(0xAA);
	in.spki_sha256 = digest_of(0xAA);
	in.listed = l;
	CHECK(pol_relay_decide(&in, NULL) == POL_RELAY_CERTIFICATE, "listed, in date");
	in.cert_out_of_date = 1;
	CHECK(pol_relay_decide(&in, NULL) == POL_RELAY_DENY, "listed, out of date");
	in.auth_user = "alice";
	CHECK(pol_relay_decide(&in, NULL) == POL_RELAY_AUTH, "out of date, but authenticated");
	in.auth_user = NULL;
	in.client = client_addr("127.0.0.1", &ss);
	CHECK(pol_relay_decide(&in, NULL) == POL_RELAY_NETWORK, "out of date, in mynetworks");
	pol_ccerts_free(l);
}

int main(void)
{
	test_networks();
	test_decide();
	test_out_of_date();
	test_parse_ok();
	test_parse_errors();
	return TEST_DONE();
}
