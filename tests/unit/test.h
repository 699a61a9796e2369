/* A tiny dependency-free unit test harness. Each test file defines
 * TEST(name) functions and ends with TEST_MAIN(); every test runs in a
 * forked child with a timeout, so a crash or a hang fails one test only. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct test_case {
	const char *name;
	void (*fn)(void);
};

#define TEST_MAX 256
extern struct test_case test_cases[TEST_MAX];
extern int test_count;

#define TEST(n)                                                                      \
	static void test_##n(void);                                                  \
	__attribute__((constructor)) static void test_register_##n(void)             \
	{                                                                            \
		if (test_count < TEST_MAX)                                           \
			test_cases[test_count++] = (struct test_case){#n, test_##n}; \
	}                                                                            \
	static void test_##n(void)

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)

#define CHECK_EQ(a, b)                                                                      \
	do {                                                                                \
		long long _a = (long long)(a), _b = (long long)(b);                         \
		if (_a != _b) {                                                             \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", \
			        __FILE__, __LINE__, #a, _a, #b, _b);                        \
			exit(1);                                                            \
		}                                                                           \
	} while (0)

#define CHECK_STR(a, b)                                                                          \
	do {                                                                                     \
		const char *_a = (a), *_b = (b);                                                 \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                                         \
			fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", __FILE__, \
			        __LINE__, _a ? _a : "(null)", _b ? _b : "(null)");               \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)

/* Run every test (or the one named by argv[1]), each in a forked child. */
__attribute__((unused)) static int test_run(int argc, char **argv)
{
	int failed = 0, passed = 0;

	for (int i = 0; i < test_count; i++) {
		if (argc > 1 && strcmp(argv[1], test_cases[i].name) != 0)
			continue;
		/* Nothing buffered may be inherited (a failing child's exit()
		 * would print it again), and the child's own output counts. */
		fflush(NULL);
		pid_t p = fork();
		if (p == 0) {
			alarm(30);
			test_cases[i].fn();
			fflush(NULL);
			_exit(0);
		}
		int st = 0;
		waitpid(p, &st, 0);
		bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
		printf("%s %s\n", ok ? "PASS" : "FAIL", test_cases[i].name);
		if (!ok && WIFSIGNALED(st))
			printf("  (killed by signal %d)\n", WTERMSIG(st));
		ok ? passed++ : failed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : (passed ? 0 : 1);
}

#define TEST_MAIN()                            \
	struct test_case test_cases[TEST_MAX]; \
	int test_count;                        \
	int main(int argc, char **argv)        \
	{                                      \
		return test_run(argc, argv);   \
	}

/* For tests that need a path first (the binary under test): `prog PATH
 * [TEST]`; PATH goes to the char * variable var. */
#define TEST_MAIN_WITH_ARG(var, what)                                            \
	struct test_case test_cases[TEST_MAX];                                   \
	int test_count;                                                          \
	int main(int argc, char **argv)                                          \
	{                                                                        \
		if (argc < 2) {                                                  \
			fprintf(stderr, "usage: %s %s [TEST]\n", argv[0], what); \
			return 2;                                                \
		}                                                                \
		var = argv[1];                                                   \
		argv[1] = argv[0];                                               \
		return test_run(argc - 1, argv + 1);                             \
	}
