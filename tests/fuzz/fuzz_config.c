/* libFuzzer target for the config loader and model. The first byte picks
 * the format (0 JSON, 1 YAML, 2 TOML, modulo 3); the rest is the file's
 * text. It is rendered (templates), parsed, walked against the field
 * table and resolved, and a resolved config must print as verify-config
 * JSON. Crashes, leaks and sanitizer reports are the findings. */
#include "cli/config_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(cond)             \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

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
