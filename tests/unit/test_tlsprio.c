/*
 * test_tlsprio: what the default outbound tls_priority lets GnuTLS offer.
 *
 * INTERFACE.md promises "strong AEAD ciphers only" by default.  The string
 * comes from cfg_defaults() (relay/cfg.c) and, with tls_protocols, goes
 * through pol_priority_build() exactly as the relay builds the priority of
 * its outbound sessions (relay/qmgr.c).  GnuTLS itself compiles each
 * string and we enumerate what it would offer: protocol versions, cipher
 * suites (with their key exchange, cipher, MAC and lowest version), and the
 * cipher, MAC and key-exchange lists.  Every finding is a bit in a mask, so
 * a failure names what was allowed.
 *
 * The scanner is first run on a deliberately weak priority: if it did not
 * see TLS 1.0, RC4, 3DES, NULL, MD5 and anonymous key exchange there, a
 * clean result for the default would prove nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "cfg.h"
#include "pol.h"
#include "rl.h"
#include "tap.h"

/* What a priority allows that the default must not (or lacks that it must have). */
enum {
	BAD_SSL3 = 1 << 0,
	BAD_TLS1_0 = 1 << 1,
	BAD_TLS1_1 = 1 << 2,
	BAD_RC4 = 1 << 3,
	BAD_3DES = 1 << 4,
	BAD_NULL_CIPHER = 1 << 5,
	BAD_MD5 = 1 << 6,
	BAD_ANON_DH = 1 << 7,
	BAD_ANON_ECDH = 1 << 8,
	BAD_NO_TLS12_AEAD = 1 << 9,  /* no AEAD suite usable with TLS 1.2 */
	BAD_NO_TLS13_AEAD = 1 << 10, /* no TLS 1.3 suite (all are AEAD) */
	BAD_NOT_AEAD = 1 << 11,	     /* a cipher without an AEAD tag (CBC, stream) */
	BAD_STATIC_KX = 1 << 12,     /* a TLS 1.2 key exchange without forward secrecy */
	BAD_NO_TLS12 = 1 << 13,	     /* TLS 1.2 not in the protocol list */
	BAD_NO_TLS13 = 1 << 14,	     /* TLS 1.3 not in the protocol list */
	BAD_INIT = 1 << 15,	     /* GnuTLS refused the string */
};

static const struct {
	unsigned bit;
	const char *what;
} bad_names[] = {
    {BAD_SSL3, "SSL3.0"},
    {BAD_TLS1_0, "TLS1.0"},
    {BAD_TLS1_1, "TLS1.1"},
    {BAD_RC4, "RC4 cipher"},
    {BAD_3DES, "3DES cipher"},
    {BAD_NULL_CIPHER, "NULL cipher"},
    {BAD_MD5, "MD5 MAC"},
    {BAD_ANON_DH, "ANON-DH key exchange"},
    {BAD_ANON_ECDH, "ANON-ECDH key exchange"},
    {BAD_NO_TLS12_AEAD, "no AEAD suite for TLS1.2"},
    {BAD_NO_TLS13_AEAD, "no AEAD suite for TLS1.3"},
    {BAD_NOT_AEAD, "a non-AEAD cipher"},
    {BAD_STATIC_KX, "a key exchange without forward secrecy"},
    {BAD_NO_TLS12, "TLS1.2 not allowed"},
    {BAD_NO_TLS13, "TLS1.3 not allowed"},
    {BAD_INIT, "GnuTLS refused the priority"},
};

/* The findings of mask as text, for got/want messages. */
static const char *bad_text(unsigned mask, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		if (!(mask & bad_names[i].bit))
			continue;
		int n =
		    snprintf(buf + used, size - used, "%s%s", used ? ", " : "", bad_names[i].what);
		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
	}
	return used ? buf : "(nothing)";
}

static unsigned bad_protocol(unsigned v)
{
	switch (v) {
	case GNUTLS_SSL3:
		return BAD_SSL3;
	case GNUTLS_TLS1_0:
		return BAD_TLS1_0;
	case GNUTLS_TLS1_1:
		return BAD_TLS1_1;
	default:
		return 0;
	}
}

static unsigned bad_cipher(unsigned c)
{
	switch (c) {
	case GNUTLS_CIPHER_ARCFOUR_128:
	case GNUTLS_CIPHER_ARCFOUR_40:
		return BAD_RC4;
	case GNUTLS_CIPHER_3DES_CBC:
		return BAD_3DES;
	case GNUTLS_CIPHER_NULL:
		return BAD_NULL_CIPHER;
	default:
		return gnutls_cipher_get_tag_size(c) == 0 ? BAD_NOT_AEAD : 0;
	}
}

static unsigned bad_kx(unsigned kx)
{
	switch (kx) {
	case GNUTLS_KX_ANON_DH:
		return BAD_ANON_DH;
	case GNUTLS_KX_ANON_ECDH:
		return BAD_ANON_ECDH;
	case GNUTLS_KX_DHE_RSA:
	case GNUTLS_KX_DHE_DSS:
	case GNUTLS_KX_ECDHE_RSA:
	case GNUTLS_KX_ECDHE_ECDSA:
	case GNUTLS_KX_UNKNOWN: /* TLS 1.3 suites: (EC)DHE is implied */
		return 0;
	default:
		return BAD_STATIC_KX; /* RSA, PSK, SRP, ... */
	}
}

/*
 * The cipher suites: each must be clean.  *aead12 / *aead13 say whether an
 * AEAD suite for TLS 1.2 / TLS 1.3 is among them (whether that version is
 * allowed at all is the protocol list's business).
 */
static unsigned scan_suites(gnutls_priority_t p, const char *label, int verbose, int *aead12,
			    int *aead13)
{
	unsigned found = 0;
	unsigned nsuites = 0;

	*aead12 = *aead13 = 0;

	for (unsigned i = 0; i < 1024; i++) {
		unsigned idx;
		unsigned char id[2];
		gnutls_kx_algorithm_t kx;
		gnutls_cipher_algorithm_t cipher;
		gnutls_mac_algorithm_t mac;
		gnutls_protocol_t minv;
		int rc = gnutls_priority_get_cipher_suite_index(p, i, &idx);

		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (rc < 0) /* a position GnuTLS cannot use (e.g. no such algorithm built in) */
			continue;
		const char *name = gnutls_cipher_suite_info(idx, id, &kx, &cipher, &mac, &minv);
		if (!name)
			continue;
		nsuites++;
		if (verbose)
			printf("# %s: %s (kx %s, cipher %s, mac %s, from %s)\n", label, name,
			       kx == GNUTLS_KX_UNKNOWN ? "-" : gnutls_kx_get_name(kx),
			       gnutls_cipher_get_name(cipher), gnutls_mac_get_name(mac),
			       gnutls_protocol_get_name(minv));
		found |= bad_cipher(cipher) | bad_kx(kx);
		if (mac == GNUTLS_MAC_MD5)
			found |= BAD_MD5;
		/* TLS 1.3 suites name no key exchange and start at 1.3. */
		if (mac == GNUTLS_MAC_AEAD && minv == GNUTLS_TLS1_3)
			*aead13 = 1;
		if (mac == GNUTLS_MAC_AEAD && minv <= GNUTLS_TLS1_2 && kx != GNUTLS_KX_UNKNOWN)
			*aead12 = 1;
	}
	CHECK(nsuites > 0, "%s: no cipher suite at all", label);
	return found;
}

/* Everything a priority string allows that it should not, as BAD_* bits. */
static unsigned scan_priority(const char *prio, const char *label, int verbose)
{
	gnutls_priority_t p;
	const char *errpos = NULL;
	const unsigned *list;
	unsigned found;
	int aead12, aead13, n, rc = gnutls_priority_init2(&p, prio, &errpos, 0);

	if (rc < 0) {
		fprintf(stderr, "# %s: gnutls_priority_init2(\"%s\"): %s at \"%s\"\n", label, prio,
			gnutls_strerror(rc), errpos ? errpos : "?");
		return BAD_INIT;
	}
	found = scan_suites(p, label, verbose, &aead12, &aead13) | BAD_NO_TLS12 | BAD_NO_TLS13;
	n = gnutls_priority_protocol_list(p, &list);
	for (int i = 0; i < n; i++) {
		if (verbose)
			printf("# %s: protocol %s\n", label, gnutls_protocol_get_name(list[i]));
		found |= bad_protocol(list[i]);
		if (list[i] == GNUTLS_TLS1_2)
			found &= ~(unsigned)BAD_NO_TLS12;
		if (list[i] == GNUTLS_TLS1_3)
			found &= ~(unsigned)BAD_NO_TLS13;
	}
	/* A suite counts only under a version the priority allows. */
	if (!aead12 || (found & BAD_NO_TLS12))
		found |= BAD_NO_TLS12_AEAD;
	if (!aead13 || (found & BAD_NO_TLS13))
		found |= BAD_NO_TLS13_AEAD;
	n = gnutls_priority_cipher_list(p, &list);
	for (int i = 0; i < n; i++)
		found |= bad_cipher(list[i]);
	n = gnutls_priority_mac_list(p, &list);
	for (int i = 0; i < n; i++)
		if (list[i] == GNUTLS_MAC_MD5)
			found |= BAD_MD5;
	n = gnutls_priority_kx_list(p, &list);
	for (int i = 0; i < n; i++)
		found |= bad_kx(list[i]);
	gnutls_priority_deinit(p);
	return found;
}

/* The priority the relay uses for a session without a policy entry. */
static char *effective_priority(const struct cfg *c, unsigned protocols)
{
	struct rl_buf b;
	size_t len;
	int rc;

	rl_buf_init(&b, 4096);
	rc = pol_priority_build(c->tls_priority, protocols, NULL, &b);
	if (rc == 0)
		rc = rl_buf_append(&b, "", 1);
	CHECK_INT(rc, 0);
	if (rc < 0) {
		rl_buf_fini(&b);
		return NULL;
	}
	return rl_buf_take(&b, &len);
}

#define CHECK_MASK(got, want, label)                                                               \
	do {                                                                                       \
		char g_[512], w_[512];                                                             \
		unsigned gm_ = (got), wm_ = (want);                                                \
		CHECK(gm_ == wm_, "%s: allows/lacks: got [%s] want [%s]", label,                   \
		      bad_text(gm_, g_, sizeof(g_)), bad_text(wm_, w_, sizeof(w_)));               \
	} while (0)

/* The scanner sees weakness where there is some: otherwise a pass means nothing. */
static void test_scanner_finds_weak_settings(void)
{
	const char *weak = "NORMAL:+VERS-TLS1.0:+VERS-TLS1.1:+3DES-CBC:+ARCFOUR-128:+NULL:"
			   "+ANON-DH:+ANON-ECDH:+MD5:+SHA1:+RSA";
	unsigned must = BAD_TLS1_0 | BAD_TLS1_1 | BAD_RC4 | BAD_3DES | BAD_NULL_CIPHER | BAD_MD5 |
			BAD_ANON_DH | BAD_ANON_ECDH | BAD_NOT_AEAD | BAD_STATIC_KX;
	unsigned got = scan_priority(weak, "weak", 0);

	CHECK_MASK(got & must, must, "weak control priority");
	/* TLS 1.2 only: no TLS 1.3 suite. */
	got = scan_priority("NORMAL:-VERS-ALL:+VERS-TLS1.2", "tls12-only", 0);
	CHECK(got & BAD_NO_TLS13_AEAD, "tls12-only: no-TLS1.3 finding missing");
	CHECK(got & BAD_NO_TLS13, "tls12-only: TLS1.3 listed");
	/* TLS 1.3 only: no suite for TLS 1.2. */
	got = scan_priority("NORMAL:-VERS-ALL:+VERS-TLS1.3", "tls13-only", 0);
	CHECK(got & BAD_NO_TLS12_AEAD, "tls13-only: no-TLS1.2 finding missing");
	CHECK_MASK(got &
		       ~(unsigned)(BAD_NO_TLS12_AEAD | BAD_NO_TLS12 | BAD_NOT_AEAD | BAD_STATIC_KX),
		   0, "tls13-only");
}

/* The default string on its own, as tls_priority holds it. */
static void test_default_tls_priority(void)
{
	struct cfg c;

	CHECK_INT(cfg_defaults(&c), 0);
	CHECK(c.tls_priority != NULL, "no default tls_priority");
	if (c.tls_priority)
		CHECK_MASK(scan_priority(c.tls_priority, "default tls_priority", 1), 0,
			   "default tls_priority");
	cfg_fini(&c);
}

/* With the default tls_protocols (>=TLSv1.2), as outbound sessions get it. */
static void test_default_effective_priority(void)
{
	struct cfg c;
	char *prio;

	CHECK_INT(cfg_defaults(&c), 0);
	CHECK_INT(c.tls_protocols, CFG_TLS1_2 | CFG_TLS1_3);
	prio = effective_priority(&c, c.tls_protocols);
	if (prio) {
		printf("# effective default priority: %s\n", prio);
		CHECK_MASK(scan_priority(prio, "effective default", 0), 0,
			   "effective default priority");
	}
	free(prio);
	cfg_fini(&c);
}

/* tls_protocols = >=TLSv1.3 over the default: TLS 1.3 alone, still clean. */
static void test_tls13_only_priority(void)
{
	struct cfg c;
	char *prio;

	CHECK_INT(cfg_defaults(&c), 0);
	prio = effective_priority(&c, CFG_TLS1_3);
	if (prio) {
		unsigned got = scan_priority(prio, ">=TLSv1.3", 0);

		/* Exactly: TLS 1.2 and its suites are gone, nothing weak appears. */
		CHECK_MASK(got, BAD_NO_TLS12 | BAD_NO_TLS12_AEAD, ">=TLSv1.3 priority");
	}
	free(prio);
	cfg_fini(&c);
}

int main(void)
{
	test_scanner_finds_weak_settings();
	test_default_tls_priority();
	test_default_effective_priority();
	test_tls13_only_priority();
	return TEST_DONE();
}
