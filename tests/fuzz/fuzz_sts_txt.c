/*
 * fuzz_sts_txt: libFuzzer target for the "_mta-sts" TXT record parser
 * (sts_txt_parse(), policy/sts_parse.c).  The input becomes an RRset as
 * fuzz_txt.h describes.
 *
 * Besides memory errors, it aborts when a promise of sts.h breaks: the
 * answer agrees with the harness's own reading of the RRset (RL_ENOTFOUND
 * exactly when no well-formed record carries the tag; a parsed id when
 * exactly one does), an id is 1-32 letters and digits that the record
 * holds as "id=ID", a refusal names its reason and leaves no id, and the
 * id survives being parsed again from a canonical record, alone or with a
 * foreign record beside it, while a duplicated record is refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_txt.h"
#include "sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_id(const struct fuzz_txt *t, const char *id)
{
	size_t n = strlen(id), tagged = 0, which = 0;
	char field[3 + STS_ID_MAX + 1];

	RL_REQUIRE(n >= 1 && n <= STS_ID_MAX);
	for (size_t i = 0; i < n; i++)
		RL_REQUIRE((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'Z') ||
			   (id[i] >= 'a' && id[i] <= 'z'));
	for (size_t i = 0; i < t->n; i++) {
		RL_REQUIRE(t->valid[i]);
		if (fuzz_txt_tagged(t, i, "v=STSv1")) {
			tagged++;
			which = i;
		}
	}
	RL_REQUIRE(tagged == 1);
	snprintf(field, sizeof(field), "id=%s", id);
	RL_REQUIRE(fuzz_txt_contains(t, which, field, strlen(field)));
}

/* The id again, from "v=STSv1; id=ID" alone, beside SPF, and twice. */
static void check_canonical(const char *id)
{
	char text[64];
	unsigned char wire[2][80];
	struct sts_txt rr[2];
	struct sts_record r;
	struct rl_why why = {0, NULL, 0};
	size_t len = (size_t)snprintf(text, sizeof(text), "v=STSv1; id=%s", id);

	rr[0].rdata = wire[0];
	rr[0].len = fuzz_txt_put(wire[0], text, len);
	rr[1].rdata = wire[1];
	rr[1].len = fuzz_txt_put(wire[1], "v=spf1 -all", 11);
	RL_REQUIRE(sts_txt_parse(rr, 1, &r, &why) == 0 && strcmp(r.id, id) == 0);
	RL_REQUIRE(sts_txt_parse(rr, 2, &r, &why) == 0 && strcmp(r.id, id) == 0);
	rr[1] = rr[0];
	RL_REQUIRE(sts_txt_parse(rr, 2, &r, &why) == RL_EPARSE && r.id[0] == '\0');
}

static void check_refused(const struct fuzz_txt *t, int rc, const struct sts_record *r,
			  const struct rl_why *why)
{
	size_t tagged = 0, valid = 0;

	RL_REQUIRE(rc == RL_EPARSE || rc == RL_ENOTFOUND);
	RL_REQUIRE(why->code == rc && why->reason != NULL);
	RL_REQUIRE(r->id[0] == '\0');
	for (size_t i = 0; i < t->n; i++) {
		valid += (size_t)t->valid[i];
		tagged += (size_t)fuzz_txt_tagged(t, i, "v=STSv1");
	}
	if (rc == RL_ENOTFOUND)
		RL_REQUIRE(valid == t->n && tagged == 0);
	else
		RL_REQUIRE(valid < t->n || tagged >= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_txt t;
	struct sts_record r, again;
	struct rl_why why = {0, NULL, 0};
	int rc;

	fuzz_txt_split(data, size, &t);
	memset(&r, 'x', sizeof(r));
	rc = sts_txt_parse(t.rr, t.n, &r, &why);
	RL_REQUIRE(sts_txt_parse(t.rr, t.n, &again, NULL) == rc);
	RL_REQUIRE(memcmp(&r, &again, sizeof(r)) == 0);
	if (rc == 0) {
		check_id(&t, r.id);
		check_canonical(r.id);
	} else {
		check_refused(&t, rc, &r, &why);
	}
	fuzz_txt_free(&t);
	return 0;
}
