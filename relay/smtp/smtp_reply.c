/*
 * smtp_reply: which reply codes each step of an SMTP client's dialogue may
 * get (RFC 5321 section 4.3.2), as one table.
 *
 * Why a table: a hostile or broken server must never turn a refusal or an
 * unfinished transaction into "delivered".  A 354 after the end of data
 * once made the relay log status=sent and delete the message, and a 354 to
 * RCPT counted as an accepted recipient, because the client read every
 * code below 400 as success.  Here each step names its one success code
 * (two for RCPT); 4xx and 5xx are the server's refusal, which the caller
 * handles as before; anything else (another 2xx, any 3xx but 354 to DATA,
 * 1xx) is a protocol error that ends the session.
 */
#include "smtp.h"

static const struct {
	const char *name; /* for reasons: unexpected reply "..." NAME */
	int ok[2];        /* the codes that mean success; 0 ends the list */
} smtp_steps[SMTP_STEP_COUNT] = {
	[SMTP_STEP_GREETING] = { "as the initial greeting", { 220 } },
	[SMTP_STEP_EHLO] = { "to EHLO", { 250 } },
	[SMTP_STEP_HELO] = { "to HELO", { 250 } },
	[SMTP_STEP_STARTTLS] = { "to STARTTLS", { 220 } },
	[SMTP_STEP_MAIL] = { "to MAIL FROM", { 250 } },
	[SMTP_STEP_RCPT] = { "to RCPT TO", { 250, 251 } },
	[SMTP_STEP_DATA] = { "to DATA", { 354 } },
	[SMTP_STEP_DOT] = { "to end of data", { 250 } },
	[SMTP_STEP_RSET] = { "to RSET", { 250 } },
	[SMTP_STEP_QUIT] = { "to QUIT", { 221 } },
};

int smtp_reply_verdict(int step, int code)
{
	RL_REQUIRE(step >= 0 && step < SMTP_STEP_COUNT);
	for (size_t i = 0; i < 2 && smtp_steps[step].ok[i]; i++) {
		if (code == smtp_steps[step].ok[i])
			return SMTP_VERDICT_OK;
	}
	/* Every step may be refused, temporarily or for good (4.2.1). */
	if (code >= 400 && code <= 599)
		return SMTP_VERDICT_REFUSED;
	return SMTP_VERDICT_PROTO;
}

const char *smtp_step_name(int step)
{
	RL_REQUIRE(step >= 0 && step < SMTP_STEP_COUNT);
	return smtp_steps[step].name;
}
