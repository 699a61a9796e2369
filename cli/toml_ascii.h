/* An ASCII-only copy of a TOML document, for tomlplusplus 3.3 (Debian
 * 12): its table of non-ASCII whitespace misses U+00A1-U+0499,
 * U+2C5E-U+2FFF, U+3001-U+3057 and U+FB26-U+FEFE and ends in
 * TOML_UNREACHABLE inside a noexcept function (a crash, whatever the
 * macro does). Given only ASCII it never consults that table. The copy
 * means exactly what the original does to a correct TOML parser, and a
 * column map takes the parser's positions back to the original. */
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct toml_ascii_edit;

struct toml_ascii {
	char *text; /* ASCII, NUL-terminated; at most 3 bytes per input byte */
	size_t len;
	/* Where one original character became several output characters,
	 * sorted by line, then output column. Lines are never added or
	 * removed, so a line number needs no mapping. */
	struct toml_ascii_edit *edits;
	size_t nedits, cap;
};

/* Why the input was refused, and where (line and column of the original,
 * columns counting characters from 1). msg is a static string. */
struct toml_ascii_error {
	unsigned line, col;
	const char *msg;
};

/* Rewrite TOML text (len bytes, NUL not needed) into *ret:
 *  - comments: each non-ASCII character becomes '?';
 *  - basic strings (single- and multi-line): each non-ASCII character
 *    becomes its \uXXXX or \UXXXXXXXX escape;
 *  - literal strings holding non-ASCII characters become the equivalent
 *    basic strings ('''…''' becomes """…""" with the same closing run);
 *  - everything else is copied.
 * Fails with -EINVAL and *err set on invalid UTF-8, on a non-ASCII
 * character outside strings and comments, and on a backslash followed by
 * a non-ASCII character in a basic string (no such escape exists). *ret
 * is set only on success; free it with toml_ascii_free(). */
int toml_ascii_rewrite(const char *s, size_t len, struct toml_ascii *ret,
                       struct toml_ascii_error *err);

/* The original column of output column col on line line (1-based; 0
 * stays 0). A column inside an escape maps to the escaped character. */
unsigned toml_ascii_orig_col(const struct toml_ascii *a, unsigned line, unsigned col);

/* Frees what toml_ascii_rewrite() allocated; accepts a zeroed struct. */
void toml_ascii_free(struct toml_ascii *a);

#ifdef __cplusplus
}
#endif
