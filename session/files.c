/* Remote files: the client half of AP_FS_REQ / AP_FS_RESP. Every call
 * blocks (sync_wait) until the agent answers, bounded by FS_TIMEOUT_MS;
 * frames of other streams that arrive meanwhile are dispatched as usual.
 * The agent answers in request order, so several requests may be in
 * flight and their replies are awaited one by one (fetch, put). */
#include "session/internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define FS_TIMEOUT_MS 30000
/* READ/WRITE requests in flight during fetch and put: four 64 KiB chunks
 * cover the round trip of a port-forward without a large window. */
#define FS_PIPELINE 4

_Static_assert(SESSION_FS_NAME_MAX == AP_FS_NAME_MAX, "one name limit");

static struct ap_msg fs_req(uint8_t op)
{
	return (struct ap_msg){.type = AP_FS_REQ, .u.fs_req.op = op};
}

static struct ap_bytes str_bytes(const char *s)
{
	return (struct ap_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* Send a request; its id is returned for fs_wait. */
static int fs_send(struct session *s, struct ap_msg *req, uint32_t *ret_id)
{
	/* A path over the protocol's limit fails here as the kernel would
	 * fail it, not as a protocol error. */
	if (req->u.fs_req.path.len >= AP_MAX_PATH || req->u.fs_req.path2.len >= AP_MAX_PATH)
		return -ENAMETOOLONG;
	req->id = s->next_id++;
	*ret_id = req->id;
	return session_send(s, req);
}

/* Wait for the answer to request id (op). Returns its length in rbuf
 * (> 0; the caller copies what it needs, then consume_front) on success,
 * or -errno with nothing left to consume. */
static ssize_t fs_wait(struct session *s, uint32_t id, uint8_t op, struct ap_msg *ret)
{
	ssize_t used = sync_wait(s, AP_FS_RESP, id, FS_TIMEOUT_MS, ret);
	int r;

	if (used < 0)
		return used;
	if (ret->type == AP_ERROR)
		r = -EPROTO; /* the agent ended the session; dispatch says why */
	else if (ret->u.fs_resp.op != op)
		r = -EPROTO;
	else
		r = -ret->u.fs_resp.err;
	if (r < 0) {
		consume_front(s, (size_t)used);
		return r;
	}
	return used;
}

/* Send and wait. */
static ssize_t fs_call(struct session *s, struct ap_msg *req, struct ap_msg *ret)
{
	uint32_t id;
	int r = fs_send(s, req, &id);

	return r < 0 ? r : fs_wait(s, id, req->u.fs_req.op, ret);
}

static void stat_from_wire(const struct ap_fs_stat *w, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = (dev_t)w->dev;
	st->st_ino = (ino_t)w->ino;
	st->st_mode = (mode_t)w->mode;
	st->st_nlink = (nlink_t)w->nlink;
	st->st_uid = (uid_t)w->uid;
	st->st_gid = (gid_t)w->gid;
	st->st_rdev = (dev_t)w->rdev;
	st->st_size = w->size > (uint64_t)INT64_MAX ? INT64_MAX : (off_t)w->size;
	st->st_blksize = (blksize_t)w->blksize;
	st->st_blocks = (blkcnt_t)w->blocks;
	st->st_atim = (struct timespec){(time_t)w->atime.sec, (long)w->atime.nsec};
	st->st_mtim = (struct timespec){(time_t)w->mtime.sec, (long)w->mtime.nsec};
	st->st_ctim = (struct timespec){(time_t)w->ctime.sec, (long)w->ctime.nsec};
}

/* Send and wait; copy out the answer's handle and stat (each may be
 * NULL: for ops whose answer carries nothing but err, both are). */
static int fs_call_copy(struct session *s, struct ap_msg *req, uint32_t *ret_handle,
                        struct stat *ret_st)
{
	struct ap_msg resp;
	ssize_t used = fs_call(s, req, &resp);

	if (used < 0)
		return (int)used;
	if (ret_handle)
		*ret_handle = resp.u.fs_resp.handle;
	if (ret_st)
		stat_from_wire(&resp.u.fs_resp.st, ret_st);
	consume_front(s, (size_t)used);
	return 0;
}

static int fs_simple(struct session *s, struct ap_msg *req)
{
	return fs_call_copy(s, req, NULL, NULL);
}

int session_fs_enable_write(struct session *s)
{
	struct ap_msg req = fs_req(AP_FS_ENABLE_WRITE);
	return fs_simple(s, &req);
}

int session_fs_stat(struct session *s, const char *path, bool follow, struct stat *ret)
{
	struct ap_msg req = fs_req(AP_FS_STAT);

	req.u.fs_req.flags = follow ? 0 : AP_FS_NOFOLLOW;
	req.u.fs_req.path = str_bytes(path);
	return fs_call_copy(s, &req, NULL, ret);
}

int session_fs_readlink(struct session *s, const char *path, char **ret_target)
{
	struct ap_msg req = fs_req(AP_FS_READLINK), resp;
	ssize_t used;

	req.u.fs_req.path = str_bytes(path);
	used = fs_call(s, &req, &resp);
	if (used < 0)
		return (int)used;
	*ret_target = xstrndup((const char *)resp.u.fs_resp.data.ptr, resp.u.fs_resp.data.len);
	consume_front(s, (size_t)used);
	/* A target with a NUL would mean something else locally. */
	if (strlen(*ret_target) != resp.u.fs_resp.data.len) {
		free(TAKE_PTR(*ret_target));
		return -EPROTO;
	}
	return 0;
}

int session_fs_access(struct session *s, const char *path, int mode)
{
	struct ap_msg req = fs_req(AP_FS_ACCESS);

	if (mode & ~(R_OK | W_OK | X_OK))
		return -EINVAL;
	req.u.fs_req.mode = (uint32_t)mode;
	req.u.fs_req.path = str_bytes(path);
	return fs_simple(s, &req);
}

int session_fs_statfs(struct session *s, const char *path, struct statfs *ret)
{
	struct ap_msg req = fs_req(AP_FS_STATFS), resp;
	const struct ap_fs_statfs *w = &resp.u.fs_resp.sfs;
	ssize_t used;

	req.u.fs_req.path = str_bytes(path);
	used = fs_call(s, &req, &resp);
	if (used < 0)
		return (int)used;
	memset(ret, 0, sizeof(*ret));
	ret->f_type = (__fsword_t)w->type;
	ret->f_bsize = (__fsword_t)w->bsize;
	ret->f_blocks = w->blocks;
	ret->f_bfree = w->bfree;
	ret->f_bavail = w->bavail;
	ret->f_files = w->files;
	ret->f_ffree = w->ffree;
	memcpy(&ret->f_fsid, &w->fsid, sizeof(ret->f_fsid));
	ret->f_namelen = (__fsword_t)w->namelen;
	ret->f_frsize = (__fsword_t)w->frsize;
	ret->f_flags = (__fsword_t)w->flags;
	consume_front(s, (size_t)used);
	return 0;
}

int session_fs_open(struct session *s, const char *path, int flags, mode_t mode,
                    uint32_t *ret_handle, struct stat *ret_st)
{
	struct ap_msg req = fs_req(AP_FS_OPEN);
	uint32_t f = 0;

	if ((flags & O_ACCMODE) != O_RDONLY)
		f |= AP_FS_O_WRITE;
	if (flags & O_CREAT)
		f |= AP_FS_O_CREAT;
	if (flags & O_TRUNC)
		f |= AP_FS_O_TRUNC;
	if (flags & O_EXCL)
		f |= AP_FS_O_EXCL;
	if (flags & O_DIRECTORY)
		f |= AP_FS_O_DIRECTORY;
	req.u.fs_req.flags = f;
	req.u.fs_req.mode = (flags & O_CREAT) ? (uint32_t)(mode & AP_FS_MODE_MAX) : 0;
	req.u.fs_req.path = str_bytes(path);
	return fs_call_copy(s, &req, ret_handle, ret_st);
}

static int fs_on_handle(struct session *s, uint8_t op, uint32_t handle)
{
	struct ap_msg req = fs_req(op);

	req.u.fs_req.handle = handle;
	return fs_simple(s, &req);
}

int session_fs_close(struct session *s, uint32_t handle)
{
	return fs_on_handle(s, AP_FS_CLOSE, handle);
}

int session_fs_fsync(struct session *s, uint32_t handle, struct stat *ret_st)
{
	struct ap_msg req = fs_req(AP_FS_FSYNC);

	req.u.fs_req.handle = handle;
	return fs_call_copy(s, &req, NULL, ret_st);
}

/* OPEN_IF: open path for the write-back if it is still version base. */
static int open_if(struct session *s, const char *path, const struct stat *base,
                   uint32_t *ret_handle)
{
	struct ap_msg req = fs_req(AP_FS_OPEN_IF);
	struct ap_fs_stat *v = &req.u.fs_req.st;
	int r;

	v->dev = (uint64_t)base->st_dev;
	v->ino = (uint64_t)base->st_ino;
	v->size = base->st_size > 0 ? (uint64_t)base->st_size : 0;
	v->mtime = (struct ap_fs_time){base->st_mtim.tv_sec, (uint32_t)base->st_mtim.tv_nsec};
	v->ctime = (struct ap_fs_time){base->st_ctim.tv_sec, (uint32_t)base->st_ctim.tv_nsec};
	req.u.fs_req.path = str_bytes(path);
	r = fs_call_copy(s, &req, ret_handle, NULL);
	if (r == -ESTALE || r == -ENOENT)
		s->stats.fs_conflicts++;
	return r;
}

static int send_read(struct session *s, uint32_t handle, uint64_t off, size_t len, uint32_t *ret_id)
{
	struct ap_msg req = fs_req(AP_FS_READ);

	req.u.fs_req.handle = handle;
	req.u.fs_req.offset = off;
	req.u.fs_req.count = (uint32_t)(len < AP_MAX_DATA ? len : AP_MAX_DATA);
	return fs_send(s, &req, ret_id);
}

static int send_write(struct session *s, uint32_t handle, uint64_t off, const void *buf, size_t len,
                      uint32_t *ret_id)
{
	struct ap_msg req = fs_req(AP_FS_WRITE);

	req.u.fs_req.handle = handle;
	req.u.fs_req.offset = off;
	req.u.fs_req.data = (struct ap_bytes){buf, (uint32_t)len};
	return fs_send(s, &req, ret_id);
}

ssize_t session_fs_pread(struct session *s, uint32_t handle, void *buf, size_t len, uint64_t off)
{
	struct ap_msg resp;
	uint32_t id;
	ssize_t used;
	int r;

	if (len == 0 || len > AP_MAX_DATA || off > AP_FS_MAX_OFFSET)
		return -EINVAL;
	r = send_read(s, handle, off, len, &id);
	if (r < 0)
		return r;
	used = fs_wait(s, id, AP_FS_READ, &resp);
	if (used < 0)
		return used;
	size_t n = resp.u.fs_resp.data.len;
	if (n > len)
		n = 0; /* cannot happen: the agent reads at most count */
	memcpy(buf, resp.u.fs_resp.data.ptr, n);
	consume_front(s, (size_t)used);
	s->stats.fs_bytes += n;
	return (ssize_t)n;
}

ssize_t session_fs_pwrite(struct session *s, uint32_t handle, const void *buf, size_t len,
                          uint64_t off)
{
	struct ap_msg resp;
	uint32_t id;
	ssize_t used;
	int r;

	if (len > AP_MAX_DATA || off > AP_FS_MAX_OFFSET)
		return -EINVAL;
	r = send_write(s, handle, off, buf, len, &id);
	if (r < 0)
		return r;
	used = fs_wait(s, id, AP_FS_WRITE, &resp);
	if (used < 0)
		return used;
	uint32_t n = resp.u.fs_resp.count;
	consume_front(s, (size_t)used);
	return n;
}

/* The requests of one pipelined transfer, in the order they were sent. */
struct pipeline {
	uint32_t id[FS_PIPELINE];
	uint64_t off[FS_PIPELINE];
	size_t len[FS_PIPELINE];
	size_t head, n;
};

static void pipe_push(struct pipeline *p, uint32_t id, uint64_t off, size_t len)
{
	size_t i = (p->head + p->n++) % FS_PIPELINE;

	p->id[i] = id;
	p->off[i] = off;
	p->len[i] = len;
}

/* Wait for the oldest request in flight and take it off the pipe.
 * Returns fs_wait()'s result; *ret_slot is its index in p. */
static ssize_t pipe_pop(struct session *s, struct pipeline *p, uint8_t op, struct ap_msg *resp,
                        size_t *ret_slot)
{
	*ret_slot = p->head;
	p->head = (p->head + 1) % FS_PIPELINE;
	p->n--;
	return fs_wait(s, p->id[*ret_slot], op, resp);
}

/* The agent link failed: no reply in flight will ever arrive. */
static bool link_failed(ssize_t r)
{
	return r == -ETIMEDOUT || r == -ECONNRESET || r == -ENOTCONN;
}

int64_t session_fs_fetch(struct session *s, uint32_t handle, uint64_t off, uint64_t len, int fd)
{
	struct pipeline p = {0};
	uint64_t next = off, end, copied = 0;
	bool eof = false;
	int err = 0;

	if (off > AP_FS_MAX_OFFSET)
		return -EINVAL;
	end = len > AP_FS_MAX_OFFSET - off ? AP_FS_MAX_OFFSET : off + len;
	for (;;) {
		/* Keep the pipe full until the range or the file ends, or
		 * something failed; then drain what is in flight. */
		while (!eof && !err && p.n < FS_PIPELINE && next < end) {
			size_t n = end - next < AP_MAX_DATA ? (size_t)(end - next) : AP_MAX_DATA;
			uint32_t id;
			int r = send_read(s, handle, next, n, &id);
			if (r < 0)
				return r; /* the link is gone: nothing to drain */
			pipe_push(&p, id, next, n);
			next += n;
		}
		if (p.n == 0)
			break;

		struct ap_msg resp;
		size_t i;
		ssize_t used = pipe_pop(s, &p, AP_FS_READ, &resp, &i);
		if (link_failed(used))
			return used;
		if (used < 0) {
			err = err ? err : (int)used;
			continue;
		}
		uint32_t got = resp.u.fs_resp.data.len;
		s->stats.fs_bytes += got;
		if (!err && !eof && got > 0) {
			ssize_t w = pwrite(fd, resp.u.fs_resp.data.ptr, got, (off_t)p.off[i]);
			if (w == (ssize_t)got)
				copied += got;
			else
				err = w < 0 ? -errno : -EIO; /* a full local disk */
		}
		consume_front(s, (size_t)used);
		/* A short chunk is the end of the file: later chunks (in
		 * flight) come back empty and add nothing. */
		if (got < p.len[i])
			eof = true;
	}
	return err ? err : (int64_t)copied;
}

int session_fs_put(struct session *s, int fd, const char *path, mode_t mode,
                   const struct stat *base, struct stat *ret_st)
{
	_cleanup_free_ uint8_t *buf = xmalloc((size_t)FS_PIPELINE * AP_MAX_DATA);
	struct pipeline p = {0};
	uint64_t next = 0;
	uint32_t handle = 0;
	bool local_eof = false;
	int err, r;

	err = base ? open_if(s, path, base, &handle)
	           : session_fs_open(s, path, O_WRONLY | O_CREAT | O_TRUNC, mode, &handle, NULL);
	if (err < 0)
		return err;
	for (;;) {
		while (!local_eof && !err && p.n < FS_PIPELINE) {
			/* Chunk k of the pipe lives in buf slot (head + n). */
			uint8_t *chunk = buf + ((p.head + p.n) % FS_PIPELINE) * AP_MAX_DATA;
			ssize_t n = pread(fd, chunk, AP_MAX_DATA, (off_t)next);
			uint32_t id;
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				err = n < 0 ? -errno : 0;
				local_eof = true;
				break;
			}
			r = send_write(s, handle, next, chunk, (size_t)n, &id);
			if (r < 0)
				return r; /* the link is gone: the handle with it */
			pipe_push(&p, id, next, (size_t)n);
			next += (uint64_t)n;
		}
		if (p.n == 0)
			break;

		struct ap_msg resp;
		size_t i;
		ssize_t used = pipe_pop(s, &p, AP_FS_WRITE, &resp, &i);
		if (link_failed(used))
			return (int)used;
		if (used < 0) {
			err = err ? err : (int)used;
			continue;
		}
		/* The agent writes all of a chunk unless the disk is full. */
		if (resp.u.fs_resp.count != p.len[i] && !err)
			err = -ENOSPC;
		consume_front(s, (size_t)used);
	}
	if (!err)
		err = session_fs_fsync(s, handle, ret_st);
	r = session_fs_close(s, handle);
	return err ? err : r;
}

int session_fs_readdir(struct session *s, uint32_t handle, uint64_t *cookie,
                       struct session_dirent *ents, size_t cap, bool *ret_eof)
{
	struct ap_msg req = fs_req(AP_FS_READDIR), resp;
	struct ap_dirent d;
	size_t off = 0, n = 0;
	ssize_t used;

	req.u.fs_req.handle = handle;
	req.u.fs_req.offset = *cookie;
	used = fs_call(s, &req, &resp);
	if (used < 0)
		return (int)used;
	/* The page may hold more than cap entries: resume after the last
	 * one taken. Cookies of single entries are not on the wire, so a
	 * short cap re-reads; callers pass cap >= AP_FS_DIR_MAX_ENTRIES. */
	if (resp.u.fs_resp.count > cap) {
		consume_front(s, (size_t)used);
		return -ENOBUFS;
	}
	while (ap_dirent_next(&resp.u.fs_resp.data, &off, &d) == 1) {
		ents[n].ino = d.ino;
		ents[n].type = d.type;
		memcpy(ents[n].name, d.name.ptr, d.name.len); /* <= NAME_MAX, checked */
		ents[n].name[d.name.len] = 0;
		n++;
	}
	*cookie = resp.u.fs_resp.cookie;
	*ret_eof = resp.u.fs_resp.eof;
	consume_front(s, (size_t)used);
	return (int)n;
}

int session_fs_list(struct session *s, const char *path, struct session_dirent **ret, size_t *ret_n)
{
	_cleanup_free_ struct session_dirent *all = NULL;
	size_t n = 0, cap = 0;
	uint64_t cookie = 0;
	bool eof = false;
	uint32_t handle;
	int r, rc;

	r = session_fs_open(s, path, O_RDONLY | O_DIRECTORY, 0, &handle, NULL);
	if (r < 0)
		return r;
	while (!eof) {
		if (cap - n < AP_FS_DIR_MAX_ENTRIES) {
			if (cap >= SESSION_FS_LIST_MAX) {
				r = -EFBIG;
				break;
			}
			cap = cap ? cap * 2 : AP_FS_DIR_MAX_ENTRIES;
			all = xrealloc(all, cap * sizeof(*all));
		}
		r = session_fs_readdir(s, handle, &cookie, all + n, cap - n, &eof);
		if (r < 0)
			break;
		n += (size_t)r;
	}
	rc = session_fs_close(s, handle);
	if (r < 0)
		return r;
	if (rc < 0)
		return rc;
	*ret = TAKE_PTR(all);
	*ret_n = n;
	return 0;
}

static int fs_path_op(struct session *s, uint8_t op, const char *path, uint32_t mode)
{
	struct ap_msg req = fs_req(op);

	req.u.fs_req.mode = mode;
	req.u.fs_req.path = str_bytes(path);
	return fs_simple(s, &req);
}

int session_fs_mkdir(struct session *s, const char *path, mode_t mode)
{
	return fs_path_op(s, AP_FS_MKDIR, path, (uint32_t)(mode & AP_FS_MODE_MAX));
}

int session_fs_unlink(struct session *s, const char *path)
{
	return fs_path_op(s, AP_FS_UNLINK, path, 0);
}

int session_fs_rmdir(struct session *s, const char *path)
{
	return fs_path_op(s, AP_FS_RMDIR, path, 0);
}

int session_fs_rename(struct session *s, const char *from, const char *to, unsigned flags)
{
	struct ap_msg req = fs_req(AP_FS_RENAME);

	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	req.u.fs_req.flags = flags ? AP_FS_RENAME_NOREPLACE : 0;
	req.u.fs_req.path = str_bytes(from);
	req.u.fs_req.path2 = str_bytes(to);
	return fs_simple(s, &req);
}

int session_fs_truncate(struct session *s, const char *path, uint64_t len)
{
	struct ap_msg req = fs_req(AP_FS_TRUNCATE);

	if (len > AP_FS_MAX_OFFSET)
		return -EINVAL;
	req.u.fs_req.offset = len;
	req.u.fs_req.path = str_bytes(path);
	return fs_simple(s, &req);
}

/* ---- asynchronous requests ----------------------------------------------
 * One fs_async per request in flight, keyed by its id in s->fs_async. The
 * agent answers in request order, but nothing here relies on it: answers
 * are matched by id, and a blocking call waiting meanwhile (sync_wait)
 * dispatches them to their callbacks as they pass. */

struct fs_async {
	uint8_t op;
	session_fs_cb cb;
	void *data;
};

static int64_t async_send(struct session *s, struct ap_msg *req, session_fs_cb cb, void *data)
{
	uint32_t id;
	int r;

	/* While a dropped link is replaced, session_send() drops frames:
	 * the answer would never come. */
	if (!s->alive || s->reconnecting)
		return -ENOTCONN;
	r = fs_send(s, req, &id);
	if (r < 0)
		return r;
	struct fs_async *a = xmalloc(sizeof(*a));
	*a = (struct fs_async){.op = req->u.fs_req.op, .cb = cb, .data = data};
	u64map_put(&s->fs_async, id, a);
	return id;
}

int64_t session_fs_open_async(struct session *s, const char *path, session_fs_cb cb, void *data)
{
	struct ap_msg req = fs_req(AP_FS_OPEN);

	req.u.fs_req.path = str_bytes(path);
	return async_send(s, &req, cb, data);
}

int64_t session_fs_pread_async(struct session *s, uint32_t handle, size_t len, uint64_t off,
                               session_fs_cb cb, void *data)
{
	struct ap_msg req = fs_req(AP_FS_READ);

	if (len == 0 || len > AP_MAX_DATA || off > AP_FS_MAX_OFFSET)
		return -EINVAL;
	req.u.fs_req.handle = handle;
	req.u.fs_req.offset = off;
	req.u.fs_req.count = (uint32_t)len;
	return async_send(s, &req, cb, data);
}

void session_fs_close_nowait(struct session *s, uint32_t handle)
{
	struct ap_msg req = fs_req(AP_FS_CLOSE);
	uint32_t id;

	/* The answer finds no fs_async and is dropped. */
	req.u.fs_req.handle = handle;
	if (s->alive)
		(void)fs_send(s, &req, &id);
}

void session_fs_cancel(struct session *s, int64_t req)
{
	if (req > 0)
		free(u64map_del(&s->fs_async, (uint64_t)req));
}

uint64_t session_fs_epoch(const struct session *s)
{
	return s->stats.reconnects;
}

void fs_async_on_resp(struct session *s, const struct ap_msg *m)
{
	struct fs_async *a = u64map_del(&s->fs_async, m->id);
	struct session_fs_result res = {0};
	struct stat st;

	if (!a)
		return;
	if (m->u.fs_resp.op != a->op)
		res.err = -EPROTO;
	else
		res.err = -m->u.fs_resp.err;
	if (res.err == 0 && a->op == AP_FS_OPEN) {
		stat_from_wire(&m->u.fs_resp.st, &st);
		res.handle = m->u.fs_resp.handle;
		res.st = &st;
	} else if (res.err == 0 && a->op == AP_FS_READ) {
		res.data = m->u.fs_resp.data.ptr;
		res.len = m->u.fs_resp.data.len;
		s->stats.fs_bytes += res.len;
	}
	session_fs_cb cb = a->cb;
	void *data = a->data;
	free(a);
	cb(data, &res);
}

void fs_async_fail_all(struct session *s, int err)
{
	struct session_fs_result res = {.err = err};
	uint64_t key;
	void *v;

	/* Callbacks may start new requests (which fail at once, the link
	 * being gone): take each entry out before calling it. */
	for (;;) {
		size_t i = 0;
		if (!u64map_next(&s->fs_async, &i, &key, &v))
			break;
		struct fs_async *a = u64map_del(&s->fs_async, key);
		session_fs_cb cb = a->cb;
		void *data = a->data;
		free(a);
		if (err)
			cb(data, &res);
	}
}
