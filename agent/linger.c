/* Lingering close of a stolen connection the agent ends (RFC 9112 §9.6):
 * a plain close() of a socket with unread bytes, or one that receives
 * bytes after it (a pipelined request in flight), makes the kernel send a
 * reset, and a reset can make the peer drop the response it has not read
 * yet. So the agent shuts its side (FIN after the queued bytes) and reads
 * and discards what still comes, until the peer's FIN, LINGER_MS, or
 * LINGER_MAX_BYTES, and closes then.
 *
 * At most LINGER_MAX sockets linger at once; past that a socket is closed
 * at once, as before. */
#include "agent/incoming.h"
#include "common/evloop.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINGER_MAX 256
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (1u << 20)

struct lingerer {
	struct evloop *l;
	int fd;
	int64_t timer;
	size_t discarded;
};

static struct lingerer slots[LINGER_MAX];
static size_t nlinger;

static void linger_end(struct lingerer *g)
{
	evloop_del(g->l, g->fd);
	if (g->timer > 0)
		evloop_timer_cancel(g->l, g->timer);
	close(g->fd);
	g->fd = -1;
	g->l = NULL;
	nlinger--;
}

static void linger_timeout(struct evloop *l, void *data)
{
	struct lingerer *g = data;

	(void)l;
	g->timer = 0;
	linger_end(g);
}

static void linger_event(struct evloop *l, int fd, uint32_t events, void *data)
{
	struct lingerer *g = data;
	uint8_t scratch[16384];
	ssize_t n;

	(void)l;
	(void)events;
	n = read(fd, scratch, sizeof(scratch));
	if (n > 0 && (g->discarded += (size_t)n) < LINGER_MAX_BYTES)
		return;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	linger_end(g); /* the peer's FIN, an error, or enough */
}

void agent_linger_close(struct evloop *l, int fd)
{
	struct lingerer *g = NULL;

	if (fd < 0)
		return;
	for (size_t i = 0; i < LINGER_MAX && nlinger < LINGER_MAX; i++)
		if (!slots[i].l) {
			g = &slots[i];
			break;
		}
	if (!g || shutdown(fd, SHUT_WR) < 0) {
		close(fd);
		return;
	}
	*g = (struct lingerer){.l = l, .fd = fd};
	if (evloop_add(l, fd, EPOLLIN, linger_event, g) < 0) {
		close(fd);
		g->l = NULL;
		return;
	}
	g->timer = evloop_timer(l, LINGER_MS, linger_timeout, g);
	nlinger++;
	if (g->timer < 0) {
		g->timer = 0;
		linger_end(g);
	}
}

void agent_linger_flush(void)
{
	for (size_t i = 0; i < LINGER_MAX; i++)
		if (slots[i].l)
			linger_end(&slots[i]);
}
