/*
 * dane_parse: one TLSA record's rdata (RFC 6698 section 2.1) into a struct
 * dane_tlsa, whether SMTP may use it (RFC 7672 section 3.1.3), and its text
 * form for reasons.  Pure: no I/O, no logging, no globals, no allocation.
 */
#include <stdio.h>
#include <string.h>

#include "dane.h"

/* RFC 6698 2.1: three octets (usage, selector, matching type), then data. */
#define TLSA_HEAD 3

/* RFC 6698 2.1.3 digest sizes; 0 means "not a digest we know". */
static size_t digest_len(unsigned mtype)
{
	switch (mtype) {
	case DANE_MATCH_SHA256:
		return 32;
	case DANE_MATCH_SHA512:
		return 64;
	default:
		return 0;
	}
}

static int refuse(struct dane_tlsa *out, struct rl_why *why, int code, const char *reason,
		  size_t off)
{
	out->usage = out->selector = out->mtype = 0;
	out->len = 0;
	out->data = NULL;
	return rl_fail(why, code, reason, off);
}

/*
 * Straight-line: each check refuses, and only the end fills *out.  Unknown
 * usages, selectors and matching types are not errors (RFC 7672 section
 * 3.1.3 has them ignored as unusable, so they must not spoil the RRset); but a
 * known digest type with the wrong length can never match anything, and
 * saying so at parse time names the broken record in the reason.
 */
int dane_tlsa_parse(const unsigned char *rdata, size_t len, struct dane_tlsa *out,
		    struct rl_why *why)
{
	size_t dlen, want;

	if (len < TLSA_HEAD + 1)
		return refuse(out, why, RL_EPARSE,
			      "TLSA rdata shorter than 4 octets (no association data)", len);
	dlen = len - TLSA_HEAD;
	want = digest_len(rdata[2]);
	if (rdata[2] == DANE_MATCH_SHA256 && dlen != want)
		return refuse(out, why, RL_EPARSE, "TLSA SHA-256 digest is not 32 octets",
			      TLSA_HEAD);
	if (rdata[2] == DANE_MATCH_SHA512 && dlen != want)
		return refuse(out, why, RL_EPARSE, "TLSA SHA-512 digest is not 64 octets",
			      TLSA_HEAD);
	/* Longer records are refused, never cut: the bound is what callers store. */
	if (dlen > DANE_DATA_MAX)
		return refuse(out, why, RL_ETOOBIG, "TLSA association data over 4096 octets",
			      TLSA_HEAD + DANE_DATA_MAX);
	out->usage = rdata[0];
	out->selector = rdata[1];
	out->mtype = rdata[2];
	out->len = dlen;
	out->data = rdata + TLSA_HEAD;
	return 0;
}

/*
 * RFC 7672 3.1.3: PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP (there is
 * no agreed set of public CAs for MX hosts).  The length is checked again
 * so that a record built by hand, not by dane_tlsa_parse(), can never make
 * a matcher compare a digest of the wrong size: such a record is unusable.
 */
int dane_tlsa_usable(const struct dane_tlsa *t)
{
	size_t want;

	RL_REQUIRE(t->len <= DANE_DATA_MAX);
	if (t->usage != DANE_TA && t->usage != DANE_EE)
		return 0;
	if (t->selector != DANE_SEL_CERT && t->selector != DANE_SEL_SPKI)
		return 0;
	if (t->mtype != DANE_MATCH_FULL && t->mtype != DANE_MATCH_SHA256 &&
	    t->mtype != DANE_MATCH_SHA512)
		return 0;
	want = digest_len(t->mtype);
	if (t->len == 0 || (want != 0 && t->len != want))
		return 0;
	return 1;
}

/*
 * "U S M HEX": upper-case hex of whole octets.  When the data does not fit,
 * as many octets as leave room for "..." are written, then "..." (or as much
 * of it as fits), so a cut reason never looks like a complete digest.
 * Always NUL-terminated within size (nothing is written when size is 0).
 */
void dane_tlsa_text(const struct dane_tlsa *t, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t pos, avail, n;
	int w;

	RL_REQUIRE(t->len <= DANE_DATA_MAX);
	if (size == 0)
		return;
	w = snprintf(out, size, t->len ? "%u %u %u " : "%u %u %u", t->usage, t->selector, t->mtype);
	if (w < 0) {
		out[0] = '\0';
		return;
	}
	if ((size_t)w >= size)
		return; /* snprintf cut the head and terminated it */
	pos = (size_t)w;
	avail = size - 1 - pos;
	n = t->len;
	if (n * 2 > avail)
		n = avail > 3 ? (avail - 3) / 2 : 0;
	for (size_t i = 0; i < n; i++) {
		out[pos++] = hex[t->data[i] >> 4];
		out[pos++] = hex[t->data[i] & 0x0f];
	}
	for (size_t i = 0; n < t->len && i < 3 && pos < size - 1; i++)
		out[pos++] = '.';
	out[pos] = '\0';
}
