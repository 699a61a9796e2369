/* Large pod files served lazily through a FUSE file system that the
 * supervisor itself serves over /dev/fuse (the kernel protocol of
 * <linux/fuse.h>, no libfuse). Each opened pod file is one node of a flat
 * mount, <dir>/<id>: its attributes are the pod's (size, mode, owner,
 * times, nlink, inode number), and its content is read from the agent in
 * 64 KiB chunks when the kernel asks for it, with read-ahead for
 * sequential readers and a bounded chunk cache. The /dev/fuse fd is served
 * from the event loop and never blocks it.
 *
 * Invariant: nothing in the supervisor may touch a path under the mount
 * (stat, open, readdir, rm -r): the kernel would send the request to this
 * very loop, which is then waiting for itself. */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include "common/evloop.h"
#include "session/session.h"

struct fs_fuse;
struct stat;

/* Mount an empty file system at dir (created, mode 0700) and serve it
 * from l. With CAP_SYS_ADMIN the supervisor first moves to a mount
 * namespace of its own (slave of the current one), which the program
 * inherits: the mount is invisible outside the run and goes with its last
 * process, even after a SIGKILL. Without, the setuid fusermount3 mounts
 * it (auto_unmount: it goes when we do). Returns 0, or -errno when FUSE
 * is not available here (no /dev/fuse, no way to mount); *ret_why then
 * says why in a few words. */
int fs_fuse_new(struct session *s, struct evloop *l, const char *dir, struct fs_fuse **ret,
                const char **ret_why);
/* Abort the connection, unmount (detached) and remove dir. NULL is fine. */
void fs_fuse_free(struct fs_fuse *f);
const char *fs_fuse_dir(const struct fs_fuse *f);

/* A regular pod file opened for reading, with its agent handle (taken
 * over: closed when the program closes its last fd of the node) and its
 * stat. Returns the node's path for the program (malloc'd), or -errno
 * (-EMFILE past the node limit: serve the file another way). */
int fs_fuse_add(struct fs_fuse *f, const char *remote, uint32_t handle, const struct stat *st,
                char **ret_path);
/* Whether local names the mount or something under it (by name only). */
bool fs_fuse_owns(const struct fs_fuse *f, const char *local);
/* If local names a live node ("<dir>/<id>", by name only: the mount is
 * never touched), its pod path (malloc'd), else NULL. */
char *fs_fuse_remote_of(const struct fs_fuse *f, const char *local);

/* Counters for tests and benchmarks. */
struct fs_fuse_stats {
	uint64_t reads;      /* READ requests answered */
	uint64_t chunks;     /* chunks fetched from the agent */
	uint64_t prefetched; /* of them, read ahead */
	size_t nodes;        /* live nodes */
};
void fs_fuse_get_stats(const struct fs_fuse *f, struct fs_fuse_stats *ret);
