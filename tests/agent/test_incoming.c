/* Incoming traffic through the real agent: steal (all, HTTP filter,
 * WebSocket upgrade, 502, HTTP/2 frames and bounds), mirror (1000 requests under reordering and
 * duplication) and the cleanup of redirect rules (unsubscribe, client
 * drop, agent SIGKILL, a dead predecessor's leftovers).
 *
 * Each test builds its own two network namespaces joined by a veth pair:
 * "pod" (10.201.0.1, a python3 HTTP server on port 80 as the pod's app,
 * and the agent's target) and "peer" (10.201.0.2, where the test's
 * connections to the pod come from). Names carry the test's pid; they are
 * removed on every path (an atexit hook). Nothing leaves this machine.
 * Usage: test_incoming PATH-TO-AGENT [TEST-NAME]; needs root. */

#include "tests/agent/agent_harness.h"
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

#define POD_IP "10.201.0.1"
#define PEER_IP "10.201.0.2"
#define APP_PORT 80
#define MIRROR_REQUESTS 1000
#define MIRROR_BATCH 50
#define MIRROR_BODY 3000 /* several segments per request */

static char ns_pod[64], ns_peer[64];
static pid_t app_pid = -1;
static int peer_nsfd = -1, root_nsfd = -1;

static const char app_py[] = "import http.server,sys\n"
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

static int sh(const char *fmt, ...) MT_PRINTF(1, 2);
static int sh(const char *fmt, ...)
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
static char *capture_cmd(const char *cmd)
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

static char *ruleset(void)
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
static bool ruleset_becomes(const char *want, int ms)
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

static void teardown_ns(void)
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

static bool wait_port(void);

/* Namespaces, the veth pair, a pre-existing nat rule (a pod has rules of
 * its own; the cleanup must leave them as they were) and the app. */
static void setup_ns(void)
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
static int peer_connect_port(uint16_t port)
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

/* A TCP connection from the peer namespace to the pod's app. */
static int peer_connect(void)
{
	return peer_connect_port(APP_PORT);
}

static bool wait_port(void)
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
static size_t read_some(int fd, char *buf, size_t cap, size_t want)
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
static void http_get(const char *extra_headers, char *resp, size_t cap)
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
static void agent_start_targeted(struct agent_run *ar, const char *env_extra)
{
	char pid[16];
	const char *const mode[] = {"targeted", "--pid", pid, NULL};

	snprintf(pid, sizeof(pid), "%d", (int)app_pid);
	agent_start(ar, 2, env_extra, mode);
}

/* Next frame of type t; frames of streams that end meanwhile (CREDIT,
 * DATA, CLOSE) are not the point and are skipped. */
static void recv_until(struct conn *c, enum ap_type t, struct ap_msg *ret)
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

static void connect_agent(struct conn *c, const struct agent_run *ar)
{
	conn_open(c, ar);
	handshake(c, "targeted");
}

/* Subscribe a port; returns the answer's errno. */
static int subscribe_port(struct conn *c, uint32_t id, uint16_t port, uint8_t mode, uint8_t op,
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
static int subscribe(struct conn *c, uint32_t id, uint8_t mode, uint8_t op, const char *header,
                     const char *method)
{
	return subscribe_port(c, id, APP_PORT, mode, op, header, method);
}

static int unsubscribe(struct conn *c, uint32_t id)
{
	struct ap_msg m = {.type = AP_PORT_UNSUB, .id = id, .u.port_unsub.port = APP_PORT};
	send_msg(c, &m);
	recv_until(c, AP_PORT_RESP, &m);
	return m.u.port_resp.err;
}

/* Collect DATA of stream id until want bytes or a CLOSE. */
static size_t recv_stream(struct conn *c, uint32_t id, char *out, size_t cap, size_t want)
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
static pid_t peer_bg(const char *req, int *ret_out)
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

static void bg_result(pid_t pid, int fd, char *out, size_t cap)
{
	read_some(fd, out, cap, cap);
	close(fd);
	waitpid(pid, NULL, 0);
}

TEST(steal_all_and_unsubscribe)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	char buf[4096], resp[4096];
	int out;

	setup_ns();
	char *before = ruleset();
	agent_start_targeted(&ar, NULL);
	connect_agent(&c, &ar);
	CHECK_EQ(subscribe(&c, 1, AP_SUB_STEAL, AP_FILTER_NONE, NULL, NULL), 0);
	CHECK_EQ(subscribe(&c, 2, AP_SUB_STEAL, AP_FILTER_NONE, NULL, NULL), EEXIST);
	char *during = ruleset();
	CHECK(strcmp(before, during) != 0);
	free(during);

	pid_t bg = peer_bg("GET /stolen HTTP/1.1\r\nhost: pod\r\n\r\n", &out);
	recv_until(&c, AP_ACCEPT, &m);
	uint32_t sid = m.id;
	CHECK(sid & AP_STREAM_AGENT_BIT);
	CHECK_EQ(m.u.accept.mode, AP_SUB_STEAL);
	CHECK_EQ(m.u.accept.port, APP_PORT);
	CHECK_EQ(m.u.accept.peer.family, 4);
	CHECK(memcmp(m.u.accept.peer.addr, "\x0a\xc9\x00\x02", 4) == 0);
	CHECK(memcmp(m.u.accept.local.addr, "\x0a\xc9\x00\x01", 4) == 0);
	CHECK_EQ(m.u.accept.local.port, APP_PORT);
	recv_stream(&c, sid, buf, sizeof(buf), 1);
	CHECK(strstr(buf, "GET /stolen"));
	send_data(&c, sid, "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nlocal\n");
	send_msg(&c, &(struct ap_msg){.type = AP_CLOSE, .id = sid, .u.close = {AP_CLOSE_FIN, 0}});
	bg_result(bg, out, resp, sizeof(resp));
	CHECK(strstr(resp, "local\n"));

	CHECK_EQ(unsubscribe(&c, 3), 0);
	CHECK_EQ(unsubscribe(&c, 4), ENOENT);
	char *after = ruleset();
	CHECK_STR(after, before);
	http_get("", resp, sizeof(resp));
	CHECK(strstr(resp, "pod\n"));
	teardown(&ar, &c);
	free(after);
	free(before);
	teardown_ns();
}

TEST(steal_header_filter_upgrade_and_502)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	char buf[4096], resp[4096];
	int out;

	setup_ns();
	agent_start_targeted(&ar, NULL);
	connect_agent(&c, &ar);
	CHECK_EQ(subscribe(&c, 1, AP_SUB_STEAL, AP_FILTER_ALL_OF, "^x-user: alice$", NULL), 0);

	/* Not alice: the pod answers, the client sees nothing. */
	http_get("x-user: bob\r\n", resp, sizeof(resp));
	CHECK(strstr(resp, "200 OK") && strstr(resp, "pod\n"));
	CHECK_EQ(recv_msg(&c, &m, 200), -1);

	/* Alice, twice on one connection with a bob request between them:
	 * per request routing on a kept connection. */
	pid_t bg = peer_bg("GET /a1 HTTP/1.1\r\nX-User: alice\r\n\r\n"
	                   "GET /b HTTP/1.1\r\nx-user: bob\r\n\r\n"
	                   "GET /a2 HTTP/1.1\r\nx-user: alice\r\nconnection: close\r\n\r\n",
	                   &out);
	recv_until(&c, AP_ACCEPT, &m);
	uint32_t sid = m.id;
	recv_stream(&c, sid, buf, sizeof(buf), 1);
	CHECK(strstr(buf, "GET /a1"));
	send_data(&c, sid, "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nA1\n");
	recv_stream(&c, sid, buf, sizeof(buf), 1);
	CHECK(strstr(buf, "GET /a2") && !strstr(buf, "/b"));
	send_data(&c, sid,
	          "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nA2\n\r\n0\r\n\r\n");
	bg_result(bg, out, resp, sizeof(resp));
	char *a1 = strstr(resp, "A1\n"), *pod = strstr(resp, "pod\n"), *a2 = strstr(resp, "A2\n");
	CHECK(a1 && pod && a2 && a1 < pod && pod < a2);

	/* The client resets before answering: 502 with a clear body, and
	 * the connection stays usable (the next request reaches the pod). */
	int fd = peer_connect();
	CHECK(fd >= 0);
	const char *fail = "GET /fail HTTP/1.1\r\nx-user: alice\r\n\r\n";
	CHECK_EQ(write_all(fd, fail, strlen(fail)), 0);
	recv_until(&c, AP_ACCEPT, &m);
	sid = m.id;
	recv_stream(&c, sid, buf, sizeof(buf), 1);
	send_msg(&c, &(struct ap_msg){.type = AP_CLOSE,
	                              .id = sid,
	                              .u.close = {AP_CLOSE_RESET, ECONNREFUSED}});
	read_some(fd, resp, sizeof(resp), 100);
	CHECK(strstr(resp, "HTTP/1.1 502 Bad Gateway"));
	CHECK(strstr(resp, "local application failed"));
	const char *next = "GET /next HTTP/1.1\r\nx-user: bob\r\n\r\n";
	CHECK_EQ(write_all(fd, next, strlen(next)), 0);
	read_some(fd, resp, sizeof(resp), 1);
	CHECK(strstr(resp, "200 OK"));
	close(fd);

	/* WebSocket: the upgrade of a matched request makes the connection
	 * raw TCP with the client, both ways. */
	fd = peer_connect();
	CHECK(fd >= 0);
	const char *up = "GET /ws HTTP/1.1\r\nx-user: alice\r\nconnection: upgrade\r\n"
	                 "upgrade: websocket\r\n\r\n";
	CHECK_EQ(write_all(fd, up, strlen(up)), 0);
	recv_until(&c, AP_ACCEPT, &m);
	sid = m.id;
	recv_stream(&c, sid, buf, sizeof(buf), strlen(up));
	send_data(&c, sid,
	          "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\nraw-from-app");
	size_t got = read_some(fd, resp, sizeof(resp), 60);
	CHECK(got > 0 && strstr(resp, "101") && strstr(resp, "raw-from-app"));
	CHECK_EQ(write_all(fd, "\x81\x02hi not http", 13), 0);
	recv_stream(&c, sid, buf, sizeof(buf), 13);
	CHECK(memcmp(buf, "\x81\x02hi not http", 13) == 0);
	close(fd);
	teardown(&ar, &c);
	teardown_ns();
}

/* The agent ends a stolen connection (the local app closed it after its
 * response) while bytes the peer sent on sit unread: it must not reset it,
 * or the kernel drops the response still queued (RFC 9112 §9.6). The peer
 * reads all of it and then a clean end of file. */
TEST(steal_close_lingers)
{
	enum { BODY = 400000, JUNK = 200000 };
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	char buf[4096];
	int p[2];

	setup_ns();
	agent_start_targeted(&ar, NULL);
	connect_agent(&c, &ar);
	CHECK_EQ(subscribe(&c, 1, AP_SUB_STEAL, AP_FILTER_ALL_OF, "^x-user: alice$", NULL), 0);
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		static char junk[JUNK], rd[65536];
		const char *req = "GET /big HTTP/1.1\r\nx-user: alice\r\nconnection: close\r\n\r\n";
		size_t total = 0;
		ssize_t k;
		int fd = peer_connect();
		if (fd < 0)
			_exit(1);
		memset(junk, 'j', sizeof(junk));
		(void)!write(fd, req, strlen(req));
		/* More than the agent reads ahead: some stays in its socket. */
		(void)!send(fd, junk, sizeof(junk), MSG_DONTWAIT);
		usleep(300 * 1000);
		while ((k = read(fd, rd, sizeof(rd))) > 0)
			total += (size_t)k;
		dprintf(p[1], "%zu %d\n", total, k < 0 ? errno : 0);
		_exit(0);
	}
	close(p[1]);
	recv_until(&c, AP_ACCEPT, &m);
	uint32_t sid = m.id;
	int64_t avail = m.u.accept.window; /* as the session keeps to it */
	recv_stream(&c, sid, buf, sizeof(buf), 1);
	CHECK(strstr(buf, "GET /big"));
	char head[128];
	int hl =
	        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n", BODY);
	send_data(&c, sid, head);
	avail -= hl;
	static char chunk[50001];
	memset(chunk, 'b', sizeof(chunk) - 1);
	for (int sent = 0; sent < BODY; sent += (int)sizeof(chunk) - 1) {
		while (avail < (int64_t)sizeof(chunk) - 1) {
			CHECK_EQ(recv_msg(&c, &m, WAIT_MS), 1);
			if (m.type == AP_CREDIT && m.id == sid)
				avail += m.u.credit.bytes;
		}
		send_data(&c, sid, chunk);
		avail -= (int64_t)sizeof(chunk) - 1;
	}
	send_msg(&c, &(struct ap_msg){.type = AP_CLOSE, .id = sid, .u.close = {AP_CLOSE_FIN, 0}});
	size_t total = 0;
	int err = -1;
	FILE *f = fdopen(p[0], "r");
	CHECK(f && fscanf(f, "%zu %d", &total, &err) == 2);
	fclose(f);
	waitpid(pid, NULL, 0);
	/* All of the response; after it, the agent's own 4xx for the junk
	 * it read as the next request head. */
	if (total < (size_t)hl + BODY || total >= (size_t)hl + BODY + 512)
		fprintf(stderr, "read %zu bytes, want %d and a short 4xx\n", total, hl + BODY);
	CHECK(total >= (size_t)hl + BODY && total < (size_t)hl + BODY + 512);
	CHECK_EQ(err, 0);
	teardown(&ar, &c);
	teardown_ns();
}

/* ---- cleanup ---- */

/* ---- HTTP/2: frames by hand ---- */

static void h2_send(int fd, uint8_t type, uint8_t flags, uint32_t sid, const void *p, size_t n)
{
	uint8_t h[H2F_HDR_LEN];

	h2f_hdr_write(h, (uint32_t)n, type, flags, sid);
	CHECK_EQ(write_all(fd, h, sizeof(h)), 0);
	if (n)
		CHECK_EQ(write_all(fd, p, n), 0);
}

/* A request's header block: GET path for user. */
static void h2_request(int fd, uint32_t sid, const char *path, const char *user, bool es)
{
	struct hpack_list l;
	uint8_t *b = NULL;
	size_t bl = 0, bcap = 0;

	hpack_list_init(&l);
	CHECK_EQ(hpack_list_add(&l, ":method", 7, "GET", 3), 0);
	CHECK_EQ(hpack_list_add(&l, ":scheme", 7, "http", 4), 0);
	CHECK_EQ(hpack_list_add(&l, ":path", 5, path, strlen(path)), 0);
	CHECK_EQ(hpack_list_add(&l, ":authority", 10, "pod", 3), 0);
	CHECK_EQ(hpack_list_add(&l, "x-user", 6, user, strlen(user)), 0);
	hpack_encode(&l, &b, &bl, &bcap);
	h2_send(fd, H2F_HEADERS, (uint8_t)(H2F_END_HEADERS | (es ? H2F_END_STREAM : 0)), sid, b,
	        bl);
	free(b);
	hpack_list_free(&l);
}

/* The next frame from the agent (payload into p, up to 16384). False at
 * EOF or after the socket's timeout. */
static bool h2_recv(int fd, struct h2f_hdr *h, uint8_t *p)
{
	uint8_t hb[H2F_HDR_LEN + 1]; /* read_some() NUL-terminates */

	if (read_some(fd, (char *)hb, sizeof(hb), H2F_HDR_LEN) != H2F_HDR_LEN)
		return false;
	h2f_hdr_parse(hb, h);
	CHECK(h->len <= H2F_DEFAULT_MAX_FRAME);
	return !h->len || read_some(fd, (char *)p, h->len + 1, h->len) == h->len;
}

/* Frames until one of type on sid; the others are dropped. */
static void h2_expect(int fd, uint8_t type, uint32_t sid, struct h2f_hdr *h, uint8_t *p)
{
	while (h2_recv(fd, h, p))
		if (h->type == type && h->sid == sid)
			return;
	fprintf(stderr, "no HTTP/2 frame of type %u on stream %u\n", type, sid);
	CHECK(false);
}

/* The agent answers alice's stream 502 when its client resets; a pod
 * that does not speak HTTP/2 gives bob's a 502 too. */
static void h2_check_502(int fd, struct hpack_dec *dec, uint32_t sid, const char *why)
{
	struct h2f_hdr h;
	uint8_t p[H2F_DEFAULT_MAX_FRAME + 1];
	struct hpack_list l;
	size_t vlen;

	h2_expect(fd, H2F_HEADERS, sid, &h, p);
	CHECK(h.flags & H2F_END_HEADERS);
	hpack_list_init(&l);
	CHECK_EQ(hpack_decode(dec, p, h.len, 65536, &l), 0);
	const uint8_t *st = hpack_list_get(&l, ":status", &vlen);
	CHECK(st && vlen == 3 && !memcmp(st, "502", 3));
	hpack_list_free(&l);
	h2_expect(fd, H2F_DATA, sid, &h, p);
	p[h.len] = 0;
	if (!strstr((char *)p, why)) {
		fprintf(stderr, "502 body: %s\n", p);
		CHECK(false);
	}
	CHECK(h.flags & H2F_END_STREAM);
}

/* An agent stealing port 80 for alice (env: added to its environment, or
 * NULL), and a peer connection that sent the HTTP/2 preface. */
static int h2_steal_start_env(struct agent_run *ar, struct conn *c, const char *env)
{
	setup_ns();
	agent_start_targeted(ar, env);
	connect_agent(c, ar);
	CHECK_EQ(subscribe(c, 1, AP_SUB_STEAL, AP_FILTER_ALL_OF, "^x-user: alice$", NULL), 0);
	int fd = peer_connect();
	CHECK(fd >= 0);
	CHECK_EQ(write_all(fd, H2F_PREFACE, H2F_PREFACE_LEN), 0);
	return fd;
}

static int h2_steal_start(struct agent_run *ar, struct conn *c)
{
	return h2_steal_start_env(ar, c, NULL);
}

TEST(steal_h2_frames)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	struct h2f_hdr h;
	static uint8_t p[H2F_DEFAULT_MAX_FRAME + 1];
	char buf[4096];
	struct hpack_dec *dec = hpack_dec_new();
	const uint8_t ping[8] = "pingpong";
	size_t pos = 0;
	uint16_t id;
	uint32_t v, max_streams = 0;

	/* The opening: our SETTINGS, theirs with the bound on streams, and
	 * a PING answered by the agent itself. */
	int fd = h2_steal_start(&ar, &c);
	h2_send(fd, H2F_SETTINGS, 0, 0, NULL, 0);
	h2_send(fd, H2F_PING, 0, 0, ping, 8);
	h2_expect(fd, H2F_SETTINGS, 0, &h, p);
	CHECK(!(h.flags & H2F_ACK));
	while (h2f_setting_next(p, h.len, &pos, &id, &v))
		if (id == H2S_MAX_CONCURRENT_STREAMS)
			max_streams = v;
	CHECK_EQ(max_streams, 128);
	h2_expect(fd, H2F_PING, 0, &h, p);
	CHECK(h.flags & H2F_ACK);
	CHECK(!memcmp(p, ping, 8));

	/* alice: an agent stream to the client, which sees an h2c
	 * connection open; it resets: 502. */
	h2_request(fd, 1, "/a", "alice", true);
	recv_until(&c, AP_ACCEPT, &m);
	uint32_t sid = m.id;
	recv_stream(&c, sid, buf, sizeof(buf), H2F_PREFACE_LEN);
	CHECK(!memcmp(buf, H2F_PREFACE, H2F_PREFACE_LEN));
	send_msg(&c, &(struct ap_msg){.type = AP_CLOSE,
	                              .id = sid,
	                              .u.close = {AP_CLOSE_RESET, ECONNREFUSED}});
	h2_check_502(fd, dec, 1, "local application failed");
	/* bob: to the pod, whose HTTP/1.1 app cannot answer HTTP/2. */
	h2_request(fd, 3, "/b", "bob", true);
	h2_check_502(fd, dec, 3, "pod's application failed");

	/* A header list over the advertised 64 KiB from a small block (one
	 * 1000-byte field indexed, then referenced 70 times): 431 for that
	 * stream, the connection lives on. */
	uint8_t big[1100], *b = big;
	*b++ = 0x40; /* literal with incremental indexing, new name */
	*b++ = 3;
	memcpy(b, "x-a", 3), b += 3;
	*b++ = 0x7f, *b++ = 0xe9, *b++ = 0x06; /* length 1000 */
	memset(b, 'a', 1000), b += 1000;
	*b++ = 0x82, *b++ = 0x84, *b++ = 0x86; /* GET, /, http */
	for (int i = 0; i < 70; i++)
		*b++ = 0xbe; /* dynamic table entry 62: x-a */
	h2_send(fd, H2F_HEADERS, H2F_END_HEADERS | H2F_END_STREAM, 5, big, (size_t)(b - big));
	h2_expect(fd, H2F_HEADERS, 5, &h, p);
	struct hpack_list l;
	size_t vlen;
	hpack_list_init(&l);
	CHECK_EQ(hpack_decode(dec, p, h.len, 65536, &l), 0);
	const uint8_t *st = hpack_list_get(&l, ":status", &vlen);
	CHECK(st && vlen == 3 && !memcmp(st, "431", 3));
	hpack_list_free(&l);

	/* 128 streams open at once (alice's, left unanswered); the 129th is
	 * refused. */
	for (uint32_t i = 0; i < 129; i++)
		h2_request(fd, 7 + 2 * i, "/open", "alice", false);
	recv_until(&c, AP_ACCEPT, &m);
	h2_expect(fd, H2F_RST_STREAM, 7 + 2 * 128, &h, p);
	CHECK_EQ(h2f_u32(p), H2E_REFUSED_STREAM);

	/* A header block over 64 KiB: GOAWAY, and the connection ends. */
	memset(p, 0, H2F_DEFAULT_MAX_FRAME);
	h2_send(fd, H2F_HEADERS, 0, 7 + 2 * 129, p, H2F_DEFAULT_MAX_FRAME);
	for (int i = 0; i < 4; i++)
		h2_send(fd, H2F_CONTINUATION, 0, 7 + 2 * 129, p, H2F_DEFAULT_MAX_FRAME);
	h2_expect(fd, H2F_GOAWAY, 0, &h, p);
	CHECK_EQ(h2f_u32(p + 4), H2E_ENHANCE_YOUR_CALM);
	CHECK(!h2_recv(fd, &h, p));
	close(fd);

	/* A connection whose first frame is not SETTINGS: PROTOCOL_ERROR. */
	fd = peer_connect();
	CHECK(fd >= 0);
	CHECK_EQ(write_all(fd, H2F_PREFACE, H2F_PREFACE_LEN), 0);
	h2_send(fd, H2F_PING, 0, 0, ping, 8);
	h2_expect(fd, H2F_GOAWAY, 0, &h, p);
	CHECK_EQ(h2f_u32(p + 4), H2E_PROTOCOL);
	close(fd);
	hpack_dec_free(dec);
	teardown(&ar, &c);
	teardown_ns();
}

/* The test plays the local app on an agent stream: one frame to it. */
static void ap_h2_send(struct conn *c, uint32_t id, uint8_t type, uint8_t flags, uint32_t sid,
                       const void *p, size_t n)
{
	uint8_t f[H2F_HDR_LEN + 64];

	CHECK(n <= 64);
	h2f_hdr_write(f, (uint32_t)n, type, flags, sid);
	if (n)
		memcpy(f + H2F_HDR_LEN, p, n);
	send_msg(c, &(struct ap_msg){.type = AP_DATA,
	                             .id = id,
	                             .u.data.data = {f, (uint32_t)(H2F_HDR_LEN + n)}});
}

/* What the agent sends on agent stream id, as HTTP/2 frames (the client
 * preface first), until a frame of type on sid. */
static void ap_h2_expect(struct conn *c, uint32_t id, bool preface, uint8_t type, uint32_t sid)
{
	static char buf[1 << 16];
	size_t n = 0, pos = preface ? H2F_PREFACE_LEN : 0;
	struct h2f_hdr h;

	for (;;) {
		n += recv_stream(c, id, buf + n, sizeof(buf) - n, 1);
		while (n - pos >= H2F_HDR_LEN) {
			h2f_hdr_parse((uint8_t *)buf + pos, &h);
			if (n - pos - H2F_HDR_LEN < h.len)
				break;
			pos += H2F_HDR_LEN + h.len;
			if (h.type == type && h.sid == sid)
				return;
		}
	}
}

/* The peer gives streams no window; alice's request (stream 1) goes to the
 * local app, played by the test, whose "hello" then waits in the agent.
 * Returns the agent stream; *ret_fd is the peer's connection. */
static uint32_t h2_held_answer(struct agent_run *ar, struct conn *c, int *ret_fd)
{
	struct ap_msg m;
	struct h2f_hdr h;
	static uint8_t p[H2F_DEFAULT_MAX_FRAME + 1];
	uint8_t status200 = 0x88; /* ":status: 200", static index 8 */
	const uint16_t iw = H2S_INITIAL_WINDOW_SIZE;
	uint32_t zero = 0;

	int fd = h2_steal_start(ar, c);
	h2f_put_settings(p, &iw, &zero, 1);
	CHECK_EQ(write_all(fd, p, H2F_HDR_LEN + 6), 0);
	h2_request(fd, 1, "/w", "alice", true);
	recv_until(c, AP_ACCEPT, &m);
	uint32_t id = m.id;
	ap_h2_expect(c, id, true, H2F_HEADERS, 1);
	ap_h2_send(c, id, H2F_SETTINGS, 0, 0, NULL, 0);
	ap_h2_send(c, id, H2F_HEADERS, H2F_END_HEADERS, 1, &status200, 1);
	ap_h2_send(c, id, H2F_DATA, H2F_END_STREAM, 1, "hello", 5);
	h2_expect(fd, H2F_HEADERS, 1, &h, p);
	*ret_fd = fd;
	return id;
}

/* Nothing more on stream 1 until the peer opens the window by a SETTINGS
 * change (§6.9.2); then all of "hello". */
static void h2_release_answer(int fd)
{
	struct h2f_hdr h;
	static uint8_t p[H2F_DEFAULT_MAX_FRAME + 1];
	const uint16_t iw = H2S_INITIAL_WINDOW_SIZE;
	uint32_t open = 65535;
	struct pollfd pf = {.fd = fd, .events = POLLIN};

	while (poll(&pf, 1, 300) > 0) {
		CHECK(h2_recv(fd, &h, p));
		CHECK(h.sid != 1);
	}
	h2f_put_settings(p, &iw, &open, 1);
	CHECK_EQ(write_all(fd, p, H2F_HDR_LEN + 6), 0);
	h2_expect(fd, H2F_DATA, 1, &h, p);
	CHECK(h.len == 5 && !memcmp(p, "hello", 5) && (h.flags & H2F_END_STREAM));
}

TEST(steal_h2_windows_and_goaway)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	struct h2f_hdr h;
	static uint8_t p[H2F_DEFAULT_MAX_FRAME + 1];
	uint8_t goaway[8] = {0, 0, 0, 1, 0, 0, 0, 0};
	int fd;

	uint32_t id = h2_held_answer(&ar, &c, &fd);
	h2_release_answer(fd);

	/* The local app's GOAWAY: a stream above its last id is refused to
	 * the peer; the next one opens a new connection to the app. */
	h2_request(fd, 3, "/g", "alice", true);
	ap_h2_expect(&c, id, false, H2F_HEADERS, 3);
	ap_h2_send(&c, id, H2F_GOAWAY, 0, 0, goaway, sizeof(goaway));
	h2_expect(fd, H2F_RST_STREAM, 3, &h, p);
	CHECK_EQ(h2f_u32(p), H2E_REFUSED_STREAM);
	h2_request(fd, 5, "/n", "alice", true);
	recv_until(&c, AP_ACCEPT, &m);
	CHECK(m.id != id);
	close(fd);
	teardown(&ar, &c);
	teardown_ns();
}

/* A route that closes after a whole response (a server's graceful
 * shutdown) while the response still waits for the peer's window: the
 * peer gets all of it, not a reset. */
TEST(steal_h2_route_closes_after_response)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	int fd;

	uint32_t id = h2_held_answer(&ar, &c, &fd);
	/* The local app's connection ends (FIN, then the supervisor's
	 * reset) before the peer opened its window. */
	send_msg(&c, &(struct ap_msg){.type = AP_CLOSE, .id = id, .u.close = {AP_CLOSE_FIN, 0}});
	send_msg(&c, &(struct ap_msg){
	                     .type = AP_CLOSE, .id = id, .u.close = {AP_CLOSE_RESET, ECONNRESET}});
	h2_release_answer(fd);
	/* The connection goes on: the next request opens a new route. */
	h2_request(fd, 3, "/n", "alice", true);
	recv_until(&c, AP_ACCEPT, &m);
	CHECK(m.id != id);
	close(fd);
	teardown(&ar, &c);
	teardown_ns();
}

/* Past the router's 256 HTTP/2 connections, the next one is not cut: it
 * goes to the pod's app whole, unfiltered (here an HTTP/1.1 app, which
 * answers the preface with an HTML error page). */
TEST(steal_h2_conn_limit)
{
	struct agent_run ar;
	struct conn c;
	struct h2f_hdr h;
	static uint8_t p[H2F_DEFAULT_MAX_FRAME + 1];
	const uint8_t ping[8] = "counting";
	int fds[256];
	char resp[64];

	fds[0] = h2_steal_start(&ar, &c);
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		if (i) {
			fds[i] = peer_connect();
			CHECK(fds[i] >= 0);
			CHECK_EQ(write_all(fds[i], H2F_PREFACE, H2F_PREFACE_LEN), 0);
		}
		h2_send(fds[i], H2F_SETTINGS, 0, 0, NULL, 0);
		h2_send(fds[i], H2F_PING, 0, 0, ping, 8);
		h2_expect(fds[i], H2F_PING, 0, &h, p);
	}
	int fd = peer_connect();
	CHECK(fd >= 0);
	CHECK_EQ(write_all(fd, H2F_PREFACE, H2F_PREFACE_LEN), 0);
	read_some(fd, resp, sizeof(resp), 8);
	if (!strstr(resp, "HTML")) {
		fprintf(stderr, "the 257th HTTP/2 connection got \"%s\"\n", resp);
		CHECK(false);
	}
	close(fd);
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		close(fds[i]);
	teardown(&ar, &c);
	teardown_ns();
}

/* For an agent whose memory is measured: under ASan, freed memory waits
 * in a quarantine (256 MB) that would count; the agent gets none. */
static const char *no_quarantine(void)
{
	static char env[512];
	const char *asan = getenv("ASAN_OPTIONS");

	snprintf(env, sizeof(env), "ASAN_OPTIONS=%s%squarantine_size_mb=0", asan ? asan : "",
	         asan ? ":" : "");
	return env;
}

/* The agent's peak resident memory in KiB (VmHWM). */
static long agent_hwm_kb(const struct agent_run *ar)
{
	char path[64], line[256];
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)ar->pid);
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	CHECK(kb > 0);
	return kb;
}

/* Header blocks are not flow-controlled and re-encoding inflates them: a
 * 4000-byte field indexed once, then 18-byte blocks that reference it 15
 * times (a 60 KB list each, for the pod), each stream reset at once. What
 * the agent queues towards the pod must stay bounded (it stops reading
 * the peer), not grow by the ~24 MB each 16 KiB read could make. */
TEST(steal_h2_header_amplification)
{
	struct agent_run ar;
	struct conn c;
	struct h2f_hdr h;
	static uint8_t p[H2F_DEFAULT_MAX_FRAME + 1];
	static uint8_t flood[64 * 1024 + 4200];
	const uint8_t ping[8] = "amplify!";
	uint8_t rst[4] = {0, 0, 0, H2E_CANCEL}, *b = flood;
	uint32_t sid = 1;

	int fd = h2_steal_start_env(&ar, &c, no_quarantine());
	h2_send(fd, H2F_SETTINGS, 0, 0, NULL, 0);
	h2_send(fd, H2F_PING, 0, 0, ping, 8);
	h2_expect(fd, H2F_PING, 0, &h, p);
	long before = agent_hwm_kb(&ar);
	while ((size_t)(b - flood) < 64 * 1024) {
		uint8_t *f = b;
		b += H2F_HDR_LEN;
		*b++ = 0x82, *b++ = 0x84, *b++ = 0x86; /* GET, /, http */
		if (sid == 1) {
			*b++ = 0x40; /* literal with incremental indexing */
			*b++ = 3;
			memcpy(b, "x-b", 3), b += 3;
			*b++ = 0x7f, *b++ = 0xa1, *b++ = 0x1e; /* length 4000 */
			memset(b, 'X', 4000), b += 4000;
		}
		for (int i = sid == 1 ? 1 : 0; i < 15; i++)
			*b++ = 0xbe; /* dynamic table entry 62: x-b */
		h2f_hdr_write(f, (uint32_t)(b - f - H2F_HDR_LEN), H2F_HEADERS,
		              H2F_END_HEADERS | H2F_END_STREAM, sid);
		h2f_hdr_write(b, 4, H2F_RST_STREAM, 0, sid);
		memcpy(b + H2F_HDR_LEN, rst, 4);
		b += H2F_HDR_LEN + 4;
		sid += 2;
	}
	CHECK_EQ(write_all(fd, flood, (size_t)(b - flood)), 0);
	/* All of it was read and handled: the PING behind it is answered. */
	h2_send(fd, H2F_PING, 0, 0, ping, 8);
	h2_expect(fd, H2F_PING, 0, &h, p);
	long after = agent_hwm_kb(&ar);
	fprintf(stderr, "agent VmHWM %ld -> %ld KiB (%u streams)\n", before, after, sid / 2);
	CHECK(after - before < 16 * 1024);
	close(fd);
	teardown(&ar, &c);
	teardown_ns();
}

/* A pod app that floods PINGs and reads nothing: the agent stops reading
 * it once the PING ACKs it owes reach H2_OUT_MAX, instead of queueing an
 * ACK for every PING. The test plays the pod's app on port 8080 (the
 * python app holds 80). */
TEST(steal_h2_pod_ping_flood)
{
	struct agent_run ar;
	struct conn c;
	static uint8_t buf[64 * 1024];
	const uint16_t port = 8080;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	char path[128];
	int one = 1;

	int fd = h2_steal_start_env(&ar, &c, no_quarantine());
	CHECK_EQ(subscribe_port(&c, 2, port, AP_SUB_STEAL, AP_FILTER_ALL_OF, "^x-user: alice$",
	                        NULL),
	         0);
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns_pod);
	int pod_nsfd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(pod_nsfd >= 0);
	CHECK(setns(pod_nsfd, CLONE_NEWNET) == 0);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(setns(root_nsfd, CLONE_NEWNET) == 0);
	close(pod_nsfd);
	inet_pton(AF_INET, POD_IP, &sa.sin_addr);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 4) == 0);
	close(fd);
	fd = peer_connect_port(port);
	CHECK(fd >= 0);
	CHECK_EQ(write_all(fd, H2F_PREFACE, H2F_PREFACE_LEN), 0);
	h2_send(fd, H2F_SETTINGS, 0, 0, NULL, 0);
	h2_request(fd, 1, "/flood", "bob", true);
	struct pollfd pf = {.fd = lfd, .events = POLLIN};
	CHECK(poll(&pf, 1, 5000) == 1);
	int pod = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	CHECK(pod >= 0);
	long before = agent_hwm_kb(&ar);
	/* SETTINGS, then PINGs until the agent takes no more for a second
	 * (or 32 MB went in: every PING read). */
	size_t n = 0, sent = 0;
	h2f_hdr_write(buf, 0, H2F_SETTINGS, 0, 0);
	for (n = H2F_HDR_LEN; n + H2F_HDR_LEN + 8 <= sizeof(buf); n += H2F_HDR_LEN + 8) {
		h2f_hdr_write(buf + n, 8, H2F_PING, 0, 0);
		memset(buf + n + H2F_HDR_LEN, 'p', 8);
	}
	size_t off = 0;
	pf = (struct pollfd){.fd = pod, .events = POLLOUT};
	while (sent < 32u * 1024 * 1024 && poll(&pf, 1, 1000) == 1) {
		ssize_t k = send(pod, buf + off, n - off, MSG_NOSIGNAL);
		CHECK(k > 0);
		sent += (size_t)k;
		off += (size_t)k;
		if (off == n)
			off = H2F_HDR_LEN; /* only the first round has the SETTINGS */
	}
	long after = agent_hwm_kb(&ar);
	fprintf(stderr, "pod sent %zu bytes of PING; agent VmHWM %ld -> %ld KiB\n", sent, before,
	        after);
	CHECK(sent < 16u * 1024 * 1024);
	CHECK(after - before < 16 * 1024);
	close(pod);
	close(lfd);
	close(fd);
	teardown(&ar, &c);
	teardown_ns();
}

static void cleanup_cases(const char *env)
{
	struct agent_run ar;
	struct conn c;
	char *before, *now;

	setup_ns();
	before = ruleset();

	/* A dropped client (no goodbye): the agent frees it, rules go. */
	agent_start_targeted(&ar, env);
	connect_agent(&c, &ar);
	CHECK_EQ(subscribe(&c, 1, AP_SUB_STEAL, AP_FILTER_NONE, NULL, NULL), 0);
	close(c.fd);
	free(c.buf);
	CHECK(ruleset_becomes(before, 5000));
	kill(ar.pid, SIGKILL);
	waitpid(ar.pid, NULL, 0);
	close(ar.out);

	/* SIGKILL of the agent: its guard removes the rules. */
	agent_start_targeted(&ar, env);
	connect_agent(&c, &ar);
	CHECK_EQ(subscribe(&c, 1, AP_SUB_STEAL, AP_FILTER_NONE, NULL, NULL), 0);
	kill(ar.pid, SIGKILL);
	waitpid(ar.pid, NULL, 0);
	close(ar.out);
	close(c.fd);
	free(c.buf);
	CHECK(ruleset_becomes(before, 5000));

	/* Leftovers of an agent that died with its guard (pid 4000000 does
	 * not exist): a new agent removes them at start. The iptables
	 * leftover is hooked from PREROUTING only: iptables-nft would create
	 * an OUTPUT base chain for the hook, and which base chains a dead
	 * agent caused to exist is not knowable afterwards (an empty one
	 * stays; it changes no packet). */
	if (env && strstr(env, "iptables"))
		CHECK(sh("ip netns exec %s sh -c 'iptables -t nat -N MTIN_4000000_1 && "
		         "iptables -t nat -N MTOUT_4000000_1 && iptables -t nat -A MTIN_4000000_1 "
		         "-p "
		         "tcp --dport 80 -j REDIRECT --to-ports 1 && iptables -t nat -I PREROUTING "
		         "1 "
		         "-j MTIN_4000000_1'",
		         ns_pod) == 0);
	else
		CHECK(sh("ip netns exec %s nft -f - <<'EOF'\ntable inet mirrord_trace_4000000_1 {\n"
		         " chain pre { type nat hook prerouting priority dstnat - 10; tcp dport 80 "
		         "redirect to :1; }\n}\nEOF",
		         ns_pod) == 0);
	now = ruleset();
	CHECK(strcmp(now, before) != 0);
	free(now);
	agent_start_targeted(&ar, env);
	now = ruleset();
	CHECK_STR(now, before);
	free(now);
	connect_agent(&c, &ar);
	teardown(&ar, &c);
	free(before);
	teardown_ns();
}

TEST(cleanup_nft)
{
	cleanup_cases(NULL);
}

TEST(cleanup_iptables)
{
	cleanup_cases("MIRRORD_TRACE_AGENT_FIREWALL=iptables");
}

/* ---- mirror ---- */

TEST(mirror_1000_requests)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	static char body[MIRROR_BODY + 1];
	static struct {
		uint32_t id;
		char *buf;
		size_t len;
		bool closed;
	} st[MIRROR_REQUESTS];
	size_t nst = 0, closed = 0;

	setup_ns();
	/* Reordering and duplicated segments (a retransmission as the
	 * capture sees it) on the way into the pod. */
	bool netem = sh("ip netns exec %s tc qdisc add dev mtq%d root netem delay 1ms "
	                "reorder 30%% 50%% duplicate 5%% 2>/dev/null",
	                ns_peer, (int)getpid()) == 0;
	memset(body, 'b', MIRROR_BODY);
	agent_start_targeted(&ar, NULL);
	connect_agent(&c, &ar);
	CHECK_EQ(subscribe(&c, 1, AP_SUB_MIRROR, AP_FILTER_NONE, NULL, NULL), 0);
	CHECK_EQ(subscribe(&c, 2, AP_SUB_MIRROR, AP_FILTER_ALL_OF, NULL, "GET") == EEXIST, 1);

	size_t answered = 0;
	for (int b = 0; b < MIRROR_REQUESTS / MIRROR_BATCH; b++) {
		int fds[MIRROR_BATCH];
		for (int i = 0; i < MIRROR_BATCH; i++) {
			char head[128];
			int k = b * MIRROR_BATCH + i;
			fds[i] = peer_connect();
			CHECK(fds[i] >= 0);
			snprintf(head, sizeof(head),
			         "POST /r%04d HTTP/1.1\r\ncontent-length: %d\r\n\r\n", k,
			         MIRROR_BODY);
			CHECK_EQ(write_all(fds[i], head, strlen(head)), 0);
			/* In pieces, so one request spans several segments. */
			for (int off = 0; off < MIRROR_BODY; off += 1000)
				CHECK_EQ(write_all(fds[i], body + off, 1000), 0);
		}
		for (int i = 0; i < MIRROR_BATCH; i++) {
			char resp[512];
			size_t got = 0;
			/* The whole response, or closing with unread bytes
			 * would send a reset. */
			while (got + 1 < sizeof(resp)) {
				ssize_t k = read(fds[i], resp + got, sizeof(resp) - 1 - got);
				if (k <= 0)
					break;
				got += (size_t)k;
				resp[got] = 0;
				if (strstr(resp, "pod\n"))
					break;
			}
			resp[got] = 0;
			answered += strstr(resp, "pod\n") != NULL;
			close(fds[i]);
		}
		/* Drain the agent meanwhile, so its window never closes. */
		while (recv_msg(&c, &m, 0) == 1) {
			if (m.type == AP_ACCEPT) {
				CHECK_EQ(m.u.accept.mode, AP_SUB_MIRROR);
				CHECK(nst < MIRROR_REQUESTS);
				st[nst].id = m.id;
				st[nst].buf = malloc(MIRROR_BODY + 128);
				nst++;
				continue;
			}
			size_t i;
			for (i = 0; i < nst && st[i].id != m.id; i++)
				;
			if (m.type == AP_CREDIT || i == nst)
				continue;
			if (m.type == AP_CLOSE) {
				CHECK_EQ(m.u.close.how, AP_CLOSE_FIN);
				st[i].closed = true;
				closed++;
				continue;
			}
			CHECK_EQ(m.type, AP_DATA);
			CHECK(st[i].len + m.u.data.data.len <= MIRROR_BODY + 128);
			memcpy(st[i].buf + st[i].len, m.u.data.data.ptr, m.u.data.data.len);
			st[i].len += m.u.data.data.len;
			send_msg(&c, &(struct ap_msg){.type = AP_CREDIT,
			                              .id = m.id,
			                              .u.credit.bytes = m.u.data.data.len});
		}
	}
	/* The connections are closed; their FINs are on the way. */
	while (closed < nst && recv_msg(&c, &m, 2000) == 1) {
		size_t i;
		for (i = 0; i < nst && st[i].id != m.id; i++)
			;
		if (i == nst || m.type == AP_CREDIT)
			continue;
		if (m.type == AP_CLOSE) {
			st[i].closed = true;
			closed++;
		} else if (m.type == AP_DATA) {
			memcpy(st[i].buf + st[i].len, m.u.data.data.ptr, m.u.data.data.len);
			st[i].len += m.u.data.data.len;
		}
	}
	size_t intact = 0;
	for (size_t i = 0; i < nst; i++) {
		char head[128];
		int k;
		if (sscanf(st[i].buf, "POST /r%d ", &k) != 1)
			continue;
		snprintf(head, sizeof(head), "POST /r%04d HTTP/1.1\r\ncontent-length: %d\r\n\r\n",
		         k, MIRROR_BODY);
		intact += st[i].closed && st[i].len == strlen(head) + MIRROR_BODY &&
		          !memcmp(st[i].buf, head, strlen(head)) &&
		          !memcmp(st[i].buf + strlen(head), body, MIRROR_BODY);
	}
	fprintf(stderr, "mirror: %zu answered by the pod, %zu streams, %zu intact%s\n", answered,
	        nst, intact, netem ? " (netem reorder 30%, duplicate 5%)" : " (no netem)");
	CHECK_EQ(answered, MIRROR_REQUESTS);
	CHECK_EQ(nst, MIRROR_REQUESTS);
	CHECK_EQ(intact, MIRROR_REQUESTS);
	for (size_t i = 0; i < nst; i++)
		free(st[i].buf);
	teardown(&ar, &c);
	teardown_ns();
}

TEST_MAIN_WITH_ARG(agent_path, "PATH-TO-mirrord-trace-agent")
