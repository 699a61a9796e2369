/* mirrord-trace-agent: CLI, startup order and the event loop.
 *
 * Startup order matters: the listener is created in the agent's own
 * network namespace (where port-forward and tests reach it on loopback),
 * and only then does the agent setns() into the target's: every socket
 * made afterwards (the outgoing connections) lives there. */
#include "agent/agent.h"
#include "agent/incoming.h"
#include "common/evloop.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define DEFAULT_LISTEN "0.0.0.0:61337"
#define DEFAULT_COMM_TIMEOUT_S 30
#define MAX_COMM_TIMEOUT_S 86400
#define DEFAULT_HTTP_DETECT_S 2 /* mirrord's agent.http_detection_timeout */
#define MAX_HTTP_DETECT_S 3600
/* Longest container id we accept; real ones are 64 hex digits. */
#define CONTAINER_ID_MAX 256

struct options {
	const char *listen;
	unsigned comm_timeout_s;
	unsigned http_detect_s;
	bool no_flush;
	const char *firewall;
	enum log_level log_level;
	enum agent_mode mode;
	pid_t pid;
	const char *container_id;
};

struct loop_state {
	struct agent *a;
	int listen_fd;
	int64_t no_client_timer;
	bool had_client; /* a client came and its link dropped */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: mirrord-trace-agent [OPTIONS] MODE\n"
	        "\n"
	        "Modes:\n"
	        "  targeted --pid N             serve from the network namespace and root of pid "
	        "N\n"
	        "  targeted --container-id ID   same, for the lowest pid whose cgroup names ID\n"
	        "  ephemeral [--container-id ID]\n"
	        "                               already in the target's network namespace (no\n"
	        "                               setns); with ID, env and files come from that\n"
	        "                               container's process, and its exit ends the agent\n"
	        "  targetless                   no target: the agent's own namespace and env\n"
	        "\n"
	        "Options:\n"
	        "  --listen ADDR:PORT           where the client connects (default " DEFAULT_LISTEN
	        "; port 0 picks one)\n"
	        "  --communication-timeout SECS exit if no client arrives in time (default %d)\n"
	        "  --log-level LEVEL            error, warn, info, debug or trace (default info)\n"
	        "  --http-detection-timeout SECS\n"
	        "                               a stolen connection on a filtered port whose\n"
	        "                               first HTTP request head is not whole in time\n"
	        "                               goes to the pod's app whole (default %d)\n"
	        "  --no-flush-connections       keep the connections the pod's app holds on a\n"
	        "                               port when its steal starts (default: kill them,\n"
	        "                               so their clients reconnect through the redirect)\n"
	        "  --firewall nft|iptables      the redirect backend (default: nft if installed)\n"
	        "  -h, --help                   show this help\n"
	        "  -V, --version                show the version\n",
	        DEFAULT_COMM_TIMEOUT_S, DEFAULT_HTTP_DETECT_S);
}

MT_PRINTF(1, 2) static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("mirrord-trace-agent: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	return -EINVAL;
}

/* "--name VALUE" or "--name=VALUE". Returns 1 if argv[*i] is this option
 * (and sets *val, advancing *i), 0 if not, -EINVAL if its value is missing. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t nl = strlen(name);
	const char *arg = argv[*i];

	if (strncmp(arg, name, nl) != 0)
		return 0;
	if (arg[nl] == '=') {
		*val = arg + nl + 1;
		return 1;
	}
	if (arg[nl] != 0)
		return 0;
	if (*i + 1 >= argc)
		return usage_error("option %s needs a value", name);
	*val = argv[++*i];
	return 1;
}

/* Returns 0 to run, 1 after --help/--version, -EINVAL on bad usage. */
static int parse_args(int argc, char **argv, struct options *o)
{
	const char *mode = NULL, *pid = NULL, *v;
	uint64_t n;
	int r;

	*o = (struct options){.listen = DEFAULT_LISTEN,
	                      .comm_timeout_s = DEFAULT_COMM_TIMEOUT_S,
	                      .http_detect_s = DEFAULT_HTTP_DETECT_S,
	                      .log_level = LOG_INFO};
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			usage(stdout);
			return 1;
		}
		if (!strcmp(arg, "-V") || !strcmp(arg, "--version")) {
			printf("mirrord-trace-agent %s\n", MT_VERSION);
			return 1;
		}
		if ((r = opt_value(argc, argv, &i, "--listen", &o->listen)) != 0) {
			if (r < 0)
				return r;
		} else if ((r = opt_value(argc, argv, &i, "--communication-timeout", &v)) != 0) {
			if (r < 0)
				return r;
			if (parse_u64(v, MAX_COMM_TIMEOUT_S, &n) < 0 || n == 0)
				return usage_error("--communication-timeout \"%s\" is not a number "
				                   "of seconds from 1 to %d",
				                   v, MAX_COMM_TIMEOUT_S);
			o->comm_timeout_s = (unsigned)n;
		} else if ((r = opt_value(argc, argv, &i, "--http-detection-timeout", &v)) != 0) {
			if (r < 0)
				return r;
			if (parse_u64(v, MAX_HTTP_DETECT_S, &n) < 0 || n == 0)
				return usage_error(
				        "--http-detection-timeout \"%s\" is not a number "
				        "of seconds from 1 to %d",
				        v, MAX_HTTP_DETECT_S);
			o->http_detect_s = (unsigned)n;
		} else if (!strcmp(arg, "--no-flush-connections")) {
			o->no_flush = true;
		} else if ((r = opt_value(argc, argv, &i, "--firewall", &o->firewall)) != 0) {
			if (r < 0)
				return r;
			if (redirect_use_backend(o->firewall) < 0)
				return usage_error("--firewall \"%s\" is not nft or iptables",
				                   o->firewall);
		} else if ((r = opt_value(argc, argv, &i, "--log-level", &v)) != 0) {
			if (r < 0)
				return r;
			if (log_parse_level(v, &o->log_level) < 0)
				return usage_error("--log-level \"%s\" is not one of error, warn, "
				                   "info, debug, trace",
				                   v);
		} else if ((r = opt_value(argc, argv, &i, "--pid", &pid)) != 0) {
			if (r < 0)
				return r;
		} else if ((r = opt_value(argc, argv, &i, "--container-id", &o->container_id)) !=
		           0) {
			if (r < 0)
				return r;
		} else if (arg[0] == '-') {
			return usage_error("unknown option \"%s\"", arg);
		} else if (mode) {
			return usage_error("unexpected argument \"%s\": give one mode", arg);
		} else {
			mode = arg;
		}
	}

	if (!mode)
		return usage_error("missing mode: give targeted, ephemeral or targetless");
	if (!strcmp(mode, "targeted"))
		o->mode = AGENT_TARGETED;
	else if (!strcmp(mode, "ephemeral"))
		o->mode = AGENT_EPHEMERAL;
	else if (!strcmp(mode, "targetless"))
		o->mode = AGENT_TARGETLESS;
	else
		return usage_error("unknown mode \"%s\": use targeted, ephemeral or targetless",
		                   mode);

	if (o->mode == AGENT_TARGETLESS) {
		if (pid || o->container_id)
			return usage_error("--pid and --container-id do not go with targetless");
		return 0;
	}
	if (o->mode == AGENT_EPHEMERAL && !pid && !o->container_id)
		return 0; /* mirrord's plain form: our own env and root */
	if (!!pid == !!o->container_id)
		return usage_error("%s mode needs exactly one of --pid N or --container-id ID",
		                   agent_mode_name(o->mode));
	if (pid) {
		if (parse_u64(pid, INT32_MAX, &n) < 0 || n == 0)
			return usage_error("--pid \"%s\" is not a process id", pid);
		o->pid = (pid_t)n;
	} else if (!*o->container_id || strlen(o->container_id) > CONTAINER_ID_MAX) {
		return usage_error("--container-id must be 1 to %d characters", CONTAINER_ID_MAX);
	}
	return 0;
}

/* parse_hostport() refuses port 0, which here means "pick one". */
static int parse_listen(const char *s, struct sockaddr_storage *ss, unsigned *len)
{
	size_t l = strlen(s);
	_cleanup_free_ char *tmp = NULL;

	if (l >= 2 && !strcmp(s + l - 2, ":0")) {
		tmp = xstrdup(s);
		tmp[l - 1] = '1';
		int r = parse_hostport(tmp, ss, len);
		if (r < 0)
			return r;
		if (ss->ss_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = 0;
		else
			((struct sockaddr_in6 *)ss)->sin6_port = 0;
		return 0;
	}
	return parse_hostport(s, ss, len);
}

static int make_listener(const struct sockaddr_storage *ss, unsigned len, int *ret_fd)
{
	_cleanup_close_ int fd =
	        socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) < 0)
		return -errno;
	/* The first connection is the session; a small backlog is enough to
	 * accept and reject the rest. */
	if (listen(fd, 8) < 0)
		return -errno;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static void no_client_timeout(struct evloop *l, void *data)
{
	struct loop_state *st = data;

	st->no_client_timer = 0;
	if (st->had_client) {
		/* Its owner is gone for good (killed, say): a normal end. */
		log_info("the client did not come back within %u s; exiting",
		         st->a->comm_timeout_s);
		evloop_quit(l, AGENT_EXIT_OK);
		return;
	}
	log_error("no client connected within %u s (--communication-timeout); exiting",
	          st->a->comm_timeout_s);
	evloop_quit(l, AGENT_EXIT_FAIL);
}

static void client_detached(struct agent *a)
{
	struct loop_state *st = a->data;

	st->had_client = true;
	if (!st->no_client_timer)
		st->no_client_timer = evloop_timer(a->loop, (uint64_t)a->comm_timeout_s * 1000,
		                                   no_client_timeout, st);
}

/* Tell a second client why it is turned away, best effort: the socket is
 * fresh, so one small non-blocking send fits in its buffer. */
static void reject_extra(int fd)
{
	static const char text[] = "this agent already serves a client";
	struct ap_msg m = {
	        .type = AP_ERROR,
	        .u.error = {.err = EBUSY, .message = {(const uint8_t *)text, sizeof(text) - 1}},
	};
	uint8_t buf[AP_HEADER_SIZE + 8 + sizeof(text)];
	ssize_t n = ap_encode(&m, buf, sizeof(buf));

	if (n > 0)
		(void)!send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void on_accept(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct loop_state *st = data;
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	char buf[SOCKADDR_STR_MAX];
	int cfd = accept4(fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (cfd < 0)
		return; /* EAGAIN, or the peer gave up before we accepted */
	if (st->a->client) {
		log_warn("rejected a second client from %s",
		         sockaddr_str(&peer, pl, buf, sizeof(buf)));
		reject_extra(cfd);
		return;
	}
	int r = client_new(st->a, cfd, &st->a->client);
	if (r < 0) {
		log_error("cannot serve the client: %s", strerror(-r));
		close(cfd);
		evloop_quit(l, AGENT_EXIT_FAIL);
		return;
	}
	log_info("connection from %s", sockaddr_str(&peer, pl, buf, sizeof(buf)));
	if (st->no_client_timer) {
		evloop_timer_cancel(l, st->no_client_timer);
		st->no_client_timer = 0;
	}
}

static void on_target_exit(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct loop_state *st = data;
	struct agent *a = st->a;

	evloop_del(l, fd);
	if (a->client)
		client_fail(a->client, AGENT_EXIT_FAIL, ESRCH, "target process %d exited",
		            (int)a->target.pid);
	else {
		log_error("target process %d exited", (int)a->target.pid);
		evloop_quit(l, AGENT_EXIT_FAIL);
	}
}

/* Each stream holds one fd, and the usual soft limit of 1024 would fail
 * connects with EMFILE long before AGENT_MAX_STREAMS. Raise it, within
 * the hard limit; if that fails the per-stream errors say so. */
static void raise_fd_limit(void)
{
	/* streams + listener, client, pidfd, root, netns, epoll, stdio */
	const rlim_t want = AGENT_MAX_STREAMS + 32;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

/* Steal rules of an agent that died with its guard (the whole pod
 * killed) would redirect the pod's port to nowhere: remove them before
 * serving. Rules whose owner still runs (another session) stay. The
 * guard of this agent starts with its first rule (redirect.c). */
static void clean_predecessors(const struct agent_target *t)
{
	unsigned removed, alive;
	int r;

	if (t->mode == AGENT_TARGETLESS)
		return;
	r = redirect_clean_stale(&removed, &alive);
	if (r < 0)
		log_debug("no %s to check for leftover redirects: %s", redirect_backend_name(),
		          strerror(-r));
	else if (removed)
		log_warn("removed %u redirect rule set(s) of a previous agent that did not "
		         "clean up (%s)",
		         removed, redirect_backend_name());
	if (r >= 0 && alive)
		log_warn("%u other agent(s) hold redirects in this network namespace", alive);
}

/* Everything after argument parsing; returns the exit code. */
static int run(const struct options *o)
{
	struct agent a = {.comm_timeout_s = o->comm_timeout_s,
	                  .http_detect_ms = o->http_detect_s * 1000,
	                  .flush_connections = !o->no_flush};
	struct loop_state st = {.a = &a, .listen_fd = -1};
	struct sockaddr_storage ss;
	unsigned sl;
	const char *what = NULL;
	pid_t pid = o->pid;
	char buf[SOCKADDR_STR_MAX];
	int r, code = AGENT_EXIT_FAIL;

	a.target = (struct agent_target){.pidfd = -1, .rootfd = -1, .netnsfd = -1};
	raise_fd_limit();
	if (parse_listen(o->listen, &ss, &sl) < 0) {
		usage_error("--listen \"%s\" is not a numeric ADDR:PORT like 0.0.0.0:61337",
		            o->listen);
		return AGENT_EXIT_USAGE;
	}

	/* Find and pin the target before anything else, so a typo fails
	 * fast with a clear message. */
	if (o->container_id) {
		r = target_pid_from_container(o->container_id, &pid);
		if (r < 0) {
			log_error(r == -ESRCH
			                  ? "no process found whose /proc/PID/cgroup mentions "
			                    "container \"%s\" (is the agent running with hostPID?)"
			                  : "cannot scan /proc for container \"%s\": %s",
			          o->container_id, strerror(-r));
			return AGENT_EXIT_FAIL;
		}
		log_info("container \"%s\" is pid %d", o->container_id, (int)pid);
	}
	r = target_open(o->mode, pid, &a.target, &what);
	if (r < 0) {
		if (pid > 0)
			log_error("cannot use pid %d as the target: %s: %s", (int)pid, what,
			          strerror(-r));
		else
			log_error("%s: %s", what, strerror(-r));
		return AGENT_EXIT_FAIL;
	}

	r = make_listener(&ss, sl, &st.listen_fd);
	if (r < 0) {
		log_error("cannot listen on %s: %s", o->listen, strerror(-r));
		goto out_target;
	}
	/* From here on, new sockets belong to the target's netns. */
	r = target_enter_netns(&a.target);
	if (r < 0) {
		log_error("cannot enter the network namespace of pid %d: %s%s", (int)pid,
		          strerror(-r), r == -EPERM ? " (the agent needs CAP_SYS_ADMIN)" : "");
		goto out_listen;
	}
	clean_predecessors(&a.target);

	r = evloop_new(&a.loop);
	if (r < 0) {
		log_error("cannot create the event loop: %s", strerror(-r));
		goto out_listen;
	}
	a.streams = streams_new(&a);
	a.client_detached = client_detached;
	a.data = &st;
	r = evloop_add(a.loop, st.listen_fd, EPOLLIN, on_accept, &st);
	if (r >= 0 && a.target.pidfd >= 0)
		r = evloop_add(a.loop, a.target.pidfd, EPOLLIN, on_target_exit, &st);
	if (r < 0) {
		log_error("cannot watch the listener: %s", strerror(-r));
		goto out_loop;
	}
	st.no_client_timer =
	        evloop_timer(a.loop, (uint64_t)o->comm_timeout_s * 1000, no_client_timeout, &st);

	if (ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port == 0
	                            : ((struct sockaddr_in6 *)&ss)->sin6_port == 0) {
		socklen_t len = sizeof(ss);
		if (getsockname(st.listen_fd, (struct sockaddr *)&ss, &len) < 0) {
			log_error("getsockname: %s", strerror(errno));
			goto out_loop;
		}
		/* An unspecified bind address is reached on loopback. */
		if (ss.ss_family == AF_INET &&
		    ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY))
			((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else if (ss.ss_family == AF_INET6 &&
		         IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr))
			((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
		printf("listening on %s\n", sockaddr_str(&ss, len, buf, sizeof(buf)));
	}
	printf("agent ready - version %s\n", MT_VERSION);
	fflush(stdout);
	if (pid > 0)
		log_info("serving in %s mode, target pid %d", agent_mode_name(o->mode), (int)pid);
	else
		log_info("serving in %s mode", agent_mode_name(o->mode));

	r = evloop_run(a.loop);
	if (r < 0)
		log_error("event loop failed: %s", strerror(-r));
	code = r < 0 ? AGENT_EXIT_FAIL : r;

out_loop:
	/* Streams first: freeing them may still talk to the client. */
	streams_free(a.streams);
	a.streams = NULL;
	client_free(a.client);
	a.client = NULL;
	agent_linger_flush();
	evloop_free(a.loop);
out_listen:
	closep(&st.listen_fd);
out_target:
	target_close(&a.target);
	return code;
}

int main(int argc, char **argv)
{
	struct options o;
	int r;

	/* Writes to a vanished peer must come back as EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	r = parse_args(argc, argv, &o);
	if (r > 0)
		return AGENT_EXIT_OK;
	if (r < 0)
		return AGENT_EXIT_USAGE;
	log_init("mirrord-trace-agent", o.log_level);
	return run(&o);
}
