/* `exec` on a Kubernetes target: resolve the target, start the agent Job
 * on its node (or a targetless one), and reach the agent through a
 * port-forward that the session runs over (session_open_io). The Job is
 * deleted by k8s_run_stop(), which every exit path of exec calls. */
#pragma once

#include "cli/config.h"
#include "common/evloop.h"
#include "k8s/rest.h"
#include "session/session.h"

struct k8s_run;

struct k8s_run_opts {
	bool quiet; /* no progress on stderr */
	/* Polled while waiting on the API server; non-zero cancels the
	 * start (-EINTR, nothing logged, nothing left running). */
	k8s_cancel_fn cancelled;
	void *cancel_data;
};

/* Load the kubeconfig (kubeconfig / kube_context), resolve the target
 * unless targetless, and start the agent. Progress goes to stderr: one
 * updating line on a terminal, plain lines otherwise. Logs the error and
 * returns -errno on failure (nothing is left running then). */
int k8s_run_start(const struct config *c, const struct k8s_run_opts *opts, struct k8s_run **ret);

/* Open the port-forward to the agent and the session over it. On failure
 * returns -errno and sets *ret_why (malloc'd). The port-forward lives
 * until k8s_run_stop(), which must come after session_free(). */
int k8s_run_session(struct k8s_run *kr, struct evloop *l, int timeout_ms, struct session **ret,
                    char **ret_why);

/* Close the port-forward, delete the agent Job (Background propagation),
 * free everything. NULL is a no-op. */
void k8s_run_stop(struct k8s_run *kr);
