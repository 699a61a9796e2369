/* The C side of unit.hpack_ref (hpack_ref.py): our codec behind a line
 * protocol, so python3-hpack can check it from the other end.
 *   hpack_ref_driver decode: each stdin line is a header block in hex,
 *     decoded in order by one decoder (one connection); each output line is
 *     the list, "NAME=VALUE" pairs in hex separated by spaces, or "ERR <n>".
 *   hpack_ref_driver encode: each stdin line is a list in that form; each
 *     output line is our encoding of it, in hex. */
#include "agent/hpack.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int nibble(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Hex s[0..n) into out (room for n / 2 bytes); returns the byte count or
 * -1 on a bad digit or an odd count. */
static long unhex(const char *s, size_t n, uint8_t *out)
{
	if (n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int hi = nibble(s[i]), lo = nibble(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

static void put_hex(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
}

/* One block in hex: decoded with the connection's decoder d. Returns 0,
 * 1 to stop (the decoder is unusable after an error), 2 on a bad line. */
static int decode_line(struct hpack_dec *d, struct hpack_list *l, char *line, uint8_t *buf)
{
	long bn = unhex(line, strlen(line), buf);

	if (bn < 0)
		return 2;
	int r = hpack_decode(d, buf, (size_t)bn, SIZE_MAX, l);
	if (r < 0) {
		printf("ERR %d\n", r);
		return 1;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			putchar(' ');
		put_hex(l->buf + l->f[i].name_off, l->f[i].name_len);
		putchar('=');
		put_hex(l->buf + l->f[i].value_off, l->f[i].value_len);
	}
	putchar('\n');
	return 0;
}

/* One list, "NAME=VALUE" tokens in hex apart by single spaces: encoded. */
static int encode_line(struct hpack_list *l, char *line, uint8_t *buf)
{
	uint8_t *enc = NULL;
	size_t len = 0, cap = 0;

	for (char *tok = line; *tok;) {
		char *end = strchrnul(tok, ' ');
		char *eq = memchr(tok, '=', (size_t)(end - tok));
		long nl = eq ? unhex(tok, (size_t)(eq - tok), buf) : -1;
		long vl = nl >= 0 ? unhex(eq + 1, (size_t)(end - eq - 1), buf + nl) : -1;
		if (vl < 0 || hpack_list_add(l, buf, (size_t)nl, buf + nl, (size_t)vl))
			return 2;
		tok = *end ? end + 1 : end;
	}
	hpack_encode(l, &enc, &len, &cap);
	put_hex(enc, len);
	putchar('\n');
	free(enc);
	return 0;
}

int main(int argc, char **argv)
{
	bool decode = argc == 2 && strcmp(argv[1], "decode") == 0;
	struct hpack_dec *d = hpack_dec_new();
	struct hpack_list l;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int r = 0;

	if (!decode && !(argc == 2 && strcmp(argv[1], "encode") == 0)) {
		fprintf(stderr, "usage: hpack_ref_driver decode|encode < lines\n");
		return 2;
	}
	hpack_list_init(&l);
	while (r == 0 && (n = getline(&line, &cap, stdin)) > 0) {
		/* Hex halves: the bytes fit in a buffer as long as the line. */
		uint8_t *buf = malloc((size_t)n);
		if (!buf)
			abort();
		line[strcspn(line, "\n")] = '\0';
		hpack_list_clear(&l);
		r = decode ? decode_line(d, &l, line, buf) : encode_line(&l, line, buf);
		free(buf);
	}
	if (r == 2)
		fprintf(stderr, "hpack_ref_driver: bad line\n");
	free(line);
	hpack_list_free(&l);
	hpack_dec_free(d);
	return r == 2 ? 2 : 0;
}
