/*
 * sts: MTA-STS (RFC 8461) and the TLS-RPT record (RFC 8460) as pure data.
 *
 * Four pure parts, no I/O, no logging, no globals, no allocation, any
 * thread.  relay/ fetches the DNS and HTTPS bytes and hands them over.
 * - sts_txt_parse(): the "_mta-sts.DOMAIN" TXT RRset into the policy id
 *   (RFC 8461 3.1);
 * - sts_policy_parse(): the policy body fetched over HTTPS into mode,
 *   max_age and mx patterns (RFC 8461 3.2);
 * - sts_mx_match(): is an MX host name allowed by a policy (RFC 8461 4.1)?
 * - sts_tlsrpt_parse(): the "_smtp._tls.DOMAIN" TXT RRset into the report
 *   URIs (RFC 8460 3).
 *
 * TXT input: each record of the RRset is given as its rdata in wire form,
 * as the resolver hands it over: one or more character-strings, each a
 * length octet and that many octets.  A record's strings are read as one
 * text, concatenated without adding anything (RFC 8461 3.1, RFC 8460 3).
 * Records that do not begin with the version tag ("v=STSv1",
 * "v=TLSRPTv1", followed by ";", a blank or the end) are ignored; exactly
 * one must remain.  Tags, field names and keywords compare case-sensitively,
 * as the RFCs' %s"..." grammar says; host names do not.
 *
 * Ownership: arguments are borrowed and nothing is kept.  Results are
 * fixed-size copies in the caller's struct, so they outlive the input (a
 * parsed policy can be cached as is).  On failure the result is emptied.
 *
 * Errors, with rl_why (static reason; offset into the selected record's
 * text, or into the policy body):
 *   RL_ENOTFOUND  no record of the RRset begins with the version tag: the
 *                 domain publishes no MTA-STS or TLS-RPT record;
 *   RL_EPARSE     malformed input, more than one record with the version
 *                 tag (the RFCs then treat the domain as publishing none),
 *                 a missing field, or no usable report URI;
 *   RL_EVERSION   a policy body whose version is not STSv1;
 *   RL_ETOOBIG    a bound below exceeded.
 */
#ifndef STS_H
#define STS_H

#include <stddef.h>
#include <stdint.h>

#include "rl.h"

/* RFC 8461 3.1: sts-id = 1*32(ALPHA / DIGIT). */
#define STS_ID_MAX 32
/* Longest policy body accepted; the fetcher stops reading past it. */
#define STS_POLICY_MAX 65536
/* RFC 8461 3.2: "maximum value of 31557600" seconds (a year). */
#define STS_MAX_AGE_MAX 31557600u
/* mx patterns one policy may list; a policy with more is refused. */
#define STS_MX_MAX 64
/* A host name as text without the trailing dot (RFC 1035 2.3.4: 255 octets on the wire). */
#define STS_NAME_MAX 253
/* Report URIs kept per scheme (mailto:, https:); later ones are ignored. */
#define STS_RUA_MAX 8
/* Longest report URI accepted. */
#define STS_URI_MAX 512

/* One TXT record: its rdata in wire form (borrowed). */
struct sts_txt {
	const unsigned char *rdata;
	size_t len;
};

struct sts_record {
	char id[STS_ID_MAX + 1]; /* 1-32 letters and digits, NUL-terminated */
};

enum sts_mode { STS_MODE_NONE = 0, STS_MODE_TESTING, STS_MODE_ENFORCE };

struct sts_policy {
	enum sts_mode mode;
	uint32_t max_age; /* seconds, at most STS_MAX_AGE_MAX */
	size_t nmx;	  /* at least 1 unless mode is none */
	/*
	 * "mail.example.com" or "*.example.net": lower case, no trailing dot,
	 * labels of letters, digits and inner hyphens, NUL-terminated.
	 */
	char mx[STS_MX_MAX][STS_NAME_MAX + 1];
};

struct sts_tlsrpt {
	size_t nmailto, nhttps;
	/* The URIs as written ("mailto:tlsrpt@example.com"), in record order. */
	char mailto[STS_RUA_MAX][STS_URI_MAX + 1];
	char https[STS_RUA_MAX][STS_URI_MAX + 1];
};

/* STS_MODE_ENFORCE -> "enforce". */
const char *sts_mode_name(enum sts_mode mode);

/*
 * The MTA-STS record of a "_mta-sts" TXT RRset of n records.  Fields are
 * "name=value" separated by ";" and optional blanks; "v=STSv1" comes
 * first, "id=" is required, other fields (extensions) are checked against
 * the grammar and ignored.  Of repeated fields the first counts (RFC 8461
 * 3.2).  Fills out->id; RL_ENOTFOUND when no record begins with v=STSv1.
 */
int sts_txt_parse(const struct sts_txt *rrset, size_t n, struct sts_record *out,
		  struct rl_why *why) RL_WUR;

/*
 * The policy body (len bytes, not NUL-terminated; at most STS_POLICY_MAX):
 * "key: value" lines ended by LF or CRLF.  version (STSv1), mode (enforce,
 * testing, none) and max_age (1-10 digits; values over STS_MAX_AGE_MAX
 * are lowered to it) are required, mx ("host" or "*.domain") at least once
 * unless mode is none.  Unknown keys are ignored; of repeated keys other
 * than mx the first counts.  Blank lines and blanks around a line are
 * ignored; NUL, control characters and a CR that does not end a line (bare
 * CR) are refused.
 */
int sts_policy_parse(const char *body, size_t len, struct sts_policy *out,
		     struct rl_why *why) RL_WUR;

/*
 * 1 when host (NUL-terminated, one trailing dot ignored, any case) matches
 * one of the policy's mx patterns, else 0.  "*.example.com" matches exactly
 * one more label on the left: "mx.example.com", but neither "example.com"
 * nor "a.b.example.com".  A host that is not a valid host name matches
 * nothing.
 */
int sts_mx_match(const struct sts_policy *p, const char *host);

/*
 * The TLS-RPT record of a "_smtp._tls" TXT RRset of n records:
 * "v=TLSRPTv1" first, "rua=" required (the first one counts): URIs
 * separated by "," and optional blanks, in which ",", "!" and ";" must be
 * percent-encoded.  mailto: and https: URIs are kept (up to STS_RUA_MAX of
 * each, longer than STS_URI_MAX refused), other schemes ignored; RL_EPARSE
 * when none is usable.  Other fields are checked and ignored.
 */
int sts_tlsrpt_parse(const struct sts_txt *rrset, size_t n, struct sts_tlsrpt *out,
		     struct rl_why *why) RL_WUR;

#endif
