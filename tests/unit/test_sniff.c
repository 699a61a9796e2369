/* agent/sniff.c: what a stolen connection on a filtered port speaks. */
#include "tests/unit/test.h"
#include "agent/sniff.h"
#include "common/util.h"

#include <stdlib.h>

static enum sniff sn(const char *s)
{
	return sniff_http((const uint8_t *)s, strlen(s));
}

TEST(http1_request_lines)
{
	CHECK_EQ(sn("GET / HTTP/1.1\r\n"), SNIFF_HTTP1);
	CHECK_EQ(sn("GET / HTTP/1.1\r\nhost: x\r\n\r\n"), SNIFF_HTTP1);
	CHECK_EQ(sn("POST /a?b=c HTTP/1.0\n"), SNIFF_HTTP1);
	CHECK_EQ(sn("OPTIONS * HTTP/1.1\r\n"), SNIFF_HTTP1);
	CHECK_EQ(sn("CONNECT pod:443 HTTP/1.1\r\n"), SNIFF_HTTP1);
	CHECK_EQ(sn("M-SEARCH * HTTP/1.1\r\n"), SNIFF_HTTP1);
	/* empty lines before the request line are skipped (RFC 9112 §2.2) */
	CHECK_EQ(sn("\r\n\r\nGET / HTTP/1.1\r\n"), SNIFF_HTTP1);
	/* "PRI" is a method like any other until the version says HTTP/2 */
	CHECK_EQ(sn("PRI * HTTP/1.1\r\n"), SNIFF_HTTP1);
	/* obs-text in the target, as lenient servers take it */
	CHECK_EQ(sn("GET /\xc3\xa9 HTTP/1.1\r\n"), SNIFF_HTTP1);
}

TEST(h2_preface)
{
	CHECK_EQ(sn("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), SNIFF_H2);
	CHECK_EQ(sn("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04"), SNIFF_H2);
	CHECK_EQ(sn("PRI * HTTP/2.0\r\n\r\nSM\r\n"), SNIFF_MORE);
	CHECK_EQ(sn("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), SNIFF_OTHER);
}

TEST(prefixes_wait)
{
	const char *all[] = {"GET / HTTP/1.1\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	                     "\r\nDELETE /x HTTP/1.0\n"};

	CHECK_EQ(sniff_http(NULL, 0), SNIFF_MORE);
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		for (size_t n = 0; n < strlen(all[i]); n++)
			CHECK_EQ(sniff_http((const uint8_t *)all[i], n), SNIFF_MORE);
}

TEST(not_http)
{
	/* a TLS ClientHello, a Redis command, a PostgreSQL startup, SSH */
	CHECK_EQ(sn("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), SNIFF_OTHER);
	CHECK_EQ(sn("*1\r\n$4\r\nPING\r\n"), SNIFF_OTHER);
	CHECK_EQ(sniff_http((const uint8_t *)"\x00\x00\x00\x08\x04\xd2\x16\x2f", 8), SNIFF_OTHER);
	CHECK_EQ(sn("SSH-2.0-OpenSSH_9.2\r\n"), SNIFF_OTHER);
	/* broken request lines */
	CHECK_EQ(sn("GET  / HTTP/1.1\r\n"), SNIFF_OTHER);
	CHECK_EQ(sn("GET / HTTP/2.0\r\n"), SNIFF_OTHER);
	CHECK_EQ(sn("GET / HTTP/1.x\r\n"), SNIFF_OTHER);
	CHECK_EQ(sn("GET / HTTP/1.1\rX"), SNIFF_OTHER);
	CHECK_EQ(sn("GET / HTTP/1.1 \r\n"), SNIFF_OTHER);
	CHECK_EQ(sn("GET /a\tb HTTP/1.1\r\n"), SNIFF_OTHER);
	CHECK_EQ(sn("GET /\x7f HTTP/1.1\r\n"), SNIFF_OTHER);
	CHECK_EQ(sn(" GET / HTTP/1.1\r\n"), SNIFF_OTHER);
	CHECK_EQ(sn("GET\r\n"), SNIFF_OTHER);
	/* a method is at most SNIFF_MAX_METHOD characters */
	char m[64];
	memset(m, 'A', sizeof(m));
	CHECK_EQ(sniff_http((const uint8_t *)m, SNIFF_MAX_METHOD), SNIFF_MORE);
	CHECK_EQ(sniff_http((const uint8_t *)m, SNIFF_MAX_METHOD + 1), SNIFF_OTHER);
}

/* The property http.c relies on: once a prefix is decided, every longer
 * input says the same. Random inputs over an alphabet that makes the
 * grammar's branches likely. */
TEST(decisions_are_final)
{
	static const char alpha[] = "GET /PRI*HTTP/1.2\r\n SMx\x16\x80";
	uint8_t b[48];
	unsigned seed = 7;

	for (int round = 0; round < 200000; round++) {
		size_t n = (size_t)(rand_r(&seed) % sizeof(b));
		for (size_t i = 0; i < n; i++)
			b[i] = (uint8_t)alpha[rand_r(&seed) % (sizeof(alpha) - 1)];
		if (round % 3 == 0 && n >= 16)
			memcpy(b, "GET / HTTP/1.1", 14);
		enum sniff first = SNIFF_MORE;
		for (size_t k = 0; k <= n; k++) {
			enum sniff s = sniff_http(b, k);
			if (first == SNIFF_MORE)
				first = s;
			else
				CHECK_EQ(s, first);
		}
	}
}

TEST_MAIN()
