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
#include "agent/h2.h"
#include "agent/h2frame.h"
#include "agent/hpack.h"
#include "common/evloop.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define H2_MAX_CONNS 256
#define H2_MAX_STREAMS 128            /* advertised to the peer */
#define H2_MAX_BLOCK (64u * 1024)     /* header block, and header list */
#define H2_CONN_WINDOW (1024u * 1024) /* connection window given to every end */
#define H2_STREAM_WINDOW (256u * 1024)
#define H2_OUT_LOW (64u * 1024)   /* DATA moves to an end only below this */
#define H2_OUT_MAX (1024u * 1024) /* past this, stop reading what feeds it */
#define H2_MAX_ROUTES 4           /* pod and local connections per stolen one */
#define H2_IN_MAX (H2F_HDR_LEN + H2F_DEFAULT_MAX_FRAME)

enum end_kind { END_PEER, END_POD, END_LOCAL };

struct h2conn;

/* One HTTP/2 connection end. */
struct h2end {
	struct h2end *next; /* the connection's routes */
	struct h2conn *c;
	enum end_kind kind;
	int fd; /* PEER, POD */
	uint32_t ev;
	bool connecting;
	struct istream *is; /* LOCAL */
	uint32_t owed;      /* LOCAL: agent stream bytes not credited yet */
	uint8_t *in;        /* what was read, up to one whole frame */
	size_t inlen;
	uint8_t *out; /* PEER, POD: for the socket */
	size_t outlen;
	struct hpack_dec *dec;
	bool preface;       /* PEER: the client preface is consumed */
	bool settings;      /* their first SETTINGS arrived */
	uint32_t max_frame; /* theirs: the largest frame we may send */
	uint32_t init_win;  /* theirs: the window of new streams we send on */
	int64_t send_win;   /* the connection window towards them */
	int64_t recv_win;   /* what they may still send on the connection */
	uint8_t *hb;        /* header block being collected */
	size_t hblen;
	uint32_t hb_sid;
	uint8_t hb_flags;
	bool in_hb;
	uint32_t next_sid; /* routes: the next stream id to open */
	uint32_t last_sid; /* peer: the highest stream id seen */
	unsigned nstreams;
	bool goaway; /* routes: no new streams (GOAWAY, failure) */
	bool broken; /* LOCAL: its agent stream was cut; fail it soon */
	bool dead;   /* closed; freed by h2c_update() */
};

/* One direction of a stream: what waits for the destination's window. */
struct h2dir {
	uint8_t *q;
	size_t qlen;
	int64_t win;       /* the send window at the destination */
	int64_t recv_left; /* what the source may still send on the stream */
	uint8_t *trail;    /* an encoded header block waiting behind q */
	size_t trail_len;
	bool es;   /* END_STREAM came from the source */
	bool done; /* END_STREAM went out (or nobody takes more) */
};

struct h2s {
	struct h2s *next;
	struct h2conn *c;
	uint32_t psid, usid;
	struct h2end *route; /* NULL: answered by the agent; request bytes dropped */
	struct h2dir req, resp;
	bool resp_begun; /* response HEADERS went to the peer */
};

struct h2conn {
	struct h2conn *next;
	struct incoming *in;
	struct agent *a;
	const struct http_filter *f; /* NULL after unsubscribe: all to the pod */
	uint16_t port;
	struct sockaddr_storage peer_addr, orig;
	struct h2end peer;
	struct h2end *routes;
	struct h2s *streams;
	bool peer_goaway; /* the peer sent GOAWAY: end when its streams are done */
	bool closing;     /* GOAWAY sent or EOF: free once the output is out */
	bool reset;       /* free with a TCP reset */
};

static struct h2conn *conns;
static size_t nconns;

static void h2c_update(struct h2conn *c);
static void end_fail(struct h2end *e, const char *why);
static void pump(struct h2s *s);

/* ---- output ---- */

static size_t end_pending(const struct h2end *e)
{
	if (e->kind == END_LOCAL)
		return e->is ? istream_pending(e->is) : 0;
	return e->outlen;
}

static void end_write(struct h2end *e, const void *p, size_t n)
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
	e->out = xrealloc(e->out, e->outlen + n);
	memcpy(e->out + e->outlen, p, n);
	e->outlen += n;
}

static void end_frame(struct h2end *e, uint8_t type, uint8_t flags, uint32_t sid, const uint8_t *p,
                      size_t n)
{
	uint8_t h[H2F_HDR_LEN];

	h2f_hdr_write(h, (uint32_t)n, type, flags, sid);
	end_write(e, h, sizeof(h));
	end_write(e, p, n);
}

static void send_rst(struct h2end *e, uint32_t sid, uint32_t code)
{
	uint8_t f[H2F_RST_LEN];
	end_write(e, f, h2f_put_rst(f, sid, code));
}

static void send_credit(struct h2end *e, uint32_t sid, uint32_t n)
{
	uint8_t f[H2F_WINDOW_UPDATE_LEN];

	if (!n || !e || e->dead)
		return;
	end_write(e, f, h2f_put_window_update(f, sid, n));
	if (!sid)
		e->recv_win += n;
}

/* A header block, split into HEADERS + CONTINUATION as max_frame says. */
static void send_block(struct h2end *e, uint32_t sid, const uint8_t *b, size_t n, bool es)
{
	uint8_t type = H2F_HEADERS;

	do {
		size_t k = n < e->max_frame ? n : e->max_frame;
		uint8_t flags = (uint8_t)((k == n ? H2F_END_HEADERS : 0) |
		                          (type == H2F_HEADERS && es ? H2F_END_STREAM : 0));
		end_frame(e, type, flags, sid, b, k);
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
		end_write(e, H2F_PREFACE, H2F_PREFACE_LEN);
	}
	n = h2f_put_settings(f, ids, vals, n);
	n += h2f_put_window_update(f + n, 0, H2_CONN_WINDOW - H2F_DEFAULT_WINDOW);
	end_write(e, f, n);
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
	e->preface = kind != END_PEER; /* only a client sends one */
}

/* ---- streams ---- */

static struct h2s *stream_by_peer(struct h2conn *c, uint32_t sid)
{
	for (struct h2s *s = c->streams; s; s = s->next)
		if (s->psid == sid)
			return s;
	return NULL;
}

static struct h2s *stream_by_route(struct h2conn *c, const struct h2end *e, uint32_t sid)
{
	for (struct h2s *s = c->streams; s; s = s->next)
		if (s->route == e && s->usid == sid)
			return s;
	return NULL;
}

static void dir_clear(struct h2dir *d, struct h2end *source)
{
	/* Bytes that will never be delivered still used the source's
	 * connection window. */
	if (d->qlen)
		send_credit(source, 0, (uint32_t)d->qlen);
	free(d->q);
	free(d->trail);
	d->q = d->trail = NULL;
	d->qlen = d->trail_len = 0;
	d->done = true;
}

static void stream_free(struct h2s *s)
{
	free(s->req.q);
	free(s->req.trail);
	free(s->resp.q);
	free(s->resp.trail);
	free(s);
}

/* Unlink and free a stream of c, crediting what it held. */
static void stream_end(struct h2conn *c, struct h2s *s)
{
	dir_clear(&s->req, &c->peer);
	dir_clear(&s->resp, s->route);
	for (struct h2s **p = &c->streams; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	if (s->route)
		s->route->nstreams--;
	c->peer.nstreams--;
	stream_free(s);
}

static void add_field(struct hpack_list *l, const char *name, const char *value)
{
	(void)hpack_list_add(l, name, strlen(name), value, strlen(value));
}

/* The agent answers the stream itself (502, 431): HEADERS, a text body,
 * END_STREAM; what the peer still sends on it is dropped. */
static void answer(struct h2conn *c, struct h2s *s, unsigned status, const char *why)
{
	struct hpack_list l;
	char st[8], len[16], body[256];
	uint8_t *b = NULL;
	size_t bl = 0, bcap = 0;
	int n = snprintf(body, sizeof(body), "mirrord-trace-agent: %s\n", why);

	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)strlen(body);
	snprintf(st, sizeof(st), "%u", status);
	snprintf(len, sizeof(len), "%d", n);
	hpack_list_init(&l);
	add_field(&l, ":status", st);
	add_field(&l, "content-type", "text/plain");
	add_field(&l, "content-length", len);
	hpack_encode(&l, &b, &bl, &bcap);
	hpack_list_free(&l);
	send_block(&c->peer, s->psid, b, bl, false);
	free(b);
	if (s->route)
		s->route->nstreams--;
	dir_clear(&s->resp, s->route);
	s->route = NULL;
	s->resp_begun = true;
	s->resp.done = false;
	s->resp.q = xmalloc((size_t)n);
	memcpy(s->resp.q, body, (size_t)n);
	s->resp.qlen = (size_t)n;
	s->resp.es = true;
	/* The request's own bytes have no taker now: dropped (and
	 * credited) as they come, until the peer ends them. */
	free(s->req.q);
	s->req.q = NULL;
	if (s->req.qlen)
		send_credit(&c->peer, 0, (uint32_t)s->req.qlen);
	s->req.qlen = 0;
	free(s->req.trail);
	s->req.trail = NULL;
	s->req.done = s->req.es;
	pump(s);
}

/* A route's stream cannot go on: a 502 if the peer saw nothing of the
 * response yet, else a reset. */
static void stream_fail(struct h2conn *c, struct h2s *s, const char *why)
{
	if (!s->resp_begun) {
		answer(c, s, 502, why);
		return;
	}
	send_rst(&c->peer, s->psid, H2E_INTERNAL);
	stream_end(c, s);
}

/* Move what the windows and room allow of one direction. */
static void dir_pump(struct h2dir *d, struct h2end *dst, uint32_t dsid, struct h2end *src,
                     uint32_t ssid)
{
	while (d->qlen && d->win > 0 && dst->send_win > 0 && end_pending(dst) < H2_OUT_LOW &&
	       !dst->dead) {
		size_t k = d->qlen;
		if (k > (size_t)d->win)
			k = (size_t)d->win;
		if (k > (size_t)dst->send_win)
			k = (size_t)dst->send_win;
		if (k > dst->max_frame)
			k = dst->max_frame;
		bool last = k == d->qlen && d->es && !d->trail;
		end_frame(dst, H2F_DATA, last ? H2F_END_STREAM : 0, dsid, d->q, k);
		memmove(d->q, d->q + k, d->qlen - k);
		d->qlen -= k;
		d->win -= (int64_t)k;
		dst->send_win -= (int64_t)k;
		/* It reached the other end: the source may send as much
		 * again. The stream credit only while it still sends. */
		if (src && !d->es) {
			send_credit(src, ssid, (uint32_t)k);
			d->recv_left += (int64_t)k;
		}
		send_credit(src, 0, (uint32_t)k);
		if (last)
			d->done = true;
	}
	if (d->qlen || d->done || !d->es || dst->dead)
		return;
	if (d->trail) {
		send_block(dst, dsid, d->trail, d->trail_len, true);
		free(d->trail);
		d->trail = NULL;
		d->trail_len = 0;
	} else {
		end_frame(dst, H2F_DATA, H2F_END_STREAM, dsid, NULL, 0);
	}
	d->done = true;
}

static void pump(struct h2s *s)
{
	if (s->route)
		dir_pump(&s->req, s->route, s->usid, &s->c->peer, s->psid);
	/* Without a route the agent answered: no source to credit. */
	dir_pump(&s->resp, &s->c->peer, s->psid, s->route, s->usid);
}

static void pump_all(struct h2conn *c)
{
	struct h2s *next;

	for (struct h2s *s = c->streams; s; s = next) {
		next = s->next;
		pump(s);
		if (s->req.done && s->resp.done)
			stream_end(c, s);
	}
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
static struct h2end *route_get(struct h2conn *c, enum end_kind kind, const char **why)
{
	for (struct h2end *e = c->routes; e; e = e->next)
		if (e->kind == kind && !e->dead && !e->broken && !e->goaway &&
		    e->next_sid < 0x7ffffff0u)
			return e;
	if (count_routes(c) >= H2_MAX_ROUTES) {
		*why = "too many connections for one HTTP/2 connection";
		return NULL;
	}
	struct h2end *e = xcalloc(1, sizeof(*e));
	end_init(e, c, kind);
	if (kind == END_LOCAL) {
		e->is = istream_open(c->in, AP_SUB_STEAL, c->port, (struct sockaddr *)&c->peer_addr,
		                     (struct sockaddr *)&c->orig, &local_ops, e);
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
		/* The OUTPUT redirect skips marked sockets. */
		if (fd >= 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
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
static void end_fail(struct h2end *e, const char *why)
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
			stream_fail(c, s, msg);
	}
}

/* A connection error found on end e: GOAWAY with the code, then close. */
static void conn_error(struct h2end *e, unsigned code, const char *what)
{
	uint8_t f[H2F_GOAWAY_LEN];
	struct h2conn *c = e->c;

	log_debug("port %u: HTTP/2 %s: %s (error %u)", c->port,
	          e->kind == END_PEER  ? "peer"
	          : e->kind == END_POD ? "pod connection"
	                               : "local connection",
	          what, code);
	end_write(e, f, h2f_put_goaway(f, e->kind == END_PEER ? e->last_sid : 0, code));
	if (e->kind == END_PEER) {
		c->closing = true;
		return;
	}
	/* The GOAWAY may not reach a socket route before the close; it
	 * is a courtesy there. */
	end_fail(e, what);
}

/* ---- incoming frames ---- */

struct view_ctx {
	const struct hpack_list *l;
	size_t *idx; /* regular fields: indexes into l */
	size_t n;
	const char *host; /* :authority when there is no host field */
	size_t host_len;
};

static void view_field(const void *ctx, size_t i, const char **name, size_t *name_len,
                       const char **value, size_t *value_len)
{
	const struct view_ctx *v = ctx;
	if (i == v->n) {
		*name = "host";
		*name_len = 4;
		*value = v->host;
		*value_len = v->host_len;
		return;
	}
	const struct hpack_field *f = &v->l->f[v->idx[i]];
	*name = (const char *)v->l->buf + f->name_off;
	*name_len = f->name_len;
	*value = (const char *)v->l->buf + f->value_off;
	*value_len = f->value_len;
}

static bool request_matches(const struct h2conn *c, const struct hpack_list *l)
{
	size_t mlen = 0, plen = 0, alen = 0;
	const uint8_t *m = hpack_list_get(l, ":method", &mlen);
	const uint8_t *p = hpack_list_get(l, ":path", &plen);
	const uint8_t *auth = hpack_list_get(l, ":authority", &alen);
	_cleanup_free_ size_t *idx = xmalloc((l->n + 1) * sizeof(*idx));
	struct view_ctx vc = {.l = l, .idx = idx};
	bool host = false;

	if (!c->f)
		return false;
	for (size_t i = 0; i < l->n; i++) {
		const uint8_t *name = l->buf + l->f[i].name_off;
		if (l->f[i].name_len && name[0] == ':')
			continue;
		host |= l->f[i].name_len == 4 && !memcmp(name, "host", 4);
		idx[vc.n++] = i;
	}
	vc.host = (const char *)auth;
	vc.host_len = alen;
	const struct http_req_view v = {.method = m ? (const char *)m : "",
	                                .method_len = mlen,
	                                .target = p ? (const char *)p : "",
	                                .target_len = plen,
	                                .nfields = vc.n + (!host && auth),
	                                .field = view_field,
	                                .ctx = &vc};
	return http_filter_match(c->f, &v);
}

/* A new request from the peer. */
static void request_open(struct h2conn *c, uint32_t sid, uint8_t flags, struct hpack_list *l,
                         bool too_big)
{
	struct h2end *p = &c->peer;
	const char *why = NULL;

	p->last_sid = sid;
	if (p->nstreams >= H2_MAX_STREAMS || c->peer_goaway || c->closing) {
		send_rst(p, sid, H2E_REFUSED_STREAM);
		return;
	}
	struct h2s *s = xcalloc(1, sizeof(*s));
	s->c = c;
	s->psid = sid;
	s->req.recv_left = H2_STREAM_WINDOW;
	s->req.es = s->req.done = flags & H2F_END_STREAM;
	s->resp.win = p->init_win;
	s->next = c->streams;
	c->streams = s;
	p->nstreams++;
	if (too_big) {
		answer(c, s, 431, "request header list over the agent's limit");
		return;
	}
	bool local = request_matches(c, l);
	log_debug("HTTP/2 request on port %u to %s", c->port, local ? "the client" : "the pod");
	struct h2end *r = route_get(c, local ? END_LOCAL : END_POD, &why);
	if (!r) {
		answer(c, s, 502, why);
		return;
	}
	s->route = r;
	r->nstreams++;
	s->usid = r->next_sid;
	r->next_sid += 2;
	s->req.win = r->init_win;
	s->resp.recv_left = H2_STREAM_WINDOW;
	uint8_t *b = NULL;
	size_t bl = 0, bcap = 0;
	hpack_encode(l, &b, &bl, &bcap);
	send_block(r, s->usid, b, bl, s->req.es);
	free(b);
}

/* Trailers (or a response head) behind the queued DATA of d. */
static void block_behind(struct h2dir *d, struct h2end *dst, uint32_t dsid, struct hpack_list *l,
                         bool es)
{
	uint8_t *b = NULL;
	size_t bl = 0, bcap = 0;

	hpack_encode(l, &b, &bl, &bcap);
	if (!d->qlen && !d->trail) {
		send_block(dst, dsid, b, bl, es);
		free(b);
		if (es)
			d->es = d->done = true;
		return;
	}
	/* Only trailers can wait behind DATA, and they end the stream. */
	free(d->trail);
	d->trail = b;
	d->trail_len = bl;
	d->es = true;
}

static void headers_done(struct h2end *e, uint32_t sid, uint8_t flags)
{
	struct h2conn *c = e->c;
	struct hpack_list l;
	bool es = flags & H2F_END_STREAM;

	hpack_list_init(&l);
	int r = hpack_decode(e->dec, e->hb, e->hblen, H2_MAX_BLOCK, &l);
	e->in_hb = false;
	e->hblen = 0;
	if (r == -EPROTO) {
		hpack_list_free(&l);
		conn_error(e, H2E_COMPRESSION, "HPACK decoding error");
		return;
	}
	if (e->kind == END_PEER) {
		struct h2s *s = stream_by_peer(c, sid);
		if (!s && sid > e->last_sid && (sid & 1))
			request_open(c, sid, flags, &l, r == -E2BIG);
		else if (!s && !(sid & 1))
			conn_error(e, H2E_PROTOCOL, "HEADERS on an even stream id");
		else if (s && (!es || s->req.es))
			conn_error(e, H2E_PROTOCOL, "HEADERS in the middle of a request");
		else if (s && s->route)
			block_behind(&s->req, s->route, s->usid, &l, true);
		else if (s)
			s->req.es = s->req.done = true; /* trailers of an answered request */
		/* else: a stream already reset; decoding kept HPACK in step */
	} else {
		struct h2s *s = stream_by_route(c, e, sid);
		if (s && r == -E2BIG) {
			send_rst(e, sid, H2E_CANCEL);
			stream_fail(c, s, "response header list over the agent's limit");
		} else if (s && !s->resp.es) {
			s->resp_begun = true;
			block_behind(&s->resp, &c->peer, s->psid, &l, es);
		}
	}
	hpack_list_free(&l);
}

static void on_data(struct h2end *e, const struct h2f_hdr *h, const uint8_t *p)
{
	struct h2conn *c = e->c;
	struct h2s *s =
	        e->kind == END_PEER ? stream_by_peer(c, h->sid) : stream_by_route(c, e, h->sid);
	struct h2dir *d = s ? (e->kind == END_PEER ? &s->req : &s->resp) : NULL;
	size_t off, len;

	e->recv_win -= h->len;
	if (e->recv_win < 0) {
		conn_error(e, H2E_FLOW_CONTROL, "DATA beyond the connection window");
		return;
	}
	if (h2f_content(h, p, &off, &len)) {
		conn_error(e, H2E_PROTOCOL, "bad padding");
		return;
	}
	if (e->kind == END_PEER && !s && (h->sid > e->last_sid || !(h->sid & 1))) {
		conn_error(e, H2E_PROTOCOL, "DATA on an idle stream");
		return;
	}
	if (!d || d->es || (e->kind == END_PEER && !s->route)) {
		/* A stream gone or answered by the agent: dropped, and the
		 * connection window given back at once. */
		send_credit(e, 0, h->len);
		if (d && !d->es && (h->flags & H2F_END_STREAM))
			d->es = d->done = true;
		return;
	}
	d->recv_left -= h->len;
	if (d->recv_left < 0) {
		conn_error(e, H2E_FLOW_CONTROL, "DATA beyond the stream window");
		return;
	}
	/* Padding goes nowhere: credited now. */
	if (h->len - len) {
		send_credit(e, 0, (uint32_t)(h->len - len));
		if (!(h->flags & H2F_END_STREAM))
			send_credit(e, h->sid, (uint32_t)(h->len - len));
		d->recv_left += (int64_t)(h->len - len);
	}
	if (len) {
		d->q = xrealloc(d->q, d->qlen + len);
		memcpy(d->q + d->qlen, p + off, len);
		d->qlen += len;
	}
	if (h->flags & H2F_END_STREAM)
		d->es = true;
	pump(s);
}

static void on_settings(struct h2end *e, const struct h2f_hdr *h, const uint8_t *p)
{
	struct h2conn *c = e->c;
	uint8_t ack[H2F_SETTINGS_ACK_LEN];
	size_t pos = 0;
	uint16_t id;
	uint32_t v;

	if (h->flags & H2F_ACK)
		return;
	e->settings = true;
	while (h2f_setting_next(p, h->len, &pos, &id, &v)) {
		unsigned err = h2f_setting_check(id, v);
		if (err) {
			conn_error(e, err, "bad SETTINGS value");
			return;
		}
		if (id == H2S_MAX_FRAME_SIZE) {
			e->max_frame = v;
		} else if (id == H2S_INITIAL_WINDOW_SIZE) {
			/* §6.9.2: the change applies to every open stream's
			 * window, retroactively. */
			int64_t delta = (int64_t)v - (int64_t)e->init_win;
			for (struct h2s *s = c->streams; s; s = s->next) {
				struct h2dir *d = e->kind == END_PEER ? &s->resp
				                  : s->route == e     ? &s->req
				                                      : NULL;
				if (!d)
					continue;
				d->win += delta;
				if (d->win > H2F_MAX_WINDOW) {
					conn_error(e, H2E_FLOW_CONTROL, "window over 2^31-1");
					return;
				}
			}
			e->init_win = v;
		}
		/* HEADER_TABLE_SIZE: our encoder never indexes.
		 * MAX_CONCURRENT_STREAMS of a route: its refusals come back
		 * as RST_STREAM, which the peer sees. */
	}
	end_write(e, ack, h2f_put_settings_ack(ack));
}

static void on_window_update(struct h2end *e, const struct h2f_hdr *h, const uint8_t *p)
{
	struct h2conn *c = e->c;
	uint32_t inc = h2f_window_increment(p);

	if (!inc) {
		conn_error(e, H2E_PROTOCOL, "WINDOW_UPDATE of 0");
		return;
	}
	if (!h->sid) {
		e->send_win += inc;
		if (e->send_win > H2F_MAX_WINDOW)
			conn_error(e, H2E_FLOW_CONTROL, "connection window over 2^31-1");
		return;
	}
	struct h2s *s =
	        e->kind == END_PEER ? stream_by_peer(c, h->sid) : stream_by_route(c, e, h->sid);
	struct h2dir *d = s ? (e->kind == END_PEER ? &s->resp : &s->req) : NULL;
	if (!d)
		return;
	d->win += inc;
	if (d->win > H2F_MAX_WINDOW)
		conn_error(e, H2E_FLOW_CONTROL, "stream window over 2^31-1");
}

static void on_rst(struct h2end *e, const struct h2f_hdr *h, const uint8_t *p)
{
	struct h2conn *c = e->c;
	uint32_t code = h2f_u32(p);

	if (e->kind == END_PEER) {
		struct h2s *s = stream_by_peer(c, h->sid);
		if (!s) {
			if (h->sid > e->last_sid)
				conn_error(e, H2E_PROTOCOL, "RST_STREAM on an idle stream");
			return;
		}
		if (s->route)
			send_rst(s->route, s->usid, code);
		stream_end(c, s);
		return;
	}
	struct h2s *s = stream_by_route(c, e, h->sid);
	if (!s)
		return;
	send_rst(&c->peer, s->psid, code);
	stream_end(c, s);
}

static void on_goaway(struct h2end *e, const uint8_t *p)
{
	struct h2conn *c = e->c;
	uint32_t last, code;
	struct h2s *next;

	h2f_goaway_parse(p, &last, &code);
	if (e->kind == END_PEER) {
		c->peer_goaway = true;
		return;
	}
	/* Streams it will not process: the peer may retry them. */
	log_debug("port %u: the %s sent GOAWAY (last stream %u, error %u)", c->port,
	          e->kind == END_POD ? "pod's application" : "local application", last, code);
	e->goaway = true;
	for (struct h2s *s = c->streams; s; s = next) {
		next = s->next;
		if (s->route == e && s->usid > last) {
			send_rst(&c->peer, s->psid, H2E_REFUSED_STREAM);
			stream_end(c, s);
		}
	}
}

static void on_frame(struct h2end *e, const struct h2f_hdr *h, const uint8_t *p)
{
	uint8_t f[H2F_PING_LEN];
	size_t off, len;

	if (e->in_hb && (h->type != H2F_CONTINUATION || h->sid != e->hb_sid)) {
		conn_error(e, H2E_PROTOCOL, "header block interrupted");
		return;
	}
	if (!e->settings && h->type != H2F_SETTINGS) {
		conn_error(e, H2E_PROTOCOL, "the first frame is not SETTINGS");
		return;
	}
	switch (h->type) {
	case H2F_DATA:
		on_data(e, h, p);
		break;
	case H2F_HEADERS:
	case H2F_CONTINUATION:
		if (h->type == H2F_CONTINUATION && !e->in_hb) {
			conn_error(e, H2E_PROTOCOL, "CONTINUATION without HEADERS");
			return;
		}
		if (h2f_content(h, p, &off, &len)) {
			conn_error(e, H2E_PROTOCOL, "bad padding");
			return;
		}
		if (e->hblen + len > H2_MAX_BLOCK) {
			conn_error(e, H2E_ENHANCE_YOUR_CALM, "header block over the agent's limit");
			return;
		}
		if (h->type == H2F_HEADERS) {
			e->in_hb = true;
			e->hb_sid = h->sid;
			e->hb_flags = h->flags;
			if (!e->hb)
				e->hb = xmalloc(H2_MAX_BLOCK);
		}
		memcpy(e->hb + e->hblen, p + off, len);
		e->hblen += len;
		if (h->flags & H2F_END_HEADERS)
			headers_done(e, e->hb_sid, e->hb_flags);
		break;
	case H2F_RST_STREAM:
		on_rst(e, h, p);
		break;
	case H2F_SETTINGS:
		on_settings(e, h, p);
		break;
	case H2F_PUSH_PROMISE:
		conn_error(e, H2E_PROTOCOL, "PUSH_PROMISE (push is disabled)");
		break;
	case H2F_PING:
		if (!(h->flags & H2F_ACK))
			end_write(e, f, h2f_put_ping_ack(f, p));
		break;
	case H2F_GOAWAY:
		on_goaway(e, p);
		break;
	case H2F_WINDOW_UPDATE:
		on_window_update(e, h, p);
		break;
	default:
		break; /* PRIORITY, unknown types: ignored */
	}
}

/* Bytes read from end e: frames out of them as far as they go. */
static void end_input(struct h2end *e, const uint8_t *p, size_t n)
{
	struct h2conn *c = e->c;
	size_t pos = 0;

	if (!e->in)
		e->in = xmalloc(H2_IN_MAX + H2F_PREFACE_LEN);
	while (n && !e->dead && !c->closing) {
		size_t k = H2_IN_MAX + H2F_PREFACE_LEN - e->inlen;
		if (k > n)
			k = n;
		memcpy(e->in + e->inlen, p, k);
		e->inlen += k;
		p += k;
		n -= k;
		pos = 0;
		if (!e->preface) {
			if (e->inlen < H2F_PREFACE_LEN)
				continue;
			pos = H2F_PREFACE_LEN; /* http.c saw it is the preface */
			e->preface = true;
		}
		while (!e->dead && !c->closing && e->inlen - pos >= H2F_HDR_LEN) {
			struct h2f_hdr h;
			h2f_hdr_parse(e->in + pos, &h);
			unsigned err = h2f_check(&h, H2F_DEFAULT_MAX_FRAME);
			if (err) {
				conn_error(e, err, "bad frame");
				break;
			}
			if (e->inlen - pos - H2F_HDR_LEN < h.len)
				break;
			on_frame(e, &h, e->in + pos + H2F_HDR_LEN);
			pos += H2F_HDR_LEN + h.len;
		}
		if (e->dead)
			return;
		memmove(e->in, e->in + pos, e->inlen - pos);
		e->inlen -= pos;
	}
}

/* ---- I/O ---- */

static void local_data(void *ctx, const uint8_t *p, size_t n)
{
	struct h2end *e = ctx;
	struct h2conn *c = e->c;

	e->owed += (uint32_t)n;
	end_input(e, p, n);
	pump_all(c);
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
	end_fail(e, why);
	pump_all(c);
	h2c_update(c);
}

static void local_writable(void *ctx)
{
	struct h2end *e = ctx;

	pump_all(e->c);
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
	}
	return true;
}

/* Read from a socket end; false at EOF or error (errno, 0 for EOF). */
static bool end_read(struct h2end *e, int *ret_err)
{
	uint8_t buf[16384];
	ssize_t n = recv(e->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n > 0) {
		end_input(e, buf, (size_t)n);
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
			end_fail(e, strerror(err));
			goto out;
		}
		e->connecting = false;
	}
	if (e->outlen && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && !end_flush(e)) {
		end_fail(e, strerror(errno));
		goto out;
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && (e->ev & EPOLLIN) && !end_read(e, &err))
		end_fail(e, err ? strerror(err) : "connection closed");
out:
	pump_all(c);
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
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && (e->ev & EPOLLIN) && !c->closing &&
	    !end_read(e, &err))
		c->closing = true; /* the peer is gone: so is everything */
	pump_all(c);
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
	for (struct h2conn **p = &conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	nconns--;
	while (c->streams) {
		struct h2s *s = c->streams;
		c->streams = s->next;
		s->route = NULL;
		stream_free(s);
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

/* Epoll interest, credit to the agent streams, dead routes, the end. */
static void h2c_update(struct h2conn *c)
{
	struct h2end *p = &c->peer;
	bool routes_room = true;

	for (struct h2end **pe = &c->routes; *pe;) {
		struct h2end *e = *pe;
		if (!e->dead && e->broken)
			end_fail(e, "too much queued for it");
		if (!e->dead && e->goaway && !e->nstreams)
			end_fail(e, "closed after GOAWAY");
		if (e->dead && !e->nstreams) {
			*pe = e->next;
			end_free(e);
			free(e);
			continue;
		}
		routes_room &= end_pending(e) < H2_OUT_MAX;
		pe = &e->next;
	}
	if (c->peer_goaway && !p->nstreams)
		c->closing = true;
	if (c->closing && (!p->outlen || c->reset)) {
		h2c_free(c);
		return;
	}
	/* Read from the peer only while what it causes can be written. */
	set_events(p, (!c->closing && p->outlen < H2_OUT_MAX && routes_room ? EPOLLIN : 0) |
	                      (p->outlen ? EPOLLOUT : 0));
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
		set_events(e, (!e->connecting && p->outlen < H2_OUT_MAX ? EPOLLIN : 0) |
		                      (e->connecting || e->outlen ? EPOLLOUT : 0));
	}
}

void h2_start(struct incoming *in, struct agent *a, int fd, uint16_t port,
              const struct sockaddr_storage *peer, const struct sockaddr_storage *orig,
              const struct http_filter *f, const uint8_t *head, size_t n)
{
	if (nconns >= H2_MAX_CONNS) {
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
	end_open(&c->peer);
	end_input(&c->peer, head, n);
	pump_all(c);
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
