/* File syscalls. Until general remote files exist, the supervisor serves a
 * fixed set of pod files (resolv.conf, hosts, hostname) from local copies:
 * an open of the pod path is rewritten to the copy, so every consumer
 * (glibc, musl's legacy open(), Go's openat) reads the pod's content. */
#include "syscalls/internal.h"
#include "common/util.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>

static const struct served_file *served(const struct policy *p, const char *path)
{
	for (size_t i = 0; i < p->cfg.nfiles; i++)
		if (strcmp(path, p->cfg.files[i].pod_path) == 0)
			return &p->cfg.files[i];
	return NULL;
}

/* Rewrite the path argument (index arg) if it names a served file. */
static void rewrite_path(struct sc_event *ev, struct policy *p, unsigned arg, const char *what)
{
	char path[PATH_MAX];
	const struct served_file *f;
	uint64_t addr;
	ssize_t n = sc_read_str(ev, sc_arg(ev, arg), path, sizeof(path));

	/* Relative paths and unreadable pointers are the kernel's business;
	 * the served files are all absolute pod paths. */
	if (n <= 0 || path[0] != '/' || !(f = served(p, path))) {
		if (sc_tracing(ev)) {
			if (n < 0)
				sc_note(ev, SC_LOCAL, "%s(<unreadable path>)", what);
			else
				sc_note(ev, SC_LOCAL, "%s(\"%s\") not a pod file", what, path);
		}
		sc_continue(ev);
		return;
	}
	if (sc_scratch_put(ev, f->local_path, strlen(f->local_path) + 1, &addr) < 0 ||
	    sc_set_arg(ev, arg, addr) < 0) {
		/* Without a rewrite the program reads its local file: say so. */
		if (sc_tracing(ev))
			sc_note(ev, SC_LOCAL, "%s(\"%s\") (cannot rewrite: local file)", what,
			        path);
		sc_continue(ev);
		return;
	}
	if (sc_tracing(ev))
		sc_note(ev, SC_REMOTE, "%s(\"%s\") -> pod copy %s", what, path, f->local_path);
	sc_continue(ev);
}

void fs_open(struct sc_event *ev, struct policy *p)
{
	rewrite_path(ev, p, 0, "open");
}

void fs_openat(struct sc_event *ev, struct policy *p)
{
	rewrite_path(ev, p, 1, "openat");
}

void fs_openat2(struct sc_event *ev, struct policy *p)
{
	rewrite_path(ev, p, 1, "openat2");
}
