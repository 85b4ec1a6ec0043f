/*
 * tlscred: every TLS credential of the relay, built in one place
 * (tlscred.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cert.h"
#include "tlscred.h"
#include "tlspol.h"

/* Inbound TLS: what any current MTA speaks, nothing older than TLS 1.2. */
#define TLSCRED_SMTPD_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"

/* Room for a message: two paths, a priority string and a library's text. */
#define TLSCRED_MSG_SIZE 8192

static void tlscred_say(void (*say)(int err, const char *text), int err, const char *fmt, ...)
    RL_PRINTF(3, 4);

static void tlscred_say(void (*say)(int err, const char *text), int err, const char *fmt, ...)
{
	char text[TLSCRED_MSG_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	say(err, text);
}

int tlscred_check_key(const char *path, void (*say)(int err, const char *text))
{
	struct stat st;

	if (stat(path, &st) < 0) {
		tlscred_say(say, 1, "cannot read private key %s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		tlscred_say(say, 1,
			    "private key %s is accessible by group or others (mode %04o); "
			    "chmod 600 it",
			    path, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

int tlscred_in_init(const struct cfg *c, struct tlscred_in *in,
		    void (*say)(int err, const char *text))
{
	int rc;

	memset(in, 0, sizeof(*in));
	if (!c->smtpd_tls_cert_file)
		return 0;
	if (tlscred_check_key(c->smtpd_tls_key_file, say) < 0)
		return -1;
	if (gnutls_certificate_allocate_credentials(&in->cred) < 0)
		return -1;
	rc = gnutls_certificate_set_x509_key_file2(
	    in->cred, c->smtpd_tls_cert_file, c->smtpd_tls_key_file, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0) {
		tlscred_say(say, 1,
			    "cannot load smtpd_tls_cert_file %s / smtpd_tls_key_file %s: %s",
			    c->smtpd_tls_cert_file, c->smtpd_tls_key_file, gnutls_strerror(rc));
		return -1;
	}
	rc = gnutls_priority_init2(&in->prio, TLSCRED_SMTPD_PRIORITY, NULL, 0);
	RL_REQUIRE(rc == 0);
	return 0;
}

void tlscred_in_fini(struct tlscred_in *in)
{
	if (in->cred)
		gnutls_certificate_free_credentials(in->cred);
	if (in->prio)
		gnutls_priority_deinit(in->prio);
	memset(in, 0, sizeof(*in));
}

/* The trust store: our own list for verify/secure, and GnuTLS's copy in cred. */
static int tlscred_out_trust(const struct cfg *c, struct tlscred_out *out,
			     void (*say)(int err, const char *text))
{
	struct rl_why why = {0};
	int rc;

	/* Our own trust list for verify/secure; GnuTLS's is only for logging. */
	if (cert_trust_load(c->tls_ca_file, &out->trust, &why) < 0) {
		if (c->tls_ca_file) {
			tlscred_say(say, 1, "cannot load tls_ca_file %s: %s", c->tls_ca_file,
				    why.reason ? why.reason : "no certificates");
			return -1;
		}
		say(0, "no system trust store: verify and secure deliveries will be deferred");
		out->trust = NULL;
	}
	rc = c->tls_ca_file ? gnutls_certificate_set_x509_trust_file(out->tls.cred, c->tls_ca_file,
								     GNUTLS_X509_FMT_PEM)
			    : gnutls_certificate_set_x509_system_trust(out->tls.cred);
	if (rc < 0 && c->tls_ca_file) {
		tlscred_say(say, 1, "cannot load tls_ca_file %s: %s", c->tls_ca_file,
			    gnutls_strerror(rc));
		return -1;
	}
	return 0;
}

/* tls_protocols narrows the versions of tls_priority. */
static int tlscred_out_prio(const struct cfg *c, struct tlscred_out *out,
			    void (*say)(int err, const char *text))
{
	struct rl_buf prio;
	int rc;

	rl_buf_init(&prio, 4096);
	rc = tlspol_priority_text(c, 0, NULL, &prio);
	if (rc == 0)
		rc = rl_buf_append(&prio, "", 1);
	if (rc == 0) {
		rc = gnutls_priority_init2(&out->tls.prio, prio.data, NULL, 0);
		if (rc < 0) {
			out->tls.prio = NULL;
			tlscred_say(say, 1, "%s: bad tls_priority \"%s\": %s", c->path, prio.data,
				    gnutls_strerror(rc));
		}
	}
	rl_buf_fini(&prio);
	return rc < 0 ? -1 : 0;
}

int tlscred_out_init(const struct cfg *c, struct tlscred_out *out,
		     void (*say)(int err, const char *text))
{
	int rc;

	memset(out, 0, sizeof(*out));
	/* The client key's permissions, before it is loaded. */
	if (c->tls_cert_file && tlscred_check_key(c->tls_key_file, say) < 0)
		return -1;
	if (gnutls_certificate_allocate_credentials(&out->tls.cred) < 0)
		return -ENOMEM;
	if (tlscred_out_trust(c, out, say) < 0)
		return -1;
	if (c->tls_cert_file) {
		rc = gnutls_certificate_set_x509_key_file2(
		    out->tls.cred, c->tls_cert_file, c->tls_key_file, GNUTLS_X509_FMT_PEM, NULL, 0);
		if (rc < 0) {
			tlscred_say(say, 1, "cannot load tls_cert_file %s: %s", c->tls_cert_file,
				    gnutls_strerror(rc));
			return -1;
		}
	}
	if (tlscred_out_prio(c, out, say) < 0)
		return -1;
	out->tls.loglevel = c->tls_loglevel;
	return 0;
}

void tlscred_out_fini(struct tlscred_out *out)
{
	if (out->tls.cred)
		gnutls_certificate_free_credentials(out->tls.cred);
	if (out->tls.prio)
		gnutls_priority_deinit(out->tls.prio);
	if (out->trust)
		cert_trust_free(out->trust);
	memset(out, 0, sizeof(*out));
}
