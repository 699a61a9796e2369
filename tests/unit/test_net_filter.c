/* feature.network.outgoing.filter: the entry grammar and matching
 * (syscalls/net_filter.h). */
#include "syscalls/net_filter.h"
#include "test.h"

#include <arpa/inet.h>

static struct sockaddr_storage sa(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		CHECK(inet_pton(AF_INET6, ip, &a->sin6_addr) == 1);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		CHECK(inet_pton(AF_INET, ip, &a->sin_addr) == 1);
	}
	return ss;
}

/* match SPEC TYPE IP PORT: one entry against one destination. */
static bool match(const char *spec, int type, const char *ip, unsigned port)
{
	struct net_filter f = {0};
	struct sockaddr_storage d = sa(ip, port);

	CHECK(net_filter_add(&f, spec) == 0);
	bool m = net_filter_match(&f, type, (struct sockaddr *)&d);
	net_filter_free(&f);
	return m;
}

static bool accepts(const char *spec)
{
	struct net_filter f = {0};
	int e = net_filter_add(&f, spec);

	CHECK(e == 0 ? f.n == 1 : f.n == 0);
	net_filter_free(&f);
	fprintf(stderr, "%s: '%s'\n", e == 0 ? "accepted" : "rejected", spec);
	return e == 0;
}

TEST(grammar_accepts)
{
	static const char *ok[] = {
	        "10.0.0.1", "10.0.0.0/8",      "10.0.0.0/8:443",   "tcp://10.0.0.1:80", "udp://:53",
	        ":53",      "any://[::1]",     "[fd00::]/64:80",   "0.0.0.0",           "[::]:22",
	        "",         "web.default.svc", "tcp://redis:6379", "my_host-1.local",   "1.2.3.4:0",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		CHECK(accepts(ok[i]));
}

TEST(grammar_rejects)
{
	static const char *bad[] = {
	        "10.0.0.0/33", "[::1]/129", "http://10.0.0.1", "10.0.0.1:65536", "10.0.0.1:",
	        "[::1",        "[zz::]",    "host/8",          "a..b",           "10.0.0.1:80x",
	        ":-1",         "tcp:/x",    "-host",           "10.0.0.1/",      "[::1]x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(!accepts(bad[i]));
}

TEST(matching)
{
	CHECK(match("10.0.0.1", SOCK_STREAM, "10.0.0.1", 80));
	CHECK(!match("10.0.0.1", SOCK_STREAM, "10.0.0.2", 80));
	CHECK(match("10.0.0.0/8", SOCK_DGRAM, "10.200.1.1", 9));
	CHECK(!match("10.0.0.0/8", SOCK_DGRAM, "11.0.0.1", 9));
	CHECK(match("10.0.0.0/9:443", SOCK_STREAM, "10.127.255.255", 443));
	CHECK(!match("10.0.0.0/9:443", SOCK_STREAM, "10.128.0.0", 443));
	CHECK(!match("10.0.0.0/9:443", SOCK_STREAM, "10.1.0.0", 80));
	CHECK(match("tcp://:80", SOCK_STREAM, "192.168.1.1", 80));
	CHECK(!match("tcp://:80", SOCK_DGRAM, "192.168.1.1", 80));
	CHECK(match("udp://:53", SOCK_DGRAM, "fd00::2", 53));
	CHECK(match("0.0.0.0:5432", SOCK_STREAM, "fd00::9", 5432));
	CHECK(match("", SOCK_STREAM, "1.2.3.4", 1));
	CHECK(match("[fd00:244::]/64", SOCK_STREAM, "fd00:244::20", 80));
	CHECK(!match("[fd00:244::]/64", SOCK_STREAM, "fd00:245::20", 80));
	CHECK(!match("[fd00:244::]/64", SOCK_STREAM, "10.0.0.1", 80));
	/* An IPv4 destination written v4-mapped by a dual-stack socket. */
	CHECK(match("10.244.0.20:80", SOCK_STREAM, "::ffff:10.244.0.20", 80));
	CHECK(!match("[::ffff:10.244.0.20]", SOCK_STREAM, "10.244.0.21", 80));
	/* Names are never matched: the resolved name is not known. */
	CHECK(!match("web", SOCK_STREAM, "10.244.0.20", 80));
}

TEST(names_reported)
{
	struct net_filter f = {0};

	CHECK(net_filter_add(&f, "10.0.0.1") == 0);
	CHECK(net_filter_has_names(&f) == NULL);
	CHECK(net_filter_add(&f, "tcp://db.internal:5432") == 0);
	CHECK(strcmp(net_filter_has_names(&f), "db.internal") == 0);
	net_filter_free(&f);
	CHECK(f.n == 0 && f.rules == NULL);
}

TEST_MAIN()
