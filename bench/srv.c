/* srv: a small, fast HTTP/1.1 server for the benchmarks.
 *
 *   srv PORT    listen on [::]:PORT (IPv4 too), print "listening PORT"
 *
 * The fixture's servers.py is fine for tests, but it is a threaded Python
 * server: at a few hundred microseconds per request it would hide the
 * tracer's cost in the short-connection benchmark, and /bytes stops at
 * 256 MiB. This one is single-threaded with epoll, so it also holds the
 * thousand idle connections of the memory benchmark.
 *
 * Paths: /bytes?n=N sends N bytes (N <= 64 GiB) of the same 64-byte pattern
 * as servers.py; anything else sends "hello from the pod\n". The connection
 * is closed after the response when the request says "Connection: close",
 * kept open otherwise. Pipelined requests (a second request in the same
 * read, as a mirrored copy of a keep-alive connection delivers them when it
 * lags behind) are answered in order; request bodies are not read. Runs
 * until killed.
 *
 * SIGUSR1 prints "requests N": the requests parsed since the start (each
 * request of a keep-alive connection counts). bench/incoming.sh reads it from
 * the copy that runs under mirrord-trace in mirror mode, whose replies nobody
 * sees, to count what the mirror delivered. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define PATTERN "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/\n"
#define HELLO "hello from the pod\n"
#define BODY_BUF (1 << 20) /* a multiple of the 64-byte pattern */
#define REQ_MAX 4096       /* requests are one line plus a few headers */
#define MAX_BYTES (64ULL << 30)

struct conn {
	int fd;
	size_t inlen, reqlen; /* bytes in `in`; of them, the request being answered */
	char in[REQ_MAX];
	char head[256];
	size_t headlen, headoff;
	uint64_t body_left, body_off;
	int keep, writing;
};

static char body[BODY_BUF];
static unsigned long long requests;
static volatile sig_atomic_t report;

static void on_usr1(int sig)
{
	(void)sig;
	report = 1;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c);
}

/* parse_request: the request in c->in is complete; set up the response. */
static void parse_request(struct conn *c)
{
	unsigned long long n = 0;
	const char *p;
	char *end, *eoh, save;

	c->in[c->inlen < REQ_MAX ? c->inlen : REQ_MAX - 1] = 0;
	requests++;
	/* Only this request's head: a pipelined one may follow it. */
	eoh = strstr(c->in, "\r\n\r\n");
	c->reqlen = (size_t)(eoh + 4 - c->in);
	save = c->in[c->reqlen];
	c->in[c->reqlen] = 0;
	c->keep = !strcasestr(c->in, "\r\nConnection: close");
	if (!strncmp(c->in, "GET /bytes?n=", 13)) {
		p = c->in + 13;
		errno = 0;
		n = strtoull(p, &end, 10);
		if (errno || end == p || n > MAX_BYTES)
			n = 0;
		c->body_left = n;
		c->headlen = (size_t)snprintf(
		        c->head, sizeof(c->head),
		        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
		        "Content-Length: %llu\r\n\r\n",
		        n);
	} else {
		c->body_left = 0;
		c->headlen = (size_t)snprintf(c->head, sizeof(c->head),
		                              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		                              "Content-Length: %zu\r\n\r\n%s",
		                              strlen(HELLO), HELLO);
	}
	c->in[c->reqlen] = save;
	c->headoff = 0;
	c->body_off = 0;
	c->writing = 1;
}

/* on_write: send what is left of the response; 1 = done, 0 = later, -1 = error */
static int on_write(struct conn *c)
{
	ssize_t w;
	size_t chunk, off;

	while (c->headoff < c->headlen) {
		w = send(c->fd, c->head + c->headoff, c->headlen - c->headoff, MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		c->headoff += (size_t)w;
	}
	while (c->body_left) {
		off = (size_t)(c->body_off % BODY_BUF);
		chunk = BODY_BUF - off;
		if (chunk > c->body_left)
			chunk = (size_t)c->body_left;
		w = send(c->fd, body + off, chunk, MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		c->body_off += (uint64_t)w;
		c->body_left -= (uint64_t)w;
	}
	return 1;
}

static void on_event(int ep, struct conn *c, uint32_t ev)
{
	struct epoll_event e = {0};
	ssize_t r;
	int done;

	if (!c->writing && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		r = recv(c->fd, c->in + c->inlen, REQ_MAX - 1 - c->inlen, 0);
		if (r <= 0) {
			if (r < 0 && errno == EAGAIN)
				return;
			conn_close(c);
			return;
		}
		c->inlen += (size_t)r;
		c->in[c->inlen] = 0;
		if (!strstr(c->in, "\r\n\r\n")) {
			if (c->inlen >= REQ_MAX - 1)
				conn_close(c);
			return;
		}
		parse_request(c);
	} else if (!c->writing) {
		return;
	}
	for (;;) {
		done = on_write(c);
		if (done < 0 || (done == 1 && !c->keep)) {
			conn_close(c);
			return;
		}
		if (done == 0)
			break;
		/* Answered: drop this request, go on with one already read. */
		c->writing = 0;
		c->inlen -= c->reqlen;
		memmove(c->in, c->in + c->reqlen, c->inlen + 1);
		if (!strstr(c->in, "\r\n\r\n"))
			break;
		parse_request(c);
	}
	e.data.ptr = c;
	e.events = c->writing ? EPOLLOUT : EPOLLIN;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

int main(int argc, char **argv)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
	struct rlimit rl;
	struct sigaction sa = {.sa_handler = on_usr1};
	sigset_t usr1, waitmask;
	struct epoll_event e, evs[256];
	struct conn *c;
	int ls, ep, one = 1, zero = 0, i, n, fd;
	long port;
	char *end;

	if (argc != 2) {
		fprintf(stderr, "usage: srv PORT\n");
		return 2;
	}
	port = strtol(argv[1], &end, 10);
	if (*end || port <= 0 || port > 65535) {
		fprintf(stderr, "srv: bad port '%s'\n", argv[1]);
		return 2;
	}
	for (i = 0; i < BODY_BUF; i += 64)
		memcpy(body + i, PATTERN, 64);
	signal(SIGPIPE, SIG_IGN);
	/* SIGUSR1 is blocked except inside epoll_pwait, so one that arrives
	 * between the check of `report` and the wait still ends the wait (EINTR)
	 * instead of waiting for the next connection. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &waitmask);
	sigdelset(&waitmask, SIGUSR1);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	a.sin6_port = htons((uint16_t)port);
	ls = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
	    bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4096)) {
		perror("srv: listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	e.events = EPOLLIN;
	e.data.ptr = NULL;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e)) {
		perror("srv: epoll");
		return 1;
	}
	printf("listening %ld\n", port);
	fflush(stdout);
	for (;;) {
		if (report) {
			report = 0;
			printf("requests %llu\n", requests);
			fflush(stdout);
		}
		n = epoll_pwait(ep, evs, 256, -1, &waitmask);
		if (n < 0 && errno != EINTR) {
			perror("srv: epoll_wait");
			return 1;
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr) {
				on_event(ep, evs[i].data.ptr, evs[i].events);
				continue;
			}
			while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
				c = calloc(1, sizeof(*c));
				if (!c) {
					close(fd);
					continue;
				}
				c->fd = fd;
				e.events = EPOLLIN;
				e.data.ptr = c;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e))
					conn_close(c);
			}
		}
	}
}
