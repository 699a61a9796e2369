/* agentctl: drives k8s/agent_job.h for the cluster tests (not shipped).
 *   agentctl --kubeconfig F start NS TARGET|targetless TIMEOUT_S [IMAGE [COMMAND]]
 *       resolve TARGET in NS, start the agent Job there (targetless: in NS),
 *       print "job=J pod=P port=N version=V" and leave it running;
 *       progress lines go to stderr as "progress STAGE DETAIL".
 *       AGENTCTL_COMM_TIMEOUT sets the agent's --communication-timeout.
 *   agentctl --kubeconfig F delete NS JOB
 * Errors: the one-line message on stderr as "agentctl: MSG", exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/target.h"
#include "k8s/agent_job.h"
#include "k8s/kubeconfig.h"
#include "k8s/resolve.h"

static int fail(struct k8s_error *e, int r)
{
	fprintf(stderr, "agentctl: %s\n", e->message ? e->message : strerror(-r));
	return 1;
}

static void progress(void *ud, enum agent_job_stage stage, const char *detail, unsigned ms)
{
	static const char *const names[] = {"created", "waiting", "running", "ready"};
	(void)ud;
	fprintf(stderr, "progress %s %s (%u ms)\n", names[stage], detail, ms);
}

int main(int argc, char **argv)
{
	struct kubeconfig_opts o = {0};
	int i = 1;
	if (i + 1 < argc && !strcmp(argv[i], "--kubeconfig")) {
		o.path = argv[i + 1];
		i += 2;
	}
	if (i + 2 >= argc) {
		fprintf(stderr, "usage: see agentctl.c\n");
		return 2;
	}
	const char *cmd = argv[i], *ns = argv[i + 1], *arg = argv[i + 2];
	struct k8s_error err = {0};
	struct kubeconfig *kc = NULL;
	int r = kubeconfig_load(&o, &kc, &err);
	if (r < 0)
		return fail(&err, r);
	_cleanup_k8s_client_ struct k8s_client *c = NULL;
	r = k8s_client_new(kc, &c, &err);
	if (r < 0)
		return fail(&err, r);

	if (!strcmp(cmd, "delete")) {
		struct agent_job j = {.namespace = (char *)ns, .name = (char *)arg};
		r = agent_job_delete(c, &j, &err);
		return r < 0 ? fail(&err, r) : 0;
	}
	if (strcmp(cmd, "start") != 0 || i + 3 >= argc)
		return 2;
	struct agent_job_opts ao = {
	        .namespace = ns,
	        .ttl_s = 1,
	        .caps = AGENT_CAP_ALL,
	        .startup_timeout_s = (unsigned)strtoul(argv[i + 3], NULL, 10),
	        .image = i + 4 < argc ? argv[i + 4] : "mirrord-trace-agent:dev",
	        .command = i + 5 < argc ? argv[i + 5] : NULL,
	        .communication_timeout_s =
	                (unsigned)strtoul(getenv("AGENTCTL_COMM_TIMEOUT") ?: "0", NULL, 10),
	};
	struct k8s_resolved res = {0};
	if (strcmp(arg, "targetless") != 0) {
		struct target t;
		char *msg = NULL;
		if (target_parse(arg, &t, &msg) < 0) {
			fprintf(stderr, "agentctl: %s\n", msg);
			return 1;
		}
		r = k8s_resolve_target(c, &t, ns, &res, &err);
		target_free(&t);
		if (r < 0)
			return fail(&err, r);
		ao.node = res.node;
		ao.container_id = res.container_id;
	}
	struct agent_job *j = NULL;
	r = agent_job_start(c, &ao, progress, NULL, &j, &err);
	k8s_resolved_free(&res);
	if (r < 0)
		return fail(&err, r);
	printf("job=%s pod=%s port=%u version=%s\n", j->name, j->pod, j->port,
	       j->version ? j->version : "-");
	agent_job_free(j);
	return 0;
}
