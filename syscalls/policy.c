/* Dispatch from the table, and the filter lists derived from it. */
#include "syscalls/internal.h"
#include "common/util.h"
#include "syscalls/fs_policy.h"

#include <string.h>

int policy_new(struct session *s, const struct policy_config *cfg, struct policy **ret)
{
	struct policy *p = xcalloc(1, sizeof(*p));

	p->session = s;
	p->cfg = *cfg;
	*ret = p;
	return 0;
}

void policy_free(struct policy *p)
{
	if (p)
		u64map_free(&p->listening);
	free(p);
}

size_t policy_max_rules(void)
{
	return sc_table_x86_64_size;
}

/* The file handlers in three groups: opens (also for the served pod
 * files), the other path reads, and what only write mode needs. */
static bool is_open(sc_handler h)
{
	return h == fs_open || h == fs_openat || h == fs_openat2;
}

static bool is_fs_read(sc_handler h)
{
	return h == fs_creat || h == fs_stat || h == fs_lstat || h == fs_newfstatat ||
	       h == fs_fstat || h == fs_statx || h == fs_access || h == fs_faccessat ||
	       h == fs_readlink || h == fs_readlinkat || h == fs_statfs || h == fs_chdir ||
	       h == fs_getcwd || h == fs_execve || h == fs_execveat || h == fs_xattr;
}

static bool is_fs_write(sc_handler h)
{
	return h == fs_mkdir || h == fs_mkdirat || h == fs_rmdir || h == fs_unlink ||
	       h == fs_unlinkat || h == fs_rename || h == fs_renameat || h == fs_renameat2 ||
	       h == fs_truncate || h == fs_sync_fd;
}

bool policy_wants(const struct policy *p, const struct sc_entry *e, bool files_mounted)
{
	bool fs_on = p->cfg.fs && p->cfg.fs_cache && fs_policy_mode(p->cfg.fs) != FS_MODE_LOCAL;

	if (is_open(e->handler))
		return (p->cfg.nfiles > 0 && !files_mounted) || fs_on;
	if (is_fs_read(e->handler))
		return fs_on;
	if (is_fs_write(e->handler))
		return fs_on && fs_policy_remote_writes(p->cfg.fs);
	if (e->handler == net_sendto || e->handler == net_sendmsg || e->handler == net_recvfrom ||
	    e->handler == net_recvmsg)
		return p->cfg.outgoing_udp;
	bool in_on = p->cfg.incoming.mode != SESSION_IN_OFF;
	if (e->handler == net_listen)
		return p->cfg.notice != NULL || in_on;
	if (e->handler == net_bind || e->handler == net_getsockname || e->handler == net_accept)
		return in_on;
	if (e->handler == net_getpeername)
		return p->cfg.outgoing_tcp || p->cfg.outgoing_udp || in_on;
	if (e->handler == net_connect)
		return p->cfg.outgoing_tcp || p->cfg.outgoing_udp;
	return true;
}

size_t policy_traps(const struct policy *p, bool files_mounted, struct tracer_trap *out)
{
	size_t n = 0;

	for (size_t nr = 0; nr < sc_table_x86_64_size; nr++) {
		const struct sc_entry *e = &sc_table_x86_64[nr];
		if (e->name && e->disp == SC_HANDLED && policy_wants(p, e, files_mounted))
			out[n++] = (struct tracer_trap){.nr = (int)nr,
			                                .arg_nonzero = e->arg_nonzero,
			                                .stub = e->stub,
			                                .allow_arg = e->allow_arg,
			                                .allow_bits = e->allow_bits,
			                                .armed_only = e->armed_only,
			                                .below_arg = e->below_arg,
			                                .below = e->below};
	}
	return n;
}

size_t policy_denies(const struct policy *p, struct tracer_deny *out)
{
	size_t n = 0;

	for (size_t nr = 0; nr < sc_table_x86_64_size; nr++) {
		const struct sc_entry *e = &sc_table_x86_64[nr];
		if (e->name && e->disp == SC_DENY)
			out[n++] = (struct tracer_deny){.nr = (int)nr, .err = e->err};
	}
	return n;
}

void policy_on_syscall(struct sc_event *ev, void *data)
{
	struct policy *p = data;
	long nr = sc_nr(ev);

	if (nr < 0 || (size_t)nr >= sc_table_x86_64_size || !sc_table_x86_64[nr].handler) {
		/* Only filter-routed syscalls arrive here; anything else is a
		 * filter/table mismatch, and running it natively is safe. */
		sc_continue(ev);
		return;
	}
	sc_table_x86_64[nr].handler(ev, p);
}

const char *policy_syscall_name(long nr)
{
	if (nr < 0 || (size_t)nr >= sc_table_x86_64_size)
		return NULL;
	return sc_table_x86_64[nr].name;
}
