/* Pieces shared by the two ways of starting the agent: as a Job
 * (agent_job.c) and as an ephemeral container (agent_ephemeral.c). */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "k8s/agent_job.h"

/* The string at o.a (b NULL) or o.a.b, or NULL. */
static inline const char *str_at(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);
	if (b)
		v = json_object_get(v, b);
	return json_string_value(v);
}

/* A container status whose waiting reason never resolves by itself
 * (image pull, config error, crash loop): -EIO with err set, else 0. */
int agent_waiting_fatal(const json_t *cs, const char *ns, const char *pod, struct k8s_error *err);

/* A uniform random number below n (getrandom). */
unsigned agent_rand_below(unsigned n);
unsigned long long agent_now_ms(void);
/* A JSON array of the non-NULL strings v[0..n), or NULL on OOM. */
json_t *agent_strings_array(const char *const *v, size_t n);

/* The agent's command line after its path: --listen 127.0.0.1:PORT (only
 * where the kubelet's port-forward connects: the pod's loopback),
 * --communication-timeout, --log-level, the mode and --container-id. The
 * strings point into a and o, which must outlive the use. */
struct agent_args {
	char listen[32], comm[16], detect[16];
	const char *argv[20];
	size_t n;
};
void agent_args(const struct agent_job_opts *o, const char *mode, unsigned port,
                struct agent_args *a);

/* The error for an agent not ready within agent.startup_timeout; state is
 * the last thing we saw, or NULL. Returns -ETIMEDOUT. */
int agent_startup_timeout(unsigned timeout_s, const char *state, struct k8s_error *err);

/* Follow the container's log until the agent's ready line (mirrord's
 * `agent ready( - version (\S+))?`), by deadline (agent_now_ms() time).
 * *ret_version gets the version or NULL. -ETIMEDOUT, -EIO with err set if
 * the log ended first, or the API error. */
int agent_follow_log(struct k8s_client *c, const char *ns, const char *pod, const char *container,
                     unsigned long long deadline, char **ret_version, struct k8s_error *err);
