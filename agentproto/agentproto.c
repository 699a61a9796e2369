/* agentproto: encoder and decoder for the session <-> agent wire format.
 *
 * Security invariant: every byte ap_decode() looks at lies inside the
 * caller's buf[0..len), and every length field is compared against both a
 * protocol limit and the bytes actually present before anything uses it.
 * The decoder copies fields out with explicit big-endian assembly; it never
 * casts the buffer to a struct (that would bake host layout and alignment
 * into the protocol).
 *
 * Encoder and decoder share one set of semantic rules (msg_check()), so
 * ap_encode() refuses exactly the messages ap_decode() would reject, and a
 * decoded frame re-encodes to the identical bytes (the fuzzer checks it).
 *
 * Pure code: no I/O, no allocation, no logging. */
#include "agentproto/agentproto.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

/* Wire sizes of the fixed parts. */
#define AP_LEN_SIZE 4              /* u32 length before a str/blob */
#define AP_ADDR_SIZE (1 + 2 + 16)  /* u8 family, u16 port, 16 bytes */
#define AP_HELLO_FIXED (4 + 2 + 2) /* magic, version, reserved */
#define AP_HELLO_OK_FIXED (2 + 2)  /* version, reserved */
#define AP_CONNECT_SIZE (4 + 1 + AP_ADDR_SIZE + 4)
#define AP_CONNECT_RESP_SIZE (4 + 4 + AP_ADDR_SIZE)
#define AP_FS_TIME_SIZE (8 + 4)
#define AP_FS_STAT_SIZE (2 * 8 + 3 * 4 + 5 * 8 + 3 * AP_FS_TIME_SIZE)
#define AP_FS_STATFS_SIZE (11 * 8)
#define AP_DIRENT_FIXED (8 + 1 + AP_LEN_SIZE)  /* ino, type, name length */
#define AP_PORT_SUB_FIXED (2 + 1 + 4 + 1 + 1)  /* port, mode, window, op, count */
#define AP_FILTER_RULE_FIXED (1 + AP_LEN_SIZE) /* kind, pattern length */
#define AP_PORT_SUB_MAX \
	(AP_PORT_SUB_FIXED + AP_MAX_FILTER_RULES * (AP_FILTER_RULE_FIXED + AP_MAX_FILTER_PATTERN))
#define AP_ACCEPT_SIZE (2 + 1 + 2 * AP_ADDR_SIZE + 4)
/* The largest file request is a WRITE (op, handle, offset, data); the
 * largest response a READDIR page (op, err, cookie, eof, count, list). */
#define AP_FS_REQ_MAX (1 + 4 + 8 + AP_LEN_SIZE + AP_MAX_DATA)
#define AP_FS_RESP_MAX (1 + 4 + 8 + 1 + 4 + AP_LEN_SIZE + AP_FS_DIR_MAX_BYTES)
_Static_assert(1 + 4 + 2 * (AP_LEN_SIZE + AP_MAX_PATH) <= AP_FS_REQ_MAX, "RENAME fits");
_Static_assert(1 + 4 + 4 + AP_FS_STAT_SIZE <= AP_FS_RESP_MAX, "OPEN fits");
_Static_assert(1 + 4 + AP_LEN_SIZE + AP_MAX_DATA <= AP_FS_RESP_MAX, "READ fits");

/* ---- big-endian helpers ------------------------------------------------ */

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* ---- per-type payload bounds ------------------------------------------- */

/* Payload size bounds per type, checked as soon as the header is complete
 * so that a peer announcing, say, a 900 KiB CREDIT frame is rejected
 * before the caller buffers a single payload byte for it. max is the
 * largest payload a well-formed frame of that type can have. */
struct type_bounds {
	uint32_t min, max;
};

static const struct type_bounds type_bounds[] = {
        [AP_HELLO] = {AP_HELLO_FIXED + AP_LEN_SIZE, AP_HELLO_FIXED + AP_LEN_SIZE + AP_MAX_STRING},
        [AP_HELLO_OK] = {AP_HELLO_OK_FIXED + 2 * AP_LEN_SIZE,
                         AP_HELLO_OK_FIXED + 2 * (AP_LEN_SIZE + AP_MAX_STRING)},
        [AP_ERROR] = {4 + AP_LEN_SIZE, 4 + AP_LEN_SIZE + AP_MAX_STRING},
        [AP_ENV_REQ] = {0, 0},
        [AP_ENV_RESP] = {4 + 4, AP_MAX_PAYLOAD},
        [AP_FILE_REQ] = {AP_LEN_SIZE, AP_LEN_SIZE + AP_MAX_PATH},
        [AP_FILE_RESP] = {4 + AP_LEN_SIZE, 4 + AP_LEN_SIZE + AP_MAX_FILE},
        [AP_CONNECT] = {AP_CONNECT_SIZE, AP_CONNECT_SIZE},
        [AP_CONNECT_RESP] = {AP_CONNECT_RESP_SIZE, AP_CONNECT_RESP_SIZE},
        [AP_DATA] = {0, AP_MAX_DATA},
        [AP_CREDIT] = {4, 4},
        [AP_CLOSE] = {1 + 4, 1 + 4},
        [AP_PING] = {0, 0},
        [AP_PONG] = {0, 0},
        [AP_FS_REQ] = {1, AP_FS_REQ_MAX},
        [AP_FS_RESP] = {1 + 4, AP_FS_RESP_MAX},
        [AP_PORT_SUB] = {AP_PORT_SUB_FIXED, AP_PORT_SUB_MAX},
        [AP_PORT_UNSUB] = {2, 2},
        [AP_PORT_RESP] = {4, 4},
        [AP_ACCEPT] = {AP_ACCEPT_SIZE, AP_ACCEPT_SIZE},
};

static bool type_known(uint32_t t)
{
	return t >= AP_HELLO && t <= AP_TYPE_LAST;
}

/* ---- file operations: which fields each op carries ---------------------- */

/* Request fields, in wire order. */
enum {
	RQ_FLAGS = 1 << 0,
	RQ_MODE = 1 << 1,
	RQ_HANDLE = 1 << 2,
	RQ_OFFSET = 1 << 3,
	RQ_COUNT = 1 << 4,
	RQ_PATH = 1 << 5,
	RQ_PATH2 = 1 << 6,
	RQ_DATA = 1 << 7,
};

/* Response fields (err == 0), in wire order. */
enum {
	RS_HANDLE = 1 << 0,
	RS_COOKIE = 1 << 1,
	RS_EOF = 1 << 2,
	RS_COUNT = 1 << 3,
	RS_STAT = 1 << 4,
	RS_STATFS = 1 << 5,
	RS_DATA = 1 << 6,
};

/* One table describes every op, so the decoder, the encoder and the
 * checks cannot disagree about a layout. */
struct fs_op_desc {
	const char *name;
	uint8_t req, resp;  /* RQ_* / RS_* fields present */
	uint32_t flags_ok;  /* request flags the op accepts */
	uint32_t mode_max;  /* largest request mode */
	uint32_t resp_data; /* longest response data */
};

static const struct fs_op_desc fs_ops[] = {
        [AP_FS_ENABLE_WRITE] = {"ENABLE_WRITE", 0, 0, 0, 0, 0},
        [AP_FS_STAT] = {"STAT", RQ_FLAGS | RQ_PATH, RS_STAT, AP_FS_NOFOLLOW, 0, 0},
        [AP_FS_READLINK] = {"READLINK", RQ_PATH, RS_DATA, 0, 0, AP_MAX_PATH},
        [AP_FS_ACCESS] = {"ACCESS", RQ_MODE | RQ_PATH, 0, 0, AP_FS_R_OK | AP_FS_W_OK | AP_FS_X_OK,
                          0},
        [AP_FS_STATFS] = {"STATFS", RQ_PATH, RS_STATFS, 0, 0, 0},
        [AP_FS_OPEN] = {"OPEN", RQ_FLAGS | RQ_MODE | RQ_PATH, RS_HANDLE | RS_STAT, AP_FS_O_ALL,
                        AP_FS_MODE_MAX, 0},
        [AP_FS_READ] = {"READ", RQ_HANDLE | RQ_OFFSET | RQ_COUNT, RS_DATA, 0, 0, AP_MAX_DATA},
        [AP_FS_WRITE] = {"WRITE", RQ_HANDLE | RQ_OFFSET | RQ_DATA, RS_COUNT, 0, 0, 0},
        [AP_FS_FSYNC] = {"FSYNC", RQ_HANDLE, 0, 0, 0, 0},
        [AP_FS_CLOSE] = {"CLOSE", RQ_HANDLE, 0, 0, 0, 0},
        [AP_FS_READDIR] = {"READDIR", RQ_HANDLE | RQ_OFFSET,
                           RS_COOKIE | RS_EOF | RS_COUNT | RS_DATA, 0, 0, AP_FS_DIR_MAX_BYTES},
        [AP_FS_MKDIR] = {"MKDIR", RQ_MODE | RQ_PATH, 0, 0, AP_FS_MODE_MAX, 0},
        [AP_FS_UNLINK] = {"UNLINK", RQ_PATH, 0, 0, 0, 0},
        [AP_FS_RMDIR] = {"RMDIR", RQ_PATH, 0, 0, 0, 0},
        [AP_FS_RENAME] = {"RENAME", RQ_FLAGS | RQ_PATH | RQ_PATH2, 0, AP_FS_RENAME_NOREPLACE, 0, 0},
        [AP_FS_TRUNCATE] = {"TRUNCATE", RQ_OFFSET | RQ_PATH, 0, 0, 0, 0},
};

/* The op's entry, or NULL: op comes from the peer. */
static const struct fs_op_desc *fs_op(uint8_t op)
{
	return op >= AP_FS_ENABLE_WRITE && op <= AP_FS_OP_LAST ? &fs_ops[op] : NULL;
}

const char *ap_fs_op_name(int op)
{
	const struct fs_op_desc *d = op >= 0 && op <= UINT8_MAX ? fs_op((uint8_t)op) : NULL;
	return d ? d->name : "?";
}

const char *ap_type_name(int type)
{
	/* A switch rather than a table indexed by type: type comes from the
	 * peer and may be any int. */
	switch ((enum ap_type)type) {
	case AP_HELLO:
		return "HELLO";
	case AP_HELLO_OK:
		return "HELLO_OK";
	case AP_ERROR:
		return "ERROR";
	case AP_ENV_REQ:
		return "ENV_REQ";
	case AP_ENV_RESP:
		return "ENV_RESP";
	case AP_FILE_REQ:
		return "FILE_REQ";
	case AP_FILE_RESP:
		return "FILE_RESP";
	case AP_CONNECT:
		return "CONNECT";
	case AP_CONNECT_RESP:
		return "CONNECT_RESP";
	case AP_DATA:
		return "DATA";
	case AP_CREDIT:
		return "CREDIT";
	case AP_CLOSE:
		return "CLOSE";
	case AP_PING:
		return "PING";
	case AP_PONG:
		return "PONG";
	case AP_FS_REQ:
		return "FS_REQ";
	case AP_FS_RESP:
		return "FS_RESP";
	case AP_PORT_SUB:
		return "PORT_SUB";
	case AP_PORT_UNSUB:
		return "PORT_UNSUB";
	case AP_PORT_RESP:
		return "PORT_RESP";
	case AP_ACCEPT:
		return "ACCEPT";
	default:
		return "?";
	}
}

/* ---- semantic rules shared by encoder and decoder ----------------------- */

/* A str/blob view: limit first (the peer's claim), then sanity of the
 * pointer. Returns 0, -EMSGSIZE or -EINVAL. */
static int bytes_check(const struct ap_bytes *b, uint32_t max)
{
	if (b->len > max)
		return -EMSGSIZE;
	if (b->len > 0 && !b->ptr)
		return -EINVAL;
	return 0;
}

static int addr_check(const struct ap_addr *a)
{
	if (a->family == 4) {
		/* One wire form per address: the 12 bytes after an IPv4
		 * address are zero, so re-encoding a decoded frame gives the
		 * same bytes and no peer can smuggle data in the padding. */
		for (size_t i = 4; i < sizeof(a->addr); i++)
			if (a->addr[i] != 0)
				return -EINVAL;
		return 0;
	}
	return a->family == 6 ? 0 : -EINVAL;
}

/* Walk an encoded env entry list: exactly count entries, each u32 len +
 * bytes with len <= AP_MAX_STRING, and nothing after the last one.
 * Returns 0, -EMSGSIZE or -EINVAL. */
static int env_check(const struct ap_bytes *entries, uint32_t count)
{
	size_t off = 0, len = entries->len;

	if (count > AP_MAX_ENV_COUNT)
		return -EMSGSIZE;
	if (len > 0 && !entries->ptr)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		if (len - off < AP_LEN_SIZE)
			return -EINVAL;
		uint32_t n = get_be32(entries->ptr + off);
		off += AP_LEN_SIZE;
		if (n > AP_MAX_STRING)
			return -EMSGSIZE;
		if (n > len - off)
			return -EINVAL;
		off += n;
	}
	return off == len ? 0 : -EINVAL; /* trailing bytes */
}

/* A dirent list: exactly count entries, names 1..AP_FS_NAME_MAX bytes
 * without '/' or NUL (the client makes local names of them: a "a/../b"
 * name must not exist), and nothing after the last one. */
static int dirent_check(const struct ap_bytes *list, uint32_t count)
{
	size_t off = 0, len = list->len;

	if (count > AP_FS_DIR_MAX_ENTRIES)
		return -EMSGSIZE;
	if (len > 0 && !list->ptr)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		if (len - off < AP_DIRENT_FIXED)
			return -EINVAL;
		uint32_t n = get_be32(list->ptr + off + 9);
		off += AP_DIRENT_FIXED;
		if (n == 0 || n > AP_FS_NAME_MAX || n > len - off)
			return -EINVAL;
		if (memchr(list->ptr + off, '/', n) || memchr(list->ptr + off, 0, n))
			return -EINVAL;
		off += n;
	}
	return off == len ? 0 : -EINVAL;
}

static bool fs_time_ok(const struct ap_fs_time *t)
{
	return t->nsec < 1000000000u;
}

static bool fs_stat_zero(const struct ap_fs_stat *st)
{
	/* Field by field: the struct has padding, memcmp would read it. */
	return !st->dev && !st->ino && !st->mode && !st->uid && !st->gid && !st->nlink &&
	       !st->rdev && !st->size && !st->blksize && !st->blocks && !st->atime.sec &&
	       !st->atime.nsec && !st->mtime.sec && !st->mtime.nsec && !st->ctime.sec &&
	       !st->ctime.nsec;
}

static bool fs_statfs_zero(const struct ap_fs_statfs *f)
{
	return !f->type && !f->bsize && !f->blocks && !f->bfree && !f->bavail && !f->files &&
	       !f->ffree && !f->fsid && !f->namelen && !f->frsize && !f->flags;
}

/* A request: the op's fields within their limits, every other field zero
 * (one wire form per message; nothing a peer sends is silently ignored). */
static int fs_req_check(const struct ap_msg *m)
{
	const struct fs_op_desc *d = fs_op(m->u.fs_req.op);
	uint32_t f = m->u.fs_req.flags;
	int r;

	if (!d)
		return -EINVAL;
	if ((!(d->req & RQ_FLAGS) && f) || (!(d->req & RQ_MODE) && m->u.fs_req.mode) ||
	    (!(d->req & RQ_HANDLE) && m->u.fs_req.handle) ||
	    (!(d->req & RQ_OFFSET) && m->u.fs_req.offset) ||
	    (!(d->req & RQ_COUNT) && m->u.fs_req.count) ||
	    (!(d->req & RQ_PATH) && m->u.fs_req.path.len) ||
	    (!(d->req & RQ_PATH2) && m->u.fs_req.path2.len) ||
	    (!(d->req & RQ_DATA) && m->u.fs_req.data.len))
		return -EINVAL;
	if ((f & ~d->flags_ok) || m->u.fs_req.mode > d->mode_max ||
	    m->u.fs_req.offset > AP_FS_MAX_OFFSET)
		return -EINVAL;
	if (m->u.fs_req.op == AP_FS_OPEN) {
		bool w = f & AP_FS_O_WRITE;
		if (((f & (AP_FS_O_CREAT | AP_FS_O_TRUNC)) && !w) ||
		    ((f & AP_FS_O_EXCL) && !(f & AP_FS_O_CREAT)) || ((f & AP_FS_O_DIRECTORY) && w))
			return -EINVAL;
	}
	if ((d->req & RQ_COUNT) && (m->u.fs_req.count == 0 || m->u.fs_req.count > AP_MAX_DATA))
		return -EINVAL;
	r = bytes_check(&m->u.fs_req.path, AP_MAX_PATH);
	if (r == 0)
		r = bytes_check(&m->u.fs_req.path2, AP_MAX_PATH);
	return r < 0 ? r : bytes_check(&m->u.fs_req.data, AP_MAX_DATA);
}

static int fs_resp_check(const struct ap_msg *m)
{
	const struct fs_op_desc *d = fs_op(m->u.fs_resp.op);
	/* A failed op carries no fields; the check below then wants them
	 * all zero. */
	uint8_t have = d && m->u.fs_resp.err == 0 ? d->resp : 0;
	int r;

	if (!d || m->u.fs_resp.err < 0)
		return -EINVAL;
	if ((!(have & RS_HANDLE) && m->u.fs_resp.handle) ||
	    (!(have & RS_COOKIE) && m->u.fs_resp.cookie) ||
	    (!(have & RS_EOF) && m->u.fs_resp.eof) || (!(have & RS_COUNT) && m->u.fs_resp.count) ||
	    (!(have & RS_STAT) && !fs_stat_zero(&m->u.fs_resp.st)) ||
	    (!(have & RS_STATFS) && !fs_statfs_zero(&m->u.fs_resp.sfs)) ||
	    (!(have & RS_DATA) && m->u.fs_resp.data.len))
		return -EINVAL;
	if (m->u.fs_resp.eof > 1 || !fs_time_ok(&m->u.fs_resp.st.atime) ||
	    !fs_time_ok(&m->u.fs_resp.st.mtime) || !fs_time_ok(&m->u.fs_resp.st.ctime))
		return -EINVAL;
	r = bytes_check(&m->u.fs_resp.data, d->resp_data);
	if (r == 0 && (have & RS_DATA) && m->u.fs_resp.op == AP_FS_READDIR)
		r = dirent_check(&m->u.fs_resp.data, m->u.fs_resp.count);
	return r;
}

static uint64_t fs_req_size(const struct ap_msg *m)
{
	uint8_t f = fs_op(m->u.fs_req.op)->req;

	return 1 + (f & RQ_FLAGS ? 4 : 0) + (f & RQ_MODE ? 4 : 0) + (f & RQ_HANDLE ? 4 : 0) +
	       (f & RQ_OFFSET ? 8 : 0) + (f & RQ_COUNT ? 4 : 0) +
	       (f & RQ_PATH ? AP_LEN_SIZE + (uint64_t)m->u.fs_req.path.len : 0) +
	       (f & RQ_PATH2 ? AP_LEN_SIZE + (uint64_t)m->u.fs_req.path2.len : 0) +
	       (f & RQ_DATA ? AP_LEN_SIZE + (uint64_t)m->u.fs_req.data.len : 0);
}

static uint64_t fs_resp_size(const struct ap_msg *m)
{
	uint8_t f = m->u.fs_resp.err ? 0 : fs_op(m->u.fs_resp.op)->resp;

	return 1 + 4 + (f & RS_HANDLE ? 4 : 0) + (f & RS_COOKIE ? 8 : 0) + (f & RS_EOF ? 1 : 0) +
	       (f & RS_COUNT ? 4 : 0) + (f & RS_STAT ? AP_FS_STAT_SIZE : 0) +
	       (f & RS_STATFS ? AP_FS_STATFS_SIZE : 0) +
	       (f & RS_DATA ? AP_LEN_SIZE + (uint64_t)m->u.fs_resp.data.len : 0);
}

static uint64_t port_sub_size(const struct ap_msg *m)
{
	uint64_t n = AP_PORT_SUB_FIXED;

	for (unsigned i = 0; i < m->u.port_sub.rule_count && i < AP_MAX_FILTER_RULES; i++)
		n += AP_FILTER_RULE_FIXED + (uint64_t)m->u.port_sub.rules[i].pattern.len;
	return n;
}

/* A subscription: a real port, a known mode, and a filter whose shape
 * matches its op. Rules past rule_count must be empty, so a decoded
 * message has one wire form. */
static int port_sub_check(const struct ap_msg *m)
{
	uint8_t op = m->u.port_sub.filter_op, n = m->u.port_sub.rule_count;

	if (m->u.port_sub.port == 0)
		return -EINVAL;
	if (m->u.port_sub.mode != AP_SUB_MIRROR && m->u.port_sub.mode != AP_SUB_STEAL)
		return -EINVAL;
	if (n > AP_MAX_FILTER_RULES)
		return -EMSGSIZE;
	if (op == AP_FILTER_NONE ? n != 0 : (op > AP_FILTER_ANY_OF || n == 0))
		return -EINVAL;
	for (unsigned i = 0; i < AP_MAX_FILTER_RULES; i++) {
		const struct ap_filter_rule *r = &m->u.port_sub.rules[i];
		int e;

		if (i >= n) {
			if (r->kind || r->pattern.len)
				return -EINVAL;
			continue;
		}
		if (r->kind < AP_FILTER_HEADER || r->kind > AP_FILTER_METHOD)
			return -EINVAL;
		e = bytes_check(&r->pattern, AP_MAX_FILTER_PATTERN);
		if (e < 0)
			return e;
		/* An empty pattern matches everything: a steal-all in
		 * disguise, which the config layer refuses too. A NUL would
		 * cut the pattern short in a C string. */
		if (r->pattern.len == 0 || memchr(r->pattern.ptr, 0, r->pattern.len))
			return -EINVAL;
	}
	return 0;
}

/* Payload size of a message that passed msg_check(). 64-bit arithmetic:
 * the ap_bytes lengths are u32 and a sum of two could wrap a 32-bit
 * size_t. */
static uint64_t payload_size(const struct ap_msg *m)
{
	switch (m->type) {
	case AP_HELLO:
		return AP_HELLO_FIXED + AP_LEN_SIZE + (uint64_t)m->u.hello.client_name.len;
	case AP_HELLO_OK:
		return AP_HELLO_OK_FIXED + 2 * AP_LEN_SIZE +
		       (uint64_t)m->u.hello_ok.agent_version.len + m->u.hello_ok.mode.len;
	case AP_ERROR:
		return 4 + AP_LEN_SIZE + (uint64_t)m->u.error.message.len;
	case AP_ENV_RESP:
		return 4 + 4 + (uint64_t)m->u.env_resp.entries.len;
	case AP_FILE_REQ:
		return AP_LEN_SIZE + (uint64_t)m->u.file_req.path.len;
	case AP_FILE_RESP:
		return 4 + AP_LEN_SIZE + (uint64_t)m->u.file_resp.content.len;
	case AP_CONNECT:
		return AP_CONNECT_SIZE;
	case AP_CONNECT_RESP:
		return AP_CONNECT_RESP_SIZE;
	case AP_DATA:
		return m->u.data.data.len;
	case AP_CREDIT:
		return 4;
	case AP_CLOSE:
		return 1 + 4;
	case AP_FS_REQ:
		return fs_req_size(m);
	case AP_FS_RESP:
		return fs_resp_size(m);
	case AP_PORT_SUB:
		return port_sub_size(m);
	case AP_PORT_UNSUB:
		return 2;
	case AP_PORT_RESP:
		return 4;
	case AP_ACCEPT:
		return AP_ACCEPT_SIZE;
	case AP_ENV_REQ:
	case AP_PING:
	case AP_PONG:
		return 0;
	default:
		return UINT64_MAX;
	}
}

/* Everything a well-formed message must satisfy beyond its framing.
 * Returns 0, -EMSGSIZE (a protocol limit) or -EINVAL (a bad value). */
static int msg_check(const struct ap_msg *m)
{
	int r;

	switch (m->type) {
	case AP_HELLO:
		/* magic and version are not checked here: a mismatch is a
		 * handshake error the agent reports, not a framing error. */
		return bytes_check(&m->u.hello.client_name, AP_MAX_STRING);
	case AP_HELLO_OK:
		r = bytes_check(&m->u.hello_ok.agent_version, AP_MAX_STRING);
		return r < 0 ? r : bytes_check(&m->u.hello_ok.mode, AP_MAX_STRING);
	case AP_ERROR:
		return bytes_check(&m->u.error.message, AP_MAX_STRING);
	case AP_ENV_RESP:
		/* Bound the list before walking it. */
		if (m->u.env_resp.entries.len > AP_MAX_PAYLOAD - 8)
			return -EMSGSIZE;
		return env_check(&m->u.env_resp.entries, m->u.env_resp.count);
	case AP_FILE_REQ:
		return bytes_check(&m->u.file_req.path, AP_MAX_PATH);
	case AP_FILE_RESP:
		return bytes_check(&m->u.file_resp.content, AP_MAX_FILE);
	case AP_CONNECT:
		if (m->u.connect.proto != AP_PROTO_TCP && m->u.connect.proto != AP_PROTO_UDP)
			return -EINVAL;
		return addr_check(&m->u.connect.dst);
	case AP_CONNECT_RESP:
		/* The agent sends a valid (e.g. all-zero IPv4) address even when
		 * err != 0: there is no "no address" family on the wire. */
		return addr_check(&m->u.connect_resp.local);
	case AP_DATA:
		return bytes_check(&m->u.data.data, AP_MAX_DATA);
	case AP_CLOSE:
		return m->u.close.how == AP_CLOSE_FIN || m->u.close.how == AP_CLOSE_RESET ? 0
		                                                                          : -EINVAL;
	case AP_FS_REQ:
		return fs_req_check(m);
	case AP_FS_RESP:
		return fs_resp_check(m);
	case AP_PORT_SUB:
		return port_sub_check(m);
	case AP_PORT_UNSUB:
		return m->u.port_unsub.port ? 0 : -EINVAL;
	case AP_ACCEPT:
		if (!(m->id & AP_STREAM_AGENT_BIT) || m->u.accept.port == 0 ||
		    (m->u.accept.mode != AP_SUB_MIRROR && m->u.accept.mode != AP_SUB_STEAL))
			return -EINVAL;
		r = addr_check(&m->u.accept.peer);
		return r < 0 ? r : addr_check(&m->u.accept.local);
	case AP_PORT_RESP:
	case AP_ENV_REQ:
	case AP_CREDIT:
	case AP_PING:
	case AP_PONG:
		return 0;
	default:
		return -EINVAL;
	}
}

/* ---- decoder ------------------------------------------------------------ */

/* A cursor over one frame's payload. Every getter checks the bytes left
 * first and fails with -EBADMSG (truncated payload) without moving. */
struct reader {
	const uint8_t *p;
	size_t len, off;
};

static bool rd_has(const struct reader *r, size_t n)
{
	return r->len - r->off >= n;
}

static int rd_u8(struct reader *r, uint8_t *v)
{
	if (!rd_has(r, 1))
		return -EBADMSG;
	*v = r->p[r->off++];
	return 0;
}

static int rd_u16(struct reader *r, uint16_t *v)
{
	if (!rd_has(r, 2))
		return -EBADMSG;
	*v = get_be16(r->p + r->off);
	r->off += 2;
	return 0;
}

static int rd_u32(struct reader *r, uint32_t *v)
{
	if (!rd_has(r, 4))
		return -EBADMSG;
	*v = get_be32(r->p + r->off);
	r->off += 4;
	return 0;
}

static int rd_u64(struct reader *r, uint64_t *v)
{
	if (!rd_has(r, 8))
		return -EBADMSG;
	*v = get_be64(r->p + r->off);
	r->off += 8;
	return 0;
}

static int rd_i64(struct reader *r, int64_t *v)
{
	uint64_t u;
	int e = rd_u64(r, &u);
	if (e == 0)
		memcpy(v, &u, sizeof(*v));
	return e;
}

static int rd_i32(struct reader *r, int32_t *v)
{
	uint32_t u;
	int e = rd_u32(r, &u);
	/* Two's complement reinterpretation, not an out-of-range
	 * conversion: memcpy keeps it well defined. */
	if (e == 0)
		memcpy(v, &u, sizeof(*v));
	return e;
}

/* u32 length + bytes. The length is checked against max (-EMSGSIZE) and
 * then against the bytes present (-EBADMSG) before the view is formed. */
static int rd_bytes(struct reader *r, uint32_t max, struct ap_bytes *ret)
{
	uint32_t n;
	int e = rd_u32(r, &n);

	if (e < 0)
		return e;
	if (n > max)
		return -EMSGSIZE;
	if (!rd_has(r, n))
		return -EBADMSG;
	ret->ptr = r->p + r->off;
	ret->len = n;
	r->off += n;
	return 0;
}

/* The rest of the payload as one view (DATA, env entry list). */
static void rd_rest(struct reader *r, struct ap_bytes *ret)
{
	ret->ptr = r->p + r->off;
	ret->len = (uint32_t)(r->len - r->off); /* <= AP_MAX_PAYLOAD */
	r->off = r->len;
}

static int rd_addr(struct reader *r, struct ap_addr *a)
{
	int e = rd_u8(r, &a->family);

	if (e == 0)
		e = rd_u16(r, &a->port);
	if (e == 0 && !rd_has(r, sizeof(a->addr)))
		e = -EBADMSG;
	if (e == 0) {
		memcpy(a->addr, r->p + r->off, sizeof(a->addr));
		r->off += sizeof(a->addr);
	}
	return e;
}

static int rd_time(struct reader *r, struct ap_fs_time *t)
{
	int e = rd_i64(r, &t->sec);
	return e < 0 ? e : rd_u32(r, &t->nsec);
}

static int rd_stat(struct reader *r, struct ap_fs_stat *st)
{
	int e = rd_u64(r, &st->dev);

	if (e == 0)
		e = rd_u64(r, &st->ino);
	if (e == 0)
		e = rd_u32(r, &st->mode);
	if (e == 0)
		e = rd_u32(r, &st->uid);
	if (e == 0)
		e = rd_u32(r, &st->gid);
	uint64_t *u64s[] = {&st->nlink, &st->rdev, &st->size, &st->blksize, &st->blocks};
	for (size_t i = 0; e == 0 && i < sizeof(u64s) / sizeof(u64s[0]); i++)
		e = rd_u64(r, u64s[i]);
	if (e == 0)
		e = rd_time(r, &st->atime);
	if (e == 0)
		e = rd_time(r, &st->mtime);
	if (e == 0)
		e = rd_time(r, &st->ctime);
	return e;
}

/* statfs is eleven u64 in struct order. */
#define STATFS_FIELDS(f)                                                                       \
	{                                                                                      \
		&(f)->type, &(f)->bsize, &(f)->blocks, &(f)->bfree, &(f)->bavail, &(f)->files, \
		        &(f)->ffree, &(f)->fsid, &(f)->namelen, &(f)->frsize, &(f)->flags      \
	}

static int rd_statfs(struct reader *r, struct ap_fs_statfs *f)
{
	uint64_t *v[] = STATFS_FIELDS(f);
	int e = 0;

	for (size_t i = 0; e == 0 && i < sizeof(v) / sizeof(v[0]); i++)
		e = rd_u64(r, v[i]);
	return e;
}

/* The op byte decides which fields follow; limits are checked as each
 * length is read, before its bytes are looked at. */
static int decode_fs_req(struct reader *r, struct ap_msg *m)
{
	const struct fs_op_desc *d;
	int e = rd_u8(r, &m->u.fs_req.op);

	if (e < 0)
		return e;
	d = fs_op(m->u.fs_req.op);
	if (!d)
		return -EBADMSG;
	if (e == 0 && (d->req & RQ_FLAGS))
		e = rd_u32(r, &m->u.fs_req.flags);
	if (e == 0 && (d->req & RQ_MODE))
		e = rd_u32(r, &m->u.fs_req.mode);
	if (e == 0 && (d->req & RQ_HANDLE))
		e = rd_u32(r, &m->u.fs_req.handle);
	if (e == 0 && (d->req & RQ_OFFSET))
		e = rd_u64(r, &m->u.fs_req.offset);
	if (e == 0 && (d->req & RQ_COUNT))
		e = rd_u32(r, &m->u.fs_req.count);
	if (e == 0 && (d->req & RQ_PATH))
		e = rd_bytes(r, AP_MAX_PATH, &m->u.fs_req.path);
	if (e == 0 && (d->req & RQ_PATH2))
		e = rd_bytes(r, AP_MAX_PATH, &m->u.fs_req.path2);
	if (e == 0 && (d->req & RQ_DATA))
		e = rd_bytes(r, AP_MAX_DATA, &m->u.fs_req.data);
	return e;
}

static int decode_fs_resp(struct reader *r, struct ap_msg *m)
{
	const struct fs_op_desc *d;
	uint8_t f;
	int e = rd_u8(r, &m->u.fs_resp.op);

	if (e == 0)
		e = rd_i32(r, &m->u.fs_resp.err);
	if (e < 0)
		return e;
	d = fs_op(m->u.fs_resp.op);
	if (!d)
		return -EBADMSG;
	f = m->u.fs_resp.err ? 0 : d->resp;
	if (e == 0 && (f & RS_HANDLE))
		e = rd_u32(r, &m->u.fs_resp.handle);
	if (e == 0 && (f & RS_COOKIE))
		e = rd_u64(r, &m->u.fs_resp.cookie);
	if (e == 0 && (f & RS_EOF))
		e = rd_u8(r, &m->u.fs_resp.eof);
	if (e == 0 && (f & RS_COUNT))
		e = rd_u32(r, &m->u.fs_resp.count);
	if (e == 0 && (f & RS_STAT))
		e = rd_stat(r, &m->u.fs_resp.st);
	if (e == 0 && (f & RS_STATFS))
		e = rd_statfs(r, &m->u.fs_resp.sfs);
	if (e == 0 && (f & RS_DATA))
		e = rd_bytes(r, d->resp_data, &m->u.fs_resp.data);
	return e;
}

/* Parse the payload of a frame whose header passed the checks. Structural
 * checks only; msg_check() applies the semantic ones afterwards. */
static int decode_port_sub(struct reader *r, struct ap_msg *m)
{
	int e = rd_u16(r, &m->u.port_sub.port);

	if (e == 0)
		e = rd_u8(r, &m->u.port_sub.mode);
	if (e == 0)
		e = rd_u32(r, &m->u.port_sub.window);
	if (e == 0)
		e = rd_u8(r, &m->u.port_sub.filter_op);
	if (e == 0)
		e = rd_u8(r, &m->u.port_sub.rule_count);
	/* The count bounds the array before a single rule is read. */
	if (e == 0 && m->u.port_sub.rule_count > AP_MAX_FILTER_RULES)
		e = -EMSGSIZE;
	for (unsigned i = 0; e == 0 && i < m->u.port_sub.rule_count; i++) {
		e = rd_u8(r, &m->u.port_sub.rules[i].kind);
		if (e == 0)
			e = rd_bytes(r, AP_MAX_FILTER_PATTERN, &m->u.port_sub.rules[i].pattern);
	}
	return e;
}

static int decode_payload(struct reader *r, struct ap_msg *m)
{
	uint16_t reserved = 0;
	int e = 0;

	switch (m->type) {
	case AP_HELLO:
		e = rd_u32(r, &m->u.hello.magic);
		if (e == 0)
			e = rd_u16(r, &m->u.hello.version);
		if (e == 0)
			e = rd_u16(r, &reserved);
		if (e == 0)
			e = rd_bytes(r, AP_MAX_STRING, &m->u.hello.client_name);
		break;
	case AP_HELLO_OK:
		e = rd_u16(r, &m->u.hello_ok.version);
		if (e == 0)
			e = rd_u16(r, &reserved);
		if (e == 0)
			e = rd_bytes(r, AP_MAX_STRING, &m->u.hello_ok.agent_version);
		if (e == 0)
			e = rd_bytes(r, AP_MAX_STRING, &m->u.hello_ok.mode);
		break;
	case AP_ERROR:
		e = rd_i32(r, &m->u.error.err);
		if (e == 0)
			e = rd_bytes(r, AP_MAX_STRING, &m->u.error.message);
		break;
	case AP_ENV_RESP:
		e = rd_i32(r, &m->u.env_resp.err);
		if (e == 0)
			e = rd_u32(r, &m->u.env_resp.count);
		if (e == 0 && m->u.env_resp.count > AP_MAX_ENV_COUNT)
			e = -EMSGSIZE;
		/* The list itself is walked by msg_check(). */
		if (e == 0)
			rd_rest(r, &m->u.env_resp.entries);
		break;
	case AP_FILE_REQ:
		e = rd_bytes(r, AP_MAX_PATH, &m->u.file_req.path);
		break;
	case AP_FILE_RESP:
		e = rd_i32(r, &m->u.file_resp.err);
		if (e == 0)
			e = rd_bytes(r, AP_MAX_FILE, &m->u.file_resp.content);
		break;
	case AP_CONNECT:
		e = rd_u32(r, &m->u.connect.stream);
		if (e == 0)
			e = rd_u8(r, &m->u.connect.proto);
		if (e == 0)
			e = rd_addr(r, &m->u.connect.dst);
		if (e == 0)
			e = rd_u32(r, &m->u.connect.window);
		break;
	case AP_CONNECT_RESP:
		e = rd_i32(r, &m->u.connect_resp.err);
		if (e == 0)
			e = rd_u32(r, &m->u.connect_resp.stream);
		if (e == 0)
			e = rd_addr(r, &m->u.connect_resp.local);
		break;
	case AP_DATA:
		/* Header check already bounded it by AP_MAX_DATA. */
		rd_rest(r, &m->u.data.data);
		break;
	case AP_CREDIT:
		e = rd_u32(r, &m->u.credit.bytes);
		break;
	case AP_CLOSE:
		e = rd_u8(r, &m->u.close.how);
		if (e == 0)
			e = rd_i32(r, &m->u.close.err);
		break;
	case AP_FS_REQ:
		e = decode_fs_req(r, m);
		break;
	case AP_FS_RESP:
		e = decode_fs_resp(r, m);
		break;
	case AP_PORT_SUB:
		e = decode_port_sub(r, m);
		break;
	case AP_PORT_UNSUB:
		e = rd_u16(r, &m->u.port_unsub.port);
		break;
	case AP_PORT_RESP:
		e = rd_i32(r, &m->u.port_resp.err);
		break;
	case AP_ACCEPT:
		e = rd_u16(r, &m->u.accept.port);
		if (e == 0)
			e = rd_u8(r, &m->u.accept.mode);
		if (e == 0)
			e = rd_addr(r, &m->u.accept.peer);
		if (e == 0)
			e = rd_addr(r, &m->u.accept.local);
		if (e == 0)
			e = rd_u32(r, &m->u.accept.window);
		break;
	case AP_ENV_REQ:
	case AP_PING:
	case AP_PONG:
		break;
	default:
		return -EBADMSG;
	}
	if (e < 0)
		return e;
	if (reserved != 0)
		return -EBADMSG;
	if (r->off != r->len)
		return -EBADMSG; /* trailing bytes */
	return 0;
}

ssize_t ap_decode(const uint8_t *buf, size_t len, struct ap_msg *ret_msg)
{
	struct ap_msg m;
	uint32_t plen, type;
	int e;

	if (len < AP_HEADER_SIZE)
		return 0;
	plen = get_be32(buf);
	type = buf[4];
	/* Length first, so an oversized frame fails before any of its payload
	 * is awaited (a caller that waited would buffer up to 4 GiB). */
	if (plen > AP_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (buf[5] != 0 || get_be16(buf + 6) != 0)
		return -EBADMSG; /* flags, reserved: version 1 defines none */
	if (!type_known(type))
		return -EBADMSG;
	if (plen < type_bounds[type].min)
		return -EBADMSG;
	if (plen > type_bounds[type].max)
		/* A fixed-size type with extra bytes is malformed; a variable
		 * one this long must carry a field over its limit. */
		return type_bounds[type].min == type_bounds[type].max ? -EBADMSG : -EMSGSIZE;
	if (len - AP_HEADER_SIZE < plen)
		return 0;

	memset(&m, 0, sizeof(m));
	m.type = (enum ap_type)type;
	m.id = get_be32(buf + 8);
	struct reader r = {.p = buf + AP_HEADER_SIZE, .len = plen, .off = 0};
	e = decode_payload(&r, &m);
	if (e < 0)
		return e;
	e = msg_check(&m);
	if (e < 0)
		return e == -EINVAL ? -EBADMSG : e;

	*ret_msg = m;
	return (ssize_t)(AP_HEADER_SIZE + plen);
}

/* ---- encoder ------------------------------------------------------------ */

/* The encoder writes into a buffer already known to be large enough (the
 * size is computed and compared with cap first), so the writers only
 * advance. */
struct writer {
	uint8_t *p;
	size_t off;
};

static void wr_u8(struct writer *w, uint8_t v)
{
	w->p[w->off++] = v;
}

static void wr_u16(struct writer *w, uint16_t v)
{
	put_be16(w->p + w->off, v);
	w->off += 2;
}

static void wr_u32(struct writer *w, uint32_t v)
{
	put_be32(w->p + w->off, v);
	w->off += 4;
}

static void wr_u64(struct writer *w, uint64_t v)
{
	put_be64(w->p + w->off, v);
	w->off += 8;
}

static void wr_i64(struct writer *w, int64_t v)
{
	uint64_t u;
	memcpy(&u, &v, sizeof(u));
	wr_u64(w, u);
}

static void wr_i32(struct writer *w, int32_t v)
{
	uint32_t u;
	memcpy(&u, &v, sizeof(u));
	wr_u32(w, u);
}

static void wr_raw(struct writer *w, const struct ap_bytes *b)
{
	/* memcpy with a NULL source is undefined even for 0 bytes. */
	if (b->len > 0)
		memcpy(w->p + w->off, b->ptr, b->len);
	w->off += b->len;
}

static void wr_bytes(struct writer *w, const struct ap_bytes *b)
{
	wr_u32(w, b->len);
	wr_raw(w, b);
}

static void wr_addr(struct writer *w, const struct ap_addr *a)
{
	wr_u8(w, a->family);
	wr_u16(w, a->port);
	memcpy(w->p + w->off, a->addr, sizeof(a->addr));
	w->off += sizeof(a->addr);
}

static void wr_time(struct writer *w, const struct ap_fs_time *t)
{
	wr_i64(w, t->sec);
	wr_u32(w, t->nsec);
}

static void wr_stat(struct writer *w, const struct ap_fs_stat *st)
{
	wr_u64(w, st->dev);
	wr_u64(w, st->ino);
	wr_u32(w, st->mode);
	wr_u32(w, st->uid);
	wr_u32(w, st->gid);
	wr_u64(w, st->nlink);
	wr_u64(w, st->rdev);
	wr_u64(w, st->size);
	wr_u64(w, st->blksize);
	wr_u64(w, st->blocks);
	wr_time(w, &st->atime);
	wr_time(w, &st->mtime);
	wr_time(w, &st->ctime);
}

static void wr_statfs(struct writer *w, const struct ap_fs_statfs *f)
{
	const uint64_t *v[] = STATFS_FIELDS(f);

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		wr_u64(w, *v[i]);
}

static void encode_fs_req(struct writer *w, const struct ap_msg *m)
{
	uint8_t f = fs_op(m->u.fs_req.op)->req;

	wr_u8(w, m->u.fs_req.op);
	if (f & RQ_FLAGS)
		wr_u32(w, m->u.fs_req.flags);
	if (f & RQ_MODE)
		wr_u32(w, m->u.fs_req.mode);
	if (f & RQ_HANDLE)
		wr_u32(w, m->u.fs_req.handle);
	if (f & RQ_OFFSET)
		wr_u64(w, m->u.fs_req.offset);
	if (f & RQ_COUNT)
		wr_u32(w, m->u.fs_req.count);
	if (f & RQ_PATH)
		wr_bytes(w, &m->u.fs_req.path);
	if (f & RQ_PATH2)
		wr_bytes(w, &m->u.fs_req.path2);
	if (f & RQ_DATA)
		wr_bytes(w, &m->u.fs_req.data);
}

static void encode_fs_resp(struct writer *w, const struct ap_msg *m)
{
	uint8_t f = m->u.fs_resp.err ? 0 : fs_op(m->u.fs_resp.op)->resp;

	wr_u8(w, m->u.fs_resp.op);
	wr_i32(w, m->u.fs_resp.err);
	if (f & RS_HANDLE)
		wr_u32(w, m->u.fs_resp.handle);
	if (f & RS_COOKIE)
		wr_u64(w, m->u.fs_resp.cookie);
	if (f & RS_EOF)
		wr_u8(w, m->u.fs_resp.eof);
	if (f & RS_COUNT)
		wr_u32(w, m->u.fs_resp.count);
	if (f & RS_STAT)
		wr_stat(w, &m->u.fs_resp.st);
	if (f & RS_STATFS)
		wr_statfs(w, &m->u.fs_resp.sfs);
	if (f & RS_DATA)
		wr_bytes(w, &m->u.fs_resp.data);
}

static void encode_payload(struct writer *w, const struct ap_msg *m)
{
	switch (m->type) {
	case AP_HELLO:
		wr_u32(w, m->u.hello.magic);
		wr_u16(w, m->u.hello.version);
		wr_u16(w, 0);
		wr_bytes(w, &m->u.hello.client_name);
		break;
	case AP_HELLO_OK:
		wr_u16(w, m->u.hello_ok.version);
		wr_u16(w, 0);
		wr_bytes(w, &m->u.hello_ok.agent_version);
		wr_bytes(w, &m->u.hello_ok.mode);
		break;
	case AP_ERROR:
		wr_i32(w, m->u.error.err);
		wr_bytes(w, &m->u.error.message);
		break;
	case AP_ENV_RESP:
		wr_i32(w, m->u.env_resp.err);
		wr_u32(w, m->u.env_resp.count);
		wr_raw(w, &m->u.env_resp.entries);
		break;
	case AP_FILE_REQ:
		wr_bytes(w, &m->u.file_req.path);
		break;
	case AP_FILE_RESP:
		wr_i32(w, m->u.file_resp.err);
		wr_bytes(w, &m->u.file_resp.content);
		break;
	case AP_CONNECT:
		wr_u32(w, m->u.connect.stream);
		wr_u8(w, m->u.connect.proto);
		wr_addr(w, &m->u.connect.dst);
		wr_u32(w, m->u.connect.window);
		break;
	case AP_CONNECT_RESP:
		wr_i32(w, m->u.connect_resp.err);
		wr_u32(w, m->u.connect_resp.stream);
		wr_addr(w, &m->u.connect_resp.local);
		break;
	case AP_DATA:
		wr_raw(w, &m->u.data.data);
		break;
	case AP_CREDIT:
		wr_u32(w, m->u.credit.bytes);
		break;
	case AP_CLOSE:
		wr_u8(w, m->u.close.how);
		wr_i32(w, m->u.close.err);
		break;
	case AP_FS_REQ:
		encode_fs_req(w, m);
		break;
	case AP_FS_RESP:
		encode_fs_resp(w, m);
		break;
	case AP_PORT_SUB:
		wr_u16(w, m->u.port_sub.port);
		wr_u8(w, m->u.port_sub.mode);
		wr_u32(w, m->u.port_sub.window);
		wr_u8(w, m->u.port_sub.filter_op);
		wr_u8(w, m->u.port_sub.rule_count);
		for (unsigned i = 0; i < m->u.port_sub.rule_count; i++) {
			wr_u8(w, m->u.port_sub.rules[i].kind);
			wr_bytes(w, &m->u.port_sub.rules[i].pattern);
		}
		break;
	case AP_PORT_UNSUB:
		wr_u16(w, m->u.port_unsub.port);
		break;
	case AP_PORT_RESP:
		wr_i32(w, m->u.port_resp.err);
		break;
	case AP_ACCEPT:
		wr_u16(w, m->u.accept.port);
		wr_u8(w, m->u.accept.mode);
		wr_addr(w, &m->u.accept.peer);
		wr_addr(w, &m->u.accept.local);
		wr_u32(w, m->u.accept.window);
		break;
	case AP_ENV_REQ:
	case AP_PING:
	case AP_PONG:
	default:
		break;
	}
}

ssize_t ap_encoded_size(const struct ap_msg *msg)
{
	int e = msg_check(msg);
	uint64_t n;

	if (e < 0)
		return e;
	n = payload_size(msg);
	if (n > AP_MAX_PAYLOAD)
		return -EMSGSIZE;
	return (ssize_t)(AP_HEADER_SIZE + n);
}

ssize_t ap_encode(const struct ap_msg *msg, uint8_t *out, size_t cap)
{
	ssize_t size = ap_encoded_size(msg);

	if (size < 0)
		return size;
	if ((size_t)size > cap)
		return -ENOBUFS;

	struct writer w = {.p = out, .off = 0};
	wr_u32(&w, (uint32_t)(size - AP_HEADER_SIZE));
	wr_u8(&w, (uint8_t)msg->type);
	wr_u8(&w, 0);  /* flags */
	wr_u16(&w, 0); /* reserved */
	wr_u32(&w, msg->id);
	encode_payload(&w, msg);
	return size;
}

/* ---- env entry lists ---------------------------------------------------- */

int ap_env_put(uint8_t *buf, size_t cap, size_t *off, const char *entry, size_t len)
{
	if (len > AP_MAX_STRING)
		return -EMSGSIZE;
	/* Written so no sum can wrap: *off may be anything the caller had. */
	if (*off > cap || cap - *off < AP_LEN_SIZE || cap - *off - AP_LEN_SIZE < len)
		return -ENOBUFS;
	put_be32(buf + *off, (uint32_t)len);
	if (len > 0)
		memcpy(buf + *off + AP_LEN_SIZE, entry, len);
	*off += AP_LEN_SIZE + len;
	return 0;
}

int ap_env_next(const struct ap_bytes *entries, size_t *off, struct ap_bytes *ret_entry)
{
	size_t len = entries->len;
	uint32_t n;

	/* The list was validated by ap_decode(), but a caller's loop must
	 * never run off the end if handed something else: a malformed list
	 * ends the walk (0) rather than returning an error a `while (...)`
	 * loop would spin on. */
	if (*off > len || len - *off < AP_LEN_SIZE)
		return 0;
	n = get_be32(entries->ptr + *off);
	if (n > len - *off - AP_LEN_SIZE)
		return 0;
	ret_entry->ptr = entries->ptr + *off + AP_LEN_SIZE;
	ret_entry->len = n;
	*off += AP_LEN_SIZE + n;
	return 1;
}

/* ---- dirent lists --------------------------------------------------------- */

int ap_dirent_put(uint8_t *buf, size_t cap, size_t *off, uint64_t ino, uint8_t type,
                  const char *name, size_t len)
{
	if (len == 0 || len > AP_FS_NAME_MAX || memchr(name, '/', len) || memchr(name, 0, len))
		return -EINVAL;
	if (*off > cap || cap - *off < AP_DIRENT_FIXED || cap - *off - AP_DIRENT_FIXED < len)
		return -ENOBUFS;
	put_be64(buf + *off, ino);
	buf[*off + 8] = type;
	put_be32(buf + *off + 9, (uint32_t)len);
	memcpy(buf + *off + AP_DIRENT_FIXED, name, len);
	*off += AP_DIRENT_FIXED + len;
	return 0;
}

int ap_dirent_next(const struct ap_bytes *list, size_t *off, struct ap_dirent *ret)
{
	size_t len = list->len;
	uint32_t n;

	/* As ap_env_next: a malformed list ends the walk. */
	if (*off > len || len - *off < AP_DIRENT_FIXED)
		return 0;
	n = get_be32(list->ptr + *off + 9);
	if (n > len - *off - AP_DIRENT_FIXED)
		return 0;
	ret->ino = get_be64(list->ptr + *off);
	ret->type = list->ptr[*off + 8];
	ret->name.ptr = list->ptr + *off + AP_DIRENT_FIXED;
	ret->name.len = n;
	*off += AP_DIRENT_FIXED + n;
	return 1;
}

int ap_bytes_to_str(const struct ap_bytes *b, char *dst, size_t cap)
{
	if (b->len >= cap)
		return -ENAMETOOLONG;
	if (b->len > 0) {
		/* An embedded NUL would silently truncate the string the
		 * caller acts on ("/etc/passwd\0/../x"). */
		if (memchr(b->ptr, 0, b->len))
			return -EINVAL;
		memcpy(dst, b->ptr, b->len);
	}
	dst[b->len] = '\0';
	return 0;
}

/* ---- addresses ---------------------------------------------------------- */

int ap_addr_from_sockaddr(const struct sockaddr *sa, size_t len, struct ap_addr *ret)
{
	struct ap_addr a = {0};
	sa_family_t fam;

	if (len < sizeof(fam))
		return -EINVAL;
	/* memcpy into properly typed locals: the caller's buffer may be a
	 * byte array copied out of a tracee with no particular alignment. */
	memcpy(&fam, (const uint8_t *)sa + offsetof(struct sockaddr, sa_family), sizeof(fam));
	if (fam == AF_INET) {
		struct sockaddr_in sin;
		if (len < sizeof(sin))
			return -EINVAL;
		memcpy(&sin, sa, sizeof(sin));
		a.family = 4;
		a.port = ntohs(sin.sin_port);
		memcpy(a.addr, &sin.sin_addr, 4);
	} else if (fam == AF_INET6) {
		struct sockaddr_in6 sin6;
		if (len < sizeof(sin6))
			return -EINVAL;
		memcpy(&sin6, sa, sizeof(sin6));
		/* flowinfo and scope_id do not travel: a local interface
		 * index means nothing in the agent's namespace. */
		a.family = 6;
		a.port = ntohs(sin6.sin6_port);
		memcpy(a.addr, &sin6.sin6_addr, 16);
	} else {
		return -EAFNOSUPPORT;
	}
	*ret = a;
	return 0;
}

int ap_addr_to_sockaddr(const struct ap_addr *a, struct sockaddr *sa, size_t cap)
{
	if (a->family == 4) {
		struct sockaddr_in sin = {0};
		if (cap < sizeof(sin))
			return -EINVAL;
		sin.sin_family = AF_INET;
		sin.sin_port = htons(a->port);
		memcpy(&sin.sin_addr, a->addr, 4);
		memcpy(sa, &sin, sizeof(sin));
		return (int)sizeof(sin);
	}
	if (a->family == 6) {
		struct sockaddr_in6 sin6 = {0};
		if (cap < sizeof(sin6))
			return -EINVAL;
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(a->port);
		memcpy(&sin6.sin6_addr, a->addr, 16);
		memcpy(sa, &sin6, sizeof(sin6));
		return (int)sizeof(sin6);
	}
	return -EINVAL;
}
