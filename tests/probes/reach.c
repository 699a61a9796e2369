/* The errno of a destination the pod cannot reach, or no longer reaches.
 *
 *   probe_reach <the 7 usual arguments> ONESHOT_PORT NOROUTE_IP NOROUTE_IP6
 *               UNREACH_IP UNREACH_IP6 PROHIBIT_IP
 *
 * ONESHOT_PORT: a server on HTTP_IP/HTTP_IP6 that tests/e2e/probes.sh starts
 * before each run. It accepts one connection and writes "1\n"; accepts a
 * second one, closes its listener and only then writes "closed\n". So once
 * the probe has read "closed", the port refuses. A supervisor that trusts a
 * destination it reached a moment ago (and answers connect() before the pod
 * did) gives a reset later instead of the refusal. The other addresses fail
 * in the pod's routing table: no route, an `unreachable` route, a
 * `prohibit` route. */
#include "probe.h"

#include <fcntl.h>

static long conn(int fd, const void *sa, socklen_t len)
{
	return raw_syscall(SYS_connect, (uint64_t)fd, P(sa), len, 0, 0, 0);
}

/* A line from the one-shot server, or a "<...>" description. */
static const char *line_from(int fd)
{
	static char buf[64];
	size_t have = 0;

	while (have < sizeof(buf) - 1) {
		long r = raw_syscall(SYS_recvfrom, (uint64_t)fd, P(buf + have), 1, 0, 0, 0);
		if (r == -EINTR)
			continue;
		if (r <= 0) {
			snprintf(buf, sizeof(buf), "<recv %s>", res(r));
			return buf;
		}
		if (buf[have] == '\n')
			break;
		have++;
	}
	buf[have] = '\0';
	return buf;
}

/* Connect, blocking then non-blocking (errno at connect, or EINPROGRESS
 * and SO_ERROR after poll), one line each. */
static void both_ways(const char *what, int family, int type, const void *sa, socklen_t len)
{
	int fd = sock(family, type);
	long r;

	say("%s blocking: connect = %s", what, res(conn(fd, sa, len)));
	close(fd);
	fd = sock(family, type);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		die("fcntl: %s", strerror(errno));
	r = conn(fd, sa, len);
	if (r == -EINPROGRESS)
		say("%s non-blocking: connect = %s, SO_ERROR = %s", what, res(r),
		    so_error_after_poll(fd));
	else
		say("%s non-blocking: connect = %s", what, res(r));
	close(fd);
}

/* Refused right after being accepted. */
static void accepted_then_refused(struct pod pod, int port)
{
	struct sockaddr_in a4 = sin4(pod.http_ip, port);
	struct sockaddr_in6 a6 = sin6(pod.http_ip6, port);
	int fd;

	fd = sock(AF_INET, SOCK_STREAM);
	say("oneshot v4 first: connect = %s", res(conn(fd, &a4, sizeof(a4))));
	say("oneshot v4 first: server says '%s'", line_from(fd));
	close(fd);
	fd = sock(AF_INET6, SOCK_STREAM);
	say("oneshot v6 first: connect = %s", res(conn(fd, &a6, sizeof(a6))));
	/* After this line the server's listener is closed. */
	say("oneshot v6 first: server says '%s'", line_from(fd));
	close(fd);
	both_ways("oneshot v4 again", AF_INET, SOCK_STREAM, &a4, sizeof(a4));
	both_ways("oneshot v6 again", AF_INET6, SOCK_STREAM, &a6, sizeof(a6));
}

/* TCP only: a UDP connect() is answered locally, without asking the pod
 * (docs/INTERNALS.md, "Where the code departs"), so it succeeds where the
 * pod's kernel would fail it on the route. */
static void unreachable(const char *label, const char *ip, int port)
{
	if (strchr(ip, ':')) {
		struct sockaddr_in6 a = sin6(ip, port);
		both_ways(label, AF_INET6, SOCK_STREAM, &a, sizeof(a));
	} else {
		struct sockaddr_in a = sin4(ip, port);
		both_ways(label, AF_INET, SOCK_STREAM, &a, sizeof(a));
	}
}

int main(int argc, char **argv)
{
	struct pod pod = pod_args(argc, argv);

	if (argc < 14)
		die("usage: %s <7 pod arguments> ONESHOT_PORT NOROUTE_IP NOROUTE_IP6 UNREACH_IP "
		    "UNREACH_IP6 PROHIBIT_IP",
		    argv[0]);
	accepted_then_refused(pod, atoi(argv[8]));
	unreachable("no route v4", argv[9], pod.http_port);
	unreachable("no route v6", argv[10], pod.http_port);
	unreachable("unreachable route v4", argv[11], pod.http_port);
	unreachable("unreachable route v6", argv[12], pod.http_port);
	unreachable("prohibit route v4", argv[13], pod.http_port);
	return 0;
}
