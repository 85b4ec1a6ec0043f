/*
 * serve: the daemon context of `tlsrelay serve`, passed explicitly to every
 * session (no hidden globals).  Loop thread only.
 */
#ifndef SERVE_H
#define SERVE_H

#include <stdint.h>

#include <gnutls/gnutls.h>
#include <uv.h>

#include "cfg.h"
#include "commit.h"
#include "queue.h"

struct smtpd_server;
struct qmgr;
struct tlspol;
struct tlspol_reload;

struct serve {
	uv_loop_t *loop;
	struct cfg cfg;       /* current settings; replaced whole on SIGHUP */
	char *cfg_path;
	struct queue *q;
	struct committer *commit;
	struct qmgr *qmgr;    /* delivery; NULL until started */
	struct tlspol *pol;   /* policy file in force (refcounted snapshot) */
	uv_fs_event_t pol_watch; /* the policy file's directory */
	uv_timer_t pol_timer;    /* reload a moment after the last change */
	int pol_watching;
	struct tlspol_reload *pol_reload; /* reloads run off the loop */
	int qmgr_stopped;
	gnutls_certificate_credentials_t smtpd_cred; /* NULL: no STARTTLS */
	gnutls_priority_t smtpd_prio;
	uv_tcp_t listen[CFG_MAX_LISTEN];
	size_t nlisten;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t stop_timer;
	struct smtpd_server *smtpd; /* inbound sessions */
	int stopping;
	int stop_done;        /* shutdown finished: handles closed */
};

/* Run `tlsrelay serve` with the configuration at path; returns exit code. */
int serve_main(const char *path);

/*
 * A private key readable or writable by group or others is refused at
 * start with a clear message (Postfix only warns): 0 if fine, -1 (logged).
 */
int serve_check_key(const char *path);

#endif
