/* The declarative per-arch syscall table (one row per syscall number). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include "tracer/event.h"

struct policy;

enum sc_disposition {
	SC_PASS,    /* never trapped: runs natively */
	SC_HANDLED, /* trapped and given to the handler */
	SC_DENY,    /* refused in the kernel by the filter with err */
};

typedef void (*sc_handler)(struct sc_event *ev, struct policy *p);

struct sc_entry {
	const char *name;
	enum sc_disposition disp;
	sc_handler handler;
	int arg_nonzero; /* trap only when this argument is nonzero, or -1 */
	int err;         /* for SC_DENY */
	bool stub;       /* path rewrites may take the 1-stop stub (tracer.h) */
	/* Run natively, untrapped, when argument allow_arg has one of
	 * allow_bits set (tracer_trap); 0: always trapped. */
	unsigned allow_arg;
	unsigned allow_bits;
	/* Trapped only in armed processes (tracer_trap.armed_only). */
	bool armed_only;
	/* Run natively when argument below_arg is under below (a socket
	 * address too short for IP: tracer_trap.below); 0: no test. */
	unsigned below_arg;
	unsigned below;
};

extern const struct sc_entry sc_table_x86_64[];
extern const size_t sc_table_x86_64_size;

/* The handlers, one file per family. */
void net_connect(struct sc_event *ev, struct policy *p);
void net_getpeername(struct sc_event *ev, struct policy *p);
void net_sendto(struct sc_event *ev, struct policy *p);
void net_sendmsg(struct sc_event *ev, struct policy *p);
void net_recvfrom(struct sc_event *ev, struct policy *p);
void net_recvmsg(struct sc_event *ev, struct policy *p);
void net_listen(struct sc_event *ev, struct policy *p);
void net_bind(struct sc_event *ev, struct policy *p);
void net_getsockname(struct sc_event *ev, struct policy *p);
void net_accept(struct sc_event *ev, struct policy *p);
void fs_open(struct sc_event *ev, struct policy *p);
void fs_openat(struct sc_event *ev, struct policy *p);
void fs_openat2(struct sc_event *ev, struct policy *p);
void fs_creat(struct sc_event *ev, struct policy *p);
void fs_stat(struct sc_event *ev, struct policy *p);
void fs_lstat(struct sc_event *ev, struct policy *p);
void fs_newfstatat(struct sc_event *ev, struct policy *p);
void fs_fstat(struct sc_event *ev, struct policy *p);
void fs_statx(struct sc_event *ev, struct policy *p);
void fs_access(struct sc_event *ev, struct policy *p);
void fs_faccessat(struct sc_event *ev, struct policy *p);
void fs_readlink(struct sc_event *ev, struct policy *p);
void fs_readlinkat(struct sc_event *ev, struct policy *p);
void fs_statfs(struct sc_event *ev, struct policy *p);
void fs_chdir(struct sc_event *ev, struct policy *p);
void fs_getcwd(struct sc_event *ev, struct policy *p);
void fs_execve(struct sc_event *ev, struct policy *p);
void fs_execveat(struct sc_event *ev, struct policy *p);
void fs_mkdir(struct sc_event *ev, struct policy *p);
void fs_mkdirat(struct sc_event *ev, struct policy *p);
void fs_rmdir(struct sc_event *ev, struct policy *p);
void fs_unlink(struct sc_event *ev, struct policy *p);
void fs_unlinkat(struct sc_event *ev, struct policy *p);
void fs_rename(struct sc_event *ev, struct policy *p);
void fs_renameat(struct sc_event *ev, struct policy *p);
void fs_renameat2(struct sc_event *ev, struct policy *p);
void fs_truncate(struct sc_event *ev, struct policy *p);
void fs_sync_fd(struct sc_event *ev, struct policy *p);
void fs_xattr(struct sc_event *ev, struct policy *p);
