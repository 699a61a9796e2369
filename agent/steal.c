/* Steal: a listener in the target's network namespace that the redirect
 * rules (redirect.c) send the subscribed ports to. Each accepted
 * connection is looked up by its original destination port: without a
 * filter it becomes a plain relay stream (streams.c) announced by
 * AP_ACCEPT; with one, http.c serves it request by request. */
#include "agent/incoming.h"
#include "common/evloop.h"
#include "common/log.h"

#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define STEAL_BACKLOG 1024
/* Connections accepted per wakeup, so one flood cannot starve the loop. */
#define STEAL_ACCEPT_BATCH 64

struct steal {
	struct incoming *in;
	struct agent *a;
	int fd;
	uint16_t listen_port;
	struct redirect *rd;
	uint16_t ports[INCOMING_MAX_SUBS];
	size_t nports;
};

/* A v4-mapped IPv6 address (the dual-stack listener's view of an IPv4
 * peer) back to plain IPv4, so the client sees what the pod would. */
static void unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in s4 = {.sin_family = AF_INET};

	if (ss->ss_family != AF_INET6)
		return;
	memcpy(&s6, ss, sizeof(s6));
	if (!IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr))
		return;
	s4.sin_port = s6.sin6_port;
	memcpy(&s4.sin_addr, &s6.sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &s4, sizeof(s4));
}

/* Where the peer meant to go before REDIRECT rewrote it. */
static int original_dst(int fd, const struct sockaddr_storage *peer, struct sockaddr_storage *ret)
{
	socklen_t len = sizeof(*ret);

	memset(ret, 0, sizeof(*ret));
	if (peer->ss_family == AF_INET) {
		/* IPv4 through the dual-stack socket: conntrack answers at
		 * SOL_IP (the kernel routes the call to the IPv4 handler). */
		if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, ret, &len) < 0)
			return -errno;
		return 0;
	}
	if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, ret, &len) < 0)
		return -errno;
	return 0;
}

static uint16_t ss_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
	                                      : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void on_accept(struct evloop *l, int lfd, uint32_t events, void *data)
{
	struct steal *st = data;

	for (int i = 0; i < STEAL_ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer, orig;
		socklen_t pl = sizeof(peer);
		struct http_filter *f = NULL;
		int one = 1;
		_cleanup_close_ int fd =
		        accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		unmap(&peer);
		int r = original_dst(fd, &peer, &orig);
		if (r < 0) {
			log_warn("stolen connection without an original destination: %s",
			         strerror(-r));
			continue;
		}
		uint16_t port = ss_port(&orig);
		if (!incoming_steal_lookup(st->in, port, &f)) {
			/* Unsubscribed in the meantime: a reset tells the
			 * peer at once, and it retries into the pod. */
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (f) {
			hconn_start(st->in, st->a, TAKE_FD(fd), port, &peer, &orig, f);
			continue;
		}
		r = incoming_adopt(st->in, fd, port, (struct sockaddr *)&peer,
		                   (struct sockaddr *)&orig);
		if (r >= 0)
			fd = -1; /* the stream owns it now */
	}
}

int steal_new(struct incoming *in, struct agent *a, struct steal **ret)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
	socklen_t sl = sizeof(sa);
	int zero = 0, r;
	_cleanup_close_ int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* One port for both families, so one REDIRECT target serves both. */
	(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, STEAL_BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		return -errno;
	struct steal *st = xcalloc(1, sizeof(*st));
	st->in = in;
	st->a = a;
	st->listen_port = ntohs(sa.sin6_port);
	r = redirect_new(st->listen_port, &st->rd);
	if (r >= 0)
		r = evloop_add(a->loop, fd, EPOLLIN, on_accept, st);
	if (r < 0) {
		redirect_free(st->rd);
		free(st);
		return r;
	}
	st->fd = TAKE_FD(fd);
	*ret = st;
	return 0;
}

void steal_free(struct steal *st)
{
	if (!st)
		return;
	redirect_free(st->rd);
	evloop_del(st->a->loop, st->fd);
	closep(&st->fd);
	free(st);
}

/* Connections the pod's app already holds on port would never see the
 * redirect (NAT decides at the first packet): kill them, so their
 * clients reconnect and land with us. Best effort: needs ss and a
 * kernel with INET_DIAG_DESTROY. */
static void flush_established(uint16_t port)
{
	char sport[16];
	pid_t pid;
	int st;

	snprintf(sport, sizeof(sport), ":%u", port);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execlp("ss", "ss", "-K", "-t", "state", "established", "sport", "=", sport,
		       (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
}

int steal_set_ports(struct steal *st, const uint16_t *ports, size_t n, char *err, size_t errcap)
{
	int r = redirect_set_ports(st->rd, ports, n, err, errcap);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		bool old = false;
		for (size_t j = 0; j < st->nports; j++)
			old |= st->ports[j] == ports[i];
		if (!old && st->a->flush_connections)
			flush_established(ports[i]);
	}
	memcpy(st->ports, ports, n * sizeof(*ports));
	st->nports = n;
	return 0;
}
