/* The target process: find it, hold it (pidfd, root, netns) and read its
 * environment and files. Everything returns -errno; nothing logs. */
#include "agent/agent.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

/* /proc/PID/cgroup is one line per hierarchy; a few KiB at most. Reading
 * more than this means something odd, and we only need the id lines. */
#define CGROUP_READ_MAX (64u * 1024)
/* /proc/PID/environ is bounded by the kernel's ARG_MAX-ish stack limit;
 * we never send more than one payload, so there is no point reading more
 * than a little past it. */
#define ENVIRON_READ_MAX (2u * AP_MAX_PAYLOAD)

const char *agent_mode_name(enum agent_mode m)
{
	switch (m) {
	case AGENT_TARGETED:
		return "targeted";
	case AGENT_EPHEMERAL:
		return "ephemeral";
	case AGENT_TARGETLESS:
		return "targetless";
	}
	return "?";
}

/* Read up to max bytes of fd into a NUL-terminated malloc'ed buffer. */
static int read_bounded(int fd, size_t max, char **ret_buf, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;

	for (;;) {
		if (len == cap) {
			if (cap >= max)
				break;
			cap = cap ? cap * 2 : 4096;
			if (cap > max)
				cap = max;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (!buf)
		buf = xmalloc(1);
	buf[len] = 0;
	*ret_len = len;
	*ret_buf = TAKE_PTR(buf);
	return 0;
}

static int read_path_bounded(const char *path, size_t max, char **ret_buf, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -errno;
	return read_bounded(fd, max, ret_buf, ret_len);
}

/* Does any line of the cgroup file contain id? memmem, not strstr: the
 * file could hold a NUL and we must not stop early or run past it. */
static bool cgroup_has(const char *buf, size_t len, const char *id, size_t idlen)
{
	const char *p = buf, *end = buf + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (memmem(p, (size_t)(le - p), id, idlen))
			return true;
		p = le + 1;
	}
	return false;
}

int target_pid_from_container(const char *id, pid_t *ret_pid)
{
	DIR *d;
	struct dirent *de;
	size_t idlen = strlen(id);
	uint64_t best = 0;

	if (idlen == 0)
		return -EINVAL;
	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		uint64_t pid;
		char path[64]; /* "/proc/" + up to 20 digits + "/cgroup" */
		_cleanup_free_ char *buf = NULL;
		size_t len;

		if (parse_u64(de->d_name, INT32_MAX, &pid) < 0 || pid == 0)
			continue;
		if (best && pid >= best)
			continue;
		snprintf(path, sizeof(path), "/proc/%" PRIu64 "/cgroup", pid);
		/* Processes come and go while we scan: skip any we lose. */
		if (read_path_bounded(path, CGROUP_READ_MAX, &buf, &len) < 0)
			continue;
		if (cgroup_has(buf, len, id, idlen))
			best = pid;
	}
	closedir(d);
	if (!best)
		return -ESRCH;
	*ret_pid = (pid_t)best;
	return 0;
}

void target_close(struct agent_target *t)
{
	closep(&t->pidfd);
	closep(&t->rootfd);
	closep(&t->netnsfd);
	t->pidfd = t->rootfd = t->netnsfd = -1;
}

int target_open(enum agent_mode mode, pid_t pid, struct agent_target *t, const char **ret_what)
{
	char path[64]; /* "/proc/" + pid + "/ns/net" */
	int r;

	*t = (struct agent_target){.mode = mode, .pidfd = -1, .rootfd = -1, .netnsfd = -1};
	if (mode == AGENT_TARGETLESS || pid <= 0) {
		*ret_what = "open /";
		t->rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		return t->rootfd < 0 ? -errno : 0;
	}

	t->pid = pid;
	/* The pidfd comes first: once we hold it, the pid cannot be recycled
	 * under us without the pidfd reporting the exit. pidfds are always
	 * close-on-exec. */
	*ret_what = "pidfd_open";
	t->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (t->pidfd < 0)
		goto fail;
	*ret_what = "open /proc/PID/root";
	snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
	t->rootfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (t->rootfd < 0)
		goto fail;
	if (mode != AGENT_TARGETED)
		return 0; /* ephemeral: already in the pod's network namespace */
	*ret_what = "open /proc/PID/ns/net";
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	t->netnsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (t->netnsfd < 0)
		goto fail;
	return 0;
fail:
	r = -errno;
	target_close(t);
	return r;
}

int target_enter_netns(const struct agent_target *t)
{
	struct stat ours, theirs;

	if (t->netnsfd < 0)
		return 0;
	/* setns() needs CAP_SYS_ADMIN even into the namespace we are already
	 * in; skipping that case lets an unprivileged agent target its own
	 * processes (tests, non-Kubernetes hosts). */
	if (fstat(t->netnsfd, &theirs) < 0 || stat("/proc/self/ns/net", &ours) < 0)
		return -errno;
	if (ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino)
		return 0;
	if (setns(t->netnsfd, CLONE_NEWNET) < 0)
		return -errno;
	return 0;
}

/* Append the NUL-separated entries of blk[0..len) to buf. */
static int env_add_block(const char *blk, size_t len, uint8_t *buf, size_t cap, size_t *off,
                         uint32_t *count, uint32_t *dropped)
{
	const char *p = blk, *end = blk + len;

	while (p < end) {
		const char *z = memchr(p, 0, (size_t)(end - p));
		size_t el = z ? (size_t)(z - p) : (size_t)(end - p);

		if (el > 0 && memchr(p, '=', el)) {
			if (el > AP_MAX_STRING || *count >= AP_MAX_ENV_COUNT ||
			    ap_env_put(buf, cap, off, p, el) < 0)
				(*dropped)++;
			else
				(*count)++;
		}
		p += el + 1;
	}
	return 0;
}

int target_env(const struct agent_target *t, uint8_t *buf, size_t cap, size_t *ret_len,
               uint32_t *ret_count, uint32_t *ret_dropped)
{
	size_t off = 0;
	uint32_t count = 0, dropped = 0;

	if (t->pidfd >= 0) {
		char path[64]; /* "/proc/" + pid + "/environ" */
		_cleanup_free_ char *blk = NULL;
		size_t len;
		int r;

		snprintf(path, sizeof(path), "/proc/%d/environ", (int)t->pid);
		r = read_path_bounded(path, ENVIRON_READ_MAX, &blk, &len);
		if (r < 0)
			return r;
		env_add_block(blk, len, buf, cap, &off, &count, &dropped);
	} else {
		/* ephemeral without a container id was started with the
		 * target's environment; targetless has no target: our own. */
		for (char **e = environ; e && *e; e++)
			env_add_block(*e, strlen(*e), buf, cap, &off, &count, &dropped);
	}
	*ret_len = off;
	*ret_count = count;
	*ret_dropped = dropped;
	return 0;
}

/* How often a resolution that raced with a rename is retried. */
#define OPENAT2_RETRIES 8

int target_openat(const struct agent_target *t, const char *path, int flags, int *ret_fd)
{
	/* Security invariant: the path comes from the client and is
	 * resolved with RESOLVE_IN_ROOT against the target's root, so "..",
	 * absolute paths and absolute symlinks are all re-anchored at that
	 * root and can never name a file outside it. RESOLVE_NO_MAGICLINKS
	 * forbids /proc/PID/fd/N-style jumps, which RESOLVE_IN_ROOT alone
	 * would follow to anywhere (/proc/self/root, /proc/1/root). */
	struct open_how how = {
	        .flags = (uint64_t)(flags | O_CLOEXEC),
	        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd = -1;

	if (path[0] != '/')
		return -EINVAL;
	/* The kernel answers EAGAIN when a ".." step raced with a rename
	 * or mount change and it could not prove the walk stayed inside
	 * the root; a retry sees the settled tree. */
	for (int i = 0; i < OPENAT2_RETRIES; i++) {
		fd = (int)syscall(SYS_openat2, t->rootfd, path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

int target_read_file(const struct agent_target *t, const char *path, uint8_t **ret_buf,
                     size_t *ret_len)
{
	/* O_NONBLOCK keeps a FIFO from hanging the single-threaded agent;
	 * fstat below rejects it anyway. */
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len;
	int r;

	r = target_openat(t, path, O_RDONLY | O_NOCTTY | O_NONBLOCK, &fd);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size > (off_t)AP_MAX_FILE)
		return -EFBIG;
	/* st_size is a hint only (procfs files say 0): read one byte past
	 * the limit to tell "exactly AP_MAX_FILE" from "larger". */
	r = read_bounded(fd, (size_t)AP_MAX_FILE + 1, &buf, &len);
	if (r < 0)
		return r;
	if (len > AP_MAX_FILE)
		return -EFBIG;
	*ret_buf = (uint8_t *)TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}
