/* `mirrord-trace ls [-n NS] [--json] [--kubeconfig F] [--context C]`: the
 * targets of a namespace (k8s/ls.h), for people or, with --json, for IDE
 * dialogs in mirrord's shapes: a plain array of target paths, or the rich
 * object when MIRRORD_LS_RICH_OUTPUT=true (what mirrord's IDE plugins set). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "k8s/kubeconfig.h"
#include "k8s/ls.h"
#include "k8s/rest.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: mirrord-trace ls [-n NAMESPACE] [--json] [--kubeconfig FILE] "
	           "[--context NAME]\n\n"
	           "Lists the targets of NAMESPACE (default: MIRRORD_TARGET_NAMESPACE, else the\n"
	           "kubeconfig context's). --json prints mirrord's JSON: an array of target\n"
	           "paths, or {targets, current_namespace, namespaces} with\n"
	           "MIRRORD_LS_RICH_OUTPUT=true.\n");
}

static bool env_true(const char *name)
{
	const char *v = getenv(name);
	bool b = false;
	return v && parse_bool(v, &b) >= 0 && b;
}

int cmd_ls(int argc, char **argv)
{
	const char *ns = getenv("MIRRORD_TARGET_NAMESPACE");
	struct kubeconfig_opts ko = {
	        .path = getenv("MIRRORD_KUBECONFIG"),
	        .context = getenv("MIRRORD_KUBE_CONTEXT"),
	};
	bool json = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;
		if (!strcmp(a, "--json")) {
			json = true;
		} else if ((!strcmp(a, "-n") || !strcmp(a, "--namespace")) && has_val) {
			ns = argv[++i];
		} else if (!strcmp(a, "--kubeconfig") && has_val) {
			ko.path = argv[++i];
		} else if (!strcmp(a, "--context") && has_val) {
			ko.context = argv[++i];
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			log_error("ls: unknown or incomplete option \"%s\"", a);
			usage(stderr);
			return 2;
		}
	}
	if (ko.path && !*ko.path)
		ko.path = NULL;
	if (ko.context && !*ko.context)
		ko.context = NULL;

	struct k8s_error err = {0};
	struct kubeconfig *kc = NULL;
	int r = kubeconfig_load(&ko, &kc, &err);
	_cleanup_free_ char *kns = NULL;
	if (r >= 0 && (!ns || !*ns)) {
		kns = strdup(kc->namespace ? kc->namespace : "default");
		if (!kns)
			abort(); /* the CLI's OOM policy (STYLE.md) */
		ns = kns;
	}
	_cleanup_k8s_client_ struct k8s_client *c = NULL;
	if (r >= 0)
		r = k8s_client_new(kc, &c, &err);
	json_t *rich = NULL;
	if (r >= 0)
		r = k8s_ls(c, ns, &rich, &err);
	if (r == -ENOMEM)
		abort();
	if (r < 0) {
		log_error("ls: %s", err.message ? err.message : strerror(-r));
		k8s_error_clear(&err);
		return 1;
	}
	if (json) {
		json_t *out =
		        env_true("MIRRORD_LS_RICH_OUTPUT") ? json_incref(rich) : k8s_ls_paths(rich);
		if (!out || json_dumpf(out, stdout, JSON_COMPACT) < 0)
			abort();
		putchar('\n');
		json_decref(out);
	} else {
		size_t i;
		json_t *t;
		json_array_foreach(json_object_get(rich, "targets"), i, t)
		        printf("%s%s\n", json_string_value(json_object_get(t, "path")),
		               json_is_true(json_object_get(t, "available")) ? "" : " (not ready)");
	}
	json_decref(rich);
	return fflush(stdout) == 0 ? 0 : 1;
}
