/*
 * notify: sd_notify(3) messages to the service manager.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "notify.h"

/*
 * sd_notify() returns 0 without NOTIFY_SOCKET, > 0 once sent.  A socket
 * that does not work now will not later: said once, not at every reload.
 */
static void notify_send(struct notify *n, const char *msg)
{
	int rc = sd_notify(0, msg);

	if (rc < 0 && !n->warned) {
		n->warned = 1;
		log_warn("cannot send %.*s to the service manager (NOTIFY_SOCKET): %s; not "
			 "said again", (int)strcspn(msg, "\n"), msg, strerror(-rc));
	}
}

void notify_ready(struct notify *n)
{
	if (n->stopping)
		return;
	n->reloading = 0;
	notify_send(n, "READY=1");
}

void notify_reloading(struct notify *n)
{
	struct timespec ts;
	char msg[64];

	if (n->stopping)
		return;
	/* systemd matches the reload to its SIGHUP by this clock (sd_notify(3)). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL +
		     (unsigned long long)ts.tv_nsec / 1000);
	n->reloading = 1;
	notify_send(n, msg);
}

void notify_reload_done(struct notify *n)
{
	if (n->reloading)
		notify_ready(n);
}

void notify_stopping(struct notify *n)
{
	if (n->stopping)
		return;
	n->stopping = 1;
	notify_send(n, "STOPPING=1");
}
