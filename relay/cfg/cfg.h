/*
 * cfg: the relay's configuration file (INTERFACE.md, "Configuration file").
 *
 * cfg_parse() is a pure function over the file's bytes: no I/O, no logging,
 * no globals.  It fills a struct cfg whose strings and arrays it owns
 * (cfg_fini() releases them).  Every key of the contract is parsed and its
 * value validated; an unknown key or a bad value fails with RL_ECONFIG and
 * cfg_error names the line.  cfg_load() reads a file and calls cfg_parse().
 *
 * Keys beyond the contract (documented in README.md):
 *   smtpd_timeout          idle time allowed between client commands (300s)
 *   smtpd_max_session_time longest inbound session (1h)
 *   smtpd_max_connections  simultaneous inbound sessions (1000)
 *   smtpd_max_recipients   recipients per message (1000)
 *   queue_max_size         most bytes the LMDB queue may hold (4294967296)
 *   smtp_max_connections   outbound SMTP sessions at once, in all (100)
 *   smtp_destination_concurrency_limit
 *                          outbound sessions at once to one domain (20)
 *   smtp_initial_destination_concurrency
 *                          sessions a domain starts with; grows with
 *                          successes, falls with failed sessions (5)
 *   smtp_mx_address_limit  MX addresses tried per delivery round (5)
 *   smtp_mx_session_limit  MX hosts that answered but failed, per round (2)
 *   hopcount_limit         Received: fields that make a message a loop (50)
 *   smtpd_client_connection_count_limit
 *                          sessions at once from one client address outside
 *                          mynetworks (50; 0 = no limit)
 *   smtpd_mynetworks_reserve
 *                          percent of smtpd_max_connections that only
 *                          mynetworks clients may use (10%)
 *   smtpd_spill_threshold  bytes of one message kept in memory; the rest
 *                          goes to an unlinked file in queue_dir (262144)
 */
#ifndef CFG_H
#define CFG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "rl.h"

#define CFG_MAX_LISTEN 16
#define CFG_MAX_NETWORKS 64
#define CFG_MAX_DNS 8

/* A socket address to listen on or to query (sockaddr_in or _in6). */
struct cfg_addr {
	struct sockaddr_storage sa;
	socklen_t len;
};

/* Protocol bits for tls_protocols. */
#define CFG_TLS1_0 0x01
#define CFG_TLS1_1 0x02
#define CFG_TLS1_2 0x04
#define CFG_TLS1_3 0x08

struct cfg {
	struct cfg_addr listen[CFG_MAX_LISTEN];
	size_t nlisten;
	char *myhostname;
	struct rl_net mynetworks[CFG_MAX_NETWORKS];
	size_t nmynetworks;
	char *queue_dir;
	char *policy_file;
	int default_tls_level; /* enum pol_level */
	unsigned remote_port;
	int dns_system;        /* dns_servers = system */
	/* dns_servers = recursive: dns_system 0 and ndns 0 (no forwarder) */
	struct cfg_addr dns[CFG_MAX_DNS];
	size_t ndns;
	char *dns_trust_anchor_file;
	char *dns_unbound_config;  /* NULL if unset */
	char *tls_ca_file;         /* NULL: system trust store */
	char *tls_cert_file;       /* NULL if unset */
	char *tls_key_file;
	unsigned tls_protocols;    /* CFG_TLS* bits allowed outbound */
	char *tls_protocols_text;  /* as written, for messages */
	char *tls_priority;        /* GnuTLS priority string */
	char *smtpd_tls_cert_file; /* NULL if unset */
	char *smtpd_tls_key_file;
	int smtpd_tls_ask_ccert;    /* ask inbound clients for a certificate: 1 yes, 0 no */
	char *relay_clientcerts;    /* digests of client certificates that may relay; NULL: none */
	char *relay_client_ca_file; /* CAs of client certificates that may relay; NULL: none */
	char *smtpd_sasl_password_file; /* NULL: no AUTH (user:hash lines) */
	int tls_loglevel;          /* 0..4 */
	uint64_t max_message_size;
	int64_t retry_min;         /* seconds */
	int64_t retry_max;
	int64_t queue_lifetime;
	int64_t delay_warning_time; /* one delay DSN after this long; 0: never */
	int64_t smtpd_timeout;
	int64_t smtpd_max_session_time;
	unsigned smtpd_max_connections;
	unsigned smtpd_max_recipients;
	uint64_t queue_max_size;
	unsigned smtp_max_connections;
	unsigned smtp_destination_concurrency_limit;
	unsigned smtp_initial_destination_concurrency; /* feedback starts here (5) */
	unsigned smtp_mx_address_limit;  /* MX addresses tried per delivery round (5) */
	unsigned smtp_mx_session_limit;  /* answering MX hosts per delivery round (2) */
	unsigned hopcount_limit;
	unsigned smtpd_client_connection_count_limit; /* 0: none */
	unsigned smtpd_mynetworks_reserve;            /* percent */
	uint64_t smtpd_spill_threshold;
	int requiretls; /* offer REQUIRETLS (RFC 8689) under TLS: 1 yes, 0 no */
	int mta_sts;	/* honour MTA-STS policies (RFC 8461): 1 yes, 0 no */
	int tlsrpt;	/* send daily TLS-RPT reports (RFC 8460): 1 yes, 0 no */
	/* The report's organization-name, contact-info and the From of report
	 * mail; NULL: myhostname, postmaster@myhostname,
	 * noreply-tlsrpt@myhostname (cfg_tlsrpt_*() give the value in force). */
	char *tlsrpt_org_name;
	char *tlsrpt_contact_info;
	char *tlsrpt_sender;
	/* metrics_listen: where /metrics is served; len 0: none (the default). */
	struct cfg_addr metrics_listen;
	/* user: the account to run as when started as root; NULL: none.
	 * cfg_parse() checks the name's form and notes user_line; cfg_load()
	 * looks it up (getpwnam_r) and fills user_uid and user_gid (its
	 * primary group), refusing an unknown name or one with ID 0. */
	char *user;
	unsigned user_line;
	uid_t user_uid;
	gid_t user_gid;
	char *path; /* the file this came from ("(defaults)" if none) */
};

/* Where a parse failed: line number (1-based) and a message. */
struct cfg_error {
	unsigned line;
	char msg[256];
};

/* Fill c with the defaults of the contract (myhostname from the system). */
int cfg_defaults(struct cfg *c) RL_WUR;
void cfg_fini(struct cfg *c);

/*
 * Parse a file's text over the defaults already in c.  On failure returns
 * RL_ECONFIG with err set; c is then in an unspecified (but finishable) state.
 */
int cfg_parse(struct cfg *c, const char *text, size_t len,
	      struct cfg_error *err) RL_WUR;

/*
 * cfg_defaults() + read path + cfg_parse().  On failure err->msg holds one
 * line ready to print: "PATH:LINE: message" (or "PATH: strerror").
 */
int cfg_load(struct cfg *c, const char *path, struct cfg_error *err) RL_WUR;

/* The tlsrpt_* values in force (the key, or its default from myhostname). */
void cfg_tlsrpt_org_name(const struct cfg *c, char *out, size_t size);
void cfg_tlsrpt_contact_info(const struct cfg *c, char *out, size_t size);
void cfg_tlsrpt_sender(const struct cfg *c, char *out, size_t size);

/* Is addr (sockaddr_in/_in6, v4-mapped v6 treated as v4) in mynetworks? */
int cfg_net_match(const struct cfg *c, const struct sockaddr *addr);

#endif
