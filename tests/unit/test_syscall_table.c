/* The x86-64 syscall table must name every syscall of <asm/unistd_64.h>,
 * at its number, and nothing else: a syscall missing from the table would
 * have no disposition. The header is parsed at run time, so a newer
 * kernel header with new syscalls makes this test fail until the table
 * gets rows for them. */
#include "tests/unit/test.h"
#include "syscalls/syscalls.h"
#include "syscalls/table.h"
#include "syscalls/fs_policy.h"

#include <asm/unistd_64.h>
#include <errno.h>
#include <fcntl.h>

#define UNISTD "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"

TEST(table_matches_header)
{
	FILE *f = fopen(UNISTD, "r");
	char line[256], name[128];
	long nr;
	size_t seen = 0, named = 0;

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "#define __NR_%127s %ld", name, &nr) != 2)
			continue;
		CHECK(nr >= 0 && (size_t)nr < sc_table_x86_64_size);
		if (!sc_table_x86_64[nr].name || strcmp(sc_table_x86_64[nr].name, name) != 0) {
			fprintf(stderr, "syscall %ld: header says %s, table says %s\n", nr, name,
			        sc_table_x86_64[nr].name ? sc_table_x86_64[nr].name : "(none)");
			CHECK(0);
		}
		seen++;
	}
	fclose(f);
	for (size_t i = 0; i < sc_table_x86_64_size; i++)
		named += sc_table_x86_64[i].name != NULL;
	CHECK(seen > 300);
	CHECK_EQ(named, seen);
}

TEST(dispositions_are_consistent)
{
	for (size_t i = 0; i < sc_table_x86_64_size; i++) {
		const struct sc_entry *e = &sc_table_x86_64[i];
		if (!e->name)
			continue;
		CHECK((e->disp == SC_HANDLED) == (e->handler != NULL));
		CHECK(e->disp != SC_DENY || e->err > 0);
		CHECK(e->arg_nonzero >= -1 && e->arg_nonzero < 6);
	}
	/* The escapes DESIGN.md names are denied in the kernel. */
	CHECK_EQ(sc_table_x86_64[__NR_io_uring_setup].disp, SC_DENY);
	CHECK_EQ(sc_table_x86_64[__NR_io_uring_setup].err, ENOSYS);
	CHECK_EQ(sc_table_x86_64[__NR_clone3].disp, SC_DENY);
	CHECK_EQ(sc_table_x86_64[__NR_connect].disp, SC_HANDLED);
	/* The 1-stop stub: path syscalls that return to their caller only.
	 * A successful execve never comes back to the stub (and its old mm
	 * is gone), so it keeps the exit stop. */
	CHECK(sc_table_x86_64[__NR_openat].stub && sc_table_x86_64[__NR_open].stub &&
	      sc_table_x86_64[__NR_newfstatat].stub && sc_table_x86_64[__NR_openat2].stub);
	CHECK(!sc_table_x86_64[__NR_execve].stub && !sc_table_x86_64[__NR_execveat].stub);
	for (size_t i = 0; i < sc_table_x86_64_size; i++)
		CHECK(!sc_table_x86_64[i].stub || sc_table_x86_64[i].disp == SC_HANDLED);
	/* fstat-style stat calls run natively: flags are newfstatat's 4th
	 * argument, statx's 3rd; nothing else skips the filter by a flag. */
	CHECK_EQ(sc_table_x86_64[__NR_newfstatat].allow_arg, 3);
	CHECK_EQ(sc_table_x86_64[__NR_newfstatat].allow_bits, AT_EMPTY_PATH);
	CHECK_EQ(sc_table_x86_64[__NR_statx].allow_arg, 2);
	CHECK_EQ(sc_table_x86_64[__NR_statx].allow_bits, AT_EMPTY_PATH);
	size_t flagged = 0;
	for (size_t i = 0; i < sc_table_x86_64_size; i++)
		flagged += sc_table_x86_64[i].allow_bits != 0;
	CHECK_EQ(flagged, 2);
	/* fstat(2) has no flag: trapped only in armed processes. */
	size_t armed_only = 0;
	for (size_t i = 0; i < sc_table_x86_64_size; i++)
		armed_only += sc_table_x86_64[i].armed_only;
	CHECK(sc_table_x86_64[__NR_fstat].armed_only && sc_table_x86_64[__NR_fstat].handler);
	CHECK_EQ(armed_only, 1);
}

TEST(filter_lists_follow_config)
{
	struct policy_config all = {.outgoing_tcp = true, .outgoing_udp = true, .nfiles = 1};
	struct policy_config none = {0};
	struct policy *p;
	struct tracer_trap traps[512];
	struct tracer_deny denies[512];
	size_t n_all, n_none;

	CHECK(policy_max_rules() <= 512);
	policy_new(NULL, &all, &p);
	n_all = policy_traps(p, false, traps);
	CHECK(policy_denies(p, denies) == 4);
	policy_free(p);
	policy_new(NULL, &none, &p);
	n_none = policy_traps(p, false, traps);
	policy_free(p);
	for (size_t i = 0; i < n_all; i++) {
		CHECK_EQ(traps[i].stub, sc_table_x86_64[traps[i].nr].stub);
		CHECK_EQ(traps[i].allow_arg, sc_table_x86_64[traps[i].nr].allow_arg);
		CHECK_EQ(traps[i].allow_bits, sc_table_x86_64[traps[i].nr].allow_bits);
		CHECK_EQ(traps[i].armed_only, sc_table_x86_64[traps[i].nr].armed_only);
	}
	/* With nothing remote, no syscall stops the program. */
	CHECK_EQ(n_none, 0);
	CHECK(n_all >= 9);
	/* Served pod files bind-mounted: their opens need no stop. */
	size_t n_mounted;
	bool open_trapped = false;
	policy_new(NULL, &all, &p);
	n_mounted = policy_traps(p, true, traps);
	policy_free(p);
	for (size_t i = 0; i < n_mounted; i++)
		open_trapped |= traps[i].nr == __NR_open || traps[i].nr == __NR_openat ||
		                traps[i].nr == __NR_openat2;
	CHECK(!open_trapped);
	CHECK_EQ(n_mounted, n_all - 3);
}

static bool traps_nr(const struct policy_config *cfg, long nr)
{
	struct tracer_trap traps[512];
	struct policy *p;
	size_t n;
	bool found = false;

	policy_new(NULL, cfg, &p);
	n = policy_traps(p, false, traps);
	policy_free(p);
	for (size_t i = 0; i < n; i++)
		found |= traps[i].nr == nr;
	return found;
}

/* getcwd stops the program only when feature.fs can put it in a pod
 * directory: local mode leaves it native. */
TEST(getcwd_trapped_with_remote_files_only)
{
	struct fs_policy_config fc = {.mode = FS_MODE_READ};
	struct fs_policy *fs_read, *fs_local;
	char *why = NULL;
	/* Never dereferenced by policy_traps: only "there is a cache". */
	struct fs_cache *cache = (struct fs_cache *)&fc;

	CHECK_EQ(fs_policy_new(&fc, &fs_read, &why), 0);
	fc.mode = FS_MODE_LOCAL;
	CHECK_EQ(fs_policy_new(&fc, &fs_local, &why), 0);
	CHECK(traps_nr(&(struct policy_config){.fs = fs_read, .fs_cache = cache}, __NR_getcwd));
	CHECK(traps_nr(&(struct policy_config){.fs = fs_read, .fs_cache = cache}, __NR_chdir));
	CHECK(!traps_nr(&(struct policy_config){.fs = fs_local, .fs_cache = cache}, __NR_getcwd));
	CHECK(!traps_nr(&(struct policy_config){.fs = fs_read}, __NR_getcwd));
	CHECK(!traps_nr(&(struct policy_config){.outgoing_tcp = true, .nfiles = 1}, __NR_getcwd));
	CHECK(!sc_table_x86_64[__NR_getcwd].stub);
	fs_policy_free(fs_read);
	fs_policy_free(fs_local);
}

TEST_MAIN()
