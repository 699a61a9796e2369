/* TCP reassembly (see reasm.h). Segments ahead of the next expected byte
 * are kept in a sorted list with their overlaps already cut away, so
 * draining is a walk from the head. */
#include "agent/reasm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct reasm_seg {
	struct reasm_seg *next;
	uint32_t seq, len;
	uint8_t data[];
};

/* a - b as a signed distance modulo 2^32: > 0 when a is after b. */
static int32_t seq_diff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

void reasm_init(struct reasm *r, uint32_t isn)
{
	memset(r, 0, sizeof(*r));
	r->next = isn + 1; /* the SYN takes one sequence number */
}

void reasm_free(struct reasm *r, size_t *total_ooo)
{
	while (r->ooo) {
		struct reasm_seg *s = r->ooo;
		r->ooo = s->next;
		*total_ooo -= s->len;
		free(s);
	}
	r->ooo_bytes = 0;
}

/* Keep p[0..n) at seq (after next), cutting what the list already has. */
static int store(struct reasm *r, uint32_t seq, const uint8_t *p, size_t n, size_t *total_ooo,
                 size_t total_max)
{
	struct reasm_seg **pp = &r->ooo;

	while (n) {
		struct reasm_seg *s = *pp;
		size_t take = n;
		if (s) {
			if (seq_diff(seq, s->seq + s->len) >= 0) {
				pp = &s->next; /* entirely after s */
				continue;
			}
			if (seq_diff(seq, s->seq) >= 0) {
				/* Starts inside s: skip the covered part. */
				size_t cov = (size_t)seq_diff(s->seq + s->len, seq);
				if (cov >= n)
					return 0;
				seq += (uint32_t)cov, p += cov, n -= cov;
				pp = &s->next;
				continue;
			}
			/* Starts before s: the part up to s is new. */
			size_t gap = (size_t)seq_diff(s->seq, seq);
			if (take > gap)
				take = gap;
		}
		if (r->ooo_bytes + take > REASM_MAX_OOO || *total_ooo + take > total_max)
			return -ENOBUFS;
		struct reasm_seg *ns = malloc(sizeof(*ns) + take);
		if (!ns)
			return -ENOBUFS;
		ns->seq = seq;
		ns->len = (uint32_t)take;
		memcpy(ns->data, p, take);
		ns->next = *pp;
		*pp = ns;
		pp = &ns->next;
		r->ooo_bytes += take;
		*total_ooo += take;
		seq += (uint32_t)take, p += take, n -= take;
	}
	return 0;
}

int reasm_segment(struct reasm *r, uint32_t seq, const uint8_t *p, size_t n, bool fin,
                  size_t *total_ooo, size_t total_max, reasm_deliver_fn deliver, void *ctx)
{
	if (fin && !r->fin) {
		r->fin = true;
		r->fin_seq = seq + (uint32_t)n;
	}
	/* Drop what was delivered already (a retransmission, or the old
	 * part of an overlapping segment). */
	int32_t d = seq_diff(r->next, seq);
	if (d > 0) {
		if ((size_t)d >= n)
			n = 0;
		else
			p += d, n -= (size_t)d, seq = r->next;
	}
	if (n && seq == r->next) {
		deliver(ctx, p, n);
		r->next += (uint32_t)n;
	} else if (n) {
		int e = store(r, seq, p, n, total_ooo, total_max);
		if (e < 0)
			return e;
	}
	/* Drain what became contiguous. */
	while (r->ooo && seq_diff(r->ooo->seq, r->next) <= 0) {
		struct reasm_seg *s = r->ooo;
		int32_t skip = seq_diff(r->next, s->seq);
		if ((uint32_t)skip < s->len) {
			deliver(ctx, s->data + skip, s->len - (uint32_t)skip);
			r->next = s->seq + s->len;
		}
		r->ooo = s->next;
		r->ooo_bytes -= s->len;
		*total_ooo -= s->len;
		free(s);
	}
	return r->fin && r->next == r->fin_seq ? 1 : 0;
}
