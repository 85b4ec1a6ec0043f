/*
 * cli_sendmail: sendmail-compatible local submission.  Reads the message
 * from standard input, adds the headers Postfix's cleanup would add, and
 * writes it to the queue itself; exits 0 only after the commit is synced.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "msg.h"

struct submit {
	const char *from;     /* -f, NULL: the user at myhostname */
	const char *fullname; /* -F */
	int extract;          /* -t */
	int ignore_dots;      /* -i, -oi */
	char **rcpt;
	size_t nrcpt, rcap;
	const struct cfg *cfg;
};

static int sendmail_usage(void)
{
	fprintf(stderr, "usage: sendmail [-c FILE] [-f FROM] [-F NAME] [-t] [-i] [RCPT...]\n");
	return CLI_EX_USAGE;
}

/* Add one recipient; a bare local name gets "@myhostname" as in Postfix. */
static int add_rcpt(struct submit *s, const char *addr, size_t len)
{
	char *a;

	while (len && (*addr == '<' || *addr == ' ')) addr++, len--;
	while (len && (addr[len - 1] == '>' || addr[len - 1] == ' ')) len--;
	if (len == 0)
		return 0;
	if (s->nrcpt == s->rcap) {
		size_t cap = s->rcap ? s->rcap * 2 : 8;
		char **p = realloc(s->rcpt, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->rcpt = p;
		s->rcap = cap;
	}
	a = malloc(len + strlen(s->cfg->myhostname) + 2);
	if (!a)
		return -ENOMEM;
	memcpy(a, addr, len);
	a[len] = '\0';
	if (!memchr(addr, '@', len))
		snprintf(a + len, strlen(s->cfg->myhostname) + 2, "@%s", s->cfg->myhostname);
	s->rcpt[s->nrcpt++] = a;
	return 0;
}

static int add_rcpt_cb(void *arg, const char *addr, size_t len)
{
	return add_rcpt(arg, addr, len);
}

/* Options as Postfix's sendmail takes them; unknown -o and -b* are ignored. */
static int parse_args(struct submit *s, int argc, char **argv, int *first)
{
	int i;

	for (i = 0; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[1] == 'f' || a[1] == 'F' || a[1] == 'r') {
			const char *v = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);

			if (!v)
				return -1;
			if (a[1] == 'F')
				s->fullname = v;
			else
				s->from = v;
		} else if (strcmp(a, "-t") == 0) {
			s->extract = 1;
		} else if (strcmp(a, "-i") == 0 || strcmp(a, "-oi") == 0) {
			s->ignore_dots = 1;
		} else if (a[1] == 'o' || strcmp(a, "-bm") == 0 || strcmp(a, "-v") == 0 ||
			   strncmp(a, "-N", 2) == 0 || strncmp(a, "-B", 2) == 0) {
			/* Delivery-mode and other options have no meaning here. */
		} else {
			return -1;
		}
	}
	*first = i;
	return 0;
}

/*
 * Read standard input into CRLF lines.  Without -i a line holding a single
 * dot ends the message (sendmail's historical rule).
 */
static int read_message(struct submit *s, struct rl_buf *out, int *eightbit)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	while (rc == 0 && (n = getline(&line, &cap, stdin)) > 0) {
		size_t len = (size_t)n;

		if (line[len - 1] == '\n')
			len--;
		if (len && line[len - 1] == '\r')
			len--;
		if (!s->ignore_dots && len == 1 && line[0] == '.')
			break;
		for (size_t i = 0; i < len; i++)
			*eightbit |= (unsigned char)line[i] >= 0x80;
		rc = rl_buf_append(out, line, len);
		if (rc == 0)
			rc = rl_buf_append(out, "\r\n", 2);
	}
	free(line);
	if (rc == 0 && ferror(stdin))
		rc = -EIO;
	return rc;
}

static const char *login_name(void)
{
	struct passwd *pw = getpwuid(getuid());

	return pw && pw->pw_name ? pw->pw_name : "nobody";
}

struct headers {
	int from, date, msgid;
	size_t end;  /* end of the header fields */
	int blank;   /* an empty line follows them */
};

/* Walk the header fields: note what is there; with take, the -t recipients. */
static int scan_headers(struct submit *s, const char *p, size_t n, struct headers *h, int take)
{
	struct msg_field f;
	size_t pos = 0;
	int rc;

	memset(h, 0, sizeof(*h));
	while ((rc = msg_header_next(p, n, &pos, &f)) == 1) {
		h->from |= msg_field_is(&f, "From");
		h->date |= msg_field_is(&f, "Date");
		h->msgid |= msg_field_is(&f, "Message-ID");
		if (take && (msg_field_is(&f, "To") || msg_field_is(&f, "Cc") ||
				   msg_field_is(&f, "Bcc"))) {
			rc = msg_addr_list(f.value, f.valuelen, add_rcpt_cb, s);
			if (rc < 0)
				return rc;
		}
	}
	h->end = pos;
	h->blank = pos + 1 < n && p[pos] == '\r' && p[pos + 1] == '\n';
	return 0;
}

/* Copy the header fields, without Bcc when recipients came from them. */
static int copy_headers(struct submit *s, const char *p, size_t end, struct rl_buf *out)
{
	struct msg_field f;
	size_t pos = 0;
	int rc = 0;

	while (rc == 0 && msg_header_next(p, end, &pos, &f) == 1) {
		if (s->extract && msg_field_is(&f, "Bcc"))
			continue;
		rc = rl_buf_append(out, p + f.start, f.end - f.start);
	}
	return rc;
}

static int build_message(struct submit *s, const char *sender, const char *id,
			 const struct rl_buf *in, struct rl_buf *out)
{
	const char *host = s->cfg->myhostname;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	struct headers h;
	int rc = scan_headers(s, in->data ? in->data : "", in->len, &h, 0);

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (rc == 0)
		rc = rl_buf_printf(out, "Received: by %s (tlsrelay, from userid %u)\r\n\tid %s; %s\r\n",
				   host, (unsigned)getuid(), id, date);
	if (rc == 0)
		rc = copy_headers(s, in->data ? in->data : "", h.end, out);
	if (rc == 0 && !h.date)
		rc = rl_buf_printf(out, "Date: %s\r\n", date);
	if (rc == 0 && !h.msgid)
		rc = rl_buf_printf(out, "Message-ID: <%04d%02d%02d%02d%02d%02d.%s@%s>\r\n",
				   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				   tm.tm_min, tm.tm_sec, id, host);
	if (rc == 0 && !h.from && s->fullname)
		rc = rl_buf_printf(out, "From: %s <%s>\r\n", s->fullname, sender[0] ? sender : "MAILER-DAEMON");
	else if (rc == 0 && !h.from)
		rc = rl_buf_printf(out, "From: %s\r\n", sender[0] ? sender : "MAILER-DAEMON");
	if (rc == 0 && !h.blank)
		rc = rl_buf_puts(out, "\r\n");
	if (rc == 0)
		rc = rl_buf_append(out, in->data + h.end, in->len - h.end);
	return rc;
}

/* One write transaction: the message and a nudge for the running relay. */
static int store_once(struct queue *q, struct queue_msg *m, const struct rl_buf *content)
{
	struct queue_txn *t;
	int rc = queue_txn_begin(q, 1, &t);

	if (rc < 0)
		return rc;
	rc = queue_msg_insert(t, m, content->data, content->len);
	if (rc == 0)
		rc = queue_ctl_bump(t);
	if (rc < 0) {
		queue_txn_abort(t);
		return rc;
	}
	return queue_txn_commit(t);
}

static int submit_store(struct submit *s, const char *sender, struct rl_buf *in, int eightbit)
{
	struct queue_rcpt *r = calloc(s->nrcpt, sizeof(*r));
	struct queue_msg m = { .sender = (char *)sender, .nrcpt = s->nrcpt, .rcpt = r };
	struct rl_buf content;
	struct queue *q = NULL;
	struct timespec ts;
	int rc;

	if (!r)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &ts);
	queue_id_make(m.id, ts.tv_sec, ts.tv_nsec / 1000);
	m.arrival = m.next_attempt = ts.tv_sec;
	m.flags = eightbit ? QUEUE_F_8BITMIME : 0;
	for (size_t i = 0; i < s->nrcpt; i++)
		r[i].address = s->rcpt[i];
	rl_buf_init(&content, s->cfg->max_message_size + 4096);
	rc = build_message(s, sender, m.id, in, &content);
	m.size = content.len;
	if (rc == 0 && (rc = cli_open_queue(s->cfg, 0, &q)) == 0) {
		rc = store_once(q, &m, &content);
		if (rc == RL_EQFULL && queue_reclaim(q) == 0)
			rc = store_once(q, &m, &content);
	}
	queue_close(q);
	rl_buf_fini(&content);
	free(r);
	return rc;
}

static void submit_fini(struct submit *s)
{
	for (size_t i = 0; i < s->nrcpt; i++)
		free(s->rcpt[i]);
	free(s->rcpt);
}

int cli_sendmail(const char *cfgpath, int argc, char **argv)
{
	struct submit s = { 0 };
	struct headers hdr;
	struct rl_buf in;
	struct cfg c;
	char sender[1100];
	int first = 0, eightbit = 0, rc;

	if (parse_args(&s, argc, argv, &first) < 0)
		return sendmail_usage();
	if (cli_load_cfg(cfgpath, &c) < 0)
		return CLI_EX_TEMPFAIL;
	s.cfg = &c;
	for (int i = first; i < argc; i++) {
		if (add_rcpt(&s, argv[i], strlen(argv[i])) < 0)
			break;
	}
	if (!s.from)
		snprintf(sender, sizeof(sender), "%s@%s", login_name(), c.myhostname);
	else if (strcmp(s.from, "<>") == 0)
		sender[0] = '\0';
	else
		snprintf(sender, sizeof(sender), "%s", s.from);
	rl_buf_init(&in, c.max_message_size);
	rc = read_message(&s, &in, &eightbit);
	if (rc == RL_ETOOBIG) {
		fprintf(stderr, "sendmail: message exceeds max_message_size (%llu bytes)\n",
			(unsigned long long)c.max_message_size);
		rc = CLI_EX_FAIL;
	} else if (rc < 0) {
		fprintf(stderr, "sendmail: cannot read message: %s\n", rl_strerror(rc));
		rc = CLI_EX_FAIL;
	} else if (s.extract && scan_headers(&s, in.data ? in.data : "", in.len, &hdr, 1) < 0) {
		fprintf(stderr, "sendmail: out of memory\n");
		rc = CLI_EX_FAIL;
	} else if (s.nrcpt == 0) {
		fprintf(stderr, "sendmail: no recipient addresses\n");
		rc = CLI_EX_USAGE;
	} else {
		rc = submit_store(&s, sender, &in, eightbit);
		if (rc < 0)
			fprintf(stderr, "sendmail: cannot queue message: %s\n", rl_strerror(rc));
		rc = rc == 0 ? CLI_EX_OK : CLI_EX_TEMPFAIL;
	}
	rl_buf_fini(&in);
	submit_fini(&s);
	cfg_fini(&c);
	return rc;
}
