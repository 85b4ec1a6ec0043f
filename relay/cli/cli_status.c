/*
 * cli_status: `tlsrelay status [--json]`, the one screen an administrator
 * looks at first (INTERFACE.md): whether the relay runs and since when,
 * the queue by state, its oldest message, the last hour's deliveries by
 * TLS level, and the destinations failing now with their reasons.
 *
 * Everything comes from the queue, read-only, in one read transaction (a
 * consistent picture that never blocks the running relay): the lock a
 * running relay holds (queue_run_holder), the envelopes (one pass,
 * bounded memory, see status.h) and the per-minute counters the relay
 * writes with each delivery's final write.  Works with or without a relay
 * running, as root or as the queue's owner.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "status.h"

struct status_scan {
	struct queue_txn *t;
	struct status_agg agg;
	int64_t now;
};

static int scan_msg(void *arg, const struct queue_msg *m)
{
	struct status_scan *s = arg;

	return status_agg_msg(&s->agg, m, cli_msg_active(s->t, m->id));
}

static int scan_count(void *arg, int64_t minute, const char *name, uint64_t n)
{
	struct status_scan *s = arg;

	status_agg_count(&s->agg, s->now, minute, name, n);
	return 0;
}

/* Running?  The lock says; the start time counts only if it is the holder's. */
static int scan_run(struct queue *q, struct queue_txn *t, struct status_run *r)
{
	uint32_t pid = 0;
	int64_t started = 0;
	int rc = queue_run_holder(q, &r->pid);

	if (rc < 0)
		return rc;
	r->running = rc;
	if (!r->running) {
		r->pid = 0;
		return 0;
	}
	if (queue_run_info(t, &pid, &started) == 0 && (r->pid == 0 || r->pid == pid)) {
		r->pid = pid;
		r->started = started;
	}
	return 0;
}

static int status_read(struct queue *q, struct status_scan *s, struct status_run *r)
{
	int64_t from = s->now / 60 - STATUS_HOUR_MIN + 1;
	int rc = queue_txn_begin(q, 0, &s->t);

	if (rc == 0)
		rc = scan_run(q, s->t, r);
	if (rc == 0)
		rc = queue_foreach(s->t, scan_msg, s);
	if (rc == 0)
		rc = queue_counts_foreach(s->t, from, scan_count, s);
	queue_txn_abort(s->t);
	s->t = NULL;
	status_agg_sort(&s->agg);
	return rc;
}

int cli_status(const char *cfgpath, int argc, char **argv)
{
	struct status_scan s = {.t = NULL};
	struct status_run r = {0};
	struct queue *q = NULL;
	struct rl_buf out;
	struct cfg c;
	int json = 0, rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
			continue;
		}
		fprintf(stderr, "usage: tlsrelay status [-c FILE] [--json]\n");
		return CLI_EX_USAGE;
	}
	if (cli_load_cfg(cfgpath, &c) < 0)
		return CLI_EX_FAIL;
	if (cli_open_queue(&c, QUEUE_O_RDONLY, &q) < 0) {
		cfg_fini(&c);
		return CLI_EX_FAIL;
	}
	status_agg_init(&s.agg);
	s.now = (int64_t)time(NULL);
	rl_buf_init(&out, 1 << 20);
	rc = status_read(q, &s, &r);
	queue_close(q);
	if (rc == 0)
		rc = json ? status_format_json(&out, &s.agg, &r, s.now, c.myhostname)
			  : status_format_text(&out, &s.agg, &r, s.now, c.myhostname);
	if (rc == 0)
		fwrite(out.data, 1, out.len, stdout);
	rl_buf_fini(&out);
	status_agg_fini(&s.agg);
	cfg_fini(&c);
	if (rc < 0) {
		fprintf(stderr, "tlsrelay: cannot read queue: %s\n", rl_strerror(rc));
		return CLI_EX_FAIL;
	}
	return fflush(stdout) == 0 ? CLI_EX_OK : CLI_EX_FAIL;
}
