/*
 * Fuzz the wire-name and MX rdata decoders and the host-name check.  Every
 * name accepted must be text made of host-name characters that encodes back
 * to exactly the bytes consumed, so nothing is lost or invented in decoding.
 * The same bytes as the text of a trust-anchor file and of resolv.conf: an
 * anchor owner is "." or a host name, and the servers read from resolv.conf
 * are made of address characters only (they go into a log line).
 */
#include <stdint.h>
#include <string.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The wire form of a decoded name; returns its length. */
static size_t encode(const char *text, unsigned char *out)
{
	size_t pos = 0;

	while (*text) {
		const char *dot = strchr(text, '.');
		size_t n = dot ? (size_t)(dot - text) : strlen(text);

		RL_REQUIRE(n >= 1 && n <= 63);
		out[pos++] = (unsigned char)n;
		memcpy(out + pos, text, n);
		pos += n;
		text += n + (dot != NULL);
	}
	out[pos++] = 0;
	return pos;
}

static void check_name(const uint8_t *data, size_t size, size_t outlen)
{
	char out[DNS_NAME_MAX];
	unsigned char wire[DNS_NAME_MAX + 8];
	size_t used = 0;

	if (dns_parse_name(data, size, &used, out, outlen) != 0) {
		RL_REQUIRE(out[0] == '\0');
		return;
	}
	RL_REQUIRE(used >= 1 && used <= size && used <= 255);
	RL_REQUIRE(strlen(out) < outlen);
	RL_REQUIRE(encode(out, wire) == used && memcmp(wire, data, used) == 0);
	/* A non-root name that decodes is a valid host name as text. */
	if (out[0]) {
		char again[DNS_NAME_MAX];

		RL_REQUIRE(dns_parse_host(out, strlen(out), again, sizeof(again)) == 0);
		RL_REQUIRE(strcmp(again, out) == 0);
	}
}

static void check_texts(const uint8_t *data, size_t size)
{
	char out[DNS_NAME_MAX], list[64];
	size_t n, commas = 0;

	if (dns_parse_anchor_owner((const char *)data, size, out, sizeof(out)) == 0 &&
	    strcmp(out, ".") != 0) {
		char again[DNS_NAME_MAX];

		RL_REQUIRE(dns_parse_host(out, strlen(out), again, sizeof(again)) == 0);
	}
	n = dns_parse_resolv((const char *)data, size, list, sizeof(list));
	RL_REQUIRE(strlen(list) < sizeof(list) && (n == 0) == (list[0] == '\0'));
	for (const char *p = list; *p; p++) {
		RL_REQUIRE(strchr(" \t\r\n\";#", *p) == NULL || (p[0] == ' ' && p[-1] == ','));
		commas += *p == ',';
	}
	RL_REQUIRE(n == 0 || commas == n - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_mx_host h;
	char out[DNS_NAME_MAX];

	check_texts(data, size);
	check_name(data, size, DNS_NAME_MAX);
	check_name(data, size, 1 + (size ? data[0] % 64 : 0));
	if (dns_parse_mx(data, size, &h) == 0) {
		RL_REQUIRE(size >= 3 && h.pref == ((unsigned)data[0] << 8 | data[1]));
		RL_REQUIRE(strlen(h.name) <= 253);
	}
	if (dns_parse_host((const char *)data, size, out, sizeof(out)) == 0) {
		size_t n = strlen(out);

		RL_REQUIRE(n >= 1 && n <= 253 && n <= size && out[n - 1] != '.');
		RL_REQUIRE(memcmp(out, data, n) == 0);
	}
	return 0;
}
