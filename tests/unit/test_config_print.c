/* The verify-config documents: `verify-config --ide` in mirrord's format
 * (mirrord/cli/src/verify_config.rs, what its IDE plugins parse). */
#include "tests/unit/test_config.h"

/* The IDE document of a config file's text, as compact JSON with sorted
 * keys (the warnings left out: their file names vary). */
static char *ide_doc(const char *name, const char *text, char **envp)
{
	char *path = write_config(name, text);
	struct config_errors errs = {0};
	struct config *c = NULL;
	json_t *doc;

	if (resolve(envp, NULL, 0, path, &c, &errs) < 0)
		doc = config_errors_to_ide_json(&errs);
	else
		doc = config_to_ide_json(c);
	config_free(c);
	config_errors_clear(&errs);
	free(path);
	json_object_del(doc, "warnings");
	json_object_del(doc, "compatible_target_types");
	char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	return s;
}

TEST(ide_success_target_forms)
{
	static const struct {
		const char *text, *want;
	} rows[] = {
	        /* No target anywhere: null, so the IDE offers its picker. */
	        {"{}", "{\"config\":{\"namespace\":null,\"path\":null},\"type\":\"Success\"}"},
	        {"{\"target\": {\"namespace\": \"ns1\"}}",
	         "{\"config\":{\"namespace\":\"ns1\",\"path\":null},\"type\":\"Success\"}"},
	        {"{\"target\": \"targetless\"}",
	         "{\"config\":{\"namespace\":null,\"path\":\"targetless\"},\"type\":\"Success\"}"},
	        {"{\"target\": {\"path\": \"deploy/lolz\", \"namespace\": \"lolzspace\"}}",
	         "{\"config\":{\"namespace\":\"lolzspace\",\"path\":{\"container\":null,"
	         "\"deployment\":\"lolz\"}},\"type\":\"Success\"}"},
	        {"{\"target\": \"pod/p/container/c\"}",
	         "{\"config\":{\"namespace\":null,\"path\":{\"container\":\"c\",\"pod\":\"p\"}},"
	         "\"type\":\"Success\"}"},
	        {"{\"target\": \"statefulset/db\"}",
	         "{\"config\":{\"namespace\":null,\"path\":{\"container\":null,"
	         "\"stateful_set\":\"db\"}},\"type\":\"Success\"}"},
	        {"{\"target\": \"cronjob/n\"}",
	         "{\"config\":{\"namespace\":null,\"path\":{\"container\":null,"
	         "\"cron_job\":\"n\"}},\"type\":\"Success\"}"},
	        /* mirrord's LabelTarget leaves an unset container out. */
	        {"{\"target\": \"label/app=web,tier=fe\"}",
	         "{\"config\":{\"namespace\":null,\"path\":{\"labels\":{\"app\":\"web\","
	         "\"tier\":\"fe\"}}},\"type\":\"Success\"}"},
	        {"{\"target\": {\"labels\": {\"app\": \"web\"}, \"container\": \"c\"}}",
	         "{\"config\":{\"namespace\":null,\"path\":{\"container\":\"c\",\"labels\":"
	         "{\"app\":\"web\"}}},\"type\":\"Success\"}"},
	};
	char *envp[] = {NULL};

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		_cleanup_free_ char *got = ide_doc("m.json", rows[i].text, envp);
		if (strcmp(got, rows[i].want) != 0)
			fprintf(stderr, "%s:\n got  %s\n want %s\n", rows[i].text, got,
			        rows[i].want);
		CHECK_STR(got, rows[i].want);
	}
}

TEST(ide_success_sources)
{
	/* The variables count as given too; the kubeconfig's namespace and
	 * "default" do not (the IDE knows its context). */
	char *envp[] = {S("MIRRORD_IMPERSONATED_TARGET=pod/from-env"),
	                S("MIRRORD_TARGET_NAMESPACE=env-ns"), NULL};
	_cleanup_free_ char *a = ide_doc("m.yaml", "target: pod/from-file\n", envp);
	CHECK_STR(a, "{\"config\":{\"namespace\":\"env-ns\",\"path\":{\"container\":null,"
	             "\"pod\":\"from-env\"}},\"type\":\"Success\"}");
}

TEST(ide_success_warnings_and_types)
{
	struct config *c = must_resolve_text("m.json", "{\"agent\": {\"json_log\": true}}");
	json_t *doc = config_to_ide_json(c);
	json_t *w = json_object_get(doc, "warnings");
	CHECK_EQ(json_array_size(w), 1);
	CHECK(strstr(json_string_value(json_array_get(w, 0)),
	             "agent.json_log: accepted but not implemented yet"));
	_cleanup_free_ char *types =
	        json_dumps(json_object_get(doc, "compatible_target_types"), JSON_COMPACT);
	CHECK_STR(types, "[\"targetless\",\"pod\",\"deployment\",\"rollout\",\"job\",\"cronjob\","
	                 "\"statefulset\",\"service\",\"replicaset\"]");
	/* Exactly mirrord's keys. */
	CHECK_EQ(json_object_size(doc), 4);
	json_decref(doc);
	config_free(c);
}

TEST(ide_fail_lists_every_problem)
{
	char *envp[] = {NULL};
	_cleanup_free_ char *got = ide_doc("m.json",
	                                   "{\n"
	                                   "  \"agent\": {\"ttl\": -1, \"port\": 1},\n"
	                                   "  \"target\": \"pod/x/baz\"\n"
	                                   "}\n",
	                                   envp);
	json_t *doc = json_loads(got, 0, NULL);
	CHECK(doc);
	CHECK_STR(json_string_value(json_object_get(doc, "type")), "Fail");
	CHECK_EQ(json_object_size(doc), 2);
	json_t *e = json_object_get(doc, "errors");
	CHECK_EQ(json_array_size(e), 3);
	CHECK(strstr(json_string_value(json_array_get(e, 0)), "m.json:2:13: agent.ttl: -1 is out "
	                                                      "of range (0-65535)"));
	CHECK(strstr(json_string_value(json_array_get(e, 1)), "m.json:2:24: agent.port: unknown "
	                                                      "field"));
	CHECK(strstr(json_string_value(json_array_get(e, 2)),
	             "m.json:3:3: target.path: invalid target \"pod/x/baz\""));
	json_decref(doc);
}

TEST(ide_fail_keeps_messages_that_are_not_utf8)
{
	struct config_errors errs = {0};
	config_errors_add(&errs, "target.path", NULL, 0, 0, NULL, "bad \"\xff\xfe\"");
	json_t *doc = config_errors_to_ide_json(&errs);
	json_t *e = json_object_get(doc, "errors");
	CHECK_EQ(json_array_size(e), 1);
	CHECK_STR(json_string_value(json_array_get(e, 0)), "target.path: bad \"??\"");
	json_decref(doc);
	config_errors_clear(&errs);
}

TEST_MAIN()
