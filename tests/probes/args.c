/* Argument handling of connect() and getpeername(): garbage in the upper
 * half of int arguments, sockaddrs right before a guard page, lengths that
 * are too short or too long, NULL and unmapped pointers, and getpeername's
 * truncation semantics. The kernel is the reference: every line must read
 * the same natively and under mirrord-trace. */
#include "probe.h"

#include <sys/mman.h>

#define PAGE 4096

static struct pod pod;
static char *page;   /* readable and writable */
static char *guard;  /* PROT_NONE, right after page */
static char *ropage; /* read-only */

static void *at_end(size_t len)
{
	return page + PAGE - len;
}

static long conn(int fd, const void *sa, uint64_t len)
{
	return raw_syscall(SYS_connect, (uint64_t)fd, P(sa), len, 0, 0, 0);
}

/* connect fd, print the result, and on success the GET body. */
static void connect_and_get(const char *what, int fd, uint64_t fdarg, const void *sa, uint64_t len)
{
	long r = raw_syscall(SYS_connect, fdarg, P(sa), len, 0, 0, 0);

	say("%s: connect = %s", what, res(r));
	if (r == 0)
		say("%s: body = %s", what, http_get(fd));
}

/* getpeername(fdarg) into a full-size buffer: "= R len=N ADDR". */
static void peer(const char *what, uint64_t fdarg)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char a[80];
	long r;

	memset(&ss, 0, sizeof(ss));
	r = raw_syscall(SYS_getpeername, fdarg, P(&ss), P(&len), 0, 0, 0);
	if (r == 0)
		say("%s: getpeername = 0 len=%u %s", what, (unsigned)len,
		    sa_str(&ss, a, sizeof(a)));
	else
		say("%s: getpeername = %s", what, res(r));
}

/* getpeername as raw bytes (the whole returned length, in hex). */
static void peer_hex(const char *what, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char h[300];
	long r;

	memset(&ss, 0, sizeof(ss));
	r = raw_syscall(SYS_getpeername, (uint64_t)fd, P(&ss), P(&len), 0, 0, 0);
	if (r == 0)
		say("%s: getpeername bytes = %s", what,
		    hex(&ss, len < sizeof(ss) ? len : sizeof(ss), h, sizeof(h)));
	else
		say("%s: getpeername = %s", what, res(r));
}

/* 1. Garbage in the upper half of fd and addrlen. */
static void high_bits(void)
{
	struct sockaddr_in a4 = sin4(pod.http_ip, pod.http_port);
	struct sockaddr_in6 a6 = sin6(pod.http_ip6, pod.http_port);
	int fd;

	fd = sock(AF_INET, SOCK_STREAM);
	connect_and_get("hi-bits v4", fd, HI_FD | (uint64_t)fd, &a4, HI_LEN | sizeof(a4));
	peer("hi-bits v4", HI_FD | (uint64_t)fd);
	close(fd);

	fd = sock(AF_INET6, SOCK_STREAM);
	connect_and_get("hi-bits v6", fd, HI_FD | (uint64_t)fd, &a6, HI_LEN | sizeof(a6));
	peer("hi-bits v6", HI_FD | (uint64_t)fd);
	close(fd);

	/* Bytes the kernel ignores on connect: sin_zero; sin6_flowinfo (no
	 * IPV6_FLOWINFO_SEND) and sin6_scope_id (not link-local). The
	 * kernel's getpeername reports zeros there. */
	fd = sock(AF_INET, SOCK_STREAM);
	memset(a4.sin_zero, 0xaa, sizeof(a4.sin_zero));
	say("sin_zero garbage: connect = %s", res(conn(fd, &a4, sizeof(a4))));
	peer_hex("sin_zero garbage", fd);
	close(fd);

	fd = sock(AF_INET6, SOCK_STREAM);
	a6.sin6_flowinfo = htonl(0x12345);
	a6.sin6_scope_id = 7;
	say("v6 flowinfo+scope garbage: connect = %s", res(conn(fd, &a6, sizeof(a6))));
	peer_hex("v6 flowinfo+scope garbage", fd);
	close(fd);
}

/* 2. sockaddrs that end exactly at a PROT_NONE page. */
static void guard_page(void)
{
	struct sockaddr_in a4 = sin4(pod.http_ip, pod.http_port);
	struct sockaddr_in6 a6 = sin6(pod.http_ip6, pod.http_port);
	int fd;

	fd = sock(AF_INET, SOCK_STREAM);
	memcpy(at_end(sizeof(a4)), &a4, sizeof(a4));
	connect_and_get("guard v4", fd, (uint64_t)fd, at_end(sizeof(a4)), sizeof(a4));
	/* getpeername into a buffer and a length that end at the guard page */
	{
		socklen_t *lenp = at_end(sizeof(socklen_t));
		void *out = (char *)lenp - sizeof(struct sockaddr_in);
		char a[80];
		*lenp = sizeof(struct sockaddr_in);
		long r = raw_syscall(SYS_getpeername, (uint64_t)fd, P(out), P(lenp), 0, 0, 0);
		say("guard v4: getpeername = %s len=%u %s", res(r), (unsigned)*lenp,
		    r == 0 ? sa_str(out, a, sizeof(a)) : "-");
	}
	close(fd);

	fd = sock(AF_INET6, SOCK_STREAM);
	memcpy(at_end(sizeof(a6)), &a6, sizeof(a6));
	connect_and_get("guard v6", fd, (uint64_t)fd, at_end(sizeof(a6)), sizeof(a6));
	peer("guard v6", (uint64_t)fd);
	close(fd);

	/* RFC 2133's 24-byte sockaddr_in6 (no sin6_scope_id) is still
	 * accepted by the kernel for a non-link-local address. */
	fd = sock(AF_INET6, SOCK_STREAM);
	memcpy(at_end(24), &a6, 24);
	connect_and_get("guard v6 len 24", fd, (uint64_t)fd, at_end(24), 24);
	close(fd);

	/* One byte more than what is mapped: the kernel copies addrlen bytes. */
	fd = sock(AF_INET, SOCK_STREAM);
	memcpy(at_end(sizeof(a4)), &a4, sizeof(a4));
	say("guard v4 len 17 crossing: connect = %s",
	    res(conn(fd, at_end(sizeof(a4)), sizeof(a4) + 1)));
	close(fd);
}

/* 3. Bad addresses and lengths: the kernel's errors, unchanged. */
static void bad_args(void)
{
	struct sockaddr_in a4 = sin4(pod.http_ip, pod.http_port);
	struct sockaddr_in6 a6 = sin6(pod.http_ip6, pod.http_port);
	struct sockaddr_storage big;
	int fd;

#define BAD(label, family, sa, len)                                     \
	do {                                                            \
		fd = sock(family, SOCK_STREAM);                         \
		say("%s: connect = %s", label, res(conn(fd, sa, len))); \
		close(fd);                                              \
	} while (0)

	BAD("v4 addrlen 8", AF_INET, &a4, 8);
	BAD("v4 addrlen 15", AF_INET, &a4, 15);
	BAD("v6 addrlen 20", AF_INET6, &a6, 20);
	BAD("v6 addrlen 23", AF_INET6, &a6, 23);
	BAD("v4 NULL sockaddr", AF_INET, NULL, sizeof(a4));
	BAD("v4 unmapped sockaddr", AF_INET, guard, sizeof(a4));
	BAD("v4 addrlen 0", AF_INET, &a4, 0);
	BAD("v4 NULL sockaddr addrlen 0", AF_INET, NULL, 0);
	BAD("v4 addrlen -1", AF_INET, &a4, 0xffffffffull);
	memset(&big, 0, sizeof(big));
	memcpy(&big, &a4, sizeof(a4));
	BAD("v4 addrlen 129", AF_INET, &big, sizeof(big) + 1);
	/* A longer length than the family needs is fine (bytes ignored). */
	fd = sock(AF_INET, SOCK_STREAM);
	connect_and_get("v4 addrlen 128", fd, (uint64_t)fd, &big, sizeof(big));
	close(fd);
	/* A v4 sockaddr on a v6 socket, and the reverse. */
	BAD("v4 sockaddr on v6 socket", AF_INET6, &a4, sizeof(a4));
	BAD("v6 sockaddr on v4 socket", AF_INET, &a6, sizeof(a6));
#undef BAD
}

/* 4. getpeername: truncation, and bad length pointers. */
static void getpeername_edges(void)
{
	struct sockaddr_in a4 = sin4(pod.http_ip, pod.http_port);
	unsigned char buf[32];
	socklen_t len;
	char h[80];
	long r;
	int fd = sock(AF_INET, SOCK_STREAM);

	say("peer edges: connect = %s", res(conn(fd, &a4, sizeof(a4))));

	memset(buf, 0xee, sizeof(buf));
	len = 4;
	r = raw_syscall(SYS_getpeername, (uint64_t)fd, P(buf), P(&len), 0, 0, 0);
	say("getpeername addrlen 4: = %s len=%u bytes=%s", res(r), (unsigned)len,
	    hex(buf, 16, h, sizeof(h)));

	memset(buf, 0xee, sizeof(buf));
	len = 0;
	r = raw_syscall(SYS_getpeername, (uint64_t)fd, P(buf), P(&len), 0, 0, 0);
	say("getpeername addrlen 0: = %s len=%u bytes=%s", res(r), (unsigned)len,
	    hex(buf, 4, h, sizeof(h)));

	memset(buf, 0xee, sizeof(buf));
	len = sizeof(buf);
	r = raw_syscall(SYS_getpeername, (uint64_t)fd, P(buf), P(&len), 0, 0, 0);
	say("getpeername addrlen 32: = %s len=%u bytes=%s", res(r), (unsigned)len,
	    hex(buf, sizeof(buf), h, sizeof(h)));

	r = raw_syscall(SYS_getpeername, (uint64_t)fd, P(buf), 0, 0, 0, 0);
	say("getpeername NULL addrlen: = %s", res(r));

	r = raw_syscall(SYS_getpeername, (uint64_t)fd, P(buf), P(guard), 0, 0, 0);
	say("getpeername unmapped addrlen: = %s", res(r));

	len = 16;
	r = raw_syscall(SYS_getpeername, (uint64_t)fd, 0, P(&len), 0, 0, 0);
	say("getpeername NULL addr: = %s", res(r));

	len = (socklen_t)-1;
	r = raw_syscall(SYS_getpeername, (uint64_t)fd, P(buf), P(&len), 0, 0, 0);
	say("getpeername addrlen -1: = %s", res(r));

	/* A length the program cannot write back: the kernel's put_user
	 * fails (EFAULT); the page must stay unchanged. */
	r = raw_syscall(SYS_getpeername, (uint64_t)fd, P(buf), P(ropage), 0, 0, 0);
	say("getpeername read-only addrlen: = %s stored=%u", res(r), *(volatile socklen_t *)ropage);

	memset(buf, 0xee, sizeof(buf));
	len = 16;
	r = raw_syscall(SYS_getpeername, (uint64_t)fd, P(ropage + 64), P(&len), 0, 0, 0);
	say("getpeername read-only addr: = %s page=%s", res(r), hex(ropage + 64, 4, h, sizeof(h)));
	close(fd);
}

int main(int argc, char **argv)
{
	pod = pod_args(argc, argv);
	page = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	guard = page + PAGE;
	if (mprotect(guard, PAGE, PROT_NONE) < 0)
		die("mprotect: %s", strerror(errno));
	ropage = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ropage == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	*(socklen_t *)ropage = 16; /* a plausible length, then read-only */
	if (mprotect(ropage, PAGE, PROT_READ) < 0)
		die("mprotect: %s", strerror(errno));

	high_bits();
	guard_page();
	bad_args();
	getpeername_edges();
	return 0;
}
