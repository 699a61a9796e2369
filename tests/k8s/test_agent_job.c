/* Unit tests of the agent Job's pure parts (k8s/agent_job.h): the spec
 * against mirrord-behaviour.md §3.2 and, field by field, against the
 * OpenAPI subset the fake API server validates with (path in
 * K8S_OPENAPI); the pod-state classifier; the "agent ready" matcher; and
 * the ls plain form. */
#include <stdio.h>
#include <string.h>

#include "k8s/agent_job.h"
#include "k8s/internal.h"
#include "k8s/ls.h"

static int failures;
#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #cond); \
			failures++;                                                       \
		}                                                                         \
	} while (0)

static json_t *defs;

static const json_t *deref(const json_t *s)
{
	const char *ref = json_string_value(json_object_get(s, "$ref"));
	if (ref && !strncmp(ref, "#/definitions/", 14))
		return json_object_get(defs, ref + 14);
	return s;
}

/* Every field of v exists in schema s with the right JSON type, and every
 * required field is present. Reports the path of the first problem. */
static void validate(const json_t *v, const json_t *s, const char *path)
{
	s = deref(s);
	if (!s) {
		fprintf(stderr, "%s: no schema\n", path);
		failures++;
		return;
	}
	const char *type = json_string_value(json_object_get(s, "type"));
	char sub[512];
	if (json_is_object(v)) {
		if (type && strcmp(type, "object") != 0) {
			fprintf(stderr, "%s: object where schema says %s\n", path, type);
			failures++;
			return;
		}
		const json_t *props = json_object_get(s, "properties");
		const json_t *addl = json_object_get(s, "additionalProperties");
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)v, k, x)
		{
			snprintf(sub, sizeof(sub), "%s.%s", path, k);
			const json_t *ps = props ? json_object_get(props, k) : NULL;
			if (!ps && addl)
				ps = addl;
			if (!ps) {
				fprintf(stderr, "%s: unknown field\n", sub);
				failures++;
				continue;
			}
			validate(x, ps, sub);
		}
		size_t i;
		json_t *req;
		json_array_foreach(json_object_get(s, "required"), i,
		                   req) if (!json_object_get(v, json_string_value(req)))
		{
			fprintf(stderr, "%s: missing required %s\n", path, json_string_value(req));
			failures++;
		}
	} else if (json_is_array(v)) {
		CHECK(type && !strcmp(type, "array"));
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		{
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			validate(x, json_object_get(s, "items"), sub);
		}
	} else if (type) {
		bool ok = (!strcmp(type, "string") && json_is_string(v)) ||
		          (!strcmp(type, "integer") && json_is_integer(v)) ||
		          (!strcmp(type, "boolean") && json_is_boolean(v)) ||
		          (!strcmp(type, "number") && json_is_number(v));
		if (!ok) {
			fprintf(stderr, "%s: value does not match type %s\n", path, type);
			failures++;
		}
	}
}

/* A dotted-path getter for the checks below; an array step takes its
 * first element. */
static const char *sat(const json_t *o, const char *jpath)
{
	const json_t *cur = o;
	for (const char *p = jpath; cur && *p;) {
		size_t n = strcspn(p, ".");
		char key[128];
		snprintf(key, sizeof(key), "%.*s", (int)n, p);
		if (json_is_array(cur))
			cur = json_array_get(cur, 0);
		cur = json_object_get(cur, key);
		p += n + (p[n] == '.');
	}
	return json_string_value(cur) ?: "(none)";
}

static const json_t *at(const json_t *o, const char *a, const char *b, const char *c)
{
	const json_t *x = json_object_get(o, a);
	if (b)
		x = json_object_get(x, b);
	if (c)
		x = json_object_get(x, c);
	return x;
}

static void test_targeted_spec(void)
{
	json_t *extra = json_pack("{s:s}", "team", "lolz");
	struct agent_job_opts o = {
	        .namespace = "lolzspace",
	        .node = "node-1",
	        .container_id = "abc123",
	        .image = "mirrord-trace-agent:dev",
	        .ttl_s = 1,
	        .caps = AGENT_CAP_ALL,
	        .labels = extra,
	};
	struct k8s_error err = {0};
	json_t *job = NULL;
	CHECK(agent_job_spec(&o, "mirrord-trace-agent-abcde12345", 40000, 3001, &job, &err) == 0);
	if (!job)
		return;
	validate(job, json_object_get(defs, "io.k8s.api.batch.v1.Job"), "Job");

	CHECK(!strcmp(json_string_value(at(job, "apiVersion", NULL, NULL)), "batch/v1"));
	CHECK(!strcmp(sat(job, "metadata.name"), "mirrord-trace-agent-abcde12345"));
	CHECK(!strcmp(sat(job, "metadata.labels.app"), "mirrord-trace"));
	CHECK(!strcmp(sat(job, "metadata.labels.team"), "lolz"));
	CHECK(!strcmp(json_string_value(at(job, "metadata", "labels", "kuma.io/sidecar-injection")),
	              "disabled"));
	CHECK(!strcmp(
	        json_string_value(at(job, "metadata", "annotations", "sidecar.istio.io/inject")),
	        "false"));
	CHECK(!strcmp(json_string_value(at(job, "metadata", "annotations", "linkerd.io/inject")),
	              "disabled"));
	const json_t *spec = json_object_get(job, "spec");
	CHECK(json_integer_value(json_object_get(spec, "ttlSecondsAfterFinished")) == 1);
	CHECK(json_integer_value(json_object_get(spec, "backoffLimit")) == 0 &&
	      json_object_get(spec, "backoffLimit"));
	const json_t *tmpl = json_object_get(spec, "template");
	CHECK(json_equal(at(tmpl, "metadata", "labels", NULL),
	                 at(job, "metadata", "labels", NULL)));
	CHECK(json_equal(at(tmpl, "metadata", "annotations", NULL),
	                 at(job, "metadata", "annotations", NULL)));
	const json_t *ps = json_object_get(tmpl, "spec");
	CHECK(!strcmp(sat(ps, "restartPolicy"), "Never"));
	CHECK(!strcmp(sat(ps, "nodeName"), "node-1"));
	CHECK(json_is_true(json_object_get(ps, "hostPID")));
	CHECK(!strcmp(sat(ps, "tolerations.operator"), "Exists"));
	const json_t *c = json_array_get(json_object_get(ps, "containers"), 0);
	CHECK(json_array_size(json_object_get(ps, "containers")) == 1);
	CHECK(!strcmp(sat(c, "name"), AGENT_JOB_CONTAINER));
	CHECK(!strcmp(sat(c, "image"), "mirrord-trace-agent:dev"));
	CHECK(!strcmp(sat(c, "imagePullPolicy"), "IfNotPresent"));
	json_t *want_args =
	        json_pack("[s,s,s,s,s,s,s]", "--listen", "127.0.0.1:40000",
	                  "--communication-timeout", "30", "targeted", "--container-id", "abc123");
	CHECK(json_equal(json_object_get(c, "args"), want_args));
	json_decref(want_args);
	json_t *want_caps = json_pack("[s,s,s]", "NET_ADMIN", "SYS_PTRACE", "SYS_ADMIN");
	CHECK(json_equal(at(c, "securityContext", "capabilities", "add"), want_caps));
	json_decref(want_caps);
	CHECK(json_is_false(at(c, "securityContext", "privileged", NULL)));
	CHECK(json_integer_value(at(c, "securityContext", "runAsGroup", NULL)) == 3001);
	CHECK(!strcmp(json_string_value(at(c, "resources", "limits", "memory")), "100Mi"));
	json_decref(job);

	/* Disabled capabilities are left out. */
	o.caps = AGENT_CAP_SYS_ADMIN;
	CHECK(agent_job_spec(&o, "a", 1, 3000, &job, &err) == 0);
	want_caps = json_pack("[s]", "SYS_ADMIN");
	const json_t *c2 = json_array_get(
	        json_object_get(at(job, "spec", "template", "spec"), "containers"), 0);
	CHECK(json_equal(at(c2, "securityContext", "capabilities", "add"), want_caps));
	json_decref(want_caps);
	json_decref(job);
	json_decref(extra);

	/* Bad input. */
	CHECK(agent_job_spec(&o, "Bad_Name", 1, 3000, &job, &err) == -EINVAL);
	CHECK(err.message && strstr(err.message, "Bad_Name"));
	o.node = NULL;
	CHECK(agent_job_spec(&o, "a", 1, 3000, &job, &err) == -EINVAL);
	o.node = "node-1";
	CHECK(agent_job_spec(&o, "a", 0, 3000, &job, &err) == -EINVAL);
	k8s_error_clear(&err);
}

static void test_targetless_spec(void)
{
	struct agent_job_opts o = {
	        .namespace = "default", .caps = AGENT_CAP_ALL, .privileged = true};
	struct k8s_error err = {0};
	json_t *job = NULL;
	CHECK(agent_job_spec(&o, "mirrord-trace-agent-x", 31000, 3000, &job, &err) == 0);
	if (!job)
		return;
	validate(job, json_object_get(defs, "io.k8s.api.batch.v1.Job"), "Job");
	const json_t *ps = at(job, "spec", "template", "spec");
	CHECK(!json_object_get(ps, "hostPID"));
	CHECK(!json_object_get(ps, "nodeName"));
	CHECK(!json_object_get(ps, "tolerations"));
	const json_t *c = json_array_get(json_object_get(ps, "containers"), 0);
	CHECK(!at(c, "securityContext", "capabilities", NULL));
	CHECK(!at(c, "securityContext", "privileged", NULL));
	json_t *want = json_pack("[s,s,s,s,s]", "--listen", "127.0.0.1:31000",
	                         "--communication-timeout", "30", "targetless");
	CHECK(json_equal(json_object_get(c, "args"), want));
	json_decref(want);
	CHECK(!strcmp(sat(c, "image"), AGENT_JOB_IMAGE_DEFAULT));
	json_decref(job);
}

/* mirrord's agent.* pod settings reach the pod spec, and the result is
 * still a valid Job. */
static void test_agent_settings(void)
{
	json_t *tol = json_pack("[{s:s, s:s, s:s}]", "key", "dedicated", "operator", "Equal",
	                        "value", "dev");
	json_t *sel = json_pack("{s:s}", "kubernetes.io/os", "linux");
	json_t *res = json_pack("{s:{s:s}}", "limits", "memory", "200Mi");
	json_t *secrets = json_pack("[{s:s}]", "name", "regcred");
	json_t *psc = json_pack("{s:{s:s}}", "seccompProfile", "type", "RuntimeDefault");
	struct agent_job_opts o = {
	        .namespace = "default",
	        .node = "node-1",
	        .container_id = "abc",
	        .caps = AGENT_CAP_ALL,
	        .log_level = "debug",
	        .tolerations = tol,
	        .node_selector = sel,
	        .resources = res,
	        .image_pull_secrets = secrets,
	        .security_context = psc,
	        .service_account = "agent-sa",
	        .priority_class = "high",
	        .no_mesh_opt_out = true,
	        .http_detection_timeout_s = 7,
	        .no_flush_connections = true,
	        .firewall = "iptables",
	};
	struct k8s_error err = {0};
	json_t *job = NULL;

	CHECK(agent_job_spec(&o, "a", 40000, 3000, &job, &err) == 0);
	if (!job)
		return;
	validate(job, json_object_get(defs, "io.k8s.api.batch.v1.Job"), "Job");
	const json_t *ps = at(job, "spec", "template", "spec");
	CHECK(json_equal(json_object_get(ps, "tolerations"), tol));
	CHECK(json_equal(json_object_get(ps, "nodeSelector"), sel));
	CHECK(json_equal(json_object_get(ps, "imagePullSecrets"), secrets));
	CHECK(json_equal(json_object_get(ps, "securityContext"), psc));
	CHECK(!strcmp(sat(ps, "serviceAccountName"), "agent-sa"));
	CHECK(!strcmp(sat(ps, "priorityClassName"), "high"));
	const json_t *c = json_array_get(json_object_get(ps, "containers"), 0);
	CHECK(json_equal(json_object_get(c, "resources"), res));
	json_t *want = json_pack("[s,s,s,s,s,s,s,s,s,s,s,s,s,s]", "--listen", "127.0.0.1:40000",
	                         "--communication-timeout", "30", "--log-level", "debug",
	                         "--http-detection-timeout", "7", "--no-flush-connections",
	                         "--firewall", "iptables", "targeted", "--container-id", "abc");
	CHECK(json_equal(json_object_get(c, "args"), want));
	json_decref(want);
	/* agent.disable_mesh_sidecar_injection: false keeps the mesh. */
	CHECK(!at(job, "metadata", "annotations", "sidecar.istio.io/inject"));
	json_decref(job);
	json_decref(tol);
	json_decref(sel);
	json_decref(res);
	json_decref(secrets);
	json_decref(psc);
}

static json_t *pod(const char *phase, const char *state_json, bool ready)
{
	json_t *st = json_loads(state_json, 0, NULL);
	return json_pack("{s:{s:s, s:s}, s:{s:s, s:[{s:s, s:s, s:b, s:o}]}}", "metadata", "name",
	                 "agent-pod", "namespace", "ns", "status", "phase", phase,
	                 "containerStatuses", "name", AGENT_JOB_CONTAINER, "image", "img:1",
	                 "ready", ready, "state", st);
}

static void test_pod_state(void)
{
	struct k8s_error err = {0};
	char *s = NULL;
	json_t *p = pod("Pending", "{\"waiting\":{\"reason\":\"ContainerCreating\"}}", false);
	CHECK(agent_job_pod_state(p, &s, &err) == 0);
	CHECK(s && !strcmp(s, "Pending (ContainerCreating)"));
	free(s);
	json_decref(p);

	p = pod("Running", "{\"running\":{\"startedAt\":\"x\"}}", true);
	CHECK(agent_job_pod_state(p, NULL, &err) == 1);
	json_decref(p);

	p = pod("Pending", "{\"waiting\":{\"reason\":\"ErrImagePull\",\"message\":\"not found\"}}",
	        false);
	CHECK(agent_job_pod_state(p, NULL, &err) == -EIO);
	CHECK(err.message &&
	      !strcmp(err.message, "agent container failed to pull image \"img:1\" (ErrImagePull): "
	                           "not found"));
	json_decref(p);

	p = pod("Failed", "{\"terminated\":{\"exitCode\":3}}", false);
	CHECK(agent_job_pod_state(p, NULL, &err) == -EIO);
	CHECK(err.message && strstr(err.message, "exited with code 3"));
	json_decref(p);

	p = pod("Succeeded", "{\"terminated\":{\"exitCode\":0}}", false);
	CHECK(agent_job_pod_state(p, NULL, &err) == -EIO);
	CHECK(err.message && !strcmp(err.message, "agent pod ns/agent-pod unexpectedly finished"));
	json_decref(p);
	k8s_error_clear(&err);
}

static void test_ready_line(void)
{
	char *v = NULL;
	CHECK(agent_job_ready_line("agent ready - version 0.1.0", &v) && v && !strcmp(v, "0.1.0"));
	free(v);
	CHECK(agent_job_ready_line("2026-01-01 INFO agent ready", &v) && !v);
	CHECK(!agent_job_ready_line("agent starting", &v) && !v);
}

static void test_random(void)
{
	char *a = NULL, *b = NULL;
	CHECK(agent_job_random_name(&a) == 0 && agent_job_random_name(&b) == 0);
	CHECK(a && strlen(a) == strlen(AGENT_JOB_NAME_PREFIX) + 10 && k8s_label_valid(a));
	CHECK(a && b && strcmp(a, b) != 0);
	free(a);
	free(b);
	for (int i = 0; i < 1000; i++) {
		unsigned p = agent_job_random_port();
		CHECK(p >= 30000 && p <= 65535);
	}
}

static void test_ls_paths(void)
{
	json_t *rich = json_loads("{\"targets\":[{\"path\":\"targetless\",\"available\":true},"
	                          "{\"path\":\"pod/a/container/b\",\"available\":false},"
	                          "{\"path\":\"deployment/d\",\"available\":true}],"
	                          "\"current_namespace\":\"x\",\"namespaces\":[\"x\"]}",
	                          0, NULL);
	json_t *p = k8s_ls_paths(rich);
	json_t *want = json_pack("[s,s]", "targetless", "deployment/d");
	CHECK(json_equal(p, want));
	json_decref(want);
	json_decref(p);
	json_decref(rich);
}

int main(void)
{
	const char *path = getenv("K8S_OPENAPI");
	json_error_t je;
	json_t *root = path ? json_load_file(path, 0, &je) : NULL;
	if (!root) {
		fprintf(stderr, "cannot load the OpenAPI subset (K8S_OPENAPI=%s)\n", path ?: "");
		return 1;
	}
	defs = json_object_get(root, "definitions");
	test_targeted_spec();
	test_targetless_spec();
	test_agent_settings();
	test_pod_state();
	test_ready_line();
	test_random();
	test_ls_paths();
	json_decref(root);
	if (failures)
		fprintf(stderr, "%d failure(s)\n", failures);
	else
		printf("PASS\n");
	return failures ? 1 : 0;
}
