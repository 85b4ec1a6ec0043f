/*
 * selfaddr: "mail for X loops back to myself" (Postfix's smtp_addr.c rule).
 *
 * An MX address is ourselves when connecting to it on remote_port would
 * reach this relay's own listener: one of the listen addresses on that
 * port, or, when a listener is bound to a wildcard (0.0.0.0 or ::), any
 * address of this host (the loopback ranges and every interface address).
 * An unspecified address (0.0.0.0, ::) is ourselves too: connecting to it
 * reaches the local host.  Such addresses are never connected to; a domain
 * whose best MX is ourselves is bounced with 5.4.6.
 *
 * The set is built once at start (selfaddr_init, which reads the interface
 * list) and then only read (selfaddr_is_self, a pure function).  Bounded:
 * at most SELFADDR_MAX addresses.  Loop thread only.
 */
#ifndef SELFADDR_H
#define SELFADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include "cfg.h"

#define SELFADDR_MAX 256

struct selfaddr {
	unsigned port;                    /* remote_port */
	int wildcard;                     /* a listener on 0.0.0.0/:: at port */
	size_t n;
	struct sockaddr_storage addr[SELFADDR_MAX]; /* listen addresses at port,
						     * and interface addresses */
};

/*
 * From c: the listen addresses on remote_port, and (when one of them is a
 * wildcard) the host's interface addresses.  Never fails: without the
 * interface list, the loopback ranges still count as ours.
 */
void selfaddr_init(struct selfaddr *s, const struct cfg *c);

/* Is addr (sockaddr_in/_in6, port ignored) ourselves on remote_port? */
int selfaddr_is_self(const struct selfaddr *s, const struct sockaddr *addr);

/* Add one address (port ignored); for selfaddr_init and tests. */
void selfaddr_add(struct selfaddr *s, const struct sockaddr *addr);

#endif
