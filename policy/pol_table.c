/*
 * pol_table: the policy table built by pol_parse.c, its lookup, and the
 * helpers that turn an entry into what the relay uses (default match rules,
 * the GnuTLS priority string).
 *
 * Entries are kept sorted by key, so a lookup is a handful of binary
 * searches: the exact name, then each parent as ".parent", closest first,
 * exactly as Postfix's tls_policy_lookup() walks the name.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pol_int.h"

/* A domain name with a leading dot for the parent form, and its NUL. */
#define POL_KEY_SIZE 256

void pol_entry_fini(struct pol_entry *e)
{
	free(e->domain);
	free(e->digests);
	for (size_t i = 0; i < e->nmatch; i++)
		free(e->match[i]);
	free(e->match);
	free(e->protocols_text);
	free(e->exclude_text);
	free(e->priority_suffix);
	free(e->servername);
	free(e->tafile);
	memset(e, 0, sizeof(*e));
}

int pol_table_add_adopt(struct pol_table *t, struct pol_entry *e)
{
	if (t->n == POL_ENTRIES_MAX)
		return RL_ETOOBIG;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct pol_entry *v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = *e;
	memset(e, 0, sizeof(*e));
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct pol_entry *x = a, *y = b;
	int c = strcmp(x->domain, y->domain);

	if (c)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

void pol_table_sort(struct pol_table *t)
{
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(t->v[0]), entry_cmp);
}

void pol_table_free(struct pol_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		pol_entry_fini(&t->v[i]);
	free(t->v);
	free(t);
}

size_t pol_table_count(const struct pol_table *t)
{
	return t ? t->n : 0;
}

const struct pol_entry *pol_table_entry(const struct pol_table *t, size_t i)
{
	RL_REQUIRE(t && i < t->n);
	return &t->v[i];
}

static const struct pol_entry *find(const struct pol_table *t, const char *key)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, t->v[mid].domain);

		if (c == 0)
			return &t->v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct pol_entry *pol_table_lookup(const struct pol_table *t, const char *domain)
{
	char key[POL_KEY_SIZE];
	size_t n = strlen(domain);
	const struct pol_entry *e;

	if (!t || t->n == 0)
		return NULL;
	/* "example.com." is the same name as "example.com". */
	if (n && domain[n - 1] == '.')
		n--;
	if (n == 0 || n >= sizeof(key))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char ch = domain[i];

		key[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
	}
	key[n] = '\0';
	e = find(t, key);
	/* Then ".b.example.com", ".example.com", ".com": closest parent first. */
	for (char *p = strchr(key + 1, '.'); !e && p; p = strchr(p + 1, '.'))
		e = find(t, p);
	return e;
}

static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

int pol_entry_equal(const struct pol_entry *a, const struct pol_entry *b)
{
	if (!str_eq(a->domain, b->domain) || a->level != b->level)
		return 0;
	if (a->protocols != b->protocols || a->grade != b->grade)
		return 0;
	if (!str_eq(a->priority_suffix, b->priority_suffix) ||
	    !str_eq(a->servername, b->servername) || !str_eq(a->tafile, b->tafile))
		return 0;
	if (a->ndigests != b->ndigests || a->nmatch != b->nmatch ||
	    a->match_default != b->match_default)
		return 0;
	for (size_t i = 0; i < a->ndigests; i++)
		if (a->digests[i].len != b->digests[i].len ||
		    memcmp(a->digests[i].bytes, b->digests[i].bytes, a->digests[i].len) != 0)
			return 0;
	for (size_t i = 0; i < a->nmatch; i++)
		if (strcmp(a->match[i], b->match[i]) != 0)
			return 0;
	return 1;
}

const char *const *pol_match_defaults(int level, size_t *n)
{
	/* Postfix smtp_tls_verify_cert_match and smtp_tls_secure_cert_match. */
	static const char *const verify[] = {"hostname"};
	static const char *const secure[] = {"nexthop", "dot-nexthop"};

	if (level == POL_LEVEL_VERIFY) {
		*n = 1;
		return verify;
	}
	if (level == POL_LEVEL_SECURE) {
		*n = 2;
		return secure;
	}
	*n = 0;
	return NULL;
}

int pol_priority_build(const char *base, unsigned protocols, const char *suffix, struct rl_buf *out)
{
	static const struct {
		unsigned bit;
		const char *token;
	} vers[] = {
	    {POL_TLS1_3, ":+VERS-TLS1.3"},
	    {POL_TLS1_2, ":+VERS-TLS1.2"},
	    {POL_TLS1_1, ":+VERS-TLS1.1"},
	    {POL_TLS1_0, ":+VERS-TLS1.0"},
	};
	int rc = rl_buf_puts(out, base);

	/*
	 * The versions are always spelt out, so that the string alone says
	 * which protocols are offered, whatever tls_priority enables.
	 */
	if (rc == 0 && protocols)
		rc = rl_buf_puts(out, ":-VERS-ALL");
	for (size_t i = 0; rc == 0 && i < sizeof(vers) / sizeof(vers[0]); i++)
		if (protocols & vers[i].bit)
			rc = rl_buf_puts(out, vers[i].token);
	if (rc == 0 && suffix)
		rc = rl_buf_puts(out, suffix);
	return rc;
}

size_t pol_table_index(const struct pol_table *t, const struct pol_entry *e)
{
	RL_REQUIRE(t && e >= t->v && e < t->v + t->n);
	return (size_t)(e - t->v);
}

int pol_table_diff(const struct pol_table *a, const struct pol_table *b,
		   int (*fn)(const char *key, void *arg), void *arg)
{
	size_t i = 0, k = 0, na = pol_table_count(a), nb = pol_table_count(b);
	int rc = 0;

	/* Both are sorted by key: one merge pass. */
	while (rc == 0 && (i < na || k < nb)) {
		int c = i == na ? 1 : k == nb ? -1 : strcmp(a->v[i].domain, b->v[k].domain);

		if (c < 0) {
			rc = fn(a->v[i++].domain, arg);
		} else if (c > 0) {
			rc = fn(b->v[k++].domain, arg);
		} else {
			if (!pol_entry_equal(&a->v[i], &b->v[k]))
				rc = fn(a->v[i].domain, arg);
			i++, k++;
		}
	}
	return rc;
}

int pol_key_applies(const char *key, const char *domain)
{
	size_t kl = strlen(key), dl = strlen(domain);

	if (dl && domain[dl - 1] == '.')
		dl--;
	if (key[0] != '.')
		return kl == dl && strncasecmp(key, domain, dl) == 0;
	/* ".example.com" applies to a.example.com, never to example.com. */
	return dl > kl && strncasecmp(domain + dl - kl, key, kl) == 0;
}

const struct pol_msg *pol_errors_next(const struct pol_errors *errs, size_t *ie, size_t *iw,
				      int *warning)
{
	int take_e;

	if (*ie >= errs->count && *iw >= errs->nwarn)
		return NULL;
	/* On one line the error comes first: it is what makes the file fail. */
	take_e =
	    *iw >= errs->nwarn || (*ie < errs->count && errs->e[*ie].line <= errs->w[*iw].line);
	*warning = !take_e;
	return take_e ? &errs->e[(*ie)++] : &errs->w[(*iw)++];
}
