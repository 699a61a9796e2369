/* Replays fuzz inputs through LLVMFuzzerTestOneInput without libFuzzer,
 * so every corpus runs as an ordinary ctest on every build (systemd's
 * fuzz-main.c does the same). Arguments are files or directories; a
 * directory's regular files are replayed in readdir order. Fails if
 * nothing was replayed, so a wrong path cannot pass silently. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Larger than any input worth keeping; libFuzzer's -max_len is far less. */
#define REPLAY_MAX_INPUT (16u << 20)

static int replay_file(const char *path)
{
	struct stat st;
	uint8_t *data;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "replay: \"%s\": %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > REPLAY_MAX_INPUT) {
		fprintf(stderr, "replay: \"%s\": too large\n", path);
		close(fd);
		return -1;
	}
	/* Exactly the input's size, so ASan flags a read one past its end
	 * (malloc(0) may return NULL, hence the 1 for empty files). */
	data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!data)
		abort();
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	LLVMFuzzerTestOneInput(data, got);
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned replayed = 0, failed = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: \"%s\": %s\n", argv[i], strerror(errno));
			failed++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			replay_file(argv[i]) == 0 ? replayed++ : failed++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (!d) {
			fprintf(stderr, "replay: \"%s\": %s\n", argv[i], strerror(errno));
			failed++;
			continue;
		}
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char path[PATH_MAX];
			int n = snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			if (n < 0 || (size_t)n >= sizeof(path)) {
				failed++;
				continue;
			}
			if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
				continue;
			replay_file(path) == 0 ? replayed++ : failed++;
		}
		closedir(d);
	}
	printf("replayed %u inputs, %u unreadable\n", replayed, failed);
	return replayed > 0 && failed == 0 ? 0 : 1;
}
