/* `mirrord-trace ls`: the targets of a namespace, in the shapes mirrord's
 * `ls` gives IDEs. mirrord prints a plain JSON array of target paths, or,
 * with MIRRORD_LS_RICH_OUTPUT=true (what the IntelliJ and VS Code plugins
 * set), {"targets":[{"path","available"}],"current_namespace","namespaces"}. */
#pragma once

#include <jansson.h>

#include "k8s/error.h"
#include "k8s/rest.h"

/* List ns's targets. *ret is the rich object:
 *   {"targets": [{"path": "pod/x/container/c", "available": true}, ...],
 *    "current_namespace": ns, "namespaces": ["default", ...]}
 * "targetless" comes first and is always available. Pods give one path per
 * container (mesh sidecars left out), available when k8s_pod_eligible()
 * accepts that container; workloads (deployment, statefulset, replicaset
 * not owned by a deployment, job, cronjob, service with a selector, Argo
 * rollout) are available when they have a ready replica / an active job /
 * a selector. Kinds the cluster does not serve (404) or the role may not
 * list (403) are left out, except pods: their errors fail the call. The
 * namespaces are the role's to list, else just ns. */
int k8s_ls(struct k8s_client *c, const char *ns, json_t **ret, struct k8s_error *err);

/* The plain form: the paths of the available targets, as a JSON array
 * (new reference). NULL on -ENOMEM. */
json_t *k8s_ls_paths(const json_t *rich);
