/* Which processes are traced: for the session's sweep of UDP flows whose
 * program socket is gone (it scans their /proc/<pid>/fd). */
#include "tracer/internal.h"

size_t tracer_processes(const struct tracer *t, pid_t *out, size_t cap)
{
	size_t n = 0;

	for (size_t b = 0; b < THREAD_BUCKETS; b++) {
		for (const struct thread *th = t->buckets[b]; th; th = th->hnext) {
			bool seen = false;
			for (size_t i = 0; i < n && !seen; i++)
				seen = out[i] == th->tgid;
			if (!seen && n < cap)
				out[n++] = th->tgid;
		}
	}
	return n;
}
