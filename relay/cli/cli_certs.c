/*
 * cli_certs: `tlsrelay certs fingerprint FILE` prints, for each certificate
 * of FILE (PEM, one or more; or one DER certificate), the SHA-256 digests of
 * the certificate and of its public key as `match=` values for a
 * `fingerprint` policy entry:
 *
 *   # SHA-256 of certificate CN=mx.example.com
 *   match=3A:...:9F
 *   # SHA-256 of public key
 *   match=B1:...:07
 *
 * The comments sit on lines of their own: a policy table, like Postfix's,
 * only knows whole-line comments, so each match= line pastes as it is.
 *
 * `certs probe` (cli_probe.c) prints the same lines for the server's leaf
 * certificate: both use cli_print_fingerprints() (cli_fpr.c), so neither
 * file calls into the other's command.
 */
#include <stdio.h>
#include <string.h>

#include "cert.h"
#include "cli.h"
#include "fpr.h"

static int certs_fingerprint(const char *path)
{
	struct rl_why why = {0, NULL, 0};
	gnutls_datum_t *chain = NULL;
	size_t n = 0;
	int rc = cert_file_load(path, &chain, &n, &why);

	if (rc < 0) {
		/* One line: the reason, and the system's words for errno codes. */
		if (!why.reason)
			fprintf(stderr, "tlsrelay: %s: %s\n", path, rl_strerror(rc));
		else if (rc > -4096)
			fprintf(stderr, "tlsrelay: %s: %s: %s\n", path, why.reason,
				rl_strerror(rc));
		else
			fprintf(stderr, "tlsrelay: %s: %s\n", path, why.reason);
		return CLI_EX_FAIL;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = cli_print_fingerprints(path, chain[i].data, chain[i].size);
	cert_chain_free(chain, n);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "tlsrelay: cannot write the fingerprints\n");
		return CLI_EX_FAIL;
	}
	return rc < 0 ? CLI_EX_FAIL : CLI_EX_OK;
}

static void certs_usage(void)
{
	fputs("usage: tlsrelay certs fingerprint FILE | certs probe [--domain D] HOST[:PORT]\n",
	      stderr);
}

int cli_certs(const char *cfgpath, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[0], "fingerprint") == 0)
		return certs_fingerprint(argv[1]);
	if (argc >= 1 && strcmp(argv[0], "probe") == 0)
		return cli_probe(cfgpath, argc - 1, argv + 1);
	certs_usage();
	return CLI_EX_USAGE;
}
