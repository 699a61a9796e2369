/* libFuzzer target for HPACK (agent/hpack.c). The input is one byte that
 * picks max_list, then header blocks, each behind a 2-byte big-endian
 * length (the last one takes what is left if its length runs over). One
 * decoder decodes the blocks in order, as on one connection, until one is
 * a decoding error. Every list it gives (whole, or cut short by -E2BIG) is
 * encoded again and decoded by a fresh decoder, which must give the very
 * same list. Any violation aborts. */
#include "tests/fuzz/fuzz.h"
#include "agent/hpack.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Aborts on a broken invariant: libFuzzer and the replay both see it. */
static void must(bool ok)
{
	if (!ok)
		abort();
}

static void check_reencode(const struct hpack_list *l)
{
	struct hpack_dec *d = hpack_dec_new();
	struct hpack_list again;
	uint8_t *enc = NULL;
	size_t len = 0, cap = 0;

	hpack_list_init(&again);
	hpack_encode(l, &enc, &len, &cap);
	must(hpack_decode(d, enc, len, SIZE_MAX, &again) == 0);
	must(again.n == l->n && again.size == l->size && again.len == l->len);
	/* Fields are laid out back to back in order in both lists. */
	must(l->len == 0 || memcmp(again.buf, l->buf, l->len) == 0);
	for (size_t i = 0; i < l->n; i++)
		must(again.f[i].name_len == l->f[i].name_len &&
		     again.f[i].value_len == l->f[i].value_len);
	free(enc);
	hpack_list_free(&again);
	hpack_dec_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hpack_dec *d;
	struct hpack_list l;
	size_t max_list, pos = 1;

	if (size < 1)
		return 0;
	/* 0xff: no limit; else steps of 64 bytes, so -E2BIG comes up. */
	max_list = data[0] == 0xff ? SIZE_MAX : (size_t)data[0] * 64;
	d = hpack_dec_new();
	hpack_list_init(&l);
	while (pos + 2 <= size) {
		size_t n = (size_t)data[pos] << 8 | data[pos + 1];
		pos += 2;
		if (n > size - pos)
			n = size - pos;
		hpack_list_clear(&l);
		int r = hpack_decode(d, data + pos, n, max_list, &l);
		pos += n;
		must(r == 0 || r == -E2BIG || r == -EPROTO);
		if (r == -EPROTO)
			break; /* only hpack_dec_free is valid now */
		/* What was stored stays within the limit either way. */
		must(l.size <= max_list);
		check_reencode(&l);
	}
	hpack_list_free(&l);
	hpack_dec_free(d);
	return 0;
}
