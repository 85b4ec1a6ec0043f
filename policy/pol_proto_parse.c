/*
 * pol_proto_parse: Postfix protocol lists ("smtp_tls_protocols" syntax),
 * shared by the configuration's tls_protocols and the policy file's
 * protocols= so that both read them the same way.  Pure: no I/O, no
 * allocation.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pol_int.h"

/* Protocol list: names in version order; SSLv2/SSLv3 are never enabled. */
static const struct {
	const char *name;
	unsigned bit;
} pol_protos[] = {
    {"SSLv2", 0},
    {"SSLv3", 0},
    {"TLSv1", POL_TLS1_0},
    {"TLSv1.1", POL_TLS1_1},
    {"TLSv1.2", POL_TLS1_2},
    {"TLSv1.3", POL_TLS1_3},
};

#define NPROTOS (sizeof(pol_protos) / sizeof(pol_protos[0]))

static const char proto_unknown[] = "unknown protocol";
static const char proto_never[] = "protocol is never enabled";
static const char proto_empty[] = "no protocol left";

static int is_sep(const char *seps, char ch)
{
	return ch != '\0' && strchr(seps, ch) != NULL;
}

/* The next token of s[*pos..n) separated by any run of seps. */
int pol_tok_next(const char *s, size_t n, size_t *pos, const char *seps, size_t *start, size_t *len)
{
	size_t p = *pos;

	while (p < n && is_sep(seps, s[p]))
		p++;
	if (p == n)
		return 0;
	*start = p;
	while (p < n && !is_sep(seps, s[p]))
		p++;
	*len = p - *start;
	*pos = p;
	return 1;
}

static int proto_find(const char *s, size_t n)
{
	for (size_t i = 0; i < NPROTOS; i++)
		if (strlen(pol_protos[i].name) == n && strncasecmp(pol_protos[i].name, s, n) == 0)
			return (int)i;
	return -1;
}

struct proto_acc {
	unsigned incl;	/* named protocols: only these */
	unsigned excl;	/* !name: all but these */
	unsigned bound; /* what >= and <= leave */
};

static int proto_token(const char *t, size_t n, struct proto_acc *acc)
{
	int ge = n >= 2 && memcmp(t, ">=", 2) == 0;
	int le = n >= 2 && memcmp(t, "<=", 2) == 0;
	int ex = n >= 1 && t[0] == '!';
	size_t skip = ge || le ? 2 : ex ? 1 : 0;
	int i = proto_find(t + skip, n - skip);
	unsigned bit = i >= 0 ? pol_protos[i].bit : 0;

	if (i < 0)
		return -1;
	if (!ex && bit == 0)
		return -2;
	if (ge)
		acc->bound &= ~(bit - 1);
	else if (le)
		acc->bound &= (bit << 1) - 1;
	else if (ex)
		acc->excl |= bit;
	else
		acc->incl |= bit;
	return 0;
}

int pol_protocols_parse(const char *s, size_t n, unsigned *bits, struct rl_why *why)
{
	struct proto_acc acc = {0, 0, POL_TLS_ALL};
	size_t pos = 0, start, len;
	unsigned mask, ntok = 0;
	int rc;

	while (pol_tok_next(s, n, &pos, " \t,:", &start, &len)) {
		rc = proto_token(s + start, len, &acc);
		if (rc == -1)
			return rl_fail(why, RL_EPARSE, proto_unknown, start);
		if (rc == -2)
			return rl_fail(why, RL_EPARSE, proto_never, start);
		ntok++;
	}
	mask = (acc.incl ? acc.incl : POL_TLS_ALL) & ~acc.excl & acc.bound & POL_TLS_ALL;
	/* Postfix reads an empty list as "all"; we refuse to guess. */
	if (ntok == 0 || mask == 0)
		return rl_fail(why, RL_EPARSE, proto_empty, 0);
	*bits = mask;
	return 0;
}

int pol_qlen(size_t n)
{
	return (int)(n < POL_QUOTE_MAX ? n : POL_QUOTE_MAX);
}

void pol_protocols_error(const char *s, size_t n, const struct rl_why *why, char *buf, size_t size)
{
	size_t pos = why->offset < n ? why->offset : n, start = pos, len = 0;
	int i;

	(void)pol_tok_next(s, n, &pos, " \t,:", &start, &len);
	i = proto_find(s + start + (len && s[start] == '!'), len - (len && s[start] == '!'));
	if (why->reason == proto_never && len >= 2 && i < 0)
		i = proto_find(s + start + 2, len - 2);
	if (why->reason == proto_unknown)
		snprintf(buf, size,
			 "unknown protocol \"%.*s\" (expected SSLv2, SSLv3, TLSv1, TLSv1.1, "
			 "TLSv1.2 or TLSv1.3)",
			 pol_qlen(len), s + start);
	else if (why->reason == proto_never && i >= 0)
		snprintf(buf, size, "%s is never enabled; it may only be excluded (!%s)",
			 pol_protos[i].name, pol_protos[i].name);
	else
		snprintf(buf, size, "no protocol left in \"%.*s\"", pol_qlen(n), s);
}

void pol_protocols_names(unsigned bits, char *buf, size_t size)
{
	size_t used = 0;

	RL_REQUIRE(size > 0);
	buf[0] = '\0';
	for (size_t i = 0; i < NPROTOS; i++) {
		if (!(bits & pol_protos[i].bit))
			continue;
		snprintf(buf + used, size - used, "%s%s", used ? " " : "", pol_protos[i].name);
		used += strlen(buf + used);
	}
}
