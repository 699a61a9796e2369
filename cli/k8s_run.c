/* `exec` on a Kubernetes target (cli/k8s_run.h). */
#include "cli/k8s_run.h"
#include "cli/target.h"
#include "common/util.h"
#include "k8s/agent_job.h"
#include "k8s/kubeconfig.h"
#include "k8s/portforward.h"
#include "k8s/resolve.h"
#include "k8s/rest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct k8s_run {
	struct k8s_client *client;
	struct agent_job *job;
	struct k8s_portforward *pf;
	struct k8s_error pf_err; /* the port-forward's last error */
	char *image;
	bool quiet;
};

static void k8s_fail(const char *what, struct k8s_error *err, int r)
{
	if (r == -ENOMEM)
		abort(); /* the CLI's OOM policy (STYLE.md) */
	log_error("%s: %s", what, err->message ? err->message : strerror(-r));
	k8s_error_clear(err);
}

static void progress(void *data, enum agent_job_stage stage, const char *detail,
                     unsigned elapsed_ms)
{
	struct k8s_run *kr = data;

	if (kr->quiet)
		return;
	switch (stage) {
	case AGENT_JOB_CREATED:
		fprintf(stderr, "  agent job %s created\n", detail);
		break;
	case AGENT_JOB_WAITING:
		/* About once a second while nothing changes: a line every
		 * 5 s is enough for a log. */
		if (elapsed_ms / 1000 % 5 == 0)
			fprintf(stderr, "  starting agent: %s (%u s)\n", detail, elapsed_ms / 1000);
		break;
	case AGENT_JOB_RUNNING:
		break;
	case AGENT_JOB_READY:
		fprintf(stderr, "✓ agent ready (%u ms)\n", elapsed_ms);
		break;
	}
}

static unsigned config_uint(const struct config *c, enum config_field f, unsigned def)
{
	json_t *v = config_get(c, f);

	return json_is_integer(v) && json_integer_value(v) >= 0 ? (unsigned)json_integer_value(v)
	                                                        : def;
}

/* agent.image: a string, or mirrord's {"registry", "tag"} form (malloc'd;
 * NULL for the default). */
static char *agent_image(const struct config *c)
{
	json_t *v = config_get(c, CF_AGENT_IMAGE);
	const char *reg, *tag;

	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (!json_is_object(v))
		return NULL;
	reg = json_string_value(json_object_get(v, "registry"));
	tag = json_string_value(json_object_get(v, "tag"));
	if (!reg && !tag)
		return NULL;
	return xasprintf("%s:%s", reg ? reg : "ghcr.io/mirrord-trace/mirrord-trace-agent",
	                 tag ? tag : MT_VERSION);
}

int k8s_run_start(const struct config *c, bool quiet, struct k8s_run **ret)
{
	const char *kcpath = config_str(c, CF_KUBECONFIG), *ctx = config_str(c, CF_KUBE_CONTEXT);
	struct kubeconfig_opts ko = {
	        .path = kcpath && *kcpath ? kcpath : NULL,
	        .context = ctx && *ctx ? ctx : NULL,
	};
	struct k8s_error err = {0};
	struct kubeconfig *kc = NULL;
	struct k8s_resolved res = {0};
	struct k8s_run *kr = xcalloc(1, sizeof(*kr));
	int r;

	kr->quiet = quiet;
	r = kubeconfig_load(&ko, &kc, &err);
	if (r < 0) {
		k8s_fail("cannot load the kubeconfig", &err, r);
		goto fail;
	}
	r = k8s_client_new(kc, &kr->client, &err);
	if (r < 0) {
		k8s_fail("cannot set up the Kubernetes client", &err, r);
		goto fail;
	}

	struct agent_job_opts ao = {
	        .namespace = c->agent_namespace,
	        .image = kr->image = agent_image(c),
	        .image_pull_policy = config_str(c, CF_AGENT_IMAGE_PULL_POLICY),
	        .ttl_s = config_uint(c, CF_AGENT_TTL, 1),
	        .communication_timeout_s = config_uint(c, CF_AGENT_COMMUNICATION_TIMEOUT, 0),
	        .startup_timeout_s = config_uint(c, CF_AGENT_STARTUP_TIMEOUT, 60),
	        .caps = AGENT_CAP_ALL,
	};
	if (!c->targetless) {
		_cleanup_free_ char *t = target_to_string(c->target);
		r = k8s_resolve_target(kr->client, c->target, c->target_namespace, &res, &err);
		if (r < 0) {
			_cleanup_free_ char *what = xasprintf(
			        "cannot use target %s in namespace %s", t, c->target_namespace);
			k8s_fail(what, &err, r);
			goto fail;
		}
		if (!quiet) {
			fprintf(stderr, "✓ target %s → pod %s (%s) on %s\n", t, res.pod,
			        res.container, res.node);
			if (res.note)
				fprintf(stderr, "  %s\n", res.note);
		}
		ao.node = res.node;
		ao.container_id = res.container_id;
	} else if (!quiet) {
		fprintf(stderr, "✓ targetless (agent in namespace %s)\n", c->agent_namespace);
	}
	r = agent_job_start(kr->client, &ao, progress, kr, &kr->job, &err);
	k8s_resolved_free(&res);
	if (r < 0) {
		k8s_fail("cannot start the agent", &err, r);
		goto fail;
	}
	*ret = kr;
	return 0;

fail:
	k8s_run_stop(kr);
	return r;
}

/* The port-forward as a session transport. */
static int pf_fd(void *data)
{
	struct k8s_run *kr = data;
	return k8s_portforward_fd(kr->pf);
}

static short pf_events(void *data)
{
	struct k8s_run *kr = data;
	return k8s_portforward_events(kr->pf);
}

static ssize_t pf_read(void *data, void *buf, size_t len)
{
	struct k8s_run *kr = data;
	k8s_error_clear(&kr->pf_err);
	ssize_t n = k8s_portforward_read(kr->pf, buf, len, &kr->pf_err);
	if (n < 0 && n != -EAGAIN && kr->pf_err.message)
		log_warn("port-forward to the agent: %s", kr->pf_err.message);
	return n;
}

static ssize_t pf_write(void *data, const void *buf, size_t len)
{
	struct k8s_run *kr = data;
	k8s_error_clear(&kr->pf_err);
	return k8s_portforward_write(kr->pf, buf, len, &kr->pf_err);
}

static int pf_flush(void *data)
{
	struct k8s_run *kr = data;
	k8s_error_clear(&kr->pf_err);
	return k8s_portforward_flush(kr->pf, &kr->pf_err);
}

int k8s_run_session(struct k8s_run *kr, struct evloop *l, int timeout_ms, struct session **ret,
                    char **ret_why)
{
	struct k8s_error err = {0};
	int r = k8s_portforward_open(kr->client, kr->job->namespace, kr->job->pod,
	                             (uint16_t)kr->job->port, (unsigned)timeout_ms, &kr->pf, &err);

	if (r < 0) {
		if (r == -ENOMEM)
			abort();
		*ret_why = xasprintf("cannot port-forward to the agent pod %s/%s port %u: %s",
		                     kr->job->namespace, kr->job->pod, kr->job->port,
		                     err.message ? err.message : strerror(-r));
		k8s_error_clear(&err);
		return r;
	}
	_cleanup_free_ char *where = xasprintf("pod %s/%s port %u (port-forward)",
	                                       kr->job->namespace, kr->job->pod, kr->job->port);
	struct session_io io = {
	        .data = kr,
	        .fd = pf_fd,
	        .events = pf_events,
	        .read = pf_read,
	        .write = pf_write,
	        .flush = pf_flush,
	};
	return session_open_io(l, &io, where, timeout_ms, ret, ret_why);
}

void k8s_run_stop(struct k8s_run *kr)
{
	struct k8s_error err = {0};

	if (!kr)
		return;
	if (kr->pf) {
		/* Say goodbye so the agent sees its client leave at once. */
		if (k8s_portforward_close(kr->pf, &err) == 0)
			(void)k8s_portforward_flush(kr->pf, &err);
		k8s_error_clear(&err);
		k8s_portforward_free(kr->pf);
	}
	if (kr->job) {
		int r = agent_job_delete(kr->client, kr->job, &err);
		if (r < 0) {
			log_error("cannot delete the agent job %s/%s: %s; delete it with `kubectl "
			          "delete job -n %s %s`",
			          kr->job->namespace, kr->job->name,
			          err.message ? err.message : strerror(-r), kr->job->namespace,
			          kr->job->name);
			k8s_error_clear(&err);
		}
		agent_job_free(kr->job);
	}
	k8s_error_clear(&kr->pf_err);
	k8s_client_free(kr->client);
	free(kr->image);
	free(kr);
}
