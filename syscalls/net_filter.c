/* The outgoing filter's grammar and matching (net_filter.h). */
#include "syscalls/net_filter.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* An entry is at most a name of 253 bytes plus protocol, prefix and port. */
#define SPEC_MAX 300

static bool parse_uint(const char *s, size_t len, unsigned max, unsigned *ret)
{
	unsigned v = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return false;
	*ret = v;
	return true;
}

/* A DNS name: labels of letters, digits, '-' and '_' separated by dots. */
static bool valid_name(const char *s, size_t len)
{
	if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
		if (!ok || (c == '.' && i + 1 < len && s[i + 1] == '.'))
			return false;
	}
	return true;
}

static int parse(const char *spec, struct net_filter_rule *r)
{
	size_t len = strlen(spec);
	const char *p = spec, *end = spec + len;
	char host[INET6_ADDRSTRLEN + 1];

	if (len > SPEC_MAX)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	const char *sep = strstr(p, "://");
	if (sep) {
		size_t n = (size_t)(sep - p);
		if (n == 3 && strncmp(p, "tcp", 3) == 0)
			r->type = SOCK_STREAM;
		else if (n == 3 && strncmp(p, "udp", 3) == 0)
			r->type = SOCK_DGRAM;
		else if (!(n == 3 && strncmp(p, "any", 3) == 0))
			return -EINVAL;
		p = sep + 3;
	}
	/* The address part ends at '/' or ':' (outside brackets). */
	const char *a = p, *aend;
	if (*p == '[') {
		aend = memchr(p, ']', (size_t)(end - p));
		if (!aend || (size_t)(aend - a - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, a + 1, (size_t)(aend - a - 1));
		host[aend - a - 1] = '\0';
		if (inet_pton(AF_INET6, host, &r->addr) != 1)
			return -EINVAL;
		r->family = AF_INET6;
		r->prefix = 128;
		p = aend + 1;
	} else {
		aend = p + strcspn(p, "/:");
		size_t n = (size_t)(aend - a);
		if (n && n < sizeof(host)) {
			memcpy(host, a, n);
			host[n] = '\0';
		}
		if (n && n < sizeof(host) && inet_pton(AF_INET, host, &r->addr) == 1) {
			r->family = AF_INET;
			r->prefix = 32;
		} else if (n) {
			if (!valid_name(a, n))
				return -EINVAL;
			r->name = xstrndup(a, n);
		}
		p = aend;
	}
	if (*p == '/') {
		const char *q = ++p;
		p += strcspn(p, ":");
		if (!r->family ||
		    !parse_uint(q, (size_t)(p - q), r->family == AF_INET ? 32 : 128, &r->prefix))
			goto bad;
	}
	if (*p == ':') {
		p++;
		if (!parse_uint(p, (size_t)(end - p), 65535, &r->port))
			goto bad;
		p = end;
	}
	if (p != end)
		goto bad;
	/* 0.0.0.0 and [::] mean any address, whatever the prefix. */
	static const struct in6_addr zero;
	if (r->family && memcmp(&r->addr, &zero, sizeof(zero)) == 0)
		r->family = 0;
	return 0;
bad:
	free(r->name);
	r->name = NULL;
	return -EINVAL;
}

int net_filter_add(struct net_filter *f, const char *spec)
{
	struct net_filter_rule r;
	int e = parse(spec, &r);

	if (e < 0)
		return e;
	f->rules = xrealloc(f->rules, (f->n + 1) * sizeof(*f->rules));
	f->rules[f->n++] = r;
	return 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

bool net_filter_match(const struct net_filter *f, int type, const struct sockaddr *dst)
{
	uint8_t addr[16];
	int family;
	unsigned port;

	if (dst->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)dst;
		family = AF_INET;
		memcpy(addr, &in->sin_addr, 4);
		port = ntohs(in->sin_port);
	} else if (dst->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)dst;
		port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			family = AF_INET;
			memcpy(addr, &in6->sin6_addr.s6_addr[12], 4);
		} else {
			family = AF_INET6;
			memcpy(addr, &in6->sin6_addr, 16);
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < f->n; i++) {
		const struct net_filter_rule *r = &f->rules[i];
		if (r->name)
			continue; /* the resolved name is not known here */
		if (r->type && r->type != type)
			continue;
		if (r->port && r->port != port)
			continue;
		if (r->family && (r->family != family ||
		                  !prefix_match(addr, (const uint8_t *)&r->addr, r->prefix)))
			continue;
		return true;
	}
	return false;
}

const char *net_filter_has_names(const struct net_filter *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->rules[i].name)
			return f->rules[i].name;
	return NULL;
}

void net_filter_free(struct net_filter *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		free(f->rules[i].name);
	free(f->rules);
	f->rules = NULL;
	f->n = 0;
}
