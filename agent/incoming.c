/* Per-client incoming traffic: the subscription table, and the streams
 * the agent opens that are not plain sockets (mirror copies, filtered
 * HTTP), with the same credit flow control as streams.c.
 *
 * A subscription is one port in one mode. Steal ports share one
 * redirect listener and rule set (steal.c), mirror ports one capture
 * socket (capture.c); both are created at the first subscription of
 * their kind and go with the last, or with the client. */
#include "agent/incoming.h"
#include "common/evloop.h"
#include "common/log.h"
#include "common/u64map.h"

#include <string.h>

struct sub {
	uint16_t port;
	uint8_t mode;
	uint32_t window; /* the client's grant per stream */
	struct http_filter *filter;
};

struct istream {
	struct incoming *in;
	uint32_t id;
	uint32_t window, send_avail; /* towards the client */
	uint8_t *pend;               /* bytes waiting for window or room */
	size_t phead, plen;
	const struct istream_ops *ops;
	void *ctx;
	bool closing; /* our FIN waits behind pend */
};

struct incoming {
	struct client *c;
	struct agent *a;
	struct sub subs[INCOMING_MAX_SUBS];
	size_t nsubs;
	struct u64map streams; /* id -> struct istream */
	uint32_t next_id;
	struct steal *steal;
	struct capture *cap;
};

struct incoming *incoming_new(struct client *c, struct agent *a)
{
	struct incoming *in = xcalloc(1, sizeof(*in));

	in->c = c;
	in->a = a;
	return in;
}

static void istream_free(struct istream *s)
{
	u64map_del(&s->in->streams, s->id);
	free(s->pend);
	free(s);
}

void incoming_free(struct incoming *in)
{
	uint64_t k;
	void *v;

	if (!in)
		return;
	/* Rules first: no new connection may arrive for a gone client. */
	steal_free(in->steal);
	capture_free(in->cap);
	hconn_free_all(in, -1);
	/* What is left belongs to owners already gone; tell nobody. */
	for (size_t i = 0; u64map_next(&in->streams, &i, &k, &v);) {
		istream_free(v);
		i = 0;
	}
	u64map_free(&in->streams);
	for (size_t i = 0; i < in->nsubs; i++)
		http_filter_free(in->subs[i].filter);
	free(in);
}

static void reply(struct incoming *in, uint32_t id, int err)
{
	struct ap_msg m = {.type = AP_PORT_RESP, .id = id, .u.port_resp.err = err};
	int r = client_send(in->c, &m);

	if (r < 0)
		client_fail(in->c, AGENT_EXIT_FAIL, -r, "cannot queue PORT_RESP: %s", strerror(-r));
}

static struct sub *find_sub(struct incoming *in, uint16_t port)
{
	for (size_t i = 0; i < in->nsubs; i++)
		if (in->subs[i].port == port)
			return &in->subs[i];
	return NULL;
}

/* Push the current port set of mode to its mechanism. */
static int apply(struct incoming *in, uint8_t mode, char *err, size_t errcap)
{
	uint16_t ports[INCOMING_MAX_SUBS];
	size_t n = 0;
	int r;

	for (size_t i = 0; i < in->nsubs; i++)
		if (in->subs[i].mode == mode)
			ports[n++] = in->subs[i].port;
	if (mode == AP_SUB_STEAL) {
		if (!n) {
			steal_free(in->steal);
			in->steal = NULL;
			return 0;
		}
		if (!in->steal && (r = steal_new(in, in->a, &in->steal)) < 0)
			return r;
		return steal_set_ports(in->steal, ports, n, err, errcap);
	}
	if (!n) {
		capture_free(in->cap);
		in->cap = NULL;
		return 0;
	}
	if (!in->cap && (r = capture_new(in, in->a, &in->cap)) < 0)
		return r;
	return capture_set_ports(in->cap, ports, n);
}

void incoming_sub(struct incoming *in, const struct ap_msg *m)
{
	uint16_t port = m->u.port_sub.port;
	uint8_t mode = m->u.port_sub.mode;
	struct http_filter *f = NULL;
	char err[256];
	int r;

	if (find_sub(in, port)) {
		reply(in, m->id, EEXIST);
		return;
	}
	if (in->nsubs >= INCOMING_MAX_SUBS) {
		reply(in, m->id, ENOSPC);
		return;
	}
	if (mode == AP_SUB_STEAL && in->a->target.mode == AGENT_TARGETLESS) {
		log_warn("steal of port %u refused: no target (targetless)", port);
		reply(in, m->id, EOPNOTSUPP);
		return;
	}
	if (m->u.port_sub.filter_op != AP_FILTER_NONE) {
		r = http_filter_new(m, &f, err, sizeof(err));
		if (r < 0) {
			log_warn("port %u: bad HTTP filter: %s", port, err);
			reply(in, m->id, -r);
			return;
		}
	}
	in->subs[in->nsubs++] = (struct sub){
	        .port = port,
	        .mode = mode,
	        .window = m->u.port_sub.window ? m->u.port_sub.window : AP_DEFAULT_WINDOW,
	        .filter = f,
	};
	err[0] = 0;
	r = apply(in, mode, err, sizeof(err));
	if (r < 0) {
		log_error("cannot %s port %u: %s%s%s", mode == AP_SUB_STEAL ? "steal" : "mirror",
		          port, strerror(-r), err[0] ? ": " : "", err);
		http_filter_free(f);
		in->nsubs--;
		(void)apply(in, mode, NULL, 0);
		reply(in, m->id, -r);
		return;
	}
	log_info("%s port %u%s", mode == AP_SUB_STEAL ? "stealing" : "mirroring", port,
	         f ? " (HTTP filter)" : "");
	reply(in, m->id, 0);
}

void incoming_unsub(struct incoming *in, const struct ap_msg *m)
{
	struct sub *s = find_sub(in, m->u.port_unsub.port);

	if (!s) {
		reply(in, m->id, ENOENT);
		return;
	}
	uint8_t mode = s->mode;
	hconn_free_all(in, s->port); /* they stop using the filter */
	if (in->cap && s->filter)
		capture_filter_gone(in->cap, s->port);
	http_filter_free(s->filter);
	*s = in->subs[--in->nsubs];
	(void)apply(in, mode, NULL, 0);
	/* Connections already taken keep their streams: the client closes
	 * those (as a listener's close leaves accepted sockets alone). */
	log_info("port %u no longer %s", m->u.port_unsub.port,
	         mode == AP_SUB_STEAL ? "stolen" : "mirrored");
	reply(in, m->id, 0);
}

const struct http_filter *incoming_mirror_filter(struct incoming *in, uint16_t port)
{
	struct sub *s = find_sub(in, port);

	return s && s->mode == AP_SUB_MIRROR ? s->filter : NULL;
}

bool incoming_steal_lookup(struct incoming *in, uint16_t port, struct http_filter **ret_filter)
{
	struct sub *s = find_sub(in, port);

	if (!s || s->mode != AP_SUB_STEAL)
		return false;
	*ret_filter = s->filter;
	return true;
}

static uint32_t new_id(struct incoming *in)
{
	/* 31 bits of ids; one wrap takes 2^31 connections, and an id still
	 * in use is skipped. */
	do
		in->next_id = (in->next_id + 1) & ~AP_STREAM_AGENT_BIT;
	while (!in->next_id || u64map_get(&in->streams, AP_STREAM_AGENT_BIT | in->next_id));
	return AP_STREAM_AGENT_BIT | in->next_id;
}

static int send_accept(struct incoming *in, uint32_t id, uint8_t mode, uint16_t port,
                       const struct sockaddr *peer, const struct sockaddr *local, uint32_t window)
{
	struct ap_msg m = {.type = AP_ACCEPT,
	                   .id = id,
	                   .u.accept = {.port = port, .mode = mode, .window = window}};
	int r;

	if (ap_addr_from_sockaddr(peer, sizeof(struct sockaddr_storage), &m.u.accept.peer) < 0 ||
	    ap_addr_from_sockaddr(local, sizeof(struct sockaddr_storage), &m.u.accept.local) < 0)
		return -EAFNOSUPPORT;
	r = client_send(in->c, &m);
	if (r < 0)
		client_fail(in->c, AGENT_EXIT_FAIL, -r, "cannot queue ACCEPT: %s", strerror(-r));
	return r;
}

int incoming_adopt(struct incoming *in, int fd, uint16_t port, const struct sockaddr *peer,
                   const struct sockaddr *local)
{
	struct sub *s = find_sub(in, port);
	uint32_t id = new_id(in);
	int r;

	if (!s)
		return -ENOENT;
	r = send_accept(in, id, AP_SUB_STEAL, port, peer, local, AP_DEFAULT_WINDOW);
	if (r < 0)
		return r;
	r = streams_adopt(in->a->streams, id, fd, s->window);
	if (r < 0) {
		struct ap_msg m = {
		        .type = AP_CLOSE, .id = id, .u.close = {.how = AP_CLOSE_RESET, .err = -r}};
		(void)client_send(in->c, &m);
	}
	return r;
}

struct istream *istream_open(struct incoming *in, uint8_t mode, uint16_t port,
                             const struct sockaddr *peer, const struct sockaddr *local,
                             uint32_t recv_window, const struct istream_ops *ops, void *ctx)
{
	struct sub *sub = find_sub(in, port);

	if (!sub || in->streams.n >= AGENT_MAX_STREAMS)
		return NULL;
	uint32_t id = new_id(in);
	if (send_accept(in, id, mode, port, peer, local,
	                recv_window ? recv_window : AP_DEFAULT_WINDOW) < 0)
		return NULL;
	struct istream *s = xcalloc(1, sizeof(*s));
	s->in = in;
	s->id = id;
	s->window = s->send_avail = sub->window;
	s->ops = ops;
	s->ctx = ctx;
	u64map_put(&in->streams, id, s);
	return s;
}

static void send_close(struct istream *s, uint8_t how, int err)
{
	struct ap_msg m = {.type = AP_CLOSE, .id = s->id, .u.close = {.how = how, .err = err}};
	int r = client_send(s->in->c, &m);

	if (r < 0)
		client_fail(s->in->c, AGENT_EXIT_FAIL, -r, "cannot queue CLOSE: %s", strerror(-r));
}

/* Send what window and room allow. Returns false if the stream ended
 * (its FIN went out and it was freed). */
static bool flush(struct istream *s)
{
	struct client *c = s->in->c;

	while (s->plen && s->send_avail && client_has_room(c, AP_HEADER_SIZE + AP_MAX_DATA)) {
		size_t n = s->plen;
		if (n > s->send_avail)
			n = s->send_avail;
		if (n > AP_MAX_DATA)
			n = AP_MAX_DATA;
		struct ap_msg m = {.type = AP_DATA,
		                   .id = s->id,
		                   .u.data.data = {s->pend + s->phead, (uint32_t)n}};
		if (client_send(c, &m) < 0) {
			client_fail(c, AGENT_EXIT_FAIL, ENOBUFS, "cannot queue DATA");
			return true;
		}
		s->phead += n;
		s->plen -= n;
		s->send_avail -= (uint32_t)n;
	}
	if (!s->plen) {
		free(s->pend);
		s->pend = NULL;
		s->phead = 0;
		if (s->closing) {
			send_close(s, AP_CLOSE_FIN, 0);
			istream_free(s);
			return false;
		}
	}
	return true;
}

int istream_send(struct istream *s, const uint8_t *p, size_t n, size_t max_pending)
{
	if (s->plen + n > max_pending)
		return -ENOBUFS;
	if (!n)
		return 0;
	/* Compact, then append: pend is a sliding window like client.c's. */
	if (s->phead) {
		memmove(s->pend, s->pend + s->phead, s->plen);
		s->phead = 0;
	}
	s->pend = xrealloc(s->pend, s->plen + n);
	memcpy(s->pend + s->plen, p, n);
	s->plen += n;
	(void)flush(s);
	return 0;
}

size_t istream_pending(const struct istream *s)
{
	return s->plen;
}

bool istream_blocked(const struct istream *s)
{
	return s->plen > 0 || !s->send_avail;
}

void istream_credit(struct istream *s, uint32_t n)
{
	struct ap_msg m = {.type = AP_CREDIT, .id = s->id, .u.credit.bytes = n};

	if (n && client_send(s->in->c, &m) < 0)
		client_fail(s->in->c, AGENT_EXIT_FAIL, ENOBUFS, "cannot queue CREDIT");
}

void istream_close(struct istream *s, uint8_t how, int err)
{
	s->ops = NULL;
	if (how == AP_CLOSE_RESET) {
		send_close(s, AP_CLOSE_RESET, err);
		istream_free(s);
		return;
	}
	s->closing = true;
	(void)flush(s);
}

int incoming_data(struct incoming *in, uint32_t id, const struct ap_bytes *d, const char **ret_why)
{
	struct istream *s = (id & AP_STREAM_AGENT_BIT) ? u64map_get(&in->streams, id) : NULL;

	if (!s)
		return 0;
	if (!s->ops || !s->ops->data) {
		/* A mirror stream, or one we are closing: discarded, and the
		 * window handed straight back. */
		istream_credit(s, d->len);
		return 1;
	}
	s->ops->data(s->ctx, d->ptr, d->len);
	return 1;
}

int incoming_credit(struct incoming *in, uint32_t id, uint32_t bytes, const char **ret_why)
{
	struct istream *s = (id & AP_STREAM_AGENT_BIT) ? u64map_get(&in->streams, id) : NULL;

	if (!s)
		return 0;
	if ((uint64_t)s->send_avail + bytes > s->window) {
		*ret_why = "credit for more bytes than were sent";
		return -EPROTO;
	}
	s->send_avail += bytes;
	if (flush(s) && s->ops && s->ops->writable)
		s->ops->writable(s->ctx);
	return 1;
}

int incoming_close(struct incoming *in, uint32_t id, uint8_t how, int32_t err, const char **ret_why)
{
	struct istream *s = (id & AP_STREAM_AGENT_BIT) ? u64map_get(&in->streams, id) : NULL;

	if (!s)
		return 0;
	const struct istream_ops *ops = s->ops;
	void *ctx = s->ctx;
	if (how == AP_CLOSE_RESET) {
		istream_free(s);
		if (ops && ops->closed)
			ops->closed(ctx, how, err);
		return 1;
	}
	/* FIN: the client sends no more. The owner decides when our side
	 * ends (istream_close); a mirror copy keeps sending. */
	if (ops && ops->closed)
		ops->closed(ctx, how, err);
	return 1;
}

void incoming_kick(struct incoming *in)
{
	uint64_t k;
	void *v;
	/* Collect first: flushing may free streams (u64map rule). */
	size_t n = 0, cap = in->streams.n;
	_cleanup_free_ uint32_t *ids = cap ? xmalloc(cap * sizeof(*ids)) : NULL;

	for (size_t i = 0; n < cap && u64map_next(&in->streams, &i, &k, &v);)
		if (((struct istream *)v)->plen)
			ids[n++] = (uint32_t)k;
	for (size_t i = 0; i < n; i++) {
		struct istream *s = u64map_get(&in->streams, ids[i]);
		if (s && flush(s) && s->ops && s->ops->writable)
			s->ops->writable(s->ctx);
	}
}
