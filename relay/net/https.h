/*
 * https: HTTPS requests on the libuv loop with libcurl (multi-socket API),
 * for MTA-STS policies (RFC 8461 section 3.3) and, later, TLS-RPT reports
 * sent by POST (RFC 8460 section 3).
 *
 * One struct https per loop holds one curl multi handle.  curl's sockets
 * are watched by uv_poll_t handles and its timer is a uv_timer_t, so a
 * transfer never blocks the loop and no thread is started: names are never
 * resolved by curl.  The caller resolves the host itself (dns_addrs(), with
 * DNSSEC) and passes the addresses in; curl gets them as its only DNS data
 * (CURLOPT_RESOLVE), and a resolver start is refused should curl ever want
 * one.  Proxies from the environment, cookies, HSTS, alt-svc, netrc and
 * compression are all off: a request goes to exactly the addresses given,
 * over HTTPS only, and the body is the bytes the server sent.
 *
 * Each request is checked as RFC 8461 section 3.3 asks of a policy fetch:
 * the certificate must chain to the trust store (tls_ca_file, or the system
 * store) and be valid for the URL's host; redirects are not followed (a 3xx
 * is a failure); only status 200 is success (2xx for a POST); the body is
 * capped (64 KiB for a policy) and the transfer is abandoned as soon as a
 * server announces or sends more; the whole request is bounded in time.
 * Optionally the media type must be text/plain (RFC 8461 section 3.2).
 *
 * Lifetime: https_free() cancels every request in flight; their callbacks
 * are not called.  https_cancel() cancels one.  Callbacks run on the loop
 * thread, never inside https_get()/https_post() themselves, and may start,
 * cancel or free.  Loop thread only.
 *
 * Loop handles: a uv_timer_t, and one uv_poll_t per socket curl has open.
 * They keep the loop alive only while requests are in flight.  https_free()
 * starts closing them and the memory is released from the last close
 * callback, so the loop must run once more before uv_loop_close() (which
 * then returns 0).
 *
 * Errors: https_new() fails with -ENOMEM or -EIO and a message.
 * https_get()/https_post() return -EINVAL for a request that is not well
 * formed (host not a host name, path not absolute printable ASCII, no
 * address or more than HTTPS_ADDR_MAX), RL_ETOOBIG when HTTPS_PENDING_MAX
 * requests are in flight, -ENOMEM, or -EIO when curl refuses the request.
 * Outcomes come back in the result's status.
 */
#ifndef HTTPS_H
#define HTTPS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "dns.h"
#include "rl.h"

/* RFC 8461 section 3.3: policy bodies of at most 64 KiB. */
#define HTTPS_STS_BODY_MAX 65536
#define HTTPS_BODY_MAX	   65536 /* body cap when the request names none */
#define HTTPS_TIMEOUT_MS   60000 /* bound on a request that names none */
#define HTTPS_PENDING_MAX  1024	 /* requests in flight per struct https */
#define HTTPS_ADDR_MAX	   DNS_ADDR_MAX
#define HTTPS_PATH_MAX	   1024
#define HTTPS_POST_MAX	   (16u * 1024 * 1024) /* largest POST body */
/* RFC 6838 section 4.2: type and subtype names are at most 127 octets. */
#define HTTPS_TYPE_MAX 256

enum https_status {
	HTTPS_OK = 0,	/* status 200 (a POST: any 2xx), body within the cap */
	HTTPS_CONNECT,	/* no TCP connection to any address */
	HTTPS_TLS,	/* TLS handshake or record layer failed */
	HTTPS_CERT,	/* certificate untrusted, expired or not valid for host */
	HTTPS_TIMEOUT,	/* the request took longer than its timeout */
	HTTPS_REDIRECT, /* a 3xx response: never followed (RFC 8461 3.3) */
	HTTPS_HTTP,	/* any other status than 200 (2xx for a POST) */
	HTTPS_TOOBIG,	/* the body is over the cap (announced or sent) */
	HTTPS_TYPE,	/* not text/plain while the request required it */
	HTTPS_PROTOCOL, /* malformed HTTP, connection closed early, ... */
	HTTPS_LOCAL,	/* out of memory, unreadable CA file, curl refused */
};

struct https_req {
	/* The URL's host (A-labels, no final dot): the certificate must be
	 * valid for it, and it is the SNI name and the Host header. */
	const char *host;
	/* The absolute path of the URL, e.g. "/.well-known/mta-sts.txt":
	 * printable ASCII without spaces or '#'. */
	const char *path;
	unsigned port; /* 0: 443 */
	/* The addresses of host, tried in this order (port fields ignored);
	 * 1 .. HTTPS_ADDR_MAX of them. */
	const struct dns_addr *addr;
	size_t naddr;
	const char *ca_file;	/* trust only these CAs; NULL: the system store */
	uint64_t timeout_ms;	/* the whole request; 0: HTTPS_TIMEOUT_MS */
	size_t body_max;	/* response body cap; 0: HTTPS_BODY_MAX */
	int require_text_plain; /* media type must be text/plain (parameters allowed) */
	/* https_post() only: the request body and its media type. */
	const void *body;
	size_t body_len; /* at most HTTPS_POST_MAX */
	const char *content_type;
};

struct https_result {
	int status;	/* enum https_status */
	long http_code; /* 0 when no response arrived */
	/* The response's media type, lowercased, without parameters; "" when
	 * the response had no Content-Type or a malformed one. */
	char content_type[HTTPS_TYPE_MAX];
	/* The response body, NUL-terminated; valid during the callback only.
	 * Empty (never NULL) unless status is HTTPS_OK. */
	const char *body;
	size_t body_len;
	/* One line for the log, e.g. "HTTP status 404", "redirect refused
	 * (HTTP 301)", "body over 65536 bytes", "certificate not valid for
	 * mta-sts.example.com: ...", "timed out after 10 s"; "" for HTTPS_OK.
	 * Peer text in it is capped and has control octets replaced. */
	char why[256];
};

struct https;

/* A fetcher on loop.  On failure err holds one line for the log. */
int https_new(uv_loop_t *loop, struct https **out, char *err, size_t errlen) RL_WUR;

/*
 * Cancel every request in flight (no callback runs) and close the handles;
 * h is released from the last close callback and must not be used after
 * this call.  Safe inside an https callback.  https_free(NULL) is a no-op.
 */
void https_free(struct https *h);

/*
 * GET https://HOST[:PORT]PATH; returns a request id > 0.  req and
 * everything it points to are borrowed (copied before the call returns).
 * cb runs once with the result, unless the request is cancelled first.
 */
int https_get(struct https *h, const struct https_req *req,
	      void (*cb)(void *arg, const struct https_result *r), void *arg) RL_WUR;

/*
 * POST req->body (req->body_len bytes, type req->content_type, e.g.
 * "application/tlsrpt+gzip") to https://HOST[:PORT]PATH; as https_get()
 * otherwise, except that any 2xx status is success.
 */
int https_post(struct https *h, const struct https_req *req,
	       void (*cb)(void *arg, const struct https_result *r), void *arg) RL_WUR;

/* Cancel a request by id; its callback will not run.  Unknown ids are ignored. */
void https_cancel(struct https *h, int id);

/* "OK", "CONNECT", "TLS", "CERT", "TIMEOUT", ... for a status; never NULL. */
const char *https_status_name(int status);

/*
 * Pure (https_parse.c), exposed for tests and fuzzing: the media type of a
 * Content-Type field value (RFC 9110 section 8.3: type "/" subtype, then
 * parameters), lowercased into out without its parameters.  Parameters are
 * checked (token "=" token or quoted-string) but not returned.  RL_EPARSE
 * with why filled for anything else, RL_ETOOBIG if out is too small; out is
 * "" on failure.
 */
int https_media_type(const char *s, size_t len, char *out, size_t outlen,
		     struct rl_why *why) RL_WUR;

#endif
