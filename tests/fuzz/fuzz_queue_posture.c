/*
 * fuzz_queue_posture: the TLS posture record decoder on arbitrary bytes (a
 * record read back from disk may be damaged), and merging what it accepts.
 *
 * Beyond "no crash, no undefined behaviour": an accepted record is within
 * its bounds and canonical (encoding it again gives exactly the input), and
 * merging it into itself keeps the bounds and round-trips too.
 */
#include "queue.h"
#include "queue_posture_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_bounds(const struct queue_posture *p)
{
	if (p->nreason > QUEUE_POSTURE_REASONS || p->nfpr > QUEUE_POSTURE_FPRS)
		abort();
	for (size_t i = 0; i < p->nreason; i++) {
		size_t n = strnlen(p->reason[i].text, sizeof(p->reason[i].text));

		if (p->reason[i].count == 0 || n == 0 || n > QUEUE_POSTURE_REASON_MAX)
			abort();
	}
	for (size_t i = 0; i < p->nfpr; i++)
		if (p->fpr[i].count == 0)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char buf[QUEUE_POSTURE_REC_MAX];
	struct queue_posture p, m;
	size_t n;
	int rc = queue_posture_rec_decode(data, size, &p);

	if (rc < 0) {
		if (rc != RL_EPARSE && rc != RL_EVERSION)
			abort();
		return 0;
	}
	check_bounds(&p);
	n = queue_posture_rec_encode(&p, buf);
	if (n != size || memcmp(buf, data, size) != 0)
		abort();
	m = p;
	queue_posture_merge(&m, &p);
	check_bounds(&m);
	n = queue_posture_rec_encode(&m, buf);
	if (queue_posture_rec_decode(buf, n, &p) != 0)
		abort();
	return 0;
}
