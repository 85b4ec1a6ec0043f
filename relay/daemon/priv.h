/*
 * priv: running as the `user` of the configuration when started as root.
 *
 * The daemon (serve.c) and the commands that open the queue (cli) share
 * the same three steps, in this order:
 *
 *   priv_queue_own()   as root: make queue_dir if asked, refuse it when it
 *                      or anything in it belongs to a third user, or when
 *                      it is root's and holds anything but the queue's
 *                      files; when the open may write, hand root's ones
 *                      (the directory, data.mdb, lock.mdb, serve.lock) to
 *                      the user; a read-only open changes nothing and
 *                      reads a root-owned queue as root;
 *   priv_drop()        setgroups/setresgid/setresuid to the user for good,
 *                      then check that it took and cannot be undone;
 *   priv_queue_check() as the user: queue_dir and its entries the user's,
 *                      the directory made mode 0700 (not on read-only
 *                      opens); the queue is opened after
 *                      this, as the user (root may lack CAP_DAC_OVERRIDE
 *                      and then cannot enter the user's 0700 directory).
 *
 * Only what root needs (CAP_CHOWN for the chowns, CAP_SETUID/CAP_SETGID
 * for the switch) is used, so a service manager may bound the
 * capabilities to those (and CAP_NET_BIND_SERVICE for the listeners); in
 * particular no chmod of a file root does not own (CAP_FOWNER) and no
 * access past file modes (CAP_DAC_OVERRIDE).
 *
 * None of these log: on failure they return a negative code and put one
 * line (without a trailing newline) in err, which the caller logs or
 * prints.  They are called before the loop runs (not thread-safe).
 */
#ifndef PRIV_H
#define PRIV_H

#include <stddef.h>
#include <sys/types.h>

#include "rl.h"

/* What priv_queue_own() found (0 or more). */
enum {
	PRIV_QUEUE_USER = 0, /* the user's (now), or missing: priv_drop() next */
	PRIV_QUEUE_ROOT = 1, /* root's, read-only open: read it as root, no drop */
};

/*
 * queue_dir for the user uid:gid.  create: the caller may write (serve,
 * sendmail, queue changes); make the directory first (missing parents
 * 0755 and root's, as `install -d`; the directory itself 0700).  Without
 * create a missing directory is no error (opening the queue will say).
 * Refused, naming the path, its owner and the expected owners: the
 * directory or an entry in it owned by neither root nor uid.  Refused too,
 * naming the entry: a root-owned directory holding anything but the
 * queue's files (data.mdb, lock.mdb, serve.lock as plain files with one
 * link), so that a queue_dir naming some other directory of root's is
 * never given away.  With create, a root-owned directory (one just made,
 * an empty one, or a queue of root's: made before `user` was set, or
 * given back to root by systemd's StateDirectory= at each start) is
 * chmod 0700 and chowned to uid:gid, and root's queue files in the
 * directory are chowned to uid:gid (not one with a second link).  Without
 * create nothing is changed.  queue_dir itself must not be a symbolic
 * link; inside it links are never followed.  When root cannot read the
 * user's directory (no CAP_DAC_OVERRIDE), its entries are left to
 * priv_queue_check().  Returns PRIV_QUEUE_USER, PRIV_QUEUE_ROOT (only
 * without create: the directory is root's, to be read as root) or a
 * negative errno.
 */
int priv_queue_own(const char *dir, uid_t uid, gid_t gid, int create, char *err,
		   size_t errlen) RL_WUR;

/*
 * Become name (uid, primary group gid) for good: the supplementary groups
 * of name (getgrouplist, as login and systemd give them), then
 * setresgid and setresuid.  Then verify: real, effective and saved IDs
 * are the target's, the groups are those set, and setuid(0)/setgid(0)
 * fail.  Any failure returns a negative code; the caller must not run on.
 */
int priv_drop(const char *name, uid_t uid, gid_t gid, char *err, size_t errlen) RL_WUR;

/*
 * As the user uid, after priv_drop(): queue_dir (if it exists) and the
 * queue's files must be the user's, other entries the user's or root's
 * (refused as above otherwise); with fix (an open that may write) the
 * directory is made mode 0700.  Root without
 * CAP_DAC_OVERRIDE cannot look into the user's 0700 directory, so this is
 * where such a relay checks its content.  0 or a negative errno.
 */
int priv_queue_check(const char *dir, uid_t uid, int fix, char *err, size_t errlen) RL_WUR;

/* "NAME (uid N)" or "uid N" for messages. */
void priv_user_text(uid_t uid, char *out, size_t size);

#endif
