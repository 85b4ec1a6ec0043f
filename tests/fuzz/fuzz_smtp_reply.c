/*
 * Fuzz the outbound reply assembler and the EHLO keyword parser: what a
 * hostile MX sends.  Other MTAs had their bugs exactly here (a malformed
 * multi-line reply; a bare enhanced status code with no text read past its
 * end), so the invariants are checked, not only "no crash".
 */
#include <stdint.h>
#include <string.h>

#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t off = 0;

	while (off < size) {
		struct smtp_reply r;
		struct smtp_ehlo e;
		char line[600];
		size_t used = 0;
		int rc = smtp_reply_parse(p + off, size - off, &r, &used);

		if (rc <= 0)
			break;
		RL_REQUIRE(used > 0 && used <= size - off);
		RL_REQUIRE(r.code >= 200 && r.code <= 599);
		RL_REQUIRE(r.textlen < sizeof(r.text) && r.text[r.textlen] == '\0');
		RL_REQUIRE(strlen(r.enh) < sizeof(r.enh));
		RL_REQUIRE(r.nlines >= 1 && r.nlines <= SMTP_REPLY_LINES_MAX);
		for (size_t i = 0; i < r.textlen; i++)
			RL_REQUIRE(r.text[i] == '\n' || ((unsigned char)r.text[i] >= 0x20 &&
							 r.text[i] != 0x7f));
		smtp_reply_oneline(&r, line, sizeof(line));
		RL_REQUIRE(strlen(line) < sizeof(line) && !strchr(line, '\r') && !strchr(line, '\n'));
		smtp_ehlo_parse(&r, &e);
		off += used;
	}
	return 0;
}
