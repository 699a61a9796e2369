/* The config loader: JSON, YAML and TOML give the same config; positions
 * in messages; duplicate keys; templating. */
#include "cli/toml_ascii.h"
#include "tests/unit/test_config.h"

static const char json_cfg[] =
        "{\n"
        "  \"target\": {\"path\": \"deploy/web\", \"namespace\": \"shop\"},\n"
        "  \"agent\": {\"namespace\": \"agents\", \"ttl\": 5},\n"
        "  \"feature\": {\n"
        "    \"env\": {\"include\": [\"DB_*\", \"API_KEY\"]},\n"
        "    \"fs\": \"local\",\n"
        "    \"network\": {\n"
        "      \"incoming\": {\"mode\": \"steal\", \"ports\": [80, 443]},\n"
        "      \"outgoing\": {\"tcp\": true, \"udp\": false},\n"
        "      \"dns\": {\"enabled\": false}\n"
        "    }\n"
        "  },\n"
        "  \"skip_processes\": \"ld;cc\",\n"
        "  \"accept_invalid_certificates\": true\n"
        "}\n";

static const char yaml_cfg[] = "target:\n"
                               "  path: deploy/web\n"
                               "  namespace: shop\n"
                               "agent:\n"
                               "  namespace: agents\n"
                               "  ttl: 5\n"
                               "feature:\n"
                               "  env:\n"
                               "    include:\n"
                               "      - DB_*\n"
                               "      - API_KEY\n"
                               "  fs: local\n"
                               "  network:\n"
                               "    incoming:\n"
                               "      mode: steal\n"
                               "      ports: [80, 443]\n"
                               "    outgoing:\n"
                               "      tcp: true\n"
                               "      udp: false\n"
                               "    dns:\n"
                               "      enabled: false\n"
                               "skip_processes: \"ld;cc\"\n"
                               "accept_invalid_certificates: true\n";

static const char toml_cfg[] = "skip_processes = \"ld;cc\"\n"
                               "accept_invalid_certificates = true\n"
                               "[target]\n"
                               "path = \"deploy/web\"\n"
                               "namespace = \"shop\"\n"
                               "[agent]\n"
                               "namespace = \"agents\"\n"
                               "ttl = 5\n"
                               "[feature]\n"
                               "fs = \"local\"\n"
                               "[feature.env]\n"
                               "include = [\"DB_*\", \"API_KEY\"]\n"
                               "[feature.network.incoming]\n"
                               "mode = \"steal\"\n"
                               "ports = [80, 443]\n"
                               "[feature.network.outgoing]\n"
                               "tcp = true\n"
                               "udp = false\n"
                               "[feature.network.dns]\n"
                               "enabled = false\n";

static json_t *config_part(const char *name, const char *text)
{
	struct config *c = must_resolve_text(name, text);
	json_t *doc = config_to_json(c);
	json_t *cfg = json_incref(json_object_get(doc, "config"));
	/* The key is random per run and the file name differs. */
	json_object_del(cfg, "key");
	json_object_del(cfg, "config_file");
	json_decref(doc);
	CHECK(!c->targetless);
	CHECK_STR(c->target_namespace, "shop");
	CHECK_STR(c->agent_namespace, "agents");
	CHECK_STR(c->env_include, "DB_*;API_KEY");
	CHECK(c->outgoing_tcp && !c->outgoing_udp && !c->remote_dns);
	config_free(c);
	return cfg;
}

TEST(three_formats_equal)
{
	json_t *j = config_part("m.json", json_cfg);
	json_t *y = config_part("m.yaml", yaml_cfg);
	json_t *y2 = config_part("m.yml", yaml_cfg);
	json_t *t = config_part("m.toml", toml_cfg);
	CHECK(json_equal(j, y));
	CHECK(json_equal(j, y2));
	CHECK(json_equal(j, t));
	json_t *ttl = json_object_get(json_object_get(j, "agent"), "ttl");
	CHECK_EQ(json_integer_value(json_object_get(ttl, "value")), 5);
	CHECK_STR(json_string_value(json_object_get(ttl, "source")), "file");
	json_decref(j);
	json_decref(y);
	json_decref(y2);
	json_decref(t);
}

/* A target object straight under `target` (no path/namespace) is the
 * path, in every format, as mirrord's untagged TargetFileConfig reads it. */
static void check_bare_object(const char *name, const char *text, const char *want)
{
	struct config *c = must_resolve_text(name, text);
	CHECK(!c->targetless);
	CHECK_STR(config_str(c, CF_TARGET_PATH), want);
	CHECK_STR(src_name(c, CF_TARGET_PATH), "file");
	CHECK_STR(src_name(c, CF_TARGET_NAMESPACE), "default");
	config_free(c);
}

TEST(target_object_without_path)
{
	check_bare_object("m.json", "{\"target\": {\"pod\": \"x\", \"container\": \"c\"}}",
	                  "pod/x/container/c");
	check_bare_object("m.json", "{\"target\": {\"stateful_set\": \"db\"}}", "statefulset/db");
	check_bare_object("m.json", "{\"target\": {\"labels\": {\"app\": \"web\"}}}",
	                  "label/app=web");
	check_bare_object("m.yaml", "target:\n  deployment: lolz\n  container: main\n",
	                  "deployment/lolz/container/main");
	check_bare_object("m.toml", "[target]\ncron_job = \"nightly\"\n", "cronjob/nightly");
	check_bare_object("m.toml", "[target]\nreplica_set = \"rs\"\ncontainer = \"c\"\n",
	                  "replicaset/rs/container/c");
	check_bare_object("m.yaml", "target:\n  labels:\n    app: web\n    tier: fe\n",
	                  "label/app=web,tier=fe");
}

TEST(target_object_without_path_errors)
{
	/* Problems inside the object are the target's, at `target`. */
	_cleanup_free_ char *a =
	        must_fail_text("m.json", "{\"target\": {\"pod\": \"x\", \"contianer\": \"c\"}}");
	CHECK(strstr(a, "DIR/m.json:1:2: target.path: "));
	CHECK(strstr(a, "unknown key \"contianer\""));
	_cleanup_free_ char *b = must_fail_text("m.yaml", "target:\n  pod: x\n  deployment: y\n");
	CHECK(strstr(b, "DIR/m.yaml:1:1: target.path: "));
	CHECK(strstr(b, "exactly one kind"));
	/* With path or namespace it is the outer object: kind keys are
	 * unknown there. */
	_cleanup_free_ char *c =
	        must_fail_text("m.json", "{\"target\": {\"pod\": \"x\", \"namespace\": \"n\"}}");
	CHECK_STR(c, "DIR/m.json:1:13: target.pod: unknown field\n");
	/* No kind key at all: still the outer object. */
	_cleanup_free_ char *d = must_fail_text("m.toml", "[target]\ncontainer = \"c\"\n");
	CHECK_STR(d, "DIR/m.toml:2:1: target.container: unknown field\n");
}

TEST(no_extension_is_json)
{
	struct config *c = must_resolve_text("mirrordconfig", "{\"target\": \"pod/a\"}");
	CHECK(!c->targetless);
	config_free(c);
}

TEST(bad_extension)
{
	_cleanup_free_ char *e = must_fail_text("m.ini", "{}");
	CHECK_STR(e, "DIR/m.ini: unsupported config file extension; use .json, .yaml, .yml or "
	             ".toml (no extension means JSON)\n");
}

TEST(missing_file)
{
	struct config_errors errs = {0};
	struct config *c = NULL;
	char *envp[] = {NULL};
	CHECK(resolve(envp, NULL, 0, "/nonexistent/mirrord.json", &c, &errs) < 0);
	_cleanup_free_ char *t = errors_text(&errs);
	CHECK_STR(t, "/nonexistent/mirrord.json: cannot read the config file: No such file or "
	             "directory\n");
	config_errors_clear(&errs);
}

TEST(unknown_field_json)
{
	_cleanup_free_ char *e = must_fail_text("m.json", "{\n"
	                                                  "  \"feature\": {\n"
	                                                  "    \"env\": {\"includ\": \"A\"},\n"
	                                                  "    \"filesystem\": {}\n"
	                                                  "  },\n"
	                                                  "  \"agnet\": {}\n"
	                                                  "}\n");
	CHECK_STR(e, "DIR/m.json:3:13: feature.env.includ: unknown field\n"
	             "DIR/m.json:4:5: feature.filesystem: unknown field\n"
	             "DIR/m.json:6:3: agnet: unknown field\n");
}

TEST(unknown_field_yaml)
{
	_cleanup_free_ char *e = must_fail_text("m.yaml", "feature:\n"
	                                                  "  env:\n"
	                                                  "    includ: A\n"
	                                                  "  filesystem: {}\n"
	                                                  "agnet: {}\n");
	CHECK_STR(e, "DIR/m.yaml:3:5: feature.env.includ: unknown field\n"
	             "DIR/m.yaml:4:3: feature.filesystem: unknown field\n"
	             "DIR/m.yaml:5:1: agnet: unknown field\n");
}

TEST(unknown_field_toml)
{
	_cleanup_free_ char *e = must_fail_text("m.toml", "[feature.env]\n"
	                                                  "includ = \"A\"\n"
	                                                  "[feature.filesystem]\n"
	                                                  "[agnet]\n");
	CHECK_STR(e, "DIR/m.toml:2:1: feature.env.includ: unknown field\n"
	             "DIR/m.toml:3:10: feature.filesystem: unknown field\n"
	             "DIR/m.toml:4:2: agnet: unknown field\n");
}

TEST(type_errors_have_positions_in_every_format)
{
	_cleanup_free_ char *j = must_fail_text("m.json", "{\"agent\": {\n  \"ttl\": \"5\"}}");
	CHECK_STR(j, "DIR/m.json:2:3: agent.ttl: expected an integer (0-65535), got a string\n");
	_cleanup_free_ char *y = must_fail_text("m.yaml", "agent:\n  ttl: \"5\"\n");
	CHECK_STR(y, "DIR/m.yaml:2:3: agent.ttl: expected an integer (0-65535), got a string\n");
	_cleanup_free_ char *t = must_fail_text("m.toml", "[agent]\nttl = \"5\"\n");
	CHECK_STR(t, "DIR/m.toml:2:1: agent.ttl: expected an integer (0-65535), got a string\n");
}

TEST(duplicate_keys)
{
	_cleanup_free_ char *j = must_fail_text("m.json", "{\"target\": \"pod/a\",\n"
	                                                  " \"target\": \"pod/b\"}");
	CHECK(strstr(j, "DIR/m.json:2:"));
	CHECK(strstr(j, "invalid JSON: duplicate object key"));
	_cleanup_free_ char *y = must_fail_text("m.yaml", "target: pod/a\n"
	                                                  "target: pod/b\n");
	CHECK_STR(y, "DIR/m.yaml:2:1: target: duplicate key \"target\"\n");
	_cleanup_free_ char *t = must_fail_text("m.toml", "target = \"pod/a\"\n"
	                                                  "target = \"pod/b\"\n");
	CHECK(strstr(t, "DIR/m.toml:2:"));
	CHECK(strstr(t, "invalid TOML: "));
}

TEST(syntax_errors)
{
	_cleanup_free_ char *j = must_fail_text("m.json", "{\"target\": }");
	CHECK(strstr(j, "DIR/m.json:1:12: invalid JSON: "));
	_cleanup_free_ char *y = must_fail_text("m.yaml", "a: [1, 2\n");
	CHECK(strstr(y, "DIR/m.yaml:2:1: a: invalid YAML: "));
	_cleanup_free_ char *t = must_fail_text("m.toml", "[agent\n");
	CHECK(strstr(t, "DIR/m.toml:1:"));
	_cleanup_free_ char *arr = must_fail_text("m.json", "[1]");
	CHECK_STR(arr, "DIR/m.json:1:1: the configuration must be an object (a mapping of "
	               "fields)\n");
	_cleanup_free_ char *al = must_fail_text("m.yaml", "a: &x {}\nb: *x\n");
	CHECK(strstr(al, "YAML aliases"));
}

TEST(yaml_scalar_types)
{
	struct config_doc doc;
	struct config_errors errs = {0};
	const char *y = "a: true\nb: 'true'\nc: 12\nd: \"12\"\ne: 1.5\nf: ~\ng: x y\nh: 0x1f\n"
	                "i: -3\nj: .inf\nk: 1e3\nl: False\n";
	CHECK(config_doc_parse(y, strlen(y), CONFIG_FMT_YAML, "t", &doc, &errs) == 0);
	CHECK(json_is_true(json_object_get(doc.root, "a")));
	CHECK_STR(json_string_value(json_object_get(doc.root, "b")), "true");
	CHECK_EQ(json_integer_value(json_object_get(doc.root, "c")), 12);
	CHECK_STR(json_string_value(json_object_get(doc.root, "d")), "12");
	CHECK(json_is_real(json_object_get(doc.root, "e")));
	CHECK(json_is_null(json_object_get(doc.root, "f")));
	CHECK_STR(json_string_value(json_object_get(doc.root, "g")), "x y");
	CHECK_EQ(json_integer_value(json_object_get(doc.root, "h")), 31);
	CHECK_EQ(json_integer_value(json_object_get(doc.root, "i")), -3);
	CHECK_STR(json_string_value(json_object_get(doc.root, "j")), ".inf");
	CHECK(json_is_real(json_object_get(doc.root, "k")));
	CHECK(json_is_false(json_object_get(doc.root, "l")));
	config_doc_free(&doc);
}

TEST(empty_yaml_is_empty_config)
{
	struct config *c = must_resolve_text("m.yaml", "");
	CHECK(c->targetless);
	config_free(c);
	c = must_resolve_text("m.yaml", "---\n");
	config_free(c);
}

/* ---- TOML and non-ASCII characters -------------------------------------- */

/* tomlplusplus 3.3 crashes on U+00A1-U+0499 and other ranges, so
 * toml_ascii.c hands it an ASCII copy (escapes in strings, '?' in
 * comments). The values must still be exactly what the file says. */

/* TOML text and JSON text must give the same tree. */
static void check_toml_as_json(const char *toml, const char *json)
{
	struct config_doc t, j;
	struct config_errors errs = {0};

	if (config_doc_parse(toml, strlen(toml), CONFIG_FMT_TOML, "t.toml", &t, &errs) < 0) {
		_cleanup_free_ char *e = errors_text(&errs);
		fprintf(stderr, "TOML refused:\n%s", e);
		CHECK(!"TOML parse failed");
	}
	CHECK(config_doc_parse(json, strlen(json), CONFIG_FMT_JSON, "t.json", &j, &errs) == 0);
	if (!json_equal(t.root, j.root)) {
		_cleanup_free_ char *a = json_dumps(t.root, JSON_SORT_KEYS);
		_cleanup_free_ char *b = json_dumps(j.root, JSON_SORT_KEYS);
		fprintf(stderr, "TOML gave %s\nJSON gave %s\n", a, b);
		CHECK(!"TOML and JSON differ");
	}
	config_doc_free(&t);
	config_doc_free(&j);
}

TEST(toml_non_ascii_comments)
{
	check_toml_as_json("# café\n"
	                   "# Привет, мир\n"
	                   "a = 1 # Καλημέρα ¡olé! ҙ 中文 😀\n"
	                   "b = [ # Ελληνικά\n"
	                   "  2, # ещё\n"
	                   "]\n",
	                   "{\"a\": 1, \"b\": [2]}");
}

TEST(toml_non_ascii_strings)
{
	/* Every kind of string, with characters inside U+00A1-U+0499 and
	 * outside it (中, 😀, NBSP, 。 which is in another broken range). */
	check_toml_as_json(
	        "basic = \"café Привет Ελληνικά ¡ ҙ 中 😀 \\u00e9 \\\" \\\\ \"\n"
	        "literal = 'C:\\Users\\José\\\"quoted\" ж'\n"
	        "ml_basic = \"\"\"\n"
	        "Ωmega \"¡hola!\" ҙ\n"
	        "  second\\tline 。\"\"\"\"\"\n"
	        "ml_literal = '''\n"
	        "C:\\dir\\Ω ''x'' \"\"\" \\n \\\n"
	        "ё\\'''''\n"
	        "ml_literal_crlf = '''é\r\nx'''\n"
	        "continued = \"\"\"ab\\\n"
	        "    Ω\\\n"
	        "  \u00a0c\"\"\"\n"
	        "\"ключ\" = 'значение'\n"
	        "'ключ\\' = \"é\"\n"
	        "mixed = ['ё', \"ё\", '''ё''', \"\"\"ё\"\"\", '', 'a\\b']\n"
	        "inline = {a = 'ж\\', b = \"ж\\\"\", c = '''ж'''}\n",
	        "{\"basic\": \"café Привет Ελληνικά ¡ ҙ 中 😀 é \\\" \\\\ \",\n"
	        " \"literal\": \"C:\\\\Users\\\\José\\\\\\\"quoted\\\" ж\",\n"
	        " \"ml_basic\": \"Ωmega \\\"¡hola!\\\" ҙ\\n  second\\tline 。\\\"\\\"\",\n"
	        " \"ml_literal\": \"C:\\\\dir\\\\Ω ''x'' \\\"\\\"\\\" \\\\n \\\\\\nё\\\\''\",\n"
	        " \"ml_literal_crlf\": \"é\\nx\",\n"
	        " \"continued\": \"abΩ\u00a0c\",\n"
	        " \"ключ\": \"значение\",\n"
	        " \"ключ\\\\\": \"é\",\n"
	        " \"mixed\": [\"ё\", \"ё\", \"ё\", \"ё\", \"\", \"a\\\\b\"],\n"
	        " \"inline\": {\"a\": \"ж\\\\\", \"b\": \"ж\\\"\", \"c\": \"ж\"}}");
	/* Through the whole loader, as a field's value. */
	struct config *c = must_resolve_text("m.toml", "[feature.env]\n"
	                                               "include = 'DB_Ω;API_ключ' # ё\n");
	CHECK_STR(c->env_include, "DB_Ω;API_ключ");
	config_free(c);
}

TEST(toml_line_ending_backslash_before_non_ascii)
{
	/* This one crashed: after a line-ending backslash toml++ asks its
	 * whitespace table about every character (and would have dropped
	 * the NBSP, which TOML does not count as whitespace). */
	check_toml_as_json("a = \"\"\"x\\\n 。\"\"\"\nb = \"\"\"x\\\n \u00a0y\"\"\"\n",
	                   "{\"a\": \"x。\", \"b\": \"x\u00a0y\"}");
}

/* The same text with every non-ASCII character replaced by 'e' must fail
 * with the same message, same line, same column. */
static void check_same_error(const char *text, const char *ascii_twin, const char *want)
{
	_cleanup_free_ char *a = must_fail_text("m.toml", text);
	_cleanup_free_ char *b = must_fail_text("m.toml", ascii_twin);
	CHECK_STR(a, b);
	CHECK(strstr(a, want) == a);
}

TEST(toml_positions_after_non_ascii)
{
	check_same_error("a = \"ééé\" x\n", "a = \"eee\" x\n", "DIR/m.toml:1:11: invalid TOML: ");
	check_same_error("a = 'C:\\é\"\\' x\n", "a = 'C:\\e\"\\' x\n",
	                 "DIR/m.toml:1:14: invalid TOML: ");
	check_same_error("a = '''x\nΩ\\\"\"''' x\n", "a = '''x\ne\\\"\"''' x\n",
	                 "DIR/m.toml:2:9: invalid TOML: ");
	check_same_error("a = \"\"\"é\n ж😀\"\"\" x # ё\n", "a = \"\"\"e\n ee\"\"\" x # e\n",
	                 "DIR/m.toml:2:8: invalid TOML: ");
	/* Field positions (keys in an inline table), after strings of each
	 * kind on the same line. */
	check_same_error("[feature]\nenv = { include = \"café\", includ = 'ж' }\n",
	                 "[feature]\nenv = { include = \"cafe\", includ = 'e' }\n",
	                 "DIR/m.toml:2:27: feature.env.includ: unknown field\n");
	check_same_error("[feature]\nenv = { include = '\\ж\"', includ = 1 }\n",
	                 "[feature]\nenv = { include = '\\e\"', includ = 1 }\n",
	                 "DIR/m.toml:2:26: feature.env.includ: unknown field\n");
	check_same_error("feature = { env = { include = '''Ω''', exclude = 5 } }\n",
	                 "feature = { env = { include = '''e''', exclude = 5 } }\n",
	                 "DIR/m.toml:1:40: feature.env.exclude: expected a string or an array");
}

TEST(toml_non_ascii_errors)
{
	static const struct {
		const char *text, *want; /* want: how the message starts */
	} cases[] = {
	        /* Invalid UTF-8 anywhere: a lone continuation byte, an
	         * overlong '/', a surrogate, a sequence cut short by the end
	         * of the file. */
	        {"a = \"x\x80\"\n",
	         "DIR/m.toml:1:7: invalid TOML: invalid UTF-8 (a config file must "
	         "be UTF-8 text)\n"},
	        {"a = 1\n# \xc0\xaf\n", "DIR/m.toml:2:3: invalid TOML: invalid UTF-8"},
	        {"a = 'é\xed\xa0\x80'\n", "DIR/m.toml:1:7: invalid TOML: invalid UTF-8"},
	        {"a = \"\xe2\x82", "DIR/m.toml:1:6: invalid TOML: invalid UTF-8"},
	        /* TOML allows non-ASCII only in strings and comments. */
	        {"a = 1\nключ = 2\n", "DIR/m.toml:2:1: invalid TOML: non-ASCII character outside a "
	                              "string or a comment\n"},
	        {"a = 'x'é\n", "DIR/m.toml:1:8: invalid TOML: non-ASCII character outside"},
	        /* No escape starts with a non-ASCII character. */
	        {"a = \"\\é\"\n",
	         "DIR/m.toml:1:7: invalid TOML: invalid escape sequence (a backslash "
	         "before a non-ASCII character)\n"},
	        /* Still errors once rewritten: a literal string right after
	         * a string, or followed by a quote, must not merge with it. */
	        {"a = '''é'''\"\n", "DIR/m.toml:1:12: invalid TOML: "},
	        {"a = \"\"\"x\"\"\"'é'\n", "DIR/m.toml:1:12: invalid TOML: "},
	        {"a = 'é\n", "DIR/m.toml:1:"},
	        {"a = '''é''", "DIR/m.toml:1:"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		_cleanup_free_ char *e = must_fail_text("m.toml", cases[i].text);
		if (strncmp(e, cases[i].want, strlen(cases[i].want)) != 0) {
			fprintf(stderr, "case %zu: got %s", i, e);
			CHECK(!"unexpected message");
		}
	}
}

TEST(toml_ascii_rewrite_and_columns)
{
	struct toml_ascii a = {0};
	struct toml_ascii_error err = {0};
	const char *t = "a = 'é\"\\' # ж\nb = \"😀\" x\n";

	CHECK(toml_ascii_rewrite(t, strlen(t), &a, &err) == 0);
	CHECK_STR(a.text, "a = \"\\u00E9\\\"\\\\\" # ?\nb = \"\\U0001F600\" x\n");
	CHECK_EQ(a.len, strlen(a.text));
	/* Line 1: é is output columns 6-11, '"' 12-13, '\\' 14-15. */
	static const unsigned want1[] = {0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 6, 6, 7, 7, 8, 8, 9, 10, 11};
	for (unsigned col = 0; col < sizeof(want1) / sizeof(want1[0]); col++)
		CHECK_EQ(toml_ascii_orig_col(&a, 1, col), want1[col]);
	CHECK_EQ(toml_ascii_orig_col(&a, 2, 5), 5);
	CHECK_EQ(toml_ascii_orig_col(&a, 2, 15), 6);
	CHECK_EQ(toml_ascii_orig_col(&a, 2, 16), 7);
	CHECK_EQ(toml_ascii_orig_col(&a, 2, 18), 9);
	CHECK_EQ(toml_ascii_orig_col(&a, 3, 7), 7);
	toml_ascii_free(&a);
	toml_ascii_free(&a); /* idempotent */
}

/* ---- templates --------------------------------------------------------- */

static char *render(const char *text, const char *key, char **envp, const char *branch,
                    struct config_errors *errs);

struct tctx {
	char **envp;
	const char *branch;
};

static const char *t_getenv(void *data, const char *name)
{
	struct tctx *t = data;
	size_t n = strlen(name);
	for (char **e = t->envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static char *t_branch(void *data)
{
	struct tctx *t = data;
	return t->branch ? xstrdup(t->branch) : NULL;
}

static char *render(const char *text, const char *key, char **envp, const char *branch,
                    struct config_errors *errs)
{
	struct tctx t = {envp, branch};
	struct config_template_ctx ctx = {key, t_getenv, &t, t_branch};
	char *out = NULL;
	size_t len;
	if (config_render(text, strlen(text), &ctx, "m.json", &out, &len, errs) < 0)
		return NULL;
	CHECK_EQ(strlen(out), len);
	return out;
}

TEST(template_basics)
{
	struct config_errors errs = {0};
	char *envp[] = {S("TARGET=pod/from-env"), S("EMPTY="), NULL};
	_cleanup_free_ char *a = render("{{ key }}-{{key}}", "k1", envp, NULL, &errs);
	CHECK_STR(a, "k1-k1");
	_cleanup_free_ char *b = render("x{{ get_env(name=\"TARGET\", default=\"pod/x\") }}y", "k",
	                                envp, NULL, &errs);
	CHECK_STR(b, "xpod/from-envy");
	_cleanup_free_ char *c =
	        render("{{ get_env(name='NOPE', default='pod/x') }}", "k", envp, NULL, &errs);
	CHECK_STR(c, "pod/x");
	_cleanup_free_ char *d = render("{{ get_env(name=\"EMPTY\") }}|", "k", envp, NULL, &errs);
	CHECK_STR(d, "|");
	_cleanup_free_ char *e = render("{{ git_branch }}", "k", envp, "main", &errs);
	CHECK_STR(e, "main");
	char *envb[] = {S("MIRRORD_BRANCH_NAME=feature-1"), NULL};
	_cleanup_free_ char *f = render("{{ git_branch }}", "k", envb, "main", &errs);
	CHECK_STR(f, "feature-1");
	_cleanup_free_ char *g =
	        render("{{ git_branch | default(value=\"none\") }}", "k", envp, NULL, &errs);
	CHECK_STR(g, "none");
	_cleanup_free_ char *h = render("a{# comment #}b", "k", envp, NULL, &errs);
	CHECK_STR(h, "ab");
	CHECK_EQ(errs.n, 0);
}

TEST(template_errors)
{
	struct config_errors errs = {0};
	char *envp[] = {NULL};
	CHECK(render("{\n  \"a\": \"{{ get_env(name=\"NOPE\") }}\"}", "k", envp, NULL, &errs) ==
	      NULL);
	CHECK(render("{{ git_branch }}", "k", envp, NULL, &errs) == NULL);
	CHECK(render("{% if x %}{% endif %}", "k", envp, NULL, &errs) == NULL);
	CHECK(render("{{ nope }}", "k", envp, NULL, &errs) == NULL);
	CHECK(render("{{ key", "k", envp, NULL, &errs) == NULL);
	CHECK(render("{{ key | upper }}", "k", envp, NULL, &errs) == NULL);
	_cleanup_free_ char *t = errors_text(&errs);
	CHECK_STR(t, "m.json:2:9: template: environment variable \"NOPE\" is not set and get_env "
	             "has no default\n"
	             "m.json:1:1: template: git_branch is unknown (no MIRRORD_BRANCH_NAME and no "
	             "checked-out git branch)\n"
	             "m.json:1:1: template: \"{% ... %}\" blocks are not supported; use {{ "
	             "get_env(name=\"X\", default=\"y\") }}\n"
	             "m.json:1:11: template: \"{% ... %}\" blocks are not supported; use {{ "
	             "get_env(name=\"X\", default=\"y\") }}\n"
	             "m.json:1:1: template: unknown variable or function \"nope\" (supported: key, "
	             "git_branch, get_env)\n"
	             "m.json:1:1: template: \"{{\" is not closed by \"}}\"\n"
	             "m.json:1:1: template: unsupported filter \"upper\" (supported: default)\n");
	config_errors_clear(&errs);
}

TEST(template_in_config_with_key_precedence)
{
	char *path = write_config("m.json", "{\"key\": \"file-key\", \"feature\": {\"env\": "
	                                    "{\"include\": \"K_{{ key }}\"}}}");
	struct config_errors errs = {0};
	struct config *c = NULL;
	char *envp[] = {S("MIRRORD_KEY=env-key"), NULL};
	struct config_override ov[] = {{"MIRRORD_KEY", "flag-key", "-k"}};

	CHECK(resolve(envp, ov, 1, path, &c, &errs) == 0);
	CHECK_STR(c->env_include, "K_flag-key");
	CHECK_STR(src_name(c, CF_KEY), "flag");
	config_free(c);
	CHECK(resolve(envp, NULL, 0, path, &c, &errs) == 0);
	CHECK_STR(c->env_include, "K_env-key");
	config_free(c);
	char *none[] = {NULL};
	CHECK(resolve(none, NULL, 0, path, &c, &errs) == 0);
	CHECK_STR(c->env_include, "K_file-key");
	CHECK_STR(src_name(c, CF_KEY), "file");
	config_free(c);
	free(path);

	/* No key anywhere: a random one. */
	path = write_config("m.json", "{\"feature\": {\"env\": {\"include\": \"{{ key }}\"}}}");
	CHECK(resolve(none, NULL, 0, path, &c, &errs) == 0);
	CHECK_EQ(strlen(c->env_include), 10);
	CHECK_STR(c->env_include, c->key);
	CHECK_STR(src_name(c, CF_KEY), "default");
	config_free(c);
	free(path);

	/* get_env in a target, as mirrord's docs show. */
	path = write_config("m.json",
	                    "{\"target\": \"{{ get_env(name=\"TARGET\", default=\"pod/x\") }}\"}");
	char *tenv[] = {S("TARGET=deploy/y"), NULL};
	CHECK(resolve(tenv, NULL, 0, path, &c, &errs) == 0);
	CHECK_STR(config_str(c, CF_TARGET_PATH), "deployment/y");
	config_free(c);
	CHECK(resolve(none, NULL, 0, path, &c, &errs) == 0);
	CHECK_STR(config_str(c, CF_TARGET_PATH), "pod/x");
	config_free(c);
	free(path);
}

TEST(stdin_config)
{
	int p[2];
	CHECK(pipe(p) == 0);
	const char *t = "{\"target\": \"pod/from-stdin\"}";
	CHECK(write_all(p[1], t, strlen(t)) == 0);
	close(p[1]);
	CHECK(dup2(p[0], 0) == 0);
	struct config_errors errs = {0};
	struct config *c = NULL;
	char *envp[] = {NULL};
	CHECK(resolve(envp, NULL, 0, "-", &c, &errs) == 0);
	CHECK_STR(config_str(c, CF_TARGET_PATH), "pod/from-stdin");
	CHECK_STR(c->file, "<stdin>");
	config_free(c);
}

TEST(size_limit)
{
	size_t n = CONFIG_MAX_FILE + 10;
	char *big = xmalloc(n + 1);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	_cleanup_free_ char *e = must_fail_text("m.json", big);
	CHECK(strstr(e, "larger than 1 MiB"));
	free(big);
}

TEST_MAIN()
