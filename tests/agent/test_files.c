/* Remote files (AP_FS_REQ) end to end: the agent in targeted mode against
 * a process chrooted into a prepared directory, driven through the
 * session's client API (session/files.c). A secret file sits next to
 * that root, outside it; no request may ever return it.
 * Usage: test_files PATH-TO-AGENT [TEST]
 * Needs CAP_SYS_CHROOT (root); skips with a reason otherwise. */
#include "tests/agent/agent_harness.h"
#include "tests/unit/test.h"
#include "common/evloop.h"
#include "common/util.h"
#include "session/fs_cache.h"
#include "session/session.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#define SECRET "TOPSECRET-outside-the-root-5e21"
#define DECOY "decoy-inside-the-root"
#define BIG_SIZE (10ull << 30)      /* the sparse file */
#define RSS_MAX_KB (64u * 1024)     /* agent VmRSS after streaming it */
#define FAST_NS (1000ull * 1000000) /* one chunk of the big file */
#define CHUNK (64u * 1024)

/* One prepared target: dir/secret outside, dir/root the target's root. */
struct env {
	char dir[64], root[96];
	pid_t target, agent;
	struct evloop *l;
	struct session *s;
};

static void pathf(char *buf, size_t cap, const char *dir, const char *rel)
{
	CHECK((size_t)snprintf(buf, cap, "%s/%s", dir, rel) < cap);
}

static void put_file(const char *dir, const char *rel, const char *content)
{
	char p[512];
	pathf(p, sizeof(p), dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(write_all(fd, content, strlen(content)), 0);
	close(fd);
}

static void put_link(const char *dir, const char *rel, const char *target)
{
	char p[512];
	pathf(p, sizeof(p), dir, rel);
	CHECK(symlink(target, p) == 0);
}

static void put_dir(const char *dir, const char *rel)
{
	char p[512];
	pathf(p, sizeof(p), dir, rel);
	CHECK(mkdir(p, 0755) == 0);
}

/* The chrooted target: its own mount namespace with a procfs at
 * root/proc (so /proc/self/root tricks meet a real procfs), then chroot. */
static pid_t start_target(const char *root)
{
	int sync[2];
	char ok = 0;

	CHECK(pipe2(sync, O_CLOEXEC) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char proc[128];
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pathf(proc, sizeof(proc), root, "proc");
		if (unshare(CLONE_NEWNS) == 0 &&
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
			(void)mount("proc", proc, "proc", 0, NULL);
		ok = chroot(root) == 0 && chdir("/") == 0 ? 'y' : 'n';
		(void)!write(sync[1], &ok, 1);
		pause();
		_exit(0);
	}
	close(sync[1]);
	CHECK_EQ(read(sync[0], &ok, 1), 1);
	close(sync[0]);
	if (ok != 'y') {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static uint16_t start_agent(pid_t target, pid_t *ret_pid)
{
	char pid[16];
	const char *const mode[] = {"targeted", "--pid", pid, NULL};
	struct agent_run ar;

	snprintf(pid, sizeof(pid), "%d", (int)target);
	agent_start(&ar, 20, NULL, mode);
	*ret_pid = ar.pid;
	return ar.port;
}

/* Prepare the tree, start target and agent, open a session. Returns
 * false (after saying why) when the machine cannot chroot. */
static bool files_setup(struct env *e)
{
	char *why = NULL;

	*e = (struct env){0};
	snprintf(e->dir, sizeof(e->dir), "/tmp/mt-files-XXXXXX");
	CHECK(mkdtemp(e->dir));
	pathf(e->root, sizeof(e->root), e->dir, "root");
	CHECK(mkdir(e->root, 0755) == 0);
	put_file(e->dir, "secret", SECRET);
	put_file(e->root, "secret", DECOY);
	put_file(e->root, "file", "0123456789");
	put_dir(e->root, "proc");
	put_dir(e->root, "a");
	put_dir(e->root, "a/b");
	put_dir(e->root, "empty");

	e->target = start_target(e->root);
	if (e->target < 0) {
		fprintf(stderr, "SKIP: chroot needs CAP_SYS_CHROOT\n");
		CHECK(!getenv("MIRRORD_TRACE_MUST_WORK"));
		return false;
	}
	uint16_t port = start_agent(e->target, &e->agent);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons(port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK_EQ(evloop_new(&e->l), 0);
	if (session_open(e->l, (struct sockaddr *)&sa, sizeof(sa), 5000, &e->s, &why) < 0) {
		fprintf(stderr, "session_open: %s\n", why);
		CHECK(false);
	}
	return true;
}

static void files_teardown(struct env *e)
{
	session_free(e->s);
	evloop_free(e->l);
	if (e->agent > 0) {
		kill(e->agent, SIGKILL);
		waitpid(e->agent, NULL, 0);
	}
	kill(e->target, SIGKILL);
	waitpid(e->target, NULL, 0);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	CHECK(system(cmd) == 0);
}

/* The whole content of a remote regular file, or -errno. */
static int remote_read(struct env *e, const char *path, char *buf, size_t cap)
{
	uint32_t h;
	int r = session_fs_open(e->s, path, O_RDONLY, 0, &h, NULL);

	if (r < 0)
		return r;
	ssize_t n = session_fs_pread(e->s, h, buf, cap - 1, 0);
	CHECK_EQ(session_fs_close(e->s, h), 0);
	CHECK(n >= 0);
	buf[n] = 0;
	return (int)n;
}

/* Every escape attempt either fails or reads what is inside the root. */
static void expect_read(struct env *e, const char *path, int want_err, const char *want)
{
	char buf[256];
	int r = remote_read(e, path, buf, sizeof(buf));

	if (r >= 0 && strstr(buf, "TOPSECRET")) {
		fprintf(stderr, "ESCAPE: \"%s\" returned the secret\n", path);
		CHECK(false);
	}
	if (want_err) {
		if (r != -want_err)
			fprintf(stderr, "\"%s\": got %d, want -%d\n", path, r, want_err);
		CHECK_EQ(r, -want_err);
	} else {
		CHECK(r >= 0);
		CHECK_STR(buf, want);
	}
}

static bool have_proc(struct env *e)
{
	struct statfs sfs;
	return session_fs_statfs(e->s, "/proc", &sfs) == 0 && sfs.f_type == 0x9fa0 /* PROC */;
}

TEST(escapes_stay_in_root)
{
	struct env e;
	char p[512], outside[256];

	if (!files_setup(&e))
		return;
	pathf(outside, sizeof(outside), e.dir, "secret"); /* absolute host path */
	put_link(e.root, "abs", outside);
	put_link(e.root, "abs_dir", e.dir);
	put_link(e.root, "a/b/up", "../../../../../../secret");
	put_link(e.root, "loop1", "loop2");
	put_link(e.root, "loop2", "loop1");
	snprintf(p, sizeof(p), "/proc/%d/root%s", (int)e.agent, outside);
	put_link(e.root, "agent_root", p);
	put_link(e.root, "self_root", "/proc/self/root/../secret");

	/* 1-2: ".." above the root stays at the root (the decoy). */
	expect_read(&e, "/../secret", 0, DECOY);
	expect_read(&e, "/a/b/../../../../../../secret", 0, DECOY);
	/* 3: the host path of the secret names root/<that path>. */
	expect_read(&e, outside, ENOENT, NULL);
	/* 4: an absolute symlink to it is re-anchored at the root. */
	expect_read(&e, "/abs", ENOENT, NULL);
	/* 5: a symlink to the directory outside, then the name. */
	pathf(p, sizeof(p), "/abs_dir", "secret");
	expect_read(&e, p, ENOENT, NULL);
	/* 6: a relative symlink climbing out stops at the root. */
	expect_read(&e, "/a/b/up", 0, DECOY);
	/* 7-8: a symlink loop, and a path through a regular file. */
	expect_read(&e, "/loop1", ELOOP, NULL);
	expect_read(&e, "/file/secret", ENOTDIR, NULL);
	/* 9-11: /proc magic links (the target's procfs): refused. */
	int proc_err = have_proc(&e) ? ELOOP : ENOENT;
	snprintf(p, sizeof(p), "/proc/self/root%s", outside);
	expect_read(&e, p, proc_err, NULL);
	/* pid 1 may be beyond ptrace access (EACCES comes first then). */
	snprintf(p, sizeof(p), "/proc/1/root%s", outside);
	int r = remote_read(&e, p, (char[64]){0}, 64);
	CHECK(r == -proc_err || r == -EACCES);
	expect_read(&e, "/agent_root", proc_err, NULL);
	expect_read(&e, "/self_root", proc_err, NULL);
	snprintf(p, sizeof(p), "/proc/%d/cwd/../secret", (int)e.target);
	expect_read(&e, p, proc_err, NULL);
	/* 12-14: NUL, overlong and relative paths never reach the kernel
	 * as something else. */
	static char longp[5000];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	expect_read(&e, longp, ENAMETOOLONG, NULL);
	longp[300] = 0; /* one component over NAME_MAX */
	expect_read(&e, longp, ENAMETOOLONG, NULL);
	expect_read(&e, "secret", EINVAL, NULL);
	/* stat and readlink see the same confinement. */
	struct stat st, root_st;
	CHECK_EQ(session_fs_stat(e.s, "/..", true, &st), 0);
	CHECK_EQ(stat(e.root, &root_st), 0);
	CHECK_EQ(st.st_ino, root_st.st_ino);
	CHECK_EQ(session_fs_stat(e.s, "/abs", true, &st), -ENOENT);
	CHECK_EQ(session_fs_stat(e.s, "/abs", false, &st), 0);
	CHECK(S_ISLNK(st.st_mode));
	CHECK_EQ(session_fs_stat(e.s, "/agent_root", true, &st), -proc_err);
	/* Listing "/.." lists the root, not the directory around it. */
	struct session_dirent *ents = NULL;
	size_t n = 0;
	bool has_root_dir = false;
	CHECK_EQ(session_fs_list(e.s, "/../..", &ents, &n), 0);
	for (size_t i = 0; i < n; i++)
		has_root_dir |= !strcmp(ents[i].name, "root");
	CHECK(!has_root_dir);
	free(ents);
	files_teardown(&e);
}

TEST(escapes_by_write_ops_stay_in_root)
{
	struct env e;
	char p[512];
	struct stat st;

	if (!files_setup(&e))
		return;
	put_link(e.root, "abs_dir", e.dir);
	CHECK_EQ(session_fs_enable_write(e.s), 0);
	/* unlink "/../secret" removes the decoy, never the secret. */
	CHECK_EQ(session_fs_unlink(e.s, "/../secret"), 0);
	pathf(p, sizeof(p), e.dir, "secret");
	CHECK_EQ(stat(p, &st), 0);
	/* Created and renamed files land inside. */
	CHECK_EQ(session_fs_mkdir(e.s, "/../../made", 0755), 0);
	pathf(p, sizeof(p), e.root, "made");
	CHECK_EQ(stat(p, &st), 0);
	CHECK_EQ(session_fs_rename(e.s, "/file", "/../../moved", 0), 0);
	pathf(p, sizeof(p), e.dir, "moved");
	CHECK(stat(p, &st) < 0);
	pathf(p, sizeof(p), e.root, "moved");
	CHECK_EQ(stat(p, &st), 0);
	/* Through a symlink to the outside directory: not found inside. */
	CHECK_EQ(session_fs_mkdir(e.s, "/abs_dir/evil", 0755), -ENOENT);
	CHECK_EQ(session_fs_rename(e.s, "/moved", "/abs_dir/secret", 0), -ENOENT);
	/* "." and ".." as the last component are refused. */
	CHECK_EQ(session_fs_rmdir(e.s, "/a/.."), -EINVAL);
	CHECK_EQ(session_fs_unlink(e.s, "/"), -EBUSY);
	/* A final symlink is removed itself, not followed. */
	CHECK_EQ(session_fs_unlink(e.s, "/abs_dir"), 0);
	CHECK_EQ(stat(e.dir, &st), 0);
	files_teardown(&e);
}

/* The test moves a directory out of the root and back while the agent
 * resolves "..": RESOLVE_IN_ROOT notices the race (or the walk stays
 * inside); the secret never comes back. */
TEST(rename_race)
{
	struct env e;
	char in[256], out[256];

	if (!files_setup(&e))
		return;
	put_dir(e.root, "a/b/c");
	pathf(in, sizeof(in), e.root, "a/b");
	pathf(out, sizeof(out), e.dir, "b");
	pid_t mover = fork();
	CHECK(mover >= 0);
	if (mover == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;) {
			(void)rename(in, out);
			(void)rename(out, in);
		}
	}
	char buf[256];
	int got_decoy = 0;
	for (int i = 0; i < 2000; i++) {
		int r = remote_read(&e, "/a/b/c/../../../secret", buf, sizeof(buf));
		CHECK(r < 0 || !strstr(buf, "TOPSECRET"));
		got_decoy += r > 0;
	}
	kill(mover, SIGKILL);
	waitpid(mover, NULL, 0);
	(void)rename(out, in);
	CHECK(got_decoy > 0);
	files_teardown(&e);
}

TEST(stat_readlink_access_statfs)
{
	struct env e;
	struct stat want, st;
	char p[512], *target = NULL;

	if (!files_setup(&e))
		return;
	pathf(p, sizeof(p), e.root, "file");
	CHECK_EQ(chown(p, 1234, 5678), 0);
	CHECK_EQ(chmod(p, 0640), 0);
	struct timespec ts[2] = {{1000000000, 123456789}, {1234567890, 987654321}};
	CHECK_EQ(utimensat(AT_FDCWD, p, ts, 0), 0);
	pathf(p, sizeof(p), e.root, "hard");
	char orig[512];
	pathf(orig, sizeof(orig), e.root, "file");
	CHECK_EQ(link(orig, p), 0);
	put_link(e.root, "link", "/a/b");

	CHECK_EQ(stat(orig, &want), 0);
	CHECK_EQ(session_fs_stat(e.s, "/file", true, &st), 0);
	CHECK_EQ(st.st_size, 10);
	CHECK_EQ(st.st_mode, want.st_mode);
	CHECK_EQ(st.st_uid, 1234);
	CHECK_EQ(st.st_gid, 5678);
	CHECK_EQ(st.st_nlink, 2);
	CHECK_EQ(st.st_ino, want.st_ino);
	CHECK_EQ(st.st_mtim.tv_sec, 1234567890);
	CHECK_EQ(st.st_mtim.tv_nsec, 987654321);
	CHECK_EQ(st.st_atim.tv_sec, 1000000000);

	/* lstat vs stat of a symlink, readlink */
	CHECK_EQ(session_fs_stat(e.s, "/link", false, &st), 0);
	CHECK(S_ISLNK(st.st_mode));
	CHECK_EQ(session_fs_stat(e.s, "/link", true, &st), 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_EQ(session_fs_readlink(e.s, "/link", &target), 0);
	CHECK_STR(target, "/a/b");
	free(target);
	CHECK_EQ(session_fs_readlink(e.s, "/file", &target), -EINVAL);
	CHECK_EQ(session_fs_readlink(e.s, "/nope", &target), -ENOENT);

	/* errno pass-through */
	CHECK_EQ(session_fs_stat(e.s, "/nope", true, &st), -ENOENT);
	CHECK_EQ(session_fs_stat(e.s, "/file/x", true, &st), -ENOTDIR);
	uint32_t h;
	/* A directory opens read-only without O_DIRECTORY, as open(2) allows
	 * (Go's os.ReadDir); its handle lists but does not read. */
	char buf[16];
	CHECK_EQ(session_fs_open(e.s, "/a", O_RDONLY, 0, &h, &st), 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_EQ(session_fs_pread(e.s, h, buf, sizeof(buf), 0), -EISDIR);
	CHECK_EQ(session_fs_close(e.s, h), 0);
	CHECK_EQ(session_fs_open(e.s, "/file", O_RDONLY | O_DIRECTORY, 0, &h, NULL), -ENOTDIR);
	CHECK_EQ(session_fs_open(e.s, "/proc/self/fd/0", O_RDONLY, 0, &h, NULL),
	         have_proc(&e) ? -ELOOP : -ENOENT);

	/* access: root may read anything; X_OK needs an x bit. */
	CHECK_EQ(session_fs_access(e.s, "/file", R_OK), 0);
	CHECK_EQ(session_fs_access(e.s, "/file", X_OK), -EACCES);
	CHECK_EQ(session_fs_access(e.s, "/a", X_OK), 0);
	CHECK_EQ(session_fs_access(e.s, "/nope", F_OK), -ENOENT);

	struct statfs sf, wsf;
	CHECK_EQ(session_fs_statfs(e.s, "/a", &sf), 0);
	CHECK_EQ(statfs(e.root, &wsf), 0);
	CHECK_EQ(sf.f_type, wsf.f_type);
	CHECK_EQ(sf.f_bsize, wsf.f_bsize);
	CHECK_EQ(sf.f_namelen, wsf.f_namelen);
	files_teardown(&e);
}

TEST(directory_listing)
{
	struct env e;
	struct session_dirent *ents = NULL;
	size_t n = 0;
	char name[64];

	if (!files_setup(&e))
		return;
	put_link(e.root, "a/lnk", "../file");
	put_file(e.root, "a/f", "x");
	CHECK_EQ(session_fs_list(e.s, "/a", &ents, &n), 0);
	CHECK_EQ(n, 5); /* . .. b lnk f */
	unsigned seen = 0;
	static const struct {
		const char *name;
		uint8_t type;
	} want[] = {{"b", DT_DIR}, {"lnk", DT_LNK}, {"f", DT_REG}, {".", DT_DIR}};
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < ARRAY_SIZE(want); k++)
			if (!strcmp(ents[i].name, want[k].name)) {
				CHECK_EQ(ents[i].type, want[k].type);
				seen |= 1u << k;
			}
	CHECK_EQ(seen, 15);
	free(ents);
	CHECK_EQ(session_fs_list(e.s, "/file", &ents, &n), -ENOTDIR);
	CHECK_EQ(session_fs_list(e.s, "/nope", &ents, &n), -ENOENT);

	/* A directory larger than one page: every name exactly once. */
	put_dir(e.root, "many");
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "many/entry-with-a-longish-name-%04d", i);
		put_file(e.root, name, "");
	}
	CHECK_EQ(session_fs_list(e.s, "/many", &ents, &n), 0);
	CHECK_EQ(n, 3002);
	static bool found[3000];
	for (size_t i = 0; i < n; i++) {
		int k;
		if (sscanf(ents[i].name, "entry-with-a-longish-name-%d", &k) == 1) {
			CHECK(k >= 0 && k < 3000 && !found[k]);
			found[k] = true;
		}
	}
	free(ents);
	files_teardown(&e);
}

static long vm_rss_kb(pid_t pid)
{
	char p[64], line[256];
	long kb = -1;

	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	FILE *f = fopen(p, "re");
	CHECK(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

TEST(large_sparse_file_streams)
{
	struct env e;
	char p[512], buf[CHUNK];
	struct stat st;
	uint32_t h;

	if (!files_setup(&e))
		return;
	pathf(p, sizeof(p), e.root, "big");
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, (off_t)BIG_SIZE), 0);
	CHECK_EQ(pwrite(fd, "HEAD", 4, 0), 4);
	CHECK_EQ(pwrite(fd, "TAIL", 4, (off_t)(BIG_SIZE - 4)), 4);
	close(fd);

	CHECK_EQ(session_fs_open(e.s, "/big", O_RDONLY, 0, &h, &st), 0);
	CHECK_EQ((uint64_t)st.st_size, BIG_SIZE);
	uint64_t t0 = now_ns();
	CHECK_EQ(session_fs_pread(e.s, h, buf, sizeof(buf), 0), CHUNK);
	CHECK(!memcmp(buf, "HEAD", 4));
	CHECK(now_ns() - t0 < FAST_NS);
	t0 = now_ns();
	CHECK_EQ(session_fs_pread(e.s, h, buf, sizeof(buf), BIG_SIZE - CHUNK), CHUNK);
	CHECK(!memcmp(buf + CHUNK - 4, "TAIL", 4));
	CHECK(now_ns() - t0 < FAST_NS);
	/* Past the end: 0 bytes, as pread. */
	CHECK_EQ(session_fs_pread(e.s, h, buf, sizeof(buf), BIG_SIZE), 0);

	/* Stream 64 MiB through the pipeline into a local file, then the
	 * last 1 MiB (short at EOF): the agent holds a chunk, not a file. */
	char local[] = "/tmp/mt-files-local-XXXXXX";
	int lfd = mkstemp(local);
	CHECK(lfd >= 0);
	unlink(local);
	CHECK_EQ(session_fs_fetch(e.s, h, 0, 64u << 20, lfd), 64u << 20);
	CHECK_EQ(pread(lfd, buf, 4, 0), 4);
	CHECK(!memcmp(buf, "HEAD", 4));
	CHECK_EQ(session_fs_fetch(e.s, h, BIG_SIZE - 1000, 1u << 20, lfd), 1000);
	CHECK_EQ(pread(lfd, buf, 4, (off_t)(BIG_SIZE - 4)), 4);
	CHECK(!memcmp(buf, "TAIL", 4));
	close(lfd);
	long rss = vm_rss_kb(e.agent);
	CHECK(rss > 0);
	if (rss >= RSS_MAX_KB)
		fprintf(stderr, "agent VmRSS %ld kB\n", rss);
	CHECK(rss < RSS_MAX_KB);
	CHECK_EQ(session_fs_close(e.s, h), 0);
	/* The handle is gone: reads of it fail. */
	CHECK_EQ(session_fs_pread(e.s, h, buf, 16, 0), -EBADF);
	files_teardown(&e);
}

/* The asynchronous calls of the FUSE server: answers reach their
 * callbacks by id, from the loop and from inside a blocking call; a
 * cancelled request stays silent; a lost session fails what is pending. */
struct async_rec {
	struct evloop *l;
	int calls, err;
	uint32_t handle;
	off_t size;
	char data[16];
	size_t len;
	int *left; /* quit the loop when it reaches 0 */
};

static void async_cb(void *data, const struct session_fs_result *res)
{
	struct async_rec *r = data;

	r->calls++;
	r->err = res->err;
	if (res->st) {
		r->handle = res->handle;
		r->size = res->st->st_size;
	}
	r->len = res->len < sizeof(r->data) ? res->len : sizeof(r->data);
	if (res->data)
		memcpy(r->data, res->data, r->len);
	if (r->left && --*r->left == 0)
		evloop_quit(r->l, 0);
}

static void quit_cb(struct evloop *l, void *data)
{
	(void)data;
	evloop_quit(l, -ETIMEDOUT);
}

static int run_until_done(struct env *e)
{
	int64_t t = evloop_timer(e->l, 5000, quit_cb, NULL);
	int r = evloop_run(e->l);

	if (r == 0)
		evloop_timer_cancel(e->l, t);
	return r;
}

TEST(async_requests)
{
	struct env e;
	int left = 2;
	struct stat st;

	if (!files_setup(&e))
		return;
	struct async_rec op = {.l = e.l, .left = &left}, miss = {.l = e.l, .left = &left};
	CHECK(session_fs_open_async(e.s, "/file", async_cb, &op) > 0);
	CHECK(session_fs_open_async(e.s, "/missing", async_cb, &miss) > 0);
	CHECK_EQ(run_until_done(&e), 0);
	CHECK_EQ(op.calls, 1);
	CHECK_EQ(op.err, 0);
	CHECK_EQ(op.size, 10);
	CHECK_EQ(miss.calls, 1);
	CHECK_EQ(miss.err, -ENOENT);

	/* Three reads in flight, one cancelled; a blocking stat meanwhile
	 * delivers the answers that come before its own. */
	struct async_rec a = {.l = e.l}, b = {.l = e.l}, c = {.l = e.l}, end = {.l = e.l};
	CHECK(session_fs_pread_async(e.s, op.handle, 4, 0, async_cb, &a) > 0);
	int64_t rb = session_fs_pread_async(e.s, op.handle, 4, 3, async_cb, &b);
	CHECK(rb > 0);
	CHECK(session_fs_pread_async(e.s, op.handle, 100, 6, async_cb, &c) > 0);
	CHECK(session_fs_pread_async(e.s, op.handle, 4, 10, async_cb, &end) > 0);
	session_fs_cancel(e.s, rb);
	CHECK_EQ(session_fs_stat(e.s, "/file", true, &st), 0);
	CHECK_EQ(a.calls, 1);
	CHECK_EQ(a.len, 4u);
	CHECK(!memcmp(a.data, "0123", 4));
	CHECK_EQ(b.calls, 0);
	CHECK_EQ(c.calls, 1);
	CHECK_EQ(c.len, 4u); /* short at the end of the file */
	CHECK(!memcmp(c.data, "6789", 4));
	CHECK_EQ(end.calls, 1);
	CHECK_EQ(end.len, 0u);
	CHECK_EQ(session_fs_pread_async(e.s, op.handle, 0, 0, async_cb, &a), -EINVAL);

	/* The agent dies with a read pending: it fails, once. */
	struct async_rec lost = {.l = e.l};
	session_fs_close_nowait(e.s, op.handle);
	uint32_t h2;
	CHECK_EQ(session_fs_open(e.s, "/file", O_RDONLY, 0, &h2, NULL), 0);
	kill(e.agent, SIGKILL);
	waitpid(e.agent, NULL, 0);
	e.agent = 0;
	if (session_fs_pread_async(e.s, h2, 4, 0, async_cb, &lost) > 0) {
		/* (the loop ran once already: a blocking call notices) */
		CHECK(session_fs_stat(e.s, "/file", true, &st) < 0);
		CHECK_EQ(lost.calls, 1);
		CHECK_EQ(lost.err, -ECONNRESET);
	}
	CHECK(session_fs_pread_async(e.s, h2, 4, 0, async_cb, &lost) < 0);
	files_teardown(&e);
}

TEST(handles_are_bounded)
{
	struct env e;
	uint32_t h[256], extra;

	if (!files_setup(&e))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(h); i++)
		CHECK_EQ(session_fs_open(e.s, "/file", O_RDONLY, 0, &h[i], NULL), 0);
	CHECK_EQ(session_fs_open(e.s, "/file", O_RDONLY, 0, &extra, NULL), -EMFILE);
	CHECK_EQ(session_fs_close(e.s, h[7]), 0);
	CHECK_EQ(session_fs_open(e.s, "/file", O_RDONLY, 0, &extra, NULL), 0);
	CHECK(extra != h[7]); /* a new generation: the old id stays dead */
	CHECK_EQ(session_fs_close(e.s, h[7]), -EBADF);
	files_teardown(&e);
}

TEST(writes_refused_until_enabled)
{
	struct env e;
	uint32_t h;
	char p[512];
	struct stat st;

	if (!files_setup(&e))
		return;
	CHECK_EQ(session_fs_open(e.s, "/new", O_WRONLY | O_CREAT, 0644, &h, NULL), -EROFS);
	CHECK_EQ(session_fs_open(e.s, "/file", O_RDWR, 0, &h, NULL), -EROFS);
	CHECK_EQ(session_fs_mkdir(e.s, "/d", 0755), -EROFS);
	CHECK_EQ(session_fs_unlink(e.s, "/file"), -EROFS);
	CHECK_EQ(session_fs_rmdir(e.s, "/empty"), -EROFS);
	CHECK_EQ(session_fs_rename(e.s, "/file", "/file2", 0), -EROFS);
	CHECK_EQ(session_fs_truncate(e.s, "/file", 0), -EROFS);
	CHECK_EQ(session_fs_open(e.s, "/file", O_RDONLY, 0, &h, &st), 0);
	CHECK_EQ(session_fs_close(e.s, h), 0);
	CHECK_EQ(session_fs_put(e.s, 0, "/file", 0644, &st, NULL), -EROFS); /* OPEN_IF */
	/* A read handle cannot write either. */
	CHECK_EQ(session_fs_open(e.s, "/file", O_RDONLY, 0, &h, NULL), 0);
	CHECK_EQ(session_fs_pwrite(e.s, h, "x", 1, 0), -EBADF);
	pathf(p, sizeof(p), e.root, "file");
	CHECK_EQ(stat(p, &st), 0);
	CHECK_EQ(st.st_size, 10);
	pathf(p, sizeof(p), e.root, "empty");
	CHECK_EQ(stat(p, &st), 0);
	files_teardown(&e);
}

TEST(write_mode_reaches_the_root)
{
	struct env e;
	char p[512], buf[64];
	struct stat st;
	uint32_t h;

	if (!files_setup(&e))
		return;
	CHECK_EQ(session_fs_enable_write(e.s), 0);

	/* Write-back of a 300 KiB file: several pipelined chunks. */
	char local[] = "/tmp/mt-files-put-XXXXXX";
	int lfd = mkstemp(local);
	CHECK(lfd >= 0);
	unlink(local);
	static uint8_t data[300 * 1024];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	CHECK_EQ(write_all(lfd, data, sizeof(data)), 0);
	CHECK_EQ(session_fs_put(e.s, lfd, "/a/b/written", 0600, NULL, NULL), 0);
	close(lfd);
	pathf(p, sizeof(p), e.root, "a/b/written");
	CHECK_EQ(stat(p, &st), 0);
	CHECK_EQ(st.st_size, sizeof(data));
	CHECK_EQ(st.st_mode & 07777, 0600);
	static uint8_t back[sizeof(data)];
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	CHECK_EQ(read(fd, back, sizeof(back)), sizeof(back));
	close(fd);
	CHECK(!memcmp(data, back, sizeof(data)));

	/* Overwrite truncates; O_EXCL refuses an existing file. */
	CHECK_EQ(session_fs_open(e.s, "/file", O_WRONLY | O_TRUNC, 0, &h, NULL), 0);
	CHECK_EQ(session_fs_pwrite(e.s, h, "new", 3, 0), 3);
	CHECK_EQ(session_fs_fsync(e.s, h, NULL), 0);
	CHECK_EQ(session_fs_close(e.s, h), 0);
	CHECK_EQ(remote_read(&e, "/file", buf, sizeof(buf)), 3);
	CHECK_STR(buf, "new");
	CHECK_EQ(session_fs_open(e.s, "/file", O_WRONLY | O_CREAT | O_EXCL, 0644, &h, NULL),
	         -EEXIST);

	CHECK_EQ(session_fs_mkdir(e.s, "/dir", 0750), 0);
	pathf(p, sizeof(p), e.root, "dir");
	CHECK_EQ(stat(p, &st), 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_EQ(session_fs_mkdir(e.s, "/dir", 0750), -EEXIST);
	CHECK_EQ(session_fs_rename(e.s, "/file", "/dir/renamed", 0), 0);
	CHECK_EQ(session_fs_rename(e.s, "/secret", "/dir/renamed", RENAME_NOREPLACE), -EEXIST);
	CHECK_EQ(session_fs_truncate(e.s, "/dir/renamed", 1), 0);
	pathf(p, sizeof(p), e.root, "dir/renamed");
	CHECK_EQ(stat(p, &st), 0);
	CHECK_EQ(st.st_size, 1);
	CHECK_EQ(session_fs_rmdir(e.s, "/dir"), -ENOTEMPTY);
	CHECK_EQ(session_fs_unlink(e.s, "/dir/renamed/"), -ENOTDIR);
	CHECK_EQ(session_fs_unlink(e.s, "/dir"), -EISDIR);
	CHECK_EQ(session_fs_unlink(e.s, "/dir/renamed"), 0);
	CHECK_EQ(session_fs_rmdir(e.s, "/dir"), 0);
	CHECK(stat(p, &st) < 0);
	CHECK_EQ(session_fs_truncate(e.s, "/a", 0), -EISDIR);
	/* open(2) answers EISDIR to a directory opened for writing */
	CHECK_EQ(session_fs_open(e.s, "/a", O_WRONLY, 0, &h, NULL), -EISDIR);
	CHECK_EQ(session_fs_open(e.s, "/a", O_RDWR | O_CREAT, 0600, &h, NULL), -EISDIR);
	files_teardown(&e);
}

/* A local file holding content, for session_fs_put. */
static int local_with(const char *content)
{
	char local[] = "/tmp/mt-files-put-XXXXXX";
	int fd = mkstemp(local);

	CHECK(fd >= 0);
	unlink(local);
	CHECK_EQ(write_all(fd, content, strlen(content)), 0);
	return fd;
}

static bool same_version(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* File times move in clock ticks (a jiffy without multigrain timestamps):
 * a change the test makes must land in a later tick than the version it
 * changes, or it would be the documented blind spot (same size, same
 * tick). */
static void next_tick(void)
{
	nanosleep(&(struct timespec){0, 25 * 1000000}, NULL);
}

TEST(write_back_only_over_its_base)
{
	struct env e;
	char p[512], tmp[512], buf[64];
	struct stat base, st, now;
	struct session_stats ss;
	uint32_t h;
	int fd;

	if (!files_setup(&e))
		return;
	CHECK_EQ(session_fs_enable_write(e.s), 0);
	pathf(p, sizeof(p), e.root, "file");

	/* The base is what OPEN reported; FSYNC reports what was written. */
	CHECK_EQ(session_fs_open(e.s, "/file", O_RDWR, 0, &h, &base), 0);
	CHECK_EQ(session_fs_close(e.s, h), 0);
	fd = local_with("first");
	CHECK_EQ(session_fs_put(e.s, fd, "/file", 0644, &base, &st), 0);
	close(fd);
	CHECK_EQ(remote_read(&e, "/file", buf, sizeof(buf)), 5);
	CHECK_STR(buf, "first");
	CHECK_EQ(stat(p, &now), 0);
	CHECK(same_version(&st, &now));

	/* Twice in a row from the version it wrote: no conflict. */
	fd = local_with("second");
	CHECK_EQ(session_fs_put(e.s, fd, "/file", 0644, &st, &st), 0);
	close(fd);
	CHECK_EQ(remote_read(&e, "/file", buf, sizeof(buf)), 6);
	CHECK_STR(buf, "second");

	/* Written in the pod: refused, and the pod's content stays. */
	put_file(e.root, "file", "the pod wrote this");
	fd = local_with("third");
	CHECK_EQ(session_fs_put(e.s, fd, "/file", 0644, &st, NULL), -ESTALE);
	CHECK_EQ(remote_read(&e, "/file", buf, sizeof(buf)), 18);
	CHECK_STR(buf, "the pod wrote this");

	/* Same size, mtime set back (cp -p, touch -d): ctime still moved. */
	CHECK_EQ(session_fs_stat(e.s, "/file", true, &base), 0);
	next_tick();
	put_file(e.root, "file", "THE POD WROTE THIS");
	CHECK_EQ(utimensat(AT_FDCWD, p, (struct timespec[]){base.st_atim, base.st_mtim}, 0), 0);
	CHECK_EQ(session_fs_put(e.s, fd, "/file", 0644, &base, NULL), -ESTALE);
	CHECK_EQ(remote_read(&e, "/file", buf, sizeof(buf)), 18);
	CHECK_STR(buf, "THE POD WROTE THIS");

	/* Replaced (another inode, as an editor or a rename does). */
	CHECK_EQ(session_fs_stat(e.s, "/file", true, &base), 0);
	put_file(e.root, "file.new", "replaced");
	pathf(tmp, sizeof(tmp), e.root, "file.new");
	CHECK_EQ(rename(tmp, p), 0);
	CHECK_EQ(session_fs_put(e.s, fd, "/file", 0644, &base, NULL), -ESTALE);
	CHECK_EQ(remote_read(&e, "/file", buf, sizeof(buf)), 8);
	CHECK_STR(buf, "replaced");

	/* Deleted: stays deleted. */
	CHECK_EQ(session_fs_stat(e.s, "/file", true, &base), 0);
	CHECK_EQ(unlink(p), 0);
	CHECK_EQ(session_fs_put(e.s, fd, "/file", 0644, &base, NULL), -ENOENT);
	CHECK(stat(p, &now) < 0);
	close(fd);

	session_get_stats(e.s, &ss);
	CHECK_EQ(ss.fs_conflicts, 4u);
	files_teardown(&e);
}

struct conflicts {
	int calls;
	bool gone;
	char saved[512];
	int err;
};

static void on_conflict(void *data, const struct fs_cache_conflict *cf)
{
	struct conflicts *c = data;

	c->calls++;
	c->gone = cf->gone;
	c->err = cf->err;
	snprintf(c->saved, sizeof(c->saved), "%s", cf->saved ? cf->saved : "");
}

/* Replace the content of the local file at path. */
static void rewrite(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_EQ(write_all(fd, content, strlen(content)), 0);
	close(fd);
}

static void expect_content(const char *path, const char *want)
{
	char buf[128] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK(read(fd, buf, sizeof(buf) - 1) >= 0);
	close(fd);
	CHECK_STR(buf, want);
}

/* The cache's policy: the pod's change is kept, the program's version
 * saved, one report per file, and no conflict from the run's own
 * write-backs. */
TEST(write_back_conflict_keeps_the_pods_change)
{
	struct env e;
	struct conflicts seen = {0};
	struct fs_cache *c;
	struct session_stats ss;
	char cache[128], dir[128], pod[512], want[512], buf[64];

	if (!files_setup(&e))
		return;
	CHECK_EQ(session_fs_enable_write(e.s), 0);
	pathf(cache, sizeof(cache), e.dir, "cache");
	pathf(dir, sizeof(dir), e.dir, "state/conflicts/run");
	CHECK_EQ(fs_cache_new(e.s, cache, &c), 0);
	fs_cache_set_conflicts(c, dir, on_conflict, &seen);

	/* Created by the program; written back twice, in quick succession
	 * and with the same size: each time, and no conflict. */
	CHECK_EQ(fs_cache_write_open(c, "/a/b/doc", O_WRONLY | O_CREAT, 0644), 0);
	char *local = fs_cache_path(c, "/a/b/doc");
	rewrite(local, "v1");
	CHECK_EQ(fs_cache_sync(c, local), 0);
	CHECK_EQ(remote_read(&e, "/a/b/doc", buf, sizeof(buf)), 2);
	CHECK_STR(buf, "v1");
	rewrite(local, "v2");
	CHECK_EQ(fs_cache_sync(c, local), 0);
	CHECK_EQ(remote_read(&e, "/a/b/doc", buf, sizeof(buf)), 2);
	CHECK_STR(buf, "v2");
	CHECK_EQ(seen.calls, 0);

	/* Written in the pod meanwhile: the pod's version stays, the
	 * program's is saved, and later write-backs only update the saved
	 * copy, without a second report. */
	next_tick();
	put_file(e.root, "a/b/doc", "the pod's edit");
	rewrite(local, "v3");
	CHECK_EQ(fs_cache_sync(c, local), 0);
	CHECK_EQ(seen.calls, 1);
	CHECK(!seen.gone);
	pathf(want, sizeof(want), dir, "a/b/doc");
	CHECK_STR(seen.saved, want);
	expect_content(want, "v3");
	pathf(pod, sizeof(pod), e.root, "a/b/doc");
	expect_content(pod, "the pod's edit");
	rewrite(local, "v4");
	CHECK_EQ(fs_cache_sync(c, local), 0);
	CHECK_EQ(seen.calls, 1);
	expect_content(want, "v4");
	expect_content(pod, "the pod's edit");

	/* Deleted in the pod: not created again. */
	CHECK_EQ(fs_cache_write_open(c, "/gone", O_RDWR | O_CREAT, 0600), 0);
	char *local2 = fs_cache_path(c, "/gone");
	pathf(pod, sizeof(pod), e.root, "gone");
	CHECK_EQ(unlink(pod), 0);
	rewrite(local2, "mine");
	CHECK_EQ(fs_cache_sync(c, local2), 0);
	CHECK_EQ(seen.calls, 2);
	CHECK(seen.gone);
	pathf(want, sizeof(want), dir, "gone");
	CHECK_STR(seen.saved, want);
	expect_content(want, "mine");
	CHECK(access(pod, F_OK) < 0);

	/* At the end: nothing new to write, no new report. */
	fs_cache_free(c);
	CHECK_EQ(seen.calls, 2);
	session_get_stats(e.s, &ss);
	CHECK_EQ(ss.fs_conflicts, 2u);
	free(local);
	free(local2);
	files_teardown(&e);
}

TEST_MAIN_WITH_ARG(agent_path, "PATH-TO-mirrord-trace-agent")
