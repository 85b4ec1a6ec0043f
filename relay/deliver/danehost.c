/*
 * danehost: one MX host's TLSA lookup (RFC 7672 2.2), alias target first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "danehost.h"

static void danehost_free_recs(struct danehost *h)
{
	free(h->rec);
	h->rec = NULL;
	h->nrec = 0;
}

void danehost_clear(struct danehost *h)
{
	if (h->qid >= 0 && h->dns)
		dns_cancel(h->dns, h->qid);
	h->qid = -1;
	danehost_free_recs(h);
}

static void danehost_fail(struct danehost *h, const char *why)
{
	danehost_free_recs(h);
	h->state = POL_DANE_FAIL;
	if (snprintf(h->why, sizeof(h->why), "TLSA lookup error for %s: %s", h->qname, why) < 0)
		rl_strlcpy(h->why, "TLSA lookup error", sizeof(h->why));
}

/*
 * Keep the usable records of a secure answer in one block: the array of
 * struct dane_tlsa, then their data.  At most DANEHOST_BYTES_MAX octets
 * of data are kept; what does not fit is dropped.
 */
static void danehost_keep(struct danehost *h, const struct dns_tlsa_result *r)
{
	struct dane_tlsa t[DNS_TLSA_MAX];
	size_t n = 0, bytes = 0, dropped = r->ndropped;
	unsigned char *data;

	h->nunusable = h->nmalformed = 0;
	for (size_t i = 0; i < r->nrec; i++) {
		if (dane_tlsa_parse(r->rec[i].data, r->rec[i].len, &t[n], NULL) < 0) {
			/* Malformed ones are unusable too (RFC 7671 5.1). */
			h->nunusable++;
			h->nmalformed++;
			continue;
		}
		if (!dane_tlsa_usable(&t[n])) {
			h->nunusable++;
			continue;
		}
		if (bytes + t[n].len > DANEHOST_BYTES_MAX) {
			dropped++;
			continue;
		}
		bytes += t[n].len;
		n++;
	}
	if (n == 0 && dropped > 0) {
		/* Unseen records may be the usable ones: never "none usable". */
		danehost_fail(h, "too many or too large TLSA records to use");
		return;
	}
	if (n == 0) {
		h->state = POL_DANE_UNUSABLE;
		return;
	}
	h->rec = malloc(n * sizeof(*h->rec) + bytes);
	if (!h->rec) {
		danehost_fail(h, "out of memory");
		return;
	}
	data = (unsigned char *)(h->rec + n);
	for (size_t i = 0; i < n; i++) {
		h->rec[i] = t[i];
		memcpy(data, t[i].data, t[i].len);
		h->rec[i].data = data;
		data += t[i].len;
	}
	h->nrec = n;
	h->state = POL_DANE_USABLE;
}

static int danehost_ask(struct danehost *h, const char *name);

static void danehost_on_tlsa(void *arg, const struct dns_tlsa_result *r)
{
	struct danehost *h = arg;

	h->qid = -1;
	h->secure = r->secure;
	if (r->status == DNS_TEMPFAIL || r->status == DNS_BOGUS) {
		danehost_fail(h, r->why[0] ? r->why : "lookup failed");
	} else if (r->status == DNS_OK && r->secure) {
		danehost_keep(h, r);
	} else if (h->canon[0]) {
		/* Nothing usable at the alias target: the MX host name itself. */
		h->canon[0] = '\0';
		if (danehost_ask(h, h->host) == 0)
			return;
		danehost_fail(h, "cannot start the lookup");
	} else {
		h->state = POL_DANE_NONE; /* a secure denial, or insecure: no DANE */
	}
	h->cb(h->arg, h);
}

static int danehost_ask(struct danehost *h, const char *name)
{
	int id;

	rl_strlcpy(h->base, name, sizeof(h->base));
	if (snprintf(h->qname, sizeof(h->qname), "_%u._tcp.%s", h->port, name) >=
	    (int)sizeof(h->qname))
		return -EINVAL;
	id = dns_tlsa(h->dns, h->qname, danehost_on_tlsa, h);
	if (id < 0)
		return id;
	h->qid = id;
	return 0;
}

int danehost_start(struct danehost *h, struct dns *dns, const char *host, const char *canon,
		   unsigned port, void (*cb)(void *arg, struct danehost *h), void *arg)
{
	memset(h, 0, sizeof(*h));
	h->qid = -1;
	h->dns = dns;
	h->port = port;
	h->cb = cb;
	h->arg = arg;
	rl_strlcpy(h->host, host, sizeof(h->host));
	if (canon && canon[0] && strcasecmp(canon, host) != 0)
		rl_strlcpy(h->canon, canon, sizeof(h->canon));
	return danehost_ask(h, h->canon[0] ? h->canon : h->host);
}

void danehost_pol(const struct danehost *h, int mx_secure, struct pol_dane *out)
{
	*out = (struct pol_dane){
		.state = h->state,
		.rec = h->rec,
		.nrec = h->nrec,
		.base = h->base,
		.mx_secure = mx_secure,
		.why = h->why,
	};
}
