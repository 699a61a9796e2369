/* rate: an open-loop, constant-rate HTTP/1.1 load generator.
 *
 *   rate HOST PORT [RATE [CONNS [SECONDS]]]     defaults 5000, 32, 5
 *
 * Sends RATE * SECONDS "GET /" requests, request i due at start + i/RATE,
 * over CONNS keep-alive connections opened before the clock starts. A request
 * goes out on an idle connection as soon as it is due; when every connection
 * is busy it waits for the next one that frees up. HTTP/1.1 without
 * pipelining: at most one request per connection is in flight.
 *
 * Open loop: the schedule does not slow down when the server does, and a
 * request's latency runs from the time it was DUE to the end of its response,
 * so time spent queued behind busy connections is counted (a closed-loop
 * client such as wrk would just send fewer requests and hide it).
 *
 * Output, one line: "rate COUNT OK P50_US P99_US MAX_US ERRORS SECONDS":
 * requests scheduled, answered with 200, latency percentiles of the answered
 * ones in microseconds, connection errors, and seconds from the start to the
 * last answer. Requests still unanswered 5 s after the last was due are not
 * OK. A dropped connection is counted, its request lost, and it is
 * reconnected (at most CONNS * 4 times in all). Exit 0 when every request was
 * answered, 1 otherwise, 2 on bad usage. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX 4096 /* srv's answers to "GET /" are about 100 bytes */
#define DRAIN_NS 5000000000LL
#define MAX_CONNS 4096
#define MAX_RATE 1000000L
#define MAX_SECONDS 3600L

struct conn {
	int fd;
	long req; /* index of the request in flight, -1 if idle */
	size_t have;
	char buf[RESP_MAX];
};

static struct sockaddr_storage sa;
static socklen_t salen;
static char request[256];
static size_t reqlen;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long parse_long(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "rate: bad %s '%s' (%ld..%ld)\n", what, s, lo, hi);
		exit(2);
	}
	return v;
}

/* dial: a connected non-blocking socket (the connect itself blocks), or -1 */
static int dial(int ep, struct conn *c)
{
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
	int fd, one = 1;

	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, salen)) {
		perror("rate: connect");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e)) {
		perror("rate: epoll_ctl");
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->req = -1;
	c->have = 0;
	return 0;
}

/* redial: drop c's broken connection and open a new one, within a budget
 * of BUDGET redials in all (*redials counts them); -1 ends the run */
static int redial(int ep, struct conn *c, long *redials, long budget)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if ((*redials)++ >= budget)
		return -1;
	return dial(ep, c);
}

/* response_done: 1 when buf holds a whole response (status 200 in *ok),
 * 0 when more is needed, -1 when it is malformed or too big */
static int response_done(struct conn *c, int *ok)
{
	char *eoh, *cl;
	long clen;

	c->buf[c->have] = 0;
	eoh = strstr(c->buf, "\r\n\r\n");
	if (!eoh)
		return c->have >= RESP_MAX - 1 ? -1 : 0;
	cl = strcasestr(c->buf, "\r\nContent-Length:");
	if (!cl || cl > eoh)
		return -1;
	clen = strtol(cl + 17, NULL, 10);
	if (clen < 0 || (size_t)(eoh + 4 - c->buf) + (size_t)clen > RESP_MAX - 1)
		return -1;
	if (c->have < (size_t)(eoh + 4 - c->buf) + (size_t)clen)
		return 0;
	*ok = !strncmp(c->buf, "HTTP/1.1 200 ", 13);
	return 1;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
	struct epoll_event evs[256];
	struct conn *conns, *c, **idle;
	struct timespec ts;
	long rate = 5000, nconn = 32, secs = 5, total, next = 0, answered = 0, ok = 0;
	long nidle = 0, errors = 0, redials = 0, i, port;
	int64_t *lat, start, period, now, due, last = 0, wait;
	int ep, n, k, good, done;
	ssize_t r;

	if (argc < 3 || argc > 6) {
		fprintf(stderr, "usage: rate HOST PORT [RATE [CONNS [SECONDS]]]\n");
		return 2;
	}
	port = parse_long(argv[2], 1, 65535, "port");
	if (argc > 3)
		rate = parse_long(argv[3], 1, MAX_RATE, "rate");
	if (argc > 4)
		nconn = parse_long(argv[4], 1, MAX_CONNS, "connection count");
	if (argc > 5)
		secs = parse_long(argv[5], 1, MAX_SECONDS, "duration");
	memset(&sa, 0, sizeof(sa));
	if (inet_pton(AF_INET, argv[1], &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		salen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, argv[1], &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		salen = sizeof(*s6);
	} else {
		fprintf(stderr, "rate: '%s' is not an address\n", argv[1]);
		return 2;
	}
	k = snprintf(request, sizeof(request), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", argv[1]);
	if (k < 0 || (size_t)k >= sizeof(request))
		return 2;
	reqlen = (size_t)k;
	total = rate * secs;
	period = 1000000000LL / rate;
	lat = calloc((size_t)total, sizeof(*lat));
	conns = calloc((size_t)nconn, sizeof(*conns));
	idle = calloc((size_t)nconn, sizeof(*idle));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!lat || !conns || !idle || ep < 0) {
		perror("rate: setup");
		return 1;
	}
	for (i = 0; i < nconn; i++) {
		if (dial(ep, &conns[i]))
			return 1;
		idle[nidle++] = &conns[i];
	}

	start = now_ns() + 1000000; /* 1 ms: the first request is not late */
	for (;;) {
		now = now_ns();
		/* Send every request that is due while a connection is idle. */
		while (next < total && nidle > 0 && start + next * period <= now) {
			c = idle[--nidle];
			c->req = next++;
			c->have = 0;
			r = send(c->fd, request, reqlen, MSG_NOSIGNAL);
			if (r != (ssize_t)reqlen) {
				/* A short send of a 50-byte request into an empty socket
				 * only happens when the connection is gone. */
				errors++;
				answered++;
				if (redial(ep, c, &redials, nconn * 4))
					goto out;
				idle[nidle++] = c;
			}
		}
		if (answered >= total)
			break;
		if (now > start + (total - 1) * period + DRAIN_NS)
			break;
		/* Sleep until the next request is due, or for I/O; with every
		 * connection busy, only I/O can help. */
		due = start + next * period;
		wait = (next < total && nidle > 0) ? due - now : 10000000;
		if (wait < 0)
			wait = 0;
		ts.tv_sec = wait / 1000000000LL;
		ts.tv_nsec = wait % 1000000000LL;
		n = epoll_pwait2(ep, evs, 256, &ts, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("rate: epoll_pwait2");
			return 1;
		}
		for (k = 0; k < n; k++) {
			c = evs[k].data.ptr;
			r = recv(c->fd, c->buf + c->have, RESP_MAX - 1 - c->have, 0);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			good = 0;
			done = r > 0 && c->req >= 0
			               ? (c->have += (size_t)r, response_done(c, &good))
			               : -1;
			if (done == 0)
				continue;
			if (done == 1) {
				last = now_ns();
				if (good)
					lat[ok++] = last - (start + c->req * period);
				answered++;
				c->req = -1;
				idle[nidle++] = c;
				continue;
			}
			/* EOF, error, a response nobody asked for, or garbage */
			errors++;
			if (c->req >= 0)
				answered++;
			if (redial(ep, c, &redials, nconn * 4))
				goto out;
			idle[nidle++] = c;
		}
	}
out:
	qsort(lat, (size_t)ok, sizeof(*lat), cmp_i64);
	printf("rate %ld %ld %.1f %.1f %.1f %ld %.3f\n", total, ok,
	       ok ? (double)lat[(ok - 1) / 2] / 1000 : 0.0,
	       ok ? (double)lat[(ok * 99 + 99) / 100 - 1] / 1000 : 0.0,
	       ok ? (double)lat[ok - 1] / 1000 : 0.0, errors,
	       last ? (double)(last - start) / 1e9 : 0.0);
	return ok == total ? 0 : 1;
}
