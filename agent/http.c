/* Filtered steal: one stolen connection served request by request.
 *
 * Each HTTP/1.x request head is parsed and matched against the filter.
 * A connection that opens with the HTTP/2 prior-knowledge preface
 * (RFC 9113 §3.3, h2c) goes to h2.c, which routes it stream by stream;
 * after the port's unsubscription (no filter) it goes whole, raw both
 * ways, to the pod's app (one notice per port).
 * A match goes to the client, on one agent stream per connection
 * (opened at the first match, reused while it lives); the rest go to the
 * pod's app, on one connection to the original destination per stolen
 * connection, marked MT_AGENT_MARK so no redirect catches it. Requests
 * are served one at a time: the next (pipelined) request is routed only
 * after the previous response ended, which needs the response framing
 * (1xx, 204/304/HEAD, chunked, Content-Length, or until EOF). A matched
 * request answered "101 Switching Protocols" turns the connection into
 * raw TCP with the client. A client that fails before the first byte of
 * its response makes the agent answer 502 with a body saying so.
 *
 * Bounds: a head (request or response) is at most HTTP_MAX_HEAD bytes
 * (431 / 502 past it); bytes in flight per direction are bounded by
 * HTTP_MAX_BUF and by the client's stream window. */
#include "agent/h2.h"
#include "agent/http1.h"
#include "agent/sniff.h"
#include "common/evloop.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define HTTP_MAX_BUF (256u * 1024)
#define HTTP_MAX_CONNS 1024

enum hstate { HS_HEAD, HS_BODY, HS_WAIT, HS_RAW };

struct hconn {
	struct hconn *next;
	struct incoming *in;
	struct agent *a;
	const struct http_filter *f; /* NULL after unsubscribe: all passes */
	uint16_t port;
	struct sockaddr_storage peer, orig;
	int fd, up;
	uint32_t ev, up_ev;
	bool up_connecting, peer_eof, up_eof, peer_wr_shut, close_after;
	bool routed;    /* a request (or the HTTP/2 preface) was routed */
	bool up_shut;   /* raw to the pod: its write side shut after the peer's EOF */
	bool clean_end; /* raw to the pod: it closed, the peer gets a FIN */
	enum hstate st;
	bool to_client, head_req, upgrade_req, resp_started, in_resp_body;
	bool resp_done; /* the response ended before the request's body */
	bool reroute;   /* an exchange ended outside on_response(): route what
	                 * the peer pipelined behind it (hconn_update) */
	struct http1_framer req, resp;
	struct istream *is;
	uint8_t *ibuf; /* from the peer, not yet routed */
	size_t ilen;
	size_t iscan, rscan; /* how far ibuf / rbuf were searched for a head's end */
	uint8_t *rbuf;       /* response head being collected */
	size_t rlen;
	uint8_t *obuf; /* to the peer */
	size_t olen;
	uint32_t owed; /* client stream bytes written to the peer, not credited */
	uint8_t *ubuf; /* to the pod's app */
	size_t ulen;
	int64_t detect_timer; /* waiting for the first request line */
	/* One side closed (or the agent ends the connection): at most
	 * AGENT_HALF_MS without a byte moving (moved, any way) before the
	 * reset, so a raw exchange whose other side never closes, or a peer
	 * that never reads its last answer, does not live on. */
	int64_t half_timer;
	uint64_t moved, moved_seen;
};

static struct hconn *conns;
static size_t nconns;

/* ---- connection ---- */

static void hconn_update(struct hconn *h);
static void hconn_process(struct hconn *h);
static void detect_stop(struct hconn *h);

static void hconn_free(struct hconn *h, bool reset)
{
	for (struct hconn **p = &conns; *p; p = &(*p)->next)
		if (*p == h) {
			*p = h->next;
			break;
		}
	nconns--;
	detect_stop(h);
	if (h->half_timer > 0)
		evloop_timer_cancel(h->a->loop, h->half_timer);
	if (h->is)
		istream_close(h->is, AP_CLOSE_RESET, ECONNABORTED);
	if (h->ev)
		evloop_del(h->a->loop, h->fd);
	if (h->up_ev)
		evloop_del(h->a->loop, h->up);
	if (reset) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		(void)setsockopt(h->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		closep(&h->fd);
	} else {
		agent_linger_close(h->a->loop, h->fd);
		h->fd = -1;
	}
	closep(&h->up);
	free(h->ibuf);
	free(h->rbuf);
	free(h->obuf);
	free(h->ubuf);
	free(h);
}

void hconn_free_all(struct incoming *in, int port)
{
	struct hconn *h = conns, *next;

	for (; h; h = next) {
		next = h->next;
		if (h->in != in)
			continue;
		if (port < 0)
			hconn_free(h, true);
		else if (h->port == port)
			h->f = NULL; /* unsubscribed: what follows passes through */
	}
	h2_free_all(in, port);
}

static bool buf_add(uint8_t **buf, size_t *len, const uint8_t *p, size_t n)
{
	if (*len + n > HTTP_MAX_BUF + HTTP_MAX_HEAD)
		return false;
	*buf = xrealloc(*buf, *len + n ? *len + n : 1);
	memcpy(*buf + *len, p, n);
	*len += n;
	return true;
}

static void buf_drop(uint8_t *buf, size_t *len, size_t n)
{
	memmove(buf, buf + n, *len - n);
	*len -= n;
}

/* Bytes leave the front of what the peer sent: the head search starts
 * over. */
static void in_drop(struct hconn *h, size_t n)
{
	buf_drop(h->ibuf, &h->ilen, n);
	h->iscan = 0;
}

static void to_peer(struct hconn *h, const uint8_t *p, size_t n)
{
	if (n)
		h->resp_started = true;
	if (!buf_add(&h->obuf, &h->olen, p, n))
		h->close_after = true; /* cannot happen within the windows */
}

/* Send request bytes to the current target. */
static bool to_target(struct hconn *h, const uint8_t *p, size_t n)
{
	if (h->to_client) {
		if (!h->is)
			return true; /* the client failed: the rest is dropped */
		h->moved += n;
		return istream_send(h->is, p, n, HTTP_MAX_BUF + HTTP_MAX_HEAD) == 0;
	}
	return buf_add(&h->ubuf, &h->ulen, p, n);
}

static void answer_error(struct hconn *h, unsigned status, const char *reason, const char *why)
{
	char resp[512];
	char body[256];
	int bl = snprintf(body, sizeof(body), "mirrord-trace-agent: %s\n", why);
	int n = snprintf(resp, sizeof(resp),
	                 "HTTP/1.1 %u %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
	                 "\r\n%s",
	                 status, reason, bl, body);
	to_peer(h, (const uint8_t *)resp, (size_t)n);
}

/* The current exchange ended: the next request may be routed. */
static void exchange_done(struct hconn *h)
{
	h->st = HS_HEAD;
	h->resp_started = false;
	h->in_resp_body = false;
	h->resp_done = false;
	h->rlen = 0;
	h->rscan = 0;
}

/* The target of the current request failed before its response ended. */
static void target_failed(struct hconn *h, const char *why)
{
	if (h->resp_started || h->st == HS_RAW) {
		/* Half a response is out: only a reset is honest now. */
		h->close_after = true;
		h->peer_eof = true;
		return;
	}
	answer_error(h, 502, "Bad Gateway", why);
	if (h->st == HS_BODY)
		h->close_after = true; /* the rest of the body has no taker */
	exchange_done(h);
	/* A request the peer pipelined is in ibuf already, and no read may
	 * come to wake the connection for it. */
	h->reroute = true;
}

static void client_closed(void *ctx, uint8_t how, int err);
static void client_data(void *ctx, const uint8_t *p, size_t n);
static void client_writable(void *ctx);
static const struct istream_ops client_ops = {client_data, client_closed, client_writable};

static void up_event(struct evloop *l, int fd, uint32_t events, void *data);
static void peer_event(struct evloop *l, int fd, uint32_t events, void *data);

static int up_connect(struct hconn *h)
{
	int mark = MT_AGENT_MARK;
	socklen_t sl = h->orig.ss_family == AF_INET ? sizeof(struct sockaddr_in)
	                                            : sizeof(struct sockaddr_in6);
	int fd = socket(h->orig.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* The OUTPUT redirect skips marked sockets; PREROUTING never sees
	 * our own packets. */
	(void)setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	if (connect(fd, (struct sockaddr *)&h->orig, sl) < 0 && errno != EINPROGRESS) {
		int r = -errno;
		close(fd);
		return r;
	}
	h->up = fd;
	h->up_connecting = true;
	h->up_eof = false;
	return 0;
}

/* ---- detection: the first bytes, or their absence, decide whether the
 * connection is HTTP at all (mirrord's http_detection_timeout) ---- */

static void detect_timeout(struct evloop *l, void *data);

static void detect_stop(struct hconn *h)
{
	if (h->detect_timer > 0)
		evloop_timer_cancel(h->a->loop, h->detect_timer);
	h->detect_timer = 0;
}

/* (Re)start the wait for the first whole request head. Without a timer
 * (no memory) the connection waits for its bytes as long as they take. */
static void detect_arm(struct hconn *h)
{
	detect_stop(h);
	int64_t t = evloop_timer(h->a->loop, h->a->http_detect_ms, detect_timeout, h);
	h->detect_timer = t > 0 ? t : 0;
}

/* Why a connection on a filtered port goes to the pod's app whole. */
enum whole {
	WHOLE_NOT_HTTP, /* it does not open with an HTTP request */
	WHOLE_SILENT,   /* no whole first head within the detection timeout */
	WHOLE_H2_FULL,  /* HTTP/2, past the router's limit on connections */
	WHOLE_H2_UNSUB, /* HTTP/2, after the port's unsubscription */
	WHOLE_N
};

/* All of h, from the bytes read so far, to the pod's app, raw both ways;
 * one notice per port and reason. */
static void pass_whole(struct hconn *h, enum whole why)
{
	static const char *const text[WHOLE_N] = {
	        [WHOLE_NOT_HTTP] = "a connection that does not speak HTTP",
	        [WHOLE_SILENT] = "a connection that sent no whole HTTP request head in time",
	        [WHOLE_H2_FULL] = "an HTTP/2 (prior knowledge) connection past the limit",
	        [WHOLE_H2_UNSUB] = "an HTTP/2 (prior knowledge) connection after unsubscribing",
	};
	static uint16_t noted[WHOLE_N][16];
	bool seen = false;
	for (size_t i = 0; i < ARRAY_SIZE(noted[why]) && noted[why][i]; i++)
		seen |= noted[why][i] == h->port;
	if (!seen) {
		for (size_t i = 0; i < ARRAY_SIZE(noted[why]); i++)
			if (!noted[why][i]) {
				noted[why][i] = h->port;
				break;
			}
		log_info("port %u: %s goes to the pod's application whole", h->port, text[why]);
	}
	detect_stop(h);
	h->routed = true;
	h->to_client = false;
	int r = h->up < 0 ? up_connect(h) : 0;
	if (r < 0) {
		log_debug("port %u: cannot reach the pod's application: %s", h->port, strerror(-r));
		h->close_after = true;
		h->peer_eof = true; /* a reset: there is no HTTP error to give */
		return;
	}
	h->st = HS_RAW;
}

/* No request line, or no whole first head, in time: a protocol whose
 * server speaks first, a client that opened a connection for later, or
 * one that sends its first head slowly. The pod's app gets it (and any
 * bytes read), and deals with it as it would without us. */
static void detect_timeout(struct evloop *l, void *data)
{
	struct hconn *h = data;

	(void)l;
	h->detect_timer = 0;
	if (h->routed || h->st != HS_HEAD || h->close_after)
		return;
	pass_whole(h, WHOLE_SILENT);
	hconn_process(h);
	hconn_update(h);
}

/* An HTTP/2 connection on a filtered port: h2.c routes it stream by
 * stream. The socket and what was read of it go there; h is freed (by
 * hconn_update(), which every caller of hconn_process() runs next). */
static void h2_adopt(struct hconn *h)
{
	if (h->ev)
		evloop_del(h->a->loop, h->fd);
	h->ev = 0;
	h2_start(h->in, h->a, h->fd, h->port, &h->peer, &h->orig, h->f, h->ibuf, h->ilen);
	h->fd = -1;
	h->ilen = 0;
	h->iscan = 0;
	h->close_after = true;
}

/* Route the head at ibuf[0..len). */
static int route_request(struct hconn *h, size_t len)
{
	struct http1_head *hd = xmalloc(sizeof(*hd));
	int r = http1_parse_head((const char *)h->ibuf, len, true, hd);

	if (r == 0)
		r = http1_body_framing(hd, true, &h->req);
	if (r < 0) {
		free(hd);
		answer_error(h, 400, "Bad Request", "malformed HTTP/1.x request");
		h->close_after = true;
		return r;
	}
	h->head_req = hd->method_len == 4 && !strncmp(hd->method, "HEAD", 4);
	h->upgrade_req = false;
	for (unsigned k = 0; k < hd->nh; k++)
		h->upgrade_req |= http1_hdr_is(hd, k, "upgrade");
	h->to_client = h->f && http1_filter_match(h->f, hd);
	h->routed = true;
	free(hd);
	if (h->to_client && !h->is) {
		h->is = istream_open(h->in, AP_SUB_STEAL, h->port, (struct sockaddr *)&h->peer,
		                     (struct sockaddr *)&h->orig, HTTP_MAX_BUF, &client_ops, h);
		if (!h->is) {
			/* Its head and body stay unread: the 502 ends the
			 * connection, as for a pod that cannot be reached. */
			h->st = HS_BODY;
			target_failed(h,
			              "the local application is not reachable (too many streams)");
			return -EMFILE;
		}
	}
	if (!h->to_client && h->up < 0 && (r = up_connect(h)) < 0) {
		char why[128];
		snprintf(why, sizeof(why), "cannot reach the pod's application: %s", strerror(-r));
		h->st = HS_BODY;
		target_failed(h, why);
		return r;
	}
	log_debug("HTTP request on port %u to %s", h->port,
	          h->to_client ? "the client" : "the pod");
	(void)to_target(h, h->ibuf, len);
	in_drop(h, len);
	h->st = h->req.done ? HS_WAIT : HS_BODY;
	memset(&h->resp, 0, sizeof(h->resp));
	return 0;
}

/* Route what the peer sent, as far as the state allows. */
static void hconn_process(struct hconn *h)
{
	while (h->ilen && !h->close_after) {
		if (h->st == HS_RAW) {
			if (!to_target(h, h->ibuf, h->ilen))
				return;
			h->ilen = 0;
			h->iscan = 0;
			return;
		}
		if (h->st == HS_WAIT)
			return;
		if (h->st == HS_HEAD && !h->routed) {
			switch (sniff_http(h->ibuf, h->ilen)) {
			case SNIFF_MORE:
				if (h->ilen >= HTTP_MAX_HEAD) {
					/* a "request line" longer than any head */
					pass_whole(h, WHOLE_NOT_HTTP);
					continue;
				}
				detect_arm(h); /* the wait starts over with each read */
				return;
			case SNIFF_H2:
				if (h->f && !h2_full()) {
					detect_stop(h);
					h2_adopt(h);
					return;
				}
				pass_whole(h, h->f ? WHOLE_H2_FULL : WHOLE_H2_UNSUB);
				continue;
			case SNIFF_OTHER:
				pass_whole(h, WHOLE_NOT_HTTP);
				continue;
			case SNIFF_HTTP1:
				break; /* the wait goes on to the head's end */
			}
		}
		if (h->st == HS_HEAD) {
			/* Empty lines before a request line are ignored (RFC
			 * 9112 §2.2), not passed on: an app may take one for
			 * a request (python's http.server closes). */
			size_t len = http1_empty_lines(h->ibuf, h->ilen);
			if (len) {
				in_drop(h, len);
				continue;
			}
			len = http1_head_len(h->ibuf, h->ilen, &h->iscan);
			if (!len) {
				if (h->ilen >= HTTP_MAX_HEAD) {
					answer_error(h, 431, "Request Header Fields Too Large",
					             "request head over the agent's limit");
					h->close_after = true;
				} else if (!h->routed) {
					detect_arm(h);
				}
				return;
			}
			detect_stop(h);
			if (route_request(h, len) < 0)
				return;
			continue;
		}
		/* HS_BODY */
		ssize_t n = http1_framer_feed(&h->req, h->ibuf, h->ilen);
		if (n < 0) {
			h->close_after = true;
			return;
		}
		if (!to_target(h, h->ibuf, (size_t)n))
			return; /* no room: wait for writable */
		in_drop(h, (size_t)n);
		if (h->req.done && h->resp_done)
			exchange_done(h); /* answered early: nothing to wait for */
		else if (h->req.done)
			h->st = HS_WAIT;
	}
}

/* Response bytes from the current target. */
static void on_response(struct hconn *h, const uint8_t *p, size_t n)
{
	while (n) {
		if (h->st == HS_RAW) {
			to_peer(h, p, n);
			return;
		}
		if (h->st == HS_HEAD) {
			/* Bytes beyond a finished response: not HTTP/1.x. */
			h->close_after = true;
			return;
		}
		if (!h->in_resp_body) {
			size_t before = h->rlen, len;
			if (!buf_add(&h->rbuf, &h->rlen, p, n > HTTP_MAX_HEAD ? HTTP_MAX_HEAD : n))
				return;
			len = http1_head_len(h->rbuf, h->rlen, &h->rscan);
			if (!len) {
				if (h->rlen >= HTTP_MAX_HEAD)
					target_failed(h, "response head over the agent's limit");
				return;
			}
			struct http1_head *hd = xmalloc(sizeof(*hd));
			int r = http1_parse_head((const char *)h->rbuf, len, false, hd);
			if (r == 0)
				r = http1_body_framing(hd, false, &h->resp);
			unsigned status = hd->status;
			free(hd);
			if (r < 0) {
				target_failed(h, "malformed response");
				return;
			}
			to_peer(h, h->rbuf, len);
			size_t used = len - before;
			p += used;
			n -= used;
			h->rlen = 0;
			h->rscan = 0;
			if (status == 101 && h->upgrade_req) {
				/* Upgraded: raw both ways from here on. */
				h->st = HS_RAW;
				continue;
			}
			if (status >= 100 && status < 200)
				continue; /* interim; the real head follows */
			if (h->head_req || status == 204 || status == 304)
				h->resp =
				        (struct http1_framer){.kind = HTTP1_FR_NONE, .done = true};
			h->in_resp_body = true;
		}
		ssize_t k = http1_framer_feed(&h->resp, p, n);
		if (k < 0) {
			target_failed(h, "malformed response body");
			return;
		}
		to_peer(h, p, (size_t)k);
		p += k;
		n -= (size_t)k;
		if (h->resp.done) {
			if (h->st == HS_WAIT) {
				exchange_done(h);
				hconn_process(h);
			} else {
				/* Answered before the body ended (an early
				 * 413, say): the rest of the body still goes
				 * to the same target, and the exchange ends
				 * with it (hconn_process()). */
				h->in_resp_body = false;
				h->resp_done = true;
				h->resp = (struct http1_framer){0};
			}
			if (n)
				h->close_after = true;
			return;
		}
	}
}

static void client_data(void *ctx, const uint8_t *p, size_t n)
{
	struct hconn *h = ctx;

	h->owed += (uint32_t)n;
	h->moved += n;
	on_response(h, p, n);
	hconn_update(h);
}

static void client_closed(void *ctx, uint8_t how, int err)
{
	struct hconn *h = ctx;

	if (how == AP_CLOSE_RESET) {
		h->is = NULL; /* freed by incoming.c */
		h->owed = 0;
	} else if (h->is) {
		istream_close(h->is, AP_CLOSE_FIN, 0);
		h->is = NULL;
		h->owed = 0;
		if (h->st == HS_RAW) {
			h->close_after = true;
			hconn_update(h);
			return;
		}
		/* The local app closed after its response (Connection:
		 * close, or until-EOF framing): that ends this response. */
		if (h->in_resp_body && h->resp.kind == HTTP1_FR_EOF) {
			exchange_done(h);
			h->close_after = true;
			hconn_update(h);
			return;
		}
	}
	if (h->to_client && (h->st == HS_WAIT || h->st == HS_BODY || h->st == HS_RAW)) {
		char why[160];
		snprintf(why, sizeof(why), "the local application failed to answer (%s)",
		         how == AP_CLOSE_RESET ? (err ? strerror(err) : "reset") : "closed");
		target_failed(h, why);
	}
	hconn_update(h);
}

static void client_writable(void *ctx)
{
	struct hconn *h = ctx;

	hconn_process(h);
	hconn_update(h);
}

static void half_timeout(struct evloop *l, void *data)
{
	struct hconn *h = data;

	h->half_timer = 0;
	if (h->moved == h->moved_seen) {
		log_debug("port %u: half-closed for %u ms without a byte moving; reset", h->port,
		          AGENT_HALF_MS);
		hconn_free(h, true);
		return;
	}
	h->moved_seen = h->moved;
	h->half_timer = evloop_timer(l, AGENT_HALF_MS, half_timeout, h);
}

/* Epoll interest for both sockets, and the end of the connection. */
static void hconn_update(struct hconn *h)
{
	uint32_t ev = 0, uev = 0;
	struct evloop *l = h->a->loop;

	if (h->reroute) {
		h->reroute = false;
		hconn_process(h);
	}
	bool target_room = h->to_client ? (!h->is || istream_pending(h->is) < HTTP_MAX_BUF)
	                                : h->ulen < HTTP_MAX_BUF;

	/* Credit in batches (agentproto.h), once all of it reached the peer.
	 * The client may send HTTP_MAX_BUF before a credit (istream_open()),
	 * what to_peer() can hold beside the agent's own answers. */
	if (h->owed >= HTTP_MAX_BUF / 4 && h->is && h->olen == 0) {
		istream_credit(h->is, h->owed);
		h->owed = 0;
	}
	/* Raw to the pod: the peer's EOF reaches it after the bytes before. */
	if (h->peer_eof && h->st == HS_RAW && !h->to_client && h->up >= 0 && !h->ulen &&
	    !h->up_connecting && !h->up_shut) {
		(void)shutdown(h->up, SHUT_WR);
		h->up_shut = true;
	}
	if (h->close_after && !h->olen) {
		hconn_free(h, h->peer_eof && !h->clean_end);
		return;
	}
	if ((h->peer_eof || h->close_after) && !h->half_timer) {
		h->moved_seen = h->moved;
		h->half_timer = evloop_timer(l, AGENT_HALF_MS, half_timeout, h);
	}
	if (h->peer_eof && h->st != HS_RAW && h->st == HS_HEAD && !h->olen) {
		hconn_free(h, false);
		return;
	}
	if (!h->peer_eof && !h->close_after && h->ilen < HTTP_MAX_HEAD && target_room &&
	    h->st != HS_WAIT)
		ev |= EPOLLIN;
	if (h->olen)
		ev |= EPOLLOUT;
	if (ev != h->ev) {
		if (!ev)
			evloop_del(l, h->fd);
		else if (!h->ev)
			(void)evloop_add(l, h->fd, ev, peer_event, h);
		else
			(void)evloop_mod(l, h->fd, ev);
		h->ev = ev;
	}
	if (h->up >= 0) {
		if (h->up_connecting || h->ulen)
			uev |= EPOLLOUT;
		if (!h->up_connecting && !h->up_eof && h->olen < HTTP_MAX_BUF)
			uev |= EPOLLIN;
		if (uev != h->up_ev) {
			if (!uev)
				evloop_del(l, h->up);
			else if (!h->up_ev)
				(void)evloop_add(l, h->up, uev, up_event, h);
			else
				(void)evloop_mod(l, h->up, uev);
			h->up_ev = uev;
		}
	}
}

static void up_failed(struct hconn *h, int err)
{
	char why[128];

	if (h->up_ev)
		evloop_del(h->a->loop, h->up);
	h->up_ev = 0;
	closep(&h->up);
	h->up = -1;
	h->ulen = 0;
	if (!h->to_client && h->st == HS_RAW) {
		/* The end of a raw exchange with the pod: its FIN gives the
		 * peer one once the bytes before it are out; an error, a
		 * reset. */
		h->close_after = true;
		h->clean_end = !err;
		if (err)
			h->peer_eof = true;
		return;
	}
	if (!h->to_client && h->st != HS_HEAD) {
		if (h->in_resp_body && h->resp.kind == HTTP1_FR_EOF && !err) {
			exchange_done(h);
			h->close_after = true;
			return;
		}
		snprintf(why, sizeof(why), "the pod's application failed: %s",
		         err ? strerror(err) : "connection closed");
		target_failed(h, why);
	}
}

static void up_event(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct hconn *h = data;
	uint8_t buf[16384];

	if (h->up_connecting) {
		int err = 0;
		socklen_t len = sizeof(err);
		(void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			up_failed(h, err);
			hconn_update(h);
			return;
		}
		h->up_connecting = false;
	}
	if (h->ulen && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		ssize_t n = send(fd, h->ubuf, h->ulen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN) {
			up_failed(h, errno);
			hconn_update(h);
			return;
		}
		if (n > 0) {
			buf_drop(h->ubuf, &h->ulen, (size_t)n);
			h->moved += (uint64_t)n;
			hconn_process(h);
		}
	}
	if (h->up >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && (h->up_ev & EPOLLIN)) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			h->moved += (uint64_t)n;
			/* The pod's connection outlives the requests it
			 * served: while the client is the target (an
			 * upgrade with it included) its bytes are dropped,
			 * never spliced into the peer's stream. */
			if (!h->to_client)
				on_response(h, buf, (size_t)n);
		} else if (n == 0 || errno != EAGAIN) {
			up_failed(h, n == 0 ? 0 : errno);
		}
	}
	hconn_update(h);
}

static void peer_event(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct hconn *h = data;

	if (h->olen && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		ssize_t n = send(fd, h->obuf, h->olen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN) {
			hconn_free(h, true);
			return;
		}
		if (n > 0) {
			buf_drop(h->obuf, &h->olen, (size_t)n);
			h->moved += (uint64_t)n;
		}
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && (h->ev & EPOLLIN)) {
		if (!h->ibuf)
			h->ibuf = xmalloc(HTTP_MAX_HEAD);
		ssize_t n = recv(fd, h->ibuf + h->ilen, HTTP_MAX_HEAD - h->ilen, MSG_DONTWAIT);
		if (n > 0) {
			h->ilen += (size_t)n;
			h->moved += (uint64_t)n;
			hconn_process(h);
		} else if (n == 0 || errno != EAGAIN) {
			h->peer_eof = true;
			if (h->st == HS_HEAD && !h->routed && h->ilen && !h->close_after) {
				/* the start of something, then the end: no HTTP
				 * request comes; the pod's app gets both */
				pass_whole(h, WHOLE_NOT_HTTP);
				hconn_process(h);
			}
			if (h->st == HS_RAW) {
				if (h->to_client && h->is) {
					istream_close(h->is, AP_CLOSE_FIN, 0), h->is = NULL;
					h->close_after = true;
				} else if (h->up < 0) {
					h->close_after = true;
				}
				/* else hconn_update() shuts the pod's side once
				 * what is queued for it is out, and the
				 * connection ends with the pod's FIN */
			} else if (h->st != HS_HEAD || h->ilen) {
				h->close_after = true;
			}
		}
	}
	hconn_update(h);
}

void hconn_start(struct incoming *in, struct agent *a, int fd, uint16_t port,
                 const struct sockaddr_storage *peer, const struct sockaddr_storage *orig,
                 const struct http_filter *f)
{
	if (nconns >= HTTP_MAX_CONNS) {
		close(fd);
		return;
	}
	struct hconn *h = xcalloc(1, sizeof(*h));
	h->in = in;
	h->a = a;
	h->f = f;
	h->port = port;
	h->peer = *peer;
	h->orig = *orig;
	h->fd = fd;
	h->up = -1;
	h->next = conns;
	conns = h;
	nconns++;
	h->ev = EPOLLIN;
	if (evloop_add(a->loop, fd, EPOLLIN, peer_event, h) < 0) {
		h->ev = 0;
		hconn_free(h, true);
		return;
	}
	detect_arm(h);
}
