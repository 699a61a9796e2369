/* The program's environment: mirrord's include / exclude semantics over
 * the target's variables, merged over the local environment. */
#include "session/session.h"
#include "common/util.h"

#include <string.h>
#include <strings.h>

/* mirrord's agent drops these even when `include` names them
 * (mirrord-behaviour.md §1.5): they describe the pod's own toolchain and
 * home, and copying them breaks the local program's runtime. */
static const char *const always_excluded[] = {
        "BUNDLER_ORIG_BUNDLER_ORIG_MANPATH",
        "BUNDLER_ORIG_BUNDLER_VERSION",
        "BUNDLER_ORIG_BUNDLE_BIN_PATH",
        "BUNDLER_ORIG_BUNDLE_GEMFILE",
        "BUNDLER_ORIG_GEM_HOME",
        "BUNDLER_ORIG_GEM_PATH",
        "BUNDLER_ORIG_MANPATH",
        "BUNDLER_ORIG_PATH",
        "BUNDLER_ORIG_RB_USER_INSTALL",
        "BUNDLER_ORIG_RUBYLIB",
        "BUNDLER_ORIG_RUBYOPT",
        "BUNDLER_VERSION",
        "BUNDLE_APP_CONFIG",
        "BUNDLE_BIN_PATH",
        "BUNDLE_FORCE_RUBY_PLATFORM",
        "BUNDLE_GEMFILE",
        "BUNDLE_GEM_PATH",
        "BUNDLE_PATH",
        "BUNDLE_WITHOUT",
        "CATALINA_HOME",
        "CLASSPATH",
        "DOTNET_EnableDiagnostics",
        "DOTNET_STARTUP_HOOKS",
        "GEM_HOME",
        "GEM_PATH",
        "GOPATH",
        "GOMODCACHE",
        "HOME",
        "HOMEPATH",
        "JAVA_EXE",
        "JAVA_HOME",
        "JAVA_TOOL_OPTIONS",
        "PATH",
        "PWD",
        "PYTHONPATH",
        "RUBYLIB",
        "RUBYOPT",
        "MIRRORD_LOG",
        "RUST_LOG",
        "_JAVA_OPTIONS",
};

bool env_always_excluded(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(always_excluded); i++)
		if (strcmp(name, always_excluded[i]) == 0)
			return true;
	return false;
}

/* Shell-style wildcard match of the whole name: '*' any run, '?' one char.
 * Iterative with one backtrack point, so no pattern can blow up. */
static bool wildmatch(const char *p, size_t plen, const char *s)
{
	size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;
	size_t slen = strlen(s);

	while (si < slen) {
		if (pi < plen && (p[pi] == '?' || p[pi] == s[si])) {
			pi++;
			si++;
		} else if (pi < plen && p[pi] == '*') {
			star = pi++;
			mark = si;
		} else if (star != SIZE_MAX) {
			pi = star + 1;
			si = ++mark;
		} else {
			return false;
		}
	}
	while (pi < plen && p[pi] == '*')
		pi++;
	return pi == plen;
}

bool env_pattern_match(const char *patterns, const char *name)
{
	const char *p = patterns;

	while (p && *p) {
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		/* Surrounding blanks are a typo, not part of a name. */
		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len && wildmatch(p, len, name))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static size_t name_len(const char *entry)
{
	const char *eq = strchr(entry, '=');
	return eq ? (size_t)(eq - entry) : strlen(entry);
}

static bool remote_wanted(const char *entry, const struct env_filter *f)
{
	size_t n = name_len(entry);
	char name[512];

	if (n == 0 || n >= sizeof(name) || !entry[n])
		return false;
	memcpy(name, entry, n);
	name[n] = 0;
	if (env_always_excluded(name))
		return false;
	if (f && f->include && !env_pattern_match(f->include, name))
		return false;
	if (f && f->exclude && env_pattern_match(f->exclude, name))
		return false;
	return true;
}

/* Put entry (K=V) into out[0..*n), replacing an entry of the same name. */
static void env_put(char **out, size_t *n, const char *entry)
{
	size_t nl = name_len(entry);

	for (size_t j = 0; j < *n; j++) {
		if (name_len(out[j]) == nl && strncmp(out[j], entry, nl) == 0) {
			free(out[j]);
			out[j] = xstrdup(entry);
			return;
		}
	}
	out[(*n)++] = xstrdup(entry);
}

static bool env_is_unset(const struct env_filter *f, const char *entry)
{
	size_t nl = name_len(entry);

	for (size_t i = 0; f && i < f->nunset; i++)
		if (strlen(f->unset[i]) == nl && strncasecmp(f->unset[i], entry, nl) == 0)
			return true;
	return false;
}

char **env_merge(char *const *local, char *const *remote, size_t nremote,
                 const struct env_filter *f)
{
	size_t nlocal = 0, n = 0, nov = f ? f->noverride : 0, k = 0;
	char **out;

	while (local && local[nlocal])
		nlocal++;
	out = xcalloc(nlocal + nremote + nov + 1, sizeof(char *));
	for (size_t i = 0; i < nlocal; i++)
		out[n++] = xstrdup(local[i]);
	for (size_t i = 0; i < nremote; i++)
		if (remote_wanted(remote[i], f))
			env_put(out, &n, remote[i]);
	for (size_t i = 0; i < nov; i++)
		if (strchr(f->override[i], '=') && name_len(f->override[i]) > 0)
			env_put(out, &n, f->override[i]);
	for (size_t i = 0; i < n; i++) {
		if (env_is_unset(f, out[i]))
			free(out[i]);
		else
			out[k++] = out[i];
	}
	out[k] = NULL;
	return out;
}
