/* Target resolution: workload -> selector -> pods -> first eligible pod
 * (mirrord-behaviour.md §2; matchExpressions and cronjobs are ours). */
#include <stdio.h>
#include <string.h>

#include "k8s/internal.h"
#include "k8s/resolve.h"

/* Reasons quoted when no pod is eligible; the rest are counted. */
#define REASONS_SHOWN 3
/* Requirements and values in one selector: real ones have a handful. */
#define SELECTOR_REQS_MAX 256

struct req {
	const char *key;
	char *text;
};

static int req_cmp(const void *a, const void *b)
{
	return strcmp(((const struct req *)a)->key, ((const struct req *)b)->key);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "k in (a,b)" with values sorted. */
static int set_req(const char *key, const char *op, const json_t *values, char **ret)
{
	size_t n = json_array_size(values);
	if (n == 0 || n > SELECTOR_REQS_MAX)
		return -EINVAL;
	const char *v[SELECTOR_REQS_MAX];
	size_t len = strlen(key) + strlen(op) + 8;
	for (size_t i = 0; i < n; i++) {
		v[i] = json_string_value(json_array_get(values, i));
		if (!v[i])
			return -EINVAL;
		len += strlen(v[i]) + 1;
	}
	qsort(v, n, sizeof(v[0]), str_cmp);
	char *s = malloc(len);
	if (!s)
		return -ENOMEM;
	size_t off = (size_t)snprintf(s, len, "%s %s (", key, op);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, len - off, "%s%s", i ? "," : "", v[i]);
	snprintf(s + off, len - off, ")");
	*ret = s;
	return 0;
}

int k8s_selector_string(const json_t *sel, char **ret, struct k8s_error *err)
{
	if (!sel || json_is_null(sel))
		return -ENOENT;
	if (!json_is_object(sel))
		return k8s_errorf(err, -EINVAL, 0, NULL, "selector is not an object");
	const json_t *ml = json_object_get(sel, "matchLabels"),
	             *me = json_object_get(sel, "matchExpressions");
	size_t n = json_object_size(ml) + json_array_size(me);
	if (n > SELECTOR_REQS_MAX)
		return k8s_errorf(err, -E2BIG, 0, NULL, "selector has more than %d requirements",
		                  SELECTOR_REQS_MAX);
	struct req reqs[SELECTOR_REQS_MAX];
	size_t k = 0;
	int r = 0;
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)ml, key, v)
	{
		reqs[k].key = key;
		if (!json_is_string(v) ||
		    asprintf(&reqs[k].text, "%s=%s", key, json_string_value(v)) < 0) {
			r = json_is_string(v) ? -ENOMEM : -EINVAL;
			break;
		}
		k++;
	}
	size_t i;
	json_array_foreach(me, i, v)
	{
		if (r < 0)
			break;
		const char *mk = json_string_value(json_object_get(v, "key"));
		const char *op = json_string_value(json_object_get(v, "operator"));
		json_t *vals = json_object_get(v, "values");
		if (!mk || !op) {
			r = -EINVAL;
			break;
		}
		reqs[k].key = mk;
		if (!strcmp(op, "In"))
			r = set_req(mk, "in", vals, &reqs[k].text);
		else if (!strcmp(op, "NotIn"))
			r = set_req(mk, "notin", vals, &reqs[k].text);
		else if (!strcmp(op, "Exists"))
			r = (reqs[k].text = strdup(mk)) ? 0 : -ENOMEM;
		else if (!strcmp(op, "DoesNotExist"))
			r = asprintf(&reqs[k].text, "!%s", mk) < 0 ? -ENOMEM : 0;
		else
			r = -EINVAL;
		if (r >= 0)
			k++;
	}
	_cleanup_free_ char *s = NULL;
	if (r >= 0) {
		qsort(reqs, k, sizeof(reqs[0]), req_cmp);
		size_t len = 1;
		for (i = 0; i < k; i++)
			len += strlen(reqs[i].text) + 1;
		s = malloc(len);
		if (!s)
			r = -ENOMEM;
		size_t off = 0;
		for (i = 0; s && i < k; i++)
			off += (size_t)snprintf(s + off, len - off, "%s%s", i ? "," : "",
			                        reqs[i].text);
		if (s && k == 0)
			s[0] = '\0';
	}
	for (i = 0; i < k; i++)
		free(reqs[i].text);
	if (r == -EINVAL)
		return k8s_errorf(err, r, 0, NULL, "invalid label selector requirement");
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

/* First eligible pod among those matching sel; what the error says when
 * none is: the pods' own reasons. */
static int first_eligible(struct k8s_client *c, const char *ns, const char *what, const char *sel,
                          const char *container, struct k8s_resolved *ret, struct k8s_error *err)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "/api/v1/namespaces/%s/pods", ns) < 0)
		return -ENOMEM;
	_cleanup_json_ json_t *pods = NULL;
	int r = k8s_list(c, path, sel, NULL, &pods, err);
	if (r < 0)
		return r;
	if (json_array_size(pods) == 0)
		return k8s_errorf(err, -ENOENT, 0, NULL, "no pods of %s match selector '%s'", what,
		                  sel);
	char reasons[1024] = "";
	size_t off = 0, shown = 0, i;
	int last = -EAGAIN;
	json_t *pod;
	json_array_foreach(pods, i, pod)
	{
		struct k8s_error e = {0};
		r = k8s_pod_eligible(pod, container, ret, &e);
		if (r == 0) {
			k8s_error_clear(&e);
			return 0;
		}
		if (r == -ENOMEM) {
			k8s_error_clear(&e);
			return r;
		}
		/* A wrong container name is the user's to fix, not a state. */
		if (r == -ENOENT) {
			k8s_error_clear(err);
			*err = e;
			return r;
		}
		last = r;
		if (shown < REASONS_SHOWN && off < sizeof(reasons)) {
			int k = snprintf(reasons + off, sizeof(reasons) - off, "%s%s",
			                 shown ? "; " : "", e.message ? e.message : "?");
			off += k > 0 ? (size_t)k : 0;
			shown++;
		}
		k8s_error_clear(&e);
	}
	size_t n = json_array_size(pods);
	return k8s_errorf(err, last, 0, NULL, "no pod of %s is ready to be targeted: %s%s", what,
	                  reasons, n > shown ? " (and more)" : "");
}

static int get_obj(struct k8s_client *c, const char *api, const char *ns, const char *res,
                   const char *name, json_t **ret, struct k8s_error *err)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/namespaces/%s/%s/%s", api, ns, res, name) < 0)
		return -ENOMEM;
	return k8s_get(c, path, ret, err);
}

/* The selector of a workload object, as a query string. */
static int workload_selector(const json_t *obj, const char *what, char **ret, struct k8s_error *err)
{
	const json_t *sel = json_object_get(json_object_get(obj, "spec"), "selector");
	int r = k8s_selector_string(sel, ret, err);
	if (r == -ENOENT)
		return k8s_errorf(err, r, 0, NULL, "%s has no selector, so no pods", what);
	if (r >= 0 && !**ret)
		return k8s_errorf(err, -EINVAL, 0, NULL,
		                  "%s has an empty selector, which matches every pod; refusing",
		                  what);
	return r;
}

static int rollout_selector(struct k8s_client *c, const char *ns, const json_t *ro,
                            const char *what, char **ret, struct k8s_error *err)
{
	const json_t *spec = json_object_get(ro, "spec");
	if (json_object_get(spec, "selector"))
		return workload_selector(ro, what, ret, err);
	const json_t *ref = json_object_get(spec, "workloadRef");
	const char *kind = json_string_value(json_object_get(ref, "kind"));
	const char *name = json_string_value(json_object_get(ref, "name"));
	if (!ref) {
		/* The scale subresource's ready-made selector string. */
		const char *s = json_string_value(
		        json_object_get(json_object_get(ro, "status"), "selector"));
		if (s && *s)
			return (*ret = strdup(s)) ? 0 : -ENOMEM;
		return k8s_errorf(err, -ENOENT, 0, NULL,
		                  "%s has neither a selector nor a workloadRef", what);
	}
	const char *res = kind && !strcmp(kind, "Deployment")   ? "deployments"
	                  : kind && !strcmp(kind, "ReplicaSet") ? "replicasets"
	                                                        : NULL;
	if (!res || !k8s_name_valid(name))
		return k8s_errorf(err, -EOPNOTSUPP, 0, NULL,
		                  "%s has a workloadRef to %s '%s'; only Deployment and ReplicaSet "
		                  "are supported",
		                  what, kind ? kind : "?", name ? name : "?");
	_cleanup_json_ json_t *obj = NULL;
	int r = get_obj(c, "/apis/apps/v1", ns, res, name, &obj, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *w = NULL;
	if (asprintf(&w, "%s %s/%s (workloadRef of %s)", kind, ns, name, what) < 0)
		return -ENOMEM;
	return workload_selector(obj, w, ret, err);
}

static int resolve_cronjob(struct k8s_client *c, const char *ns, const char *name,
                           const char *container, struct k8s_resolved *ret, struct k8s_error *err)
{
	_cleanup_json_ json_t *cj = NULL;
	int r = get_obj(c, "/apis/batch/v1", ns, "cronjobs", name, &cj, err);
	if (r < 0)
		return r;
	json_t *active = json_object_get(json_object_get(cj, "status"), "active");
	if (json_array_size(active) == 0)
		return k8s_errorf(err, -EAGAIN, 0, NULL,
		                  "cronjob %s/%s has no active job; wait for its next run", ns,
		                  name);
	size_t i;
	json_t *ref;
	json_array_foreach(active, i, ref)
	{
		const char *jn = json_string_value(json_object_get(ref, "name"));
		if (!k8s_name_valid(jn))
			continue;
		_cleanup_json_ json_t *job = NULL;
		r = get_obj(c, "/apis/batch/v1", ns, "jobs", jn, &job, err);
		if (r == -ENOENT)
			continue; /* finished and deleted since */
		if (r < 0)
			return r;
		_cleanup_free_ char *sel = NULL, *what = NULL;
		if (asprintf(&what, "job %s/%s (of cronjob %s/%s)", ns, jn, ns, name) < 0)
			return -ENOMEM;
		r = workload_selector(job, what, &sel, err);
		if (r >= 0)
			r = first_eligible(c, ns, what, sel, container, ret, err);
		if (r != -EAGAIN && r != -ENOENT)
			return r;
		if (i + 1 == json_array_size(active))
			return r;
	}
	return k8s_errorf(err, -EAGAIN, 0, NULL, "no active job of cronjob %s/%s has pods", ns,
	                  name);
}

static int labels_selector(const struct target *t, char **ret)
{
	size_t len = 1;
	for (size_t i = 0; i < t->nlabels; i++)
		len += strlen(t->labels[i].key) + strlen(t->labels[i].value) + 2;
	char *s = malloc(len);
	if (!s)
		return -ENOMEM;
	size_t off = 0;
	s[0] = '\0';
	for (size_t i = 0; i < t->nlabels; i++)
		off += (size_t)snprintf(s + off, len - off, "%s%s=%s", i ? "," : "",
		                        t->labels[i].key, t->labels[i].value);
	*ret = s;
	return 0;
}

int k8s_resolve_target(struct k8s_client *c, const struct target *t, const char *ns,
                       struct k8s_resolved *ret, struct k8s_error *err)
{
	if (!k8s_label_valid(ns))
		return k8s_errorf(err, -EINVAL, 0, NULL, "invalid namespace \"%s\"", ns ? ns : "");
	if (t->kind == TARGET_NONE)
		return k8s_errorf(err, -EINVAL, 0, NULL, "targetless has no pod to resolve");
	if (t->kind != TARGET_LABEL && !k8s_name_valid(t->name))
		return k8s_errorf(err, -EINVAL, 0, NULL, "invalid %s name \"%s\"",
		                  target_kind_name(t->kind), t->name ? t->name : "");
	_cleanup_free_ char *what = NULL, *sel = NULL;
	if (t->kind == TARGET_LABEL) {
		if (labels_selector(t, &sel) < 0 ||
		    asprintf(&what, "label selector '%s' in namespace %s", sel, ns) < 0)
			return -ENOMEM;
		return first_eligible(c, ns, what, sel, t->container, ret, err);
	}
	if (asprintf(&what, "%s %s/%s", target_kind_name(t->kind), ns, t->name) < 0)
		return -ENOMEM;
	_cleanup_json_ json_t *obj = NULL;
	int r;
	switch (t->kind) {
	case TARGET_POD: {
		r = get_obj(c, "/api/v1", ns, "pods", t->name, &obj, err);
		if (r < 0)
			return r;
		return k8s_pod_eligible(obj, t->container, ret, err);
	}
	case TARGET_DEPLOYMENT:
	case TARGET_STATEFULSET:
	case TARGET_REPLICASET:
		r = get_obj(c, "/apis/apps/v1", ns,
		            t->kind == TARGET_DEPLOYMENT    ? "deployments"
		            : t->kind == TARGET_STATEFULSET ? "statefulsets"
		                                            : "replicasets",
		            t->name, &obj, err);
		if (r >= 0)
			r = workload_selector(obj, what, &sel, err);
		break;
	case TARGET_JOB:
		r = get_obj(c, "/apis/batch/v1", ns, "jobs", t->name, &obj, err);
		if (r >= 0)
			r = workload_selector(obj, what, &sel, err);
		break;
	case TARGET_ROLLOUT:
		r = get_obj(c, "/apis/argoproj.io/v1alpha1", ns, "rollouts", t->name, &obj, err);
		if (r >= 0)
			r = rollout_selector(c, ns, obj, what, &sel, err);
		break;
	case TARGET_SERVICE: {
		r = get_obj(c, "/api/v1", ns, "services", t->name, &obj, err);
		if (r < 0)
			return r;
		/* A Service selector is a plain map: equality only. */
		json_t *m = json_object_get(json_object_get(obj, "spec"), "selector");
		if (json_object_size(m) == 0)
			return k8s_errorf(
			        err, -ENOENT, 0, NULL,
			        "%s has no selector, so no pods; target its pods directly", what);
		_cleanup_json_ json_t *ls = json_pack("{s:O}", "matchLabels", m);
		if (!ls)
			return -ENOMEM;
		r = k8s_selector_string(ls, &sel, err);
		break;
	}
	case TARGET_CRONJOB:
		return resolve_cronjob(c, ns, t->name, t->container, ret, err);
	case TARGET_NONE:
	case TARGET_LABEL:
	default:
		return k8s_errorf(err, -EINVAL, 0, NULL, "unsupported target kind");
	}
	if (r < 0)
		return r;
	return first_eligible(c, ns, what, sel, t->container, ret, err);
}
