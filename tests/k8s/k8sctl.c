/* k8sctl: a tiny debug CLI over k8s/ for the cluster tests (not shipped).
 *   k8sctl [--kubeconfig F] [--context C] ns
 *   k8sctl ... get PATH | list PATH [LABELSEL] | delete PATH | create PATH JSON
 *   k8sctl ... resolve TARGET NAMESPACE
 *   k8sctl ... watch PATH FIELDSEL MAX_EVENTS TIMEOUT_S
 * Errors: the one-line message on stderr, exit 1. */
#include <stdio.h>
#include <string.h>

#include "cli/target.h"
#include "k8s/kubeconfig.h"
#include "k8s/resolve.h"
#include "k8s/rest.h"

static int fail(struct k8s_error *e, int r)
{
	fprintf(stderr, "k8sctl: %s\n", e->message ? e->message : strerror(-r));
	k8s_error_clear(e);
	return 1;
}

struct wctx {
	long max, seen;
};

static int on_event(void *ud, const char *type, json_t *obj)
{
	struct wctx *w = ud;
	json_t *md = json_object_get(obj, "metadata");
	printf("%s %s %s\n", type, json_string_value(json_object_get(md, "name")) ?: "-",
	       json_string_value(json_object_get(json_object_get(obj, "status"), "phase")) ?: "-");
	fflush(stdout);
	return ++w->seen >= w->max ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct kubeconfig_opts o = {0};
	int i = 1;
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (!strcmp(argv[i], "--kubeconfig"))
			o.path = argv[i + 1];
		else if (!strcmp(argv[i], "--context"))
			o.context = argv[i + 1];
	}
	if (i >= argc) {
		fprintf(stderr, "usage: see k8sctl.c\n");
		return 2;
	}
	const char *cmd = argv[i++];
	struct k8s_error err = {0};
	struct kubeconfig *kc = NULL;
	int r = kubeconfig_load(&o, &kc, &err);
	if (r < 0)
		return fail(&err, r);
	if (!strcmp(cmd, "ns")) {
		printf("%s\n", kc->namespace ? kc->namespace : "default");
		kubeconfig_free(kc);
		return 0;
	}
	_cleanup_k8s_client_ struct k8s_client *c = NULL;
	r = k8s_client_new(kc, &c, &err);
	if (r < 0)
		return fail(&err, r);
	json_t *out = NULL;
	if (!strcmp(cmd, "get") && i < argc) {
		r = k8s_get(c, argv[i], &out, &err);
	} else if (!strcmp(cmd, "list") && i < argc) {
		r = k8s_list(c, argv[i], i + 1 < argc ? argv[i + 1] : NULL, NULL, &out, &err);
		size_t k;
		json_t *it;
		json_array_foreach(out, k, it)
		        printf("%s\n", json_string_value(json_object_get(
		                               json_object_get(it, "metadata"), "name")));
		json_decref(out);
		out = NULL;
	} else if (!strcmp(cmd, "delete") && i < argc) {
		r = k8s_delete(c, argv[i], &out, &err);
	} else if (!strcmp(cmd, "create") && i + 1 < argc) {
		json_t *body = json_loads(argv[i + 1], 0, NULL);
		r = body ? k8s_create(c, argv[i], body, &out, &err) : -EINVAL;
		json_decref(body);
	} else if (!strcmp(cmd, "resolve") && i + 1 < argc) {
		struct target t;
		char *msg = NULL;
		if (target_parse(argv[i], &t, &msg) < 0) {
			fprintf(stderr, "k8sctl: %s\n", msg);
			return 1;
		}
		struct k8s_resolved res = {0};
		r = k8s_resolve_target(c, &t, argv[i + 1], &res, &err);
		target_free(&t);
		if (r >= 0) {
			printf("pod=%s namespace=%s node=%s container=%s runtime=%s id=%s ip=%s\n",
			       res.pod, res.namespace, res.node, res.container, res.runtime,
			       res.container_id, res.pod_ip ? res.pod_ip : "-");
			if (res.note)
				fprintf(stderr, "note: %s\n", res.note);
		}
		k8s_resolved_free(&res);
	} else if (!strcmp(cmd, "watch") && i + 3 < argc) {
		struct wctx w = {.max = strtol(argv[i + 2], NULL, 10)};
		struct k8s_watch_opts wo = {.field_selector = *argv[i + 1] ? argv[i + 1] : NULL,
		                            .timeout_s = (unsigned)strtoul(argv[i + 3], NULL, 10)};
		r = k8s_watch(c, argv[i], &wo, on_event, &w, &err);
	} else {
		fprintf(stderr, "k8sctl: bad command\n");
		return 2;
	}
	if (r < 0)
		return fail(&err, r);
	if (out) {
		char *s = json_dumps(out, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
		json_decref(out);
	}
	return 0;
}
