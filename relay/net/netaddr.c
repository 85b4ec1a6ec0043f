/*
 * netaddr: a socket address as text (netaddr.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "netaddr.h"

static void netaddr_unknown(char *ip, size_t iplen, unsigned *port)
{
	if (iplen >= 2)
		memcpy(ip, "?", 2);
	else if (iplen == 1)
		ip[0] = '\0';
	if (port)
		*port = 0;
}

int netaddr_text(const struct sockaddr *sa, char *ip, size_t iplen, unsigned *port)
{
	const void *bytes;
	int family = sa->sa_family;
	unsigned p;

	if (family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		bytes = &s4->sin_addr;
		p = ntohs(s4->sin_port);
	} else if (family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		/* The last four octets of ::ffff:a.b.c.d are the IPv4 address. */
		bytes = &s6->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			bytes = &s6->sin6_addr.s6_addr[12];
			family = AF_INET;
		}
		p = ntohs(s6->sin6_port);
	} else {
		netaddr_unknown(ip, iplen, port);
		return -EAFNOSUPPORT;
	}
	/* inet_ntop never needs more than NETADDR_TEXT_SIZE; clamp for socklen_t. */
	if (!inet_ntop(family, bytes, ip, (socklen_t)(iplen < 256 ? iplen : 256))) {
		netaddr_unknown(ip, iplen, port);
		return -ENOSPC;
	}
	if (port)
		*port = p;
	return 0;
}
