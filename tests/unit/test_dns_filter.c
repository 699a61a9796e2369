/* feature.network.dns.filter in the DNS relays: reading a query's question,
 * matching names with the pod's search domains, SERVFAIL answers
 * (session/dns_filter.h). */
#include "session/dns_filter.h"
#include "test.h"

#include <errno.h>
#include <sys/socket.h>

/* A query for name (dotted text, "" for the root) of type qtype, as a
 * resolver writes it: id 0x1234, RD, one question. Returns its length. */
static size_t query(uint8_t *out, const char *name, uint16_t qtype)
{
	static const uint8_t hdr[12] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
	size_t n = sizeof(hdr);

	memcpy(out, hdr, n);
	for (const char *p = name; *p;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		out[n++] = (uint8_t)l;
		memcpy(out + n, p, l);
		n += l;
		p += l + (dot ? 1 : 0);
	}
	out[n++] = 0;
	out[n++] = (uint8_t)(qtype >> 8);
	out[n++] = (uint8_t)qtype;
	out[n++] = 0;
	out[n++] = 1; /* IN */
	return n;
}

static int question(const uint8_t *m, size_t n, char *name, uint16_t *t, size_t *end)
{
	return dns_query_question(m, n, name, t, end);
}

TEST(question_read)
{
	uint8_t m[600];
	char name[DNS_NAME_TEXT_MAX];
	uint16_t t;
	size_t end, n = query(m, "Corp.Example", 28);

	CHECK_EQ(question(m, n, name, &t, &end), 0);
	CHECK_STR(name, "corp.example");
	CHECK_EQ(t, 28);
	CHECK_EQ(end, n);
	/* An EDNS OPT record after the question does not matter. */
	m[11] = 1;
	memcpy(m + n, "\0\0\x29\x10\0\0\0\0\0\0\0", 11);
	CHECK_EQ(question(m, n + 11, name, &t, &end), 0);
	CHECK_EQ(end, n);
	n = query(m, "", 2);
	CHECK_EQ(question(m, n, name, &t, &end), 0);
	CHECK_STR(name, "");
}

TEST(question_rejects)
{
	uint8_t m[600];
	char name[DNS_NAME_TEXT_MAX];
	uint16_t t;
	size_t end, n = query(m, "a.example", 1);

	/* Every truncation of a good query. */
	for (size_t k = 0; k < n; k++)
		CHECK_EQ(question(m, k, name, &t, &end), -EINVAL);
	m[2] |= 0x80; /* a response */
	CHECK_EQ(question(m, n, name, &t, &end), -EINVAL);
	m[2] = 0x01 | (5 << 3); /* opcode UPDATE */
	CHECK_EQ(question(m, n, name, &t, &end), -EINVAL);
	m[2] = 0x01;
	m[5] = 2; /* two questions */
	CHECK_EQ(question(m, n, name, &t, &end), -EINVAL);
	m[5] = 0;
	CHECK_EQ(question(m, n, name, &t, &end), -EINVAL);
	m[5] = 1;
	CHECK_EQ(question(m, n, name, &t, &end), 0);
	/* A compression pointer in the question, and reserved label types. */
	static const uint8_t kinds[] = {0xc0, 0x40, 0x80};
	for (size_t k = 0; k < sizeof(kinds); k++) {
		n = query(m, "a.example", 1);
		m[14] = kinds[k];
		m[15] = 12;
		CHECK_EQ(question(m, n, name, &t, &end), -EINVAL);
	}
	/* A dot, a space or a control byte inside a label. */
	static const char bad[] = {'.', ' ', 0x01, 0x7f};
	for (size_t k = 0; k < sizeof(bad); k++) {
		n = query(m, "ab.example", 1);
		m[14] = (uint8_t)bad[k];
		CHECK_EQ(question(m, n, name, &t, &end), -EINVAL);
	}
}

TEST(question_length_limit)
{
	uint8_t m[600];
	char name[DNS_NAME_TEXT_MAX], text[300];
	uint16_t t;
	size_t end, n;

	/* Four labels of 63 and one of 1: 4 * 64 + 2 + 1 = 259 wire bytes
	 * is too long; 63+63+63+61 (4 * 64 - 2 + 1 = 255) is the maximum,
	 * 253 characters of text. */
	memset(text, 'a', sizeof(text));
	for (int i = 63; i < 4 * 64; i += 64)
		text[i] = '.';
	memcpy(text + 4 * 64, "b", 2);
	n = query(m, text, 1);
	CHECK_EQ(question(m, n, name, &t, &end), -EINVAL);
	text[3 * 64 + 61] = '\0';
	n = query(m, text, 1);
	CHECK_EQ(n, 12 + 255 + 4);
	CHECK_EQ(question(m, n, name, &t, &end), 0);
	CHECK_EQ(strlen(name), 253);
	text[3 * 64 + 61] = 'a';
	text[3 * 64 + 62] = '\0';
	n = query(m, text, 1);
	CHECK_EQ(question(m, n, name, &t, &end), -EINVAL);
}

static struct dns_filter filter(bool remote, const char *const *names, const char *conf)
{
	struct dns_filter f = {.remote = remote};

	for (; *names; names++)
		dns_filter_add_name(&f, *names);
	dns_filter_set_search(&f, conf);
	return f;
}

static const char pod_conf[] = "nameserver 10.96.0.10\n"
                               "search default.svc.cluster.local svc.cluster.local "
                               "cluster.local\n"
                               "options ndots:5\n";

TEST(match_names)
{
	static const char *const names[] = {"Corp.Example.", "db", NULL};
	struct dns_filter f = filter(false, names, pod_conf);
	const char *e;

	CHECK_EQ(f.nsearch, 3);
	CHECK_STR(dns_filter_match(&f, "corp.example"), "corp.example");
	CHECK_STR(dns_filter_match(&f, "corp.example.default.svc.cluster.local"), "corp.example");
	CHECK_STR(dns_filter_match(&f, "corp.example.cluster.local"), "corp.example");
	CHECK_STR(dns_filter_match(&f, "db.svc.cluster.local"), "db");
	/* Exact names only: no substring, no other suffix, no subdomain. */
	CHECK(dns_filter_match(&f, "corp.example.org") == NULL);
	CHECK(dns_filter_match(&f, "www.corp.example") == NULL);
	CHECK(dns_filter_match(&f, "corp.exampl") == NULL);
	CHECK(dns_filter_match(&f, "corp.example.local") == NULL);
	CHECK(dns_filter_match(&f, "corp.example.") == NULL); /* the parser strips it */
	CHECK(dns_filter_match(&f, "dbx.svc.cluster.local") == NULL);
	CHECK(dns_filter_local(&f, "db", &e) && strcmp(e, "db") == 0);
	CHECK(!dns_filter_local(&f, "web", &e) && e == NULL);
	f.remote = true;
	CHECK(!dns_filter_local(&f, "db", &e));
	CHECK(dns_filter_local(&f, "web", &e));
	f.all = true;
	CHECK_STR(dns_filter_match(&f, "anything"), "");
	CHECK(!dns_filter_local(&f, "anything", &e));
	dns_filter_free(&f);
	CHECK(f.names == NULL && f.nnames == 0 && f.nsearch == 0);
}

TEST(search_lines)
{
	static const char *const none[] = {NULL};
	struct dns_filter f = filter(false, none,
	                             "search a.example b.example\n"
	                             "domain Last.Example.\n"
	                             "nameserver 1.1.1.1");
	CHECK_EQ(f.nsearch, 1);
	CHECK_STR(f.search[0], "last.example");
	dns_filter_set_search(&f, "  search\tx y z u v w q r\nsearchx nope\nsearch\n");
	/* The last valid line wins; glibc keeps six domains. */
	CHECK_EQ(f.nsearch, DNS_SEARCH_MAX);
	CHECK_STR(f.search[0], "x");
	dns_filter_set_search(&f, "search .\n");
	CHECK_EQ(f.nsearch, 0);
	dns_filter_free(&f);
}

TEST(servfail)
{
	uint8_t m[600], out[600];
	char name[DNS_NAME_TEXT_MAX];
	uint16_t t;
	size_t end, n = query(m, "x.example", 1);

	m[11] = 1; /* an OPT record, dropped from the answer */
	memcpy(m + n, "\0\0\x29\x10\0\0\0\0\0\0\0", 11);
	CHECK_EQ(question(m, n + 11, name, &t, &end), 0);
	CHECK_EQ(dns_servfail(m, end, out), end);
	CHECK(out[0] == 0x12 && out[1] == 0x34);
	CHECK_EQ(out[2], 0x81); /* QR, RD */
	CHECK_EQ(out[3], 0x82); /* RA, SERVFAIL */
	CHECK(out[4] == 0 && out[5] == 1);
	for (int i = 6; i < 12; i++)
		CHECK_EQ(out[i], 0);
	CHECK(memcmp(out + 12, m + 12, end - 12) == 0);
	CHECK_STR(dns_type_name(28), "AAAA");
	CHECK(dns_type_name(999) == NULL);
}

TEST(hosts)
{
	static const char hosts[] = "127.0.0.1\tlocalhost\n"
	                            "# 10.0.0.1 commented.example\n"
	                            "10.1.1.1 Corp.Example corp # comment corp.other\n"
	                            "fd00::1 corp.example\n"
	                            "10.1.1.2   corp.example\r\n"
	                            "bogus corp.example\n"
	                            "fd00::9 v6only.example";
	uint8_t a[4][16];

	CHECK_EQ(dns_hosts_lookup(hosts, "corp.example", AF_INET, a, 4), 2);
	CHECK(memcmp(a[0], "\x0a\x01\x01\x01", 4) == 0);
	CHECK(memcmp(a[1], "\x0a\x01\x01\x02", 4) == 0);
	CHECK_EQ(dns_hosts_lookup(hosts, "corp.example", AF_INET, a, 1), 1);
	CHECK_EQ(dns_hosts_lookup(hosts, "corp.example", AF_INET6, a, 4), 1);
	CHECK_EQ(a[0][0], 0xfd);
	CHECK_EQ(dns_hosts_lookup(hosts, "corp", AF_INET, a, 4), 1);
	/* Present with the other family only: 0 (NODATA), not absent. */
	CHECK_EQ(dns_hosts_lookup(hosts, "v6only.example", AF_INET, a, 4), 0);
	CHECK_EQ(dns_hosts_lookup(hosts, "commented.example", AF_INET, a, 4), -ENOENT);
	CHECK_EQ(dns_hosts_lookup(hosts, "corp.other", AF_INET, a, 4), -ENOENT);
	CHECK_EQ(dns_hosts_lookup(hosts, "corp.exampl", AF_INET, a, 4), -ENOENT);
	CHECK_EQ(dns_hosts_lookup("", "corp.example", AF_INET, a, 4), -ENOENT);
}

TEST(hosts_answer)
{
	uint8_t m[600], out[600];
	char name[DNS_NAME_TEXT_MAX];
	uint16_t t;
	size_t end, n = query(m, "corp.example", 28);
	const uint8_t addrs[2][16] = {{0xfd, 0, [15] = 1}, {0xfd, 0, [15] = 2}};

	CHECK_EQ(question(m, n, name, &t, &end), 0);
	size_t len = dns_hosts_answer(m, end, addrs, 2, out, sizeof(out));
	CHECK_EQ(len, end + 2 * (12 + 16));
	CHECK(out[0] == 0x12 && out[1] == 0x34 && out[2] == 0x81 && out[3] == 0x80);
	CHECK(out[6] == 0 && out[7] == 2 && out[8] == 0 && out[11] == 0);
	CHECK(memcmp(out + 12, m + 12, end - 12) == 0);
	static const uint8_t rr[] = {0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0, 0, 0, 16, 0xfd};
	CHECK(memcmp(out + end, rr, sizeof(rr)) == 0);
	CHECK_EQ(out[end + 12 + 15], 1);
	CHECK_EQ(out[end + 28 + 12 + 15], 2);
	/* NODATA, and an answer that does not fit. */
	CHECK_EQ(dns_hosts_answer(m, end, addrs, 0, out, sizeof(out)), end);
	CHECK_EQ(out[7], 0);
	CHECK_EQ(dns_hosts_answer(m, end, addrs, 2, out, end + 30), 0);
}

TEST_MAIN()
