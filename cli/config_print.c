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

/* A message quotes what the user wrote, which need not be UTF-8 (a file
 * name, a variable); jansson refuses such strings, and the message would
 * silently vanish from the document. Non-ASCII bytes become '?' then. */
static json_t *message_string(char *s)
{
	json_t *j = json_string(s);

	if (j)
		return j;
	for (char *p = s; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	return json_string(s);
}

/* One formatted line per message ("FILE:LINE:COL: PATH: MESSAGE"). */
static json_t *errors_array(const struct config_errors *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++) {
		_cleanup_free_ char *s = config_error_format(&l->v[i]);
		json_array_append_new(a, message_string(s));
	}
	return a;
}

json_t *config_to_json(const struct config *c)
{
	json_t *doc = json_object(), *cfg = json_object(), *req = json_object();

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
	json_object_set_new(doc, "config", cfg);
	json_object_set_new(doc, "request", req);
	json_object_set_new(doc, "warnings", errors_array(&c->warnings));
	return doc;
}

/* What the IDE may offer in its target picker: every kind mirrord-trace
 * resolves, named as mirrord's TargetType serializes them. (mirrord drops
 * some of them when feature.copy_target is on; mirrord-trace has no
 * copy_target.) */
static const char *const ide_target_types[] = {
        "targetless", "pod",         "deployment", "rollout",    "job",
        "cronjob",    "statefulset", "service",    "replicaset",
};

json_t *config_to_ide_json(const struct config *c)
{
	const struct config_value *ns = &c->v[CF_TARGET_NAMESPACE];
	json_t *types = json_array(), *path;

	/* null, not "targetless", when no target was given anywhere: the
	 * IDE then asks the user to pick one. */
	if (!config_str(c, CF_TARGET_PATH))
		path = json_null();
	else if (c->targetless || !c->target)
		path = json_string("targetless");
	else
		path = target_to_json(c->target);
	for (size_t i = 0; i < ARRAY_SIZE(ide_target_types); i++)
		json_array_append_new(types, json_string(ide_target_types[i]));
	/* The namespace the user gave; the kubeconfig's or "default" is the
	 * IDE's own business, as in mirrord. */
	return json_pack("{s:s,s:{s:o,s:O},s:o,s:o}", "type", "Success", "config", "path", path,
	                 "namespace",
	                 ns->source >= CONFIG_SRC_FILE && ns->value ? ns->value : json_null(),
	                 "warnings", errors_array(&c->warnings), "compatible_target_types", types);
}

json_t *config_errors_to_ide_json(const struct config_errors *errs)
{
	return json_pack("{s:s,s:o}", "type", "Fail", "errors", errors_array(errs));
}
