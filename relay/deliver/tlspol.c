/*
 * tlspol: load and prepare a policy file; resolve one session's policy.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlspol.h"

struct tlspol {
	unsigned refs;
	struct pol_table *table;
	/* Per entry (same index): NULL when the entry uses the defaults. */
	gnutls_priority_t *prio;
	/* Per entry, borrowed from tas[]: entries naming one tafile share it. */
	gnutls_x509_trust_list_t *trust;
	/* One trust list per distinct tafile, owned here. */
	gnutls_x509_trust_list_t *tas;
	size_t ntas;
};

int tlspol_read_file(const char *path, struct rl_buf *b, struct rl_why *why)
{
	/* One byte over the cap is enough for the parser to refuse the file,
	 * with its own message. */
	int rc = rl_buf_read_file(b, path, POL_FILE_MAX + 1, why);

	return rc == RL_ETOOBIG && b->len == POL_FILE_MAX + 1 ? 0 : rc;
}

static void tlspol_error(struct pol_errors *errs, unsigned line, const char *fmt, ...)
	RL_PRINTF(3, 4);

static void tlspol_error(struct pol_errors *errs, unsigned line, const char *fmt, ...)
{
	va_list ap;

	errs->total++;
	if (errs->count == POL_ERRORS_MAX)
		return;
	errs->e[errs->count].line = line;
	/* msg is whole ("FILE:LINE: ..." made here): no prefix to split off. */
	errs->e[errs->count].prefix = errs->e[errs->count].text = 0;
	va_start(ap, fmt);
	vsnprintf(errs->e[errs->count].msg, sizeof(errs->e[0].msg), fmt, ap);
	va_end(ap);
	errs->count++;
}

int tlspol_priority_text(const struct cfg *c, unsigned protocols, const char *suffix,
			 struct rl_buf *out)
{
	return pol_priority_build(c->tls_priority, protocols ? protocols : c->tls_protocols,
				  suffix, out);
}

/* The GnuTLS priority of each entry that changes the default one. */
static int tlspol_prepare_prio(struct tlspol *p, const char *path, const struct tlspol_base *base,
			       struct pol_errors *errs)
{
	size_t n = pol_table_count(p->table);
	struct rl_buf b;
	int rc = 0, bad = 0;

	rl_buf_init(&b, 4096);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct pol_entry *e = pol_table_entry(p->table, i);
		const char *errpos = NULL;
		int grc;

		if (!e->protocols && !e->priority_suffix[0])
			continue;
		b.len = 0;
		rc = pol_priority_build(base->tls_priority,
					e->protocols ? e->protocols : base->tls_protocols,
					e->priority_suffix, &b);
		if (rc == 0)
			rc = rl_buf_append(&b, "", 1);
		if (rc < 0)
			break;
		grc = gnutls_priority_init2(&p->prio[i], b.data, &errpos, 0);
		if (grc < 0) {
			tlspol_error(errs, e->line, "%s:%u: GnuTLS refuses the priority "
				     "\"%s\" made from tls_priority and this entry: %s",
				     path, e->line, b.data, gnutls_strerror(grc));
			p->prio[i] = NULL;
			bad = 1;
		}
	}
	rl_buf_fini(&b);
	return rc < 0 ? rc : bad ? RL_EPARSE : 0;
}

struct ta_use {
	const char *tafile;
	size_t entry;
};

static int ta_use_cmp(const void *a, const void *b)
{
	const struct ta_use *x = a, *y = b;
	int c = strcmp(x->tafile, y->tafile);

	return c ? c : (x->entry > y->entry) - (x->entry < y->entry);
}

/*
 * The trust list of each entry with tafile=, read once per distinct file:
 * a table of hundreds of entries naming one CA bundle holds one copy of it
 * (each copy of a system bundle is megabytes and tens of milliseconds).
 * An unusable file is reported once, at the first line naming it.
 */
static int tlspol_prepare_ta(struct tlspol *p, const char *path, struct pol_errors *errs)
{
	size_t n = pol_table_count(p->table), nuse = 0;
	struct ta_use *use = calloc(n ? n : 1, sizeof(*use));
	int bad = 0;

	p->tas = calloc(n ? n : 1, sizeof(*p->tas));
	if (!use || !p->tas) {
		free(use);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct pol_entry *e = pol_table_entry(p->table, i);

		if (e->tafile)
			use[nuse++] = (struct ta_use){ e->tafile, i };
	}
	qsort(use, nuse, sizeof(*use), ta_use_cmp);
	for (size_t k = 0; k < nuse; k++) {
		const struct pol_entry *e = pol_table_entry(p->table, use[k].entry);
		struct rl_why why = { 0 };
		int rc;

		if (k > 0 && strcmp(use[k - 1].tafile, use[k].tafile) == 0) {
			p->trust[use[k].entry] = p->trust[use[k - 1].entry];
			continue;
		}
		rc = cert_trust_load(use[k].tafile, &p->tas[p->ntas], &why);
		if (rc < 0) {
			/* RL_ECONFIG's reason says all (not a regular file, no CA). */
			tlspol_error(errs, e->line, "%s:%u: tafile \"%s\": %s%s%s", path, e->line,
				     use[k].tafile, why.reason ? why.reason : "",
				     why.reason && rc != RL_ECONFIG ? ": " : "",
				     rc != RL_ECONFIG || !why.reason ? rl_strerror(rc) : "");
			bad = 1;
			continue;
		}
		p->trust[use[k].entry] = p->tas[p->ntas++];
	}
	free(use);
	return bad ? RL_EPARSE : 0;
}

/* Make the priority and trust list each entry needs; errors per line. */
static int tlspol_prepare(struct tlspol *p, const char *path, const struct tlspol_base *base,
			  struct pol_errors *errs)
{
	size_t n = pol_table_count(p->table);
	int rc, rc2;

	p->prio = calloc(n ? n : 1, sizeof(*p->prio));
	p->trust = calloc(n ? n : 1, sizeof(*p->trust));
	if (!p->prio || !p->trust)
		return -ENOMEM;
	rc = tlspol_prepare_prio(p, path, base, errs);
	if (rc == -ENOMEM)
		return rc;
	rc2 = tlspol_prepare_ta(p, path, errs);
	return rc < 0 ? rc : rc2;
}

/* The file's bytes into b; a missing file is no entries (*missing). */
static int tlspol_load_text(const char *path, struct rl_buf *b, struct pol_errors *errs,
			    int *missing)
{
	struct rl_why why = { 0 };
	int rc = path ? tlspol_read_file(path, b, &why) : -ENOENT;

	if (rc == -ENOENT) {
		*missing = 1;
		return 0;
	}
	if (rc == RL_ECONFIG && why.reason)
		tlspol_error(errs, 0, "%s: %s", path, why.reason);
	else if (rc < 0)
		tlspol_error(errs, 0, "%s: cannot read: %s", path, rl_strerror(rc));
	return rc;
}

int tlspol_load_base(const char *path, const struct tlspol_base *base, struct tlspol **out,
		     struct pol_errors *errs, int *missing)
{
	struct tlspol *p = calloc(1, sizeof(*p));
	struct rl_buf b;
	int gone = 0, rc;

	*out = NULL;
	memset(errs, 0, sizeof(*errs));
	if (missing)
		*missing = 0;
	if (!p)
		return -ENOMEM;
	p->refs = 1;
	rl_buf_init(&b, POL_FILE_MAX + 1);
	rc = tlspol_load_text(path, &b, errs, &gone);
	if (rc == 0)
		rc = pol_table_parse(path ? path : "(none)", b.len ? b.data : "", b.len,
				     &p->table, errs);
	rl_buf_fini(&b);
	if (rc == 0)
		rc = tlspol_prepare(p, path, base, errs);
	if (rc < 0) {
		if (errs->total == 0)
			tlspol_error(errs, 0, "%s: %s", path ? path : "(none)", rl_strerror(rc));
		tlspol_unref(p);
		return rc;
	}
	if (missing)
		*missing = gone;
	*out = p;
	return 0;
}

int tlspol_load(const char *path, const struct cfg *c, struct tlspol **out,
		struct pol_errors *errs, int *missing)
{
	struct tlspol_base base = { c->tls_priority, c->tls_protocols };

	return tlspol_load_base(path, &base, out, errs, missing);
}

struct tlspol *tlspol_ref(struct tlspol *p)
{
	if (p)
		p->refs++;
	return p;
}

void tlspol_unref(struct tlspol *p)
{
	size_t n;

	if (!p || --p->refs > 0)
		return;
	n = pol_table_count(p->table);
	for (size_t i = 0; i < n; i++)
		if (p->prio && p->prio[i])
			gnutls_priority_deinit(p->prio[i]);
	for (size_t i = 0; i < p->ntas; i++)
		cert_trust_free(p->tas[i]);
	free(p->prio);
	free(p->trust);
	free(p->tas);
	pol_table_free(p->table);
	free(p);
}

const struct pol_table *tlspol_table(const struct tlspol *p)
{
	return p->table;
}

gnutls_priority_t tlspol_priority(const struct tlspol *p, const struct pol_entry *e)
{
	return p->prio[pol_table_index(p->table, e)];
}

int tlspol_resolve(const struct tlspol *p, const char *domain, const char *host,
		   int default_level, gnutls_x509_trust_list_t trust, struct pol_peer_sess *out,
		   char *reason, size_t rsize)
{
	const struct pol_entry *e = p ? pol_table_lookup(p->table, domain) : NULL;
	gnutls_priority_t prio = NULL;

	if (e) {
		size_t i = pol_table_index(p->table, e);

		prio = p->prio[i];
		if (p->trust[i])
			trust = p->trust[i];
	}
	if (pol_peer_resolve(e, default_level, domain, host, trust, prio, out, reason, rsize) < 0)
		return -1;
	return 0;
}
