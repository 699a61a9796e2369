/* Pod eligibility and container choice (resolve.h), pure. */
#include <stdio.h>
#include <string.h>

#include "k8s/internal.h"
#include "k8s/resolve.h"

/* Mesh and injected sidecars that are never the app (mirrord's SKIP_NAMES). */
static const char *const skip_names[] = {
        "istio-proxy", "istio-init",  "linkerd-proxy",    "linkerd-init", "kuma-sidecar",
        "kuma-init",   "vault-agent", "vault-agent-init", "queue-proxy",  "traffic-agent",
};

static bool skipped(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(skip_names); i++)
		if (!strcmp(name, skip_names[i]))
			return true;
	return false;
}

void k8s_resolved_free(struct k8s_resolved *r)
{
	if (!r)
		return;
	free(r->pod);
	free(r->namespace);
	free(r->node);
	free(r->container);
	free(r->container_id);
	free(r->runtime);
	free(r->pod_ip);
	free(r->note);
	*r = (struct k8s_resolved){0};
}

static const char *str_at(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);
	return json_string_value(b ? json_object_get(v, b) : v);
}

/* Why a pod is not Running: the first waiting reason of its containers
 * (ContainerCreating, ErrImagePull, ...), else its status/condition
 * reason (Unschedulable...). */
static const char *pod_reason(const json_t *status)
{
	size_t i;
	json_t *cs;
	json_array_foreach(json_object_get(status, "containerStatuses"), i, cs)
	{
		const char *w = str_at(json_object_get(cs, "state"), "waiting", "reason");
		if (w)
			return w;
	}
	const char *r = json_string_value(json_object_get(status, "reason"));
	if (r)
		return r;
	json_array_foreach(json_object_get(status, "conditions"), i, cs)
	{
		r = json_string_value(json_object_get(cs, "reason"));
		if (r && strcmp(json_string_value(json_object_get(cs, "status")) ?: "", "True"))
			return r;
	}
	return NULL;
}

/* "a, b, c" of the spec's container names, bounded. */
static void container_list(const json_t *pod, char *buf, size_t cap)
{
	size_t i, off = 0;
	json_t *c;
	buf[0] = '\0';
	json_array_foreach(json_object_get(json_object_get(pod, "spec"), "containers"), i, c)
	{
		const char *n = json_string_value(json_object_get(c, "name"));
		if (!n || off >= cap)
			continue;
		int k = snprintf(buf + off, cap - off, "%s%s", i ? ", " : "", n);
		if (k > 0)
			off += (size_t)k;
	}
}

static const json_t *find_status(const json_t *statuses, const char *name)
{
	size_t i;
	json_t *cs;
	json_array_foreach(statuses, i, cs)
	{
		const char *n = json_string_value(json_object_get(cs, "name"));
		if (n && !strcmp(n, name))
			return cs;
	}
	return NULL;
}

static int dupi(const char *s, char **ret)
{
	if (!s)
		return 0;
	return (*ret = strdup(s)) ? 0 : -ENOMEM;
}

int k8s_pod_eligible(const json_t *pod, const char *container, struct k8s_resolved *ret,
                     struct k8s_error *err)
{
	const json_t *meta = json_object_get(pod, "metadata"),
	             *status = json_object_get(pod, "status");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	if (!name)
		return k8s_errorf(err, -EPROTO, 0, NULL, "pod without metadata.name");
	if (!ns)
		ns = "?";
	const char *phase = json_string_value(json_object_get(status, "phase"));
	if (!phase || strcmp(phase, "Running")) {
		const char *why = pod_reason(status);
		return k8s_errorf(err, -EAGAIN, 0, NULL, "pod %s/%s is %s%s%s%s", ns, name,
		                  phase ? phase : "in no phase yet", why ? " (" : "",
		                  why ? why : "", why ? ")" : "");
	}
	if (json_object_get(meta, "deletionTimestamp"))
		return k8s_errorf(err, -EAGAIN, 0, NULL, "pod %s/%s is terminating", ns, name);
	const char *node = str_at(pod, "spec", "nodeName");
	if (!node)
		return k8s_errorf(err, -EAGAIN, 0, NULL, "pod %s/%s is not scheduled to a node", ns,
		                  name);

	const json_t *statuses = json_object_get(status, "containerStatuses");
	char names[512];
	container_list(pod, names, sizeof(names));
	const json_t *cs = NULL;
	_cleanup_free_ char *note = NULL;
	if (container) {
		cs = find_status(statuses, container);
		if (!cs)
			return k8s_errorf(err, -ENOENT, 0, NULL,
			                  "container '%s' not found in pod %s/%s; containers: %s",
			                  container, ns, name, names);
	} else {
		const json_t *ann = json_object_get(meta, "annotations");
		const char *def = json_string_value(
		        json_object_get(ann, "kubectl.kubernetes.io/default-container"));
		if (def)
			cs = find_status(statuses, def);
		size_t candidates = 0, i;
		json_t *s;
		json_array_foreach(statuses, i, s)
		{
			const char *n = json_string_value(json_object_get(s, "name"));
			if (!n || skipped(n))
				continue;
			candidates++;
			if (!cs)
				cs = s;
		}
		if (!cs) /* all are sidecars: the first one, as mirrord does */
			cs = json_array_get(statuses, 0);
		if (!cs)
			return k8s_errorf(err, -EAGAIN, 0, NULL,
			                  "pod %s/%s reports no container statuses yet", ns, name);
		if (!def && candidates > 1 &&
		    asprintf(&note,
		             "pod %s/%s has containers %s; picked '%s' (use .../container/<name> "
		             "to choose)",
		             ns, name, names, json_string_value(json_object_get(cs, "name"))) < 0)
			return -ENOMEM;
	}
	const char *cname = json_string_value(json_object_get(cs, "name"));
	if (!json_is_true(json_object_get(cs, "ready"))) {
		const char *w = str_at(json_object_get(cs, "state"), "waiting", "reason");
		return k8s_errorf(err, -EAGAIN, 0, NULL,
		                  "container '%s' of pod %s/%s is not ready%s%s%s", cname, ns, name,
		                  w ? " (" : "", w ? w : "", w ? ")" : "");
	}
	const char *cid = json_string_value(json_object_get(cs, "containerID"));
	const char *sep = cid ? strstr(cid, "://") : NULL;
	if (!sep || !sep[3] ||
	    !((sep - cid == 6 && !strncmp(cid, "docker", 6)) ||
	      (sep - cid == 10 && !strncmp(cid, "containerd", 10)) ||
	      (sep - cid == 5 && !strncmp(cid, "cri-o", 5))))
		return k8s_errorf(err, -EPROTO, 0, NULL,
		                  "cannot tell the container runtime of '%s' in pod %s/%s from its "
		                  "containerID \"%s\"",
		                  cname, ns, name, cid ? cid : "");
	struct k8s_resolved r = {0};
	if (dupi(name, &r.pod) < 0 || dupi(ns, &r.namespace) < 0 || dupi(node, &r.node) < 0 ||
	    dupi(cname, &r.container) < 0 || dupi(sep + 3, &r.container_id) < 0 ||
	    !(r.runtime = strndup(cid, (size_t)(sep - cid))) ||
	    dupi(json_string_value(json_object_get(status, "podIP")), &r.pod_ip) < 0) {
		k8s_resolved_free(&r);
		return -ENOMEM;
	}
	r.note = TAKE_PTR(note);
	*ret = r;
	return 0;
}
