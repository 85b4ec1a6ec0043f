/*
 * selfaddr: is an MX address this relay itself?
 */
#include <netinet/in.h>
#include <string.h>

#include <uv.h>

#include "selfaddr.h"

/* The IPv4 address of a sockaddr, also from a v4-mapped IPv6 one; else 0. */
static int addr_v4(const struct sockaddr *sa, unsigned char out[4])
{
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 1;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(out, &a->s6_addr[12], 4);
			return 1;
		}
	}
	return 0;
}

static unsigned addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

static int addr_unspecified(const struct sockaddr *sa)
{
	unsigned char v4[4];

	if (addr_v4(sa, v4))
		return v4[0] == 0; /* 0.0.0.0/8: "this host" (RFC 1122 3.2.1.3) */
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* Loopback: 127.0.0.0/8 and ::1 always belong to this host. */
static int addr_loopback(const struct sockaddr *sa)
{
	unsigned char v4[4];

	if (addr_v4(sa, v4))
		return v4[0] == 127;
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

static int addr_same(const struct sockaddr *a, const struct sockaddr *b)
{
	unsigned char x[4], y[4];
	int xa = addr_v4(a, x), yb = addr_v4(b, y);

	if (xa || yb)
		return xa && yb && memcmp(x, y, 4) == 0;
	return a->sa_family == AF_INET6 && b->sa_family == AF_INET6 &&
	       memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

void selfaddr_add(struct selfaddr *s, const struct sockaddr *addr)
{
	size_t len = addr->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
						  sizeof(struct sockaddr_in6);

	if (s->n < SELFADDR_MAX && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6)) {
		memset(&s->addr[s->n], 0, sizeof(s->addr[s->n]));
		memcpy(&s->addr[s->n++], addr, len);
	}
}

void selfaddr_init(struct selfaddr *s, const struct cfg *c)
{
	uv_interface_address_t *ifs = NULL;
	int nifs = 0;

	memset(s, 0, sizeof(*s));
	s->port = c->remote_port;
	for (size_t i = 0; i < c->nlisten; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)&c->listen[i].sa;

		if (addr_port(sa) != s->port)
			continue;
		if (addr_unspecified(sa))
			s->wildcard = 1;
		else
			selfaddr_add(s, sa);
	}
	if (!s->wildcard || uv_interface_addresses(&ifs, &nifs) != 0)
		return;
	for (int i = 0; i < nifs; i++)
		selfaddr_add(s, (const struct sockaddr *)&ifs[i].address);
	uv_free_interface_addresses(ifs, nifs);
}

int selfaddr_is_self(const struct selfaddr *s, const struct sockaddr *addr)
{
	if (addr_unspecified(addr))
		return 1;
	if (s->wildcard && addr_loopback(addr))
		return 1;
	for (size_t i = 0; i < s->n; i++)
		if (addr_same((const struct sockaddr *)&s->addr[i], addr))
			return 1;
	return 0;
}
