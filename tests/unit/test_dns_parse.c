/*
 * test_dns_parse: the wire-name, MX rdata and host-name checks of
 * relay/dns_parse.c.
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

int main(void)
{
	test_names();
	test_name_limits();
	test_mx();
	test_hosts();
	return TEST_DONE();
}
