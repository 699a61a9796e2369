/* HTTP/2 frames (RFC 9113 §4, §6): the 9-byte header, per-type checks,
 * padding and priority stripping, SETTINGS / WINDOW_UPDATE / RST_STREAM /
 * GOAWAY payloads, and the few frames the agent writes itself. Pure: no
 * I/O, no allocation; the agent's HTTP/2 router (agent/h2.c) and the
 * fuzz target use it.
 *
 * Functions that find a protocol error return the HTTP/2 error code (a
 * positive H2E_* value) and 0 when all is well: the caller turns it into
 * GOAWAY or RST_STREAM as RFC 9113 §5.4 says. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H2F_HDR_LEN 9
#define H2F_DEFAULT_MAX_FRAME 16384u
#define H2F_MAX_MAX_FRAME 16777215u
#define H2F_DEFAULT_WINDOW 65535u
#define H2F_MAX_WINDOW 2147483647u
#define H2F_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2F_PREFACE_LEN 24u

enum h2f_type {
	H2F_DATA = 0,
	H2F_HEADERS = 1,
	H2F_PRIORITY = 2,
	H2F_RST_STREAM = 3,
	H2F_SETTINGS = 4,
	H2F_PUSH_PROMISE = 5,
	H2F_PING = 6,
	H2F_GOAWAY = 7,
	H2F_WINDOW_UPDATE = 8,
	H2F_CONTINUATION = 9,
};

#define H2F_END_STREAM 0x1
#define H2F_ACK 0x1
#define H2F_END_HEADERS 0x4
#define H2F_PADDED 0x8
#define H2F_PRIO 0x20

enum h2f_err {
	H2E_NO_ERROR = 0,
	H2E_PROTOCOL = 1,
	H2E_INTERNAL = 2,
	H2E_FLOW_CONTROL = 3,
	H2E_STREAM_CLOSED = 5,
	H2E_FRAME_SIZE = 6,
	H2E_REFUSED_STREAM = 7,
	H2E_CANCEL = 8,
	H2E_COMPRESSION = 9,
	H2E_ENHANCE_YOUR_CALM = 11,
};

enum h2f_setting_id {
	H2S_HEADER_TABLE_SIZE = 1,
	H2S_ENABLE_PUSH = 2,
	H2S_MAX_CONCURRENT_STREAMS = 3,
	H2S_INITIAL_WINDOW_SIZE = 4,
	H2S_MAX_FRAME_SIZE = 5,
	H2S_MAX_HEADER_LIST_SIZE = 6,
};

struct h2f_hdr {
	uint32_t len; /* payload length (24 bits) */
	uint8_t type, flags;
	uint32_t sid; /* the reserved bit cleared */
};

/* Reads the header at p[0..9). */
void h2f_hdr_parse(const uint8_t *p, struct h2f_hdr *ret);
/* Writes a header to p[0..9). len must fit 24 bits. */
void h2f_hdr_write(uint8_t *p, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid);

/* The checks RFC 9113 §6 makes on a frame of a known type from its
 * header alone: stream id zero or not, fixed lengths, max_frame (the
 * SETTINGS_MAX_FRAME_SIZE the reader advertised). Unknown types pass
 * (they are ignored, §4.1). Returns 0 or a connection error code. */
unsigned h2f_check(const struct h2f_hdr *h, uint32_t max_frame);

/* The field block or data of a HEADERS or DATA payload p[0..h->len),
 * without padding and priority: *ret_off and *ret_len. Other types give
 * the whole payload. Returns 0 or H2E_PROTOCOL (padding too long). */
unsigned h2f_content(const struct h2f_hdr *h, const uint8_t *p, size_t *ret_off, size_t *ret_len);

/* The setting at p[*pos..) of a SETTINGS payload of len bytes (a multiple
 * of 6, h2f_check saw to that): *ret_id and *ret_value, *pos advanced.
 * Returns false at the end. */
bool h2f_setting_next(const uint8_t *p, size_t len, size_t *pos, uint16_t *ret_id,
                      uint32_t *ret_value);
/* The error a value of a known setting draws (§6.5.2), or 0. */
unsigned h2f_setting_check(uint16_t id, uint32_t value);

/* A WINDOW_UPDATE payload (4 bytes): the increment, 0 for the
 * PROTOCOL_ERROR an increment of 0 is (§6.9). */
uint32_t h2f_window_increment(const uint8_t *p);
/* The error code of a RST_STREAM payload (4 bytes). */
uint32_t h2f_u32(const uint8_t *p);
/* A GOAWAY payload (at least 8 bytes): last stream id and error code. */
void h2f_goaway_parse(const uint8_t *p, uint32_t *ret_last, uint32_t *ret_code);

/* Whole frames the agent writes; each returns the bytes written. */
#define H2F_RST_LEN 13
size_t h2f_put_rst(uint8_t *out, uint32_t sid, uint32_t code);
#define H2F_WINDOW_UPDATE_LEN 13
size_t h2f_put_window_update(uint8_t *out, uint32_t sid, uint32_t inc);
#define H2F_GOAWAY_LEN 17
size_t h2f_put_goaway(uint8_t *out, uint32_t last_sid, uint32_t code);
#define H2F_PING_LEN 17
size_t h2f_put_ping_ack(uint8_t *out, const uint8_t *opaque8);
/* A SETTINGS frame with n (id, value) pairs; out holds 9 + 6 * n. */
size_t h2f_put_settings(uint8_t *out, const uint16_t *ids, const uint32_t *values, size_t n);
#define H2F_SETTINGS_ACK_LEN 9
size_t h2f_put_settings_ack(uint8_t *out);
