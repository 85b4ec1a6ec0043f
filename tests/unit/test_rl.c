/*
 * test_rl: status codes, bounded buffers and string helpers (common/rl.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rl.h"
#include "tap.h"

/* CHECK_INT / CHECK_STR with the table row named in the message. */
#define CASE_INT(name, got, want)                                          \
	CHECK((long long)(got) == (long long)(want), "%s: got %lld want %lld", \
	      (name), (long long)(got), (long long)(want))
#define CASE_STR(name, got, want)                                          \
	do {                                                               \
		const char *cg_ = (got), *cw_ = (want);                    \
		CHECK(cg_ && cw_ && strcmp(cg_, cw_) == 0,                 \
		      "%s: got \"%s\" want \"%s\"", (name),                \
		      cg_ ? cg_ : "(null)", cw_ ? cw_ : "(null)");         \
	} while (0)

/* The buffer holds exactly want (len and NUL-terminated data). */
static void check_buf(const char *name, const struct rl_buf *b, const char *want)
{
	size_t n = strlen(want);

	CASE_INT(name, b->len, n);
	CHECK(b->len <= b->limit, "%s: len %zu past limit %zu", name, b->len, b->limit);
	if (n == 0 && b->data == NULL)
		return;
	CHECK(b->data != NULL, "%s: data is NULL, want \"%s\"", name, want);
	if (b->data) {
		CHECK(b->len < b->cap, "%s: len %zu cap %zu (no room for NUL)", name, b->len,
		      b->cap);
		CHECK(b->data[b->len] == '\0', "%s: not NUL-terminated", name);
		CHECK(b->len == n && memcmp(b->data, want, n) == 0, "%s: got \"%.*s\" want \"%s\"",
		      name, (int)b->len, b->data, want);
	}
}

static void test_strerror(void)
{
	static const struct {
		int code;
		const char *want;
	} cases[] = {
		{ RL_OK, "success" },
		{ RL_EPARSE, "malformed input" },
		{ RL_ETOOBIG, "size limit exceeded" },
		{ RL_ENOTFOUND, "not found" },
		{ RL_EQFULL, "queue storage is full" },
		{ RL_EQUEUE, "queue storage error" },
		{ RL_ECONFIG, "invalid configuration" },
		{ RL_ETLSREQ, "TLS is required but not available" },
		{ RL_EPOLICY, "TLS policy not satisfied" },
		{ RL_ETLS, "TLS failure" },
		{ RL_EPROTO, "protocol violation" },
		{ RL_ETIMEDOUT, "timed out" },
		{ RL_EVERSION, "unsupported record version" },
		{ 1, "unknown error" },
		{ -10000, "unknown error" },
		{ -10013, "unknown error" },
	};
	static const int errnos[] = { ENOENT, ENOMEM, EINVAL, EEXIST, ENOTSUP, EROFS, EBUSY, EPROTO };
	char name[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(name, sizeof(name), "rl_strerror(%d)", cases[i].code);
		CASE_STR(name, rl_strerror(cases[i].code), cases[i].want);
	}
	/* Negated errno values read as strerror() says. */
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++) {
		char want[256];

		snprintf(want, sizeof(want), "%s", strerror(errnos[i]));
		snprintf(name, sizeof(name), "rl_strerror(-%d)", errnos[i]);
		CASE_STR(name, rl_strerror(-errnos[i]), want);
	}
	/* Project codes lie below every errno value and are distinct. */
	CHECK(RL_EPARSE < -4095 && RL_EVERSION < -4095, "codes %d %d", RL_EPARSE, RL_EVERSION);
}

static void test_fail(void)
{
	struct rl_why why = { 0, NULL, 0 };
	int rc = rl_fail(&why, RL_EPARSE, "bad thing", 17);

	CHECK_INT(rc, RL_EPARSE);
	CHECK_INT(why.code, RL_EPARSE);
	CHECK_STR(why.reason, "bad thing");
	CHECK_INT(why.offset, 17);
	/* NULL why: only the code comes back. */
	CHECK_INT(rl_fail(NULL, -ENOMEM, "x", 0), -ENOMEM);
}

/* A sequence of appends against one limit, each with its result and content. */
static void test_append(void)
{
	static const struct {
		const char *name;
		size_t limit;
		const char *steps[6];  /* appended in turn (NULL ends) */
		int rcs[6];            /* result of each step */
		const char *want;      /* final content */
	} cases[] = {
		{ "fits", 16, { "abc", "def", NULL }, { 0, 0 }, "abcdef" },
		{ "exactly at limit", 8, { "abcd", "efgh", NULL }, { 0, 0 }, "abcdefgh" },
		{ "one past limit unchanged", 8, { "abcd", "efghi", NULL }, { 0, RL_ETOOBIG },
		  "abcd" },
		{ "past limit then fits", 8, { "abcd", "efghi", "efgh", NULL },
		  { 0, RL_ETOOBIG, 0 }, "abcdefgh" },
		{ "full then empty ok then one byte", 4, { "abcd", "", "x", NULL },
		  { 0, 0, RL_ETOOBIG }, "abcd" },
		{ "first append too big", 3, { "abcd", NULL }, { RL_ETOOBIG }, "" },
		{ "limit 0 empty append", 0, { "", "a", NULL }, { 0, RL_ETOOBIG }, "" },
		{ "grows past initial allocation", 1000,
		  { "0123456789012345678901234567890123456789012345678901234567890123456789",
		    "0123456789012345678901234567890123456789012345678901234567890123456789",
		    NULL },
		  { 0, 0 },
		  "0123456789012345678901234567890123456789012345678901234567890123456789"
		  "0123456789012345678901234567890123456789012345678901234567890123456789" },
	};
	char name[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_buf b;

		rl_buf_init(&b, cases[i].limit);
		for (size_t k = 0; k < 6 && cases[i].steps[k]; k++) {
			const char *s = cases[i].steps[k];
			int rc = rl_buf_append(&b, s, strlen(s));

			snprintf(name, sizeof(name), "append %s step %zu", cases[i].name, k);
			CASE_INT(name, rc, cases[i].rcs[k]);
		}
		snprintf(name, sizeof(name), "append %s", cases[i].name);
		check_buf(name, &b, cases[i].want);
		CASE_INT(name, b.limit, cases[i].limit);
		rl_buf_fini(&b);
		CHECK(b.data == NULL && b.len == 0, "%s: fini left data", name);
	}

	/* Binary content with NUL bytes is kept as given. */
	{
		struct rl_buf b;
		static const char bin[] = { 'a', '\0', 'b', '\r', '\n', (char)0xff };
		int rc;

		rl_buf_init(&b, 64);
		rc = rl_buf_append(&b, bin, sizeof(bin));
		CHECK_INT(rc, 0);
		CHECK_INT(b.len, sizeof(bin));
		CHECK(b.data && memcmp(b.data, bin, sizeof(bin)) == 0 && b.data[b.len] == '\0',
		      "binary content not kept");
		rl_buf_fini(&b);
	}
}

static void test_puts_printf(void)
{
	static const struct {
		const char *name;
		size_t limit;
		const char *prefix; /* appended first with rl_buf_puts */
		int num;
		const char *str;
		int want_rc;
		const char *want;
	} cases[] = {
		/* rl_buf_printf(b, "%d-%s", num, str) after the prefix */
		{ "simple", 64, "", 42, "x", 0, "42-x" },
		{ "after prefix", 64, "id=", -7, "abc", 0, "id=-7-abc" },
		{ "exactly fits", 8, "ab", 123, "de", 0, "ab123-de" },
		{ "one past limit unchanged", 8, "ab", 123, "def", RL_ETOOBIG, "ab" },
		{ "empty result", 4, "", 0, "", 0, "0-" },
		{ "long output grows", 400, ">",
		  1234567,
		  "........................................................................"
		  "........................................................................",
		  0,
		  ">1234567-"
		  "........................................................................"
		  "........................................................................" },
	};
	char name[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_buf b;
		int rc;

		snprintf(name, sizeof(name), "printf %s", cases[i].name);
		rl_buf_init(&b, cases[i].limit);
		rc = rl_buf_puts(&b, cases[i].prefix);
		CASE_INT(name, rc, 0);
		rc = rl_buf_printf(&b, "%d-%s", cases[i].num, cases[i].str);
		CASE_INT(name, rc, cases[i].want_rc);
		check_buf(name, &b, cases[i].want);
		rl_buf_fini(&b);
	}

	/* puts past the limit: refused, unchanged. */
	{
		struct rl_buf b;
		int rc;

		rl_buf_init(&b, 5);
		rc = rl_buf_puts(&b, "hello");
		CHECK_INT(rc, 0);
		rc = rl_buf_puts(&b, "!");
		CHECK_INT(rc, RL_ETOOBIG);
		check_buf("puts past limit", &b, "hello");
		rl_buf_reset(&b);
		check_buf("reset", &b, "");
		CHECK_INT(b.limit, 5);
		rc = rl_buf_puts(&b, "world");
		CHECK_INT(rc, 0);
		check_buf("append after reset", &b, "world");
		rl_buf_fini(&b);
	}
}

static void test_consume(void)
{
	static const struct {
		const char *name;
		const char *start;
		size_t n;
		const char *want;
	} cases[] = {
		{ "nothing", "hello world", 0, "hello world" },
		{ "prefix", "hello world", 6, "world" },
		{ "one byte", "hello", 1, "ello" },
		{ "all", "hello", 5, "" },
		{ "line", "EHLO x\r\nMAIL FROM:<>\r\n", 8, "MAIL FROM:<>\r\n" },
	};
	char name[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_buf b;
		int rc;

		snprintf(name, sizeof(name), "consume %s", cases[i].name);
		rl_buf_init(&b, 64);
		rc = rl_buf_puts(&b, cases[i].start);
		CASE_INT(name, rc, 0);
		rl_buf_consume(&b, cases[i].n);
		check_buf(name, &b, cases[i].want);
		/* The freed room is usable again up to the limit. */
		rc = rl_buf_puts(&b, "+");
		CASE_INT(name, rc, 0);
		rl_buf_fini(&b);
	}

	/* Consuming nothing from a fresh (never allocated) buffer. */
	{
		struct rl_buf b;

		rl_buf_init(&b, 16);
		rl_buf_consume(&b, 0);
		check_buf("consume 0 of fresh buffer", &b, "");
		rl_buf_fini(&b);
	}
}

static void test_take(void)
{
	struct rl_buf b;
	size_t len = 99;
	char *p;
	int rc;

	rl_buf_init(&b, 32);
	rc = rl_buf_puts(&b, "take me");
	CHECK_INT(rc, 0);
	p = rl_buf_take(&b, &len);
	CHECK(p != NULL, "take returned NULL");
	CHECK_INT(len, 7);
	if (p)
		CHECK_STR(p, "take me");
	/* The buffer is left empty, owns nothing, keeps its limit. */
	CHECK(b.data == NULL, "data %p after take", (void *)b.data);
	CHECK_INT(b.len, 0);
	CHECK_INT(b.cap, 0);
	CHECK_INT(b.limit, 32);
	free(p);

	/* Still usable afterwards; len may be NULL. */
	rc = rl_buf_puts(&b, "again");
	CHECK_INT(rc, 0);
	check_buf("append after take", &b, "again");
	p = rl_buf_take(&b, NULL);
	CHECK(p != NULL && strcmp(p, "again") == 0, "take(NULL len) got \"%s\"",
	      p ? p : "(null)");
	free(p);

	/* Taking an empty buffer gives length 0 (the pointer may be NULL). */
	len = 99;
	p = rl_buf_take(&b, &len);
	CHECK_INT(len, 0);
	free(p);
	rl_buf_fini(&b);
}

static void test_space_commit(void)
{
	static const struct {
		const char *name;
		size_t limit;
		const char *prefix;  /* put there first */
		size_t want;         /* asked of rl_buf_space() */
		int null;            /* NULL expected */
		size_t min_avail;    /* *avail at least */
		size_t max_avail;    /* and at most (room to the limit) */
		const char *write;   /* written there and committed */
		const char *result;
	} cases[] = {
		{ "fresh", 16, "", 4, 0, 4, 16, "abcd", "abcd" },
		{ "after prefix", 16, "xy", 4, 0, 4, 14, "abcd", "xyabcd" },
		{ "want past limit capped", 10, "xy", 100, 0, 8, 8, "12345678", "xy12345678" },
		{ "want more than allocated", 4096, "", 1000, 0, 1000, 4096, "z", "z" },
		{ "commit less than avail", 16, "", 8, 0, 8, 16, "", "" },
		{ "full buffer", 4, "abcd", 1, 1, 0, 0, NULL, "abcd" },
		{ "limit 0", 0, "", 1, 1, 0, 0, NULL, "" },
	};
	char name[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_buf b;
		size_t avail = 0;
		char *p;
		int rc;

		snprintf(name, sizeof(name), "space %s", cases[i].name);
		rl_buf_init(&b, cases[i].limit);
		rc = rl_buf_puts(&b, cases[i].prefix);
		CASE_INT(name, rc, 0);
		p = rl_buf_space(&b, cases[i].want, &avail);
		CHECK((p == NULL) == cases[i].null, "%s: got %s want %s", name,
		      p ? "pointer" : "NULL", cases[i].null ? "NULL" : "pointer");
		if (p && !cases[i].null) {
			size_t n = strlen(cases[i].write);

			CHECK(avail >= cases[i].min_avail && avail <= cases[i].max_avail,
			      "%s: avail %zu want %zu..%zu", name, avail, cases[i].min_avail,
			      cases[i].max_avail);
			CHECK(p == b.data + b.len, "%s: space not at the end", name);
			/* All of avail is writable (ASan/valgrind notice otherwise). */
			memset(p, '#', avail);
			memcpy(p, cases[i].write, n);
			rl_buf_commit(&b, n);
		}
		check_buf(name, &b, cases[i].result);
		rl_buf_fini(&b);
	}

	/* Filling the buffer with several space/commit rounds stops at the limit. */
	{
		struct rl_buf b;
		size_t avail, total = 0;
		char *p;
		int rounds = 0;

		rl_buf_init(&b, 300);
		while ((p = rl_buf_space(&b, 7, &avail)) != NULL && rounds < 1000) {
			size_t n = avail < 7 ? avail : 7;

			CHECK(avail >= 1, "round %d: avail 0", rounds);
			memset(p, 'a' + (rounds % 26), n);
			rl_buf_commit(&b, n);
			total += n;
			rounds++;
			if (n == 0)
				break;
		}
		CHECK_INT(total, 300);
		CHECK_INT(b.len, 300);
		CHECK(b.data && b.data[300] == '\0', "not terminated at the limit");
		CHECK(rl_buf_space(&b, 1, &avail) == NULL, "space past the limit");
		rl_buf_fini(&b);
	}
}

/* Run fn in a child and report whether it aborted (RL_REQUIRE). */
static int aborts(void (*fn)(void))
{
	pid_t pid;
	int st = 0;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };

		setrlimit(RLIMIT_CORE, &rl);
		if (!freopen("/dev/null", "w", stderr))
			_exit(3);
		fn();
		_exit(0);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void commit_past_limit(void)
{
	struct rl_buf b;
	size_t avail;

	rl_buf_init(&b, 4);
	if (rl_buf_space(&b, 4, &avail))
		rl_buf_commit(&b, 5);
	rl_buf_fini(&b);
}

static void consume_past_len(void)
{
	struct rl_buf b;

	rl_buf_init(&b, 8);
	if (rl_buf_puts(&b, "ab") == 0)
		rl_buf_consume(&b, 3);
	rl_buf_fini(&b);
}

static void test_require(void)
{
	CHECK_INT(aborts(commit_past_limit), 1);
	CHECK_INT(aborts(consume_past_len), 1);
}

/* No byte left behind: a count of the bytes of b's block past its end that are not zero. */
static size_t stale_after(const struct rl_buf *b, size_t upto)
{
	size_t n = 0;

	for (size_t i = b->len + 1; i < upto; i++)
		n += b->data[i] != 0;
	return n;
}

/*
 * A secret buffer (the SMTP input): a long command followed by an AUTH line
 * in one read.  Consuming the command shifts the AUTH line forward; the
 * tail it vacates is wiped.  Growing keeps the bytes (the old block is
 * wiped before free, which a test cannot observe); reset and consume wipe.
 * A plain buffer keeps the old behaviour (no wipe, realloc).
 */
static void test_secret(void)
{
	static const char cmd[] = "MAIL FROM:<a-rather-long-sender-address@example.com>\r\n";
	static const char auth[] = "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n";
	struct rl_buf b;
	size_t old;

	rl_buf_init(&b, 4096);
	rl_buf_set_secret(&b);
	CHECK_INT(rl_buf_append(&b, cmd, sizeof(cmd) - 1), 0);
	CHECK_INT(rl_buf_append(&b, auth, sizeof(auth) - 1), 0);
	old = b.len;
	rl_buf_consume(&b, sizeof(cmd) - 1);
	CHECK(b.len == sizeof(auth) - 1 && memcmp(b.data, auth, b.len) == 0,
	      "consume kept the AUTH line");
	CHECK_INT(stale_after(&b, old), 0);
	/* Growth by many steps keeps every byte. */
	for (int i = 0; i < 100; i++)
		CHECK_INT(rl_buf_append(&b, auth, sizeof(auth) - 1), 0);
	CHECK_INT(b.len, 101 * (sizeof(auth) - 1));
	CHECK(memcmp(b.data + 100 * (sizeof(auth) - 1), auth, sizeof(auth) - 1) == 0, "grown");
	CHECK_INT(b.secret, 1);
	old = b.len;
	rl_buf_reset(&b);
	CHECK_INT(stale_after(&b, old), 0);
	CHECK_INT(b.data[0], 0);
	rl_buf_fini(&b);
	CHECK_INT(b.secret, 1);

	/* A plain buffer is not marked, and a fresh one never is. */
	rl_buf_init(&b, 4096);
	CHECK_INT(b.secret, 0);
	CHECK_INT(rl_buf_append(&b, cmd, sizeof(cmd) - 1), 0);
	rl_buf_consume(&b, 5);
	CHECK(memcmp(b.data, cmd + 5, b.len) == 0, "plain consume");
	rl_buf_fini(&b);
}

static void test_strlcpy(void)
{
	static const struct {
		const char *src;
		size_t size;
		const char *want;
	} cases[] = {
		{ "hello", 16, "hello" },
		{ "hello", 6, "hello" },
		{ "hello", 5, "hell" },
		{ "hello", 2, "h" },
		{ "hello", 1, "" },
		{ "", 4, "" },
		{ "", 1, "" },
	};
	char name[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char dst[32];
		size_t n;

		memset(dst, 'X', sizeof(dst));
		n = rl_strlcpy(dst, cases[i].src, cases[i].size);
		snprintf(name, sizeof(name), "strlcpy(\"%s\", %zu)", cases[i].src, cases[i].size);
		CASE_INT(name, n, strlen(cases[i].src));
		CASE_STR(name, dst, cases[i].want);
		/* Nothing written past size. */
		CHECK(dst[cases[i].size] == 'X' || cases[i].size >= sizeof(dst),
		      "%s: wrote past size", name);
		CASE_INT(name, n >= cases[i].size, strcmp(cases[i].want, cases[i].src) != 0);
	}
	/* size 0: dst untouched, length still returned. */
	{
		char dst[4] = "abc";

		CHECK_INT(rl_strlcpy(dst, "hello", 0), 5);
		CHECK_STR(dst, "abc");
	}
}

static void test_wipe(void)
{
	unsigned char secret[16];
	int zero = 1;

	memset(secret, 0xA5, sizeof(secret));
	rl_wipe(secret, 8);
	for (size_t i = 0; i < sizeof(secret); i++)
		zero &= i < 8 ? secret[i] == 0 : secret[i] == 0xA5;
	CHECK(zero, "rl_wipe(8) did not clear exactly 8 bytes");
}

/* rl_lines: each case lists every line the splitter returns, in order. */
static void test_lines(void)
{
	struct want {
		int rc;
		const char *line;
		size_t off;     /* why.offset for a refused line */
		const char *why;
		size_t len;     /* the line's length when it holds a NUL */
	};
#define GOOD(l) { 1, l, 0, NULL, 0 }
#define BAD(rc, l, off, why, len) { rc, l, off, why, len }
#define END { 0, NULL, 0, NULL, 0 }
	static const struct {
		const char *name;
		const char *text;
		size_t len;
		size_t max;
		struct want w[5];
	} cases[] = {
		{ "empty", "", 0, 8, { END } },
		{ "one LF", "abc\n", 4, 8, { GOOD("abc"), END } },
		{ "no final LF", "abc\ndef", 7, 8, { GOOD("abc"), GOOD("def"), END } },
		{ "CRLF", "a b\r\n\r\nc\r", 9, 8,
		  { GOOD("a b"), GOOD(""), GOOD("c"), END } },
		{ "blank lines", "\n\n", 2, 8, { GOOD(""), GOOD(""), END } },
		{ "only one CR goes", "a\r\r\n", 4, 8,
		  { BAD(RL_EPARSE, "a\r", 1, "control character", 0), END } },
		{ "CR inside", "a\rb\n", 4, 8, { BAD(RL_EPARSE, "a\rb", 1, "control character", 0), END } },
		{ "tab allowed", "\ta\t\n", 4, 8, { GOOD("\ta\t"), END } },
		{ "exactly max", "12345678\n", 9, 8, { GOOD("12345678"), END } },
		{ "max without CRLF", "12345678\r\n", 10, 8, { GOOD("12345678"), END } },
		{ "one over max", "123456789\nok\n", 13, 8,
		  { BAD(RL_ETOOBIG, "123456789", 8, "line too long", 0), GOOD("ok"), END } },
		{ "length before bytes", "\001\001\001\001\001\001\001\001\001", 9, 8,
		  { BAD(RL_ETOOBIG, "\001\001\001\001\001\001\001\001\001", 8, "line too long", 0),
		    END } },
		{ "NUL", "ok\nx\0y\nz", 8, 8,
		  { GOOD("ok"), BAD(RL_EPARSE, "x\0y", 1, "NUL character", 3),
		    GOOD("z"), END } },
		{ "DEL", "ab\177\n", 4, 8, { BAD(RL_EPARSE, "ab\177", 2, "control character", 0), END } },
		{ "ESC", "\033[1m\n", 5, 8, { BAD(RL_EPARSE, "\033[1m", 0, "control character", 0), END } },
		{ "8-bit allowed", "\303\251\200\377\n", 5, 8, { GOOD("\303\251\200\377"), END } },
		{ "max 0", "\nx\n", 3, 0,
		  { GOOD(""), BAD(RL_ETOOBIG, "x", 0, "line too long", 0), END } },
	};
#undef GOOD
#undef BAD
#undef END

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_lines it;
		char name[80];

		rl_lines_init(&it, cases[i].text, cases[i].len, cases[i].max);
		for (unsigned k = 0; k < 5; k++) {
			const struct want *w = &cases[i].w[k];
			struct rl_why why = { 0, NULL, 0 };
			const char *line = NULL;
			size_t n = 0, wn = 0;
			int rc = rl_lines_next(&it, &line, &n, &why);

			snprintf(name, sizeof(name), "lines %s #%u", cases[i].name, k + 1);
			CASE_INT(name, rc, w->rc);
			if (rc == 0 || w->rc == 0)
				break;
			wn = w->len ? w->len : strlen(w->line);
			CASE_INT(name, n, wn);
			CHECK(n == wn && memcmp(line, w->line, n) == 0, "%s: got \"%.*s\"", name,
			      (int)n, line ? line : "");
			CASE_INT(name, it.line, k + 1);
			if (w->why) {
				CASE_STR(name, why.reason, w->why);
				CASE_INT(name, why.code, w->rc);
				CASE_INT(name, why.offset, w->off);
			} else {
				CHECK(why.reason == NULL, "%s: why filled for a good line", name);
			}
		}
	}

	/* why is optional: the code alone still tells what was wrong. */
	{
		struct rl_lines it;
		const char *line;
		size_t n;

		rl_lines_init(&it, "a\001\n123456789", 13, 8);
		CASE_INT("lines no why 1", rl_lines_next(&it, &line, &n, NULL), RL_EPARSE);
		CASE_INT("lines no why 2", rl_lines_next(&it, &line, &n, NULL), RL_ETOOBIG);
		CASE_INT("lines no why end", rl_lines_next(&it, &line, &n, NULL), 0);
		CASE_INT("lines no why end again", rl_lines_next(&it, &line, &n, NULL), 0);
		CASE_INT("lines count", it.line, 2);
	}
}

/* Write n bytes of a repeating pattern to path. */
static void write_pattern(const char *path, size_t n)
{
	FILE *f = fopen(path, "wb");

	CHECK(f != NULL, "fopen %s", path);
	for (size_t i = 0; f && i < n; i++)
		fputc('a' + (int)(i % 26), f);
	if (f)
		fclose(f);
}

/* rl_buf_read_file on regular files: contents, size bounds, errors. */
static void test_read_file_sizes(const char *dir)
{
	static const struct {
		const char *name;
		size_t size;   /* bytes in the file */
		size_t max;    /* max argument */
		size_t limit;  /* the buffer's own limit */
		int rc;
		size_t len;    /* bytes in b afterwards */
	} cases[] = {
		{ "empty", 0, 10, 100, 0, 0 },
		{ "small", 5, 10, 100, 0, 5 },
		{ "exactly max", 10, 10, 100, 0, 10 },
		{ "one over max", 11, 10, 100, RL_ETOOBIG, 10 },
		{ "max 0, empty", 0, 0, 100, 0, 0 },
		{ "max 0, one byte", 1, 0, 100, RL_ETOOBIG, 0 },
		{ "many chunks", 100000, 100000, 200000, 0, 100000 },
		{ "many chunks, over", 100001, 100000, 200000, RL_ETOOBIG, 100000 },
		{ "chunk boundary over", 16384 + 8192, 16384, 100000, RL_ETOOBIG, 16384 },
		{ "buffer limit first", 50, 100, 20, RL_ETOOBIG, 0 },
	};
	char path[256];

	snprintf(path, sizeof(path), "%s/file", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_why why = { 0, NULL, 0 };
		struct rl_buf b;
		char name[80];
		int rc;

		snprintf(name, sizeof(name), "read_file %s", cases[i].name);
		write_pattern(path, cases[i].size);
		rl_buf_init(&b, cases[i].limit);
		rc = rl_buf_read_file(&b, path, cases[i].max, &why);
		CASE_INT(name, rc, cases[i].rc);
		CASE_INT(name, b.len, cases[i].len);
		if (rc == RL_ETOOBIG)
			CASE_STR(name, why.reason, "file too large");
		for (size_t k = 0; k < b.len; k++)
			if (b.data[k] != 'a' + (int)(k % 26)) {
				CHECK(0, "%s: byte %zu differs", name, k);
				break;
			}
		rl_buf_fini(&b);
	}

	/* The file is appended to what the buffer holds. */
	{
		struct rl_buf b;

		write_pattern(path, 3);
		rl_buf_init(&b, 100);
		CASE_INT("read_file append", rl_buf_puts(&b, "x:"), 0);
		CASE_INT("read_file append", rl_buf_read_file(&b, path, 10, NULL), 0);
		check_buf("read_file append", &b, "x:abc");
		rl_buf_fini(&b);
	}
	unlink(path);
}

/*
 * rl_buf_read_file on what is not a regular file: refused at once with the
 * kind named, never read.  alarm() turns a hang on the FIFO (the bug this
 * guards against) into a failure.
 */
static void test_read_file_kinds(const char *dir)
{
	char fifo[256], sock[256], missing[256];
	struct {
		const char *name;
		const char *path;
		int rc;
		const char *why;
	} cases[] = {
		{ "fifo", fifo, RL_ECONFIG, "not a regular file (a FIFO)" },
		{ "directory", dir, RL_ECONFIG, "not a regular file (a directory)" },
		{ "char device", "/dev/zero", RL_ECONFIG, "not a regular file (a character device)" },
		/* Linux refuses to open a socket (ENXIO) before fstat sees it. */
		{ "socket", sock, -ENXIO, "cannot open file" },
		{ "missing", missing, -ENOENT, "cannot open file" },
	};
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int sfd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	CHECK(mkfifo(fifo, 0600) == 0, "mkfifo: %s", strerror(errno));
	rl_strlcpy(addr.sun_path, sock, sizeof(addr.sun_path));
	CHECK(sfd >= 0 && bind(sfd, (struct sockaddr *)&addr, sizeof(addr)) == 0, "bind: %s",
	      strerror(errno));
	alarm(10);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rl_why why = { 0, NULL, 0 };
		struct rl_buf b;
		char name[80];

		snprintf(name, sizeof(name), "read_file %s", cases[i].name);
		rl_buf_init(&b, 100);
		CASE_INT(name, rl_buf_read_file(&b, cases[i].path, 50, &why), cases[i].rc);
		CASE_STR(name, why.reason, cases[i].why);
		CASE_INT(name, why.code, cases[i].rc);
		CASE_INT(name, b.len, 0);
		rl_buf_fini(&b);
	}
	alarm(0);
	if (sfd >= 0)
		close(sfd);
	unlink(sock);
	unlink(fifo);
}

static void test_read_file(void)
{
	char dir[] = "/tmp/test_rl.XXXXXX";

	CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	test_read_file_sizes(dir);
	test_read_file_kinds(dir);
	rmdir(dir);
}

int main(void)
{
	test_strerror();
	test_fail();
	test_append();
	test_puts_printf();
	test_consume();
	test_take();
	test_space_commit();
	test_require();
	test_secret();
	test_strlcpy();
	test_wipe();
	test_lines();
	test_read_file();
	return TEST_DONE();
}
