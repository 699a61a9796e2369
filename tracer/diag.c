/* Trace mode: one line per trapped syscall, and optionally the calling
 * thread's stack and the disassembled syscall site (ptrace-notes §5).
 * Diagnostic path only: costs (milliseconds per libunwind walk) don't
 * matter here, and nothing in this file runs unless trace mode is on. */
#include <capstone/capstone.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <libunwind-ptrace.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/dl.h"
#include "common/util.h"
#include "tracer/internal.h"

#define MAX_FRAMES 32
#define SYM_MAX 256

static const char *decision_name(enum sc_decision d)
{
	switch (d) {
	case SC_LOCAL:
		return "local";
	case SC_REMOTE:
		return "remote";
	case SC_DENIED:
		return "denied";
	case SC_EMULATED:
		return "emulated";
	}
	return "?";
}

static void format_result(const struct tev *e, char *buf, size_t cap)
{
	long r = e->base.result;

	if (!e->result_known) {
		snprintf(buf, cap, "?");
	} else if (r < 0 && r >= -4095) {
		const char *name = strerrorname_np((int)-r);
		if (name)
			snprintf(buf, cap, "-1 %s", name);
		else
			snprintf(buf, cap, "-1 E%ld", -r);
	} else if ((unsigned long)r > 0xffffffffu) {
		snprintf(buf, cap, "0x%lx", (unsigned long)r);
	} else {
		snprintf(buf, cap, "%ld", r);
	}
}

void diag_trace_line(struct tracer *t, struct tev *e)
{
	char res[64], what[64], extra[96] = "";
	const char *head = e->base.note;
	char *line = NULL;
	size_t len = 0;
	FILE *f;

	if (!e->base.noted) {
		const char *name =
		        e->t->cfg.syscall_name ? e->t->cfg.syscall_name(e->base.nr) : NULL;
		if (name)
			snprintf(what, sizeof(what), "%s", name);
		else
			snprintf(what, sizeof(what), "syscall_%ld", e->base.nr);
		head = what;
	}
	format_result(e, res, sizeof(res));
	if (e->end_reason && e->restarts)
		snprintf(extra, sizeof(extra), " [%s, %u restarts]", e->end_reason, e->restarts);
	else if (e->end_reason)
		snprintf(extra, sizeof(extra), " [%s]", e->end_reason);
	else if (e->restarts)
		snprintf(extra, sizeof(extra), " [%u restarts]", e->restarts);
	f = open_memstream(&line, &len);
	if (!f)
		return;
	fprintf(f, "[pid %d] %s -> %s: %s (%.2f ms)%s\n", (int)e->base.tid, head,
	        decision_name(e->base.noted ? e->base.decision : SC_LOCAL), res,
	        (double)(now_ns() - e->base.start_ns) / 1e6, extra);
	if (e->stack)
		fputs(e->stack, f);
	fclose(f);
	/* Straight to stderr, whatever the log level, in one write so lines of
	 * the supervisor and the program do not interleave mid-line. */
	(void)!write(STDERR_FILENO, line, len);
	free(line);
}

/* ---- symbols from ELF files (for frames libunwind cannot name) --------- */

/* Find the mapping of addr in /proc/<tid>/maps: the file and the file
 * offset of addr. */
static int map_lookup(pid_t tid, uint64_t addr, char *path, size_t cap, uint64_t *ret_off)
{
	char maps[64], line[PATH_MAX + 128];
	int r = -ENOENT;

	snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)tid);
	FILE *f = fopen(maps, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end, off;
		int pos = 0;
		if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %n", &start, &end, &off, &pos) < 3)
			continue;
		if (addr < start || addr >= end)
			continue;
		char *p = line + pos;
		p[strcspn(p, "\n")] = '\0';
		if (*p != '/')
			break;
		snprintf(path, cap, "%s", p);
		*ret_off = addr - start + off;
		r = 0;
		break;
	}
	fclose(f);
	return r;
}

/* A symbol without a size (hand-written assembly) is taken for an address
 * at most this far past its start. */
#define UNSIZED_SYM_REACH 256

/* Name the function containing file offset fo of the ELF file at path,
 * using .symtab (or .dynsym). Only a symbol that contains the address
 * counts: in a stripped library the nearest exported symbol before an
 * internal function can be megabytes away ("_dl_catch_error+0x8567" for
 * code in ld.so's open path), and naming it would mislead; then there is
 * no name and the caller shows the module and offset. Every offset is
 * checked against the size. */
static int elf_symbolize(const char *path, uint64_t fo, char *out, size_t cap, uint64_t *ret_delta)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	int r = -ENOENT;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || (size_t)sb.st_size < sizeof(Elf64_Ehdr)) {
		close(fd);
		return -EINVAL;
	}
	size_t size = (size_t)sb.st_size;
	const uint8_t *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -errno;
	Elf64_Ehdr eh;
	memcpy(&eh, m, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phoff > size || eh.e_phnum > (size - eh.e_phoff) / sizeof(Elf64_Phdr) ||
	    eh.e_shoff > size || eh.e_shnum > (size - eh.e_shoff) / sizeof(Elf64_Shdr))
		goto out;

	/* File offset -> link-time address through the PT_LOAD segments. */
	uint64_t va = 0;
	bool found = false;
	for (unsigned i = 0; i < eh.e_phnum && !found; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, m + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD && fo >= ph.p_offset && fo < ph.p_offset + ph.p_filesz) {
			va = fo - ph.p_offset + ph.p_vaddr;
			found = true;
		}
	}
	if (!found)
		goto out;

	uint64_t best = 0, best_delta = UINT64_MAX;
	for (unsigned want = SHT_SYMTAB; want; want = want == SHT_SYMTAB ? SHT_DYNSYM : 0) {
		for (unsigned i = 0; i < eh.e_shnum; i++) {
			Elf64_Shdr sh, strh;
			memcpy(&sh, m + eh.e_shoff + i * sizeof(sh), sizeof(sh));
			if (sh.sh_type != want || sh.sh_link >= eh.e_shnum || sh.sh_offset > size ||
			    sh.sh_size > size - sh.sh_offset)
				continue;
			memcpy(&strh, m + eh.e_shoff + sh.sh_link * sizeof(strh), sizeof(strh));
			if (strh.sh_offset > size || strh.sh_size > size - strh.sh_offset)
				continue;
			for (uint64_t o = 0; o + sizeof(Elf64_Sym) <= sh.sh_size;
			     o += sizeof(Elf64_Sym)) {
				Elf64_Sym s;
				memcpy(&s, m + sh.sh_offset + o, sizeof(s));
				if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || s.st_value > va ||
				    s.st_name >= strh.sh_size)
					continue;
				uint64_t d = va - s.st_value;
				if (d >= (s.st_size ? s.st_size : UNSIZED_SYM_REACH))
					continue;
				if (d < best_delta) {
					best_delta = d;
					best = s.st_name;
				}
			}
			if (best_delta != UINT64_MAX) {
				const char *name = (const char *)m + strh.sh_offset + best;
				size_t maxlen = strh.sh_size - best;
				snprintf(out, cap, "%.*s",
				         (int)strnlen(name, maxlen < cap ? maxlen : cap - 1), name);
				*ret_delta = best_delta;
				r = 0;
				goto out;
			}
		}
	}
out:
	munmap((void *)m, size);
	return r;
}

/* " function+0xoff (module)" when a symbol contains addr, else
 * " module+0xfileoff" (what `addr2line -e` and objdump take), or " ??"
 * outside any file mapping (JIT code, the vDSO). A return address
 * (ret) points after its call, which can be the first byte of the next
 * function: it is looked up one byte earlier, and shown as it is. */
static void describe_addr(FILE *f, pid_t tid, uint64_t addr, bool ret)
{
	char path[PATH_MAX], sym[SYM_MAX];
	uint64_t fo = 0, delta = 0;

	if (map_lookup(tid, addr - ret, path, sizeof(path), &fo) < 0) {
		fputs(" ??", f);
		return;
	}
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (elf_symbolize(path, fo, sym, sizeof(sym), &delta) == 0)
		fprintf(f, " %s+0x%" PRIx64 " (%s)", sym, delta + ret, base);
	else
		fprintf(f, " %s+0x%" PRIx64, base, fo + ret);
}

/* ---- stacks --------------------------------------------------------------- */

/* libunwind and capstone are loaded on the first stack captured, not
 * linked: only --trace-stacks uses them, and loading them cost every run
 * about 3 ms (common/dl.h). libunwind's unw_* names are macros for the
 * per-architecture symbols (_Ux86_64_step...), hence MT_STR. */
#define MT_STR_(x) #x
#define MT_STR(x) MT_STR_(x)

static struct {
	__typeof__(unw_create_addr_space) *create_addr_space;
	__typeof__(unw_destroy_addr_space) *destroy_addr_space;
	__typeof__(unw_set_caching_policy) *set_caching_policy;
	__typeof__(unw_init_remote) *init_remote;
	__typeof__(unw_get_reg) *get_reg;
	__typeof__(unw_step) *step;
} unw;
#define UNW_SYM(f) MT_DL_SYM(__typeof__(unw), f, MT_STR(unw_##f))
static const struct mt_dl_sym unw_syms[] = {
        UNW_SYM(create_addr_space),
        UNW_SYM(destroy_addr_space),
        UNW_SYM(set_caching_policy),
        UNW_SYM(init_remote),
        UNW_SYM(get_reg),
        UNW_SYM(step),
};

static struct {
	__typeof__(_UPT_create) *create;
	__typeof__(_UPT_destroy) *destroy;
	unw_accessors_t *accessors; /* data: the ptrace accessors table */
} upt;
static const struct mt_dl_sym upt_syms[] = {
        MT_DL_SYM(__typeof__(upt), create, "_UPT_create"),
        MT_DL_SYM(__typeof__(upt), destroy, "_UPT_destroy"),
        MT_DL_SYM(__typeof__(upt), accessors, "_UPT_accessors"),
};

static struct {
	__typeof__(cs_open) *open;
	__typeof__(cs_disasm) *disasm;
	__typeof__(cs_free) *free;
	__typeof__(cs_close) *close;
} cs;
static const struct mt_dl_sym cs_syms[] = {
        MT_DL_SYM(__typeof__(cs), open, "cs_open"),
        MT_DL_SYM(__typeof__(cs), disasm, "cs_disasm"),
        MT_DL_SYM(__typeof__(cs), free, "cs_free"),
        MT_DL_SYM(__typeof__(cs), close, "cs_close"),
};

/* 1 loaded, -1 failed (said once, in the first stack), 0 not tried. */
static int unw_state, cs_state;

static bool lib_ready(int *state, FILE *f, const char *what, int (*load)(char *, size_t))
{
	char why[512];
	if (*state == 0) {
		*state = load(why, sizeof(why)) == 0 ? 1 : -1;
		if (*state < 0)
			fprintf(f, "    (no %s: %s)\n", what, why);
	}
	return *state > 0;
}

static int load_unwind(char *why, size_t len)
{
	/* libunwind-ptrace needs libunwind-<arch> without naming it. */
	int r = mt_dl_load("libunwind-" MT_STR(UNW_TARGET) ".so.8", true, unw_syms,
	                   ARRAY_SIZE(unw_syms), &unw, why, len);
	if (r == 0)
		r = mt_dl_load("libunwind-ptrace.so.0", false, upt_syms, ARRAY_SIZE(upt_syms), &upt,
		               why, len);
	return r;
}

static int load_capstone(char *why, size_t len)
{
	/* The soname of the API the headers describe: cs_insn's layout
	 * changed between capstone 4 and 5. */
	return mt_dl_load("libcapstone.so." MT_STR(CS_API_MAJOR), false, cs_syms,
	                  ARRAY_SIZE(cs_syms), &cs, why, len);
}

static unsigned unwind_libunwind(struct tracer *t, FILE *f, pid_t tid)
{
	unw_cursor_t c;
	unsigned n = 0;
	void *ui;

	if (!lib_ready(&unw_state, f, "libunwind stacks", load_unwind))
		return 0;
	if (!t->unw_as) {
		unw_addr_space_t as = unw.create_addr_space(upt.accessors, 0);
		if (!as)
			return 0;
		unw.set_caching_policy(as, UNW_CACHE_GLOBAL);
		t->unw_as = as;
	}
	ui = upt.create(tid);
	if (!ui)
		return 0;
	if (unw.init_remote(&c, (unw_addr_space_t)t->unw_as, ui) == 0) {
		do {
			unw_word_t ip = 0;
			if (unw.get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0)
				break;
			/* Not unw_get_proc_name(): it answers with the nearest
			 * symbol before ip however far (see elf_symbolize). */
			fprintf(f, "    #%u 0x%lx", n, (unsigned long)ip);
			describe_addr(f, tid, ip, n > 0);
			fputc('\n', f);
			n++;
		} while (n < MAX_FRAMES && unw.step(&c) > 0);
	}
	upt.destroy(ui);
	return n;
}

/* Frame-pointer walk: [fp] = caller's fp, [fp + 8] = return address. Go
 * keeps frame pointers; libunwind gives up on static glibc/musl and Go
 * (no PT_GNU_EH_FRAME, no CFI in the syscall stubs). */
static void unwind_fp(FILE *f, pid_t tid, const struct arch_regs *regs)
{
	uint64_t fp = arch_fp(regs), sp = arch_sp(regs);

	fprintf(f, "    fp#0 0x%" PRIx64, arch_ip(regs));
	describe_addr(f, tid, arch_ip(regs), false);
	fputc('\n', f);
	for (unsigned n = 1; n < MAX_FRAMES; n++) {
		uint64_t pair[2];
		struct iovec l = {pair, sizeof(pair)}, r = {(void *)(uintptr_t)fp, sizeof(pair)};
		/* A frame pointer lies above sp, grows upwards, is aligned. */
		if (fp < sp || fp & 7 || fp - sp > (64u << 20))
			break;
		if (process_vm_readv(tid, &l, 1, &r, 1, 0) != sizeof(pair) || pair[1] == 0)
			break;
		fprintf(f, "    fp#%u 0x%" PRIx64, n, pair[1]);
		describe_addr(f, tid, pair[1], true);
		fputc('\n', f);
		if (pair[0] <= fp)
			break;
		sp = fp;
		fp = pair[0];
	}
}

static void disasm_site(struct tracer *t, FILE *f, pid_t tid, uint64_t ip)
{
	uint8_t code[16];
	uint64_t at = ip - arch_syscall_insn_len;
	struct iovec l = {code, sizeof(code)}, r = {(void *)(uintptr_t)at, sizeof(code)};
	cs_insn *insn;
	size_t n;

	if (!lib_ready(&cs_state, f, "disassembly", load_capstone))
		return;
	if (!t->cs_open) {
		csh h;
		if (cs.open((cs_arch)arch_cs_arch(), (cs_mode)arch_cs_mode(), &h) != CS_ERR_OK)
			return;
		t->cs_handle = h;
		t->cs_open = true;
	}
	if (process_vm_readv(tid, &l, 1, &r, 1, 0) != sizeof(code))
		return;
	n = cs.disasm((csh)t->cs_handle, code, sizeof(code), at, 2, &insn);
	fprintf(f, "    site 0x%" PRIx64 ":", at);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s %s%s%s", i ? " ;" : "", insn[i].mnemonic,
		        insn[i].op_str[0] ? " " : "", insn[i].op_str);
	fputc('\n', f);
	if (n)
		cs.free(insn, n);
}

void diag_capture_stack(struct tracer *t, struct tev *e)
{
	size_t len = 0;
	FILE *f = open_memstream(&e->stack, &len);
	pid_t tid = e->base.tid;

	if (!f)
		return;
	disasm_site(t, f, tid, arch_ip(&e->regs));
	/* libunwind names frames best where it works; the frame-pointer walk
	 * covers static binaries and Go, where it stops after frame 0. */
	if (unwind_libunwind(t, f, tid) < 3)
		unwind_fp(f, tid, &e->regs);
	fclose(f);
}

void diag_free(struct tracer *t)
{
	if (t->unw_as)
		unw.destroy_addr_space((unw_addr_space_t)t->unw_as);
	if (t->cs_open) {
		csh h = (csh)t->cs_handle;
		cs.close(&h);
	}
	t->unw_as = NULL;
	t->cs_open = false;
}
