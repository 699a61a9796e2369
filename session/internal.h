/* Shared between the session's source files; not part of its API. */
#pragma once

#include <netinet/in.h>
#include "agentproto/agentproto.h"
#include "common/util.h"
#include "common/evloop.h"
#include "common/u64map.h"
#include "session/dns_filter.h"
#include "session/session.h"

/* The queue towards the agent. DATA is produced only while the queue is
 * below the high-water mark, so in practice it holds control frames plus
 * at most one round of data; the hard limit catches a runaway. */
#define WQ_HIGH (512u * 1024)
#define WQ_LOW (128u * 1024)
#define WQ_MAX (8u * 1024 * 1024)
/* Connect requests the agent has not answered within this time fail. */
#define CONNECT_TIMEOUT_MS 60000
/* A UDP flow idle this long is freed once its program socket is gone. */
#define UDP_IDLE_MS 3000
#define SWEEP_MS 5000
#define MAX_STREAMS 8192
#define DNS_MAX_NS 3

/* ST_IDLE: a UDP flow whose agent stream is not requested yet (opened by
 * its first datagram; a resolver's connect() probe never sends one). */
enum stream_state { ST_IDLE, ST_CONNECTING, ST_OPEN };

#define UDP_QUEUE_MAX 32
#define UDP_RETRY_MS 1000

struct peer {
	struct sockaddr_storage addr;
	socklen_t len;
};

struct stream {
	struct session *s;
	uint32_t id;
	int type; /* SOCK_STREAM or SOCK_DGRAM */
	enum stream_state state;
	session_open_cb cb;
	void *cbdata;
	struct sockaddr_storage dst;
	socklen_t dstlen;
	int64_t timer;

	/* TCP: the relay's end of the program's connection; -1 until the
	 * relay accepted it. UDP: the relay socket. */
	int fd;
	uint32_t expect_key;  /* relay source key this stream waits for, or 0 */
	ino_t ino;            /* program socket, for getpeername(); 0 if none */
	uint32_t send_credit; /* bytes we may still send to the agent */
	uint8_t *out;         /* agent -> local bytes not yet written */
	size_t out_len, out_off, out_cap;
	uint32_t unacked; /* written locally, not yet credited back */
	bool local_eof;   /* local side sent EOF; we sent AP_CLOSE FIN */
	bool remote_fin;  /* agent sent AP_CLOSE FIN */
	bool shut_wr;     /* shutdown(SHUT_WR) done on fd */
	uint32_t events;  /* current epoll interest, ~0 if not watched */

	/* UDP */
	struct sockaddr_storage prog; /* the program socket's address */
	socklen_t proglen;
	bool prog_known;
	bool connected; /* the program connect()ed its socket to us */
	uint64_t last_use_ns;
	struct stream *ino_next; /* other UDP flows of the same program socket */
	/* UDP datagrams waiting for the agent stream to open */
	uint8_t *uq[UDP_QUEUE_MAX];
	uint16_t uq_len[UDP_QUEUE_MAX];
	size_t nuq;
	uint64_t retry_ns; /* the agent refused the flow: drop until then */
	/* DNS: the local relay this upstream stream serves, or NULL */
	struct dns_ns *dns;
	/* Incoming (agent-opened) streams: the key of the peer recorded
	 * for getpeername(), or 0; mirror streams drop the program's
	 * replies instead of sending them. */
	uint64_t in_key;
	bool discard_up;
};

#define DNS_SLOTS 1024
#define DNS_QUEUE_MAX 64

/* One outstanding query: who asked, and the id it used. */
struct dns_query {
	struct sockaddr_in client;
	uint16_t wire_id; /* the id we put on the wire */
	uint16_t orig_id; /* the client's id, restored in the reply */
	uint64_t sent_ns;
	bool used;
	/* Sent to the workstation's nameservers (feature.network.dns.filter):
	 * the bit of each one whose answer may still come, and the header and
	 * question for a SERVFAIL when none will (malloc'd; NULL when the
	 * question could not be read). */
	bool local;
	uint8_t ws_wait;
	uint8_t *ws_query;
	size_t ws_qlen;
};

struct dns_ns;

/* A connected UDP socket of the supervisor's to one workstation
 * nameserver, for the queries of one relay. */
struct dns_wsock {
	struct dns_ns *d;
	int fd; /* -1: not open */
	unsigned idx;
};

struct dns_ns {
	struct session *s;
	int udp_fd, tcp_fd;
	int64_t req;     /* pending open of the upstream stream, or 0 */
	uint32_t stream; /* the upstream UDP stream, 0 if not open */
	struct dns_query q[DNS_SLOTS];
	uint16_t next_slot, gen;
	uint8_t *queue[DNS_QUEUE_MAX]; /* queries waiting for the stream */
	uint16_t queue_len[DNS_QUEUE_MAX];
	size_t nqueue;
	struct sockaddr_storage upstream;
	socklen_t upstreamlen;
	struct sockaddr_in local;
	struct dns_wsock ws[DNS_MAX_NS];
};

struct session {
	struct evloop *loop;
	struct session_io io;
	int fd;   /* io.fd(), as registered with the loop */
	bool tcp; /* our own socket (session_open): messages name --agent-addr */
	bool alive;
	/* A dropped link being replaced (io.reconnect): reconnecting until
	 * the transport is back, resuming until the agent's HELLO_OK. */
	bool reconnecting, resuming;
	uint64_t resume_start_ns; /* start of the current cycle, 0 if none */
	unsigned resume_delay_ms; /* before the next attempt */
	int64_t resume_timer;
	char *resume_why; /* what dropped the link */
	char *lost_why;
	void (*lost_cb)(void *, const char *);
	void *lost_data;

	uint8_t *rbuf;
	size_t rlen;
	bool undispatched; /* rbuf may hold whole frames a sync_wait() left */
	bool fin_next;     /* the DATA being dispatched is followed by its stream's FIN */
	/* Our own socket only (tcp): the payload of a large DATA frame goes
	 * from the link to the stream's socket through a pipe, not rbuf. */
	int sp_pipe[2];   /* -1 until the first splice */
	bool sp_broken;   /* no pipe could be made: never splice */
	bool sp_hdr;      /* a frame was spliced: read the next header alone */
	uint32_t sp_id;   /* the stream of the frame being spliced */
	uint32_t sp_left; /* its payload bytes still on the link */
	uint8_t *wq;
	size_t wq_len, wq_off, wq_cap;
	bool wq_paused; /* relays stopped reading because wq is high */
	bool want_out;  /* EPOLLOUT registered: the kernel buffer was full */
	char agent_mode[32];

	uint32_t next_id;
	struct u64map streams; /* id -> stream */
	struct u64map expect;  /* relay key -> stream */
	/* program socket inode -> struct peer (TCP). Kept after the stream
	 * ends, while the program still holds the socket (the sweep frees
	 * entries of closed sockets), so getpeername() stays truthful. */
	struct u64map peers;
	struct u64map udp; /* program socket inode -> first UDP flow */

	int relay4, relay6;
	int refuser4, refuser6; /* bound, never listening: connects get RST */
	struct sockaddr_in relay4_addr;
	struct sockaddr_in6 relay6_addr;

	struct dns_ns dns[DNS_MAX_NS];
	size_t ndns;
	/* feature.network.dns.filter (NULL: every query goes to the pod), the
	 * workstation's nameservers for the names it keeps local, and the
	 * --trace hook that hears where each query went. */
	struct dns_filter *dns_filter;
	struct sockaddr_storage dns_ws[DNS_MAX_NS];
	socklen_t dns_wslen[DNS_MAX_NS];
	size_t ndns_ws;
	void (*dns_trace)(void *data, const char *line);
	void *dns_trace_data;
	struct dns_pipe *dns_pipes; /* TCP connections served locally */
	char *dns_hosts;            /* the workstation's /etc/hosts, or NULL */
	int64_t sweep_timer;
	size_t (*live)(void *data, uint64_t **ret_inodes);
	void *live_data;

	struct session_stats stats;
	/* Incoming traffic: subscriptions, bound ports, accepted peers
	 * (incoming.c); NULL until first used. */
	struct in_state *in;
	/* Asynchronous file requests (files.c): request id -> fs_async */
	struct u64map fs_async;
};

/* session.c */
int session_send(struct session *s, const struct ap_msg *m);
void session_lost(struct session *s, const char *fmt, ...) MT_PRINTF(2, 3);
void session_wq_changed(struct session *s);
/* Blocking wait, bounded by timeout_ms, for the reply of the given type
 * and id (or an AP_ERROR); frames before it are dispatched. The reply
 * stays at the front of rbuf until consume_front(s, length). Returns
 * its length or -errno. */
ssize_t sync_wait(struct session *s, int type, uint32_t id, int timeout_ms, struct ap_msg *ret);
void consume_front(struct session *s, size_t upto);

/* relay.c */
int relay_start(struct session *s);
int relay_watch(struct session *s);
struct stream *stream_new(struct session *s, int type);
void stream_free(struct session *s, struct stream *st);
void stream_on_data(struct session *s, struct stream *st, const uint8_t *p, uint32_t n);
/* The rest of a DATA frame of stream id may bypass rbuf: session.c splices
 * it from the link into a pipe when this holds (a TCP stream whose socket
 * has nothing queued). stream_on_spliced() takes n bytes of it out of the
 * pipe (to the socket, or buffered as stream_on_data() does, or dropped if
 * the stream is gone) and leaves the pipe empty. */
bool stream_can_splice(struct session *s, uint32_t id);
void stream_on_spliced(struct session *s, uint32_t id, int pipefd, size_t n);
void stream_on_credit(struct session *s, struct stream *st, uint32_t n);
/* Write what the agent sent to the local socket; false if that ended
 * the stream (it was freed). */
bool stream_flush(struct session *s, struct stream *st);
void stream_on_close(struct session *s, struct stream *st, uint8_t how, int32_t err);
void stream_on_connected(struct session *s, struct stream *st, int err);
void stream_update(struct session *s, struct stream *st);
void relays_resume(struct session *s);
void relays_reset_all(struct session *s);
/* The agent link dropped and will be replaced: reset every connection the
 * program holds and every UDP flow; keep connects that wait for the
 * agent's answer (re-sent by relays_resend_connects). Returns how many
 * connections were reset. */
size_t relays_link_down(struct session *s);
int relays_resend_connects(struct session *s);

uint16_t sa_port(const struct sockaddr_storage *ss);
void send_close(struct session *s, struct stream *st, uint8_t how, int err);
int loopback_for(struct session *s, int family, bool v6only, struct sockaddr_storage *ret,
                 socklen_t *ret_len, bool relay);

/* udp.c */
void udp_flow_connected(struct session *s, struct stream *st, int err);
void udp_flow_watch(struct session *s, struct stream *st);
void udp_io_cb(struct evloop *l, int fd, uint32_t events, void *data);

/* incoming.c: hooks of session.c and relay.c */
void incoming_on_resp(struct session *s, const struct ap_msg *m);
void incoming_on_accept(struct session *s, const struct ap_msg *m);
/* After a reconnect: send every subscription again. */
int incoming_resend(struct session *s);
/* The session is lost: fail listen() calls still waiting. */
void incoming_lost(struct session *s);
void incoming_free(struct session *s);
void incoming_forget_stream(struct session *s, struct stream *st);

/* files.c: an AP_FS_RESP frame that no blocking call waits for; every
 * asynchronous request fails with err (the link dropped or the session
 * was lost), or with err 0 is dropped without its callback (freeing). */
void fs_async_on_resp(struct session *s, const struct ap_msg *m);
void fs_async_fail_all(struct session *s, int err);

/* dns.c */
void dns_stop(struct session *s);
void dns_free(struct session *s);
void dns_on_stream_data(struct session *s, struct stream *st, const uint8_t *p, uint32_t n);
size_t parse_nameservers(const char *conf, struct sockaddr_storage *out, socklen_t *outlen,
                         size_t max);
/* A reply for a relay's query (from the pod or the workstation): matched
 * by its wire id, given its original id back, sent to the client. */
void dns_reply(struct dns_ns *d, const uint8_t *p, size_t n, bool local);
/* Answer a relay's query with SERVFAIL and free its slot. */
void dns_fail(struct dns_ns *d, struct dns_query *q);

/* dns_local.c: feature.network.dns.filter's workstation side */
/* Which way the query msg goes (true: the workstation), with the --trace
 * line; *ret_qend: where its question ends, 0 if it could not be read. */
bool dns_route(struct session *s, const uint8_t *msg, size_t n, bool tcp, size_t *ret_qend);
/* Send a relay's query (already carrying its wire id) to the workstation's
 * nameservers; SERVFAIL at once when there are none. */
void dns_send_local(struct dns_ns *d, struct dns_query *q, const uint8_t *msg, size_t n,
                    size_t qend);
int dns_local_open(struct dns_ns *d);
void dns_local_close(struct dns_ns *d);
/* Serve an accepted TCP connection by its first query: to the pod
 * (dns_tcp_pod), or through a pipe to the first workstation nameserver, or
 * a SERVFAIL. Takes fd. */
void dns_tcp_peek(struct dns_ns *d, int fd);
void dns_tcp_pod(struct session *s, struct dns_ns *d, int fd);
/* Close every TCP connection dns_tcp_peek still serves. */
void dns_pipes_close(struct session *s);
