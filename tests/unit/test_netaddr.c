/*
 * test_netaddr: a socket address as text (relay/net/netaddr.c), the one
 * function behind "host[ip]:port" in the logs, the inbound client address,
 * the listeners' errors, the resolver's forwarders and `certs probe`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "netaddr.h"
#include "tap.h"

/* "ip" in family fam (0: AF_UNIX, no address at all) at port. */
static struct sockaddr_storage sa_of(int fam, const char *ip, unsigned port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (fam == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		CHECK_INT(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		CHECK_INT(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	} else {
		ss.ss_family = AF_UNIX;
	}
	return ss;
}

static void test_table(void)
{
	static const struct {
		int fam;
		const char *in;
		unsigned port;
		size_t iplen;
		int rc;
		const char *want;
		unsigned want_port;
	} t[] = {
	    {AF_INET, "127.0.0.5", 2525, 46, 0, "127.0.0.5", 2525},
	    {AF_INET, "0.0.0.0", 0, 46, 0, "0.0.0.0", 0},
	    {AF_INET, "255.255.255.255", 65535, 46, 0, "255.255.255.255", 65535},
	    {AF_INET6, "::1", 25, 46, 0, "::1", 25},
	    {AF_INET6, "2001:db8:0:0:1:0:0:1", 587, 46, 0, "2001:db8::1:0:0:1", 587},
	    /* A dual-stack listener's IPv4 client: shown as IPv4. */
	    {AF_INET6, "::ffff:127.0.0.5", 40000, 46, 0, "127.0.0.5", 40000},
	    /* Only ::ffff:0:0/96 is mapped; the deprecated ::a.b.c.d is not. */
	    {AF_INET6, "::127.0.0.5", 1, 46, 0, "::127.0.0.5", 1},
	    {AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 9, 46, 0,
	     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 9},
	    /* The longest IPv6 text (45 octets) fits NETADDR_TEXT_SIZE exactly. */
	    {AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 9, 46, 0,
	     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 9},
	    {0, NULL, 0, 46, -EAFNOSUPPORT, "?", 0},
	    /* Too small: never a truncated address, "?" instead. */
	    {AF_INET, "127.0.0.5", 25, 9, -ENOSPC, "?", 0},
	    {AF_INET6, "::ffff:127.0.0.5", 25, 9, -ENOSPC, "?", 0},
	    {AF_INET, "127.0.0.5", 25, 10, 0, "127.0.0.5", 25},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sockaddr_storage ss = sa_of(t[i].fam, t[i].in, t[i].port);
		char ip[64];
		unsigned port = 12345;
		int rc;

		memset(ip, 'x', sizeof(ip));
		rc = netaddr_text((const struct sockaddr *)&ss, ip, t[i].iplen, &port);
		CHECK(rc == t[i].rc, "row %zu: rc got %d want %d", i, rc, t[i].rc);
		CHECK(strcmp(ip, t[i].want) == 0, "row %zu: got \"%.64s\" want \"%s\"", i, ip,
		      t[i].want);
		CHECK(port == t[i].want_port, "row %zu: port got %u want %u", i, port,
		      t[i].want_port);
		/* Nothing is written past iplen. */
		CHECK(ip[t[i].iplen] == 'x', "row %zu: wrote past iplen", i);
		rc = netaddr_text((const struct sockaddr *)&ss, ip, t[i].iplen, NULL);
		CHECK(rc == t[i].rc, "row %zu: rc without port got %d", i, rc);
	}
}

/* The tiniest buffers: "" for one octet, untouched for none. */
static void test_tiny(void)
{
	struct sockaddr_storage ss = sa_of(0, NULL, 0);
	char ip[2] = {'x', 'x'};

	CHECK_INT(netaddr_text((const struct sockaddr *)&ss, ip, 1, NULL), -EAFNOSUPPORT);
	CHECK_INT(ip[0], '\0');
	CHECK_INT(ip[1], 'x');
	ip[0] = 'x';
	CHECK_INT(netaddr_text((const struct sockaddr *)&ss, ip, 0, NULL), -EAFNOSUPPORT);
	CHECK_INT(ip[0], 'x');
}

int main(void)
{
	test_table();
	test_tiny();
	return TEST_DONE();
}
