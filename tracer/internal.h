/* Private state of the ptrace engine, shared by the files of tracer/ only.
 *
 * Three kinds of records (ptrace-notes §6.2):
 *  - struct thread: one per traced tid; holds the ptrace-level state machine
 *    and at most one syscall event.
 *  - struct mm: one per address space, shared by threads and by CLONE_VM /
 *    vfork children (refcounted); holds the scratch region and the
 *    /proc/<tid>/mem fd. A new one is made on fork and on exec.
 *  - struct tev: the ptrace backend's syscall event (embeds struct
 *    sc_event first), owned by its thread.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/evloop.h"
#include "tracer/arch.h"
#include "tracer/event.h"
#include "tracer/filter.h"
#include "tracer/region.h"
#include "tracer/tracer.h"

struct thread;

struct mm {
	unsigned refs;
	uint64_t scratch;        /* tracee address of the region, 0 = none yet */
	bool scratch_failed;     /* injection failed: scratch_put gives -ENOMEM */
	bool stub_ok;            /* the region sits at arch_region_addr, stubs work */
	bool inject_fixed;       /* the injection in flight asks for arch_region_addr */
	bool fixed_failed;       /* that address is taken: map scratch anywhere */
	struct thread *injector; /* thread whose seccomp stop runs the mmap */
	struct thread *waiters;  /* threads stopped until the injection ends */
	uint64_t slots_used;     /* bitmap, SCRATCH_SLOTS <= 64 */
	uint64_t stubs_used[STUB_SLOTS / 64];
	int memfd; /* /proc/<tid>/mem, opened lazily, -1 */
};

enum thread_state {
	TS_RUNNING,     /* resumed; no stop of ours expected */
	TS_ENTRY,       /* in the policy's on_syscall, event not settled yet */
	TS_PARKED,      /* left in its seccomp stop by sc_park() */
	TS_AWAIT_EXIT,  /* resumed with PTRACE_SYSCALL, exit stop expected */
	TS_INJECTING,   /* running the injected mmap, exit stop expected */
	TS_WAIT_SCRATCH /* in its seccomp stop until another thread's injection ends */
};

struct tev {
	struct sc_event base; /* first: the sc_*() dispatchers cast to it */
	struct tracer *t;
	struct thread *th;
	struct arch_regs regs; /* registers at entry (with our edits) */
	bool regs_dirty;
	uint64_t orig_args[6]; /* as the program passed them */
	uint64_t new_args[6];  /* as sc_set_arg() set them */
	unsigned args_changed; /* bitmap of sc_set_arg() indices */
	int slot;              /* scratch slot or -1 */
	size_t slot_used;      /* bump offset in the slot */
	struct mm *slot_mm;    /* the mm the slot belongs to (ref held) */
	uint64_t slot_addr;    /* tracee address of the slot */
	char *shadow;          /* the slot's bytes; they reach the tracee at settle */
	int stub;              /* stub slot or -1 (stub.c) */
	struct mm *stub_mm;    /* the mm the stub slot belongs to (ref held) */
	uint64_t stub_addr;    /* tracee address of the stub slot */
	uint64_t stub_args[6]; /* changed arguments, pointing into the stub slot */
	bool in_stub;          /* resumed into its stub, not yet seen out of it */
	bool arming;           /* runs the injected seccomp() of sc_arm() */
	sc_exit_fn exit_fn;
	bool want_exit; /* resumed with PTRACE_SYSCALL */
	bool in_exit;   /* the exit callback is running */
	bool result_known;
	bool result_final; /* false: result already delivered, edits ignored */
	unsigned restarts; /* -ERESTART* re-entries absorbed */
	uint64_t entry_ip, entry_sp;
	const char *end_reason; /* e.g. "thread died", for the trace line */
	char *stack;            /* trace_stacks text, or NULL */
};

struct thread {
	pid_t tid, tgid;
	struct mm *mm;
	enum thread_state state;
	struct tev *ev; /* current event (any state but RUNNING), or
				    * one awaiting a restart or running through
				    * its stub (state RUNNING) */
	bool restart_pending;
	bool armed;             /* arm_filter installed (inherited at clone), or it failed */
	bool announced;         /* the parent's clone/fork event was seen (or
				    * not needed); false for adopted orphans */
	struct arch_regs saved; /* registers saved around an injection */
	struct thread *next_waiter;
	int pidfd;            /* cached for sc_dup_fd, -1 */
	struct thread *hnext; /* hash chain */
};

#define THREAD_BUCKETS 1024u
#define GHOSTS 64u

struct tracer {
	struct evloop *l;
	struct tracer_config cfg; /* traps/denies point into our own copies */
	struct tracer_trap *traps;
	struct tracer_deny *denies;
	struct filter_prog filter;
	/* cfg.child_setup's alternative (fallback_traps); after a failed
	 * setup, cfg.traps points at fallback_traps, the list in force */
	struct tracer_trap *fallback_traps;
	struct filter_prog fallback_filter;
	/* traps every flag-allowed call in full: installed by sc_arm() on
	 * top of the filter (stacked filters: TRACE beats ALLOW); len 0 if
	 * no trap has allow_bits */
	struct filter_prog arm_filter;
	int sfd; /* signalfd(SIGCHLD) */
	sigset_t old_mask;
	bool restore_mask;

	struct thread *buckets[THREAD_BUCKETS];
	size_t nthreads;
	/* tids whose exit came before their parent's clone event (the kernel
	 * does not order the two), so the late event does not resurrect them */
	pid_t ghosts[GHOSTS];
	unsigned nghost;

	pid_t first_pid;
	bool first_exited, done;
	/* The first program is in a group-stop (on_group_stop was called);
	 * cleared by its next stop of any other kind. */
	bool first_stopped;
	int first_status;
	struct tracer_stats stats;

	void *unw_as;     /* libunwind address space (diag.c) */
	size_t cs_handle; /* capstone handle (diag.c), 0 = none */
	bool cs_open;
};

/* task.c */
struct thread *thread_find(struct tracer *t, pid_t tid);
struct thread *thread_new(struct tracer *t, pid_t tid, pid_t tgid, struct mm *mm);
void thread_rekey(struct tracer *t, struct thread *th, pid_t new_tid);
/* Unlink and free; the event, if any, must be gone already. */
void thread_free(struct tracer *t, struct thread *th);
struct mm *mm_new(void);
struct mm *mm_ref(struct mm *mm);
void mm_unref(struct mm *mm);
void mm_remove_waiter(struct mm *mm, struct thread *th);
void ghost_add(struct tracer *t, pid_t tid);
bool ghost_take(struct tracer *t, pid_t tid);

/* backend.c */
struct tev *tev_new(struct tracer *t, struct thread *th, const struct arch_regs *regs);
/* The event is over: print the trace line, run the state destructor,
 * release the scratch slot, free it and detach it from its thread. */
void tev_complete(struct tev *e);
/* At the exit stop of an event resumed with PTRACE_SYSCALL. */
void tev_on_exit_stop(struct tev *e);
/* At a seccomp stop of a thread with a restart pending. Returns true if the
 * stop was the restart of that event (re-applied and resumed). */
bool tev_try_restart(struct tev *e, const struct arch_regs *regs);
/* The pending event will not be restarted: complete it with -EINTR. */
void tev_finish_interrupted(struct tev *e);
/* Resume helpers; ESRCH (tracee killed meanwhile) is not an error. */
int ptrace_resume(struct tracer *t, pid_t tid, int request, int sig);
/* Write through /proc/<pid>/mem (FOLL_FORCE: also into the read-only
 * region); 0 or -EFAULT. */
int mem_force_write(struct tev *e, uint64_t addr, const void *buf, size_t len);
void restore_args(struct tev *e, struct arch_regs *r);
bool is_restart_code(long rv);

/* stub.c: the 1-stop rewrite (ptrace-notes §3.6). */
/* At sc_continue() of an event with rewritten pointer arguments: run the
 * syscall from a stub instead of taking the exit stop. Returns false if the
 * stub cannot be used (then nothing was changed). */
bool stub_try(struct tev *e);
/* At the seccomp stop that restarts such an event: divert into the stub
 * again. */
bool stub_rearm(struct tev *e, const struct arch_regs *regs);
/* At a signal-delivery stop of a thread whose event is in its stub: take
 * the thread out of it, so that no signal frame returns into the slot. */
void stub_on_signal(struct tev *e);
/* From tev_complete(): free the stub slot. */
void stub_release(struct tev *e);

/* loop.c */
void loop_on_sigchld(struct evloop *l, int fd, uint32_t events, void *data);
/* Dispatch the seccomp stop of th (registers in regs) to the policy. */
void loop_dispatch_entry(struct tracer *t, struct thread *th, const struct arch_regs *regs);
void loop_check_done(struct tracer *t);

/* diag.c */
void diag_capture_stack(struct tracer *t, struct tev *e);
void diag_trace_line(struct tracer *t, struct tev *e);
void diag_free(struct tracer *t);
