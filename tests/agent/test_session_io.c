/* The session over a transport of its own (session_open_io) that buffers
 * the way TLS does: it reads everything the socket has in one go and hands
 * it out in small pieces, so bytes wait in the transport while the fd
 * shows nothing readable; and it queues writes, wanting POLLOUT until they
 * are sent. The blocking startup (handshake, env) and the event-loop path
 * (a relayed TCP echo of 2 MiB) must both work.
 * Usage: test_session_io PATH-TO-AGENT [TEST] */
#include "tests/unit/test.h"
#include "common/evloop.h"
#include "common/util.h"
#include "session/session.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#define ENV_MARK "MT_SESSION_IO_MARK=tls-like-3b1c"
#define PIECE 7            /* bytes per read() handed out */
#define WQ_CAP (64u << 10) /* the transport's own write queue */
#define TOTAL (2u << 20)   /* echoed bytes */
#define MIN_SZ(a, b) ((a) < (b) ? (a) : (b))

static const char *agent_path;

struct bufio {
	int fd;
	uint8_t rbuf[1 << 20];
	size_t rlen, roff;
	uint8_t wbuf[WQ_CAP];
	size_t wlen;
	size_t reads_from_buffer; /* reads served without touching the fd */
};

static int bio_fd(void *data)
{
	return ((struct bufio *)data)->fd;
}

static short bio_events(void *data)
{
	struct bufio *b = data;
	return (short)(POLLIN | (b->wlen ? POLLOUT : 0));
}

static int bio_flush(void *data)
{
	struct bufio *b = data;

	while (b->wlen) {
		ssize_t n = send(b->fd, b->wbuf, b->wlen, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN ? -EAGAIN : -errno;
		memmove(b->wbuf, b->wbuf + n, b->wlen - (size_t)n);
		b->wlen -= (size_t)n;
	}
	return 0;
}

static ssize_t bio_read(void *data, void *buf, size_t len)
{
	struct bufio *b = data;

	if (b->roff == b->rlen) {
		ssize_t n = recv(b->fd, b->rbuf, sizeof(b->rbuf), 0);
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		b->rlen = (size_t)n;
		b->roff = 0;
	} else {
		b->reads_from_buffer++;
	}
	size_t n = MIN_SZ(MIN_SZ(len, (size_t)PIECE), b->rlen - b->roff);
	memcpy(buf, b->rbuf + b->roff, n);
	b->roff += n;
	return (ssize_t)n;
}

static ssize_t bio_write(void *data, const void *buf, size_t len)
{
	struct bufio *b = data;
	size_t n = MIN_SZ(len, WQ_CAP - b->wlen);

	if (!n)
		return -EAGAIN;
	memcpy(b->wbuf + b->wlen, buf, n);
	b->wlen += n;
	int r = bio_flush(b);
	return r < 0 && r != -EAGAIN ? r : (ssize_t)n;
}

static void bio_close(void *data)
{
	close(((struct bufio *)data)->fd);
}

static uint16_t agent_start(pid_t *ret_pid)
{
	const char *argv[] = {agent_path, "--listen",    "127.0.0.1:0", "--communication-timeout",
	                      "10",       "--log-level", "warn",        "targetless",
	                      NULL};
	char line[256];
	unsigned long port = 0;
	int p[2];
	FILE *f;

	CHECK(pipe2(p, O_CLOEXEC) == 0);
	*ret_pid = fork();
	CHECK(*ret_pid >= 0);
	if (*ret_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], STDOUT_FILENO);
		putenv((char *)ENV_MARK);
		execv(agent_path, (char **)argv);
		_exit(127);
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	CHECK(f);
	CHECK(fgets(line, sizeof(line), f));
	CHECK(sscanf(line, "listening on 127.0.0.1:%lu", &port) == 1);
	CHECK(fgets(line, sizeof(line), f));
	CHECK(strncmp(line, "agent ready", 11) == 0);
	return (uint16_t)port;
}

static int connect_port(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons(port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	return fd;
}

/* An echo server on 127.0.0.1 (one connection), in a child. */
static struct sockaddr_in echo_server(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(l >= 0);
	CHECK(bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(l, 1) == 0);
	CHECK(getsockname(l, (struct sockaddr *)&sa, &sl) == 0);
	pid_t p = fork();
	CHECK(p >= 0);
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int c = accept(l, NULL, NULL);
		char buf[65536];
		ssize_t n;
		while (c >= 0 && (n = read(c, buf, sizeof(buf))) > 0)
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(c, buf + off, (size_t)(n - off));
				if (w <= 0)
					_exit(1);
				off += w;
			}
		_exit(0);
	}
	close(l);
	return sa;
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 31 + (i >> 11));
}

struct echo {
	struct evloop *l;
	struct session *s;
	struct sockaddr_in dst;
	int fd;
	size_t sent, received;
	bool bad;
};

static void echo_io(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct echo *e = data;
	uint8_t buf[65536];

	while (e->sent < TOTAL) {
		size_t n = MIN_SZ(sizeof(buf), TOTAL - e->sent);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(e->sent + i);
		ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		e->sent += (size_t)w;
	}
	if (e->sent == TOTAL)
		evloop_mod(l, fd, EPOLLIN);
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pattern(e->received + (size_t)i))
				e->bad = true;
		e->received += (size_t)n;
	}
	if (e->received == TOTAL || e->bad)
		evloop_quit(l, 0);
}

static void on_open(void *data, int err, uint32_t stream)
{
	struct echo *e = data;

	CHECK(err == 0);
	e->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(e->fd >= 0);
	int r = session_attach_tcp(e->s, stream, e->fd, (struct sockaddr *)&e->dst, sizeof(e->dst));
	CHECK(r == 0 || r == -EINPROGRESS);
	CHECK(evloop_add(e->l, e->fd, EPOLLIN | EPOLLOUT, echo_io, e) == 0);
}

TEST(buffering_transport)
{
	static struct bufio b;
	struct echo e = {.fd = -1};
	pid_t agent;
	uint16_t port = agent_start(&agent);
	char *why = NULL, **env = NULL;
	size_t nenv = 0;
	bool mark = false;

	e.dst = echo_server();
	b.fd = connect_port(port);
	struct session_io io = {
	        .data = &b,
	        .fd = bio_fd,
	        .events = bio_events,
	        .read = bio_read,
	        .write = bio_write,
	        .flush = bio_flush,
	        .close = bio_close,
	};
	CHECK(evloop_new(&e.l) == 0);
	int r = session_open_io(e.l, &io, "test transport", 5000, &e.s, &why);
	if (r < 0)
		fprintf(stderr, "session_open_io: %s\n", why);
	CHECK(r == 0);
	CHECK_STR(session_agent_mode(e.s), "targetless");

	/* Blocking startup request: the reply sits in the transport's
	 * buffer after the first read, invisible to poll(). */
	CHECK(session_fetch_env(e.s, &env, &nenv) == 0);
	for (size_t i = 0; i < nenv; i++) {
		if (!strcmp(env[i], ENV_MARK))
			mark = true;
		free(env[i]);
	}
	free(env);
	CHECK(mark);
	CHECK(b.reads_from_buffer > 0);

	/* The event-loop path. */
	CHECK(session_connect(e.s, SOCK_STREAM, (struct sockaddr *)&e.dst, sizeof(e.dst), on_open,
	                      &e) > 0);
	CHECK(evloop_run(e.l) >= 0);
	CHECK(!e.bad);
	CHECK(e.received == TOTAL);
	CHECK(session_alive(e.s));
	evloop_del(e.l, e.fd);
	close(e.fd);
	session_free(e.s);
	evloop_free(e.l);
	kill(agent, SIGKILL);
}

TEST_MAIN_WITH_ARG(agent_path, "PATH-TO-mirrord-trace-agent")
