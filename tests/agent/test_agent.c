/* mirrord-trace-agent over its real wire protocol: each test starts the
 * agent binary on 127.0.0.1:0 and talks to it as a client would.
 * Usage: test_agent PATH-TO-AGENT [TEST-NAME]
 * Only loopback addresses; every wait is bounded; children get
 * PR_SET_PDEATHSIG so a failing test leaves no process behind. */
#include "tests/unit/test.h"
#include "tests/agent/agent_harness.h"
#include "agentproto/agentproto.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

TEST(handshake_and_ping)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;

	setup(&ar, &c, NULL);
	send_msg(&c, &(struct ap_msg){.type = AP_PING, .id = 77});
	recv_type(&c, AP_PONG, &m);
	CHECK_EQ(m.id, 77);
	teardown(&ar, &c);
}

TEST(env_request)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	struct ap_bytes e;
	size_t off = 0;
	bool found = false;

	setup(&ar, &c, ENV_MARK);
	send_msg(&c, &(struct ap_msg){.type = AP_ENV_REQ, .id = 5});
	recv_type(&c, AP_ENV_RESP, &m);
	CHECK_EQ(m.id, 5);
	CHECK_EQ(m.u.env_resp.err, 0);
	CHECK(m.u.env_resp.count > 0);
	while (ap_env_next(&m.u.env_resp.entries, &off, &e) == 1)
		found |= bytes_eq(&e, ENV_MARK);
	CHECK(found);
	teardown(&ar, &c);
}

static void file_req(struct conn *c, uint32_t id, const char *path, struct ap_msg *m)
{
	send_msg(c, &(struct ap_msg){
	                    .type = AP_FILE_REQ,
	                    .id = id,
	                    .u.file_req.path = {(const uint8_t *)path, (uint32_t)strlen(path)}});
	recv_type(c, AP_FILE_RESP, m);
	CHECK_EQ(m->id, id);
}

TEST(file_requests)
{
	static const char content[] = "remote file content\n";
	char path[] = "/tmp/mt-agent-test-XXXXXX";
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	CHECK_EQ(write_all(fd, content, sizeof(content) - 1), 0);
	close(fd);
	setup(&ar, &c, NULL);
	file_req(&c, 1, path, &m);
	CHECK_EQ(m.u.file_resp.err, 0);
	CHECK(bytes_eq(&m.u.file_resp.content, content));
	file_req(&c, 2, "/nonexistent/mt-agent-test", &m);
	CHECK_EQ(m.u.file_resp.err, ENOENT);
	file_req(&c, 3, "/tmp", &m);
	CHECK_EQ(m.u.file_resp.err, EISDIR);
	file_req(&c, 4, "tmp/relative", &m);
	CHECK_EQ(m.u.file_resp.err, EINVAL);
	/* /proc/self/root is a magic link: refused, or it would lead out of
	 * any root. */
	file_req(&c, 5, "/proc/self/root/etc/hostname", &m);
	CHECK_EQ(m.u.file_resp.err, ELOOP);
	unlink(path);
	teardown(&ar, &c);
}

TEST(tcp_echo_halfclose_credit)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	uint16_t port;
	int lfd = listener(SOCK_STREAM, &port), rfd;
	char buf[16];

	setup(&ar, &c, NULL);
	send_connect(&c, 9, 1, AP_PROTO_TCP, port, AP_DEFAULT_WINDOW);
	recv_type(&c, AP_CONNECT_RESP, &m);
	CHECK_EQ(m.id, 9);
	CHECK_EQ(m.u.connect_resp.err, 0);
	CHECK_EQ(m.u.connect_resp.stream, 1);
	CHECK_EQ(m.u.connect_resp.local.family, 4);
	CHECK(m.u.connect_resp.local.port != 0);
	rfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(rfd >= 0);

	/* client → remote; the agent credits what it wrote in batches of
	 * AP_CREDIT_BATCH, not per frame: the PONG comes first. */
	send_data(&c, 1, "hello");
	read_exact(rfd, buf, 5);
	CHECK(!memcmp(buf, "hello", 5));
	send_msg(&c, &(struct ap_msg){.type = AP_PING, .id = 42});
	CHECK_EQ(recv_msg(&c, &m, WAIT_MS), 1);
	CHECK_EQ(m.type, AP_PONG);
	CHECK_EQ(m.id, 42);
	/* The rest of a batch: one CREDIT for all of it, once written. */
	static uint8_t chunk[AP_MAX_DATA];
	for (uint32_t left = AP_CREDIT_BATCH - 5; left;) {
		uint32_t k = left < sizeof(chunk) ? left : (uint32_t)sizeof(chunk);
		send_msg(&c, &(struct ap_msg){.type = AP_DATA, .id = 1, .u.data.data = {chunk, k}});
		left -= k;
	}
	for (uint32_t left = AP_CREDIT_BATCH - 5; left;) {
		char sink[16384];
		uint32_t k = left < sizeof(sink) ? left : (uint32_t)sizeof(sink);
		read_exact(rfd, sink, k);
		left -= k;
	}
	recv_type(&c, AP_CREDIT, &m);
	CHECK_EQ(m.id, 1);
	CHECK_EQ(m.u.credit.bytes, AP_CREDIT_BATCH);

	/* remote → client */
	CHECK_EQ(write_all(rfd, "world", 5), 0);
	recv_type(&c, AP_DATA, &m);
	CHECK_EQ(m.id, 1);
	CHECK(bytes_eq(&m.u.data.data, "world"));
	send_credit(&c, 1, 5);

	/* client half-closes: the remote sees EOF and can still answer */
	send_msg(&c, &(struct ap_msg){.type = AP_CLOSE, .id = 1, .u.close = {AP_CLOSE_FIN, 0}});
	struct pollfd p = {.fd = rfd, .events = POLLIN};
	CHECK(poll(&p, 1, WAIT_MS) == 1);
	CHECK_EQ(read(rfd, buf, sizeof(buf)), 0);
	CHECK_EQ(write_all(rfd, "late", 4), 0);
	recv_type(&c, AP_DATA, &m);
	CHECK(bytes_eq(&m.u.data.data, "late"));
	close(rfd);
	recv_type(&c, AP_CLOSE, &m);
	CHECK_EQ(m.id, 1);
	CHECK_EQ(m.u.close.how, AP_CLOSE_FIN);

	/* The stream is gone: its id can be reused. */
	send_connect(&c, 10, 1, AP_PROTO_TCP, port, AP_DEFAULT_WINDOW);
	recv_type(&c, AP_CONNECT_RESP, &m);
	CHECK_EQ(m.u.connect_resp.err, 0);
	/* ... and a second CONNECT with it while open is refused. */
	send_connect(&c, 11, 1, AP_PROTO_TCP, port, AP_DEFAULT_WINDOW);
	recv_type(&c, AP_CONNECT_RESP, &m);
	CHECK_EQ(m.id, 11);
	CHECK_EQ(m.u.connect_resp.err, EEXIST);
	close(lfd);
	teardown(&ar, &c);
}

/* A server that answers and closes at once (HTTP with Connection: close):
 * the agent reads the FIN with the last bytes when epoll saw both
 * (EPOLLRDHUP); every byte must still come, in order, before one FIN.
 * Small answer, and one of several frames ending in a short one. */
TEST(tcp_answer_then_close)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	uint16_t port;
	int lfd = listener(SOCK_STREAM, &port);
	static uint8_t big[3 * AP_MAX_DATA + 7];
	const size_t sizes[] = {6, sizeof(big)};

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 1);
	memcpy(big, "answer", 6);
	setup(&ar, &c, NULL);
	for (uint32_t k = 0; k < 2; k++) {
		uint32_t id = 20 + k;
		send_connect(&c, 30 + k, id, AP_PROTO_TCP, port, AP_DEFAULT_WINDOW);
		recv_type(&c, AP_CONNECT_RESP, &m);
		CHECK_EQ(m.u.connect_resp.err, 0);
		int rfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		CHECK(rfd >= 0);
		CHECK_EQ(write_all(rfd, (const char *)big, sizes[k]), 0);
		close(rfd);
		size_t got = 0;
		for (;;) {
			CHECK_EQ(recv_msg(&c, &m, WAIT_MS), 1);
			CHECK_EQ(m.id, id);
			if (m.type == AP_CLOSE)
				break;
			CHECK_EQ(m.type, AP_DATA);
			CHECK(got + m.u.data.data.len <= sizes[k]);
			CHECK(!memcmp(m.u.data.data.ptr, big + got, m.u.data.data.len));
			got += m.u.data.data.len;
		}
		CHECK_EQ(got, sizes[k]);
		CHECK_EQ(m.u.close.how, AP_CLOSE_FIN);
		CHECK_EQ(m.u.close.err, 0);
		send_msg(&c, &(struct ap_msg){
		                     .type = AP_CLOSE, .id = id, .u.close = {AP_CLOSE_FIN, 0}});
	}
	close(lfd);
	teardown(&ar, &c);
}

/* A client link that drops without a goodbye (a port-forward cut): the
 * agent ends that client's streams, stays up, and serves a client that
 * comes back within --communication-timeout. */
TEST(reconnect_after_drop)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	uint16_t port;
	int lfd = listener(SOCK_STREAM, &port), rfd;
	char buf[16];

	setup(&ar, &c, NULL);
	send_connect(&c, 1, 1, AP_PROTO_TCP, port, AP_DEFAULT_WINDOW);
	recv_type(&c, AP_CONNECT_RESP, &m);
	CHECK_EQ(m.u.connect_resp.err, 0);
	rfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(rfd >= 0);
	close(c.fd);
	free(c.buf);

	/* The old stream's remote end is closed... */
	struct pollfd p = {.fd = rfd, .events = POLLIN};
	CHECK(poll(&p, 1, WAIT_MS) == 1);
	CHECK(read(rfd, buf, sizeof(buf)) <= 0);
	close(rfd);
	/* ...the agent is still there, and a new link works from scratch
	 * (the same stream id is free again). */
	CHECK_EQ(agent_wait(&ar, 200), -1);
	conn_open(&c, &ar);
	handshake(&c, "targetless");
	send_connect(&c, 2, 1, AP_PROTO_TCP, port, AP_DEFAULT_WINDOW);
	recv_type(&c, AP_CONNECT_RESP, &m);
	CHECK_EQ(m.u.connect_resp.err, 0);
	rfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(rfd >= 0);
	send_data(&c, 1, "again");
	read_exact(rfd, buf, 5);
	CHECK(!memcmp(buf, "again", 5));
	close(rfd);
	close(lfd);
	teardown(&ar, &c);
}

/* Nobody comes back: the agent exits 0 after --communication-timeout. */
TEST(drop_then_timeout)
{
	static const char *const mode[] = {"targetless", NULL};
	struct agent_run ar;
	struct conn c;

	agent_start(&ar, 1, NULL, mode);
	conn_open(&c, &ar);
	handshake(&c, "targetless");
	close(c.fd);
	free(c.buf);
	int st = agent_wait(&ar, WAIT_MS);
	CHECK(st != -1);
	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
}

TEST(tcp_window_respected)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	uint16_t port;
	int lfd = listener(SOCK_STREAM, &port), rfd;
	uint32_t got = 0;

	setup(&ar, &c, NULL);
	send_connect(&c, 1, 3, AP_PROTO_TCP, port, 8);
	recv_type(&c, AP_CONNECT_RESP, &m);
	CHECK_EQ(m.u.connect_resp.err, 0);
	rfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(rfd >= 0);
	CHECK_EQ(write_all(rfd, "0123456789abcdefghij", 20), 0);
	while (got < 8) {
		recv_type(&c, AP_DATA, &m);
		got += m.u.data.data.len;
	}
	CHECK_EQ(got, 8);
	/* Window exhausted: nothing more until we grant credit. */
	CHECK_EQ(recv_msg(&c, &m, 300), -1);
	send_credit(&c, 3, 8);
	while (got < 16) {
		recv_type(&c, AP_DATA, &m);
		got += m.u.data.data.len;
	}
	CHECK_EQ(got, 16);
	/* Credit beyond what was sent is a protocol error. */
	send_credit(&c, 3, 1000);
	recv_type(&c, AP_ERROR, &m);
	close(rfd);
	close(lfd);
	close(c.fd);
	int st = agent_wait(&ar, WAIT_MS);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0);
}

TEST(tcp_connection_refused)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	uint16_t port;
	/* A bound but not listening socket: its port refuses connections
	 * and no one else can take it during the test. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);

	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
	port = ntohs(sa.sin_port);
	setup(&ar, &c, NULL);
	send_connect(&c, 4, 2, AP_PROTO_TCP, port, AP_DEFAULT_WINDOW);
	recv_type(&c, AP_CONNECT_RESP, &m);
	CHECK_EQ(m.id, 4);
	CHECK_EQ(m.u.connect_resp.err, ECONNREFUSED);
	close(fd);
	teardown(&ar, &c);
}

TEST(udp_echo)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	uint16_t port;
	int ufd = listener(SOCK_DGRAM, &port);
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	char buf[64];

	setup(&ar, &c, NULL);
	send_connect(&c, 6, 7, AP_PROTO_UDP, port, AP_DEFAULT_WINDOW);
	recv_type(&c, AP_CONNECT_RESP, &m);
	CHECK_EQ(m.u.connect_resp.err, 0);
	send_data(&c, 7, "ping");
	struct pollfd p = {.fd = ufd, .events = POLLIN};
	CHECK(poll(&p, 1, WAIT_MS) == 1);
	CHECK_EQ(recvfrom(ufd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl), 4);
	CHECK(!memcmp(buf, "ping", 4));
	CHECK_EQ(ntohs(from.sin_port), m.u.connect_resp.local.port);
	CHECK_EQ(sendto(ufd, "pong!", 5, 0, (struct sockaddr *)&from, fl), 5);
	recv_type(&c, AP_DATA, &m);
	CHECK_EQ(m.id, 7);
	CHECK(bytes_eq(&m.u.data.data, "pong!"));
	send_msg(&c, &(struct ap_msg){.type = AP_CLOSE, .id = 7, .u.close = {AP_CLOSE_FIN, 0}});
	close(ufd);
	teardown(&ar, &c);
}

/* After AP_ERROR the agent closes: EOF, and it exits non-zero. */
static void expect_error_then_close(struct agent_run *ar, struct conn *c, const char *needle)
{
	struct ap_msg m;

	recv_type(c, AP_ERROR, &m);
	CHECK(memmem(m.u.error.message.ptr, m.u.error.message.len, needle, strlen(needle)));
	CHECK_EQ(recv_msg(c, &m, WAIT_MS), 0);
	close(c->fd);
	free(c->buf);
	int st = agent_wait(ar, WAIT_MS);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0);
}

TEST(garbage_first_frame)
{
	static const char *const mode[] = {"targetless", NULL};
	struct agent_run ar;
	struct conn c;

	agent_start(&ar, 10, NULL, mode);
	conn_open(&c, &ar);
	CHECK_EQ(write_all(c.fd, "GET / HTTP/1.1\r\n\r\n", 18), 0);
	expect_error_then_close(&ar, &c, "bad handshake");
}

TEST(wrong_version)
{
	static const char *const mode[] = {"targetless", NULL};
	struct agent_run ar;
	struct conn c;

	agent_start(&ar, 10, NULL, mode);
	conn_open(&c, &ar);
	send_hello(&c, AP_MAGIC, 2);
	expect_error_then_close(&ar, &c, "protocol version 2 not supported");
}

TEST(wrong_magic)
{
	static const char *const mode[] = {"targetless", NULL};
	struct agent_run ar;
	struct conn c;

	agent_start(&ar, 10, NULL, mode);
	conn_open(&c, &ar);
	send_hello(&c, 0x12345678, AP_VERSION);
	expect_error_then_close(&ar, &c, "bad handshake");
}

TEST(second_client_rejected)
{
	struct agent_run ar;
	struct conn c, c2;
	struct ap_msg m;

	setup(&ar, &c, NULL);
	conn_open(&c2, &ar);
	recv_type(&c2, AP_ERROR, &m);
	CHECK_EQ(m.u.error.err, EBUSY);
	CHECK_EQ(recv_msg(&c2, &m, WAIT_MS), 0);
	close(c2.fd);
	free(c2.buf);
	/* The first session is unaffected. */
	send_msg(&c, &(struct ap_msg){.type = AP_PING, .id = 1});
	recv_type(&c, AP_PONG, &m);
	teardown(&ar, &c);
}

TEST(no_client_times_out)
{
	static const char *const mode[] = {"targetless", NULL};
	struct agent_run ar;
	uint64_t t0 = now_ns();

	agent_start(&ar, 1, NULL, mode);
	int st = agent_wait(&ar, WAIT_MS);
	CHECK(st != -1);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	CHECK(now_ns() - t0 >= 900ull * 1000000);
}

TEST(silent_client_dropped)
{
	static const char *const mode[] = {"targetless", NULL};
	struct agent_run ar;
	struct conn c;

	agent_start(&ar, 1, NULL, mode);
	conn_open(&c, &ar);
	expect_error_then_close(&ar, &c, "no handshake");
}

TEST(cli_usage)
{
	static const char *const cases[][4] = {
	        {"bogus-mode", NULL},
	        {"targeted", NULL},
	        {"targeted", "--pid", "abc", NULL},
	        {"targetless", "--pid", "1", NULL},
	        {"--listen", "nowhere", "targetless", NULL},
	        {"--communication-timeout", "0", "targetless", NULL},
	        {"--http-detection-timeout", "0", "targetless", NULL},
	        {"--http-detection-timeout", "3601", "targetless", NULL},
	        {"--firewall", "pf", "targetless", NULL},
	        {"targetless", "--firewall", NULL},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *argv[6] = {agent_path};
		for (size_t j = 0; j < 4 && cases[i][j]; j++)
			argv[j + 1] = cases[i][j];
		pid_t p = fork();
		CHECK(p >= 0);
		if (p == 0) {
			int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
			dup2(null, STDERR_FILENO);
			execv(agent_path, (char **)argv);
			_exit(127);
		}
		int st;
		CHECK_EQ(waitpid(p, &st, 0), p);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	}
}

/* Wait until the child has exec'ed (its cmdline starts with want). */
static void wait_exec(pid_t pid, const char *want)
{
	char path[64], buf[64];
	uint64_t deadline = now_ns() + (uint64_t)WAIT_MS * 1000000;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	while (ms_left(deadline) > 0) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n > 0) {
			buf[n] = 0;
			if (!strcmp(buf, want))
				return;
		}
		usleep(5 * 1000);
	}
	CHECK(false);
}

TEST(targeted_pid_env_and_exit)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	struct ap_bytes e;
	size_t off = 0;
	bool found = false, own = false;
	char pidbuf[16];
	pid_t target = fork();

	CHECK(target >= 0);
	if (target == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		char *const env[] = {(char *)ENV_MARK, NULL};
		execle("/bin/sleep", "sleep", "30", (char *)NULL, env);
		_exit(127);
	}
	wait_exec(target, "sleep");
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)target);
	const char *const mode[] = {"targeted", "--pid", pidbuf, NULL};
	/* The agent's own environment must not be what it reports. */
	agent_start(&ar, 10, "MT_AGENT_OWN_ENV=agent-only", mode);
	conn_open(&c, &ar);
	handshake(&c, "targeted");
	send_msg(&c, &(struct ap_msg){.type = AP_ENV_REQ, .id = 1});
	recv_type(&c, AP_ENV_RESP, &m);
	CHECK_EQ(m.u.env_resp.err, 0);
	while (ap_env_next(&m.u.env_resp.entries, &off, &e) == 1) {
		found |= bytes_eq(&e, ENV_MARK);
		own |= bytes_eq(&e, "MT_AGENT_OWN_ENV=agent-only");
	}
	CHECK(found);
	CHECK(!own);

	/* The target dies: the agent says so and exits. */
	CHECK(kill(target, SIGKILL) == 0);
	recv_type(&c, AP_ERROR, &m);
	CHECK_EQ(m.u.error.err, ESRCH);
	CHECK_EQ(recv_msg(&c, &m, WAIT_MS), 0);
	close(c.fd);
	free(c.buf);
	int st = agent_wait(&ar, WAIT_MS);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0);
	CHECK_EQ(waitpid(target, &st, 0), target);
}

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 12) + 3);
}

/* A remote peer in a child process: accepts one connection on lfd, then
 * echoes (echo) or writes `total` pattern bytes, and closes. */
static pid_t remote_child(int lfd, bool echo, size_t total)
{
	pid_t p = fork();

	CHECK(p >= 0);
	if (p)
		return p;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	static uint8_t buf[65536];
	if (fd < 0)
		_exit(1);
	if (echo) {
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			if (write_all(fd, buf, (size_t)n) < 0)
				_exit(1);
		shutdown(fd, SHUT_WR);
	} else {
		for (size_t off = 0; off < total;) {
			size_t k = total - off < sizeof(buf) ? total - off : sizeof(buf);
			for (size_t i = 0; i < k; i++)
				buf[i] = pattern(off + i);
			if (write_all(fd, buf, k) < 0)
				_exit(1);
			off += k;
		}
	}
	close(fd);
	_exit(0);
}

static void reap(pid_t p)
{
	int st;

	CHECK_EQ(waitpid(p, &st, 0), p);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Several MiB through an echo server, both directions under flow control:
 * the client never has more than the granted window in flight. */
TEST(tcp_bulk_echo)
{
	const uint64_t total = 4u << 20;
	static uint8_t chunk[AP_MAX_DATA];
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	uint16_t port;
	int lfd = listener(SOCK_STREAM, &port);
	pid_t echo = remote_child(lfd, true, 0);
	uint64_t sent = 0, credited = 0, received = 0;
	bool fin_sent = false, fin_seen = false;

	setup(&ar, &c, NULL);
	send_connect(&c, 1, 5, AP_PROTO_TCP, port, AP_DEFAULT_WINDOW);
	recv_type(&c, AP_CONNECT_RESP, &m);
	CHECK_EQ(m.u.connect_resp.err, 0);
	while (!fin_seen) {
		while (sent < total && sent - credited < AP_DEFAULT_WINDOW) {
			uint64_t k = total - sent;
			if (k > AP_MAX_DATA)
				k = AP_MAX_DATA;
			if (k > AP_DEFAULT_WINDOW - (sent - credited))
				k = AP_DEFAULT_WINDOW - (sent - credited);
			for (uint64_t i = 0; i < k; i++)
				chunk[i] = pattern(sent + i);
			send_msg(&c, &(struct ap_msg){.type = AP_DATA,
			                              .id = 5,
			                              .u.data.data = {chunk, (uint32_t)k}});
			sent += k;
		}
		if (sent == total && !fin_sent) {
			send_msg(&c, &(struct ap_msg){.type = AP_CLOSE,
			                              .id = 5,
			                              .u.close = {AP_CLOSE_FIN, 0}});
			fin_sent = true;
		}
		CHECK_EQ(recv_msg(&c, &m, WAIT_MS), 1);
		CHECK_EQ(m.id, 5);
		if (m.type == AP_CREDIT) {
			credited += m.u.credit.bytes;
			CHECK(credited <= sent);
		} else if (m.type == AP_DATA) {
			for (uint32_t i = 0; i < m.u.data.data.len; i++)
				CHECK_EQ(m.u.data.data.ptr[i], pattern(received + i));
			received += m.u.data.data.len;
			send_credit(&c, 5, m.u.data.data.len);
		} else {
			CHECK_EQ(m.type, AP_CLOSE);
			CHECK_EQ(m.u.close.how, AP_CLOSE_FIN);
			fin_seen = true;
		}
	}
	CHECK_EQ(received, total);
	CHECK_EQ(sent, total);
	reap(echo);
	close(lfd);
	teardown(&ar, &c);
}

static long rss_kib(pid_t pid)
{
	char path[64], buf[4096];
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK(n > 0);
	buf[n] = 0;
	char *p = strstr(buf, "VmRSS:");
	CHECK(p);
	CHECK(sscanf(p, "VmRSS: %ld", &kib) == 1);
	return kib;
}

/* A client that does not read: with a huge window, only the agent's
 * bounded output queue holds it back. Its memory must stay flat while
 * 16 MiB wait at the remote; then everything arrives intact. */
TEST(slow_client_backpressure)
{
	const uint64_t total = 16u << 20;
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	uint16_t port;
	int lfd = listener(SOCK_STREAM, &port);
	pid_t writer = remote_child(lfd, false, total);
	uint64_t received = 0;

	setup(&ar, &c, NULL);
	long before = rss_kib(ar.pid);
	send_connect(&c, 1, 9, AP_PROTO_TCP, port, 1u << 30);
	usleep(1000 * 1000);
	long after = rss_kib(ar.pid);
	/* OUT_HARD is ~3.5 MiB; allow allocator slack, not 16 MiB. */
	if (after - before > 8 * 1024) {
		fprintf(stderr, "agent RSS grew from %ld to %ld KiB\n", before, after);
		CHECK(false);
	}
	recv_type(&c, AP_CONNECT_RESP, &m);
	CHECK_EQ(m.u.connect_resp.err, 0);
	for (;;) {
		CHECK_EQ(recv_msg(&c, &m, WAIT_MS), 1);
		if (m.type == AP_CLOSE)
			break;
		CHECK_EQ(m.type, AP_DATA);
		for (uint32_t i = 0; i < m.u.data.data.len; i++)
			CHECK_EQ(m.u.data.data.ptr[i], pattern(received + i));
		received += m.u.data.data.len;
	}
	CHECK_EQ(m.u.close.how, AP_CLOSE_FIN);
	CHECK_EQ(received, total);
	reap(writer);
	close(lfd);
	teardown(&ar, &c);
}

/* The link is reset in the middle of a download (a port-forward cut):
 * the agent must notice the loss once. It used to notice it twice when
 * the failed send came first from its flush hook and then again from the
 * socket's error event, which scheduled a second detach of the client the
 * first one freed (ASan: heap-use-after-free in detach). Twenty rounds:
 * the two paths meet only when the reset lands between them. Each time
 * the agent stays up, ends the old link's stream, and serves a new link. */
TEST(reset_during_download)
{
	const uint64_t total = 256u << 20;
	const int rounds = 20;
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	uint16_t port;
	int lfd = listener(SOCK_STREAM, &port);
	/* Each writer is forked before the link it feeds is opened, so that
	 * it holds no copy of the link: our close must be the last one. */
	pid_t writer = remote_child(lfd, false, total);

	setup(&ar, &c, NULL);
	for (int round = 0; round < rounds; round++) {
		uint64_t received = 0;

		send_connect(&c, 1, 1, AP_PROTO_TCP, port, 1u << 30);
		recv_type(&c, AP_CONNECT_RESP, &m);
		CHECK_EQ(m.u.connect_resp.err, 0);
		while (received < (1u << 20)) {
			recv_type(&c, AP_DATA, &m);
			received += m.u.data.data.len;
		}
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		CHECK(setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
		close(c.fd); /* a reset, while the agent is sending */
		free(c.buf);
		/* The old link's stream was closed: the remote's writes fail. */
		int st = 0;
		uint64_t deadline = now_ns() + (uint64_t)WAIT_MS * 1000000;
		while (waitpid(writer, &st, WNOHANG) == 0 && ms_left(deadline) > 0)
			usleep(10 * 1000);
		CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE) ||
		      (WIFEXITED(st) && WEXITSTATUS(st) == 1));
		if (round + 1 < rounds)
			writer = remote_child(lfd, false, total);
		CHECK_EQ(agent_wait(&ar, 100), -1);
		conn_open(&c, &ar);
		handshake(&c, "targetless");
		send_msg(&c, &(struct ap_msg){.type = AP_PING, .id = 7});
		recv_type(&c, AP_PONG, &m);
		CHECK_EQ(m.id, 7);
	}
	close(lfd);
	teardown(&ar, &c);
}

TEST(tcp_resets)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	uint16_t port;
	int lfd = listener(SOCK_STREAM, &port), rfd;
	char buf[8];

	setup(&ar, &c, NULL);
	/* Client RESET: the remote sees a reset, not a FIN. */
	send_connect(&c, 1, 1, AP_PROTO_TCP, port, AP_DEFAULT_WINDOW);
	recv_type(&c, AP_CONNECT_RESP, &m);
	CHECK_EQ(m.u.connect_resp.err, 0);
	rfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(rfd >= 0);
	send_msg(&c, &(struct ap_msg){.type = AP_CLOSE, .id = 1, .u.close = {AP_CLOSE_RESET, 0}});
	struct pollfd p = {.fd = rfd, .events = POLLIN};
	CHECK(poll(&p, 1, WAIT_MS) == 1);
	CHECK_EQ(read(rfd, buf, sizeof(buf)), -1);
	CHECK_EQ(errno, ECONNRESET);
	close(rfd);

	/* Remote reset: the client gets CLOSE RESET with ECONNRESET. */
	send_connect(&c, 2, 2, AP_PROTO_TCP, port, AP_DEFAULT_WINDOW);
	recv_type(&c, AP_CONNECT_RESP, &m);
	CHECK_EQ(m.u.connect_resp.err, 0);
	rfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(rfd >= 0);
	struct linger lg = {1, 0};
	CHECK(setsockopt(rfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
	close(rfd);
	recv_type(&c, AP_CLOSE, &m);
	CHECK_EQ(m.id, 2);
	CHECK_EQ(m.u.close.how, AP_CLOSE_RESET);
	CHECK_EQ(m.u.close.err, ECONNRESET);
	/* Frames for streams that are gone are late, not errors. */
	send_data(&c, 2, "late");
	send_msg(&c, &(struct ap_msg){.type = AP_PING, .id = 3});
	recv_type(&c, AP_PONG, &m);
	close(lfd);
	teardown(&ar, &c);
}

/* The stream table is bounded: past the limit CONNECT fails with EMFILE
 * (from the agent's own limit, or the fd limit if that is lower), and
 * the session carries on. */
TEST(stream_limit)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	uint16_t port;
	int ufd = listener(SOCK_DGRAM, &port);
	uint32_t ok = 0, emfile = 0;

	setup(&ar, &c, NULL);
	for (uint32_t i = 1; i <= 4097; i++)
		send_connect(&c, i, i, AP_PROTO_UDP, port, AP_DEFAULT_WINDOW);
	for (uint32_t i = 1; i <= 4097; i++) {
		recv_type(&c, AP_CONNECT_RESP, &m);
		CHECK_EQ(m.id, i);
		if (m.u.connect_resp.err == 0)
			ok++;
		else if (m.u.connect_resp.err == EMFILE)
			emfile++;
	}
	CHECK_EQ(ok + emfile, 4097);
	CHECK(emfile >= 1);
	/* Freeing one makes room for another. */
	send_msg(&c, &(struct ap_msg){.type = AP_CLOSE, .id = 1, .u.close = {AP_CLOSE_FIN, 0}});
	send_connect(&c, 5000, 5000, AP_PROTO_UDP, port, AP_DEFAULT_WINDOW);
	recv_type(&c, AP_CONNECT_RESP, &m);
	CHECK_EQ(m.u.connect_resp.err, 0);
	close(ufd);
	teardown(&ar, &c);
}

/* targeted mode confines FILE_REQ to the target's root: a child chroots
 * into a temp dir, and nothing outside that dir can be named. */
TEST(targeted_files_confined_to_root)
{
	char dir[] = "/tmp/mt-agent-root-XXXXXX", path[128], pidbuf[16];
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	int sync[2];

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/inside.txt", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(write_all(fd, "inside", 6), 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/abs", dir);
	CHECK(symlink("/etc/hostname", path) == 0);
	snprintf(path, sizeof(path), "%s/rel", dir);
	CHECK(symlink("../../../../../etc/hostname", path) == 0);
	CHECK(access("/etc/hostname", R_OK) == 0);

	CHECK(pipe2(sync, O_CLOEXEC) == 0);
	pid_t target = fork();
	CHECK(target >= 0);
	if (target == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		char ok = chroot(dir) == 0 && chdir("/") == 0 ? 'y' : 'n';
		(void)!write(sync[1], &ok, 1);
		pause();
		_exit(0);
	}
	close(sync[1]);
	char ok = 0;
	CHECK_EQ(read(sync[0], &ok, 1), 1);
	close(sync[0]);
	if (ok != 'y') {
		kill(target, SIGKILL);
		waitpid(target, NULL, 0);
		fprintf(stderr, "SKIP: chroot needs CAP_SYS_CHROOT\n");
		CHECK(!getenv("MIRRORD_TRACE_MUST_WORK"));
		return;
	}
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)target);
	const char *const mode[] = {"targeted", "--pid", pidbuf, NULL};
	agent_start(&ar, 10, NULL, mode);
	conn_open(&c, &ar);
	handshake(&c, "targeted");
	file_req(&c, 1, "/inside.txt", &m);
	CHECK_EQ(m.u.file_resp.err, 0);
	CHECK(bytes_eq(&m.u.file_resp.content, "inside"));
	file_req(&c, 2, "/../../../../etc/hostname", &m);
	CHECK_EQ(m.u.file_resp.err, ENOENT);
	file_req(&c, 3, "/abs", &m);
	CHECK_EQ(m.u.file_resp.err, ENOENT);
	file_req(&c, 4, "/rel", &m);
	CHECK_EQ(m.u.file_resp.err, ENOENT);
	kill(target, SIGKILL);
	waitpid(target, NULL, 0);
	recv_type(&c, AP_ERROR, &m);
	close(c.fd);
	free(c.buf);
	CHECK(agent_wait(&ar, WAIT_MS) != -1);
	static const char *const files[] = {"inside.txt", "abs", "rel"};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

TEST_MAIN_WITH_ARG(agent_path, "PATH-TO-mirrord-trace-agent")
