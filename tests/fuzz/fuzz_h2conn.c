/* The agent's HTTP/2 router (agent/h2.c, h2stream.c) as a whole, driven by
 * a fake peer and a fake local application: the input is a list of
 * chunks, each one byte of operation and two of length (big-endian):
 *   0  bytes from the peer (through a socketpair and the event loop)
 *   1  bytes from the local app on the newest agent stream
 *   2  the newest agent stream is reset by the client
 *   3  the newest agent stream gets credit back (its bytes were sent)
 * The agent streams are stubs of incoming.c's; the filter picks a request
 * when its :path starts with "/l". Requests for the pod go to a closed
 * port of 127.0.0.1 (they get a 502). Whatever the input, nothing may
 * crash or leak, and everything ends with h2_free_all(). */
#include "tests/fuzz/fuzz.h"
#include "agent/h2int.h"
#include "common/evloop.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_MAX_STREAMS 8

/* ---- stubs of incoming.c's agent streams and http.c's matcher ---- */

struct istream {
	const struct istream_ops *ops;
	void *ctx;
	size_t pending;
	bool closed;
};

static struct istream *streams[FUZZ_MAX_STREAMS];
static size_t nstreams;

struct istream *istream_open(struct incoming *in, uint8_t mode, uint16_t port,
                             const struct sockaddr *peer, const struct sockaddr *local,
                             uint32_t recv_window, const struct istream_ops *ops, void *ctx)
{
	if (nstreams == FUZZ_MAX_STREAMS)
		return NULL;
	struct istream *s = xcalloc(1, sizeof(*s));
	s->ops = ops;
	s->ctx = ctx;
	streams[nstreams++] = s;
	return s;
}

int istream_send(struct istream *s, const uint8_t *p, size_t n, size_t max_pending)
{
	if (s->pending + n > max_pending)
		return -ENOBUFS;
	s->pending += n;
	return 0;
}

size_t istream_pending(const struct istream *s)
{
	return s->pending;
}

void istream_credit(struct istream *s, uint32_t n) {}

void istream_close(struct istream *s, uint8_t how, int err)
{
	s->closed = true;
	s->ops = NULL;
}

bool http_filter_match(const struct http_filter *f, const struct http_req_view *v)
{
	return v->target_len >= 2 && !memcmp(v->target, "/l", 2);
}

/* ---- the driver ---- */

static void quit(struct evloop *l, void *data)
{
	evloop_quit(l, 0);
}

/* Runs the loop for what is ready now. */
static void turn(struct evloop *l)
{
	(void)evloop_timer(l, 0, quit, NULL);
	(void)evloop_run(l);
}

/* The newest agent stream the router still uses, or NULL. */
static struct istream *newest(void)
{
	struct istream *s = nstreams ? streams[nstreams - 1] : NULL;
	return s && !s->closed ? s : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http_filter *any = (const struct http_filter *)&any;
	struct sockaddr_in pod = {.sin_family = AF_INET, .sin_port = htons(1)};
	struct sockaddr_storage peer = {0}, orig = {0};
	struct agent a = {0};
	int sv[2];
	size_t pos = 0;

	pod.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memcpy(&orig, &pod, sizeof(pod));
	memcpy(&peer, &pod, sizeof(pod));
	if (evloop_new(&a.loop) < 0)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	h2_start(NULL, &a, sv[0], 80, &peer, &orig, any, (const uint8_t *)H2F_PREFACE,
	         H2F_PREFACE_LEN);
	while (pos + 3 <= size) {
		uint8_t op = data[pos];
		size_t n = (size_t)data[pos + 1] << 8 | data[pos + 2];
		struct istream *s = newest();
		pos += 3;
		if (n > size - pos)
			n = size - pos;
		if (op % 4 == 0) {
			if (send(sv[1], data + pos, n, MSG_NOSIGNAL) < 0)
				n = 0; /* the router closed its end: nothing is read */
		} else if (op % 4 == 1 && s) {
			s->ops->data(s->ctx, data + pos, n);
		} else if (op % 4 == 2 && s) {
			const struct istream_ops *ops = s->ops;
			s->closed = true;
			ops->closed(s->ctx, AP_CLOSE_RESET, ECONNRESET);
		} else if (op % 4 == 3 && s) {
			s->pending = 0;
			s->ops->writable(s->ctx);
		}
		pos += n;
		turn(a.loop);
		char sink[65536];
		while (read(sv[1], sink, sizeof(sink)) > 0)
			;
	}
	h2_free_all(NULL, -1);
	agent_linger_flush(); /* a peer end closed without a reset lingers */
	for (size_t i = 0; i < nstreams; i++)
		free(streams[i]);
	nstreams = 0;
	close(sv[1]);
	evloop_free(a.loop);
	return 0;
}
