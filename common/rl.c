/*
 * rl: status codes, bounded buffers and small string helpers.
 */
#include "rl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rl_strerror(int code)
{
	switch (code) {
	case RL_OK:
		return "success";
#define RL_X_CASE(name, value, text)                                        \
	case name:                                                          \
		return text;
		RL_ERRORS(RL_X_CASE)
#undef RL_X_CASE
	default:
		break;
	}
	if (code < 0 && code > -4096)
		return strerror(-code);
	return "unknown error";
}

int rl_fail(struct rl_why *why, int code, const char *reason, size_t offset)
{
	if (why) {
		why->code = code;
		why->reason = reason;
		why->offset = offset;
	}
	return code;
}

_Noreturn void rl_require_failed(const char *cond, const char *file, int line)
{
	fprintf(stderr, "fatal: invariant broken at %s:%d: %s\n", file, line, cond);
	abort();
}

void rl_buf_init(struct rl_buf *b, size_t limit)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->limit = limit;
	b->secret = 0;
}

void rl_buf_set_secret(struct rl_buf *b)
{
	b->secret = 1;
}

void rl_buf_fini(struct rl_buf *b)
{
	if (b->secret && b->data)
		rl_wipe(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void rl_buf_reset(struct rl_buf *b)
{
	if (b->secret && b->data)
		rl_wipe(b->data, b->len);
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int rl_buf_reserve(struct rl_buf *b, size_t n)
{
	size_t want, cap;
	char *p;

	if (n > b->limit || b->len > b->limit - n)
		return RL_ETOOBIG;
	want = b->len + n + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	if (b->secret) {
		/* realloc() may move the bytes and leave the old block unwiped. */
		p = malloc(cap);
		if (!p)
			return -ENOMEM;
		if (b->data) {
			memcpy(p, b->data, b->len + 1);
			rl_wipe(b->data, b->cap);
			free(b->data);
		}
	} else {
		p = realloc(b->data, cap);
		if (!p)
			return -ENOMEM;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int rl_buf_append(struct rl_buf *b, const void *p, size_t n)
{
	int rc = rl_buf_reserve(b, n);

	if (rc < 0)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int rl_buf_puts(struct rl_buf *b, const char *s)
{
	return rl_buf_append(b, s, strlen(s));
}

int rl_buf_vprintf(struct rl_buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n, rc;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return -EINVAL;
	rc = rl_buf_reserve(b, (size_t)n);
	if (rc < 0)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int rl_buf_printf(struct rl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = rl_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

char *rl_buf_space(struct rl_buf *b, size_t want, size_t *avail)
{
	size_t room = b->limit - b->len;

	if (room == 0)
		return NULL;
	if (want > room)
		want = room;
	if (rl_buf_reserve(b, want) < 0)
		return NULL;
	/* Offer all the room already allocated, keeping one byte for the NUL. */
	*avail = b->cap - b->len - 1 < room ? b->cap - b->len - 1 : room;
	return b->data + b->len;
}

void rl_buf_commit(struct rl_buf *b, size_t n)
{
	RL_REQUIRE(b->len + n < b->cap && b->len + n <= b->limit);
	b->len += n;
	b->data[b->len] = '\0';
}

void rl_buf_consume(struct rl_buf *b, size_t n)
{
	RL_REQUIRE(n <= b->len);
	if (n == 0)
		return;
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	/* The shift leaves a copy of the last n bytes past the new end. */
	if (b->secret)
		rl_wipe(b->data + b->len, n);
	b->data[b->len] = '\0';
}

char *rl_buf_take(struct rl_buf *b, size_t *len)
{
	char *p = b->data;

	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

size_t rl_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size) {
		size_t k = n < size - 1 ? n : size - 1;
		memcpy(dst, src, k);
		dst[k] = '\0';
	}
	return n;
}

void rl_wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;

	while (n--)
		*v++ = 0;
}
