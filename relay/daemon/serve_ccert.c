/*
 * serve_ccert: the daemon's relay_clientcerts list and relay_client_ca_file
 * trust list, which smtpd reads through its params (serve.h).
 *
 * The list is read on the loop thread: it is bounded (POL_CCERTS_FILE_MAX)
 * and a few thousand digests parse and sort in well under a millisecond,
 * unlike a policy file with its priorities and tafiles.  Both are replaced
 * only by a whole valid file; sessions read them at each use on the loop
 * thread, so the old one can be freed at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "log.h"
#include "pol_relay.h"
#include "serve.h"

static void ccert_errors(const struct pol_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		log_err("%s", errs->e[i].msg);
	if (errs->total > errs->count)
		log_err("%zu more errors in relay_clientcerts not shown",
			errs->total - errs->count);
}

/* Read and parse path; *out on success, else errors logged and < 0. */
static int ccert_list_load(const char *path, struct pol_ccerts **out)
{
	struct pol_errors *errs = malloc(sizeof(*errs));
	struct rl_why why = {0};
	struct rl_buf b;
	int rc;

	*out = NULL;
	if (!errs)
		return -ENOMEM;
	rl_buf_init(&b, POL_CCERTS_FILE_MAX + 1);
	rc = rl_buf_read_file(&b, path, POL_CCERTS_FILE_MAX + 1, &why);
	if (rc == RL_ETOOBIG)
		rc = 0; /* the parser refuses it with its own message */
	if (rc < 0)
		log_err("%s: %s (%s)", path, why.reason ? why.reason : "cannot read file",
			rl_strerror(rc));
	else if ((rc = pol_ccerts_parse(path, b.data, b.len, out, errs)) < 0)
		ccert_errors(errs);
	rl_buf_fini(&b);
	free(errs);
	return rc;
}

static int ccert_ca_load(const char *path, gnutls_x509_trust_list_t *out)
{
	struct rl_why why = {0};
	int rc = cert_trust_load(path, out, &why);

	if (rc < 0) {
		*out = NULL;
		log_err("cannot load relay_client_ca_file %s: %s", path,
			why.reason ? why.reason : rl_strerror(rc));
	}
	return rc;
}

/* What the settings cannot do, said once per start or reload. */
static void ccert_advise(const struct cfg *c)
{
	if ((c->relay_clientcerts || c->relay_client_ca_file) && !c->smtpd_tls_ask_ccert)
		log_warn("%s: relay_clientcerts or relay_client_ca_file is set but "
			 "smtpd_tls_ask_ccert = no: no client certificate is asked for, so none "
			 "allows relaying",
			 c->path);
	if (c->smtpd_tls_ask_ccert && !c->smtpd_tls_cert_file)
		log_warn("%s: smtpd_tls_ask_ccert = yes needs STARTTLS (smtpd_tls_cert_file)",
			 c->path);
}

int serve_ccert_init(struct serve *srv)
{
	const struct cfg *c = &srv->cfg;

	ccert_advise(c);
	if (c->relay_clientcerts) {
		if (ccert_list_load(c->relay_clientcerts, &srv->ccerts) < 0) {
			log_err("%s: invalid relay_clientcerts file; not starting",
				c->relay_clientcerts);
			return -1;
		}
		log_info("relay_clientcerts %s: %zu digest%s", c->relay_clientcerts,
			 pol_ccerts_count(srv->ccerts),
			 pol_ccerts_count(srv->ccerts) == 1 ? "" : "s");
	}
	if (c->relay_client_ca_file && ccert_ca_load(c->relay_client_ca_file, &srv->client_ca) < 0)
		return -1;
	return 0;
}

static void ccert_reload_ca(struct serve *srv)
{
	const char *path = srv->cfg.relay_client_ca_file;
	gnutls_x509_trust_list_t next = NULL;

	if (path && ccert_ca_load(path, &next) < 0) {
		log_err("%s: keeping the previous relay_client_ca_file", path);
		return;
	}
	cert_trust_free(srv->client_ca);
	srv->client_ca = next;
}

void serve_ccert_reload(struct serve *srv, const char *why, int ca)
{
	const char *path = srv->cfg.relay_clientcerts;
	struct pol_ccerts *next = NULL;

	if (ca) {
		ccert_advise(&srv->cfg);
		ccert_reload_ca(srv);
	}
	if (path && ccert_list_load(path, &next) < 0) {
		log_err("%s: invalid relay_clientcerts file; keeping the previous list", path);
		return;
	}
	pol_ccerts_free(srv->ccerts);
	srv->ccerts = next;
	if (path)
		log_info("reloaded relay_clientcerts %s (%s): %zu digest%s", path, why,
			 pol_ccerts_count(next), pol_ccerts_count(next) == 1 ? "" : "s");
}

static void ccert_changed(void *arg)
{
	struct serve *srv = arg;

	if (!srv->stopping)
		serve_ccert_reload(srv, "file changed", 0);
}

void serve_ccert_watch(struct serve *srv)
{
	int rc;

	if (!srv->ccert_watch.open)
		filewatch_init(&srv->ccert_watch, srv->loop, ccert_changed, srv);
	rc = filewatch_start(&srv->ccert_watch, srv->cfg.relay_clientcerts);
	if (rc < 0)
		log_warn("cannot watch the directory of %s (%s): relay_clientcerts changes take "
			 "effect on SIGHUP only",
			 srv->cfg.relay_clientcerts, uv_strerror(rc));
}

void serve_ccert_fini(struct serve *srv)
{
	pol_ccerts_free(srv->ccerts);
	srv->ccerts = NULL;
	cert_trust_free(srv->client_ca);
	srv->client_ca = NULL;
}
