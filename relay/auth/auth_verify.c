/*
 * auth_verify: checking a password against a stored crypt(3) hash with
 * libxcrypt, and reading the password file.
 *
 * crypt_rn() writes into a struct crypt_data of our own (thread-safe: the
 * check runs on libuv's worker threads); the result is compared with the
 * stored hash in constant time, so the compare leaks nothing of how much
 * matched.  The struct holds the password-derived output and is wiped
 * before it is freed.
 */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth.h"

/*
 * Checked when there is no setting at all (an empty table).  An unknown
 * user of a loaded table is checked against auth_db_setting()'s made-up
 * setting instead, which costs what a real entry of that file costs.
 */
static const char auth_dummy_hash[] =
    "$y$j9T$olqQmJ4PVZL9ixK9pBLNm/$vSbNvaLsEOWHVke0CRwkBY/HBRK.9XMEc1NApY6iVV9";

static int const_eq(const char *a, size_t an, const char *b, size_t bn)
{
	unsigned char d = an != bn;
	size_t n = an < bn ? an : bn;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

int auth_verify(const char *pass, size_t n, const char *hash)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	char pw[AUTH_PASS_MAX + 1];
	const char *setting = hash ? hash : auth_dummy_hash;
	int ok = 0;

	if (!cd)
		return 0;
	/* crypt wants a C string: a password holding NUL or over the cap never matches. */
	if (n <= AUTH_PASS_MAX && !memchr(pass, '\0', n)) {
		memcpy(pw, pass, n);
		pw[n] = '\0';
		if (crypt_rn(pw, setting, cd, (int)sizeof(*cd)) && cd->output[0] != '*')
			ok = const_eq(cd->output, strlen(cd->output), setting, strlen(setting));
		rl_wipe(pw, n);
	}
	rl_wipe(cd, sizeof(*cd));
	free(cd);
	return hash ? ok : 0;
}

int auth_db_load(const char *path, struct auth_db **out, int *others_read, char *err,
		 size_t errsize)
{
	struct rl_buf b;
	struct rl_why why = {0, NULL, 0};
	struct stat st;
	unsigned line = 0;
	int rc;

	*out = NULL;
	*others_read = stat(path, &st) == 0 && (st.st_mode & S_IROTH);
	rl_buf_init(&b, AUTH_FILE_MAX);
	rc = rl_buf_read_file(&b, path, AUTH_FILE_MAX, &why);
	if (rc < 0) {
		if (rc > -4096) /* a negated errno value */
			snprintf(err, errsize, "%s: %s: %s", path,
				 why.reason ? why.reason : "cannot read file", strerror(-rc));
		else
			snprintf(err, errsize, "%s: %s", path,
				 why.reason ? why.reason : rl_strerror(rc));
		rl_buf_fini(&b);
		return rc;
	}
	why = (struct rl_why){0, NULL, 0};
	rc = auth_db_parse(b.data ? b.data : "", b.len, out, &line, &why);
	/* The file holds hashes: no copy of it stays in freed memory. */
	rl_wipe(b.data, b.len);
	rl_buf_fini(&b);
	if (rc < 0 && line)
		snprintf(err, errsize, "%s:%u: %s", path, line,
			 why.reason ? why.reason : rl_strerror(rc));
	else if (rc < 0)
		snprintf(err, errsize, "%s: %s", path, why.reason ? why.reason : rl_strerror(rc));
	return rc;
}
