/* See agent_harness.h. */
#include "tests/agent/agent_harness.h"
#include "tests/unit/test.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

const char *agent_path;

int64_t ms_left(uint64_t deadline_ns)
{
	uint64_t now = now_ns();
	return now >= deadline_ns ? 0 : (int64_t)((deadline_ns - now) / 1000000);
}

/* One line from fd, waiting at most ms. */
bool read_line(int fd, char *line, size_t cap, int ms)
{
	uint64_t deadline = now_ns() + (uint64_t)ms * 1000000;
	size_t n = 0;

	while (n + 1 < cap) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)ms_left(deadline)) <= 0)
			return false;
		if (read(fd, line + n, 1) != 1)
			return false;
		if (line[n] == '\n') {
			line[n] = 0;
			return true;
		}
		n++;
	}
	return false;
}

/* Start the agent: --listen 127.0.0.1:0 --communication-timeout secs, then
 * the mode words; env_extra (may be NULL) is added to its environment. */
void agent_start(struct agent_run *ar, unsigned secs, const char *env_extra,
                 const char *const *mode)
{
	char line[256], tmo[16];
	const char *log = getenv("MT_TEST_AGENT_LOG"); /* more of the agent's log */
	const char *argv[16] = {
	        agent_path, "--listen",    "127.0.0.1:0",     "--communication-timeout",
	        tmo,        "--log-level", log ? log : "warn"};
	size_t n = 7;
	int p[2];

	snprintf(tmo, sizeof(tmo), "%u", secs);
	for (; *mode && n < ARRAY_SIZE(argv) - 1; mode++)
		argv[n++] = *mode;
	argv[n] = NULL;
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	ar->pid = fork();
	CHECK(ar->pid >= 0);
	if (ar->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], STDOUT_FILENO);
		if (env_extra)
			putenv((char *)env_extra);
		execv(agent_path, (char **)argv);
		_exit(127);
	}
	close(p[1]);
	ar->out = p[0];

	unsigned long port = 0;
	CHECK(read_line(ar->out, line, sizeof(line), WAIT_MS));
	CHECK(sscanf(line, "listening on 127.0.0.1:%lu", &port) == 1);
	CHECK(port > 0 && port < 65536);
	ar->port = (uint16_t)port;
	CHECK(read_line(ar->out, line, sizeof(line), WAIT_MS));
	CHECK_STR(line, "agent ready - version " MT_VERSION);
}

/* Wait for the agent to exit; returns its wait status, -1 on timeout. */
int agent_wait(struct agent_run *ar, int ms)
{
	uint64_t deadline = now_ns() + (uint64_t)ms * 1000000;
	int st;

	do {
		if (waitpid(ar->pid, &st, WNOHANG) == ar->pid) {
			close(ar->out);
			return st;
		}
		usleep(10 * 1000);
	} while (ms_left(deadline) > 0);
	return -1;
}

int tcp_connect_port(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons(port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	return fd;
}

void conn_open(struct conn *c, const struct agent_run *ar)
{
	*c = (struct conn){.fd = tcp_connect_port(ar->port)};
	c->buf = malloc(AP_HEADER_SIZE + AP_MAX_PAYLOAD);
	CHECK(c->buf);
}

void send_msg(struct conn *c, const struct ap_msg *m)
{
	uint8_t buf[AP_HEADER_SIZE + 128 + AP_MAX_DATA];
	ssize_t n = ap_encode(m, buf, sizeof(buf));

	CHECK(n > 0);
	CHECK_EQ(write_all(c->fd, buf, (size_t)n), 0);
}

/* Next frame; 1 ok, 0 on EOF, -1 on timeout. ret points into c->buf and
 * stays valid until the next call. */
int recv_msg(struct conn *c, struct ap_msg *ret, int ms)
{
	uint64_t deadline = now_ns() + (uint64_t)ms * 1000000;

	memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
	c->len -= c->consumed;
	c->consumed = 0;
	for (;;) {
		ssize_t n = ap_decode(c->buf, c->len, ret);
		CHECK(n >= 0);
		if (n > 0) {
			c->consumed = (size_t)n;
			return 1;
		}
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		if (poll(&p, 1, (int)ms_left(deadline)) <= 0)
			return -1;
		n = read(c->fd, c->buf + c->len, AP_HEADER_SIZE + AP_MAX_PAYLOAD - c->len);
		if (n <= 0)
			return 0;
		c->len += (size_t)n;
	}
}

/* Next frame of type t, counting CREDIT frames skipped on the way. */
void recv_type(struct conn *c, enum ap_type t, struct ap_msg *ret)
{
	for (;;) {
		CHECK_EQ(recv_msg(c, ret, WAIT_MS), 1);
		if (ret->type == t)
			return;
		if (ret->type == AP_CREDIT && t != AP_CREDIT) {
			c->credits += ret->u.credit.bytes;
			continue;
		}
		fprintf(stderr, "expected %s, got %s\n", ap_type_name(t), ap_type_name(ret->type));
		CHECK(false);
	}
}

bool bytes_eq(const struct ap_bytes *b, const char *s)
{
	return b->len == strlen(s) && memcmp(b->ptr, s, b->len) == 0;
}

void send_hello(struct conn *c, uint32_t magic, uint16_t version)
{
	struct ap_msg m = {.type = AP_HELLO,
	                   .u.hello = {.magic = magic,
	                               .version = version,
	                               .client_name = {(const uint8_t *)"test", 4}}};
	send_msg(c, &m);
}

void handshake(struct conn *c, const char *mode)
{
	struct ap_msg m;

	send_hello(c, AP_MAGIC, AP_VERSION);
	recv_type(c, AP_HELLO_OK, &m);
	CHECK_EQ(m.u.hello_ok.version, AP_VERSION);
	CHECK(bytes_eq(&m.u.hello_ok.agent_version, MT_VERSION));
	CHECK(bytes_eq(&m.u.hello_ok.mode, mode));
}

/* Agent + connected, handshaken client in targetless mode. */
void setup(struct agent_run *ar, struct conn *c, const char *env_extra)
{
	static const char *const mode[] = {"targetless", NULL};

	agent_start(ar, 10, env_extra, mode);
	conn_open(c, ar);
	handshake(c, "targetless");
}

/* The client says goodbye (AP_ERROR, err 0) and goes away: the agent must
 * exit 0 at once. */
void goodbye(struct conn *c)
{
	static const char text[] = "client exiting";
	struct ap_msg m = {
	        .type = AP_ERROR,
	        .u.error = {.err = 0, .message = {(const uint8_t *)text, sizeof(text) - 1}},
	};
	send_msg(c, &m);
}

void teardown(struct agent_run *ar, struct conn *c)
{
	char scratch[4096];
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	goodbye(c);
	/* Close as the supervisor does: only after the agent's FIN, since a
	 * close with unread bytes sends a reset, which can overtake the
	 * goodbye (the agent would then wait for a reconnect). */
	while (poll(&p, 1, WAIT_MS) == 1 && read(c->fd, scratch, sizeof(scratch)) > 0)
		;
	close(c->fd);
	free(c->buf);
	int st = agent_wait(ar, WAIT_MS);
	CHECK(st != -1);
	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
}

int listener(int type, uint16_t *ret_port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	if (type == SOCK_STREAM)
		CHECK(listen(fd, 4) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
	*ret_port = ntohs(sa.sin_port);
	return fd;
}

void send_connect(struct conn *c, uint32_t req, uint32_t stream, uint8_t proto, uint16_t port,
                  uint32_t window)
{
	struct ap_msg m = {.type = AP_CONNECT,
	                   .id = req,
	                   .u.connect = {.stream = stream,
	                                 .proto = proto,
	                                 .dst = {.family = 4, .port = port, .addr = {127, 0, 0, 1}},
	                                 .window = window}};
	send_msg(c, &m);
}

void send_data(struct conn *c, uint32_t stream, const char *s)
{
	struct ap_msg m = {.type = AP_DATA,
	                   .id = stream,
	                   .u.data.data = {(const uint8_t *)s, (uint32_t)strlen(s)}};
	send_msg(c, &m);
}

void send_credit(struct conn *c, uint32_t stream, uint32_t n)
{
	struct ap_msg m = {.type = AP_CREDIT, .id = stream, .u.credit.bytes = n};
	send_msg(c, &m);
}

/* Read exactly n bytes from a plain socket, bounded. */
void read_exact(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		CHECK(poll(&p, 1, WAIT_MS) == 1);
		ssize_t r = read(fd, buf + got, n - got);
		CHECK(r > 0);
		got += (size_t)r;
	}
}
