/* RFC 6455 framing (k8s/ws.c): the RFC's own examples, 7/16/64-bit
 * lengths, masking in pieces, fragmentation with pings in between, close
 * codes, size limits and every protocol error, each stream fed at every
 * split point. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/util.h"
#include "k8s/internal.h"
#include "k8s/portforward.h"
#include "k8s/ws.h"
#include "tests/unit/test.h"

static const uint8_t rfc_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Feeds a stream in chunks of the given sizes (the last one repeats) and
 * renders the events: "M<op>:<len>:<first bytes>;", "PING:<data>;",
 * "PONG:<data>;", "CLOSE:<code>:<reason>;", and "ERR<errno>/<code>" on a
 * failure. */
struct run {
	char log[8192];
	int r;
};

static void on_event(struct run *o, const struct ws_event *ev)
{
	/* First bytes of the payload, NULs shown as '.'. */
	char data[64];
	size_t k = ev->len < 8 || ev->type != WS_EV_MESSAGE ? ev->len : 8;
	if (k > sizeof(data) - 1)
		k = sizeof(data) - 1;
	for (size_t i = 0; i < k; i++)
		data[i] = ev->data[i] ? (char)ev->data[i] : '.';
	data[k] = '\0';
	size_t l = strlen(o->log);
	char *p = o->log + l;
	size_t cap = sizeof(o->log) - l;
	switch (ev->type) {
	case WS_EV_MESSAGE:
		snprintf(p, cap, "M%d:%zu:%s;", (int)ev->opcode, ev->len, data);
		break;
	case WS_EV_PING:
		snprintf(p, cap, "PING%zu:%s;", ev->len, data);
		break;
	case WS_EV_PONG:
		snprintf(p, cap, "PONG%zu:%s;", ev->len, data);
		break;
	case WS_EV_CLOSE:
		snprintf(p, cap, "CLOSE:%u:%s;", ev->close_code, data);
		break;
	}
}

static struct run feed_chunks(enum ws_role role, size_t max, const uint8_t *s, size_t n,
                              const size_t *chunks, size_t nchunks)
{
	struct run o = {.r = 0};
	struct ws_decoder d;
	ws_decoder_init(&d, role, max);
	size_t off = 0, ci = 0;
	while (off < n) {
		size_t c = chunks[ci < nchunks ? ci : nchunks - 1];
		ci++;
		if (c > n - off)
			c = n - off;
		/* A private copy exactly c bytes long, so ASan sees overreads. */
		uint8_t *piece = malloc(c ? c : 1);
		CHECK(piece);
		memcpy(piece, s + off, c);
		size_t used = 0;
		while (used < c || c == 0) {
			struct ws_event ev;
			size_t k = 0;
			int r = ws_decoder_feed(&d, piece + used, c - used, &k, &ev);
			CHECK(k <= c - used);
			used += k;
			if (r < 0) {
				size_t l = strlen(o.log);
				snprintf(o.log + l, sizeof(o.log) - l, "ERR%d/%u", -r, d.failure);
				o.r = r;
				free(piece);
				ws_decoder_free(&d);
				return o;
			}
			if (r == 0) {
				CHECK_EQ(used, c);
				break;
			}
			on_event(&o, &ev);
		}
		free(piece);
		off += c;
	}
	ws_decoder_free(&d);
	return o;
}

static struct run feed_all(enum ws_role role, size_t max, const uint8_t *s, size_t n)
{
	size_t one = n ? n : 1;
	return feed_chunks(role, max, s, n, &one, 1);
}

/* The same log whatever the split: whole, byte by byte, every two-way and
 * (for short streams) every three-way split. */
static void check_every_split(enum ws_role role, size_t max, const uint8_t *s, size_t n,
                              const char *want)
{
	struct run o = feed_all(role, max, s, n);
	if (strcmp(o.log, want) != 0)
		fprintf(stderr, "whole: got %s want %s\n", o.log, want);
	CHECK_STR(o.log, want);
	size_t one = 1;
	o = feed_chunks(role, max, s, n, &one, 1);
	CHECK_STR(o.log, want);
	for (size_t a = 0; a <= n; a++) {
		size_t ch[2] = {a, n};
		o = feed_chunks(role, max, s, n, ch, 2);
		CHECK_STR(o.log, want);
		if (n > 64)
			continue;
		for (size_t b = 0; a + b <= n; b++) {
			size_t ch3[3] = {a, b, n};
			o = feed_chunks(role, max, s, n, ch3, 3);
			CHECK_STR(o.log, want);
		}
	}
}

TEST(rfc_examples)
{
	/* RFC 6455 §5.7. */
	static const uint8_t unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
	static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
	                                 0x7f, 0x9f, 0x4d, 0x51, 0x58};
	static const uint8_t frag[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
	static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
	uint8_t out[64];
	size_t n = 0;
	CHECK_EQ(ws_encode(out, sizeof(out), WS_OP_TEXT, true, "Hello", 5, NULL, &n), 0);
	CHECK_EQ(n, sizeof(unmasked));
	CHECK(!memcmp(out, unmasked, n));
	CHECK_EQ(ws_encode(out, sizeof(out), WS_OP_TEXT, true, "Hello", 5, rfc_mask, &n), 0);
	CHECK_EQ(n, sizeof(masked));
	CHECK(!memcmp(out, masked, n));
	check_every_split(WS_ROLE_CLIENT, 0, unmasked, sizeof(unmasked), "M1:5:Hello;");
	check_every_split(WS_ROLE_SERVER, 0, masked, sizeof(masked), "M1:5:Hello;");
	check_every_split(WS_ROLE_CLIENT, 0, frag, sizeof(frag), "M1:5:Hello;");
	check_every_split(WS_ROLE_CLIENT, 0, ping, sizeof(ping), "PING5:Hello;");
}

TEST(length_forms)
{
	static const struct {
		uint64_t len;
		size_t hl;
		uint8_t b1;
	} cases[] = {{0, 2, 0},       {125, 2, 125},    {126, 4, 126},
	             {65535, 4, 126}, {65536, 10, 127}, {(1ull << 32) + 5, 10, 127}};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t h[WS_HEADER_MAX];
		size_t hl = ws_frame_header(h, WS_OP_BINARY, true, cases[i].len, NULL);
		CHECK_EQ(hl, cases[i].hl);
		CHECK_EQ(h[0], 0x82);
		CHECK_EQ(h[1], cases[i].b1);
		uint64_t got = cases[i].b1;
		if (hl == 4)
			got = (uint64_t)h[2] << 8 | h[3];
		if (hl == 10) {
			got = 0;
			for (int k = 2; k < 10; k++)
				got = got << 8 | h[k];
		}
		CHECK_EQ(got, cases[i].len);
		CHECK_EQ(ws_frame_header(h, WS_OP_BINARY, false, cases[i].len, rfc_mask), hl + 4);
		CHECK_EQ(h[0], 0x02);
		CHECK_EQ(h[1], cases[i].b1 | 0x80);
		CHECK(!memcmp(h + hl, rfc_mask, 4));
	}
}

/* Encoder output round-trips through a server-role decoder, for each
 * length form and around each boundary. */
TEST(masked_round_trip)
{
	static const size_t lens[] = {0, 1, 7, 8, 9, 124, 125, 126, 127, 1000, 65535, 65536, 70001};
	size_t cap = 70001 + WS_HEADER_MAX;
	uint8_t *payload = malloc(cap), *frame = malloc(cap);
	CHECK(payload && frame);
	for (size_t i = 0; i < cap; i++)
		payload[i] = (uint8_t)(i * 131 + 7);
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		uint8_t mask[4] = {(uint8_t)i, 0xa5, 0x5a, (uint8_t)(0xff - i)};
		size_t n = 0;
		CHECK_EQ(ws_encode(frame, cap, WS_OP_BINARY, true, payload, lens[i], mask, &n), 0);
		struct ws_decoder d;
		ws_decoder_init(&d, WS_ROLE_SERVER, 1 << 20);
		/* Fed in 4097-byte pieces so the mask offset crosses words. */
		size_t off = 0;
		bool got = false;
		while (off < n || (!got && off == n)) {
			size_t c = n - off < 4097 ? n - off : 4097, k = 0;
			struct ws_event ev;
			int r = ws_decoder_feed(&d, frame + off, c, &k, &ev);
			CHECK(r >= 0);
			off += k;
			if (r == 1) {
				CHECK_EQ(ev.type, WS_EV_MESSAGE);
				CHECK_EQ(ev.len, lens[i]);
				CHECK(lens[i] == 0 || !memcmp(ev.data, payload, lens[i]));
				got = true;
			}
			if (r == 0 && off == n)
				break;
		}
		CHECK(got);
		ws_decoder_free(&d);
	}
	CHECK_EQ(ws_encode(frame, 10, WS_OP_BINARY, true, payload, 9, rfc_mask, &(size_t){0}),
	         -ENOBUFS);
	free(payload);
	free(frame);
}

TEST(mask_in_pieces)
{
	uint8_t whole[100], part[100];
	for (size_t i = 0; i < sizeof(whole); i++)
		whole[i] = part[i] = (uint8_t)(i * 7);
	ws_mask(whole, sizeof(whole), rfc_mask, 0);
	for (size_t a = 0; a <= sizeof(part); a++) {
		uint8_t p[100];
		memcpy(p, part, sizeof(p));
		ws_mask(p, a, rfc_mask, 0);
		ws_mask(p + a, sizeof(p) - a, rfc_mask, a);
		CHECK(!memcmp(p, whole, sizeof(p)));
	}
	/* Masking twice is the identity. */
	ws_mask(whole, sizeof(whole), rfc_mask, 0);
	CHECK(!memcmp(whole, part, sizeof(part)));
}

static size_t put(uint8_t *dst, enum ws_opcode op, bool fin, const char *s, size_t n)
{
	size_t k = 0;
	CHECK_EQ(ws_encode(dst, 4096, op, fin, s, n, NULL, &k), 0);
	return k;
}

TEST(fragments_with_control_frames_between)
{
	uint8_t s[4096];
	size_t n = 0;
	n += put(s + n, WS_OP_BINARY, false,
	         "\x00"
	         "ab",
	         3);
	n += put(s + n, WS_OP_PING, true, "p1", 2);
	n += put(s + n, WS_OP_CONT, false, "", 0);
	n += put(s + n, WS_OP_PONG, true, "", 0);
	n += put(s + n, WS_OP_CONT, false, "cd", 2);
	n += put(s + n, WS_OP_PING, true, "p2", 2);
	n += put(s + n, WS_OP_CONT, true, "ef", 2);
	n += put(s + n, WS_OP_TEXT, true, "h\xc3\xa9", 3);
	n += put(s + n, WS_OP_BINARY, true, "", 0);
	uint8_t cl[WS_CONTROL_MAX];
	size_t cn = ws_close_payload(cl, 1000, "bye");
	n += put(s + n, WS_OP_CLOSE, true, (const char *)cl, cn);
	check_every_split(
	        WS_ROLE_CLIENT, 0, s, n,
	        "PING2:p1;PONG0:;PING2:p2;M2:7:.abcdef;M1:3:h\xc3\xa9;M2:0:;CLOSE:1000:bye;");
}

TEST(close_codes)
{
	struct {
		const uint8_t *p;
		size_t n;
		const char *want;
	} cases[] = {
	        {(const uint8_t *)"", 0, "CLOSE:1005:;"},
	        {(const uint8_t *)"\x03\xe8", 2, "CLOSE:1000:;"},
	        {(const uint8_t *)"\x03\xe9gone", 6, "CLOSE:1001:gone;"},
	        {(const uint8_t *)"\x0b\xb8", 2, "CLOSE:3000:;"},
	        {(const uint8_t *)"\x13\x87", 2, "CLOSE:4999:;"},
	        {(const uint8_t *)"\x03", 1, "ERR71/1002"},
	        {(const uint8_t *)"\x03\xed", 2, "ERR71/1002"}, /* 1005 on the wire */
	        {(const uint8_t *)"\x03\xee", 2, "ERR71/1002"}, /* 1006 */
	        {(const uint8_t *)"\x03\xe7", 2, "ERR71/1002"}, /* 999 */
	        {(const uint8_t *)"\x0b\xb7", 2, "ERR71/1002"}, /* 2999 */
	        {(const uint8_t *)"\x13\x88", 2, "ERR71/1002"}, /* 5000 */
	        {(const uint8_t *)"\x03\xe8\xff", 3, "ERR71/1007"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t s[256];
		size_t n = put(s, WS_OP_CLOSE, true, (const char *)cases[i].p, cases[i].n);
		check_every_split(WS_ROLE_CLIENT, 0, s, n, cases[i].want);
	}
	/* Nothing may follow a close. */
	uint8_t s[64];
	size_t n = put(s, WS_OP_CLOSE, true, "\x03\xe8", 2);
	n += put(s + n, WS_OP_BINARY, true, "x", 1);
	CHECK_STR(feed_all(WS_ROLE_CLIENT, 0, s, n).log, "CLOSE:1000:;ERR71/1002");
	/* The reason is cut to fit, never inside a UTF-8 sequence. */
	char reason[200];
	memset(reason, 'a', sizeof(reason));
	memcpy(reason + 122, "\xc3\xa9", 2);
	reason[199] = '\0';
	uint8_t cl[WS_CONTROL_MAX];
	CHECK_EQ(ws_close_payload(cl, 1000, reason), 124);
	CHECK(ws_utf8_valid(cl + 2, 122));
	CHECK_EQ(ws_close_payload(cl, 1001, NULL), 2);
}

TEST(protocol_errors)
{
	static const struct {
		const char *s;
		size_t n;
		enum ws_role role;
		const char *want;
	} cases[] = {
	        {"\xc2\x00", 2, WS_ROLE_CLIENT, "ERR71/1002"},         /* RSV1 */
	        {"\x83\x00", 2, WS_ROLE_CLIENT, "ERR71/1002"},         /* opcode 3 */
	        {"\x8b\x00", 2, WS_ROLE_CLIENT, "ERR71/1002"},         /* opcode 0xb */
	        {"\x09\x00", 2, WS_ROLE_CLIENT, "ERR71/1002"},         /* fragmented ping */
	        {"\x89\x7e\x00\x7e", 4, WS_ROLE_CLIENT, "ERR71/1002"}, /* 126-byte ping */
	        {"\x80\x00", 2, WS_ROLE_CLIENT, "ERR71/1002"},         /* continuation of nothing */
	        {"\x02\x00\x02\x00", 4, WS_ROLE_CLIENT, "ERR71/1002"}, /* new msg mid-message */
	        {"\x82\x80\x00\x00\x00\x00", 6, WS_ROLE_CLIENT,
	         "ERR71/1002"},                                /* masked to client */
	        {"\x82\x00", 2, WS_ROLE_SERVER, "ERR71/1002"}, /* unmasked to server */
	        {"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10, WS_ROLE_CLIENT,
	         "ERR71/1002"}, /* 64-bit length with the MSB set */
	        {"\x81\x02\xc3\x28", 4, WS_ROLE_CLIENT, "ERR71/1007"},     /* bad UTF-8 */
	        {"\x81\x03\xed\xa0\x80", 5, WS_ROLE_CLIENT, "ERR71/1007"}, /* surrogate */
	        {"\x81\x02\xc0\xaf", 4, WS_ROLE_CLIENT, "ERR71/1007"},     /* overlong */
	        /* Non-minimal 16-bit length: accepted (see start_frame). */
	        {"\x82\x7e\x00\x01x", 5, WS_ROLE_CLIENT, "M2:1:x;"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		check_every_split(cases[i].role, 0, (const uint8_t *)cases[i].s, cases[i].n,
		                  cases[i].want);
	/* A UTF-8 sequence split across fragments is fine. */
	check_every_split(WS_ROLE_CLIENT, 0, (const uint8_t *)"\x01\x01\xc3\x80\x01\xa9", 6,
	                  "M1:2:\xc3\xa9;");
	/* After an error the decoder stays failed. */
	struct ws_decoder d;
	ws_decoder_init(&d, WS_ROLE_CLIENT, 0);
	struct ws_event ev;
	size_t k;
	CHECK_EQ(ws_decoder_feed(&d, "\xc2\x00", 2, &k, &ev), -EPROTO);
	CHECK_EQ(ws_decoder_feed(&d, "\x82\x00", 2, &k, &ev), -EPROTO);
	CHECK_EQ(k, 0);
	ws_decoder_free(&d);
}

TEST(size_limits)
{
	/* One frame over the limit fails on its header, before any payload. */
	check_every_split(WS_ROLE_CLIENT, 16, (const uint8_t *)"\x82\x11", 2, "ERR90/1009");
	check_every_split(WS_ROLE_CLIENT, 16,
	                  (const uint8_t *)"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", 10,
	                  "ERR90/1009");
	/* Exactly at the limit is fine; fragments add up. */
	uint8_t s[256];
	size_t n = put(s, WS_OP_BINARY, true, "0123456789abcdef", 16);
	check_every_split(WS_ROLE_CLIENT, 16, s, n, "M2:16:01234567;");
	n = put(s, WS_OP_BINARY, false, "0123456789", 10);
	n += put(s + n, WS_OP_PING, true, "", 0);
	n += put(s + n, WS_OP_CONT, true, "abcdefg", 7);
	check_every_split(WS_ROLE_CLIENT, 16, s, n, "PING0:;ERR90/1009");
	/* The limit is per message: the next message starts from zero. */
	n = put(s, WS_OP_BINARY, true, "0123456789", 10);
	n += put(s + n, WS_OP_BINARY, true, "0123456789", 10);
	check_every_split(WS_ROLE_CLIENT, 16, s, n, "M2:10:01234567;M2:10:01234567;");
	/* Encoder: control frames are bounded and never fragmented. */
	uint8_t big[200] = {0};
	size_t k;
	CHECK_EQ(ws_encode(s, sizeof(s), WS_OP_PING, true, big, 126, NULL, &k), -EINVAL);
	CHECK_EQ(ws_encode(s, sizeof(s), WS_OP_PING, false, big, 1, NULL, &k), -EINVAL);
	CHECK_EQ(ws_encode(s, sizeof(s), WS_OP_PONG, true, big, 125, NULL, &k), 0);
}

TEST(utf8)
{
	CHECK(ws_utf8_valid((const uint8_t *)"", 0));
	CHECK(ws_utf8_valid((const uint8_t *)"\xf0\x9f\x98\x80", 4));
	CHECK(ws_utf8_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4));
	CHECK(!ws_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	CHECK(!ws_utf8_valid((const uint8_t *)"\xf0\x9f\x98", 3));     /* truncated */
	CHECK(!ws_utf8_valid((const uint8_t *)"\xe0\x80\xaf", 3));     /* overlong */
	CHECK(!ws_utf8_valid((const uint8_t *)"\xff", 1));
}

static void sha1_hex(const void *in, size_t len, char out[41])
{
	uint8_t md[K8S_SHA1_LEN];
	k8s_sha1(in, len, md);
	for (int i = 0; i < K8S_SHA1_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

TEST(sha1_vectors)
{
	char hex[41];
	sha1_hex("", 0, hex);
	CHECK_STR(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	sha1_hex("abc", 3, hex);
	CHECK_STR(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sha1_hex(two, strlen(two), hex);
	CHECK_STR(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	static char million[1000000];
	memset(million, 'a', sizeof(million));
	sha1_hex(million, sizeof(million), hex);
	CHECK_STR(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

/* Every length across the one- and two-block tails, against OpenSSL. */
TEST(sha1_matches_openssl)
{
	uint8_t buf[300], ours[K8S_SHA1_LEN], theirs[SHA_DIGEST_LENGTH];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (size_t len = 0; len <= sizeof(buf); len++) {
		k8s_sha1(buf, len, ours);
		SHA1(buf, len, theirs);
		CHECK(memcmp(ours, theirs, sizeof(ours)) == 0);
	}
}

TEST(ws_accept_rfc6455)
{
	char out[K8S_WS_ACCEPT_LEN + 1];
	CHECK_EQ(k8s_ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(base64_round_trip)
{
	uint8_t buf[100];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(255 - i * 37);
	for (size_t len = 0; len <= sizeof(buf); len++) {
		_cleanup_free_ char *enc = NULL, *dec = NULL;
		char ref[(sizeof(buf) + 2) / 3 * 4 + 1];
		CHECK_EQ(k8s_base64_encode(buf, len, &enc), 0);
		EVP_EncodeBlock((unsigned char *)ref, buf, (int)len);
		CHECK_STR(enc, ref);
		size_t n = 0;
		CHECK_EQ(k8s_base64_decode(enc, &dec, &n), 0);
		CHECK_EQ(n, len);
		CHECK(memcmp(dec, buf, len) == 0);
		CHECK_EQ(dec[n], 0);
	}
	/* Whitespace anywhere is ignored (wrapped kubeconfig data). */
	_cleanup_free_ char *dec = NULL;
	size_t n = 0;
	CHECK_EQ(k8s_base64_decode(" aGVs\nbG8g\r\n d29y bGQ= \n", &dec, &n), 0);
	CHECK_EQ(n, 11);
	CHECK_STR(dec, "hello world");
}

TEST(base64_rejects)
{
	const char *bad[] = {"a",    "aGVsbG8",  "aGVsbG8==", "aGV=bG8=",     "====",
	                     "a===", "aGVs!G8=", "aGVsbG8=x", "aGVsbA==aGVs", "-_-_"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *dec = NULL;
		size_t n = 0;
		CHECK_EQ(k8s_base64_decode(bad[i], &dec, &n), -EINVAL);
		CHECK(dec == NULL);
	}
}

TEST_MAIN()
