/* A hash map from uint64_t keys to pointers (open addressing, linear
 * probing, backward-shift deletion, so no tombstones accumulate). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct u64map {
	uint64_t *keys;
	void **vals;
	size_t cap; /* power of two or 0 */
	size_t n;
};

void *u64map_get(const struct u64map *m, uint64_t key);
/* Insert or replace. Aborts on OOM (supervisor/agent policy). */
void u64map_put(struct u64map *m, uint64_t key, void *val);
/* Returns the removed value or NULL. */
void *u64map_del(struct u64map *m, uint64_t key);
void u64map_free(struct u64map *m);

/* Iterate: for (size_t i = 0; u64map_next(m, &i, &k, &v);) — do not
 * modify the map inside the loop except through u64map_del of the
 * current key followed by restarting at the same i. Simpler rule: collect
 * first, then act. */
bool u64map_next(const struct u64map *m, size_t *i, uint64_t *ret_key, void **ret_val);
