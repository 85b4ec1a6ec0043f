/*
 * Fuzz the Content-Type media type reader of the HTTPS fetcher.  A type it
 * accepts is lowercase type "/" subtype made of token characters, found in
 * the input as it stands (case aside), and fits the output it was given;
 * it reads the same way again; and a refusal leaves the output empty.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "https.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *s, size_t size, size_t outlen)
{
	char out[HTTPS_TYPE_MAX], again[HTTPS_TYPE_MAX];
	const char *slash;
	size_t n;

	if (https_media_type(s, size, out, outlen, NULL) != 0) {
		RL_REQUIRE(out[0] == '\0');
		return;
	}
	n = strlen(out);
	RL_REQUIRE(n >= 3 && n < outlen && n <= size);
	slash = strchr(out, '/');
	RL_REQUIRE(slash && slash != out && slash[1] && !strchr(slash + 1, '/'));
	for (size_t i = 0; i < n; i++)
		RL_REQUIRE(out[i] > 0x20 && out[i] < 0x7f && !(out[i] >= 'A' && out[i] <= 'Z'));
	/* The type is in the input after optional whitespace. */
	{
		size_t k = 0;

		while (k < size && (s[k] == ' ' || s[k] == '\t'))
			k++;
		RL_REQUIRE(k + n <= size && strncasecmp(s + k, out, n) == 0);
	}
	RL_REQUIRE(https_media_type(out, n, again, sizeof(again), NULL) == 0);
	RL_REQUIRE(strcmp(again, out) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check((const char *)data, size, HTTPS_TYPE_MAX);
	check((const char *)data, size, 1 + (size ? data[0] % 32 : 0));
	return 0;
}
