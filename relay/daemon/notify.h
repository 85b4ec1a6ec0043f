/*
 * notify: what the daemon tells its service manager (systemd, Type=notify)
 * through libsystemd's sd_notify(3): READY=1 once the listeners and the
 * queue are open, RELOADING=1 when a SIGHUP reload starts and READY=1 when
 * it is done, STOPPING=1 when shutdown starts.
 *
 * Without NOTIFY_SOCKET in the environment every call does nothing.  The
 * first message that cannot be sent is logged as a warning (later ones are
 * not), and otherwise ignored: the relay serves mail whether or not anybody
 * listens.  The struct is
 * embedded in the daemon context (zeroed: nothing announced yet).  Loop
 * thread only.
 */
#ifndef NOTIFY_H
#define NOTIFY_H

struct notify {
	int reloading; /* RELOADING=1 sent, READY=1 not yet */
	int stopping;  /* STOPPING=1 sent: nothing more is said */
	int warned;    /* a send failed and was logged */
};

/* READY=1: the relay accepts connections and delivers. */
void notify_ready(struct notify *n);

/*
 * RELOADING=1 with MONOTONIC_USEC (which Type=notify-reload asks for), at
 * the start of a reload; notify_reload_done() ends it.
 */
void notify_reloading(struct notify *n);

/* READY=1 if a reload was announced and not yet ended; else nothing. */
void notify_reload_done(struct notify *n);

/* STOPPING=1, once; afterwards the other calls do nothing. */
void notify_stopping(struct notify *n);

#endif
