/* Flags of `exec` and `verify-config`. As in mirrord (ExecParams::
 * as_env_vars), each flag stands for a MIRRORD_* variable: parsing only
 * collects them into an override map, and the config resolver applies
 * flag > variable > file > default per field (cli/config.h). */
#include "cli/cli.h"
#include "cli/config.h"
#include "cli/target.h"
#include "common/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* What mirrord's `-f` without a value means. */
#define DEFAULT_CONFIG_FILE "./.mirrord/mirrord.json"

enum {
	OPT_AGENT_TTL = 0x100,
	OPT_AGENT_STARTUP_TIMEOUT,
	OPT_FS_MODE,
	OPT_NO_REMOTE_DNS,
	OPT_SKIP_PROCESSES,
	OPT_STEAL,
	OPT_NO_OUTGOING,
	OPT_NO_TCP_OUTGOING,
	OPT_NO_UDP_OUTGOING,
	OPT_NO_TELEMETRY,
	OPT_DISABLE_VERSION_CHECK,
	OPT_CONTEXT,
	OPT_ENV_FILE,
	OPT_AGENT_ADDR,
	OPT_TRACE,
	OPT_TRACE_STACKS,
	OPT_LOG_LEVEL,
	OPT_CONNECT_TIMEOUT,
	OPT_IDE,
};

/* One list: the getopt table and the variable each flag stands for. */
static const struct flag {
	struct option opt;
	const char *env;   /* variable set, or NULL */
	const char *fixed; /* value for flags without an argument */
	const char *env2;  /* a second variable set to `fixed` (--no-outgoing) */
} flags[] = {
        {{"target", required_argument, NULL, 't'}, "MIRRORD_IMPERSONATED_TARGET", NULL, NULL},
        {{"target-namespace", required_argument, NULL, 'n'},
         "MIRRORD_TARGET_NAMESPACE",
         NULL,
         NULL},
        {{"agent-namespace", required_argument, NULL, 'a'}, "MIRRORD_AGENT_NAMESPACE", NULL, NULL},
        {{"agent-log-level", required_argument, NULL, 'l'}, "MIRRORD_AGENT_RUST_LOG", NULL, NULL},
        {{"agent-image", required_argument, NULL, 'i'}, "MIRRORD_AGENT_IMAGE", NULL, NULL},
        {{"agent-ttl", required_argument, NULL, OPT_AGENT_TTL}, "MIRRORD_AGENT_TTL", NULL, NULL},
        {{"agent-startup-timeout", required_argument, NULL, OPT_AGENT_STARTUP_TIMEOUT},
         "MIRRORD_AGENT_STARTUP_TIMEOUT",
         NULL,
         NULL},
        {{"ephemeral-container", no_argument, NULL, 'e'},
         "MIRRORD_EPHEMERAL_CONTAINER",
         "true",
         NULL},
        {{"fs-mode", required_argument, NULL, OPT_FS_MODE}, "MIRRORD_FILE_MODE", NULL, NULL},
        {{"override-env-vars-exclude", required_argument, NULL, 'x'},
         "MIRRORD_OVERRIDE_ENV_VARS_EXCLUDE",
         NULL,
         NULL},
        {{"override-env-vars-include", required_argument, NULL, 's'},
         "MIRRORD_OVERRIDE_ENV_VARS_INCLUDE",
         NULL,
         NULL},
        {{"no-remote-dns", no_argument, NULL, OPT_NO_REMOTE_DNS},
         "MIRRORD_REMOTE_DNS",
         "false",
         NULL},
        {{"skip-processes", required_argument, NULL, OPT_SKIP_PROCESSES},
         "MIRRORD_SKIP_PROCESSES",
         NULL,
         NULL},
        /* require_equals in mirrord: -c alone means true. */
        {{"accept-invalid-certificates", optional_argument, NULL, 'c'},
         "MIRRORD_ACCEPT_INVALID_CERTIFICATES",
         "true",
         NULL},
        {{"steal", no_argument, NULL, OPT_STEAL}, "MIRRORD_AGENT_TCP_STEAL_TRAFFIC", "true", NULL},
        {{"no-outgoing", no_argument, NULL, OPT_NO_OUTGOING},
         "MIRRORD_TCP_OUTGOING",
         "false",
         "MIRRORD_UDP_OUTGOING"},
        {{"no-tcp-outgoing", no_argument, NULL, OPT_NO_TCP_OUTGOING},
         "MIRRORD_TCP_OUTGOING",
         "false",
         NULL},
        {{"no-udp-outgoing", no_argument, NULL, OPT_NO_UDP_OUTGOING},
         "MIRRORD_UDP_OUTGOING",
         "false",
         NULL},
        {{"no-telemetry", no_argument, NULL, OPT_NO_TELEMETRY}, "MIRRORD_TELEMETRY", "false", NULL},
        {{"disable-version-check", no_argument, NULL, OPT_DISABLE_VERSION_CHECK}, NULL, NULL, NULL},
        {{"config-file", optional_argument, NULL, 'f'},
         "MIRRORD_CONFIG_FILE",
         DEFAULT_CONFIG_FILE,
         NULL},
        {{"context", required_argument, NULL, OPT_CONTEXT}, "MIRRORD_KUBE_CONTEXT", NULL, NULL},
        {{"env-file", required_argument, NULL, OPT_ENV_FILE},
         "MIRRORD_OVERRIDE_ENV_VARS_FILE",
         NULL,
         NULL},
        {{"key", required_argument, NULL, 'k'}, "MIRRORD_KEY", NULL, NULL},
        /* mirrord-trace's own */
        {{"agent-addr", required_argument, NULL, OPT_AGENT_ADDR},
         "MIRRORD_TRACE_AGENT_ADDR",
         NULL,
         NULL},
        {{"trace", no_argument, NULL, OPT_TRACE}, "MIRRORD_TRACE_SYSCALLS", "true", NULL},
        {{"trace-stacks", no_argument, NULL, OPT_TRACE_STACKS},
         "MIRRORD_TRACE_STACKS",
         "true",
         NULL},
        {{"log-level", required_argument, NULL, OPT_LOG_LEVEL}, "MIRRORD_TRACE_LOG", NULL, NULL},
        {{"agent-connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
         "MIRRORD_TRACE_AGENT_CONNECT_TIMEOUT",
         NULL,
         NULL},
        {{"quiet", no_argument, NULL, 'q'}, "MIRRORD_TRACE_QUIET", "true", NULL},
        {{"ide", no_argument, NULL, OPT_IDE}, NULL, NULL, NULL},
        {{"help", no_argument, NULL, 'h'}, NULL, NULL, NULL},
};

static void usage(enum cli_mode mode)
{
	if (mode == CLI_VERIFY)
		printf("Usage: mirrord-trace verify-config [--ide] [-f PATH | PATH] [OPTIONS]\n\n"
		       "Print the resolved configuration as JSON: every field with its value and\n"
		       "where it came from (flag, env, file, kubeconfig or default). Exits 2 with\n"
		       "one line per problem when the configuration is invalid. Takes the same\n"
		       "options as `exec`, so an IDE can check a whole invocation.\n"
		       "  --ide    print mirrord's IDE document instead: {\"type\": \"Success\", "
		       "...}\n"
		       "           or {\"type\": \"Fail\", \"errors\": [...]}, exit 0 either way,\n"
		       "           nothing on stderr (what mirrord's IDE plugins expect)\n");
	else
		printf("Usage: mirrord-trace [exec] [OPTIONS] [--] PROGRAM [ARGS...]\n\n"
		       "Run PROGRAM locally with the environment, DNS and outgoing network of a "
		       "pod.\n");
	printf("\nOptions (each sets the variable in brackets; flag > variable > file):\n"
	       "  -f, --config-file [PATH]     config file, .json/.yaml/.yml/.toml, - for stdin\n"
	       "                               (default %s) [MIRRORD_CONFIG_FILE]\n"
	       "  -t, --target PATH            pod/NAME[/container/C], deployment/NAME, ..., "
	       "targetless\n"
	       "                               [MIRRORD_IMPERSONATED_TARGET]\n"
	       "  -n, --target-namespace NS    [MIRRORD_TARGET_NAMESPACE]\n"
	       "  -a, --agent-namespace NS     [MIRRORD_AGENT_NAMESPACE]\n"
	       "      --agent-addr HOST:PORT   reach an agent that is already running\n"
	       "                               [MIRRORD_TRACE_AGENT_ADDR]\n"
	       "  -s, --override-env-vars-include 'A;B*'\n"
	       "                               take only these pod variables "
	       "[MIRRORD_OVERRIDE_ENV_VARS_INCLUDE]\n"
	       "  -x, --override-env-vars-exclude 'A;B*'\n"
	       "                               take all pod variables but these "
	       "[MIRRORD_OVERRIDE_ENV_VARS_EXCLUDE]\n"
	       "      --no-outgoing            keep all outgoing traffic local\n"
	       "      --no-tcp-outgoing        keep outgoing TCP local [MIRRORD_TCP_OUTGOING]\n"
	       "      --no-udp-outgoing        keep outgoing UDP local [MIRRORD_UDP_OUTGOING]\n"
	       "      --no-remote-dns          resolve names locally [MIRRORD_REMOTE_DNS]\n"
	       "      --trace                  log every intercepted syscall: decision, result, "
	       "time\n"
	       "                               (also MIRRORD_TRACE_LOG=trace)\n"
	       "      --trace-stacks           with --trace, add the caller's stack and syscall "
	       "site\n"
	       "      --log-level LEVEL        error, warn, info, debug or trace "
	       "[MIRRORD_TRACE_LOG]\n"
	       "      --agent-connect-timeout SECS\n"
	       "                               how long to wait for the agent (default 10)\n"
	       "  -k, --key KEY                session key for {{ key }} [MIRRORD_KEY]\n"
	       "  -q, --quiet                  no progress lines while the agent starts\n"
	       "                               [MIRRORD_TRACE_QUIET, MIRRORD_PROGRESS_MODE=off]\n"
	       "Kubernetes (without --agent-addr):\n"
	       "  -e, --ephemeral-container    the agent as an ephemeral container of the target "
	       "pod\n"
	       "                               [MIRRORD_EPHEMERAL_CONTAINER]\n"
	       "  -i/--agent-image, -l/--agent-log-level, --agent-ttl, --agent-startup-timeout,\n"
	       "  --context, -c/--accept-invalid-certificates[=BOOL] as in mirrord\n"
	       "Files: --fs-mode read|write|local|localwithoverrides [MIRRORD_FILE_MODE]\n"
	       "Accepted for mirrord compatibility (warned about until implemented):\n"
	       "  --skip-processes, --steal, --env-file, --no-telemetry, --disable-version-check\n"
	       "  -h, --help                   show this help\n",
	       DEFAULT_CONFIG_FILE);
}

static void add(struct cli_args *a, const char *env, const char *value, const char *flag)
{
	a->ov = xrealloc(a->ov, (a->nov + 1) * sizeof(*a->ov));
	a->ov[a->nov++] = (struct config_override){env, value, flag};
}

static const struct flag *flag_by_val(int c)
{
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		if (flags[i].opt.val == c)
			return &flags[i];
	return NULL;
}

int cli_parse(enum cli_mode mode, int argc, char **argv, struct cli_args *ret)
{
	struct option longs[ARRAY_SIZE(flags) + 1];
	const char *verify_path = NULL;
	struct cli_args a = {.envp = environ};
	int c;

	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		longs[i] = flags[i].opt;
	longs[ARRAY_SIZE(flags)] = (struct option){NULL, 0, NULL, 0};

	/* '+': stop at the program name; its own flags are not ours. */
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:t:n:a:l:i:ex:s:c::f::k:qh", longs, NULL)) != -1) {
		const struct flag *f = flag_by_val(c);
		const char *spelled = argv[optind - 1];

		if (c == 'h') {
			usage(mode);
			free(a.ov);
			return 1;
		}
		if (c == ':') {
			log_error("option \"%s\" needs a value; see mirrord-trace %s --help",
			          spelled, mode == CLI_VERIFY ? "verify-config" : "exec");
			free(a.ov);
			return -EINVAL;
		}
		if (!f) {
			if (optopt && optopt < 0x100)
				log_error("unknown option \"-%c\"; see mirrord-trace %s --help",
				          optopt, mode == CLI_VERIFY ? "verify-config" : "exec");
			else
				log_error("unknown option \"%s\"; see mirrord-trace %s --help",
				          spelled, mode == CLI_VERIFY ? "verify-config" : "exec");
			free(a.ov);
			return -EINVAL;
		}
		if (c == OPT_IDE)
			a.ide = true;
		if (!f->env)
			continue; /* accepted, nothing to do (--disable-version-check) */
		const char *val = optarg ? optarg : f->fixed;
		/* `-f PATH` as clap reads an optional value: the next argument,
		 * unless it is another option. */
		if (c == 'f' && !optarg && optind < argc &&
		    (argv[optind][0] != '-' || strcmp(argv[optind], "-") == 0))
			val = argv[optind++];
		add(&a, f->env, val, f->opt.name);
		if (f->env2)
			add(&a, f->env2, val, f->opt.name);
	}
	if (mode == CLI_VERIFY) {
		/* mirrord's form: `verify-config PATH`. */
		if (optind < argc)
			verify_path = argv[optind++];
		if (optind < argc) {
			log_error("unexpected argument \"%s\"; usage: mirrord-trace verify-config "
			          "[-f PATH | PATH] [OPTIONS]",
			          argv[optind]);
			free(a.ov);
			return -EINVAL;
		}
		if (verify_path)
			add(&a, "MIRRORD_CONFIG_FILE", verify_path, "verify-config PATH");
	} else if (optind >= argc) {
		log_error("no program given; usage: mirrord-trace [exec] [OPTIONS] -- PROGRAM "
		          "[ARGS...]");
		free(a.ov);
		return -EINVAL;
	}
	a.argv = argv + optind;
	a.argc = argc - optind;
	*ret = a;
	return 0;
}

void cli_args_done(struct cli_args *a)
{
	free(a->ov);
	a->ov = NULL;
	a->nov = 0;
}

int cli_resolve_quiet(const struct cli_args *a, struct config **ret, struct config_errors *errs)
{
	struct config_input in = {.envp = a->envp, .overrides = a->ov, .noverrides = a->nov};

	return config_resolve(&in, ret, errs);
}

int cli_resolve(const struct cli_args *a, struct config **ret)
{
	struct config_errors errs = {0};
	int e = cli_resolve_quiet(a, ret, &errs);

	for (size_t i = 0; i < errs.n; i++) {
		_cleanup_free_ char *s = config_error_format(&errs.v[i]);
		log_error("%s", s);
	}
	config_errors_clear(&errs);
	return e;
}

void cli_print_warnings(const struct config *c)
{
	for (size_t i = 0; i < c->warnings.n; i++) {
		_cleanup_free_ char *s = config_error_format(&c->warnings.v[i]);
		log_warn("%s", s);
	}
}

int exec_parse(int argc, char **argv, struct exec_options *o)
{
	struct cli_args a;
	struct config *c = NULL;
	int e;

	*o = (struct exec_options){0};
	e = cli_parse(CLI_EXEC, argc, argv, &a);
	if (e != 0)
		return e;
	e = cli_resolve(&a, &c);
	cli_args_done(&a);
	if (e < 0)
		return -EINVAL;
	cli_print_warnings(c);
	*o = (struct exec_options){
	        .config = c,
	        .agent_addr = c->agent_addr,
	        .env_include = c->env_include,
	        .env_exclude = c->env_exclude,
	        .outgoing_tcp = c->outgoing_tcp,
	        .outgoing_udp = c->outgoing_udp,
	        .ignore_localhost = c->ignore_localhost,
	        .out_filter = c->out_filter,
	        .dns_filter = c->dns_filter,
	        .remote_dns = c->remote_dns,
	        .trace = c->trace,
	        .trace_stacks = c->trace_stacks,
	        .quiet = c->quiet,
	        .log_level = c->log_level,
	        .connect_timeout_ms = c->connect_timeout_ms,
	        .argv = a.argv,
	        .argc = a.argc,
	};
	return 0;
}

void exec_options_done(struct exec_options *o)
{
	config_free(o->config);
	o->config = NULL;
}
