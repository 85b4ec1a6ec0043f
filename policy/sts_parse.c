/*
 * sts_parse: the MTA-STS TXT record (RFC 8461 3.1) and policy body (RFC
 * 8461 3.2).  Pure: no I/O, no logging, no globals, no allocation; results
 * are copied into the caller's fixed-size struct only once all of the
 * input passed.
 */
#include <string.h>

#include "sts_int.h"

/* The one table of mode names (RFC 8461 3.2 sts-policy-mode-value). */
static const struct {
	enum sts_mode mode;
	const char *name;
} modes[] = {
    {STS_MODE_NONE, "none"},
    {STS_MODE_TESTING, "testing"},
    {STS_MODE_ENFORCE, "enforce"},
};

const char *sts_mode_name(enum sts_mode mode)
{
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (modes[i].mode == mode)
			return modes[i].name;
	return "?";
}

/* Case-sensitive, as %s"enforce" says; -1 when s[0..n) is no mode. */
static int mode_from_name(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strlen(modes[i].name) == n && memcmp(modes[i].name, s, n) == 0)
			return (int)modes[i].mode;
	return -1;
}

/*
 * RFC 8461 3.1: sts-id = %s"id=" 1*32(ALPHA / DIGIT).  The id ends where
 * the field ends; a longer id or another character is refused rather than
 * cut, since a cut id would compare equal to a different policy's id.
 */
static int read_id(struct sts_cur *c, char *id, struct rl_why *why)
{
	size_t n = 0;
	int ch;

	while ((ch = sts_cur_peek(c)) != -1 &&
	       ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))) {
		if (n == STS_ID_MAX)
			return rl_fail(why, RL_EPARSE, "id longer than 32 characters", c->off);
		if (id)
			id[n] = (char)ch;
		n++;
		sts_cur_skip(c);
	}
	if (n == 0)
		return rl_fail(why, RL_EPARSE, "id is empty", c->off);
	if (ch != -1 && ch != ';' && ch != ' ' && ch != '\t')
		return rl_fail(why, RL_EPARSE, "id holds a character other than letters and digits",
			       c->off);
	if (id)
		id[n] = '\0';
	return 0;
}

/*
 * Straight-line over the fields; the id lands in a local copy and reaches
 * *out only at the end.  RFC 8461 3.2 (for "TXT records and policy
 * files"): of a repeated field all entries but the first are ignored, so a
 * second id is checked against the grammar and dropped.
 */
int sts_txt_parse(const struct sts_txt *rrset, size_t n, struct sts_record *out, struct rl_why *why)
{
	struct sts_cur c;
	char name[STS_FIELD_NAME_MAX + 1], id[STS_ID_MAX + 1] = "";
	int rc, more, have_id = 0;

	memset(out, 0, sizeof(*out));
	rc = sts_txt_pick(rrset, n, "v=STSv1", &c, why);
	if (rc < 0)
		return rc;
	more = sts_cur_field_end(&c, why);
	while (more == 1) {
		rc = sts_cur_field_name(&c, name, why);
		if (rc < 0)
			return rc;
		if (strcmp(name, "id") == 0) {
			rc = read_id(&c, have_id ? NULL : id, why);
			have_id = 1;
		} else {
			rc = sts_cur_ext_value(&c, why);
		}
		if (rc < 0)
			return rc;
		more = sts_cur_field_end(&c, why);
	}
	if (more < 0)
		return more;
	if (!have_id)
		return rl_fail(why, RL_EPARSE, "no id field", c.off);
	memcpy(out->id, id, sizeof(out->id));
	return 0;
}

/* Which of the single-valued keys have been seen (only the first counts). */
struct seen {
	int version, mode, max_age;
};

static int is_wsp(char ch)
{
	return ch == ' ' || ch == '\t';
}

/*
 * RFC 8461 3.2 sts-policy-max-age-value = 1*10DIGIT, "maximum value of
 * 31557600".  Ten digits are grammatical up to 9999999999, so a larger
 * value is a valid policy with an out-of-range lifetime: it is lowered to
 * the maximum, not refused.  Refusing would drop the whole policy, and
 * with it the protection the domain asked for, over a number that only
 * bounds how long we cache; keeping a year is what the RFC allows at most.
 * More than ten digits is outside the grammar and refused.
 */
static int parse_max_age(const char *v, size_t n, uint32_t *out, size_t off, struct rl_why *why)
{
	uint64_t x = 0;

	if (n == 0 || n > 10)
		return rl_fail(why, RL_EPARSE, "max_age is not 1 to 10 digits", off);
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return rl_fail(why, RL_EPARSE, "max_age is not 1 to 10 digits", off + i);
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x > STS_MAX_AGE_MAX ? STS_MAX_AGE_MAX : (uint32_t)x;
	return 0;
}

/*
 * RFC 8461 3.2 sts-policy-mx-value = ["*."] Domain; 4.1: the wildcard is
 * a whole leftmost label.  One trailing dot (an absolute name, as zone
 * files write it) is accepted and dropped.  Patterns are stored in lower
 * case, so matching compares one side's case only.
 */
static int parse_mx(const char *v, size_t n, struct sts_policy *p, size_t off, struct rl_why *why)
{
	size_t skip;

	if (n > 0 && v[n - 1] == '.')
		n--;
	skip = n >= 2 && v[0] == '*' && v[1] == '.' ? 2 : 0;
	if (n > STS_NAME_MAX)
		return rl_fail(why, RL_EPARSE, "mx pattern longer than 253 characters", off);
	if (!sts_name_valid(v + skip, n - skip))
		return rl_fail(why, RL_EPARSE, "mx is not a host name or a *.domain pattern", off);
	if (p->nmx == STS_MX_MAX)
		return rl_fail(why, RL_ETOOBIG, "more than 64 mx patterns", off);
	for (size_t i = 0; i < n; i++)
		p->mx[p->nmx][i] = sts_lower(v[i]);
	p->mx[p->nmx][n] = '\0';
	p->nmx++;
	return 0;
}

/* key == s[0..n)? */
static int key_is(const char *key, size_t klen, const char *s)
{
	return strlen(s) == klen && memcmp(key, s, klen) == 0;
}

/* One known key's value; unknown keys are ignored (RFC 8461 3.2). */
static int policy_field(const char *key, size_t klen, const char *v, size_t n, size_t off,
			struct sts_policy *p, struct seen *seen, struct rl_why *why)
{
	int mode;

	if (key_is(key, klen, "mx"))
		return parse_mx(v, n, p, off, why);
	if (key_is(key, klen, "version") && !seen->version) {
		seen->version = 1;
		if (n != 5 || memcmp(v, "STSv1", 5) != 0)
			return rl_fail(why, RL_EVERSION, "version is not STSv1", off);
		return 0;
	}
	if (key_is(key, klen, "mode") && !seen->mode) {
		seen->mode = 1;
		mode = mode_from_name(v, n);
		if (mode < 0)
			return rl_fail(why, RL_EPARSE, "mode is not enforce, testing or none", off);
		p->mode = (enum sts_mode)mode;
		return 0;
	}
	if (key_is(key, klen, "max_age") && !seen->max_age) {
		seen->max_age = 1;
		return parse_max_age(v, n, &p->max_age, off, why);
	}
	return 0;
}

/*
 * One line "key: value" (RFC 8461 3.2: sts-policy-ext-name, then ":" and
 * blanks).  Blanks around the line and blank lines are ignored: they
 * change no meaning, and refusing them would drop a domain's protection
 * over a stray space.  The key grammar itself is kept.
 */
static int policy_line(const char *line, size_t n, size_t off, struct sts_policy *p,
		       struct seen *seen, struct rl_why *why)
{
	size_t k = 0, v;

	while (n > 0 && is_wsp(line[0])) {
		line++;
		n--;
		off++;
	}
	while (n > 0 && is_wsp(line[n - 1]))
		n--;
	if (n == 0)
		return 0;
	while (k < n && ((line[k] >= 'A' && line[k] <= 'Z') || (line[k] >= 'a' && line[k] <= 'z') ||
			 (line[k] >= '0' && line[k] <= '9') ||
			 (k > 0 && (line[k] == '_' || line[k] == '-' || line[k] == '.'))))
		k++;
	if (k == 0)
		return rl_fail(why, RL_EPARSE, "expected a key", off);
	if (k > STS_FIELD_NAME_MAX)
		return rl_fail(why, RL_EPARSE, "key longer than 32 characters", off);
	if (k == n || line[k] != ':')
		return rl_fail(why, RL_EPARSE, "expected ':' after the key", off + k);
	for (v = k + 1; v < n && is_wsp(line[v]); v++)
		;
	return policy_field(line, k, line + v, n - v, off + v, p, seen, why);
}

static int policy_refuse(struct sts_policy *out, int rc)
{
	memset(out, 0, sizeof(*out));
	return rc;
}

/*
 * Lines come from the shared splitter, which refuses NUL and control
 * characters (a CR counts as one unless it ends a line), so no value
 * can carry them into a log line.  Required fields are checked last.
 */
int sts_policy_parse(const char *body, size_t len, struct sts_policy *out, struct rl_why *why)
{
	struct rl_lines it;
	struct rl_why lwhy = {0, NULL, 0};
	struct seen seen = {0, 0, 0};
	const char *line;
	size_t n;
	int rc;

	RL_REQUIRE(body || len == 0);
	memset(out, 0, sizeof(*out));
	if (len > STS_POLICY_MAX)
		return rl_fail(why, RL_ETOOBIG, "policy longer than 65536 octets", STS_POLICY_MAX);
	rl_lines_init(&it, body, len, STS_POLICY_MAX);
	while ((rc = rl_lines_next(&it, &line, &n, &lwhy)) != 0) {
		if (rc < 0)
			return policy_refuse(out, rl_fail(why, rc, lwhy.reason,
							  (size_t)(line - body) + lwhy.offset));
		rc = policy_line(line, n, (size_t)(line - body), out, &seen, why);
		if (rc < 0)
			return policy_refuse(out, rc);
	}
	if (!seen.version)
		return policy_refuse(out, rl_fail(why, RL_EPARSE, "no version field", len));
	if (!seen.mode)
		return policy_refuse(out, rl_fail(why, RL_EPARSE, "no mode field", len));
	if (!seen.max_age)
		return policy_refuse(out, rl_fail(why, RL_EPARSE, "no max_age field", len));
	if (out->mode != STS_MODE_NONE && out->nmx == 0)
		return policy_refuse(
		    out,
		    rl_fail(why, RL_EPARSE, "no mx field (required unless mode is none)", len));
	return 0;
}
