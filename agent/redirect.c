/* Steal redirects in the target's network namespace, and their cleanup.
 *
 * One agent process owns one rule set, named after the worker's pid and
 * start time ("MTIN_<pid>_<start>"): unique across agents on a node, and
 * enough for a later agent to tell whether the owner is still alive. The
 * backend is nft (one table of ours, replaced atomically with `nft -f`)
 * when the nft binary exists, else iptables/ip6tables (two chains of ours,
 * hooked from PREROUTING and OUTPUT, refilled with `*-restore --noflush`);
 * MIRRORD_TRACE_AGENT_FIREWALL=iptables|nft picks one.
 *
 *   PREROUTING: tcp dport P -> REDIRECT to the agent's listener
 *   OUTPUT:     mark MT_AGENT_MARK -> RETURN (the agent's own sockets)
 *               -o lo tcp dport P -> REDIRECT (the pod's localhost clients)
 *
 * Rules never outlive the worker: the worker removes them when the last
 * steal ends and when its client goes; a guard process (forked at the
 * first install, holding the read end of a pipe whose write end only the
 * worker has) removes them when the worker dies in any way, SIGKILL
 * included; and an agent starting in a namespace removes rule sets whose
 * owner is gone (the whole pod killed, guard included).
 *
 * Commands run synchronously (a few ms each), only on subscribe and
 * unsubscribe. Nothing here logs: errors go back as -errno plus a line
 * of the tool's stderr for the caller to log. */
#include "agent/incoming.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define RULESET_ID_MAX 23    /* "<pid>_<start>"; "MTOUT_" + 22 fits iptables (28) */
#define RULESET_NAME_MAX 48  /* "MTOUT_" + id; iptables takes up to 28 */
#define CMD_OUTPUT_MAX 4096  /* stdout kept from one listing */
#define RULES_TEXT_MAX 16384 /* one restore/nft script: ports x ~120 bytes */
#define STALE_MAX 64         /* leftover rule sets removed in one start */

enum backend { BK_NONE, BK_NFT, BK_IPTABLES };

struct redirect {
	uint16_t listen_port;
	bool installed; /* our table / chains exist */
};

static enum backend backend;
static char id[RULESET_ID_MAX]; /* "<pid>_<start>" of this worker */
static int guard_fd = -1;       /* write end of the guard's pipe */
/* iptables-nft only: the nat tables and base chains that did not exist
 * before our first rule. iptables-nft creates them on demand and they
 * stay after our chains go; deleting them again (when empty) leaves
 * `nft list ruleset` as it was. Bit 0/1: table ip/ip6 nat, bits 2..5:
 * PREROUTING and OUTPUT of each. */
static unsigned made_nat;
static void unmake_nat(void);
static const char *const ipt_families[] = {"ip", "ip6"};

/* Start time of pid in clock ticks (field 22 of /proc/PID/stat), 0 if
 * the process does not exist. */
static uint64_t proc_start(pid_t pid)
{
	char path[64], buf[1024];
	uint64_t start = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* comm may hold spaces and parentheses: count from the last ')'. */
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p && sscanf(p + 1, "%" SCNu64, &start) != 1)
		start = 0;
	return start;
}

static enum backend pick_backend(void)
{
	const char *env = getenv("MIRRORD_TRACE_AGENT_FIREWALL");

	if (env && !strcmp(env, "nft"))
		return BK_NFT;
	if (env && !strcmp(env, "iptables"))
		return BK_IPTABLES;
	if (!access("/usr/sbin/nft", X_OK) || !access("/sbin/nft", X_OK) ||
	    !access("/usr/bin/nft", X_OK))
		return BK_NFT;
	return BK_IPTABLES;
}

int redirect_use_backend(const char *name)
{
	if (!strcmp(name, "nft"))
		backend = BK_NFT;
	else if (!strcmp(name, "iptables"))
		backend = BK_IPTABLES;
	else
		return -EINVAL;
	return 0;
}

static void init_once(void)
{
	if (id[0])
		return;
	if (backend == BK_NONE)
		backend = pick_backend();
	snprintf(id, sizeof(id), "%d_%" PRIu64, (int)getpid(), proc_start(getpid()));
}

/* Run argv (PATH lookup, no shell) with `input` on stdin. Its stdout goes
 * to out[0..cap) (NUL-terminated, cut at cap) when out is given; the
 * first line of its stderr to err. Returns 0 if it exited 0, -EIO if it
 * failed, -errno if it could not run. */
static int run(const char *const *argv, const char *input, char *out, size_t cap, char *err,
               size_t errcap)
{
	int in[2], o[2], e[2];
	pid_t pid;
	int st;

	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0) {
		int r = -errno;
		close(in[0]), close(in[1]);
		return r;
	}
	pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(in[0]), close(in[1]), close(o[0]), close(o[1]), close(e[0]), close(e[1]);
		return r;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(o[1], 1);
		dup2(e[1], 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]), close(o[1]), close(e[1]);
	/* Scripts are a few KiB, below the pipe's buffer: no deadlock with
	 * the child writing its output before reading all of stdin. */
	if (input)
		(void)!write_all(in[1], input, strlen(input));
	close(in[1]);
	size_t n = 0;
	char sink[512];
	for (;;) {
		ssize_t k = out && n + 1 < cap ? read(o[0], out + n, cap - 1 - n)
		                               : read(o[0], sink, sizeof(sink));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		if (out && n + 1 < cap)
			n += (size_t)k;
	}
	if (out)
		out[n] = 0;
	ssize_t k = read(e[0], sink, sizeof(sink) - 1);
	if (err && errcap) {
		size_t l = 0;
		if (k > 0) {
			sink[k] = 0;
			l = strcspn(sink, "\n");
			if (l >= errcap)
				l = errcap - 1;
			memcpy(err, sink, l);
		}
		err[l] = 0;
	}
	close(o[0]), close(e[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return -ENOENT;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

#define RUN(err, errcap, ...) \
	run((const char *const[]){__VA_ARGS__, NULL}, NULL, NULL, 0, err, errcap)

/* Remove the rule set named by rid ("<pid>_<start>"), quietly: parts that
 * do not exist are fine. */
static void remove_ruleset(enum backend bk, const char *rid)
{
	char in[RULESET_NAME_MAX], out[RULESET_NAME_MAX], table[RULESET_NAME_MAX + 16];

	if (bk == BK_NFT) {
		snprintf(table, sizeof(table), "mirrord_trace_%s", rid);
		(void)RUN(NULL, 0, "nft", "delete", "table", "inet", table);
		return;
	}
	snprintf(in, sizeof(in), "MTIN_%s", rid);
	snprintf(out, sizeof(out), "MTOUT_%s", rid);
	static const char *const tools[] = {"iptables", "ip6tables"};
	for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
		/* A chain cannot go while a rule jumps to it: unhook first,
		 * as often as it is hooked. */
		for (int k = 0; k < 4; k++)
			if (RUN(NULL, 0, tools[i], "-w", "-t", "nat", "-D", "PREROUTING", "-j",
			        in) < 0)
				break;
		for (int k = 0; k < 4; k++)
			if (RUN(NULL, 0, tools[i], "-w", "-t", "nat", "-D", "OUTPUT", "-j", out) <
			    0)
				break;
		(void)RUN(NULL, 0, tools[i], "-w", "-t", "nat", "-F", in);
		(void)RUN(NULL, 0, tools[i], "-w", "-t", "nat", "-X", in);
		(void)RUN(NULL, 0, tools[i], "-w", "-t", "nat", "-F", out);
		(void)RUN(NULL, 0, tools[i], "-w", "-t", "nat", "-X", out);
	}
	if (made_nat && !strcmp(rid, id))
		unmake_nat();
}

static const char *const base_chains[] = {"PREROUTING", "OUTPUT"};

/* Before the first rule: remember what iptables-nft would create. */
static void note_nat_tables(void)
{
	char ver[128];

	if (run((const char *const[]){"iptables", "-V", NULL}, NULL, ver, sizeof(ver), NULL, 0) <
	            0 ||
	    !strstr(ver, "nf_tables"))
		return;
	for (unsigned f = 0; f < 2; f++) {
		if (RUN(NULL, 0, "nft", "list", "table", ipt_families[f], "nat") < 0)
			made_nat |= 1u << f;
		for (unsigned c = 0; c < 2; c++)
			if (RUN(NULL, 0, "nft", "list", "chain", ipt_families[f], "nat",
			        base_chains[c]) < 0)
				made_nat |= 1u << (2 + f * 2 + c);
	}
}

/* Delete what note_nat_tables() found missing, if nothing was put in it
 * since: nft refuses to delete a chain that holds rules, and a table is
 * deleted only when it lists no chain. */
static void unmake_nat(void)
{
	char text[CMD_OUTPUT_MAX];

	for (unsigned f = 0; f < 2; f++) {
		for (unsigned c = 0; c < 2; c++)
			if (made_nat & (1u << (2 + f * 2 + c)))
				(void)RUN(NULL, 0, "nft", "delete", "chain", ipt_families[f], "nat",
				          base_chains[c]);
		if ((made_nat & (1u << f)) &&
		    run((const char *const[]){"nft", "list", "table", ipt_families[f], "nat", NULL},
		        NULL, text, sizeof(text), NULL, 0) == 0 &&
		    !strstr(text, "chain "))
			(void)RUN(NULL, 0, "nft", "delete", "table", ipt_families[f], "nat");
	}
}

static int guard_start(void)
{
	int p[2];

	if (guard_fd >= 0)
		return 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(p[0]), close(p[1]);
		return r;
	}
	if (pid == 0) {
		char c;
		int rd = p[0];

		close(p[1]);
		/* Everything else the worker had open (client, listeners,
		 * target fds): none of it is ours to keep alive. */
		for (int fd = 3; fd < 65536; fd++)
			if (fd != rd)
				close(fd);
		setsid();
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		prctl(PR_SET_NAME, "mt-agent-guard");
		while (read(rd, &c, 1) < 0 && errno == EINTR)
			;
		remove_ruleset(backend, id);
		_exit(0);
	}
	close(p[0]);
	guard_fd = p[1];
	return 0;
}

int redirect_new(uint16_t listen_port, struct redirect **ret)
{
	struct redirect *r = xcalloc(1, sizeof(*r));

	init_once();
	r->listen_port = listen_port;
	*ret = r;
	return 0;
}

static int apply_nft(struct redirect *r, const uint16_t *ports, size_t n, char *err, size_t errcap)
{
	_cleanup_free_ char *s = xmalloc(RULES_TEXT_MAX);
	size_t off = 0;
	char table[RULESET_NAME_MAX + 16];

	snprintf(table, sizeof(table), "mirrord_trace_%s", id);
	/* "add table" + "delete table" + the new table in one transaction:
	 * the old rules are replaced atomically, never absent midway. */
	off += (size_t)snprintf(s + off, RULES_TEXT_MAX - off,
	                        "add table inet %s\ndelete table inet %s\n"
	                        "table inet %s {\n"
	                        " chain pre { type nat hook prerouting priority -110; }\n"
	                        " chain out { type nat hook output priority -110;\n"
	                        "  meta mark 0x%x return\n",
	                        table, table, table, MT_AGENT_MARK);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, RULES_TEXT_MAX - off,
		                        "  oifname \"lo\" tcp dport %u redirect to :%u\n", ports[i],
		                        r->listen_port);
	off += (size_t)snprintf(s + off, RULES_TEXT_MAX - off, " }\n}\n");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, RULES_TEXT_MAX - off,
		                        "add rule inet %s pre tcp dport %u redirect to :%u\n",
		                        table, ports[i], r->listen_port);
	if (off >= RULES_TEXT_MAX)
		return -E2BIG;
	return run((const char *const[]){"nft", "-f", "-", NULL}, s, NULL, 0, err, errcap);
}

static int apply_iptables(struct redirect *r, const char *tool, const uint16_t *ports, size_t n,
                          char *err, size_t errcap)
{
	_cleanup_free_ char *s = xmalloc(RULES_TEXT_MAX);
	char restore[32];
	size_t off = 0;
	int e;

	if (!r->installed) {
		char in[RULESET_NAME_MAX], out[RULESET_NAME_MAX];
		snprintf(in, sizeof(in), "MTIN_%s", id);
		snprintf(out, sizeof(out), "MTOUT_%s", id);
		e = RUN(err, errcap, tool, "-w", "-t", "nat", "-N", in);
		if (e == 0)
			e = RUN(err, errcap, tool, "-w", "-t", "nat", "-N", out);
		if (e == 0)
			e = RUN(err, errcap, tool, "-w", "-t", "nat", "-I", "PREROUTING", "1", "-j",
			        in);
		if (e == 0)
			e = RUN(err, errcap, tool, "-w", "-t", "nat", "-I", "OUTPUT", "1", "-j",
			        out);
		if (e < 0)
			return e;
	}
	/* A chain line in a --noflush restore empties that chain, so the
	 * rule list is replaced in one commit. */
	off += (size_t)snprintf(s + off, RULES_TEXT_MAX - off,
	                        "*nat\n:MTIN_%s - [0:0]\n:MTOUT_%s - [0:0]\n"
	                        "-A MTOUT_%s -m mark --mark 0x%x -j RETURN\n",
	                        id, id, id, MT_AGENT_MARK);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(
		        s + off, RULES_TEXT_MAX - off,
		        "-A MTIN_%s -p tcp -m tcp --dport %u -j REDIRECT --to-ports "
		        "%u\n-A MTOUT_%s -o lo -p tcp -m tcp --dport %u -j REDIRECT "
		        "--to-ports %u\n",
		        id, ports[i], r->listen_port, id, ports[i], r->listen_port);
	off += (size_t)snprintf(s + off, RULES_TEXT_MAX - off, "COMMIT\n");
	if (off >= RULES_TEXT_MAX)
		return -E2BIG;
	snprintf(restore, sizeof(restore), "%s-restore", tool);
	return run((const char *const[]){restore, "-w", "--noflush", NULL}, s, NULL, 0, err,
	           errcap);
}

int redirect_set_ports(struct redirect *r, const uint16_t *ports, size_t n, char *err,
                       size_t errcap)
{
	int e;

	if (err && errcap)
		err[0] = 0;
	if (n == 0) {
		if (r->installed)
			remove_ruleset(backend, id);
		r->installed = false;
		return 0;
	}
	if (backend == BK_IPTABLES && !r->installed && guard_fd < 0)
		note_nat_tables();
	/* The guard exists before the first rule does. */
	e = guard_start();
	if (e < 0)
		return e;
	if (backend == BK_NFT) {
		e = apply_nft(r, ports, n, err, errcap);
	} else {
		e = apply_iptables(r, "iptables", ports, n, err, errcap);
		/* IPv6 is best effort: a node without ip6tables (or IPv6)
		 * still steals IPv4. */
		if (e == 0)
			(void)apply_iptables(r, "ip6tables", ports, n, NULL, 0);
	}
	if (e < 0) {
		if (!r->installed)
			remove_ruleset(backend, id); /* half-made chains */
		return e;
	}
	r->installed = true;
	return 0;
}

void redirect_free(struct redirect *r)
{
	if (!r)
		return;
	if (r->installed)
		remove_ruleset(backend, id);
	free(r);
}

/* rid "<pid>_<start>": its owner is alive if that pid exists with that
 * start time (pid reuse gives another start time). */
static bool owner_alive(const char *rid)
{
	uint64_t pid, start;
	char tail;

	if (sscanf(rid, "%" SCNu64 "_%" SCNu64 "%c", &pid, &start, &tail) != 2 || pid == 0 ||
	    pid > INT32_MAX)
		return false;
	return proc_start((pid_t)pid) == start;
}

/* Collect rule set ids after each occurrence of prefix in text. */
static size_t find_ids(const char *text, const char *prefix, char ids[][RULESET_ID_MAX],
                       size_t have)
{
	size_t pl = strlen(prefix);

	for (const char *p = text; (p = strstr(p, prefix)) && have < STALE_MAX; p += pl) {
		size_t l = strspn(p + pl, "0123456789_");
		bool dup = false;
		if (l == 0 || l >= RULESET_ID_MAX)
			continue;
		for (size_t i = 0; i < have; i++)
			dup |= strlen(ids[i]) == l && !strncmp(ids[i], p + pl, l);
		if (dup)
			continue;
		memcpy(ids[have], p + pl, l);
		ids[have][l] = 0;
		have++;
	}
	return have;
}

int redirect_clean_stale(unsigned *ret_removed, unsigned *ret_alive)
{
	_cleanup_free_ char *out = xmalloc(CMD_OUTPUT_MAX);
	char ids[STALE_MAX][RULESET_ID_MAX];
	size_t n = 0;
	int e;

	init_once();
	*ret_removed = *ret_alive = 0;
	if (backend == BK_NFT) {
		e = run((const char *const[]){"nft", "list", "tables", NULL}, NULL, out,
		        CMD_OUTPUT_MAX, NULL, 0);
		if (e < 0)
			return e;
		n = find_ids(out, "table inet mirrord_trace_", ids, 0);
	} else {
		static const char *const saves[] = {"iptables-save", "ip6tables-save"};
		for (size_t i = 0; i < ARRAY_SIZE(saves); i++) {
			e = run((const char *const[]){saves[i], "-t", "nat", NULL}, NULL, out,
			        CMD_OUTPUT_MAX, NULL, 0);
			if (e < 0 && i == 0)
				return e;
			if (e == 0)
				n = find_ids(out, ":MTIN_", ids, n);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (owner_alive(ids[i])) {
			(*ret_alive)++;
			continue;
		}
		remove_ruleset(backend, ids[i]);
		(*ret_removed)++;
	}
	return 0;
}

const char *redirect_backend_name(void)
{
	init_once();
	return backend == BK_NFT ? "nft" : "iptables";
}
