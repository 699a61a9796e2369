/* Writes the agentproto seed corpus: one valid frame of every type, a
 * stream of several frames, and malformed ones (truncated, oversized,
 * bad header bits, bad enum values, trailing bytes). Not run by the
 * build; regenerate with
 *   build/bin/gen_agentproto_corpus tests/fuzz/corpus/agentproto
 * The output is deterministic, so regenerating gives the same files. */
#include "agentproto/agentproto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *outdir;
static uint8_t frame[AP_HEADER_SIZE + AP_MAX_PAYLOAD + 16];

static void save(const char *name, const uint8_t *p, size_t len)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s", outdir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		abort();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "gen: \"%s\": %s\n", path, strerror(errno));
		exit(1);
	}
	if (write(fd, p, len) != (ssize_t)len) {
		fprintf(stderr, "gen: \"%s\": short write\n", path);
		exit(1);
	}
	close(fd);
}

/* Encode m into frame[] and save it; returns the frame length. */
static size_t enc(const char *name, const struct ap_msg *m)
{
	ssize_t n = ap_encode(m, frame, sizeof(frame));
	if (n < 0) {
		fprintf(stderr, "gen: %s: encode failed (%zd)\n", name, n);
		exit(1);
	}
	if (name)
		save(name, frame, (size_t)n);
	return (size_t)n;
}

static struct ap_bytes B(const char *s) {
	return (struct ap_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

int main(int argc, char **argv)
{
	static uint8_t env[256];
	static uint8_t stream[1024];
	size_t off = 0, slen = 0, n;

	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];

	struct ap_msg hello = {.type = AP_HELLO};
	hello.u.hello.magic = AP_MAGIC;
	hello.u.hello.version = AP_VERSION;
	hello.u.hello.client_name = B("mirrord-trace 0.1.0");
	n = enc("valid-hello", &hello);
	memcpy(stream + slen, frame, n), slen += n;

	struct ap_msg ok = {.type = AP_HELLO_OK};
	ok.u.hello_ok.version = AP_VERSION;
	ok.u.hello_ok.agent_version = B("0.1.0");
	ok.u.hello_ok.mode = B("mirror");
	enc("valid-hello-ok", &ok);

	struct ap_msg err = {.type = AP_ERROR};
	err.u.error.err = -EPROTO;
	err.u.error.message = B("bad magic");
	enc("valid-error", &err);

	struct ap_msg envreq = {.type = AP_ENV_REQ, .id = 1};
	n = enc("valid-env-req", &envreq);
	memcpy(stream + slen, frame, n), slen += n;

	if (ap_env_put(env, sizeof(env), &off, "PATH=/usr/bin:/bin", 18) < 0 ||
	    ap_env_put(env, sizeof(env), &off, "HOME=/root", 10) < 0 ||
	    ap_env_put(env, sizeof(env), &off, "", 0) < 0)
		abort();
	struct ap_msg envresp = {.type = AP_ENV_RESP, .id = 1};
	envresp.u.env_resp.count = 3;
	envresp.u.env_resp.entries = (struct ap_bytes){env, (uint32_t)off};
	enc("valid-env-resp", &envresp);

	struct ap_msg freq = {.type = AP_FILE_REQ, .id = 2};
	freq.u.file_req.path = B("/etc/resolv.conf");
	n = enc("valid-file-req", &freq);
	memcpy(stream + slen, frame, n), slen += n;

	struct ap_msg fresp = {.type = AP_FILE_RESP, .id = 2};
	fresp.u.file_resp.content = B("nameserver 10.96.0.10\nsearch default.svc\n");
	enc("valid-file-resp", &fresp);

	struct ap_msg conn = {.type = AP_CONNECT, .id = 3};
	conn.u.connect.stream = 1;
	conn.u.connect.proto = AP_PROTO_TCP;
	conn.u.connect.dst = (struct ap_addr){.family = 4, .port = 80, .addr = {10, 0, 0, 1}};
	conn.u.connect.window = AP_DEFAULT_WINDOW;
	n = enc("valid-connect-v4", &conn);
	memcpy(stream + slen, frame, n), slen += n;
	conn.u.connect.proto = AP_PROTO_UDP;
	conn.u.connect.dst = (struct ap_addr){.family = 6, .port = 53, .addr = {[15] = 1}};
	enc("valid-connect-v6", &conn);

	struct ap_msg cresp = {.type = AP_CONNECT_RESP, .id = 3};
	cresp.u.connect_resp.stream = 1;
	cresp.u.connect_resp.local =
	        (struct ap_addr){.family = 4, .port = 40000, .addr = {10, 244, 0, 5}};
	enc("valid-connect-resp", &cresp);

	struct ap_msg data = {.type = AP_DATA, .id = 1};
	data.u.data.data = B("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	n = enc("valid-data", &data);
	memcpy(stream + slen, frame, n), slen += n;

	struct ap_msg credit = {.type = AP_CREDIT, .id = 1};
	credit.u.credit.bytes = 4096;
	enc("valid-credit", &credit);

	struct ap_msg cl = {.type = AP_CLOSE, .id = 1};
	cl.u.close.how = AP_CLOSE_RESET;
	cl.u.close.err = -ECONNRESET;
	n = enc("valid-close", &cl);
	memcpy(stream + slen, frame, n), slen += n;

	struct ap_msg ping = {.type = AP_PING, .id = 9};
	enc("valid-ping", &ping);
	struct ap_msg pong = {.type = AP_PONG, .id = 9};
	n = enc("valid-pong", &pong);
	memcpy(stream + slen, frame, n), slen += n;

	save("valid-stream", stream, slen);
	save("truncated-stream", stream, slen - 3);

	/* Malformed frames, starting from valid ones. */
	n = enc(NULL, &hello);
	save("truncated-hello-header", frame, 7);
	save("truncated-hello-payload", frame, n - 1);
	frame[5] = 1;
	save("bad-flags", frame, n);
	frame[5] = 0, frame[7] = 1;
	save("bad-reserved", frame, n);
	frame[7] = 0, frame[4] = 0xee;
	save("bad-type", frame, n);

	n = enc(NULL, &ping);
	put32(frame, AP_MAX_PAYLOAD + 1);
	save("oversized-payload", frame, n);
	put32(frame, UINT32_MAX);
	save("oversized-payload-max", frame, n);

	n = enc(NULL, &data);
	put32(frame, AP_MAX_DATA + 1);
	save("oversized-data", frame, n);

	n = enc(NULL, &freq);
	put32(frame + AP_HEADER_SIZE, AP_MAX_PATH + 1);
	save("oversized-path", frame, n);

	n = enc(NULL, &envresp);
	put32(frame + AP_HEADER_SIZE + 4, AP_MAX_ENV_COUNT + 1);
	save("oversized-env-count", frame, n);
	put32(frame + AP_HEADER_SIZE + 4, 4);
	save("env-count-mismatch", frame, n);
	/* First entry claims one byte over AP_MAX_STRING (count back to 3). */
	put32(frame + AP_HEADER_SIZE + 4, 3);
	put32(frame + AP_HEADER_SIZE + 8, AP_MAX_STRING + 1);
	save("oversized-env-entry", frame, n);

	n = enc(NULL, &hello);
	frame[AP_HEADER_SIZE + 7] = 1;
	save("bad-hello-reserved", frame, n);
	put32(frame, 11);
	save("short-hello", frame, AP_HEADER_SIZE + 11);

	n = enc(NULL, &freq);
	put32(frame + AP_HEADER_SIZE, 100);
	save("path-past-payload", frame, n);

	n = enc(NULL, &envresp);
	put32(frame + AP_HEADER_SIZE + 8, 200);
	save("env-entry-past-list", frame, n);

	n = enc(NULL, &conn);
	frame[AP_HEADER_SIZE + 5] = 4;
	frame[AP_HEADER_SIZE + 8 + 15] = 1;
	save("ipv4-nonzero-padding", frame, n);
	frame[AP_HEADER_SIZE + 5] = 5;
	save("bad-family", frame, n);
	frame[AP_HEADER_SIZE + 5] = 6, frame[AP_HEADER_SIZE + 4] = 3;
	save("bad-proto", frame, n);

	n = enc(NULL, &cl);
	frame[AP_HEADER_SIZE] = 2;
	save("bad-close-how", frame, n);

	n = enc(NULL, &err);
	put32(frame, (uint32_t)(n - AP_HEADER_SIZE + 1));
	frame[n] = 'x';
	save("trailing-byte", frame, n + 1);

	/* File protocol: every op as a request, the responses that carry
	 * fields, an error response, and malformed variants. */
	static const struct {
		const char *name;
		uint8_t op;
	} ops[] = {
	        {"valid-fs-enable-write", AP_FS_ENABLE_WRITE},
	        {"valid-fs-stat", AP_FS_STAT},
	        {"valid-fs-readlink", AP_FS_READLINK},
	        {"valid-fs-access", AP_FS_ACCESS},
	        {"valid-fs-statfs", AP_FS_STATFS},
	        {"valid-fs-open", AP_FS_OPEN},
	        {"valid-fs-read", AP_FS_READ},
	        {"valid-fs-write", AP_FS_WRITE},
	        {"valid-fs-fsync", AP_FS_FSYNC},
	        {"valid-fs-close", AP_FS_CLOSE},
	        {"valid-fs-readdir", AP_FS_READDIR},
	        {"valid-fs-mkdir", AP_FS_MKDIR},
	        {"valid-fs-unlink", AP_FS_UNLINK},
	        {"valid-fs-rmdir", AP_FS_RMDIR},
	        {"valid-fs-rename", AP_FS_RENAME},
	        {"valid-fs-truncate", AP_FS_TRUNCATE},
	        {"valid-fs-open-if", AP_FS_OPEN_IF},
	};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct ap_msg q = {.type = AP_FS_REQ, .id = 20 + (uint32_t)i};
		uint8_t op = ops[i].op;
		q.u.fs_req.op = op;
		if (op == AP_FS_STAT)
			q.u.fs_req.flags = AP_FS_NOFOLLOW;
		if (op == AP_FS_OPEN)
			q.u.fs_req.flags = AP_FS_O_WRITE | AP_FS_O_CREAT | AP_FS_O_TRUNC;
		if (op == AP_FS_RENAME)
			q.u.fs_req.flags = AP_FS_RENAME_NOREPLACE;
		if (op == AP_FS_ACCESS)
			q.u.fs_req.mode = AP_FS_R_OK | AP_FS_X_OK;
		if (op == AP_FS_OPEN || op == AP_FS_MKDIR)
			q.u.fs_req.mode = 0755;
		if (op >= AP_FS_READ && op <= AP_FS_READDIR)
			q.u.fs_req.handle = 0x101;
		if (op == AP_FS_READ || op == AP_FS_WRITE || op == AP_FS_READDIR ||
		    op == AP_FS_TRUNCATE)
			q.u.fs_req.offset = 10ull << 30;
		if (op == AP_FS_READ)
			q.u.fs_req.count = AP_MAX_DATA;
		if (op == AP_FS_WRITE)
			q.u.fs_req.data = B("chunk");
		if (op == AP_FS_STAT || op == AP_FS_READLINK || op == AP_FS_ACCESS ||
		    op == AP_FS_STATFS || op == AP_FS_OPEN || op >= AP_FS_MKDIR)
			q.u.fs_req.path = B("/app/config.yaml");
		if (op == AP_FS_RENAME)
			q.u.fs_req.path2 = B("/app/config.yaml.new");
		if (op == AP_FS_OPEN_IF)
			q.u.fs_req.st = (struct ap_fs_stat){.dev = 2049,
			                                    .ino = 42,
			                                    .size = 10,
			                                    .mtime = {1700000000, 5},
			                                    .ctime = {1700000001, 999999999}};
		n = enc(ops[i].name, &q);
	}
	/* The last request, OPEN_IF, with a field outside the version (the
	 * mode, after dev and ino). */
	frame[AP_HEADER_SIZE + 1 + 16 + 3] = 0x44;
	save("fs-open-if-mode", frame, n);

	struct ap_msg fr = {.type = AP_FS_RESP, .id = 21};
	fr.u.fs_resp.op = AP_FS_OPEN;
	fr.u.fs_resp.handle = 0x101;
	fr.u.fs_resp.st = (struct ap_fs_stat){.dev = 2049,
	                                      .ino = 42,
	                                      .mode = 0100644,
	                                      .nlink = 1,
	                                      .size = 10ull << 30,
	                                      .blksize = 4096,
	                                      .mtime = {1700000000, 999999999}};
	enc("valid-fs-resp-open", &fr);
	fr.u.fs_resp.op = AP_FS_FSYNC;
	fr.u.fs_resp.handle = 0;
	enc("valid-fs-resp-fsync", &fr);
	fr = (struct ap_msg){.type = AP_FS_RESP, .id = 22};
	fr.u.fs_resp.op = AP_FS_STATFS;
	fr.u.fs_resp.sfs = (struct ap_fs_statfs){.type = 0xef53, .bsize = 4096, .namelen = 255};
	enc("valid-fs-resp-statfs", &fr);
	fr = (struct ap_msg){.type = AP_FS_RESP, .id = 23};
	fr.u.fs_resp.op = AP_FS_READ;
	fr.u.fs_resp.data = B("file bytes");
	enc("valid-fs-resp-read", &fr);
	fr = (struct ap_msg){.type = AP_FS_RESP, .id = 24};
	fr.u.fs_resp.op = AP_FS_STAT;
	fr.u.fs_resp.err = ELOOP;
	enc("valid-fs-resp-error", &fr);
	static uint8_t dents[256];
	size_t doff = 0;
	if (ap_dirent_put(dents, sizeof(dents), &doff, 2, 4, ".", 1) < 0 ||
	    ap_dirent_put(dents, sizeof(dents), &doff, 12, 8, "config.yaml", 11) < 0)
		abort();
	fr = (struct ap_msg){.type = AP_FS_RESP, .id = 25};
	fr.u.fs_resp.op = AP_FS_READDIR;
	fr.u.fs_resp.cookie = 0x7fffffff;
	fr.u.fs_resp.eof = 1;
	fr.u.fs_resp.count = 2;
	fr.u.fs_resp.data = (struct ap_bytes){dents, (uint32_t)doff};
	n = enc("valid-fs-resp-readdir", &fr);
	/* A name with '/': the last byte of "config.yaml" becomes '/'. */
	frame[n - 1] = '/';
	save("fs-dirent-slash", frame, n);
	frame[n - 1] = 'l';
	/* count one higher than the list holds */
	frame[AP_HEADER_SIZE + 1 + 4 + 8 + 1 + 3] = 3;
	save("fs-dirent-count-mismatch", frame, n);
	n = enc(NULL, &(struct ap_msg){.type = AP_FS_REQ, .u.fs_req = {.op = AP_FS_CLOSE}});
	frame[AP_HEADER_SIZE] = AP_FS_OP_LAST + 1;
	save("fs-bad-op", frame, n);
	/* READ asking for one byte more than a chunk */
	struct ap_msg rd = {.type = AP_FS_REQ};
	rd.u.fs_req.op = AP_FS_READ;
	rd.u.fs_req.count = 1;
	n = enc(NULL, &rd);
	put32(frame + n - 4, AP_MAX_DATA + 1);
	save("fs-read-oversized-count", frame, n);
	/* An error response (valid), then one with 4 bytes of fields. */
	fr = (struct ap_msg){.type = AP_FS_RESP};
	fr.u.fs_resp.op = AP_FS_CLOSE;
	n = enc(NULL, &fr);
	frame[AP_HEADER_SIZE + 4] = ENOENT;
	save("valid-fs-resp-close-error", frame, n);
	put32(frame, (uint32_t)(n - AP_HEADER_SIZE + 4));
	save("fs-error-trailing-handle", frame, n + 4);

	/* Incoming traffic: subscriptions with and without filters, the
	 * reply, and an agent-opened stream. */
	struct ap_msg sub = {.type = AP_PORT_SUB, .id = 30};
	sub.u.port_sub.port = 80;
	sub.u.port_sub.mode = AP_SUB_MIRROR;
	enc("valid-port-sub-mirror", &sub);
	sub.u.port_sub.mode = AP_SUB_STEAL;
	sub.u.port_sub.window = AP_DEFAULT_WINDOW;
	sub.u.port_sub.filter_op = AP_FILTER_ANY_OF;
	sub.u.port_sub.rule_count = 3;
	sub.u.port_sub.rules[0] = (struct ap_filter_rule){AP_FILTER_HEADER, B("^x-user: alice$")};
	sub.u.port_sub.rules[1] = (struct ap_filter_rule){AP_FILTER_PATH, B("^/api/")};
	sub.u.port_sub.rules[2] = (struct ap_filter_rule){AP_FILTER_METHOD, B("POST")};
	n = enc("valid-port-sub-filter", &sub);
	/* the last rule's kind (before its 4-byte length and 4-byte pattern) */
	frame[n - 4 - 4 - 1] = AP_FILTER_METHOD + 1;
	save("port-sub-bad-kind", frame, n);
	frame[n - 4 - 4 - 1] = AP_FILTER_METHOD;
	frame[n - 1] = 0; /* "POS\0" */
	save("port-sub-nul-pattern", frame, n);
	frame[AP_HEADER_SIZE + 8] = AP_MAX_FILTER_RULES + 1; /* rule count */
	save("port-sub-oversized-count", frame, n);
	frame[AP_HEADER_SIZE + 8] = 3;
	frame[AP_HEADER_SIZE + 7] = AP_FILTER_NONE; /* NONE with rules */
	save("port-sub-none-with-rules", frame, n);
	frame[AP_HEADER_SIZE + 7] = AP_FILTER_ANY_OF;
	frame[AP_HEADER_SIZE] = frame[AP_HEADER_SIZE + 1] = 0; /* port 0 */
	save("port-sub-port-zero", frame, n);
	struct ap_msg unsub = {.type = AP_PORT_UNSUB, .id = 31, .u.port_unsub.port = 80};
	enc("valid-port-unsub", &unsub);
	struct ap_msg presp = {.type = AP_PORT_RESP, .id = 30, .u.port_resp.err = EEXIST};
	enc("valid-port-resp", &presp);
	struct ap_msg acc = {.type = AP_ACCEPT, .id = AP_STREAM_AGENT_BIT | 1};
	acc.u.accept.port = 80;
	acc.u.accept.mode = AP_SUB_STEAL;
	acc.u.accept.peer = (struct ap_addr){.family = 4, .port = 51000, .addr = {10, 1, 0, 7}};
	acc.u.accept.local = (struct ap_addr){.family = 6, .port = 80, .addr = {0xfd, [15] = 2}};
	acc.u.accept.window = AP_DEFAULT_WINDOW;
	n = enc("valid-accept", &acc);
	frame[8] = 0; /* a client-side stream id */
	save("accept-client-stream-id", frame, n);

	static const uint8_t garbage[] = "GET / HTTP/1.1\r\nHost: agent\r\n\r\n";
	save("garbage-http", garbage, sizeof(garbage) - 1);
	save("empty", garbage, 0);
	return 0;
}
