/*
 * fuzz_queue_rec: the envelope record decoder on arbitrary bytes.
 *
 * Beyond "no crash, no leak, no undefined behaviour", it checks that the
 * format is canonical: whatever decodes must encode back to exactly the
 * input bytes, and decoding that again must give the same message.  A
 * decoder that silently accepted two spellings of one record would fail
 * here (and would let a damaged record look healthy).
 */
#include "queue.h"
#include "queue_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int opt_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static int msg_eq(const struct queue_msg *a, const struct queue_msg *b)
{
	size_t i;

	if (strcmp(a->id, b->id) || strcmp(a->sender, b->sender) || a->arrival != b->arrival ||
	    a->next_attempt != b->next_attempt || a->attempts != b->attempts ||
	    a->flags != b->flags || a->size != b->size || a->nrcpt != b->nrcpt)
		return 0;
	for (i = 0; i < a->nrcpt; i++) {
		const struct queue_rcpt *x = &a->rcpt[i], *y = &b->rcpt[i];

		if (strcmp(x->address, y->address) || x->state != y->state ||
		    strcmp(x->dsn, y->dsn) || !opt_eq(x->reason, y->reason))
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_msg *m = NULL, *m2 = NULL;
	struct queue_rec_head h;
	struct rl_buf b;
	int rc, prc;

	rc = queue_rec_decode(data, size, &m);
	prc = queue_rec_peek(data, size, &h);
	if (rc < 0) {
		if (m || (rc != RL_EPARSE && rc != RL_EVERSION && rc != -ENOMEM))
			abort();
		return 0;
	}
	/* The cheap header read agrees with the full decode. */
	if (prc != 0 || h.next_attempt != m->next_attempt || h.size != m->size ||
	    h.flags != m->flags)
		abort();
	rl_buf_init(&b, QUEUE_REC_MAX);
	if (queue_rec_encode(m, &b) != 0 || b.len != size || memcmp(b.data, data, size) != 0)
		abort();
	if (queue_rec_decode(b.data, b.len, &m2) != 0 || !msg_eq(m, m2))
		abort();
	queue_msg_free(m2);
	queue_msg_free(m);
	rl_buf_fini(&b);
	return 0;
}
