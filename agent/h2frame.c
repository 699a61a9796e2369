/* HTTP/2 frame decoding and the agent's own frames (see h2frame.h). */
#include "agent/h2frame.h"

#include <string.h>

static uint32_t get24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

uint32_t h2f_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void h2f_hdr_parse(const uint8_t *p, struct h2f_hdr *ret)
{
	ret->len = get24(p);
	ret->type = p[3];
	ret->flags = p[4];
	ret->sid = h2f_u32(p + 5) & 0x7fffffffu;
}

void h2f_hdr_write(uint8_t *p, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
	p[0] = (uint8_t)(len >> 16);
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	p[3] = type;
	p[4] = flags;
	put32(p + 5, sid & 0x7fffffffu);
}

unsigned h2f_check(const struct h2f_hdr *h, uint32_t max_frame)
{
	if (h->len > max_frame)
		return H2E_FRAME_SIZE;
	switch (h->type) {
	case H2F_DATA:
	case H2F_HEADERS:
	case H2F_CONTINUATION:
	case H2F_PUSH_PROMISE:
		return h->sid ? 0 : H2E_PROTOCOL;
	case H2F_PRIORITY:
		if (!h->sid)
			return H2E_PROTOCOL;
		/* A PRIORITY of the wrong length is a stream error in §6.3;
		 * the router ignores PRIORITY and so does not mind. */
		return 0;
	case H2F_RST_STREAM:
		if (!h->sid)
			return H2E_PROTOCOL;
		return h->len == 4 ? 0 : H2E_FRAME_SIZE;
	case H2F_SETTINGS:
		if (h->sid)
			return H2E_PROTOCOL;
		if ((h->flags & H2F_ACK) && h->len)
			return H2E_FRAME_SIZE;
		return h->len % 6 ? H2E_FRAME_SIZE : 0;
	case H2F_PING:
		if (h->sid)
			return H2E_PROTOCOL;
		return h->len == 8 ? 0 : H2E_FRAME_SIZE;
	case H2F_GOAWAY:
		if (h->sid)
			return H2E_PROTOCOL;
		return h->len >= 8 ? 0 : H2E_FRAME_SIZE;
	case H2F_WINDOW_UPDATE:
		return h->len == 4 ? 0 : H2E_FRAME_SIZE;
	default:
		return 0;
	}
}

unsigned h2f_content(const struct h2f_hdr *h, const uint8_t *p, size_t *ret_off, size_t *ret_len)
{
	size_t off = 0, end = h->len, pad = 0;

	if (h->type == H2F_DATA || h->type == H2F_HEADERS) {
		if (h->flags & H2F_PADDED) {
			if (end < 1)
				return H2E_PROTOCOL;
			pad = p[0];
			off = 1;
		}
		/* Stream dependency (4) and weight (1): ignored. */
		if (h->type == H2F_HEADERS && (h->flags & H2F_PRIO))
			off += 5;
		/* §6.1: padding at least as long as what remains is a
		 * PROTOCOL_ERROR. */
		if (off > end || pad > end - off)
			return H2E_PROTOCOL;
		end -= pad;
	}
	*ret_off = off;
	*ret_len = end - off;
	return 0;
}

bool h2f_setting_next(const uint8_t *p, size_t len, size_t *pos, uint16_t *ret_id,
                      uint32_t *ret_value)
{
	if (*pos + 6 > len)
		return false;
	*ret_id = (uint16_t)(p[*pos] << 8 | p[*pos + 1]);
	*ret_value = h2f_u32(p + *pos + 2);
	*pos += 6;
	return true;
}

unsigned h2f_setting_check(uint16_t id, uint32_t value)
{
	switch (id) {
	case H2S_ENABLE_PUSH:
		return value > 1 ? H2E_PROTOCOL : 0;
	case H2S_INITIAL_WINDOW_SIZE:
		return value > H2F_MAX_WINDOW ? H2E_FLOW_CONTROL : 0;
	case H2S_MAX_FRAME_SIZE:
		return value < H2F_DEFAULT_MAX_FRAME || value > H2F_MAX_MAX_FRAME ? H2E_PROTOCOL
		                                                                  : 0;
	default:
		return 0; /* unknown settings are ignored (§6.5.2) */
	}
}

uint32_t h2f_window_increment(const uint8_t *p)
{
	return h2f_u32(p) & 0x7fffffffu;
}

void h2f_goaway_parse(const uint8_t *p, uint32_t *ret_last, uint32_t *ret_code)
{
	*ret_last = h2f_u32(p) & 0x7fffffffu;
	*ret_code = h2f_u32(p + 4);
}

size_t h2f_put_rst(uint8_t *out, uint32_t sid, uint32_t code)
{
	h2f_hdr_write(out, 4, H2F_RST_STREAM, 0, sid);
	put32(out + 9, code);
	return H2F_RST_LEN;
}

size_t h2f_put_window_update(uint8_t *out, uint32_t sid, uint32_t inc)
{
	h2f_hdr_write(out, 4, H2F_WINDOW_UPDATE, 0, sid);
	put32(out + 9, inc & 0x7fffffffu);
	return H2F_WINDOW_UPDATE_LEN;
}

size_t h2f_put_goaway(uint8_t *out, uint32_t last_sid, uint32_t code)
{
	h2f_hdr_write(out, 8, H2F_GOAWAY, 0, 0);
	put32(out + 9, last_sid & 0x7fffffffu);
	put32(out + 13, code);
	return H2F_GOAWAY_LEN;
}

size_t h2f_put_ping_ack(uint8_t *out, const uint8_t *opaque8)
{
	h2f_hdr_write(out, 8, H2F_PING, H2F_ACK, 0);
	memcpy(out + 9, opaque8, 8);
	return H2F_PING_LEN;
}

size_t h2f_put_settings(uint8_t *out, const uint16_t *ids, const uint32_t *values, size_t n)
{
	h2f_hdr_write(out, (uint32_t)(6 * n), H2F_SETTINGS, 0, 0);
	for (size_t i = 0; i < n; i++) {
		out[9 + 6 * i] = (uint8_t)(ids[i] >> 8);
		out[9 + 6 * i + 1] = (uint8_t)ids[i];
		put32(out + 9 + 6 * i + 2, values[i]);
	}
	return H2F_HDR_LEN + 6 * n;
}

size_t h2f_put_settings_ack(uint8_t *out)
{
	h2f_hdr_write(out, 0, H2F_SETTINGS, H2F_ACK, 0);
	return H2F_SETTINGS_ACK_LEN;
}
