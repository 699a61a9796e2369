/* The session over a transport of its own (session_open_io) that buffers
 * the way TLS does: it reads everything the socket has in one go and hands
 * it out in small pieces, so bytes wait in the transport while the fd
 * shows nothing readable; and it queues writes, wanting POLLOUT until they
 * are sent. The blocking startup (handshake, env) and the event-loop path
 * (a relayed TCP echo of 2 MiB) must both work.
 * And over its own socket (session_open), where large DATA payloads are
 * spliced from the link to the program's socket: a relayed download of
 * 32 MiB whose reader stops now and then (the socket fills, bytes take
 * the buffer) and makes blocking requests in the middle of frames.
 * Usage: test_session_io PATH-TO-AGENT [TEST] */
#include "tests/agent/agent_harness.h"
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

#define PIECE 7            /* bytes per read() handed out */
#define WQ_CAP (64u << 10) /* the transport's own write queue */
#define TOTAL (2u << 20)   /* echoed bytes */
#define SPLICE_TOTAL (32u << 20)
#define SPLICE_PAUSE (3u << 20) /* the reader stops after each of these */
#define MIN_SZ(a, b) ((a) < (b) ? (a) : (b))

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

static uint16_t agent_start_targetless(pid_t *ret_pid)
{
	static const char *const mode[] = {"targetless", NULL};
	struct agent_run ar;

	agent_start(&ar, 10, ENV_MARK, mode);
	*ret_pid = ar.pid;
	return ar.port;
}

static int connect_port(uint16_t port)
{
	int fd = tcp_connect_port(port);

	CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	return fd;
}

/* A server on 127.0.0.1 whose one connection serve() handles in a child. */
static struct sockaddr_in serve_one(void (*serve)(int conn, size_t arg), size_t arg)
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
		if (c >= 0)
			serve(c, arg);
		_exit(0);
	}
	close(l);
	return sa;
}

static void echo(int c, size_t unused)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(c, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(c, buf + off, (size_t)(n - off));
			if (w <= 0)
				_exit(1);
			off += w;
		}
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 31 + (i >> 11));
}

/* Write total pattern bytes as fast as they go, then close. */
static void source(int c, size_t total)
{
	static uint8_t buf[1 << 20];

	for (size_t off = 0; off < total;) {
		size_t n = MIN_SZ(sizeof(buf), total - off);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(off + i);
		for (size_t w = 0; w < n;) {
			ssize_t k = write(c, buf + w, n - w);
			if (k <= 0)
				_exit(1);
			w += (size_t)k;
		}
		off += n;
	}
}

struct echo {
	struct evloop *l;
	struct session *s;
	struct sockaddr_in dst;
	int fd;
	size_t total, sent, received;
	size_t pause_every, next_pause; /* 0: never */
	unsigned pauses, syncs;
	bool bad;
};

/* A blocking request from a timer, while frames keep coming: now and then
 * in the middle of one. */
static void echo_sync(struct evloop *l, void *data)
{
	struct echo *e = data;
	char **env = NULL;
	size_t nenv = 0;

	CHECK(session_fetch_env(e->s, &env, &nenv) == 0);
	for (size_t i = 0; i < nenv; i++)
		free(env[i]);
	free(env);
	e->syncs++;
	evloop_timer(l, 1, echo_sync, e);
}

static void echo_io(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct echo *e = data;
	uint8_t buf[65536];

	while (e->sent < e->total) {
		size_t n = MIN_SZ(sizeof(buf), e->total - e->sent);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(e->sent + i);
		ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		e->sent += (size_t)w;
	}
	if (e->sent == e->total)
		evloop_mod(l, fd, EPOLLIN);
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pattern(e->received + (size_t)i))
				e->bad = true;
		e->received += (size_t)n;
		if (e->pause_every && e->received >= e->next_pause) {
			/* Stop reading for a while: the relay's socket fills. */
			e->next_pause += e->pause_every;
			e->pauses++;
			usleep(50 * 1000);
		}
	}
	if (e->received == e->total || e->bad)
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
	struct echo e = {.fd = -1, .total = TOTAL};
	pid_t agent;
	uint16_t port = agent_start_targetless(&agent);
	char *why = NULL, **env = NULL;
	size_t nenv = 0;
	bool mark = false;

	e.dst = serve_one(echo, 0);
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

TEST(own_socket_splice)
{
	/* Download only: nothing to send. */
	struct echo e = {
	        .fd = -1, .total = SPLICE_TOTAL, .sent = SPLICE_TOTAL, .pause_every = SPLICE_PAUSE};
	struct session_stats st;
	pid_t agent;
	uint16_t port = agent_start_targetless(&agent);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons(port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char *why = NULL;

	e.next_pause = e.pause_every;
	e.dst = serve_one(source, SPLICE_TOTAL);
	CHECK(evloop_new(&e.l) == 0);
	int r = session_open(e.l, (struct sockaddr *)&sa, sizeof(sa), 5000, &e.s, &why);
	if (r < 0)
		fprintf(stderr, "session_open: %s\n", why);
	CHECK(r == 0);
	CHECK(session_connect(e.s, SOCK_STREAM, (struct sockaddr *)&e.dst, sizeof(e.dst), on_open,
	                      &e) > 0);
	evloop_timer(e.l, 1, echo_sync, &e);
	CHECK(evloop_run(e.l) >= 0);
	CHECK(!e.bad);
	CHECK(e.received == SPLICE_TOTAL);
	CHECK(e.syncs > 0);
	CHECK(e.pauses == SPLICE_TOTAL / SPLICE_PAUSE);
	CHECK(session_alive(e.s));
	session_get_stats(e.s, &st);
	fprintf(stderr, "%llu of %llu bytes spliced\n", (unsigned long long)st.bytes_spliced,
	        (unsigned long long)st.bytes_down);
	CHECK(st.bytes_down == SPLICE_TOTAL);
	/* Both ways were taken: the pipe, and rbuf or the buffer. */
	CHECK(st.bytes_spliced > 0);
	CHECK(st.bytes_spliced < st.bytes_down);
	evloop_del(e.l, e.fd);
	close(e.fd);
	session_free(e.s);
	evloop_free(e.l);
	kill(agent, SIGKILL);
}

TEST_MAIN_WITH_ARG(agent_path, "PATH-TO-mirrord-trace-agent")
