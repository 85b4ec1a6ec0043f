/*
 * cli_probe: `tlsrelay certs probe [--domain D] HOST[:PORT]`, a diagnostic
 * in the manner of Postfix's posttls-finger.  It connects to one SMTP
 * server, reads the banner, sends EHLO and STARTTLS, does the handshake
 * the relay would do under the domain's TLS policy, prints the server's
 * chain (with the leaf's match= digests, exactly as `certs fingerprint`
 * prints them) and what the policy's check makes of it, and ends with
 * QUIT.  The last line is "Verification: ...".  The check is the relay's
 * own (pol_peer_resolve and pol_peer_check in policy/), so the probe
 * reports the reason the relay would defer with, never a verdict of its
 * own.
 *
 * The policy is the entry for the next-hop domain D (--domain), else the
 * entry pol_table_lookup() finds for HOST itself, else default_tls_level.
 * D (or HOST) is the "nexthop" of match= and servername=, HOST the
 * "hostname".  PORT defaults to remote_port.
 *
 * DANE as the relay applies it: with --domain D, HOST a name and an entry
 * of D that lets DANE apply, the relay's resolver looks up HOST's
 * addresses (the probe connects to those), its TLSA records at
 * _PORT._tcp.HOST when the addresses were DNSSEC-secure, and D's MX RRset
 * (a match is Verified only when it was secure and lists HOST), and
 * pol_peer_dane() raises the level before the handshake (cli_dane.c).
 * An IP address as HOST has no TLSA records to look up.
 *
 * MTA-STS as the relay applies it: with --domain D, mta_sts = yes, no
 * entry of D and no usable DANE records, D's policy (the cached one while
 * it is current, else fetched; never stored) goes through pol_peer_sts()
 * before the handshake (cli_sts.c): enforce checks the chain and HOST's
 * name and names the policy in the verdict ("Verified (mta-sts: ...)").
 *
 * A one-shot tool, so blocking sockets with timeouts and GnuTLS over the
 * socket, not conn_ and the event loop.  Server replies are assembled by
 * the pure smtp_reply_parse() (which turns non-printables into '?') from a
 * bounded buffer, and every line shown is cut to PROBE_SHOW bytes.
 *
 * Exit: 0 once the handshake completed, whatever the verdict (it is a
 * diagnostic); 1 when the server could not be reached, refused, did not
 * offer STARTTLS or the handshake failed (one line on stderr); 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "cert.h"
#include "cli.h"
#include "cli_dane.h"
#include "cli_sts.h"
#include "fpr.h"
#include "netaddr.h"
#include "pol.h"
#include "pol_peer.h"
#include "smtp.h"
#include "tlscred.h"

#define PROBE_TIMEOUT_MS 30000 /* to connect, for each reply and for the handshake */
/* The longest reply smtp_reply_parse() accepts (RFC 5321 4.5.3.1.5 lines). */
#define PROBE_IN_MAX	(SMTP_REPLY_LINES_MAX * SMTP_REPLY_LINE_MAX)
#define PROBE_SHOW	200		    /* bytes of one line of server text that we print */
#define PROBE_HOST_SIZE (CERT_NAME_MAX + 2) /* a name with its trailing dot */
#define PROBE_TEXT_SIZE 1024

struct probe {
	const struct cfg *c;
	const struct pol_table *table;
	char host[PROBE_HOST_SIZE]; /* HOST without brackets */
	const char *domain;	    /* the next-hop domain: --domain, else host */
	int domain_given;	    /* --domain */
	unsigned port;
	const struct pol_entry *e; /* NULL: no entry, default_tls_level */
	int level;
	struct pol_peer_sess sess; /* what the relay would check, from pol_peer_resolve() */
	int resolve_rc;		   /* < 0: no usable match name (resolve_why says) */
	char resolve_why[PROBE_TEXT_SIZE];
	int dane_looked;		  /* the relay's lookups ran: connect to their addresses */
	struct cli_dane_peer dane;	  /* their outcome; sess's TLSA records point here */
	struct cli_sts *sts;		  /* D's MTA-STS policy; sess points into it */
	char src[600];			  /* where the level came from */
	char relay[PROBE_HOST_SIZE + 80]; /* "host[ip]:port" */
	int fd;
	struct rl_buf in; /* server bytes not yet assembled into a reply */
	struct smtp_reply r;
	/* The relay's own outbound credentials: trust store, client certificate. */
	struct tlscred_out out;
	gnutls_priority_t prio;
	gnutls_session_t tls;
};

static int probe_usage(void)
{
	fputs("usage: tlsrelay certs probe [--domain D] HOST[:PORT]\n"
	      "  HOST: a host name or an IP address ([IPv6]:PORT with a port); PORT: remote_port\n"
	      "  --domain D: check under the policy of next-hop domain D (its entry, and D as\n"
	      "              nexthop; DANE: HOST's TLSA records, D's MX RRset; MTA-STS:\n"
	      "              D's policy); default: the policy entry for HOST itself\n",
	      stderr);
	return CLI_EX_USAGE;
}

/* Decimal 1..65535, nothing else. */
static int port_parse(const char *s, unsigned *port)
{
	unsigned long v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

/* HOST, HOST:PORT, [HOST]:PORT, [HOST] or a bare IPv6 address. */
static int target_parse(const char *arg, struct probe *p)
{
	const char *start = arg, *end, *port = NULL, *first = strchr(arg, ':');

	if (arg[0] == '[') {
		start = arg + 1;
		end = strchr(start, ']');
		if (!end || (end[1] != '\0' && end[1] != ':'))
			return -1;
		if (end[1] == ':')
			port = end + 2;
	} else if (first && first == strrchr(arg, ':')) {
		end = first;
		port = first + 1;
	} else {
		end = arg + strlen(arg); /* a name, IPv4, or IPv6 without a port */
	}
	if (end == start || (size_t)(end - start) >= sizeof(p->host))
		return -1;
	if (port && port_parse(port, &p->port) < 0)
		return -1;
	memcpy(p->host, start, (size_t)(end - start));
	p->host[end - start] = '\0';
	return 0;
}

static int args_parse(int argc, char **argv, struct probe *p, const char **target)
{
	*target = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc && argv[i + 1][0] &&
		    strlen(argv[i + 1]) < PROBE_HOST_SIZE && !p->domain)
			p->domain = argv[++i];
		else if (argv[i][0] != '-' && !*target)
			*target = argv[i];
		else
			return -1;
	}
	return *target ? 0 : -1;
}

/* ---- the policy ------------------------------------------------------ */

/*
 * The entry and level, and the session policy the relay would resolve
 * from them (without anchors: they are loaded for the verdict).  A match
 * name that cannot be used is reported with the verdict, as the relay
 * defers such mail.
 */
static void probe_policy(struct probe *p)
{
	p->e = pol_table_lookup(p->table, p->domain);
	p->level = p->e ? p->e->level : p->c->default_tls_level;
	if (p->e)
		snprintf(p->src, sizeof(p->src), "entry %s, policy file %s:%u", p->e->domain,
			 p->c->policy_file, p->e->line);
	else
		snprintf(p->src, sizeof(p->src), "default_tls_level, config %s", p->c->path);
	printf("policy: %s for %s (%s)\n", pol_level_name(p->level), p->domain, p->src);
	p->resolve_rc = pol_peer_resolve(p->e, p->c->default_tls_level, p->domain, p->host, NULL,
					 NULL, &p->sess, p->resolve_why, sizeof(p->resolve_why));
}

static int is_ip(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

/*
 * DANE, where it can apply to the domain (cli_dane.h): the lookups, then
 * pol_peer_dane() on the session, so that the check after the handshake
 * is the relay's.  A failure the relay defers with (a failed TLSA lookup,
 * dane-only without records) becomes the verdict; the probe still shows
 * the server.  Returns -1 when HOST has no address for the relay.
 */
static int probe_dane(struct probe *p)
{
	char reason[PROBE_TEXT_SIZE];
	int rc;

	if (!pol_peer_dane_applies(p->e))
		return 0;
	if (is_ip(p->host)) {
		printf("TLSA: not looked up (%s is an IP address)\n", p->host);
		return 0;
	}
	if (!p->domain_given) {
		printf("TLSA: not looked up (no --domain: no MX RRset to find %s in)\n", p->host);
		return 0;
	}
	rc = cli_dane_peer(p->c, p->e, p->domain, p->host, p->port,
			   p->resolve_rc == 0 ? &p->sess : NULL, &p->dane, reason, sizeof(reason));
	if (rc < 0 && rc != RL_EPOLICY)
		return -1;
	p->dane_looked = 1;
	if (rc == RL_EPOLICY) {
		p->resolve_rc = rc;
		rl_strlcpy(p->resolve_why, reason, sizeof(p->resolve_why));
	}
	p->level = p->sess.pol.level;
	return 0;
}

/*
 * MTA-STS, where it can apply (cli_sts.h): after DANE, as sess_policy()
 * does, so the check after the handshake is the relay's.  The relay's
 * deferral (enforce, HOST not in the policy) becomes the verdict.
 * Returns -1 when D is not a domain name.
 */
static int probe_sts(struct probe *p)
{
	char reason[PROBE_TEXT_SIZE];
	int rc;

	if (!p->domain_given || p->e || p->resolve_rc < 0 || p->sess.pol.ntlsa > 0)
		return 0; /* no next hop, the entry wins, a deferral already, or DANE wins */
	if (!p->c->mta_sts) {
		printf("MTA-STS: not used (mta_sts = no)\n");
		return 0;
	}
	rc = cli_sts_peer(p->c, p->domain, p->host, &p->sess, &p->sts, reason, sizeof(reason));
	if (rc < 0 && rc != RL_EPOLICY)
		return -1;
	if (rc == RL_EPOLICY) {
		p->resolve_rc = rc;
		rl_strlcpy(p->resolve_why, reason, sizeof(p->resolve_why));
	}
	p->level = p->sess.pol.level;
	return 0;
}

/* SNI only with servername=; a host name, never an address (RFC 6066 3). */
static const char *probe_servername(const struct probe *p)
{
	const char *name = p->sess.pol.servername;

	return name && !is_ip(name) ? name : NULL;
}

/* ---- connecting -------------------------------------------------------- */

static int fd_set_blocking(int fd, int blocking)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

/* Connect within PROBE_TIMEOUT_MS; the socket is blocking afterwards, with
 * the same timeout on every read and write. */
static int connect_one(const struct addrinfo *ai, int *out)
{
	struct timeval tv = {PROBE_TIMEOUT_MS / 1000, 0};
	struct pollfd pfd;
	socklen_t elen = sizeof(int);
	int fd, rc, err = 0;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	rc = fd_set_blocking(fd, 0);
	if (rc == 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)
		rc = -errno;
	pfd = (struct pollfd){fd, POLLOUT, 0};
	while (rc == 0 && (rc = poll(&pfd, 1, PROBE_TIMEOUT_MS)) < 0 && errno == EINTR)
		rc = 0;
	if (rc < 0)
		rc = -errno;
	else if (rc == 0)
		rc = RL_ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		rc = -errno;
	else
		rc = err ? -err : 0;
	if (rc == 0)
		rc = fd_set_blocking(fd, 1);
	if (rc == 0 && (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0))
		rc = -errno;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

/* Connect to one address of HOST; p->relay names it. */
static int probe_try(struct probe *p, const struct addrinfo *ai)
{
	char ip[NETADDR_TEXT_SIZE];

	(void)!netaddr_text(ai->ai_addr, ip, sizeof(ip), NULL);
	snprintf(p->relay, sizeof(p->relay), "%s[%s]:%u", p->host, ip, p->port);
	return connect_one(ai, &p->fd);
}

/* The addresses the relay's resolver gave (probe_dane), in its order. */
static int probe_connect_dns(struct probe *p)
{
	const struct dns_addr_result *a = &p->dane.addrs;
	int rc = -EHOSTUNREACH;

	for (size_t i = 0; i < a->naddr; i++) {
		struct sockaddr_storage ss = a->addr[i].sa;
		struct addrinfo ai = {0};

		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)p->port);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)p->port);
		ai.ai_family = ss.ss_family;
		ai.ai_socktype = SOCK_STREAM;
		ai.ai_addr = (struct sockaddr *)&ss;
		ai.ai_addrlen = a->addr[i].len;
		rc = probe_try(p, &ai);
		if (rc == 0)
			break;
		if (i + 1 < a->naddr)
			printf("connect to %s: %s\n", p->relay, rl_strerror(rc));
	}
	return rc;
}

/* HOST's addresses from the system's resolver; 1 when it has none. */
static int probe_connect_gai(struct probe *p)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", p->port);
	rc = getaddrinfo(p->host, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "tlsrelay: cannot resolve %s: %s\n", p->host, gai_strerror(rc));
		return 1;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		rc = probe_try(p, ai);
		if (rc == 0)
			break;
		if (ai->ai_next)
			printf("connect to %s: %s\n", p->relay, rl_strerror(rc));
	}
	freeaddrinfo(res);
	return rc;
}

/*
 * Try each address of HOST in turn, as a client of an MX host would: the
 * relay's resolver's when it was asked (DANE), else the system's.
 */
static int probe_connect(struct probe *p)
{
	int rc = p->dane_looked ? probe_connect_dns(p) : probe_connect_gai(p);

	if (rc == 1)
		return -1;
	if (rc < 0) {
		fprintf(stderr, "tlsrelay: connect to %s: %s\n", p->relay, rl_strerror(rc));
		return -1;
	}
	printf("connected to %s\n", p->relay);
	return 0;
}

/* ---- SMTP over the socket, or through TLS once it is up ---------------- */

static int probe_write(struct probe *p, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if (p->tls)
			n = gnutls_record_send(p->tls, buf, len);
		else
			n = send(p->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && (p->tls ? n == GNUTLS_E_INTERRUPTED : errno == EINTR))
			continue;
		if (n < 0 &&
		    (p->tls ? n == GNUTLS_E_AGAIN : errno == EAGAIN || errno == EWOULDBLOCK))
			return RL_ETIMEDOUT;
		if (n <= 0)
			return p->tls ? RL_ETLS : -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read more server bytes into p->in. */
static int probe_fill(struct probe *p)
{
	size_t avail = 0;
	char *space = rl_buf_space(&p->in, 4096, &avail);
	ssize_t n;

	if (!space)
		return RL_ETOOBIG;
	for (;;) {
		n = p->tls ? gnutls_record_recv(p->tls, space, avail)
			   : recv(p->fd, space, avail, 0);
		if (n < 0 && (p->tls ? n == GNUTLS_E_INTERRUPTED : errno == EINTR))
			continue;
		break;
	}
	if (n < 0 && (p->tls ? n == GNUTLS_E_AGAIN : errno == EAGAIN || errno == EWOULDBLOCK))
		return RL_ETIMEDOUT;
	if (n < 0)
		return p->tls ? RL_ETLS : -errno;
	if (n == 0)
		return RL_EPROTO; /* the server closed the connection */
	rl_buf_commit(&p->in, (size_t)n);
	return 0;
}

/* Print a reply as the server sent it, one "< " line per line (the parser
 * keeps the enhanced code apart: put it back on each line). */
static void reply_show(const struct smtp_reply *r)
{
	const char *s = r->text, *nl;
	size_t len;

	for (unsigned i = 0; i < r->nlines; i++) {
		nl = memchr(s, '\n', r->textlen - (size_t)(s - r->text));
		if (!nl)
			nl = r->text + r->textlen;
		len = (size_t)(nl - s) < PROBE_SHOW ? (size_t)(nl - s) : PROBE_SHOW;
		printf("< %d%c%s%s%.*s\n", r->code, i + 1 < r->nlines ? '-' : ' ', r->enh,
		       r->enh[0] ? " " : "", (int)len, s);
		if (nl == r->text + r->textlen)
			break;
		s = nl + 1;
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read one complete reply into p->r; quiet = do not print it. */
static int probe_reply(struct probe *p, int quiet)
{
	/* The socket timeout bounds each read; this bounds a server that drips. */
	int64_t deadline = now_ms() + PROBE_TIMEOUT_MS;
	size_t used = 0;
	int rc;

	for (;;) {
		rc = p->in.len ? smtp_reply_parse(p->in.data, p->in.len, &p->r, &used) : 0;
		if (rc != 0)
			break;
		if (now_ms() > deadline)
			return RL_ETIMEDOUT;
		rc = probe_fill(p);
		if (rc < 0)
			return rc;
	}
	if (rc < 0)
		return rc;
	rl_buf_consume(&p->in, used);
	if (!quiet)
		reply_show(&p->r);
	return 0;
}

/* Send a command and read its reply; the reply is in p->r. */
static int probe_cmd(struct probe *p, const char *cmd, int quiet)
{
	char line[SMTP_CMD_LINE_MAX];
	int rc;

	snprintf(line, sizeof(line), "%s\r\n", cmd);
	if (!quiet)
		printf("> %s\n", cmd);
	rc = probe_write(p, line, strlen(line));
	return rc < 0 ? rc : probe_reply(p, quiet);
}

static int probe_fail_io(struct probe *p, const char *step, int rc)
{
	const char *why = rl_strerror(rc);

	if (rc == RL_EPROTO)
		why = "connection closed by the server";
	else if (rc == RL_EPARSE)
		why = "malformed reply";
	fprintf(stderr, "tlsrelay: %s: %s: %s\n", p->relay, step, why);
	return -1;
}

/* The server refused: say so (first reply line) and leave politely. */
static int probe_refused(struct probe *p, const char *step)
{
	char line[SMTP_REPLY_TEXT_MAX + 32];

	smtp_reply_oneline(&p->r, line, sizeof(line));
	fprintf(stderr, "tlsrelay: %s: %s refused: %.*s\n", p->relay, step, PROBE_SHOW, line);
	probe_cmd(p, "QUIT", 1); /* best effort: the outcome is known */
	return -1;
}

/* Banner, EHLO, STARTTLS: 0 when the server is ready for the handshake. */
static int probe_smtp_start(struct probe *p)
{
	char ehlo[SMTP_DOMAIN_MAX + 8];
	struct smtp_ehlo ext;
	int rc;

	if ((rc = probe_reply(p, 0)) < 0)
		return probe_fail_io(p, "banner", rc);
	if (p->r.code != 220)
		return probe_refused(p, "session");
	snprintf(ehlo, sizeof(ehlo), "EHLO %s", p->c->myhostname);
	if ((rc = probe_cmd(p, ehlo, 0)) < 0)
		return probe_fail_io(p, "EHLO", rc);
	if (p->r.code != 250)
		return probe_refused(p, "EHLO");
	smtp_ehlo_parse(&p->r, &ext);
	if (!(ext.ext & SMTP_EXT_STARTTLS)) {
		fprintf(stderr, "tlsrelay: %s: STARTTLS is not offered in the EHLO reply\n",
			p->relay);
		probe_cmd(p, "QUIT", 1); /* best effort: the outcome is known */
		return -1;
	}
	if ((rc = probe_cmd(p, "STARTTLS", 0)) < 0)
		return probe_fail_io(p, "STARTTLS", rc);
	if (p->r.code != 220)
		return probe_refused(p, "STARTTLS");
	if (p->in.len > 0) {
		/* Bytes after the 220 came before TLS: command injection. */
		fprintf(stderr,
			"tlsrelay: %s: the server sent data after its STARTTLS reply "
			"(possible injection)\n",
			p->relay);
		return -1;
	}
	return 0;
}

/* ---- TLS ------------------------------------------------------------------ */

/* Priority of the relay: tls_priority, the protocols, the entry's suffix. */
static int probe_tls_setup(struct probe *p)
{
	unsigned bits = p->e && p->e->protocols ? p->e->protocols : p->c->tls_protocols;
	const char *sni = probe_servername(p), *errpos = NULL;
	struct rl_buf b;
	int rc;

	rl_buf_init(&b, 65536);
	rc = pol_priority_build(p->c->tls_priority, bits, p->e ? p->e->priority_suffix : NULL, &b);
	if (rc < 0) {
		fprintf(stderr, "tlsrelay: priority string: %s\n", rl_strerror(rc));
	} else if ((rc = gnutls_priority_init2(&p->prio, b.data, &errpos, 0)) < 0) {
		fprintf(stderr, "tlsrelay: GnuTLS refuses the priority \"%s\": %s\n", b.data,
			gnutls_strerror(rc));
		p->prio = NULL;
	}
	rl_buf_fini(&b);
	if (rc < 0)
		return -1;
	if (gnutls_init(&p->tls, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL) < 0 ||
	    gnutls_priority_set(p->tls, p->prio) < 0 ||
	    gnutls_credentials_set(p->tls, GNUTLS_CRD_CERTIFICATE, p->out.tls.cred) < 0 ||
	    (sni && gnutls_server_name_set(p->tls, GNUTLS_NAME_DNS, sni, strlen(sni)) < 0)) {
		fprintf(stderr, "tlsrelay: cannot set up the TLS session\n");
		return -1;
	}
	printf("SNI: %s\n", sni ? sni : "none");
	gnutls_transport_set_int(p->tls, p->fd);
	gnutls_handshake_set_timeout(p->tls, PROBE_TIMEOUT_MS);
	return 0;
}

static int probe_handshake(struct probe *p)
{
	int rc;

	if (probe_tls_setup(p) < 0)
		return -1;
	/* Warnings and interruptions are not fatal: carry on (RFC 8446 6). */
	do {
		rc = gnutls_handshake(p->tls);
	} while (rc < 0 && rc != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(rc));
	if (rc < 0) {
		fprintf(stderr, "tlsrelay: %s: TLS handshake failed: %s\n", p->relay,
			rc == GNUTLS_E_AGAIN ? "timed out" : gnutls_strerror(rc));
		return -1;
	}
	return 0;
}

/* "TLSv1.3 with cipher NAME (256/256 bits)", as the relay logs it. */
static void tls_summary(gnutls_session_t s, char *out, size_t size)
{
	const char *proto = gnutls_protocol_get_name(gnutls_protocol_get_version(s));
	const char *suite = gnutls_ciphersuite_get(s);
	unsigned bits = (unsigned)gnutls_cipher_get_key_size(gnutls_cipher_get(s)) * 8;

	/* Postfix spells versions "TLSv1.3"; GnuTLS says "TLS1.3". */
	snprintf(out, size, "%s%s with cipher %s (%u/%u bits)",
		 proto && strncmp(proto, "TLS", 3) == 0 ? "TLSv" : "",
		 proto ? (strncmp(proto, "TLS", 3) == 0 ? proto + 3 : proto) : "unknown",
		 suite ? suite : "unknown", bits, bits);
}

/* ---- the chain -------------------------------------------------------------- */

static void time_text(time_t t, char *out, size_t size)
{
	struct tm tm;

	if (t == (time_t)-1 || !gmtime_r(&t, &tm) ||
	    strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		rl_strlcpy(out, "?", size);
}

/* One certificate: depth, subject, issuer, validity; digests for the leaf. */
static void cert_show(struct probe *p, const gnutls_datum_t *der, unsigned depth)
{
	char subject[PROBE_SHOW + 1], issuer[PROBE_SHOW + 1], nb[40], na[40];
	time_t from, until;

	printf("certificate depth=%u\n", depth);
	if (cert_subject_text(der->data, der->size, subject, sizeof(subject)) < 0 ||
	    cert_issuer_text(der->data, der->size, issuer, sizeof(issuer)) < 0 ||
	    cert_validity(der->data, der->size, &from, &until) < 0) {
		printf("  (the certificate does not decode)\n");
		return;
	}
	time_text(from, nb, sizeof(nb));
	time_text(until, na, sizeof(na));
	printf("  subject: %s\n  issuer: %s\n  notBefore: %s\n  notAfter: %s\n", subject, issuer,
	       nb, na);
	/* On failure it has said why on stderr; the verdict still follows. */
	if (depth == 0)
		cli_print_fingerprints(p->relay, der->data, der->size);
}

/*
 * The anchors the relay uses: tafile=, else tls_ca_file, else the
 * system's; NULL when they cannot be loaded (the check then fails closed,
 * as the relay's does without anchors).  Without tafile= they are the
 * relay's own list from tlscred (borrowed, never freed here).
 */
static gnutls_x509_trust_list_t probe_anchors(const struct probe *p)
{
	const char *ca = p->e && p->e->tafile ? p->e->tafile : p->c->tls_ca_file;
	const char *src = p->e && p->e->tafile ? "tafile=" : ca ? "tls_ca_file" : "default";
	struct rl_why why = {0, NULL, 0};
	gnutls_x509_trust_list_t tl = NULL;
	int rc;

	printf("trust anchors: %s (%s)\n", ca ? ca : "system trust store", src);
	if (!(p->e && p->e->tafile) && p->out.trust)
		return p->out.trust;
	rc = cert_trust_load(ca, &tl, &why);
	if (rc < 0) {
		printf("chain: not checked: cannot load the trust anchors: %s%s%s\n",
		       why.reason ? why.reason : rl_strerror(rc), why.reason ? ": " : "",
		       why.reason ? rl_strerror(rc) : "");
		return NULL;
	}
	return tl;
}

/* What the check looked at: the chain, and the names for verify/secure. */
static void verdict_show(const struct probe *p, const gnutls_datum_t *leaf,
			 const struct pol_verdict *v)
{
	char want[PROBE_TEXT_SIZE / 2], subject[PROBE_SHOW + 1];

	if (v->chain == POL_CHAIN_TRUSTED)
		printf("chain: trusted\n");
	else if (v->chain == POL_CHAIN_UNTRUSTED)
		printf("chain: not trusted (%s)\n", cert_status_text(v->status));
	if (p->level != POL_LEVEL_VERIFY && p->level != POL_LEVEL_SECURE)
		return;
	pol_peer_names_text(&p->sess.pol, want, sizeof(want));
	printf("names wanted: %s\n", want);
	if (cert_subject_text(leaf->data, leaf->size, subject, sizeof(subject)) < 0)
		rl_strlcpy(subject, "?", sizeof(subject));
	if (v->named)
		printf("names: matched %s\n", v->matched);
	else
		printf("names: no match (certificate %s)\n", subject);
}

/*
 * The relay's own decision (pol_peer_check) on the chain, into text:
 * "failed: REASON" or "TRUST (LEVEL: what satisfied it)"; *trust is the
 * word of the TLS line.
 */
static void probe_verdict(struct probe *p, const gnutls_datum_t *chain, unsigned n,
			  const char **trust, char *text, size_t size)
{
	struct pol_verdict v;
	char reason[PROBE_TEXT_SIZE];
	int rc;

	*trust = "Anonymous";
	if (p->resolve_rc < 0) {
		snprintf(text, size, "failed: %s", p->resolve_why);
		return;
	}
	if (n > 0)
		p->sess.pol.trust = probe_anchors(p);
	rc = pol_peer_check(&p->sess.pol, p->relay, chain, n, &v, reason, sizeof(reason));
	if (n > 0)
		verdict_show(p, &chain[0], &v);
	if (p->sess.pol.trust != p->out.trust)
		cert_trust_free(p->sess.pol.trust);
	p->sess.pol.trust = NULL;
	*trust = pol_trust_word(v.trust);
	if (p->sess.pol.sts_testing && !p->sess.pol.sts_enforce)
		printf("MTA-STS testing: %s\n",
		       v.sts_note[0] ? v.sts_note : "the policy would have been met");
	if (rc < 0)
		snprintf(text, size, "failed: %s", reason);
	else
		snprintf(text, size, "%s (%s: %s)", *trust,
			 p->sess.pol.sts_enforce ? "mta-sts" : pol_level_name(p->level), reason);
}

/* After the handshake: the session, the chain, the verdict; then QUIT. */
static void probe_report(struct probe *p)
{
	unsigned n = 0;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(p->tls, &n);
	char summary[200], verdict[PROBE_TEXT_SIZE + 64];
	const char *trust;

	if (!chain)
		n = 0;
	tls_summary(p->tls, summary, sizeof(summary));
	printf("TLS: %s\n", summary);
	for (unsigned i = 0; i < n; i++)
		cert_show(p, &chain[i], i);
	probe_verdict(p, chain, n, &trust, verdict, sizeof(verdict));
	/* RFC 5321 4.1.1.10; the answer, or its absence, changes nothing. */
	if (probe_cmd(p, "QUIT", 1) == 0)
		gnutls_bye(p->tls, GNUTLS_SHUT_WR);
	printf("%s TLS connection established to %s: %s\n", trust, p->relay, summary);
	printf("Verification: %s\n", verdict);
}

/* ---- the command -------------------------------------------------------- */

/*
 * tlscred's errors, with the texts the relay logs when it refuses to start.
 * A warning (no system trust store) is left out: the verdict's "trust
 * anchors" lines say it for this probe.
 */
static void probe_say(int err, const char *text)
{
	if (err)
		fprintf(stderr, "tlsrelay: %s\n", text);
}

static int probe_run(struct probe *p)
{
	rl_buf_init(&p->in, PROBE_IN_MAX);
	/* Built as the relay builds them, so the peer sees the relay's client. */
	if (tlscred_out_init(p->c, &p->out, probe_say) < 0)
		return -1;
	if (probe_connect(p) < 0)
		return -1;
	if (probe_smtp_start(p) < 0 || probe_handshake(p) < 0)
		return -1;
	probe_report(p);
	return 0;
}

static void probe_fini(struct probe *p)
{
	if (p->tls)
		gnutls_deinit(p->tls);
	tlscred_out_fini(&p->out);
	if (p->prio)
		gnutls_priority_deinit(p->prio);
	if (p->fd >= 0)
		close(p->fd);
	rl_buf_fini(&p->in);
	cli_dane_peer_fini(&p->dane);
	cli_sts_free(p->sts);
}

int cli_probe(const char *cfgpath, int argc, char **argv)
{
	struct probe *p = calloc(1, sizeof(*p));
	struct pol_table *t = NULL;
	struct cfg c;
	const char *target;
	int missing, rc = CLI_EX_FAIL;

	if (!p) {
		fprintf(stderr, "tlsrelay: %s\n", rl_strerror(-ENOMEM));
		return CLI_EX_FAIL;
	}
	p->fd = -1;
	if (args_parse(argc, argv, p, &target) < 0 || target_parse(target, p) < 0) {
		free(p);
		return probe_usage();
	}
	if (cli_load_cfg(cfgpath, &c) < 0) {
		free(p);
		return CLI_EX_FAIL;
	}
	if (cli_load_policy(c.policy_file, &t, &missing) == 0) {
		p->c = &c;
		p->table = t;
		p->port = p->port ? p->port : c.remote_port;
		p->domain_given = p->domain != NULL;
		p->domain = p->domain ? p->domain : p->host;
		probe_policy(p);
		rc = probe_dane(p) == 0 && probe_sts(p) == 0 && probe_run(p) == 0 ? CLI_EX_OK
										  : CLI_EX_FAIL;
		probe_fini(p);
	}
	pol_table_free(t);
	cfg_fini(&c);
	free(p);
	if (fflush(stdout) != 0 || ferror(stdout))
		rc = CLI_EX_FAIL;
	return rc;
}
