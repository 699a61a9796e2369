/* Syscall probe run under tracer_harness (see its policy). Each mode makes
 * raw syscalls, prints what it observes, one line each, and exits 0 only if
 * everything matched. Built dynamic and -static. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROBE_PATH "/mt-probe/original"
#define PROBE_FIFO "/mt-probe/fifo"
#define PROBE_CONTENT "rewritten-ok\n"

static int failures;
static const char *self_exe = "/proc/self/exe";

#define CHECK(cond, ...)                                            \
	do {                                                        \
		if (!(cond)) {                                      \
			printf("FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__);                        \
			printf("\n");                               \
			failures++;                                 \
		}                                                   \
	} while (0)

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A raw syscall that also returns the argument registers as they are after
 * the syscall instruction: the kernel preserves all but rax/rcx/r11, so a
 * tracer that rewrote one must have restored it. rcx must hold the address
 * after the syscall instruction, as the kernel leaves it. */
struct regs_after {
	uint64_t a[6];
	uint64_t rcx, site;
};

static long raw_syscall(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                        uint64_t a5, struct regs_after *after)
{
	register uint64_t r10 __asm__("r10") = a3;
	register uint64_t r8 __asm__("r8") = a4;
	register uint64_t r9 __asm__("r9") = a5;
	uint64_t rcx, site;
	long ret = nr;

	__asm__ volatile("syscall\n1:\n\tlea 1b(%%rip), %[site]"
	                 : "+a"(ret), "+D"(a0), "+S"(a1), "+d"(a2), "+r"(r10), "+r"(r8), "+r"(r9),
	                   "=c"(rcx), [site] "=r"(site)
	                 :
	                 : "r11", "memory");
	if (after) {
		after->a[0] = a0;
		after->a[1] = a1;
		after->a[2] = a2;
		after->a[3] = r10;
		after->a[4] = r8;
		after->a[5] = r9;
		after->rcx = rcx;
		after->site = site;
	}
	return ret;
}

static long raw0(long nr)
{
	return raw_syscall(nr, 0, 0, 0, 0, 0, 0, NULL);
}

static long int80(long nr)
{
	long ret = nr;
	/* i386 entry from 64-bit code; r8-r11 are not preserved by it. */
	__asm__ volatile("int $0x80" : "+a"(ret) : : "r8", "r9", "r10", "r11", "memory");
	return ret;
}

/* Open path (rewritten by the policy to a file with PROBE_CONTENT) with a
 * raw openat, or the legacy open when legacy is set (musl's choice). Checks
 * that every argument register came back unchanged, rcx as the kernel
 * leaves it, and the content. Returns 0 or a description of the problem;
 * prints nothing, so it is safe in a signal handler. */
static const char *try_rewrite(const char *path, int legacy)
{
	struct regs_after after;
	char buf[64];
	long fd, n;

	if (legacy)
		fd = raw_syscall(SYS_open, (uint64_t)(uintptr_t)path, O_RDONLY, 0x4321, 0x1234, 77,
		                 0x5555, &after);
	else
		fd = raw_syscall(SYS_openat, (uint64_t)AT_FDCWD, (uint64_t)(uintptr_t)path,
		                 O_RDONLY, 0x1234, 77, 0x5555, &after);
	if (fd < 0)
		return "open failed";
	n = raw_syscall(SYS_pread64, (uint64_t)fd, (uint64_t)(uintptr_t)buf, sizeof(buf) - 1, 0, 0,
	                0, NULL);
	raw_syscall(SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, NULL);
	if (legacy ? after.a[0] != (uint64_t)(uintptr_t)path || after.a[1] != O_RDONLY ||
	                     after.a[2] != 0x4321
	           : after.a[1] != (uint64_t)(uintptr_t)path || after.a[0] != (uint64_t)AT_FDCWD ||
	                     after.a[2] != O_RDONLY)
		return "path/argument registers not restored";
	if (after.a[3] != 0x1234 || after.a[4] != 77 || after.a[5] != 0x5555)
		return "other argument registers changed";
	if (after.rcx != after.site)
		return "rcx is not the address after the syscall instruction";
	if (n != (long)strlen(PROBE_CONTENT) || memcmp(buf, PROBE_CONTENT, (size_t)n) != 0)
		return "wrong content";
	return NULL;
}

/* Open PROBE_PATH (rewritten by the policy) with a raw openat, check that
 * the path register came back unchanged, and that the content is ours. */
static void check_rewrite(const char *path, const char *what)
{
	struct regs_after after;
	char buf[64] = "";
	long fd = raw_syscall(SYS_openat, (uint64_t)AT_FDCWD, (uint64_t)(uintptr_t)path, O_RDONLY,
	                      0x1234, 0, 0, &after);

	CHECK(fd >= 0, "%s: openat -> %ld", what, fd);
	CHECK(after.a[1] == (uint64_t)(uintptr_t)path, "%s: rsi not restored: %#lx vs %p", what,
	      (unsigned long)after.a[1], (const void *)path);
	CHECK(after.a[0] == (uint64_t)AT_FDCWD && after.a[2] == O_RDONLY && after.a[3] == 0x1234,
	      "%s: argument registers changed", what);
	CHECK(after.rcx == after.site, "%s: rcx %#lx, want %#lx", what, (unsigned long)after.rcx,
	      (unsigned long)after.site);
	if (fd >= 0) {
		ssize_t n = read((int)fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		close((int)fd);
	}
	CHECK(strcmp(buf, PROBE_CONTENT) == 0, "%s: content '%s'", what, buf);
	printf("%s: openat(\"%s\") rewritten, content %s", what, PROBE_PATH, buf);
}

/* ---- modes ---------------------------------------------------------------- */

static int fd_inherited(int fd)
{
	const char *list = getenv("MT_INHERITED_FDS");
	char needle[16];

	if (!list)
		return 0;
	snprintf(needle, sizeof(needle), "%d,", fd);
	for (const char *p = list; (p = strstr(p, needle)); p++)
		if (p == list || p[-1] == ',')
			return 1;
	return 0;
}

static void check_clean_start(void)
{
	sigset_t mask;
	struct sigaction sa;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int leaked = 0;

	while (d && (de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (de->d_name[0] == '.' || fd <= 2 || fd == dirfd(d) || fd_inherited(fd))
			continue;
		printf("leaked fd %d\n", fd);
		leaked++;
	}
	if (d)
		closedir(d);
	CHECK(leaked == 0, "%d supervisor fds leaked", leaked);
	printf("leaked fds: %d\n", leaked);
	sigprocmask(SIG_SETMASK, NULL, &mask);
	CHECK(!sigismember(&mask, SIGCHLD) && !sigismember(&mask, SIGINT), "signal mask not empty");
	sigaction(SIGINT, NULL, &sa);
	CHECK(sa.sa_handler == SIG_DFL, "SIGINT disposition not default");
	printf("signal mask: empty, dispositions: default\n");
}

static int mode_basic(void)
{
	struct utsname u;

	check_clean_start();
	/* untrapped */
	CHECK(raw0(SYS_getpid) == getpid(), "getpid");
	CHECK(raw0(SYS_gettid) == getpid(), "gettid");
	CHECK(write(-1, "", 0) == -1 && errno == EBADF, "write(-1)");
	printf("untrapped: getpid=%ld ok\n", raw0(SYS_getpid));
	/* skip */
	long ppid = raw0(SYS_getppid);
	CHECK(ppid == 4242, "getppid=%ld", ppid);
	printf("getppid=%ld\n", ppid);
	/* arg_nonzero filter on both words, and the full 64-bit arg */
	long g0 = raw_syscall(SYS_getpgid, 0, 0, 0, 0, 0, 0, NULL);
	long ghi = raw_syscall(SYS_getpgid, 0xdeadbeef00000000ull, 0, 0, 0, 0, 0, NULL);
	long glo = raw_syscall(SYS_getpgid, 0xdeadbeef00000007ull, 0, 0, 0, 0, 0, NULL);
	CHECK(g0 == getpgrp(), "getpgid(0)=%ld (untrapped)", g0);
	CHECK(ghi == 5000, "getpgid(hi garbage, lo 0)=%ld", ghi);
	CHECK(glo == 5007, "getpgid(hi garbage, lo 7)=%ld", glo);
	printf("getpgid: 0 -> native, 0xdeadbeef00000000 -> %ld, 0xdeadbeef00000007 -> %ld\n", ghi,
	       glo);
	/* exit hook replacing the result */
	long gid = raw0(SYS_getgid);
	CHECK(gid == 4343, "getgid=%ld", gid);
	printf("getgid=%ld\n", gid);
	/* memory write */
	CHECK(uname(&u) == 0 && strcmp(u.sysname, "mirrord") == 0, "uname sysname '%s'", u.sysname);
	printf("uname.sysname=%s\n", u.sysname);
	/* denials in the kernel */
	long c3 = raw_syscall(435, 0, 0, 0, 0, 0, 0, NULL);
	long iu = raw_syscall(SYS_io_uring_setup, 1, 0, 0, 0, 0, 0, NULL);
	long i80 = int80(20); /* i386 getpid */
	CHECK(c3 == -ENOSYS, "clone3=%ld", c3);
	CHECK(iu == -ENOSYS, "io_uring_setup=%ld", iu);
	CHECK(i80 == -ENOSYS, "int 0x80 getpid=%ld", i80);
	printf("clone3=%ld io_uring_setup=%ld int80_getpid=%ld\n", c3, iu, i80);
	/* CLONE_UNTRACED is stripped: the child is traced (getppid = 4242) */
	long child = raw_syscall(SYS_clone, CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0, 0, NULL);
	if (child == 0)
		raw_syscall(SYS_exit_group, raw0(SYS_getppid) == 4242 ? 0 : 1, 0, 0, 0, 0, 0, NULL);
	int st = -1;
	CHECK(child > 0 && waitpid((pid_t)child, &st, 0) == child && WIFEXITED(st) &&
	              WEXITSTATUS(st) == 0,
	      "CLONE_UNTRACED child status %#x", st);
	printf("clone(CLONE_UNTRACED) child traced: %s\n", st == 0 ? "yes" : "no");
	return failures ? 1 : 0;
}

static int mode_rewrite(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	               -1, 0);

	check_rewrite(PROBE_PATH, "plain");
	/* The path's NUL is the last byte before a PROT_NONE page. */
	mprotect(m + pg, (size_t)pg, PROT_NONE);
	char *p = m + pg - sizeof(PROBE_PATH);
	memcpy(p, PROBE_PATH, sizeof(PROBE_PATH));
	check_rewrite(p, "guard-page");
	/* A pointer into the guard page: the policy lets the kernel fail. */
	long r = raw_syscall(SYS_openat, (uint64_t)AT_FDCWD, (uint64_t)(uintptr_t)(m + pg),
	                     O_RDONLY, 0, 0, 0, NULL);
	CHECK(r == -EFAULT, "openat(bad pointer)=%ld", r);
	printf("openat(guard page pointer)=%ld\n", r);
	/* A sockaddr ending right at the guard page. */
	struct sockaddr_in sin = {
	        .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(0x0a630001)};
	struct sockaddr_in *sp = (struct sockaddr_in *)(m + pg - sizeof(sin));
	memcpy(sp, &sin, sizeof(sin));
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	r = raw_syscall(SYS_connect, (uint64_t)s, (uint64_t)(uintptr_t)sp, sizeof(sin), 0, 0, 0,
	                NULL);
	CHECK(r == -ECONNREFUSED, "connect(10.99.0.1:9)=%ld", r);
	printf("connect(10.99.0.1:9, sockaddr before guard page)=%ld\n", r);
	close(s);
	/* sc_dup_fd: the policy writes through its duplicate. */
	char tmpl[] = "/tmp/mt-probe-XXXXXX";
	int fd = mkstemp(tmpl);
	char buf[16] = "";
	unlink(tmpl);
	CHECK(fsync(fd) == 0, "fsync");
	CHECK(pread(fd, buf, sizeof(buf) - 1, 0) == 6 && strcmp(buf, "dup-ok") == 0,
	      "dup content '%s'", buf);
	printf("fsync via dup: %s\n", buf);
	close(fd);
	return failures ? 1 : 0;
}

/* N rewritten opens, openat and the legacy open in turn; one with an exit
 * callback (2 stops) in the middle. */
static int mode_opens(long n)
{
	long bad = 0;
	const char *why = NULL;

	for (long i = 0; i < n; i++) {
		const char *w = try_rewrite(PROBE_PATH, (int)(i & 1));
		if (w) {
			why = w;
			bad++;
		}
		if (i == n / 2) {
			w = try_rewrite("/mt-probe/original-exit", 0);
			if (w) {
				why = w;
				bad++;
			}
		}
	}
	CHECK(bad == 0, "%ld of %ld rewritten opens wrong (%s)", bad, n, why);
	printf("opens: %ld rewritten opens (openat and open), registers and content right\n", n);
	return failures ? 1 : 0;
}

/* The program owns the engine's fixed address before the first trapped
 * syscall (static builds only: ld.so traps earlier): the engine must leave
 * the mapping alone and rewrite in 2 stops with scratch elsewhere. */
static int mode_squat(void)
{
	void *want = (void *)(uintptr_t)0x6d7400000000ull;
	char *m = mmap(want, 4096, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (m != want) {
		printf("squat: cannot map %p (%s): the engine was first\n", want, strerror(errno));
		return 2;
	}
	strcpy(m, "program's own page");
	mode_opens(100);
	CHECK(strcmp(m, "program's own page") == 0, "the program's mapping was replaced");
	printf("squat: the program's mapping at %p is intact\n", want);
	return failures ? 1 : 0;
}

/* Threads rewriting concurrently: every thread needs its own stub slot. */
struct mt_arg {
	long n;
	long bad;
	const char *why;
};

static void *mt_thread(void *p)
{
	struct mt_arg *a = p;

	for (long i = 0; i < a->n; i++) {
		const char *w = try_rewrite(PROBE_PATH, (int)(i % 3 == 0));
		if (w) {
			a->why = w;
			a->bad++;
		}
	}
	return NULL;
}

static int mode_mt(int nthreads, long n)
{
	pthread_t th[64];
	struct mt_arg args[64];
	long bad = 0;
	const char *why = NULL;

	if (nthreads > 64)
		nthreads = 64;
	for (int i = 0; i < nthreads; i++) {
		args[i] = (struct mt_arg){.n = n};
		pthread_create(&th[i], NULL, mt_thread, &args[i]);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		bad += args[i].bad;
		if (args[i].why)
			why = args[i].why;
	}
	CHECK(bad == 0, "%ld of %ld rewritten opens wrong (%s)", bad, n * nthreads, why);
	printf("mt: %d threads x %ld rewritten opens, all right\n", nthreads, n);
	return failures ? 1 : 0;
}

/* A rewritten open that blocks (on a FIFO with no writer yet) while
 * SIGALRMs interrupt it; a child writes after 300 ms. restart: SA_RESTART
 * (the kernel restarts the open; the policy must see it once); nested: the
 * handler makes rewritten opens itself; eintr: no SA_RESTART, the first
 * open fails with EINTR and the registers are the program's. */
static volatile int alarms, nested_bad, nested_ok;

static void on_alarm_nested(int sig)
{
	(void)sig;
	alarms++;
	if (try_rewrite(PROBE_PATH, alarms & 1))
		nested_bad++;
	else
		nested_ok++;
}

static void on_alarm(int sig);

static int mode_fifo(const char *how)
{
	const char *real = getenv("MT_PROBE_FIFO");
	int eintr = !strcmp(how, "eintr"), nested = !strcmp(how, "nested");
	struct sigaction sa = {.sa_handler = nested ? on_alarm_nested : on_alarm,
	                       .sa_flags = eintr ? 0 : SA_RESTART};
	struct itimerval it = {{0, eintr ? 0 : 20000}, {0, eintr ? 100000 : 20000}};
	struct itimerval off = {{0, 0}, {0, 0}};
	struct regs_after after;
	char c = 0;
	long fd;

	if (!real)
		return 2;
	pid_t w = fork();
	if (w == 0) {
		usleep(300000);
		int wfd = open(real, O_WRONLY | O_CLOEXEC);
		(void)!write(wfd, "x", 1);
		_exit(0);
	}
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	fd = raw_syscall(SYS_openat, (uint64_t)AT_FDCWD, (uint64_t)(uintptr_t)PROBE_FIFO, O_RDONLY,
	                 0x1234, 77, 0x5555, &after);
	if (eintr) {
		CHECK(fd == -EINTR, "first open of the FIFO: %ld, want -EINTR", fd);
		CHECK(after.a[1] == (uint64_t)(uintptr_t)PROBE_FIFO &&
		              after.a[0] == (uint64_t)AT_FDCWD && after.a[2] == O_RDONLY &&
		              after.a[3] == 0x1234 && after.a[4] == 77 && after.a[5] == 0x5555 &&
		              after.rcx == after.site,
		      "registers after EINTR not the program's");
		printf("fifo-eintr: open -> %s, registers the program's\n",
		       fd == -EINTR ? "EINTR" : "?");
		/* Not the same call again (other flags): a retry with the same
		 * site, stack and arguments is taken for the interrupted call
		 * and given its decision without asking the policy. */
		fd = raw_syscall(SYS_openat, (uint64_t)AT_FDCWD, (uint64_t)(uintptr_t)PROBE_FIFO,
		                 O_RDONLY | O_CLOEXEC, 0x1234, 77, 0x5555, &after);
	}
	setitimer(ITIMER_REAL, &off, NULL);
	CHECK(fd >= 0, "open of the FIFO: %ld", fd);
	CHECK(after.a[1] == (uint64_t)(uintptr_t)PROBE_FIFO && after.a[0] == (uint64_t)AT_FDCWD &&
	              after.a[2] == (uint64_t)(eintr ? O_RDONLY | O_CLOEXEC : O_RDONLY) &&
	              after.a[3] == 0x1234 && after.a[4] == 77 && after.a[5] == 0x5555,
	      "argument registers not restored after the interrupted open");
	CHECK(after.rcx == after.site, "rcx %#lx, want %#lx", (unsigned long)after.rcx,
	      (unsigned long)after.site);
	if (fd >= 0) {
		CHECK(read((int)fd, &c, 1) == 1 && c == 'x', "read from the FIFO: '%c'", c);
		close((int)fd);
	}
	waitpid(w, NULL, 0);
	if (!eintr)
		CHECK(alarms >= 3, "only %d alarms", alarms);
	if (nested)
		CHECK(nested_bad == 0 && nested_ok == alarms,
		      "rewrites in the signal handler: %d wrong of %d", nested_bad, alarms);
	printf("fifo-%s: blocking rewritten open %s after %s SIGALRMs, registers restored%s\n", how,
	       fd >= 0 ? "succeeded" : "failed", alarms >= 3 || eintr ? "several" : "too few",
	       nested ? ", handler's own rewrites right" : "");
	return failures ? 1 : 0;
}

/* Park: one thread waits 200 ms in a parked getsid while another keeps
 * making trapped syscalls. */
static volatile int park_done;

static void *park_thread(void *arg)
{
	uint64_t t0 = now_ms();
	long r = raw0(SYS_getsid);
	*(uint64_t *)arg = now_ms() - t0;
	park_done = 1;
	return (void *)r;
}

static int mode_park(void)
{
	pthread_t th;
	uint64_t waited = 0;
	void *res;
	long calls = 0;

	pthread_create(&th, NULL, park_thread, &waited);
	usleep(20000);
	while (!park_done) {
		CHECK(raw0(SYS_getppid) == 4242, "getppid in other thread");
		calls++;
		usleep(1000);
	}
	pthread_join(th, &res);
	CHECK((long)res == 7777, "parked getsid=%ld", (long)res);
	CHECK(waited >= 150, "parked only %lu ms", (unsigned long)waited);
	CHECK(calls >= 10, "other thread made only %ld calls while parked", calls);
	printf("park: getsid=%ld after %lu ms; other thread meanwhile: %s\n", (long)res,
	       (unsigned long)waited, calls >= 10 ? "kept running" : "blocked");
	return failures ? 1 : 0;
}

/* Restart: a trapped read on a pipe is interrupted by SA_RESTART SIGALRMs
 * and restarted by the kernel; the policy must see it once. */
static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static int mode_restart(void)
{
	int p[2];
	struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
	struct itimerval it = {{0, 20000}, {0, 20000}};
	char c = 0;

	if (pipe(p) < 0 || dup2(p[0], 100) < 0)
		return 2;
	pid_t w = fork();
	if (w == 0) {
		usleep(250000);
		(void)!write(p[1], "x", 1);
		_exit(0);
	}
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	long r = raw_syscall(SYS_read, 100, (uint64_t)(uintptr_t)&c, 1, 0, 0, 0, NULL);
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	waitpid(w, NULL, 0);
	CHECK(r == 1 && c == 'x', "read=%ld", r);
	CHECK(alarms >= 3, "only %d alarms", alarms);
	printf("restart: read=%ld after %s SIGALRMs\n", r, alarms >= 3 ? "several" : "too few");
	return failures ? 1 : 0;
}

/* Exec from a non-leader thread while the leader is parked in getsid. */
static void *exec_thread(void *arg)
{
	char pidbuf[32];
	usleep(50000);
	snprintf(pidbuf, sizeof(pidbuf), "%d", getpid());
	char a0[] = "probe", a1[] = "after-exec";
	char *av[] = {a0, a1, pidbuf, NULL};
	execv(self_exe, av);
	return arg;
}

static int mode_exec_thread(void)
{
	pthread_t th;

	pthread_create(&th, NULL, exec_thread, NULL);
	raw0(SYS_getsid); /* parked; this thread vanishes in the exec */
	printf("FAIL: leader returned from getsid\n");
	return 1;
}

static int mode_after_exec(const char *oldpid)
{
	long want = strtol(oldpid, NULL, 10);

	CHECK(getpid() == want, "pid changed across exec: %d vs %ld", getpid(), want);
	CHECK(raw0(SYS_gettid) == getpid(), "exec'd thread is not the leader");
	CHECK(raw0(SYS_getppid) == 4242, "getppid after exec");
	check_rewrite(PROBE_PATH, "after-exec");
	printf("after-exec: same pid, traced, scratch re-injected\n");
	return failures ? 1 : 0;
}

/* Rewrites from several threads, then exec (the old address space and its
 * stubs are gone) and rewrites again in the new image. */
static int mode_exec_rewrite(void)
{
	char pidbuf[32];
	char a0[] = "probe", a1[] = "after-exec";
	char *av[] = {a0, a1, pidbuf, NULL};

	if (mode_mt(4, 200))
		return 1;
	snprintf(pidbuf, sizeof(pidbuf), "%d", getpid());
	execv(self_exe, av);
	return 1;
}

/* exit_group while another thread is parked: the parked event dies with
 * its thread and the policy's destructor runs. */
static void *park_forever(void *arg)
{
	raw0(SYS_getsid);
	return arg;
}

static int mode_park_exit(void)
{
	pthread_t th;

	pthread_create(&th, NULL, park_forever, NULL);
	usleep(50000);
	printf("park-exit: exiting with a parked thread\n");
	exit(6);
}

/* fork + vfork + threads + exec chain. */
static void *spin_thread(void *arg)
{
	for (int i = 0; i < 50; i++)
		if (raw0(SYS_getppid) != 4242)
			return (void *)1;
	return arg;
}

static int run_threads(int n)
{
	pthread_t th[8];
	int bad = 0;

	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, spin_thread, NULL);
	for (int i = 0; i < n; i++) {
		void *r;
		pthread_join(th[i], &r);
		bad += r != NULL;
	}
	return bad;
}

static int mode_chain(void)
{
	CHECK(run_threads(4) == 0, "threads in parent");
	check_rewrite(PROBE_PATH, "chain-parent");
	pid_t c = fork();
	if (c == 0) {
		if (run_threads(3) || try_rewrite(PROBE_PATH, 0) || try_rewrite(PROBE_PATH, 1))
			_exit(20);
		/* vfork child: shares our mm (and scratch region) until exec. */
		pid_t v = vfork();
		if (v == 0) {
			if (try_rewrite(PROBE_PATH, 0) || raw0(SYS_getppid) != 4242)
				_exit(21);
			static char a0[] = "probe", a1[] = "leaf";
			char *av[] = {a0, a1, NULL};
			execv(self_exe, av);
			_exit(22);
		}
		int st;
		waitpid(v, &st, 0);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) + 10 : 23);
	}
	int st = 0;
	waitpid(c, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 13, "chain status %#x", st);
	printf("chain: threads, fork, vfork, exec -> leaf status %d\n",
	       WIFEXITED(st) ? WEXITSTATUS(st) - 10 : -1);
	return failures ? 1 : 0;
}

static int mode_leaf(void)
{
	if (run_threads(2) || raw0(SYS_getppid) != 4242)
		return 30;
	check_rewrite(PROBE_PATH, "leaf");
	return failures ? 31 : 3;
}

/* Job control: tick into a file every 20 ms for up to 20 s. */
static int mode_sleeper(const char *pidfile)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", pidfile);
	f = fopen(tmp, "w");
	if (!f)
		return 2;
	fprintf(f, "%d\n", getpid());
	fclose(f);
	rename(tmp, pidfile);
	char tick[4096];
	snprintf(tick, sizeof(tick), "%s.tick", pidfile);
	snprintf(tmp, sizeof(tmp), "%s.tick.tmp", pidfile);
	for (int i = 0; i < 1000; i++) {
		f = fopen(tmp, "w");
		if (f) {
			fprintf(f, "%d\n", i);
			fclose(f);
			rename(tmp, tick); /* readers never see a half-written file */
		}
		usleep(20000);
	}
	return 0;
}

/* Daemon: the program exits at once, a child it left behind finishes 300 ms
 * later; the tracer waits for it before it reports the program's status. */
static int mode_daemon(const char *file)
{
	pid_t c = fork();

	if (c == 0) {
		setsid();
		usleep(300000);
		FILE *f = fopen(file, "w");
		if (f) {
			fprintf(f, "daemon-done %ld\n", raw0(SYS_getppid));
			fclose(f);
		}
		_exit(0);
	}
	return 5;
}

/* ns per call of an untrapped and a trapped syscall. */
static int mode_bench(const char *count)
{
	long n = strtol(count, NULL, 10);
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		raw0(SYS_getpid);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double untrapped =
	        ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n;
	long m = n / 50 ? n / 50 : 1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < m; i++)
		raw0(SYS_getppid);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double trapped =
	        ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)m;
	printf("bench: getpid %.0f ns/call (%ld calls), getppid %.0f ns/call (%ld calls)\n",
	       untrapped, n, trapped, m);
	return 0;
}

/* Flag-allowed calls (the harness: newfstatat with AT_EMPTY_PATH) and
 * armed-only ones (fstat), counted on fd 77, run natively until getresgid
 * arms the process; from then on they stop in every thread (the one
 * started before too: TSYNC), in a forked child and after its exec.
 * Stops: 2 * (2 + 1 + 1 + 1). */
#define ARM_FD 77

static int fstat_empty(void)
{
	struct stat st;

	if (syscall(SYS_newfstatat, ARM_FD, "", &st, AT_EMPTY_PATH) != 0)
		return -1;
	return (int)syscall(SYS_fstat, ARM_FD, &st);
}

static void *arm_thread(void *arg)
{
	int *fds = arg;
	char c;

	if (read(fds[0], &c, 1) == 1)
		CHECK(fstat_empty() == 0, "fstat in the other thread: %s", strerror(errno));
	return NULL;
}

static int mode_arm(void)
{
	int fds[2], st = -1;
	pthread_t th;
	pid_t pid;

	CHECK(dup2(1, ARM_FD) == ARM_FD && pipe(fds) == 0, "dup2, pipe");
	pthread_create(&th, NULL, arm_thread, fds);
	for (int i = 0; i < 3; i++)
		CHECK(fstat_empty() == 0, "fstat before arming: %s", strerror(errno));
	long r1 = syscall(SYS_getresgid), r2 = syscall(SYS_getresgid);
	CHECK(r1 == 4444 && r2 == 4444, "getresgid: %ld %ld, want 4444 (armed) twice", r1, r2);
	for (int i = 0; i < 2; i++)
		CHECK(fstat_empty() == 0, "fstat armed: %s", strerror(errno));
	CHECK(write(fds[1], "x", 1) == 1, "wake the thread");
	pthread_join(th, NULL);
	pid = fork();
	if (pid == 0) {
		if (fstat_empty() != 0)
			_exit(3);
		execl(self_exe, self_exe, "arm-exec", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %#x", st);
	printf("arm: getresgid %ld, fstat calls made before and after arming\n", r1);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: probe MODE [args]\n");
		return 2;
	}
	const char *mode = argv[1];
	if (!strcmp(mode, "basic"))
		return mode_basic();
	if (!strcmp(mode, "rewrite"))
		return mode_rewrite();
	if (!strcmp(mode, "park"))
		return mode_park();
	if (!strcmp(mode, "opens") && argc > 2)
		return mode_opens(strtol(argv[2], NULL, 10));
	if (!strcmp(mode, "mt") && argc > 3)
		return mode_mt(atoi(argv[2]), strtol(argv[3], NULL, 10));
	if (!strcmp(mode, "fifo") && argc > 2)
		return mode_fifo(argv[2]);
	if (!strcmp(mode, "exec-rewrite"))
		return mode_exec_rewrite();
	if (!strcmp(mode, "squat"))
		return mode_squat();
	if (!strcmp(mode, "restart"))
		return mode_restart();
	if (!strcmp(mode, "exec-thread"))
		return mode_exec_thread();
	if (!strcmp(mode, "after-exec") && argc > 2)
		return mode_after_exec(argv[2]);
	if (!strcmp(mode, "park-exit"))
		return mode_park_exit();
	if (!strcmp(mode, "chain"))
		return mode_chain();
	if (!strcmp(mode, "arm"))
		return mode_arm();
	if (!strcmp(mode, "arm-exec"))
		return fstat_empty() == 0 ? 0 : 1;
	if (!strcmp(mode, "leaf"))
		return mode_leaf();
	if (!strcmp(mode, "exit") && argc > 2)
		return atoi(argv[2]);
	if (!strcmp(mode, "signal") && argc > 2) {
		int sig = atoi(argv[2]);
		signal(sig, SIG_DFL);
		raise(sig);
		return 1;
	}
	if (!strcmp(mode, "sleeper") && argc > 2)
		return mode_sleeper(argv[2]);
	if (!strcmp(mode, "daemon") && argc > 2)
		return mode_daemon(argv[2]);
	if (!strcmp(mode, "bench"))
		return mode_bench(argc > 2 ? argv[2] : "1000000");
	fprintf(stderr, "probe: unknown mode '%s'\n", mode);
	return 2;
}
