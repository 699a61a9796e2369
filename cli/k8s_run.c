/* `exec` on a Kubernetes target (cli/k8s_run.h). */
#include "cli/k8s_run.h"
#include "cli/target.h"
#include "common/util.h"
#include "k8s/agent_job.h"
#include "k8s/kubeconfig.h"
#include "k8s/portforward.h"
#include "k8s/resolve.h"
#include "k8s/rest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct k8s_run {
	struct k8s_client *client;
	struct agent_job *job;
	struct k8s_portforward *pf;
	struct k8s_error pf_err; /* the port-forward's last error */
	char *image;
	bool quiet, tty;
	unsigned comm_timeout_s; /* the agent's; it waits that long for a reconnect */
	bool line_open;          /* an updating progress line is on the terminal */
	unsigned spin;
	unsigned said_s; /* second of the last plain progress line */
	/* Start-up split (ms since k8s_run_start), for the info log. */
	unsigned long long t0;
	unsigned t_client, t_resolve, t_created, t_running, t_ready, t_pf, t_session;
};

static unsigned since(const struct k8s_run *kr)
{
	return (unsigned)(now_ns() / 1000000u - kr->t0);
}

static void k8s_fail(const char *what, struct k8s_error *err, int r)
{
	if (r == -ENOMEM)
		abort(); /* the CLI's OOM policy (STYLE.md) */
	log_error("%s: %s", what, err->message ? err->message : strerror(-r));
	k8s_error_clear(err);
}

/* Progress on stderr: on a terminal one line that updates in place (a
 * spinner and the elapsed time), otherwise plain lines, few enough for a
 * CI log. Nothing when quiet. */
static MT_PRINTF(3, 4) void say(struct k8s_run *kr, bool done, const char *fmt, ...)
{
	static const char *const spinner[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
	va_list ap;

	if (kr->quiet)
		return;
	if (kr->tty)
		fputs("\r\033[K", stderr);
	else if (!done)
		fputs("  ", stderr);
	if (kr->tty && !done)
		fprintf(stderr, "%s ", spinner[kr->spin++ % (sizeof(spinner) / sizeof(*spinner))]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	kr->line_open = kr->tty && !done;
	if (!kr->line_open)
		fputc('\n', stderr);
	fflush(stderr);
}

static void progress(void *data, enum agent_job_stage stage, const char *detail,
                     unsigned elapsed_ms)
{
	struct k8s_run *kr = data;

	switch (stage) {
	case AGENT_JOB_CREATED:
		kr->t_created = since(kr);
		say(kr, false, "agent %s created", detail);
		break;
	case AGENT_JOB_WAITING:
		/* About once a second while nothing changes: a plain line
		 * every 5 s is enough for a log. */
		if (kr->tty || (elapsed_ms / 1000 % 5 == 0 && elapsed_ms / 1000 != kr->said_s)) {
			kr->said_s = elapsed_ms / 1000;
			say(kr, false, "starting agent: %s (%u s)", detail, elapsed_ms / 1000);
		}
		break;
	case AGENT_JOB_RUNNING:
		kr->t_running = since(kr);
		if (kr->tty)
			say(kr, false, "starting agent: pod %s is running, waiting for the agent",
			    detail);
		break;
	case AGENT_JOB_READY:
		kr->t_ready = since(kr);
		say(kr, true, "✓ agent ready (%u ms)", elapsed_ms);
		break;
	}
}

/* Before an error message: end an updating line, so the message starts
 * on a line of its own. */
static void end_line(struct k8s_run *kr)
{
	if (kr->line_open) {
		fputc('\n', stderr);
		kr->line_open = false;
	}
}

static unsigned config_uint(const struct config *c, enum config_field f, unsigned def)
{
	json_t *v = config_get(c, f);

	return json_is_integer(v) && json_integer_value(v) >= 0 ? (unsigned)json_integer_value(v)
	                                                        : def;
}

/* agent.disabled_capabilities: mirrord's names of the capabilities the
 * agent must not get. */
static unsigned agent_caps(const struct config *c)
{
	static const struct {
		const char *name;
		unsigned bit;
	} caps[] = {{"NET_ADMIN", AGENT_CAP_NET_ADMIN},
	            {"SYS_PTRACE", AGENT_CAP_SYS_PTRACE},
	            {"SYS_ADMIN", AGENT_CAP_SYS_ADMIN}};
	unsigned v = AGENT_CAP_ALL;
	size_t i;
	json_t *e;

	json_array_foreach(config_get(c, CF_AGENT_DISABLED_CAPABILITIES), i, e)
	{
		const char *n = json_string_value(e);
		for (size_t k = 0; n && k < ARRAY_SIZE(caps); k++)
			if (!strcasecmp(n, caps[k].name) ||
			    (!strncasecmp(n, "CAP_", 4) && !strcasecmp(n + 4, caps[k].name)))
				v &= ~caps[k].bit;
	}
	return v;
}

/* agent.log_level is mirrord's RUST_LOG ("info", "mirrord=debug,warn"):
 * the most verbose level it names, as our agent's --log-level. */
static const char *agent_log_level(const struct config *c)
{
	static const char *const levels[] = {"trace", "debug", "info", "warn", "error"};
	const char *v = config_str(c, CF_AGENT_LOG_LEVEL);

	for (size_t i = 0; v && i < ARRAY_SIZE(levels); i++)
		if (strcasestr(v, levels[i]))
			return levels[i];
	return NULL;
}

/* agent.nftables: mirrord's choice between iptables-nft (true) and
 * iptables-legacy (false); ours is between nft with a table of its own
 * and the iptables command (whichever it is on the node). Unset: the
 * agent picks (nft when installed). */
static const char *agent_firewall(const struct config *c)
{
	const json_t *v = config_get(c, CF_AGENT_NFTABLES);

	return json_is_true(v) ? "nft" : json_is_false(v) ? "iptables" : NULL;
}

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
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

int k8s_run_start(const struct config *c, const struct k8s_run_opts *opts, struct k8s_run **ret)
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

	kr->t0 = now_ns() / 1000000u;
	kr->quiet = opts->quiet;
	kr->tty = isatty(STDERR_FILENO);
	r = kubeconfig_load(&ko, &kc, &err);
	if (r < 0) {
		k8s_fail("cannot load the kubeconfig", &err, r);
		goto fail;
	}
	/* mirrord's switch for clusters with self-signed API certificates. */
	if (config_bool(c, CF_ACCEPT_INVALID_CERTIFICATES))
		kc->insecure = true;
	r = k8s_client_new(kc, &kr->client, &err);
	if (r < 0) {
		k8s_fail("cannot set up the Kubernetes client", &err, r);
		goto fail;
	}
	k8s_client_set_cancel(kr->client, opts->cancelled, opts->cancel_data);
	kr->t_client = since(kr);

	struct agent_job_opts ao = {
	        .namespace = c->agent_namespace,
	        .image = kr->image = agent_image(c),
	        .image_pull_policy = config_str(c, CF_AGENT_IMAGE_PULL_POLICY),
	        .ttl_s = config_uint(c, CF_AGENT_TTL, 1),
	        .communication_timeout_s = config_uint(c, CF_AGENT_COMMUNICATION_TIMEOUT, 0),
	        .startup_timeout_s = config_uint(c, CF_AGENT_STARTUP_TIMEOUT, 60),
	        .caps = agent_caps(c),
	        .privileged = json_is_true(config_get(c, CF_AGENT_PRIVILEGED)),
	        .log_level = agent_log_level(c),
	        .labels = config_get(c, CF_AGENT_LABELS),
	        .annotations = config_get(c, CF_AGENT_ANNOTATIONS),
	        .tolerations = config_get(c, CF_AGENT_TOLERATIONS),
	        .node_selector = config_get(c, CF_AGENT_NODE_SELECTOR),
	        .resources = config_get(c, CF_AGENT_RESOURCES),
	        .image_pull_secrets = config_get(c, CF_AGENT_IMAGE_PULL_SECRETS),
	        .security_context = config_get(c, CF_AGENT_SECURITY_CONTEXT),
	        .service_account = nonempty(config_str(c, CF_AGENT_SERVICE_ACCOUNT)),
	        .priority_class = nonempty(config_str(c, CF_AGENT_PRIORITY_CLASS)),
	        .no_mesh_opt_out =
	                json_is_false(config_get(c, CF_AGENT_DISABLE_MESH_SIDECAR_INJECTION)),
	        .http_detection_timeout_s = config_uint(c, CF_AGENT_HTTP_DETECTION_TIMEOUT, 0),
	        .no_flush_connections = json_is_false(config_get(c, CF_AGENT_FLUSH_CONNECTIONS)),
	        .firewall = agent_firewall(c),
	};
	kr->comm_timeout_s = ao.communication_timeout_s ? ao.communication_timeout_s : 30;
	if (kr->comm_timeout_s < 2)
		kr->comm_timeout_s = 2;
	if (!c->targetless) {
		_cleanup_free_ char *t = target_to_string(c->target);
		r = k8s_resolve_target(kr->client, c->target, c->target_namespace, &res, &err);
		kr->t_resolve = since(kr);
		if (r < 0) {
			_cleanup_free_ char *what = xasprintf(
			        "cannot use target %s in namespace %s", t, c->target_namespace);
			k8s_fail(what, &err, r);
			goto fail;
		}
		say(kr, true, "✓ target %s → pod %s (%s) on %s", t, res.pod, res.container,
		    res.node);
		if (res.note && !kr->quiet)
			fprintf(stderr, "  %s\n", res.note);
		ao.node = res.node;
		ao.container_id = res.container_id;
	} else {
		kr->t_resolve = since(kr);
		say(kr, true, "✓ targetless (agent in namespace %s)", c->agent_namespace);
	}
	if (json_is_true(config_get(c, CF_AGENT_EPHEMERAL))) {
		ao.namespace = c->target_namespace;
		r = agent_ephemeral_start(kr->client, &ao, res.pod, res.container, progress, kr,
		                          &kr->job, &err);
	} else {
		r = agent_job_start(kr->client, &ao, progress, kr, &kr->job, &err);
	}
	k8s_resolved_free(&res);
	end_line(kr);
	if (r == -EINTR) {
		k8s_error_clear(&err);
		goto fail; /* the caller says which signal; the Job is gone */
	}
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

/* One attempt, bounded: the session retries with backoff. */
#define PF_RECONNECT_TIMEOUT_MS 5000u

static int pf_reconnect(void *data)
{
	struct k8s_run *kr = data;
	k8s_error_clear(&kr->pf_err);
	int r = k8s_portforward_reconnect(kr->pf, PF_RECONNECT_TIMEOUT_MS, &kr->pf_err);
	if (r < 0 && kr->pf_err.message)
		log_debug("port-forward to the agent: %s", kr->pf_err.message);
	return r;
}

int k8s_run_session(struct k8s_run *kr, struct evloop *l, int timeout_ms, struct session **ret,
                    char **ret_why)
{
	struct k8s_error err = {0};
	int r = k8s_portforward_open(kr->client, kr->job->namespace, kr->job->pod,
	                             (uint16_t)kr->job->port, (unsigned)timeout_ms, &kr->pf, &err);

	kr->t_pf = since(kr);

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
	        .reconnect = pf_reconnect,
	        /* The agent waits its communication timeout for us. */
	        .reconnect_budget_ms = kr->comm_timeout_s * 1000u - 1000u,
	};
	r = session_open_io(l, &io, where, timeout_ms, ret, ret_why);
	kr->t_session = since(kr);
	/* Where start-up time goes (bench/k8s.sh reads this line): each
	 * figure is one phase's own duration. */
	log_info("startup: client=%ums resolve=%ums job_create=%ums pod_start=%ums "
	         "agent_ready=%ums portforward=%ums handshake=%ums total=%ums",
	         kr->t_client, kr->t_resolve - kr->t_client, kr->t_created - kr->t_resolve,
	         kr->t_running - kr->t_created, kr->t_ready - kr->t_running, kr->t_pf - kr->t_ready,
	         kr->t_session - kr->t_pf, kr->t_session);
	return r;
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
