/*
 * procnet: listening sockets and their owners from /proc/net/tcp{,6}
 * (procnet.h).  A line, after the header:
 *   sl: LOCAL REMOTE ST TX:RX TR:WHEN RETR UID TIMEOUT INODE ...
 * LOCAL is ADDR:PORT in hex; ADDR is 8 hex digits for IPv4 or 32 for IPv6,
 * each 32-bit group printed as the host-order integer of the address's
 * bytes in memory; PORT is the port number.  ST 0A is LISTEN.
 */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "procnet.h"

#define PROCNET_LISTEN 0x0A

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Exactly n hex digits at p into *v (n <= 8). */
static int hex_n(const char *p, size_t n, uint32_t *v)
{
	uint32_t x = 0;

	for (size_t i = 0; i < n; i++) {
		int d = hexval(p[i]);

		if (d < 0)
			return -1;
		x = x << 4 | (uint32_t)d;
	}
	*v = x;
	return 0;
}

/* A decimal number of at most 10 digits. */
static int dec(const char *p, size_t n, uint32_t *v)
{
	uint64_t x = 0;

	if (n == 0 || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(p[i] - '0');
	}
	if (x > UINT32_MAX)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

/* The blank-separated fields of one line: at most max, *nf counting them. */
static void split(const char *p, size_t n, const char **f, size_t *fl, size_t max, size_t *nf)
{
	size_t i = 0;

	*nf = 0;
	while (i < n && *nf < max) {
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i == n)
			break;
		f[*nf] = p + i;
		while (i < n && p[i] != ' ' && p[i] != '\t')
			i++;
		fl[*nf] = (size_t)(p + i - f[*nf]);
		(*nf)++;
	}
}

/* "ADDR:PORT" into the address bytes (alen 4 or 16) and port. */
static int local_addr(const char *p, size_t n, size_t alen, unsigned char *addr, unsigned *port)
{
	size_t hexlen = alen * 2;
	uint32_t w, pt;

	if (n != hexlen + 5 || p[hexlen] != ':' || hex_n(p + hexlen + 1, 4, &pt) < 0)
		return -1;
	for (size_t g = 0; g < alen / 4; g++) {
		if (hex_n(p + g * 8, 8, &w) < 0)
			return -1;
		memcpy(addr + g * 4, &w, 4); /* the kernel printed the bytes as a host integer */
	}
	*port = pt;
	return 0;
}

/* Would a listener on (family, addr, port) take a connection to target? */
static int reaches(int v6, const unsigned char *addr, unsigned port, const struct sockaddr *target)
{
	static const unsigned char any[16];

	if (target->sa_family == AF_INET) {
		const struct sockaddr_in *t = (const struct sockaddr_in *)target;

		if (port != ntohs(t->sin_port))
			return 0;
		if (v6)
			return memcmp(addr, any, 16) == 0;
		return memcmp(addr, &t->sin_addr, 4) == 0 || memcmp(addr, any, 4) == 0;
	}
	if (target->sa_family == AF_INET6) {
		const struct sockaddr_in6 *t = (const struct sockaddr_in6 *)target;

		if (!v6 || port != ntohs(t->sin6_port))
			return 0;
		return memcmp(addr, &t->sin6_addr, 16) == 0 || memcmp(addr, any, 16) == 0;
	}
	return 0;
}

int procnet_listeners(const char *text, size_t len, int v6, const struct sockaddr *target,
		      uint32_t *uids, size_t *n)
{
	struct rl_lines it;
	const char *line;
	size_t ln;
	int first = 1, rc;

	*n = 0;
	rl_lines_init(&it, text, len, 4096);
	while ((rc = rl_lines_next(&it, &line, &ln, NULL)) != 0) {
		const char *f[8];
		size_t fl[8], nf;
		unsigned char addr[16];
		unsigned port;
		uint32_t st, uid;

		if (rc < 0)
			return RL_EPARSE;
		split(line, ln, f, fl, 8, &nf);
		if (first || nf == 0) { /* the header, or a blank last line */
			first = 0;
			continue;
		}
		if (nf < 8 || local_addr(f[1], fl[1], v6 ? 16 : 4, addr, &port) < 0 || fl[3] != 2 ||
		    hex_n(f[3], 2, &st) < 0 || dec(f[7], fl[7], &uid) < 0)
			return RL_EPARSE;
		if (st != PROCNET_LISTEN || !reaches(v6, addr, port, target))
			continue;
		if (*n == PROCNET_UIDS_MAX)
			return RL_ETOOBIG;
		uids[(*n)++] = uid;
	}
	return 0;
}
