/* TCP reassembly of one direction of one connection, from captured
 * segments: pure (no I/O, no logging), so unit tests drive it directly.
 *
 * Bytes are delivered in sequence order exactly once: retransmissions and
 * the overlapping parts of segments are dropped, segments that arrive
 * early wait (bounded) until the gap before them fills. Sequence numbers
 * compare modulo 2^32. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Out-of-order bytes one flow may hold. */
#define REASM_MAX_OOO (1024u * 1024)

struct reasm_seg;

struct reasm {
	uint32_t next;    /* next sequence number to deliver */
	uint32_t fin_seq; /* sequence number of the FIN, if fin */
	bool fin;
	struct reasm_seg *ooo; /* sorted by seq, non-overlapping */
	size_t ooo_bytes;
};

typedef void (*reasm_deliver_fn)(void *ctx, const uint8_t *p, size_t n);

/* Start after a SYN with initial sequence number isn. */
void reasm_init(struct reasm *r, uint32_t isn);
/* One segment (payload p[0..n), fin if the FIN flag was set). Delivers
 * what became contiguous. Returns 1 once every byte up to the FIN was
 * delivered, 0 otherwise, -ENOBUFS when the segments waiting for a gap
 * would pass REASM_MAX_OOO (the flow cannot be completed faithfully).
 * *total_ooo is the caller's sum over all flows, kept up to date, and
 * total_max its bound. */
int reasm_segment(struct reasm *r, uint32_t seq, const uint8_t *p, size_t n, bool fin,
                  size_t *total_ooo, size_t total_max, reasm_deliver_fn deliver, void *ctx);
/* Free what waits; *total_ooo is reduced by it. */
void reasm_free(struct reasm *r, size_t *total_ooo);
