/*
 * cli: the command-line tools that work on the queue next to (or without)
 * the running daemon: mailq, queue, sendmail; policy (cli_policy.c),
 * which reads the configuration and the policy file; and certs
 * (cli_certs.c, cli_probe.c), which read certificate files or, for
 * `certs probe`, talk to one SMTP server with blocking sockets (a
 * one-shot tool: no event loop for SMTP).  `policy show` and `certs
 * probe --domain` also make the relay's DNS lookups for DANE, on a
 * loop of their own (cli_dane.h).  Each returns an exit code of
 * the contract: 0 success, 1 failure, 2 usage, 75 for sendmail when the
 * queue cannot take the message; sendmail also uses 64, 65 and 69 below.
 */
#ifndef CLI_H
#define CLI_H

#include "cfg.h"
#include "queue.h"

#define CLI_EX_OK 0
#define CLI_EX_FAIL 1
#define CLI_EX_USAGE 2
#define CLI_EX_TEMPFAIL 75
/* sendmail only, with Postfix's sysexits: a bad address argument, bad
 * message content, a message over max_message_size. */
#define CLI_EX_BADARG 64      /* EX_USAGE */
#define CLI_EX_DATAERR 65     /* EX_DATAERR */
#define CLI_EX_UNAVAILABLE 69 /* EX_UNAVAILABLE */

/* Load the configuration or print one line "tlsrelay: PATH:LINE: ..." . */
int cli_load_cfg(const char *path, struct cfg *c);
/*
 * Run as root with `user` set: check queue_dir as the relay does at start;
 * with create (the command may write: make it if missing, take a queue of
 * root's over) then become the user for good.  Without create nothing is
 * changed on disk, and a root-owned queue is left to be read as root (no
 * switch).  Otherwise nothing.  0, or -1 after printing why.
 */
int cli_queue_privs(const struct cfg *c, int create);
/* Open the configured queue (cli_queue_privs() first) or print why. */
int cli_open_queue(const struct cfg *c, unsigned flags, struct queue **q);

/* Is a live relay process delivering message id (its mark's pid runs)? */
int cli_msg_active(struct queue_txn *t, const char *id);

int cli_mailq(const char *cfgpath, int argc, char **argv);
/* `status [--json]`: the one screen (cli_status.c); argv starts after "status". */
int cli_status(const char *cfgpath, int argc, char **argv);
int cli_queue(const char *cfgpath, int argc, char **argv);
int cli_sendmail(const char *cfgpath, int argc, char **argv);
/* `policy check [FILE]`, `policy show DOMAIN`; argv starts after "policy". */
int cli_policy(const char *cfgpath, int argc, char **argv);
/* `certs fingerprint FILE`, `certs probe ...`; argv starts after "certs". */
int cli_certs(const char *cfgpath, int argc, char **argv);
/* `report [--since 7d] [--json | --html FILE]`; argv starts after "report". */
int cli_report(const char *cfgpath, int argc, char **argv);
/* `tlsrpt show [--day D] [DOMAIN]`, `tlsrpt send [--day D]`; argv starts after "tlsrpt". */
int cli_tlsrpt(const char *cfgpath, int argc, char **argv);
/* `certs probe [--domain D] HOST[:PORT]`; argv starts after "probe". */
int cli_probe(const char *cfgpath, int argc, char **argv);

/*
 * Load a policy file (cli_policy.c): 0 with a new *t (an empty table when
 * the file does not exist, and *missing = 1), or -1 after printing why
 * ("FILE:LINE: message" lines) on stderr.  Free *t with pol_table_free.
 */
struct pol_table;
int cli_load_policy(const char *path, struct pol_table **t, int *missing);

/*
 * Print the `match=` lines of `certs fingerprint` for one DER certificate
 * (cli_certs.c): "# SHA-256 of certificate SUBJECT", "match=HEX",
 * "# SHA-256 of public key", "match=HEX".  name is for the error line.
 * Returns 0, or a negative code after printing one line on stderr.
 */
int cli_print_fingerprints(const char *name, const unsigned char *der, size_t len);

#endif
