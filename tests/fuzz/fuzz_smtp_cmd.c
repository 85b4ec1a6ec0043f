/* Fuzz the inbound command parsers: line framing, verb split, MAIL, RCPT, HELO. */
#include <stdint.h>
#include <string.h>

#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t linelen, used, off = 0;

	while (off < size) {
		struct smtp_cmd c;
		struct smtp_path path;
		struct smtp_mail_params mp;
		int rc = smtp_line_next(p + off, size - off, &linelen, &used);

		if (rc <= 0)
			break;
		RL_REQUIRE(used == linelen + 2 && used <= size - off);
		if (smtp_cmd_parse(p + off, linelen, &c, NULL) == 0) {
			RL_REQUIRE(c.arg >= p + off && c.arg + c.arglen <= p + off + linelen);
			if (smtp_mail_parse(c.arg, c.arglen, &path, &mp, NULL) == 0)
				RL_REQUIRE(path.len == strlen(path.addr) && path.len < SMTP_PATH_MAX &&
					   (mp.requiretls == 0 || mp.requiretls == 1));
			if (smtp_rcpt_parse(c.arg, c.arglen, &path, NULL) == 0)
				RL_REQUIRE(path.len > 0 && strchr(path.addr, '@') &&
					   path.literal >= SMTP_LIT_NONE && path.literal <= SMTP_LIT_IPV6);
			(void)smtp_helo_valid(c.arg, c.arglen);
		}
		off += used;
	}
	return 0;
}
