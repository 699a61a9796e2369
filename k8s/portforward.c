/* WebSocket v4 port-forward (portforward.h): the upgrade on a libcurl
 * CONNECT_ONLY connection, then ws.h framing over curl_easy_send/recv so
 * that curl keeps the TLS session. */
#include "k8s/portforward.h"

#include <curl/curl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "k8s/internal.h"
#include "k8s/ws.h"

/* Raw bytes read from TLS per curl_easy_recv: one TLS record. */
#define PF_RX_CHUNK 16384
/* The 101 head and a refusal's body: real ones are under 1 KiB. */
#define PF_HEAD_MAX 16384
#define PF_BODY_MAX (64u << 10)
/* One data frame's payload: big enough to amortise the header and mask. */
#define PF_FRAME_MAX (64u << 10)
/* Room kept in the queue for pongs and the close frame. */
#define PF_CONTROL_ROOM 1024

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
static const char ws_protocol[] = "v4.channel.k8s.io";

struct k8s_portforward {
	struct k8s_client *client; /* borrowed */
	char *ns, *pod, *path;     /* path: the request target, with any server prefix */
	uint16_t port;
	CURL *curl;
	curl_socket_t fd;
	struct curl_slist *connect_to;
	char errbuf[CURL_ERROR_SIZE];

	struct ws_decoder dec;
	uint8_t rx[PF_RX_CHUNK];
	size_t rx_off, rx_len;
	/* The rest of a data message the caller's buffer could not take: it
	 * points into the decoder, valid until the next feed (ws.h). */
	const uint8_t *pend;
	size_t pend_len;
	bool prefix[2]; /* the port prefix seen on channel 0 / 1 */

	/* Frames queued for sending. While tx_retry is set, OpenSSL expects
	 * the next write from the same address (SSL_write retry rule), so
	 * the queue is only compacted when no retry is pending. */
	uint8_t *tx;
	size_t tx_off, tx_len;
	bool tx_retry;

	uint8_t rnd[256]; /* mask bytes from getrandom, used 4 at a time */
	size_t rnd_left;

	bool closing, eof;
	int failed;     /* sticky -errno */
	char *fail_msg; /* and its message */
	struct k8s_portforward_stats stats;
};

#define PF_TX_CAP (K8S_PF_TX_MAX + PF_CONTROL_ROOM)

int k8s_ws_accept_for(const char *key, char out[K8S_WS_ACCEPT_LEN + 1])
{
	uint8_t md[K8S_SHA1_LEN];
	char cat[128];
	int n = snprintf(cat, sizeof(cat), "%s%s", key, ws_guid);
	if (n < 0 || (size_t)n >= sizeof(cat))
		return -EINVAL;
	k8s_sha1(cat, (size_t)n, md);
	k8s_base64_encode_to(md, sizeof(md), out); /* 28 chars and a NUL */
	return 0;
}

/* Value of header `name` in a response head, trimmed, or NULL; copied into
 * buf (truncated). Header names are case-insensitive (RFC 9110 §5.1). */
static const char *header_value(const char *head, size_t len, const char *name, char *buf,
                                size_t cap)
{
	size_t nl = strlen(name);
	const char *p = memchr(head, '\n', len), *end = head + len;
	while (p && p < end) {
		p++;
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
			const char *v = p + nl + 1, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			size_t n = (size_t)(ve - v) < cap - 1 ? (size_t)(ve - v) : cap - 1;
			memcpy(buf, v, n);
			buf[n] = '\0';
			return buf;
		}
		p = eol < end ? eol : NULL;
	}
	return NULL;
}

int k8s_ws_check_upgrade(const char *head, size_t len, const char *key, long *ret_http,
                         struct k8s_error *err)
{
	/* "HTTP/1.1 101 Switching Protocols" */
	char line[64];
	const char *eol = memchr(head, '\n', len);
	size_t ll = eol ? (size_t)(eol - head) : len;
	if (ll >= sizeof(line))
		ll = sizeof(line) - 1;
	memcpy(line, head, ll);
	line[ll] = '\0';
	long http = 0;
	char code[4] = "";
	if (strncmp(line, "HTTP/1.", 7) != 0 || ll < 12 || line[8] != ' ')
		return k8s_errorf(
		        err, -EPROTO, 0, NULL,
		        "the API server's answer to the port-forward upgrade is not HTTP/1.x");
	memcpy(code, line + 9, 3);
	if (parse_int(code, 100, 599, &http) < 0)
		return k8s_errorf(
		        err, -EPROTO, 0, NULL,
		        "the API server's answer to the port-forward upgrade has no status");
	*ret_http = http;
	if (http != 101)
		return 0;
	char v[128], want[K8S_WS_ACCEPT_LEN + 1];
	if (!header_value(head, len, "Upgrade", v, sizeof(v)) || strcasecmp(v, "websocket"))
		return k8s_errorf(err, -EPROTO, 101, NULL,
		                  "port-forward: the API server switched to \"%s\", not websocket",
		                  header_value(head, len, "Upgrade", v, sizeof(v)) ? v : "");
	if (!header_value(head, len, "Connection", v, sizeof(v)) || !strcasestr(v, "upgrade"))
		return k8s_errorf(err, -EPROTO, 101, NULL,
		                  "port-forward: the 101 answer has no Connection: Upgrade");
	int r = k8s_ws_accept_for(key, want);
	if (r < 0)
		return r;
	if (!header_value(head, len, "Sec-WebSocket-Accept", v, sizeof(v)) || strcmp(v, want))
		return k8s_errorf(err, -EPROTO, 101, NULL,
		                  "port-forward: wrong Sec-WebSocket-Accept (a proxy in the way?)");
	/* Without the header the server would speak the old base64-free
	 * `channel.k8s.io`, which has no port prefix: insist on v4. */
	if (!header_value(head, len, "Sec-WebSocket-Protocol", v, sizeof(v)) ||
	    strcmp(v, ws_protocol))
		return k8s_errorf(
		        err, -EPROTO, 101, NULL,
		        "port-forward: the API server chose subprotocol \"%s\", not %s",
		        header_value(head, len, "Sec-WebSocket-Protocol", v, sizeof(v)) ? v : "",
		        ws_protocol);
	return 0;
}

/* Sticky failure: remember it, fill err, return r. */
static int pf_fail(struct k8s_portforward *pf, struct k8s_error *err, int r, const char *msg)
{
	if (!pf->failed) {
		pf->failed = r;
		free(pf->fail_msg);
		pf->fail_msg = strdup(msg);
	}
	return k8s_errorf(err, pf->failed, 0, NULL, "%s", pf->fail_msg ? pf->fail_msg : msg);
}

static int next_mask(struct k8s_portforward *pf, uint8_t mask[4])
{
	/* RFC 6455 §5.3: masks must be unpredictable, or a hostile page
	 * could poison proxies; getrandom in batches keeps it cheap. */
	if (pf->rnd_left < 4) {
		ssize_t g = getrandom(pf->rnd, sizeof(pf->rnd), 0);
		if (g < 0)
			return -errno;
		if (g != (ssize_t)sizeof(pf->rnd))
			return -EIO;
		pf->rnd_left = sizeof(pf->rnd);
	}
	memcpy(mask, pf->rnd + sizeof(pf->rnd) - pf->rnd_left, 4);
	pf->rnd_left -= 4;
	return 0;
}

static void tx_compact(struct k8s_portforward *pf)
{
	if (pf->tx_off == 0 || pf->tx_retry)
		return;
	memmove(pf->tx, pf->tx + pf->tx_off, pf->tx_len - pf->tx_off);
	pf->tx_len -= pf->tx_off;
	pf->tx_off = 0;
}

/* Queue one control frame (pong, close). Dropped if the queue is full:
 * only the latest ping needs an answer (§5.5.3). */
static int queue_control(struct k8s_portforward *pf, enum ws_opcode op, const uint8_t *p, size_t n)
{
	tx_compact(pf);
	uint8_t mask[4];
	int r = next_mask(pf, mask);
	if (r < 0)
		return r;
	size_t used = 0;
	r = ws_encode(pf->tx + pf->tx_len, PF_TX_CAP - pf->tx_len, op, true, p, n, mask, &used);
	if (r == -ENOBUFS)
		return 0;
	if (r < 0)
		return r;
	pf->tx_len += used;
	return 0;
}

static int pf_flush(struct k8s_portforward *pf, struct k8s_error *err)
{
	while (pf->tx_off < pf->tx_len) {
		size_t n = 0;
		CURLcode cc = libcurl.easy_send(pf->curl, pf->tx + pf->tx_off,
		                                pf->tx_len - pf->tx_off, &n);
		if (cc == CURLE_AGAIN) {
			pf->tx_retry = true;
			return -EAGAIN;
		}
		if (cc != CURLE_OK) {
			char m[256];
			snprintf(m, sizeof(m), "port-forward to pod %s/%s port %u dropped: %s",
			         pf->ns, pf->pod, pf->port, libcurl.easy_strerror(cc));
			return pf_fail(pf, err, -ECONNRESET, m);
		}
		pf->tx_retry = false;
		pf->tx_off += n;
	}
	pf->tx_off = pf->tx_len = 0;
	pf->tx_retry = false;
	return 0;
}

int k8s_portforward_flush(struct k8s_portforward *pf, struct k8s_error *err)
{
	if (pf->failed)
		return pf_fail(pf, err, pf->failed, "");
	return pf_flush(pf, err);
}

/* Wait until fd is ready for ev, or the deadline (now_ns) passes. */
static int wait_fd(int fd, short ev, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = ev};
		uint64_t ms = (deadline - now) / 1000000 + 1;
		int r = poll(&p, 1, ms > 60000 ? 60000 : (int)ms);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			return 0;
	}
}

static int send_blocking(struct k8s_portforward *pf, const char *buf, size_t len, uint64_t deadline)
{
	size_t off = 0;
	while (off < len) {
		size_t n = 0;
		CURLcode cc = libcurl.easy_send(pf->curl, buf + off, len - off, &n);
		if (cc == CURLE_AGAIN) {
			int r = wait_fd(pf->fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (cc != CURLE_OK)
			return -ECONNRESET;
		off += n;
	}
	return 0;
}

/* Some bytes, waiting for them until the deadline; 0 at EOF. */
static ssize_t recv_blocking(struct k8s_portforward *pf, void *buf, size_t cap, uint64_t deadline)
{
	for (;;) {
		size_t n = 0;
		CURLcode cc = libcurl.easy_recv(pf->curl, buf, cap, &n);
		if (cc == CURLE_AGAIN) {
			int r = wait_fd(pf->fd, POLLIN, deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (cc != CURLE_OK)
			return -ECONNRESET;
		return (ssize_t)n;
	}
}

/* TLS, proxy and client-certificate options, shared with ordinary
 * requests (k8s_curl_transport). The bearer token and basic auth go into
 * the hand-written upgrade request instead. */
static int setup_tls(struct k8s_portforward *pf, CURL *h, const char *url, unsigned timeout_ms)
{
	struct kubeconfig *kc = k8s_client_config(pf->client);
	libcurl.easy_setopt(h, CURLOPT_ERRORBUFFER, pf->errbuf);
	libcurl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	libcurl.easy_setopt(h, CURLOPT_URL, url);
	libcurl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
	libcurl.easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	/* Without this curl 7.88 negotiates h2 over ALPN and sends the HTTP/2
	 * preface itself, and the upgrade below is garbage (k8s-wire §3.6). */
	libcurl.easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	libcurl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	/* An HTTP proxy must tunnel: the upgrade is ours, not curl's. */
	return k8s_curl_transport(kc, h, pf->connect_to, true);
}

/* The upgrade request: RFC 6455 §4.1 headers plus the client's auth. */
static int build_request(struct k8s_portforward *pf, const char *hostport, const char *key,
                         const char *token, char **ret)
{
	struct kubeconfig *kc = k8s_client_config(pf->client);
	_cleanup_free_ char *auth = NULL, *imp = NULL;
	bool tls = !strncmp(kc->server, "https://", 8);
	if (tls && token) {
		if (asprintf(&auth, "Authorization: Bearer %s\r\n", token) < 0)
			return -ENOMEM;
	} else if (tls && kc->username) {
		_cleanup_free_ char *up = NULL, *b64 = NULL;
		if (asprintf(&up, "%s:%s", kc->username, kc->password ? kc->password : "") < 0)
			return -ENOMEM;
		int r = k8s_base64_encode(up, strlen(up), &b64);
		if (r < 0)
			return r;
		if (asprintf(&auth, "Authorization: Basic %s\r\n", b64) < 0)
			return -ENOMEM;
	}
	if (tls && kc->impersonate_user &&
	    asprintf(&imp, "Impersonate-User: %s\r\n", kc->impersonate_user) < 0)
		return -ENOMEM;
	/* Header values come from the kubeconfig: a CR or LF would let it
	 * inject headers, so refuse them. */
	if ((auth && strpbrk(auth, "\r\n") != auth + strlen(auth) - 2) ||
	    (imp && strpbrk(imp, "\r\n") != imp + strlen(imp) - 2))
		return -EINVAL;
	if (asprintf(ret,
	             "GET %s HTTP/1.1\r\n"
	             "Host: %s\r\n"
	             "User-Agent: mirrord-trace/" MT_VERSION "\r\n"
	             "Upgrade: websocket\r\n"
	             "Connection: Upgrade\r\n"
	             "Sec-WebSocket-Key: %s\r\n"
	             "Sec-WebSocket-Version: 13\r\n"
	             "Sec-WebSocket-Protocol: %s\r\n"
	             "%s%s\r\n",
	             pf->path, hostport, key, ws_protocol, auth ? auth : "", imp ? imp : "") < 0)
		return -ENOMEM;
	return 0;
}

/* A refused upgrade: read the body (Content-Length, else until EOF) and
 * turn its Status into err. */
static int refused(struct k8s_portforward *pf, long http, const char *head, size_t head_len,
                   const char *rest, size_t rest_len, uint64_t deadline, struct k8s_error *err)
{
	struct kubeconfig *kc = k8s_client_config(pf->client);
	_cleanup_free_ char *body = malloc(PF_BODY_MAX + 1);
	if (!body)
		return -ENOMEM;
	char v[32];
	uint64_t want = PF_BODY_MAX;
	if (header_value(head, head_len, "Content-Length", v, sizeof(v)) &&
	    parse_u64(v, UINT64_MAX, &want) == 0 && want > PF_BODY_MAX)
		want = PF_BODY_MAX;
	size_t n = rest_len < want ? rest_len : (size_t)want;
	memcpy(body, rest, n);
	while (n < want) {
		ssize_t k = recv_blocking(pf, body + n, (size_t)want - n, deadline);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	body[n] = '\0';
	_cleanup_json_ json_t *st = json_loadb(body, n, 0, NULL);
	return k8s_status_error("GET", pf->path, http, json_is_object(st) ? st : NULL, kc, err);
}

static void pf_disconnect(struct k8s_portforward *pf)
{
	if (pf->curl)
		libcurl.easy_cleanup(pf->curl); /* closes the socket */
	pf->curl = NULL;
	pf->fd = -1;
	ws_decoder_free(&pf->dec);
	ws_decoder_init(&pf->dec, WS_ROLE_CLIENT, K8S_PF_MESSAGE_MAX);
	pf->rx_off = pf->rx_len = 0;
	pf->pend = NULL;
	pf->pend_len = 0;
	pf->prefix[0] = pf->prefix[1] = false;
	pf->tx_off = pf->tx_len = 0;
	pf->tx_retry = false;
	pf->closing = pf->eof = false;
	pf->failed = 0;
	free(pf->fail_msg);
	pf->fail_msg = NULL;
}

/* One connection attempt: TLS, request, 101 head. Returns 0 on a good
 * upgrade, 1 on a 401 worth retrying with fresh exec credentials. */
static int pf_attempt(struct k8s_portforward *pf, const char *url, const char *hostport, bool force,
                      unsigned timeout_ms, uint64_t deadline, struct k8s_error *err)
{
	struct kubeconfig *kc = k8s_client_config(pf->client);
	const char *token = NULL;
	int r = kubeconfig_credentials(kc, force, &token, err);
	if (r < 0)
		return r;
	pf->curl = libcurl.easy_init();
	if (!pf->curl)
		return -ENOMEM;
	pf->errbuf[0] = '\0';
	r = setup_tls(pf, pf->curl, url, timeout_ms);
	if (r < 0)
		return r;
	CURLcode cc = libcurl.easy_perform(pf->curl);
	if (cc != CURLE_OK)
		return k8s_errorf(err, k8s_curl_errno(cc), 0, NULL,
		                  "cannot reach the API server at %s for port-forward: %s; check "
		                  "the kubeconfig's server address and your network",
		                  kc->server,
		                  pf->errbuf[0] ? pf->errbuf : libcurl.easy_strerror(cc));
	if (libcurl.easy_getinfo(pf->curl, CURLINFO_ACTIVESOCKET, &pf->fd) != CURLE_OK ||
	    pf->fd == CURL_SOCKET_BAD)
		return k8s_errorf(err, -EIO, 0, NULL, "port-forward: libcurl has no socket");

	uint8_t raw[16];
	char key[32];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	k8s_base64_encode_to(raw, sizeof(raw), key); /* 24 chars and a NUL */
	_cleanup_free_ char *req = NULL;
	r = build_request(pf, hostport, key, token, &req);
	if (r < 0)
		return r;
	r = send_blocking(pf, req, strlen(req), deadline);
	if (r < 0)
		return k8s_errorf(err, r, 0, NULL,
		                  "port-forward to pod %s/%s: sending the upgrade: %s", pf->ns,
		                  pf->pod, strerror(-r));

	_cleanup_free_ char *head = malloc(PF_HEAD_MAX + 1);
	if (!head)
		return -ENOMEM;
	size_t n = 0;
	char *end = NULL;
	while (!end) {
		if (n == PF_HEAD_MAX)
			return k8s_errorf(
			        err, -EMSGSIZE, 0, NULL,
			        "port-forward: the API server's answer head is over %u bytes",
			        PF_HEAD_MAX);
		ssize_t k = recv_blocking(pf, head + n, PF_HEAD_MAX - n, deadline);
		if (k <= 0)
			return k8s_errorf(err, k == 0 ? -ECONNRESET : (int)k, 0, NULL,
			                  "port-forward to pod %s/%s: no answer to the upgrade: %s",
			                  pf->ns, pf->pod,
			                  k == 0 ? "connection closed" : strerror((int)-k));
		n += (size_t)k;
		head[n] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	size_t head_len = (size_t)(end - head) + 4;
	long http = 0;
	r = k8s_ws_check_upgrade(head, head_len, key, &http, err);
	if (r < 0)
		return r;
	if (http == 401 && kc->exec && !force)
		return 1;
	if (http != 101)
		return refused(pf, http, head, head_len, head + head_len, n - head_len, deadline,
		               err);
	/* WebSocket frames may arrive in the same read as the 101 head. */
	memcpy(pf->rx, head + head_len, n - head_len);
	pf->rx_len = n - head_len;
	return 0;
}

static int pf_connect(struct k8s_portforward *pf, unsigned timeout_ms, struct k8s_error *err)
{
	struct kubeconfig *kc = k8s_client_config(pf->client);
	if (!timeout_ms)
		timeout_ms = 30000;
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;
	CURLU *u = libcurl.url();
	if (!u)
		return -ENOMEM;
	char *host = NULL, *portstr = NULL, *prefix = NULL, *url = NULL;
	_cleanup_free_ char *hostport = NULL, *ct = NULL;
	int r = 0;
	if (libcurl.url_set(u, CURLUPART_URL, kc->server, 0) != CURLUE_OK) {
		r = k8s_errorf(err, -EINVAL, 0, NULL, "invalid server URL \"%s\"", kc->server);
		goto out;
	}
	libcurl.url_set(u, CURLUPART_QUERY, NULL, 0);
	libcurl.url_set(u, CURLUPART_FRAGMENT, NULL, 0);
	if (libcurl.url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    libcurl.url_get(u, CURLUPART_PORT, &portstr, CURLU_DEFAULT_PORT) != CURLUE_OK ||
	    libcurl.url_get(u, CURLUPART_PATH, &prefix, 0) != CURLUE_OK) {
		r = -ENOMEM;
		goto out;
	}
	/* tls-server-name: connect to the real host, verify the name (as
	 * rest.c does with CURLOPT_CONNECT_TO). */
	const char *vhost = host;
	if (kc->tls_server_name) {
		libcurl.slist_free_all(pf->connect_to);
		pf->connect_to = NULL;
		if (asprintf(&ct, "%s:%s:%s:%s", kc->tls_server_name, portstr, host, portstr) < 0 ||
		    !(pf->connect_to = libcurl.slist_append(NULL, ct)) ||
		    libcurl.url_set(u, CURLUPART_HOST, kc->tls_server_name, 0) != CURLUE_OK) {
			r = -ENOMEM;
			goto out;
		}
		vhost = kc->tls_server_name;
	}
	if (libcurl.url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK ||
	    asprintf(&hostport, "%s:%s", vhost, portstr) < 0) {
		r = -ENOMEM;
		goto out;
	}
	size_t pl = strlen(prefix);
	while (pl && prefix[pl - 1] == '/')
		prefix[--pl] = '\0';
	free(pf->path);
	if (asprintf(&pf->path, "%s/api/v1/namespaces/%s/pods/%s/portforward?ports=%u", prefix,
	             pf->ns, pf->pod, pf->port) < 0) {
		pf->path = NULL;
		r = -ENOMEM;
		goto out;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		pf_disconnect(pf);
		r = pf_attempt(pf, url, hostport, attempt > 0, timeout_ms, deadline, err);
		if (r != 1)
			break;
	}
	if (r < 0)
		pf_disconnect(pf);
	else
		r = 0;
out:
	libcurl.free(host);
	libcurl.free(portstr);
	libcurl.free(prefix);
	libcurl.free(url);
	libcurl.url_cleanup(u);
	return r;
}

int k8s_portforward_open(struct k8s_client *c, const char *ns, const char *pod, uint16_t port,
                         unsigned timeout_ms, struct k8s_portforward **ret, struct k8s_error *err)
{
	/* Names go into the request line: only DNS-1123 names, no spaces,
	 * slashes or CRLF. */
	if (!k8s_label_valid(ns) || !k8s_name_valid(pod) || port == 0)
		return k8s_errorf(err, -EINVAL, 0, NULL,
		                  "port-forward: invalid namespace \"%s\", pod \"%s\" or port %u",
		                  ns, pod, port);
	struct k8s_portforward *pf = calloc(1, sizeof(*pf));
	if (!pf)
		return -ENOMEM;
	pf->client = c;
	pf->port = port;
	pf->fd = -1;
	ws_decoder_init(&pf->dec, WS_ROLE_CLIENT, K8S_PF_MESSAGE_MAX);
	pf->ns = strdup(ns);
	pf->pod = strdup(pod);
	pf->tx = malloc(PF_TX_CAP);
	if (!pf->ns || !pf->pod || !pf->tx) {
		k8s_portforward_free(pf);
		return -ENOMEM;
	}
	int r = pf_connect(pf, timeout_ms, err);
	if (r < 0) {
		k8s_portforward_free(pf);
		return r;
	}
	pf->stats.generation = 1;
	*ret = pf;
	return 0;
}

void k8s_portforward_free(struct k8s_portforward *pf)
{
	if (!pf)
		return;
	pf_disconnect(pf);
	ws_decoder_free(&pf->dec);
	libcurl.slist_free_all(pf->connect_to);
	free(pf->ns);
	free(pf->pod);
	free(pf->path);
	free(pf->tx);
	free(pf->fail_msg);
	free(pf);
}

int k8s_portforward_reconnect(struct k8s_portforward *pf, unsigned timeout_ms,
                              struct k8s_error *err)
{
	pf->stats.unsent_dropped += pf->tx_len - pf->tx_off;
	pf->stats.sent = pf->stats.received = 0;
	int r = pf_connect(pf, timeout_ms, err);
	if (r < 0)
		return r;
	pf->stats.generation++;
	return 0;
}

int k8s_portforward_fd(const struct k8s_portforward *pf)
{
	return pf->curl ? (int)pf->fd : -1;
}

short k8s_portforward_events(const struct k8s_portforward *pf)
{
	if (!pf->curl)
		return 0;
	return (short)(POLLIN | (pf->tx_off < pf->tx_len ? POLLOUT : 0));
}

void k8s_portforward_stats(const struct k8s_portforward *pf, struct k8s_portforward_stats *ret)
{
	*ret = pf->stats;
}

/* A message on the error channel (after its prefix): the kubelet's text,
 * e.g. "error forwarding port 9 to pod x, uid u: ... connection refused". */
static int error_channel(struct k8s_portforward *pf, const uint8_t *p, size_t n,
                         struct k8s_error *err)
{
	char text[K8S_PF_ERROR_MAX];
	size_t k = n < sizeof(text) - 1 ? n : sizeof(text) - 1;
	for (size_t i = 0; i < k; i++)
		text[i] = (p[i] == '\n' || p[i] == '\r' || p[i] == '\0') ? ' ' : (char)p[i];
	text[k] = '\0';
	char m[K8S_PF_ERROR_MAX + 128];
	snprintf(m, sizeof(m), "port-forward to pod %s/%s port %u failed: %s", pf->ns, pf->pod,
	         pf->port, text);
	return pf_fail(pf, err, strstr(text, "connection refused") ? -ECONNREFUSED : -EREMOTEIO, m);
}

/* One decoded event. Returns 0 to go on, 1 when data is pending for the
 * caller, 2 at the close, or -errno (already sticky). */
static int on_event(struct k8s_portforward *pf, const struct ws_event *ev, struct k8s_error *err)
{
	char m[192];
	switch (ev->type) {
	case WS_EV_PING:
		return queue_control(pf, WS_OP_PONG, ev->data, ev->len);
	case WS_EV_PONG:
		return 0;
	case WS_EV_CLOSE:
		pf->eof = true;
		if (!pf->closing) {
			uint8_t cl[WS_CONTROL_MAX];
			pf->closing = true;
			queue_control(pf, WS_OP_CLOSE, cl,
			              ws_close_payload(cl, WS_CLOSE_NORMAL, NULL));
		}
		return 2;
	case WS_EV_MESSAGE:
		break;
	}
	if (ev->opcode != WS_OP_BINARY || ev->len == 0 || ev->data[0] > 1) {
		snprintf(m, sizeof(m),
		         "port-forward to pod %s/%s: unexpected message (opcode %d, %zu bytes, "
		         "channel %d)",
		         pf->ns, pf->pod, (int)ev->opcode, ev->len, ev->len ? ev->data[0] : -1);
		return pf_fail(pf, err, -EPROTO, m);
	}
	uint8_t ch = ev->data[0];
	const uint8_t *p = ev->data + 1;
	size_t n = ev->len - 1;
	if (!pf->prefix[ch]) {
		/* The first message per channel is the port, uint16 LE. */
		if (n != 2 || (uint16_t)(p[0] | p[1] << 8) != pf->port) {
			snprintf(m, sizeof(m),
			         "port-forward to pod %s/%s: bad port prefix on channel %u", pf->ns,
			         pf->pod, ch);
			return pf_fail(pf, err, -EPROTO, m);
		}
		pf->prefix[ch] = true;
		return 0;
	}
	if (ch == 1)
		return n ? error_channel(pf, p, n, err) : 0;
	pf->pend = p;
	pf->pend_len = n;
	return n ? 1 : 0;
}

ssize_t k8s_portforward_read(struct k8s_portforward *pf, void *buf, size_t len,
                             struct k8s_error *err)
{
	if (pf->failed)
		return pf_fail(pf, err, pf->failed, "");
	if (!pf->curl)
		return k8s_errorf(err, -ENOTCONN, 0, NULL, "port-forward is not connected");
	uint8_t *out = buf;
	size_t got = 0;
	while (got < len) {
		if (pf->pend_len) {
			size_t k = pf->pend_len < len - got ? pf->pend_len : len - got;
			memcpy(out + got, pf->pend, k);
			pf->pend += k;
			pf->pend_len -= k;
			got += k;
			continue;
		}
		if (pf->eof)
			break;
		if (pf->rx_off == pf->rx_len) {
			size_t n = 0;
			pf->rx_off = pf->rx_len = 0;
			CURLcode cc = libcurl.easy_recv(pf->curl, pf->rx, sizeof(pf->rx), &n);
			if (cc == CURLE_AGAIN)
				break;
			if (cc != CURLE_OK || n == 0) {
				/* EOF without a close frame: the API server, a proxy
				 * or the network cut us off (or a fault injection). */
				char m[256];
				snprintf(m, sizeof(m),
				         "port-forward to pod %s/%s port %u dropped: %s", pf->ns,
				         pf->pod, pf->port,
				         cc != CURLE_OK
				                 ? libcurl.easy_strerror(cc)
				                 : "connection closed without a close frame");
				pf_fail(pf, err, -ECONNRESET, m);
				break;
			}
			pf->rx_len = n;
		}
		struct ws_event ev;
		size_t used = 0;
		int r = ws_decoder_feed(&pf->dec, pf->rx + pf->rx_off, pf->rx_len - pf->rx_off,
		                        &used, &ev);
		pf->rx_off += used;
		if (r < 0) {
			char m[192];
			uint8_t cl[WS_CONTROL_MAX];
			queue_control(pf, WS_OP_CLOSE, cl,
			              ws_close_payload(cl, pf->dec.failure, "protocol error"));
			pf->closing = true;
			pf_flush(pf, NULL);
			snprintf(m, sizeof(m), "port-forward to pod %s/%s: WebSocket %s (close %u)",
			         pf->ns, pf->pod,
			         r == -EMSGSIZE ? "message too large" : "protocol error",
			         pf->dec.failure);
			pf_fail(pf, err, r, m);
			break;
		}
		if (r == 0)
			continue;
		r = on_event(pf, &ev, err);
		if (r < 0 && pf->failed)
			break;
		if (r < 0)
			return r; /* -ENOMEM from a pong */
	}
	if (!pf->failed && pf->tx_off < pf->tx_len) {
		int r = pf_flush(pf, err);
		if (r < 0 && r != -EAGAIN && !got)
			return r;
	}
	if (got) {
		pf->stats.received += got;
		return (ssize_t)got; /* a failure after data is reported next time */
	}
	if (pf->failed)
		return pf_fail(pf, err, pf->failed, "");
	if (pf->eof)
		return 0;
	return -EAGAIN;
}

ssize_t k8s_portforward_write(struct k8s_portforward *pf, const void *buf, size_t len,
                              struct k8s_error *err)
{
	if (pf->failed)
		return pf_fail(pf, err, pf->failed, "");
	if (!pf->curl)
		return k8s_errorf(err, -ENOTCONN, 0, NULL, "port-forward is not connected");
	if (pf->closing)
		return k8s_errorf(err, -EPIPE, 0, NULL, "port-forward to pod %s/%s is closed",
		                  pf->ns, pf->pod);
	int r = pf_flush(pf, err);
	if (r < 0 && r != -EAGAIN)
		return r;
	const uint8_t *in = buf;
	size_t done = 0;
	tx_compact(pf);
	while (done < len) {
		/* Data may fill the queue up to K8S_PF_TX_MAX; the rest is kept
		 * for control frames. */
		if (pf->tx_len + WS_HEADER_MAX + 2 > K8S_PF_TX_MAX)
			break;
		size_t room = K8S_PF_TX_MAX - pf->tx_len - WS_HEADER_MAX - 1;
		size_t n = len - done;
		if (n > room)
			n = room;
		if (n > PF_FRAME_MAX)
			n = PF_FRAME_MAX;
		uint8_t mask[4];
		r = next_mask(pf, mask);
		if (r < 0)
			return r;
		uint8_t *f = pf->tx + pf->tx_len;
		size_t hl = ws_frame_header(f, WS_OP_BINARY, true, n + 1, mask);
		f[hl] = 0; /* channel 0: data of the first (only) port */
		memcpy(f + hl + 1, in + done, n);
		ws_mask(f + hl, n + 1, mask, 0);
		pf->tx_len += hl + 1 + n;
		done += n;
	}
	r = pf_flush(pf, err);
	if (r < 0 && r != -EAGAIN && !done)
		return r;
	if (!done)
		return -EAGAIN;
	pf->stats.sent += done;
	return (ssize_t)done;
}

int k8s_portforward_close(struct k8s_portforward *pf, struct k8s_error *err)
{
	if (pf->failed)
		return pf_fail(pf, err, pf->failed, "");
	if (!pf->curl || pf->closing)
		return 0;
	uint8_t cl[WS_CONTROL_MAX];
	pf->closing = true;
	int r = queue_control(pf, WS_OP_CLOSE, cl, ws_close_payload(cl, WS_CLOSE_NORMAL, NULL));
	if (r < 0)
		return r;
	r = pf_flush(pf, err);
	return r == -EAGAIN ? 0 : r;
}
