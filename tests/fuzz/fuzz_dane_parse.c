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

/* Every size from 0 up to a little past the whole text, plus canaries. */
static void check_text(const struct dane_tlsa *t)
{
	static char out[16 + 2 * DANE_DATA_MAX + 8];
	static char full[sizeof(out)];
	size_t flen;

	dane_tlsa_text(t, full, sizeof(full));
	flen = strnlen(full, sizeof(full));
	RL_REQUIRE(flen < sizeof(full) && flen == strlen(full));
	RL_REQUIRE(flen >= 5 && (t->len == 0 || flen == 6 + 2 * t->len));
	for (size_t size = 0; size <= flen + 2; size += size < 40 ? 1 : 97) {
		memset(out, '#', sizeof(out));
		dane_tlsa_text(t, out, size);
		RL_REQUIRE(out[size] == '#');
		if (size == 0)
			continue;
		RL_REQUIRE(memchr(out, '\0', size) != NULL);
		/* What fits whole is the full text; a cut text is never longer. */
		if (size > flen)
			RL_REQUIRE(strcmp(out, full) == 0);
		else
			RL_REQUIRE(strlen(out) <= size - 1);
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
