/* The remote-file cache (see fs_cache.h). Invariants:
 * - Everything lives under one directory of mode 0700 inside the run
 *   directory, so no other local user reads the pod's secrets, and all of
 *   it goes when the run ends (fs_cache_free, or the next run's prune of a
 *   killed one).
 * - A copy is replaced by rename() of a complete temporary file, so a
 *   program never sees half a fetch, and fds it holds on an older copy
 *   keep the content they had.
 * - A copy opened for writing is the newest version of its file until it
 *   is written back: it is never fetched over.
 * - A write-back never replaces a pod file that changed since the copy
 *   was taken or last written back (OPEN_IF, agentproto.h): the pod's
 *   change stays, the program's version goes to the conflict directory,
 *   and the caller is told (fs_cache_set_conflicts). */
#include "session/fs_cache.h"
#include "common/util.h"
#include "session/fuse.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NBUCKETS 1024
/* File times move in clock ticks: a jiffy (up to 10 ms) on kernels and
 * filesystems without multigrain timestamps (before Linux 6.13). */
#define RACY_NS (20ll * 1000000)

struct entry {
	struct entry *next;
	char *remote;
	/* the pod's file when last copied */
	off_t size;
	struct timespec mtime;
	bool have;
	/* write-back */
	bool writable, pending;
	mode_t mode;
	off_t lsize; /* the copy when last sent or taken */
	struct timespec lmtime;
	bool racy;        /* lsize and lmtime prove nothing (note_copy) */
	uint64_t lhash;   /* then: the content's hash */
	struct stat base; /* the pod's version the copy was taken from or last wrote */
	bool conflict;    /* the pod's file changed: write-backs go to saved */
	bool gone;        /* ... or was deleted */
	char *saved;      /* the program's version, in the conflict directory */
};

struct fs_cache {
	struct session *s;
	char *dir;
	size_t dirlen;
	struct entry *bucket[NBUCKETS];
	unsigned tmp_seq;
	struct evloop *loop;  /* deferred work of asynchronous opens */
	struct fs_fuse *lazy; /* large files are read through it, or NULL */
	uint64_t lazy_min;
	char *conflict_dir; /* created at the first conflict */
	fs_cache_conflict_cb conflict_cb;
	void *conflict_data;
};

static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h % NBUCKETS);
}

static struct entry *lookup(struct fs_cache *c, const char *remote, bool create)
{
	struct entry **b = &c->bucket[hash(remote)], *e;

	for (e = *b; e; e = e->next)
		if (strcmp(e->remote, remote) == 0)
			return e;
	if (!create)
		return NULL;
	e = xcalloc(1, sizeof(*e));
	e->remote = xstrdup(remote);
	e->next = *b;
	*b = e;
	return e;
}

int fs_cache_new(struct session *s, const char *dir, struct fs_cache **ret)
{
	struct fs_cache *c;

	if (mkdir(dir, 0700) < 0)
		return -errno;
	c = xcalloc(1, sizeof(*c));
	c->s = s;
	c->dir = xstrdup(dir);
	c->dirlen = strlen(dir);
	*ret = c;
	return 0;
}

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* FNV-1a of the copy's content; 0 if it cannot be read (a change). */
static uint64_t content_hash(int fd)
{
	_cleanup_free_ uint8_t *buf = xmalloc(64 * 1024);
	uint64_t h = 1469598103934665603ull;
	off_t off = 0;

	for (;;) {
		ssize_t n = pread(fd, buf, 64 * 1024, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 0;
		if (n == 0)
			return h;
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 1099511628211ull;
		off += n;
	}
}

/* Note the copy (fd, sb) as sent or taken, to tell at the next sync
 * whether the program changed it. Size and mtime tell, unless the note
 * is taken within a tick of the mtime ("racily clean", as git calls it):
 * a write later in that same tick keeps both (a 4-byte file overwritten
 * in place 1 ms after its last write-back). Then the content's hash is
 * noted too and compared: the usual fsync-then-close costs a read of
 * the local copy, not a second write-back. */
static void note_copy(struct entry *e, int fd, const struct stat *sb)
{
	struct timespec now;
	int64_t age;

	clock_gettime(CLOCK_REALTIME, &now);
	age = (int64_t)(now.tv_sec - sb->st_mtim.tv_sec) * 1000000000 +
	      (now.tv_nsec - sb->st_mtim.tv_nsec);
	e->lsize = sb->st_size;
	e->lmtime = sb->st_mtim;
	e->racy = age < RACY_NS;
	e->lhash = e->racy ? content_hash(fd) : 0;
}

/* Whether the copy (fd, sb) may differ from the one last noted. */
static bool copy_changed(struct entry *e, int fd, const struct stat *sb)
{
	if (e->pending || sb->st_size != e->lsize || !same_time(sb->st_mtim, e->lmtime))
		return true;
	return e->racy && content_hash(fd) != e->lhash;
}

void fs_cache_free(struct fs_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < NBUCKETS; i++) {
		struct entry *e = c->bucket[i], *next;
		for (; e; e = next) {
			next = e->next;
			if (e->writable) {
				_cleanup_free_ char *local = fs_cache_path(c, e->remote);
				(void)fs_cache_sync(c, local);
			}
			free(e->remote);
			free(e->saved);
			free(e);
		}
	}
	(void)rm_tree(c->dir);
	free(c->dir);
	free(c->conflict_dir);
	free(c);
}

const char *fs_cache_dir(const struct fs_cache *c)
{
	return c->dir;
}

char *fs_cache_path(const struct fs_cache *c, const char *remote)
{
	return strcmp(remote, "/") == 0 ? xstrdup(c->dir) : xasprintf("%s%s", c->dir, remote);
}

char *fs_cache_remote_of(const struct fs_cache *c, const char *local)
{
	if (strncmp(local, c->dir, c->dirlen) != 0)
		return NULL;
	if (local[c->dirlen] == 0)
		return xstrdup("/");
	if (local[c->dirlen] != '/')
		return NULL;
	return xstrdup(local + c->dirlen);
}

char *fs_cache_link_remote_of(const struct fs_cache *c, const char *local)
{
	char *r = fs_cache_remote_of(c, local);

	if (!r && c->lazy)
		r = fs_fuse_remote_of(c->lazy, local);
	return r;
}

/* mkdir -p (mode 0700) of the directories above path from its byte from
 * on; with clear, a file in the way goes. */
static int mkdir_parents(const char *path, size_t from, bool clear)
{
	_cleanup_free_ char *p = xstrdup(path);

	for (char *q = p + from + 1; (q = strchr(q, '/')); q++) {
		struct stat sb;
		*q = 0;
		if (clear && lstat(p, &sb) == 0 && !S_ISDIR(sb.st_mode))
			(void)rm_tree(p);
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		*q = '/';
	}
	return 0;
}

/* mkdir -p of the directories above local (below the cache dir); a
 * placeholder file in the way (a name listed as a file earlier) goes. */
static int make_parents(struct fs_cache *c, const char *local)
{
	return mkdir_parents(local, c->dirlen, true);
}

/* A new temporary file in the cache dir (not in a mirrored directory,
 * where a listing would show it). */
static int tmp_open(struct fs_cache *c, char **ret_path)
{
	for (int tries = 0; tries < 16; tries++) {
		char *p = xasprintf("%s/.mirrord-trace-tmp-%u", c->dir, c->tmp_seq++);
		int fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			*ret_path = p;
			return fd;
		}
		free(p);
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

/* Fill a new copy of remote from the open handle h (len bytes; 0 leaves
 * it empty) and put it in place. Returns the copy's fd (for fstat) or
 * -errno. */
/* Put the filled temporary file tmp (open as fd) in place as the copy at
 * local, with the pod's mode and times (for_write: ours to write).
 * Returns 0 or -errno (tmp is gone then). */
static int place_copy(struct fs_cache *c, const char *local, const char *tmp, int fd,
                      const struct stat *st, bool for_write)
{
	struct stat sb;
	int r;

	if (for_write) {
		/* The owner's bits of the pod's mode, always readable and
		 * writable by us (the program writes the copy). */
		(void)fchmod(fd, 0600 | (st->st_mode & 0700));
	} else {
		/* fstat of the program's fd shows the pod's mode and times
		 * (not its owner and link count: see the FUSE path for those).
		 * Readable by us whatever the pod says: the agent already
		 * opened it there. No set-id bits on our copies. */
		struct timespec ts[2] = {st->st_atim, st->st_mtim};
		(void)fchmod(fd, (st->st_mode & 0777) | S_IRUSR);
		(void)futimens(fd, ts);
	}
	r = make_parents(c, local);
	if (r == 0 && lstat(local, &sb) == 0 && S_ISDIR(sb.st_mode))
		(void)rm_tree(local);
	if (r < 0 || rename(tmp, local) < 0) {
		r = r < 0 ? r : -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

/* Fill a new copy of remote from the open handle h (len bytes; 0 leaves
 * it empty) and put it in place. Returns the copy's fd (for fstat) or
 * -errno. */
static int install_copy(struct fs_cache *c, const char *local, uint32_t h, const struct stat *st,
                        bool fetch, bool for_write)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = tmp_open(c, &tmp);
	int r;

	if (fd < 0)
		return fd;
	if (fetch && st->st_size > 0) {
		int64_t n = session_fs_fetch(c->s, h, 0, (uint64_t)st->st_size, fd);
		if (n < 0) {
			unlink(tmp);
			return (int)n;
		}
	}
	r = place_copy(c, local, tmp, fd, st, for_write);
	return r < 0 ? r : TAKE_FD(fd);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct session_dirent *)a)->name,
	              ((const struct session_dirent *)b)->name);
}

static bool plain_name(const char *n)
{
	return *n && strcmp(n, ".") && strcmp(n, "..") && !strchr(n, '/');
}

/* Mirror a remote directory's listing: entries that are missing locally
 * are created empty with the right type; local names the pod no longer
 * has are removed. Contents already copied stay. */
static int copy_listing(struct fs_cache *c, const char *remote, const char *local)
{
	_cleanup_free_ struct session_dirent *ents = NULL;
	_cleanup_free_ char *probe = xasprintf("%s/x", local);
	size_t n = 0;
	int r = session_fs_list(c->s, remote, &ents, &n);
	DIR *d;
	struct dirent *de;
	struct stat sb;

	if (r < 0)
		return r;
	if (lstat(local, &sb) == 0 && !S_ISDIR(sb.st_mode))
		(void)rm_tree(local);
	r = make_parents(c, probe);
	if (r < 0)
		return r;
	qsort(ents, n, sizeof(*ents), name_cmp);
	d = opendir(local);
	if (d) {
		while ((de = readdir(d))) {
			struct session_dirent key;
			if (!plain_name(de->d_name))
				continue;
			snprintf(key.name, sizeof(key.name), "%s", de->d_name);
			if (!bsearch(&key, ents, n, sizeof(*ents), name_cmp)) {
				_cleanup_free_ char *p = xasprintf("%s/%s", local, de->d_name);
				(void)rm_tree(p);
			}
		}
		closedir(d);
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *p = NULL;
		bool is_dir = ents[i].type == DT_DIR, is_lnk = ents[i].type == DT_LNK;
		if (!plain_name(ents[i].name))
			continue;
		p = xasprintf("%s/%s", local, ents[i].name);
		if (lstat(p, &sb) == 0) {
			if (S_ISDIR(sb.st_mode) == is_dir && S_ISLNK(sb.st_mode) == is_lnk)
				continue;
			(void)rm_tree(p);
		}
		/* Placeholders: only the name and type matter; stat, readlink
		 * and open of them are answered from the pod by path. */
		if (is_dir)
			(void)mkdir(p, 0700);
		else if (is_lnk)
			(void)symlink("(remote)", p);
		else
			(void)close(open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			                 0600));
	}
	return 0;
}

/* fs_cache_read, and with ret_path the path to open: the lazy node of a
 * large regular file (then nothing is fetched), else the copy. */
static int open_read(struct fs_cache *c, const char *remote, bool dir_only, struct stat *ret_st,
                     char **ret_path)
{
	_cleanup_free_ char *local = fs_cache_path(c, remote);
	struct entry *e = lookup(c, remote, false);
	struct stat st, sb;
	uint32_t h;
	int r = session_fs_open(c->s, remote, O_RDONLY | (dir_only ? O_DIRECTORY : 0), 0, &h, &st);

	if (r < 0)
		return r;
	bool large = c->lazy_min && S_ISREG(st.st_mode) && (uint64_t)st.st_size >= c->lazy_min;
	if (ret_path && c->lazy && large && !(e && e->writable)) {
		/* The node takes the handle over; a full node table falls
		 * back to a copy. A copy opened for writing is newer than
		 * the pod's file, so it is never served from the pod. */
		if (fs_fuse_add(c->lazy, remote, h, &st, ret_path) == 0) {
			*ret_st = st;
			return 0;
		}
	}
	if (S_ISDIR(st.st_mode)) {
		r = copy_listing(c, remote, local);
	} else if (e && e->have &&
	           (e->writable || (e->size == st.st_size && same_time(e->mtime, st.st_mtim))) &&
	           lstat(local, &sb) == 0 && S_ISREG(sb.st_mode)) {
		r = 0; /* the copy is current */
	} else {
		r = install_copy(c, local, h, &st, true, false);
		if (r >= 0) {
			close(r);
			e = lookup(c, remote, true);
			e->have = true;
			e->size = st.st_size;
			e->mtime = st.st_mtim;
			r = large && !c->lazy ? 1 : 0;
		}
	}
	(void)session_fs_close(c->s, h);
	if (r >= 0) {
		*ret_st = st;
		if (ret_path)
			*ret_path = TAKE_PTR(local);
	}
	return r;
}

int fs_cache_read(struct fs_cache *c, const char *remote, bool dir_only, struct stat *ret_st)
{
	int r = open_read(c, remote, dir_only, ret_st, NULL);

	return r < 0 ? r : 0;
}

int fs_cache_open_read(struct fs_cache *c, const char *remote, bool dir_only, char **ret_path)
{
	struct stat st;

	return open_read(c, remote, dir_only, &st, ret_path);
}

void fs_cache_set_lazy(struct fs_cache *c, struct evloop *l, struct fs_fuse *f, uint64_t min_size)
{
	c->loop = l;
	c->lazy = f;
	c->lazy_min = min_size;
}

/* ---- asynchronous opens ------------------------------------------------
 * The same decisions as open_read, as a chain of callbacks: open in the
 * pod, then the lazy node, the current copy, or a copy fetched with
 * OP_PIPE reads in flight. The callbacks may run inside a blocking call
 * of another handler (sync_wait dispatches them): they only send
 * asynchronous requests and touch local files, never wait. */

#define OP_PIPE 8
#define OP_CHUNK (64u * 1024) /* the most one session_fs_pread_async reads */

struct op_slot {
	struct fs_cache_op *op;
	int64_t req;
	uint64_t off;
};

struct fs_cache_op {
	struct fs_cache *c;
	struct evloop *l;
	char *remote;
	fs_cache_open_cb cb;
	void *data;
	int64_t open_req, timer;
	bool have_handle;
	uint32_t handle;
	struct stat st;
	char *tmp;
	int fd;
	uint64_t next;
	unsigned inflight;
	int err;
	bool eof;
	struct op_slot slot[OP_PIPE];
};

static void op_free(struct fs_cache_op *op)
{
	if (op->open_req)
		session_fs_cancel(op->c->s, op->open_req);
	for (unsigned i = 0; i < OP_PIPE; i++)
		if (op->slot[i].req)
			session_fs_cancel(op->c->s, op->slot[i].req);
	if (op->timer)
		evloop_timer_cancel(op->l, op->timer);
	if (op->have_handle)
		session_fs_close_nowait(op->c->s, op->handle);
	if (op->fd >= 0)
		close(op->fd);
	if (op->tmp)
		unlink(op->tmp);
	free(op->tmp);
	free(op->remote);
	free(op);
}

static void op_finish(struct fs_cache_op *op, int err, const char *path)
{
	fs_cache_open_cb cb = op->cb;
	void *data = op->data;

	op_free(op);
	cb(data, err, path);
}

static void op_pump(struct fs_cache_op *op);

static void op_chunk(void *data, const struct session_fs_result *res)
{
	struct op_slot *sl = data;
	struct fs_cache_op *op = sl->op;

	sl->req = 0;
	op->inflight--;
	if (res->err) {
		op->err = op->err ? op->err : res->err;
	} else if (!op->err && !op->eof && res->len > 0) {
		ssize_t w = pwrite(op->fd, res->data, res->len, (off_t)sl->off);
		if (w != (ssize_t)res->len)
			op->err = w < 0 ? -errno : -EIO; /* a full local disk */
	}
	/* A short chunk is the end of the file (it shrank meanwhile). */
	if (!res->err && res->len < OP_CHUNK)
		op->eof = true;
	op_pump(op);
}

/* Keep OP_PIPE reads in flight; when the last one is in, install. */
static void op_pump(struct fs_cache_op *op)
{
	struct fs_cache *c = op->c;
	uint64_t size = (uint64_t)op->st.st_size;

	while (!op->err && !op->eof && op->inflight < OP_PIPE && op->next < size) {
		struct op_slot *sl = NULL;
		for (unsigned i = 0; i < OP_PIPE && !sl; i++)
			if (!op->slot[i].req)
				sl = &op->slot[i];
		uint64_t n = size - op->next < OP_CHUNK ? size - op->next : OP_CHUNK;
		int64_t r =
		        session_fs_pread_async(c->s, op->handle, (size_t)n, op->next, op_chunk, sl);
		if (r < 0) {
			op->err = (int)r;
			break;
		}
		sl->req = r;
		sl->off = op->next;
		op->next += n;
		op->inflight++;
	}
	if (op->inflight)
		return;
	if (op->err) {
		op_finish(op, op->err, NULL);
		return;
	}
	_cleanup_free_ char *local = fs_cache_path(c, op->remote);
	struct entry *e = lookup(c, op->remote, false);
	if (e && e->writable) {
		/* Opened for writing meanwhile: that copy is the newer one. */
		op_finish(op, 0, local);
		return;
	}
	int r = place_copy(c, local, op->tmp, op->fd, &op->st, false);
	free(TAKE_PTR(op->tmp)); /* renamed, or unlinked by place_copy */
	if (r < 0) {
		op_finish(op, r, NULL);
		return;
	}
	e = lookup(c, op->remote, true);
	e->have = true;
	e->size = op->st.st_size;
	e->mtime = op->st.st_mtim;
	bool large = c->lazy_min && (uint64_t)op->st.st_size >= c->lazy_min;
	op_finish(op, large && !c->lazy ? 1 : 0, local);
}

/* A directory opened without O_DIRECTORY: its listing is copied with
 * blocking calls, from the loop (never inside another blocking call). */
static void op_dir_tick(struct evloop *l, void *data)
{
	struct fs_cache_op *op = data;
	_cleanup_free_ char *local = fs_cache_path(op->c, op->remote);
	int r;

	(void)l;
	op->timer = 0;
	r = copy_listing(op->c, op->remote, local);
	op_finish(op, r, r < 0 ? NULL : local);
}

static void op_opened(void *data, const struct session_fs_result *res)
{
	struct fs_cache_op *op = data;
	struct fs_cache *c = op->c;
	struct stat sb;

	op->open_req = 0;
	if (res->err) {
		op_finish(op, res->err, NULL);
		return;
	}
	op->have_handle = true;
	op->handle = res->handle;
	op->st = *res->st;

	_cleanup_free_ char *local = fs_cache_path(c, op->remote);
	struct entry *e = lookup(c, op->remote, false);
	bool large =
	        c->lazy_min && S_ISREG(op->st.st_mode) && (uint64_t)op->st.st_size >= c->lazy_min;
	if (S_ISDIR(op->st.st_mode)) {
		session_fs_close_nowait(c->s, op->handle);
		op->have_handle = false;
		int64_t t = evloop_timer(op->l, 0, op_dir_tick, op);
		if (t < 0)
			op_finish(op, (int)t, NULL);
		else
			op->timer = t;
		return;
	}
	if (c->lazy && large && !(e && e->writable)) {
		_cleanup_free_ char *node = NULL;
		if (fs_fuse_add(c->lazy, op->remote, op->handle, &op->st, &node) == 0) {
			op->have_handle = false; /* the node's now */
			op_finish(op, 0, node);
			return;
		}
	}
	if (e && e->have &&
	    (e->writable || (e->size == op->st.st_size && same_time(e->mtime, op->st.st_mtim))) &&
	    lstat(local, &sb) == 0 && S_ISREG(sb.st_mode)) {
		op_finish(op, 0, local); /* the copy is current */
		return;
	}
	op->fd = tmp_open(c, &op->tmp);
	if (op->fd < 0) {
		int r = op->fd;
		op_finish(op, r, NULL);
		return;
	}
	op_pump(op);
}

int fs_cache_open_read_async(struct fs_cache *c, const char *remote, fs_cache_open_cb cb,
                             void *data, struct fs_cache_op **ret)
{
	struct fs_cache_op *op;
	int64_t r;

	if (!c->loop)
		return -EOPNOTSUPP;
	op = xcalloc(1, sizeof(*op));
	op->c = c;
	op->l = c->loop;
	op->remote = xstrdup(remote);
	op->cb = cb;
	op->data = data;
	op->fd = -1;
	for (unsigned i = 0; i < OP_PIPE; i++)
		op->slot[i].op = op;
	r = session_fs_open_async(c->s, remote, op_opened, op);
	if (r < 0) {
		op_free(op);
		return (int)r;
	}
	op->open_req = r;
	*ret = op;
	return 0;
}

void fs_cache_op_cancel(struct fs_cache_op *op)
{
	if (op)
		op_free(op);
}

bool fs_cache_is_lazy(const struct fs_cache *c, const char *local)
{
	return c->lazy && fs_fuse_owns(c->lazy, local);
}

int fs_cache_write_open(struct fs_cache *c, const char *remote, int flags, mode_t mode)
{
	_cleanup_free_ char *local = fs_cache_path(c, remote);
	struct entry *e;
	struct stat st, sb;
	uint32_t h;
	int r = session_fs_open(c->s, remote, flags & (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC),
	                        mode, &h, &st);

	if (r < 0)
		return r;
	e = lookup(c, remote, true);
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
	} else if (e->writable && !(flags & O_TRUNC) && lstat(local, &sb) == 0 &&
	           S_ISREG(sb.st_mode)) {
		/* Our copy: as last sent, or newer with changes not yet
		 * written back (pending, or seen by copy_changed at the
		 * next sync). Opening it again changes nothing: a reopen
		 * closed unwritten after the pod's file changed is no
		 * conflict. */
		r = 0;
	} else {
		r = install_copy(c, local, h, &st, !(flags & O_TRUNC), true);
		if (r >= 0) {
			if (fstat(r, &sb) == 0)
				note_copy(e, r, &sb);
			close(r);
			e->have = e->writable = true;
			e->pending = (flags & O_TRUNC) && st.st_size > 0;
			e->size = st.st_size;
			e->mtime = st.st_mtim;
			e->mode = st.st_mode & 07777;
			/* A fresh copy of what the pod has now: whatever
			 * conflicted before is not in it. */
			e->base = st;
			e->conflict = false;
			r = 0;
		}
	}
	(void)session_fs_close(c->s, h);
	return r;
}

void fs_cache_set_conflicts(struct fs_cache *c, const char *dir, fs_cache_conflict_cb cb,
                            void *data)
{
	free(c->conflict_dir);
	c->conflict_dir = dir ? xstrdup(dir) : NULL;
	c->conflict_cb = cb;
	c->conflict_data = data;
}

/* Copy the program's version (fd) to e->saved: a temporary file next to
 * it, renamed over it, so an earlier saved version stays whole until the
 * new one is. Returns 0 or -errno. */
static int save_version(struct fs_cache *c, struct entry *e, int fd)
{
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int out = -1;
	off_t off = 0;
	int r;

	if (!c->conflict_dir)
		return -ENOENT;
	if (!e->saved)
		e->saved = xasprintf("%s%s", c->conflict_dir, e->remote);
	r = mkdir_parents(e->saved, 0, false);
	if (r < 0)
		return r;
	tmp = xasprintf("%s.mirrord-trace-tmp", e->saved);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0)
		return -errno;
	buf = xmalloc(OP_CHUNK);
	for (;;) {
		ssize_t n = pread(fd, buf, OP_CHUNK, off);
		if (n < 0 && errno == EINTR)
			continue;
		r = n < 0 ? -errno : n == 0 ? 0 : write_all(out, buf, (size_t)n);
		if (n <= 0 || r < 0)
			break;
		off += n;
	}
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, e->saved) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

/* The pod refused the write-back of e (err: -ESTALE changed, -ENOENT
 * gone), now or earlier (err 0). The pod's change stays; the program's
 * version is saved, and from then on its write-backs only update the
 * saved copy: the pod's file is not what the program started from, so
 * no later write-back of this copy may replace it either. Reported at
 * the first conflict and at every failure to save. Returns 0, or -errno
 * if the program's version could not be saved (fsync reports it). */
static int conflict(struct fs_cache *c, struct entry *e, int fd, int err)
{
	bool first = !e->conflict;
	int r = save_version(c, e, fd);

	if (first)
		e->gone = err == -ENOENT;
	e->conflict = true;
	if (c->conflict_cb && (first || r < 0)) {
		struct fs_cache_conflict cf = {
		        .remote = e->remote,
		        .gone = e->gone,
		        .saved = r == 0 ? e->saved : NULL,
		        .err = r,
		};
		c->conflict_cb(c->conflict_data, &cf);
	}
	return r;
}

/* Put the copy of remote (at local) to the pod if it changed. */
static int sync_entry(struct fs_cache *c, const char *remote, const char *local)
{
	_cleanup_close_ int fd = -1;
	struct entry *e = lookup(c, remote, false);
	struct stat sb, st;
	int r;

	if (!e || !e->writable)
		return 0;
	fd = open(local, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &sb) < 0)
		return 0; /* removed meanwhile: nothing to send */
	if (!copy_changed(e, fd, &sb))
		return 0;
	if (e->conflict) {
		r = conflict(c, e, fd, 0);
	} else {
		r = session_fs_put(c->s, fd, remote, e->mode, &e->base, &st);
		if (r == -ESTALE || r == -ENOENT) {
			r = conflict(c, e, fd, r);
		} else if (r == 0) {
			/* What we wrote is the base of the next write-back:
			 * the same run writing twice is no conflict. */
			e->base = st;
			e->size = st.st_size;
			e->mtime = st.st_mtim;
		}
	}
	if (r < 0)
		return r;
	e->pending = false;
	note_copy(e, fd, &sb);
	return 0;
}

int fs_cache_sync(struct fs_cache *c, const char *local)
{
	_cleanup_free_ char *remote = fs_cache_remote_of(c, local);

	return remote ? sync_entry(c, remote, local) : 0;
}

int fs_cache_flush(struct fs_cache *c, const char *remote)
{
	_cleanup_free_ char *local = fs_cache_path(c, remote);

	return sync_entry(c, remote, local);
}

void fs_cache_stat_written(struct fs_cache *c, const char *remote, struct stat *st)
{
	_cleanup_free_ char *local = NULL;
	struct entry *e = lookup(c, remote, false);
	struct stat sb;

	if (!e || !e->writable || !S_ISREG(st->st_mode))
		return;
	local = fs_cache_path(c, remote);
	if (lstat(local, &sb) < 0 || !S_ISREG(sb.st_mode))
		return;
	if (!e->pending && sb.st_size == e->lsize && same_time(sb.st_mtim, e->lmtime))
		return; /* as last sent: the pod's stat is the file's */
	st->st_size = sb.st_size;
	st->st_blocks = sb.st_blocks;
	st->st_atim = sb.st_atim;
	st->st_mtim = sb.st_mtim;
	st->st_ctim = sb.st_ctim;
}

int fs_cache_truncate(struct fs_cache *c, const char *remote, off_t len)
{
	_cleanup_free_ char *local = fs_cache_path(c, remote);
	struct entry *e = lookup(c, remote, false);
	_cleanup_close_ int fd = -1;
	struct stat sb, st;
	int r;

	if (!e || !e->writable)
		return 1;
	fd = open(local, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		return 1;
	if (e->conflict || copy_changed(e, fd, &sb)) {
		/* The copy holds what the program wrote and the pod has not
		 * seen (or, in conflict, what goes to the saved version):
		 * it is the file being truncated, then written back. */
		if (ftruncate(fd, len) < 0)
			return -errno;
		e->pending = true;
		return sync_entry(c, remote, local);
	}
	/* The copy is as last sent: the pod's file is truncated, whatever
	 * happened to it since, as truncate(2) in the pod would; the copy
	 * too, for the fds the program may still hold, and the pod's new
	 * version becomes the base of the next write-back. */
	r = session_fs_truncate(c->s, remote, (uint64_t)len);
	if (r < 0)
		return r;
	if (ftruncate(fd, len) < 0 || fstat(fd, &sb) < 0)
		return -errno;
	if (session_fs_stat(c->s, remote, true, &st) == 0) {
		e->base = st;
		e->size = st.st_size;
		e->mtime = st.st_mtim;
	}
	note_copy(e, fd, &sb);
	return 0;
}

void fs_cache_forget(struct fs_cache *c, const char *remote)
{
	_cleanup_free_ char *local = fs_cache_path(c, remote);
	struct entry *e = lookup(c, remote, false);

	if (e)
		e->have = e->writable = e->pending = false;
	if (strcmp(remote, "/") != 0)
		(void)rm_tree(local);
}

int fs_cache_mkdir(struct fs_cache *c, const char *remote)
{
	_cleanup_free_ char *local = fs_cache_path(c, remote);
	_cleanup_free_ char *probe = xasprintf("%s/x", local);

	return make_parents(c, probe);
}
