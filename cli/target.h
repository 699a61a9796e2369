/* The target model and its two spellings, exactly as mirrord users write
 * them (mirrord-behaviour.md §1.3): the path string ("deploy/lolz",
 * "pod/x/container/c", "label/app=web", "targetless") and the JSON object
 * forms ({"pod": "x", "container": "c"}, {"labels": {...}}, ...).
 *
 * Pure code: no I/O, no logging. Errors come back as -EINVAL plus one
 * malloc'd line that quotes the input, says what is wrong and repeats the
 * accepted forms; the caller logs it once. Out of memory aborts (the CLI's
 * policy, common/util.h). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum target_kind {
	TARGET_NONE, /* targetless */
	TARGET_POD,
	TARGET_DEPLOYMENT,
	TARGET_ROLLOUT,
	TARGET_STATEFULSET,
	TARGET_JOB,
	TARGET_CRONJOB,
	TARGET_REPLICASET,
	TARGET_SERVICE,
	TARGET_LABEL,
};

struct target_label {
	char *key, *value;
};

struct target {
	enum target_kind kind;
	char *name;      /* NULL for TARGET_NONE and TARGET_LABEL */
	char *container; /* or NULL: let the resolver pick one */
	/* TARGET_LABEL only: >= 1 labels, sorted by key (strcmp), keys unique. */
	struct target_label *labels;
	size_t nlabels;
};

/* Longest target string accepted. A real one is at most ~340 bytes for a
 * named kind; label selectors may be longer, but never this long. */
#define TARGET_STRING_MAX 8192

/* Parse a target path string. Returns 0 and fills *ret, or -EINVAL with
 * *ret_err (if ret_err is non-NULL) set to a malloc'd one-line message.
 * *ret is only written on success. */
int target_parse(const char *s, struct target *ret, char **ret_err);

/* Parse the JSON value of `target.path` (or of a string `target`): a
 * string (see target_parse), null (targetless, as mirrord treats a null
 * path), or one of the objects {"pod"|"deployment"|"rollout"|
 * "stateful_set"|"job"|"cron_job"|"replica_set"|"service": "<name>",
 * "container": "<c>"} / {"labels": {"k": "v", ...}, "container": "<c>"}
 * ("container" optional or null). The outer {"path", "namespace"} object
 * is the config loader's. Same return convention as target_parse. */
int target_from_json(const json_t *v, struct target *ret, char **ret_err);

/* Whether v is an object with a kind key ("pod", ..., "stateful_set",
 * "labels"), i.e. one of the object forms above rather than the outer
 * {"path", "namespace"} object. Says nothing about its validity. */
bool target_json_has_kind(const json_t *v);

/* The object form of t, as mirrord serializes a Target: {"pod": "x",
 * "container": "c" or null}, ..., {"labels": {...}} with "container" only
 * when set; the string "targetless" for TARGET_NONE. New reference. */
json_t *target_to_json(const struct target *t);

/* Canonical path string ("targetless" for TARGET_NONE, "deployment/" for
 * the "deploy/" alias, labels in key order); target_parse() of it yields
 * an equal target. malloc'd. */
char *target_to_string(const struct target *t);

/* "pod", "deployment", ..., "label"; "targetless" for TARGET_NONE; NULL
 * for a value outside the enum. */
const char *target_kind_name(enum target_kind k);

/* Field-by-field equality. */
bool target_equal(const struct target *a, const struct target *b);

/* Free the fields and reset *t to targetless. Accepts NULL. */
void target_free(struct target *t);
