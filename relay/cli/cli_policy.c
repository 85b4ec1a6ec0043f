/*
 * cli_policy: `tlsrelay policy check [FILE]` and `tlsrelay policy show
 * DOMAIN` (INTERFACE.md, "Commands").
 *
 * Both read the policy file the way the relay does: a missing file is a
 * table with no entries, any error makes the whole file invalid, and the
 * errors are printed as "FILE:LINE: message", one per line, on stderr.
 * `policy check` also prints the warnings there ("FILE:LINE: warning:
 * ...", entries that never apply), in line order with the errors, and a
 * one-line summary on stdout when the file is valid (warnings alone keep
 * it valid: exit 0).  `policy show` prints the effective policy for a
 * domain, one "key: value (source)" line per setting, then what the
 * relay's DNS lookups make of it per MX host, DANE and MTA-STS included
 * (cli_dane.c, cli_sts.c), and last the DNSSEC check of the relay's
 * start, run here through the same configuration.  It prints no
 * warnings: it is about one domain, and an entry that never applies does
 * not change that domain's policy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cli.h"
#include "cli_dane.h"
#include "dns.h"
#include "pol.h"
#include "tlspol.h"

static void print_errors(const struct pol_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		fprintf(stderr, "%s\n", errs->e[i].msg);
	if (errs->total > errs->count)
		fprintf(stderr, "tlsrelay: %zu more errors not shown\n", errs->total - errs->count);
}

/* `policy check`: errors and warnings together, in line order. */
static void print_messages(const struct pol_errors *errs)
{
	const struct pol_msg *m;
	size_t ie = 0, iw = 0;
	int warning;

	while ((m = pol_errors_next(errs, &ie, &iw, &warning)) != NULL)
		fprintf(stderr, "%s\n", m->msg);
	if (errs->total > errs->count)
		fprintf(stderr, "tlsrelay: %zu more errors not shown\n", errs->total - errs->count);
	if (errs->wtotal > errs->nwarn)
		fprintf(stderr, "tlsrelay: %zu more warnings not shown\n",
			errs->wtotal - errs->nwarn);
}

/* Declared in cli.h: `certs probe` reads the policy the same way. */
int cli_load_policy(const char *path, struct pol_table **t, int *missing)
{
	struct pol_errors *errs = calloc(1, sizeof(*errs));
	struct rl_why why = { 0 };
	struct rl_buf b;
	int rc;

	*missing = 0;
	if (!errs) {
		fprintf(stderr, "tlsrelay: %s: %s\n", path, rl_strerror(-ENOMEM));
		return -1;
	}
	rl_buf_init(&b, POL_FILE_MAX + 1);
	rc = tlspol_read_file(path, &b, &why);
	if (rc == -ENOENT) {
		*missing = 1;
		rc = 0;
	}
	if (rc == RL_ECONFIG && why.reason)
		fprintf(stderr, "tlsrelay: %s: %s\n", path, why.reason);
	else if (rc < 0)
		fprintf(stderr, "tlsrelay: %s: %s\n", path, rl_strerror(rc));
	if (rc == 0) {
		rc = pol_table_parse(path, b.len ? b.data : "", b.len, t, errs);
		if (rc < 0)
			print_errors(errs);
	}
	rl_buf_fini(&b);
	free(errs);
	return rc < 0 ? -1 : 0;
}

static int policy_check(const char *cfgpath, int argc, char **argv)
{
	struct pol_errors *errs = calloc(1, sizeof(*errs));
	struct tlspol *p = NULL;
	struct cfg c;
	const char *path;
	int missing = 0, rc;
	size_t n;

	if (argc > 1) {
		free(errs);
		fprintf(stderr, "usage: tlsrelay policy check [FILE]\n");
		return CLI_EX_USAGE;
	}
	memset(&c, 0, sizeof(c));
	/*
	 * An explicit FILE needs no configuration file: the defaults give
	 * the tls_priority its entries are checked against.
	 */
	rc = argc ? cfg_defaults(&c) : cli_load_cfg(cfgpath, &c);
	if (rc < 0 || !errs) {
		if (!errs || argc)
			fprintf(stderr, "tlsrelay: %s\n", rl_strerror(errs ? rc : -ENOMEM));
		free(errs);
		cfg_fini(&c);
		return CLI_EX_FAIL;
	}
	path = argc ? argv[0] : c.policy_file;
	/* Exactly what the relay does: syntax, priorities GnuTLS takes, tafiles. */
	rc = tlspol_load(path, &c, &p, errs, &missing);
	print_messages(errs);
	n = p ? pol_table_count(tlspol_table(p)) : 0;
	if (rc == 0 && missing)
		printf("%s: no such file; no entries\n", path);
	else if (rc == 0 && errs->wtotal)
		printf("%s: %zu %s, %zu ignored (see the warning%s)\n", path, n,
		       n == 1 ? "entry" : "entries", errs->wtotal, errs->wtotal == 1 ? "" : "s");
	else if (rc == 0)
		printf("%s: %zu %s\n", path, n, n == 1 ? "entry" : "entries");
	tlspol_unref(p);
	free(errs);
	cfg_fini(&c);
	return rc == 0 ? CLI_EX_OK : CLI_EX_FAIL;
}

/* What show prints about one domain. */
struct show {
	const struct cfg *c;
	const char *policy_path;
	const struct pol_entry *e; /* NULL: no entry, the defaults apply */
	char src[512];		   /* "policy file FILE:LINE" */
};

static void show_match(const struct show *s, int level)
{
	const struct pol_entry *e = s->e;
	char fp[FPR_TEXT_SIZE];
	const char *const *names;
	size_t n;

	if (e) {
		for (size_t i = 0; i < e->ndigests; i++) {
			fpr_format(&e->digests[i], fp, sizeof(fp));
			printf("match: %s (%s)\n", fp, s->src);
		}
		for (size_t i = 0; i < e->nmatch; i++)
			printf("match: %s (%s%s)\n", e->match[i],
			       e->match_default ? "default for " : s->src,
			       e->match_default ? pol_level_name(level) : "");
		return;
	}
	names = pol_match_defaults(level, &n);
	for (size_t i = 0; i < n; i++)
		printf("match: %s (default for %s)\n", names[i], pol_level_name(level));
}

static void show_protocols(const struct show *s, unsigned *bits)
{
	char names[64];

	*bits = s->e && s->e->protocols ? s->e->protocols : s->c->tls_protocols;
	pol_protocols_names(*bits, names, sizeof(names));
	if (s->e && s->e->protocols)
		printf("protocols: %s (protocols=%s, %s)\n", names, s->e->protocols_text, s->src);
	else
		printf("protocols: %s (tls_protocols = %s, config %s)\n", names,
		       s->c->tls_protocols_text, s->c->path);
}

static int show_priority(const struct show *s, unsigned bits)
{
	const char *suffix = s->e ? s->e->priority_suffix : NULL;
	struct rl_buf b;
	int rc;

	if (s->e && s->e->grade)
		printf("ciphers: %s (%s)\n", s->e->grade == POL_GRADE_HIGH ? "high" : "medium",
		       s->src);
	if (s->e && s->e->exclude_text)
		printf("exclude: %s (%s)\n", s->e->exclude_text, s->src);
	rl_buf_init(&b, 65536);
	rc = pol_priority_build(s->c->tls_priority, bits, suffix, &b);
	if (rc == 0)
		printf("priority: %s (tls_priority, config %s; versions from protocols%s%s)\n",
		       b.data, s->c->path, suffix && *suffix ? "; ciphers/exclude from " : "",
		       suffix && *suffix ? s->src : "");
	else
		fprintf(stderr, "tlsrelay: priority string: %s\n", rl_strerror(rc));
	rl_buf_fini(&b);
	return rc;
}

static void show_peer(const struct show *s, int level)
{
	if (s->e && s->e->servername)
		printf("servername: %s (%s)\n", s->e->servername, s->src);
	else
		printf("servername: none (default: no SNI)\n");
	if (level != POL_LEVEL_VERIFY && level != POL_LEVEL_SECURE)
		return;
	if (s->e && s->e->tafile)
		printf("tafile: %s (%s)\n", s->e->tafile, s->src);
	else if (s->c->tls_ca_file)
		printf("tafile: none (CAs of tls_ca_file = %s, config %s)\n", s->c->tls_ca_file,
		       s->c->path);
	else
		printf("tafile: none (system trust store)\n");
}

static int show_domain(const struct cfg *c, const char *policy_path, const struct pol_table *t,
		       const char *domain)
{
	struct show s = {c, policy_path, pol_table_lookup(t, domain), ""};
	int level = s.e ? s.e->level : c->default_tls_level;
	unsigned bits = 0;

	if (s.e)
		snprintf(s.src, sizeof(s.src), "policy file %s:%u", policy_path, s.e->line);
	printf("domain: %s\n", domain);
	if (s.e) {
		printf("level: %s (%s)\n", pol_level_name(level), s.src);
		printf("entry: %s (%s)\n", s.e->domain, s.src);
	} else {
		printf("level: %s (default_tls_level, config %s)\n", pol_level_name(level),
		       c->path);
		printf("entry: none (no entry in %s matches)\n", policy_path);
	}
	/* Level none never starts TLS: nothing else applies. */
	if (level == POL_LEVEL_NONE)
		return 0;
	show_match(&s, level);
	show_protocols(&s, &bits);
	if (show_priority(&s, bits) < 0)
		return -1;
	show_peer(&s, level);
	return 0;
}

/*
 * The DNS part of `policy show`: a resolver made from the configuration as
 * the relay makes it, on a loop of its own, and lookups run to completion
 * (each bounded by the lookup timeout, so show always ends).  Lines are
 * printed after the policy lines, which are flushed first: a slow server
 * delays only what depends on it.
 */
struct show_dns {
	uv_loop_t loop;
	struct dns *dns;
	char servers[1024];
	int done;
};

static int show_dns_open(struct show_dns *sd, const struct cfg *c)
{
	char err[256];
	int rc;

	memset(sd, 0, sizeof(*sd));
	dns_servers_text(c, sd->servers, sizeof(sd->servers));
	rc = uv_loop_init(&sd->loop);
	if (rc < 0) {
		fprintf(stderr, "tlsrelay: %s\n", uv_strerror(rc));
		return rc;
	}
	rc = dns_new(&sd->loop, c, &sd->dns, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "tlsrelay: %s\n", err);
		(void)uv_loop_close(&sd->loop);
	}
	return rc;
}

static void show_dns_close(struct show_dns *sd)
{
	dns_free(sd->dns);
	/* The resolver's handles close on this last turn of the loop. */
	uv_run(&sd->loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(&sd->loop);
}

struct show_dnssec {
	struct show_dns *sd;
	char zone[DNS_NAME_MAX];
};

static void show_dnssec_done(void *arg, const struct dns_check_result *r)
{
	struct show_dnssec *k = arg;

	if (r->verdict == DNS_CHECK_SECURE)
		printf("DNSSEC: validation works through %s: the DNSKEY records of %s validate\n",
		       k->sd->servers, k->zone);
	else
		printf("DNSSEC: validation FAILS through %s: name=%s type=DNSKEY: %s\n",
		       k->sd->servers, k->zone, r->why);
	k->sd->done = 1;
}

/* "DNSSEC: ..." : does validation work through the configured servers? */
static int show_dnssec(struct show_dns *sd, const struct cfg *c)
{
	struct show_dnssec k = {sd, ""};
	int rc;

	dns_check_zone(c, k.zone, sizeof(k.zone));
	sd->done = 0;
	rc = dns_check_dnssec(sd->dns, k.zone, show_dnssec_done, &k);
	if (rc < 0) {
		fprintf(stderr, "tlsrelay: DNSSEC check: %s\n", rl_strerror(rc));
		return rc;
	}
	uv_run(&sd->loop, UV_RUN_DEFAULT);
	RL_REQUIRE(sd->done);
	return 0;
}

static int show_dns(const struct cfg *c)
{
	struct show_dns sd;
	int rc;

	fflush(stdout);
	if (show_dns_open(&sd, c) < 0)
		return -1;
	rc = show_dnssec(&sd, c);
	show_dns_close(&sd);
	return rc;
}

static int policy_show(const char *cfgpath, int argc, char **argv)
{
	struct cfg c;
	struct pol_table *t = NULL;
	int missing, rc;

	if (argc != 1 || argv[0][0] == '\0') {
		fprintf(stderr, "usage: tlsrelay policy show DOMAIN\n");
		return CLI_EX_USAGE;
	}
	if (cli_load_cfg(cfgpath, &c) < 0)
		return CLI_EX_FAIL;
	rc = cli_load_policy(c.policy_file, &t, &missing);
	if (rc == 0)
		rc = show_domain(&c, c.policy_file, t, argv[0]);
	if (rc == 0)
		rc = cli_dane_show(&c, t, argv[0]); /* the relay's lookups: MX, addresses, TLSA */
	if (rc == 0)
		rc = show_dns(&c);
	pol_table_free(t);
	cfg_fini(&c);
	return rc == 0 ? CLI_EX_OK : CLI_EX_FAIL;
}

int cli_policy(const char *cfgpath, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "check") == 0)
		return policy_check(cfgpath, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "show") == 0)
		return policy_show(cfgpath, argc - 1, argv + 1);
	fprintf(stderr, "usage: tlsrelay policy check [FILE] | policy show DOMAIN\n");
	return CLI_EX_USAGE;
}
