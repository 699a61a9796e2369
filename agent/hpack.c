/* HPACK (RFC 7541): header lists, the decoder with its dynamic table, and
 * a stateless encoder. See agent/hpack.h for the contract.
 *
 * Bounds. Every integer is at most 32 bits and 5 continuation bytes; every
 * string lies inside the block. Memory grows only in the caller's list
 * (bounded by max_list) and in the decoder's fixed arrays (the table and a
 * scratch entry, both sized by HPACK_TABLE_SIZE): a field that is neither
 * stored nor indexed is only validated, never copied. No recursion. */
#include "agent/hpack.h"
#include "agent/hpack_huff.h"
#include "common/util.h"

#include <errno.h>
#include <string.h>

/* RFC 7541 §4.1: an entry's size is its name and value plus 32; RFC 9113
 * §6.5.2 counts a header list the same way. */
#define HPACK_ENTRY_OVERHEAD 32u
/* The most entries a table of HPACK_TABLE_SIZE can hold (all empty). */
#define HPACK_MAX_ENTRIES (HPACK_TABLE_SIZE / HPACK_ENTRY_OVERHEAD)
/* Integers: 5 continuation bytes carry 35 bits, more than the 32 any
 * length or index of ours can use; a sixth is an error, not a slow path. */
#define HPACK_INT_MAX_CONT 5
/* What one block may decode to, in list size (stored or not), as a
 * multiple of max_list (plus a table's worth): a literal with indexing
 * costs copies of up to a table entry for two bytes of input, so an
 * unbounded block of them is ~7 ms of CPU per 64 KiB. A peer over this is
 * far past the limit it was told, not a client with a big request. */
#define HPACK_WORK_FACTOR 4u

struct hpack_static {
	const char *name, *value;
	uint8_t nlen, vlen;
};

#define S(n, v)                                    \
	{                                          \
		n, v, sizeof(n) - 1, sizeof(v) - 1 \
	}
/* RFC 7541 Appendix A; index 1 is [0]. */
static const struct hpack_static static_table[] = {
        S(":authority", ""),
        S(":method", "GET"),
        S(":method", "POST"),
        S(":path", "/"),
        S(":path", "/index.html"),
        S(":scheme", "http"),
        S(":scheme", "https"),
        S(":status", "200"),
        S(":status", "204"),
        S(":status", "206"),
        S(":status", "304"),
        S(":status", "400"),
        S(":status", "404"),
        S(":status", "500"),
        S("accept-charset", ""),
        S("accept-encoding", "gzip, deflate"),
        S("accept-language", ""),
        S("accept-ranges", ""),
        S("accept", ""),
        S("access-control-allow-origin", ""),
        S("age", ""),
        S("allow", ""),
        S("authorization", ""),
        S("cache-control", ""),
        S("content-disposition", ""),
        S("content-encoding", ""),
        S("content-language", ""),
        S("content-length", ""),
        S("content-location", ""),
        S("content-range", ""),
        S("content-type", ""),
        S("cookie", ""),
        S("date", ""),
        S("etag", ""),
        S("expect", ""),
        S("expires", ""),
        S("from", ""),
        S("host", ""),
        S("if-match", ""),
        S("if-modified-since", ""),
        S("if-none-match", ""),
        S("if-range", ""),
        S("if-unmodified-since", ""),
        S("last-modified", ""),
        S("link", ""),
        S("location", ""),
        S("max-forwards", ""),
        S("proxy-authenticate", ""),
        S("proxy-authorization", ""),
        S("range", ""),
        S("referer", ""),
        S("refresh", ""),
        S("retry-after", ""),
        S("server", ""),
        S("set-cookie", ""),
        S("strict-transport-security", ""),
        S("transfer-encoding", ""),
        S("user-agent", ""),
        S("vary", ""),
        S("via", ""),
        S("www-authenticate", ""),
};
#undef S
#define STATIC_N (sizeof(static_table) / sizeof(static_table[0]))

/* ---- header lists ---- */

void hpack_list_init(struct hpack_list *l)
{
	memset(l, 0, sizeof(*l));
}

void hpack_list_clear(struct hpack_list *l)
{
	l->len = l->n = l->size = 0;
}

void hpack_list_free(struct hpack_list *l)
{
	if (!l)
		return;
	free(l->buf);
	free(l->f);
	hpack_list_init(l);
}

/* Adds a field of nlen + vlen bytes and returns where its name goes (the
 * value follows it), or NULL if the offsets would not fit in 32 bits. */
static uint8_t *list_room(struct hpack_list *l, size_t nlen, size_t vlen)
{
	if (nlen > UINT32_MAX / 2 || vlen > UINT32_MAX / 2 || l->len + nlen + vlen > UINT32_MAX)
		return NULL;
	/* Allocated even for an empty first field: NULL means failure. */
	if (l->len + nlen + vlen > l->cap || !l->buf) {
		size_t cap = l->cap ? l->cap : 256;
		while (cap < l->len + nlen + vlen)
			cap *= 2;
		l->buf = xrealloc(l->buf, cap);
		l->cap = cap;
	}
	if (l->n == l->fcap) {
		l->fcap = l->fcap ? l->fcap * 2 : 16;
		l->f = xrealloc(l->f, l->fcap * sizeof(*l->f));
	}
	struct hpack_field *f = &l->f[l->n++];
	f->name_off = (uint32_t)l->len;
	f->name_len = (uint32_t)nlen;
	f->value_off = (uint32_t)(l->len + nlen);
	f->value_len = (uint32_t)vlen;
	uint8_t *p = l->buf + l->len;
	l->len += nlen + vlen;
	l->size += nlen + vlen + HPACK_ENTRY_OVERHEAD;
	return p;
}

int hpack_list_add(struct hpack_list *l, const void *name, size_t nlen, const void *value,
                   size_t vlen)
{
	uint8_t *p = list_room(l, nlen, vlen);

	if (!p)
		return -E2BIG;
	/* memcpy from NULL is undefined even for 0 bytes. */
	if (nlen)
		memcpy(p, name, nlen);
	if (vlen)
		memcpy(p + nlen, value, vlen);
	return 0;
}

const uint8_t *hpack_list_get(const struct hpack_list *l, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < l->n; i++) {
		const struct hpack_field *f = &l->f[i];
		if (f->name_len == nlen && memcmp(l->buf + f->name_off, name, nlen) == 0) {
			*vlen = f->value_len;
			return l->buf + f->value_off;
		}
	}
	return NULL;
}

/* ---- the decoder ---- */

struct hpack_entry {
	uint32_t off, nlen, vlen; /* off: into hpack_dec.tab */
};

struct hpack_dec {
	/* The dynamic table: entries in a ring, oldest at ent[head]; their
	 * bytes (name then value) back to back in tab[tab_start, tab_end).
	 * Appends go to the end and eviction only moves tab_start, so a
	 * name read from the table stays put until the next compaction. tab
	 * is twice the table size so a compaction (moving at most
	 * HPACK_TABLE_SIZE live bytes to the front) comes at most once per
	 * HPACK_TABLE_SIZE bytes appended. */
	struct hpack_entry ent[HPACK_MAX_ENTRIES];
	uint32_t head, n;
	uint32_t size, max; /* RFC 7541 sizes: current and maximum */
	uint32_t tab_start, tab_end;
	uint8_t tab[2 * HPACK_TABLE_SIZE];
	/* A field on its way into the table: its name may be an entry that
	 * inserting it evicts (RFC 7541 §4.4), so it is copied here first. */
	uint8_t scratch[HPACK_TABLE_SIZE];
	/* Canonical Huffman decoding: the codes of length L are first[L] ..
	 * first[L] + count[L] - 1, for the symbols sym[off[L] ...]. */
	uint32_t first[HPACK_HUFF_MAXLEN + 1], count[HPACK_HUFF_MAXLEN + 1];
	uint16_t off[HPACK_HUFF_MAXLEN + 1];
	uint16_t sym[HPACK_HUFF_SYMS];
};

struct hpack_dec *hpack_dec_new(void)
{
	struct hpack_dec *d = xcalloc(1, sizeof(*d));
	uint16_t at[HPACK_HUFF_MAXLEN + 1] = {0};

	d->max = HPACK_TABLE_SIZE;
	/* A counting sort by code length; symbols of one length keep their
	 * order, which in a canonical code is the order of their codes. */
	for (unsigned s = 0; s < HPACK_HUFF_SYMS; s++)
		d->count[hpack_huff_len[s]]++;
	for (unsigned len = 1; len <= HPACK_HUFF_MAXLEN; len++)
		d->off[len] = at[len] = (uint16_t)(d->off[len - 1] + d->count[len - 1]);
	for (unsigned s = 0; s < HPACK_HUFF_SYMS; s++) {
		unsigned len = hpack_huff_len[s];
		if (at[len] == d->off[len])
			d->first[len] = hpack_huff_code[s];
		d->sym[at[len]++] = (uint16_t)s;
	}
	return d;
}

void hpack_dec_free(struct hpack_dec *d)
{
	free(d);
}

static struct hpack_entry *dyn_entry(struct hpack_dec *d, uint32_t i)
{
	/* i is 0 for the newest entry. */
	return &d->ent[(d->head + d->n - 1 - i) % HPACK_MAX_ENTRIES];
}

static void dyn_evict_to(struct hpack_dec *d, uint32_t limit)
{
	while (d->n && d->size > limit) {
		struct hpack_entry *e = &d->ent[d->head];
		d->size -= e->nlen + e->vlen + HPACK_ENTRY_OVERHEAD;
		d->tab_start = e->off + e->nlen + e->vlen;
		d->head = (d->head + 1) % HPACK_MAX_ENTRIES;
		d->n--;
	}
	if (!d->n)
		d->tab_start = d->tab_end = 0;
}

/* Inserts the field in d->scratch (nlen + vlen bytes, size already known
 * to fit in d->max). */
static void dyn_insert(struct hpack_dec *d, uint32_t nlen, uint32_t vlen)
{
	uint32_t fsize = nlen + vlen + HPACK_ENTRY_OVERHEAD;

	dyn_evict_to(d, d->max - fsize);
	if (d->tab_end + nlen + vlen > sizeof(d->tab)) {
		uint32_t live = d->tab_end - d->tab_start;
		memmove(d->tab, d->tab + d->tab_start, live);
		for (uint32_t i = 0; i < d->n; i++)
			d->ent[(d->head + i) % HPACK_MAX_ENTRIES].off -= d->tab_start;
		d->tab_start = 0;
		d->tab_end = live;
	}
	struct hpack_entry *e = &d->ent[(d->head + d->n) % HPACK_MAX_ENTRIES];
	e->off = d->tab_end;
	e->nlen = nlen;
	e->vlen = vlen;
	memcpy(d->tab + d->tab_end, d->scratch, nlen + vlen);
	d->tab_end += nlen + vlen;
	d->size += fsize;
	d->n++;
}

/* A string as found in the block or the tables: raw bytes, or Huffman code
 * that decodes to dlen bytes. */
struct hstr {
	const uint8_t *p;
	size_t len, dlen;
	bool huff;
};

/* RFC 7541 §5.1. */
static int get_int(const uint8_t *in, size_t n, size_t *pos, unsigned prefix, uint32_t *ret)
{
	uint32_t mask = (1u << prefix) - 1;
	uint64_t v;

	if (*pos >= n)
		return -EPROTO;
	v = in[(*pos)++] & mask;
	if (v == mask) {
		for (unsigned k = 0, shift = 0;; k++, shift += 7) {
			if (k == HPACK_INT_MAX_CONT || *pos >= n)
				return -EPROTO;
			uint8_t b = in[(*pos)++];
			v += (uint64_t)(b & 0x7f) << shift;
			if (v > UINT32_MAX)
				return -EPROTO;
			if (!(b & 0x80))
				break;
		}
	}
	*ret = (uint32_t)v;
	return 0;
}

/* Decodes Huffman code p[0..n) into dst (NULL: only check and count).
 * Returns the decoded length or -EPROTO (RFC 7541 §5.2: EOS in the string,
 * padding over 7 bits or not a prefix of EOS, i.e. not all ones). */
static long long huff_decode(const struct hpack_dec *d, const uint8_t *p, size_t n, uint8_t *dst)
{
	uint64_t acc = 0;
	unsigned nb = 0;
	size_t i = 0, out = 0;

	for (;;) {
		while (nb <= 56 && i < n) {
			acc = acc << 8 | p[i++];
			nb += 8;
		}
		if (nb == 0)
			break;
		/* No code of 7 bits or less is all ones (they would be
		 * prefixes of EOS), so a short all-ones tail is padding. */
		if (i == n && nb <= 7 && (~acc & ((1u << nb) - 1)) == 0)
			break;
		unsigned len = HPACK_HUFF_MINLEN;
		int sym = -1;
		for (; len <= HPACK_HUFF_MAXLEN && len <= nb; len++) {
			uint32_t v = (uint32_t)(acc >> (nb - len)) & ((1u << len) - 1);
			if (v - d->first[len] < d->count[len]) {
				sym = d->sym[d->off[len] + v - d->first[len]];
				break;
			}
		}
		if (sym < 0 || sym == HPACK_HUFF_EOS)
			return -EPROTO;
		nb -= len;
		if (dst)
			dst[out] = (uint8_t)sym;
		out++;
	}
	return (long long)out;
}

/* RFC 7541 §5.2: a string literal, checked (Huffman included) but not
 * copied. */
static int get_str(const struct hpack_dec *d, const uint8_t *in, size_t n, size_t *pos,
                   struct hstr *s)
{
	uint32_t len;
	int r;

	if (*pos >= n)
		return -EPROTO;
	s->huff = in[*pos] & 0x80;
	r = get_int(in, n, pos, 7, &len);
	if (r < 0)
		return r;
	if (len > n - *pos)
		return -EPROTO;
	s->p = in + *pos;
	s->len = s->dlen = len;
	*pos += len;
	if (s->huff) {
		long long dl = huff_decode(d, s->p, s->len, NULL);
		if (dl < 0)
			return (int)dl;
		s->dlen = (size_t)dl;
	}
	return 0;
}

static void put_str(const struct hpack_dec *d, const struct hstr *s, uint8_t *dst)
{
	if (s->huff)
		huff_decode(d, s->p, s->len, dst);
	else if (s->len)
		memcpy(dst, s->p, s->len);
}

/* Table index i (1-based, static then dynamic, §2.3.3) into name and value. */
static int get_indexed(struct hpack_dec *d, uint32_t i, struct hstr *name, struct hstr *value)
{
	const uint8_t *np, *vp;
	size_t nlen, vlen;

	if (i == 0)
		return -EPROTO;
	if (i <= STATIC_N) {
		const struct hpack_static *s = &static_table[i - 1];
		np = (const uint8_t *)s->name;
		nlen = s->nlen;
		vp = (const uint8_t *)s->value;
		vlen = s->vlen;
	} else if (i - STATIC_N <= d->n) {
		const struct hpack_entry *e = dyn_entry(d, i - STATIC_N - 1);
		np = d->tab + e->off;
		nlen = e->nlen;
		vp = np + nlen;
		vlen = e->vlen;
	} else {
		return -EPROTO;
	}
	*name = (struct hstr){.p = np, .len = nlen, .dlen = nlen};
	if (value)
		*value = (struct hstr){.p = vp, .len = vlen, .dlen = vlen};
	return 0;
}

/* One decoded field: into the list while it stays within max_list, into
 * the table when the representation says so. */
static void field_out(struct hpack_dec *d, const struct hstr *name, const struct hstr *value,
                      bool index, size_t max_list, bool *over, struct hpack_list *out)
{
	size_t fsize = name->dlen + value->dlen + HPACK_ENTRY_OVERHEAD;
	uint8_t *dst = NULL;

	if (!*over) {
		if (out->size > max_list || fsize > max_list - out->size)
			*over = true;
		else if (!(dst = list_room(out, name->dlen, value->dlen)))
			*over = true;
	}
	if (dst) {
		put_str(d, name, dst);
		put_str(d, value, dst + name->dlen);
	}
	if (!index)
		return;
	if (fsize > d->max) {
		/* §4.4: too large for the table, which it empties. */
		dyn_evict_to(d, 0);
		return;
	}
	/* Both fit in scratch: fsize <= d->max <= HPACK_TABLE_SIZE. */
	if (dst) {
		memcpy(d->scratch, dst, name->dlen + value->dlen);
	} else {
		put_str(d, name, d->scratch);
		put_str(d, value, d->scratch + name->dlen);
	}
	dyn_insert(d, (uint32_t)name->dlen, (uint32_t)value->dlen);
}

/* Counts a field into *work; false past budget. */
static bool within(size_t *work, size_t budget, const struct hstr *name, const struct hstr *value)
{
	size_t fsize = name->dlen + value->dlen + HPACK_ENTRY_OVERHEAD;

	if (fsize > budget - *work)
		return false;
	*work += fsize;
	return true;
}

int hpack_decode(struct hpack_dec *d, const uint8_t *in, size_t n, size_t max_list,
                 struct hpack_list *out)
{
	size_t pos = 0, work = 0;
	size_t budget = max_list > (SIZE_MAX - HPACK_TABLE_SIZE) / HPACK_WORK_FACTOR
	                        ? SIZE_MAX
	                        : max_list * HPACK_WORK_FACTOR + HPACK_TABLE_SIZE;
	bool over = false, any_field = false;

	while (pos < n) {
		uint8_t b = in[pos];
		struct hstr name, value;
		uint32_t i;
		bool index = false;
		int r;

		if (b & 0x80) {
			/* §6.1 indexed field. */
			r = get_int(in, n, &pos, 7, &i);
			if (r == 0)
				r = get_indexed(d, i, &name, &value);
			if (r < 0)
				return r;
			any_field = true;
			if (!within(&work, budget, &name, &value))
				return -EPROTO;
			field_out(d, &name, &value, false, max_list, &over, out);
			continue;
		}
		if ((b & 0xe0) == 0x20) {
			/* §6.3 size update: only before the block's first
			 * field (§4.2), and within our SETTINGS value. */
			r = get_int(in, n, &pos, 5, &i);
			if (r < 0)
				return r;
			if (any_field || i > HPACK_TABLE_SIZE)
				return -EPROTO;
			d->max = i;
			dyn_evict_to(d, i);
			continue;
		}
		/* §6.2: literal with incremental indexing (01, 6-bit index),
		 * without indexing (0000) or never indexed (0001), 4-bit. */
		index = (b & 0xc0) == 0x40;
		r = get_int(in, n, &pos, index ? 6 : 4, &i);
		if (r < 0)
			return r;
		r = i ? get_indexed(d, i, &name, NULL) : get_str(d, in, n, &pos, &name);
		if (r == 0)
			r = get_str(d, in, n, &pos, &value);
		if (r < 0)
			return r;
		any_field = true;
		if (!within(&work, budget, &name, &value))
			return -EPROTO;
		field_out(d, &name, &value, index, max_list, &over, out);
	}
	return over ? -E2BIG : 0;
}

/* ---- the encoder ---- */

/* Fields an intermediary must never put in a table (§7.1.3): credentials
 * and cookies. The encoder never indexes anything itself; the flag tells
 * whoever re-encodes the field after us. */
static bool sensitive(const uint8_t *name, size_t nlen)
{
	static const char *const names[] = {"authorization", "proxy-authorization", "cookie",
	                                    "set-cookie"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == nlen && memcmp(names[i], name, nlen) == 0)
			return true;
	return false;
}

static unsigned static_name_index(const uint8_t *name, size_t nlen)
{
	for (unsigned i = 0; i < STATIC_N; i++)
		if (static_table[i].nlen == nlen && memcmp(static_table[i].name, name, nlen) == 0)
			return i + 1;
	return 0;
}

static void put_int(uint8_t *o, size_t *len, uint8_t flags, unsigned prefix, uint64_t v)
{
	uint32_t mask = (1u << prefix) - 1;

	if (v < mask) {
		o[(*len)++] = flags | (uint8_t)v;
		return;
	}
	o[(*len)++] = flags | (uint8_t)mask;
	v -= mask;
	while (v >= 0x80) {
		o[(*len)++] = (uint8_t)(v & 0x7f) | 0x80;
		v >>= 7;
	}
	o[(*len)++] = (uint8_t)v;
}

static void put_lit(uint8_t *o, size_t *len, const uint8_t *s, size_t n)
{
	uint64_t bits = 0;

	for (size_t i = 0; i < n; i++)
		bits += hpack_huff_len[s[i]];
	if ((bits + 7) / 8 >= n) {
		put_int(o, len, 0x00, 7, n);
		if (n)
			memcpy(o + *len, s, n);
		*len += n;
		return;
	}
	put_int(o, len, 0x80, 7, (bits + 7) / 8);
	uint64_t acc = 0;
	unsigned nb = 0;
	for (size_t i = 0; i < n; i++) {
		acc = acc << hpack_huff_len[s[i]] | hpack_huff_code[s[i]];
		nb += hpack_huff_len[s[i]];
		while (nb >= 8) {
			nb -= 8;
			o[(*len)++] = (uint8_t)(acc >> nb);
		}
	}
	/* Pad with the most significant bits of EOS: ones. */
	if (nb)
		o[(*len)++] = (uint8_t)(acc << (8 - nb)) | (uint8_t)((1u << (8 - nb)) - 1);
}

/* An integer's prefix byte and at most 10 continuation bytes (64 bits). */
#define HPACK_INT_ROOM 11u

void hpack_encode(const struct hpack_list *l, uint8_t **out, size_t *len, size_t *cap)
{
	for (size_t k = 0; k < l->n; k++) {
		const struct hpack_field *f = &l->f[k];
		const uint8_t *name = l->buf + f->name_off, *value = l->buf + f->value_off;
		/* A string is never longer coded than raw (put_lit picks). */
		size_t need = *len + f->name_len + f->value_len + 3 * HPACK_INT_ROOM;

		if (need > *cap) {
			size_t c = *cap ? *cap : 256;
			while (c < need)
				c *= 2;
			*out = xrealloc(*out, c);
			*cap = c;
		}
		uint8_t *o = *out;
		uint8_t flags = sensitive(name, f->name_len) ? 0x10 : 0x00;
		unsigned idx = static_name_index(name, f->name_len);
		put_int(o, len, flags, 4, idx);
		if (!idx)
			put_lit(o, len, name, f->name_len);
		put_lit(o, len, value, f->value_len);
	}
}
