/* feature.env.mapping: {"REGEX": "VALUE", ...}. Each variable that comes
 * from the pod or from the env file, and whose name the regex matches
 * (anywhere in the name, case-sensitively: mirrord's semantics), gets VALUE
 * as its value, literally. The first pattern in the config's order that
 * matches wins (mirrord leaves that order unspecified). Applied after the
 * env file and before feature.env.override (mirrord-behaviour §1.5). */
#pragma once

#include <jansson.h>
#include <stddef.h>

struct env_mapping;

/* Compiles the patterns of map (a JSON object of strings; NULL or empty:
 * *ret = NULL, nothing to do). -EINVAL with *ret_why (malloc'd) naming
 * the bad pattern. */
int env_mapping_new(json_t *map, struct env_mapping **ret, char **ret_why);
/* Rewrites the "K=V" entries (each malloc'd) whose name matches, in place. */
void env_mapping_apply(const struct env_mapping *m, char **entries, size_t n);
void env_mapping_free(struct env_mapping *m);
