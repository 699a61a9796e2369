/* libFuzzer target for the DNS relays' query reader and name matcher
 * (session/dns_filter.c): the input is a query as a program would send it
 * to a relay. Invariants, any violation aborts:
 *  - success: the question ends inside the input, after the header, a
 *    name and 4 bytes; the name is at most 253 characters of lowercase
 *    printable ASCII without spaces or empty labels, and spelling it back
 *    as labels gives the input's question name (case aside);
 *  - the SERVFAIL built from it has the query's id and question, QR and
 *    rcode 2, and no records;
 *  - a hosts answer for it has one record per address, of the size its
 *    type says;
 *  - matching the name against a filter with search domains never reads
 *    outside it (ASan) and agrees with itself for local and remote. */
#include "fuzz.h"
#include "session/dns_filter.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static void check_name(const uint8_t *data, size_t end, const char *name)
{
	size_t len = strlen(name), off = 12;

	ASSERT(len <= 253);
	for (const char *p = name; *p; p++)
		ASSERT(*p > 0x20 && *p < 0x7f && !isupper((unsigned char)*p));
	/* name back to labels: the same lengths and bytes as the input. */
	for (const char *p = name; *p;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		ASSERT(l > 0 && l < 64 && data[off] == l);
		ASSERT(strncasecmp((const char *)data + off + 1, p, l) == 0);
		off += l + 1;
		p += l + (dot ? 1 : 0);
	}
	ASSERT(data[off] == 0 && off + 1 + 4 == end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[DNS_NAME_TEXT_MAX];
	uint16_t qtype;
	size_t end;
	int e = dns_query_question(data, size, name, &qtype, &end);

	if (e < 0) {
		ASSERT(e == -EINVAL);
		return 0;
	}
	ASSERT(end >= 12 + 1 + 4 && end <= size);
	check_name(data, end, name);

	uint8_t *out = malloc(end);
	ASSERT(out && dns_servfail(data, end, out) == end);
	ASSERT(out[0] == data[0] && out[1] == data[1] && (out[2] & 0x80) && (out[3] & 0x0f) == 2);
	ASSERT(out[4] == 0 && out[5] == 1 && !out[6] && !out[7] && !out[8] && !out[9] && !out[10] &&
	       !out[11]);
	ASSERT(memcmp(out + 12, data + 12, end - 12) == 0);
	free(out);

	/* An answer from a hosts file: the question's type decides the
	 * record size; it fits in the room the relay gives it. */
	uint8_t addrs[4][16], ans[2048];
	int k = dns_hosts_lookup("10.0.0.1 a corp.example\nfd00::1 A\n10.0.0.2 a\n", name,
	                         qtype == 28 ? AF_INET6 : AF_INET, addrs, 4);
	ASSERT(k == -ENOENT || (k >= 0 && k <= 2));
	if (k >= 0) {
		size_t rr = qtype == 28 ? 28 : 16;
		ASSERT(dns_hosts_answer(data, end, (const uint8_t(*)[16])addrs, (size_t)k, ans,
		                        sizeof(ans)) == end + (size_t)k * rr);
		ASSERT(ans[7] == k && (ans[3] & 0x0f) == 0);
	}

	struct dns_filter f = {0};
	const char *entry;
	dns_filter_add_name(&f, "corp.example");
	dns_filter_add_name(&f, "A");
	dns_filter_set_search(&f, "search default.svc.cluster.local svc.cluster.local\n");
	bool local = dns_filter_local(&f, name, &entry);
	f.remote = true;
	ASSERT(dns_filter_local(&f, name, &entry) == !local);
	ASSERT(!entry || strcmp(entry, "a") == 0 || strcmp(entry, "corp.example") == 0);
	dns_filter_free(&f);
	return 0;
}
