/* x86-64 register access. Arguments rdi rsi rdx r10 r8 r9, number in
 * orig_rax (rax holds -ENOSYS at a seccomp stop), result in rax. */
#include "tracer/arch.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <linux/audit.h>
#include <sys/ptrace.h>
#include <string.h>
#include <sys/syscall.h>

#include "common/util.h"

const uint32_t arch_audit = AUDIT_ARCH_X86_64;
/* __X32_SYSCALL_BIT: x32 numbers pass the arch check as x86-64. */
const uint32_t arch_foreign_nr_base = 0x40000000u;
const long arch_nr_clone = SYS_clone, arch_nr_clone3 = 435, arch_nr_fork = SYS_fork,
           arch_nr_vfork = SYS_vfork, arch_nr_mmap = SYS_mmap, arch_nr_seccomp = SYS_seccomp;
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

void arch_set_ip(struct arch_regs *r, uint64_t ip)
{
	r->r.rip = ip;
}

/* In the middle of the user half of the 47-bit address space: far below
 * the top-down mmap area (0x7f...) and the stack, far above PIE images and
 * the brk heap (0x55.../0x56...), apart from Go's arena hints (0x..c0 << 32)
 * and rr's page (0x70000000). "mt" in the high word. */
const uint64_t arch_region_addr = 0x6d7400000000ull;

/* movabs $imm64, <argument register i>: REX prefix and opcode. */
static const uint8_t movabs_arg[6][2] = {
        {0x48, 0xbf}, /* rdi */
        {0x48, 0xbe}, /* rsi */
        {0x48, 0xba}, /* rdx */
        {0x49, 0xba}, /* r10 */
        {0x49, 0xb8}, /* r8 */
        {0x49, 0xb9}, /* r9 */
};

static size_t put_movabs(uint8_t *p, uint8_t rex, uint8_t op, uint64_t v)
{
	p[0] = rex;
	p[1] = op;
	memcpy(p + 2, &v, 8); /* little-endian immediate */
	return 10;
}

size_t arch_stub_code(uint8_t *buf, unsigned mask, const uint64_t orig[6], uint64_t ret_ip)
{
	size_t n = 0;

	buf[n++] = 0x0f; /* syscall */
	buf[n++] = 0x05;
	for (unsigned i = 0; i < 6; i++)
		if (mask & (1u << i))
			n += put_movabs(buf + n, movabs_arg[i][0], movabs_arg[i][1], orig[i]);
	/* rcx: what the kernel leaves there after a native syscall (the
	 * return address), and a register the program cannot expect to keep.
	 * r11 keeps the flags the kernel put there, as natively. */
	n += put_movabs(buf + n, 0x48, 0xb9, ret_ip); /* movabs $ret_ip, %rcx */
	buf[n++] = 0xff;                              /* jmp *%rcx */
	buf[n++] = 0xe1;
	return n;
}

void arch_stub_finish(struct arch_regs *r, uint64_t ret_ip)
{
	r->r.rcx = ret_ip;
	r->r.rip = ret_ip;
}

int arch_cs_arch(void)
{
	return CS_ARCH_X86;
}
int arch_cs_mode(void)
{
	return CS_MODE_64;
}
