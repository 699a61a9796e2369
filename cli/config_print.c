/* The verify-config document (README "verify-config"): every field as
 * {"value": ..., "source": "flag|env|file|kubeconfig|default"}, nested as
 * in the config file, plus the resolved request and the warnings. */
#include "cli/config_internal.h"
#include "cli/target.h"
#include "common/util.h"

#include <string.h>

/* Find or create the object at "a.b" under root; returns a borrowed ref. */
static json_t *object_at(json_t *root, const char *path, size_t len)
{
	json_t *cur = root;
	const char *p = path, *end = path + len;

	while (p < end) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);
		_cleanup_free_ char *key = xstrndup(p, n);
		json_t *next = json_object_get(cur, key);
		if (!next) {
			next = json_object();
			json_object_set_new(cur, key, next);
		}
		cur = next;
		p += n + 1;
	}
	return cur;
}

json_t *config_to_json(const struct config *c)
{
	json_t *doc = json_object(), *cfg = json_object(), *req = json_object();
	json_t *warn = json_array();

	for (int id = 0; id < CF__COUNT; id++) {
		const char *path = config_fields[id].path;
		const char *dot = strrchr(path, '.');
		json_t *parent = object_at(cfg, path, dot ? (size_t)(dot - path) : 0);
		json_t *v = c->v[id].value;
		json_object_set_new(parent, dot ? dot + 1 : path,
		                    json_pack("{s:O,s:s}", "value", v ? v : json_null(), "source",
		                              config_source_name(c->v[id].source)));
	}
	json_object_set_new(req, "targetless", json_boolean(c->targetless));
	if (c->target && !c->targetless) {
		char *s = target_to_string(c->target);
		json_object_set_new(req, "target", json_string(s));
		free(s);
		json_object_set_new(req, "kind", json_string(target_kind_name(c->target->kind)));
		json_object_set_new(req, "name",
		                    c->target->name ? json_string(c->target->name) : json_null());
		json_object_set_new(req, "container",
		                    c->target->container ? json_string(c->target->container)
		                                         : json_null());
	} else {
		json_object_set_new(req, "target", json_string("targetless"));
	}
	json_object_set_new(req, "namespace", json_string(c->target_namespace));
	json_object_set_new(req, "agent_namespace", json_string(c->agent_namespace));
	for (size_t i = 0; i < c->warnings.n; i++) {
		char *s = config_error_format(&c->warnings.v[i]);
		json_array_append_new(warn, json_string(s));
		free(s);
	}
	json_object_set_new(doc, "config", cfg);
	json_object_set_new(doc, "request", req);
	json_object_set_new(doc, "warnings", warn);
	return doc;
}
