/* feature.fs path rules (syscalls/fs_policy.c): modes, user lists, the
 * default lists with their dynamic entries, and the decision order. */
#include "tests/unit/test.h"
#include "syscalls/fs_policy.h"

#include <errno.h>

static struct fs_policy *mk(const struct fs_policy_config *c)
{
	struct fs_policy *p = NULL;
	char *why = NULL;
	int e = fs_policy_new(c, &p, &why);

	if (e < 0)
		fprintf(stderr, "fs_policy_new: %s\n", why ? why : "?");
	CHECK_EQ(e, 0);
	return p;
}

static struct fs_policy *mode_only(enum fs_mode m)
{
	struct fs_policy_config c = {.mode = m,
	                             .cwd = "/work/app",
	                             .exe = "/opt/x/bin/prog",
	                             .home = "/home/dev",
	                             .tmpdir = "/tmp"};
	return mk(&c);
}

#define R(p, path) fs_policy_decide(p, path, false)
#define W(p, path) fs_policy_decide(p, path, true)

TEST(mode_parse)
{
	enum fs_mode m;

	CHECK_EQ(fs_mode_parse("read", &m), 0);
	CHECK_EQ(m, FS_MODE_READ);
	CHECK_EQ(fs_mode_parse("write", &m), 0);
	CHECK_EQ(m, FS_MODE_WRITE);
	CHECK_EQ(fs_mode_parse("local", &m), 0);
	CHECK_EQ(m, FS_MODE_LOCAL);
	CHECK_EQ(fs_mode_parse("localwithoverrides", &m), 0);
	CHECK_EQ(m, FS_MODE_LOCAL_WITH_OVERRIDES);
	CHECK_EQ(fs_mode_parse("local-with-overrides", &m), 0);
	CHECK_EQ(m, FS_MODE_LOCAL_WITH_OVERRIDES);
	CHECK_EQ(fs_mode_parse("READ", &m), -EINVAL);
	CHECK_EQ(fs_mode_parse(NULL, &m), -EINVAL);
	CHECK_STR(fs_mode_name(FS_MODE_LOCAL_WITH_OVERRIDES), "localwithoverrides");
}

TEST(read_mode_defaults)
{
	struct fs_policy *p = mode_only(FS_MODE_READ);

	/* not in any list: remote for reads, local for writes */
	CHECK_EQ(R(p, "/app/config.yaml"), FS_REMOTE);
	CHECK_EQ(W(p, "/app/config.yaml"), FS_LOCAL);
	CHECK_EQ(R(p, "/var/run/secrets/kubernetes.io/serviceaccount/token"), FS_REMOTE);
	/* default local */
	CHECK_EQ(R(p, "/usr/lib/x86_64-linux-gnu/libc.so.6"), FS_LOCAL);
	CHECK_EQ(R(p, "/usr"), FS_LOCAL);
	CHECK_EQ(R(p, "/usrx/a"), FS_REMOTE);
	CHECK_EQ(R(p, "/etc/passwd"), FS_LOCAL);
	CHECK_EQ(R(p, "/proc/self/maps"), FS_LOCAL);
	CHECK_EQ(R(p, "/tmp/x"), FS_LOCAL);
	CHECK_EQ(R(p, "/var/tmp/x"), FS_LOCAL);
	CHECK_EQ(R(p, "/"), FS_LOCAL);
	CHECK_EQ(R(p, "/srv/lib/thing.so"), FS_LOCAL); /* .\.so$ */
	CHECK_EQ(R(p, "/srv/a/node_modules/x"), FS_LOCAL);
	CHECK_EQ(R(p, "/srv/a/package.json"), FS_LOCAL);
	/* case-insensitive */
	CHECK_EQ(R(p, "/USR/bin/true"), FS_LOCAL);
	CHECK_EQ(R(p, "/srv/Script.PY"), FS_LOCAL);
	/* default remote beats default local (/etc) */
	CHECK_EQ(R(p, "/etc/resolv.conf"), FS_REMOTE);
	CHECK_EQ(R(p, "/etc/hosts"), FS_REMOTE);
	CHECK_EQ(R(p, "/etc/hostname"), FS_REMOTE);
	CHECK_EQ(R(p, "/etc/ssl/certs/ca.pem"), FS_REMOTE);
	CHECK_EQ(R(p, "/etc/hosts.allow"), FS_LOCAL);
	/* ... for reads only */
	CHECK_EQ(W(p, "/etc/hosts"), FS_LOCAL);
	fs_policy_free(p);
}

TEST(dynamic_entries)
{
	struct fs_policy *p = mode_only(FS_MODE_READ);

	/* cwd and everything under it */
	CHECK_EQ(R(p, "/work/app"), FS_LOCAL);
	CHECK_EQ(R(p, "/work/app/data/x.bin"), FS_LOCAL);
	CHECK_EQ(R(p, "/work/apple"), FS_REMOTE);
	CHECK_EQ(R(p, "/work"), FS_REMOTE);
	/* the executable itself (already local through /opt here: use one
	 * outside the defaults) */
	fs_policy_free(p);
	struct fs_policy_config c = {
	        .mode = FS_MODE_READ, .exe = "/srv/b+in/prog", .home = "/root"};
	p = mk(&c);
	CHECK_EQ(R(p, "/srv/b+in/prog"), FS_LOCAL);
	CHECK_EQ(R(p, "/srv/b+in/prog2"), FS_REMOTE);
	CHECK_EQ(R(p, "/srv/bbin/prog"), FS_REMOTE); /* '+' is literal */
	/* hidden files in $HOME local, others remote; credentials not found */
	CHECK_EQ(R(p, "/root/.bashrc"), FS_LOCAL);
	CHECK_EQ(R(p, "/root/notes.txt"), FS_REMOTE);
	CHECK_EQ(R(p, "/root/.kube/config"), FS_NOT_FOUND);
	CHECK_EQ(R(p, "/root/.config/gcloud/creds"), FS_NOT_FOUND);
	CHECK_EQ(R(p, "/root/.azure"), FS_NOT_FOUND);
	CHECK_EQ(R(p, "/other/.kube/config"), FS_REMOTE);
	fs_policy_free(p);
	/* cwd "/" adds nothing (it would make everything local) */
	struct fs_policy_config root = {.mode = FS_MODE_READ, .cwd = "/"};
	p = mk(&root);
	CHECK_EQ(R(p, "/srv/x"), FS_REMOTE);
	CHECK_EQ(R(p, "/"), FS_LOCAL);
	fs_policy_free(p);
}

TEST(local_mode)
{
	const char *nf[] = {"secret"};
	struct fs_policy_config c = {
	        .mode = FS_MODE_LOCAL, .not_found = nf, .n_not_found = 1, .home = "/root"};
	struct fs_policy *p = mk(&c);

	CHECK_EQ(R(p, "/app/config.yaml"), FS_LOCAL);
	CHECK_EQ(R(p, "/etc/resolv.conf"), FS_LOCAL);
	CHECK_EQ(R(p, "/root/.kube/config"), FS_LOCAL);
	/* only a relative not_found survives local mode (step 1 before 2) */
	CHECK_EQ(R(p, "/srv/secret"), FS_LOCAL);
	CHECK_EQ(R(p, "my-secret"), FS_NOT_FOUND);
	CHECK(!fs_policy_remote_writes(p));
	fs_policy_free(p);
}

TEST(local_with_overrides)
{
	const char *ro[] = {"^/app/"};
	struct fs_policy_config c = {.mode = FS_MODE_LOCAL_WITH_OVERRIDES,
	                             .read_only = ro,
	                             .n_read_only = 1,
	                             .home = "/root"};
	struct fs_policy *p = mk(&c);

	CHECK_EQ(R(p, "/srv/x"), FS_LOCAL);
	CHECK_EQ(R(p, "/app/config.yaml"), FS_REMOTE);
	CHECK_EQ(W(p, "/app/config.yaml"), FS_LOCAL);
	/* defaults still apply */
	CHECK_EQ(R(p, "/etc/hostname"), FS_REMOTE);
	CHECK_EQ(R(p, "/root/.kube/config"), FS_NOT_FOUND);
	CHECK(!fs_policy_remote_writes(p));
	fs_policy_free(p);
}

TEST(write_mode)
{
	struct fs_policy *p = mode_only(FS_MODE_WRITE);

	CHECK_EQ(R(p, "/app/data"), FS_REMOTE);
	CHECK_EQ(W(p, "/app/data"), FS_REMOTE);
	CHECK_EQ(W(p, "/tmp/x"), FS_LOCAL);
	/* default remote is read-only: a write falls through to /etc local */
	CHECK_EQ(W(p, "/etc/hosts"), FS_LOCAL);
	CHECK(fs_policy_remote_writes(p));
	fs_policy_free(p);
}

/* Every step of the order, each shadowing the ones after it. */
TEST(decision_order)
{
	const char *nf[] = {"^/x/nf"}, *rw[] = {"^/x/(nf|rw)", "^/tmp/rw"},
	           *ro[] = {"^/x/(nf|rw|ro)", "^/tmp/(rw|ro)"}, *loc[] = {"^/x/", "^/etc/hosts$"};
	struct fs_policy_config c = {.mode = FS_MODE_READ,
	                             .not_found = nf,
	                             .n_not_found = 1,
	                             .read_write = rw,
	                             .n_read_write = 2,
	                             .read_only = ro,
	                             .n_read_only = 2,
	                             .local = loc,
	                             .n_local = 2,
	                             .home = "/root"};
	struct fs_policy *p = mk(&c);

	CHECK_EQ(R(p, "/x/nf"), FS_NOT_FOUND); /* 3 before 4 */
	CHECK_EQ(W(p, "/x/nf"), FS_NOT_FOUND);
	CHECK_EQ(R(p, "/x/rw"), FS_REMOTE); /* 4 before 5 */
	CHECK_EQ(W(p, "/x/rw"), FS_REMOTE); /* read_write writes remotely in read mode */
	CHECK_EQ(R(p, "/x/ro"), FS_REMOTE); /* 5 before 6 */
	CHECK_EQ(W(p, "/x/ro"), FS_LOCAL);
	CHECK_EQ(R(p, "/x/other"), FS_LOCAL);   /* 6 */
	CHECK_EQ(R(p, "/etc/hosts"), FS_LOCAL); /* 6 before 8 */
	CHECK_EQ(R(p, "/tmp/rw/a"), FS_REMOTE); /* 4 before 9 */
	CHECK_EQ(R(p, "/tmp/ro"), FS_REMOTE);   /* 5 before 9 */
	CHECK_EQ(R(p, "/tmp/other"), FS_LOCAL); /* 9 */
	CHECK_EQ(R(p, "/srv/y"), FS_REMOTE);    /* 10 */
	CHECK(fs_policy_remote_writes(p));      /* a read_write list */
	fs_policy_free(p);

	/* user lists beat default not-found (7) */
	const char *rw2[] = {"\\.kube/"};
	struct fs_policy_config c2 = {
	        .mode = FS_MODE_READ, .read_write = rw2, .n_read_write = 1, .home = "/root"};
	p = mk(&c2);
	CHECK_EQ(R(p, "/root/.kube/config"), FS_REMOTE);
	fs_policy_free(p);
}

TEST(unanchored_case_insensitive)
{
	const char *nf[] = {"SECRET"};
	struct fs_policy_config c = {.mode = FS_MODE_READ, .not_found = nf, .n_not_found = 1};
	struct fs_policy *p = mk(&c);

	CHECK_EQ(R(p, "/srv/my-secret.txt"), FS_NOT_FOUND);
	CHECK_EQ(R(p, "/srv/public.txt"), FS_REMOTE);
	fs_policy_free(p);
}

TEST(bad_pattern)
{
	const char *bad[] = {"ok", "a)(b"};
	struct fs_policy_config c = {.mode = FS_MODE_READ, .local = bad, .n_local = 2};
	struct fs_policy *p = NULL;
	char *why = NULL;

	CHECK_EQ(fs_policy_new(&c, &p, &why), -EINVAL);
	CHECK(p == NULL);
	CHECK(why && strstr(why, "a)(b"));
	free(why);
}

/* A policy with one or more mapping entries (from, to, from, to, ...). */
static struct fs_policy *mapping(const char *const *pairs, size_t n)
{
	const char *from[8], *to[8];
	struct fs_policy_config c = {.mode = FS_MODE_READ, .map_from = from, .map_to = to};

	for (size_t i = 0; i < n / 2 && i < 8; i++) {
		from[i] = pairs[2 * i];
		to[i] = pairs[2 * i + 1];
	}
	c.n_mapping = n / 2;
	return mk(&c);
}

/* map(p, path): the mapped path, or "-" when nothing changed. */
static const char *map(const struct fs_policy *p, const char *path)
{
	static char out[256];
	int e = fs_policy_map(p, path, out, sizeof(out));

	if (e == 0)
		return "-";
	return e == 1 ? out : "error";
}

TEST(mapping_capture_groups)
{
	const char *m[] = {"^/config/(.*)", "/app/$1"};
	struct fs_policy *p = mapping(m, 2);

	CHECK_STR(map(p, "/config/a.yaml"), "/app/a.yaml");
	CHECK_STR(map(p, "/config/sub/b"), "/app/sub/b");
	CHECK_STR(map(p, "/srv/config/a"), "-"); /* anchored by the user */
	CHECK_STR(map(p, "/etc/x"), "-");
	fs_policy_free(p);

	/* Only the leftmost match is replaced (replace, not replace_all);
	 * the rest of the path stays. */
	const char *m2[] = {"a", "X"};
	p = mapping(m2, 2);
	CHECK_STR(map(p, "/data/a/a"), "/dXta/a/a");
	fs_policy_free(p);

	/* Unanchored prefix, as in mirrord's own example. */
	const char *m3[] = {"/var/app/temp", "/tmp"};
	p = mapping(m3, 2);
	CHECK_STR(map(p, "/var/app/temp/sample.txt"), "/tmp/sample.txt");
	fs_policy_free(p);
}

TEST(mapping_replacement_syntax)
{
	const char *m[] = {"^/(?<top>[a-z]+)/(\\w+)(x)?(.*)$", ""};
	struct {
		const char *to, *want;
	} cases[] = {
	        {"/r/${top}/$2", "/r/srv/data"}, /* named and numbered */
	        {"/r/$top/${2}", "/r/srv/data"}, /* unbraced name, braced number */
	        {"/r$0", "/r/srv/data.txt"},     /* $0 is the whole match */
	        {"/r/$2_$top", "/r/srv"},        /* "$2_" names group "2_": none */
	        {"/r/${2}_$top", "/r/data_srv"}, /* braces end the name */
	        {"/r/$3/$4", "/r//.txt"},        /* group 3 did not take part */
	        {"/r/$9/${nope}", "/r//"},       /* no such groups: nothing */
	        {"/r/$$1", "/r/$1"},             /* $$ is a dollar */
	        {"/r/$/${", "/r/$/${"},          /* no reference: kept as is */
	        {"/r/${+2}", "/r/data"},         /* Rust's usize parse takes '+' */
	        {"/r/${02}", "/r/data"},         /* and leading zeros */
	        {"/r/$-x", "/r/$-x"},
	        {"/plain", "/plain"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		m[1] = cases[i].to;
		struct fs_policy *p = mapping(m, 2);
		CHECK_STR(map(p, "/srv/data.txt"), cases[i].want);
		fs_policy_free(p);
	}
}

TEST(mapping_order_case_and_limits)
{
	/* The first matching entry (in the config's order) wins. */
	const char *m[] = {"^/a/", "/first/", "^/a/b", "/second"};
	struct fs_policy *p = mapping(m, 4);
	char small[10];

	CHECK_STR(map(p, "/a/b/c"), "/first/b/c");
	/* A result longer than the buffer is an error, not a cut path. */
	CHECK_EQ(fs_policy_map(p, "/a/bcdefgh", small, sizeof(small)), -ENAMETOOLONG);
	CHECK_EQ(fs_policy_map(p, "/a/b", small, sizeof(small)), 1);
	CHECK_STR(small, "/first/b");
	fs_policy_free(p);

	/* mirrord picks the entry case-insensitively but replaces with the
	 * case-sensitive pattern: a path that matches only when case is
	 * ignored stays as it is, and no later entry is tried. */
	const char *mc[] = {"^/Config/", "/app/", "^/config/", "/other/"};
	p = mapping(mc, 4);
	CHECK_STR(map(p, "/Config/x"), "/app/x");
	CHECK_STR(map(p, "/config/x"), "-");
	CHECK_STR(map(p, "/CONFIG/x"), "-");
	fs_policy_free(p);

	/* No entries: nothing is mapped. */
	p = mapping(NULL, 0);
	CHECK_STR(map(p, "/config/x"), "-");
	fs_policy_free(p);
}

TEST(mapping_bad_pattern)
{
	const char *from[] = {"^/ok/", "^/config/(.*"}, *to[] = {"/a/", "/app/$1"};
	struct fs_policy_config c = {
	        .mode = FS_MODE_READ, .map_from = from, .map_to = to, .n_mapping = 2};
	struct fs_policy *p = NULL;
	char *why = NULL;

	CHECK_EQ(fs_policy_new(&c, &p, &why), -EINVAL);
	CHECK(p == NULL);
	CHECK(why && strstr(why, "^/config/(.*"));
	free(why);
	why = NULL;
	CHECK_EQ(fs_pattern_check("^/config/(.*", &why), -EINVAL);
	CHECK(why && strstr(why, "missing closing parenthesis"));
	free(why);
	CHECK_EQ(fs_pattern_check("^/config/(.*)", NULL), 0);
}

TEST_MAIN()
