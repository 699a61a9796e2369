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
/* Stream ids opened by the agent (incoming traffic: AP_ACCEPT) have this bit. */
#define AP_STREAM_AGENT_BIT 0x80000000u
/* Default per-stream receive window each side grants at open. */
#define AP_DEFAULT_WINDOW (1024u * 1024)
/* A receiver returns credit in batches: once it has consumed at least this
 * many bytes of a stream, not per frame. A CREDIT per DATA doubled the
 * frames (and, at low load, the link's sends and wake-ups) of
 * request/response traffic. Both sides grant AP_DEFAULT_WINDOW, so a
 * sender always keeps at least the other three quarters in hand, and a
 * sender that has used up its window is owed the whole of it (more than
 * one batch) once the receiver catches up: no stall. */
#define AP_CREDIT_BATCH (AP_DEFAULT_WINDOW / 4)
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
	AP_FS_REQ = 15,      /* c->a  id=req; u8 op (enum ap_fs_op), then the op's fields */
	AP_FS_RESP = 16,     /* a->c  id=req; u8 op, i32 err, then (err == 0 only) fields */
	AP_PORT_SUB = 17,    /* c->a  id=req; u16 port, u8 mode, u32 window, filter */
	AP_PORT_UNSUB = 18,  /* c->a  id=req; u16 port */
	AP_PORT_RESP = 19,   /* a->c  id=req; i32 err */
	AP_ACCEPT = 20,      /* a->c  id=stream; u16 port, u8 mode, addr peer, addr local,
	                      *       u32 window */
};
#define AP_TYPE_LAST AP_ACCEPT

enum ap_proto { AP_PROTO_TCP = 1, AP_PROTO_UDP = 2 };

enum ap_close {
	AP_CLOSE_FIN = 0,   /* sender will send no more DATA (half-close) */
	AP_CLOSE_RESET = 1, /* abort the whole stream, both directions */
};

/* Incoming traffic (AP_PORT_SUB / AP_PORT_UNSUB / AP_PORT_RESP / AP_ACCEPT).
 *
 * AP_PORT_SUB subscribes one TCP port of the target (1..65535) in a mode:
 *   MIRROR  the agent copies what peers send to the port (the pod still
 *           answers them);
 *   STEAL   the agent takes the connections over (redirect), the pod's app
 *           no longer sees them; with a filter only matching HTTP/1.x
 *           requests are taken and the rest pass through to the pod's app.
 * window is the receive window the client grants each stream the
 * subscription opens (0 means AP_DEFAULT_WINDOW). The filter follows:
 *   u8 op (enum ap_filter_op), u8 count, count x (u8 kind, str pattern)
 * op NONE has count 0, ALL_OF / ANY_OF have 1..AP_MAX_FILTER_RULES rules;
 * a pattern is 1..AP_MAX_FILTER_PATTERN bytes without NUL. HEADER and PATH
 * are PCRE2 patterns matched case-insensitively (HEADER against each
 * header as "name: value" with a lowercase name, PATH against the path,
 * then path?query), METHOD is compared case-insensitively. A filter with
 * MIRROR is refused with EOPNOTSUPP by this agent.
 * AP_PORT_RESP answers both requests: 0, or the errno (EEXIST: the port
 * is already subscribed by this client; ENOENT: unsubscribing a port that
 * is not; EINVAL: a bad pattern; EOPNOTSUPP: steal is not possible here).
 *
 * Every connection a subscription takes (steal) or sees (mirror) becomes
 * a stream opened by the agent: AP_ACCEPT with a fresh id that has
 * AP_STREAM_AGENT_BIT, the subscribed port, the mode, the real remote
 * peer and the local (pod) address it connected to, and the window the
 * agent grants the client. Then AP_DATA / AP_CREDIT / AP_CLOSE as for
 * AP_CONNECT streams. A MIRROR stream is one way: the agent discards the
 * client's DATA (credited at once, so a relay may forward replies
 * blindly); its AP_CLOSE FIN marks the peer's FIN, RESET a lost copy
 * (reset, a gap the capture could not fill, or the client too slow). A
 * filtered STEAL stream carries whole HTTP requests in order and expects
 * each response back; it may end after any response. */
enum ap_sub_mode { AP_SUB_MIRROR = 1, AP_SUB_STEAL = 2 };
enum ap_filter_op { AP_FILTER_NONE = 0, AP_FILTER_ALL_OF = 1, AP_FILTER_ANY_OF = 2 };
enum ap_filter_kind { AP_FILTER_HEADER = 1, AP_FILTER_PATH = 2, AP_FILTER_METHOD = 3 };
#define AP_MAX_FILTER_RULES 16
#define AP_MAX_FILTER_PATTERN 1024

/* Remote file access (AP_FS_REQ / AP_FS_RESP). One request type with an
 * operation code keeps the dispatch of both peers to one case each. The
 * op's fields follow the op byte in this fixed order, each present only
 * if the op uses it (the table in agentproto.c):
 *   u32 flags, u32 mode, u32 handle, u64 offset, u32 count,
 *   stat, str path, str path2, blob data
 *
 *   op            request fields               response fields (err == 0)
 *   ENABLE_WRITE  -                            -
 *   STAT          flags (NOFOLLOW), path       stat
 *   READLINK      path                         data = target (<= AP_MAX_PATH)
 *   ACCESS        mode (AP_FS_[RWX]_OK), path  -
 *   STATFS        path                         statfs
 *   OPEN          flags (AP_FS_O_*), mode,     handle, stat (of the opened file)
 *                 path
 *   READ          handle, offset, count        data (<= count; 0 bytes = EOF)
 *                 (1..AP_MAX_DATA)
 *   WRITE         handle, offset, data         count (bytes written)
 *   FSYNC         handle                       stat (of the file after the sync)
 *   CLOSE         handle                       -
 *   READDIR       handle, offset (cookie:      cookie (next), eof, count,
 *                 0 = start)                   data = count dirents
 *   MKDIR         mode, path                   -
 *   UNLINK        path                         -
 *   RMDIR         path                         -
 *   RENAME        flags (NOREPLACE), path      -
 *                 (from), path2 (to)
 *   TRUNCATE      offset (new length), path    -
 *   OPEN_IF       stat (expected version),     handle, stat (after the
 *                 path                         truncation)
 *
 * OPEN_IF is the write-back's open: it opens the existing regular file at
 * path for writing and truncates it, but only if the file is still the
 * version the client names: the same dev, ino, size, mtime and ctime
 * (the request stat's other fields must be zero). Otherwise nothing is
 * changed and err is ESTALE (another file, or the same one written or
 * touched since), or ENOENT (no file there any more). The client learns
 * the version from OPEN's stat and, after its own writes, from FSYNC's.
 *
 * Response fields, in this order when present: u32 handle, u64 cookie,
 * u8 eof, u32 count, stat, statfs, blob data. A response with err != 0
 * carries no fields: err is the errno the agent's syscall returned, to be
 * passed on verbatim (ENOENT, ENOTDIR, ELOOP, EISDIR, EACCES, ...).
 * stat = u64 dev, u64 ino, u32 mode, u32 uid, u32 gid, u64 nlink,
 *        u64 rdev, u64 size, u64 blksize, u64 blocks, then atime, mtime,
 *        ctime, each i64 sec + u32 nsec (< 1e9).
 * statfs = u64 type, bsize, blocks, bfree, bavail, files, ffree, fsid,
 *        namelen, frsize, flags.
 * dirent = u64 ino, u8 type (DT_*), str name (1..AP_FS_NAME_MAX bytes, no
 *        '/' and no NUL; "." and ".." are listed as the kernel lists them).
 * Paths are absolute, resolved inside the target's root. Handles are
 * chosen by the agent (never 0) and live until CLOSE or the end of the
 * session. Write ops (OPEN for writing, WRITE, FSYNC of a writable handle,
 * MKDIR, UNLINK, RMDIR, RENAME, TRUNCATE) fail with EROFS until the
 * session sent ENABLE_WRITE, and so does OPEN_IF. */
enum ap_fs_op {
	AP_FS_ENABLE_WRITE = 1,
	AP_FS_STAT = 2,
	AP_FS_READLINK = 3,
	AP_FS_ACCESS = 4,
	AP_FS_STATFS = 5,
	AP_FS_OPEN = 6,
	AP_FS_READ = 7,
	AP_FS_WRITE = 8,
	AP_FS_FSYNC = 9,
	AP_FS_CLOSE = 10,
	AP_FS_READDIR = 11,
	AP_FS_MKDIR = 12,
	AP_FS_UNLINK = 13,
	AP_FS_RMDIR = 14,
	AP_FS_RENAME = 15,
	AP_FS_TRUNCATE = 16,
	AP_FS_OPEN_IF = 17,
};
#define AP_FS_OP_LAST AP_FS_OPEN_IF

/* STAT flags */
#define AP_FS_NOFOLLOW 0x1u /* lstat: do not follow a final symlink */
/* ACCESS mode bits (the values of R_OK, W_OK, X_OK; 0 is F_OK) */
#define AP_FS_R_OK 0x4u
#define AP_FS_W_OK 0x2u
#define AP_FS_X_OK 0x1u
/* OPEN flags. Without AP_FS_O_WRITE the handle is read-only. DIRECTORY
 * opens a directory for READDIR and excludes the write flags; CREAT,
 * TRUNC and EXCL need WRITE, and EXCL needs CREAT. */
#define AP_FS_O_WRITE 0x1u
#define AP_FS_O_CREAT 0x2u
#define AP_FS_O_TRUNC 0x4u
#define AP_FS_O_EXCL 0x8u
#define AP_FS_O_DIRECTORY 0x10u
#define AP_FS_O_ALL 0x1fu
/* RENAME flags */
#define AP_FS_RENAME_NOREPLACE 0x1u
/* Bounds of the file protocol. */
#define AP_FS_NAME_MAX 255                     /* one directory entry name */
#define AP_FS_DIR_MAX_BYTES AP_MAX_DATA        /* encoded dirents per READDIR page */
#define AP_FS_DIR_MAX_ENTRIES 1024             /* dirents per READDIR page */
#define AP_FS_MAX_OFFSET ((uint64_t)INT64_MAX) /* offsets and lengths are off_t */
#define AP_FS_MODE_MAX 07777u                  /* permission bits of OPEN/MKDIR */

struct ap_fs_time {
	int64_t sec;
	uint32_t nsec;
};

struct ap_fs_stat {
	uint64_t dev, ino;
	uint32_t mode, uid, gid;
	uint64_t nlink, rdev, size, blksize, blocks;
	struct ap_fs_time atime, mtime, ctime;
};

struct ap_fs_statfs {
	uint64_t type, bsize, blocks, bfree, bavail, files, ffree, fsid, namelen, frsize, flags;
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

/* One rule of an HTTP filter (AP_PORT_SUB). */
struct ap_filter_rule {
	uint8_t kind; /* enum ap_filter_kind */
	struct ap_bytes pattern;
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
		/* Fields the op does not use are zero (see ap_fs_op). */
		struct {
			uint8_t op;
			uint32_t flags;
			uint32_t mode;
			uint32_t handle;
			uint64_t offset; /* READDIR: cookie; TRUNCATE: length */
			uint32_t count;
			struct ap_fs_stat st; /* OPEN_IF: the expected version */
			struct ap_bytes path, path2, data;
		} fs_req;
		struct {
			uint8_t op;
			int32_t err;
			uint32_t handle;
			uint64_t cookie;
			uint8_t eof;
			uint32_t count;
			struct ap_fs_stat st;
			struct ap_fs_statfs sfs;
			/* READDIR: count dirents, validated by the decoder;
			 * walk with ap_dirent_next(). */
			struct ap_bytes data;
		} fs_resp;
		struct {
			uint16_t port;
			uint8_t mode; /* enum ap_sub_mode */
			uint32_t window;
			uint8_t filter_op; /* enum ap_filter_op */
			uint8_t rule_count;
			struct ap_filter_rule rules[AP_MAX_FILTER_RULES];
		} port_sub;
		struct {
			uint16_t port;
		} port_unsub;
		struct {
			int32_t err;
		} port_resp;
		struct {
			uint16_t port;
			uint8_t mode;
			struct ap_addr peer, local;
			uint32_t window;
		} accept;
	} u;
};

/* Decode one frame from buf[0..len).
 * Returns the number of bytes consumed (> 0) and fills *ret_msg, whose
 * ap_bytes point into buf; 0 if buf holds only part of a frame (read more);
 * -EMSGSIZE if a length exceeds a limit, -EBADMSG for a malformed frame
 * (bad type, nonzero reserved bits, payload not matching its type,
 * trailing bytes). Never reads outside buf. */
ssize_t ap_decode(const uint8_t *buf, size_t len, struct ap_msg *ret_msg);

/* DATA frames whose payload does not pass through a buffer (spliced, or
 * read in place after its header). ap_data_header_put writes the header of
 * a DATA frame of len bytes (<= AP_MAX_DATA) for stream id; -EMSGSIZE if
 * len is too large. ap_data_header_get returns 1 and the stream id and
 * payload length if buf starts with a whole DATA header that ap_decode()
 * would accept as such, 0 otherwise (another type, a partial header, or
 * anything malformed: ap_decode() then has the last word). */
int ap_data_header_put(uint8_t out[AP_HEADER_SIZE], uint32_t id, uint32_t len);
int ap_data_header_get(const uint8_t *buf, size_t len, uint32_t *ret_id, uint32_t *ret_len);

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

/* One directory entry of a READDIR response. */
struct ap_dirent {
	uint64_t ino;
	uint8_t type;
	struct ap_bytes name;
};

/* Dirent list helpers, as for env entries. ap_dirent_put returns 0,
 * -ENOBUFS (no room in buf), or -EINVAL for a name ap_decode would reject
 * (empty, too long, containing '/' or NUL). ap_dirent_next walks a list
 * that ap_decode validated: returns 1 and fills *ret, or 0 at the end. */
int ap_dirent_put(uint8_t *buf, size_t cap, size_t *off, uint64_t ino, uint8_t type,
                  const char *name, size_t len);
int ap_dirent_next(const struct ap_bytes *list, size_t *off, struct ap_dirent *ret);

/* Name of a file operation for logs ("STAT"), "?" if unknown. */
const char *ap_fs_op_name(int op);

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
