/* libFuzzer target for the filtered mirror's request splitter
 * (agent/mirror_http.c over agent/http1.c and agent/sniff.c): the input's
 * first byte seeds how the rest is cut into reads, the rest is the bytes
 * of one captured connection. The filter matches "x-user: a..." headers.
 * The client side is stubbed: a copy stream that records what it gets.
 * Invariants, any violation aborts:
 *  - the copy never holds more bytes than were fed, and never more than
 *    MIRROR_MAX_PENDING of them at once (the stub is never drained);
 *  - at most one copy stream is opened, and only when the input has an
 *    "x-user:" field whose value starts with "a" (caseless, as the filter);
 *  - a copy starts with a request line: the empty lines a server ignores
 *    before one (RFC 9112 §2.2) are not copied;
 *  - the copy is closed at most once, and the end frees everything
 *    (ASan, LeakSanitizer);
 *  - fed in one piece, the same input copies the same bytes (unless the
 *    copy was cut with a reset inside a broken body): where the reads
 *    split it changes nothing. */
#include "fuzz.h"
#include "agent/http1.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static struct {
	int opened, closed;
	bool reset; /* the copy was cut inside a request */
	size_t copied;
	int first; /* the first byte copied, -1 before */
} cp;
static int stub;

struct istream *istream_open(struct incoming *in, uint8_t mode, uint16_t port,
                             const struct sockaddr *peer, const struct sockaddr *local,
                             uint32_t recv_window, const struct istream_ops *ops, void *ctx)
{
	(void)in, (void)mode, (void)port, (void)peer, (void)local, (void)recv_window;
	(void)ops, (void)ctx;
	cp.opened++;
	return (struct istream *)&stub;
}

int istream_send(struct istream *s, const uint8_t *p, size_t n, size_t max_pending)
{
	ASSERT(s == (struct istream *)&stub && cp.closed == 0);
	if (cp.copied + n > max_pending)
		return -ENOBUFS;
	if (n && cp.first < 0)
		cp.first = p[0];
	cp.copied += n;
	return 0;
}

void istream_close(struct istream *s, uint8_t how, int err)
{
	(void)err;
	ASSERT(s == (struct istream *)&stub);
	cp.closed++;
	cp.reset = how == AP_CLOSE_RESET;
}

/* "x-user:" (any case), blanks, then "a" or "A". */
static bool has_match(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 8 <= n; i++) {
		if (strncasecmp((const char *)p + i, "x-user:", 7) != 0)
			continue;
		size_t j = i + 7;
		while (j < n && (p[j] == ' ' || p[j] == '\t'))
			j++;
		if (j < n && (p[j] == 'a' || p[j] == 'A'))
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_filter *f;
	if (!f) {
		struct ap_msg m = {.type = AP_PORT_SUB};
		static const char pat[] = "^x-user: a";
		char err[128];
		m.u.port_sub.filter_op = AP_FILTER_ALL_OF;
		m.u.port_sub.rule_count = 1;
		m.u.port_sub.rules[0].kind = AP_FILTER_HEADER;
		m.u.port_sub.rules[0].pattern =
		        (struct ap_bytes){(const uint8_t *)pat, sizeof(pat) - 1};
		ASSERT(http_filter_new(&m, &f, err, sizeof(err)) == 0);
	}
	if (size < 1)
		return 0;
	unsigned seed = data[0];
	data++, size--;
	memset(&cp, 0, sizeof(cp));
	cp.first = -1;

	struct sockaddr_storage ss = {.ss_family = AF_INET};
	struct mhttp *m = mhttp_new(NULL, 80, &ss, &ss, f);
	size_t off = 0;
	while (off < size) {
		seed = seed * 1103515245u + 12345u;
		size_t k = 1 + (seed >> 16) % 700;
		if (k > size - off)
			k = size - off;
		mhttp_feed(m, data + off, k);
		off += k;
		ASSERT(cp.copied <= off && cp.copied <= MIRROR_MAX_PENDING);
	}
	ASSERT(cp.opened <= 1);
	ASSERT(cp.first != '\r' && cp.first != '\n');
	if (cp.opened)
		ASSERT(has_match(data, size));
	mhttp_end(m, AP_CLOSE_FIN, 0);
	ASSERT(cp.closed <= 1);

	/* The same bytes in one piece: the reads' boundaries change
	 * nothing of what is copied. */
	size_t copied = cp.copied;
	int opened = cp.opened;
	bool reset = cp.reset;
	memset(&cp, 0, sizeof(cp));
	cp.first = -1;
	m = mhttp_new(NULL, 80, &ss, &ss, f);
	mhttp_feed(m, data, size);
	mhttp_end(m, AP_CLOSE_FIN, 0);
	ASSERT(cp.opened == opened && cp.reset == reset);
	/* A broken body cuts the copy where a read met the error: the part
	 * before it depends on the reads; a reset says so. */
	ASSERT(cp.copied == copied || reset);
	return 0;
}
