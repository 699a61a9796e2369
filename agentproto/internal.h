/* Shared by agentproto's own files only (agentproto.c: tables, checks,
 * decoder; encode.c: encoder; lists.c: entry lists and addresses). */
#pragma once

#include <stdint.h>

#include "agentproto/agentproto.h"

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
_Static_assert(1 + AP_FS_STAT_SIZE + AP_LEN_SIZE + AP_MAX_PATH <= AP_FS_REQ_MAX, "OPEN_IF fits");
_Static_assert(1 + 4 + AP_LEN_SIZE + AP_MAX_DATA <= AP_FS_RESP_MAX, "READ fits");

/* ---- big-endian helpers ------------------------------------------------ */

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
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
	RQ_STAT = 1 << 8, /* on the wire after count, before path */
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
	uint16_t req;       /* RQ_* fields present */
	uint8_t resp;       /* RS_* fields present */
	uint32_t flags_ok;  /* request flags the op accepts */
	uint32_t mode_max;  /* largest request mode */
	uint32_t resp_data; /* longest response data */
};

/* statfs is eleven u64 in struct order. */
#define STATFS_FIELDS(f)                                                                       \
	{                                                                                      \
		&(f)->type, &(f)->bsize, &(f)->blocks, &(f)->bfree, &(f)->bavail, &(f)->files, \
		        &(f)->ffree, &(f)->fsid, &(f)->namelen, &(f)->frsize, &(f)->flags      \
	}

/* The op's entry, or NULL: op comes from the peer. */
const struct fs_op_desc *ap_fs_op_desc(uint8_t op);
/* The semantic rules every message obeys, encoded or decoded: 0 or
 * -errno. */
int ap_msg_check(const struct ap_msg *m);
/* Payload size of a message that passed ap_msg_check(). */
uint64_t ap_payload_size(const struct ap_msg *m);
