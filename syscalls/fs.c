/* File syscalls: path resolution, opens, chdir, execve and execveat.
 *
 * Every path the program names is made absolute first (against its real
 * cwd or dirfd, read from /proc/TID), then feature.fs decides
 * (fs_policy.c). Remote files are read through the cache (session/
 * fs_cache.c) and the path argument is rewritten to the copy; a path that
 * lies in the cache (the program's cwd or a dirfd is a remote directory's
 * copy) stands for the pod's path it mirrors. The pod files served at
 * startup (resolv.conf with the DNS relay, hosts, hostname) are redirected
 * to their copies before any rule applies. */
#include "syscalls/fs_internal.h"
#include "common/util.h"
#include "session/fs_cache.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int fs_errno(int e)
{
	switch (e) {
	case -ENOTCONN:
	case -ETIMEDOUT:
	case -ECONNRESET:
	case -EPROTO:
		return -EIO;
	default:
		return e;
	}
}

static const struct served_file *served(const struct policy *p, const char *path)
{
	for (size_t i = 0; i < p->cfg.nfiles; i++)
		if (strcmp(path, p->cfg.files[i].pod_path) == 0)
			return &p->cfg.files[i];
	return NULL;
}

/* base + "/" + rel, with ".", ".." and repeated slashes removed (by name,
 * as mirrord does: the pod's symlinks are resolved by the agent, not here;
 * ".." above "/" stays at "/"). */
static int normalise(const char *base, const char *rel, char *out, size_t cap)
{
	char tmp[2 * PATH_MAX + 2];
	size_t len = 0;
	int n = rel[0] == '/' ? snprintf(tmp, sizeof(tmp), "%s", rel)
	                      : snprintf(tmp, sizeof(tmp), "%s/%s", base, rel);

	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *s = tmp, *next; *s; s = next) {
		size_t cl;
		while (*s == '/')
			s++;
		next = strchr(s, '/');
		cl = next ? (size_t)(next - s) : strlen(s);
		if (!next)
			next = s + cl;
		if (cl == 0 || (cl == 1 && s[0] == '.'))
			continue;
		if (cl == 2 && s[0] == '.' && s[1] == '.') {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--; /* the slash */
			continue;
		}
		if (len + 1 + cl + 1 > cap)
			return -ENAMETOOLONG;
		out[len++] = '/';
		memcpy(out + len, s, cl);
		len += cl;
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = 0;
	return 0;
}

/* The target of a /proc link that names a directory or a file. */
static int read_link(const char *link, char *buf, size_t cap)
{
	ssize_t n = readlink(link, buf, cap - 1);

	if (n < 0)
		return -errno;
	buf[n] = 0;
	/* Only a directory or file path can be a base: not "socket:[..]",
	 * "anon_inode:..", nor a removed one. */
	if (buf[0] != '/' || (n > 10 && strcmp(buf + n - 10, " (deleted)") == 0))
		return -ENOENT;
	return 0;
}

static int proc_link(pid_t tid, const char *what, char *buf, size_t cap)
{
	char link[64];

	snprintf(link, sizeof(link), "/proc/%d/%s", (int)tid, what);
	return read_link(link, buf, cap);
}

char *fs_link_pod_path(const struct policy *p, const char *link)
{
	char target[PATH_MAX];

	if (!p->cfg.fs_cache || read_link(link, target, sizeof(target)) < 0)
		return NULL;
	return fs_cache_link_remote_of(p->cfg.fs_cache, target);
}

static const char *skip_digits(const char *s)
{
	const char *d = s;

	while (*d >= '0' && *d <= '9')
		d++;
	return d > s ? d : NULL;
}

const char *fs_proc_link(struct sc_event *ev, const char *abs, char *out, size_t cap)
{
	const char *s, *d, *name;
	int n;

	if (strncmp(abs, "/proc/", 6) != 0)
		return NULL;
	s = abs + 6;
	if (strncmp(s, "self/", 5) == 0) {
		s += 4;
		n = snprintf(out, cap, "/proc/%d", (int)sc_tgid(ev));
	} else if (strncmp(s, "thread-self/", 12) == 0) {
		s += 11;
		n = snprintf(out, cap, "/proc/%d/task/%d", (int)sc_tgid(ev), (int)sc_tid(ev));
	} else if ((d = skip_digits(s))) {
		n = snprintf(out, cap, "/proc/%.*s", (int)(d - s), s);
		s = d;
		if (strncmp(s, "/task/", 6) == 0 && (d = skip_digits(s + 6))) {
			n = snprintf(out, cap, "/proc/%.*s", (int)(d - abs - 6), abs + 6);
			s = d;
		}
	} else {
		return NULL;
	}
	/* s is at "/cwd...", "/exe...", "/fd/N...". */
	name = s;
	if (strncmp(s, "/cwd", 4) == 0 || strncmp(s, "/exe", 4) == 0)
		s += 4;
	else if (strncmp(s, "/fd/", 4) == 0 && (d = skip_digits(s + 4)))
		s = d;
	else
		return NULL;
	if ((*s && *s != '/') || n < 0 || (size_t)n + (size_t)(s - name) + 1 > cap)
		return NULL;
	memcpy(out + n, name, (size_t)(s - name));
	out[n + (s - name)] = 0;
	return s;
}

int fs_fd_path(struct sc_event *ev, int fd, char *buf, size_t cap)
{
	char what[32];

	snprintf(what, sizeof(what), "fd/%d", fd);
	return proc_link(sc_tid(ev), what, buf, cap);
}

/* The decision for an absolute path that lies in the cache: it is the
 * pod's file. Reads stay remote; a write goes where the rules send a write
 * of the pod's path, and "local" then means the local file of that name,
 * never our copy. */
static void decide_cached(struct policy *p, bool write, struct fs_path *r)
{
	enum fs_verdict v = fs_policy_decide(p->cfg.fs, r->remote, write);

	if (v == FS_NOT_FOUND)
		r->act = FA_ENOENT;
	else if (!write || v == FS_REMOTE)
		r->act = FA_REMOTE;
	else {
		memcpy(r->twin, r->remote, sizeof(r->twin));
		r->local = r->twin;
		r->act = FA_REDIRECT;
	}
}

int fs_resolve(struct sc_event *ev, struct policy *p, int dirfd_arg, unsigned path_arg,
               unsigned flags, struct fs_path *r)
{
	char path[PATH_MAX], base[PATH_MAX];
	const struct served_file *f;
	bool write = flags & FSR_WRITE;
	ssize_t n = sc_read_str(ev, sc_arg(ev, path_arg), path, sizeof(path));
	int dirfd = dirfd_arg >= 0 ? (int)sc_arg(ev, (unsigned)dirfd_arg) : AT_FDCWD;
	int e;

	if (n < 0)
		return (int)n;
	if (n == 0 && !(flags & FSR_EMPTY_PATH))
		return -ENOENT; /* the kernel's ENOENT for "" */
	r->by_fd = n == 0;
	base[0] = 0;
	if (path[0] != '/') {
		e = dirfd == AT_FDCWD ? proc_link(sc_tid(ev), "cwd", base, sizeof(base))
		                      : fs_fd_path(ev, dirfd, base, sizeof(base));
		if (e < 0)
			return e;
	}
	e = normalise(base, path, r->abs, sizeof(r->abs));
	if (e < 0)
		return e;
	if (!write && (f = served(p, r->abs))) {
		r->act = FA_REDIRECT;
		r->local = f->local_path;
		return 0;
	}
	if (!p->cfg.fs || fs_policy_mode(p->cfg.fs) == FS_MODE_LOCAL) {
		r->act = FA_LOCAL;
		return 0;
	}
	/* The FUSE mount of large pod files: the kernel serves it (from
	 * the supervisor's own loop); its nodes already are the pod's. */
	if (p->cfg.fs_cache && fs_cache_is_lazy(p->cfg.fs_cache, r->abs)) {
		r->act = FA_LOCAL;
		return 0;
	}
	if (p->cfg.fs_cache) {
		_cleanup_free_ char *rem = fs_cache_remote_of(p->cfg.fs_cache, r->abs);
		/* A path through a /proc link into the cache: "/proc/self/cwd/x"
		 * after chdir into a pod directory, "/proc/self/fd/3/x" for an
		 * fd of one. The kernel would resolve it in the copy, where a
		 * listed but never fetched file is an empty placeholder: it is
		 * the pod's file. */
		const char *rest = fs_proc_link(ev, r->abs, base, sizeof(base));
		if (!rem && rest && *rest) {
			_cleanup_free_ char *dir = fs_link_pod_path(p, base);
			if (dir && normalise(dir, rest + 1, r->remote, sizeof(r->remote)) == 0) {
				decide_cached(p, write, r);
				return 0;
			}
		}
		if (rem) {
			snprintf(r->remote, sizeof(r->remote), "%s", rem);
			decide_cached(p, write, r);
			return 0;
		}
	}
	/* feature.fs.mapping, as mirrord: only for a path the program gave as
	 * absolute, and on the path as it wrote it ("/config/" matches
	 * "^/config/"); the mapped path, normalised, is what the rules and
	 * the agent see. When the rules keep it local, the call runs on the
	 * program's own path (mirrord's bypass calls the original function
	 * with it). A result that is not absolute is taken from "/"; one too
	 * long for PATH_MAX leaves the call to the kernel as it is. */
	const char *pod = r->abs;
	char mapped[PATH_MAX];
	if (path[0] == '/' && (e = fs_policy_map(p->cfg.fs, path, mapped, sizeof(mapped))) != 0) {
		if (e < 0 || (e = normalise("", mapped, r->remote, sizeof(r->remote))) < 0)
			return e;
		pod = r->remote;
	}
	switch (fs_policy_decide(p->cfg.fs, pod, write)) {
	case FS_REMOTE:
		if (pod != r->remote)
			memcpy(r->remote, r->abs, sizeof(r->remote));
		r->act = p->cfg.fs_cache ? FA_REMOTE : FA_LOCAL;
		break;
	case FS_NOT_FOUND:
		r->act = FA_ENOENT;
		break;
	case FS_LOCAL:
		r->act = FA_LOCAL;
		break;
	}
	return 0;
}

int fs_redirect_arg(struct sc_event *ev, unsigned arg, const char *local)
{
	uint64_t addr;
	int e = sc_scratch_put(ev, local, strlen(local) + 1, &addr);

	return e < 0 ? e : sc_set_arg(ev, arg, addr);
}

void fs_redirect(struct sc_event *ev, unsigned arg, const char *local, const char *what,
                 const char *why)
{
	if (fs_redirect_arg(ev, arg, local) < 0) {
		/* Without a rewrite the program sees its local file: say so. */
		if (sc_tracing(ev))
			sc_note(ev, SC_LOCAL, "%s (cannot rewrite: local file)", what);
		sc_continue(ev);
		return;
	}
	if (sc_tracing(ev))
		sc_note(ev, SC_REMOTE, "%s -> %s %s", what, why, local);
	sc_continue(ev);
}

bool fs_settle_common(struct sc_event *ev, const struct fs_path *r, int e, unsigned arg,
                      const char *what)
{
	if (e < 0 || r->act == FA_LOCAL) {
		if (sc_tracing(ev))
			sc_note(ev, SC_LOCAL, "%s(\"%s\")", what, e < 0 ? "?" : r->abs);
		sc_continue(ev);
		return true;
	}
	if (r->act == FA_ENOENT) {
		if (sc_tracing(ev))
			sc_note(ev, SC_DENIED, "%s(\"%s\") not_found", what, r->abs);
		sc_skip(ev, -ENOENT);
		return true;
	}
	if (r->act == FA_REDIRECT) {
		char w[PATH_MAX + 32];
		snprintf(w, sizeof(w), "%s(\"%s\")", what, r->abs);
		fs_redirect(ev, arg, r->local, w, "local");
		return true;
	}
	return false;
}

/* The pod answered a path call with an error (e < 0): the program gets
 * the same errno, and --trace says why. True if it did. */
static bool pod_failed(struct sc_event *ev, const char *what, const char *remote, int e)
{
	if (e >= 0)
		return false;
	if (sc_tracing(ev))
		sc_note(ev, SC_REMOTE, "%s(\"%s\") pod: %s", what, remote, strerror(-fs_errno(e)));
	sc_skip(ev, fs_errno(e));
	return true;
}

/* The end of an open of a pod file: fail with e, or point the path at
 * local (the copy, or the lazy node). */
static void open_settle(struct sc_event *ev, struct policy *p, unsigned path_arg, const char *what,
                        const char *remote, int e, const char *local, bool write)
{
	char w[PATH_MAX + 32];

	if (pod_failed(ev, what, remote, e))
		return;
	if (e == 1 && !p->fs_noticed && p->cfg.fs_notice) {
		char msg[PATH_MAX + 128];
		p->fs_noticed = true;
		snprintf(msg, sizeof(msg),
		         "the large pod file \"%s\" was fetched whole before open() returned",
		         remote);
		p->cfg.fs_notice(p->cfg.notice_data, msg);
	}
	snprintf(w, sizeof(w), "%s(\"%s\")", what, remote);
	fs_redirect(ev, path_arg, local, w,
	            write                                      ? "pod file (write-back)"
	            : fs_cache_is_lazy(p->cfg.fs_cache, local) ? "pod file (lazy)"
	                                                       : "pod copy");
}

/* A read-only open waits for the pod parked, not in the loop: other
 * threads and relays go on while the file is opened and copied. */
struct open_call {
	struct policy *p;
	struct sc_event *ev;
	struct fs_cache_op *op;
	unsigned path_arg;
	const char *what;
	char remote[PATH_MAX];
};

static void open_call_free(void *data)
{
	struct open_call *oc = data;

	/* Also when the thread died while parked: no answer may reach it. */
	fs_cache_op_cancel(oc->op);
	free(oc);
}

static void open_done(void *data, int err, const char *local)
{
	struct open_call *oc = data;

	oc->op = NULL;
	open_settle(oc->ev, oc->p, oc->path_arg, oc->what, oc->remote, err, local, false);
}

/* Park the event while the pod's file is opened; false if that cannot
 * start (the caller does it the blocking way). */
static bool open_parked(struct sc_event *ev, struct policy *p, unsigned path_arg, const char *what,
                        const char *remote)
{
	struct open_call *oc = xcalloc(1, sizeof(*oc));

	oc->p = p;
	oc->ev = ev;
	oc->path_arg = path_arg;
	oc->what = what;
	snprintf(oc->remote, sizeof(oc->remote), "%s", remote);
	if (fs_cache_open_read_async(p->cfg.fs_cache, remote, open_done, oc, &oc->op) < 0) {
		free(oc);
		return false;
	}
	sc_set_state(ev, oc, open_call_free);
	sc_park(ev);
	return true;
}

/* Before a process gets hold of a pod file's copy (an fd, its cwd, its
 * executable), its fstat-style calls must stop too: the copy's own stat is
 * not the pod's (the table's HANDLE_STAT). True if the event went to arm
 * them: the syscall then runs again and comes back here. */
static bool arm_first(struct sc_event *ev)
{
	return !sc_armed(ev) && sc_arm(ev) == 0;
}

/* open, creat, openat, openat2. flags/mode are the program's; how_arg >= 0
 * for openat2, whose struct open_how is rewritten when flags change. */
static void do_open(struct sc_event *ev, struct policy *p, int dirfd_arg, unsigned path_arg,
                    int flags, mode_t mode, int how_arg, const char *what)
{
	struct fs_path r;
	bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
	int e;

	if (flags & O_PATH)
		write = false;
	e = fs_resolve(ev, p, dirfd_arg, path_arg, write ? FSR_WRITE : 0, &r);
	if (fs_settle_common(ev, &r, e, path_arg, what))
		return;
	if (arm_first(ev))
		return;
	_cleanup_free_ char *copy = NULL;
	/* Directories are listed with blocking calls anyway. */
	if (!write && !(flags & O_DIRECTORY) && open_parked(ev, p, path_arg, what, r.remote))
		return;
	if (write)
		e = fs_cache_write_open(p->cfg.fs_cache, r.remote, flags, mode);
	else
		e = fs_cache_open_read(p->cfg.fs_cache, r.remote, flags & O_DIRECTORY, &copy);
	if (e < 0) {
		open_settle(ev, p, path_arg, what, r.remote, e, NULL, write);
		return;
	}
	if (!copy)
		copy = fs_cache_path(p->cfg.fs_cache, r.remote);
	/* The pod created the file (O_EXCL was checked there); the copy
	 * exists now, so the local open must not be exclusive. */
	if (write && (flags & O_EXCL)) {
		uint64_t addr;
		if (how_arg >= 0) {
			struct open_how how;
			if (sc_read_mem(ev, sc_arg(ev, (unsigned)how_arg), &how, sizeof(how)) ==
			    0) {
				how.flags &= ~(uint64_t)O_EXCL;
				if (sc_scratch_put(ev, &how, sizeof(how), &addr) == 0)
					(void)sc_set_arg(ev, (unsigned)how_arg, addr);
			}
		} else {
			(void)sc_set_arg(ev, path_arg + 1, (uint64_t)(flags & ~O_EXCL));
		}
	}
	open_settle(ev, p, path_arg, what, r.remote, e, copy, write);
}

void fs_open(struct sc_event *ev, struct policy *p)
{
	do_open(ev, p, -1, 0, (int)sc_arg(ev, 1), (mode_t)sc_arg(ev, 2), -1, "open");
}

void fs_creat(struct sc_event *ev, struct policy *p)
{
	/* creat(path, mode) is open(path, O_CREAT|O_WRONLY|O_TRUNC, mode);
	 * it has no flags argument to strip O_EXCL from, and needs none. */
	do_open(ev, p, -1, 0, O_CREAT | O_WRONLY | O_TRUNC, (mode_t)sc_arg(ev, 1), -1, "creat");
}

void fs_openat(struct sc_event *ev, struct policy *p)
{
	do_open(ev, p, 0, 1, (int)sc_arg(ev, 2), (mode_t)sc_arg(ev, 3), -1, "openat");
}

void fs_openat2(struct sc_event *ev, struct policy *p)
{
	struct open_how how;

	/* A short or unreadable open_how is the kernel's to refuse. */
	if (sc_arg(ev, 3) < sizeof(how) || sc_read_mem(ev, sc_arg(ev, 2), &how, sizeof(how)) < 0) {
		sc_continue(ev);
		return;
	}
	do_open(ev, p, 0, 1, (int)how.flags, (mode_t)how.mode, 2, "openat2");
}

/* Finish chdir and execve of a pod path: fail with e, or point the path
 * in argument arg at the copy. */
static void to_copy(struct sc_event *ev, struct policy *p, unsigned arg, const char *remote, int e,
                    const char *what, const char *why)
{
	char w[PATH_MAX + 32];

	if (pod_failed(ev, what, remote, e))
		return;
	_cleanup_free_ char *copy = fs_cache_path(p->cfg.fs_cache, remote);
	snprintf(w, sizeof(w), "%s(\"%s\")", what, remote);
	fs_redirect(ev, arg, copy, w, why);
}

void fs_chdir(struct sc_event *ev, struct policy *p)
{
	struct fs_path r;
	struct stat st;
	int e = fs_resolve(ev, p, -1, 0, 0, &r);

	if (fs_settle_common(ev, &r, e, 0, "chdir"))
		return;
	if (arm_first(ev))
		return;
	e = session_fs_stat(p->session, r.remote, true, &st);
	if (e == 0 && !S_ISDIR(st.st_mode))
		e = -ENOTDIR;
	if (e == 0)
		e = fs_cache_mkdir(p->cfg.fs_cache, r.remote);
	to_copy(ev, p, 0, r.remote, e, "chdir", "pod directory copy");
}

/* getcwd(buf, size). After chdir into a pod directory (rewritten to its
 * copy) or fchdir to an fd of one (opened on the copy), the kernel's cwd
 * is the copy, and the raw call would answer
 * "/run/user/0/mirrord-trace-123-AbCdEf/fs/app" where the pod says "/app".
 * The supervisor answers with the pod's path instead, as the kernel
 * would: the length with the NUL, ERANGE when that does not fit in size
 * (the copy's longer name does not matter), EFAULT for a buffer the
 * program cannot write. Any other cwd runs the call natively. */
void fs_getcwd(struct sc_event *ev, struct policy *p)
{
	char link[64];
	uint64_t buf = sc_arg(ev, 0), size = sc_arg(ev, 1);
	long ret;

	snprintf(link, sizeof(link), "/proc/%d/cwd", (int)sc_tid(ev));
	_cleanup_free_ char *pod = fs_link_pod_path(p, link);
	if (!pod) {
		if (sc_tracing(ev))
			sc_note(ev, SC_LOCAL, "getcwd() local directory");
		sc_continue(ev);
		return;
	}
	ret = (long)strlen(pod) + 1;
	if ((uint64_t)ret > size)
		ret = -ERANGE;
	else if (sc_write_mem(ev, buf, pod, (size_t)ret) < 0)
		ret = -EFAULT;
	if (sc_tracing(ev))
		sc_note(ev, SC_EMULATED, "getcwd() pod directory \"%s\"", pod);
	sc_skip(ev, ret);
}

/* execve and execveat of a pod binary: the copy is executed. argv[0]
 * stays as the program wrote it; /proc/self/exe shows the copy. */
static void do_exec(struct sc_event *ev, struct policy *p, int dirfd_arg, unsigned path_arg,
                    int atflags, const char *what)
{
	struct fs_path r;
	struct stat st;
	char c;
	int e;

	/* fexecve (execveat of fd with AT_EMPTY_PATH and ""): the fd already
	 * is a local file, or the copy (or lazy node) that the open of a pod
	 * file made. Nothing to fetch or rewrite: the kernel runs that file. */
	if ((atflags & AT_EMPTY_PATH) && sc_read_mem(ev, sc_arg(ev, path_arg), &c, 1) == 0 &&
	    c == 0) {
		if (sc_tracing(ev))
			sc_note(ev, SC_LOCAL, "%s(fd %d, \"\") the fd's own file", what,
			        (int)sc_arg(ev, 0));
		sc_continue(ev);
		return;
	}
	e = fs_resolve(ev, p, dirfd_arg, path_arg, 0, &r);
	if (fs_settle_common(ev, &r, e, path_arg, what))
		return;
	if (arm_first(ev))
		return;
	/* AT_SYMLINK_NOFOLLOW: the kernel's ELOOP when the pod's last
	 * component is a symlink (the copy never is one). */
	e = 0;
	if (atflags & AT_SYMLINK_NOFOLLOW) {
		e = session_fs_stat(p->session, r.remote, false, &st);
		if (e == 0 && S_ISLNK(st.st_mode))
			e = -ELOOP;
	}
	if (e == 0)
		e = fs_cache_read(p->cfg.fs_cache, r.remote, false, &st);
	if (e == 0 && !S_ISREG(st.st_mode))
		e = -EACCES;
	to_copy(ev, p, path_arg, r.remote, e, what, "pod binary copy");
}

void fs_execve(struct sc_event *ev, struct policy *p)
{
	do_exec(ev, p, -1, 0, 0, "execve");
}

void fs_execveat(struct sc_event *ev, struct policy *p)
{
	do_exec(ev, p, 0, 1, (int)sc_arg(ev, 4), "execveat");
}
