/* Thread and address-space records of the ptrace engine. */
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "tracer/internal.h"

static unsigned bucket_of(pid_t tid)
{
	return (unsigned)tid % THREAD_BUCKETS;
}

struct thread *thread_find(struct tracer *t, pid_t tid)
{
	for (struct thread *th = t->buckets[bucket_of(tid)]; th; th = th->hnext)
		if (th->tid == tid)
			return th;
	return NULL;
}

static void link_thread(struct tracer *t, struct thread *th)
{
	unsigned b = bucket_of(th->tid);

	th->hnext = t->buckets[b];
	t->buckets[b] = th;
}

static void unlink_thread(struct tracer *t, struct thread *th)
{
	for (struct thread **pp = &t->buckets[bucket_of(th->tid)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == th) {
			*pp = th->hnext;
			return;
		}
	}
}

struct thread *thread_new(struct tracer *t, pid_t tid, pid_t tgid, struct mm *mm)
{
	struct thread *th = xcalloc(1, sizeof(*th));

	th->tid = tid;
	th->tgid = tgid;
	th->mm = mm;
	th->state = TS_RUNNING;
	th->pidfd = -1;
	th->announced = true;
	link_thread(t, th);
	t->nthreads++;
	return th;
}

void thread_rekey(struct tracer *t, struct thread *th, pid_t new_tid)
{
	unlink_thread(t, th);
	th->tid = new_tid;
	link_thread(t, th);
}

void thread_free(struct tracer *t, struct thread *th)
{
	if (!th)
		return;
	unlink_thread(t, th);
	t->nthreads--;
	/* Its parent's clone event may still be queued: remember the tid so
	 * that the late event does not create a record for a dead thread. */
	if (!th->announced)
		ghost_add(t, th->tid);
	if (th->mm) {
		mm_remove_waiter(th->mm, th);
		if (th->mm->injector == th)
			th->mm->injector = NULL;
		mm_unref(th->mm);
	}
	if (th->pidfd >= 0)
		close(th->pidfd);
	free(th);
}

struct mm *mm_new(void)
{
	struct mm *mm = xcalloc(1, sizeof(*mm));

	mm->refs = 1;
	mm->memfd = -1;
	return mm;
}

struct mm *mm_ref(struct mm *mm)
{
	mm->refs++;
	return mm;
}

void mm_unref(struct mm *mm)
{
	if (!mm || --mm->refs > 0)
		return;
	if (mm->memfd >= 0)
		close(mm->memfd);
	free(mm);
}

void mm_remove_waiter(struct mm *mm, struct thread *th)
{
	for (struct thread **pp = &mm->waiters; *pp; pp = &(*pp)->next_waiter) {
		if (*pp == th) {
			*pp = th->next_waiter;
			th->next_waiter = NULL;
			return;
		}
	}
}

void ghost_add(struct tracer *t, pid_t tid)
{
	t->ghosts[t->nghost++ % GHOSTS] = tid;
}

bool ghost_take(struct tracer *t, pid_t tid)
{
	for (unsigned i = 0; i < GHOSTS; i++) {
		if (t->ghosts[i] == tid) {
			t->ghosts[i] = 0;
			return true;
		}
	}
	return false;
}
