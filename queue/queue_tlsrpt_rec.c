/*
 * queue_tlsrpt_rec: the TLS-RPT count record (format in queue_int.h), its
 * key, and the pure counting it stores (queue_tlsrpt_add/_merge).
 *
 * Pure code: no LMDB, no I/O, no globals, no allocation.  A record read
 * back from disk is untrusted: a cursor with a sticky error checks every
 * length against its bound and against what remains, and only what
 * encode could have produced decodes.
 */
#include "queue_int.h"

#include <errno.h>
#include <string.h>

static const char *const type_names[QUEUE_TLSRPT_TYPE_END] = {
	[QUEUE_TLSRPT_STS] = "sts",
	[QUEUE_TLSRPT_TLSA] = "tlsa",
	[QUEUE_TLSRPT_NOPOLICY] = "no-policy-found",
};

/* RFC 8460 section 4.3. */
static const char *const result_names[QUEUE_TLSRPT_R_END] = {
	[QUEUE_TLSRPT_R_STARTTLS] = "starttls-not-supported",
	[QUEUE_TLSRPT_R_HOST_MISMATCH] = "certificate-host-mismatch",
	[QUEUE_TLSRPT_R_EXPIRED] = "certificate-expired",
	[QUEUE_TLSRPT_R_NOT_TRUSTED] = "certificate-not-trusted",
	[QUEUE_TLSRPT_R_VALIDATION] = "validation-failure",
	[QUEUE_TLSRPT_R_TLSA_INVALID] = "tlsa-invalid",
	[QUEUE_TLSRPT_R_DNSSEC_INVALID] = "dnssec-invalid",
	[QUEUE_TLSRPT_R_DANE_REQUIRED] = "dane-required",
	[QUEUE_TLSRPT_R_STS_FETCH] = "sts-policy-fetch-error",
	[QUEUE_TLSRPT_R_STS_INVALID] = "sts-policy-invalid",
	[QUEUE_TLSRPT_R_STS_WEBPKI] = "sts-webpki-invalid",
};

const char *queue_tlsrpt_type_name(int type)
{
	return type > 0 && type < QUEUE_TLSRPT_TYPE_END ? type_names[type] : "no-policy-found";
}

const char *queue_tlsrpt_result_name(int result)
{
	return result > 0 && result < QUEUE_TLSRPT_R_END ? result_names[result]
							  : "validation-failure";
}

/* --- counting ---------------------------------------------------------- */

static void copy_text(char *dst, size_t size, const char *src)
{
	size_t n = src ? strnlen(src, size - 1) : 0;

	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* The policy of (type, strings) in r, added if there is room; NULL if not. */
static struct queue_tlsrpt_policy *pol_find(struct queue_tlsrpt *r, int type, const char *strings)
{
	char s[QUEUE_TLSRPT_STR_MAX + 1];
	struct queue_tlsrpt_policy *p;

	copy_text(s, sizeof(s), strings);
	for (size_t i = 0; i < r->npol; i++)
		if (r->pol[i].type == type && strcmp(r->pol[i].strings, s) == 0)
			return &r->pol[i];
	if (r->npol == QUEUE_TLSRPT_POL_MAX)
		return NULL;
	p = &r->pol[r->npol++];
	memset(p, 0, sizeof(*p));
	p->type = type;
	memcpy(p->strings, s, sizeof(s));
	return p;
}

static void pol_add_mx(struct queue_tlsrpt_policy *p, const char *mx)
{
	char m[QUEUE_TLSRPT_HOST_MAX + 1];

	copy_text(m, sizeof(m), mx);
	if (!m[0])
		return;
	for (size_t i = 0; i < p->nmx; i++)
		if (strcmp(p->mx[i], m) == 0)
			return;
	if (p->nmx < QUEUE_TLSRPT_MX_MAX)
		memcpy(p->mx[p->nmx++], m, sizeof(m));
}

/* Add count failures of d's kind to p's details (the summary is the caller's). */
static void pol_add_detail(struct queue_tlsrpt_policy *p, const struct queue_tlsrpt_detail *d)
{
	for (size_t i = 0; i < p->ndet; i++) {
		struct queue_tlsrpt_detail *e = &p->det[i];

		if (e->result == d->result && strcmp(e->sending_ip, d->sending_ip) == 0 &&
		    strcmp(e->mx, d->mx) == 0 && strcmp(e->receiving_ip, d->receiving_ip) == 0) {
			e->count += d->count;
			return;
		}
	}
	if (p->ndet < QUEUE_TLSRPT_DET_MAX)
		p->det[p->ndet++] = *d;
}

void queue_tlsrpt_add(struct queue_tlsrpt *r, const struct queue_tlsrpt_sess *s)
{
	struct queue_tlsrpt_policy *p = pol_find(r, s->type, s->strings);
	struct queue_tlsrpt_detail d = {.result = s->result, .count = 1};

	if (!p)
		return;
	pol_add_mx(p, s->mx);
	if (!s->result) {
		p->ok++;
		return;
	}
	p->fail++;
	copy_text(d.sending_ip, sizeof(d.sending_ip), s->sending_ip);
	copy_text(d.mx, sizeof(d.mx), s->mx);
	copy_text(d.receiving_ip, sizeof(d.receiving_ip), s->receiving_ip);
	pol_add_detail(p, &d);
}

void queue_tlsrpt_merge(struct queue_tlsrpt *dst, const struct queue_tlsrpt *src)
{
	if (!dst->sent)
		dst->sent = src->sent;
	for (size_t i = 0; i < src->npol; i++) {
		const struct queue_tlsrpt_policy *sp = &src->pol[i];
		struct queue_tlsrpt_policy *p = pol_find(dst, sp->type, sp->strings);

		if (!p)
			continue;
		for (size_t k = 0; k < sp->nmx; k++)
			pol_add_mx(p, sp->mx[k]);
		p->ok += sp->ok;
		p->fail += sp->fail;
		for (size_t k = 0; k < sp->ndet; k++)
			pol_add_detail(p, &sp->det[k]);
	}
}

/* --- encoding ---------------------------------------------------------- */

static void le_put(unsigned char *p, uint64_t v, size_t width)
{
	for (size_t i = 0; i < width; i++, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

static int put_int(struct rl_buf *b, uint64_t v, size_t width)
{
	unsigned char tmp[8];

	le_put(tmp, v, width);
	return rl_buf_append(b, tmp, width);
}

/* A string of at most max octets, no NUL: its length (width octets) and octets. */
static int put_str(struct rl_buf *b, const char *s, size_t max, size_t width)
{
	size_t n = strnlen(s, max + 1);
	int rc;

	if (n > max)
		return -EINVAL;
	rc = put_int(b, n, width);
	return rc == 0 && n ? rl_buf_append(b, s, n) : rc;
}

static int put_detail(struct rl_buf *b, const struct queue_tlsrpt_detail *d)
{
	int rc;

	if (d->result <= 0 || d->result >= QUEUE_TLSRPT_R_END)
		return -EINVAL;
	rc = put_int(b, (uint64_t)d->result, 1);
	if (rc == 0)
		rc = put_str(b, d->sending_ip, QUEUE_TLSRPT_IP_MAX, 1);
	if (rc == 0)
		rc = put_str(b, d->mx, QUEUE_TLSRPT_HOST_MAX, 1);
	if (rc == 0)
		rc = put_str(b, d->receiving_ip, QUEUE_TLSRPT_IP_MAX, 1);
	return rc == 0 ? put_int(b, d->count, 8) : rc;
}

static int put_policy(struct rl_buf *b, const struct queue_tlsrpt_policy *p)
{
	int rc;

	if (p->type <= 0 || p->type >= QUEUE_TLSRPT_TYPE_END || p->nmx > QUEUE_TLSRPT_MX_MAX ||
	    p->ndet > QUEUE_TLSRPT_DET_MAX)
		return -EINVAL;
	rc = put_int(b, (uint64_t)p->type, 1);
	if (rc == 0)
		rc = put_str(b, p->strings, QUEUE_TLSRPT_STR_MAX, 2);
	if (rc == 0)
		rc = put_int(b, p->nmx, 1);
	for (size_t i = 0; rc == 0 && i < p->nmx; i++)
		rc = put_str(b, p->mx[i], QUEUE_TLSRPT_HOST_MAX, 1);
	if (rc == 0)
		rc = put_int(b, p->ok, 8);
	if (rc == 0)
		rc = put_int(b, p->fail, 8);
	if (rc == 0)
		rc = put_int(b, p->ndet, 1);
	for (size_t i = 0; rc == 0 && i < p->ndet; i++)
		rc = put_detail(b, &p->det[i]);
	return rc;
}

int queue_tlsrpt_rec_encode(const struct queue_tlsrpt *r, struct rl_buf *out)
{
	size_t start = out->len;
	uint64_t u;
	int rc;

	if (r->sent < 0 || r->npol > QUEUE_TLSRPT_POL_MAX)
		return -EINVAL;
	memcpy(&u, &r->sent, sizeof(u));
	rc = put_int(out, QUEUE_TLSRPT_REC_VERSION, 1);
	if (rc == 0)
		rc = put_int(out, u, 8);
	if (rc == 0)
		rc = put_int(out, r->npol, 1);
	for (size_t i = 0; rc == 0 && i < r->npol; i++)
		rc = put_policy(out, &r->pol[i]);
	if (rc < 0) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return rc;
}

/* --- decoding: a cursor with a sticky error ----------------------------- */

struct cur {
	const unsigned char *p;
	size_t left;
	int bad;
};

static uint64_t get_int(struct cur *c, size_t width)
{
	uint64_t v = 0;

	if (c->bad || c->left < width) {
		c->bad = 1;
		return 0;
	}
	for (size_t i = width; i-- > 0;)
		v = v << 8 | c->p[i];
	c->p += width;
	c->left -= width;
	return v;
}

static void get_str(struct cur *c, char *out, size_t max, size_t width)
{
	size_t n = (size_t)get_int(c, width);

	out[0] = '\0';
	if (c->bad || n > max || n > c->left || memchr(c->p, '\0', n)) {
		c->bad = 1;
		return;
	}
	memcpy(out, c->p, n);
	out[n] = '\0';
	c->p += n;
	c->left -= n;
}

static void get_detail(struct cur *c, struct queue_tlsrpt_detail *d)
{
	d->result = (int)get_int(c, 1);
	if (d->result <= 0 || d->result >= QUEUE_TLSRPT_R_END)
		c->bad = 1;
	get_str(c, d->sending_ip, QUEUE_TLSRPT_IP_MAX, 1);
	get_str(c, d->mx, QUEUE_TLSRPT_HOST_MAX, 1);
	get_str(c, d->receiving_ip, QUEUE_TLSRPT_IP_MAX, 1);
	d->count = get_int(c, 8);
}

static void get_policy(struct cur *c, struct queue_tlsrpt_policy *p)
{
	p->type = (int)get_int(c, 1);
	if (p->type <= 0 || p->type >= QUEUE_TLSRPT_TYPE_END)
		c->bad = 1;
	get_str(c, p->strings, QUEUE_TLSRPT_STR_MAX, 2);
	p->nmx = (size_t)get_int(c, 1);
	if (p->nmx > QUEUE_TLSRPT_MX_MAX)
		c->bad = 1;
	for (size_t i = 0; !c->bad && i < p->nmx; i++)
		get_str(c, p->mx[i], QUEUE_TLSRPT_HOST_MAX, 1);
	p->ok = get_int(c, 8);
	p->fail = get_int(c, 8);
	p->ndet = (size_t)get_int(c, 1);
	if (p->ndet > QUEUE_TLSRPT_DET_MAX)
		c->bad = 1;
	for (size_t i = 0; !c->bad && i < p->ndet; i++)
		get_detail(c, &p->det[i]);
}

int queue_tlsrpt_rec_decode(const void *p, size_t n, struct queue_tlsrpt *out)
{
	struct cur c = {p, n, 0};
	uint64_t ver, u;

	memset(out, 0, sizeof(*out));
	ver = get_int(&c, 1);
	if (!c.bad && ver > QUEUE_TLSRPT_REC_VERSION)
		return RL_EVERSION;
	if (ver == 0)
		c.bad = 1;
	u = get_int(&c, 8);
	memcpy(&out->sent, &u, sizeof(u));
	out->npol = (size_t)get_int(&c, 1);
	if (out->sent < 0 || out->npol > QUEUE_TLSRPT_POL_MAX)
		c.bad = 1;
	for (size_t i = 0; !c.bad && i < out->npol; i++)
		get_policy(&c, &out->pol[i]);
	if (c.bad || c.left != 0) {
		memset(out, 0, sizeof(*out));
		return RL_EPARSE;
	}
	return 0;
}

int queue_tlsrpt_day_valid(const char *day, size_t len)
{
	if (len != QUEUE_TLSRPT_DAY_LEN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		int dash = i == 4 || i == 7;

		if (dash ? day[i] != '-' : (day[i] < '0' || day[i] > '9'))
			return 0;
	}
	return 1;
}

int queue_tlsrpt_key(const char *day, const char *domain, size_t dlen, char *out, size_t *len)
{
	size_t n;
	int rc;

	*len = 0;
	out[0] = '\0';
	if (!queue_tlsrpt_day_valid(day, strnlen(day, QUEUE_TLSRPT_DAY_LEN + 1)))
		return -EINVAL;
	rc = queue_sts_key(domain, dlen, out + QUEUE_TLSRPT_DAY_LEN + 1, &n);
	if (rc < 0) {
		out[0] = '\0';
		return rc;
	}
	memcpy(out, day, QUEUE_TLSRPT_DAY_LEN);
	out[QUEUE_TLSRPT_DAY_LEN] = ':';
	*len = QUEUE_TLSRPT_DAY_LEN + 1 + n;
	return 0;
}
