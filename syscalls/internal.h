/* Shared by the handler files; not part of the module's API. */
#pragma once

#include "syscalls/syscalls.h"
#include "syscalls/table.h"

struct policy {
	struct session *session;
	struct policy_config cfg;
	bool listen_noticed;
};

/* Whether a handler family is enabled by the config. */
bool policy_wants(const struct policy *p, const struct sc_entry *e);
