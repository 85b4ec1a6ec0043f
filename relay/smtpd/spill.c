/*
 * spill: unlinked temporary files for message bodies (see spill.h).
 */
#define _GNU_SOURCE /* O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "spill.h"

#define SPILL_PATH_MAX 4096

void spill_init(struct spill *sp)
{
	sp->fd = -1;
	sp->len = 0;
}

/* Fallback for file systems without O_TMPFILE: a private name, unlinked at once. */
static int spill_mkstemp(const char *dir)
{
	char path[SPILL_PATH_MAX];
	int fd, n = snprintf(path, sizeof(path), "%s/.spill.XXXXXX", dir);

	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		return -errno;
	if (unlink(path) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

int spill_open(struct spill *sp, const char *dir)
{
	int fd = -1;

#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
#endif
	if (fd < 0)
		fd = spill_mkstemp(dir);
	if (fd < 0)
		return fd;
	sp->fd = fd;
	sp->len = 0;
	return 0;
}

int spill_write(struct spill *sp, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(sp->fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= (size_t)w;
		sp->len += (uint64_t)w;
	}
	return 0;
}

void spill_close(struct spill *sp)
{
	if (sp->fd >= 0)
		close(sp->fd);
	spill_init(sp);
}
