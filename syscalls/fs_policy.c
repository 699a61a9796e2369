/* feature.fs path rules. Each list is compiled once into one PCRE2
 * alternation, so a decision costs at most a few matches (it runs at every
 * trapped open and stat: python3 starts with about a thousand). Patterns
 * match bytes (no UTF mode): a path need not be valid UTF-8. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "syscalls/fs_policy.h"
#include "common/util.h"

#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

/* mirrord's read-local-by-default list (Linux), verbatim. */
static const char *const default_local[] = {
        ".\\.so$",
        ".\\.sh$",
        ".\\.rb$",
        ".\\.d$",
        ".\\.pyc$",
        ".\\.py$",
        ".\\.jar$",
        ".\\.class$",
        ".\\.js$",
        ".\\.pth$",
        ".\\.plist$",
        "venv\\.cfg$",
        "^/proc(/|$)",
        "^/sys(/|$)",
        "^/lib(/|$)",
        "^/etc(/|$)",
        "^/usr(/|$)",
        "^/home(/|$)",
        "^/bin(/|$)",
        "^/sbin(/|$)",
        "^/dev(/|$)",
        "^/opt(/|$)",
        "^/tmp(/|$)",
        "^/var/tmp(/|$)",
        "^/var/db/timezone/zoneinfo(/|$)",
        "^/snap(/|$)",
        "^/run(/|$)",
        "^/selinux(/|$)",
        "^/nix(/|$)",
        ".+\\.asdf/.+",
        "^/home/iojs(/|$)",
        "^/home/runner(/|$)",
        "clr-.*-pipe-",
        "\\.pdb$",
        "\\.dll$",
        ".*(^|/)jvm\\.cfg$",
        "/package\\.json$",
        "/\\.yarnrc$",
        "/\\.yarnrc.yml$",
        "/\\.yarnrc.json$",
        "/node_modules",
        ".*/\\.tool-versions$",
        "^/Program Files",
        "^/$",
};

/* Read from the pod by default, for reads only. */
static const char *const default_remote[] = {
        "^/etc/resolv.conf$",
        "^/etc/hosts$",
        "^/etc/hostname$",
        "^/etc/ssl/certs(/|$)",
};

/* Under $HOME: credentials of other clusters never come from the pod, and
 * the local ones must not leak into a program that thinks it is there. */
static const char *const default_not_found_in_home[] = {"\\.config/gcloud", "\\.kube", "\\.azure"};

enum {
	L_NOT_FOUND,
	L_READ_WRITE,
	L_READ_ONLY,
	L_LOCAL,
	L_DEF_NOT_FOUND,
	L_DEF_REMOTE,
	L_DEF_LOCAL,
	L__N
};

/* One feature.fs.mapping entry. mirrord picks the entry with a
 * case-insensitive RegexSet, then replaces with a Regex of the same
 * pattern compiled with the default, case-sensitive options. */
struct fs_map {
	pcre2_code *pick;    /* caseless: does the entry apply */
	pcre2_code *replace; /* case-sensitive: what it replaces */
	pcre2_match_data *md;
	char *to;
};

struct fs_policy {
	enum fs_mode mode;
	pcre2_code *re[L__N]; /* NULL: empty list */
	pcre2_match_data *md;
	struct fs_map *map;
	size_t n_map;
};

static const char *const mode_names[] = {
        [FS_MODE_LOCAL] = "local",
        [FS_MODE_LOCAL_WITH_OVERRIDES] = "localwithoverrides",
        [FS_MODE_READ] = "read",
        [FS_MODE_WRITE] = "write",
};

int fs_mode_parse(const char *s, enum fs_mode *ret)
{
	if (s && strcmp(s, "local-with-overrides") == 0)
		s = "localwithoverrides";
	for (size_t i = 0; s && i < ARRAY_SIZE(mode_names); i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*ret = (enum fs_mode)i;
			return 0;
		}
	return -EINVAL;
}

const char *fs_mode_name(enum fs_mode m)
{
	return (size_t)m < ARRAY_SIZE(mode_names) ? mode_names[m] : "?";
}

/* A growing string; the patterns are short and few. */
struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* Literal text as a pattern: PCRE2 treats a backslash before any
 * non-alphanumeric byte as that byte, so escape all of those. */
static void sb_escaped(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c >= 0x80))
			sb_add(b, "\\", 1);
		sb_add(b, s, 1);
	}
}

/* jit: for a pattern that will be matched. JIT compiling costs about
 * ten times the compile (executable memory, code generation), so the
 * compiles that only check a pattern skip it. */
static int compile_opts(const char *pat, size_t len, uint32_t opts, bool jit, pcre2_code **ret,
                        char **ret_why)
{
	int err;
	PCRE2_SIZE off;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, opts, &err, &off, NULL);

	if (!re) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof(msg));
		if (ret_why)
			*ret_why = xasprintf("bad pattern \"%s\": %s at offset %zu", pat,
			                     (const char *)msg, (size_t)off);
		return -EINVAL;
	}
	/* JIT is an optimisation; without it matching still works. */
	if (jit)
		(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	*ret = re;
	return 0;
}

static int compile_one(const char *pat, size_t len, bool jit, pcre2_code **ret, char **ret_why)
{
	return compile_opts(pat, len, PCRE2_CASELESS, jit, ret, ret_why);
}

int fs_pattern_check(const char *pat, char **ret_why)
{
	pcre2_code *re;
	int e = compile_one(pat, strlen(pat), false, &re, ret_why);

	if (e == 0)
		pcre2_code_free(re);
	return e;
}

/* Compile pats as one alternation. Each pattern is first compiled alone,
 * so an error names the user's pattern, and a stray ')' cannot close the
 * group of another. */
static int compile_list(const char *const *pats, size_t n, struct sbuf *extra, bool jit,
                        pcre2_code **ret, char **ret_why)
{
	struct sbuf all = {0};
	int e = 0;

	*ret = NULL;
	for (size_t i = 0; i < n; i++) {
		pcre2_code *one;
		e = compile_one(pats[i], strlen(pats[i]), false, &one, ret_why);
		if (e < 0)
			goto out;
		pcre2_code_free(one);
		sb_str(&all, all.len ? "|(?:" : "(?:");
		sb_str(&all, pats[i]);
		sb_str(&all, ")");
	}
	if (extra && extra->len) {
		sb_str(&all, all.len ? "|" : "");
		sb_add(&all, extra->s, extra->len);
	}
	if (all.len)
		e = compile_one(all.s, all.len, jit, ret, ret_why);
out:
	free(all.s);
	return e;
}

/* Append "(?:^<escaped prefix>suffix)" as one more alternative. */
static void add_dynamic(struct sbuf *b, const char *anchor, const char *lit, const char *suffix)
{
	sb_str(b, b->len ? "|(?:" : "(?:");
	sb_str(b, anchor);
	sb_escaped(b, lit);
	sb_str(b, suffix);
	sb_str(b, ")");
}

static int compile_mapping(struct fs_policy *p, const struct fs_policy_config *c, char **ret_why)
{
	p->map = xcalloc(c->n_mapping + 1, sizeof(*p->map));
	for (size_t i = 0; i < c->n_mapping; i++) {
		struct fs_map *m = &p->map[p->n_map++];
		const char *from = c->map_from[i];
		int e = compile_one(from, strlen(from), true, &m->pick, ret_why);
		if (e == 0)
			e = compile_opts(from, strlen(from), 0, true, &m->replace, ret_why);
		if (e < 0)
			return e;
		m->md = pcre2_match_data_create_from_pattern(m->replace, NULL);
		if (!m->md)
			abort(); /* out of memory: the supervisor's policy */
		m->to = xstrdup(c->map_to[i]);
	}
	return 0;
}

int fs_policy_new(const struct fs_policy_config *c, struct fs_policy **ret, char **ret_why)
{
	struct fs_policy *p = xcalloc(1, sizeof(*p));
	struct sbuf dyn_local = {0}, dyn_nf = {0};
	int e;

	p->mode = c->mode;
	if (c->tmpdir && *c->tmpdir)
		add_dynamic(&dyn_local, "^", c->tmpdir, "");
	if (c->cwd && *c->cwd && strcmp(c->cwd, "/") != 0)
		add_dynamic(&dyn_local, "^", c->cwd, "(/|$)");
	if (c->exe && *c->exe)
		add_dynamic(&dyn_local, "", c->exe, "$");
	if (c->home && *c->home) {
		add_dynamic(&dyn_local, "^", c->home, "/\\.");
		for (size_t i = 0; i < ARRAY_SIZE(default_not_found_in_home); i++) {
			_cleanup_free_ char *tail = xasprintf("/%s", default_not_found_in_home[i]);
			add_dynamic(&dyn_nf, "^", c->home, tail);
		}
	}

	/* Local mode matches nothing but a relative path's not_found
	 * (fs_policy_decide), and the syscall layer does not even ask: no
	 * JIT (most of the policy's start-up cost) for lists that are only
	 * checked. */
	bool jit = c->mode != FS_MODE_LOCAL;
	if ((e = compile_list(c->not_found, c->n_not_found, NULL, jit, &p->re[L_NOT_FOUND],
	                      ret_why)) < 0 ||
	    (e = compile_list(c->read_write, c->n_read_write, NULL, jit, &p->re[L_READ_WRITE],
	                      ret_why)) < 0 ||
	    (e = compile_list(c->read_only, c->n_read_only, NULL, jit, &p->re[L_READ_ONLY],
	                      ret_why)) < 0 ||
	    (e = compile_list(c->local, c->n_local, NULL, jit, &p->re[L_LOCAL], ret_why)) < 0 ||
	    (e = compile_list(NULL, 0, &dyn_nf, jit, &p->re[L_DEF_NOT_FOUND], ret_why)) < 0 ||
	    (e = compile_list(default_remote, ARRAY_SIZE(default_remote), NULL, jit,
	                      &p->re[L_DEF_REMOTE], ret_why)) < 0 ||
	    (e = compile_list(default_local, ARRAY_SIZE(default_local), &dyn_local, jit,
	                      &p->re[L_DEF_LOCAL], ret_why)) < 0 ||
	    (e = compile_mapping(p, c, ret_why)) < 0) {
		fs_policy_free(p);
		goto out;
	}
	p->md = pcre2_match_data_create(1, NULL);
	if (!p->md)
		abort(); /* out of memory: the supervisor's policy */
	*ret = p;
out:
	free(dyn_local.s);
	free(dyn_nf.s);
	return e;
}

void fs_policy_free(struct fs_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < L__N; i++)
		pcre2_code_free(p->re[i]);
	pcre2_match_data_free(p->md);
	for (size_t i = 0; i < p->n_map; i++) {
		pcre2_code_free(p->map[i].pick);
		pcre2_code_free(p->map[i].replace);
		pcre2_match_data_free(p->map[i].md);
		free(p->map[i].to);
	}
	free(p->map);
	free(p);
}

enum fs_mode fs_policy_mode(const struct fs_policy *p)
{
	return p->mode;
}

bool fs_policy_remote_writes(const struct fs_policy *p)
{
	return p->mode == FS_MODE_WRITE || (p->mode != FS_MODE_LOCAL && p->re[L_READ_WRITE]);
}

static bool matches(const struct fs_policy *p, int list, const char *path)
{
	const pcre2_code *re = p->re[list];

	return re && pcre2_match(re, (PCRE2_SPTR)path, strlen(path), 0, 0, p->md, NULL) >= 0;
}

/* Append group n of the match in m (nothing if the group does not exist
 * or did not take part, as Rust's Captures::expand). */
static void add_group(struct sbuf *b, const struct fs_map *m, const char *subject, uint32_t n)
{
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);

	if (n >= pcre2_get_ovector_count(m->md) || ov[2 * n] == PCRE2_UNSET)
		return;
	sb_add(b, subject + ov[2 * n], ov[2 * n + 1] - ov[2 * n]);
}

/* A group reference: a number (Rust's usize parse: an optional '+' and
 * digits) or a name. */
static void add_ref(struct sbuf *b, const struct fs_map *m, const char *subject, const char *ref,
                    size_t len)
{
	size_t i = ref[0] == '+' && len > 1 ? 1 : 0;
	uint64_t n = 0;
	bool digits = i < len;
	char name[256];
	int num;

	for (; digits && i < len; i++) {
		digits = ref[i] >= '0' && ref[i] <= '9' && n <= (UINT32_MAX - 9) / 10;
		n = n * 10 + (uint64_t)(ref[i] - '0');
	}
	if (digits) {
		add_group(b, m, subject, (uint32_t)n);
		return;
	}
	/* PCRE2 limits group names to 128 code units: longer ones never
	 * name a group. */
	if (len >= sizeof(name))
		return;
	memcpy(name, ref, len);
	name[len] = 0;
	num = pcre2_substring_number_from_name(m->replace, (PCRE2_SPTR)name);
	if (num >= 0)
		add_group(b, m, subject, (uint32_t)num);
}

static bool cap_letter(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '_';
}

/* The replacement text of m, expanded as Rust's regex crate does: "$$" is
 * "$"; "${ref}" takes anything up to '}'; "$ref" takes the longest run of
 * [0-9A-Za-z_] (so "$1a" names the group "1a", which usually does not
 * exist and expands to nothing); a '$' that starts no reference stays. */
static void expand(struct sbuf *b, const struct fs_map *m, const char *subject)
{
	const char *r = m->to;

	while (*r) {
		const char *dollar = strchr(r, '$'), *ref, *end;
		if (!dollar) {
			sb_str(b, r);
			return;
		}
		sb_add(b, r, (size_t)(dollar - r));
		r = dollar;
		if (r[1] == '$') {
			sb_add(b, "$", 1);
			r += 2;
			continue;
		}
		if (r[1] == '{' && (end = strchr(r + 2, '}'))) {
			ref = r + 2;
			add_ref(b, m, subject, ref, (size_t)(end - ref));
			r = end + 1;
			continue;
		}
		for (end = r + 1; cap_letter(*end); end++)
			;
		if (r[1] == '{' || end == r + 1) {
			sb_add(b, "$", 1);
			r++;
			continue;
		}
		add_ref(b, m, subject, r + 1, (size_t)(end - r - 1));
		r = end;
	}
}

int fs_policy_map(const struct fs_policy *p, const char *path, char *out, size_t cap)
{
	size_t len = strlen(path);
	struct sbuf b = {0};
	int e = 0;

	for (size_t i = 0; i < p->n_map; i++) {
		const struct fs_map *m = &p->map[i];
		if (pcre2_match(m->pick, (PCRE2_SPTR)path, len, 0, 0, p->md, NULL) < 0)
			continue;
		if (pcre2_match(m->replace, (PCRE2_SPTR)path, len, 0, 0, m->md, NULL) < 0)
			return 0;
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
		sb_add(&b, path, ov[0]);
		expand(&b, m, path);
		sb_str(&b, path + ov[1]);
		if (b.len + 1 > cap)
			e = -ENAMETOOLONG;
		else
			memcpy(out, b.s, b.len + 1);
		free(b.s);
		return e < 0 ? e : 1;
	}
	return 0;
}

enum fs_verdict fs_policy_decide(const struct fs_policy *p, const char *path, bool write)
{
	/* 1. mirrord sees relative paths only before the program's cwd is
	 * known; they stay local (callers resolve them first). */
	if (path[0] != '/')
		return matches(p, L_NOT_FOUND, path) ? FS_NOT_FOUND : FS_LOCAL;
	/* 2. */
	if (p->mode == FS_MODE_LOCAL)
		return FS_LOCAL;
	/* 3.-6. the user's lists */
	if (matches(p, L_NOT_FOUND, path))
		return FS_NOT_FOUND;
	if (matches(p, L_READ_WRITE, path))
		return FS_REMOTE;
	if (matches(p, L_READ_ONLY, path))
		return write ? FS_LOCAL : FS_REMOTE;
	if (matches(p, L_LOCAL, path))
		return FS_LOCAL;
	/* 7.-9. the defaults, in every mode but local (as mirrord does,
	 * whatever its documentation says of localwithoverrides only) */
	if (matches(p, L_DEF_NOT_FOUND, path))
		return FS_NOT_FOUND;
	if (!write && matches(p, L_DEF_REMOTE, path))
		return FS_REMOTE;
	if (matches(p, L_DEF_LOCAL, path))
		return FS_LOCAL;
	/* 10. the mode */
	switch (p->mode) {
	case FS_MODE_WRITE:
		return FS_REMOTE;
	case FS_MODE_READ:
		return write ? FS_LOCAL : FS_REMOTE;
	case FS_MODE_LOCAL:
	case FS_MODE_LOCAL_WITH_OVERRIDES:
		break;
	}
	return FS_LOCAL;
}
