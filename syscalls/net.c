/* Network syscalls: outgoing TCP and UDP through the agent.
 *
 * connect(): the agent connects first, from the target's network
 * namespace, while the calling thread stays parked; a refusal there becomes
 * the errno here. On success the program's own socket (a pidfd_getfd
 * duplicate) is connected to the session's relay and the syscall is
 * skipped with what that connect returned (ptrace-notes §6.3): one stop, no
 * tracee memory written. getpeername() then reports the pod-side address.
 * UDP datagrams sent with an explicit address are sent by the supervisor
 * from the program's socket to the flow's relay; replies get their source
 * address rewritten back at recvfrom()/recvmsg() exit. */
#include "syscalls/internal.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* The largest UDP payload; also bounds how much tracee memory one sendto
 * makes us copy. */
#define UDP_MAX 65507
#define IOV_MAX_COUNT 1024

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "an unknown error";
}

/* Read the sockaddr argument as the kernel would and return it in a
 * canonical form: only the fields the kernel uses (an IPv4 sin_zero, an
 * IPv6 flow label, a scope id on a global address are dropped), so what
 * getpeername() later reports is what the kernel would have stored.
 * False when the kernel should judge the call itself (bad pointer, bad
 * length, another family): it then fails exactly as it would natively. */
bool net_read_sockaddr(struct sc_event *ev, uint64_t ptr, uint64_t lenarg,
                       struct sockaddr_storage *ret, socklen_t *ret_len)
{
	/* socklen_t is 32 bits: whatever sits in the upper half of the
	 * register is not part of the value (the kernel ignores it too). */
	uint32_t len = (uint32_t)lenarg;
	struct sockaddr_storage raw;

	if (!ptr || len < sizeof(sa_family_t) || len > sizeof(raw))
		return false;
	memset(&raw, 0, sizeof(raw));
	if (sc_read_mem(ev, ptr, &raw, len) < 0)
		return false;
	memset(ret, 0, sizeof(*ret));
	if (raw.ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&raw;
		struct sockaddr_in *out = (struct sockaddr_in *)ret;
		out->sin_family = AF_INET;
		out->sin_port = in->sin_port;
		out->sin_addr = in->sin_addr;
		*ret_len = sizeof(*out);
		return true;
	}
	/* The kernel takes 24 bytes (SIN6_LEN_RFC2133, no scope id) too. */
	if (raw.ss_family == AF_INET6 && len >= 24) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&raw;
		struct sockaddr_in6 *out = (struct sockaddr_in6 *)ret;
		out->sin6_family = AF_INET6;
		out->sin6_port = in6->sin6_port;
		out->sin6_addr = in6->sin6_addr;
		if (len >= sizeof(*in6) && (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) ||
		                            IN6_IS_ADDR_MC_LINKLOCAL(&in6->sin6_addr)))
			out->sin6_scope_id = in6->sin6_scope_id;
		*ret_len = sizeof(*out);
		return true;
	}
	return false;
}

/* The family a socket was created with. */
static int sock_domain(int fd)
{
	int d = 0;
	socklen_t l = sizeof(d);

	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &d, &l) < 0 ? -errno : d;
}

/* Check the destination against the socket's family as the kernel does.
 * An IPv4 address on an IPv6 socket is connected as ::ffff:a.b.c.d (the
 * kernel does that for dual-stack sockets); everything else that does not
 * match is left to the kernel, which refuses it. */
static bool family_fits(int fd, int type, uint32_t rawlen, struct sockaddr_storage *dst,
                        socklen_t *dstlen)
{
	int domain = sock_domain(fd), v6only = 0;
	socklen_t l = sizeof(v6only);

	if (domain == dst->ss_family)
		return true;
	if (domain != AF_INET6 || dst->ss_family != AF_INET)
		return false; /* e.g. IPv6 address on an IPv4 socket: EAFNOSUPPORT */
	if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l) == 0 && v6only)
		return false;
	/* TCP checks the IPv6 length first (EINVAL below 24 bytes). */
	if (type == SOCK_STREAM && rawlen < 24)
		return false;
	struct sockaddr_in in = *(struct sockaddr_in *)dst;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)dst;
	memset(dst, 0, sizeof(*dst));
	in6->sin6_family = AF_INET6;
	in6->sin6_port = in.sin_port;
	in6->sin6_addr.s6_addr[10] = 0xff;
	in6->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&in6->sin6_addr.s6_addr[12], &in.sin_addr, 4);
	*dstlen = sizeof(*in6);
	return true;
}

unsigned net_port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static bool v4_local(uint32_t a)
{
	a = ntohl(a);
	return (a >> 24) == 127 || a == 0;
}

/* Loopback and unspecified addresses stay on this machine. */
static bool is_local(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return v4_local(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
	const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a))
		return true;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		uint32_t v4;
		memcpy(&v4, &a->s6_addr[12], 4);
		return v4_local(v4);
	}
	return false;
}

/* The agent gets v4-mapped destinations as plain IPv4. */
static socklen_t agent_dst(const struct sockaddr_storage *ss, socklen_t len,
                           struct sockaddr_storage *ret)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		struct sockaddr_in *in = (struct sockaddr_in *)ret;
		memset(ret, 0, sizeof(*ret));
		in->sin_family = AF_INET;
		in->sin_port = in6->sin6_port;
		memcpy(&in->sin_addr, &in6->sin6_addr.s6_addr[12], 4);
		return sizeof(*in);
	}
	memcpy(ret, ss, len);
	return len;
}

/* ---- local or remote ---------------------------------------------------- */

/* One /proc/net/{tcp,udp}[6] line's local address and port, and its state:
 * "  0: 0100007F:0035 00000000:0000 0A ..." (each 32-bit word of the
 * address as the kernel prints it, in host order). */
static bool proc_net_line(const char *line, bool v6, uint32_t addr[4], unsigned *port,
                          unsigned *state)
{
	const char *p = strchr(line, ':');
	unsigned nwords = v6 ? 4 : 1;
	char word[9];

	if (!p)
		return false;
	p += strspn(p + 1, " ") + 1;
	for (unsigned i = 0; i < nwords; i++, p += 8) {
		if (strnlen(p, 8) < 8)
			return false;
		memcpy(word, p, 8);
		word[8] = '\0';
		if (strspn(word, "0123456789ABCDEFabcdef") != 8)
			return false;
		addr[i] = (uint32_t)strtoul(word, NULL, 16);
	}
	return sscanf(p, ":%x %*x:%*x %x", port, state) == 2;
}

/* Whether a socket of this type listens (TCP) or is bound (UDP) in this
 * network namespace on dst's port, at dst's address or a wildcard. The
 * supervisor shares the program's network namespace, so its /proc/net is
 * the program's. Only asked for loopback destinations. */
static bool listening_here(int type, const struct sockaddr_storage *dst)
{
	static const char *const files[2][2] = {{"/proc/net/tcp", "/proc/net/tcp6"},
	                                        {"/proc/net/udp", "/proc/net/udp6"}};
	const unsigned want_state = type == SOCK_STREAM ? 0x0a /* LISTEN */ : 0x07 /* bound */;
	unsigned dport = net_port_of(dst);
	uint32_t d[4] = {0}, mapped[4] = {0, 0, htonl(0xffff), 0};
	bool d6 = dst->ss_family == AF_INET6, any;
	char line[512];

	if (d6)
		memcpy(d, &((const struct sockaddr_in6 *)dst)->sin6_addr, 16);
	else
		d[0] = mapped[3] = ((const struct sockaddr_in *)dst)->sin_addr.s_addr;
	any = !d[0] && !d[1] && !d[2] && !d[3]; /* 0.0.0.0 or [::]: this host */
	for (int v6 = 0; v6 < 2; v6++) {
		FILE *f = fopen(files[type == SOCK_DGRAM][v6], "re");
		if (!f)
			continue;
		bool found = false;
		while (!found && fgets(line, sizeof(line), f)) {
			uint32_t a[4] = {0};
			unsigned port, state;
			if (!proc_net_line(line, v6, a, &port, &state) || port != dport ||
			    state != want_state)
				continue;
			bool wild = !a[0] && !a[1] && !a[2] && !a[3];
			/* An IPv4 destination reaches a dual-stack [::] listener
			 * too, and one bound to its v4-mapped form. */
			found = any || wild || (v6 == d6 && memcmp(a, d, v6 ? 16 : 4) == 0) ||
			        (v6 && !d6 && memcmp(a, mapped, 16) == 0);
		}
		fclose(f);
		if (found)
			return true;
	}
	return false;
}

/* listening_here() parses /proc/net: a program sending UDP datagrams to a
 * local agent (statsd) would pay that on every sendto. Its answers are kept
 * for a second per destination; a listener that appears or goes meanwhile
 * is seen a second late. */
#define LISTENING_TTL_NS 1000000000ull
#define LISTENING_MAX 1024

static bool listening_cached(struct policy *p, int type, const struct sockaddr_storage *dst)
{
	const uint8_t *b = (const uint8_t *)dst;
	size_t len = dst->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                        : sizeof(struct sockaddr_in);
	uint64_t key = 0xcbf29ce484222325ull ^ (uint64_t)type, now = now_ns();

	for (size_t i = 0; i < len; i++) /* FNV-1a; the policy zeroed the padding */
		key = (key ^ b[i]) * 0x100000001b3ull;
	uintptr_t v = (uintptr_t)u64map_get(&p->listening, key);
	if (v && now - (v >> 1) < LISTENING_TTL_NS)
		return v & 1;
	if (p->listening.n >= LISTENING_MAX)
		u64map_free(&p->listening);
	bool yes = listening_here(type, dst);
	/* a time and a bit in a non-NULL pointer-sized value */
	u64map_put(&p->listening, key, (void *)(uintptr_t)(((now | 1) << 1) | yes));
	return yes;
}

/* Whether a connection of this type to dst goes through the pod, and why
 * (for --trace): feature.network.outgoing (mirrord-behaviour.md). Loopback
 * stays local when ignore_localhost is set, and otherwise when something
 * listens here on that port (mirrord: when the program itself does; any
 * local listener counts here, so a local service keeps working); then the
 * filter decides. The supervisor's own relays are always local. Only
 * trapped syscalls get here: the decision adds no stop. */
static bool goes_remote(struct policy *p, int type, const struct sockaddr_storage *dst,
                        socklen_t len, const char **why)
{
	struct sockaddr_storage a;
	socklen_t alen = agent_dst(dst, len, &a);

	*why = NULL;
	if (is_local(dst)) {
		if (session_is_own_addr(p->session, (struct sockaddr *)&a, alen)) {
			*why = "(mirrord-trace's own relay)";
			return false;
		}
		if (p->cfg.ignore_localhost) {
			*why = "loopback (ignore_localhost)";
			return false;
		}
		/* A port the program's own listener asked for is never the
		 * pod's loopback, also when bind() was remapped
		 * (syscalls/incoming.c). The connect is not redirected to the
		 * remapped port (mirrord does that): it is the kernel's. */
		if (type == SOCK_STREAM &&
		    session_in_asked_port(p->session, (uint16_t)net_port_of(&a))) {
			*why = "loopback, the program listens here";
			return false;
		}
		if (listening_cached(p, type, &a)) {
			*why = "loopback, something listens here";
			return false;
		}
		*why = "to the pod's loopback (nothing listens here)";
	}
	const struct net_filter *f = p->cfg.out_filter;
	if (f) {
		bool m = net_filter_match(f, type, (struct sockaddr *)&a);
		if (m != f->remote) {
			*why = m ? "(outgoing.filter.local)" : "(not in outgoing.filter.remote)";
			return false;
		}
	}
	return true;
}

int net_sock_type(int fd)
{
	int type = 0;
	socklen_t l = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0)
		return -errno;
	return type;
}

ino_t net_fd_ino(int fd)
{
	struct stat sb;

	return fstat(fd, &sb) == 0 ? sb.st_ino : 0;
}

/* The inode of the socket the program passed as argument 0, or 0 if it is
 * not an fd we can duplicate (the kernel will report EBADF itself). */
static ino_t arg_socket_ino(struct sc_event *ev)
{
	int fd = sc_dup_fd(ev, (int)sc_arg(ev, 0));
	ino_t ino;

	if (fd < 0)
		return 0;
	ino = net_fd_ino(fd);
	close(fd);
	return ino;
}

/* Per-call state of a parked connect. */
struct net_call {
	struct policy *p;
	struct sc_event *ev;
	int fd; /* supervisor duplicate of the program's socket */
	int64_t req;
	struct sockaddr_storage dst;
	socklen_t dstlen;
};

static void net_call_free(void *data)
{
	struct net_call *c = data;

	/* Runs when the call completes, and when the thread died while
	 * parked: then the agent's answer must not reach a freed event. */
	if (c->req > 0)
		session_cancel(c->p->session, c->req);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static struct net_call *net_call_new(struct sc_event *ev, struct policy *p, int fd)
{
	struct net_call *c = xcalloc(1, sizeof(*c));

	c->p = p;
	c->ev = ev;
	c->fd = fd;
	sc_set_state(ev, c, net_call_free);
	return c;
}

void net_note_addr(struct sc_event *ev, enum sc_decision d, const char *what,
                   const struct sockaddr_storage *ss, socklen_t len, const char *why)
{
	char a[SOCKADDR_STR_MAX];

	if (!sc_tracing(ev))
		return;
	sockaddr_str(ss, len, a, sizeof(a));
	sc_note(ev, d, "%s(%d, %s)%s%s", what, (int)sc_arg(ev, 0), a, why ? " " : "",
	        why ? why : "");
}

/* A remote note, with why it went remote when that is not the default
 * (a loopback destination sent to the pod). */
static void note_remote(struct sc_event *ev, const char *what, const struct sockaddr_storage *ss,
                        socklen_t len, const char *how, const char *why)
{
	char buf[128];

	if (!sc_tracing(ev))
		return;
	snprintf(buf, sizeof(buf), "%s%s%s", how, why ? ", " : "", why ? why : "");
	net_note_addr(ev, SC_REMOTE, what, ss, len, buf);
}

/* Trace note of a connect the kernel answers alone: another family (a
 * unix socket: nscd, D-Bus), or an address the kernel will reject. */
static void note_not_ip(struct sc_event *ev)
{
	sa_family_t fam;
	int fd = (int)sc_arg(ev, 0);

	if ((uint32_t)sc_arg(ev, 2) < sizeof(fam) ||
	    sc_read_mem(ev, sc_arg(ev, 1), &fam, sizeof(fam)) < 0 || fam == AF_INET ||
	    fam == AF_INET6)
		sc_note(ev, SC_LOCAL,
		        "connect(%d, <bad address or length>) for the kernel to judge", fd);
	else if (fam == AF_UNIX)
		sc_note(ev, SC_LOCAL, "connect(%d, AF_UNIX) not IP", fd);
	else
		sc_note(ev, SC_LOCAL, "connect(%d, family %u) not IP", fd, (unsigned)fam);
}

/* ---- connect ---------------------------------------------------------- */

static void connect_done(void *data, int err, uint32_t stream)
{
	struct net_call *c = data;
	struct sc_event *ev = c->ev;
	long r;

	c->req = 0;
	if (err) {
		if (sc_tracing(ev)) {
			char note[sizeof(ev->note)];
			snprintf(note, sizeof(note), "%s", ev->note);
			sc_note(ev, SC_REMOTE, "%s (the pod answered %s)", note, errname(err));
		}
		/* A refusal is replayed on the program's own socket, so a
		 * non-blocking caller sees EINPROGRESS and then SO_ERROR. */
		if (err == ECONNREFUSED && net_sock_type(c->fd) == SOCK_STREAM)
			sc_skip(ev, session_refuse(c->p->session, c->fd));
		else
			sc_skip(ev, -err);
		return;
	}
	r = session_attach_tcp(c->p->session, stream, c->fd, (struct sockaddr *)&c->dst, c->dstlen);
	sc_skip(ev, r);
}

void net_connect(struct sc_event *ev, struct policy *p)
{
	struct sockaddr_storage dst, adst;
	socklen_t dstlen, alen;
	const char *why;
	int type, fd;

	if (!net_read_sockaddr(ev, sc_arg(ev, 1), sc_arg(ev, 2), &dst, &dstlen)) {
		if (sc_tracing(ev))
			note_not_ip(ev);
		sc_continue(ev);
		return;
	}
	fd = sc_dup_fd(ev, (int)sc_arg(ev, 0));
	if (fd < 0) {
		/* EBADF and friends: the kernel reports them itself. */
		sc_continue(ev);
		return;
	}
	type = net_sock_type(fd);
	if ((type != SOCK_STREAM && type != SOCK_DGRAM) ||
	    (type == SOCK_STREAM && !p->cfg.outgoing_tcp) ||
	    (type == SOCK_DGRAM && !p->cfg.outgoing_udp)) {
		close(fd);
		net_note_addr(ev, SC_LOCAL, "connect", &dst, dstlen,
		              "(outgoing disabled for this type)");
		sc_continue(ev);
		return;
	}
	if (!goes_remote(p, type, &dst, dstlen, &why)) {
		close(fd);
		net_note_addr(ev, SC_LOCAL, "connect", &dst, dstlen, why);
		sc_continue(ev);
		return;
	}
	if (!family_fits(fd, type, (uint32_t)sc_arg(ev, 2), &dst, &dstlen)) {
		close(fd);
		net_note_addr(ev, SC_LOCAL, "connect", &dst, dstlen,
		              "(family mismatch: the kernel's call)");
		sc_continue(ev);
		return;
	}
	if (type == SOCK_STREAM) {
		/* A socket already connected, or connecting to our relay
		 * (a retry after EINTR, Go does that), is the kernel's to
		 * answer: EISCONN / EALREADY, as it would be natively. */
		struct tcp_info ti;
		socklen_t til = sizeof(ti);
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &til) == 0 &&
		    ti.tcpi_state != TCP_CLOSE) {
			close(fd);
			sc_continue(ev);
			return;
		}
	}
	if (type == SOCK_DGRAM) {
		/* A UDP connect cannot be refused remotely: join the flow now;
		 * its agent stream opens with the first datagram. */
		long r = session_udp_attach(p->session, fd, (struct sockaddr *)&dst, dstlen, true);
		close(fd);
		note_remote(ev, "connect", &dst, dstlen, "udp via agent", why);
		sc_skip(ev, r);
		return;
	}
	/* The thread waits for the agent's answer even when the destination
	 * answered a moment ago: joining the relay first would save a round
	 * trip, but a refusal could then only reach the program as a reset
	 * of a connection it already holds, never as ECONNREFUSED
	 * (e2e.probes, probe_reach). */
	struct net_call *c = net_call_new(ev, p, fd);
	memcpy(&c->dst, &dst, dstlen);
	c->dstlen = dstlen;
	alen = agent_dst(&dst, dstlen, &adst);
	c->req = session_connect(p->session, type, (struct sockaddr *)&adst, alen, connect_done, c);
	if (c->req < 0) {
		long e = c->req;
		c->req = 0;
		net_note_addr(ev, SC_REMOTE, "connect", &dst, dstlen, "(agent unavailable)");
		sc_skip(ev, e == -ENOTCONN ? -ENETUNREACH : e);
		return;
	}
	note_remote(ev, "connect", &dst, dstlen, "via agent", why);
	sc_park(ev);
}

/* ---- getpeername ------------------------------------------------------ */

/* Write addr to the (addr, *addrlen) pair of the program, with the
 * kernel's semantics: truncate to the caller's buffer, but store the full
 * length. Returns 0 or -EFAULT / -EINVAL. */
int net_put_sockaddr(struct sc_event *ev, uint64_t ptr, uint64_t lenptr,
                     const struct sockaddr_storage *ss, socklen_t len)
{
	int32_t have;

	if (sc_read_mem(ev, lenptr, &have, sizeof(have)) < 0)
		return -EFAULT;
	if (have < 0)
		return -EINVAL;
	if (have > 0 && sc_write_mem(ev, ptr, ss, (size_t)have < len ? (size_t)have : len) < 0)
		return -EFAULT;
	int32_t full = (int32_t)len;
	if (sc_write_mem(ev, lenptr, &full, sizeof(full)) < 0)
		return -EFAULT;
	return 0;
}

void net_getpeername(struct sc_event *ev, struct policy *p)
{
	struct sockaddr_storage peer, real;
	socklen_t plen, rl = sizeof(real);
	int fd = sc_dup_fd(ev, (int)sc_arg(ev, 0));
	bool known;

	if (fd < 0) {
		sc_continue(ev);
		return;
	}
	/* Ours if the kernel's peer is a relay of an outgoing connection, or
	 * the session's socket of an incoming one (syscalls/incoming.c). */
	known = getpeername(fd, (struct sockaddr *)&real, &rl) == 0 &&
	        (session_peer_of(p->session, net_fd_ino(fd), (struct sockaddr *)&real, rl, &peer,
	                         &plen) ||
	         session_in_peer(p->session, (struct sockaddr *)&real, rl, &peer, &plen));
	close(fd);
	if (!known) {
		sc_continue(ev);
		return;
	}
	int r = net_put_sockaddr(ev, sc_arg(ev, 1), sc_arg(ev, 2), &peer, plen);
	net_note_addr(ev, SC_EMULATED, "getpeername", &peer, plen, "(pod-side address)");
	sc_skip(ev, r);
}

/* ---- sendto / sendmsg -------------------------------------------------- */

/* Gather the datagram (sendto's buffer or sendmsg's iovecs) from tracee
 * memory into buf (UDP_MAX bytes). Returns its length or -errno. */
static ssize_t gather(struct sc_event *ev, uint64_t ubuf, uint64_t ulen, uint64_t msg, uint8_t *buf)
{
	size_t len = 0;

	if (!msg) {
		if (ulen > UDP_MAX)
			return -EMSGSIZE;
		if (ulen && sc_read_mem(ev, ubuf, buf, ulen) < 0)
			return -EFAULT;
		return (ssize_t)ulen;
	}
	struct msghdr mh;
	if (sc_read_mem(ev, msg, &mh, sizeof(mh)) < 0)
		return -EFAULT;
	if (mh.msg_iovlen > IOV_MAX_COUNT)
		return -EMSGSIZE;
	for (size_t i = 0; i < mh.msg_iovlen; i++) {
		struct iovec iov;
		if (sc_read_mem(ev, (uint64_t)(uintptr_t)mh.msg_iov + i * sizeof(iov), &iov,
		                sizeof(iov)) < 0)
			return -EFAULT;
		if (iov.iov_len > UDP_MAX - len)
			return -EMSGSIZE;
		if (iov.iov_len &&
		    sc_read_mem(ev, (uint64_t)(uintptr_t)iov.iov_base, buf + len, iov.iov_len) < 0)
			return -EFAULT;
		len += iov.iov_len;
	}
	return (ssize_t)len;
}

/* sendto()/sendmsg() of one datagram to a remote address: joined to the
 * flow of (socket, destination) and sent from the program's own socket to
 * the flow's relay; the syscall is skipped with the byte count. */
static void udp_send(struct sc_event *ev, struct policy *p, struct sockaddr_storage dst,
                     socklen_t dstlen, uint64_t ubuf, uint64_t ulen, uint64_t msg, int flags)
{
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_close_ int fd = sc_dup_fd(ev, (int)sc_arg(ev, 0));
	const char *what = msg ? "sendmsg" : "sendto", *why;
	ssize_t n;

	if (fd < 0 || net_sock_type(fd) != SOCK_DGRAM || !p->cfg.outgoing_udp) {
		/* TCP ignores the address (TCP Fast Open is not handled). */
		sc_continue(ev);
		return;
	}
	if (!goes_remote(p, SOCK_DGRAM, &dst, dstlen, &why)) {
		net_note_addr(ev, SC_LOCAL, what, &dst, dstlen, why);
		sc_continue(ev);
		return;
	}
	if (!family_fits(fd, SOCK_DGRAM, sizeof(struct sockaddr_in6), &dst, &dstlen)) {
		sc_continue(ev);
		return;
	}
	buf = xmalloc(UDP_MAX);
	ssize_t len = gather(ev, ubuf, ulen, msg, buf);
	n = len < 0 ? len
	            : session_udp_attach(p->session, fd, (struct sockaddr *)&dst, dstlen, false);
	if (n >= 0)
		n = session_udp_send(p->session, fd, (struct sockaddr *)&dst, dstlen, buf,
		                     (size_t)len, flags);
	note_remote(ev, what, &dst, dstlen, "udp via agent", why);
	sc_skip(ev, n);
}

void net_sendto(struct sc_event *ev, struct policy *p)
{
	struct sockaddr_storage dst;
	socklen_t dstlen;

	if (!net_read_sockaddr(ev, sc_arg(ev, 4), sc_arg(ev, 5), &dst, &dstlen)) {
		sc_continue(ev);
		return;
	}
	udp_send(ev, p, dst, dstlen, sc_arg(ev, 1), sc_arg(ev, 2), 0, (int)sc_arg(ev, 3));
}

void net_sendmsg(struct sc_event *ev, struct policy *p)
{
	struct sockaddr_storage dst;
	socklen_t dstlen;
	struct msghdr mh;

	if (sc_read_mem(ev, sc_arg(ev, 1), &mh, sizeof(mh)) < 0 || !mh.msg_name ||
	    !net_read_sockaddr(ev, (uint64_t)(uintptr_t)mh.msg_name, mh.msg_namelen, &dst,
	                       &dstlen)) {
		sc_continue(ev);
		return;
	}
	udp_send(ev, p, dst, dstlen, 0, 0, sc_arg(ev, 1), (int)sc_arg(ev, 2));
}

/* ---- recvfrom / recvmsg ------------------------------------------------ */

struct recv_call {
	struct policy *p;
	ino_t ino;
	uint64_t addr, lenptr; /* where the source address and its length go */
	int32_t cap;           /* the program's buffer size, read at entry */
	bool is_msg;
};

/* At exit: if the datagram came from one of our relays, put the real
 * remote address where the kernel put the relay's. The kernel wrote
 * min(cap, full) bytes and stored the full length; we do the same, with
 * the buffer size the program gave at entry (never the stored length, or a
 * short buffer would be overrun). */
static void recv_fix(struct sc_event *ev)
{
	struct recv_call *c = sc_state(ev);
	struct sockaddr_storage seen, real;
	socklen_t reallen;
	int32_t full;
	size_t n;

	if (sc_result(ev) < 0 || c->cap < 0 || !c->addr)
		return;
	if (sc_read_mem(ev, c->lenptr, &full, sizeof(full)) < 0 || full <= 0 ||
	    (size_t)full > sizeof(seen))
		return;
	n = (size_t)(c->cap < full ? c->cap : full);
	memset(&seen, 0, sizeof(seen));
	if (n && sc_read_mem(ev, c->addr, &seen, n) < 0)
		return;
	if (!session_udp_fix_source(c->p->session, c->ino, &seen, n, (socklen_t)full, &real,
	                            &reallen))
		return;
	n = (size_t)c->cap < reallen ? (size_t)c->cap : reallen;
	if (n)
		sc_write_mem(ev, c->addr, &real, n);
	int32_t rl = (int32_t)reallen;
	sc_write_mem(ev, c->lenptr, &rl, sizeof(rl));
	if (sc_tracing(ev)) {
		char a[SOCKADDR_STR_MAX];
		sc_note(ev, SC_REMOTE, "%s(%d) from %s (via agent)",
		        c->is_msg ? "recvmsg" : "recvfrom", (int)sc_arg(ev, 0),
		        sockaddr_str(&real, reallen, a, sizeof(a)));
	}
}

static void recv_common(struct sc_event *ev, struct policy *p, bool is_msg)
{
	ino_t ino = arg_socket_ino(ev);
	struct recv_call c = {.p = p, .ino = ino, .is_msg = is_msg};

	/* Only sockets with relayed UDP flows need the exit stop. */
	if (!ino || !session_udp_has(p->session, ino)) {
		sc_continue(ev);
		return;
	}
	if (is_msg) {
		struct msghdr mh;
		if (sc_read_mem(ev, sc_arg(ev, 1), &mh, sizeof(mh)) < 0 || !mh.msg_name) {
			sc_continue(ev);
			return;
		}
		c.addr = (uint64_t)(uintptr_t)mh.msg_name;
		c.lenptr = sc_arg(ev, 1) + offsetof(struct msghdr, msg_namelen);
		c.cap = (int32_t)mh.msg_namelen;
	} else {
		c.addr = sc_arg(ev, 4);
		c.lenptr = sc_arg(ev, 5);
		if (!c.lenptr || sc_read_mem(ev, c.lenptr, &c.cap, sizeof(c.cap)) < 0) {
			sc_continue(ev);
			return;
		}
	}
	struct recv_call *pc = xmalloc(sizeof(*pc));
	*pc = c;
	sc_set_state(ev, pc, free);
	sc_continue_exit(ev, recv_fix);
}

void net_recvfrom(struct sc_event *ev, struct policy *p)
{
	recv_common(ev, p, false);
}

void net_recvmsg(struct sc_event *ev, struct policy *p)
{
	recv_common(ev, p, true);
}
