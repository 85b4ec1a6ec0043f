/*
 * fuzz_txt: how the TXT record fuzz targets (fuzz_sts_txt, fuzz_tlsrpt_txt)
 * turn an input into a TXT RRset, and decode it again independently of the
 * parser, so the targets can check its answers against their own reading.
 *
 * Two input forms:
 * - text (any input not starting with 'W'): records separated by LF, each
 *   record's character-strings separated by '|' (strings over 255 octets
 *   are cut into several); so seeds are readable, e.g.
 *   "v=spf1 -all\nv=STSv1; id=abc".
 * - wire ('W' first): then records as a 2-octet big-endian length and that
 *   many octets of rdata, which need not be well-formed.
 * At most FUZZ_TXT_RECS records are used; the rest of the input is ignored.
 */
#ifndef FUZZ_TXT_H
#define FUZZ_TXT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sts.h"

#define FUZZ_TXT_RECS 8

struct fuzz_txt {
	size_t n;
	struct sts_txt rr[FUZZ_TXT_RECS];
	int valid[FUZZ_TXT_RECS];	 /* the rdata is a sequence of strings */
	const char *text[FUZZ_TXT_RECS]; /* its strings concatenated (when valid) */
	size_t tlen[FUZZ_TXT_RECS];
	unsigned char *mem;
};

/* Decode rdata into text (the harness's own reading of RFC 1035 3.3.14). */
static int fuzz_txt_decode(const unsigned char *p, size_t len, char *text, size_t *tlen)
{
	size_t pos = 0;

	*tlen = 0;
	if (len == 0)
		return 0;
	while (pos < len) {
		size_t l = p[pos++];

		if (l > len - pos)
			return 0;
		memcpy(text + *tlen, p + pos, l);
		*tlen += l;
		pos += l;
	}
	return 1;
}

/* Append text[0..len) to wire as strings of at most 255 octets (one empty string if len is 0). */
static size_t fuzz_txt_put(unsigned char *wire, const char *text, size_t len)
{
	size_t pos = 0;

	do {
		size_t s = len > 255 ? 255 : len;

		wire[pos++] = (unsigned char)s;
		memcpy(wire + pos, text, s);
		pos += s;
		text += s;
		len -= s;
	} while (len > 0);
	return pos;
}

static void fuzz_txt_split(const uint8_t *data, size_t size, struct fuzz_txt *t)
{
	unsigned char *wire;
	char *text;
	size_t pos = 0;

	memset(t, 0, sizeof(*t));
	t->mem = malloc(3 * size + 64);
	RL_REQUIRE(t->mem != NULL);
	wire = t->mem;
	text = (char *)t->mem + 2 * size + 32;
	if (size > 0 && data[0] == 'W') {
		for (pos = 1; pos < size && t->n < FUZZ_TXT_RECS; t->n++) {
			size_t l = pos + 1 < size ? (size_t)data[pos] << 8 | data[pos + 1] : 0;

			pos += 2;
			if (pos > size)
				pos = size;
			if (l > size - pos)
				l = size - pos;
			t->rr[t->n].rdata = data + pos;
			t->rr[t->n].len = l;
			pos += l;
		}
	} else {
		while (t->n < FUZZ_TXT_RECS && (pos < size || (size == 0 && t->n == 0))) {
			const uint8_t *nl = memchr(data + pos, '\n', size - pos);
			size_t end = nl ? (size_t)(nl - data) : size, start = 0;

			t->rr[t->n].rdata = wire;
			for (size_t i = pos; i <= end; i++) {
				if (i < end && data[i] != '|')
					continue;
				wire += fuzz_txt_put(wire, (const char *)data + pos + start,
						     i - pos - start);
				start = i - pos + 1;
			}
			t->rr[t->n].len = (size_t)(wire - t->rr[t->n].rdata);
			t->n++;
			pos = end + 1;
			if (size == 0)
				break;
		}
	}
	for (size_t i = 0; i < t->n; i++) {
		t->valid[i] = fuzz_txt_decode(t->rr[i].rdata, t->rr[i].len, text, &t->tlen[i]);
		t->text[i] = text;
		text += t->tlen[i];
	}
}

static void fuzz_txt_free(struct fuzz_txt *t)
{
	free(t->mem);
	t->mem = NULL;
}

/* Does record i begin with tag followed by ";", a blank or its end? */
static int fuzz_txt_tagged(const struct fuzz_txt *t, size_t i, const char *tag)
{
	size_t n = strlen(tag);

	if (!t->valid[i] || t->tlen[i] < n || memcmp(t->text[i], tag, n) != 0)
		return 0;
	return t->tlen[i] == n || t->text[i][n] == ';' || t->text[i][n] == ' ' ||
	       t->text[i][n] == '\t';
}

/* Is needle[0..n) somewhere in record i's text? */
static int fuzz_txt_contains(const struct fuzz_txt *t, size_t i, const char *needle, size_t n)
{
	for (size_t k = 0; k + n <= t->tlen[i]; k++)
		if (memcmp(t->text[i] + k, needle, n) == 0)
			return 1;
	return 0;
}

#endif
