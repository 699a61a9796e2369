/* The sc_*() calls are thin dispatchers to the backend of the event. */
#include "tracer/event.h"

#include <stdarg.h>
#include <stdio.h>

long sc_nr(const struct sc_event *ev)
{
	return ev->nr;
}
uint64_t sc_arg(const struct sc_event *ev, unsigned i)
{
	return i < 6 ? ev->args[i] : 0;
}
pid_t sc_tid(const struct sc_event *ev)
{
	return ev->tid;
}
pid_t sc_tgid(const struct sc_event *ev)
{
	return ev->tgid;
}
unsigned sc_caps(const struct sc_event *ev)
{
	return ev->be->caps;
}

int sc_read_mem(struct sc_event *ev, uint64_t addr, void *buf, size_t len)
{
	return ev->be->read_mem(ev, addr, buf, len);
}

ssize_t sc_read_str(struct sc_event *ev, uint64_t addr, char *buf, size_t cap)
{
	return ev->be->read_str(ev, addr, buf, cap);
}

int sc_write_mem(struct sc_event *ev, uint64_t addr, const void *buf, size_t len)
{
	return ev->be->write_mem(ev, addr, buf, len);
}

int sc_dup_fd(struct sc_event *ev, int tracee_fd)
{
	return ev->be->dup_fd(ev, tracee_fd);
}

int sc_scratch_put(struct sc_event *ev, const void *data, size_t len, uint64_t *ret_addr)
{
	if (!ev->be->scratch_put)
		return -EOPNOTSUPP;
	return ev->be->scratch_put(ev, data, len, ret_addr);
}

bool sc_armed(const struct sc_event *ev)
{
	return ev->be->armed && ev->be->armed(ev);
}

int sc_arm(struct sc_event *ev)
{
	if (!ev->be->arm)
		return -EOPNOTSUPP;
	return ev->be->arm(ev);
}

int sc_set_arg(struct sc_event *ev, unsigned i, uint64_t value)
{
	if (!(ev->be->caps & SC_CAP_SET_ARGS) || i >= 6)
		return -EOPNOTSUPP;
	return ev->be->set_arg(ev, i, value);
}

void sc_skip(struct sc_event *ev, long retval)
{
	ev->be->settle(ev, SC_SETTLE_SKIP, retval, NULL);
}

void sc_continue(struct sc_event *ev)
{
	ev->be->settle(ev, SC_SETTLE_CONTINUE, 0, NULL);
}

void sc_continue_exit(struct sc_event *ev, sc_exit_fn fn)
{
	ev->be->settle(ev, SC_SETTLE_CONTINUE_EXIT, 0, fn);
}

void sc_park(struct sc_event *ev)
{
	ev->be->settle(ev, SC_SETTLE_PARK, 0, NULL);
}

long sc_result(const struct sc_event *ev)
{
	return ev->result;
}

void sc_set_result(struct sc_event *ev, long retval)
{
	ev->be->set_result(ev, retval);
}

void sc_set_state(struct sc_event *ev, void *state, void (*destroy)(void *))
{
	ev->state = state;
	ev->state_destroy = destroy;
}

void *sc_state(const struct sc_event *ev)
{
	return ev->state;
}

bool sc_tracing(const struct sc_event *ev)
{
	return ev->tracing;
}

void sc_note(struct sc_event *ev, enum sc_decision d, const char *fmt, ...)
{
	va_list ap;

	ev->decision = d;
	ev->noted = true;
	va_start(ap, fmt);
	vsnprintf(ev->note, sizeof(ev->note), fmt, ap);
	va_end(ap);
}
