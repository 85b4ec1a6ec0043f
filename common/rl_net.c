/*
 * rl_net: matching a client address against networks (rl.h).
 */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "rl.h"

int rl_prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	size_t full = bits / 8;
	unsigned rest = bits % 8;
	unsigned char mask;

	if (memcmp(a, b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

int rl_net_match(const struct rl_net *nets, size_t n, const struct sockaddr *addr)
{
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	unsigned char a4[4], a6[16];
	int has4 = 0, has6 = 0;

	if (!addr)
		return 0;
	if (addr->sa_family == AF_INET) {
		memcpy(a4, &((const struct sockaddr_in *)addr)->sin_addr, 4);
		has4 = 1;
	} else if (addr->sa_family == AF_INET6) {
		memcpy(a6, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
		has6 = 1;
		/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d. */
		has4 = memcmp(a6, v4mapped, sizeof(v4mapped)) == 0;
		memcpy(a4, a6 + 12, 4);
	}
	for (size_t i = 0; i < n; i++) {
		const struct rl_net *net = &nets[i];

		if (net->family == AF_INET && has4 && rl_prefix_eq(net->addr, a4, net->prefix))
			return 1;
		if (net->family == AF_INET6 && has6 && rl_prefix_eq(net->addr, a6, net->prefix))
			return 1;
	}
	return 0;
}
