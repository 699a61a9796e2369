/* musl_http: a static musl client (musl's own resolver, not glibc's).
 *
 *   musl_http HOST PORT PATH
 *
 * getaddrinfo(HOST) -> connect to the first address that accepts -> prints
 * "peer ADDR PORT" (getpeername) -> HTTP/1.0 GET PATH -> prints the body.
 * Exit 1 with "error: ..." on stderr on failure (the errno name included). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bodies in these tests are small; 1 MiB bounds the response we keep. */
#define MAX_RESPONSE (1 << 20)

static const char *errname(int e)
{
	switch (e) {
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case ENETUNREACH:
		return "ENETUNREACH";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EHOSTUNREACH:
		return "EHOSTUNREACH";
	default:
		return "errno";
	}
}

int main(int argc, char **argv)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	int fd = -1, err = 0, rc;

	if (argc != 4) {
		fprintf(stderr, "usage: musl_http HOST PORT PATH\n");
		return 2;
	}
	rc = getaddrinfo(argv[1], argv[2], &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "error: getaddrinfo '%s': %s\n", argv[1], gai_strerror(rc));
		return 1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "error: connect: %s (%s)\n", errname(err), strerror(err));
		return 1;
	}

	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0) {
		if (peer.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&peer;
			inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
			port = ntohs(s4->sin_port);
		} else if (peer.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&peer;
			inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
			port = ntohs(s6->sin6_port);
		}
	}
	printf("peer %s %u\n", host, port);

	char req[1024];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", argv[3], argv[1]);
	if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
		fprintf(stderr, "error: write request\n");
		return 1;
	}
	char *buf = malloc(MAX_RESPONSE + 1);
	size_t got = 0;
	ssize_t r;
	if (!buf)
		return 1;
	while (got < MAX_RESPONSE && (r = read(fd, buf + got, MAX_RESPONSE - got)) > 0)
		got += (size_t)r;
	buf[got] = '\0';
	char *body = strstr(buf, "\r\n\r\n");
	if (!body) {
		fprintf(stderr, "error: no HTTP header end in %zu bytes\n", got);
		return 1;
	}
	fputs(body + 4, stdout);
	free(buf);
	close(fd);
	return 0;
}
