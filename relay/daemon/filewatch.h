/*
 * filewatch: "this file may have changed", for the files the daemon
 * reloads on save (the policy file, relay_clientcerts).
 *
 * The directory of the file is watched, not the file: editors save by
 * writing a temporary file and renaming it over the old one, and the file
 * may not exist yet.  Events for other names in the directory are
 * ignored.  A save is several events; changed() runs once,
 * FILEWATCH_SETTLE_MS after the last of them, on the loop thread.
 *
 * The struct is embedded in its owner; filewatch_close() closes its two
 * handles (the loop must run on to finish closing them).  Loop thread only.
 */
#ifndef FILEWATCH_H
#define FILEWATCH_H

#include <uv.h>

#define FILEWATCH_SETTLE_MS 200 /* an editor's save is several events */

struct filewatch {
	uv_fs_event_t ev; /* the file's directory */
	uv_timer_t timer; /* changed() a moment after the last event */
	char *path;	  /* the file watched; NULL: none */
	void (*changed)(void *arg);
	void *arg;
	int open; /* the handles are initialised and not closed */
};

/* Set up the handles on loop (nothing watched yet). */
void filewatch_init(struct filewatch *w, uv_loop_t *loop, void (*changed)(void *arg), void *arg);

/*
 * Watch path (copied), replacing what was watched before; NULL watches
 * nothing.  Returns 0 or a libuv error (the caller says that changes then
 * take effect on SIGHUP only).
 */
int filewatch_start(struct filewatch *w, const char *path);

/* Close the handles; a no-op if they are not open. */
void filewatch_close(struct filewatch *w);

#endif
