/*
 * cfg_parse: the relay's configuration file (INTERFACE.md, "Configuration
 * file").
 *
 * The syntax is Postfix main.cf's, so that administrators find no surprises:
 * "key = value" lines; a line whose first non-blank character is '#' is a
 * comment (a '#' later in a value belongs to the value); a line that starts
 * with a blank continues the previous key's value; blank lines are ignored.
 * Unlike Postfix, "$name" is not expanded and an unknown key is an error,
 * because a typo in a TLS setting must stop the relay, not be ignored.
 *
 * The file is read in two passes: the first checks the raw bytes of every
 * line (NUL, control characters, length), the second joins continuation
 * lines and hands each "key = value" to the handler of its key in cfg_keys[].
 * Cross-key checks (retry_min <= retry_max, certificate/key pairs) run last.
 *
 * cfg_parse() and its helpers do no I/O and keep no state outside the struct
 * cfg they fill; cfg.c holds the parts that touch the OS (cfg_defaults()
 * and cfg_load()) and the address matcher.
 */
#include "cfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg_int.h"
#include "pol.h"

/* One physical line, without its LF or CRLF (the contract's limit). */
#define CFG_LINE_MAX 4096
/* A key line joined with its continuation lines. */
#define CFG_LOGICAL_MAX 65536
/* How much of an offending value an error message quotes. */
#define CFG_QUOTE_MAX 80
/*
 * Longest time value, in seconds (about 68 years).  The relay converts
 * times to milliseconds and adds them to time_t values; this bound keeps
 * that arithmetic far from overflow.
 */
#define CFG_TIME_MAX INT32_MAX
/* Room for the entries of cfg_keys[]; checked by a static assertion below it. */
#define CFG_NKEYS 64

struct cfg_state {
	struct cfg *c;
	struct cfg_error *err;
	unsigned line;		      /* line of the key being applied */
	unsigned key_line[CFG_NKEYS]; /* where each key was last set, 0 = not */
};

struct cfg_key {
	const char *name;
	int (*set)(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n);
	size_t off;   /* offset of the field, for the generic handlers */
	uint64_t min; /* range, for the numeric handlers */
	uint64_t max;
	int empty_ok; /* an empty value is meaningful (mynetworks) */
};

static int cfg_fail(struct cfg_state *st, const char *fmt, ...) RL_PRINTF(2, 3);

static int cfg_fail(struct cfg_state *st, const char *fmt, ...)
{
	va_list ap;

	st->err->line = st->line;
	va_start(ap, fmt);
	vsnprintf(st->err->msg, sizeof(st->err->msg), fmt, ap);
	va_end(ap);
	return RL_ECONFIG;
}

/* Translate an allocation or buffer failure into an error message. */
static int cfg_fail_code(struct cfg_state *st, int rc)
{
	if (rc == RL_ETOOBIG)
		return cfg_fail(st, "line too long with its continuation lines (over %d bytes)",
				CFG_LOGICAL_MAX);
	if (rc < 0) {
		cfg_fail(st, "%s", rl_strerror(rc));
		return rc;
	}
	return 0;
}

/* Length of a value to quote in a message ("%.*s"), capped. */
static int qlen(size_t n)
{
	return (int)(n < CFG_QUOTE_MAX ? n : CFG_QUOTE_MAX);
}

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static void trim(const char **s, size_t *n)
{
	while (*n && is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_blank((*s)[*n - 1]))
		(*n)--;
}

/*
 * The next item of a comma-separated list, trimmed of blanks.  An item may
 * be empty ("a,,b"), which callers reject.  *p is NULL after the last item.
 */
static int list_next(const char **p, const char *end, const char **item, size_t *n)
{
	const char *s = *p, *comma;

	if (!s)
		return 0;
	comma = memchr(s, ',', (size_t)(end - s));
	*p = comma ? comma + 1 : NULL;
	*item = s;
	*n = (size_t)((comma ? comma : end) - s);
	trim(item, n);
	return 1;
}

static int is_sep(const char *seps, char ch)
{
	return ch != '\0' && strchr(seps, ch) != NULL;
}

/* The next token separated by any run of the characters in seps. */
static int tok_next(const char **p, const char *end, const char *seps, const char **tok, size_t *n)
{
	const char *s = *p;

	while (s < end && is_sep(seps, *s))
		s++;
	if (s == end)
		return 0;
	*tok = s;
	while (s < end && !is_sep(seps, *s))
		s++;
	*n = (size_t)(s - *tok);
	*p = s;
	return 1;
}

/* Decimal digits only, no sign, at most max; RL_ETOOBIG above it. */
static int parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0)
		return RL_EPARSE;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(unsigned char)s[i] - '0';

		if (d > 9)
			return RL_EPARSE;
		/* v * 10 + d <= max, written so that nothing wraps. */
		if (d > max || v > (max - d) / 10)
			return RL_ETOOBIG;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_port(const char *s, size_t n, unsigned *port)
{
	uint64_t v;

	if (parse_u64(s, n, 65535, &v) < 0 || v == 0)
		return RL_EPARSE;
	*port = (unsigned)v;
	return 0;
}

/* inet_pton() over a slice: af's address bytes into out (4 or 16). */
static int addr_pton(int af, const char *s, size_t n, unsigned char *out)
{
	char buf[64];

	if (n >= sizeof(buf))
		return RL_EPARSE;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(af, buf, out) == 1 ? 0 : RL_EPARSE;
}

void cfg_addr_fill(struct cfg_addr *a, int af, const unsigned char *bytes, unsigned port)
{
	memset(a, 0, sizeof(*a));
	if (af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, bytes, 4);
		a->len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->sa;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, bytes, 16);
		a->len = sizeof(*sin6);
	}
}

/* "IPv4:PORT" or "[IPv6]:PORT" (listen). */
static int parse_hostport(const char *s, size_t n, struct cfg_addr *a)
{
	const char *end = s + n, *host = s, *colon;
	unsigned char bytes[16];
	unsigned port;
	int af = AF_INET;

	if (n && s[0] == '[') {
		const char *rb = memchr(s, ']', n);

		if (!rb)
			return RL_EPARSE;
		af = AF_INET6;
		host = s + 1;
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		n = (size_t)(rb - host);
	} else {
		colon = memchr(s, ':', n);
		n = colon ? (size_t)(colon - s) : n;
	}
	if (!colon)
		return RL_EPARSE;
	if (parse_port(colon + 1, (size_t)(end - colon - 1), &port) < 0)
		return RL_EPARSE;
	if (addr_pton(af, host, n, bytes) < 0)
		return RL_EPARSE;
	cfg_addr_fill(a, af, bytes, port);
	return 0;
}

/* "IP[@PORT]" with a bare IPv4 or IPv6 address (dns_servers). */
static int parse_server(const char *s, size_t n, struct cfg_addr *a)
{
	const char *at = memchr(s, '@', n);
	size_t hlen = at ? (size_t)(at - s) : n;
	unsigned char bytes[16];
	unsigned port = 53;
	int af = memchr(s, ':', hlen) ? AF_INET6 : AF_INET;

	if (at && parse_port(at + 1, n - hlen - 1, &port) < 0)
		return RL_EPARSE;
	if (addr_pton(af, s, hlen, bytes) < 0)
		return RL_EPARSE;
	cfg_addr_fill(a, af, bytes, port);
	return 0;
}

/* Clear every bit of addr (alen bytes) beyond the first bits bits. */
static void mask_host(unsigned char *addr, size_t alen, unsigned bits)
{
	for (size_t i = 0; i < alen; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		addr[i] &= (unsigned char)(0xff << (8 - bits));
		bits = 0;
	}
}

/*
 * One mynetworks entry: "a.b.c.d[/n]", "[v6][/n]" or bare "v6[/n]" (Postfix
 * accepts both IPv6 forms).  Returns NULL or why the entry was refused.
 */
static const char *parse_net(const char *s, size_t n, struct rl_net *net)
{
	const char *slash = memchr(s, '/', n);
	size_t alen = slash ? (size_t)(slash - s) : n;
	const char *a = s;
	unsigned width;
	uint64_t prefix;

	memset(net, 0, sizeof(*net));
	net->family = memchr(s, ':', alen) || (alen && s[0] == '[') ? AF_INET6 : AF_INET;
	if (alen >= 2 && s[0] == '[' && s[alen - 1] == ']') {
		a = s + 1;
		alen -= 2;
	}
	if (addr_pton(net->family, a, alen, net->addr) < 0)
		return "bad address";
	width = net->family == AF_INET ? 32 : 128;
	prefix = width;
	if (slash && parse_u64(slash + 1, (size_t)(s + n - slash - 1), width, &prefix) < 0)
		return "bad prefix length";
	net->prefix = (unsigned)prefix;
	return NULL;
}

/* Handlers, one per kind of value.  v is trimmed and n > 0 unless empty_ok. */

static void *field(struct cfg_state *st, const struct cfg_key *k)
{
	return (char *)st->c + k->off;
}

static int set_str(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	char **dst = field(st, k);
	char *copy = strndup(v, n);

	if (!copy)
		return cfg_fail_code(st, -ENOMEM);
	free(*dst);
	*dst = copy;
	return 0;
}

/* A number within [k->min, k->max] for the unsigned and int fields. */
static int get_range(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n,
		     uint64_t *out)
{
	if (parse_u64(v, n, k->max, out) < 0 || *out < k->min)
		return cfg_fail(st, "%s: expected a number from %llu to %llu, got \"%.*s\"",
				k->name, (unsigned long long)k->min, (unsigned long long)k->max,
				qlen(n), v);
	return 0;
}

static int set_uint(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	uint64_t x = 0;
	int rc = get_range(st, k, v, n, &x);

	if (rc < 0)
		return rc;
	*(unsigned *)field(st, k) = (unsigned)x;
	return 0;
}

static int set_int(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	uint64_t x = 0;
	int rc = get_range(st, k, v, n, &x);

	if (rc < 0)
		return rc;
	*(int *)field(st, k) = (int)x;
	return 0;
}

/* Bytes: digits only.  "50M" is refused rather than misread as 50. */
static int set_size(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	uint64_t x = 0;
	int rc = parse_u64(v, n, UINT64_MAX, &x);

	if (rc == RL_EPARSE && v[n - 1] >= '0' && v[n - 1] <= '9')
		return cfg_fail(st, "%s: bad size \"%.*s\" (expected bytes)", k->name, qlen(n), v);
	if (rc == RL_EPARSE)
		return cfg_fail(st, "%s: sizes are in bytes, without a unit: \"%.*s\"", k->name,
				qlen(n), v);
	if (rc < 0)
		return cfg_fail(st, "%s: size \"%.*s\" is too large", k->name, qlen(n), v);
	if (x < k->min)
		return cfg_fail(st, "%s: must be at least %llu bytes, got %llu", k->name,
				(unsigned long long)k->min, (unsigned long long)x);
	*(uint64_t *)field(st, k) = x;
	return 0;
}

/* A percentage "N%" within [k->min, k->max] (smtpd_mynetworks_reserve). */
static int set_pct(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	uint64_t x = 0;

	if (n < 2 || v[n - 1] != '%' || parse_u64(v, n - 1, k->max, &x) < 0 || x < k->min)
		return cfg_fail(st, "%s: expected a percentage from %llu%% to %llu%%, got \"%.*s\"",
				k->name, (unsigned long long)k->min, (unsigned long long)k->max,
				qlen(n), v);
	*(unsigned *)field(st, k) = (unsigned)x;
	return 0;
}

static const struct {
	char unit;
	uint64_t seconds;
} cfg_units[] = {
    {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800},
};

/* A time: digits and exactly one unit, as Postfix time values. */
static int set_time(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	char unit = v[n - 1];
	uint64_t mult = 0, x = 0;
	int rc;

	for (size_t i = 0; i < sizeof(cfg_units) / sizeof(cfg_units[0]); i++)
		if (cfg_units[i].unit == unit)
			mult = cfg_units[i].seconds;
	if (unit >= '0' && unit <= '9')
		return cfg_fail(st, "%s: times take a unit (s, m, h, d, w): \"%.*s\"", k->name,
				qlen(n), v);
	if (mult == 0)
		return cfg_fail(
		    st, "%s: bad time \"%.*s\" (expected a number and one unit: s, m, h, d, w)",
		    k->name, qlen(n), v);
	rc = parse_u64(v, n - 1, k->max / mult, &x);
	if (rc == RL_EPARSE)
		return cfg_fail(
		    st, "%s: bad time \"%.*s\" (expected a number and one unit: s, m, h, d, w)",
		    k->name, qlen(n), v);
	if (rc < 0)
		return cfg_fail(st, "%s: time \"%.*s\" is too large (at most %llus)", k->name,
				qlen(n), v, (unsigned long long)k->max);
	if (x == 0)
		return cfg_fail(st, "%s: must be greater than 0", k->name);
	*(int64_t *)field(st, k) = (int64_t)(x * mult);
	return 0;
}

/*
 * A time that 0 turns off (delay_warning_time): "0" alone or with a unit
 * ("0h", as Postfix writes it) stores 0; anything else is set_time()'s.
 */
static int set_time_off(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	size_t digits = n;

	for (size_t i = 0; i < sizeof(cfg_units) / sizeof(cfg_units[0]); i++)
		if (n > 1 && cfg_units[i].unit == v[n - 1])
			digits = n - 1;
	for (size_t i = 0; i < digits; i++)
		if (v[i] != '0')
			return set_time(st, k, v, n);
	*(int64_t *)field(st, k) = 0;
	return 0;
}

static int set_listen(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	struct cfg_addr tmp[CFG_MAX_LISTEN];
	const char *p = v, *item;
	size_t count = 0, ilen;

	while (list_next(&p, v + n, &item, &ilen)) {
		if (count == CFG_MAX_LISTEN)
			return cfg_fail(st, "%s: too many addresses (at most %d)", k->name,
					CFG_MAX_LISTEN);
		if (parse_hostport(item, ilen, &tmp[count]) < 0)
			return cfg_fail(
			    st, "%s: bad address \"%.*s\" (expected IPv4:PORT or [IPv6]:PORT)",
			    k->name, qlen(ilen), item);
		/* A second bind() to the same address would fail at start-up. */
		for (size_t i = 0; i < count; i++)
			if (memcmp(&tmp[i], &tmp[count], sizeof(tmp[i])) == 0)
				return cfg_fail(st, "%s: \"%.*s\" is listed twice", k->name,
						qlen(ilen), item);
		count++;
	}
	memcpy(st->c->listen, tmp, count * sizeof(tmp[0]));
	st->c->nlisten = count;
	return 0;
}

/* metrics_listen: one IPv4:PORT or [IPv6]:PORT, as a listen address; empty: none. */
static int set_metrics_listen(struct cfg_state *st, const struct cfg_key *k, const char *v,
			      size_t n)
{
	struct cfg_addr a;

	if (n == 0) {
		memset(&st->c->metrics_listen, 0, sizeof(st->c->metrics_listen));
		return 0;
	}
	if (parse_hostport(v, n, &a) < 0)
		return cfg_fail(st, "%s: bad address \"%.*s\" (expected IPv4:PORT or [IPv6]:PORT)",
				k->name, qlen(n), v);
	st->c->metrics_listen = a;
	return 0;
}

/* RFC 1123 section 2.1 host name, written without the root's dot. */
static const char *hostname_problem(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0)
		return "empty";
	if (n > 253)
		return "longer than 253 characters";
	if (s[n - 1] == '.')
		return "trailing dot";
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
		      (ch >= '0' && ch <= '9') || ch == '-'))
			return "only letters, digits, hyphens and dots are allowed";
		if (++label > 63)
			return "label longer than 63 characters";
	}
	return NULL;
}

static int set_hostname(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	const char *why = hostname_problem(v, n);

	if (why)
		return cfg_fail(st, "%s: bad host name \"%.*s\": %s", k->name, qlen(n), v, why);
	return set_str(st, k, v, n);
}

/*
 * Text that goes into report JSON and mail headers (Subject,
 * TLS-Report-Submitter): printable ASCII, at most CFG_TEXT_MAX octets, so
 * that no value can add a header line.
 */
#define CFG_TEXT_MAX 200

static int set_text(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	if (n == 0 || n > CFG_TEXT_MAX)
		return cfg_fail(st, "%s: expected 1 to %d characters", k->name, CFG_TEXT_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
			return cfg_fail(st, "%s: only printable ASCII is allowed", k->name);
	return set_str(st, k, v, n);
}

/* An address LOCAL@DOMAIN for an envelope sender and a From header. */
static int set_mailbox(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	const char *at = memchr(v, '@', n);

	if (!at || at == v || memchr(at + 1, '@', n - (size_t)(at - v) - 1) ||
	    hostname_problem(at + 1, n - (size_t)(at - v) - 1))
		return cfg_fail(st, "%s: expected an address LOCAL@DOMAIN, got \"%.*s\"", k->name,
				qlen(n), v);
	for (const char *p = v; p < at; p++)
		if (*p <= ' ' || *p > '~' || strchr("<>()[]\\,;:\"", *p))
			return cfg_fail(st, "%s: bad local part in \"%.*s\"", k->name, qlen(n),
					v);
	return set_str(st, k, v, n);
}

/*
 * user: a login name as useradd(8) makes them (letters, digits, '.', '_',
 * '-', not starting with '-', at most 32 characters).  Whether it exists
 * is cfg_load()'s question: the parser does no lookups.  Empty: none.
 */
#define CFG_USER_MAX 32

static int set_user(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	if (n == 0) {
		free(st->c->user);
		st->c->user = NULL;
		st->c->user_line = 0;
		return 0;
	}
	if (n > CFG_USER_MAX || v[0] == '-')
		return cfg_fail(st, "%s: bad user name \"%.*s\"", k->name, qlen(n), v);
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    v[i]))
			return cfg_fail(st, "%s: bad user name \"%.*s\"", k->name, qlen(n), v);
	st->c->user_line = st->line;
	return set_str(st, k, v, n);
}

/* "a.b.c.d/n" or "[v6]/n" for a message, from a network's bytes. */
static void net_format(const struct rl_net *net, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(net->family, net->addr, a, sizeof(a));
	if (net->family == AF_INET)
		snprintf(buf, size, "%s/%u", a, net->prefix);
	else
		snprintf(buf, size, "[%s]/%u", a, net->prefix);
}

static int set_networks(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	struct rl_net tmp[CFG_MAX_NETWORKS], masked;
	const char *p = v, *tok, *why;
	size_t count = 0, tlen;
	char hint[64];

	while (tok_next(&p, v + n, ", \t", &tok, &tlen)) {
		if (count == CFG_MAX_NETWORKS)
			return cfg_fail(st, "%s: too many networks (at most %d)", k->name,
					CFG_MAX_NETWORKS);
		why = parse_net(tok, tlen, &tmp[count]);
		if (why)
			return cfg_fail(st, "%s: %s in \"%.*s\" (expected a.b.c.d/n or [ipv6]/n)",
					k->name, why, qlen(tlen), tok);
		/* 10.1.2.3/8 is most likely a typo; Postfix warns, we refuse. */
		masked = tmp[count];
		mask_host(masked.addr, sizeof(masked.addr), masked.prefix);
		net_format(&masked, hint, sizeof(hint));
		if (memcmp(masked.addr, tmp[count].addr, sizeof(masked.addr)) != 0)
			return cfg_fail(
			    st,
			    "%s: \"%.*s\" has host bits set beyond the prefix (did you mean %s?)",
			    k->name, qlen(tlen), tok, hint);
		count++;
	}
	memcpy(st->c->mynetworks, tmp, count * sizeof(tmp[0]));
	st->c->nmynetworks = count;
	return 0;
}

static int set_level(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	int level = pol_level_from_name(v, n);
	char names[128] = "";

	if (level >= 0) {
		*(int *)field(st, k) = level;
		return 0;
	}
	/* The names come from the one table of levels, pol_level.c. */
	for (int i = 0; i < POL_LEVEL_COUNT; i++) {
		size_t used = strlen(names);

		snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
			 pol_level_name(i));
	}
	return cfg_fail(st, "%s: unknown level \"%.*s\" (expected one of %s)", k->name, qlen(n), v,
			names);
}

static int set_dns(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	struct cfg_addr tmp[CFG_MAX_DNS];
	const char *p = v, *item;
	size_t count = 0, ilen;

	if (n == 6 && memcmp(v, "system", 6) == 0) {
		st->c->dns_system = 1;
		st->c->ndns = 0;
		return 0;
	}
	/* libunbound resolves from the root servers itself: no forwarder. */
	if (n == 9 && memcmp(v, "recursive", 9) == 0) {
		st->c->dns_system = 0;
		st->c->ndns = 0;
		return 0;
	}
	while (list_next(&p, v + n, &item, &ilen)) {
		if (count == CFG_MAX_DNS)
			return cfg_fail(st, "%s: too many servers (at most %d)", k->name,
					CFG_MAX_DNS);
		if (parse_server(item, ilen, &tmp[count]) < 0)
			return cfg_fail(st,
					"%s: bad server \"%.*s\" (expected system, recursive or IP[@PORT])",
					k->name, qlen(ilen), item);
		count++;
	}
	memcpy(st->c->dns, tmp, count * sizeof(tmp[0]));
	st->c->ndns = count;
	st->c->dns_system = 0;
	return 0;
}

/* Postfix's booleans: "yes" or "no", nothing else (no "1", no "true"). */
static int set_bool(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	int *out = field(st, k);

	if (n == 3 && memcmp(v, "yes", 3) == 0)
		*out = 1;
	else if (n == 2 && memcmp(v, "no", 2) == 0)
		*out = 0;
	else
		return cfg_fail(st, "%s: expected yes or no, got \"%.*s\"", k->name, qlen(n), v);
	return 0;
}

_Static_assert(CFG_TLS1_0 == POL_TLS1_0 && CFG_TLS1_1 == POL_TLS1_1 && CFG_TLS1_2 == POL_TLS1_2 &&
		   CFG_TLS1_3 == POL_TLS1_3,
	       "cfg and pol protocol bits must agree");

/*
 * Postfix smtp_tls_protocols: ">=TLSv1.2", "<=TLSv1.3", a list of names
 * (only those) or exclusions ("!TLSv1"); all forms combine.  The policy
 * module parses it, so the policy file's protocols= reads the same way.
 */
static int set_protocols(struct cfg_state *st, const struct cfg_key *k, const char *v, size_t n)
{
	struct rl_why why = {0, NULL, 0};
	unsigned mask = 0;
	char msg[200];
	char *text;

	if (pol_protocols_parse(v, n, &mask, &why) < 0) {
		pol_protocols_error(v, n, &why, msg, sizeof(msg));
		return cfg_fail(st, "%s: %s", k->name, msg);
	}
	text = strndup(v, n);
	if (!text)
		return cfg_fail_code(st, -ENOMEM);
	free(st->c->tls_protocols_text);
	st->c->tls_protocols_text = text;
	st->c->tls_protocols = mask;
	return 0;
}

#define F(name) offsetof(struct cfg, name)

static const struct cfg_key cfg_keys[] = {
    {"listen", set_listen, 0, 0, 0, 0},
    {"myhostname", set_hostname, F(myhostname), 0, 0, 0},
    {"mynetworks", set_networks, 0, 0, 0, 1},
    {"queue_dir", set_str, F(queue_dir), 0, 0, 0},
    {"policy_file", set_str, F(policy_file), 0, 0, 0},
    {"default_tls_level", set_level, F(default_tls_level), 0, 0, 0},
    {"remote_port", set_uint, F(remote_port), 1, 65535, 0},
    {"dns_servers", set_dns, 0, 0, 0, 0},
    {"dns_trust_anchor_file", set_str, F(dns_trust_anchor_file), 0, 0, 0},
    {"dns_unbound_config", set_str, F(dns_unbound_config), 0, 0, 0},
    {"tls_ca_file", set_str, F(tls_ca_file), 0, 0, 0},
    {"tls_cert_file", set_str, F(tls_cert_file), 0, 0, 0},
    {"tls_key_file", set_str, F(tls_key_file), 0, 0, 0},
    {"tls_protocols", set_protocols, 0, 0, 0, 0},
    {"tls_priority", set_str, F(tls_priority), 0, 0, 0},
    {"smtpd_tls_cert_file", set_str, F(smtpd_tls_cert_file), 0, 0, 0},
    {"smtpd_tls_key_file", set_str, F(smtpd_tls_key_file), 0, 0, 0},
    {"smtpd_tls_ask_ccert", set_bool, F(smtpd_tls_ask_ccert), 0, 0, 0},
    {"relay_clientcerts", set_str, F(relay_clientcerts), 0, 0, 0},
    {"relay_client_ca_file", set_str, F(relay_client_ca_file), 0, 0, 0},
    {"smtpd_sasl_password_file", set_str, F(smtpd_sasl_password_file), 0, 0, 0},
    {"requiretls", set_bool, F(requiretls), 0, 0, 0},
    {"mta_sts", set_bool, F(mta_sts), 0, 0, 0},
    {"tlsrpt", set_bool, F(tlsrpt), 0, 0, 0},
    {"tlsrpt_org_name", set_text, F(tlsrpt_org_name), 0, 0, 0},
    {"tlsrpt_contact_info", set_text, F(tlsrpt_contact_info), 0, 0, 0},
    {"tlsrpt_sender", set_mailbox, F(tlsrpt_sender), 0, 0, 0},
    {"metrics_listen", set_metrics_listen, 0, 0, 0, 1},
    {"user", set_user, F(user), 0, 0, 1},
    {"tls_loglevel", set_int, F(tls_loglevel), 0, 4, 0},
    {"max_message_size", set_size, F(max_message_size), 1024, 0, 0},
    {"retry_min", set_time, F(retry_min), 0, CFG_TIME_MAX, 0},
    {"retry_max", set_time, F(retry_max), 0, CFG_TIME_MAX, 0},
    {"queue_lifetime", set_time, F(queue_lifetime), 0, CFG_TIME_MAX, 0},
    {"delay_warning_time", set_time_off, F(delay_warning_time), 0, CFG_TIME_MAX, 0},
    {"smtpd_timeout", set_time, F(smtpd_timeout), 0, CFG_TIME_MAX, 0},
    {"smtpd_max_session_time", set_time, F(smtpd_max_session_time), 0, CFG_TIME_MAX, 0},
    {"smtpd_max_connections", set_uint, F(smtpd_max_connections), 1, 1000000, 0},
    {"smtpd_max_recipients", set_uint, F(smtpd_max_recipients), 1, 100000, 0},
    {"queue_max_size", set_size, F(queue_max_size), 1048576, 0, 0},
    {"smtp_max_connections", set_uint, F(smtp_max_connections), 1, 100000, 0},
    {"smtp_destination_concurrency_limit", set_uint, F(smtp_destination_concurrency_limit), 1, 10000, 0},
    {"smtp_initial_destination_concurrency", set_uint, F(smtp_initial_destination_concurrency), 1, 10000, 0},
    {"smtp_mx_address_limit", set_uint, F(smtp_mx_address_limit), 1, 512, 0},
    {"smtp_mx_session_limit", set_uint, F(smtp_mx_session_limit), 1, 512, 0},
    /* Inbound hardening: mail loops, connection floods, memory per message. */
    {"hopcount_limit", set_uint, F(hopcount_limit), 1, 10000, 0},
    {"smtpd_client_connection_count_limit", set_uint, F(smtpd_client_connection_count_limit), 0, 1000000, 0},
    {"smtpd_mynetworks_reserve", set_pct, F(smtpd_mynetworks_reserve), 0, 90, 0},
    {"smtpd_spill_threshold", set_size, F(smtpd_spill_threshold), 16384, 0, 0},
};

#undef F

_Static_assert(sizeof(cfg_keys) / sizeof(cfg_keys[0]) <= CFG_NKEYS, "CFG_NKEYS is too small");

/* Keys are case-sensitive, as in Postfix. */
static const struct cfg_key *key_find(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(cfg_keys) / sizeof(cfg_keys[0]); i++)
		if (strlen(cfg_keys[i].name) == n && memcmp(cfg_keys[i].name, s, n) == 0)
			return &cfg_keys[i];
	return NULL;
}

/* Apply one logical line, "key = value" with continuations joined. */
static int cfg_apply(struct cfg_state *st, const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n), *key = s, *val;
	size_t klen, vlen;
	const struct cfg_key *k;
	int rc;

	if (!eq)
		return cfg_fail(st, "expected \"key = value\", got \"%.*s\"", qlen(n), s);
	klen = (size_t)(eq - s);
	trim(&key, &klen);
	val = eq + 1;
	vlen = (size_t)(s + n - val);
	trim(&val, &vlen);
	if (klen == 0)
		return cfg_fail(st, "missing key before \"=\"");
	k = key_find(key, klen);
	if (!k)
		return cfg_fail(st, "unknown configuration key \"%.*s\"", qlen(klen), key);
	if (vlen == 0 && !k->empty_ok)
		return cfg_fail(st, "%s: empty value", k->name);
	rc = k->set(st, k, val, vlen);
	if (rc < 0)
		return rc;
	st->key_line[k - cfg_keys] = st->line;
	return 0;
}

/* Pass 1: the bytes of each line, before any of them is interpreted. */
static int cfg_check_bytes(struct cfg_state *st, const char *text, size_t len)
{
	struct rl_lines it;
	struct rl_why why = { 0 };
	size_t n;
	const char *s = NULL;
	int rc;

	/* Values reach log lines and the EHLO greeting: rl_lines_next()
	 * refuses control characters as well as overlong lines. */
	rl_lines_init(&it, text, len, CFG_LINE_MAX);
	while ((rc = rl_lines_next(&it, &s, &n, &why)) > 0)
		;
	st->line = it.line;
	if (rc == RL_ETOOBIG)
		return cfg_fail(st, "line too long (over %d bytes)", CFG_LINE_MAX);
	if (rc < 0 && s[why.offset] == '\0')
		return cfg_fail(st, "NUL byte in line");
	if (rc < 0)
		return cfg_fail(st, "control character 0x%02x in line",
				(unsigned)(unsigned char)s[why.offset]);
	return 0;
}

/*
 * Pass 2, one physical line: skip blank and comment lines, append a
 * continuation line to the pending logical line in lb, or apply the pending
 * line and start a new one.  *start is the pending line's number (0: none).
 */
static int cfg_scan_line(struct cfg_state *st, struct rl_buf *lb, unsigned *start, unsigned lineno,
			 const char *s, size_t n)
{
	const char *t = s;
	size_t tn = n;
	int rc;

	trim(&t, &tn);
	if (tn == 0 || t[0] == '#')
		return 0;
	st->line = lineno;
	if (t != s) {
		if (*start == 0)
			return cfg_fail(st, "continuation line (starts with a blank) without a "
					    "\"key = value\" line before it");
		rc = rl_buf_append(lb, " ", 1);
		if (rc == 0)
			rc = rl_buf_append(lb, t, tn);
		return cfg_fail_code(st, rc);
	}
	if (*start) {
		st->line = *start;
		rc = cfg_apply(st, lb->data, lb->len);
		if (rc < 0)
			return rc;
		st->line = lineno;
	}
	rl_buf_reset(lb);
	*start = lineno;
	return cfg_fail_code(st, rl_buf_append(lb, t, tn));
}

static int cfg_scan(struct cfg_state *st, const char *text, size_t len)
{
	struct rl_lines it;
	struct rl_buf lb;
	size_t n;
	const char *s;
	unsigned start = 0;
	int rc = 0;

	/* Pass 1 has refused every line that rl_lines_next() refuses. */
	rl_lines_init(&it, text, len, CFG_LINE_MAX);
	rl_buf_init(&lb, CFG_LOGICAL_MAX);
	while (rc == 0 && rl_lines_next(&it, &s, &n, NULL) > 0)
		rc = cfg_scan_line(st, &lb, &start, it.line, s, n);
	if (rc == 0 && start) {
		st->line = start;
		rc = cfg_apply(st, lb.data, lb.len);
	}
	rl_buf_fini(&lb);
	return rc;
}

static unsigned key_line(const struct cfg_state *st, const char *name)
{
	const struct cfg_key *k = key_find(name, strlen(name));

	RL_REQUIRE(k);
	return st->key_line[k - cfg_keys];
}

static int cfg_check_retry(struct cfg_state *st)
{
	unsigned lmin = key_line(st, "retry_min"), lmax = key_line(st, "retry_max");

	if (st->c->retry_min <= st->c->retry_max)
		return 0;
	/* Blame whichever of the two was written last. */
	st->line = lmin > lmax ? lmin : lmax;
	return cfg_fail(st, "retry_min (%llds) must not be greater than retry_max (%llds)",
			(long long)st->c->retry_min, (long long)st->c->retry_max);
}

/* A certificate without its key (or the reverse) cannot be loaded. */
static int cfg_check_pair(struct cfg_state *st, const char *cert, const char *key)
{
	const struct cfg_key *kc = key_find(cert, strlen(cert));
	const struct cfg_key *kk = key_find(key, strlen(key));
	int has_cert = *(char **)field(st, kc) != NULL;
	int has_key = *(char **)field(st, kk) != NULL;

	if (has_cert == has_key)
		return 0;
	st->line = key_line(st, has_cert ? cert : key);
	return cfg_fail(st, "%s is set but %s is not (set both or neither)", has_cert ? cert : key,
			has_cert ? key : cert);
}

int cfg_parse(struct cfg *c, const char *text, size_t len, struct cfg_error *err)
{
	struct cfg_error dummy;
	struct cfg_state st = {.c = c, .err = err ? err : &dummy};
	int rc;

	RL_REQUIRE(text || len == 0);
	st.err->line = 0;
	st.err->msg[0] = '\0';
	rc = cfg_check_bytes(&st, text, len);
	if (rc < 0)
		return rc;
	rc = cfg_scan(&st, text, len);
	if (rc < 0)
		return rc;
	rc = cfg_check_retry(&st);
	if (rc < 0)
		return rc;
	rc = cfg_check_pair(&st, "tls_cert_file", "tls_key_file");
	if (rc < 0)
		return rc;
	return cfg_check_pair(&st, "smtpd_tls_cert_file", "smtpd_tls_key_file");
}
