/*
 * test_selfaddr: which MX addresses loop back to the relay itself
 * (relay/selfaddr.c), table-driven over listen configurations.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "selfaddr.h"
#include "tap.h"

static struct sockaddr_storage sa_of(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip, &s4->sin_addr);
	}
	return ss;
}

/* A config listening on the given "IP" list (each at port lport). */
static void cfg_with(struct cfg *c, const char *const *ips, size_t n, unsigned lport,
		     unsigned remote_port)
{
	memset(c, 0, sizeof(*c));
	c->remote_port = remote_port;
	for (size_t i = 0; i < n; i++) {
		c->listen[i].sa = sa_of(ips[i], lport);
		c->nlisten++;
	}
}

static const struct {
	const char *name;
	const char *listen[2];
	size_t nlisten;
	unsigned lport, rport;
	const char *mx;
	int self;
} cases[] = {
	{ "our address, same port", { "127.0.0.1" }, 1, 25, 25, "127.0.0.1", 1 },
	{ "our address, other port", { "127.0.0.1" }, 1, 2525, 25, "127.0.0.1", 0 },
	{ "another loopback address", { "127.0.0.1" }, 1, 25, 25, "127.0.0.2", 0 },
	{ "v4-mapped form of ours", { "127.0.0.1" }, 1, 25, 25, "::ffff:127.0.0.1", 1 },
	{ "0.0.0.0 always", { "127.0.0.1" }, 1, 2525, 25, "0.0.0.0", 1 },
	{ "0.x.y.z is this host", { "127.0.0.1" }, 1, 2525, 25, "0.1.2.3", 1 },
	{ ":: always", { "127.0.0.1" }, 1, 2525, 25, "::", 1 },
	{ "wildcard: any loopback", { "0.0.0.0" }, 1, 25, 25, "127.9.9.9", 1 },
	{ "wildcard: ::1", { "::" }, 1, 25, 25, "::1", 1 },
	{ "wildcard, other port", { "0.0.0.0" }, 1, 2525, 25, "127.9.9.9", 0 },
	{ "v6 listener", { "127.0.0.1", "::1" }, 2, 25, 25, "::1", 1 },
	{ "documentation address", { "127.0.0.1" }, 1, 25, 25, "192.0.2.1", 0 },
};

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg c;
		struct selfaddr s;
		struct sockaddr_storage mx = sa_of(cases[i].mx, 0);

		cfg_with(&c, cases[i].listen, cases[i].nlisten, cases[i].lport, cases[i].rport);
		selfaddr_init(&s, &c);
		CHECK(selfaddr_is_self(&s, (struct sockaddr *)&mx) == cases[i].self,
		      "%s: got %d want %d", cases[i].name, !cases[i].self, cases[i].self);
	}
	return TEST_DONE();
}
