/* kubeconfig: merge rules, selection, kubectl's validation texts, exec
 * plugins and in-cluster config. Fixtures are in tests/k8s/fixtures (merge)
 * or written inline to a temp dir (validation table). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "k8s/kubeconfig.h"
#include "tests/unit/test.h"

static const char *fx(const char *rel)
{
	static char buf[4][1024];
	static int n;
	char *b = buf[n++ % 4];
	snprintf(b, 1024, "%s/%s", getenv("K8S_FIXTURES") ?: "tests/k8s/fixtures", rel);
	return b;
}

static char tmpdir[64];

static const char *write_tmp(const char *name, const char *content, int mode)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/k8s-test-XXXXXX");
		CHECK(mkdtemp(tmpdir));
	}
	static char path[8][256];
	static int n;
	char *p = path[n++ % 8];
	snprintf(p, 256, "%s/%s", tmpdir, name);
	FILE *f = fopen(p, "we");
	CHECK(f);
	fputs(content, f);
	fclose(f);
	chmod(p, (mode_t)mode);
	return p;
}

static struct kubeconfig *load_env(const char *env, const char *ctx)
{
	struct kubeconfig_opts o = {.env = env, .context = ctx, .no_in_cluster = true};
	struct kubeconfig *kc = NULL;
	struct k8s_error err = {0};
	int r = kubeconfig_load(&o, &kc, &err);
	if (r < 0)
		fprintf(stderr, "load: %s\n", err.message);
	CHECK(r == 0);
	return kc;
}

TEST(merge_first_file_wins)
{
	char env[2048];
	snprintf(env, sizeof(env), "%s:%s", fx("a/config"), fx("b/config"));
	struct kubeconfig *kc = load_env(env, NULL);
	CHECK_STR(kc->context, "ctx1");
	CHECK_STR(kc->server, "https://10.0.0.1:6443"); /* a's c1, not b's */
	CHECK_STR(kc->namespace, "alpha");
	CHECK_STR(kc->token, "tokA");
	/* relative certificate-authority resolved against a/ */
	CHECK(kc->ca_pem && strstr(kc->ca_pem, "BEGIN CERTIFICATE"));
	kubeconfig_free(kc);

	/* red is defined in both: a's wins even when b's context uses it. */
	kc = load_env(env, "ctx2");
	CHECK_STR(kc->token, "red-a");
	CHECK_STR(kc->namespace, "beta");
	CHECK(kc->insecure);
	CHECK_STR(kc->tls_server_name, "api.example");
	CHECK_STR(kc->proxy_url, "socks5://127.0.0.1:1080");
	kubeconfig_free(kc);
}

TEST(merge_order_and_list_rules)
{
	char env[2048];
	/* empty entries, a missing file and a duplicate are all ignored */
	snprintf(env, sizeof(env), "::/nonexistent/kc:%s:%s:%s", fx("b/config"), fx("a/config"),
	         fx("b/config"));
	struct kubeconfig *kc = load_env(env, NULL);
	CHECK_STR(kc->context, "ctx2"); /* b's current-context comes first now */
	CHECK_STR(kc->token, "red-b");
	kubeconfig_free(kc);
	/* b's ctx1 now wins over a's */
	kc = load_env(env, "ctx1");
	CHECK_STR(kc->server, "https://10.0.0.2");
	kubeconfig_free(kc);
}

TEST(token_file_relative_and_trimmed)
{
	struct kubeconfig *kc = load_env(fx("b/config"), "ctx3");
	CHECK(kc->token_file && kc->token_file[0] == '/');
	const char *tok = NULL;
	struct k8s_error err = {0};
	CHECK_EQ(kubeconfig_credentials(kc, false, &tok, &err), 0);
	CHECK_STR(tok, "file-token");
	kubeconfig_free(kc);
}

struct vcase {
	const char *name, *yaml, *context, *want;
};

#define HEAD "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n"
#define CTX "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n"

static const struct vcase vcases[] = {
        {"empty", "", NULL,
         "invalid configuration: no configuration has been provided, try setting "
         "KUBERNETES_MASTER environment variable"},
        {"no_server",
         "clusters:\n- name: c\n  cluster: {insecure-skip-tls-verify: true}\n"
         "users:\n- name: u\n  user: {token: t}\n" CTX,
         NULL, "invalid configuration: no server found for cluster \"c\""},
        {"ctx_missing", HEAD "users:\n- name: u\n  user: {token: t}\n" CTX, "nope",
         "invalid configuration: [context was not found for specified context: nope, "
         "cluster has no server defined]"},
        {"two_methods",
         HEAD "users:\n- name: u\n  user: {token: t, username: a, password: b}\n" CTX, NULL,
         "invalid configuration: more than one authentication method found for u; found "
         "[token basicAuth], only one is allowed"},
        {"cert_no_key", HEAD "users:\n- name: u\n  user: {client-certificate-data: QQ==}\n" CTX,
         NULL,
         "invalid configuration: client-key-data or client-key must be specified for u to use "
         "the clientCert authentication method."},
        {"cert_both",
         HEAD "users:\n- name: u\n  user: {client-certificate-data: QQ==, "
              "client-certificate: /dev/null, client-key-data: QQ==}\n" CTX,
         NULL,
         "invalid configuration: client-cert-data and client-cert are both specified for u. "
         "client-cert-data will override."},
        {"ca_both",
         "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
         "    certificate-authority: /dev/null\n    certificate-authority-data: QQ==\n"
         "users:\n- name: u\n  user: {token: t}\n" CTX,
         NULL,
         "invalid configuration: certificate-authority-data and certificate-authority are both "
         "specified for c. certificate-authority-data will override."},
        {"ca_missing_file",
         "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
         "    certificate-authority: /nonexistent/ca.pem\n"
         "users:\n- name: u\n  user: {token: t}\n" CTX,
         NULL,
         "invalid configuration: unable to read certificate-authority /nonexistent/ca.pem for c "
         "due to open /nonexistent/ca.pem: No such file or directory"},
        {"exec_no_mode",
         HEAD "users:\n- name: u\n  user:\n    exec: {apiVersion: "
              "client.authentication.k8s.io/v1, command: x}\n" CTX,
         NULL,
         "invalid configuration: interactiveMode must be specified for u to use exec "
         "authentication plugin"},
        {"exec_bad_mode",
         HEAD "users:\n- name: u\n  user:\n    exec: {apiVersion: "
              "client.authentication.k8s.io/v1, command: x, interactiveMode: "
              "Sometimes}\n" CTX,
         NULL, "invalid configuration: invalid interactiveMode for u: \"Sometimes\""},
        {"exec_no_cmd_no_api",
         HEAD "users:\n- name: u\n  user:\n    exec: {interactiveMode: Never}\n" CTX, NULL,
         "invalid configuration: [command must be specified for u to use exec authentication "
         "plugin, apiVersion must be specified for u to use exec authentication plugin]"},
        {"exec_and_provider",
         HEAD "users:\n- name: u\n  user:\n    auth-provider: {name: oidc}\n"
              "    exec: {apiVersion: client.authentication.k8s.io/v1beta1, "
              "command: x}\n" CTX,
         NULL,
         "invalid configuration: authProvider cannot be provided in combination with an exec "
         "plugin for u"},
        {"exec_v1alpha1",
         HEAD "users:\n- name: u\n  user:\n    exec: {apiVersion: "
              "client.authentication.k8s.io/v1alpha1, command: x, "
              "interactiveMode: Never}\n" CTX,
         NULL, "exec plugin: invalid apiVersion \"client.authentication.k8s.io/v1alpha1\""},
        {"auth_provider_gcp",
         HEAD "users:\n- name: u\n  user:\n    auth-provider: {name: gcp}\n" CTX, NULL,
         "user \"u\" uses the legacy auth-provider \"gcp\", which mirrord-trace does not "
         "support; configure the \"gke-gcloud-auth-plugin\" exec plugin (gcloud components "
         "install gke-gcloud-auth-plugin, then gcloud container clusters get-credentials) "
         "instead"},
        {"insecure_with_ca",
         "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
         "    certificate-authority-data: QQ==\n"
         "    insecure-skip-tls-verify: true\n"
         "users:\n- name: u\n  user: {token: t}\n" CTX,
         NULL, "specifying a root certificates file with the insecure flag is not allowed"},
        {"bad_namespace",
         HEAD "users:\n- name: u\n  user: {token: t}\n"
              "contexts:\n- name: x\n  context: {cluster: c, user: u, "
              "namespace: Bad_NS}\ncurrent-context: x\n",
         NULL,
         "invalid configuration: namespace \"Bad_NS\" for context \"x\" does not conform to "
         "the kubernetes DNS_LABEL rules"},
        {"dangling_refs",
         HEAD "contexts:\n- name: x\n  context: {cluster: nocluster, user: nobody}\n"
              "current-context: x\n",
         NULL,
         "invalid configuration: [user \"nobody\" was not found for context \"x\", cluster "
         "\"nocluster\" was not found for context \"x\", cluster has no server defined]"},
        {"yaml_error", "clusters: [\n", NULL, NULL /* prefix checked below */},
};

TEST(validation_messages)
{
	for (size_t i = 0; i < ARRAY_SIZE(vcases); i++) {
		const struct vcase *v = &vcases[i];
		const char *p = write_tmp(v->name, v->yaml, 0600);
		struct kubeconfig_opts o = {
		        .path = p, .context = v->context, .no_in_cluster = true};
		struct kubeconfig *kc = NULL;
		struct k8s_error err = {0};
		int r = kubeconfig_load(&o, &kc, &err);
		if (r == 0 || (v->want && strcmp(err.message, v->want))) {
			fprintf(stderr, "case %s: r=%d\n got: %s\nwant: %s\n", v->name, r,
			        err.message, v->want);
			CHECK(0);
		}
		if (!v->want)
			CHECK(strstr(err.message, "error loading config file"));
		k8s_error_clear(&err);
	}
}

TEST(explicit_path_missing)
{
	struct kubeconfig_opts o = {.path = "/nonexistent/kubeconfig", .no_in_cluster = true};
	struct kubeconfig *kc = NULL;
	struct k8s_error err = {0};
	CHECK_EQ(kubeconfig_load(&o, &kc, &err), -ENOENT);
	CHECK_STR(err.message, "stat /nonexistent/kubeconfig: no such file or directory");
}

TEST(data_fields_and_json_kubeconfig)
{
	/* JSON is YAML; "true" as a string still counts; -data gets a newline. */
	const char *p = write_tmp(
	        "json",
	        "{\"clusters\":[{\"name\":\"c\",\"cluster\":{\"server\":\"https://h:1/pre\","
	        "\"insecure-skip-tls-verify\":\"true\"}}],\"users\":[{\"name\":\"u\",\"user\":"
	        "{\"client-certificate-data\":\"Q0VSVA==\",\"client-key-data\":\"S0VZ\","
	        "\"as\":\"bob\"}}],\"contexts\":[{\"name\":\"x\",\"context\":{\"cluster\":\"c\","
	        "\"user\":\"u\"}}],\"current-context\":\"x\"}",
	        0600);
	struct kubeconfig_opts o = {.path = p, .no_in_cluster = true};
	struct kubeconfig *kc = NULL;
	struct k8s_error err = {0};
	CHECK_EQ(kubeconfig_load(&o, &kc, &err), 0);
	CHECK(kc->insecure);
	CHECK_STR(kc->cert_pem, "CERT\n");
	CHECK_STR(kc->key_pem, "KEY\n");
	CHECK_STR(kc->impersonate_user, "bob");
	CHECK(kc->namespace == NULL);
	kubeconfig_free(kc);
}

static const char plugin[] =
        "#!/bin/sh\n"
        "d=$(dirname \"$0\")\n"
        "echo run >> \"$d/runs\"\n"
        "printf '%s\\n' \"$KUBERNETES_EXEC_INFO\" > \"$d/info\"\n"
        "printf '%s|' \"$@\" > \"$d/args\"\n"
        "printf '%s' \"$PLUGIN_ENV\" > \"$d/env\"\n"
        "case \"$1\" in\n"
        "wrongver) echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
        "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}' ;;\n"
        "expired) echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":"
        "\"ExecCredential\",\"status\":{\"token\":\"old\",\"expirationTimestamp\":"
        "\"2001-01-01T00:00:00Z\"}}' ;;\n"
        "fail) exit 3 ;;\n"
        "*) echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":"
        "\"ExecCredential\",\"status\":{\"token\":\"plugin-token\",\"expirationTimestamp\":"
        "\"2099-01-01T00:00:00Z\"}}' ;;\n"
        "esac\n";

static struct kubeconfig *exec_kc(const char *arg, const char *cmd)
{
	write_tmp("plugin.sh", plugin, 0755);
	char yaml[2048];
	snprintf(yaml, sizeof(yaml),
	         "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n"
	         "    certificate-authority-data: QUJD\n"
	         "    extensions:\n    - name: client.authentication.k8s.io/exec\n"
	         "      extension: {audience: aud}\n"
	         "users:\n- name: u\n  user:\n    exec:\n"
	         "      apiVersion: client.authentication.k8s.io/v1\n"
	         "      command: %s\n      args: [\"%s\", \"two words\"]\n"
	         "      env: [{name: PLUGIN_ENV, value: from-kubeconfig}]\n"
	         "      interactiveMode: Never\n      provideClusterInfo: true\n"
	         "      installHint: install it with apt\n" CTX,
	         cmd, arg);
	const char *p = write_tmp("exec.yaml", yaml, 0600);
	struct kubeconfig_opts o = {.path = p, .no_in_cluster = true};
	struct kubeconfig *kc = NULL;
	struct k8s_error err = {0};
	CHECK_EQ(kubeconfig_load(&o, &kc, &err), 0);
	return kc;
}

static char *slurp(const char *name)
{
	static char buf[4096];
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	FILE *f = fopen(p, "re");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

TEST(exec_plugin_token_cached)
{
	/* relative command with a slash: resolved against the kubeconfig dir */
	struct kubeconfig *kc = exec_kc("ok", "./plugin.sh");
	CHECK(kc->exec->command[0] == '/');
	const char *tok = NULL;
	struct k8s_error err = {0};
	CHECK_EQ(kubeconfig_credentials(kc, false, &tok, &err), 0);
	CHECK_STR(tok, "plugin-token");
	CHECK_EQ(kubeconfig_credentials(kc, false, &tok, &err), 0);
	CHECK_STR(slurp("runs"), "run\n"); /* cached until 2099 */
	CHECK_STR(slurp("args"), "ok|two words|");
	CHECK_STR(slurp("env"), "from-kubeconfig");
	CHECK_STR(slurp("info"),
	          "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
	          "\"spec\":{\"interactive\":false,\"cluster\":{\"server\":\"https://"
	          "127.0.0.1:6443\","
	          "\"certificate-authority-data\":\"QUJDCg==\",\"config\":{\"audience\":\"aud\"}}}}"
	          "\n");
	/* a 401 forces a re-run */
	CHECK_EQ(kubeconfig_credentials(kc, true, &tok, &err), 0);
	CHECK_STR(slurp("runs"), "run\nrun\n");
	kubeconfig_free(kc);
}

TEST(exec_plugin_expired_reruns)
{
	struct kubeconfig *kc = exec_kc("expired", "./plugin.sh");
	const char *tok = NULL;
	struct k8s_error err = {0};
	CHECK_EQ(kubeconfig_credentials(kc, false, &tok, &err), 0);
	CHECK_EQ(kubeconfig_credentials(kc, false, &tok, &err), 0);
	CHECK_STR(tok, "old");
	CHECK_STR(slurp("runs"), "run\nrun\n");
	kubeconfig_free(kc);
}

TEST(exec_plugin_errors)
{
	struct {
		const char *arg, *cmd, *want;
	} cases[] = {
	        {"wrongver", "./plugin.sh",
	         "exec plugin is configured to use API version client.authentication.k8s.io/v1, "
	         "plugin returned version client.authentication.k8s.io/v1beta1"},
	        {"fail", "./plugin.sh", NULL},
	        {"x", "no-such-plugin-xyz",
	         "exec: executable no-such-plugin-xyz not found; install it with apt"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kubeconfig *kc = exec_kc(cases[i].arg, cases[i].cmd);
		const char *tok = NULL;
		struct k8s_error err = {0};
		CHECK(kubeconfig_credentials(kc, false, &tok, &err) < 0);
		char want[512];
		if (cases[i].want)
			snprintf(want, sizeof(want), "%s", cases[i].want);
		else
			snprintf(want, sizeof(want), "exec: executable %s failed with exit code 3",
			         kc->exec->command);
		CHECK_STR(err.message, want);
		k8s_error_clear(&err);
		kubeconfig_free(kc);
	}
}

TEST(in_cluster)
{
	write_tmp("token", "sa-token\n", 0600);
	write_tmp("namespace", " lolzspace\n", 0600);
	write_tmp("ca.crt", "-----BEGIN CERTIFICATE-----\n", 0600);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	unsetenv("POD_NAMESPACE");
	struct kubeconfig_opts o = {.env = "/nonexistent/a:/nonexistent/b", .sa_dir = tmpdir};
	struct kubeconfig *kc = NULL;
	struct k8s_error err = {0};
	CHECK_EQ(kubeconfig_load(&o, &kc, &err), 0);
	CHECK(kc->in_cluster);
	CHECK_STR(kc->server, "https://[fd00::1]:443");
	CHECK_STR(kc->namespace, "lolzspace");
	const char *tok = NULL;
	CHECK_EQ(kubeconfig_credentials(kc, false, &tok, &err), 0);
	CHECK_STR(tok, "sa-token");
	kubeconfig_free(kc);
	/* an explicit kubeconfig never falls back */
	o.path = "/nonexistent/kc";
	CHECK_EQ(kubeconfig_load(&o, &kc, &err), -ENOENT);
}

TEST(namespace_hook)
{
	char *ns = k8s_kube_namespace(fx("a/config"), NULL);
	CHECK_STR(ns, "alpha");
	free(ns);
	CHECK(k8s_kube_namespace(fx("a/config"), "nope") == NULL);
}

TEST_MAIN()
