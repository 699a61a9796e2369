/* See incoming_harness.h. */
#include "tests/agent/incoming_harness.h"
#include "tests/unit/test.h"
#include "agent/h2frame.h"
#include "agent/hpack.h"
#include "agentproto/agentproto.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>

char ns_pod[64], ns_peer[64];
pid_t app_pid = -1;
int peer_nsfd = -1, root_nsfd = -1;

static const char app_py[] = "import http.server,socketserver,threading\n"
                             "class E(socketserver.BaseRequestHandler):\n"
                             "    def handle(self):\n"
                             "        self.request.sendall(b'banner\\n')\n"
                             "        while True:\n"
                             "            d=self.request.recv(65536)\n"
                             "            if not d: break\n"
                             "            self.request.sendall(d)\n"
                             "socketserver.ThreadingTCPServer.allow_reuse_address=True\n"
                             "socketserver.ThreadingTCPServer.daemon_threads=True\n"
                             "e=socketserver.ThreadingTCPServer(('0.0.0.0',81),E)\n"
                             "threading.Thread(target=e.serve_forever,daemon=True).start()\n"
                             "class H(http.server.BaseHTTPRequestHandler):\n"
                             "    protocol_version='HTTP/1.1'\n"
                             "    def do_GET(self):\n"
                             "        n=int(self.headers.get('content-length') or 0)\n"
                             "        self.rfile.read(n)\n"
                             "        b=b'pod\\n'\n"
                             "        self.send_response(200)\n"
                             "        self.send_header('content-length',str(len(b)))\n"
                             "        self.end_headers()\n"
                             "        self.wfile.write(b)\n"
                             "    do_POST=do_GET\n"
                             "    def log_message(self,*a): pass\n"
                             "http.server.ThreadingHTTPServer.request_queue_size=256\n"
                             "http.server.ThreadingHTTPServer(('0.0.0.0',80),H).serve_forever()\n";

int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Output of a command, '#' comment lines (timestamps) left out. */
char *capture_cmd(const char *cmd)
{
	FILE *f = popen(cmd, "r");
	size_t cap = 1 << 16, n = 0;
	char *out = calloc(1, cap), line[1024];

	CHECK(f && out);
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#')
			continue;
		size_t l = strlen(line);
		CHECK(n + l + 1 < cap);
		memcpy(out + n, line, l + 1);
		n += l;
	}
	pclose(f);
	return out;
}

char *ruleset(void)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd),
	         "ip netns exec %s sh -c 'nft list ruleset; iptables-save -t nat; "
	         "ip6tables-save -t nat' 2>&1",
	         ns_pod);
	return capture_cmd(cmd);
}

/* Whether the ruleset comes back to want within ms (cleanups run in the
 * agent's detach timer or its guard, asynchronously to the test). */
bool ruleset_becomes(const char *want, int ms)
{
	for (int waited = 0;; waited += 100) {
		char *now = ruleset();
		bool same = !strcmp(now, want);
		if (!same && waited >= ms)
			fprintf(stderr, "ruleset now:\n%s\nwanted:\n%s\n", now, want);
		free(now);
		if (same || waited >= ms)
			return same;
		usleep(100 * 1000);
	}
}

void teardown_ns(void)
{
	if (app_pid > 0) {
		kill(app_pid, SIGKILL);
		waitpid(app_pid, NULL, 0);
		app_pid = -1;
	}
	if (!ns_pod[0])
		return;
	sh("ip netns del %s 2>/dev/null", ns_pod);
	sh("ip netns del %s 2>/dev/null", ns_peer);
	ns_pod[0] = 0;
}

/* The harness's alarm, or a timeout's SIGTERM, would leave the
 * namespaces behind. */
static void on_alarm(int sig)
{
	teardown_ns();
	_exit(1);
}

/* Namespaces, the veth pair, a pre-existing nat rule (a pod has rules of
 * its own; the cleanup must leave them as they were) and the app. */
void setup_ns(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: needs root for network namespaces\n");
		CHECK(!getenv("MIRRORD_TRACE_MUST_WORK"));
		exit(0);
	}
	snprintf(ns_pod, sizeof(ns_pod), "mtin-%d-pod", (int)getpid());
	snprintf(ns_peer, sizeof(ns_peer), "mtin-%d-peer", (int)getpid());
	atexit(teardown_ns);
	signal(SIGALRM, on_alarm);
	signal(SIGTERM, on_alarm);
	signal(SIGINT, on_alarm);
	CHECK(sh("ip netns add %s && ip netns add %s", ns_pod, ns_peer) == 0);
	CHECK(sh("ip link add mtp%d netns %s type veth peer name mtq%d netns %s", (int)getpid(),
	         ns_pod, (int)getpid(), ns_peer) == 0);
	CHECK(sh("ip -n %s addr add " POD_IP "/24 dev mtp%d && ip -n %s link set mtp%d up && "
	         "ip -n %s link set lo up",
	         ns_pod, (int)getpid(), ns_pod, (int)getpid(), ns_pod) == 0);
	CHECK(sh("ip -n %s addr add " PEER_IP "/24 dev mtq%d && ip -n %s link set mtq%d up && "
	         "ip -n %s link set lo up",
	         ns_peer, (int)getpid(), ns_peer, (int)getpid(), ns_peer) == 0);
	CHECK(sh("ip netns exec %s iptables -t nat -A PREROUTING -p tcp --dport 9 -j RETURN",
	         ns_pod) == 0);
	app_pid = fork();
	CHECK(app_pid >= 0);
	if (app_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execlp("ip", "ip", "netns", "exec", ns_pod, "python3", "-c", app_py, (char *)NULL);
		_exit(127);
	}
	char path[128];
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns_peer);
	peer_nsfd = open(path, O_RDONLY | O_CLOEXEC);
	root_nsfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	CHECK(peer_nsfd >= 0 && root_nsfd >= 0);
	CHECK(wait_port());
}

/* A TCP connection from the peer namespace to the pod's port. */
int peer_connect_port(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1, fd;

	inet_pton(AF_INET, POD_IP, &sa.sin_addr);
	CHECK(setns(peer_nsfd, CLONE_NEWNET) == 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(setns(root_nsfd, CLONE_NEWNET) == 0);
	CHECK(fd >= 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int pod_listen(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	char path[128];
	int one = 1;

	snprintf(path, sizeof(path), "/var/run/netns/%s", ns_pod);
	int pod_nsfd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(pod_nsfd >= 0);
	CHECK(setns(pod_nsfd, CLONE_NEWNET) == 0);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(setns(root_nsfd, CLONE_NEWNET) == 0);
	close(pod_nsfd);
	CHECK(lfd >= 0);
	inet_pton(AF_INET, POD_IP, &sa.sin_addr);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 128) == 0);
	return lfd;
}

int pod_accept(int lfd)
{
	struct pollfd pf = {.fd = lfd, .events = POLLIN};

	CHECK(poll(&pf, 1, WAIT_MS) == 1);
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	CHECK(fd >= 0);
	return fd;
}

static const char *normal_path;

void quick_agent(void)
{
	static char path[4096];

	if (!normal_path) {
		normal_path = agent_path;
		snprintf(path, sizeof(path), "%s-quick", agent_path);
	}
	agent_path = path;
}

void normal_agent(void)
{
	if (normal_path)
		agent_path = normal_path;
}

bool cut_within(int fd, int ms)
{
	struct pollfd pf = {.fd = fd, .events = POLLRDHUP};

	return poll(&pf, 1, ms) == 1 && (pf.revents & (POLLRDHUP | POLLERR | POLLHUP));
}

/* A TCP connection from the peer namespace to the pod's app. */
int peer_connect(void)
{
	return peer_connect_port(APP_PORT);
}

bool wait_port(void)
{
	for (int i = 0; i < 100; i++) {
		int fd = peer_connect();
		if (fd >= 0) {
			close(fd);
			return true;
		}
		usleep(50 * 1000);
	}
	return false;
}

/* Read until the peer closes or want bytes arrived; returns the length. */
size_t read_some(int fd, char *buf, size_t cap, size_t want)
{
	size_t n = 0;
	while (n < want && n + 1 < cap) {
		ssize_t k = read(fd, buf + n, cap - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	buf[n] = 0;
	return n;
}

/* One request on a fresh connection; returns the response. */
void http_get(const char *extra_headers, char *resp, size_t cap)
{
	char req[512];
	int fd = peer_connect();

	CHECK(fd >= 0);
	snprintf(req, sizeof(req), "GET /x HTTP/1.1\r\nhost: pod\r\n%s\r\n", extra_headers);
	CHECK_EQ(write_all(fd, req, strlen(req)), 0);
	read_some(fd, resp, cap, 1);
	/* the rest of a small response */
	usleep(20 * 1000);
	size_t n = strlen(resp);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (poll(&p, 1, 100) > 0) {
		ssize_t k = read(fd, resp + n, cap - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	resp[n] = 0;
	close(fd);
}

/* ---- the agent and its protocol (agent_harness.c) ---- */

/* The agent in targeted mode on the pod's app, with a short
 * communication timeout. */
void agent_start_targeted(struct agent_run *ar, const char *env_extra)
{
	agent_start_targeted_opts(ar, env_extra, NULL);
}

void agent_start_targeted_opts(struct agent_run *ar, const char *env_extra, const char *const *opts)
{
	char pid[16];
	const char *mode[16];
	size_t n = 0;

	for (; opts && *opts && n < ARRAY_SIZE(mode) - 4; opts++)
		mode[n++] = *opts;
	mode[n++] = "targeted";
	mode[n++] = "--pid";
	mode[n++] = pid;
	mode[n] = NULL;
	snprintf(pid, sizeof(pid), "%d", (int)app_pid);
	agent_start(ar, 2, env_extra, mode);
}

/* Next frame of type t; frames of streams that end meanwhile (CREDIT,
 * DATA, CLOSE) are not the point and are skipped. */
void recv_until(struct conn *c, enum ap_type t, struct ap_msg *ret)
{
	for (;;) {
		CHECK_EQ(recv_msg(c, ret, WAIT_MS), 1);
		if (ret->type == t)
			return;
		if (ret->type == AP_CREDIT || ret->type == AP_CLOSE || ret->type == AP_DATA)
			continue;
		fprintf(stderr, "expected %s, got %s\n", ap_type_name(t), ap_type_name(ret->type));
		CHECK(false);
	}
}

void steal_alice(struct agent_run *ar, struct conn *c, const char *env_extra)
{
	setup_ns();
	agent_start_targeted(ar, env_extra);
	connect_agent(c, ar);
	CHECK_EQ(subscribe(c, 1, AP_SUB_STEAL, AP_FILTER_ALL_OF, "^x-user: alice$", NULL), 0);
}

void connect_agent(struct conn *c, const struct agent_run *ar)
{
	conn_open(c, ar);
	handshake(c, "targeted");
}

/* Subscribe a port; returns the answer's errno. */
int subscribe_port(struct conn *c, uint32_t id, uint16_t port, uint8_t mode, uint8_t op,
                   const char *header, const char *method)
{
	struct ap_msg m = {.type = AP_PORT_SUB, .id = id};

	m.u.port_sub.port = port;
	m.u.port_sub.mode = mode;
	m.u.port_sub.filter_op = op;
	if (header)
		m.u.port_sub.rules[m.u.port_sub.rule_count++] = (struct ap_filter_rule){
		        AP_FILTER_HEADER, {(const uint8_t *)header, (uint32_t)strlen(header)}};
	if (method)
		m.u.port_sub.rules[m.u.port_sub.rule_count++] = (struct ap_filter_rule){
		        AP_FILTER_METHOD, {(const uint8_t *)method, (uint32_t)strlen(method)}};
	send_msg(c, &m);
	recv_until(c, AP_PORT_RESP, &m);
	CHECK_EQ(m.id, id);
	return m.u.port_resp.err;
}

/* Subscribe port 80. */
int subscribe(struct conn *c, uint32_t id, uint8_t mode, uint8_t op, const char *header,
              const char *method)
{
	return subscribe_port(c, id, APP_PORT, mode, op, header, method);
}

int unsubscribe(struct conn *c, uint32_t id)
{
	struct ap_msg m = {.type = AP_PORT_UNSUB, .id = id, .u.port_unsub.port = APP_PORT};
	send_msg(c, &m);
	recv_until(c, AP_PORT_RESP, &m);
	return m.u.port_resp.err;
}

/* Collect DATA of stream id until want bytes or a CLOSE. */
size_t recv_stream(struct conn *c, uint32_t id, char *out, size_t cap, size_t want)
{
	struct ap_msg m;
	size_t n = 0;

	while (n < want) {
		CHECK_EQ(recv_msg(c, &m, WAIT_MS), 1);
		if (m.type == AP_CREDIT || m.id != id)
			continue;
		if (m.type == AP_CLOSE)
			break;
		CHECK_EQ(m.type, AP_DATA);
		CHECK(n + m.u.data.data.len < cap);
		memcpy(out + n, m.u.data.data.ptr, m.u.data.data.len);
		n += m.u.data.data.len;
		struct ap_msg cr = {
		        .type = AP_CREDIT, .id = id, .u.credit.bytes = m.u.data.data.len};
		send_msg(c, &cr);
	}
	out[n] = 0;
	return n;
}

/* ---- steal ---- */

/* A peer connection on a background child: sends req, prints what comes
 * back into a pipe. The test process meanwhile plays the client. */
pid_t peer_bg(const char *req, int *ret_out)
{
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char resp[4096];
		int fd = peer_connect();
		if (fd < 0)
			_exit(1);
		(void)!write(fd, req, strlen(req));
		size_t n = read_some(fd, resp, sizeof(resp), sizeof(resp));
		(void)!write(p[1], resp, n);
		_exit(0);
	}
	close(p[1]);
	*ret_out = p[0];
	return pid;
}

void bg_result(pid_t pid, int fd, char *out, size_t cap)
{
	read_some(fd, out, cap, cap);
	close(fd);
	waitpid(pid, NULL, 0);
}
