/* kubeconfig loading, exactly as kubectl does it (k8s-wire.md §1): the
 * KUBECONFIG list merged first-wins, relative paths resolved against the
 * file each stanza came from, context selection, kubectl's validation
 * messages, exec credential plugins, and in-cluster config as the
 * fallback. The result is the one cluster + user + namespace a client
 * talks to. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s/error.h"

enum kube_exec_interactive {
	KUBE_EXEC_NEVER,
	KUBE_EXEC_IF_AVAILABLE,
	KUBE_EXEC_ALWAYS,
};

/* users[].user.exec (client.authentication.k8s.io/v1 or v1beta1). */
struct kube_exec {
	char *api_version;
	char *command; /* a bare name (PATH lookup) or an absolute path */
	char **args;   /* NULL-terminated, args[0] = command */
	char **env;    /* NULL-terminated "K=V" added to the environment */
	char *install_hint;
	bool provide_cluster_info;
	enum kube_exec_interactive interactive;
	/* The cached credential (k8s_exec_credential): valid until expiry
	 * (unix seconds; 0 = for the life of the process). */
	bool cached;
	long long expiry;
	char *token, *cert_pem, *key_pem;
};

struct kubeconfig {
	/* Which stanzas were picked (NULL for in-cluster). */
	char *context, *cluster_name, *user_name;
	char *namespace; /* context namespace, or NULL (caller defaults to "default") */
	bool in_cluster;

	/* clusters[] */
	char *server; /* "https://host:port[/prefix]" */
	char *ca_pem; /* certificate-authority(-data), PEM bytes, or NULL */
	size_t ca_len;
	bool insecure;
	char *tls_server_name;
	char *proxy_url;
	json_t *exec_cluster_config; /* extension client.authentication.k8s.io/exec */

	/* users[] */
	char *cert_pem, *key_pem; /* client-certificate(-data), client-key(-data) */
	size_t cert_len, key_len;
	char *token;
	char *token_file; /* re-read, and preferred over token, as client-go does */
	char *file_token; /* token_file's last content, read at file_token_at (now_ns) */
	uint64_t file_token_at;
	char *username, *password;
	char *impersonate_user;
	struct kube_exec *exec;
};

struct kubeconfig_opts {
	const char *path;    /* --kubeconfig: used alone, must exist; or NULL */
	const char *context; /* --context; or NULL for current-context */
	const char *env;     /* the KUBECONFIG value; NULL = getenv("KUBECONFIG") */
	const char *home;    /* NULL = getenv("HOME"), for ~/.kube/config */
	const char *sa_dir;  /* NULL = /var/run/secrets/kubernetes.io/serviceaccount */
	bool no_in_cluster;  /* never fall back to in-cluster config */
};

/* Load, merge, select and validate. Errors are kubectl's texts, for example
 * "invalid configuration: no server found for cluster \"c\"" or
 * "context was not found for specified context: foo". */
int kubeconfig_load(const struct kubeconfig_opts *o, struct kubeconfig **ret,
                    struct k8s_error *err);

void kubeconfig_free(struct kubeconfig *kc);
static inline void kubeconfig_freep(struct kubeconfig **kc)
{
	kubeconfig_free(*kc);
}
#define _cleanup_kubeconfig_ _cleanup_(kubeconfig_freep)

/* The bearer token to send now: the exec plugin's, the tokenFile's (re-read
 * at most once a minute) or the static token; *ret NULL if none. Runs the
 * exec plugin when its cached credential is missing or expired (or when
 * `force`, after a 401). The cert/key an exec plugin returns are in
 * kc->exec->cert_pem / key_pem. Returns 0 or -errno with *err set. */
int kubeconfig_credentials(struct kubeconfig *kc, bool force, const char **ret_token,
                           struct k8s_error *err);

/* Run the exec plugin now and fill kc->exec's cache (used by
 * kubeconfig_credentials). */
int k8s_exec_credential(struct kubeconfig *kc, struct k8s_error *err);

/* The signature of config_set_kube_namespace_hook() (cli/config.h): the
 * selected context's namespace, or NULL. Never fails loudly: a broken
 * kubeconfig gives NULL here and its real error later. */
char *k8s_kube_namespace(const char *kubeconfig, const char *context);
