/* The FUSE server of large pod files (see fuse.h).
 *
 * Protocol: the kernel writes one request per read() of /dev/fuse (a
 * fuse_in_header, then the opcode's struct); we answer with one writev()
 * of a fuse_out_header and the result. Only what a flat, read-only tree of
 * regular files needs is implemented: INIT, LOOKUP, GETATTR, OPEN, READ,
 * RELEASE, FLUSH, FORGET, BATCH_FORGET, STATFS; everything else gets
 * ENOSYS, which the kernel remembers for ACCESS, GETXATTR and friends.
 * Node ids are never reused, so the kernel's cached inodes cannot name
 * another file. There is no default_permissions: the pod decided at the
 * open stop (the agent opened the file), as it does for cached copies,
 * and only our own uid can reach the mount (no allow_other).
 *
 * Reads: a READ becomes the 64 KiB chunks it covers. Chunks live in one
 * cache shared by all nodes (CACHE_CHUNKS at most, least recently used
 * first out); a chunk not there is requested from the agent
 * (session_fs_pread_async) and the READ is answered when its last chunk
 * arrived. A reader that continues where it stopped gets a read-ahead
 * window that doubles up to READAHEAD_MAX. The agent handle of a node is
 * opened at the program's open stop (fs_fuse_add); it is closed when the
 * program closed its last fd, and reopened by path if the node is read
 * again later (through an mmap, say) or after the agent link was
 * replaced. */
#include "session/fuse.h"
#include "session/fuse_mount.h"
#include "common/u64map.h"
#include "common/util.h"

#include <fcntl.h>
#include <inttypes.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHUNK (64u * 1024) /* the most one session_fs_pread_async reads */
/* 32 MiB of chunks at most, in flight or cached. */
#define CACHE_CHUNKS 512u
#define READAHEAD_MIN (256u * 1024)
#define READAHEAD_MAX (4u * 1024 * 1024)
/* The kernel sends READs of up to MAX_PAGES pages (1 MiB). */
#define MAX_PAGES 256u
/* Requests are small (no writes: max_write is the minimum); the kernel
 * wants a buffer of at least FUSE_MIN_READ_BUFFER. */
#define REQ_BUF (FUSE_MIN_READ_BUFFER * 2)
#define MAX_NODES 4096u
/* Handles held by nodes no fd is open on (between the open stop and the
 * kernel's OPEN, or an open that failed locally): past this, close them. */
#define MAX_IDLE_HANDLES 16u
#define ROOT_ID FUSE_ROOT_ID
/* Attributes and names never change: a node is one opened version. */
#define VALID_S 86400u
/* Requests handled per wake-up, so ptrace stops are not starved. */
#define BATCH 64

struct node {
	struct fs_fuse *f;
	uint64_t id;
	char *remote;
	struct stat st;
	bool have_handle;
	uint32_t handle;
	uint64_t epoch;     /* session_fs_epoch() when handle was opened */
	int64_t reopen_req; /* pending reopen, or 0 */
	uint64_t nlookup;
	unsigned opens;
	uint64_t seq_end; /* where the last READ ended */
	uint64_t ra;      /* read-ahead window, 0 when not sequential */
};

struct chunk {
	struct fs_fuse *f;
	struct node *n;
	uint64_t idx;
	uint8_t *data;
	uint32_t len;
	int err;
	bool ready;
	bool want_handle;          /* waits for the node's reopen */
	int64_t req;               /* pending read, or 0 */
	unsigned pins;             /* pending READs that need it */
	struct chunk *prev, *next; /* LRU, most recent at the tail */
};

struct pending {
	uint64_t unique;
	struct node *n;
	uint64_t off, end;
	struct pending *next;
};

struct fs_fuse {
	struct session *s;
	struct evloop *l;
	int fd;
	char *dir;
	size_t dirlen;
	struct fuse_mount mnt;
	bool dead;
	uint64_t next_id;
	struct u64map nodes;  /* id -> node */
	struct u64map chunks; /* chunk_key -> chunk */
	struct chunk lru;     /* sentinel */
	struct pending *reads;
	uint8_t *buf;
	struct fs_fuse_stats stats;
};

static uint64_t chunk_key(const struct node *n, uint64_t idx)
{
	/* Node ids stay below 2^32 (MAX_NODES at a time, one per open of a
	 * large file), chunk indexes below 2^32 (256 TiB). */
	return (n->id << 32) | (idx & 0xffffffffu);
}

/* ---- replies ---------------------------------------------------------- */

static void reply_iov(struct fs_fuse *f, uint64_t unique, int err, struct iovec *iov, int niov)
{
	struct fuse_out_header h = {.error = err, .unique = unique};
	size_t len = sizeof(h);

	iov[0] = (struct iovec){&h, sizeof(h)};
	for (int i = 1; i < niov; i++)
		len += iov[i].iov_len;
	h.len = (uint32_t)(err ? sizeof(h) : len);
	/* ENOENT: the request was interrupted meanwhile; ENODEV: the
	 * connection was aborted. Nobody waits for the answer then. */
	if (writev(f->fd, iov, err ? 1 : niov) < 0 && errno != ENOENT)
		f->dead = f->dead || errno == ENODEV;
}

static void reply(struct fs_fuse *f, uint64_t unique, int err, const void *data, size_t len)
{
	struct iovec iov[2] = {{0}, {(void *)data, len}};

	reply_iov(f, unique, err, iov, len ? 2 : 1);
}

static void fill_attr(const struct fs_fuse *f, const struct node *n, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	if (!n) {
		a->ino = ROOT_ID;
		a->mode = S_IFDIR | 0500;
		a->nlink = 2;
		a->uid = getuid();
		a->gid = getgid();
		a->blksize = 4096;
		return;
	}
	(void)f;
	a->ino = n->st.st_ino;
	a->size = (uint64_t)n->st.st_size;
	a->blocks = (uint64_t)n->st.st_blocks;
	a->atime = (uint64_t)n->st.st_atim.tv_sec;
	a->atimensec = (uint32_t)n->st.st_atim.tv_nsec;
	a->mtime = (uint64_t)n->st.st_mtim.tv_sec;
	a->mtimensec = (uint32_t)n->st.st_mtim.tv_nsec;
	a->ctime = (uint64_t)n->st.st_ctim.tv_sec;
	a->ctimensec = (uint32_t)n->st.st_ctim.tv_nsec;
	a->mode = n->st.st_mode;
	a->nlink = (uint32_t)n->st.st_nlink;
	a->uid = n->st.st_uid;
	a->gid = n->st.st_gid;
	a->blksize = n->st.st_blksize > 0 ? (uint32_t)n->st.st_blksize : 4096;
}

/* ---- chunks ----------------------------------------------------------- */

static void lru_unlink(struct chunk *c)
{
	c->prev->next = c->next;
	c->next->prev = c->prev;
}

static void lru_push(struct fs_fuse *f, struct chunk *c)
{
	c->prev = f->lru.prev;
	c->next = &f->lru;
	f->lru.prev->next = c;
	f->lru.prev = c;
}

static void lru_push_front(struct fs_fuse *f, struct chunk *c)
{
	c->next = f->lru.next;
	c->prev = &f->lru;
	f->lru.next->prev = c;
	f->lru.next = c;
}

static void chunk_free(struct fs_fuse *f, struct chunk *c)
{
	if (c->req)
		session_fs_cancel(f->s, c->req);
	u64map_del(&f->chunks, chunk_key(c->n, c->idx));
	lru_unlink(c);
	free(c->data);
	free(c);
}

static bool chunk_busy(const struct chunk *c)
{
	return c->pins || !c->ready;
}

/* Drop least recently used chunks nobody waits for, down to limit. */
static void evict_to(struct fs_fuse *f, size_t limit)
{
	struct chunk *c = f->lru.next, *next;

	for (; c != &f->lru && f->chunks.n > limit; c = next) {
		next = c->next;
		if (!chunk_busy(c))
			chunk_free(f, c);
	}
}

static void evict(struct fs_fuse *f)
{
	evict_to(f, CACHE_CHUNKS);
}

static void chunk_fetch(struct fs_fuse *f, struct chunk *c);
static void chunk_done(struct fs_fuse *f, struct chunk *c);

static void chunk_fail(struct fs_fuse *f, struct chunk *c, int err)
{
	c->req = 0;
	c->want_handle = false;
	c->err = err;
	c->ready = true;
	chunk_done(f, c);
}

static void on_chunk(void *data, const struct session_fs_result *res)
{
	struct chunk *c = data;
	struct fs_fuse *f = c->f;

	c->req = 0;
	if (res->err) {
		chunk_fail(f, c, res->err);
		return;
	}
	c->len = (uint32_t)(res->len < CHUNK ? res->len : CHUNK);
	c->data = xmalloc(c->len ? c->len : 1);
	memcpy(c->data, res->data, c->len);
	c->ready = true;
	chunk_done(f, c);
}

static bool handle_ok(const struct fs_fuse *f, const struct node *n)
{
	return n->have_handle && n->epoch == session_fs_epoch(f->s);
}

static void on_reopen(void *data, const struct session_fs_result *res);

static void node_reopen(struct fs_fuse *f, struct node *n)
{
	int64_t r;

	if (n->reopen_req)
		return;
	n->have_handle = false; /* a stale one belongs to a dead link */
	r = session_fs_open_async(f->s, n->remote, on_reopen, n);
	if (r > 0) {
		n->reopen_req = r;
		return;
	}
	/* No link: every chunk waiting for the handle fails. */
	struct session_fs_result res = {.err = (int)r};
	on_reopen(n, &res);
}

static void chunk_fetch(struct fs_fuse *f, struct chunk *c)
{
	struct node *n = c->n;
	uint64_t off = c->idx * CHUNK;
	int64_t r;

	if (!handle_ok(f, n)) {
		c->want_handle = true;
		node_reopen(f, n);
		return;
	}
	c->want_handle = false;
	r = session_fs_pread_async(f->s, n->handle, CHUNK, off, on_chunk, c);
	if (r < 0) {
		chunk_fail(f, c, (int)r);
		return;
	}
	c->req = r;
	f->stats.chunks++;
}

static void on_reopen(void *data, const struct session_fs_result *res)
{
	struct node *n = data;
	struct fs_fuse *f = n->f;
	struct chunk **todo;
	size_t nt = 0;
	uint64_t key;
	void *v;

	n->reopen_req = 0;
	if (res->err == 0) {
		n->handle = res->handle;
		n->have_handle = true;
		n->epoch = session_fs_epoch(f->s);
	}
	/* Collect first: fetching may fail at once and free chunks. */
	todo = xmalloc((f->chunks.n + 1) * sizeof(*todo));
	for (size_t i = 0; u64map_next(&f->chunks, &i, &key, &v);) {
		struct chunk *c = v;
		if (c->n == n && c->want_handle)
			todo[nt++] = c;
	}
	for (size_t i = 0; i < nt; i++) {
		if (res->err)
			chunk_fail(f, todo[i], res->err);
		else
			chunk_fetch(f, todo[i]);
	}
	free(todo);
}

/* The chunk idx of n, requested if it is not cached. */
static struct chunk *chunk_get(struct fs_fuse *f, struct node *n, uint64_t idx, bool *ret_new)
{
	struct chunk *c = u64map_get(&f->chunks, chunk_key(n, idx));

	*ret_new = false;
	if (c && c->ready && c->err) {
		/* A failure is not cached: ask again. */
		c->err = 0;
		c->ready = false;
		*ret_new = true;
	}
	if (c) {
		lru_unlink(c);
		lru_push(f, c);
		return c;
	}
	c = xcalloc(1, sizeof(*c));
	c->f = f;
	c->n = n;
	c->idx = idx;
	u64map_put(&f->chunks, chunk_key(n, idx), c);
	lru_push(f, c);
	*ret_new = true;
	return c;
}

/* ---- READ ------------------------------------------------------------- */

/* Answer p if every chunk it covers is there. Returns true if answered
 * (p is then unlinked by the caller). */
static bool try_answer(struct fs_fuse *f, struct pending *p)
{
	uint64_t first = p->off / CHUNK, last = (p->end - 1) / CHUNK;
	struct iovec iov[MAX_PAGES * 4096 / CHUNK + 3];
	int niov = 1, err = 0;
	uint64_t pos = p->off;

	for (uint64_t i = first; i <= last; i++) {
		struct chunk *c = u64map_get(&f->chunks, chunk_key(p->n, i));
		if (!c || !c->ready)
			return false;
		if (c->err && !err)
			err = c->err;
	}
	for (uint64_t i = first; i <= last && !err && pos < p->end; i++) {
		struct chunk *c = u64map_get(&f->chunks, chunk_key(p->n, i));
		uint64_t from = pos - i * CHUNK;
		if (from >= c->len)
			break; /* the file ends before (it shrank in the pod) */
		uint64_t take = c->len - from;
		if (take > p->end - pos)
			take = p->end - pos;
		iov[niov++] = (struct iovec){c->data + from, (size_t)take};
		pos += take;
		if (c->len < CHUNK)
			break;
	}
	/* A failed agent link is an I/O error of the file. */
	if (err == -ENOTCONN || err == -ECONNRESET || err == -ETIMEDOUT || err == -EPROTO)
		err = -EIO;
	reply_iov(f, p->unique, err, iov, niov);
	f->stats.reads++;
	for (uint64_t i = first; i <= last; i++) {
		struct chunk *c = u64map_get(&f->chunks, chunk_key(p->n, i));
		c->pins--;
		/* Read to its end: the page cache has it now, so it is the
		 * first to go, before read-ahead nobody has used yet. */
		if (p->end >= (i + 1) * CHUNK || c->len < CHUNK) {
			lru_unlink(c);
			lru_push_front(f, c);
		}
	}
	return true;
}

/* A chunk arrived (or failed): answer the READs it completes. */
static void chunk_done(struct fs_fuse *f, struct chunk *c)
{
	uint64_t off = c->idx * CHUNK;

	for (struct pending **pp = &f->reads, *p; (p = *pp);) {
		if (p->n == c->n && p->off < off + CHUNK && p->end > off && try_answer(f, p)) {
			*pp = p->next;
			free(p);
			continue;
		}
		pp = &p->next;
	}
	evict(f);
}

static void prefetch(struct fs_fuse *f, struct node *n, uint64_t from, uint64_t to)
{
	for (uint64_t i = from / CHUNK; i * CHUNK < to; i++) {
		bool fresh;
		/* Read-ahead makes room from what was read already (the
		 * kernel's page cache has that), never from what readers
		 * wait for or what is still coming. */
		if (f->chunks.n >= CACHE_CHUNKS)
			evict_to(f, CACHE_CHUNKS - 1);
		if (f->chunks.n >= CACHE_CHUNKS)
			return;
		struct chunk *c = chunk_get(f, n, i, &fresh);
		if (fresh) {
			f->stats.prefetched++;
			chunk_fetch(f, c);
		}
	}
}

static void do_read(struct fs_fuse *f, uint64_t unique, struct node *n, const uint8_t *in,
                    size_t len)
{
	struct fuse_read_in r;
	uint64_t size = (uint64_t)n->st.st_size, end;

	if (len < sizeof(r)) {
		reply(f, unique, -EINVAL, NULL, 0);
		return;
	}
	memcpy(&r, in, sizeof(r));
	/* Past the end of the version that was opened: nothing. */
	if (r.size == 0 || r.offset >= size || r.size > MAX_PAGES * 4096) {
		reply(f, unique, r.size > MAX_PAGES * 4096 ? -EINVAL : 0, NULL, 0);
		return;
	}
	if (r.offset / CHUNK > 0xffffffffu) {
		reply(f, unique, -EFBIG, NULL, 0);
		return;
	}
	end = r.size > size - r.offset ? size : r.offset + r.size;

	struct pending *p = xcalloc(1, sizeof(*p));
	*p = (struct pending){.unique = unique, .n = n, .off = r.offset, .end = end};
	for (uint64_t i = r.offset / CHUNK; i * CHUNK < end; i++) {
		bool fresh;
		struct chunk *c = chunk_get(f, n, i, &fresh);
		c->pins++;
		if (fresh)
			chunk_fetch(f, c);
	}
	/* Sequential: continue where the last READ ended (the kernel's own
	 * read-ahead READs count). */
	if (r.offset == n->seq_end || (r.offset < n->seq_end && end > n->seq_end)) {
		n->ra = n->ra ? n->ra * 2 : READAHEAD_MIN;
		if (n->ra > READAHEAD_MAX)
			n->ra = READAHEAD_MAX;
		prefetch(f, n, end, end + n->ra > size ? size : end + n->ra);
	} else {
		n->ra = 0;
	}
	if (end > n->seq_end || n->ra == 0)
		n->seq_end = end;
	p->next = f->reads;
	f->reads = p;
	/* Everything may have been cached, or failed at once. */
	for (struct pending **pp = &f->reads, *q; (q = *pp);) {
		if (q == p && try_answer(f, q)) {
			*pp = q->next;
			free(q);
			break;
		}
		pp = &q->next;
	}
	evict(f);
}

/* ---- nodes ------------------------------------------------------------ */

static void node_close_handle(struct fs_fuse *f, struct node *n)
{
	if (n->have_handle && handle_ok(f, n))
		session_fs_close_nowait(f->s, n->handle);
	n->have_handle = false;
}

/* Drop the chunks of n nobody waits for (a closed node's cache is of no
 * use to anyone: the next open makes a new node). */
static void node_drop_chunks(struct fs_fuse *f, struct node *n)
{
	struct chunk **todo = xmalloc((f->chunks.n + 1) * sizeof(*todo));
	size_t nt = 0;
	uint64_t key;
	void *v;

	for (size_t i = 0; u64map_next(&f->chunks, &i, &key, &v);) {
		struct chunk *c = v;
		if (c->n == n && !c->pins)
			todo[nt++] = c;
	}
	for (size_t i = 0; i < nt; i++)
		chunk_free(f, todo[i]);
	free(todo);
}

static void node_free(struct fs_fuse *f, struct node *n)
{
	node_drop_chunks(f, n);
	node_close_handle(f, n);
	if (n->reopen_req)
		session_fs_cancel(f->s, n->reopen_req);
	u64map_del(&f->nodes, n->id);
	free(n->remote);
	free(n);
}

static void node_forget(struct fs_fuse *f, uint64_t id, uint64_t nlookup)
{
	struct node *n = u64map_get(&f->nodes, id);

	if (!n)
		return;
	n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
	if (n->nlookup == 0 && n->opens == 0)
		node_free(f, n);
}

/* Close the handles of nodes no fd is open on. */
static void trim_idle(struct fs_fuse *f)
{
	uint64_t key;
	void *v;
	size_t idle = 0;

	for (size_t i = 0; u64map_next(&f->nodes, &i, &key, &v);)
		idle += ((struct node *)v)->opens == 0 && ((struct node *)v)->have_handle;
	if (idle <= MAX_IDLE_HANDLES)
		return;
	for (size_t i = 0; u64map_next(&f->nodes, &i, &key, &v);)
		if (((struct node *)v)->opens == 0)
			node_close_handle(f, v);
}

int fs_fuse_add(struct fs_fuse *f, const char *remote, uint32_t handle, const struct stat *st,
                char **ret_path)
{
	struct node *n;

	if (f->dead)
		return -ENOTCONN;
	if (f->nodes.n >= MAX_NODES || f->next_id > 0xffffffffu)
		return -EMFILE;
	trim_idle(f);
	n = xcalloc(1, sizeof(*n));
	n->f = f;
	n->id = f->next_id++;
	n->remote = xstrdup(remote);
	n->st = *st;
	n->handle = handle;
	n->have_handle = true;
	n->epoch = session_fs_epoch(f->s);
	u64map_put(&f->nodes, n->id, n);
	*ret_path = xasprintf("%s/%" PRIu64, f->dir, n->id);
	return 0;
}

/* ---- requests --------------------------------------------------------- */

/* The kernel reads ahead at most 128 KiB by default, in READs of that
 * size; for a stream from the pod, fewer and larger READs cost fewer
 * round trips through this loop. The knob is the mount's backing device
 * in sysfs (root only; without it, the default stays). Its name comes from
 * our own mount table: stat() of the mount would ask this very loop. */
#define KERNEL_READAHEAD_KB "1024"

static void raise_readahead(const struct fs_fuse *f)
{
	FILE *mi = fopen("/proc/self/mountinfo", "re");
	char line[4096], mnt[4096], path[128];
	unsigned maj, min;

	if (!mi)
		return;
	while (fgets(line, sizeof(line), mi)) {
		/* id parent maj:min root mountpoint ... */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mnt) != 3 ||
		    strcmp(mnt, f->dir) != 0)
			continue;
		snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
		_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0)
			(void)!write(fd, KERNEL_READAHEAD_KB, strlen(KERNEL_READAHEAD_KB));
		break;
	}
	fclose(mi);
}

static void do_init(struct fs_fuse *f, uint64_t unique, const uint8_t *in, size_t len)
{
	struct fuse_init_in ii = {0};
	struct fuse_init_out o = {0};

	memcpy(&ii, in, len < sizeof(ii) ? len : sizeof(ii));
	if (ii.major != FUSE_KERNEL_VERSION) {
		/* Older or newer protocol family: say which we speak. */
		o.major = FUSE_KERNEL_VERSION;
		o.minor = FUSE_KERNEL_MINOR_VERSION;
		reply(f, unique, ii.major < FUSE_KERNEL_VERSION ? -EPROTO : 0, &o, 8);
		return;
	}
	o.major = FUSE_KERNEL_VERSION;
	o.minor = ii.minor < FUSE_KERNEL_MINOR_VERSION ? ii.minor : FUSE_KERNEL_MINOR_VERSION;
	o.max_readahead = ii.max_readahead;
	/* Several READs in flight (the kernel's read-ahead), big READs. */
	o.flags = ii.flags & (FUSE_ASYNC_READ | FUSE_MAX_PAGES);
	o.max_background = 64;
	o.congestion_threshold = 48;
	o.max_write = 4096;
	o.time_gran = 1;
	o.max_pages = MAX_PAGES;
	reply(f, unique, 0, &o, sizeof(o));
	/* After the reply: the kernel lowers the device's read-ahead to
	 * max_readahead when it processes it. */
	raise_readahead(f);
}

static struct node *lookup_name(struct fs_fuse *f, const uint8_t *in, size_t len)
{
	char name[32];
	uint64_t id;

	if (len == 0 || len > sizeof(name) || in[len - 1] != 0)
		return NULL;
	memcpy(name, in, len);
	if (parse_u64(name, UINT64_MAX, &id) < 0 || name[0] == '0' || name[0] == '+')
		return NULL;
	return u64map_get(&f->nodes, id);
}

static void handle(struct fs_fuse *f, const uint8_t *buf, size_t n)
{
	struct fuse_in_header h;
	const uint8_t *in = buf + sizeof(h);
	size_t len;
	struct node *node;

	if (n < sizeof(h))
		return;
	memcpy(&h, buf, sizeof(h));
	if (h.len != n)
		return;
	len = n - sizeof(h);
	node = h.nodeid == ROOT_ID ? NULL : u64map_get(&f->nodes, h.nodeid);

	switch (h.opcode) {
	case FUSE_INIT:
		do_init(f, h.unique, in, len);
		return;
	case FUSE_LOOKUP: {
		struct fuse_entry_out e = {0};
		struct node *c = h.nodeid == ROOT_ID ? lookup_name(f, in, len) : NULL;
		if (!c) {
			reply(f, h.unique, -ENOENT, NULL, 0);
			return;
		}
		c->nlookup++;
		e.nodeid = c->id;
		e.entry_valid = e.attr_valid = VALID_S;
		fill_attr(f, c, &e.attr);
		reply(f, h.unique, 0, &e, sizeof(e));
		return;
	}
	case FUSE_GETATTR: {
		struct fuse_attr_out a = {0};
		if (h.nodeid != ROOT_ID && !node) {
			reply(f, h.unique, -ENOENT, NULL, 0);
			return;
		}
		a.attr_valid = VALID_S;
		fill_attr(f, node, &a.attr);
		reply(f, h.unique, 0, &a, sizeof(a));
		return;
	}
	case FUSE_OPEN: {
		struct fuse_open_in oi = {0};
		struct fuse_open_out o = {0};
		memcpy(&oi, in, len < sizeof(oi) ? len : sizeof(oi));
		if (!node) {
			reply(f, h.unique, h.nodeid == ROOT_ID ? -EISDIR : -ENOENT, NULL, 0);
			return;
		}
		if ((oi.flags & O_ACCMODE) != O_RDONLY || (oi.flags & O_TRUNC)) {
			reply(f, h.unique, -EROFS, NULL, 0);
			return;
		}
		/* The handle is reopened by the first READ that needs it. */
		node->opens++;
		o.fh = node->id;
		/* NOFLUSH: close() does not wait for us. The supervisor
		 * closes duplicates of program fds (sc_dup_fd) inside its
		 * own callbacks; a FLUSH then would wait for this loop. */
		o.open_flags = FOPEN_KEEP_CACHE | FOPEN_NOFLUSH;
		reply(f, h.unique, 0, &o, sizeof(o));
		return;
	}
	case FUSE_READ:
		if (!node) {
			reply(f, h.unique, -EBADF, NULL, 0);
			return;
		}
		do_read(f, h.unique, node, in, len);
		return;
	case FUSE_FLUSH:
		reply(f, h.unique, 0, NULL, 0);
		return;
	case FUSE_RELEASE:
		if (node && node->opens > 0 && --node->opens == 0) {
			node_close_handle(f, node);
			node_drop_chunks(f, node);
			node->seq_end = node->ra = 0;
		}
		reply(f, h.unique, 0, NULL, 0);
		return;
	case FUSE_FORGET: {
		struct fuse_forget_in fi = {0};
		memcpy(&fi, in, len < sizeof(fi) ? len : sizeof(fi));
		node_forget(f, h.nodeid, fi.nlookup);
		return; /* no reply */
	}
	case FUSE_BATCH_FORGET: {
		struct fuse_batch_forget_in bi = {0};
		struct fuse_forget_one one;
		if (len < sizeof(bi))
			return;
		memcpy(&bi, in, sizeof(bi));
		for (uint32_t i = 0; i < bi.count; i++) {
			size_t at = sizeof(bi) + (size_t)i * sizeof(one);
			if (at + sizeof(one) > len)
				break;
			memcpy(&one, in + at, sizeof(one));
			node_forget(f, one.nodeid, one.nlookup);
		}
		return;
	}
	case FUSE_STATFS: {
		struct fuse_statfs_out so = {0};
		so.st.bsize = so.st.frsize = 4096;
		so.st.namelen = 255;
		reply(f, h.unique, 0, &so, sizeof(so));
		return;
	}
	case FUSE_INTERRUPT:
		/* The READ is answered when its chunks arrive anyway. */
		return;
	case FUSE_DESTROY:
		reply(f, h.unique, 0, NULL, 0);
		return;
	default:
		reply(f, h.unique, -ENOSYS, NULL, 0);
		return;
	}
}

static void on_fuse_io(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct fs_fuse *f = data;

	(void)events;
	for (int i = 0; i < BATCH && !f->dead; i++) {
		ssize_t n = read(fd, f->buf, REQ_BUF);
		if (n < 0) {
			if (errno == EINTR || errno == ENOENT)
				continue; /* ENOENT: interrupted before we read it */
			if (errno == EAGAIN)
				return;
			/* ENODEV: unmounted or aborted. */
			f->dead = true;
			break;
		}
		handle(f, f->buf, (size_t)n);
	}
	if (f->dead)
		evloop_del(l, fd);
}

int fs_fuse_new(struct session *s, struct evloop *l, const char *dir, struct fs_fuse **ret,
                const char **ret_why)
{
	struct fuse_mount m;
	int r;

	*ret_why = NULL;
	r = fuse_mount_open(dir, &m, ret_why);
	if (r < 0)
		return r;
	struct fs_fuse *f = xcalloc(1, sizeof(*f));
	f->s = s;
	f->l = l;
	f->dir = xstrdup(dir);
	f->dirlen = strlen(dir);
	f->mnt = m;
	f->next_id = ROOT_ID + 1;
	f->lru.prev = f->lru.next = &f->lru;
	f->buf = xmalloc(REQ_BUF);
	f->fd = m.fd;
	r = evloop_add(l, f->fd, EPOLLIN, on_fuse_io, f);
	if (r < 0) {
		*ret_why = "cannot watch /dev/fuse";
		fs_fuse_free(f);
		return r;
	}
	*ret = f;
	return 0;
}

void fs_fuse_free(struct fs_fuse *f)
{
	uint64_t key;
	void *v;

	if (!f)
		return;
	evloop_del(f->l, f->fd);
	/* Pending READs die with the connection; nodes give their handles
	 * back (no reply awaited). */
	for (struct pending *p = f->reads, *next; p; p = next) {
		next = p->next;
		free(p);
	}
	f->reads = NULL;
	for (;;) {
		size_t i = 0;
		if (!u64map_next(&f->nodes, &i, &key, &v))
			break;
		struct node *n = v;
		struct chunk **todo = xmalloc((f->chunks.n + 1) * sizeof(*todo));
		size_t nt = 0;
		for (size_t j = 0; u64map_next(&f->chunks, &j, &key, &v);)
			if (((struct chunk *)v)->n == n)
				todo[nt++] = v;
		for (size_t j = 0; j < nt; j++)
			chunk_free(f, todo[j]);
		free(todo);
		node_free(f, n);
	}
	fuse_mount_close(&f->mnt);
	u64map_free(&f->nodes);
	u64map_free(&f->chunks);
	free(f->buf);
	free(f->dir);
	free(f);
}

const char *fs_fuse_dir(const struct fs_fuse *f)
{
	return f->dir;
}

bool fs_fuse_owns(const struct fs_fuse *f, const char *local)
{
	return strncmp(local, f->dir, f->dirlen) == 0 &&
	       (local[f->dirlen] == 0 || local[f->dirlen] == '/');
}

char *fs_fuse_remote_of(const struct fs_fuse *f, const char *local)
{
	struct node *n;
	uint64_t id;

	if (!fs_fuse_owns(f, local) || local[f->dirlen] != '/' ||
	    parse_u64(local + f->dirlen + 1, UINT64_MAX, &id) < 0)
		return NULL;
	n = u64map_get(&f->nodes, id);
	return n ? xstrdup(n->remote) : NULL;
}

void fs_fuse_get_stats(const struct fs_fuse *f, struct fs_fuse_stats *ret)
{
	*ret = f->stats;
	ret->nodes = f->nodes.n;
}
