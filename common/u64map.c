#include "common/u64map.h"
#include "common/util.h"

#include <string.h>

/* Values are never NULL, so a NULL slot marks an empty one. */
static size_t slot(uint64_t key, size_t cap)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return (size_t)key & (cap - 1);
}

void *u64map_get(const struct u64map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (!m->vals[i])
			return NULL;
		if (m->keys[i] == key)
			return m->vals[i];
	}
}

static void grow(struct u64map *m)
{
	struct u64map nm = {.cap = m->cap ? m->cap * 2 : 16};

	nm.keys = xcalloc(nm.cap, sizeof(uint64_t));
	nm.vals = xcalloc(nm.cap, sizeof(void *));
	for (size_t i = 0; i < m->cap; i++)
		if (m->vals[i])
			u64map_put(&nm, m->keys[i], m->vals[i]);
	free(m->keys);
	free(m->vals);
	*m = nm;
}

void u64map_put(struct u64map *m, uint64_t key, void *val)
{
	if ((m->n + 1) * 4 > m->cap * 3)
		grow(m);
	for (size_t i = slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (!m->vals[i]) {
			m->keys[i] = key;
			m->vals[i] = val;
			m->n++;
			return;
		}
		if (m->keys[i] == key) {
			m->vals[i] = val;
			return;
		}
	}
}

void *u64map_del(struct u64map *m, uint64_t key)
{
	size_t i, mask = m->cap - 1;
	void *val;

	if (!m->cap)
		return NULL;
	for (i = slot(key, m->cap);; i = (i + 1) & mask) {
		if (!m->vals[i])
			return NULL;
		if (m->keys[i] == key)
			break;
	}
	val = m->vals[i];
	m->vals[i] = NULL;
	m->n--;
	/* Backward-shift: move later members of the probe run into the hole
	 * when their home slot does not lie cyclically in (hole, j]. */
	for (size_t j = (i + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
		size_t home = slot(m->keys[j], m->cap);
		bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
		if (movable) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			m->vals[j] = NULL;
			i = j;
		}
	}
	return val;
}

void u64map_free(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

bool u64map_next(const struct u64map *m, size_t *i, uint64_t *ret_key, void **ret_val)
{
	for (; *i < m->cap; (*i)++) {
		if (m->vals[*i]) {
			if (ret_key)
				*ret_key = m->keys[*i];
			if (ret_val)
				*ret_val = m->vals[*i];
			(*i)++;
			return true;
		}
	}
	return false;
}
