/* A small Kubernetes REST client on libcurl + jansson (k8s-wire.md §2):
 * GET, LIST (selectors, paging), WATCH (incremental chunked parsing),
 * POST, DELETE (Background propagation) and PATCH. Non-2xx answers become
 * a struct k8s_error whose message is one line that says what to do.
 * Paths are API paths ("/api/v1/namespaces/ns/pods/x"); callers build them
 * from validated names (k8s_name_valid). One client is single-threaded. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "k8s/error.h"
#include "k8s/kubeconfig.h"

struct k8s_client;

/* Largest response body kept in memory (a LIST of many pods), and the
 * largest single watch event. Going past either fails with -EMSGSIZE. */
#define K8S_BODY_MAX (64u << 20)
#define K8S_EVENT_MAX (8u << 20)
/* Pages followed by k8s_list() (limit=500 each). */
#define K8S_LIST_PAGES_MAX 200

/* Takes ownership of kc (also on failure). */
int k8s_client_new(struct kubeconfig *kc, struct k8s_client **ret, struct k8s_error *err);
void k8s_client_free(struct k8s_client *c);
static inline void k8s_client_freep(struct k8s_client **c)
{
	k8s_client_free(*c);
}
#define _cleanup_k8s_client_ _cleanup_(k8s_client_freep)

struct kubeconfig *k8s_client_config(struct k8s_client *c);
/* Whole-request timeout for non-watch calls (default 30 s), and connect
 * timeout (default 10 s). */
void k8s_client_set_timeouts(struct k8s_client *c, unsigned request_ms, unsigned connect_ms);

/* Polled during every request (about once a second while waiting); a
 * non-zero answer aborts it with -EINTR. NULL: never cancelled.
 * DELETEs are never cancelled: they are how a cancelled run cleans up. */
typedef int (*k8s_cancel_fn)(void *data);
void k8s_client_set_cancel(struct k8s_client *c, k8s_cancel_fn fn, void *data);

/* One request. body may be NULL; content_type defaults to
 * application/json when there is a body. *ret (may be NULL) receives the
 * parsed 2xx body (JSON null for an empty one). */
int k8s_request(struct k8s_client *c, const char *method, const char *path,
                const char *content_type, const json_t *body, json_t **ret, struct k8s_error *err);

int k8s_get(struct k8s_client *c, const char *path, json_t **ret, struct k8s_error *err);

/* LIST a collection, following `continue` tokens; *ret_items is the
 * concatenated items array. Selectors may be NULL (never pass "" by
 * accident: no selector lists everything). */
int k8s_list(struct k8s_client *c, const char *path, const char *label_selector,
             const char *field_selector, json_t **ret_items, struct k8s_error *err);

int k8s_create(struct k8s_client *c, const char *path, const json_t *body, json_t **ret,
               struct k8s_error *err);

/* DELETE with {"propagationPolicy":"Background"}: a Job's pods go too. */
int k8s_delete(struct k8s_client *c, const char *path, json_t **ret, struct k8s_error *err);

enum k8s_patch_type {
	K8S_PATCH_MERGE,     /* application/merge-patch+json */
	K8S_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
	K8S_PATCH_JSON,      /* application/json-patch+json */
};
int k8s_patch(struct k8s_client *c, const char *path, enum k8s_patch_type type, const json_t *body,
              json_t **ret, struct k8s_error *err);

/* Called per watch event with type "ADDED", "MODIFIED", "DELETED" or
 * "BOOKMARK" and the object (borrowed). Return 0 to go on, > 0 to stop
 * successfully, < 0 to stop with that error. ERROR events are turned into
 * errors by the client (410 Expired -> -ESTALE: relist and watch again). */
typedef int (*k8s_watch_fn)(void *userdata, const char *type, json_t *object);

struct k8s_watch_opts {
	const char *label_selector, *field_selector; /* or NULL */
	const char *resource_version;                /* NULL: initial ADDED events */
	unsigned timeout_s;                          /* server timeoutSeconds, and ours + 5 s */
	bool bookmarks;
};
/* Returns the callback's positive value, 0 if the server ended the watch,
 * or -errno. */
int k8s_watch(struct k8s_client *c, const char *path, const struct k8s_watch_opts *o,
              k8s_watch_fn fn, void *userdata, struct k8s_error *err);

/* GET a streamed, non-JSON body (pods/log?follow=true): fn gets the raw
 * bytes as curl delivers them, split anywhere, and returns n to go on or 0
 * to stop (then k8s_stream returns -ECANCELED; the sink knows why).
 * Returns 0 when the server ends the body, -ETIMEDOUT after timeout_ms. */
typedef size_t (*k8s_stream_fn)(char *data, size_t size, size_t n, void *userdata);
int k8s_stream(struct k8s_client *c, const char *path, unsigned timeout_ms, k8s_stream_fn fn,
               void *userdata, struct k8s_error *err);

/* The incremental watch-stream parser (pure; exposed for tests and fuzzing).
 * Feed it bytes split anywhere; it calls fn once per complete event. */
struct k8s_watch_parser {
	char *buf;
	size_t len, cap;
	k8s_watch_fn fn;
	void *userdata;
	struct k8s_error *err;
	int stopped; /* the callback's non-zero result, once it stopped */
	/* Scanner state over buf[0..scan): where the current object ends. */
	size_t scan;
	unsigned depth;
	bool in_str, esc;
};
void k8s_watch_parser_init(struct k8s_watch_parser *p, k8s_watch_fn fn, void *userdata,
                           struct k8s_error *err);
/* 0 to go on, the callback's non-zero value once it stops, or -errno
 * (-EPROTO for a malformed event, -EMSGSIZE past K8S_EVENT_MAX). */
int k8s_watch_parser_feed(struct k8s_watch_parser *p, const void *data, size_t len);
/* -EPROTO if a partial event is left over at end of stream. */
int k8s_watch_parser_finish(struct k8s_watch_parser *p);
void k8s_watch_parser_free(struct k8s_watch_parser *p);

/* Turn an API Status (or a non-Status body: status may be NULL) for the
 * request `method path` into err, with the advice that fits. Returns the
 * errno for the HTTP code. server/user/context feed the 401 advice and
 * may be NULL. Pure; exposed for tests. */
int k8s_status_error(const char *method, const char *path, long http, const json_t *status,
                     const struct kubeconfig *kc, struct k8s_error *err);

/* A DNS-1123 subdomain (object names) / label (namespaces). */
bool k8s_name_valid(const char *s);
bool k8s_label_valid(const char *s);
