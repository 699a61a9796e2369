/* The backend-neutral syscall event: everything a policy handler in
 * syscalls/ may do with a trapped syscall. Handlers never call ptrace; the
 * ptrace engine (tracer/) is one backend behind this API, a seccomp
 * user-notification backend can be another. Each backend fills in the
 * function table of struct sc_backend; handlers use only the sc_*() calls.
 *
 * Lifecycle of one event: the backend calls the policy's entry function
 * with the event; the handler settles it with exactly one of sc_skip(),
 * sc_continue() or sc_continue_exit(), or calls sc_park() and settles it
 * later from another callback (e.g. when the agent replies). A parked
 * event stays valid until it is settled or the thread dies; in the latter
 * case the backend runs the per-call state destructor, which is where a
 * handler cancels whatever it was waiting for.
 *
 * The parking contract: a handler that keeps the event pointer anywhere
 * (a pending request, a timer) must attach a state with a destructor
 * (sc_set_state) before it returns from the entry function. If the thread
 * dies while parked (SIGKILL, exit_group or execve by another thread) or
 * the supervisor shuts down, the backend runs that destructor and then
 * frees the event. The destructor must drop every reference to the event
 * (cancel the request or timer): after it returns the pointer dangles, and
 * settling it would be a use after free. The destructor also runs when an
 * event completes normally, so it is the single place to release state.
 *
 * Interrupted syscalls: when a signal interrupts a syscall the handler
 * continued (the kernel's -ERESTART* codes) and the kernel restarts it
 * (SA_RESTART), it traps again; the ptrace backend recognises the restart
 * (same thread, number and call site) and re-applies the same decision
 * (the same sc_set_arg values, the same exit callback) without calling the
 * policy again. The exit callback runs once, at the final exit. If the
 * kernel returned EINTR instead, the exit callback runs with -EINTR when
 * the thread is next seen, and sc_set_result() is ignored then.
 *
 * The engine never shows the policy the execve it performs to start the
 * first program, nor a clone that traps only because of CLONE_UNTRACED
 * (it strips the flag itself). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/util.h"

struct sc_event;

typedef void (*sc_exit_fn)(struct sc_event *ev);

/* What trace mode reports as the decision of a handler. */
enum sc_decision {
	SC_LOCAL,    /* let through unchanged */
	SC_REMOTE,   /* served by / through the agent */
	SC_DENIED,   /* refused with an errno */
	SC_EMULATED, /* answered by the supervisor itself */
};

/* Backend capabilities; a handler that needs a missing one degrades. */
#define SC_CAP_SET_ARGS (1u << 0)  /* sc_set_arg() works */
#define SC_CAP_EXIT_HOOK (1u << 1) /* sc_continue_exit() works */

/* Identity and arguments. nr is the native (x86-64 / aarch64) number.
 * sc_arg() is the full 64-bit register as the program passed it (also after
 * sc_set_arg()); int arguments must be truncated by the handler, the kernel
 * ignores their high 32 bits. */
long sc_nr(const struct sc_event *ev);
uint64_t sc_arg(const struct sc_event *ev, unsigned i);
pid_t sc_tid(const struct sc_event *ev);
pid_t sc_tgid(const struct sc_event *ev);
unsigned sc_caps(const struct sc_event *ev);

/* Tracee memory. Return 0 or -EFAULT (bad pointer: the caller should
 * usually let the syscall run so the kernel reports EFAULT itself). */
int sc_read_mem(struct sc_event *ev, uint64_t addr, void *buf, size_t len);
/* Read a NUL-terminated string: returns its length, -EFAULT, or
 * -ENAMETOOLONG if no NUL within cap - 1 bytes. Safe up to a guard page. */
ssize_t sc_read_str(struct sc_event *ev, uint64_t addr, char *buf, size_t cap);
/* Write as the kernel's copy_to_user would: -EFAULT (and nothing written)
 * if any byte lies in a page the program cannot write (unmapped or
 * read-only). */
int sc_write_mem(struct sc_event *ev, uint64_t addr, const void *buf, size_t len);

/* A supervisor-owned duplicate of the tracee's fd (same open file
 * description, pidfd_getfd). Returns the fd (O_CLOEXEC) or -errno. */
int sc_dup_fd(struct sc_event *ev, int tracee_fd);

/* Copy len bytes into this thread's scratch slot in the tracee and return
 * its tracee address; the slot stays valid until the event completes (the
 * bytes reach the tracee when the event is settled, before the kernel
 * reads them).
 * Several calls in one event are placed one after the other (16-byte
 * aligned). -E2BIG if len exceeds the slot, -ENOSPC if every slot of the
 * address space is held by other in-flight events, -ENOMEM if the scratch
 * region could not be mapped. */
int sc_scratch_put(struct sc_event *ev, const void *data, size_t len, uint64_t *ret_addr);
/* Change argument i as the kernel will see it. The original register
 * value is restored when the syscall returns (needs SC_CAP_SET_ARGS). */
int sc_set_arg(struct sc_event *ev, unsigned i, uint64_t value);

/* Settle the event. sc_skip() drops argument edits (the program finds its
 * registers untouched). sc_continue() after sc_set_arg() or
 * sc_scratch_put() acts as sc_continue_exit(ev, NULL): the registers are
 * restored and the slot released at the exit, not before. (The ptrace
 * backend may instead run such a call from a stub that restores the
 * registers itself, with no exit stop: x86-64, syscalls the policy marked
 * `stub`, arguments pointing into scratch; the program cannot tell.) */
void sc_skip(struct sc_event *ev, long retval); /* retval: >= 0 or -errno */
void sc_continue(struct sc_event *ev);
void sc_continue_exit(struct sc_event *ev, sc_exit_fn fn);
void sc_park(struct sc_event *ev);

/* Flag-allowed calls (tracer_trap.allow_bits: e.g. fstat-style stats)
 * run natively until the thread's process is armed; then they stop like
 * the rest. sc_arm() arms it, for its future children too, and settles
 * the event: the syscall then runs again from the start and stops anew,
 * so the handler does nothing more with it. Returns 0, or -errno with the
 * event unsettled (-EALREADY: armed, or arming failed before;
 * -EOPNOTSUPP: nothing to arm, or a backend that cannot). */
bool sc_armed(const struct sc_event *ev);
int sc_arm(struct sc_event *ev);

/* At the exit callback: the kernel's result, and how to replace it. */
long sc_result(const struct sc_event *ev);
void sc_set_result(struct sc_event *ev, long retval);

/* Per-call state, destroyed when the event completes or its thread dies. */
void sc_set_state(struct sc_event *ev, void *state, void (*destroy)(void *));
void *sc_state(const struct sc_event *ev);

/* Trace mode. sc_tracing() tells whether notes are wanted, so handlers can
 * skip formatting. The note is printed once, when the event completes,
 * with the result and the time spent. */
bool sc_tracing(const struct sc_event *ev);
MT_PRINTF(3, 4) void sc_note(struct sc_event *ev, enum sc_decision d, const char *fmt, ...);

/* ---- for backends only ------------------------------------------------ */

struct sc_backend {
	unsigned caps;
	int (*read_mem)(struct sc_event *ev, uint64_t addr, void *buf, size_t len);
	ssize_t (*read_str)(struct sc_event *ev, uint64_t addr, char *buf, size_t cap);
	int (*write_mem)(struct sc_event *ev, uint64_t addr, const void *buf, size_t len);
	int (*dup_fd)(struct sc_event *ev, int tracee_fd);
	int (*scratch_put)(struct sc_event *ev, const void *data, size_t len, uint64_t *ret_addr);
	int (*set_arg)(struct sc_event *ev, unsigned i, uint64_t value);
	/* how: one of the SC_SETTLE_* values */
	void (*settle)(struct sc_event *ev, int how, long retval, sc_exit_fn fn);
	void (*set_result)(struct sc_event *ev, long retval);
	bool (*armed)(const struct sc_event *ev); /* optional, with arm */
	int (*arm)(struct sc_event *ev);
};

enum { SC_SETTLE_SKIP, SC_SETTLE_CONTINUE, SC_SETTLE_CONTINUE_EXIT, SC_SETTLE_PARK };

/* The common head of every backend's event; backends embed it first. */
struct sc_event {
	const struct sc_backend *be;
	long nr;
	uint64_t args[6];
	pid_t tid, tgid;
	long result; /* valid in the exit callback */
	void *state;
	void (*state_destroy)(void *);
	bool tracing;
	bool noted;
	enum sc_decision decision;
	char note[512];
	uint64_t start_ns;
};
