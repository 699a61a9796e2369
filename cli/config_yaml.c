/* YAML config files → the same jansson tree as JSON, with positions.
 * libyaml's event API; scalars get YAML 1.2 core-schema types (plain
 * true/false/null/integers/floats; quoted scalars stay strings). Aliases
 * are refused: a config needs none, and expanding them is how a small
 * file becomes a huge tree ("billion laughs"). */
#include "cli/config_internal.h"
#include "common/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

struct yctx {
	yaml_parser_t parser;
	struct config_doc *doc;
	struct config_errors *errs;
	char *path;
	size_t path_cap;
	bool failed;
};

MT_PRINTF(3, 4) static void yerr(struct yctx *y, const yaml_mark_t *m, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	if (y->failed)
		return; /* the first YAML error is the one worth reading */
	y->failed = true;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	config_errors_add(y->errs, y->path && *y->path ? y->path : NULL, y->doc->name,
	                  (unsigned)m->line + 1, (unsigned)m->column + 1, NULL, "%s", msg);
}

static bool next(struct yctx *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->parser, ev)) {
		yaml_mark_t m = y->parser.problem_mark;
		char msg[256];
		snprintf(msg, sizeof(msg), "%s%s%s",
		         y->parser.problem ? y->parser.problem : "error",
		         y->parser.context ? " " : "", y->parser.context ? y->parser.context : "");
		yerr(y, &m, "invalid YAML: %s", msg);
		return false;
	}
	return true;
}

static bool match_ci(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (strcmp(s, *words) == 0)
			return true;
	return false;
}

/* Plain scalar → JSON by the YAML 1.2 core schema. */
static json_t *plain_scalar(const char *s, size_t len)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
	static const char *const trues[] = {"true", "True", "TRUE", NULL};
	static const char *const falses[] = {"false", "False", "FALSE", NULL};
	char *end;

	if (strlen(s) != len)
		return json_stringn(s, len); /* embedded NUL: keep it a string */
	if (match_ci(s, nulls))
		return json_null();
	if (match_ci(s, trues))
		return json_true();
	if (match_ci(s, falses))
		return json_false();
	if (len &&
	    strspn(s + (s[0] == '-' || s[0] == '+'), "0123456789") ==
	            len - (s[0] == '-' || s[0] == '+') &&
	    len > (size_t)(s[0] == '-' || s[0] == '+')) {
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (errno == 0 && *end == '\0')
			return json_integer(v);
		return json_string(s); /* out of range: keep the text */
	}
	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
		const char *digits = s + 2;
		int base = s[1] == 'x' ? 16 : 8;
		if (strspn(digits, base == 16 ? "0123456789abcdefABCDEF" : "01234567") == len - 2) {
			errno = 0;
			long long v = strtoll(digits, &end, base);
			if (errno == 0 && *end == '\0')
				return json_integer(v);
		}
		return json_string(s);
	}
	if (strpbrk(s, "0123456789") && strspn(s, "+-0123456789.eE") == len) {
		errno = 0;
		double d = strtod(s, &end);
		if (errno == 0 && *end == '\0' && isfinite(d))
			return json_real(d);
	}
	/* .inf / .nan have no JSON form: they stay text, and the field's type
	 * check says what it expected. */
	return json_string(s);
}

static json_t *parse_node(struct yctx *y, yaml_event_t *ev, size_t depth);

static void path_push(struct yctx *y, size_t at, const char *piece)
{
	size_t n = strlen(piece);
	if (at + n + 2 > y->path_cap) {
		y->path_cap = (at + n + 2) * 2;
		y->path = xrealloc(y->path, y->path_cap);
	}
	memcpy(y->path + at, piece, n + 1);
}

static json_t *parse_mapping(struct yctx *y, size_t depth)
{
	json_t *obj = json_object();
	size_t base = strlen(y->path);

	for (;;) {
		yaml_event_t kev, vev;
		json_t *val;

		if (!next(y, &kev))
			goto fail;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			return obj;
		}
		if (kev.type != YAML_SCALAR_EVENT) {
			yerr(y, &kev.start_mark, "%s", "a key must be a plain string");
			yaml_event_delete(&kev);
			goto fail;
		}
		_cleanup_free_ char *key =
		        xstrndup((const char *)kev.data.scalar.value, kev.data.scalar.length);
		if (base)
			path_push(y, base, ".");
		path_push(y, base + (base ? 1 : 0), key);
		config_doc_add_loc(y->doc, y->path, (unsigned)kev.start_mark.line + 1,
		                   (unsigned)kev.start_mark.column + 1);
		if (json_object_get(obj, key)) {
			yerr(y, &kev.start_mark, "duplicate key \"%s\"", key);
			yaml_event_delete(&kev);
			goto fail;
		}
		yaml_event_delete(&kev);
		if (!next(y, &vev))
			goto fail;
		val = parse_node(y, &vev, depth + 1);
		yaml_event_delete(&vev);
		if (!val)
			goto fail;
		json_object_set_new(obj, key, val);
		y->path[base] = '\0';
	}
fail:
	json_decref(obj);
	return NULL;
}

static json_t *parse_sequence(struct yctx *y, size_t depth)
{
	json_t *arr = json_array();
	size_t base = strlen(y->path);

	for (size_t i = 0;; i++) {
		yaml_event_t ev;
		char idx[32];
		json_t *val;

		if (!next(y, &ev))
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return arr;
		}
		snprintf(idx, sizeof(idx), "[%zu]", i);
		path_push(y, base, idx);
		config_doc_add_loc(y->doc, y->path, (unsigned)ev.start_mark.line + 1,
		                   (unsigned)ev.start_mark.column + 1);
		val = parse_node(y, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (!val)
			goto fail;
		json_array_append_new(arr, val);
		y->path[base] = '\0';
	}
fail:
	json_decref(arr);
	return NULL;
}

static json_t *parse_node(struct yctx *y, yaml_event_t *ev, size_t depth)
{
	if (depth > CONFIG_MAX_DEPTH) {
		yerr(y, &ev->start_mark, "nested deeper than %d levels", CONFIG_MAX_DEPTH);
		return NULL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT: {
		const char *s = (const char *)ev->data.scalar.value;
		size_t len = ev->data.scalar.length;
		const char *tag = (const char *)ev->data.scalar.tag;
		if (tag && strcmp(tag, YAML_STR_TAG) == 0)
			return json_stringn(s, len);
		if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
			return json_stringn(s, len);
		return plain_scalar(s, len);
	}
	case YAML_MAPPING_START_EVENT:
		return parse_mapping(y, depth);
	case YAML_SEQUENCE_START_EVENT:
		return parse_sequence(y, depth);
	case YAML_ALIAS_EVENT:
		yerr(y, &ev->start_mark, "%s",
		     "YAML aliases (*name) are not supported in a config");
		return NULL;
	case YAML_NO_EVENT:
	case YAML_STREAM_START_EVENT:
	case YAML_STREAM_END_EVENT:
	case YAML_DOCUMENT_START_EVENT:
	case YAML_DOCUMENT_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
	default:
		yerr(y, &ev->start_mark, "%s", "unexpected YAML structure");
		return NULL;
	}
}

int config_yaml_parse(const char *text, size_t len, struct config_doc *doc,
                      struct config_errors *errs)
{
	struct yctx y = {.doc = doc, .errs = errs};
	yaml_event_t ev;
	json_t *root = NULL;
	int ret = -EINVAL;

	if (!yaml_parser_initialize(&y.parser))
		abort();
	yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
	y.path_cap = 64;
	y.path = xcalloc(1, y.path_cap);

	/* stream start, document start (an empty stream is an empty config) */
	if (!next(&y, &ev))
		goto out;
	yaml_event_delete(&ev);
	if (!next(&y, &ev))
		goto out;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		doc->root = json_object();
		ret = 0;
		goto out;
	}
	yaml_event_delete(&ev);
	if (!next(&y, &ev))
		goto out;
	root = parse_node(&y, &ev, 0);
	yaml_event_delete(&ev);
	if (!root)
		goto out;
	if (!next(&y, &ev)) /* document end */
		goto out;
	yaml_event_delete(&ev);
	if (!next(&y, &ev))
		goto out;
	if (ev.type != YAML_STREAM_END_EVENT) {
		yerr(&y, &ev.start_mark, "%s", "more than one YAML document");
		yaml_event_delete(&ev);
		goto out;
	}
	yaml_event_delete(&ev);
	/* An empty document ("---" alone) is an empty config too. */
	if (json_is_null(root)) {
		json_decref(root);
		root = json_object();
	}
	doc->root = TAKE_PTR(root);
	ret = 0;
out:
	json_decref(root);
	free(y.path);
	yaml_parser_delete(&y.parser);
	return ret;
}
