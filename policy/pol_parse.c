/*
 * pol_parse: the TLS policy file (INTERFACE.md, "TLS policy file").  The
 * protocol lists of protocols= are parsed by pol_proto_parse.c.
 *
 * The syntax is the text form of Postfix smtp_tls_policy_maps, so an
 * existing table can be copied in unchanged:
 *   DOMAIN  LEVEL  [name=value ...]
 * A line whose first non-blank character is '#' is a comment (a '#' later
 * in a line is text, as in Postfix); blank lines are ignored; a line that
 * starts with a blank continues the entry above it.  As in Postfix,
 * attributes are separated by blanks or commas, and level and attribute
 * names compare without regard to case.  As in Postfix 3.0 and later, an
 * attribute may be written "{ name = value }" to keep blanks and commas in
 * its value; here such a group must end on the line it starts on.
 *
 * Unlike Postfix, which skips a broken entry at delivery time, every
 * problem is an error and a file with any error yields no table: a policy
 * that is silently weaker than the one written is worse than no reload.
 * The parser reports every error it finds (up to POL_ERRORS_MAX), each
 * with the line of the offending token, so `policy check` can list them.
 *
 * "[host]" and "[host]:port" keys are Postfix's policy for an explicit
 * next hop (a transport or relayhost whose brackets suppress MX lookups).
 * The relay has no explicit next hops: it delivers to the MX hosts of the
 * recipient domain.  Taking "[relay.example]:25 none" as the key of the
 * domain relay.example would send that domain's mail in clear, a policy
 * nobody wrote; so such an entry is checked like any other (its errors
 * are errors) but kept out of the table, with a warning.
 *
 * Pure: no I/O, no logging, no globals.  Memory: the table and its
 * entries, bounded by POL_ENTRIES_MAX, POL_TOKENS_MAX and POL_MATCH_MAX.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pol_int.h"

struct tok {
	const char *s;
	size_t n;
	unsigned line;
};

struct pstate {
	const char *path;
	struct pol_errors *errs;
	struct pol_table *t;
	int failed; /* some error was reported */
	int fatal;  /* out of memory or a cap: stop */
	struct tok toks[POL_TOKENS_MAX];
	size_t ntok;
	unsigned too_many;     /* line where the entry overflowed toks[], or 0 */
	struct pol_errors own; /* when the caller wants no errors */
};

/* "FILE:LINE: " (or "FILE: " for line 0), tag, then the message, into m. */
static void pmsg(struct pol_msg *m, const char *path, unsigned line, const char *tag,
		 const char *fmt, va_list ap)
{
	int used;

	if (line)
		used = snprintf(m->msg, POL_ERROR_SIZE, "%s:%u: ", path, line);
	else
		used = snprintf(m->msg, POL_ERROR_SIZE, "%s: ", path);
	if (used < 0 || used >= POL_ERROR_SIZE)
		used = POL_ERROR_SIZE - 1;
	m->prefix = (unsigned)used;
	used += snprintf(m->msg + used, POL_ERROR_SIZE - (size_t)used, "%s", tag);
	if (used >= POL_ERROR_SIZE)
		used = POL_ERROR_SIZE - 1;
	m->text = (unsigned)used;
	vsnprintf(m->msg + used, POL_ERROR_SIZE - (size_t)used, fmt, ap);
	m->line = line;
}

static void perr(struct pstate *st, unsigned line, const char *fmt, ...) RL_PRINTF(3, 4);

static void perr(struct pstate *st, unsigned line, const char *fmt, ...)
{
	struct pol_errors *e = st->errs;
	va_list ap;

	st->failed = 1;
	e->total++;
	if (e->count == POL_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	pmsg(&e->e[e->count++], st->path, line, "", fmt, ap);
	va_end(ap);
}

/* A warning: the file stays valid.  Found in line order (parse_entry). */
static void pwarn(struct pstate *st, unsigned line, const char *fmt, ...) RL_PRINTF(3, 4);

static void pwarn(struct pstate *st, unsigned line, const char *fmt, ...)
{
	struct pol_errors *e = st->errs;
	va_list ap;

	e->wtotal++;
	if (e->nwarn == POL_WARNINGS_MAX)
		return;
	va_start(ap, fmt);
	pmsg(&e->w[e->nwarn++], st->path, line, "warning: ", fmt, ap);
	va_end(ap);
}

static char *lower_dup(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++)
		d[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
	d[n] = '\0';
	return d;
}

/* Out of memory is reported once and ends the parse. */
static int oom(struct pstate *st, unsigned line)
{
	if (!st->fatal)
		perr(st, line, "out of memory");
	st->fatal = -ENOMEM;
	return -ENOMEM;
}

static int word_eq(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* s[*from..*to) without the blanks at either end. */
static void trim_blanks(const char *s, size_t *from, size_t *to)
{
	while (*from < *to && is_blank(s[*from]))
		(*from)++;
	while (*to > *from && is_blank(s[*to - 1]))
		(*to)--;
}

/*
 * A host name as RFC 1123 section 2.1 allows, written without the root's
 * dot; '_' is tolerated because such names exist in the DNS.
 */
static const char *name_problem(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0)
		return "empty name";
	if (n > 253)
		return "longer than 253 characters";
	for (size_t i = 0; i <= n; i++) {
		char ch = i < n ? s[i] : '.';

		if (ch == '.' && label == 0)
			return "empty label";
		if (ch == '.' && (s[i - 1] == '-' || s[i - label] == '-'))
			return "label starts or ends with a hyphen";
		if (ch == '.') {
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return "only letters, digits, hyphens, underscores and dots are allowed";
		if (++label > 63)
			return "label longer than 63 characters";
	}
	return NULL;
}

/* "[host]" or "[host]:port" (Postfix next-hop forms): the host, or NULL. */
static const char *nexthop_host(const char *s, size_t n, size_t *hn)
{
	const char *rb = memchr(s, ']', n);
	size_t rest;
	unsigned long port = 0;

	if (!rb)
		return NULL;
	rest = n - (size_t)(rb - s) - 1;
	if (rest == 1 || (rest && rb[1] != ':') || rest > 6)
		return NULL;
	for (size_t i = 2; i <= rest; i++) {
		if (rb[i] < '0' || rb[i] > '9')
			return NULL;
		port = port * 10 + (unsigned long)(rb[i] - '0');
	}
	if (rest && (port == 0 || port > 65535))
		return NULL;
	*hn = (size_t)(rb - s) - 1;
	return s + 1;
}

/*
 * The key of an entry: "domain" or ".domain", lower case, without a
 * trailing dot.  For "[host]" and "[host]:port" (an explicit next hop,
 * which never applies: see the top of this file) it is "host", checked
 * the same way, and *nexthop is set.
 */
static char *parse_key(struct pstate *st, const struct tok *k, int *nexthop)
{
	const char *s = k->s, *why;
	size_t n = k->n;
	char *key;

	*nexthop = s[0] == '[';
	if (s[0] == '[') {
		s = nexthop_host(k->s, k->n, &n);
		if (!s || n == 0 || s[0] == '.') {
			perr(st, k->line,
			     "bad next-hop \"%.*s\" (expected DOMAIN, .DOMAIN, [HOST] "
			     "or [HOST]:PORT)",
			     pol_qlen(k->n), k->s);
			return NULL;
		}
	}
	if (n > 1 && s[n - 1] == '.')
		n--;
	why = name_problem(s + (s[0] == '.'), n - (s[0] == '.'));
	if (why) {
		perr(st, k->line, "bad domain \"%.*s\": %s", pol_qlen(k->n), k->s, why);
		return NULL;
	}
	key = lower_dup(s, n);
	if (!key)
		oom(st, k->line);
	return key;
}

static int parse_level(struct pstate *st, const struct tok *t)
{
	char name[16], names[128] = "";
	int level = -1;

	/* Postfix compares level names without regard to case. */
	if (t->n < sizeof(name)) {
		for (size_t i = 0; i < t->n; i++)
			name[i] = t->s[i] >= 'A' && t->s[i] <= 'Z' ? (char)(t->s[i] - 'A' + 'a')
								   : t->s[i];
		level = pol_level_from_name(name, t->n);
	}
	if (level >= 0)
		return level;
	/* The names come from the one table of levels, pol_level.c. */
	for (int i = 0; i < POL_LEVEL_COUNT; i++) {
		size_t used = strlen(names);

		snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
			 pol_level_name(i));
	}
	perr(st, t->line, "unknown TLS level \"%.*s\" (expected one of %s)", pol_qlen(t->n), t->s,
	     names);
	return -1;
}

/* An entry being built, with what its attributes have said so far. */
struct eacc {
	struct pol_entry e;
	unsigned seen[6]; /* per pol_attrs[] entry: line first seen, 0 = not */
	uint32_t excl;	  /* pol_excludes[] bits */
};

/* Room for element n of an array that grows 4, 8, 16, ...; NULL: no memory. */
static void *reserve(void *v, size_t n, size_t size)
{
	if (v && (n < 4 || (n & (n - 1)) != 0))
		return v;
	return realloc(v, (n ? n * 2 : 4) * size);
}

static int match_digests(struct pstate *st, struct eacc *a, const struct tok *t, const char *v,
			 size_t n)
{
	size_t pos = 0, start, len;
	struct pol_entry *e = &a->e;

	/* Postfix: several digests may share one match= joined by '|'. */
	while (pol_tok_next(v, n, &pos, "|", &start, &len)) {
		struct fpr_digest d;
		struct fpr_digest *grown;
		size_t end = start + len;

		/* Blanks around a digest can only come from a { ... } group. */
		trim_blanks(v, &start, &end);
		len = end - start;
		if (len == 0)
			continue;

		if (fpr_parse(v + start, len, &d, NULL) < 0) {
			perr(st, t->line,
			     "bad digest \"%.*s\" (20 or 32 colon-separated hex bytes)",
			     pol_qlen(len), v + start);
			continue;
		}
		if (e->ndigests == POL_MATCH_MAX) {
			perr(st, t->line, "too many match= digests (at most %d)", POL_MATCH_MAX);
			return -1;
		}
		grown = reserve(e->digests, e->ndigests, sizeof(*grown));
		if (!grown)
			return oom(st, t->line);
		e->digests = grown;
		e->digests[e->ndigests++] = d;
	}
	return 0;
}

static int match_name_ok(struct pstate *st, const struct tok *t, const char *s, size_t n)
{
	const char *why;

	if (word_eq(s, n, "hostname") || word_eq(s, n, "nexthop") || word_eq(s, n, "dot-nexthop"))
		return 1;
	why = name_problem(s + (s[0] == '.'), n - (s[0] == '.'));
	if (why)
		perr(st, t->line,
		     "bad match name \"%.*s\": %s (expected hostname, nexthop, "
		     "dot-nexthop, a name or .name)",
		     pol_qlen(n), s, why);
	return why == NULL;
}

static int match_names(struct pstate *st, struct eacc *a, const struct tok *t, const char *v,
		       size_t n)
{
	size_t pos = 0, start, len;
	struct pol_entry *e = &a->e;

	/* Postfix splits verify/secure match= on ':' and skips empty items. */
	while (pol_tok_next(v, n, &pos, ":", &start, &len)) {
		char **grown;
		size_t end = start + len;

		/* "{ match = a : b }": blanks beside a ':' are not part of a name. */
		trim_blanks(v, &start, &end);
		len = end - start;
		if (len == 0)
			continue;

		if (!match_name_ok(st, t, v + start, len))
			continue;
		if (e->nmatch == POL_MATCH_MAX) {
			perr(st, t->line, "too many match= names (at most %d)", POL_MATCH_MAX);
			return -1;
		}
		grown = reserve(e->match, e->nmatch, sizeof(*grown));
		if (!grown)
			return oom(st, t->line);
		e->match = grown;
		e->match[e->nmatch] = lower_dup(v + start, len);
		if (!e->match[e->nmatch])
			return oom(st, t->line);
		e->nmatch++;
	}
	return 0;
}

static int set_match(struct pstate *st, struct eacc *a, const struct tok *t, const char *v,
		     size_t n)
{
	size_t pos = 0, start, len;
	const char *seps = a->e.level == POL_LEVEL_FINGERPRINT ? "| \t" : ": \t";

	if (!pol_tok_next(v, n, &pos, seps, &start, &len)) {
		perr(st, t->line, "empty value for match=");
		return -1;
	}
	if (a->e.level == POL_LEVEL_FINGERPRINT)
		return match_digests(st, a, t, v, n);
	return match_names(st, a, t, v, n);
}

static int set_protocols(struct pstate *st, struct eacc *a, const struct tok *t, const char *v,
			 size_t n)
{
	struct rl_why why = {0, NULL, 0};
	char msg[200];
	unsigned bits = 0;

	if (pol_protocols_parse(v, n, &bits, &why) < 0) {
		pol_protocols_error(v, n, &why, msg, sizeof(msg));
		perr(st, t->line, "protocols: %s", msg);
		return -1;
	}
	a->e.protocols = bits;
	a->e.protocols_text = strndup(v, n);
	return a->e.protocols_text ? 0 : oom(st, t->line);
}

static int set_ciphers(struct pstate *st, struct eacc *a, const struct tok *t, const char *v,
		       size_t n)
{
	if (word_eq(v, n, "high")) {
		a->e.grade = POL_GRADE_HIGH;
		return 0;
	}
	if (word_eq(v, n, "medium")) {
		a->e.grade = POL_GRADE_MEDIUM;
		return 0;
	}
	if (word_eq(v, n, "low") || word_eq(v, n, "export") || word_eq(v, n, "null"))
		perr(st, t->line, "ciphers=%.*s is refused as unsafe (use high or medium)",
		     pol_qlen(n), v);
	else
		perr(st, t->line, "unknown cipher grade \"%.*s\" (expected high or medium)",
		     pol_qlen(n), v);
	return -1;
}

/*
 * exclude= names (OpenSSL cipher-list elements, as Postfix takes them) and
 * the GnuTLS priority tokens that remove the same thing.  "" means that
 * nothing we ever enable matches the name (anonymous, null, export, weak
 * and MD5 suites are never in the priority string), so there is nothing
 * to remove.
 */
static const struct {
	const char *name;
	const char *tokens;
} pol_excludes[] = {
    {"3DES", ":-3DES-CBC"},
    {"DES", ""},
    {"RC4", ":-ARCFOUR-128"},
    {"AES128", ":-AES-128-GCM:-AES-128-CCM:-AES-128-CBC"},
    {"AES256", ":-AES-256-GCM:-AES-256-CCM:-AES-256-CBC"},
    {"AES", ":-AES-128-GCM:-AES-128-CCM:-AES-128-CBC:-AES-256-GCM:-AES-256-CCM:-AES-256-CBC"},
    {"AESGCM", ":-AES-128-GCM:-AES-256-GCM"},
    {"AESCCM", ":-AES-128-CCM:-AES-256-CCM"},
    {"CHACHA20", ":-CHACHA20-POLY1305"},
    {"CAMELLIA", ":-CAMELLIA-128-GCM:-CAMELLIA-256-GCM:-CAMELLIA-128-CBC:-CAMELLIA-256-CBC"},
    {"SHA1", ":-SHA1"},
    {"SHA", ":-SHA1"},
    {"kRSA", ":-RSA"},
    {"kDHE", ":-DHE-RSA:-DHE-DSS"},
    {"kEDH", ":-DHE-RSA:-DHE-DSS"},
    {"DHE", ":-DHE-RSA:-DHE-DSS"},
    {"EDH", ":-DHE-RSA:-DHE-DSS"},
    {"DSS", ":-DHE-DSS"},
    {"aNULL", ""},
    {"eNULL", ""},
    {"NULL", ""},
    {"ADH", ""},
    {"AECDH", ""},
    {"EXPORT", ""},
    {"EXP", ""},
    {"LOW", ""},
    {"MD5", ""},
    {"IDEA", ""},
    {"SEED", ""},
    {"PSK", ""},
    {"SRP", ""},
};

#define NEXCLUDES (sizeof(pol_excludes) / sizeof(pol_excludes[0]))
_Static_assert(NEXCLUDES <= 32, "pol_excludes[] must fit the bits of eacc.excl");

static int set_exclude(struct pstate *st, struct eacc *a, const struct tok *t, const char *v,
		       size_t n)
{
	size_t pos = 0, start, len, i, count = 0;
	int bad = 0;

	/* Blanks and commas separate too, inside a { ... } group (Postfix). */
	while (pol_tok_next(v, n, &pos, ": \t,", &start, &len)) {
		count++;
		for (i = 0; i < NEXCLUDES; i++)
			if (word_eq(v + start, len, pol_excludes[i].name))
				break;
		if (i < NEXCLUDES) {
			a->excl |= (uint32_t)1 << i;
			continue;
		}
		perr(st, t->line, "exclude: unknown cipher name \"%.*s\"", pol_qlen(len),
		     v + start);
		bad = 1;
	}
	if (count == 0)
		perr(st, t->line, "empty value for exclude=");
	if (bad || count == 0)
		return -1;
	a->e.exclude_text = strndup(v, n);
	return a->e.exclude_text ? 0 : oom(st, t->line);
}

static int set_servername(struct pstate *st, struct eacc *a, const struct tok *t, const char *v,
			  size_t n)
{
	const char *why = NULL;

	/* Postfix: a host name, or "hostname" / "nexthop" for the one in use. */
	if (!word_eq(v, n, "hostname") && !word_eq(v, n, "nexthop"))
		why = name_problem(v, n);
	if (why) {
		perr(st, t->line, "bad servername \"%.*s\": %s", pol_qlen(n), v, why);
		return -1;
	}
	a->e.servername = lower_dup(v, n);
	return a->e.servername ? 0 : oom(st, t->line);
}

static int set_tafile(struct pstate *st, struct eacc *a, const struct tok *t, const char *v,
		      size_t n)
{
	/* The file is read by the relay; parsing stays free of I/O. */
	a->e.tafile = strndup(v, n);
	return a->e.tafile ? 0 : oom(st, t->line);
}

#define LV(x) (1u << POL_LEVEL_##x)
/* Every level that uses TLS at all; "none" takes no attribute. */
#define LV_TLS                                                                                     \
	(LV(MAY) | LV(ENCRYPT) | LV(DANE) | LV(DANE_ONLY) | LV(FINGERPRINT) | LV(VERIFY) |         \
	 LV(SECURE))

static const struct pol_attr {
	const char *name;
	unsigned levels; /* bits 1 << level where the attribute is allowed */
	int repeat;	 /* may be given more than once (Postfix: match only) */
	int (*set)(struct pstate *st, struct eacc *a, const struct tok *t, const char *v, size_t n);
} pol_attrs[] = {
    /* match= comes first: finish_entry() checks seen[0]. */
    {"match", LV(FINGERPRINT) | LV(VERIFY) | LV(SECURE), 1, set_match},
    {"protocols", LV_TLS, 0, set_protocols},
    {"ciphers", LV_TLS, 0, set_ciphers},
    {"exclude", LV_TLS, 0, set_exclude},
    {"servername", LV_TLS, 0, set_servername},
    /* Trust anchors replace the CAs of PKIX checks: verify and secure only. */
    {"tafile", LV(VERIFY) | LV(SECURE), 0, set_tafile},
};

#define NATTRS (sizeof(pol_attrs) / sizeof(pol_attrs[0]))
_Static_assert(NATTRS == sizeof(((struct eacc *)0)->seen) / sizeof(unsigned),
	       "eacc.seen[] must have one slot per attribute");

static void parse_attr(struct pstate *st, struct eacc *a, const struct tok *t)
{
	/* "{ name = value }": the braces go, and blanks around name and value. */
	int braced = t->s[0] == '{';
	size_t from = braced, to = t->n - braced, nfrom, nto, i, vlen;
	const char *eq, *v;

	trim_blanks(t->s, &from, &to);
	eq = memchr(t->s + from, '=', to - from);
	if (!eq) {
		perr(st, t->line, "expected name=value, got \"%.*s\"%s", pol_qlen(t->n), t->s,
		     t->s[0] == '#' ? " (a comment must start its own line)" : "");
		return;
	}
	nfrom = from;
	nto = (size_t)(eq - t->s);
	trim_blanks(t->s, &nfrom, &nto);
	from = (size_t)(eq - t->s) + 1;
	trim_blanks(t->s, &from, &to);
	v = t->s + from;
	vlen = to - from;
	for (i = 0; i < NATTRS; i++)
		if (word_eq(t->s + nfrom, nto - nfrom, pol_attrs[i].name))
			break;
	if (i == NATTRS) {
		perr(st, t->line, "unknown attribute \"%.*s\"", pol_qlen(nto - nfrom),
		     t->s + nfrom);
		return;
	}
	if (!(pol_attrs[i].levels & (1u << a->e.level))) {
		perr(st, t->line, "attribute %s= is not valid at level %s", pol_attrs[i].name,
		     pol_level_name(a->e.level));
		return;
	}
	if (!pol_attrs[i].repeat && a->seen[i]) {
		perr(st, t->line, "%s= given twice (first on line %u)", pol_attrs[i].name,
		     a->seen[i]);
		return;
	}
	/* Seen even when empty: one mistake, one message. */
	if (!a->seen[i])
		a->seen[i] = t->line;
	if (vlen == 0) {
		perr(st, t->line, "empty value for %s=", pol_attrs[i].name);
		return;
	}
	(void)pol_attrs[i].set(st, a, t, v, vlen);
}

/*
 * ciphers=medium adds what our default priority leaves out and Postfix's
 * "medium" grade allows: AES in CBC mode with SHA-1/SHA-2 MACs and RSA key
 * exchange (no forward secrecy).  "high" adds nothing: the default
 * tls_priority is stronger than Postfix's high grade.  Exclusions come
 * last so that they win.
 */
#define POL_MEDIUM_TOKENS ":+AES-256-CBC:+AES-128-CBC:+SHA256:+SHA384:+SHA1:+RSA"

static int build_suffix(struct pstate *st, struct eacc *a)
{
	struct rl_buf b;
	int rc = 0;

	rl_buf_init(&b, 4096);
	if (a->e.grade == POL_GRADE_MEDIUM)
		rc = rl_buf_puts(&b, POL_MEDIUM_TOKENS);
	for (size_t i = 0; rc == 0 && i < NEXCLUDES; i++)
		if (a->excl & ((uint32_t)1 << i))
			rc = rl_buf_puts(&b, pol_excludes[i].tokens);
	a->e.priority_suffix = rc == 0 ? strdup(b.len ? b.data : "") : NULL;
	rl_buf_fini(&b);
	return a->e.priority_suffix ? 0 : oom(st, a->e.line);
}

static int default_match(struct pstate *st, struct eacc *a)
{
	size_t n;
	const char *const *names = pol_match_defaults(a->e.level, &n);

	a->e.match = calloc(n, sizeof(*a->e.match));
	if (!a->e.match)
		return oom(st, a->e.line);
	for (; a->e.nmatch < n; a->e.nmatch++) {
		a->e.match[a->e.nmatch] = strdup(names[a->e.nmatch]);
		if (!a->e.match[a->e.nmatch])
			return oom(st, a->e.line);
	}
	a->e.match_default = 1;
	return 0;
}

/* Checks over the whole entry, then the derived fields. */
static int finish_entry(struct pstate *st, struct eacc *a)
{
	int level = a->e.level;

	if (level == POL_LEVEL_FINGERPRINT && !a->seen[0])
		perr(st, a->e.line, "fingerprint needs at least one match= digest");
	if ((level == POL_LEVEL_VERIFY || level == POL_LEVEL_SECURE) && !a->seen[0] &&
	    default_match(st, a) < 0)
		return -ENOMEM;
	return build_suffix(st, a);
}

static void add_entry(struct pstate *st, struct eacc *a)
{
	int rc = pol_table_add_adopt(st->t, &a->e);

	if (rc == RL_ETOOBIG) {
		perr(st, a->e.line, "too many entries (at most %d)", POL_ENTRIES_MAX);
		st->fatal = RL_ETOOBIG;
	} else if (rc < 0) {
		oom(st, a->e.line);
	}
}

/* An entry for an explicit next hop: checked, then dropped with a warning. */
static void warn_nexthop(struct pstate *st, const struct tok *k)
{
	pwarn(st, k->line,
	      "%.*s names an explicit next hop, which tlsrelay never uses (it "
	      "delivers to each domain's MX hosts); the entry is ignored. Write the domain "
	      "without brackets to set its policy.",
	      pol_qlen(k->n), k->s);
}

/* The entry collected in st->toks[]. */
static void parse_entry(struct pstate *st)
{
	const struct tok *k = &st->toks[0];
	struct eacc a;
	int nexthop = 0;

	memset(&a, 0, sizeof(a));
	if (st->too_many)
		perr(st, st->too_many, "too many attributes (at most %d)", POL_TOKENS_MAX - 2);
	a.e.domain = parse_key(st, k, &nexthop);
	if (a.e.domain && nexthop)
		warn_nexthop(st, k);
	if (st->ntok < 2)
		perr(st, k->line, "missing TLS level after \"%.*s\"", pol_qlen(k->n), k->s);
	a.e.level = st->ntok < 2 ? -1 : parse_level(st, &st->toks[1]);
	a.e.line = k->line;
	/* Without a key and a level, attributes cannot be judged. */
	if (!a.e.domain || a.e.level < 0) {
		free(a.e.domain);
		return;
	}
	for (size_t i = 2; i < st->ntok && !st->fatal; i++) {
		size_t j = i;

		parse_attr(st, &a, &st->toks[i]);
		/* After a misplaced comment, the rest of its line is the comment. */
		while (st->toks[j].s[0] == '#' && i + 1 < st->ntok &&
		       st->toks[i + 1].line == st->toks[j].line)
			i++;
	}
	if (!st->fatal && finish_entry(st, &a) == 0 && !nexthop)
		add_entry(st, &a);
	pol_entry_fini(&a.e);
}

/*
 * The end of the "{ ... }" group that starts at s[0] (Postfix 3.0 and
 * later: braces protect blanks and commas in an attribute), nested braces
 * counted: the offset just past its '}', or 0 when the line ends first.
 */
static size_t brace_end(const char *s, size_t n)
{
	size_t depth = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '{')
			depth++;
		else if (s[i] == '}' && --depth == 0)
			return i + 1;
	}
	return 0;
}

/*
 * The tokens of one line.  A token that starts with '{' runs to its
 * matching '}', blanks and commas included, and must be followed by a
 * separator; Postfix would let the group go on over a continuation line,
 * which we refuse with a clear message rather than guess.
 */
static void add_tokens(struct pstate *st, const char *s, size_t n, unsigned line, const char *seps)
{
	size_t pos = 0, start, len;

	while (pol_tok_next(s, n, &pos, seps, &start, &len)) {
		if (s[start] == '{') {
			len = brace_end(s + start, n - start);
			if (len == 0) {
				perr(st, line,
				     "missing '}' after \"%.*s\" (a { name = value } "
				     "group must end on the line it starts)",
				     pol_qlen(n - start), s + start);
				return;
			}
			pos = start + len;
			if (pos < n && !strchr(seps, s[pos])) {
				perr(st, line, "text after '}' in \"%.*s\"", pol_qlen(n - start),
				     s + start);
				return;
			}
		}
		if (st->ntok == POL_TOKENS_MAX) {
			if (!st->too_many)
				st->too_many = line;
			return;
		}
		st->toks[st->ntok++] = (struct tok){s + start, len, line};
	}
}

/*
 * The message for a physical line rl_lines_next() refused (rc < 0): a NUL
 * gets its own, since "control character 0x00" hides the usual cause (a
 * binary or UTF-16 file saved by mistake).
 */
static void line_error(struct pstate *st, unsigned line, const char *s, int rc,
		       const struct rl_why *why)
{
	unsigned char ch = rc == RL_ETOOBIG ? 0 : (unsigned char)s[why->offset];

	if (rc == RL_ETOOBIG)
		perr(st, line, "line too long (over %d bytes)", POL_LINE_MAX);
	else if (ch == 0)
		perr(st, line, "NUL character");
	else
		perr(st, line, "control character 0x%02x in line", (unsigned)ch);
}

enum { ENTRY_NONE, ENTRY_OPEN, ENTRY_SKIP };

/*
 * One physical line: ignore it (blank, comment), continue the open entry,
 * or end it and start the next.  A line that cannot be read makes the
 * continuation lines after it be skipped, so one mistake is one message.
 */
static void scan_line(struct pstate *st, int *state, unsigned line, const char *s, size_t n,
		      int rc, const struct rl_why *why)
{
	size_t i = 0;

	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (rc > 0 && (i == n || s[i] == '#'))
		return;
	if (i == 0 && *state == ENTRY_OPEN)
		parse_entry(st);
	if (i == 0)
		*state = ENTRY_NONE;
	if (rc < 0) {
		line_error(st, line, s, rc, why);
		*state = ENTRY_SKIP;
		return;
	}
	if (i && *state == ENTRY_NONE)
		perr(st, line,
		     "continuation line (starts with a blank) without an entry before it");
	if (i && *state != ENTRY_OPEN) {
		*state = ENTRY_SKIP;
		return;
	}
	if (i == 0) {
		/* The key ends at a blank; after it, commas separate too (Postfix). */
		while (i < n && s[i] != ' ' && s[i] != '\t')
			i++;
		st->toks[0] = (struct tok){s, i, line};
		st->ntok = 1;
		st->too_many = 0;
		*state = ENTRY_OPEN;
	}
	add_tokens(st, s + i, n - i, line, " \t,");
}

/* Entries are sorted by key, then line: a run of one key is a duplicate. */
static void check_duplicates(struct pstate *st)
{
	struct pol_table *t = st->t;
	size_t first = 0;

	pol_table_sort(t);
	for (size_t i = 1; i < t->n; i++) {
		if (strcmp(t->v[i].domain, t->v[first].domain) != 0) {
			first = i;
			continue;
		}
		perr(st, t->v[i].line, "duplicate entry for \"%s\" (first on line %u)",
		     t->v[i].domain, t->v[first].line);
	}
}

/* Errors in line order (stable), whatever order the checks found them in. */
static void sort_errors(struct pol_errors *e)
{
	for (size_t i = 1; i < e->count; i++) {
		size_t j = i;

		while (j > 0 && e->e[j - 1].line > e->e[j].line) {
			char tmp[sizeof(e->e[0])];

			memcpy(tmp, &e->e[j], sizeof(tmp));
			memcpy(&e->e[j], &e->e[j - 1], sizeof(tmp));
			memcpy(&e->e[j - 1], tmp, sizeof(tmp));
			j--;
		}
	}
}

static void scan(struct pstate *st, const char *text, size_t len)
{
	struct rl_lines it;
	struct rl_why why = { 0 };
	size_t n;
	const char *s;
	int state = ENTRY_NONE, rc;

	rl_lines_init(&it, text, len, POL_LINE_MAX);
	while (!st->fatal && (rc = rl_lines_next(&it, &s, &n, &why)) != 0)
		scan_line(st, &state, it.line, s, n, rc, &why);
	if (!st->fatal && state == ENTRY_OPEN)
		parse_entry(st);
	if (!st->fatal)
		check_duplicates(st);
}

int pol_table_parse(const char *path, const char *text, size_t len, struct pol_table **out,
		    struct pol_errors *errs)
{
	struct pstate *st;
	int rc;

	RL_REQUIRE(path && out && (text || len == 0));
	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->path = path;
	st->errs = errs ? errs : &st->own;
	st->errs->count = st->errs->total = 0;
	st->errs->nwarn = st->errs->wtotal = 0;
	st->t = calloc(1, sizeof(*st->t));
	if (!st->t)
		oom(st, 0);
	else if (len > POL_FILE_MAX)
		perr(st, 0, "file too large (over %d bytes)", POL_FILE_MAX);
	else
		scan(st, text, len);
	sort_errors(st->errs);
	rc = st->fatal ? st->fatal : st->failed ? (len > POL_FILE_MAX ? RL_ETOOBIG : RL_EPARSE) : 0;
	if (rc == 0)
		*out = st->t;
	else
		pol_table_free(st->t);
	free(st);
	return rc;
}
