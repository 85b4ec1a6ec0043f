/*
 * dane: TLSA records (RFC 6698, 7671) as match rules for SMTP (RFC 7672).
 *
 * Two pure parts, no I/O, no logging, no globals, any thread:
 * - dane_parse.c: one TLSA record's rdata (wire format, as the resolver
 *   hands it over) into a struct dane_tlsa, and whether SMTP may use it.
 * - dane_match.c: does the peer's chain (DER, leaf first) match any usable
 *   record of a set?  DANE-EE(3) compares the leaf (certificate or public
 *   key, full or SHA-256/512) and ignores names and dates.  DANE-TA(2)
 *   finds the anchor among the certificates the server sent, verifies the
 *   chain from the leaf up to it (dates checked), and checks the leaf's
 *   names against the TLSA base domain (the MX host name) and the extra
 *   names given.  One matching usable record suffices.
 *
 * Errors: RL_EPARSE (malformed rdata, with rl_why), RL_ETOOBIG (data over
 * DANE_DATA_MAX), RL_EPOLICY (no record matches: the reason names why).
 */
#ifndef DANE_H
#define DANE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <gnutls/gnutls.h>

#include "cert.h"
#include "rl.h"

/* RFC 6698 2.1: usage, selector, matching type. */
enum dane_usage { DANE_PKIX_TA = 0, DANE_PKIX_EE = 1, DANE_TA = 2, DANE_EE = 3 };
enum dane_selector { DANE_SEL_CERT = 0, DANE_SEL_SPKI = 1 };
enum dane_mtype { DANE_MATCH_FULL = 0, DANE_MATCH_SHA256 = 1, DANE_MATCH_SHA512 = 2 };

/* A full certificate or key in a record: bounded (RFC 6698 allows more). */
#define DANE_DATA_MAX 4096
/* Records of one TLSA RRset that are looked at; more are ignored. */
#define DANE_RRSET_MAX 32

struct dane_tlsa {
	uint8_t usage, selector, mtype;
	size_t len;		   /* bytes of data, at most DANE_DATA_MAX */
	const unsigned char *data; /* the association data (borrowed: see dane_tlsa_parse) */
};

/*
 * Parse one TLSA rdata (3 octets + association data).  A record with a
 * usage, selector or matching type we do not know parses fine (it is
 * merely unusable); a digest whose length does not fit its matching type
 * (32 for SHA-256, 64 for SHA-512) or an empty one is RL_EPARSE.
 * out->data points into rdata (no copy): keep rdata alive while out is used.
 */
int dane_tlsa_parse(const unsigned char *rdata, size_t len, struct dane_tlsa *out,
		    struct rl_why *why) RL_WUR;

/*
 * RFC 7672 3.1.3: SMTP uses only DANE-TA(2) and DANE-EE(3), selector 0/1,
 * matching 0/1/2.  PKIX-TA/PKIX-EE and unknown values are unusable.
 */
int dane_tlsa_usable(const struct dane_tlsa *t);

/* "3 1 1 ABCD...": the record as text for reasons, data cut to fit. */
void dane_tlsa_text(const struct dane_tlsa *t, char *out, size_t size);

/*
 * Match the chain (DER, leaf first, n >= 0) against the usable records of
 * set (unusable ones are skipped).  base: the TLSA base domain (the MX host
 * name); names/nnames: further names a DANE-TA leaf may match (from the
 * policy's match=, e.g. the next hop); now: the time for validity dates
 * (DANE-TA only).  Returns 0 when one usable record matches (*which is its
 * index), RL_EPOLICY with a reason such as "no TLSA record matches (3 1 1
 * 5E...)" otherwise (reason may be NULL).
 */
int dane_match(const struct dane_tlsa *set, size_t nset, const gnutls_datum_t *chain, size_t n,
	       const char *base, const struct cert_pattern *names, size_t nnames, time_t now,
	       size_t *which, char *reason, size_t rsize) RL_WUR;

#endif
