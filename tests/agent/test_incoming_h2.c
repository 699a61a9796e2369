/* HTTP/2 (prior knowledge) through the real agent's filtered steal, frames
 * built by hand: SETTINGS, PING, 502s, bounds (header lists and blocks,
 * streams, connections), flow control and GOAWAY on the local route,
 * routes that close, and what a hostile peer or pod app can make the
 * agent hold (memory measured). The namespaces and the agent come from
 * incoming_harness.c. Usage: test_incoming_h2 PATH-TO-AGENT [TEST-NAME];
 * needs root. */
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
	steal_alice(ar, c, env);
	int fd = peer_connect();
	CHECK(fd >= 0);
	CHECK_EQ(write_all(fd, H2F_PREFACE, H2F_PREFACE_LEN), 0);
	return fd;
}

/* A peer connection to port that opened HTTP/2: preface and SETTINGS. */
static int h2_connect(uint16_t port)
{
	int fd = peer_connect_port(port);

	CHECK(fd >= 0);
	CHECK_EQ(write_all(fd, H2F_PREFACE, H2F_PREFACE_LEN), 0);
	h2_send(fd, H2F_SETTINGS, 0, 0, NULL, 0);
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

/* The HTTP/2 frames the agent sends on one agent stream (the test plays
 * the local app), read in order; the client preface is skipped. */
struct ap_frames {
	struct conn *c;
	uint32_t id;
	size_t n, pos;
	bool preface;
	uint8_t buf[1 << 17];
};

static void ap_frames_init(struct ap_frames *r, struct conn *c, uint32_t id)
{
	*r = (struct ap_frames){.c = c, .id = id, .preface = true};
}

/* The next frame: header in *h, payload in *p (valid until the next). */
static void ap_next(struct ap_frames *r, struct h2f_hdr *h, const uint8_t **p)
{
	for (;;) {
		if (r->preface && r->n - r->pos >= H2F_PREFACE_LEN) {
			CHECK(!memcmp(r->buf + r->pos, H2F_PREFACE, H2F_PREFACE_LEN));
			r->pos += H2F_PREFACE_LEN;
			r->preface = false;
		}
		if (!r->preface && r->n - r->pos >= H2F_HDR_LEN) {
			h2f_hdr_parse(r->buf + r->pos, h);
			if (r->n - r->pos - H2F_HDR_LEN >= h->len) {
				*p = r->buf + r->pos + H2F_HDR_LEN;
				r->pos += H2F_HDR_LEN + h->len;
				return;
			}
		}
		memmove(r->buf, r->buf + r->pos, r->n - r->pos);
		r->n -= r->pos;
		r->pos = 0;
		CHECK(r->n < sizeof(r->buf) - 1);
		r->n += recv_stream(r->c, r->id, (char *)r->buf + r->n, sizeof(r->buf) - r->n, 1);
	}
}

/* A route (the local app, played by the test) that allows 2 concurrent
 * streams, and 10 requests for it at once: it never sees more than 2
 * open; the others wait in the agent and begin as streams end, and every
 * request is answered (none refused). */
TEST(steal_h2_route_max_streams)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	struct h2f_hdr h;
	static uint8_t p[H2F_DEFAULT_MAX_FRAME + 1];
	static struct ap_frames r;
	const uint8_t *q;
	const uint16_t mcs = H2S_MAX_CONCURRENT_STREAMS;
	const uint32_t two = 2;
	uint8_t st[H2F_HDR_LEN + 6], status200 = 0x88;
	const uint8_t ping[8] = "two only";
	unsigned open = 0, begun = 0, answered = 0, oldest = 1;

	int fd = h2_steal_start(&ar, &c);
	h2_send(fd, H2F_SETTINGS, 0, 0, NULL, 0);
	h2_request(fd, 1, "/c", "alice", true);
	recv_until(&c, AP_ACCEPT, &m);
	ap_frames_init(&r, &c, m.id);
	do
		ap_next(&r, &h, &q);
	while (h.type != H2F_HEADERS);
	CHECK_EQ(h.sid, 1);
	open = begun = 1;
	/* The app's limit, known to the agent once it answers the PING. */
	h2f_put_settings(st, &mcs, &two, 1);
	ap_h2_send(&c, m.id, H2F_SETTINGS, 0, 0, st + H2F_HDR_LEN, 6);
	ap_h2_send(&c, m.id, H2F_PING, 0, 0, ping, 8);
	do
		ap_next(&r, &h, &q);
	while (h.type != H2F_PING);
	for (uint32_t sid = 3; sid <= 19; sid += 2)
		h2_request(fd, sid, "/c", "alice", true);
	/* The agent read all nine (its PING answer comes after them); what
	 * it sent the app by then comes before the app's PING answer. */
	h2_send(fd, H2F_PING, 0, 0, ping, 8);
	h2_expect(fd, H2F_PING, 0, &h, p);
	ap_h2_send(&c, m.id, H2F_PING, 0, 0, ping, 8);
	for (;;) {
		ap_next(&r, &h, &q);
		if (h.type == H2F_PING)
			break;
		if (h.type == H2F_HEADERS)
			open++, begun++;
	}
	fprintf(stderr, "streams begun at the app: %u of 10\n", begun);
	CHECK_EQ(open, 2);
	/* The app answers its oldest stream; the next queued one begins. */
	while (answered < 10) {
		ap_h2_send(&c, m.id, H2F_HEADERS, H2F_END_HEADERS | H2F_END_STREAM, oldest,
		           &status200, 1);
		oldest += 2;
		open--;
		answered++;
		if (begun == 10)
			continue;
		do
			ap_next(&r, &h, &q);
		while (h.type != H2F_HEADERS);
		CHECK_EQ(h.sid, 2 * begun + 1);
		open++, begun++;
		CHECK(open <= 2);
	}
	/* The peer got ten answers, in order, and no reset. */
	for (uint32_t sid = 1; sid <= 19; sid += 2) {
		do
			CHECK(h2_recv(fd, &h, p));
		while (h.type != H2F_HEADERS && h.type != H2F_RST_STREAM);
		CHECK_EQ(h.type, H2F_HEADERS);
		CHECK_EQ(h.sid, sid);
		CHECK(h.flags & H2F_END_STREAM);
	}
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
 * the peer), not grow by the ~24 MB each 16 KiB read could make. 240
 * streams (14 MB for the pod) stay under the rapid reset limit (256). */
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
	while (sid < 2 * 240) {
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
	CHECK(after - before < 8 * 1024);
	close(fd);
	teardown(&ar, &c);
	teardown_ns();
}

/* Rapid reset (CVE-2023-44487): requests reset at once, 400 in a row (each
 * one a HEADERS and a RST_STREAM for the pod's app): past 2 x 128 the
 * agent answers GOAWAY ENHANCE_YOUR_CALM and closes, instead of passing
 * them all on. */
TEST(steal_h2_rapid_reset)
{
	struct agent_run ar;
	struct conn c;
	struct h2f_hdr h;
	static uint8_t p[H2F_DEFAULT_MAX_FRAME + 1];
	static uint8_t flood[400 * (2 * H2F_HDR_LEN + 10)];
	const uint8_t ping[8] = "reset!!!";
	uint8_t *b = flood;

	int fd = h2_steal_start(&ar, &c);
	h2_send(fd, H2F_SETTINGS, 0, 0, NULL, 0);
	for (uint32_t sid = 1; sid < 2 * 400; sid += 2) {
		/* GET / http, :authority from the static table (index 1) */
		const uint8_t req[] = {0x82, 0x84, 0x86, 0x41, 0x01, 'p'};
		h2f_hdr_write(b, sizeof(req), H2F_HEADERS, H2F_END_HEADERS | H2F_END_STREAM, sid);
		memcpy(b + H2F_HDR_LEN, req, sizeof(req));
		b += H2F_HDR_LEN + sizeof(req);
		h2f_hdr_write(b, 4, H2F_RST_STREAM, 0, sid);
		memcpy(b + H2F_HDR_LEN, (uint8_t[4]){0, 0, 0, H2E_CANCEL}, 4);
		b += H2F_HDR_LEN + 4;
	}
	CHECK((size_t)(b - flood) <= sizeof(flood));
	CHECK_EQ(write_all(fd, flood, (size_t)(b - flood)), 0);
	h2_send(fd, H2F_PING, 0, 0, ping, 8);
	h2_expect(fd, H2F_GOAWAY, 0, &h, p);
	CHECK_EQ(h2f_u32(p + 4), H2E_ENHANCE_YOUR_CALM);
	fprintf(stderr, "GOAWAY after stream %u\n", h2f_u32(p) & 0x7fffffff);
	CHECK(h2f_u32(p) < 2 * 400);
	CHECK(!h2_recv(fd, &h, p));
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

	int fd = h2_steal_start_env(&ar, &c, no_quarantine());
	CHECK_EQ(subscribe_port(&c, 2, port, AP_SUB_STEAL, AP_FILTER_ALL_OF, "^x-user: alice$",
	                        NULL),
	         0);
	int lfd = pod_listen(port);
	close(fd);
	fd = h2_connect(port);
	h2_request(fd, 1, "/flood", "bob", true);
	int pod = pod_accept(lfd);
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
	struct pollfd pf = {.fd = pod, .events = POLLOUT};
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

/* A peer that sends PINGs and reads none of the answers: once they fill
 * the socket, the agent's output makes no progress, and after the stall
 * bound the connection is reset instead of living on. */
TEST(steal_h2_stalled_peer)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	static uint8_t buf[H2F_HDR_LEN + 8];
	int small = 4096;

	quick_agent();
	steal_alice(&ar, &c, NULL);
	int fd = h2_connect(APP_PORT);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	/* A stream open (to the test as the local app, unanswered): the
	 * idle bound does not apply, the stall alone ends it. An idle end
	 * would close lingering, and a FIN never reaches a peer that does
	 * not read. */
	h2_request(fd, 1, "/s", "alice", false);
	recv_until(&c, AP_ACCEPT, &m);
	/* PINGs until the agent takes no more for 100 ms (it stopped
	 * reading: its output is at the bound) or it cut the connection. */
	h2f_hdr_write(buf, 8, H2F_PING, 0, 0);
	memset(buf + H2F_HDR_LEN, 's', 8);
	struct pollfd pf = {.fd = fd, .events = POLLOUT};
	size_t sent = 0;
	while (sent < 64u * 1024 * 1024 && poll(&pf, 1, 100) == 1 && !(pf.revents & POLLERR) &&
	       send(fd, buf, sizeof(buf), MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
		sent += sizeof(buf);
	fprintf(stderr, "%zu bytes of PING went in\n", sent);
	CHECK(cut_within(fd, WAIT_MS));
	close(fd);
	teardown(&ar, &c);
	teardown_ns();
	normal_agent();
}

/* A pod app that opens its windows and then reads nothing (a small receive
 * buffer, so a 256 KiB request body fills it): past the stall bound its
 * connection is failed, and the stream gets the agent's 502. */
TEST(steal_h2_stalled_pod)
{
	struct agent_run ar;
	struct conn c;
	static uint8_t body[H2F_DEFAULT_MAX_FRAME];
	struct hpack_dec *dec = hpack_dec_new();
	const uint16_t port = 8080;
	int small = 4096;

	quick_agent();
	int fd = h2_steal_start(&ar, &c);
	close(fd);
	CHECK_EQ(subscribe_port(&c, 2, port, AP_SUB_STEAL, AP_FILTER_ALL_OF, "^x-user: alice$",
	                        NULL),
	         0);
	int lfd = pod_listen(port);
	setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	fd = h2_connect(port);
	h2_request(fd, 1, "/upload", "bob", false);
	/* The app opens its windows wide: what holds the body back is its
	 * socket alone. */
	int pod = pod_accept(lfd);
	uint8_t open[H2F_HDR_LEN + 6 + H2F_WINDOW_UPDATE_LEN];
	const uint16_t iw = H2S_INITIAL_WINDOW_SIZE;
	const uint32_t wide = 1u << 30;
	size_t n = h2f_put_settings(open, &iw, &wide, 1);
	n += h2f_put_window_update(open + n, 0, wide);
	CHECK_EQ(send(pod, open, n, MSG_NOSIGNAL), (ssize_t)n);
	for (int i = 0; i < 16; i++)
		h2_send(fd, H2F_DATA, 0, 1, body, sizeof(body));
	h2_check_502(fd, dec, 1, "pod's application failed: it read nothing");
	close(pod);
	close(lfd);
	close(fd);
	hpack_dec_free(dec);
	teardown(&ar, &c);
	teardown_ns();
	normal_agent();
}

/* A connection without streams that sends nothing gets GOAWAY (NO_ERROR)
 * and a close after the idle bound; one with a stream open does not. */
TEST(steal_h2_idle)
{
	struct agent_run ar;
	struct conn c;
	struct ap_msg m;
	struct h2f_hdr h;
	static uint8_t p[H2F_DEFAULT_MAX_FRAME + 1];
	uint8_t status200 = 0x88;

	quick_agent();
	int fd = h2_steal_start(&ar, &c);
	h2_send(fd, H2F_SETTINGS, 0, 0, NULL, 0);
	h2_request(fd, 1, "/i", "alice", true);
	recv_until(&c, AP_ACCEPT, &m);
	/* Three idle bounds with the request unanswered: no GOAWAY. */
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	while (poll(&pf, 1, 3 * 600) == 1) {
		CHECK(h2_recv(fd, &h, p));
		CHECK(h.type != H2F_GOAWAY);
	}
	ap_h2_expect(&c, m.id, true, H2F_HEADERS, 1);
	ap_h2_send(&c, m.id, H2F_SETTINGS, 0, 0, NULL, 0);
	ap_h2_send(&c, m.id, H2F_HEADERS, H2F_END_HEADERS | H2F_END_STREAM, 1, &status200, 1);
	h2_expect(fd, H2F_HEADERS, 1, &h, p);
	/* The stream ended: the idle bound runs from the last frame. */
	h2_expect(fd, H2F_GOAWAY, 0, &h, p);
	CHECK_EQ(h2f_u32(p + 4), H2E_NO_ERROR);
	CHECK_EQ(h2f_u32(p), 1);
	CHECK(!h2_recv(fd, &h, p));
	close(fd);
	teardown(&ar, &c);
	teardown_ns();
	normal_agent();
}

/* The agent-wide budget (64 MiB): 120 connections each send 1 MiB of
 * request bodies (4 streams at the 256 KiB window) to a pod app that takes
 * none of it (it reads nothing: 64 KiB of its window go out, the rest
 * waits in the agent). Without the budget the agent held ~1 MiB for each
 * (VmHWM +130 MiB here); with it, once the budget is passed a connection
 * is not read past 64 KiB of queued body (+80 MiB: the budget, ~100 KiB
 * of buffers per connection, a read each). */
TEST(steal_h2_memory_budget)
{
	struct agent_run ar;
	struct conn c;
	static uint8_t body[H2F_DEFAULT_MAX_FRAME];
	static int fds[120];
	static size_t off[120];
	static uint8_t tail[120][16];
	const uint16_t port = 8080;
	uint8_t *msg = NULL;
	size_t len = 0;

	int fd = h2_steal_start_env(&ar, &c, no_quarantine());
	close(fd);
	CHECK_EQ(subscribe_port(&c, 2, port, AP_SUB_STEAL, AP_FILTER_ALL_OF, "^x-user: alice$",
	                        NULL),
	         0);
	int lfd = pod_listen(port);
	/* What each connection sends after its preface and SETTINGS. */
	for (uint32_t sid = 1; sid <= 7; sid += 2) {
		int pfd[2];
		CHECK(pipe2(pfd, O_CLOEXEC | O_NONBLOCK) == 0);
		h2_request(pfd[1], sid, "/upload", "bob", false);
		uint8_t head[512];
		ssize_t k = read(pfd[0], head, sizeof(head));
		CHECK(k > 0);
		close(pfd[0]), close(pfd[1]);
		msg = xrealloc(msg, len + (size_t)k + 16 * (H2F_HDR_LEN + sizeof(body)));
		memcpy(msg + len, head, (size_t)k);
		len += (size_t)k;
		for (int i = 0; i < 16; i++) {
			h2f_hdr_write(msg + len, sizeof(body), H2F_DATA, 0, sid);
			memcpy(msg + len + H2F_HDR_LEN, body, sizeof(body));
			len += H2F_HDR_LEN + sizeof(body);
		}
	}
	/* A PING behind it all: answered once the agent read everything. */
	msg = xrealloc(msg, len + H2F_HDR_LEN + 8);
	h2f_hdr_write(msg + len, 8, H2F_PING, 0, 0);
	memcpy(msg + len + H2F_HDR_LEN, "budget!!", 8);
	len += H2F_HDR_LEN + 8;
	long before = agent_hwm_kb(&ar);
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		fds[i] = h2_connect(port);
		CHECK(fcntl(fds[i], F_SETFL, O_NONBLOCK) == 0);
	}
	/* Rounds over all of them until none takes more for 300 ms. */
	size_t sent = 0;
	for (bool more = true; more;) {
		struct pollfd pf[ARRAY_SIZE(fds)];
		nfds_t n = 0;
		for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
			if (off[i] < len)
				pf[n++] = (struct pollfd){.fd = fds[i], .events = POLLOUT};
		more = n && poll(pf, n, 300) > 0;
		for (nfds_t j = 0; more && j < n; j++) {
			size_t i = 0;
			while (fds[i] != pf[j].fd)
				i++;
			if (!(pf[j].revents & POLLOUT))
				continue;
			ssize_t k = send(fds[i], msg + off[i], len - off[i], MSG_NOSIGNAL);
			CHECK(k > 0);
			off[i] += (size_t)k;
			sent += (size_t)k;
		}
	}
	/* The answers, until none comes for 500 ms (the connections the
	 * budget stopped never answer). */
	size_t answered = 0;
	for (bool more = true; more;) {
		struct pollfd pf[ARRAY_SIZE(fds)];
		for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
			pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
		more = poll(pf, ARRAY_SIZE(fds), 500) > 0;
		for (size_t i = 0; more && i < ARRAY_SIZE(fds); i++) {
			uint8_t in[16384 + 16];
			ssize_t k;
			while (fds[i] >= 0 && (k = read(fds[i], in + 16, sizeof(in) - 16)) > 0) {
				memcpy(in, tail[i], 16);
				if (memmem(in, (size_t)k + 16, "budget!!", 8)) {
					answered++;
					close(fds[i]);
					fds[i] = -1; /* poll() skips it */
					break;
				}
				memcpy(tail[i], in + k, 16);
			}
		}
	}
	long after = agent_hwm_kb(&ar);
	fprintf(stderr,
	        "%zu KiB sent on %zu connections, %zu read whole; agent VmHWM %ld -> %ld KiB\n",
	        sent / 1024, ARRAY_SIZE(fds), answered, before, after);
#ifndef __SANITIZE_ADDRESS__
	/* Not under ASan: its allocator keeps each freed size class for
	 * reuse, and the queues' reallocations count in VmHWM whole (+130
	 * MiB either way). */
	CHECK(after - before < 100 * 1024);
#endif
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(msg);
	close(lfd);
	teardown(&ar, &c);
	teardown_ns();
}

TEST_MAIN_WITH_ARG(agent_path, "PATH-TO-mirrord-trace-agent")
