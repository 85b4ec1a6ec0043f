/*
 * danehost: the TLSA records of one MX host, looked up as RFC 7672
 * section 2.2 says, for the DANE decision in policy/ (pol_peer_dane).
 *
 * The caller asks only for a host whose address records were DNSSEC-secure
 * (either family).  When the host name is an alias (the address lookup
 * followed a CNAME), the records are looked for at the end of the chain
 * first, then at the name itself (RFC 7672 2.2.2); the TLSA base domain is
 * where they were found.  The lookup is `_PORT._tcp.BASE` with PORT =
 * remote_port.
 *
 * Outcome, as struct pol_dane states:
 *   secure records with a usable one      POL_DANE_USABLE (usable ones kept)
 *   secure records, none usable            POL_DANE_UNUSABLE (nmalformed:
 *                                          how many did not even parse, for
 *                                          TLS-RPT's tlsa-invalid)
 *   secure NODATA/NXDOMAIN, or insecure    POL_DANE_NONE
 *   SERVFAIL, timeout, bogus, or records
 *   too large to keep                      POL_DANE_FAIL, why says which
 * A bogus answer is never "no TLSA".
 *
 * Memory: the usable records are copied into one allocation of at most
 * DANEHOST_BYTES_MAX octets of association data (a hostile domain cannot
 * make a round hold more); records past it are dropped, and if that leaves
 * none, the outcome is POL_DANE_FAIL, never UNUSABLE.
 *
 * Lifetime: the struct is the caller's; danehost_start() fills it when the
 * callback runs (on the loop, never inside danehost_start()).
 * danehost_clear() cancels a lookup in flight (no callback) and frees the
 * records.  Loop thread only.
 */
#ifndef DANEHOST_H
#define DANEHOST_H

#include <stddef.h>

#include "dane.h"
#include "dns.h"
#include "pol_peer.h"
#include "rl.h"

#define DANEHOST_BYTES_MAX 8192
#define DANEHOST_WHY_MAX 400

struct danehost {
	/* The outcome (valid once the callback ran). */
	int state;			  /* enum pol_dane_state */
	char base[DNS_NAME_MAX];	  /* the TLSA base domain */
	char qname[DNS_NAME_MAX + 16];	  /* "_25._tcp.BASE", the last name asked */
	struct dane_tlsa *rec;		  /* usable records (data in the same block) */
	size_t nrec;
	size_t nunusable;		  /* records present that SMTP may not use */
	size_t nmalformed;		  /* of those, records that do not parse */
	int secure;			  /* the last answer (or denial) was validated:
					     POL_DANE_NONE with 1 is a secure denial */
	char why[DANEHOST_WHY_MAX];	  /* POL_DANE_FAIL: "TLSA lookup error for ...: ..." */
	/* The lookup (private). */
	struct dns *dns;
	int qid;			  /* in flight, -1 none */
	unsigned port;
	char host[DNS_NAME_MAX];
	char canon[DNS_NAME_MAX];	  /* alias target still to try after, "" none */
	void (*cb)(void *arg, struct danehost *h);
	void *arg;
};

/*
 * Look up the TLSA records of host (canon: the end of its CNAME chain
 * from the address lookup, "" or NULL for none) for port.  cb(arg, h) runs
 * once, on the loop.  Returns 0, or a negative code (dns_tlsa()'s) with
 * nothing started.
 */
int danehost_start(struct danehost *h, struct dns *dns, const char *host, const char *canon,
		   unsigned port, void (*cb)(void *arg, struct danehost *h), void *arg) RL_WUR;

/* Cancel a lookup in flight (its callback does not run) and free the records. */
void danehost_clear(struct danehost *h);

/* The outcome as pol_peer_dane() takes it (pointers into h). */
void danehost_pol(const struct danehost *h, int mx_secure, struct pol_dane *out);

#endif
