/* The ptrace + seccomp engine. It spawns the program under PTRACE_SEIZE,
 * installs a seccomp filter built from a trap list, follows threads,
 * forks, vforks and execs, and turns every trapped syscall into an
 * sc_event for the policy. It knows nothing of agents or Kubernetes.
 * All work happens on the caller's evloop thread (the thread that calls
 * tracer_spawn() is the tracer of every tracee). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/evloop.h"
#include "tracer/event.h"

struct tracer;

/* One syscall the filter routes to the policy. If arg_nonzero >= 0 the
 * syscall traps only when that argument is nonzero (e.g. sendto with a
 * destination address) and runs natively otherwise.
 *
 * stub: the policy may point arguments of this syscall at scratch memory
 * (a path) and continue. The engine may then run the call from a stub in
 * its region that puts the registers back itself (x86-64, 1 stop instead
 * of 2; ptrace-notes §3.6), and the filter lets this syscall through when
 * it comes from that stub. Only for syscalls that return to their caller:
 * never execve/execveat.
 *
 * allow_bits: the call runs natively, without a stop, when argument
 * allow_arg has any of these bits set (0: no such test), until the policy
 * arms the process (sc_arm(): a second filter, stacked on the first, traps
 * those calls in full from then on). For fstat-style calls: newfstatat or
 * statx with AT_EMPTY_PATH stat an open fd, which needs a decision only
 * once the process may hold the copy of a pod file.
 *
 * armed_only: the same for a call without such a flag (fstat): not in
 * the first filter at all, trapped in full once the process is armed.
 *
 * below: the call runs natively, always, when the low word of argument
 * below_arg is (unsigned) below this value (0: no such test). For socket
 * address lengths: bind, connect or sendto with fewer than 16 bytes of
 * address cannot name an IPv4 or IPv6 address (the kernel refuses those
 * shorter than sockaddr_in), so netlink and short unix-socket calls need
 * no stop. */
struct tracer_trap {
	int nr;
	int arg_nonzero;
	bool stub;
	unsigned allow_arg;
	uint32_t allow_bits;
	/* Trapped only once the process is armed (in the arm filter alone):
	 * plain fstat(2), which needs a decision only in a process that may
	 * hold the copy of a pod file, and otherwise runs untrapped. */
	bool armed_only;
	unsigned below_arg;
	uint32_t below;
};

/* One syscall the filter refuses in the kernel, without a stop. */
struct tracer_deny {
	int nr;
	int err;
};

struct tracer_config {
	const struct tracer_trap *traps;
	size_t ntraps;
	const struct tracer_deny *denies;
	size_t ndenies;

	/* Called at each trapped syscall entry. Must settle or park ev. */
	void (*on_syscall)(struct sc_event *ev, void *data);
	/* Called when the last tracee is gone, with the wait status of the
	 * first program (as from waitpid). If the program exits while
	 * children it started are still running (a daemon, a double fork),
	 * the engine keeps tracing them and calls on_done only when they are
	 * gone too: a traced child cannot be let go (without its tracer every
	 * trapped syscall fails with ENOSYS). The callback may free the
	 * tracer. */
	void (*on_done)(int wait_status, void *data);
	/* Called when the first program enters a group-stop (SIGSTOP,
	 * SIGTSTP, SIGTTIN, SIGTTOU), after the engine let it stop: the place
	 * for the supervisor to stop too, so that its parent (a shell) sees
	 * the job stopped only once the program really is. NULL: nothing. */
	void (*on_group_stop)(int sig, void *data);
	void *data;

	/* Names syscalls in trace lines that carry no note (the policy's
	 * table knows the names); NULL: "syscall_NR". */
	const char *(*syscall_name)(long nr);

	/* Runs in the program's process after fork, before the filter and
	 * execve: async-signal-safe work only (mounts in a mount namespace
	 * of its own, say). When it fails (< 0), the child installs the
	 * filter of fallback_traps instead of traps: they trap what the setup
	 * would have made needless. NULL: nothing is run. */
	int (*child_setup)(void *data);
	void *child_setup_data;
	const struct tracer_trap *fallback_traps;
	size_t nfallback_traps;

	bool trace;        /* log every trapped syscall (decision, result, time) */
	bool trace_stacks; /* add the calling thread's stack and syscall site */
	bool no_stub;      /* never use the 1-stop stub (tests, A/B runs) */
};

/* Builds the filter (-EINVAL for a bad trap/deny entry), blocks SIGCHLD
 * and watches it through a signalfd on l. The loop reaps with
 * waitpid(-1, __WALL): the supervisor must not rely on waiting for other
 * children of its own while a tracer exists (use a pidfd and waitid
 * P_PIDFD, or finish them before tracer_new). */
int tracer_new(struct evloop *l, const struct tracer_config *cfg, struct tracer **ret);
/* Kills (SIGKILL) every tracee still alive and frees everything. */
void tracer_free(struct tracer *t);

/* Start path (already resolved, not searched in PATH) with argv/envp under
 * the tracer. Returns the program's pid or -errno; the program does not
 * run a single instruction of its own before the filter is in place. An
 * execve failure in the child (ENOENT, EACCES) is reported as -errno here. */
pid_t tracer_spawn(struct tracer *t, const char *path, char *const argv[], char *const envp[]);

/* Forward a signal to the first program (used for SIGINT/SIGTERM/SIGHUP
 * that reach the supervisor); once it has exited, to every remaining
 * traced process. */
void tracer_forward_signal(struct tracer *t, int sig);

/* The thread-group ids of every traced process, up to cap; returns how
 * many were stored. */
size_t tracer_processes(const struct tracer *t, pid_t *out, size_t cap);

/* Counters for benchmarks and tests. */
struct tracer_stats {
	uint64_t seccomp_stops;
	uint64_t exit_stops;
	uint64_t signal_stops;
	uint64_t event_stops;
	uint64_t injections;
	uint64_t stub_calls;   /* rewritten syscalls run from a stub (no exit stop) */
	uint64_t stub_unwinds; /* threads taken out of a stub at a signal stop */
	/* 0, or the -errno of a failed child_setup: fallback_traps are in
	 * force. */
	int child_setup_err;
	uint64_t arms;         /* sc_arm() filters installed */
	uint64_t arm_failures; /* sc_arm() seccomp() calls that failed */
};
void tracer_get_stats(const struct tracer *t, struct tracer_stats *ret);
