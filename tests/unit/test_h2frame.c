/* agent/h2frame.c: HTTP/2 frame headers, per-type checks, padding and
 * priority stripping, SETTINGS values, and the frames the agent writes. */
#include "tests/unit/test.h"
#include "agent/h2frame.h"

static struct h2f_hdr hdr(uint32_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
	return (struct h2f_hdr){.len = len, .type = type, .flags = flags, .sid = sid};
}

TEST(header_round_trip)
{
	uint8_t b[9];
	struct h2f_hdr h;

	h2f_hdr_write(b, 0x123456, H2F_HEADERS, H2F_END_HEADERS | H2F_END_STREAM, 0x7fffffff);
	CHECK_EQ(b[0], 0x12);
	CHECK_EQ(b[2], 0x56);
	CHECK_EQ(b[5], 0x7f);
	h2f_hdr_parse(b, &h);
	CHECK_EQ(h.len, 0x123456);
	CHECK_EQ(h.type, H2F_HEADERS);
	CHECK_EQ(h.flags, 5);
	CHECK_EQ(h.sid, 0x7fffffff);
	/* The reserved bit is ignored on receipt (§4.1). */
	b[5] |= 0x80;
	h2f_hdr_parse(b, &h);
	CHECK_EQ(h.sid, 0x7fffffff);
}

TEST(check_per_type)
{
	static const struct {
		uint32_t len;
		uint8_t type, flags;
		uint32_t sid;
		unsigned want;
	} cases[] = {
	        {16385, H2F_DATA, 0, 1, H2E_FRAME_SIZE},
	        {16384, H2F_DATA, 0, 1, 0},
	        {0, H2F_DATA, 0, 0, H2E_PROTOCOL},
	        {0, H2F_HEADERS, 0, 0, H2E_PROTOCOL},
	        {3, H2F_RST_STREAM, 0, 1, H2E_FRAME_SIZE},
	        {4, H2F_RST_STREAM, 0, 0, H2E_PROTOCOL},
	        {12, H2F_SETTINGS, 0, 0, 0},
	        {7, H2F_SETTINGS, 0, 0, H2E_FRAME_SIZE},
	        {6, H2F_SETTINGS, H2F_ACK, 0, H2E_FRAME_SIZE},
	        {0, H2F_SETTINGS, 0, 3, H2E_PROTOCOL},
	        {8, H2F_PING, 0, 0, 0},
	        {9, H2F_PING, 0, 0, H2E_FRAME_SIZE},
	        {7, H2F_GOAWAY, 0, 0, H2E_FRAME_SIZE},
	        {20, H2F_GOAWAY, 0, 0, 0},
	        {5, H2F_WINDOW_UPDATE, 0, 0, H2E_FRAME_SIZE},
	        {4, H2F_WINDOW_UPDATE, 0, 0, 0},
	        {0, H2F_CONTINUATION, 0, 0, H2E_PROTOCOL},
	        /* Unknown types are ignored, not errors. */
	        {100, 0xfa, 0xff, 0, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct h2f_hdr h = hdr(cases[i].len, cases[i].type, cases[i].flags, cases[i].sid);
		if (h2f_check(&h, 16384) != cases[i].want) {
			fprintf(stderr, "case %zu\n", i);
			CHECK(0);
		}
	}
}

TEST(content_strips_padding_and_priority)
{
	/* pad length 2, priority (5 bytes), block "abc", padding */
	const uint8_t p[] = {2, 0, 0, 0, 3, 16, 'a', 'b', 'c', 0, 0};
	struct h2f_hdr h = hdr(sizeof(p), H2F_HEADERS, H2F_PADDED | H2F_PRIO, 1);
	size_t off, len;

	CHECK_EQ(h2f_content(&h, p, &off, &len), 0);
	CHECK_EQ(off, 6);
	CHECK_EQ(len, 3);
	CHECK(!memcmp(p + off, "abc", 3));
	/* DATA: the PRIORITY flag means nothing there. */
	const uint8_t d[] = {1, 'x', 'y', 0};
	h = hdr(sizeof(d), H2F_DATA, H2F_PADDED | H2F_PRIO, 1);
	CHECK_EQ(h2f_content(&h, d, &off, &len), 0);
	CHECK_EQ(off, 1);
	CHECK_EQ(len, 2);
	/* Padding that eats everything: PROTOCOL_ERROR. */
	const uint8_t bad[] = {3, 'x', 'y', 'z'};
	h = hdr(sizeof(bad), H2F_DATA, H2F_PADDED, 1);
	CHECK_EQ(h2f_content(&h, bad, &off, &len), 0);
	CHECK_EQ(len, 0);
	const uint8_t worse[] = {4, 'x', 'y', 'z'};
	h = hdr(sizeof(worse), H2F_DATA, H2F_PADDED, 1);
	CHECK_EQ(h2f_content(&h, worse, &off, &len), H2E_PROTOCOL);
	h = hdr(0, H2F_DATA, H2F_PADDED, 1);
	CHECK_EQ(h2f_content(&h, worse, &off, &len), H2E_PROTOCOL);
	h = hdr(4, H2F_HEADERS, H2F_PRIO, 1);
	CHECK_EQ(h2f_content(&h, worse, &off, &len), H2E_PROTOCOL);
	/* No flags: the whole payload. */
	h = hdr(4, H2F_HEADERS, H2F_END_HEADERS, 1);
	CHECK_EQ(h2f_content(&h, worse, &off, &len), 0);
	CHECK_EQ(off, 0);
	CHECK_EQ(len, 4);
}

TEST(settings_values)
{
	uint8_t f[9 + 18];
	const uint16_t ids[] = {H2S_ENABLE_PUSH, H2S_MAX_FRAME_SIZE, 0x99};
	const uint32_t vals[] = {0, 1u << 20, 7};
	struct h2f_hdr h;
	size_t pos = 0, n = 0;
	uint16_t id;
	uint32_t v;

	CHECK_EQ(h2f_put_settings(f, ids, vals, 3), sizeof(f));
	h2f_hdr_parse(f, &h);
	CHECK_EQ(h2f_check(&h, 16384), 0);
	while (h2f_setting_next(f + 9, h.len, &pos, &id, &v)) {
		CHECK_EQ(id, ids[n]);
		CHECK_EQ(v, vals[n]);
		CHECK_EQ(h2f_setting_check(id, v), 0);
		n++;
	}
	CHECK_EQ(n, 3);
	CHECK_EQ(h2f_setting_check(H2S_ENABLE_PUSH, 2), H2E_PROTOCOL);
	CHECK_EQ(h2f_setting_check(H2S_INITIAL_WINDOW_SIZE, 0x7fffffff), 0);
	CHECK_EQ(h2f_setting_check(H2S_INITIAL_WINDOW_SIZE, 0x80000000u), H2E_FLOW_CONTROL);
	CHECK_EQ(h2f_setting_check(H2S_MAX_FRAME_SIZE, 16383), H2E_PROTOCOL);
	CHECK_EQ(h2f_setting_check(H2S_MAX_FRAME_SIZE, 16777216), H2E_PROTOCOL);
	CHECK_EQ(h2f_setting_check(H2S_MAX_FRAME_SIZE, 16777215), 0);
	CHECK_EQ(h2f_put_settings_ack(f), 9);
	h2f_hdr_parse(f, &h);
	CHECK_EQ(h.flags, H2F_ACK);
	CHECK_EQ(h.len, 0);
}

TEST(control_frames)
{
	uint8_t f[32];
	struct h2f_hdr h;
	uint32_t last, code;

	CHECK_EQ(h2f_put_window_update(f, 3, 1u << 20), H2F_WINDOW_UPDATE_LEN);
	h2f_hdr_parse(f, &h);
	CHECK_EQ(h.type, H2F_WINDOW_UPDATE);
	CHECK_EQ(h.sid, 3);
	CHECK_EQ(h2f_window_increment(f + 9), 1u << 20);
	/* The reserved bit of the increment is ignored; 0 stays 0. */
	f[9] = 0x80, f[10] = f[11] = f[12] = 0;
	CHECK_EQ(h2f_window_increment(f + 9), 0);
	CHECK_EQ(h2f_put_rst(f, 5, H2E_REFUSED_STREAM), H2F_RST_LEN);
	h2f_hdr_parse(f, &h);
	CHECK_EQ(h2f_check(&h, 16384), 0);
	CHECK_EQ(h2f_u32(f + 9), H2E_REFUSED_STREAM);
	CHECK_EQ(h2f_put_goaway(f, 9, H2E_PROTOCOL), H2F_GOAWAY_LEN);
	h2f_hdr_parse(f, &h);
	CHECK_EQ(h2f_check(&h, 16384), 0);
	h2f_goaway_parse(f + 9, &last, &code);
	CHECK_EQ(last, 9);
	CHECK_EQ(code, H2E_PROTOCOL);
	const uint8_t opaque[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	CHECK_EQ(h2f_put_ping_ack(f, opaque), H2F_PING_LEN);
	h2f_hdr_parse(f, &h);
	CHECK_EQ(h.flags, H2F_ACK);
	CHECK(!memcmp(f + 9, opaque, 8));
}

TEST_MAIN()
