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
 * handler cancels whatever it was waiting for. */
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
#define SC_CAP_SET_ARGS (1u << 0)   /* sc_set_arg() works */
#define SC_CAP_EXIT_HOOK (1u << 1)  /* sc_continue_exit() works */

/* Identity and arguments. nr is the native (x86-64 / aarch64) number. */
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
int sc_write_mem(struct sc_event *ev, uint64_t addr, const void *buf, size_t len);

/* A supervisor-owned duplicate of the tracee's fd (same open file
 * description, pidfd_getfd). Returns the fd (O_CLOEXEC) or -errno. */
int sc_dup_fd(struct sc_event *ev, int tracee_fd);

/* Copy len bytes into this thread's scratch slot in the tracee and return
 * its tracee address; the slot stays valid until the event completes.
 * -E2BIG if len exceeds the slot. */
int sc_scratch_put(struct sc_event *ev, const void *data, size_t len, uint64_t *ret_addr);
/* Change argument i as the kernel will see it. The original register
 * value is restored when the syscall returns (needs SC_CAP_SET_ARGS). */
int sc_set_arg(struct sc_event *ev, unsigned i, uint64_t value);

/* Settle the event. */
void sc_skip(struct sc_event *ev, long retval); /* retval: >= 0 or -errno */
void sc_continue(struct sc_event *ev);
void sc_continue_exit(struct sc_event *ev, sc_exit_fn fn);
void sc_park(struct sc_event *ev);

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
};

enum { SC_SETTLE_SKIP, SC_SETTLE_CONTINUE, SC_SETTLE_CONTINUE_EXIT, SC_SETTLE_PARK };

/* The common head of every backend's event; backends embed it first. */
struct sc_event {
	const struct sc_backend *be;
	long nr;
	uint64_t args[6];
	pid_t tid, tgid;
	long result;           /* valid in the exit callback */
	void *state;
	void (*state_destroy)(void *);
	bool tracing;
	bool noted;
	enum sc_decision decision;
	char note[512];
	uint64_t start_ns;
};
