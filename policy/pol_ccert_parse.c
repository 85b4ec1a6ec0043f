/*
 * pol_ccert_parse: the relay_clientcerts file (pol_relay.h).  Pure: the
 * caller reads the file; errors come back as "FILE:LINE: message".
 *
 * Every line is checked and every error reported (up to POL_ERRORS_MAX),
 * so one run of `serve` or one reload shows the administrator all of them;
 * a file with any error yields no list, never part of one.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pol_int.h"
#include "pol_relay.h"

#define MATCH_WORD     "match="
#define MATCH_WORD_LEN (sizeof(MATCH_WORD) - 1)

struct cstate {
	const char *path;
	struct pol_errors *errs;
	struct pol_errors own;
	struct pol_ccerts *l;
	size_t cap;
	int failed; /* an error was reported */
	int fatal;  /* stop: RL_ETOOBIG or -ENOMEM */
};

static void cerr(struct cstate *st, unsigned line, const char *fmt, ...) RL_PRINTF(3, 4);

static void cerr(struct cstate *st, unsigned line, const char *fmt, ...)
{
	struct pol_errors *e = st->errs;
	va_list ap;
	int used;

	st->failed = 1;
	e->total++;
	if (e->count == POL_ERRORS_MAX)
		return;
	if (line)
		used = snprintf(e->e[e->count].msg, POL_ERROR_SIZE, "%s:%u: ", st->path, line);
	else
		used = snprintf(e->e[e->count].msg, POL_ERROR_SIZE, "%s: ", st->path);
	if (used < 0 || used >= POL_ERROR_SIZE)
		used = POL_ERROR_SIZE - 1;
	va_start(ap, fmt);
	vsnprintf(e->e[e->count].msg + used, POL_ERROR_SIZE - (size_t)used, fmt, ap);
	va_end(ap);
	e->e[e->count].line = line;
	e->count++;
}

static void add_digest(struct cstate *st, unsigned line, const struct fpr_digest *d)
{
	struct pol_ccerts *l = st->l;

	if (l->n == POL_CCERTS_MAX) {
		cerr(st, line, "too many digests (at most %d)", POL_CCERTS_MAX);
		st->fatal = RL_ETOOBIG;
		return;
	}
	if (l->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 16;
		void *grown = realloc(l->d, cap * sizeof(l->d[0]));

		if (!grown) {
			cerr(st, line, "out of memory");
			st->fatal = -ENOMEM;
			return;
		}
		l->d = grown;
		st->cap = cap;
	}
	memcpy(l->d[l->n++], d->bytes, FPR_SHA256_LEN);
}

/* One digest as written; a refusal says why in the operator's terms. */
static void one_digest(struct cstate *st, unsigned line, const char *s, size_t n)
{
	struct fpr_digest d;

	if (n == 0) {
		cerr(st, line, "empty digest");
		return;
	}
	if (fpr_parse(s, n, &d, NULL) < 0) {
		cerr(st, line,
		     "bad digest \"%.*s\" (32 colon-separated hex bytes, as "
		     "\"tlsrelay certs fingerprint\" prints)",
		     pol_qlen(n), s);
		return;
	}
	if (d.len != FPR_SHA256_LEN) {
		cerr(st, line,
		     "SHA-1 digest \"%.*s\" not accepted: use the SHA-256 digests that "
		     "\"tlsrelay certs fingerprint\" prints",
		     pol_qlen(n), s);
		return;
	}
	add_digest(st, line, &d);
}

/* match=D or match=D1|D2: Postfix joins several digests with '|'. */
static void match_word(struct cstate *st, unsigned line, const char *s, size_t n)
{
	size_t start = MATCH_WORD_LEN;

	if (n == MATCH_WORD_LEN) {
		cerr(st, line, "empty match=");
		return;
	}
	/* Split at every '|': an empty piece ("a||b", "a|") is an error. */
	for (size_t i = start; i <= n && !st->fatal; i++) {
		if (i < n && s[i] != '|')
			continue;
		one_digest(st, line, s + start, i - start);
		start = i + 1;
	}
}

static int is_match_word(const char *s, size_t n)
{
	return n >= MATCH_WORD_LEN && memcmp(s, MATCH_WORD, MATCH_WORD_LEN) == 0;
}

/*
 * A line that is not blank or a comment: match= words (a '#' word starts a
 * comment after them), or Postfix's "DIGEST value" form.
 */
static void parse_line(struct cstate *st, unsigned line, const char *s, size_t n)
{
	size_t pos = 0, start, len;

	if (!pol_tok_next(s, n, &pos, " \t", &start, &len))
		return;
	if (!is_match_word(s + start, len)) {
		/* Postfix relay_clientcerts: the key, then its value (ignored). */
		one_digest(st, line, s + start, len);
		return;
	}
	do {
		if (s[start] == '#')
			return;
		if (!is_match_word(s + start, len)) {
			cerr(st, line, "expected match=DIGEST, got \"%.*s\"", pol_qlen(len),
			     s + start);
			return;
		}
		match_word(st, line, s + start, len);
	} while (!st->fatal && pol_tok_next(s, n, &pos, " \t", &start, &len));
}

static void scan(struct cstate *st, const char *text, size_t len)
{
	struct rl_lines it;
	struct rl_why why = {0};
	const char *s;
	size_t n, i;
	int rc;

	rl_lines_init(&it, text, len, POL_LINE_MAX);
	while (!st->fatal && (rc = rl_lines_next(&it, &s, &n, &why)) != 0) {
		if (rc < 0) {
			if (rc == RL_ETOOBIG)
				cerr(st, it.line, "line too long (over %d bytes)", POL_LINE_MAX);
			else if (s[why.offset] == '\0')
				cerr(st, it.line, "NUL character");
			else
				cerr(st, it.line, "control character 0x%02x in line",
				     (unsigned)(unsigned char)s[why.offset]);
			continue;
		}
		for (i = 0; i < n && (s[i] == ' ' || s[i] == '\t'); i++)
			;
		if (i == n || s[i] == '#')
			continue;
		parse_line(st, it.line, s + i, n - i);
	}
}

static int digest_cmp(const void *a, const void *b)
{
	return memcmp(a, b, FPR_SHA256_LEN);
}

/* Sorted, each digest once: lookups are a binary search. */
static void sort_unique(struct pol_ccerts *l)
{
	size_t out = 0;

	if (l->n == 0)
		return;
	qsort(l->d, l->n, sizeof(l->d[0]), digest_cmp);
	for (size_t i = 1; i < l->n; i++)
		if (memcmp(l->d[i], l->d[out], FPR_SHA256_LEN) != 0)
			memcpy(l->d[++out], l->d[i], FPR_SHA256_LEN);
	l->n = out + 1;
}

int pol_ccerts_parse(const char *path, const char *text, size_t len, struct pol_ccerts **out,
		     struct pol_errors *errs)
{
	struct cstate *st;
	int rc;

	RL_REQUIRE(path && out && (text || len == 0));
	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->path = path;
	st->errs = errs ? errs : &st->own;
	st->errs->count = st->errs->total = 0;
	st->l = calloc(1, sizeof(*st->l));
	if (!st->l) {
		cerr(st, 0, "out of memory");
		st->fatal = -ENOMEM;
	} else if (len > POL_CCERTS_FILE_MAX) {
		cerr(st, 0, "file too large (over %d bytes)", POL_CCERTS_FILE_MAX);
		st->fatal = RL_ETOOBIG;
	} else {
		scan(st, text, len);
	}
	rc = st->fatal ? st->fatal : st->failed ? RL_EPARSE : 0;
	if (rc == 0) {
		sort_unique(st->l);
		*out = st->l;
	} else {
		pol_ccerts_free(st->l);
	}
	free(st);
	return rc;
}
