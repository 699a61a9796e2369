#include "tracer/filter.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/util.h"
#include "tracer/arch.h"
#include "tracer/region.h"

#define OFF_NR offsetof(struct seccomp_data, nr)
#define OFF_ARCH offsetof(struct seccomp_data, arch)
#define OFF_IP_LO offsetof(struct seccomp_data, instruction_pointer)
#define OFF_IP_HI (OFF_IP_LO + 4)
/* Little-endian: the low word of args[i] comes first. */
#define OFF_ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#define OFF_ARG_HI(i) (OFF_ARG_LO(i) + 4)

#define RET_ERRNO(e) (SECCOMP_RET_ERRNO | ((unsigned)(e)&SECCOMP_RET_DATA))

struct builder {
	struct sock_filter *p;
	size_t len, cap;
};

static void emit(struct builder *b, struct sock_filter insn)
{
	if (b->len == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->p = xrealloc(b->p, b->cap * sizeof(*b->p));
	}
	b->p[b->len++] = insn;
}

#define STMT(code, k) ((struct sock_filter)BPF_STMT(code, k))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP(code, k, jt, jf))

static bool trapped_unconditionally(const struct tracer_config *cfg, long nr)
{
	for (size_t i = 0; i < cfg->ntraps; i++)
		if (cfg->traps[i].nr == nr && cfg->traps[i].arg_nonzero < 0 &&
		    !cfg->traps[i].armed_only)
			return true;
	return false;
}

static bool trapped(const struct tracer_config *cfg, long nr)
{
	for (size_t i = 0; i < cfg->ntraps; i++)
		if (cfg->traps[i].nr == nr && !cfg->traps[i].armed_only)
			return true;
	return false;
}

int filter_build(const struct tracer_config *cfg, struct filter_prog *ret)
{
	struct builder b = {0};
	/* A trapped clone shadows the CLONE_UNTRACED check: make it
	 * unconditional so the engine sees every clone and can strip the
	 * flag before the policy runs. */
	bool clone_trapped = trapped(cfg, arch_nr_clone);
	/* The stub area (region.h): one high word, a low-word range. */
	uint64_t stub_start = arch_region_addr + STUB_AREA_OFF;
	uint32_t stub_hi = (uint32_t)(stub_start >> 32);
	uint32_t stub_lo = (uint32_t)stub_start, stub_end = stub_lo + STUB_AREA_SIZE;

	for (size_t i = 0; i < cfg->ntraps; i++)
		if (cfg->traps[i].nr < 0 || (uint32_t)cfg->traps[i].nr >= arch_foreign_nr_base ||
		    cfg->traps[i].arg_nonzero > 5 || cfg->traps[i].allow_arg > 5 ||
		    cfg->traps[i].below_arg > 5)
			return -EINVAL;
	for (size_t i = 0; i < cfg->ndenies; i++)
		if (cfg->denies[i].nr < 0 || cfg->denies[i].err <= 0 ||
		    cfg->denies[i].err > (int)SECCOMP_RET_DATA)
			return -EINVAL;

	emit(&b, STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARCH));
	emit(&b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch_audit, 1, 0));
	emit(&b, STMT(BPF_RET | BPF_K, RET_ERRNO(ENOSYS)));
	emit(&b, STMT(BPF_LD | BPF_W | BPF_ABS, OFF_NR));
	if (arch_foreign_nr_base) {
		emit(&b, JUMP(BPF_JMP | BPF_JGE | BPF_K, arch_foreign_nr_base, 0, 1));
		emit(&b, STMT(BPF_RET | BPF_K, RET_ERRNO(ENOSYS)));
	}
	/* In trace mode a denied syscall stops too, so the trace shows it
	 * ("denied"); the engine then fails it with the same errno. */
	for (size_t i = 0; i < cfg->ndenies; i++) {
		emit(&b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)cfg->denies[i].nr, 0, 1));
		emit(&b, STMT(BPF_RET | BPF_K,
		              cfg->trace ? SECCOMP_RET_TRACE : RET_ERRNO(cfg->denies[i].err)));
	}
	if (!clone_trapped) {
		/* A child created with CLONE_UNTRACED would escape auto-attach
		 * and then get ENOSYS for every trapped syscall. */
		emit(&b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)arch_nr_clone, 0, 4));
		emit(&b, STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARG_LO(arch_clone_flags_arg)));
		emit(&b, JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_UNTRACED, 0, 1));
		emit(&b, STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE));
		emit(&b, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	}
	for (size_t i = 0; i < cfg->ntraps; i++) {
		const struct tracer_trap *tr = &cfg->traps[i];
		uint32_t nr = (uint32_t)tr->nr;
		bool stub = tr->stub && arch_region_addr && tr->nr != arch_nr_clone;
		bool uncond = tr->arg_nonzero < 0 || (tr->nr == arch_nr_clone) ||
		              trapped_unconditionally(cfg, tr->nr);
		/* Every path inside a block returns, so the accumulator still
		 * holds nr on the fall-through path to the next block. */
		bool allow = tr->allow_bits && tr->nr != arch_nr_clone;
		bool below = tr->below && tr->nr != arch_nr_clone;
		uint8_t len = (uint8_t)((stub ? 6 : 0) + (allow ? 3 : 0) + (below ? 3 : 0) +
		                        (uncond ? 1 : 7));

		if (tr->armed_only)
			continue; /* the arm filter's (tracer.c), not this one */

		emit(&b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, len));
		if (stub) {
			/* The engine's own stub runs the rewritten call
			 * (tracer/stub.c): let it through. seccomp_data's
			 * instruction_pointer is the address after the syscall
			 * instruction, inside the stub area. Only here, in a
			 * trapped branch: everything else stays cacheable. */
			emit(&b, STMT(BPF_LD | BPF_W | BPF_ABS, OFF_IP_HI));
			emit(&b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, stub_hi, 0, 4));
			emit(&b, STMT(BPF_LD | BPF_W | BPF_ABS, OFF_IP_LO));
			emit(&b, JUMP(BPF_JMP | BPF_JGE | BPF_K, stub_lo, 0, 2));
			emit(&b, JUMP(BPF_JMP | BPF_JGE | BPF_K, stub_end, 1, 0));
			emit(&b, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
		}
		if (allow) {
			/* A flag that makes the call need no decision (an int
			 * argument: the low word holds it). */
			emit(&b, STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARG_LO(tr->allow_arg)));
			emit(&b, JUMP(BPF_JMP | BPF_JSET | BPF_K, tr->allow_bits, 0, 1));
			emit(&b, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
		}
		if (below) {
			/* A short argument (an int: the low word holds it)
			 * that makes the call need no decision. */
			emit(&b, STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARG_LO(tr->below_arg)));
			emit(&b, JUMP(BPF_JMP | BPF_JGE | BPF_K, tr->below, 1, 0));
			emit(&b, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
		}
		if (uncond) {
			emit(&b, STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE));
			continue;
		}
		/* Trap only if the 64-bit argument is nonzero: test both
		 * words, a pointer above 4 GiB may have a zero low word. */
		unsigned a = (unsigned)tr->arg_nonzero;
		emit(&b, STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARG_LO(a)));
		emit(&b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0));
		emit(&b, STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE));
		emit(&b, STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARG_HI(a)));
		emit(&b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0));
		emit(&b, STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE));
		emit(&b, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	}
	emit(&b, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));

	if (b.len > BPF_MAXINSNS) {
		free(b.p);
		return -E2BIG;
	}
	ret->insns = b.p;
	ret->len = b.len;
	return 0;
}

void filter_free(struct filter_prog *p)
{
	if (!p)
		return;
	free(p->insns);
	p->insns = NULL;
	p->len = 0;
}
