/* Internal interfaces of mirrord-trace-agent, shared by its files:
 *   main.c     CLI, startup order (listen, then setns), the event loop
 *   client.c   the one client session: framing, handshake, dispatch
 *   streams.c  outgoing TCP/UDP relays with credit flow control
 *   target.c   target lookup, its environment and files (no I/O policy)
 *   files.c    remote file access (AP_FS_REQ), confined to the target's root
 * Nothing outside agent/ includes this header. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agentproto/agentproto.h"
#include "common/util.h"

struct evloop;
struct client;
struct streams;
struct files;

enum agent_mode { AGENT_TARGETED, AGENT_EPHEMERAL, AGENT_TARGETLESS };

/* Exit codes: 0 the client session ended normally; 1 a runtime failure
 * (no client, protocol error, target gone, startup error); 2 bad usage. */
enum { AGENT_EXIT_OK = 0, AGENT_EXIT_FAIL = 1, AGENT_EXIT_USAGE = 2 };

/* Limits on what one client can make the agent hold. */
#define AGENT_MAX_STREAMS 4096
#define AGENT_CONNECT_TIMEOUT_MS (30 * 1000)
/* Client→socket bytes buffered over all streams. Each stream is already
 * bounded by the window we grant (AP_DEFAULT_WINDOW), but 4096 streams ×
 * 256 KiB is 1 GiB; past this total the agent stops reading the client
 * instead (head-of-line blocking beats running out of memory). */
#define AGENT_MAX_BUFFERED (32u * 1024 * 1024)

struct agent_target {
	enum agent_mode mode;
	pid_t pid;   /* > 0 only in targeted mode */
	int pidfd;   /* pidfd of the target, -1 unless targeted */
	int rootfd;  /* O_PATH directory: /proc/PID/root, or "/" */
	int netnsfd; /* /proc/PID/ns/net, -1 unless targeted */
};

struct agent {
	struct evloop *loop;
	struct agent_target target;
	unsigned comm_timeout_s;
	/* Incoming traffic (mirrord's agent.* settings): how long a stolen
	 * connection on a filtered port may take to show an HTTP request
	 * line before it goes to the pod's app whole; whether connections
	 * the pod's app holds on a port are killed when its steal starts. */
	unsigned http_detect_ms;
	bool flush_connections;
	struct client *client; /* the one session; NULL until it connects */
	struct streams *streams;
	/* The client's link dropped without a goodbye and it was freed: a
	 * new connection may resume (main.c re-arms the no-client timer). */
	void (*client_detached)(struct agent *a);
	void *data; /* main.c's */
};

const char *agent_mode_name(enum agent_mode m);

/* ---- target.c: no logging, -errno on failure ---- */

/* Lowest pid whose /proc/PID/cgroup has a line containing id; -ESRCH if
 * none matches. */
int target_pid_from_container(const char *id, pid_t *ret_pid);
/* Fill t for mode (pid only for targeted): opens the pidfd, root and
 * netns fds. On failure *ret_what names the step that failed. */
int target_open(enum agent_mode mode, pid_t pid, struct agent_target *t, const char **ret_what);
void target_close(struct agent_target *t);
/* Enter the target's network namespace; a no-op when the agent is
 * already in it (then no privilege is needed). */
int target_enter_netns(const struct agent_target *t);
/* Encode the target's environment as ap_env_put() entries into buf[0..cap).
 * Entries without '=' or longer than AP_MAX_STRING are skipped; the list
 * stops at AP_MAX_ENV_COUNT or when buf is full. *ret_dropped counts
 * entries left out for a limit. */
int target_env(const struct agent_target *t, uint8_t *buf, size_t cap, size_t *ret_len,
               uint32_t *ret_count, uint32_t *ret_dropped);
/* Open path (absolute, from the client) inside the target's root with
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS); flags are open(2)
 * flags, O_CLOEXEC is added. -EINVAL for a relative path. */
int target_openat(const struct agent_target *t, const char *path, int flags, int *ret_fd);
/* Read a regular file below the target's root into a malloc'ed buffer of
 * at most AP_MAX_FILE bytes. -EFBIG if larger, -EISDIR, -EINVAL for other
 * file types or a non-absolute path. */
int target_read_file(const struct agent_target *t, const char *path, uint8_t **ret_buf,
                     size_t *ret_len);

/* ---- client.c ---- */

/* Take over fd (an accepted, non-blocking socket) as the session. */
int client_new(struct agent *a, int fd, struct client **ret);
void client_free(struct client *c);
/* Queue a frame. -ENOBUFS past the hard output cap: callers treat it as
 * fatal, since the caps below make it unreachable for a correct agent. */
int client_send(struct client *c, const struct ap_msg *m);
/* Read up to max bytes (at most AP_MAX_DATA) of the TCP socket fd and send
 * them as one DATA frame of stream id. They are read in place behind the
 * frame's header in the output queue; or, with bulk (the stream's last
 * read was large) and nothing queued before them, they go from fd to the
 * client's socket through a pipe (splice: no copy in user space, but
 * three calls instead of one, which short answers would not repay).
 * Returns the byte count, 0 at EOF, or -errno of the read (-EAGAIN:
 * nothing to read). Only when client_has_room() allows a full frame. */
ssize_t client_send_from(struct client *c, uint32_t id, int fd, size_t max, bool bulk);
/* True if n more bytes of stream data may be queued now (backpressure). */
bool client_has_room(const struct client *c, size_t n);
/* Something that paused the client (output or stream buffers) may have
 * cleared: resume soon, from a timer, never re-entrantly. */
void client_kick(struct client *c);
/* Fatal: tell the client with AP_ERROR, flush, close and exit with code. */
MT_PRINTF(4, 5) void client_fail(struct client *c, int code, int err, const char *fmt, ...);

/* ---- files.c ---- */

/* Open remote handles one client may hold at once. */
#define AGENT_FS_MAX_HANDLES 256

/* Per-client state of the file protocol: open handles, the write switch,
 * and one chunk-sized buffer (the agent never holds more of a file). */
struct files *files_new(const struct agent_target *t);
/* Closes every handle the client left open. */
void files_free(struct files *f);
/* Serve one AP_FS_REQ and queue its AP_FS_RESP on c. Failures of the
 * operation are answered on the wire; a full output queue fails c. */
void files_serve(struct files *f, struct client *c, const struct ap_msg *m);

/* ---- streams.c ---- */

struct streams *streams_new(struct agent *a);
void streams_free(struct streams *s);
/* Handlers for client frames. They return < 0 only for a protocol
 * violation, which ends the session; everything else is answered on the
 * wire. *ret_why then says what was violated. */
int streams_connect(struct streams *s, uint32_t req_id, const struct ap_msg *m,
                    const char **ret_why);
int streams_data(struct streams *s, uint32_t id, const struct ap_bytes *data, const char **ret_why);
int streams_credit(struct streams *s, uint32_t id, uint32_t bytes, const char **ret_why);
int streams_close(struct streams *s, uint32_t id, uint8_t how, int32_t err, const char **ret_why);
/* Take over fd (a connected TCP socket) as the open stream id, which the
 * caller announced (AP_ACCEPT); window is the client's grant. -EMFILE at
 * the stream limit (fd is then still the caller's). */
int streams_adopt(struct streams *s, uint32_t id, int fd, uint32_t window);
/* Client output drained: send owed credits, resume reading sockets. */
void streams_kick(struct streams *s);
/* Bytes from the client not yet written to any socket. */
size_t streams_buffered(const struct streams *s);
