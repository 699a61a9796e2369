/* Target resolution (mirrord-behaviour.md §2, extended): from a struct
 * target (cli/target.h) and a namespace to the pod, node and container the
 * agent must join. Errors name the object and its state, e.g.
 * "pod lolzspace/x is Pending (ContainerCreating)". */
#pragma once

#include <jansson.h>

#include "cli/target.h"
#include "k8s/error.h"
#include "k8s/rest.h"

struct k8s_resolved {
	char *pod, *namespace, *node;
	char *container;    /* chosen container name */
	char *container_id; /* without the runtime prefix */
	char *runtime;      /* "containerd", "docker" or "cri-o" */
	char *pod_ip;       /* or NULL if the pod has none */
	/* When the container was picked among several, a line saying which
	 * and how to choose another; else NULL. For the caller to print. */
	char *note;
};

void k8s_resolved_free(struct k8s_resolved *r);

/* Resolve t in namespace ns (t->kind != TARGET_NONE). Returns 0 and fills
 * *ret, or -errno with err set: -ENOENT (object or pods missing), -EAGAIN
 * (pods exist but none is eligible now), API errors as k8s_request. */
int k8s_resolve_target(struct k8s_client *c, const struct target *t, const char *ns,
                       struct k8s_resolved *ret, struct k8s_error *err);

/* Pure parts, exposed for tests. */

/* A LabelSelector object ({matchLabels, matchExpressions}) as the
 * labelSelector query string (sorted by key; values sorted), as
 * LabelSelectorAsSelector prints it. -ENOENT for a null selector (matches
 * nothing), "" for {} (matches everything), -EINVAL for a bad operator. */
int k8s_selector_string(const json_t *sel, char **ret, struct k8s_error *err);

/* Check one pod the way mirrord's RuntimeData::from_pod does, choosing the
 * container (explicit, else the default-container annotation, else the
 * first that is not a mesh/sidecar). -EAGAIN for a pod not eligible now,
 * -ENOENT for a missing container, with err naming why. */
int k8s_pod_eligible(const json_t *pod, const char *container, struct k8s_resolved *ret,
                     struct k8s_error *err);
