/* The agent connection: handshake, framing, request dispatch, and what
 * happens when the agent goes away. */
#include "session/internal.h"
#include "common/log.h"
#include "common/util.h"

#include <fcntl.h>
#include <poll.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define RBUF_SIZE (AP_HEADER_SIZE + AP_MAX_PAYLOAD)
/* DATA payloads from this size on are spliced (see splice_start). */
#define SPLICE_MIN (16u * 1024)
#define CLIENT_NAME "mirrord-trace " MT_VERSION

/* ---- the plain socket transport (session_open) ---- */

static int tcp_fd(void *data)
{
	return (int)(intptr_t)data;
}

static short tcp_events(void *data)
{
	return POLLIN;
}

static ssize_t tcp_read(void *data, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = recv(tcp_fd(data), buf, len, 0);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

static ssize_t tcp_write(void *data, const void *buf, size_t len)
{
	for (;;) {
		ssize_t n = send(tcp_fd(data), buf, len, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

static void tcp_close(void *data)
{
	close(tcp_fd(data));
}

/* Whether the transport holds bytes of its own that wait for POLLOUT. */
static bool io_wants_out(struct session *s)
{
	return s->io.events && (s->io.events(s->io.data) & POLLOUT);
}

/* Watch for EPOLLOUT only while the transport refused part of the queue,
 * or buffers bytes itself. */
static void set_want_out(struct session *s, bool want)
{
	if (!s->alive || !s->loop || s->reconnecting)
		return;
	want = want || io_wants_out(s);
	if (want == s->want_out)
		return;
	s->want_out = want;
	evloop_mod(s->loop, s->fd, EPOLLIN | (want ? EPOLLOUT : 0));
}

void session_wq_changed(struct session *s)
{
	/* Nothing is written here: the prepare hook (flush_prepare) sends
	 * everything an event loop iteration queued with one send(). */
	if (s->wq_paused && s->wq_len - s->wq_off < WQ_LOW) {
		s->wq_paused = false;
		relays_resume(s);
	} else if (!s->wq_paused && s->wq_len - s->wq_off >= WQ_HIGH) {
		s->wq_paused = true;
	}
}

int session_send(struct session *s, const struct ap_msg *m)
{
	ssize_t n;

	if (!s->alive)
		return -ENOTCONN;
	if (s->reconnecting)
		return 0; /* nothing survives into the new link but connects,
			   * and those are re-sent (relays_resend_connects) */
	n = ap_encoded_size(m);
	if (n < 0)
		return (int)n;
	if (s->wq_len - s->wq_off + (size_t)n > WQ_MAX) {
		session_lost(s, "the agent stopped reading (more than %u bytes queued)", WQ_MAX);
		return -ENOBUFS;
	}
	if (s->wq_off > 0 && s->wq_len + (size_t)n > s->wq_cap) {
		memmove(s->wq, s->wq + s->wq_off, s->wq_len - s->wq_off);
		s->wq_len -= s->wq_off;
		s->wq_off = 0;
	}
	if (s->wq_len + (size_t)n > s->wq_cap) {
		s->wq_cap = (s->wq_len + (size_t)n) * 2;
		s->wq = xrealloc(s->wq, s->wq_cap);
	}
	n = ap_encode(m, s->wq + s->wq_len, s->wq_cap - s->wq_len);
	if (n < 0)
		return (int)n;
	s->wq_len += (size_t)n;
	session_wq_changed(s);
	return 0;
}

static int flush_some(struct session *s)
{
	while (s->wq_off < s->wq_len) {
		ssize_t n = s->io.write(s->io.data, s->wq + s->wq_off, s->wq_len - s->wq_off);
		if (n == -EAGAIN || n == 0)
			return 0;
		if (n < 0)
			return (int)n;
		s->wq_off += (size_t)n;
	}
	s->wq_off = s->wq_len = 0;
	return 0;
}

/* The transport's own buffer, when the fd is writable. */
static int flush_io(struct session *s)
{
	int r = s->io.flush ? s->io.flush(s->io.data) : 0;
	return r == -EAGAIN ? 0 : r;
}

void session_lost(struct session *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->alive)
		return;
	s->alive = false;
	va_start(ap, fmt);
	if (vasprintf(&s->lost_why, fmt, ap) < 0)
		s->lost_why = NULL;
	va_end(ap);
	if (s->loop)
		evloop_del(s->loop, s->fd);
	/* Reset every relayed connection and fail every pending request:
	 * the program sees ECONNRESET on open connections rather than a hang. */
	relays_reset_all(s);
	dns_stop(s);
	incoming_lost(s); /* issue 7: parked listen() calls fail */
	fs_async_fail_all(s, -ECONNRESET);
	if (s->lost_cb)
		s->lost_cb(s->lost_data, s->lost_why ? s->lost_why : "connection lost");
}

/* ---- surviving a dropped transport ------------------------------------ */

/* A transport that can reconnect (the port-forward) survives a drop:
 *  - every relayed connection the program holds is reset (ECONNRESET on
 *    its next read or write): bytes in flight may or may not have arrived,
 *    and only the program's own protocol can tell;
 *  - UDP flows end; the next datagram opens a new one, and DNS reopens its
 *    upstream streams the same way;
 *  - connects still waiting for the agent's answer are sent again, and
 *    connects made while reconnecting wait (both bounded by
 *    CONNECT_TIMEOUT_MS);
 *  - the agent waits --communication-timeout for us to come back, so the
 *    attempts stop at reconnect_budget_ms; then the session is lost.
 * Other transports lose the session at once, as before. */
#define RECONNECT_FIRST_MS 50u
#define RECONNECT_MAX_MS 2000u

static void reconnect_tick(struct evloop *l, void *data);
static int send_hello(struct session *s);
static void on_agent_io(struct evloop *l, int fd, uint32_t events, void *data);
static void resumed(struct session *s);

/* Schedule the next attempt, or give up once the budget is spent. */
static void retry_later(struct session *s, const char *last)
{
	uint64_t spent_ms = (now_ns() - s->resume_start_ns) / 1000000u;
	unsigned delay = s->resume_delay_ms;

	if (spent_ms + delay > s->io.reconnect_budget_ms) {
		s->reconnecting = false;
		session_lost(s, "%s, and reconnecting failed for %" PRIu64 " ms (last: %s)",
		             s->resume_why ? s->resume_why : "connection lost", spent_ms, last);
		return;
	}
	log_debug("reconnecting to the agent: %s; next try in %u ms", last, delay);
	s->resume_delay_ms = delay * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : delay * 2;
	s->resume_timer = evloop_timer(s->loop, delay, reconnect_tick, s);
}

static void link_down(struct session *s, const char *fmt, ...) MT_PRINTF(2, 3);
static void link_down(struct session *s, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!s->io.reconnect || !s->alive || !s->loop) {
		session_lost(s, "%s", why);
		return;
	}
	evloop_del(s->loop, s->fd);
	s->want_out = false;
	s->reconnecting = true;
	/* What the dead link held is gone: the agent's half-read frames
	 * and ours. Frames queued from here on wait for the new link. */
	s->wq_len = s->wq_off = 0;
	s->rlen = 0;
	s->sp_left = 0;
	s->sp_hdr = false;
	size_t reset = relays_link_down(s);
	/* Their answers went with the link, and so did the handles. */
	fs_async_fail_all(s, -ECONNRESET);
	if (s->resuming) {
		/* The new link failed before its handshake: same cycle. */
		s->resuming = false;
		retry_later(s, why);
		return;
	}
	s->resume_start_ns = now_ns();
	s->resume_delay_ms = RECONNECT_FIRST_MS;
	free(s->resume_why);
	s->resume_why = xstrdup(why);
	log_warn("lost the connection to the agent (%s); reconnecting; %zu relayed "
	         "connection%s reset",
	         why, reset, reset == 1 ? " was" : "s were");
	s->resume_timer = evloop_timer(s->loop, 0, reconnect_tick, s);
}

static void reconnect_tick(struct evloop *l, void *data)
{
	struct session *s = data;
	int r;

	s->resume_timer = 0;
	r = s->io.reconnect(s->io.data);
	if (r < 0) {
		retry_later(s, strerror(-r));
		return;
	}
	s->fd = s->io.fd(s->io.data);
	r = evloop_add(l, s->fd, EPOLLIN, on_agent_io, s);
	if (r < 0) {
		s->reconnecting = false;
		session_lost(s, "cannot watch the new agent connection: %s", strerror(-r));
		return;
	}
	s->reconnecting = false;
	s->resuming = true;
	/* The new link starts with a handshake, then every connect still
	 * waiting for an answer (session_send() dropped frames meanwhile:
	 * they all belonged to connections that were reset). */
	s->wq_len = s->wq_off = 0;
	if (send_hello(s) < 0 || relays_resend_connects(s) < 0 || incoming_resend(s) < 0)
		return; /* session_send() already called it lost */
	session_wq_changed(s);
}

/* The agent answered the new link's handshake. */
static void resumed(struct session *s)
{
	uint64_t ms = (now_ns() - s->resume_start_ns) / 1000000u;

	s->resuming = false;
	s->resume_start_ns = 0;
	s->stats.reconnects++;
	log_warn("reconnected to the agent after %" PRIu64 " ms", ms);
	relays_resume(s);
}

/* One frame from the agent, after the handshake. */
static void dispatch(struct session *s, const struct ap_msg *m)
{
	struct stream *st;
	char text[512];

	switch (m->type) {
	case AP_CONNECT_RESP:
		st = u64map_get(&s->streams, m->u.connect_resp.stream);
		if (st && st->state == ST_CONNECTING)
			stream_on_connected(s, st, m->u.connect_resp.err);
		return;
	case AP_DATA:
		st = u64map_get(&s->streams, m->id);
		if (st)
			stream_on_data(s, st, m->u.data.data.ptr, m->u.data.data.len);
		return;
	case AP_CREDIT:
		st = u64map_get(&s->streams, m->id);
		if (st)
			stream_on_credit(s, st, m->u.credit.bytes);
		return;
	case AP_CLOSE:
		st = u64map_get(&s->streams, m->id);
		if (st)
			stream_on_close(s, st, m->u.close.how, m->u.close.err);
		return;
	case AP_PING: {
		struct ap_msg pong = {.type = AP_PONG, .id = m->id};
		session_send(s, &pong);
		return;
	}
	case AP_PONG:
		return;
	case AP_ERROR:
		if (ap_bytes_to_str(&m->u.error.message, text, sizeof(text)) < 0)
			snprintf(text, sizeof(text), "(unreadable message)");
		/* Right after a drop the agent may not have seen the old
		 * connection end yet: it turns us away as a second client.
		 * Try again, within the same reconnect budget. */
		if (s->resuming && m->u.error.err == EBUSY) {
			link_down(s, "the agent still serves the old connection");
			return;
		}
		session_lost(s, "the agent reported an error: %s", text);
		return;
	case AP_HELLO_OK:
		if (s->resuming && m->u.hello_ok.version == AP_VERSION) {
			resumed(s);
			return;
		}
		break;
	case AP_HELLO:
	case AP_ENV_REQ:
	case AP_ENV_RESP:
	case AP_FILE_REQ:
	case AP_FILE_RESP:
	case AP_CONNECT:
	case AP_FS_REQ:
	/* Incoming traffic (issue 7): session/incoming.c. */
	case AP_PORT_RESP:
		incoming_on_resp(s, m);
		return;
	case AP_ACCEPT:
		incoming_on_accept(s, m);
		return;
	case AP_PORT_SUB:
	case AP_PORT_UNSUB:
		break;
	case AP_FS_RESP:
		/* An asynchronous request's answer, or the late answer to a
		 * blocking one whose caller gave up (dropped there). */
		fs_async_on_resp(s, m);
		return;
	}
	session_lost(s, "the agent sent an unexpected %s frame", ap_type_name(m->type));
}

/* ---- the payload of large DATA frames, spliced -------------------------- */

/* Over our own socket a bulk download would copy every byte twice in
 * here: from the link into rbuf, and from rbuf to the program's socket.
 * Instead, once the header of a large DATA frame is in and its stream can
 * take bytes directly, the rest of its payload moves link → pipe →
 * socket (splice: the kernel passes page references). The next header is
 * then read alone, so that the payload after it can take the same way. */
static bool splice_pipe(struct session *s)
{
	if (s->sp_pipe[0] < 0 && !s->sp_broken && splice_pipe_open(s->sp_pipe) < 0)
		s->sp_broken = true;
	return s->sp_pipe[0] >= 0;
}

/* At rbuf[off] (a whole header is there): start splicing if it is a large
 * DATA frame whose payload is not all in rbuf yet. Returns true if it did:
 * the part in rbuf has been delivered, and rbuf from off on is used. */
static bool splice_start(struct session *s, size_t off)
{
	uint32_t id, len;
	size_t have;

	if (!s->tcp || !ap_data_header_get(s->rbuf + off, s->rlen - off, &id, &len) ||
	    len < SPLICE_MIN)
		return false;
	have = s->rlen - off - AP_HEADER_SIZE;
	if (have >= len || !stream_can_splice(s, id) || !splice_pipe(s))
		return false;
	if (have)
		stream_on_data(s, u64map_get(&s->streams, id), s->rbuf + off + AP_HEADER_SIZE,
		               (uint32_t)have);
	s->sp_id = id;
	s->sp_left = len - (uint32_t)have;
	return true;
}

/* Move what the link has of the frame being spliced. Returns 0 (all of
 * it moved, or the link has no more for now: sp_left tells), 1 at EOF, or
 * -errno. */
static int splice_on(struct session *s)
{
	while (s->sp_left && s->alive) {
		ssize_t n = splice(s->fd, NULL, s->sp_pipe[1], NULL, s->sp_left,
		                   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n == 0)
			return 1;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		s->sp_left -= (uint32_t)n;
		stream_on_spliced(s, s->sp_id, s->sp_pipe[0], (size_t)n);
	}
	return 0;
}

/* Is the whole frame at off of rbuf the FIN of stream id? */
static bool fin_at(struct session *s, size_t off, uint32_t id)
{
	struct ap_msg m;

	return off < s->rlen && ap_decode(s->rbuf + off, s->rlen - off, &m) > 0 &&
	       m.type == AP_CLOSE && m.id == id && m.u.close.how == AP_CLOSE_FIN;
}

/* Dispatch the whole frames at the front of rbuf, or begin to splice a
 * large DATA frame that is only partly there (not at EOF: it never ends).
 * Returns false if that lost the session or took the link down (rbuf was
 * dropped with it). */
static bool dispatch_rbuf(struct session *s, bool eof)
{
	size_t off = 0;

	s->undispatched = false;
	while (off < s->rlen && s->alive) {
		struct ap_msg m;
		if (!eof && s->rlen - off >= AP_HEADER_SIZE && splice_start(s, off)) {
			s->sp_hdr = true;
			off = s->rlen;
			break;
		}
		s->sp_hdr = false;
		ssize_t used = ap_decode(s->rbuf + off, s->rlen - off, &m);
		if (used == 0)
			break;
		if (used < 0) {
			session_lost(s, "the agent sent a malformed frame (%s)",
			             strerror((int)-used));
			return false;
		}
		off += (size_t)used;
		s->fin_next = m.type == AP_DATA && fin_at(s, off, m.id);
		dispatch(s, &m);
		s->fin_next = false;
		/* The frame took the link down (an EBUSY while resuming):
		 * rbuf was dropped with it. */
		if (s->reconnecting)
			return false;
	}
	if (!s->alive)
		return false;
	if (off) {
		memmove(s->rbuf, s->rbuf + off, s->rlen - off);
		s->rlen -= off;
	}
	return true;
}

/* Read what is available and dispatch every whole frame (event loop
 * path, after the handshake). */
static void pump(struct session *s)
{
	bool eof = false, more;

again:
	more = false;
	if (s->sp_left) {
		int r = splice_on(s);
		if (r > 0) {
			link_down(s, "the agent closed the connection");
			return;
		}
		if (r < 0) {
			link_down(s, "connection to the agent failed: %s", strerror(-r));
			return;
		}
		if (s->sp_left || !s->alive)
			goto out; /* the rest has not arrived yet */
	}
	for (;;) {
		size_t want = RBUF_SIZE - s->rlen;
		if (s->rlen == RBUF_SIZE || (s->sp_hdr && s->rlen >= AP_HEADER_SIZE)) {
			/* Read on after dispatching: the transport may hold
			 * bytes the fd no longer shows (TLS). */
			more = true;
			break;
		}
		if (s->sp_hdr)
			want = AP_HEADER_SIZE - s->rlen;
		ssize_t n = s->io.read(s->io.data, s->rbuf + s->rlen, want);
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			link_down(s, "connection to the agent failed: %s", strerror((int)-n));
			return;
		}
		if (n == 0) {
			/* Frames that arrived before the EOF still count. */
			eof = true;
			break;
		}
		s->rlen += (size_t)n;
		/* Our own socket gave less than asked: the kernel has no
		 * more now, and the level-triggered loop reports what comes
		 * later. Reading on to EAGAIN cost a second recv() per
		 * wake-up. A transport with a buffer of its own (TLS) may
		 * hold bytes the fd no longer shows: that one is read dry. */
		if (s->tcp && s->rlen < RBUF_SIZE)
			break;
	}
	if (!dispatch_rbuf(s, eof))
		return;
	if (eof) {
		link_down(s, "the agent closed the connection");
		return;
	}
	if (more || s->sp_left)
		goto again;
out:
	/* Reading may have queued bytes in the transport (pongs). */
	if (io_wants_out(s))
		set_want_out(s, true);
}

/* Drop the frame a sync caller consumed (it is the first one in rbuf
 * after pump() found it, because pump compacts before returning 0). */
void consume_front(struct session *s, size_t upto)
{
	memmove(s->rbuf, s->rbuf + upto, s->rlen - upto);
	s->rlen -= upto;
	/* Frames that came in behind the answer may be whole: the link
	 * need not become readable again for them (flush_prepare). */
	if (s->rlen)
		s->undispatched = true;
}

static void flush_prepare(struct evloop *l, void *data)
{
	struct session *s = data;
	int r;

	if (s->undispatched && s->alive && !s->reconnecting && !dispatch_rbuf(s, false))
		return;
	if (!s->alive || s->reconnecting || (s->wq_off == s->wq_len && !s->want_out))
		return;
	r = flush_some(s);
	if (r < 0) {
		link_down(s, "connection to the agent failed: %s", strerror(-r));
		return;
	}
	set_want_out(s, s->wq_off < s->wq_len);
	session_wq_changed(s);
}

static void on_agent_io(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct session *s = data;

	if (events & EPOLLOUT) {
		int r = flush_io(s);
		if (r < 0) {
			link_down(s, "connection to the agent failed: %s", strerror(-r));
			return;
		}
		flush_prepare(l, s);
	}
	if (s->alive && !s->reconnecting && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		pump(s);
}

/* Blocking wait for one reply frame, bounded by timeout_ms. The frame
 * stays in rbuf until the caller calls consume_front(). Returns the
 * frame's length in rbuf, or -errno. */
ssize_t sync_wait(struct session *s, int type, uint32_t id, int timeout_ms, struct ap_msg *ret)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		int r;

		if (s->wq_off < s->wq_len) {
			r = flush_some(s);
			if (r < 0) {
				session_lost(s, "connection to the agent failed: %s", strerror(-r));
				return r;
			}
		}
		/* Frames already buffered come first. */
		if (s->rlen) {
			struct ap_msg m;
			ssize_t used = ap_decode(s->rbuf, s->rlen, &m);
			if (used < 0) {
				session_lost(s, "the agent sent a malformed frame (%s)",
				             strerror((int)-used));
				return used;
			}
			if (used > 0) {
				if (((int)m.type == type && m.id == id) || m.type == AP_ERROR) {
					*ret = m;
					return used;
				}
				dispatch(s, &m);
				consume_front(s, (size_t)used);
				continue;
			}
		}
		/* A frame pump() began to splice ends first (rbuf is empty
		 * meanwhile: the splice began at its end). */
		ssize_t n = -EAGAIN;
		if (s->sp_left) {
			r = splice_on(s);
			if (!s->alive)
				return -ECONNRESET;
			if (r == 0 && !s->sp_left)
				continue;
			n = r > 0 ? 0 : r < 0 ? r : -EAGAIN; /* as a read's */
		} else {
			/* Whatever the transport has buffered first: it may
			 * hold bytes the fd does not show as readable (TLS). */
			if (s->rlen == RBUF_SIZE)
				return -EMSGSIZE;
			n = s->io.read(s->io.data, s->rbuf + s->rlen, RBUF_SIZE - s->rlen);
		}
		if (n == 0) {
			session_lost(s, "the agent closed the connection");
			return -ECONNRESET;
		}
		if (n > 0) {
			s->rlen += (size_t)n;
			continue;
		}
		if (n != -EAGAIN) {
			session_lost(s, "connection to the agent failed: %s", strerror((int)-n));
			return (int)n;
		}
		uint64_t now = now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = s->io.fd(s->io.data),
		                   .events = (short)(POLLIN | (s->io.events(s->io.data) & POLLOUT) |
		                                     (s->wq_off < s->wq_len ? POLLOUT : 0))};
		r = poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && (p.revents & POLLOUT)) {
			r = flush_io(s);
			if (r < 0) {
				session_lost(s, "connection to the agent failed: %s", strerror(-r));
				return r;
			}
		}
	}
}

static int connect_timeout(int fd, const struct sockaddr *addr, socklen_t len, int timeout_ms)
{
	if (connect(fd, addr, len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int r = poll(&p, 1, timeout_ms);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	int err = 0;
	socklen_t el = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return -errno;
	return -err;
}

static struct session *session_alloc(const struct session_io *io)
{
	struct session *s = xcalloc(1, sizeof(*s));

	s->relay4 = s->relay6 = s->refuser4 = s->refuser6 = -1;
	s->next_id = 1;
	s->io = *io;
	s->fd = io->fd(io->data);
	s->alive = true;
	s->rbuf = xmalloc(RBUF_SIZE);
	s->sp_pipe[0] = s->sp_pipe[1] = -1;
	return s;
}

static int session_start(struct evloop *l, struct session *s, const char *where, int timeout_ms,
                         struct session **ret, char **ret_why);

int session_open(struct evloop *l, const struct sockaddr *addr, socklen_t len, int timeout_ms,
                 struct session **ret, char **ret_why)
{
	char where[SOCKADDR_STR_MAX];
	struct session *s;
	int r, fd;

	sockaddr_str(addr, len, where, sizeof(where));
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		*ret_why = xasprintf("cannot create a socket: %s", strerror(-r));
		return r;
	}
	s = session_alloc(&(struct session_io){
	        .data = (void *)(intptr_t)fd,
	        .fd = tcp_fd,
	        .events = tcp_events,
	        .read = tcp_read,
	        .write = tcp_write,
	        .close = tcp_close,
	});
	s->tcp = true;
	/* Frames are small and latency-bound (a connect waits for one round
	 * trip): Nagle would hold a CONNECT behind unacknowledged data for up
	 * to 40 ms. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	r = connect_timeout(fd, addr, len, timeout_ms);
	if (r < 0) {
		*ret_why = xasprintf("cannot reach the agent at %s: %s; is it running, and is "
		                     "--agent-addr right?",
		                     where, strerror(-r));
		session_free(s);
		return r;
	}
	return session_start(l, s, where, timeout_ms, ret, ret_why);
}

int session_open_io(struct evloop *l, const struct session_io *io, const char *where,
                    int timeout_ms, struct session **ret, char **ret_why)
{
	return session_start(l, session_alloc(io), where, timeout_ms, ret, ret_why);
}

/* Queue our side of the version handshake. */
static int send_hello(struct session *s)
{
	struct ap_msg m = {.type = AP_HELLO};

	m.u.hello.magic = AP_MAGIC;
	m.u.hello.version = AP_VERSION;
	m.u.hello.client_name =
	        (struct ap_bytes){(const uint8_t *)CLIENT_NAME, sizeof(CLIENT_NAME) - 1};
	return session_send(s, &m);
}

/* The handshake, then attach to the loop. Frees s on failure. */
static int session_start(struct evloop *l, struct session *s, const char *where, int timeout_ms,
                         struct session **ret, char **ret_why)
{
	char text[512];
	struct ap_msg m;
	ssize_t used;
	int r;

	r = send_hello(s);
	if (r < 0)
		goto fail_why;
	used = sync_wait(s, AP_HELLO_OK, 0, timeout_ms, &m);
	if (used == -ETIMEDOUT) {
		r = -ETIMEDOUT;
		*ret_why = xasprintf("the peer at %s did not answer the mirrord-trace handshake "
		                     "within %d ms; is it a mirrord-trace agent?",
		                     where, timeout_ms);
		goto fail;
	}
	if (used < 0) {
		r = (int)used;
		if (r == -EBADMSG || r == -EMSGSIZE || r == -EPROTO)
			*ret_why = xasprintf("the peer at %s is not a mirrord-trace agent (bad "
			                     "handshake)%s",
			                     where, s->tcp ? "; check --agent-addr" : "");
		else
			*ret_why = xasprintf("handshake with the agent at %s failed: %s", where,
			                     s->lost_why ? s->lost_why : strerror(-r));
		goto fail;
	}
	if (m.type == AP_ERROR) {
		if (ap_bytes_to_str(&m.u.error.message, text, sizeof(text)) < 0)
			snprintf(text, sizeof(text), "(unreadable)");
		*ret_why = xasprintf("the agent at %s refused the handshake: %s", where, text);
		r = -EPROTO;
		goto fail;
	}
	if (m.u.hello_ok.version != AP_VERSION) {
		*ret_why =
		        xasprintf("the agent at %s speaks protocol version %u, this mirrord-trace "
		                  "speaks %u; use matching versions",
		                  where, m.u.hello_ok.version, AP_VERSION);
		r = -EPROTO;
		goto fail;
	}
	if (ap_bytes_to_str(&m.u.hello_ok.mode, s->agent_mode, sizeof(s->agent_mode)) < 0)
		snprintf(s->agent_mode, sizeof(s->agent_mode), "unknown");
	consume_front(s, (size_t)used);

	r = relay_start(s);
	if (r < 0) {
		*ret_why = xasprintf("cannot open the local relay listeners: %s", strerror(-r));
		goto fail;
	}
	s->loop = l;
	r = evloop_add(l, s->fd, EPOLLIN, on_agent_io, s);
	if (r >= 0)
		r = evloop_add_prepare(l, flush_prepare, s);
	if (r >= 0)
		r = relay_watch(s);
	if (r < 0) {
		*ret_why = xasprintf("cannot watch the agent connection: %s", strerror(-r));
		goto fail;
	}
	session_wq_changed(s);
	*ret = s;
	return 0;

fail_why:
	*ret_why = xasprintf("handshake with the agent at %s failed: %s", where, strerror(-r));
fail:
	s->loop = NULL;
	session_free(s);
	return r;
}

/* Wait, until the deadline, for the agent to close its end, and throw
 * away what it still sends. Closing a socket with unread bytes in it
 * sends a reset instead of a FIN, and a reset can overtake our goodbye:
 * the agent (or the port-forward relaying for it) then sees the link
 * drop, not the goodbye, and waits its communication timeout for a
 * reconnect that never comes. */
static void drain_until_eof(struct session *s, uint64_t deadline)
{
	uint8_t scratch[4096];

	for (;;) {
		ssize_t n = s->io.read(s->io.data, scratch, sizeof(scratch));
		if (n == 0 || (n < 0 && n != -EAGAIN))
			return;
		if (n > 0)
			continue;
		uint64_t now = now_ns();
		if (now >= deadline)
			return;
		struct pollfd p = {.fd = s->io.fd(s->io.data), .events = POLLIN};
		if (poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1) < 0 && errno != EINTR)
			return;
	}
}

/* Tell the agent the session is over, so that it exits now instead of
 * waiting for a reconnect (AP_ERROR with err 0). Best effort, at most
 * GOODBYE_MS: the agent's own timeout covers a goodbye that is lost. */
#define GOODBYE_MS 500
static void goodbye(struct session *s)
{
	static const char text[] = "client exiting";
	struct ap_msg m = {
	        .type = AP_ERROR,
	        .u.error = {.err = 0, .message = {(const uint8_t *)text, sizeof(text) - 1}},
	};
	uint64_t deadline = now_ns() + GOODBYE_MS * 1000000ull;

	/* Whatever else is queued only closes streams; the goodbye closes
	 * them all. */
	s->wq_len = s->wq_off = 0;
	if (session_send(s, &m) < 0)
		return;
	for (;;) {
		if (flush_some(s) < 0 || flush_io(s) < 0)
			return;
		bool io_busy = io_wants_out(s);
		if (s->wq_off == s->wq_len && !io_busy) {
			drain_until_eof(s, deadline);
			return;
		}
		uint64_t now = now_ns();
		if (now >= deadline)
			return;
		struct pollfd p = {.fd = s->io.fd(s->io.data), .events = POLLOUT};
		if (poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1) < 0 && errno != EINTR)
			return;
	}
}

void session_free(struct session *s)
{
	if (!s)
		return;
	if (s->alive) {
		if (!s->reconnecting)
			goodbye(s);
		s->alive = false;
		if (s->loop && !s->reconnecting)
			evloop_del(s->loop, s->fd);
		s->lost_cb = NULL;
		relays_reset_all(s);
		dns_stop(s);
	}
	dns_free(s);
	incoming_free(s); /* issue 7 */
	if (s->loop && s->resume_timer)
		evloop_timer_cancel(s->loop, s->resume_timer);
	if (s->loop) {
		evloop_del_prepare(s->loop, flush_prepare, s);
		if (s->relay4 >= 0)
			evloop_del(s->loop, s->relay4);
		if (s->relay6 >= 0)
			evloop_del(s->loop, s->relay6);
		if (s->sweep_timer)
			evloop_timer_cancel(s->loop, s->sweep_timer);
	}
	if (s->relay4 >= 0)
		close(s->relay4);
	if (s->relay6 >= 0)
		close(s->relay6);
	if (s->refuser4 >= 0)
		close(s->refuser4);
	if (s->refuser6 >= 0)
		close(s->refuser6);
	if (s->io.close)
		s->io.close(s->io.data);
	u64map_free(&s->streams);
	u64map_free(&s->expect);
	{
		uint64_t key;
		void *v;
		for (size_t i = 0; u64map_next(&s->peers, &i, &key, &v);)
			free(v);
	}
	u64map_free(&s->peers);
	u64map_free(&s->udp);
	fs_async_fail_all(s, 0); /* their owners are gone: drop them */
	u64map_free(&s->fs_async);
	free(s->rbuf);
	closep(&s->sp_pipe[0]);
	closep(&s->sp_pipe[1]);
	free(s->wq);
	free(s->lost_why);
	free(s->resume_why);
	free(s);
}

void session_on_lost(struct session *s, void (*cb)(void *data, const char *why), void *data)
{
	s->lost_cb = cb;
	s->lost_data = data;
}

bool session_alive(const struct session *s)
{
	return s->alive;
}

const char *session_agent_mode(const struct session *s)
{
	return s->agent_mode;
}

#define SYNC_TIMEOUT_MS 30000

int session_fetch_env(struct session *s, char ***ret_env, size_t *ret_n)
{
	struct ap_msg m = {.type = AP_ENV_REQ, .id = s->next_id++};
	uint32_t id = m.id;
	ssize_t used;
	int r;

	r = session_send(s, &m);
	if (r < 0)
		return r;
	used = sync_wait(s, AP_ENV_RESP, id, SYNC_TIMEOUT_MS, &m);
	if (used < 0)
		return (int)used;
	if (m.type == AP_ERROR) {
		consume_front(s, (size_t)used);
		return -EPROTO;
	}
	if (m.u.env_resp.err) {
		consume_front(s, (size_t)used);
		return -m.u.env_resp.err;
	}
	char **env = xcalloc(m.u.env_resp.count + 1, sizeof(char *));
	size_t off = 0, n = 0;
	struct ap_bytes e;
	while (n < m.u.env_resp.count && ap_env_next(&m.u.env_resp.entries, &off, &e) == 1) {
		/* An entry with an embedded NUL cannot be passed to execve. */
		if (memchr(e.ptr, 0, e.len))
			continue;
		env[n++] = xstrndup((const char *)e.ptr, e.len);
	}
	consume_front(s, (size_t)used);
	*ret_env = env;
	*ret_n = n;
	return 0;
}

int session_fetch_file(struct session *s, const char *path, char **ret_data, size_t *ret_len)
{
	struct ap_msg m = {.type = AP_FILE_REQ, .id = s->next_id++};
	uint32_t id = m.id;
	ssize_t used;
	int r;

	m.u.file_req.path = (struct ap_bytes){(const uint8_t *)path, (uint32_t)strlen(path)};
	r = session_send(s, &m);
	if (r < 0)
		return r;
	used = sync_wait(s, AP_FILE_RESP, id, SYNC_TIMEOUT_MS, &m);
	if (used < 0)
		return (int)used;
	if (m.type == AP_ERROR || m.u.file_resp.err) {
		r = m.type == AP_ERROR ? -EPROTO : -m.u.file_resp.err;
		consume_front(s, (size_t)used);
		return r;
	}
	char *data = xmalloc(m.u.file_resp.content.len + 1);
	memcpy(data, m.u.file_resp.content.ptr, m.u.file_resp.content.len);
	data[m.u.file_resp.content.len] = 0;
	*ret_len = m.u.file_resp.content.len;
	consume_front(s, (size_t)used);
	*ret_data = data;
	return 0;
}

static void connect_timed_out(struct evloop *l, void *data)
{
	struct stream *st = data;

	st->timer = 0;
	if (st->state != ST_CONNECTING)
		return;
	if (st->cb) {
		session_open_cb cb = st->cb;
		st->cb = NULL;
		cb(st->cbdata, ETIMEDOUT, st->id);
	}
}

int64_t session_connect(struct session *s, int type, const struct sockaddr *dst, socklen_t len,
                        session_open_cb cb, void *data)
{
	struct ap_msg m = {.type = AP_CONNECT};
	struct stream *st;
	int r;

	if (!s->alive)
		return -ENOTCONN;
	if (s->streams.n >= MAX_STREAMS)
		return -EMFILE;
	r = ap_addr_from_sockaddr(dst, len, &m.u.connect.dst);
	if (r < 0)
		return r;
	st = stream_new(s, type);
	memcpy(&st->dst, dst, len);
	st->dstlen = len;
	st->cb = cb;
	st->cbdata = data;
	m.id = st->id;
	m.u.connect.stream = st->id;
	m.u.connect.proto = type == SOCK_DGRAM ? AP_PROTO_UDP : AP_PROTO_TCP;
	m.u.connect.window = AP_DEFAULT_WINDOW;
	r = session_send(s, &m);
	if (r < 0) {
		stream_free(s, st);
		return r;
	}
	st->timer = evloop_timer(s->loop, CONNECT_TIMEOUT_MS, connect_timed_out, st);
	s->stats.streams_opened++;
	return st->id;
}

void session_cancel(struct session *s, int64_t req)
{
	struct stream *st = u64map_get(&s->streams, (uint64_t)req);

	if (!st)
		return;
	st->cb = NULL;
	if (st->state == ST_OPEN) {
		/* The program never got this connection: abort it remotely. */
		struct ap_msg m = {.type = AP_CLOSE, .id = st->id};
		m.u.close.how = AP_CLOSE_RESET;
		session_send(s, &m);
		stream_free(s, st);
	}
	/* Still connecting: freed when the agent answers (see relay.c). */
}

void session_get_stats(const struct session *s, struct session_stats *ret)
{
	*ret = s->stats;
	ret->streams_live = s->streams.n;
}
