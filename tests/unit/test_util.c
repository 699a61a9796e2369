#include "tests/unit/test.h"
#include "common/util.h"
#include "common/u64map.h"

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

TEST(u64map_random_ops)
{
	struct u64map m = {0};
	static char present[4096];
	unsigned seed = 12345;

	for (int round = 0; round < 200000; round++) {
		seed = seed * 1103515245u + 12345u;
		uint64_t k = (seed >> 8) % 4096;
		if (seed & 1) {
			u64map_put(&m, k, &present[k]);
			present[k] = 1;
		} else {
			void *v = u64map_del(&m, k);
			CHECK((v != NULL) == (present[k] == 1));
			present[k] = 0;
		}
	}
	size_t n = 0;
	for (uint64_t k = 0; k < 4096; k++) {
		CHECK((u64map_get(&m, k) != NULL) == (present[k] == 1));
		n += present[k];
	}
	CHECK_EQ(m.n, n);
	u64map_free(&m);
}

TEST_MAIN()
