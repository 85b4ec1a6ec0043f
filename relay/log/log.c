/*
 * log: Postfix-style lines on stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static struct {
	char program[32];
	char host[256];
	int level;
	int journal; /* stderr is the journal: lines start with "<N>" */
} log_state = { "tlsrelay", "localhost", LOG_INFO, 0 };

/* One decimal number of JOURNAL_STREAM, ended by stop; 0 or -EINVAL. */
static int log_journal_number(const char *p, char **end, char stop, unsigned long long *out)
{
	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(p, end, 10);
	if (errno != 0 || **end != stop)
		return -EINVAL;
	return 0;
}

/*
 * systemd sets JOURNAL_STREAM to "DEVICE:INODE" (decimal) of the stream it
 * connected to stdout and stderr.  The variable is inherited by whatever
 * the service starts, so it counts only when it names the stderr we
 * have: a redirected stderr (a file, a pipe) keeps the plain lines.
 */
static int log_journal_detect(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (!env || log_journal_number(env, &end, ':', &dev) < 0 ||
	    log_journal_number(end + 1, &end, '\0', &ino) < 0 || fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *program, const char *hostname, int level)
{
	snprintf(log_state.program, sizeof(log_state.program), "%s", program);
	snprintf(log_state.host, sizeof(log_state.host), "%s", hostname ? hostname : "localhost");
	log_state.level = level;
	log_state.journal = log_journal_detect();
}

void log_set_level(int level)
{
	log_state.level = level;
}

int log_enabled(int level)
{
	return level <= log_state.level;
}

/*
 * The one choke point for every line: an address, reason or reply text
 * that carries CR, LF or another control octet must not forge a second
 * log line or hide the end of this one, whatever the caller forgot.
 * Octets >= 0x80 stay (UTF-8 addresses); 0x7f and below 0x20 become '?'.
 */
static void log_flatten(char *line)
{
	for (unsigned char *p = (unsigned char *)line; *p; p++) {
		if (*p < 32 || *p == 127)
			*p = '?';
	}
}

void log_msg(int level, const char *fmt, ...)
{
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	/* syslog priorities (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG), which
	 * journald reads off the start of a line (sd-daemon(3)). */
	static const char *const priority[] = { "<3>", "<4>", "<6>", "<7>" };
	char stamp[32], line[2048];
	struct tm tm;
	time_t now;
	va_list ap;
	int n;

	if (!log_enabled(level))
		return;
	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	log_flatten(line);
	/* One write per line keeps lines whole when several processes log. */
	fprintf(stderr, "%s%s %s tlsrelay/%s[%ld]: %s%s\n",
		log_state.journal ? priority[level] : "", stamp, log_state.host, log_state.program,
		(long)getpid(), prefix[level], line);
	fflush(stderr);
}

char *log_sanitize(char *out, size_t size, const char *p, size_t n)
{
	size_t cap = size - 1 < 200 ? size - 1 : 200, o = 0;

	for (size_t i = 0; i < n && o < cap; i++)
		out[o++] = (p[i] >= 32 && p[i] < 127) ? p[i] : '?';
	if (n > cap && cap >= 3)
		memcpy(out + cap - 3, "...", 3);
	out[o] = '\0';
	return out;
}
