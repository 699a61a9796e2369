/* Shared by the file handlers (fs.c, fs_meta.c, fs_write.c). */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include "syscalls/internal.h"
#include "syscalls/fs_policy.h"

/* What to do with one path the program named. */
enum fs_action {
	FA_LOCAL,    /* let the syscall run as it is */
	FA_REDIRECT, /* run it on another local path (fs_path.local) */
	FA_REMOTE,   /* the pod's path fs_path.remote */
	FA_ENOENT,   /* not_found */
};

struct fs_path {
	enum fs_action act;
	char abs[PATH_MAX];    /* the path made absolute and normalised */
	char remote[PATH_MAX]; /* FA_REMOTE: the pod's path */
	const char *local;     /* FA_REDIRECT: the local path to use */
	char twin[PATH_MAX];   /* storage for local when it is computed */
	bool by_fd;            /* AT_EMPTY_PATH and "": abs is the fd's own file */
};

/* Flags of fs_resolve. */
#define FSR_WRITE (1u << 0)      /* the call creates, changes or removes */
#define FSR_EMPTY_PATH (1u << 1) /* AT_EMPTY_PATH: "" names dirfd itself */

/* Read the path argument path_arg (relative to the dirfd in argument
 * dirfd_arg, or to the cwd when dirfd_arg < 0) and decide. Returns 0, or
 * -errno when the kernel should see the call as it is (unreadable pointer,
 * a dirfd that is no directory path: it reports the error itself). */
int fs_resolve(struct sc_event *ev, struct policy *p, int dirfd_arg, unsigned path_arg,
               unsigned flags, struct fs_path *ret);

/* Point argument arg at a copy of local in the scratch slot; 0 or -errno. */
int fs_redirect_arg(struct sc_event *ev, unsigned arg, const char *local);
/* Rewrite argument arg to the local path (2 stops: the registers are
 * restored at the exit). Settles the event. */
void fs_redirect(struct sc_event *ev, unsigned arg, const char *local, const char *what,
                 const char *why);

/* An errno from the session as the program sees it: a failed agent link
 * is an I/O error of the file, not a network error. */
int fs_errno(int e);

/* The local path of the program's fd (readlink of /proc/TID/fd/N) into
 * buf; -errno if it has none. */
int fs_fd_path(struct sc_event *ev, int fd, char *buf, size_t cap);

/* If the /proc link ("/proc/PID/cwd", ".../fd/N", ".../exe") names the
 * cache or something in it, the pod path it stands for (malloc'd), else
 * NULL. */
char *fs_link_pod_path(const struct policy *p, const char *link);

/* A /proc link as the program names it: "/proc/self/cwd",
 * "/proc/thread-self/exe", "/proc/PID/fd/N", "/proc/PID/task/TID/cwd"
 * (self is the program's pid, not ours), then perhaps more of a path.
 * Writes the link the supervisor reads for it into out and returns what
 * follows it in abs ("" or "/..."); NULL for every other path. */
const char *fs_proc_link(struct sc_event *ev, const char *abs, char *out, size_t cap);

/* Settle what every handler treats alike: a path the kernel should see
 * (e < 0 from fs_resolve), local, not_found, and a redirect of argument
 * arg. Returns true if it settled the event; false leaves FA_REMOTE to
 * the caller. */
bool fs_settle_common(struct sc_event *ev, const struct fs_path *r, int e, unsigned arg,
                      const char *what);
