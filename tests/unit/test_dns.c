/*
 * test_dns: drive relay/dns.c against a real resolver setup and print what
 * each lookup returned, one line per lookup, for tests/integration/test_dns.py
 * (which starts Knot DNS and writes the configuration).
 *
 * Usage: test_dns -c CONFIG [-t TIMEOUT_MS] [-f FREE_AFTER_MS] LOOKUP...
 *   LOOKUP is mx:NAME, addrs:NAME, tlsa:NAME, txt:NAME, check:ZONE
 *   (dns_check_dnssec; "check:" alone: the zone dns_check_zone() picks from
 *   the configuration), or cancel-mx:NAME / cancel-addrs:NAME /
 *   cancel-tlsa:NAME / cancel-txt:NAME / cancel-check:ZONE
 *   (started, then cancelled at once: its callback must never run).
 *   All lookups run at the same time; lines are printed in argument order:
 *     mx NAME status=OK secure=1 implicit=0 null_mx=0 hosts=10:a,20:b ms=N why=TEXT
 *     addrs NAME status=OK secure=1 secure6=1 secure4=1 addrs=::1,127.0.0.5 canon=- ms=N why=TEXT
 *       (canon: the end of the host's CNAME chain, - when none)
 *     tlsa NAME status=OK secure=1 n=2 dropped=0 rdata=35:030101AB..,4099:0300..+ ms=N why=TEXT
 *     txt NAME status=OK secure=1 n=1 dropped=0 rdata=21:14763D53.. ms=N why=TEXT
 *       (TXT rdata in wire form, cut at TXT_HEX_MAX octets)
 *     check ZONE status=SECURE|BOGUS|INSECURE|NOANSWER ms=N why=TEXT
 *       (each record LEN:HEX, HEX cut at TLSA_HEX_MAX octets and then marked "+")
 *     mx NAME error=CODE
 *     cancelled NAME
 *     pending NAME      (with -f: dns_free() came first)
 *   A line starting with "FAIL" reports a broken promise of dns.h (a
 *   callback inside dns_mx(), twice, or after cancel; the loop not closing).
 * Exit status: 0 when nothing FAILed, 1 otherwise, 2 on usage errors.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cfg.h"
#include "dns.h"

#define MAX_LOOKUPS 256
#define TLSA_HEX_MAX 40 /* octets of each TLSA rdata shown */
#define TXT_HEX_MAX 100 /* octets of each TXT rdata shown */

enum { L_MX, L_ADDRS, L_TLSA, L_CHECK, L_TXT };

struct lookup {
	int kind;
	int cancel;
	const char *name;
	int id;
	int err;   /* dns_mx()/dns_addrs() failed with this */
	int calls; /* callbacks seen */
	uint64_t start;
	char line[4096];
};

static struct lookup lookups[MAX_LOOKUPS];
static size_t nlookups, outstanding;
static struct dns *resolver;
static uv_loop_t loop;
static int failed, starting;
static char picked_zone[DNS_NAME_MAX]; /* "check:" alone: dns_check_zone() */

static const char *status_name(int s)
{
	static const char *names[] = {"OK", "NXDOMAIN", "NODATA", "TEMPFAIL", "BOGUS"};

	return s >= 0 && s < 5 ? names[s] : "?";
}

static void done_one(struct lookup *l)
{
	if (starting) {
		printf("FAIL callback for %s ran inside dns_mx()/dns_addrs()\n", l->name);
		failed = 1;
	}
	if (l->cancel) {
		printf("FAIL callback for cancelled %s ran\n", l->name);
		failed = 1;
	}
	if (++l->calls > 1) {
		printf("FAIL callback for %s ran %d times\n", l->name, l->calls);
		failed = 1;
		return;
	}
	/* The id of a finished lookup must be harmless to cancel. */
	dns_cancel(resolver, l->id);
	/* Freeing the resolver from inside its own callback is allowed. */
	if (--outstanding == 0) {
		dns_free(resolver);
		resolver = NULL;
	}
}

static void on_mx(void *arg, const struct dns_mx_result *r)
{
	struct lookup *l = arg;
	size_t pos;

	pos = (size_t)snprintf(l->line, sizeof(l->line),
			       "mx %s status=%s secure=%d implicit=%d null_mx=%d hosts=", l->name,
			       status_name(r->status), r->secure, r->implicit, r->null_mx);
	for (size_t i = 0; i < r->nhosts && pos < sizeof(l->line); i++)
		pos += (size_t)snprintf(l->line + pos, sizeof(l->line) - pos, "%s%u:%s",
					i ? "," : "", r->hosts[i].pref, r->hosts[i].name);
	if (pos < sizeof(l->line))
		snprintf(l->line + pos, sizeof(l->line) - pos, " ms=%llu why=%s",
			 (unsigned long long)(uv_now(&loop) - l->start), r->why);
	done_one(l);
}

static void on_addrs(void *arg, const struct dns_addr_result *r)
{
	struct lookup *l = arg;
	size_t pos;

	pos = (size_t)snprintf(l->line, sizeof(l->line),
			       "addrs %s status=%s secure=%d secure6=%d secure4=%d addrs=",
			       l->name, status_name(r->status), r->secure, r->secure6, r->secure4);
	for (size_t i = 0; i < r->naddr && pos < sizeof(l->line); i++) {
		const struct dns_addr *a = &r->addr[i];
		char ip[INET6_ADDRSTRLEN] = "?";

		if (a->sa.ss_family == AF_INET6 && a->len == sizeof(struct sockaddr_in6))
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->sa)->sin6_addr, ip,
				  sizeof(ip));
		else if (a->sa.ss_family == AF_INET && a->len == sizeof(struct sockaddr_in))
			inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->sa)->sin_addr, ip,
				  sizeof(ip));
		pos += (size_t)snprintf(l->line + pos, sizeof(l->line) - pos, "%s%s", i ? "," : "",
					ip);
	}
	if (pos < sizeof(l->line))
		snprintf(l->line + pos, sizeof(l->line) - pos, " canon=%s ms=%llu why=%s",
			 r->canon[0] ? r->canon : "-", (unsigned long long)(uv_now(&loop) - l->start),
			 r->why);
	done_one(l);
}

/* Append one record as LEN:HEX, the hex cut at max octets and marked "+". */
static size_t put_rdata(struct lookup *l, size_t pos, size_t i, const unsigned char *data,
			size_t len, size_t max)
{
	size_t n = len < max ? len : max;

	if (pos < sizeof(l->line))
		pos += (size_t)snprintf(l->line + pos, sizeof(l->line) - pos, "%s%zu:",
					i ? "," : "", len);
	for (size_t k = 0; k < n && pos < sizeof(l->line); k++)
		pos += (size_t)snprintf(l->line + pos, sizeof(l->line) - pos, "%02X", data[k]);
	if (n < len && pos < sizeof(l->line))
		pos += (size_t)snprintf(l->line + pos, sizeof(l->line) - pos, "+");
	return pos;
}

static void on_tlsa(void *arg, const struct dns_tlsa_result *r)
{
	struct lookup *l = arg;
	size_t pos;

	pos = (size_t)snprintf(l->line, sizeof(l->line),
			       "tlsa %s status=%s secure=%d n=%zu dropped=%zu rdata=", l->name,
			       status_name(r->status), r->secure, r->nrec, r->ndropped);
	for (size_t i = 0; i < r->nrec; i++)
		pos = put_rdata(l, pos, i, r->rec[i].data, r->rec[i].len, TLSA_HEX_MAX);
	if (pos < sizeof(l->line))
		snprintf(l->line + pos, sizeof(l->line) - pos, " ms=%llu why=%s",
			 (unsigned long long)(uv_now(&loop) - l->start), r->why);
	done_one(l);
}

static void on_txt(void *arg, const struct dns_txt_result *r)
{
	struct lookup *l = arg;
	size_t pos;

	pos = (size_t)snprintf(l->line, sizeof(l->line),
			       "txt %s status=%s secure=%d n=%zu dropped=%zu rdata=", l->name,
			       status_name(r->status), r->secure, r->nrec, r->ndropped);
	for (size_t i = 0; i < r->nrec; i++)
		pos = put_rdata(l, pos, i, r->rec[i].data, r->rec[i].len, TXT_HEX_MAX);
	if (pos < sizeof(l->line))
		snprintf(l->line + pos, sizeof(l->line) - pos, " ms=%llu why=%s",
			 (unsigned long long)(uv_now(&loop) - l->start), r->why);
	done_one(l);
}

static void on_check(void *arg, const struct dns_check_result *r)
{
	static const char *verdicts[] = {"SECURE", "BOGUS", "INSECURE", "NOANSWER"};
	struct lookup *l = arg;

	snprintf(l->line, sizeof(l->line), "check %s status=%s ms=%llu why=%s", l->name,
		 r->verdict >= 0 && r->verdict < 4 ? verdicts[r->verdict] : "?",
		 (unsigned long long)(uv_now(&loop) - l->start), r->why);
	done_one(l);
}

static void on_free_timer(uv_timer_t *t)
{
	dns_free(resolver);
	resolver = NULL;
	uv_close((uv_handle_t *)t, NULL);
}

static int parse_lookup(const char *arg, struct lookup *l)
{
	static const struct {
		const char *prefix;
		int kind, cancel;
	} kinds[] = {
	    {"mx:", L_MX, 0},
	    {"addrs:", L_ADDRS, 0},
	    {"tlsa:", L_TLSA, 0},
	    {"check:", L_CHECK, 0},
	    {"txt:", L_TXT, 0},
	    {"cancel-mx:", L_MX, 1},
	    {"cancel-addrs:", L_ADDRS, 1},
	    {"cancel-tlsa:", L_TLSA, 1},
	    {"cancel-check:", L_CHECK, 1},
	    {"cancel-txt:", L_TXT, 1},
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i].prefix);

		if (strncmp(arg, kinds[i].prefix, n) == 0) {
			l->kind = kinds[i].kind;
			l->cancel = kinds[i].cancel;
			l->name = arg + n;
			return 0;
		}
	}
	return -1;
}

static void start_all(void)
{
	starting = 1;
	for (size_t i = 0; i < nlookups; i++) {
		struct lookup *l = &lookups[i];

		l->start = uv_now(&loop);
		if (l->kind == L_MX)
			l->id = dns_mx(resolver, l->name, on_mx, l);
		else if (l->kind == L_TLSA)
			l->id = dns_tlsa(resolver, l->name, on_tlsa, l);
		else if (l->kind == L_CHECK)
			l->id = dns_check_dnssec(resolver, l->name, on_check, l);
		else if (l->kind == L_TXT)
			l->id = dns_txt(resolver, l->name, on_txt, l);
		else
			l->id = dns_addrs(resolver, l->name, on_addrs, l);
		if (l->id < 0) {
			static const char *kinds[] = {"mx", "addrs", "tlsa", "check", "txt"};

			l->err = l->id;
			snprintf(l->line, sizeof(l->line), "%s %s error=%d (%s)", kinds[l->kind],
				 l->name, l->err, rl_strerror(l->err));
			continue;
		}
		if (l->cancel) {
			dns_cancel(resolver, l->id);
			dns_cancel(resolver, l->id); /* twice is harmless */
			snprintf(l->line, sizeof(l->line), "cancelled %s", l->name);
			continue;
		}
		outstanding++;
	}
	starting = 0;
}

struct opts {
	const char *conf;
	long timeout, free_after; /* -1: not given */
};

/* Options, then the lookups into lookups[]; -1 on a usage error. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	int i;

	o->conf = NULL;
	o->timeout = o->free_after = -1;
	for (i = 1; i < argc && argv[i][0] == '-'; i += 2) {
		if (i + 1 >= argc)
			return -1;
		if (strcmp(argv[i], "-c") == 0)
			o->conf = argv[i + 1];
		else if (strcmp(argv[i], "-t") == 0)
			o->timeout = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "-f") == 0)
			o->free_after = strtol(argv[i + 1], NULL, 10);
		else
			return -1;
	}
	if (!o->conf || i >= argc || argc - i > MAX_LOOKUPS)
		return -1;
	for (; i < argc; i++) {
		if (parse_lookup(argv[i], &lookups[nlookups++]) < 0) {
			fprintf(stderr, "test_dns: bad lookup %s\n", argv[i]);
			return -1;
		}
	}
	return 0;
}

static void print_results(void)
{
	for (size_t k = 0; k < nlookups; k++) {
		struct lookup *l = &lookups[k];

		if (l->line[0])
			printf("%s\n", l->line);
		else
			printf("pending %s\n", l->name);
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	struct cfg c;
	struct cfg_error cerr;
	char err[512];
	uv_timer_t free_timer;

	if (parse_args(argc, argv, &o) < 0) {
		fprintf(stderr, "usage: test_dns -c CONFIG [-t MS] [-f MS] LOOKUP...\n");
		return 2;
	}
	if (cfg_load(&c, o.conf, &cerr) < 0) {
		fprintf(stderr, "test_dns: %s\n", cerr.msg);
		cfg_fini(&c);
		return 1;
	}
	dns_check_zone(&c, picked_zone, sizeof(picked_zone));
	for (size_t i = 0; i < nlookups; i++)
		if (lookups[i].kind == L_CHECK && lookups[i].name[0] == '\0')
			lookups[i].name = picked_zone;
	uv_loop_init(&loop);
	if (dns_new(&loop, &c, &resolver, err, sizeof(err)) < 0) {
		printf("dns_new error: %s\n", err);
		cfg_fini(&c);
		uv_loop_close(&loop);
		return 1;
	}
	cfg_fini(&c); /* the resolver must keep nothing of the configuration */
	if (o.timeout >= 0)
		dns_set_timeout(resolver, (uint64_t)o.timeout);
	start_all();
	if (o.free_after >= 0) {
		uv_timer_init(&loop, &free_timer);
		uv_timer_start(&free_timer, on_free_timer, (uint64_t)o.free_after, 0);
	} else if (outstanding == 0) {
		dns_free(resolver);
		resolver = NULL;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	print_results();
	if (uv_loop_close(&loop) != 0) {
		printf("FAIL loop not closed cleanly after dns_free\n");
		failed = 1;
	}
	return failed;
}
