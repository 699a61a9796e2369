/* The command line: subcommands and the options they share. */
#pragma once

#include <stdbool.h>
#include "common/log.h"

struct exec_options {
	const char *agent_addr;
	const char *env_include;
	const char *env_exclude;
	bool outgoing_tcp;
	bool outgoing_udp;
	bool remote_dns;
	bool trace;
	bool trace_stacks;
	enum log_level log_level;
	int connect_timeout_ms;
	char **argv; /* the program and its arguments */
	int argc;
};

/* Parse `exec` options (flags > MIRRORD_* environment > defaults).
 * Returns 0, or -EINVAL after printing one line naming the problem.
 * Returns 1 when --help was printed. */
int exec_parse(int argc, char **argv, struct exec_options *ret);
int cmd_exec(int argc, char **argv);

/* The run's private directory for pod file copies. */
int rundir_create(char **ret_path);
void rundir_remove(const char *path);
int rundir_write(const char *dir, const char *name, const char *data, size_t len, char **ret_path);
