/* API Status -> one-line error that says what to do (k8s-wire.md §2.7, §4).
 * The verb/resource/namespace come from the request itself, by the
 * apiserver's own request-info rules, so the advice names the exact RBAC
 * rule that is missing. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "k8s/rest.h"

struct reqinfo {
	char group[64], resource[64], sub[64], ns[64], name[254];
	const char *verb;
};

static void seg_copy(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* /api/v1[/namespaces/NS]/RES[/NAME[/SUB]] and /apis/G/V/... */
static void parse_reqinfo(const char *method, const char *path, struct reqinfo *ri)
{
	*ri = (struct reqinfo){0};
	const char *segs[8];
	size_t lens[8], n = 0;
	size_t plen = strcspn(path, "?");
	bool watch = strstr(path + plen, "watch=1") || strstr(path + plen, "watch=true");
	for (const char *p = path; p < path + plen && n < ARRAY_SIZE(segs);) {
		while (*p == '/')
			p++;
		size_t l = strcspn(p, "/?");
		if (l == 0)
			break;
		segs[n] = p;
		lens[n++] = l;
		p += l;
	}
	size_t i = 0;
	if (n >= 2 && lens[0] == 3 && !strncmp(segs[0], "api", 3)) {
		i = 2;
	} else if (n >= 3 && lens[0] == 4 && !strncmp(segs[0], "apis", 4)) {
		seg_copy(ri->group, sizeof(ri->group), segs[1], lens[1]);
		i = 3;
	}
	if (i + 1 < n && lens[i] == 10 && !strncmp(segs[i], "namespaces", 10)) {
		seg_copy(ri->ns, sizeof(ri->ns), segs[i + 1], lens[i + 1]);
		if (i + 2 == n) { /* the namespace object itself */
			seg_copy(ri->resource, sizeof(ri->resource), "namespaces", 10);
			seg_copy(ri->name, sizeof(ri->name), segs[i + 1], lens[i + 1]);
			ri->ns[0] = '\0';
			i = n;
		} else {
			i += 2;
		}
	}
	if (i < n)
		seg_copy(ri->resource, sizeof(ri->resource), segs[i], lens[i]);
	if (i + 1 < n)
		seg_copy(ri->name, sizeof(ri->name), segs[i + 1], lens[i + 1]);
	if (i + 2 < n)
		seg_copy(ri->sub, sizeof(ri->sub), segs[i + 2], lens[i + 2]);
	bool one = ri->name[0] != '\0';
	if (!strcmp(method, "GET"))
		ri->verb = watch ? "watch" : one ? "get" : "list";
	else if (!strcmp(method, "POST"))
		ri->verb = "create";
	else if (!strcmp(method, "DELETE"))
		ri->verb = one ? "delete" : "deletecollection";
	else if (!strcmp(method, "PATCH"))
		ri->verb = "patch";
	else if (!strcmp(method, "PUT"))
		ri->verb = "update";
	else
		ri->verb = method;
}

/* Status messages are server-controlled: keep them to one printable line
 * of bounded length before they reach a terminal. */
static void sanitize(char *dst, size_t cap, const char *s)
{
	size_t j = 0;
	for (; s && *s && j + 1 < cap; s++)
		dst[j++] = (*s == '\n' || *s == '\r' || *s == '\t')   ? ' '
		           : ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?'
		                                                      : *s;
	dst[j] = '\0';
}

int k8s_status_error(const char *method, const char *path, long http, const json_t *status,
                     const struct kubeconfig *kc, struct k8s_error *err)
{
	struct reqinfo ri;
	parse_reqinfo(method, path, &ri);
	int r = k8s_errno_from_http(http);
	const char *reason = json_string_value(json_object_get(status, "reason"));
	char msg[1024];
	sanitize(msg, sizeof(msg), json_string_value(json_object_get(status, "message")));
	json_int_t code = json_integer_value(json_object_get(status, "code"));
	if (code >= 400 && code < 600 && !http)
		http = (long)code;
	char res[160];
	snprintf(res, sizeof(res), "%s%s%s", ri.resource, ri.sub[0] ? "/" : "", ri.sub);
	char where[96];
	if (ri.ns[0])
		snprintf(where, sizeof(where), "in namespace %s", ri.ns);
	else
		snprintf(where, sizeof(where), "at cluster scope");
	if (!status || !reason)
		reason = NULL;

	switch (http) {
	case 401:
		return k8s_errorf(
		        err, r, (int)http, reason,
		        "the API server%s%s rejected the credentials of user \"%s\" "
		        "(401 Unauthorized); log in again or fix the user in the kubeconfig",
		        kc && kc->server ? " at " : "", kc && kc->server ? kc->server : "",
		        kc && kc->user_name ? kc->user_name : "(in-cluster)");
	case 403:
		if (strstr(msg, "violates PodSecurity"))
			return k8s_errorf(
			        err, r, (int)http, reason,
			        "%s; the agent needs a namespace whose Pod Security level "
			        "is privileged (label pod-security.kubernetes.io/"
			        "enforce=privileged) or the ephemeral-container mode",
			        msg);
		return k8s_errorf(err, r, (int)http, reason,
		                  "cannot %s %s %s: forbidden (RBAC); the %s needs %s%s%s %s, see "
		                  "deploy/rbac.yaml",
		                  ri.verb, res, where, ri.ns[0] ? "role" : "ClusterRole", ri.group,
		                  ri.group[0] ? "/" : "", res, ri.verb);
	case 404: {
		const char *kind = json_string_value(
		        json_object_get(json_object_get(status, "details"), "kind"));
		if (kind && !strcmp(kind, "namespaces"))
			return k8s_errorf(err, r, (int)http, reason,
			                  "%s; check the namespace (-n / target.namespace)",
			                  msg[0] ? msg : "namespace not found");
		if (msg[0])
			return k8s_errorf(err, r, (int)http, reason,
			                  "%s %s; check the name and the namespace", msg, where);
		return k8s_errorf(
		        err, r, (int)http, reason,
		        "%s %s not found (404 from %s %s); the API server may not serve it", res,
		        where, method, path);
	}
	case 409:
		return k8s_errorf(err, r, (int)http, reason,
		                  "%s; another object is in the way (retry, or delete it)", msg);
	case 410:
		return k8s_errorf(err, r, (int)http, reason,
		                  "%s; the list is stale, list again and restart the watch", msg);
	case 400:
	case 415:
	case 422:
		return k8s_errorf(err, r, (int)http, reason,
		                  "the API server rejected %s %s %s (%ld %s): %s; this is a "
		                  "mirrord-trace bug or an unsupported API server version",
		                  ri.verb, res, where, http, reason ? reason : "", msg);
	case 429:
		return k8s_errorf(err, r, (int)http, reason,
		                  "%s (429 TooManyRequests); the API server is throttling, retry "
		                  "later",
		                  msg);
	default:
		break;
	}
	if (http >= 500)
		return k8s_errorf(
		        err, r, (int)http, reason,
		        "API server error on %s %s %s (%ld%s%s)%s%s; retry, and check the "
		        "API server's health",
		        ri.verb, res, where, http, reason ? " " : "", reason ? reason : "",
		        msg[0] ? ": " : "", msg);
	return k8s_errorf(err, r, (int)http, reason,
	                  "unexpected HTTP %ld from the API server on %s %s%s%s", http, method,
	                  path, msg[0] ? ": " : "", msg);
}

static bool dns_label(const char *s, size_t n)
{
	if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

bool k8s_label_valid(const char *s)
{
	return s && dns_label(s, strlen(s));
}

bool k8s_name_valid(const char *s)
{
	if (!s || !*s || strlen(s) > 253)
		return false;
	for (const char *p = s;;) {
		size_t n = strcspn(p, ".");
		if (!dns_label(p, n))
			return false;
		if (!p[n])
			return true;
		p += n + 1;
	}
}
