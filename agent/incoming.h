/* Incoming traffic of mirrord-trace-agent (mirror and steal), internal to
 * agent/:
 *   incoming.c  per-client subscriptions (AP_PORT_SUB/UNSUB), agent-opened
 *               streams that are not plain sockets (mirror, HTTP)
 *   redirect.c  nat REDIRECT rules (nft or iptables), the guard process,
 *               cleanup of a dead predecessor's rules
 *   steal.c     the redirect listener, whole-connection steal
 *   http.c      HTTP/1.x filtered steal, filter matching (PCRE2)
 *   h2.c        HTTP/2 (prior knowledge) filtered steal, stream by stream
 *               (with h2stream.c, h2frame.c, hpack.c; entry in h2.h)
 *   capture.c   AF_PACKET capture for mirror
 *   reasm.c     TCP reassembly (pure)
 * client.c and main.c call only the "entry points" section. */
#pragma once

#include "agent/agent.h"

#include <inttypes.h>
#include <netinet/in.h>

struct incoming;

/* ---- entry points ---- */

/* Per-client state; freeing it ends every subscription and removes every
 * rule it installed. */
struct incoming *incoming_new(struct client *c, struct agent *a);
void incoming_free(struct incoming *in);
/* AP_PORT_SUB / AP_PORT_UNSUB: answered with AP_PORT_RESP. */
void incoming_sub(struct incoming *in, const struct ap_msg *m);
void incoming_unsub(struct incoming *in, const struct ap_msg *m);
/* Stream frames for ids this module owns (mirror and HTTP streams).
 * Return 1 if handled, 0 if the id is not ours (streams.c's turn), < 0
 * for a protocol violation (*ret_why says which). */
int incoming_data(struct incoming *in, uint32_t id, const struct ap_bytes *d, const char **ret_why);
int incoming_credit(struct incoming *in, uint32_t id, uint32_t bytes, const char **ret_why);
int incoming_close(struct incoming *in, uint32_t id, uint8_t how, int32_t err,
                   const char **ret_why);
/* The client's output drained: resume what waited for room. */
void incoming_kick(struct incoming *in);
/* At agent start, in the target's netns: remove rule sets of agents that
 * are gone. Returns 0 (counts set) or -errno when the tool cannot run. */
int redirect_clean_stale(unsigned *ret_removed, unsigned *ret_alive);
const char *redirect_backend_name(void);
/* Use "nft" or "iptables" rather than the pick (nft when installed, or
 * MIRRORD_TRACE_AGENT_FIREWALL); before the first redirect. -EINVAL for
 * another name. */
int redirect_use_backend(const char *name);

/* ---- limits ---- */

#define INCOMING_MAX_SUBS 64 /* ports one client may subscribe */
/* Bytes of a mirrored connection waiting for the client's window. Past
 * this the copy is cut (AP_CLOSE RESET, ENOBUFS): the pod is never
 * slowed down for a mirror. */
#define MIRROR_MAX_PENDING (4u * 1024 * 1024)
/* Timeouts of the stolen connections the agent serves itself (h2.c,
 * http.c), so that a peer or an app that stops cannot hold one forever:
 *  - AGENT_STALL_MS: bytes wait for a socket that takes none of them
 *    (an HTTP/2 peer or pod connection): it is cut (a reset; a pod
 *    route's streams get 502s). nginx's send_timeout is 60 s.
 *  - AGENT_IDLE_MS: an HTTP/2 connection without a stream sends no frame:
 *    GOAWAY (NO_ERROR), then the close. nginx closes such a connection
 *    after keepalive_timeout, 75 s by default.
 *  - AGENT_HALF_MS: a raw exchange (an upgrade, HTTP/2 passed whole) where
 *    one side closed and no byte moved since: both are closed (a reset).
 * MT_AGENT_QUICK_TIMEOUTS is the test hook (mirrord-trace-agent-quick,
 * agent/CMakeLists.txt): the same, under a second. */
#ifdef MT_AGENT_QUICK_TIMEOUTS
#define AGENT_STALL_MS 400
#define AGENT_IDLE_MS 600
#define AGENT_HALF_MS 400
#else
#define AGENT_STALL_MS 30000
#define AGENT_IDLE_MS 180000
#define AGENT_HALF_MS 60000
#endif
/* SO_MARK of the agent's own connections; the OUTPUT redirect skips them. */
#define MT_AGENT_MARK 0x6d74

/* ---- agent-opened streams (incoming.c) ---- */

struct istream;
struct istream_ops {
	/* Client DATA for this stream (NULL: discard it and credit at
	 * once). The owner credits with istream_credit() as it consumes. */
	void (*data)(void *ctx, const uint8_t *p, size_t n);
	/* The client's CLOSE. After RESET the stream is already freed;
	 * after FIN it lives until the owner's istream_close(). */
	void (*closed)(void *ctx, uint8_t how, int err);
	/* Window or output room came back: pending bytes moved. */
	void (*writable)(void *ctx);
};

/* Open a stream: sends AP_ACCEPT. peer and local are the connection's
 * addresses; recv_window is what the client may send before our first
 * credit (0: AP_DEFAULT_WINDOW), so it bounds what the owner must be able
 * to hold. Returns NULL when the client holds too many streams. */
struct istream *istream_open(struct incoming *in, uint8_t mode, uint16_t port,
                             const struct sockaddr *peer, const struct sockaddr *local,
                             uint32_t recv_window, const struct istream_ops *ops, void *ctx);
/* Queue bytes towards the client; sent as window and room allow, the
 * rest kept up to max_pending. -ENOBUFS past it (nothing queued). */
int istream_send(struct istream *s, const uint8_t *p, size_t n, size_t max_pending);
/* Bytes queued and not yet sent. */
size_t istream_pending(const struct istream *s);
/* True while no more may be sent now (window or room exhausted). */
bool istream_blocked(const struct istream *s);
/* Give the client back n bytes of window (its DATA was consumed). */
void istream_credit(struct istream *s, uint32_t n);
/* End the stream from our side: FIN after pending bytes, or RESET now.
 * The owner's callbacks are not called again; the stream is freed when
 * done. */
void istream_close(struct istream *s, uint8_t how, int err);

/* ---- steal.c / http.c ---- */

struct steal;
struct http_filter;
struct hconn;

/* One listener (dual-stack) and the redirect; created at the first
 * steal subscription of a client. */
int steal_new(struct incoming *in, struct agent *a, struct steal **ret);
void steal_free(struct steal *st);
/* Replace the set of stolen ports (rules updated, new ports flushed). */
int steal_set_ports(struct steal *st, const uint16_t *ports, size_t n, char *err, size_t errcap);
/* The subscription of a port, for an accepted connection: NULL if none
 * (the connection is then closed); *ret_filter is NULL for "steal all". */
bool incoming_steal_lookup(struct incoming *in, uint16_t port, struct http_filter **ret_filter);
/* Adopt a whole stolen connection as a plain relay stream (streams.c). */
int incoming_adopt(struct incoming *in, int fd, uint16_t port, const struct sockaddr *peer,
                   const struct sockaddr *local);

int http_filter_new(const struct ap_msg *m, struct http_filter **ret, char *err, size_t errcap);
void http_filter_free(struct http_filter *f);
/* A request as the filter sees it (HTTP/1.x head or HTTP/2 header list):
 * method, target (path and query) and the regular fields, read through
 * field(ctx, i, ...) for i < nfields. */
struct http_req_view {
	const char *method, *target;
	size_t method_len, target_len;
	size_t nfields;
	void (*field)(const void *ctx, size_t i, const char **name, size_t *name_len,
	              const char **value, size_t *value_len);
	const void *ctx;
};
bool http_filter_match(const struct http_filter *f, const struct http_req_view *v);
/* Serve one stolen connection with a filter. Takes fd. */
void hconn_start(struct incoming *in, struct agent *a, int fd, uint16_t port,
                 const struct sockaddr_storage *peer, const struct sockaddr_storage *orig,
                 const struct http_filter *f);
/* All HTTP connections of a client go with it (or with its port). */
void hconn_free_all(struct incoming *in, int port);

/* ---- linger.c ---- */

/* End a stolen connection the agent closes without a reset: FIN after
 * the queued bytes, then what the peer still sends is read and dropped
 * (bounded in time and bytes) before the close. Takes fd. */
void agent_linger_close(struct evloop *l, int fd);
/* Close every lingering socket now (agent exit). */
void agent_linger_flush(void);

/* ---- redirect.c ---- */

struct redirect;
int redirect_new(uint16_t listen_port, struct redirect **ret);
int redirect_set_ports(struct redirect *r, const uint16_t *ports, size_t n, char *err,
                       size_t errcap);
void redirect_free(struct redirect *r);

/* ---- capture.c ---- */

struct capture;
int capture_new(struct incoming *in, struct agent *a, struct capture **ret);
void capture_free(struct capture *cap);
/* Replace the set of mirrored ports (the BPF filter). */
int capture_set_ports(struct capture *cap, const uint16_t *ports, size_t n);
/* The filter of a mirrored port goes (unsubscription): its copies end. */
void capture_filter_gone(struct capture *cap, uint16_t port);
/* The HTTP filter of a mirrored port, or NULL (every byte is copied). */
const struct http_filter *incoming_mirror_filter(struct incoming *in, uint16_t port);

/* ---- mirror_http.c ---- */

/* The filtered copy of one captured connection: only the requests the
 * filter matches reach the client. */
struct mhttp;
struct mhttp *mhttp_new(struct incoming *in, uint16_t port, const struct sockaddr_storage *peer,
                        const struct sockaddr_storage *local, const struct http_filter *f);
/* The connection's next bytes, in order. */
void mhttp_feed(struct mhttp *m, const uint8_t *p, size_t n);
/* The filter is freed: no request is copied any more. */
void mhttp_filter_gone(struct mhttp *m);
/* The connection ended (how: AP_CLOSE_FIN or AP_CLOSE_RESET); frees m. */
void mhttp_end(struct mhttp *m, uint8_t how, int err);
