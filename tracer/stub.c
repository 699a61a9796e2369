/* The 1-stop path rewrite (ptrace-notes §3.6, "1-stop path rewrite on
 * x86-64 via a stub").
 *
 * A rewritten syscall normally costs two stops: the seccomp stop, where the
 * argument register is pointed at a scratch copy of the new path, and the
 * exit stop, where the program's own value is put back (the kernel keeps
 * every register but rax/rcx/r11 on x86-64, and compiled code relies on
 * that). Instead, at the seccomp stop the engine writes a stub into a slot
 * of its region:
 *
 *     syscall                      the call, with the rewritten arguments
 *     movabs $orig, %rsi           one per changed argument register
 *     movabs $ret_ip, %rcx         what the kernel leaves in rcx natively
 *     jmp *%rcx                    back after the program's syscall
 *
 * followed by a copy of the new path, skips the trapped syscall with rax set
 * to its number and points rip at the stub. The filter lets the stub's own
 * syscall through without a stop (instruction_pointer inside the stub area,
 * tested only in the branches of syscalls marked `stub`), so the call costs
 * one stop.
 *
 * A stub slot belongs to the event until its thread is seen out of it: at
 * its next seccomp stop (the stub's syscall never traps, so a trapped
 * syscall comes from elsewhere), at a fork/clone event, exec or death. A
 * signal-delivery stop inside the stub takes the thread out of it first
 * (stub_on_signal), so that no signal frame ever returns into a slot that
 * might be reused: the stub's tail is done for it, or, when the syscall was
 * interrupted, the program's own syscall instruction is where the kernel's
 * restart (or EINTR) happens; a restart traps again and is diverted into
 * the same stub without asking the policy (tev_try_restart). */
#include <errno.h>
#include <string.h>
#include <sys/ptrace.h>

#include "common/log.h"
#include "tracer/internal.h"

static bool trap_has_stub(const struct tracer *t, long nr)
{
	for (size_t i = 0; i < t->cfg.ntraps; i++)
		if (t->cfg.traps[i].nr == nr)
			return t->cfg.traps[i].stub;
	return false;
}

static int slot_alloc(struct mm *mm)
{
	for (unsigned w = 0; w < STUB_SLOTS / 64; w++) {
		uint64_t free_bits = ~mm->stubs_used[w];
		if (free_bits) {
			unsigned b = (unsigned)__builtin_ctzll(free_bits);
			mm->stubs_used[w] |= 1ull << b;
			return (int)(w * 64 + b);
		}
	}
	return -1;
}

static void slot_free(struct mm *mm, int s)
{
	mm->stubs_used[s / 64] &= ~(1ull << (s % 64));
}

void stub_release(struct tev *e)
{
	if (e->stub < 0)
		return;
	slot_free(e->stub_mm, e->stub);
	mm_unref(e->stub_mm);
	e->stub = -1;
	e->stub_mm = NULL;
	e->in_stub = false;
}

/* Resume the thread at its stub, with the syscall skipped at this stop and
 * rax holding the number for the stub's own syscall instruction. */
static void enter(struct tev *e, const struct arch_regs *from)
{
	struct thread *th = e->th;
	struct arch_regs r = *from;

	for (unsigned i = 0; i < 6; i++)
		if (e->args_changed & (1u << i))
			arch_set_arg(&r, i, e->stub_args[i]);
	arch_skip(&r, e->base.nr);
	arch_set_ip(&r, e->stub_addr);
	th->state = TS_RUNNING;
	th->restart_pending = false;
	if (arch_set_regs(th->tid, &r) < 0 || ptrace_resume(e->t, th->tid, PTRACE_CONT, 0) < 0) {
		e->end_reason = "thread gone";
		tev_complete(e);
		return;
	}
	e->in_stub = true;
}

bool stub_try(struct tev *e)
{
	struct tracer *t = e->t;
	struct mm *mm = e->th->mm;
	uint8_t buf[STUB_SLOT_SIZE];
	size_t n;
	int s;

	/* Only pointer arguments into this event's scratch bytes: they are
	 * what the stub's copy can stand in for. A changed number (flags) or
	 * an exit callback keeps the exit stop. */
	if (t->cfg.no_stub || !mm->stub_ok || e->slot < 0 || e->slot_mm != mm || !e->args_changed ||
	    e->exit_fn || !trap_has_stub(t, e->base.nr) ||
	    e->slot_used > STUB_SLOT_SIZE - STUB_DATA_OFF)
		return false;
	for (unsigned i = 0; i < 6; i++)
		if ((e->args_changed & (1u << i)) && e->new_args[i] - e->slot_addr >= e->slot_used)
			return false;
	s = slot_alloc(mm);
	if (s < 0)
		return false;             /* every slot in use: 2 stops */
	memset(buf, 0xcc, STUB_DATA_OFF); /* int3 after the code */
	n = arch_stub_code(buf, e->args_changed, e->orig_args, e->entry_ip);
	if (n == 0 || n > ARCH_STUB_CODE_MAX || ARCH_STUB_CODE_MAX > STUB_DATA_OFF) {
		slot_free(mm, s);
		return false;
	}
	memcpy(buf + STUB_DATA_OFF, e->shadow, e->slot_used);
	e->stub_addr = mm->scratch + STUB_AREA_OFF + (uint64_t)s * STUB_SLOT_SIZE;
	/* One write: code and data. The region is read-only to the
	 * program (no page is writable and executable at once). */
	if (mem_force_write(e, e->stub_addr, buf, STUB_DATA_OFF + e->slot_used) < 0) {
		slot_free(mm, s);
		return false;
	}
	for (unsigned i = 0; i < 6; i++)
		if (e->args_changed & (1u << i))
			e->stub_args[i] =
			        e->stub_addr + STUB_DATA_OFF + (e->new_args[i] - e->slot_addr);
	e->stub = s;
	e->stub_mm = mm_ref(mm);
	/* The scratch slot is not needed any more: the stub slot has the
	 * bytes, for the restarts too. */
	e->slot_mm->slots_used &= ~(1ull << e->slot);
	mm_unref(e->slot_mm);
	e->slot = -1;
	e->slot_mm = NULL;
	t->stats.stub_calls++;
	enter(e, &e->regs);
	return true;
}

bool stub_rearm(struct tev *e, const struct arch_regs *regs)
{
	e->restarts++;
	enter(e, regs);
	return true;
}

void stub_on_signal(struct tev *e)
{
	struct thread *th = e->th;
	struct arch_regs r;
	uint64_t ip;
	bool pending;

	if (arch_get_regs(th->tid, &r) < 0)
		return; /* killed; the exit status follows */
	ip = arch_ip(&r);
	if (ip < e->stub_addr || ip >= e->stub_addr + STUB_DATA_OFF) {
		tev_complete(e); /* out of the stub already */
		return;
	}
	e->t->stats.stub_unwinds++;
	restore_args(e, &r);
	if (ip == e->stub_addr) {
		/* Diverted, but the signal came before the stub's syscall
		 * ran: the program's own syscall instruction runs after the
		 * handler instead, traps again and is diverted again. */
		arch_set_ip(&r, e->entry_ip);
		arch_set_nr(&r, e->base.nr);
		arch_rewind(&r);
		arch_set_nr(&r, -1);
		pending = true;
	} else if (ip == e->stub_addr + arch_syscall_insn_len && arch_nr(&r) == e->base.nr &&
	           is_restart_code(arch_retval(&r))) {
		/* The stub's syscall was interrupted. The kernel decides after
		 * this stop whether it restarts (ip rewound by one syscall
		 * instruction, number back in rax) or fails with EINTR; either
		 * works from the program's own call site. A restart traps
		 * again: tev_try_restart() sends it back here. */
		arch_stub_finish(&r, e->entry_ip);
		pending = true;
	} else {
		/* The syscall is done: do what the rest of the stub does. */
		arch_stub_finish(&r, e->entry_ip);
		pending = false;
	}
	if (arch_set_regs(th->tid, &r) < 0) {
		e->end_reason = "thread gone";
		tev_complete(e);
		return;
	}
	e->in_stub = false;
	if (pending)
		th->restart_pending = true;
	else
		tev_complete(e);
}
