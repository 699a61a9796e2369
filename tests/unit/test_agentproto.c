/* Unit tests of agentproto: round trips of the core message types, every
 * rejection the decoder promises, partial frames, limits, addresses and
 * env lists. The file and incoming-traffic frames are in
 * test_agentproto_ext.c. */
#include "tests/unit/agentproto_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

/* ---- round trips --------------------------------------------------------- */

TEST(roundtrip_hello)
{
	struct ap_msg m = {.type = AP_HELLO}, d;
	m.u.hello.magic = AP_MAGIC;
	m.u.hello.version = AP_VERSION;
	m.u.hello.client_name = B("mirrord-trace 0.1.0");
	CHECK_EQ(roundtrip(&m, &d), AP_HEADER_SIZE + 12 + 19);
	CHECK_EQ(d.u.hello.magic, AP_MAGIC);
	CHECK_EQ(d.u.hello.version, AP_VERSION);
	CHECK(bytes_eq(d.u.hello.client_name, "mirrord-trace 0.1.0"));
	/* The magic is on the wire as "MTRC". */
	CHECK(memcmp(buf + AP_HEADER_SIZE, "MTRC", 4) == 0);
}

TEST(roundtrip_hello_ok)
{
	struct ap_msg m = {.type = AP_HELLO_OK}, d;
	m.u.hello_ok.version = 1;
	m.u.hello_ok.agent_version = B("0.1.0");
	m.u.hello_ok.mode = B("steal");
	roundtrip(&m, &d);
	CHECK_EQ(d.u.hello_ok.version, 1);
	CHECK(bytes_eq(d.u.hello_ok.agent_version, "0.1.0"));
	CHECK(bytes_eq(d.u.hello_ok.mode, "steal"));
}

TEST(roundtrip_error)
{
	struct ap_msg m = {.type = AP_ERROR}, d;
	m.u.error.err = -EPROTO;
	m.u.error.message = B("version mismatch: \"2\"");
	roundtrip(&m, &d);
	CHECK_EQ(d.u.error.err, -EPROTO);
	CHECK(bytes_eq(d.u.error.message, "version mismatch: \"2\""));
	m.u.error.err = INT32_MIN;
	m.u.error.message = B("");
	roundtrip(&m, &d);
	CHECK_EQ(d.u.error.err, INT32_MIN);
	CHECK_EQ(d.u.error.message.len, 0);
}

TEST(roundtrip_env_req_ping_pong)
{
	static const enum ap_type types[] = {AP_ENV_REQ, AP_PING, AP_PONG};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct ap_msg m = {.type = types[i], .id = 0xfffffff0u + (uint32_t)i}, d;
		CHECK_EQ(roundtrip(&m, &d), AP_HEADER_SIZE);
	}
}

TEST(roundtrip_env_resp)
{
	uint8_t ent[256];
	size_t off = 0;
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "PATH=/usr/bin", 13), 0);
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "EMPTY=", 6), 0);
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "", 0), 0);
	struct ap_msg m = {.type = AP_ENV_RESP, .id = 7}, d;
	m.u.env_resp.count = 3;
	m.u.env_resp.entries = (struct ap_bytes){ent, (uint32_t)off};
	roundtrip(&m, &d);
	CHECK_EQ(d.u.env_resp.err, 0);
	CHECK_EQ(d.u.env_resp.count, 3);

	size_t it = 0;
	struct ap_bytes e;
	CHECK_EQ(ap_env_next(&d.u.env_resp.entries, &it, &e), 1);
	CHECK(bytes_eq(e, "PATH=/usr/bin"));
	CHECK_EQ(ap_env_next(&d.u.env_resp.entries, &it, &e), 1);
	CHECK(bytes_eq(e, "EMPTY="));
	CHECK_EQ(ap_env_next(&d.u.env_resp.entries, &it, &e), 1);
	CHECK_EQ(e.len, 0);
	CHECK_EQ(ap_env_next(&d.u.env_resp.entries, &it, &e), 0);
	CHECK_EQ(ap_env_next(&d.u.env_resp.entries, &it, &e), 0);

	/* An error response with no entries. */
	struct ap_msg m2 = {.type = AP_ENV_RESP, .id = 8};
	m2.u.env_resp.err = -EACCES;
	roundtrip(&m2, &d);
	CHECK_EQ(d.u.env_resp.err, -EACCES);
	CHECK_EQ(d.u.env_resp.count, 0);
	CHECK_EQ(d.u.env_resp.entries.len, 0);
}

TEST(roundtrip_file_req_resp)
{
	struct ap_msg m = {.type = AP_FILE_REQ, .id = 42}, d;
	m.u.file_req.path = B("/etc/resolv.conf");
	roundtrip(&m, &d);
	CHECK(bytes_eq(d.u.file_req.path, "/etc/resolv.conf"));

	struct ap_msg r = {.type = AP_FILE_RESP, .id = 42};
	r.u.file_resp.content = B("nameserver 10.96.0.10\n");
	roundtrip(&r, &d);
	CHECK_EQ(d.u.file_resp.err, 0);
	CHECK(bytes_eq(d.u.file_resp.content, "nameserver 10.96.0.10\n"));

	r.u.file_resp.err = -ENOENT;
	r.u.file_resp.content = (struct ap_bytes){NULL, 0};
	roundtrip(&r, &d);
	CHECK_EQ(d.u.file_resp.err, -ENOENT);
	CHECK_EQ(d.u.file_resp.content.len, 0);
}

TEST(roundtrip_connect)
{
	struct ap_msg m = {.type = AP_CONNECT, .id = 3}, d;
	m.u.connect.stream = 5;
	m.u.connect.proto = AP_PROTO_TCP;
	m.u.connect.dst = v4(10, 0, 0, 7, 8080);
	m.u.connect.window = AP_DEFAULT_WINDOW;
	CHECK_EQ(roundtrip(&m, &d), AP_HEADER_SIZE + 28);
	CHECK_EQ(d.u.connect.stream, 5);
	CHECK_EQ(d.u.connect.proto, AP_PROTO_TCP);
	CHECK_EQ(d.u.connect.dst.family, 4);
	CHECK_EQ(d.u.connect.dst.port, 8080);
	CHECK(memcmp(d.u.connect.dst.addr, m.u.connect.dst.addr, 16) == 0);
	CHECK_EQ(d.u.connect.window, AP_DEFAULT_WINDOW);
	/* Port is big-endian right after the family byte. */
	CHECK_EQ(buf[AP_HEADER_SIZE + 5], 4);
	CHECK_EQ(buf[AP_HEADER_SIZE + 6], 0x1f);
	CHECK_EQ(buf[AP_HEADER_SIZE + 7], 0x90);

	m.u.connect.proto = AP_PROTO_UDP;
	m.u.connect.dst = v6_loopback(53);
	roundtrip(&m, &d);
	CHECK_EQ(d.u.connect.proto, AP_PROTO_UDP);
	CHECK_EQ(d.u.connect.dst.family, 6);
	CHECK_EQ(d.u.connect.dst.port, 53);
	CHECK_EQ(d.u.connect.dst.addr[15], 1);
}

TEST(roundtrip_connect_resp)
{
	struct ap_msg m = {.type = AP_CONNECT_RESP, .id = 3}, d;
	m.u.connect_resp.err = -ECONNREFUSED;
	m.u.connect_resp.stream = 5;
	m.u.connect_resp.local = v4(0, 0, 0, 0, 0);
	CHECK_EQ(roundtrip(&m, &d), AP_HEADER_SIZE + 27);
	CHECK_EQ(d.u.connect_resp.err, -ECONNREFUSED);
	CHECK_EQ(d.u.connect_resp.stream, 5);
	CHECK_EQ(d.u.connect_resp.local.family, 4);

	m.u.connect_resp.err = 0;
	m.u.connect_resp.local = v6_loopback(65535);
	roundtrip(&m, &d);
	CHECK_EQ(d.u.connect_resp.local.port, 65535);
}

TEST(roundtrip_data_credit_close)
{
	struct ap_msg m = {.type = AP_DATA, .id = AP_STREAM_AGENT_BIT | 9}, d;
	m.u.data.data = B("GET / HTTP/1.1\r\n\r\n");
	roundtrip(&m, &d);
	CHECK_EQ(d.id, AP_STREAM_AGENT_BIT | 9);
	CHECK(bytes_eq(d.u.data.data, "GET / HTTP/1.1\r\n\r\n"));

	m.u.data.data = (struct ap_bytes){NULL, 0}; /* empty UDP datagram */
	CHECK_EQ(roundtrip(&m, &d), AP_HEADER_SIZE);
	CHECK_EQ(d.u.data.data.len, 0);

	struct ap_msg c = {.type = AP_CREDIT, .id = 9};
	c.u.credit.bytes = 0xdeadbeef;
	roundtrip(&c, &d);
	CHECK_EQ(d.u.credit.bytes, 0xdeadbeef);

	struct ap_msg cl = {.type = AP_CLOSE, .id = 9};
	cl.u.close.how = AP_CLOSE_RESET;
	cl.u.close.err = -ECONNRESET;
	roundtrip(&cl, &d);
	CHECK_EQ(d.u.close.how, AP_CLOSE_RESET);
	CHECK_EQ(d.u.close.err, -ECONNRESET);
	cl.u.close.how = AP_CLOSE_FIN;
	cl.u.close.err = 0;
	roundtrip(&cl, &d);
	CHECK_EQ(d.u.close.how, AP_CLOSE_FIN);
}

TEST(wire_layout_exact)
{
	struct ap_msg m = {.type = AP_CREDIT, .id = 0x01020304};
	m.u.credit.bytes = 0x0a0b0c0d;
	static const uint8_t want[] = {0, 0, 0, 4, AP_CREDIT, 0,    0,    0,
	                               1, 2, 3, 4, 0x0a,      0x0b, 0x0c, 0x0d};
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), sizeof(want));
	CHECK(memcmp(buf, want, sizeof(want)) == 0);
}

TEST(several_frames_in_one_buffer)
{
	struct ap_msg a = {.type = AP_PING, .id = 1};
	struct ap_msg b = {.type = AP_DATA, .id = 2};
	b.u.data.data = B("xyz");
	struct ap_msg c = {.type = AP_CREDIT, .id = 2};
	c.u.credit.bytes = 3;
	size_t off = 0;
	ssize_t n;
	n = ap_encode(&a, buf + off, sizeof(buf) - off);
	CHECK(n > 0);
	off += (size_t)n;
	n = ap_encode(&b, buf + off, sizeof(buf) - off);
	CHECK(n > 0);
	off += (size_t)n;
	n = ap_encode(&c, buf + off, sizeof(buf) - off);
	CHECK(n > 0);
	off += (size_t)n;

	struct ap_msg d;
	size_t pos = 0;
	n = ap_decode(buf + pos, off - pos, &d);
	CHECK(n > 0);
	pos += (size_t)n;
	CHECK_EQ(d.type, AP_PING);
	n = ap_decode(buf + pos, off - pos, &d);
	CHECK(n > 0);
	pos += (size_t)n;
	CHECK_EQ(d.type, AP_DATA);
	CHECK(bytes_eq(d.u.data.data, "xyz"));
	/* The third frame minus its last byte is still "need more". */
	CHECK_EQ(ap_decode(buf + pos, off - pos - 1, &d), 0);
	n = ap_decode(buf + pos, off - pos, &d);
	CHECK(n > 0);
	pos += (size_t)n;
	CHECK_EQ(d.type, AP_CREDIT);
	CHECK_EQ(pos, off);
	CHECK_EQ(ap_decode(buf + pos, 0, &d), 0);
}

/* ---- header rejections ---------------------------------------------------- */

TEST(reject_flags_and_reserved)
{
	uint8_t f[AP_HEADER_SIZE];
	hdr(f, 0, AP_PING, 0, 0, 1);
	expect_decode(f, sizeof(f), AP_HEADER_SIZE);
	for (unsigned bit = 0; bit < 8; bit++) {
		hdr(f, 0, AP_PING, (uint8_t)(1u << bit), 0, 1);
		expect_decode(f, sizeof(f), -EBADMSG);
	}
	for (unsigned bit = 0; bit < 16; bit++) {
		hdr(f, 0, AP_PING, 0, (uint16_t)(1u << bit), 1);
		expect_decode(f, sizeof(f), -EBADMSG);
	}
}

TEST(reject_unknown_type)
{
	uint8_t f[AP_HEADER_SIZE];
	static const uint8_t bad[] = {0, AP_TYPE_LAST + 1, 0x7f, 0x80, 0xff};
	for (size_t i = 0; i < sizeof(bad); i++) {
		hdr(f, 0, bad[i], 0, 0, 0);
		expect_decode(f, sizeof(f), -EBADMSG);
	}
	struct ap_msg m = {.type = 0};
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(ap_encoded_size(&m), -EINVAL);
	m.type = (enum ap_type)(AP_TYPE_LAST + 1);
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
}

TEST(reject_oversized_payload_from_header_alone)
{
	uint8_t f[AP_HEADER_SIZE];
	/* As soon as the 12 header bytes are in, without any payload. */
	hdr(f, AP_MAX_PAYLOAD + 1, AP_ENV_RESP, 0, 0, 0);
	expect_decode(f, sizeof(f), -EMSGSIZE);
	hdr(f, UINT32_MAX, AP_DATA, 0, 0, 0);
	expect_decode(f, sizeof(f), -EMSGSIZE);
	/* Even with a bad type: the length is checked first. */
	hdr(f, UINT32_MAX, 0xff, 0xff, 0xffff, 0);
	expect_decode(f, sizeof(f), -EMSGSIZE);
	/* Exactly the maximum is fine: wait for the payload. */
	hdr(f, AP_MAX_PAYLOAD, AP_ENV_RESP, 0, 0, 0);
	expect_decode(f, sizeof(f), 0);
	/* Per-type limits also apply from the header alone. */
	hdr(f, AP_MAX_DATA + 1, AP_DATA, 0, 0, 0);
	expect_decode(f, sizeof(f), -EMSGSIZE);
	hdr(f, AP_MAX_DATA, AP_DATA, 0, 0, 0);
	expect_decode(f, sizeof(f), 0);
	hdr(f, 4 + AP_MAX_PATH + 1, AP_FILE_REQ, 0, 0, 0);
	expect_decode(f, sizeof(f), -EMSGSIZE);
	hdr(f, 8 + AP_MAX_STRING + 1, AP_ERROR, 0, 0, 0);
	expect_decode(f, sizeof(f), -EMSGSIZE);
}

TEST(reject_wrong_fixed_sizes)
{
	uint8_t f[AP_HEADER_SIZE + 64] = {0};
	struct {
		uint8_t type;
		uint32_t plen;
	} cases[] = {
	        {AP_PING, 1},      {AP_PONG, 4},          {AP_ENV_REQ, 1},       {AP_CREDIT, 3},
	        {AP_CREDIT, 5},    {AP_CLOSE, 4},         {AP_CLOSE, 6},         {AP_CONNECT, 27},
	        {AP_CONNECT, 29},  {AP_CONNECT_RESP, 26}, {AP_CONNECT_RESP, 28}, {AP_HELLO, 11},
	        {AP_HELLO_OK, 11}, {AP_ERROR, 7},         {AP_ENV_RESP, 7},      {AP_FILE_REQ, 3},
	        {AP_FILE_RESP, 7},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		hdr(f, cases[i].plen, cases[i].type, 0, 0, 0);
		/* Rejected with the header alone and with the payload. */
		expect_decode(f, AP_HEADER_SIZE, -EBADMSG);
		expect_decode(f, AP_HEADER_SIZE + cases[i].plen, -EBADMSG);
	}
}

/* ---- payload rejections --------------------------------------------------- */

TEST(reject_trailing_bytes)
{
	struct ap_msg m = {.type = AP_HELLO};
	m.u.hello.magic = AP_MAGIC;
	m.u.hello.client_name = B("x");
	ssize_t n = ap_encode(&m, buf, sizeof(buf));
	CHECK(n > 0);
	/* Same frame, announced one byte longer, with a junk byte. */
	put32(buf, (uint32_t)(n - AP_HEADER_SIZE + 1));
	buf[n] = 0;
	expect_decode(buf, (size_t)n + 1, -EBADMSG);

	struct ap_msg e = {.type = AP_ERROR};
	e.u.error.message = B("oops");
	n = ap_encode(&e, buf, sizeof(buf));
	put32(buf, (uint32_t)(n - AP_HEADER_SIZE + 3));
	expect_decode(buf, (size_t)n + 3, -EBADMSG);

	struct ap_msg ok = {.type = AP_HELLO_OK};
	n = ap_encode(&ok, buf, sizeof(buf));
	put32(buf, (uint32_t)(n - AP_HEADER_SIZE + 1));
	expect_decode(buf, (size_t)n + 1, -EBADMSG);

	struct ap_msg fr = {.type = AP_FILE_REQ};
	fr.u.file_req.path = B("/a");
	n = ap_encode(&fr, buf, sizeof(buf));
	put32(buf, (uint32_t)(n - AP_HEADER_SIZE + 1));
	expect_decode(buf, (size_t)n + 1, -EBADMSG);

	struct ap_msg fs = {.type = AP_FILE_RESP};
	n = ap_encode(&fs, buf, sizeof(buf));
	put32(buf, (uint32_t)(n - AP_HEADER_SIZE + 2));
	expect_decode(buf, (size_t)n + 2, -EBADMSG);
}

TEST(reject_string_length_past_payload)
{
	uint8_t f[AP_HEADER_SIZE + 64] = {0};
	/* FILE_REQ path claims 100 bytes, 10 present. */
	hdr(f, 4 + 10, AP_FILE_REQ, 0, 0, 0);
	put32(f + AP_HEADER_SIZE, 100);
	expect_decode(f, AP_HEADER_SIZE + 14, -EBADMSG);
	/* A claim over the limit is EMSGSIZE even before it is checked
	 * against the bytes present. */
	put32(f + AP_HEADER_SIZE, AP_MAX_PATH + 1);
	expect_decode(f, AP_HEADER_SIZE + 14, -EMSGSIZE);
	put32(f + AP_HEADER_SIZE, UINT32_MAX);
	expect_decode(f, AP_HEADER_SIZE + 14, -EMSGSIZE);

	/* HELLO_OK: first string swallows the second's length field. */
	hdr(f, 4 + 4 + 4, AP_HELLO_OK, 0, 0, 0);
	memset(f + AP_HEADER_SIZE, 0, 12);
	put32(f + AP_HEADER_SIZE + 4, 4);
	expect_decode(f, AP_HEADER_SIZE + 12, -EBADMSG);
	/* ...and with a correct (empty) mode it is fine. */
	hdr(f, 4 + 4 + 4, AP_HELLO_OK, 0, 0, 0);
	put32(f + AP_HEADER_SIZE + 4, 0);
	put32(f + AP_HEADER_SIZE + 8, 0);
	expect_decode(f, AP_HEADER_SIZE + 12, AP_HEADER_SIZE + 12);
}

TEST(hello_magic_mismatch_is_not_a_decode_error)
{
	struct ap_msg m = {.type = AP_HELLO}, d;
	m.u.hello.magic = 0x12345678;
	m.u.hello.version = 99;
	m.u.hello.client_name = B("someone else");
	roundtrip(&m, &d);
	CHECK_EQ(d.u.hello.magic, 0x12345678);
	CHECK_EQ(d.u.hello.version, 99);
}

TEST(reject_hello_reserved)
{
	struct ap_msg m = {.type = AP_HELLO};
	m.u.hello.magic = AP_MAGIC;
	m.u.hello.version = AP_VERSION;
	ssize_t n = ap_encode(&m, buf, sizeof(buf));
	buf[AP_HEADER_SIZE + 6] = 1;
	expect_decode(buf, (size_t)n, -EBADMSG);
	buf[AP_HEADER_SIZE + 6] = 0;
	buf[AP_HEADER_SIZE + 7] = 0x80;
	expect_decode(buf, (size_t)n, -EBADMSG);

	struct ap_msg ok = {.type = AP_HELLO_OK};
	n = ap_encode(&ok, buf, sizeof(buf));
	buf[AP_HEADER_SIZE + 3] = 1;
	expect_decode(buf, (size_t)n, -EBADMSG);
}

TEST(reject_bad_address_family)
{
	static const uint8_t bad[] = {0, 1, 2, 5, 7, 10, 0xff};
	for (size_t i = 0; i < sizeof(bad); i++) {
		struct ap_msg m = {.type = AP_CONNECT};
		m.u.connect.proto = AP_PROTO_TCP;
		m.u.connect.dst = v4(1, 2, 3, 4, 80);
		ssize_t n = ap_encode(&m, buf, sizeof(buf));
		CHECK(n > 0);
		buf[AP_HEADER_SIZE + 5] = bad[i];
		expect_decode(buf, (size_t)n, -EBADMSG);
		m.u.connect.dst.family = bad[i];
		CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
		CHECK_EQ(ap_encoded_size(&m), -EINVAL);

		struct ap_msg r = {.type = AP_CONNECT_RESP};
		r.u.connect_resp.local = v6_loopback(1);
		n = ap_encode(&r, buf, sizeof(buf));
		CHECK(n > 0);
		buf[AP_HEADER_SIZE + 8] = bad[i];
		expect_decode(buf, (size_t)n, -EBADMSG);
		r.u.connect_resp.local.family = bad[i];
		CHECK_EQ(ap_encode(&r, buf, sizeof(buf)), -EINVAL);
	}
}

TEST(reject_ipv4_padding)
{
	struct ap_msg m = {.type = AP_CONNECT};
	m.u.connect.proto = AP_PROTO_TCP;
	m.u.connect.dst = v4(1, 2, 3, 4, 80);
	ssize_t n = ap_encode(&m, buf, sizeof(buf));
	/* addr bytes start after stream(4) proto(1) family(1) port(2). */
	buf[AP_HEADER_SIZE + 8 + 15] = 1;
	expect_decode(buf, (size_t)n, -EBADMSG);
	m.u.connect.dst.addr[4] = 1;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* IPv6 uses all 16 bytes. */
	memset(m.u.connect.dst.addr, 0xff, 16);
	m.u.connect.dst.family = 6;
	CHECK(ap_encode(&m, buf, sizeof(buf)) > 0);
}

TEST(reject_bad_proto)
{
	static const uint8_t bad[] = {0, 3, 6, 17, 0xff};
	for (size_t i = 0; i < sizeof(bad); i++) {
		struct ap_msg m = {.type = AP_CONNECT};
		m.u.connect.proto = AP_PROTO_UDP;
		m.u.connect.dst = v4(1, 2, 3, 4, 53);
		ssize_t n = ap_encode(&m, buf, sizeof(buf));
		buf[AP_HEADER_SIZE + 4] = bad[i];
		expect_decode(buf, (size_t)n, -EBADMSG);
		m.u.connect.proto = bad[i];
		CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	}
}

TEST(reject_bad_close_how)
{
	static const uint8_t bad[] = {2, 3, 0x80, 0xff};
	for (size_t i = 0; i < sizeof(bad); i++) {
		struct ap_msg m = {.type = AP_CLOSE, .id = 1};
		ssize_t n = ap_encode(&m, buf, sizeof(buf));
		buf[AP_HEADER_SIZE] = bad[i];
		expect_decode(buf, (size_t)n, -EBADMSG);
		m.u.close.how = bad[i];
		CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	}
}

/* ---- limits ---------------------------------------------------------------- */

TEST(data_limit)
{
	static uint8_t payload[AP_MAX_DATA + 1];
	memset(payload, 'd', sizeof(payload));
	struct ap_msg m = {.type = AP_DATA, .id = 1}, d;
	m.u.data.data = (struct ap_bytes){payload, AP_MAX_DATA};
	CHECK_EQ(roundtrip(&m, &d), AP_HEADER_SIZE + AP_MAX_DATA);
	CHECK_EQ(d.u.data.data.len, AP_MAX_DATA);

	m.u.data.data.len = AP_MAX_DATA + 1;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EMSGSIZE);
	CHECK_EQ(ap_encoded_size(&m), -EMSGSIZE);
	hdr(buf, AP_MAX_DATA + 1, AP_DATA, 0, 0, 1);
	memcpy(buf + AP_HEADER_SIZE, payload, AP_MAX_DATA + 1);
	expect_decode(buf, AP_HEADER_SIZE + AP_MAX_DATA + 1, -EMSGSIZE);
}

/* The header-only helpers of the splice and in-place paths agree with the
 * encoder and the decoder. */
TEST(data_header_put_get)
{
	static uint8_t payload[AP_MAX_DATA];
	uint8_t h[AP_HEADER_SIZE];
	uint32_t id = 0, len = 0;
	struct ap_msg m = {.type = AP_DATA, .id = AP_STREAM_AGENT_BIT | 77}, d;

	memset(payload, 'p', sizeof(payload));
	m.u.data.data = (struct ap_bytes){payload, AP_MAX_DATA};
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), AP_HEADER_SIZE + AP_MAX_DATA);
	CHECK_EQ(ap_data_header_put(h, m.id, AP_MAX_DATA), 0);
	CHECK(memcmp(h, buf, AP_HEADER_SIZE) == 0);
	CHECK_EQ(ap_data_header_get(buf, AP_HEADER_SIZE, &id, &len), 1);
	CHECK_EQ(id, m.id);
	CHECK_EQ(len, AP_MAX_DATA);
	/* A header put before its payload decodes as the same frame. */
	memcpy(buf, h, sizeof(h));
	CHECK_EQ(ap_decode(buf, AP_HEADER_SIZE + AP_MAX_DATA, &d), AP_HEADER_SIZE + AP_MAX_DATA);
	CHECK_EQ(d.id, m.id);
	CHECK_EQ(ap_data_header_put(h, 1, 0), 0);
	CHECK_EQ(ap_data_header_get(h, sizeof(h), &id, &len), 1);
	CHECK_EQ(len, 0);
	CHECK_EQ(ap_data_header_put(h, 1, AP_MAX_DATA + 1), -EMSGSIZE);

	/* Not a (valid) DATA header: left to ap_decode(). */
	id = len = 7;
	CHECK_EQ(ap_data_header_get(buf, AP_HEADER_SIZE - 1, &id, &len), 0);
	hdr(h, AP_MAX_DATA + 1, AP_DATA, 0, 0, 1);
	CHECK_EQ(ap_data_header_get(h, sizeof(h), &id, &len), 0);
	hdr(h, 10, AP_DATA, 1, 0, 1);
	CHECK_EQ(ap_data_header_get(h, sizeof(h), &id, &len), 0);
	hdr(h, 10, AP_DATA, 0, 1, 1);
	CHECK_EQ(ap_data_header_get(h, sizeof(h), &id, &len), 0);
	hdr(h, 4, AP_CREDIT, 0, 0, 1);
	CHECK_EQ(ap_data_header_get(h, sizeof(h), &id, &len), 0);
	CHECK_EQ(id, 7);
	CHECK_EQ(len, 7);
}

TEST(path_limit)
{
	static char path[AP_MAX_PATH + 2];
	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	struct ap_msg m = {.type = AP_FILE_REQ, .id = 1}, d;
	m.u.file_req.path = (struct ap_bytes){(const uint8_t *)path, AP_MAX_PATH};
	roundtrip(&m, &d);
	CHECK_EQ(d.u.file_req.path.len, AP_MAX_PATH);

	m.u.file_req.path.len = AP_MAX_PATH + 1;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EMSGSIZE);
	hdr(buf, 4 + AP_MAX_PATH + 1, AP_FILE_REQ, 0, 0, 1);
	put32(buf + AP_HEADER_SIZE, AP_MAX_PATH + 1);
	memcpy(buf + AP_HEADER_SIZE + 4, path, AP_MAX_PATH + 1);
	expect_decode(buf, AP_HEADER_SIZE + 4 + AP_MAX_PATH + 1, -EMSGSIZE);
}

TEST(string_limits)
{
	static char s[AP_MAX_STRING + 2];
	memset(s, 's', sizeof(s) - 1);
	struct ap_bytes max = {(const uint8_t *)s, AP_MAX_STRING};
	struct ap_bytes over = {(const uint8_t *)s, AP_MAX_STRING + 1};
	struct ap_msg d;

	struct ap_msg h = {.type = AP_HELLO};
	h.u.hello.client_name = max;
	roundtrip(&h, &d);
	h.u.hello.client_name = over;
	CHECK_EQ(ap_encode(&h, buf, sizeof(buf)), -EMSGSIZE);

	struct ap_msg ok = {.type = AP_HELLO_OK};
	ok.u.hello_ok.agent_version = max;
	ok.u.hello_ok.mode = max;
	roundtrip(&ok, &d);
	ok.u.hello_ok.mode = over;
	CHECK_EQ(ap_encode(&ok, buf, sizeof(buf)), -EMSGSIZE);
	ok.u.hello_ok.mode = B("");
	ok.u.hello_ok.agent_version = over;
	CHECK_EQ(ap_encode(&ok, buf, sizeof(buf)), -EMSGSIZE);

	struct ap_msg e = {.type = AP_ERROR};
	e.u.error.message = max;
	roundtrip(&e, &d);
	e.u.error.message = over;
	CHECK_EQ(ap_encode(&e, buf, sizeof(buf)), -EMSGSIZE);

	/* Hand-built: an ERROR whose message is one byte over. */
	hdr(buf, 8 + AP_MAX_STRING + 1, AP_ERROR, 0, 0, 0);
	put32(buf + AP_HEADER_SIZE, 0);
	put32(buf + AP_HEADER_SIZE + 4, AP_MAX_STRING + 1);
	expect_decode(buf, AP_HEADER_SIZE + 8 + AP_MAX_STRING + 1, -EMSGSIZE);
	/* HELLO_OK whose second string is one over, first empty: the frame
	 * is within the type's size bound, the field is not. */
	hdr(buf, 4 + 4 + 4 + AP_MAX_STRING + 1, AP_HELLO_OK, 0, 0, 0);
	memset(buf + AP_HEADER_SIZE, 0, 8);
	put32(buf + AP_HEADER_SIZE + 8, AP_MAX_STRING + 1);
	expect_decode(buf, AP_HEADER_SIZE + 12 + AP_MAX_STRING + 1, -EMSGSIZE);
}

TEST(file_content_limit)
{
	static uint8_t content[AP_MAX_FILE + 1];
	memset(content, 'f', sizeof(content));
	struct ap_msg m = {.type = AP_FILE_RESP, .id = 1}, d;
	m.u.file_resp.content = (struct ap_bytes){content, AP_MAX_FILE};
	roundtrip(&m, &d);
	CHECK_EQ(d.u.file_resp.content.len, AP_MAX_FILE);
	m.u.file_resp.content.len = AP_MAX_FILE + 1;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EMSGSIZE);
	hdr(buf, 8 + AP_MAX_FILE + 1, AP_FILE_RESP, 0, 0, 1);
	put32(buf + AP_HEADER_SIZE, 0);
	put32(buf + AP_HEADER_SIZE + 4, AP_MAX_FILE + 1);
	expect_decode(buf, AP_HEADER_SIZE + 8 + AP_MAX_FILE + 1, -EMSGSIZE);
}

/* An ENV_RESP of exactly AP_MAX_PAYLOAD bytes, then one byte more. */
TEST(env_resp_max_payload)
{
	static uint8_t ent[AP_MAX_PAYLOAD + 64];
	static char s[AP_MAX_STRING];
	memset(s, 'e', sizeof(s));
	s[0] = 'K', s[1] = '=';
	size_t off = 0, want = AP_MAX_PAYLOAD - 8;
	uint32_t count = 0;
	while (want - off > 4 + AP_MAX_STRING) {
		CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, s, AP_MAX_STRING), 0);
		count++;
	}
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, s, want - off - 4), 0);
	count++;
	CHECK_EQ(off, want);

	struct ap_msg m = {.type = AP_ENV_RESP, .id = 1}, d;
	m.u.env_resp.count = count;
	m.u.env_resp.entries = (struct ap_bytes){ent, (uint32_t)off};
	/* roundtrip() also walks every prefix of this 1 MiB frame: keep it. */
	CHECK_EQ(roundtrip(&m, &d), FRAME_MAX);
	size_t it = 0, seen = 0;
	struct ap_bytes e;
	while (ap_env_next(&d.u.env_resp.entries, &it, &e) == 1)
		seen++;
	CHECK_EQ(seen, count);

	/* One more byte in the last entry. */
	off = 0;
	for (uint32_t i = 0; i + 1 < count; i++)
		CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, s, AP_MAX_STRING), 0);
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, s, want - off - 4 + 1), 0);
	m.u.env_resp.entries.len = (uint32_t)off;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EMSGSIZE);
	CHECK_EQ(ap_encoded_size(&m), -EMSGSIZE);
}

TEST(env_count_limit)
{
	/* AP_MAX_ENV_COUNT empty-ish entries is fine, one more is not. */
	static uint8_t ent[(AP_MAX_ENV_COUNT + 1) * 8];
	size_t off = 0;
	for (unsigned i = 0; i < AP_MAX_ENV_COUNT + 1; i++)
		CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "A=1", 3), 0);
	struct ap_msg m = {.type = AP_ENV_RESP, .id = 1}, d;
	m.u.env_resp.count = AP_MAX_ENV_COUNT;
	m.u.env_resp.entries = (struct ap_bytes){ent, (uint32_t)(AP_MAX_ENV_COUNT * 7)};
	roundtrip(&m, &d);
	CHECK_EQ(d.u.env_resp.count, AP_MAX_ENV_COUNT);

	m.u.env_resp.count = AP_MAX_ENV_COUNT + 1;
	m.u.env_resp.entries.len = (uint32_t)off;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EMSGSIZE);
	/* Hand-built, and with the entries missing: the count alone fails. */
	hdr(buf, 8, AP_ENV_RESP, 0, 0, 1);
	put32(buf + AP_HEADER_SIZE, 0);
	put32(buf + AP_HEADER_SIZE + 4, AP_MAX_ENV_COUNT + 1);
	expect_decode(buf, AP_HEADER_SIZE + 8, -EMSGSIZE);
	put32(buf + AP_HEADER_SIZE + 4, UINT32_MAX);
	expect_decode(buf, AP_HEADER_SIZE + 8, -EMSGSIZE);
}

TEST(env_entry_limit)
{
	static uint8_t ent[4 + AP_MAX_STRING + 8];
	static char s[AP_MAX_STRING + 1];
	memset(s, 'v', sizeof(s));
	size_t off = 0;
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, s, AP_MAX_STRING + 1), -EMSGSIZE);
	CHECK_EQ(off, 0);
	/* Hand-build an entry one over the limit. */
	put32(ent, AP_MAX_STRING + 1);
	memcpy(ent + 4, s, AP_MAX_STRING + 1);
	struct ap_msg m = {.type = AP_ENV_RESP, .id = 1};
	m.u.env_resp.count = 1;
	m.u.env_resp.entries = (struct ap_bytes){ent, 4 + AP_MAX_STRING + 1};
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EMSGSIZE);
	hdr(buf, 8 + 4 + AP_MAX_STRING + 1, AP_ENV_RESP, 0, 0, 1);
	put32(buf + AP_HEADER_SIZE, 0);
	put32(buf + AP_HEADER_SIZE + 4, 1);
	memcpy(buf + AP_HEADER_SIZE + 8, ent, 4 + AP_MAX_STRING + 1);
	expect_decode(buf, AP_HEADER_SIZE + 8 + 4 + AP_MAX_STRING + 1, -EMSGSIZE);
}

TEST(env_count_mismatch)
{
	uint8_t ent[64];
	size_t off = 0;
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "A=1", 3), 0);
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "B=2", 3), 0);
	struct ap_msg m = {.type = AP_ENV_RESP, .id = 1};
	m.u.env_resp.entries = (struct ap_bytes){ent, (uint32_t)off};
	/* Fewer entries than count, more entries than count (trailing). */
	for (uint32_t count = 0; count <= 4; count++) {
		if (count == 2)
			continue;
		m.u.env_resp.count = count;
		CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
		hdr(buf, (uint32_t)(8 + off), AP_ENV_RESP, 0, 0, 1);
		put32(buf + AP_HEADER_SIZE, 0);
		put32(buf + AP_HEADER_SIZE + 4, count);
		memcpy(buf + AP_HEADER_SIZE + 8, ent, off);
		expect_decode(buf, AP_HEADER_SIZE + 8 + off, -EBADMSG);
	}
	/* An entry cut short: its length says 3, two bytes follow. */
	m.u.env_resp.count = 2;
	m.u.env_resp.entries.len = (uint32_t)off - 1;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* A partial length field at the end. */
	m.u.env_resp.count = 1;
	m.u.env_resp.entries.len = 7 + 2;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* Non-empty list with no pointer. */
	m.u.env_resp.entries = (struct ap_bytes){NULL, 7};
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
}

TEST(encode_nobufs_and_null_views)
{
	struct ap_msg m = {.type = AP_ERROR, .id = 0};
	m.u.error.message = B("hello");
	ssize_t n = ap_encoded_size(&m);
	CHECK_EQ(n, AP_HEADER_SIZE + 8 + 5);
	memset(buf, 0xee, sizeof(buf));
	for (size_t cap = 0; cap < (size_t)n; cap++)
		CHECK_EQ(ap_encode(&m, buf, cap), -ENOBUFS);
	/* Nothing was written past any of those caps. */
	CHECK_EQ(buf[0], 0xee);
	CHECK_EQ(ap_encode(&m, buf, (size_t)n), n);

	/* A non-empty view without a pointer is a caller bug. */
	m.u.error.message = (struct ap_bytes){NULL, 3};
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	struct ap_msg dm = {.type = AP_DATA};
	dm.u.data.data = (struct ap_bytes){NULL, 1};
	CHECK_EQ(ap_encoded_size(&dm), -EINVAL);
	/* A limit violation is reported before -ENOBUFS. */
	dm.u.data.data.len = AP_MAX_DATA + 1;
	CHECK_EQ(ap_encode(&dm, buf, 0), -EMSGSIZE);
}

/* ---- env helpers ------------------------------------------------------------ */

TEST(env_put_bounds)
{
	uint8_t ent[16];
	size_t off = 0;
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "ABCDEFGH", 8), 0); /* 12 */
	CHECK_EQ(off, 12);
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "X", 1), -ENOBUFS);
	CHECK_EQ(off, 12);
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "", 0), 0); /* exactly 16 */
	CHECK_EQ(off, 16);
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "", 0), -ENOBUFS);
	/* A bogus offset past cap, and one that would wrap. */
	off = 17;
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "", 0), -ENOBUFS);
	off = 4;
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "x", SIZE_MAX - 2), -EMSGSIZE);
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "ABCDEFGH", 9), -ENOBUFS);
	CHECK_EQ(ap_env_put(ent, sizeof(ent), &off, "ABCDEFGH", 8), 0);
	CHECK_EQ(off, 16);
}

TEST(env_next_is_defensive)
{
	/* A list ap_decode() would never hand out: walking stops, never
	 * reads past the end. */
	uint8_t raw[] = {0, 0, 0, 1, 'A', 0, 0, 0, 9, 'B'};
	struct ap_bytes list = {raw, sizeof(raw)};
	size_t off = 0;
	struct ap_bytes e;
	CHECK_EQ(ap_env_next(&list, &off, &e), 1);
	CHECK(bytes_eq(e, "A"));
	CHECK_EQ(ap_env_next(&list, &off, &e), 0);
	list.len = 7; /* cut inside a length field */
	off = 5;
	CHECK_EQ(ap_env_next(&list, &off, &e), 0);
	off = 100;
	CHECK_EQ(ap_env_next(&list, &off, &e), 0);
	struct ap_bytes empty = {NULL, 0};
	off = 0;
	CHECK_EQ(ap_env_next(&empty, &off, &e), 0);
}

/* ---- strings -------------------------------------------------------------- */

TEST(bytes_to_str)
{
	char s[8];
	struct ap_bytes b = B("abc");
	CHECK_EQ(ap_bytes_to_str(&b, s, sizeof(s)), 0);
	CHECK_STR(s, "abc");
	b = B("1234567");
	CHECK_EQ(ap_bytes_to_str(&b, s, sizeof(s)), 0);
	CHECK_STR(s, "1234567");
	b = B("12345678");
	CHECK_EQ(ap_bytes_to_str(&b, s, sizeof(s)), -ENAMETOOLONG);
	CHECK_EQ(ap_bytes_to_str(&b, s, 0), -ENAMETOOLONG);
	static const uint8_t nul[] = {'/', 'e', 't', 'c', 0, 'x'};
	b = (struct ap_bytes){nul, sizeof(nul)};
	CHECK_EQ(ap_bytes_to_str(&b, s, sizeof(s)), -EINVAL);
	b = (struct ap_bytes){NULL, 0};
	memset(s, 'z', sizeof(s));
	CHECK_EQ(ap_bytes_to_str(&b, s, 1), 0);
	CHECK_STR(s, "");
}

/* ---- file protocol ------------------------------------------------------ */

TEST(type_names)
{
	CHECK_STR(ap_type_name(AP_HELLO), "HELLO");
	CHECK_STR(ap_type_name(AP_HELLO_OK), "HELLO_OK");
	CHECK_STR(ap_type_name(AP_ERROR), "ERROR");
	CHECK_STR(ap_type_name(AP_ENV_REQ), "ENV_REQ");
	CHECK_STR(ap_type_name(AP_ENV_RESP), "ENV_RESP");
	CHECK_STR(ap_type_name(AP_FILE_REQ), "FILE_REQ");
	CHECK_STR(ap_type_name(AP_FILE_RESP), "FILE_RESP");
	CHECK_STR(ap_type_name(AP_CONNECT), "CONNECT");
	CHECK_STR(ap_type_name(AP_CONNECT_RESP), "CONNECT_RESP");
	CHECK_STR(ap_type_name(AP_DATA), "DATA");
	CHECK_STR(ap_type_name(AP_CREDIT), "CREDIT");
	CHECK_STR(ap_type_name(AP_CLOSE), "CLOSE");
	CHECK_STR(ap_type_name(AP_PING), "PING");
	CHECK_STR(ap_type_name(AP_PONG), "PONG");
	CHECK_STR(ap_type_name(AP_FS_REQ), "FS_REQ");
	CHECK_STR(ap_type_name(AP_FS_RESP), "FS_RESP");
	CHECK_STR(ap_type_name(AP_PORT_SUB), "PORT_SUB");
	CHECK_STR(ap_type_name(AP_PORT_UNSUB), "PORT_UNSUB");
	CHECK_STR(ap_type_name(AP_PORT_RESP), "PORT_RESP");
	CHECK_STR(ap_type_name(AP_ACCEPT), "ACCEPT");
	CHECK_STR(ap_type_name(0), "?");
	CHECK_STR(ap_type_name(AP_TYPE_LAST + 1), "?");
	CHECK_STR(ap_type_name(-1), "?");
	CHECK_STR(ap_type_name(256 + AP_DATA), "?");
}

/* ---- sockaddr conversion --------------------------------------------------- */

TEST(sockaddr_ipv4)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8080)};
	CHECK_EQ(inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr), 1);
	struct ap_addr a;
	memset(&a, 0xff, sizeof(a));
	CHECK_EQ(ap_addr_from_sockaddr((struct sockaddr *)&sin, sizeof(sin), &a), 0);
	CHECK_EQ(a.family, 4);
	CHECK_EQ(a.port, 8080);
	CHECK_EQ(a.addr[0], 10);
	CHECK_EQ(a.addr[3], 3);
	for (int i = 4; i < 16; i++)
		CHECK_EQ(a.addr[i], 0);

	/* It encodes (canonical padding) and converts back. */
	struct ap_msg m = {.type = AP_CONNECT, .u.connect = {.proto = AP_PROTO_TCP, .dst = a}};
	CHECK(ap_encode(&m, buf, sizeof(buf)) > 0);
	struct sockaddr_storage ss;
	memset(&ss, 0xff, sizeof(ss));
	CHECK_EQ(ap_addr_to_sockaddr(&a, (struct sockaddr *)&ss, sizeof(ss)), sizeof(sin));
	struct sockaddr_in *out = (struct sockaddr_in *)&ss;
	CHECK_EQ(out->sin_family, AF_INET);
	CHECK_EQ(ntohs(out->sin_port), 8080);
	CHECK_EQ(out->sin_addr.s_addr, sin.sin_addr.s_addr);
	CHECK(memcmp(out->sin_zero, "\0\0\0\0\0\0\0\0", 8) == 0);

	CHECK_EQ(ap_addr_to_sockaddr(&a, (struct sockaddr *)&ss, sizeof(sin) - 1), -EINVAL);
	CHECK_EQ(ap_addr_from_sockaddr((struct sockaddr *)&sin, sizeof(sin) - 1, &a), -EINVAL);
}

TEST(sockaddr_ipv6)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6,
	                            .sin6_port = htons(443),
	                            .sin6_scope_id = 3,
	                            .sin6_flowinfo = 7};
	CHECK_EQ(inet_pton(AF_INET6, "2001:db8::1:2", &sin6.sin6_addr), 1);
	struct ap_addr a;
	CHECK_EQ(ap_addr_from_sockaddr((struct sockaddr *)&sin6, sizeof(sin6), &a), 0);
	CHECK_EQ(a.family, 6);
	CHECK_EQ(a.port, 443);
	CHECK(memcmp(a.addr, &sin6.sin6_addr, 16) == 0);

	struct sockaddr_storage ss;
	memset(&ss, 0xff, sizeof(ss));
	CHECK_EQ(ap_addr_to_sockaddr(&a, (struct sockaddr *)&ss, sizeof(ss)), sizeof(sin6));
	struct sockaddr_in6 *out = (struct sockaddr_in6 *)&ss;
	CHECK_EQ(out->sin6_family, AF_INET6);
	CHECK_EQ(ntohs(out->sin6_port), 443);
	CHECK(memcmp(&out->sin6_addr, &sin6.sin6_addr, 16) == 0);
	/* Scope and flow info do not travel. */
	CHECK_EQ(out->sin6_scope_id, 0);
	CHECK_EQ(out->sin6_flowinfo, 0);

	CHECK_EQ(ap_addr_to_sockaddr(&a, (struct sockaddr *)&ss, sizeof(sin6) - 1), -EINVAL);
	CHECK_EQ(ap_addr_from_sockaddr((struct sockaddr *)&sin6, sizeof(struct sockaddr_in), &a),
	         -EINVAL);
}

TEST(sockaddr_rejects)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct ap_addr a = {0};
	CHECK_EQ(ap_addr_from_sockaddr((struct sockaddr *)&sun, sizeof(sun), &a), -EAFNOSUPPORT);
	CHECK_EQ(ap_addr_from_sockaddr((struct sockaddr *)&sun, 1, &a), -EINVAL);
	CHECK_EQ(ap_addr_from_sockaddr((struct sockaddr *)&sun, 0, &a), -EINVAL);
	struct sockaddr_storage ss;
	static const uint8_t bad[] = {0, 2, 5, 10, 255};
	for (size_t i = 0; i < sizeof(bad); i++) {
		a.family = bad[i];
		CHECK_EQ(ap_addr_to_sockaddr(&a, (struct sockaddr *)&ss, sizeof(ss)), -EINVAL);
	}
}

TEST_MAIN()
