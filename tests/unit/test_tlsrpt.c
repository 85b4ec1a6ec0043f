/*
 * Unit tests for the TLS-RPT report (relay/tlsrpt): the RFC 8460 section
 * 4 JSON of a record (field by field, read back with jansson), its gzip
 * form (inflated with zlib), the report mail's headers and filename, and
 * the rua URIs taken apart.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <zlib.h>

#include "tap.h"
#include "tlsrpt.h"

static struct queue_tlsrpt rec;

static void fill(void)
{
	struct queue_tlsrpt_sess s1 = {QUEUE_TLSRPT_STS, "version: STSv1\nmode: enforce\nmx: *.e.test",
				       "mx1.e.test", 0, "192.0.2.1", "192.0.2.9"};
	struct queue_tlsrpt_sess s2 = s1;

	s2.result = QUEUE_TLSRPT_R_STS_WEBPKI;
	s2.mx = "mx2.e.test";
	memset(&rec, 0, sizeof(rec));
	queue_tlsrpt_add(&rec, &s1);
	queue_tlsrpt_add(&rec, &s1);
	queue_tlsrpt_add(&rec, &s2);
}

static void test_json(void)
{
	struct tlsrpt_meta m = {"Org Inc", "tls@org.test", "2024-05-01", "rid-1"};
	json_error_t err;
	json_t *root, *pol, *p, *d;
	char *text;

	fill();
	CHECK_INT(tlsrpt_json(&m, "e.test", &rec, &text), 0);
	root = json_loads(text, 0, &err);
	CHECK(root != NULL, "parse: %s", err.text);
	if (!root)
		return;
	CHECK_STR(json_string_value(json_object_get(root, "organization-name")), "Org Inc");
	CHECK_STR(json_string_value(json_object_get(root, "contact-info")), "tls@org.test");
	CHECK_STR(json_string_value(json_object_get(root, "report-id")), "rid-1");
	d = json_object_get(root, "date-range");
	CHECK_STR(json_string_value(json_object_get(d, "start-datetime")), "2024-05-01T00:00:00Z");
	CHECK_STR(json_string_value(json_object_get(d, "end-datetime")), "2024-05-01T23:59:59Z");
	CHECK_INT(json_array_size(json_object_get(root, "policies")), 1);
	p = json_array_get(json_object_get(root, "policies"), 0);
	pol = json_object_get(p, "policy");
	CHECK_STR(json_string_value(json_object_get(pol, "policy-type")), "sts");
	CHECK_STR(json_string_value(json_object_get(pol, "policy-domain")), "e.test");
	CHECK_INT(json_array_size(json_object_get(pol, "policy-string")), 3);
	CHECK_STR(json_string_value(json_array_get(json_object_get(pol, "policy-string"), 2)),
		  "mx: *.e.test");
	CHECK_INT(json_array_size(json_object_get(pol, "mx-host")), 2);
	d = json_object_get(p, "summary");
	CHECK_INT(json_integer_value(json_object_get(d, "total-successful-session-count")), 2);
	CHECK_INT(json_integer_value(json_object_get(d, "total-failure-session-count")), 1);
	d = json_array_get(json_object_get(p, "failure-details"), 0);
	CHECK_STR(json_string_value(json_object_get(d, "result-type")), "sts-webpki-invalid");
	CHECK_STR(json_string_value(json_object_get(d, "sending-mta-ip")), "192.0.2.1");
	CHECK_STR(json_string_value(json_object_get(d, "receiving-mx-hostname")), "mx2.e.test");
	CHECK_STR(json_string_value(json_object_get(d, "receiving-ip")), "192.0.2.9");
	CHECK_INT(json_integer_value(json_object_get(d, "failed-session-count")), 1);
	json_decref(root);
	/* No policy-string for no-policy-found; a bad day is refused. */
	memset(&rec, 0, sizeof(rec));
	{
		struct queue_tlsrpt_sess s = {QUEUE_TLSRPT_NOPOLICY, "", "mx", 0, "", ""};

		queue_tlsrpt_add(&rec, &s);
	}
	free(text);
	CHECK_INT(tlsrpt_json(&m, "e.test", &rec, &text), 0);
	CHECK(strstr(text, "policy-string") == NULL && strstr(text, "failure-details") == NULL,
	      "%s", text);
	free(text);
	m.day = "2024-5-1";
	CHECK(tlsrpt_json(&m, "e.test", &rec, &text) == -EINVAL && text == NULL, "bad day");
}

static void test_gzip(void)
{
	static const char in[] = "{\"organization-name\": \"x\"}";
	unsigned char *gz, out[256];
	size_t n;
	z_stream z;

	CHECK_INT(tlsrpt_gzip(in, sizeof(in) - 1, &gz, &n), 0);
	CHECK(n > 18 && gz[0] == 0x1f && gz[1] == 0x8b, "gzip magic");
	memset(&z, 0, sizeof(z));
	CHECK_INT(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = gz;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = sizeof(out);
	CHECK_INT(inflate(&z, Z_FINISH), Z_STREAM_END);
	CHECK_INT(z.total_out, sizeof(in) - 1);
	CHECK(memcmp(out, in, sizeof(in) - 1) == 0, "round trip");
	inflateEnd(&z);
	free(gz);
}

static void test_uris(void)
{
	char a[128], host[128], path[128];
	unsigned port;

	CHECK_INT(tlsrpt_mailto_addr("mailto:tlsrpt@rua.test", a, sizeof(a)), 0);
	CHECK_STR(a, "tlsrpt@rua.test");
	CHECK_INT(tlsrpt_mailto_addr("mailto:a%2Bb@x.test?subject=hi", a, sizeof(a)), 0);
	CHECK_STR(a, "a+b@x.test");
	CHECK_INT(tlsrpt_mailto_addr("mailto:a%0D%0Ab@x.test", a, sizeof(a)), -EINVAL);
	CHECK_INT(tlsrpt_mailto_addr("mailto:nobody", a, sizeof(a)), -EINVAL);
	CHECK_INT(tlsrpt_mailto_addr("mailto:<a@b.test>", a, sizeof(a)), -EINVAL);
	CHECK_INT(tlsrpt_https_parse("https://r.test/x/y", host, sizeof(host), &port, path,
				     sizeof(path)),
		  0);
	CHECK_STR(host, "r.test");
	CHECK_STR(path, "/x/y");
	CHECK_INT(port, 443);
	CHECK_INT(tlsrpt_https_parse("https://r.test:8443", host, sizeof(host), &port, path,
				     sizeof(path)),
		  0);
	CHECK_INT(port, 8443);
	CHECK_STR(path, "/");
	CHECK_INT(tlsrpt_https_parse("https://r.test:0/", host, sizeof(host), &port, path,
				     sizeof(path)),
		  -EINVAL);
	CHECK_INT(tlsrpt_https_parse("http://r.test/", host, sizeof(host), &port, path,
				     sizeof(path)),
		  -EINVAL);
	CHECK_INT(tlsrpt_https_parse("https://u@r.test/", host, sizeof(host), &port, path,
				     sizeof(path)),
		  -EINVAL);
}

static void test_mail(void)
{
	static const unsigned char gz[] = {1, 2, 3, 4, 5};
	struct tlsrpt_mail_params m = {"rpt@s.test", "tlsrpt@rua.test", "e.test", "Org",
				       "rid-1", "2024-05-01", "s.test", "2024-05-01.e.test",
				       1714600000, 1714521600, 1714607999, gz, sizeof(gz)};
	struct rl_buf b;

	rl_buf_init(&b, 65536);
	CHECK_INT(tlsrpt_mail(&m, &b), 0);
	CHECK(strstr(b.data, "\r\nSubject: Report Domain: e.test Submitter: Org Report-ID: "
			     "<rid-1>\r\n") != NULL, "%s", b.data);
	CHECK(strstr(b.data, "\r\nTLS-Report-Domain: e.test\r\n") != NULL, "domain header");
	CHECK(strstr(b.data, "\r\nTLS-Report-Submitter: Org\r\n") != NULL, "submitter header");
	CHECK(strstr(b.data, "multipart/report; report-type=\"tlsrpt\"") != NULL, "type");
	CHECK(strstr(b.data, "filename=\"s.test!e.test!1714521600!1714607999!"
			     "2024-05-01.e.test.json.gz\"") != NULL, "filename");
	CHECK(strstr(b.data, "\r\n\r\nAQIDBAU=\r\n") != NULL, "base64 of 1..5");
	rl_buf_fini(&b);
}

int main(void)
{
	test_json();
	test_gzip();
	test_uris();
	test_mail();
	return TEST_DONE();
}
