/*
 * dane_match: does the peer's chain match a TLSA RRset?  RFC 7671 (the
 * rules of each usage) as RFC 7672 profiles them for SMTP.  Pure: GnuTLS
 * only decodes, digests and verifies signatures here; names are certs/'s
 * checks, dates are checked against the caller's `now`.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "dane.h"

/*
 * Certificates of the peer's chain that are looked at, leaf included.  Real
 * chains have two to four; a longer one is cut here, which can only make a
 * DANE-TA anchor harder to find (fail closed), never easier.
 */
#define DANE_CHAIN_MAX 16
/* Records named in a reason, and hex digits shown of each one's data. */
#define REASON_RECORDS 3
#define REASON_HEX     16

/* The peer's chain, decoded once for all records. */
struct peer {
	const gnutls_datum_t *der;	       /* as sent, leaf first */
	gnutls_x509_crt_t crt[DANE_CHAIN_MAX]; /* NULL where one did not decode */
	size_t n;
	time_t now;
	const char *ta_why; /* why the first DANE-TA anchor found did not do */
};

/* RFC 7672 3.1.3, decided once in dane_parse.c. */
static bool record_usable(const struct dane_tlsa *t)
{
	return dane_tlsa_usable(t) != 0;
}

/* "3 1 1 5E3A0C1D9B2F4A67...": a record, its data cut, for reasons. */
static void record_text(const struct dane_tlsa *t, char *out, size_t size)
{
	size_t shown = t->len * 2 > REASON_HEX ? REASON_HEX / 2 : t->len;
	int w = snprintf(out, size, "%u %u %u ", t->usage, t->selector, t->mtype);

	for (size_t i = 0; i < shown && w > 0 && (size_t)w + 3 <= size; i++)
		w += snprintf(out + w, size - (size_t)w, "%02X", t->data[i]);
	if (shown < t->len && w > 0 && (size_t)w < size)
		snprintf(out + w, size - (size_t)w, "...");
}

static gnutls_x509_crt_t crt_decode(const gnutls_datum_t *der)
{
	gnutls_x509_crt_t c = NULL;

	if (der->data == NULL || der->size == 0 || gnutls_x509_crt_init(&c) < 0)
		return NULL;
	if (gnutls_x509_crt_import(c, der, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(c);
		return NULL;
	}
	return c;
}

/*
 * The object a selector picks from certificate i (RFC 6698 2.1.2): the DER
 * as sent (0) or its SubjectPublicKeyInfo (1, in GnuTLS memory: *owned is
 * set and the caller frees it).  Returns false when it cannot be had.
 */
static bool select_object(const struct peer *p, size_t i, unsigned selector, gnutls_datum_t *out,
			  bool *owned)
{
	gnutls_pubkey_t key = NULL;
	int rc;

	*owned = false;
	if (selector == DANE_SEL_CERT) {
		*out = p->der[i];
		return true;
	}
	if (p->crt[i] == NULL || gnutls_pubkey_init(&key) < 0)
		return false;
	rc = gnutls_pubkey_import_x509(key, p->crt[i], 0);
	if (rc >= 0)
		rc = gnutls_pubkey_export2(key, GNUTLS_X509_FMT_DER, out);
	gnutls_pubkey_deinit(key);
	*owned = rc >= 0;
	return rc >= 0;
}

/* The record's data against the selected object (RFC 6698 2.1.3). */
static bool data_matches(const struct dane_tlsa *t, const gnutls_datum_t *obj)
{
	unsigned char md[64];
	gnutls_digest_algorithm_t alg =
	    t->mtype == DANE_MATCH_SHA256 ? GNUTLS_DIG_SHA256 : GNUTLS_DIG_SHA512;
	size_t mdlen = t->mtype == DANE_MATCH_SHA256 ? 32 : 64;

	if (t->mtype == DANE_MATCH_FULL)
		return obj->size == t->len && memcmp(obj->data, t->data, t->len) == 0;
	if (t->len != mdlen || gnutls_hash_fast(alg, obj->data, obj->size, md) < 0)
		return false;
	return memcmp(md, t->data, mdlen) == 0;
}

/* Does certificate i of the chain match the record's selector and data? */
static bool cert_matches(const struct dane_tlsa *t, const struct peer *p, size_t i)
{
	gnutls_datum_t obj;
	bool owned, ok;

	if (!select_object(p, i, t->selector, &obj, &owned))
		return false;
	ok = data_matches(t, &obj);
	if (owned)
		gnutls_free(obj.data);
	return ok;
}

/*
 * The path from the leaf up to the certificate the anchor (chain[a])
 * issued, taken from the other certificates the server sent in any order,
 * each used once.  Returns its length, 0 when the sent certificates do not
 * lead to the anchor.  Names only: GnuTLS checks the signatures.
 */
static size_t path_build(const struct peer *p, size_t a, gnutls_x509_crt_t *path)
{
	bool used[DANE_CHAIN_MAX] = {false};
	size_t len = 1, j;

	path[0] = p->crt[0];
	used[0] = used[a] = true;
	while (!gnutls_x509_crt_check_issuer(path[len - 1], p->crt[a])) {
		for (j = 1; j < p->n; j++)
			if (!used[j] && p->crt[j] &&
			    gnutls_x509_crt_check_issuer(path[len - 1], p->crt[j]))
				break;
		if (j >= p->n)
			return 0;
		used[j] = true;
		path[len++] = p->crt[j];
	}
	return len;
}

/* Why a certificate's dates fail at now, or NULL when they are fine. */
static const char *dates_why(gnutls_x509_crt_t c, time_t now)
{
	time_t from = gnutls_x509_crt_get_activation_time(c);
	time_t until = gnutls_x509_crt_get_expiration_time(c);

	if (from == (time_t)-1 || until == (time_t)-1)
		return "unreadable validity dates";
	if (now < from)
		return "certificate is not yet valid";
	return now > until ? "certificate has expired" : NULL;
}

/*
 * GnuTLS verifies path (sorted, leaf first) against a trust list holding
 * only a copy of the anchor (the list frees what it holds).  Time checks
 * are off there: dates are checked against the caller's now instead.
 * Returns the GnuTLS status, 0 when the signatures and CA flags hold.
 */
static unsigned path_verify(const gnutls_datum_t *anchor_der, gnutls_x509_crt_t *path, size_t len)
{
	const unsigned flags =
	    GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS |
	    GNUTLS_VERIFY_DO_NOT_ALLOW_UNSORTED_CHAIN | GNUTLS_VERIFY_ALLOW_ANY_X509_V1_CA_CRT;
	gnutls_x509_crt_t anchor = crt_decode(anchor_der);
	gnutls_x509_trust_list_t tl = NULL;
	unsigned status = GNUTLS_CERT_INVALID;

	if (anchor == NULL || gnutls_x509_trust_list_init(&tl, 0) < 0) {
		if (anchor)
			gnutls_x509_crt_deinit(anchor);
		return GNUTLS_CERT_INVALID;
	}
	if (gnutls_x509_trust_list_add_cas(tl, &anchor, 1, 0) != 1)
		gnutls_x509_crt_deinit(anchor); /* not taken by the list */
	else if (gnutls_x509_trust_list_verify_crt2(tl, path, (unsigned)len, NULL, 0, flags,
						    &status, NULL) < 0)
		status = GNUTLS_CERT_INVALID;
	gnutls_x509_trust_list_deinit(tl, 1);
	return status;
}

/*
 * RFC 7671 5.2.2 with the sent certificate chain[a] as the DANE-TA anchor:
 * a path from the leaf up to it, every certificate on it (the anchor too,
 * as OpenSSL's DANE does) valid at now, and signatures that hold.  Returns
 * NULL when all do, else why not (a static string).
 */
static const char *ta_chain_why(const struct peer *p, size_t a)
{
	gnutls_x509_crt_t path[DANE_CHAIN_MAX];
	size_t len = path_build(p, a, path);
	const char *why = NULL;
	unsigned status;

	if (len == 0)
		return "the server's chain does not lead to the anchor";
	for (size_t i = 0; i < len && !why; i++)
		why = dates_why(path[i], p->now);
	if (!why)
		why = dates_why(p->crt[a], p->now);
	if (why)
		return why;
	status = path_verify(&p->der[a], path, len);
	return status ? cert_status_text(status) : NULL;
}

/*
 * RFC 7672 3.2.3: a DANE-TA leaf must carry the TLSA base domain (the MX
 * host name) or one of the extra names.  certs/ does the matching: SANs
 * before the CN, wildcards for one whole label, case and a trailing dot.
 */
static bool ta_names_ok(const gnutls_datum_t *leaf, const char *base,
			const struct cert_pattern *names, size_t nnames)
{
	const char *tok = "hostname";
	struct cert_pattern pat;
	size_t npat = 0;

	if (base && cert_match_resolve(&tok, 1, base, NULL, &pat, 1, &npat, NULL) == 0 &&
	    cert_names_match(leaf->data, leaf->size, &pat, npat, NULL, 0) == 1)
		return true;
	return nnames > 0 && cert_names_match(leaf->data, leaf->size, names, nnames, NULL, 0) == 1;
}

/*
 * DANE-TA(2): the anchor is one of the certificates the server sent after
 * its leaf (a digest alone cannot stand for an anchor it does not send).
 * The leaf itself is never the anchor: that is what DANE-EE is for.
 */
static bool match_ta(const struct dane_tlsa *t, struct peer *p, const char *base,
		     const struct cert_pattern *names, size_t nnames)
{
	for (size_t a = 1; a < p->n; a++) {
		const char *why;

		if (p->crt[a] == NULL || p->crt[0] == NULL || !cert_matches(t, p, a))
			continue;
		why = ta_chain_why(p, a);
		if (!why && !ta_names_ok(&p->der[0], base, names, nnames))
			why = "certificate name does not match";
		if (!why)
			return true;
		if (!p->ta_why)
			p->ta_why = why;
	}
	return false;
}

/* The reason of a failed match: the first usable records, and why the
 * first anchor found did not do. */
static void reason_nomatch(const struct dane_tlsa *set, size_t nset, const struct peer *p,
			   char *reason, size_t rsize)
{
	char list[REASON_RECORDS * 48] = "", one[48];
	size_t shown = 0, w = 0;

	for (size_t i = 0; i < nset && shown < REASON_RECORDS && w < sizeof(list); i++) {
		if (!record_usable(&set[i]))
			continue;
		record_text(&set[i], one, sizeof(one));
		w += (size_t)snprintf(list + w, sizeof(list) - w, "%s%s", shown ? ", " : "", one);
		shown++;
	}
	snprintf(reason, rsize, "no TLSA record matches (%s)%s%s", list,
		 p->ta_why ? "; DANE-TA: " : "", p->ta_why ? p->ta_why : "");
}

static size_t usable_count(const struct dane_tlsa *set, size_t nset)
{
	size_t k = 0;

	for (size_t i = 0; i < nset; i++)
		k += record_usable(&set[i]);
	return k;
}

static void peer_fini(struct peer *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->crt[i])
			gnutls_x509_crt_deinit(p->crt[i]);
}

static int say(char *reason, size_t rsize, const char *text)
{
	if (reason && rsize)
		snprintf(reason, rsize, "%s", text);
	return RL_EPOLICY;
}

int dane_match(const struct dane_tlsa *set, size_t nset, const gnutls_datum_t *chain, size_t n,
	       const char *base, const struct cert_pattern *names, size_t nnames, time_t now,
	       size_t *which, char *reason, size_t rsize)
{
	struct peer p = {.der = chain, .n = n < DANE_CHAIN_MAX ? n : DANE_CHAIN_MAX, .now = now};
	bool hit = false;
	size_t i;

	if (nset > DANE_RRSET_MAX)
		nset = DANE_RRSET_MAX;
	if (reason && rsize)
		reason[0] = '\0';
	if (!set || usable_count(set, nset) == 0)
		return say(reason, rsize, "no usable TLSA records");
	if (!chain || n == 0)
		return say(reason, rsize, "no server certificate to match TLSA records against");
	for (i = 0; i < p.n; i++)
		p.crt[i] = crt_decode(&chain[i]);
	/* Any one usable record suffices (RFC 7671 5.1, 5.2; RFC 7672 3.1.3). */
	for (i = 0; i < nset && !hit; i++) {
		if (!record_usable(&set[i]))
			continue;
		hit = set[i].usage == DANE_EE ? cert_matches(&set[i], &p, 0)
					      : match_ta(&set[i], &p, base, names, nnames);
	}
	if (hit && which)
		*which = i - 1;
	if (!hit && reason && rsize)
		reason_nomatch(set, nset, &p, reason, rsize);
	peer_fini(&p);
	return hit ? 0 : RL_EPOLICY;
}
