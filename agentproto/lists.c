/* agentproto's helpers for entry lists (env, dirents), strings and
 * socket addresses (agentproto.h). */
#include "agentproto/internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* ---- env entry lists ---------------------------------------------------- */

int ap_env_put(uint8_t *buf, size_t cap, size_t *off, const char *entry, size_t len)
{
	if (len > AP_MAX_STRING)
		return -EMSGSIZE;
	/* Written so no sum can wrap: *off may be anything the caller had. */
	if (*off > cap || cap - *off < AP_LEN_SIZE || cap - *off - AP_LEN_SIZE < len)
		return -ENOBUFS;
	put_be32(buf + *off, (uint32_t)len);
	if (len > 0)
		memcpy(buf + *off + AP_LEN_SIZE, entry, len);
	*off += AP_LEN_SIZE + len;
	return 0;
}

int ap_env_next(const struct ap_bytes *entries, size_t *off, struct ap_bytes *ret_entry)
{
	size_t len = entries->len;
	uint32_t n;

	/* The list was validated by ap_decode(), but a caller's loop must
	 * never run off the end if handed something else: a malformed list
	 * ends the walk (0) rather than returning an error a `while (...)`
	 * loop would spin on. */
	if (*off > len || len - *off < AP_LEN_SIZE)
		return 0;
	n = get_be32(entries->ptr + *off);
	if (n > len - *off - AP_LEN_SIZE)
		return 0;
	ret_entry->ptr = entries->ptr + *off + AP_LEN_SIZE;
	ret_entry->len = n;
	*off += AP_LEN_SIZE + n;
	return 1;
}

/* ---- dirent lists --------------------------------------------------------- */

int ap_dirent_put(uint8_t *buf, size_t cap, size_t *off, uint64_t ino, uint8_t type,
                  const char *name, size_t len)
{
	if (len == 0 || len > AP_FS_NAME_MAX || memchr(name, '/', len) || memchr(name, 0, len))
		return -EINVAL;
	if (*off > cap || cap - *off < AP_DIRENT_FIXED || cap - *off - AP_DIRENT_FIXED < len)
		return -ENOBUFS;
	put_be64(buf + *off, ino);
	buf[*off + 8] = type;
	put_be32(buf + *off + 9, (uint32_t)len);
	memcpy(buf + *off + AP_DIRENT_FIXED, name, len);
	*off += AP_DIRENT_FIXED + len;
	return 0;
}

int ap_dirent_next(const struct ap_bytes *list, size_t *off, struct ap_dirent *ret)
{
	size_t len = list->len;
	uint32_t n;

	/* As ap_env_next: a malformed list ends the walk. */
	if (*off > len || len - *off < AP_DIRENT_FIXED)
		return 0;
	n = get_be32(list->ptr + *off + 9);
	if (n > len - *off - AP_DIRENT_FIXED)
		return 0;
	ret->ino = get_be64(list->ptr + *off);
	ret->type = list->ptr[*off + 8];
	ret->name.ptr = list->ptr + *off + AP_DIRENT_FIXED;
	ret->name.len = n;
	*off += AP_DIRENT_FIXED + n;
	return 1;
}

int ap_bytes_to_str(const struct ap_bytes *b, char *dst, size_t cap)
{
	if (b->len >= cap)
		return -ENAMETOOLONG;
	if (b->len > 0) {
		/* An embedded NUL would silently truncate the string the
		 * caller acts on ("/etc/passwd\0/../x"). */
		if (memchr(b->ptr, 0, b->len))
			return -EINVAL;
		memcpy(dst, b->ptr, b->len);
	}
	dst[b->len] = '\0';
	return 0;
}

/* ---- addresses ---------------------------------------------------------- */

int ap_addr_from_sockaddr(const struct sockaddr *sa, size_t len, struct ap_addr *ret)
{
	struct ap_addr a = {0};
	sa_family_t fam;

	if (len < sizeof(fam))
		return -EINVAL;
	/* memcpy into properly typed locals: the caller's buffer may be a
	 * byte array copied out of a tracee with no particular alignment. */
	memcpy(&fam, (const uint8_t *)sa + offsetof(struct sockaddr, sa_family), sizeof(fam));
	if (fam == AF_INET) {
		struct sockaddr_in sin;
		if (len < sizeof(sin))
			return -EINVAL;
		memcpy(&sin, sa, sizeof(sin));
		a.family = 4;
		a.port = ntohs(sin.sin_port);
		memcpy(a.addr, &sin.sin_addr, 4);
	} else if (fam == AF_INET6) {
		struct sockaddr_in6 sin6;
		if (len < sizeof(sin6))
			return -EINVAL;
		memcpy(&sin6, sa, sizeof(sin6));
		/* flowinfo and scope_id do not travel: a local interface
		 * index means nothing in the agent's namespace. */
		a.family = 6;
		a.port = ntohs(sin6.sin6_port);
		memcpy(a.addr, &sin6.sin6_addr, 16);
	} else {
		return -EAFNOSUPPORT;
	}
	*ret = a;
	return 0;
}

int ap_addr_to_sockaddr(const struct ap_addr *a, struct sockaddr *sa, size_t cap)
{
	if (a->family == 4) {
		struct sockaddr_in sin = {0};
		if (cap < sizeof(sin))
			return -EINVAL;
		sin.sin_family = AF_INET;
		sin.sin_port = htons(a->port);
		memcpy(&sin.sin_addr, a->addr, 4);
		memcpy(sa, &sin, sizeof(sin));
		return (int)sizeof(sin);
	}
	if (a->family == 6) {
		struct sockaddr_in6 sin6 = {0};
		if (cap < sizeof(sin6))
			return -EINVAL;
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(a->port);
		memcpy(&sin6.sin6_addr, a->addr, 16);
		memcpy(sa, &sin6, sizeof(sin6));
		return (int)sizeof(sin6);
	}
	return -EINVAL;
}
