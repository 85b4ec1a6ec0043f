/*
 * queue_rec: the versioned binary envelope record (format in queue_int.h).
 *
 * Pure code: no LMDB, no I/O, no globals.  The decoder reads bytes that
 * came from disk, which another program version, a crash or an operator may
 * have produced, so it treats them as untrusted: a bounds-checked cursor
 * with a sticky error, every length checked against both its limit and the
 * bytes that remain, and no allocation sized by the input before the input
 * has been shown to be large enough to justify it.
 */
#include "queue_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A read cursor; once err is set every read returns zeros and does not
 * move, so callers check err once at the end instead of after each read. */
struct rec_cur {
	const unsigned char *p;
	size_t n;
	size_t off;
	int err;
};

static const unsigned char *cur_take(struct rec_cur *c, size_t len)
{
	const unsigned char *s;

	if (c->err)
		return NULL;
	if (len > c->n - c->off) {
		c->err = RL_EPARSE;
		return NULL;
	}
	s = c->p + c->off;
	c->off += len;
	return s;
}

static uint64_t cur_uint(struct rec_cur *c, size_t width)
{
	const unsigned char *s = cur_take(c, width);
	uint64_t v = 0;

	if (!s)
		return 0;
	while (width--)
		v = v << 8 | s[width];
	return v;
}

/*
 * Read a string of lenbytes-wide length into a new NUL-terminated copy.
 * A NUL inside would make the C string differ from the record (and break
 * the canonical encoding), so it is rejected.  An empty string with
 * empty_null set yields NULL, the "none" of optional fields.
 */
static char *cur_str(struct rec_cur *c, size_t lenbytes, size_t min, size_t max, int empty_null)
{
	uint64_t len = cur_uint(c, lenbytes);
	const unsigned char *s;
	char *out;

	if (!c->err && (len < min || len > max))
		c->err = RL_EPARSE;
	s = cur_take(c, (size_t)len);
	if (!s)
		return NULL;
	if (memchr(s, '\0', (size_t)len)) {
		c->err = RL_EPARSE;
		return NULL;
	}
	if (len == 0 && empty_null)
		return NULL;
	out = malloc((size_t)len + 1);
	if (!out) {
		c->err = -ENOMEM;
		return NULL;
	}
	memcpy(out, s, (size_t)len);
	out[len] = '\0';
	return out;
}

static void rec_head_read(struct rec_cur *c, struct queue_rec_head *h)
{
	uint64_t u;

	h->version = (unsigned)cur_uint(c, 1);
	if (!c->err && h->version == 0)
		c->err = RL_EPARSE;
	if (!c->err && h->version > QUEUE_REC_VERSION)
		c->err = RL_EVERSION;
	h->flags = (uint32_t)cur_uint(c, 4);
	h->attempts = (uint32_t)cur_uint(c, 4);
	/* Unsigned to signed conversion of values above INT64_MAX is
	 * implementation-defined in C11; go through memcpy instead. */
	u = cur_uint(c, 8);
	memcpy(&h->arrival, &u, sizeof(u));
	u = cur_uint(c, 8);
	memcpy(&h->next_attempt, &u, sizeof(u));
	h->size = cur_uint(c, 8);
}

int queue_rec_peek(const void *p, size_t n, struct queue_rec_head *h)
{
	struct rec_cur c = {p, n, 0, 0};

	memset(h, 0, sizeof(*h));
	rec_head_read(&c, h);
	return c.err;
}

static void rec_rcpt_read(struct rec_cur *c, struct queue_rcpt *r)
{
	uint64_t dsnlen;
	const unsigned char *s;

	r->state = (int)cur_uint(c, 1);
	if (!c->err && r->state > QUEUE_RCPT_BOUNCED)
		c->err = RL_EPARSE;
	dsnlen = cur_uint(c, 1);
	if (!c->err && dsnlen > QUEUE_REC_DSN_MAX)
		c->err = RL_EPARSE;
	s = cur_take(c, (size_t)dsnlen);
	if (s && memchr(s, '\0', (size_t)dsnlen))
		c->err = RL_EPARSE;
	if (!c->err)
		memcpy(r->dsn, s, (size_t)dsnlen);
	r->address = cur_str(c, 4, 1, QUEUE_REC_ADDR_MAX, 0);
	r->reason = cur_str(c, 4, 0, QUEUE_REC_REASON_MAX, 1);
}

/*
 * The recipient count comes from the input, so before allocating the array
 * check that the remaining bytes could hold that many of the smallest
 * possible recipients; a 40-byte record cannot make us allocate megabytes.
 */
static struct queue_rcpt *rec_rcpts_read(struct rec_cur *c, size_t *nrcpt)
{
	uint64_t count = cur_uint(c, 4);
	struct queue_rcpt *r;
	size_t i;

	*nrcpt = 0;
	if (!c->err && (count > QUEUE_REC_RCPT_MAX || count > (c->n - c->off) / QUEUE_REC_RCPT_MIN))
		c->err = RL_EPARSE;
	if (c->err || count == 0)
		return NULL;
	r = calloc((size_t)count, sizeof(*r));
	if (!r) {
		c->err = -ENOMEM;
		return NULL;
	}
	/* Count each entry before reading it so a failure part-way still
	 * frees the strings already read. */
	for (i = 0; i < count && !c->err; i++) {
		*nrcpt = i + 1;
		rec_rcpt_read(c, &r[i]);
	}
	return r;
}

int queue_rec_decode(const void *p, size_t n, struct queue_msg **out)
{
	struct rec_cur c = {p, n, 0, 0};
	struct queue_rec_head h;
	struct queue_msg *m;

	*out = NULL;
	rec_head_read(&c, &h);
	if (c.err)
		return c.err;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->flags = h.flags;
	m->attempts = h.attempts;
	m->arrival = h.arrival;
	m->next_attempt = h.next_attempt;
	m->size = h.size;
	m->sender = cur_str(&c, 4, 0, QUEUE_REC_ADDR_MAX, 0);
	m->rcpt = rec_rcpts_read(&c, &m->nrcpt);
	/* Trailing bytes would make two different records decode alike. */
	if (!c.err && c.off != c.n)
		c.err = RL_EPARSE;
	if (c.err) {
		queue_msg_free(m);
		return c.err;
	}
	*out = m;
	return 0;
}

void queue_msg_free(struct queue_msg *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->nrcpt; i++) {
		free(m->rcpt[i].address);
		free(m->rcpt[i].reason);
	}
	free(m->rcpt);
	free(m->sender);
	free(m);
}

/* A write cursor over an rl_buf with a sticky error, the mirror of rec_cur. */
struct rec_put {
	struct rl_buf *b;
	int err;
};

static void put_bytes(struct rec_put *w, const void *p, size_t n)
{
	if (!w->err)
		w->err = rl_buf_append(w->b, p, n);
}

static void put_uint(struct rec_put *w, uint64_t v, size_t width)
{
	unsigned char s[8];
	size_t i;

	for (i = 0; i < width; i++, v >>= 8)
		s[i] = (unsigned char)(v & 0xff);
	put_bytes(w, s, width);
}

static void put_int64(struct rec_put *w, int64_t v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof(u));
	put_uint(w, u, 8);
}

static void put_str(struct rec_put *w, const char *s, size_t len)
{
	put_uint(w, len, 4);
	put_bytes(w, s, len);
}

/* Check every limit before writing anything, so a refused message leaves
 * no partial record behind and the limits match the decoder's exactly. */
static int rec_check(const struct queue_msg *m)
{
	size_t i;

	RL_REQUIRE(m->sender != NULL);
	RL_REQUIRE(m->nrcpt == 0 || m->rcpt != NULL);
	if (strnlen(m->sender, QUEUE_REC_ADDR_MAX + 1) > QUEUE_REC_ADDR_MAX)
		return RL_ETOOBIG;
	if (m->nrcpt > QUEUE_REC_RCPT_MAX)
		return RL_ETOOBIG;
	for (i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];

		RL_REQUIRE(r->address != NULL);
		RL_REQUIRE(r->state >= QUEUE_RCPT_PENDING && r->state <= QUEUE_RCPT_BOUNCED);
		if (r->address[0] == '\0')
			return -EINVAL;
		if (strnlen(r->address, QUEUE_REC_ADDR_MAX + 1) > QUEUE_REC_ADDR_MAX)
			return RL_ETOOBIG;
		if (strnlen(r->dsn, sizeof(r->dsn)) > QUEUE_REC_DSN_MAX)
			return RL_ETOOBIG;
		if (r->reason &&
		    strnlen(r->reason, QUEUE_REC_REASON_MAX + 1) > QUEUE_REC_REASON_MAX)
			return RL_ETOOBIG;
	}
	return 0;
}

int queue_rec_encode(const struct queue_msg *m, struct rl_buf *out)
{
	struct rec_put w = {out, 0};
	size_t start = out->len, i;
	int rc = rec_check(m);

	if (rc < 0)
		return rc;
	put_uint(&w, QUEUE_REC_VERSION, 1);
	put_uint(&w, m->flags, 4);
	put_uint(&w, m->attempts, 4);
	put_int64(&w, m->arrival);
	put_int64(&w, m->next_attempt);
	put_uint(&w, m->size, 8);
	put_str(&w, m->sender, strlen(m->sender));
	put_uint(&w, m->nrcpt, 4);
	for (i = 0; i < m->nrcpt && !w.err; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];
		size_t dsnlen = strnlen(r->dsn, sizeof(r->dsn));

		put_uint(&w, (uint64_t)r->state, 1);
		put_uint(&w, dsnlen, 1);
		put_bytes(&w, r->dsn, dsnlen);
		put_str(&w, r->address, strlen(r->address));
		put_str(&w, r->reason ? r->reason : "", r->reason ? strlen(r->reason) : 0);
	}
	if (w.err) {
		/* Undo the partial append; rl_buf keeps data NUL-terminated. */
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return w.err;
}

int queue_msg_is_scheduled(const struct queue_msg *m)
{
	size_t i;

	if (m->flags & QUEUE_F_HOLD)
		return 0;
	for (i = 0; i < m->nrcpt; i++)
		if (m->rcpt[i].state == QUEUE_RCPT_PENDING ||
		    m->rcpt[i].state == QUEUE_RCPT_DEFERRED)
			return 1;
	return 0;
}

int queue_id_valid(const char *id)
{
	size_t i;

	for (i = 0; i < QUEUE_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
			return 0;
	return id[QUEUE_ID_LEN] == '\0';
}

const char *queue_rcpt_state_name(int state)
{
	/* The one table mapping states to their listing names. */
	static const char *const names[] = {
	    [QUEUE_RCPT_PENDING] = "pending",
	    [QUEUE_RCPT_DEFERRED] = "deferred",
	    [QUEUE_RCPT_SENT] = "sent",
	    [QUEUE_RCPT_BOUNCED] = "bounced",
	};

	if (state < 0 || (size_t)state >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[state];
}
