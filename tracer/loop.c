/* The tracer's share of the event loop: SIGCHLD arrives on a signalfd, and
 * every wake drains waitpid(-1, __WALL | WNOHANG) and dispatches each stop
 * (ptrace-notes §3.3, §6.1). Any ptrace call may fail with ESRCH because
 * the tracee was SIGKILLed while stopped; that is never an error here: its
 * exit status is already queued and arrives through the same drain. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "tracer/internal.h"

#define PROT_RW 0x3               /* PROT_READ | PROT_WRITE */
#define PROT_RX 0x5               /* PROT_READ | PROT_EXEC */
#define MAP_SCRATCH 0x4022        /* MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE */
#define MAP_FIXED_NOREPL 0x100000 /* MAP_FIXED_NOREPLACE (Linux 4.17) */

static bool policy_traps(const struct tracer *t, long nr)
{
	for (size_t i = 0; i < t->cfg.ntraps; i++)
		if (t->cfg.traps[i].nr == nr)
			return true;
	return false;
}

/* ---- scratch injection (ptrace-notes §3.6) ---------------------------- */

static void start_injection(struct tracer *t, struct thread *th, const struct arch_regs *regs)
{
	struct arch_regs r = *regs;
	struct mm *mm = th->mm;
	uint64_t args[6] = {0, SCRATCH_SIZE, PROT_RW, MAP_SCRATCH, (uint64_t)-1, 0};

	/* The whole region at the address the filter knows, read + exec
	 * only (region.h); if that address is taken, scratch alone,
	 * anywhere. MAP_FIXED_NOREPLACE never replaces a mapping of the
	 * program's. */
	mm->inject_fixed = arch_region_addr && !mm->fixed_failed;
	if (mm->inject_fixed) {
		args[0] = arch_region_addr;
		args[1] = REGION_SIZE;
		args[2] = PROT_RX;
		args[3] = MAP_SCRATCH | MAP_FIXED_NOREPL;
	}
	/* Turn this seccomp stop into mmap(...), run it to its exit stop, then
	 * rewind so the program's own syscall re-executes and traps again. */
	th->saved = *regs;
	arch_set_nr(&r, arch_nr_mmap);
	for (unsigned i = 0; i < 6; i++)
		arch_set_arg(&r, i, args[i]);
	if (arch_set_regs(th->tid, &r) < 0 || ptrace_resume(t, th->tid, PTRACE_SYSCALL, 0) < 0)
		return; /* dying; the exit status follows */
	th->state = TS_INJECTING;
	mm->injector = th;
	t->stats.injections++;
}

static void wake_waiters(struct tracer *t, struct mm *mm);

static void finish_injection(struct tracer *t, struct thread *th)
{
	struct mm *mm = th->mm;
	struct arch_regs r;

	mm->injector = NULL;
	th->state = TS_RUNNING;
	if (arch_get_regs(th->tid, &r) == 0) {
		unsigned long rv = (unsigned long)arch_retval(&r);
		if (rv > -4096ul && mm->inject_fixed) {
			/* EEXIST: the program has a mapping there. The
			 * re-executed syscall traps again and injects scratch
			 * anywhere; rewrites take 2 stops in this mm. */
			mm->fixed_failed = true;
			log_debug("tid %d: region at %#llx: %s; no stubs", th->tid,
			          (unsigned long long)arch_region_addr, strerror((int)-rv));
		} else if (rv > -4096ul) {
			mm->scratch_failed = true;
			log_debug("tid %d: scratch mmap failed: %s", th->tid, strerror((int)-rv));
		} else {
			mm->scratch = rv;
			/* A kernel older than 4.17 takes the flag for a hint and
			 * may map elsewhere: scratch works, stubs do not. */
			mm->stub_ok = mm->inject_fixed && rv == arch_region_addr;
		}
		r = th->saved;
		arch_rewind(&r);
		if (arch_set_regs(th->tid, &r) == 0)
			ptrace_resume(t, th->tid, PTRACE_CONT, 0);
	}
	wake_waiters(t, mm);
}

/* ---- seccomp stops ---------------------------------------------------- */

/* The errno of a denied syscall that stopped (trace mode only; otherwise
 * the filter fails it without a stop), or 0. */
static int denied_errno(const struct tracer *t, long nr)
{
	for (size_t i = 0; t->cfg.trace && i < t->cfg.ndenies; i++)
		if (t->cfg.denies[i].nr == nr)
			return t->cfg.denies[i].err;
	return 0;
}

void loop_dispatch_entry(struct tracer *t, struct thread *th, const struct arch_regs *regs)
{
	struct tev *e = tev_new(t, th, regs);
	int err = denied_errno(t, arch_nr(regs));

	th->ev = e;
	th->state = TS_ENTRY;
	if (t->cfg.trace_stacks)
		diag_capture_stack(t, e);
	if (err) {
		const char *name = t->cfg.syscall_name ? t->cfg.syscall_name(arch_nr(regs)) : NULL;
		sc_note(&e->base, SC_DENIED, "%s", name ? name : "syscall");
		sc_skip(&e->base, -err);
		return;
	}
	t->cfg.on_syscall(&e->base, t->cfg.data);
	if (th->state == TS_ENTRY) {
		log_warn("policy left %s (tid %d) unsettled; continuing it",
		         t->cfg.syscall_name ? t->cfg.syscall_name(arch_nr(regs)) ?: "syscall"
		                             : "syscall",
		         th->tid);
		sc_continue(&e->base);
	}
}

/* A seccomp stop, after restarts and registers are dealt with. */
static void handle_entry(struct tracer *t, struct thread *th, struct arch_regs *regs)
{
	struct mm *mm = th->mm;

	if (!mm->scratch && !mm->scratch_failed) {
		if (!mm->injector) {
			start_injection(t, th, regs);
		} else {
			/* Another thread of this mm is mid-injection: hold this
			 * one in its stop until the region exists. */
			th->saved = *regs;
			th->state = TS_WAIT_SCRATCH;
			th->next_waiter = mm->waiters;
			mm->waiters = th;
		}
		return;
	}
	if (arch_nr(regs) == arch_nr_clone &&
	    (arch_arg(regs, arch_clone_flags_arg) & CLONE_UNTRACED)) {
		/* The filter traps clone only for this flag (or because the
		 * policy wants clone). The child must stay traced: without a
		 * tracer, RET_TRACE gives it ENOSYS. */
		arch_set_arg(regs, arch_clone_flags_arg,
		             arch_arg(regs, arch_clone_flags_arg) & ~(uint64_t)CLONE_UNTRACED);
		if (arch_set_regs(th->tid, regs) < 0)
			return;
		if (!policy_traps(t, arch_nr_clone)) {
			ptrace_resume(t, th->tid, PTRACE_CONT, 0);
			return;
		}
	}
	loop_dispatch_entry(t, th, regs);
}

static void wake_waiters(struct tracer *t, struct mm *mm)
{
	struct thread *w = mm->waiters;

	mm->waiters = NULL;
	while (w) {
		struct thread *next = w->next_waiter;
		struct arch_regs regs = w->saved;

		w->next_waiter = NULL;
		w->state = TS_RUNNING;
		handle_entry(t, w, &regs);
		w = next;
	}
}

static void on_seccomp_stop(struct tracer *t, struct thread *th)
{
	struct arch_regs regs;

	t->stats.seccomp_stops++;
	if (arch_get_regs(th->tid, &regs) < 0)
		return;
	if (th->ev && th->ev->in_stub)
		tev_complete(th->ev); /* the stub's syscall never traps: it is out */
	if (th->ev && th->restart_pending) {
		if (tev_try_restart(th->ev, &regs))
			return;
		tev_finish_interrupted(th->ev);
	}
	if (th->ev) {
		/* Cannot happen with a well-behaved kernel; don't leak it. */
		th->ev->end_reason = "lost";
		tev_complete(th->ev);
	}
	handle_entry(t, th, &regs);
}

static void on_exit_stop(struct tracer *t, struct thread *th)
{
	t->stats.exit_stops++;
	if (th->state == TS_INJECTING) {
		finish_injection(t, th);
	} else if (th->state == TS_AWAIT_EXIT && th->ev) {
		tev_on_exit_stop(th->ev);
	} else {
		ptrace_resume(t, th->tid, PTRACE_CONT, 0);
	}
}

/* ---- threads, processes, exec ------------------------------------------ */

/* A pending restart is over once the thread does anything else, and a
 * thread that forks is not inside a stub (stub_on_signal() sees to it
 * that no signal handler returns into one). */
static void finish_pending(struct thread *th)
{
	if (th->ev && th->restart_pending)
		tev_finish_interrupted(th->ev);
	else if (th->ev && th->ev->in_stub)
		tev_complete(th->ev);
}

static void thread_gone(struct tracer *t, struct thread *th, const char *why)
{
	struct mm *mm = th->mm;

	if (th->ev) {
		/* Parked, or waiting for its exit stop: the policy's destructor
		 * runs now and the event is freed; nobody may settle it. */
		th->ev->end_reason = why;
		tev_complete(th->ev);
	}
	bool was_injector = mm && mm->injector == th;
	mm_ref(mm);
	thread_free(t, th);
	if (was_injector)
		wake_waiters(t, mm); /* the first waiter injects instead */
	mm_unref(mm);
}

/* A fork child starts with a copy of its parent's mappings, including the
 * scratch region; verify it is there rather than inject another. */
static struct mm *mm_for_fork(struct mm *parent, pid_t child)
{
	struct mm *mm = mm_new();
	char c;
	struct iovec l = {&c, 1}, r = {NULL, 1};

	if (parent && parent->scratch && !parent->injector) {
		r.iov_base = (void *)(uintptr_t)parent->scratch;
		if (process_vm_readv(child, &l, 1, &r, 1, 0) == 1) {
			mm->scratch = parent->scratch;
			mm->stub_ok = parent->stub_ok;
		}
	}
	return mm;
}

static int read_status_field(pid_t tid, const char *key, pid_t *ret)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	int r = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			long v;
			char *s = line + klen + 1;
			s += strspn(s, " \t");
			s[strcspn(s, "\n")] = '\0';
			if (parse_int(s, 0, INT32_MAX, &v) == 0) {
				*ret = (pid_t)v;
				r = 0;
			}
			break;
		}
	}
	fclose(f);
	return r;
}

static struct thread *find_group(struct tracer *t, pid_t tgid)
{
	struct thread *th = thread_find(t, tgid);

	if (th && th->tgid == tgid)
		return th;
	for (unsigned b = 0; b < THREAD_BUCKETS; b++)
		for (th = t->buckets[b]; th; th = th->hnext)
			if (th->tgid == tgid)
				return th;
	return NULL;
}

/* The first stop of a tid we have not heard of: its parent's clone event
 * has not been reaped yet (the kernel does not order the two). Work out its
 * group and address space from /proc and kcmp instead of waiting. */
static struct thread *adopt_orphan(struct tracer *t, pid_t tid)
{
	pid_t tgid = tid, ppid = 0;
	struct thread *peer;

	read_status_field(tid, "Tgid", &tgid);
	if (tgid != tid && (peer = find_group(t, tgid)))
		return thread_new(t, tid, tgid, mm_ref(peer->mm));
	read_status_field(tid, "PPid", &ppid);
	peer = ppid ? find_group(t, ppid) : NULL;
	if (peer && syscall(SYS_kcmp, peer->tid, tid, KCMP_VM, 0, 0) == 0)
		return thread_new(t, tid, tgid, mm_ref(peer->mm));
	return thread_new(t, tid, tgid, mm_for_fork(peer ? peer->mm : NULL, tid));
}

static struct thread *adopt_orphan_unannounced(struct tracer *t, pid_t tid)
{
	struct thread *th = adopt_orphan(t, tid);

	th->announced = false;
	return th;
}

static uint64_t clone_flags(struct tracer *t, struct thread *th, int event, bool *known)
{
	struct arch_regs r;

	*known = true;
	if (event == PTRACE_EVENT_VFORK)
		return CLONE_VM | CLONE_VFORK;
	if (arch_get_regs(th->tid, &r) == 0) {
		long nr = arch_nr(&r);
		if (nr == arch_nr_clone)
			return arch_arg(&r, arch_clone_flags_arg);
		if (nr == arch_nr_fork)
			return 0;
		if (nr == arch_nr_vfork)
			return CLONE_VM | CLONE_VFORK;
		if (nr == arch_nr_clone3) {
			uint64_t flags; /* struct clone_args starts with flags */
			struct iovec l = {&flags, 8};
			struct iovec rem = {(void *)(uintptr_t)arch_arg(&r, 0), 8};
			if (process_vm_readv(th->tid, &l, 1, &rem, 1, 0) == 8)
				return flags;
		}
	}
	*known = false;
	return 0;
}

static void on_new_child(struct tracer *t, struct thread *th, int event)
{
	unsigned long msg = 0;
	bool known;

	t->stats.event_stops++;
	finish_pending(th);
	if (ptrace(PTRACE_GETEVENTMSG, th->tid, NULL, &msg) == 0 && msg > 0) {
		pid_t child = (pid_t)msg;
		uint64_t flags = clone_flags(t, th, event, &known);

		struct thread *c = thread_find(t, child);
		if (c) {
			c->announced = true; /* adopted at its first stop */
		} else if (!ghost_take(t, child)) {
			if (!known)
				c = adopt_orphan(t, child);
			else if (flags & CLONE_THREAD)
				c = thread_new(t, child, th->tgid, mm_ref(th->mm));
			else if (flags & CLONE_VM)
				c = thread_new(t, child, child, mm_ref(th->mm));
			else
				c = thread_new(t, child, child, mm_for_fork(th->mm, child));
		}
		/* The child has its creator's filters (sc_arm). A child
		 * missed here is armed again when it asks: harmless. */
		if (c && th->armed)
			c->armed = true;
	}
	ptrace_resume(t, th->tid, PTRACE_CONT, 0);
}

/* PTRACE_EVENT_EXEC arrives under the thread-group id; if a non-leader
 * thread exec'd, its former tid is in the event message and the old leader
 * vanished without an exit report (ptrace(2) "execve(2) under ptrace"). The
 * other threads report their deaths themselves. */
static void on_exec(struct tracer *t, pid_t pid)
{
	unsigned long former = (unsigned long)pid;
	struct thread *th, *leader;

	t->stats.event_stops++;
	if (ptrace(PTRACE_GETEVENTMSG, pid, NULL, &former) < 0)
		former = (unsigned long)pid;
	th = thread_find(t, (pid_t)former);
	if ((pid_t)former != pid) {
		leader = thread_find(t, pid);
		if (leader)
			thread_gone(t, leader, "vanished in execve");
		if (th)
			thread_rekey(t, th, pid);
	}
	if (!th) {
		th = thread_new(t, pid, pid, mm_new());
	} else {
		finish_pending(th);
		if (th->ev) {
			/* A trapped execve resumed to its exit: it succeeded,
			 * and the old registers must not be restored into the
			 * new image. */
			th->ev->base.result = 0;
			th->ev->result_known = true;
			th->ev->args_changed = 0;
			tev_complete(th->ev);
		}
		th->tgid = pid;
		mm_unref(th->mm);
		th->mm = mm_new(); /* scratch is injected again at the next stop */
		if (th->pidfd >= 0) {
			close(th->pidfd); /* referred to the former tid */
			th->pidfd = -1;
		}
	}
	th->state = TS_RUNNING;
	ptrace_resume(t, pid, PTRACE_CONT, 0);
}

static void handle_status(struct tracer *t, pid_t pid, int st)
{
	struct thread *th;
	int event, sig;

	log_trace("tid %d: wait status %#x (%s, %zu threads)", pid, st,
	          thread_find(t, pid) ? "known" : "unknown", t->nthreads);

	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		if (pid == t->first_pid && !t->first_exited) {
			t->first_exited = true;
			t->first_status = st;
		}
		th = thread_find(t, pid);
		if (th)
			thread_gone(t, th, WIFSIGNALED(st) ? "killed" : "exited");
		else
			ghost_add(t, pid);
		return;
	}
	if (!WIFSTOPPED(st))
		return;
	event = st >> 16;
	sig = WSTOPSIG(st);
	if (event == PTRACE_EVENT_EXEC) {
		on_exec(t, pid);
		return;
	}
	th = thread_find(t, pid);
	if (!th)
		th = adopt_orphan_unannounced(t, pid);

	switch (event) {
	case PTRACE_EVENT_SECCOMP:
		on_seccomp_stop(t, th);
		return;
	case PTRACE_EVENT_CLONE:
	case PTRACE_EVENT_FORK:
	case PTRACE_EVENT_VFORK:
		on_new_child(t, th, event);
		return;
	case PTRACE_EVENT_STOP:
		t->stats.event_stops++;
		if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
			/* Group-stop: LISTEN keeps it stopped until SIGCONT, so
			 * job control behaves as without a tracer. PTRACE_CONT
			 * would silently cancel the stop. */
			if (ptrace(PTRACE_LISTEN, pid, NULL, NULL) < 0 && errno != ESRCH)
				ptrace_resume(t, pid, PTRACE_CONT, 0);
			/* Once per stop, however many threads report it. */
			if (th && th->tgid == t->first_pid && !t->first_stopped) {
				t->first_stopped = true;
				if (t->cfg.on_group_stop)
					t->cfg.on_group_stop(sig, t->cfg.data);
			}
			return;
		}
		/* A new tracee's first stop, or the re-trap after SIGCONT
		 * ends a LISTEN. */
		if (th && th->tgid == t->first_pid)
			t->first_stopped = false;
		ptrace_resume(t, pid, PTRACE_CONT, 0);
		return;
	case 0:
		if (sig == (SIGTRAP | 0x80)) {
			on_exit_stop(t, th);
			return;
		}
		/* Signal-delivery stop: deliver it unchanged (from outside
		 * any stub). */
		t->stats.signal_stops++;
		if (th->ev && th->ev->in_stub)
			stub_on_signal(th->ev);
		ptrace_resume(t, pid, PTRACE_CONT, sig);
		return;
	default:
		t->stats.event_stops++;
		ptrace_resume(t, pid, PTRACE_CONT, 0);
		return;
	}
}

void loop_check_done(struct tracer *t)
{
	/* Last statement of every path that calls it: on_done may free t. */
	if (!t->done && t->first_exited && t->nthreads == 0) {
		t->done = true;
		if (t->cfg.on_done)
			t->cfg.on_done(t->first_status, t->cfg.data);
	}
}

void loop_on_sigchld(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct tracer *t = data;
	struct signalfd_siginfo si[16];
	int st;
	pid_t pid;

	/* Standard signals coalesce: the siginfo only says "something
	 * changed"; waitpid is the source of truth. One read takes all
	 * there is (at most one SIGCHLD pending for the process and one
	 * for the thread); one that arrives after it leaves the signalfd
	 * readable for the next turn. A second read() to see EAGAIN was
	 * a syscall per ptrace stop. */
	(void)!read(fd, si, sizeof(si));
	while ((pid = waitpid(-1, &st, __WALL | WNOHANG)) > 0)
		handle_status(t, pid, st);
	loop_check_done(t);
}
