/* Shared by the syscall-behaviour probes (tests/probes/README.md).
 *
 * Every probe takes the same arguments, the pod fixture's addresses:
 *
 *   PROBE HTTP_IP HTTP_IP6 HTTP_PORT CLOSED_PORT UDP_ECHO_IP UDP_ECHO_IP6 UDP_ECHO_PORT
 *
 * and prints one line per observation on stdout (written with write(2), so
 * no stdio buffer is lost across execve or mixed up between threads). A
 * setup failure that is not an observation (mmap, socket) goes to stderr
 * with exit status 2. The network syscalls under test are made with
 * raw_syscall(): the registers reach the kernel exactly as given, garbage in
 * the upper half of int arguments included (a libc wrapper would truncate
 * them to int first). */
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

/* Upper-half garbage for 32-bit (int, socklen_t, unsigned) arguments. */
#define HI_FD 0xdeadbeef00000000ull
#define HI_LEN 0xffffffff00000000ull
#define IO_TIMEOUT_MS 5000

struct pod {
	const char *http_ip, *http_ip6, *udp_ip, *udp_ip6;
	int http_port, closed_port, udp_port;
};

/* raw_syscall: the syscall instruction with all six 64-bit registers as
 * given; returns the kernel's value (-errno on failure). */
#if defined(__x86_64__)
static inline long raw_syscall(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                               uint64_t a4, uint64_t a5)
{
	register uint64_t r10 __asm__("r10") = a3;
	register uint64_t r8 __asm__("r8") = a4;
	register uint64_t r9 __asm__("r9") = a5;
	long ret = nr;

	__asm__ volatile("syscall"
	                 : "+a"(ret), "+D"(a0), "+S"(a1), "+d"(a2), "+r"(r10), "+r"(r8), "+r"(r9)
	                 :
	                 : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__aarch64__)
static inline long raw_syscall(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                               uint64_t a4, uint64_t a5)
{
	register uint64_t x8 __asm__("x8") = (uint64_t)nr;
	register uint64_t x0 __asm__("x0") = a0;
	register uint64_t x1 __asm__("x1") = a1;
	register uint64_t x2 __asm__("x2") = a2;
	register uint64_t x3 __asm__("x3") = a3;
	register uint64_t x4 __asm__("x4") = a4;
	register uint64_t x5 __asm__("x5") = a5;

	__asm__ volatile("svc #0"
	                 : "+r"(x0)
	                 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
	                 : "memory");
	return (long)x0;
}
#else
#error "probes: raw_syscall is written for x86_64 and aarch64"
#endif

#define P(x) ((uint64_t)(uintptr_t)(x))

static inline const char *errno_name(long e)
{
	static char other[24];

	switch (e) {
	case EINVAL:
		return "EINVAL";
	case EFAULT:
		return "EFAULT";
	case EBADF:
		return "EBADF";
	case ENOTSOCK:
		return "ENOTSOCK";
	case EINTR:
		return "EINTR";
	case EAGAIN:
		return "EAGAIN";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case ECONNRESET:
		return "ECONNRESET";
	case EINPROGRESS:
		return "EINPROGRESS";
	case EALREADY:
		return "EALREADY";
	case EISCONN:
		return "EISCONN";
	case ENOTCONN:
		return "ENOTCONN";
	case ENETUNREACH:
		return "ENETUNREACH";
	case EHOSTUNREACH:
		return "EHOSTUNREACH";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EAFNOSUPPORT:
		return "EAFNOSUPPORT";
	case EADDRINUSE:
		return "EADDRINUSE";
	case EADDRNOTAVAIL:
		return "EADDRNOTAVAIL";
	case EDESTADDRREQ:
		return "EDESTADDRREQ";
	case EMSGSIZE:
		return "EMSGSIZE";
	case EPIPE:
		return "EPIPE";
	case EPERM:
		return "EPERM";
	case EACCES:
		return "EACCES";
	case ENOENT:
		return "ENOENT";
	case ENOTDIR:
		return "ENOTDIR";
	case ELOOP:
		return "ELOOP";
	case ERANGE:
		return "ERANGE";
	default:
		snprintf(other, sizeof(other), "errno %ld", e);
		return other;
	}
}

/* res: a syscall result as "N" or "-ENAME" (static buffer, one per call
 * site is enough: every use is consumed by say() before the next). */
static inline const char *res(long r)
{
	static char buf[2][40];
	static int i;

	i ^= 1;
	if (r < 0 && r > -4096)
		snprintf(buf[i], sizeof(buf[i]), "-%s", errno_name(-r));
	else
		snprintf(buf[i], sizeof(buf[i]), "%ld", r);
	return buf[i];
}

__attribute__((format(printf, 1, 2))) static inline void say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(1, line + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += (int)w;
	}
}

__attribute__((noreturn, format(printf, 1, 2))) static inline void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("probe setup failed: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static inline struct pod pod_args(int argc, char **argv)
{
	struct pod p;

	if (argc < 8)
		die("usage: %s HTTP_IP HTTP_IP6 HTTP_PORT CLOSED_PORT UDP_ECHO_IP UDP_ECHO_IP6 "
		    "UDP_ECHO_PORT",
		    argv[0]);
	p.http_ip = argv[1];
	p.http_ip6 = argv[2];
	p.http_port = atoi(argv[3]);
	p.closed_port = atoi(argv[4]);
	p.udp_ip = argv[5];
	p.udp_ip6 = argv[6];
	p.udp_port = atoi(argv[7]);
	return p;
}

static inline struct sockaddr_in sin4(const char *ip, int port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		die("bad IPv4 address '%s'", ip);
	return a;
}

static inline struct sockaddr_in6 sin6(const char *ip, int port)
{
	struct sockaddr_in6 a;

	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	a.sin6_port = htons((uint16_t)port);
	if (inet_pton(AF_INET6, ip, &a.sin6_addr) != 1)
		die("bad IPv6 address '%s'", ip);
	return a;
}

/* A socket without timeouts: the kernel restarts its calls after an
 * SA_RESTART handler (with SO_RCVTIMEO/SO_SNDTIMEO it returns EINTR). */
static inline int sock_restartable(int family, int type)
{
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket: %s", strerror(errno));
	return fd;
}

/* A socket with 5 s receive and send timeouts: every blocking call on it
 * is bounded. */
static inline int sock(int family, int type)
{
	struct timeval tv = {IO_TIMEOUT_MS / 1000, 0};
	int fd = sock_restartable(family, type);

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		die("setsockopt timeouts: %s", strerror(errno));
	return fd;
}

/* sa_str: "IP:PORT" ("[IP6]:PORT") of a sockaddr, or "family N". */
static inline const char *sa_str(const void *sa, char *buf, size_t cap)
{
	const struct sockaddr *s = sa;
	char ip[INET6_ADDRSTRLEN];

	if (s->sa_family == AF_INET) {
		const struct sockaddr_in *a = sa;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(buf, cap, "%s:%d", ip, ntohs(a->sin_port));
	} else if (s->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = sa;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(buf, cap, "[%s]:%d", ip, ntohs(a->sin6_port));
	} else {
		snprintf(buf, cap, "family %d", s->sa_family);
	}
	return buf;
}

/* hex: LEN bytes as lowercase hex, for exact comparisons of sockaddrs. */
static inline const char *hex(const void *p, size_t len, char *buf, size_t cap)
{
	const unsigned char *b = p;
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < len && o + 3 <= cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%02x", b[i]);
	return buf;
}

/* HTTP GET / on a connected TCP socket; returns the body (static buffer)
 * or a "<...>" description of what went wrong. Bounded by the socket's
 * timeouts and the buffer size. */
static inline const char *http_get(int fd)
{
	static char buf[4096];
	static const char req[] = "GET / HTTP/1.0\r\nHost: probe\r\n\r\n";
	size_t have = 0;
	long r;

	r = raw_syscall(SYS_sendto, (uint64_t)fd, P(req), sizeof(req) - 1, MSG_NOSIGNAL, 0, 0);
	if (r != (long)sizeof(req) - 1) {
		snprintf(buf, sizeof(buf), "<send %s>", res(r));
		return buf;
	}
	while (have < sizeof(buf) - 1) {
		r = raw_syscall(SYS_recvfrom, (uint64_t)fd, P(buf + have), sizeof(buf) - 1 - have,
		                0, 0, 0);
		if (r == -EINTR)
			continue;
		if (r < 0) {
			snprintf(buf, sizeof(buf), "<recv %s>", res(r));
			return buf;
		}
		if (r == 0)
			break;
		have += (size_t)r;
	}
	buf[have] = '\0';
	char *body = strstr(buf, "\r\n\r\n");
	if (!body)
		return "<no HTTP header end>";
	body += 4;
	size_t n = strlen(body);
	while (n > 0 && (body[n - 1] == '\n' || body[n - 1] == '\r'))
		body[--n] = '\0';
	return body;
}

/* wait_writable: poll for POLLOUT (bounded), then SO_ERROR as "0"/"ENAME". */
static inline const char *so_error_after_poll(int fd)
{
	struct pollfd pfd = {fd, POLLOUT, 0};
	int err = 0;
	socklen_t l = sizeof(err);
	int n;

	do
		n = poll(&pfd, 1, IO_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return "poll timed out";
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
		return "getsockopt failed";
	return err ? errno_name(err) : "0";
}
