/*
 * Fuzz the fingerprint text parser.  An accepted input is 20 or 32 bytes of
 * hex with single colons, so formatting the digest gives the input back in
 * upper case; a refused one leaves the digest empty and points at a byte
 * of the input.
 */
#include <stdint.h>
#include <string.h>

#include "fpr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char upper(char c)
{
	return c >= 'a' && c <= 'f' ? (char)(c - 'a' + 'A') : c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct rl_why why = {0, NULL, 0};
	struct fpr_digest d, again;
	char text[FPR_TEXT_SIZE];

	if (fpr_parse(s, size, &d, &why) != 0) {
		RL_REQUIRE(d.len == 0 && why.code == RL_EPARSE && why.reason != NULL);
		RL_REQUIRE(why.offset <= size);
		return 0;
	}
	RL_REQUIRE(d.len == FPR_SHA1_LEN || d.len == FPR_SHA256_LEN);
	RL_REQUIRE(size == d.len * 3 - 1);
	fpr_format(&d, text, sizeof(text));
	RL_REQUIRE(strlen(text) == size);
	for (size_t i = 0; i < size; i++)
		RL_REQUIRE(text[i] == upper(s[i]));
	RL_REQUIRE(fpr_parse(text, strlen(text), &again, NULL) == 0);
	RL_REQUIRE(again.len == d.len && memcmp(again.bytes, d.bytes, d.len) == 0);
	return 0;
}
