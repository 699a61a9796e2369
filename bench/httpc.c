/* httpc: a minimal blocking HTTP/1.1 client for the benchmarks.
 *
 *   httpc get  HOST PORT COUNT          COUNT sequential GET /, one new TCP
 *                                       connection each ("Connection: close")
 *   httpc connect HOST PORT COUNT       the same dials, each closed at once
 *                                       (what a relayed connect() costs)
 *   httpc bulk HOST PORT BYTES          one GET /bytes?n=BYTES, body discarded
 *   httpc hold HOST PORT COUNT SECONDS  open COUNT connections, one keep-alive
 *                                       GET / on each, keep them all open for
 *                                       SECONDS, then close them
 *
 * HOST is an address (parsed once) or a name, which is resolved with
 * getaddrinfo(AF_UNSPEC) before EVERY connection, as a client without a
 * cache does (glibc has none). Timing is taken inside, with CLOCK_MONOTONIC
 * (vDSO), so the start-up of the tracer and the agent is not counted. Output
 * is one line of space-separated fields (see each mode); any failed request
 * fails the run (exit 1). Plain libc, blocking sockets: the only syscalls
 * mirrord-trace stops on are connect (and, for names, what DNS needs). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF (256 << 10)

static char rbuf[RBUF];
static struct sockaddr_storage fixed_sa;
static socklen_t fixed_len;
static int host_is_numeric;
static const char *g_host, *g_port;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int parse_numeric(const char *host, const char *port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&fixed_sa;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&fixed_sa;
	long p = strtol(port, NULL, 10);

	memset(&fixed_sa, 0, sizeof(fixed_sa));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		fixed_len = sizeof(*s4);
		return 1;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		fixed_len = sizeof(*s6);
		return 1;
	}
	return 0;
}

/* dial: a connected blocking socket, or -1 (message printed). */
static int dial(void)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
	int fd, rc;

	if (host_is_numeric) {
		fd = socket(fixed_sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&fixed_sa, fixed_len)) {
			perror("httpc: connect");
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	}
	rc = getaddrinfo(g_host, g_port, &hints, &res);
	if (rc) {
		fprintf(stderr, "httpc: resolving '%s': %s\n", g_host, gai_strerror(rc));
		return -1;
	}
	fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		perror("httpc: connect");
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			perror("httpc: send");
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_get(int fd, const char *path, int keep)
{
	char req[512];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, g_host,
	                 keep ? "" : "Connection: close\r\n");

	if (n < 0 || (size_t)n >= sizeof(req))
		return -1;
	return send_all(fd, req, (size_t)n);
}

/* read_response: read a whole response. With until_eof, read to EOF (the
 * server closes); otherwise stop at Content-Length. Returns the body length
 * or -1. Only the first RBUF bytes are kept: enough for the headers. */
static long long read_response(int fd, int until_eof)
{
	size_t have = 0;
	long long clen = -1, body = 0;
	ssize_t r;
	char *eoh = NULL, *cl;

	for (;;) {
		if (!eoh) {
			r = recv(fd, rbuf + have, RBUF - 1 - have, 0);
		} else {
			if (!until_eof && body >= clen)
				break;
			r = recv(fd, rbuf, RBUF, 0);
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			perror("httpc: recv");
			return -1;
		}
		if (r == 0)
			break;
		if (eoh) {
			body += r;
			continue;
		}
		have += (size_t)r;
		rbuf[have] = 0;
		eoh = strstr(rbuf, "\r\n\r\n");
		if (!eoh) {
			if (have >= RBUF - 1)
				return -1;
			continue;
		}
		if (strncmp(rbuf, "HTTP/1.1 200 ", 13)) {
			fprintf(stderr, "httpc: bad status: %.40s\n", rbuf);
			return -1;
		}
		cl = strcasestr(rbuf, "\r\nContent-Length:");
		if (cl && cl < eoh)
			clen = strtoll(cl + 17, NULL, 10);
		body = (long long)(rbuf + have - (eoh + 4));
	}
	if (!eoh || clen < 0 || body != clen) {
		fprintf(stderr, "httpc: short response (%lld of %lld body bytes)\n", body, clen);
		return -1;
	}
	return body;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* get: prints "get COUNT NS_PER_REQ P50_NS P99_NS" */
/* get, or connect (request false): COUNT dials, each closed at once;
 * prints "get|connect COUNT MEAN_NS P50_NS P99_NS". */
static int do_get(long count, int request)
{
	double *lat = calloc((size_t)count, sizeof(double)), t0, t1, ta;
	long i;
	int fd;

	if (!lat)
		return 1;
	t0 = now_ns();
	for (i = 0; i < count; i++) {
		ta = now_ns();
		fd = dial();
		if (fd < 0 || (request && (send_get(fd, "/", 0) || read_response(fd, 1) < 0))) {
			fprintf(stderr, "httpc: request %ld failed\n", i);
			return 1;
		}
		close(fd);
		lat[i] = now_ns() - ta;
	}
	t1 = now_ns();
	qsort(lat, (size_t)count, sizeof(double), cmp_double);
	printf("%s %ld %.0f %.0f %.0f\n", request ? "get" : "connect", count,
	       (t1 - t0) / (double)count, lat[count / 2], lat[(count * 99) / 100]);
	free(lat);
	return 0;
}

/* bulk: prints "bulk BYTES SECONDS MB_PER_S" (MB = 10^6 bytes) */
static int do_bulk(long long bytes)
{
	char path[64];
	double t0, t1;
	long long got;
	int fd;

	snprintf(path, sizeof(path), "/bytes?n=%lld", bytes);
	t0 = now_ns();
	fd = dial();
	if (fd < 0 || send_get(fd, path, 0))
		return 1;
	got = read_response(fd, 1);
	t1 = now_ns();
	close(fd);
	if (got != bytes)
		return 1;
	printf("bulk %lld %.3f %.1f\n", bytes, (t1 - t0) / 1e9,
	       (double)bytes / ((t1 - t0) / 1e9) / 1e6);
	return 0;
}

/* hold: prints "hold COUNT OPEN_SECONDS" once all are open, then holds. */
static int do_hold(long count, long seconds)
{
	struct rlimit rl;
	struct timespec ts = {.tv_sec = seconds};
	int *fds = calloc((size_t)count, sizeof(int));
	double t0;
	long i;

	if (!fds)
		return 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)count + 64) {
		rl.rlim_cur = (rlim_t)count + 64 <= rl.rlim_max ? (rlim_t)count + 64 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	t0 = now_ns();
	for (i = 0; i < count; i++) {
		fds[i] = dial();
		if (fds[i] < 0 || send_get(fds[i], "/", 1) || read_response(fds[i], 0) < 0) {
			fprintf(stderr, "httpc: connection %ld failed\n", i);
			return 1;
		}
	}
	printf("hold %ld %.3f\n", count, (now_ns() - t0) / 1e9);
	fflush(stdout);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	for (i = 0; i < count; i++)
		close(fds[i]);
	free(fds);
	return 0;
}

static long long num(const char *s, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v <= 0 || v > max) {
		fprintf(stderr, "httpc: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: httpc get|connect|bulk HOST PORT N | hold HOST PORT COUNT "
		                "SECONDS\n");
		return 2;
	}
	g_host = argv[2];
	g_port = argv[3];
	num(g_port, 65535);
	host_is_numeric = parse_numeric(g_host, g_port);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "get") || !strcmp(argv[1], "connect"))
		return do_get((long)num(argv[4], 10000000), !strcmp(argv[1], "get"));
	if (!strcmp(argv[1], "bulk"))
		return do_bulk(num(argv[4], 1LL << 40));
	if (!strcmp(argv[1], "hold") && argc == 6)
		return do_hold((long)num(argv[4], 100000), (long)num(argv[5], 3600));
	fprintf(stderr, "httpc: unknown mode '%s'\n", argv[1]);
	return 2;
}
