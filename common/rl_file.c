/*
 * rl_file: reading a whole file into a bounded buffer; the only I/O in
 * common/.  Every file tlsrelay reads whole (configuration, policy file,
 * certificates and trust anchors) comes through here, so that the same
 * rules hold for all of them.
 */
#include "rl.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The kind of a file that is not a regular one, for the message.  Such a
 * file is refused: a FIFO would block the reader until a writer came (the
 * daemon at start or reload, or any command), a device could feed it
 * without end.
 */
static const char *file_kind(mode_t m)
{
	return S_ISFIFO(m)   ? "not a regular file (a FIFO)"
	       : S_ISCHR(m)  ? "not a regular file (a character device)"
	       : S_ISBLK(m)  ? "not a regular file (a block device)"
	       : S_ISDIR(m)  ? "not a regular file (a directory)"
	       : S_ISSOCK(m) ? "not a regular file (a socket)"
			     : "not a regular file";
}

/* A descriptor for path if it is a regular file, else < 0 with why filled. */
static int open_regular(const char *path, struct rl_why *why)
{
	struct stat st;
	int fd;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer (the type is
	 * only known once it is open); O_NOCTTY: a terminal named here must
	 * not become our controlling terminal. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return rl_fail(why, -errno, "cannot open file", 0);
	if (fstat(fd, &st) < 0) {
		int rc = -errno;

		close(fd);
		return rl_fail(why, rc, "cannot read file", 0);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return rl_fail(why, RL_ECONFIG, file_kind(st.st_mode), 0);
	}
	return fd;
}

int rl_buf_read_file(struct rl_buf *b, const char *path, size_t max, struct rl_why *why)
{
	char chunk[8192];
	size_t got = 0, want;
	ssize_t r;
	int fd, rc = 0;

	fd = open_regular(path, why);
	if (fd < 0)
		return fd;
	for (;;) {
		/* Never ask for more than max in all; at max, one more byte
		 * tells a file of exactly max bytes from a longer one. */
		want = max - got < sizeof(chunk) ? max - got : sizeof(chunk);
		r = read(fd, chunk, want ? want : 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = rl_fail(why, -errno, "cannot read file", got);
		else if (r > 0 && want == 0)
			rc = rl_fail(why, RL_ETOOBIG, "file too large", max);
		else if (r > 0)
			rc = rl_buf_append(b, chunk, (size_t)r);
		if (r <= 0 || rc < 0)
			break;
		got += (size_t)r;
	}
	if (rc == RL_ETOOBIG || rc == -ENOMEM)
		rl_fail(why, rc, rc == -ENOMEM ? "out of memory" : "file too large", got);
	close(fd);
	return rc;
}
