/* The ptrace backend of struct sc_event: tracee memory, fd duplication,
 * scratch memory, argument rewriting and the settle/exit-stop lifecycle. */
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "tracer/internal.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9; older headers lack it */
#endif

#define PAGE 4096ul
/* Kernel-internal restart codes, seen only at syscall-exit stops. */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

static struct tev *to_tev(struct sc_event *ev)
{
	return (struct tev *)ev;
}

int ptrace_resume(struct tracer *t, pid_t tid, int request, int sig)
{
	if (ptrace((enum __ptrace_request)request, tid, NULL, (void *)(long)sig) < 0) {
		/* ESRCH: killed while stopped; its exit status follows. */
		if (errno != ESRCH)
			log_warn("ptrace(%d) on %d: %s", request, tid, strerror(errno));
		return -errno;
	}
	return 0;
}

/* ---- memory ------------------------------------------------------------ */

static int mm_memfd(struct tev *e)
{
	struct mm *mm = e->th->mm;

	if (mm->memfd < 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/mem", (int)e->base.tid);
		mm->memfd = open(path, O_RDWR | O_CLOEXEC);
		if (mm->memfd < 0)
			return -errno;
	}
	return mm->memfd;
}

static int be_read_mem(struct sc_event *ev, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {buf, len}, remote = {(void *)(uintptr_t)addr, len};
	ssize_t n;

	if (len == 0)
		return 0;
	/* One remote element: process_vm_readv never splits an element, so
	 * the read is all or nothing. */
	n = process_vm_readv(ev->tid, &local, 1, &remote, 1, 0);
	if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
		int fd = mm_memfd(to_tev(ev));
		if (fd < 0)
			return fd;
		n = pread(fd, buf, len, (off_t)addr);
	}
	return n == (ssize_t)len ? 0 : -EFAULT;
}

/* Read up to cap bytes, one remote element per page, so that the bytes
 * before an unmapped page are returned even if the range crosses it. */
static ssize_t read_pages(pid_t tid, uint64_t addr, char *buf, size_t cap)
{
	enum { MAX_IOV = 16 };
	size_t done = 0;

	while (done < cap) {
		struct iovec local = {buf + done, 0}, remote[MAX_IOV];
		unsigned n = 0;
		uint64_t a = addr + done;
		size_t want = 0;

		while (n < MAX_IOV && done + want < cap) {
			size_t chunk = PAGE - (a % PAGE);
			if (chunk > cap - done - want)
				chunk = cap - done - want;
			remote[n++] = (struct iovec){(void *)(uintptr_t)a, chunk};
			a += chunk;
			want += chunk;
		}
		local.iov_len = want;
		ssize_t got = process_vm_readv(tid, &local, 1, remote, n, 0);
		if (got <= 0)
			return done > 0 ? (ssize_t)done : -EFAULT;
		done += (size_t)got;
		if ((size_t)got < want)
			break;
	}
	return (ssize_t)done;
}

static ssize_t be_read_str(struct sc_event *ev, uint64_t addr, char *buf, size_t cap)
{
	size_t done = 0;

	if (cap == 0)
		return -ENAMETOOLONG;
	/* Most strings are short: read a page-bounded first piece, then the
	 * rest only if no NUL turned up. */
	while (done < cap) {
		size_t want = cap - done;
		if (want > 256 && done == 0)
			want = 256;
		ssize_t got = read_pages(ev->tid, addr + done, buf + done, want);
		if (got < 0)
			return -EFAULT;
		char *nul = memchr(buf + done, '\0', (size_t)got);
		if (nul)
			return nul - buf;
		done += (size_t)got;
		if ((size_t)got < want)
			return -EFAULT;
	}
	buf[cap - 1] = '\0';
	return -ENAMETOOLONG;
}

static int be_write_mem(struct sc_event *ev, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = {(void *)buf, len}, remote = {(void *)(uintptr_t)addr, len};
	ssize_t n;

	if (len == 0)
		return 0;
	/* Handlers write what the kernel would have written (a stat, a
	 * sockaddr), so the write must fail where copy_to_user fails: on a
	 * read-only page process_vm_writev gets EFAULT, while /proc/<pid>/mem
	 * (FOLL_FORCE) would silently write through it (ptrace-notes §3.7).
	 * One element: all or nothing. */
	n = process_vm_writev(ev->tid, &local, 1, &remote, 1, 0);
	if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
		int fd = mm_memfd(to_tev(ev));
		if (fd < 0)
			return fd;
		n = pwrite(fd, buf, len, (off_t)addr);
	}
	return n == (ssize_t)len ? 0 : -EFAULT;
}

int mem_force_write(struct tev *e, uint64_t addr, const void *buf, size_t len)
{
	int fd = mm_memfd(e);

	if (fd < 0)
		return -EFAULT;
	return pwrite(fd, buf, len, (off_t)addr) == (ssize_t)len ? 0 : -EFAULT;
}

static int be_dup_fd(struct sc_event *ev, int tracee_fd)
{
	struct thread *th = to_tev(ev)->th;
	int fd;

	if (th->pidfd < 0) {
		/* A thread pidfd still works when the group leader is a
		 * zombie; older kernels reject the flag with EINVAL. */
		th->pidfd = (int)syscall(SYS_pidfd_open, th->tid, PIDFD_THREAD);
		if (th->pidfd < 0)
			th->pidfd = (int)syscall(SYS_pidfd_open, th->tgid, 0);
		if (th->pidfd < 0)
			return -errno;
	}
	/* The new fd is always O_CLOEXEC (pidfd_getfd(2)). */
	fd = (int)syscall(SYS_pidfd_getfd, th->pidfd, tracee_fd, 0);
	return fd < 0 ? -errno : fd;
}

/* ---- scratch and arguments ------------------------------------------------ */

static int be_scratch_put(struct sc_event *ev, const void *data, size_t len, uint64_t *ret_addr)
{
	struct tev *e = to_tev(ev);
	struct mm *mm = e->th->mm;
	size_t off;

	if (e->th->state != TS_ENTRY && e->th->state != TS_PARKED)
		return -EBUSY;
	if (!mm->scratch)
		return -ENOMEM;
	if (e->slot < 0) {
		for (unsigned i = 0; i < SCRATCH_SLOTS; i++) {
			if (!(mm->slots_used & (1ull << i))) {
				mm->slots_used |= 1ull << i;
				e->slot = (int)i;
				e->slot_mm = mm_ref(mm);
				e->slot_addr = mm->scratch + (uint64_t)i * SCRATCH_SLOT_SIZE;
				break;
			}
		}
		if (e->slot < 0)
			return -ENOSPC;
	}
	off = (e->slot_used + 15) & ~(size_t)15;
	if (len > SCRATCH_SLOT_SIZE || off + len > SCRATCH_SLOT_SIZE)
		return -E2BIG;
	/* Kept here until the event is settled: a 1-stop rewrite copies the
	 * bytes into its stub slot instead (one write), a skip needs none. */
	if (!e->shadow)
		e->shadow = xcalloc(1, SCRATCH_SLOT_SIZE);
	memcpy(e->shadow + off, data, len);
	e->slot_used = off + len;
	*ret_addr = e->slot_addr + off;
	return 0;
}

/* Put the scratch bytes where the rewritten arguments point. The region is
 * read-only to the program where stubs live (region.h). */
static int flush_scratch(struct tev *e)
{
	if (e->slot < 0 || e->slot_used == 0)
		return 0;
	return mem_force_write(e, e->slot_addr, e->shadow, e->slot_used);
}

static int be_set_arg(struct sc_event *ev, unsigned i, uint64_t value)
{
	struct tev *e = to_tev(ev);

	if (e->th->state != TS_ENTRY && e->th->state != TS_PARKED)
		return -EBUSY;
	arch_set_arg(&e->regs, i, value);
	e->new_args[i] = value;
	e->args_changed |= 1u << i;
	e->regs_dirty = true;
	return 0;
}

/* Put the program's own argument values back into regs. */
void restore_args(struct tev *e, struct arch_regs *r)
{
	for (unsigned i = 0; i < 6; i++)
		if (e->args_changed & (1u << i))
			arch_set_arg(r, i, e->orig_args[i]);
}

static void be_set_result(struct sc_event *ev, long retval)
{
	struct tev *e = to_tev(ev);

	/* Only inside the exit callback of a result not yet delivered. */
	if (!e->in_exit || !e->result_final)
		return;
	arch_set_retval(&e->regs, retval);
	e->regs_dirty = true;
	ev->result = retval;
}

/* ---- lifecycle ------------------------------------------------------------ */

static void settle_skip(struct tev *e, long retval)
{
	struct thread *th = e->th;
	struct arch_regs r = e->regs;

	/* Skipped: the kernel never sees the edited arguments, and the
	 * program must find its registers as it left them. */
	restore_args(e, &r);
	arch_skip(&r, retval);
	if (arch_set_regs(th->tid, &r) == 0)
		ptrace_resume(e->t, th->tid, PTRACE_CONT, 0);
	else
		e->end_reason = "thread gone";
	e->base.result = retval;
	e->result_known = e->result_final = true;
	th->state = TS_RUNNING;
	tev_complete(e);
}

static void settle_exit(struct tev *e, sc_exit_fn fn)
{
	struct thread *th = e->th;

	if (flush_scratch(e) < 0) {
		/* Only if the program unmapped our region: the rewritten
		 * pointer would name garbage. */
		settle_skip(e, -EFAULT);
		return;
	}
	e->exit_fn = fn;
	e->want_exit = true;
	if ((e->regs_dirty && arch_set_regs(th->tid, &e->regs) < 0) ||
	    ptrace_resume(e->t, th->tid, PTRACE_SYSCALL, 0) < 0) {
		e->end_reason = "thread gone";
		th->state = TS_RUNNING;
		tev_complete(e);
		return;
	}
	e->regs_dirty = false;
	th->state = TS_AWAIT_EXIT;
}

static void be_settle(struct sc_event *ev, int how, long retval, sc_exit_fn fn)
{
	struct tev *e = to_tev(ev);
	struct thread *th = e->th;

	if (th->state != TS_ENTRY && th->state != TS_PARKED) {
		log_warn("tid %d: syscall event settled twice (ignored)", th->tid);
		return;
	}
	switch (how) {
	case SC_SETTLE_PARK:
		th->state = TS_PARKED;
		return;
	case SC_SETTLE_SKIP:
		settle_skip(e, retval);
		return;
	case SC_SETTLE_CONTINUE:
		/* Edited registers must be restored at the exit, and a scratch
		 * slot must outlive the kernel's use of it: both need the exit
		 * stop, unless a stub can do the restoring (stub.c). Trace
		 * mode wants the result, which only the exit stop shows. */
		if (e->args_changed || e->slot >= 0 || ev->tracing) {
			if (!ev->tracing && stub_try(e))
				return;
			settle_exit(e, NULL);
			return;
		}
		if ((e->regs_dirty && arch_set_regs(th->tid, &e->regs) < 0) ||
		    ptrace_resume(e->t, th->tid, PTRACE_CONT, 0) < 0)
			e->end_reason = "thread gone";
		th->state = TS_RUNNING;
		tev_complete(e);
		return;
	case SC_SETTLE_CONTINUE_EXIT:
		settle_exit(e, fn);
		return;
	default:
		log_warn("tid %d: unknown settle mode %d", th->tid, how);
		return;
	}
}

/* ---- arming (sc_arm) ------------------------------------------------------ */

static bool be_armed(const struct sc_event *ev)
{
	return to_tev((struct sc_event *)ev)->th->armed;
}

/* The program's syscall becomes seccomp(SET_MODE_FILTER, TSYNC, arm
 * filter) (the filter and its sock_fprog in the event's scratch slot),
 * run to its exit stop; arm_done() then rewinds the thread so that its
 * own syscall runs again and stops anew, under both filters. TSYNC
 * gives the filter to every thread of the process; children inherit it,
 * exec keeps it. */
static int be_arm(struct sc_event *ev)
{
	struct tev *e = to_tev(ev);
	struct thread *th = e->th;
	const struct filter_prog *f = &e->t->arm_filter;
	struct sock_fprog prog = {.len = (unsigned short)f->len};
	struct arch_regs r;
	uint64_t insns, fprog;

	if (!f->len)
		return -EOPNOTSUPP;
	if (th->armed)
		return -EALREADY;
	if (th->state != TS_ENTRY || e->args_changed)
		return -EBUSY;
	int err = be_scratch_put(ev, f->insns, f->len * sizeof(*f->insns), &insns);
	if (err == 0) {
		prog.filter = (struct sock_filter *)(uintptr_t)insns;
		err = be_scratch_put(ev, &prog, sizeof(prog), &fprog);
	}
	if (err == 0)
		err = flush_scratch(e);
	if (err < 0)
		return err;
	th->saved = e->regs;
	r = e->regs;
	arch_set_nr(&r, arch_nr_seccomp);
	arch_set_arg(&r, 0, SECCOMP_SET_MODE_FILTER);
	arch_set_arg(&r, 1, SECCOMP_FILTER_FLAG_TSYNC);
	arch_set_arg(&r, 2, fprog);
	if (arch_set_regs(th->tid, &r) < 0 || ptrace_resume(e->t, th->tid, PTRACE_SYSCALL, 0) < 0) {
		e->end_reason = "thread gone";
		th->state = TS_RUNNING;
		tev_complete(e);
		return 0;
	}
	if (ev->tracing)
		sc_note(ev, SC_EMULATED, "%s: arming the flag-allowed traps first, then again",
		        e->t->cfg.syscall_name ? e->t->cfg.syscall_name(ev->nr) ?: "syscall"
		                               : "syscall");
	e->arming = true;
	e->want_exit = true;
	th->state = TS_AWAIT_EXIT;
	return 0;
}

/* The exit stop of the injected seccomp(): mark the process armed (or give
 * up on it), then run the program's own syscall again. */
static void arm_done(struct tev *e, long rv)
{
	struct thread *th = e->th;
	struct tracer *t = e->t;
	struct arch_regs r = th->saved;
	pid_t tid = th->tid;

	if (rv == 0) {
		t->stats.arms++;
		for (unsigned b = 0; b < THREAD_BUCKETS; b++)
			for (struct thread *o = t->buckets[b]; o; o = o->hnext)
				if (o->tgid == th->tgid)
					o->armed = true;
	} else {
		/* A thread with a filter of its own (rv is its tid) or an
		 * error: the flag-allowed calls stay native, as for plain
		 * fstat(2). Not retried. */
		t->stats.arm_failures++;
		th->armed = true;
		log_debug("tid %d: cannot arm the flag-allowed traps: %s", tid,
		          rv > 0 ? "another thread has a filter of its own" : strerror((int)-rv));
	}
	arch_rewind(&r);
	if (arch_set_regs(tid, &r) < 0)
		e->end_reason = "thread gone";
	th->state = TS_RUNNING;
	tev_complete(e);
	ptrace_resume(t, tid, PTRACE_CONT, 0);
}

static const struct sc_backend ptrace_backend = {
        .caps = SC_CAP_SET_ARGS | SC_CAP_EXIT_HOOK,
        .read_mem = be_read_mem,
        .read_str = be_read_str,
        .write_mem = be_write_mem,
        .dup_fd = be_dup_fd,
        .scratch_put = be_scratch_put,
        .set_arg = be_set_arg,
        .settle = be_settle,
        .set_result = be_set_result,
        .armed = be_armed,
        .arm = be_arm,
};

struct tev *tev_new(struct tracer *t, struct thread *th, const struct arch_regs *regs)
{
	struct tev *e = xcalloc(1, sizeof(*e));

	e->base.be = &ptrace_backend;
	e->base.nr = arch_nr(regs);
	for (unsigned i = 0; i < 6; i++)
		e->base.args[i] = e->orig_args[i] = arch_arg(regs, i);
	e->base.tid = th->tid;
	e->base.tgid = th->tgid;
	e->base.tracing = t->cfg.trace;
	e->base.decision = SC_LOCAL;
	e->base.start_ns = now_ns();
	e->t = t;
	e->th = th;
	e->regs = *regs;
	e->slot = -1;
	e->stub = -1;
	e->entry_ip = arch_ip(regs);
	e->entry_sp = arch_sp(regs);
	return e;
}

void tev_complete(struct tev *e)
{
	struct thread *th = e->th;

	if (e->base.tracing)
		diag_trace_line(e->t, e);
	/* The destructor is where a policy cancels what a parked event was
	 * waiting for; after it returns the event is gone (event.h). */
	if (e->base.state_destroy)
		e->base.state_destroy(e->base.state);
	if (e->slot >= 0) {
		e->slot_mm->slots_used &= ~(1ull << e->slot);
		mm_unref(e->slot_mm);
	}
	stub_release(e);
	if (th->ev == e)
		th->ev = NULL;
	th->restart_pending = false;
	free(e->shadow);
	free(e->stack);
	free(e);
}

bool is_restart_code(long rv)
{
	return rv == -ERESTARTSYS || rv == -ERESTARTNOINTR || rv == -ERESTARTNOHAND ||
	       rv == -ERESTART_RESTARTBLOCK;
}

void tev_on_exit_stop(struct tev *e)
{
	struct thread *th = e->th;
	struct arch_regs r;
	long rv;

	if (arch_get_regs(th->tid, &r) < 0) {
		e->end_reason = "thread gone";
		th->state = TS_RUNNING;
		tev_complete(e);
		return;
	}
	rv = arch_retval(&r);
	if (e->arming) {
		arm_done(e, rv);
		return;
	}
	if (is_restart_code(rv)) {
		/* Interrupted by a signal. Whether the kernel restarts the call
		 * (SA_RESTART) or returns EINTR is decided after this stop, so
		 * put the program's registers back now (the EINTR case returns
		 * to user code) and keep the event: a restart re-enters through
		 * the filter at the same site, and tev_try_restart() re-applies
		 * the decision without asking the policy again. */
		restore_args(e, &r);
		if (e->args_changed && arch_set_regs(th->tid, &r) < 0) {
			e->end_reason = "thread gone";
			th->state = TS_RUNNING;
			tev_complete(e);
			return;
		}
		th->state = TS_RUNNING;
		if (rv == -ERESTART_RESTARTBLOCK) {
			/* Restarted through restart_syscall, which is not
			 * trapped: its result never reaches us. */
			e->end_reason = "restarted via restart_syscall";
			tev_complete(e);
		} else {
			th->restart_pending = true;
		}
		ptrace_resume(e->t, th->tid, PTRACE_CONT, 0);
		return;
	}
	restore_args(e, &r);
	e->regs = r;
	e->regs_dirty = e->args_changed != 0;
	e->base.result = rv;
	e->result_known = e->result_final = true;
	if (e->exit_fn) {
		e->in_exit = true;
		e->exit_fn(&e->base);
		e->in_exit = false;
	}
	if (e->regs_dirty && arch_set_regs(th->tid, &e->regs) < 0)
		e->end_reason = "thread gone";
	th->state = TS_RUNNING;
	/* Resume after completing: the destructor and the trace line run
	 * while the thread still sits at its exit. */
	pid_t tid = th->tid;
	struct tracer *t = e->t;
	tev_complete(e);
	ptrace_resume(t, tid, PTRACE_CONT, 0);
}

bool tev_try_restart(struct tev *e, const struct arch_regs *regs)
{
	struct thread *th = e->th;

	/* The kernel rewinds ip to the syscall instruction and re-executes:
	 * same number, same site, same stack pointer and the program's own
	 * arguments (restored at the interruption). A signal handler making
	 * the same call through the same instruction (glibc's open(), Go's
	 * Syscall6) runs on a deeper stack. (A program that retries the same
	 * call at the same site after EINTR looks identical, and is the same
	 * logical call anyway.) */
	if (arch_nr(regs) != e->base.nr || arch_ip(regs) != e->entry_ip ||
	    arch_sp(regs) != e->entry_sp)
		return false;
	for (unsigned i = 0; i < 6; i++)
		if (arch_arg(regs, i) != e->orig_args[i])
			return false;
	if (e->stub >= 0)
		return stub_rearm(e, regs);
	e->regs = *regs;
	for (unsigned i = 0; i < 6; i++)
		if (e->args_changed & (1u << i))
			arch_set_arg(&e->regs, i, e->new_args[i]);
	e->restarts++;
	th->restart_pending = false;
	if ((e->args_changed && arch_set_regs(th->tid, &e->regs) < 0) ||
	    ptrace_resume(e->t, th->tid, PTRACE_SYSCALL, 0) < 0) {
		e->end_reason = "thread gone";
		th->state = TS_RUNNING;
		tev_complete(e);
		return true;
	}
	e->regs_dirty = false;
	th->state = TS_AWAIT_EXIT;
	return true;
}

void tev_finish_interrupted(struct tev *e)
{
	/* The call returned EINTR (or was abandoned) instead of restarting;
	 * the result was already delivered, so edits are ignored. */
	e->base.result = -EINTR;
	e->result_known = true;
	e->result_final = false;
	e->end_reason = "interrupted";
	if (e->exit_fn) {
		e->in_exit = true;
		e->exit_fn(&e->base);
		e->in_exit = false;
	}
	tev_complete(e);
}
