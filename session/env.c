/* The program's environment: mirrord's include / exclude semantics over
 * the target's variables, merged over the local environment. */
#include "session/session.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
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

/* ---- feature.env.env_file ---- */

static bool key_char(char c, bool first)
{
	return c == '_' || isalpha((unsigned char)c) ||
	       (!first && (isdigit((unsigned char)c) || c == '.'));
}

/* After a closing quote or an unquoted value: blanks, then the end of the
 * line or a comment. */
static bool rest_is_comment(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p == end || *p == '#';
}

/* One line's value, from p (after '=' and blanks) to end; into out (room
 * for end - p + 1). NULL on success, else what is wrong. */
static const char *parse_value(const char *p, const char *end, char *out)
{
	size_t n = 0;

	if (p < end && (*p == '\'' || *p == '"')) {
		char q = *p++;
		for (; p < end && *p != q; p++) {
			if (q == '"' && *p == '\\' && p + 1 < end) {
				char c = *++p;
				out[n++] = c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
				if (!strchr("nrt\"\\$", c)) {
					out[n - 1] = '\\'; /* unknown escape: kept as written */
					out[n++] = c;
				}
				continue;
			}
			out[n++] = *p;
		}
		if (p == end)
			return q == '"' ? "no closing double quote (values are one line)"
			                : "no closing single quote (values are one line)";
		if (!rest_is_comment(p + 1, end))
			return "text after the closing quote";
		out[n] = 0;
		return NULL;
	}
	for (; p < end; p++) {
		if (*p == '#' && n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
			break;
		out[n++] = *p;
	}
	while (n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		n--;
	out[n] = 0;
	return NULL;
}

int env_file_parse(const char *text, size_t len, char ***ret, size_t *ret_n, char *err,
                   size_t errlen)
{
	char **out = NULL;
	size_t n = 0, line = 0;
	const char *p = text, *end = text + len, *why = NULL;

	if (len > ENV_FILE_MAX) {
		snprintf(err, errlen, "larger than %u bytes", ENV_FILE_MAX);
		return -EINVAL;
	}
	out = xcalloc(1, sizeof(char *));
	while (p < end && !why) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end, *k, *v;
		line++;
		if (le > p && le[-1] == '\r')
			le--;
		while (p < le && (*p == ' ' || *p == '\t'))
			p++;
		if (p == le || *p == '#')
			goto next;
		if ((size_t)(le - p) > 7 && !strncmp(p, "export", 6) &&
		    (p[6] == ' ' || p[6] == '\t')) {
			p += 7;
			while (p < le && (*p == ' ' || *p == '\t'))
				p++;
		}
		k = p;
		while (p < le && key_char(*p, p == k))
			p++;
		if (p == k) {
			why = "expected KEY=VALUE (a key is letters, digits, '_' and '.', not "
			      "starting with "
			      "a digit)";
			break;
		}
		size_t klen = (size_t)(p - k);
		while (p < le && (*p == ' ' || *p == '\t'))
			p++;
		if (p == le || *p != '=') {
			why = "expected '=' after the key";
			break;
		}
		p++;
		while (p < le && (*p == ' ' || *p == '\t'))
			p++;
		v = p;
		if (n >= ENV_FILE_MAX_ENTRIES) {
			why = "too many entries";
			break;
		}
		char *e = xmalloc(klen + 1 + (size_t)(le - v) + 1);
		memcpy(e, k, klen);
		e[klen] = '=';
		why = parse_value(v, le, e + klen + 1);
		if (why) {
			free(e);
			break;
		}
		out = xrealloc(out, (n + 2) * sizeof(char *));
		out[n++] = e;
		out[n] = NULL;
	next:
		p = eol ? eol + 1 : end;
	}
	if (why) {
		snprintf(err, errlen, "line %zu: %s", line, why);
		for (size_t i = 0; i < n; i++)
			free(out[i]);
		free(out);
		return -EINVAL;
	}
	*ret = out;
	*ret_n = n;
	return 0;
}
