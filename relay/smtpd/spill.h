/*
 * spill: where the part of an arriving message beyond smtpd_spill_threshold
 * waits for the commit: an unlinked temporary file in queue_dir (O_TMPFILE,
 * else mkstemp + unlink), mode 0600, never synced (the commit copies it into
 * LMDB with queue_msg_insert_fd() and syncs that).  It vanishes with its last
 * descriptor, so a crash leaves nothing behind.
 *
 * Writes are small (one input buffer, at most 64 KiB) synchronous write()s on
 * the loop thread: they go to the page cache without fsync, which costs about
 * a memcpy.  uv_fs_write() would need the buffer kept and the session paused
 * per write, for no gain unless the kernel throttles dirty pages, and then
 * the commit of that data stalls anyway.  The worker thread only reads the
 * file (pread, no offset shared) while the loop leaves it alone.
 *
 * Errors: negated errno values.
 */
#ifndef SPILL_H
#define SPILL_H

#include <stddef.h>
#include <stdint.h>

#include "rl.h"

struct spill {
	int fd;       /* -1: not open */
	uint64_t len; /* bytes written */
};

/* An unopened spill (fd -1); call before spill_close() may run. */
void spill_init(struct spill *sp);
/* Create the unlinked file in dir. */
int spill_open(struct spill *sp, const char *dir) RL_WUR;
/* Append n bytes (all of them, or an error). */
int spill_write(struct spill *sp, const void *p, size_t n) RL_WUR;
/* Close (the file disappears) and reinitialise; no-op when not open. */
void spill_close(struct spill *sp);

#endif
