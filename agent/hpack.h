/* HPACK (RFC 7541), the header compression of HTTP/2, for the agent's
 * filtered steal of HTTP/2 connections (agent/h2.c). Pure: no I/O, no
 * global state; every length is bounded.
 *
 * The decoder keeps the dynamic table of one direction of one connection
 * (the peer's encoder state), so each HTTP/2 connection end the agent
 * reads from has its own hpack_dec. The encoder never uses the dynamic
 * table (every field is a literal "without indexing", its name taken from
 * the static table when it is there), so it needs no state and its output
 * is valid for any peer whatever SETTINGS_HEADER_TABLE_SIZE it sent. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The dynamic table size the decoder starts with and never exceeds: the
 * SETTINGS_HEADER_TABLE_SIZE default, which the agent never changes. */
#define HPACK_TABLE_SIZE 4096u

/* One decoded field: offsets into hpack_list.buf. */
struct hpack_field {
	uint32_t name_off, name_len;
	uint32_t value_off, value_len;
};

/* A header list: names and values back to back in buf (not
 * NUL-terminated), in the order they were decoded or added. size is the
 * list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2:
 * name + value + 32 per field). */
struct hpack_list {
	uint8_t *buf;
	size_t len, cap;
	struct hpack_field *f;
	size_t n, fcap;
	size_t size;
};

void hpack_list_init(struct hpack_list *l);
/* Empties the list, keeping its memory. */
void hpack_list_clear(struct hpack_list *l);
void hpack_list_free(struct hpack_list *l);
/* Appends one field (copied). Returns 0, or -E2BIG if a length is over
 * UINT32_MAX / 2 or the buffer would pass UINT32_MAX bytes (the offsets
 * are 32 bits). */
int hpack_list_add(struct hpack_list *l, const void *name, size_t nlen, const void *value,
                   size_t vlen);
/* The value of the first field named name (exact bytes; HTTP/2 names are
 * lower case), or NULL; *vlen gets its length. */
const uint8_t *hpack_list_get(const struct hpack_list *l, const char *name, size_t *vlen);

struct hpack_dec;

struct hpack_dec *hpack_dec_new(void);
void hpack_dec_free(struct hpack_dec *d);

/* Decodes one whole header block (a HEADERS payload, padding and priority
 * removed, joined with its CONTINUATION payloads) and appends its fields to
 * out. max_list bounds out->size (what the agent advertised as
 * SETTINGS_MAX_HEADER_LIST_SIZE); past it the block is still decoded to
 * the end, so the dynamic table stays in step with the peer's, but no more
 * fields are stored.
 * Returns 0; -E2BIG when the list went over max_list (the stream gets a
 * 431 or RST_STREAM, the connection lives on); -EPROTO on anything RFC 7541
 * calls a decoding error (bad index, bad integer or string, bad Huffman
 * code or padding, a size update over HPACK_TABLE_SIZE or after the first
 * field, a truncated block), and on a block whose fields add up to more
 * than 4 * max_list + HPACK_TABLE_SIZE (the decoding work is bounded by
 * the limit, not by the block: see hpack.c): a COMPRESSION_ERROR, the
 * connection must end (the decoder's state is then undefined; only
 * hpack_dec_free is valid). */
int hpack_decode(struct hpack_dec *d, const uint8_t *in, size_t n, size_t max_list,
                 struct hpack_list *out);

/* Appends the encoding of every field of l to *out (a malloc'd buffer of
 * *len bytes used, *cap allocated, grown with realloc as needed; *out may
 * be NULL with *len == *cap == 0). Literals without indexing; a string is
 * Huffman-coded when that is shorter. */
void hpack_encode(const struct hpack_list *l, uint8_t **out, size_t *len, size_t *cap);
