/* HTTP/1.x messages as the agent's filtered steal and filtered mirror see
 * them: the head (request or status line and fields, as views into the
 * caller's buffer), the body's framing (RFC 9112 §6.3: Content-Length,
 * chunked, until EOF), and the HTTP filter's match on a request head. No
 * I/O. Internal to agent/. */
#pragma once

#include "agent/incoming.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_MAX_HEAD (64u * 1024) /* a head, through its blank line */
#define HTTP_MAX_HEADERS 128

/* A parsed head: views into the buffer it was parsed from. */
struct http1_head {
	const char *method, *target; /* requests */
	size_t method_len, target_len;
	unsigned status; /* responses */
	unsigned nh;
	struct {
		const char *name, *value;
		size_t name_len, value_len;
	} h[HTTP_MAX_HEADERS];
};

/* Body framing of one message, fed its bytes as they come. */
enum http1_frame_kind { HTTP1_FR_NONE, HTTP1_FR_LENGTH, HTTP1_FR_CHUNKED, HTTP1_FR_EOF };
enum http1_chunk_state {
	HTTP1_CH_SIZE,
	HTTP1_CH_EXT,
	HTTP1_CH_SIZE_LF,
	HTTP1_CH_DATA,
	HTTP1_CH_DATA_CR,
	HTTP1_CH_DATA_LF,
	HTTP1_CH_TRAILER
};

struct http1_framer {
	enum http1_frame_kind kind;
	uint64_t left; /* LENGTH: bytes left; CHUNKED: of this chunk */
	enum http1_chunk_state cs;
	unsigned line;  /* CH_TRAILER: bytes on the current trailer line */
	bool size_seen; /* CH_SIZE: at least one hex digit */
	bool last;      /* the 0-size chunk was seen */
	bool done;
};

/* How many of p[0..n) are CR and LF bytes: the empty lines a server
 * ignores before a request line (RFC 9112 §2.2), to be dropped. */
size_t http1_empty_lines(const uint8_t *p, size_t n);
/* Length of the head (through the blank line) in p[0..n), 0 if it is not
 * complete yet. Its lines end with CRLF or a bare LF; it starts with
 * something else than an empty line (http1_empty_lines()). *scanned is
 * the caller's memory of how far p was searched (0 at first): a search
 * goes on from there, so a head that comes a byte at a time costs its
 * length, not its square. The caller sets it back to 0 whenever bytes
 * leave the front of p. */
size_t http1_head_len(const uint8_t *p, size_t n, size_t *scanned);
/* Parse a head of len bytes (http1_head_len()). request: "M T V", else
 * "V S R". -EBADMSG if malformed. */
int http1_parse_head(const char *p, size_t len, bool request, struct http1_head *hd);
/* Whether field k is named name (caseless). */
bool http1_hdr_is(const struct http1_head *hd, unsigned k, const char *name);
/* The body's framing from the head (RFC 9112 §6.3); -EBADMSG for a
 * transfer coding other than chunked last, or a bad Content-Length. */
int http1_body_framing(const struct http1_head *hd, bool request, struct http1_framer *fr);
/* How many of p[0..n) belong to the body; sets fr->done at its end.
 * -EBADMSG for a broken chunked encoding. */
ssize_t http1_framer_feed(struct http1_framer *fr, const uint8_t *p, size_t n);
/* The filter on a parsed request head. */
bool http1_filter_match(const struct http_filter *f, const struct http1_head *hd);
