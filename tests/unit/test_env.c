#include "tests/unit/test.h"
#include "common/util.h"
#include "session/session.h"

#include <errno.h>

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

/* Parse text; "K=V|K=V|..." or "ERR:<message>". */
static void parse(const char *text, char *out, size_t cap)
{
	char **e = NULL, err[256];
	size_t n = 0;
	if (env_file_parse(text, strlen(text), &e, &n, err, sizeof(err)) < 0) {
		snprintf(out, cap, "ERR:%s", err);
		CHECK(e == NULL);
		return;
	}
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "|" : "", e[i]);
		free(e[i]);
	}
	CHECK(e[n] == NULL);
	free(e);
}

TEST(env_file_parse)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	        {"", ""},
	        {"# only a comment\n\n   \n", ""},
	        {"A=1\nB = two words  \r\n  export C=3\nD=\nE.x_1=v",
	         "A=1|B=two words|C=3|D=|E.x_1=v"},
	        {"A=x # comment\nB=x#not-a-comment\nC='# kept'  # c\nD=\"#kept\"",
	         "A=x|B=x#not-a-comment|C=# kept|D=#kept"},
	        {"A='a \\n $B'\nB=\"a\\tb\\n\\\"q\\\" \\\\ \\$HOME \\x\"",
	         "A=a \\n $B|B=a\tb\n\"q\" \\ $HOME \\x"},
	        {"export=1\nexportX=2", "export=1|exportX=2"},
	        {"A=1\nA=2", "A=1|A=2"}, /* the later wins, in env_merge */
	        {"A=1\n1A=2",
	         "ERR:line 2: expected KEY=VALUE (a key is letters, digits, '_' and '.', "
	         "not starting with a digit)"},
	        {"JUSTAKEY\n", "ERR:line 1: expected '=' after the key"},
	        {"A=\"open", "ERR:line 1: no closing double quote (values are one line)"},
	        {"\n\nA='open\nB=2", "ERR:line 3: no closing single quote (values are one line)"},
	        {"A=\"x\" y", "ERR:line 1: text after the closing quote"},
	        {"A B=1", "ERR:line 1: expected '=' after the key"},
	};
	char out[1024];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		parse(cases[i].text, out, sizeof(out));
		CHECK_STR(out, cases[i].want);
	}
}

TEST(env_file_bounds)
{
	char **e = NULL, err[128];
	size_t n = 0, len = (ENV_FILE_MAX_ENTRIES + 1) * 4;
	char *big = malloc(len + 1);
	CHECK(big);
	for (size_t i = 0; i < ENV_FILE_MAX_ENTRIES + 1; i++)
		memcpy(big + i * 4, "A=1\n", 4);
	big[len] = 0;
	CHECK_EQ(env_file_parse(big, len, &e, &n, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "too many entries"));
	CHECK_EQ(env_file_parse(big, ENV_FILE_MAX + 1, &e, &n, err, sizeof(err)), -EINVAL);
	free(big);
}

TEST_MAIN()
