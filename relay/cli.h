/*
 * cli: the command-line tools that work on the queue next to (or without)
 * the running daemon: mailq, queue, sendmail; and policy (cli_policy.c),
 * which reads the configuration and the policy file only.  Each returns an exit code of
 * the contract: 0 success, 1 failure, 2 usage, 75 for sendmail when the
 * queue cannot take the message.
 */
#ifndef CLI_H
#define CLI_H

#include "cfg.h"
#include "queue.h"

#define CLI_EX_OK 0
#define CLI_EX_FAIL 1
#define CLI_EX_USAGE 2
#define CLI_EX_TEMPFAIL 75

/* Load the configuration or print one line "tlsrelay: PATH:LINE: ..." . */
int cli_load_cfg(const char *path, struct cfg *c);
/* Open the configured queue or print why. */
int cli_open_queue(const struct cfg *c, unsigned flags, struct queue **q);

int cli_mailq(const char *cfgpath, int argc, char **argv);
int cli_queue(const char *cfgpath, int argc, char **argv);
int cli_sendmail(const char *cfgpath, int argc, char **argv);
/* `policy check [FILE]`, `policy show DOMAIN`; argv starts after "policy". */
int cli_policy(const char *cfgpath, int argc, char **argv);

#endif
