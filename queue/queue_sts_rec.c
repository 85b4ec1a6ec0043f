/*
 * queue_sts_rec: the MTA-STS cache record and its key (format in
 * queue_int.h).
 *
 * Pure code: no LMDB, no I/O, no globals, no allocation in the decoder.  A
 * record read back from disk may have been damaged by a crash, an operator
 * or another program version, so the decoder takes it as untrusted bytes:
 * every length is checked against its limit and against what remains, in
 * one straight line of checks, and only a record that encode could have
 * produced is accepted.
 */
#include "queue_int.h"

#include <errno.h>
#include <string.h>

/* RFC 1035 section 2.3.4: a label is at most 63 octets. */
#define STS_LABEL_MAX 63

static int id_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 8461 3.1: sts-id = 1*32(ALPHA / DIGIT). */
static int id_valid(const char *id, size_t len)
{
	if (len == 0 || len > QUEUE_STS_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!id_char((unsigned char)id[i]))
			return 0;
	return 1;
}

static int times_valid(int64_t fetched, int64_t expires)
{
	return fetched >= 0 && expires >= fetched;
}

static uint64_t le_get(const unsigned char *p, size_t width)
{
	uint64_t v = 0;

	while (width--)
		v = v << 8 | p[width];
	return v;
}

static int64_t le_get_i64(const unsigned char *p)
{
	uint64_t u = le_get(p, 8);
	int64_t v;

	/* Converting values above INT64_MAX to signed is implementation-
	 * defined in C11; memcpy keeps the two's complement bits. */
	memcpy(&v, &u, sizeof(v));
	return v;
}

static void le_put(unsigned char *p, uint64_t v, size_t width)
{
	for (size_t i = 0; i < width; i++, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

int queue_sts_rec_decode(const void *p, size_t n, struct queue_sts *out)
{
	const unsigned char *b = p;
	size_t idlen, off, blen;

	memset(out, 0, sizeof(*out));
	if (n < QUEUE_STS_REC_HEAD || b[0] == 0)
		return RL_EPARSE;
	if (b[0] > QUEUE_STS_REC_VERSION)
		return RL_EVERSION;
	idlen = b[1];
	if (idlen == 0 || idlen > QUEUE_STS_ID_MAX)
		return RL_EPARSE;
	/* The rest has a fixed size once the id length is known. */
	off = QUEUE_STS_REC_HEAD + idlen;
	if (n - QUEUE_STS_REC_HEAD < idlen + 8 + 8 + 4)
		return RL_EPARSE;
	if (!id_valid((const char *)b + QUEUE_STS_REC_HEAD, idlen))
		return RL_EPARSE;
	blen = (size_t)le_get(b + off + 16, 4);
	if (blen > QUEUE_STS_BODY_MAX || n - (off + 20) != blen)
		return RL_EPARSE; /* short, or bytes after the body */
	if (!times_valid(le_get_i64(b + off), le_get_i64(b + off + 8)))
		return RL_EPARSE;
	memcpy(out->id, b + QUEUE_STS_REC_HEAD, idlen);
	out->id[idlen] = '\0';
	out->fetched = le_get_i64(b + off);
	out->expires = le_get_i64(b + off + 8);
	out->body = (const char *)b + off + 20;
	out->len = blen;
	return 0;
}

int queue_sts_rec_encode(const struct queue_sts *s, struct rl_buf *out)
{
	size_t idlen = strnlen(s->id, sizeof(s->id));
	unsigned char head[QUEUE_STS_REC_HEAD + QUEUE_STS_ID_MAX + 8 + 8 + 4];
	size_t hlen = QUEUE_STS_REC_HEAD + idlen + 20, start = out->len;
	uint64_t u;
	int rc;

	RL_REQUIRE(s->body != NULL || s->len == 0);
	if (!id_valid(s->id, idlen) || !times_valid(s->fetched, s->expires))
		return -EINVAL;
	if (s->len > QUEUE_STS_BODY_MAX)
		return RL_ETOOBIG;
	head[0] = QUEUE_STS_REC_VERSION;
	head[1] = (unsigned char)idlen;
	memcpy(head + QUEUE_STS_REC_HEAD, s->id, idlen);
	memcpy(&u, &s->fetched, sizeof(u));
	le_put(head + QUEUE_STS_REC_HEAD + idlen, u, 8);
	memcpy(&u, &s->expires, sizeof(u));
	le_put(head + QUEUE_STS_REC_HEAD + idlen + 8, u, 8);
	le_put(head + QUEUE_STS_REC_HEAD + idlen + 16, s->len, 4);
	rc = rl_buf_append(out, head, hlen);
	if (rc == 0 && s->len > 0)
		rc = rl_buf_append(out, s->body, s->len);
	if (rc < 0) {
		/* Undo the partial append; rl_buf keeps data NUL-terminated. */
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return rc;
}

static int host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Copy a domain of dlen octets (no final dot) to out in lower case, checked. */
static int key_copy(const char *domain, size_t dlen, char *out)
{
	size_t label = 0;

	for (size_t i = 0; i < dlen; i++) {
		unsigned char c = (unsigned char)domain[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c == '.' && label == 0)
			return -EINVAL; /* empty label: ".a", "a..b" */
		if (c == '.')
			label = 0;
		else if (!host_char(c) || ++label > STS_LABEL_MAX)
			return -EINVAL;
		out[i] = (char)c;
	}
	if (label == 0)
		return -EINVAL; /* "a.." */
	out[dlen] = '\0';
	return 0;
}

int queue_sts_key(const char *domain, size_t dlen, char *out, size_t *len)
{
	int rc;

	*len = 0;
	/* "example.com." and "example.com" are one domain. */
	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	rc = dlen == 0 || dlen > QUEUE_STS_DOMAIN_MAX ? -EINVAL : key_copy(domain, dlen, out);
	if (rc < 0) {
		out[0] = '\0';
		return rc;
	}
	*len = dlen;
	return 0;
}
