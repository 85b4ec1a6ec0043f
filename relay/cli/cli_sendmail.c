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
#include "cli_submit.h"
#include "log.h"
#include "msg.h"

#define SENDMAIL_FULLNAME_MAX 256 /* -F: keeps the From line far below 998 octets */
#define SENDMAIL_READ_CHUNK 65536

struct submit {
	const char *from;     /* -f, NULL: the user at myhostname */
	const char *fullname; /* -F */
	int extract;          /* -t */
	int ignore_dots;      /* -i, -oi */
	char **rcpt;
	size_t nrcpt, rcap;
	int smtputf8;         /* an address needs SMTPUTF8 */
	const char *header;   /* with -t: the field being read, for errors */
	const struct cfg *cfg;
};

static int sendmail_usage(void)
{
	fprintf(stderr, "usage: sendmail [-c FILE] [-f FROM] [-F NAME] [-t] [-i] [RCPT...]\n");
	return CLI_EX_USAGE;
}

/* One line on stderr naming the refused address, made printable. */
static void bad_address(const struct submit *s, const char *what, const char *a, size_t n,
			const struct rl_why *why)
{
	char shown[256];

	log_sanitize(shown, sizeof(shown), a, n);
	if (s->header)
		fprintf(stderr, "sendmail: bad address in %s header: \"%s\": %s\n", s->header,
			shown, why->reason ? why->reason : "malformed");
	else
		fprintf(stderr, "sendmail: bad %s address \"%s\": %s\n", what, shown,
			why->reason ? why->reason : "malformed");
}

/*
 * Add one recipient after the listener's own path check (an attacker's
 * CR LF must never reach the queue and from there the SMTP stream).
 */
static int add_rcpt(struct submit *s, const char *addr, size_t len)
{
	struct rl_why why = { 0 };
	struct smtp_path path;
	char *a;

	if (msg_envelope_addr(addr, len, s->cfg->myhostname, 0, &path, &why) < 0) {
		bad_address(s, "recipient", addr, len, &why);
		return RL_EPARSE;
	}
	if (path.literal) {
		/* The listener's rule: no delivery to address literals. */
		why.reason = "address literals are not relayed";
		bad_address(s, "recipient", addr, len, &why);
		return RL_EPARSE;
	}
	if (s->nrcpt == s->rcap) {
		size_t cap = s->rcap ? s->rcap * 2 : 8;
		char **p = realloc(s->rcpt, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->rcpt = p;
		s->rcap = cap;
	}
	a = strdup(path.addr);
	if (!a)
		return -ENOMEM;
	s->smtputf8 |= path.utf8;
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

/* -F goes into a From: line: no CR, LF or other control octet may split it. */
static int fullname_ok(const char *name)
{
	if (strlen(name) > SENDMAIL_FULLNAME_MAX)
		return 0;
	for (const char *p = name; *p; p++) {
		if (((unsigned char)*p < 32 && *p != '\t') || *p == 127)
			return 0;
	}
	return 1;
}

static const char *login_name(void)
{
	struct passwd *pw = getpwuid(getuid());

	return pw && pw->pw_name ? pw->pw_name : "nobody";
}

/*
 * The envelope from the command line: -f (or the user at myhostname),
 * -F, and the recipient arguments, all checked before any input is read.
 */
static int parse_envelope(struct submit *s, int argc, char **argv, struct smtp_path *from)
{
	struct rl_why why = { 0 };
	const char *f = s->from;
	int rc = 0;

	if (s->fullname && !fullname_ok(s->fullname)) {
		fprintf(stderr, "sendmail: bad -F full name: control character or over %d octets\n",
			SENDMAIL_FULLNAME_MAX);
		return RL_EPARSE;
	}
	/* No -f: the login name; "@myhostname" is added below. */
	if (!f)
		f = login_name();
	if (msg_envelope_addr(f, strlen(f), s->cfg->myhostname, 1, from, &why) < 0) {
		bad_address(s, "sender", f, strlen(f), &why);
		return RL_EPARSE;
	}
	s->smtputf8 |= from->utf8;
	for (int i = 0; i < argc && rc == 0; i++)
		rc = add_rcpt(s, argv[i], strlen(argv[i]));
	return rc;
}

/*
 * Read standard input through the bounded reader: memory stays within
 * max_message_size whatever the input (one endless line included).  read(2)
 * rather than stdio, so a "." line typed at a terminal ends at once.
 */
static int read_message(struct submit *s, struct rl_buf *out, int *eightbit)
{
	char *chunk = malloc(SENDMAIL_READ_CHUNK);
	struct msg_body b;
	ssize_t n = 0;
	int rc = chunk ? 0 : -ENOMEM;

	msg_body_init(&b, s->cfg->max_message_size, !s->ignore_dots);
	while (rc == 0 && !b.done) {
		n = read(STDIN_FILENO, chunk, SENDMAIL_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		rc = msg_body_feed(&b, chunk, (size_t)n, out);
	}
	free(chunk);
	if (rc == 0 && n < 0)
		rc = -EIO;
	if (rc == 0)
		rc = msg_body_finish(&b, out);
	/* Make data non-NULL: the header walk below takes it as it is. */
	if (rc == 0)
		rc = rl_buf_append(out, "", 0);
	*eightbit = b.eightbit;
	return rc;
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
		s->header = msg_field_is(&f, "To") ? "To" : msg_field_is(&f, "Cc") ? "Cc" :
			    msg_field_is(&f, "Bcc") ? "Bcc" : NULL;
		if (take && s->header) {
			rc = msg_addr_list(f.value, f.valuelen, add_rcpt_cb, s);
			if (rc < 0)
				return rc;
		}
	}
	s->header = NULL;
	h->end = pos;
	h->blank = pos + 1 < n && p[pos] == '\r' && p[pos + 1] == '\n';
	return 0;
}

/*
 * Compact the header fields in place, without Bcc when recipients came
 * from them; returns their new length.  Writing never overtakes reading:
 * a kept field moves only towards the start.
 */
static size_t compact_headers(struct submit *s, char *p, size_t end)
{
	struct msg_field f;
	size_t pos = 0, w = 0;

	while (msg_header_next(p, end, &pos, &f) == 1) {
		if (s->extract && msg_field_is(&f, "Bcc"))
			continue;
		memmove(p + w, p + f.start, f.end - f.start);
		w += f.end - f.start;
	}
	return w;
}

/*
 * Turn in[0..len) = headers(hend) + body into pre + headers(hlen) + suf +
 * body inside the same buffer: the message is never held twice.
 */
static int splice(struct rl_buf *in, size_t hlen, size_t hend, const char *pre, size_t prelen,
		  const struct rl_buf *suf)
{
	size_t body = in->len - hend, newlen = prelen + hlen + suf->len + body, avail = 0;

	if (newlen > in->limit)
		return RL_ETOOBIG;
	if (newlen > in->len && (!rl_buf_space(in, newlen - in->len, &avail) ||
				 avail < newlen - in->len))
		return -ENOMEM;
	/* The body first: the headers' new place may cover its old one. */
	memmove(in->data + prelen + hlen + suf->len, in->data + hend, body);
	memmove(in->data + prelen, in->data, hlen);
	memcpy(in->data, pre, prelen);
	if (suf->len)
		memcpy(in->data + prelen + hlen, suf->data, suf->len);
	in->len = newlen;
	in->data[newlen] = '\0';
	return 0;
}

/* Add Received, and Date, Message-ID and From where missing, in place. */
/*
 * Our Received field and the missing Date, Message-ID and From.  id makes
 * the Message-ID unique; the Received field names it only when queued is
 * set (the relay gives a message handed over by SMTP an ID of its own).
 */
static int build_message(struct submit *s, const char *sender, const char *id, int queued,
			 struct rl_buf *in)
{
	const char *host = s->cfg->myhostname, *who = sender[0] ? sender : "MAILER-DAEMON";
	char date[64], pre[1024];
	time_t now = time(NULL);
	struct rl_buf suf;
	struct tm tm;
	struct headers h;
	int rc = scan_headers(s, in->data, in->len, &h, 0), prelen;
	size_t hlen;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	prelen = snprintf(pre, sizeof(pre), "Received: by %s (tlsrelay, from userid %u)\r\n\t%s%s%s%s\r\n",
			  host, (unsigned)getuid(), queued ? "id " : "", queued ? id : "",
			  queued ? "; " : "", date);
	if (prelen < 0 || (size_t)prelen >= sizeof(pre))
		return RL_ETOOBIG;
	rl_buf_init(&suf, 4096);
	if (rc == 0 && !h.date)
		rc = rl_buf_printf(&suf, "Date: %s\r\n", date);
	if (rc == 0 && !h.msgid)
		rc = rl_buf_printf(&suf, "Message-ID: <%04d%02d%02d%02d%02d%02d.%s@%s>\r\n",
				   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				   tm.tm_min, tm.tm_sec, id, host);
	if (rc == 0 && !h.from && s->fullname)
		rc = rl_buf_printf(&suf, "From: %s <%s>\r\n", s->fullname, who);
	else if (rc == 0 && !h.from)
		rc = rl_buf_printf(&suf, "From: %s\r\n", who);
	if (rc == 0 && !h.blank)
		rc = rl_buf_puts(&suf, "\r\n");
	if (rc == 0) {
		hlen = compact_headers(s, in->data, h.end);
		rc = splice(in, hlen, h.end, pre, (size_t)prelen, &suf);
	}
	rl_buf_fini(&suf);
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

/*
 * Queue the message: straight into the queue when this user may write it,
 * else through the running relay's listener (cli_submit.c).  Returns the
 * exit code, after printing one line when it is not 0.
 */
static int submit_store(struct submit *s, const char *sender, struct rl_buf *in, int eightbit)
{
	struct queue_rcpt *r = calloc(s->nrcpt, sizeof(*r));
	struct queue_msg m = { .sender = (char *)sender, .nrcpt = s->nrcpt, .rcpt = r };
	struct queue *q = NULL;
	struct rl_why why = { 0 };
	struct timespec ts;
	int rc;

	if (!r) {
		fprintf(stderr, "sendmail: cannot queue message: %s\n", rl_strerror(-ENOMEM));
		return CLI_EX_TEMPFAIL;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	queue_id_make(m.id, ts.tv_sec, ts.tv_nsec / 1000);
	m.arrival = m.next_attempt = ts.tv_sec;
	m.flags = (eightbit ? QUEUE_F_8BITMIME : 0) | (s->smtputf8 ? QUEUE_F_SMTPUTF8 : 0);
	for (size_t i = 0; i < s->nrcpt; i++)
		r[i].address = s->rcpt[i];
	/* Root with `user` set becomes that user first, as every command
	 * that opens the queue does (cli_queue_privs). */
	if (cli_queue_privs(s->cfg, 1) < 0) {
		free(r);
		return CLI_EX_TEMPFAIL;
	}
	rc = queue_open(s->cfg->queue_dir, s->cfg->queue_max_size, 0, &q, &why);
	if (rc == -EACCES || rc == -EPERM) {
		struct cli_submit sub = { s->cfg, sender, s->rcpt, s->nrcpt, in, eightbit,
					  s->smtputf8 };

		free(r);
		rc = build_message(s, sender, m.id, 0, in);
		if (rc < 0) {
			fprintf(stderr, "sendmail: cannot queue message: %s\n", rl_strerror(rc));
			return CLI_EX_TEMPFAIL;
		}
		return cli_submit_smtp(&sub);
	}
	if (rc == 0) {
		rc = build_message(s, sender, m.id, 1, in);
		m.size = in->len;
	}
	if (rc < 0 && why.reason)
		fprintf(stderr, "sendmail: cannot open queue %s: %s: %s\n", s->cfg->queue_dir,
			rl_strerror(rc), why.reason);
	else if (rc == 0) {
		rc = store_once(q, &m, in);
		if (rc == RL_EQFULL && queue_reclaim(q) == 0)
			rc = store_once(q, &m, in);
	}
	queue_close(q);
	free(r);
	if (rc < 0 && !why.reason)
		fprintf(stderr, "sendmail: cannot queue message: %s\n", rl_strerror(rc));
	return rc == 0 ? CLI_EX_OK : CLI_EX_TEMPFAIL;
}

static void submit_fini(struct submit *s)
{
	for (size_t i = 0; i < s->nrcpt; i++)
		free(s->rcpt[i]);
	free(s->rcpt);
}

/*
 * Read the message and take the -t recipients; returns -1 to go on, or
 * the exit code (sysexits, as Postfix's sendmail: EX_UNAVAILABLE for a
 * message over the size limit, EX_DATAERR for bad content).
 */
static int sendmail_input(struct submit *s, struct rl_buf *in, int *eightbit)
{
	struct headers hdr;
	int rc = read_message(s, in, eightbit);

	if (rc == RL_ETOOBIG) {
		fprintf(stderr, "sendmail: message file too big (max_message_size is %llu bytes)\n",
			(unsigned long long)s->cfg->max_message_size);
		return CLI_EX_UNAVAILABLE;
	}
	if (rc == RL_EPARSE) {
		fprintf(stderr, "sendmail: message has lines too long for transport "
				"(RFC 5322 limit is 998 octets)\n");
		return CLI_EX_DATAERR;
	}
	if (rc < 0) {
		fprintf(stderr, "sendmail: cannot read message: %s\n", rl_strerror(rc));
		return rc == -ENOMEM ? CLI_EX_TEMPFAIL : CLI_EX_FAIL;
	}
	/* Addresses are taken before stray CRs turn into spaces, so an
	 * address that held one is refused rather than quietly altered. */
	if (s->extract && (rc = scan_headers(s, in->data, in->len, &hdr, 1)) < 0) {
		if (rc != RL_EPARSE)
			fprintf(stderr, "sendmail: cannot read message: %s\n", rl_strerror(rc));
		return rc == RL_EPARSE ? CLI_EX_DATAERR : CLI_EX_TEMPFAIL;
	}
	if (s->nrcpt == 0) {
		fprintf(stderr, "sendmail: no recipient addresses\n");
		return CLI_EX_USAGE;
	}
	msg_body_clean(in->data, in->len);
	return -1;
}

int cli_sendmail(const char *cfgpath, int argc, char **argv)
{
	struct submit s = { 0 };
	struct smtp_path from;
	struct rl_buf in;
	struct cfg c;
	int first = 0, eightbit = 0, rc;

	if (parse_args(&s, argc, argv, &first) < 0)
		return sendmail_usage();
	if (cli_load_cfg(cfgpath, &c) < 0)
		return CLI_EX_TEMPFAIL;
	s.cfg = &c;
	/* Header additions (Received, Date, ...) may pass the limit a little. */
	rl_buf_init(&in, c.max_message_size + 4096);
	rc = parse_envelope(&s, argc - first, argv + first, &from);
	if (rc < 0)
		rc = rc == RL_EPARSE ? CLI_EX_BADARG : CLI_EX_TEMPFAIL;
	else
		rc = sendmail_input(&s, &in, &eightbit);
	if (rc < 0) {
		rc = submit_store(&s, from.addr, &in, eightbit);
	}
	rl_buf_fini(&in);
	submit_fini(&s);
	cfg_fini(&c);
	return rc;
}
