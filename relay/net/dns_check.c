/*
 * dns_check: what the DNSSEC check of dns_check_dnssec() is told and what
 * its report names (dns.h): the zone whose keys are asked for, and the
 * servers the queries go to.  Both read small files the administrator
 * controls (the trust anchors, /etc/resolv.conf) and hand the text to the
 * pure parsers of dns_parse.c; nothing here keeps state or logs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dns.h"
#include "netaddr.h"

/* More than any trust-anchor file or resolv.conf is; only the start is read. */
#define DNS_CHECK_FILE_MAX (1024 * 1024)
#define DNS_RESOLV_CONF	   "/etc/resolv.conf"

/* Read path into b (cut at DNS_CHECK_FILE_MAX); 0 or a negative code. */
static int check_read(const char *path, struct rl_buf *b)
{
	int rc = rl_buf_read_file(b, path, DNS_CHECK_FILE_MAX, NULL);

	/* A cut file still starts with its first records. */
	return rc == RL_ETOOBIG && b->len > 0 ? 0 : rc;
}

void dns_check_zone(const struct cfg *cfg, char *out, size_t size)
{
	struct rl_buf b;
	int rc = -ENOENT;

	RL_REQUIRE(cfg && out && size >= 2);
	rl_buf_init(&b, DNS_CHECK_FILE_MAX);
	/* The root key is the anchor of the Internet; a test setup or a
	 * private tree names its own zone first in its anchor file. */
	if (cfg->dns_trust_anchor_file)
		rc = check_read(cfg->dns_trust_anchor_file, &b);
	if (rc < 0 || dns_parse_anchor_owner(b.len ? b.data : "", b.len, out, size) < 0)
		memcpy(out, ".", 2);
	rl_buf_fini(&b);
}

/* "127.0.0.1@5353, 192.0.2.1" from the configured forwarders. */
static void servers_list(const struct cfg *cfg, char *out, size_t size)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < cfg->ndns && o + 1 < size; i++) {
		char ip[NETADDR_TEXT_SIZE];
		unsigned port = 0;
		int n;

		if (netaddr_text((const struct sockaddr *)&cfg->dns[i].sa, ip, sizeof(ip), &port) <
		    0)
			continue;
		n = port == 53 ? snprintf(out + o, size - o, "%s%s", o ? ", " : "", ip)
			       : snprintf(out + o, size - o, "%s%s@%u", o ? ", " : "", ip, port);
		if (n < 0 || (size_t)n >= size - o) {
			out[o] = '\0'; /* whole entries only */
			break;
		}
		o += (size_t)n;
	}
}

void dns_servers_text(const struct cfg *cfg, char *out, size_t size)
{
	char list[512], extra[320] = "";
	struct rl_buf b;

	RL_REQUIRE(cfg && out && size > 0);
	if (cfg->dns_unbound_config)
		snprintf(extra, sizeof(extra), ", dns_unbound_config = %.280s",
			 cfg->dns_unbound_config);
	if (cfg->dns_system) {
		rl_buf_init(&b, DNS_CHECK_FILE_MAX);
		if (check_read(DNS_RESOLV_CONF, &b) < 0 ||
		    dns_parse_resolv(b.len ? b.data : "", b.len, list, sizeof(list)) == 0)
			snprintf(list, sizeof(list), "no nameserver");
		rl_buf_fini(&b);
		snprintf(out, size, "%s (dns_servers = system: %s%s)", list, DNS_RESOLV_CONF,
			 extra);
	} else if (cfg->ndns == 0) {
		snprintf(out, size, "the root name servers (dns_servers = recursive%s)", extra);
	} else {
		servers_list(cfg, list, sizeof(list));
		snprintf(out, size, "%s (dns_servers%s)", list, extra);
	}
}
