/* The agent as a Kubernetes Job (mirrord-behaviour.md §3.1-3.2, k8s-wire.md
 * §2.3): build the Job, create it, wait until its pod runs and the agent
 * logged "agent ready", and delete it with Background propagation.
 *
 * Targeted: a Job in the agent namespace pinned to the target's node
 * (nodeName), hostPID, the capabilities the features need, args
 * `targeted --container-id ID`. Targetless: a plain Job in the target
 * namespace, no hostPID, no capabilities, args `targetless`.
 * If mirrord-trace dies without deleting the Job, ttlSecondsAfterFinished
 * and the agent's own --communication-timeout clean up. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "k8s/error.h"
#include "k8s/rest.h"

/* The one container of the agent pod; also the pods/log container. */
#define AGENT_JOB_CONTAINER "mirrord-trace-agent"
#define AGENT_JOB_IMAGE_DEFAULT "ghcr.io/mirrord-trace/mirrord-trace-agent:" MT_VERSION
/* Random names are AGENT_JOB_NAME_PREFIX + 10 lowercase alnum (mirrord's
 * "mirrord-agent-" + 10); random ports come from [30000, 65535]. */
#define AGENT_JOB_NAME_PREFIX "mirrord-trace-agent-"

/* Capabilities of the targeted agent (default: all three, as mirrord). */
enum {
	AGENT_CAP_NET_ADMIN = 1u << 0,  /* iptables redirection (steal) */
	AGENT_CAP_SYS_PTRACE = 1u << 1, /* /proc/PID/ns of another user's process */
	AGENT_CAP_SYS_ADMIN = 1u << 2,  /* setns() into the target's namespaces */
	AGENT_CAP_ALL = 7u,
};

struct agent_job_opts {
	const char *namespace; /* where the Job goes (required) */
	/* Targeted when container_id is set: node is then required. Both
	 * NULL: targetless. */
	const char *node, *container_id;
	const char *image;                /* NULL: AGENT_JOB_IMAGE_DEFAULT */
	const char *image_pull_policy;    /* NULL: IfNotPresent */
	const char *command;              /* the image's agent path; NULL: AGENT_JOB_CONTAINER */
	const char *log_level;            /* NULL: the agent's default */
	unsigned ttl_s;                   /* ttlSecondsAfterFinished; 0 means 0 */
	unsigned communication_timeout_s; /* 0: 30 */
	unsigned startup_timeout_s;       /* create + ready; 0: 60 */
	unsigned caps;                    /* AGENT_CAP_*; targetless ignores it */
	bool privileged;                  /* never for targetless */
	/* Extra labels/annotations (objects of strings) for Job and pod, or
	 * NULL. Borrowed. */
	const json_t *labels, *annotations;
	/* mirrord's agent.* pod settings, passed through as given, or NULL:
	 * tolerations (replaces the default tolerate-everything of a
	 * targeted agent), nodeSelector, container resources (replaces the
	 * default requests/limits), imagePullSecrets, pod securityContext. */
	const json_t *tolerations, *node_selector, *resources, *image_pull_secrets,
	        *security_context;
	const char *service_account, *priority_class; /* or NULL */
	bool no_mesh_opt_out; /* agent.disable_mesh_sidecar_injection: false */
	/* Incoming traffic: agent.http_detection_timeout (0: the agent's
	 * default), agent.flush_connections false, agent.nftables ("nft",
	 * "iptables", or NULL: the agent picks). */
	unsigned http_detection_timeout_s;
	bool no_flush_connections;
	const char *firewall;
	/* Fixed name/port (tests); NULL / 0: random. */
	const char *name;
	unsigned port;
};

/* Build the Job object (pure). name must be a DNS-1123 label of at most 63
 * characters, port in 1..65535, gid the agent's runAsGroup. -EINVAL with
 * err set for missing or invalid options. */
int agent_job_spec(const struct agent_job_opts *o, const char *name, unsigned port, unsigned gid,
                   json_t **ret, struct k8s_error *err);

/* A random Job name (AGENT_JOB_NAME_PREFIX + 10 chars) and port. */
int agent_job_random_name(char **ret);
unsigned agent_job_random_port(void);

enum agent_job_stage {
	AGENT_JOB_CREATED, /* detail: the Job name */
	AGENT_JOB_WAITING, /* detail: pod name and state ("Pending (ContainerCreating)") */
	AGENT_JOB_RUNNING, /* detail: pod name; now reading its log */
	AGENT_JOB_READY,   /* detail: the agent's version, or "" */
};
/* Progress while waiting, for the caller to print; elapsed since start.
 * Also called about once a second while nothing changes. */
typedef void (*agent_job_progress_fn)(void *userdata, enum agent_job_stage stage,
                                      const char *detail, unsigned elapsed_ms);

struct agent_job {
	char *namespace, *name; /* the Job; name NULL for an ephemeral agent */
	char *pod;              /* its pod (ephemeral: the target pod) */
	char *container;        /* ephemeral only: the agent's container */
	char *version;          /* from "agent ready - version X", or NULL */
	unsigned port;          /* the agent listens on pod:port */
};

void agent_job_free(struct agent_job *j);
static inline void agent_job_freep(struct agent_job **j)
{
	agent_job_free(*j);
}
#define _cleanup_agent_job_ _cleanup_(agent_job_freep)

/* Create the Job and wait until the agent is ready, within
 * o->startup_timeout_s. On failure after the Job was created it is deleted
 * again (best effort) and the error says why the agent did not start:
 * -ETIMEDOUT, -EIO (image pull, pod failed/finished/deleted, FailedCreate
 * events such as Pod Security), API errors as k8s_request. */
int agent_job_start(struct k8s_client *c, const struct agent_job_opts *o,
                    agent_job_progress_fn progress, void *userdata, struct agent_job **ret,
                    struct k8s_error *err);

/* The agent as an ephemeral container in the target pod (-e,
 * agent.ephemeral; mirrord-behaviour.md §3.3): PATCH
 * pods/POD/ephemeralcontainers (strategic merge) with a container that
 * targets `container`, carries that container's env and envFrom, and runs
 * `ephemeral --container-id ID` (o->container_id). o->namespace is the
 * pod's. Then wait as agent_job_start does. The result has no Job (name
 * NULL): ephemeral containers cannot be removed, the agent exits when its
 * client leaves, so agent_job_delete() has nothing to do. */
int agent_ephemeral_start(struct k8s_client *c, const struct agent_job_opts *o, const char *pod,
                          const char *container, agent_job_progress_fn progress, void *userdata,
                          struct agent_job **ret, struct k8s_error *err);

/* Pure, for tests: the ephemeral agent container's startup state in a pod
 * object, as agent_job_pod_state(). */
int agent_ephemeral_state(const json_t *pod, const char *container, char **ret_state,
                          struct k8s_error *err);

/* DELETE the Job with propagationPolicy=Background (its pod goes too). A
 * Job already gone (TTL) is success. Does not free j. */
int agent_job_delete(struct k8s_client *c, const struct agent_job *j, struct k8s_error *err);

/* Pure, for tests: what a pod object says about the agent's startup.
 * 1 = running and ready, 0 = still starting (*ret_state, if not NULL, gets
 * a malloc'd "Pending (ContainerCreating)"), -EIO with err set = it will
 * never start (image pull, Failed, Succeeded). */
int agent_job_pod_state(const json_t *pod, char **ret_state, struct k8s_error *err);

/* Pure, for tests: match one log line against mirrord's
 * `agent ready( - version (\S+))?`. true on a match; *ret_version gets the
 * version or NULL. -ENOMEM is reported as false with *ret_version NULL. */
bool agent_job_ready_line(const char *line, char **ret_version);
