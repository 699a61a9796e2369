/* execve from a thread that is not the group leader. The thread re-executes
 * this probe in child mode (the kernel makes it the leader, same pid); the
 * child connects to the pod's HTTP service, prints the body and exits with
 * the status it was given, which must be the exit status of the whole run.
 *
 *   PROBE ADDRS...                   parent: exec from a thread
 *   PROBE ADDRS... child PID STATUS  child: connect, GET, exit STATUS */
#include "probe.h"

#include <pthread.h>
#include <time.h>

#define CHILD_STATUS "7"

static char **args;
static char pidbuf[16];

static void *exec_thread(void *unused)
{
	char *argv[] = {args[0],
	                args[1],
	                args[2],
	                args[3],
	                args[4],
	                args[5],
	                args[6],
	                args[7],
	                (char *)"child",
	                pidbuf,
	                (char *)CHILD_STATUS,
	                NULL};
	extern char **environ;

	(void)unused;
	long r = raw_syscall(SYS_execve, P("/proc/self/exe"), P(argv), P(environ), 0, 0, 0);
	say("thread: execve = %s", res(r));
	exit(3);
}

static int child(struct pod pod, const char *parent_pid, int status)
{
	struct sockaddr_in a4 = sin4(pod.http_ip, pod.http_port);
	int fd = sock(AF_INET, SOCK_STREAM);
	long r;

	say("child: same pid as before execve: %s", atoi(parent_pid) == getpid() ? "yes" : "no");
	say("child: single thread: %s", syscall(SYS_gettid) == getpid() ? "yes" : "no");
	r = raw_syscall(SYS_connect, (uint64_t)fd, P(&a4), sizeof(a4), 0, 0, 0);
	say("child: connect = %s", res(r));
	if (r == 0)
		say("child: body = %s", http_get(fd));
	close(fd);
	return status;
}

int main(int argc, char **argv)
{
	struct pod pod = pod_args(argc, argv);
	pthread_t t;

	if (argc >= 11 && strcmp(argv[8], "child") == 0)
		return child(pod, argv[9], atoi(argv[10]));
	args = argv;
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
	say("parent: execve from a non-leader thread");
	if (pthread_create(&t, NULL, exec_thread, NULL) != 0)
		die("pthread_create");
	/* The execve kills this thread; bounded in case it never happens. */
	for (int i = 0; i < 100; i++) {
		struct timespec ts = {0, 100 * 1000000};
		nanosleep(&ts, NULL);
	}
	say("parent: execve did not replace the process within 10 s");
	return 4;
}
