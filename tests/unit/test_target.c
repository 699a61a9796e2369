/* The target grammar (cli/target.c): every valid form, the Kubernetes
 * name limits, and the exact one-line message for each way to get a
 * target wrong. The expected messages are spelled out here in full, so a
 * change of wording shows up as a test diff. */
#include "tests/unit/test.h"
#include "cli/target.h"

#include <errno.h>

/* The accepted-forms tails, repeated here on purpose (not taken from the
 * library), so the test pins the user-visible text. */
#define PA                                                                               \
	"; accepted: targetless, <kind>/<name>[/container/<c>] with <kind> one of pod, " \
	"deployment "                                                                    \
	"(or deploy), rollout, statefulset, job, cronjob, replicaset, service, or "      \
	"label/<k>=<v>[,<k>=<v>...][/container/<c>]"
#define JA                                                                                       \
	"; accepted: a target string, or {\"<kind>\": \"<name>\", \"container\": \"<c>\"} with " \
	"<kind> one of pod, deployment, rollout, stateful_set, job, cron_job, replica_set, "     \
	"service, "                                                                              \
	"or {\"labels\": {\"<k>\": \"<v>\", ...}, \"container\": \"<c>\"}"
/* Whole message for a path / a JSON value. */
#define P(head_and_reason) "invalid target " head_and_reason PA
#define J(reason) "invalid target: " reason JA

/* Strings of n copies of 'a' (plus an optional suffix), for the limits. */
static char *rep(const char *prefix, size_t n, const char *suffix)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	char *s = malloc(pl + n + sl + 1);
	CHECK(s);
	memcpy(s, prefix, pl);
	memset(s + pl, 'a', n);
	memcpy(s + pl + n, suffix, sl + 1);
	return s;
}

/* parse(to_string(t)) == t, and to_string is a fixed point. */
static void check_round_trip(const struct target *t)
{
	char *s = target_to_string(t), *s2, *err = NULL;
	struct target u;

	CHECK(s);
	if (target_parse(s, &u, &err) != 0) {
		fprintf(stderr, "round trip of \"%s\": %s\n", s, err);
		CHECK(0);
	}
	CHECK(target_equal(t, &u));
	s2 = target_to_string(&u);
	CHECK_STR(s2, s);
	free(s);
	free(s2);
	target_free(&u);
}

static void check_valid(const char *in, enum target_kind kind, const char *name,
                        const char *container, const char *canonical)
{
	struct target t;
	char *err = NULL, *s;

	if (target_parse(in, &t, &err) != 0) {
		fprintf(stderr, "\"%s\": %s\n", in, err);
		CHECK(0);
	}
	CHECK(err == NULL);
	CHECK_EQ(t.kind, kind);
	if (name)
		CHECK_STR(t.name, name);
	else
		CHECK(t.name == NULL);
	if (container)
		CHECK_STR(t.container, container);
	else
		CHECK(t.container == NULL);
	s = target_to_string(&t);
	CHECK_STR(s, canonical);
	check_round_trip(&t);
	free(s);
	target_free(&t);
}

static void check_invalid(const char *in, const char *msg)
{
	struct target t = {.kind = TARGET_POD, .name = (char *)"sentinel"};
	char *err = NULL;

	CHECK_EQ(target_parse(in, &t, &err), -EINVAL);
	if (!err || strcmp(err, msg) != 0) {
		fprintf(stderr, "input:    \"%s\"\nexpected: %s\ngot:      %s\n", in, msg,
		        err ? err : "(null)");
		CHECK(0);
	}
	CHECK(strchr(err, '\n') == NULL);
	/* *ret is only written on success. */
	CHECK_EQ(t.kind, TARGET_POD);
	CHECK_STR(t.name, "sentinel");
	/* A NULL ret_err is allowed. */
	CHECK_EQ(target_parse(in, &t, NULL), -EINVAL);
	free(err);
}

/* ---- valid paths ---- */

static const struct {
	const char *in;
	enum target_kind kind;
	const char *name, *container, *canonical;
} valid[] = {
        /* The examples of mirrord's targets documentation, verbatim. */
        {"targetless", TARGET_NONE, NULL, NULL, "targetless"},
        {"deploy/lolz", TARGET_DEPLOYMENT, "lolz", NULL, "deployment/lolz"},
        {"pod/lolz-64698df9b7-6plq8", TARGET_POD, "lolz-64698df9b7-6plq8", NULL,
         "pod/lolz-64698df9b7-6plq8"},
        {"pod/lolz-64698df9b7-6plq8/container/main-container", TARGET_POD, "lolz-64698df9b7-6plq8",
         "main-container", "pod/lolz-64698df9b7-6plq8/container/main-container"},
        {"pod/bear-pod", TARGET_POD, "bear-pod", NULL, "pod/bear-pod"},
        {"pod/bear-pod/container/bear-pod-container", TARGET_POD, "bear-pod", "bear-pod-container",
         "pod/bear-pod/container/bear-pod-container"},
        /* Every kind, with and without a container. */
        {"deployment/web", TARGET_DEPLOYMENT, "web", NULL, "deployment/web"},
        {"deployment/web/container/app", TARGET_DEPLOYMENT, "web", "app",
         "deployment/web/container/app"},
        {"deploy/web/container/app", TARGET_DEPLOYMENT, "web", "app",
         "deployment/web/container/app"},
        {"rollout/canary", TARGET_ROLLOUT, "canary", NULL, "rollout/canary"},
        {"rollout/canary/container/c1", TARGET_ROLLOUT, "canary", "c1",
         "rollout/canary/container/c1"},
        {"statefulset/db", TARGET_STATEFULSET, "db", NULL, "statefulset/db"},
        {"statefulset/db/container/pg", TARGET_STATEFULSET, "db", "pg",
         "statefulset/db/container/pg"},
        {"job/migrate", TARGET_JOB, "migrate", NULL, "job/migrate"},
        {"job/migrate/container/m", TARGET_JOB, "migrate", "m", "job/migrate/container/m"},
        {"cronjob/nightly", TARGET_CRONJOB, "nightly", NULL, "cronjob/nightly"},
        {"cronjob/nightly/container/n", TARGET_CRONJOB, "nightly", "n",
         "cronjob/nightly/container/n"},
        {"replicaset/web-5d4f", TARGET_REPLICASET, "web-5d4f", NULL, "replicaset/web-5d4f"},
        {"replicaset/web-5d4f/container/app", TARGET_REPLICASET, "web-5d4f", "app",
         "replicaset/web-5d4f/container/app"},
        {"service/api", TARGET_SERVICE, "api", NULL, "service/api"},
        {"service/api/container/http", TARGET_SERVICE, "api", "http", "service/api/container/http"},
        /* Subdomain names take dots and may start with a digit; containers
	 * may start with a digit too (DNS-1123 label). */
        {"pod/web.v2.example", TARGET_POD, "web.v2.example", NULL, "pod/web.v2.example"},
        {"pod/0abc/container/9z", TARGET_POD, "0abc", "9z", "pod/0abc/container/9z"},
        {"pod/a", TARGET_POD, "a", NULL, "pod/a"},
        {"cronjob/a.b-c", TARGET_CRONJOB, "a.b-c", NULL, "cronjob/a.b-c"},
        {"pod/container", TARGET_POD, "container", NULL, "pod/container"},
        {"pod/container/container/container", TARGET_POD, "container", "container",
         "pod/container/container/container"},
        /* Labels: sorted by key in the canonical form. */
        {"label/app=web", TARGET_LABEL, NULL, NULL, "label/app=web"},
        {"label/tier=web,app=x/container/c", TARGET_LABEL, NULL, "c",
         "label/app=x,tier=web/container/c"},
        {"label/app.kubernetes.io/name=api", TARGET_LABEL, NULL, NULL,
         "label/app.kubernetes.io/name=api"},
        {"label/a=", TARGET_LABEL, NULL, NULL, "label/a="},
        {"label/Team_1=Pay.ments-2", TARGET_LABEL, NULL, NULL, "label/Team_1=Pay.ments-2"},
        /* mirrord's own label test cases. */
        {"label/app=biskupin/container/zamek-w-besiekierach", TARGET_LABEL, NULL,
         "zamek-w-besiekierach", "label/app=biskupin/container/zamek-w-besiekierach"},
        {"label/app.kubernetes.io/name=biskupin,castle=zamek-w-besiekierach,tier=web/container/php",
         TARGET_LABEL, NULL, "php",
         "label/app.kubernetes.io/name=biskupin,castle=zamek-w-besiekierach,tier=web/container/"
         "php"},
        /* A key whose prefix is "container" is still a key. */
        {"label/a=1,container/x=2", TARGET_LABEL, NULL, NULL, "label/a=1,container/x=2"},
};

TEST(valid_paths)
{
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		check_valid(valid[i].in, valid[i].kind, valid[i].name, valid[i].container,
		            valid[i].canonical);
}

TEST(label_contents)
{
	struct target t;
	char *err = NULL;

	CHECK_EQ(target_parse("label/tier=web,app.kubernetes.io/name=api,z=/container/c", &t, &err),
	         0);
	CHECK_EQ(t.kind, TARGET_LABEL);
	CHECK(t.name == NULL);
	CHECK_STR(t.container, "c");
	CHECK_EQ(t.nlabels, 3);
	CHECK_STR(t.labels[0].key, "app.kubernetes.io/name");
	CHECK_STR(t.labels[0].value, "api");
	CHECK_STR(t.labels[1].key, "tier");
	CHECK_STR(t.labels[1].value, "web");
	CHECK_STR(t.labels[2].key, "z");
	CHECK_STR(t.labels[2].value, "");
	check_round_trip(&t);
	target_free(&t);
	/* target_free leaves a freeable, targetless struct; NULL is fine. */
	CHECK_EQ(t.kind, TARGET_NONE);
	CHECK(t.labels == NULL && t.nlabels == 0);
	target_free(&t);
	target_free(NULL);
}

/* ---- Kubernetes name limits ---- */

TEST(name_limits)
{
	static const struct {
		const char *prefix, *suffix;
		size_t ok; /* longest valid; ok + 1 is refused */
	} lim[] = {
	        {"pod/", "", 253},
	        {"deployment/", "", 253},
	        {"rollout/", "", 253},
	        {"statefulset/", "", 253},
	        {"job/", "", 253},
	        {"replicaset/", "", 253},
	        {"cronjob/", "", 52},
	        {"service/", "", 63},
	        {"pod/x/container/", "", 63},
	        {"label/", "=v", 63},      /* key name */
	        {"label/k=", "", 63},      /* value */
	        {"label/x.io/", "=v", 63}, /* key name after a prefix */
	        {"label/", "/k=v", 253},   /* key prefix */
	        {"label/k=v/container/", "", 63},
	};
	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		char *good = rep(lim[i].prefix, lim[i].ok, lim[i].suffix);
		char *bad = rep(lim[i].prefix, lim[i].ok + 1, lim[i].suffix);
		struct target t;
		char *err = NULL;

		if (target_parse(good, &t, &err) != 0) {
			fprintf(stderr, "%s: %s\n", good, err);
			CHECK(0);
		}
		check_round_trip(&t);
		target_free(&t);
		CHECK_EQ(target_parse(bad, &t, &err), -EINVAL);
		CHECK(strstr(err, "characters long, the limit is"));
		free(err);
		free(good);
		free(bad);
	}
}

TEST(name_limit_messages)
{
	char *in = rep("pod/", 254, ""), *name = rep("", 254, ""), *msg;

	msg = malloc(2048);
	CHECK(msg);
	snprintf(msg, 2048,
	         "invalid target \"%s\": pod name \"%s\" is not a DNS-1123 subdomain: it is 254 "
	         "characters long, the limit is 253" PA,
	         in, name);
	check_invalid(in, msg);
	free(in);
	free(name);

	in = rep("service/", 64, "");
	name = rep("", 64, "");
	snprintf(msg, 2048,
	         "invalid target \"%s\": service name \"%s\" is not a DNS-1035 label: it is 64 "
	         "characters long, the limit is 63" PA,
	         in, name);
	check_invalid(in, msg);
	free(in);
	free(name);

	in = rep("pod/x/container/", 64, "");
	name = rep("", 64, "");
	snprintf(msg, 2048,
	         "invalid target \"%s\": container name \"%s\" is not a DNS-1123 label: it is 64 "
	         "characters long, the limit is 63" PA,
	         in, name);
	check_invalid(in, msg);
	free(in);
	free(name);
	free(msg);
}

/* ---- invalid paths, each with its exact message ---- */

static const struct {
	const char *in, *msg;
} invalid[] = {
        /* Empty and bare. */
        {"", P("\"\": empty target")},
        {"lolz", P("\"lolz\": missing the kind prefix (did you mean pod/lolz?)")},
        {"LOLZ", P("\"LOLZ\": not a target: no \"<kind>/\" prefix")},
        {"Targetless", P("\"Targetless\": not a target (did you mean \"targetless\"?)")},
        {"pod", P("\"pod\": missing \"/<name>\" after \"pod\"")},
        {"deploy", P("\"deploy\": missing \"/<name>\" after \"deploy\"")},
        {"label", P("\"label\": missing \"/<k>=<v>\" after \"label\"")},
        {"targetless/x", P("\"targetless/x\": nothing may follow \"targetless\"")},
        /* Kinds. */
        {"/x", P("\"/x\": empty kind before the first \"/\"")},
        {"foo/x", P("\"foo/x\": unknown kind \"foo\"")},
        {"Pod/x", P("\"Pod/x\": unknown kind \"Pod\" (did you mean \"pod\"?)")},
        {"svc/x", P("\"svc/x\": unknown kind \"svc\" (did you mean \"service\"?)")},
        {"sts/x", P("\"sts/x\": unknown kind \"sts\" (did you mean \"statefulset\"?)")},
        {"stateful_set/x",
         P("\"stateful_set/x\": unknown kind \"stateful_set\" (did you mean \"statefulset\"?)")},
        {"deployments/x",
         P("\"deployments/x\": unknown kind \"deployments\" (did you mean \"deployment\"?)")},
        {"container/x", P("\"container/x\": unknown kind \"container\"")},
        {"p\xc3\xb6"
         "d/x",
         P("\"p\\xc3\\xb6d/x\": unknown kind \"p\\xc3\\xb6d\"")},
        /* Empty components and trailing slashes. */
        {"pod/", P("\"pod/\": empty name after \"pod/\"")},
        {"deploy/", P("\"deploy/\": empty name after \"deploy/\"")},
        {"pod//container/c", P("\"pod//container/c\": empty name after \"pod/\"")},
        {"pod/x/", P("\"pod/x/\": trailing \"/\" after the name")},
        {"pod/x//container/c",
         P("\"pod/x//container/c\": after the name only \"/container/<c>\" may follow, not "
           "\"//container/c\"")},
        {"pod/x/container",
         P("\"pod/x/container\": missing the container name after \"/container\"")},
        {"pod/x/container/", P("\"pod/x/container/\": empty container name after \"/container/\"")},
        {"pod/x/container/c/",
         P("\"pod/x/container/c/\": trailing \"/\" after the container name")},
        /* Anything but "/container/<c>" after the name. */
        {"pod/x/baz",
         P("\"pod/x/baz\": after the name only \"/container/<c>\" may follow, not \"/baz\"")},
        {"deployment/x/blah/y",
         P("\"deployment/x/blah/y\": after the name only \"/container/<c>\" may follow, not "
           "\"/blah/y\"")},
        {"pod/x/containers/c",
         P("\"pod/x/containers/c\": after the name only \"/container/<c>\" may follow, not "
           "\"/containers/c\"")},
        {"pod/x/container/c/d",
         P("\"pod/x/container/c/d\": nothing may follow the container name, not \"/d\"")},
        /* Names. */
        {"pod/Foo",
         P("\"pod/Foo\": pod name \"Foo\" is not a DNS-1123 subdomain: uppercase letter 'F' at "
           "offset 0")},
        {"pod/caf\xc3\xa9",
         P("\"pod/caf\\xc3\\xa9\": pod name \"caf\\xc3\\xa9\" is not a DNS-1123 subdomain: "
           "non-ASCII byte 0xc3 at offset 3")},
        {"pod/\xe2\x98\x83",
         P("\"pod/\\xe2\\x98\\x83\": pod name \"\\xe2\\x98\\x83\" is not a DNS-1123 subdomain: "
           "non-ASCII byte 0xe2 at offset 0")},
        {"pod/a_b",
         P("\"pod/a_b\": pod name \"a_b\" is not a DNS-1123 subdomain: character '_' at offset 1 "
           "(allowed: a-z, 0-9, '-', '.')")},
        {"pod/a b",
         P("\"pod/a b\": pod name \"a b\" is not a DNS-1123 subdomain: character ' ' at offset 1 "
           "(allowed: a-z, 0-9, '-', '.')")},
        {"pod/a\nb",
         P("\"pod/a\\x0ab\": pod name \"a\\x0ab\" is not a DNS-1123 subdomain: byte 0x0a at offset "
           "1 (allowed: a-z, 0-9, '-', '.')")},
        {"pod/a\"b",
         P("\"pod/a\\\"b\": pod name \"a\\\"b\" is not a DNS-1123 subdomain: character '\"' at "
           "offset 1 (allowed: a-z, 0-9, '-', '.')")},
        {"pod/-a", P("\"pod/-a\": pod name \"-a\" is not a DNS-1123 subdomain: it must start with "
                     "a letter or "
                     "digit")},
        {"pod/a-",
         P("\"pod/a-\": pod name \"a-\" is not a DNS-1123 subdomain: it must end with a letter or "
           "digit")},
        {"pod/.a", P("\"pod/.a\": pod name \".a\" is not a DNS-1123 subdomain: it must start with "
                     "a letter or "
                     "digit")},
        {"pod/a..b",
         P("\"pod/a..b\": pod name \"a..b\" is not a DNS-1123 subdomain: '.' at offset 1 must be "
           "followed by a letter or digit")},
        {"pod/a-.b",
         P("\"pod/a-.b\": pod name \"a-.b\" is not a DNS-1123 subdomain: '.' at offset 2 must be "
           "preceded by a letter or digit")},
        {"service/1abc",
         P("\"service/1abc\": service name \"1abc\" is not a DNS-1035 label: it must start with a "
           "letter")},
        {"service/a.b",
         P("\"service/a.b\": service name \"a.b\" is not a DNS-1035 label: character '.' at offset "
           "1 (allowed: a-z, 0-9, '-')")},
        {"pod/x/container/C",
         P("\"pod/x/container/C\": container name \"C\" is not a DNS-1123 label: uppercase letter "
           "'C' at offset 0")},
        {"pod/x/container/a.b",
         P("\"pod/x/container/a.b\": container name \"a.b\" is not a DNS-1123 label: character '.' "
           "at offset 1 (allowed: a-z, 0-9, '-')")},
        {"pod/x/container/\xc3\xa9",
         P("\"pod/x/container/\\xc3\\xa9\": container name \"\\xc3\\xa9\" is not a DNS-1123 label: "
           "non-ASCII byte 0xc3 at offset 0")},
        {"cronjob/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         P("\"cronjob/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": cronjob name "
           "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is not a valid cronjob name "
           "(a "
           "DNS-1123 subdomain of at most 52 characters): it is 53 characters long, the limit is "
           "52")},
        /* Labels. */
        {"label/", P("\"label/\": no labels after \"label/\"")},
        {"label/=v", P("\"label/=v\": empty label key before \"=\"")},
        {"label/a", P("\"label/a\": label \"a\" has no \"=<value>\"")},
        {"label/app/container/c",
         P("\"label/app/container/c\": label \"app/container/c\" has no \"=<value>\"")},
        {"label/a=1,a=2", P("\"label/a=1,a=2\": duplicate label key \"a\"")},
        {"label/app=biskupin,app=zamek-w-besiekierach",
         P("\"label/app=biskupin,app=zamek-w-besiekierach\": duplicate label key \"app\"")},
        {"label/a=1,", P("\"label/a=1,\": empty label in the selector (stray \",\")")},
        {"label/,a=1", P("\"label/,a=1\": empty label in the selector (stray \",\")")},
        {"label/a=1,,b=2", P("\"label/a=1,,b=2\": empty label in the selector (stray \",\")")},
        {"label/a=1/", P("\"label/a=1/\": trailing \"/\" after the labels")},
        {"label/a=1/foo",
         P("\"label/a=1/foo\": after the labels only \"/container/<c>\" may follow, not \"/foo\"")},
        {"label/a=1/container",
         P("\"label/a=1/container\": missing the container name after \"/container\"")},
        {"label/a=1/container/",
         P("\"label/a=1/container/\": empty container name after \"/container/\"")},
        {"label/a=x_",
         P("\"label/a=x_\": value \"x_\" of label \"a\" is not a valid label value: it must end "
           "with a letter or digit")},
        {"label/a=b=c",
         P("\"label/a=b=c\": value \"b=c\" of label \"a\" is not a valid label value: character "
           "'=' at offset 1 (allowed: A-Z, a-z, 0-9, '-', '_', '.')")},
        {"label/Ex.com/a=1",
         P("\"label/Ex.com/a=1\": prefix \"Ex.com\" of label key \"Ex.com/a\" is not a DNS-1123 "
           "subdomain: uppercase letter 'E' at offset 0")},
        {"label/x.io/-a=1", P("\"label/x.io/-a=1\": name \"-a\" of label key \"x.io/-a\" is not a "
                              "valid label name: it "
                              "must start with a letter or digit")},
        {"label//a=1", P("\"label//a=1\": label key \"/a\" has an empty prefix before \"/\"")},
        {"label/x/=1", P("\"label/x/=1\": label key \"x/\" has an empty name after \"/\"")},
        {"label/a/b/c=1", P("\"label/a/b/c=1\": label key \"a/b/c\" has more than one \"/\"")},
        {"label/a b=1", P("\"label/a b=1\": label key \"a b\" is not a valid label name: character "
                          "' ' at offset 1 "
                          "(allowed: A-Z, a-z, 0-9, '-', '_', '.')")},
        {"label/k=\xc3\xa9", P("\"label/k=\\xc3\\xa9\": value \"\\xc3\\xa9\" of label \"k\" is not "
                               "a valid label value: "
                               "non-ASCII byte 0xc3 at offset 0")},
};

TEST(invalid_paths)
{
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		check_invalid(invalid[i].in, invalid[i].msg);
	/* The issue asks for at least 30; keep the table from shrinking. */
	CHECK(sizeof(invalid) / sizeof(invalid[0]) >= 30);
}

TEST(long_input)
{
	/* Past TARGET_STRING_MAX: refused before any parsing, and the echo
	 * is cut at 400 bytes. */
	char *in = rep("pod/", TARGET_STRING_MAX, ""), *err = NULL, *msg = rep("", 396, "");
	struct target t;
	char expect[1024];

	snprintf(expect, sizeof(expect), "invalid target \"pod/%s\"...: longer than 8192 bytes" PA,
	         msg);
	CHECK_EQ(target_parse(in, &t, &err), -EINVAL);
	CHECK_STR(err, expect);
	free(err);
	free(in);
	free(msg);
}

/* ---- JSON forms ---- */

static json_t *load(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	if (!v)
		fprintf(stderr, "bad test JSON %s: %s\n", text, je.text);
	CHECK(v);
	return v;
}

static const struct {
	const char *json, *canonical;
} json_valid[] = {
        {"\"targetless\"", "targetless"},
        {"null", "targetless"},
        {"\"deploy/lolz\"", "deployment/lolz"},
        {"\"pod/lolz-64698df9b7-6plq8/container/main-container\"",
         "pod/lolz-64698df9b7-6plq8/container/main-container"},
        {"{\"pod\": \"bear-pod\", \"container\": \"bear-pod-container\"}",
         "pod/bear-pod/container/bear-pod-container"},
        {"{\"container\": \"c\", \"pod\": \"p\"}", "pod/p/container/c"},
        {"{\"pod\": \"p\"}", "pod/p"},
        {"{\"pod\": \"p\", \"container\": null}", "pod/p"},
        {"{\"deployment\": \"d\"}", "deployment/d"},
        {"{\"deployment\": \"d\", \"container\": \"c\"}", "deployment/d/container/c"},
        {"{\"rollout\": \"r\", \"container\": \"c\"}", "rollout/r/container/c"},
        {"{\"stateful_set\": \"s\"}", "statefulset/s"},
        {"{\"stateful_set\": \"s\", \"container\": \"c\"}", "statefulset/s/container/c"},
        {"{\"job\": \"j\", \"container\": \"c\"}", "job/j/container/c"},
        {"{\"cron_job\": \"cj\"}", "cronjob/cj"},
        {"{\"cron_job\": \"cj\", \"container\": \"c\"}", "cronjob/cj/container/c"},
        {"{\"replica_set\": \"rs\", \"container\": \"c\"}", "replicaset/rs/container/c"},
        {"{\"service\": \"svc\"}", "service/svc"},
        {"{\"service\": \"svc\", \"container\": \"c\"}", "service/svc/container/c"},
        {"{\"labels\": {\"tier\": \"web\", \"app\": \"x\"}}", "label/app=x,tier=web"},
        {"{\"labels\": {\"app.kubernetes.io/name\": \"api\"}, \"container\": \"c\"}",
         "label/app.kubernetes.io/name=api/container/c"},
        {"{\"labels\": {\"k\": \"\"}}", "label/k="},
};

TEST(json_valid_forms)
{
	for (size_t i = 0; i < sizeof(json_valid) / sizeof(json_valid[0]); i++) {
		json_t *v = load(json_valid[i].json);
		struct target t;
		char *err = NULL, *s;

		if (target_from_json(v, &t, &err) != 0) {
			fprintf(stderr, "%s: %s\n", json_valid[i].json, err);
			CHECK(0);
		}
		s = target_to_string(&t);
		CHECK_STR(s, json_valid[i].canonical);
		check_round_trip(&t);
		free(s);
		target_free(&t);
		json_decref(v);
	}
}

/* The path and the object spelling of a target are the same model. */
TEST(json_equals_path)
{
	json_t *v = load("{\"labels\": {\"b\": \"2\", \"a\": \"1\"}, \"container\": \"c\"}");
	struct target a, b;

	CHECK_EQ(target_from_json(v, &a, NULL), 0);
	CHECK_EQ(target_parse("label/a=1,b=2/container/c", &b, NULL), 0);
	CHECK(target_equal(&a, &b));
	target_free(&a);
	target_free(&b);
	json_decref(v);

	/* The config example from mirrord's docs; "path" is ours to parse. */
	v = load("{\"target\": {\"path\": \"pod/lolz-64698df9b7-6plq8/container/main-container\", "
	         "\"namespace\": \"lolzspace\"}}");
	CHECK_EQ(target_from_json(json_object_get(json_object_get(v, "target"), "path"), &a, NULL),
	         0);
	CHECK_EQ(a.kind, TARGET_POD);
	CHECK_STR(a.name, "lolz-64698df9b7-6plq8");
	CHECK_STR(a.container, "main-container");
	target_free(&a);
	json_decref(v);
}

static const struct {
	const char *json, *msg;
} json_invalid[] = {
        {"{}", J("no kind key in the object")},
        {"{\"container\": \"c\"}", J("no kind key in the object")},
        {"{\"pod\": \"x\", \"deployment\": \"y\"}",
         J("both \"pod\" and \"deployment\" given (exactly one kind)")},
        {"{\"labels\": {\"a\": \"1\"}, \"pod\": \"y\"}",
         J("both \"labels\" and \"pod\" given (exactly one kind)")},
        {"{\"foo\": 1}", J("unknown key \"foo\"")},
        {"{\"statefulset\": \"x\"}",
         J("unknown key \"statefulset\" (did you mean \"stateful_set\"?)")},
        {"{\"cronjob\": \"x\"}", J("unknown key \"cronjob\" (did you mean \"cron_job\"?)")},
        {"{\"replicaset\": \"x\"}",
         J("unknown key \"replicaset\" (did you mean \"replica_set\"?)")},
        {"{\"deploy\": \"x\"}", J("unknown key \"deploy\" (did you mean \"deployment\"?)")},
        {"{\"label\": {\"a\": \"b\"}}", J("unknown key \"label\" (did you mean \"labels\"?)")},
        {"{\"Pod\": \"x\"}", J("unknown key \"Pod\" (did you mean \"pod\"?)")},
        {"{\"path\": \"pod/x\"}",
         J("unknown key \"path\" (\"path\" and \"namespace\" belong in the enclosing \"target\" "
           "object)")},
        {"{\"pod\": 1}", J("\"pod\" must be a string, got number")},
        {"{\"pod\": null}", J("\"pod\" must be a string, got null")},
        {"{\"pod\": [\"x\"]}", J("\"pod\" must be a string, got array")},
        {"{\"pod\": \"x\", \"container\": 5}", J("\"container\" must be a string, got number")},
        {"{\"pod\": \"x\", \"container\": true}", J("\"container\" must be a string, got boolean")},
        {"{\"pod\": \"\"}", J("pod name \"\" is not a DNS-1123 subdomain: it is empty")},
        {"{\"pod\": \"X\"}",
         J("pod name \"X\" is not a DNS-1123 subdomain: uppercase letter 'X' at offset 0")},
        {"{\"pod\": \"x/container/c\"}",
         J("pod name \"x/container/c\" is not a DNS-1123 subdomain: character '/' at offset 1 "
           "(allowed: a-z, 0-9, '-', '.')")},
        {"{\"service\": \"1a\"}",
         J("service name \"1a\" is not a DNS-1035 label: it must start with "
           "a letter")},
        {"{\"pod\": \"x\", \"container\": \"C\"}",
         J("container name \"C\" is not a DNS-1123 label: uppercase letter 'C' at offset 0")},
        {"{\"pod\": \"x\", \"container\": \"\"}",
         J("container name \"\" is not a DNS-1123 label: it is empty")},
        {"{\"labels\": []}", J("\"labels\" must be an object, got array")},
        {"{\"labels\": \"a=b\"}", J("\"labels\" must be an object, got string")},
        {"{\"labels\": {}}", J("\"labels\" is empty (at least one label is required)")},
        {"{\"labels\": {\"a\": 1}}", J("value of label \"a\" must be a string, got number")},
        {"{\"labels\": {\"\": \"v\"}}", J("empty label key")},
        {"{\"labels\": {\"a\": \"-\"}}",
         J("value \"-\" of label \"a\" is not a valid label value: it must start with a letter or "
           "digit")},
        {"[]", J("expected a string or an object, got array")},
        {"42", J("expected a string or an object, got number")},
        {"1.5", J("expected a string or an object, got number")},
        {"true", J("expected a string or an object, got boolean")},
        /* Strings go through the path grammar and its message. */
        {"\"lolz\"", P("\"lolz\": missing the kind prefix (did you mean pod/lolz?)")},
        {"\"\"", P("\"\": empty target")},
};

TEST(json_invalid_forms)
{
	for (size_t i = 0; i < sizeof(json_invalid) / sizeof(json_invalid[0]); i++) {
		json_t *v = load(json_invalid[i].json);
		struct target t = {.kind = TARGET_JOB};
		char *err = NULL;

		CHECK_EQ(target_from_json(v, &t, &err), -EINVAL);
		if (!err || strcmp(err, json_invalid[i].msg) != 0) {
			fprintf(stderr, "input:    %s\nexpected: %s\ngot:      %s\n",
			        json_invalid[i].json, json_invalid[i].msg, err ? err : "(null)");
			CHECK(0);
		}
		CHECK_EQ(t.kind, TARGET_JOB);
		free(err);
		json_decref(v);
	}
}

TEST(json_nul_bytes)
{
	/* jansson keeps "\u0000" with JSON_ALLOW_NUL; a C string would be
	 * cut there and "pod/x\0/../y" would turn into "pod/x". */
	json_error_t je;
	json_t *v = json_loads("\"pod/x\\u0000y\"", JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	struct target t;
	char *err = NULL;

	CHECK(v);
	CHECK_EQ(target_from_json(v, &t, &err), -EINVAL);
	CHECK_STR(err, J("the target string contains a NUL byte"));
	free(err);
	json_decref(v);

	v = json_loads("{\"pod\": \"x\\u0000y\"}", JSON_ALLOW_NUL, &je);
	CHECK(v);
	CHECK_EQ(target_from_json(v, &t, &err), -EINVAL);
	CHECK_STR(err, J("\"pod\" contains a NUL byte"));
	free(err);
	json_decref(v);

	CHECK_EQ(target_from_json(NULL, &t, &err), -EINVAL);
	CHECK_STR(err, J("no value"));
	free(err);
}

TEST(kind_names)
{
	static const char *names[] = {"targetless",  "pod",  "deployment", "rollout",
	                              "statefulset", "job",  "cronjob",    "replicaset",
	                              "service",     "label"};
	for (int k = TARGET_NONE; k <= TARGET_LABEL; k++)
		CHECK_STR(target_kind_name((enum target_kind)k), names[k]);
	CHECK(target_kind_name((enum target_kind)99) == NULL);
}

TEST(to_string_targetless)
{
	struct target t = {.kind = TARGET_NONE};
	char *s = target_to_string(&t);
	CHECK_STR(s, "targetless");
	free(s);
}

TEST_MAIN()
