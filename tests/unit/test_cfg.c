/*
 * test_cfg: the configuration file parser (relay/cfg_parse.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "pol.h"
#include "tap.h"

/* cfg_defaults() + cfg_parse() over a C string. */
static int parse(struct cfg *c, const char *text, struct cfg_error *err)
{
	int rc = cfg_defaults(c);

	CHECK_INT(rc, 0);
	return cfg_parse(c, text, strlen(text), err);
}

/* The printable form of a listen or DNS address: "1.2.3.4:25", "[::1]:25". */
static void addr_str(const struct cfg_addr *a, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->sa.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->sa;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u%s", ip, ntohs(sin->sin_port),
			 a->len == sizeof(*sin) ? "" : " (bad len)");
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u%s", ip, ntohs(sin6->sin6_port),
			 a->len == sizeof(*sin6) ? "" : " (bad len)");
	}
}

/* All addresses of a list joined with spaces. */
static void addrs_str(const struct cfg_addr *a, size_t n, char *buf, size_t size)
{
	char one[80];

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		addr_str(&a[i], one, sizeof(one));
		if (i)
			strncat(buf, " ", size - strlen(buf) - 1);
		strncat(buf, one, size - strlen(buf) - 1);
	}
}

static void nets_str(const struct cfg *c, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN], one[80];

	buf[0] = '\0';
	for (size_t i = 0; i < c->nmynetworks; i++) {
		const struct rl_net *n = &c->mynetworks[i];

		inet_ntop(n->family, n->addr, ip, sizeof(ip));
		snprintf(one, sizeof(one), "%s%s/%u", i ? " " : "", ip, n->prefix);
		strncat(buf, one, size - strlen(buf) - 1);
	}
}

static void test_defaults(void)
{
	struct cfg c;
	char buf[256], host[256];
	int rc = cfg_defaults(&c);

	CHECK_INT(rc, 0);
	CHECK(gethostname(host, sizeof(host) - 1) == 0, "gethostname");
	host[sizeof(host) - 1] = '\0';
	CHECK_STR(c.myhostname, host);
	addrs_str(c.listen, c.nlisten, buf, sizeof(buf));
	CHECK_STR(buf, "127.0.0.1:25");
	nets_str(&c, buf, sizeof(buf));
	CHECK_STR(buf, "127.0.0.0/8 ::1/128");
	CHECK_STR(c.queue_dir, "/var/spool/tlsrelay");
	CHECK_STR(c.policy_file, "/etc/tlsrelay/tls_policy");
	CHECK_INT(c.default_tls_level, POL_LEVEL_ENCRYPT);
	CHECK_INT(c.remote_port, 25);
	CHECK_INT(c.dns_system, 1);
	CHECK_INT(c.ndns, 0);
	CHECK_STR(c.dns_trust_anchor_file, "/usr/share/dns/root.key");
	CHECK(c.dns_unbound_config == NULL, "dns_unbound_config set");
	CHECK(c.tls_ca_file == NULL && c.tls_cert_file == NULL && c.tls_key_file == NULL,
	      "tls files set");
	CHECK(c.smtpd_tls_cert_file == NULL && c.smtpd_tls_key_file == NULL, "smtpd files set");
	CHECK(c.smtpd_sasl_password_file == NULL, "smtpd_sasl_password_file set");
	CHECK_INT(c.tls_protocols, CFG_TLS1_2 | CFG_TLS1_3);
	CHECK_STR(c.tls_protocols_text, ">=TLSv1.2");
	CHECK_STR(c.tls_priority,
		  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:"
		  "+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:"
		  "+ECDHE-RSA:+DHE-RSA:-RSA");
	CHECK_INT(c.tls_loglevel, 1);
	CHECK_INT(c.max_message_size, 52428800);
	CHECK_INT(c.retry_min, 300);
	CHECK_INT(c.retry_max, 3600);
	CHECK_INT(c.queue_lifetime, 5 * 86400);
	CHECK_INT(c.delay_warning_time, 4 * 3600);
	CHECK_INT(c.smtpd_timeout, 300);
	CHECK_INT(c.smtpd_max_session_time, 3600);
	CHECK_INT(c.smtpd_max_connections, 1000);
	CHECK_INT(c.smtpd_max_recipients, 1000);
	CHECK_INT(c.queue_max_size, 4294967296LL);
	CHECK_STR(c.path, "(defaults)");
	cfg_fini(&c);
	cfg_fini(&c); /* twice is fine */
}

static const char full_file[] = "# every key of the contract\n"
				"listen = 0.0.0.0:2525, [::1]:2526\n"
				"myhostname = relay.example.com\n"
				"mynetworks = 10.0.0.0/8 192.168.1.7, [2001:db8::]/32\n"
				"queue_dir = /tmp/q\n"
				"policy_file = etc/tls_policy\n"
				"default_tls_level = dane-only\n"
				"remote_port = 2525\n"
				"dns_servers = 127.0.0.1@5399, ::1@5353, 192.0.2.1\n"
				"dns_trust_anchor_file = /tmp/root.key\n"
				"dns_unbound_config = /tmp/unbound.conf\n"
				"tls_ca_file = /tmp/ca.pem\n"
				"tls_cert_file = /tmp/client.pem\n"
				"tls_key_file = /tmp/client.key\n"
				"tls_protocols = >=TLSv1.3\n"
				"tls_priority = NORMAL:%COMPAT\n"
				"smtpd_tls_cert_file = /tmp/server.pem\n"
				"smtpd_tls_key_file = /tmp/server.key\n"
				"smtpd_sasl_password_file = /etc/tlsrelay/sasl_passwd\n"
				"tls_loglevel = 2\n"
				"max_message_size = 1024\n"
				"retry_min = 30s\n"
				"retry_max = 2h\n"
				"queue_lifetime = 1w\n"
				"delay_warning_time = 1d\n"
				"smtpd_timeout = 5m\n"
				"smtpd_max_session_time = 1d\n"
				"smtpd_max_connections = 1000000\n"
				"smtpd_max_recipients = 100000\n"
				"queue_max_size = 1048576\n";

static void test_full(void)
{
	struct cfg c;
	struct cfg_error err;
	char buf[256];
	int rc = parse(&c, full_file, &err);

	CHECK(rc == 0, "rc %d: %u: %s", rc, err.line, err.msg);
	addrs_str(c.listen, c.nlisten, buf, sizeof(buf));
	CHECK_STR(buf, "0.0.0.0:2525 [::1]:2526");
	CHECK_STR(c.myhostname, "relay.example.com");
	nets_str(&c, buf, sizeof(buf));
	CHECK_STR(buf, "10.0.0.0/8 192.168.1.7/32 2001:db8::/32");
	CHECK_STR(c.queue_dir, "/tmp/q");
	CHECK_STR(c.policy_file, "etc/tls_policy");
	CHECK_INT(c.default_tls_level, POL_LEVEL_DANE_ONLY);
	CHECK_INT(c.remote_port, 2525);
	CHECK_INT(c.dns_system, 0);
	addrs_str(c.dns, c.ndns, buf, sizeof(buf));
	CHECK_STR(buf, "127.0.0.1:5399 [::1]:5353 192.0.2.1:53");
	CHECK_STR(c.dns_trust_anchor_file, "/tmp/root.key");
	CHECK_STR(c.dns_unbound_config, "/tmp/unbound.conf");
	CHECK_STR(c.tls_ca_file, "/tmp/ca.pem");
	CHECK_STR(c.tls_cert_file, "/tmp/client.pem");
	CHECK_STR(c.tls_key_file, "/tmp/client.key");
	CHECK_INT(c.tls_protocols, CFG_TLS1_3);
	CHECK_STR(c.tls_protocols_text, ">=TLSv1.3");
	CHECK_STR(c.tls_priority, "NORMAL:%COMPAT");
	CHECK_STR(c.smtpd_tls_cert_file, "/tmp/server.pem");
	CHECK_STR(c.smtpd_tls_key_file, "/tmp/server.key");
	CHECK_STR(c.smtpd_sasl_password_file, "/etc/tlsrelay/sasl_passwd");
	CHECK_INT(c.tls_loglevel, 2);
	CHECK_INT(c.max_message_size, 1024);
	CHECK_INT(c.retry_min, 30);
	CHECK_INT(c.retry_max, 7200);
	CHECK_INT(c.queue_lifetime, 7 * 86400);
	CHECK_INT(c.delay_warning_time, 86400);
	CHECK_INT(c.smtpd_timeout, 300);
	CHECK_INT(c.smtpd_max_session_time, 86400);
	CHECK_INT(c.smtpd_max_connections, 1000000);
	CHECK_INT(c.smtpd_max_recipients, 100000);
	CHECK_INT(c.queue_max_size, 1048576);
	cfg_fini(&c);
}

/* Many long continuation lines make one logical line past its bound. */
static void test_long_logical(void)
{
	size_t size = 20 * 4100 + 64, len;
	char *text = malloc(size);
	struct cfg c;
	struct cfg_error err;
	int rc;

	CHECK(text != NULL, "malloc");
	if (!text)
		return;
	len = (size_t)snprintf(text, size, "tls_priority = NORMAL\n");
	for (int i = 0; i < 20; i++) {
		text[len++] = ' ';
		memset(text + len, 'x', 4000);
		len += 4000;
		text[len++] = '\n';
		if (i != 14)
			continue;
		/* 15 lines: 21 + 15 * 4001 bytes fit in 65536. */
		rc = cfg_defaults(&c);
		CHECK_INT(rc, 0);
		rc = cfg_parse(&c, text, len, &err);
		CHECK(rc == 0, "%u: %s", err.line, err.msg);
		CHECK_INT(strlen(c.tls_priority), strlen("NORMAL") + 15 * 4001);
		cfg_fini(&c);
	}
	rc = cfg_defaults(&c);
	CHECK_INT(rc, 0);
	rc = cfg_parse(&c, text, len, &err);
	CHECK_INT(rc, RL_ECONFIG);
	CHECK_INT(err.line, 18); /* the continuation that does not fit */
	CHECK(strstr(err.msg, "continuation") != NULL, "%s", err.msg);
	cfg_fini(&c);
	free(text);
}

/* The 65th network is one too many. */
static void test_many_networks(void)
{
	char text[2048];
	size_t len = (size_t)snprintf(text, sizeof(text), "mynetworks =");
	struct cfg c;
	struct cfg_error err;
	int rc;

	for (int i = 0; i < CFG_MAX_NETWORKS; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, " 10.0.%d.0/24", i);
	rc = parse(&c, text, &err);
	CHECK(rc == 0, "%s", err.msg);
	CHECK_INT(c.nmynetworks, CFG_MAX_NETWORKS);
	cfg_fini(&c);
	snprintf(text + len, sizeof(text) - len, "\n  10.1.0.0/16\n");
	rc = parse(&c, text, &err);
	CHECK_INT(rc, RL_ECONFIG);
	CHECK(strstr(err.msg, "mynetworks: too many networks (at most 64)") != NULL, "%s", err.msg);
	cfg_fini(&c);
}

/* Syntax: comments, blank lines, continuations, CRLF, trimming, duplicates. */
static void test_syntax(void)
{
	struct cfg c;
	struct cfg_error err;
	char buf[256];
	int rc;

	rc = parse(&c,
		   "# comment\r\n"
		   "   # indented comment\r\n"
		   "\r\n"
		   "  \t \r\n"
		   "mynetworks = 10.0.0.0/8,\r\n"
		   "   192.168.0.0/16\r\n"
		   "# a comment does not end the value, as in Postfix\n"
		   "\t[fd00::]/8\n"
		   "\n"
		   "myhostname=a.example\n"
		   "tls_priority = NORMAL:#not-a-comment\n"
		   "\tqueue_max_size\t=\t2000000  \n"
		   "remote_port = 26\n"
		   "remote_port = 27\n"
		   "policy_file =   /a b/c  ",
		   &err);
	/* The tab-indented "queue_max_size" line continues tls_priority. */
	CHECK(rc == 0, "rc %d: %u: %s", rc, err.line, err.msg);
	nets_str(&c, buf, sizeof(buf));
	CHECK_STR(buf, "10.0.0.0/8 192.168.0.0/16 fd00::/8");
	CHECK_STR(c.myhostname, "a.example");
	CHECK_STR(c.tls_priority, "NORMAL:#not-a-comment queue_max_size\t=\t2000000");
	CHECK_INT(c.queue_max_size, 4294967296LL);
	CHECK_INT(c.remote_port, 27);
	CHECK_STR(c.policy_file, "/a b/c");
	cfg_fini(&c);

	/* Empty text, and mynetworks may be empty. */
	rc = parse(&c, "", &err);
	CHECK_INT(rc, 0);
	cfg_fini(&c);
	rc = parse(&c, "mynetworks =\n", &err);
	CHECK_INT(rc, 0);
	CHECK_INT(c.nmynetworks, 0);
	cfg_fini(&c);

	/* A long line just within the limit. */
	{
		char big[4200];

		memcpy(big, "queue_dir = /", 13);
		memset(big + 13, 'x', 4096 - 13);
		big[4096] = '\n';
		big[4097] = '\0';
		rc = parse(&c, big, &err);
		CHECK(rc == 0, "rc %d: %u: %s", rc, err.line, err.msg);
		CHECK_INT(strlen(c.queue_dir), 4096 - 12);
		cfg_fini(&c);
		big[4096] = 'x';
		big[4097] = '\n';
		big[4098] = '\0';
		rc = parse(&c, big, &err);
		CHECK_INT(rc, RL_ECONFIG);
		CHECK_INT(err.line, 1);
		CHECK(strstr(err.msg, "line too long") != NULL, "%s", err.msg);
		cfg_fini(&c);
	}
}

struct bad_case {
	const char *text;
	unsigned line;
	const char *msg; /* expected substring of err.msg */
};

static const struct bad_case bad_cases[] = {
    /* Syntax. */
    {"listen = 127.0.0.1:25\nfoo = bar\n", 2, "unknown configuration key \"foo\""},
    {"Listen = 127.0.0.1:25\n", 1, "unknown configuration key \"Listen\""},
    {"foo = 1\nbar = 2\n", 1, "unknown configuration key \"foo\""},
    {"listen = [0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]:25\n", 1,
     "listen: bad address"},
    {"\n\nremote_port 25\n", 3, "expected \"key = value\""},
    {"= 25\n", 1, "missing key"},
    {"  remote_port = 25\n", 1, "continuation line"},
    {"remote_port = 25\nqueue_dir = /a\0b\n", 2, "NUL byte"},
    {"remote_port = 25\nqueue_dir = /a\rb\n", 2, "control character 0x0d"},
    {"remote_port = 25\r\r\n", 1, "control character"},
    {"queue_dir = /a\x1b[0m\n", 1, "control character 0x1b"},
    {"remote_port = 25\nqueue_dir =\n", 2, "queue_dir: empty value"},
    /* A bad value on a continued line is blamed on the key's line. */
    {"# x\nlisten = 127.0.0.1:25,\n  1.2.3:x\n", 2,
     "listen: bad address \"1.2.3:x\" (expected IPv4:PORT or [IPv6]:PORT)"},
    /* listen */
    {"listen = 127.0.0.1\n", 1, "listen: bad address \"127.0.0.1\""},
    {"listen = 127.0.0.1:0\n", 1, "listen: bad address"},
    {"listen = 127.0.0.1:65536\n", 1, "listen: bad address"},
    {"listen = 127.0.0.1:\n", 1, "listen: bad address"},
    {"listen = 127.0.0.1:25,\n", 1, "listen: bad address \"\""},
    {"listen = ::1:25\n", 1, "listen: bad address \"::1:25\""},
    {"listen = [::1]25\n", 1, "listen: bad address"},
    {"listen = [::1\n", 1, "listen: bad address"},
    {"listen = [127.0.0.1]:25\n", 1, "listen: bad address"},
    {"listen = localhost:25\n", 1, "listen: bad address"},
    {"listen = 127.0.0.1:+25\n", 1, "listen: bad address"},
    {"listen = 127.0.0.1:25, 127.0.0.1:25\n", 1, "listed twice"},
    {"listen = 127.0.0.1:1,127.0.0.1:2,127.0.0.1:3,127.0.0.1:4,127.0.0.1:5,"
     "127.0.0.1:6,127.0.0.1:7,127.0.0.1:8,127.0.0.1:9,127.0.0.1:10,127.0.0.1:11,"
     "127.0.0.1:12,127.0.0.1:13,127.0.0.1:14,127.0.0.1:15,127.0.0.1:16,127.0.0.1:17\n",
     1, "listen: too many"},
    /* myhostname */
    {"myhostname = -a.example\n", 1, "myhostname: bad host name \"-a.example\""},
    {"myhostname = a-.example\n", 1, "hyphen"},
    {"myhostname = a..example\n", 1, "empty label"},
    {"myhostname = .example\n", 1, "empty label"},
    {"myhostname = a.example.\n", 1, "trailing dot"},
    {"myhostname = a_b.example\n", 1, "only letters"},
    {"myhostname = a b\n", 1, "only letters"},
    {"myhostname = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.com\n", 1,
     "longer than 63"},
    /* mynetworks */
    {"mynetworks = 10.0.0.0/33\n", 1, "mynetworks: bad prefix length in \"10.0.0.0/33\""},
    {"mynetworks = 10.0.0.0/\n", 1, "bad prefix length"},
    {"mynetworks = 10.0.0.0/-1\n", 1, "bad prefix length"},
    {"mynetworks = [::]/129\n", 1, "bad prefix length"},
    {"mynetworks = 10.1.2.3/8\n", 1,
     "mynetworks: \"10.1.2.3/8\" has host bits set beyond the prefix (did you mean 10.0.0.0/8?)"},
    {"mynetworks = [2001:db8::1]/32\n", 1, "did you mean [2001:db8::]/32?"},
    {"mynetworks = 10.0.0/8\n", 1, "mynetworks: bad address"},
    {"mynetworks = hash:/etc/postfix/network_table\n", 1, "mynetworks: bad address"},
    {"mynetworks = [10.0.0.0]/8\n", 1, "mynetworks: bad address"},
    /* Files and strings. */
    {"policy_file =\n", 1, "policy_file: empty value"},
    {"dns_trust_anchor_file = \t \n", 1, "dns_trust_anchor_file: empty value"},
    {"tls_priority =\n", 1, "tls_priority: empty value"},
    /* default_tls_level */
    {"default_tls_level = strict\n", 1,
     "default_tls_level: unknown level \"strict\" (expected one of none, may, encrypt"},
    {"default_tls_level = Encrypt\n", 1, "unknown level"},
    /* remote_port and other ranges */
    {"remote_port = 0\n", 1, "remote_port: expected a number from 1 to 65535, got \"0\""},
    {"remote_port = 65536\n", 1, "remote_port: expected a number"},
    {"remote_port = 25x\n", 1, "remote_port: expected a number"},
    {"remote_port = -1\n", 1, "remote_port: expected a number"},
    {"remote_port = 99999999999999999999999\n", 1, "remote_port: expected a number"},
    {"tls_loglevel = 5\n", 1, "tls_loglevel: expected a number from 0 to 4"},
    {"tls_loglevel = 9\n", 1, "tls_loglevel: expected a number from 0 to 4"},
    {"smtpd_max_connections = 0\n", 1, "smtpd_max_connections: expected a number"},
    {"smtpd_max_connections = 1000001\n", 1, "smtpd_max_connections"},
    {"smtpd_max_recipients = 100001\n", 1, "smtpd_max_recipients"},
    /* dns_servers */
    {"dns_servers = 127.0.0.1@0\n", 1, "dns_servers: bad server \"127.0.0.1@0\""},
    {"dns_servers = [::1]:53\n", 1, "dns_servers: bad server"},
    {"dns_servers = system, 127.0.0.1\n", 1, "dns_servers: bad server \"system\""},
    {"dns_servers = 127.0.0.1@\n", 1, "dns_servers: bad server"},
    {"dns_servers = 127.0.0.1,,::1\n", 1, "dns_servers: bad server \"\""},
    {"dns_servers = 1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,1.1.1.6,1.1.1.7,1.1.1.8,"
     "1.1.1.9\n",
     1, "dns_servers: too many"},
    /* tls_protocols */
    {"tls_protocols = TLSv1.4\n", 1, "tls_protocols: unknown protocol \"TLSv1.4\""},
    {"tls_protocols = >=TLSv1.3 <=TLSv1.2\n", 1, "tls_protocols: no protocol left"},
    {"tls_protocols = !TLSv1 !TLSv1.1 !TLSv1.2 !TLSv1.3\n", 1, "no protocol left"},
    {"tls_protocols = SSLv3\n", 1, "SSLv3 is never enabled"},
    {"tls_protocols = >=SSLv3\n", 1, "SSLv3 is never enabled"},
    {"tls_protocols = >=\n", 1, "unknown protocol \">=\""},
    {"tls_protocols = > =TLSv1.2\n", 1, "unknown protocol \">\""},
    {"tls_protocols = , :\n", 1, "no protocol left"},
    /* Sizes. */
    {"max_message_size = 1023\n", 1, "max_message_size: must be at least 1024 bytes"},
    {"max_message_size = 50M\n", 1, "max_message_size: sizes are in bytes, without a unit"},
    {"max_message_size = 0\n", 1, "must be at least"},
    {"max_message_size = 1 000\n", 1, "bad size"},
    {"max_message_size = 18446744073709551616\n", 1, "too large"},
    {"queue_max_size = 1048575\n", 1, "queue_max_size: must be at least 1048576 bytes"},
    /* Times. */
    {"retry_min = 5\n", 1, "retry_min: times take a unit (s, m, h, d, w)"},
    {"retry_min = 5x\n", 1, "retry_min: bad time \"5x\""},
    {"retry_min = 5M\n", 1, "retry_min: bad time"},
    {"retry_min = 5ms\n", 1, "retry_min: bad time"},
    {"retry_min = 1h30m\n", 1, "retry_min: bad time"},
    {"retry_min = m\n", 1, "retry_min: bad time"},
    {"retry_min = 5 m\n", 1, "retry_min: bad time"},
    {"retry_min = 0s\n", 1, "retry_min: must be greater than 0"},
    {"queue_lifetime = 3551w\n", 1, "queue_lifetime: time \"3551w\" is too large"},
    {"smtpd_timeout = 99999999999999999999999s\n", 1, "too large"},
    {"smtpd_max_session_time = -1s\n", 1, "smtpd_max_session_time: bad time"},
    /* Checks across keys. */
    {"retry_min = 2h\n", 1, "retry_min (7200s) must not be greater than retry_max (3600s)"},
    {"retry_max = 1m\n\nremote_port = 25\n", 1, "retry_min (300s) must not"},
    {"retry_max = 1m\nretry_min = 2m\n", 2, "retry_min (120s)"},
    {"retry_min = 2m\nretry_max = 1m\n", 2, "retry_min (120s)"},
    {"tls_cert_file = /a\n", 1, "tls_cert_file is set but tls_key_file is not"},
    {"x_ = 1\n", 1, "unknown configuration key"},
    {"remote_port = 25\nsmtpd_tls_key_file = /k\n", 2,
     "smtpd_tls_key_file is set but smtpd_tls_cert_file is not"},
};

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *t = &bad_cases[i];
		struct cfg c;
		struct cfg_error err;
		int rc = cfg_defaults(&c);
		/* One case carries a NUL byte: count up to the final LF. */
		size_t len = strlen(t->text);

		if (strstr(t->msg, "NUL"))
			len += strlen(t->text + len + 1) + 1;
		CHECK_INT(rc, 0);
		rc = cfg_parse(&c, t->text, len, &err);
		CHECK(rc == RL_ECONFIG, "case %zu: rc %d", i, rc);
		CHECK(err.line == t->line, "case %zu: line got %u want %u (%s)", i, err.line,
		      t->line, err.msg);
		CHECK(strstr(err.msg, t->msg) != NULL, "case %zu: msg got \"%s\" want \"%s\"", i,
		      err.msg, t->msg);
		cfg_fini(&c);
		cfg_fini(&c);
	}
}

struct time_case {
	const char *value;
	long long seconds;
};

static const struct time_case time_cases[] = {
    {"1s", 1},
    {"90s", 90},
    {"5m", 300},
    {"1h", 3600},
    {"5d", 432000},
    {"2w", 1209600},
    {"007s", 7},
    {"3550w", 3550LL * 604800},
    {"2147483647s", 2147483647LL},
};

static void test_times(void)
{
	char text[128];

	for (size_t i = 0; i < sizeof(time_cases) / sizeof(time_cases[0]); i++) {
		struct cfg c;
		struct cfg_error err;
		int rc;

		snprintf(text, sizeof(text), "queue_lifetime = %s\n", time_cases[i].value);
		rc = parse(&c, text, &err);
		CHECK(rc == 0, "%s: rc %d: %s", time_cases[i].value, rc, err.msg);
		CHECK_INT(c.queue_lifetime, time_cases[i].seconds);
		cfg_fini(&c);
	}
}

struct proto_case {
	const char *value;
	unsigned mask; /* 0: an error */
};

static const struct proto_case proto_cases[] = {
    {">=TLSv1.2", CFG_TLS1_2 | CFG_TLS1_3},
    {">=TLSv1", CFG_TLS1_0 | CFG_TLS1_1 | CFG_TLS1_2 | CFG_TLS1_3},
    {"<=TLSv1.2", CFG_TLS1_0 | CFG_TLS1_1 | CFG_TLS1_2},
    {">=TLSv1.1 <=TLSv1.2", CFG_TLS1_1 | CFG_TLS1_2},
    {">=TLSv1.2,<=TLSv1.2", CFG_TLS1_2},
    {"TLSv1.2 TLSv1.3", CFG_TLS1_2 | CFG_TLS1_3},
    {"TLSv1.3", CFG_TLS1_3},
    {"TLSv1:TLSv1.3", CFG_TLS1_0 | CFG_TLS1_3},
    {"!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", CFG_TLS1_2 | CFG_TLS1_3},
    {"!SSLv2 !SSLv3", CFG_TLS1_0 | CFG_TLS1_1 | CFG_TLS1_2 | CFG_TLS1_3},
    {"!TLSv1.3", CFG_TLS1_0 | CFG_TLS1_1 | CFG_TLS1_2},
    {"TLSv1.2 TLSv1.3 !TLSv1.3", CFG_TLS1_2},
    {">=TLSv1.1 !TLSv1.2", CFG_TLS1_1 | CFG_TLS1_3},
    {"tlsv1.3", CFG_TLS1_3},
    {">=TLSv1.3 TLSv1.2", 0},
    {"TLSv1.2 >=TLSv1.3", 0},
    {"SSLv2", 0},
    {"TLSv1.0", 0},
    {"<=SSLv3", 0},
    {"!", 0},
};

static void test_protocols(void)
{
	char text[128];

	for (size_t i = 0; i < sizeof(proto_cases) / sizeof(proto_cases[0]); i++) {
		const struct proto_case *t = &proto_cases[i];
		struct cfg c;
		struct cfg_error err;
		int rc;

		snprintf(text, sizeof(text), "tls_protocols = %s\n", t->value);
		rc = parse(&c, text, &err);
		if (t->mask) {
			CHECK(rc == 0, "%s: rc %d: %s", t->value, rc, err.msg);
			CHECK(c.tls_protocols == t->mask, "%s: got 0x%x want 0x%x", t->value,
			      c.tls_protocols, t->mask);
			CHECK_STR(c.tls_protocols_text, t->value);
		} else {
			CHECK(rc == RL_ECONFIG && err.line == 1, "%s: rc %d line %u", t->value, rc,
			      err.line);
		}
		cfg_fini(&c);
	}
}

struct list_case {
	const char *text;
	const char *want; /* addrs_str() / nets_str() of the result */
};

static const struct list_case list_cases[] = {
    {"listen = [::]:25", "[::]:25"},
    {"listen = 192.0.2.1:1 ,[2001:db8::1]:65535 , 127.0.0.1:587",
     "192.0.2.1:1 [2001:db8::1]:65535 127.0.0.1:587"},
    {"listen = [::ffff:127.0.0.1]:25", "[::ffff:127.0.0.1]:25"},
    {"dns_servers = ::1@5353", "[::1]:5353"},
    {"dns_servers = 127.0.0.1@5399 ,2001:db8::53", "127.0.0.1:5399 [2001:db8::53]:53"},
    {"mynetworks = 127.0.0.0/8, [::1]/128", "127.0.0.0/8 ::1/128"},
    {"mynetworks = 0.0.0.0/0 ::/0", "0.0.0.0/0 ::/0"},
    {"mynetworks = 2001:db8::/32,,\t192.0.2.0/24 ,", "2001:db8::/32 192.0.2.0/24"},
    {"mynetworks = [::1] ::2 192.0.2.9", "::1/128 ::2/128 192.0.2.9/32"},
    {"mynetworks = 192.0.2.128/25 10.255.255.254/31", "192.0.2.128/25 10.255.255.254/31"},
};

static void test_lists(void)
{
	char buf[512];

	for (size_t i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++) {
		const struct list_case *t = &list_cases[i];
		struct cfg c;
		struct cfg_error err;
		int rc = parse(&c, t->text, &err);

		CHECK(rc == 0, "%s: rc %d: %s", t->text, rc, err.msg);
		if (strncmp(t->text, "listen", 6) == 0)
			addrs_str(c.listen, c.nlisten, buf, sizeof(buf));
		else if (strncmp(t->text, "dns", 3) == 0)
			addrs_str(c.dns, c.ndns, buf, sizeof(buf));
		else
			nets_str(&c, buf, sizeof(buf));
		CHECK(strcmp(buf, t->want) == 0, "%s: got \"%s\" want \"%s\"", t->text, buf,
		      t->want);
		cfg_fini(&c);
	}
}

static void test_hostnames(void)
{
	static const char *const good[] = {
	    "localhost",
	    "a.b",
	    "mx-1.example.com",
	    "0.example",
	    "A.EXAMPLE",
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.com",
	};
	char text[400];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct cfg c;
		struct cfg_error err;
		int rc;

		snprintf(text, sizeof(text), "myhostname = %s", good[i]);
		rc = parse(&c, text, &err);
		CHECK(rc == 0, "%s: %s", good[i], err.msg);
		CHECK_STR(c.myhostname, good[i]);
		cfg_fini(&c);
	}
	/* 4 labels of 63 plus 3 dots = 255 > 253. */
	{
		struct cfg c;
		struct cfg_error err;
		char name[300];
		int rc;

		memset(name, 'a', 255);
		name[63] = name[127] = name[191] = '.';
		name[255] = '\0';
		snprintf(text, sizeof(text), "myhostname = %s", name);
		rc = parse(&c, text, &err);
		CHECK_INT(rc, RL_ECONFIG);
		CHECK(strstr(err.msg, "longer than 253") != NULL, "%s", err.msg);
		cfg_fini(&c);
		name[253] = '\0'; /* 253 characters is fine */
		snprintf(text, sizeof(text), "myhostname = %s", name);
		rc = parse(&c, text, &err);
		CHECK(rc == 0, "%s", err.msg);
		cfg_fini(&c);
	}
}

struct match_case {
	const char *nets;
	const char *addr;
	int want;
};

static const struct match_case match_cases[] = {
    {"127.0.0.0/8", "127.1.2.3", 1},
    {"127.0.0.0/8", "128.0.0.1", 0},
    {"192.0.2.128/25", "192.0.2.128", 1},
    {"192.0.2.128/25", "192.0.2.255", 1},
    {"192.0.2.128/25", "192.0.2.127", 0},
    {"10.0.0.1", "10.0.0.1", 1},
    {"10.0.0.1", "10.0.0.2", 0},
    {"0.0.0.0/0", "203.0.113.9", 1},
    {"0.0.0.0/0", "::1", 0},
    {"[::1]/128", "::1", 1},
    {"[::1]/128", "::2", 0},
    {"2001:db8::/32", "2001:db8:ffff::1", 1},
    {"2001:db8::/33", "2001:db8:8000::1", 0},
    {"2001:db8::/33", "2001:db8:7fff::1", 1},
    {"::/0", "2001:db8::1", 1},
    {"::/0", "192.0.2.1", 0},
    /* IPv4 clients on a dual-stack socket. */
    {"127.0.0.0/8", "::ffff:127.0.0.1", 1},
    {"127.0.0.0/8", "::ffff:10.0.0.1", 0},
    {"127.0.0.0/8", "::127.0.0.1", 0},
    {"[::ffff:10.0.0.0]/104", "::ffff:10.1.1.1", 1},
    {"", "127.0.0.1", 0},
    {"10.0.0.0/8 127.0.0.0/8", "127.0.0.1", 1},
};

static void test_match(void)
{
	char text[256];

	for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
		const struct match_case *t = &match_cases[i];
		struct sockaddr_storage ss;
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		struct cfg c;
		struct cfg_error err;
		int rc;

		memset(&ss, 0, sizeof(ss));
		if (inet_pton(AF_INET, t->addr, &sin->sin_addr) == 1)
			sin->sin_family = AF_INET;
		else if (inet_pton(AF_INET6, t->addr, &sin6->sin6_addr) == 1)
			sin6->sin6_family = AF_INET6;
		snprintf(text, sizeof(text), "mynetworks = %s\n", t->nets);
		rc = parse(&c, text, &err);
		CHECK(rc == 0, "%s: %s", t->nets, err.msg);
		rc = cfg_net_match(&c, (struct sockaddr *)&ss);
		CHECK(rc == t->want, "%s in %s: got %d want %d", t->addr, t->nets, rc, t->want);
		cfg_fini(&c);
	}
	/* Anything but IPv4 and IPv6 never matches. */
	{
		struct cfg c;
		struct sockaddr_storage ss;
		int rc = cfg_defaults(&c);

		CHECK_INT(rc, 0);
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = AF_UNIX;
		CHECK_INT(cfg_net_match(&c, (struct sockaddr *)&ss), 0);
		cfg_fini(&c);
	}
}

/* Values that replace earlier ones are freed (ASan checks the leaks). */
static void test_replace(void)
{
	struct cfg c;
	struct cfg_error err;
	int rc = parse(&c,
		       "queue_dir = /a\nqueue_dir = /b\ntls_protocols = TLSv1.3\n"
		       "tls_protocols = >=TLSv1.2\nmyhostname = a.example\nmyhostname = b.example\n"
		       "dns_servers = 127.0.0.1\ndns_servers = system\n"
		       "listen = 127.0.0.1:1, 127.0.0.1:2\nlisten = [::1]:3\n",
		       &err);

	CHECK(rc == 0, "%s", err.msg);
	CHECK_STR(c.queue_dir, "/b");
	CHECK_STR(c.tls_protocols_text, ">=TLSv1.2");
	CHECK_STR(c.myhostname, "b.example");
	CHECK_INT(c.dns_system, 1);
	CHECK_INT(c.ndns, 0);
	CHECK_INT(c.nlisten, 1);
	cfg_fini(&c);

	/* dns_servers = recursive: no resolv.conf, no forwarder (the contract). */
	rc = parse(&c, "dns_servers = 127.0.0.1\ndns_servers = recursive\n", &err);
	CHECK(rc == 0, "%s", err.msg);
	CHECK_INT(c.dns_system, 0);
	CHECK_INT(c.ndns, 0);
	cfg_fini(&c);
	rc = parse(&c, "dns_servers = recursive, 127.0.0.1\n", &err);
	CHECK_INT(rc, RL_ECONFIG);
	cfg_fini(&c);

	/* A failed parse leaves a struct that cfg_fini() can release. */
	rc = parse(&c, "queue_dir = /a\ntls_ca_file = /ca\nremote_port = x\n", &err);
	CHECK_INT(rc, RL_ECONFIG);
	CHECK_INT(err.line, 3);
	cfg_fini(&c);
	cfg_fini(&c);

	/* A NULL error struct is allowed. */
	rc = parse(&c, "bogus = 1\n", NULL);
	CHECK_INT(rc, RL_ECONFIG);
	cfg_fini(&c);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL, "fopen %s: %s", path, strerror(errno));
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
}

static void test_load(void)
{
	char dir[] = "/tmp/test_cfg.XXXXXX";
	char path[128], want[300];
	struct cfg c;
	struct cfg_error err;
	int rc;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/tlsrelay.conf", dir);

	write_file(path, "# test\nlisten = 127.0.0.1:2525\nremote_port = 2526\n");
	rc = cfg_load(&c, path, &err);
	CHECK(rc == 0, "%s", err.msg);
	CHECK_STR(c.path, path);
	CHECK_INT(c.remote_port, 2526);
	CHECK_INT(c.retry_max, 3600); /* defaults under the file */
	cfg_fini(&c);

	write_file(path, "remote_port = 25\n\nbogus = 1\n");
	rc = cfg_load(&c, path, &err);
	CHECK_INT(rc, RL_ECONFIG);
	CHECK_INT(err.line, 3);
	snprintf(want, sizeof(want), "%s:3: unknown configuration key \"bogus\"", path);
	CHECK_STR(err.msg, want);
	cfg_fini(&c);

	/* An empty file is the defaults. */
	write_file(path, "");
	rc = cfg_load(&c, path, &err);
	CHECK_INT(rc, 0);
	CHECK_INT(c.remote_port, 25);
	cfg_fini(&c);

	/* A file far larger than any configuration is refused unread. */
	{
		FILE *f = fopen(path, "w");

		CHECK(f != NULL, "fopen");
		for (int i = 0; f && i < 20000; i++)
			fputs("# padding padding padding padding padding padding padding\n", f);
		if (f)
			fclose(f);
		rc = cfg_load(&c, path, &err);
		CHECK_INT(rc, RL_ETOOBIG);
		snprintf(want, sizeof(want), "%s: file too large", path);
		CHECK(strncmp(err.msg, want, strlen(want)) == 0, "got \"%s\"", err.msg);
		cfg_fini(&c);
	}

	/* A path too long for the message is cut, visibly. */
	{
		char lpath[400];

		memset(lpath, 'd', sizeof(lpath) - 1);
		lpath[0] = '/';
		lpath[sizeof(lpath) - 1] = '\0';
		rc = cfg_load(&c, lpath, &err);
		CHECK(rc < 0, "rc %d", rc);
		CHECK_INT(strlen(err.msg), sizeof(err.msg) - 1);
		CHECK_STR(err.msg + sizeof(err.msg) - 4, "...");
		cfg_fini(&c);
	}

	unlink(path);
	rc = cfg_load(&c, path, &err);
	CHECK_INT(rc, -ENOENT);
	snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
	CHECK_STR(err.msg, want);
	cfg_fini(&c);

	/* Only a regular file is read, as for the policy file (issue 8). */
	rc = cfg_load(&c, dir, &err);
	CHECK_INT(rc, RL_ECONFIG);
	snprintf(want, sizeof(want), "%s: not a regular file (a directory)", dir);
	CHECK_STR(err.msg, want);
	cfg_fini(&c);
	rmdir(dir);
}

/* Inbound hardening keys: hop limit, connection limits, body spill. */
static void test_smtpd_hardening(void)
{
	static const struct {
		const char *text;
		const char *err; /* NULL: accepted */
	} cases[] = {
		{"hopcount_limit = 0\n", "hopcount_limit: expected a number from 1 to 10000"},
		{"smtpd_client_connection_count_limit = -1\n", "expected a number"},
		{"smtpd_mynetworks_reserve = 10\n", "smtpd_mynetworks_reserve: expected a percentage"},
		{"smtpd_mynetworks_reserve = 91%\n", "from 0% to 90%, got \"91%\""},
		{"smtpd_mynetworks_reserve = %\n", "expected a percentage"},
		{"smtpd_mynetworks_reserve = 0%\n", NULL},
		{"smtpd_spill_threshold = 16383\n", "must be at least 16384 bytes"},
		{"smtpd_spill_threshold = 256K\n", "without a unit"},
	};
	struct cfg c;
	struct cfg_error err;
	int rc = cfg_defaults(&c);

	CHECK_INT(rc, 0);
	CHECK_INT(c.hopcount_limit, 50);
	CHECK_INT(c.smtpd_client_connection_count_limit, 50);
	CHECK_INT(c.smtpd_mynetworks_reserve, 10);
	CHECK_INT(c.smtpd_spill_threshold, 262144);
	cfg_fini(&c);
	rc = parse(&c, "hopcount_limit = 7\nsmtpd_client_connection_count_limit = 0\n"
		       "smtpd_mynetworks_reserve = 25%\nsmtpd_spill_threshold = 65536\n", &err);
	CHECK(rc == 0, "rc %d: %u: %s", rc, err.line, err.msg);
	CHECK_INT(c.hopcount_limit, 7);
	CHECK_INT(c.smtpd_client_connection_count_limit, 0);
	CHECK_INT(c.smtpd_mynetworks_reserve, 25);
	CHECK_INT(c.smtpd_spill_threshold, 65536);
	cfg_fini(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = parse(&c, cases[i].text, &err);
		if (!cases[i].err)
			CHECK(rc == 0, "%s: rc %d: %s", cases[i].text, rc, err.msg);
		else
			CHECK(rc == RL_ECONFIG && strstr(err.msg, cases[i].err),
			      "%s: got rc %d \"%s\" want \"%s\"", cases[i].text, rc,
			      rc ? err.msg : "", cases[i].err);
		cfg_fini(&c);
	}
}

/* mta_sts (RFC 8461): yes by default; yes or no. */
static void test_mta_sts(void)
{
	struct cfg c;
	struct cfg_error err;

	CHECK_INT(cfg_defaults(&c), 0);
	CHECK_INT(c.mta_sts, 1);
	cfg_fini(&c);
	CHECK_INT(parse(&c, "mta_sts = no\n", &err), 0);
	CHECK_INT(c.mta_sts, 0);
	cfg_fini(&c);
	CHECK(parse(&c, "mta_sts = maybe\n", &err) == RL_ECONFIG &&
		  strstr(err.msg, "mta_sts: expected yes or no") != NULL,
	      "mta_sts = maybe refused: %s", err.msg);
	cfg_fini(&c);
}

/* tlsrpt (RFC 8460): off by default; the other keys default from myhostname. */
static void test_tlsrpt(void)
{
	struct cfg c;
	struct cfg_error err;
	char b[256];

	CHECK_INT(parse(&c, "myhostname = relay.example\n", &err), 0);
	CHECK_INT(c.tlsrpt, 0);
	cfg_tlsrpt_org_name(&c, b, sizeof(b));
	CHECK_STR(b, "relay.example");
	cfg_tlsrpt_contact_info(&c, b, sizeof(b));
	CHECK_STR(b, "postmaster@relay.example");
	cfg_tlsrpt_sender(&c, b, sizeof(b));
	CHECK_STR(b, "noreply-tlsrpt@relay.example");
	cfg_fini(&c);
	CHECK_INT(parse(&c,
			"tlsrpt = yes\ntlsrpt_org_name = Example Org\n"
			"tlsrpt_contact_info = tls@example.org\ntlsrpt_sender = rpt@example.org\n",
			&err),
		  0);
	CHECK_INT(c.tlsrpt, 1);
	cfg_tlsrpt_org_name(&c, b, sizeof(b));
	CHECK_STR(b, "Example Org");
	cfg_tlsrpt_contact_info(&c, b, sizeof(b));
	CHECK_STR(b, "tls@example.org");
	cfg_tlsrpt_sender(&c, b, sizeof(b));
	CHECK_STR(b, "rpt@example.org");
	cfg_fini(&c);
	CHECK(parse(&c, "tlsrpt_sender = nobody\n", &err) == RL_ECONFIG &&
		  strstr(err.msg, "tlsrpt_sender: expected an address") != NULL,
	      "tlsrpt_sender without @ refused: %s", err.msg);
	cfg_fini(&c);
	CHECK(parse(&c, "tlsrpt_sender = a b@example.org\n", &err) == RL_ECONFIG,
	      "tlsrpt_sender with a blank refused: %s", err.msg);
	cfg_fini(&c);
	/* An empty domain (read before it was checked, found by fuzz_cfg). */
	CHECK(parse(&c, "tlsrpt_sender = a@\n", &err) == RL_ECONFIG &&
		  strstr(err.msg, "tlsrpt_sender: expected an address") != NULL,
	      "tlsrpt_sender with an empty domain refused: %s", err.msg);
	cfg_fini(&c);
	CHECK(parse(&c, "tlsrpt = sometimes\n", &err) == RL_ECONFIG, "tlsrpt = sometimes refused");
	cfg_fini(&c);
}

/* delay_warning_time: 4h by default; a time, or 0 (with or without a unit) for never. */
static void test_delay_warning_time(void)
{
	static const struct {
		const char *text;
		long long want;  /* seconds after a successful parse */
		const char *err; /* NULL: accepted */
	} cases[] = {
		{"delay_warning_time = 2s\n", 2, NULL},
		{"delay_warning_time = 1s\n", 1, NULL},
		{"delay_warning_time = 30m\n", 1800, NULL},
		{"delay_warning_time = 1d\n", 86400, NULL},
		{"delay_warning_time = 0\n", 0, NULL},
		{"delay_warning_time = 00\n", 0, NULL},
		{"delay_warning_time = 0h\n", 0, NULL},
		{"delay_warning_time = 0s\n", 0, NULL},
		{"delay_warning_time = 0\ndelay_warning_time = 1h\n", 3600, NULL},
		{"delay_warning_time = 4\n", 0, "delay_warning_time: times take a unit"},
		{"delay_warning_time = 0x\n", 0, "delay_warning_time: bad time \"0x\""},
		{"delay_warning_time = h\n", 0, "delay_warning_time: bad time"},
		{"delay_warning_time = -1h\n", 0, "delay_warning_time: bad time"},
		{"delay_warning_time = off\n", 0, "delay_warning_time: bad time"},
		{"delay_warning_time = 3551w\n", 0, "delay_warning_time: time \"3551w\" is too large"},
		{"delay_warning_time =\n", 0, "delay_warning_time: empty value"},
	};
	struct cfg c;
	struct cfg_error err;
	int rc = parse(&c, "", &err);

	CHECK_INT(rc, 0);
	CHECK_INT(c.delay_warning_time, 4 * 3600);
	cfg_fini(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = parse(&c, cases[i].text, &err);
		if (!cases[i].err) {
			CHECK(rc == 0, "%s: rc %d: %s", cases[i].text, rc, err.msg);
			CHECK(c.delay_warning_time == cases[i].want, "%s: got %lld want %lld",
			      cases[i].text, (long long)c.delay_warning_time, cases[i].want);
		} else {
			CHECK(rc == RL_ECONFIG && strstr(err.msg, cases[i].err) && err.line >= 1,
			      "%s: got rc %d \"%s\" want \"%s\"", cases[i].text, rc,
			      rc ? err.msg : "", cases[i].err);
		}
		cfg_fini(&c);
	}
}

/* metrics_listen: none by default; one listen-style address; empty: none again. */
static void test_metrics_listen(void)
{
	static const struct {
		const char *text;
		const char *want; /* the address after a successful parse; "" none */
		const char *err;  /* NULL: accepted */
	} cases[] = {
		{"metrics_listen = 127.0.0.1:9100\n", "127.0.0.1:9100", NULL},
		{"metrics_listen = [::1]:9100\n", "[::1]:9100", NULL},
		{"metrics_listen = 127.0.0.1:9100\nmetrics_listen =\n", "", NULL},
		{"metrics_listen = 127.0.0.1:1\nmetrics_listen = 127.0.0.2:2\n", "127.0.0.2:2", NULL},
		{"metrics_listen = 127.0.0.1\n", NULL, "metrics_listen: bad address \"127.0.0.1\""},
		{"metrics_listen = 127.0.0.1:0\n", NULL, "metrics_listen: bad address"},
		{"metrics_listen = localhost:9100\n", NULL, "metrics_listen: bad address"},
		{"metrics_listen = ::1:9100\n", NULL, "metrics_listen: bad address"},
		{"metrics_listen = 127.0.0.1:1, 127.0.0.1:2\n", NULL, "metrics_listen: bad address"},
	};
	struct cfg c;
	struct cfg_error err;
	char buf[128];

	CHECK_INT(cfg_defaults(&c), 0);
	CHECK_INT((int)c.metrics_listen.len, 0);
	cfg_fini(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse(&c, cases[i].text, &err);

		if (!cases[i].err) {
			CHECK(rc == 0, "%s: rc %d: %s", cases[i].text, rc, err.msg);
			buf[0] = '\0';
			if (rc == 0 && c.metrics_listen.len)
				addr_str(&c.metrics_listen, buf, sizeof(buf));
			CHECK(strcmp(buf, cases[i].want) == 0, "%s: got \"%s\" want \"%s\"",
			      cases[i].text, buf, cases[i].want);
		} else {
			CHECK(rc == RL_ECONFIG && strstr(err.msg, cases[i].err) && err.line >= 1,
			      "%s: got rc %d \"%s\" want \"%s\"", cases[i].text, rc,
			      rc ? err.msg : "", cases[i].err);
		}
		cfg_fini(&c);
	}
}

/* requiretls (RFC 8689): yes by default; yes or no, nothing else. */
static void test_requiretls(void)
{
	static const struct {
		const char *text;
		int want;        /* the value after a successful parse */
		const char *err; /* NULL: accepted */
	} cases[] = {
		{"requiretls = yes\n", 1, NULL},
		{"requiretls = no\n", 0, NULL},
		{"requiretls=no\n", 0, NULL},
		{"requiretls = no\nrequiretls = yes\n", 1, NULL},
		{"requiretls = YES\n", 0, "requiretls: expected yes or no, got \"YES\""},
		{"requiretls = 1\n", 0, "requiretls: expected yes or no, got \"1\""},
		{"requiretls = true\n", 0, "expected yes or no"},
		{"requiretls = no no\n", 0, "expected yes or no"},
		{"requiretls =\n", 0, "requiretls: empty value"},
	};
	struct cfg c;
	struct cfg_error err;
	int rc = cfg_defaults(&c);

	CHECK_INT(rc, 0);
	CHECK_INT(c.requiretls, 1);
	cfg_fini(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = parse(&c, cases[i].text, &err);
		if (!cases[i].err) {
			CHECK(rc == 0, "%s: rc %d: %s", cases[i].text, rc, err.msg);
			CHECK(c.requiretls == cases[i].want, "%s: got %d want %d", cases[i].text,
			      c.requiretls, cases[i].want);
		} else {
			CHECK(rc == RL_ECONFIG && strstr(err.msg, cases[i].err) && err.line >= 1,
			      "%s: got rc %d \"%s\" want \"%s\"", cases[i].text, rc,
			      rc ? err.msg : "", cases[i].err);
		}
		cfg_fini(&c);
	}
}

/*
 * user: the parser checks the name's form and notes its line; cfg_load()
 * looks it up (an unknown name, or one with ID 0, is FILE:LINE: message).
 */
static void test_user(void)
{
	static const struct {
		const char *text;
		const char *want; /* the name after a successful parse; NULL none */
		unsigned line;
		const char *err; /* NULL: accepted */
	} cases[] = {
		{"user = nobody\n", "nobody", 1, NULL},
		{"# x\nuser = tls-relay_1.a\n", "tls-relay_1.a", 2, NULL},
		{"user = nobody\nuser =\n", NULL, 0, NULL},
		{"user = a\nuser = b\n", "b", 2, NULL},
		{"user = -x\n", NULL, 0, "user: bad user name \"-x\""},
		{"user = a b\n", NULL, 0, "user: bad user name \"a b\""},
		{"user = ../x/y\n", NULL, 0, "user: bad user name"},
		{"user = caf\xc3\xa9\n", NULL, 0, "user: bad user name"},
		{"user = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", NULL, 0, "user: bad user name"},
	};
	struct passwd *pw = getpwnam("nobody");
	char dir[] = "/tmp/test_cfg_user.XXXXXX";
	char path[128], want[300];
	struct cfg c;
	struct cfg_error err;
	int rc;

	CHECK_INT(cfg_defaults(&c), 0);
	CHECK(c.user == NULL, "default user \"%s\"", c.user ? c.user : "");
	cfg_fini(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = parse(&c, cases[i].text, &err);
		if (!cases[i].err) {
			CHECK(rc == 0, "%s: rc %d: %s", cases[i].text, rc, err.msg);
			CHECK((c.user == NULL) == (cases[i].want == NULL) &&
				  (!c.user || strcmp(c.user, cases[i].want) == 0),
			      "%s: got \"%s\"", cases[i].text, c.user ? c.user : "(none)");
			CHECK_INT(c.user_line, cases[i].line);
		} else {
			CHECK(rc == RL_ECONFIG && strstr(err.msg, cases[i].err) && err.line >= 1,
			      "%s: got rc %d \"%s\" want \"%s\"", cases[i].text, rc,
			      rc ? err.msg : "", cases[i].err);
		}
		cfg_fini(&c);
	}

	/* The lookup, at load. */
	CHECK(pw != NULL, "no user nobody on this system");
	CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/tlsrelay.conf", dir);
	if (pw) {
		uid_t uid = pw->pw_uid;
		gid_t gid = pw->pw_gid;

		write_file(path, "remote_port = 25\nuser = nobody\n");
		rc = cfg_load(&c, path, &err);
		CHECK(rc == 0, "%s", err.msg);
		CHECK(c.user_uid == uid && c.user_gid == gid, "uid %lu gid %lu",
		      (unsigned long)c.user_uid, (unsigned long)c.user_gid);
		cfg_fini(&c);
	}
	write_file(path, "remote_port = 25\nuser = no-such-user-tlsrelay\nretry_min = 1m\n");
	rc = cfg_load(&c, path, &err);
	CHECK_INT(rc, RL_ECONFIG);
	snprintf(want, sizeof(want), "%s:2: user: no such user \"no-such-user-tlsrelay\"", path);
	CHECK_STR(err.msg, want);
	cfg_fini(&c);
	write_file(path, "user = root\n");
	rc = cfg_load(&c, path, &err);
	CHECK_INT(rc, RL_ECONFIG);
	snprintf(want, sizeof(want),
		 "%s:1: user: \"root\" has user or group ID 0; name an unprivileged user", path);
	CHECK_STR(err.msg, want);
	cfg_fini(&c);
	unlink(path);
	rmdir(dir);
}

/* Client certificates on the listener (issue 12): defaults and values. */
static void test_client_certs(void)
{
	static const struct {
		const char *text;
		int ask;	   /* smtpd_tls_ask_ccert after a successful parse */
		const char *certs; /* relay_clientcerts; NULL: unset */
		const char *ca;	   /* relay_client_ca_file; NULL: unset */
		const char *err;   /* NULL: accepted */
	} cases[] = {
		{"smtpd_tls_ask_ccert = yes\n", 1, NULL, NULL, NULL},
		{"smtpd_tls_ask_ccert = no\n", 0, NULL, NULL, NULL},
		{"relay_clientcerts = /etc/tlsrelay/clientcerts\n", 0, "/etc/tlsrelay/clientcerts",
		 NULL, NULL},
		{"relay_client_ca_file = /etc/tlsrelay/client-ca.pem\n", 0, NULL,
		 "/etc/tlsrelay/client-ca.pem", NULL},
		{"smtpd_tls_ask_ccert = yes\nrelay_clientcerts = a\nrelay_client_ca_file = b\n", 1,
		 "a", "b", NULL},
		{"smtpd_tls_ask_ccert = maybe\n", 0, NULL, NULL,
		 "smtpd_tls_ask_ccert: expected yes or no, got \"maybe\""},
		{"smtpd_tls_ask_ccert =\n", 0, NULL, NULL, "smtpd_tls_ask_ccert: empty value"},
		{"relay_clientcerts =\n", 0, NULL, NULL, "relay_clientcerts: empty value"},
		{"relay_client_ca_file =\n", 0, NULL, NULL, "relay_client_ca_file: empty value"},
		{"relay_clientcert = x\n", 0, NULL, NULL, "unknown configuration key \"relay_clientcert\""},
	};
	struct cfg c;
	struct cfg_error err;
	int rc = cfg_defaults(&c);

	CHECK_INT(rc, 0);
	CHECK_INT(c.smtpd_tls_ask_ccert, 0);
	CHECK(c.relay_clientcerts == NULL && c.relay_client_ca_file == NULL, "defaults set");
	cfg_fini(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = parse(&c, cases[i].text, &err);
		if (!cases[i].err) {
			CHECK(rc == 0, "%s: rc %d: %s", cases[i].text, rc, err.msg);
			CHECK_INT(c.smtpd_tls_ask_ccert, cases[i].ask);
			CHECK((c.relay_clientcerts == NULL) == (cases[i].certs == NULL) &&
				  (!c.relay_clientcerts || !strcmp(c.relay_clientcerts, cases[i].certs)),
			      "%s: relay_clientcerts", cases[i].text);
			CHECK((c.relay_client_ca_file == NULL) == (cases[i].ca == NULL) &&
				  (!c.relay_client_ca_file ||
				   !strcmp(c.relay_client_ca_file, cases[i].ca)),
			      "%s: relay_client_ca_file", cases[i].text);
		} else {
			CHECK(rc == RL_ECONFIG && strstr(err.msg, cases[i].err) && err.line >= 1,
			      "%s: got rc %d \"%s\" want \"%s\"", cases[i].text, rc,
			      rc ? err.msg : "", cases[i].err);
		}
		cfg_fini(&c);
	}
}

int main(void)
{
	test_defaults();
	test_metrics_listen();
	test_full();
	test_syntax();
	test_long_logical();
	test_many_networks();
	test_bad();
	test_times();
	test_protocols();
	test_lists();
	test_hostnames();
	test_match();
	test_replace();
	test_load();
	test_smtpd_hardening();
	test_requiretls();
	test_mta_sts();
	test_tlsrpt();
	test_delay_warning_time();
	test_user();
	test_client_certs();
	return TEST_DONE();
}
