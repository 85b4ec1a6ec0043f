/*
 * tlspol_reload: the daemon's policy reloads, off the loop.
 *
 * Reading a policy file and its tafiles and compiling priorities is file
 * I/O and CPU work that took seconds for large tables; on the loop thread
 * it stalled every session (no client was even greeted).  The load runs
 * on a libuv worker thread with private copies of everything it reads;
 * the finished snapshot is handed to the loop thread in the after-work
 * callback, where the daemon installs it.  A snapshot is touched by one
 * thread at a time, so its non-atomic reference count stays safe.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tlspol.h"

/* What one load reads: copies, since SIGHUP may replace the cfg meanwhile. */
struct reload_args {
	char *path;
	char *tls_priority;
	unsigned tls_protocols;
	const char *why;
};

struct tlspol_reload {
	uv_loop_t *loop;
	uv_work_t work;
	tlspol_reload_done done;
	void *arg;
	int running; /* work is queued or running */
	int again;   /* another reload was asked for meanwhile: next holds it */
	int orphan;  /* freed while running: free when the work ends */
	struct reload_args cur, next;
	/* The worker's result, read on the loop thread after it ended. */
	int rc, missing;
	struct tlspol *pol;
	struct pol_errors errs;
};

static void args_clear(struct reload_args *a)
{
	free(a->path);
	free(a->tls_priority);
	memset(a, 0, sizeof(*a));
}

static int args_set(struct reload_args *a, const char *path, const struct cfg *c, const char *why)
{
	args_clear(a);
	a->path = path ? strdup(path) : NULL;
	a->tls_priority = c->tls_priority ? strdup(c->tls_priority) : NULL;
	a->tls_protocols = c->tls_protocols;
	a->why = why;
	if ((path && !a->path) || (c->tls_priority && !a->tls_priority)) {
		args_clear(a);
		return -ENOMEM;
	}
	return 0;
}

/* Worker thread: only r->cur (read) and the result fields (written). */
static void reload_work(uv_work_t *w)
{
	struct tlspol_reload *r = w->data;
	struct tlspol_base base = {r->cur.tls_priority, r->cur.tls_protocols};

	r->pol = NULL;
	r->missing = 0;
	r->rc = tlspol_load_base(r->cur.path, &base, &r->pol, &r->errs, &r->missing);
}

static void reload_after(uv_work_t *w, int status);

static void reload_submit(struct tlspol_reload *r)
{
	int rc;

	r->running = 1;
	rc = uv_queue_work(r->loop, &r->work, reload_work, reload_after);
	RL_REQUIRE(rc == 0);
}

/* Loop thread, once the worker is done with r->cur. */
static void reload_after(uv_work_t *w, int status)
{
	struct tlspol_reload *r = w->data;
	struct tlspol_reload_result res;

	r->running = 0;
	if (r->orphan || status < 0 || r->again) {
		/* Superseded (a newer reload was asked for) or abandoned. */
		tlspol_unref(r->pol);
		r->pol = NULL;
		if (r->orphan) {
			tlspol_reload_free(r);
			return;
		}
		if (r->again) {
			args_clear(&r->cur);
			r->cur = r->next;
			memset(&r->next, 0, sizeof(r->next));
			r->again = 0;
			reload_submit(r);
		}
		return;
	}
	res = (struct tlspol_reload_result){r->rc,	r->pol,	     r->missing,
					    r->cur.why, r->cur.path, &r->errs};
	r->pol = NULL;
	r->done(r->arg, &res);
}

struct tlspol_reload *tlspol_reload_new(uv_loop_t *loop, tlspol_reload_done done, void *arg)
{
	struct tlspol_reload *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->loop = loop;
	r->done = done;
	r->arg = arg;
	r->work.data = r;
	return r;
}

int tlspol_reload_start(struct tlspol_reload *r, const char *path, const struct cfg *c,
			const char *why)
{
	int rc;

	if (r->running) {
		rc = args_set(&r->next, path, c, why);
		r->again = rc == 0;
		return rc;
	}
	rc = args_set(&r->cur, path, c, why);
	if (rc == 0)
		reload_submit(r);
	return rc;
}

void tlspol_reload_free(struct tlspol_reload *r)
{
	if (!r)
		return;
	if (r->running) {
		r->orphan = 1;
		return;
	}
	args_clear(&r->cur);
	args_clear(&r->next);
	free(r);
}
