/* Helpers shared inside k8s/ only. Same conventions as the public headers:
 * -errno returns, -ENOMEM propagated, nothing logs. */
#pragma once

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* Into out, which has room for (len + 2) / 3 * 4 + 1 bytes. */
void k8s_base64_encode_to(const void *in, size_t len, char *out);

#define K8S_SHA1_LEN 20
void k8s_sha1(const void *data, size_t len, uint8_t out[K8S_SHA1_LEN]);

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

/* libcurl, through a table filled by k8s_libcurl_load() (dlopen) on the
 * first k8s_client_new(): linking it would make every run, Kubernetes or
 * not, pay for loading it and the 30 libraries it needs (common/dl.h).
 * The fields are curl's functions without the curl_ prefix. */
struct k8s_libcurl {
	__typeof__(curl_global_init) *global_init;
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_perform) *easy_perform;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_reset) *easy_reset;
	__typeof__(curl_easy_recv) *easy_recv;
	__typeof__(curl_easy_send) *easy_send;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_easy_escape) *easy_escape;
	__typeof__(curl_free) *free;
	__typeof__(curl_slist_append) *slist_append;
	__typeof__(curl_slist_free_all) *slist_free_all;
	__typeof__(curl_url) *url;
	__typeof__(curl_url_cleanup) *url_cleanup;
	__typeof__(curl_url_get) *url_get;
	__typeof__(curl_url_set) *url_set;
};
extern struct k8s_libcurl libcurl;
int k8s_libcurl_load(struct k8s_error *err);

/* A libcurl failure as -errno: -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH
 * (name resolution), -EPROTO (TLS), -ENOMEM, else -EIO. */
int k8s_curl_errno(CURLcode cc);
int k8s_curl_transport(const struct kubeconfig *kc, CURL *h, struct curl_slist *connect_to,
                       bool tunnel_proxy);

/* jansson's own cleanup helper (json_auto_t's). */
#define _cleanup_json_ _cleanup_(json_decrefp)
