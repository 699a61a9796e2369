/* Mounting the FUSE file system of session/fuse.c, and taking it down.
 * Internal to the session module. */
#pragma once

#include <stdbool.h>

struct fuse_mount {
	int fd;   /* /dev/fuse, nonblocking, close-on-exec */
	int sock; /* fusermount3's socket while it waits to unmount, or -1 */
	char *dir;
};

/* Mount an empty FUSE file system at dir (created, mode 0700):
 *  - with mount(2), when we may (CAP_SYS_ADMIN), first moving into a
 *    mount namespace of our own that the program inherits, so the mount
 *    is private to the run and goes with its last process;
 *  - else through the setuid fusermount3, if installed, with
 *    auto_unmount: it unmounts when we exit, even by SIGKILL.
 * Returns 0, or -errno and *ret_why (a few words). */
int fuse_mount_open(const char *dir, struct fuse_mount *ret, const char **ret_why);
/* Abort the connection (close the fd: nothing waits on the mount any
 * more), unmount detached, remove dir. */
void fuse_mount_close(struct fuse_mount *m);
