/* fsat: execveat, fchdir and getcwd on pod paths, for
 * tests/e2e/remote_fs.sh (not part of probes.sh: it takes paths, not the
 * fixture's addresses). Every
 * exec runs NAME with argv {"echo", MSG}: a copy of busybox in the pod
 * prints MSG, so the output shows that the pod's binary ran. A failed
 * call prints its result ("execveat = -ENOENT").
 *
 *   fsat dirfd DIR NAME MSG     execveat(open(DIR, O_PATH), NAME), with
 *                               garbage in the upper half of dirfd and flags
 *   fsat cwd DIR NAME MSG       chdir(DIR), execveat(AT_FDCWD, NAME)
 *   fsat nofollow DIR NAME MSG  execveat(dirfd, NAME, AT_SYMLINK_NOFOLLOW)
 *   fsat fexecve PATH MSG       execveat(open(PATH), "", AT_EMPTY_PATH)
 *   fsat fchdir DIR FILE        fchdir(open(DIR)), then FILE's content, the
 *                               names in "." (getdents64, sorted) and getcwd
 *   fsat getcwd DIR SUB         the cwd as the program sees it after
 *                               chdir(DIR), after chdir("/") and after
 *                               fchdir(open(SUB)): raw getcwd with the exact
 *                               size, one byte less, a buffer ending at a
 *                               guard page, a bad pointer; libc's getcwd;
 *                               readlink of /proc/self/cwd (also truncated)
 *                               and of "/proc/self/cwd/" (EINVAL) */
#include "probe.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>

extern char **environ;

static void exec_at(int dirfd, const char *name, const char *msg, uint64_t flags)
{
	char *argv[] = {(char *)"echo", (char *)msg, NULL};
	long r = raw_syscall(SYS_execveat, (uint64_t)(unsigned)dirfd | HI_FD, P(name), P(argv),
	                     P(environ), flags | HI_LEN, 0);

	say("execveat = %s", res(r));
	exit(1);
}

static int open_dir(const char *dir, int flags)
{
	int fd = open(dir, flags);

	if (fd < 0) {
		say("open(%s) = %s", dir, res(-errno));
		exit(1);
	}
	return fd;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* At most this many names: the test directories hold a handful. */
#define MAX_NAMES 64

static void list_cwd(void)
{
	char buf[8192], *names[MAX_NAMES], line[1024] = "";
	size_t n = 0, len = 0;
	int fd = open(".", O_RDONLY | O_DIRECTORY);
	long got;

	if (fd < 0) {
		say("open(.) = %s", res(-errno));
		return;
	}
	while ((got = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < got;) {
			/* struct linux_dirent64: ino, off, u16 reclen, u8 type,
			 * name (libcs disagree on the name of the struct) */
			unsigned short reclen;
			const char *name = buf + off + 19;
			memcpy(&reclen, buf + off + 16, sizeof(reclen));
			if (strcmp(name, ".") && strcmp(name, "..") && n < MAX_NAMES)
				names[n++] = strdup(name);
			off += reclen;
		}
	}
	close(fd);
	qsort(names, n, sizeof(names[0]), by_name);
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(line + len, sizeof(line) - len, "%s%s", i ? " " : "", names[i]);
		if (w > 0 && (size_t)w < sizeof(line) - len)
			len += (size_t)w;
		free(names[i]);
	}
	say("ls . = %s", line);
}

static int do_fchdir(const char *dir, const char *file)
{
	char buf[256], cwd[PATH_MAX];
	int fd = open_dir(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long r = raw_syscall(SYS_fchdir, (uint64_t)(unsigned)fd | HI_FD, 0, 0, 0, 0, 0);
	ssize_t n;

	say("fchdir = %s", res(r));
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		say("open(%s) = %s", file, res(-errno));
	} else {
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = 0;
		buf[strcspn(buf, "\n")] = 0;
		say("%s = %s", file, buf);
		close(fd);
	}
	list_cwd();
	say("getcwd = %s", getcwd(cwd, sizeof(cwd)) ? cwd : res(-errno));
	return 0;
}

/* One line per view of the cwd, each prefixed with tag. guard is a page
 * the program cannot touch, with a writable page before it. */
static void show_cwd(const char *tag, char *guard)
{
	char buf[PATH_MAX], *end;
	long r = raw_syscall(SYS_getcwd, P(buf), sizeof(buf), 0, 0, 0, 0);
	ssize_t n;

	say("%s getcwd = %s (%s)", tag, r > 0 ? buf : "", res(r));
	if (r <= 0)
		return;
	/* The exact length, the last byte right before the guard page: the
	 * kernel writes r bytes even when size says there is more room. */
	end = guard - r;
	r = raw_syscall(SYS_getcwd, P(end), PATH_MAX, 0, 0, 0, 0);
	say("%s getcwd at guard page = %s (%s)", tag, r > 0 ? end : "", res(r));
	if (r <= 0)
		return;
	say("%s getcwd size %ld = %s", tag, r - 1,
	    res(raw_syscall(SYS_getcwd, P(buf), (uint64_t)r - 1, 0, 0, 0, 0)));
	say("%s getcwd size %ld = %s", tag, r,
	    res(raw_syscall(SYS_getcwd, P(buf), (uint64_t)r, 0, 0, 0, 0)));
	say("%s getcwd bad pointer = %s", tag,
	    res(raw_syscall(SYS_getcwd, P(guard), (uint64_t)r, 0, 0, 0, 0)));
	char *libc = getcwd(NULL, 0);
	say("%s libc getcwd = %s", tag, libc ? libc : res(-errno));
	free(libc);
	n = readlink("/proc/self/cwd", buf, sizeof(buf));
	say("%s readlink /proc/self/cwd = %.*s (%s)", tag, (int)(n > 0 ? n : 0), buf,
	    res(n < 0 ? -errno : n));
	n = readlink("/proc/self/cwd/", buf, sizeof(buf));
	say("%s readlink /proc/self/cwd/ = %s", tag, res(n < 0 ? -errno : n));
	n = raw_syscall(SYS_readlinkat, (uint64_t)(unsigned)AT_FDCWD | HI_FD,
	                P("/proc/thread-self/cwd"), P(buf), 4 | HI_LEN, 0, 0);
	say("%s readlinkat /proc/thread-self/cwd size 4 = %.*s (%s)", tag, (int)(n > 0 ? n : 0),
	    buf, res(n));
}

static int do_getcwd(const char *dir, const char *sub)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	char *pages =
	        mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *guard = pages + pg;
	int fd;

	if (pages == MAP_FAILED || mprotect(guard, pg, PROT_NONE) < 0)
		die("guard page: %s", strerror(errno));
	say("chdir = %s", res(raw_syscall(SYS_chdir, P(dir), 0, 0, 0, 0, 0)));
	show_cwd("chdir", guard);
	say("chdir / = %s", res(raw_syscall(SYS_chdir, P("/"), 0, 0, 0, 0, 0)));
	show_cwd("local", guard);
	fd = open_dir(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	say("fchdir = %s",
	    res(raw_syscall(SYS_fchdir, (uint64_t)(unsigned)fd | HI_FD, 0, 0, 0, 0, 0)));
	show_cwd("fchdir", guard);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	if (argc == 5 && strcmp(mode, "dirfd") == 0)
		exec_at(open_dir(argv[2], O_PATH | O_DIRECTORY), argv[3], argv[4], 0);
	if (argc == 5 && strcmp(mode, "cwd") == 0) {
		if (chdir(argv[2]) < 0)
			say("chdir = %s", res(-errno));
		exec_at(AT_FDCWD, argv[3], argv[4], 0);
	}
	if (argc == 5 && strcmp(mode, "nofollow") == 0)
		exec_at(open_dir(argv[2], O_PATH | O_DIRECTORY), argv[3], argv[4],
		        AT_SYMLINK_NOFOLLOW);
	if (argc == 4 && strcmp(mode, "fexecve") == 0)
		exec_at(open_dir(argv[2], O_RDONLY), "", argv[3], AT_EMPTY_PATH);
	if (argc == 4 && strcmp(mode, "fchdir") == 0)
		return do_fchdir(argv[2], argv[3]);
	if (argc == 4 && strcmp(mode, "getcwd") == 0)
		return do_getcwd(argv[2], argv[3]);
	fprintf(stderr, "usage: see the comment at the top of fsat.c\n");
	return 2;
}
