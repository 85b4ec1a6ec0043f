/*
 * fuzz_queue_sts: the MTA-STS cache record decoder and the domain key on
 * arbitrary bytes (a record read back from disk may be damaged).
 *
 * Beyond "no crash, no undefined behaviour", it checks what callers rely
 * on: an accepted record stays within its bounds (id of 1..32 letters and
 * digits, 0 <= fetched <= expires, body inside the input and at most
 * QUEUE_STS_BODY_MAX), and the format is canonical, so encoding it again
 * gives exactly the input.  A key is lower case, checked, and its own key.
 */
#include "queue.h"
#include "queue_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > QUEUE_STS_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		      (id[i] >= '0' && id[i] <= '9')))
			return 0;
	return 1;
}

static void check_record(const uint8_t *data, size_t size)
{
	struct queue_sts s;
	struct rl_buf b;
	int rc = queue_sts_rec_decode(data, size, &s);

	if (rc < 0) {
		if ((rc != RL_EPARSE && rc != RL_EVERSION) || s.body || s.len || s.id[0])
			abort();
		return;
	}
	if (!id_ok(s.id) || s.fetched < 0 || s.expires < s.fetched ||
	    s.len > QUEUE_STS_BODY_MAX || (const uint8_t *)s.body + s.len != data + size)
		abort();
	rl_buf_init(&b, QUEUE_STS_REC_MAX);
	if (queue_sts_rec_encode(&s, &b) != 0 || b.len != size || memcmp(b.data, data, size) != 0)
		abort();
	rl_buf_fini(&b);
}

static void check_key(const uint8_t *data, size_t size)
{
	char key[QUEUE_STS_DOMAIN_MAX + 1], again[QUEUE_STS_DOMAIN_MAX + 1];
	size_t len, len2;

	if (queue_sts_key((const char *)data, size, key, &len) < 0) {
		if (len != 0 || key[0] != '\0')
			abort();
		return;
	}
	if (len == 0 || len > QUEUE_STS_DOMAIN_MAX || strlen(key) != len)
		abort();
	for (size_t i = 0; i < len; i++)
		if (key[i] >= 'A' && key[i] <= 'Z')
			abort();
	if (queue_sts_key(key, len, again, &len2) != 0 || len2 != len || memcmp(key, again, len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_record(data, size);
	check_key(data, size);
	return 0;
}
