/* Mirror: passive capture of the subscribed ports' inbound TCP payload.
 *
 * One AF_PACKET socket (SOCK_DGRAM: packets start at the IP header) in
 * the target's network namespace, all interfaces, received packets only
 * (PACKET_IGNORE_OUTGOING), with a classic BPF filter that passes IPv4 and
 * IPv6 TCP segments whose destination port is subscribed. Each connection
 * seen from its SYN becomes a mirror stream (AP_ACCEPT, mode MIRROR);
 * reasm.c puts its bytes in order, and its FIN or RST ends the stream.
 * The pod's packets are never touched, delayed or answered: a copy that
 * cannot be completed (a gap beyond the reassembly bounds, a client that
 * does not keep up) is cut with AP_CLOSE RESET, never slowed down.
 *
 * Not seen: connections already open when the subscription started (no
 * SYN), IPv6 with extension headers before TCP, IPv4 fragments. */
#include "agent/incoming.h"
#include "agent/reasm.h"
#include "common/evloop.h"
#include "common/log.h"

#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <string.h>
#include <sys/socket.h>

#define CAP_SNAP 65600       /* an IP packet of 64 KiB (GRO) plus headers */
#define CAP_RCVBUF (8 << 20) /* the kernel queue between us and the NIC */
#define CAP_BATCH 512        /* packets per wakeup */
#define CAP_MAX_FLOWS 4096   /* connections mirrored at once */
#define CAP_BUCKETS 4096
#define CAP_MAX_OOO (64u << 20)      /* out-of-order bytes over all flows */
#define CAP_IDLE_MS (10 * 60 * 1000) /* a flow silent this long is dropped */
#define CAP_SWEEP_MS (30 * 1000)
#define CAP_MAX_BPF (16 + 2 * 2 * INCOMING_MAX_SUBS)

struct flow {
	struct flow *next;
	struct capture *cap;
	uint8_t family;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint32_t isn;
	struct reasm r;
	struct istream *is; /* NULL once the copy was cut */
	struct mhttp *mh;   /* with an HTTP filter: the requests it matches */
	uint64_t last_ns;
};

struct capture {
	struct incoming *in;
	struct agent *a;
	int fd;
	struct flow *bucket[CAP_BUCKETS];
	size_t nflows, ooo_total;
	int64_t sweep_timer;
	uint8_t *pkt;
	uint64_t packets, lost_copies;
};

static const struct istream_ops mirror_ops;

static uint32_t flow_hash(uint8_t fam, const uint8_t *src, const uint8_t *dst, uint16_t sport,
                          uint16_t dport)
{
	uint32_t h = 2166136261u;
	size_t n = fam == 4 ? 4 : 16;

	for (size_t i = 0; i < n; i++)
		h = (h ^ src[i]) * 16777619u, h = (h ^ dst[i]) * 16777619u;
	h = (h ^ sport) * 16777619u;
	h = (h ^ dport) * 16777619u;
	return h % CAP_BUCKETS;
}

static struct flow **flow_slot(struct capture *cap, uint8_t fam, const uint8_t *src,
                               const uint8_t *dst, uint16_t sport, uint16_t dport)
{
	struct flow **pp = &cap->bucket[flow_hash(fam, src, dst, sport, dport)];
	size_t n = fam == 4 ? 4 : 16;

	for (; *pp; pp = &(*pp)->next) {
		struct flow *f = *pp;
		if (f->family == fam && f->sport == sport && f->dport == dport &&
		    !memcmp(f->src, src, n) && !memcmp(f->dst, dst, n))
			break;
	}
	return pp;
}

static void flow_free(struct flow *f, uint8_t how, int err)
{
	struct capture *cap = f->cap;
	struct flow **pp = flow_slot(cap, f->family, f->src, f->dst, f->sport, f->dport);

	if (*pp == f)
		*pp = f->next;
	cap->nflows--;
	if (f->is)
		istream_close(f->is, how, err);
	if (f->mh)
		mhttp_end(f->mh, how, err);
	reasm_free(&f->r, &cap->ooo_total);
	free(f);
}

static void cut(struct flow *f, int err)
{
	if (f->mh) {
		f->cap->lost_copies++;
		mhttp_end(f->mh, AP_CLOSE_RESET, err);
		f->mh = NULL;
	}
	if (!f->is)
		return;
	f->cap->lost_copies++;
	istream_close(f->is, AP_CLOSE_RESET, err);
	f->is = NULL;
}

static void deliver(void *ctx, const uint8_t *p, size_t n)
{
	struct flow *f = ctx;

	if (f->mh)
		mhttp_feed(f->mh, p, n);
	if (f->is && istream_send(f->is, p, n, MIRROR_MAX_PENDING) < 0) {
		log_warn("mirror: a copy of port %u fell %u bytes behind; cut", f->dport,
		         MIRROR_MAX_PENDING);
		cut(f, ENOBUFS);
	}
}

static void mirror_closed(void *ctx, uint8_t how, int err)
{
	struct flow *f = ctx;

	/* The client's FIN only says it will not reply; a RESET means it
	 * wants no more of this copy. */
	if (how == AP_CLOSE_RESET)
		f->is = NULL;
}

static const struct istream_ops mirror_ops = {.closed = mirror_closed};

static void sockaddr_of(uint8_t fam, const uint8_t *a, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (fam == 4) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		memcpy(&s->sin_addr, a, 4);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
		s->sin6_family = AF_INET6;
		s->sin6_port = htons(port);
		memcpy(&s->sin6_addr, a, 16);
	}
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One captured IP packet p[0..n). Every offset is checked against n: the
 * bytes come from the network. */
static void on_packet(struct capture *cap, const uint8_t *p, size_t n)
{
	uint8_t fam, src[16] = {0}, dst[16] = {0};
	size_t ip_len, tot;

	if (n < 20)
		return;
	if ((p[0] >> 4) == 4) {
		fam = 4;
		ip_len = (size_t)(p[0] & 0xf) * 4;
		tot = be16(p + 2);
		if (p[9] != IPPROTO_TCP || ip_len < 20)
			return;
		memcpy(src, p + 12, 4);
		memcpy(dst, p + 16, 4);
	} else if ((p[0] >> 4) == 6 && n >= 40) {
		fam = 6;
		ip_len = 40;
		tot = 40 + (size_t)be16(p + 4);
		if (p[6] != IPPROTO_TCP)
			return;
		memcpy(src, p + 8, 16);
		memcpy(dst, p + 24, 16);
	} else {
		return;
	}
	/* GRO may hand us a packet whose length field is 0 (over 64 KiB):
	 * trust the captured length then. */
	if (tot == 0 || tot > n)
		tot = n;
	if (tot < ip_len + 20)
		return;
	const uint8_t *t = p + ip_len;
	size_t thl = (size_t)(t[12] >> 4) * 4;
	if (thl < 20 || ip_len + thl > tot)
		return;
	uint16_t sport = be16(t), dport = be16(t + 2);
	uint32_t seq = be32(t + 4);
	uint8_t flags = t[13];
	const uint8_t *pl = t + thl;
	size_t plen = tot - ip_len - thl;
	bool syn = flags & 0x02, ack = flags & 0x10, fin = flags & 0x01, rst = flags & 0x04;

	struct flow **pp = flow_slot(cap, fam, src, dst, sport, dport);
	struct flow *f = *pp;
	if (syn && !ack) {
		if (f && f->isn == seq)
			return; /* a retransmitted SYN */
		if (f)          /* the 4-tuple is reused: the old copy is over */
			flow_free(f, AP_CLOSE_RESET, ECONNRESET);
		if (cap->nflows >= CAP_MAX_FLOWS)
			return;
		f = xcalloc(1, sizeof(*f));
		f->cap = cap;
		f->family = fam;
		memcpy(f->src, src, 16);
		memcpy(f->dst, dst, 16);
		f->sport = sport;
		f->dport = dport;
		f->isn = seq;
		reasm_init(&f->r, seq);
		struct sockaddr_storage ps, ls;
		sockaddr_of(fam, src, sport, &ps);
		sockaddr_of(fam, dst, dport, &ls);
		const struct http_filter *filt = incoming_mirror_filter(cap->in, dport);
		if (filt)
			f->mh = mhttp_new(cap->in, dport, &ps, &ls, filt);
		else
			f->is = istream_open(cap->in, AP_SUB_MIRROR, dport, (struct sockaddr *)&ps,
			                     (struct sockaddr *)&ls, 0, &mirror_ops, f);
		pp = flow_slot(cap, fam, src, dst, sport, dport);
		f->next = *pp;
		*pp = f;
		cap->nflows++;
		f->last_ns = now_ns();
		return;
	}
	if (!f)
		return; /* began before we looked: no way to replay it */
	f->last_ns = now_ns();
	if (rst) {
		flow_free(f, AP_CLOSE_RESET, ECONNRESET);
		return;
	}
	int r = reasm_segment(&f->r, seq, pl, plen, fin, &cap->ooo_total, CAP_MAX_OOO, deliver, f);
	if (r < 0) {
		log_warn("mirror: a gap in a connection to port %u outgrew the reassembly bounds; "
		         "its copy is cut",
		         dport);
		cut(f, EIO);
		reasm_free(&f->r, &cap->ooo_total);
	} else if (r == 1) {
		flow_free(f, AP_CLOSE_FIN, 0);
	}
}

static void on_readable(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct capture *cap = data;

	for (int i = 0; i < CAP_BATCH; i++) {
		ssize_t n = recv(fd, cap->pkt, CAP_SNAP, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			return;
		cap->packets++;
		on_packet(cap, cap->pkt, (size_t)n < CAP_SNAP ? (size_t)n : CAP_SNAP);
	}
}

static void sweep(struct evloop *l, void *data)
{
	struct capture *cap = data;
	uint64_t now = now_ns();

	for (size_t i = 0; i < CAP_BUCKETS; i++) {
		struct flow *f = cap->bucket[i], *next;
		for (; f; f = next) {
			next = f->next;
			if (now - f->last_ns > (uint64_t)CAP_IDLE_MS * 1000000)
				flow_free(f, AP_CLOSE_RESET, ETIMEDOUT);
		}
	}
	cap->sweep_timer = evloop_timer(l, CAP_SWEEP_MS, sweep, cap);
}

int capture_new(struct incoming *in, struct agent *a, struct capture **ret)
{
	int one = 1, rcv = CAP_RCVBUF;
	/* Protocol 0 until the filter is attached: no packet is queued
	 * unfiltered before that. */
	_cleanup_close_ int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0)
		return -errno; /* Linux >= 4.20 */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	struct capture *cap = xcalloc(1, sizeof(*cap));
	cap->in = in;
	cap->a = a;
	cap->fd = TAKE_FD(fd);
	cap->pkt = xmalloc(CAP_SNAP);
	*ret = cap;
	return 0;
}

/* The filter: IPv4/IPv6 TCP, destination port in ports. */
void capture_filter_gone(struct capture *cap, uint16_t port)
{
	for (size_t i = 0; i < CAP_BUCKETS; i++)
		for (struct flow *f = cap->bucket[i]; f; f = f->next)
			if (f->dport == port && f->mh)
				mhttp_filter_gone(f->mh);
}

int capture_set_ports(struct capture *cap, const uint16_t *ports, size_t n)
{
	struct sock_filter f[CAP_MAX_BPF];
	size_t k = 0, i;

	/* Straight-line program, jumps computed from the layout:
	 *  0 ld proto
	 *  1 jeq IP ? 2 : V6
	 *  2 ldb [9]; 3 jeq TCP ? 4 : DROP
	 *  4 ldh [6]; 5 jset 0x1fff ? DROP : 6
	 *  6 ldx 4*([0]&0xf); 7 ldh [x+2]
	 *  8.. jeq port_i ? ACCEPT : next; then ret 0
	 *  V6: jeq IPV6 ? +1 : DROP; ldb [6]; jeq TCP ? +1 : DROP; ldh [42];
	 *      jeq port_i ? ACCEPT : next; DROP: ret 0; ACCEPT: ret snap */
	size_t v6 = 8 + n + 1, v6_ports = v6 + 4, drop = v6_ports + n, accept = drop + 1;
#define JMP(code, kk, t, fl)                                                        \
	do {                                                                        \
		f[k] = (struct sock_filter)BPF_JUMP(code, kk, (uint8_t)((t)-k - 1), \
		                                    (uint8_t)((fl)-k - 1));         \
		k++;                                                                \
	} while (0)
#define STMT(code, kk)                                         \
	do {                                                   \
		f[k] = (struct sock_filter)BPF_STMT(code, kk); \
		k++;                                           \
	} while (0)
	if (n > INCOMING_MAX_SUBS || accept + 1 > CAP_MAX_BPF)
		return -E2BIG;
	STMT(BPF_LD | BPF_H | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PROTOCOL));
	JMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, k + 1, v6);
	STMT(BPF_LD | BPF_B | BPF_ABS, 9);
	JMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, k + 1, drop);
	STMT(BPF_LD | BPF_H | BPF_ABS, 6);
	JMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, drop, k + 1);
	STMT(BPF_LDX | BPF_B | BPF_MSH, 0);
	STMT(BPF_LD | BPF_H | BPF_IND, 2);
	for (i = 0; i < n; i++)
		JMP(BPF_JMP | BPF_JEQ | BPF_K, ports[i], accept, k + 1);
	STMT(BPF_RET | BPF_K, 0);
	/* k == v6 */
	JMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, k + 1, drop);
	STMT(BPF_LD | BPF_B | BPF_ABS, 6);
	JMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, k + 1, drop);
	STMT(BPF_LD | BPF_H | BPF_ABS, 42);
	for (i = 0; i < n; i++)
		JMP(BPF_JMP | BPF_JEQ | BPF_K, ports[i], accept, k + 1);
	STMT(BPF_RET | BPF_K, 0);
	STMT(BPF_RET | BPF_K, CAP_SNAP);
#undef JMP
#undef STMT
	struct sock_fprog prog = {.len = (unsigned short)k, .filter = f};
	if (setsockopt(cap->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		return -errno;
	if (!cap->sweep_timer) {
		/* First ports: start receiving (bind to every interface). */
		struct sockaddr_ll sll = {.sll_family = AF_PACKET,
		                          .sll_protocol = htons(ETH_P_ALL)};
		if (bind(cap->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
			return -errno;
		int r = evloop_add(cap->a->loop, cap->fd, EPOLLIN, on_readable, cap);
		if (r < 0)
			return r;
		cap->sweep_timer = evloop_timer(cap->a->loop, CAP_SWEEP_MS, sweep, cap);
	}
	return 0;
}

void capture_free(struct capture *cap)
{
	if (!cap)
		return;
	if (cap->sweep_timer) {
		evloop_del(cap->a->loop, cap->fd);
		evloop_timer_cancel(cap->a->loop, cap->sweep_timer);
	}
	for (size_t i = 0; i < CAP_BUCKETS; i++)
		while (cap->bucket[i])
			flow_free(cap->bucket[i], AP_CLOSE_RESET, ECONNABORTED);
	struct tpacket_stats st;
	socklen_t sl = sizeof(st);
	if (getsockopt(cap->fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0)
		log_info("mirror: %" PRIu64 " packets captured, %u dropped by the kernel, %" PRIu64
		         " copies cut",
		         cap->packets, st.tp_drops, cap->lost_copies);
	closep(&cap->fd);
	free(cap->pkt);
	free(cap);
}
