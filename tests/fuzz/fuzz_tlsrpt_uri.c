/*
 * fuzz_tlsrpt_uri: libFuzzer target for the TLS-RPT rua URI readers
 * (tlsrpt_mailto_addr, tlsrpt_https_parse), which take text from a DNS
 * TXT record.  Invariants: no crash; on success the outputs are
 * NUL-terminated within their buffers, an address has exactly one '@'
 * with text on both sides and no blank or control octet, a port is
 * 1..65535 and a path starts with '/'.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rl.h"
#include "tlsrpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char uri[1024], out[320], host[256], path[512];
	unsigned port = 0;
	size_t n = size < sizeof(uri) - 1 ? size : sizeof(uri) - 1;

	memcpy(uri, data, n);
	uri[n] = '\0';
	if (tlsrpt_mailto_addr(uri, out, sizeof(out)) == 0) {
		const char *at = strchr(out, '@');

		RL_REQUIRE(strlen(out) < sizeof(out));
		RL_REQUIRE(at && at != out && at[1] && !strchr(at + 1, '@'));
		for (const char *p = out; *p; p++)
			RL_REQUIRE(*p > ' ' && *p <= '~');
	}
	if (tlsrpt_https_parse(uri, host, sizeof(host), &port, path, sizeof(path)) == 0) {
		RL_REQUIRE(strlen(host) < sizeof(host) && strlen(path) < sizeof(path));
		RL_REQUIRE(port >= 1 && port <= 65535);
		RL_REQUIRE(path[0] == '/');
	}
	return 0;
}
