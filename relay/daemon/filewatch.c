/*
 * filewatch: reload-on-save for the daemon's files (filewatch.h).
 */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "filewatch.h"

static void filewatch_settled(uv_timer_t *t)
{
	struct filewatch *w = t->data;

	w->changed(w->arg);
}

static void filewatch_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct filewatch *w = h->data;
	char *copy = w->path ? strdup(w->path) : NULL;
	const char *base = copy ? basename(copy) : NULL;

	(void)events;
	/* Editors write a temporary file and rename it: watch the name. */
	if (status == 0 && w->path && (!filename || !base || strcmp(filename, base) == 0))
		uv_timer_start(&w->timer, filewatch_settled, FILEWATCH_SETTLE_MS, 0);
	free(copy);
}

void filewatch_init(struct filewatch *w, uv_loop_t *loop, void (*changed)(void *arg), void *arg)
{
	memset(w, 0, sizeof(*w));
	w->changed = changed;
	w->arg = arg;
	uv_timer_init(loop, &w->timer);
	w->timer.data = w;
	uv_fs_event_init(loop, &w->ev);
	w->ev.data = w;
	w->open = 1;
}

int filewatch_start(struct filewatch *w, const char *path)
{
	char *dir;
	int rc;

	/* The handles stay; only what they watch changes. */
	uv_fs_event_stop(&w->ev);
	uv_timer_stop(&w->timer);
	free(w->path);
	w->path = NULL;
	if (!path)
		return 0;
	w->path = strdup(path);
	dir = w->path ? strdup(w->path) : NULL;
	rc = dir ? uv_fs_event_start(&w->ev, filewatch_event, dirname(dir), 0) : UV_ENOMEM;
	free(dir);
	return rc;
}

void filewatch_close(struct filewatch *w)
{
	if (!w->open)
		return;
	w->open = 0;
	free(w->path);
	w->path = NULL;
	uv_close((uv_handle_t *)&w->ev, NULL);
	uv_close((uv_handle_t *)&w->timer, NULL);
}
