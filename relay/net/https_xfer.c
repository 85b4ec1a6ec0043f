/*
 * https_xfer: one request of the fetcher (see https.h): from the caller's
 * request to a curl easy handle, the checks of the response as it arrives,
 * and the result.
 *
 * The response is judged when its header section is complete (on_header):
 * status, media type and announced length decide before one byte of the
 * body is read, and a refusal aborts the transfer there.  The body is
 * collected up to its cap and the transfer is aborted at the first byte
 * beyond it.  A check of ours that ends a transfer leaves its verdict in
 * x->stop and x->why; curl's own error code only says how it was ended.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "https_int.h"
#include "netaddr.h"

RL_PRINTF(3, 4) static void why_set(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
}

/* Peer-influenced text (curl's messages quote certificate names): control
 * octets and 8-bit bytes become '?', and it is cut at size - 1 bytes. */
static void copy_text(char *out, size_t size, const char *s)
{
	size_t i = 0;

	for (; s && s[i] && i + 1 < size; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[i] = '\0';
}

/* -- the response ------------------------------------------------------- */

static int type_check(struct https_xfer *x, const char *ct)
{
	if (!x->require_text_plain || strcmp(x->type, "text/plain") == 0)
		return HTTPS_OK;
	if (!ct)
		why_set(x->why, sizeof(x->why), "no content type (text/plain required)");
	else if (!x->type[0])
		why_set(x->why, sizeof(x->why), "malformed content type (text/plain required)");
	else
		why_set(x->why, sizeof(x->why), "content type %s, not text/plain", x->type);
	return HTTPS_TYPE;
}

/*
 * The final header section is complete: decide before any body arrives.
 * RFC 8461 section 3.3: a policy comes only with status 200, and a 3xx is
 * never followed.  A body announced larger than the cap is refused here,
 * so not one byte of it is read.
 */
static int head_check(struct https_xfer *x)
{
	char *ct = NULL;
	curl_off_t clen = -1;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->code);
	curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
	curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
	if (!ct || https_media_type(ct, strlen(ct), x->type, sizeof(x->type), NULL) < 0)
		x->type[0] = '\0';
	if (x->code >= 300 && x->code <= 399) {
		why_set(x->why, sizeof(x->why), "redirect refused (HTTP %ld)", x->code);
		return HTTPS_REDIRECT;
	}
	if (x->post ? x->code < 200 || x->code > 299 : x->code != 200) {
		why_set(x->why, sizeof(x->why), "HTTP status %ld", x->code);
		return HTTPS_HTTP;
	}
	if (type_check(x, ct) != HTTPS_OK)
		return HTTPS_TYPE;
	if (clen >= 0 && (uint64_t)clen > x->body_max) {
		why_set(x->why, sizeof(x->why), "body over %zu bytes", x->body_max);
		return HTTPS_TOOBIG;
	}
	return HTTPS_OK;
}

/* CURLOPT_HEADERFUNCTION: one header line at a time. */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct https_xfer *x = arg;
	size_t len = size * n;
	long code = 0;

	/* Only the empty line that ends a section matters: by then curl has
	 * parsed every field of it.  Trailers after a chunked body end with
	 * one too; the decision is taken once. */
	if (x->head_done ||
	    !((len == 2 && p[0] == '\r' && p[1] == '\n') || (len == 1 && p[0] == '\n')))
		return len;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200)
		return len; /* an interim 1xx response; the final one follows */
	x->head_done = 1;
	x->stop = head_check(x);
	return x->stop == HTTPS_OK ? len : 0; /* anything else aborts */
}

/* CURLOPT_WRITEFUNCTION: the body, up to its cap and not a byte more. */
static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct https_xfer *x = arg;
	size_t len = size * n;
	int rc;

	if (x->stop != HTTPS_OK)
		return 0; /* decided already; the abort is on its way */
	rc = rl_buf_append(&x->body, p, len);
	if (rc == 0)
		return len;
	if (rc == RL_ETOOBIG) {
		x->stop = HTTPS_TOOBIG;
		why_set(x->why, sizeof(x->why), "body over %zu bytes", x->body_max);
	} else {
		x->stop = HTTPS_LOCAL;
		why_set(x->why, sizeof(x->why), "out of memory");
	}
	return 0; /* a short count aborts the transfer at once */
}

/* The status of a transfer curl ended with rc, not stopped by us. */
static int curl_class(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return HTTPS_OK;
	case CURLE_OPERATION_TIMEDOUT:
		return HTTPS_TIMEOUT;
	case CURLE_COULDNT_CONNECT:
		return HTTPS_CONNECT;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return HTTPS_CERT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED:
		return HTTPS_TLS;
	case CURLE_GOT_NOTHING:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_BAD_CONTENT_ENCODING:
		return HTTPS_PROTOCOL;
	default:
		return HTTPS_LOCAL;
	}
}

void https_xfer_result(struct https_xfer *x, CURLcode rc, struct https_result *r)
{
	char text[200];

	r->http_code = x->code;
	rl_strlcpy(r->content_type, x->type, sizeof(r->content_type));
	r->body = "";
	if (x->stop != HTTPS_OK) {
		r->status = x->stop;
		rl_strlcpy(r->why, x->why, sizeof(r->why));
		return;
	}
	if (x->resolve_tried) {
		r->status = HTTPS_LOCAL;
		why_set(r->why, sizeof(r->why), "no address for %s (names are not resolved here)",
			x->host);
		return;
	}
	r->status = curl_class(rc);
	copy_text(text, sizeof(text), x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
	switch (r->status) {
	case HTTPS_OK:
		r->body = x->body.data ? x->body.data : "";
		r->body_len = x->body.len;
		return;
	case HTTPS_TIMEOUT:
		if (x->timeout_ms % 1000 == 0)
			why_set(r->why, sizeof(r->why), "timed out after %llu s",
				(unsigned long long)(x->timeout_ms / 1000));
		else
			why_set(r->why, sizeof(r->why), "timed out after %llu ms",
				(unsigned long long)x->timeout_ms);
		return;
	case HTTPS_CONNECT:
		why_set(r->why, sizeof(r->why), "cannot connect: %s", text);
		return;
	case HTTPS_CERT:
		why_set(r->why, sizeof(r->why), "certificate not valid for %s: %s", x->host, text);
		return;
	case HTTPS_TLS:
		why_set(r->why, sizeof(r->why), "TLS failure: %s", text);
		return;
	case HTTPS_PROTOCOL:
		why_set(r->why, sizeof(r->why), "transfer failed: %s", text);
		return;
	default:
		why_set(r->why, sizeof(r->why), "%s", text);
		return;
	}
}

/* -- the request -------------------------------------------------------- */

/* Path of the URL: absolute, printable ASCII, no space or fragment. */
static int path_check(const char *path)
{
	size_t n = path ? strlen(path) : 0;

	if (n == 0 || n >= HTTPS_PATH_MAX || path[0] != '/')
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (path[i] <= 0x20 || path[i] >= 0x7f || path[i] == '#')
			return -EINVAL;
	return 0;
}

/* "HOST:PORT:ADDR,[ADDR6],..." for CURLOPT_RESOLVE. */
static int resolve_entry(const struct https_req *req, const char *host, unsigned port, char *out,
			 size_t size)
{
	size_t pos = (size_t)snprintf(out, size, "%s:%u:", host, port);

	for (size_t i = 0; i < req->naddr; i++) {
		const struct dns_addr *a = &req->addr[i];
		char ip[NETADDR_TEXT_SIZE];
		int v6;

		if (netaddr_text((const struct sockaddr *)&a->sa, ip, sizeof(ip), NULL) < 0)
			return -EINVAL;
		v6 = strchr(ip, ':') != NULL;
		pos += (size_t)snprintf(out + pos, pos < size ? size - pos : 0, "%s%s%s%s",
					i ? "," : "", v6 ? "[" : "", ip, v6 ? "]" : "");
	}
	return pos < size ? 0 : -EINVAL;
}

static int req_check(const struct https_req *req, int post, char *host, size_t hostlen)
{
	char type[HTTPS_TYPE_MAX];

	if (!req->host || dns_parse_host(req->host, strlen(req->host), host, hostlen) < 0)
		return -EINVAL;
	if (path_check(req->path) < 0 || req->port > 65535)
		return -EINVAL;
	if (!req->addr || req->naddr == 0 || req->naddr > HTTPS_ADDR_MAX)
		return -EINVAL;
	if (!post)
		return 0;
	/* The media type goes into a header line: only a well-formed one
	 * (no CR or LF can pass the parser). */
	if (!req->content_type || strlen(req->content_type) >= HTTPS_TYPE_MAX ||
	    https_media_type(req->content_type, strlen(req->content_type), type, sizeof(type),
			     NULL) < 0)
		return -EINVAL;
	if ((!req->body && req->body_len) || req->body_len > HTTPS_POST_MAX)
		return -EINVAL;
	return 0;
}

/* CURLOPT_RESOLVER_START_FUNCTION: names come from the caller only. */
static int on_resolver_start(void *resolver_state, void *reserved, void *userdata)
{
	struct https_xfer *x = userdata;

	x->resolve_tried = 1;
	return 1; /* refused: the transfer fails instead of resolving */
}

/* The URL, the caller's addresses as the transfer's only DNS data, HTTPS
 * only, no redirects, no proxy from the environment. */
static int setup_target(struct https_xfer *x, const struct https_req *req)
{
	unsigned port = req->port ? req->port : 443;
	char url[DNS_NAME_MAX + HTTPS_PATH_MAX + 16];
	char entry[DNS_NAME_MAX + 16 + HTTPS_ADDR_MAX * (NETADDR_TEXT_SIZE + 3)];
	int n, bad = 0;

	if (resolve_entry(req, x->host, port, entry, sizeof(entry)) < 0)
		return -EINVAL;
	if (port == 443)
		n = snprintf(url, sizeof(url), "https://%s%s", x->host, req->path);
	else
		n = snprintf(url, sizeof(url), "https://%s:%u%s", x->host, port, req->path);
	if (n < 0 || (size_t)n >= sizeof(url))
		return -EINVAL;
	x->resolve = curl_slist_append(NULL, entry);
	x->share = curl_share_init();
	if (!x->resolve || !x->share)
		return -ENOMEM;
	bad |= curl_share_setopt(x->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_SHARE, x->share) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_URL, url) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_RESOLVE, x->resolve) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_RESOLVER_START_FUNCTION, on_resolver_start) !=
	       CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_RESOLVER_START_DATA, x) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_REDIR_PROTOCOLS_STR, "https") != CURLE_OK;
	/* RFC 8461 section 3.3: "HTTP 3xx redirects MUST NOT be followed". */
	bad |= curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
	/* "" turns off proxies, https_proxy and ALL_PROXY included. */
	bad |= curl_easy_setopt(x->easy, CURLOPT_PROXY, "") != CURLE_OK;
	return bad ? -EIO : 0;
}

/* Verify the chain and the name (RFC 8461 section 3.3: a certificate
 * valid for the host); tls_ca_file replaces the system store, as it does
 * for SMTP. */
static int setup_tls(struct https_xfer *x, const struct https_req *req)
{
	int bad = 0;

	bad |= curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) !=
	       CURLE_OK;
	if (req->ca_file) {
		bad |= curl_easy_setopt(x->easy, CURLOPT_CAINFO, req->ca_file) != CURLE_OK;
		bad |= curl_easy_setopt(x->easy, CURLOPT_CAPATH, (char *)NULL) != CURLE_OK;
	}
	return bad ? -EIO : 0;
}

/* Callbacks, limits and the connection's life. */
static int setup_io(struct https_xfer *x)
{
	long ms = x->timeout_ms > LONG_MAX ? LONG_MAX : (long)x->timeout_ms;
	int bad = 0;

	bad |= curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x) != CURLE_OK;
	bad |=
	    curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETFUNCTION, https_closesocket) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETDATA, x->h) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, ms) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK;
	/* One small document per connection: HTTP/1.1 keeps the code that
	 * reads the peer's framing to the simplest curl has. */
	bad |= curl_easy_setopt(x->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) !=
	       CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "tlsrelay") != CURLE_OK;
	return bad ? -EIO : 0;
}

/* The body of a POST, copied, with its type; no "Expect: 100-continue"
 * round trip. */
static int setup_post(struct https_xfer *x, const struct https_req *req)
{
	char line[HTTPS_TYPE_MAX + 32];
	struct curl_slist *l;
	int bad = 0;

	snprintf(line, sizeof(line), "Content-Type: %s", req->content_type);
	x->headers = curl_slist_append(NULL, line);
	l = x->headers ? curl_slist_append(x->headers, "Expect:") : NULL;
	if (!l)
		return -ENOMEM;
	bad |= curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len) !=
	       CURLE_OK;
	bad |= curl_easy_setopt(x->easy, CURLOPT_COPYPOSTFIELDS,
				req->body_len ? (const char *)req->body : "") != CURLE_OK;
	return bad ? -EIO : 0;
}

int https_xfer_setup(struct https_xfer *x, const struct https_req *req)
{
	int rc;

	if ((rc = req_check(req, x->post, x->host, sizeof(x->host))) < 0)
		return rc;
	x->easy = curl_easy_init();
	if (!x->easy)
		return -ENOMEM;
	if ((rc = setup_target(x, req)) < 0 || (rc = setup_tls(x, req)) < 0 ||
	    (rc = setup_io(x)) < 0)
		return rc;
	return x->post ? setup_post(x, req) : 0;
}
