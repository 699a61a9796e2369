/* The HTTP/2 router's state, shared by its two files (internal to them):
 *   h2.c        connections and their ends: output, routes, sockets and
 *               agent streams, the event loop's side
 *   h2stream.c  streams: frames read from an end, routing by the filter,
 *               flow control passed through, the agent's own answers
 * agent/h2.h is the entry point the rest of the agent uses. */
#pragma once

#include "agent/h2.h"
#include "agent/h2frame.h"
#include "agent/hpack.h"

#define H2_MAX_CONNS 256
#define H2_MAX_STREAMS 128            /* advertised to the peer */
#define H2_MAX_BLOCK (64u * 1024)     /* header block, and header list */
#define H2_CONN_WINDOW (1024u * 1024) /* connection window given to every end */
#define H2_STREAM_WINDOW (256u * 1024)
#define H2_OUT_LOW (64u * 1024)   /* DATA moves to an end only below this */
#define H2_OUT_MAX (1024u * 1024) /* past this, stop reading what feeds it */
/* Bytes the router holds (outputs, inputs, stream queues) across all its
 * connections. Above it, a connection whose outputs or request queues
 * pass H2_OUT_LOW is not read until they drain (h2_blocked): each
 * connection's own bounds allow about 10 MB, times 256 connections. */
#define H2_MEM_BUDGET (64u * 1024 * 1024)
#define H2_MAX_ROUTES 4 /* pod and local connections per stolen one */
#define H2_IN_MAX (H2F_HDR_LEN + H2F_DEFAULT_MAX_FRAME)
/* Rapid reset (CVE-2023-44487): a peer may reset (or get refused) a burst
 * of 2 x H2_MAX_STREAMS streams, then H2_RESET_RATE a second on average
 * (a GCRA, the token bucket as one time); past that, GOAWAY
 * ENHANCE_YOUR_CALM. nginx refuses streams past 2 x its stream limit per
 * read; nghttp2 allows 1000, then 33 a second (GOAWAY). */
#define H2_RESET_BURST (2 * H2_MAX_STREAMS)
#define H2_RESET_RATE 32
/* A route's MAX_CONCURRENT_STREAMS until its SETTINGS say otherwise: the
 * floor RFC 9113 §6.5.2 recommends, what nghttp2 clients assume too. */
#define H2_ROUTE_STREAMS_DEFAULT 100

enum end_kind { END_PEER, END_POD, END_LOCAL };

struct h2conn;

/* One HTTP/2 connection end. */
struct h2end {
	struct h2end *next; /* the connection's routes */
	struct h2conn *c;
	enum end_kind kind;
	int fd; /* PEER, POD */
	uint32_t ev;
	bool connecting;
	struct istream *is; /* LOCAL */
	uint32_t owed;      /* LOCAL: agent stream bytes handled, not credited yet */
	uint8_t *in;        /* what was read and not handled yet */
	size_t inlen, incap;
	uint8_t *out; /* PEER, POD: for the socket */
	size_t outlen, outcap;
	uint64_t sent;   /* PEER, POD: bytes send() took, in all */
	uint64_t taken;  /* of those, acknowledged by the other side */
	uint64_t out_ns; /* when that last grew, or nothing was pending */
	bool pending;    /* the last check saw output waiting */
	struct hpack_dec *dec;
	bool preface;       /* PEER: the client preface is consumed */
	bool settings;      /* their first SETTINGS arrived */
	uint32_t max_frame; /* theirs: the largest frame we may send */
	uint32_t init_win;  /* theirs: the window of new streams we send on */
	int64_t send_win;   /* the connection window towards them */
	int64_t recv_win;   /* what they may still send on the connection */
	uint8_t *hb;        /* header block being collected */
	size_t hblen;
	uint32_t hb_sid;
	uint8_t hb_flags;
	bool in_hb;
	uint32_t next_sid;    /* routes: the next stream id to open */
	uint32_t last_sid;    /* peer: the highest stream id seen */
	unsigned nstreams;    /* streams on it (routes: begun or queued) */
	unsigned nactive;     /* routes: streams begun (HEADERS sent) */
	uint32_t max_streams; /* routes: their MAX_CONCURRENT_STREAMS */
	bool goaway;          /* routes: no new streams (GOAWAY, failure) */
	bool broken;          /* LOCAL: its agent stream was cut; fail it soon */
	bool dead;            /* closed; freed by h2c_update() */
};

/* One direction of a stream: what waits for the destination's window. */
struct h2dir {
	uint8_t *q;
	size_t qlen;
	int64_t win;       /* the send window at the destination */
	int64_t recv_left; /* what the source may still send on the stream */
	uint8_t *trail;    /* an encoded header block waiting behind q */
	size_t trail_len;
	bool es;   /* END_STREAM came from the source */
	bool done; /* END_STREAM went out (or nobody takes more) */
};

struct h2s {
	struct h2s *next;
	struct h2conn *c;
	uint32_t psid, usid;
	struct h2end *route; /* NULL: answered by the agent; request bytes dropped */
	struct h2dir req, resp;
	bool resp_begun; /* response HEADERS went to the peer */
	/* Waiting for room under the route's MAX_CONCURRENT_STREAMS: no
	 * route stream id yet; head is its encoded request header block. */
	bool queued;
	uint8_t *head;
	size_t head_len;
};

struct h2conn {
	struct h2conn *next;
	struct incoming *in;
	struct agent *a;
	const struct http_filter *f; /* NULL after unsubscribe: all to the pod */
	uint16_t port;
	struct sockaddr_storage peer_addr, orig;
	struct h2end peer;
	struct h2end *routes;
	struct h2s *streams;
	unsigned nqueued;  /* streams queued for a route (see h2s.queued) */
	uint64_t rst_tat;  /* rapid reset: the GCRA's theoretical arrival time */
	uint64_t frame_ns; /* the peer's last frame (AGENT_IDLE_MS) */
	int64_t timer;     /* the idle and stall check */
	size_t held;       /* bytes held, as last counted (h2c_update) */
	size_t req_held;   /* of those, request DATA waiting for a route */
	bool peer_goaway;  /* the peer sent GOAWAY: end when its streams are done */
	bool closing;      /* GOAWAY sent or EOF: free once the output is out */
	bool reset;        /* free with a TCP reset */
};

/* ---- h2.c ---- */

/* Bytes queued towards an end and not yet written. */
size_t h2_pending(const struct h2end *e);
/* Whether what e sends may not be handled now: an output it feeds (the
 * peer's; the routes' for the peer, its own for a route) is at
 * H2_OUT_MAX. */
bool h2_blocked(const struct h2end *e);
void h2_write(struct h2end *e, const void *p, size_t n);
void h2_frame(struct h2end *e, uint8_t type, uint8_t flags, uint32_t sid, const uint8_t *p,
              size_t n);
void h2_send_rst(struct h2end *e, uint32_t sid, uint32_t code);
/* WINDOW_UPDATE of n on sid (0: the connection) to e; NULL e: nothing. */
void h2_send_credit(struct h2end *e, uint32_t sid, uint32_t n);
/* An encoded header block as HEADERS + CONTINUATION frames. */
void h2_send_block(struct h2end *e, uint32_t sid, const uint8_t *b, size_t n, bool es);
/* The route (pod or local) for a new stream, opened if need be; NULL with
 * *why set when none can be had. */
struct h2end *h2_route_get(struct h2conn *c, enum end_kind kind, const char **why);
/* A route is gone: each of its streams gets a 502 or a reset. On the
 * peer, the connection ends. */
void h2_end_fail(struct h2end *e, const char *why);
/* A connection error found on e: GOAWAY with the code, then close. */
void h2_conn_error(struct h2end *e, unsigned code, const char *what);

/* ---- h2stream.c ---- */

/* Bytes read from e: every whole frame in them is handled. */
void h2_input(struct h2end *e, const uint8_t *p, size_t n);
/* Move what windows and room allow on every stream; free finished ones. */
void h2_pump_all(struct h2conn *c);
/* A stream whose route failed: a 502 if nothing of its response went out
 * yet, else RST_STREAM. */
void h2_stream_fail(struct h2conn *c, struct h2s *s, const char *why);
void h2_stream_free(struct h2s *s);
