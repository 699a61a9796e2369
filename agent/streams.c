/* Outgoing TCP and UDP relays, one per client stream, created in the
 * target's network namespace (the agent entered it before serving).
 *
 * Flow control, per stream and per direction:
 *  - socket → client: we may have at most `window` (from AP_CONNECT) bytes
 *    of DATA unacknowledged; at zero we stop reading the socket, and the
 *    kernel's receive buffer pushes back on the remote.
 *  - client → socket: we grant AP_DEFAULT_WINDOW. Bytes the client sends
 *    are buffered until written to the socket, then credited back in
 *    batches of AP_CREDIT_BATCH. A client that sends past the grant is
 *    broken: protocol error.
 * A socket is in epoll only while we want something from it. That also
 * keeps a hung-up socket we are not reading from off the level-triggered
 * loop, where EPOLLHUP would otherwise wake us forever. */
#include "agent/agent.h"
#include "common/evloop.h"
#include "common/log.h"

#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/* A read this large makes the next one a splice (client_send_from). */
#define BULK_READ (16u * 1024)
/* Frames read from one socket per readiness event, at most. */
#define READS_PER_WAKE 4
#define STREAM_BUCKET_BITS 10 /* 1024 buckets for up to AGENT_MAX_STREAMS */
#define STREAM_BUCKETS (1u << STREAM_BUCKET_BITS)

enum stream_state { ST_CONNECTING, ST_OPEN };

struct stream {
	struct stream *next; /* hash chain */
	struct streams *owner;
	uint32_t id;
	uint32_t req_id; /* the AP_CONNECT that opened it */
	uint8_t proto;
	enum stream_state state;
	int fd;
	uint32_t events;    /* current epoll interest, 0 = not registered */
	int64_t conn_timer; /* while connecting */
	/* client → socket */
	uint8_t *wbuf;
	size_t whead, wlen, wcap;
	uint32_t in_unacked;  /* client bytes received, not yet credited */
	uint32_t credit_owed; /* written to the socket, credit not yet sent */
	bool client_fin;      /* client sent AP_CLOSE FIN */
	bool wr_shut;         /* we did shutdown(SHUT_WR) */
	/* socket → client */
	uint32_t window;     /* the client's grant from AP_CONNECT */
	uint32_t send_avail; /* window left for our DATA */
	uint32_t udp_need;   /* size of the next datagram, once it did not fit */
	bool rd_eof;         /* remote EOF seen, FIN sent to the client */
	bool bulk;           /* the last read was large: splice the next */
};

struct streams {
	struct agent *a;
	struct stream *bucket[STREAM_BUCKETS];
	size_t count;
	size_t buffered; /* sum of wlen */
	uint8_t scratch[AP_MAX_DATA];
};

static struct stream **slot(struct streams *ss, uint32_t id)
{
	/* Fibonacci hashing: the top bits of the product depend on every
	 * bit of the id, so ids that differ only high up (0, 1024, 2048...)
	 * still spread; the low bits would not. */
	struct stream **p = &ss->bucket[(uint32_t)(id * 2654435761u) >> (32 - STREAM_BUCKET_BITS)];

	while (*p && (*p)->id != id)
		p = &(*p)->next;
	return p;
}

static struct stream *lookup(struct streams *ss, uint32_t id)
{
	return *slot(ss, id);
}

struct streams *streams_new(struct agent *a)
{
	struct streams *ss = xcalloc(1, sizeof(*ss));

	ss->a = a;
	return ss;
}

/* Unlink and free. With reset, the remote sees RST instead of FIN:
 * SO_LINGER {on, 0} makes close() abort the connection. */
static void stream_free(struct stream *s, bool reset)
{
	struct streams *ss = s->owner;
	struct stream **p = slot(ss, s->id);
	bool was_buffering = s->wlen > 0;

	if (*p == s)
		*p = s->next;
	ss->count--;
	ss->buffered -= s->wlen;
	if (s->events)
		evloop_del(ss->a->loop, s->fd);
	if (s->conn_timer)
		evloop_timer_cancel(ss->a->loop, s->conn_timer);
	if (reset && s->proto == AP_PROTO_TCP) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		(void)setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	closep(&s->fd);
	free(s->wbuf);
	free(s);
	/* Dropping buffered bytes may lift the AGENT_MAX_BUFFERED pause. */
	if (was_buffering && ss->a->client)
		client_kick(ss->a->client);
}

void streams_free(struct streams *ss)
{
	if (!ss)
		return;
	for (size_t i = 0; i < STREAM_BUCKETS; i++)
		while (ss->bucket[i])
			stream_free(ss->bucket[i], false);
	free(ss);
}

size_t streams_buffered(const struct streams *ss)
{
	return ss->buffered;
}

static void stream_on_event(struct evloop *l, int fd, uint32_t events, void *data);

/* Recompute what we want from the socket and tell epoll. */
static void stream_update(struct stream *s)
{
	struct agent *a = s->owner->a;
	uint32_t ev = 0;

	if (s->state == ST_CONNECTING) {
		ev = EPOLLOUT;
	} else {
		bool room = a->client && client_has_room(a->client, AP_HEADER_SIZE + AP_MAX_DATA);
		if (!s->rd_eof && s->send_avail > 0 && s->send_avail >= s->udp_need && room)
			ev |= EPOLLIN | (s->proto == AP_PROTO_TCP ? EPOLLRDHUP : 0);
		if (s->wlen > 0 || (s->client_fin && !s->wr_shut))
			ev |= EPOLLOUT;
	}
	if (ev == s->events)
		return;
	int r;
	if (!ev) {
		evloop_del(a->loop, s->fd);
		r = 0;
	} else if (!s->events) {
		r = evloop_add(a->loop, s->fd, ev, stream_on_event, s);
	} else {
		r = evloop_mod(a->loop, s->fd, ev);
	}
	if (r >= 0)
		s->events = ev;
}

static int send_or_fail(struct agent *a, const struct ap_msg *m)
{
	int r = client_send(a->client, m);

	if (r < 0)
		client_fail(a->client, AGENT_EXIT_FAIL, -r, "cannot queue %s: %s",
		            ap_type_name(m->type), strerror(-r));
	return r;
}

static void send_close(struct stream *s, uint8_t how, int err)
{
	struct ap_msg m = {.type = AP_CLOSE, .id = s->id, .u.close = {.how = how, .err = err}};

	(void)send_or_fail(s->owner->a, &m);
}

/* Give the client back the window its written bytes used, in batches of
 * AP_CREDIT_BATCH (see agentproto.h). Deferred while our output is over
 * its high mark (see client.c), then sent by kick. */
static void flush_credit(struct stream *s)
{
	struct agent *a = s->owner->a;

	if (s->credit_owed < AP_CREDIT_BATCH || !client_has_room(a->client, AP_HEADER_SIZE + 4))
		return;
	struct ap_msg m = {.type = AP_CREDIT, .id = s->id, .u.credit.bytes = s->credit_owed};
	if (send_or_fail(a, &m) < 0)
		return;
	s->in_unacked -= s->credit_owed;
	s->credit_owed = 0;
}

static void connect_done(struct stream *s, int err)
{
	struct ap_msg m = {
	        .type = AP_CONNECT_RESP,
	        .id = s->req_id,
	        .u.connect_resp = {.err = err, .stream = s->id},
	};
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (s->conn_timer) {
		evloop_timer_cancel(s->owner->a->loop, s->conn_timer);
		s->conn_timer = 0;
	}
	if (!err && getsockname(s->fd, (struct sockaddr *)&ss, &sl) < 0)
		err = m.u.connect_resp.err = errno;
	if (!err && ap_addr_from_sockaddr((struct sockaddr *)&ss, sl, &m.u.connect_resp.local) < 0)
		err = m.u.connect_resp.err = EAFNOSUPPORT;
	if (err)
		m.u.connect_resp.local.family = 4; /* any valid address; it is ignored */
	log_debug("stream %u: connect: %s", s->id, err ? strerror(err) : "ok");
	if (send_or_fail(s->owner->a, &m) < 0 || err) {
		stream_free(s, false);
		return;
	}
	s->state = ST_OPEN;
	stream_update(s);
}

static void connect_timeout(struct evloop *l, void *data)
{
	struct stream *s = data;

	s->conn_timer = 0;
	connect_done(s, ETIMEDOUT);
}

/* Write buffered client bytes. Returns false if the stream was freed. */
static bool stream_write(struct stream *s)
{
	struct streams *ss = s->owner;

	if (s->wlen) {
		ssize_t n = send(s->fd, s->wbuf + s->whead, s->wlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			send_close(s, AP_CLOSE_RESET, errno);
			stream_free(s, true);
			return false;
		}
		s->whead += (size_t)n;
		s->wlen -= (size_t)n;
		ss->buffered -= (size_t)n;
		s->credit_owed += (uint32_t)n;
		if (!s->wlen) {
			/* Idle streams should not keep up to a window each. */
			free(s->wbuf);
			s->wbuf = NULL;
			s->whead = s->wcap = 0;
		}
		flush_credit(s);
		if (ss->buffered + (size_t)n >= AGENT_MAX_BUFFERED && ss->a->client)
			client_kick(ss->a->client);
	}
	if (!s->wlen && s->client_fin && !s->wr_shut) {
		if (s->rd_eof) {
			/* Both ways done: close() sends the FIN, no shutdown()
			 * before it. */
			stream_free(s, false);
			return false;
		}
		(void)shutdown(s->fd, SHUT_WR);
		s->wr_shut = true;
	}
	return true;
}

/* Read from the socket into one DATA frame. Returns false if freed. */
static bool stream_read(struct stream *s)
{
	struct streams *ss = s->owner;
	size_t want = s->send_avail < AP_MAX_DATA ? s->send_avail : AP_MAX_DATA;
	ssize_t n;

	if (s->proto == AP_PROTO_UDP) {
		/* One datagram per frame, never split. Peek at its size first
		 * so that one larger than the window left waits for credit
		 * (udp_need takes us off EPOLLIN until then) instead of being
		 * cut. ICMP errors on a connected UDP socket (ECONNREFUSED)
		 * come back from recv() too: news about one datagram, not the
		 * end of the stream, so they are ignored. */
		n = recv(s->fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
		if (n < 0)
			return true;
		if ((size_t)n <= AP_MAX_DATA && (uint32_t)n > s->send_avail) {
			s->udp_need = (uint32_t)n;
			return true;
		}
		s->udp_need = 0;
		n = recv(s->fd, ss->scratch, AP_MAX_DATA, MSG_TRUNC | MSG_DONTWAIT);
		if (n < 0 || (size_t)n > AP_MAX_DATA)
			return true; /* gone, or larger than any frame: dropped */
	} else {
		/* The bytes go into the frame (or the pipe) directly. */
		n = client_send_from(ss->a->client, s->id, s->fd, want, s->bulk);
		s->bulk = n >= (ssize_t)BULK_READ;
		if (n > 0) {
			s->send_avail -= (uint32_t)n;
			return true;
		}
		if (n == -EAGAIN || n == -EINTR)
			return true;
		if (n < 0) {
			send_close(s, AP_CLOSE_RESET, (int)-n);
			stream_free(s, false);
			return false;
		}
		s->rd_eof = true;
		send_close(s, AP_CLOSE_FIN, 0);
		if (s->wr_shut) {
			stream_free(s, false);
			return false;
		}
		return true;
	}
	struct ap_msg m = {.type = AP_DATA, .id = s->id, .u.data.data = {ss->scratch, (uint32_t)n}};
	if (send_or_fail(ss->a, &m) < 0)
		return true;
	s->send_avail -= (uint32_t)n;
	return true;
}

static void stream_on_event(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct stream *s = data;

	if (s->state == ST_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		connect_done(s, err);
		return;
	}
	if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && (s->events & EPOLLOUT))
		if (!stream_write(s))
			return;
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && (s->events & EPOLLIN)) {
		/* A socket that filled a whole frame likely holds more: read
		 * on, a few frames, rather than wait for epoll to say so. */
		for (int i = 0; i < READS_PER_WAKE; i++) {
			uint32_t avail = s->send_avail;
			if (!stream_read(s))
				return;
			uint32_t got = avail - s->send_avail;
			if (s->proto != AP_PROTO_TCP || s->rd_eof || !got || !s->send_avail ||
			    !client_has_room(s->owner->a->client, AP_HEADER_SIZE + AP_MAX_DATA))
				break;
			/* A short read emptied the socket. If epoll saw the
			 * peer's FIN too (a server that answers and closes),
			 * the next read is the end: read it now, so the last
			 * DATA and the FIN leave in one send and the client
			 * wakes once, not again a loop turn later. */
			if (got < AP_MAX_DATA && !(events & EPOLLRDHUP))
				break;
		}
	}
	stream_update(s);
}

/* Did the non-blocking connect() that said EINPROGRESS finish inside the
 * call? To a peer on this host (a veth, loopback) the handshake runs in
 * the kernel before connect() returns: answer at once, without watching
 * the socket for EPOLLOUT and waiting a loop turn for it. A refusal or
 * anything not yet established takes the usual way (SO_ERROR once the
 * socket is writable), so the errno the client sees comes from one place. */
static bool connected_now(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	       ti.tcpi_state == TCP_ESTABLISHED;
}

static void connect_reply_err(struct agent *a, uint32_t req_id, uint32_t stream, int err)
{
	struct ap_msg m = {
	        .type = AP_CONNECT_RESP,
	        .id = req_id,
	        .u.connect_resp = {.err = err, .stream = stream, .local = {.family = 4}},
	};

	(void)send_or_fail(a, &m);
}

int streams_connect(struct streams *ss, uint32_t req_id, const struct ap_msg *m,
                    const char **ret_why)
{
	struct sockaddr_storage sa;
	uint32_t id = m->u.connect.stream;
	uint8_t proto = m->u.connect.proto;
	int sl, fd, err = 0;

	if (id & AP_STREAM_AGENT_BIT) {
		connect_reply_err(ss->a, req_id, id, EINVAL);
		return 0;
	}
	if (lookup(ss, id)) {
		connect_reply_err(ss->a, req_id, id, EEXIST);
		return 0;
	}
	if (ss->count >= AGENT_MAX_STREAMS) {
		connect_reply_err(ss->a, req_id, id, EMFILE);
		return 0;
	}
	if (proto != AP_PROTO_TCP && proto != AP_PROTO_UDP) {
		connect_reply_err(ss->a, req_id, id, EPROTONOSUPPORT);
		return 0;
	}
	sl = ap_addr_to_sockaddr(&m->u.connect.dst, (struct sockaddr *)&sa, sizeof(sa));
	if (sl < 0) {
		connect_reply_err(ss->a, req_id, id, EAFNOSUPPORT);
		return 0;
	}
	/* Created now, after setns(): the socket belongs to the target's
	 * network namespace, which is the whole point of the agent. */
	fd = socket(sa.ss_family,
	            (proto == AP_PROTO_TCP ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK |
	                    SOCK_CLOEXEC,
	            0);
	if (fd < 0) {
		connect_reply_err(ss->a, req_id, id, errno);
		return 0;
	}
	/* UDP connect() completes at once; TCP reports EINPROGRESS and
	 * finishes in stream_on_event (or immediately, or fails now). */
	if (connect(fd, (struct sockaddr *)&sa, (socklen_t)sl) < 0 && errno != EINPROGRESS)
		err = errno;
	if (err) {
		close(fd);
		connect_reply_err(ss->a, req_id, id, err);
		return 0;
	}

	struct stream *s = xcalloc(1, sizeof(*s));
	s->owner = ss;
	s->id = id;
	s->req_id = req_id;
	s->proto = proto;
	s->fd = fd;
	s->state = ST_CONNECTING;
	/* A zero window would deadlock the stream; read it as "default". */
	s->window = m->u.connect.window ? m->u.connect.window : AP_DEFAULT_WINDOW;
	s->send_avail = s->window;
	s->next = NULL;
	*slot(ss, id) = s;
	ss->count++;
	if (proto == AP_PROTO_UDP) {
		connect_done(s, 0);
		return 0;
	}
	if (connected_now(fd)) {
		connect_done(s, 0);
		return 0;
	}
	s->conn_timer = evloop_timer(ss->a->loop, AGENT_CONNECT_TIMEOUT_MS, connect_timeout, s);
	stream_update(s);
	if (!s->events) {
		/* Could not watch the socket: answer now rather than never. */
		connect_done(s, ENOMEM);
	}
	return 0;
}

int streams_adopt(struct streams *ss, uint32_t id, int fd, uint32_t window)
{
	if (ss->count >= AGENT_MAX_STREAMS || lookup(ss, id))
		return -EMFILE;
	struct stream *s = xcalloc(1, sizeof(*s));
	s->owner = ss;
	s->id = id;
	s->proto = AP_PROTO_TCP;
	s->fd = fd;
	s->state = ST_OPEN;
	s->window = window ? window : AP_DEFAULT_WINDOW;
	s->send_avail = s->window;
	*slot(ss, id) = s;
	ss->count++;
	stream_update(s);
	return 0;
}

int streams_data(struct streams *ss, uint32_t id, const struct ap_bytes *d, const char **ret_why)
{
	struct stream *s = lookup(ss, id);

	/* DATA may cross our CLOSE on the wire: a stream we already freed
	 * is not an error, just too late. */
	if (!s)
		return 0;
	if (s->client_fin) {
		*ret_why = "DATA after FIN";
		return -EPROTO;
	}
	if ((uint64_t)s->in_unacked + d->len > AP_DEFAULT_WINDOW) {
		*ret_why = "client overran the stream window";
		return -EPROTO;
	}
	s->in_unacked += d->len;
	if (s->proto == AP_PROTO_UDP) {
		/* A datagram either goes out whole now or is dropped: UDP
		 * promises no more, and buffering would only add latency. */
		(void)send(s->fd, d->ptr, d->len, MSG_NOSIGNAL | MSG_DONTWAIT);
		s->credit_owed += d->len;
		flush_credit(s);
		return 0;
	}
	if (!d->len)
		return 0;
	if (s->whead + s->wlen + d->len > s->wcap) {
		if (s->whead) {
			memmove(s->wbuf, s->wbuf + s->whead, s->wlen);
			s->whead = 0;
		}
		if (s->wlen + d->len > s->wcap) {
			/* in_unacked >= wlen and is capped above, so this stays
			 * <= AP_DEFAULT_WINDOW. */
			s->wcap = s->wlen + d->len;
			s->wbuf = xrealloc(s->wbuf, s->wcap);
		}
	}
	memcpy(s->wbuf + s->whead + s->wlen, d->ptr, d->len);
	s->wlen += d->len;
	ss->buffered += d->len;
	/* Try right away: most of the time the socket takes it all and the
	 * buffer is gone before the next frame. */
	if (s->state == ST_OPEN && stream_write(s))
		stream_update(s);
	return 0;
}

int streams_credit(struct streams *ss, uint32_t id, uint32_t bytes, const char **ret_why)
{
	struct stream *s = lookup(ss, id);

	if (!s)
		return 0;
	/* Credit returns what we sent; more than that is a broken peer. */
	if ((uint64_t)s->send_avail + bytes > s->window) {
		*ret_why = "credit for more bytes than were sent";
		return -EPROTO;
	}
	s->send_avail += bytes;
	stream_update(s);
	return 0;
}

int streams_close(struct streams *ss, uint32_t id, uint8_t how, int32_t err, const char **ret_why)
{
	struct stream *s = lookup(ss, id);

	if (!s)
		return 0;
	if (how == AP_CLOSE_RESET || s->proto == AP_PROTO_UDP) {
		stream_free(s, how == AP_CLOSE_RESET);
		return 0;
	}
	if (how != AP_CLOSE_FIN) {
		*ret_why = "unknown CLOSE kind";
		return -EPROTO;
	}
	if (s->client_fin)
		return 0;
	s->client_fin = true;
	/* While connecting, the FIN waits behind any buffered DATA until
	 * connect_done() opens the stream. */
	if (s->state == ST_OPEN && stream_write(s))
		stream_update(s);
	return 0;
}

void streams_kick(struct streams *ss)
{
	for (size_t i = 0; i < STREAM_BUCKETS; i++) {
		for (struct stream *s = ss->bucket[i]; s; s = s->next) {
			if (s->state != ST_OPEN)
				continue;
			flush_credit(s);
			stream_update(s);
		}
	}
}
