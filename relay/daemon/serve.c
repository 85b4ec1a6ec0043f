/*
 * serve: `tlsrelay serve`, the daemon.  Loads the configuration, opens the
 * queue, listens, and runs the loop until SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"
#include "https.h"
#include "log.h"
#include "netaddr.h"
#include "priv.h"
#include "qmgr.h"
#include "serve.h"
#include "smtpd.h"
#include "status.h"
#include "tally.h"
#include "tlspol.h"
#include "tlsrpt.h"

#define SERVE_BACKLOG 511
#define SERVE_DELIVERY_GRACE_MS 10000 /* deliveries in flight may finish */


static void serve_on_connection(uv_stream_t *server, int status)
{
	struct serve *srv = server->data;

	if (status < 0) {
		log_warn("accept: %s", uv_strerror(status));
		return;
	}
	smtpd_accept(srv->smtpd, server);
}

static int serve_listen(struct serve *srv)
{
	for (size_t i = 0; i < srv->cfg.nlisten; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)&srv->cfg.listen[i].sa;
		uv_tcp_t *t = &srv->listen[i];
		int rc;

		uv_tcp_init(srv->loop, t);
		t->data = srv;
		srv->nlisten++;
		rc = uv_tcp_bind(t, sa, 0);
		if (rc == 0)
			rc = uv_listen((uv_stream_t *)t, SERVE_BACKLOG, serve_on_connection);
		if (rc < 0) {
			char host[NETADDR_TEXT_SIZE];
			unsigned port;

			(void)!netaddr_text(sa, host, sizeof(host), &port);
			log_err("cannot listen on %s port %u: %s", host, port, uv_strerror(rc));
			return rc;
		}
	}
	return 0;
}

static uint64_t serve_smtpd_connections(void *arg)
{
	struct serve *srv = arg;

	return srv->smtpd ? smtpd_server_sessions(srv->smtpd) : 0;
}

/* The metrics endpoint, when metrics_listen is set; a bind failure refuses the start. */
static int serve_metrics(struct serve *srv)
{
	const struct sockaddr *sa = (const struct sockaddr *)&srv->cfg.metrics_listen.sa;
	struct metrics_params p = { srv->loop, sa, srv->q, &srv->metrics,
				    serve_smtpd_connections, srv };
	char host[NETADDR_TEXT_SIZE];
	unsigned port;
	int rc;

	if (srv->cfg.metrics_listen.len == 0)
		return 0;
	(void)!netaddr_text(sa, host, sizeof(host), &port);
	rc = metrics_server_start(&p, &srv->metrics_srv);
	if (rc < 0)
		log_err("cannot listen on %s port %u (metrics_listen): %s", host, port,
			uv_strerror(rc));
	return rc;
}

/* tlscred's messages go to the log, as they always did. */
static void serve_tls_say(int err, const char *text)
{
	if (err)
		log_err("%s", text);
	else
		log_warn("%s", text);
}

static int serve_tls_init(struct serve *srv)
{
	return tlscred_in_init(&srv->cfg, &srv->tls_in, serve_tls_say);
}

/* --- the SMTP AUTH password file ------------------------------------------ */

/*
 * Once AUTH is configured the process holds passwords for a moment (on
 * their way to the hash check) and the hashes for good: it stops being
 * dumpable, so no core file can carry them and no other process of the
 * same user can read its memory (/proc/PID/mem, ptrace).  Never undone.
 */
static void serve_sasl_nodump(void)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		log_warn("cannot turn off core dumps (prctl): %s", strerror(errno));
}

/* Load smtpd_sasl_password_file into *out (NULL when unset); 0 or -1, logged. */
static int serve_sasl_load(const struct cfg *c, struct auth_db **out)
{
	char err[512];
	int others = 0;

	*out = NULL;
	if (!c->smtpd_sasl_password_file)
		return 0;
	if (auth_db_load(c->smtpd_sasl_password_file, out, &others, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return -1;
	}
	if (others)
		log_warn("%s is readable by others: its hashes could be guessed at offline; "
			 "chmod o-r it", c->smtpd_sasl_password_file);
	if (!c->smtpd_tls_cert_file)
		log_warn("smtpd_sasl_password_file is set but smtpd_tls_cert_file is not: AUTH is "
			 "offered only after STARTTLS, so never");
	log_info("smtpd_sasl_password_file %s: %zu user%s", c->smtpd_sasl_password_file,
		 auth_db_count(*out), auth_db_count(*out) == 1 ? "" : "s");
	serve_sasl_nodump();
	return 0;
}

/* At start: a password file that does not load refuses the start. */
static int serve_sasl_init(struct serve *srv)
{
	if (serve_sasl_load(&srv->cfg, &srv->sasl) == 0)
		return 0;
	log_err("%s: invalid password file; not starting", srv->cfg.smtpd_sasl_password_file);
	return -1;
}

/*
 * SIGHUP: all or nothing.  A file that does not load leaves the previous
 * table in force (logged as FILE:LINE: message).  Sessions copy what they
 * need from the table at AUTH, so the old one can go at once.
 */
static void serve_sasl_reload(struct serve *srv)
{
	struct auth_db *next = NULL;

	if (serve_sasl_load(&srv->cfg, &next) < 0) {
		log_err("%s: invalid password file; keeping the previous one%s",
			srv->cfg.smtpd_sasl_password_file, srv->sasl ? "" : " (none: AUTH stays off)");
		return;
	}
	auth_db_free(srv->sasl);
	srv->sasl = next;
}

/* --- the policy file --------------------------------------------------- */

/*
 * Errors and warnings of a load, in line order: once per load.  The log
 * marks the severity itself ("error: ", "warning: "), so a warning is
 * "FILE:LINE: " and the message proper.
 */
static void serve_policy_errors(const struct pol_errors *errs)
{
	const struct pol_msg *m;
	size_t ie = 0, iw = 0;
	int warning;

	while ((m = pol_errors_next(errs, &ie, &iw, &warning)) != NULL) {
		if (warning)
			log_warn("%.*s%s", (int)m->prefix, m->msg, m->msg + m->text);
		else
			log_err("%s", m->msg);
	}
	if (errs->total > errs->count)
		log_err("%zu more errors in the policy file not shown", errs->total - errs->count);
	if (errs->wtotal > errs->nwarn)
		log_warn("%zu more warnings in the policy file not shown",
			 errs->wtotal - errs->nwarn);
}

/* At start: a bad policy file refuses the start (nothing to keep). */
static int serve_policy_init(struct serve *srv)
{
	struct pol_errors *errs = malloc(sizeof(*errs));
	int missing = 0, rc;

	if (!errs)
		return -ENOMEM;
	rc = tlspol_load(srv->cfg.policy_file, &srv->cfg, &srv->pol, errs, &missing);
	serve_policy_errors(errs);
	if (rc < 0) {
		log_err("%s: invalid policy file; not starting", srv->cfg.policy_file);
	} else if (missing) {
		log_info("policy file %s does not exist: every domain gets default_tls_level %s",
			 srv->cfg.policy_file, pol_level_name(srv->cfg.default_tls_level));
	} else {
		log_info("policy file %s: %zu entr%s", srv->cfg.policy_file,
			 pol_table_count(tlspol_table(srv->pol)),
			 pol_table_count(tlspol_table(srv->pol)) == 1 ? "y" : "ies");
	}
	free(errs);
	return rc;
}

static int serve_count_key(const char *key, void *arg)
{
	(void)key;
	(*(size_t *)arg)++;
	return 0;
}

/*
 * A reload has been read (on a worker thread, tlspol_reload.c): the new file
 * replaces the old only when the whole of it is valid; else the old stays
 * in force and the errors are logged as FILE:LINE: message.
 */
static void serve_policy_apply(struct serve *srv, const struct tlspol_reload_result *r)
{
	struct tlspol *next = r->pol, *old = srv->pol;
	size_t changed = 0;

	serve_policy_errors(r->errs);
	if (r->rc < 0) {
		log_err("%s: invalid policy file; keeping the previous policy", r->path);
		return;
	}
	if (srv->stopping) {
		tlspol_unref(next);
		return;
	}
	(void)pol_table_diff(tlspol_table(old), tlspol_table(next), serve_count_key, &changed);
	if (changed == 0) {
		tlspol_unref(next);
		return;
	}
	log_info("reloaded policy file %s (%s): %zu entr%s, %zu changed%s", r->path,
		 r->why, pol_table_count(tlspol_table(next)),
		 pol_table_count(tlspol_table(next)) == 1 ? "y" : "ies", changed,
		 r->missing ? " (file does not exist: no entries)" : "");
	srv->pol = next;
	qmgr_policy_changed(srv->qmgr, tlspol_table(old), tlspol_table(next));
	tlspol_unref(old);
}

/*
 * A SIGHUP reload is done when its policy load is (installed, unchanged or
 * refused): then systemd hears READY=1.  A reload asked meanwhile supersedes
 * the one running and has the only done(), so one READY=1 ends them all.
 */
static void serve_policy_install(void *arg, const struct tlspol_reload_result *r)
{
	struct serve *srv = arg;

	serve_policy_apply(srv, r);
	notify_reload_done(&srv->notify);
}

/* Reload on save or SIGHUP, off the loop; reloads asked meanwhile coalesce. */
static void serve_policy_reload(struct serve *srv, const char *why)
{
	if (!srv->pol_reload ||
	    tlspol_reload_start(srv->pol_reload, srv->cfg.policy_file, &srv->cfg, why) < 0) {
		log_err("policy reload (%s): out of memory; keeping the previous policy", why);
		notify_reload_done(&srv->notify);
	}
}

static void serve_policy_changed(void *arg)
{
	struct serve *srv = arg;

	if (!srv->stopping)
		serve_policy_reload(srv, "file changed");
}

/* Watch the policy file (its directory: the file itself may not exist). */
static void serve_policy_watch_start(struct serve *srv)
{
	int rc = filewatch_start(&srv->pol_watch, srv->cfg.policy_file);

	if (rc < 0)
		log_warn("cannot watch the directory of %s (%s): policy changes take effect on "
			 "SIGHUP only", srv->cfg.policy_file, uv_strerror(rc));
}

static void serve_policy_watch(struct serve *srv)
{
	filewatch_init(&srv->pol_watch, srv->loop, serve_policy_changed, srv);
	srv->pol_reload = tlspol_reload_new(srv->loop, serve_policy_install, srv);
	serve_policy_watch_start(srv);
}

static int str_differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/*
 * Settings taken at start (credentials, priorities, the resolver) and not
 * rebuilt on SIGHUP; said in the log, not ignored.  Keys and certificates
 * are read at start only, also because a relay that dropped privileges
 * (priv.h) may no longer be able to read them.
 */
static int serve_outbound_changed(const struct cfg *a, const struct cfg *b)
{
	return str_differ(a->tls_ca_file, b->tls_ca_file) ||
	       str_differ(a->smtpd_tls_cert_file, b->smtpd_tls_cert_file) ||
	       str_differ(a->smtpd_tls_key_file, b->smtpd_tls_key_file) ||
	       str_differ(a->tls_cert_file, b->tls_cert_file) ||
	       str_differ(a->tls_key_file, b->tls_key_file) ||
	       str_differ(a->tls_priority, b->tls_priority) ||
	       a->tls_protocols != b->tls_protocols || a->tls_loglevel != b->tls_loglevel ||
	       a->dns_system != b->dns_system || a->ndns != b->ndns ||
	       memcmp(a->dns, b->dns, sizeof(a->dns)) != 0 ||
	       str_differ(a->dns_trust_anchor_file, b->dns_trust_anchor_file) ||
	       str_differ(a->dns_unbound_config, b->dns_unbound_config) ||
	       a->remote_port != b->remote_port;
}

static void serve_reload(struct serve *srv)
{
	struct cfg next;
	struct cfg_error err;
	int watch_moved;

	if (cfg_load(&next, srv->cfg_path, &err) < 0) {
		log_err("%s; keeping the previous configuration", err.msg);
		cfg_fini(&next);
		serve_policy_reload(srv, "SIGHUP");
		serve_ccert_reload(srv, "SIGHUP", 1);
		return;
	}
	if (strcmp(next.queue_dir, srv->cfg.queue_dir) != 0 || next.nlisten != srv->cfg.nlisten ||
	    memcmp(next.listen, srv->cfg.listen, sizeof(next.listen)) != 0 ||
	    memcmp(&next.metrics_listen, &srv->cfg.metrics_listen, sizeof(next.metrics_listen)) ||
	    str_differ(next.user, srv->cfg.user))
		log_warn("%s: changes to listen, metrics_listen, queue_dir and user take effect "
			 "after a restart", srv->cfg_path);
	/* Keep what the running sockets and queue were set up with. */
	memcpy(next.listen, srv->cfg.listen, sizeof(next.listen));
	next.metrics_listen = srv->cfg.metrics_listen;
	next.nlisten = srv->cfg.nlisten;
	free(next.queue_dir);
	next.queue_dir = srv->cfg.queue_dir;
	srv->cfg.queue_dir = NULL;
	free(next.user);
	next.user = srv->cfg.user;
	srv->cfg.user = NULL;
	next.user_uid = srv->cfg.user_uid;
	next.user_gid = srv->cfg.user_gid;
	if (serve_outbound_changed(&srv->cfg, &next))
		log_warn("%s: changes to tls_*, smtpd_tls_*, dns_* and remote_port keys take effect "
			 "after a restart", srv->cfg_path);
	watch_moved = strcmp(next.policy_file, srv->cfg.policy_file) != 0;
	cfg_fini(&srv->cfg);
	srv->cfg = next;
	log_info("reloaded configuration from %s", srv->cfg_path);
	serve_sasl_reload(srv);
	if (watch_moved && srv->pol_watch.open)
		serve_policy_watch_start(srv);
	serve_policy_reload(srv, "SIGHUP");
	serve_ccert_watch(srv);
	serve_ccert_reload(srv, "SIGHUP", 1);
}

/* --- does DNSSEC validation work? (dns_check_dnssec, once at start) ------ */

/*
 * The check has a resolver of its own, made like delivery's from the same
 * keys and freed as soon as the answer is in, so delivery's resolver and
 * the start of the relay never wait for it.  What it names is taken at
 * start: a SIGHUP does not change the resolver either.
 */
struct serve_dnscheck {
	struct dns *dns;
	char zone[DNS_NAME_MAX];
	char servers[1024];
	const char *advice; /* the next step, when it does not work */
};

static void serve_dnscheck_stop(struct serve *srv)
{
	if (!srv->dnscheck)
		return;
	dns_free(srv->dnscheck->dns);
	free(srv->dnscheck);
	srv->dnscheck = NULL;
}

static void serve_dnscheck_done(void *arg, const struct dns_check_result *r)
{
	struct serve *srv = arg;
	struct serve_dnscheck *c = srv->dnscheck;

	if (r->verdict == DNS_CHECK_SECURE)
		log_info("DNSSEC validation works through %s: the DNSKEY records of %s validate",
			 c->servers, c->zone);
	else if (r->verdict == DNS_CHECK_INSECURE)
		log_warn("DNSSEC validation does not work through %s: name=%s type=DNSKEY: %s; "
			 "DANE will not be used; see README \"DNS\" (dns_trust_anchor_file)",
			 c->servers, c->zone, r->why);
	else
		log_warn("DNSSEC validation does not work through %s: name=%s type=DNSKEY: %s; "
			 "mail%s%s is deferred until it does; see README \"DNS\"%s",
			 c->servers, c->zone, r->why,
			 strcmp(c->zone, ".") ? " to domains under " : "",
			 strcmp(c->zone, ".") ? c->zone : "", c->advice);
	serve_dnscheck_stop(srv);
}

/*
 * A resolver that does not pass DNSSEC records through makes every lookup
 * under the trust anchor bogus, and mail is deferred for a reason that
 * names no cause: say it once, in one line, at start.  The relay runs on
 * either way; mail then defers, it is never sent on unvalidated answers.
 */
static void serve_dnscheck_start(struct serve *srv)
{
	struct serve_dnscheck *c = calloc(1, sizeof(*c));
	char err[256];
	int rc;

	if (!c)
		return;
	dns_check_zone(&srv->cfg, c->zone, sizeof(c->zone));
	dns_servers_text(&srv->cfg, c->servers, sizeof(c->servers));
	/* Forwarders that strip DNSSEC records are the usual cause. */
	c->advice = srv->cfg.dns_system || srv->cfg.ndns > 0 ? " (dns_servers = recursive)" : "";
	rc = dns_new(srv->loop, &srv->cfg, &c->dns, err, sizeof(err));
	if (rc < 0) {
		free(c);
		return; /* delivery made its resolver from the same keys and said why */
	}
	srv->dnscheck = c;
	rc = dns_check_dnssec(c->dns, c->zone, serve_dnscheck_done, srv);
	if (rc < 0) {
		log_warn("cannot check DNSSEC validation through %s: %s", c->servers,
			 rl_strerror(rc));
		serve_dnscheck_stop(srv);
	}
}

/*
 * Shutdown is over when every inbound session is gone, delivery has
 * stopped and the committer is idle.  Each says so by a callback (smtpd's
 * gone, qmgr's stopped, the committer's idle), and each callback asks
 * here: shutdown completes by events, never by polling.
 */
static void serve_stop_check(struct serve *srv)
{
	/* Sessions close within conn's drain bound; commits in flight finish. */
	if (!srv->stopping || srv->stop_done || smtpd_server_sessions(srv->smtpd) > 0 ||
	    !committer_idle(srv->commit) || !srv->qmgr_stopped || srv->rpt_sending)
		return;
	/* The inbound counters of `status` go once no session can count. */
	if (!tally_idle(srv->tally)) {
		tally_stop(srv->tally);
		if (!tally_idle(srv->tally))
			return; /* the committer's idle callback comes back here */
	}
	tally_stop(srv->tally);
	/* The last TLS-RPT counts go after delivery stopped counting. */
	if (!tlsrpt_counter_idle(srv->rpt)) {
		tlsrpt_counter_stop(srv->rpt);
		if (!tlsrpt_counter_idle(srv->rpt))
			return; /* the committer's idle callback comes back here */
	}
	tlsrpt_counter_stop(srv->rpt);
	srv->stop_done = 1;
	uv_close((uv_handle_t *)&srv->sig_term, NULL);
	uv_close((uv_handle_t *)&srv->sig_int, NULL);
	uv_close((uv_handle_t *)&srv->sig_hup, NULL);
	if (srv->rpt) /* its timer was started with it */
		uv_close((uv_handle_t *)&srv->rpt_timer, NULL);
	filewatch_close(&srv->pol_watch);
	filewatch_close(&srv->ccert_watch);
}

/* The committer has nothing left to write. */
static void serve_commit_idle(void *arg)
{
	serve_stop_check(arg);
}

static void serve_qmgr_stopped(void *arg)
{
	struct serve *srv = arg;

	srv->qmgr_stopped = 1;
	serve_stop_check(srv);
}

static void serve_stop(struct serve *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = 1;
	notify_stopping(&srv->notify);
	log_info("terminating on signal");
	serve_dnscheck_stop(srv);
	for (size_t i = 0; i < srv->nlisten; i++)
		uv_close((uv_handle_t *)&srv->listen[i], NULL);
	metrics_server_stop(srv->metrics_srv);
	srv->metrics_srv = NULL;
	if (srv->smtpd)
		smtpd_stop_all(srv->smtpd);
	if (srv->qmgr)
		qmgr_stop(srv->qmgr, SERVE_DELIVERY_GRACE_MS);
	else
		srv->qmgr_stopped = 1;
	serve_stop_check(srv);
}

static void serve_on_signal(uv_signal_t *h, int signum)
{
	struct serve *srv = h->data;

	if (signum == SIGHUP) {
		notify_reloading(&srv->notify);
		serve_reload(srv);
	} else {
		serve_stop(srv);
	}
}

/* smtpd: a session ended; during shutdown the last one may finish it. */
static void serve_session_gone(void *arg)
{
	serve_stop_check(arg);
}

/* smtpd: a message is durable; delivery looks at once. */
static void serve_queued(void *arg)
{
	struct serve *srv = arg;

	qmgr_wake(srv->qmgr);
}

static void serve_signals(struct serve *srv)
{
	uv_signal_t *h[] = { &srv->sig_term, &srv->sig_int, &srv->sig_hup };
	int sig[] = { SIGTERM, SIGINT, SIGHUP };

	for (int i = 0; i < 3; i++) {
		uv_signal_init(srv->loop, h[i]);
		h[i]->data = srv;
		uv_signal_start(h[i], serve_on_signal, sig[i]);
	}
	signal(SIGPIPE, SIG_IGN);
}

/* --- the daily TLS-RPT run (RFC 8460 section 3) --------------------------- */

/* A minute, and a failed run is tried again after an hour. */
#define SERVE_RPT_TICK_MS 60000
#define SERVE_RPT_RETRY 3600
/* Counts of yesterday's last seconds are written within TLSRPT_FLUSH_MS. */
#define SERVE_RPT_SETTLE 120

static void serve_rpt_done(void *arg, int failures)
{
	struct serve *srv = arg;
	char day[16];

	tlsrpt_day((int64_t)time(NULL) - 86400, day, sizeof(day));
	if (failures == 0)
		rl_strlcpy(srv->rpt_done_day, day, sizeof(srv->rpt_done_day));
	else
		srv->rpt_retry_at = (int64_t)time(NULL) + SERVE_RPT_RETRY;
	dns_free(srv->rpt_dns);
	https_free(srv->rpt_https);
	srv->rpt_dns = NULL;
	srv->rpt_https = NULL;
	srv->rpt_sending = 0;
	serve_stop_check(srv);
}

/*
 * Once a day, after 00:00 UTC (and at start): yesterday's reports, unless
 * they all went already.  A report is marked sent in the queue, so a
 * restart never sends one twice.
 */
static void serve_rpt_tick(uv_timer_t *t)
{
	struct serve *srv = t->data;
	int64_t now = (int64_t)time(NULL);
	struct tlsrpt_send_params p = {0};
	char err[256];

	if (!srv->cfg.tlsrpt || srv->rpt_sending || srv->stopping || now < srv->rpt_retry_at ||
	    now % 86400 < SERVE_RPT_SETTLE)
		return;
	tlsrpt_day(now - 86400, p.day, sizeof(p.day));
	if (strcmp(p.day, srv->rpt_done_day) == 0)
		return;
	if (dns_new(srv->loop, &srv->cfg, &srv->rpt_dns, err, sizeof(err)) < 0 ||
	    https_new(srv->loop, &srv->rpt_https, err, sizeof(err)) < 0) {
		log_warn("tlsrpt: cannot send reports: %s", err);
		dns_free(srv->rpt_dns);
		srv->rpt_dns = NULL;
		srv->rpt_retry_at = now + SERVE_RPT_RETRY;
		return;
	}
	p.loop = srv->loop;
	p.cfg = &srv->cfg;
	p.q = srv->q;
	p.dns = srv->rpt_dns;
	p.https = srv->rpt_https;
	p.commit = srv->commit;
	p.done = serve_rpt_done;
	p.arg = srv;
	srv->rpt_sending = 1;
	if (tlsrpt_send_start(&p) < 0) {
		srv->rpt_sending = 0;
		serve_rpt_done(srv, 1);
	}
}

/*
 * One relay per queue: a second one would clear the first one's
 * in-delivery marks and deliver the same due mail again.  The claim also
 * tells `tlsrelay status` that we run and since when.  Taken before
 * anything else touches the queue.
 */
static int serve_claim(struct serve *srv)
{
	uint32_t holder = 0;
	int rc = queue_run_claim(srv->q, (uint32_t)getpid(), (int64_t)time(NULL), &holder);

	if (rc == -EBUSY && holder)
		log_err("queue %s is in use by another relay (pid %lu); not starting",
			srv->cfg.queue_dir, (unsigned long)holder);
	else if (rc == -EBUSY)
		log_err("queue %s is in use by another relay; not starting", srv->cfg.queue_dir);
	else if (rc < 0)
		log_err("cannot claim queue %s (%s/serve.lock): %s", srv->cfg.queue_dir,
			srv->cfg.queue_dir, rl_strerror(rc));
	return rc;
}


/* --- privileges (priv.h) --------------------------------------------------- */

/*
 * Who runs the relay decides what happens: root with `user` set switches
 * to it once the listeners are bound and the queue and keys are open;
 * root without `user` runs on as root, said once; anyone else runs as
 * itself, which must be `user` when that is set (only root can switch).
 */
static int serve_priv_check(struct serve *srv)
{
	uid_t euid = geteuid();

	if (euid == 0 && srv->cfg.user) {
		srv->drop = 1;
		return 0;
	}
	if (euid == 0) {
		log_warn("running as root; set user = NAME in %s to drop privileges",
			 srv->cfg_path);
		return 0;
	}
	if (srv->cfg.user && euid != srv->cfg.user_uid) {
		log_err("user = %s (uid %lu) is set, but the relay runs as uid %lu, not as root: "
			"it cannot switch users; start it as root or as %s", srv->cfg.user,
			(unsigned long)srv->cfg.user_uid, (unsigned long)euid, srv->cfg.user);
		return RL_ECONFIG;
	}
	return 0;
}

/* As root, before the queue is opened: queue_dir made and checked, the user's. */
static int serve_priv_queue(struct serve *srv)
{
	char err[1024];
	int rc;

	if (!srv->drop)
		return 0;
	rc = priv_queue_own(srv->cfg.queue_dir, srv->cfg.user_uid, srv->cfg.user_gid, 1, err,
			    sizeof(err));
	if (rc < 0)
		log_err("%s; not starting", err);
	return rc;
}

/* Everything that needs root is done: become the user, for good. */
static int serve_priv_drop(struct serve *srv)
{
	char err[1024];
	int rc;

	if (!srv->drop)
		return 0;
	rc = priv_drop(srv->cfg.user, srv->cfg.user_uid, srv->cfg.user_gid, err, sizeof(err));
	if (rc == 0)
		rc = priv_queue_check(srv->cfg.queue_dir, srv->cfg.user_uid, 1, err, sizeof(err));
	if (rc < 0) {
		log_err("%s; not starting", err);
		return rc;
	}
	log_info("running as user %s (uid %lu, gid %lu)", srv->cfg.user,
		 (unsigned long)srv->cfg.user_uid, (unsigned long)srv->cfg.user_gid);
	return 0;
}

/* The outbound credentials, read while the relay may still be root. */
static int serve_keys(struct serve *srv)
{
	/* Lent to delivery for its whole life. */
	if (tlscred_out_init(&srv->cfg, &srv->tls_out, serve_tls_say) < 0)
		return RL_ECONFIG;
	return 0;
}

static int serve_queue_open(struct serve *srv)
{
	struct rl_why why = { 0 };
	int rc = queue_open(srv->cfg.queue_dir, srv->cfg.queue_max_size, 0, &srv->q, &why);

	if (rc < 0) {
		log_err("cannot open queue %s: %s%s%s", srv->cfg.queue_dir, rl_strerror(rc),
			why.reason ? ": " : "", why.reason ? why.reason : "");
		return rc;
	}
	rc = serve_claim(srv);
	if (rc < 0)
		return rc;
	metrics_server_queue_adopt(srv->metrics_srv, srv->q);
	return 0;
}

/*
 * The queue is opened by whoever will run the relay: before the
 * listeners as always, but after the switch when there is one, so that
 * LMDB's files are the user's and root needs no CAP_DAC_OVERRIDE to
 * enter the user's 0700 queue_dir.
 */
static int serve_queue_early(struct serve *srv)
{
	return srv->drop ? 0 : serve_queue_open(srv);
}

static int serve_queue_late(struct serve *srv)
{
	return srv->drop ? serve_queue_open(srv) : 0;
}

/* The parts that run as the user: committer, counts, inbound, delivery. */
static int serve_start(struct serve *srv)
{
	struct smtpd_params p;
	struct qmgr_params qp;
	int rc;

	srv->commit = committer_new(srv->loop, srv->q);
	if (!srv->commit)
		return -ENOMEM;
	committer_on_idle(srv->commit, serve_commit_idle, srv);
	/* Counts are kept whatever `tlsrpt` says; it only decides sending. */
	srv->rpt = tlsrpt_counter_new(srv->loop, srv->commit);
	if (!srv->rpt)
		return -ENOMEM;
	/* Rides on the committer's batches; writes alone at most once a minute. */
	srv->tally = tally_new(srv->loop, srv->commit, status_in_names(), STATUS_IN_N);
	if (!srv->tally)
		return -ENOMEM;
	uv_timer_init(srv->loop, &srv->rpt_timer);
	srv->rpt_timer.data = srv;
	uv_timer_start(&srv->rpt_timer, serve_rpt_tick, 1000, SERVE_RPT_TICK_MS);
	p = (struct smtpd_params){ srv->loop, &srv->cfg, srv->commit, srv->tls_in.cred,
				   srv->tls_in.prio, serve_queued, serve_session_gone, srv,
				   &srv->ccerts, &srv->client_ca, &srv->sasl,
				   &srv->metrics, srv->tally };
	rc = smtpd_server_new(&p, &srv->smtpd);
	if (rc < 0)
		return rc;
	qp = (struct qmgr_params){ srv->loop, &srv->cfg, srv->q, srv->commit, &srv->pol,
				   &srv->tls_out.tls, srv->tls_out.trust,
				   serve_qmgr_stopped, srv, srv->rpt, &srv->metrics };
	return qmgr_start(&qp, &srv->qmgr);
}

static void serve_cleanup(struct serve *srv)
{
	qmgr_free(srv->qmgr);
	smtpd_server_free(srv->smtpd);
	committer_free(srv->commit);
	tlsrpt_counter_free(srv->rpt);
	tally_free(srv->tally);
	queue_close(srv->q);
	tlscred_in_fini(&srv->tls_in);
	tlscred_out_fini(&srv->tls_out);
	tlspol_reload_free(srv->pol_reload);
	tlspol_unref(srv->pol);
	serve_ccert_fini(srv);
	auth_db_free(srv->sasl);
	cfg_fini(&srv->cfg);
}

/*
 * Every session is a descriptor (and a spilling one two): raise the soft
 * limit to the hard one, so that accept() does not fail with EMFILE before
 * the per-client and mynetworks checks can run, and say so when even the
 * hard limit is below what the configuration allows.
 */
static void serve_raise_nofile(const struct cfg *c)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)c->smtpd_max_connections * 2 + c->smtp_max_connections + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		log_warn("open file limit %llu is below the %llu that smtpd_max_connections and "
			 "smtp_max_connections may need", (unsigned long long)rl.rlim_cur,
			 (unsigned long long)want);
}

int serve_main(const char *path)
{
	struct serve srv;
	struct cfg_error err;
	int rc = 1;

	memset(&srv, 0, sizeof(srv));
	srv.cfg_path = (char *)path;
	if (cfg_load(&srv.cfg, path, &err) < 0) {
		fprintf(stderr, "tlsrelay: %s\n", err.msg);
		cfg_fini(&srv.cfg);
		return 1;
	}
	log_init("serve", srv.cfg.myhostname, LOG_INFO + (srv.cfg.tls_loglevel >= 4));
	srv.loop = uv_default_loop();
	/* Before the first listener: a SIGTERM that comes while the rest
	 * starts (as the user, after the drop) waits for the loop. */
	serve_signals(&srv);
	serve_raise_nofile(&srv.cfg);
	/* What needs root comes first: keys, queue, sockets (port 25 too);
	 * then the switch to `user`; the rest runs as that user. */
	if (serve_priv_check(&srv) == 0 && serve_tls_init(&srv) == 0 &&
	    serve_policy_init(&srv) == 0 && serve_ccert_init(&srv) == 0 &&
	    serve_sasl_init(&srv) == 0 &&
	    serve_keys(&srv) == 0 &&
	    serve_priv_queue(&srv) == 0 && serve_queue_early(&srv) == 0 &&
	    serve_listen(&srv) == 0 && serve_metrics(&srv) == 0 && serve_priv_drop(&srv) == 0 &&
	    serve_queue_late(&srv) == 0 && serve_start(&srv) == 0) {
		serve_policy_watch(&srv);
		serve_ccert_watch(&srv);
		log_info("daemon started -- version 0.1.0, configuration %s", path);
		/* Listening and the queue open: clients may come (sd_notify(3)). */
		notify_ready(&srv.notify);
		serve_dnscheck_start(&srv);
		uv_run(srv.loop, UV_RUN_DEFAULT);
		log_info("daemon stopped");
		rc = 0;
	} else {
		for (size_t i = 0; i < srv.nlisten; i++)
			uv_close((uv_handle_t *)&srv.listen[i], NULL);
		uv_close((uv_handle_t *)&srv.sig_term, NULL);
		uv_close((uv_handle_t *)&srv.sig_int, NULL);
		uv_close((uv_handle_t *)&srv.sig_hup, NULL);
		metrics_server_stop(srv.metrics_srv);
		if (srv.qmgr)
			qmgr_stop(srv.qmgr, 0);
		/* Whatever serve_start() set going must not keep the loop alive. */
		if (srv.rpt)
			tlsrpt_counter_stop(srv.rpt);
		tally_stop(srv.tally);
		if (srv.rpt_timer.data)
			uv_close((uv_handle_t *)&srv.rpt_timer, NULL);
		uv_run(srv.loop, UV_RUN_DEFAULT);
	}
	if (uv_loop_close(srv.loop) != 0)
		log_warn("event loop closed with handles still open");
	serve_cleanup(&srv);
	return rc;
}
