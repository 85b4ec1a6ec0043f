/*
 * fuzz_queue_tlsrpt: the TLS-RPT count record decoder on arbitrary bytes
 * (a record read back from disk may be damaged), and merging what it
 * accepts.
 *
 * Beyond "no crash, no undefined behaviour": an accepted record stays
 * within its bounds, the format is canonical (encoding it again gives
 * exactly the input), and merging it into itself keeps the bounds.
 */
#include "queue.h"
#include "queue_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_bounds(const struct queue_tlsrpt *r)
{
	if (r->sent < 0 || r->npol > QUEUE_TLSRPT_POL_MAX)
		abort();
	for (size_t i = 0; i < r->npol; i++) {
		const struct queue_tlsrpt_policy *p = &r->pol[i];

		if (p->type <= 0 || p->type >= QUEUE_TLSRPT_TYPE_END ||
		    strlen(p->strings) > QUEUE_TLSRPT_STR_MAX || p->nmx > QUEUE_TLSRPT_MX_MAX ||
		    p->ndet > QUEUE_TLSRPT_DET_MAX)
			abort();
		for (size_t k = 0; k < p->ndet; k++)
			if (p->det[k].result <= 0 || p->det[k].result >= QUEUE_TLSRPT_R_END)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct queue_tlsrpt r, twice;
	struct rl_buf b;
	int rc = queue_tlsrpt_rec_decode(data, size, &r);

	if (rc < 0) {
		if ((rc != RL_EPARSE && rc != RL_EVERSION) || r.npol || r.sent)
			abort();
		return 0;
	}
	check_bounds(&r);
	rl_buf_init(&b, QUEUE_TLSRPT_REC_MAX);
	if (queue_tlsrpt_rec_encode(&r, &b) != 0 || b.len != size || memcmp(b.data, data, size))
		abort();
	rl_buf_fini(&b);
	twice = r;
	queue_tlsrpt_merge(&twice, &r);
	check_bounds(&twice);
	return 0;
}
