/* agentproto: the wire format between the supervisor's session and
 * mirrord-trace-agent. Pure encode/decode, no I/O, no allocation: the
 * decoder is fed bytes from a hostile peer and is fuzzed.
 *
 * Frame = 12-byte header + payload, all integers big-endian:
 *   u32 payload_len   (<= AP_MAX_PAYLOAD)
 *   u8  type          (enum ap_type)
 *   u8  flags         (must be 0 in version 1)
 *   u16 reserved      (must be 0)
 *   u32 id            (request id for requests/responses, stream id for
 *                      stream messages, 0 otherwise)
 * Payload layouts are documented per type below. Strings and blobs are
 * u32 length + bytes (no NUL on the wire). Addresses are u8 family
 * (4 or 6) + u16 port + 16 address bytes (IPv4 in the first 4). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AP_MAGIC 0x4d545243u /* "MTRC" */
#define AP_VERSION 1
#define AP_HEADER_SIZE 12
/* Hard limits; the decoder rejects anything larger before using it. */
#define AP_MAX_PAYLOAD (1u << 20) /* 1 MiB: env dumps and small files */
#define AP_MAX_DATA (64u * 1024)  /* one DATA frame */
#define AP_MAX_PATH 4096
#define AP_MAX_ENV_COUNT 4096
#define AP_MAX_STRING 65536 /* one env entry, one message text */
#define AP_MAX_FILE (AP_MAX_PAYLOAD - 64)
/* Stream ids opened by the agent (incoming traffic, later) have this bit. */
#define AP_STREAM_AGENT_BIT 0x80000000u
/* Default per-stream receive window each side grants at open. */
#define AP_DEFAULT_WINDOW (1024u * 1024)
/* UDP streams carry one datagram per AP_DATA and use no credit: a receiver
 * that cannot keep up drops datagrams, as UDP does. */

enum ap_type {
	AP_HELLO = 1,        /* c->a  u32 magic, u16 version, u16 reserved, str client_name */
	AP_HELLO_OK = 2,     /* a->c  u16 version, u16 reserved, str agent_version, str mode */
	AP_ERROR = 3,        /* either: i32 errno, str message (fatal; peer closes) */
	AP_ENV_REQ = 4,      /* c->a  id=req; no payload */
	AP_ENV_RESP = 5,     /* a->c  id=req; i32 err, u32 count, count x str "K=V" */
	AP_FILE_REQ = 6,     /* c->a  id=req; str path (absolute, in the target's root) */
	AP_FILE_RESP = 7,    /* a->c  id=req; i32 err, blob content (<= AP_MAX_FILE) */
	AP_CONNECT = 8,      /* c->a  id=req; u32 stream, u8 proto, addr dst, u32 window */
	AP_CONNECT_RESP = 9, /* a->c id=req; i32 err, u32 stream, addr local (agent side) */
	AP_DATA = 10,        /* both  id=stream; raw bytes (<= AP_MAX_DATA); for UDP one datagram */
	AP_CREDIT = 11,      /* both  id=stream; u32 bytes the receiver consumed */
	AP_CLOSE = 12,       /* both  id=stream; u8 how (enum ap_close), i32 err */
	AP_PING = 13,        /* both  id=seq; no payload */
	AP_PONG = 14,        /* both  id=seq; no payload */
};

enum ap_proto { AP_PROTO_TCP = 1, AP_PROTO_UDP = 2 };

enum ap_close {
	AP_CLOSE_FIN = 0,   /* sender will send no more DATA (half-close) */
	AP_CLOSE_RESET = 1, /* abort the whole stream, both directions */
};

/* A network address as carried on the wire. */
struct ap_addr {
	uint8_t family; /* 4 or 6 */
	uint16_t port;  /* host order */
	uint8_t addr[16];
};

/* A length-delimited view into the decoded buffer. NOT NUL-terminated:
 * copy it out (ap_strdup or memcpy + NUL) before using it as a string. */
struct ap_bytes {
	const uint8_t *ptr;
	uint32_t len;
};

struct ap_msg {
	enum ap_type type;
	uint32_t id;
	union {
		struct {
			uint32_t magic;
			uint16_t version;
			struct ap_bytes client_name;
		} hello;
		struct {
			uint16_t version;
			struct ap_bytes agent_version;
			struct ap_bytes mode;
		} hello_ok;
		struct {
			int32_t err;
			struct ap_bytes message;
		} error;
		struct {
			int32_t err;
			uint32_t count;
			/* count entries, each u32 len + bytes; walk with
			 * ap_env_next(). Validated by the decoder. */
			struct ap_bytes entries;
		} env_resp;
		struct {
			struct ap_bytes path;
		} file_req;
		struct {
			int32_t err;
			struct ap_bytes content;
		} file_resp;
		struct {
			uint32_t stream;
			uint8_t proto;
			struct ap_addr dst;
			uint32_t window;
		} connect;
		struct {
			int32_t err;
			uint32_t stream;
			struct ap_addr local;
		} connect_resp;
		struct {
			struct ap_bytes data;
		} data;
		struct {
			uint32_t bytes;
		} credit;
		struct {
			uint8_t how;
			int32_t err;
		} close;
	} u;
};

/* Decode one frame from buf[0..len).
 * Returns the number of bytes consumed (> 0) and fills *ret_msg, whose
 * ap_bytes point into buf; 0 if buf holds only part of a frame (read more);
 * -EMSGSIZE if a length exceeds a limit, -EBADMSG for a malformed frame
 * (bad type, nonzero reserved bits, payload not matching its type,
 * trailing bytes). Never reads outside buf. */
ssize_t ap_decode(const uint8_t *buf, size_t len, struct ap_msg *ret_msg);

/* Encode msg into out[0..cap). Returns the frame length, or -ENOBUFS if it
 * does not fit, -EMSGSIZE if a field exceeds a protocol limit, -EINVAL for
 * a bad type or address family. For AP_ENV_RESP, u.env_resp.entries must
 * already hold the encoded entries (see ap_env_put()). */
ssize_t ap_encode(const struct ap_msg *msg, uint8_t *out, size_t cap);

/* Size of the frame ap_encode() would produce, or -errno. */
ssize_t ap_encoded_size(const struct ap_msg *msg);

/* Env entry list helpers. ap_env_put appends one "K=V" entry (u32 len +
 * bytes) to buf at *off; returns 0 or -ENOBUFS/-EMSGSIZE. ap_env_next
 * walks a list that ap_decode validated: *off starts at 0; returns 1 and
 * sets *ret_entry, or 0 at the end. */
int ap_env_put(uint8_t *buf, size_t cap, size_t *off, const char *entry, size_t len);
int ap_env_next(const struct ap_bytes *entries, size_t *off, struct ap_bytes *ret_entry);

/* Copy a wire string into dst (cap includes the NUL). Returns -ENAMETOOLONG
 * if it does not fit, -EINVAL if it contains a NUL byte. */
int ap_bytes_to_str(const struct ap_bytes *b, char *dst, size_t cap);

/* Convert between struct ap_addr and sockaddr_in / sockaddr_in6.
 * ap_addr_to_sockaddr returns the sockaddr length or -EINVAL. */
struct sockaddr;
int ap_addr_from_sockaddr(const struct sockaddr *sa, size_t len, struct ap_addr *ret);
int ap_addr_to_sockaddr(const struct ap_addr *a, struct sockaddr *sa, size_t cap);

/* Name of a message type for logs ("CONNECT"), "?" if unknown. */
const char *ap_type_name(int type);
