/*
 * test_log: every log_msg() call writes exactly one line, whatever its
 * arguments hold (relay/log.c replaces CR, LF and other control octets).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

/* Run one log call with stderr sent to a file; return what it wrote. */
static const char *captured(const char *arg)
{
	static char buf[4096];
	FILE *f = tmpfile();
	int saved = dup(2);
	size_t n;

	if (!f || saved < 0)
		return "";
	fflush(stderr);
	dup2(fileno(f), 2);
	log_info("X1: to=<%s>, status=deferred", arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

int main(void)
{
	static const struct {
		const char *arg;
		const char *want; /* the end of the line */
	} cases[] = {
		{ "a@b.test", "X1: to=<a@b.test>, status=deferred\n" },
		{ "a@src>\r\nRCPT TO:<x@evil",
		  "X1: to=<a@src>??RCPT TO:<x@evil>, status=deferred\n" },
		{ "a\n" "Dec  6 18:00:00 host tlsrelay/smtpd[1]: forged",
		  "X1: to=<a?Dec  6 18:00:00 host tlsrelay/smtpd[1]: forged>, status=deferred\n" },
		{ "t\tab\x1b[2J\x7f", "X1: to=<t?ab?[2J?>, status=deferred\n" },
		{ "j\xc3\xb6@b.test", "X1: to=<j\xc3\xb6@b.test>, status=deferred\n" },
	};

	log_init("test", "host.test", LOG_INFO);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *out = captured(cases[i].arg);
		size_t lines = 0, n = strlen(out), w = strlen(cases[i].want);

		for (size_t k = 0; k < n; k++)
			lines += out[k] == '\n';
		CHECK(lines == 1, "case %zu: %zu lines: %s", i, lines, out);
		CHECK(n >= w && strcmp(out + n - w, cases[i].want) == 0,
		      "case %zu: got \"%s\" want end \"%s\"", i, out, cases[i].want);
		CHECK(strstr(out, " host.test tlsrelay/test[") != NULL, "case %zu: prefix: %s", i,
		      out);
	}
	return TEST_DONE();
}
