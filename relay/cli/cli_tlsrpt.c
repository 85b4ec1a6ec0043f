/*
 * cli_tlsrpt: `tlsrpt show [--day YYYY-MM-DD] [DOMAIN]` prints the RFC
 * 8460 report(s) of a UTC day (default: yesterday) as they would be sent,
 * one JSON document per domain; `tlsrpt send [--day YYYY-MM-DD]` sends
 * that day's reports now, on a loop of its own (DNS, HTTPS), writing
 * report mail into the queue directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "dns.h"
#include "https.h"
#include "log.h"
#include "tlsrpt.h"

struct show {
	const struct cfg *c;
	const char *day, *only;
	int shown, rc;
};

static int show_one(void *arg, const char *domain, const struct queue_tlsrpt *rec)
{
	struct show *sh = arg;
	char org[256], contact[256], id[600];
	char *json;
	struct tlsrpt_meta m = {org, contact, sh->day, id};

	if (sh->only && strcasecmp(sh->only, domain) != 0)
		return 0;
	cfg_tlsrpt_org_name(sh->c, org, sizeof(org));
	cfg_tlsrpt_contact_info(sh->c, contact, sizeof(contact));
	tlsrpt_report_id(sh->c, sh->day, domain, id, sizeof(id));
	sh->rc = tlsrpt_json(&m, domain, rec, &json);
	if (sh->rc < 0)
		return sh->rc;
	printf("%s\n", json);
	free(json);
	sh->shown++;
	return 0;
}

/* --day D and at most one DOMAIN (for show); 0, or -1 after a usage line. */
static int parse_args(int argc, char **argv, int want_domain, char *day, const char **domain)
{
	*domain = NULL;
	tlsrpt_day((int64_t)time(NULL) - 86400, day, QUEUE_TLSRPT_DAY_LEN + 1);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--day") == 0 && i + 1 < argc &&
		    queue_tlsrpt_day_valid(argv[i + 1], strlen(argv[i + 1]))) {
			memcpy(day, argv[++i], QUEUE_TLSRPT_DAY_LEN + 1);
		} else if (want_domain && !*domain && argv[i][0] != '-') {
			*domain = argv[i];
		} else {
			fprintf(stderr, "usage: tlsrelay tlsrpt show [--day YYYY-MM-DD] [DOMAIN] | "
					"tlsrpt send [--day YYYY-MM-DD]\n");
			return -1;
		}
	}
	return 0;
}

static int tlsrpt_show(const char *cfgpath, int argc, char **argv)
{
	char day[QUEUE_TLSRPT_DAY_LEN + 1];
	struct show sh = {0};
	struct queue *q;
	struct queue_txn *t;
	struct cfg c;
	int rc;

	if (parse_args(argc, argv, 1, day, &sh.only) < 0)
		return CLI_EX_USAGE;
	if (cli_load_cfg(cfgpath, &c) < 0)
		return CLI_EX_FAIL;
	sh.c = &c;
	sh.day = day;
	rc = cli_open_queue(&c, QUEUE_O_RDONLY, &q);
	if (rc == 0) {
		rc = queue_txn_begin(q, 0, &t);
		if (rc == 0) {
			rc = queue_tlsrpt_foreach(t, day, show_one, &sh);
			queue_txn_abort(t);
		}
		queue_close(q);
		if (rc < 0)
			fprintf(stderr, "tlsrelay: cannot read TLS-RPT counts: %s\n", rl_strerror(rc));
	}
	cfg_fini(&c);
	if (rc == 0 && sh.only && !sh.shown) {
		fprintf(stderr, "tlsrelay: no TLS-RPT counts for %s on %s\n", sh.only, day);
		return CLI_EX_FAIL;
	}
	return rc < 0 ? CLI_EX_FAIL : CLI_EX_OK;
}

struct sender {
	struct dns *dns;
	struct https *https;
	int failures, done;
};

static void send_done(void *arg, int failures)
{
	struct sender *s = arg;

	s->failures = failures;
	s->done = 1;
	dns_free(s->dns);
	https_free(s->https);
}

/* Run the send on a loop of its own; the exit code. */
static int send_run(const struct cfg *c, struct queue *q, const char *day)
{
	struct tlsrpt_send_params p = {0};
	struct sender s = {0};
	char err[256];
	uv_loop_t loop;
	int rc = uv_loop_init(&loop);

	if (rc < 0)
		return CLI_EX_FAIL;
	if (dns_new(&loop, c, &s.dns, err, sizeof(err)) < 0 ||
	    https_new(&loop, &s.https, err, sizeof(err)) < 0) {
		fprintf(stderr, "tlsrelay: %s\n", err);
		dns_free(s.dns);
		uv_run(&loop, UV_RUN_DEFAULT);
		RL_REQUIRE(uv_loop_close(&loop) == 0);
		return CLI_EX_FAIL;
	}
	p = (struct tlsrpt_send_params){&loop, c, q, s.dns, s.https, NULL, "", send_done, &s};
	memcpy(p.day, day, sizeof(p.day));
	rc = tlsrpt_send_start(&p);
	if (rc < 0) {
		fprintf(stderr, "tlsrelay: cannot read TLS-RPT counts: %s\n", rl_strerror(rc));
		send_done(&s, 1);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	RL_REQUIRE(uv_loop_close(&loop) == 0);
	return s.failures ? CLI_EX_FAIL : CLI_EX_OK;
}

static int tlsrpt_send(const char *cfgpath, int argc, char **argv)
{
	char day[QUEUE_TLSRPT_DAY_LEN + 1];
	const char *none;
	struct queue *q;
	struct cfg c;
	int rc;

	if (parse_args(argc, argv, 0, day, &none) < 0)
		return CLI_EX_USAGE;
	if (cli_load_cfg(cfgpath, &c) < 0)
		return CLI_EX_FAIL;
	log_init("tlsrelay", c.myhostname, LOG_INFO);
	if (cli_open_queue(&c, 0, &q) < 0) {
		cfg_fini(&c);
		return CLI_EX_FAIL;
	}
	rc = send_run(&c, q, day);
	queue_close(q);
	cfg_fini(&c);
	return rc;
}

int cli_tlsrpt(const char *cfgpath, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "show") == 0)
		return tlsrpt_show(cfgpath, argc, argv);
	if (argc >= 1 && strcmp(argv[0], "send") == 0)
		return tlsrpt_send(cfgpath, argc, argv);
	fprintf(stderr, "usage: tlsrelay tlsrpt show [--day YYYY-MM-DD] [DOMAIN] | "
			"tlsrpt send [--day YYYY-MM-DD]\n");
	return CLI_EX_USAGE;
}
