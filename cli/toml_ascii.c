/* TOML text → the same document in ASCII, with a column map back (see
 * toml_ascii.h for why). The lexer knows only what decides where strings
 * and comments start and end; toml++ still parses and validates it all.
 * For valid TOML it agrees with every TOML lexer: outside strings and
 * comments '"', '\'' and '#' only ever start a string or a comment. */
#include "cli/toml_ascii.h"
#include "common/util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct toml_ascii_edit {
	unsigned line, out_col, orig_col, width;
};

struct writer {
	const char *s;
	size_t len, i;
	unsigned line, col; /* of s[i] in the original */
	unsigned out_col;   /* of the next output byte on this line */
	struct toml_ascii *a;
	size_t out_cap;
};

static void put(struct writer *w, const char *p, size_t n)
{
	struct toml_ascii *a = w->a;

	if (a->len + n + 1 > w->out_cap) {
		w->out_cap = (a->len + n + 1) * 2;
		a->text = xrealloc(a->text, w->out_cap);
	}
	memcpy(a->text + a->len, p, n);
	a->len += n;
	a->text[a->len] = '\0';
}

/* Copy the ASCII byte at s[i]. */
static void copy1(struct writer *w)
{
	put(w, w->s + w->i, 1);
	if (w->s[w->i] == '\n') {
		w->line++;
		w->col = w->out_col = 1;
	} else {
		w->col++;
		w->out_col++;
	}
	w->i++;
}

/* Replace the character of in_bytes bytes at s[i] (never a newline) by
 * the n ASCII bytes rep; columns shift when n is not 1. */
static void replace1(struct writer *w, size_t in_bytes, const char *rep, size_t n)
{
	struct toml_ascii *a = w->a;

	if (n != 1) {
		if (a->nedits == a->cap) {
			a->cap = a->cap ? a->cap * 2 : 16;
			a->edits = xrealloc(a->edits, a->cap * sizeof(*a->edits));
		}
		a->edits[a->nedits++] =
		        (struct toml_ascii_edit){w->line, w->out_col, w->col, (unsigned)n};
	}
	put(w, rep, n);
	w->col++;
	w->out_col += (unsigned)n;
	w->i += in_bytes;
}

/* Length of the UTF-8 sequence at s[i], or 0 if it is not one: no
 * overlong forms, no surrogates, nothing past U+10FFFF (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t len, size_t i)
{
	unsigned char b = s[i];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		n = 2;
	else if (b >= 0xe0 && b <= 0xef)
		n = 3;
	else if (b >= 0xf0 && b <= 0xf4)
		n = 4;
	else
		return 0;
	if (b == 0xe0)
		lo = 0xa0;
	else if (b == 0xed)
		hi = 0x9f;
	else if (b == 0xf0)
		lo = 0x90;
	else if (b == 0xf4)
		hi = 0x8f;
	if (len - i < n || s[i + 1] < lo || s[i + 1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if ((s[i + k] & 0xc0) != 0x80)
			return 0;
	return n;
}

static bool utf8_valid(const char *s, size_t len, struct toml_ascii_error *err)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned line = 1, col = 1;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(u, len, i);
		if (!n) {
			*err = (struct toml_ascii_error){line, col,
			                                 "invalid UTF-8 (a config file must be "
			                                 "UTF-8 text)"};
			return false;
		}
		if (u[i] == '\n')
			line++, col = 1;
		else
			col++;
		i += n;
	}
	return true;
}

/* The non-ASCII character at s[i] (valid UTF-8) as a TOML escape. */
static void escape1(struct writer *w)
{
	const unsigned char *u = (const unsigned char *)w->s + w->i;
	size_t n = utf8_seq(u, w->len - w->i, 0);
	unsigned cp = u[0] & (0xffu >> (n + 1));
	char buf[11]; /* "\U0010FFFF" */
	int m;

	for (size_t k = 1; k < n; k++)
		cp = cp << 6 | (u[k] & 0x3fu);
	m = cp > 0xffff ? snprintf(buf, sizeof(buf), "\\U%08X", cp)
	                : snprintf(buf, sizeof(buf), "\\u%04X", cp);
	replace1(w, n, buf, (size_t)m);
}

static size_t run_of(const struct writer *w, char q)
{
	size_t n = 0;

	while (w->i + n < w->len && w->s[w->i + n] == q)
		n++;
	return n;
}

/* A comment, from '#' to the end of the line. Only the parser's
 * whitespace checks see its characters, so one '?' per character will
 * do and no column moves. */
static void comment(struct writer *w)
{
	while (w->i < w->len && w->s[w->i] != '\n') {
		unsigned char b = (unsigned char)w->s[w->i];
		if (b >= 0x80)
			replace1(w, utf8_seq((const unsigned char *)w->s, w->len, w->i), "?", 1);
		else
			copy1(w); /* control characters too: toml++ refuses them itself */
	}
}

/* A basic string, at its opening quote(s). Unterminated ones are left for
 * toml++ to report. */
static int basic_string(struct writer *w, bool ml, struct toml_ascii_error *err)
{
	for (int k = 0; k < (ml ? 3 : 1); k++)
		copy1(w);
	while (w->i < w->len) {
		unsigned char b = (unsigned char)w->s[w->i];
		if (b == '\\') {
			copy1(w);
			if (w->i < w->len && (unsigned char)w->s[w->i] >= 0x80) {
				/* "\é" must stay an error, and "\\u00E9" would not be. */
				*err = (struct toml_ascii_error){
				        w->line, w->col,
				        "invalid escape sequence (a backslash "
				        "before a non-ASCII character)"};
				return -EINVAL;
			}
			if (w->i < w->len && w->s[w->i] != '\n')
				copy1(w); /* the escaped character: '"' does not close */
		} else if (b == '"') {
			size_t n = ml ? run_of(w, '"') : 1;
			if (n >= 3) /* """ ends it, with up to two quotes of content before */
				n = n > 5 ? 5 : n;
			for (size_t k = 0; k < n; k++)
				copy1(w);
			if (!ml || n >= 3)
				return 0;
		} else if (b == '\n' && !ml) {
			return 0;
		} else if (b >= 0x80) {
			escape1(w);
		} else {
			copy1(w);
		}
	}
	return 0;
}

/* Where the literal string whose content starts at s[from] ends (past its
 * closing quotes, or at the newline or the end of the text if it is not
 * closed), and whether it holds non-ASCII characters. */
static size_t literal_end(const struct writer *w, size_t from, bool ml, bool *non_ascii)
{
	size_t i = from;

	*non_ascii = false;
	while (i < w->len) {
		unsigned char b = (unsigned char)w->s[i];
		if (b == '\'') {
			size_t n = 0;
			while (i + n < w->len && w->s[i + n] == '\'')
				n++;
			if (!ml)
				return i + 1;
			if (n >= 3)
				return i + (n > 5 ? 5 : n);
			i += n;
			continue;
		}
		if (b == '\n' && !ml)
			return i;
		if (b >= 0x80)
			*non_ascii = true;
		i++;
	}
	return i;
}

/* A literal string, at its opening quote(s). Without non-ASCII content it
 * is copied as is. Otherwise, since a literal string cannot hold escapes,
 * it becomes the basic string of the same value: ''' → """ (a newline
 * right after the opening is dropped by both kinds alike), '\\' and '"'
 * escaped, quotes of a closing run beyond three kept as content, raw
 * tabs and line breaks kept. Control characters are copied too: both
 * kinds refuse them, so toml++ still reports them. */
static void literal_string(struct writer *w, bool ml)
{
	size_t open = ml ? 3 : 1;
	bool non_ascii;
	size_t end = literal_end(w, w->i + open, ml, &non_ascii);

	if (!non_ascii) {
		while (w->i < end)
			copy1(w);
		return;
	}
	/* Right after a string ("""x"""'é') it is an error, and must not
	 * become part of the closing run of quotes before it. */
	if (w->a->len && w->a->text[w->a->len - 1] == '"')
		replace1(w, 1, " \"", 2);
	else
		replace1(w, 1, "\"", 1);
	for (size_t k = 1; k < open; k++)
		replace1(w, 1, "\"", 1);
	while (w->i < end) {
		unsigned char b = (unsigned char)w->s[w->i];
		if (b == '\'') {
			size_t n = ml ? run_of(w, '\'') : 1;
			if (n >= open) {
				/* The closing run: of ''''' the first two quotes are
				 * content; a sixth starts a new token (an error). */
				n = n > 5 ? 5 : n;
				for (size_t k = 0; k + open < n; k++)
					copy1(w);
				for (size_t k = 0; k + 1 < open; k++)
					replace1(w, 1, "\"", 1);
				/* '''x'''" is an error, but """x"""" is "x\"": a
				 * space keeps the quote after it a separate token. */
				if (ml && w->i + 1 < w->len && w->s[w->i + 1] == '"')
					replace1(w, 1, "\" ", 2);
				else
					replace1(w, 1, "\"", 1);
				return;
			}
			for (size_t k = 0; k < n; k++)
				copy1(w);
		} else if (b == '\\') {
			replace1(w, 1, "\\\\", 2);
		} else if (b == '"') {
			replace1(w, 1, "\\\"", 2);
		} else if (b >= 0x80) {
			escape1(w);
		} else {
			copy1(w);
		}
	}
}

int toml_ascii_rewrite(const char *s, size_t len, struct toml_ascii *ret,
                       struct toml_ascii_error *err)
{
	struct toml_ascii a = {0};
	struct writer w = {.s = s, .len = len, .line = 1, .col = 1, .out_col = 1, .a = &a};

	if (!utf8_valid(s, len, err))
		return -EINVAL;
	put(&w, "", 0); /* an empty text is still a string */
	while (w.i < len) {
		unsigned char b = (unsigned char)s[w.i];
		int r = 0;
		if (b >= 0x80) {
			/* TOML allows none there, and toml++ would classify it
			 * with the broken table. */
			*err = (struct toml_ascii_error){
			        w.line, w.col,
			        "non-ASCII character outside a string or a "
			        "comment"};
			r = -EINVAL;
		} else if (b == '#') {
			comment(&w);
		} else if (b == '"') {
			r = basic_string(&w, run_of(&w, '"') >= 3, err);
		} else if (b == '\'') {
			literal_string(&w, run_of(&w, '\'') >= 3);
		} else {
			copy1(&w);
		}
		if (r < 0) {
			toml_ascii_free(&a);
			return r;
		}
	}
	*ret = a;
	return 0;
}

unsigned toml_ascii_orig_col(const struct toml_ascii *a, unsigned line, unsigned col)
{
	size_t lo = 0, hi = a->nedits;
	const struct toml_ascii_edit *e;

	/* The last edit at or before (line, col). */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		e = &a->edits[mid];
		if (e->line < line || (e->line == line && e->out_col <= col))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || a->edits[lo - 1].line != line)
		return col; /* nothing rewritten before it on this line */
	e = &a->edits[lo - 1];
	if (col < e->out_col + e->width)
		return e->orig_col;
	return e->orig_col + 1 + (col - e->out_col - e->width);
}

void toml_ascii_free(struct toml_ascii *a)
{
	if (!a)
		return;
	free(a->text);
	free(a->edits);
	*a = (struct toml_ascii){0};
}
