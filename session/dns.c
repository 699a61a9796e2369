/* Local DNS relays. The program gets a resolv.conf whose nameservers are
 * loopback addresses served here; each query goes to the pod's real
 * nameserver through an agent UDP stream, and the reply comes back from
 * the address the program asked. This is what makes musl work: its
 * resolver drops replies whose source is not the nameserver it sent to
 * (ptrace-notes §6.6), so rewriting connect() alone would not do.
 * TCP (truncated answers) is relayed the same way. */
#include "session/internal.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* 127.0.0.53/54 belong to systemd-resolved on many workstations. */
#define DNS_FIRST_HOST 0x7f000099u /* 127.0.0.153 */
#define DNS_HEADER 12
#define DNS_QUERY_TTL_NS (10ull * 1000000000ull)

/* All queries to one nameserver share one agent UDP stream. The upstream
 * sees queries from one socket, so query ids from different clients could
 * collide: each query gets an id of ours (slot + generation), and the
 * reply is matched and given back its original id. */
static void dns_upstream_open(struct dns_ns *d);

static void dns_send_upstream(struct dns_ns *d, const uint8_t *p, size_t n)
{
	struct ap_msg m = {.type = AP_DATA, .id = d->stream};

	m.u.data.data = (struct ap_bytes){p, (uint32_t)n};
	session_send(d->s, &m);
}

static void dns_upstream_ready(void *data, int err, uint32_t stream)
{
	struct dns_ns *d = data;
	struct stream *st;

	d->req = 0;
	if (err || !(st = u64map_get(&d->s->streams, stream))) {
		/* Queued queries are dropped; the resolvers retry. */
		for (size_t i = 0; i < d->nqueue; i++)
			free(d->queue[i]);
		d->nqueue = 0;
		return;
	}
	st->dns = d;
	d->stream = stream;
	for (size_t i = 0; i < d->nqueue; i++) {
		dns_send_upstream(d, d->queue[i], d->queue_len[i]);
		free(d->queue[i]);
	}
	d->nqueue = 0;
}

static void dns_upstream_open(struct dns_ns *d)
{
	if (d->stream || d->req > 0 || !d->s->alive)
		return;
	int64_t r = session_connect(d->s, SOCK_DGRAM, (struct sockaddr *)&d->upstream,
	                            d->upstreamlen, dns_upstream_ready, d);
	d->req = r > 0 ? r : 0;
}

static void dns_udp_query(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct dns_ns *d = data;
	uint8_t buf[AP_MAX_DATA];

	for (int i = 0; i < 16; i++) {
		struct sockaddr_in c;
		socklen_t cl = sizeof(c);
		ssize_t n =
		        recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&c, &cl);
		if (n < 0)
			return;
		if (n < DNS_HEADER || cl != sizeof(c) || c.sin_family != AF_INET)
			continue;
		/* Take the next slot; an unanswered query older than the
		 * resolvers' own timeouts is simply overwritten. */
		uint16_t slot = d->next_slot;
		d->next_slot = (uint16_t)((d->next_slot + 1) % DNS_SLOTS);
		if (slot == 0)
			d->gen = (uint16_t)((d->gen + 1) & 0x3f);
		struct dns_query *q = &d->q[slot];
		size_t qend;
		bool local = dns_route(d->s, buf, (size_t)n, false, &qend);
		free(q->ws_query);
		*q = (struct dns_query){
		        .used = true,
		        .client = c,
		        .orig_id = (uint16_t)(buf[0] << 8 | buf[1]),
		        .wire_id = (uint16_t)(d->gen << 10 | slot),
		        .sent_ns = now_ns(),
		};
		buf[0] = (uint8_t)(q->wire_id >> 8);
		buf[1] = (uint8_t)q->wire_id;
		if (local) {
			dns_send_local(d, q, buf, (size_t)n, qend);
			continue;
		}
		if (d->stream) {
			dns_send_upstream(d, buf, (size_t)n);
			continue;
		}
		if (d->nqueue < DNS_QUEUE_MAX) {
			d->queue[d->nqueue] = xmalloc((size_t)n);
			memcpy(d->queue[d->nqueue], buf, (size_t)n);
			d->queue_len[d->nqueue++] = (uint16_t)n;
		}
		dns_upstream_open(d);
	}
}

static void dns_release(struct dns_query *q)
{
	q->used = false;
	free(q->ws_query);
	q->ws_query = NULL;
}

void dns_reply(struct dns_ns *d, const uint8_t *p, size_t n, bool local)
{
	uint8_t buf[AP_MAX_DATA];

	if (n < DNS_HEADER || n > sizeof(buf))
		return;
	uint16_t id = (uint16_t)(p[0] << 8 | p[1]);
	struct dns_query *q = &d->q[id % DNS_SLOTS];
	/* A reply that matches no outstanding query (late, duplicate or
	 * forged, or from the side the query was not sent to) is dropped, as
	 * a resolver would. */
	if (!q->used || q->wire_id != id || q->local != local ||
	    now_ns() - q->sent_ns > DNS_QUERY_TTL_NS)
		return;
	memcpy(buf, p, n);
	buf[0] = (uint8_t)(q->orig_id >> 8);
	buf[1] = (uint8_t)q->orig_id;
	dns_release(q);
	sendto(d->udp_fd, buf, n, MSG_DONTWAIT, (struct sockaddr *)&q->client, sizeof(q->client));
}

void dns_fail(struct dns_ns *d, struct dns_query *q)
{
	/* Header and question only: 12 + 255 + 4 bytes at most. */
	uint8_t buf[DNS_HEADER + 255 + 4];

	if (q->ws_query && q->ws_qlen <= sizeof(buf)) {
		size_t n = dns_servfail(q->ws_query, q->ws_qlen, buf);
		buf[0] = (uint8_t)(q->orig_id >> 8);
		buf[1] = (uint8_t)q->orig_id;
		sendto(d->udp_fd, buf, n, MSG_DONTWAIT, (struct sockaddr *)&q->client,
		       sizeof(q->client));
	}
	dns_release(q);
}

void dns_on_stream_data(struct session *s, struct stream *st, const uint8_t *p, uint32_t n)
{
	dns_reply(st->dns, p, n, false);
}

/* A TCP query: open a TCP stream to the nameserver and relay the accepted
 * connection through it like any other. */
struct dns_tcp {
	struct session *s;
	int fd;
};

static void dns_tcp_connected(void *data, int err, uint32_t stream)
{
	struct dns_tcp *t = data;
	struct session *s = t->s;
	struct stream *st = u64map_get(&s->streams, stream);

	if (err || !st) {
		close(t->fd);
	} else {
		st->fd = t->fd;
		stream_update(s, st);
	}
	free(t);
}

void dns_tcp_pod(struct session *s, struct dns_ns *d, int c)
{
	struct dns_tcp *t = xcalloc(1, sizeof(*t));

	t->s = s;
	t->fd = c;
	if (session_connect(s, SOCK_STREAM, (struct sockaddr *)&d->upstream, d->upstreamlen,
	                    dns_tcp_connected, t) < 0) {
		close(c);
		free(t);
	}
}

static void dns_tcp_accept(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct dns_ns *d = data;
	struct session *s = d->s;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (c < 0)
		return;
	/* With a filter, where it goes depends on the query. */
	if (s->dns_filter || s->dns_trace)
		dns_tcp_peek(d, c);
	else
		dns_tcp_pod(s, d, c);
}

/* Parse "nameserver ADDR" lines. Returns the number found (<= max). */
size_t parse_nameservers(const char *conf, struct sockaddr_storage *out, socklen_t *outlen,
                         size_t max)
{
	size_t n = 0;
	const char *line = conf;

	while (line && *line && n < max) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char buf[256];
		if (len < sizeof(buf)) {
			memcpy(buf, line, len);
			buf[len] = 0;
			char *p = buf;
			while (isspace((unsigned char)*p))
				p++;
			if (strncmp(p, "nameserver", 10) == 0 && isspace((unsigned char)p[10])) {
				p += 10;
				while (isspace((unsigned char)*p))
					p++;
				char *e = p;
				while (*e && !isspace((unsigned char)*e))
					e++;
				*e = 0;
				/* Drop an IPv6 zone ("%eth0"): meaningless here. */
				char *pct = strchr(p, '%');
				if (pct)
					*pct = 0;
				struct sockaddr_in *in = (struct sockaddr_in *)&out[n];
				struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out[n];
				memset(&out[n], 0, sizeof(out[n]));
				if (inet_pton(AF_INET, p, &in->sin_addr) == 1) {
					in->sin_family = AF_INET;
					in->sin_port = htons(53);
					outlen[n++] = sizeof(*in);
				} else if (inet_pton(AF_INET6, p, &in6->sin6_addr) == 1) {
					in6->sin6_family = AF_INET6;
					in6->sin6_port = htons(53);
					outlen[n++] = sizeof(*in6);
				}
			}
		}
		line = end ? end + 1 : NULL;
	}
	return n;
}

static int bind_dns(int type, const struct sockaddr_in *a)
{
	_cleanup_close_ int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)a, sizeof(*a)) < 0)
		return -errno;
	if (type == SOCK_STREAM && listen(fd, 64) < 0)
		return -errno;
	return TAKE_FD(fd);
}

int session_dns_start(struct session *s, const char *pod_conf, char **ret_conf)
{
	struct sockaddr_storage ups[DNS_MAX_NS];
	socklen_t upslen[DNS_MAX_NS];
	size_t n = parse_nameservers(pod_conf, ups, upslen, DNS_MAX_NS);
	uint32_t host = DNS_FIRST_HOST;
	size_t cap = strlen(pod_conf) + 256, len = 0;
	char *out;

	if (n == 0) {
		/* No nameserver in the pod: nothing to relay; the program's
		 * lookups fail as they would there. */
		*ret_conf = xstrdup(pod_conf);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct dns_ns *d = &s->dns[s->ndns];
		int r = -EADDRINUSE;
		/* Skip loopback addresses something else already serves. */
		for (int tries = 0; tries < 32 && r == -EADDRINUSE; tries++, host++) {
			memset(&d->local, 0, sizeof(d->local));
			d->local.sin_family = AF_INET;
			d->local.sin_addr.s_addr = htonl(host);
			d->local.sin_port = htons(53);
			r = bind_dns(SOCK_DGRAM, &d->local);
			if (r >= 0) {
				d->udp_fd = r;
				r = bind_dns(SOCK_STREAM, &d->local);
				if (r < 0) {
					close(d->udp_fd);
					if (r != -EADDRINUSE)
						return r;
				} else {
					d->tcp_fd = r;
				}
			}
		}
		if (r < 0)
			return r;
		memcpy(&d->upstream, &ups[i], upslen[i]);
		d->upstreamlen = upslen[i];
		d->s = s;
		evloop_add(s->loop, d->udp_fd, EPOLLIN, dns_udp_query, d);
		evloop_add(s->loop, d->tcp_fd, EPOLLIN, dns_tcp_accept, d);
		s->ndns++;
		dns_upstream_open(d);
		if ((r = dns_local_open(d)) < 0)
			return r;
	}
	if (s->dns_filter)
		dns_filter_set_search(s->dns_filter, pod_conf);

	/* The pod's file with each nameserver line replaced, in order. */
	out = xmalloc(cap);
	size_t next_ns = 0;
	for (const char *line = pod_conf; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t ll = end ? (size_t)(end - line + 1) : strlen(line);
		const char *p = line;
		while (p < line + ll && (*p == ' ' || *p == '\t'))
			p++;
		if (strncmp(p, "nameserver", 10) == 0 && next_ns < s->ndns) {
			char a[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &s->dns[next_ns++].local.sin_addr, a, sizeof(a));
			len += (size_t)snprintf(out + len, cap - len, "nameserver %s\n", a);
		} else if (strncmp(p, "nameserver", 10) != 0) {
			memcpy(out + len, line, ll);
			len += ll;
		}
		line = end ? end + 1 : NULL;
	}
	out[len] = 0;
	*ret_conf = out;
	return 0;
}

void dns_stop(struct session *s)
{
	for (size_t i = 0; i < s->ndns; i++) {
		if (s->loop) {
			evloop_del(s->loop, s->dns[i].udp_fd);
			evloop_del(s->loop, s->dns[i].tcp_fd);
		}
		close(s->dns[i].udp_fd);
		close(s->dns[i].tcp_fd);
		for (size_t j = 0; j < s->dns[i].nqueue; j++)
			free(s->dns[i].queue[j]);
		s->dns[i].nqueue = 0;
		dns_local_close(&s->dns[i]);
		for (size_t j = 0; j < DNS_SLOTS; j++)
			dns_release(&s->dns[i].q[j]);
	}
	dns_pipes_close(s);
	s->ndns = 0;
}

void dns_free(struct session *s)
{
	dns_filter_free(s->dns_filter);
	free(s->dns_filter);
	s->dns_filter = NULL;
	free(s->dns_hosts);
	s->dns_hosts = NULL;
}
