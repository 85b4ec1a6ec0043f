/*
 * Fuzz the /proc/net/tcp{,6} reader of sendmail's hand-over check.  The
 * first input byte picks the file kind and the target (IPv4 or IPv6, port
 * from the next two bytes); the rest is the text.  Any result is fine as
 * long as it is one of the documented ones and the count stays in bounds.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "procnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	uint32_t uids[PROCNET_UIDS_MAX];
	size_t n = 0;
	int rc, v6file, v6target;
	unsigned port;

	if (size < 3)
		return 0;
	v6file = data[0] & 1;
	v6target = (data[0] >> 1) & 1;
	port = (unsigned)data[1] << 8 | data[2];
	memset(&ss, 0, sizeof(ss));
	if (v6target) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		a->sin6_addr = in6addr_loopback;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	rc = procnet_listeners((const char *)data + 3, size - 3, v6file,
			       (const struct sockaddr *)&ss, uids, &n);
	RL_REQUIRE(rc == 0 || rc == RL_EPARSE || rc == RL_ETOOBIG);
	RL_REQUIRE(n <= PROCNET_UIDS_MAX);
	return 0;
}
