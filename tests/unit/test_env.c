#include "tests/unit/test.h"
#include "session/session.h"

/* -Wwrite-strings makes literals const; env arrays are char *. */
#define S(x) ((char *)(x))

static const char *find(char **env, const char *name)
{
	size_t n = strlen(name);
	for (; *env; env++)
		if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	return NULL;
}

static void env_free(char **env)
{
	for (char **e = env; *e; e++)
		free(*e);
	free(env);
}

TEST(patterns)
{
	CHECK(env_pattern_match("DATABASE_*", "DATABASE_URL"));
	CHECK(!env_pattern_match("DATABASE_*", "XDATABASE_URL"));
	CHECK(env_pattern_match("A;B?C; D ", "BXC"));
	CHECK(env_pattern_match("A;B?C; D ", "D"));
	CHECK(!env_pattern_match("A;B?C", "BC"));
	CHECK(env_pattern_match("*", "ANY"));
	CHECK(env_pattern_match("**a*b*", "xxaYYb"));
	CHECK(!env_pattern_match("", "A"));
	CHECK(!env_pattern_match(";;", "A"));
}

TEST(merge_default)
{
	char *local[] = {S("PATH=/local/bin"), S("HOME=/root"), S("SHARED=local"), NULL};
	char *remote[] = {S("PATH=/pod/bin"), S("HOME=/pod"), S("SHARED=pod"), S("POD_ONLY=1"),
	                  S("NOEQUALS")};
	char **env = env_merge(local, remote, 5, NULL);

	CHECK_STR(find(env, "PATH"), "/local/bin");
	CHECK_STR(find(env, "HOME"), "/root");
	CHECK_STR(find(env, "SHARED"), "pod");
	CHECK_STR(find(env, "POD_ONLY"), "1");
	CHECK(!find(env, "NOEQUALS"));
	env_free(env);
}

TEST(merge_include_exclude)
{
	char *local[] = {NULL};
	char *remote[] = {S("DATABASE_URL=x"), S("DATABASE_USER=u"), S("OTHER=o"), S("PATH=/p")};
	struct env_filter inc = {.include = "DATABASE_*;PATH"};
	struct env_filter exc = {.exclude = "DATABASE_USER"};
	char **env = env_merge(local, remote, 4, &inc);

	CHECK_STR(find(env, "DATABASE_URL"), "x");
	CHECK(!find(env, "OTHER"));
	CHECK(!find(env, "PATH")); /* always excluded, even when included */
	env_free(env);
	env = env_merge(local, remote, 4, &exc);
	CHECK(!find(env, "DATABASE_USER"));
	CHECK_STR(find(env, "OTHER"), "o");
	env_free(env);
}

TEST(merge_override_unset)
{
	char *local[] = {S("PATH=/local/bin"), S("Secret_Token=x"), S("KEEP=1"), NULL};
	char *remote[] = {S("DB=pod"), S("MODE=pod")};
	const char *ov[] = {"MODE=override", "NEW=1", "NOEQUALS"};
	const char *un[] = {"secret_token", "DB"};
	struct env_filter f = {.override = ov, .noverride = 3, .unset = un, .nunset = 2};
	char **env = env_merge(local, remote, 2, &f);

	CHECK_STR(find(env, "MODE"), "override");
	CHECK_STR(find(env, "NEW"), "1");
	CHECK_STR(find(env, "KEEP"), "1");
	CHECK(!find(env, "Secret_Token")); /* unset compares case-insensitively */
	CHECK(!find(env, "DB"));
	CHECK(!find(env, "NOEQUALS"));
	env_free(env);
}

TEST_MAIN()
