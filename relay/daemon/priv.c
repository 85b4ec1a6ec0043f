/*
 * priv: running as the `user` of the configuration (priv.h).
 */
#define _GNU_SOURCE /* setresuid, getresuid, getgrouplist, setgroups */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h> /* PATH_MAX */
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "priv.h"

/* The files LMDB keeps in queue_dir, and the running relay's claim
 * (queue_run.c); spill files are unlinked at birth. */
static const char *const priv_queue_files[] = {"data.mdb", "lock.mdb", "serve.lock"};

static int priv_fail(char *err, size_t errlen, int rc, const char *fmt, ...) RL_PRINTF(4, 5);

static int priv_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

void priv_user_text(uid_t uid, char *out, size_t size)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		snprintf(out, size, "%s (uid %lu)", pw.pw_name, (unsigned long)uid);
	else
		snprintf(out, size, "uid %lu", (unsigned long)uid);
}

/*
 * mkdir -p as root: missing parents 0755 (whatever the umask, so that the
 * user can reach the queue through them), the directory itself 0700.
 */
static int priv_mkdirs(const char *dir)
{
	char path[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		int last = i == n;

		if (!last && path[i] != '/')
			continue;
		path[i] = '\0';
		if (mkdir(path, last ? 0700 : 0755) == 0) {
			if (!last && chmod(path, 0755) < 0)
				return -errno;
		} else if (errno != EEXIST) {
			return -errno;
		}
		if (!last)
			path[i] = '/';
	}
	return 0;
}

/*
 * The user may own it, and before the drop root too; anyone else is
 * refused, by name.  name: an entry of path, or NULL for path itself.
 */
static int priv_check_owner(const char *path, const char *name, uid_t owner, uid_t uid, int root_ok,
			    char *err, size_t errlen)
{
	char have[128], want[128];

	if (owner == uid || (root_ok && owner == 0))
		return 0;
	priv_user_text(owner, have, sizeof(have));
	priv_user_text(uid, want, sizeof(want));
	return priv_fail(err, errlen, -EPERM,
			 "queue_dir: %s%s%s is owned by %s, expected %s%s; refusing to use it "
			 "(chown -R %lu it, or set queue_dir to another directory)",
			 path, name ? "/" : "", name ? name : "", have, want,
			 root_ok ? " or root" : "", (unsigned long)uid);
}

static int priv_is_queue_file(const char *name)
{
	for (size_t i = 0; i < sizeof(priv_queue_files) / sizeof(priv_queue_files[0]); i++)
		if (strcmp(name, priv_queue_files[i]) == 0)
			return 1;
	return 0;
}

/* How priv_scan() looks at the entries of queue_dir. */
struct priv_scan {
	const char *dir;
	uid_t uid;
	gid_t gid;
	int as_root;  /* before the drop: root's entries pass the owner check */
	int root_dir; /* the directory is root's: nothing but the queue's files */
	int fix;      /* hand root's queue files to the user */
	char *err;
	size_t errlen;
};

/*
 * A root-owned directory is handed to the user only when it holds nothing
 * but a queue (or nothing at all: one just made, or an empty one).  A
 * queue_dir naming any other directory, /etc/tlsrelay by a typo or a
 * directory of root's files, must not become the property of the user
 * that faces the network; it is refused, by the entry that does not
 * belong, and left as it is.
 */
static int priv_entry_allowed(const struct priv_scan *s, const char *name, const struct stat *st)
{
	if (!s->root_dir || (priv_is_queue_file(name) && S_ISREG(st->st_mode) && st->st_nlink == 1))
		return 0;
	return priv_fail(s->err, s->errlen, -ENOTEMPTY,
			 "queue_dir: %s is owned by root and holds %s/%s, which is not a file of "
			 "the queue (only data.mdb, lock.mdb and serve.lock, plain files with one "
			 "link, may be there); refusing to use it (set queue_dir to a new or empty "
			 "directory)",
			 s->dir, s->dir, name);
}

/*
 * Chown one of root's queue files to the user, through a descriptor of
 * the very entry that was checked (O_PATH: no read access needed, nothing
 * opened on a device; the entry cannot be swapped for a link meanwhile).
 */
static int priv_chown_entry(const struct priv_scan *s, int dfd, const char *name,
			    const struct stat *seen)
{
	struct stat st;
	int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return priv_fail(s->err, s->errlen, -errno, "queue_dir %s/%s: %s", s->dir, name,
				 strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_dev != seen->st_dev || st.st_ino != seen->st_ino ||
	    !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != 0)
		rc = priv_fail(s->err, s->errlen, -EAGAIN,
			       "queue_dir %s/%s changed while it was checked", s->dir, name);
	else if (fchownat(fd, "", s->uid, s->gid, AT_EMPTY_PATH) < 0)
		rc = priv_fail(s->err, s->errlen, -errno, "cannot chown %s/%s to uid %lu: %s",
			       s->dir, name, (unsigned long)s->uid, strerror(errno));
	close(fd);
	return rc;
}

/*
 * One entry: owner checked without following links.  As root (as_root),
 * root's own queue files (a queue opened by root before `user` was set,
 * or given back to root by systemd) become the user's when fix says so;
 * a file with a second link could be one outside the queue, so it is not
 * chowned.  As the user, they must be the user's by then; anything else of
 * root's in the user's directory does no harm and stays.
 */
static int priv_entry(const struct priv_scan *s, int dfd, const char *name)
{
	struct stat st;
	int q = priv_is_queue_file(name), rc;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT) /* gone meanwhile (a spill file) */
			return 0;
		return priv_fail(s->err, s->errlen, -errno, "queue_dir %s/%s: %s", s->dir, name,
				 strerror(errno));
	}
	rc = priv_entry_allowed(s, name, &st);
	if (rc == 0)
		rc = priv_check_owner(s->dir, name, st.st_uid, s->uid, s->as_root || !q, s->err,
				      s->errlen);
	if (rc == 0 && s->fix && s->as_root && q && st.st_uid == 0 && S_ISREG(st.st_mode) &&
	    st.st_nlink == 1)
		rc = priv_chown_entry(s, dfd, name, &st);
	return rc;
}

static int priv_scan(int dfd, const struct priv_scan *s)
{
	int fd = dup(dfd), rc = 0;
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;

	if (!d) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return priv_fail(s->err, s->errlen, rc, "queue_dir %s: %s", s->dir, strerror(-rc));
	}
	/* The duplicate shares dfd's offset: an earlier scan left it at the end. */
	rewinddir(d);
	while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			rc = priv_entry(s, dfd, e->d_name);
	}
	if (rc == 0 && errno != 0)
		rc = priv_fail(s->err, s->errlen, -errno, "queue_dir %s: %s", s->dir,
			       strerror(errno));
	closedir(d);
	return rc;
}

/*
 * The directory itself, root's and found to hold only the queue: chmod
 * while root's (no CAP_FOWNER needed), then chown.
 */
static int priv_own_dir(int dfd, const char *dir, const struct stat *st, uid_t uid, gid_t gid,
			char *err, size_t errlen)
{
	if ((st->st_mode & 07777) != 0700 && fchmod(dfd, 0700) < 0)
		return priv_fail(err, errlen, -errno, "cannot chmod 0700 %s: %s", dir,
				 strerror(errno));
	if (fchown(dfd, uid, gid) < 0)
		return priv_fail(err, errlen, -errno, "cannot chown %s to uid %lu: %s", dir,
				 (unsigned long)uid, strerror(errno));
	return 0;
}

/* The directory, not through a link (a link there could point anywhere). */
static int priv_lstat_dir(const char *dir, struct stat *st, char *err, size_t errlen)
{
	if (lstat(dir, st) < 0)
		return priv_fail(err, errlen, -errno, "queue_dir %s: %s", dir, strerror(errno));
	if (S_ISLNK(st->st_mode))
		return priv_fail(err, errlen, -ELOOP,
				 "queue_dir %s is a symbolic link; name the directory itself", dir);
	if (!S_ISDIR(st->st_mode))
		return priv_fail(err, errlen, -ENOTDIR, "queue_dir %s is not a directory", dir);
	return 0;
}

/* Open what priv_lstat_dir() saw, and only that. */
static int priv_open_dir(const char *dir, const struct stat *seen, char *err, size_t errlen)
{
	struct stat st;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (dfd < 0)
		return priv_fail(err, errlen, -errno, "queue_dir %s: %s", dir, strerror(errno));
	if (fstat(dfd, &st) < 0 || st.st_dev != seen->st_dev || st.st_ino != seen->st_ino) {
		close(dfd);
		return priv_fail(err, errlen, -EAGAIN, "queue_dir %s changed while it was checked",
				 dir);
	}
	return dfd;
}

int priv_queue_own(const char *dir, uid_t uid, gid_t gid, int create, char *err, size_t errlen)
{
	struct priv_scan s = {dir, uid, gid, 1, 0, 0, err, errlen};
	struct stat st;
	int dfd, rc;

	/* A directory made here is root's and empty: taken over below. */
	if (create && (rc = priv_mkdirs(dir)) < 0)
		return priv_fail(err, errlen, rc, "cannot create queue_dir %s: %s", dir,
				 strerror(-rc));
	if (!create && lstat(dir, &st) < 0 && errno == ENOENT)
		return PRIV_QUEUE_USER;
	rc = priv_lstat_dir(dir, &st, err, errlen);
	if (rc == 0)
		rc = priv_check_owner(dir, NULL, st.st_uid, uid, 1, err, errlen);
	if (rc < 0)
		return rc;
	dfd = priv_open_dir(dir, &st, err, errlen);
	/* Root without CAP_DAC_OVERRIDE (a service manager's bounding set)
	 * cannot read the user's 0700 directory: the user checks it. */
	if (dfd == -EACCES && st.st_uid == uid)
		return PRIV_QUEUE_USER;
	if (dfd < 0)
		return dfd;
	s.root_dir = st.st_uid == 0;
	/* Everything is checked before anything changes: a refusal found at
	 * the last entry must leave the first ones as they were. */
	rc = priv_scan(dfd, &s);
	s.fix = create;
	if (rc == 0 && create)
		rc = priv_scan(dfd, &s);
	if (rc == 0 && create && s.root_dir)
		rc = priv_own_dir(dfd, dir, &st, uid, gid, err, errlen);
	close(dfd);
	if (rc < 0)
		return rc;
	return !create && s.root_dir ? PRIV_QUEUE_ROOT : PRIV_QUEUE_USER;
}

int priv_queue_check(const char *dir, uid_t uid, int fix, char *err, size_t errlen)
{
	struct priv_scan s = {dir, uid, 0, 0, 0, 0, err, errlen};
	struct stat st;
	int dfd, rc;

	if (lstat(dir, &st) < 0 && errno == ENOENT)
		return 0;
	rc = priv_lstat_dir(dir, &st, err, errlen);
	if (rc == 0)
		rc = priv_check_owner(dir, NULL, st.st_uid, uid, 0, err, errlen);
	if (rc < 0)
		return rc;
	dfd = priv_open_dir(dir, &st, err, errlen);
	if (dfd < 0)
		return dfd;
	if (fix && (st.st_mode & 07777) != 0700 && fchmod(dfd, 0700) < 0)
		rc = priv_fail(err, errlen, -errno, "cannot chmod 0700 %s: %s", dir,
			       strerror(errno));
	if (rc == 0)
		rc = priv_scan(dfd, &s);
	close(dfd);
	return rc;
}

/* The groups of name with gid among them, as login(1) and systemd set them. */
static int priv_groups(const char *name, gid_t gid, gid_t **out, int *n)
{
	int want = 32;

	for (int tries = 0; tries < 4; tries++) {
		gid_t *g = calloc((size_t)want, sizeof(*g));
		int got = want;

		if (!g)
			return -ENOMEM;
		if (getgrouplist(name, gid, g, &got) >= 0) {
			*out = g;
			*n = got;
			return 0;
		}
		free(g);
		if (got <= want) /* no growth asked: a lookup failure */
			return -ENOENT;
		want = got;
	}
	return -ENOENT;
}

static int priv_has(const gid_t *g, int n, gid_t x)
{
	for (int i = 0; i < n; i++)
		if (g[i] == x)
			return 1;
	return 0;
}

/* The kernel keeps groups sorted: compare as sets. */
static int priv_groups_match(const gid_t *want, int nwant)
{
	int n = getgroups(0, NULL), nhave, ok = 1;
	gid_t *have = n < 0 ? NULL : calloc((size_t)n + 1, sizeof(*have));

	if (!have)
		return 0;
	nhave = getgroups(n, have);
	if (nhave < 0)
		ok = 0;
	for (int i = 0; ok && i < nhave; i++)
		ok = priv_has(want, nwant, have[i]);
	for (int i = 0; ok && i < nwant; i++)
		ok = priv_has(have, nhave, want[i]);
	free(have);
	return ok;
}

/* Did it take, and is there no way back to root? */
static int priv_verify(uid_t uid, gid_t gid, const gid_t *g, int ng, char *err, size_t errlen)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return priv_fail(err, errlen, -errno, "cannot read back the user and group IDs: %s",
				 strerror(errno));
	if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid)
		return priv_fail(err, errlen, -EPERM,
				 "dropping privileges did not take: uid %lu/%lu/%lu gid "
				 "%lu/%lu/%lu, want %lu and %lu",
				 (unsigned long)ru, (unsigned long)eu, (unsigned long)su,
				 (unsigned long)rg, (unsigned long)eg, (unsigned long)sg,
				 (unsigned long)uid, (unsigned long)gid);
	if (!priv_groups_match(g, ng))
		return priv_fail(err, errlen, -EPERM,
				 "dropping privileges did not take: supplementary groups differ");
	if (setuid(0) == 0 || setgid(0) == 0)
		return priv_fail(err, errlen, -EPERM,
				 "dropping privileges did not take: root can be regained");
	return 0;
}

int priv_drop(const char *name, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	gid_t *g = NULL;
	int ng = 0, rc = priv_groups(name, gid, &g, &ng);

	if (rc < 0)
		return priv_fail(err, errlen, rc, "cannot find the groups of user %s", name);
	/* Groups and group first: once the user ID changes, they cannot. */
	if (setgroups((size_t)ng, g) < 0)
		rc = priv_fail(err, errlen, -errno, "setgroups for user %s: %s", name,
			       strerror(errno));
	else if (setresgid(gid, gid, gid) < 0)
		rc = priv_fail(err, errlen, -errno, "setresgid(%lu) for user %s: %s",
			       (unsigned long)gid, name, strerror(errno));
	else if (setresuid(uid, uid, uid) < 0)
		rc = priv_fail(err, errlen, -errno, "setresuid(%lu) for user %s: %s",
			       (unsigned long)uid, name, strerror(errno));
	else
		rc = priv_verify(uid, gid, g, ng, err, errlen);
	free(g);
	return rc;
}
