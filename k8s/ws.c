/* RFC 6455 framing (ws.h). Every length is checked against the configured
 * limits before a byte of payload is stored, so a peer announcing a 2^63
 * byte frame costs nothing but a close 1009. */
#include "k8s/ws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t ws_frame_header(uint8_t hdr[WS_HEADER_MAX], enum ws_opcode op, bool fin, uint64_t len,
                       const uint8_t mask[4])
{
	size_t n = 0;
	hdr[n++] = (uint8_t)((fin ? 0x80 : 0) | (op & 0x0f));
	uint8_t m = mask ? 0x80 : 0;
	/* Lengths use the shortest form, as §5.2 requires. */
	if (len <= 125) {
		hdr[n++] = (uint8_t)(m | len);
	} else if (len <= 0xffff) {
		hdr[n++] = m | 126;
		hdr[n++] = (uint8_t)(len >> 8);
		hdr[n++] = (uint8_t)len;
	} else {
		hdr[n++] = m | 127;
		for (int i = 7; i >= 0; i--)
			hdr[n++] = (uint8_t)(len >> (8 * i));
	}
	if (mask) {
		memcpy(hdr + n, mask, 4);
		n += 4;
	}
	return n;
}

void ws_mask(uint8_t *buf, size_t len, const uint8_t mask[4], uint64_t offset)
{
	size_t i = 0;
	/* Byte-wise up to an offset that is a multiple of 4, then 8 bytes at
	 * a time with the mask doubled: port-forward masks every byte the
	 * program sends, so this loop is the client's hot path. */
	for (; i < len && (offset + i) % 4; i++)
		buf[i] ^= mask[(offset + i) % 4];
	uint8_t m8[8];
	for (int k = 0; k < 8; k++)
		m8[k] = mask[k % 4];
	uint64_t w, mw;
	memcpy(&mw, m8, 8);
	for (; i + 8 <= len; i += 8) {
		memcpy(&w, buf + i, 8);
		w ^= mw;
		memcpy(buf + i, &w, 8);
	}
	for (; i < len; i++)
		buf[i] ^= mask[(offset + i) % 4];
}

int ws_encode(uint8_t *dst, size_t cap, enum ws_opcode op, bool fin, const void *payload,
              size_t len, const uint8_t mask[4], size_t *ret_len)
{
	if ((op & 0x8) && (len > WS_CONTROL_MAX || !fin))
		return -EINVAL;
	uint8_t hdr[WS_HEADER_MAX];
	size_t hl = ws_frame_header(hdr, op, fin, len, mask);
	if (cap < hl || cap - hl < len)
		return -ENOBUFS;
	memcpy(dst, hdr, hl);
	if (len)
		memcpy(dst + hl, payload, len);
	if (mask)
		ws_mask(dst + hl, len, mask, 0);
	*ret_len = hl + len;
	return 0;
}

size_t ws_close_payload(uint8_t out[WS_CONTROL_MAX], uint16_t code, const char *reason)
{
	out[0] = (uint8_t)(code >> 8);
	out[1] = (uint8_t)code;
	size_t n = reason ? strlen(reason) : 0;
	if (n > WS_CONTROL_MAX - 2)
		n = WS_CONTROL_MAX - 2;
	/* Never cut a UTF-8 sequence in half: the peer would close 1007. */
	while (n && reason && ((uint8_t)reason[n] & 0xc0) == 0x80)
		n--;
	if (n)
		memcpy(out + 2, reason, n);
	return 2 + n;
}

bool ws_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		uint32_t cp, min;
		if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

void ws_decoder_init(struct ws_decoder *d, enum ws_role role, size_t max_message)
{
	memset(d, 0, sizeof(*d));
	d->role = role;
	d->max_message = max_message ? max_message : WS_MESSAGE_MAX_DEFAULT;
}

void ws_decoder_free(struct ws_decoder *d)
{
	if (!d)
		return;
	free(d->msg);
	d->msg = NULL;
	d->msg_cap = d->msg_len = 0;
}

static int fail(struct ws_decoder *d, int r, uint16_t code)
{
	d->failure = code;
	return r;
}

/* Close codes a peer may send (§7.4.1, plus the IANA-registered 1012-1014
 * and the private 3000-4999 range). 1005/1006/1015 must never be on the
 * wire. */
static bool close_code_valid(uint16_t c)
{
	return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

/* The header in d->hdr is complete: validate it and set up the frame. */
static int start_frame(struct ws_decoder *d)
{
	const uint8_t *h = d->hdr;
	uint8_t op = h[0] & 0x0f, len7 = h[1] & 0x7f;
	d->fin = h[0] & 0x80;
	d->masked = h[1] & 0x80;
	if (h[0] & 0x70)
		return fail(d, -EPROTO, WS_CLOSE_PROTOCOL); /* RSV without extension */
	bool control = op & 0x8;
	if (op != WS_OP_CONT && op != WS_OP_TEXT && op != WS_OP_BINARY && op != WS_OP_CLOSE &&
	    op != WS_OP_PING && op != WS_OP_PONG)
		return fail(d, -EPROTO, WS_CLOSE_PROTOCOL);
	if (d->masked != (d->role == WS_ROLE_SERVER))
		return fail(d, -EPROTO, WS_CLOSE_PROTOCOL); /* §5.1: masking by direction */
	uint64_t len = len7;
	size_t p = 2;
	if (len7 == 126) {
		len = (uint64_t)h[2] << 8 | h[3];
		p = 4;
	} else if (len7 == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | h[2 + i];
		p = 10;
		if (len >> 63)
			return fail(d, -EPROTO, WS_CLOSE_PROTOCOL); /* MSB must be 0 */
	}
	/* Non-minimal length encodings are accepted: RFC 6455 says MUST for
	 * the sender, and rejecting them buys no safety. */
	if (d->masked)
		memcpy(d->mask, h + p, 4);
	if (control) {
		if (!d->fin || len > WS_CONTROL_MAX)
			return fail(d, -EPROTO, WS_CLOSE_PROTOCOL); /* §5.5 */
		d->ctl_len = 0;
	} else {
		/* A continuation needs a message in progress; a new one needs none. */
		if ((op == WS_OP_CONT) != (d->msg_op != 0))
			return fail(d, -EPROTO, WS_CLOSE_PROTOCOL);
		if (len > d->max_message - d->msg_len)
			return fail(d, -EMSGSIZE, WS_CLOSE_TOO_BIG);
		size_t need = d->msg_len + (size_t)len;
		if (need > d->msg_cap) {
			size_t cap = d->msg_cap ? d->msg_cap : 4096;
			while (cap < need)
				cap *= 2;
			if (cap > d->max_message)
				cap = d->max_message;
			uint8_t *nm = realloc(d->msg, cap);
			if (!nm)
				return fail(d, -ENOMEM, WS_CLOSE_TOO_BIG);
			d->msg = nm;
			d->msg_cap = cap;
		}
		if (op != WS_OP_CONT)
			d->msg_op = op;
	}
	d->op = op;
	d->remain = len;
	d->frame_off = 0;
	d->in_frame = true;
	return 0;
}

/* The current frame's payload is complete. Returns 1 with an event, 0 for
 * a non-final data fragment, or -errno. */
static int end_frame(struct ws_decoder *d, struct ws_event *ev)
{
	d->in_frame = false;
	memset(ev, 0, sizeof(*ev));
	switch ((enum ws_opcode)d->op) {
	case WS_OP_PING:
	case WS_OP_PONG:
		ev->type = d->op == WS_OP_PING ? WS_EV_PING : WS_EV_PONG;
		ev->data = d->ctl;
		ev->len = d->ctl_len;
		return 1;
	case WS_OP_CLOSE:
		ev->type = WS_EV_CLOSE;
		ev->close_code = WS_CLOSE_NO_STATUS;
		if (d->ctl_len == 1)
			return fail(d, -EPROTO, WS_CLOSE_PROTOCOL);
		if (d->ctl_len >= 2) {
			ev->close_code = (uint16_t)(d->ctl[0] << 8 | d->ctl[1]);
			if (!close_code_valid(ev->close_code))
				return fail(d, -EPROTO, WS_CLOSE_PROTOCOL);
			if (!ws_utf8_valid(d->ctl + 2, d->ctl_len - 2))
				return fail(d, -EPROTO, WS_CLOSE_BAD_DATA);
			ev->data = d->ctl + 2;
			ev->len = d->ctl_len - 2;
		}
		d->closed = true;
		return 1;
	case WS_OP_CONT:
	case WS_OP_TEXT:
	case WS_OP_BINARY:
		if (!d->fin)
			return 0;
		if (d->msg_op == WS_OP_TEXT && !ws_utf8_valid(d->msg, d->msg_len))
			return fail(d, -EPROTO, WS_CLOSE_BAD_DATA);
		ev->type = WS_EV_MESSAGE;
		ev->opcode = (enum ws_opcode)d->msg_op;
		ev->data = d->msg;
		ev->len = d->msg_len;
		d->msg_done = true;
		return 1;
	}
	return fail(d, -EPROTO, WS_CLOSE_PROTOCOL);
}

/* Header bytes needed so far: 2, then the length and mask they announce. */
static size_t header_need(const struct ws_decoder *d)
{
	if (d->hdr_len < 2)
		return 2;
	uint8_t len7 = d->hdr[1] & 0x7f;
	size_t n = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
	return n + ((d->hdr[1] & 0x80) ? 4 : 0);
}

int ws_decoder_feed(struct ws_decoder *d, const void *buf, size_t len, size_t *consumed,
                    struct ws_event *ev)
{
	const uint8_t *b = buf;
	size_t pos = 0;
	*consumed = 0;
	if (d->failure)
		return -EPROTO;
	if (d->msg_done) {
		/* The previous event borrowed msg; the caller is done with it. */
		d->msg_done = false;
		d->msg_len = 0;
		d->msg_op = 0;
	}
	for (;;) {
		if (!d->in_frame) {
			if (pos == len)
				break;
			if (d->closed)
				return fail(d, -EPROTO, WS_CLOSE_PROTOCOL);
			size_t need;
			while (d->hdr_len < (need = header_need(d)) && pos < len)
				d->hdr[d->hdr_len++] = b[pos++];
			if (d->hdr_len < need)
				break;
			d->hdr_len = 0;
			int r = start_frame(d);
			if (r < 0) {
				*consumed = pos;
				return r;
			}
		}
		size_t n = len - pos;
		if (n > d->remain)
			n = (size_t)d->remain;
		if (n) {
			uint8_t *dst = (d->op & 0x8) ? d->ctl + d->ctl_len : d->msg + d->msg_len;
			memcpy(dst, b + pos, n);
			if (d->masked)
				ws_mask(dst, n, d->mask, d->frame_off);
			if (d->op & 0x8)
				d->ctl_len += n;
			else
				d->msg_len += n;
			d->frame_off += n;
			d->remain -= n;
			pos += n;
		}
		if (d->remain)
			break;
		int r = end_frame(d, ev);
		if (r != 0) {
			*consumed = pos;
			return r;
		}
	}
	*consumed = pos;
	return 0;
}
