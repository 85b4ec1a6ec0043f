/*
 * tlspol: load and prepare a policy file; resolve one session's policy.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlspol.h"

struct tlspol {
	unsigned refs;
	struct pol_table *table;
	/* Per entry (same index): NULL when the entry uses the defaults. */
	gnutls_priority_t *prio;
	gnutls_x509_trust_list_t *trust;
};

int tlspol_read_file(const char *path, struct rl_buf *b)
{
	char chunk[8192];
	ssize_t got;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			rc = -errno;
		if (got <= 0)
			break;
		rc = rl_buf_append(b, chunk, (size_t)got);
		/* One byte over the cap is enough for the parser to refuse it. */
		if (rc == RL_ETOOBIG) {
			rc = 0;
			break;
		}
		if (rc < 0)
			break;
	}
	close(fd);
	return rc;
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

/* Make the priority and trust list each entry needs; errors per line. */
static int tlspol_prepare(struct tlspol *p, const char *path, const struct cfg *c,
			  struct pol_errors *errs)
{
	size_t n = pol_table_count(p->table);
	struct rl_buf b;
	int bad = 0;

	p->prio = calloc(n ? n : 1, sizeof(*p->prio));
	p->trust = calloc(n ? n : 1, sizeof(*p->trust));
	if (!p->prio || !p->trust)
		return -ENOMEM;
	rl_buf_init(&b, 4096);
	for (size_t i = 0; i < n; i++) {
		const struct pol_entry *e = pol_table_entry(p->table, i);
		struct rl_why why = { 0 };
		const char *errpos = NULL;
		int rc;

		if (e->protocols || e->priority_suffix[0]) {
			b.len = 0;
			rc = tlspol_priority_text(c, e->protocols, e->priority_suffix, &b);
			if (rc == 0)
				rc = rl_buf_append(&b, "", 1);
			if (rc < 0) {
				rl_buf_fini(&b);
				return rc;
			}
			rc = gnutls_priority_init2(&p->prio[i], b.data, &errpos, 0);
			if (rc < 0) {
				tlspol_error(errs, e->line, "%s:%u: GnuTLS refuses the priority "
					     "\"%s\" made from tls_priority and this entry: %s",
					     path, e->line, b.data, gnutls_strerror(rc));
				p->prio[i] = NULL;
				bad = 1;
			}
		}
		if (e->tafile) {
			rc = cert_trust_load(e->tafile, &p->trust[i], &why);
			if (rc < 0) {
				tlspol_error(errs, e->line, "%s:%u: tafile \"%s\": %s%s%s", path,
					     e->line, e->tafile, why.reason ? why.reason : "",
					     why.reason ? ": " : "", rl_strerror(rc));
				p->trust[i] = NULL;
				bad = 1;
			}
		}
	}
	rl_buf_fini(&b);
	return bad ? RL_EPARSE : 0;
}

int tlspol_load(const char *path, const struct cfg *c, struct tlspol **out,
		struct pol_errors *errs, int *missing)
{
	struct tlspol *p = calloc(1, sizeof(*p));
	struct rl_buf b;
	int rc;

	*out = NULL;
	memset(errs, 0, sizeof(*errs));
	if (missing)
		*missing = 0;
	if (!p)
		return -ENOMEM;
	p->refs = 1;
	rl_buf_init(&b, POL_FILE_MAX + 1);
	rc = path ? tlspol_read_file(path, &b) : -ENOENT;
	if (rc == -ENOENT) {
		if (missing)
			*missing = 1;
		rc = 0;
	} else if (rc < 0) {
		tlspol_error(errs, 0, "%s: cannot read: %s", path, rl_strerror(rc));
	}
	if (rc == 0)
		rc = pol_table_parse(path ? path : "(none)", b.len ? b.data : "", b.len,
				     &p->table, errs);
	rl_buf_fini(&b);
	if (rc == 0)
		rc = tlspol_prepare(p, path, c, errs);
	if (rc < 0) {
		if (errs->total == 0)
			tlspol_error(errs, 0, "%s: %s", path ? path : "(none)", rl_strerror(rc));
		tlspol_unref(p);
		return rc;
	}
	*out = p;
	return 0;
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
	for (size_t i = 0; i < n; i++) {
		if (p->prio && p->prio[i])
			gnutls_priority_deinit(p->prio[i]);
		if (p->trust && p->trust[i])
			cert_trust_free(p->trust[i]);
	}
	free(p->prio);
	free(p->trust);
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
		   int default_level, gnutls_x509_trust_list_t trust, struct tlspol_sess *out,
		   char *reason, size_t rsize)
{
	const struct pol_entry *e = p ? pol_table_lookup(p->table, domain) : NULL;
	struct smtpc_policy *sp = &out->pol;
	const char *const *tokens = NULL;
	struct rl_why why = { 0 };
	size_t ntok = 0;

	memset(sp, 0, sizeof(*sp));
	out->entry = e;
	out->servername[0] = '\0';
	sp->level = e ? e->level : default_level;
	sp->trust = trust;
	if (e) {
		size_t i = pol_table_index(p->table, e);

		sp->digests = e->digests;
		sp->ndigests = e->ndigests;
		sp->prio = p->prio[i];
		if (p->trust[i])
			sp->trust = p->trust[i];
		tokens = (const char *const *)e->match;
		ntok = e->nmatch;
		if (e->servername) {
			/* Postfix's servername: a name, or the MX host or next hop. */
			const char *sn = strcmp(e->servername, "hostname") == 0 ? host
					 : strcmp(e->servername, "nexthop") == 0 ? domain
					 : e->servername;

			rl_strlcpy(out->servername, sn, sizeof(out->servername));
			sp->servername = out->servername;
		}
	}
	if (!ntok)
		tokens = pol_match_defaults(sp->level, &ntok);
	if (ntok && cert_match_resolve(tokens, ntok, host, domain, out->names, TLSPOL_NAMES_MAX,
				       &sp->nnames, &why) < 0) {
		snprintf(reason, rsize, "Server certificate not verified: no usable match name "
			 "for %s%s%s", host, why.reason ? ": " : "", why.reason ? why.reason : "");
		return -1;
	}
	sp->names = out->names;
	return 0;
}
