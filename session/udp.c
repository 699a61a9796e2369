/* UDP flows: one per (program socket, destination).
 *
 * A flow is a relay socket on loopback, connected to the program socket's
 * address so that it accepts datagrams from that socket only, plus an agent
 * stream to the destination. The stream is requested by the flow's first
 * datagram, not by connect(): glibc's and Go's resolvers connect() a UDP
 * socket to every address they sort and never send on it, and each of
 * those would otherwise cost a round trip to the agent. Datagrams that
 * arrive while the stream opens wait in a short queue; a refused flow
 * drops datagrams for a second, as an unreachable network would. */
#include "session/internal.h"
#include "common/util.h"

#include <string.h>
#include <sys/stat.h>

static bool same_addr(const struct sockaddr_storage *a, socklen_t al, const struct sockaddr *b,
                      socklen_t bl)
{
	return al == bl && memcmp(a, b, al) == 0;
}

static struct stream *flow_find(struct session *s, ino_t ino, const struct sockaddr *dst,
                                socklen_t len)
{
	for (struct stream *st = u64map_get(&s->udp, ino); st; st = st->ino_next)
		if (same_addr(&st->dst, st->dstlen, dst, len))
			return st;
	return NULL;
}

static void udp_send_agent(struct session *s, struct stream *st, const uint8_t *p, size_t n)
{
	struct ap_msg m = {.type = AP_DATA, .id = st->id};

	m.u.data.data = (struct ap_bytes){p, (uint32_t)n};
	s->stats.bytes_up += n;
	session_send(s, &m);
}

/* Ask the agent for the flow's stream (first datagram, or after a retry
 * delay). The v4-mapped form of an IPv4 destination goes as plain IPv4. */
static void flow_open(struct session *s, struct stream *st)
{
	struct ap_msg m = {.type = AP_CONNECT, .id = st->id};
	struct sockaddr_storage adst;
	socklen_t alen = st->dstlen;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&st->dst;

	memcpy(&adst, &st->dst, st->dstlen);
	if (st->dst.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		struct sockaddr_in *in = (struct sockaddr_in *)&adst;
		memset(&adst, 0, sizeof(adst));
		in->sin_family = AF_INET;
		in->sin_port = in6->sin6_port;
		memcpy(&in->sin_addr, &in6->sin6_addr.s6_addr[12], 4);
		alen = sizeof(*in);
	}
	if (ap_addr_from_sockaddr((struct sockaddr *)&adst, alen, &m.u.connect.dst) < 0)
		return;
	m.u.connect.stream = st->id;
	m.u.connect.proto = AP_PROTO_UDP;
	m.u.connect.window = AP_DEFAULT_WINDOW;
	if (session_send(s, &m) == 0) {
		st->state = ST_CONNECTING;
		s->stats.streams_opened++;
	}
}

void udp_io_cb(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct stream *st = data;
	struct session *s = st->s;
	uint8_t buf[AP_MAX_DATA];

	/* A few datagrams per wakeup, so one busy flow cannot starve others. */
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0)
			return;
		st->last_use_ns = now_ns();
		if (st->state == ST_OPEN) {
			udp_send_agent(s, st, buf, (size_t)n);
			if (!s->alive || s->wq_paused)
				return;
			continue;
		}
		if (st->retry_ns > st->last_use_ns)
			continue; /* refused a moment ago: dropped */
		if (st->nuq < UDP_QUEUE_MAX) {
			st->uq[st->nuq] = xmalloc((size_t)n ? (size_t)n : 1);
			memcpy(st->uq[st->nuq], buf, (size_t)n);
			st->uq_len[st->nuq++] = (uint16_t)n;
		}
		if (st->state == ST_IDLE)
			flow_open(s, st);
	}
}

void udp_flow_connected(struct session *s, struct stream *st, int err)
{
	if (err) {
		st->state = ST_IDLE;
		st->retry_ns = now_ns() + UDP_RETRY_MS * 1000000ull;
	} else {
		st->state = ST_OPEN;
	}
	for (size_t i = 0; i < st->nuq; i++) {
		if (!err)
			udp_send_agent(s, st, st->uq[i], st->uq_len[i]);
		free(st->uq[i]);
	}
	st->nuq = 0;
}

void udp_flow_watch(struct session *s, struct stream *st)
{
	if (st->events == ~0u && evloop_add(s->loop, st->fd, EPOLLIN, udp_io_cb, st) == 0)
		st->events = EPOLLIN;
}

int session_udp_attach(struct session *s, int sock_fd, const struct sockaddr *dst, socklen_t len,
                       bool connect_it)
{
	struct sockaddr_storage self, relay, to;
	socklen_t selflen = sizeof(self), relaylen = sizeof(relay), tolen;
	struct stream *st;
	struct stat sb;
	int v6only = 0, r;
	socklen_t ol = sizeof(v6only);

	if (!s->alive)
		return -ENETUNREACH;
	if (fstat(sock_fd, &sb) < 0 || getsockname(sock_fd, (struct sockaddr *)&self, &selflen) < 0)
		return -errno;
	if (self.ss_family == AF_INET6)
		getsockopt(sock_fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &ol);

	st = flow_find(s, sb.st_ino, dst, len);
	if (!st) {
		struct sockaddr_storage lo;
		socklen_t lolen;

		if (s->streams.n >= MAX_STREAMS)
			return -ENOBUFS;
		if (self.ss_family == AF_INET6 && s->relay6 < 0)
			return -ENETUNREACH;
		r = loopback_for(s, self.ss_family, v6only, &lo, &lolen, false);
		if (r < 0)
			return r;
		st = stream_new(s, SOCK_DGRAM);
		st->state = ST_IDLE;
		st->fd = socket(self.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (st->fd < 0 || bind(st->fd, (struct sockaddr *)&lo, lolen) < 0) {
			r = -errno;
			stream_free(s, st);
			return r;
		}
		st->ino = sb.st_ino;
		st->ino_next = u64map_get(&s->udp, st->ino);
		u64map_put(&s->udp, st->ino, st);
		memcpy(&st->dst, dst, len);
		st->dstlen = len;
		st->last_use_ns = now_ns();
	}
	if (getsockname(st->fd, (struct sockaddr *)&relay, &relaylen) < 0)
		return -errno;

	if (connect_it) {
		if (connect(sock_fd, (struct sockaddr *)&relay, relaylen) < 0)
			return -errno;
		st->connected = true; /* getpeername() answers for connected sockets only */
	} else if (sa_port(&self) == 0) {
		/* sendto() would autobind to the wildcard address; do the
		 * same, so the relay learns the program's port up front. */
		struct sockaddr_storage any = {.ss_family = self.ss_family};
		socklen_t anylen = self.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                              : sizeof(struct sockaddr_in);
		if (bind(sock_fd, (struct sockaddr *)&any, anylen) < 0)
			return -errno;
	}
	selflen = sizeof(self);
	if (getsockname(sock_fd, (struct sockaddr *)&self, &selflen) < 0)
		return -errno;
	/* Replies go to the program's port on loopback, whatever address it
	 * is bound to (0.0.0.0 includes loopback). */
	r = loopback_for(s, self.ss_family, v6only, &to, &tolen, false);
	if (r < 0)
		return r;
	if (self.ss_family == AF_INET)
		((struct sockaddr_in *)&to)->sin_port = ((struct sockaddr_in *)&self)->sin_port;
	else
		((struct sockaddr_in6 *)&to)->sin6_port = ((struct sockaddr_in6 *)&self)->sin6_port;
	memcpy(&st->prog, &to, tolen);
	st->proglen = tolen;
	/* Accept datagrams from the program's socket only. */
	if (connect(st->fd, (struct sockaddr *)&to, tolen) < 0)
		return -errno;
	st->prog_known = true;
	udp_flow_watch(s, st);
	return 0;
}

ssize_t session_udp_send(struct session *s, int sock_fd, const struct sockaddr *dst, socklen_t len,
                         const void *buf, size_t n, int flags)
{
	struct sockaddr_storage relay;
	socklen_t relaylen = sizeof(relay);
	struct stream *st;
	struct stat sb;
	ssize_t r;

	if (fstat(sock_fd, &sb) < 0)
		return -errno;
	st = flow_find(s, sb.st_ino, dst, len);
	if (!st || st->fd < 0)
		return -ENETUNREACH;
	if (getsockname(st->fd, (struct sockaddr *)&relay, &relaylen) < 0)
		return -errno;
	/* Sent from the program's own socket, so its source address, its
	 * socket options and its errors are the program's. */
	r = sendto(sock_fd, buf, n, flags | MSG_NOSIGNAL, (struct sockaddr *)&relay, relaylen);
	st->last_use_ns = now_ns();
	return r < 0 ? -errno : r;
}

bool session_udp_has(struct session *s, ino_t ino)
{
	return u64map_get(&s->udp, ino) != NULL;
}

bool session_udp_fix_source(struct session *s, ino_t ino, const void *seen, size_t seen_len,
                            socklen_t full, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	struct stream *match = NULL;
	size_t nflows = 0;

	for (struct stream *st = u64map_get(&s->udp, ino); st; st = st->ino_next) {
		struct sockaddr_storage relay;
		socklen_t rl = sizeof(relay);
		if (st->fd < 0 || getsockname(st->fd, (struct sockaddr *)&relay, &rl) < 0)
			continue;
		nflows++;
		if (rl != full)
			continue;
		/* Family and port come first: 4 seen bytes already single out
		 * one relay. With fewer, only a socket with one flow is sure. */
		if (seen_len >= 4 && memcmp(&relay, seen, seen_len < rl ? seen_len : rl) == 0)
			match = st;
		else if (seen_len < 4 && !match)
			match = st;
	}
	if (!match || (seen_len < 4 && nflows != 1))
		return false;
	memcpy(ret, &match->dst, match->dstlen);
	*ret_len = match->dstlen;
	return true;
}
