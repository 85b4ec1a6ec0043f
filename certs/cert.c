/*
 * cert: GnuTLS-facing certificate work: decoding, the leaf's peer names,
 * trust anchors, chain verification and certificate files.  GnuTLS error
 * codes are translated here and never leave certs/.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509-ext.h>
#include <gnutls/x509.h>

#include "cert.h"
#include "cert_int.h"

/* A CA bundle of the whole web PKI is well under 1 MiB. */
#define CERT_FILE_MAX (16u * 1024 * 1024)
/* The OID of the subjectAltName extension (RFC 5280 4.2.1.6). */
#define OID_SAN "2.5.29.17"

int cert_import(const unsigned char *der, size_t len, gnutls_x509_crt_t *out)
{
	gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};

	*out = NULL;
	if (der == NULL || len == 0 || len > CERT_FILE_MAX)
		return RL_EPARSE;
	if (gnutls_x509_crt_init(out) < 0)
		return -ENOMEM;
	if (gnutls_x509_crt_import(*out, &d, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(*out);
		*out = NULL;
		return RL_EPARSE;
	}
	return 0;
}

/* One peer name against every pattern; copies it to matched on success. */
static int name_try(const char *name, const struct cert_pattern *pats, size_t n, char *matched,
		    size_t msize)
{
	for (size_t i = 0; i < n; i++) {
		if (cert_name_match(name, pats[i].name)) {
			if (msize > 0)
				rl_strlcpy(matched, name, msize);
			return 1;
		}
	}
	return 0;
}

/* A name from a certificate as a C string, or false when it holds a NUL
 * (the classic "www.bank.com\0.evil.com" trick) or is too long to be one. */
static bool name_copy(const unsigned char *p, size_t len, char *out)
{
	if (len == 0 || len > CERT_NAME_MAX + 1 || memchr(p, '\0', len) != NULL)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

/*
 * The dNSName entries of the subjectAltName extension.  Sets *seen when
 * there is at least one (so the CN must not be used).  Returns 1 on a
 * match, 0, or RL_EPARSE when the extension does not decode (fail closed).
 */
static int match_sans(gnutls_x509_crt_t crt, const struct cert_pattern *pats, size_t n,
		      char *matched, size_t msize, bool *seen)
{
	gnutls_subject_alt_names_t sans = NULL;
	gnutls_datum_t ext = {NULL, 0};
	unsigned critical = 0, type;
	int rc;

	*seen = false;
	rc = gnutls_x509_crt_get_extension_by_oid2(crt, OID_SAN, 0, &ext, &critical);
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return 0;
	if (rc < 0)
		return RL_EPARSE;
	rc = gnutls_subject_alt_names_init(&sans) < 0 ? -ENOMEM : 0;
	if (rc == 0 && gnutls_x509_ext_import_subject_alt_names(&ext, sans, 0) < 0)
		rc = RL_EPARSE;
	for (unsigned i = 0; rc == 0; i++) {
		gnutls_datum_t san, other;
		char name[CERT_NAME_MAX + 2];
		int got = gnutls_subject_alt_names_get(sans, i, &type, &san, &other);

		if (got == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (got < 0)
			rc = RL_EPARSE;
		else if (type == GNUTLS_SAN_DNSNAME) {
			*seen = true;
			if (name_copy(san.data, san.size, name))
				rc = name_try(name, pats, n, matched, msize);
		}
	}
	if (sans)
		gnutls_subject_alt_names_deinit(sans);
	gnutls_free(ext.data);
	return rc;
}

/* The last subject CN, as Postfix's tls_text_name() takes it. */
static int match_cn(gnutls_x509_crt_t crt, const struct cert_pattern *pats, size_t n, char *matched,
		    size_t msize)
{
	unsigned char buf[CERT_NAME_MAX + 2], last[CERT_NAME_MAX + 2];
	size_t lastlen = 0;
	char name[CERT_NAME_MAX + 2];
	bool have = false;

	for (unsigned i = 0;; i++) {
		size_t size = sizeof(buf);
		int rc = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, i, 0, buf,
						       &size);

		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		/* A CN too long to be a host name still counts as the last one. */
		have = rc >= 0;
		lastlen = have ? size : 0;
		if (have)
			memcpy(last, buf, size);
	}
	if (!have || !name_copy(last, lastlen, name))
		return 0;
	return name_try(name, pats, n, matched, msize);
}

int cert_names_match(const unsigned char *leaf_der, size_t len, const struct cert_pattern *pats,
		     size_t n, char *matched, size_t msize)
{
	gnutls_x509_crt_t crt;
	bool seen = false;
	int rc;

	if (msize > 0)
		matched[0] = '\0';
	rc = cert_import(leaf_der, len, &crt);
	if (rc < 0)
		return rc;
	rc = match_sans(crt, pats, n, matched, msize, &seen);
	if (rc == 0 && !seen)
		rc = match_cn(crt, pats, n, matched, msize);
	gnutls_x509_crt_deinit(crt);
	return rc;
}

/*
 * Read a whole file of at most CERT_FILE_MAX bytes into malloc'ed memory.
 * rl_buf_read_file() opens only a regular file, without blocking: a FIFO
 * named as a CA file would otherwise hang its reader (the daemon at start
 * or reload) until a writer came, and a device could feed it without end.
 */
static int file_read(const char *path, gnutls_datum_t *out, struct rl_why *why)
{
	struct rl_buf b;
	size_t len;
	int rc;

	out->data = NULL;
	out->size = 0;
	rl_buf_init(&b, CERT_FILE_MAX);
	rc = rl_buf_read_file(&b, path, CERT_FILE_MAX, why);
	if (rc == RL_ETOOBIG)
		rc = rl_fail(why, RL_ETOOBIG, "file larger than 16 MiB", CERT_FILE_MAX);
	if (rc == 0 && b.data == NULL)
		rc = rl_buf_append(&b, "", 0); /* an empty file: data is never NULL */
	if (rc < 0) {
		rl_buf_fini(&b);
		return rc == -ENOMEM ? rl_fail(why, rc, "out of memory", 0) : rc;
	}
	out->data = (unsigned char *)rl_buf_take(&b, &len);
	out->size = (unsigned)len;
	return 0;
}

static bool is_pem(const gnutls_datum_t *d)
{
	static const char mark[] = "-----BEGIN ";

	for (size_t i = 0; i + sizeof(mark) - 1 <= d->size; i++)
		if (memcmp(d->data + i, mark, sizeof(mark) - 1) == 0)
			return true;
	return false;
}

int cert_trust_load(const char *cafile, gnutls_x509_trust_list_t *out, struct rl_why *why)
{
	gnutls_x509_trust_list_t tl;
	gnutls_datum_t data = {NULL, 0};
	int rc;

	*out = NULL;
	if (cafile) {
		rc = file_read(cafile, &data, why);
		if (rc < 0)
			return rc;
	}
	if (gnutls_x509_trust_list_init(&tl, 0) < 0) {
		free(data.data);
		return rl_fail(why, -ENOMEM, "out of memory", 0);
	}
	if (!cafile)
		rc = gnutls_x509_trust_list_add_system_trust(tl, 0, 0);
	else
		rc = gnutls_x509_trust_list_add_trust_mem(
		    tl, &data, NULL, is_pem(&data) ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER, 0,
		    0);
	free(data.data);
	/* An empty trust list would make every chain fail; say so now rather
	 * than deferring all verified mail with "signer not found". */
	if (rc <= 0) {
		gnutls_x509_trust_list_deinit(tl, 1);
		return rl_fail(why, RL_ECONFIG,
			       cafile ? "no usable CA certificate in file"
				      : "system trust store is empty or unavailable",
			       0);
	}
	*out = tl;
	return 0;
}

void cert_trust_free(gnutls_x509_trust_list_t tl)
{
	if (tl)
		gnutls_x509_trust_list_deinit(tl, 1);
}

static void crts_free(gnutls_x509_crt_t *crts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	free(crts);
}

/*
 * Does the leaf allow TLS client use: clientAuth in its extended key usage,
 * or no such extension at all?  GnuTLS also takes anyExtendedKeyUsage;
 * the relay's rule ("clientAuth or no extended key usage") does not.
 */
static int leaf_client_ok(gnutls_x509_crt_t leaf)
{
	char oid[128];
	int seen = 0;

	for (unsigned i = 0;; i++) {
		size_t size = sizeof(oid);
		int rc = gnutls_x509_crt_get_key_purpose_oid(leaf, i, oid, &size, NULL);

		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			return !seen;
		if (rc < 0)
			return 0; /* unreadable: not for client use */
		seen = 1;
		if (strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0)
			return 1;
	}
}

/* Verify for a key purpose (GNUTLS_KP_TLS_WWW_SERVER or _CLIENT). */
static int chain_verify(const gnutls_datum_t *chain, size_t n, gnutls_x509_trust_list_t tl,
			const char *kp, unsigned *status)
{
	gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)kp, 0};
	gnutls_x509_crt_t *crts;
	size_t got = 0;
	unsigned out = 0;
	int rc = 0;

	*status = GNUTLS_CERT_INVALID;
	if (n == 0 || n > 64 || tl == NULL)
		return RL_EPARSE;
	crts = calloc(n, sizeof(*crts));
	if (!crts)
		return -ENOMEM;
	for (; got < n && rc == 0; got++)
		rc = cert_import(chain[got].data, chain[got].size, &crts[got]);
	if (rc < 0) {
		crts_free(crts, got - 1);
		return rc;
	}
	/* No host name: GnuTLS checks signatures, dates, CA flags and the
	 * key purpose; names are cert_names_match()'s job. */
	if (gnutls_x509_trust_list_verify_crt2(tl, crts, (unsigned)n, &purpose, 1, 0, &out, NULL) <
	    0)
		out = GNUTLS_CERT_INVALID;
	if (strcmp(kp, GNUTLS_KP_TLS_WWW_CLIENT) == 0) {
		if (!leaf_client_ok(crts[0]))
			out |= GNUTLS_CERT_INVALID | GNUTLS_CERT_PURPOSE_MISMATCH;
		if (out & GNUTLS_CERT_PURPOSE_MISMATCH)
			out = (out & ~(unsigned)GNUTLS_CERT_PURPOSE_MISMATCH) | CERT_STATUS_NOT_CLIENT;
	}
	if (out != 0 && gnutls_x509_crt_check_issuer(crts[0], crts[0]))
		out |= CERT_STATUS_SELF_SIGNED;
	crts_free(crts, n);
	*status = out;
	return out == 0;
}

int cert_chain_verify(const gnutls_datum_t *chain, size_t n, gnutls_x509_trust_list_t tl,
		      unsigned *status)
{
	return chain_verify(chain, n, tl, GNUTLS_KP_TLS_WWW_SERVER, status);
}

int cert_client_verify(const gnutls_datum_t *chain, size_t n, gnutls_x509_trust_list_t tl,
		       unsigned *status)
{
	return chain_verify(chain, n, tl, GNUTLS_KP_TLS_WWW_CLIENT, status);
}

const char *cert_status_text(unsigned status)
{
	/* Most telling first: the operator fixes the first one named. */
	static const struct {
		unsigned bit;
		const char *text;
	} reasons[] = {
	    {CERT_STATUS_SELF_SIGNED, "self-signed certificate"},
	    {GNUTLS_CERT_EXPIRED, "certificate has expired"},
	    {GNUTLS_CERT_NOT_ACTIVATED, "certificate is not yet valid"},
	    {GNUTLS_CERT_REVOKED, "certificate has been revoked"},
	    {GNUTLS_CERT_SIGNER_NOT_FOUND, "signer not found"},
	    {GNUTLS_CERT_SIGNER_NOT_CA, "signer is not a CA"},
	    {GNUTLS_CERT_SIGNATURE_FAILURE, "bad certificate signature"},
	    {GNUTLS_CERT_INSECURE_ALGORITHM, "insecure signature algorithm"},
	    {GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE, "signer constraints violated"},
	    {CERT_STATUS_NOT_CLIENT, "certificate not for TLS client use (extended key usage "
				     "without clientAuth)"},
	    {GNUTLS_CERT_PURPOSE_MISMATCH, "certificate not for TLS server use"},
	    {GNUTLS_CERT_UNKNOWN_CRIT_EXTENSIONS, "unknown critical extension"},
	};

	if (status == 0)
		return "trusted";
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (status & reasons[i].bit)
			return reasons[i].text;
	return "certificate not trusted";
}

/* Split PEM text into DER certificates (malloc'ed copies). */
static int pem_split(const gnutls_datum_t *data, gnutls_datum_t **chain, size_t *n,
		     struct rl_why *why)
{
	gnutls_x509_crt_t *crts = NULL;
	unsigned count = 0;
	int rc = 0;

	if (gnutls_x509_crt_list_import2(&crts, &count, data, GNUTLS_X509_FMT_PEM, 0) < 0)
		return rl_fail(why, RL_EPARSE, "not a valid PEM certificate file", 0);
	*chain = count ? calloc(count, sizeof(**chain)) : NULL;
	if (!*chain)
		rc = count ? rl_fail(why, -ENOMEM, "out of memory", 0)
			   : rl_fail(why, RL_EPARSE, "no certificate in file", 0);
	for (unsigned i = 0; i < count; i++) {
		gnutls_datum_t der = {NULL, 0};

		if (rc == 0 && gnutls_x509_crt_export2(crts[i], GNUTLS_X509_FMT_DER, &der) < 0)
			rc = rl_fail(why, RL_EPARSE, "certificate does not encode", 0);
		if (rc == 0 && (((*chain)[i].data = malloc(der.size)) == NULL))
			rc = rl_fail(why, -ENOMEM, "out of memory", 0);
		if (rc == 0) {
			memcpy((*chain)[i].data, der.data, der.size);
			(*chain)[i].size = der.size;
			*n = i + 1;
		}
		gnutls_free(der.data);
		gnutls_x509_crt_deinit(crts[i]);
	}
	gnutls_free(crts);
	return rc;
}

int cert_file_load(const char *path, gnutls_datum_t **chain, size_t *n, struct rl_why *why)
{
	gnutls_datum_t data;
	gnutls_x509_crt_t crt;
	int rc;

	*chain = NULL;
	*n = 0;
	rc = file_read(path, &data, why);
	if (rc < 0)
		return rc;
	if (is_pem(&data)) {
		rc = pem_split(&data, chain, n, why);
		free(data.data);
		if (rc < 0) {
			cert_chain_free(*chain, *n);
			*chain = NULL;
			*n = 0;
		}
		return rc;
	}
	/* Not PEM: one DER certificate, the file's bytes as they are. */
	rc = cert_import(data.data, data.size, &crt);
	if (rc < 0) {
		free(data.data);
		return rl_fail(
		    why, rc, rc == RL_EPARSE ? "not a PEM or DER certificate" : "out of memory", 0);
	}
	gnutls_x509_crt_deinit(crt);
	*chain = malloc(sizeof(**chain));
	if (!*chain) {
		free(data.data);
		return rl_fail(why, -ENOMEM, "out of memory", 0);
	}
	(*chain)[0] = data;
	*n = 1;
	return 0;
}

void cert_chain_free(gnutls_datum_t *chain, size_t n)
{
	if (!chain)
		return;
	for (size_t i = 0; i < n; i++)
		free(chain[i].data);
	free(chain);
}

/* Which DN dn_text() prints. */
enum cert_dn {
	CERT_DN_SUBJECT,
	CERT_DN_ISSUER,
};

static int dn_text(const unsigned char *der, size_t len, enum cert_dn which, char *out,
		   size_t osize)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = {NULL, 0};
	size_t j = 0;
	int rc;

	RL_REQUIRE(osize > 0);
	out[0] = '\0';
	rc = cert_import(der, len, &crt);
	if (rc < 0)
		return rc;
	if (which == CERT_DN_SUBJECT ? gnutls_x509_crt_get_dn3(crt, &dn, 0) < 0
				     : gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0) < 0)
		rc = RL_EPARSE;
	gnutls_x509_crt_deinit(crt);
	/* The DN is peer-chosen text: keep it to printable ASCII. */
	for (size_t i = 0; rc == 0 && i < dn.size && j + 1 < osize; i++)
		out[j++] = dn.data[i] >= 0x20 && dn.data[i] < 0x7f ? (char)dn.data[i] : '?';
	out[j] = '\0';
	gnutls_free(dn.data);
	return rc;
}

int cert_subject_text(const unsigned char *der, size_t len, char *out, size_t osize)
{
	return dn_text(der, len, CERT_DN_SUBJECT, out, osize);
}

int cert_issuer_text(const unsigned char *der, size_t len, char *out, size_t osize)
{
	return dn_text(der, len, CERT_DN_ISSUER, out, osize);
}

int cert_cn_text(const unsigned char *der, size_t len, int issuer, char *out, size_t osize)
{
	gnutls_x509_crt_t crt;
	char buf[1024];
	size_t size = sizeof(buf) - 1, j = 0;
	int rc;

	RL_REQUIRE(osize > 0);
	out[0] = '\0';
	rc = cert_import(der, len, &crt);
	if (rc < 0)
		return rc;
	rc = issuer ? gnutls_x509_crt_get_issuer_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
							   buf, &size)
		    : gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf,
						    &size);
	gnutls_x509_crt_deinit(crt);
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return 0;
	if (rc < 0)
		return RL_EPARSE;
	/*
	 * Peer-chosen text that goes into a quoted string inside a header
	 * comment and into the log: printable ASCII without quotes,
	 * backslashes or parentheses.
	 */
	for (size_t i = 0; i < size && j + 1 < osize; i++) {
		unsigned char ch = (unsigned char)buf[i];

		out[j++] = ch >= 0x20 && ch < 0x7f && !strchr("\"\\()", ch) ? (char)ch : '?';
	}
	out[j] = '\0';
	return 0;
}

int cert_validity(const unsigned char *der, size_t len, time_t *not_before, time_t *not_after)
{
	gnutls_x509_crt_t crt;
	int rc;

	*not_before = *not_after = (time_t)-1;
	rc = cert_import(der, len, &crt);
	if (rc < 0)
		return rc;
	*not_before = gnutls_x509_crt_get_activation_time(crt);
	*not_after = gnutls_x509_crt_get_expiration_time(crt);
	gnutls_x509_crt_deinit(crt);
	/* GnuTLS says (time_t)-1 for a time it cannot read. */
	if (*not_before == (time_t)-1 || *not_after == (time_t)-1) {
		*not_before = *not_after = (time_t)-1;
		return RL_EPARSE;
	}
	return 0;
}
