/* agent/http1.c: where an HTTP/1.x head ends and what it says, with the
 * line endings sniff.c detects (CRLF or a bare LF, RFC 9112 §2.2). */
#include "tests/unit/test.h"
#include "agent/http1.h"
#include "common/util.h"

static size_t hl(const char *s)
{
	size_t scanned = 0;
	return http1_head_len((const uint8_t *)s, strlen(s), &scanned);
}

static int parse(const char *s, bool request, struct http1_head *hd)
{
	return http1_parse_head(s, hl(s), request, hd);
}

TEST(head_len_line_endings)
{
	CHECK_EQ(hl("GET / HTTP/1.1\r\nhost: x\r\n\r\nNEXT"), 27);
	CHECK_EQ(hl("GET / HTTP/1.1\nhost: x\n\nNEXT"), 24);
	CHECK_EQ(hl("GET / HTTP/1.1\r\nhost: x\n\r\n"), 26);
	CHECK_EQ(hl("GET / HTTP/1.1\r\nhost: x\r\n\r"), 0);
	CHECK_EQ(hl("GET / HTTP/1.1\r\nhost: x\r\n"), 0);
	CHECK_EQ(hl("GET / HTTP/1.1\n"), 0);
	CHECK_EQ(hl(""), 0);
}

/* Fed a byte at a time, with the scan position kept between calls, the
 * end is found where a single search finds it, for every line ending
 * split between calls. */
TEST(head_len_incremental)
{
	static const char *const heads[] = {
	        "GET / HTTP/1.1\r\nhost: x\r\n\r\nNEXT",
	        "GET / HTTP/1.1\nhost: x\n\nNEXT",
	        "GET / HTTP/1.1\r\nhost: x\n\r\n",
	        "GET / HTTP/1.1\r\nhost: x\r\n\nZ",
	};
	for (size_t i = 0; i < ARRAY_SIZE(heads); i++) {
		const uint8_t *p = (const uint8_t *)heads[i];
		size_t want = hl(heads[i]), scanned = 0, got = 0, n;
		CHECK(want > 0);
		for (n = 1; n <= strlen(heads[i]) && !got; n++)
			got = http1_head_len(p, n, &scanned);
		CHECK_EQ(got, want);
		CHECK_EQ(n - 1, want); /* found as soon as its last byte came */
	}
}

TEST(empty_lines)
{
	CHECK_EQ(http1_empty_lines((const uint8_t *)"\r\n\nGET", 6), 3);
	CHECK_EQ(http1_empty_lines((const uint8_t *)"GET", 3), 0);
	CHECK_EQ(http1_empty_lines((const uint8_t *)"\r", 1), 1);
}

TEST(parse_lf_heads)
{
	struct http1_head hd;

	CHECK_EQ(parse("POST /a?b HTTP/1.1\nx-user:  alice \ncontent-length: 5\n\n", true, &hd), 0);
	CHECK_EQ(hd.method_len, 4);
	CHECK(!strncmp(hd.target, "/a?b", hd.target_len) && hd.target_len == 4);
	CHECK_EQ(hd.nh, 2);
	CHECK(http1_hdr_is(&hd, 0, "X-User"));
	CHECK(hd.h[0].value_len == 5 && !strncmp(hd.h[0].value, "alice", 5));
	CHECK(hd.h[1].value_len == 1 && hd.h[1].value[0] == '5');
	struct http1_framer fr;
	CHECK_EQ(http1_body_framing(&hd, true, &fr), 0);
	CHECK(fr.kind == HTTP1_FR_LENGTH && fr.left == 5);

	CHECK_EQ(parse("GET / HTTP/1.1\r\nhost: x\nx-a: 1\r\n\r\n", true, &hd), 0);
	CHECK_EQ(hd.nh, 2);
	CHECK(hd.h[0].value_len == 1 && hd.h[0].value[0] == 'x');
	CHECK_EQ(parse("HTTP/1.1 204 No Content\nserver: y\n\n", false, &hd), 0);
	CHECK_EQ(hd.status, 204);
	CHECK_EQ(hd.nh, 1);
	CHECK_EQ(parse("GET / HTTP/1.1\r\n\r\n", true, &hd), 0);
	CHECK_EQ(hd.nh, 0);
}

TEST(parse_refuses_bare_cr)
{
	struct http1_head hd;

	CHECK_EQ(parse("GET / HTTP/1.1\r\nx-a: 1\rx-b: 2\r\n\r\n", true, &hd), -EBADMSG);
	CHECK_EQ(parse("GET /\r HTTP/1.1\r\n\r\n", true, &hd), -EBADMSG);
	CHECK_EQ(parse("GET / HTTP/1.1\r\nno colon\r\n\r\n", true, &hd), -EBADMSG);
	CHECK_EQ(parse("GET /\r\n\r\n", true, &hd), -EBADMSG);
}

static int framing(const char *head, bool request, struct http1_framer *fr)
{
	struct http1_head hd;
	CHECK_EQ(parse(head, request, &hd), 0);
	return http1_body_framing(&hd, request, fr);
}

/* RFC 9112 §6.1, §6.3: what frames a body, and what the agent refuses
 * because the app behind it could frame the same bytes otherwise. */
TEST(body_framing)
{
	struct http1_framer fr;

	CHECK_EQ(framing("POST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n", true, &fr),
	         0);
	CHECK_EQ(fr.kind, HTTP1_FR_CHUNKED);
	CHECK_EQ(framing("POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n"
	                 "transfer-encoding: Chunked\r\n\r\n",
	                 true, &fr),
	         0);
	CHECK_EQ(fr.kind, HTTP1_FR_CHUNKED);
	CHECK_EQ(framing("POST / HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\n", true,
	                 &fr),
	         0);
	CHECK(fr.kind == HTTP1_FR_LENGTH && fr.left == 5);
	CHECK_EQ(framing("GET / HTTP/1.1\r\n\r\n", true, &fr), 0);
	CHECK(fr.kind == HTTP1_FR_NONE && fr.done);
	/* smuggling shapes */
	CHECK_EQ(framing("POST / HTTP/1.1\r\ncontent-length: 5\r\ntransfer-encoding: "
	                 "chunked\r\n\r\n",
	                 true, &fr),
	         -EBADMSG);
	CHECK_EQ(framing("POST / HTTP/1.1\r\ntransfer-encoding: xchunked\r\n\r\n", true, &fr),
	         -EBADMSG);
	CHECK_EQ(framing("POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n"
	                 "transfer-encoding: gzip\r\n\r\n",
	                 true, &fr),
	         -EBADMSG);
	CHECK_EQ(framing("POST / HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n", true,
	                 &fr),
	         -EBADMSG);
	/* responses: Transfer-Encoding wins; not chunked runs to the close */
	CHECK_EQ(framing("HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: "
	                 "chunked\r\n\r\n",
	                 false, &fr),
	         0);
	CHECK_EQ(fr.kind, HTTP1_FR_CHUNKED);
	CHECK_EQ(framing("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", false, &fr), 0);
	CHECK_EQ(fr.kind, HTTP1_FR_EOF);
	CHECK_EQ(framing("HTTP/1.1 204 No Content\r\n\r\n", false, &fr), 0);
	CHECK_EQ(fr.kind, HTTP1_FR_EOF); /* 204 and HEAD are the caller's */
}

TEST_MAIN()
