/* Unit tests of agentproto's later frames: remote file operations
 * (AP_FS_REQ/AP_FS_RESP) and incoming traffic (AP_PORT_SUB, AP_PORT_UNSUB,
 * AP_PORT_RESP, AP_ACCEPT): round trips and rejections. */
#include "tests/unit/agentproto_test.h"

#include <errno.h>

TEST(roundtrip_port_sub)
{
	struct ap_msg m = {.type = AP_PORT_SUB, .id = 7}, d;
	m.u.port_sub.port = 8080;
	m.u.port_sub.mode = AP_SUB_MIRROR;
	CHECK_EQ(roundtrip(&m, &d), AP_HEADER_SIZE + 9);
	CHECK_EQ(d.u.port_sub.port, 8080);
	CHECK_EQ(d.u.port_sub.mode, AP_SUB_MIRROR);
	CHECK_EQ(d.u.port_sub.filter_op, AP_FILTER_NONE);
	CHECK_EQ(d.u.port_sub.rule_count, 0);

	m.u.port_sub.mode = AP_SUB_STEAL;
	m.u.port_sub.window = 4096;
	m.u.port_sub.filter_op = AP_FILTER_ALL_OF;
	m.u.port_sub.rule_count = 2;
	m.u.port_sub.rules[0] = (struct ap_filter_rule){AP_FILTER_HEADER, B("^x-user: alice$")};
	m.u.port_sub.rules[1] = (struct ap_filter_rule){AP_FILTER_METHOD, B("GET")};
	roundtrip(&m, &d);
	CHECK_EQ(d.u.port_sub.window, 4096);
	CHECK_EQ(d.u.port_sub.filter_op, AP_FILTER_ALL_OF);
	CHECK_EQ(d.u.port_sub.rule_count, 2);
	CHECK_EQ(d.u.port_sub.rules[0].kind, AP_FILTER_HEADER);
	CHECK(bytes_eq(d.u.port_sub.rules[0].pattern, "^x-user: alice$"));
	CHECK(bytes_eq(d.u.port_sub.rules[1].pattern, "GET"));
	CHECK_EQ(d.u.port_sub.rules[2].kind, 0);

	/* The full rule set at its bounds fits a frame and round-trips. */
	static char pat[AP_MAX_FILTER_PATTERN + 1];
	memset(pat, 'a', sizeof(pat));
	m.u.port_sub.rule_count = AP_MAX_FILTER_RULES;
	for (unsigned i = 0; i < AP_MAX_FILTER_RULES; i++)
		m.u.port_sub.rules[i] = (struct ap_filter_rule){
		        AP_FILTER_PATH, {(const uint8_t *)pat, AP_MAX_FILTER_PATTERN}};
	roundtrip(&m, &d);
	CHECK_EQ(d.u.port_sub.rule_count, AP_MAX_FILTER_RULES);
	m.u.port_sub.rules[3].pattern.len = AP_MAX_FILTER_PATTERN + 1;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EMSGSIZE);
}

TEST(reject_port_sub)
{
	struct ap_msg m = {.type = AP_PORT_SUB, .id = 1};
	m.u.port_sub.port = 80;
	m.u.port_sub.mode = AP_SUB_STEAL;
	CHECK(ap_encode(&m, buf, sizeof(buf)) > 0);
	m.u.port_sub.port = 0;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.port_sub.port = 80;
	m.u.port_sub.mode = 3;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.port_sub.mode = AP_SUB_STEAL;
	/* A filter op without rules, rules without an op, unknown ops,
	 * kinds, empty patterns and NULs are all refused. */
	m.u.port_sub.filter_op = AP_FILTER_ANY_OF;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.port_sub.filter_op = AP_FILTER_NONE;
	m.u.port_sub.rule_count = 1;
	m.u.port_sub.rules[0] = (struct ap_filter_rule){AP_FILTER_PATH, B("/x")};
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.port_sub.filter_op = 3;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.port_sub.filter_op = AP_FILTER_ALL_OF;
	CHECK(ap_encode(&m, buf, sizeof(buf)) > 0);
	m.u.port_sub.rules[0].kind = 4;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.port_sub.rules[0] = (struct ap_filter_rule){AP_FILTER_PATH, {(const uint8_t *)"", 0}};
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.port_sub.rules[0] =
	        (struct ap_filter_rule){AP_FILTER_PATH, {(const uint8_t *)"a\0b", 3}};
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.port_sub.rule_count = AP_MAX_FILTER_RULES + 1;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EMSGSIZE);

	/* On the wire: a count past the limit is refused before any rule
	 * is read, and a rule running past the payload is malformed. */
	m.u.port_sub.rule_count = 1;
	m.u.port_sub.rules[0] = (struct ap_filter_rule){AP_FILTER_PATH, B("/x")};
	ssize_t n = ap_encode(&m, buf, sizeof(buf));
	CHECK(n > 0);
	buf[AP_HEADER_SIZE + 8] = AP_MAX_FILTER_RULES + 1;
	expect_decode(buf, (size_t)n, -EMSGSIZE);
	buf[AP_HEADER_SIZE + 8] = 2;
	expect_decode(buf, (size_t)n, -EBADMSG);
	buf[AP_HEADER_SIZE + 8] = 1;
	put32(buf + AP_HEADER_SIZE + 10, AP_MAX_FILTER_PATTERN + 1);
	expect_decode(buf, (size_t)n, -EMSGSIZE);
	put32(buf + AP_HEADER_SIZE + 10, 3);
	expect_decode(buf, (size_t)n, -EBADMSG);
}

TEST(roundtrip_port_unsub_resp_accept)
{
	struct ap_msg m = {.type = AP_PORT_UNSUB, .id = 2, .u.port_unsub.port = 443}, d;
	CHECK_EQ(roundtrip(&m, &d), AP_HEADER_SIZE + 2);
	CHECK_EQ(d.u.port_unsub.port, 443);
	m.u.port_unsub.port = 0;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);

	struct ap_msg r = {.type = AP_PORT_RESP, .id = 2, .u.port_resp.err = EOPNOTSUPP};
	CHECK_EQ(roundtrip(&r, &d), AP_HEADER_SIZE + 4);
	CHECK_EQ(d.u.port_resp.err, EOPNOTSUPP);

	struct ap_msg a = {.type = AP_ACCEPT, .id = AP_STREAM_AGENT_BIT | 5};
	a.u.accept.port = 80;
	a.u.accept.mode = AP_SUB_MIRROR;
	a.u.accept.peer = v4(10, 0, 0, 9, 40000);
	a.u.accept.local = v6_loopback(80);
	a.u.accept.window = AP_DEFAULT_WINDOW;
	CHECK_EQ(roundtrip(&a, &d), AP_HEADER_SIZE + 45);
	CHECK_EQ(d.u.accept.mode, AP_SUB_MIRROR);
	CHECK_EQ(d.u.accept.peer.port, 40000);
	CHECK_EQ(d.u.accept.local.family, 6);
	CHECK_EQ(d.u.accept.window, AP_DEFAULT_WINDOW);
	/* Only the agent opens these: a client-side id is malformed. */
	a.id = 5;
	CHECK_EQ(ap_encode(&a, buf, sizeof(buf)), -EINVAL);
	a.id = AP_STREAM_AGENT_BIT | 5;
	a.u.accept.mode = 0;
	CHECK_EQ(ap_encode(&a, buf, sizeof(buf)), -EINVAL);
	a.u.accept.mode = AP_SUB_STEAL;
	a.u.accept.peer.family = 5;
	CHECK_EQ(ap_encode(&a, buf, sizeof(buf)), -EINVAL);
}

TEST(roundtrip_fs_requests)
{
	struct ap_msg m = {.type = AP_FS_REQ, .id = 3}, d;
	m.u.fs_req.op = AP_FS_RENAME;
	m.u.fs_req.flags = AP_FS_RENAME_NOREPLACE;
	m.u.fs_req.path = B("/a/from");
	m.u.fs_req.path2 = B("/b/to");
	/* op + flags + two strings */
	CHECK_EQ(roundtrip(&m, &d), AP_HEADER_SIZE + 1 + 4 + 4 + 7 + 4 + 5);
	CHECK(bytes_eq(d.u.fs_req.path2, "/b/to"));
	CHECK_EQ(d.u.fs_req.flags, AP_FS_RENAME_NOREPLACE);

	m = (struct ap_msg){.type = AP_FS_REQ, .id = 4};
	m.u.fs_req.op = AP_FS_READ;
	m.u.fs_req.handle = 0x1234;
	m.u.fs_req.offset = (10ull << 30) - 1;
	m.u.fs_req.count = AP_MAX_DATA;
	CHECK_EQ(roundtrip(&m, &d), AP_HEADER_SIZE + 1 + 4 + 8 + 4);
	CHECK_EQ(d.u.fs_req.offset, (10ull << 30) - 1);
	CHECK_EQ(d.u.fs_req.count, AP_MAX_DATA);

	/* Fields an op does not carry, and out-of-range values, are refused
	 * by the encoder as the decoder would refuse them. */
	m.u.fs_req.path = B("/x");
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.fs_req.path = B("");
	m.u.fs_req.count = AP_MAX_DATA + 1;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.fs_req.count = 0;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.fs_req.count = 1;
	m.u.fs_req.offset = AP_FS_MAX_OFFSET + 1;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = (struct ap_msg){.type = AP_FS_REQ};
	m.u.fs_req.op = AP_FS_OPEN;
	m.u.fs_req.path = B("/x");
	m.u.fs_req.flags = AP_FS_O_TRUNC; /* without WRITE */
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.fs_req.flags = AP_FS_O_WRITE | AP_FS_O_DIRECTORY;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.fs_req.flags = AP_FS_O_WRITE | AP_FS_O_CREAT;
	m.u.fs_req.mode = 010000;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.fs_req.op = AP_FS_OP_LAST + 1;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	CHECK_STR(ap_fs_op_name(AP_FS_READDIR), "READDIR");
	CHECK_STR(ap_fs_op_name(AP_FS_OP_LAST + 1), "?");
	CHECK_STR(ap_fs_op_name(-1), "?");
}

TEST(roundtrip_fs_responses)
{
	struct ap_msg m = {.type = AP_FS_RESP, .id = 5}, d;
	m.u.fs_resp.op = AP_FS_OPEN;
	m.u.fs_resp.handle = 77;
	m.u.fs_resp.st = (struct ap_fs_stat){
	        .ino = 1, .mode = 0100600, .size = UINT64_MAX, .ctime = {-5, 999999999}};
	roundtrip(&m, &d);
	CHECK_EQ(d.u.fs_resp.handle, 77);
	CHECK_EQ(d.u.fs_resp.st.size, UINT64_MAX);
	CHECK_EQ(d.u.fs_resp.st.ctime.sec, -5);
	m.u.fs_resp.st.ctime.nsec = 1000000000;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);

	/* A failure carries op and err only. */
	m = (struct ap_msg){.type = AP_FS_RESP, .id = 6};
	m.u.fs_resp.op = AP_FS_OPEN;
	m.u.fs_resp.err = ENOTDIR;
	CHECK_EQ(roundtrip(&m, &d), AP_HEADER_SIZE + 1 + 4);
	m.u.fs_resp.handle = 1;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.fs_resp.handle = 0;
	m.u.fs_resp.err = -1;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);

	/* A directory page: exactly count entries, names without '/'. */
	uint8_t list[128];
	size_t off = 0;
	CHECK_EQ(ap_dirent_put(list, sizeof(list), &off, 9, 4, "..", 2), 0);
	CHECK_EQ(ap_dirent_put(list, sizeof(list), &off, 10, 8, "a.txt", 5), 0);
	CHECK_EQ(ap_dirent_put(list, sizeof(list), &off, 1, 8, "a/b", 3), -EINVAL);
	CHECK_EQ(ap_dirent_put(list, sizeof(list), &off, 1, 8, "", 0), -EINVAL);
	CHECK_EQ(ap_dirent_put(list, 20, &(size_t){10}, 1, 8, "abc", 3), -ENOBUFS);
	m = (struct ap_msg){.type = AP_FS_RESP, .id = 7};
	m.u.fs_resp.op = AP_FS_READDIR;
	m.u.fs_resp.cookie = 123;
	m.u.fs_resp.eof = 1;
	m.u.fs_resp.count = 2;
	m.u.fs_resp.data = (struct ap_bytes){list, (uint32_t)off};
	roundtrip(&m, &d);
	struct ap_dirent e;
	size_t w = 0;
	CHECK_EQ(ap_dirent_next(&d.u.fs_resp.data, &w, &e), 1);
	CHECK(bytes_eq(e.name, ".."));
	CHECK_EQ(ap_dirent_next(&d.u.fs_resp.data, &w, &e), 1);
	CHECK(bytes_eq(e.name, "a.txt"));
	CHECK_EQ(e.ino, 10);
	CHECK_EQ(e.type, 8);
	CHECK_EQ(ap_dirent_next(&d.u.fs_resp.data, &w, &e), 0);
	m.u.fs_resp.count = 3;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.fs_resp.count = 2;
	m.u.fs_resp.eof = 2;
	CHECK_EQ(ap_encode(&m, buf, sizeof(buf)), -EINVAL);
}

/* OPEN_IF carries the version the write-back expects; FSYNC answers
 * with the version written. */
TEST(roundtrip_fs_open_if_and_fsync)
{
	struct ap_msg m = {.type = AP_FS_REQ, .id = 8}, d;
	m.u.fs_req.op = AP_FS_OPEN_IF;
	m.u.fs_req.st = (struct ap_fs_stat){.dev = 0x801,
	                                    .ino = 1ull << 40,
	                                    .size = 12,
	                                    .mtime = {1700000000, 123456789},
	                                    .ctime = {-1, 999999999}};
	m.u.fs_req.path = B("/srv/a.txt");
	/* op + stat + one string */
	CHECK_EQ(roundtrip(&m, &d), AP_HEADER_SIZE + 1 + 104 + 4 + 10);
	CHECK_EQ(d.u.fs_req.st.dev, 0x801);
	CHECK_EQ(d.u.fs_req.st.ino, 1ull << 40);
	CHECK_EQ(d.u.fs_req.st.size, 12);
	CHECK_EQ(d.u.fs_req.st.mtime.nsec, 123456789);
	CHECK_EQ(d.u.fs_req.st.ctime.sec, -1);
	CHECK(bytes_eq(d.u.fs_req.path, "/srv/a.txt"));
	CHECK_STR(ap_fs_op_name(AP_FS_OPEN_IF), "OPEN_IF");

	/* Only the version's fields, valid times, no flags. */
	struct ap_msg bad = m;
	bad.u.fs_req.st.mode = 0100644;
	CHECK_EQ(ap_encode(&bad, buf, sizeof(buf)), -EINVAL);
	bad = m;
	bad.u.fs_req.st.atime.sec = 1;
	CHECK_EQ(ap_encode(&bad, buf, sizeof(buf)), -EINVAL);
	bad = m;
	bad.u.fs_req.st.mtime.nsec = 1000000000;
	CHECK_EQ(ap_encode(&bad, buf, sizeof(buf)), -EINVAL);
	bad = m;
	bad.u.fs_req.flags = AP_FS_O_WRITE;
	CHECK_EQ(ap_encode(&bad, buf, sizeof(buf)), -EINVAL);
	/* Other ops carry no stat. */
	bad = m;
	bad.u.fs_req.op = AP_FS_STAT;
	CHECK_EQ(ap_encode(&bad, buf, sizeof(buf)), -EINVAL);

	/* From the wire: a mode inside the version is refused too. */
	ssize_t n = ap_encode(&m, buf, sizeof(buf));
	CHECK(n > 0);
	buf[AP_HEADER_SIZE + 1 + 16 + 3] = 1; /* u32 mode after dev, ino */
	expect_decode(buf, (size_t)n, -EBADMSG);

	struct ap_msg r = {.type = AP_FS_RESP, .id = 9};
	r.u.fs_resp.op = AP_FS_FSYNC;
	r.u.fs_resp.st = (struct ap_fs_stat){.ino = 5, .size = 3, .mtime = {1, 2}};
	CHECK_EQ(roundtrip(&r, &d), AP_HEADER_SIZE + 1 + 4 + 104);
	CHECK_EQ(d.u.fs_resp.st.ino, 5);
	CHECK_EQ(d.u.fs_resp.st.mtime.nsec, 2);
	/* The conflict answers carry nothing but err. */
	r = (struct ap_msg){.type = AP_FS_RESP, .id = 10};
	r.u.fs_resp.op = AP_FS_OPEN_IF;
	r.u.fs_resp.err = ESTALE;
	CHECK_EQ(roundtrip(&r, &d), AP_HEADER_SIZE + 1 + 4);
	CHECK_EQ(d.u.fs_resp.err, ESTALE);
	r.u.fs_resp.st.ino = 1;
	CHECK_EQ(ap_encode(&r, buf, sizeof(buf)), -EINVAL);
}

TEST(reject_fs_frames)
{
	/* An unknown op, from the wire. */
	uint8_t f[AP_HEADER_SIZE + 1];
	hdr(f, 1, AP_FS_REQ, 0, 0, 0);
	f[AP_HEADER_SIZE] = AP_FS_OP_LAST + 1;
	expect_decode(f, sizeof(f), -EBADMSG);
	f[AP_HEADER_SIZE] = 0;
	expect_decode(f, sizeof(f), -EBADMSG);
	/* Oversized from the header alone. */
	hdr(f, AP_MAX_DATA + 64, AP_FS_REQ, 0, 0, 0);
	expect_decode(f, AP_HEADER_SIZE, -EMSGSIZE);
	hdr(f, AP_MAX_DATA + 64, AP_FS_RESP, 0, 0, 0);
	expect_decode(f, AP_HEADER_SIZE, -EMSGSIZE);
	hdr(f, 4, AP_FS_RESP, 0, 0, 0);
	expect_decode(f, AP_HEADER_SIZE, -EBADMSG);
}

TEST_MAIN()
