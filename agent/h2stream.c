/* The HTTP/2 router's streams (see h2.c for the whole picture): frames
 * read from any end, the route of each request decided by the filter on
 * its HEADERS, DATA and trailers following the route, responses mapped
 * back, flow control passed through, and the agent's own answers (502,
 * 431). */
#include "agent/h2int.h"
#include "common/evloop.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void pump(struct h2s *s);

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
		if (s->route == e && !s->queued && s->usid == sid)
			return s;
	return NULL;
}

static void dir_clear(struct h2dir *d, struct h2end *source)
{
	/* Bytes that will never be delivered still used the source's
	 * connection window. */
	if (d->qlen)
		h2_send_credit(source, 0, (uint32_t)d->qlen);
	free(d->q);
	free(d->trail);
	d->q = d->trail = NULL;
	d->qlen = d->trail_len = 0;
	d->done = true;
}

void h2_stream_free(struct h2s *s)
{
	free(s->req.q);
	free(s->req.trail);
	free(s->resp.q);
	free(s->resp.trail);
	free(s->head);
	free(s);
}

/* The stream leaves its route's counts (queued or begun). */
static void unroute(struct h2conn *c, struct h2s *s)
{
	if (!s->route)
		return;
	s->route->nstreams--;
	if (s->queued)
		c->nqueued--;
	else
		s->route->nactive--;
	s->queued = false;
	s->route = NULL;
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
	unroute(c, s);
	c->peer.nstreams--;
	h2_stream_free(s);
}

static void add_field(struct hpack_list *l, const char *name, const char *value)
{
	(void)hpack_list_add(l, name, strlen(name), value, strlen(value));
}

/* The stream leaves its route: what the peer still sends on it is dropped
 * (and credited) as it comes, until the peer ends it. */
static void detach(struct h2conn *c, struct h2s *s)
{
	unroute(c, s);
	free(s->req.q);
	s->req.q = NULL;
	if (s->req.qlen)
		h2_send_credit(&c->peer, 0, (uint32_t)s->req.qlen);
	s->req.qlen = 0;
	free(s->req.trail);
	s->req.trail = NULL;
	s->req.trail_len = 0;
	s->req.done = s->req.es;
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
	h2_send_block(&c->peer, s->psid, b, bl, false);
	free(b);
	dir_clear(&s->resp, s->route);
	detach(c, s);
	s->resp_begun = true;
	s->resp.done = false;
	s->resp.q = xmalloc((size_t)n);
	memcpy(s->resp.q, body, (size_t)n);
	s->resp.qlen = (size_t)n;
	s->resp.es = true;
	pump(s);
}

/* A route's stream cannot go on: a 502 if the peer saw nothing of the
 * response yet, else a reset. A response the route sent whole (it may
 * still wait for the peer's window) is delivered: a server may close
 * its connection right after its last response. */
void h2_stream_fail(struct h2conn *c, struct h2s *s, const char *why)
{
	if (s->resp.es) {
		detach(c, s);
		pump(s);
		return;
	}
	if (!s->resp_begun) {
		answer(c, s, 502, why);
		return;
	}
	h2_send_rst(&c->peer, s->psid, H2E_INTERNAL);
	stream_end(c, s);
}

/* Move what the windows and room allow of one direction. */
static void dir_pump(struct h2dir *d, struct h2end *dst, uint32_t dsid, struct h2end *src,
                     uint32_t ssid)
{
	while (d->qlen && d->win > 0 && dst->send_win > 0 && h2_pending(dst) < H2_OUT_LOW &&
	       !dst->dead) {
		size_t k = d->qlen;
		if (k > (size_t)d->win)
			k = (size_t)d->win;
		if (k > (size_t)dst->send_win)
			k = (size_t)dst->send_win;
		if (k > dst->max_frame)
			k = dst->max_frame;
		bool last = k == d->qlen && d->es && !d->trail;
		h2_frame(dst, H2F_DATA, last ? H2F_END_STREAM : 0, dsid, d->q, k);
		memmove(d->q, d->q + k, d->qlen - k);
		d->qlen -= k;
		d->win -= (int64_t)k;
		dst->send_win -= (int64_t)k;
		/* It reached the other end: the source may send as much
		 * again. The stream credit only while it still sends. */
		if (src && !d->es) {
			h2_send_credit(src, ssid, (uint32_t)k);
			d->recv_left += (int64_t)k;
		}
		h2_send_credit(src, 0, (uint32_t)k);
		if (last)
			d->done = true;
	}
	if (d->qlen || d->done || !d->es || dst->dead)
		return;
	if (d->trail) {
		h2_send_block(dst, dsid, d->trail, d->trail_len, true);
		free(d->trail);
		d->trail = NULL;
		d->trail_len = 0;
	} else {
		h2_frame(dst, H2F_DATA, H2F_END_STREAM, dsid, NULL, 0);
	}
	d->done = true;
}

static void pump(struct h2s *s)
{
	if (s->route && !s->queued)
		dir_pump(&s->req, s->route, s->usid, &s->c->peer, s->psid);
	/* Without a route the agent answered: no source to credit. */
	dir_pump(&s->resp, &s->c->peer, s->psid, s->route, s->usid);
}

/* The request goes to its route: a stream id there, its header block
 * (END_STREAM on it when nothing else of the request is to come). */
static void stream_begin(struct h2s *s, const uint8_t *b, size_t bl)
{
	struct h2end *r = s->route;
	bool es = s->req.es && !s->req.qlen && !s->req.trail;

	r->nactive++;
	s->usid = r->next_sid;
	r->next_sid += 2;
	h2_send_block(r, s->usid, b, bl, es);
	if (es)
		s->req.done = true;
}

/* Queued streams whose route has room now begin, oldest first; those of
 * a route that takes no new streams (GOAWAY) are refused, which tells the
 * peer they were not processed and may be retried. */
static void begin_queued(struct h2conn *c)
{
	struct h2s *s, *oldest, *next;

	for (s = c->streams; s; s = next) {
		next = s->next;
		if (s->queued && (s->route->goaway || s->route->broken)) {
			h2_send_rst(&c->peer, s->psid, H2E_REFUSED_STREAM);
			stream_end(c, s);
		}
	}
	while (c->nqueued) {
		oldest = NULL;
		for (s = c->streams; s; s = s->next)
			if (s->queued && s->route->nactive < s->route->max_streams &&
			    (!oldest || s->psid < oldest->psid))
				oldest = s;
		if (!oldest)
			return;
		c->nqueued--;
		oldest->queued = false;
		stream_begin(oldest, oldest->head, oldest->head_len);
		free(oldest->head);
		oldest->head = NULL;
	}
}

void h2_pump_all(struct h2conn *c)
{
	struct h2s *next;

	if (c->nqueued)
		begin_queued(c);
	for (struct h2s *s = c->streams; s; s = next) {
		next = s->next;
		pump(s);
		if (s->req.done && s->resp.done)
			stream_end(c, s);
	}
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

/* A peer stream ended by a reset (the peer's, or our refusal): charged
 * to the connection; false after a GOAWAY for resetting too fast. Each
 * such stream cost the routes a HEADERS and a RST_STREAM, which is what a
 * rapid reset flood turns into work (CVE-2023-44487). */
static bool reset_charge(struct h2conn *c)
{
	const uint64_t cost = 1000000000ull / H2_RESET_RATE;
	uint64_t now = now_ns();

	c->rst_tat = (c->rst_tat > now ? c->rst_tat : now) + cost;
	if (c->rst_tat - now <= H2_RESET_BURST * cost)
		return true;
	h2_conn_error(&c->peer, H2E_ENHANCE_YOUR_CALM, "streams reset too fast (rapid reset)");
	return false;
}

/* A new request from the peer. */
static void request_open(struct h2conn *c, uint32_t sid, uint8_t flags, struct hpack_list *l,
                         bool too_big)
{
	struct h2end *p = &c->peer;
	const char *why = NULL;

	p->last_sid = sid;
	if (p->nstreams >= H2_MAX_STREAMS || c->peer_goaway || c->closing) {
		if (reset_charge(c))
			h2_send_rst(p, sid, H2E_REFUSED_STREAM);
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
	struct h2end *r = h2_route_get(c, local ? END_LOCAL : END_POD, &why);
	if (!r) {
		answer(c, s, 502, why);
		return;
	}
	s->route = r;
	r->nstreams++;
	s->req.win = r->init_win;
	s->resp.recv_left = H2_STREAM_WINDOW;
	uint8_t *b = NULL;
	size_t bl = 0, bcap = 0;
	hpack_encode(l, &b, &bl, &bcap);
	/* Past the route's MAX_CONCURRENT_STREAMS it would refuse the stream
	 * (and the peer see REFUSED_STREAM for a request it may not retry
	 * elsewhere): it waits, within our own H2_MAX_STREAMS, until a
	 * stream of that route ends (begin_queued). */
	if (r->nactive >= r->max_streams || c->nqueued) {
		s->queued = true;
		s->head = b;
		s->head_len = bl;
		c->nqueued++;
		return;
	}
	stream_begin(s, b, bl);
	free(b);
}

/* Trailers (or a response head) behind the queued DATA of d; dst NULL:
 * the stream has not begun, they wait whatever is queued. */
static void block_behind(struct h2dir *d, struct h2end *dst, uint32_t dsid, struct hpack_list *l,
                         bool es)
{
	uint8_t *b = NULL;
	size_t bl = 0, bcap = 0;

	hpack_encode(l, &b, &bl, &bcap);
	if (dst && !d->qlen && !d->trail) {
		h2_send_block(dst, dsid, b, bl, es);
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
		h2_conn_error(e, H2E_COMPRESSION, "HPACK decoding error");
		return;
	}
	if (e->kind == END_PEER) {
		struct h2s *s = stream_by_peer(c, sid);
		if (!s && sid > e->last_sid && (sid & 1))
			request_open(c, sid, flags, &l, r == -E2BIG);
		else if (!s && !(sid & 1))
			h2_conn_error(e, H2E_PROTOCOL, "HEADERS on an even stream id");
		else if (s && (!es || s->req.es))
			h2_conn_error(e, H2E_PROTOCOL, "HEADERS in the middle of a request");
		else if (s && s->route)
			block_behind(&s->req, s->queued ? NULL : s->route, s->usid, &l, true);
		else if (s)
			s->req.es = s->req.done = true; /* trailers of an answered request */
		/* else: a stream already reset; decoding kept HPACK in step */
	} else {
		struct h2s *s = stream_by_route(c, e, sid);
		if (s && r == -E2BIG) {
			h2_send_rst(e, sid, H2E_CANCEL);
			h2_stream_fail(c, s, "response header list over the agent's limit");
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
		h2_conn_error(e, H2E_FLOW_CONTROL, "DATA beyond the connection window");
		return;
	}
	if (h2f_content(h, p, &off, &len)) {
		h2_conn_error(e, H2E_PROTOCOL, "bad padding");
		return;
	}
	if (e->kind == END_PEER && !s && (h->sid > e->last_sid || !(h->sid & 1))) {
		h2_conn_error(e, H2E_PROTOCOL, "DATA on an idle stream");
		return;
	}
	if (!d || d->es || (e->kind == END_PEER && !s->route)) {
		/* A stream gone or answered by the agent: dropped, and the
		 * window given back at once; the stream's too while it is
		 * still sending, so a request body after the agent's answer
		 * can end (and the stream with it). */
		h2_send_credit(e, 0, h->len);
		if (d && !d->es && !(h->flags & H2F_END_STREAM))
			h2_send_credit(e, h->sid, h->len);
		if (d && !d->es && (h->flags & H2F_END_STREAM))
			d->es = d->done = true;
		return;
	}
	d->recv_left -= h->len;
	if (d->recv_left < 0) {
		h2_conn_error(e, H2E_FLOW_CONTROL, "DATA beyond the stream window");
		return;
	}
	/* Padding goes nowhere: credited now. */
	if (h->len - len) {
		h2_send_credit(e, 0, (uint32_t)(h->len - len));
		if (!(h->flags & H2F_END_STREAM))
			h2_send_credit(e, h->sid, (uint32_t)(h->len - len));
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
			h2_conn_error(e, err, "bad SETTINGS value");
			return;
		}
		if (id == H2S_MAX_FRAME_SIZE) {
			e->max_frame = v;
		} else if (id == H2S_MAX_CONCURRENT_STREAMS && e->kind != END_PEER) {
			e->max_streams = v; /* streams over it wait: begin_queued */
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
					h2_conn_error(e, H2E_FLOW_CONTROL, "window over 2^31-1");
					return;
				}
			}
			e->init_win = v;
		}
		/* HEADER_TABLE_SIZE: our encoder never indexes. The peer's
		 * MAX_CONCURRENT_STREAMS bounds pushes, which we never send. */
	}
	h2_write(e, ack, h2f_put_settings_ack(ack));
}

static void on_window_update(struct h2end *e, const struct h2f_hdr *h, const uint8_t *p)
{
	struct h2conn *c = e->c;
	uint32_t inc = h2f_window_increment(p);

	if (!inc) {
		h2_conn_error(e, H2E_PROTOCOL, "WINDOW_UPDATE of 0");
		return;
	}
	if (!h->sid) {
		e->send_win += inc;
		if (e->send_win > H2F_MAX_WINDOW)
			h2_conn_error(e, H2E_FLOW_CONTROL, "connection window over 2^31-1");
		return;
	}
	struct h2s *s =
	        e->kind == END_PEER ? stream_by_peer(c, h->sid) : stream_by_route(c, e, h->sid);
	struct h2dir *d = s ? (e->kind == END_PEER ? &s->resp : &s->req) : NULL;
	if (!d)
		return;
	d->win += inc;
	if (d->win > H2F_MAX_WINDOW)
		h2_conn_error(e, H2E_FLOW_CONTROL, "stream window over 2^31-1");
}

static void on_rst(struct h2end *e, const struct h2f_hdr *h, const uint8_t *p)
{
	struct h2conn *c = e->c;
	uint32_t code = h2f_u32(p);

	if (e->kind == END_PEER) {
		struct h2s *s = stream_by_peer(c, h->sid);
		if (!s) {
			if (h->sid > e->last_sid)
				h2_conn_error(e, H2E_PROTOCOL, "RST_STREAM on an idle stream");
			return;
		}
		if (s->route && !s->queued)
			h2_send_rst(s->route, s->usid, code);
		stream_end(c, s);
		(void)reset_charge(c);
		return;
	}
	struct h2s *s = stream_by_route(c, e, h->sid);
	if (!s)
		return;
	h2_send_rst(&c->peer, s->psid, code);
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
		if (s->route == e && (s->queued || s->usid > last)) {
			h2_send_rst(&c->peer, s->psid, H2E_REFUSED_STREAM);
			stream_end(c, s);
		}
	}
}

static void on_frame(struct h2end *e, const struct h2f_hdr *h, const uint8_t *p)
{
	uint8_t f[H2F_PING_LEN];
	size_t off, len;

	if (e->in_hb && (h->type != H2F_CONTINUATION || h->sid != e->hb_sid)) {
		h2_conn_error(e, H2E_PROTOCOL, "header block interrupted");
		return;
	}
	if (!e->settings && h->type != H2F_SETTINGS) {
		h2_conn_error(e, H2E_PROTOCOL, "the first frame is not SETTINGS");
		return;
	}
	switch (h->type) {
	case H2F_DATA:
		on_data(e, h, p);
		break;
	case H2F_HEADERS:
	case H2F_CONTINUATION:
		if (h->type == H2F_CONTINUATION && !e->in_hb) {
			h2_conn_error(e, H2E_PROTOCOL, "CONTINUATION without HEADERS");
			return;
		}
		if (h2f_content(h, p, &off, &len)) {
			h2_conn_error(e, H2E_PROTOCOL, "bad padding");
			return;
		}
		if (e->hblen + len > H2_MAX_BLOCK) {
			h2_conn_error(e, H2E_ENHANCE_YOUR_CALM,
			              "header block over the agent's limit");
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
		h2_conn_error(e, H2E_PROTOCOL, "PUSH_PROMISE (push is disabled)");
		break;
	case H2F_PING:
		if (!(h->flags & H2F_ACK))
			h2_write(e, f, h2f_put_ping_ack(f, p));
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

/* Bytes read from end e: frames out of them as far as they go, and as
 * long as the connection's output has room (h2_blocked): header blocks are
 * not flow-controlled and re-encoding can make one small frame tens of KB,
 * so the rest waits in e->in until h2c_update() finds room again. Reading
 * stops meanwhile, which bounds what waits (one read; for a local route,
 * its agent stream's window, credited as frames are handled). */
void h2_input(struct h2end *e, const uint8_t *p, size_t n)
{
	struct h2conn *c = e->c;
	size_t pos = 0;

	if (e->dead || c->closing)
		return;
	if (e->inlen + n > e->incap) {
		e->incap = e->inlen + n > 2 * H2_IN_MAX ? e->inlen + n : 2 * H2_IN_MAX;
		e->in = xrealloc(e->in, e->incap);
	}
	if (n)
		memcpy(e->in + e->inlen, p, n);
	e->inlen += n;
	if (!e->inlen)
		return; /* nothing (and maybe no buffer yet) */
	if (!e->preface) {
		if (e->inlen < H2F_PREFACE_LEN)
			return;
		pos = H2F_PREFACE_LEN; /* http.c saw it is the preface */
		e->preface = true;
	}
	while (!e->dead && !c->closing && !h2_blocked(e) && e->inlen - pos >= H2F_HDR_LEN) {
		struct h2f_hdr h;
		h2f_hdr_parse(e->in + pos, &h);
		unsigned err = h2f_check(&h, H2F_DEFAULT_MAX_FRAME);
		if (err) {
			h2_conn_error(e, err, "bad frame");
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
	if (e->kind == END_LOCAL)
		e->owed += (uint32_t)pos;
}
