/*
 * test_dane_parse: TLSA rdata parsing, SMTP usability and the text form
 * (policy/dane_parse.c).
 */
#include <stdio.h>
#include <string.h>

#include "dane.h"
#include "tap.h"

/* Inputs hold NULs, so each case gives its length explicitly. */
#define W(s) (const unsigned char *)(s), sizeof(s) - 1

/* Big inputs are built at run time: head octets plus n data octets. */
struct parse_case {
	const char *what;
	const unsigned char *in; /* NULL: head[] then n octets 0xAB */
	size_t len;
	unsigned char head[3];
	int rc;
	int usable;
};

/* Digest stand-ins; macros also keep a digit from extending an octal escape. */
#define D31 "0123456789abcdef0123456789abcde"
#define D32 D31 "f"
#define D64 D32 D32

static const struct parse_case parse_cases[] = {
    {"3 1 1, 32-octet digest", W("\3\1\1" D32), {0}, 0, 1},
    {"2 0 1, 32-octet digest", W("\2\0\1" D32), {0}, 0, 1},
    {"3 0 2, 64-octet digest", W("\3\0\2" D64), {0}, 0, 1},
    {"3 0 0, a small DER blob", W("\3\0\0\x30\x82\x01\x0a\x02\x01\x00"), {0}, 0, 1},
    {"2 1 0, one octet", W("\2\1\0\x30"), {0}, 0, 1},
    {"PKIX-TA 0 0 1 parses, unusable", W("\0\0\1" D32), {0}, 0, 0},
    {"PKIX-EE 1 1 1 parses, unusable", W("\1\1\1" D32), {0}, 0, 0},
    {"usage 4 unknown", W("\4\1\1" D32), {0}, 0, 0},
    {"usage 255 unknown", W("\xff\1\1" D32), {0}, 0, 0},
    {"selector 2 unknown", W("\3\2\1" D32), {0}, 0, 0},
    {"selector 255 unknown", W("\3\xff\1" D32), {0}, 0, 0},
    {"matching 3 unknown, any length", W("\3\1\3\1\2\3"), {0}, 0, 0},
    {"matching 255 unknown", W("\3\1\xff" D32), {0}, 0, 0},
    {"empty rdata", W(""), {0}, RL_EPARSE, 0},
    {"one octet", W("\3"), {0}, RL_EPARSE, 0},
    {"head only, no data", W("\3\1\1"), {0}, RL_EPARSE, 0},
    {"SHA-256 of 31 octets", W("\3\1\1" D31), {0}, RL_EPARSE, 0},
    {"SHA-256 of 33 octets", W("\3\1\1" D32 "x"), {0}, RL_EPARSE, 0},
    {"SHA-256 of 64 octets", W("\3\1\1" D64), {0}, RL_EPARSE, 0},
    {"SHA-512 of 32 octets", W("\3\1\2" D32), {0}, RL_EPARSE, 0},
    {"SHA-512 of 63 octets", W("\2\0\2" D32 D31), {0}, RL_EPARSE, 0},
    {"PKIX with bad digest length", W("\1\1\1xyz"), {0}, RL_EPARSE, 0},
    {"full data at the bound", NULL, DANE_DATA_MAX, {3, 0, 0}, 0, 1},
    {"full data one over", NULL, DANE_DATA_MAX + 1, {3, 0, 0}, RL_ETOOBIG, 0},
    {"unknown matching over", NULL, DANE_DATA_MAX + 1, {3, 1, 7}, RL_ETOOBIG, 0},
    {"SHA-256 huge is a bad digest", NULL, DANE_DATA_MAX + 100, {3, 1, 1}, RL_EPARSE, 0},
};

static unsigned char big[3 + DANE_DATA_MAX + 100];

static void test_parse(void)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		static struct dane_tlsa t;
		struct rl_why why = {0, NULL, 0};
		const unsigned char *in = c->in;
		size_t len = c->len;
		int rc;

		if (!in) {
			memcpy(big, c->head, 3);
			memset(big + 3, 0xab, len);
			in = big;
			len += 3;
		}
		memset(&t, 0x5a, sizeof(t));
		rc = dane_tlsa_parse(in, len, &t, &why);
		CHECK(rc == c->rc, "%s: rc got %d want %d", c->what, rc, c->rc);
		if (rc != 0) {
			CHECK(why.code == c->rc && why.reason != NULL,
			      "%s: why.code got %d want %d, reason %s", c->what, why.code, c->rc,
			      why.reason ? why.reason : "(null)");
			CHECK(t.len == 0, "%s: len after refusal got %zu want 0", c->what, t.len);
			continue;
		}
		CHECK(t.usage == in[0] && t.selector == in[1] && t.mtype == in[2],
		      "%s: got %u %u %u want %u %u %u", c->what, t.usage, t.selector, t.mtype,
		      in[0], in[1], in[2]);
		CHECK(t.len == len - 3, "%s: len got %zu want %zu", c->what, t.len, len - 3);
		CHECK(memcmp(t.data, in + 3, len - 3) == 0, "%s: data differs", c->what);
		CHECK(dane_tlsa_usable(&t) == c->usable, "%s: usable got %d want %d", c->what,
		      dane_tlsa_usable(&t), c->usable);
	}
	/* A NULL why is allowed. */
	{
		static struct dane_tlsa t;

		CHECK_INT(dane_tlsa_parse(W("\3\1"), &t, NULL), RL_EPARSE);
	}
}

/* Records made by hand (not by the parser) with a length that does not fit. */
static void test_usable_hand_made(void)
{
	static const struct {
		const char *what;
		uint8_t usage, selector, mtype;
		size_t len;
		int want;
	} cases[] = {
	    {"3 1 1 len 32", 3, 1, 1, 32, 1},
	    {"3 1 1 len 20", 3, 1, 1, 20, 0},
	    {"2 0 2 len 32", 2, 0, 2, 32, 0},
	    {"3 0 0 len 0", 3, 0, 0, 0, 0},
	    {"3 0 0 len max", 3, 0, 0, DANE_DATA_MAX, 1},
	};
	static struct dane_tlsa t;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&t, 0, sizeof(t));
		t.usage = cases[i].usage;
		t.selector = cases[i].selector;
		t.mtype = cases[i].mtype;
		t.len = cases[i].len;
		CHECK(dane_tlsa_usable(&t) == cases[i].want, "%s: got %d want %d", cases[i].what,
		      dane_tlsa_usable(&t), cases[i].want);
	}
}

static void test_text(void)
{
	static const struct {
		const char *what;
		size_t dlen; /* data octets 0x5E, 0x01, 0x02, ... */
		size_t size; /* output buffer size */
		const char *want;
	} cases[] = {
	    {"whole", 4, 64, "3 1 1 5E010203"},
	    {"exactly fits", 4, 15, "3 1 1 5E010203"},
	    {"one short: cut with dots", 4, 14, "3 1 1 5E01..."},
	    {"room for one octet", 4, 12, "3 1 1 5E..."},
	    {"room for dots only", 4, 10, "3 1 1 ..."},
	    {"room for part of the dots", 4, 8, "3 1 1 ."},
	    {"head cut", 4, 4, "3 1"},
	    {"one byte: empty string", 4, 1, ""},
	    {"no data", 0, 64, "3 1 1"},
	};
	static struct dane_tlsa t;
	static unsigned char buf[64];
	char out[80];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&t, 0, sizeof(t));
		t.usage = 3;
		t.selector = 1;
		t.mtype = 1;
		t.len = cases[i].dlen;
		for (size_t j = 0; j < t.len; j++)
			buf[j] = (unsigned char)(j == 0 ? 0x5e : j);
		t.data = buf;
		memset(out, '#', sizeof(out));
		dane_tlsa_text(&t, out, cases[i].size);
		CHECK(strcmp(out, cases[i].want) == 0, "%s: got \"%s\" want \"%s\"", cases[i].what,
		      out, cases[i].want);
		CHECK(out[cases[i].size] == '#', "%s: wrote past size %zu", cases[i].what,
		      cases[i].size);
	}
	/* Size 0 writes nothing at all. */
	memset(out, '#', sizeof(out));
	dane_tlsa_text(&t, out, 0);
	CHECK(out[0] == '#', "size 0: got byte 0x%02x want '#'", (unsigned char)out[0]);
}

/* A full 4096-octet record in a reason-sized buffer: cut, terminated. */
static void test_text_big(void)
{
	static struct dane_tlsa t;
	static unsigned char buf[DANE_DATA_MAX];
	char out[100];

	memset(&t, 0, sizeof(t));
	memset(buf, 0xff, sizeof(buf));
	t.data = buf;
	t.usage = 2;
	t.selector = 0;
	t.mtype = 0;
	t.len = DANE_DATA_MAX;
	dane_tlsa_text(&t, out, sizeof(out));
	CHECK(strlen(out) == sizeof(out) - 1 || strlen(out) == sizeof(out) - 2,
	      "len got %zu want %zu or %zu", strlen(out), sizeof(out) - 1, sizeof(out) - 2);
	CHECK(strncmp(out, "2 0 0 FFFF", 10) == 0, "head got \"%.10s\" want \"2 0 0 FFFF\"", out);
	CHECK(strcmp(out + strlen(out) - 3, "...") == 0, "tail got \"%s\" want \"...\"",
	      out + strlen(out) - 3);
}

int main(void)
{
	test_parse();
	test_usable_hand_made();
	test_text();
	test_text_big();
	return TEST_DONE();
}
