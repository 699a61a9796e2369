/* Unit test of the seccomp filter builder: runs the generated cBPF program
 * through a small interpreter for every syscall number, then installs it
 * for real in a child (no tracer: RET_TRACE gives ENOSYS there). */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tracer/arch.h"
#include "tracer/filter.h"
#include "tracer/region.h"

static int failures;

#define CHECK(cond, ...)                                            \
	do {                                                        \
		if (!(cond)) {                                      \
			printf("FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__);                        \
			printf("\n");                               \
			failures++;                                 \
		}                                                   \
	} while (0)

/* Classic BPF, the subset the builder emits. Sets *loaded_args when the
 * path taken read an argument word or the instruction pointer. */
static uint32_t run(const struct filter_prog *p, const struct seccomp_data *d, int *loaded_args)
{
	uint32_t a = 0;
	size_t pc = 0;
	uint8_t raw[sizeof(*d)];

	memcpy(raw, d, sizeof(raw));
	*loaded_args = 0;
	while (pc < p->len) {
		const struct sock_filter *i = &p->insns[pc];
		switch (i->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (i->k + 4 > sizeof(raw))
				return 0xdead;
			memcpy(&a, raw + i->k, 4);
			if (i->k >= offsetof(struct seccomp_data, instruction_pointer))
				*loaded_args = 1;
			pc++;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += 1 + (a == i->k ? i->jt : i->jf);
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += 1 + (a >= i->k ? i->jt : i->jf);
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			pc += 1 + ((a & i->k) ? i->jt : i->jf);
			break;
		case BPF_RET | BPF_K:
			return i->k;
		default:
			return 0xbad;
		}
	}
	return 0xfa11;
}

static uint64_t ip_now = 0x401000; /* where decide() says the call comes from */

static uint32_t decide(const struct filter_prog *p, uint32_t arch, int nr, uint64_t a0, uint64_t a5,
                       int *loaded)
{
	struct seccomp_data d = {.nr = nr, .arch = arch, .instruction_pointer = ip_now};

	d.args[0] = a0;
	d.args[5] = a5;
	return run(p, &d, loaded);
}

int main(void)
{
	struct tracer_trap traps[80];
	size_t n = 0;
	struct tracer_deny denies[] = {
	        {435, ENOSYS}, {SYS_io_uring_setup, ENOSYS}, {SYS_mincore, EPERM}};
	struct filter_prog p;
	int loaded;

	/* 70 traps, odd ones conditional on args[5]: ~350 instructions. */
	for (int nr = 300; nr < 370; nr++)
		traps[n++] = (struct tracer_trap){
		        .nr = nr, .arg_nonzero = nr % 2 ? 5 : -1, .stub = false};
	traps[n++] = (struct tracer_trap){.nr = SYS_getppid, .arg_nonzero = -1, .stub = false};
	traps[n++] = (struct tracer_trap){.nr = SYS_getpgid, .arg_nonzero = 0, .stub = false};
	/* Path syscalls whose rewrites may run from the stub area; sendto
	 * (args[4] in the real policy, args[0] here) with an argument test. */
	traps[n++] = (struct tracer_trap){.nr = SYS_openat, .arg_nonzero = -1, .stub = true};
	traps[n++] = (struct tracer_trap){.nr = SYS_sendto, .arg_nonzero = 0, .stub = true};
	/* fstat-style calls run natively (the policy's HANDLE_STAT). */
	traps[n++] = (struct tracer_trap){.nr = SYS_newfstatat,
	                                  .arg_nonzero = -1,
	                                  .stub = true,
	                                  .allow_arg = 3,
	                                  .allow_bits = AT_EMPTY_PATH};
	/* A socket address shorter than sockaddr_in runs natively
	 * (HANDLE_ADDR): args[2] of connect and bind. */
	traps[n++] = (struct tracer_trap){
	        .nr = SYS_connect, .arg_nonzero = -1, .below_arg = 2, .below = 16};
	traps[n++] = (struct tracer_trap){
	        .nr = SYS_bind, .arg_nonzero = -1, .below_arg = 2, .below = 16};
	/* fstat is the arm filter's only (HANDLE_ARMED): ALLOW here, below. */
	traps[n++] = (struct tracer_trap){.nr = SYS_fstat, .arg_nonzero = -1, .armed_only = true};
	struct tracer_config cfg = {.traps = traps,
	                            .ntraps = n,
	                            .denies = denies,
	                            .ndenies = sizeof(denies) / sizeof(denies[0])};

	CHECK(filter_build(&cfg, &p) == 0, "build");
	printf("filter: %zu instructions for %zu traps\n", p.len, n);
	CHECK(p.len > 256, "program shorter than an 8-bit jump");

	for (int nr = 0; nr < 500; nr++) {
		uint32_t r = decide(&p, AUDIT_ARCH_X86_64, nr, 0, 0, &loaded);
		uint32_t want = SECCOMP_RET_ALLOW;
		if (nr == 435 || nr == SYS_io_uring_setup)
			want = SECCOMP_RET_ERRNO | ENOSYS;
		else if (nr == SYS_mincore)
			want = SECCOMP_RET_ERRNO | EPERM;
		else if ((nr >= 300 && nr < 370 && nr % 2 == 0) || nr == SYS_getppid ||
		         nr == SYS_openat || nr == SYS_newfstatat)
			want = SECCOMP_RET_TRACE;
		CHECK(r == want, "nr %d: %#x, want %#x", nr, r, want);
		/* The constant-action cache needs ALLOW paths that look at
		 * nr and arch only, except in trapped numbers' branches. */
		int conditional = (nr >= 300 && nr < 370 && nr % 2) || nr == SYS_getpgid ||
		                  nr == SYS_clone || nr == SYS_openat || nr == SYS_sendto ||
		                  nr == SYS_newfstatat || nr == SYS_connect || nr == SYS_bind;
		CHECK(!loaded || conditional, "nr %d: untrapped path reads arguments", nr);
		CHECK(decide(&p, AUDIT_ARCH_I386, nr, 0, 0, &loaded) ==
		              (SECCOMP_RET_ERRNO | ENOSYS),
		      "i386 nr %d not ENOSYS", nr);
	}
	CHECK(decide(&p, AUDIT_ARCH_X86_64, 0x40000000 | 42, 0, 0, &loaded) ==
	              (SECCOMP_RET_ERRNO | ENOSYS),
	      "x32");
	/* conditional traps: both words of the argument */
	CHECK(decide(&p, AUDIT_ARCH_X86_64, 301, 0, 0, &loaded) == SECCOMP_RET_ALLOW, "301 zero");
	CHECK(decide(&p, AUDIT_ARCH_X86_64, 301, 0, 1, &loaded) == SECCOMP_RET_TRACE, "301 lo");
	CHECK(decide(&p, AUDIT_ARCH_X86_64, 301, 0, 1ull << 40, &loaded) == SECCOMP_RET_TRACE,
	      "301 hi");
	CHECK(decide(&p, AUDIT_ARCH_X86_64, SYS_getpgid, 0, 0, &loaded) == SECCOMP_RET_ALLOW,
	      "getpgid(0)");
	CHECK(decide(&p, AUDIT_ARCH_X86_64, SYS_getpgid, 1ull << 32, 0, &loaded) ==
	              SECCOMP_RET_TRACE,
	      "getpgid(hi)");
	CHECK(decide(&p, AUDIT_ARCH_X86_64, SYS_clone, CLONE_VM, 0, &loaded) == SECCOMP_RET_ALLOW,
	      "clone");
	CHECK(decide(&p, AUDIT_ARCH_X86_64, SYS_clone, CLONE_VM | CLONE_UNTRACED, 0, &loaded) ==
	              SECCOMP_RET_TRACE,
	      "clone untraced");

	/* The stub area: only stub traps are let through from there, and only
	 * from inside it (both words of the address). */
	uint64_t lo = arch_region_addr + STUB_AREA_OFF, hi = lo + STUB_AREA_SIZE;
	const struct {
		uint64_t ip;
		int nr;
		uint64_t a0;
		uint32_t want;
	} ips[] = {
	        {lo + 2, SYS_openat, 0, SECCOMP_RET_ALLOW},
	        {hi - 1, SYS_openat, 0, SECCOMP_RET_ALLOW},
	        {lo - 1, SYS_openat, 0, SECCOMP_RET_TRACE},
	        {hi, SYS_openat, 0, SECCOMP_RET_TRACE},
	        {(lo + 2) ^ (1ull << 40), SYS_openat, 0, SECCOMP_RET_TRACE},
	        {(lo + 2) & 0xffffffffu, SYS_openat, 0, SECCOMP_RET_TRACE},
	        {lo + 2, SYS_sendto, 1, SECCOMP_RET_ALLOW},
	        {lo - 2, SYS_sendto, 1, SECCOMP_RET_TRACE},
	        {lo - 2, SYS_sendto, 0, SECCOMP_RET_ALLOW},
	        {lo + 2, SYS_getppid, 0, SECCOMP_RET_TRACE},
	        {lo + 2, SYS_getpid, 0, SECCOMP_RET_ALLOW},
	};
	for (size_t k = 0; k < sizeof(ips) / sizeof(ips[0]); k++) {
		ip_now = ips[k].ip;
		uint32_t r = decide(&p, AUDIT_ARCH_X86_64, ips[k].nr, ips[k].a0, 0, &loaded);
		CHECK(r == ips[k].want, "nr %d from %#llx: %#x, want %#x", ips[k].nr,
		      (unsigned long long)ips[k].ip, r, ips[k].want);
		if (ips[k].nr == SYS_getpid)
			CHECK(!loaded, "untrapped getpid reads the instruction pointer");
	}
	ip_now = 0x401000;
	printf("stub area [%#llx, %#llx): stub traps allowed from it, nothing else changed\n",
	       (unsigned long long)lo, (unsigned long long)hi);

	/* The allow flag: the low word of its argument only; the stub test
	 * still comes first. */
	const struct {
		uint64_t ip, flags;
		uint32_t want;
	} fl[] = {
	        {0x401000, 0, SECCOMP_RET_TRACE},
	        {0x401000, AT_SYMLINK_NOFOLLOW, SECCOMP_RET_TRACE},
	        {0x401000, AT_EMPTY_PATH, SECCOMP_RET_ALLOW},
	        {0x401000, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | (1ull << 40), SECCOMP_RET_ALLOW},
	        {0x401000, (uint64_t)AT_EMPTY_PATH << 32, SECCOMP_RET_TRACE},
	        {lo + 2, 0, SECCOMP_RET_ALLOW},
	};
	for (size_t k = 0; k < sizeof(fl) / sizeof(fl[0]); k++) {
		struct seccomp_data d = {.nr = SYS_newfstatat,
		                         .arch = AUDIT_ARCH_X86_64,
		                         .instruction_pointer = fl[k].ip};
		d.args[3] = fl[k].flags;
		uint32_t r = run(&p, &d, &loaded);
		CHECK(r == fl[k].want, "newfstatat flags %#llx from %#llx: %#x, want %#x",
		      (unsigned long long)fl[k].flags, (unsigned long long)fl[k].ip, r, fl[k].want);
	}

	/* The length test: the low word of args[2] only, unsigned. */
	const struct {
		uint64_t len;
		uint32_t want;
	} al[] = {
	        {0, SECCOMP_RET_ALLOW},
	        {12, SECCOMP_RET_ALLOW},
	        {15, SECCOMP_RET_ALLOW},
	        {16, SECCOMP_RET_TRACE},
	        {110, SECCOMP_RET_TRACE},
	        {0xffffffffu, SECCOMP_RET_TRACE},
	        {(1ull << 32) | 12, SECCOMP_RET_ALLOW},
	        {(1ull << 32) | 16, SECCOMP_RET_TRACE},
	};
	for (size_t k = 0; k < sizeof(al) / sizeof(al[0]); k++) {
		struct seccomp_data d = {.nr = SYS_connect,
		                         .arch = AUDIT_ARCH_X86_64,
		                         .instruction_pointer = 0x401000};
		d.args[2] = al[k].len;
		uint32_t r = run(&p, &d, &loaded);
		CHECK(r == al[k].want, "connect addrlen %#llx: %#x, want %#x",
		      (unsigned long long)al[k].len, r, al[k].want);
	}

	/* Bad input */
	struct tracer_trap bad = {.nr = 1, .arg_nonzero = 6};
	struct tracer_config bcfg = {.traps = &bad, .ntraps = 1};
	struct filter_prog q;
	CHECK(filter_build(&bcfg, &q) == -EINVAL, "arg index 6 accepted");
	bad = (struct tracer_trap){.nr = 1, .arg_nonzero = -1, .allow_arg = 6, .allow_bits = 1};
	CHECK(filter_build(&bcfg, &q) == -EINVAL, "allow arg index 6 accepted");
	bad = (struct tracer_trap){.nr = 1, .arg_nonzero = -1, .below_arg = 6, .below = 16};
	CHECK(filter_build(&bcfg, &q) == -EINVAL, "length arg index 6 accepted");

	/* The kernel accepts it and applies it. */
	pid_t c = fork();
	if (c == 0) {
		struct sock_fprog fp = {.len = (unsigned short)p.len, .filter = p.insns};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0)
			_exit(10);
		if (syscall(SYS_getpid) != getpid())
			_exit(11);
		errno = 0;
		if (syscall(SYS_getppid) != -1 || errno != ENOSYS) /* TRACE, no tracer */
			_exit(12);
		if (syscall(SYS_mincore, 0, 0, 0) != -1 || errno != EPERM)
			_exit(13);
		struct stat st;
		if (syscall(SYS_newfstatat, 0, "", &st, AT_EMPTY_PATH) != 0)
			_exit(14);
		if (syscall(SYS_newfstatat, AT_FDCWD, "/", &st, 0) != -1 || errno != ENOSYS)
			_exit(15);
		/* glibc's netlink bind (12 bytes) runs; an IPv4 one traps. */
		int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
		struct sockaddr_nl snl = {.nl_family = AF_NETLINK};
		if (nl < 0 || bind(nl, (struct sockaddr *)&snl, sizeof(snl)) != 0)
			_exit(16);
		int in = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sin = {.sin_family = AF_INET};
		if (in < 0 || bind(in, (struct sockaddr *)&sin, sizeof(sin)) != -1 ||
		    errno != ENOSYS)
			_exit(17);
		_exit(0);
	}
	int st = -1;
	waitpid(c, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "installed filter: child status %#x", st);
	printf("installed in the kernel: %s\n", st == 0 ? "ok" : "FAILED");
	filter_free(&p);
	printf("%s\n", failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}
