/* Write mode (feature.fs "write", or a read_write list): the pod's files
 * change. mkdir, rmdir, unlink, rename and truncate of remote paths are
 * done by the agent and skipped locally. Opens for writing go through the
 * cache (fs.c): the program writes its copy, and the copy is written back
 * whole when the program closes an fd of it or fsyncs it, and at the end
 * of the run, unless the pod's file changed meanwhile (a conflict: the
 * pod's change stays, session/fs_cache.h). These syscalls are trapped
 * only when writes can be remote. */
#include "syscalls/fs_internal.h"
#include "common/util.h"
#include "session/fs_cache.h"

#include <fcntl.h>
#include <asm/unistd_64.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>

static void done(struct sc_event *ev, int e, const char *what, const char *remote)
{
	e = fs_errno(e);
	if (sc_tracing(ev))
		sc_note(ev, SC_REMOTE, "%s(\"%s\") pod: %s", what, remote, e ? strerror(-e) : "ok");
	sc_skip(ev, e);
}

static void do_mkdir(struct sc_event *ev, struct policy *p, int dirfd_arg, unsigned path_arg)
{
	struct fs_path r;
	int e = fs_resolve(ev, p, dirfd_arg, path_arg, FSR_WRITE, &r);

	if (fs_settle_common(ev, &r, e, path_arg, "mkdir"))
		return;
	e = session_fs_mkdir(p->session, r.remote, (mode_t)sc_arg(ev, path_arg + 1) & 07777);
	done(ev, e, "mkdir", r.remote);
}

void fs_mkdir(struct sc_event *ev, struct policy *p)
{
	do_mkdir(ev, p, -1, 0);
}

void fs_mkdirat(struct sc_event *ev, struct policy *p)
{
	do_mkdir(ev, p, 0, 1);
}

static void do_remove(struct sc_event *ev, struct policy *p, int dirfd_arg, unsigned path_arg,
                      bool dir)
{
	const char *what = dir ? "rmdir" : "unlink";
	struct fs_path r;
	int e = fs_resolve(ev, p, dirfd_arg, path_arg, FSR_WRITE, &r);

	if (fs_settle_common(ev, &r, e, path_arg, what))
		return;
	e = dir ? session_fs_rmdir(p->session, r.remote) : session_fs_unlink(p->session, r.remote);
	if (e == 0)
		fs_cache_forget(p->cfg.fs_cache, r.remote);
	done(ev, e, what, r.remote);
}

void fs_rmdir(struct sc_event *ev, struct policy *p)
{
	do_remove(ev, p, -1, 0, true);
}

void fs_unlink(struct sc_event *ev, struct policy *p)
{
	do_remove(ev, p, -1, 0, false);
}

void fs_unlinkat(struct sc_event *ev, struct policy *p)
{
	do_remove(ev, p, 0, 1, (int)sc_arg(ev, 2) & AT_REMOVEDIR);
}

/* rename, renameat, renameat2: both names must be on the same side. */
static void do_rename(struct sc_event *ev, struct policy *p, int d1, unsigned a1, int d2,
                      unsigned a2, unsigned flags)
{
	struct fs_path from, to;
	int e1 = fs_resolve(ev, p, d1, a1, FSR_WRITE, &from);
	int e2 = fs_resolve(ev, p, d2, a2, FSR_WRITE, &to);
	int e;

	if (e1 < 0 || e2 < 0 || (from.act == FA_LOCAL && to.act == FA_LOCAL)) {
		sc_continue(ev);
		return;
	}
	if (from.act == FA_ENOENT || to.act == FA_ENOENT) {
		sc_skip(ev, -ENOENT);
		return;
	}
	if ((from.act == FA_REMOTE) != (to.act == FA_REMOTE)) {
		/* Between the pod and this machine: as between two
		 * filesystems, so mv copies and removes. */
		sc_skip(ev, -EXDEV);
		return;
	}
	if (from.act != FA_REMOTE) {
		/* Both local, one or both redirected from a cache path. */
		if (from.act == FA_REDIRECT)
			(void)fs_redirect_arg(ev, a1, from.local);
		if (to.act == FA_REDIRECT)
			(void)fs_redirect_arg(ev, a2, to.local);
		sc_continue(ev);
		return;
	}
	if (flags & ~(unsigned)RENAME_NOREPLACE) {
		/* RENAME_EXCHANGE / WHITEOUT have no agent op. */
		sc_skip(ev, -EINVAL);
		return;
	}
	e = fs_cache_flush(p->cfg.fs_cache, from.remote);
	if (e == 0)
		e = session_fs_rename(p->session, from.remote, to.remote, flags);
	if (e == 0) {
		fs_cache_forget(p->cfg.fs_cache, from.remote);
		fs_cache_forget(p->cfg.fs_cache, to.remote);
	}
	done(ev, e, "rename", from.remote);
}

void fs_rename(struct sc_event *ev, struct policy *p)
{
	do_rename(ev, p, -1, 0, -1, 1, 0);
}

void fs_renameat(struct sc_event *ev, struct policy *p)
{
	do_rename(ev, p, 0, 1, 2, 3, 0);
}

void fs_renameat2(struct sc_event *ev, struct policy *p)
{
	do_rename(ev, p, 0, 1, 2, 3, (unsigned)sc_arg(ev, 4));
}

void fs_truncate(struct sc_event *ev, struct policy *p)
{
	struct fs_path r;
	int e = fs_resolve(ev, p, -1, 0, FSR_WRITE, &r);
	int64_t len = (int64_t)sc_arg(ev, 1);

	if (fs_settle_common(ev, &r, e, 0, "truncate"))
		return;
	/* A copy open for writing is the file the program's fds write:
	 * truncating only the pod's file and dropping the copy lost every
	 * later write through them (they went to a copy no longer known). */
	e = len < 0 ? -EINVAL : fs_cache_truncate(p->cfg.fs_cache, r.remote, (off_t)len);
	if (e == 1) {
		e = session_fs_truncate(p->session, r.remote, (uint64_t)len);
		if (e == 0)
			fs_cache_forget(p->cfg.fs_cache, r.remote);
	}
	done(ev, e, "truncate", r.remote);
}

/* close, fsync, fdatasync: write back the copy behind the fd. close
 * runs in any case (the program's fd goes); a failed write-back is
 * reported by fsync and fdatasync only, and at close in --trace. */
void fs_sync_fd(struct sc_event *ev, struct policy *p)
{
	char path[PATH_MAX];
	int fd = (int)sc_arg(ev, 0), e;
	bool is_close = sc_nr(ev) == __NR_close;

	if (fd < 0 || fs_fd_path(ev, fd, path, sizeof(path)) < 0 ||
	    strncmp(path, fs_cache_dir(p->cfg.fs_cache), strlen(fs_cache_dir(p->cfg.fs_cache)))) {
		sc_continue(ev);
		return;
	}
	e = fs_errno(fs_cache_sync(p->cfg.fs_cache, path));
	if (sc_tracing(ev))
		sc_note(ev, SC_REMOTE, "%s(%d) write-back of %s: %s", is_close ? "close" : "fsync",
		        fd, path, e ? strerror(-e) : "ok");
	if (e < 0 && !is_close) {
		sc_skip(ev, e);
		return;
	}
	sc_continue(ev);
}
