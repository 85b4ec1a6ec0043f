/*
 * rl: the dependency-free base shared by every module of tlsrelay.
 *
 * Status codes: functions that can fail return int, 0 on success and a
 * negative code otherwise.  A code is either a negated errno value or one of
 * the project codes of RL_ERRORS below; rl_strerror() names both.
 *
 * Bounded buffers: struct rl_buf grows on demand up to a limit fixed at
 * rl_buf_init(); an append past the limit fails with RL_ETOOBIG and leaves the
 * buffer unchanged.  A buffer owns its memory; rl_buf_fini() releases it and
 * rl_buf_take() hands it to the caller.  A buffer marked secret
 * (rl_buf_set_secret()) may hold passwords: no byte of it is left behind
 * in memory it no longer uses (see there).
 *
 * The line splitter (struct rl_lines) belongs to the bounded-buffer code: it
 * walks the lines of a text buffer as slices of it, refusing lines longer
 * than a fixed limit and control characters, so the configuration and
 * policy parsers share one set of line rules.
 *
 * Nothing here keeps global state, and nothing does I/O except
 * rl_buf_read_file(), which fills a bounded buffer from a file.  Every
 * function is safe on any thread as long as one object is not shared
 * between threads.
 */
#ifndef RL_H
#define RL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define RL_WUR __attribute__((warn_unused_result))
#define RL_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Project status codes, below every errno value. */
#define RL_ERRORS(X)                                                        \
	X(RL_EPARSE, -10001, "malformed input")                             \
	X(RL_ETOOBIG, -10002, "size limit exceeded")                        \
	X(RL_ENOTFOUND, -10003, "not found")                                \
	X(RL_EQFULL, -10004, "queue storage is full")                       \
	X(RL_EQUEUE, -10005, "queue storage error")                         \
	X(RL_ECONFIG, -10006, "invalid configuration")                      \
	X(RL_ETLSREQ, -10007, "TLS is required but not available")         \
	X(RL_EPOLICY, -10008, "TLS policy not satisfied")                   \
	X(RL_ETLS, -10009, "TLS failure")                                   \
	X(RL_EPROTO, -10010, "protocol violation")                          \
	X(RL_ETIMEDOUT, -10011, "timed out")                                \
	X(RL_EVERSION, -10012, "unsupported record version")

enum rl_status {
	RL_OK = 0,
#define RL_X_ENUM(name, value, text) name = value,
	RL_ERRORS(RL_X_ENUM)
#undef RL_X_ENUM
};

/* Text for a status code (project code or negated errno); never NULL. */
const char *rl_strerror(int code);

/*
 * Why a parser or validator refused its input.  reason is a static string
 * (never freed); offset is the byte offset in the input where it gave up.
 */
struct rl_why {
	int code;
	const char *reason;
	size_t offset;
};

/* Fill *why (if not NULL) and return code; for "return rl_fail(...)". */
int rl_fail(struct rl_why *why, int code, const char *reason, size_t offset);

/* An invariant that must hold whatever any peer sends; aborts if false. */
#define RL_REQUIRE(cond)                                                    \
	((cond) ? (void)0 : rl_require_failed(#cond, __FILE__, __LINE__))
_Noreturn void rl_require_failed(const char *cond, const char *file, int line);

struct rl_buf {
	char *data;   /* NUL-terminated when len > 0 or after any append */
	size_t len;   /* bytes in use, excluding the terminating NUL */
	size_t cap;   /* bytes allocated */
	size_t limit; /* most bytes len may ever reach */
	int secret;   /* wipe what it leaves behind (rl_buf_set_secret) */
};

void rl_buf_init(struct rl_buf *b, size_t limit);
void rl_buf_fini(struct rl_buf *b);
/*
 * Mark b as holding secrets (an input buffer that may carry AUTH data).
 * From then on it leaves no copy of its bytes behind: growing it moves the
 * bytes by malloc + copy + wipe + free (never realloc, which may leave the
 * old block unwiped in the heap); rl_buf_consume() wipes the tail its shift
 * vacates; rl_buf_reset() and rl_buf_fini() wipe what was in use.  The cost
 * is a wipe of the bytes dropped, so it stays off for other buffers.
 */
void rl_buf_set_secret(struct rl_buf *b);
/* Forget the contents but keep the allocation. */
void rl_buf_reset(struct rl_buf *b);
/* Append n bytes; RL_ETOOBIG past the limit, -ENOMEM when out of memory. */
int rl_buf_append(struct rl_buf *b, const void *p, size_t n) RL_WUR;
int rl_buf_puts(struct rl_buf *b, const char *s) RL_WUR;
int rl_buf_printf(struct rl_buf *b, const char *fmt, ...) RL_PRINTF(2, 3) RL_WUR;
int rl_buf_vprintf(struct rl_buf *b, const char *fmt, va_list ap) RL_PRINTF(2, 0) RL_WUR;
/*
 * Room for at least want more bytes at the end (within the limit): returns
 * a pointer to it and sets *avail, or NULL (limit reached or no memory).
 * Bytes written there count once rl_buf_commit() says so.
 */
char *rl_buf_space(struct rl_buf *b, size_t want, size_t *avail);
void rl_buf_commit(struct rl_buf *b, size_t n);
/* Drop the first n bytes (n <= len); a secret buffer wipes the vacated tail. */
void rl_buf_consume(struct rl_buf *b, size_t n);
/* Hand the memory to the caller (free() it); the buffer is left empty. */
char *rl_buf_take(struct rl_buf *b, size_t *len);

/*
 * Append the whole file at path to b, at most max bytes of it.  The file is
 * opened without blocking and must be a regular file: a FIFO (which would
 * hang the reader until a writer came), a device (which could feed it
 * without end), a directory or a socket is refused.  Returns 0; or, with
 * why (optional) filled and b holding what was read so far:
 *   -errno       "cannot open file" / "cannot read file" (-ENOENT: missing);
 *   RL_ECONFIG   "not a regular file (a FIFO)", "(a character device)", ...;
 *   RL_ETOOBIG   "file too large": the file holds more than max bytes, or
 *                b's own limit was reached; b holds the first bytes only;
 *   -ENOMEM      "out of memory".
 * Blocks on disk I/O: run it off the event loop where that matters.
 */
int rl_buf_read_file(struct rl_buf *b, const char *path, size_t max, struct rl_why *why) RL_WUR;

/*
 * The physical lines of a text buffer, in order.  The text is borrowed and
 * must outlive the iterator; nothing is copied or allocated.
 */
struct rl_lines {
	const char *text;
	size_t len;
	size_t pos;    /* where the next line starts */
	size_t max;    /* longest line accepted, without its LF or CRLF */
	unsigned line; /* number of the line last returned, 1 for the first */
};

/* Start at the first line of len bytes of text (need not be NUL-terminated). */
void rl_lines_init(struct rl_lines *it, const char *text, size_t len, size_t max);

/*
 * The next physical line: *line points into the text and *n is its length
 * without the LF or CRLF that ends it (the last line need not end in LF).
 * Returns 1 for a line that passed the checks and 0 at the end of the text.
 * A line that fails them is still returned (*line, *n and it->line are
 * set, so the caller can report it and go on), with why (optional) filled:
 *   RL_ETOOBIG  "line too long": more than max bytes (offset: max);
 *   RL_EPARSE   "NUL character", or "control character" for any other byte
 *               below 0x20 but tab, or 0x7f (offset: the byte in the line).
 */
int rl_lines_next(struct rl_lines *it, const char **line, size_t *n, struct rl_why *why) RL_WUR;

/* Copy at most size-1 bytes of src into dst and terminate it; returns
 * strlen(src), so a result >= size means truncation. */
size_t rl_strlcpy(char *dst, const char *src, size_t size);

/* Wipe memory in a way the compiler may not elide (secrets). */
void rl_wipe(void *p, size_t n);

/*
 * A client network of mynetworks: family AF_INET or AF_INET6, the address
 * bytes (4 or 16 used) with the host bits clear, and the prefix length.
 */
struct rl_net {
	int family;
	unsigned char addr[16];
	unsigned prefix;
};

struct sockaddr;

/* Do the first bits bits of a and b agree? */
int rl_prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits);

/*
 * Is addr (sockaddr_in or sockaddr_in6) in one of the n networks?  An
 * IPv4-mapped IPv6 address (a dual-stack listener's view of an IPv4
 * client) is matched as the IPv4 address it carries.  Pure.
 */
int rl_net_match(const struct rl_net *nets, size_t n, const struct sockaddr *addr);

#endif
