/* What a stolen connection on a filtered port speaks, from its first
 * bytes (mirrord's HTTP detection): an HTTP/1.x request line, the
 * HTTP/2 prior-knowledge preface, or something else (TLS, a database
 * protocol, ...), which the agent passes to the pod's app whole. Pure. */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum sniff {
	SNIFF_MORE,  /* a prefix of something HTTP: more bytes are needed */
	SNIFF_HTTP1, /* a whole HTTP/1.x request line */
	SNIFF_H2,    /* the whole HTTP/2 preface */
	SNIFF_OTHER, /* not HTTP */
};

/* The longest method a request line may have here. */
#define SNIFF_MAX_METHOD 32

enum sniff sniff_http(const uint8_t *p, size_t n);
