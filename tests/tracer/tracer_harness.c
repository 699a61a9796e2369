/* Test driver for the ptrace engine: runs its argv under the tracer with a
 * small test policy and exits with the program's status (or re-raises its
 * fatal signal). The probes in probe.c know this policy:
 *
 *   getppid          skip, returns 4242
 *   getpgid(pid!=0)  trapped only if the 64-bit arg is nonzero (both words);
 *                    skip, returns 5000 + low 32 bits of pid
 *   getgid           continue with exit hook; result replaced by 4343
 *   getsid           parked, settled 200 ms later from a timer: 7777
 *   openat/open      path "/mt-probe/original" rewritten to a temp file
 *                    (sc_scratch_put + sc_set_arg; register restored at exit)
 *   connect          to 10.99.0.1:9 -> -ECONNREFUSED (sockaddr read from
 *                    tracee memory); everything else runs unchanged
 *   uname            emulated: writes sysname "mirrord" (sc_write_mem)
 *   fsync            emulated: writes "dup-ok" through sc_dup_fd(fd)
 *   read on fd 100   counted (entries / exits) for the restart test
 *   clone3, io_uring_* denied with ENOSYS in the kernel
 *
 * Options: --trace, --stacks, --many-traps (70 extra traps in front),
 * --expect KEY=N (checked at the end; KEY in read100_entries,
 * read100_exits, park_destroyed, park_settled), --stats. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/evloop.h"
#include "common/log.h"
#include "common/util.h"
#include "tracer/tracer.h"

#define PROBE_PATH "/mt-probe/original"
#define PROBE_CONTENT "rewritten-ok\n"
#define MAX_EXPECT 8

extern char **environ;

static struct {
	struct evloop *l;
	struct tracer *t;
	char tmpfile[64];
	int status;
	bool stats;
	unsigned read100_entries, read100_exits, park_destroyed, park_settled;
	struct {
		char key[32];
		long want;
	} expect[MAX_EXPECT];
	unsigned nexpect;
} h;

/* ---- parking: settle 200 ms later from a timer ------------------------- */

struct park {
	struct sc_event *ev;
	int64_t timer;
};

static void park_destroy(void *p)
{
	struct park *pk = p;

	/* The thread died while parked (or the event completed): drop the
	 * timer so nothing settles a freed event. */
	if (pk->timer) {
		evloop_timer_cancel(h.l, pk->timer);
		h.park_destroyed++;
	}
	free(pk);
}

static void park_fire(struct evloop *l, void *data)
{
	struct park *pk = data;

	pk->timer = 0;
	h.park_settled++;
	sc_note(pk->ev, SC_REMOTE, "getsid(parked)");
	sc_skip(pk->ev, 7777); /* runs park_destroy: pk is gone after this */
}

/* ---- handlers ------------------------------------------------------------ */

static void getgid_exit(struct sc_event *ev)
{
	sc_set_result(ev, 4343);
}

static void rewrite_exit(struct sc_event *ev)
{
	(void)ev;
}

static void handle_path(struct sc_event *ev, unsigned arg)
{
	char path[4096];
	uint64_t addr;
	ssize_t n = sc_read_str(ev, sc_arg(ev, arg), path, sizeof(path));

	if (n < 0 || strcmp(path, PROBE_PATH) != 0) {
		sc_continue(ev);
		return;
	}
	if (sc_scratch_put(ev, h.tmpfile, strlen(h.tmpfile) + 1, &addr) < 0 ||
	    sc_set_arg(ev, arg, addr) < 0) {
		sc_skip(ev, -EIO);
		return;
	}
	if (sc_tracing(ev))
		sc_note(ev, SC_REMOTE, "openat(\"%s\" -> \"%s\")", path, h.tmpfile);
	sc_continue_exit(ev, rewrite_exit);
}

static void handle_connect(struct sc_event *ev)
{
	struct sockaddr_in sin;
	uint64_t len = sc_arg(ev, 2);

	if ((uint32_t)len < sizeof(sin) || sc_read_mem(ev, sc_arg(ev, 1), &sin, sizeof(sin)) < 0 ||
	    sin.sin_family != AF_INET || sin.sin_addr.s_addr != htonl(0x0a630001) ||
	    sin.sin_port != htons(9)) {
		sc_continue(ev);
		return;
	}
	sc_note(ev, SC_REMOTE, "connect(%d, 10.99.0.1:9)", (int)sc_arg(ev, 0));
	sc_skip(ev, -ECONNREFUSED);
}

static void handle_uname(struct sc_event *ev)
{
	struct utsname u;

	memset(&u, 0, sizeof(u));
	snprintf(u.sysname, sizeof(u.sysname), "mirrord");
	snprintf(u.release, sizeof(u.release), "6.18.0");
	snprintf(u.machine, sizeof(u.machine), "x86_64");
	if (sc_write_mem(ev, sc_arg(ev, 0), &u, sizeof(u)) < 0) {
		sc_skip(ev, -EFAULT);
		return;
	}
	sc_note(ev, SC_EMULATED, "uname()");
	sc_skip(ev, 0);
}

static void handle_fsync(struct sc_event *ev)
{
	int fd = sc_dup_fd(ev, (int)sc_arg(ev, 0));

	if (fd < 0) {
		sc_skip(ev, fd);
		return;
	}
	int r = pwrite(fd, "dup-ok", 6, 0) == 6 ? 0 : -EIO;
	close(fd);
	sc_skip(ev, r);
}

static void read100_exit(struct sc_event *ev)
{
	h.read100_exits++;
}

static void on_syscall(struct sc_event *ev, void *data)
{
	switch (sc_nr(ev)) {
	case SYS_getppid:
		sc_note(ev, SC_EMULATED, "getppid()");
		sc_skip(ev, 4242);
		return;
	case SYS_getpgid:
		sc_skip(ev, 5000 + (long)(uint32_t)sc_arg(ev, 0));
		return;
	case SYS_getgid:
		sc_continue_exit(ev, getgid_exit);
		return;
	case SYS_getsid: {
		struct park *pk = xcalloc(1, sizeof(*pk));
		pk->ev = ev;
		sc_set_state(ev, pk, park_destroy);
		pk->timer = evloop_timer(h.l, 200, park_fire, pk);
		sc_park(ev);
		return;
	}
	case SYS_openat:
		handle_path(ev, 1);
		return;
	case SYS_open:
		handle_path(ev, 0);
		return;
	case SYS_connect:
		handle_connect(ev);
		return;
	case SYS_uname:
		handle_uname(ev);
		return;
	case SYS_fsync:
		handle_fsync(ev);
		return;
	case SYS_read:
		if ((int)sc_arg(ev, 0) == 100) {
			h.read100_entries++;
			sc_note(ev, SC_LOCAL, "read(100)");
			sc_continue_exit(ev, read100_exit);
			return;
		}
		sc_continue(ev);
		return;
	default:
		sc_continue(ev);
		return;
	}
}

/* ---- end of run ----------------------------------------------------------- */

static long counter(const char *key)
{
	if (!strcmp(key, "read100_entries"))
		return h.read100_entries;
	if (!strcmp(key, "read100_exits"))
		return h.read100_exits;
	if (!strcmp(key, "park_destroyed"))
		return h.park_destroyed;
	if (!strcmp(key, "park_settled"))
		return h.park_settled;
	return -1;
}

static void on_done(int status, void *data)
{
	struct tracer_stats s;

	h.status = status;
	tracer_get_stats(h.t, &s);
	if (h.stats)
		fprintf(stderr,
		        "harness: stats seccomp=%llu exit=%llu signal=%llu event=%llu "
		        "injections=%llu\n",
		        (unsigned long long)s.seccomp_stops, (unsigned long long)s.exit_stops,
		        (unsigned long long)s.signal_stops, (unsigned long long)s.event_stops,
		        (unsigned long long)s.injections);
	fprintf(stderr,
	        "harness: read100_entries=%u read100_exits=%u park_settled=%u park_destroyed=%u\n",
	        h.read100_entries, h.read100_exits, h.park_settled, h.park_destroyed);
	evloop_quit(h.l, 0);
}

static void on_signal(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == sizeof(si))
		tracer_forward_signal(h.t, (int)si.ssi_signo);
}

static void add_expect(const char *s)
{
	const char *eq = strchr(s, '=');
	long v;

	if (!eq || (size_t)(eq - s) >= sizeof(h.expect[0].key) || h.nexpect == MAX_EXPECT ||
	    parse_int(eq + 1, 0, 1000000, &v) < 0) {
		fprintf(stderr, "harness: bad --expect '%s'\n", s);
		exit(2);
	}
	memcpy(h.expect[h.nexpect].key, s, (size_t)(eq - s));
	h.expect[h.nexpect].key[eq - s] = '\0';
	h.expect[h.nexpect++].want = v;
}

/* fds open at start (e.g. from the test runner) that the program inherits
 * legitimately; the probe ignores them when it checks for leaks. */
static void export_inherited_fds(void)
{
	char list[512] = "";
	size_t off = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	while (d && (de = readdir(d))) {
		long fd;
		if (parse_int(de->d_name, 3, INT32_MAX, &fd) < 0 || fd == dirfd(d))
			continue;
		int n = snprintf(list + off, sizeof(list) - off, "%ld,", fd);
		if (n < 0 || (size_t)n >= sizeof(list) - off)
			break;
		off += (size_t)n;
	}
	if (d)
		closedir(d);
	setenv("MT_INHERITED_FDS", list, 1);
}

int main(int argc, char **argv)
{
	struct tracer_trap traps[128];
	size_t ntraps = 0;
	static const struct tracer_deny denies[] = {
	        {435, ENOSYS}, /* clone3 */
	        {SYS_io_uring_setup, ENOSYS},
	        {SYS_io_uring_enter, ENOSYS},
	        {SYS_io_uring_register, ENOSYS},
	};
	static const int plain[] = {SYS_getppid, SYS_getgid, SYS_getsid, SYS_openat, SYS_open,
	                            SYS_connect, SYS_uname,  SYS_fsync,  SYS_read};
	struct tracer_config cfg = {0};
	bool many = false;
	int i, r;
	sigset_t fwd;

	log_init("harness", LOG_WARN);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--trace"))
			cfg.trace = true;
		else if (!strcmp(argv[i], "--stacks"))
			cfg.trace = cfg.trace_stacks = true;
		else if (!strcmp(argv[i], "--many-traps"))
			many = true;
		else if (!strcmp(argv[i], "--debug"))
			log_set_level(LOG_TRACE);
		else if (!strcmp(argv[i], "--stats"))
			h.stats = true;
		else if (!strcmp(argv[i], "--expect") && i + 1 < argc)
			add_expect(argv[++i]);
		else if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else
			break;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: tracer_harness [options] -- program [args]\n");
		return 2;
	}

	if (many) {
		/* 70 traps in front of the real ones, half of them with an
		 * argument test (8 instructions each): the program is far
		 * longer than an 8-bit jump can cross. */
		for (int nr = 300; nr < 370; nr++)
			traps[ntraps++] = (struct tracer_trap){nr, nr % 2 ? 5 : -1};
	}
	for (size_t k = 0; k < ARRAY_SIZE(plain); k++)
		traps[ntraps++] = (struct tracer_trap){plain[k], -1};
	traps[ntraps++] = (struct tracer_trap){SYS_getpgid, 0};
	cfg.traps = traps;
	cfg.ntraps = ntraps;
	cfg.denies = denies;
	cfg.ndenies = ARRAY_SIZE(denies);
	cfg.on_syscall = on_syscall;
	cfg.on_done = on_done;

	snprintf(h.tmpfile, sizeof(h.tmpfile), "/tmp/mt-harness-XXXXXX");
	int tfd = mkostemp(h.tmpfile, O_CLOEXEC);
	if (tfd < 0 || write_all(tfd, PROBE_CONTENT, strlen(PROBE_CONTENT)) < 0) {
		perror("harness: temp file");
		return 2;
	}
	close(tfd);
	export_inherited_fds();

	if ((r = evloop_new(&h.l)) < 0 || (r = tracer_new(h.l, &cfg, &h.t)) < 0) {
		fprintf(stderr, "harness: setup: %s\n", strerror(-r));
		return 2;
	}
	sigemptyset(&fwd);
	sigaddset(&fwd, SIGINT);
	sigaddset(&fwd, SIGTERM);
	sigaddset(&fwd, SIGHUP);
	sigprocmask(SIG_BLOCK, &fwd, NULL);
	int sfd = signalfd(-1, &fwd, SFD_CLOEXEC | SFD_NONBLOCK);
	evloop_add(h.l, sfd, EPOLLIN, on_signal, NULL);

	pid_t pid = tracer_spawn(h.t, argv[i], argv + i, environ);
	if (pid < 0) {
		fprintf(stderr, "harness: spawn '%s': %s\n", argv[i], strerror(-pid));
		unlink(h.tmpfile);
		return 127;
	}
	evloop_run(h.l);
	tracer_free(h.t);
	unlink(h.tmpfile);

	for (unsigned k = 0; k < h.nexpect; k++) {
		long got = counter(h.expect[k].key);
		if (got != h.expect[k].want) {
			fprintf(stderr, "harness: FAIL %s=%ld, expected %ld\n", h.expect[k].key,
			        got, h.expect[k].want);
			return 99;
		}
	}
	if (WIFSIGNALED(h.status)) {
		int sig = WTERMSIG(h.status);
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		signal(sig, SIG_DFL);
		sigprocmask(SIG_UNBLOCK, &fwd, NULL);
		raise(sig);
		return 128 + sig;
	}
	return WEXITSTATUS(h.status);
}
