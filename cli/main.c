/* mirrord-trace: run a local program in the context of a pod. */
#include "cli/cli.h"
#include "cli/config.h"
#include "common/util.h"
#include "k8s/kubeconfig.h"

#include <stdio.h>
#include <string.h>

static int cmd_version(int argc, char **argv)
{
	printf("mirrord-trace %s\n", MT_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv);

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
        {"exec", cmd_exec, "run PROGRAM with the pod's environment and network"},
        {"ls", cmd_ls, "list the targets of a namespace (--json for IDEs)"},
        {"verify-config", cmd_verify_config, "print the resolved configuration as JSON"},
        {"version", cmd_version, "print the version"},
        {"help", cmd_help, "show this help"},
};

static int cmd_help(int argc, char **argv)
{
	printf("Usage: mirrord-trace [exec] [OPTIONS] [--] PROGRAM [ARGS...]\n"
	       "       mirrord-trace COMMAND ...\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		printf("  %-14s %s\n", commands[i].name, commands[i].help);
	printf("\nWithout a command, `exec` is implied. See `mirrord-trace exec --help`.\n");
	return 0;
}

int main(int argc, char **argv)
{
	log_init("mirrord-trace", LOG_WARN);
	/* The target namespace defaults to the kubeconfig context's. */
	config_set_kube_namespace_hook(k8s_kube_namespace);
	if (argc < 2) {
		log_error("no program given; usage: mirrord-trace [exec] [OPTIONS] -- PROGRAM "
		          "[ARGS...]");
		return 2;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		return cmd_version(argc, argv);
	/* The short form: `mirrord-trace [OPTIONS] PROGRAM [ARGS...]`. */
	return cmd_exec(argc, argv);
}
