/* Credentials at request time: tokenFile re-reading and exec credential
 * plugins (k8s-wire.md §1.4-§1.5, client-go plugin/pkg/client/auth/exec). */
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "k8s/internal.h"
#include "k8s/kubeconfig.h"

extern char **environ;

/* client-go re-reads a tokenFile through a 1-minute caching source, since
 * projected service-account tokens rotate. */
#define TOKEN_FILE_PERIOD_NS (60ull * 1000000000ull)
/* A plugin's ExecCredential is a few KiB; a runaway one is cut off. */
#define EXEC_OUTPUT_MAX (1u << 20)
/* client-go has no timeout; a hung non-interactive plugin would hang us
 * forever, so bound it. Interactive ones wait for a human. */
#define EXEC_TIMEOUT_MS (60 * 1000)
#define EXEC_TIMEOUT_INTERACTIVE_MS (10 * 60 * 1000)
#define EXEC_ENV_MAX 4096

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int refresh_token_file(struct kubeconfig *kc)
{
	uint64_t now = now_ns();
	if (kc->file_token && now - kc->file_token_at < TOKEN_FILE_PERIOD_NS)
		return 0;
	_cleanup_free_ char *buf = NULL;
	int r = k8s_read_file(kc->token_file, K8S_AUX_FILE_MAX, &buf, NULL);
	if (r < 0)
		return r;
	char *t = strdup(trim(buf));
	if (!t)
		return -ENOMEM;
	free(kc->file_token);
	kc->file_token = t;
	kc->file_token_at = now;
	return 0;
}

int kubeconfig_credentials(struct kubeconfig *kc, bool force, const char **ret_token,
                           struct k8s_error *err)
{
	*ret_token = NULL;
	if (kc->exec) {
		struct kube_exec *e = kc->exec;
		bool expired = e->cached && e->expiry && (long long)time(NULL) > e->expiry;
		if (!e->cached || expired || force) {
			int r = k8s_exec_credential(kc, err);
			if (r < 0)
				return r;
		}
		if (e->token) {
			*ret_token = e->token;
			return 0;
		}
	}
	if (kc->token_file) {
		int r = refresh_token_file(kc);
		if (r == -ENOMEM)
			return r;
		/* The file wins when readable; else the static token, if any. */
		if (r == 0 && *kc->file_token) {
			*ret_token = kc->file_token;
			return 0;
		}
		if (!kc->token)
			return k8s_errorf(err, r < 0 ? r : -EINVAL, 0, NULL,
			                  "cannot read tokenFile %s of user \"%s\": %s",
			                  kc->token_file,
			                  kc->user_name ? kc->user_name : "(in-cluster)",
			                  r < 0 ? strerror(-r) : "empty file");
	}
	*ret_token = kc->token;
	return 0;
}

/* KUBERNETES_EXEC_INFO, as kubectl 1.32 sends it (k8s-wire.md §1.5). */
static int exec_info(const struct kubeconfig *kc, bool interactive, char **ret)
{
	_cleanup_json_ json_t *spec = json_pack("{s:b}", "interactive", interactive);
	if (!spec)
		return -ENOMEM;
	if (kc->exec->provide_cluster_info) {
		_cleanup_json_ json_t *c = json_pack("{s:s}", "server", kc->server);
		if (!c)
			return -ENOMEM;
		if (kc->tls_server_name)
			json_object_set_new(c, "tls-server-name", json_string(kc->tls_server_name));
		if (kc->insecure)
			json_object_set_new(c, "insecure-skip-tls-verify", json_true());
		if (kc->proxy_url)
			json_object_set_new(c, "proxy-url", json_string(kc->proxy_url));
		if (kc->ca_pem) {
			_cleanup_free_ char *b64 = NULL;
			int r = k8s_base64_encode(kc->ca_pem, kc->ca_len, &b64);
			if (r < 0)
				return r;
			json_object_set_new(c, "certificate-authority-data", json_string(b64));
		}
		if (kc->exec_cluster_config)
			json_object_set(c, "config", kc->exec_cluster_config);
		if (json_object_set(spec, "cluster", c) < 0)
			return -ENOMEM;
	}
	_cleanup_json_ json_t *info = json_pack("{s:s,s:s,s:O}", "kind", "ExecCredential",
	                                        "apiVersion", kc->exec->api_version, "spec", spec);
	if (!info)
		return -ENOMEM;
	char *s = json_dumps(info, JSON_COMPACT);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

/* environ + exec.env (later entries override earlier ones of the same name,
 * as Go's exec dedups) + KUBERNETES_EXEC_INFO. Pointers into environ are
 * borrowed; only the returned array is freed. */
static int build_env(char **extra, char *info_kv, char ***ret)
{
	size_t n = 0, m = 0;
	while (environ[n])
		n++;
	while (extra[m])
		m++;
	if (n + m + 2 > EXEC_ENV_MAX)
		return -E2BIG;
	char **v = calloc(n + m + 2, sizeof(char *));
	if (!v)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		size_t nl = strcspn(environ[i], "=");
		bool over = !strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21);
		for (size_t j = 0; j < m && !over; j++)
			over = !strncmp(environ[i], extra[j], nl + 1);
		if (!over)
			v[k++] = environ[i];
	}
	for (size_t j = 0; j < m; j++)
		v[k++] = extra[j];
	v[k] = info_kv;
	*ret = v;
	return 0;
}

/* Read the child's stdout until EOF, the size cap or the deadline. */
static int read_output(int fd, int timeout_ms, char **ret, size_t *ret_len)
{
	size_t cap = 4096, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		uint64_t now = now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr = poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return -errno;
		if (pr == 0)
			continue;
		if (len + 1 == cap) {
			if (cap >= EXEC_OUTPUT_MAX)
				return -EFBIG;
			char *n = realloc(buf, cap * 2);
			if (!n)
				return -ENOMEM;
			buf = n;
			cap *= 2;
		}
		ssize_t k = read(fd, buf + len, cap - len - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		len += (size_t)k;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static int parse_output(struct kube_exec *e, const char *out, size_t len, struct k8s_error *err)
{
	json_error_t je;
	_cleanup_json_ json_t *j = json_loadb(out, len, 0, &je);
	if (!j || !json_is_object(j))
		return k8s_errorf(err, -EINVAL, 0, NULL, "exec plugin %s: decoding stdout: %s",
		                  e->command, j ? "not a JSON object" : je.text);
	const char *av = json_string_value(json_object_get(j, "apiVersion"));
	if (!av || strcmp(av, e->api_version))
		return k8s_errorf(
		        err, -EINVAL, 0, NULL,
		        "exec plugin is configured to use API version %s, plugin returned "
		        "version %s",
		        e->api_version, av ? av : "\"\"");
	json_t *st = json_object_get(j, "status");
	if (!json_is_object(st))
		return k8s_errorf(err, -EINVAL, 0, NULL,
		                  "exec plugin didn't return a status field");
	const char *tok = json_string_value(json_object_get(st, "token"));
	const char *cert = json_string_value(json_object_get(st, "clientCertificateData"));
	const char *key = json_string_value(json_object_get(st, "clientKeyData"));
	if (tok && !*tok)
		tok = NULL;
	if (!!cert != !!key)
		return k8s_errorf(err, -EINVAL, 0, NULL,
		                  "exec plugin returned only certificate or key, not both");
	if (!tok && !cert)
		return k8s_errorf(err, -EINVAL, 0, NULL,
		                  "exec plugin didn't return a token or cert/key pair");
	long long exp = 0;
	const char *ts = json_string_value(json_object_get(st, "expirationTimestamp"));
	if (ts && k8s_parse_time(ts, &exp) < 0)
		return k8s_errorf(err, -EINVAL, 0, NULL,
		                  "exec plugin %s: bad expirationTimestamp \"%s\"", e->command, ts);
	char *t = tok ? strdup(tok) : NULL, *c = cert ? strdup(cert) : NULL,
	     *k = key ? strdup(key) : NULL;
	if ((tok && !t) || (cert && !c) || (key && !k)) {
		free(t);
		free(c);
		free(k);
		return -ENOMEM;
	}
	free(e->token);
	free(e->cert_pem);
	free(e->key_pem);
	e->token = t;
	e->cert_pem = c;
	e->key_pem = k;
	e->expiry = exp;
	e->cached = true;
	return 0;
}

int k8s_exec_credential(struct kubeconfig *kc, struct k8s_error *err)
{
	struct kube_exec *e = kc->exec;
	bool tty = isatty(STDIN_FILENO);
	bool interactive = e->interactive == KUBE_EXEC_ALWAYS ||
	                   (e->interactive == KUBE_EXEC_IF_AVAILABLE && tty);
	if (e->interactive == KUBE_EXEC_ALWAYS && !tty)
		return k8s_errorf(
		        err, -ENOTTY, 0, NULL,
		        "exec plugin cannot support interactive mode: standard input is not "
		        "a terminal");
	_cleanup_free_ char *info = NULL, *info_kv = NULL;
	int r = exec_info(kc, interactive, &info);
	if (r < 0)
		return r;
	if (asprintf(&info_kv, "KUBERNETES_EXEC_INFO=%s", info) < 0)
		return -ENOMEM;
	_cleanup_free_ char **envp = NULL;
	r = build_env(e->env, info_kv, &envp);
	if (r < 0)
		return r;

	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return -errno;
	_cleanup_close_ int rd = out[0], wr = out[1];
	_cleanup_close_ int devnull = -1;
	posix_spawn_file_actions_t fa;
	if (posix_spawn_file_actions_init(&fa) != 0)
		return -ENOMEM;
	/* stdin only when interactive; stderr passes through to the user. */
	if (!interactive) {
		devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (devnull < 0) {
			posix_spawn_file_actions_destroy(&fa);
			return -errno;
		}
		posix_spawn_file_actions_adddup2(&fa, devnull, STDIN_FILENO);
	}
	posix_spawn_file_actions_adddup2(&fa, wr, STDOUT_FILENO);
	pid_t pid;
	/* posix_spawnp: execve with a PATH lookup for bare names, no shell. */
	r = -posix_spawnp(&pid, e->command, &fa, NULL, e->args, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (r == -ENOENT || r == -EACCES)
		return k8s_errorf(err, r, 0, NULL, "exec: executable %s not found%s%s", e->command,
		                  e->install_hint ? "; " : "",
		                  e->install_hint ? e->install_hint : "");
	if (r < 0)
		return k8s_errorf(err, r, 0, NULL, "exec: %s: %s", e->command, strerror(-r));
	closep(&wr);
	wr = -1;

	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	r = read_output(rd, interactive ? EXEC_TIMEOUT_INTERACTIVE_MS : EXEC_TIMEOUT_MS, &buf,
	                &len);
	if (r < 0)
		kill(pid, SIGKILL); /* our own child, by pid */
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (r == -ETIMEDOUT)
		return k8s_errorf(err, r, 0, NULL, "exec: executable %s did not finish in %d s",
		                  e->command, EXEC_TIMEOUT_MS / 1000);
	if (r == -EFBIG)
		return k8s_errorf(err, r, 0, NULL, "exec: executable %s wrote more than %u bytes",
		                  e->command, EXEC_OUTPUT_MAX);
	if (r < 0)
		return r;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return k8s_errorf(err, -EIO, 0, NULL,
		                  "exec: executable %s failed with exit code %d", e->command,
		                  WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return parse_output(e, buf, len, err);
}
