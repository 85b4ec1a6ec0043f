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
#include "filewatch.h"
#include "metrics.h"
#include "notify.h"
#include "queue.h"
#include "tlscred.h"

struct smtpd_server;
struct qmgr;
struct tlsrpt_counter;
struct tally;
struct dns;
struct https;
struct tlspol;
struct tlspol_reload;
struct serve_dnscheck;
struct pol_ccerts;
struct auth_db;

struct serve {
	uv_loop_t *loop;
	struct cfg cfg;       /* current settings; replaced whole on SIGHUP */
	char *cfg_path;
	struct queue *q;
	struct committer *commit;
	struct tlsrpt_counter *rpt; /* TLS-RPT counts of outbound sessions */
	struct tally *tally;	    /* inbound counters of `status` (status_in) */
	/* The daily TLS-RPT run (tlsrpt = yes): the day last sent in full,
	 * the time before which a failed run is not retried, the run's own
	 * resolver and HTTPS client while it runs. */
	uv_timer_t rpt_timer;
	char rpt_done_day[16];
	int64_t rpt_retry_at;
	int rpt_sending;
	struct dns *rpt_dns;
	struct https *rpt_https;
	struct qmgr *qmgr;    /* delivery; NULL until started */
	struct tlspol *pol;   /* policy file in force (refcounted snapshot) */
	struct filewatch pol_watch; /* reload the policy file on save */
	struct tlspol_reload *pol_reload; /* reloads run off the loop */
	int qmgr_stopped;
	struct tlscred_in tls_in;   /* inbound STARTTLS; cred NULL: none */
	struct tlscred_out tls_out; /* outbound, lent to qmgr */
	uv_tcp_t listen[CFG_MAX_LISTEN];
	size_t nlisten;
	uv_signal_t sig_term, sig_int, sig_hup;
	struct smtpd_server *smtpd; /* inbound sessions */
	int stopping;
	struct notify notify; /* what systemd has been told */
	int stop_done;        /* shutdown finished: handles closed */
	struct serve_dnscheck *dnscheck; /* the DNSSEC check at start, until answered */
	/* The metrics: counts for the life of the process (a SIGHUP keeps
	 * them), and the endpoint when metrics_listen is set. */
	struct metrics_counts metrics;
	struct metrics_server *metrics_srv;
	int drop; /* started as root with `user` set: switch to it (priv.h) */
	/* Who may relay besides mynetworks (serve_ccert.c), lent to smtpd. */
	struct pol_ccerts *ccerts;	    /* relay_clientcerts in force; NULL: none */
	gnutls_x509_trust_list_t client_ca; /* relay_client_ca_file; NULL: none */
	struct filewatch ccert_watch;	    /* reload relay_clientcerts on save */
	/* SMTP AUTH: the password table of smtpd_sasl_password_file (NULL:
	 * none), lent to smtpd by address; replaced whole on SIGHUP. */
	struct auth_db *sasl;
};

/*
 * serve_ccert.c: relay_clientcerts and relay_client_ca_file.  At start a
 * file that cannot be read or has an error refuses the start (-1, logged).
 * A reload (SIGHUP, or relay_clientcerts saved) replaces a list only with
 * a whole valid file, else keeps the old one and logs FILE:LINE: message.
 */
int serve_ccert_init(struct serve *srv);
/* Reload relay_clientcerts, and relay_client_ca_file when ca is set. */
void serve_ccert_reload(struct serve *srv, const char *why, int ca);
/* Watch relay_clientcerts (again, after a SIGHUP that may have moved it). */
void serve_ccert_watch(struct serve *srv);
void serve_ccert_fini(struct serve *srv);

/* Run `tlsrelay serve` with the configuration at path; returns exit code. */
int serve_main(const char *path);

#endif
