/* Helpers shared by the agentproto unit tests (test_agentproto.c and
 * test_agentproto_ext.c). */
#pragma once

#include "tests/unit/test.h"
#include "agentproto/agentproto.h"

#include <string.h>

#define FRAME_MAX (AP_HEADER_SIZE + AP_MAX_PAYLOAD)

/* Big enough for the largest legal frame plus slack for oversized ones. */
static uint8_t buf[FRAME_MAX + 256] __attribute__((unused));
static uint8_t big[FRAME_MAX + 256] __attribute__((unused));

static inline struct ap_bytes B(const char *s) {
	return (struct ap_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static inline bool
bytes_eq(struct ap_bytes a, const char *s)
{
	return a.len == strlen(s) && memcmp(a.ptr, s, a.len) == 0;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Write a raw header; the payload is the caller's business. */
static inline void hdr(uint8_t *p, uint32_t plen, uint8_t type, uint8_t flags, uint16_t reserved,
                       uint32_t id)
{
	put32(p, plen);
	p[4] = type;
	p[5] = flags;
	p[6] = (uint8_t)(reserved >> 8);
	p[7] = (uint8_t)reserved;
	put32(p + 8, id);
}

static inline struct ap_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
	struct ap_addr r = {.family = 4, .port = port};
	r.addr[0] = a, r.addr[1] = b, r.addr[2] = c, r.addr[3] = d;
	return r;
}

static inline struct ap_addr v6_loopback(uint16_t port)
{
	struct ap_addr r = {.family = 6, .port = port};
	r.addr[15] = 1;
	return r;
}

/* Encode m into buf, check the size agrees with ap_encoded_size(), that
 * every strict prefix is "need more" and that the full frame decodes with
 * every byte consumed. Returns the frame length; *out is the decoded msg. */
static inline size_t roundtrip(const struct ap_msg *m, struct ap_msg *out)
{
	ssize_t n = ap_encode(m, buf, sizeof(buf));
	CHECK(n >= AP_HEADER_SIZE);
	CHECK_EQ(ap_encoded_size(m), n);
	for (size_t k = 0; k < (size_t)n; k++) {
		struct ap_msg tmp;
		CHECK_EQ(ap_decode(buf, k, &tmp), 0);
	}
	memset(out, 0xa5, sizeof(*out));
	CHECK_EQ(ap_decode(buf, (size_t)n, out), n);
	CHECK_EQ(out->type, m->type);
	CHECK_EQ(out->id, m->id);
	/* Re-encoding the decoded message gives the same bytes. */
	ssize_t n2 = ap_encode(out, big, sizeof(big));
	CHECK_EQ(n2, n);
	CHECK(memcmp(buf, big, (size_t)n) == 0);
	return (size_t)n;
}

/* Decode a hand-built frame of total length len and expect err. */
static inline void expect_decode(const uint8_t *p, size_t len, ssize_t err)
{
	struct ap_msg m;
	memset(&m, 0x5a, sizeof(m));
	CHECK_EQ(ap_decode(p, len, &m), err);
	/* Out-param untouched on failure. */
	if (err < 0)
		for (size_t i = 0; i < sizeof(m); i++)
			CHECK_EQ(((uint8_t *)&m)[i], 0x5a);
}
