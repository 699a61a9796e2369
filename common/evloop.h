/* A single-threaded epoll loop with fd watches and one-shot timers.
 * The supervisor and the agent each run exactly one. Callbacks may add and
 * remove watches (including their own) and timers freely. */
#pragma once

#include <stdint.h>
#include <sys/epoll.h>

struct evloop;

typedef void (*evloop_fd_cb)(struct evloop *l, int fd, uint32_t events, void *data);
typedef void (*evloop_timer_cb)(struct evloop *l, void *data);

int evloop_new(struct evloop **ret);
void evloop_free(struct evloop *l);

/* Watch fd for EPOLLIN/EPOLLOUT/... (level-triggered). One watch per fd. */
int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fd_cb cb, void *data);
int evloop_mod(struct evloop *l, int fd, uint32_t events);
/* Safe to call from inside any callback, also for the fd being dispatched. */
void evloop_del(struct evloop *l, int fd);

/* One-shot timer after ms milliseconds. Returns an id > 0 or -errno. */
int64_t evloop_timer(struct evloop *l, uint64_t ms, evloop_timer_cb cb, void *data);
void evloop_timer_cancel(struct evloop *l, int64_t id);

/* A prepare hook runs before every wait for events: the place to flush
 * what callbacks queued during this iteration with one write, instead of
 * one write (or an EPOLLOUT round) per queued item. At most
 * EVLOOP_MAX_PREPARE hooks; adding returns -ENOSPC past that. */
#define EVLOOP_MAX_PREPARE 4
typedef void (*evloop_prepare_cb)(struct evloop *l, void *data);
int evloop_add_prepare(struct evloop *l, evloop_prepare_cb cb, void *data);
void evloop_del_prepare(struct evloop *l, evloop_prepare_cb cb, void *data);

/* Run until evloop_quit(); returns the code given to it. */
int evloop_run(struct evloop *l);
void evloop_quit(struct evloop *l, int code);
