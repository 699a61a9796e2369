/* Helpers shared inside k8s/ only. Same conventions as the public headers:
 * -errno returns, -ENOMEM propagated, nothing logs. */
#pragma once

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "k8s/error.h"

/* Largest kubeconfig file read, and largest referenced file (CA, cert, key,
 * token): real ones are a few KiB; this only stops a runaway read. */
#define K8S_KUBECONFIG_MAX (4u << 20)
#define K8S_AUX_FILE_MAX (1u << 20)

/* Read a whole regular file (O_CLOEXEC) of at most max bytes into a
 * NUL-terminated malloc'd buffer. -EFBIG past max. */
int k8s_read_file(const char *path, size_t max, char **ret, size_t *ret_len);

/* Parse the first YAML document in buf into JSON. Plain scalars
 * true/false become booleans, null/~/empty become null, everything else a
 * string (kubeconfig has no numbers we read). Nesting depth and node count
 * are bounded. -EINVAL with *err set on a syntax error. */
int k8s_yaml_to_json(const char *buf, size_t len, const char *name, json_t **ret,
                     struct k8s_error *err);

/* Base64 (standard alphabet, padding, whitespace ignored) decode. -EINVAL on
 * bad input. The result is NUL-terminated for convenience. */
int k8s_base64_decode(const char *in, char **ret, size_t *ret_len);
int k8s_base64_encode(const void *in, size_t len, char **ret);

/* "2099-01-01T00:00:00Z" (RFC 3339, any offset, optional fraction) to a
 * time_t. -EINVAL if malformed. */
int k8s_parse_time(const char *s, long long *ret);

/* The transport options every connection to the API server needs, from
 * the kubeconfig (k8s-wire.md §1.4): CA or insecure, proxy (socks5 as
 * socks5h, as Go dials; tunnel_proxy forces CONNECT through an HTTP proxy
 * for upgraded connections), client certificate (also from an exec
 * plugin), and connect_to for tls-server-name. Auth headers are the
 * caller's. Returns 0 or -ENOMEM. */
struct kubeconfig;

/* A libcurl failure as -errno: -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH
 * (name resolution), -EPROTO (TLS), -ENOMEM, else -EIO. */
int k8s_curl_errno(CURLcode cc);
int k8s_curl_transport(const struct kubeconfig *kc, CURL *h, struct curl_slist *connect_to,
                       bool tunnel_proxy);

/* jansson's own cleanup helper (json_auto_t's). */
#define _cleanup_json_ _cleanup_(json_decrefp)
