/* The pod files served at startup (resolv.conf naming the DNS relay,
 * hosts, hostname) without a stop per open.
 *
 * fs.c redirects their opens to the copies in the run directory, which
 * needs open and openat trapped. In local mode nothing else needs that,
 * yet every open of the program would stop (a python3 start opens 150
 * files, none of them these). So the program's process first enters a
 * mount namespace of its own and gets each copy bind-mounted over its pod
 * path: the kernel serves them, to every child too, and the filter traps
 * no open. Writable, as the kubelet's bind mounts of these files in a pod
 * are: what the program writes there it reads back, in the run's copy
 * (gone at exit), and the local file stays as it was. A process without the right to do that (no
 * CAP_SYS_ADMIN), or a pod path with no local file to mount over, keeps
 * the trapped opens (tracer_config.fallback_traps). */
#include "syscalls/internal.h"

#include <errno.h>
#include <sched.h>
#include <sys/mount.h>

int policy_mount_files(void *data)
{
	const struct policy *p = data;

	if (p->cfg.nfiles == 0)
		return 0;
	if (unshare(CLONE_NEWNS) < 0)
		return -errno;
	/* Slave before anything is mounted: with shared propagation (the
	 * systemd default) the copies would appear on the host's /etc. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return -errno;
	for (size_t i = 0; i < p->cfg.nfiles; i++) {
		const struct served_file *f = &p->cfg.files[i];
		/* A symlinked path (resolv.conf -> systemd's stub file) is
		 * followed: the mount covers its target, which is what an
		 * open of the path reaches. A missing local file, or a
		 * dangling link, fails: there is nothing to mount over. */
		if (mount(f->local_path, f->pod_path, NULL, MS_BIND, NULL) < 0)
			return -errno;
	}
	return 0;
}
