/* loops: tight loops of syscalls that mirrord-trace does NOT trap.
 *
 *   loops getpid N   N x syscall(SYS_getpid)
 *   loops read N     N x read(fd, buf, 1) on /dev/zero
 *   loops open N     N x openat + close of /etc/passwd (a local path: with
 *                    feature.fs read it is trapped, decided local, resumed)
 *   loops open N P   the same with path P (bench/fs.sh: a path the pod
 *                    serves, rewritten to the run's copy)
 *
 * Prints one line "KIND N NS_PER_CALL". The clock is CLOCK_MONOTONIC through
 * the vDSO (no syscall). /dev/zero is opened before the clock starts: openat
 * is trapped by mirrord-trace (one stop), the loop itself must cost nothing
 * extra, which is what bench/syscalls.sh checks. A warm-up of N/10 calls runs
 * first so page faults and frequency ramp-up stay out of the timed part. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int loop_getpid(long n)
{
	long i;

	for (i = 0; i < n; i++)
		syscall(SYS_getpid);
	return 0;
}

static int loop_read(int fd, long n)
{
	char c;
	long i;

	for (i = 0; i < n; i++)
		if (read(fd, &c, 1) != 1)
			return -1;
	return 0;
}

/* The default path is on mirrord's default local list (^/etc), so a traced
 * open costs the stop and the decision, never the agent. */
static int loop_open(const char *path, long n)
{
	long i;

	for (i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	char *end;
	long n;
	int fd = -1, rc;
	double t0, t1;

	const char *path = "/etc/passwd";

	if (argc == 4 && !strcmp(argv[1], "open"))
		path = argv[3];
	else if (argc != 3 || (strcmp(argv[1], "getpid") && strcmp(argv[1], "read") &&
	                       strcmp(argv[1], "open"))) {
		fprintf(stderr, "usage: loops getpid|read|open N [PATH]\n");
		return 2;
	}
	errno = 0;
	n = strtol(argv[2], &end, 10);
	if (errno || *end || n <= 0 || n > 1000000000L) {
		fprintf(stderr, "loops: bad count '%s'\n", argv[2]);
		return 2;
	}
	if (!strcmp(argv[1], "read")) {
		fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			perror("loops: /dev/zero");
			return 1;
		}
		loop_read(fd, n / 10 + 1);
		t0 = now_ns();
		rc = loop_read(fd, n);
		t1 = now_ns();
	} else if (!strcmp(argv[1], "open")) {
		loop_open(path, n / 10 + 1);
		t0 = now_ns();
		rc = loop_open(path, n);
		t1 = now_ns();
	} else {
		loop_getpid(n / 10 + 1);
		t0 = now_ns();
		rc = loop_getpid(n);
		t1 = now_ns();
	}
	if (rc) {
		fprintf(stderr, "loops: %s failed\n", argv[1]);
		return 1;
	}
	printf("%s %ld %.1f\n", argv[1], n, (t1 - t0) / (double)n);
	return 0;
}
