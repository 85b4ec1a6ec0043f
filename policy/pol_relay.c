/*
 * pol_relay: the relay decision and lookups in the relay_clientcerts list
 * (pol_relay.h).  Pure.
 */
#include <stdlib.h>
#include <string.h>

#include "pol_int.h"
#include "pol_relay.h"

void pol_ccerts_free(struct pol_ccerts *l)
{
	if (!l)
		return;
	free(l->d);
	free(l);
}

size_t pol_ccerts_count(const struct pol_ccerts *l)
{
	return l ? l->n : 0;
}

static int digest_cmp(const void *a, const void *b)
{
	return memcmp(a, b, FPR_SHA256_LEN);
}

int pol_ccerts_listed(const struct pol_ccerts *l, const struct fpr_digest *d)
{
	/* Only SHA-256 is listed: a digest of another length never matches. */
	if (!l || l->n == 0 || d->len != FPR_SHA256_LEN)
		return 0;
	return bsearch(d->bytes, l->d, l->n, sizeof(l->d[0]), digest_cmp) != NULL;
}

/* Either digest of a presented certificate, listed by the administrator. */
static int cert_listed(const struct pol_relay_in *in)
{
	return in->cert_presented && !in->cert_out_of_date &&
	       (pol_ccerts_listed(in->listed, &in->cert_sha256) ||
		pol_ccerts_listed(in->listed, &in->spki_sha256));
}

enum pol_relay_by pol_relay_decide(const struct pol_relay_in *in, const char **why)
{
	const char *text = "client address not in mynetworks, no allowed client certificate, "
			   "not authenticated";
	enum pol_relay_by by = POL_RELAY_DENY;

	if (rl_net_match(in->mynetworks, in->nmynetworks, in->client)) {
		by = POL_RELAY_NETWORK;
		text = "client address in mynetworks";
	} else if (cert_listed(in)) {
		by = POL_RELAY_CERTIFICATE;
		text = "client certificate listed in relay_clientcerts";
	} else if (in->cert_presented && in->ca_verified) {
		by = POL_RELAY_CERTIFICATE;
		text = "client certificate verified by relay_client_ca_file";
	} else if (in->auth_user && in->auth_user[0]) {
		/* An empty identity is no identity: never a reason to relay. */
		by = POL_RELAY_AUTH;
		text = "client authenticated";
	}
	if (why)
		*why = text;
	return by;
}

const char *pol_relay_by_name(enum pol_relay_by by)
{
	static const char *const names[POL_RELAY_BY_COUNT] = {
	    [POL_RELAY_DENY] = "deny",
	    [POL_RELAY_NETWORK] = "network",
	    [POL_RELAY_CERTIFICATE] = "certificate",
	    [POL_RELAY_AUTH] = "auth",
	};

	RL_REQUIRE((unsigned)by < POL_RELAY_BY_COUNT);
	return names[by];
}
