/* RFC 6455 WebSocket framing, pure (no I/O, no clock, no randomness): a
 * frame encoder with client masking and an incremental decoder that
 * reassembles fragmented messages, lets control frames interleave, and
 * bounds every size a peer controls. The port-forward client
 * (portforward.h) drives it over a libcurl CONNECT_ONLY connection; the
 * fuzz target tests/fuzz/fuzz_ws.c drives it with garbage.
 *
 * No extension is ever negotiated, so any RSV bit is a protocol error. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

/* Close status codes used here (RFC 6455 §7.4.1). */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_NO_STATUS 1005 /* reported for an empty close, never sent */
#define WS_CLOSE_BAD_DATA 1007  /* text that is not UTF-8 */
#define WS_CLOSE_TOO_BIG 1009

/* 2 bytes + 8 of extended length + 4 of mask. */
#define WS_HEADER_MAX 14
/* Control frames carry at most 125 bytes (§5.5). */
#define WS_CONTROL_MAX 125

/* Frame header for a payload of len bytes into hdr; returns its length.
 * mask NULL = unmasked (server to client); a client must pass 4
 * unpredictable bytes per frame (§5.3) and then mask the payload with
 * ws_mask(). */
size_t ws_frame_header(uint8_t hdr[WS_HEADER_MAX], enum ws_opcode op, bool fin, uint64_t len,
                       const uint8_t mask[4]);

/* XOR buf with mask, buf[0] being byte `offset` of the payload, so a
 * payload can be masked (or unmasked) in pieces. */
void ws_mask(uint8_t *buf, size_t len, const uint8_t mask[4], uint64_t offset);

/* A whole frame (header + masked copy of payload) into dst. -ENOBUFS if
 * cap is too small, -EINVAL for a control frame over 125 bytes or not fin. */
int ws_encode(uint8_t *dst, size_t cap, enum ws_opcode op, bool fin, const void *payload,
              size_t len, const uint8_t mask[4], size_t *ret_len);

/* A close frame payload: 2-byte code + reason (truncated to fit 125). */
size_t ws_close_payload(uint8_t out[WS_CONTROL_MAX], uint16_t code, const char *reason);

/* Whether buf is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool ws_utf8_valid(const uint8_t *buf, size_t len);

enum ws_event_type {
	WS_EV_MESSAGE, /* a complete text or binary message */
	WS_EV_PING,    /* answer with a pong carrying the same data */
	WS_EV_PONG,
	WS_EV_CLOSE, /* close_code (WS_CLOSE_NO_STATUS if none) and reason in data */
};

struct ws_event {
	enum ws_event_type type;
	enum ws_opcode opcode; /* WS_OP_TEXT / WS_OP_BINARY for messages */
	const uint8_t *data;   /* borrowed from the decoder until the next feed */
	size_t len;
	uint16_t close_code;
};

enum ws_role {
	WS_ROLE_CLIENT, /* decodes server frames: a masked frame is an error */
	WS_ROLE_SERVER, /* decodes client frames: an unmasked frame is an error */
};

struct ws_decoder {
	enum ws_role role;
	size_t max_message; /* reassembled message limit; over it: 1009 */
	/* Header being parsed. */
	uint8_t hdr[WS_HEADER_MAX];
	size_t hdr_len;
	/* Frame being read. */
	uint8_t op, mask[4];
	bool fin, masked, in_frame;
	uint64_t remain, frame_off;
	/* Message being reassembled (data frames), and the control frame. */
	uint8_t *msg;
	size_t msg_len, msg_cap;
	uint8_t msg_op; /* 0 = no message in progress */
	uint8_t ctl[WS_CONTROL_MAX];
	size_t ctl_len;
	bool msg_done;    /* the last event was a message: reset on next feed */
	bool closed;      /* a close frame was decoded; nothing may follow */
	uint16_t failure; /* the close code to send after a -errno result */
};

/* Default limit for max_message: far above the 32 KiB chunks the kubelet
 * sends, small enough that a hostile peer cannot balloon memory. */
#define WS_MESSAGE_MAX_DEFAULT (1u << 20)

void ws_decoder_init(struct ws_decoder *d, enum ws_role role, size_t max_message);
void ws_decoder_free(struct ws_decoder *d);

/* Decode from buf[0..len). Sets *consumed to the bytes used and returns 1
 * with *ev filled when an event is ready (call again with the rest), 0
 * when all len bytes were used without completing one, or -errno:
 * -EPROTO (d->failure = 1002 or 1007), -EMSGSIZE (1009), -ENOMEM. After an
 * error the decoder is unusable; the caller sends a close with d->failure
 * and drops the connection. Bytes after a close frame are -EPROTO. */
int ws_decoder_feed(struct ws_decoder *d, const void *buf, size_t len, size_t *consumed,
                    struct ws_event *ev);
