/*
 * pol_int.h: declarations shared by pol_parse.c and pol_table.c, and by
 * pol_ccert_parse.c and pol_relay.c (the relay_clientcerts list).
 */
#ifndef POL_INT_H
#define POL_INT_H

#include "pol.h"

/* An array of entries; after pol_table_sort() in key order. */
struct pol_table {
	struct pol_entry *v;
	size_t n;
	size_t cap;
};

/* How much of an offending token a message quotes. */
#define POL_QUOTE_MAX 80

/* Length for "%.*s" quoting n bytes in a message: at most POL_QUOTE_MAX. */
int pol_qlen(size_t n);

/*
 * The next token of s[*pos..n) separated by any run of the characters of
 * seps: its start and length; 0 when none is left.
 */
int pol_tok_next(const char *s, size_t n, size_t *pos, const char *seps, size_t *start,
		 size_t *len);

/* Free what e owns and zero it (e itself is the caller's). */
void pol_entry_fini(struct pol_entry *e);

/*
 * Move *e into the table (the table adopts its strings and arrays; *e is
 * zeroed).  RL_ETOOBIG past POL_ENTRIES_MAX, -ENOMEM; *e is then untouched.
 */
int pol_table_add_adopt(struct pol_table *t, struct pol_entry *e) RL_WUR;

/* Order the entries by key, then by line. */
void pol_table_sort(struct pol_table *t);

/* relay_clientcerts: distinct SHA-256 digests in memcmp order. */
struct pol_ccerts {
	unsigned char (*d)[FPR_SHA256_LEN];
	size_t n;
};

#endif
