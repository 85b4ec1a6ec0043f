/*
 * cli_queue: mailq and `queue show|flush|hold|release|delete`, working on
 * the LMDB queue directly, beside the running relay (LMDB serialises
 * writers across processes).  Changes bump the queue's control counter so
 * the relay notices them without scanning.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mailq.h"
#include "priv.h"

int cli_load_cfg(const char *path, struct cfg *c)
{
	struct cfg_error err;

	if (cfg_load(c, path, &err) < 0) {
		fprintf(stderr, "tlsrelay: %s\n", err.msg);
		cfg_fini(c);
		return -1;
	}
	return 0;
}

/*
 * Run as root with `user` set, a command that touches the queue becomes
 * that user first, for good (as Postfix's postsuper runs as mail_owner):
 * whatever it creates there (the directory, LMDB's lock file) is then the
 * user's, and the relay, running as the user, can still open it.  The
 * same ownership checks as at the relay's start come first.  A read-only
 * command (create 0: mailq, status, queue show, report, tlsrpt show)
 * changes no owner or mode: a queue of root's it reads as root.
 */
int cli_queue_privs(const struct cfg *c, int create)
{
	char err[1024];
	int rc;

	if (!c->user || geteuid() != 0)
		return 0;
	rc = priv_queue_own(c->queue_dir, c->user_uid, c->user_gid, create, err, sizeof(err));
	if (rc == PRIV_QUEUE_ROOT)
		return 0;
	if (rc < 0 || priv_drop(c->user, c->user_uid, c->user_gid, err, sizeof(err)) < 0 ||
	    priv_queue_check(c->queue_dir, c->user_uid, create, err, sizeof(err)) < 0) {
		fprintf(stderr, "tlsrelay: %s\n", err);
		return -1;
	}
	return 0;
}

int cli_open_queue(const struct cfg *c, unsigned flags, struct queue **q)
{
	struct rl_why why = { 0 };
	int rc;

	*q = NULL;
	if (cli_queue_privs(c, !(flags & QUEUE_O_RDONLY)) < 0)
		return RL_ECONFIG;
	rc = queue_open(c->queue_dir, c->queue_max_size, flags, q, &why);
	if (rc < 0)
		fprintf(stderr, "tlsrelay: cannot open queue %s: %s%s%s\n", c->queue_dir,
			rl_strerror(rc), why.reason ? ": " : "", why.reason ? why.reason : "");
	return rc;
}

struct listing {
	struct queue_txn *t;
	struct rl_buf out;
	int json;
	uint64_t count, bytes;
	int rc;
};

/* Is a relay process delivering this message right now? */
int cli_msg_active(struct queue_txn *t, const char *id)
{
	uint32_t pid;

	if (queue_active_get(t, id, &pid) < 0)
		return 0;
	/* A mark left by a relay that died is stale. */
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static int list_one(void *arg, const struct queue_msg *m)
{
	struct listing *l = arg;
	int rc, active = cli_msg_active(l->t, m->id);

	if (!l->json && l->count == 0)
		rc = rl_buf_puts(&l->out, "-Queue ID-  --Size-- ----Arrival Time---- "
					  "-Sender/Recipient-------\n");
	else
		rc = 0;
	if (rc == 0)
		rc = l->json ? mailq_format_json(&l->out, m, active) :
			       mailq_format_text(&l->out, m, active);
	if (rc == 0 && !l->json)
		rc = rl_buf_puts(&l->out, "\n");
	l->count++;
	l->bytes += m->size;
	/* Write as we go: a million messages need not sit in memory. */
	if (rc == 0 && l->out.len > 65536) {
		fwrite(l->out.data, 1, l->out.len, stdout);
		rl_buf_reset(&l->out);
	}
	l->rc = rc;
	return rc;
}

int cli_mailq(const char *cfgpath, int argc, char **argv)
{
	struct listing l = { .json = 0 };
	struct queue *q = NULL;
	struct queue_txn *t = NULL;
	struct cfg c;
	int rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0) {
			l.json = 1;
			continue;
		}
		fprintf(stderr, "usage: tlsrelay mailq [-c FILE] [--json]\n");
		return CLI_EX_USAGE;
	}
	if (cli_load_cfg(cfgpath, &c) < 0)
		return CLI_EX_FAIL;
	rc = cli_open_queue(&c, QUEUE_O_RDONLY, &q);
	cfg_fini(&c);
	if (rc < 0)
		return CLI_EX_FAIL;
	rl_buf_init(&l.out, SIZE_MAX / 2);
	rc = queue_txn_begin(q, 0, &t);
	l.t = t;
	if (rc == 0)
		rc = queue_foreach(t, list_one, &l);
	queue_txn_abort(t);
	queue_close(q);
	if (rc == 0 && !l.json && l.count == 0)
		rc = rl_buf_puts(&l.out, "Mail queue is empty\n");
	else if (rc == 0 && !l.json)
		rc = mailq_format_trailer(&l.out, l.bytes, l.count);
	if (l.out.len)
		fwrite(l.out.data, 1, l.out.len, stdout);
	rl_buf_fini(&l.out);
	if (rc < 0) {
		fprintf(stderr, "tlsrelay: cannot read queue: %s\n", rl_strerror(rc));
		return CLI_EX_FAIL;
	}
	return fflush(stdout) == 0 ? CLI_EX_OK : CLI_EX_FAIL;
}

static int valid_id(const char *id)
{
	if (strlen(id) != QUEUE_ID_LEN)
		return 0;
	for (const char *p = id; *p; p++) {
		if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F')))
			return 0;
	}
	return 1;
}

static void show_time(const char *label, int64_t when)
{
	time_t t = (time_t)when;
	char buf[64];
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%a %b %e %H:%M:%S %Y", &tm);
	printf("%s: %s\n", label, buf);
}

/*
 * One envelope line: label, then a, b and c with any control octet shown
 * as '?' (mailq_text_string), so an old record holding CR LF cannot forge
 * lines of its own.
 */
static void show_field(const char *label, const char *a, const char *b, const char *c,
		       const char *end)
{
	struct rl_buf line;
	int rc;

	rl_buf_init(&line, 1 << 20);
	rc = mailq_text_string(&line, a);
	if (rc == 0)
		rc = mailq_text_string(&line, b);
	if (rc == 0)
		rc = mailq_text_string(&line, c);
	printf("%s%s%s\n", label, rc == 0 && line.data ? line.data : "?", end);
	rl_buf_fini(&line);
}

/* Print content with CRLF shown as LF, like postcat. */
static void show_body(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			continue;
		putchar(p[i]);
	}
	if (n && p[n - 1] != '\n')
		putchar('\n');
}

static int show_msg(struct queue_txn *t, const char *id)
{
	struct queue_msg *m = NULL;
	const void *body;
	size_t len;
	int rc = queue_msg_load(t, id, &m);

	if (rc == 0)
		rc = queue_body_get(t, id, &body, &len);
	if (rc < 0) {
		queue_msg_free(m);
		return rc;
	}
	printf("*** ENVELOPE RECORDS %s ***\n", id);
	printf("queue_name: %s\n", mailq_queue_name(m, cli_msg_active(t, id)));
	printf("message_size: %llu\n", (unsigned long long)m->size);
	show_time("message_arrival_time", m->arrival);
	show_field("sender: ", m->sender, "", "", "");
	/* RFC 8689: said only when set, so other listings stay as they were. */
	if (m->flags & QUEUE_F_REQUIRETLS)
		printf("requiretls: yes (only over verified TLS to a server that offers "
		       "REQUIRETLS)\n");
	/* delay_warning_time: likewise said only once the warning went out. */
	if (m->flags & QUEUE_F_WARNED)
		printf("delay_warning: sent (the sender was told once)\n");
	printf("attempts: %u\n", m->attempts);
	if (!(m->flags & QUEUE_F_HOLD) && m->attempts)
		show_time("next_attempt_time", m->next_attempt);
	for (size_t i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];
		char state[64];

		snprintf(state, sizeof(state), " (%s%s%s%s", queue_rcpt_state_name(r->state),
			 r->dsn[0] ? ", dsn=" : "", r->dsn, r->reason ? ": " : "");
		show_field("recipient: ", r->address, state, r->reason ? r->reason : "", ")");
	}
	printf("*** MESSAGE CONTENTS %s ***\n", id);
	show_body(body, len);
	printf("*** MESSAGE FILE END %s ***\n", id);
	queue_msg_free(m);
	return 0;
}

enum ctl_op { CTL_HOLD, CTL_RELEASE, CTL_DELETE, CTL_FLUSH };

/* Does message m have a recipient at domain d (case-insensitive)? */
static int msg_has_domain(const struct queue_msg *m, const char *d)
{
	for (size_t i = 0; i < m->nrcpt; i++) {
		const char *at = strrchr(m->rcpt[i].address, '@');

		if (at && strcasecmp(at + 1, d) == 0 && mailq_rcpt_listed(&m->rcpt[i]))
			return 1;
	}
	return 0;
}

/* Apply op to one message; returns 1 if it changed, 0 if not, < 0 error. */
static int ctl_apply(struct queue_txn *t, const char *id, int op, const char *domain)
{
	struct queue_msg *m = NULL;
	int rc = queue_msg_load(t, id, &m), changed = 0;

	if (rc < 0)
		return rc;
	if (op == CTL_DELETE) {
		rc = queue_msg_delete(t, id);
		changed = 1;
	} else if (op == CTL_HOLD && !(m->flags & QUEUE_F_HOLD)) {
		m->flags |= QUEUE_F_HOLD;
		changed = 1;
	} else if (op == CTL_RELEASE && (m->flags & QUEUE_F_HOLD)) {
		m->flags &= ~(uint32_t)QUEUE_F_HOLD;
		m->next_attempt = time(NULL);
		changed = 1;
	} else if (op == CTL_FLUSH && !(m->flags & QUEUE_F_HOLD) &&
		   (!domain || msg_has_domain(m, domain))) {
		m->next_attempt = time(NULL);
		changed = 1;
	}
	if (rc == 0 && changed && op != CTL_DELETE)
		rc = queue_msg_update(t, m);
	queue_msg_free(m);
	return rc < 0 ? rc : changed;
}

struct ctl_all {
	char (*ids)[QUEUE_ID_SIZE];
	size_t n, cap;
};

static int collect_id(void *arg, const struct queue_msg *m)
{
	struct ctl_all *a = arg;

	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		void *p = realloc(a->ids, cap * sizeof(*a->ids));

		if (!p)
			return -ENOMEM;
		a->ids = p;
		a->cap = cap;
	}
	memcpy(a->ids[a->n++], m->id, QUEUE_ID_SIZE);
	return 0;
}

#define CTL_BATCH 1000 /* messages per write transaction for ALL */

/* Apply op to ids in batches; counts the changed ones in *changed. */
static int ctl_run(struct queue *q, char (*ids)[QUEUE_ID_SIZE], size_t n, int op,
		   const char *domain, int missing_ok, size_t *changed)
{
	for (size_t i = 0; i < n;) {
		struct queue_txn *t;
		size_t end = i + CTL_BATCH < n ? i + CTL_BATCH : n;
		int rc = queue_txn_begin(q, 1, &t);

		for (; rc == 0 && i < end; i++) {
			rc = ctl_apply(t, ids[i], op, domain);
			if (rc == RL_ENOTFOUND && missing_ok)
				rc = 0; /* delivered or deleted meanwhile */
			if (rc > 0)
				(*changed)++, rc = 0;
		}
		if (rc == 0)
			rc = queue_ctl_bump(t);
		if (rc == 0 && op == CTL_FLUSH)
			rc = queue_flush_bump(t);
		if (rc < 0) {
			queue_txn_abort(t);
			return rc;
		}
		rc = queue_txn_commit(t);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static const char *const ctl_done_text[] = {
	[CTL_HOLD] = "Placed on hold", [CTL_RELEASE] = "Released from hold",
	[CTL_DELETE] = "Deleted", [CTL_FLUSH] = "Flushed",
};

static int ctl_main(struct queue *q, int op, const char *target, const char *domain)
{
	struct ctl_all all = { 0 };
	struct queue_txn *t;
	size_t changed = 0;
	int rc;

	if (target) {
		char one[1][QUEUE_ID_SIZE];

		rl_strlcpy(one[0], target, QUEUE_ID_SIZE);
		rc = ctl_run(q, one, 1, op, domain, 0, &changed);
	} else {
		rc = queue_txn_begin(q, 0, &t);
		if (rc == 0) {
			rc = queue_foreach(t, collect_id, &all);
			queue_txn_abort(t);
		}
		if (rc == 0)
			rc = ctl_run(q, all.ids, all.n, op, domain, 1, &changed);
		free(all.ids);
	}
	if (rc == RL_ENOTFOUND) {
		fprintf(stderr, "tlsrelay: %s: no such message in queue\n", target);
		return CLI_EX_FAIL;
	}
	if (rc < 0) {
		fprintf(stderr, "tlsrelay: cannot change queue: %s\n", rl_strerror(rc));
		return CLI_EX_FAIL;
	}
	fprintf(stderr, "tlsrelay: %s: %zu message%s\n", ctl_done_text[op], changed,
		changed == 1 ? "" : "s");
	return CLI_EX_OK;
}

static int queue_usage(void)
{
	fprintf(stderr, "usage: tlsrelay queue show ID\n"
			"       tlsrelay queue flush [ID | --domain DOMAIN]\n"
			"       tlsrelay queue hold|release|delete ID|ALL\n");
	return CLI_EX_USAGE;
}

/* Parse the subcommand's arguments: op, target ID (NULL = all), domain. */
static int queue_args(int argc, char **argv, int *op, const char **id, const char **domain)
{
	static const char *const names[] = { "hold", "release", "delete", "flush" };

	*op = -1;
	for (int i = 0; i < 4; i++) {
		if (strcmp(argv[0], names[i]) == 0)
			*op = i;
	}
	*id = NULL;
	*domain = NULL;
	if (*op == CTL_FLUSH && argc == 3 && strcmp(argv[1], "--domain") == 0 && argv[2][0]) {
		*domain = argv[2];
		return 0;
	}
	if (*op == CTL_FLUSH && argc == 1)
		return 0;
	if (*op < 0 || argc != 2)
		return -1;
	if (strcmp(argv[1], "ALL") != 0)
		*id = argv[1];
	return 0;
}

int cli_queue(const char *cfgpath, int argc, char **argv)
{
	const char *id, *domain;
	struct queue *q = NULL;
	struct queue_txn *t;
	struct cfg c;
	int op, rc, show = argc == 2 && strcmp(argv[0], "show") == 0;

	if (argc < 1 || (!show && queue_args(argc, argv, &op, &id, &domain) < 0))
		return queue_usage();
	if (show)
		id = argv[1];
	if (id && !valid_id(id)) {
		fprintf(stderr, "tlsrelay: %s: not a queue ID\n", id);
		return CLI_EX_FAIL;
	}
	if (cli_load_cfg(cfgpath, &c) < 0)
		return CLI_EX_FAIL;
	rc = cli_open_queue(&c, show ? QUEUE_O_RDONLY : 0, &q);
	cfg_fini(&c);
	if (rc < 0)
		return CLI_EX_FAIL;
	if (!show) {
		rc = ctl_main(q, op, id, domain);
		queue_close(q);
		return rc;
	}
	rc = queue_txn_begin(q, 0, &t);
	if (rc == 0) {
		rc = show_msg(t, id);
		queue_txn_abort(t);
	}
	queue_close(q);
	if (rc == RL_ENOTFOUND)
		fprintf(stderr, "tlsrelay: %s: no such message in queue\n", id);
	else if (rc < 0)
		fprintf(stderr, "tlsrelay: cannot read queue: %s\n", rl_strerror(rc));
	return rc < 0 ? CLI_EX_FAIL : CLI_EX_OK;
}
