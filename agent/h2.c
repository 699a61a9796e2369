/* Filtered steal of HTTP/2 (prior knowledge): one stolen h2c connection
 * routed stream by stream.
 *
 * The agent terminates HTTP/2 on every end it touches:
 *  - as a server towards the stolen peer (the "peer" end);
 *  - as a client towards the pod's application: one TCP connection to the
 *    original destination, marked MT_AGENT_MARK like http.c's, opened at
 *    the first stream the filter does not pick (a "pod" route);
 *  - as a client towards the local application: one agent stream
 *    (AP_ACCEPT, as http.c opens it) that the supervisor connects to the
 *    local app and relays without parsing, so the app sees an ordinary h2c
 *    connection (a "local" route), opened at the first matched stream.
 * Each peer stream (odd id) maps to one stream of one route, whose ids the
 * router allocates in order. The route is decided on the request's
 * HEADERS: the filter sees :method, :path and every regular field as
 * "name: value" (plus "host: <:authority>" when there is no host field).
 * Header blocks are decoded with the reading end's HPACK decoder and
 * encoded again (without indexing) for the other end.
 *
 * Flow control: bytes read from one end are credited back to it (stream
 * and connection WINDOW_UPDATE) only once they went to the other end,
 * which happens only within that end's send windows and while its output
 * is short (H2_OUT_LOW). Every end is given a connection window of
 * H2_CONN_WINDOW and streams H2_STREAM_WINDOW, so what waits in the agent
 * is bounded by those windows times the (bounded) number of ends.
 *
 * A route that fails (refused, reset, closed, protocol error) answers each
 * of its streams whose response had not begun with a 502 from the agent;
 * the others are reset. PING and SETTINGS are answered on each end and
 * never forwarded; PRIORITY is ignored; a PUSH_PROMISE from a route is a
 * protocol error there (the agent sends ENABLE_PUSH=0). */
#include "agent/h2int.h"
#include "common/evloop.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static struct h2conn *conns;
static size_t nconns;
static size_t held_all; /* the sum of the connections' held (H2_MEM_BUDGET) */

static void h2c_update(struct h2conn *c);
void h2_end_fail(struct h2end *e, const char *why);

/* ---- output ---- */

size_t h2_pending(const struct h2end *e)
{
	if (e->kind == END_LOCAL)
		return e->is ? istream_pending(e->is) : 0;
	return e->outlen;
}

bool h2_blocked(const struct h2end *e)
{
	const struct h2conn *c = e->c;
	/* Over the agent-wide budget, outputs (and the peer's request
	 * queues) get the low mark instead: what is held drains and little
	 * is added. Only the peer waits for its request queues: a route's
	 * input is its answers and the WINDOW_UPDATEs that drain them. */
	bool tight = held_all > H2_MEM_BUDGET;
	size_t lim = tight ? H2_OUT_LOW : H2_OUT_MAX;

	if (c->peer.outlen >= lim)
		return true;
	if (e->kind != END_PEER)
		return h2_pending(e) >= lim;
	if (tight && c->req_held >= H2_OUT_LOW)
		return true;
	for (const struct h2end *r = c->routes; r; r = r->next)
		if (!r->dead && h2_pending(r) >= lim)
			return true;
	return false;
}

/* Count what c holds now into held_all. */
static void count_held(struct h2conn *c)
{
	size_t n = c->peer.outlen + c->peer.inlen, req = 0;

	for (const struct h2end *e = c->routes; e; e = e->next)
		n += h2_pending(e) + e->inlen;
	for (const struct h2s *s = c->streams; s; s = s->next) {
		req += s->req.qlen + s->req.trail_len + s->head_len;
		n += s->resp.qlen + s->resp.trail_len;
	}
	held_all = held_all - c->held + n + req;
	c->held = n + req;
	c->req_held = req;
}

void h2_write(struct h2end *e, const void *p, size_t n)
{
	if (e->dead || !n)
		return;
	if (e->kind == END_LOCAL) {
		/* Bounded by the windows and H2_OUT_LOW before it; the
		 * limit here is a backstop. */
		if (e->is && istream_send(e->is, p, n, 4 * H2_OUT_MAX) < 0) {
			/* Failed by h2c_update(), not here: callers may be
			 * walking the streams. */
			istream_close(e->is, AP_CLOSE_RESET, ENOBUFS);
			e->is = NULL;
			e->broken = true;
		}
		return;
	}
	/* Grown by half again: small frames (ACKs, credits) come one by
	 * one, and a realloc each would copy the whole queue each time. */
	if (e->outlen + n > e->outcap) {
		size_t cap = e->outcap + e->outcap / 2;
		e->outcap = cap > e->outlen + n ? cap : e->outlen + n + 4096;
		e->out = xrealloc(e->out, e->outcap);
	}
	memcpy(e->out + e->outlen, p, n);
	e->outlen += n;
}

void h2_frame(struct h2end *e, uint8_t type, uint8_t flags, uint32_t sid, const uint8_t *p,
              size_t n)
{
	uint8_t h[H2F_HDR_LEN];

	h2f_hdr_write(h, (uint32_t)n, type, flags, sid);
	h2_write(e, h, sizeof(h));
	h2_write(e, p, n);
}

void h2_send_rst(struct h2end *e, uint32_t sid, uint32_t code)
{
	uint8_t f[H2F_RST_LEN];
	h2_write(e, f, h2f_put_rst(f, sid, code));
}

void h2_send_credit(struct h2end *e, uint32_t sid, uint32_t n)
{
	uint8_t f[H2F_WINDOW_UPDATE_LEN];

	if (!n || !e || e->dead)
		return;
	h2_write(e, f, h2f_put_window_update(f, sid, n));
	if (!sid)
		e->recv_win += n;
}

/* A header block, split into HEADERS + CONTINUATION as max_frame says. */
void h2_send_block(struct h2end *e, uint32_t sid, const uint8_t *b, size_t n, bool es)
{
	uint8_t type = H2F_HEADERS;

	do {
		size_t k = n < e->max_frame ? n : e->max_frame;
		uint8_t flags = (uint8_t)((k == n ? H2F_END_HEADERS : 0) |
		                          (type == H2F_HEADERS && es ? H2F_END_STREAM : 0));
		h2_frame(e, type, flags, sid, b, k);
		if (k) /* b is NULL for an empty block (no fields) */
			b += k;
		n -= k;
		type = H2F_CONTINUATION;
	} while (n);
}

/* Our opening: the preface (routes), SETTINGS, and the connection window
 * raised to H2_CONN_WINDOW. */
static void end_open(struct h2end *e)
{
	uint8_t f[H2F_HDR_LEN + 6 * 5 + H2F_WINDOW_UPDATE_LEN];
	uint16_t ids[5] = {H2S_MAX_FRAME_SIZE, H2S_MAX_HEADER_LIST_SIZE, H2S_INITIAL_WINDOW_SIZE,
	                   H2S_MAX_CONCURRENT_STREAMS, H2S_ENABLE_PUSH};
	uint32_t vals[5] = {H2F_DEFAULT_MAX_FRAME, H2_MAX_BLOCK, H2_STREAM_WINDOW, H2_MAX_STREAMS,
	                    0};
	/* The peer gets MAX_CONCURRENT_STREAMS; routes get ENABLE_PUSH=0
	 * instead (a server may only send 0, so it is left out there). */
	size_t n = 4;

	if (e->kind != END_PEER) {
		ids[3] = H2S_ENABLE_PUSH;
		vals[3] = 0;
		h2_write(e, H2F_PREFACE, H2F_PREFACE_LEN);
	}
	n = h2f_put_settings(f, ids, vals, n);
	n += h2f_put_window_update(f + n, 0, H2_CONN_WINDOW - H2F_DEFAULT_WINDOW);
	h2_write(e, f, n);
	e->recv_win = H2_CONN_WINDOW;
}

static void end_init(struct h2end *e, struct h2conn *c, enum end_kind kind)
{
	e->c = c;
	e->kind = kind;
	e->fd = -1;
	e->dec = hpack_dec_new();
	e->max_frame = H2F_DEFAULT_MAX_FRAME;
	e->init_win = H2F_DEFAULT_WINDOW;
	e->send_win = H2F_DEFAULT_WINDOW;
	e->next_sid = 1;
	e->out_ns = now_ns();
	e->max_streams = H2_ROUTE_STREAMS_DEFAULT;
	e->preface = kind != END_PEER; /* only a client sends one */
}

/* ---- routes ---- */

static void route_event(struct evloop *l, int fd, uint32_t events, void *data);
static void local_data(void *ctx, const uint8_t *p, size_t n);
static void local_closed(void *ctx, uint8_t how, int err);
static void local_writable(void *ctx);
static const struct istream_ops local_ops = {local_data, local_closed, local_writable};

static unsigned count_routes(struct h2conn *c)
{
	unsigned n = 0;
	for (struct h2end *e = c->routes; e; e = e->next)
		n += !e->dead;
	return n;
}

/* The route of a new stream: the live one of that kind, or a new one.
 * NULL with *why set when none can be had. */
struct h2end *h2_route_get(struct h2conn *c, enum end_kind kind, const char **why)
{
	for (struct h2end *e = c->routes; e; e = e->next) {
		if (e->kind != kind || e->dead || e->broken || e->goaway)
			continue;
		if (e->next_sid < 0x7ffffff0u)
			return e;
		/* Its stream ids are used up: it ends with its last stream
		 * (h2c_update) instead of holding a place in the routes. */
		e->goaway = true;
	}
	if (count_routes(c) >= H2_MAX_ROUTES) {
		*why = "too many connections for one HTTP/2 connection";
		return NULL;
	}
	struct h2end *e = xcalloc(1, sizeof(*e));
	end_init(e, c, kind);
	if (kind == END_LOCAL) {
		e->is = istream_open(c->in, AP_SUB_STEAL, c->port, (struct sockaddr *)&c->peer_addr,
		                     (struct sockaddr *)&c->orig, 0, &local_ops, e);
		if (!e->is) {
			hpack_dec_free(e->dec);
			free(e);
			*why = "the local application is not reachable (too many streams)";
			return NULL;
		}
	} else {
		int mark = MT_AGENT_MARK;
		socklen_t sl = c->orig.ss_family == AF_INET ? sizeof(struct sockaddr_in)
		                                            : sizeof(struct sockaddr_in6);
		int fd = socket(c->orig.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		/* The OUTPUT redirect skips marked sockets. Small frames
		 * (WINDOW_UPDATE, HEADERS) must not wait for Nagle: with many
		 * streams in flight that halved the requests per second. */
		if (fd >= 0) {
			int one = 1;
			(void)setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		if (fd < 0 ||
		    (connect(fd, (struct sockaddr *)&c->orig, sl) < 0 && errno != EINPROGRESS)) {
			log_debug("port %u: cannot reach the pod's application: %s", c->port,
			          strerror(errno));
			if (fd >= 0)
				close(fd);
			hpack_dec_free(e->dec);
			free(e);
			*why = "cannot reach the pod's application";
			return NULL;
		}
		e->fd = fd;
		e->connecting = true;
		e->ev = EPOLLOUT;
		if (evloop_add(c->a->loop, fd, EPOLLOUT, route_event, e) < 0)
			e->ev = 0;
	}
	end_open(e);
	e->next = c->routes;
	c->routes = e;
	return e;
}

static void end_close_io(struct h2end *e)
{
	if (e->ev)
		evloop_del(e->c->a->loop, e->fd);
	e->ev = 0;
	closep(&e->fd);
	e->fd = -1;
	if (e->is)
		istream_close(e->is, AP_CLOSE_RESET, ECONNABORTED);
	e->is = NULL;
}

/* A route is gone: its streams get a 502 or a reset. */
void h2_end_fail(struct h2end *e, const char *why)
{
	struct h2conn *c = e->c;
	struct h2s *next;
	char msg[192];

	if (e->dead)
		return;
	if (e->kind == END_PEER) {
		c->closing = c->reset = true;
		return;
	}
	e->dead = true;
	end_close_io(e);
	snprintf(msg, sizeof(msg), "%s %s",
	         e->kind == END_LOCAL ? "the local application failed to answer:"
	                              : "the pod's application failed:",
	         why);
	for (struct h2s *s = c->streams; s; s = next) {
		next = s->next;
		if (s->route == e)
			h2_stream_fail(c, s, msg);
	}
}

/* A connection error found on end e: GOAWAY with the code, then close. */
void h2_conn_error(struct h2end *e, unsigned code, const char *what)
{
	uint8_t f[H2F_GOAWAY_LEN];
	struct h2conn *c = e->c;

	log_debug("port %u: HTTP/2 %s: %s (error %u)", c->port,
	          e->kind == END_PEER  ? "peer"
	          : e->kind == END_POD ? "pod connection"
	                               : "local connection",
	          what, code);
	h2_write(e, f, h2f_put_goaway(f, e->kind == END_PEER ? e->last_sid : 0, code));
	if (e->kind == END_PEER) {
		c->closing = true;
		return;
	}
	/* The GOAWAY may not reach a socket route before the close; it
	 * is a courtesy there. */
	h2_end_fail(e, what);
}

/* ---- I/O ---- */

static void local_data(void *ctx, const uint8_t *p, size_t n)
{
	struct h2end *e = ctx;
	struct h2conn *c = e->c;

	h2_input(e, p, n);
	h2_pump_all(c);
	h2c_update(c);
}

static void local_closed(void *ctx, uint8_t how, int err)
{
	struct h2end *e = ctx;
	struct h2conn *c = e->c;
	char why[96];

	if (how == AP_CLOSE_RESET) {
		e->is = NULL; /* freed by incoming.c */
		snprintf(why, sizeof(why), "%s", err ? strerror(err) : "reset");
	} else {
		snprintf(why, sizeof(why), "closed");
	}
	h2_end_fail(e, why);
	h2_pump_all(c);
	h2c_update(c);
}

static void local_writable(void *ctx)
{
	struct h2end *e = ctx;

	h2_pump_all(e->c);
	h2c_update(e->c);
}

/* Write what is queued for a socket end; false if it failed. */
static bool end_flush(struct h2end *e)
{
	ssize_t n = send(e->fd, e->out, e->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0 && errno != EAGAIN)
		return false;
	if (n > 0) {
		memmove(e->out, e->out + n, e->outlen - (size_t)n);
		e->outlen -= (size_t)n;
		e->sent += (uint64_t)n;
	}
	return true;
}

/* Read from a socket end; false at EOF or error (errno, 0 for EOF). */
static bool end_read(struct h2end *e, int *ret_err)
{
	uint8_t buf[16384];
	ssize_t n = recv(e->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n > 0) {
		h2_input(e, buf, (size_t)n);
		return true;
	}
	if (n < 0 && errno == EAGAIN)
		return true;
	*ret_err = n == 0 ? 0 : errno;
	return false;
}

static void route_event(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct h2end *e = data;
	struct h2conn *c = e->c;
	int err = 0;

	if (e->connecting) {
		socklen_t len = sizeof(err);
		(void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			h2_end_fail(e, strerror(err));
			goto out;
		}
		e->connecting = false;
	}
	if (e->outlen && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && !end_flush(e)) {
		h2_end_fail(e, strerror(errno));
		goto out;
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && (e->ev & EPOLLIN) && !end_read(e, &err))
		h2_end_fail(e, err ? strerror(err) : "connection closed");
out:
	h2_pump_all(c);
	h2c_update(c);
}

static void peer_event(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct h2conn *c = data;
	struct h2end *e = &c->peer;
	int err = 0;

	if (e->outlen && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && !end_flush(e)) {
		c->closing = c->reset = true;
		e->outlen = 0;
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && (e->ev & EPOLLIN) && !c->closing) {
		c->frame_ns = now_ns(); /* bytes, if not yet a whole frame */
		if (!end_read(e, &err))
			c->closing = true; /* the peer is gone: so is everything */
	}
	h2_pump_all(c);
	h2c_update(c);
}

/* ---- the connection ---- */

static void end_free(struct h2end *e)
{
	end_close_io(e);
	hpack_dec_free(e->dec);
	free(e->in);
	free(e->out);
	free(e->hb);
}

static void h2c_free(struct h2conn *c)
{
	if (c->timer > 0)
		evloop_timer_cancel(c->a->loop, c->timer);
	for (struct h2conn **p = &conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	nconns--;
	held_all -= c->held;
	while (c->streams) {
		struct h2s *s = c->streams;
		c->streams = s->next;
		s->route = NULL;
		h2_stream_free(s);
	}
	while (c->routes) {
		struct h2end *e = c->routes;
		c->routes = e->next;
		end_free(e);
		free(e);
	}
	if (c->reset) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		(void)setsockopt(c->peer.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	} else if (c->peer.fd >= 0) {
		/* A GOAWAY the peer has not read must not be reset away. */
		if (c->peer.ev)
			evloop_del(c->a->loop, c->peer.fd);
		c->peer.ev = 0;
		agent_linger_close(c->a->loop, c->peer.fd);
		c->peer.fd = -1;
	}
	end_free(&c->peer);
	free(c);
}

static void set_events(struct h2end *e, uint32_t ev)
{
	struct evloop *l = e->c->a->loop;

	if (ev == e->ev || e->fd < 0)
		return;
	if (!ev)
		evloop_del(l, e->fd);
	else if (!e->ev)
		(void)evloop_add(l, e->fd, ev, e->kind == END_PEER ? peer_event : route_event,
		                 e->kind == END_PEER ? (void *)e->c : (void *)e);
	else
		(void)evloop_mod(l, e->fd, ev);
	e->ev = ev;
}

/* Whether e holds input that it may handle now (see h2_input). */
static bool input_waits(const struct h2end *e)
{
	return !e->dead && e->inlen >= H2F_HDR_LEN && !h2_blocked(e);
}

/* Epoll interest, input that waited for room, credit to the agent
 * streams, dead routes, the end. */
static void h2c_update(struct h2conn *c)
{
	struct h2end *p = &c->peer;
	bool resumed = false;

	if (!c->closing && input_waits(p)) {
		h2_input(p, NULL, 0);
		resumed = true;
	}
	for (struct h2end *e = c->routes; e && !c->closing; e = e->next)
		if (input_waits(e)) {
			h2_input(e, NULL, 0);
			resumed = true;
		}
	if (resumed)
		h2_pump_all(c);
	for (struct h2end **pe = &c->routes; *pe;) {
		struct h2end *e = *pe;
		if (!e->dead && e->broken)
			h2_end_fail(e, "too much queued for it");
		if (!e->dead && e->goaway && !e->nstreams)
			h2_end_fail(e, "closed after GOAWAY");
		if (e->dead && !e->nstreams) {
			*pe = e->next;
			end_free(e);
			free(e);
			continue;
		}
		pe = &e->next;
	}
	if (c->peer_goaway && !p->nstreams)
		c->closing = true;
	if (c->closing && (!p->outlen || c->reset)) {
		h2c_free(c);
		return;
	}
	count_held(c);
	/* Read from the peer only while what it causes can be written. */
	set_events(p, (!c->closing && !h2_blocked(p) ? EPOLLIN : 0) | (p->outlen ? EPOLLOUT : 0));
	for (struct h2end *e = c->routes; e; e = e->next) {
		if (e->kind == END_LOCAL) {
			/* Credit in batches once the peer takes our output. */
			if (e->is && e->owed >= AP_CREDIT_BATCH && p->outlen < H2_OUT_MAX) {
				istream_credit(e->is, e->owed);
				e->owed = 0;
			}
			continue;
		}
		if (e->dead)
			continue;
		set_events(e, (!e->connecting && !h2_blocked(e) ? EPOLLIN : 0) |
		                      (e->connecting || e->outlen ? EPOLLOUT : 0));
	}
}

/* Whether a socket end's output has waited AGENT_STALL_MS without a byte
 * taken by the other side; else *deadline is lowered to its next check.
 * Taken means acknowledged (sent less what the kernel still holds,
 * SIOCOUTQ), not accepted by send(): the socket's buffer takes megabytes
 * from an app that reads nothing. Checked every quarter of the bound
 * while output waits; the wait is timed from the first check that saw
 * it (output written just before a check, its ACK not back yet, has not
 * waited since the check before, which may be minutes old). */
static bool stalled(struct h2end *e, uint64_t now, uint64_t *deadline)
{
	const uint64_t bound = AGENT_STALL_MS * 1000000ull;
	int unacked = 0;

	if (e->dead || e->kind == END_LOCAL || e->fd < 0)
		return false;
	if (ioctl(e->fd, SIOCOUTQ, &unacked) < 0 || unacked < 0)
		unacked = 0;
	uint64_t taken = e->sent - (uint64_t)unacked;
	bool pending = e->outlen || unacked;
	if (!pending || !e->pending || taken != e->taken) {
		e->taken = taken;
		e->out_ns = now;
	} else if (now - e->out_ns >= bound) {
		return true;
	}
	e->pending = pending;
	if (pending)
		*deadline = now + bound / 4 < *deadline ? now + bound / 4 : *deadline;
	return false;
}

/* The bounds in time (incoming.h): a peer or a pod connection whose
 * output is stuck, a peer idle without streams. The timer runs for the
 * whole connection, re-armed for the nearest deadline; the events only
 * note the times. A local route is the client's stream: its own flow
 * control and the session's liveness bound it. */
static void h2c_timeout(struct evloop *l, void *data)
{
	struct h2conn *c = data;
	uint64_t now = now_ns(), deadline = now + AGENT_IDLE_MS * 1000000ull;
	uint64_t idle_due = c->frame_ns + AGENT_IDLE_MS * 1000000ull;

	c->timer = 0;
	if (stalled(&c->peer, now, &deadline)) {
		log_debug("port %u: the HTTP/2 peer read nothing for %u ms", c->port,
		          AGENT_STALL_MS);
		c->closing = c->reset = true;
	}
	for (struct h2end *e = c->routes; e; e = e->next)
		if (stalled(e, now, &deadline))
			h2_end_fail(e, "it read nothing for too long");
	if (!c->closing && !c->peer.nstreams && idle_due <= now)
		h2_conn_error(&c->peer, H2E_NO_ERROR, "idle");
	else if (!c->closing && !c->peer.nstreams && idle_due < deadline)
		deadline = idle_due;
	c->timer = evloop_timer(l, (deadline - now) / 1000000 + 1, h2c_timeout, c);
	h2_pump_all(c);
	h2c_update(c);
}

bool h2_full(void)
{
	return nconns >= H2_MAX_CONNS;
}

void h2_start(struct incoming *in, struct agent *a, int fd, uint16_t port,
              const struct sockaddr_storage *peer, const struct sockaddr_storage *orig,
              const struct http_filter *f, const uint8_t *head, size_t n)
{
	if (h2_full()) {
		close(fd);
		return;
	}
	struct h2conn *c = xcalloc(1, sizeof(*c));
	c->in = in;
	c->a = a;
	c->f = f;
	c->port = port;
	c->peer_addr = *peer;
	c->orig = *orig;
	end_init(&c->peer, c, END_PEER);
	c->peer.fd = fd;
	c->peer.next_sid = 0;
	c->next = conns;
	conns = c;
	nconns++;
	c->frame_ns = now_ns();
	c->timer = evloop_timer(a->loop, AGENT_IDLE_MS, h2c_timeout, c);
	end_open(&c->peer);
	h2_input(&c->peer, head, n);
	h2_pump_all(c);
	h2c_update(c);
}

void h2_free_all(struct incoming *in, int port)
{
	struct h2conn *c = conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->in != in)
			continue;
		if (port < 0) {
			c->reset = true;
			h2c_free(c);
		} else if (c->port == port) {
			c->f = NULL;
		}
	}
}
