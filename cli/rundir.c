/* The run's private directory: copies of the pod files the program reads.
 * Mode 0700 under $XDG_RUNTIME_DIR or /tmp, named after our pid, so that a
 * later run can remove what a killed run left behind. */
#include "cli/cli.h"
#include "common/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define RUNDIR_PREFIX "mirrord-trace-"

/* Under /tmp, our runs live in a directory of their own per user
 * (/tmp/mirrord-trace-UID, 0700): the search for a killed run's leftovers
 * then reads only our entries, not all of /tmp (26,000 entries made it
 * 12 ms of every start-up on a busy machine). It is used only if it is
 * a real directory of ours that nobody else can enter; anything else
 * there (another user's trap, say) leaves us in /tmp itself, where
 * mkdtemp is safe anyway. */
static char *tmp_base(void)
{
	char *dir = xasprintf("/tmp/" RUNDIR_PREFIX "%u", (unsigned)getuid());
	struct stat sb;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		free(dir);
		return xstrdup("/tmp");
	}
	if (lstat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode) || sb.st_uid != getuid() ||
	    (sb.st_mode & 077)) {
		free(dir);
		return xstrdup("/tmp");
	}
	return dir;
}

static char *base_dir(void)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	struct stat sb;

	if (x && *x == '/' && stat(x, &sb) == 0 && S_ISDIR(sb.st_mode))
		return xstrdup(x);
	return tmp_base();
}

void rundir_remove(const char *path)
{
	_cleanup_free_ char *lazy = xasprintf("%s/lazy", path);

	/* A killed run that could not use a mount namespace of its own
	 * leaves its FUSE mount of large files (session/fuse.h) behind,
	 * aborted (its /dev/fuse fd died with it): detach it first, so the
	 * walk below does not descend into it. */
	(void)umount2(lazy, MNT_DETACH);
	/* Recursive: the remote-file cache keeps the pod's tree below it. */
	(void)rm_tree(path);
}

/* Remove directories of earlier runs whose supervisor is gone (killed with
 * SIGKILL: it could not clean up). Only ours: same owner, our prefix. */
static void prune_stale(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		uint64_t pid;
		char num[32], *dash, path[4096];
		struct stat sb;

		if (strncmp(de->d_name, RUNDIR_PREFIX, strlen(RUNDIR_PREFIX)) != 0)
			continue;
		snprintf(num, sizeof(num), "%s", de->d_name + strlen(RUNDIR_PREFIX));
		dash = strchr(num, '-');
		if (!dash)
			continue;
		*dash = 0;
		if (parse_u64(num, INT32_MAX, &pid) < 0 || kill((pid_t)pid, 0) == 0 ||
		    errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, de->d_name);
		if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode) && sb.st_uid == getuid())
			rundir_remove(path);
	}
	closedir(d);
}

int rundir_create(char **ret_path)
{
	_cleanup_free_ char *base = base_dir();
	char *path;

	prune_stale(base);
	path = xasprintf("%s/" RUNDIR_PREFIX "%d-XXXXXX", base, (int)getpid());
	if (!mkdtemp(path)) {
		int r = -errno;
		free(path);
		return r;
	}
	/* mkdtemp already uses 0700; state the invariant explicitly: the
	 * copies may hold secrets of the pod, no other local user reads them. */
	chmod(path, 0700);
	*ret_path = path;
	return 0;
}

int rundir_write(const char *dir, const char *name, const char *data, size_t len, char **ret_path)
{
	char *path = xasprintf("%s/%s", dir, name);
	_cleanup_close_ int fd =
	        open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	int r;

	if (fd < 0) {
		r = -errno;
		free(path);
		return r;
	}
	r = write_all(fd, data, len);
	if (r < 0) {
		free(path);
		return r;
	}
	*ret_path = path;
	return 0;
}
