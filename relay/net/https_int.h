/*
 * https_int: what the two halves of the fetcher share (https.c drives the
 * multi handle on the loop; https_xfer.c turns one request into a curl easy
 * handle, checks its response and words its result).  Never included
 * outside relay/net/https*.c.
 */
#ifndef HTTPS_INT_H
#define HTTPS_INT_H

#include <curl/curl.h>

#include "https.h"

/* One request in flight; owned by its struct https. */
struct https_xfer {
	struct https *h;
	int id;
	int post;
	CURL *easy;
	CURLSH *share; /* this transfer's own DNS cache */
	struct curl_slist *resolve;
	struct curl_slist *headers;
	void (*cb)(void *arg, const struct https_result *r);
	void *arg;
	struct https_xfer *prev, *next;
	char host[DNS_NAME_MAX];
	uint64_t timeout_ms;
	size_t body_max;
	int require_text_plain;
	struct rl_buf body;
	int head_done;	   /* the final header section has been checked */
	int stop;	   /* enum https_status: a check of ours ended the transfer */
	int resolve_tried; /* curl wanted to resolve a name (refused) */
	long code;
	char type[HTTPS_TYPE_MAX];
	char why[256];
	char errbuf[CURL_ERROR_SIZE];
};

/*
 * Check req and set up x->easy for it (x->h, x->post, the limits and
 * x->body are set by the caller); -EINVAL, -ENOMEM or -EIO.  Whatever was
 * made is released with the transfer either way.
 */
int https_xfer_setup(struct https_xfer *x, const struct https_req *req) RL_WUR;

/* The result of a finished transfer that curl ended with rc. */
void https_xfer_result(struct https_xfer *x, CURLcode rc, struct https_result *r);

/* CURLOPT_CLOSESOCKETFUNCTION of every transfer (clientp: its struct https). */
int https_closesocket(void *clientp, curl_socket_t fd);

#endif
