/* Remote file access: serves AP_FS_REQ for the one client.
 *
 * Security invariant: every path the client names is resolved by
 * target_openat() (openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS on
 * the target's root), either whole or up to its parent directory. What
 * follows a resolved fd is at most one path component that is neither
 * "." nor ".." nor contains '/', used with an *at() call that does not
 * follow a final symlink (mkdirat, unlinkat, renameat2, O_CREAT|O_EXCL).
 * So no request can name a file outside the target's root.
 *
 * Files are opened first as O_PATH, checked with fstat, and only regular
 * files and directories are then opened for I/O (through the agent's own
 * /proc/self/fd, which reopens the very inode). Opening a device node of
 * the pod's /dev can have side effects (a watchdog starts counting, a tape
 * rewinds); an O_PATH open has none.
 *
 * Memory: one chunk buffer (AP_MAX_DATA) and one getdents buffer per
 * client, and at most AGENT_FS_MAX_HANDLES fds. A 10 GiB file streams
 * through the chunk buffer, one READ at a time. */
#include "agent/agent.h"
#include "common/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Handle ids: slot index in the low bits, a generation above, so a stale
 * id of a closed handle never reaches the slot's next user. */
#define HANDLE_SLOT_BITS 8
_Static_assert(AGENT_FS_MAX_HANDLES <= 1 << HANDLE_SLOT_BITS, "slot fits its bits");
/* "/proc/self/fd/" + an int */
#define FD_PATH_MAX 32

enum handle_kind { H_FREE, H_FILE, H_DIR };

struct handle {
	enum handle_kind kind;
	bool writable;
	int fd;
	uint32_t gen; /* bumped at every open of the slot, never 0 in use */
};

struct files {
	const struct agent_target *t;
	bool write_ok; /* the client sent AP_FS_ENABLE_WRITE */
	size_t nopen;
	struct handle h[AGENT_FS_MAX_HANDLES];
	uint8_t chunk[AP_MAX_DATA];          /* READ data, READLINK target, dirents */
	uint8_t kdents[AP_FS_DIR_MAX_BYTES]; /* raw getdents64 output */
};

/* The kernel's getdents64 record; fields are copied out with memcpy. */
struct kdirent {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
};
#define KDIRENT_NAME_OFF 19

struct files *files_new(const struct agent_target *t)
{
	struct files *f = xcalloc(1, sizeof(*f));

	f->t = t;
	for (size_t i = 0; i < AGENT_FS_MAX_HANDLES; i++)
		f->h[i].fd = -1;
	return f;
}

void files_free(struct files *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < AGENT_FS_MAX_HANDLES; i++)
		closep(&f->h[i].fd);
	free(f);
}

/* ---- handles -------------------------------------------------------------- */

static int handle_add(struct files *f, int fd, enum handle_kind kind, bool writable,
                      uint32_t *ret_id)
{
	for (size_t i = 0; i < AGENT_FS_MAX_HANDLES; i++) {
		struct handle *h = &f->h[i];
		uint32_t gen = (h->gen + 1) & (UINT32_MAX >> HANDLE_SLOT_BITS);

		if (h->kind != H_FREE)
			continue;
		gen = gen ? gen : 1;
		*h = (struct handle){.kind = kind, .writable = writable, .fd = fd, .gen = gen};
		f->nopen++;
		*ret_id = gen << HANDLE_SLOT_BITS | (uint32_t)i;
		return 0;
	}
	return -EMFILE;
}

static struct handle *handle_get(struct files *f, uint32_t id)
{
	uint32_t i = id & ((1u << HANDLE_SLOT_BITS) - 1);

	if (i >= AGENT_FS_MAX_HANDLES || f->h[i].kind == H_FREE ||
	    f->h[i].gen != id >> HANDLE_SLOT_BITS)
		return NULL;
	return &f->h[i];
}

/* ---- paths ------------------------------------------------------------------ */

/* The client's path as a C string: at most AP_MAX_PATH - 1 bytes, like
 * the kernel's PATH_MAX with its NUL (-ENAMETOOLONG), no embedded NUL
 * (-EINVAL: "/etc/x\0/../y" must not mean something else to us than to
 * the client), absolute (-EINVAL). */
static int wire_path(const struct ap_bytes *b, char *buf)
{
	int r = ap_bytes_to_str(b, buf, AP_MAX_PATH);

	if (r < 0)
		return r;
	return buf[0] == '/' ? 0 : -EINVAL;
}

/* Split path (modified in place) into its parent, opened O_PATH inside
 * the root, and its last component. Trailing slashes are dropped, as the
 * kernel does for directories; *ret_slash says there were some. The root
 * itself has no last component (-EBUSY); "." and ".." as the last one
 * would make the *at() call walk again (-EINVAL). */
static int open_parent(struct files *f, char *path, int *ret_dirfd, const char **ret_name,
                       bool *ret_slash)
{
	size_t len = strlen(path);
	char *slash;
	int r;

	*ret_slash = false;
	while (len > 1 && path[len - 1] == '/') {
		path[--len] = 0;
		*ret_slash = true;
	}
	slash = strrchr(path, '/');
	if (!slash[1])
		return -EBUSY;
	if (!strcmp(slash + 1, ".") || !strcmp(slash + 1, ".."))
		return -EINVAL;
	*ret_name = slash + 1;
	if (slash == path) {
		r = target_openat(f->t, "/", O_PATH | O_DIRECTORY, ret_dirfd);
	} else {
		*slash = 0;
		r = target_openat(f->t, path, O_PATH | O_DIRECTORY, ret_dirfd);
		*slash = '/';
	}
	return r;
}

/* Open a resolved O_PATH fd for I/O. The magic link is our own
 * /proc/self/fd entry: it reopens exactly the inode already checked. */
static int reopen(int pathfd, int flags, int *ret_fd)
{
	char p[FD_PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", pathfd);
	fd = open(p, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

/* A regular file of the target, opened for I/O (O_RDONLY or O_RDWR). With
 * dir_ok, a directory opened O_RDONLY is one too, as open(2) without
 * O_DIRECTORY allows: Go's os.ReadDir opens a directory that way, and
 * EISDIR there made `ls` of a pod directory fail ("open /app: is a
 * directory"). */
static int open_regular(struct files *f, const char *path, int flags, bool dir_ok,
                        struct stat *ret_st, int *ret_fd)
{
	_cleanup_close_ int pfd = -1;
	int r = target_openat(f->t, path, O_PATH, &pfd);

	if (r < 0)
		return r;
	if (fstat(pfd, ret_st) < 0)
		return -errno;
	if (S_ISDIR(ret_st->st_mode))
		return dir_ok && flags == O_RDONLY ? reopen(pfd, O_RDONLY | O_DIRECTORY, ret_fd)
		                                   : -EISDIR;
	if (!S_ISREG(ret_st->st_mode))
		return -EINVAL; /* devices, FIFOs, sockets are not served */
	return reopen(pfd, flags, ret_fd);
}

static void stat_to_wire(const struct stat *st, struct ap_fs_stat *w)
{
	*w = (struct ap_fs_stat){
	        .dev = st->st_dev,
	        .ino = st->st_ino,
	        .mode = st->st_mode,
	        .uid = st->st_uid,
	        .gid = st->st_gid,
	        .nlink = st->st_nlink,
	        .rdev = st->st_rdev,
	        .size = st->st_size > 0 ? (uint64_t)st->st_size : 0,
	        .blksize = st->st_blksize > 0 ? (uint64_t)st->st_blksize : 0,
	        .blocks = st->st_blocks > 0 ? (uint64_t)st->st_blocks : 0,
	        .atime = {st->st_atim.tv_sec, (uint32_t)st->st_atim.tv_nsec},
	        .mtime = {st->st_mtim.tv_sec, (uint32_t)st->st_mtim.tv_nsec},
	        .ctime = {st->st_ctim.tv_sec, (uint32_t)st->st_ctim.tv_nsec},
	};
}

/* ---- operations: each returns 0 or -errno and fills the response ----------- */

static int op_stat(struct files *f, const char *path, uint32_t flags, struct ap_msg *resp)
{
	/* O_PATH | O_NOFOLLOW gives an fd for a final symlink itself, so
	 * fstat on it is lstat, while the walk up to it stays confined. */
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r = target_openat(f->t, path, O_PATH | (flags & AP_FS_NOFOLLOW ? O_NOFOLLOW : 0), &fd);

	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return -errno;
	stat_to_wire(&st, &resp->u.fs_resp.st);
	return 0;
}

static int op_readlink(struct files *f, const char *path, struct ap_msg *resp)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	ssize_t n;
	int r = target_openat(f->t, path, O_PATH | O_NOFOLLOW, &fd);

	if (r < 0)
		return r;
	/* readlinkat(fd, "") on a non-link says ENOENT; readlink(2) on a
	 * path says EINVAL, which is what the program expects. */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISLNK(st.st_mode))
		return -EINVAL;
	n = readlinkat(fd, "", (char *)f->chunk, AP_MAX_PATH);
	if (n < 0)
		return -errno;
	if (n >= AP_MAX_PATH)
		return -ENAMETOOLONG;
	resp->u.fs_resp.data = (struct ap_bytes){f->chunk, (uint32_t)n};
	return 0;
}

static int op_access(struct files *f, const char *path, uint32_t mode)
{
	_cleanup_close_ int fd = -1;
	int r = target_openat(f->t, path, O_PATH, &fd);

	if (r < 0)
		return r;
	/* The AP_FS_*_OK values are R_OK, W_OK, X_OK. */
	if (syscall(SYS_faccessat2, fd, "", (int)mode, AT_EMPTY_PATH | AT_EACCESS) < 0)
		return -errno;
	return 0;
}

static int op_statfs(struct files *f, const char *path, struct ap_msg *resp)
{
	_cleanup_close_ int fd = -1;
	struct statfs s;
	uint64_t fsid;
	int r = target_openat(f->t, path, O_PATH, &fd);

	if (r < 0)
		return r;
	if (fstatfs(fd, &s) < 0)
		return -errno;
	memcpy(&fsid, &s.f_fsid, sizeof(fsid));
	resp->u.fs_resp.sfs = (struct ap_fs_statfs){
	        .type = (uint64_t)s.f_type,
	        .bsize = (uint64_t)s.f_bsize,
	        .blocks = s.f_blocks,
	        .bfree = s.f_bfree,
	        .bavail = s.f_bavail,
	        .files = s.f_files,
	        .ffree = s.f_ffree,
	        .fsid = fsid,
	        .namelen = (uint64_t)s.f_namelen,
	        .frsize = (uint64_t)s.f_frsize,
	        .flags = (uint64_t)s.f_flags,
	};
	return 0;
}

/* O_CREAT on a name that does not exist yet: O_EXCL | O_NOFOLLOW in the
 * confined parent, so the new file is there and nowhere else. */
static int create_file(struct files *f, char *path, uint32_t mode, int *ret_fd)
{
	_cleanup_close_ int dfd = -1;
	const char *name;
	bool slash;
	int fd, r = open_parent(f, path, &dfd, &name, &slash);

	if (r < 0)
		return r;
	if (slash)
		return -EISDIR; /* open("new/", O_CREAT) */
	fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
	            (mode_t)mode);
	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

static int op_open(struct files *f, char *path, uint32_t flags, uint32_t mode, struct ap_msg *resp)
{
	bool w = flags & AP_FS_O_WRITE, dir = flags & AP_FS_O_DIRECTORY;
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	if (w && !f->write_ok)
		return -EROFS;
	if (f->nopen >= AGENT_FS_MAX_HANDLES)
		return -EMFILE;
	if (dir)
		/* Opening a directory has no side effects: no O_PATH step. */
		r = target_openat(f->t, path, O_RDONLY | O_DIRECTORY, &fd);
	else
		r = open_regular(f, path, w ? O_RDWR : O_RDONLY, true, &st, &fd);
	if (r == -ENOENT && (flags & AP_FS_O_CREAT))
		r = create_file(f, path, mode, &fd);
	else if (r == 0 && (flags & AP_FS_O_EXCL))
		r = -EEXIST;
	if (r < 0)
		return r;
	if ((flags & AP_FS_O_TRUNC) && ftruncate(fd, 0) < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	r = handle_add(f, fd, S_ISDIR(st.st_mode) ? H_DIR : H_FILE, w, &resp->u.fs_resp.handle);
	if (r < 0)
		return r;
	TAKE_FD(fd);
	stat_to_wire(&st, &resp->u.fs_resp.st);
	return 0;
}

/* The parts of a file's state that any change of its content moves: the
 * inode (replaced by rename or delete + create), its size, and its
 * mtime and ctime. ctime also moves on chmod and chown: such a change
 * counts as one too, since mtime alone can be set back (touch -d, cp -p,
 * tar) and ctime cannot. */
static bool same_version(const struct stat *st, const struct ap_fs_stat *v)
{
	return st->st_dev == v->dev && st->st_ino == v->ino && (uint64_t)st->st_size == v->size &&
	       st->st_mtim.tv_sec == v->mtime.sec &&
	       (uint32_t)st->st_mtim.tv_nsec == v->mtime.nsec &&
	       st->st_ctim.tv_sec == v->ctime.sec && (uint32_t)st->st_ctim.tv_nsec == v->ctime.nsec;
}

/* The write-back's open (agentproto.h, OPEN_IF): compared and truncated
 * on the same inode. A pod process that writes between the fstat and the
 * ftruncate (microseconds) still loses its write: without a lock every
 * writer in the pod takes, no check can close that window. */
static int op_open_if(struct files *f, const char *path, const struct ap_fs_stat *v,
                      struct ap_msg *resp)
{
	_cleanup_close_ int pfd = -1, fd = -1;
	struct stat st;
	int r;

	if (f->nopen >= AGENT_FS_MAX_HANDLES)
		return -EMFILE;
	r = target_openat(f->t, path, O_PATH, &pfd);
	if (r < 0)
		return r;
	if (fstat(pfd, &st) < 0)
		return -errno;
	if (!same_version(&st, v))
		return -ESTALE;
	if (!S_ISREG(st.st_mode))
		return -EINVAL; /* the client names a version of a regular file */
	r = reopen(pfd, O_RDWR, &fd);
	if (r < 0)
		return r;
	if (ftruncate(fd, 0) < 0 || fstat(fd, &st) < 0)
		return -errno;
	r = handle_add(f, fd, H_FILE, true, &resp->u.fs_resp.handle);
	if (r < 0)
		return r;
	TAKE_FD(fd);
	stat_to_wire(&st, &resp->u.fs_resp.st);
	return 0;
}

static int op_fsync(struct handle *h, struct ap_msg *resp)
{
	struct stat st;

	/* The stat after the sync is the version of what the client wrote:
	 * its next OPEN_IF names it. */
	if (fsync(h->fd) < 0 || fstat(h->fd, &st) < 0)
		return -errno;
	stat_to_wire(&st, &resp->u.fs_resp.st);
	return 0;
}

static int op_read(struct files *f, struct handle *h, uint64_t off, uint32_t count,
                   struct ap_msg *resp)
{
	ssize_t n;

	if (h->kind == H_DIR)
		return -EISDIR;
	do
		n = pread(h->fd, f->chunk, count, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	resp->u.fs_resp.data = (struct ap_bytes){f->chunk, (uint32_t)n};
	return 0;
}

static int op_write(struct handle *h, uint64_t off, const struct ap_bytes *data,
                    struct ap_msg *resp)
{
	size_t done = 0;

	if (!h->writable)
		return -EBADF;
	while (done < data->len) {
		ssize_t n = pwrite(h->fd, data->ptr + done, data->len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return done ? 0 : -errno; /* a short count, as write(2) */
		if (n == 0)
			break;
		done += (size_t)n;
	}
	resp->u.fs_resp.count = (uint32_t)done;
	return 0;
}

/* One READDIR page from cookie on. The position is the request's, not
 * the fd's (lseek to the cookie first), so the client may re-read and no
 * per-handle page state is kept. Stops when the page is full and at the
 * end of the directory (eof). */
static int op_readdir(struct files *f, struct handle *h, uint64_t cookie, struct ap_msg *resp)
{
	size_t out = 0;
	uint32_t count = 0;
	uint64_t next = cookie;
	bool full = false;

	if (h->kind != H_DIR)
		return -ENOTDIR;
	if (lseek(h->fd, (off_t)cookie, SEEK_SET) < 0)
		return -errno;
	while (!full) {
		long n = syscall(SYS_getdents64, h->fd, f->kdents, sizeof(f->kdents));
		if (n < 0)
			return -errno;
		if (n == 0) {
			resp->u.fs_resp.eof = 1;
			break;
		}
		for (size_t off = 0; off < (size_t)n;) {
			struct kdirent d;
			memcpy(&d, f->kdents + off, sizeof(d));
			const char *name = (const char *)f->kdents + off + KDIRENT_NAME_OFF;
			size_t nl = strnlen(name, d.d_reclen - KDIRENT_NAME_OFF);
			int r = count < AP_FS_DIR_MAX_ENTRIES
			                ? ap_dirent_put(f->chunk, AP_FS_DIR_MAX_BYTES, &out,
			                                d.d_ino, d.d_type, name, nl)
			                : -ENOBUFS;
			if (r == -ENOBUFS) {
				full = true;
				break;
			}
			/* -EINVAL: a name no kernel produces; skip it. */
			count += r == 0;
			next = (uint64_t)d.d_off;
			off += d.d_reclen;
		}
	}
	resp->u.fs_resp.cookie = next;
	resp->u.fs_resp.count = count;
	resp->u.fs_resp.data = (struct ap_bytes){f->chunk, (uint32_t)out};
	return 0;
}

static int op_close(struct files *f, struct handle *h)
{
	/* close() errors on NFS report lost writes; FSYNC is the way to
	 * ask for them, so a close is not retried and reports nothing. */
	closep(&h->fd);
	h->kind = H_FREE;
	f->nopen--;
	return 0;
}

static int op_truncate(struct files *f, const char *path, uint64_t len)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r = open_regular(f, path, O_WRONLY, false, &st, &fd);

	if (r < 0)
		return r;
	return ftruncate(fd, (off_t)len) < 0 ? -errno : 0;
}

/* MKDIR, UNLINK, RMDIR: one call on the last component in its parent. */
static int op_name(struct files *f, uint8_t op, char *path, uint32_t mode)
{
	_cleanup_close_ int dfd = -1;
	const char *name;
	bool slash;
	struct stat st;
	int r = open_parent(f, path, &dfd, &name, &slash);

	if (r < 0)
		return r == -EBUSY && op == AP_FS_MKDIR ? -EEXIST : r;
	if (op == AP_FS_MKDIR)
		r = mkdirat(dfd, name, (mode_t)mode);
	else if (op == AP_FS_RMDIR)
		r = unlinkat(dfd, name, AT_REMOVEDIR);
	else if (slash && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		/* unlink("file/") fails as the kernel would */
		return S_ISDIR(st.st_mode) ? -EISDIR : -ENOTDIR;
	else
		r = unlinkat(dfd, name, 0);
	return r < 0 ? -errno : 0;
}

static int op_rename(struct files *f, char *from, char *to, uint32_t flags)
{
	_cleanup_close_ int dfrom = -1, dto = -1;
	const char *nfrom, *nto;
	bool slash;
	int r = open_parent(f, from, &dfrom, &nfrom, &slash);

	if (r == 0)
		r = open_parent(f, to, &dto, &nto, &slash);
	if (r < 0)
		return r;
	if (renameat2(dfrom, nfrom, dto, nto,
	              flags & AP_FS_RENAME_NOREPLACE ? RENAME_NOREPLACE : 0) < 0)
		return -errno;
	return 0;
}

static bool op_writes(uint8_t op)
{
	switch (op) {
	case AP_FS_MKDIR:
	case AP_FS_UNLINK:
	case AP_FS_RMDIR:
	case AP_FS_RENAME:
	case AP_FS_TRUNCATE:
	case AP_FS_OPEN_IF:
		return true;
	default:
		return false;
	}
}

static int serve(struct files *f, const struct ap_msg *m, struct ap_msg *resp)
{
	const uint8_t op = m->u.fs_req.op;
	char path[AP_MAX_PATH], path2[AP_MAX_PATH];
	struct handle *h = NULL;
	int r;

	bool on_handle = op == AP_FS_READ || op == AP_FS_WRITE || op == AP_FS_FSYNC ||
	                 op == AP_FS_CLOSE || op == AP_FS_READDIR;

	if (op_writes(op) && !f->write_ok)
		return -EROFS;
	if (on_handle) {
		h = handle_get(f, m->u.fs_req.handle);
		if (!h)
			return -EBADF;
	} else if (op != AP_FS_ENABLE_WRITE) {
		r = wire_path(&m->u.fs_req.path, path);
		if (r < 0)
			return r;
	}
	if (op == AP_FS_RENAME) {
		r = wire_path(&m->u.fs_req.path2, path2);
		if (r < 0)
			return r;
	}

	switch (op) {
	case AP_FS_ENABLE_WRITE:
		if (!f->write_ok)
			log_info("the client enabled writes to the target's files");
		f->write_ok = true;
		return 0;
	case AP_FS_STAT:
		return op_stat(f, path, m->u.fs_req.flags, resp);
	case AP_FS_READLINK:
		return op_readlink(f, path, resp);
	case AP_FS_ACCESS:
		return op_access(f, path, m->u.fs_req.mode);
	case AP_FS_STATFS:
		return op_statfs(f, path, resp);
	case AP_FS_OPEN:
		return op_open(f, path, m->u.fs_req.flags, m->u.fs_req.mode, resp);
	case AP_FS_READ:
		return op_read(f, h, m->u.fs_req.offset, m->u.fs_req.count, resp);
	case AP_FS_WRITE:
		return op_write(h, m->u.fs_req.offset, &m->u.fs_req.data, resp);
	case AP_FS_FSYNC:
		return op_fsync(h, resp);
	case AP_FS_CLOSE:
		return op_close(f, h);
	case AP_FS_READDIR:
		return op_readdir(f, h, m->u.fs_req.offset, resp);
	case AP_FS_MKDIR:
	case AP_FS_UNLINK:
	case AP_FS_RMDIR:
		return op_name(f, op, path, m->u.fs_req.mode);
	case AP_FS_RENAME:
		return op_rename(f, path, path2, m->u.fs_req.flags);
	case AP_FS_TRUNCATE:
		return op_truncate(f, path, m->u.fs_req.offset);
	case AP_FS_OPEN_IF:
		return op_open_if(f, path, &m->u.fs_req.st, resp);
	default:
		return -EOPNOTSUPP; /* ap_decode admits only known ops */
	}
}

void files_serve(struct files *f, struct client *c, const struct ap_msg *m)
{
	struct ap_msg resp = {.type = AP_FS_RESP, .id = m->id, .u.fs_resp.op = m->u.fs_req.op};
	int r = serve(f, m, &resp);

	if (r < 0) {
		/* A failed op carries no fields (agentproto.h). */
		memset(&resp.u.fs_resp, 0, sizeof(resp.u.fs_resp));
		resp.u.fs_resp.op = m->u.fs_req.op;
		resp.u.fs_resp.err = -r;
		log_debug("FS %s: %s", ap_fs_op_name(m->u.fs_req.op), strerror(-r));
	}
	r = client_send(c, &resp);
	if (r < 0)
		client_fail(c, AGENT_EXIT_FAIL, -r, "cannot queue FS_RESP: %s", strerror(-r));
}
