/*
 * test_sts: the MTA-STS TXT record and policy parsers, the mx matcher and
 * the TLS-RPT record parser (policy/sts_*.c).
 */
#include <stdio.h>
#include <string.h>

#include "sts.h"
#include "tap.h"

/* Records of an RRset, each given as its character-strings (NULL ends a record). */
#define NREC 3
#define NSTR 5

static unsigned char rdata[NREC][2048];
static struct sts_txt rrs[NREC];

/* Wire rdata for each record: a length octet before each string. */
static size_t build(const char *const rr[][NSTR])
{
	size_t n = 0;

	for (; n < NREC && rr[n][0]; n++) {
		size_t pos = 0;

		for (size_t s = 0; s < NSTR && rr[n][s]; s++) {
			size_t l = strlen(rr[n][s]);

			if (l > 255 || pos + 1 + l > sizeof(rdata[n])) {
				fprintf(stderr, "test bug: string too long\n");
				return 0;
			}
			rdata[n][pos++] = (unsigned char)l;
			memcpy(rdata[n] + pos, rr[n][s], l);
			pos += l;
		}
		rrs[n].rdata = rdata[n];
		rrs[n].len = pos;
	}
	return n;
}

/* The parsers' promise on failure: a code, its reason, and that code in why. */
static void check_why(const char *what, int rc, int want, const struct rl_why *why)
{
	CHECK(rc == want, "%s: rc got %d (%s) want %d", what, rc, why->reason ? why->reason : "",
	      want);
	if (rc != 0)
		CHECK(why->code == rc && why->reason != NULL, "%s: why.code got %d want %d", what,
		      why->code, rc);
}

#define ID32   "abcdefghijklmnopqrstuvwxyz012345"
#define NAME32 "abcdefghijklmnopqrstuvwxyz_-.789"

static const struct {
	const char *what;
	const char *rr[NREC][NSTR];
	int rc;
	const char *id;
} txt_cases[] = {
    {"RFC example", {{"v=STSv1; id=20160831085700Z;"}}, 0, "20160831085700Z"},
    {"no blanks", {{"v=STSv1;id=abc"}}, 0, "abc"},
    {"blank before ';' (errata 6285)", {{"v=STSv1 ; id=abc"}}, 0, "abc"},
    {"tabs, trailing ';'", {{"v=STSv1;\tid=abc\t;"}}, 0, "abc"},
    {"trailing blank", {{"v=STSv1; id=abc "}}, 0, "abc"},
    {"strings concatenated", {{"v=STS", "v1; id=ab", "c"}}, 0, "abc"},
    {"empty string inside", {{"v=STSv1; id=", "", "abc"}}, 0, "abc"},
    {"id of 32", {{"v=STSv1; id=" ID32}}, 0, ID32},
    {"extension before id", {{"v=STSv1; " NAME32 "=1:2<>~; id=x"}}, 0, "x"},
    {"extension after id", {{"v=STSv1; id=x; ext=foo"}}, 0, "x"},
    {"repeated id: the first counts", {{"v=STSv1; id=first; id=second"}}, 0, "first"},
    {"other records ignored", {{"v=spf1 -all"}, {"v=STSv1; id=a1"}, {"hello"}}, 0, "a1"},
    {"v=STSv10 is another record", {{"v=STSv10; id=a"}, {"v=STSv1; id=b"}}, 0, "b"},
    {"empty record ignored", {{""}, {"v=STSv1; id=b"}}, 0, "b"},
    {"no records", {{NULL}}, RL_ENOTFOUND, NULL},
    {"no STS record", {{"v=spf1 -all"}, {"x"}}, RL_ENOTFOUND, NULL},
    {"tag is case-sensitive", {{"V=STSv1; id=a"}}, RL_ENOTFOUND, NULL},
    {"version is case-sensitive", {{"v=stsv1; id=a"}}, RL_ENOTFOUND, NULL},
    {"leading blank", {{" v=STSv1; id=a"}}, RL_ENOTFOUND, NULL},
    {"two STS records", {{"v=STSv1; id=a"}, {"v=STSv1; id=b"}}, RL_EPARSE, NULL},
    {"two identical records", {{"v=STSv1; id=a"}, {"v=STSv1; id=a"}}, RL_EPARSE, NULL},
    {"a valid and a broken one", {{"v=STSv1; id=a"}, {"v=STSv1"}}, RL_EPARSE, NULL},
    {"version only", {{"v=STSv1"}}, RL_EPARSE, NULL},
    {"version and ';'", {{"v=STSv1;"}}, RL_EPARSE, NULL},
    {"no id", {{"v=STSv1; ext=1"}}, RL_EPARSE, NULL},
    {"ID is an extension", {{"v=STSv1; ID=abc"}}, RL_EPARSE, NULL},
    {"empty id", {{"v=STSv1; id="}}, RL_EPARSE, NULL},
    {"id of 33", {{"v=STSv1; id=" ID32 "6"}}, RL_EPARSE, NULL},
    {"id with '-'", {{"v=STSv1; id=abc-def"}}, RL_EPARSE, NULL},
    {"id with CR", {{"v=STSv1; id=abc\r"}}, RL_EPARSE, NULL},
    {"second id malformed", {{"v=STSv1; id=a; id=b-c"}}, RL_EPARSE, NULL},
    {"blank inside id", {{"v=STSv1; id=abc def"}}, RL_EPARSE, NULL},
    {"empty field", {{"v=STSv1;; id=a"}}, RL_EPARSE, NULL},
    {"'=' in a value", {{"v=STSv1; id=a; x=b=c"}}, RL_EPARSE, NULL},
    {"empty extension value", {{"v=STSv1; id=a; x="}}, RL_EPARSE, NULL},
    {"extension name of 33", {{"v=STSv1; id=a; " NAME32 "0=1"}}, RL_EPARSE, NULL},
    {"extension name starts with '_'", {{"v=STSv1; id=a; _x=1"}}, RL_EPARSE, NULL},
    {"no '=' after a name", {{"v=STSv1; id=a; x"}}, RL_EPARSE, NULL},
    {"8-bit value", {{"v=STSv1; id=a; x=\xc3\xa9"}}, RL_EPARSE, NULL},
    {"no ';' between fields", {{"v=STSv1 id=a"}}, RL_EPARSE, NULL},
};

static void test_txt(void)
{
	for (size_t i = 0; i < sizeof(txt_cases) / sizeof(txt_cases[0]); i++) {
		struct sts_record r;
		struct rl_why why = {0, NULL, 0};
		size_t n = build(txt_cases[i].rr);
		int rc;

		memset(&r, 'x', sizeof(r));
		rc = sts_txt_parse(rrs, n, &r, &why);
		check_why(txt_cases[i].what, rc, txt_cases[i].rc, &why);
		if (rc != txt_cases[i].rc)
			continue;
		if (rc == 0)
			CHECK(strcmp(r.id, txt_cases[i].id) == 0, "%s: id got \"%s\" want \"%s\"",
			      txt_cases[i].what, r.id, txt_cases[i].id);
		if (rc != 0)
			CHECK(r.id[0] == '\0', "%s: id after refusal got \"%.33s\"",
			      txt_cases[i].what, r.id);
	}
}

/* Wire forms that strings cannot give: NULs, bad length octets, long records. */
static void test_txt_wire(void)
{
	static const struct {
		const char *what;
		const char *rdata;
		size_t len;
		int rc;
	} cases[] = {
	    {"NUL in the id", "\x0fv=STSv1; id=a\0b", 16, RL_EPARSE},
	    {"NUL after the tag", "\x0dv=STSv1\0id=ab", 14, RL_ENOTFOUND},
	    {"length past the end", "\x20v=STSv1; id=a", 14, RL_EPARSE},
	    {"empty rdata", "", 0, RL_EPARSE},
	    {"good", "\x0dv=STSv1; id=a", 14, 0},
	    {"good, trailing empty string", "\x0dv=STSv1; id=a\0", 15, 0},
	};
	static unsigned char big[2048];
	struct sts_record r;
	struct rl_why why = {0, NULL, 0};
	struct sts_txt two[2];
	size_t pos = 0;
	int rc;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sts_txt t = {(const unsigned char *)cases[i].rdata, cases[i].len};

		rc = sts_txt_parse(&t, 1, &r, &why);
		check_why(cases[i].what, rc, cases[i].rc, &why);
	}
	/* A broken record spoils the RRset even next to a good one. */
	two[0].rdata = (const unsigned char *)"\x0dv=STSv1; id=a";
	two[0].len = 14;
	two[1].rdata = (const unsigned char *)"\x05v=sp";
	two[1].len = 4;
	check_why("good and broken", sts_txt_parse(two, 2, &r, &why), RL_EPARSE, &why);
	/* 7 strings of 255 octets of extensions, then the id: offsets stay right. */
	big[pos++] = 8;
	memcpy(big + pos, "v=STSv1;", 8);
	pos += 8;
	for (int s = 0; s < 7; s++) {
		big[pos++] = 255;
		for (int j = 0; j < 255; j += 5)
			memcpy(big + pos + j, "x=yy;", 5);
		pos += 255;
	}
	big[pos++] = 6;
	memcpy(big + pos, "id=big", 6);
	pos += 6;
	two[0].rdata = big;
	two[0].len = pos;
	rc = sts_txt_parse(two, 1, &r, &why);
	CHECK(rc == 0 && strcmp(r.id, "big") == 0, "long record: rc %d id \"%s\"", rc, r.id);
	big[pos - 1] = '-';
	rc = sts_txt_parse(two, 1, &r, &why);
	CHECK(rc == RL_EPARSE && why.offset == 8 + 7 * 255 + 5,
	      "long record, bad id: rc %d offset got %zu want %d", rc, why.offset, 8 + 7 * 255 + 5);
}

#define P_HEAD "version: STSv1\r\nmode: enforce\r\n"

static const struct {
	const char *what;
	const char *body;
	int rc;
	enum sts_mode mode;
	uint32_t max_age;
	const char *mx; /* patterns joined by " " */
} policy_cases[] = {
    {"RFC example, CRLF",
     "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
     "mx: backupmx.example.com\r\nmax_age: 604800\r\n",
     0, STS_MODE_ENFORCE, 604800, "mail.example.com *.example.net backupmx.example.com"},
    {"LF, no final line end", "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 86400", 0,
     STS_MODE_TESTING, 86400, "a.example"},
    {"mixed line ends", "version: STSv1\r\nmode: testing\nmx: a.example\r\nmax_age: 1\n", 0,
     STS_MODE_TESTING, 1, "a.example"},
    {"none without mx", "version: STSv1\nmode: none\nmax_age: 0\n", 0, STS_MODE_NONE, 0, ""},
    {"none with mx", "version: STSv1\nmode: none\nmx: a.b\nmax_age: 0\n", 0, STS_MODE_NONE, 0,
     "a.b"},
    {"any order", "max_age: 5\nmx: a.b\nmode: enforce\nversion: STSv1\n", 0, STS_MODE_ENFORCE, 5,
     "a.b"},
    {"max_age at the maximum", P_HEAD "mx: a.b\nmax_age: 31557600\n", 0, STS_MODE_ENFORCE, 31557600,
     "a.b"},
    {"max_age one over is lowered", P_HEAD "mx: a.b\nmax_age: 31557601\n", 0, STS_MODE_ENFORCE,
     31557600, "a.b"},
    {"max_age of 10 nines is lowered", P_HEAD "mx: a.b\nmax_age: 9999999999\n", 0, STS_MODE_ENFORCE,
     31557600, "a.b"},
    {"max_age with leading zeros", P_HEAD "mx: a.b\nmax_age: 0000000042\n", 0, STS_MODE_ENFORCE, 42,
     "a.b"},
    {"unknown keys ignored", P_HEAD "mx: a.b\nfoo_bar.x-y: anything at all\nempty:\nmax_age: 1\n",
     0, STS_MODE_ENFORCE, 1, "a.b"},
    {"8-bit in an unknown value", P_HEAD "mx: a.b\nnote: caf\xc3\xa9\nmax_age: 1\n", 0,
     STS_MODE_ENFORCE, 1, "a.b"},
    {"repeated mode: the first counts", P_HEAD "mode: none\nmx: a.b\nmax_age: 1\n", 0,
     STS_MODE_ENFORCE, 1, "a.b"},
    {"repeated max_age, later one bad", P_HEAD "mx: a.b\nmax_age: 7\nmax_age: x\n", 0,
     STS_MODE_ENFORCE, 7, "a.b"},
    {"repeated version", P_HEAD "version: STSv2\nmx: a.b\nmax_age: 1\n", 0, STS_MODE_ENFORCE, 1,
     "a.b"},
    {"no blank after ':'", "version:STSv1\nmode:enforce\nmx:a.b\nmax_age:1\n", 0, STS_MODE_ENFORCE,
     1, "a.b"},
    {"blanks around lines, blank lines",
     "\n  version: STSv1 \r\n\t mode:\tenforce\t\r\n\r\n   \nmx:  a.b  \nmax_age: 1\n\n", 0,
     STS_MODE_ENFORCE, 1, "a.b"},
    {"mx lowered, trailing dot dropped", P_HEAD "mx: Mail.Example.COM.\nmx: *.EX.net\nmax_age: 1\n",
     0, STS_MODE_ENFORCE, 1, "mail.example.com *.ex.net"},
    {"single-label mx", P_HEAD "mx: localhost\nmax_age: 1\n", 0, STS_MODE_ENFORCE, 1, "localhost"},
    {"digits and hyphens", P_HEAD "mx: 1-2.x9.c-o-m\nmax_age: 1\n", 0, STS_MODE_ENFORCE, 1,
     "1-2.x9.c-o-m"},
    {"final CR without LF", P_HEAD "mx: a.b\nmax_age: 1\r", 0, STS_MODE_ENFORCE, 1, "a.b"},
    {"version STSv2", "version: STSv2\nmode: none\nmax_age: 1\n", RL_EVERSION, 0, 0, NULL},
    {"version lower case", "version: stsv1\nmode: none\nmax_age: 1\n", RL_EVERSION, 0, 0, NULL},
    {"version with suffix", "version: STSv1x\nmode: none\nmax_age: 1\n", RL_EVERSION, 0, 0, NULL},
    {"mode Enforce", "version: STSv1\nmode: Enforce\nmx: a.b\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mode with more words", "version: STSv1\nmode: enforce now\nmx: a.b\nmax_age: 1\n", RL_EPARSE,
     0, 0, NULL},
    {"mode empty", "version: STSv1\nmode:\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"MX is another key", P_HEAD "MX: a.b\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"max_age negative", P_HEAD "mx: a.b\nmax_age: -1\n", RL_EPARSE, 0, 0, NULL},
    {"max_age 1e3", P_HEAD "mx: a.b\nmax_age: 1e3\n", RL_EPARSE, 0, 0, NULL},
    {"max_age +5", P_HEAD "mx: a.b\nmax_age: +5\n", RL_EPARSE, 0, 0, NULL},
    {"max_age empty", P_HEAD "mx: a.b\nmax_age:\n", RL_EPARSE, 0, 0, NULL},
    {"max_age 11 digits", P_HEAD "mx: a.b\nmax_age: 10000000000\n", RL_EPARSE, 0, 0, NULL},
    {"max_age 2^64", P_HEAD "mx: a.b\nmax_age: 18446744073709551616\n", RL_EPARSE, 0, 0, NULL},
    {"max_age two numbers", P_HEAD "mx: a.b\nmax_age: 5 5\n", RL_EPARSE, 0, 0, NULL},
    {"no version", "mode: none\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"no mode", "version: STSv1\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"no max_age", P_HEAD "mx: a.b\n", RL_EPARSE, 0, 0, NULL},
    {"enforce without mx", P_HEAD "max_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"testing without mx", "version: STSv1\nmode: testing\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"empty body", "", RL_EPARSE, 0, 0, NULL},
    {"mx *", P_HEAD "mx: *\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mx *.", P_HEAD "mx: *.\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mx wildcard in the middle", P_HEAD "mx: a.*.b\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mx partial wildcard", P_HEAD "mx: *mx.example.com\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mx two wildcards", P_HEAD "mx: *.*.example.com\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mx empty label", P_HEAD "mx: mail..example.com\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mx leading dot", P_HEAD "mx: .example.com\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mx two trailing dots", P_HEAD "mx: a.b..\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mx leading hyphen", P_HEAD "mx: -a.example.com\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mx trailing hyphen", P_HEAD "mx: a-.example.com\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mx underscore", P_HEAD "mx: mail_x.example.com\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mx 8-bit",
     P_HEAD "mx: b\xc3\xbc"
	    "cher.example\nmax_age: 1\n",
     RL_EPARSE, 0, 0, NULL},
    {"mx with a blank inside", P_HEAD "mx: a.b c.d\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mx empty", P_HEAD "mx:\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"mx label of 64",
     P_HEAD "mx: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b\nmax_age: 1\n",
     RL_EPARSE, 0, 0, NULL},
    {"line without ':'", "version STSv1\nmode: none\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"blank before ':'", "version: STSv1\nmode : none\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"key starts with '_'", "version: STSv1\n_x: 1\nmode: none\nmax_age: 1\n", RL_EPARSE, 0, 0,
     NULL},
    {"key of 33", "version: STSv1\nabcdefghijklmnopqrstuvwxyz0123456: 1\nmode: none\nmax_age: 1\n",
     RL_EPARSE, 0, 0, NULL},
    {"bare CR between lines", "version: STSv1\rmode: none\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"control character", "version: STSv1\nmode: none\x1b\nmax_age: 1\n", RL_EPARSE, 0, 0, NULL},
    {"UTF-8 byte order mark", "\xef\xbb\xbfversion: STSv1\nmode: none\nmax_age: 1\n", RL_EPARSE, 0,
     0, NULL},
    {"HTML instead of a policy", "<html><body>Not found</body></html>\n", RL_EPARSE, 0, 0, NULL},
};

/* The patterns joined by " ", into buf. */
static void join_mx(const struct sts_policy *p, char *buf, size_t size)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->nmx && pos < size; i++)
		pos += (size_t)snprintf(buf + pos, size - pos, "%s%s", i ? " " : "", p->mx[i]);
}

static void test_policy(void)
{
	static struct sts_policy p;
	static char got[STS_MX_MAX * (STS_NAME_MAX + 1)];

	for (size_t i = 0; i < sizeof(policy_cases) / sizeof(policy_cases[0]); i++) {
		struct rl_why why = {0, NULL, 0};
		const char *what = policy_cases[i].what;
		int rc;

		memset(&p, 0x5a, sizeof(p));
		rc = sts_policy_parse(policy_cases[i].body, strlen(policy_cases[i].body), &p, &why);
		check_why(what, rc, policy_cases[i].rc, &why);
		if (rc != policy_cases[i].rc)
			continue;
		if (rc != 0) {
			CHECK(p.nmx == 0 && p.mode == STS_MODE_NONE && p.max_age == 0,
			      "%s: result not emptied (nmx %zu)", what, p.nmx);
			CHECK(why.offset <= strlen(policy_cases[i].body), "%s: offset %zu past %zu",
			      what, why.offset, strlen(policy_cases[i].body));
			continue;
		}
		join_mx(&p, got, sizeof(got));
		CHECK(p.mode == policy_cases[i].mode, "%s: mode got %s want %s", what,
		      sts_mode_name(p.mode), sts_mode_name(policy_cases[i].mode));
		CHECK(p.max_age == policy_cases[i].max_age, "%s: max_age got %u want %u", what,
		      (unsigned)p.max_age, (unsigned)policy_cases[i].max_age);
		CHECK(strcmp(got, policy_cases[i].mx) == 0, "%s: mx got \"%s\" want \"%s\"", what,
		      got, policy_cases[i].mx);
	}
}

/* Where the refusal points: the offending line's byte, counted from the body's start. */
static void test_policy_offsets(void)
{
	static const struct {
		const char *what, *body;
		size_t offset;
	} cases[] = {
	    {"bad mode on line 2", "version: STSv1\r\nmode: strict\r\n", 22},
	    {"bad mx after blanks", "version: STSv1\nmx:   a..b\n", 21},
	    {"NUL", "version: STSv1\nmo\0de: none\n", 17},
	    {"no colon", "version: STSv1\n  mode none\n", 21},
	};
	static struct sts_policy p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_why why = {0, NULL, 0};
		size_t len = strlen(cases[i].body);

		if (strcmp(cases[i].what, "NUL") == 0)
			len = 27;
		CHECK(sts_policy_parse(cases[i].body, len, &p, &why) < 0, "%s: parsed",
		      cases[i].what);
		CHECK(why.offset == cases[i].offset, "%s: offset got %zu want %zu (%s)",
		      cases[i].what, why.offset, cases[i].offset, why.reason ? why.reason : "");
	}
}

/* Bounds: 64 KiB of body, 64 mx patterns, 253-character patterns. */
static void test_policy_limits(void)
{
	static char body[STS_POLICY_MAX + 2];
	static struct sts_policy p;
	struct rl_why why = {0, NULL, 0};
	size_t pos;
	int rc;

	/* A body of exactly the maximum, padded by an unknown key's long value. */
	pos = (size_t)snprintf(body, sizeof(body), P_HEAD "mx: a.b\nmax_age: 1\npad: ");
	memset(body + pos, 'x', STS_POLICY_MAX - pos);
	rc = sts_policy_parse(body, STS_POLICY_MAX, &p, &why);
	CHECK(rc == 0, "body of 65536: rc got %d (%s) want 0", rc, why.reason);
	body[STS_POLICY_MAX] = 'x';
	rc = sts_policy_parse(body, STS_POLICY_MAX + 1, &p, &why);
	CHECK(rc == RL_ETOOBIG, "body of 65537: rc got %d want %d", rc, RL_ETOOBIG);

	/* 64 mx lines pass, 65 do not. */
	pos = (size_t)snprintf(body, sizeof(body), P_HEAD "max_age: 1\n");
	for (int i = 0; i < STS_MX_MAX; i++)
		pos += (size_t)snprintf(body + pos, sizeof(body) - pos, "mx: mx%d.example\n", i);
	rc = sts_policy_parse(body, pos, &p, &why);
	CHECK(rc == 0 && p.nmx == STS_MX_MAX && strcmp(p.mx[63], "mx63.example") == 0,
	      "64 mx: rc %d nmx %zu", rc, p.nmx);
	pos += (size_t)snprintf(body + pos, sizeof(body) - pos, "mx: one.more\n");
	rc = sts_policy_parse(body, pos, &p, &why);
	CHECK(rc == RL_ETOOBIG && p.nmx == 0, "65 mx: rc got %d want %d", rc, RL_ETOOBIG);

	/* A 253-character name (63.63.63.61) passes, 254 does not, nor "*." + 252. */
	{
		char name[260];
		static const char *heads[] = {"", "x", "*."};
		static const int want[] = {0, RL_EPARSE, RL_EPARSE};

		for (int h = 0; h < 3; h++) {
			size_t k = (size_t)snprintf(name, sizeof(name), "%s", heads[h]);

			for (int l = 0; l < 4; l++) {
				size_t ll = l < 3 ? 63 : 61;

				memset(name + k, 'a' + l, ll);
				k += ll;
				name[k++] = l < 3 ? '.' : '\0';
			}
			if (h == 2)
				name[strlen(name) - 1] = '\0';
			snprintf(body, sizeof(body), P_HEAD "max_age: 1\nmx: %s\n", name);
			rc = sts_policy_parse(body, strlen(body), &p, &why);
			CHECK(rc == want[h], "mx of %zu characters: rc got %d want %d",
			      strlen(name), rc, want[h]);
		}
	}
}

static void test_match(void)
{
	static struct sts_policy p;
	static const char body[] = "version: STSv1\nmode: enforce\nmax_age: 1\n"
				   "mx: mail.example.com\nmx: *.example.net\nmx: localhost\n";
	static const struct {
		const char *host;
		int want;
	} cases[] = {
	    {"mail.example.com", 1},
	    {"MAIL.Example.COM", 1},
	    {"mail.example.com.", 1},
	    {"mail.example.com..", 0},
	    {"mail.example.co", 0},
	    {"ail.example.com", 0},
	    {"xmail.example.com", 0},
	    {"a.mail.example.com", 0},
	    {"example.com", 0},
	    {"mx.example.net", 1},
	    {"MX.EXAMPLE.NET.", 1},
	    {"x.example.net", 1},
	    {"example.net", 0},
	    {"a.b.example.net", 0},
	    {".example.net", 0},
	    {"*.example.net", 0},
	    {"x.example.net.evil", 0},
	    {"x.example.netx", 0},
	    {"evilexample.net", 0},
	    {"x_y.example.net", 0},
	    {"-x.example.net", 0},
	    {"x..example.net", 0},
	    {"localhost", 1},
	    {"LOCALHOST.", 1},
	    {"", 0},
	    {".", 0},
	};
	struct rl_why why = {0, NULL, 0};
	struct sts_policy none;
	int rc;

	rc = sts_policy_parse(body, sizeof(body) - 1, &p, &why);
	CHECK(rc == 0, "match policy: rc %d (%s)", rc, why.reason);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(sts_mx_match(&p, cases[i].host) == cases[i].want, "\"%s\": got %d want %d",
		      cases[i].host, sts_mx_match(&p, cases[i].host), cases[i].want);
	/* A wildcard over a 251-character domain: a 253-character host matches, 254 is no name. */
	{
		static struct sts_policy w;
		static char wbody[600], host[300];
		char dom[252];

		/* 63.63.63.59 */
		memset(dom, 'd', 251);
		dom[63] = dom[127] = dom[191] = '.';
		dom[251] = '\0';
		snprintf(wbody, sizeof(wbody),
			 "version: STSv1\nmode: enforce\nmax_age: 1\nmx: *.%s\n", dom);
		rc = sts_policy_parse(wbody, strlen(wbody), &w, &why);
		CHECK(rc == 0, "wildcard over 251: rc %d (%s)", rc, why.reason);
		snprintf(host, sizeof(host), "x.%s", dom);
		CHECK(sts_mx_match(&w, host) == 1, "253-character host: got 0 want 1");
		snprintf(host, sizeof(host), "xy.%s.", dom);
		CHECK(sts_mx_match(&w, host) == 0, "254-character host: got 1 want 0");
	}
	/* A policy without patterns (mode none) matches nothing. */
	memset(&none, 0, sizeof(none));
	CHECK(sts_mx_match(&none, "mail.example.com") == 0, "empty policy matched");
}

#define TLSRPT "v=TLSRPTv1; rua="
#define M4     "mailto:a@x,mailto:b@x,mailto:c@x,mailto:d@x"
#define M8     M4 ",mailto:e@x,mailto:f@x,mailto:g@x,mailto:h@x"

static const struct {
	const char *what;
	const char *rr[NREC][NSTR];
	int rc;
	const char *mailto, *https; /* joined by " " */
} tlsrpt_cases[] = {
    {"RFC example mailto",
     {{"v=TLSRPTv1;rua=mailto:reports@example.com"}},
     0,
     "mailto:reports@example.com",
     ""},
    {"RFC example https",
     {{"v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt"}},
     0,
     "",
     "https://reporting.example.com/v1/tlsrpt"},
    {"both",
     {{TLSRPT "mailto:a@example.com,https://r.example.com/x"}},
     0,
     "mailto:a@example.com",
     "https://r.example.com/x"},
    {"blanks around ','",
     {{TLSRPT "mailto:a@x.com , \tmailto:b@x.com"}},
     0,
     "mailto:a@x.com mailto:b@x.com",
     ""},
    {"split strings", {{"v=TLSRPTv1; rua=mai", "lto:a@x.c", "om"}}, 0, "mailto:a@x.com", ""},
    {"blank before ';', trailing ';'", {{"v=TLSRPTv1 ; rua=mailto:a@x;"}}, 0, "mailto:a@x", ""},
    {"extensions", {{"v=TLSRPTv1; ext=1; rua=mailto:a@x; z.y_x-1=a:b"}}, 0, "mailto:a@x", ""},
    {"scheme in upper case", {{TLSRPT "MAILTO:a@x,HTTPS://h/"}}, 0, "MAILTO:a@x", "HTTPS://h/"},
    {"percent-encoded '!' and ','", {{TLSRPT "mailto:a%21b%2Cc@x"}}, 0, "mailto:a%21b%2Cc@x", ""},
    {"query and port",
     {{TLSRPT "https://r.example:8443/p?a=b&c=d"}},
     0,
     "",
     "https://r.example:8443/p?a=b&c=d"},
    {"unknown scheme skipped",
     {{TLSRPT "http://r.example/,mailto:a@x,ftp://f"}},
     0,
     "mailto:a@x",
     ""},
    {"repeated rua: the first counts",
     {{TLSRPT "mailto:a@x; rua=mailto:b@x"}},
     0,
     "mailto:a@x",
     ""},
    {"eight kept",
     {{TLSRPT M8}},
     0,
     "mailto:a@x mailto:b@x mailto:c@x mailto:d@x mailto:e@x mailto:f@x mailto:g@x mailto:h@x",
     ""},
    {"more than eight: the first eight",
     {{TLSRPT M8 ",mailto:i@x,https://h"}},
     0,
     "mailto:a@x mailto:b@x mailto:c@x mailto:d@x mailto:e@x mailto:f@x mailto:g@x mailto:h@x",
     "https://h"},
    {"other records ignored", {{"v=spf1 -all"}, {TLSRPT "mailto:a@x"}}, 0, "mailto:a@x", ""},
    {"no records", {{NULL}}, RL_ENOTFOUND, NULL, NULL},
    {"tag in lower case", {{"v=tlsrptv1; rua=mailto:a@x"}}, RL_ENOTFOUND, NULL, NULL},
    {"v=TLSRPTv10", {{"v=TLSRPTv10; rua=mailto:a@x"}}, RL_ENOTFOUND, NULL, NULL},
    {"an MTA-STS record", {{"v=STSv1; id=a"}}, RL_ENOTFOUND, NULL, NULL},
    {"two records", {{TLSRPT "mailto:a@x"}, {TLSRPT "mailto:b@x"}}, RL_EPARSE, NULL, NULL},
    {"no rua", {{"v=TLSRPTv1; ext=1"}}, RL_EPARSE, NULL, NULL},
    {"version only", {{"v=TLSRPTv1"}}, RL_EPARSE, NULL, NULL},
    {"only unknown schemes", {{TLSRPT "http://r.example/,ftp://f"}}, RL_EPARSE, NULL, NULL},
    {"DMARC size suffix", {{TLSRPT "mailto:a@example.com!10m"}}, RL_EPARSE, NULL, NULL},
    {"'!' in the address", {{TLSRPT "mailto:a!b@example.com"}}, RL_EPARSE, NULL, NULL},
    {"bad percent", {{TLSRPT "mailto:a%2@x"}}, RL_EPARSE, NULL, NULL},
    {"percent at the end", {{TLSRPT "mailto:a@x%"}}, RL_EPARSE, NULL, NULL},
    {"percent not hex", {{TLSRPT "mailto:a%zz@x"}}, RL_EPARSE, NULL, NULL},
    {"empty rua", {{TLSRPT ""}}, RL_EPARSE, NULL, NULL},
    {"empty URI after ','", {{TLSRPT "mailto:a@x,"}}, RL_EPARSE, NULL, NULL},
    {"mailto: alone", {{TLSRPT "mailto:"}}, RL_EPARSE, NULL, NULL},
    {"https: without host", {{TLSRPT "https://"}}, RL_EPARSE, NULL, NULL},
    {"https: with one slash", {{TLSRPT "https:/x"}}, RL_EPARSE, NULL, NULL},
    {"https: path only", {{TLSRPT "https:///x"}}, RL_EPARSE, NULL, NULL},
    {"no scheme", {{TLSRPT "reports@example.com"}}, RL_EPARSE, NULL, NULL},
    {"empty scheme", {{TLSRPT ":x"}}, RL_EPARSE, NULL, NULL},
    {"blank inside a URI", {{TLSRPT "mailto:a b@x"}}, RL_EPARSE, NULL, NULL},
    {"quote in a URI", {{TLSRPT "mailto:\"a\"@x"}}, RL_EPARSE, NULL, NULL},
    {"8-bit in a URI", {{TLSRPT "mailto:b\xc3\xbc@x"}}, RL_EPARSE, NULL, NULL},
    {"second rua malformed", {{TLSRPT "mailto:a@x; rua=mailto:b!@x"}}, RL_EPARSE, NULL, NULL},
    {"bad extension", {{TLSRPT "mailto:a@x; e=a=b"}}, RL_EPARSE, NULL, NULL},
};

static void join_uris(char uris[][STS_URI_MAX + 1], size_t n, char *buf, size_t size)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && pos < size; i++)
		pos += (size_t)snprintf(buf + pos, size - pos, "%s%s", i ? " " : "", uris[i]);
}

static void test_tlsrpt(void)
{
	static struct sts_tlsrpt r;
	static char got[STS_RUA_MAX * (STS_URI_MAX + 1)];

	for (size_t i = 0; i < sizeof(tlsrpt_cases) / sizeof(tlsrpt_cases[0]); i++) {
		struct rl_why why = {0, NULL, 0};
		const char *what = tlsrpt_cases[i].what;
		size_t n = build(tlsrpt_cases[i].rr);
		int rc;

		memset(&r, 0x5a, sizeof(r));
		rc = sts_tlsrpt_parse(rrs, n, &r, &why);
		check_why(what, rc, tlsrpt_cases[i].rc, &why);
		if (rc != tlsrpt_cases[i].rc)
			continue;
		if (rc != 0) {
			CHECK(r.nmailto == 0 && r.nhttps == 0, "%s: result not emptied", what);
			continue;
		}
		join_uris(r.mailto, r.nmailto, got, sizeof(got));
		CHECK(strcmp(got, tlsrpt_cases[i].mailto) == 0, "%s: mailto got \"%s\" want \"%s\"",
		      what, got, tlsrpt_cases[i].mailto);
		join_uris(r.https, r.nhttps, got, sizeof(got));
		CHECK(strcmp(got, tlsrpt_cases[i].https) == 0, "%s: https got \"%s\" want \"%s\"",
		      what, got, tlsrpt_cases[i].https);
	}
}

/* A URI of exactly STS_URI_MAX characters passes; one more is refused. */
static void test_tlsrpt_uri_max(void)
{
	static unsigned char wire[1200];
	static struct sts_tlsrpt r;
	static const char head[] = "v=TLSRPTv1; rua=https://h/";

	for (int extra = 0; extra < 2; extra++) {
		struct rl_why why = {0, NULL, 0};
		struct sts_txt t;
		size_t path = STS_URI_MAX - (sizeof(head) - 1 - 16) + (size_t)extra, pos = 0, left;
		int rc;

		wire[pos++] = sizeof(head) - 1;
		memcpy(wire + pos, head, sizeof(head) - 1);
		pos += sizeof(head) - 1;
		for (left = path; left > 0;) {
			size_t s = left > 200 ? 200 : left;

			wire[pos++] = (unsigned char)s;
			memset(wire + pos, 'p', s);
			pos += s;
			left -= s;
		}
		t.rdata = wire;
		t.len = pos;
		rc = sts_tlsrpt_parse(&t, 1, &r, &why);
		if (extra == 0)
			CHECK(rc == 0 && r.nhttps == 1 && strlen(r.https[0]) == STS_URI_MAX,
			      "URI of %d: rc %d (%s)", STS_URI_MAX, rc, why.reason);
		else
			CHECK(rc == RL_ETOOBIG, "URI of %d: rc got %d want %d", STS_URI_MAX + 1, rc,
			      RL_ETOOBIG);
	}
}

static void test_mode_name(void)
{
	CHECK_STR(sts_mode_name(STS_MODE_NONE), "none");
	CHECK_STR(sts_mode_name(STS_MODE_TESTING), "testing");
	CHECK_STR(sts_mode_name(STS_MODE_ENFORCE), "enforce");
}

int main(void)
{
	test_txt();
	test_txt_wire();
	test_policy();
	test_policy_offsets();
	test_policy_limits();
	test_match();
	test_tlsrpt();
	test_tlsrpt_uri_max();
	test_mode_name();
	return TEST_DONE();
}
