/* The agent as an ephemeral container in the target pod (agent_job.h). */
#include <stdio.h>
#include <string.h>

#include "k8s/agent_internal.h"
#include "k8s/agent_job.h"
#include "k8s/internal.h"

#define GID_MIN 3000u
#define GID_MAX 65534u
/* Length of the watch chunks between progress ticks. */
#define WATCH_TICK_S 1u

int agent_ephemeral_state(const json_t *pod, const char *container, char **ret_state,
                          struct k8s_error *err)
{
	const char *ns = str_at(pod, "metadata", "namespace") ?: "?";
	const char *name = str_at(pod, "metadata", "name") ?: "?";
	const char *phase = str_at(json_object_get(pod, "status"), "phase", NULL) ?: "Pending";
	const json_t *cs = NULL, *e;
	size_t i;

	json_array_foreach(
	        json_object_get(json_object_get(pod, "status"), "ephemeralContainerStatuses"), i,
	        e) if (!strcmp(str_at(e, "name", NULL) ?: "", container)) cs = e;
	if (strcmp(phase, "Running") != 0)
		return k8s_errorf(err, -EIO, 0, NULL,
		                  "target pod %s/%s is %s: an ephemeral agent needs it Running", ns,
		                  name, phase);
	int r = agent_waiting_fatal(cs, ns, name, err);
	if (r < 0)
		return r;
	const json_t *state = json_object_get(cs, "state");
	const json_t *term = json_object_get(state, "terminated");
	if (term)
		return k8s_errorf(
		        err, -EIO, 0, str_at(term, "reason", NULL),
		        "the agent container %s in pod %s/%s exited with code %lld before "
		        "it was ready; see kubectl logs -n %s %s -c %s",
		        container, ns, name,
		        (long long)json_integer_value(json_object_get(term, "exitCode")), ns, name,
		        container);
	if (json_object_get(state, "running"))
		return 1;
	if (ret_state) {
		const char *why = str_at(json_object_get(state, "waiting"), "reason", NULL);
		if (asprintf(ret_state, "pod %s/%s: agent container %s%s%s", ns, name,
		             why ? "waiting (" : "not started yet", why ?: "",
		             why ? ")" : "") < 0) {
			*ret_state = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

/* The target container's env and envFrom, copied to the agent: mirrord
 * does so, so that an agent started this way sees what the container
 * sees even without reading /proc/PID/environ. */
static int copy_env(struct k8s_client *c, const char *ns, const char *pod, const char *container,
                    json_t *spec, struct k8s_error *err)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "/api/v1/namespaces/%s/pods/%s", ns, pod) < 0)
		return -ENOMEM;
	_cleanup_json_ json_t *p = NULL;
	int r = k8s_get(c, path, &p, err);
	if (r < 0)
		return r;
	size_t i;
	json_t *ct;
	json_array_foreach(json_object_get(json_object_get(p, "spec"), "containers"), i, ct)
	{
		if (strcmp(str_at(ct, "name", NULL) ?: "", container) != 0)
			continue;
		static const char *const keys[] = {"env", "envFrom"};
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
			json_t *v = json_object_get(ct, keys[k]);
			if (json_is_array(v) && json_array_size(v) &&
			    json_object_set(spec, keys[k], v) < 0)
				return -ENOMEM;
		}
		return 0;
	}
	return k8s_errorf(err, -ENOENT, 0, NULL, "container '%s' not found in pod %s/%s", container,
	                  ns, pod);
}

static json_t *container_spec(const struct agent_job_opts *o, const char *name, const char *target,
                              unsigned port)
{
	static const char *const cap_names[] = {"NET_ADMIN", "SYS_PTRACE", "SYS_ADMIN"};
	const char *caps[ARRAY_SIZE(cap_names)];
	size_t nc = 0;
	struct agent_args aa;

	agent_args(o, "ephemeral", port, &aa);
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (o->caps & (1u << i))
			caps[nc++] = cap_names[i];
	json_t *sc = json_pack("{s:I, s:b, s:{s:o}}", "runAsGroup",
	                       (json_int_t)(GID_MIN + agent_rand_below(GID_MAX - GID_MIN + 1)),
	                       "privileged", o->privileged, "capabilities", "add",
	                       agent_strings_array(caps, nc));
	/* A privileged agent must run as root even in a pod that says
	 * runAsNonRoot (mirrord does the same). */
	if (sc && o->privileged &&
	    (json_object_set_new(sc, "runAsNonRoot", json_false()) < 0 ||
	     json_object_set_new(sc, "runAsUser", json_integer(0)) < 0)) {
		json_decref(sc);
		return NULL;
	}
	return json_pack(
	        "{s:s, s:s, s:s, s:o, s:o, s:s, s:o}", "name", name, "image",
	        o->image ? o->image : AGENT_JOB_IMAGE_DEFAULT, "imagePullPolicy",
	        o->image_pull_policy ? o->image_pull_policy : "IfNotPresent", "command",
	        agent_strings_array((const char *[]){o->command ? o->command : AGENT_JOB_CONTAINER},
	                            1),
	        "args", agent_strings_array(aa.argv, aa.n), "targetContainerName", target,
	        "securityContext", sc);
}

struct ewaiter {
	struct agent_job *job;
	agent_job_progress_fn progress;
	void *ud;
	unsigned long long start;
	char *state;
	struct k8s_error *err;
};

static void etick(struct ewaiter *w, enum agent_job_stage stage, const char *detail)
{
	if (w->progress)
		w->progress(w->ud, stage, detail, (unsigned)(agent_now_ms() - w->start));
}

static int on_event(void *ud, const char *type, json_t *pod)
{
	struct ewaiter *w = ud;
	if (!strcmp(type, "BOOKMARK"))
		return 0;
	if (!strcmp(type, "DELETED"))
		return k8s_errorf(w->err, -EIO, 0, NULL,
		                  "target pod %s/%s was deleted while the agent started",
		                  w->job->namespace, w->job->pod);
	_cleanup_free_ char *state = NULL;
	int r = agent_ephemeral_state(pod, w->job->container, &state, w->err);
	if (r != 0)
		return r;
	free(w->state);
	w->state = TAKE_PTR(state);
	etick(w, AGENT_JOB_WAITING, w->state);
	return 0;
}

static int wait_ready(struct k8s_client *c, struct ewaiter *w, unsigned timeout_s)
{
	unsigned long long deadline = w->start + (unsigned long long)timeout_s * 1000u;
	_cleanup_free_ char *path = NULL, *fsel = NULL;
	if (asprintf(&path, "/api/v1/namespaces/%s/pods", w->job->namespace) < 0 ||
	    asprintf(&fsel, "metadata.name=%s", w->job->pod) < 0)
		return -ENOMEM;
	for (;;) {
		if (agent_now_ms() >= deadline)
			return -ETIMEDOUT;
		struct k8s_watch_opts wo = {.field_selector = fsel, .timeout_s = WATCH_TICK_S};
		int r = k8s_watch(c, path, &wo, on_event, w, w->err);
		if (r < 0)
			return r;
		if (r > 0)
			break;
		etick(w, AGENT_JOB_WAITING,
		      w->state ? w->state : "waiting for the agent container");
	}
	etick(w, AGENT_JOB_RUNNING, w->job->pod);
	return agent_follow_log(c, w->job->namespace, w->job->pod, w->job->container, deadline,
	                        &w->job->version, w->err);
}

int agent_ephemeral_start(struct k8s_client *c, const struct agent_job_opts *o, const char *pod,
                          const char *container, agent_job_progress_fn progress, void *userdata,
                          struct agent_job **ret, struct k8s_error *err)
{
	if (!o->namespace || !k8s_label_valid(o->namespace) || !pod || !k8s_name_valid(pod) ||
	    !container || !o->container_id || !*o->container_id)
		return k8s_errorf(err, -EINVAL, 0, NULL,
		                  "an ephemeral agent needs the target's namespace, pod, container "
		                  "and container id");
	_cleanup_agent_job_ struct agent_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->namespace = strdup(o->namespace)) || !(j->pod = strdup(pod)))
		return -ENOMEM;
	int r = o->name ? ((j->container = strdup(o->name)) ? 0 : -ENOMEM)
	                : agent_job_random_name(&j->container);
	if (r < 0)
		return r;
	j->port = o->port ? o->port : agent_job_random_port();

	_cleanup_json_ json_t *spec = container_spec(o, j->container, container, j->port);
	if (!spec)
		return -ENOMEM;
	r = copy_env(c, j->namespace, pod, container, spec, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *patch =
	        json_pack("{s:{s:[O]}}", "spec", "ephemeralContainers", spec);
	_cleanup_free_ char *path = NULL;
	if (!patch || asprintf(&path, "/api/v1/namespaces/%s/pods/%s/ephemeralcontainers",
	                       j->namespace, pod) < 0)
		return -ENOMEM;
	struct ewaiter w = {j, progress, userdata, agent_now_ms(), NULL, err};
	r = k8s_patch(c, path, K8S_PATCH_STRATEGIC, patch, NULL, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *what = NULL;
	if (asprintf(&what, "ephemeral container %s in pod %s", j->container, pod) < 0)
		what = NULL;
	etick(&w, AGENT_JOB_CREATED, what ? what : j->container);
	unsigned timeout_s = o->startup_timeout_s ? o->startup_timeout_s : 60;
	r = wait_ready(c, &w, timeout_s);
	if (r == -ETIMEDOUT)
		r = agent_startup_timeout(timeout_s, w.state, err);
	free(w.state);
	if (r < 0)
		return r; /* nothing to delete: the container ends with its client */
	etick(&w, AGENT_JOB_READY, j->version ? j->version : "");
	*ret = TAKE_PTR(j);
	return 0;
}
