/*
 * procnet: who owns the TCP socket listening on an address, from the text
 * of Linux's /proc/net/tcp or /proc/net/tcp6.
 *
 * `sendmail` run by a user who may not write the queue hands the message
 * to the relay's listener over TCP (relay/cli/cli_submit.c).  Before it
 * trusts a 250 from there, it checks that the socket that will take the
 * connection belongs to the relay (root, which binds before dropping
 * privileges, or the queue's owner) and not to a local user who bound
 * the port while the relay was down.
 *
 * Pure: the caller reads the file; nothing here does I/O.
 */
#ifndef PROCNET_H
#define PROCNET_H

#include <stddef.h>
#include <stdint.h>

#include "rl.h"

struct sockaddr;

#define PROCNET_UIDS_MAX 16

/*
 * The owners of the LISTEN sockets in text (len bytes of /proc/net/tcp
 * when v6 is 0, /proc/net/tcp6 when 1) that a connection to target
 * (sockaddr_in or _in6) may reach: same port, and the same address or the
 * wildcard of that family; for an IPv4 target also an IPv6 wildcard
 * listener (dual stack: /proc does not say whether it is v6-only, so it
 * counts).  Appends each owner's uid to uids (at most PROCNET_UIDS_MAX in
 * all, *n counting them; more are RL_ETOOBIG).  Returns 0, or RL_EPARSE
 * for a line that is not in the kernel's format (the header line is
 * skipped).
 */
int procnet_listeners(const char *text, size_t len, int v6, const struct sockaddr *target,
		      uint32_t *uids, size_t *n) RL_WUR;

#endif
