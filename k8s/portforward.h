/* Port-forward to one pod port through the API server, over WebSocket
 * `v4.channel.k8s.io` (k8s-wire.md §3.3): libcurl makes the TLS connection
 * (CURLOPT_CONNECT_ONLY, HTTP/1.1 forced, the client's TLS, proxy and
 * credentials), this module writes the upgrade request and does the RFC
 * 6455 framing (ws.h) itself. One port-forward = one TCP connection to the
 * pod port: channel 0 carries the byte stream, channel 1 the kubelet's
 * error text.
 *
 * After the (blocking, bounded) open, the stream is nonblocking. Usage:
 *
 *   poll({k8s_portforward_fd(pf), k8s_portforward_events(pf)});
 *   on POLLOUT: k8s_portforward_flush();
 *   on POLLIN:  k8s_portforward_read() until it returns -EAGAIN.
 *
 * Reading until -EAGAIN matters: TLS and this module buffer bytes that the
 * socket no longer shows as readable.
 *
 * Drops and sessions. A port-forward can die under the program: the API
 * server restarts, a proxy times out, the kubelet closes. read() then
 * returns -ECONNRESET (no close frame). The object survives:
 * k8s_portforward_reconnect() opens a new WebSocket to the same pod port
 * and bumps the generation. What in-flight data sees:
 *  - the pod side sees the old TCP connection closed and a new one
 *    accepted: v4 has no resumption, so it is a new byte stream;
 *  - bytes still queued here at the drop are discarded (counted in
 *    stats.unsent_dropped); bytes already handed to TLS may or may not have
 *    reached the pod, and bytes the pod sent after the last read are lost;
 *  - so exactly-once delivery across a drop is the job of the protocol
 *    above (agentproto: session id + sequence numbers and replay), which
 *    must resynchronise at the start of each generation.
 * The fd changes on reconnect: re-register it with the poll set. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "k8s/error.h"
#include "k8s/rest.h"

struct k8s_portforward;

/* Bytes queued for sending before write() says -EAGAIN, and the largest
 * message accepted from the server (the kubelet sends 32 KiB chunks). */
#define K8S_PF_TX_MAX (256u << 10)
#define K8S_PF_MESSAGE_MAX (1u << 20)
/* Largest error-channel text kept. */
#define K8S_PF_ERROR_MAX 4096

/* Connect to pod ns/pod, port `port` (1..65535). Blocks until the upgrade
 * is done or timeout_ms passed (0 = 30 s). c is borrowed and must outlive
 * the port-forward. Errors before the upgrade are the API's Status
 * (k8s_status_error: 403 RBAC, 404 pod, 400 not Running...). */
int k8s_portforward_open(struct k8s_client *c, const char *ns, const char *pod, uint16_t port,
                         unsigned timeout_ms, struct k8s_portforward **ret, struct k8s_error *err);
void k8s_portforward_free(struct k8s_portforward *pf);
static inline void k8s_portforward_freep(struct k8s_portforward **pf)
{
	k8s_portforward_free(*pf);
}
#define _cleanup_k8s_portforward_ _cleanup_(k8s_portforward_freep)

/* The socket to poll (changes on reconnect), and the poll events wanted:
 * POLLIN, plus POLLOUT while bytes are queued. -1 / 0 when not connected. */
int k8s_portforward_fd(const struct k8s_portforward *pf);
short k8s_portforward_events(const struct k8s_portforward *pf);

/* Up to len bytes from the pod. Returns > 0, 0 at the end of the stream
 * (the WebSocket closed cleanly: the pod end closed, or after our close),
 * -EAGAIN when nothing is buffered, or -errno: -ECONNRESET the connection
 * dropped; -ECONNREFUSED / -EREMOTEIO the kubelet reported an error on the
 * error channel (err->message has its text); -EPROTO / -EMSGSIZE the server
 * broke the protocol. Errors are sticky until reconnect. Also answers pings
 * and flushes queued bytes. */
ssize_t k8s_portforward_read(struct k8s_portforward *pf, void *buf, size_t len,
                             struct k8s_error *err);

/* Queue up to len bytes for the pod and try to send them. Returns the
 * bytes accepted (> 0), -EAGAIN when the queue is full (wait for POLLOUT),
 * -EPIPE after k8s_portforward_close(), or the sticky error. */
ssize_t k8s_portforward_write(struct k8s_portforward *pf, const void *buf, size_t len,
                              struct k8s_error *err);

/* Send queued bytes: 0 when the queue is empty, -EAGAIN if some remain. */
int k8s_portforward_flush(struct k8s_portforward *pf, struct k8s_error *err);

/* v4 has no half-close: the only way to say "no more data" is to close
 * the WebSocket. Queues a close frame (1000); writes fail with -EPIPE;
 * reads go on until the server's close (0). */
int k8s_portforward_close(struct k8s_portforward *pf, struct k8s_error *err);

/* Open a new WebSocket for the same pod port after a drop or an error (see
 * the header comment for what in-flight data sees). Blocking like open. */
int k8s_portforward_reconnect(struct k8s_portforward *pf, unsigned timeout_ms,
                              struct k8s_error *err);

struct k8s_portforward_stats {
	uint64_t sent, received; /* payload bytes, this generation */
	uint64_t unsent_dropped; /* queued bytes discarded by reconnects */
	unsigned generation;     /* 1 after open, +1 per reconnect */
};
void k8s_portforward_stats(const struct k8s_portforward *pf, struct k8s_portforward_stats *ret);

/* Handshake helpers, pure (exposed for tests): the Sec-WebSocket-Accept
 * for a key (28 chars + NUL), and the check of a 101 response head
 * (headers up to the blank line). -EPROTO with *err set if it is not an
 * acceptable v4 upgrade. */
#define K8S_WS_ACCEPT_LEN 28
int k8s_ws_accept_for(const char *key, char out[K8S_WS_ACCEPT_LEN + 1]);
int k8s_ws_check_upgrade(const char *head, size_t len, const char *key, long *ret_http,
                         struct k8s_error *err);
