/*
 * fuzz_dane_parse: libFuzzer target for the TLSA rdata parser, the SMTP
 * usability test and the text form (policy/dane_parse.c).
 *
 * Besides memory errors, it aborts when a promise of dane.h breaks: a parsed
 * record holds exactly the input's data (never more than DANE_DATA_MAX), a
 * digest has its type's length, a refusal names its reason and leaves no
 * data, only 2/3, 0/1, 0/1/2 are usable, and the text is NUL-terminated
 * within its size and never written past it.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dane.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The refusal must be the one dane.h promises for this input. */
static void check_refused(const uint8_t *data, size_t size, int rc, const struct dane_tlsa *t,
			  const struct rl_why *why)
{
	RL_REQUIRE(rc == RL_EPARSE || rc == RL_ETOOBIG);
	RL_REQUIRE(why->code == rc && why->reason != NULL && why->offset <= size);
	RL_REQUIRE(t->len == 0);
	if (rc == RL_ETOOBIG)
		RL_REQUIRE(size >= 4 && size - 3 > DANE_DATA_MAX);
	else
		RL_REQUIRE(size < 4 || (data[2] == DANE_MATCH_SHA256 && size - 3 != 32) ||
			   (data[2] == DANE_MATCH_SHA512 && size - 3 != 64));
}

static void check_parsed(const uint8_t *data, size_t size, const struct dane_tlsa *t)
{
	int allowed;

	RL_REQUIRE(size >= 4 && t->len == size - 3);
	RL_REQUIRE(t->len >= 1 && t->len <= DANE_DATA_MAX);
	RL_REQUIRE(t->usage == data[0] && t->selector == data[1] && t->mtype == data[2]);
	RL_REQUIRE(memcmp(t->data, data + 3, t->len) == 0);
	if (t->mtype == DANE_MATCH_SHA256)
		RL_REQUIRE(t->len == 32);
	if (t->mtype == DANE_MATCH_SHA512)
		RL_REQUIRE(t->len == 64);
	allowed = (t->usage == 2 || t->usage == 3) && t->selector <= 1 && t->mtype <= 2;
	RL_REQUIRE(dane_tlsa_usable(t) == allowed);
}

/* The whole text, built here independently: "U S M" then " HEX" if any data. */
static size_t want_text(const struct dane_tlsa *t, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	int w = snprintf(out, size, "%u %u %u", t->usage, t->selector, t->mtype);
	size_t pos;

	RL_REQUIRE(w > 0 && (size_t)w + 1 + 2 * t->len < size);
	pos = (size_t)w;
	if (t->len)
		out[pos++] = ' ';
	for (size_t i = 0; i < t->len; i++) {
		out[pos++] = hex[t->data[i] >> 4];
		out[pos++] = hex[t->data[i] & 0x0f];
	}
	out[pos] = '\0';
	return pos;
}

/*
 * Every small size, every size near the whole text and a sample between,
 * with a canary after each: NUL-terminated within size, nothing written
 * past it, and a cut text is a prefix of the whole one plus at most "...".
 */
static void check_text(const struct dane_tlsa *t)
{
	static char out[16 + 2 * DANE_DATA_MAX + 8];
	static char want[sizeof(out)];
	size_t wlen = want_text(t, want, sizeof(want)), olen, keep;

	for (size_t size = 0; size <= wlen + 2; size++) {
		if (size >= 40 && size + 4 < wlen && size % 97 != 0)
			continue;
		memset(out, '#', sizeof(out));
		dane_tlsa_text(t, out, size);
		RL_REQUIRE(out[size] == '#');
		if (size == 0)
			continue;
		RL_REQUIRE(memchr(out, '\0', size) != NULL);
		olen = strlen(out);
		if (size > wlen) {
			RL_REQUIRE(strcmp(out, want) == 0);
			continue;
		}
		for (keep = olen; keep > 0 && olen - keep < 3 && out[keep - 1] == '.'; keep--)
			;
		RL_REQUIRE(olen < size && memcmp(out, want, keep) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dane_tlsa t;
	struct rl_why why = {0, NULL, 0};
	int rc;

	memset(&t, 0x5a, sizeof(t));
	rc = dane_tlsa_parse(data, size, &t, &why);
	if (rc != 0) {
		check_refused(data, size, rc, &t, &why);
		return 0;
	}
	check_parsed(data, size, &t);
	check_text(&t);
	return 0;
}
