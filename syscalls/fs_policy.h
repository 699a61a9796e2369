/* feature.fs: which paths the program reads (and writes) in the pod. Pure:
 * no I/O, no session; the handlers in fs.c ask it one question per path.
 * Rules and order as mirrord's (mirrord-behaviour.md §1.6). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum fs_mode {
	FS_MODE_LOCAL,                /* nothing remote, no path syscall trapped */
	FS_MODE_LOCAL_WITH_OVERRIDES, /* local unless a list says otherwise */
	FS_MODE_READ,                 /* reads remote, writes local (default) */
	FS_MODE_WRITE,                /* reads and writes remote */
};

enum fs_verdict {
	FS_LOCAL,     /* the program's own filesystem */
	FS_REMOTE,    /* the pod's, through the agent */
	FS_NOT_FOUND, /* ENOENT, wherever it is */
};

struct fs_policy_config {
	enum fs_mode mode;
	/* User lists (PCRE2 patterns, case-insensitive, unanchored). */
	const char *const *read_write;
	size_t n_read_write;
	const char *const *read_only;
	size_t n_read_only;
	const char *const *local;
	size_t n_local;
	const char *const *not_found;
	size_t n_not_found;
	/* feature.fs.mapping: map_from[i] (a pattern) -> map_to[i] (its
	 * replacement, with $1, ${1}, $name, ${name}, $$), in the config's
	 * order. */
	const char *const *map_from;
	const char *const *map_to;
	size_t n_mapping;
	/* The dynamic entries of the default lists: the program's cwd and
	 * executable, $HOME and the temp dir; NULL leaves an entry out. */
	const char *cwd;
	const char *exe;
	const char *home;
	const char *tmpdir;
};

struct fs_policy;

/* Parse "read", "write", "local", "localwithoverrides" (and the flag's
 * "local-with-overrides"). */
int fs_mode_parse(const char *s, enum fs_mode *ret);
const char *fs_mode_name(enum fs_mode m);

/* Whether pat compiles as a pattern of the lists; -EINVAL with the reason
 * in *ret_why (malloc'd) if not. For the config's checks. */
int fs_pattern_check(const char *pat, char **ret_why);

/* Compile the lists. A bad user pattern gives -EINVAL and *ret_why names
 * it (malloc'd). */
int fs_policy_new(const struct fs_policy_config *c, struct fs_policy **ret, char **ret_why);
void fs_policy_free(struct fs_policy *p);
enum fs_mode fs_policy_mode(const struct fs_policy *p);
/* Whether any write can go remote (write mode or a read_write list). */
bool fs_policy_remote_writes(const struct fs_policy *p);

/* feature.fs.mapping, as mirrord's (Rust regex) replace: the first entry
 * whose pattern matches path (case-insensitively, as the lists) replaces
 * the leftmost match of that pattern (case-sensitively: a path that
 * matches only when case is ignored stays as it is) with the expanded
 * replacement, once. Returns 1 with the result in out, 0 when nothing
 * changed (out untouched), -ENAMETOOLONG if the result needs more than cap
 * bytes. Callers map absolute paths only. */
int fs_policy_map(const struct fs_policy *p, const char *path, char *out, size_t cap);

/* The decision for one path: write is true for anything that creates,
 * changes or removes (an open for writing, unlink, mkdir, ...). A
 * relative path is local unless not_found matches (callers resolve paths
 * against the program's cwd first). */
enum fs_verdict fs_policy_decide(const struct fs_policy *p, const char *path, bool write);
