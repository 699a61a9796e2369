/* Engine setup and teardown, and spawning the program under the tracer. */
#include "tracer/tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "tracer/internal.h"

#define PTRACE_OPTIONS                                                                            \
	(PTRACE_O_TRACESECCOMP | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | \
	 PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD)

/* The filter sc_arm() stacks: every flag-allowed and armed-only trap, in
 * full (a call from the stub area still passes). No denies: the first
 * filter has them. */
static int build_arm_filter(struct tracer *t)
{
	struct tracer_trap *full = xcalloc(t->cfg.ntraps ? t->cfg.ntraps : 1, sizeof(*full));
	struct tracer_config ac = {.traps = full};
	int r = 0;

	for (size_t i = 0; i < t->cfg.ntraps; i++)
		if (t->cfg.traps[i].allow_bits || t->cfg.traps[i].armed_only)
			full[ac.ntraps++] = (struct tracer_trap){.nr = t->cfg.traps[i].nr,
			                                         .arg_nonzero = -1,
			                                         .stub = t->cfg.traps[i].stub};
	if (ac.ntraps)
		r = filter_build(&ac, &t->arm_filter);
	free(full);
	return r;
}

int tracer_new(struct evloop *l, const struct tracer_config *cfg, struct tracer **ret)
{
	struct tracer *t;
	sigset_t chld;
	int r;

	if (!cfg->on_syscall)
		return -EINVAL;
	t = xcalloc(1, sizeof(*t));
	t->l = l;
	t->sfd = -1;
	t->cfg = *cfg;
	/* Own copies: the caller's arrays may be temporaries. */
	if (cfg->ntraps) {
		t->traps = xcalloc(cfg->ntraps, sizeof(*t->traps));
		memcpy(t->traps, cfg->traps, cfg->ntraps * sizeof(*t->traps));
	}
	if (cfg->ndenies) {
		t->denies = xcalloc(cfg->ndenies, sizeof(*t->denies));
		memcpy(t->denies, cfg->denies, cfg->ndenies * sizeof(*t->denies));
	}
	t->cfg.traps = t->traps;
	t->cfg.denies = t->denies;
	r = filter_build(&t->cfg, &t->filter);
	if (r < 0)
		goto fail;
	r = build_arm_filter(t);
	if (r < 0)
		goto fail;
	if (cfg->child_setup) {
		struct tracer_config fb = t->cfg;
		if (cfg->nfallback_traps) {
			t->fallback_traps = xcalloc(cfg->nfallback_traps, sizeof(*t->traps));
			memcpy(t->fallback_traps, cfg->fallback_traps,
			       cfg->nfallback_traps * sizeof(*t->traps));
		}
		fb.traps = t->fallback_traps;
		fb.ntraps = cfg->nfallback_traps;
		r = filter_build(&fb, &t->fallback_filter);
		if (r < 0)
			goto fail;
	}

	/* SIGCHLD is consumed through the signalfd only. The supervisor is
	 * single-threaded, so the process mask is this thread's mask. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, &t->old_mask) < 0) {
		r = -errno;
		goto fail;
	}
	t->restore_mask = !sigismember(&t->old_mask, SIGCHLD);
	t->sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (t->sfd < 0) {
		r = -errno;
		goto fail;
	}
	r = evloop_add(l, t->sfd, EPOLLIN, loop_on_sigchld, t);
	if (r < 0)
		goto fail;
	*ret = t;
	return 0;
fail:
	tracer_free(t);
	return r;
}

void tracer_free(struct tracer *t)
{
	if (!t)
		return;
	for (unsigned b = 0; b < THREAD_BUCKETS; b++) {
		while (t->buckets[b]) {
			struct thread *th = t->buckets[b];
			if (th->ev) {
				th->ev->end_reason = "supervisor exiting";
				tev_complete(th->ev);
			}
			/* SIGKILL also ends a ptrace stop; EXITKILL would do it
			 * when we exit, this does it now. */
			kill(th->tgid, SIGKILL);
			thread_free(t, th);
		}
	}
	if (t->sfd >= 0) {
		evloop_del(t->l, t->sfd);
		close(t->sfd);
	}
	if (t->restore_mask) {
		sigset_t chld;
		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
	}
	diag_free(t);
	filter_free(&t->filter);
	filter_free(&t->fallback_filter);
	filter_free(&t->arm_filter);
	free(t->fallback_traps);
	free(t->traps);
	free(t->denies);
	free(t);
}

/* In the child, between fork and execve: async-signal-safe calls only. */
static _Noreturn void child_run(const struct tracer *t, int go_fd, int err_fd, const char *path,
                                char *const argv[], char *const envp[])
{
	const struct filter_prog *f = &t->filter;
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;
	char c = 0;
	ssize_t n;
	int err;

	/* The program starts as if exec'd by a shell: default dispositions
	 * and an empty mask (we block SIGCHLD; the CLI may block more). */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* Wait until the parent has seized us: the filter must be installed
	 * only once a tracer with TRACESECCOMP is attached, or RET_TRACE
	 * gives ENOSYS. EOF without the byte means the parent gave up. */
	do
		n = read(go_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(127);
	if (t->cfg.child_setup) {
		/* The result goes first into the pipe: the parent reads it
		 * after the exec, or before the exec's errno. */
		int r = t->cfg.child_setup(t->cfg.child_setup_data);
		if (r < 0)
			f = &t->fallback_filter;
		(void)!write(err_fd, &r, sizeof(r));
	}
	struct sock_fprog prog = {.len = (unsigned short)f->len, .filter = f->insns};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		goto fail;
	execve(path, argv, envp);
fail:
	err = errno;
	(void)!write(err_fd, &err, sizeof(err));
	_exit(127);
}

/* Wait for the child's exec; it runs nothing of its own before. Any stop on
 * the way (a trapped prctl or write, a signal) is resumed without the
 * policy: this execve is the engine's, not the program's. */
static int await_exec(struct tracer *t, pid_t pid, int err_fd)
{
	int st, err;

	for (;;) {
		if (waitpid(pid, &st, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			if (t->cfg.child_setup)
				(void)!read(err_fd, &err, sizeof(err)); /* the setup's */
			if (read(err_fd, &err, sizeof(err)) == sizeof(err) && err > 0)
				return -err;
			return -ECHILD;
		}
		if (!WIFSTOPPED(st))
			continue;
		if (st >> 16 == PTRACE_EVENT_EXEC)
			return 0;
		int sig = WSTOPSIG(st);
		if (st >> 16 == 0 && sig != (SIGTRAP | 0x80))
			ptrace_resume(t, pid, PTRACE_CONT, sig);
		else
			ptrace_resume(t, pid, PTRACE_CONT, 0);
	}
}

pid_t tracer_spawn(struct tracer *t, const char *path, char *const argv[], char *const envp[])
{
	int go[2], errp[2], r;
	pid_t pid;

	if (t->first_pid)
		return -EBUSY;
	if (pipe2(go, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(errp, O_CLOEXEC) < 0) {
		r = -errno;
		close(go[0]);
		close(go[1]);
		return r;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto out;
	}
	if (pid == 0) {
		close(go[1]);
		close(errp[0]);
		child_run(t, go[0], errp[1], path, argv, envp);
	}
	close(go[0]);
	close(errp[1]);
	go[0] = errp[1] = -1;

	if (ptrace(PTRACE_SEIZE, pid, NULL, (void *)(long)PTRACE_OPTIONS) < 0) {
		r = -errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, __WALL);
		goto out;
	}
	if (write(go[1], "g", 1) != 1) {
		r = -errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, __WALL);
		goto out;
	}
	close(go[1]);
	go[1] = -1;
	r = await_exec(t, pid, errp[0]);
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, __WALL | WNOHANG);
		goto out;
	}
	if (t->cfg.child_setup) {
		int setup = -EPROTO;
		if (read(errp[0], &setup, sizeof(setup)) != sizeof(setup) || setup > 0)
			setup = -EPROTO;
		t->stats.child_setup_err = setup;
		if (setup < 0) {
			/* The fallback filter is in force: the engine's view of
			 * what traps (clone, stubs) must be the same. */
			t->cfg.traps = t->fallback_traps;
			t->cfg.ntraps = t->cfg.nfallback_traps;
		}
	}
	t->first_pid = pid;
	thread_new(t, pid, pid, mm_new());
	ptrace_resume(t, pid, PTRACE_CONT, 0);
	r = pid;
out:
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return r;
}

void tracer_forward_signal(struct tracer *t, int sig)
{
	if (t->first_pid && !t->first_exited) {
		kill(t->first_pid, sig);
		return;
	}
	/* The program is gone but daemons it left are still traced. */
	for (unsigned b = 0; b < THREAD_BUCKETS; b++)
		for (struct thread *th = t->buckets[b]; th; th = th->hnext)
			if (th->tid == th->tgid)
				kill(th->tgid, sig);
}

void tracer_get_stats(const struct tracer *t, struct tracer_stats *ret)
{
	*ret = t->stats;
}
