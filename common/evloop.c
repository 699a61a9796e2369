#include "common/evloop.h"
#include "common/util.h"

#include <string.h>
#include <sys/epoll.h>

/* Watches live in a table indexed by fd; an fd number is unique at any time
 * in one process, and the table grows to the highest fd seen. A deleted
 * watch is marked dead so that events already fetched for it in the current
 * epoll_wait batch are dropped instead of dispatched. */
struct watch {
	evloop_fd_cb cb;
	void *data;
	uint64_t gen;
	bool live;
};

struct timer {
	int64_t id;
	uint64_t due_ns;
	evloop_timer_cb cb;
	void *data;
};

struct evloop {
	int epfd;
	struct watch *w;
	size_t nw;
	struct timer *t;
	size_t nt, capt;
	int64_t next_timer_id;
	uint64_t gen;
	bool quit;
	int code;
	struct {
		evloop_prepare_cb cb;
		void *data;
	} prep[EVLOOP_MAX_PREPARE];
	size_t nprep;
};

#define EVLOOP_BATCH 64

int evloop_new(struct evloop **ret)
{
	struct evloop *l = xcalloc(1, sizeof(*l));

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int r = -errno;
		free(l);
		return r;
	}
	*ret = l;
	return 0;
}

void evloop_free(struct evloop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l->w);
	free(l->t);
	free(l);
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fd_cb cb, void *data)
{
	struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)fd};

	if (fd < 0)
		return -EBADF;
	if ((size_t)fd >= l->nw) {
		size_t n = (size_t)fd + 64;
		l->w = xrealloc(l->w, n * sizeof(*l->w));
		memset(l->w + l->nw, 0, (n - l->nw) * sizeof(*l->w));
		l->nw = n;
	}
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	l->w[fd] = (struct watch){.cb = cb, .data = data, .gen = ++l->gen, .live = true};
	return 0;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)fd};

	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	return 0;
}

void evloop_del(struct evloop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nw || !l->w[fd].live)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->w[fd].live = false;
}

int64_t evloop_timer(struct evloop *l, uint64_t ms, evloop_timer_cb cb, void *data)
{
	if (l->nt == l->capt) {
		l->capt = l->capt ? l->capt * 2 : 16;
		l->t = xrealloc(l->t, l->capt * sizeof(*l->t));
	}
	l->t[l->nt++] = (struct timer){
	        .id = ++l->next_timer_id,
	        .due_ns = now_ns() + ms * 1000000ull,
	        .cb = cb,
	        .data = data,
	};
	return l->next_timer_id;
}

void evloop_timer_cancel(struct evloop *l, int64_t id)
{
	for (size_t i = 0; i < l->nt; i++) {
		if (l->t[i].id == id) {
			l->t[i] = l->t[--l->nt];
			return;
		}
	}
}

void evloop_quit(struct evloop *l, int code)
{
	l->quit = true;
	l->code = code;
}

static int next_timeout_ms(struct evloop *l)
{
	uint64_t now = now_ns(), best = UINT64_MAX;

	for (size_t i = 0; i < l->nt; i++)
		if (l->t[i].due_ns < best)
			best = l->t[i].due_ns;
	if (best == UINT64_MAX)
		return -1;
	if (best <= now)
		return 0;
	uint64_t ms = (best - now + 999999) / 1000000;
	return ms > 60000 ? 60000 : (int)ms;
}

static void run_timers(struct evloop *l)
{
	uint64_t now = now_ns();

	/* Restart the scan after each callback: it may add or cancel timers. */
	for (bool fired = true; fired && !l->quit;) {
		fired = false;
		for (size_t i = 0; i < l->nt; i++) {
			if (l->t[i].due_ns <= now) {
				struct timer t = l->t[i];
				l->t[i] = l->t[--l->nt];
				t.cb(l, t.data);
				fired = true;
				break;
			}
		}
	}
}

int evloop_add_prepare(struct evloop *l, evloop_prepare_cb cb, void *data)
{
	if (l->nprep == EVLOOP_MAX_PREPARE)
		return -ENOSPC;
	l->prep[l->nprep].cb = cb;
	l->prep[l->nprep].data = data;
	l->nprep++;
	return 0;
}

void evloop_del_prepare(struct evloop *l, evloop_prepare_cb cb, void *data)
{
	for (size_t i = 0; i < l->nprep; i++) {
		if (l->prep[i].cb == cb && l->prep[i].data == data) {
			l->prep[i] = l->prep[--l->nprep];
			return;
		}
	}
}

int evloop_run(struct evloop *l)
{
	struct epoll_event evs[EVLOOP_BATCH];
	uint64_t gens[EVLOOP_BATCH];

	while (!l->quit) {
		/* A hook may delete itself: walk a copy. */
		size_t np = l->nprep;
		__typeof__(l->prep[0]) prep[EVLOOP_MAX_PREPARE];
		memcpy(prep, l->prep, sizeof(prep[0]) * np);
		for (size_t i = 0; i < np && !l->quit; i++)
			prep[i].cb(l, prep[i].data);
		if (l->quit)
			break;
		int n = epoll_wait(l->epfd, evs, EVLOOP_BATCH, next_timeout_ms(l));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* Remember which watch each event belongs to: a callback may
		 * close an fd and a later one reuse the number in this batch. */
		for (int i = 0; i < n; i++) {
			int fd = (int)evs[i].data.u64;
			gens[i] = l->w[fd].live ? l->w[fd].gen : 0;
		}
		for (int i = 0; i < n && !l->quit; i++) {
			int fd = (int)evs[i].data.u64;
			struct watch *w = &l->w[fd];
			if (!w->live || w->gen != gens[i])
				continue;
			w->cb(l, fd, evs[i].events, w->data);
		}
		run_timers(l);
	}
	return l->code;
}
