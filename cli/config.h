/* The configuration model: mirrord's config files, MIRRORD_* variables and
 * flags, resolved per field with provenance (mirrord-behaviour.md §1).
 *
 * Precedence per field: flag > environment variable > config file >
 * default. Flags are turned into the environment variable they stand for
 * (an override map, as mirrord's ExecParams::as_env_vars does), so each
 * field is read through one path. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cli/config_fields.h"
#include "common/log.h"

struct target;

/* Where a value came from, weakest first. */
enum config_source {
	CONFIG_SRC_DEFAULT,
	CONFIG_SRC_KUBECONFIG, /* the kubeconfig context's namespace */
	CONFIG_SRC_FILE,
	CONFIG_SRC_ENV,
	CONFIG_SRC_FLAG,
};
const char *config_source_name(enum config_source s);

/* The one error object for configuration problems (and warnings): what is
 * wrong, the field it concerns, and where the value was written. */
struct config_error {
	char *message;
	char *path;         /* field path, "feature.env.include", or NULL */
	char *file;         /* config file name, or NULL */
	unsigned line, col; /* 1-based position in file; 0 = unknown */
	char *origin;       /* "MIRRORD_AGENT_TTL (environment)", "--agent-ttl", or NULL */
};

struct config_errors {
	struct config_error *v;
	size_t n;
};

MT_PRINTF(7, 8)
void config_errors_add(struct config_errors *l, const char *path, const char *file, unsigned line,
                       unsigned col, const char *origin, const char *fmt, ...);
/* "FILE:LINE:COL: PATH: MESSAGE" (parts that are unknown are left out). */
char *config_error_format(const struct config_error *e);
void config_errors_clear(struct config_errors *l);

/* A value given by a command-line flag: the variable it stands for. */
struct config_override {
	const char *name;  /* MIRRORD_* variable */
	const char *value; /* its value */
	const char *flag;  /* the flag as the user spelled it, for messages */
};

struct config_input {
	char *const *envp; /* NAME=VALUE list (the process environment), or NULL */
	const struct config_override *overrides;
	size_t noverrides;
	bool no_git; /* never run `git` for {{ git_branch }} (fuzzing) */
};

struct config_value {
	json_t *value; /* NULL = unset (JSON null in verify-config) */
	enum config_source source;
};

struct config {
	struct config_value v[CF__COUNT];
	char *file; /* the config file read, or NULL */

	/* The resolved request, for the Kubernetes resolver. */
	bool targetless;
	struct target *target;        /* NULL when targetless */
	const char *target_namespace; /* never NULL */
	const char *agent_namespace;  /* never NULL; = target namespace when targetless */

	/* What the product implements today, typed. Strings point into v[]. */
	const char *env_include; /* ';'-joined, or NULL */
	const char *env_exclude;
	bool outgoing_tcp, outgoing_udp, remote_dns;
	bool ignore_localhost;
	struct net_filter *out_filter; /* NULL: no feature.network.outgoing.filter */
	struct net_filter *dns_filter; /* NULL: no feature.network.dns.filter */
	const char *agent_addr;        /* NULL: the agent would be started in Kubernetes */
	int connect_timeout_ms;
	enum log_level log_level;
	bool trace, trace_stacks;
	bool quiet;      /* no progress lines */
	const char *key; /* the session key ({{ key }}) */
	char *env_include_buf, *env_exclude_buf;

	/* Fields that are set but not implemented, and other notices. */
	struct config_errors warnings;
};

/* Resolve the configuration. Returns 0 and a config, or -EINVAL with every
 * problem found appended to errs (never only the first). */
int config_resolve(const struct config_input *in, struct config **ret, struct config_errors *errs);
void config_free(struct config *c);
static inline void config_freep(struct config **c)
{
	config_free(*c);
}

/* Accessors by field id; NULL / false when unset. */
json_t *config_get(const struct config *c, enum config_field f);
const char *config_str(const struct config *c, enum config_field f);
bool config_bool(const struct config *c, enum config_field f);

/* The verify-config document: {"config": {...each field as {"value",
 * "source"}...}, "request": {...}, "warnings": [...]}. New reference. */
json_t *config_to_json(const struct config *c);

/* `verify-config --ide`: the document mirrord's IDE plugins parse
 * (mirrord/cli/src/verify_config.rs). Success: {"type": "Success",
 * "config": {"path": <target object, "targetless", or null when no target
 * was given>, "namespace": <the namespace given, or null>}, "warnings":
 * [...], "compatible_target_types": [...]}. Fail: {"type": "Fail",
 * "errors": [one line per problem]}. New references. */
json_t *config_to_ide_json(const struct config *c);
json_t *config_errors_to_ide_json(const struct config_errors *errs);

/* The kubeconfig context's namespace, between target.namespace and
 * "default". Returns a malloc'd name or NULL. The Kubernetes module sets
 * the real one; tests set their own. */
typedef char *(*config_kube_namespace_fn)(const char *kubeconfig, const char *context);
void config_set_kube_namespace_hook(config_kube_namespace_fn fn);
