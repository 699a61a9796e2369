/* Loading config text into one jansson tree, whatever the format, with
 * the position of every field for messages; and the config error object. */
#include "cli/config_internal.h"
#include "cli/config_toml.h"
#include "common/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- the error object ----------------------------------------------- */

void config_errors_add(struct config_errors *l, const char *path, const char *file, unsigned line,
                       unsigned col, const char *origin, const char *fmt, ...)
{
	struct config_error *e;
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort(); /* the CLI aborts on OOM (util.h) */
	va_end(ap);
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	e = &l->v[l->n++];
	*e = (struct config_error){
	        .message = msg,
	        .path = path ? xstrdup(path) : NULL,
	        .file = file ? xstrdup(file) : NULL,
	        .line = line,
	        .col = col,
	        .origin = origin ? xstrdup(origin) : NULL,
	};
}

char *config_error_format(const struct config_error *e)
{
	_cleanup_free_ char *where = NULL;

	if (e->file && e->line)
		where = xasprintf("%s:%u:%u: ", e->file, e->line, e->col);
	else if (e->file)
		where = xasprintf("%s: ", e->file);
	else if (e->origin)
		where = xasprintf("%s: ", e->origin);
	else
		where = xstrdup("");
	if (e->path)
		return xasprintf("%s%s: %s", where, e->path, e->message);
	return xasprintf("%s%s", where, e->message);
}

void config_errors_clear(struct config_errors *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].message);
		free(l->v[i].path);
		free(l->v[i].file);
		free(l->v[i].origin);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* ---- positions ------------------------------------------------------ */

void config_doc_add_loc(struct config_doc *doc, const char *path, unsigned line, unsigned col)
{
	if (doc->nlocs >= CONFIG_MAX_LOCS)
		return; /* positions are a courtesy; the tree is complete */
	if (doc->nlocs == doc->cap) {
		doc->cap = doc->cap ? doc->cap * 2 : 32;
		doc->locs = xrealloc(doc->locs, doc->cap * sizeof(*doc->locs));
	}
	doc->locs[doc->nlocs++] = (struct config_loc){xstrdup(path), line, col};
}

void config_doc_locate(const struct config_doc *doc, const char *path, unsigned *line,
                       unsigned *col)
{
	size_t len = strlen(path);

	*line = *col = 0;
	/* Exact path, else its nearest recorded parent ("a.b.c" → "a.b"). */
	while (len) {
		for (size_t i = 0; doc && i < doc->nlocs; i++) {
			const char *p = doc->locs[i].path;
			if (strlen(p) == len && strncmp(p, path, len) == 0) {
				*line = doc->locs[i].line;
				*col = doc->locs[i].col;
				return;
			}
		}
		while (len && path[len - 1] != '.' && path[len - 1] != '[')
			len--;
		if (len)
			len--;
	}
}

void config_doc_free(struct config_doc *doc)
{
	if (!doc)
		return;
	json_decref(doc->root);
	free(doc->name);
	for (size_t i = 0; i < doc->nlocs; i++)
		free(doc->locs[i].path);
	free(doc->locs);
	*doc = (struct config_doc){0};
}

int config_format_from_path(const char *path, enum config_format *ret)
{
	const char *base = strrchr(path, '/');
	const char *dot;

	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	/* A leading dot is a hidden file, not an extension (".mirrordrc"). */
	if (!dot || dot == base || strcmp(dot, ".json") == 0)
		*ret = CONFIG_FMT_JSON;
	else if (strcmp(dot, ".yaml") == 0 || strcmp(dot, ".yml") == 0)
		*ret = CONFIG_FMT_YAML;
	else if (strcmp(dot, ".toml") == 0)
		*ret = CONFIG_FMT_TOML;
	else
		return -EINVAL;
	return 0;
}

/* ---- JSON ----------------------------------------------------------- */

/* jansson keeps no positions, so after it has accepted the text, one more
 * pass over the (now known valid) JSON records where each key and array
 * element starts. */
struct scan_frame {
	bool is_array;
	size_t index;
	size_t path_len; /* length of the container's own path */
};

struct scanner {
	const char *s;
	size_t len, i;
	unsigned line, col;
	char *path; /* current path, grown as needed, bounded by the text */
	size_t path_len, path_cap;
};

static void scan_adv(struct scanner *sc)
{
	if (sc->s[sc->i] == '\n') {
		sc->line++;
		sc->col = 1;
	} else if (((unsigned char)sc->s[sc->i] & 0xc0) != 0x80) {
		sc->col++; /* columns count characters, not UTF-8 continuation bytes */
	}
	sc->i++;
}

static void path_set(struct scanner *sc, size_t at, const char *piece, size_t n)
{
	if (at + n + 1 > sc->path_cap) {
		sc->path_cap = (at + n + 1) * 2;
		sc->path = xrealloc(sc->path, sc->path_cap);
	}
	memcpy(sc->path + at, piece, n);
	sc->path_len = at + n;
	sc->path[sc->path_len] = '\0';
}

/* Decode the JSON string token at sc->i (which is a '"'), advance past it. */
static char *scan_string(struct scanner *sc)
{
	size_t start = sc->i;
	json_t *v;
	char *out;

	scan_adv(sc);
	while (sc->i < sc->len && sc->s[sc->i] != '"') {
		if (sc->s[sc->i] == '\\' && sc->i + 1 < sc->len)
			scan_adv(sc);
		scan_adv(sc);
	}
	if (sc->i < sc->len)
		scan_adv(sc);
	v = json_loadb(sc->s + start, sc->i - start, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	out = xstrdup(v && json_is_string(v) ? json_string_value(v) : "");
	json_decref(v);
	return out;
}

static void scan_positions(const char *text, size_t len, struct config_doc *doc)
{
	struct scanner sc = {.s = text, .len = len, .line = 1, .col = 1};
	struct scan_frame st[CONFIG_MAX_DEPTH];
	size_t depth = 0;
	bool expect_key = false;

	path_set(&sc, 0, "", 0);
	while (sc.i < sc.len) {
		char c = sc.s[sc.i];
		struct scan_frame *top = depth ? &st[depth - 1] : NULL;

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':') {
			scan_adv(&sc);
			continue;
		}
		if (c == ',') {
			if (top && top->is_array)
				top->index++;
			expect_key = top && !top->is_array;
			scan_adv(&sc);
			continue;
		}
		if (c == '}' || c == ']') {
			if (depth)
				depth--;
			if (depth)
				sc.path_len = st[depth - 1].path_len;
			path_set(&sc, sc.path_len, "", 0);
			expect_key = false;
			scan_adv(&sc);
			continue;
		}
		if (expect_key && c == '"') {
			unsigned line = sc.line, col = sc.col;
			_cleanup_free_ char *key = scan_string(&sc);
			size_t at = top->path_len;
			if (at) {
				path_set(&sc, at, ".", 1);
				at++;
			}
			path_set(&sc, at, key, strlen(key));
			config_doc_add_loc(doc, sc.path, line, col);
			expect_key = false;
			continue;
		}
		/* A value. In an array, it gets a path of its own. */
		if (top && top->is_array) {
			char idx[32];
			int n = snprintf(idx, sizeof(idx), "[%zu]", top->index);
			path_set(&sc, top->path_len, idx, (size_t)n);
			config_doc_add_loc(doc, sc.path, sc.line, sc.col);
		}
		if (c == '{' || c == '[') {
			if (depth == CONFIG_MAX_DEPTH)
				return; /* the resolver rejects such depth anyway */
			st[depth++] = (struct scan_frame){c == '[', 0, sc.path_len};
			expect_key = c == '{';
			scan_adv(&sc);
			continue;
		}
		if (c == '"') {
			free(scan_string(&sc));
			continue;
		}
		/* number, true, false, null. memchr, not strchr, which finds
		 * a NUL byte in the set: jansson accepts "[1\0]" and the loop
		 * then never advanced (the config fuzzer's hang). */
		while (sc.i < sc.len && !memchr(" \t\r\n,]}", sc.s[sc.i], 7))
			scan_adv(&sc);
	}
	free(sc.path);
}

static size_t json_depth(const json_t *v)
{
	size_t max = 0, d;
	const char *k;
	json_t *x;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x) if ((d = json_depth(x)) > max) max = d;
		return max + 1;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, x) if ((d = json_depth(x)) > max) max = d;
		return max + 1;
	}
	return 0;
}

static int json_parse(const char *text, size_t len, struct config_doc *doc,
                      struct config_errors *errs)
{
	json_error_t err;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);

	if (!root) {
		config_errors_add(errs, NULL, doc->name, (unsigned)(err.line > 0 ? err.line : 0),
		                  (unsigned)(err.column > 0 ? err.column : 0), NULL,
		                  "invalid JSON: %s", err.text);
		return -EINVAL;
	}
	doc->root = root;
	scan_positions(text, len, doc);
	return 0;
}

int config_doc_parse(const char *text, size_t len, enum config_format fmt, const char *name,
                     struct config_doc *doc, struct config_errors *errs)
{
	int e;

	*doc = (struct config_doc){.name = xstrdup(name)};
	if (len > CONFIG_MAX_FILE) {
		config_errors_add(errs, NULL, name, 0, 0, NULL, "larger than %u bytes",
		                  CONFIG_MAX_FILE);
		return -EINVAL;
	}
	switch (fmt) {
	case CONFIG_FMT_JSON:
		e = json_parse(text, len, doc, errs);
		break;
	case CONFIG_FMT_YAML:
		e = config_yaml_parse(text, len, doc, errs);
		break;
	case CONFIG_FMT_TOML:
		e = config_toml_parse(text, len, doc, errs);
		break;
	default:
		e = -EINVAL;
	}
	if (e < 0)
		return e;
	if (!json_is_object(doc->root)) {
		config_errors_add(errs, NULL, name, 1, 1, NULL,
		                  "the configuration must be an object (a mapping of fields)");
		return -EINVAL;
	}
	if (json_depth(doc->root) > CONFIG_MAX_DEPTH) {
		config_errors_add(errs, NULL, name, 1, 1, NULL, "nested deeper than %d levels",
		                  CONFIG_MAX_DEPTH);
		return -EINVAL;
	}
	return 0;
}
