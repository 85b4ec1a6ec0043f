/*
 * cfg.c: the parts of the configuration module that touch the system
 * (defaults from gethostname(), reading the file) and the mynetworks matcher.
 */
#include "cfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg_int.h"
#include "pol.h"

/* cfg_load() refuses larger files: a configuration is a few KB. */
#define CFG_FILE_MAX (1024 * 1024)

int cfg_net_match(const struct cfg *c, const struct sockaddr *addr)
{
	return rl_net_match(c->mynetworks, c->nmynetworks, addr);
}

void cfg_tlsrpt_org_name(const struct cfg *c, char *out, size_t size)
{
	snprintf(out, size, "%s", c->tlsrpt_org_name ? c->tlsrpt_org_name : c->myhostname);
}

void cfg_tlsrpt_contact_info(const struct cfg *c, char *out, size_t size)
{
	if (c->tlsrpt_contact_info)
		snprintf(out, size, "%s", c->tlsrpt_contact_info);
	else
		snprintf(out, size, "postmaster@%s", c->myhostname);
}

void cfg_tlsrpt_sender(const struct cfg *c, char *out, size_t size)
{
	if (c->tlsrpt_sender)
		snprintf(out, size, "%s", c->tlsrpt_sender);
	else
		snprintf(out, size, "noreply-tlsrpt@%s", c->myhostname);
}

void cfg_fini(struct cfg *c)
{
	char **strs[] = {
	    &c->myhostname,
	    &c->queue_dir,
	    &c->policy_file,
	    &c->dns_trust_anchor_file,
	    &c->dns_unbound_config,
	    &c->tls_ca_file,
	    &c->tls_cert_file,
	    &c->tls_key_file,
	    &c->tls_protocols_text,
	    &c->tls_priority,
	    &c->smtpd_tls_cert_file,
	    &c->smtpd_tls_key_file,
	    &c->relay_clientcerts,
	    &c->relay_client_ca_file,
	    &c->smtpd_sasl_password_file,
	    &c->tlsrpt_org_name,
	    &c->tlsrpt_contact_info,
	    &c->tlsrpt_sender,
	    &c->user,
	    &c->path,
	};

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
}

/* The rest of this file touches the system: the host name and the file. */

static int cfg_default_strings(struct cfg *c)
{
	char host[256];

	/* POSIX leaves a truncated name unterminated; terminate it. */
	if (gethostname(host, sizeof(host) - 1) < 0)
		return -errno;
	host[sizeof(host) - 1] = '\0';
	/* Used as is, even without a dot, as Postfix does. */
	c->myhostname = strdup(host);
	c->queue_dir = strdup("/var/spool/tlsrelay");
	c->policy_file = strdup("/etc/tlsrelay/tls_policy");
	c->dns_trust_anchor_file = strdup("/usr/share/dns/root.key");
	c->tls_protocols_text = strdup(">=TLSv1.2");
	/* Strong AEAD ciphers with forward secrecy only; the relay checks it with GnuTLS. */
	c->tls_priority = strdup("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:"
				 "+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:"
				 "-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA:-RSA");
	c->path = strdup("(defaults)");
	if (!c->myhostname || !c->queue_dir || !c->policy_file || !c->dns_trust_anchor_file ||
	    !c->tls_protocols_text || !c->tls_priority || !c->path)
		return -ENOMEM;
	return 0;
}

int cfg_defaults(struct cfg *c)
{
	static const unsigned char lo4[4] = {127, 0, 0, 1};
	static const unsigned char lo6[16] = {[15] = 1};
	int rc;

	memset(c, 0, sizeof(*c));
	cfg_addr_fill(&c->listen[0], AF_INET, lo4, 25);
	c->nlisten = 1;
	c->mynetworks[0] = (struct rl_net){AF_INET, {127}, 8};
	c->mynetworks[1].family = AF_INET6;
	memcpy(c->mynetworks[1].addr, lo6, 16);
	c->mynetworks[1].prefix = 128;
	c->nmynetworks = 2;
	c->default_tls_level = POL_LEVEL_ENCRYPT;
	c->remote_port = 25;
	c->dns_system = 1;
	c->tls_protocols = CFG_TLS1_2 | CFG_TLS1_3;
	c->tls_loglevel = 1;
	c->requiretls = 1;
	c->mta_sts = 1;
	c->max_message_size = 52428800;
	c->retry_min = 5 * 60;
	c->retry_max = 60 * 60;
	c->queue_lifetime = 5 * 86400;
	c->delay_warning_time = 4 * 3600;
	c->smtpd_timeout = 300;
	c->smtpd_max_session_time = 60 * 60;
	c->smtpd_max_connections = 1000;
	c->smtpd_max_recipients = 1000;
	c->queue_max_size = 4294967296ULL;
	c->smtp_max_connections = 100;
	c->smtp_destination_concurrency_limit = 20;
	c->smtp_initial_destination_concurrency = 5;
	c->smtp_mx_address_limit = 5;
	c->smtp_mx_session_limit = 2;
	c->hopcount_limit = 50;
	c->smtpd_client_connection_count_limit = 50;
	c->smtpd_mynetworks_reserve = 10;
	c->smtpd_spill_threshold = 262144;
	rc = cfg_default_strings(c);
	if (rc < 0)
		cfg_fini(c);
	return rc;
}

/* Put "PATH:LINE: " (or "PATH: " when no line is to blame) before err->msg. */
static int load_fail(struct cfg_error *err, const char *path, int rc)
{
	char msg[sizeof(err->msg)];
	int w;

	rl_strlcpy(msg, err->msg, sizeof(msg));
	if (err->line)
		w = snprintf(err->msg, sizeof(err->msg), "%s:%u: %s", path, err->line, msg);
	else
		w = snprintf(err->msg, sizeof(err->msg), "%s: %s", path, msg);
	/* A very long path pushes the message out; show that it was cut. */
	if (w >= (int)sizeof(err->msg))
		memcpy(err->msg + sizeof(err->msg) - 4, "...", 4);
	return rc;
}

/*
 * The `user` key's account, looked up here rather than by the (pure)
 * parser: an unknown name, or one whose user or group ID is 0 (running
 * as it would drop nothing), is a bad value at its line.
 */
static int cfg_user_lookup(struct cfg *c, struct cfg_error *err)
{
	struct passwd pw, *res = NULL;
	char buf[16384];
	int rc;

	if (!c->user)
		return 0;
	err->line = c->user_line;
	rc = getpwnam_r(c->user, &pw, buf, sizeof(buf), &res);
	if (rc != 0) {
		snprintf(err->msg, sizeof(err->msg), "user: cannot look up \"%s\": %s", c->user,
			 strerror(rc));
		return RL_ECONFIG;
	}
	if (!res) {
		snprintf(err->msg, sizeof(err->msg), "user: no such user \"%s\"", c->user);
		return RL_ECONFIG;
	}
	if (pw.pw_uid == 0 || pw.pw_gid == 0) {
		snprintf(err->msg, sizeof(err->msg),
			 "user: \"%s\" has user or group ID 0; name an unprivileged user", c->user);
		return RL_ECONFIG;
	}
	c->user_uid = pw.pw_uid;
	c->user_gid = pw.pw_gid;
	return 0;
}

int cfg_load(struct cfg *c, const char *path, struct cfg_error *err)
{
	struct rl_why why = { 0, NULL, 0 };
	struct rl_buf b;
	int rc;

	err->line = 0;
	rc = cfg_defaults(c);
	if (rc < 0) {
		rl_strlcpy(err->msg, rl_strerror(rc), sizeof(err->msg));
		return load_fail(err, path, rc);
	}
	rl_buf_init(&b, CFG_FILE_MAX);
	/* The policy file's rules: a FIFO or a device given as the
	 * configuration is refused at once instead of hanging the command. */
	rc = rl_buf_read_file(&b, path, CFG_FILE_MAX, &why);
	if (rc == RL_ETOOBIG)
		snprintf(err->msg, sizeof(err->msg), "file too large (over %d bytes)",
			 CFG_FILE_MAX);
	else if (rc == RL_ECONFIG)
		rl_strlcpy(err->msg, why.reason, sizeof(err->msg));
	else if (rc < 0)
		rl_strlcpy(err->msg, rl_strerror(rc), sizeof(err->msg));
	if (rc == 0)
		rc = cfg_parse(c, b.data, b.len, err);
	if (rc == 0)
		rc = cfg_user_lookup(c, err);
	rl_buf_fini(&b);
	if (rc < 0)
		return load_fail(err, path, rc);
	free(c->path);
	c->path = strdup(path);
	if (!c->path) {
		rl_strlcpy(err->msg, rl_strerror(-ENOMEM), sizeof(err->msg));
		return load_fail(err, path, -ENOMEM);
	}
	return 0;
}
