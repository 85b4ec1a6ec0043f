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
 * rl_buf_take() hands it to the caller.
 *
 * Nothing here does I/O or keeps global state; every function is safe on any
 * thread as long as one object is not shared between threads.
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
};

void rl_buf_init(struct rl_buf *b, size_t limit);
void rl_buf_fini(struct rl_buf *b);
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
/* Drop the first n bytes (n <= len). */
void rl_buf_consume(struct rl_buf *b, size_t n);
/* Hand the memory to the caller (free() it); the buffer is left empty. */
char *rl_buf_take(struct rl_buf *b, size_t *len);

/* Copy at most size-1 bytes of src into dst and terminate it; returns
 * strlen(src), so a result >= size means truncation. */
size_t rl_strlcpy(char *dst, const char *src, size_t size);

/* Wipe memory in a way the compiler may not elide (secrets). */
void rl_wipe(void *p, size_t n);

#endif
