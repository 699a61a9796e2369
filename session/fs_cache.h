/* The run's private copy of the pod files the program uses. The cache
 * mirrors the pod's tree by name under one directory (mode 0700): the pod's
 * /srv/a.txt is <dir>/srv/a.txt. The program's path is rewritten to the
 * copy, so every consumer (read, mmap, execve, getdents64 on a directory
 * whose listing was copied) works on a real file. Large regular files
 * may instead be served lazily through the FUSE server (fs_cache_set_lazy,
 * session/fuse.h). Each call waits for the agent (session_fs_*), except
 * fs_cache_open_read_async, which the read-only opens use. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include "common/evloop.h"
#include "session/session.h"

struct fs_cache;
struct fs_fuse;
struct stat;

/* Create dir (it must not exist; mode 0700) for the cache. */
int fs_cache_new(struct session *s, const char *dir, struct fs_cache **ret);
/* Write back what is still dirty, then remove the directory. */
void fs_cache_free(struct fs_cache *c);
const char *fs_cache_dir(const struct fs_cache *c);

/* The copy's path for a remote path (malloc'd); nothing is fetched. */
char *fs_cache_path(const struct fs_cache *c, const char *remote);
/* If local names the cache or something in it, the remote path it stands
 * for (malloc'd), else NULL. */
char *fs_cache_remote_of(const struct fs_cache *c, const char *local);

/* As fs_cache_remote_of, and also for a node of the FUSE mount of large
 * files (by name: for readlink of /proc/PID/fd/N, never a path to open). */
char *fs_cache_link_remote_of(const struct fs_cache *c, const char *local);

/* Make the copy of remote current for reading: a regular file's content
 * (fetched again only when the pod's size or mtime changed; its mode and
 * times are the pod's, with read permission for us), a directory's
 * listing (entries as empty files, directories and symlinks, so getdents64
 * shows names and types). Returns 0 with the pod's stat, or -errno as the
 * pod's open failed. */
int fs_cache_read(struct fs_cache *c, const char *remote, bool dir_only, struct stat *ret_st);
/* Serve regular files of at least min_size bytes opened for reading
 * through the FUSE server f (read lazily, session/fuse.h) instead of
 * fetching them whole; f stays the caller's. With f NULL, min_size only
 * says which files fs_cache_open_read reports as fetched whole. l is the
 * loop that asynchronous opens defer work to (required for them). */
void fs_cache_set_lazy(struct fs_cache *c, struct evloop *l, struct fs_fuse *f, uint64_t min_size);

/* fs_cache_open_read without blocking the loop: the pod's file is opened
 * and copied with asynchronous requests, and cb runs once when done (from
 * the event loop, never from inside this call) with err (0, 1 or -errno
 * as fs_cache_open_read returns) and the path to open (NULL on error;
 * valid during the call only). A directory's listing is still copied
 * with blocking calls, from a timer of the loop. Returns 0 and the
 * operation in *ret (for fs_cache_op_cancel until cb ran), or -errno
 * (cb will not run). */
struct fs_cache_op;
typedef void (*fs_cache_open_cb)(void *data, int err, const char *path);
int fs_cache_open_read_async(struct fs_cache *c, const char *remote, fs_cache_open_cb cb,
                             void *data, struct fs_cache_op **ret);
/* Stop an operation whose callback has not run; NULL is fine. */
void fs_cache_op_cancel(struct fs_cache_op *op);
/* Open remote for reading: as fs_cache_read, and return the path the
 * program should open instead (malloc'd): the copy, or the file's node on
 * the FUSE mount. Returns 0, 1 when a file of at least min_size was
 * fetched whole (no FUSE), or -errno. */
int fs_cache_open_read(struct fs_cache *c, const char *remote, bool dir_only, char **ret_path);
/* Whether local is on the FUSE mount (by name; never touches it). */
bool fs_cache_is_lazy(const struct fs_cache *c, const char *local);
/* Open remote for writing in the pod (flags: O_WRONLY/O_RDWR, O_CREAT,
 * O_EXCL, O_TRUNC; mode for creation), make the copy hold its content
 * (none after O_TRUNC) and remember it for write-back. */
int fs_cache_write_open(struct fs_cache *c, const char *remote, int flags, mode_t mode);
/* A write-back the pod refused because its file changed after the copy
 * was taken or last written back (someone in the pod wrote, replaced or
 * deleted it). The pod's file is left as it is; the program's version is
 * saved instead, and later write-backs of the copy only update the saved
 * one. */
struct fs_cache_conflict {
	const char *remote; /* the pod path */
	bool gone;          /* no file there any more (else changed or replaced) */
	const char *saved;  /* where the program's version is; NULL if it could not be saved */
	int err;            /* why not (-errno), when saved is NULL */
};
typedef void (*fs_cache_conflict_cb)(void *data, const struct fs_cache_conflict *cf);
/* Save the program's versions of conflicting files as dir + the pod path
 * (dir and what is below it are created when first needed, mode 0700;
 * without a dir they cannot be saved), and report each conflict to cb
 * once (and each failure to save). */
void fs_cache_set_conflicts(struct fs_cache *c, const char *dir, fs_cache_conflict_cb cb,
                            void *data);
/* A copy the program may have changed is done with (close, fsync): if
 * local is a copy opened for writing whose content changed since it was
 * last sent, put it to the pod, unless the pod's file changed meanwhile
 * (then: fs_cache_set_conflicts). Returns 0 (also when there was nothing
 * to do, and after a conflict whose version was saved) or -errno of the
 * write-back. */
int fs_cache_sync(struct fs_cache *c, const char *local);
/* The same for the copy of the pod path remote: before the pod renames
 * it, so changes written through an fd that was never closed (dup2 over
 * it, as shells do) go with it. */
int fs_cache_flush(struct fs_cache *c, const char *remote);
/* st is the pod's stat of remote: if the program changed remote's copy
 * opened for writing since it was last written back, put the copy's
 * size and times into it (what the program's own fds and reads see);
 * owner, mode, inode and link count stay the pod's. */
void fs_cache_stat_written(struct fs_cache *c, const char *remote, struct stat *st);
/* truncate(2) of the pod path remote when it has a writable copy (the
 * program's fds may still write it). A copy with changes the pod has not
 * seen is truncated and written back at once, under the same conflict
 * check as every write-back; a copy as last sent is truncated with the
 * pod's file (the pod's truncate, whatever changed there since), and
 * the pod's new version becomes the next base. Either way the fds see
 * the new length, as on one file. Returns 1 when remote has no writable
 * copy (the caller truncates the pod's file), 0 or -errno. */
int fs_cache_truncate(struct fs_cache *c, const char *remote, off_t len);
/* The pod path was removed or renamed away: drop the copy. */
void fs_cache_forget(struct fs_cache *c, const char *remote);
/* A directory created remotely: create the copy too (chdir into it). */
int fs_cache_mkdir(struct fs_cache *c, const char *remote);
