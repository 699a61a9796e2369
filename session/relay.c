/* Relays: join the program's sockets to agent streams.
 *
 * TCP: the program's own socket is connected (by the policy, through
 * session_attach_tcp) to a listener on loopback. Before connecting, the
 * socket is bound, and its source port is registered as the key of the
 * stream it belongs to. The listener accepts only connections whose source
 * key is registered: other local users and processes can reach a loopback
 * port, and must not get a tunnel into the pod (DESIGN.md "Security").
 *
 * UDP: one relay socket per (program socket, destination), connected to
 * the program socket's address, so it accepts datagrams from it only. */
#include "session/internal.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define RELAY_BACKLOG 4096

static uint32_t relay_key(int family, uint16_t port)
{
	return ((uint32_t)(family == AF_INET6 ? 6 : 4) << 16) | port;
}

uint16_t sa_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

struct stream *stream_new(struct session *s, int type)
{
	struct stream *st = xcalloc(1, sizeof(*st));

	/* Client stream ids stay below AP_STREAM_AGENT_BIT and are never 0. */
	do {
		st->id = s->next_id++;
		if (s->next_id >= AP_STREAM_AGENT_BIT)
			s->next_id = 1;
	} while (st->id == 0 || u64map_get(&s->streams, st->id));
	st->s = s;
	st->type = type;
	st->state = ST_CONNECTING;
	st->fd = -1;
	st->events = ~0u;
	st->send_credit = AP_DEFAULT_WINDOW;
	u64map_put(&s->streams, st->id, st);
	return st;
}

static void udp_unlink(struct session *s, struct stream *st)
{
	struct stream *head = u64map_get(&s->udp, st->ino), **pp;

	if (!head)
		return;
	if (head == st) {
		if (st->ino_next)
			u64map_put(&s->udp, st->ino, st->ino_next);
		else
			u64map_del(&s->udp, st->ino);
		return;
	}
	for (pp = &head->ino_next; *pp; pp = &(*pp)->ino_next) {
		if (*pp == st) {
			*pp = st->ino_next;
			return;
		}
	}
}

void stream_free(struct session *s, struct stream *st)
{
	if (!st)
		return;
	u64map_del(&s->streams, st->id);
	if (st->expect_key && u64map_get(&s->expect, st->expect_key) == st)
		u64map_del(&s->expect, st->expect_key);
	if (st->type == SOCK_DGRAM && st->ino)
		udp_unlink(s, st);
	if (st->dns && st->dns->stream == st->id)
		st->dns->stream = 0;
	if (st->in_key)
		incoming_forget_stream(s, st);
	if (st->timer && s->loop)
		evloop_timer_cancel(s->loop, st->timer);
	if (st->fd >= 0) {
		if (s->loop && st->events != ~0u)
			evloop_del(s->loop, st->fd);
		close(st->fd);
	}
	free(st->out);
	for (size_t i = 0; i < st->nuq; i++)
		free(st->uq[i]);
	free(st);
}

static bool stream_live(struct session *s, struct stream *st, uint32_t id)
{
	return u64map_get(&s->streams, id) == st;
}

void send_close(struct session *s, struct stream *st, uint8_t how, int err)
{
	struct ap_msg m = {.type = AP_CLOSE, .id = st->id};

	m.u.close.how = how;
	m.u.close.err = err;
	session_send(s, &m);
}

/* Abort the local side so the program sees ECONNRESET, not a clean EOF. */
static void reset_local(struct stream *st)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (st->fd >= 0 && st->type == SOCK_STREAM)
		setsockopt(st->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void tcp_io(struct evloop *l, int fd, uint32_t events, void *data);

/* Recompute the epoll interest of a stream's local socket. */
void stream_update(struct session *s, struct stream *st)
{
	uint32_t ev = 0;

	if (st->fd < 0 || !s->loop || !s->alive)
		return;
	if (st->type == SOCK_STREAM) {
		if (st->state == ST_OPEN && !st->local_eof && st->send_credit > 0 && !s->wq_paused)
			ev |= EPOLLIN;
		if (st->out_len > st->out_off)
			ev |= EPOLLOUT;
	} else if (!s->wq_paused) {
		ev |= EPOLLIN;
	}
	if (ev == st->events)
		return;
	if (!ev) {
		/* Off the loop while we want nothing from the socket. With
		 * no interest, epoll still reports EPOLLHUP and EPOLLERR:
		 * a program that closed its end and then got more bytes
		 * (an HTTP client's next request on a connection the server
		 * closed) resets the socket, and while the agent's FIN for
		 * that stream is on its way the level-triggered loop called
		 * tcp_io() for it in a tight loop (5-9 epoll_wait() per
		 * stolen "Connection: close" request under wrk). */
		if (st->events != ~0u)
			evloop_del(s->loop, st->fd);
		st->events = ~0u;
		return;
	}
	if (st->events == ~0u) {
		if (evloop_add(s->loop, st->fd, ev, st->type == SOCK_STREAM ? tcp_io : udp_io_cb,
		               st) < 0)
			return;
	} else {
		evloop_mod(s->loop, st->fd, ev);
	}
	st->events = ev;
}

static void maybe_finish(struct session *s, struct stream *st)
{
	/* Done when both directions have ended and everything is written. */
	if (st->local_eof && st->remote_fin && st->out_off == st->out_len)
		stream_free(s, st);
}

/* Write what the agent sent to the local socket. Returns false if the
 * stream was freed. */
bool stream_flush(struct session *s, struct stream *st)
{
	/* After the agent's FIN these are the last bytes: MSG_MORE holds
	 * the tail back for the shutdown() below, so the FIN leaves in the
	 * same segment (one segment and one ACK from the program less than
	 * data, ACK, FIN). Every path that sent with it shuts down. */
	int more = st->remote_fin && !st->shut_wr ? MSG_MORE : 0;

	while (st->out_off < st->out_len) {
		ssize_t n = send(st->fd, st->out + st->out_off, st->out_len - st->out_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT | more);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			/* The program closed or reset its socket. */
			send_close(s, st, AP_CLOSE_RESET, errno);
			stream_free(s, st);
			return false;
		}
		st->out_off += (size_t)n;
		st->unacked += (uint32_t)n;
		s->stats.bytes_down += (uint64_t)n;
	}
	if (st->out_off == st->out_len) {
		/* Idle connections hold no buffer (1000 of them must fit in
		 * a few MB). */
		free(st->out);
		st->out = NULL;
		st->out_off = st->out_len = st->out_cap = 0;
	}
	/* Credit in batches (agentproto.h): one CREDIT frame per write would
	 * double the frames of a bulk download, and of every request and
	 * answer on a keep-alive connection. */
	if (st->unacked >= AP_CREDIT_BATCH) {
		struct ap_msg m = {.type = AP_CREDIT, .id = st->id};
		m.u.credit.bytes = st->unacked;
		st->unacked = 0;
		session_send(s, &m);
	}
	if (st->remote_fin && st->out_len == 0 && !st->shut_wr) {
		shutdown(st->fd, SHUT_WR);
		st->shut_wr = true;
	}
	uint32_t id = st->id;
	maybe_finish(s, st);
	return stream_live(s, st, id);
}

static void tcp_io(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct stream *st = data;
	struct session *s = st->s;
	uint32_t id = st->id;
	static uint8_t buf[AP_MAX_DATA];

	if ((events & EPOLLOUT) && !stream_flush(s, st))
		return;
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !st->local_eof && st->send_credit) {
		size_t want = st->send_credit < sizeof(buf) ? st->send_credit : sizeof(buf);
		ssize_t n = recv(fd, buf, want, MSG_DONTWAIT);
		if (n > 0 && st->discard_up) {
			/* A mirror stream: the pod has answered the peer. */
		} else if (n > 0) {
			struct ap_msg m = {.type = AP_DATA, .id = st->id};
			m.u.data.data = (struct ap_bytes){buf, (uint32_t)n};
			st->send_credit -= (uint32_t)n;
			s->stats.bytes_up += (uint64_t)n;
			session_send(s, &m);
		} else if (n == 0) {
			st->local_eof = true;
			send_close(s, st, AP_CLOSE_FIN, 0);
			maybe_finish(s, st);
		} else if (errno != EAGAIN && errno != EINTR) {
			send_close(s, st, AP_CLOSE_RESET, errno);
			stream_free(s, st);
		}
	}
	if (stream_live(s, st, id))
		stream_update(s, st);
}

void stream_on_data(struct session *s, struct stream *st, const uint8_t *p, uint32_t n)
{
	if (st->type == SOCK_DGRAM) {
		if (st->dns) {
			dns_on_stream_data(s, st, p, n);
			return;
		}
		/* One datagram for the program; a full socket buffer drops it,
		 * as UDP would. */
		if (st->fd >= 0 && st->prog_known)
			sendto(st->fd, p, n, MSG_DONTWAIT, (struct sockaddr *)&st->prog,
			       st->proglen);
		st->last_use_ns = now_ns();
		s->stats.bytes_down += n;
		return;
	}
	if (st->remote_fin || st->out_len - st->out_off + n > AP_DEFAULT_WINDOW) {
		session_lost(s, "the agent overran the window of stream %u", st->id);
		return;
	}
	if (st->fd >= 0 && st->out_len == st->out_off) {
		/* Nothing queued: hand the frame's bytes to the socket
		 * directly, and buffer only what it did not take. With the
		 * stream's FIN next in the same read, hold the bytes for the
		 * shutdown() it brings (stream_flush()). */
		ssize_t w = send(st->fd, p, n,
		                 MSG_NOSIGNAL | MSG_DONTWAIT | (s->fin_next ? MSG_MORE : 0));
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			send_close(s, st, AP_CLOSE_RESET, errno);
			stream_free(s, st);
			return;
		}
		if (w > 0) {
			p += w;
			n -= (uint32_t)w;
			st->unacked += (uint32_t)w;
			s->stats.bytes_down += (uint64_t)w;
		}
		if (n == 0) {
			if (stream_flush(s, st)) /* credits, FIN */
				stream_update(s, st);
			return;
		}
	}
	if (st->out_off && st->out_len + n > st->out_cap) {
		memmove(st->out, st->out + st->out_off, st->out_len - st->out_off);
		st->out_len -= st->out_off;
		st->out_off = 0;
	}
	if (st->out_len + n > st->out_cap) {
		/* Grow on demand: most connections never buffer much, and a
		 * thousand idle ones must not cost a window each. */
		size_t cap = st->out_cap ? st->out_cap : 16384;
		while (cap < st->out_len + n)
			cap *= 2;
		st->out_cap = cap < AP_DEFAULT_WINDOW ? cap : AP_DEFAULT_WINDOW;
		st->out = xrealloc(st->out, st->out_cap);
	}
	memcpy(st->out + st->out_len, p, n);
	st->out_len += n;
	if (st->fd >= 0 && !stream_flush(s, st))
		return;
	stream_update(s, st);
}

bool stream_can_splice(struct session *s, uint32_t id)
{
	struct stream *st = u64map_get(&s->streams, id);

	/* Spliced bytes go to the socket first: only where none are queued
	 * before them. */
	return st && st->type == SOCK_STREAM && st->fd >= 0 && st->out_len == st->out_off &&
	       !st->remote_fin;
}

void stream_on_spliced(struct session *s, uint32_t id, int pipefd, size_t n)
{
	static uint8_t buf[AP_MAX_DATA];
	struct stream *st = u64map_get(&s->streams, id);

	if (stream_can_splice(s, id)) {
		ssize_t w =
		        splice(pipefd, NULL, st->fd, NULL, n, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			/* The program closed or reset its socket. */
			send_close(s, st, AP_CLOSE_RESET, errno);
			stream_free(s, st);
		} else if (w > 0) {
			n -= (size_t)w;
			st->unacked += (uint32_t)w;
			s->stats.bytes_down += (uint64_t)w;
			s->stats.bytes_spliced += (uint64_t)w;
			if (n == 0) {
				if (stream_flush(s, st)) /* credits, FIN */
					stream_update(s, st);
				return;
			}
		}
	}
	/* What the socket did not take goes the buffered way; the bytes of a
	 * stream that is gone are dropped. Either way the pipe is emptied. */
	while (n > 0) {
		ssize_t r = read(pipefd, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (r <= 0) {
			session_lost(s, "cannot read back %zu bytes from the splice pipe: %s", n,
			             r < 0 ? strerror(errno) : "EOF");
			return;
		}
		n -= (size_t)r;
		st = u64map_get(&s->streams, id);
		if (st)
			stream_on_data(s, st, buf, (uint32_t)r);
	}
}

void stream_on_credit(struct session *s, struct stream *st, uint32_t n)
{
	/* Datagrams are not credit-controlled: a full buffer drops them. */
	if (st->type == SOCK_DGRAM)
		return;
	if ((uint64_t)st->send_credit + n > AP_DEFAULT_WINDOW) {
		session_lost(s, "the agent granted more credit than the window on stream %u",
		             st->id);
		return;
	}
	st->send_credit += n;
	stream_update(s, st);
}

void stream_on_close(struct session *s, struct stream *st, uint8_t how, int32_t err)
{
	if (st->type == SOCK_DGRAM || how == AP_CLOSE_RESET) {
		reset_local(st);
		stream_free(s, st);
		return;
	}
	st->remote_fin = true;
	if (st->fd >= 0 && !stream_flush(s, st))
		return;
	stream_update(s, st);
}

void stream_on_connected(struct session *s, struct stream *st, int err)
{
	session_open_cb cb = st->cb;
	void *cbdata = st->cbdata;
	uint32_t id = st->id;

	if (st->timer) {
		evloop_timer_cancel(s->loop, st->timer);
		st->timer = 0;
	}
	st->cb = NULL;
	if (st->type == SOCK_DGRAM && !st->dns && st->ino) {
		udp_flow_connected(s, st, err);
		return;
	}
	if (err) {
		stream_free(s, st);
		if (cb)
			cb(cbdata, err, 0);
		return;
	}
	st->state = ST_OPEN;
	if (!cb) {
		/* Cancelled or timed out meanwhile: nobody wants it. */
		send_close(s, st, AP_CLOSE_RESET, 0);
		stream_free(s, st);
		return;
	}
	cb(cbdata, 0, id);
}

/* Accept one connection from a relay listener and join it to the stream
 * that expects its source port. Returns false when the queue is empty. */
static bool relay_accept_one(struct session *s, int lfd)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	int c = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (c < 0)
		return false;
	uint32_t key = relay_key(peer.ss_family, sa_port(&peer));
	struct stream *st = u64map_get(&s->expect, key);
	if (!st || st->fd >= 0) {
		/* Not one of ours: refuse without a byte. */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c);
		return true;
	}
	u64map_del(&s->expect, key);
	st->expect_key = 0;
	st->fd = c;
	if (stream_flush(s, st))
		stream_update(s, st);
	return true;
}

static void relay_accept(struct evloop *l, int fd, uint32_t events, void *data)
{
	for (int i = 0; i < 64 && relay_accept_one(data, fd); i++)
		;
}

static int listen_on(int family, struct sockaddr_storage *addr, socklen_t *len)
{
	_cleanup_close_ int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(addr, 0, sizeof(*addr));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)addr;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
		int one = 1;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		*len = sizeof(*in6);
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)addr, *len) < 0 || listen(fd, RELAY_BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)addr, len) < 0)
		return -errno;
	return TAKE_FD(fd);
}

/* A port that is bound but not listening answers every SYN with RST. */
static int refuser(int family)
{
	struct sockaddr_storage a;
	socklen_t len;
	int fd = listen_on(family, &a, &len);

	if (fd < 0)
		return fd;
	/* listen_on() listened; a second socket on a fresh port does not. */
	_cleanup_close_ int lfd = fd;
	_cleanup_close_ int r = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r < 0)
		return -errno;
	if (family == AF_INET)
		((struct sockaddr_in *)&a)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&a)->sin6_port = 0;
	if (bind(r, (struct sockaddr *)&a, len) < 0)
		return -errno;
	return TAKE_FD(r);
}

int session_refuse(struct session *s, int sock_fd)
{
	struct sockaddr_storage self, to;
	socklen_t sl = sizeof(self), tl = sizeof(to);
	int fd;

	if (getsockname(sock_fd, (struct sockaddr *)&self, &sl) < 0)
		return -errno;
	fd = self.ss_family == AF_INET6 ? s->refuser6 : s->refuser4;
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&to, &tl) < 0)
		return -ECONNREFUSED;
	return connect(sock_fd, (struct sockaddr *)&to, tl) < 0 ? -errno : 0;
}

int relay_start(struct session *s)
{
	struct sockaddr_storage a;
	socklen_t len;
	int r;

	s->refuser4 = refuser(AF_INET);
	s->refuser6 = refuser(AF_INET6);

	r = listen_on(AF_INET, &a, &len);
	if (r < 0)
		return r;
	s->relay4 = r;
	memcpy(&s->relay4_addr, &a, sizeof(s->relay4_addr));
	/* IPv6 may be disabled on this machine; IPv6 sockets then use the
	 * v4-mapped form of the IPv4 relay. */
	r = listen_on(AF_INET6, &a, &len);
	if (r >= 0) {
		s->relay6 = r;
		memcpy(&s->relay6_addr, &a, sizeof(s->relay6_addr));
	}
	return 0;
}

int relay_watch(struct session *s)
{
	int r = evloop_add(s->loop, s->relay4, EPOLLIN, relay_accept, s);

	if (r >= 0 && s->relay6 >= 0)
		r = evloop_add(s->loop, s->relay6, EPOLLIN, relay_accept, s);
	return r;
}

int loopback_for(struct session *s, int family, bool v6only, struct sockaddr_storage *ret,
                 socklen_t *ret_len, bool relay)
{
	memset(ret, 0, sizeof(*ret));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ret;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		in->sin_port = relay ? s->relay4_addr.sin_port : 0;
		*ret_len = sizeof(*in);
		return 0;
	}
	if (family != AF_INET6)
		return -EAFNOSUPPORT;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;
	in6->sin6_family = AF_INET6;
	*ret_len = sizeof(*in6);
	if (s->relay6 >= 0 || !relay) {
		in6->sin6_addr = in6addr_loopback;
		in6->sin6_port = relay ? s->relay6_addr.sin6_port : 0;
		return 0;
	}
	if (v6only)
		return -ENETUNREACH;
	/* ::ffff:127.0.0.1 reaches the IPv4 relay from a dual-stack socket. */
	in6->sin6_addr.s6_addr[10] = 0xff;
	in6->sin6_addr.s6_addr[11] = 0xff;
	in6->sin6_addr.s6_addr[12] = 127;
	in6->sin6_addr.s6_addr[15] = 1;
	in6->sin6_port = s->relay4_addr.sin_port;
	return 0;
}

int session_attach_tcp(struct session *s, uint32_t stream, int sock_fd, const struct sockaddr *dst,
                       socklen_t len)
{
	struct stream *st = u64map_get(&s->streams, stream);
	struct sockaddr_storage self, relay;
	socklen_t selflen = sizeof(self), relaylen;
	struct stat sb;
	int v6only = 0, r;
	socklen_t ol = sizeof(v6only);

	if (!st || st->type != SOCK_STREAM)
		return -ECONNRESET;
	if (getsockname(sock_fd, (struct sockaddr *)&self, &selflen) < 0)
		return -errno;
	if (self.ss_family == AF_INET6)
		getsockopt(sock_fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &ol);
	if (sa_port(&self) == 0) {
		/* Unbound: bind to loopback so the relay can tell our
		 * connection apart by its source port. */
		struct sockaddr_storage lo;
		socklen_t lolen;
		r = loopback_for(s, self.ss_family, v6only, &lo, &lolen, false);
		if (r < 0)
			return r;
		if (s->relay6 < 0 && self.ss_family == AF_INET6 && !v6only) {
			/* bind to the v4-mapped loopback to reach the v4 relay */
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&lo;
			memset(&in6->sin6_addr, 0, sizeof(in6->sin6_addr));
		}
		if (bind(sock_fd, (struct sockaddr *)&lo, lolen) < 0)
			return -errno;
		selflen = sizeof(self);
		if (getsockname(sock_fd, (struct sockaddr *)&self, &selflen) < 0)
			return -errno;
	}
	r = loopback_for(s, self.ss_family, v6only, &relay, &relaylen, true);
	if (r < 0)
		return r;
	/* The accepted peer's family is that of the listener it reached. */
	int fam = (self.ss_family == AF_INET6 && s->relay6 >= 0) ? AF_INET6 : AF_INET;
	st->expect_key = relay_key(fam, sa_port(&self));
	if (u64map_get(&s->expect, st->expect_key))
		return -EADDRINUSE;
	u64map_put(&s->expect, st->expect_key, st);
	if (fstat(sock_fd, &sb) == 0) {
		struct peer *pe = u64map_get(&s->peers, sb.st_ino);
		if (!pe) {
			pe = xmalloc(sizeof(*pe));
			u64map_put(&s->peers, sb.st_ino, pe);
		}
		memcpy(&pe->addr, dst, len);
		pe->len = len;
		st->ino = sb.st_ino;
	}
	/* Same open file description as the program's fd: its O_NONBLOCK
	 * decides between 0 and -EINPROGRESS, exactly as for a real connect. */
	r = connect(sock_fd, (struct sockaddr *)&relay, relaylen) < 0 ? -errno : 0;
	if (r < 0 && r != -EINPROGRESS) {
		u64map_del(&s->expect, st->expect_key);
		st->expect_key = 0;
		send_close(s, st, AP_CLOSE_RESET, -r);
		stream_free(s, st);
		return r;
	}
	/* On loopback the handshake is done inside connect(), blocking or
	 * not: take the connection from the listener now rather than in a
	 * later loop turn that epoll_wait() would wake for, and with one
	 * accept4() where the listener's callback needs a second one to
	 * see the queue empty. Once only: anything else queued (or ours,
	 * if the handshake is not done yet) keeps the listener readable. */
	if (s->loop && s->alive)
		relay_accept_one(s, fam == AF_INET6 ? s->relay6 : s->relay4);
	return r;
}

/* Is addr the address of one of our relays (the TCP listeners, or the UDP
 * relay socket of a flow of ino)? */
static bool is_relay_addr(struct session *s, ino_t ino, const struct sockaddr *addr, socklen_t len)
{
	if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
		if (in->sin_addr.s_addr == s->relay4_addr.sin_addr.s_addr &&
		    in->sin_port == s->relay4_addr.sin_port)
			return true;
	} else if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
		if (s->relay6 >= 0 && in6->sin6_port == s->relay6_addr.sin6_port &&
		    IN6_ARE_ADDR_EQUAL(&in6->sin6_addr, &s->relay6_addr.sin6_addr))
			return true;
		/* ::ffff:127.0.0.1 to the IPv4 relay, from a dual-stack socket */
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		    in6->sin6_port == s->relay4_addr.sin_port &&
		    memcmp(&in6->sin6_addr.s6_addr[12], &s->relay4_addr.sin_addr, 4) == 0)
			return true;
	}
	for (struct stream *st = u64map_get(&s->udp, ino); st; st = st->ino_next) {
		struct sockaddr_storage r;
		socklen_t rl = sizeof(r);
		if (st->fd >= 0 && getsockname(st->fd, (struct sockaddr *)&r, &rl) == 0 &&
		    rl == len && memcmp(&r, addr, len) == 0)
			return true;
	}
	return false;
}

bool session_is_own_addr(struct session *s, const struct sockaddr *addr, socklen_t len)
{
	if (is_relay_addr(s, 0, addr, len))
		return true;
	if (addr->sa_family != AF_INET || len < sizeof(struct sockaddr_in))
		return false;
	const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
	for (size_t i = 0; i < s->ndns; i++)
		if (in->sin_addr.s_addr == s->dns[i].local.sin_addr.s_addr)
			return true;
	return false;
}

bool session_peer_of(struct session *s, ino_t ino, const struct sockaddr *kernel_peer,
                     socklen_t kernel_len, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	struct peer *pe;

	/* The kernel's answer must still be our relay: after an AF_UNSPEC
	 * disconnect and a connect elsewhere, the kernel is right. */
	if (!is_relay_addr(s, ino, kernel_peer, kernel_len))
		return false;
	pe = u64map_get(&s->peers, ino);
	if (pe) {
		memcpy(ret, &pe->addr, pe->len);
		*ret_len = pe->len;
		return true;
	}
	for (struct stream *st = u64map_get(&s->udp, ino); st; st = st->ino_next) {
		if (st->connected) {
			memcpy(ret, &st->dst, st->dstlen);
			*ret_len = st->dstlen;
			return true;
		}
	}
	return false;
}

/* ---- whole-session operations ----------------------------------------- */

void relays_resume(struct session *s)
{
	uint64_t key;
	void *v;

	for (size_t i = 0; u64map_next(&s->streams, &i, &key, &v);)
		stream_update(s, v);
}

/* Reset every stream; with keep_parked, not the connects that wait for the
 * agent's answer while the program holds nothing yet. Those that fail get
 * err. Returns how many of the program's TCP connections were reset. */
static size_t reset_streams(struct session *s, bool keep_parked, int err)
{
	uint64_t key;
	void *v;
	size_t n = 0, nreset = 0, cap = s->streams.n;
	struct stream **all = xcalloc(cap + 1, sizeof(*all));

	/* Collect first: callbacks below may free streams. */
	for (size_t i = 0; u64map_next(&s->streams, &i, &key, &v) && n < cap;)
		all[n++] = v;
	for (size_t i = 0; i < n; i++) {
		struct stream *st = all[i];
		if (keep_parked && st->state == ST_CONNECTING && st->cb)
			continue;
		if (st->type == SOCK_STREAM && st->fd >= 0)
			nreset++;
		session_open_cb cb = st->state == ST_CONNECTING ? st->cb : NULL;
		void *cbdata = st->cbdata;
		st->cb = NULL;
		reset_local(st);
		stream_free(s, st);
		if (cb)
			cb(cbdata, err, 0);
	}
	free(all);
	return nreset;
}

void relays_reset_all(struct session *s)
{
	/* A connect waiting for the agent fails as an unreachable network:
	 * that is what the pod link now is. */
	reset_streams(s, false, ENETUNREACH);
}

size_t relays_link_down(struct session *s)
{
	/* A parked connect: the program waits in connect() and holds nothing
	 * yet. Asking again is safe, since the agent dropped whatever it had
	 * started for the old link. */
	return reset_streams(s, true, ECONNRESET);
}

int relays_resend_connects(struct session *s)
{
	uint64_t key;
	void *v;

	for (size_t i = 0; u64map_next(&s->streams, &i, &key, &v);) {
		struct stream *st = v;
		if (st->state != ST_CONNECTING || !st->cb)
			continue;
		struct ap_msg m = {.type = AP_CONNECT, .id = st->id};
		int r = ap_addr_from_sockaddr((struct sockaddr *)&st->dst, st->dstlen,
		                              &m.u.connect.dst);
		if (r < 0)
			return r;
		m.u.connect.stream = st->id;
		m.u.connect.proto = st->type == SOCK_DGRAM ? AP_PROTO_UDP : AP_PROTO_TCP;
		m.u.connect.window = AP_DEFAULT_WINDOW;
		r = session_send(s, &m);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- freeing flows of closed program sockets -------------------------- */

static void sweep(struct evloop *l, void *data)
{
	struct session *s = data;
	uint64_t now = now_ns(), key, *live = NULL;
	struct u64map alive = {0};
	struct stream **idle;
	size_t nidle = 0, nlive;
	void *v;

	s->sweep_timer = 0;
	if (!s->alive)
		return;
	idle = xcalloc(s->streams.n + 1, sizeof(*idle));
	for (size_t i = 0; u64map_next(&s->streams, &i, &key, &v);) {
		struct stream *st = v;
		if (st->type == SOCK_DGRAM && st->ino && !st->dns &&
		    now - st->last_use_ns > UDP_IDLE_MS * 1000000ull)
			idle[nidle++] = st;
	}
	if ((nidle || s->peers.n) && s->live) {
		uint64_t *dead;
		size_t ndead = 0;

		nlive = s->live(s->live_data, &live);
		for (size_t i = 0; i < nlive; i++)
			u64map_put(&alive, live[i], &alive);
		for (size_t i = 0; i < nidle; i++) {
			if (u64map_get(&alive, idle[i]->ino))
				continue;
			send_close(s, idle[i], AP_CLOSE_RESET, 0);
			stream_free(s, idle[i]);
		}
		/* Collect first: deleting while iterating moves entries. */
		dead = xcalloc(s->peers.n + 1, sizeof(*dead));
		for (size_t i = 0; u64map_next(&s->peers, &i, &key, &v);)
			if (!u64map_get(&alive, key))
				dead[ndead++] = key;
		for (size_t i = 0; i < ndead; i++)
			free(u64map_del(&s->peers, dead[i]));
		free(dead);
		u64map_free(&alive);
		free(live);
	}
	free(idle);
	s->sweep_timer = evloop_timer(l, SWEEP_MS, sweep, s);
}

void session_set_liveness(struct session *s, size_t (*live)(void *data, uint64_t **ret_inodes),
                          void *data)
{
	s->live = live;
	s->live_data = data;
	if (!s->sweep_timer && s->loop)
		s->sweep_timer = evloop_timer(s->loop, SWEEP_MS, sweep, s);
}
