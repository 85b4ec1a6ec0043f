/*
 * cli_fpr: the `match=` lines of one certificate, shared by `certs
 * fingerprint` (cli_certs.c) and `certs probe` (cli_probe.c).
 */
#include <stdio.h>
#include <string.h>

#include "cert.h"
#include "cli.h"
#include "fpr.h"

/* Enough of a subject DN to recognise the certificate by. */
#define SUBJECT_SHOWN 200

int cli_print_fingerprints(const char *name, const unsigned char *der, size_t len)
{
	struct fpr_digest cd, pd;
	char ctext[FPR_TEXT_SIZE], ptext[FPR_TEXT_SIZE], subject[SUBJECT_SHOWN + 1];
	int rc;

	rc = fpr_compute(der, len, FPR_CERT, FPR_SHA256_LEN, &cd);
	if (rc == 0)
		rc = fpr_compute(der, len, FPR_PUBKEY, FPR_SHA256_LEN, &pd);
	if (rc == 0)
		rc = cert_subject_text(der, len, subject, sizeof(subject));
	if (rc < 0) {
		fprintf(stderr, "tlsrelay: %s: %s\n", name, rl_strerror(rc));
		return rc;
	}
	fpr_format(&cd, ctext, sizeof(ctext));
	fpr_format(&pd, ptext, sizeof(ptext));
	printf("# SHA-256 of certificate %s\nmatch=%s\n", subject, ctext);
	printf("# SHA-256 of public key\nmatch=%s\n", ptext);
	return 0;
}

