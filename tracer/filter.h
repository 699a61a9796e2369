/* The seccomp filter, built at runtime from the trap and deny lists. Pure:
 * no syscalls, so tests can build and inspect it, or install it in a child. */
#pragma once

#include <linux/filter.h>
#include <stddef.h>

#include "tracer/tracer.h"

struct filter_prog {
	struct sock_filter *insns;
	size_t len;
};

/* Layout (every jump is short and forward, so any number of entries fits
 * cBPF's 8-bit jump offsets; the only limit is BPF_MAXINSNS):
 *   arch != native                  -> ERRNO(ENOSYS)   (int 0x80, i386)
 *   nr >= foreign base (x32)        -> ERRNO(ENOSYS)
 *   each deny                       -> ERRNO(err)
 *   clone with CLONE_UNTRACED       -> TRACE           (engine strips it)
 *   each trap (not armed_only: those are the arm filter's alone):
 *              [stub: called from the stub area -> ALLOW]
 *              [an allow_bits flag set in allow_arg -> ALLOW]
 *              [argument below_arg < below -> ALLOW]
 *              [arg nonzero] -> TRACE
 *   otherwise                       -> ALLOW
 * ALLOW depends on arch and nr only, so the kernel's constant-action cache
 * (Linux >= 5.11) lets untrapped syscalls skip the filter entirely; argument
 * and instruction-pointer tests live only inside the branches of trapped
 * numbers.
 * Returns 0, -EINVAL (bad nr/err/arg index) or -E2BIG (too many entries). */
int filter_build(const struct tracer_config *cfg, struct filter_prog *ret);
void filter_free(struct filter_prog *p);
