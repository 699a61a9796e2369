/* HPACK (agent/hpack.c): the RFC 7541 Appendix C examples, every decoding
 * error, -E2BIG with the table kept in step, the dynamic table against a
 * model, the Huffman table, and encoder round trips. The codec is included
 * whole so the tests reach its integer coder and table (curl's UNITTEST
 * idea without a macro). */
#include "tests/unit/test.h"
#include "agent/hpack.c"

#include <errno.h>

/* "8286 84" -> bytes; spaces ignored. Returns the length. */
static size_t unhex(const char *s, uint8_t *out)
{
	size_t n = 0;
	int hi = -1;

	for (; *s; s++) {
		int v;
		if (*s == ' ')
			continue;
		v = *s <= '9' ? *s - '0' : (*s | 0x20) - 'a' + 10;
		if (hi < 0) {
			hi = v;
		} else {
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	CHECK(hi < 0);
	return n;
}

/* hex, then count bytes of fill: a block with one long string. */
static size_t hex_fill(const char *hex, int fill, size_t count, uint8_t *out)
{
	size_t n = unhex(hex, out);

	memset(out + n, fill, count);
	return n + count;
}

/* Checks that l is exactly the fields in want: "name", "value", ..., NULL. */
static void check_list(const struct hpack_list *l, const char *const *want)
{
	size_t i = 0, size = 0;

	for (; want[2 * i]; i++) {
		const char *n = want[2 * i], *v = want[2 * i + 1];
		CHECK(i < l->n);
		const struct hpack_field *f = &l->f[i];
		if (f->name_len != strlen(n) || memcmp(l->buf + f->name_off, n, f->name_len) ||
		    f->value_len != strlen(v) || memcmp(l->buf + f->value_off, v, f->value_len)) {
			fprintf(stderr, "field %zu: want \"%s: %s\", got \"%.*s: %.*s\"\n", i, n, v,
			        (int)f->name_len, (const char *)l->buf + f->name_off,
			        (int)f->value_len, (const char *)l->buf + f->value_off);
			CHECK(0);
		}
		size += strlen(n) + strlen(v) + 32;
	}
	CHECK_EQ(l->n, i);
	CHECK_EQ(l->size, size);
}

/* Checks the dynamic table, newest first: "name", "value", ..., NULL. */
static void check_table(struct hpack_dec *d, const char *const *want)
{
	size_t i = 0, size = 0;

	for (; want[2 * i]; i++) {
		const char *n = want[2 * i], *v = want[2 * i + 1];
		CHECK(i < d->n);
		const struct hpack_entry *e = dyn_entry(d, (uint32_t)i);
		CHECK_EQ(e->nlen, strlen(n));
		CHECK_EQ(e->vlen, strlen(v));
		CHECK(memcmp(d->tab + e->off, n, e->nlen) == 0);
		CHECK(memcmp(d->tab + e->off + e->nlen, v, e->vlen) == 0);
		size += strlen(n) + strlen(v) + 32;
	}
	CHECK_EQ(d->n, i);
	CHECK_EQ(d->size, size);
}

static int decode_hex(struct hpack_dec *d, const char *hex, struct hpack_list *l)
{
	static uint8_t buf[4096];
	size_t n = unhex(hex, buf);

	hpack_list_clear(l);
	return hpack_decode(d, buf, n, SIZE_MAX, l);
}

/* ---- C.1 integers ---- */

TEST(c1_integers)
{
	uint8_t b[16];
	size_t n = 0, pos = 0;
	uint32_t v;

	put_int(b, &n, 0, 5, 10);
	CHECK_EQ(n, 1);
	CHECK_EQ(b[0], 0x0a);
	n = 0;
	put_int(b, &n, 0, 5, 1337);
	CHECK_EQ(n, 3);
	CHECK(b[0] == 0x1f && b[1] == 0x9a && b[2] == 0x0a);
	CHECK_EQ(get_int(b, n, &pos, 5, &v), 0);
	CHECK_EQ(v, 1337);
	CHECK_EQ(pos, 3);
	n = pos = 0;
	put_int(b, &n, 0, 8, 42);
	CHECK(n == 1 && b[0] == 42);
	CHECK_EQ(get_int(b, n, &pos, 8, &v), 0);
	CHECK_EQ(v, 42);
	/* The bits above the prefix are flags, not part of the number. */
	b[0] = 0xea;
	pos = 0;
	CHECK_EQ(get_int(b, 1, &pos, 5, &v), 0);
	CHECK_EQ(v, 10);
}

TEST(integer_bounds)
{
	uint8_t b[16];
	size_t pos = 0, n;
	uint32_t v;

	/* UINT32_MAX itself: 31 + 0xffffffe0 in 5 continuation bytes. */
	n = 0;
	put_int(b, &n, 0, 5, UINT32_MAX);
	CHECK_EQ(n, 6);
	CHECK_EQ(get_int(b, n, &pos, 5, &v), 0);
	CHECK_EQ(v, UINT32_MAX);
	/* One more overflows 32 bits. */
	n = 0;
	put_int(b, &n, 0, 5, (uint64_t)UINT32_MAX + 1);
	pos = 0;
	CHECK_EQ(get_int(b, n, &pos, 5, &v), -EPROTO);
	/* Five continuation bytes (zero padded) pass, a sixth does not. */
	n = unhex("1f 80 80 80 80 00", b);
	pos = 0;
	CHECK_EQ(get_int(b, n, &pos, 5, &v), 0);
	CHECK_EQ(v, 31);
	n = unhex("1f 80 80 80 80 80 00", b);
	pos = 0;
	CHECK_EQ(get_int(b, n, &pos, 5, &v), -EPROTO);
	/* Truncated. */
	n = unhex("1f 80", b);
	pos = 0;
	CHECK_EQ(get_int(b, n, &pos, 5, &v), -EPROTO);
	pos = 0;
	CHECK_EQ(get_int(b, 0, &pos, 5, &v), -EPROTO);
}

/* ---- C.2 one representation each ---- */

TEST(c2_representations)
{
	struct hpack_dec *d = hpack_dec_new();
	struct hpack_list l;

	hpack_list_init(&l);
	/* C.2.1 literal with indexing. */
	CHECK_EQ(decode_hex(d,
	                    "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 "
	                    "6572",
	                    &l),
	         0);
	check_list(&l, (const char *[]){"custom-key", "custom-header", NULL});
	check_table(d, (const char *[]){"custom-key", "custom-header", NULL});
	CHECK_EQ(d->size, 55);
	hpack_dec_free(d);

	/* C.2.2 without indexing: the table stays empty. */
	d = hpack_dec_new();
	CHECK_EQ(decode_hex(d, "040c 2f73 616d 706c 652f 7061 7468", &l), 0);
	check_list(&l, (const char *[]){":path", "/sample/path", NULL});
	check_table(d, (const char *[]){NULL});
	hpack_dec_free(d);

	/* C.2.3 never indexed. */
	d = hpack_dec_new();
	CHECK_EQ(decode_hex(d, "1008 7061 7373 776f 7264 0673 6563 7265 74", &l), 0);
	check_list(&l, (const char *[]){"password", "secret", NULL});
	check_table(d, (const char *[]){NULL});
	hpack_dec_free(d);

	/* C.2.4 indexed. */
	d = hpack_dec_new();
	CHECK_EQ(decode_hex(d, "82", &l), 0);
	check_list(&l, (const char *[]){":method", "GET", NULL});
	check_table(d, (const char *[]){NULL});
	hpack_dec_free(d);
	hpack_list_free(&l);
}

/* ---- C.3 .. C.6: three blocks sharing a table ---- */

static const char *const c3_want[3][13] = {
        {":method", "GET", ":scheme", "http", ":path", "/", ":authority", "www.example.com", NULL},
        {":method", "GET", ":scheme", "http", ":path", "/", ":authority", "www.example.com",
         "cache-control", "no-cache", NULL},
        {":method", "GET", ":scheme", "https", ":path", "/index.html", ":authority",
         "www.example.com", "custom-key", "custom-value", NULL},
};
static const char *const c3_table[3][7] = {
        {":authority", "www.example.com", NULL},
        {"cache-control", "no-cache", ":authority", "www.example.com", NULL},
        {"custom-key", "custom-value", "cache-control", "no-cache", ":authority", "www.example.com",
         NULL},
};

#define DATE1 "Mon, 21 Oct 2013 20:13:21 GMT"
#define DATE2 "Mon, 21 Oct 2013 20:13:22 GMT"
#define LOC "https://www.example.com"
#define COOKIE "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"

static const char *const c5_want[3][13] = {
        {":status", "302", "cache-control", "private", "date", DATE1, "location", LOC, NULL},
        {":status", "307", "cache-control", "private", "date", DATE1, "location", LOC, NULL},
        {":status", "200", "cache-control", "private", "date", DATE2, "location", LOC,
         "content-encoding", "gzip", "set-cookie", COOKIE, NULL},
};
static const char *const c5_table[3][9] = {
        {"location", LOC, "date", DATE1, "cache-control", "private", ":status", "302", NULL},
        {":status", "307", "location", LOC, "date", DATE1, "cache-control", "private", NULL},
        {"set-cookie", COOKIE, "content-encoding", "gzip", "date", DATE2, NULL},
};

/* One example of C.3 .. C.6: three blocks decoded by one decoder. */
struct example {
	const char *name;
	/* Before the first block: C.5 and C.6 assume SETTINGS_HEADER_TABLE_SIZE
	 * 256, and a size update (3fe101 = 256) gives the same table. */
	const char *prefix;
	const char *blocks[3];
	bool response;
};

static const struct example examples[] = {
        {"C.3",
         "",
         {
                 "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                 "8286 84be 5808 6e6f 2d63 6163 6865",
                 "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
         },
         false},
        {"C.4",
         "",
         {
                 "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                 "8286 84be 5886 a8eb 1064 9cbf",
                 "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
         },
         false},
        {"C.5",
         "3fe101",
         {
                 "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 "
                 "3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 "
                 "7861 6d70 6c65 2e63 6f6d",
                 "4803 3330 37c1 c0bf",
                 "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 "
                 "474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 "
                 "454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 "
                 "6572 7369 6f6e 3d31",
         },
         true},
        {"C.6",
         "3fe101",
         {
                 "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 "
                 "82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                 "4883 640e ffc1 c0bf",
                 "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b "
                 "d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 "
                 "0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
         },
         true},
};

/* Each list, the table after it (newest first) and its size. */
TEST(c3_to_c6_examples)
{
	static const uint32_t sizes[2][3] = {{57, 110, 164}, {222, 222, 215}};

	for (size_t e = 0; e < sizeof(examples) / sizeof(examples[0]); e++) {
		const struct example *x = &examples[e];
		struct hpack_dec *d = hpack_dec_new();
		struct hpack_list l;
		char first[1024];

		fprintf(stderr, "example %s\n", x->name);
		snprintf(first, sizeof(first), "%s %s", x->prefix, x->blocks[0]);
		hpack_list_init(&l);
		for (int i = 0; i < 3; i++) {
			CHECK_EQ(decode_hex(d, i ? x->blocks[i] : first, &l), 0);
			check_list(&l, x->response ? c5_want[i] : c3_want[i]);
			check_table(d, x->response ? c5_table[i] : c3_table[i]);
			CHECK_EQ(d->size, sizes[x->response][i]);
			CHECK_EQ(d->max, x->response ? 256 : HPACK_TABLE_SIZE);
		}
		hpack_list_free(&l);
		hpack_dec_free(d);
	}
}

/* ---- decoding errors ---- */

static void expect_eproto(const char *hex)
{
	struct hpack_dec *d = hpack_dec_new();
	struct hpack_list l;

	hpack_list_init(&l);
	if (decode_hex(d, hex, &l) != -EPROTO) {
		fprintf(stderr, "block \"%s\" was not rejected\n", hex);
		CHECK(0);
	}
	hpack_list_free(&l);
	hpack_dec_free(d);
}

static void expect_ok(const char *hex, const char *name, const char *value)
{
	struct hpack_dec *d = hpack_dec_new();
	struct hpack_list l;

	hpack_list_init(&l);
	CHECK_EQ(decode_hex(d, hex, &l), 0);
	check_list(&l, (const char *[]){name, value, NULL});
	hpack_list_free(&l);
	hpack_dec_free(d);
}

TEST(reject_bad_index)
{
	expect_eproto("80");                   /* index 0 */
	expect_eproto("be");                   /* 62: the dynamic table is empty */
	expect_eproto("7e 01 61");             /* literal, name index 62 */
	expect_eproto("0f 3e 01 61");          /* without indexing, name index 77 */
	expect_eproto("ff ff ff ff ff 0f");    /* index over 32 bits */
	expect_eproto("ff 80 80 80 80 80 00"); /* six continuation bytes */
	expect_eproto("40 0a 63 75");          /* truncated name */
	expect_eproto("40 01 61");             /* value missing */
	expect_eproto("40 01 61 05 61 62");    /* value cut short */
	expect_eproto("40 01 61 7f");          /* value length cut inside its integer */
	expect_eproto("ff");                   /* index cut inside its integer */
	/* Index 62 after one insertion is fine, 63 is not. */
	expect_eproto("40 01 61 01 62 bf");
	struct hpack_dec *d = hpack_dec_new();
	struct hpack_list l;
	hpack_list_init(&l);
	CHECK_EQ(decode_hex(d, "40 01 61 01 62 be", &l), 0);
	check_list(&l, (const char *[]){"a", "b", "a", "b", NULL});
	hpack_list_free(&l);
	hpack_dec_free(d);
}

TEST(reject_size_updates)
{
	expect_eproto("82 20");             /* after a field */
	expect_eproto("82 3f e1 1f");       /* idem, even to the current size */
	expect_eproto("3f e2 1f");          /* 4097 > SETTINGS_HEADER_TABLE_SIZE */
	expect_eproto("3f ff ff ff ff 0f"); /* over 32 bits */
	expect_ok("3f e1 1f 20 3f e1 1f 82", ":method", "GET"); /* several, all first */
}

TEST(reject_bad_huffman)
{
	/* 'a' is 00011 (5 bits): 0x1f is 'a' plus three bits of padding. */
	expect_ok("00 01 61 81 1f", "a", "a");
	expect_ok("00 01 61 80", "a", "");  /* an empty Huffman string */
	expect_eproto("00 01 61 81 18");    /* padding not all ones */
	expect_eproto("00 01 61 81 1c");    /* idem, partly */
	expect_eproto("00 01 61 82 1f ff"); /* 11 bits of padding */
	expect_eproto("00 01 61 81 ff");    /* 8 bits of padding, no symbol */
	/* EOS (30 ones) inside a string, then 2 bits of padding. */
	expect_eproto("00 01 61 84 ff ff ff ff");
	/* 'a' then EOS, then padding: 5 + 30 + 5 bits. */
	expect_eproto("00 01 61 85 1f ff ff ff ff");
	/* A Huffman name: 16 ones, a cut code or over-long padding. */
	expect_eproto("00 82 ff ff 01 61");
}

/* The table keeps pace with the peer even when the list is over max_list:
 * the field after the limit is still inserted, and the next block's
 * reference to it decodes. */
TEST(e2big_keeps_table_in_step)
{
	struct hpack_dec *d = hpack_dec_new();
	struct hpack_list l;
	uint8_t blk[256];
	size_t n;

	hpack_list_init(&l);
	/* ":method GET" (42), then "x-big: <100 bytes>" with indexing (137),
	 * then a Huffman literal with indexing "custom-key: custom-value". */
	n = hex_fill("82 40 05 782d 6269 67 64", 'v', 100, blk);
	n += unhex("4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", blk + n);
	CHECK_EQ(hpack_decode(d, blk, n, 100, &l), -E2BIG);
	/* Only the field before the limit was stored. */
	check_list(&l, (const char *[]){":method", "GET", NULL});
	CHECK_EQ(d->n, 2);
	hpack_dec_free(d);
	/* A field past the limit is not stored but still checked: bad
	 * Huffman padding in its value is an error, not -E2BIG. */
	d = hpack_dec_new();
	CHECK_EQ(hpack_decode(d, (const uint8_t *)"\x01\x81\x18", 3, 0, &l), -EPROTO);
	hpack_dec_free(d);

	d = hpack_dec_new();
	hpack_list_clear(&l);
	CHECK_EQ(hpack_decode(d, blk, n, 100, &l), -E2BIG);
	/* Next block: both entries by index, in step with the peer. */
	hpack_list_clear(&l);
	CHECK_EQ(decode_hex(d, "be bf", &l), 0);
	CHECK_EQ(l.n, 2);
	size_t vlen;
	const uint8_t *v = hpack_list_get(&l, "custom-key", &vlen);
	CHECK(v && vlen == 12 && memcmp(v, "custom-value", 12) == 0);
	v = hpack_list_get(&l, "x-big", &vlen);
	CHECK(v && vlen == 100 && v[0] == 'v' && v[99] == 'v');
	CHECK(hpack_list_get(&l, "x-none", &vlen) == NULL);
	/* A limit of exactly the list's size passes. */
	hpack_list_clear(&l);
	CHECK_EQ(hpack_decode(d, (const uint8_t *)"\x82", 1, 42, &l), 0);
	hpack_list_clear(&l);
	CHECK_EQ(hpack_decode(d, (const uint8_t *)"\x82", 1, 41, &l), -E2BIG);
	CHECK_EQ(l.n, 0);
	hpack_list_free(&l);
	hpack_dec_free(d);
}

/* The work of one block is bounded by max_list: 2-byte literals with
 * indexing whose name is a 4000-byte entry (each a table insertion of
 * 4 KB) fail once they add up to 4 * max_list + a table; a list only
 * somewhat over max_list is still -E2BIG. */
TEST(work_bounded_by_max_list)
{
	static uint8_t blk[65536];
	struct hpack_dec *d = hpack_dec_new();
	struct hpack_list l;
	size_t n = 0;

	hpack_list_init(&l);
	blk[n++] = 0x40; /* literal with indexing, new name of 4000 bytes */
	blk[n++] = 0x7f, blk[n++] = 0xa1, blk[n++] = 0x1e;
	memset(blk + n, 'x', 4000), n += 4000;
	blk[n++] = 0; /* empty value */
	for (int i = 0; i < 20; i++)
		blk[n++] = 0x7e, blk[n++] = 0; /* name: entry 62, empty value */
	/* 21 fields of 4032: over 65536, under 4 * 65536 + 4096. */
	CHECK_EQ(hpack_decode(d, blk, n, 65536, &l), -E2BIG);
	hpack_dec_free(d);
	while (n + 2 <= sizeof(blk))
		blk[n++] = 0x7e, blk[n++] = 0;
	d = hpack_dec_new();
	hpack_list_clear(&l);
	CHECK_EQ(hpack_decode(d, blk, n, 65536, &l), -EPROTO);
	hpack_list_free(&l);
	hpack_dec_free(d);
}

/* An entry larger than the table empties it and is not inserted (§4.4);
 * an entry whose name is the entry it evicts still gets that name. */
TEST(eviction_edge_cases)
{
	struct hpack_dec *d = hpack_dec_new();
	struct hpack_list l;
	uint8_t blk[8192];
	size_t n;

	hpack_list_init(&l);
	/* Table max 64: "aaaa: bbbb" (40) fits; then a literal with
	 * indexing named by index 62 (that entry) whose 28-byte value makes
	 * 64: inserting it evicts the entry its name came from. */
	n = hex_fill("3f 21 40 04 61616161 04 62626262 7e 1c", 'c', 28, blk);
	CHECK_EQ(hpack_decode(d, blk, n, SIZE_MAX, &l), 0);
	CHECK_EQ(d->n, 1);
	check_table(d, (const char *[]){"aaaa", "cccccccccccccccccccccccccccc", NULL});
	/* Too large: 65 bytes empties the table. */
	hpack_list_clear(&l);
	n = hex_fill("40 01 78 20", 'y', 32, blk);
	CHECK_EQ(hpack_decode(d, blk, n, SIZE_MAX, &l), 0);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(d->n, 0);
	CHECK_EQ(d->size, 0);
	/* A size update to 0 empties it too; later inserts fail quietly. */
	CHECK_EQ(decode_hex(d, "3f 21 40 01 61 01 62", &l), 0);
	CHECK_EQ(d->n, 1);
	CHECK_EQ(decode_hex(d, "20 40 01 61 01 62", &l), 0);
	CHECK_EQ(d->n, 0);
	check_list(&l, (const char *[]){"a", "b", NULL});
	hpack_list_free(&l);
	hpack_dec_free(d);
}

/* ---- the dynamic table against a model ---- */

struct model_entry {
	char name[64], value[300];
	size_t nlen, vlen;
};

static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	/* xorshift32: deterministic, so a failure reproduces. */
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

TEST(table_matches_model)
{
	static struct model_entry m[HPACK_MAX_ENTRIES + 1];
	struct hpack_dec *d = hpack_dec_new();
	struct hpack_list l;
	uint8_t blk[1024];
	size_t mn = 0, msize = 0, mmax = HPACK_TABLE_SIZE;

	hpack_list_init(&l);
	for (int round = 0; round < 20000; round++) {
		size_t n = 0;
		if (rnd() % 50 == 0) {
			/* Size update between blocks. */
			mmax = rnd() % (HPACK_TABLE_SIZE + 1);
			put_int(blk, &n, 0x20, 5, mmax);
			while (mn && msize > mmax) {
				mn--;
				msize -= m[mn].nlen + m[mn].vlen + 32;
			}
		}
		struct model_entry e;
		e.nlen = rnd() % 64;
		e.vlen = rnd() % (rnd() % 8 ? 40 : 300);
		for (size_t i = 0; i < e.nlen; i++)
			e.name[i] = (char)('a' + rnd() % 26);
		for (size_t i = 0; i < e.vlen; i++)
			e.value[i] = (char)rnd();
		put_int(blk, &n, 0x40, 6, 0);
		put_lit(blk, &n, (const uint8_t *)e.name, e.nlen);
		put_lit(blk, &n, (const uint8_t *)e.value, e.vlen);
		/* And read back a random existing entry by index. */
		size_t fsize = e.nlen + e.vlen + 32;
		if (fsize > mmax) {
			mn = msize = 0;
		} else {
			while (mn && msize + fsize > mmax) {
				mn--;
				msize -= m[mn].nlen + m[mn].vlen + 32;
			}
			memmove(m + 1, m, mn * sizeof(m[0]));
			m[0] = e;
			mn++;
			msize += fsize;
		}
		size_t pick = mn ? rnd() % mn : 0;
		if (mn)
			put_int(blk, &n, 0x80, 7, STATIC_N + 1 + pick);
		hpack_list_clear(&l);
		CHECK_EQ(hpack_decode(d, blk, n, SIZE_MAX, &l), 0);
		CHECK_EQ(d->n, mn);
		CHECK_EQ(d->size, msize);
		CHECK_EQ(l.n, mn ? 2 : 1);
		if (mn) {
			const struct hpack_field *f = &l.f[1];
			CHECK_EQ(f->name_len, m[pick].nlen);
			CHECK_EQ(f->value_len, m[pick].vlen);
			CHECK(memcmp(l.buf + f->name_off, m[pick].name, m[pick].nlen) == 0);
			CHECK(memcmp(l.buf + f->value_off, m[pick].value, m[pick].vlen) == 0);
		}
	}
	hpack_list_free(&l);
	hpack_dec_free(d);
}

/* ---- the Huffman table ---- */

TEST(huffman_table_is_rfc_code)
{
	unsigned order[HPACK_HUFF_SYMS], k = 0;
	uint64_t kraft = 0;

	for (unsigned s = 0; s < HPACK_HUFF_SYMS; s++) {
		CHECK(hpack_huff_len[s] >= HPACK_HUFF_MINLEN);
		CHECK(hpack_huff_len[s] <= HPACK_HUFF_MAXLEN);
		CHECK(hpack_huff_code[s] < (1u << hpack_huff_len[s]));
		kraft += 1ull << (HPACK_HUFF_MAXLEN - hpack_huff_len[s]);
	}
	/* Complete: the Kraft sum is exactly 1. */
	CHECK_EQ(kraft, 1ull << HPACK_HUFF_MAXLEN);
	/* Canonical: sorted by (length, symbol), each code is the previous
	 * plus one, shifted to its length; so no code is a prefix of
	 * another. */
	for (unsigned len = HPACK_HUFF_MINLEN; len <= HPACK_HUFF_MAXLEN; len++)
		for (unsigned s = 0; s < HPACK_HUFF_SYMS; s++)
			if (hpack_huff_len[s] == len)
				order[k++] = s;
	CHECK_EQ(k, HPACK_HUFF_SYMS);
	CHECK_EQ(hpack_huff_code[order[0]], 0);
	for (unsigned i = 1; i < HPACK_HUFF_SYMS; i++) {
		unsigned a = order[i - 1], b = order[i];
		uint32_t next = (hpack_huff_code[a] + 1) << (hpack_huff_len[b] - hpack_huff_len[a]);
		CHECK_EQ(hpack_huff_code[b], next);
	}
	/* EOS is 30 ones; a few codes straight from the RFC's table. */
	CHECK_EQ(hpack_huff_code[HPACK_HUFF_EOS], 0x3fffffff);
	CHECK_EQ(hpack_huff_len[HPACK_HUFF_EOS], 30);
	CHECK(hpack_huff_code['0'] == 0x0 && hpack_huff_len['0'] == 5);
	CHECK(hpack_huff_code['a'] == 0x3 && hpack_huff_len['a'] == 5);
	CHECK(hpack_huff_code[' '] == 0x14 && hpack_huff_len[' '] == 6);
	CHECK(hpack_huff_code[0] == 0x1ff8 && hpack_huff_len[0] == 13);
	CHECK(hpack_huff_code[255] == 0x3ffffee && hpack_huff_len[255] == 26);
}

TEST(huffman_every_symbol_round_trips)
{
	struct hpack_dec *d = hpack_dec_new();
	uint8_t buf[64];

	for (unsigned s = 0; s < 256; s++) {
		/* One symbol, and the symbol eight times (every bit offset). */
		for (unsigned reps = 1; reps <= 8; reps += 7) {
			uint8_t in[8], out[8];
			size_t n = 0;
			memset(in, (int)s, reps);
			/* Force Huffman whatever the length: code it by hand. */
			uint64_t acc = 0;
			unsigned nb = 0;
			for (unsigned r = 0; r < reps; r++) {
				acc = acc << hpack_huff_len[s] | hpack_huff_code[s];
				nb += hpack_huff_len[s];
				while (nb >= 8) {
					nb -= 8;
					buf[n++] = (uint8_t)(acc >> nb);
				}
			}
			if (nb)
				buf[n++] = (uint8_t)(acc << (8 - nb)) |
				           (uint8_t)((1u << (8 - nb)) - 1);
			CHECK_EQ(huff_decode(d, buf, n, NULL), reps);
			CHECK_EQ(huff_decode(d, buf, n, out), reps);
			CHECK(memcmp(in, out, reps) == 0);
		}
	}
	hpack_dec_free(d);
}

/* ---- the encoder ---- */

static void roundtrip(const struct hpack_list *in)
{
	uint8_t *enc = NULL;
	size_t len = 0, cap = 0;
	struct hpack_dec *d = hpack_dec_new();
	struct hpack_list out;

	hpack_list_init(&out);
	hpack_encode(in, &enc, &len, &cap);
	CHECK(len <= cap);
	CHECK_EQ(hpack_decode(d, enc, len, SIZE_MAX, &out), 0);
	/* The encoder never touches the peer's table. */
	CHECK_EQ(d->n, 0);
	CHECK_EQ(out.n, in->n);
	CHECK_EQ(out.size, in->size);
	for (size_t i = 0; i < in->n; i++) {
		const struct hpack_field *a = &in->f[i], *b = &out.f[i];
		CHECK_EQ(a->name_len, b->name_len);
		CHECK_EQ(a->value_len, b->value_len);
		CHECK(memcmp(in->buf + a->name_off, out.buf + b->name_off, a->name_len) == 0);
		CHECK(memcmp(in->buf + a->value_off, out.buf + b->value_off, a->value_len) == 0);
	}
	free(enc);
	hpack_list_free(&out);
	hpack_dec_free(d);
}

TEST(encoder_forms)
{
	struct hpack_list l;
	uint8_t *enc = NULL;
	size_t len = 0, cap = 0;
	uint8_t want[64];
	size_t wn;

	hpack_list_init(&l);
	/* Static name (":path" = 4), Huffman value (C.4.1's www.example.com). */
	CHECK_EQ(hpack_list_add(&l, ":authority", 10, "www.example.com", 15), 0);
	/* Unknown name, raw value where Huffman is not shorter. */
	CHECK_EQ(hpack_list_add(&l, "x", 1, "\xff", 1), 0);
	/* Sensitive: never indexed (0001), static name 23. */
	CHECK_EQ(hpack_list_add(&l, "authorization", 13, "", 0), 0);
	hpack_encode(&l, &enc, &len, &cap);
	wn = unhex("01 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"
	           "00 01 78 01 ff"
	           "1f 08 00",
	           want);
	CHECK_EQ(len, wn);
	CHECK(memcmp(enc, want, wn) == 0);
	/* Appends to what is there. */
	hpack_list_clear(&l);
	CHECK_EQ(hpack_list_add(&l, "cookie", 6, "a", 1), 0);
	hpack_encode(&l, &enc, &len, &cap);
	/* cookie is static 32 (15 + 17), never indexed; "a" stays raw
	 * (its 5-bit code still takes a byte). */
	CHECK_EQ(len, wn + 4);
	CHECK(memcmp(enc + wn,
	             "\x1f\x11\x01"
	             "a",
	             4) == 0);
	free(enc);
	hpack_list_free(&l);
}

TEST(encoder_random_round_trips)
{
	struct hpack_list l;
	static uint8_t big[40000];

	hpack_list_init(&l);
	for (int round = 0; round < 300; round++) {
		hpack_list_clear(&l);
		unsigned nf = rnd() % 20;
		for (unsigned i = 0; i < nf; i++) {
			size_t nlen, vlen, k;
			uint8_t name[40];
			switch (rnd() % 4) {
			case 0: /* a static table name */
				k = rnd() % STATIC_N;
				nlen = static_table[k].nlen;
				memcpy(name, static_table[k].name, nlen);
				break;
			case 1: /* binary, 0x00 and 0xff included */
				nlen = rnd() % 40;
				for (k = 0; k < nlen; k++)
					name[k] = (uint8_t)(rnd() % 3 == 0 ? 0xff * (rnd() & 1)
					                                   : rnd());
				break;
			default: /* text */
				nlen = rnd() % 40;
				for (k = 0; k < nlen; k++)
					name[k] = (uint8_t)('a' + rnd() % 26);
				break;
			}
			vlen = rnd() % 8 == 0 ? 16384 + rnd() % 20000 : rnd() % 100;
			for (k = 0; k < vlen; k++)
				big[k] = (uint8_t)(rnd() % 4 == 0 ? 0xff * (rnd() & 1)
				                                  : rnd() % 128);
			CHECK_EQ(hpack_list_add(&l, name, nlen, big, vlen), 0);
		}
		roundtrip(&l);
	}
	/* Every static name, with and without a value. */
	hpack_list_clear(&l);
	for (size_t i = 0; i < STATIC_N; i++) {
		hpack_list_add(&l, static_table[i].name, static_table[i].nlen, "", 0);
		hpack_list_add(&l, static_table[i].name, static_table[i].nlen,
		               static_table[i].value, static_table[i].vlen);
	}
	roundtrip(&l);
	hpack_list_free(&l);
}

TEST(list_limits)
{
	struct hpack_list l;

	/* Never read: the lengths are refused first. volatile keeps the
	 * compiler from checking the memcpy it cannot reach. */
	const char *volatile p = "a";

	hpack_list_init(&l);
	CHECK_EQ(hpack_list_add(&l, p, (size_t)UINT32_MAX / 2 + 1, "", 0), -E2BIG);
	CHECK_EQ(hpack_list_add(&l, "", 0, p, (size_t)UINT32_MAX / 2 + 1), -E2BIG);
	CHECK_EQ(l.n, 0);
	CHECK_EQ(hpack_list_add(&l, NULL, 0, NULL, 0), 0);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(l.size, 32);
	hpack_list_free(&l);
	hpack_list_free(NULL);
}

TEST_MAIN()
