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
 *                    (sc_scratch_put + sc_set_arg + sc_continue: the
 *                    engine restores the register, by stub in 1 stop on
 *                    x86-64); "/mt-probe/original-exit" the same with an
 *                    exit callback (2 stops); "/mt-probe/fifo" rewritten
 *                    to a FIFO (its real path in $MT_PROBE_FIFO)
 *   connect          to 10.99.0.1:9 -> -ECONNREFUSED (sockaddr read from
 *                    tracee memory); everything else runs unchanged
 *   uname            emulated: writes sysname "mirrord" (sc_write_mem)
 *   fsync            emulated: writes "dup-ok" through sc_dup_fd(fd)
 *   read on fd 100   counted (entries / exits) for the restart test
 *   clone3, io_uring_* denied with ENOSYS in the kernel
 *   newfstatat       with AT_EMPTY_PATH runs natively until the process is
 *                    armed; on fd 77 counted (fstat_stops); continued
 *   fstat            not trapped until the process is armed (armed_only);
 *                    then on fd 77 counted (fstat_stops); continued
 *   getresgid        arms the process (sc_arm) the first time; skip, 4444
 *                    (4445 if arming failed)
 *
 * Options: --trace, --stacks, --many-traps (70 extra traps in front),
 * --expect KEY=N or KEY>=N (checked at the end; KEY in read100_entries,
 * read100_exits, park_destroyed, park_settled, rewrites, fifo_entries,
 * stub_calls, stub_unwinds, exit_stops, fstat_stops, arms, arm_failures),
 * --stats, --no-stub (the engine
 * never uses the stub), --one-stop (every rewrite continued without an
 * exit callback ran through the stub, and no exit stop was taken but the
 * scratch injections' and the exit callbacks'), --two-stop (no stub). */
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
#define PROBE_PATH_EXIT "/mt-probe/original-exit"
#define PROBE_FIFO "/mt-probe/fifo"
#define PROBE_CONTENT "rewritten-ok\n"
#define MAX_EXPECT 8

extern char **environ;

static struct {
	struct evloop *l;
	struct tracer *t;
	char tmpfile[64];
	char fifodir[64], fifo[96];
	int status;
	bool stats, one_stop, two_stop;
	unsigned read100_entries, read100_exits, park_destroyed, park_settled;
	/* rewrites: continued without an exit callback; exit_hooks: events
	 * continued with one (each takes an exit stop) */
	unsigned rewrites, fifo_entries, exit_hooks;
	unsigned fstat_stops; /* newfstatat with AT_EMPTY_PATH that stopped */
	struct tracer_stats st;
	struct {
		char key[32];
		long want;
		bool at_least;
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

static void continue_exit(struct sc_event *ev, sc_exit_fn fn)
{
	h.exit_hooks++;
	sc_continue_exit(ev, fn);
}

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
	const char *to = NULL;
	bool with_exit = false;

	if (n >= 0 && strcmp(path, PROBE_PATH) == 0) {
		to = h.tmpfile;
	} else if (n >= 0 && strcmp(path, PROBE_PATH_EXIT) == 0) {
		to = h.tmpfile;
		with_exit = true;
	} else if (n >= 0 && strcmp(path, PROBE_FIFO) == 0) {
		to = h.fifo;
		h.fifo_entries++;
	}
	if (!to) {
		sc_continue(ev);
		return;
	}
	if (sc_scratch_put(ev, to, strlen(to) + 1, &addr) < 0 || sc_set_arg(ev, arg, addr) < 0) {
		sc_skip(ev, -EIO);
		return;
	}
	if (sc_tracing(ev))
		sc_note(ev, SC_REMOTE, "openat(\"%s\" -> \"%s\")", path, to);
	if (with_exit) {
		continue_exit(ev, rewrite_exit);
		return;
	}
	/* As syscalls/fs.c does: the engine restores the register. */
	h.rewrites++;
	sc_continue(ev);
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
		continue_exit(ev, getgid_exit);
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
	case SYS_newfstatat:
		if (((int)sc_arg(ev, 3) & AT_EMPTY_PATH) && (int)sc_arg(ev, 0) == 77)
			h.fstat_stops++;
		sc_continue(ev);
		return;
	case SYS_fstat:
		if ((int)sc_arg(ev, 0) == 77)
			h.fstat_stops++;
		sc_continue(ev);
		return;
	case SYS_getresgid:
		if (!sc_armed(ev) && sc_arm(ev) == 0)
			return; /* runs again, armed */
		sc_skip(ev, sc_armed(ev) ? 4444 : 4445);
		return;
	case SYS_read:
		if ((int)sc_arg(ev, 0) == 100) {
			h.read100_entries++;
			sc_note(ev, SC_LOCAL, "read(100)");
			continue_exit(ev, read100_exit);
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
	static const struct {
		const char *key;
		const unsigned *hv;
		const uint64_t *sv;
	} keys[] = {
	        {"read100_entries", &h.read100_entries, NULL},
	        {"read100_exits", &h.read100_exits, NULL},
	        {"park_destroyed", &h.park_destroyed, NULL},
	        {"park_settled", &h.park_settled, NULL},
	        {"rewrites", &h.rewrites, NULL},
	        {"fifo_entries", &h.fifo_entries, NULL},
	        {"stub_calls", NULL, &h.st.stub_calls},
	        {"stub_unwinds", NULL, &h.st.stub_unwinds},
	        {"exit_stops", NULL, &h.st.exit_stops},
	        {"fstat_stops", &h.fstat_stops, NULL},
	        {"arms", NULL, &h.st.arms},
	        {"arm_failures", NULL, &h.st.arm_failures},
	};

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (!strcmp(key, keys[i].key))
			return keys[i].hv ? (long)*keys[i].hv : (long)*keys[i].sv;
	return -1;
}

/* --one-stop / --two-stop: how the rewrites went, from the engine's
 * counters. Exit stops other than the rewrites' come from the scratch
 * injections (one per address space) and the exit callbacks. */
static int check_stops(void)
{
	const struct tracer_stats *s = &h.st;
	uint64_t other_exits = s->injections + h.exit_hooks;

	fprintf(stderr,
	        "harness: rewrites=%u stub_calls=%llu exit_stops=%llu (injections %llu, exit "
	        "callbacks %u) seccomp_stops=%llu\n",
	        h.rewrites, (unsigned long long)s->stub_calls, (unsigned long long)s->exit_stops,
	        (unsigned long long)s->injections, h.exit_hooks,
	        (unsigned long long)s->seccomp_stops);
	if (h.one_stop) {
		if (h.rewrites == 0 || s->stub_calls != h.rewrites ||
		    s->exit_stops != other_exits) {
			fprintf(stderr, "harness: FAIL not every rewrite took 1 stop\n");
			return 99;
		}
		fprintf(stderr, "harness: 1 stop per rewrite (%u rewrites, no exit stop)\n",
		        h.rewrites);
	}
	if (h.two_stop) {
		if (h.rewrites == 0 || s->stub_calls != 0 ||
		    s->exit_stops != other_exits + h.rewrites) {
			fprintf(stderr, "harness: FAIL rewrites did not take 2 stops\n");
			return 99;
		}
		fprintf(stderr, "harness: 2 stops per rewrite (%u rewrites)\n", h.rewrites);
	}
	return 0;
}

static void on_done(int status, void *data)
{
	struct tracer_stats s;

	h.status = status;
	tracer_get_stats(h.t, &s);
	h.st = s;
	if (h.stats)
		fprintf(stderr,
		        "harness: stats seccomp=%llu exit=%llu signal=%llu event=%llu "
		        "injections=%llu stub=%llu unwinds=%llu\n",
		        (unsigned long long)s.seccomp_stops, (unsigned long long)s.exit_stops,
		        (unsigned long long)s.signal_stops, (unsigned long long)s.event_stops,
		        (unsigned long long)s.injections, (unsigned long long)s.stub_calls,
		        (unsigned long long)s.stub_unwinds);
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

/* KEY=N (exactly) or KEY>=N (at least). */
static void add_expect(const char *s)
{
	const char *eq = strchr(s, '=');
	bool at_least = eq && eq > s && eq[-1] == '>';
	size_t klen = eq ? (size_t)(eq - s) - at_least : 0;
	long v;

	if (!eq || klen == 0 || klen >= sizeof(h.expect[0].key) || h.nexpect == MAX_EXPECT ||
	    parse_int(eq + 1, 0, 1000000, &v) < 0) {
		fprintf(stderr, "harness: bad --expect '%s'\n", s);
		exit(2);
	}
	memcpy(h.expect[h.nexpect].key, s, klen);
	h.expect[h.nexpect].key[klen] = '\0';
	h.expect[h.nexpect].at_least = at_least;
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
		else if (!strcmp(argv[i], "--no-stub"))
			cfg.no_stub = true;
		else if (!strcmp(argv[i], "--one-stop"))
			h.one_stop = true;
		else if (!strcmp(argv[i], "--two-stop"))
			h.two_stop = true;
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
		 * argument test (8 instructions each), a third with the stub
		 * test: the program is far longer than an 8-bit jump can
		 * cross. */
		for (int nr = 300; nr < 370; nr++)
			traps[ntraps++] = (struct tracer_trap){
			        .nr = nr, .arg_nonzero = nr % 2 ? 5 : -1, .stub = nr % 3 == 0};
	}
	for (size_t k = 0; k < ARRAY_SIZE(plain); k++)
		traps[ntraps++] = (struct tracer_trap){.nr = plain[k],
		                                       .arg_nonzero = -1,
		                                       .stub = plain[k] == SYS_openat ||
		                                               plain[k] == SYS_open};
	traps[ntraps++] = (struct tracer_trap){.nr = SYS_getpgid, .arg_nonzero = 0, .stub = false};
	traps[ntraps++] = (struct tracer_trap){.nr = SYS_getresgid, .arg_nonzero = -1};
	traps[ntraps++] = (struct tracer_trap){.nr = SYS_newfstatat,
	                                       .arg_nonzero = -1,
	                                       .allow_arg = 3,
	                                       .allow_bits = AT_EMPTY_PATH};
	traps[ntraps++] =
	        (struct tracer_trap){.nr = SYS_fstat, .arg_nonzero = -1, .armed_only = true};
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
	snprintf(h.fifodir, sizeof(h.fifodir), "/tmp/mt-harness-fifo-XXXXXX");
	if (!mkdtemp(h.fifodir)) {
		perror("harness: fifo dir");
		return 2;
	}
	snprintf(h.fifo, sizeof(h.fifo), "%s/fifo", h.fifodir);
	if (mkfifo(h.fifo, 0600) < 0) {
		perror("harness: mkfifo");
		return 2;
	}
	setenv("MT_PROBE_FIFO", h.fifo, 1);
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
		unlink(h.fifo);
		rmdir(h.fifodir);
		return 127;
	}
	evloop_run(h.l);
	tracer_free(h.t);
	unlink(h.tmpfile);
	unlink(h.fifo);
	rmdir(h.fifodir);
	if ((r = check_stops()) != 0)
		return r;

	for (unsigned k = 0; k < h.nexpect; k++) {
		long got = counter(h.expect[k].key);
		if (got < 0 ||
		    (h.expect[k].at_least ? got < h.expect[k].want : got != h.expect[k].want)) {
			fprintf(stderr, "harness: FAIL %s=%ld, expected %s%ld\n", h.expect[k].key,
			        got, h.expect[k].at_least ? ">=" : "", h.expect[k].want);
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
