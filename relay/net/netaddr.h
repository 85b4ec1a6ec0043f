/*
 * netaddr: a socket address as the text the logs, replies and resolver
 * configuration show.  Pure: no I/O, no allocation, any thread.
 *
 * One function so that the inbound server, the outbound client, the
 * resolver setup, the listeners and `certs probe` all write an address the
 * same way (the log tools match "host[ip]:port" byte for byte).
 */
#ifndef NETADDR_H
#define NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include "rl.h"

/* Room for any address netaddr_text() writes, with its NUL. */
#define NETADDR_TEXT_SIZE 46 /* INET6_ADDRSTRLEN */

/*
 * Write sa's address into ip (iplen bytes, NUL-terminated): IPv4 dotted
 * quad, IPv6 as inet_ntop writes it (RFC 5952), and an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d, what a dual-stack listener sees from an IPv4
 * client) as its plain IPv4 form, as Postfix logs it.  No scope id.  If
 * port is not NULL, *port gets the port in host order.  sa is borrowed.
 * Returns 0, or -EAFNOSUPPORT (neither AF_INET nor AF_INET6) or -ENOSPC
 * (iplen too small); on an error ip is "?" (when iplen allows) and *port 0.
 */
int netaddr_text(const struct sockaddr *sa, char *ip, size_t iplen, unsigned *port) RL_WUR;

#endif
