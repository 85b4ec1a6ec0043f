/*
 * test_certs: the certs/ module.  Tables for the pure parts (fingerprint
 * text, server-name matcher, match= resolution), then real certificates
 * made at test time with GnuTLS certtool (package gnutls-bin) in a fresh
 * temporary directory: a CA with an intermediate, leaves with SANs, a
 * wildcard, CN only, IP SAN only, expired, self-signed, and one from an
 * unknown CA.  Digests are checked against certtool's own output.
 * Without certtool the certificate part is skipped (the tables still run).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cert.h"
#include "fpr.h"
#include "tap.h"

extern char **environ;

/* ---- fpr_parse / fpr_format ---- */

#define H20 "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:23:45:67"
#define H32 H20 ":89:AB:CD:EF:FE:DC:BA:98:76:54:32:10"

struct fpr_case {
	const char *what;
	const char *in;
	int rc;
	size_t len;
	size_t offset; /* where the refusal points */
};

static const struct fpr_case fpr_cases[] = {
    {"SHA-1", H20, 0, 20, 0},
    {"SHA-256", H32, 0, 32, 0},
    {"lower case", "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:01:23:45:67", 0, 20, 0},
    {"mixed case", "aA:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:01:23:45:67", 0, 20, 0},
    {"empty", "", RL_EPARSE, 0, 0},
    {"no colons", "00112233445566778899AABBCCDDEEFF01234567", RL_EPARSE, 0, 2},
    {"dash separators", "00-11-22-33-44-55-66-77-88-99-AA-BB-CC-DD-EE-FF-01-23-45-67", RL_EPARSE, 0,
     2},
    {"one digit byte", "0:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:23:45:67", RL_EPARSE, 0,
     1},
    {"three digit byte", "000:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:23:45:67", RL_EPARSE,
     0, 2},
    {"odd digit at end", H20 ":1", RL_EPARSE, 0, 60},
    {"trailing colon", H20 ":", RL_EPARSE, 0, 60},
    {"leading colon", ":" H20, RL_EPARSE, 0, 0},
    {"double colon", "00::11", RL_EPARSE, 0, 3},
    {"19 bytes", "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:23:45", RL_EPARSE, 0, 0},
    {"21 bytes", H20 ":89", RL_EPARSE, 0, 0},
    {"16 bytes (MD5)", "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF", RL_EPARSE, 0, 0},
    {"33 bytes", H32 ":00", RL_EPARSE, 0, 96},
    {"not hex", "G0:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:23:45:67", RL_EPARSE, 0, 0},
    {"not hex, second digit", "0x:11", RL_EPARSE, 0, 1},
    {"space inside", "00: 11", RL_EPARSE, 0, 3},
    {"trailing space", H20 " ", RL_EPARSE, 0, 59},
    {"garbage", "hello, world", RL_EPARSE, 0, 0},
    {"keyword", "hostname", RL_EPARSE, 0, 0},
};

static void test_fpr_parse(void)
{
	for (size_t i = 0; i < sizeof(fpr_cases) / sizeof(fpr_cases[0]); i++) {
		const struct fpr_case *c = &fpr_cases[i];
		struct rl_why why = {0, NULL, 0};
		struct fpr_digest d;
		char text[FPR_TEXT_SIZE];
		int rc = fpr_parse(c->in, strlen(c->in), &d, &why);

		CHECK(rc == c->rc, "%s: rc %d want %d", c->what, rc, c->rc);
		CHECK(d.len == c->len, "%s: len %zu want %zu", c->what, d.len, c->len);
		if (rc == 0) {
			fpr_format(&d, text, sizeof(text));
			CHECK(strlen(text) == strlen(c->in), "%s: formatted \"%s\"", c->what, text);
			/* The canonical form is upper case. */
			for (size_t k = 0; text[k]; k++)
				CHECK(text[k] == (c->in[k] >= 'a' && c->in[k] <= 'f'
						      ? c->in[k] - 'a' + 'A'
						      : c->in[k]),
				      "%s: formatted \"%s\"", c->what, text);
		} else {
			CHECK(why.code == c->rc && why.reason != NULL, "%s: no reason", c->what);
			CHECK(why.offset == c->offset, "%s: offset %zu want %zu (%s)", c->what,
			      why.offset, c->offset, why.reason ? why.reason : "");
		}
	}
	/* Only the given length is read: a valid prefix of a longer string. */
	{
		struct fpr_digest d;

		CHECK(fpr_parse(H20 ":ZZ", strlen(H20), &d, NULL) == 0 && d.len == 20,
		      "prefix: len %zu", d.len);
	}
}

/* ---- cert_name_match ---- */

struct name_case {
	const char *cert;
	const char *pattern;
	int want;
};

static const struct name_case name_cases[] = {
    /* exact */
    {"mx.example.com", "mx.example.com", 1},
    {"mx.example.com", "mx2.example.com", 0},
    {"mx.example.com", "example.com", 0},
    {"example.com", "mx.example.com", 0},
    {"localhost", "localhost", 1},
    /* case */
    {"MX.Example.COM", "mx.example.com", 1},
    {"mx.example.com", "MX.EXAMPLE.com", 1},
    /* trailing dot on either side, but only one */
    {"mx.example.com.", "mx.example.com", 1},
    {"mx.example.com", "mx.example.com.", 1},
    {"mx.example.com..", "mx.example.com", 0},
    /* wildcard: one whole left-most label */
    {"*.example.com", "mx.example.com", 1},
    {"*.example.com", "MX.example.com.", 1},
    {"*.example.com", "a.b.example.com", 0},
    {"*.example.com", "example.com", 0},
    {"*.example.com", ".example.com.evil", 0},
    {"*.com", "example.com", 0},
    {"*", "example", 0},
    {"*.", "example", 0},
    /* partial-label and misplaced wildcards are refused */
    {"a*.example.com", "ab.example.com", 0},
    {"*a.example.com", "ba.example.com", 0},
    {"a*b.example.com", "axb.example.com", 0},
    {"xn--*.example.com", "xn--bcher-kva.example.com", 0},
    {"mx.*.example.com", "mx.a.example.com", 0},
    {"**.example.com", "a.example.com", 0},
    {"*.*.example.com", "a.b.example.com", 0},
    {"*.example.com", "*.example.com", 0},
    /* suffix patterns: any subdomain, never the domain itself */
    {"mx.example.com", ".example.com", 1},
    {"a.b.example.com", ".example.com", 1},
    {"example.com", ".example.com", 0},
    {"badexample.com", ".example.com", 0},
    {"mx.example.com.", ".EXAMPLE.com.", 1},
    {"*.example.com", ".example.com", 1},
    {"*.sub.example.com", ".example.com", 1},
    {"*.com", ".com", 0},
    {"a*.example.com", ".example.com", 0},
    {"mx.example.com", ".", 0},
    {"mx.example.com", "..example.com", 0},
    /* IDNA: A-labels compared as bytes (ignoring ASCII case); U-labels
     * are not names */
    {"xn--bcher-kva.example", "xn--bcher-kva.example", 1},
    {"XN--BCHER-KVA.example", "xn--bcher-kva.example", 1},
    {"xn--bcher-kva.example", "xn--bcher-kvb.example", 0},
    {"*.xn--bcher-kva.example", "mx.xn--bcher-kva.example", 1},
    {"b\xc3\xbc"
     "cher.example",
     "b\xc3\xbc"
     "cher.example",
     0},
    {"xn--bcher-kva.example",
     "b\xc3\xbc"
     "cher.example",
     0},
    /* malformed names never match */
    {"", "", 0},
    {"mx..example.com", "mx..example.com", 0},
    {".example.com", ".example.com", 0},
    {"mx example.com", "mx example.com", 0},
    {"mx.example.com", "", 0},
    /* labels of 64 and 63 characters */
    {"a.bcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm.com",
     "a.bcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm.com", 0},
    {"a.bcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl.com",
     "a.bcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl.com", 1},
};

static void test_name_match(void)
{
	for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		const struct name_case *c = &name_cases[i];
		int got = cert_name_match(c->cert, c->pattern);

		CHECK(got == c->want, "cert \"%s\" pattern \"%s\": got %d want %d", c->cert,
		      c->pattern, got, c->want);
	}
}

/* Names of 253 and 254 characters. */
static void test_name_length(void)
{
	char name[300], pat[300];

	/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
	memset(name, 'a', sizeof(name));
	name[63] = name[127] = name[191] = '.';
	name[253] = '\0';
	CHECK(cert_name_match(name, name) == 1, "253 characters");
	pat[0] = '.';
	memcpy(pat + 1, name + 64, 253 - 64 + 1);
	CHECK(cert_name_match(name, pat) == 1, "suffix of a 253-character name");
	name[253] = 'a';
	name[254] = '\0';
	CHECK(cert_name_match(name, name) == 0, "254 characters");
}

/* ---- cert_match_resolve ---- */

struct resolve_case {
	const char *what;
	const char *tokens[4];
	size_t n;
	const char *hostname, *nexthop;
	int rc;
	const char *want[4];
	size_t bad; /* token index named by why.offset */
};

static const struct resolve_case resolve_cases[] = {
    {"verify default",
     {"hostname"},
     1,
     "MX1.Example.com.",
     "example.com",
     0,
     {"mx1.example.com"},
     0},
    {"secure default",
     {"nexthop", "dot-nexthop"},
     2,
     "mx1.example.net",
     "Example.com",
     0,
     {"example.com", ".example.com"},
     0},
    {"keywords in any case",
     {"HostName", "NEXTHOP", "Dot-Nexthop"},
     3,
     "mx.a",
     "b.c",
     0,
     {"mx.a", "b.c", ".b.c"},
     0},
    {"literal names",
     {"mx.example.com", ".example.net"},
     2,
     NULL,
     NULL,
     0,
     {"mx.example.com", ".example.net"},
     0},
    {"A-label", {"xn--bcher-kva.example"}, 1, NULL, NULL, 0, {"xn--bcher-kva.example"}, 0},
    {"no tokens", {NULL}, 0, NULL, NULL, 0, {NULL}, 0},
    {"hostname unknown", {"nexthop", "hostname"}, 2, NULL, "example.com", RL_EPARSE, {NULL}, 1},
    {"nexthop empty", {"dot-nexthop"}, 1, "mx", "", RL_EPARSE, {NULL}, 0},
    {"nexthop not a name", {"nexthop"}, 1, "mx", "[192.0.2.1]:25", RL_EPARSE, {NULL}, 0},
    {"wildcard pattern", {"*.example.com"}, 1, NULL, NULL, RL_EPARSE, {NULL}, 0},
    {"U-label",
     {"b\xc3\xbc"
      "cher.example"},
     1,
     NULL,
     NULL,
     RL_EPARSE,
     {NULL},
     0},
    {"bare dot", {"example.com", "."}, 2, NULL, NULL, RL_EPARSE, {NULL}, 1},
    {"empty", {""}, 1, NULL, NULL, RL_EPARSE, {NULL}, 0},
    {"too many", {"a", "b", "c", "d"}, 4, NULL, NULL, RL_ETOOBIG, {NULL}, 3},
};

static void test_resolve(void)
{
	for (size_t i = 0; i < sizeof(resolve_cases) / sizeof(resolve_cases[0]); i++) {
		const struct resolve_case *c = &resolve_cases[i];
		struct cert_pattern pats[3];
		struct rl_why why = {0, NULL, 0};
		size_t n = 99;
		int rc =
		    cert_match_resolve(c->tokens, c->n, c->hostname, c->nexthop, pats, 3, &n, &why);

		CHECK(rc == c->rc, "%s: rc %d want %d", c->what, rc, c->rc);
		if (rc < 0) {
			CHECK(n == 0, "%s: n %zu on error", c->what, n);
			CHECK(why.reason && why.offset == c->bad, "%s: offset %zu want %zu",
			      c->what, why.offset, c->bad);
			continue;
		}
		CHECK(n == c->n, "%s: n %zu want %zu", c->what, n, c->n);
		for (size_t k = 0; k < n && k < c->n; k++)
			CHECK_STR(pats[k].name, c->want[k]);
	}
}

/* ---- real certificates ---- */

static char tmpdir[64];
static int have_certtool;

/* tmpdir/name + ext */
static void path_of(char *out, size_t size, const char *name, const char *ext)
{
	int n = snprintf(out, size, "%s/%s%s", tmpdir, name, ext);

	RL_REQUIRE(n > 0 && (size_t)n < size);
}

/* Run argv with stdout to the file out (in tmpdir) or /dev/null; returns
 * the exit status, or -1. */
static int run(const char *out, char *const argv[])
{
	posix_spawn_file_actions_t fa;
	char opath[256];
	pid_t pid;
	int st = -1, rc;

	if (out)
		path_of(opath, sizeof(opath), out, "");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out ? opath : "/dev/null",
					 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return -1;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int write_file(const char *file, const char *text)
{
	char p[256];
	FILE *f;

	path_of(p, sizeof(p), file, "");
	f = fopen(p, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static char *read_file(const char *file)
{
	char p[256];
	FILE *f;
	char *buf;
	long n;

	path_of(p, sizeof(p), file, "");
	f = fopen(p, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
	if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/*
 * Make NAME.key and NAME.crt: signed by ISSUER (NAME of an earlier one) or
 * self-signed when ISSUER is NULL.  tmpl holds the template's name lines.
 */
static int make_cert(const char *name, const char *issuer, const char *tmpl, int ca, int expired)
{
	char key[256], crt[256], tpl[256], ikey[256], icrt[256], text[1024];
	static unsigned serial = 1000;

	path_of(key, sizeof(key), name, ".key");
	path_of(crt, sizeof(crt), name, ".crt");
	path_of(tpl, sizeof(tpl), name, ".tmpl");
	snprintf(text, sizeof(text), "%sserial = %u\n%s%s", tmpl, serial++,
		 ca ? "ca\ncert_signing_key\ncrl_signing_key\n"
		    : "tls_www_server\nsigning_key\nencryption_key\n",
		 expired ? "activation_date = \"2020-01-01 00:00:00\"\n"
			   "expiration_date = \"2021-01-01 00:00:00\"\n"
			 : "expiration_days = 30\n");
	if (write_file(strrchr(tpl, '/') + 1, text) < 0)
		return -1;
	{
		char *gen[] = {
		    "certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile", key, NULL};

		if (run(NULL, gen) != 0)
			return -1;
	}
	if (!issuer) {
		char *self[] = {"certtool",
				"--generate-self-signed",
				"--load-privkey",
				key,
				"--template",
				tpl,
				"--outfile",
				crt,
				NULL};

		return run(NULL, self) == 0 ? 0 : -1;
	}
	path_of(ikey, sizeof(ikey), issuer, ".key");
	path_of(icrt, sizeof(icrt), issuer, ".crt");
	{
		char *sign[] = {"certtool",
				"--generate-certificate",
				"--load-privkey",
				key,
				"--load-ca-certificate",
				icrt,
				"--load-ca-privkey",
				ikey,
				"--template",
				tpl,
				"--outfile",
				crt,
				NULL};

		return run(NULL, sign) == 0 ? 0 : -1;
	}
}

static int make_all(void)
{
	return make_cert("ca", NULL, "cn = \"tlsrelay Test CA\"\n", 1, 0) ||
	       make_cert("other-ca", NULL, "cn = \"Unknown CA\"\n", 1, 0) ||
	       make_cert("inter", "ca", "cn = \"Test Intermediate\"\n", 1, 0) ||
	       make_cert("leaf", "ca",
			 "cn = \"cn.example.test\"\ndns_name = \"mx.example.test\"\n"
			 "dns_name = \"MAIL.Example.Test\"\nip_address = \"127.0.0.5\"\n",
			 0, 0) ||
	       make_cert("wild", "ca", "cn = \"wild\"\ndns_name = \"*.wild.example.test\"\n", 0,
			 0) ||
	       make_cert("cnonly", "ca", "cn = \"cnonly.example.test\"\n", 0, 0) ||
	       make_cert("iponly", "ca", "cn = \"ipcn.example.test\"\nip_address = \"127.0.0.6\"\n",
			 0, 0) ||
	       make_cert("expired", "ca",
			 "cn = \"old.example.test\"\n"
			 "dns_name = \"old.example.test\"\n",
			 0, 1) ||
	       make_cert("self", NULL,
			 "cn = \"self.example.test\"\n"
			 "dns_name = \"self.example.test\"\n",
			 0, 0) ||
	       make_cert("stranger", "other-ca", "dns_name = \"stranger.example.test\"\n", 0, 0) ||
	       make_cert("deep", "inter", "dns_name = \"deep.example.test\"\n", 0, 0);
}

static void rm_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[512];

	if (d) {
		while ((e = readdir(d))) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(tmpdir);
}

/* The chain of a .crt file (leaf first); exits the test on failure. */
static gnutls_datum_t *load(const char *name, size_t *n)
{
	char p[256];
	gnutls_datum_t *chain = NULL;
	struct rl_why why = {0, NULL, 0};
	int rc;

	path_of(p, sizeof(p), name, ".crt");
	rc = cert_file_load(p, &chain, n, &why);
	CHECK(rc == 0 && *n >= 1, "load %s: %d %s", name, rc, why.reason ? why.reason : "");
	if (rc < 0) {
		rm_tmpdir();
		exit(TEST_DONE() ? 1 : 1);
	}
	return chain;
}

/* Lower-case hex without colons, as certtool prints digests. */
static void plain_hex(const struct fpr_digest *d, char *out)
{
	for (size_t i = 0; i < d->len; i++)
		snprintf(out + 2 * i, 3, "%02x", d->bytes[i]);
}

/* certtool's digest of the certificate (--fingerprint). */
static void check_cert_digest(const char *name, const gnutls_datum_t *der, const char *hash,
			      size_t hashlen)
{
	char crt[256], algo[32], hex[2 * FPR_MAX_LEN + 1];
	char *argv[] = {"certtool", "--fingerprint", "--hash", algo, "--infile", crt, NULL};
	struct fpr_digest d;
	char *out;

	snprintf(algo, sizeof(algo), "%s", hash);
	path_of(crt, sizeof(crt), name, ".crt");
	CHECK(run("fpr.out", argv) == 0, "certtool --fingerprint %s", name);
	out = read_file("fpr.out");
	CHECK(fpr_compute(der->data, der->size, FPR_CERT, hashlen, &d) == 0, "%s", name);
	plain_hex(&d, hex);
	CHECK(out && strncmp(out, hex, strlen(hex)) == 0, "%s %s: got %s certtool %s", name, hash,
	      hex, out ? out : "(none)");
	free(out);
}

/* certtool --pubkey-info prints "Public Key ID:" with sha1: and sha256:
 * lines: the digests of the DER SubjectPublicKeyInfo. */
static void check_pubkey_digest(const char *name, const gnutls_datum_t *der)
{
	char crt[256], hex[2 * FPR_MAX_LEN + 1], want[80];
	char *argv[] = {"certtool", "--pubkey-info", "--infile", crt, NULL};
	static const struct {
		const char *tag;
		size_t len;
	} algs[] = {{"sha1:", FPR_SHA1_LEN}, {"sha256:", FPR_SHA256_LEN}};
	struct fpr_digest d;
	char *out, *id;

	path_of(crt, sizeof(crt), name, ".crt");
	CHECK(run("pk.out", argv) == 0, "certtool --pubkey-info %s", name);
	out = read_file("pk.out");
	id = out ? strstr(out, "Public Key ID:") : NULL;
	CHECK(id != NULL, "%s: no Public Key ID in certtool output", name);
	for (size_t i = 0; id && i < 2; i++) {
		CHECK(fpr_compute(der->data, der->size, FPR_PUBKEY, algs[i].len, &d) == 0, "%s",
		      name);
		plain_hex(&d, hex);
		snprintf(want, sizeof(want), "%s%s\n", algs[i].tag, hex);
		CHECK(strstr(id, want) != NULL, "%s: want %s in certtool output", name, want);
	}
	free(out);
}

static void test_fingerprints(void)
{
	size_t n, nca;
	gnutls_datum_t *leaf = load("leaf", &n), *ca = load("ca", &nca);
	struct fpr_digest want[3];
	int which = 99;

	check_cert_digest("leaf", &leaf[0], "sha256", FPR_SHA256_LEN);
	check_cert_digest("leaf", &leaf[0], "sha1", FPR_SHA1_LEN);
	check_cert_digest("ca", &ca[0], "sha256", FPR_SHA256_LEN);
	check_pubkey_digest("leaf", &leaf[0]);
	{
		gnutls_datum_t *wild = load("wild", &n);

		check_pubkey_digest("wild", &wild[0]);
		cert_chain_free(wild, n);
	}

	/* fpr_match: leaf only, either digest, either algorithm. */
	CHECK(fpr_compute(ca[0].data, ca[0].size, FPR_CERT, 32, &want[0]) == 0, "ca digest");
	CHECK(fpr_compute(ca[0].data, ca[0].size, FPR_PUBKEY, 32, &want[1]) == 0, "ca pk");
	CHECK(fpr_match(leaf[0].data, leaf[0].size, want, 2, &which) == 0 && which == -1,
	      "issuer digests must not match the leaf (which %d)", which);
	CHECK(fpr_compute(leaf[0].data, leaf[0].size, FPR_CERT, 32, &want[2]) == 0, "leaf");
	CHECK(fpr_match(leaf[0].data, leaf[0].size, want, 3, &which) == 1 && which == FPR_CERT,
	      "leaf SHA-256 cert digest (which %d)", which);
	CHECK(fpr_compute(leaf[0].data, leaf[0].size, FPR_PUBKEY, 20, &want[2]) == 0, "leaf");
	CHECK(fpr_match(leaf[0].data, leaf[0].size, want, 3, &which) == 1 && which == FPR_PUBKEY,
	      "leaf SHA-1 pubkey digest (which %d)", which);
	/* The first 20 bytes of a SHA-256 digest are not a SHA-1 digest. */
	CHECK(fpr_compute(leaf[0].data, leaf[0].size, FPR_CERT, 32, &want[2]) == 0, "leaf");
	want[2].len = 20;
	CHECK(fpr_match(leaf[0].data, leaf[0].size, want, 3, NULL) == 0, "truncated digest");
	CHECK(fpr_match(leaf[0].data, leaf[0].size, NULL, 0, NULL) == 0, "nothing wanted");
	CHECK(fpr_match((const unsigned char *)"junk", 4, want, 3, &which) < 0 && which == -1,
	      "junk DER");
	CHECK(fpr_compute(leaf[0].data, leaf[0].size, FPR_CERT, 16, &want[0]) == -EINVAL,
	      "MD5 length");
	cert_chain_free(leaf, 1);
	cert_chain_free(ca, nca);
}

struct match_case {
	const char *cert;
	const char *pattern;
	int want;
	const char *matched;
};

static const struct match_case match_cases[] = {
    {"leaf", "mx.example.test", 1, "mx.example.test"},
    {"leaf", "mail.example.test", 1, "MAIL.Example.Test"},
    {"leaf", ".example.test", 1, "mx.example.test"},
    {"leaf", "cn.example.test", 0, ""}, /* CN ignored: there are DNS SANs */
    {"leaf", "127.0.0.5", 0, ""},
    {"leaf", "example.test", 0, ""},
    {"wild", "a.wild.example.test", 1, "*.wild.example.test"},
    {"wild", "a.b.wild.example.test", 0, ""},
    {"wild", "wild.example.test", 0, ""},
    {"wild", ".wild.example.test", 1, "*.wild.example.test"},
    {"wild", "wild", 0, ""},
    {"cnonly", "cnonly.example.test", 1, "cnonly.example.test"},
    {"cnonly", ".example.test", 1, "cnonly.example.test"},
    {"iponly", "ipcn.example.test", 1, "ipcn.example.test"}, /* no dNSName SAN */
    {"stranger", "stranger.example.test", 1, "stranger.example.test"},
};

static void test_names(void)
{
	for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
		const struct match_case *c = &match_cases[i];
		struct cert_pattern pat;
		char matched[CERT_PATTERN_SIZE];
		size_t n;
		gnutls_datum_t *chain = load(c->cert, &n);
		int got;

		rl_strlcpy(pat.name, c->pattern, sizeof(pat.name));
		got = cert_names_match(chain[0].data, chain[0].size, &pat, 1, matched,
				       sizeof(matched));
		CHECK(got == c->want, "%s vs %s: got %d want %d", c->cert, c->pattern, got,
		      c->want);
		CHECK_STR(matched, c->matched);
		cert_chain_free(chain, n);
	}
	{
		struct cert_pattern pat = {"x"};
		char m[4] = "zzz";

		CHECK(cert_names_match((const unsigned char *)"\x30\x03\x02\x01\x01", 5, &pat, 1, m,
				       sizeof(m)) == RL_EPARSE &&
			  m[0] == '\0',
		      "junk DER");
	}
}

struct verify_case {
	const char *chain[3];
	int want;
	unsigned bit; /* a status bit that must be set */
	const char *text;
};

static const struct verify_case verify_cases[] = {
    {{"leaf"}, 1, 0, "trusted"},
    {{"wild"}, 1, 0, "trusted"},
    {{"deep", "inter"}, 1, 0, "trusted"},
    {{"deep"}, 0, GNUTLS_CERT_SIGNER_NOT_FOUND, "signer not found"},
    {{"expired"}, 0, GNUTLS_CERT_EXPIRED, "certificate has expired"},
    {{"self"}, 0, CERT_STATUS_SELF_SIGNED, "self-signed certificate"},
    {{"stranger"}, 0, GNUTLS_CERT_SIGNER_NOT_FOUND, "signer not found"},
    {{"stranger", "other-ca"}, 0, GNUTLS_CERT_SIGNER_NOT_FOUND, "signer not found"},
    /* A valid leaf followed by unrelated junk still verifies. */
    {{"leaf", "other-ca"}, 1, 0, "trusted"},
};

static void test_verify(void)
{
	gnutls_x509_trust_list_t tl;
	struct rl_why why = {0, NULL, 0};
	char p[256];

	path_of(p, sizeof(p), "ca.crt", "");
	CHECK(cert_trust_load(p, &tl, &why) == 0, "trust load: %s", why.reason);
	for (size_t i = 0; i < sizeof(verify_cases) / sizeof(verify_cases[0]); i++) {
		const struct verify_case *c = &verify_cases[i];
		gnutls_datum_t chain[3], *parts[3];
		size_t n = 0, k;
		unsigned status = 12345;
		int got;

		for (; n < 3 && c->chain[n]; n++) {
			parts[n] = load(c->chain[n], &k);
			chain[n] = parts[n][0];
		}
		got = cert_chain_verify(chain, n, tl, &status);
		CHECK(got == c->want, "%s: got %d want %d (status %#x %s)", c->chain[0], got,
		      c->want, status, cert_status_text(status));
		CHECK(c->want ? status == 0 : (status & c->bit) && (status & GNUTLS_CERT_INVALID),
		      "%s: status %#x", c->chain[0], status);
		CHECK_STR(cert_status_text(status), c->text);
		for (k = 0; k < n; k++)
			cert_chain_free(parts[k], 1);
	}
	{
		unsigned status = 0;
		gnutls_datum_t junk = {(unsigned char *)"junk", 4};

		CHECK(cert_chain_verify(&junk, 1, tl, &status) == RL_EPARSE &&
			  status == GNUTLS_CERT_INVALID,
		      "junk chain");
		CHECK(cert_chain_verify(&junk, 0, tl, &status) == RL_EPARSE, "empty chain");
	}
	cert_trust_free(tl);
	cert_trust_free(NULL);
}

static void test_files(void)
{
	gnutls_x509_trust_list_t tl = NULL;
	struct rl_why why = {0, NULL, 0};
	gnutls_datum_t *chain = NULL, *pem;
	char p[256], der[256], subject[128];
	size_t n = 0, npem;
	int err;
	char *argv[] = {"certtool", "--certificate-info", "--infile", p,
			"--outder", "--outfile",	  der,	      NULL};

	/* A DER file gives the same certificate as the PEM one. */
	path_of(p, sizeof(p), "leaf.crt", "");
	path_of(der, sizeof(der), "leaf.der", "");
	CHECK(run(NULL, argv) == 0, "certtool --outder");
	CHECK(cert_file_load(der, &chain, &n, &why) == 0 && n == 1, "DER load: %s", why.reason);
	pem = load("leaf", &npem);
	CHECK(n == 1 && chain[0].size == pem[0].size &&
		  memcmp(chain[0].data, pem[0].data, pem[0].size) == 0,
	      "DER and PEM differ");
	CHECK(cert_subject_text(pem[0].data, pem[0].size, subject, sizeof(subject)) == 0,
	      "subject");
	CHECK_STR(subject, "CN=cn.example.test");
	CHECK(cert_subject_text(pem[0].data, pem[0].size, subject, 6) == 0, "subject");
	CHECK_STR(subject, "CN=cn");
	CHECK(cert_issuer_text(pem[0].data, pem[0].size, subject, sizeof(subject)) == 0, "issuer");
	CHECK_STR(subject, "CN=tlsrelay Test CA");
	err = cert_issuer_text((const unsigned char *)"junk", 4, subject, sizeof(subject));
	CHECK(err == RL_EPARSE && subject[0] == '\0', "issuer of junk: %d", err);
	cert_chain_free(pem, npem);
	/* The expired certificate was valid during 2020 (UTC). */
	pem = load("expired", &npem);
	{
		time_t nb = 0, na = 0;

		CHECK(cert_validity(pem[0].data, pem[0].size, &nb, &na) == 0, "validity");
		CHECK_INT(nb, 1577836800);
		CHECK_INT(na, 1609459200);
		err = cert_validity((const unsigned char *)"junk", 4, &nb, &na);
		CHECK(err == RL_EPARSE && nb == (time_t)-1 && na == (time_t)-1,
		      "validity of junk: %d", err);
	}
	cert_chain_free(chain, n);
	cert_chain_free(pem, npem);
	cert_chain_free(NULL, 0);

	/* A PEM file with two certificates. */
	path_of(p, sizeof(p), "two.crt", "");
	{
		char *a = read_file("deep.crt"), *b = read_file("inter.crt");
		FILE *f = fopen(p, "w");

		CHECK(a && b && f, "two.crt");
		if (f) {
			fprintf(f, "%s%s", a ? a : "", b ? b : "");
			fclose(f);
		}
		free(a);
		free(b);
	}
	CHECK(cert_file_load(p, &chain, &n, &why) == 0 && n == 2, "two certificates: %zu", n);
	cert_chain_free(chain, n);

	/* Errors: missing, empty, not a certificate, PEM without a certificate. */
	path_of(p, sizeof(p), "missing.crt", "");
	CHECK(cert_file_load(p, &chain, &n, &why) == -ENOENT && chain == NULL && n == 0,
	      "missing file");
	CHECK(cert_trust_load(p, &tl, &why) == -ENOENT && tl == NULL, "missing CA file");
	write_file("empty.crt", "");
	path_of(p, sizeof(p), "empty.crt", "");
	CHECK(cert_file_load(p, &chain, &n, &why) == RL_EPARSE && why.reason, "empty file");
	CHECK(cert_trust_load(p, &tl, &why) == RL_ECONFIG && tl == NULL, "empty CA file");
	write_file("junk.crt", "this is not a certificate\n");
	path_of(p, sizeof(p), "junk.crt", "");
	CHECK(cert_file_load(p, &chain, &n, &why) == RL_EPARSE && chain == NULL, "junk");
	path_of(p, sizeof(p), "leaf.key", "");
	CHECK(cert_file_load(p, &chain, &n, &why) == RL_EPARSE && chain == NULL, "key file");
	CHECK(cert_file_load(tmpdir, &chain, &n, &why) < 0 && chain == NULL, "directory");

	/* The system store may be absent in a container; either way no leak. */
	why.reason = NULL;
	{
		int rc = cert_trust_load(NULL, &tl, &why);

		CHECK(rc == 0 || rc == RL_ECONFIG, "system trust: %d", rc);
		cert_trust_free(tl);
	}
}

static void test_real_certs(void)
{
	const char *base = getenv("TMPDIR");
	char *version[] = {"certtool", "--version", NULL};

	if (run(NULL, version) != 0) {
		printf("# certtool (gnutls-bin) not found: certificate tests skipped\n");
		return;
	}
	have_certtool = 1;
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_certs.XXXXXX",
		 base && *base && strlen(base) < 32 ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	CHECK(make_all() == 0, "certtool failed to make the test certificates");
	if (tap_failed == 0) {
		test_fingerprints();
		test_names();
		test_verify();
		test_files();
	}
	rm_tmpdir();
}

/* A certificate for cn signed by issuer (NULL: itself) with the given extended
 * key usages (NULL-terminated; NULL or empty: no extension), valid from..until. */
static void client_make(gnutls_x509_crt_t *crt, gnutls_x509_privkey_t *key, gnutls_datum_t *der,
			const char *cn, int is_ca, gnutls_x509_crt_t icrt,
			gnutls_x509_privkey_t ikey, const char *const *kp, time_t from, time_t until)
{
	static unsigned char serial = 1;
	unsigned char sn[4] = {9, 8, 7, serial++};

	RL_REQUIRE(gnutls_x509_privkey_init(key) >= 0);
	RL_REQUIRE(gnutls_x509_privkey_generate(*key, GNUTLS_PK_ECDSA,
						GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
						0) >= 0);
	RL_REQUIRE(gnutls_x509_crt_init(crt) >= 0);
	RL_REQUIRE(gnutls_x509_crt_set_version(*crt, 3) >= 0);
	RL_REQUIRE(gnutls_x509_crt_set_serial(*crt, sn, sizeof(sn)) >= 0);
	RL_REQUIRE(gnutls_x509_crt_set_activation_time(*crt, from) >= 0);
	RL_REQUIRE(gnutls_x509_crt_set_expiration_time(*crt, until) >= 0);
	RL_REQUIRE(gnutls_x509_crt_set_dn_by_oid(*crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
						 strlen(cn)) >= 0);
	RL_REQUIRE(gnutls_x509_crt_set_key(*crt, *key) >= 0);
	RL_REQUIRE(gnutls_x509_crt_set_basic_constraints(*crt, is_ca, -1) >= 0);
	RL_REQUIRE(gnutls_x509_crt_set_key_usage(*crt, is_ca ? GNUTLS_KEY_KEY_CERT_SIGN
							    : GNUTLS_KEY_DIGITAL_SIGNATURE) >= 0);
	for (size_t i = 0; kp && kp[i]; i++)
		RL_REQUIRE(gnutls_x509_crt_set_key_purpose_oid(*crt, kp[i], 0) >= 0);
	RL_REQUIRE(gnutls_x509_crt_sign2(*crt, icrt ? icrt : *crt, ikey ? ikey : *key,
					 GNUTLS_DIG_SHA256, 0) >= 0);
	RL_REQUIRE(gnutls_x509_crt_export2(*crt, GNUTLS_X509_FMT_DER, der) >= 0);
}

/*
 * cert_client_verify: relay_client_ca_file's rule.  clientAuth or no
 * extended key usage at all passes; serverAuth only, anyExtendedKeyUsage,
 * an expired certificate or another CA's does not.  And cert_cn_text.
 */
static void test_client_verify(void)
{
	static const char *const client[] = {GNUTLS_KP_TLS_WWW_CLIENT, NULL};
	static const char *const both[] = {GNUTLS_KP_TLS_WWW_SERVER, GNUTLS_KP_TLS_WWW_CLIENT, NULL};
	static const char *const server[] = {GNUTLS_KP_TLS_WWW_SERVER, NULL};
	static const char *const any[] = {GNUTLS_KP_ANY, NULL};
	static const char *const none[] = {NULL};
	time_t now = time(NULL), day = 86400;
	const struct {
		const char *cn;
		const char *const *kp;
		int other_ca, expired, want;
		unsigned bit;
	} cases[] = {
	    {"client", client, 0, 0, 1, 0},
	    {"both", both, 0, 0, 1, 0},
	    {"no-eku", none, 0, 0, 1, 0},
	    {"server-only", server, 0, 0, 0, CERT_STATUS_NOT_CLIENT},
	    {"any-eku", any, 0, 0, 0, CERT_STATUS_NOT_CLIENT},
	    {"expired", client, 0, 1, 0, GNUTLS_CERT_EXPIRED},
	    {"stranger", client, 1, 0, 0, GNUTLS_CERT_SIGNER_NOT_FOUND},
	};
	gnutls_x509_crt_t ca, other, copy;
	gnutls_x509_privkey_t cakey, otherkey;
	gnutls_datum_t cader, otherder;
	gnutls_x509_trust_list_t tl;
	char cn[16];

	client_make(&ca, &cakey, &cader, "Client CA (test)", 1, NULL, NULL, NULL, now - day,
		    now + 30 * day);
	client_make(&other, &otherkey, &otherder, "Other CA", 1, NULL, NULL, NULL, now - day,
		    now + 30 * day);
	/* The list gets its own copy, decoded from DER as a CA file's would be. */
	RL_REQUIRE(gnutls_x509_trust_list_init(&tl, 0) >= 0);
	RL_REQUIRE(gnutls_x509_crt_init(&copy) >= 0);
	RL_REQUIRE(gnutls_x509_crt_import(copy, &cader, GNUTLS_X509_FMT_DER) >= 0);
	RL_REQUIRE(gnutls_x509_trust_list_add_cas(tl, &copy, 1, 0) == 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gnutls_x509_crt_t crt;
		gnutls_x509_privkey_t key;
		gnutls_datum_t der;
		unsigned status = 0;
		int got;

		client_make(&crt, &key, &der, cases[i].cn, 0, cases[i].other_ca ? other : ca,
			    cases[i].other_ca ? otherkey : cakey, cases[i].kp,
			    cases[i].expired ? now - 60 * day : now - day,
			    cases[i].expired ? now - 30 * day : now + 30 * day);
		got = cert_client_verify(&der, 1, tl, &status);
		CHECK(got == cases[i].want, "%s: got %d want %d (%#x %s)", cases[i].cn, got,
		      cases[i].want, status, cert_status_text(status));
		CHECK(cases[i].want ? status == 0 : (status & cases[i].bit) != 0, "%s: status %#x",
		      cases[i].cn, status);
		/* The server rule is unchanged: a client-only certificate is not a server's. */
		if (cases[i].kp == client && !cases[i].expired && !cases[i].other_ca)
			CHECK(cert_chain_verify(&der, 1, tl, &status) == 0, "%s as server", cases[i].cn);
		CHECK(cert_cn_text(der.data, der.size, 0, cn, sizeof(cn)) == 0, "cn");
		CHECK_STR(cn, cases[i].cn);
		gnutls_free(der.data);
		gnutls_x509_crt_deinit(crt);
		gnutls_x509_privkey_deinit(key);
	}
	CHECK_STR(cert_status_text(CERT_STATUS_NOT_CLIENT),
		  "certificate not for TLS client use (extended key usage without clientAuth)");
	/* The issuer's CN, made safe for a quoted string in a header comment. */
	CHECK(cert_cn_text(cader.data, cader.size, 1, cn, sizeof(cn)) == 0, "issuer cn");
	CHECK_STR(cn, "Client CA ?test");
	gnutls_x509_trust_list_deinit(tl, 1);
	gnutls_free(cader.data);
	gnutls_free(otherder.data);
	gnutls_x509_crt_deinit(ca);
	gnutls_x509_privkey_deinit(cakey);
	gnutls_x509_crt_deinit(other);
	gnutls_x509_privkey_deinit(otherkey);
}

int main(void)
{
	test_client_verify();
	test_fpr_parse();
	test_name_match();
	test_name_length();
	test_resolve();
	test_real_certs();
	return TEST_DONE();
}
