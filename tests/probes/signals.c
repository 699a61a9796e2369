/* Interrupted and restarted syscalls on relayed sockets.
 *
 * A thread blocked in recvfrom() on a socket that goes through the agent
 * gets SIGALRM (tgkill, once it is seen sleeping): without SA_RESTART the
 * call returns EINTR, with it the call restarts transparently and returns
 * the data a helper thread makes arrive afterwards. Then 20 connects (and
 * GETs) while a 1 ms interval timer fires with SA_RESTART: all succeed.
 * The sockets have no SO_RCVTIMEO/SO_SNDTIMEO (the kernel never restarts
 * calls with a timeout); the helper thread always makes the data arrive, and
 * the e2e harness bounds the whole run. */
#include "probe.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

static volatile sig_atomic_t alarms;
static struct pod pod;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void handle_alarm(int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		die("sigaction: %s", strerror(errno));
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The helper: wait until the blocked thread sleeps in the kernel, signal
 * it, then make its data arrive. */
struct helper {
	pid_t tid; /* the thread blocked in recvfrom */
	int fd;    /* where to send */
	const void *msg;
	size_t len;
	const struct sockaddr *to; /* sendto address, or NULL for send */
	socklen_t tolen;
	int slept; /* whether the thread was seen in state S */
};

static int thread_sleeping(pid_t tid)
{
	char path[64], buf[256];
	FILE *f;
	int sleeping = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f)) {
		char *p = strrchr(buf, ')');
		sleeping = p && p[1] == ' ' && p[2] == 'S';
	}
	fclose(f);
	return sleeping;
}

static void *helper_main(void *arg)
{
	struct helper *h = arg;

	/* Up to 3 s for the thread to block; then 100 ms more so that it is
	 * surely in the recv and not on its way there. */
	for (int i = 0; i < 300 && !h->slept; i++) {
		sleep_ms(10);
		h->slept = thread_sleeping(h->tid);
	}
	sleep_ms(100);
	syscall(SYS_tgkill, getpid(), h->tid, SIGALRM);
	sleep_ms(200);
	raw_syscall(SYS_sendto, (uint64_t)h->fd, P(h->msg), h->len, MSG_NOSIGNAL, P(h->to),
	            h->to ? h->tolen : 0);
	return NULL;
}

/* recvfrom on fd while the helper signals and then sends; prints what the
 * first recvfrom returned, and with EINTR what a second one gets. */
static void interrupted_recv(const char *what, int fd, int restart, const void *msg, size_t len,
                             const struct sockaddr *to, socklen_t tolen, int want_src)
{
	struct helper h = {(pid_t)syscall(SYS_gettid), fd, msg, len, to, tolen, 0};
	char buf[256], a[80];
	struct sockaddr_storage src;
	socklen_t srclen = sizeof(src);
	pthread_t t;
	long r;

	handle_alarm(restart ? SA_RESTART : 0);
	alarms = 0;
	if (pthread_create(&t, NULL, helper_main, &h) != 0)
		die("pthread_create");
	memset(&src, 0, sizeof(src));
	r = raw_syscall(SYS_recvfrom, (uint64_t)fd, P(buf), sizeof(buf) - 1, 0,
	                want_src ? P(&src) : 0, want_src ? P(&srclen) : 0);
	char first[40];
	snprintf(first, sizeof(first), "%s", r > 0 ? "data" : res(r));
	if (r == -EINTR) {
		srclen = sizeof(src);
		r = raw_syscall(SYS_recvfrom, (uint64_t)fd, P(buf), sizeof(buf) - 1, 0,
		                want_src ? P(&src) : 0, want_src ? P(&srclen) : 0);
	}
	pthread_join(t, NULL);
	/* Only the start of the data is stable (an HTTP status line). */
	if (r > 0) {
		buf[r] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		if (r > 12)
			buf[12] = '\0';
	}
	say("%s %s: first recvfrom = %s, got %s '%s'%s%s, handler ran %d time(s)%s", what,
	    restart ? "SA_RESTART" : "no SA_RESTART", first, r > 0 ? "data" : res(r),
	    r > 0 ? buf : "", want_src ? " from " : "", want_src ? sa_str(&src, a, sizeof(a)) : "",
	    (int)alarms, h.slept ? "" : " (never saw the thread sleep)");
	signal(SIGALRM, SIG_IGN);
}

static void recv_cases(int restart)
{
	struct sockaddr_in h4 = sin4(pod.http_ip, pod.http_port);
	struct sockaddr_in u4 = sin4(pod.udp_ip, pod.udp_port);
	static const char get[] = "GET / HTTP/1.0\r\nHost: probe\r\n\r\n";
	int fd;
	long r;

	/* TCP through the agent's relay: the request is sent only after the
	 * signal, so the recv really blocks. */
	fd = sock_restartable(AF_INET, SOCK_STREAM);
	r = raw_syscall(SYS_connect, (uint64_t)fd, P(&h4), sizeof(h4), 0, 0, 0);
	if (r == 0)
		interrupted_recv("tcp recv", fd, restart, get, sizeof(get) - 1, NULL, 0, 0);
	else
		say("tcp recv: connect = %s", res(r));
	close(fd);

	/* Connected UDP through the agent. */
	fd = sock_restartable(AF_INET, SOCK_DGRAM);
	r = raw_syscall(SYS_connect, (uint64_t)fd, P(&u4), sizeof(u4), 0, 0, 0);
	if (r == 0)
		interrupted_recv("udp connected recv", fd, restart, "ping-c", 6, NULL, 0, 1);
	else
		say("udp connected recv: connect = %s", res(r));
	close(fd);

	/* Unconnected UDP: one round trip sets the flow up, then a blocked
	 * recvfrom whose source address must still be rewritten after the
	 * interruption. */
	fd = sock_restartable(AF_INET, SOCK_DGRAM);
	char buf[64];
	r = raw_syscall(SYS_sendto, (uint64_t)fd, P("ping-0"), 6, 0, P(&u4), sizeof(u4));
	if (r == 6)
		r = raw_syscall(SYS_recvfrom, (uint64_t)fd, P(buf), sizeof(buf), 0, 0, 0);
	if (r == 6)
		interrupted_recv("udp recvfrom", fd, restart, "ping-u", 6, (struct sockaddr *)&u4,
		                 sizeof(u4), 1);
	else
		say("udp recvfrom: first round trip = %s", res(r));
	close(fd);
}

/* 20 connects + GETs while SIGALRM fires every millisecond (SA_RESTART). */
static void connects_under_timer(void)
{
	struct sockaddr_in h4 = sin4(pod.http_ip, pod.http_port);
	struct itimerval it = {{0, 1000}, {0, 1000}}, off = {{0, 0}, {0, 0}};
	int ok = 0, bodies = 0;
	char first_err[120] = "";

	handle_alarm(SA_RESTART);
	alarms = 0;
	if (setitimer(ITIMER_REAL, &it, NULL) < 0)
		die("setitimer: %s", strerror(errno));
	for (int i = 0; i < 20; i++) {
		int fd = sock_restartable(AF_INET, SOCK_STREAM);
		long r = raw_syscall(SYS_connect, (uint64_t)fd, P(&h4), sizeof(h4), 0, 0, 0);
		if (r == 0) {
			ok++;
			const char *body = http_get(fd);
			if (strcmp(body, "hello from the pod") == 0)
				bodies++;
			else if (!first_err[0])
				snprintf(first_err, sizeof(first_err), " (#%d body %.60s)", i,
				         body);
		} else if (!first_err[0]) {
			snprintf(first_err, sizeof(first_err), " (#%d connect %s)", i, res(r));
		}
		close(fd);
	}
	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_IGN);
	say("20 connects under a 1 ms SA_RESTART timer: %d connected, %d bodies%s", ok, bodies,
	    first_err);
}

int main(int argc, char **argv)
{
	pod = pod_args(argc, argv);
	recv_cases(0);
	recv_cases(1);
	connects_under_timer();
	return 0;
}
