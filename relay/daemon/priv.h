/*
 * priv: running as the `user` of the configuration when started as root.
 *
 * The daemon (serve.c) and the commands that open the queue (cli) share
 * the same three steps, in this order:
 *
 *   priv_queue_own()   as root: make queue_dir if asked, refuse it when it
 *                      or anything in it belongs to a third user, hand
 *                      root-owned ones (the directory, data.mdb,
 *                      lock.mdb) to the user;
 *   priv_drop()        setgroups/setresgid/setresuid to the user for good,
 *                      then check that it took and cannot be undone;
 *   priv_queue_check() as the user: queue_dir and its entries the user's,
 *                      the directory mode 0700; the queue is opened after
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

/*
 * queue_dir for the user uid:gid.  create: make it first (missing parents
 * 0755 and root's, as `install -d`; the directory itself 0700).  Without
 * create a missing directory is no error (opening the queue will say).
 * Refused, naming the path, its owner and the expected owners: the
 * directory or an entry in it owned by neither root nor uid.  Then the
 * directory and the queue's files (data.mdb, lock.mdb), if root's, are
 * chowned to uid:gid; the directory is chmod 0700 first while root owns
 * it.  queue_dir itself must not be a symbolic link; inside it links are
 * never followed, and a file with more than one link is left alone.  When
 * root cannot read the user's directory (no CAP_DAC_OVERRIDE), its entries
 * are left to priv_queue_check().  Returns 0 or a negative errno.
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
 * (refused as above otherwise); the directory is made mode 0700.  Root without
 * CAP_DAC_OVERRIDE cannot look into the user's 0700 directory, so this is
 * where such a relay checks its content.  0 or a negative errno.
 */
int priv_queue_check(const char *dir, uid_t uid, char *err, size_t errlen) RL_WUR;

/* "NAME (uid N)" or "uid N" for messages. */
void priv_user_text(uid_t uid, char *out, size_t size);

#endif
