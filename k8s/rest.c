/* The REST client (rest.h): one curl easy handle per client, reused so
 * that requests share a TLS connection; auth from the kubeconfig. */
#include "k8s/rest.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "k8s/internal.h"

struct k8s_client {
	struct kubeconfig *kc;
	CURL *curl;
	char *url_base;                /* server URL, host replaced by tls-server-name if set */
	struct curl_slist *connect_to; /* "tsn:port:host:port" for tls-server-name */
	unsigned request_ms, connect_ms;
	k8s_cancel_fn cancelled; /* or NULL */
	void *cancel_data;
	char errbuf[CURL_ERROR_SIZE];
};

struct body {
	char *buf;
	size_t len, cap, max;
	bool too_big;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body *b = ud;
	size_t n = size * nmemb;
	if (b->len + n + 1 > b->max) {
		b->too_big = true;
		return 0; /* aborts the transfer */
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *nb = realloc(b->buf, cap);
		if (!nb)
			return 0;
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, ptr, n);
	b->len += n;
	b->buf[b->len] = '\0';
	return n;
}

/* tls-server-name: Go sets tls.Config.ServerName, which is both SNI and the
 * name verified. libcurl 7.88 has no option for it, so the URL names the
 * tls-server-name and CONNECT_TO sends the connection to the real host
 * (k8s-wire.md §1.4). */
static int setup_server(struct k8s_client *c, struct k8s_error *err)
{
	const struct kubeconfig *kc = c->kc;
	CURLU *u = libcurl.url();
	if (!u)
		return -ENOMEM;
	int r = 0;
	char *host = NULL, *port = NULL, *url = NULL, *ct = NULL;
	if (libcurl.url_set(u, CURLUPART_URL, kc->server, 0) != CURLUE_OK) {
		r = k8s_errorf(err, -EINVAL, 0, NULL, "invalid server URL \"%s\" in cluster \"%s\"",
		               kc->server, kc->cluster_name ? kc->cluster_name : "(in-cluster)");
		goto out;
	}
	/* client-go keeps a path prefix but drops query and fragment. */
	libcurl.url_set(u, CURLUPART_QUERY, NULL, 0);
	libcurl.url_set(u, CURLUPART_FRAGMENT, NULL, 0);
	if (kc->tls_server_name) {
		if (libcurl.url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
		    libcurl.url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
		    asprintf(&ct, "%s:%s:%s:%s", kc->tls_server_name, port, host, port) < 0 ||
		    !(c->connect_to = libcurl.slist_append(NULL, ct)) ||
		    libcurl.url_set(u, CURLUPART_HOST, kc->tls_server_name, 0) != CURLUE_OK) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (libcurl.url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
		r = -ENOMEM;
		goto out;
	}
	/* Paths are appended to the base: drop its trailing slash. */
	size_t n = strlen(url);
	while (n && url[n - 1] == '/')
		url[--n] = '\0';
	c->url_base = strdup(url);
	if (!c->url_base)
		r = -ENOMEM;
out:
	free(ct);
	libcurl.free(host);
	libcurl.free(port);
	libcurl.free(url);
	libcurl.url_cleanup(u);
	return r;
}

int k8s_client_new(struct kubeconfig *kc, struct k8s_client **ret, struct k8s_error *err)
{
	int r = k8s_libcurl_load(err);
	if (r < 0) {
		kubeconfig_free(kc);
		return r;
	}
	struct k8s_client *c = calloc(1, sizeof(*c));
	if (!c) {
		kubeconfig_free(kc);
		return -ENOMEM;
	}
	c->kc = kc;
	c->request_ms = 30000;
	c->connect_ms = 10000;
	c->curl = libcurl.easy_init();
	if (!c->curl) {
		k8s_client_free(c);
		return -ENOMEM;
	}
	r = setup_server(c, err);
	if (r < 0) {
		k8s_client_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void k8s_client_free(struct k8s_client *c)
{
	if (!c)
		return;
	if (c->curl)
		libcurl.easy_cleanup(c->curl);
	kubeconfig_free(c->kc);
	free(c->url_base);
	libcurl.slist_free_all(c->connect_to);
	free(c);
}

struct kubeconfig *k8s_client_config(struct k8s_client *c)
{
	return c->kc;
}

void k8s_client_set_timeouts(struct k8s_client *c, unsigned request_ms, unsigned connect_ms)
{
	c->request_ms = request_ms;
	c->connect_ms = connect_ms;
}

int k8s_curl_errno(CURLcode cc)
{
	/* CURLcode has ~100 values; an if-chain avoids -Wswitch-enum noise. */
	if (cc == CURLE_OUT_OF_MEMORY)
		return -ENOMEM;
	if (cc == CURLE_COULDNT_CONNECT)
		return -ECONNREFUSED;
	if (cc == CURLE_OPERATION_TIMEDOUT)
		return -ETIMEDOUT;
	if (cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_RESOLVE_PROXY)
		return -EHOSTUNREACH;
	if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CONNECT_ERROR ||
	    cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_CACERT_BADFILE)
		return -EPROTO;
	return -EIO;
}

static int transport_error(struct k8s_client *c, CURLcode cc, struct k8s_error *err)
{
	if (cc == CURLE_ABORTED_BY_CALLBACK)
		return k8s_errorf(err, -EINTR, 0, NULL, "interrupted");
	const char *detail = c->errbuf[0] ? c->errbuf : libcurl.easy_strerror(cc);
	const char *advice = "check the kubeconfig's server address and your network";
	if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CONNECT_ERROR ||
	    cc == CURLE_SSL_CACERT_BADFILE)
		advice = "check the cluster's certificate-authority and tls-server-name";
	else if (cc == CURLE_SSL_CERTPROBLEM)
		advice = "check the user's client-certificate and client-key";
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		advice = "the API server did not answer in time; retry, or check your network";
	return k8s_errorf(err, k8s_curl_errno(cc), 0, NULL,
	                  "cannot reach the API server at %s: %s; %s", c->kc->server, detail,
	                  advice);
}

void k8s_client_set_cancel(struct k8s_client *c, k8s_cancel_fn fn, void *data)
{
	c->cancelled = fn;
	c->cancel_data = data;
}

/* libcurl calls this about once a second even while nothing arrives, so
 * a cancelled wait ends within a second. */
static int xferinfo(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                    curl_off_t ulnow)
{
	struct k8s_client *c = data;
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return c->cancelled && c->cancelled(c->cancel_data);
}

/* Options common to every request: TLS, proxy, auth. */
int k8s_curl_transport(const struct kubeconfig *kc, CURL *h, struct curl_slist *connect_to,
                       bool tunnel_proxy)
{
	if (connect_to)
		libcurl.easy_setopt(h, CURLOPT_CONNECT_TO, connect_to);
	if (kc->insecure) {
		libcurl.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		libcurl.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (kc->ca_pem) {
		struct curl_blob b = {kc->ca_pem, kc->ca_len, CURL_BLOB_COPY};
		libcurl.easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
	}
	if (kc->proxy_url) {
		/* Go's SOCKS5 dialer sends host names to the proxy: socks5h. */
		_cleanup_free_ char *p = NULL;
		if (!strncmp(kc->proxy_url, "socks5://", 9) &&
		    asprintf(&p, "socks5h://%s", kc->proxy_url + 9) < 0)
			return -ENOMEM;
		libcurl.easy_setopt(h, CURLOPT_PROXY, p ? p : kc->proxy_url);
		if (tunnel_proxy)
			libcurl.easy_setopt(h, CURLOPT_HTTPPROXYTUNNEL, 1L);
	}
	/* client-go attaches credentials only over https. */
	if (strncmp(kc->server, "https://", 8) != 0)
		return 0;
	const char *cert = kc->cert_pem, *key = kc->key_pem;
	size_t cert_len = kc->cert_len, key_len = kc->key_len;
	if (kc->exec && kc->exec->cert_pem) {
		cert = kc->exec->cert_pem;
		key = kc->exec->key_pem;
		cert_len = strlen(cert);
		key_len = key ? strlen(key) : 0;
	}
	if (cert && key) {
		struct curl_blob cb = {(void *)cert, cert_len, CURL_BLOB_COPY};
		struct curl_blob kb = {(void *)key, key_len, CURL_BLOB_COPY};
		libcurl.easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
		libcurl.easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
		libcurl.easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
		libcurl.easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	}
	return 0;
}

static int setup_request(struct k8s_client *c, const char *token, bool cleanup,
                         struct curl_slist **hdrs)
{
	struct kubeconfig *kc = c->kc;
	CURL *h = c->curl;
	libcurl.easy_reset(h);
	c->errbuf[0] = '\0';
	libcurl.easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
	libcurl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	libcurl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_ms);
	/* Only HTTP(S) to the API server; never follow redirects elsewhere. */
	libcurl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
	libcurl.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	libcurl.easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	libcurl.easy_setopt(h, CURLOPT_USERAGENT, "mirrord-trace/" MT_VERSION);
	if (c->cancelled && !cleanup) {
		libcurl.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo);
		libcurl.easy_setopt(h, CURLOPT_XFERINFODATA, c);
		libcurl.easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	int r = k8s_curl_transport(kc, h, c->connect_to, false);
	if (r < 0)
		return r;
	/* client-go attaches credentials only over https. */
	if (strncmp(kc->server, "https://", 8) != 0)
		return 0;
	if (token) {
		_cleanup_free_ char *a = NULL;
		if (asprintf(&a, "Authorization: Bearer %s", token) < 0)
			return -ENOMEM;
		struct curl_slist *n = libcurl.slist_append(*hdrs, a);
		if (!n)
			return -ENOMEM;
		*hdrs = n;
	} else if (kc->username) {
		libcurl.easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		libcurl.easy_setopt(h, CURLOPT_USERNAME, kc->username);
		libcurl.easy_setopt(h, CURLOPT_PASSWORD, kc->password ? kc->password : "");
	}
	if (kc->impersonate_user) {
		_cleanup_free_ char *a = NULL;
		if (asprintf(&a, "Impersonate-User: %s", kc->impersonate_user) < 0)
			return -ENOMEM;
		struct curl_slist *n = libcurl.slist_append(*hdrs, a);
		if (!n)
			return -ENOMEM;
		*hdrs = n;
	}
	return 0;
}

struct sink {
	CURL *h;
	curl_write_callback fn;
	void *ud;
	struct body *eb;
};

static size_t sink_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	long http = 0;
	libcurl.easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &http);
	if (http >= 200 && http < 300)
		return s->fn(ptr, size, nmemb, s->ud);
	return body_write(ptr, size, nmemb, s->eb);
}

/* One HTTP exchange. The response body goes to (write_fn, write_ud); a
 * non-2xx body is collected separately for the Status. An exec plugin's
 * credential is refreshed and the request retried once on 401, as
 * client-go's maybeRefreshCreds does. */
static int perform(struct k8s_client *c, const char *method, const char *path,
                   const char *content_type, const char *body, curl_write_callback write_fn,
                   void *write_ud, unsigned timeout_ms, long *ret_http, struct body *errbody,
                   struct k8s_error *err)
{
	_cleanup_free_ char *url = NULL;
	if (asprintf(&url, "%s%s", c->url_base, path) < 0)
		return -ENOMEM;
	for (int attempt = 0;; attempt++) {
		const char *token = NULL;
		int r = kubeconfig_credentials(c->kc, attempt > 0, &token, err);
		if (r < 0)
			return r;
		struct curl_slist *hdrs = libcurl.slist_append(NULL, "Accept: application/json");
		if (!hdrs)
			return -ENOMEM;
		_cleanup_free_ char *ct = NULL;
		if (body) {
			if (asprintf(&ct, "Content-Type: %s",
			             content_type ? content_type : "application/json") < 0 ||
			    !libcurl.slist_append(hdrs, ct)) {
				libcurl.slist_free_all(hdrs);
				return -ENOMEM;
			}
		}
		/* A DELETE is how we clean up: it is never cancelled. */
		r = setup_request(c, token, !strcmp(method, "DELETE"), &hdrs);
		if (r < 0) {
			libcurl.slist_free_all(hdrs);
			return r;
		}
		CURL *h = c->curl;
		libcurl.easy_setopt(h, CURLOPT_URL, url);
		libcurl.easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		if (!strcmp(method, "GET"))
			libcurl.easy_setopt(h, CURLOPT_HTTPGET, 1L);
		if (body) {
			libcurl.easy_setopt(h, CURLOPT_POSTFIELDS, body);
			libcurl.easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		}
		libcurl.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		libcurl.easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);

		/* The header callback cannot tell us the status before the body
		 * starts, so the body sink decides per call: 2xx goes to the
		 * caller, anything else to errbody (bounded). */
		struct sink s = {h, write_fn, write_ud, errbody};
		libcurl.easy_setopt(h, CURLOPT_WRITEFUNCTION, (curl_write_callback)sink_write);
		libcurl.easy_setopt(h, CURLOPT_WRITEDATA, &s);
		errbody->len = 0;
		CURLcode cc = libcurl.easy_perform(h);
		libcurl.slist_free_all(hdrs);
		long http = 0;
		libcurl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
		*ret_http = http;
		if (cc == CURLE_WRITE_ERROR && http >= 200 && http < 300)
			return -ECANCELED; /* the caller's sink stopped it; it knows why */
		if (cc != CURLE_OK && !(http >= 300 && cc == CURLE_WRITE_ERROR))
			return transport_error(c, cc, err);
		if (http == 401 && c->kc->exec && attempt == 0)
			continue;
		return 0;
	}
}

static int status_from_body(struct k8s_client *c, const char *method, const char *path, long http,
                            const struct body *eb, struct k8s_error *err)
{
	_cleanup_json_ json_t *st = NULL;
	if (eb->len)
		st = json_loadb(eb->buf, eb->len, 0, NULL);
	if (st && !json_is_object(st)) {
		json_decref(st);
		st = NULL;
	}
	return k8s_status_error(method, path, http, st, c->kc, err);
}

int k8s_request(struct k8s_client *c, const char *method, const char *path,
                const char *content_type, const json_t *body, json_t **ret, struct k8s_error *err)
{
	_cleanup_free_ char *payload = NULL;
	if (body && !(payload = json_dumps(body, JSON_COMPACT)))
		return -ENOMEM;
	struct body out = {.max = K8S_BODY_MAX}, eb = {.max = 64 * 1024};
	long http = 0;
	int r = perform(c, method, path, content_type, payload, body_write, &out, c->request_ms,
	                &http, &eb, err);
	if (r == -ECANCELED && out.too_big)
		r = k8s_errorf(err, -EMSGSIZE, (int)http, NULL,
		               "the API server's answer to %s %s is larger than %u MiB", method,
		               path, K8S_BODY_MAX >> 20);
	if (r >= 0 && (http < 200 || http >= 300))
		r = status_from_body(c, method, path, http, &eb, err);
	if (r >= 0 && ret) {
		json_error_t je;
		json_t *j = out.len ? json_loadb(out.buf, out.len, 0, &je) : json_null();
		if (!j)
			r = k8s_errorf(err, -EPROTO, (int)http, NULL,
			               "the API server's answer to %s %s is not JSON: %s", method,
			               path, je.text);
		else
			*ret = j;
	}
	free(out.buf);
	free(eb.buf);
	return r;
}

int k8s_get(struct k8s_client *c, const char *path, json_t **ret, struct k8s_error *err)
{
	return k8s_request(c, "GET", path, NULL, NULL, ret, err);
}

int k8s_create(struct k8s_client *c, const char *path, const json_t *body, json_t **ret,
               struct k8s_error *err)
{
	return k8s_request(c, "POST", path, NULL, body, ret, err);
}

int k8s_delete(struct k8s_client *c, const char *path, json_t **ret, struct k8s_error *err)
{
	/* Jobs orphan their pods by default; Background removes them too. */
	_cleanup_json_ json_t *opts =
	        json_pack("{s:s,s:s,s:s}", "kind", "DeleteOptions", "apiVersion", "v1",
	                  "propagationPolicy", "Background");
	if (!opts)
		return -ENOMEM;
	return k8s_request(c, "DELETE", path, NULL, opts, ret, err);
}

int k8s_patch(struct k8s_client *c, const char *path, enum k8s_patch_type type, const json_t *body,
              json_t **ret, struct k8s_error *err)
{
	const char *ct = type == K8S_PATCH_STRATEGIC ? "application/strategic-merge-patch+json"
	                 : type == K8S_PATCH_JSON    ? "application/json-patch+json"
	                                             : "application/merge-patch+json";
	return k8s_request(c, "PATCH", path, ct, body, ret, err);
}

/* Append "&k=<escaped v>" (or "?k=..." first) to *q. */
static int add_query(CURL *h, char **q, const char *k, const char *v)
{
	if (!v)
		return 0;
	char *e = libcurl.easy_escape(h, v, 0);
	if (!e)
		return -ENOMEM;
	char *n = NULL;
	int k_ = asprintf(&n, "%s%s%s=%s", *q, strchr(*q, '?') ? "&" : "?", k, e);
	libcurl.free(e);
	if (k_ < 0)
		return -ENOMEM;
	free(*q);
	*q = n;
	return 0;
}

int k8s_list(struct k8s_client *c, const char *path, const char *label_selector,
             const char *field_selector, json_t **ret_items, struct k8s_error *err)
{
	_cleanup_json_ json_t *items = json_array();
	_cleanup_free_ char *cont = NULL;
	if (!items)
		return -ENOMEM;
	for (int page = 0;; page++) {
		if (page == K8S_LIST_PAGES_MAX)
			return k8s_errorf(err, -E2BIG, 0, NULL,
			                  "listing %s took more than %d pages; narrow the selector",
			                  path, K8S_LIST_PAGES_MAX);
		_cleanup_free_ char *q = strdup(path);
		if (!q || add_query(c->curl, &q, "labelSelector", label_selector) < 0 ||
		    add_query(c->curl, &q, "fieldSelector", field_selector) < 0 ||
		    add_query(c->curl, &q, "limit", "500") < 0 ||
		    add_query(c->curl, &q, "continue", cont) < 0)
			return -ENOMEM;
		_cleanup_json_ json_t *list = NULL;
		int r = k8s_get(c, q, &list, err);
		if (r < 0)
			return r;
		json_t *pi = json_object_get(list, "items");
		if (!json_is_array(pi) && !json_is_null(pi) && pi)
			return k8s_errorf(err, -EPROTO, 0, NULL, "LIST %s: items is not a list",
			                  path);
		if (json_array_extend(items, pi ? pi : json_null()) < 0 && json_is_array(pi))
			return -ENOMEM;
		const char *next = json_string_value(
		        json_object_get(json_object_get(list, "metadata"), "continue"));
		free(cont);
		cont = next && *next ? strdup(next) : NULL;
		if (next && *next && !cont)
			return -ENOMEM;
		if (!cont)
			break;
	}
	*ret_items = TAKE_PTR(items);
	return 0;
}

static size_t watch_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct k8s_watch_parser *p = ud;
	size_t n = size * nmemb;
	return k8s_watch_parser_feed(p, ptr, n) == 0 ? n : 0;
}

int k8s_watch(struct k8s_client *c, const char *path, const struct k8s_watch_opts *o,
              k8s_watch_fn fn, void *userdata, struct k8s_error *err)
{
	/* A watch ends by the server's timeoutSeconds; ours is a backstop. */
	unsigned ts = o->timeout_s ? o->timeout_s : 300;
	if (ts > 3600)
		ts = 3600;
	char tsbuf[16];
	snprintf(tsbuf, sizeof(tsbuf), "%u", ts);
	_cleanup_free_ char *q = strdup(path);
	if (!q || add_query(c->curl, &q, "watch", "1") < 0 ||
	    add_query(c->curl, &q, "labelSelector", o->label_selector) < 0 ||
	    add_query(c->curl, &q, "fieldSelector", o->field_selector) < 0 ||
	    add_query(c->curl, &q, "resourceVersion", o->resource_version) < 0 ||
	    add_query(c->curl, &q, "allowWatchBookmarks", o->bookmarks ? "true" : NULL) < 0 ||
	    add_query(c->curl, &q, "timeoutSeconds", tsbuf) < 0)
		return -ENOMEM;
	struct k8s_watch_parser p;
	k8s_watch_parser_init(&p, fn, userdata, err);
	struct body eb = {.max = 64 * 1024};
	long http = 0;
	int r = perform(c, "GET", q, NULL, NULL, watch_write, &p, (ts + 5) * 1000u, &http, &eb,
	                err);
	if (r == -ECANCELED)
		r = p.stopped; /* the callback's own result, or the parser's error */
	else if (r == -ETIMEDOUT && http >= 200 && http < 300)
		r = 0; /* our backstop fired: same as the server closing */
	else if (r >= 0 && (http < 200 || http >= 300))
		r = status_from_body(c, "GET", q, http, &eb, err);
	else if (r >= 0)
		r = k8s_watch_parser_finish(&p);
	k8s_watch_parser_free(&p);
	free(eb.buf);
	return r;
}

int k8s_stream(struct k8s_client *c, const char *path, unsigned timeout_ms, k8s_stream_fn fn,
               void *userdata, struct k8s_error *err)
{
	struct body eb = {.max = 64 * 1024};
	long http = 0;
	int r = perform(c, "GET", path, NULL, NULL, fn, userdata, timeout_ms, &http, &eb, err);
	if (r >= 0 && (http < 200 || http >= 300))
		r = status_from_body(c, "GET", path, http, &eb, err);
	free(eb.buf);
	return r;
}
