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
};

static bool type_known(uint32_t t)
{
	return t >= AP_HELLO && t <= AP_PONG;
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

/* Parse the payload of a frame whose header passed the checks. Structural
 * checks only; msg_check() applies the semantic ones afterwards. */
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
