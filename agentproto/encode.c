/* agentproto's encoder (agentproto.h): the decoder's exact inverse. The
 * semantic rules are the decoder's (ap_msg_check), so ap_encode() refuses
 * exactly what ap_decode() would reject. */
#include "agentproto/internal.h"

#include <errno.h>
#include <string.h>

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
	uint16_t f = ap_fs_op_desc(m->u.fs_req.op)->req;

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
	if (f & RQ_STAT)
		wr_stat(w, &m->u.fs_req.st);
	if (f & RQ_PATH)
		wr_bytes(w, &m->u.fs_req.path);
	if (f & RQ_PATH2)
		wr_bytes(w, &m->u.fs_req.path2);
	if (f & RQ_DATA)
		wr_bytes(w, &m->u.fs_req.data);
}

static void encode_fs_resp(struct writer *w, const struct ap_msg *m)
{
	uint8_t f = m->u.fs_resp.err ? 0 : ap_fs_op_desc(m->u.fs_resp.op)->resp;

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
	int e = ap_msg_check(msg);
	uint64_t n;

	if (e < 0)
		return e;
	n = ap_payload_size(msg);
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
