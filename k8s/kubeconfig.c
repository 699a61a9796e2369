/* kubeconfig: file discovery, merge, context selection and validation
 * (k8s-wire.md §1.2-§1.3). The exec plugin lives in kubeconfig_exec.c. */
#include "k8s/kubeconfig.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "k8s/internal.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* KUBECONFIG lists are short; this bounds the work a hostile one can ask. */
#define KUBECONFIG_FILES_MAX 64
/* Validation errors collected before they are joined into one message. */
#define VERRORS_MAX 16

struct merged {
	json_t *clusters, *users, *contexts; /* name -> stanza body */
	char *current_context;
	bool any; /* some file set something */
};

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s && *s ? s : NULL;
}

/* kubeconfig booleans arrive as YAML booleans, or as strings from JSON
 * written by other tools. */
static bool jbool(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (json_is_boolean(v))
		return json_is_true(v);
	bool b = false;
	if (json_is_string(v))
		(void)parse_bool(json_string_value(v), &b);
	return b;
}

/* Make a stanza's relative path absolute against its file's directory, as
 * client-go's ResolveLocalPaths does per LocationOfOrigin. */
static int resolve_path(json_t *obj, const char *key, const char *dir, bool only_with_slash)
{
	const char *p = jstr(obj, key);
	if (!p || p[0] == '/')
		return 0;
	if (only_with_slash && !strchr(p, '/'))
		return 0;
	_cleanup_free_ char *abs = NULL;
	if (asprintf(&abs, "%s/%s", dir, p) < 0)
		return -ENOMEM;
	return json_object_set_new(obj, key, json_string(abs)) < 0 ? -ENOMEM : 0;
}

static int merge_list(struct merged *m, json_t *file, const char *list, const char *body_key,
                      json_t *into, const char *dir, const char *fname, struct k8s_error *err)
{
	json_t *arr = json_object_get(file, list);
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return k8s_errorf(err, -EINVAL, 0, NULL,
		                  "error loading config file \"%s\": %s must be a list", fname,
		                  list);
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e)
	{
		const char *name = jstr(e, "name");
		json_t *body = json_object_get(e, body_key);
		if (!name || (body && !json_is_object(body)))
			return k8s_errorf(
			        err, -EINVAL, 0, NULL,
			        "error loading config file \"%s\": %s[%zu] needs a name and "
			        "a %s mapping",
			        fname, list, i, body_key);
		m->any = true;
		/* First file to define a name wins, and its stanza is not merged
		 * with later ones (kubectl docs, "Merging kubeconfig files"). */
		if (json_object_get(into, name))
			continue;
		_cleanup_json_ json_t *copy = body ? json_deep_copy(body) : json_object();
		if (!copy)
			return -ENOMEM;
		int r = 0;
		if (!strcmp(list, "clusters")) {
			r = resolve_path(copy, "certificate-authority", dir, false);
		} else if (!strcmp(list, "users")) {
			r = resolve_path(copy, "client-certificate", dir, false);
			if (r >= 0)
				r = resolve_path(copy, "client-key", dir, false);
			if (r >= 0)
				r = resolve_path(copy, "tokenFile", dir, false);
			json_t *ex = json_object_get(copy, "exec");
			if (r >= 0 && json_is_object(ex))
				r = resolve_path(ex, "command", dir, true);
		}
		if (r < 0)
			return r;
		if (json_object_set(into, name, copy) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int merge_file(struct merged *m, const char *path, bool must_exist, struct k8s_error *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = k8s_read_file(path, K8S_KUBECONFIG_MAX, &buf, &len);
	if (r == -ENOENT && !must_exist)
		return 0; /* missing files in the list are skipped */
	if (r == -ENOENT)
		return k8s_errorf(err, r, 0, NULL, "stat %s: no such file or directory", path);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return k8s_errorf(err, r, 0, NULL, "error loading config file \"%s\": %s", path,
		                  strerror(-r));
	_cleanup_json_ json_t *j = NULL;
	r = k8s_yaml_to_json(buf, len, path, &j, err);
	if (r < 0)
		return r;
	if (json_is_null(j))
		return 0;
	if (!json_is_object(j))
		return k8s_errorf(err, -EINVAL, 0, NULL,
		                  "error loading config file \"%s\": not a kubeconfig mapping",
		                  path);

	/* Relative paths resolve against the file's own directory. */
	_cleanup_free_ char *dir = NULL;
	const char *slash = strrchr(path, '/');
	_cleanup_free_ char *cwd = NULL;
	if (path[0] != '/') {
		cwd = getcwd(NULL, 0);
		if (!cwd)
			return -errno;
	}
	if (asprintf(&dir, "%s%s%.*s", cwd ? cwd : "", cwd && slash ? "/" : "",
	             slash ? (int)(slash - path) : 0, path) < 0)
		return -ENOMEM;
	if (!*dir) {
		free(dir);
		dir = strdup("/");
		if (!dir)
			return -ENOMEM;
	}
	r = merge_list(m, j, "clusters", "cluster", m->clusters, dir, path, err);
	if (r >= 0)
		r = merge_list(m, j, "users", "user", m->users, dir, path, err);
	if (r >= 0)
		r = merge_list(m, j, "contexts", "context", m->contexts, dir, path, err);
	if (r < 0)
		return r;
	const char *cc = jstr(j, "current-context");
	if (cc) {
		m->any = true;
		if (!m->current_context) {
			m->current_context = strdup(cc);
			if (!m->current_context)
				return -ENOMEM;
		}
	}
	return 0;
}

static bool is_dns1123_label(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

struct verrors {
	char *v[VERRORS_MAX];
	size_t n;
	bool oom;
};

MT_PRINTF(2, 3) static void verr(struct verrors *ve, const char *fmt, ...)
{
	if (ve->n == VERRORS_MAX)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&ve->v[ve->n], fmt, ap) < 0)
		ve->oom = true;
	else
		ve->n++;
	va_end(ap);
}

static void verrors_free(struct verrors *ve)
{
	for (size_t i = 0; i < ve->n; i++)
		free(ve->v[i]);
}

static bool readable(const char *path)
{
	return access(path, R_OK) == 0;
}

/* client-go validateAuthInfo, same texts. */
static void validate_user(struct verrors *ve, const char *name, const json_t *u)
{
	const char *methods[2];
	size_t nm = 0;
	if (jstr(u, "token") || jstr(u, "tokenFile"))
		methods[nm++] = "token";
	if (jstr(u, "username") || jstr(u, "password"))
		methods[nm++] = "basicAuth";
	const char *cert = jstr(u, "client-certificate"),
	           *certd = jstr(u, "client-certificate-data");
	const char *key = jstr(u, "client-key"), *keyd = jstr(u, "client-key-data");
	if (cert || certd) {
		if (cert && certd)
			verr(ve,
			     "client-cert-data and client-cert are both specified for %s. "
			     "client-cert-data will override.",
			     name);
		if (key && keyd)
			verr(ve,
			     "client-key-data and client-key are both specified for %s; "
			     "client-key-data will override",
			     name);
		if (!key && !keyd)
			verr(ve,
			     "client-key-data or client-key must be specified for %s to use the "
			     "clientCert authentication method.",
			     name);
		if (cert && !readable(cert))
			verr(ve, "unable to read client-cert %s for %s due to open %s: %s", cert,
			     name, cert, strerror(errno));
		if (key && !readable(key))
			verr(ve, "unable to read client-key %s for %s due to open %s: %s", key,
			     name, key, strerror(errno));
	}
	json_t *ex = json_object_get(u, "exec");
	if (json_is_object(ex)) {
		if (json_object_get(u, "auth-provider"))
			verr(ve,
			     "authProvider cannot be provided in combination with an exec plugin "
			     "for %s",
			     name);
		if (!jstr(ex, "command"))
			verr(ve,
			     "command must be specified for %s to use exec authentication plugin",
			     name);
		const char *av = jstr(ex, "apiVersion");
		if (!av)
			verr(ve,
			     "apiVersion must be specified for %s to use exec authentication "
			     "plugin",
			     name);
		json_t *env = json_object_get(ex, "env");
		size_t i;
		json_t *e;
		json_array_foreach(env, i, e)
		{
			if (!jstr(e, "name"))
				verr(ve,
				     "env variable name must be specified for %s to use exec "
				     "authentication plugin",
				     name);
		}
		const char *im = jstr(ex, "interactiveMode");
		/* v1beta1 defaults to IfAvailable before validation (defaults.go). */
		if (!im && av && !strcmp(av, "client.authentication.k8s.io/v1beta1"))
			im = "IfAvailable";
		if (!im)
			verr(ve,
			     "interactiveMode must be specified for %s to use exec "
			     "authentication plugin",
			     name);
		else if (strcmp(im, "Never") && strcmp(im, "IfAvailable") && strcmp(im, "Always"))
			verr(ve, "invalid interactiveMode for %s: \"%s\"", name, im);
	}
	if (nm > 1)
		verr(ve,
		     "more than one authentication method found for %s; found [%s %s], only one "
		     "is allowed",
		     name, methods[0], methods[1]);
}

/* client-go validateClusterInfo. */
static void validate_cluster(struct verrors *ve, const char *name, const json_t *c, bool *ret_empty)
{
	*ret_empty = !c || json_object_size(c) == 0;
	if (*ret_empty) {
		verr(ve, "cluster has no server defined");
		return;
	}
	if (!jstr(c, "server")) {
		if (!name || !*name)
			verr(ve, "default cluster has no server defined");
		else
			verr(ve, "no server found for cluster \"%s\"", name);
	}
	const char *proxy = jstr(c, "proxy-url");
	if (proxy && strncmp(proxy, "http://", 7) && strncmp(proxy, "https://", 8) &&
	    strncmp(proxy, "socks5://", 9))
		verr(ve, "invalid 'proxy-url' \"%s\" for cluster \"%s\": unsupported scheme", proxy,
		     name);
	const char *ca = jstr(c, "certificate-authority");
	if (ca && jstr(c, "certificate-authority-data"))
		verr(ve,
		     "certificate-authority-data and certificate-authority are both specified "
		     "for %s. certificate-authority-data will override.",
		     name);
	if (ca && !readable(ca))
		verr(ve, "unable to read certificate-authority %s for %s due to open %s: %s", ca,
		     name, ca, strerror(errno));
}

/* client-go validateContext (kubectl config view); ConfirmUsable would turn
 * a dangling reference into the vaguer "no configuration has been provided". */
static void validate_context(struct verrors *ve, const char *name, const json_t *ctx,
                             const struct merged *m)
{
	const char *user = jstr(ctx, "user"), *cluster = jstr(ctx, "cluster");
	if (!user)
		verr(ve, "user was not specified for context \"%s\"", name);
	else if (!json_object_get(m->users, user))
		verr(ve, "user \"%s\" was not found for context \"%s\"", user, name);
	if (!cluster)
		verr(ve, "cluster was not specified for context \"%s\"", name);
	else if (!json_object_get(m->clusters, cluster))
		verr(ve, "cluster \"%s\" was not found for context \"%s\"", cluster, name);
	const char *ns = jstr(ctx, "namespace");
	if (ns && !is_dns1123_label(ns))
		verr(ve,
		     "namespace \"%s\" for context \"%s\" does not conform to the kubernetes "
		     "DNS_LABEL rules",
		     ns, name);
}

/* Join as Go's utilerrors.NewAggregate does: one error alone, several as
 * "[a, b]" with duplicates dropped. */
static int verrors_report(struct verrors *ve, struct k8s_error *err)
{
	if (ve->oom)
		return -ENOMEM;
	size_t len = 64;
	for (size_t i = 0; i < ve->n; i++)
		len += strlen(ve->v[i]) + 2;
	_cleanup_free_ char *msg = malloc(len);
	if (!msg)
		return -ENOMEM;
	size_t off = 0, shown = 0;
	for (size_t i = 0; i < ve->n; i++) {
		bool dup = false;
		for (size_t k = 0; k < i; k++)
			dup |= !strcmp(ve->v[k], ve->v[i]);
		if (dup)
			continue;
		off += (size_t)snprintf(msg + off, len - off, "%s%s", shown ? ", " : "", ve->v[i]);
		shown++;
	}
	return k8s_errorf(err, -EINVAL, 0, NULL, "invalid configuration: %s%s%s",
	                  shown > 1 ? "[" : "", msg, shown > 1 ? "]" : "");
}

/* A *-data value is base64 of PEM; a path is read as is. kube-rs appends a
 * missing final newline, which OpenSSL's PEM reader wants. */
static int load_pem(const char *data, const char *path, const char *what, char **ret,
                    size_t *ret_len, struct k8s_error *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r;
	if (data) {
		r = k8s_base64_decode(data, &buf, &len);
		if (r == -EINVAL)
			return k8s_errorf(err, r, 0, NULL, "%s-data is not valid base64", what);
	} else if (path) {
		r = k8s_read_file(path, K8S_AUX_FILE_MAX, &buf, &len);
		if (r < 0 && r != -ENOMEM)
			return k8s_errorf(err, r, 0, NULL, "unable to read %s %s: %s", what, path,
			                  strerror(-r));
	} else {
		return 0;
	}
	if (r < 0)
		return r;
	if (len == 0 || buf[len - 1] != '\n') {
		char *n = realloc(buf, len + 2);
		if (!n)
			return -ENOMEM;
		buf = n;
		buf[len++] = '\n';
		buf[len] = '\0';
	}
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static int dup_opt(const char *s, char **ret)
{
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static char **strv_new(size_t n)
{
	return calloc(n + 1, sizeof(char *));
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int fill_exec(struct kubeconfig *kc, const json_t *ex, struct k8s_error *err)
{
	const char *av = jstr(ex, "apiVersion");
	if (strcmp(av, "client.authentication.k8s.io/v1") &&
	    strcmp(av, "client.authentication.k8s.io/v1beta1"))
		return k8s_errorf(err, -EINVAL, 0, NULL, "exec plugin: invalid apiVersion \"%s\"",
		                  av);
	struct kube_exec *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	kc->exec = e;
	const char *im = jstr(ex, "interactiveMode");
	e->interactive = !im || !strcmp(im, "IfAvailable") ? KUBE_EXEC_IF_AVAILABLE
	                 : !strcmp(im, "Never")            ? KUBE_EXEC_NEVER
	                                                   : KUBE_EXEC_ALWAYS;
	e->provide_cluster_info = jbool(ex, "provideClusterInfo");
	if (dup_opt(av, &e->api_version) < 0 || dup_opt(jstr(ex, "command"), &e->command) < 0 ||
	    dup_opt(jstr(ex, "installHint"), &e->install_hint) < 0)
		return -ENOMEM;
	json_t *args = json_object_get(ex, "args"), *env = json_object_get(ex, "env");
	if ((args && !json_is_array(args) && !json_is_null(args)) ||
	    (env && !json_is_array(env) && !json_is_null(env)))
		return k8s_errorf(err, -EINVAL, 0, NULL,
		                  "exec plugin of user \"%s\": args and env must be lists",
		                  kc->user_name);
	e->args = strv_new(json_array_size(args) + 1);
	e->env = strv_new(json_array_size(env));
	if (!e->args || !e->env)
		return -ENOMEM;
	if (!(e->args[0] = strdup(e->command)))
		return -ENOMEM;
	size_t i;
	json_t *v;
	json_array_foreach(args, i, v)
	{
		if (!json_is_string(v))
			return k8s_errorf(err, -EINVAL, 0, NULL,
			                  "exec plugin of user \"%s\": args must be strings",
			                  kc->user_name);
		if (!(e->args[i + 1] = strdup(json_string_value(v))))
			return -ENOMEM;
	}
	json_array_foreach(env, i, v)
	{
		const char *val = json_string_value(json_object_get(v, "value"));
		if (asprintf(&e->env[i], "%s=%s", jstr(v, "name"), val ? val : "") < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Legacy auth-provider: client-go keeps only oidc, and refreshing tokens
 * means writing the kubeconfig back; point to the exec replacements. */
static int auth_provider_error(const char *user, const json_t *ap, struct k8s_error *err)
{
	const char *name = jstr(ap, "name");
	const char *hint = "an exec credential plugin (users[].user.exec)";
	if (name && !strcmp(name, "gcp"))
		hint = "the \"gke-gcloud-auth-plugin\" exec plugin (gcloud components install "
		       "gke-gcloud-auth-plugin, then gcloud container clusters get-credentials)";
	else if (name && !strcmp(name, "azure"))
		hint = "the \"kubelogin\" exec plugin (kubelogin convert-kubeconfig)";
	else if (name && !strcmp(name, "oidc"))
		hint = "an exec plugin such as \"kubectl oidc-login\" (int128/kubelogin)";
	return k8s_errorf(err, -EOPNOTSUPP, 0, NULL,
	                  "user \"%s\" uses the legacy auth-provider \"%s\", which mirrord-trace "
	                  "does not support; configure %s instead",
	                  user, name ? name : "?", hint);
}

static int fill(struct kubeconfig *kc, const json_t *c, const json_t *u, struct k8s_error *err)
{
	int r;
	if (dup_opt(jstr(c, "server"), &kc->server) < 0 ||
	    dup_opt(jstr(c, "tls-server-name"), &kc->tls_server_name) < 0 ||
	    dup_opt(jstr(c, "proxy-url"), &kc->proxy_url) < 0)
		return -ENOMEM;
	kc->insecure = jbool(c, "insecure-skip-tls-verify");
	r = load_pem(jstr(c, "certificate-authority-data"), jstr(c, "certificate-authority"),
	             "certificate-authority", &kc->ca_pem, &kc->ca_len, err);
	if (r < 0)
		return r;
	if (kc->ca_pem && kc->insecure)
		return k8s_errorf(
		        err, -EINVAL, 0, NULL,
		        "specifying a root certificates file with the insecure flag is not "
		        "allowed");
	json_t *exts = json_object_get(c, "extensions");
	size_t i;
	json_t *x;
	json_array_foreach(exts, i, x)
	{
		const char *n = jstr(x, "name");
		if (n && !strcmp(n, "client.authentication.k8s.io/exec"))
			kc->exec_cluster_config = json_incref(json_object_get(x, "extension"));
	}

	if (!u)
		return 0;
	r = load_pem(jstr(u, "client-certificate-data"), jstr(u, "client-certificate"),
	             "client-certificate", &kc->cert_pem, &kc->cert_len, err);
	if (r >= 0)
		r = load_pem(jstr(u, "client-key-data"), jstr(u, "client-key"), "client-key",
		             &kc->key_pem, &kc->key_len, err);
	if (r < 0)
		return r;
	if (dup_opt(jstr(u, "token"), &kc->token) < 0 ||
	    dup_opt(jstr(u, "tokenFile"), &kc->token_file) < 0 ||
	    dup_opt(jstr(u, "username"), &kc->username) < 0 ||
	    dup_opt(jstr(u, "password"), &kc->password) < 0 ||
	    dup_opt(jstr(u, "as"), &kc->impersonate_user) < 0)
		return -ENOMEM;
	json_t *ex = json_object_get(u, "exec"), *ap = json_object_get(u, "auth-provider");
	if (json_is_object(ex))
		return fill_exec(kc, ex, err);
	if (ap && !json_is_null(ap))
		return auth_provider_error(kc->user_name, ap, err);
	return 0;
}

/* In-cluster config (client-go rest.InClusterConfig). */
static int load_in_cluster(const char *sa_dir, struct kubeconfig **ret, struct k8s_error *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"),
	           *port = getenv("KUBERNETES_SERVICE_PORT");
	_cleanup_kubeconfig_ struct kubeconfig *kc = calloc(1, sizeof(*kc));
	if (!kc)
		return -ENOMEM;
	kc->in_cluster = true;
	bool v6 = strchr(host, ':') != NULL;
	if (asprintf(&kc->server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port) <
	            0 ||
	    asprintf(&kc->token_file, "%s/token", sa_dir) < 0)
		return -ENOMEM;
	_cleanup_free_ char *ca = NULL;
	if (asprintf(&ca, "%s/ca.crt", sa_dir) < 0)
		return -ENOMEM;
	/* client-go goes on without the CA (system roots) if it cannot load it. */
	int r = load_pem(NULL, ca, "certificate-authority", &kc->ca_pem, &kc->ca_len, err);
	if (r == -ENOMEM)
		return r;
	k8s_error_clear(err);
	const char *ns = getenv("POD_NAMESPACE");
	if (ns && *ns) {
		if (dup_opt(ns, &kc->namespace) < 0)
			return -ENOMEM;
	} else {
		_cleanup_free_ char *path = NULL, *buf = NULL;
		if (asprintf(&path, "%s/namespace", sa_dir) < 0)
			return -ENOMEM;
		if (k8s_read_file(path, 4096, &buf, NULL) == 0) {
			char *s = buf, *e = buf + strlen(buf);
			while (isspace((unsigned char)*s))
				s++;
			while (e > s && isspace((unsigned char)e[-1]))
				*--e = '\0';
			if (*s && dup_opt(s, &kc->namespace) < 0)
				return -ENOMEM;
		}
	}
	*ret = TAKE_PTR(kc);
	return 0;
}

static bool in_cluster_possible(const char *sa_dir)
{
	const char *h = getenv("KUBERNETES_SERVICE_HOST"), *p = getenv("KUBERNETES_SERVICE_PORT");
	_cleanup_free_ char *tok = NULL;
	if (!h || !*h || !p || !*p || asprintf(&tok, "%s/token", sa_dir) < 0)
		return false;
	return access(tok, F_OK) == 0;
}

static void merged_free(struct merged *m)
{
	json_decref(m->clusters);
	json_decref(m->users);
	json_decref(m->contexts);
	free(m->current_context);
}

static int merge_all(const struct kubeconfig_opts *o, struct merged *m, struct k8s_error *err)
{
	if (o->path)
		return merge_file(m, o->path, true, err);
	const char *env = o->env ? o->env : getenv("KUBECONFIG");
	if (!env || !*env) {
		const char *home = o->home ? o->home : getenv("HOME");
		if (!home)
			return 0;
		_cleanup_free_ char *p = NULL;
		if (asprintf(&p, "%s/.kube/config", home) < 0)
			return -ENOMEM;
		return merge_file(m, p, false, err);
	}
	_cleanup_free_ char *list = strdup(env);
	if (!list)
		return -ENOMEM;
	const char *seen[KUBECONFIG_FILES_MAX];
	size_t nseen = 0;
	char *rest = list;
	for (char *p; (p = strsep(&rest, ":"));) {
		if (!*p)
			continue; /* empty entries are ignored */
		bool dup = false;
		for (size_t i = 0; i < nseen; i++)
			dup |= !strcmp(seen[i], p);
		if (dup)
			continue;
		if (nseen == KUBECONFIG_FILES_MAX)
			return k8s_errorf(err, -E2BIG, 0, NULL,
			                  "KUBECONFIG lists more than %d files",
			                  KUBECONFIG_FILES_MAX);
		seen[nseen++] = p;
		int r = merge_file(m, p, false, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int kubeconfig_load(const struct kubeconfig_opts *o, struct kubeconfig **ret, struct k8s_error *err)
{
	struct merged m = {json_object(), json_object(), json_object(), NULL, false};
	struct verrors ve = {0};
	_cleanup_kubeconfig_ struct kubeconfig *kc = NULL;
	const char *sa_dir = o->sa_dir ? o->sa_dir : SA_DIR;
	int r = -ENOMEM;
	if (!m.clusters || !m.users || !m.contexts)
		goto out;
	r = merge_all(o, &m, err);
	if (r < 0)
		goto out;

	/* kubectl uses in-cluster config when no kubeconfig says anything. */
	if (!m.any && !o->path && !o->context && !o->no_in_cluster && in_cluster_possible(sa_dir)) {
		r = load_in_cluster(sa_dir, &kc, err);
		goto out_take;
	}

	const char *ctx_name = o->context && *o->context ? o->context : m.current_context;
	const json_t *ctx = ctx_name ? json_object_get(m.contexts, ctx_name) : NULL;
	if (ctx_name && !ctx)
		verr(&ve, "context was not found for specified context: %s", ctx_name);
	if (ctx)
		validate_context(&ve, ctx_name, ctx, &m);
	const char *user_name = ctx ? jstr(ctx, "user") : NULL;
	const char *cluster_name = ctx ? jstr(ctx, "cluster") : NULL;
	const json_t *user = user_name ? json_object_get(m.users, user_name) : NULL;
	const json_t *cluster = cluster_name ? json_object_get(m.clusters, cluster_name) : NULL;
	if (user)
		validate_user(&ve, user_name, user);
	bool empty_cluster;
	size_t before = ve.n;
	validate_cluster(&ve, cluster_name ? cluster_name : "", cluster, &empty_cluster);
	if (empty_cluster && ve.n == 1 && before == 0) {
		/* ConfirmUsable: an empty cluster alone means no config at all. */
		free(ve.v[0]);
		ve.v[0] = strdup("no configuration has been provided, try setting "
		                 "KUBERNETES_MASTER environment variable");
		ve.oom |= !ve.v[0];
	}
	if (ve.n || ve.oom) {
		r = verrors_report(&ve, err);
		goto out;
	}

	kc = calloc(1, sizeof(*kc));
	if (!kc || dup_opt(ctx_name, &kc->context) < 0 ||
	    dup_opt(cluster_name, &kc->cluster_name) < 0 ||
	    dup_opt(user_name, &kc->user_name) < 0 ||
	    dup_opt(jstr(ctx, "namespace"), &kc->namespace) < 0) {
		r = -ENOMEM;
		goto out;
	}
	r = fill(kc, cluster, user, err);
out_take:
	if (r >= 0)
		*ret = TAKE_PTR(kc);
out:
	verrors_free(&ve);
	merged_free(&m);
	return r;
}

void kubeconfig_free(struct kubeconfig *kc)
{
	if (!kc)
		return;
	free(kc->context);
	free(kc->cluster_name);
	free(kc->user_name);
	free(kc->namespace);
	free(kc->server);
	free(kc->ca_pem);
	free(kc->tls_server_name);
	free(kc->proxy_url);
	json_decref(kc->exec_cluster_config);
	free(kc->cert_pem);
	free(kc->key_pem);
	free(kc->token);
	free(kc->token_file);
	free(kc->file_token);
	free(kc->username);
	free(kc->password);
	free(kc->impersonate_user);
	if (kc->exec) {
		struct kube_exec *e = kc->exec;
		free(e->api_version);
		free(e->command);
		strv_free(e->args);
		strv_free(e->env);
		free(e->install_hint);
		free(e->token);
		free(e->cert_pem);
		free(e->key_pem);
		free(e);
	}
	free(kc);
}

char *k8s_kube_namespace(const char *kubeconfig, const char *context)
{
	struct kubeconfig_opts o = {.path = kubeconfig, .context = context};
	_cleanup_kubeconfig_ struct kubeconfig *kc = NULL;
	struct k8s_error err = {0};
	int r = kubeconfig_load(&o, &kc, &err);
	k8s_error_clear(&err);
	if (r < 0 || !kc->namespace)
		return NULL;
	return strdup(kc->namespace);
}
