/*
 * pol_relay: who may relay (INTERFACE.md, "Who may relay").
 *
 * One pure function, pol_relay_decide(), takes everything the inbound
 * session knows about its client (its address and the networks of
 * mynetworks, the client
 * certificate's digests and chain verification, the authenticated user)
 * and says whether the client may relay and why.  smtpd asks it at every
 * RCPT; nothing else decides who may relay.
 *
 * The list of `relay_clientcerts` (struct pol_ccerts) is parsed here too,
 * by pol_ccerts_parse() (pol_ccert_parse.c): the `match=` lines that
 * `tlsrelay certs fingerprint` prints, SHA-256 digests of a client
 * certificate or of its public key.  A file with any error yields no list
 * (every error as "FILE:LINE: message" in struct pol_errors), so the
 * relay keeps the list it had.
 *
 * Key usage: a digest listed by the administrator needs no particular key
 * usage (public CAs are dropping clientAuth), but the certificate must be
 * within its validity dates: an expired certificate is refused even when
 * listed.  (Postfix's permit_tls_clientcerts ignores the dates; the
 * contract's tests refuse an expired certificate, and a pinned key that
 * outlives its certificate is what renewal is for.)  A
 * certificate allowed through relay_client_ca_file must have been verified
 * by the caller with its validity dates and the clientAuth rule
 * (cert_client_verify()); the caller passes the verdict in ca_verified.
 *
 * No I/O, no logging, no globals.  A list is immutable once built and may
 * be read from any thread.  Ownership: arguments are borrowed; the strings
 * returned are static.  Errors: RL_EPARSE, RL_ETOOBIG, -ENOMEM.
 */
#ifndef POL_RELAY_H
#define POL_RELAY_H

#include <stddef.h>

#include "fpr.h"
#include "pol.h"
#include "rl.h"

/* Caps of the relay_clientcerts file. */
#define POL_CCERTS_FILE_MAX (4 * 1024 * 1024) /* bytes */
#define POL_CCERTS_MAX	    100000	      /* digests */

/* The digests of relay_clientcerts, sorted for lookup. */
struct pol_ccerts;

/*
 * Parse the text of a relay_clientcerts file (len bytes, need not be
 * NUL-terminated; path only names it in messages).  Lines:
 *   - blank, or a comment: '#' as the first non-blank character;
 *   - one or more `match=DIGEST` words separated by blanks, where DIGEST
 *     is a SHA-256 digest in colon-separated hex (32 bytes, either case),
 *     or several joined by '|' (as the policy file's match= allows);
 *   - Postfix's relay_clientcerts form: a bare digest, then anything (the
 *     lookup value, a name for the administrator), which is ignored.
 * SHA-1 (20-byte) digests are refused: the contract lists SHA-256 only.
 * A digest listed twice is no error.  On success *out is a new list (free
 * with pol_ccerts_free), possibly empty; on failure *out is NULL, errs
 * (optional) has the errors in line order, and RL_EPARSE, RL_ETOOBIG (over
 * POL_CCERTS_FILE_MAX or POL_CCERTS_MAX) or -ENOMEM is returned.
 */
int pol_ccerts_parse(const char *path, const char *text, size_t len, struct pol_ccerts **out,
		     struct pol_errors *errs) RL_WUR;

/* Free a list; NULL is a no-op. */
void pol_ccerts_free(struct pol_ccerts *l);

/* Distinct digests in the list; 0 for NULL. */
size_t pol_ccerts_count(const struct pol_ccerts *l);

/* Is d (a SHA-256 digest) in the list?  1 or 0; 0 for a NULL list. */
int pol_ccerts_listed(const struct pol_ccerts *l, const struct fpr_digest *d);

/* Why a client may relay, or not. */
enum pol_relay_by {
	POL_RELAY_DENY = 0,
	POL_RELAY_NETWORK,     /* its address is in mynetworks */
	POL_RELAY_CERTIFICATE, /* its certificate is listed or chains to relay_client_ca_file */
	POL_RELAY_AUTH,	       /* it authenticated with AUTH */
	POL_RELAY_BY_COUNT
};

/* What the session knows of its client. */
struct pol_relay_in {
	/* The client's address (sockaddr_in/_in6; NULL: unknown, never in
	 * mynetworks) and the networks of mynetworks (rl_net_match). */
	const struct sockaddr *client;
	const struct rl_net *mynetworks;
	size_t nmynetworks;
	int cert_presented;		 /* a client certificate was presented in TLS */
	struct fpr_digest cert_sha256;	 /* SHA-256 of the certificate (when presented) */
	struct fpr_digest spki_sha256;	 /* SHA-256 of its SubjectPublicKeyInfo */
	/* Now is outside the certificate's validity dates (or they cannot be
	 * read): a listed digest then allows nothing. */
	int cert_out_of_date;
	const struct pol_ccerts *listed; /* relay_clientcerts; NULL: none configured */
	/*
	 * The chain verified against relay_client_ca_file: signatures, dates,
	 * and clientAuth in the leaf's extended key usage or no such extension
	 * at all.  0 when no CA file is configured or nothing was presented.
	 */
	int ca_verified;
	const char *auth_user; /* the authenticated identity; NULL: none */
};

/*
 * The decision, in the order of Postfix's usual smtpd_relay_restrictions
 * (permit_mynetworks, permit_tls_clientcerts, permit_sasl_authenticated):
 * the first that applies names the result.  *why (optional) gets a short
 * static text for the log.  Pure.
 */
enum pol_relay_by pol_relay_decide(const struct pol_relay_in *in, const char **why);

/* "deny", "network", "certificate", "auth" (metric labels). */
const char *pol_relay_by_name(enum pol_relay_by by);

#endif
