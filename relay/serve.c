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
#include <sys/stat.h>

#include "log.h"
#include "qmgr.h"
#include "serve.h"

#define SERVE_BACKLOG 511
#define SERVE_STOP_POLL_MS 50
#define SERVE_DELIVERY_GRACE_MS 10000 /* deliveries in flight may finish */

/* Inbound TLS: what any current MTA speaks, nothing older than TLS 1.2. */
#define SERVE_SMTPD_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"

static void serve_on_connection(uv_stream_t *server, int status)
{
	struct serve *srv = server->data;

	if (status < 0) {
		log_warn("accept: %s", uv_strerror(status));
		return;
	}
	smtpd_accept(srv, server);
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
			char host[64] = "?";
			int port = 0;

			if (sa->sa_family == AF_INET) {
				uv_ip4_name((const struct sockaddr_in *)sa, host, sizeof(host));
				port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
			} else {
				uv_ip6_name((const struct sockaddr_in6 *)sa, host, sizeof(host));
				port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
			}
			log_err("cannot listen on %s port %d: %s", host, port, uv_strerror(rc));
			return rc;
		}
	}
	return 0;
}

int serve_check_key(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		log_err("cannot read private key %s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		log_err("private key %s is accessible by group or others (mode %04o); "
			"chmod 600 it", path, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

static int serve_tls_init(struct serve *srv)
{
	const struct cfg *c = &srv->cfg;
	int rc;

	if (!c->smtpd_tls_cert_file)
		return 0;
	if (serve_check_key(c->smtpd_tls_key_file) < 0)
		return -1;
	if (gnutls_certificate_allocate_credentials(&srv->smtpd_cred) < 0)
		return -1;
	rc = gnutls_certificate_set_x509_key_file2(srv->smtpd_cred, c->smtpd_tls_cert_file,
						   c->smtpd_tls_key_file, GNUTLS_X509_FMT_PEM,
						   NULL, 0);
	if (rc < 0) {
		log_err("cannot load smtpd_tls_cert_file %s / smtpd_tls_key_file %s: %s",
			c->smtpd_tls_cert_file, c->smtpd_tls_key_file, gnutls_strerror(rc));
		return -1;
	}
	rc = gnutls_priority_init2(&srv->smtpd_prio, SERVE_SMTPD_PRIORITY, NULL, 0);
	RL_REQUIRE(rc == 0);
	return 0;
}

static void serve_reload(struct serve *srv)
{
	struct cfg next;
	struct cfg_error err;

	if (cfg_load(&next, srv->cfg_path, &err) < 0) {
		log_err("%s; keeping the previous configuration", err.msg);
		cfg_fini(&next);
		return;
	}
	if (strcmp(next.queue_dir, srv->cfg.queue_dir) != 0 || next.nlisten != srv->cfg.nlisten ||
	    memcmp(next.listen, srv->cfg.listen, sizeof(next.listen)) != 0)
		log_warn("%s: changes to listen and queue_dir take effect after a restart",
			 srv->cfg_path);
	/* Keep what the running sockets and queue were set up with. */
	memcpy(next.listen, srv->cfg.listen, sizeof(next.listen));
	next.nlisten = srv->cfg.nlisten;
	free(next.queue_dir);
	next.queue_dir = srv->cfg.queue_dir;
	srv->cfg.queue_dir = NULL;
	cfg_fini(&srv->cfg);
	srv->cfg = next;
	log_info("reloaded configuration from %s", srv->cfg_path);
}

static void serve_stop_tick(uv_timer_t *t)
{
	struct serve *srv = t->data;

	/* Sessions close within conn's drain bound; commits in flight finish. */
	if (srv->nsessions > 0 || !committer_idle(srv->commit) || !srv->qmgr_stopped)
		return;
	uv_timer_stop(t);
	uv_close((uv_handle_t *)t, NULL);
	uv_close((uv_handle_t *)&srv->sig_term, NULL);
	uv_close((uv_handle_t *)&srv->sig_int, NULL);
	uv_close((uv_handle_t *)&srv->sig_hup, NULL);
}

static void serve_qmgr_stopped(struct serve *srv)
{
	srv->qmgr_stopped = 1;
}

static void serve_stop(struct serve *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = 1;
	log_info("terminating on signal");
	for (size_t i = 0; i < srv->nlisten; i++)
		uv_close((uv_handle_t *)&srv->listen[i], NULL);
	smtpd_stop_all(srv);
	if (srv->qmgr)
		qmgr_stop(srv->qmgr, SERVE_DELIVERY_GRACE_MS, serve_qmgr_stopped);
	else
		srv->qmgr_stopped = 1;
	uv_timer_init(srv->loop, &srv->stop_timer);
	srv->stop_timer.data = srv;
	uv_timer_start(&srv->stop_timer, serve_stop_tick, 0, SERVE_STOP_POLL_MS);
}

static void serve_on_signal(uv_signal_t *h, int signum)
{
	struct serve *srv = h->data;

	if (signum == SIGHUP)
		serve_reload(srv);
	else
		serve_stop(srv);
}

void serve_session_gone(struct serve *srv)
{
	(void)srv;
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

static int serve_open(struct serve *srv)
{
	struct rl_why why = { 0 };
	int rc = queue_open(srv->cfg.queue_dir, srv->cfg.queue_max_size, 0, &srv->q, &why);

	if (rc < 0) {
		log_err("cannot open queue %s: %s%s%s", srv->cfg.queue_dir, rl_strerror(rc),
			why.reason ? ": " : "", why.reason ? why.reason : "");
		return rc;
	}
	srv->commit = committer_new(srv->loop, srv->q);
	if (!srv->commit)
		return -ENOMEM;
	return qmgr_start(srv, &srv->qmgr);
}

static void serve_cleanup(struct serve *srv)
{
	qmgr_free(srv->qmgr);
	committer_free(srv->commit);
	queue_close(srv->q);
	if (srv->smtpd_cred)
		gnutls_certificate_free_credentials(srv->smtpd_cred);
	if (srv->smtpd_prio)
		gnutls_priority_deinit(srv->smtpd_prio);
	cfg_fini(&srv->cfg);
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
	if (serve_tls_init(&srv) == 0 && serve_open(&srv) == 0 && serve_listen(&srv) == 0) {
		serve_signals(&srv);
		log_info("daemon started -- version 0.1.0, configuration %s", path);
		uv_run(srv.loop, UV_RUN_DEFAULT);
		log_info("daemon stopped");
		rc = 0;
	} else {
		for (size_t i = 0; i < srv.nlisten; i++)
			uv_close((uv_handle_t *)&srv.listen[i], NULL);
		if (srv.qmgr)
			qmgr_stop(srv.qmgr, 0, serve_qmgr_stopped);
		uv_run(srv.loop, UV_RUN_DEFAULT);
	}
	if (uv_loop_close(srv.loop) != 0)
		log_warn("event loop closed with handles still open");
	serve_cleanup(&srv);
	return rc;
}
