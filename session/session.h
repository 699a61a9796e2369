/* The local runtime of one run: the connection to the agent, multiplexed
 * streams with credit flow control, the relays that join the program's
 * sockets to agent streams, the DNS relay, and the remote environment.
 * No ptrace here: the policy (syscalls/) hands over plain fds. Everything
 * runs on the caller's evloop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "common/evloop.h"

struct session;

/* Connect to the agent at addr, do the version handshake, and attach the
 * connection to the loop. Blocking, bounded by timeout_ms. On failure
 * returns -errno and sets *ret_why to a one-line explanation (malloc'd). */
int session_open(struct evloop *l, const struct sockaddr *addr, socklen_t len, int timeout_ms,
                 struct session **ret, char **ret_why);

/* The byte stream to the agent, when it is not a plain socket (a
 * Kubernetes port-forward, say): the session knows only these calls.
 * All of them are nonblocking and take `data`.
 *  fd      the descriptor to poll; it must not change while the session
 *          is attached to a loop.
 *  events  poll events wanted: POLLIN, plus POLLOUT while the transport
 *          itself holds bytes not yet sent.
 *  read    > 0 bytes, 0 at the end of the stream, -EAGAIN when nothing is
 *          buffered, or -errno. The session reads until -EAGAIN, because a
 *          transport may buffer bytes the fd no longer shows as readable.
 *  write   bytes accepted (> 0), -EAGAIN when full, or -errno.
 *  flush   optional: send buffered bytes (0, -EAGAIN or -errno); called
 *          when the fd is writable.
 *  close   optional: called by session_free (and by a failed open). */
struct session_io {
	void *data;
	int (*fd)(void *data);
	short (*events)(void *data);
	ssize_t (*read)(void *data, void *buf, size_t len);
	ssize_t (*write)(void *data, const void *buf, size_t len);
	int (*flush)(void *data);
	void (*close)(void *data);
	/* Optional: replace a dropped link (blocking, bounded); 0 or -errno.
	 * With it a drop costs the program its relayed connections, not the
	 * session (see session.c), for up to reconnect_budget_ms. */
	int (*reconnect)(void *data);
	unsigned reconnect_budget_ms;
};

/* As session_open, over an already connected transport. *io is copied;
 * where names the peer in messages ("agent pod ns/name"). */
int session_open_io(struct evloop *l, const struct session_io *io, const char *where,
                    int timeout_ms, struct session **ret, char **ret_why);
void session_free(struct session *s);

/* Called once when the agent connection is lost (EOF, error, AP_ERROR).
 * Every relayed connection has been reset and every pending request has
 * failed by the time it runs. why is a one-line description. */
void session_on_lost(struct session *s, void (*cb)(void *data, const char *why), void *data);
bool session_alive(const struct session *s);
/* The agent's mode from the handshake: "targeted", "ephemeral" or
 * "targetless" (or whatever a newer agent said). */
const char *session_agent_mode(const struct session *s);

/* Startup requests, before the program runs (blocking, bounded). */
int session_fetch_env(struct session *s, char ***ret_env, size_t *ret_n);
int session_fetch_file(struct session *s, const char *path, char **ret_data, size_t *ret_len);

/* ---- remote files ------------------------------------------------------
 * Blocking calls, each bounded by a timeout, for the syscall layer. Paths
 * are absolute and resolved by the agent inside the target's root. An
 * operation that failed in the pod returns -errno exactly as the pod's
 * syscall did (-ENOENT, -ENOTDIR, -ELOOP, -EISDIR, -EACCES, ...); a failed
 * agent link returns -ENOTCONN, -ETIMEDOUT, -ECONNRESET or -EPROTO.
 * Writes fail with -EROFS until session_fs_enable_write(). */

#define SESSION_FS_NAME_MAX 255
/* Most entries session_fs_list() collects (-EFBIG past it). */
#define SESSION_FS_LIST_MAX 65536

struct stat;
struct statfs;

struct session_dirent {
	uint64_t ino;
	uint8_t type; /* DT_* */
	char name[SESSION_FS_NAME_MAX + 1];
};

/* Allow write operations for the rest of the session (feature.fs write
 * mode). */
int session_fs_enable_write(struct session *s);
/* stat (follow) or lstat (!follow) of a remote path. */
int session_fs_stat(struct session *s, const char *path, bool follow, struct stat *ret);
/* The target of a remote symlink (malloc'd); -EINVAL if not a link. */
int session_fs_readlink(struct session *s, const char *path, char **ret_target);
/* access(2) mode bits R_OK, W_OK, X_OK or F_OK. */
int session_fs_access(struct session *s, const char *path, int mode);
int session_fs_statfs(struct session *s, const char *path, struct statfs *ret);

/* Open a remote file (flags: O_RDONLY, or O_WRONLY/O_RDWR with O_CREAT,
 * O_TRUNC, O_EXCL; or O_DIRECTORY for listing; other flags are local
 * matters and ignored) and return its handle and fstat. Only regular files
 * and directories can be opened; a directory also without O_DIRECTORY when
 * read-only, as open(2) allows (-EISDIR for writing). Handles are limited
 * per session (-EMFILE). */
int session_fs_open(struct session *s, const char *path, int flags, mode_t mode,
                    uint32_t *ret_handle, struct stat *ret_st);
int session_fs_close(struct session *s, uint32_t handle);
/* fsync in the pod; ret_st (may be NULL) gets the file's stat after it. */
int session_fs_fsync(struct session *s, uint32_t handle, struct stat *ret_st);
/* One chunk: at most len (<= 64 KiB) bytes at off; 0 at the end. */
ssize_t session_fs_pread(struct session *s, uint32_t handle, void *buf, size_t len, uint64_t off);
ssize_t session_fs_pwrite(struct session *s, uint32_t handle, const void *buf, size_t len,
                          uint64_t off);
/* Copy [off, off + len) of a remote file into the local fd at the same
 * offsets, several chunks in flight. Returns the bytes copied, fewer than
 * len if the file ends first. */
int64_t session_fs_fetch(struct session *s, uint32_t handle, uint64_t off, uint64_t len, int fd);
/* Write-back: replace path's content with the whole content of the local
 * fd, then fsync it in the pod. Without base, path is created with mode
 * if missing and replaced whatever it holds. With base (a stat the pod
 * reported for path), only if the pod's file is still that version (its
 * dev, ino, size, mtime and ctime): otherwise nothing is written and the
 * result is -ESTALE (it changed, or another file is there) or -ENOENT
 * (it is gone), counted in session_stats.fs_conflicts. ret_st (may be
 * NULL) gets the version written, the base of the next write-back. */
int session_fs_put(struct session *s, int fd, const char *path, mode_t mode,
                   const struct stat *base, struct stat *ret_st);

/* Asynchronous calls, for the FUSE server (session/fuse.c), which must
 * not block the loop. cb runs once, from the event loop or from inside a
 * blocking call that waits for another answer, with err 0 or -errno as
 * above; handle and st for an open, data and len for a read (valid during
 * the callback only). When the link drops or the session ends, every
 * pending call fails with -ECONNRESET (and handles opened before are dead:
 * see session_fs_epoch). Return a request id > 0 or -errno (cb will not
 * run). */
struct session_fs_result {
	int err;
	uint32_t handle;
	const struct stat *st;
	const uint8_t *data;
	size_t len;
};
typedef void (*session_fs_cb)(void *data, const struct session_fs_result *res);
int64_t session_fs_open_async(struct session *s, const char *path, session_fs_cb cb, void *data);
/* At most 64 KiB at off; fewer bytes at the end of the file. */
int64_t session_fs_pread_async(struct session *s, uint32_t handle, size_t len, uint64_t off,
                               session_fs_cb cb, void *data);
/* Close a handle without waiting for the answer. */
void session_fs_close_nowait(struct session *s, uint32_t handle);
/* The callback of request req will not run. */
void session_fs_cancel(struct session *s, int64_t req);
/* Changes whenever the agent link is replaced: handles opened under an
 * older value are gone (ids may be reused by the new link). */
uint64_t session_fs_epoch(const struct session *s);

/* One page of a directory opened with O_DIRECTORY, from *cookie (0 at the
 * start); *cookie is advanced. Returns the number of entries (<= cap)
 * written to ents; 0 with *ret_eof at the end. */
int session_fs_readdir(struct session *s, uint32_t handle, uint64_t *cookie,
                       struct session_dirent *ents, size_t cap, bool *ret_eof);
/* The whole listing of a remote directory, "." and ".." included
 * (malloc'd array). */
int session_fs_list(struct session *s, const char *path, struct session_dirent **ret,
                    size_t *ret_n);

int session_fs_mkdir(struct session *s, const char *path, mode_t mode);
int session_fs_unlink(struct session *s, const char *path);
int session_fs_rmdir(struct session *s, const char *path);
/* flags: 0 or RENAME_NOREPLACE */
int session_fs_rename(struct session *s, const char *from, const char *to, unsigned flags);
int session_fs_truncate(struct session *s, const char *path, uint64_t len);

/* ---- outgoing connections ------------------------------------------- */

/* Completion of an asynchronous open: err is 0 or a positive errno as the
 * program would have seen it in the pod. */
typedef void (*session_open_cb)(void *data, int err, uint32_t stream);

/* Ask the agent to connect to dst (TCP or UDP) from the target's network
 * namespace. Returns a request id > 0 (for session_cancel) or -errno. */
int64_t session_connect(struct session *s, int type /* SOCK_STREAM or SOCK_DGRAM */,
                        const struct sockaddr *dst, socklen_t len, session_open_cb cb, void *data);
/* The callback of that request will not run; a stream it opened is closed. */
void session_cancel(struct session *s, int64_t req);

/* Join the program's socket (a supervisor-owned duplicate, sock_fd; not
 * taken over) to an open TCP stream: bind it to loopback if unbound,
 * connect it to the relay listener, and remember dst as its peer. Returns
 * what connect() returned for the program: 0, -EINPROGRESS or -errno. */
int session_attach_tcp(struct session *s, uint32_t stream, int sock_fd, const struct sockaddr *dst,
                       socklen_t len);

/* Make the program's TCP socket fail the way a refused connect does,
 * with the kernel's own timing: a non-blocking socket gets -EINPROGRESS
 * and then ECONNREFUSED from SO_ERROR, a blocking one -ECONNREFUSED. */
int session_refuse(struct session *s, int sock_fd);

/* UDP: join the program's socket sock_fd to the flow of (its inode, dst),
 * creating it if needed: a relay socket on loopback that accepts datagrams
 * from the program's socket only, and an agent stream opened by the first
 * datagram (so a connect() that never sends costs no round trip). With
 * connect_it the program's socket is connected to the relay (connect());
 * otherwise it is bound if unbound, as sendto() would. Returns 0 or
 * -errno. */
int session_udp_attach(struct session *s, int sock_fd, const struct sockaddr *dst, socklen_t len,
                       bool connect_it);
/* Send one datagram from the program's socket to dst's flow relay (after
 * session_udp_attach). Returns the byte count or -errno, as sendto(). */
ssize_t session_udp_send(struct session *s, int sock_fd, const struct sockaddr *dst, socklen_t len,
                         const void *buf, size_t n, int flags);

/* Whether addr is one of the supervisor's own local addresses: a relay
 * listener or a DNS relay (127.0.0.153 and up). Connections there must stay
 * local whatever the outgoing config says. */
bool session_is_own_addr(struct session *s, const struct sockaddr *addr, socklen_t len);

/* Whether the program socket ino has relayed UDP flows. */
bool session_udp_has(struct session *s, ino_t ino);
/* The program's socket ino received a datagram whose source address is
 * `full` bytes long, of which it saw the first seen_len (its buffer may be
 * short). If that is one of our relays, return the real remote address. */
bool session_udp_fix_source(struct session *s, ino_t ino, const void *seen, size_t seen_len,
                            socklen_t full, struct sockaddr_storage *ret, socklen_t *ret_len);

/* The program closes sockets without the supervisor seeing it. For UDP
 * flows (a resolver's connect() probe opens one and closes it at once),
 * the session periodically asks which socket inodes the program still
 * holds and frees idle flows of the others. live fills a malloc'd array. */
void session_set_liveness(struct session *s, size_t (*live)(void *data, uint64_t **ret_inodes),
                          void *data);

/* The original destination of a redirected socket, for getpeername():
 * kernel_peer is what the kernel reports for the program's socket; only
 * if that is still one of our relays is the socket ours. */
bool session_peer_of(struct session *s, ino_t ino, const struct sockaddr *kernel_peer,
                     socklen_t kernel_len, struct sockaddr_storage *ret, socklen_t *ret_len);

/* ---- incoming traffic ------------------------------------------------
 * Port subscriptions at the agent (mirror or steal) for the program's
 * listening sockets, and the connections they bring, which the session
 * opens to the program's listener. Listeners the program closed are
 * unsubscribed by the liveness sweep (session_set_liveness). */

enum session_in_mode { SESSION_IN_OFF = 0, SESSION_IN_MIRROR = 1, SESSION_IN_STEAL = 2 };
enum session_filter_op { SESSION_FILTER_NONE = 0, SESSION_FILTER_ALL_OF, SESSION_FILTER_ANY_OF };
enum session_filter_kind { SESSION_RULE_HEADER = 1, SESSION_RULE_PATH, SESSION_RULE_METHOD };
#define SESSION_FILTER_MAX 16

/* An HTTP filter (steal only): n rules combined by op; a single rule is
 * ALL_OF with n = 1. Patterns are PCRE2, matched case-insensitively. */
struct session_in_filter {
	int op; /* enum session_filter_op */
	size_t n;
	int kind[SESSION_FILTER_MAX]; /* enum session_filter_kind */
	const char *pattern[SESSION_FILTER_MAX];
};

/* err: 0 (the agent confirmed) or a positive errno. */
typedef void (*session_in_cb)(void *data, int err);

/* The program's socket ino asked to bind `requested` and was bound to
 * port `actual` instead (busy, or listen_ports). */
int session_in_bound(struct session *s, ino_t ino, const struct sockaddr *requested, socklen_t len,
                     uint16_t actual);
/* If socket ino was bound elsewhere than asked and the kernel still
 * reports that port, the address it asked for (ret may be NULL). */
bool session_in_requested(struct session *s, ino_t ino, uint16_t kernel_port,
                          struct sockaddr_storage *ret, socklen_t *ret_len);
/* Subscribe pod port `port` for the listening socket ino bound at
 * `listener` (its real local address). f: NULL or an HTTP filter (steal).
 * cb runs once with the agent's answer. Returns a request id > 0 (for
 * session_in_cancel) or -errno. */
int64_t session_in_subscribe(struct session *s, ino_t ino, uint16_t port, int mode,
                             const struct session_in_filter *f, const struct sockaddr *listener,
                             socklen_t len, session_in_cb cb, void *data);
void session_in_cancel(struct session *s, int64_t req);
/* Whether socket ino is a subscribed listener; whether there is any. */
bool session_in_listening(struct session *s, ino_t ino);
bool session_in_any(struct session *s);
/* Whether a subscribed listener of the program asked for local port
 * `port` (the port it bound, before a remap): connections to it on
 * loopback are the program's own. */
bool session_in_asked_port(struct session *s, uint16_t port);
/* The real remote peer of a connection the session opened to the
 * program's listener, given the peer the kernel reports for the program's
 * accepted socket. */
bool session_in_peer(struct session *s, const struct sockaddr *kernel_peer, socklen_t len,
                     struct sockaddr_storage *ret, socklen_t *ret_len);

/* ---- DNS -------------------------------------------------------------- */

/* Start local DNS relays for the pod's nameservers (parsed from the pod's
 * resolv.conf text) and return a resolv.conf for the program whose
 * nameserver lines point at them (malloc'd). */
int session_dns_start(struct session *s, const char *pod_resolv_conf, char **ret_conf);

/* feature.network.dns.filter, given before session_dns_start. The listed
 * names (matched as session/dns_filter.h says, with the pod's search
 * domains) go to the pod with remote, to the workstation otherwise; all:
 * an entry without a name or address, so every name is listed. Names the
 * filter keeps local go to the nameservers of local_resolv_conf (the
 * workstation's resolv.conf text; none: those names get SERVFAIL), after
 * local_hosts (its /etc/hosts text, or NULL), which answers the A and AAAA
 * queries of the names it lists. */
struct session_dns_filter {
	bool remote;
	bool all;
	const char *const *names;
	size_t nnames;
	const char *local_resolv_conf;
	const char *local_hosts;
};
void session_dns_set_filter(struct session *s, const struct session_dns_filter *f);

/* cb hears one line per query the relays route, for --trace:
 * "dns NAME TYPE -> remote|local[ (why)]". */
void session_dns_on_trace(struct session *s, void (*cb)(void *data, const char *line), void *data);

/* ---- environment (pure) ------------------------------------------------ */

struct env_filter {
	const char *include; /* ';'-separated patterns with * and ?, or NULL */
	const char *exclude; /* same, or NULL */
	/* feature.env.override: "K=V" entries set last, over everything */
	const char *const *override;
	size_t noverride;
	/* feature.env.unset: names removed from the result, compared
	 * case-insensitively as mirrord does */
	const char *const *unset;
	size_t nunset;
};

/* Build the program's environment: local entries, then remote entries that
 * pass the filter and mirrord's always-excluded list, replacing local
 * values of the same name, then the overrides, then the unset names
 * removed. Returns a NULL-terminated malloc'd array. */
char **env_merge(char *const *local, char *const *remote, size_t nremote,
                 const struct env_filter *f);
bool env_pattern_match(const char *patterns, const char *name);
/* feature.env.env_file: parse a dotenv file's text into "K=V" entries
 * (malloc'd, in file order; *ret NULL-terminated). KEY=VALUE lines, with
 * an optional "export ", blank and "#" lines skipped; a value is taken
 * literally unquoted (up to a " #" comment, blanks trimmed), in single
 * quotes, or in double quotes with \n \r \t \" \\ \$ escapes. No
 * variable expansion. -EINVAL with the line and the problem in err. */
#define ENV_FILE_MAX (1u << 20)
#define ENV_FILE_MAX_ENTRIES 4096
int env_file_parse(const char *text, size_t len, char ***ret, size_t *ret_n, char *err,
                   size_t errlen);
bool env_always_excluded(const char *name);

/* Statistics for benchmarks. */
struct session_stats {
	uint64_t streams_opened;
	uint64_t bytes_up, bytes_down;
	uint64_t bytes_spliced; /* of bytes_down, moved by splice (link → program) */
	size_t streams_live;
	uint64_t reconnects;   /* dropped agent links replaced */
	uint64_t in_waited;    /* incoming connections held for a full accept queue */
	uint64_t fs_bytes;     /* file content received from the agent */
	uint64_t fs_conflicts; /* write-backs refused: the pod's file changed */
};
void session_get_stats(const struct session *s, struct session_stats *ret);
