/* The one client session: reads frames, checks the handshake, dispatches
 * requests, and queues replies in a bounded output buffer. This is part
 * of the agent's main loop, so it logs (once per event, at the top). */
#include "agent/agent.h"
#include "agent/incoming.h"
#include "common/evloop.h"
#include "common/log.h"

#include <fcntl.h> /* splice */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Output policy. Input frames are processed only while the output queue
 * is below OUT_HIGH, and each input frame produces at most one large reply
 * (<= one full frame). Stream data is queued only below OUT_HIGH too.
 * Control frames (CONNECT_RESP, CLOSE, ERROR, PONG) are small and bounded
 * by the stream limit, and credits are deferred above OUT_HIGH. So the
 * queue never legitimately exceeds OUT_HARD; reaching it is a bug and is
 * treated as fatal rather than growing memory. */
#define OUT_HIGH (1u * 1024 * 1024)
#define OUT_HARD (OUT_HIGH + 2u * (AP_HEADER_SIZE + AP_MAX_PAYLOAD) + 512u * 1024)
/* A frame never exceeds this, so an input buffer this big always holds a
 * whole frame and a partial decode always means "read more". */
#define IN_CAP (AP_HEADER_SIZE + AP_MAX_PAYLOAD)
/* The HELLO payload is magic + version + reserved + a short name. A first
 * frame that claims more is not our client; reject it before waiting for
 * a megabyte that will never come. */
#define HELLO_MAX_PAYLOAD (8u + 4u + AP_MAX_STRING)
/* After AP_ERROR, how long we wait for the peer to read it. */
#define FAIL_FLUSH_MS 2000
/* Longest message we put in an AP_ERROR. */
#define ERROR_TEXT_MAX 512
/* Longest piece of a peer's string we copy into a log line. */
#define LOG_TEXT_MAX 256

struct client {
	struct agent *a;
	int fd;
	uint8_t *in;
	size_t in_len;
	uint8_t *out;
	size_t out_head, out_len; /* queued bytes are out[head, head+len) */
	size_t out_cap;
	uint32_t events;  /* current epoll interest */
	bool out_blocked; /* the socket refused bytes: wait for EPOLLOUT */
	bool hello_done;
	bool failing; /* AP_ERROR queued; flush then exit */
	bool done;    /* evloop_quit() called: touch nothing more */
	bool no_pipe; /* pipe2() failed once: no splice path */
	int pipe[2];  /* stream bytes on their way to fd (send_spliced) */
	int fail_code;
	int64_t hello_timer; /* 0 when not armed */
	int64_t fail_timer;
	int64_t kick_timer;
	int64_t detach_timer;
	struct files *files;       /* remote file handles of this session */
	struct incoming *incoming; /* port subscriptions, mirror/HTTP streams */
};

static void client_update(struct client *c);
static void client_flush(struct evloop *l, void *data);
static void detach(struct evloop *l, void *data);
static void client_on_event(struct evloop *l, int fd, uint32_t events, void *data);

/* The first reason to stop wins: a later event in the same loop turn
 * (say, EOF right after our AP_ERROR went out) must not rewrite the exit
 * code. */
static void client_quit(struct client *c, int code)
{
	if (c->done)
		return;
	c->done = true;
	evloop_quit(c->a->loop, code);
}

static void hello_timeout(struct evloop *l, void *data)
{
	struct client *c = data;

	c->hello_timer = 0;
	client_fail(c, AGENT_EXIT_FAIL, ETIMEDOUT,
	            "no handshake within %u s (--communication-timeout)", c->a->comm_timeout_s);
}

int client_new(struct agent *a, int fd, struct client **ret)
{
	struct client *c = xcalloc(1, sizeof(*c));
	int one = 1;
	int r;

	c->a = a;
	c->fd = fd;
	c->pipe[0] = c->pipe[1] = -1;
	c->in = xmalloc(IN_CAP);
	c->files = files_new(&a->target);
	c->incoming = incoming_new(c, a);
	/* Replies are latency-bound request/response frames: no Nagle. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->events = EPOLLIN;
	r = evloop_add(a->loop, fd, c->events, client_on_event, c);
	if (r == 0) {
		r = evloop_add_prepare(a->loop, client_flush, c);
		if (r < 0)
			evloop_del(a->loop, fd);
	}
	if (r < 0) {
		incoming_free(c->incoming);
		files_free(c->files);
		free(c->in);
		free(c);
		return r;
	}
	c->hello_timer =
	        evloop_timer(a->loop, (uint64_t)a->comm_timeout_s * 1000, hello_timeout, c);
	*ret = c;
	return 0;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	/* First, while c can still queue frames: its subscriptions end and
	 * their redirect rules go. */
	incoming_free(c->incoming);
	c->incoming = NULL;
	evloop_del(c->a->loop, c->fd);
	evloop_del_prepare(c->a->loop, client_flush, c);
	if (c->hello_timer)
		evloop_timer_cancel(c->a->loop, c->hello_timer);
	if (c->fail_timer)
		evloop_timer_cancel(c->a->loop, c->fail_timer);
	if (c->kick_timer)
		evloop_timer_cancel(c->a->loop, c->kick_timer);
	if (c->detach_timer)
		evloop_timer_cancel(c->a->loop, c->detach_timer);
	closep(&c->fd);
	closep(&c->pipe[0]);
	closep(&c->pipe[1]);
	files_free(c->files);
	free(c->in);
	free(c->out);
	free(c);
}

/* Room for n more bytes at the tail of the output queue: where they go, or
 * NULL past OUT_HARD. The caller adds what it wrote to out_len. */
static uint8_t *out_tail(struct client *c, size_t n)
{
	if (c->out_len + n > OUT_HARD)
		return NULL;
	/* Compact, then grow: the queue is a sliding window over out[]. */
	if (c->out_head + c->out_len + n > c->out_cap) {
		if (c->out_head) {
			memmove(c->out, c->out + c->out_head, c->out_len);
			c->out_head = 0;
		}
		if (c->out_len + n > c->out_cap) {
			size_t cap = c->out_cap ? c->out_cap : 64 * 1024;
			while (cap < c->out_len + n)
				cap *= 2;
			if (cap > OUT_HARD)
				cap = OUT_HARD;
			c->out = xrealloc(c->out, cap);
			c->out_cap = cap;
		}
	}
	return c->out + c->out_head + c->out_len;
}

int client_send(struct client *c, const struct ap_msg *m)
{
	ssize_t n = ap_encoded_size(m);
	uint8_t *p;

	if (n < 0)
		return (int)n;
	p = out_tail(c, (size_t)n);
	if (!p)
		return -ENOBUFS;
	n = ap_encode(m, p, c->out_cap - c->out_head - c->out_len);
	if (n < 0)
		return (int)n;
	c->out_len += (size_t)n;
	log_trace("-> %s id=%u (%zd bytes)", ap_type_name(m->type), m->id, n);
	/* Written by client_flush() before the loop waits again: one send
	 * for all the frames of this turn, and write interest only if the
	 * socket is full. */
	return 0;
}

/* The pipe of the splice path, made on first use. Returns false if there
 * is none (the in-place read serves then). */
static bool have_pipe(struct client *c)
{
	if (c->pipe[0] < 0 && !c->no_pipe && splice_pipe_open(c->pipe) < 0)
		c->no_pipe = true;
	return c->pipe[0] >= 0;
}

/* n bytes are in the pipe: the frame's header, then the bytes, straight to
 * the socket while it takes them; what it does not take is queued (read
 * out of the pipe), so the pipe is empty again and the order kept. */
static ssize_t send_spliced(struct client *c, uint32_t id, size_t n)
{
	uint8_t h[AP_HEADER_SIZE], *p;
	size_t hw = 0, moved = 0;
	ssize_t r;

	(void)ap_data_header_put(h, id, (uint32_t)n);
	/* MSG_MORE: header and bytes leave in one segment. */
	r = send(c->fd, h, sizeof(h), MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r > 0)
		hw = (size_t)r;
	if (hw == sizeof(h)) {
		r = splice(c->pipe[0], NULL, c->fd, NULL, n, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (r > 0)
			moved = (size_t)r;
	}
	if (hw == sizeof(h) && moved == n)
		return (ssize_t)n;
	/* has_room() held for a whole frame, so this cannot fail. */
	p = out_tail(c, sizeof(h) - hw + n - moved);
	memcpy(p, h + hw, sizeof(h) - hw);
	c->out_len += sizeof(h) - hw;
	while (moved < n) {
		r = read(c->pipe[0], c->out + c->out_head + c->out_len, n - moved);
		if (r <= 0) {
			/* The bytes are in the pipe; only a broken kernel
			 * would not give them back. The frame is cut: the
			 * stream of frames cannot go on. */
			log_error("cannot read back %zu spliced bytes: %s", n - moved,
			          r < 0 ? strerror(errno) : "EOF");
			client_quit(c, AGENT_EXIT_FAIL);
			return -EIO;
		}
		c->out_len += (size_t)r;
		moved += (size_t)r;
	}
	return (ssize_t)n;
}

ssize_t client_send_from(struct client *c, uint32_t id, int fd, size_t max, bool bulk)
{
	uint8_t *p;
	ssize_t n;

	if (max > AP_MAX_DATA)
		max = AP_MAX_DATA;
	/* Nothing queued: nothing the spliced frame could overtake. */
	if (bulk && !c->out_len && !c->failing && !c->done && have_pipe(c)) {
		n = splice(fd, NULL, c->pipe[1], NULL, max, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n > 0)
			return send_spliced(c, id, (size_t)n);
		if (n == 0)
			return 0;
		if (errno != EINVAL)
			return -errno;
		/* This socket cannot be spliced: read it. */
	}
	p = out_tail(c, AP_HEADER_SIZE + max);
	if (!p)
		return -ENOBUFS;
	n = recv(fd, p + AP_HEADER_SIZE, max, MSG_DONTWAIT);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	(void)ap_data_header_put(p, id, (uint32_t)n);
	c->out_len += AP_HEADER_SIZE + (size_t)n;
	return n;
}

bool client_has_room(const struct client *c, size_t n)
{
	return !c->failing && c->out_len + n <= OUT_HIGH;
}

/* Input is paused while our replies pile up or the streams hold too much
 * of the client's data: that is how a slow reader or a slow remote pushes
 * back on the client instead of on our memory. */
static bool input_paused(const struct client *c)
{
	return c->done || c->failing || c->out_len >= OUT_HIGH ||
	       (c->a->streams && streams_buffered(c->a->streams) >= AGENT_MAX_BUFFERED);
}

static void client_update(struct client *c)
{
	uint32_t ev = 0;

	if (!input_paused(c))
		ev |= EPOLLIN;
	/* Queued frames are sent by client_flush() before the loop waits;
	 * EPOLLOUT only once the socket has refused bytes. Asking for it
	 * whenever something was queued cost two epoll_ctl() calls (on,
	 * then off after the flush) per turn that answered a frame. */
	if (c->out_len && c->out_blocked)
		ev |= EPOLLOUT;
	if (ev == c->events)
		return;
	/* Cannot fail for a registered fd short of ENOMEM in the kernel;
	 * the loop keeps the old interest then, which only delays us. */
	(void)evloop_mod(c->a->loop, c->fd, ev);
	c->events = ev;
}

static void fail_flush_timeout(struct evloop *l, void *data)
{
	struct client *c = data;

	c->fail_timer = 0;
	client_quit(c, c->fail_code);
}

void client_fail(struct client *c, int code, int err, const char *fmt, ...)
{
	char text[ERROR_TEXT_MAX];
	va_list ap;

	if (c->failing)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (code == AGENT_EXIT_OK)
		log_info("%s", text);
	else
		log_error("%s", text);
	struct ap_msg m = {
	        .type = AP_ERROR,
	        .u.error = {.err = err, .message = {(const uint8_t *)text, (uint32_t)strlen(text)}},
	};
	if (client_send(c, &m) < 0) {
		client_quit(c, code);
		return;
	}
	c->failing = true;
	c->fail_code = code;
	client_update(c);
	c->fail_timer = evloop_timer(c->a->loop, FAIL_FLUSH_MS, fail_flush_timeout, c);
}

/* A peer's string made safe for one log line: at most cap - 1 bytes,
 * control and non-ASCII bytes shown as '?', so a hostile name cannot
 * forge log lines or terminal escapes. */
static const char *printable(const struct ap_bytes *b, char *buf, size_t cap)
{
	size_t n = b->len < cap - 1 ? b->len : cap - 1;

	for (size_t i = 0; i < n; i++)
		buf[i] = b->ptr[i] >= 0x20 && b->ptr[i] < 0x7f ? (char)b->ptr[i] : '?';
	buf[n] = 0;
	return buf;
}

static void reply_env(struct client *c, uint32_t id)
{
	/* err + count precede the entries in the payload. */
	size_t cap = AP_MAX_PAYLOAD - 8, len = 0;
	_cleanup_free_ uint8_t *buf = xmalloc(cap);
	uint32_t count = 0, dropped = 0;
	int r = target_env(&c->a->target, buf, cap, &len, &count, &dropped);

	if (r < 0) {
		log_warn("cannot read the environment of pid %d: %s", (int)c->a->target.pid,
		         strerror(-r));
		len = count = 0;
	} else if (dropped) {
		log_warn("environment: %u entries left out (limits: %u entries, %u bytes each, "
		         "%u bytes total)",
		         dropped, AP_MAX_ENV_COUNT, AP_MAX_STRING, (unsigned)cap);
	}
	struct ap_msg m = {
	        .type = AP_ENV_RESP,
	        .id = id,
	        .u.env_resp = {.err = r < 0 ? -r : 0,
	                       .count = count,
	                       .entries = {buf, (uint32_t)len}},
	};
	r = client_send(c, &m);
	if (r < 0)
		client_fail(c, AGENT_EXIT_FAIL, -r, "cannot queue ENV_RESP: %s", strerror(-r));
}

static void reply_file(struct client *c, uint32_t id, const struct ap_bytes *p)
{
	char path[AP_MAX_PATH + 1], text[LOG_TEXT_MAX];
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0;
	int r = ap_bytes_to_str(p, path, sizeof(path));

	if (r >= 0)
		r = target_read_file(&c->a->target, path, &buf, &len);
	if (r < 0)
		log_debug("FILE_REQ \"%s\": %s", printable(p, text, sizeof(text)), strerror(-r));
	struct ap_msg m = {
	        .type = AP_FILE_RESP,
	        .id = id,
	        .u.file_resp = {.err = r < 0 ? -r : 0, .content = {buf, (uint32_t)len}},
	};
	r = client_send(c, &m);
	if (r < 0)
		client_fail(c, AGENT_EXIT_FAIL, -r, "cannot queue FILE_RESP: %s", strerror(-r));
}

static void handle_hello(struct client *c, const struct ap_msg *m)
{
	const char *mode = agent_mode_name(c->a->target.mode);
	char text[LOG_TEXT_MAX];

	if (m->type != AP_HELLO || m->u.hello.magic != AP_MAGIC) {
		client_fail(c, AGENT_EXIT_FAIL, EPROTO,
		            "not a mirrord-trace client: bad handshake");
		return;
	}
	if (m->u.hello.version != AP_VERSION) {
		client_fail(c, AGENT_EXIT_FAIL, EPROTONOSUPPORT,
		            "protocol version %u not supported, agent speaks %u; upgrade "
		            "mirrord-trace or the agent image so both speak the same version",
		            m->u.hello.version, AP_VERSION);
		return;
	}
	struct ap_msg ok = {
	        .type = AP_HELLO_OK,
	        .u.hello_ok =
	                {
	                        .version = AP_VERSION,
	                        .agent_version = {(const uint8_t *)MT_VERSION,
	                                          sizeof(MT_VERSION) - 1},
	                        .mode = {(const uint8_t *)mode, (uint32_t)strlen(mode)},
	                },
	};
	if (client_send(c, &ok) < 0) {
		client_fail(c, AGENT_EXIT_FAIL, ENOBUFS, "cannot queue HELLO_OK");
		return;
	}
	c->hello_done = true;
	evloop_timer_cancel(c->a->loop, c->hello_timer);
	c->hello_timer = 0;
	log_info("client \"%s\" connected (protocol %u)",
	         printable(&m->u.hello.client_name, text, sizeof(text)), m->u.hello.version);
}

static void dispatch(struct client *c, const struct ap_msg *m)
{
	struct streams *s = c->a->streams;
	const char *why = NULL;
	char text[LOG_TEXT_MAX];
	int r = 0;

	if (!c->hello_done) {
		handle_hello(c, m);
		return;
	}
	switch (m->type) {
	case AP_ENV_REQ:
		reply_env(c, m->id);
		break;
	case AP_FILE_REQ:
		reply_file(c, m->id, &m->u.file_req.path);
		break;
	case AP_CONNECT:
		r = streams_connect(s, m->id, m, &why);
		break;
	case AP_DATA:
		r = incoming_data(c->incoming, m->id, &m->u.data.data, &why);
		if (r == 0)
			r = streams_data(s, m->id, &m->u.data.data, &why);
		break;
	case AP_CREDIT:
		r = incoming_credit(c->incoming, m->id, m->u.credit.bytes, &why);
		if (r == 0)
			r = streams_credit(s, m->id, m->u.credit.bytes, &why);
		break;
	case AP_CLOSE:
		r = incoming_close(c->incoming, m->id, m->u.close.how, m->u.close.err, &why);
		if (r == 0)
			r = streams_close(s, m->id, m->u.close.how, m->u.close.err, &why);
		break;
	case AP_PORT_SUB:
		incoming_sub(c->incoming, m);
		break;
	case AP_PORT_UNSUB:
		incoming_unsub(c->incoming, m);
		break;
	case AP_FS_REQ:
		files_serve(c->files, c, m);
		break;
	case AP_PING: {
		struct ap_msg pong = {.type = AP_PONG, .id = m->id};
		r = client_send(c, &pong);
		why = "cannot queue PONG";
		break;
	}
	case AP_PONG:
		break;
	case AP_ERROR:
		if (m->u.error.err == 0) {
			/* A goodbye: the session is over, no reconnect
			 * will follow. */
			log_info("client said goodbye; exiting");
			/* The client waits for our FIN before it closes, so
			 * that its close cannot turn into a reset that would
			 * overtake the goodbye; send it now, not at exit. */
			shutdown(c->fd, SHUT_WR);
			client_quit(c, AGENT_EXIT_OK);
			break;
		}
		/* The client gave up; its message says why. */
		log_error("client reported an error: %s (\"%s\")", strerror(m->u.error.err),
		          printable(&m->u.error.message, text, sizeof(text)));
		client_quit(c, AGENT_EXIT_FAIL);
		break;
	case AP_HELLO:
	case AP_HELLO_OK:
	case AP_ENV_RESP:
	case AP_FILE_RESP:
	case AP_CONNECT_RESP:
	case AP_FS_RESP:
	case AP_PORT_RESP:
	case AP_ACCEPT:
	default:
		r = -EPROTO;
		why = "unexpected message from the client";
		break;
	}
	if (r < 0)
		client_fail(c, AGENT_EXIT_FAIL, EPROTO,
		            "protocol error: %s: %s (message %s, id %u)", why ? why : "error",
		            strerror(-r), ap_type_name(m->type), m->id);
}

/* Before the handshake, look at the header alone: a first frame that is
 * not a HELLO of plausible size is not our client (an HTTP probe, say,
 * whose "GET " would read as a 1 GiB length). */
static bool first_frame_plausible(const uint8_t *p, size_t len)
{
	if (len < AP_HEADER_SIZE)
		return true;
	uint32_t plen = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return p[4] == AP_HELLO && plen <= HELLO_MAX_PAYLOAD;
}

static void process_input(struct client *c)
{
	size_t off = 0;

	while (!input_paused(c) && off < c->in_len) {
		struct ap_msg m;
		ssize_t n;

		if (!c->hello_done && !first_frame_plausible(c->in + off, c->in_len - off)) {
			client_fail(c, AGENT_EXIT_FAIL, EPROTO,
			            "not a mirrord-trace client: bad handshake");
			break;
		}
		n = ap_decode(c->in + off, c->in_len - off, &m);
		if (n == 0)
			break;
		if (n < 0) {
			if (c->hello_done)
				client_fail(c, AGENT_EXIT_FAIL, EPROTO,
				            "protocol error: undecodable frame: %s",
				            strerror((int)-n));
			else
				client_fail(c, AGENT_EXIT_FAIL, EPROTO,
				            "not a mirrord-trace client: bad handshake");
			break;
		}
		log_trace("<- %s id=%u", ap_type_name(m.type), m.id);
		dispatch(c, &m);
		off += (size_t)n;
	}
	if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
}

/* The client's socket failed or reached EOF (err = 0). */
static void client_gone(struct client *c, int err)
{
	if (c->failing) {
		/* We were closing anyway; the reason is already logged. */
		client_quit(c, c->fail_code);
	} else if (!c->hello_done) {
		log_error("client disconnected before the handshake%s%s", err ? ": " : "",
		          err ? strerror(err) : "");
		client_quit(c, AGENT_EXIT_FAIL);
	} else if (!c->done) {
		/* No goodbye: the link dropped (a port-forward cut, say) and
		 * the client may come back. Its streams end now; the agent
		 * waits --communication-timeout for a new connection. Once:
		 * a second detach timer would outlive the client the first
		 * one frees. */
		log_info("client connection lost%s%s; waiting up to %u s for it to reconnect",
		         err ? ": " : "", err ? strerror(err) : "", c->a->comm_timeout_s);
		c->done = true;
		c->detach_timer = evloop_timer(c->a->loop, 0, detach, c);
	}
	/* Nothing more to read or write: a level-triggered hangup would
	 * otherwise call us again until the client is freed. */
	evloop_del(c->a->loop, c->fd);
}

/* From a timer, never inside the client's own callbacks: forget the
 * client and everything it had open. */
static void detach(struct evloop *l, void *data)
{
	struct client *c = data;
	struct agent *a = c->a;

	c->detach_timer = 0;
	/* Streams first: closing them may still queue frames for c. */
	streams_free(a->streams);
	a->streams = streams_new(a);
	client_free(c);
	a->client = NULL;
	if (a->client_detached)
		a->client_detached(a);
}

static void do_read(struct client *c)
{
	ssize_t n = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		client_gone(c, errno);
		return;
	}
	if (n == 0) {
		client_gone(c, 0);
		return;
	}
	c->in_len += (size_t)n;
	process_input(c);
}

static void do_write(struct client *c)
{
	bool was_paused = input_paused(c),
	     had_room = client_has_room(c, AP_MAX_DATA + AP_HEADER_SIZE);
	ssize_t n = send(c->fd, c->out + c->out_head, c->out_len, MSG_NOSIGNAL);

	if (n < 0) {
		c->out_blocked = errno == EAGAIN;
		if (errno == EAGAIN || errno == EINTR)
			return;
		client_gone(c, errno);
		return;
	}
	/* A short write means the socket buffer is full: the next try
	 * would only return EAGAIN. */
	c->out_blocked = (size_t)n < c->out_len;
	c->out_head += (size_t)n;
	c->out_len -= (size_t)n;
	if (!c->out_len)
		c->out_head = 0;
	if (c->failing && !c->out_len) {
		/* AP_ERROR is out: close our side so the peer sees EOF. */
		shutdown(c->fd, SHUT_WR);
		client_quit(c, c->fail_code);
		return;
	}
	if (!had_room && client_has_room(c, AP_MAX_DATA + AP_HEADER_SIZE) && c->a->streams)
		streams_kick(c->a->streams);
	if (!had_room && client_has_room(c, AP_MAX_DATA + AP_HEADER_SIZE))
		incoming_kick(c->incoming);
	if (was_paused && !input_paused(c))
		client_kick(c);
}

static void client_on_event(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct client *c = data;

	if (c->done)
		return;

	if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c->out_len)
		do_write(c);
	/* A hangup is reported even while input is paused; read then, so
	 * that recv() turns it into EOF or an error instead of the
	 * level-triggered loop waking us for it forever. */
	if (!c->done &&
	    ((events & (EPOLLERR | EPOLLHUP)) || ((events & EPOLLIN) && !input_paused(c))))
		do_read(c);
	if (!c->done)
		client_update(c);
}

/* Before every wait: send what this turn queued. Interest in EPOLLOUT is
 * taken only when the socket would block, which saves two epoll_ctl()
 * calls and a wake-up per frame on request/response traffic. */
static void client_flush(struct evloop *l, void *data)
{
	struct client *c = data;

	if (c->done)
		return;
	if (c->out_len && !c->out_blocked)
		do_write(c);
	if (!c->done)
		client_update(c);
}

static void kick_timer(struct evloop *l, void *data)
{
	struct client *c = data;

	c->kick_timer = 0;
	process_input(c);
	client_update(c);
}

void client_kick(struct client *c)
{
	if (!c->kick_timer && c->in_len)
		c->kick_timer = evloop_timer(c->a->loop, 0, kick_timer, c);
	client_update(c);
}
