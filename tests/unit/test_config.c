/* The config model: precedence (flag > env > file > default) per field,
 * the targetless spellings, toggles, cross-field checks, warnings, and the
 * examples from mirrord's documentation, verbatim. */
#include "tests/unit/test_config.h"

/* ---- precedence matrices ---------------------------------------------- */

/* One row: flag value (NULL = not given), env value (NULL = unset, "" =
 * set but empty), file text (NULL = no file). */
struct matrix_case {
	const char *flag, *env, *file;
};

/* Resolve one combination and check the field's value and source. */
static void check_case(enum config_field f, const char *flag_name, const char *env_name,
                       const char *flag, const char *env, const char *file, const char *want,
                       const char *want_src)
{
	struct config_override ov[2];
	size_t nov = 0;
	char *envp[4] = {NULL};
	_cleanup_free_ char *envs = NULL, *path = NULL;
	struct config_errors errs = {0};
	struct config *c = NULL;

	if (flag)
		ov[nov++] = (struct config_override){env_name, flag, flag_name};
	/* The agent namespace needs a target to matter. */
	if (f == CF_AGENT_NAMESPACE)
		ov[nov++] = (struct config_override){"MIRRORD_IMPERSONATED_TARGET", "pod/x", "-t"};
	if (env) {
		envs = xasprintf("%s=%s", env_name, env);
		envp[0] = envs;
	}
	if (file)
		path = write_config("mirrord.json", file);
	if (resolve(envp, ov, nov, path, &c, &errs) < 0) {
		_cleanup_free_ char *t = errors_text(&errs);
		fprintf(stderr, "flag=%s env=%s file=%s: %s", flag ? flag : "-", env ? env : "-",
		        file ? file : "-", t);
		CHECK(!"resolve failed");
	}
	const char *got = f == CF_TARGET_PATH
	                          ? (c->targetless ? "targetless" : config_str(c, CF_TARGET_PATH))
	                          : config_str(c, f);
	if (!got || strcmp(got, want) != 0 || strcmp(src_name(c, f), want_src) != 0) {
		fprintf(stderr, "flag=%s env=%s file=%s: got %s (%s), want %s (%s)\n",
		        flag ? flag : "-", env ? env : "-", file ? file : "-", got ? got : "(null)",
		        src_name(c, f), want, want_src);
		CHECK(!"precedence");
	}
	config_free(c);
}

/* Every combination of flag / env (unset, empty, set) / file. */
static void run_matrix_src(enum config_field f, const char *flag_name, const char *env_name,
                           const char *flag_val, const char *env_val, const char *file_text,
                           const char *file_val, const char *file_src, const char *dflt,
                           const char *dflt_src)
{
	const char *envs[] = {NULL, "", env_val};
	int n = 0;

	for (int fl = 0; fl < 2; fl++)
		for (int ev = 0; ev < 3; ev++)
			for (int fi = 0; fi < 2; fi++) {
				const char *flag = fl ? flag_val : NULL;
				const char *env = envs[ev];
				const char *file = fi ? file_text : NULL;
				const char *want = dflt, *src = dflt_src;
				if (flag) {
					want = flag;
					src = "flag";
				} else if (env && *env) {
					want = env;
					src = "env";
				} else if (file) {
					want = file_val;
					src = file_src;
				}
				check_case(f, flag_name, env_name, flag, env, file, want, src);
				n++;
			}
	/* 2 (flag) x 3 (env unset, empty, set) x 2 (file) */
	CHECK_EQ(n, 12);
}

static void run_matrix(enum config_field f, const char *flag_name, const char *env_name,
                       const char *flag_val, const char *env_val, const char *file_text,
                       const char *file_val, const char *dflt, const char *dflt_src)
{
	run_matrix_src(f, flag_name, env_name, flag_val, env_val, file_text, file_val, "file", dflt,
	               dflt_src);
}

TEST(precedence_target_path)
{
	/* Canonical spellings, so the value is the same string whatever the source. */
	run_matrix(CF_TARGET_PATH, "-t", "MIRRORD_IMPERSONATED_TARGET", "pod/from-flag",
	           "deployment/from-env", "{\"target\": \"pod/from-file\"}", "pod/from-file",
	           "targetless", "default");
	run_matrix(CF_TARGET_PATH, "--target", "MIRRORD_IMPERSONATED_TARGET", "pod/a/container/c",
	           "rollout/b", "{\"target\": {\"path\": \"statefulset/c\"}}", "statefulset/c",
	           "targetless", "default");
	/* Targetless spellings in each source. */
	run_matrix(CF_TARGET_PATH, "-t", "MIRRORD_IMPERSONATED_TARGET", "targetless", "targetless",
	           "{\"target\": \"targetless\"}", "targetless", "targetless", "default");
	/* Only a namespace: the path stays unset, so its source is the default. */
	run_matrix_src(CF_TARGET_PATH, "-t", "MIRRORD_IMPERSONATED_TARGET", "pod/from-flag",
	               "pod/from-env", "{\"target\": {\"namespace\": \"only-ns\"}}", "targetless",
	               "default", "targetless", "default");
	run_matrix(CF_TARGET_PATH, "-t", "MIRRORD_IMPERSONATED_TARGET", "targetless",
	           "pod/from-env", "{\"target\": {\"path\": \"targetless\", \"namespace\": \"n\"}}",
	           "targetless", "targetless", "default");
}

TEST(precedence_target_path_only_namespace_is_targetless)
{
	struct config *c = must_resolve_text("m.json", "{\"target\": {\"namespace\": \"ns1\"}}");
	CHECK(c->targetless);
	CHECK(c->target == NULL);
	CHECK_STR(c->target_namespace, "ns1");
	config_free(c);
	c = must_resolve_text("m.json", "{\"target\": {\"path\": null, \"namespace\": \"ns1\"}}");
	CHECK(c->targetless);
	config_free(c);
}

TEST(precedence_target_namespace)
{
	run_matrix(CF_TARGET_NAMESPACE, "-n", "MIRRORD_TARGET_NAMESPACE", "flag-ns", "env-ns",
	           "{\"target\": {\"namespace\": \"file-ns\"}}", "file-ns", "default", "default");
	run_matrix(CF_TARGET_NAMESPACE, "--target-namespace", "MIRRORD_TARGET_NAMESPACE", "flag-ns",
	           "env-ns", "{\"target\": {\"path\": \"pod/p\", \"namespace\": \"file-ns\"}}",
	           "file-ns", "default", "default");
}

static char *kube_ns(const char *kubeconfig, const char *context)
{
	return xstrdup("kube-ns");
}

TEST(precedence_target_namespace_kubeconfig_hook)
{
	config_set_kube_namespace_hook(kube_ns);
	run_matrix(CF_TARGET_NAMESPACE, "-n", "MIRRORD_TARGET_NAMESPACE", "flag-ns", "env-ns",
	           "{\"target\": {\"namespace\": \"file-ns\"}}", "file-ns", "kube-ns",
	           "kubeconfig");
	run_matrix(CF_AGENT_NAMESPACE, "-a", "MIRRORD_AGENT_NAMESPACE", "flag-ns", "env-ns",
	           "{\"agent\": {\"namespace\": \"file-ns\"}}", "file-ns", "kube-ns", "kubeconfig");
	config_set_kube_namespace_hook(NULL);
}

TEST(precedence_agent_namespace)
{
	run_matrix(CF_AGENT_NAMESPACE, "-a", "MIRRORD_AGENT_NAMESPACE", "flag-ns", "env-ns",
	           "{\"agent\": {\"namespace\": \"file-ns\"}}", "file-ns", "default", "default");
	run_matrix(CF_AGENT_NAMESPACE, "--agent-namespace", "MIRRORD_AGENT_NAMESPACE", "flag-ns",
	           "env-ns", "{\"agent\": {\"namespace\": \"file-ns\"}, \"target\": \"pod/y\"}",
	           "file-ns", "default", "default");
}

TEST(agent_namespace_ignored_when_targetless)
{
	struct config *c = must_resolve_text(
	        "m.json", "{\"target\": {\"namespace\": \"tns\"}, \"agent\": {\"namespace\": "
	                  "\"ans\"}}");
	CHECK(c->targetless);
	CHECK_STR(c->agent_namespace, "tns");
	CHECK_EQ(c->warnings.n, 1);
	_cleanup_free_ char *w = config_error_format(&c->warnings.v[0]);
	CHECK(strstr(w, ":1:44: agent.namespace: ignored for a targetless session: the agent "
	                "runs in the target namespace \"tns\""));
	config_free(c);
}

/* agent.image: -i / MIRRORD_AGENT_IMAGE > file > MIRRORD_AGENT_IMAGE_REGISTRY
 * and _TAG (each only where the file's {registry, tag} leaves it out) >
 * default. Each row: flag, MIRRORD_AGENT_IMAGE, REGISTRY, TAG, file, the
 * value as compact JSON (sorted keys), its source. */
TEST(precedence_agent_image)
{
	static const struct {
		const char *flag, *image, *reg, *tag, *file, *want, *src;
	} rows[] = {
	        {NULL, NULL, NULL, NULL, NULL, "null", "default"},
	        {NULL, NULL, "r.io/a", NULL, NULL, "{\"registry\":\"r.io/a\"}", "env"},
	        {NULL, NULL, NULL, "v9", NULL, "{\"tag\":\"v9\"}", "env"},
	        {NULL, NULL, "r.io/a", "v9", NULL, "{\"registry\":\"r.io/a\",\"tag\":\"v9\"}",
	         "env"},
	        {NULL, NULL, "", "", NULL, "null", "default"}, /* empty = unset */
	        {NULL, NULL, "r.io/a", "v9", "\"f.io/b:2\"", "\"f.io/b:2\"", "file"},
	        {NULL, NULL, "r.io/a", "v9", "{\"registry\": \"f.io/b\"}",
	         "{\"registry\":\"f.io/b\",\"tag\":\"v9\"}", "env"},
	        {NULL, NULL, "r.io/a", "v9", "{\"tag\": \"3\"}",
	         "{\"registry\":\"r.io/a\",\"tag\":\"3\"}", "env"},
	        {NULL, NULL, "r.io/a", "v9", "{\"registry\": \"f.io/b\", \"tag\": \"3\"}",
	         "{\"registry\":\"f.io/b\",\"tag\":\"3\"}", "file"},
	        {NULL, NULL, NULL, NULL, "{\"tag\": \"3\"}", "{\"tag\":\"3\"}", "file"},
	        {NULL, "e.io/c:4", "r.io/a", "v9", "\"f.io/b:2\"", "\"e.io/c:4\"", "env"},
	        {"x.io/d:5", "e.io/c:4", "r.io/a", "v9", "{\"tag\": \"3\"}", "\"x.io/d:5\"",
	         "flag"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct config_override ov[] = {{"MIRRORD_AGENT_IMAGE", rows[i].flag, "-i"}};
		_cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL, *path = NULL, *file = NULL;
		char *envp[4] = {NULL};
		size_t n = 0;
		struct config_errors errs = {0};
		struct config *c = NULL;

		if (rows[i].image)
			envp[n++] = e1 = xasprintf("MIRRORD_AGENT_IMAGE=%s", rows[i].image);
		if (rows[i].reg)
			envp[n++] = e2 = xasprintf("MIRRORD_AGENT_IMAGE_REGISTRY=%s", rows[i].reg);
		if (rows[i].tag)
			envp[n++] = e3 = xasprintf("MIRRORD_AGENT_IMAGE_TAG=%s", rows[i].tag);
		if (rows[i].file) {
			file = xasprintf("{\"agent\": {\"image\": %s}}", rows[i].file);
			path = write_config("m.json", file);
		}
		CHECK(resolve(envp, ov, rows[i].flag ? 1 : 0, path, &c, &errs) == 0);
		json_t *v = config_get(c, CF_AGENT_IMAGE);
		_cleanup_free_ char *got =
		        v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
		          : xstrdup("null");
		if (strcmp(got, rows[i].want) != 0 ||
		    strcmp(src_name(c, CF_AGENT_IMAGE), rows[i].src) != 0) {
			fprintf(stderr, "row %zu: got %s (%s), want %s (%s)\n", i, got,
			        src_name(c, CF_AGENT_IMAGE), rows[i].want, rows[i].src);
			CHECK(!"agent.image precedence");
		}
		/* verify-config shows the same value and source. */
		json_t *doc = config_to_json(c);
		json_t *img = json_object_get(
		        json_object_get(json_object_get(doc, "config"), "agent"), "image");
		CHECK_STR(json_string_value(json_object_get(img, "source")), rows[i].src);
		CHECK(json_equal(json_object_get(img, "value"), v ? v : json_null()));
		json_decref(doc);
		config_free(c);
	}
}

/* TRACEPARENT / BAGGAGE are read (mirrord's traceparent and baggage
 * fields) but, coming from the environment, never warned about: tracing
 * tools set them for every process. */
TEST(traceparent_and_baggage)
{
	char *envp[] = {S("TRACEPARENT=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
	                S("BAGGAGE=userId=alice"), NULL};
	struct config_errors errs = {0};
	struct config *c = NULL;
	CHECK(resolve(envp, NULL, 0, NULL, &c, &errs) == 0);
	CHECK_STR(config_str(c, CF_TRACEPARENT),
	          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	CHECK_STR(src_name(c, CF_TRACEPARENT), "env");
	CHECK_STR(config_str(c, CF_BAGGAGE), "userId=alice");
	CHECK_STR(src_name(c, CF_BAGGAGE), "env");
	CHECK_EQ(c->warnings.n, 0);
	json_t *doc = config_to_json(c);
	json_t *tp = json_object_get(json_object_get(doc, "config"), "traceparent");
	CHECK_STR(json_string_value(json_object_get(tp, "source")), "env");
	json_decref(doc);
	config_free(c);

	/* The variable beats the file; the file alone warns. */
	char *path = write_config("m.json", "{\"baggage\": \"k=file\"}");
	CHECK(resolve(envp, NULL, 0, path, &c, &errs) == 0);
	CHECK_STR(config_str(c, CF_BAGGAGE), "userId=alice");
	CHECK_EQ(c->warnings.n, 0);
	config_free(c);
	char *none[] = {NULL};
	CHECK(resolve(none, NULL, 0, path, &c, &errs) == 0);
	CHECK_STR(src_name(c, CF_BAGGAGE), "file");
	CHECK_EQ(c->warnings.n, 1);
	_cleanup_free_ char *w = config_error_format(&c->warnings.v[0]);
	CHECK(strstr(w, "baggage: accepted but has no effect in mirrord-trace: mirrord-trace "
	                "exports no traces"));
	config_free(c);
	free(path);
}

TEST(empty_env_is_unset)
{
	char *envp[] = {S("MIRRORD_IMPERSONATED_TARGET="), S("MIRRORD_TARGET_NAMESPACE="), NULL};
	struct config_errors errs = {0};
	struct config *c = NULL;
	CHECK(resolve(envp, NULL, 0, NULL, &c, &errs) == 0);
	CHECK(c->targetless);
	CHECK_STR(c->target_namespace, "default");
	CHECK_STR(src_name(c, CF_TARGET_NAMESPACE), "default");
	config_free(c);
}

/* ---- mirrord's documentation examples, verbatim ------------------------ */

static struct config *with_target_flag(const char *t)
{
	struct config_override ov[] = {{"MIRRORD_IMPERSONATED_TARGET", t, "-t"}};
	struct config_errors errs = {0};
	struct config *c = NULL;
	char *envp[] = {NULL};
	CHECK(resolve(envp, ov, 1, NULL, &c, &errs) == 0);
	return c;
}

TEST(docs_examples_flags)
{
	struct config *c = with_target_flag("deploy/lolz");
	CHECK(!c->targetless);
	CHECK_EQ(c->target->kind, TARGET_DEPLOYMENT);
	CHECK_STR(c->target->name, "lolz");
	CHECK(c->target->container == NULL);
	config_free(c);

	c = with_target_flag("pod/lolz-64698df9b7-6plq8");
	CHECK_EQ(c->target->kind, TARGET_POD);
	CHECK_STR(c->target->name, "lolz-64698df9b7-6plq8");
	config_free(c);

	c = with_target_flag("pod/lolz-64698df9b7-6plq8/container/main-container");
	CHECK_EQ(c->target->kind, TARGET_POD);
	CHECK_STR(c->target->name, "lolz-64698df9b7-6plq8");
	CHECK_STR(c->target->container, "main-container");
	config_free(c);
}

TEST(docs_examples_config)
{
	struct config *c = must_resolve_text(
	        "mirrord.json", "{\"target\": {\"path\": "
	                        "\"pod/lolz-64698df9b7-6plq8/container/main-container\", "
	                        "\"namespace\": \"lolzspace\"}}");
	CHECK(!c->targetless);
	CHECK_EQ(c->target->kind, TARGET_POD);
	CHECK_STR(c->target->name, "lolz-64698df9b7-6plq8");
	CHECK_STR(c->target->container, "main-container");
	CHECK_STR(c->target_namespace, "lolzspace");
	CHECK_STR(src_name(c, CF_TARGET_NAMESPACE), "file");
	config_free(c);

	c = must_resolve_text("mirrord.json", "{\"target\": \"targetless\"}");
	CHECK(c->targetless);
	CHECK(c->target == NULL || c->target->kind == TARGET_NONE);
	config_free(c);
}

TEST(docs_example_exec_command_line)
{
	char *argv[] = {S("exec"),   S("-t"), S("deploy/lolz"), S("-n"), S("lolzspace"),
	                S("my-app"), NULL};
	struct cli_args a;
	struct config *c = NULL;

	CHECK(cli_parse(CLI_EXEC, 6, argv, &a) == 0);
	a.envp = (char *[]){NULL};
	CHECK(cli_resolve(&a, &c) == 0);
	CHECK_EQ(a.argc, 1);
	CHECK_STR(a.argv[0], "my-app");
	CHECK(!c->targetless);
	CHECK_EQ(c->target->kind, TARGET_DEPLOYMENT);
	CHECK_STR(target_kind_name(c->target->kind), "deployment");
	CHECK_STR(c->target->name, "lolz");
	CHECK_STR(c->target_namespace, "lolzspace");
	CHECK_STR(src_name(c, CF_TARGET_NAMESPACE), "flag");
	CHECK_STR(c->agent_namespace, "default");
	/* The request as verify-config shows it. */
	json_t *doc = config_to_json(c);
	json_t *req = json_object_get(doc, "request");
	CHECK_STR(json_string_value(json_object_get(req, "kind")), "deployment");
	CHECK_STR(json_string_value(json_object_get(req, "name")), "lolz");
	CHECK_STR(json_string_value(json_object_get(req, "namespace")), "lolzspace");
	CHECK_STR(json_string_value(json_object_get(req, "target")), "deployment/lolz");
	json_decref(doc);
	config_free(c);
	cli_args_done(&a);
}

TEST(exec_flags_become_overrides)
{
	char *argv[] = {
	        S("exec"),        S("--no-outgoing"),  S("-x"),  S("A;B*"), S("--agent-addr"),
	        S("127.0.0.1:9"), S("--trace-stacks"), S("-c"),  S("-f"),   S("-"),
	        S("--"),          S("prog"),           S("arg"), NULL};
	struct cli_args a;
	CHECK(cli_parse(CLI_EXEC, 13, argv, &a) == 0);
	CHECK_EQ(a.argc, 2);
	CHECK_STR(a.argv[0], "prog");
	/* --no-outgoing sets two variables. */
	CHECK_EQ(a.nov, 7);
	CHECK_STR(a.ov[0].name, "MIRRORD_TCP_OUTGOING");
	CHECK_STR(a.ov[1].name, "MIRRORD_UDP_OUTGOING");
	CHECK_STR(a.ov[2].value, "A;B*");
	CHECK_STR(a.ov[5].name, "MIRRORD_ACCEPT_INVALID_CERTIFICATES");
	CHECK_STR(a.ov[5].value, "true");
	CHECK_STR(a.ov[6].name, "MIRRORD_CONFIG_FILE");
	CHECK_STR(a.ov[6].value, "-");
	cli_args_done(&a);

	/* -f without a value: mirrord's default path. */
	char *argv2[] = {S("exec"), S("-f"), S("--"), S("prog"), NULL};
	CHECK(cli_parse(CLI_EXEC, 4, argv2, &a) == 0);
	CHECK_STR(a.ov[0].value, "./.mirrord/mirrord.json");
	cli_args_done(&a);

	char *argv3[] = {S("exec"), S("--accept-invalid-certificates=false"), S("p"), NULL};
	CHECK(cli_parse(CLI_EXEC, 3, argv3, &a) == 0);
	CHECK_STR(a.ov[0].value, "false");
	cli_args_done(&a);
}

TEST(flag_beats_env_beats_file_for_bools)
{
	char *path = write_config("m.json", "{\"feature\": {\"network\": {\"outgoing\": "
	                                    "{\"tcp\": true, \"udp\": false}}}}");
	char *envp[] = {S("MIRRORD_TCP_OUTGOING=false"), S("MIRRORD_UDP_OUTGOING=true"), NULL};
	struct config_override ov[] = {{"MIRRORD_UDP_OUTGOING", "false", "--no-udp-outgoing"}};
	struct config_errors errs = {0};
	struct config *c = NULL;

	CHECK(resolve(envp, ov, 1, path, &c, &errs) == 0);
	CHECK(!c->outgoing_tcp);
	CHECK_STR(src_name(c, CF_OUT_TCP), "env");
	CHECK(!c->outgoing_udp);
	CHECK_STR(src_name(c, CF_OUT_UDP), "flag");
	config_free(c);
	free(path);
}

/* ---- toggles ------------------------------------------------------------- */

TEST(toggle_forms)
{
	struct config *c = must_resolve_text("m.json", "{\"feature\": {\"env\": false}}");
	CHECK_STR(c->env_exclude, "*");
	config_free(c);

	c = must_resolve_text("m.json", "{\"feature\": {\"network\": false}}");
	CHECK(!c->outgoing_tcp && !c->outgoing_udp && !c->remote_dns);
	CHECK_STR(config_str(c, CF_IN_MODE), "off");
	CHECK_EQ(c->warnings.n, 0); /* off is what mirrord-trace does */
	config_free(c);

	/* false still honours the variables (disabled_config). */
	char *path = write_config("m.json", "{\"feature\": {\"network\": false}}");
	char *envp[] = {S("MIRRORD_TCP_OUTGOING=true"), NULL};
	struct config_errors errs = {0};
	CHECK(resolve(envp, NULL, 0, path, &c, &errs) == 0);
	CHECK(c->outgoing_tcp && !c->outgoing_udp);
	config_free(c);
	free(path);

	c = must_resolve_text("m.json", "{\"feature\": {\"network\": true}}");
	CHECK(c->outgoing_tcp && c->outgoing_udp && c->remote_dns);
	config_free(c);

	c = must_resolve_text("m.json",
	                      "{\"target\": \"pod/x\", \"feature\": {\"network\": {\"incoming\": "
	                      "\"steal\", \"outgoing\": false, \"dns\": false}}}");
	CHECK_STR(config_str(c, CF_IN_MODE), "steal");
	CHECK(!c->outgoing_tcp && !c->outgoing_udp && !c->remote_dns);
	CHECK_EQ(c->warnings.n, 0);
	config_free(c);

	c = must_resolve_text("m.json", "{\"feature\": {\"network\": {\"incoming\": true}}}");
	CHECK_STR(config_str(c, CF_IN_MODE), "mirror");
	config_free(c);
	c = must_resolve_text("m.json", "{\"feature\": {\"network\": {\"incoming\": false}}}");
	CHECK_STR(config_str(c, CF_IN_MODE), "off");
	config_free(c);

	c = must_resolve_text("m.json", "{\"feature\": {\"fs\": \"write\"}}");
	CHECK_STR(config_str(c, CF_FS_MODE), "write");
	config_free(c);
	c = must_resolve_text("m.json", "{\"feature\": {\"fs\": true}}");
	CHECK_STR(config_str(c, CF_FS_MODE), "read");
	config_free(c);
	c = must_resolve_text("m.json", "{\"feature\": {\"fs\": false}}");
	CHECK_STR(config_str(c, CF_FS_MODE), "local");
	CHECK_EQ(c->warnings.n, 0);
	config_free(c);

	_cleanup_free_ char *e =
	        must_fail_text("m.json", "{\"feature\": {\"network\": {\"outgoing\": \"yes\"}}}");
	CHECK_STR(e, "DIR/m.json:1:26: feature.network.outgoing: expected true, false or an "
	             "object, got a string\n");
}

TEST(env_steal_traffic_values)
{
	const char *in[] = {"true", "false", "steal", "mirror", "off"};
	const char *out[] = {"steal", "off", "steal", "mirror", "off"};
	for (size_t i = 0; i < ARRAY_SIZE(in); i++) {
		_cleanup_free_ char *e = xasprintf("MIRRORD_AGENT_TCP_STEAL_TRAFFIC=%s", in[i]);
		char tgt[] = "MIRRORD_IMPERSONATED_TARGET=pod/x";
		char *envp[] = {e, tgt, NULL};
		struct config_errors errs = {0};
		struct config *c = NULL;
		CHECK(resolve(envp, NULL, 0, NULL, &c, &errs) == 0);
		CHECK_STR(config_str(c, CF_IN_MODE), out[i]);
		config_free(c);
	}
}

/* ---- checks and warnings --------------------------------------------------- */

TEST(incoming_checks)
{
	struct config_errors errs = {0};
	struct config *c = NULL;
	char steal[] = "MIRRORD_AGENT_TCP_STEAL_TRAFFIC=true";
	char *envp[] = {steal, NULL};

	/* Steal without a target is an error; mirror targetless is not. */
	CHECK(resolve(envp, NULL, 0, NULL, &c, &errs) == -EINVAL);
	CHECK(errs.n == 1 && strstr(errs.v[0].message, "steal needs a target"));
	config_errors_clear(&errs);
	c = must_resolve_text("m.json", "{\"feature\": {\"network\": {\"incoming\": "
	                                "{\"mode\": \"mirror\", \"http_filter\": {\"any_of\": "
	                                "[{\"header\": \"^x: 1$\"}, {\"path\": \"/a\"}]}}}}}");
	CHECK_EQ(c->warnings.n, 0);
	config_free(c);
	char *path = write_config("m.json",
	                          "{\"target\": \"pod/x\", \"feature\": {\"network\": "
	                          "{\"incoming\": {\"port_mapping\": [[80, 8080], [81, 8080]], "
	                          "\"http_filter\": {\"all_of\": [{\"body\": \"x\"}]}}}}}");
	char *none[] = {NULL};
	CHECK(resolve(none, NULL, 0, path, &c, &errs) == -EINVAL);
	CHECK_EQ(errs.n, 2);
	config_errors_clear(&errs);
	free(path);
}

TEST(include_and_exclude_together)
{
	_cleanup_free_ char *e = must_fail_text(
	        "m.json", "{\"feature\": {\"env\": {\"include\": \"A\", \"exclude\": [\"B\"]}}}");
	CHECK_STR(e, "DIR/m.json:1:22: feature.env.include: include and exclude cannot be used "
	             "together (also -s/--override-env-vars-include and "
	             "-x/--override-env-vars-exclude); keep one of them\n");

	struct config_override ov[] = {{"MIRRORD_OVERRIDE_ENV_VARS_INCLUDE", "A", "-s"},
	                               {"MIRRORD_OVERRIDE_ENV_VARS_EXCLUDE", "B", "-x"}};
	struct config_errors errs = {0};
	struct config *c = NULL;
	char *envp[] = {NULL};
	CHECK(resolve(envp, ov, 2, NULL, &c, &errs) < 0);
	CHECK_EQ(errs.n, 1);
	_cleanup_free_ char *t = errors_text(&errs);
	CHECK_STR(t, "-s: feature.env.include: include and exclude cannot be used together "
	             "(also -s/--override-env-vars-include and -x/--override-env-vars-exclude); "
	             "keep one of them\n");
	config_errors_clear(&errs);
}

TEST(all_problems_are_reported)
{
	_cleanup_free_ char *e =
	        must_fail_text("m.json", "{\n"
	                                 "  \"agent\": {\"ttl\": -1, \"port\": 1},\n"
	                                 "  \"feature\": {\"fs\": {\"mode\": \"rw\"}},\n"
	                                 "  \"target\": \"pod/x/baz\",\n"
	                                 "  \"operator\": true\n"
	                                 "}\n");
	CHECK(strstr(e, "DIR/m.json:2:13: agent.ttl: -1 is out of range (0-65535)\n"));
	CHECK(strstr(e, "DIR/m.json:2:24: agent.port: unknown field\n"));
	CHECK(strstr(e, "DIR/m.json:3:22: feature.fs.mode: \"rw\" is not one of read, write, "
	                "local or localwithoverrides\n"));
	CHECK(strstr(e, "DIR/m.json:4:3: target.path: "));
	CHECK(strstr(e, "DIR/m.json:5:3: operator: mirrord-trace has no operator"));
}

TEST(env_errors_name_the_variable)
{
	char *envp[] = {S("MIRRORD_AGENT_TTL=soon"), S("MIRRORD_IMPERSONATED_TARGET=lolz"), NULL};
	struct config_errors errs = {0};
	struct config *c = NULL;
	CHECK(resolve(envp, NULL, 0, NULL, &c, &errs) < 0);
	_cleanup_free_ char *t = errors_text(&errs);
	CHECK(strstr(t, "MIRRORD_IMPERSONATED_TARGET (environment): target.path: "));
	CHECK(strstr(t, "pod/lolz"));
	CHECK(strstr(t, "MIRRORD_AGENT_TTL (environment): agent.ttl: \"soon\" is not a number "
	                "between 0 and 65535\n"));
	config_errors_clear(&errs);
}

TEST(fs_patterns_must_compile)
{
	_cleanup_free_ char *e = must_fail_text(
	        "m.json", "{\"feature\": {\"fs\": {\"mapping\": {\"^/ok/(.*)\": \"/a/$1\", "
	                  "\"^/config/(.*\": \"/app/$1\"}, \"not_found\": [\"x\", \"a[b\"]}}}");
	CHECK_STR(e, "DIR/m.json:1:21: feature.fs.mapping: bad pattern \"^/config/(.*\": missing "
	             "closing parenthesis at offset 12; give a PCRE2 regex (a backslash makes ( ) "
	             "[ ] { } . * + ? | ^ $ literal)\n"
	             "DIR/m.json:1:83: feature.fs.not_found: bad pattern \"a[b\": missing "
	             "terminating ] for character class at offset 3; give a PCRE2 regex (a "
	             "backslash makes ( ) [ ] { } . * + ? | ^ $ literal)\n");

	char *envp[] = {S("MIRRORD_FILE_LOCAL_PATTERN=^/ok;(x"), NULL};
	struct config_errors errs = {0};
	struct config *c = NULL;
	CHECK(resolve(envp, NULL, 0, NULL, &c, &errs) < 0);
	CHECK_EQ(errs.n, 1);
	_cleanup_free_ char *t = errors_text(&errs);
	CHECK(strstr(t, "MIRRORD_FILE_LOCAL_PATTERN (environment): feature.fs.local: bad pattern "
	                "\"(x\""));
	config_errors_clear(&errs);

	/* Good patterns: resolved, and the mapping is implemented (no
	 * warning). */
	c = must_resolve_text("m.json", "{\"feature\": {\"fs\": {\"mapping\": {\"^/config/"
	                                "(?<rest>.*)\": \"/app/${rest}\"}, \"local\": \"^/x$\"}}}");
	CHECK_EQ(c->warnings.n, 0);
	config_free(c);
}

TEST(unimplemented_fields_warn_once_each)
{
	struct config *c = must_resolve_text("m.json", "{\"agent\": {\"inject_headers\": true, "
	                                               "\"json_log\": true}}");
	CHECK_EQ(c->warnings.n, 2);
	_cleanup_free_ char *w1 = config_error_format(&c->warnings.v[0]);
	_cleanup_free_ char *w0 = config_error_format(&c->warnings.v[1]);
	CHECK(strstr(
	        w0, "m.json:1:36: agent.json_log: accepted but not implemented yet: the agent logs "
	            "plain text lines"));
	CHECK(strstr(w1, "m.json:1:12: agent.inject_headers: accepted but not implemented yet: "
	                 "the agent does not take this setting"));
	config_free(c);

	/* The agent's incoming settings are implemented; the detection
	 * timeout is bounded. */
	c = must_resolve_text("m.json", "{\"agent\": {\"nftables\": false, \"flush_connections\": "
	                                "false, \"http_detection_timeout\": 5}}");
	CHECK_EQ(c->warnings.n, 0);
	config_free(c);
	for (int bad = 0; bad < 2; bad++) {
		char *envp[] = {bad ? S("MIRRORD_AGENT_HTTP_DETECTION_TIMEOUT=0")
		                    : S("MIRRORD_AGENT_HTTP_DETECTION_TIMEOUT=3601"),
		                NULL};
		struct config_errors errs = {0};
		CHECK(resolve(envp, NULL, 0, NULL, &c, &errs) < 0);
		_cleanup_free_ char *t = errors_text(&errs);
		CHECK(strstr(t, "agent.http_detection_timeout: must be 1 to 3600 seconds"));
		config_errors_clear(&errs);
	}

	/* Quiet values: what mirrord-trace does anyway. */
	c = must_resolve_text("m.json", "{\"telemetry\": false, \"operator\": false, "
	                                "\"feature\": {\"network\": {\"ipv6\": true}}}");
	CHECK_EQ(c->warnings.n, 0);
	config_free(c);
}

TEST(every_field_has_a_default_and_a_unique_path)
{
	for (int i = 0; i < CF__COUNT; i++) {
		CHECK(config_fields[i].path);
		CHECK_EQ(config_field_by_path(config_fields[i].path), i);
		if (config_fields[i].def)
			CHECK(json_loads(config_fields[i].def, JSON_DECODE_ANY, NULL));
		if (config_fields[i].impl != IMPL_YES)
			CHECK(config_fields[i].note);
	}
}

TEST(ephemeral_targetless_is_an_error)
{
	_cleanup_free_ char *e = must_fail_text("m.json", "{\"agent\": {\"ephemeral\": true}}");
	CHECK_STR(e, "DIR/m.json:1:12: agent.ephemeral: an ephemeral agent needs a target; it "
	             "cannot be used targetless\n");
}

TEST(http_filter_one_kind)
{
	_cleanup_free_ char *e = must_fail_text(
	        "m.json", "{\"feature\": {\"network\": {\"incoming\": {\"http_filter\": "
	                  "{\"header_filter\": \"a\", \"path_filter\": \"/b\"}}}}}");
	CHECK(strstr(e, "feature.network.incoming.http_filter.path_filter: http_filter takes "
	                "exactly one of"));
}

TEST_MAIN()
