#include "tests/unit/test.h"
#include "common/util.h"

#include <netinet/in.h>
#include <sys/socket.h>

TEST(parse_u64_bounds)
{
	uint64_t v;
	CHECK_EQ(parse_u64("65535", 65535, &v), 0);
	CHECK_EQ(v, 65535);
	CHECK_EQ(parse_u64("65536", 65535, &v), -ERANGE);
	CHECK_EQ(parse_u64("12x", 100, &v), -EINVAL);
	CHECK_EQ(parse_u64("", 100, &v), -EINVAL);
	CHECK_EQ(parse_u64("-1", 100, &v), -EINVAL);
	CHECK_EQ(parse_u64("99999999999999999999999", UINT64_MAX, &v), -ERANGE);
}

TEST(parse_hostport_forms)
{
	struct sockaddr_storage ss;
	unsigned len;
	char buf[SOCKADDR_STR_MAX];

	CHECK_EQ(parse_hostport("127.0.0.1:8080", &ss, &len), 0);
	CHECK_STR(sockaddr_str(&ss, len, buf, sizeof(buf)), "127.0.0.1:8080");
	CHECK_EQ(parse_hostport("[::1]:61337", &ss, &len), 0);
	CHECK_STR(sockaddr_str(&ss, len, buf, sizeof(buf)), "[::1]:61337");
	CHECK(parse_hostport("localhost:80", &ss, &len) < 0);
	CHECK(parse_hostport("1.2.3.4", &ss, &len) < 0);
	CHECK(parse_hostport("1.2.3.4:0", &ss, &len) < 0);
	CHECK(parse_hostport("1.2.3.4:70000", &ss, &len) < 0);
	CHECK(parse_hostport("[::1:80", &ss, &len) < 0);
}

TEST_MAIN()
