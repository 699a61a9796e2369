/* feature.network.dns.filter in the local DNS relays (dns.c): each query's
 * name decides whether it goes to the pod's nameserver (through the agent)
 * or to the workstation's own nameservers (those of the supervisor's
 * /etc/resolv.conf, reached from the supervisor, whose network namespace
 * is the workstation's). mirrord makes the same choice per getaddrinfo
 * name in its layer; the relay sees the resolver's queries instead, so it
 * matches the name with the pod's search domains appended too
 * (dns_filter.h).
 *
 * A local UDP query goes to every workstation nameserver at once, and the
 * first answer wins: one dead nameserver then costs nothing, where sending
 * to the first only would make the program wait out its resolver's
 * timeout. When all of them refuse (ICMP port unreachable, seen as
 * ECONNREFUSED on the connected socket), or there is none, the program
 * gets SERVFAIL at once instead of waiting. A nameserver that drops
 * queries silently leaves the program to its resolver's own timeout, as
 * without mirrord-trace. */
#include "session/internal.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define DNS_HEADER 12
/* A query's header and question: 12 + 255 + 4 bytes at most. */
#define DNS_QUESTION_MAX (DNS_HEADER + 255 + 4)
/* Addresses of one name answered from /etc/hosts, and the answer's room:
 * the question plus 16 AAAA records of 28 bytes. */
#define DNS_HOSTS_MAX 16
#define DNS_ANSWER_MAX (DNS_QUESTION_MAX + DNS_HOSTS_MAX * 28)
/* Per direction of a TCP pipe: a DNS message is at most 64 KiB + 2, and
 * it is relayed in pieces of this size. */
#define DNS_PIPE_BUF 4096

void session_dns_set_filter(struct session *s, const struct session_dns_filter *f)
{
	struct dns_filter *df = xcalloc(1, sizeof(*df));

	df->remote = f->remote;
	df->all = f->all;
	for (size_t i = 0; i < f->nnames; i++)
		dns_filter_add_name(df, f->names[i]);
	dns_free(s);
	s->dns_filter = df;
	s->dns_hosts = f->local_hosts ? xstrdup(f->local_hosts) : NULL;
	s->ndns_ws = f->local_resolv_conf ? parse_nameservers(f->local_resolv_conf, s->dns_ws,
	                                                      s->dns_wslen, DNS_MAX_NS)
	                                  : 0;
}

void session_dns_on_trace(struct session *s, void (*cb)(void *data, const char *line), void *data)
{
	s->dns_trace = cb;
	s->dns_trace_data = data;
}

/* "dns NAME TYPE -> local (why)": why a name went where it did. */
static void trace_route(struct session *s, const char *name, uint16_t qtype, bool tcp, bool parsed,
                        bool local, const char *entry)
{
	const struct dns_filter *f = s->dns_filter;
	const char *tn = dns_type_name(qtype), *to = local ? "local" : "remote";
	const char *side = f && f->remote ? "remote" : "local";
	const char *over = tcp ? " over TCP" : "";
	char type[16], *line;

	if (!tn) {
		snprintf(type, sizeof(type), "TYPE%u", qtype);
		tn = type;
	}
	if (!name[0])
		name = ".";
	if (!parsed)
		line = xasprintf("dns (a query whose question could not be read)%s -> %s%s", over,
		                 to, f ? " (the way unlisted names go)" : "");
	else if (!f)
		line = xasprintf("dns %s %s%s -> %s", name, tn, over, to);
	else if (entry && !*entry)
		line = xasprintf(
		        "dns %s %s%s -> %s (feature.network.dns.filter %s: an entry without "
		        "a name lists every name)",
		        name, tn, over, to, side);
	else if (entry)
		line = xasprintf("dns %s %s%s -> %s (feature.network.dns.filter %s: \"%s\")", name,
		                 tn, over, to, side, entry);
	else
		line = xasprintf("dns %s %s%s -> %s (not in feature.network.dns.filter %s)", name,
		                 tn, over, to, side);
	s->dns_trace(s->dns_trace_data, line);
	free(line);
}

bool dns_route(struct session *s, const uint8_t *msg, size_t n, bool tcp, size_t *ret_qend)
{
	char name[DNS_NAME_TEXT_MAX] = "";
	uint16_t qtype = 0;
	const char *entry = NULL;
	bool parsed, local = false;

	*ret_qend = 0;
	if (!s->dns_filter && !s->dns_trace)
		return false;
	parsed = dns_query_question(msg, n, name, &qtype, ret_qend) == 0;
	/* A query it cannot read goes where unlisted names go. */
	if (s->dns_filter)
		local = parsed ? dns_filter_local(s->dns_filter, name, &entry)
		               : s->dns_filter->remote;
	if (s->dns_trace)
		trace_route(s, name, qtype, tcp, parsed, local, entry);
	return local;
}

/* Nameserver idx refused (or failed): the queries that wait only for it
 * fail now. The kernel reports one ICMP error per socket read, not one
 * per query, so every query still waiting for idx counts it. */
static void ws_down(struct dns_ns *d, unsigned idx)
{
	for (size_t i = 0; i < DNS_SLOTS; i++) {
		struct dns_query *q = &d->q[i];
		if (!q->used || !q->local || !(q->ws_wait & (1u << idx)))
			continue;
		q->ws_wait &= (uint8_t) ~(1u << idx);
		if (!q->ws_wait)
			dns_fail(d, q);
	}
}

/* An answer from the workstation's /etc/hosts to an A or AAAA query for a
 * name it lists (mirrord resolves local names with the local libc, which
 * reads /etc/hosts before DNS): its length in out, or 0. */
static size_t hosts_answer(struct session *s, const uint8_t *msg, size_t n, uint8_t *out,
                           size_t cap)
{
	char name[DNS_NAME_TEXT_MAX];
	uint16_t qtype;
	size_t qend, len;
	uint8_t addrs[DNS_HOSTS_MAX][16];
	int k;

	if (!s->dns_hosts || dns_query_question(msg, n, name, &qtype, &qend) < 0 ||
	    (qtype != 1 && qtype != 28))
		return 0;
	k = dns_hosts_lookup(s->dns_hosts, name, qtype == 1 ? AF_INET : AF_INET6, addrs,
	                     DNS_HOSTS_MAX);
	if (k < 0 ||
	    !(len = dns_hosts_answer(msg, qend, (const uint8_t(*)[16])addrs, (size_t)k, out, cap)))
		return 0;
	if (s->dns_trace) {
		_cleanup_free_ char *line =
		        xasprintf("dns %s %s: answered from the workstation's /etc/hosts (%d "
		                  "address%s)",
		                  name, qtype == 1 ? "A" : "AAAA", k, k == 1 ? "" : "es");
		s->dns_trace(s->dns_trace_data, line);
	}
	return len;
}

void dns_send_local(struct dns_ns *d, struct dns_query *q, const uint8_t *msg, size_t n,
                    size_t qend)
{
	uint8_t ans[DNS_ANSWER_MAX];
	size_t alen = hosts_answer(d->s, msg, n, ans, sizeof(ans));

	if (alen) {
		ans[0] = (uint8_t)(q->orig_id >> 8);
		ans[1] = (uint8_t)q->orig_id;
		sendto(d->udp_fd, ans, alen, MSG_DONTWAIT, (struct sockaddr *)&q->client,
		       sizeof(q->client));
		q->used = false;
		return;
	}
	q->local = true;
	if (qend) {
		q->ws_query = xmalloc(qend);
		memcpy(q->ws_query, msg, qend);
		q->ws_qlen = qend;
	}
	for (size_t i = 0; i < d->s->ndns_ws; i++) {
		if (d->ws[i].fd < 0)
			continue;
		ssize_t r = send(d->ws[i].fd, msg, n, MSG_DONTWAIT);
		if (r == (ssize_t)n)
			q->ws_wait |= (uint8_t)(1u << i);
		else if (r < 0 && errno != EAGAIN && errno != EINTR)
			/* The ICMP error of an earlier query, reported here
			 * instead of to recv(): the queries still waiting for
			 * this nameserver would never hear it (glibc's A query
			 * waited out its 5 s timeout when the AAAA query's
			 * send took the error). */
			ws_down(d, (unsigned)i);
	}
	if (!q->ws_wait)
		dns_fail(d, q);
}

static void ws_readable(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct dns_wsock *w = data;
	uint8_t buf[AP_MAX_DATA];

	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0)
			ws_down(w->d, w->idx);
		else
			dns_reply(w->d, buf, (size_t)n, true);
	}
}

int dns_local_open(struct dns_ns *d)
{
	struct session *s = d->s;

	for (size_t i = 0; i < DNS_MAX_NS; i++)
		d->ws[i] = (struct dns_wsock){.d = d, .fd = -1, .idx = (unsigned)i};
	for (size_t i = 0; s->dns_filter && i < s->ndns_ws; i++) {
		const struct sockaddr *a = (const struct sockaddr *)&s->dns_ws[i];
		int fd = socket(a->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		/* A family the workstation lacks (no IPv6): that one never
		 * answers, the others still may. */
		if (fd < 0)
			continue;
		if (connect(fd, a, s->dns_wslen[i]) < 0 ||
		    evloop_add(s->loop, fd, EPOLLIN, ws_readable, &d->ws[i]) < 0) {
			close(fd);
			continue;
		}
		d->ws[i].fd = fd;
	}
	return 0;
}

void dns_local_close(struct dns_ns *d)
{
	for (size_t i = 0; i < DNS_MAX_NS; i++) {
		if (d->ws[i].fd < 0)
			continue;
		if (d->s->loop)
			evloop_del(d->s->loop, d->ws[i].fd);
		close(d->ws[i].fd);
		d->ws[i].fd = -1;
	}
}

/* ---- TCP: a pipe between the program's connection and the workstation's
 * nameserver ---------------------------------------------------------- */

struct dns_pipe {
	struct session *s;
	struct dns_pipe *prev, *next; /* s->dns_pipes */
	struct dns_ns *d;             /* the relay that accepted it */
	int fd[2];                    /* 0: the program's connection, 1: the nameserver's */
	/* buf[i]: read from fd[i], not yet written to fd[1 - i] */
	uint8_t buf[2][DNS_PIPE_BUF];
	size_t off[2], len[2];
	bool eof[2], connecting;
	uint8_t fail[2 + DNS_QUESTION_MAX]; /* a framed SERVFAIL, if the connect fails */
	size_t faillen;
};

/* Unlink p; its fds stay open. */
static void pipe_free(struct dns_pipe *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		p->s->dns_pipes = p->next;
	if (p->next)
		p->next->prev = p->prev;
	free(p);
}

static void pipe_close(struct dns_pipe *p)
{
	for (int i = 0; i < 2; i++) {
		if (p->fd[i] < 0)
			continue;
		evloop_del(p->s->loop, p->fd[i]);
		close(p->fd[i]);
	}
	pipe_free(p);
}

void dns_pipes_close(struct session *s)
{
	while (s->dns_pipes)
		pipe_close(s->dns_pipes);
}

/* A framed (TCP) SERVFAIL for the question msg[..qend] into out; its
 * length, 0 when the question could not be read. */
static size_t framed_servfail(const uint8_t *msg, size_t qend, uint8_t *out)
{
	if (!qend || qend > DNS_QUESTION_MAX)
		return 0;
	size_t n = dns_servfail(msg, qend, out + 2);
	out[0] = (uint8_t)(n >> 8);
	out[1] = (uint8_t)n;
	return n + 2;
}

/* Answer the program's TCP query (SERVFAIL, /etc/hosts), best effort (a fresh
 * connection's send buffer takes these few bytes at once). What it sent
 * is read first: closing a socket with unread data resets the connection,
 * and the reset can overtake the answer. */
static void reply_tcp(int fd, const uint8_t *reply, size_t len)
{
	uint8_t sink[DNS_PIPE_BUF];

	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
	if (len)
		(void)!send(fd, reply, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void pipe_update(struct dns_pipe *p)
{
	for (int i = 0; i < 2; i++) {
		uint32_t ev = 0;
		if (!p->eof[i] && p->len[i] == 0)
			ev |= EPOLLIN;
		if (p->len[1 - i] > p->off[1 - i] || (i == 1 && p->connecting))
			ev |= EPOLLOUT;
		evloop_mod(p->s->loop, p->fd[i], ev);
	}
}

/* Move what buf[from] holds to the other side. Returns false on an error. */
static bool pipe_flush(struct dns_pipe *p, int from)
{
	int to = 1 - from;

	if (to == 1 && p->connecting)
		return true;
	while (p->off[from] < p->len[from]) {
		ssize_t n = send(p->fd[to], p->buf[from] + p->off[from],
		                 p->len[from] - p->off[from], MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		p->off[from] += (size_t)n;
	}
	p->off[from] = p->len[from] = 0;
	if (p->eof[from])
		shutdown(p->fd[to], SHUT_WR);
	return true;
}

static void pipe_io(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct dns_pipe *p = data;
	int i = fd == p->fd[0] ? 0 : 1;

	if (i == 1 && p->connecting) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			/* The workstation's nameserver is not there: SERVFAIL,
			 * as for UDP. */
			reply_tcp(p->fd[0], p->fail, p->faillen);
			goto close;
		}
		p->connecting = false;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (p->len[i] == 0 && !p->eof[i]) {
			ssize_t n = recv(fd, p->buf[i], DNS_PIPE_BUF, MSG_DONTWAIT);
			if (n == 0)
				p->eof[i] = true;
			else if (n > 0)
				p->len[i] = (size_t)n;
			else if (errno != EAGAIN && errno != EINTR)
				goto close;
		} else if (!(events & EPOLLIN)) {
			/* Hung up while its data still waits for the other side:
			 * nothing more will come. */
			goto close;
		}
	}
	if (!pipe_flush(p, 0) || !pipe_flush(p, 1))
		goto close;
	/* Done when both sides have closed and everything was passed on, or
	 * when the nameserver closed and its last bytes went out. */
	if ((p->eof[0] && p->eof[1]) || (p->eof[1] && p->len[1] == 0))
		goto close;
	pipe_update(p);
	return;
close:
	pipe_close(p);
}

/* A local first query: connect to the first workstation nameserver and
 * start piping, or answer SERVFAIL when there is none to connect to. */
static void pipe_start(struct dns_pipe *p, const uint8_t *msg, size_t qend)
{
	struct session *s = p->s;
	const struct sockaddr *a = (const struct sockaddr *)&s->dns_ws[0];

	uint8_t ans[2 + DNS_ANSWER_MAX];
	size_t alen = qend ? hosts_answer(s, msg, qend, ans + 2, sizeof(ans) - 2) : 0;

	if (alen) {
		ans[0] = (uint8_t)(alen >> 8);
		ans[1] = (uint8_t)alen;
		reply_tcp(p->fd[0], ans, alen + 2);
		pipe_close(p);
		return;
	}
	p->faillen = framed_servfail(msg, qend, p->fail);
	if (s->ndns_ws)
		p->fd[1] = socket(a->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd[1] >= 0 && connect(p->fd[1], a, s->dns_wslen[0]) < 0 && errno != EINPROGRESS) {
		close(p->fd[1]);
		p->fd[1] = -1;
	}
	if (p->fd[1] < 0 || evloop_add(s->loop, p->fd[1], EPOLLOUT, pipe_io, p) < 0) {
		reply_tcp(p->fd[0], p->fail, p->faillen);
		pipe_close(p);
		return;
	}
	p->connecting = true;
	pipe_update(p);
}

/* The first query on an accepted connection: its 2-byte length and
 * question, peeked so that the pod's path still reads them from the
 * socket. A query split across segments whose question has not arrived
 * whole goes the default way, as any query the relay cannot read. */
static void pipe_peek(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct dns_pipe *p = data;
	uint8_t buf[2 + DNS_QUESTION_MAX];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	size_t qend;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 2) {
		pipe_close(p);
		return;
	}
	size_t mlen = (size_t)(buf[0] << 8 | buf[1]);
	size_t avail = (size_t)n - 2 < mlen ? (size_t)n - 2 : mlen;
	evloop_del(l, fd);
	if (dns_route(p->s, buf + 2, avail, true, &qend)) {
		if (evloop_add(l, fd, EPOLLIN, pipe_io, p) < 0) {
			p->fd[0] = -1;
			close(fd);
			pipe_close(p);
			return;
		}
		pipe_start(p, buf + 2, qend);
		return;
	}
	struct session *s = p->s;
	struct dns_ns *d = p->d;
	pipe_free(p);
	dns_tcp_pod(s, d, fd);
}

void dns_tcp_peek(struct dns_ns *d, int fd)
{
	struct session *s = d->s;
	struct dns_pipe *p = xcalloc(1, sizeof(*p));

	p->s = s;
	p->d = d;
	p->fd[0] = fd;
	p->fd[1] = -1;
	p->next = s->dns_pipes;
	if (p->next)
		p->next->prev = p;
	s->dns_pipes = p;
	if (evloop_add(s->loop, fd, EPOLLIN, pipe_peek, p) < 0)
		pipe_close(p);
}
