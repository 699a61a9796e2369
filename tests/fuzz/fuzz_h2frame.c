/* libFuzzer target for the HTTP/2 frame layer (agent/h2frame.c). The
 * input is read as the router reads a connection: a sequence of frames,
 * each header checked against a max frame size picked by the first byte,
 * then the payload taken apart by type. Invariants (any violation
 * aborts): the content of HEADERS / DATA lies inside the payload; a
 * header re-encodes to the same bytes (reserved bit aside); SETTINGS
 * iteration visits exactly len / 6 entries; the frames the agent writes
 * parse back to what was written and pass h2f_check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "agent/h2frame.h"

static void payload(const struct h2f_hdr *h, const uint8_t *p)
{
	size_t off, len, pos = 0, n = 0;
	uint16_t id;
	uint32_t v, last, code;
	uint8_t out[64];
	struct h2f_hdr back;

	switch (h->type) {
	case H2F_DATA:
	case H2F_HEADERS:
		if (h2f_content(h, p, &off, &len) == 0)
			ASSERT(off <= h->len && len <= h->len - off);
		break;
	case H2F_SETTINGS:
		while (h2f_setting_next(p, h->len, &pos, &id, &v)) {
			(void)h2f_setting_check(id, v);
			n++;
		}
		ASSERT(n == h->len / 6);
		break;
	case H2F_WINDOW_UPDATE:
		v = h2f_window_increment(p);
		ASSERT(v <= H2F_MAX_WINDOW);
		if (v) {
			h2f_put_window_update(out, h->sid, v);
			h2f_hdr_parse(out, &back);
			ASSERT(h2f_check(&back, H2F_DEFAULT_MAX_FRAME) == 0);
			ASSERT(h2f_window_increment(out + 9) == v && back.sid == h->sid);
		}
		break;
	case H2F_GOAWAY:
		h2f_goaway_parse(p, &last, &code);
		h2f_put_goaway(out, last, code);
		h2f_hdr_parse(out, &back);
		ASSERT(h2f_check(&back, H2F_DEFAULT_MAX_FRAME) == 0);
		ASSERT(!memcmp(out + 9 + 4, p + 4, 4));
		break;
	case H2F_RST_STREAM:
		h2f_put_rst(out, h->sid, h2f_u32(p));
		ASSERT(!memcmp(out + 9, p, 4));
		break;
	case H2F_PING:
		h2f_put_ping_ack(out, p);
		h2f_hdr_parse(out, &back);
		ASSERT(h2f_check(&back, H2F_DEFAULT_MAX_FRAME) == 0 && back.flags == H2F_ACK);
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t max_frame;

	if (size < 1)
		return 0;
	max_frame = data[0] & 1 ? H2F_DEFAULT_MAX_FRAME : 64;
	data++, size--;
	while (size >= H2F_HDR_LEN) {
		struct h2f_hdr h;
		uint8_t re[H2F_HDR_LEN];

		h2f_hdr_parse(data, &h);
		h2f_hdr_write(re, h.len, h.type, h.flags, h.sid);
		ASSERT(!memcmp(re, data, 5) && !memcmp(re + 6, data + 6, 3) &&
		       (re[5] & 0x7f) == (data[5] & 0x7f));
		if (h2f_check(&h, max_frame) != 0)
			return 0; /* a connection error: the router stops here */
		if (h.len > size - H2F_HDR_LEN)
			return 0; /* incomplete: the router waits for more */
		/* Copy the payload so a read past it is caught by ASan. */
		uint8_t *p = malloc(h.len ? h.len : 1);
		ASSERT(p);
		memcpy(p, data + H2F_HDR_LEN, h.len);
		payload(&h, p);
		free(p);
		data += H2F_HDR_LEN + h.len;
		size -= H2F_HDR_LEN + h.len;
	}
	return 0;
}
