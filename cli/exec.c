/* `mirrord-trace exec`: connect to the agent, prepare the pod context
 * (environment, DNS, pod files), run the program under the tracer, and
 * exit as the program did. */
#include "cli/cli.h"
#include "cli/config.h"
#include "cli/env_mapping.h"
#include "cli/k8s_run.h"
#include "common/evloop.h"
#include "common/util.h"
#include "session/fs_cache.h"
#include "session/fuse.h"
#include "session/session.h"
#include "syscalls/fs_policy.h"
#include "syscalls/net_filter.h"
#include "syscalls/syscalls.h"
#include "tracer/tracer.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* After the agent is lost, the program gets this long to notice the
 * resets and exit on its own before it is killed. */
#define LOST_GRACE_MS 3000

struct run {
	struct evloop *loop;
	struct session *session;
	struct tracer *tracer;
	struct policy *policy;
	int sigfd;
	int stop_sig; /* a stop signal that came before the program ran */
	int status;
	bool done;
	bool agent_lost;
	int64_t lost_timer;
	struct fs_fuse *fuse; /* large pod files, read lazily; or NULL */
	const char *lazy_why; /* why not, for the notice */
};

/* PATH lookup as execvp does it, but before forking, so a missing program
 * is one clear message and not an exec failure inside the tracee. */
static char *find_program(const char *name)
{
	const char *path = getenv("PATH");
	struct stat sb;

	if (strchr(name, '/'))
		return stat(name, &sb) == 0 ? xstrdup(name) : NULL;
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path; p;) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char *cand =
		        len ? xasprintf("%.*s/%s", (int)len, p, name) : xasprintf("./%s", name);
		if (stat(cand, &sb) == 0 && S_ISREG(sb.st_mode) && access(cand, X_OK) == 0)
			return cand;
		free(cand);
		p = end ? end + 1 : NULL;
	}
	return NULL;
}

static void on_syscall(struct sc_event *ev, void *data)
{
	struct run *r = data;

	policy_on_syscall(ev, r->policy);
}

static void on_notice(void *data, const char *msg)
{
	log_warn("%s", msg);
}

static void on_fs_notice(void *data, const char *msg)
{
	struct run *r = data;

	log_warn("%s: lazy reads of large files need FUSE (%s)", msg,
	         r->lazy_why ? r->lazy_why : "unavailable");
}

/* A write-back the pod refused (session/fs_cache.h): one line naming the
 * pod path, what happened there, and where the program's version is. */
static void on_fs_conflict(void *data, const struct fs_cache_conflict *cf)
{
	const char *what = cf->gone ? "was deleted in the pod" : "changed in the pod";
	const char *kept = cf->gone ? "it stays deleted" : "the pod's version is kept";

	(void)data;
	if (cf->saved)
		log_warn("write-back conflict: \"%s\" %s since it was last read or written back; "
		         "%s, the program's version is saved as \"%s\"",
		         cf->remote, what, kept, cf->saved);
	else
		log_warn("write-back conflict: \"%s\" %s since it was last read or written back; "
		         "%s, the program's version could not be saved: %s",
		         cf->remote, what, kept, strerror(-cf->err));
}

/* Where the program's versions of conflicting files go: below
 * $XDG_STATE_HOME (or ~/.local/state), one directory per run, named by
 * its start time (UTC) and our pid. Not the run directory: that goes at
 * exit, and these are for the user to merge by hand. */
static char *conflict_dir(void)
{
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	_cleanup_free_ char *base = NULL;

	if (state && *state == '/')
		base = xstrdup(state);
	else if (home && *home == '/')
		base = xasprintf("%s/.local/state", home);
	else
		base = xasprintf("/tmp/mirrord-trace-state-%u", (unsigned)getuid());
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	return xasprintf("%s/mirrord-trace/conflicts/%s-%d", base, stamp, (int)getpid());
}

/* Regular pod files of at least this size are read lazily through FUSE;
 * MIRRORD_TRACE_FS_LAZY_MIN=BYTES changes it, =off fetches every file
 * whole. */
#define LAZY_MIN_DEFAULT (8u * 1024 * 1024)

static void setup_lazy(struct run *r, struct fs_cache *fc, const char *dir)
{
	const char *env = getenv("MIRRORD_TRACE_FS_LAZY_MIN");
	_cleanup_free_ char *mnt = xasprintf("%s/lazy", dir);
	uint64_t min = LAZY_MIN_DEFAULT;
	int e;

	if (env && strcmp(env, "off") == 0) {
		r->lazy_why = "MIRRORD_TRACE_FS_LAZY_MIN=off";
		fs_cache_set_lazy(fc, r->loop, NULL, min);
		return;
	}
	if (env && (parse_u64(env, UINT64_MAX, &min) < 0 || min == 0)) {
		log_warn("MIRRORD_TRACE_FS_LAZY_MIN=\"%s\" is not a size in bytes > 0 or \"off\"; "
		         "using %u",
		         env, LAZY_MIN_DEFAULT);
		min = LAZY_MIN_DEFAULT;
	}
	e = fs_fuse_new(r->session, r->loop, mnt, &r->fuse, &r->lazy_why);
	if (e < 0) {
		log_debug("no FUSE mount for large pod files: %s: %s", r->lazy_why, strerror(-e));
		r->fuse = NULL;
	}
	fs_cache_set_lazy(fc, r->loop, r->fuse, min);
}

static void log_session_stats(struct session *s)
{
	struct session_stats ss;

	session_get_stats(s, &ss);
	log_debug("session: %llu streams, %llu incoming held for the accept queue, "
	          "%llu reconnects, %llu file bytes from the agent, %llu write-back conflicts",
	          (unsigned long long)ss.streams_opened, (unsigned long long)ss.in_waited,
	          (unsigned long long)ss.reconnects, (unsigned long long)ss.fs_bytes,
	          (unsigned long long)ss.fs_conflicts);
	/* The warnings of single files may have scrolled away in the
	 * program's output: one summary at the end. */
	if (ss.fs_conflicts)
		log_warn("%llu write-back conflict%s in this run: the pod's changes were kept "
		         "(see the warnings above)",
		         (unsigned long long)ss.fs_conflicts, ss.fs_conflicts == 1 ? "" : "s");
}

static void on_done(int status, void *data)
{
	struct run *r = data;

	r->status = status;
	r->done = true;
	evloop_quit(r->loop, 0);
}

static void lost_grace_over(struct evloop *l, void *data)
{
	struct run *r = data;

	r->lost_timer = 0;
	log_error("the program did not exit after losing the agent; killing it");
	tracer_forward_signal(r->tracer, SIGKILL);
}

static void on_agent_lost(void *data, const char *why)
{
	struct run *r = data;

	r->agent_lost = true;
	log_error("lost the connection to the agent: %s; the program's remote connections were "
	          "reset",
	          why);
	r->lost_timer = evloop_timer(r->loop, LOST_GRACE_MS, lost_grace_over, r);
}

static void on_signal(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct run *r = data;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		/* A terminal's Ctrl-C or Ctrl-\ reaches the whole foreground
		 * process group, the program included (sender pid 0 = kernel):
		 * the program decides. A signal sent to us alone (kill) is
		 * passed on, as if we were not here. */
		if (si.ssi_code == SI_KERNEL)
			continue;
		if (r->tracer)
			tracer_forward_signal(r->tracer, (int)si.ssi_signo);
	}
}

/* The program stopped (a terminal's Ctrl-Z reached the whole foreground
 * group, or someone stopped it): stop with the same signal, so that the
 * shell sees the job stopped only now, with the program already in its
 * stop. Stopping at the terminal's signal itself, before the program,
 * could leave the program's own stop undelivered until after the shell's
 * SIGCONT, and the job would stay stopped after `fg`. Returns on SIGCONT. */
static void on_group_stop(int sig, void *data)
{
	sigset_t one;

	(void)data;
	sigemptyset(&one);
	sigaddset(&one, sig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	raise(sig);
	if (sig != SIGSTOP)
		sigprocmask(SIG_BLOCK, &one, NULL);
}

static int setup_signals(struct run *r)
{
	sigset_t set;

	sigemptyset(&set);
	/* Stop signals too: we stop when the program has (on_group_stop). */
	sigaddset(&set, SIGTSTP);
	sigaddset(&set, SIGTTIN);
	sigaddset(&set, SIGTTOU);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	r->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (r->sigfd < 0)
		return -errno;
	return evloop_add(r->loop, r->sigfd, EPOLLIN, on_signal, r);
}

/* A stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) that arrived before the
 * program runs (while the agent started): the run is cancelled, and the
 * caller cleans up (the agent Job goes too). Others are dropped. */
static int pending_stop(struct run *r)
{
	struct signalfd_siginfo si;

	while (read(r->sigfd, &si, sizeof(si)) == sizeof(si))
		if (!r->stop_sig && (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM ||
		                     si.ssi_signo == SIGHUP || si.ssi_signo == SIGQUIT))
			r->stop_sig = (int)si.ssi_signo;
	return r->stop_sig;
}

/* Polled by the Kubernetes client while the agent starts, so a Ctrl-C
 * during a long wait cancels at once (and the Job is deleted). */
static int start_cancelled(void *data)
{
	return pending_stop(data) != 0;
}

/* Where the relays' --trace lines go: straight to stderr in one write, as
 * the tracer's own lines (tracer/diag.c), whatever the log level. */
static void on_dns_trace(void *data, const char *line)
{
	_cleanup_free_ char *l = xasprintf("%s\n", line);

	(void)data;
	(void)!write(STDERR_FILENO, l, strlen(l));
}

/* The workstation's resolv.conf or hosts (the supervisor's: its network
 * namespace is the workstation's), for the names feature.network.dns.filter
 * keeps local; "" when there is none. At most 64 KiB are read: glibc stops
 * at three nameservers, all near the top, and a hosts file past that is
 * not one a workstation has. */
static char *local_etc(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	size_t cap = 64 * 1024, len = 0;
	char *buf = xmalloc(cap + 1);
	ssize_t k;

	while (fd >= 0 && len < cap && (k = read(fd, buf + len, cap - len)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			break;
		len += (size_t)k;
	}
	buf[len] = '\0';
	return buf;
}

/* feature.network.dns.filter for the relays (session_dns_set_filter): the
 * name entries, and whether an entry without a name or address lists
 * every name. Address entries never match a name (the config check warns
 * about them); the port and protocol of an entry are not known to a DNS
 * query and are not checked. */
static void set_dns_filter(struct session *s, const struct net_filter *f)
{
	_cleanup_free_ const char **names = xcalloc(f->n + 1, sizeof(*names));
	_cleanup_free_ char *conf = local_etc("/etc/resolv.conf");
	_cleanup_free_ char *hosts = local_etc("/etc/hosts");
	struct session_dns_filter sf = {
	        .remote = f->remote,
	        .names = names,
	        .local_resolv_conf = conf,
	        .local_hosts = hosts,
	};

	for (size_t i = 0; i < f->n; i++) {
		if (f->rules[i].name)
			names[sf.nnames++] = f->rules[i].name;
		else if (!f->rules[i].family)
			sf.all = true;
	}
	session_dns_set_filter(s, &sf);
}

/* Copy the pod files the program reads into the run directory. */
static int serve_pod_files(struct run *r, const char *dir, const struct exec_options *o,
                           struct served_file *files, size_t *nfiles)
{
	static const char *const paths[] = {"/etc/resolv.conf", "/etc/hosts", "/etc/hostname"};
	static const char *const names[] = {"resolv.conf", "hosts", "hostname"};
	size_t n = 0;

	if (!o->remote_dns)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		_cleanup_free_ char *data = NULL, *conf = NULL;
		size_t len = 0;
		char *local;
		int e = session_fetch_file(r->session, paths[i], &data, &len);

		if (e == -ENOENT) {
			/* The pod has none: neither does the program. */
			data = xstrdup("");
			len = 0;
		} else if (e < 0) {
			log_error("cannot read %s from the pod: %s", paths[i], strerror(-e));
			return e;
		}
		if (i == 0) {
			if (o->dns_filter)
				set_dns_filter(r->session, o->dns_filter);
			if (o->trace)
				session_dns_on_trace(r->session, on_dns_trace, NULL);
			e = session_dns_start(r->session, data, &conf);
			if (e < 0) {
				log_error("cannot start the local DNS relay: %s", strerror(-e));
				return e;
			}
			free(data);
			data = TAKE_PTR(conf);
			len = strlen(data);
		}
		e = rundir_write(dir, names[i], data, len, &local);
		if (e < 0) {
			log_error("cannot write %s/%s: %s", dir, names[i], strerror(-e));
			return e;
		}
		files[n].pod_path = paths[i];
		files[n].local_path = local;
		n++;
	}
	*nfiles = n;
	return 0;
}

/* A CT_STRLIST value (a string or an array of strings) as an array of
 * pointers into the config (malloc'd, NULL-terminated). */
static const char **str_list(const struct config *c, enum config_field f, size_t *ret_n)
{
	json_t *v = config_get(c, f);
	size_t n = json_is_array(v) ? json_array_size(v) : json_is_string(v) ? 1 : 0, k = 0;
	const char **out = xcalloc(n + 1, sizeof(char *));

	for (size_t i = 0; i < n; i++) {
		const char *s = json_is_array(v) ? json_string_value(json_array_get(v, i))
		                                 : json_string_value(v);
		if (s)
			out[k++] = s;
	}
	*ret_n = k;
	return out;
}

/* feature.network.incoming, typed for the policy; the arrays are kept in
 * struct in_store until the run ends. */
struct in_store {
	uint16_t *filter_ports, *ignore_ports, *ports;
	uint16_t (*mapping)[2], (*listen)[2];
};

static void in_store_free(struct in_store *st)
{
	free(st->filter_ports);
	free(st->ignore_ports);
	free(st->ports);
	free(st->mapping);
	free(st->listen);
}

/* A CT_PORTS value (validated by the resolver). */
static uint16_t *port_list(const struct config *c, enum config_field f, size_t *ret_n)
{
	json_t *v = config_get(c, f);
	size_t n = json_is_array(v) ? json_array_size(v) : 0;
	uint16_t *out = xcalloc(n + 1, sizeof(*out));

	for (size_t i = 0; i < n; i++)
		out[i] = (uint16_t)json_integer_value(json_array_get(v, i));
	*ret_n = n;
	return out;
}

/* A CT_PAIRS value: [[a, b], ...]. */
static uint16_t (*pair_list(const struct config *c, enum config_field f, size_t *ret_n))[2]
{
	json_t *v = config_get(c, f);
	size_t n = json_is_array(v) ? json_array_size(v) : 0;
	uint16_t(*out)[2] = xcalloc(n + 1, sizeof(*out));

	for (size_t i = 0; i < n; i++) {
		json_t *pair = json_array_get(v, i);
		out[i][0] = (uint16_t)json_integer_value(json_array_get(pair, 0));
		out[i][1] = (uint16_t)json_integer_value(json_array_get(pair, 1));
	}
	*ret_n = n;
	return out;
}

/* One http_filter rule from an all_of / any_of element ({"header": ...},
 * {"path": ...} or {"method": ...}, checked by the resolver). */
static void filter_add(struct session_in_filter *f, json_t *rule)
{
	static const struct {
		const char *key;
		int kind;
	} kinds[] = {{"header", SESSION_RULE_HEADER},
	             {"path", SESSION_RULE_PATH},
	             {"method", SESSION_RULE_METHOD}};

	for (size_t i = 0; i < ARRAY_SIZE(kinds) && f->n < SESSION_FILTER_MAX; i++) {
		const char *pat = json_string_value(json_object_get(rule, kinds[i].key));
		if (pat) {
			f->kind[f->n] = kinds[i].kind;
			f->pattern[f->n++] = pat;
		}
	}
}

static void setup_incoming(const struct config *c, bool targetless, struct in_store *st,
                           struct policy_incoming *ret)
{
	const char *mode = config_str(c, CF_IN_MODE);
	struct session_in_filter *f = &ret->filter;
	static const struct {
		enum config_field field;
		int kind;
	} single[] = {{CF_IN_HEADER_FILTER, SESSION_RULE_HEADER},
	              {CF_IN_PATH_FILTER, SESSION_RULE_PATH},
	              {CF_IN_METHOD_FILTER, SESSION_RULE_METHOD}};

	memset(ret, 0, sizeof(*ret));
	/* Targetless: there is no pod port to take (listen() gets the
	 * notice instead); steal was refused by the resolver already. */
	if (targetless || !mode || strcmp(mode, "off") == 0)
		return;
	ret->mode = strcmp(mode, "steal") == 0 ? SESSION_IN_STEAL : SESSION_IN_MIRROR;
	for (size_t i = 0; i < ARRAY_SIZE(single); i++) {
		const char *pat = config_str(c, single[i].field);
		if (pat && *pat) {
			f->op = SESSION_FILTER_ALL_OF;
			f->kind[0] = single[i].kind;
			f->pattern[0] = pat;
			f->n = 1;
		}
	}
	json_t *list = config_get(c, CF_IN_ALL_OF), *rule;
	f->op = json_is_array(list) ? SESSION_FILTER_ALL_OF : f->op;
	if (!json_is_array(list)) {
		list = config_get(c, CF_IN_ANY_OF);
		if (json_is_array(list))
			f->op = SESSION_FILTER_ANY_OF;
	}
	size_t i;
	json_array_foreach(list, i, rule) filter_add(f, rule);
	ret->filter_ports = st->filter_ports =
	        port_list(c, CF_IN_FILTER_PORTS, &ret->n_filter_ports);
	ret->ignore_ports = st->ignore_ports =
	        port_list(c, CF_IN_IGNORE_PORTS, &ret->n_ignore_ports);
	ret->ports = st->ports = port_list(c, CF_IN_PORTS, &ret->n_ports);
	ret->port_mapping = st->mapping = pair_list(c, CF_IN_PORT_MAPPING, &ret->n_port_mapping);
	ret->listen_ports = st->listen = pair_list(c, CF_IN_LISTEN_PORTS, &ret->n_listen_ports);
	ret->ignore_localhost = config_bool(c, CF_IN_IGNORE_LOCALHOST);
}

/* feature.fs: the path rules, and the cache of pod files under the run
 * directory unless the mode is local. */
static int setup_fs(struct run *r, const struct config *c, const char *dir, const char *program,
                    struct fs_policy **ret_fp, struct fs_cache **ret_fc)
{
	struct fs_policy_config fc = {0};
	_cleanup_free_ const char **rw = NULL, **ro = NULL, **loc = NULL, **nf = NULL;
	_cleanup_free_ const char **mfrom = NULL, **mto = NULL;
	_cleanup_free_ char *cwd = getcwd(NULL, 0), *exe = realpath(program, NULL), *why = NULL;
	_cleanup_free_ char *cache = NULL;
	const char *tmp = getenv("TMPDIR");
	int e;

	if (fs_mode_parse(config_str(c, CF_FS_MODE), &fc.mode) < 0)
		fc.mode = FS_MODE_READ;
	fc.read_write = rw = str_list(c, CF_FS_READ_WRITE, &fc.n_read_write);
	fc.read_only = ro = str_list(c, CF_FS_READ_ONLY, &fc.n_read_only);
	fc.local = loc = str_list(c, CF_FS_LOCAL, &fc.n_local);
	fc.not_found = nf = str_list(c, CF_FS_NOT_FOUND, &fc.n_not_found);
	json_t *map = config_get(c, CF_FS_MAPPING), *to;
	const char *from;
	size_t nmap = json_is_object(map) ? json_object_size(map) : 0;
	mfrom = xcalloc(nmap + 1, sizeof(char *));
	mto = xcalloc(nmap + 1, sizeof(char *));
	/* In the file's order (jansson keeps it): the first match wins. */
	json_object_foreach(map, from, to) if (json_is_string(to) && fc.n_mapping < nmap)
	{
		mfrom[fc.n_mapping] = from;
		mto[fc.n_mapping++] = json_string_value(to);
	}
	fc.map_from = mfrom;
	fc.map_to = mto;
	fc.cwd = cwd;
	fc.exe = exe;
	fc.home = getenv("HOME");
	fc.tmpdir = tmp && *tmp == '/' ? tmp : "/tmp";
	e = fs_policy_new(&fc, ret_fp, &why);
	if (e < 0) {
		log_error("feature.fs: %s", why);
		return e;
	}
	if (fc.mode == FS_MODE_LOCAL)
		return 0;
	cache = xasprintf("%s/fs", dir);
	e = fs_cache_new(r->session, cache, ret_fc);
	if (e < 0) {
		log_error("cannot create the file cache \"%s\": %s", cache, strerror(-e));
		return e;
	}
	setup_lazy(r, *ret_fc, dir);
	if (fs_policy_remote_writes(*ret_fp)) {
		_cleanup_free_ char *conflicts = conflict_dir();
		fs_cache_set_conflicts(*ret_fc, conflicts, on_fs_conflict, NULL);
		e = session_fs_enable_write(r->session);
		if (e < 0) {
			log_error("the agent refused remote writes (feature.fs write): %s",
			          strerror(-e));
			return e;
		}
	}
	return 0;
}

/* Socket inodes the traced processes hold, for the session's UDP sweep. */
static size_t live_inodes(void *data, uint64_t **ret)
{
	struct run *r = data;
	pid_t pids[1024];
	size_t np = tracer_processes(r->tracer, pids, ARRAY_SIZE(pids)), n = 0, cap = 64;
	uint64_t *inos = xmalloc(cap * sizeof(*inos));

	for (size_t i = 0; i < np; i++) {
		char dir[64], link[64 + NAME_MAX + 1], target[64];
		DIR *d;
		struct dirent *de;

		snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pids[i]);
		d = opendir(dir);
		if (!d)
			continue;
		while ((de = readdir(d))) {
			uint64_t ino;
			ssize_t len;
			if (de->d_name[0] == '.')
				continue;
			snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
			len = readlink(link, target, sizeof(target) - 1);
			if (len < 9 || strncmp(target, "socket:[", 8) != 0)
				continue;
			target[len - 1] = 0; /* the closing bracket */
			if (parse_u64(target + 8, UINT64_MAX, &ino) < 0)
				continue;
			if (n == cap)
				inos = xrealloc(inos, (cap *= 2) * sizeof(*inos));
			inos[n++] = ino;
		}
		closedir(d);
	}
	*ret = inos;
	return n;
}

/* feature.env.env_file (--env-file, MIRRORD_OVERRIDE_ENV_VARS_FILE), read
 * before anything starts: a bad file is one line and exit 1, with nothing
 * created in the cluster. *ret gets its "K=V" entries (NULL without a
 * file). */
static int load_env_file(const struct config *c, char ***ret, size_t *ret_n)
{
	const char *path = config_str(c, CF_ENV_FILE);
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	char why[256];
	ssize_t k;
	size_t len = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!path || !*path)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		log_error("feature.env.env_file: cannot read \"%s\": %s; check the path (relative "
		          "paths are from the current directory)",
		          path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)ENV_FILE_MAX) {
		log_error("feature.env.env_file: \"%s\" is %s; give a dotenv file of at most %u "
		          "bytes",
		          path, S_ISREG(st.st_mode) ? "too large" : "not a regular file",
		          ENV_FILE_MAX);
		return -EINVAL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size &&
	       (k = read(fd, buf + len, (size_t)st.st_size - len)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			log_error("feature.env.env_file: cannot read \"%s\": %s", path,
			          strerror(e));
			return -e;
		}
		len += (size_t)k;
	}
	if (env_file_parse(buf, len, ret, ret_n, why, sizeof(why)) < 0) {
		log_error("feature.env.env_file \"%s\": %s; fix the file (KEY=VALUE lines, "
		          "# comments)",
		          path, why);
		return -EINVAL;
	}
	return 0;
}

/* The program's environment: env_merge() with the config's include /
 * exclude, the env file's entries, feature.env.mapping, feature.env.override
 * ({"K": "V"}) and feature.env.unset. mirrord's order: the remote
 * environment, then the env file, then mapping, then override; so the file's entries go first in the
 * override list (a later entry replaces an earlier one of its name). */
static char **build_env(const struct config *c, char **remote, size_t nremote, char **file,
                        size_t nfile, struct env_filter *ef)
{
	json_t *ovj = config_get(c, CF_ENV_OVERRIDE), *unj = config_get(c, CF_ENV_UNSET);
	size_t nov = json_is_object(ovj) ? json_object_size(ovj) : 0;
	size_t nun = json_is_array(unj) ? json_array_size(unj) : 0, n = 0;
	char **ovs = xcalloc(nfile + nov + 1, sizeof(char *)), **env;
	const char **uns = xcalloc(nun + 1, sizeof(char *));
	const char *key;
	json_t *val;

	/* feature.env.mapping rewrites the pod's and the file's values, not
	 * override's (checked when the config was resolved). */
	struct env_mapping *map = NULL;
	_cleanup_free_ char *why = NULL;
	if (env_mapping_new(config_get(c, CF_ENV_MAPPING), &map, &why) == 0) {
		env_mapping_apply(map, remote, nremote);
		env_mapping_apply(map, file, nfile);
		env_mapping_free(map);
	}
	for (size_t i = 0; i < nfile; i++)
		ovs[n++] = xstrdup(file[i]);
	json_object_foreach(ovj, key, val) if (n < nfile + nov && json_is_string(val)) ovs[n++] =
	        xasprintf("%s=%s", key, json_string_value(val));
	for (size_t i = 0; i < nun; i++)
		uns[i] = json_string_value(json_array_get(unj, i));
	ef->override = (const char *const *)ovs;
	ef->noverride = n;
	ef->unset = uns;
	ef->nunset = nun;
	env = env_merge(environ, remote, nremote, ef);
	for (size_t i = 0; i < n; i++)
		free(ovs[i]);
	free(ovs);
	free(uns);
	ef->override = ef->unset = NULL;
	return env;
}

static int exit_like(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		struct rlimit nocore = {0, 0};
		sigset_t set;

		/* Die the same way, so shells and CI see the signal. The
		 * program already dumped core if it was going to. */
		setrlimit(RLIMIT_CORE, &nocore);
		signal(sig, SIG_DFL);
		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		raise(sig);
		return 128 + sig;
	}
	return 1;
}

int cmd_exec(int argc, char **argv)
{
	_cleanup_(exec_options_done) struct exec_options o = {0};
	struct run r = {.sigfd = -1};
	struct k8s_run *kr = NULL;
	struct sockaddr_storage agent;
	unsigned agentlen;
	_cleanup_free_ char *program = NULL, *why = NULL, *dir = NULL;
	char **remote = NULL, **env = NULL, **envfile = NULL;
	size_t nenvfile = 0;
	size_t nremote = 0, nfiles = 0;
	struct served_file files[3];
	struct fs_policy *fsp = NULL;
	struct in_store ins = {0};
	struct fs_cache *fsc = NULL;
	int ret = 1, e;

	e = exec_parse(argc, argv, &o);
	if (e != 0)
		return e > 0 ? 0 : 2;
	log_set_level(o.log_level);
	if (o.agent_addr && parse_hostport(o.agent_addr, &agent, &agentlen) < 0) {
		log_error("--agent-addr \"%s\" is not HOST:PORT with a numeric IPv4 or [IPv6] "
		          "address and a port 1-65535",
		          o.agent_addr);
		return 2;
	}
	program = find_program(o.argv[0]);
	if (!program) {
		if (strchr(o.argv[0], '/'))
			log_error("\"%s\": no such file; check the program's path", o.argv[0]);
		else
			log_error("\"%s\": program not found in PATH; check its name or give a "
			          "path",
			          o.argv[0]);
		return 127;
	}

	if (load_env_file(o.config, &envfile, &nenvfile) < 0)
		return 1;
	if (evloop_new(&r.loop) < 0) {
		log_error("cannot create the event loop");
		goto out;
	}
	/* Signals are held from here: a Ctrl-C while the agent starts cancels
	 * the run after it (and its Job) can be cleaned up. */
	if (setup_signals(&r) < 0) {
		log_error("cannot set up signal handling");
		goto out;
	}
	if (o.agent_addr) {
		e = session_open(r.loop, (struct sockaddr *)&agent, agentlen, o.connect_timeout_ms,
		                 &r.session, &why);
	} else {
		/* No --agent-addr: the agent is started in Kubernetes. */
		struct k8s_run_opts ko = {
		        .quiet = o.quiet || o.log_level < LOG_WARN,
		        .cancelled = start_cancelled,
		        .cancel_data = &r,
		};
		e = k8s_run_start(o.config, &ko, &kr);
		if (e == -EINTR) {
			log_error("interrupted by %s while the agent started; the agent was "
			          "removed",
			          strsignal(r.stop_sig));
			ret = 128 + r.stop_sig;
			goto out;
		}
		if (e < 0)
			goto out;
		e = k8s_run_session(kr, r.loop, o.connect_timeout_ms, &r.session, &why);
	}
	if (e < 0) {
		log_error("%s", why);
		goto out;
	}
	session_on_lost(r.session, on_agent_lost, &r);
	session_set_liveness(r.session, live_inodes, &r);

	e = session_fetch_env(r.session, &remote, &nremote);
	if (e < 0) {
		log_error("cannot fetch the target's environment: %s", strerror(-e));
		goto out;
	}
	struct env_filter ef = {.include = o.env_include, .exclude = o.env_exclude};
	env = build_env(o.config, remote, nremote, envfile, nenvfile, &ef);

	e = rundir_create(&dir);
	if (e < 0) {
		log_error("cannot create the run directory: %s", strerror(-e));
		goto out;
	}
	if (serve_pod_files(&r, dir, &o, files, &nfiles) < 0)
		goto out;
	if (setup_fs(&r, o.config, dir, program, &fsp, &fsc) < 0)
		goto out;

	bool targetless = strcmp(session_agent_mode(r.session), "targetless") == 0;
	struct policy_config pc = {
	        .outgoing_tcp = o.outgoing_tcp,
	        .outgoing_udp = o.outgoing_udp,
	        .ignore_localhost = o.ignore_localhost,
	        .out_filter = o.out_filter,
	        .files = files,
	        .nfiles = nfiles,
	        .fs = fsp,
	        .fs_cache = fsc,
	        .notice = on_notice,
	        .notice_data = &r,
	        .fs_notice = on_fs_notice,
	        .incoming_why = targetless
	                                ? "targetless runs never mirror or steal incoming traffic"
	                                : "feature.network.incoming is off",
	};
	setup_incoming(o.config, targetless, &ins, &pc.incoming);
	if (!targetless && pc.incoming.mode == SESSION_IN_OFF)
		pc.notice = NULL; /* off by choice: nothing to say, nothing trapped */
	policy_new(r.session, &pc, &r.policy);
	struct tracer_trap *traps = xcalloc(policy_max_rules(), sizeof(*traps));
	struct tracer_trap *opens = xcalloc(policy_max_rules(), sizeof(*opens));
	struct tracer_deny *denies = xcalloc(policy_max_rules(), sizeof(*denies));
	size_t ntraps = policy_traps(r.policy, true, traps);
	size_t nopens = policy_traps(r.policy, false, opens);
	/* The served pod files bind-mounted in the program's own mount
	 * namespace spare a stop per open where nothing else traps opens
	 * (local mode); where that fails, they are served at open. */
	bool mount_files = nopens != ntraps;
	struct tracer_config tc = {
	        .traps = traps,
	        .ntraps = ntraps,
	        .child_setup = mount_files ? policy_mount_files : NULL,
	        .child_setup_data = r.policy,
	        .fallback_traps = opens,
	        .nfallback_traps = nopens,
	        .denies = denies,
	        .ndenies = policy_denies(r.policy, denies),
	        .on_syscall = on_syscall,
	        .syscall_name = policy_syscall_name,
	        .on_done = on_done,
	        .on_group_stop = on_group_stop,
	        .data = &r,
	        .trace = o.trace,
	        .trace_stacks = o.trace_stacks,
	};
	e = tracer_new(r.loop, &tc, &r.tracer);
	if (e < 0) {
		log_error("cannot set up the tracer: %s", strerror(-e));
		free(traps);
		free(opens);
		free(denies);
		goto out;
	}
	free(traps);
	free(opens);
	free(denies);
	if (pending_stop(&r)) {
		log_error("interrupted by %s before the program started", strsignal(r.stop_sig));
		ret = 128 + r.stop_sig;
		goto out;
	}
	pid_t pid = tracer_spawn(r.tracer, program, o.argv, env);
	if (pid < 0) {
		log_error("cannot run \"%s\": %s", program, strerror((int)-pid));
		ret = pid == -ENOENT ? 127 : 126;
		goto out;
	}
	if (mount_files) {
		struct tracer_stats ts;
		tracer_get_stats(r.tracer, &ts);
		if (ts.child_setup_err < 0)
			log_debug(
			        "pod files served at open (opens trapped): cannot bind-mount them "
			        "in a mount namespace of the program's: %s",
			        strerror(-ts.child_setup_err));
		else
			log_debug(
			        "pod files bind-mounted in the program's mount namespace: no open "
			        "trapped");
	}
	e = evloop_run(r.loop);
	if (e < 0)
		log_error("event loop failed: %s", strerror(-e));
	if (r.done) {
		ret = -1; /* decided below, after cleanup */
	}

out:
	if (r.tracer) {
		struct tracer_stats ts;
		tracer_get_stats(r.tracer, &ts);
		log_debug("ptrace stops: %llu seccomp, %llu exit, %llu signal, %llu event, "
		          "%llu injections; %llu rewrites by stub (%llu taken out at a signal); "
		          "%llu processes armed for fstat (%llu failed)",
		          (unsigned long long)ts.seccomp_stops, (unsigned long long)ts.exit_stops,
		          (unsigned long long)ts.signal_stops, (unsigned long long)ts.event_stops,
		          (unsigned long long)ts.injections, (unsigned long long)ts.stub_calls,
		          (unsigned long long)ts.stub_unwinds, (unsigned long long)ts.arms,
		          (unsigned long long)ts.arm_failures);
	}
	if (r.fuse) {
		struct fs_fuse_stats fst;
		fs_fuse_get_stats(r.fuse, &fst);
		log_debug("lazy files: %llu reads, %llu chunks fetched (%llu read ahead)",
		          (unsigned long long)fst.reads, (unsigned long long)fst.chunks,
		          (unsigned long long)fst.prefetched);
	}
	tracer_free(r.tracer);
	policy_free(r.policy);
	/* Before the session: the last write-backs go through it. */
	fs_cache_free(fsc);
	/* After the program (nothing reads the mount any more), before the
	 * session it reads through, before the run directory goes. */
	fs_fuse_free(r.fuse);
	fs_policy_free(fsp);
	/* After the last write-backs. */
	if (r.session)
		log_session_stats(r.session);
	session_free(r.session);
	in_store_free(&ins);
	/* After the session (it runs over the port-forward): the agent Job
	 * is deleted on every path. */
	k8s_run_stop(kr);
	if (dir)
		rundir_remove(dir);
	for (size_t i = 0; i < nfiles; i++)
		free((char *)files[i].local_path);
	for (size_t i = 0; remote && i < nremote; i++)
		free(remote[i]);
	free(remote);
	for (char **p = env; p && *p; p++)
		free(*p);
	free(env);
	for (size_t i = 0; i < nenvfile; i++)
		free(envfile[i]);
	free(envfile);
	if (r.sigfd >= 0)
		close(r.sigfd);
	evloop_free(r.loop);
	if (ret != -1)
		return ret;
	if (r.agent_lost) {
		/* The run did not happen as asked: never report success. */
		int code = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : 0;
		return code ? code : 1;
	}
	return exit_like(r.status);
}
