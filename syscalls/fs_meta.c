/* Metadata of remote paths: stat, lstat, newfstatat, statx, access,
 * faccessat(2), readlink(at), statfs. Answered from the pod's metadata
 * and written into the program's buffer; the syscall is skipped, so one
 * stop and no content fetched. */
#include "syscalls/fs_internal.h"
#include "common/util.h"
#include "session/fs_cache.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <asm/unistd_64.h>

/* x86-64: glibc's struct stat and struct statfs are the kernel's. */
_Static_assert(sizeof(struct stat) == 144, "kernel struct stat layout");
_Static_assert(sizeof(struct statfs) == 120, "kernel struct statfs layout");

/* Write the answer to buf and skip, or skip with the error. */
static void answer(struct sc_event *ev, int e, uint64_t buf, const void *data, size_t len, long ok,
                   const char *what, const char *remote)
{
	e = fs_errno(e);
	if (e == 0 && len && sc_write_mem(ev, buf, data, len) < 0)
		e = -EFAULT;
	if (sc_tracing(ev))
		sc_note(ev, SC_REMOTE, "%s(\"%s\") pod: %s", what, remote, e ? strerror(-e) : "ok");
	sc_skip(ev, e ? e : ok);
}

/* The pod's stat of remote, as the program sees it: a copy it is
 * writing has the size and times of what it wrote. */
static int pod_stat(struct policy *p, const char *remote, bool follow, struct stat *st)
{
	int e = session_fs_stat(p->session, remote, follow, st);

	if (e == 0)
		fs_cache_stat_written(p->cfg.fs_cache, remote, st);
	return e;
}

/* A stat of an fd on a copy: the fd reads the copy, a snapshot of the
 * pod's file when it was opened (or what the program wrote), whatever the
 * pod's file did since. So the size, blocks and times are the copy's (a
 * mmap of st_size bytes stays inside it; the copy keeps the pod's times);
 * owner, mode, link count and inode stay the pod's. */
static void fd_view(const char *local, struct stat *st)
{
	struct stat sb;

	if (!S_ISREG(st->st_mode) || lstat(local, &sb) < 0 || !S_ISREG(sb.st_mode))
		return;
	st->st_size = sb.st_size;
	st->st_blocks = sb.st_blocks;
	st->st_atim = sb.st_atim;
	st->st_mtim = sb.st_mtim;
}

/* The pod could not stat the file behind an fd (gone there, or the agent
 * is): the fd is still valid here, so the kernel answers for the copy
 * rather than the program getting an errno fstat never gives. */
static void fd_native(struct sc_event *ev, const char *what, const char *remote, int e)
{
	if (sc_tracing(ev))
		sc_note(ev, SC_LOCAL, "%s(\"%s\") pod: %s, the copy answers", what, remote,
		        strerror(-e));
	sc_continue(ev);
}

/* The path of a fstatat-style call with AT_EMPTY_PATH and "": the fd's
 * own file. Only a copy in the cache stands for a pod file. (They stop
 * only in processes armed by fs.c: HANDLE_STAT in the table.) */
static int resolve_at(struct sc_event *ev, struct policy *p, int flags, struct fs_path *r)
{
	return fs_resolve(ev, p, 0, 1, (flags & AT_EMPTY_PATH) ? FSR_EMPTY_PATH : 0, r);
}

static void do_stat(struct sc_event *ev, struct policy *p, int dirfd_arg, unsigned path_arg,
                    bool follow, uint64_t buf, int atflags, const char *what)
{
	struct fs_path r;
	struct stat st;
	int e = dirfd_arg < 0 ? fs_resolve(ev, p, -1, path_arg, 0, &r)
	                      : resolve_at(ev, p, atflags, &r);

	if (fs_settle_common(ev, &r, e, path_arg, what))
		return;
	e = pod_stat(p, r.remote, follow, &st);
	if (r.by_fd) {
		if (e < 0) {
			fd_native(ev, what, r.remote, e);
			return;
		}
		fd_view(r.abs, &st);
	}
	answer(ev, e, buf, &st, sizeof(st), 0, what, r.remote);
}

void fs_stat(struct sc_event *ev, struct policy *p)
{
	do_stat(ev, p, -1, 0, true, sc_arg(ev, 1), 0, "stat");
}

void fs_lstat(struct sc_event *ev, struct policy *p)
{
	do_stat(ev, p, -1, 0, false, sc_arg(ev, 1), 0, "lstat");
}

void fs_newfstatat(struct sc_event *ev, struct policy *p)
{
	int fl = (int)sc_arg(ev, 3);

	do_stat(ev, p, 0, 1, !(fl & AT_SYMLINK_NOFOLLOW), sc_arg(ev, 2), fl, "newfstatat");
}

/* fstat(fd, buf), trapped only in armed processes (the table's
 * HANDLE_ARMED): Go and musl call it after open, and for the copy of a
 * pod file the local answer is the copy's owner, link count and inode.
 * Any other fd runs natively; a pod file's answer costs a round trip, as
 * newfstatat's AT_EMPTY_PATH form does. */
void fs_fstat(struct sc_event *ev, struct policy *p)
{
	char local[PATH_MAX];
	int fd = (int)sc_arg(ev, 0);
	_cleanup_free_ char *remote = NULL;
	struct stat st;
	int e;

	if (fd >= 0 && fs_fd_path(ev, fd, local, sizeof(local)) == 0)
		remote = fs_cache_remote_of(p->cfg.fs_cache, local);
	if (!remote) {
		if (sc_tracing(ev))
			sc_note(ev, SC_LOCAL, "fstat(%d)", fd);
		sc_continue(ev);
		return;
	}
	e = pod_stat(p, remote, true, &st);
	if (e < 0) {
		fd_native(ev, "fstat", remote, e);
		return;
	}
	fd_view(local, &st);
	answer(ev, e, sc_arg(ev, 1), &st, sizeof(st), 0, "fstat", remote);
}

static struct statx_timestamp stx_time(struct timespec t)
{
	return (struct statx_timestamp){.tv_sec = t.tv_sec, .tv_nsec = (uint32_t)t.tv_nsec};
}

void fs_statx(struct sc_event *ev, struct policy *p)
{
	int fl = (int)sc_arg(ev, 2);
	struct fs_path r;
	struct stat st = {0};
	struct statx sx;
	int e = resolve_at(ev, p, fl, &r);

	if (fs_settle_common(ev, &r, e, 1, "statx"))
		return;
	e = pod_stat(p, r.remote, !(fl & AT_SYMLINK_NOFOLLOW), &st);
	if (r.by_fd) {
		if (e < 0) {
			fd_native(ev, "statx", r.remote, e);
			return;
		}
		fd_view(r.abs, &st);
	}
	/* What the pod's stat carries: the basic fields, no birth time. */
	sx = (struct statx){
	        .stx_mask = STATX_BASIC_STATS,
	        .stx_blksize = (uint32_t)st.st_blksize,
	        .stx_nlink = (uint32_t)st.st_nlink,
	        .stx_uid = st.st_uid,
	        .stx_gid = st.st_gid,
	        .stx_mode = (uint16_t)st.st_mode,
	        .stx_ino = st.st_ino,
	        .stx_size = (uint64_t)st.st_size,
	        .stx_blocks = (uint64_t)st.st_blocks,
	        .stx_atime = stx_time(st.st_atim),
	        .stx_ctime = stx_time(st.st_ctim),
	        .stx_mtime = stx_time(st.st_mtim),
	        .stx_rdev_major = major(st.st_rdev),
	        .stx_rdev_minor = minor(st.st_rdev),
	        .stx_dev_major = major(st.st_dev),
	        .stx_dev_minor = minor(st.st_dev),
	};
	answer(ev, e, sc_arg(ev, 4), &sx, sizeof(sx), 0, "statx", r.remote);
}

static void do_access(struct sc_event *ev, struct policy *p, int dirfd_arg, unsigned path_arg,
                      int mode, const char *what)
{
	struct fs_path r;
	int e = fs_resolve(ev, p, dirfd_arg, path_arg, 0, &r);

	if (fs_settle_common(ev, &r, e, path_arg, what))
		return;
	e = session_fs_access(p->session, r.remote, mode & (R_OK | W_OK | X_OK));
	answer(ev, e, 0, NULL, 0, 0, what, r.remote);
}

void fs_access(struct sc_event *ev, struct policy *p)
{
	do_access(ev, p, -1, 0, (int)sc_arg(ev, 1), "access");
}

void fs_faccessat(struct sc_event *ev, struct policy *p)
{
	/* faccessat2's flags (AT_EACCESS, AT_SYMLINK_NOFOLLOW) change
	 * nothing for the agent, which checks as itself. */
	do_access(ev, p, 0, 1, (int)sc_arg(ev, 2),
	          sc_nr(ev) == __NR_faccessat ? "faccessat" : "faccessat2");
}

/* Whether the path argument ends with the link's own name (abs's last
 * component): "cwd/" and "cwd/." name the directory (EINVAL from
 * readlink), "fd/3/" a file (ENOTDIR), though they normalise to the same
 * absolute path. */
static bool names_link(struct sc_event *ev, unsigned path_arg, const char *abs)
{
	char path[PATH_MAX];
	const char *last = strrchr(abs, '/') + 1;
	size_t ll = strlen(last);
	ssize_t n = sc_read_str(ev, sc_arg(ev, path_arg), path, sizeof(path));

	return n >= (ssize_t)ll && strcmp(path + n - ll, last) == 0 &&
	       ((size_t)n == ll || path[n - (ssize_t)ll - 1] == '/');
}

/* Truncated to the buffer, without a NUL, as the kernel does. */
static size_t link_len(const char *target, int size)
{
	size_t n = strlen(target);

	return n > (size_t)size ? (size_t)size : n;
}

static void do_readlink(struct sc_event *ev, struct policy *p, int dirfd_arg, unsigned path_arg,
                        const char *what)
{
	struct fs_path r;
	_cleanup_free_ char *target = NULL;
	uint64_t buf = sc_arg(ev, path_arg + 1);
	int size = (int)sc_arg(ev, path_arg + 2);
	int e = fs_resolve(ev, p, dirfd_arg, path_arg, 0, &r);
	size_t n = 0;
	const char *rest;
	char link[64];

	/* /proc/self/cwd after chdir or fchdir into a pod directory names
	 * the copy, as getcwd would (fs_getcwd), and so do /proc/self/fd/N
	 * of an fd opened on a copy and /proc/self/exe after execve of a pod
	 * binary: answer the pod's path, as the kernel in the pod would. */
	if (e == 0 && r.act == FA_LOCAL && size > 0 &&
	    (rest = fs_proc_link(ev, r.abs, link, sizeof(link))) && !*rest &&
	    names_link(ev, path_arg, r.abs) && (target = fs_link_pod_path(p, link))) {
		n = link_len(target, size);
		e = sc_write_mem(ev, buf, target, n) < 0 ? -EFAULT : 0;
		if (sc_tracing(ev))
			sc_note(ev, SC_EMULATED, "%s(\"%s\") pod path \"%s\"", what, r.abs, target);
		sc_skip(ev, e < 0 ? e : (long)n);
		return;
	}
	if (fs_settle_common(ev, &r, e, path_arg, what))
		return;
	e = size <= 0 ? -EINVAL : session_fs_readlink(p->session, r.remote, &target);
	if (e == 0)
		n = link_len(target, size);
	answer(ev, e, buf, target, n, (long)n, what, r.remote);
}

void fs_readlink(struct sc_event *ev, struct policy *p)
{
	do_readlink(ev, p, -1, 0, "readlink");
}

void fs_readlinkat(struct sc_event *ev, struct policy *p)
{
	do_readlink(ev, p, 0, 1, "readlinkat");
}

void fs_statfs(struct sc_event *ev, struct policy *p)
{
	struct fs_path r;
	struct statfs sf;
	int e = fs_resolve(ev, p, -1, 0, 0, &r);

	if (fs_settle_common(ev, &r, e, 0, "statfs"))
		return;
	memset(&sf, 0, sizeof(sf));
	e = session_fs_statfs(p->session, r.remote, &sf);
	answer(ev, e, sc_arg(ev, 1), &sf, sizeof(sf), 0, "statfs", r.remote);
}

/* getxattr, lgetxattr, listxattr, llistxattr: the agent has no xattr op,
 * so a pod file has none (ls -l asks for ACLs and SELinux labels, and
 * must not see the local ENOENT). */
void fs_xattr(struct sc_event *ev, struct policy *p)
{
	long nr = sc_nr(ev);
	bool list = nr == __NR_listxattr || nr == __NR_llistxattr;
	struct fs_path r;
	int e = fs_resolve(ev, p, -1, 0, 0, &r);

	if (fs_settle_common(ev, &r, e, 0, list ? "listxattr" : "getxattr"))
		return;
	if (sc_tracing(ev))
		sc_note(ev, SC_EMULATED, "%s(\"%s\") pod file: no attributes",
		        list ? "listxattr" : "getxattr", r.remote);
	sc_skip(ev, list ? 0 : -ENODATA);
}
