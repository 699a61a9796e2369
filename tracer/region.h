/* The engine's region in every traced address space (ptrace-notes §3.6):
 * scratch slots for data the kernel must read (paths), then, where the arch
 * has stubs (arch_region_addr != 0), stub slots for the 1-stop rewrite. It is
 * mapped once per address space by an injected mmap: at arch_region_addr,
 * PROT_READ|PROT_EXEC, MAP_FIXED_NOREPLACE, and written only through
 * /proc/<pid>/mem (FOLL_FORCE), so no page is ever writable and executable.
 * Where the fixed address is taken (or the arch has no stubs), the scratch
 * slots alone are mapped anywhere, read-write, and every rewrite takes its
 * exit stop. MAP_NORESERVE: untouched pages cost nothing. */
#pragma once

/* Scratch: one slot per in-flight event that asked for scratch memory. Past
 * the last one, sc_scratch_put() fails with -ENOSPC. */
#define SCRATCH_SLOT_SIZE 8192u
#define SCRATCH_SLOTS 64u
#define SCRATCH_SIZE (SCRATCH_SLOT_SIZE * SCRATCH_SLOTS)

/* Stubs: one slot per thread between the stop that diverted it into the
 * stub and the stop that shows it came out. Code at the start of the slot,
 * then a copy of the event's scratch bytes the rewritten arguments point
 * to. With every slot taken, rewrites fall back to 2 stops. */
#define STUB_SLOT_SIZE 4096u
#define STUB_DATA_OFF 128u
#define STUB_SLOTS 256u
#define STUB_AREA_OFF SCRATCH_SIZE
#define STUB_AREA_SIZE (STUB_SLOT_SIZE * STUB_SLOTS)

#define REGION_SIZE (SCRATCH_SIZE + STUB_AREA_SIZE)
