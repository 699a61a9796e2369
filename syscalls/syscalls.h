/* The policy: what each trapped syscall means for this run. Handlers are
 * written against the backend-neutral sc_event (tracer/event.h) and the
 * session; they never call ptrace. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include "session/session.h"
#include "syscalls/net_filter.h"
#include "tracer/event.h"
#include "tracer/tracer.h"

struct policy;
struct fs_policy;
struct fs_cache;

/* A pod file served to the program from a local copy. */
struct served_file {
	const char *pod_path;   /* e.g. "/etc/resolv.conf" */
	const char *local_path; /* the copy in the run's private cache */
};

struct policy_config {
	bool outgoing_tcp;
	bool outgoing_udp;
	/* feature.network.outgoing: with ignore_localhost false, loopback
	 * destinations nothing listens on here go to the pod's loopback;
	 * out_filter (or NULL) chooses local or remote per destination. */
	bool ignore_localhost;
	const struct net_filter *out_filter;
	const struct served_file *files;
	size_t nfiles;
	/* feature.fs (syscalls/fs_policy.h) and the cache of pod files; NULL
	 * (or mode local): no path syscall is trapped but the served files'
	 * opens. Both are the caller's and outlive the policy. */
	const struct fs_policy *fs;
	struct fs_cache *fs_cache;
	/* Incoming traffic is not served (targetless, or not implemented):
	 * the first listen() gets one notice through this callback, saying
	 * why (incoming_why); NULL: listen() is not trapped at all. */
	void (*notice)(void *data, const char *msg);
	void *notice_data;
	/* Called once (with notice_data) when a large pod file had to be
	 * fetched whole because lazy reads are unavailable; may be NULL. */
	void (*fs_notice)(void *data, const char *msg);
	const char *incoming_why;
	/* feature.network.incoming; mode SESSION_IN_OFF: bind, getsockname
	 * and accept are not trapped, and listen() only for the notice.
	 * Arrays are the caller's and outlive the policy. */
	struct policy_incoming {
		int mode;                          /* enum session_in_mode */
		struct session_in_filter filter;   /* n == 0: none */
		const uint16_t *filter_ports;      /* pod ports the filter covers; */
		size_t n_filter_ports;             /* 0: all of them */
		const uint16_t (*port_mapping)[2]; /* [local, pod] */
		size_t n_port_mapping;
		const uint16_t (*listen_ports)[2]; /* [asked, actually bound] */
		size_t n_listen_ports;
		bool ignore_localhost;
		const uint16_t *ignore_ports;
		size_t n_ignore_ports;
		const uint16_t *ports; /* only these pod ports, if any */
		size_t n_ports;
	} incoming;
};

int policy_new(struct session *s, const struct policy_config *cfg, struct policy **ret);
void policy_free(struct policy *p);

/* The filter's trap and deny lists for this config, into caller arrays of
 * at least policy_max_rules() entries. files_mounted: the served files are
 * bind-mounted over their pod paths (policy_mount_files succeeded), so
 * their opens need no stop. */
size_t policy_max_rules(void);
size_t policy_traps(const struct policy *p, bool files_mounted, struct tracer_trap *out);
size_t policy_denies(const struct policy *p, struct tracer_deny *out);

/* tracer_config.child_setup (data: the policy), in the program's process
 * before execve: a mount namespace of its own, with each served file
 * bind-mounted over its pod path. 0, or -errno when the opens
 * must be trapped instead (policy_traps with files_mounted false).
 * Async-signal-safe. */
int policy_mount_files(void *policy);

/* tracer_config.on_syscall */
void policy_on_syscall(struct sc_event *ev, void *policy);

/* Name of a native syscall number for logs, or NULL. */
const char *policy_syscall_name(long nr);
