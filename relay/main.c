/*
 * main: `tlsrelay SUBCOMMAND ...`, or `sendmail`/`mailq` by link name.
 *
 * `-c FILE` is taken before or after the subcommand's name; without it,
 * $TLSRELAY_CONFIG, then /etc/tlsrelay/tlsrelay.conf.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "serve.h"

#define DEFAULT_CONFIG "/etc/tlsrelay/tlsrelay.conf"

static void usage(FILE *f)
{
	fputs("usage: tlsrelay [-c FILE] COMMAND [ARGS]\n"
	      "  serve                         run the relay in the foreground\n"
	      "  mailq [--json]                list the queue\n"
	      "  status [--json]               uptime, queue, last hour, failing destinations\n"
	      "  queue show ID                 show one message\n"
	      "  queue flush [ID|--domain D]   make deferred mail due now\n"
	      "  queue hold|release|delete ID|ALL\n"
	      "  sendmail [-f FROM] [-t] [-i] [RCPT...]\n"
	      "  policy check [FILE] | policy show DOMAIN\n"
	      "  certs fingerprint FILE | certs probe [--domain D] HOST[:PORT]\n"
	      "  report [--since 7d] [--json | --html FILE]\n"
	      "  tlsrpt show [--day YYYY-MM-DD] [DOMAIN] | tlsrpt send [--day YYYY-MM-DD]\n",
	      f);
}

/* Remove every "-c FILE" from argv; returns the new argc. */
static int take_config(int argc, char **argv, const char **path, int *bad)
{
	int out = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0) {
			if (i + 1 >= argc) {
				*bad = 1;
				break;
			}
			*path = argv[++i];
		} else {
			argv[out++] = argv[i];
		}
	}
	argv[out] = NULL;
	return out;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

int main(int argc, char **argv)
{
	const char *name = base_name(argv[0]);
	const char *path = getenv("TLSRELAY_CONFIG");
	int bad = 0, n;

	if (!path || !*path)
		path = DEFAULT_CONFIG;
	n = take_config(argc - 1, argv + 1, &path, &bad);
	if (bad) {
		fprintf(stderr, "tlsrelay: -c needs a file name\n");
		return CLI_EX_USAGE;
	}
	argv++;
	if (strcmp(name, "sendmail") == 0)
		return cli_sendmail(path, n, argv);
	if (strcmp(name, "mailq") == 0)
		return cli_mailq(path, n, argv);
	if (n == 0) {
		usage(stderr);
		return CLI_EX_USAGE;
	}
	if (strcmp(argv[0], "serve") == 0) {
		if (n == 1)
			return serve_main(path);
		usage(stderr);
		return CLI_EX_USAGE;
	}
	if (strcmp(argv[0], "mailq") == 0)
		return cli_mailq(path, n - 1, argv + 1);
	if (strcmp(argv[0], "status") == 0)
		return cli_status(path, n - 1, argv + 1);
	if (strcmp(argv[0], "queue") == 0)
		return cli_queue(path, n - 1, argv + 1);
	if (strcmp(argv[0], "sendmail") == 0)
		return cli_sendmail(path, n - 1, argv + 1);
	if (strcmp(argv[0], "certs") == 0)
		return cli_certs(path, n - 1, argv + 1);
	if (strcmp(argv[0], "policy") == 0)
		return cli_policy(path, n - 1, argv + 1);
	if (strcmp(argv[0], "report") == 0)
		return cli_report(path, n - 1, argv + 1);
	if (strcmp(argv[0], "tlsrpt") == 0)
		return cli_tlsrpt(path, n - 1, argv + 1);
	if (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "--help") == 0) {
		usage(stdout);
		return CLI_EX_OK;
	}
	fprintf(stderr, "tlsrelay: unknown command \"%s\"\n", argv[0]);
	usage(stderr);
	return CLI_EX_USAGE;
}
