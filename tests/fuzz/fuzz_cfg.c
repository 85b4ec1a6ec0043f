/*
 * fuzz_cfg: libFuzzer target for the configuration parser (cfg_parse()).
 *
 * Besides memory errors, it aborts when a file that parsed breaks one of the
 * promises of cfg.h, so the fuzzer also looks for values that slip through.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_invariants(const struct cfg *c)
{
	struct sockaddr_in6 sin6;

	RL_REQUIRE(c->nlisten >= 1 && c->nlisten <= CFG_MAX_LISTEN);
	RL_REQUIRE(c->nmynetworks <= CFG_MAX_NETWORKS);
	RL_REQUIRE(c->dns_system ? c->ndns == 0 : c->ndns >= 1 && c->ndns <= CFG_MAX_DNS);
	RL_REQUIRE(c->myhostname && c->queue_dir && c->policy_file && c->tls_priority);
	RL_REQUIRE(c->tls_protocols != 0 && (c->tls_protocols & ~0x0fu) == 0);
	RL_REQUIRE(c->tls_protocols_text && c->tls_protocols_text[0]);
	RL_REQUIRE(c->remote_port >= 1 && c->remote_port <= 65535);
	RL_REQUIRE(c->tls_loglevel >= 0 && c->tls_loglevel <= 4);
	RL_REQUIRE(c->max_message_size >= 1024 && c->queue_max_size >= 1048576);
	RL_REQUIRE(c->retry_min > 0 && c->retry_min <= c->retry_max);
	RL_REQUIRE(c->queue_lifetime > 0 && c->smtpd_timeout > 0 && c->smtpd_max_session_time > 0);
	RL_REQUIRE(!c->tls_cert_file == !c->tls_key_file);
	RL_REQUIRE(!c->smtpd_tls_cert_file == !c->smtpd_tls_key_file);
	for (size_t i = 0; i < c->nmynetworks; i++)
		RL_REQUIRE(c->mynetworks[i].prefix <=
			   (c->mynetworks[i].family == AF_INET ? 32u : 128u));
	/* Exercise the matcher with a v4-mapped address. */
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr.s6_addr[10] = 0xff;
	sin6.sin6_addr.s6_addr[11] = 0xff;
	sin6.sin6_addr.s6_addr[12] = 127;
	sin6.sin6_addr.s6_addr[15] = 1;
	(void)cfg_net_match(c, (const struct sockaddr *)&sin6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg c;
	struct cfg_error err;

	if (cfg_defaults(&c) < 0) {
		cfg_fini(&c);
		return 0;
	}
	if (cfg_parse(&c, (const char *)data, size, &err) == 0)
		check_invariants(&c);
	else
		RL_REQUIRE(err.msg[0] && memchr(err.msg, '\0', sizeof(err.msg)));
	cfg_fini(&c);
	cfg_fini(&c);
	return 0;
}
