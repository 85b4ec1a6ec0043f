/*
 * cli_submit: hand a message built by `sendmail` to the running relay over
 * SMTP on its first listen address, for users who may not write the queue
 * (see cli_submit.c for why this and not a setgid helper).
 */
#ifndef CLI_SUBMIT_H
#define CLI_SUBMIT_H

#include <stddef.h>

#include "cfg.h"
#include "cli.h"
#include "rl.h"

struct cli_submit {
	const struct cfg *cfg;
	const char *sender; /* "" for the null sender */
	char *const *rcpt;  /* addresses already checked by smtp_path_parse */
	size_t nrcpt;
	const struct rl_buf *msg; /* the whole message, CRLF lines */
	int eightbit, smtputf8;
};

/*
 * Returns CLI_EX_OK once the relay said 250 to the end of data (the
 * message is on its disk), else prints one line on stderr and returns
 * CLI_EX_UNAVAILABLE for a permanent refusal or CLI_EX_TEMPFAIL.
 */
int cli_submit_smtp(const struct cli_submit *s);

#endif
