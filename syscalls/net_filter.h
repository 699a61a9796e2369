/* feature.network.outgoing.filter: which destinations go through the pod.
 * Pure (no I/O), so unit tests and the config check use it alone.
 *
 * One entry, mirrord's grammar (mirrord-behaviour.md, "outgoing"):
 *
 *   [tcp://|udp://|any://][NAME|IPV4|[IPV6]][/PREFIX][:PORT]
 *
 * The protocol defaults to any; no address, 0.0.0.0 or [::] is any
 * address; IP/PREFIX is a subnet; no port or port 0 is any port; ":53" is a
 * port alone. A NAME matches by substring the name the program resolved,
 * which mirrord-trace does not see: such entries are kept (and reported by
 * net_filter_has_names) but never match. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct net_filter_rule {
	int type;             /* SOCK_STREAM, SOCK_DGRAM or 0 (any) */
	int family;           /* AF_INET, AF_INET6, or 0: any address / a name */
	struct in6_addr addr; /* IPv4 in the first 4 bytes */
	unsigned prefix;      /* bits of addr that must match */
	unsigned port;        /* 0: any */
	char *name;           /* a host name entry, or NULL */
};

struct net_filter {
	bool remote; /* true: the listed destinations go remote, the rest stay
	              * local; false: the listed ones stay local */
	struct net_filter_rule *rules;
	size_t n;
};

/* Parse one entry and add it to f. Returns 0 or -EINVAL (f unchanged). */
int net_filter_add(struct net_filter *f, const char *spec);

/* Whether a connection of this type (SOCK_STREAM / SOCK_DGRAM) to dst
 * (AF_INET or AF_INET6; v4-mapped IPv6 counts as IPv4) matches an entry. */
bool net_filter_match(const struct net_filter *f, int type, const struct sockaddr *dst);

/* The first name entry, or NULL. */
const char *net_filter_has_names(const struct net_filter *f);

void net_filter_free(struct net_filter *f);
