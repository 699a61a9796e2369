/* Per-architecture register access for the ptrace engine. Everything that
 * knows a register name, a syscall number or an instruction length lives
 * behind this header in tracer/arch/<arch>/; the engine itself is
 * architecture-neutral. Only x86-64 is implemented today. aarch64 would use
 * PTRACE_GETREGSET/NT_PRSTATUS, NT_ARM_SYSTEM_CALL to change or skip the
 * number, and a 4-byte `svc #0` (ptrace-notes §3.11). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

/* The registers of one stopped thread, as the kernel reports them. */
struct arch_regs {
	struct user_regs_struct r;
};

/* The audit arch value of native syscalls (seccomp_data.arch). */
extern const uint32_t arch_audit;
/* Syscall numbers at or above this value belong to a foreign ABI sharing the
 * native arch value (x32 on x86-64); 0 if the arch has none. */
extern const uint32_t arch_foreign_nr_base;
/* Numbers the engine itself needs. */
extern const long arch_nr_clone, arch_nr_clone3, arch_nr_fork, arch_nr_vfork, arch_nr_mmap,
        arch_nr_seccomp;
/* Argument index of clone's flags. */
extern const unsigned arch_clone_flags_arg;
/* Length of the syscall instruction (x86-64 `syscall` 0f 05). */
extern const unsigned arch_syscall_insn_len;

int arch_get_regs(pid_t tid, struct arch_regs *ret);
int arch_set_regs(pid_t tid, const struct arch_regs *regs);

long arch_nr(const struct arch_regs *r);
void arch_set_nr(struct arch_regs *r, long nr);
uint64_t arch_arg(const struct arch_regs *r, unsigned i);
void arch_set_arg(struct arch_regs *r, unsigned i, uint64_t v);
long arch_retval(const struct arch_regs *r);
void arch_set_retval(struct arch_regs *r, long v);
uint64_t arch_ip(const struct arch_regs *r);
uint64_t arch_sp(const struct arch_regs *r);
uint64_t arch_fp(const struct arch_regs *r);

/* At a seccomp stop: make the kernel skip the syscall and return v. */
void arch_skip(struct arch_regs *r, long v);
/* On registers saved at a seccomp stop: rewind to the syscall instruction
 * so that resuming re-executes (and re-traps) the same syscall. */
void arch_rewind(struct arch_regs *r);

/* ---- 1-stop rewrite stubs (ptrace-notes §3.6) ----------------------------
 * On arches where a few instructions after the syscall instruction can put
 * the program's argument registers back without touching a register the
 * program may still use, a rewritten syscall runs from a stub in the
 * engine's region instead of needing an exit stop. x86-64: `syscall`
 * clobbers rcx and r11, so the stub may use rcx to jump back (and leaves it
 * holding the return address, as the kernel would). aarch64: `svc` clobbers
 * x0 only, so it keeps 2 stops (arch_region_addr is 0 there). */

/* Fixed address of the engine's region (scratch + stubs) in every address
 * space, or 0: anywhere, and no stubs. The filter knows it, so syscalls
 * made from its stub area run without a stop. */
extern const uint64_t arch_region_addr;
/* Most bytes arch_stub_code() writes. */
#define ARCH_STUB_CODE_MAX 96u
/* Write into buf the stub that executes the syscall (registers as set by
 * the caller), then sets argument i to orig[i] for every bit i of mask and
 * continues at ret_ip (the address after the program's syscall
 * instruction). Returns its length, or 0 if the arch has no stubs. The
 * syscall instruction is at offset 0. */
size_t arch_stub_code(uint8_t *buf, unsigned mask, const uint64_t orig[6], uint64_t ret_ip);
/* Do what the rest of a stub does after its syscall instruction (argument
 * registers are the caller's business): continue at ret_ip. */
void arch_stub_finish(struct arch_regs *r, uint64_t ret_ip);
void arch_set_ip(struct arch_regs *r, uint64_t ip);

/* capstone arch/mode for the syscall site disassembly. */
int arch_cs_arch(void);
int arch_cs_mode(void);
