/*
 * tlsrpt_seed: write TLS-RPT counts for a given day and domain into a
 * queue directory with the queue API, for tests/integration/test_tlsrpt.py
 * (the daily run of serve sends yesterday's reports: a test cannot wait a
 * day for the relay to count them itself).
 *
 * Usage: tlsrpt_seed QUEUE_DIR DAY DOMAIN MX OK FAIL
 *   Counts OK successful and FAIL failed (starttls-not-supported) sessions
 *   to MX (sending IP 127.0.0.1, receiving IP 127.0.0.2) under
 *   no-policy-found, added to what the day's record of DOMAIN holds, in
 *   one write transaction.  Run it while no relay has the queue open.
 * Exit status: 0 done, 1 failure (one line on stderr), 2 usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"
#include "rl.h"

static int count_arg(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *out <= 1000000 ? 0 : -1;
}

static int seed(struct queue *q, const char *day, const char *domain,
		const struct queue_tlsrpt *add)
{
	struct queue_tlsrpt *cur = calloc(1, sizeof(*cur));
	struct queue_txn *t = NULL;
	int rc;

	if (!cur)
		return -ENOMEM;
	rc = queue_txn_begin(q, 1, &t);
	if (rc == 0) {
		rc = queue_tlsrpt_get(t, day, domain, cur);
		if (rc == -ENOENT) {
			memset(cur, 0, sizeof(*cur));
			rc = 0;
		}
	}
	if (rc == 0) {
		queue_tlsrpt_merge(cur, add);
		rc = queue_tlsrpt_put(t, day, domain, cur);
	}
	if (rc == 0)
		rc = queue_txn_commit(t);
	else
		queue_txn_abort(t);
	free(cur);
	return rc;
}

int main(int argc, char **argv)
{
	struct queue_tlsrpt *add;
	struct queue *q = NULL;
	struct rl_why why = {0};
	unsigned long ok, fail;
	int rc;

	if (argc != 7 || !queue_tlsrpt_day_valid(argv[2], strlen(argv[2])) ||
	    count_arg(argv[5], &ok) < 0 || count_arg(argv[6], &fail) < 0) {
		fprintf(stderr, "usage: tlsrpt_seed QUEUE_DIR YYYY-MM-DD DOMAIN MX OK FAIL\n");
		return 2;
	}
	add = calloc(1, sizeof(*add));
	if (!add) {
		fprintf(stderr, "tlsrpt_seed: out of memory\n");
		return 1;
	}
	for (unsigned long i = 0; i < ok + fail; i++) {
		struct queue_tlsrpt_sess s = {QUEUE_TLSRPT_NOPOLICY, "", argv[4],
					      i < ok ? 0 : QUEUE_TLSRPT_R_STARTTLS,
					      "127.0.0.1", "127.0.0.2"};

		queue_tlsrpt_add(add, &s);
	}
	rc = queue_open(argv[1], 0, 0, &q, &why);
	if (rc == 0)
		rc = seed(q, argv[2], argv[3], add);
	queue_close(q);
	free(add);
	if (rc < 0) {
		fprintf(stderr, "tlsrpt_seed: %s: %s%s%s\n", argv[1], rl_strerror(rc),
			why.reason ? ": " : "", why.reason ? why.reason : "");
		return 1;
	}
	return 0;
}
