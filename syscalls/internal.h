/* Shared by the handler files; not part of the module's API. */
#pragma once

#include "common/u64map.h"
#include "syscalls/syscalls.h"
#include "syscalls/table.h"

#include <sys/socket.h>
#include <sys/types.h>

struct policy {
	struct session *session;
	struct policy_config cfg;
	bool listen_noticed;
	bool in_warned;  /* one warning for a refused subscription */
	bool fs_noticed; /* one notice for a large file fetched whole */
	/* loopback destination -> when it was last found listening here or
	 * not (net.c, listening_cached) */
	struct u64map listening;
};

/* net.c helpers shared with incoming.c */
bool net_read_sockaddr(struct sc_event *ev, uint64_t ptr, uint64_t lenarg,
                       struct sockaddr_storage *ret, socklen_t *ret_len);
int net_put_sockaddr(struct sc_event *ev, uint64_t ptr, uint64_t lenptr,
                     const struct sockaddr_storage *ss, socklen_t len);
int net_sock_type(int fd);
ino_t net_fd_ino(int fd);
unsigned net_port_of(const struct sockaddr_storage *ss);
void net_note_addr(struct sc_event *ev, enum sc_decision d, const char *what,
                   const struct sockaddr_storage *ss, socklen_t len, const char *why);

/* Whether a handler family is enabled by the config (files_mounted: as
 * policy_traps). */
bool policy_wants(const struct policy *p, const struct sc_entry *e, bool files_mounted);
