/*
 * https: libcurl's multi-socket API on the libuv loop (see https.h for the
 * contract).
 *
 * Driving curl: curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION)
 * and when to call it back (CURLMOPT_TIMERFUNCTION).  Each socket gets a
 * uv_poll_t, the timer is one uv_timer_t, and both feed events back with
 * curl_multi_socket_action(); finished transfers are then collected with
 * curl_multi_info_read().  curl forbids calling it back from inside its own
 * callbacks, so the timer callback only arms the uv timer (a zero delay
 * fires on the next loop turn) and user callbacks run only from that
 * collection step, outside any curl call.  That is also why a callback
 * never runs inside https_get(): curl_multi_add_handle() merely asks for
 * a zero-delay timer.
 *
 * Sockets: a socket's uv_poll_t is closed (which stops it at once) when
 * curl says CURL_POLL_REMOVE, which curl does before it closes the socket;
 * the socket-close callback closes it too should that ever not have
 * happened, so libuv never watches a closed (or reused) descriptor.  The
 * poll memory goes in its close callback, counted in nclose; struct https
 * itself goes with the last close after https_free().
 *
 * No name resolution: each transfer has a DNS cache of its own (a share
 * handle) that holds only the caller's addresses (CURLOPT_RESOLVE), so
 * the transfer never misses the cache, and a resolver start is refused
 * anyway.  Debian's libcurl uses a threaded resolver, which must never
 * run here.  The private cache also keeps concurrent transfers to one host
 * with different addresses apart and leaves nothing behind in the multi
 * handle (entries from CURLOPT_RESOLVE never expire).
 *
 * Connections are not reused (CURLOPT_FORBID_REUSE): every request goes to
 * the addresses it names, and no idle socket stays open between requests.
 * MTA-STS fetches are rare (policies are cached for days), so the extra
 * handshake costs nothing that matters.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "https_int.h"

struct https_sock {
	struct https *h;
	uv_poll_t poll;
	curl_socket_t fd;
	struct https_sock *prev, *next; /* live sockets; a closing one is unlinked */
};

struct https {
	uv_loop_t *loop;
	uv_timer_t timer;
	CURLM *multi;
	struct https_xfer *first;
	struct https_sock *socks;
	unsigned nxfer;
	int next_id;
	int closing;
	int nclose; /* handle closes still to come */
};

static void on_timer(uv_timer_t *t);

static void err_set(char *err, size_t errlen, const char *what)
{
	if (err && errlen)
		snprintf(err, errlen, "https: %s", what);
}

const char *https_status_name(int status)
{
	static const char *const names[] = {
	    [HTTPS_OK] = "OK",		 [HTTPS_CONNECT] = "CONNECT",
	    [HTTPS_TLS] = "TLS",	 [HTTPS_CERT] = "CERT",
	    [HTTPS_TIMEOUT] = "TIMEOUT", [HTTPS_REDIRECT] = "REDIRECT",
	    [HTTPS_HTTP] = "HTTP",	 [HTTPS_TOOBIG] = "TOOBIG",
	    [HTTPS_TYPE] = "TYPE",	 [HTTPS_PROTOCOL] = "PROTOCOL",
	    [HTTPS_LOCAL] = "LOCAL",
	};

	if (status < 0 || (size_t)status >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[status];
}

/* -- handles ------------------------------------------------------------ */

static void closed_one(struct https *h)
{
	if (--h->nclose > 0 || !h->closing)
		return;
	curl_global_cleanup();
	free(h);
}

static void on_sock_closed(uv_handle_t *hd)
{
	struct https_sock *s = hd->data;
	struct https *h = s->h;

	free(s);
	closed_one(h);
}

static void on_timer_closed(uv_handle_t *hd)
{
	closed_one(hd->data);
}

/* Stop watching s and release it (from its close callback).  uv_close()
 * stops the poll at once, while curl's descriptor is still open. */
static void sock_close(struct https_sock *s)
{
	struct https *h = s->h;

	if (s->prev)
		s->prev->next = s->next;
	else
		h->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	h->nclose++;
	uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static struct https_sock *sock_find(struct https *h, curl_socket_t fd)
{
	for (struct https_sock *s = h->socks; s; s = s->next)
		if (s->fd == fd)
			return s;
	return NULL;
}

/* Collect finished transfers and run their callbacks. */
static void process(struct https *h);

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct https_sock *s = p->data;
	struct https *h = s->h;
	int flags = 0, running;

	if (h->closing)
		return;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (status == 0 && (events & UV_READABLE))
		flags |= CURL_CSELECT_IN;
	if (status == 0 && (events & UV_WRITABLE))
		flags |= CURL_CSELECT_OUT;
	/* s may be closed by this call (its memory stays until the close
	 * callback); it is not used after it. */
	curl_multi_socket_action(h->multi, s->fd, flags, &running);
	process(h);
}

static struct https_sock *sock_new(struct https *h, curl_socket_t fd)
{
	struct https_sock *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (uv_poll_init_socket(h->loop, &s->poll, fd) < 0) {
		free(s);
		return NULL;
	}
	s->h = h;
	s->fd = fd;
	s->poll.data = s;
	s->next = h->socks;
	if (h->socks)
		h->socks->prev = s;
	h->socks = s;
	return s;
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl asks. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct https *h = userp;
	struct https_sock *s = socketp;
	int events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (s)
			sock_close(s);
		curl_multi_assign(h->multi, fd, NULL);
		return 0;
	}
	if (!s && h->closing)
		return 0;
	if (!s) {
		/* Without a watcher the transfer still ends, by its
		 * timeout; failing here (-1) would kill every transfer. */
		s = sock_new(h, fd);
		if (!s)
			return 0;
		curl_multi_assign(h->multi, fd, s);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	uv_poll_start(&s->poll, events, on_poll);
	return 0;
}

/* CURLOPT_CLOSESOCKETFUNCTION: curl closes a socket.  It has said
 * CURL_POLL_REMOVE first; if not, the poll goes now, before the close. */
int https_closesocket(void *clientp, curl_socket_t fd)
{
	struct https *h = clientp;
	struct https_sock *s = sock_find(h, fd);

	if (s) {
		sock_close(s);
		if (h->multi)
			curl_multi_assign(h->multi, fd, NULL);
	}
	return close(fd);
}

/* CURLMOPT_TIMERFUNCTION: call curl back in ms (-1: never).  Only arms
 * the uv timer; curl may not be called from here. */
static int on_curl_timer(CURLM *multi, long ms, void *userp)
{
	struct https *h = userp;

	if (ms < 0 || h->closing)
		uv_timer_stop(&h->timer);
	else
		uv_timer_start(&h->timer, on_timer, (uint64_t)ms, 0);
	return 0;
}

static void on_timer(uv_timer_t *t)
{
	struct https *h = t->data;
	int running;

	if (h->closing)
		return;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	process(h);
}

/* -- transfers ---------------------------------------------------------- */

/* Take x out of the multi handle and the list: no callback after this. */
static void xfer_detach(struct https_xfer *x)
{
	struct https *h = x->h;

	if (h->multi)
		curl_multi_remove_handle(h->multi, x->easy);
	if (x->prev)
		x->prev->next = x->next;
	else
		h->first = x->next;
	if (x->next)
		x->next->prev = x->prev;
	/* Idle, the fetcher must not keep a short-lived tool's loop alive. */
	if (--h->nxfer == 0)
		uv_unref((uv_handle_t *)&h->timer);
}

static void xfer_destroy(struct https_xfer *x)
{
	if (x->easy)
		curl_easy_cleanup(x->easy);
	if (x->share)
		curl_share_cleanup(x->share);
	curl_slist_free_all(x->resolve);
	curl_slist_free_all(x->headers);
	rl_buf_fini(&x->body);
	free(x);
}

static void xfer_finish(struct https_xfer *x, CURLcode rc)
{
	struct https_result r;

	memset(&r, 0, sizeof(r));
	if (!x->head_done)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->code);
	https_xfer_result(x, rc, &r);
	/* Detached first, so that the callback may cancel (a no-op for its
	 * own id), start requests or free the fetcher. */
	xfer_detach(x);
	x->cb(x->arg, &r);
	xfer_destroy(x);
}

static void process(struct https *h)
{
	CURLMsg *m;
	int left;

	/* A callback may free the fetcher: stop reading messages then. */
	while (!h->closing && (m = curl_multi_info_read(h->multi, &left))) {
		struct https_xfer *x;
		char *priv = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		x = (struct https_xfer *)priv;
		RL_REQUIRE(x && x->easy == m->easy_handle);
		xfer_finish(x, m->data.result);
	}
}

/* -- public ------------------------------------------------------------- */

int https_new(uv_loop_t *loop, struct https **out, char *err, size_t errlen)
{
	struct https *h;
	int bad = 0;

	RL_REQUIRE(loop && out);
	*out = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		err_set(err, errlen, "cannot initialise libcurl");
		return -EIO;
	}
	h = calloc(1, sizeof(*h));
	if (h)
		h->multi = curl_multi_init();
	if (!h || !h->multi) {
		err_set(err, errlen, "cannot create the fetcher: out of memory");
		free(h);
		curl_global_cleanup();
		return -ENOMEM;
	}
	h->loop = loop;
	h->next_id = 1;
	bad |= curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK;
	bad |= curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK;
	bad |= curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK;
	bad |= curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK;
	if (bad) {
		err_set(err, errlen, "libcurl refused the multi-socket callbacks");
		curl_multi_cleanup(h->multi);
		free(h);
		curl_global_cleanup();
		return -EIO;
	}
	uv_timer_init(loop, &h->timer);
	h->timer.data = h;
	uv_unref((uv_handle_t *)&h->timer);
	*out = h;
	return 0;
}

void https_free(struct https *h)
{
	if (!h || h->closing)
		return;
	h->closing = 1;
	while (h->first) {
		struct https_xfer *x = h->first;

		xfer_detach(x);
		xfer_destroy(x);
	}
	curl_multi_cleanup(h->multi);
	h->multi = NULL;
	/* Sockets curl did not announce the end of: nothing watches them now. */
	while (h->socks)
		sock_close(h->socks);
	h->nclose++;
	uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

static struct https_xfer *xfer_find(struct https *h, int id)
{
	for (struct https_xfer *x = h->first; x; x = x->next)
		if (x->id == id)
			return x;
	return NULL;
}

static int xfer_start(struct https *h, const struct https_req *req, int post,
		      void (*cb)(void *arg, const struct https_result *r), void *arg)
{
	struct https_xfer *x;
	int rc;

	RL_REQUIRE(h && req && cb);
	if (h->closing)
		return -EIO;
	if (h->nxfer >= HTTPS_PENDING_MAX)
		return RL_ETOOBIG;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->h = h;
	x->post = post;
	x->cb = cb;
	x->arg = arg;
	x->timeout_ms = req->timeout_ms ? req->timeout_ms : HTTPS_TIMEOUT_MS;
	x->body_max = req->body_max ? req->body_max : HTTPS_BODY_MAX;
	x->require_text_plain = req->require_text_plain;
	rl_buf_init(&x->body, x->body_max);
	rc = https_xfer_setup(x, req);
	if (rc == 0 && curl_multi_add_handle(h->multi, x->easy) != CURLM_OK)
		rc = -EIO;
	if (rc < 0) {
		xfer_destroy(x);
		return rc;
	}
	/* Ids stay positive ints; one still in flight is never handed out twice. */
	do {
		x->id = h->next_id;
		h->next_id = h->next_id == INT_MAX ? 1 : h->next_id + 1;
	} while (xfer_find(h, x->id));
	x->next = h->first;
	if (h->first)
		h->first->prev = x;
	h->first = x;
	if (h->nxfer++ == 0)
		uv_ref((uv_handle_t *)&h->timer);
	return x->id;
}

int https_get(struct https *h, const struct https_req *req,
	      void (*cb)(void *arg, const struct https_result *r), void *arg)
{
	return xfer_start(h, req, 0, cb, arg);
}

int https_post(struct https *h, const struct https_req *req,
	       void (*cb)(void *arg, const struct https_result *r), void *arg)
{
	return xfer_start(h, req, 1, cb, arg);
}

void https_cancel(struct https *h, int id)
{
	struct https_xfer *x;

	if (!h || h->closing || id <= 0 || !(x = xfer_find(h, id)))
		return;
	xfer_detach(x);
	xfer_destroy(x);
}
