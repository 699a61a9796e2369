/* Incoming traffic, the session's half: port subscriptions at the agent
 * and the connections they bring.
 *
 * A subscription names a pod port and the program's listening socket. Each
 * AP_ACCEPT the agent sends for it becomes a stream whose local end is a
 * supervisor socket connected to the program's listener: the relay
 * machinery of relay.c then moves bytes both ways with credit flow
 * control. Mirror streams drop the program's replies here (the pod has
 * answered already), steal streams carry them back.
 *
 * The program accepts a connection from our socket, so its getpeername()
 * would say 127.0.0.1:<our port>. The real peer is kept under our socket's
 * local address (what the program sees as its peer) until the stream ends.
 *
 * Connections reach the listener no faster than the program accepts
 * them. A full accept queue drops the handshake's last ACK, and with
 * SYN cookies on (Linux's default) the request's later segments then fail
 * the cookie check and the kernel resets the connection: the program would
 * never see it. So before each connect the listener's queue is read with
 * sock_diag; while it is full, new streams wait (their bytes buffered up
 * to the window, which holds the agent back) and a timer retries.
 *
 * The program closes listeners without the supervisor seeing it (close is
 * not trapped for this): a sweep compares the listeners' inodes with the
 * sockets the traced processes hold and unsubscribes the gone ones. After
 * a dropped agent link, every subscription is sent again. */
#include "session/internal.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define IN_MAX_SUBS 256
#define IN_SWEEP_MS 1000
/* A subscription request the agent has not answered within this fails. */
#define IN_SUB_TIMEOUT_MS 30000
/* How often streams waiting for room in a full accept queue retry. */
#define IN_WAIT_MS 5

struct in_sub {
	uint16_t port; /* the pod's port */
	uint8_t mode;  /* enum ap_sub_mode */
	uint8_t filter_op;
	uint8_t nrules;
	uint8_t kind[AP_MAX_FILTER_RULES];
	char *pattern[AP_MAX_FILTER_RULES];
	ino_t ino;                     /* the program's listening socket */
	struct sockaddr_storage local; /* where our relay sockets connect */
	socklen_t locallen;
	uint32_t req; /* unanswered AP_PORT_SUB, or 0 */
	bool active;  /* the agent confirmed */
	session_in_cb cb;
	void *cbdata;
	int64_t timer;
	/* Streams waiting for room in the listener's accept queue, oldest
	 * first, by id (a stream freed meanwhile is skipped). */
	uint32_t *wait;
	size_t nwait, wait_cap;
};

/* What bind() asked for, when the socket was bound elsewhere. */
struct in_bound {
	struct sockaddr_storage requested;
	socklen_t len;
	uint16_t actual;
};

/* The real peer of a connection we opened to the program's listener,
 * under our socket's address (the program's view of its peer). */
struct in_peer {
	struct sockaddr_storage local, peer;
	socklen_t locallen, peerlen;
};

struct in_state {
	struct in_sub *subs[IN_MAX_SUBS];
	size_t nsubs;
	struct u64map bound; /* program socket inode -> struct in_bound */
	struct u64map peers; /* our relay socket's local address key -> struct peer */
	int64_t sweep_timer;
	int64_t wait_timer; /* while some subscription has waiting streams */
	int diag_fd;        /* NETLINK_SOCK_DIAG, or -1 until first used */
};

static struct in_state *in_get(struct session *s)
{
	if (!s->in) {
		s->in = xcalloc(1, sizeof(*s->in));
		s->in->diag_fd = -1;
	}
	return s->in;
}

static uint32_t req_id(struct session *s)
{
	uint32_t id;

	do {
		id = s->next_id++;
		if (s->next_id >= AP_STREAM_AGENT_BIT)
			s->next_id = 1;
	} while (id == 0);
	return id;
}

/* Key of a loopback address as the program sees our socket: family and
 * port (the address is checked against the stored one). */
static uint64_t addr_key(const struct sockaddr_storage *ss)
{
	return ((uint64_t)ss->ss_family << 16) | sa_port(ss);
}

static void sub_free(struct session *s, struct in_sub *sub)
{
	if (sub->timer && s->loop)
		evloop_timer_cancel(s->loop, sub->timer);
	for (size_t i = 0; i < sub->nrules; i++)
		free(sub->pattern[i]);
	free(sub->wait);
	free(sub);
}

static void sub_remove(struct session *s, struct in_sub *sub)
{
	struct in_state *in = s->in;

	/* The listener is gone: what waited for it is refused. */
	for (size_t i = 0; i < sub->nwait; i++) {
		struct stream *st = u64map_get(&s->streams, sub->wait[i]);
		if (st) {
			send_close(s, st, AP_CLOSE_RESET, ECONNREFUSED);
			stream_free(s, st);
		}
	}
	sub->nwait = 0;

	for (size_t i = 0; i < in->nsubs; i++) {
		if (in->subs[i] == sub) {
			in->subs[i] = in->subs[--in->nsubs];
			break;
		}
	}
	sub_free(s, sub);
}

static struct in_sub *sub_by_port(struct in_state *in, uint16_t port)
{
	for (size_t i = 0; in && i < in->nsubs; i++)
		if (in->subs[i]->port == port)
			return in->subs[i];
	return NULL;
}

/* Settle a parked listen() once. */
static void sub_answer(struct in_sub *sub, int err)
{
	session_in_cb cb = sub->cb;

	sub->cb = NULL;
	if (cb)
		cb(sub->cbdata, err);
}

static int send_sub(struct session *s, struct in_sub *sub)
{
	struct ap_msg m = {.type = AP_PORT_SUB, .id = req_id(s)};

	m.u.port_sub.port = sub->port;
	m.u.port_sub.mode = sub->mode;
	m.u.port_sub.window = AP_DEFAULT_WINDOW;
	m.u.port_sub.filter_op = sub->filter_op;
	m.u.port_sub.rule_count = sub->nrules;
	for (size_t i = 0; i < sub->nrules; i++) {
		m.u.port_sub.rules[i].kind = sub->kind[i];
		m.u.port_sub.rules[i].pattern = (struct ap_bytes){
		        (const uint8_t *)sub->pattern[i], (uint32_t)strlen(sub->pattern[i])};
	}
	sub->req = m.id;
	return session_send(s, &m);
}

static void send_unsub(struct session *s, uint16_t port)
{
	/* The answer is not awaited: an unknown id is dropped on arrival. */
	struct ap_msg m = {.type = AP_PORT_UNSUB, .id = req_id(s)};

	m.u.port_unsub.port = port;
	session_send(s, &m);
}

static void sub_timed_out(struct evloop *l, void *data)
{
	struct in_sub *sub = data;

	sub->timer = 0;
	if (sub->req && !sub->active)
		sub_answer(sub, ETIMEDOUT);
}

/* ---- the listener sweep ------------------------------------------------ */

static void sweep(struct evloop *l, void *data)
{
	struct session *s = data;
	struct in_state *in = s->in;
	struct u64map alive = {0};
	uint64_t *live = NULL, key, *dead;
	size_t nlive, ndead = 0;
	void *v;

	in->sweep_timer = 0;
	if (!s->alive || !s->live || (!in->nsubs && !in->bound.n))
		return;
	nlive = s->live(s->live_data, &live);
	for (size_t i = 0; i < nlive; i++)
		u64map_put(&alive, live[i], &alive);
	for (size_t i = 0; i < in->nsubs;) {
		struct in_sub *sub = in->subs[i];
		/* A listen() still waiting for the agent holds the socket. */
		if (sub->cb || u64map_get(&alive, sub->ino)) {
			i++;
			continue;
		}
		/* Closed listener: connections it brought stay, as a closed
		 * listening socket leaves its accepted sockets alone. */
		if (sub->active || sub->req)
			send_unsub(s, sub->port);
		sub_remove(s, sub); /* moved the last one to i */
	}
	dead = xcalloc(in->bound.n + 1, sizeof(*dead));
	for (size_t i = 0; u64map_next(&in->bound, &i, &key, &v);)
		if (!u64map_get(&alive, key))
			dead[ndead++] = key;
	for (size_t i = 0; i < ndead; i++)
		free(u64map_del(&in->bound, dead[i]));
	free(dead);
	u64map_free(&alive);
	free(live);
	if (in->nsubs || in->bound.n)
		in->sweep_timer = evloop_timer(l, IN_SWEEP_MS, sweep, s);
}

static void sweep_arm(struct session *s)
{
	if (s->loop && !s->in->sweep_timer)
		s->in->sweep_timer = evloop_timer(s->loop, IN_SWEEP_MS, sweep, s);
}

/* ---- API for the policy ------------------------------------------------ */

int session_in_bound(struct session *s, ino_t ino, const struct sockaddr *requested, socklen_t len,
                     uint16_t actual)
{
	struct in_state *in = in_get(s);
	struct in_bound *b;

	if (len > sizeof(b->requested))
		return -EINVAL;
	b = u64map_get(&in->bound, ino);
	if (!b) {
		b = xcalloc(1, sizeof(*b));
		u64map_put(&in->bound, ino, b);
	}
	memset(&b->requested, 0, sizeof(b->requested));
	memcpy(&b->requested, requested, len);
	b->len = len;
	b->actual = actual;
	sweep_arm(s);
	return 0;
}

bool session_in_requested(struct session *s, ino_t ino, uint16_t kernel_port,
                          struct sockaddr_storage *ret, socklen_t *ret_len)
{
	struct in_bound *b = s->in ? u64map_get(&s->in->bound, ino) : NULL;

	/* Only while the kernel still reports the port we chose: a socket
	 * can be bound once, so this holds until the inode is reused. */
	if (!b || b->actual != kernel_port)
		return false;
	if (ret) {
		memcpy(ret, &b->requested, b->len);
		*ret_len = b->len;
	}
	return true;
}

bool session_in_listening(struct session *s, ino_t ino)
{
	for (size_t i = 0; s->in && i < s->in->nsubs; i++)
		if (s->in->subs[i]->ino == ino)
			return true;
	return false;
}

bool session_in_asked_port(struct session *s, uint16_t port)
{
	for (size_t i = 0; s->in && i < s->in->nsubs; i++) {
		const struct in_sub *sub = s->in->subs[i];
		const struct in_bound *b = u64map_get(&s->in->bound, sub->ino);
		if ((b && b->actual == sa_port(&sub->local) ? sa_port(&b->requested)
		                                            : sa_port(&sub->local)) == port)
			return true;
	}
	return false;
}

bool session_in_any(struct session *s)
{
	return s->in && s->in->nsubs > 0;
}

/* Where a relay socket reaches the listener bound at self: a wildcard
 * address means loopback of the same family. */
static void connect_addr(const struct sockaddr *self, socklen_t len, struct sockaddr_storage *ret,
                         socklen_t *ret_len)
{
	memset(ret, 0, sizeof(*ret));
	memcpy(ret, self, len);
	*ret_len = len;
	if (self->sa_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ret;
		if (in->sin_addr.s_addr == htonl(INADDR_ANY))
			in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (self->sa_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;
		if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			in6->sin6_addr = in6addr_loopback;
	}
}

int64_t session_in_subscribe(struct session *s, ino_t ino, uint16_t port, int mode,
                             const struct session_in_filter *f, const struct sockaddr *listener,
                             socklen_t len, session_in_cb cb, void *data)
{
	struct in_state *in = in_get(s);
	struct in_sub *sub, *old;
	int r;

	if (!s->alive)
		return -ENOTCONN;
	if (len > sizeof(struct sockaddr_storage) || port == 0 ||
	    (mode != SESSION_IN_MIRROR && mode != SESSION_IN_STEAL) ||
	    (f && f->n > AP_MAX_FILTER_RULES))
		return -EINVAL;
	old = sub_by_port(in, port);
	if (old && old->cb)
		return -EADDRINUSE; /* another listen() of that port waits */
	if (old) {
		/* The previous listener of the port was closed, and the sweep
		 * has not noticed yet (or it still lives: the program listens
		 * twice on one pod port, and the newer socket wins). The agent
		 * handles frames in order. */
		if (old->active || old->req)
			send_unsub(s, old->port);
		sub_remove(s, old);
	}
	if (in->nsubs == IN_MAX_SUBS)
		return -ENOSPC;
	sub = xcalloc(1, sizeof(*sub));
	sub->port = port;
	sub->mode = mode == SESSION_IN_STEAL ? AP_SUB_STEAL : AP_SUB_MIRROR;
	if (f && f->n) {
		sub->filter_op =
		        f->op == SESSION_FILTER_ANY_OF ? AP_FILTER_ANY_OF : AP_FILTER_ALL_OF;
		sub->nrules = (uint8_t)f->n;
		for (size_t i = 0; i < f->n; i++) {
			sub->kind[i] = (uint8_t)f->kind[i];
			sub->pattern[i] = xstrdup(f->pattern[i]);
		}
	}
	sub->ino = ino;
	connect_addr(listener, len, &sub->local, &sub->locallen);
	sub->cb = cb;
	sub->cbdata = data;
	in->subs[in->nsubs++] = sub;
	r = send_sub(s, sub);
	if (r < 0) {
		sub_remove(s, sub);
		return r;
	}
	sub->timer = evloop_timer(s->loop, IN_SUB_TIMEOUT_MS, sub_timed_out, sub);
	sweep_arm(s);
	return sub->req;
}

void session_in_cancel(struct session *s, int64_t req)
{
	for (size_t i = 0; s->in && i < s->in->nsubs; i++) {
		struct in_sub *sub = s->in->subs[i];
		if (sub->req == (uint32_t)req) {
			/* The listen() is gone (its thread died): the answer
			 * still marks the subscription; the sweep ends it. */
			sub->cb = NULL;
			return;
		}
	}
}

bool session_in_peer(struct session *s, const struct sockaddr *kernel_peer, socklen_t len,
                     struct sockaddr_storage *ret, socklen_t *ret_len)
{
	struct sockaddr_storage k;
	struct in_peer *pe;

	if (!s->in || len > sizeof(k) || len < sizeof(sa_family_t))
		return false;
	memset(&k, 0, sizeof(k));
	memcpy(&k, kernel_peer, len);
	pe = u64map_get(&s->in->peers, addr_key(&k));
	if (!pe || pe->locallen != len || memcmp(&pe->local, &k, len) != 0)
		return false;
	memcpy(ret, &pe->peer, pe->peerlen);
	*ret_len = pe->peerlen;
	if (k.ss_family == AF_INET6 && pe->peer.ss_family == AF_INET) {
		/* An IPv6 listener sees IPv4 peers v4-mapped. */
		struct sockaddr_in v4 = *(struct sockaddr_in *)&pe->peer;
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ret;
		memset(ret, 0, sizeof(*ret));
		v6->sin6_family = AF_INET6;
		v6->sin6_port = v4.sin_port;
		v6->sin6_addr.s6_addr[10] = v6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&v6->sin6_addr.s6_addr[12], &v4.sin_addr, 4);
		*ret_len = sizeof(*v6);
	}
	return true;
}

/* ---- frames from the agent (session.c dispatch) ------------------------ */

void incoming_on_resp(struct session *s, const struct ap_msg *m)
{
	for (size_t i = 0; s->in && i < s->in->nsubs; i++) {
		struct in_sub *sub = s->in->subs[i];
		if (sub->req != m->id)
			continue;
		sub->req = 0;
		if (sub->timer) {
			evloop_timer_cancel(s->loop, sub->timer);
			sub->timer = 0;
		}
		if (m->u.port_resp.err) {
			session_in_cb cb = sub->cb;
			void *cbdata = sub->cbdata;
			/* Gone before the callback, which may subscribe again. */
			sub_remove(s, sub);
			if (cb)
				cb(cbdata, m->u.port_resp.err);
			return;
		}
		sub->active = true;
		sub_answer(sub, 0);
		return;
	}
	/* The answer to an unsubscribe, or to a request of a link that
	 * dropped: nothing waits for it. */
}

static void refuse_stream(struct session *s, uint32_t id, int err)
{
	struct ap_msg m = {.type = AP_CLOSE, .id = id};

	m.u.close.how = AP_CLOSE_RESET;
	m.u.close.err = err;
	session_send(s, &m);
}

/* How many more connections the listener at sub->local takes now, from
 * sock_diag: for a listening socket, rqueue is its accept queue and
 * wqueue its backlog. A lookup of the address as a destination finds the
 * established socket of that exact pair or else the listener; port 0 as
 * the source matches no connection. -1: unknown (nobody waits then). */
static int listener_room(struct in_state *in, const struct in_sub *sub)
{
	const struct sockaddr_storage *a = &sub->local;
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
	        .nlh = {.nlmsg_len = sizeof(req),
	                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
	                .nlmsg_flags = NLM_F_REQUEST},
	        .r = {.sdiag_family = (uint8_t)a->ss_family,
	              .sdiag_protocol = IPPROTO_TCP,
	              .idiag_states = 1u << TCP_LISTEN,
	              .id = {.idiag_sport = htons(sa_port(a)),
	                     .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}},
	};
	union {
		struct nlmsghdr nlh;
		uint8_t buf[512];
	} ans;

	if (a->ss_family == AF_INET) {
		memcpy(req.r.id.idiag_src, &((const struct sockaddr_in *)a)->sin_addr, 4);
		memcpy(req.r.id.idiag_dst, &((const struct sockaddr_in *)a)->sin_addr, 4);
	} else {
		memcpy(req.r.id.idiag_src, &((const struct sockaddr_in6 *)a)->sin6_addr, 16);
		memcpy(req.r.id.idiag_dst, &((const struct sockaddr_in6 *)a)->sin6_addr, 16);
	}
	if (in->diag_fd < 0)
		in->diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (in->diag_fd < 0 || send(in->diag_fd, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
		return -1;
	/* The kernel answers within send(): nothing to wait for. */
	ssize_t n = recv(in->diag_fd, &ans, sizeof(ans), MSG_DONTWAIT);
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct inet_diag_msg)) ||
	    ans.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return -1;
	const struct inet_diag_msg *d = NLMSG_DATA(&ans.nlh);
	if (d->idiag_state != TCP_LISTEN)
		return -1;
	/* The kernel drops only above the backlog; keep one slot spare. */
	return d->idiag_rqueue < d->idiag_wqueue ? (int)(d->idiag_wqueue - d->idiag_rqueue) : 0;
}

/* Connect a waiting stream's local end to the program's listener and
 * record its real peer. Returns false if the stream was refused (and
 * freed). */
static bool in_connect(struct session *s, struct in_sub *sub, struct stream *st)
{
	struct sockaddr_storage self;
	socklen_t selflen = sizeof(self);
	int fd = socket(sub->local.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	/* Loopback with room in the queue: this completes at once or fails
	 * with ECONNREFUSED, and the relay sees either as an event of the
	 * socket. */
	if (fd < 0 ||
	    (connect(fd, (struct sockaddr *)&sub->local, sub->locallen) < 0 &&
	     errno != EINPROGRESS) ||
	    getsockname(fd, (struct sockaddr *)&self, &selflen) < 0) {
		send_close(s, st, AP_CLOSE_RESET, errno);
		if (fd >= 0)
			close(fd);
		stream_free(s, st);
		return false;
	}
	st->fd = fd;

	struct in_peer *pe = xcalloc(1, sizeof(*pe));
	memcpy(&pe->local, &self, selflen);
	pe->locallen = selflen;
	memcpy(&pe->peer, &st->dst, st->dstlen);
	pe->peerlen = st->dstlen;
	st->in_key = addr_key(&self);
	free(u64map_get(&s->in->peers, st->in_key));
	u64map_put(&s->in->peers, st->in_key, pe);
	/* What arrived while it waited (and a FIN) goes out now. */
	if (!stream_flush(s, st))
		return false;
	stream_update(s, st);
	return true;
}

static void wait_tick(struct evloop *l, void *data);

static void wait_arm(struct session *s)
{
	if (s->loop && !s->in->wait_timer)
		s->in->wait_timer = evloop_timer(s->loop, IN_WAIT_MS, wait_tick, s);
}

/* Connect as many of sub's waiting streams as its queue takes. */
static void wait_drain(struct session *s, struct in_sub *sub)
{
	int room = sub->nwait ? listener_room(s->in, sub) : 0;
	size_t done = 0;

	if (room < 0)
		room = (int)sub->nwait; /* unknown: as before, connect all */
	while (done < sub->nwait && room > 0) {
		struct stream *st = u64map_get(&s->streams, sub->wait[done++]);
		/* An id from before a reconnect may name a new stream. */
		if (st && st->fd < 0 && in_connect(s, sub, st))
			room--;
	}
	memmove(sub->wait, sub->wait + done, (sub->nwait - done) * sizeof(*sub->wait));
	sub->nwait -= done;
}

static void wait_tick(struct evloop *l, void *data)
{
	struct session *s = data;
	bool more = false;

	s->in->wait_timer = 0;
	if (!s->alive)
		return;
	for (size_t i = 0; i < s->in->nsubs; i++) {
		wait_drain(s, s->in->subs[i]);
		more |= s->in->subs[i]->nwait > 0;
	}
	if (more)
		wait_arm(s);
}

void incoming_on_accept(struct session *s, const struct ap_msg *m)
{
	struct in_sub *sub = sub_by_port(s->in, m->u.accept.port);
	struct sockaddr_storage peer;
	struct stream *st;
	int r;

	if (!(m->id & AP_STREAM_AGENT_BIT) || u64map_get(&s->streams, m->id)) {
		session_lost(s, "the agent opened stream %u, which is not free", m->id);
		return;
	}
	r = ap_addr_to_sockaddr(&m->u.accept.peer, (struct sockaddr *)&peer, sizeof(peer));
	if (!sub || r < 0 || s->streams.n >= MAX_STREAMS) {
		refuse_stream(s, m->id, sub ? EMFILE : ECONNREFUSED);
		return;
	}
	st = xcalloc(1, sizeof(*st));
	st->s = s;
	st->id = m->id;
	st->type = SOCK_STREAM;
	st->state = ST_OPEN;
	st->fd = -1;
	st->events = ~0u;
	st->send_credit =
	        m->u.accept.window < AP_DEFAULT_WINDOW ? m->u.accept.window : AP_DEFAULT_WINDOW;
	/* Mirror: the pod answered the peer already; the program's reply
	 * goes nowhere. */
	st->discard_up = m->u.accept.mode == AP_SUB_MIRROR;
	memcpy(&st->dst, &peer, (size_t)r);
	st->dstlen = (socklen_t)r;
	u64map_put(&s->streams, st->id, st);
	s->stats.streams_opened++;

	if (sub->nwait == sub->wait_cap) {
		sub->wait_cap = sub->wait_cap ? sub->wait_cap * 2 : 16;
		sub->wait = xrealloc(sub->wait, sub->wait_cap * sizeof(*sub->wait));
	}
	sub->wait[sub->nwait++] = st->id;
	wait_drain(s, sub);
	if (sub->nwait) {
		s->stats.in_waited++;
		wait_arm(s);
	}
}

void incoming_forget_stream(struct session *s, struct stream *st)
{
	if (s->in && st->in_key)
		free(u64map_del(&s->in->peers, st->in_key));
	st->in_key = 0;
}

int incoming_resend(struct session *s)
{
	/* The agent's new client has no subscriptions: send them all again.
	 * A parked listen() keeps waiting for the answer to the new
	 * request. */
	for (size_t i = 0; s->in && i < s->in->nsubs; i++) {
		int r = send_sub(s, s->in->subs[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

void incoming_lost(struct session *s)
{
	for (size_t i = 0; s->in && i < s->in->nsubs; i++)
		sub_answer(s->in->subs[i], ENETUNREACH);
}

void incoming_free(struct session *s)
{
	struct in_state *in = s->in;
	uint64_t key;
	void *v;

	if (!in)
		return;
	if (in->sweep_timer && s->loop)
		evloop_timer_cancel(s->loop, in->sweep_timer);
	if (in->wait_timer && s->loop)
		evloop_timer_cancel(s->loop, in->wait_timer);
	if (in->diag_fd >= 0)
		close(in->diag_fd);
	for (size_t i = 0; i < in->nsubs; i++)
		sub_free(s, in->subs[i]);
	for (size_t i = 0; u64map_next(&in->bound, &i, &key, &v);)
		free(v);
	u64map_free(&in->bound);
	for (size_t i = 0; u64map_next(&in->peers, &i, &key, &v);)
		free(v);
	u64map_free(&in->peers);
	free(in);
	s->in = NULL;
}
