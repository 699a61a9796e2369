/* Target listing (ls.h). */
#include "k8s/ls.h"

#include <stdio.h>
#include <string.h>

#include "k8s/internal.h"
#include "k8s/resolve.h"

/* Sidecars an IDE user never wants to pick (the same names as mirrord's
 * SKIP_NAMES, which resolution skips too). */
static const char *const mesh_names[] = {
        "istio-proxy", "istio-init",  "linkerd-proxy",    "linkerd-init", "kuma-sidecar",
        "kuma-init",   "vault-agent", "vault-agent-init", "queue-proxy",  "traffic-agent",
};

static bool is_mesh(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(mesh_names); i++)
		if (!strcmp(name, mesh_names[i]))
			return true;
	return false;
}

static int add_target(json_t *targets, const char *kind, const char *name, const char *container,
                      bool available)
{
	char *path = NULL;
	int n = container ? asprintf(&path, "%s/%s/container/%s", kind, name, container)
	                  : asprintf(&path, "%s/%s", kind, name);
	if (n < 0)
		return -ENOMEM;
	json_t *t = json_pack("{s:s, s:b}", "path", path, "available", available);
	free(path);
	if (!t || json_array_append_new(targets, t) < 0)
		return -ENOMEM;
	return 0;
}

static const char *meta_name(const json_t *o)
{
	return json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
}

static json_int_t status_int(const json_t *o, const char *field)
{
	return json_integer_value(json_object_get(json_object_get(o, "status"), field));
}

static int add_pods(struct k8s_client *c, const char *ns, json_t *targets, struct k8s_error *err)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "/api/v1/namespaces/%s/pods", ns) < 0)
		return -ENOMEM;
	_cleanup_json_ json_t *items = NULL;
	int r = k8s_list(c, path, NULL, NULL, &items, err);
	if (r < 0)
		return r;
	size_t i, k;
	json_t *pod, *ctr;
	json_array_foreach(items, i, pod)
	{
		const char *name = meta_name(pod);
		/* Finished pods (Job leftovers, our own agents) are noise. */
		const char *phase =
		        json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
		if (!name || (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))))
			continue;
		json_array_foreach(json_object_get(json_object_get(pod, "spec"), "containers"), k,
		                   ctr)
		{
			const char *cn = json_string_value(json_object_get(ctr, "name"));
			if (!cn || is_mesh(cn))
				continue;
			struct k8s_resolved res = {0};
			struct k8s_error e = {0};
			r = k8s_pod_eligible(pod, cn, &res, &e);
			k8s_resolved_free(&res);
			k8s_error_clear(&e);
			if (r == -ENOMEM)
				return r;
			if ((r = add_target(targets, "pod", name, cn, r >= 0)) < 0)
				return r;
		}
	}
	return 0;
}

enum avail { AVAIL_READY, AVAIL_ACTIVE, AVAIL_SELECTOR };

struct kind {
	const char *kind, *api, *resource;
	enum avail avail;
};

static const struct kind kinds[] = {
        {"deployment", "/apis/apps/v1", "deployments", AVAIL_READY},
        {"rollout", "/apis/argoproj.io/v1alpha1", "rollouts", AVAIL_READY},
        {"statefulset", "/apis/apps/v1", "statefulsets", AVAIL_READY},
        {"replicaset", "/apis/apps/v1", "replicasets", AVAIL_READY},
        {"job", "/apis/batch/v1", "jobs", AVAIL_ACTIVE},
        {"cronjob", "/apis/batch/v1", "cronjobs", AVAIL_ACTIVE},
        {"service", "/api/v1", "services", AVAIL_SELECTOR},
};

/* A ReplicaSet managed by a Deployment is reached through the Deployment;
 * listing it too would offer the same pods twice. */
static bool owned_by_deployment(const json_t *o)
{
	size_t i;
	json_t *ref;
	json_array_foreach(json_object_get(json_object_get(o, "metadata"), "ownerReferences"), i,
	                   ref) if (!strcmp(json_string_value(json_object_get(ref, "kind")) ?: "",
	                                    "Deployment")) return true;
	return false;
}

static int add_kind(struct k8s_client *c, const char *ns, const struct kind *k, json_t *targets)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/namespaces/%s/%s", k->api, ns, k->resource) < 0)
		return -ENOMEM;
	_cleanup_json_ json_t *items = NULL;
	struct k8s_error e = {0};
	int r = k8s_list(c, path, NULL, NULL, &items, &e);
	k8s_error_clear(&e);
	/* Not served (no Argo CRD) or not allowed: that kind is not offered. */
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return 0;
	size_t i;
	json_t *o;
	json_array_foreach(items, i, o)
	{
		const char *name = meta_name(o);
		if (!name || (!strcmp(k->kind, "replicaset") && owned_by_deployment(o)))
			continue;
		const json_t *st = json_object_get(o, "status");
		bool avail = false;
		switch (k->avail) {
		case AVAIL_READY:
			avail = status_int(o, "readyReplicas") > 0;
			break;
		case AVAIL_ACTIVE:
			/* Job: an active count; CronJob: a list of active Jobs. */
			avail = json_integer_value(json_object_get(st, "active")) > 0 ||
			        json_array_size(json_object_get(st, "active")) > 0;
			break;
		case AVAIL_SELECTOR:
			avail = json_object_size(json_object_get(json_object_get(o, "spec"),
			                                         "selector")) > 0;
			break;
		}
		if ((r = add_target(targets, k->kind, name, NULL, avail)) < 0)
			return r;
	}
	return 0;
}

static int by_path(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	return strcmp(json_string_value(json_object_get(x, "path")),
	              json_string_value(json_object_get(y, "path")));
}

/* Sort the array in place by "path", keeping "targetless" first. */
static int sort_targets(json_t *targets)
{
	size_t n = json_array_size(targets);
	if (n < 3)
		return 0;
	_cleanup_free_ json_t **v = calloc(n - 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 1; i < n; i++)
		v[i - 1] = json_incref(json_array_get(targets, i));
	qsort(v, n - 1, sizeof(*v), by_path);
	for (size_t i = 1; i < n; i++)
		json_array_set_new(targets, i, v[i - 1]); /* takes the reference */
	return 0;
}

static json_t *namespaces(struct k8s_client *c, const char *ns)
{
	_cleanup_json_ json_t *items = NULL;
	struct k8s_error e = {0};
	int r = k8s_list(c, "/api/v1/namespaces", NULL, NULL, &items, &e);
	k8s_error_clear(&e);
	json_t *out = json_array();
	if (!out)
		return NULL;
	size_t i;
	json_t *o;
	if (r >= 0)
		json_array_foreach(items, i,
		                   o) if (meta_name(o) &&
		                          json_array_append_new(out, json_string(meta_name(o))) <
		                                  0) goto oom;
	/* A role without `list namespaces` still knows its own. */
	if (json_array_size(out) == 0 && json_array_append_new(out, json_string(ns)) < 0)
		goto oom;
	return out;
oom:
	json_decref(out);
	return NULL;
}

int k8s_ls(struct k8s_client *c, const char *ns, json_t **ret, struct k8s_error *err)
{
	if (!ns || !k8s_label_valid(ns))
		return k8s_errorf(err, -EINVAL, 0, NULL, "invalid namespace \"%s\"", ns ? ns : "");
	_cleanup_json_ json_t *targets = json_array();
	if (!targets)
		return -ENOMEM;
	/* Always offered: an agent in the namespace, no target (IDE dialogs
	 * show it as "No Target"). */
	if (json_array_append_new(
	            targets, json_pack("{s:s, s:b}", "path", "targetless", "available", 1)) < 0)
		return -ENOMEM;
	int r = add_pods(c, ns, targets, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if ((r = add_kind(c, ns, &kinds[i], targets)) < 0)
			return r;
	if ((r = sort_targets(targets)) < 0)
		return r;
	json_t *nss = namespaces(c, ns);
	if (!nss)
		return -ENOMEM;
	json_t *out = json_pack("{s:O, s:s, s:o}", "targets", targets, "current_namespace", ns,
	                        "namespaces", nss);
	if (!out)
		return -ENOMEM;
	*ret = out;
	return 0;
}

json_t *k8s_ls_paths(const json_t *rich)
{
	json_t *out = json_array();
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(rich, "targets"), i, t)
	{
		if (!json_is_true(json_object_get(t, "available")))
			continue;
		if (!out || json_array_append(out, json_object_get(t, "path")) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}
