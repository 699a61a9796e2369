/* UDP to the pod's echo server: sendto with a raw sockaddr (plain, with
 * upper-half garbage in fd/flags/addrlen, before a guard page), recvfrom
 * source addresses (full and truncated), connected send/recv and
 * getpeername, sendmsg/recvmsg with msg_name, and disconnecting with
 * AF_UNSPEC. The source of every reply must be the echo server's address,
 * never the local relay's. */
#include "probe.h"

#include <sys/mman.h>
#include <sys/uio.h>

#define PAGE 4096

static char *page; /* the page before a PROT_NONE one */

/* recvfrom with a source buffer of srccap bytes (sentinel 0xee around it):
 * prints the payload, the returned length and the bytes. */
static void recv_src_after(const char *what, uint64_t fdarg, uint64_t flags, socklen_t srccap,
                           const void *after, size_t afterlen)
{
	unsigned char src[64];
	socklen_t len = srccap;
	char buf[128], a[80], h[140];
	long r;

	memset(src, 0xee, sizeof(src));
	memcpy(src + srccap, after, afterlen);
	r = raw_syscall(SYS_recvfrom, fdarg, P(buf), sizeof(buf) - 1, flags, P(src), P(&len));
	if (r < 0) {
		say("%s: recvfrom = %s", what, res(r));
		return;
	}
	buf[r] = '\0';
	if (srccap >= sizeof(struct sockaddr_in))
		say("%s: recvfrom = %ld '%s' from %s len=%u", what, r, buf,
		    sa_str(src, a, sizeof(a)), (unsigned)len);
	else
		say("%s: recvfrom = %ld '%s' len=%u bytes=%s", what, r, buf, (unsigned)len,
		    hex(src, 16, h, sizeof(h)));
}

static void recv_src(const char *what, uint64_t fdarg, uint64_t flags, socklen_t srccap)
{
	recv_src_after(what, fdarg, flags, srccap, "", 0);
}

static void send_to(const char *what, uint64_t fdarg, const char *msg, uint64_t flags,
                    const void *sa, uint64_t salen)
{
	long r = raw_syscall(SYS_sendto, fdarg, P(msg), strlen(msg), flags, P(sa), salen);

	say("%s: sendto = %s", what, res(r));
}

static void datagrams(const char *v, int family, const void *sa, socklen_t salen)
{
	char what[64];
	int fd;

	/* Plain sendto / recvfrom. */
	fd = sock(family, SOCK_DGRAM);
	snprintf(what, sizeof(what), "%s plain", v);
	send_to(what, (uint64_t)fd, "hello-sendto", 0, sa, salen);
	recv_src(what, (uint64_t)fd, 0, sizeof(struct sockaddr_storage));

	/* Upper-half garbage in fd, flags and addrlen (ints to the kernel). */
	snprintf(what, sizeof(what), "%s hi-bits", v);
	send_to(what, HI_FD | (uint64_t)fd, "hello-hi-bits", HI_LEN, sa, HI_LEN | salen);
	recv_src(what, HI_FD | (uint64_t)fd, HI_LEN, sizeof(struct sockaddr_storage));

	/* The sockaddr right before a guard page. */
	snprintf(what, sizeof(what), "%s guard", v);
	memcpy(page + PAGE - salen, sa, salen);
	send_to(what, (uint64_t)fd, "hello-guard", 0, page + PAGE - salen, salen);
	recv_src(what, (uint64_t)fd, 0, salen);

	/* A source buffer too small: truncated bytes, full length. */
	snprintf(what, sizeof(what), "%s short src", v);
	send_to(what, (uint64_t)fd, "hello-short", 0, sa, salen);
	recv_src(what, (uint64_t)fd, 0, 4);

	/* The same, where the bytes after the 4-byte buffer happen to hold
	 * the rest of a loopback sockaddr (127.0.0.1 / ::1, zeros): the
	 * kernel still writes 4 bytes, never past the length it was given. */
	{
		static const unsigned char lo4[12] = {127, 0, 0, 1};
		static const unsigned char lo6[24] = {[19] = 1};
		snprintf(what, sizeof(what), "%s short src, loopback after", v);
		send_to(what, (uint64_t)fd, "hello-short2", 0, sa, salen);
		if (family == AF_INET)
			recv_src_after(what, (uint64_t)fd, 0, 4, lo4, sizeof(lo4));
		else
			recv_src_after(what, (uint64_t)fd, 0, 4, lo6, sizeof(lo6));
	}
	close(fd);

	/* sendmsg with msg_name, recvmsg with msg_name. */
	fd = sock(family, SOCK_DGRAM);
	{
		char out[] = "hello-sendmsg", in[64], a[80];
		struct sockaddr_storage src;
		struct iovec iov[2] = {{out, 6}, {out + 6, sizeof(out) - 1 - 6}};
		struct msghdr mh;
		long r;

		memset(&mh, 0, sizeof(mh));
		mh.msg_name = (void *)sa;
		mh.msg_namelen = salen;
		mh.msg_iov = iov;
		mh.msg_iovlen = 2;
		r = raw_syscall(SYS_sendmsg, HI_FD | (uint64_t)fd, P(&mh), HI_LEN, 0, 0, 0);
		say("%s sendmsg: sendmsg = %s", v, res(r));

		struct iovec riov = {in, sizeof(in) - 1};
		memset(&mh, 0, sizeof(mh));
		memset(&src, 0, sizeof(src));
		mh.msg_name = &src;
		mh.msg_namelen = sizeof(src);
		mh.msg_iov = &riov;
		mh.msg_iovlen = 1;
		r = raw_syscall(SYS_recvmsg, (uint64_t)fd, P(&mh), 0, 0, 0, 0);
		if (r >= 0) {
			in[r] = '\0';
			say("%s sendmsg: recvmsg = %ld '%s' from %s namelen=%u", v, r, in,
			    sa_str(&src, a, sizeof(a)), (unsigned)mh.msg_namelen);
		} else {
			say("%s sendmsg: recvmsg = %s", v, res(r));
		}
	}
	close(fd);

	/* Connected UDP: send/recv without addresses, getpeername, and
	 * disconnect with AF_UNSPEC. */
	fd = sock(family, SOCK_DGRAM);
	{
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		struct sockaddr unspec;
		char a[80];
		long r;

		snprintf(what, sizeof(what), "%s connected", v);
		r = raw_syscall(SYS_connect, HI_FD | (uint64_t)fd, P(sa), HI_LEN | salen, 0, 0, 0);
		say("%s: connect = %s", what, res(r));
		r = raw_syscall(SYS_getpeername, HI_FD | (uint64_t)fd, P(&peer), P(&plen), 0, 0, 0);
		say("%s: getpeername = %s %s len=%u", what, res(r),
		    r == 0 ? sa_str(&peer, a, sizeof(a)) : "-", (unsigned)plen);
		send_to(what, (uint64_t)fd, "hello-connected", 0, NULL, 0);
		recv_src(what, (uint64_t)fd, 0, sizeof(struct sockaddr_storage));

		memset(&unspec, 0, sizeof(unspec));
		unspec.sa_family = AF_UNSPEC;
		r = raw_syscall(SYS_connect, (uint64_t)fd, P(&unspec), sizeof(unspec), 0, 0, 0);
		say("%s: connect AF_UNSPEC = %s", what, res(r));
		plen = sizeof(peer);
		r = raw_syscall(SYS_getpeername, (uint64_t)fd, P(&peer), P(&plen), 0, 0, 0);
		say("%s: getpeername after AF_UNSPEC = %s", what, res(r));
		r = raw_syscall(SYS_sendto, (uint64_t)fd, P("x"), 1, 0, 0, 0);
		say("%s: send after AF_UNSPEC = %s", what, res(r));
	}
	close(fd);
}

int main(int argc, char **argv)
{
	struct pod pod = pod_args(argc, argv);
	struct sockaddr_in u4 = sin4(pod.udp_ip, pod.udp_port);
	struct sockaddr_in6 u6 = sin6(pod.udp_ip6, pod.udp_port);

	page = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	if (mprotect(page + PAGE, PAGE, PROT_NONE) < 0)
		die("mprotect: %s", strerror(errno));
	datagrams("v4", AF_INET, &u4, sizeof(u4));
	datagrams("v6", AF_INET6, &u6, sizeof(u6));
	return 0;
}
