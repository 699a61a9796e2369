/* `exec` options. Precedence per field: flag > MIRRORD_* variable >
 * default, as mirrord users expect (mirrord-behaviour.md §1.1). */
#include "cli/cli.h"
#include "common/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_AGENT_ADDR = 0x100,
	OPT_NO_OUTGOING,
	OPT_NO_TCP_OUTGOING,
	OPT_NO_UDP_OUTGOING,
	OPT_NO_REMOTE_DNS,
	OPT_TRACE,
	OPT_TRACE_STACKS,
	OPT_LOG_LEVEL,
	OPT_CONNECT_TIMEOUT,
};

static const struct option long_opts[] = {
        {"agent-addr", required_argument, NULL, OPT_AGENT_ADDR},
        {"override-env-vars-include", required_argument, NULL, 's'},
        {"override-env-vars-exclude", required_argument, NULL, 'x'},
        {"no-outgoing", no_argument, NULL, OPT_NO_OUTGOING},
        {"no-tcp-outgoing", no_argument, NULL, OPT_NO_TCP_OUTGOING},
        {"no-udp-outgoing", no_argument, NULL, OPT_NO_UDP_OUTGOING},
        {"no-remote-dns", no_argument, NULL, OPT_NO_REMOTE_DNS},
        {"trace", no_argument, NULL, OPT_TRACE},
        {"trace-stacks", no_argument, NULL, OPT_TRACE_STACKS},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"agent-connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

static void usage(void)
{
	printf("Usage: mirrord-trace [exec] [OPTIONS] [--] PROGRAM [ARGS...]\n\n"
	       "Run PROGRAM locally with the environment, DNS and outgoing network of a pod.\n\n"
	       "Options:\n"
	       "      --agent-addr HOST:PORT   reach an agent that is already running\n"
	       "                               (env MIRRORD_TRACE_AGENT_ADDR)\n"
	       "  -s, --override-env-vars-include 'A;B*'\n"
	       "                               take only these pod variables\n"
	       "                               (env MIRRORD_OVERRIDE_ENV_VARS_INCLUDE)\n"
	       "  -x, --override-env-vars-exclude 'A;B*'\n"
	       "                               take all pod variables but these\n"
	       "                               (env MIRRORD_OVERRIDE_ENV_VARS_EXCLUDE)\n"
	       "      --no-outgoing            keep all outgoing traffic local\n"
	       "      --no-tcp-outgoing        keep outgoing TCP local (env "
	       "MIRRORD_TCP_OUTGOING=false)\n"
	       "      --no-udp-outgoing        keep outgoing UDP local (env "
	       "MIRRORD_UDP_OUTGOING=false)\n"
	       "      --no-remote-dns          resolve names locally (env "
	       "MIRRORD_REMOTE_DNS=false)\n"
	       "      --trace                  log every intercepted syscall: decision, result, "
	       "time\n"
	       "                               (env MIRRORD_TRACE_LOG=trace)\n"
	       "      --trace-stacks           with --trace, add the caller's stack and syscall "
	       "site\n"
	       "      --log-level LEVEL        error, warn, info, debug or trace\n"
	       "      --agent-connect-timeout SECS\n"
	       "                               how long to wait for the agent (default 10)\n"
	       "  -h, --help                   show this help\n");
}

static int env_bool(const char *name, bool *val)
{
	const char *v = getenv(name);

	if (!v || !*v)
		return 0;
	if (parse_bool(v, val) < 0) {
		log_error("%s=\"%s\" is not a boolean; use true or false", name, v);
		return -EINVAL;
	}
	return 0;
}

static const char *env_str(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

int exec_parse(int argc, char **argv, struct exec_options *o)
{
	const char *v;
	long secs;
	int c;

	*o = (struct exec_options){
	        .outgoing_tcp = true,
	        .outgoing_udp = true,
	        .remote_dns = true,
	        .log_level = LOG_WARN,
	        .connect_timeout_ms = 10000,
	};
	/* Environment first; flags below override it. */
	o->agent_addr = env_str("MIRRORD_TRACE_AGENT_ADDR");
	o->env_include = env_str("MIRRORD_OVERRIDE_ENV_VARS_INCLUDE");
	o->env_exclude = env_str("MIRRORD_OVERRIDE_ENV_VARS_EXCLUDE");
	if (env_bool("MIRRORD_TCP_OUTGOING", &o->outgoing_tcp) < 0 ||
	    env_bool("MIRRORD_UDP_OUTGOING", &o->outgoing_udp) < 0 ||
	    env_bool("MIRRORD_REMOTE_DNS", &o->remote_dns) < 0)
		return -EINVAL;
	v = env_str("MIRRORD_TRACE_LOG");
	if (v) {
		if (log_parse_level(v, &o->log_level) < 0) {
			log_error("MIRRORD_TRACE_LOG=\"%s\" is not a level; use error, warn, info, "
			          "debug or trace",
			          v);
			return -EINVAL;
		}
		if (o->log_level == LOG_TRACE)
			o->trace = true;
	}

	/* '+': stop at the program name; its own flags are not ours. */
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:s:x:h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_AGENT_ADDR:
			o->agent_addr = optarg;
			break;
		case 's':
			o->env_include = optarg;
			break;
		case 'x':
			o->env_exclude = optarg;
			break;
		case OPT_NO_OUTGOING:
			o->outgoing_tcp = o->outgoing_udp = false;
			break;
		case OPT_NO_TCP_OUTGOING:
			o->outgoing_tcp = false;
			break;
		case OPT_NO_UDP_OUTGOING:
			o->outgoing_udp = false;
			break;
		case OPT_NO_REMOTE_DNS:
			o->remote_dns = false;
			break;
		case OPT_TRACE:
			o->trace = true;
			break;
		case OPT_TRACE_STACKS:
			o->trace = o->trace_stacks = true;
			break;
		case OPT_LOG_LEVEL:
			if (log_parse_level(optarg, &o->log_level) < 0) {
				log_error(
				        "--log-level \"%s\" is not a level; use error, warn, info, "
				        "debug or trace",
				        optarg);
				return -EINVAL;
			}
			break;
		case OPT_CONNECT_TIMEOUT:
			if (parse_int(optarg, 1, 3600, &secs) < 0) {
				log_error(
				        "--agent-connect-timeout \"%s\" is not a number of seconds "
				        "between 1 and 3600",
				        optarg);
				return -EINVAL;
			}
			o->connect_timeout_ms = (int)secs * 1000;
			break;
		case 'h':
			usage();
			return 1;
		case ':':
			log_error("option \"%s\" needs a value; see mirrord-trace exec --help",
			          argv[optind - 1]);
			return -EINVAL;
		case '?':
		default:
			if (optopt && optopt < 0x100)
				log_error("unknown option \"-%c\"; see mirrord-trace exec --help",
				          optopt);
			else
				log_error("unknown option \"%s\"; see mirrord-trace exec --help",
				          argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind >= argc) {
		log_error("no program given; usage: mirrord-trace [exec] [OPTIONS] -- PROGRAM "
		          "[ARGS...]");
		return -EINVAL;
	}
	if (o->env_include && o->env_exclude) {
		log_error(
		        "-s/--override-env-vars-include and -x/--override-env-vars-exclude cannot "
		        "be used together; keep one of them");
		return -EINVAL;
	}
	if (!o->agent_addr) {
		log_error("no agent to talk to; pass --agent-addr HOST:PORT of a running "
		          "mirrord-trace-agent");
		return -EINVAL;
	}
	o->argv = argv + optind;
	o->argc = argc - optind;
	return 0;
}
