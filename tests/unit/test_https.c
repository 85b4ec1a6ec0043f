/*
 * test_https: drive relay/net/https.c against real HTTPS servers and print
 * what each request returned, one line per request, for
 * tests/integration/test_https.py (which starts the servers).
 *
 * Usage: test_https [-c CAFILE] [-t TIMEOUT_MS] [-m BODY_MAX] [-T]
 *                   [-b BODY_FILE] [-y TYPE] [-f FREE_AFTER_MS]
 *                   [-x CANCEL_AFTER_MS] REQUEST...
 *   -c   trust only these CAs (default: the system store)
 *   -T   require text/plain
 *   -b/-y  the body and media type of post requests
 *   -f   https_free() after that many ms, whatever is still in flight
 *   -x   cancel the "late" requests after that many ms
 *   REQUEST is KIND:HOST[:PORT]/PATH@ADDR[,ADDR...] with KIND one of get,
 *   post, cancel (a get cancelled at once: its callback must never run) or
 *   late (a get cancelled by -x).  No port: the default (443).
 *   All requests run at the same time; lines are printed in argument order:
 *     get HOST[:PORT]/PATH status=OK code=200 type=text/plain len=N sha256=HEX ms=N why=TEXT
 *     get HOST[:PORT]/PATH error=CODE (TEXT)     (https_get() refused it)
 *     cancelled HOST[:PORT]/PATH
 *     pending HOST[:PORT]/PATH                   (with -f: https_free() came first)
 *   A line starting with "FAIL" reports a broken promise of https.h (a
 *   callback inside https_get(), twice, or after cancel; a body pointer
 *   that is NULL; the loop not closing).
 * Exit status: 0 when nothing FAILed, 1 otherwise, 2 on usage errors.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <uv.h>

#include "https.h"

#define MAX_REQS 256

enum { K_GET, K_POST, K_CANCEL, K_LATE };

struct request {
	int kind;
	const char *spec; /* HOST[:PORT]/PATH, as printed */
	char host[DNS_NAME_MAX];
	char path[HTTPS_PATH_MAX];
	unsigned port;
	struct dns_addr addr[HTTPS_ADDR_MAX];
	size_t naddr;
	int id;
	int calls;
	int done; /* no callback may come any more (cancelled, failed) */
	uint64_t start;
	char line[1024];
};

static struct request reqs[MAX_REQS];
static size_t nreqs, outstanding;
static struct https *fetcher;
static uv_loop_t loop;
static int failed, starting;

struct opts {
	const char *ca_file;
	long timeout, body_max, free_after, cancel_after;
	int text_plain;
	const char *body_file, *type;
};

static const char *kind_name(int k)
{
	static const char *names[] = {"get", "post", "get", "get"};

	return names[k];
}

static void finish_one(void)
{
	/* Freeing the fetcher from inside its own callback is allowed. */
	if (--outstanding == 0) {
		https_free(fetcher);
		fetcher = NULL;
	}
}

static void sha256_hex(const char *p, size_t n, char *hex)
{
	unsigned char d[32];

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, p, n, d) < 0)
		memset(d, 0, sizeof(d));
	for (size_t i = 0; i < sizeof(d); i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static void on_result(void *arg, const struct https_result *r)
{
	struct request *q = arg;
	char hex[65];

	if (starting) {
		printf("FAIL callback for %s ran inside https_get()\n", q->spec);
		failed = 1;
	}
	if (q->done) {
		printf("FAIL callback for %s ran after cancel\n", q->spec);
		failed = 1;
	}
	if (++q->calls > 1) {
		printf("FAIL callback for %s ran %d times\n", q->spec, q->calls);
		failed = 1;
		return;
	}
	if (!r->body) {
		printf("FAIL NULL body for %s\n", q->spec);
		failed = 1;
	}
	sha256_hex(r->body ? r->body : "", r->body ? r->body_len : 0, hex);
	snprintf(q->line, sizeof(q->line),
		 "%s %s status=%s code=%ld type=%s len=%zu sha256=%s ms=%llu why=%s",
		 kind_name(q->kind), q->spec, https_status_name(r->status), r->http_code,
		 r->content_type[0] ? r->content_type : "-", r->body_len, hex,
		 (unsigned long long)((uv_hrtime() - q->start) / 1000000), r->why);
	/* The id of a finished request must be harmless to cancel. */
	https_cancel(fetcher, q->id);
	q->done = 1;
	finish_one();
}

static int parse_addrs(const char *s, struct request *q)
{
	char buf[1024];
	char *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, strlen(s) + 1);
	for (char *a = strtok_r(buf, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		struct dns_addr *d = &q->addr[q->naddr];
		struct sockaddr_in *v4 = (struct sockaddr_in *)&d->sa;
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&d->sa;

		if (q->naddr >= HTTPS_ADDR_MAX)
			return -1;
		memset(d, 0, sizeof(*d));
		if (inet_pton(AF_INET, a, &v4->sin_addr) == 1) {
			v4->sin_family = AF_INET;
			d->len = sizeof(*v4);
		} else if (inet_pton(AF_INET6, a, &v6->sin6_addr) == 1) {
			v6->sin6_family = AF_INET6;
			d->len = sizeof(*v6);
		} else {
			return -1;
		}
		q->naddr++;
	}
	return 0;
}

/* KIND:HOST[:PORT]/PATH@ADDRS */
static int parse_request(char *arg, struct request *q)
{
	static const char *kinds[] = {"get:", "post:", "cancel:", "late:"};
	char *at, *slash, *colon;
	size_t hn;

	for (q->kind = 0; q->kind < 4; q->kind++)
		if (strncmp(arg, kinds[q->kind], strlen(kinds[q->kind])) == 0)
			break;
	if (q->kind == 4)
		return -1;
	arg += strlen(kinds[q->kind]);
	at = strrchr(arg, '@');
	slash = strchr(arg, '/');
	if (!at || !slash || slash > at || parse_addrs(at + 1, q) < 0)
		return -1;
	*at = '\0';
	q->spec = arg;
	if ((size_t)(at - slash) >= sizeof(q->path))
		return -1;
	memcpy(q->path, slash, (size_t)(at - slash) + 1);
	colon = memchr(arg, ':', (size_t)(slash - arg));
	hn = (size_t)((colon ? colon : slash) - arg);
	if (hn >= sizeof(q->host))
		return -1;
	memcpy(q->host, arg, hn);
	q->host[hn] = '\0';
	q->port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
	return 0;
}

static void start_all(const struct opts *o, const char *body, size_t body_len)
{
	starting = 1;
	for (size_t i = 0; i < nreqs; i++) {
		struct request *q = &reqs[i];
		struct https_req r = {
		    .host = q->host,
		    .path = q->path,
		    .port = q->port,
		    .addr = q->addr,
		    .naddr = q->naddr,
		    .ca_file = o->ca_file,
		    .timeout_ms = o->timeout > 0 ? (uint64_t)o->timeout : 0,
		    .body_max = o->body_max > 0 ? (size_t)o->body_max : 0,
		    .require_text_plain = o->text_plain,
		    .body = body,
		    .body_len = body_len,
		    .content_type = o->type,
		};

		q->start = uv_hrtime();
		q->id = q->kind == K_POST ? https_post(fetcher, &r, on_result, q)
					  : https_get(fetcher, &r, on_result, q);
		if (q->id <= 0) {
			snprintf(q->line, sizeof(q->line), "%s %s error=%d (%s)",
				 kind_name(q->kind), q->spec, q->id, rl_strerror(q->id));
			q->done = 1;
			continue;
		}
		if (q->kind == K_CANCEL) {
			https_cancel(fetcher, q->id);
			https_cancel(fetcher, q->id); /* twice is harmless */
			snprintf(q->line, sizeof(q->line), "cancelled %s", q->spec);
			q->done = 1;
			continue;
		}
		outstanding++;
	}
	starting = 0;
}

static void on_cancel_timer(uv_timer_t *t)
{
	for (size_t i = 0; i < nreqs; i++) {
		struct request *q = &reqs[i];

		if (q->kind != K_LATE || q->done || !fetcher)
			continue;
		https_cancel(fetcher, q->id);
		snprintf(q->line, sizeof(q->line), "cancelled %s", q->spec);
		q->done = 1;
		finish_one();
	}
	uv_close((uv_handle_t *)t, NULL);
}

static void on_free_timer(uv_timer_t *t)
{
	https_free(fetcher);
	fetcher = NULL;
	uv_close((uv_handle_t *)t, NULL);
}

/* Options, then the requests into reqs[]; -1 on a usage error. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->free_after = o->cancel_after = -1;
	o->type = "application/octet-stream";
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *opt = argv[i];

		if (strcmp(opt, "-T") == 0) {
			o->text_plain = 1;
			continue;
		}
		if (++i >= argc)
			return -1;
		if (strcmp(opt, "-c") == 0)
			o->ca_file = strcmp(argv[i], "-") ? argv[i] : NULL;
		else if (strcmp(opt, "-t") == 0)
			o->timeout = strtol(argv[i], NULL, 10);
		else if (strcmp(opt, "-m") == 0)
			o->body_max = strtol(argv[i], NULL, 10);
		else if (strcmp(opt, "-f") == 0)
			o->free_after = strtol(argv[i], NULL, 10);
		else if (strcmp(opt, "-x") == 0)
			o->cancel_after = strtol(argv[i], NULL, 10);
		else if (strcmp(opt, "-b") == 0)
			o->body_file = argv[i];
		else if (strcmp(opt, "-y") == 0)
			o->type = argv[i];
		else
			return -1;
	}
	if (i >= argc || argc - i > MAX_REQS)
		return -1;
	for (; i < argc; i++) {
		if (parse_request(argv[i], &reqs[nreqs++]) < 0) {
			fprintf(stderr, "test_https: bad request %s\n", argv[i]);
			return -1;
		}
	}
	return 0;
}

/* The -b file into memory (test sizes only). */
static char *read_body(const char *path, size_t *len)
{
	FILE *f;
	char *buf;
	long n;

	*len = 0;
	if (!path)
		return NULL;
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		if (f)
			fclose(f);
		return NULL;
	}
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = buf ? (size_t)n : 0;
	return buf;
}

static void print_results(void)
{
	for (size_t k = 0; k < nreqs; k++) {
		struct request *q = &reqs[k];

		if (q->line[0])
			printf("%s\n", q->line);
		else
			printf("pending %s\n", q->spec);
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	char err[512];
	uv_timer_t free_timer, cancel_timer;
	size_t body_len;
	char *body;

	if (parse_args(argc, argv, &o) < 0) {
		fprintf(stderr,
			"usage: test_https [-c CA] [-t MS] [-m MAX] [-T] [-b FILE] [-y TYPE] "
			"[-f MS] [-x MS] KIND:HOST[:PORT]/PATH@ADDR...\n");
		return 2;
	}
	body = read_body(o.body_file, &body_len);
	if (o.body_file && !body) {
		fprintf(stderr, "test_https: cannot read %s\n", o.body_file);
		return 2;
	}
	uv_loop_init(&loop);
	if (https_new(&loop, &fetcher, err, sizeof(err)) < 0) {
		printf("https_new error: %s\n", err);
		free(body);
		uv_loop_close(&loop);
		return 1;
	}
	start_all(&o, body, body_len);
	free(body); /* the fetcher must keep nothing of the request */
	if (o.cancel_after >= 0) {
		uv_timer_init(&loop, &cancel_timer);
		uv_timer_start(&cancel_timer, on_cancel_timer, (uint64_t)o.cancel_after, 0);
	}
	if (o.free_after >= 0) {
		uv_timer_init(&loop, &free_timer);
		uv_timer_start(&free_timer, on_free_timer, (uint64_t)o.free_after, 0);
	} else if (outstanding == 0) {
		https_free(fetcher);
		fetcher = NULL;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	print_results();
	if (uv_loop_close(&loop) != 0) {
		printf("FAIL loop not closed cleanly after https_free\n");
		failed = 1;
	}
	return failed;
}
