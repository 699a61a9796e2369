/* HTTP/2 (prior knowledge, h2c) connections of a filtered steal: the
 * router of agent/h2.c, entered from http.c when a stolen connection on a
 * port with a filter opens with the HTTP/2 preface. Internal to agent/. */
#pragma once

#include "agent/incoming.h"

/* Whether h2_start() would refuse a connection (H2_MAX_CONNS of them
 * are served); the caller passes it to the pod's app whole instead. */
bool h2_full(void);
/* Serve one stolen HTTP/2 connection request by request. Takes fd;
 * head[0..n) are the bytes already read from it (the preface and maybe
 * more). */
void h2_start(struct incoming *in, struct agent *a, int fd, uint16_t port,
              const struct sockaddr_storage *peer, const struct sockaddr_storage *orig,
              const struct http_filter *f, const uint8_t *head, size_t n);
/* The HTTP/2 connections of a client end with it (port < 0); after the
 * unsubscription of one port, its new streams all go to the pod. */
void h2_free_all(struct incoming *in, int port);
