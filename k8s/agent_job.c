/* The agent Job (agent_job.h): spec, create, wait ready, delete. */
#include "k8s/agent_job.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "k8s/agent_internal.h"
#include "k8s/internal.h"

/* mirrord's port range for the agent's listen port, and runAsGroup range
 * (mirrord-behaviour.md §3.1). */
#define PORT_MIN 30000u
#define PORT_MAX 65535u
#define GID_MIN 3000u
#define GID_MAX 65534u
/* A log line longer than this is cut: "agent ready" is short, and the cap
 * keeps a chatty or hostile agent log from growing our buffer. */
#define LOG_LINE_MAX 4096u
/* Length of the watch chunks between progress ticks and event checks. */
#define WATCH_TICK_S 1u

unsigned agent_rand_below(unsigned n)
{
	unsigned v = 0;
	/* getrandom() of 4 bytes from an initialised pool cannot fail short;
	 * on the impossible failure the fallback is only less random. */
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (unsigned)time(NULL) ^ (unsigned)clock();
	return v % n;
}

int agent_job_random_name(char **ret)
{
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	char sfx[11];
	for (size_t i = 0; i < 10; i++)
		sfx[i] = alnum[agent_rand_below(sizeof(alnum) - 1)];
	sfx[10] = '\0';
	return asprintf(ret, AGENT_JOB_NAME_PREFIX "%s", sfx) < 0 ? -ENOMEM : 0;
}

unsigned agent_job_random_port(void)
{
	return PORT_MIN + agent_rand_below(PORT_MAX - PORT_MIN + 1);
}

json_t *agent_strings_array(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		if (v[i] && json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* Base map plus the user's extras; the user's values win, as with
 * mirrord's agent.labels / agent.annotations. */
static json_t *merged(json_t *base, const json_t *extra)
{
	if (!base)
		return NULL;
	if (extra && json_object_update(base, (json_t *)extra) < 0) {
		json_decref(base);
		return NULL;
	}
	return base;
}

void agent_args(const struct agent_job_opts *o, const char *mode, unsigned port,
                struct agent_args *a)
{
	size_t n = 0;

	snprintf(a->listen, sizeof(a->listen), "127.0.0.1:%u", port);
	snprintf(a->comm, sizeof(a->comm), "%u",
	         o->communication_timeout_s ? o->communication_timeout_s : 30);
	a->argv[n++] = "--listen";
	a->argv[n++] = a->listen;
	a->argv[n++] = "--communication-timeout";
	a->argv[n++] = a->comm;
	if (o->log_level) {
		a->argv[n++] = "--log-level";
		a->argv[n++] = o->log_level;
	}
	if (o->http_detection_timeout_s) {
		snprintf(a->detect, sizeof(a->detect), "%u", o->http_detection_timeout_s);
		a->argv[n++] = "--http-detection-timeout";
		a->argv[n++] = a->detect;
	}
	if (o->no_flush_connections)
		a->argv[n++] = "--no-flush-connections";
	if (o->firewall) {
		a->argv[n++] = "--firewall";
		a->argv[n++] = o->firewall;
	}
	a->argv[n++] = mode;
	if (o->container_id) {
		a->argv[n++] = "--container-id";
		a->argv[n++] = o->container_id;
	}
	a->n = n;
}

static int check_string_map(const json_t *m, const char *what, struct k8s_error *err)
{
	if (!m)
		return 0;
	if (!json_is_object(m))
		return k8s_errorf(err, -EINVAL, 0, NULL, "agent %s must be a map of strings", what);
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)m, k, v) if (!json_is_string(v)) return k8s_errorf(
	        err, -EINVAL, 0, NULL, "agent %s \"%s\" must be a string", what, k);
	return 0;
}

int agent_job_spec(const struct agent_job_opts *o, const char *name, unsigned port, unsigned gid,
                   json_t **ret, struct k8s_error *err)
{
	bool targeted = o->container_id != NULL;
	if (!o->namespace || !k8s_label_valid(o->namespace))
		return k8s_errorf(err, -EINVAL, 0, NULL, "invalid agent namespace \"%s\"",
		                  o->namespace ? o->namespace : "");
	/* A Job name is a label: its pods carry job-name=<name>. */
	if (!name || !k8s_label_valid(name))
		return k8s_errorf(err, -EINVAL, 0, NULL, "invalid agent Job name \"%s\"",
		                  name ? name : "");
	if (port == 0 || port > 65535)
		return k8s_errorf(err, -EINVAL, 0, NULL, "invalid agent port %u", port);
	if (targeted && (!o->node || !*o->node || !*o->container_id))
		return k8s_errorf(err, -EINVAL, 0, NULL,
		                  "a targeted agent needs the target's node and container id");
	int r = check_string_map(o->labels, "labels", err);
	if (r >= 0)
		r = check_string_map(o->annotations, "annotations", err);
	if (r < 0)
		return r;

	struct agent_args aa;
	agent_args(o, targeted ? "targeted" : "targetless", port, &aa);

	/* Labels and mesh opt-outs go on the Job and on its pod: the sidecar
	 * injectors look at the pod (mirrord-behaviour.md §3.2). */
	_cleanup_json_ json_t *labels = merged(json_pack("{s:s, s:s}", "app", "mirrord-trace",
	                                                 "kuma.io/sidecar-injection", "disabled"),
	                                       o->labels);
	_cleanup_json_ json_t *annotations =
	        merged(o->no_mesh_opt_out ? json_object()
	                                  : json_pack("{s:s, s:s}", "sidecar.istio.io/inject",
	                                              "false", "linkerd.io/inject", "disabled"),
	               o->annotations);
	json_t *cmd = agent_strings_array(
	        (const char *[]){o->command ? o->command : AGENT_JOB_CONTAINER}, 1);
	json_t *argv = agent_strings_array(aa.argv, aa.n);
	json_t *sc = json_pack("{s:I}", "runAsGroup", (json_int_t)gid);
	if (!labels || !annotations || !cmd || !argv || !sc) {
		json_decref(cmd);
		json_decref(argv);
		json_decref(sc);
		return -ENOMEM;
	}
	if (targeted) {
		static const char *const cap_names[] = {"NET_ADMIN", "SYS_PTRACE", "SYS_ADMIN"};
		const char *caps[ARRAY_SIZE(cap_names)];
		size_t nc = 0;
		for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
			if (o->caps & (1u << i))
				caps[nc++] = cap_names[i];
		json_t *add = agent_strings_array(caps, nc);
		if (!add ||
		    json_object_set_new(sc, "privileged", json_boolean(o->privileged)) < 0 ||
		    json_object_set_new(sc, "capabilities", json_pack("{s:o}", "add", add)) < 0) {
			json_decref(cmd);
			json_decref(argv);
			json_decref(sc);
			return -ENOMEM;
		}
	}
	json_t *resources =
	        o->resources ? json_deep_copy(o->resources)
	                     : json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "requests", "cpu", "1m",
	                                 "memory", "1Mi", "limits", "cpu", "1", "memory", "100Mi");
	json_t *container =
	        json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "name", AGENT_JOB_CONTAINER,
	                  "image", o->image ? o->image : AGENT_JOB_IMAGE_DEFAULT, "imagePullPolicy",
	                  o->image_pull_policy ? o->image_pull_policy : "IfNotPresent", "command",
	                  cmd, "args", argv, "securityContext", sc, "resources", resources);
	_cleanup_json_ json_t *pod_spec =
	        json_pack("{s:s, s:[o]}", "restartPolicy", "Never", "containers", container);
	if (!pod_spec)
		return -ENOMEM;
	/* nodeName bypasses the scheduler, so NoSchedule taints do not
	 * matter, but NoExecute ones do: a targeted agent tolerates
	 * everything unless agent.tolerations says otherwise. hostPID lets
	 * the agent find the container's pid by its cgroup. */
	json_t *tolerations = o->tolerations ? json_deep_copy(o->tolerations)
	                      : targeted     ? json_pack("[{s:s}]", "operator", "Exists")
	                                     : NULL;
	if ((targeted && (json_object_set_new(pod_spec, "nodeName", json_string(o->node)) < 0 ||
	                  json_object_set_new(pod_spec, "hostPID", json_true()) < 0)) ||
	    (tolerations && json_object_set_new(pod_spec, "tolerations", tolerations) < 0) ||
	    (o->node_selector &&
	     json_object_set_new(pod_spec, "nodeSelector", json_deep_copy(o->node_selector)) < 0) ||
	    (o->image_pull_secrets &&
	     json_object_set_new(pod_spec, "imagePullSecrets",
	                         json_deep_copy(o->image_pull_secrets)) < 0) ||
	    (o->security_context && json_object_set_new(pod_spec, "securityContext",
	                                                json_deep_copy(o->security_context)) < 0) ||
	    (o->service_account && json_object_set_new(pod_spec, "serviceAccountName",
	                                               json_string(o->service_account)) < 0) ||
	    (o->priority_class && json_object_set_new(pod_spec, "priorityClassName",
	                                              json_string(o->priority_class)) < 0))
		return -ENOMEM;
	json_t *job = json_pack(
	        "{s:s, s:s, s:{s:s, s:O, s:O}, s:{s:I, s:i, s:{s:{s:O, s:O}, s:o}}}", "apiVersion",
	        "batch/v1", "kind", "Job", "metadata", "name", name, "labels", labels,
	        "annotations", annotations, "spec", "ttlSecondsAfterFinished", (json_int_t)o->ttl_s,
	        "backoffLimit", 0, "template", "metadata", "labels", labels, "annotations",
	        annotations, "spec", TAKE_PTR(pod_spec));
	if (!job)
		return -ENOMEM;
	*ret = job;
	return 0;
}

void agent_job_free(struct agent_job *j)
{
	if (!j)
		return;
	free(j->namespace);
	free(j->name);
	free(j->pod);
	free(j->container);
	free(j->version);
	free(j);
}

static const json_t *agent_status(const json_t *pod)
{
	size_t i;
	json_t *cs;
	json_array_foreach(
	        json_object_get(json_object_get(pod, "status"), "containerStatuses"), i,
	        cs) if (!strcmp(str_at(cs, "name", NULL) ?: "", AGENT_JOB_CONTAINER)) return cs;
	return NULL;
}

int agent_waiting_fatal(const json_t *cs, const char *ns, const char *pod, struct k8s_error *err)
{
	const json_t *waiting = json_object_get(json_object_get(cs, "state"), "waiting");
	const char *wreason = str_at(waiting, "reason", NULL);
	const char *wmsg = str_at(waiting, "message", NULL);

	/* These never resolve by waiting (k8s-wire.md §2.3): fail now rather
	 * than sit out the whole startup timeout. */
	static const char *const fatal[] = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
	                                    "CreateContainerConfigError", "CrashLoopBackOff"};
	for (size_t i = 0; wreason && i < ARRAY_SIZE(fatal); i++) {
		if (strcmp(wreason, fatal[i]) != 0)
			continue;
		if (strstr(wreason, "Image"))
			return k8s_errorf(err, -EIO, 0, wreason,
			                  "agent container failed to pull image \"%s\" (%s)%s%s",
			                  str_at(cs, "image", NULL) ?: "?", wreason,
			                  wmsg ? ": " : "", wmsg ?: "");
		return k8s_errorf(err, -EIO, 0, wreason, "agent pod %s/%s cannot start (%s)%s%s",
		                  ns, pod, wreason, wmsg ? ": " : "", wmsg ?: "");
	}
	return 0;
}

int agent_job_pod_state(const json_t *pod, char **ret_state, struct k8s_error *err)
{
	const char *ns = str_at(pod, "metadata", "namespace") ?: "?";
	const char *name = str_at(pod, "metadata", "name") ?: "?";
	const json_t *st = json_object_get(pod, "status");
	const char *phase = str_at(st, "phase", NULL) ?: "Pending";
	const json_t *cs = agent_status(pod);
	const json_t *state = json_object_get(cs, "state");
	const json_t *waiting = json_object_get(state, "waiting");
	const json_t *term = json_object_get(state, "terminated");
	const char *wreason = str_at(waiting, "reason", NULL);
	int r = agent_waiting_fatal(cs, ns, name, err);

	if (r < 0)
		return r;
	if (!strcmp(phase, "Failed")) {
		const char *reason = str_at(st, "reason", NULL), *msg = str_at(st, "message", NULL);
		if (reason || msg)
			return k8s_errorf(err, -EIO, 0, reason, "agent pod %s/%s failed: %s%s%s",
			                  ns, name, reason ?: "", reason && msg ? ": " : "",
			                  msg ?: "");
		json_int_t code = json_integer_value(json_object_get(term, "exitCode"));
		return k8s_errorf(err, -EIO, 0, NULL,
		                  "agent pod %s/%s failed: the agent exited with code %lld; see "
		                  "its log (kubectl logs -n %s %s)",
		                  ns, name, (long long)code, ns, name);
	}
	if (!strcmp(phase, "Succeeded"))
		return k8s_errorf(err, -EIO, 0, NULL, "agent pod %s/%s unexpectedly finished", ns,
		                  name);
	if (!strcmp(phase, "Running") && json_object_get(state, "running") &&
	    json_is_true(json_object_get(cs, "ready")))
		return 1;
	if (ret_state) {
		const char *why = wreason;
		if (!why)
			why = !strcmp(phase, "Running") ? "container not ready" : NULL;
		if (asprintf(ret_state, "%s%s%s%s", phase, why ? " (" : "", why ?: "",
		             why ? ")" : "") < 0) {
			*ret_state = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

bool agent_job_ready_line(const char *line, char **ret_version)
{
	*ret_version = NULL;
	const char *p = strstr(line, "agent ready");
	if (!p)
		return false;
	p += strlen("agent ready");
	if (!strncmp(p, " - version ", 11)) {
		p += 11;
		size_t n = strcspn(p, " \t\r\n");
		if (n)
			*ret_version = strndup(p, n);
	}
	return true;
}

unsigned long long agent_now_ms(void)
{
	return now_ns() / 1000000u;
}

struct waiter {
	struct k8s_client *c;
	struct agent_job *job;
	agent_job_progress_fn progress;
	void *ud;
	unsigned long long start;
	char *state; /* last "pod x is Pending (...)" for progress and timeout */
	struct k8s_error *err;
};

static unsigned elapsed(const struct waiter *w)
{
	return (unsigned)(agent_now_ms() - w->start);
}

static void tick(struct waiter *w, enum agent_job_stage stage, const char *detail)
{
	if (w->progress)
		w->progress(w->ud, stage, detail, elapsed(w));
}

static int on_pod_event(void *ud, const char *type, json_t *pod)
{
	struct waiter *w = ud;
	const char *name = str_at(pod, "metadata", "name");
	if (!strcmp(type, "BOOKMARK") || !name)
		return 0;
	if (!w->job->pod || strcmp(w->job->pod, name) != 0) {
		free(w->job->pod);
		if (!(w->job->pod = strdup(name)))
			return -ENOMEM;
	}
	if (!strcmp(type, "DELETED"))
		return k8s_errorf(w->err, -EIO, 0, NULL, "agent pod %s/%s was unexpectedly deleted",
		                  w->job->namespace, name);
	_cleanup_free_ char *state = NULL;
	int r = agent_job_pod_state(pod, &state, w->err);
	if (r != 0)
		return r; /* 1 (running and ready) stops the watch successfully */
	free(w->state);
	if (asprintf(&w->state, "pod %s/%s is %s", w->job->namespace, name, state) < 0) {
		w->state = NULL;
		return -ENOMEM;
	}
	tick(w, AGENT_JOB_WAITING, w->state);
	return 0;
}

/* Pod Security and quota rejections leave the Job without pods; the only
 * trace is a FailedCreate Event on the Job (k8s-wire.md §2.3). A cluster
 * that serves no events, or a role that may not list them, just means we
 * learn nothing here. */
static int check_job(struct waiter *w)
{
	_cleanup_free_ char *path = NULL, *fsel = NULL;
	if (asprintf(&path, "/apis/batch/v1/namespaces/%s/jobs/%s", w->job->namespace,
	             w->job->name) < 0)
		return -ENOMEM;
	struct k8s_error e = {0};
	_cleanup_json_ json_t *job = NULL;
	int r = k8s_get(w->c, path, &job, &e);
	k8s_error_clear(&e);
	if (r == -ENOENT)
		return k8s_errorf(w->err, -EIO, 0, NULL, "agent Job %s/%s was unexpectedly deleted",
		                  w->job->namespace, w->job->name);
	size_t i;
	json_t *cond;
	json_array_foreach(json_object_get(json_object_get(job, "status"), "conditions"), i, cond)
	{
		if (!strcmp(str_at(cond, "type", NULL) ?: "", "Failed") &&
		    !strcmp(str_at(cond, "status", NULL) ?: "", "True"))
			return k8s_errorf(w->err, -EIO, 0, NULL, "agent Job %s/%s failed: %s%s%s",
			                  w->job->namespace, w->job->name,
			                  str_at(cond, "reason", NULL) ?: "",
			                  str_at(cond, "message", NULL) ? ": " : "",
			                  str_at(cond, "message", NULL) ?: "");
	}
	free(path);
	path = NULL;
	if (asprintf(&path, "/api/v1/namespaces/%s/events", w->job->namespace) < 0 ||
	    asprintf(&fsel, "involvedObject.name=%s", w->job->name) < 0)
		return -ENOMEM;
	_cleanup_json_ json_t *events = NULL;
	r = k8s_list(w->c, path, NULL, fsel, &events, &e);
	k8s_error_clear(&e);
	if (r == -ENOMEM)
		return r;
	json_t *ev;
	json_array_foreach(events, i, ev)
	{
		if (!strcmp(str_at(ev, "reason", NULL) ?: "", "FailedCreate"))
			return k8s_errorf(
			        w->err, -EIO, 0, "FailedCreate",
			        "the agent Job %s/%s cannot create its pod: %s; if this is Pod "
			        "Security, use an agent namespace labelled "
			        "pod-security.kubernetes.io/enforce=privileged",
			        w->job->namespace, w->job->name,
			        str_at(ev, "message", NULL) ?: "?");
	}
	return 0;
}

struct logscan {
	char line[LOG_LINE_MAX + 1];
	size_t len;
	bool cut;
	char last[LOG_LINE_MAX + 1]; /* the last complete line, for errors */
	bool ready;
	char *version;
	bool oom;
};

static size_t log_write(char *data, size_t size, size_t nmemb, void *ud)
{
	struct logscan *s = ud;
	size_t n = size * nmemb;
	for (size_t i = 0; i < n; i++) {
		if (data[i] != '\n') {
			if (s->len < LOG_LINE_MAX)
				s->line[s->len++] = data[i];
			else
				s->cut = true;
			continue;
		}
		s->line[s->len] = '\0';
		if (agent_job_ready_line(s->line, &s->version)) {
			s->ready = true;
			return 0; /* stop the stream: we have what we came for */
		}
		memcpy(s->last, s->line, s->len + 1);
		s->len = 0;
		s->cut = false;
	}
	return n;
}

int agent_startup_timeout(unsigned timeout_s, const char *state, struct k8s_error *err)
{
	return k8s_errorf(
	        err, -ETIMEDOUT, 0, NULL,
	        "timeout waiting for the agent to be ready (%u s, agent.startup_timeout)%s%s",
	        timeout_s, state ? ": " : "", state ?: "");
}

int agent_follow_log(struct k8s_client *c, const char *ns, const char *pod, const char *container,
                     unsigned long long deadline, char **ret_version, struct k8s_error *err)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "/api/v1/namespaces/%s/pods/%s/log?container=%s&follow=true", ns, pod,
	             container) < 0)
		return -ENOMEM;
	_cleanup_free_ struct logscan *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (;;) {
		unsigned long long now = agent_now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		s->len = 0;
		int r = k8s_stream(c, path, (unsigned)(deadline - now), log_write, s, err);
		if (s->ready) {
			k8s_error_clear(err);
			*ret_version = TAKE_PTR(s->version);
			return 0;
		}
		/* Right after Running the log can still be "waiting to start"
		 * (400); ask again. */
		if (r == -EINVAL) {
			struct timespec d = {0, 200 * 1000 * 1000};
			nanosleep(&d, NULL);
			continue;
		}
		if (r < 0)
			return r;
		if (s->len) {
			s->line[s->len] = '\0';
			memcpy(s->last, s->line, s->len + 1);
		}
		return k8s_errorf(err, -EIO, 0, NULL,
		                  "the agent in pod %s/%s stopped before it was ready%s%s%s", ns,
		                  pod, s->last[0] ? ": \"" : "", s->last, s->last[0] ? "\"" : "");
	}
}

static int wait_ready(struct waiter *w, unsigned timeout_s)
{
	unsigned long long deadline = w->start + (unsigned long long)timeout_s * 1000u;
	_cleanup_free_ char *sel = NULL;
	if (asprintf(&sel, "job-name=%s", w->job->name) < 0)
		return -ENOMEM;
	_cleanup_free_ char *pods = NULL;
	if (asprintf(&pods, "/api/v1/namespaces/%s/pods", w->job->namespace) < 0)
		return -ENOMEM;
	bool running = false;
	while (!running) {
		if (agent_now_ms() >= deadline)
			return -ETIMEDOUT;
		/* Short watches: each one restarts from the current state
		 * (synthetic ADDED), and between them we tick and look for
		 * reasons the pod will never come. */
		struct k8s_watch_opts wo = {.label_selector = sel, .timeout_s = WATCH_TICK_S};
		int r = k8s_watch(w->c, pods, &wo, on_pod_event, w, w->err);
		if (r < 0)
			return r;
		if (r > 0) {
			running = true;
			break;
		}
		if (!w->job->pod && (r = check_job(w)) < 0)
			return r;
		tick(w, AGENT_JOB_WAITING, w->state ? w->state : "waiting for the agent pod");
	}
	tick(w, AGENT_JOB_RUNNING, w->job->pod);
	return agent_follow_log(w->c, w->job->namespace, w->job->pod, AGENT_JOB_CONTAINER, deadline,
	                        &w->job->version, w->err);
}

int agent_job_start(struct k8s_client *c, const struct agent_job_opts *o,
                    agent_job_progress_fn progress, void *userdata, struct agent_job **ret,
                    struct k8s_error *err)
{
	_cleanup_agent_job_ struct agent_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	int r = o->name ? ((j->name = strdup(o->name)) ? 0 : -ENOMEM)
	                : agent_job_random_name(&j->name);
	if (r < 0)
		return r;
	j->port = o->port ? o->port : agent_job_random_port();
	if (!(j->namespace = strdup(o->namespace ? o->namespace : "")))
		return -ENOMEM;
	_cleanup_json_ json_t *spec = NULL;
	r = agent_job_spec(o, j->name, j->port, GID_MIN + agent_rand_below(GID_MAX - GID_MIN + 1),
	                   &spec, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "/apis/batch/v1/namespaces/%s/jobs", j->namespace) < 0)
		return -ENOMEM;
	struct waiter w = {c, j, progress, userdata, agent_now_ms(), NULL, err};
	r = k8s_create(c, path, spec, NULL, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *what = NULL;
	if (asprintf(&what, "job %s/%s", j->namespace, j->name) < 0)
		what = NULL;
	tick(&w, AGENT_JOB_CREATED, what ? what : j->name);
	unsigned timeout_s = o->startup_timeout_s ? o->startup_timeout_s : 60;
	r = wait_ready(&w, timeout_s);
	if (r == -ETIMEDOUT)
		r = agent_startup_timeout(timeout_s, w.state, err);
	free(w.state);
	if (r < 0) {
		/* Don't leave a half-started agent behind; the error we return
		 * is the reason it did not start, not this cleanup's. */
		struct k8s_error e = {0};
		(void)agent_job_delete(c, j, &e);
		k8s_error_clear(&e);
		return r;
	}
	tick(&w, AGENT_JOB_READY, j->version ? j->version : "");
	*ret = TAKE_PTR(j);
	return 0;
}

int agent_job_delete(struct k8s_client *c, const struct agent_job *j, struct k8s_error *err)
{
	if (!j || !j->name)
		return 0;
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "/apis/batch/v1/namespaces/%s/jobs/%s", j->namespace, j->name) < 0)
		return -ENOMEM;
	int r = k8s_delete(c, path, NULL, err);
	if (r == -ENOENT) {
		k8s_error_clear(err);
		return 0; /* the TTL controller was first */
	}
	return r;
}
