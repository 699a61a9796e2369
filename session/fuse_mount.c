/* Mounting the FUSE file system (see fuse_mount.h).
 *
 * The fusermount3 protocol is libfuse's: the helper gets the mount point
 * and options on its command line and a socket in $_FUSE_COMMFD; it opens
 * /dev/fuse, mounts, and sends the fd back as SCM_RIGHTS with one byte of
 * data. With auto_unmount it then waits for that socket to close and
 * unmounts (lazily). It runs as a grandchild: it outlives the call, and
 * the tracer, which reaps every child with waitpid(-1), must never see
 * it. */
#include "session/fuse_mount.h"
#include "common/util.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FUSERMOUNT "fusermount3"
/* How long fusermount3 may take to hand the fd over. */
#define FUSERMOUNT_TIMEOUT_MS 5000

/* A mount namespace of our own, so the mount is private to the run and
 * disappears with its last process. Slave, not private: mounts made
 * elsewhere later still reach the program. Without the right to, we stay
 * where we are (and mount(2) will say EPERM). */
static void private_mounts(void)
{
	if (unshare(CLONE_NEWNS) < 0)
		return;
	(void)mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL);
}

static int mount_kernel(const char *dir, int *ret_fd)
{
	_cleanup_close_ int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	char opts[128];

	if (fd < 0)
		return -errno;
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=%u,group_id=%u", fd,
	         (unsigned)getuid(), (unsigned)getgid());
	private_mounts();
	if (mount("mirrord-trace", dir, "fuse.mirrord-trace",
	          MS_NOSUID | MS_NODEV | MS_RDONLY | MS_NOATIME, opts) < 0)
		return -errno;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* Run fusermount3 with args (NULL-terminated, after argv[0]) as a
 * grandchild, with $_FUSE_COMMFD = commfd if >= 0. wait: for the helper
 * itself (unmount), else only for the intermediate child. */
static int run_fusermount(const char *const *args, int commfd, bool wait)
{
	const char *argv[8] = {FUSERMOUNT};
	pid_t pid;
	int st;

	for (size_t i = 0; args[i] && i + 2 < ARRAY_SIZE(argv); i++)
		argv[i + 1] = args[i];
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char env[32];
		if (!wait && fork() != 0)
			_exit(0);
		if (commfd >= 0) {
			snprintf(env, sizeof(env), "%d", commfd);
			if (setenv("_FUSE_COMMFD", env, 1) < 0 || fcntl(commfd, F_SETFD, 0) < 0)
				_exit(127);
		}
		execvp(FUSERMOUNT, (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EPERM;
}

/* The fd fusermount3 sends: one byte of data, one SCM_RIGHTS fd. */
static int receive_fd(int sock)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&byte, 1};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl,
	                    .msg_controllen = sizeof(ctl)};
	struct pollfd p = {.fd = sock, .events = POLLIN};
	struct cmsghdr *cm;
	int fd;

	if (poll(&p, 1, FUSERMOUNT_TIMEOUT_MS) <= 0)
		return -ETIMEDOUT;
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return n < 0 ? -errno : -EPERM; /* it failed, or is missing */
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	if (set_nonblock(fd, true) < 0) {
		close(fd);
		return -EIO;
	}
	return fd;
}

static int mount_fusermount(const char *dir, int *ret_fd, int *ret_sock)
{
	char opts[192];
	int sv[2], r;

	snprintf(opts, sizeof(opts),
	         "rootmode=40000,user_id=%u,group_id=%u,auto_unmount,ro,nosuid,nodev,noatime,"
	         "fsname=mirrord-trace,subtype=mirrord-trace",
	         (unsigned)getuid(), (unsigned)getgid());
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	const char *args[] = {"-o", opts, "--", dir, NULL};
	r = run_fusermount(args, sv[0], false);
	close(sv[0]);
	r = r < 0 ? r : receive_fd(sv[1]);
	if (r < 0) {
		close(sv[1]);
		return r;
	}
	*ret_fd = r;
	/* Kept open: closing it tells fusermount3 to unmount. */
	*ret_sock = sv[1];
	return 0;
}

int fuse_mount_open(const char *dir, struct fuse_mount *ret, const char **ret_why)
{
	int r;

	*ret = (struct fuse_mount){.fd = -1, .sock = -1};
	struct stat sb;
	if (stat("/dev/fuse", &sb) < 0 || !S_ISCHR(sb.st_mode)) {
		*ret_why = "no /dev/fuse";
		return -ENODEV;
	}
	if (mkdir(dir, 0700) < 0) {
		*ret_why = "cannot create the mount point";
		return -errno;
	}
	r = mount_kernel(dir, &ret->fd);
	/* EACCES: /dev/fuse is not ours to open; the setuid helper's. */
	if (r == -EPERM || r == -EACCES)
		r = mount_fusermount(dir, &ret->fd, &ret->sock);
	if (r < 0) {
		(void)rmdir(dir);
		*ret_why = r == -EPERM || r == -EACCES
		                   ? "no permission to mount, and no working " FUSERMOUNT
		                   : "mount failed";
		return r;
	}
	ret->dir = xstrdup(dir);
	return 0;
}

void fuse_mount_close(struct fuse_mount *m)
{
	if (m->fd < 0)
		return;
	/* Closing the last fd of the connection aborts it: anything still
	 * waiting on the mount gets ENOTCONN instead of hanging. Then the
	 * mount goes, detached, so a straggler cannot keep it busy. */
	close(m->fd);
	m->fd = -1;
	if (m->sock >= 0) {
		const char *args[] = {"-u", "-z", "-q", "--", m->dir, NULL};
		close(m->sock); /* fusermount3 (auto_unmount) unmounts too */
		m->sock = -1;
		(void)run_fusermount(args, -1, true);
		(void)rmdir(m->dir);
	} else if (umount2(m->dir, MNT_DETACH) == 0) {
		(void)rmdir(m->dir);
	}
	free(m->dir);
	m->dir = NULL;
}
