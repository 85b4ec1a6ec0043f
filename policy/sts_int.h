/*
 * sts_int: what the sts files share and nobody else sees.
 *
 * The text cursor walks one TXT record's character-strings as one text
 * without copying it: the length octets are skipped, and off counts octets
 * of text (what rl_why offsets mean).  It is only ever set on rdata that
 * sts_txt_pick() checked, so every length octet stays within the rdata.
 */
#ifndef STS_INT_H
#define STS_INT_H

#include <stddef.h>

#include "sts.h"

struct sts_cur {
	const unsigned char *p;
	size_t len;  /* octets of rdata */
	size_t pos;  /* next rdata octet */
	size_t left; /* text octets left in the current string, starting at pos */
	size_t off;  /* text octets consumed so far */
};

/* The next text octet, or -1 at the end. */
int sts_cur_peek(struct sts_cur *c);
/* Consume one octet (the one sts_cur_peek() returned; not at the end). */
void sts_cur_skip(struct sts_cur *c);
/* Consume blanks (SP, HTAB). */
void sts_cur_skip_wsp(struct sts_cur *c);
/* Consume tag if the text continues with it; returns 1 if it did. */
int sts_cur_accept(struct sts_cur *c, const char *tag);

/*
 * RFC 8461 3.1, RFC 8460 3: of the n records, the one whose text begins
 * with tag, followed by ";", a blank or the end.  Sets *c to the text right
 * after the tag.  RL_ENOTFOUND if none does, RL_EPARSE if several do or a
 * record's rdata is not a sequence of character-strings.
 */
int sts_txt_pick(const struct sts_txt *rrset, size_t n, const char *tag, struct sts_cur *c,
		 struct rl_why *why);

/*
 * One field "name=value" as the RFCs' grammars have it for both records:
 * on return *name holds the name (at most 32 octets, NUL-terminated) and
 * the cursor stands on the value.  RL_EPARSE if no valid name and "="
 * follow.
 */
#define STS_FIELD_NAME_MAX 32
int sts_cur_field_name(struct sts_cur *c, char name[STS_FIELD_NAME_MAX + 1], struct rl_why *why);
/* Consume an extension value: 1*(%x21-3A / %x3C / %x3E-7E); RL_EPARSE if empty. */
int sts_cur_ext_value(struct sts_cur *c, struct rl_why *why);
/*
 * After a field: blanks, then ";" (consumed, with the blanks after it) or
 * the end.  Returns 1 when a further field may follow, 0 at the end,
 * RL_EPARSE for anything else.
 */
int sts_cur_field_end(struct sts_cur *c, struct rl_why *why);

/* Is s[0..n) a host name: labels of 1-63 letters, digits and inner hyphens, at most STS_NAME_MAX?
 */
int sts_name_valid(const char *s, size_t n);
/* ASCII-only lower case (no locale). */
char sts_lower(char ch);

#endif
