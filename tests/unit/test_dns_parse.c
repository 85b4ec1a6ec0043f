/*
 * test_dns_parse: the wire-name, MX rdata and host-name checks of
 * relay/dns_parse.c; the readers of trust-anchor files and resolv.conf
 * that the DNSSEC check uses; the sentence of a failed lookup.
 */
#include <stdio.h>
#include <string.h>

#include "dns.h"
#include "tap.h"

/* Inputs hold NULs, so each case gives its length explicitly. */
#define W(s) (const unsigned char *)(s), sizeof(s) - 1

struct name_case {
	const char *what;
	const unsigned char *in;
	size_t len;
	int rc;
	const char *want;
	size_t used;
};

static const struct name_case name_cases[] = {
    {"root", W("\0"), 0, "", 1},
    {"two labels", W("\7example\4test\0"), 0, "example.test", 14},
    {"case kept", W("\3MX1\7Example\0"), 0, "MX1.Example", 13},
    {"hyphen, underscore, digits", W("\3_25\4_tcp\5mx-01\0"), 0, "_25._tcp.mx-01", 16},
    {"bytes after the name", W("\1a\0\xff\xff"), 0, "a", 3},
    {"empty input", W(""), RL_EPARSE, "", 0},
    {"no root label", W("\3abc"), RL_EPARSE, "", 0},
    {"label past the end", W("\5ab\0"), RL_EPARSE, "", 0},
    {"compression pointer", W("\xc0\x0c"), RL_EPARSE, "", 0},
    {"pointer after a label", W("\1a\xc0\x0c"), RL_EPARSE, "", 0},
    {"extended label 0x40", W("\101a\0"), RL_EPARSE, "", 0},
    {"extended label 0x80", W("\x80\0"), RL_EPARSE, "", 0},
    {"dot inside a label", W("\3a.b\0"), RL_EPARSE, "", 0},
    {"NUL inside a label", W("\3a\0b\0"), RL_EPARSE, "", 0},
    {"space", W("\3a b\0"), RL_EPARSE, "", 0},
    {"backslash", W("\3a\\b\0"), RL_EPARSE, "", 0},
    {"control byte", W("\3a\nb\0"), RL_EPARSE, "", 0},
    {"8-bit byte", W("\3a\xc3\xa4\0"), RL_EPARSE, "", 0},
    {"bad byte in a later label", W("\1a\1*\0"), RL_EPARSE, "", 0},
};

static void test_names(void)
{
	for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		const struct name_case *c = &name_cases[i];
		char out[DNS_NAME_MAX];
		size_t used = 12345;
		int rc;

		memset(out, 'x', sizeof(out));
		rc = dns_parse_name(c->in, c->len, &used, out, sizeof(out));
		CHECK(rc == c->rc, "%s: rc %d want %d", c->what, rc, c->rc);
		CHECK(strcmp(out, c->want) == 0, "%s: got \"%s\" want \"%s\"", c->what, out,
		      c->want);
		if (c->rc == 0)
			CHECK(used == c->used, "%s: used %zu want %zu", c->what, used, c->used);
		else
			CHECK(used == 12345, "%s: used changed on failure", c->what);
	}
	/* used may be NULL. */
	{
		char out[8];

		CHECK_INT(dns_parse_name(W("\1a\0"), NULL, out, sizeof(out)), 0);
		CHECK_STR(out, "a");
	}
}

/* A wire name of labels of the given lengths ('a' .. ), root included. */
static size_t make_wire(unsigned char *buf, const size_t *labels, size_t n)
{
	size_t pos = 0;

	for (size_t i = 0; i < n; i++) {
		buf[pos++] = (unsigned char)labels[i];
		memset(buf + pos, 'a' + (int)i, labels[i]);
		pos += labels[i];
	}
	buf[pos++] = 0;
	return pos;
}

static void test_name_limits(void)
{
	static const struct {
		const char *what;
		size_t labels[5];
		size_t n;
		int rc;
		size_t textlen;
	} cases[] = {
	    {"63-octet label", {63}, 1, 0, 63},
	    {"255 octets in all", {63, 63, 63, 61}, 4, 0, 253},
	    {"256 octets in all", {63, 63, 63, 62}, 4, RL_EPARSE, 0},
	    {"far too long", {63, 63, 63, 63, 63}, 5, RL_EPARSE, 0},
	};
	unsigned char buf[400];
	char out[DNS_NAME_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = make_wire(buf, cases[i].labels, cases[i].n), used = 0;
		int rc = dns_parse_name(buf, len, &used, out, sizeof(out));

		CHECK(rc == cases[i].rc, "%s: rc %d want %d", cases[i].what, rc, cases[i].rc);
		CHECK(strlen(out) == cases[i].textlen, "%s: text length %zu want %zu",
		      cases[i].what, strlen(out), cases[i].textlen);
		if (rc == 0)
			CHECK(used == len, "%s: used %zu want %zu", cases[i].what, used, len);
	}
	/* The output buffer bounds the text, NUL included. */
	CHECK_INT(dns_parse_name(W("\3abc\0"), NULL, out, 4), 0);
	CHECK_INT(dns_parse_name(W("\3abc\0"), NULL, out, 3), RL_ETOOBIG);
	CHECK_STR(out, "");
	CHECK_INT(dns_parse_name(W("\1a\1b\0"), NULL, out, 4), 0);
	CHECK_INT(dns_parse_name(W("\1a\1b\0"), NULL, out, 3), RL_ETOOBIG);
	CHECK_INT(dns_parse_name(W("\0"), NULL, out, 1), 0);
}

struct mx_case {
	const char *what;
	const unsigned char *in;
	size_t len;
	int rc;
	unsigned pref;
	const char *name;
};

static const struct mx_case mx_cases[] = {
    {"ordinary", W("\0\12\3mx1\7example\4test\0"), 0, 10, "mx1.example.test"},
    {"null MX", W("\0\0\0"), 0, 0, ""},
    {"highest preference", W("\xff\xff\1a\0"), 0, 65535, "a"},
    {"preference is big-endian", W("\1\2\1a\0"), 0, 258, "a"},
    {"empty", W(""), RL_EPARSE, 0, ""},
    {"preference only", W("\0\12"), RL_EPARSE, 0, ""},
    {"trailing byte", W("\0\12\1a\0\0"), RL_EPARSE, 0, ""},
    {"name runs off", W("\0\12\5mx"), RL_EPARSE, 0, ""},
    {"compressed exchange", W("\0\12\xc0\x0c"), RL_EPARSE, 0, ""},
    {"bad byte in exchange", W("\0\12\3m x\0"), RL_EPARSE, 0, ""},
};

static void test_mx(void)
{
	for (size_t i = 0; i < sizeof(mx_cases) / sizeof(mx_cases[0]); i++) {
		const struct mx_case *c = &mx_cases[i];
		struct dns_mx_host h;
		int rc;

		memset(&h, 0, sizeof(h));
		rc = dns_parse_mx(c->in, c->len, &h);
		CHECK(rc == c->rc, "%s: rc %d want %d", c->what, rc, c->rc);
		if (c->rc != 0)
			continue;
		CHECK(h.pref == c->pref, "%s: pref %u want %u", c->what, h.pref, c->pref);
		CHECK(strcmp(h.name, c->name) == 0, "%s: got \"%s\" want \"%s\"", c->what, h.name,
		      c->name);
	}
}

struct host_case {
	const char *in;
	int rc;
	const char *want;
};

static void test_hosts(void)
{
	static const struct host_case cases[] = {
	    {"example.com", 0, "example.com"},
	    {"example.com.", 0, "example.com"},
	    {"MiXeD.CaSe", 0, "MiXeD.CaSe"},
	    {"xn--bcher-kva.example", 0, "xn--bcher-kva.example"},
	    {"_25._tcp.mx", 0, "_25._tcp.mx"},
	    {"a", 0, "a"},
	    {"", RL_EPARSE, ""},
	    {".", RL_EPARSE, ""},
	    {"..", RL_EPARSE, ""},
	    {"a..b", RL_EPARSE, ""},
	    {".a", RL_EPARSE, ""},
	    {"a..", RL_EPARSE, ""},
	    {"exa mple.com", RL_EPARSE, ""},
	    {"ex\\.ample.com", RL_EPARSE, ""},
	    {"b\xc3\xbc"
	     "cher.example",
	     RL_EPARSE, ""},
	    {"a.b;c", RL_EPARSE, ""},
	    {"[127.0.0.1]", RL_EPARSE, ""},
	};
	char out[DNS_NAME_MAX], big[300];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = dns_parse_host(cases[i].in, strlen(cases[i].in), out, sizeof(out));

		CHECK(rc == cases[i].rc, "\"%s\": rc %d want %d", cases[i].in, rc, cases[i].rc);
		CHECK(strcmp(out, cases[i].want) == 0, "\"%s\": got \"%s\" want \"%s\"",
		      cases[i].in, out, cases[i].want);
	}
	/* Only len bytes count: a NUL-free prefix of a longer string. */
	CHECK_INT(dns_parse_host("abc.def", 3, out, sizeof(out)), 0);
	CHECK_STR(out, "abc");

	/* Label and name length limits. */
	memset(big, 'a', 63);
	CHECK_INT(dns_parse_host(big, 63, out, sizeof(out)), 0);
	CHECK_INT(dns_parse_host(big, 64, out, sizeof(out)), RL_EPARSE);
	/* 63.63.63.61 = 253 octets: the longest name; 254 is one too many. */
	memset(big, 'a', sizeof(big));
	big[63] = big[127] = big[191] = '.';
	CHECK_INT(dns_parse_host(big, 253, out, sizeof(out)), 0);
	CHECK_INT(strlen(out), 253);
	CHECK_INT(dns_parse_host(big, 254, out, sizeof(out)), RL_EPARSE);
	big[253] = '.';
	CHECK_INT(dns_parse_host(big, 254, out, sizeof(out)), 0); /* final dot dropped */
	CHECK_INT(dns_parse_host("abc", 3, out, 3), RL_ETOOBIG);
	CHECK_INT(dns_parse_host("abc.", 4, out, 4), 0);
	CHECK_STR(out, "abc");
}

struct anchor_case {
	const char *what;
	const char *text;
	int rc;
	const char *want;
};

#define ROOT_KEY                                                                                   \
	". IN DNSKEY 257 3 8 AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1v ; keytag 20326\n"
#define TEST_DS                                                                                    \
	"test. 0 IN DS 24446 13 2 "                                                                \
	"1C9AAB3B0D2B1F9BFB1E0BE0EF50F47C6A58ED6A7436C2B4BA0A5D4F0A0C9D58\n"

static const struct anchor_case anchor_cases[] = {
    {"Debian's root.key", ROOT_KEY ROOT_KEY, 0, "."},
    {"keymgr's DS for test.", TEST_DS, 0, "test"},
    {"comments and blanks first", "; a comment\n\n# another\n   \n" TEST_DS, 0, "test"},
    {"first anchor wins", TEST_DS ROOT_KEY, 0, "test"},
    {"no TTL, no class", "example.org. DS 1 8 2 AB\n", 0, "example.org"},
    {"class before TTL", "example.org. IN 3600 DNSKEY 257 3 8 AB\n", 0, "example.org"},
    {"CLASS1 (RFC 3597)", "example.org. CLASS1 DS 1 8 2 AB\n", 0, "example.org"},
    {"type in lower case", "example.org. in ds 1 8 2 AB\n", 0, "example.org"},
    {"CRLF line ends", "a.example. IN DS 1 8 2 AB\r\n", 0, "a.example"},
    {"no final newline", "a.example. IN DS 1 8 2 AB", 0, "a.example"},
    {"other types are skipped", "x.example. IN TXT \"DS\"\nb.example. DS 1 8 2 AB\n", 0,
     "b.example"},
    {"$ORIGIN and a relative owner", "$ORIGIN example.\nsub IN DS 1 8 2 AB\n", 0, "sub.example"},
    {"$ORIGIN and @", "$ORIGIN example.net.\n@ IN DS 1 8 2 AB\n", 0, "example.net"},
    {"$TTL is no owner", "$TTL 3600\n. IN DS 1 8 2 AB\n", 0, "."},
    {"indented line: the origin", "$ORIGIN example.\n  IN DS 1 8 2 AB\n", 0, "example"},
    {"relative without $ORIGIN", "example DS 1 8 2 AB\n", 0, "example"},
    {"continuation lines are not records",
     "x. IN SOA a. b. (\n  1 DS 2 3 4 )\nc.example. DS 1 8 2 AB\n", 0, "c.example"},
    {"the multi-line anchor itself", "d.example. IN DNSKEY ( 257 3 8\n  AB )\n", 0, "d.example"},
    {"empty file", "", RL_ENOTFOUND, ""},
    {"comments only", "; nothing\n# here\n", RL_ENOTFOUND, ""},
    {"no DS or DNSKEY", "example. IN A 127.0.0.1\n", RL_ENOTFOUND, ""},
    {"owner with an escape", "a\\032b. IN DS 1 8 2 AB\n", RL_EPARSE, ""},
    {"owner with an empty label", "a..b. IN DS 1 8 2 AB\n", RL_EPARSE, ""},
    {"bad $ORIGIN", "$ORIGIN a..b.\nx DS 1 8 2 AB\n", RL_EPARSE, ""},
};

static void test_anchor_owner(void)
{
	char out[DNS_NAME_MAX], small[4];

	for (size_t i = 0; i < sizeof(anchor_cases) / sizeof(anchor_cases[0]); i++) {
		const struct anchor_case *c = &anchor_cases[i];
		int rc;

		memset(out, 'x', sizeof(out));
		rc = dns_parse_anchor_owner(c->text, strlen(c->text), out, sizeof(out));
		CHECK(rc == c->rc, "%s: rc %d want %d", c->what, rc, c->rc);
		CHECK(strcmp(out, c->want) == 0, "%s: got \"%s\" want \"%s\"", c->what, out,
		      c->want);
	}
	/* The length given is the end, NUL or not. */
	CHECK_INT(dns_parse_anchor_owner(TEST_DS, 4, out, sizeof(out)), RL_ENOTFOUND);
	CHECK_INT(dns_parse_anchor_owner(TEST_DS, strlen(TEST_DS), small, sizeof(small)),
		  RL_ETOOBIG);
	CHECK_INT(dns_parse_anchor_owner(ROOT_KEY, strlen(ROOT_KEY), small, 2), 0);
	CHECK_STR(small, ".");
}

struct resolv_case {
	const char *what;
	const char *text;
	size_t n;
	const char *want;
};

static const struct resolv_case resolv_cases[] = {
    {"one", "nameserver 10.0.0.2\n", 1, "10.0.0.2"},
    {"several, with other lines",
     "# generated\nsearch example.com\nnameserver 10.0.0.2\noptions edns0\n"
     "nameserver ::1\n\tnameserver\tfe80::1%eth0 ; comment\n",
     3, "10.0.0.2, ::1, fe80::1%eth0"},
    {"CRLF and no final newline", "nameserver 192.0.2.1\r\nnameserver 192.0.2.2", 2,
     "192.0.2.1, 192.0.2.2"},
    {"commented out", "#nameserver 10.0.0.9\n;nameserver 10.0.0.8\n", 0, ""},
    {"no address", "nameserver\n", 0, ""},
    {"not an address: skipped", "nameserver 10.0.0.1\"x\nnameserver 10.0.0.3\n", 1, "10.0.0.3"},
    {"other keyword", "nameservers 10.0.0.1\n", 0, ""},
    {"empty", "", 0, ""},
};

static void test_resolv(void)
{
	char out[128], small[16];

	for (size_t i = 0; i < sizeof(resolv_cases) / sizeof(resolv_cases[0]); i++) {
		const struct resolv_case *c = &resolv_cases[i];
		size_t n = dns_parse_resolv(c->text, strlen(c->text), out, sizeof(out));

		CHECK(n == c->n, "%s: %zu servers want %zu", c->what, n, c->n);
		CHECK(strcmp(out, c->want) == 0, "%s: got \"%s\" want \"%s\"", c->what, out,
		      c->want);
	}
	/* Whole entries only when out is short. */
	CHECK_INT(dns_parse_resolv("nameserver 10.0.0.2\nnameserver 10.0.0.3\n", 40, small,
				   sizeof(small)),
		  1);
	CHECK_STR(small, "10.0.0.2");
}

struct fail_case {
	int status;
	const char *why;
	const char *want;
};

static const struct fail_case fail_cases[] = {
    {DNS_TEMPFAIL, "Host not found, try again",
     "Host or domain name not found. Name service error for name=d.example type=MX: Host not "
     "found, try again"},
    {DNS_TEMPFAIL, "",
     "Host or domain name not found. Name service error for name=d.example "
     "type=MX: Host not found, try again"},
    {DNS_NXDOMAIN, NULL,
     "Host or domain name not found. Name service error for name=d.example "
     "type=MX: Host not found"},
    {DNS_NODATA, NULL,
     "Host or domain name not found. Name service error for name=d.example "
     "type=MX: No address associated with hostname"},
    /* A bogus answer leads with its cause, said once. */
    {DNS_BOGUS, "DNSSEC validation failed: validation failure <d.example. MX IN>: no DNSKEY rrset",
     "DNSSEC validation failed for name=d.example type=MX: validation failure <d.example. MX "
     "IN>: no DNSKEY rrset"},
    {DNS_BOGUS, "signature expired",
     "DNSSEC validation failed for name=d.example type=MX: signature expired"},
    {DNS_BOGUS, NULL, "DNSSEC validation failed for name=d.example type=MX: the answer is bogus"},
};

static void test_fail_text(void)
{
	char out[512], small[20];

	for (size_t i = 0; i < sizeof(fail_cases) / sizeof(fail_cases[0]); i++) {
		const struct fail_case *c = &fail_cases[i];

		dns_fail_text(out, sizeof(out), "d.example", "MX", c->status, c->why);
		CHECK_STR(out, c->want);
	}
	dns_fail_text(small, sizeof(small), "d.example", "MX", DNS_BOGUS, "x");
	CHECK_STR(small, "DNSSEC validation f");
}

int main(void)
{
	test_names();
	test_name_limits();
	test_mx();
	test_hosts();
	test_anchor_owner();
	test_resolv();
	test_fail_text();
	return TEST_DONE();
}
