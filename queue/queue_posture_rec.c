/*
 * queue_posture_rec: the TLS posture record (format in
 * queue_posture_int.h) and the pure counting and merging of records.
 *
 * No LMDB, no I/O, no globals, no allocation.  A record read back from
 * disk is untrusted bytes: the decoder checks every count and length
 * against its bound and against what remains, in one straight line.
 */
#include "queue_posture_int.h"

#include <string.h>

static const char *const posture_tls_names[QUEUE_PT_N] = {
    "none", "anonymous", "untrusted", "trusted", "verified", "dane", "mta-sts", "-",
};

int queue_posture_tls_index(const char *word)
{
	if (!word)
		return QUEUE_PT_NONE;
	for (int i = 0; i < QUEUE_PT_NOSESS; i++)
		if (strcmp(word, posture_tls_names[i]) == 0)
			return i;
	return -1;
}

const char *queue_posture_tls_name(int tls)
{
	RL_REQUIRE(tls >= 0 && tls < QUEUE_PT_N);
	return posture_tls_names[tls];
}

static uint32_t sat_add(uint32_t a, uint32_t b)
{
	return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

/* Keep (text, count): add to its entry, else take a free slot, else evict
 * the least frequent entry when this one counts more (its count goes to
 * "other"), else count it as other. */
static void reason_keep(struct queue_posture *p, const char *text, size_t len, uint32_t count)
{
	size_t i, min = 0;

	for (i = 0; i < p->nreason; i++) {
		if (strlen(p->reason[i].text) == len && memcmp(p->reason[i].text, text, len) == 0) {
			p->reason[i].count = sat_add(p->reason[i].count, count);
			return;
		}
		if (p->reason[i].count < p->reason[min].count)
			min = i;
	}
	if (p->nreason < QUEUE_POSTURE_REASONS) {
		min = p->nreason++;
	} else if (p->reason[min].count < count) {
		p->reason_other = sat_add(p->reason_other, p->reason[min].count);
	} else {
		p->reason_other = sat_add(p->reason_other, count);
		return;
	}
	memcpy(p->reason[min].text, text, len);
	p->reason[min].text[len] = '\0';
	p->reason[min].count = count;
}

static void fpr_keep(struct queue_posture *p, const unsigned char *pk, uint32_t count)
{
	size_t i, min = 0;

	for (i = 0; i < p->nfpr; i++) {
		if (memcmp(p->fpr[i].sha256, pk, QUEUE_POSTURE_FPR_LEN) == 0) {
			p->fpr[i].count = sat_add(p->fpr[i].count, count);
			return;
		}
		if (p->fpr[i].count < p->fpr[min].count)
			min = i;
	}
	if (p->nfpr < QUEUE_POSTURE_FPRS) {
		min = p->nfpr++;
	} else if (p->fpr[min].count < count) {
		p->fpr_other = sat_add(p->fpr_other, p->fpr[min].count);
	} else {
		p->fpr_other = sat_add(p->fpr_other, count);
		return;
	}
	memcpy(p->fpr[min].sha256, pk, QUEUE_POSTURE_FPR_LEN);
	p->fpr[min].count = count;
}

void queue_posture_count(struct queue_posture *p, int status, int tls, const char *reason,
			 const unsigned char *pk)
{
	RL_REQUIRE(status >= 0 && status < QUEUE_PS_N && tls >= 0 && tls < QUEUE_PT_N);
	p->count[status][tls] = sat_add(p->count[status][tls], 1);
	if (status != QUEUE_PS_SENT) {
		size_t len = reason ? strnlen(reason, QUEUE_POSTURE_REASON_MAX) : 0;

		if (len == 0)
			reason = "(no reason)", len = strlen(reason);
		reason_keep(p, reason, len, 1);
		return;
	}
	/* Only TLS deliveries have a digest; cleartext has nothing to pin. */
	if (tls == QUEUE_PT_NONE || tls == QUEUE_PT_NOSESS)
		return;
	if (pk)
		fpr_keep(p, pk, 1);
	else
		p->fpr_other = sat_add(p->fpr_other, 1);
}

void queue_posture_merge(struct queue_posture *into, const struct queue_posture *from)
{
	for (int s = 0; s < QUEUE_PS_N; s++)
		for (int t = 0; t < QUEUE_PT_N; t++)
			into->count[s][t] = sat_add(into->count[s][t], from->count[s][t]);
	into->reason_other = sat_add(into->reason_other, from->reason_other);
	for (size_t i = 0; i < from->nreason; i++)
		reason_keep(into, from->reason[i].text, strlen(from->reason[i].text),
			    from->reason[i].count);
	into->fpr_other = sat_add(into->fpr_other, from->fpr_other);
	for (size_t i = 0; i < from->nfpr; i++)
		fpr_keep(into, from->fpr[i].sha256, from->fpr[i].count);
}

static unsigned char *put32(unsigned char *o, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		*o++ = (unsigned char)(v & 0xff);
	return o;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t queue_posture_rec_encode(const struct queue_posture *p, unsigned char *out)
{
	unsigned char *o = out;

	RL_REQUIRE(p->nreason <= QUEUE_POSTURE_REASONS && p->nfpr <= QUEUE_POSTURE_FPRS);
	*o++ = QUEUE_POSTURE_REC_VERSION;
	for (int s = 0; s < QUEUE_PS_N; s++)
		for (int t = 0; t < QUEUE_PT_N; t++)
			o = put32(o, p->count[s][t]);
	o = put32(o, p->reason_other);
	*o++ = (unsigned char)p->nreason;
	for (size_t i = 0; i < p->nreason; i++) {
		size_t len = strnlen(p->reason[i].text, sizeof(p->reason[i].text));

		RL_REQUIRE(p->reason[i].count > 0 && len > 0 && len <= QUEUE_POSTURE_REASON_MAX);
		o = put32(o, p->reason[i].count);
		*o++ = (unsigned char)len;
		memcpy(o, p->reason[i].text, len);
		o += len;
	}
	o = put32(o, p->fpr_other);
	*o++ = (unsigned char)p->nfpr;
	for (size_t i = 0; i < p->nfpr; i++) {
		RL_REQUIRE(p->fpr[i].count > 0);
		o = put32(o, p->fpr[i].count);
		memcpy(o, p->fpr[i].sha256, QUEUE_POSTURE_FPR_LEN);
		o += QUEUE_POSTURE_FPR_LEN;
	}
	return (size_t)(o - out);
}

/* A cursor over the record with a sticky error: once short, every read
 * returns 0 and the decode fails at the end. */
struct rd {
	const unsigned char *p;
	size_t left;
	int bad;
};

static const unsigned char *rd_take(struct rd *r, size_t n)
{
	const unsigned char *p = r->p;

	if (r->bad || r->left < n) {
		r->bad = 1;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static uint32_t rd32(struct rd *r)
{
	const unsigned char *p = rd_take(r, 4);

	return p ? get32(p) : 0;
}

static unsigned rd8(struct rd *r)
{
	const unsigned char *p = rd_take(r, 1);

	return p ? *p : 0;
}

static int reasons_decode(struct rd *r, struct queue_posture *out)
{
	out->reason_other = rd32(r);
	out->nreason = rd8(r);
	if (out->nreason > QUEUE_POSTURE_REASONS)
		return RL_EPARSE;
	for (size_t i = 0; i < out->nreason && !r->bad; i++) {
		size_t len;
		const unsigned char *t;

		out->reason[i].count = rd32(r);
		len = rd8(r);
		if (out->reason[i].count == 0 || len == 0 || len > QUEUE_POSTURE_REASON_MAX)
			return RL_EPARSE;
		t = rd_take(r, len);
		if (!t || memchr(t, '\0', len))
			return RL_EPARSE;
		memcpy(out->reason[i].text, t, len);
		out->reason[i].text[len] = '\0';
	}
	return r->bad ? RL_EPARSE : 0;
}

static int fprs_decode(struct rd *r, struct queue_posture *out)
{
	out->fpr_other = rd32(r);
	out->nfpr = rd8(r);
	if (out->nfpr > QUEUE_POSTURE_FPRS)
		return RL_EPARSE;
	for (size_t i = 0; i < out->nfpr && !r->bad; i++) {
		const unsigned char *d;

		out->fpr[i].count = rd32(r);
		d = rd_take(r, QUEUE_POSTURE_FPR_LEN);
		if (out->fpr[i].count == 0 || !d)
			return RL_EPARSE;
		memcpy(out->fpr[i].sha256, d, QUEUE_POSTURE_FPR_LEN);
	}
	return r->bad ? RL_EPARSE : 0;
}

int queue_posture_rec_decode(const void *p, size_t n, struct queue_posture *out)
{
	struct rd r = {.p = p, .left = n};
	unsigned ver;
	int rc;

	memset(out, 0, sizeof(*out));
	ver = rd8(&r);
	if (r.bad || ver == 0)
		return RL_EPARSE;
	if (ver > QUEUE_POSTURE_REC_VERSION)
		return RL_EVERSION;
	for (int s = 0; s < QUEUE_PS_N; s++)
		for (int t = 0; t < QUEUE_PT_N; t++)
			out->count[s][t] = rd32(&r);
	rc = reasons_decode(&r, out);
	if (rc == 0)
		rc = fprs_decode(&r, out);
	/* Canonical: nothing may follow the digests. */
	if (rc == 0 && r.left != 0)
		rc = RL_EPARSE;
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}
