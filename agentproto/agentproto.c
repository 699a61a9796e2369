/* agentproto: encoder and decoder for the session <-> agent wire format.
 *
 * Security invariant: every byte ap_decode() looks at lies inside the
 * caller's buf[0..len), and every length field is compared against both a
 * protocol limit and the bytes actually present before anything uses it.
 * The decoder copies fields out with explicit big-endian assembly; it never
 * casts the buffer to a struct (that would bake host layout and alignment
 * into the protocol).
 *
 * Encoder (encode.c) and decoder share one set of semantic rules
 * (ap_msg_check(), here), so ap_encode() refuses exactly the messages
 * ap_decode() would reject, and a decoded frame re-encodes to the
 * identical bytes (the fuzzer checks it). lists.c has the entry-list and
 * address helpers; internal.h what the three files share.
 *
 * Pure code: no I/O, no allocation, no logging. */
#include "agentproto/agentproto.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include "agentproto/internal.h"

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
        [AP_FS_FSYNC] = {"FSYNC", RQ_HANDLE, RS_STAT, 0, 0, 0},
        [AP_FS_CLOSE] = {"CLOSE", RQ_HANDLE, 0, 0, 0, 0},
        [AP_FS_READDIR] = {"READDIR", RQ_HANDLE | RQ_OFFSET,
                           RS_COOKIE | RS_EOF | RS_COUNT | RS_DATA, 0, 0, AP_FS_DIR_MAX_BYTES},
        [AP_FS_MKDIR] = {"MKDIR", RQ_MODE | RQ_PATH, 0, 0, AP_FS_MODE_MAX, 0},
        [AP_FS_UNLINK] = {"UNLINK", RQ_PATH, 0, 0, 0, 0},
        [AP_FS_RMDIR] = {"RMDIR", RQ_PATH, 0, 0, 0, 0},
        [AP_FS_RENAME] = {"RENAME", RQ_FLAGS | RQ_PATH | RQ_PATH2, 0, AP_FS_RENAME_NOREPLACE, 0, 0},
        [AP_FS_TRUNCATE] = {"TRUNCATE", RQ_OFFSET | RQ_PATH, 0, 0, 0, 0},
        [AP_FS_OPEN_IF] = {"OPEN_IF", RQ_STAT | RQ_PATH, RS_HANDLE | RS_STAT, 0, 0, 0},
};

const struct fs_op_desc *ap_fs_op_desc(uint8_t op)
{
	return op >= AP_FS_ENABLE_WRITE && op <= AP_FS_OP_LAST ? &fs_ops[op] : NULL;
}

const char *ap_fs_op_name(int op)
{
	const struct fs_op_desc *d = op >= 0 && op <= UINT8_MAX ? ap_fs_op_desc((uint8_t)op) : NULL;
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

/* OPEN_IF's expected version: dev, ino, size, mtime and ctime (valid
 * times), every other stat field zero. */
static bool version_only(const struct ap_fs_stat *st)
{
	struct ap_fs_stat rest = *st;

	rest.dev = rest.ino = rest.size = 0;
	rest.mtime = rest.ctime = (struct ap_fs_time){0, 0};
	return fs_stat_zero(&rest) && fs_time_ok(&st->mtime) && fs_time_ok(&st->ctime);
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
	const struct fs_op_desc *d = ap_fs_op_desc(m->u.fs_req.op);
	uint32_t f = m->u.fs_req.flags;
	int r;

	if (!d)
		return -EINVAL;
	if ((!(d->req & RQ_FLAGS) && f) || (!(d->req & RQ_MODE) && m->u.fs_req.mode) ||
	    (!(d->req & RQ_HANDLE) && m->u.fs_req.handle) ||
	    (!(d->req & RQ_OFFSET) && m->u.fs_req.offset) ||
	    (!(d->req & RQ_COUNT) && m->u.fs_req.count) ||
	    (!(d->req & RQ_STAT) && !fs_stat_zero(&m->u.fs_req.st)) ||
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
	if ((d->req & RQ_STAT) && !version_only(&m->u.fs_req.st))
		return -EINVAL;
	r = bytes_check(&m->u.fs_req.path, AP_MAX_PATH);
	if (r == 0)
		r = bytes_check(&m->u.fs_req.path2, AP_MAX_PATH);
	return r < 0 ? r : bytes_check(&m->u.fs_req.data, AP_MAX_DATA);
}

static int fs_resp_check(const struct ap_msg *m)
{
	const struct fs_op_desc *d = ap_fs_op_desc(m->u.fs_resp.op);
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
	uint16_t f = ap_fs_op_desc(m->u.fs_req.op)->req;

	return 1 + (f & RQ_FLAGS ? 4 : 0) + (f & RQ_MODE ? 4 : 0) + (f & RQ_HANDLE ? 4 : 0) +
	       (f & RQ_OFFSET ? 8 : 0) + (f & RQ_COUNT ? 4 : 0) +
	       (f & RQ_STAT ? AP_FS_STAT_SIZE : 0) +
	       (f & RQ_PATH ? AP_LEN_SIZE + (uint64_t)m->u.fs_req.path.len : 0) +
	       (f & RQ_PATH2 ? AP_LEN_SIZE + (uint64_t)m->u.fs_req.path2.len : 0) +
	       (f & RQ_DATA ? AP_LEN_SIZE + (uint64_t)m->u.fs_req.data.len : 0);
}

static uint64_t fs_resp_size(const struct ap_msg *m)
{
	uint8_t f = m->u.fs_resp.err ? 0 : ap_fs_op_desc(m->u.fs_resp.op)->resp;

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

/* Payload size of a message that passed ap_msg_check(). 64-bit arithmetic:
 * the ap_bytes lengths are u32 and a sum of two could wrap a 32-bit
 * size_t. */
uint64_t ap_payload_size(const struct ap_msg *m)
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
int ap_msg_check(const struct ap_msg *m)
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
	d = ap_fs_op_desc(m->u.fs_req.op);
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
	if (e == 0 && (d->req & RQ_STAT))
		e = rd_stat(r, &m->u.fs_req.st);
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
	d = ap_fs_op_desc(m->u.fs_resp.op);
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
 * checks only; ap_msg_check() applies the semantic ones afterwards. */
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
		/* The list itself is walked by ap_msg_check(). */
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
	e = ap_msg_check(&m);
	if (e < 0)
		return e == -EINVAL ? -EBADMSG : e;

	*ret_msg = m;
	return (ssize_t)(AP_HEADER_SIZE + plen);
}

int ap_data_header_put(uint8_t out[AP_HEADER_SIZE], uint32_t id, uint32_t len)
{
	if (len > AP_MAX_DATA)
		return -EMSGSIZE;
	put_be32(out, len);
	out[4] = AP_DATA;
	out[5] = 0;           /* flags */
	put_be16(out + 6, 0); /* reserved */
	put_be32(out + 8, id);
	return 0;
}

int ap_data_header_get(const uint8_t *buf, size_t len, uint32_t *ret_id, uint32_t *ret_len)
{
	uint32_t plen;

	if (len < AP_HEADER_SIZE || buf[4] != AP_DATA || buf[5] != 0 || get_be16(buf + 6) != 0)
		return 0;
	plen = get_be32(buf);
	if (plen > type_bounds[AP_DATA].max)
		return 0;
	*ret_id = get_be32(buf + 8);
	*ret_len = plen;
	return 1;
}
