/*
 * log: Postfix-like log lines on stderr, one line per event.
 *
 * Format: "Mmm dd hh:mm:ss HOST tlsrelay/PROGRAM[PID]: [severity: ]text".
 * Info lines carry no severity word, as in Postfix; warnings, errors and
 * fatal errors start with "warning: ", "error: ", "fatal: ".  Only relay/
 * logs.  Peer text must go through log_sanitize() first.  Loop thread only.
 * Whatever the arguments hold, a call writes exactly one line: log_msg()
 * replaces CR, LF and every other control octet of the text with '?'.
 * When stderr is the systemd journal (JOURNAL_STREAM names its device and
 * inode, checked by log_init()), each line starts with its syslog priority:
 * "<3>" errors, "<4>" warnings, "<6>" info, "<7>" debug; else no prefix.
 */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>

#include "rl.h"

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/*
 * Set the program part ("smtpd", "sendmail", ...), host name and level, and
 * look whether stderr is the journal (JOURNAL_STREAM against fstat(2)).
 */
void log_init(const char *program, const char *hostname, int level);
void log_set_level(int level);
int log_enabled(int level);

void log_msg(int level, const char *fmt, ...) RL_PRINTF(2, 3);
#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                      \
	do {                                                                \
		if (log_enabled(LOG_DEBUG))                                 \
			log_msg(LOG_DEBUG, __VA_ARGS__);                    \
	} while (0)

/*
 * Copy untrusted text into out (size bytes) with non-printable octets
 * replaced by '?', capped at about 200 bytes (with "..." when cut).
 * Returns out.
 */
char *log_sanitize(char *out, size_t size, const char *p, size_t n);

#endif
