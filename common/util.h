/* Small helpers shared by every module: cleanup attributes, ownership
 * transfer, checked number parsing. Nothing here logs or allocates behind
 * the caller's back. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MT_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define MT_UNUSED __attribute__((unused))

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	/* Never retry close() on EINTR: the fd is gone either way on Linux. */
	if (*fd >= 0)
		close(*fd);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

/* Hand over ownership: return the value and leave the variable empty. */
#define TAKE_PTR(p)                      \
	({                               \
		__typeof__(p) _tp = (p); \
		(p) = NULL;              \
		_tp;                     \
	})
#define TAKE_FD(fd)             \
	({                      \
		int _tf = (fd); \
		(fd) = -1;      \
		_tf;            \
	})

/* Out-of-memory policy: the CLI, the supervisor and the agent abort on OOM
 * (xmalloc & co.); agentproto and k8s propagate -ENOMEM instead. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
MT_PRINTF(1, 2) char *xasprintf(const char *fmt, ...);

/* Checked parsers: the whole string must be a number in [min, max].
 * Return 0 or -EINVAL / -ERANGE. */
int parse_u64(const char *s, uint64_t max, uint64_t *ret);
int parse_int(const char *s, long min, long max, long *ret);
int parse_bool(const char *s, bool *ret);

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);

/* "HOST:PORT" / "[V6]:PORT" → sockaddr; numeric hosts only. */
struct sockaddr_storage;
int parse_hostport(const char *s, struct sockaddr_storage *ret, unsigned *ret_len);
/* Render an IPv4/IPv6 sockaddr as "1.2.3.4:80" / "[::1]:80" into buf. */
const char *sockaddr_str(const void *sa, unsigned len, char *buf, size_t cap);
#define SOCKADDR_STR_MAX 64

/* write()/read() all bytes, retrying on EINTR and short counts. Blocking fds. */
int write_all(int fd, const void *buf, size_t len);
int set_nonblock(int fd, bool on);
/* A non-blocking pipe for moving socket bytes with splice(), with room for
 * 64 buffer fragments (a page each at most; the default 16 can cut a
 * 64 KiB splice short). Returns 0, or -errno with both fds left at -1. */
int splice_pipe_open(int ret_fds[2]);

/* Remove path and everything under it, without following symlinks; a
 * missing path is success. Returns 0 or the first -errno. */
int rm_tree(const char *path);
