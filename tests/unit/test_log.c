/*
 * test_log: every log_msg() call writes exactly one line, whatever its
 * arguments hold (relay/log.c replaces CR, LF and other control octets);
 * with stderr the journal (JOURNAL_STREAM), each line starts with "<N>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/*
 * Log one line at each level with stderr sent to a file and JOURNAL_STREAM
 * set to env; "SELF" stands for that file's "dev:ino", "SELFX" for the same
 * with an "x" after it, "OTHER" for another file's, NULL for unset.
 * Returns the lines written.
 */
static const char *captured_journal(const char *env)
{
	static char buf[4096];
	char self[64], selfx[72], other[64];
	FILE *f = tmpfile(), *g = tmpfile();
	int saved = dup(2);
	struct stat st;
	size_t n;

	buf[0] = '\0';
	if (!f || !g || saved < 0 || fstat(fileno(f), &st) < 0)
		return "";
	snprintf(self, sizeof(self), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	snprintf(selfx, sizeof(selfx), "%sx", self);
	if (fstat(fileno(g), &st) < 0)
		return "";
	snprintf(other, sizeof(other), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	if (env && strcmp(env, "SELF") == 0)
		env = self;
	else if (env && strcmp(env, "SELFX") == 0)
		env = selfx;
	else if (env && strcmp(env, "OTHER") == 0)
		env = other;
	if (env)
		setenv("JOURNAL_STREAM", env, 1);
	else
		unsetenv("JOURNAL_STREAM");
	fflush(stderr);
	dup2(fileno(f), 2);
	log_init("test", "host.test", LOG_DEBUG);
	log_err("e");
	log_warn("w");
	log_info("i");
	log_debug("d");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	unsetenv("JOURNAL_STREAM");
	log_init("test", "host.test", LOG_INFO);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	fclose(g);
	return buf;
}

/* Prefixes only when JOURNAL_STREAM names stderr itself, exactly. */
static void test_journal(void)
{
	static const char *const plain[] = { "OTHER", "SELFX", "", "12", "12:", ":34", "1:2",
					     "x:y", "-1:-1" };
	const char *out = captured_journal("SELF");
	const char *want[] = { "<3>", "<4>", "<6>", "<7>" };
	const char *line = out;

	for (size_t i = 0; i < 4; i++) {
		CHECK(strncmp(line, want[i], 3) == 0 && line[3] >= 'A' && line[3] <= 'Z',
		      "journal line %zu: got \"%.40s\" want start %s", i, line, want[i]);
		line = strchr(line, '\n');
		if (!line)
			break;
		line++;
	}
	CHECK(strstr(out, "tlsrelay/test[") && strstr(out, ": warning: w\n"), "journal: %s", out);
	out = captured_journal(NULL);
	CHECK(strchr(out, '<') == NULL && strstr(out, ": error: e\n"), "unset: %s", out);
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		out = captured_journal(plain[i]);
		CHECK(out[0] != '\0' && strchr(out, '<') == NULL, "JOURNAL_STREAM=\"%s\": %s",
		      plain[i], out);
	}
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
	test_journal();
	return TEST_DONE();
}
