/* libFuzzer target for the RFC 6455 decoder (k8s/ws.c). The first byte
 * picks the role, the message limit and a chunk size; the rest is fed in
 * those chunks, and again in one piece: both runs must produce the same
 * events and the same verdict (the decoder is split-invariant). Every
 * message event is re-encoded, masked and decoded by the other role, and
 * must come back byte for byte. Any violation aborts. */
#include "fuzz.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/ws.h"

/* A digest of the events so two runs can be compared cheaply. */
struct trace {
	uint64_t h;
	unsigned events;
	int verdict;
	uint16_t failure;
};

static void mix(struct trace *t, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		t->h = (t->h ^ b[i]) * 1099511628211ull;
}

/* Decode the message payload again after a masked re-encode. */
static void round_trip(const struct ws_event *ev, enum ws_role role)
{
	size_t cap = ev->len + WS_HEADER_MAX;
	uint8_t *f = malloc(cap);
	ASSERT(f);
	static const uint8_t mask[4] = {0xde, 0xad, 0xbe, 0xef};
	bool masked = role == WS_ROLE_CLIENT; /* the other side masks */
	size_t n = 0;
	ASSERT(ws_encode(f, cap, ev->opcode, true, ev->data, ev->len, masked ? mask : NULL, &n) ==
	       0);
	struct ws_decoder d;
	ws_decoder_init(&d, masked ? WS_ROLE_SERVER : WS_ROLE_CLIENT, ev->len ? ev->len : 1);
	struct ws_event e2;
	size_t k = 0;
	ASSERT(ws_decoder_feed(&d, f, n, &k, &e2) == 1);
	ASSERT(k == n && e2.type == WS_EV_MESSAGE && e2.len == ev->len);
	ASSERT(ev->len == 0 || memcmp(e2.data, ev->data, ev->len) == 0);
	ws_decoder_free(&d);
	free(f);
}

static struct trace run(const uint8_t *data, size_t size, enum ws_role role, size_t max,
                        size_t chunk, bool check)
{
	struct trace t = {.h = 1469598103934665603ull};
	struct ws_decoder d;
	ws_decoder_init(&d, role, max);
	size_t off = 0;
	while (off < size && !t.verdict) {
		size_t c = size - off < chunk ? size - off : chunk, used = 0;
		while (used < c) {
			struct ws_event ev;
			size_t k = 0;
			int r = ws_decoder_feed(&d, data + off + used, c - used, &k, &ev);
			ASSERT(k <= c - used);
			used += k;
			if (r < 0) {
				ASSERT(d.failure == WS_CLOSE_PROTOCOL ||
				       d.failure == WS_CLOSE_BAD_DATA ||
				       d.failure == WS_CLOSE_TOO_BIG);
				t.verdict = r;
				t.failure = d.failure;
				break;
			}
			if (r == 0) {
				ASSERT(used == c);
				break;
			}
			t.events++;
			uint8_t tag[4] = {(uint8_t)ev.type, (uint8_t)ev.opcode,
			                  (uint8_t)(ev.close_code >> 8), (uint8_t)ev.close_code};
			mix(&t, tag, sizeof(tag));
			mix(&t, &ev.len, sizeof(ev.len));
			if (ev.len)
				mix(&t, ev.data, ev.len);
			if (ev.type == WS_EV_MESSAGE) {
				ASSERT(ev.len <= max);
				if (ev.opcode == WS_OP_TEXT)
					ASSERT(ws_utf8_valid(ev.data, ev.len));
				if (check)
					round_trip(&ev, role);
			} else {
				ASSERT(ev.len <= WS_CONTROL_MAX);
			}
		}
		off += c;
	}
	ws_decoder_free(&d);
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t cfg = data[0];
	enum ws_role role = (cfg & 1) ? WS_ROLE_SERVER : WS_ROLE_CLIENT;
	/* Small limits so the 1009 paths are reachable with short inputs. */
	static const size_t maxes[4] = {16, 200, 70000, WS_MESSAGE_MAX_DEFAULT};
	size_t max = maxes[(cfg >> 1) & 3];
	size_t chunk = (size_t)(cfg >> 3) + 1;
	struct trace a = run(data + 1, size - 1, role, max, chunk, true);
	struct trace b = run(data + 1, size - 1, role, max, size ? size : 1, false);
	ASSERT(a.h == b.h && a.events == b.events && a.verdict == b.verdict &&
	       a.failure == b.failure);
	return 0;
}
