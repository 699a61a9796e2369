/* The command line: subcommands and the options they share. */
#pragma once

#include <stdbool.h>
#include "cli/config.h"
#include "common/log.h"

/* What `exec` runs with, taken from the resolved config. Pointers point
 * into `config`, which exec_options_done() frees. */
struct exec_options {
	struct config *config;
	const char *agent_addr;
	const char *env_include;
	const char *env_exclude;
	bool outgoing_tcp;
	bool outgoing_udp;
	bool ignore_localhost;
	const struct net_filter *out_filter;
	const struct net_filter *dns_filter; /* NULL: every name goes to the pod */
	bool remote_dns;
	bool trace;
	bool trace_stacks;
	bool quiet;
	enum log_level log_level;
	int connect_timeout_ms;
	char **argv; /* the program and its arguments */
	int argc;
};

/* Parse `exec` flags and resolve the config (flags > MIRRORD_* variables >
 * config file > defaults). Returns 0, or -EINVAL after logging every
 * problem (one line each). Returns 1 when --help was printed. */
int exec_parse(int argc, char **argv, struct exec_options *ret);
void exec_options_done(struct exec_options *o);
int cmd_exec(int argc, char **argv);
int cmd_verify_config(int argc, char **argv);
int cmd_ls(int argc, char **argv);

/* Flags shared by `exec` and `verify-config`, as the variables they stand
 * for (struct config_override). */
enum cli_mode { CLI_EXEC, CLI_VERIFY };
struct cli_args {
	struct config_override *ov;
	size_t nov;
	char *const *envp;
	char **argv; /* exec: the program and its arguments */
	int argc;
	bool ide; /* verify-config --ide: mirrord's IDE document */
};
/* 0, 1 after --help, or -EINVAL after logging the problem. */
int cli_parse(enum cli_mode mode, int argc, char **argv, struct cli_args *ret);
void cli_args_done(struct cli_args *a);
/* Resolve; logs every config error (one line each) on failure. */
int cli_resolve(const struct cli_args *a, struct config **ret);
/* Resolve without logging: the problems are appended to errs. */
int cli_resolve_quiet(const struct cli_args *a, struct config **ret, struct config_errors *errs);
void cli_print_warnings(const struct config *c);

/* The run's private directory for pod file copies. */
int rundir_create(char **ret_path);
void rundir_remove(const char *path);
int rundir_write(const char *dir, const char *name, const char *data, size_t len, char **ret_path);
