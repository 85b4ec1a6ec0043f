/*
 * test_procnet: owners of listening sockets from /proc/net/tcp{,6} text,
 * as the kernel prints it (little-endian host: 127.0.0.1 is 0100007F).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "procnet.h"
#include "tap.h"

#define HDR4 "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
#define HDR6                                                                                          \
	"  sl  local_address                         remote_address                        st tx_queue " \
	"rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

/* Port 10025 is 2729 in hex. */
static const char tcp4[] =
    HDR4
    "   0: 0100007F:2729 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0 100 0 0 10 0\n"
    "   1: 0900007F:2729 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1002 1 0 100 0 0 10 0\n"
    "   2: 00000000:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 1003 1 0 100 0 0 10 0\n"
    "   3: 0100007F:2729 0100007F:C350 01 00000000:00000000 00:00000000 00000000  4242        0 1004 1 0 100 0 0 10 0\n"
    "   4: 0100007F:272A 00000000:0000 0A 00000000:00000000 00:00000000 00000000  4243        0 1005 1 0 100 0 0 10 0\n";

static const char tcp6[] =
    HDR6
    "   0: 00000000000000000000000001000000:0019 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000   108        0 2001 1 0 100 0 0 10 0\n"
    "   1: 00000000000000000000000000000000:2729 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000  1001        0 2002 1 0 100 0 0 10 0\n";

static const struct sockaddr *v4(const char *ip, unsigned port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *a = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	a->sin_family = AF_INET;
	a->sin_port = htons((unsigned short)port);
	inet_pton(AF_INET, ip, &a->sin_addr);
	return (const struct sockaddr *)ss;
}

static const struct sockaddr *v6(const char *ip, unsigned port, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	a->sin6_family = AF_INET6;
	a->sin6_port = htons((unsigned short)port);
	inet_pton(AF_INET6, ip, &a->sin6_addr);
	return (const struct sockaddr *)ss;
}

static void test_owners(void)
{
	struct sockaddr_storage ss;
	uint32_t uids[PROCNET_UIDS_MAX];
	size_t n = 99;

	/* 127.0.0.1:10025: the root listener only (not the connected socket
	 * of uid 4242, not 127.0.0.9's listener, not port 10026). */
	CHECK_INT(procnet_listeners(tcp4, strlen(tcp4), 0, v4("127.0.0.1", 10025, &ss), uids, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(uids[0], 0);
	/* 127.0.0.9:10025: uid 1000's own listener. */
	CHECK_INT(procnet_listeners(tcp4, strlen(tcp4), 0, v4("127.0.0.9", 10025, &ss), uids, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(uids[0], 1000);
	/* Port 25 on any IPv4 address: the wildcard listener of uid 107. */
	CHECK_INT(procnet_listeners(tcp4, strlen(tcp4), 0, v4("127.0.0.5", 25, &ss), uids, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(uids[0], 107);
	/* Nobody on 127.0.0.1:10027. */
	CHECK_INT(procnet_listeners(tcp4, strlen(tcp4), 0, v4("127.0.0.1", 10027, &ss), uids, &n), 0);
	CHECK_INT(n, 0);
	/* tcp6: ::1 port 25 (uid 108); the :: wildcard on 10025 takes IPv4
	 * connections too (dual stack), and IPv6 ones to any address. */
	CHECK_INT(procnet_listeners(tcp6, strlen(tcp6), 1, v6("::1", 25, &ss), uids, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(uids[0], 108);
	CHECK_INT(procnet_listeners(tcp6, strlen(tcp6), 1, v6("::2", 25, &ss), uids, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(procnet_listeners(tcp6, strlen(tcp6), 1, v4("127.0.0.1", 10025, &ss), uids, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(uids[0], 1001);
	CHECK_INT(procnet_listeners(tcp6, strlen(tcp6), 1, v6("::1", 10025, &ss), uids, &n), 0);
	CHECK_INT(n, 1);
	/* An IPv6 target never matches an IPv4 file. */
	CHECK_INT(procnet_listeners(tcp4, strlen(tcp4), 0, v6("::1", 25, &ss), uids, &n), 0);
	CHECK_INT(n, 0);
	/* Header only, and empty text. */
	CHECK_INT(procnet_listeners(HDR4, strlen(HDR4), 0, v4("127.0.0.1", 25, &ss), uids, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(procnet_listeners("", 0, 0, v4("127.0.0.1", 25, &ss), uids, &n), 0);
	CHECK_INT(n, 0);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
	    HDR4 "   0: 0100007F:2729\n",
	    HDR4 "   0: 0100007G:2729 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n",
	    HDR4 "   0: 0100007F:272 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n",
	    HDR4 "   0: 0100007F-2729 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n",
	    HDR4 "   0: 0100007F:2729 00000000:0000 A 00000000:00000000 00:00000000 00000000 0 0 1\n",
	    HDR4 "   0: 0100007F:2729 00000000:0000 0A 00000000:00000000 00:00000000 00000000 -1 0 1\n",
	    HDR4 "   0: 0100007F:2729 00000000:0000 0A 00000000:00000000 00:00000000 00000000 99999999999 0 1\n",
	    HDR4 "   0: 0100007F:2729 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1\x01 0 1\n",
	    /* an IPv4 line in the IPv6 file */
	    HDR6 "   0: 0100007F:2729 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n",
	};
	struct sockaddr_storage ss;
	uint32_t uids[PROCNET_UIDS_MAX];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int v6file = strncmp(bad[i], HDR6, strlen(HDR6)) == 0;

		CHECK(procnet_listeners(bad[i], strlen(bad[i]), v6file, v4("127.0.0.1", 10025, &ss),
					uids, &n) == RL_EPARSE,
		      "case %zu accepted", i);
	}
}

static void test_too_many(void)
{
	char text[8192];
	size_t len = (size_t)snprintf(text, sizeof(text), "%s", HDR4);
	struct sockaddr_storage ss;
	uint32_t uids[PROCNET_UIDS_MAX];
	size_t n;

	for (int i = 0; i <= PROCNET_UIDS_MAX; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"%4d: 00000000:2729 00000000:0000 0A 00000000:00000000 "
					"00:00000000 00000000     0        0 %d 1\n",
					i, 100 + i);
	CHECK_INT(procnet_listeners(text, len, 0, v4("127.0.0.1", 10025, &ss), uids, &n),
		  RL_ETOOBIG);
}

int main(void)
{
	test_owners();
	test_malformed();
	test_too_many();
	return TEST_DONE();
}
