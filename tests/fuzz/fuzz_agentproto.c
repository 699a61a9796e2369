/* libFuzzer target for agentproto. Decodes frame after frame through the
 * input; every frame that decodes must re-encode to the very same bytes
 * and decode again to an equal message, and the helpers that consume a
 * decoded message (env walk, string copy, sockaddr conversion) must stay
 * in bounds. Any violation aborts, which libFuzzer and the corpus replay
 * (replay_main.c) both report as a failure. */
#include "fuzz.h"
#include "agentproto/agentproto.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Room for the largest legal frame. */
static uint8_t reenc[AP_HEADER_SIZE + AP_MAX_PAYLOAD];

static bool bytes_eq(const struct ap_bytes *a, const struct ap_bytes *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
}

static bool addr_eq(const struct ap_addr *a, const struct ap_addr *b)
{
	return a->family == b->family && a->port == b->port &&
	       memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static bool time_eq(const struct ap_fs_time *a, const struct ap_fs_time *b)
{
	return a->sec == b->sec && a->nsec == b->nsec;
}

/* Field by field: the structs have padding. */
static bool stat_eq(const struct ap_fs_stat *a, const struct ap_fs_stat *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->mode == b->mode && a->uid == b->uid &&
	       a->gid == b->gid && a->nlink == b->nlink && a->rdev == b->rdev &&
	       a->size == b->size && a->blksize == b->blksize && a->blocks == b->blocks &&
	       time_eq(&a->atime, &b->atime) && time_eq(&a->mtime, &b->mtime) &&
	       time_eq(&a->ctime, &b->ctime);
}

static bool statfs_eq(const struct ap_fs_statfs *a, const struct ap_fs_statfs *b)
{
	return a->type == b->type && a->bsize == b->bsize && a->blocks == b->blocks &&
	       a->bfree == b->bfree && a->bavail == b->bavail && a->files == b->files &&
	       a->ffree == b->ffree && a->fsid == b->fsid && a->namelen == b->namelen &&
	       a->frsize == b->frsize && a->flags == b->flags;
}

static bool msg_eq(const struct ap_msg *a, const struct ap_msg *b)
{
	if (a->type != b->type || a->id != b->id)
		return false;
	switch (a->type) {
	case AP_HELLO:
		return a->u.hello.magic == b->u.hello.magic &&
		       a->u.hello.version == b->u.hello.version &&
		       bytes_eq(&a->u.hello.client_name, &b->u.hello.client_name);
	case AP_HELLO_OK:
		return a->u.hello_ok.version == b->u.hello_ok.version &&
		       bytes_eq(&a->u.hello_ok.agent_version, &b->u.hello_ok.agent_version) &&
		       bytes_eq(&a->u.hello_ok.mode, &b->u.hello_ok.mode);
	case AP_ERROR:
		return a->u.error.err == b->u.error.err &&
		       bytes_eq(&a->u.error.message, &b->u.error.message);
	case AP_ENV_RESP:
		return a->u.env_resp.err == b->u.env_resp.err &&
		       a->u.env_resp.count == b->u.env_resp.count &&
		       bytes_eq(&a->u.env_resp.entries, &b->u.env_resp.entries);
	case AP_FILE_REQ:
		return bytes_eq(&a->u.file_req.path, &b->u.file_req.path);
	case AP_FILE_RESP:
		return a->u.file_resp.err == b->u.file_resp.err &&
		       bytes_eq(&a->u.file_resp.content, &b->u.file_resp.content);
	case AP_CONNECT:
		return a->u.connect.stream == b->u.connect.stream &&
		       a->u.connect.proto == b->u.connect.proto &&
		       addr_eq(&a->u.connect.dst, &b->u.connect.dst) &&
		       a->u.connect.window == b->u.connect.window;
	case AP_CONNECT_RESP:
		return a->u.connect_resp.err == b->u.connect_resp.err &&
		       a->u.connect_resp.stream == b->u.connect_resp.stream &&
		       addr_eq(&a->u.connect_resp.local, &b->u.connect_resp.local);
	case AP_DATA:
		return bytes_eq(&a->u.data.data, &b->u.data.data);
	case AP_CREDIT:
		return a->u.credit.bytes == b->u.credit.bytes;
	case AP_CLOSE:
		return a->u.close.how == b->u.close.how && a->u.close.err == b->u.close.err;
	case AP_FS_REQ:
		return a->u.fs_req.op == b->u.fs_req.op && a->u.fs_req.flags == b->u.fs_req.flags &&
		       a->u.fs_req.mode == b->u.fs_req.mode &&
		       a->u.fs_req.handle == b->u.fs_req.handle &&
		       a->u.fs_req.offset == b->u.fs_req.offset &&
		       a->u.fs_req.count == b->u.fs_req.count &&
		       stat_eq(&a->u.fs_req.st, &b->u.fs_req.st) &&
		       bytes_eq(&a->u.fs_req.path, &b->u.fs_req.path) &&
		       bytes_eq(&a->u.fs_req.path2, &b->u.fs_req.path2) &&
		       bytes_eq(&a->u.fs_req.data, &b->u.fs_req.data);
	case AP_FS_RESP:
		return a->u.fs_resp.op == b->u.fs_resp.op && a->u.fs_resp.err == b->u.fs_resp.err &&
		       a->u.fs_resp.handle == b->u.fs_resp.handle &&
		       a->u.fs_resp.cookie == b->u.fs_resp.cookie &&
		       a->u.fs_resp.eof == b->u.fs_resp.eof &&
		       a->u.fs_resp.count == b->u.fs_resp.count &&
		       stat_eq(&a->u.fs_resp.st, &b->u.fs_resp.st) &&
		       statfs_eq(&a->u.fs_resp.sfs, &b->u.fs_resp.sfs) &&
		       bytes_eq(&a->u.fs_resp.data, &b->u.fs_resp.data);
	case AP_PORT_SUB:
		if (a->u.port_sub.port != b->u.port_sub.port ||
		    a->u.port_sub.mode != b->u.port_sub.mode ||
		    a->u.port_sub.window != b->u.port_sub.window ||
		    a->u.port_sub.filter_op != b->u.port_sub.filter_op ||
		    a->u.port_sub.rule_count != b->u.port_sub.rule_count)
			return false;
		for (unsigned i = 0; i < AP_MAX_FILTER_RULES; i++)
			if (a->u.port_sub.rules[i].kind != b->u.port_sub.rules[i].kind ||
			    !bytes_eq(&a->u.port_sub.rules[i].pattern,
			              &b->u.port_sub.rules[i].pattern))
				return false;
		return true;
	case AP_PORT_UNSUB:
		return a->u.port_unsub.port == b->u.port_unsub.port;
	case AP_PORT_RESP:
		return a->u.port_resp.err == b->u.port_resp.err;
	case AP_ACCEPT:
		return a->u.accept.port == b->u.accept.port &&
		       a->u.accept.mode == b->u.accept.mode &&
		       addr_eq(&a->u.accept.peer, &b->u.accept.peer) &&
		       addr_eq(&a->u.accept.local, &b->u.accept.local) &&
		       a->u.accept.window == b->u.accept.window;
	case AP_ENV_REQ:
	case AP_PING:
	case AP_PONG:
		return true;
	default:
		return false;
	}
}

/* Exercise what a consumer does with a decoded message. */
static void consume(const struct ap_msg *m)
{
	static char str[AP_MAX_STRING + 1];
	const struct ap_addr *addr = NULL;
	struct ap_bytes e;
	size_t off = 0;
	uint32_t n = 0;

	switch (m->type) {
	case AP_ENV_RESP:
		/* The decoder promised exactly count entries, each a legal
		 * string. */
		while (ap_env_next(&m->u.env_resp.entries, &off, &e) == 1) {
			ASSERT(e.len <= AP_MAX_STRING);
			ASSERT(ap_bytes_to_str(&e, str, sizeof(str)) != -ENAMETOOLONG);
			n++;
		}
		ASSERT(n == m->u.env_resp.count);
		ASSERT(off == m->u.env_resp.entries.len);
		break;
	case AP_FILE_REQ:
		ASSERT(m->u.file_req.path.len <= AP_MAX_PATH);
		ASSERT(ap_bytes_to_str(&m->u.file_req.path, str, sizeof(str)) != -ENAMETOOLONG);
		break;
	case AP_ERROR:
		ASSERT(ap_bytes_to_str(&m->u.error.message, str, sizeof(str)) != -ENAMETOOLONG);
		break;
	case AP_CONNECT:
		addr = &m->u.connect.dst;
		break;
	case AP_CONNECT_RESP:
		addr = &m->u.connect_resp.local;
		break;
	case AP_DATA:
		ASSERT(m->u.data.data.len <= AP_MAX_DATA);
		break;
	case AP_PORT_SUB:
		/* Each rule is a usable C string within its bound. */
		ASSERT(m->u.port_sub.rule_count <= AP_MAX_FILTER_RULES);
		for (unsigned i = 0; i < m->u.port_sub.rule_count; i++) {
			const struct ap_bytes *p = &m->u.port_sub.rules[i].pattern;
			ASSERT(p->len >= 1 && p->len <= AP_MAX_FILTER_PATTERN);
			ASSERT(ap_bytes_to_str(p, str, sizeof(str)) == 0);
		}
		break;
	case AP_ACCEPT:
		ASSERT(m->id & AP_STREAM_AGENT_BIT);
		addr = &m->u.accept.peer;
		break;
	case AP_FS_REQ:
		ASSERT(ap_fs_op_name(m->u.fs_req.op)[0] != '?');
		ASSERT(m->u.fs_req.path.len <= AP_MAX_PATH && m->u.fs_req.path2.len <= AP_MAX_PATH);
		ASSERT(m->u.fs_req.data.len <= AP_MAX_DATA && m->u.fs_req.count <= AP_MAX_DATA);
		break;
	case AP_FS_RESP: {
		/* A READDIR page holds exactly count names the client can use
		 * as one local path component. */
		struct ap_dirent d;
		ASSERT(ap_fs_op_name(m->u.fs_resp.op)[0] != '?');
		ASSERT(m->u.fs_resp.data.len <= AP_MAX_DATA);
		if (m->u.fs_resp.op != AP_FS_READDIR)
			break;
		while (ap_dirent_next(&m->u.fs_resp.data, &off, &d) == 1) {
			ASSERT(d.name.len >= 1 && d.name.len <= AP_FS_NAME_MAX);
			ASSERT(!memchr(d.name.ptr, '/', d.name.len));
			ASSERT(ap_bytes_to_str(&d.name, str, sizeof(str)) == 0);
			n++;
		}
		ASSERT(n == m->u.fs_resp.count);
		ASSERT(off == m->u.fs_resp.data.len);
		break;
	}
	case AP_HELLO:
	case AP_HELLO_OK:
	case AP_ENV_REQ:
	case AP_FILE_RESP:
	case AP_CREDIT:
	case AP_CLOSE:
	case AP_PING:
	case AP_PONG:
	case AP_PORT_UNSUB:
	case AP_PORT_RESP:
	default:
		break;
	}
	if (addr) {
		struct sockaddr_storage ss;
		struct ap_addr back;
		int len = ap_addr_to_sockaddr(addr, (struct sockaddr *)&ss, sizeof(ss));
		ASSERT(len > 0);
		ASSERT(ap_addr_from_sockaddr((struct sockaddr *)&ss, (size_t)len, &back) == 0);
		ASSERT(addr_eq(addr, &back));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		struct ap_msg m, m2;
		ssize_t n = ap_decode(data + off, size - off, &m);
		if (n <= 0) {
			ASSERT(n == 0 || n == -EBADMSG || n == -EMSGSIZE);
			break;
		}
		ASSERT((size_t)n >= AP_HEADER_SIZE && (size_t)n <= size - off);
		ASSERT(ap_type_name(m.type)[0] != '?');

		/* Canonical encoding: decode then encode is the identity. */
		ASSERT(ap_encoded_size(&m) == n);
		ssize_t n2 = ap_encode(&m, reenc, sizeof(reenc));
		ASSERT(n2 == n);
		ASSERT(memcmp(reenc, data + off, (size_t)n) == 0);
		/* One byte short of room never writes a partial frame. */
		ASSERT(ap_encode(&m, reenc, (size_t)n - 1) == -ENOBUFS);

		ASSERT(ap_decode(reenc, (size_t)n2, &m2) == n2);
		ASSERT(msg_eq(&m, &m2));
		consume(&m);
		off += (size_t)n;
	}
	return 0;
}
