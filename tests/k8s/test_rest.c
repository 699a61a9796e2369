/* Pure parts of the client: watch-stream parsing at every split, Status ->
 * advice, label selectors, pod eligibility and container choice. */
#include <stdio.h>
#include <string.h>

#include "k8s/resolve.h"
#include "k8s/rest.h"
#include "tests/unit/test.h"

struct seen {
	char log[4096];
	int n, stop_at;
};

static int on_ev(void *ud, const char *type, json_t *obj)
{
	struct seen *s = ud;
	const char *name =
	        json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	size_t l = strlen(s->log);
	snprintf(s->log + l, sizeof(s->log) - l, "%s:%s;", type, name ? name : "-");
	return ++s->n == s->stop_at ? 7 : 0;
}

static const char stream[] =
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"p\\u00e9 {\\\"x\"}}}\n"
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\"},\"s\":[1,2,{}]}}\n"
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}\n"
        "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"c\"}}}\n";
static const char want_log[] = "ADDED:p\xc3\xa9 {\"x;MODIFIED:b;BOOKMARK:-;DELETED:c;";

TEST(watch_every_two_way_split)
{
	size_t n = strlen(stream);
	for (size_t cut = 0; cut <= n; cut++) {
		struct seen s = {0};
		struct k8s_error err = {0};
		struct k8s_watch_parser p;
		k8s_watch_parser_init(&p, on_ev, &s, &err);
		CHECK_EQ(k8s_watch_parser_feed(&p, stream, cut), 0);
		CHECK_EQ(k8s_watch_parser_feed(&p, stream + cut, n - cut), 0);
		CHECK_EQ(k8s_watch_parser_finish(&p), 0);
		CHECK_STR(s.log, want_log);
		k8s_watch_parser_free(&p);
	}
}

TEST(watch_byte_by_byte_and_chunks)
{
	size_t n = strlen(stream);
	for (size_t chunk = 1; chunk < 40; chunk++) {
		struct seen s = {0};
		struct k8s_watch_parser p;
		k8s_watch_parser_init(&p, on_ev, &s, NULL);
		for (size_t off = 0; off < n; off += chunk)
			CHECK_EQ(k8s_watch_parser_feed(&p, stream + off,
			                               off + chunk > n ? n - off : chunk),
			         0);
		CHECK_EQ(k8s_watch_parser_finish(&p), 0);
		CHECK_STR(s.log, want_log);
		k8s_watch_parser_free(&p);
	}
}

TEST(watch_stop_error_and_garbage)
{
	struct seen s = {.stop_at = 2};
	struct k8s_error err = {0};
	struct k8s_watch_parser p;
	k8s_watch_parser_init(&p, on_ev, &s, &err);
	CHECK_EQ(k8s_watch_parser_feed(&p, stream, strlen(stream)), 7);
	CHECK_STR(s.log, "ADDED:p\xc3\xa9 {\"x;MODIFIED:b;");
	k8s_watch_parser_free(&p);

	const char *expired = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"status\":"
	                      "\"Failure\",\"message\":\"too old resource version: 1 (5)\","
	                      "\"reason\":\"Expired\",\"code\":410}}\n";
	k8s_watch_parser_init(&p, on_ev, &s, &err);
	CHECK_EQ(k8s_watch_parser_feed(&p, expired, strlen(expired)), -ESTALE);
	CHECK_STR(err.message, "too old resource version: 1 (5); the list is stale, list again "
	                       "and restart the watch");
	CHECK_EQ(err.code, 410);
	k8s_watch_parser_free(&p);

	k8s_watch_parser_init(&p, on_ev, &s, &err);
	CHECK_EQ(k8s_watch_parser_feed(&p, "{\"type\":}", 9), -EPROTO);
	k8s_watch_parser_free(&p);
	k8s_watch_parser_init(&p, on_ev, &s, &err);
	CHECK_EQ(k8s_watch_parser_feed(&p, "{\"type\":\"ADDED\"", 15), 0);
	CHECK_EQ(k8s_watch_parser_finish(&p), -EPROTO);
	k8s_watch_parser_free(&p);
}

static void status_case(const char *method, const char *path, long http, const char *body,
                        int want_r, const char *want)
{
	json_t *st = json_loads(body, 0, NULL);
	struct k8s_error err = {0};
	CHECK_EQ(k8s_status_error(method, path, http, st, NULL, &err), want_r);
	CHECK_STR(err.message, want);
	k8s_error_clear(&err);
	json_decref(st);
}

TEST(status_messages)
{
	status_case("POST", "/apis/batch/v1/namespaces/lolzspace/jobs?fieldValidation=Strict", 403,
	            "{\"kind\":\"Status\",\"reason\":\"Forbidden\",\"code\":403,\"message\":"
	            "\"jobs.batch is forbidden: User \\\"x\\\" cannot create ...\"}",
	            -EPERM,
	            "cannot create jobs in namespace lolzspace: forbidden (RBAC); the role needs "
	            "batch/jobs create, see deploy/rbac.yaml");
	status_case("GET", "/api/v1/namespaces/default/pods?watch=1&labelSelector=a%3Db", 403,
	            "{\"reason\":\"Forbidden\",\"message\":\"m\"}", -EPERM,
	            "cannot watch pods in namespace default: forbidden (RBAC); the role needs pods "
	            "watch, see deploy/rbac.yaml");
	status_case("GET", "/api/v1/namespaces/ns/pods/p/portforward", 403,
	            "{\"reason\":\"Forbidden\",\"message\":\"m\"}", -EPERM,
	            "cannot get pods/portforward in namespace ns: forbidden (RBAC); the role needs "
	            "pods/portforward get, see deploy/rbac.yaml");
	status_case("GET", "/api/v1/nodes/n1", 403, "{\"reason\":\"Forbidden\",\"message\":\"m\"}",
	            -EPERM,
	            "cannot get nodes at cluster scope: forbidden (RBAC); the ClusterRole needs "
	            "nodes get, see deploy/rbac.yaml");
	status_case(
	        "GET", "/apis/apps/v1/namespaces/lolzspace/deployments/nope", 404,
	        "{\"reason\":\"NotFound\",\"message\":\"deployments.apps \\\"nope\\\" not "
	        "found\",\"details\":{\"name\":\"nope\",\"group\":\"apps\",\"kind\":"
	        "\"deployments\"}}",
	        -ENOENT,
	        "deployments.apps \"nope\" not found in namespace lolzspace; check the name and "
	        "the namespace");
	status_case("GET", "/api/v1/namespaces/nons/pods", 404,
	            "{\"reason\":\"NotFound\",\"message\":\"namespaces \\\"nons\\\" not found\","
	            "\"details\":{\"name\":\"nons\",\"kind\":\"namespaces\"}}",
	            -ENOENT,
	            "namespaces \"nons\" not found; check the namespace (-n / target.namespace)");
	status_case("GET", "/api/v1/namespaces/a/pods", 500,
	            "{\"reason\":\"InternalError\",\"message\":\"boom\\nline2\"}", -EIO,
	            "API server error on list pods in namespace a (500 InternalError): boom line2; "
	            "retry, and check the API server's health");
	status_case("GET", "/x", 502, "[1]", -EIO,
	            "API server error on list x at cluster scope (502); retry, and check the API "
	            "server's health");
}

static void sel_case(const char *json, int want_r, const char *want)
{
	json_t *j = json_loads(json, JSON_DECODE_ANY, NULL);
	char *s = NULL;
	CHECK_EQ(k8s_selector_string(j, &s, NULL), want_r);
	if (want)
		CHECK_STR(s, want);
	free(s);
	json_decref(j);
}

TEST(selectors)
{
	sel_case("{\"matchLabels\":{\"b\":\"2\",\"a\":\"1\"}}", 0, "a=1,b=2");
	sel_case("{\"matchLabels\":{\"app\":\"x\"},\"matchExpressions\":[{\"key\":\"tier\","
	         "\"operator\":\"In\",\"values\":[\"web\",\"api\"]},{\"key\":\"b\",\"operator\":"
	         "\"Exists\"},{\"key\":\"z\",\"operator\":\"DoesNotExist\"},{\"key\":\"env\","
	         "\"operator\":\"NotIn\",\"values\":[\"prod\"]}]}",
	         0, "app=x,b,env notin (prod),tier in (api,web),!z");
	sel_case("{}", 0, "");
	sel_case("null", -ENOENT, NULL);
	sel_case("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Gt\"}]}", -EINVAL, NULL);
	sel_case("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[]}]}",
	         -EINVAL, NULL);
}

#define POD_HEAD                                                                               \
	"{\"metadata\":{\"name\":\"x\",\"namespace\":\"lolzspace\"%s},\"spec\":{\"nodeName\":" \
	"\"node-1\",\"containers\":[{\"name\":\"main-container\"},{\"name\":\"sidecar\"}]},"   \
	"\"status\":{\"phase\":\"%s\",\"podIP\":\"10.244.0.5\",\"containerStatuses\":[%s]}}"
#define CS(n, ready) \
	"{\"name\":\"" n "\",\"ready\":" ready ",\"containerID\":\"containerd://" n "id\"}"

static int pod_case(const char *meta, const char *phase, const char *cs, const char *container,
                    struct k8s_resolved *res, struct k8s_error *err)
{
	char buf[2048];
	snprintf(buf, sizeof(buf), POD_HEAD, meta, phase, cs);
	json_t *pod = json_loads(buf, 0, NULL);
	CHECK(pod);
	int r = k8s_pod_eligible(pod, container, res, err);
	json_decref(pod);
	return r;
}

TEST(pod_eligibility)
{
	struct k8s_resolved res = {0};
	struct k8s_error err = {0};
	CHECK_EQ(pod_case("", "Running", CS("main-container", "true") "," CS("sidecar", "true"),
	                  NULL, &res, &err),
	         0);
	CHECK_STR(res.container, "main-container");
	CHECK_STR(res.container_id, "main-containerid");
	CHECK_STR(res.runtime, "containerd");
	CHECK_STR(res.node, "node-1");
	CHECK_STR(res.pod_ip, "10.244.0.5");
	CHECK_STR(res.note, "pod lolzspace/x has containers main-container, sidecar; picked "
	                    "'main-container' (use .../container/<name> to choose)");
	k8s_resolved_free(&res);

	/* istio-proxy first is skipped; only one candidate left: no note */
	CHECK_EQ(pod_case("", "Running", CS("istio-proxy", "true") "," CS("app", "true"), NULL,
	                  &res, &err),
	         0);
	CHECK_STR(res.container, "app");
	CHECK(res.note == NULL);
	k8s_resolved_free(&res);

	/* the default-container annotation wins */
	CHECK_EQ(pod_case(",\"annotations\":{\"kubectl.kubernetes.io/default-container\":"
	                  "\"sidecar\"}",
	                  "Running", CS("main-container", "true") "," CS("sidecar", "true"), NULL,
	                  &res, &err),
	         0);
	CHECK_STR(res.container, "sidecar");
	k8s_resolved_free(&res);

	CHECK_EQ(pod_case("", "Running", CS("main-container", "true"), "foo", &res, &err), -ENOENT);
	CHECK_STR(err.message, "container 'foo' not found in pod lolzspace/x; containers: "
	                       "main-container, sidecar");
	CHECK_EQ(pod_case("", "Pending",
	                  "{\"name\":\"main-container\",\"ready\":false,\"state\":{\"waiting\":"
	                  "{\"reason\":\"ContainerCreating\"}}}",
	                  NULL, &res, &err),
	         -EAGAIN);
	CHECK_STR(err.message, "pod lolzspace/x is Pending (ContainerCreating)");
	CHECK_EQ(pod_case(",\"deletionTimestamp\":\"2024-01-01T00:00:00Z\"", "Running",
	                  CS("main-container", "true"), NULL, &res, &err),
	         -EAGAIN);
	CHECK_STR(err.message, "pod lolzspace/x is terminating");
	CHECK_EQ(pod_case("", "Running",
	                  "{\"name\":\"main-container\",\"ready\":false,\"state\":{\"waiting\":"
	                  "{\"reason\":\"CrashLoopBackOff\"}}}",
	                  "main-container", &res, &err),
	         -EAGAIN);
	CHECK_STR(err.message,
	          "container 'main-container' of pod lolzspace/x is not ready (CrashLoopBackOff)");
	CHECK_EQ(pod_case("", "Running",
	                  "{\"name\":\"m\",\"ready\":true,\"containerID\":\"rkt://1\"}", NULL, &res,
	                  &err),
	         -EPROTO);
	k8s_error_clear(&err);
}

TEST(names)
{
	CHECK(k8s_name_valid("lolz-6d4f9c7b8-abcde"));
	CHECK(k8s_name_valid("a.b"));
	CHECK(!k8s_name_valid("../x"));
	CHECK(!k8s_name_valid("A"));
	CHECK(!k8s_name_valid("x?watch=1"));
	CHECK(k8s_label_valid("lolzspace"));
	CHECK(!k8s_label_valid("a.b"));
}

TEST_MAIN()
