#include "cli/env_mapping.h"
#include "common/util.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

struct env_mapping {
	size_t n;
	pcre2_code **re;
	char **value;
	pcre2_match_data *md;
};

void env_mapping_free(struct env_mapping *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		pcre2_code_free(m->re[i]);
		free(m->value[i]);
	}
	free(m->re);
	free(m->value);
	pcre2_match_data_free(m->md);
	free(m);
}

int env_mapping_new(json_t *map, struct env_mapping **ret, char **ret_why)
{
	struct env_mapping *m;
	const char *pat;
	json_t *v;

	*ret = NULL;
	if (!json_is_object(map) || json_object_size(map) == 0)
		return 0;
	m = xcalloc(1, sizeof(*m));
	m->re = xcalloc(json_object_size(map), sizeof(*m->re));
	m->value = xcalloc(json_object_size(map), sizeof(*m->value));
	json_object_foreach(map, pat, v)
	{
		int code;
		PCRE2_SIZE off;

		if (!json_is_string(v))
			continue;
		m->re[m->n] =
		        pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
		if (!m->re[m->n]) {
			char msg[128];
			pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof(msg));
			*ret_why = xasprintf("\"%s\": %s at offset %zu", pat, msg, (size_t)off);
			env_mapping_free(m);
			return -EINVAL;
		}
		m->value[m->n++] = xstrdup(json_string_value(v));
	}
	m->md = pcre2_match_data_create(1, NULL);
	*ret = m;
	return 0;
}

void env_mapping_apply(const struct env_mapping *m, char **entries, size_t n)
{
	for (size_t i = 0; m && i < n; i++) {
		const char *eq = strchr(entries[i], '=');
		size_t nl = eq ? (size_t)(eq - entries[i]) : strlen(entries[i]);

		for (size_t k = 0; k < m->n; k++) {
			if (pcre2_match(m->re[k], (PCRE2_SPTR)entries[i], nl, 0, 0, m->md, NULL) <
			    0)
				continue;
			char *e = xasprintf("%.*s=%s", (int)nl, entries[i], m->value[k]);
			free(entries[i]);
			entries[i] = e;
			break;
		}
	}
}
