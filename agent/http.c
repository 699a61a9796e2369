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
#include "common/evloop.h"
#include "common/log.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define HTTP_MAX_HEAD (64u * 1024)
#define HTTP_MAX_BUF (256u * 1024)
#define HTTP_MAX_HEADERS 128
#define HTTP_MAX_CONNS 1024

struct http_filter {
	uint8_t op;
	unsigned n;
	struct {
		uint8_t kind;
		pcre2_code *re;                         /* HEADER, PATH */
		char method[AP_MAX_FILTER_PATTERN + 1]; /* METHOD */
	} rules[AP_MAX_FILTER_RULES];
	pcre2_match_data *md;
};

/* Body framing of one message. */
enum frame_kind { FR_NONE, FR_LENGTH, FR_CHUNKED, FR_EOF };
enum chunk_state { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER };

struct framer {
	enum frame_kind kind;
	uint64_t left; /* LENGTH: bytes left; CHUNKED: of this chunk */
	enum chunk_state cs;
	unsigned line;  /* CH_TRAILER: bytes on the current trailer line */
	bool size_seen; /* CH_SIZE: at least one hex digit */
	bool last;      /* the 0-size chunk was seen */
	bool done;
};

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
	struct framer req, resp;
	struct istream *is;
	uint8_t *ibuf; /* from the peer, not yet routed */
	size_t ilen;
	uint8_t *rbuf; /* response head being collected */
	size_t rlen;
	uint8_t *obuf; /* to the peer */
	size_t olen;
	uint32_t owed; /* client stream bytes written to the peer, not credited */
	uint8_t *ubuf; /* to the pod's app */
	size_t ulen;
	/* One side closed (or the agent ends the connection): at most
	 * AGENT_HALF_MS without a byte moving (moved, any way) before the
	 * reset, so a raw exchange whose other side never closes, or a peer
	 * that never reads its last answer, does not live on. */
	int64_t half_timer;
	uint64_t moved, moved_seen;
};

static struct hconn *conns;
static size_t nconns;

/* ---- filter ---- */

int http_filter_new(const struct ap_msg *m, struct http_filter **ret, char *err, size_t errcap)
{
	struct http_filter *f = xcalloc(1, sizeof(*f));

	f->op = m->u.port_sub.filter_op;
	for (unsigned i = 0; i < m->u.port_sub.rule_count; i++) {
		const struct ap_filter_rule *r = &m->u.port_sub.rules[i];
		int code;
		PCRE2_SIZE off;

		f->rules[i].kind = r->kind;
		f->n = i + 1;
		if (r->kind == AP_FILTER_METHOD) {
			(void)ap_bytes_to_str(&r->pattern, f->rules[i].method,
			                      sizeof(f->rules[i].method));
			continue;
		}
		f->rules[i].re = pcre2_compile(r->pattern.ptr, r->pattern.len, PCRE2_CASELESS,
		                               &code, &off, NULL);
		if (!f->rules[i].re) {
			char msg[128];
			pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof(msg));
			snprintf(err, errcap, "rule %u: %s at offset %zu", i + 1, msg, (size_t)off);
			http_filter_free(f);
			return -EINVAL;
		}
	}
	f->md = pcre2_match_data_create(1, NULL);
	*ret = f;
	return 0;
}

void http_filter_free(struct http_filter *f)
{
	if (!f)
		return;
	for (unsigned i = 0; i < f->n; i++)
		pcre2_code_free(f->rules[i].re);
	pcre2_match_data_free(f->md);
	free(f);
}

static bool re_match(const struct http_filter *f, pcre2_code *re, const char *s, size_t n)
{
	return pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, f->md, NULL) >= 0;
}

/* A parsed request head: views into the buffer. */
struct head {
	const char *method, *target;
	size_t method_len, target_len;
	unsigned status; /* responses */
	unsigned nh;
	struct {
		const char *name, *value;
		size_t name_len, value_len;
	} h[HTTP_MAX_HEADERS];
};

static bool rule_match(const struct http_filter *f, unsigned i, const struct http_req_view *v)
{
	char line[HTTP_MAX_HEAD + 2];

	switch (f->rules[i].kind) {
	case AP_FILTER_METHOD:
		return strlen(f->rules[i].method) == v->method_len &&
		       !strncasecmp(f->rules[i].method, v->method, v->method_len);
	case AP_FILTER_PATH: {
		size_t plen = 0;
		while (plen < v->target_len && !strchr("? \r", v->target[plen]))
			plen++;
		return re_match(f, f->rules[i].re, v->target, plen) ||
		       (plen < v->target_len &&
		        re_match(f, f->rules[i].re, v->target, v->target_len));
	}
	case AP_FILTER_HEADER:
		/* "name: value" with the name in lowercase, as mirrord's
		 * HTTP stack presents headers to the same patterns. */
		for (size_t k = 0; k < v->nfields; k++) {
			const char *name, *value;
			size_t name_len, value_len, n = 0;
			v->field(v->ctx, k, &name, &name_len, &value, &value_len);
			/* Bounded by the head (HTTP/1.x) or the header list
			 * (HTTP/2) limit; a longer field cannot match. */
			if (name_len + 2 + value_len > sizeof(line))
				continue;
			for (size_t j = 0; j < name_len; j++)
				line[n++] = (char)tolower((unsigned char)name[j]);
			line[n++] = ':';
			line[n++] = ' ';
			memcpy(line + n, value, value_len);
			n += value_len;
			if (re_match(f, f->rules[i].re, line, n))
				return true;
		}
		return false;
	default:
		return false;
	}
}

bool http_filter_match(const struct http_filter *f, const struct http_req_view *v)
{
	for (unsigned i = 0; i < f->n; i++) {
		bool m = rule_match(f, i, v);
		if (f->op == AP_FILTER_ANY_OF && m)
			return true;
		if (f->op == AP_FILTER_ALL_OF && !m)
			return false;
	}
	return f->op == AP_FILTER_ALL_OF;
}

static void head_field(const void *ctx, size_t k, const char **name, size_t *name_len,
                       const char **value, size_t *value_len)
{
	const struct head *hd = ctx;
	*name = hd->h[k].name;
	*name_len = hd->h[k].name_len;
	*value = hd->h[k].value;
	*value_len = hd->h[k].value_len;
}

static bool filter_match(const struct http_filter *f, const struct head *hd)
{
	const struct http_req_view v = {.method = hd->method,
	                                .method_len = hd->method_len,
	                                .target = hd->target,
	                                .target_len = hd->target_len,
	                                .nfields = hd->nh,
	                                .field = head_field,
	                                .ctx = hd};
	return http_filter_match(f, &v);
}

/* ---- parsing ---- */

/* Length of the head (through the blank line) in p[0..n), 0 if not
 * complete yet. */
static size_t head_len(const uint8_t *p, size_t n)
{
	for (size_t i = 3; i < n; i++)
		if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
			return i + 1;
	return 0;
}

static bool hdr_is(const struct head *hd, unsigned k, const char *name)
{
	return hd->h[k].name_len == strlen(name) && !strncasecmp(hd->h[k].name, name, strlen(name));
}

/* Parse a head of len bytes (ends with CRLFCRLF). request: "M T V",
 * else "V S R". -EBADMSG if malformed. */
static int parse_head(const char *p, size_t len, bool request, struct head *hd)
{
	const char *end = p + len - 2, *eol = memchr(p, '\r', len);
	const char *sp1, *sp2;

	memset(hd, 0, sizeof(*hd));
	if (!eol || eol[1] != '\n')
		return -EBADMSG;
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	if (!sp1)
		return -EBADMSG;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (request) {
		if (!sp2 || eol - sp2 < 9 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
			return -EBADMSG;
		hd->method = p;
		hd->method_len = (size_t)(sp1 - p);
		hd->target = sp1 + 1;
		hd->target_len = (size_t)(sp2 - sp1 - 1);
	} else {
		if (strncmp(p, "HTTP/1.", 7) != 0 || eol - sp1 < 4)
			return -EBADMSG;
		hd->status = (unsigned)(sp1[1] - '0') * 100 + (unsigned)(sp1[2] - '0') * 10 +
		             (unsigned)(sp1[3] - '0');
		if (!isdigit((unsigned char)sp1[1]) || !isdigit((unsigned char)sp1[2]) ||
		    !isdigit((unsigned char)sp1[3]))
			return -EBADMSG;
	}
	for (const char *l = eol + 2; l < end;) {
		const char *le = memchr(l, '\r', (size_t)(end - l + 1));
		const char *colon = memchr(l, ':', (size_t)(le - l));
		if (!le || !colon || colon == l || hd->nh >= HTTP_MAX_HEADERS)
			return -EBADMSG;
		const char *v = colon + 1, *ve = le;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		hd->h[hd->nh].name = l;
		hd->h[hd->nh].name_len = (size_t)(colon - l);
		hd->h[hd->nh].value = v;
		hd->h[hd->nh].value_len = (size_t)(ve - v);
		hd->nh++;
		l = le + 2;
	}
	return 0;
}

/* Body framing from the headers (RFC 9112 §6.3). */
static int body_framing(const struct head *hd, bool request, struct framer *fr)
{
	memset(fr, 0, sizeof(*fr));
	fr->kind = request ? FR_NONE : FR_EOF;
	for (unsigned k = 0; k < hd->nh; k++) {
		if (hdr_is(hd, k, "transfer-encoding")) {
			/* chunked must be last; anything else is not ours
			 * to frame. */
			size_t n = hd->h[k].value_len;
			if (n >= 7 && !strncasecmp(hd->h[k].value + n - 7, "chunked", 7))
				fr->kind = FR_CHUNKED;
			else
				return -EBADMSG;
			return 0;
		}
	}
	for (unsigned k = 0; k < hd->nh; k++) {
		if (hdr_is(hd, k, "content-length")) {
			char num[24];
			uint64_t v;
			if (hd->h[k].value_len == 0 || hd->h[k].value_len >= sizeof(num))
				return -EBADMSG;
			memcpy(num, hd->h[k].value, hd->h[k].value_len);
			num[hd->h[k].value_len] = 0;
			if (parse_u64(num, UINT64_MAX, &v) < 0)
				return -EBADMSG;
			fr->kind = v ? FR_LENGTH : FR_NONE;
			fr->left = v;
		}
	}
	fr->done = fr->kind == FR_NONE;
	return 0;
}

/* How many of p[0..n) belong to the body; sets fr->done at its end.
 * -EBADMSG for a broken chunked encoding. */
static ssize_t framer_feed(struct framer *fr, const uint8_t *p, size_t n)
{
	size_t i = 0;

	if (fr->done)
		return 0;
	if (fr->kind == FR_EOF)
		return (ssize_t)n;
	if (fr->kind == FR_LENGTH) {
		size_t k = n < fr->left ? n : (size_t)fr->left;
		fr->left -= k;
		fr->done = fr->left == 0;
		return (ssize_t)k;
	}
	while (i < n && !fr->done) {
		uint8_t c = p[i];
		switch (fr->cs) {
		case CH_SIZE:
			if (isxdigit(c)) {
				if (fr->left >> 56)
					return -EBADMSG;
				fr->left =
				        fr->left * 16 +
				        (uint64_t)(isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10));
				fr->size_seen = true;
			} else if (c == '\r' && fr->size_seen) {
				fr->cs = CH_SIZE_LF;
			} else if ((c == ';' || c == ' ' || c == '\t') && fr->size_seen) {
				fr->cs = CH_EXT;
			} else {
				return -EBADMSG;
			}
			i++;
			break;
		case CH_EXT:
			if (c == '\r')
				fr->cs = CH_SIZE_LF;
			i++;
			break;
		case CH_SIZE_LF:
			if (c != '\n')
				return -EBADMSG;
			i++;
			fr->size_seen = false;
			if (fr->left == 0) {
				fr->cs = CH_TRAILER;
				fr->line = 0;
			} else {
				fr->cs = CH_DATA;
			}
			break;
		case CH_DATA: {
			size_t k = n - i < fr->left ? n - i : (size_t)fr->left;
			i += k;
			fr->left -= k;
			if (!fr->left)
				fr->cs = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			if (c != '\r')
				return -EBADMSG;
			fr->cs = CH_DATA_LF;
			i++;
			break;
		case CH_DATA_LF:
			if (c != '\n')
				return -EBADMSG;
			fr->cs = CH_SIZE;
			i++;
			break;
		case CH_TRAILER:
			/* Trailer lines until an empty one. */
			i++;
			if (c == '\n') {
				if (fr->line <= 1)
					fr->done = true;
				fr->line = 0;
			} else if (++fr->line > HTTP_MAX_HEAD) {
				return -EBADMSG;
			}
			break;
		}
	}
	return (ssize_t)i;
}

/* ---- connection ---- */

static void hconn_update(struct hconn *h);
static void hconn_process(struct hconn *h);

static void hconn_free(struct hconn *h, bool reset)
{
	for (struct hconn **p = &conns; *p; p = &(*p)->next)
		if (*p == h) {
			*p = h->next;
			break;
		}
	nconns--;
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
	h->rlen = 0;
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

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof(h2_preface) - 1)

/* 1: the bytes start with the HTTP/2 preface; 0: they might, more are
 * needed; -1: they do not. */
static int h2_preface_seen(const uint8_t *p, size_t n)
{
	size_t k = n < H2_PREFACE_LEN ? n : H2_PREFACE_LEN;
	if (memcmp(p, h2_preface, k) != 0)
		return -1;
	return k == H2_PREFACE_LEN ? 1 : 0;
}

/* An HTTP/2 connection without a filter (after the unsubscription), or
 * past the HTTP/2 router's limit on connections: all of it to the pod's
 * app, raw. */
static void h2_pass(struct hconn *h)
{
	static uint16_t noted[16];
	bool seen = false;
	for (size_t i = 0; i < ARRAY_SIZE(noted) && noted[i]; i++)
		seen |= noted[i] == h->port;
	if (!seen) {
		for (size_t i = 0; i < ARRAY_SIZE(noted); i++)
			if (!noted[i]) {
				noted[i] = h->port;
				break;
			}
		log_info("port %u: an HTTP/2 (prior knowledge) connection %s goes to the "
		         "pod's application whole",
		         h->port,
		         h->f ? "past the limit of filtered ones" : "after the unsubscription");
	}
	h->routed = true;
	h->to_client = false;
	int r = h->up < 0 ? up_connect(h) : 0;
	if (r < 0) {
		log_debug("port %u: cannot reach the pod's application: %s", h->port, strerror(-r));
		h->close_after = true;
		h->peer_eof = true; /* a reset: there is no HTTP/2 error to give */
		return;
	}
	h->st = HS_RAW;
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
	h->close_after = true;
}

/* Route the head at ibuf[0..len). */
static int route_request(struct hconn *h, size_t len)
{
	struct head *hd = xmalloc(sizeof(*hd));
	int r = parse_head((const char *)h->ibuf, len, true, hd);

	if (r == 0)
		r = body_framing(hd, true, &h->req);
	if (r < 0) {
		free(hd);
		answer_error(h, 400, "Bad Request", "malformed HTTP/1.x request");
		h->close_after = true;
		return r;
	}
	h->head_req = hd->method_len == 4 && !strncmp(hd->method, "HEAD", 4);
	h->upgrade_req = false;
	for (unsigned k = 0; k < hd->nh; k++)
		h->upgrade_req |= hdr_is(hd, k, "upgrade");
	h->to_client = h->f && filter_match(h->f, hd);
	h->routed = true;
	free(hd);
	if (h->to_client && !h->is) {
		h->is = istream_open(h->in, AP_SUB_STEAL, h->port, (struct sockaddr *)&h->peer,
		                     (struct sockaddr *)&h->orig, HTTP_MAX_BUF, &client_ops, h);
		if (!h->is) {
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
	buf_drop(h->ibuf, &h->ilen, len);
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
			return;
		}
		if (h->st == HS_WAIT)
			return;
		if (h->st == HS_HEAD && !h->routed) {
			int pre = h2_preface_seen(h->ibuf, h->ilen);
			if (pre == 0)
				return;
			if (pre > 0 && h->f && !h2_full()) {
				h2_adopt(h);
				return;
			}
			if (pre > 0) {
				h2_pass(h);
				continue;
			}
		}
		if (h->st == HS_HEAD) {
			size_t len = head_len(h->ibuf, h->ilen);
			if (!len) {
				if (h->ilen >= HTTP_MAX_HEAD) {
					answer_error(h, 431, "Request Header Fields Too Large",
					             "request head over the agent's limit");
					h->close_after = true;
				}
				return;
			}
			if (route_request(h, len) < 0)
				return;
			continue;
		}
		/* HS_BODY */
		ssize_t n = framer_feed(&h->req, h->ibuf, h->ilen);
		if (n < 0) {
			h->close_after = true;
			return;
		}
		if (!to_target(h, h->ibuf, (size_t)n))
			return; /* no room: wait for writable */
		buf_drop(h->ibuf, &h->ilen, (size_t)n);
		if (h->req.done)
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
			len = head_len(h->rbuf, h->rlen);
			if (!len) {
				if (h->rlen >= HTTP_MAX_HEAD)
					target_failed(h, "response head over the agent's limit");
				return;
			}
			struct head *hd = xmalloc(sizeof(*hd));
			int r = parse_head((const char *)h->rbuf, len, false, hd);
			if (r == 0)
				r = body_framing(hd, false, &h->resp);
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
			if (status == 101 && h->upgrade_req) {
				/* Upgraded: raw both ways from here on. */
				h->st = HS_RAW;
				continue;
			}
			if (status >= 100 && status < 200)
				continue; /* interim; the real head follows */
			if (h->head_req || status == 204 || status == 304)
				h->resp = (struct framer){.kind = FR_NONE, .done = true};
			h->in_resp_body = true;
		}
		ssize_t k = framer_feed(&h->resp, p, n);
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
				 * to the same target. */
				h->in_resp_body = false;
				h->resp = (struct framer){0};
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
		if (h->in_resp_body && h->resp.kind == FR_EOF) {
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
	bool target_room = h->to_client ? (!h->is || istream_pending(h->is) < HTTP_MAX_BUF)
	                                : h->ulen < HTTP_MAX_BUF;
	uint32_t ev = 0, uev = 0;
	struct evloop *l = h->a->loop;

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
		if (h->in_resp_body && h->resp.kind == FR_EOF && !err) {
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
			if (!h->to_client || h->st == HS_RAW)
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
	}
}
