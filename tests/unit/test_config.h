/* Helpers shared by the config unit tests: resolve a config from a fake
 * environment, flags and a config file written to a temporary directory. */
#pragma once

#include "cli/cli.h"
#include "cli/config.h"
#include "cli/config_internal.h"
#include "cli/target.h"
#include "common/util.h"
#include "tests/unit/test.h"

#include <fcntl.h>
#include <sys/stat.h>

/* -Wwrite-strings makes literals const; env arrays are char *. */
#define S(x) ((char *)(x))

/* Write text to DIR/name in a fresh temporary directory; returns the path. */
static inline char *write_config(const char *name, const char *text)
{
	char tmpl[] = "/tmp/mt-config-test-XXXXXX";
	char *dir = mkdtemp(tmpl);
	CHECK(dir);
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(write_all(fd, text, strlen(text)) == 0);
	close(fd);
	return path;
}

/* Resolve with envp (NULL-terminated) and overrides; file (if any) is
 * passed as MIRRORD_CONFIG_FILE through the override map, as -f does. */
static inline int resolve(char **envp, const struct config_override *ov, size_t nov,
                          const char *file, struct config **ret, struct config_errors *errs)
{
	struct config_override all[32];
	size_t n = 0;

	CHECK(nov < 31);
	for (size_t i = 0; i < nov; i++)
		all[n++] = ov[i];
	if (file)
		all[n++] = (struct config_override){"MIRRORD_CONFIG_FILE", file, "-f"};
	struct config_input in = {.envp = envp, .overrides = all, .noverrides = n};
	return config_resolve(&in, ret, errs);
}

/* All errors, formatted, one per line. */
static inline char *errors_text(const struct config_errors *errs)
{
	char *s = xstrdup("");
	for (size_t i = 0; i < errs->n; i++) {
		char *line = config_error_format(&errs->v[i]);
		char *n = xasprintf("%s%s\n", s, line);
		free(line);
		free(s);
		s = n;
	}
	return s;
}

/* Resolve a config file's text (name gives the format); must succeed. */
static inline struct config *must_resolve_text(const char *name, const char *text)
{
	char *path = write_config(name, text);
	struct config_errors errs = {0};
	struct config *c = NULL;
	char *env[] = {NULL};

	if (resolve(env, NULL, 0, path, &c, &errs) < 0) {
		char *t = errors_text(&errs);
		fprintf(stderr, "unexpected errors:\n%s", t);
		free(t);
		CHECK(!"resolve failed");
	}
	free(path);
	return c;
}

/* Resolve a config file's text; must fail. Returns the errors' text, with
 * the temporary directory replaced by "DIR" so messages can be compared. */
static inline char *must_fail_text(const char *name, const char *text)
{
	char *path = write_config(name, text);
	struct config_errors errs = {0};
	struct config *c = NULL;
	char *env[] = {NULL};
	char *dir = xstrndup(path, (size_t)(strrchr(path, '/') - path));

	CHECK(resolve(env, NULL, 0, path, &c, &errs) < 0);
	CHECK(c == NULL);
	char *t = errors_text(&errs);
	/* replace every occurrence of dir with "DIR" */
	char *out = xstrdup("");
	for (char *p = t; *p;) {
		char *hit = strstr(p, dir);
		size_t n = hit ? (size_t)(hit - p) : strlen(p);
		char *o = xasprintf("%s%.*s%s", out, (int)n, p, hit ? "DIR" : "");
		free(out);
		out = o;
		p += n + (hit ? strlen(dir) : 0);
	}
	free(t);
	free(dir);
	free(path);
	config_errors_clear(&errs);
	return out;
}

static inline const char *src_name(const struct config *c, enum config_field f)
{
	return config_source_name(c->v[f].source);
}
