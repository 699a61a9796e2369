/* Filtered mirror: of one captured connection, only the HTTP/1.x requests
 * the port's filter matches are copied to the client.
 *
 * capture.c feeds the connection's inbound bytes in order. The first
 * bytes must be an HTTP/1.x request line (sniff.c); each request head is
 * parsed and matched, and its body framed (http1.c) to find the next.
 * Matched requests, head and body, go on one mirror stream per captured
 * connection, opened at the first match, so the local app sees them on
 * one keep-alive connection in their order (mirrord opens a connection
 * per request instead). The app's answers are discarded.
 *
 * A copy ends, with a notice once per port and reason, at bytes that are
 * not HTTP/1.x (TLS, HTTP/2, another protocol), a malformed head or
 * body, a head over HTTP_MAX_HEAD, or where another protocol follows a
 * request that asked for an upgrade or a tunnel (the pod's answer is not
 * seen; a declined upgrade is followed by another request line). The
 * pod's connection is never touched. */
#include "agent/http1.h"
#include "agent/sniff.h"
#include "common/log.h"

#include <string.h>

enum mh_state { MH_HEAD, MH_BODY, MH_DONE };

enum mh_end {
	MH_NOT_HTTP,  /* the connection does not open with an HTTP/1.x request */
	MH_BAD_HEAD,  /* a malformed or oversized head */
	MH_BAD_BODY,  /* a broken chunked body */
	MH_UPGRADE,   /* an upgrade or CONNECT: another protocol follows */
	MH_BEHIND,    /* the client did not keep up */
	MH_NO_STREAM, /* the client holds too many streams */
	MH_N
};

struct mhttp {
	struct incoming *in;
	uint16_t port;
	struct sockaddr_storage peer, local;
	const struct http_filter *f; /* NULL: the port's filter is gone */
	enum mh_state st;
	bool sniffed;  /* the first request line was seen */
	bool copy;     /* the current request is copied */
	bool last;     /* the current request asks for an upgrade or a tunnel */
	bool upgraded; /* one did: a request line must follow, or the copy ends */
	struct http1_framer fr;
	struct istream *is; /* the copy, from the first match */
	uint8_t *buf;       /* a head being gathered; [off, len) unread */
	size_t off, len;
	size_t scanned; /* buf[0, scanned) holds no head's end */
	unsigned heads; /* heads routed, to tell progress */
};

static const char *const end_text[MH_N] = {
        [MH_NOT_HTTP] = "a connection that is not HTTP/1.x is not copied",
        [MH_BAD_HEAD] = "a malformed or oversized request head ends a copy",
        [MH_BAD_BODY] = "a malformed request body ends a copy",
        [MH_UPGRADE] = "a copy ends where another protocol follows an upgrade or CONNECT",
        [MH_BEHIND] = "a copy that fell behind was cut",
        [MH_NO_STREAM] = "a copy could not start: too many streams",
};

static void note(uint16_t port, enum mh_end why)
{
	static uint16_t noted[MH_N][16];

	for (size_t i = 0; i < ARRAY_SIZE(noted[why]); i++) {
		if (noted[why][i] == port)
			return;
		if (!noted[why][i]) {
			noted[why][i] = port;
			break;
		}
	}
	log_info("mirror of port %u with an HTTP filter: %s", port, end_text[why]);
}

static void mh_closed(void *ctx, uint8_t how, int err)
{
	struct mhttp *m = ctx;

	(void)err;
	/* A FIN only says the local app will not answer more; a RESET that
	 * it wants no more of this copy. */
	if (how == AP_CLOSE_RESET) {
		m->is = NULL;
		m->st = MH_DONE;
	}
}

static const struct istream_ops mh_ops = {.closed = mh_closed};

/* No more requests are parsed. What was copied ends with a FIN, or a
 * reset when it stops inside a request (a broken body, a copy that fell
 * behind): the local app must not take the part for a whole request. */
static void finish(struct mhttp *m, enum mh_end why)
{
	bool cut = why == MH_BEHIND || (why == MH_BAD_BODY && m->copy);

	note(m->port, why);
	m->st = MH_DONE;
	if (m->is) {
		istream_close(m->is, cut ? AP_CLOSE_RESET : AP_CLOSE_FIN,
		              why == MH_BEHIND ? ENOBUFS
		              : cut            ? EBADMSG
		                               : 0);
		m->is = NULL;
	}
	free(m->buf);
	m->buf = NULL;
	m->off = m->len = m->scanned = 0;
}

static void copy(struct mhttp *m, const uint8_t *p, size_t n)
{
	if (!n || !m->is)
		return;
	if (istream_send(m->is, p, n, MIRROR_MAX_PENDING) < 0)
		finish(m, MH_BEHIND);
}

/* The head at buf[off, off + hl): route it. */
static void on_head(struct mhttp *m, size_t hl)
{
	struct http1_head *hd = xmalloc(sizeof(*hd));
	const char *p = (const char *)m->buf + m->off;

	if (http1_parse_head(p, hl, true, hd) < 0 || http1_body_framing(hd, true, &m->fr) < 0) {
		free(hd);
		finish(m, MH_BAD_HEAD);
		return;
	}
	m->last = hd->method_len == 7 && !strncmp(hd->method, "CONNECT", 7);
	for (unsigned k = 0; k < hd->nh; k++)
		m->last |= http1_hdr_is(hd, k, "upgrade");
	m->copy = m->f && http1_filter_match(m->f, hd);
	m->heads++;
	free(hd);
	if (m->copy && !m->is) {
		m->is = istream_open(m->in, AP_SUB_MIRROR, m->port, (struct sockaddr *)&m->peer,
		                     (struct sockaddr *)&m->local, 0, &mh_ops, m);
		if (!m->is) {
			finish(m, MH_NO_STREAM);
			return;
		}
	}
	if (m->copy)
		copy(m, m->buf + m->off, hl);
	if (m->st == MH_DONE)
		return;
	m->off += hl;
	m->st = MH_BODY;
}

/* After a request's last byte. After an upgrade or CONNECT the pod's
 * answer decides what follows, and it is not captured: the next bytes
 * tell. Another request line means the upgrade was declined (an h2c
 * offer the server ignored); anything else (WebSocket frames, the HTTP/2
 * preface, a tunnel's TLS) ends the copy. */
static void request_done(struct mhttp *m)
{
	m->st = MH_HEAD;
	if (m->last) {
		m->sniffed = false;
		m->upgraded = true;
	}
}

/* Gather a head into buf from p[0..n); returns how many bytes were taken.
 * Moves to MH_BODY (or MH_DONE) once a head is complete. */
static size_t gather(struct mhttp *m, const uint8_t *p, size_t n)
{
	if (!m->buf)
		m->buf = xmalloc(HTTP_MAX_HEAD);
	if (m->off) {
		memmove(m->buf, m->buf + m->off, m->len - m->off);
		m->len -= m->off;
		m->off = 0;
		m->scanned = 0;
	}
	size_t k = n < HTTP_MAX_HEAD - m->len ? n : HTTP_MAX_HEAD - m->len;
	if (k)
		memcpy(m->buf + m->len, p, k);
	m->len += k;
	if (!m->sniffed) {
		enum sniff s = sniff_http(m->buf, m->len);
		if (s == SNIFF_MORE && m->len < HTTP_MAX_HEAD)
			return k;
		if (s != SNIFF_HTTP1) {
			finish(m, m->upgraded ? MH_UPGRADE : MH_NOT_HTTP);
			return k;
		}
		m->sniffed = true;
	}
	/* Empty lines before a request line are ignored (RFC 9112 §2.2). */
	size_t hl = http1_empty_lines(m->buf, m->len);
	if (hl) {
		memmove(m->buf, m->buf + hl, m->len - hl);
		m->len -= hl;
		m->scanned = 0;
	}
	hl = http1_head_len(m->buf, m->len, &m->scanned);
	if (!hl) {
		if (m->len == HTTP_MAX_HEAD)
			finish(m, MH_BAD_HEAD);
		return k;
	}
	on_head(m, hl);
	if (m->st == MH_BODY && m->fr.done)
		request_done(m);
	return k;
}

/* Body bytes q[0..n); returns how many belong to the current request. */
static size_t body(struct mhttp *m, const uint8_t *q, size_t n)
{
	ssize_t k = http1_framer_feed(&m->fr, q, n);

	if (k < 0) {
		finish(m, MH_BAD_BODY);
		return n;
	}
	if (m->copy)
		copy(m, q, (size_t)k);
	if (m->st == MH_BODY && m->fr.done)
		request_done(m);
	return (size_t)k;
}

struct mhttp *mhttp_new(struct incoming *in, uint16_t port, const struct sockaddr_storage *peer,
                        const struct sockaddr_storage *local, const struct http_filter *f)
{
	struct mhttp *m = xcalloc(1, sizeof(*m));

	m->in = in;
	m->port = port;
	m->peer = *peer;
	m->local = *local;
	m->f = f;
	return m;
}

void mhttp_feed(struct mhttp *m, const uint8_t *p, size_t n)
{
	while (m->st != MH_DONE) {
		if (m->off < m->len) {
			/* bytes that followed a head in the same read */
			if (m->st == MH_BODY) {
				size_t k = body(m, m->buf + m->off, m->len - m->off);
				if (m->buf) {
					m->off += k;
					if (m->off == m->len)
						m->off = m->len = m->scanned = 0;
				}
				continue;
			}
			unsigned heads = m->heads;
			gather(m, NULL, 0);
			if (m->st != MH_HEAD || m->heads != heads)
				continue; /* a head was routed: maybe another follows */
			                  /* a head not complete yet: more bytes are needed */
		}
		if (!n)
			return;
		size_t k = m->st == MH_BODY ? body(m, p, n) : gather(m, p, n);
		p += k;
		n -= k;
	}
}

void mhttp_filter_gone(struct mhttp *m)
{
	m->f = NULL;
}

void mhttp_end(struct mhttp *m, uint8_t how, int err)
{
	if (m->is)
		istream_close(m->is, how, err);
	free(m->buf);
	free(m);
}
