/* libFuzzer target for the config loader and model. The first byte picks
 * the format (0 JSON, 1 YAML, 2 TOML, modulo 3); the rest is the file's
 * text. It is rendered (templates), parsed, walked against the field
 * table and resolved, and a resolved config must print as verify-config
 * JSON. Crashes, leaks and sanitizer reports are the findings. TOML
 * text is also checked on its way to tomlplusplus (cli/toml_ascii.c). */
#include "fuzz.h"
#include "cli/config_internal.h"
#include "cli/toml_ascii.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Characters (not UTF-8 continuation bytes) up to the next newline. */
static size_t line_chars(const char *s, size_t len, size_t *i)
{
	size_t n = 0;

	for (; *i < len && s[*i] != '\n'; (*i)++)
		n += ((unsigned char)s[*i] & 0xc0) != 0x80;
	return n;
}

/* The copy toml++ parses is ASCII with the same lines, and the column
 * map never goes backwards, moves at most one original column per output
 * column, and takes each line's end to the original line's end. */
static void check_toml_ascii(const char *s, size_t len)
{
	struct toml_ascii a = {0};
	struct toml_ascii_error err = {0};
	size_t i = 0, o = 0;

	if (toml_ascii_rewrite(s, len, &a, &err) < 0) {
		ASSERT(err.line >= 1 && err.col >= 1 && err.msg);
		return;
	}
	ASSERT(a.len <= 3 * len && a.text[a.len] == '\0');
	for (unsigned line = 1;; line++) {
		size_t start = o, in_chars = line_chars(s, len, &i);
		size_t out_chars = line_chars(a.text, a.len, &o);
		unsigned prev = 0;
		for (unsigned col = 1; col <= out_chars + 1; col++) {
			unsigned c = toml_ascii_orig_col(&a, line, col);
			ASSERT(c >= prev && c <= prev + 1 && c >= 1);
			prev = c;
			if (col <= out_chars)
				ASSERT((unsigned char)a.text[start + col - 1] < 0x80);
		}
		ASSERT(prev == in_chars + 1);
		ASSERT((i < len) == (o < a.len)); /* both have a newline here, or neither */
		if (i >= len)
			break;
		i++, o++;
	}
	toml_ascii_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char env_target[] = "TARGET=pod/fuzz";
	static char env_branch[] = "MIRRORD_BRANCH_NAME=main";
	char *envp[] = {env_target, env_branch, NULL};
	struct config_input in = {.envp = envp, .no_git = true};
	struct config_errors errs = {0};
	struct config *c = NULL;

	if (size < 1 || size > CONFIG_MAX_FILE)
		return 0;
	enum config_format fmt = (enum config_format)(data[0] % 3);
	if (fmt == CONFIG_FMT_TOML)
		check_toml_ascii((const char *)data + 1, size - 1);
	int e = config_resolve_text(&in, (const char *)data + 1, size - 1, fmt, &c, &errs);
	if (e == 0) {
		ASSERT(c && errs.n == 0);
		json_t *doc = config_to_json(c);
		char *s = json_dumps(doc, JSON_COMPACT);
		ASSERT(s);
		free(s);
		json_decref(doc);
		config_free(c);
	} else {
		/* Every failure says why, and every message formats. */
		ASSERT(c == NULL && errs.n > 0);
		for (size_t i = 0; i < errs.n; i++) {
			char *m = config_error_format(&errs.v[i]);
			ASSERT(m && *m);
			free(m);
		}
	}
	config_errors_clear(&errs);
	return 0;
}
