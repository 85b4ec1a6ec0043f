/*
 * Unit tests for the TLS-RPT counts of the queue module: counting
 * sessions (policies, MX hosts, failure details, the bounds), merging,
 * the record codec (round trip, truncated and mutated input, newer
 * versions), keys, and the "tlsrpt" database (put, get, one day's range,
 * reopen).
 */
#include "queue.h"
#include "queue_int.h"
#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_queue_tlsrpt.XXXXXX";

static struct queue_tlsrpt r1, r2, r3;

static void count(struct queue_tlsrpt *r, int type, const char *strings, const char *mx,
		  int result, const char *rip)
{
	struct queue_tlsrpt_sess s = {type, strings, mx, result, "127.0.0.1", rip};

	queue_tlsrpt_add(r, &s);
}

static void test_count(void)
{
	memset(&r1, 0, sizeof(r1));
	count(&r1, QUEUE_TLSRPT_STS, "version: STSv1\nmode: enforce", "mx1.example", 0, "1.2.3.4");
	count(&r1, QUEUE_TLSRPT_STS, "version: STSv1\nmode: enforce", "mx2.example",
	      QUEUE_TLSRPT_R_STS_WEBPKI, "1.2.3.5");
	count(&r1, QUEUE_TLSRPT_STS, "version: STSv1\nmode: enforce", "mx2.example",
	      QUEUE_TLSRPT_R_STS_WEBPKI, "1.2.3.5");
	count(&r1, QUEUE_TLSRPT_NOPOLICY, "", "mx1.example", QUEUE_TLSRPT_R_STARTTLS, "1.2.3.4");
	CHECK_INT(r1.npol, 2);
	CHECK_INT(r1.pol[0].type, QUEUE_TLSRPT_STS);
	CHECK_INT(r1.pol[0].ok, 1);
	CHECK_INT(r1.pol[0].fail, 2);
	CHECK_INT(r1.pol[0].nmx, 2);
	CHECK_STR(r1.pol[0].mx[1], "mx2.example");
	CHECK_INT(r1.pol[0].ndet, 1);
	CHECK_INT(r1.pol[0].det[0].count, 2);
	CHECK_STR(r1.pol[0].det[0].receiving_ip, "1.2.3.5");
	CHECK_INT(r1.pol[1].type, QUEUE_TLSRPT_NOPOLICY);
	CHECK_INT(r1.pol[1].fail, 1);
	/* Bounds: a fifth policy is dropped, details past the cap count in the summary. */
	for (int i = 0; i < 5; i++) {
		char s[16];

		snprintf(s, sizeof(s), "3 1 1 %02d", i);
		count(&r1, QUEUE_TLSRPT_TLSA, s, "mx.example", 0, "");
	}
	CHECK_INT(r1.npol, QUEUE_TLSRPT_POL_MAX);
	for (int i = 0; i < QUEUE_TLSRPT_DET_MAX + 3; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "10.0.0.%d", i);
		count(&r1, QUEUE_TLSRPT_NOPOLICY, "", "mx1.example", QUEUE_TLSRPT_R_VALIDATION, ip);
	}
	CHECK_INT(r1.pol[1].ndet, QUEUE_TLSRPT_DET_MAX);
	CHECK_INT(r1.pol[1].fail, 1 + QUEUE_TLSRPT_DET_MAX + 3);
	CHECK_STR(queue_tlsrpt_type_name(QUEUE_TLSRPT_NOPOLICY), "no-policy-found");
	CHECK_STR(queue_tlsrpt_result_name(QUEUE_TLSRPT_R_EXPIRED), "certificate-expired");
	CHECK_STR(queue_tlsrpt_result_name(QUEUE_TLSRPT_R_DANE_REQUIRED), "dane-required");
}

static void test_merge(void)
{
	memset(&r2, 0, sizeof(r2));
	count(&r2, QUEUE_TLSRPT_STS, "version: STSv1\nmode: enforce", "mx1.example", 0, "1.2.3.4");
	count(&r2, QUEUE_TLSRPT_STS, "version: STSv1\nmode: enforce", "mx2.example",
	      QUEUE_TLSRPT_R_STS_WEBPKI, "1.2.3.5");
	r3 = r2;
	r3.sent = 77;
	queue_tlsrpt_merge(&r3, &r2);
	CHECK_INT(r3.npol, 1);
	CHECK_INT(r3.pol[0].ok, 2);
	CHECK_INT(r3.pol[0].fail, 2);
	CHECK_INT(r3.pol[0].det[0].count, 2);
	CHECK_INT(r3.sent, 77);
}

static void test_codec(void)
{
	struct rl_buf b;
	int bad = 0;

	rl_buf_init(&b, QUEUE_TLSRPT_REC_MAX);
	CHECK_INT(queue_tlsrpt_rec_encode(&r1, &b), 0);
	CHECK_INT(queue_tlsrpt_rec_decode(b.data, b.len, &r2), 0);
	CHECK(memcmp(&r1, &r2, sizeof(r1)) == 0 || (r2.npol == r1.npol &&
	      r2.pol[1].fail == r1.pol[1].fail), "round trip");
	CHECK_INT(r2.pol[0].det[0].count, 2);
	CHECK_STR(r2.pol[0].strings, "version: STSv1\nmode: enforce");
	/* Every truncation fails; so does a byte after the end. */
	for (size_t n = 0; n < b.len; n++)
		bad += queue_tlsrpt_rec_decode(b.data, n, &r3) != RL_EPARSE;
	CHECK_INT(bad, 0);
	CHECK_INT(rl_buf_append(&b, "x", 1), 0);
	CHECK_INT(queue_tlsrpt_rec_decode(b.data, b.len, &r3), RL_EPARSE);
	b.data[0] = 2;
	CHECK_INT(queue_tlsrpt_rec_decode(b.data, b.len, &r3), RL_EVERSION);
	b.data[0] = 0;
	CHECK_INT(queue_tlsrpt_rec_decode(b.data, b.len, &r3), RL_EPARSE);
	rl_buf_fini(&b);
	/* A field out of bounds is refused and nothing is appended. */
	r3 = r1;
	r3.pol[0].type = 9;
	rl_buf_init(&b, QUEUE_TLSRPT_REC_MAX);
	CHECK_INT(queue_tlsrpt_rec_encode(&r3, &b), -EINVAL);
	CHECK_INT(b.len, 0);
	rl_buf_fini(&b);
}

static void test_key(void)
{
	char k[QUEUE_TLSRPT_KEY_MAX + 1];
	size_t n;

	CHECK_INT(queue_tlsrpt_key("2024-05-01", "Example.COM.", 12, k, &n), 0);
	CHECK_STR(k, "2024-05-01:example.com");
	CHECK_INT(n, strlen(k));
	CHECK_INT(queue_tlsrpt_key("2024-5-01", "example.com", 11, k, &n), -EINVAL);
	CHECK_INT(queue_tlsrpt_key("2024-05-01", "a..b", 4, k, &n), -EINVAL);
}

static int visit(void *arg, const char *domain, const struct queue_tlsrpt *rec)
{
	char *seen = arg;
	size_t n = strlen(seen);

	snprintf(seen + n, 256 - n, "%s%s", domain, rec->sent ? "+" : ";");
	return 0;
}

static void test_db(void)
{
	char dir[256], seen[256] = "";
	struct rl_why why = {0, NULL, 0};
	struct queue *q = NULL;
	struct queue_txn *t;

	snprintf(dir, sizeof(dir), "%s/q", tmpdir);
	CHECK_INT(queue_open(dir, 0, QUEUE_O_NOSYNC, &q, &why), 0);
	if (!q)
		return;
	CHECK_INT(queue_txn_begin(q, 1, &t), 0);
	r2.sent = 0;
	CHECK_INT(queue_tlsrpt_put(t, "2024-05-01", "b.example", &r2), 0);
	CHECK_INT(queue_tlsrpt_put(t, "2024-05-01", "a.example", &r2), 0);
	r2.sent = 1000;
	CHECK_INT(queue_tlsrpt_put(t, "2024-05-02", "a.example", &r2), 0);
	CHECK_INT(queue_tlsrpt_put(t, "2024-04-30", "z.example", &r2), 0);
	CHECK_INT(queue_txn_commit(t), 0);
	queue_close(q);
	q = NULL;
	CHECK_INT(queue_open(dir, 0, QUEUE_O_RDONLY, &q, &why), 0);
	if (!q)
		return;
	CHECK_INT(queue_txn_begin(q, 0, &t), 0);
	CHECK_INT(queue_tlsrpt_foreach(t, "2024-05-01", visit, seen), 0);
	CHECK_STR(seen, "a.example;b.example;");
	seen[0] = '\0';
	CHECK_INT(queue_tlsrpt_foreach(t, "2024-05-02", visit, seen), 0);
	CHECK_STR(seen, "a.example+");
	CHECK_INT(queue_tlsrpt_get(t, "2024-05-02", "A.example", &r3), 0);
	CHECK_INT(r3.sent, 1000);
	CHECK_INT(r3.pol[0].ok, 1);
	CHECK_INT(queue_tlsrpt_get(t, "2024-05-03", "a.example", &r3), -ENOENT);
	queue_txn_abort(t);
	queue_close(q);
}

int main(void)
{
	char path[300];

	if (!mkdtemp(tmpdir))
		return 1;
	test_count();
	test_merge();
	test_codec();
	test_key();
	test_db();
	/* The one environment: its two files, its folder, the folder. */
	snprintf(path, sizeof(path), "%s/q/data.mdb", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/q/lock.mdb", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/q", tmpdir);
	rmdir(path);
	rmdir(tmpdir);
	return TEST_DONE();
}
