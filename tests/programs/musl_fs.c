/* musl_fs: file probes of a static musl program for the cluster tests. musl
 * makes the legacy calls (open, stat, getdents64) where glibc and Go use the
 * *at forms, so these reach different handlers of the tracer.
 *
 *   musl_fs cat PATH    PATH's content
 *   musl_fs ls DIR      DIR's entries (readdir's d_type), sorted, one a line;
 *                       "/" after a directory, "@" after a symlink
 *   musl_fs stat PATH   "SIZE MTIME" (stat)
 *   musl_fs fstat PATH  "SIZE MTIME MODE UID GID NLINK" of an open fd (the
 *                       fstat syscall itself, trapped once the process got
 *                       a pod file)
 *
 * Output is the same as go_client's, py_client.py's and node_client.js's. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cat(const char *path)
{
	char buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "cat: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return 1;
	close(fd);
	return n < 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* At most this many entries: the test directories hold a handful. */
#define MAX_ENTRIES 1024

static int ls(const char *path)
{
	static char *names[MAX_ENTRIES];
	size_t n = 0;
	struct dirent *e;
	DIR *d = opendir(path);

	if (!d) {
		fprintf(stderr, "ls: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while ((e = readdir(d)) && n < MAX_ENTRIES) {
		const char *suffix = e->d_type == DT_DIR ? "/" : e->d_type == DT_LNK ? "@" : "";
		size_t len = strlen(e->d_name);
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		names[n] = malloc(len + 2);
		if (!names[n])
			return 1;
		memcpy(names[n], e->d_name, len);
		memcpy(names[n] + len, suffix, strlen(suffix) + 1);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), by_name);
	for (size_t i = 0; i < n; i++)
		printf("%s\n", names[i]);
	return 0;
}

int main(int argc, char **argv)
{
	struct stat st;

	if (argc != 3) {
		fprintf(stderr, "usage: musl_fs cat PATH | ls DIR | stat PATH | fstat PATH\n");
		return 2;
	}
	if (strcmp(argv[1], "cat") == 0)
		return cat(argv[2]);
	if (strcmp(argv[1], "ls") == 0)
		return ls(argv[2]);
	if (strcmp(argv[1], "stat") == 0) {
		if (stat(argv[2], &st) < 0) {
			fprintf(stderr, "stat: %s: %s\n", argv[2], strerror(errno));
			return 1;
		}
		printf("%lld %lld\n", (long long)st.st_size, (long long)st.st_mtime);
		return 0;
	}
	if (strcmp(argv[1], "fstat") == 0) {
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			fprintf(stderr, "fstat: %s: %s\n", argv[2], strerror(errno));
			return 1;
		}
		printf("%lld %lld %o %u %u %lu\n", (long long)st.st_size, (long long)st.st_mtime,
		       (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)st.st_gid,
		       (unsigned long)st.st_nlink);
		close(fd);
		return 0;
	}
	fprintf(stderr, "usage: musl_fs cat PATH | ls DIR | stat PATH | fstat PATH\n");
	return 2;
}
