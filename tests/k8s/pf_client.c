/* Drives k8s/portforward.c against the fake API server (pf_cluster.sh):
 *   pf_client echo  NS POD PORT MIB  POST MIB MiB to /echo while reading the
 *                                     answer; sha256 up == sha256 down
 *   pf_client closed NS POD PORT     the kubelet's error-channel text
 *   pf_client error NS POD PORT      an error-channel message (admin fault
 *                                     portforward_error) fails the stream
 *                                     with -EREMOTEIO and its text, which
 *                                     must contain $PF_EXPECT
 *   pf_client drop  NS POD PORT      an 8 MiB download is cut (admin fault
 *                                     portforward_drop): -ECONNRESET, then
 *                                     reconnect and GET / works
 *   pf_client get   NS POD PORT MIB  GET /bytes?n=MIB MiB; prints the MB/s
 *                                     from the request to the last byte
 *                                     (bench/k8s.sh)
 * KUBECONFIG selects the cluster. Prints one line; exits 0 on success. */
#include <errno.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "k8s/kubeconfig.h"
#include "k8s/portforward.h"

static int die(const char *what, int r, const struct k8s_error *err)
{
	fprintf(stderr, "pf_client: %s: %s (%s)\n", what, err->message ? err->message : "-",
	        strerror(-r));
	return 1;
}

/* Cleanups, so every early return frees what the sanitizers count. */
static void err_done(struct k8s_error *e)
{
	k8s_error_clear(e);
}

static void md_done(EVP_MD_CTX **m)
{
	EVP_MD_CTX_free(*m);
	*m = NULL;
}

/* Deterministic bytes, different at every offset (xorshift). */
static void fill(uint8_t *b, size_t n, uint64_t *s)
{
	for (size_t i = 0; i < n; i++) {
		*s ^= *s << 13;
		*s ^= *s >> 7;
		*s ^= *s << 17;
		b[i] = (uint8_t)*s;
	}
}

struct http_reader {
	char head[4096];
	size_t head_len;
	bool in_body;
	uint64_t body;
	EVP_MD_CTX *sha;
};

/* Feed bytes read from the pod; the head is kept, the body hashed. */
static void http_feed(struct http_reader *h, const uint8_t *p, size_t n)
{
	while (n && !h->in_body) {
		if (h->head_len + 1 >= sizeof(h->head))
			return;
		h->head[h->head_len++] = (char)*p++;
		n--;
		h->head[h->head_len] = '\0';
		if (h->head_len >= 4 && !strcmp(h->head + h->head_len - 4, "\r\n\r\n"))
			h->in_body = true;
	}
	EVP_DigestUpdate(h->sha, p, n);
	h->body += n;
}

/* Pump until the pod closes: write `up` (may be NULL) and read into h. */
static int pump(struct k8s_portforward *pf, const char *req, uint64_t up_len, uint64_t seed,
                EVP_MD_CTX *up_sha, struct http_reader *h, struct k8s_error *err)
{
	size_t req_len = strlen(req), req_off = 0;
	uint64_t up_off = 0, s = seed;
	uint8_t chunk[65536], rbuf[32768];
	size_t c_len = 0, c_off = 0;
	for (;;) {
		/* Refill the upload chunk. */
		while (req_off < req_len || c_off < c_len || up_off < up_len) {
			if (c_off == c_len && req_off == req_len) {
				c_len = up_len - up_off < sizeof(chunk) ? (size_t)(up_len - up_off)
				                                        : sizeof(chunk);
				fill(chunk, c_len, &s);
				EVP_DigestUpdate(up_sha, chunk, c_len);
				up_off += c_len;
				c_off = 0;
			}
			const uint8_t *p =
			        req_off < req_len ? (const uint8_t *)req + req_off : chunk + c_off;
			size_t n = req_off < req_len ? req_len - req_off : c_len - c_off;
			ssize_t w = k8s_portforward_write(pf, p, n, err);
			if (w == -EAGAIN)
				break;
			if (w < 0)
				return (int)w;
			if (req_off < req_len)
				req_off += (size_t)w;
			else
				c_off += (size_t)w;
		}
		for (;;) {
			ssize_t r = k8s_portforward_read(pf, rbuf, sizeof(rbuf), err);
			if (r == -EAGAIN)
				break;
			if (r <= 0)
				return (int)r;
			http_feed(h, rbuf, (size_t)r);
		}
		struct pollfd pfd = {k8s_portforward_fd(pf), k8s_portforward_events(pf), 0};
		if (poll(&pfd, 1, 20000) == 0)
			return -ETIMEDOUT;
	}
}

static EVP_MD_CTX *sha_new(void)
{
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	if (x && EVP_DigestInit_ex(x, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(x);
		x = NULL;
	}
	return x;
}

static void hex(const uint8_t *md, char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: pf_client echo|closed|error|drop|get NS POD PORT [MIB]\n");
		return 2;
	}
	long port = 0, mib = 4;
	if (parse_int(argv[4], 1, 65535, &port) < 0 ||
	    (argc > 5 && parse_int(argv[5], 0, 1024, &mib) < 0)) {
		fprintf(stderr, "pf_client: bad port or size\n");
		return 2;
	}
	_cleanup_(err_done) struct k8s_error err = {0};
	struct kubeconfig_opts o = {.no_in_cluster = true};
	struct kubeconfig *kc = NULL;
	int r = kubeconfig_load(&o, &kc, &err);
	if (r < 0)
		return die("kubeconfig", r, &err);
	_cleanup_k8s_client_ struct k8s_client *c = NULL;
	r = k8s_client_new(kc, &c, &err);
	if (r < 0)
		return die("client", r, &err);
	_cleanup_k8s_portforward_ struct k8s_portforward *pf = NULL;
	r = k8s_portforward_open(c, argv[2], argv[3], (uint16_t)port, 20000, &pf, &err);
	if (r < 0)
		return die("open", r, &err);

	_cleanup_(md_done) EVP_MD_CTX *up = sha_new();
	_cleanup_(md_done) EVP_MD_CTX *down = sha_new();
	struct http_reader h = {0};
	h.sha = down;
	if (!up || !h.sha)
		return 1;
	if (!strcmp(argv[1], "echo")) {
		uint64_t n = (uint64_t)mib << 20;
		char req[256];
		snprintf(req, sizeof(req),
		         "POST /echo HTTP/1.1\r\nHost: pod\r\nContent-Length: %llu\r\n"
		         "Connection: close\r\n\r\n",
		         (unsigned long long)n);
		r = pump(pf, req, n, 42, up, &h, &err);
		if (r < 0)
			return die("echo", r, &err);
		uint8_t a[32], b[32];
		char ha[65], hb[65];
		EVP_DigestFinal_ex(up, a, NULL);
		EVP_DigestFinal_ex(h.sha, b, NULL);
		hex(a, ha);
		hex(b, hb);
		if (strncmp(h.head, "HTTP/1.", 7) || !strstr(h.head, " 200 ") || h.body != n ||
		    strcmp(ha, hb)) {
			fprintf(stderr,
			        "pf_client: echo mismatch: %llu of %llu bytes, up %s down %s\n%s",
			        (unsigned long long)h.body, (unsigned long long)n, ha, hb, h.head);
			return 1;
		}
		struct k8s_portforward_stats st;
		k8s_portforward_stats(pf, &st);
		printf("echo ok %llu bytes sha256 %s sent %llu received %llu\n",
		       (unsigned long long)n, ha, (unsigned long long)st.sent,
		       (unsigned long long)st.received);
		return 0;
	}
	if (!strcmp(argv[1], "get")) {
		uint64_t n = (uint64_t)mib << 20;
		char req[256];
		struct timespec t0, t1;
		snprintf(req, sizeof(req),
		         "GET /bytes?n=%llu HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n",
		         (unsigned long long)n);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = pump(pf, req, 0, 0, up, &h, &err);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (r < 0)
			return die("get", r, &err);
		if (!strstr(h.head, " 200 ") || h.body != n) {
			fprintf(stderr, "pf_client: get: %llu of %llu bytes\n%s",
			        (unsigned long long)h.body, (unsigned long long)n, h.head);
			return 1;
		}
		double s =
		        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		printf("get ok %llu bytes %.3f s %.1f MB/s\n", (unsigned long long)n, s,
		       (double)n / s / 1e6);
		return 0;
	}
	if (!strcmp(argv[1], "closed")) {
		r = pump(pf, "", 0, 0, up, &h, &err);
		if (r != -ECONNREFUSED || !err.message ||
		    !strstr(err.message, "error forwarding port")) {
			fprintf(stderr, "pf_client: closed: got %d: %s\n", r,
			        err.message ? err.message : "-");
			return 1;
		}
		printf("closed ok: %s\n", err.message);
		return 0;
	}
	if (!strcmp(argv[1], "error")) {
		const char *want = getenv("PF_EXPECT") ? getenv("PF_EXPECT") : "";
		r = pump(pf, "", 0, 0, up, &h, &err);
		if (r != -EREMOTEIO || !err.message ||
		    !strstr(err.message, "error forwarding port") || !strstr(err.message, want) ||
		    h.body || h.head_len) {
			fprintf(stderr, "pf_client: error: got %d after %zu bytes: %s\n", r,
			        h.head_len, err.message ? err.message : "-");
			return 1;
		}
		printf("error ok: %s\n", err.message);
		return 0;
	}
	if (!strcmp(argv[1], "drop")) {
		r = pump(pf,
		         "GET /bytes?n=8388608 HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n",
		         0, 0, up, &h, &err);
		if (r != -ECONNRESET || h.body >= 8388608) {
			fprintf(stderr, "pf_client: drop: got %d after %llu bytes: %s\n", r,
			        (unsigned long long)h.body, err.message ? err.message : "-");
			return 1;
		}
		printf("drop ok after %llu bytes: %s\n", (unsigned long long)h.body, err.message);
		uint64_t first = h.body;
		/* The session survives: a new generation, a new TCP stream. */
		k8s_error_clear(&err);
		if (getenv("PF_AFTER_DROP_CMD") && system(getenv("PF_AFTER_DROP_CMD")) != 0)
			return die("PF_AFTER_DROP_CMD", -EIO, &err);
		r = k8s_portforward_reconnect(pf, 20000, &err);
		if (r < 0)
			return die("reconnect", r, &err);
		_cleanup_(md_done) EVP_MD_CTX *down2 = sha_new();
		struct http_reader h2 = {0};
		h2.sha = down2;
		r = pump(pf, "GET / HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n", 0, 0, up,
		         &h2, &err);
		struct k8s_portforward_stats st;
		k8s_portforward_stats(pf, &st);
		if (r != 0 || !strstr(h2.head, " 200 ") || st.generation != 2) {
			fprintf(stderr, "pf_client: after reconnect: %d gen %u: %s\n%s", r,
			        st.generation, err.message ? err.message : "-", h2.head);
			return 1;
		}
		printf("reconnect ok: generation %u, %llu bytes before the drop\n", st.generation,
		       (unsigned long long)first);
		return 0;
	}
	fprintf(stderr, "pf_client: unknown mode %s\n", argv[1]);
	return 2;
}
