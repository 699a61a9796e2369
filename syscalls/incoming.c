/* Incoming traffic: bind, listen, getsockname and accept of TCP listeners
 * whose pod port is mirrored or stolen (feature.network.incoming).
 *
 * bind() stays local. The supervisor binds the program's socket itself
 * (a pidfd_getfd duplicate: the same socket), so a busy port (or one the
 * user may not bind, such as 80) can be replaced by a free one in the same
 * stop; getsockname() then reports the port the program asked for.
 * listen() is performed by the supervisor too, then the pod port
 * (port_mapping applied) is subscribed at the agent while the thread stays
 * parked; it returns once the agent answered. The session connects each
 * connection the agent hands over to the listener, and accept() and
 * getpeername() report the connection's real peer in the pod's network.
 * Costs: bind, listen, getsockname one stop each; accept/accept4 with an
 * address buffer an entry and an exit stop (without one: not trapped). */
#include "syscalls/internal.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static bool port_in(uint16_t port, const uint16_t *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == port)
			return true;
	return false;
}

/* port_mapping: the program binds `local`, the pod port is `remote`. */
static uint16_t pod_port(const struct policy_incoming *in, uint16_t local)
{
	for (size_t i = 0; i < in->n_port_mapping; i++)
		if (in->port_mapping[i][0] == local)
			return in->port_mapping[i][1];
	return local;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a))
		return a->s6_addr[12] == 127;
	return IN6_IS_ADDR_LOOPBACK(a);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static int sock_family(int fd)
{
	int d = 0;
	socklen_t l = sizeof(d);

	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &d, &l) < 0 ? -errno : d;
}

static int do_bind(int fd, const struct sockaddr_storage *a, socklen_t len)
{
	return bind(fd, (const struct sockaddr *)a, len) < 0 ? -errno : 0;
}

/* ---- bind --------------------------------------------------------------- */

void net_bind(struct sc_event *ev, struct policy *p)
{
	const struct policy_incoming *in = &p->cfg.incoming;
	struct sockaddr_storage want, at;
	socklen_t len;
	uint16_t port, actual = 0;
	const char *why = NULL;
	int r;

	if (!net_read_sockaddr(ev, sc_arg(ev, 1), sc_arg(ev, 2), &want, &len)) {
		sc_continue(ev);
		return;
	}
	port = (uint16_t)net_port_of(&want);
	/* Port 0 and the ports the config leaves alone bind as they would
	 * natively, and are never subscribed (mirrord-behaviour §5.1). */
	if (port == 0 || port_in(port, in->ignore_ports, in->n_ignore_ports) ||
	    (in->n_ports && !port_in(pod_port(in, port), in->ports, in->n_ports)) ||
	    (in->ignore_localhost && is_loopback(&want))) {
		sc_continue(ev);
		return;
	}
	_cleanup_close_ int fd = sc_dup_fd(ev, (int)sc_arg(ev, 0));
	if (fd < 0 || net_sock_type(fd) != SOCK_STREAM || sock_family(fd) != want.ss_family) {
		/* UDP, or a family mismatch the kernel refuses itself. */
		sc_continue(ev);
		return;
	}
	at = want;
	for (size_t i = 0; i < in->n_listen_ports; i++) {
		if (in->listen_ports[i][0] == port) {
			/* listen_ports decides; a busy port is the program's
			 * error, as mirrord does. */
			actual = in->listen_ports[i][1];
			why = "(listen_ports)";
		}
	}
	if (actual) {
		set_port(&at, actual);
		r = do_bind(fd, &at, len);
	} else {
		r = do_bind(fd, &at, len);
		if (r == -EADDRINUSE || r == -EACCES) {
			/* Busy here (often by the same service, run natively) or
			 * privileged: any free port of the same address serves,
			 * since the pod's peers reach it through the agent. */
			why = r == -EADDRINUSE ? "(busy here: remapped)" : "(privileged: remapped)";
			set_port(&at, 0);
			r = do_bind(fd, &at, len);
		}
	}
	if (r == 0) {
		socklen_t al = sizeof(at);
		if (getsockname(fd, (struct sockaddr *)&at, &al) == 0)
			actual = (uint16_t)net_port_of(&at);
		if (actual != port)
			session_in_bound(p->session, net_fd_ino(fd), (struct sockaddr *)&want, len,
			                 actual);
	}
	if (sc_tracing(ev)) {
		char a[SOCKADDR_STR_MAX];
		sockaddr_str(&want, len, a, sizeof(a));
		if (actual && actual != port)
			sc_note(ev, SC_EMULATED, "bind(%d, %s) on local port %u %s",
			        (int)sc_arg(ev, 0), a, actual, why ? why : "");
		else
			sc_note(ev, SC_LOCAL, "bind(%d, %s)", (int)sc_arg(ev, 0), a);
	}
	sc_skip(ev, r);
}

/* ---- getsockname -------------------------------------------------------- */

void net_getsockname(struct sc_event *ev, struct policy *p)
{
	struct sockaddr_storage self, asked;
	socklen_t sl = sizeof(self), al;
	_cleanup_close_ int fd = sc_dup_fd(ev, (int)sc_arg(ev, 0));

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&self, &sl) < 0 ||
	    (self.ss_family != AF_INET && self.ss_family != AF_INET6) ||
	    !session_in_requested(p->session, net_fd_ino(fd), (uint16_t)net_port_of(&self), &asked,
	                          &al)) {
		sc_continue(ev);
		return;
	}
	/* The kernel's address (it may differ from the asked one only by
	 * what the kernel canonicalised), with the port that was asked. */
	set_port(&self, (uint16_t)net_port_of(&asked));
	int r = net_put_sockaddr(ev, sc_arg(ev, 1), sc_arg(ev, 2), &self, sl);
	net_note_addr(ev, SC_EMULATED, "getsockname", &self, sl, "(the port asked for)");
	sc_skip(ev, r);
}

/* ---- listen ------------------------------------------------------------- */

struct listen_call {
	struct policy *p;
	struct sc_event *ev;
	int64_t req;
	uint16_t local, pod;
};

static void listen_call_free(void *data)
{
	struct listen_call *c = data;

	if (c->req > 0)
		session_in_cancel(c->p->session, c->req);
	free(c);
}

static void listen_done(void *data, int err)
{
	struct listen_call *c = data;
	struct policy *p = c->p;
	struct sc_event *ev = c->ev;
	const char *what = p->cfg.incoming.mode == SESSION_IN_STEAL ? "steal" : "mirror";

	c->req = 0;
	if (err && !p->in_warned && p->cfg.notice) {
		char msg[256];
		/* The local listen succeeded: the program keeps working,
		 * without the pod's traffic. */
		p->in_warned = true;
		snprintf(msg, sizeof(msg),
		         "port %u listens on this machine only: the agent cannot %s pod port "
		         "%u: %s",
		         c->local, what, c->pod, strerror(err));
		p->cfg.notice(p->cfg.notice_data, msg);
	}
	if (sc_tracing(ev))
		sc_note(ev, SC_REMOTE, "listen(%d) port %u: %s pod port %u%s%s", (int)sc_arg(ev, 0),
		        c->local, what, c->pod, err ? ": " : "", err ? strerror(err) : "");
	sc_skip(ev, 0);
}

/* Incoming traffic is not served in this run: the socket listens locally,
 * as it would without mirrord-trace, and the user hears about it once. */
static void listen_notice(struct sc_event *ev, struct policy *p)
{
	struct sockaddr_storage self;
	socklen_t sl = sizeof(self);
	char msg[256];
	int fd;

	if (p->listen_noticed || !p->cfg.notice) {
		sc_continue(ev);
		return;
	}
	fd = sc_dup_fd(ev, (int)sc_arg(ev, 0));
	if (fd < 0) {
		sc_continue(ev);
		return;
	}
	if (getsockname(fd, (struct sockaddr *)&self, &sl) == 0 &&
	    (self.ss_family == AF_INET || self.ss_family == AF_INET6) &&
	    net_sock_type(fd) == SOCK_STREAM) {
		p->listen_noticed = true;
		snprintf(msg, sizeof(msg), "port %u listens on this machine only: %s",
		         net_port_of(&self),
		         p->cfg.incoming_why ? p->cfg.incoming_why
		                             : "incoming traffic is not served");
		p->cfg.notice(p->cfg.notice_data, msg);
		if (sc_tracing(ev))
			sc_note(ev, SC_LOCAL, "listen(%d) port %u (incoming not served)",
			        (int)sc_arg(ev, 0), net_port_of(&self));
	}
	close(fd);
	sc_continue(ev);
}

void net_listen(struct sc_event *ev, struct policy *p)
{
	const struct policy_incoming *in = &p->cfg.incoming;
	struct sockaddr_storage self, asked;
	socklen_t sl = sizeof(self), al;
	uint16_t local, pod;
	ino_t ino;

	/* A loopback destination found not listening a moment ago may be
	 * this listener: net.c asks /proc/net again (listening_cached). */
	u64map_free(&p->listening);
	if (in->mode == SESSION_IN_OFF) {
		listen_notice(ev, p);
		return;
	}
	_cleanup_close_ int fd = sc_dup_fd(ev, (int)sc_arg(ev, 0));
	if (fd < 0 || net_sock_type(fd) != SOCK_STREAM ||
	    getsockname(fd, (struct sockaddr *)&self, &sl) < 0 ||
	    (self.ss_family != AF_INET && self.ss_family != AF_INET6)) {
		sc_continue(ev);
		return;
	}
	ino = net_fd_ino(fd);
	local = (uint16_t)net_port_of(&self);
	if (session_in_requested(p->session, ino, local, &asked, &al))
		local = (uint16_t)net_port_of(&asked);
	/* Subscribe what bind() would have: not port 0 (an ephemeral port,
	 * also what an unbound socket gets from listen), not the ignored
	 * ports, not loopback with ignore_localhost; and a socket once. */
	if (local == 0 || net_port_of(&self) == 0 || session_in_listening(p->session, ino) ||
	    port_in(local, in->ignore_ports, in->n_ignore_ports) ||
	    (in->n_ports && !port_in(pod_port(in, local), in->ports, in->n_ports)) ||
	    (in->ignore_localhost && is_loopback(&self))) {
		sc_continue(ev);
		return;
	}
	pod = pod_port(in, local);
	/* The kernel's listen first, so the connections the agent hands
	 * over find a listener; the program's backlog, as it asked. */
	if (listen(fd, (int)sc_arg(ev, 1)) < 0) {
		sc_skip(ev, -errno);
		return;
	}
	const struct session_in_filter *f = NULL;
	if (in->filter.n &&
	    (!in->n_filter_ports || port_in(pod, in->filter_ports, in->n_filter_ports)))
		f = &in->filter;
	struct listen_call *c = xcalloc(1, sizeof(*c));
	c->p = p;
	c->ev = ev;
	c->local = local;
	c->pod = pod;
	sc_set_state(ev, c, listen_call_free);
	c->req = session_in_subscribe(p->session, ino, pod, in->mode, f, (struct sockaddr *)&self,
	                              sl, listen_done, c);
	if (c->req < 0) {
		int e = (int)-c->req;
		c->req = 0;
		listen_done(c, e);
		return;
	}
	sc_park(ev);
}

/* ---- accept / accept4 --------------------------------------------------- */

struct accept_call {
	struct policy *p;
	uint64_t addr, lenptr;
	int32_t cap; /* the program's buffer size, read at entry */
};

/* At exit: the kernel wrote the peer of the accepted connection. If that
 * is the session's socket of an incoming connection, put the real peer
 * there instead, with the kernel's semantics (truncate to the buffer the
 * program gave, store the full length). */
static void accept_fix(struct sc_event *ev)
{
	struct accept_call *c = sc_state(ev);
	struct sockaddr_storage seen, real;
	socklen_t reallen;
	int32_t full;

	if (sc_result(ev) < 0 || c->cap <= 0)
		return;
	if (sc_read_mem(ev, c->lenptr, &full, sizeof(full)) < 0 || full <= 0 || full > c->cap ||
	    (size_t)full > sizeof(seen))
		return; /* truncated: not enough to tell whose it is */
	memset(&seen, 0, sizeof(seen));
	if (sc_read_mem(ev, c->addr, &seen, (size_t)full) < 0 ||
	    !session_in_peer(c->p->session, (struct sockaddr *)&seen, (socklen_t)full, &real,
	                     &reallen))
		return;
	size_t n = (size_t)c->cap < reallen ? (size_t)c->cap : reallen;
	sc_write_mem(ev, c->addr, &real, n);
	int32_t rl = (int32_t)reallen;
	sc_write_mem(ev, c->lenptr, &rl, sizeof(rl));
	net_note_addr(ev, SC_REMOTE, policy_syscall_name(sc_nr(ev)), &real, reallen,
	              "(pod-side peer)");
}

void net_accept(struct sc_event *ev, struct policy *p)
{
	struct accept_call c = {.p = p, .addr = sc_arg(ev, 1), .lenptr = sc_arg(ev, 2)};

	/* Only while something is subscribed may a connection be ours. */
	if (!session_in_any(p->session) || !c.addr || !c.lenptr ||
	    sc_read_mem(ev, c.lenptr, &c.cap, sizeof(c.cap)) < 0) {
		sc_continue(ev);
		return;
	}
	struct accept_call *pc = xmalloc(sizeof(*pc));
	*pc = c;
	sc_set_state(ev, pc, free);
	sc_continue_exit(ev, accept_fix);
}
