/*
 * Fuzz the DANE matcher with what a hostile MX and a hostile zone control:
 * the certificates the server sends and the TLSA records.  Input layout:
 * one octet for the number of records (0..3), each as a length octet and
 * that much rdata (parsed by dane_tlsa_parse; refused ones are skipped),
 * then one octet for the number of certificates (0..4), each as a 2-octet
 * length and that much DER.  The matcher must never crash, leak or read
 * out of bounds, and may only say "match" for a usable record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dane.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dane_tlsa set[3];
	gnutls_datum_t chain[4];
	size_t off = 0, nset = 0, n = 0, which = 99;
	char reason[300];
	unsigned nrec, ncert;
	int rc;

	if (size < 2)
		return 0;
	nrec = data[off++] % 4;
	for (unsigned i = 0; i < nrec && off < size; i++) {
		size_t len = data[off++];

		if (len > size - off)
			return 0;
		if (dane_tlsa_parse(data + off, len, &set[nset], NULL) == 0)
			nset++;
		off += len;
	}
	if (off >= size)
		return 0;
	ncert = data[off++] % 5;
	for (unsigned i = 0; i < ncert && off + 2 <= size; i++) {
		size_t len = (size_t)data[off] << 8 | data[off + 1];

		off += 2;
		if (len > size - off)
			return 0;
		chain[n].data = (unsigned char *)(uintptr_t)(data + off);
		chain[n++].size = (unsigned)len;
		off += len;
	}
	rc = dane_match(set, nset, chain, n, "mx.example.test", NULL, 0, (time_t)1700000000,
			&which, reason, sizeof(reason));
	RL_REQUIRE(rc == 0 || rc == RL_EPOLICY);
	RL_REQUIRE(memchr(reason, '\0', sizeof(reason)) != NULL);
	if (rc == 0)
		RL_REQUIRE(which < nset && dane_tlsa_usable(&set[which]));
	return 0;
}
