/* x86-64 register access. Arguments rdi rsi rdx r10 r8 r9, number in
 * orig_rax (rax holds -ENOSYS at a seccomp stop), result in rax. */
#include "tracer/arch.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <linux/audit.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "common/util.h"

const uint32_t arch_audit = AUDIT_ARCH_X86_64;
/* __X32_SYSCALL_BIT: x32 numbers pass the arch check as x86-64. */
const uint32_t arch_foreign_nr_base = 0x40000000u;
const long arch_nr_clone = SYS_clone, arch_nr_clone3 = 435, arch_nr_fork = SYS_fork,
           arch_nr_vfork = SYS_vfork, arch_nr_mmap = SYS_mmap;
const unsigned arch_clone_flags_arg = 0;
const unsigned arch_syscall_insn_len = 2;

int arch_get_regs(pid_t tid, struct arch_regs *ret)
{
	if (ptrace(PTRACE_GETREGS, tid, NULL, &ret->r) < 0)
		return -errno;
	return 0;
}

int arch_set_regs(pid_t tid, const struct arch_regs *regs)
{
	if (ptrace(PTRACE_SETREGS, tid, NULL, &regs->r) < 0)
		return -errno;
	return 0;
}

long arch_nr(const struct arch_regs *r)
{
	return (long)r->r.orig_rax;
}
void arch_set_nr(struct arch_regs *r, long nr)
{
	r->r.orig_rax = (unsigned long long)nr;
}

uint64_t arch_arg(const struct arch_regs *r, unsigned i)
{
	switch (i) {
	case 0:
		return r->r.rdi;
	case 1:
		return r->r.rsi;
	case 2:
		return r->r.rdx;
	case 3:
		return r->r.r10;
	case 4:
		return r->r.r8;
	case 5:
		return r->r.r9;
	default:
		return 0;
	}
}

void arch_set_arg(struct arch_regs *r, unsigned i, uint64_t v)
{
	switch (i) {
	case 0:
		r->r.rdi = v;
		break;
	case 1:
		r->r.rsi = v;
		break;
	case 2:
		r->r.rdx = v;
		break;
	case 3:
		r->r.r10 = v;
		break;
	case 4:
		r->r.r8 = v;
		break;
	case 5:
		r->r.r9 = v;
		break;
	default:
		break;
	}
}

long arch_retval(const struct arch_regs *r)
{
	return (long)r->r.rax;
}
void arch_set_retval(struct arch_regs *r, long v)
{
	r->r.rax = (unsigned long long)v;
}
uint64_t arch_ip(const struct arch_regs *r)
{
	return r->r.rip;
}
uint64_t arch_sp(const struct arch_regs *r)
{
	return r->r.rsp;
}
uint64_t arch_fp(const struct arch_regs *r)
{
	return r->r.rbp;
}

void arch_skip(struct arch_regs *r, long v)
{
	/* "The tracer can skip the system call by changing the syscall number
	 * to -1" (seccomp_filter.rst); rax becomes the result as is. */
	r->r.orig_rax = (unsigned long long)-1;
	r->r.rax = (unsigned long long)v;
}

void arch_rewind(struct arch_regs *r)
{
	r->r.rip -= arch_syscall_insn_len;
	r->r.rax = r->r.orig_rax;
}

int arch_cs_arch(void)
{
	return CS_ARCH_X86;
}
int arch_cs_mode(void)
{
	return CS_MODE_64;
}
