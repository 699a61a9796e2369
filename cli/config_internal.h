/* Internals shared by the config modules: the loaded document with the
 * file positions of its fields, the template renderer, the field table. */
#pragma once

#include "cli/config.h"

#include <jansson.h>
#include <stddef.h>

/* Limits on what a user can make us hold (STYLE: every buffer a user can
 * grow has a maximum). */
#define CONFIG_MAX_FILE (1u << 20) /* bytes of config text, before and after rendering */
#define CONFIG_MAX_DEPTH 64        /* nesting of objects and arrays */
#define CONFIG_MAX_LOCS 65536      /* recorded field positions */
#define CONFIG_MAX_EXPR 4096       /* one template expression */

enum config_format { CONFIG_FMT_JSON, CONFIG_FMT_YAML, CONFIG_FMT_TOML };

struct config_loc {
	char *path; /* "feature.env.include[1]" */
	unsigned line, col;
};

/* A parsed config file: one jansson tree whatever the format, and where
 * each field path was written. */
struct config_doc {
	json_t *root;
	char *name; /* file name for messages */
	struct config_loc *locs;
	size_t nlocs, cap;
};

/* Format by extension: .json or none → JSON, .yaml/.yml → YAML, .toml →
 * TOML. Returns -EINVAL for any other extension. */
int config_format_from_path(const char *path, enum config_format *ret);

/* Parse text (not NUL-terminated necessarily) in the given format into
 * doc. Errors (syntax, duplicate keys, root not an object) are appended
 * to errs with their position; returns 0 or -EINVAL. */
int config_doc_parse(const char *text, size_t len, enum config_format fmt, const char *name,
                     struct config_doc *doc, struct config_errors *errs);
void config_doc_free(struct config_doc *doc);

/* Record / find the position of a field path. Lookup falls back to the
 * nearest recorded parent, then to line 0. */
void config_doc_add_loc(struct config_doc *doc, const char *path, unsigned line, unsigned col);
void config_doc_locate(const struct config_doc *doc, const char *path, unsigned *line,
                       unsigned *col);

/* Per-format parsers behind config_doc_parse. */
int config_yaml_parse(const char *text, size_t len, struct config_doc *doc,
                      struct config_errors *errs);

/* Templating, as mirrord renders config files with Tera before parsing:
 * {{ key }}, {{ git_branch }}, {{ get_env(name="X", default="y") }} and
 * the `| default(value="x")` filter. */
struct config_template_ctx {
	const char *key;
	/* Variable lookup (the same environment the resolver reads). */
	const char *(*getenv)(void *data, const char *name);
	void *data;
	/* The current git branch, malloc'd, or NULL (for tests: replaceable). */
	char *(*git_branch)(void *data);
};
int config_render(const char *text, size_t len, const struct config_template_ctx *ctx,
                  const char *name, char **ret, size_t *ret_len, struct config_errors *errs);
char *config_git_branch(void *data);

/* config_resolve() on text in memory instead of the file that
 * MIRRORD_CONFIG_FILE names (the fuzzer's entry point). */
int config_resolve_text(const struct config_input *in, const char *text, size_t len,
                        enum config_format fmt, struct config **ret, struct config_errors *errs);

/* Field table, generated from CONFIG_FIELDS. */
struct config_field_info {
	const char *path;
	enum config_type type;
	const char *env;
	const char *def; /* JSON text or NULL */
	enum config_impl impl;
	const char *quiet; /* JSON text or NULL */
	const char *note;
};
extern const struct config_field_info config_fields[CF__COUNT];
/* Field id by path, or -1. */
int config_field_by_path(const char *path);
