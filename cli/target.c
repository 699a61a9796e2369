/* Target path grammar and JSON forms (mirrord-behaviour.md §1.3).
 *
 * Compatibility with mirrord's Target::from_str: the same strings parse to
 * the same targets, with two deliberate differences. We accept every kind
 * (mirrord OSS refuses all but pod/deployment/rollout), and we check names
 * against the rules the Kubernetes API server applies. mirrord passes any
 * name through, so "pod/Foo" fails late, as a 404 from the cluster. We
 * reject it here with the reason.
 *
 * Kubernetes name rules, per kind (k8s.io/apimachinery validation, the
 * ValidateXxxName functions in pkg/apis/{core,apps,batch}/validation):
 *  - pod, deployment, replicaset, statefulset, job: NameIsDNSSubdomain
 *    (<= 253 chars, [a-z0-9.-], every '.'-separated part starts and ends
 *    with [a-z0-9]);
 *  - rollout: a custom resource; the API server applies the same
 *    DNS-1123 subdomain rule to CR names;
 *  - cronjob: a DNS-1123 subdomain of at most 52 characters, because the
 *    controller appends an 11-character suffix to make Job names
 *    (ValidateCronJob's "must be no more than 52 characters");
 *  - service: NameIsDNS1035Label (<= 63, [a-z0-9-], starts with a letter):
 *    a Service name becomes a DNS label, and "1abc" would be refused;
 *  - container: IsDNS1123Label (<= 63, [a-z0-9-], starts with a letter or
 *    digit);
 *  - label keys: IsQualifiedName (optional DNS-1123 subdomain prefix plus
 *    '/', then <= 63 of [A-Za-z0-9._-] starting and ending alphanumeric);
 *    values: IsValidLabelValue (the same, but may be empty).
 *
 * Errors are one line: `invalid target "<input>": <reason>; accepted: ...`.
 * The input is echoed escaped (\xNN for control and non-ASCII bytes), so a
 * newline or a terminal escape in an env var cannot break the line. */
#include "cli/target.h"

#include "common/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PATH_ACCEPTED                                                                       \
	"targetless, <kind>/<name>[/container/<c>] with <kind> one of pod, deployment (or " \
	"deploy), "                                                                         \
	"rollout, statefulset, job, cronjob, replicaset, service, or "                      \
	"label/<k>=<v>[,<k>=<v>...][/container/<c>]"

#define JSON_ACCEPTED                                                                           \
	"a target string, or {\"<kind>\": \"<name>\", \"container\": \"<c>\"} with <kind> one " \
	"of pod, deployment, rollout, stateful_set, job, cron_job, replica_set, service, or "   \
	"{\"labels\": {\"<k>\": \"<v>\", ...}, \"container\": \"<c>\"}"

/* How much of the user's input an error message echoes. Enough for the
 * longest valid named target (11 + 1 + 253 + 11 + 63 bytes) in full. */
#define ECHO_MAX 400

/* Room for the detail of a name check ("character '_' at offset 8191
 * (allowed: A-Z, a-z, 0-9, '-', '_', '.')" and the like). */
#define WHY_MAX 160

/* ---- name rules ---- */

enum {
	N_UPPER = 1 << 0,        /* A-Z allowed */
	N_DOT = 1 << 1,          /* '.' allowed */
	N_UNDERSCORE = 1 << 2,   /* '_' allowed */
	N_DOT_PARTS = 1 << 3,    /* each '.'-separated part starts/ends alnum */
	N_LETTER_FIRST = 1 << 4, /* DNS-1035: the first character is a letter */
	N_EMPTY_OK = 1 << 5,     /* label values may be empty */
};

struct name_rule {
	const char *desc; /* "DNS-1123 subdomain": "... is not a <desc>" */
	size_t max;
	unsigned flags;
	const char *allowed; /* for the "character 'x'" detail */
};

static const struct name_rule rule_subdomain = {"DNS-1123 subdomain", 253, N_DOT | N_DOT_PARTS,
                                                "a-z, 0-9, '-', '.'"};
static const struct name_rule rule_cronjob = {
        "valid cronjob name (a DNS-1123 subdomain of at most 52 characters)", 52,
        N_DOT | N_DOT_PARTS, "a-z, 0-9, '-', '.'"};
static const struct name_rule rule_dns1123_label = {"DNS-1123 label", 63, 0, "a-z, 0-9, '-'"};
static const struct name_rule rule_dns1035_label = {"DNS-1035 label", 63, N_LETTER_FIRST,
                                                    "a-z, 0-9, '-'"};
static const struct name_rule rule_label_name = {
        "valid label name", 63, N_UPPER | N_DOT | N_UNDERSCORE, "A-Z, a-z, 0-9, '-', '_', '.'"};
static const struct name_rule rule_label_value = {"valid label value", 63,
                                                  N_UPPER | N_DOT | N_UNDERSCORE | N_EMPTY_OK,
                                                  "A-Z, a-z, 0-9, '-', '_', '.'"};

static bool is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

static bool is_alnum(char ch, unsigned flags)
{
	return is_lower_alnum(ch) || ((flags & N_UPPER) && ch >= 'A' && ch <= 'Z');
}

/* True if s[0..n) satisfies r; otherwise false with the first problem,
 * scanning left to right, described in why. */
static bool name_ok(const char *s, size_t n, const struct name_rule *r, char *why, size_t cap)
{
	if (n == 0) {
		if (r->flags & N_EMPTY_OK)
			return true;
		snprintf(why, cap, "it is empty");
		return false;
	}
	if (n > r->max) {
		snprintf(why, cap, "it is %zu characters long, the limit is %zu", n, r->max);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (is_alnum((char)ch, r->flags) || ch == '-' ||
		    (ch == '_' && (r->flags & N_UNDERSCORE)))
			continue;
		if (ch == '.' && (r->flags & N_DOT)) {
			/* "a..b", "a.-b", "a-.b": Kubernetes' subdomain regex
			 * wants alphanumerics on both sides of every dot. The
			 * first and last byte are left to the checks below. */
			if (!(r->flags & N_DOT_PARTS) || i == 0 || i == n - 1)
				continue;
			if (!is_lower_alnum(s[i - 1])) {
				snprintf(why, cap,
				         "'.' at offset %zu must be preceded by a letter or digit",
				         i);
				return false;
			}
			if (!is_lower_alnum(s[i + 1])) {
				snprintf(why, cap,
				         "'.' at offset %zu must be followed by a letter or digit",
				         i);
				return false;
			}
			continue;
		}
		if (ch >= 'A' && ch <= 'Z')
			snprintf(why, cap, "uppercase letter '%c' at offset %zu", ch, i);
		else if (ch >= 0x80)
			snprintf(why, cap, "non-ASCII byte 0x%02x at offset %zu", ch, i);
		else if (ch < 0x20 || ch == 0x7f)
			snprintf(why, cap, "byte 0x%02x at offset %zu (allowed: %s)", ch, i,
			         r->allowed);
		else
			snprintf(why, cap, "character '%c' at offset %zu (allowed: %s)", ch, i,
			         r->allowed);
		return false;
	}
	if ((r->flags & N_LETTER_FIRST) && !(s[0] >= 'a' && s[0] <= 'z')) {
		snprintf(why, cap, "it must start with a letter");
		return false;
	}
	if (!is_alnum(s[0], r->flags)) {
		snprintf(why, cap, "it must start with a letter or digit");
		return false;
	}
	if (!is_alnum(s[n - 1], r->flags)) {
		snprintf(why, cap, "it must end with a letter or digit");
		return false;
	}
	return true;
}

/* ---- kinds ---- */

struct kind_info {
	enum target_kind kind;
	const char *path; /* path prefix, also target_kind_name() */
	const char *json; /* key of the JSON object form */
	const struct name_rule *rule;
};

/* Indexed by enum target_kind. */
static const struct kind_info kinds[] = {
        [TARGET_NONE] = {TARGET_NONE, "targetless", NULL, NULL},
        [TARGET_POD] = {TARGET_POD, "pod", "pod", &rule_subdomain},
        [TARGET_DEPLOYMENT] = {TARGET_DEPLOYMENT, "deployment", "deployment", &rule_subdomain},
        [TARGET_ROLLOUT] = {TARGET_ROLLOUT, "rollout", "rollout", &rule_subdomain},
        [TARGET_STATEFULSET] = {TARGET_STATEFULSET, "statefulset", "stateful_set", &rule_subdomain},
        [TARGET_JOB] = {TARGET_JOB, "job", "job", &rule_subdomain},
        [TARGET_CRONJOB] = {TARGET_CRONJOB, "cronjob", "cron_job", &rule_cronjob},
        [TARGET_REPLICASET] = {TARGET_REPLICASET, "replicaset", "replica_set", &rule_subdomain},
        [TARGET_SERVICE] = {TARGET_SERVICE, "service", "service", &rule_dns1035_label},
        [TARGET_LABEL] = {TARGET_LABEL, "label", "labels", NULL},
};

static bool token_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Path prefix → kind; "targetless" is not a prefix. */
static const struct kind_info *kind_by_path(const char *s, size_t n)
{
	if (token_is(s, n, "deploy"))
		return &kinds[TARGET_DEPLOYMENT];
	for (size_t i = TARGET_POD; i < ARRAY_SIZE(kinds); i++)
		if (token_is(s, n, kinds[i].path))
			return &kinds[i];
	return NULL;
}

static const struct kind_info *kind_by_json(const char *s, size_t n)
{
	for (size_t i = TARGET_POD; i < ARRAY_SIZE(kinds); i++)
		if (token_is(s, n, kinds[i].json))
			return &kinds[i];
	return NULL;
}

/* Spellings people carry over from kubectl (short names, plurals) or from
 * the other form (JSON keys in a path and path kinds in JSON). Only used
 * for a "did you mean" hint; none of them is accepted. */
static const struct {
	const char *word, *path, *json;
} kind_hints[] = {
        {"po", "pod", "pod"},
        {"pods", "pod", "pod"},
        {"deploy", "deployment", "deployment"},
        {"deployments", "deployment", "deployment"},
        {"ro", "rollout", "rollout"},
        {"rollouts", "rollout", "rollout"},
        {"sts", "statefulset", "stateful_set"},
        {"statefulsets", "statefulset", "stateful_set"},
        {"stateful_set", "statefulset", "stateful_set"},
        {"statefulset", "statefulset", "stateful_set"},
        {"jobs", "job", "job"},
        {"cj", "cronjob", "cron_job"},
        {"cronjobs", "cronjob", "cron_job"},
        {"cron_job", "cronjob", "cron_job"},
        {"cronjob", "cronjob", "cron_job"},
        {"rs", "replicaset", "replica_set"},
        {"replicasets", "replicaset", "replica_set"},
        {"replica_set", "replicaset", "replica_set"},
        {"replicaset", "replicaset", "replica_set"},
        {"svc", "service", "service"},
        {"services", "service", "service"},
        {"labels", "label", "labels"},
        {"label", "label", "labels"},
};

/* A kind the user probably meant by s[0..n), or NULL. Case-insensitive,
 * so "Pod" and "SVC" get a hint too. */
static const char *kind_hint(const char *s, size_t n, bool json)
{
	for (size_t i = 0; i < ARRAY_SIZE(kind_hints); i++)
		if (strlen(kind_hints[i].word) == n && strncasecmp(s, kind_hints[i].word, n) == 0)
			return json ? kind_hints[i].json : kind_hints[i].path;
	for (size_t i = TARGET_POD; i < ARRAY_SIZE(kinds); i++) {
		const char *w = json ? kinds[i].json : kinds[i].path;
		if (strlen(w) == n && strncasecmp(s, w, n) == 0)
			return w;
	}
	return NULL;
}

/* ---- errors ---- */

/* s[0..n) as a double-quoted C-like string literal: '"' and '\' escaped,
 * control and non-ASCII bytes as \xNN, cut at ECHO_MAX bytes with "...". */
static char *quote(const char *s, size_t n)
{
	size_t echo = n > ECHO_MAX ? ECHO_MAX : n;
	char *buf = xmalloc(echo * 4 + sizeof("\"\"..."));
	char *p = buf;

	*p++ = '"';
	for (size_t i = 0; i < echo; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			*p++ = '\\';
			*p++ = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			static const char hex[] = "0123456789abcdef";
			*p++ = '\\';
			*p++ = 'x';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		} else {
			*p++ = (char)ch;
		}
	}
	*p++ = '"';
	if (echo < n) {
		memcpy(p, "...", 3);
		p += 3;
	}
	*p = '\0';
	return buf;
}

/* What is being parsed, for the error's head: a path string (echoed), or
 * a JSON value (the config loader adds the file and line). */
struct pctx {
	const char *input; /* NULL for JSON */
	size_t len;
	char **ret_err;
};

MT_PRINTF(2, 3) static int failf(const struct pctx *c, const char *fmt, ...)
{
	_cleanup_free_ char *reason = NULL;
	va_list ap;

	if (!c->ret_err)
		return -EINVAL;
	va_start(ap, fmt);
	if (vasprintf(&reason, fmt, ap) < 0)
		abort(); /* OOM policy: the CLI aborts */
	va_end(ap);
	if (c->input) {
		_cleanup_free_ char *q = quote(c->input, c->len);
		*c->ret_err =
		        xasprintf("invalid target %s: %s; accepted: %s", q, reason, PATH_ACCEPTED);
	} else {
		*c->ret_err = xasprintf("invalid target: %s; accepted: %s", reason, JSON_ACCEPTED);
	}
	return -EINVAL;
}

/* "<what> "<s>"<of> is not a <rule>: <why>", e.g.
 * `prefix "Ex.com" of label key "Ex.com/app" is not a DNS-1123 subdomain:
 * uppercase letter 'E' at offset 0`. */
static int check(const struct pctx *c, const char *what, const char *s, size_t n, const char *of,
                 const struct name_rule *r)
{
	char why[WHY_MAX];

	if (name_ok(s, n, r, why, sizeof(why)))
		return 0;
	_cleanup_free_ char *q = quote(s, n);
	return failf(c, "%s %s%s is not a %s: %s", what, q, of, r->desc, why);
}

/* ---- model helpers ---- */

void target_free(struct target *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->container);
	for (size_t i = 0; i < t->nlabels; i++) {
		free(t->labels[i].key);
		free(t->labels[i].value);
	}
	free(t->labels);
	*t = (struct target){.kind = TARGET_NONE};
}

static void label_add(struct target *t, const char *k, size_t kn, const char *v, size_t vn)
{
	/* Grows by one: selectors hold a handful of labels, and the input
	 * length (TARGET_STRING_MAX) bounds their number. */
	t->labels = xrealloc(t->labels, (t->nlabels + 1) * sizeof(*t->labels));
	t->labels[t->nlabels++] = (struct target_label){xstrndup(k, kn), xstrndup(v, vn)};
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct target_label *)a)->key, ((const struct target_label *)b)->key);
}

/* Sort labels by key (the canonical order, as mirrord's BTreeMap) and
 * refuse duplicates: "app=a,app=b" would select nothing, silently. */
static int labels_finish(const struct pctx *c, struct target *t)
{
	qsort(t->labels, t->nlabels, sizeof(*t->labels), label_cmp);
	for (size_t i = 1; i < t->nlabels; i++)
		if (strcmp(t->labels[i - 1].key, t->labels[i].key) == 0) {
			_cleanup_free_ char *q = quote(t->labels[i].key, strlen(t->labels[i].key));
			return failf(c, "duplicate label key %s", q);
		}
	return 0;
}

/* A label key (IsQualifiedName) and its value (IsValidLabelValue). */
static int check_label(const struct pctx *c, const char *k, size_t kn, const char *v, size_t vn)
{
	_cleanup_free_ char *qk = quote(k, kn);
	_cleanup_free_ char *of_key = xasprintf(" of label key %s", qk);
	_cleanup_free_ char *of_label = xasprintf(" of label %s", qk);
	const char *slash = memchr(k, '/', kn);
	int r;

	if (kn == 0)
		return failf(c, c->input ? "empty label key before \"=\"" : "empty label key");
	if (slash) {
		size_t pn = (size_t)(slash - k);
		const char *name = slash + 1;
		size_t nn = kn - pn - 1;

		if (pn == 0)
			return failf(c, "label key %s has an empty prefix before \"/\"", qk);
		if (memchr(name, '/', nn))
			return failf(c, "label key %s has more than one \"/\"", qk);
		if (nn == 0)
			return failf(c, "label key %s has an empty name after \"/\"", qk);
		r = check(c, "prefix", k, pn, of_key, &rule_subdomain);
		if (r < 0)
			return r;
		r = check(c, "name", name, nn, of_key, &rule_label_name);
	} else {
		r = check(c, "label key", k, kn, "", &rule_label_name);
	}
	if (r < 0)
		return r;
	return check(c, "value", v, vn, of_label, &rule_label_value);
}

/* ---- the path grammar ---- */

static const char *end_of_part(const char *s)
{
	const char *e = strchr(s, '/');
	return e ? e : s + strlen(s);
}

/* p points at the '/' that ends a name or a label selector; the only thing
 * allowed there is "/container/<c>" and nothing after it. */
static int parse_tail(const struct pctx *c, const char *p, const char *after, char **ret_container)
{
	const char *seg = p + 1, *seg_end, *cn, *cn_end;
	int r;

	if (*seg == '\0')
		return failf(c, "trailing \"/\" after the %s", after);
	seg_end = end_of_part(seg);
	if (!token_is(seg, (size_t)(seg_end - seg), "container")) {
		_cleanup_free_ char *q = quote(p, strlen(p));
		return failf(c, "after the %s only \"/container/<c>\" may follow, not %s", after,
		             q);
	}
	if (*seg_end == '\0')
		return failf(c, "missing the container name after \"/container\"");
	cn = seg_end + 1;
	cn_end = end_of_part(cn);
	if (cn_end == cn)
		return failf(c, "empty container name after \"/container/\"");
	r = check(c, "container name", cn, (size_t)(cn_end - cn), "", &rule_dns1123_label);
	if (r < 0)
		return r;
	if (*cn_end != '\0') {
		if (cn_end[1] == '\0')
			return failf(c, "trailing \"/\" after the container name");
		_cleanup_free_ char *q = quote(cn_end, strlen(cn_end));
		return failf(c, "nothing may follow the container name, not %s", q);
	}
	*ret_container = xstrndup(cn, (size_t)(cn_end - cn));
	return 0;
}

/* "k=v[,k=v...][/container/<c>]" after "label/". Keys may contain one '/'
 * (a prefix), values never do, so the selector ends at the first '/' after
 * a '='. mirrord splits at the last "/container/" instead; both read every
 * valid selector the same way. */
static int parse_labels(const struct pctx *c, const char *s, struct target *t)
{
	const char *p = s;

	if (*p == '\0')
		return failf(c, "no labels after \"label/\"");
	for (;;) {
		const char *item = p, *eq = p, *v, *v_end;
		int r;

		while (*eq && *eq != '=' && *eq != ',')
			eq++;
		if (*eq != '=') {
			if (eq == item)
				return failf(c, "empty label in the selector (stray \",\")");
			_cleanup_free_ char *q = quote(item, (size_t)(eq - item));
			return failf(c, "label %s has no \"=<value>\"", q);
		}
		v = eq + 1;
		v_end = v;
		while (*v_end && *v_end != ',' && *v_end != '/')
			v_end++;
		r = check_label(c, item, (size_t)(eq - item), v, (size_t)(v_end - v));
		if (r < 0)
			return r;
		label_add(t, item, (size_t)(eq - item), v, (size_t)(v_end - v));
		if (*v_end == ',') {
			p = v_end + 1;
			continue;
		}
		if (*v_end == '/') {
			r = parse_tail(c, v_end, "labels", &t->container);
			if (r < 0)
				return r;
		}
		break;
	}
	return labels_finish(c, t);
}

/* No '/' at all: "targetless" was handled, so this is a kind without a
 * name, or a name without a kind. */
static int parse_bare(const struct pctx *c, const char *s, size_t n)
{
	char why[WHY_MAX];
	const struct kind_info *k = kind_by_path(s, n);

	if (k && k->kind == TARGET_LABEL)
		return failf(c, "missing \"/<k>=<v>\" after \"label\"");
	if (k) {
		_cleanup_free_ char *q = quote(s, n);
		return failf(c, "missing \"/<name>\" after %s", q);
	}
	if (n == strlen("targetless") && strncasecmp(s, "targetless", n) == 0)
		return failf(c, "not a target (did you mean \"targetless\"?)");
	/* mirrord's own hint: "Did you remember to add a prefix, e.g.
	 * pod/X?". Only offered when pod/X would be valid. */
	if (name_ok(s, n, &rule_subdomain, why, sizeof(why)))
		return failf(c, "missing the kind prefix (did you mean pod/%s?)", s);
	return failf(c, "not a target: no \"<kind>/\" prefix");
}

int target_parse(const char *s, struct target *ret, char **ret_err)
{
	_cleanup_(target_free) struct target t = {.kind = TARGET_NONE};
	size_t len = strnlen(s, TARGET_STRING_MAX + 1);
	struct pctx c = {s, len, ret_err};
	const struct kind_info *k;
	const char *slash, *name, *name_end;
	int r;

	if (len > TARGET_STRING_MAX)
		return failf(&c, "longer than %d bytes", TARGET_STRING_MAX);
	if (len == 0)
		return failf(&c, "empty target");
	if (strcmp(s, "targetless") == 0) {
		*ret = (struct target){.kind = TARGET_NONE};
		return 0;
	}
	slash = strchr(s, '/');
	if (!slash)
		return parse_bare(&c, s, len);
	if (slash == s)
		return failf(&c, "empty kind before the first \"/\"");
	if (token_is(s, (size_t)(slash - s), "targetless"))
		return failf(&c, "nothing may follow \"targetless\"");
	k = kind_by_path(s, (size_t)(slash - s));
	if (!k) {
		_cleanup_free_ char *q = quote(s, (size_t)(slash - s));
		const char *hint = kind_hint(s, (size_t)(slash - s), false);
		if (hint)
			return failf(&c, "unknown kind %s (did you mean \"%s\"?)", q, hint);
		return failf(&c, "unknown kind %s", q);
	}
	t.kind = k->kind;
	if (k->kind == TARGET_LABEL) {
		r = parse_labels(&c, slash + 1, &t);
		if (r < 0)
			return r;
	} else {
		name = slash + 1;
		name_end = end_of_part(name);
		if (name_end == name) {
			_cleanup_free_ char *q = quote(s, (size_t)(name - s));
			return failf(&c, "empty name after %s", q);
		}
		_cleanup_free_ char *what = xasprintf("%s name", k->path);
		r = check(&c, what, name, (size_t)(name_end - name), "", k->rule);
		if (r < 0)
			return r;
		t.name = xstrndup(name, (size_t)(name_end - name));
		if (*name_end) {
			r = parse_tail(&c, name_end, "name", &t.container);
			if (r < 0)
				return r;
		}
	}
	*ret = t;
	t = (struct target){.kind = TARGET_NONE};
	return 0;
}

/* ---- the JSON forms ---- */

static const char *json_type_str(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	default:
		return "unknown";
	}
}

/* A JSON string usable as a C string: jansson keeps "\u0000" (with
 * JSON_ALLOW_NUL) and strlen() would silently cut the value there. */
static int json_str(const struct pctx *c, const char *field, const json_t *v, const char **ret)
{
	if (!json_is_string(v))
		return failf(c, "%s must be a string, got %s", field, json_type_str(v));
	if (strlen(json_string_value(v)) != json_string_length(v))
		return failf(c, "%s contains a NUL byte", field);
	*ret = json_string_value(v);
	return 0;
}

static int json_labels(const struct pctx *c, const json_t *obj, struct target *t)
{
	const char *key;
	size_t klen;
	json_t *val;

	if (!json_is_object(obj))
		return failf(c, "\"labels\" must be an object, got %s", json_type_str(obj));
	if (json_object_size(obj) == 0)
		return failf(c, "\"labels\" is empty (at least one label is required)");
	/* jansson's iteration macros take a non-const json_t; nothing is
	 * modified. */
	json_object_keylen_foreach((json_t *)obj, key, klen, val)
	{
		_cleanup_free_ char *qk = quote(key, klen);
		_cleanup_free_ char *field = xasprintf("value of label %s", qk);
		const char *v;
		int r;

		if (strlen(key) != klen)
			return failf(c, "label key %s contains a NUL byte", qk);
		r = json_str(c, field, val, &v);
		if (r < 0)
			return r;
		r = check_label(c, key, klen, v, strlen(v));
		if (r < 0)
			return r;
		label_add(t, key, klen, v, strlen(v));
	}
	return labels_finish(c, t);
}

static int json_object_target(const struct pctx *c, const json_t *v, struct target *t)
{
	const struct kind_info *kind = NULL;
	const json_t *kind_v = NULL, *container_v = NULL;
	const char *key, *kind_key = NULL;
	size_t klen;
	json_t *val;
	int r;

	json_object_keylen_foreach((json_t *)v, key, klen, val)
	{
		const struct kind_info *k = kind_by_json(key, klen);
		if (token_is(key, klen, "container")) {
			container_v = val;
		} else if (k) {
			if (kind)
				return failf(c, "both \"%s\" and \"%s\" given (exactly one kind)",
				             kind_key, k->json);
			kind = k;
			kind_key = k->json;
			kind_v = val;
		} else {
			_cleanup_free_ char *q = quote(key, klen);
			const char *hint = kind_hint(key, klen, true);
			if (hint)
				return failf(c, "unknown key %s (did you mean \"%s\"?)", q, hint);
			if (token_is(key, klen, "path") || token_is(key, klen, "namespace"))
				return failf(c,
				             "unknown key %s (\"path\" and \"namespace\" belong "
				             "in the enclosing \"target\" object)",
				             q);
			return failf(c, "unknown key %s", q);
		}
	}
	if (!kind)
		return failf(c, "no kind key in the object");

	t->kind = kind->kind;
	if (kind->kind == TARGET_LABEL) {
		r = json_labels(c, kind_v, t);
	} else {
		_cleanup_free_ char *field = xasprintf("\"%s\"", kind->json);
		_cleanup_free_ char *what = xasprintf("%s name", kind->path);
		const char *name;

		r = json_str(c, field, kind_v, &name);
		if (r < 0)
			return r;
		r = check(c, what, name, strlen(name), "", kind->rule);
		if (r < 0)
			return r;
		t->name = xstrdup(name);
	}
	if (r < 0)
		return r;
	/* mirrord's container is an Option<String>: null means unset. */
	if (container_v && !json_is_null(container_v)) {
		const char *cn;
		r = json_str(c, "\"container\"", container_v, &cn);
		if (r < 0)
			return r;
		r = check(c, "container name", cn, strlen(cn), "", &rule_dns1123_label);
		if (r < 0)
			return r;
		t->container = xstrdup(cn);
	}
	return 0;
}

int target_from_json(const json_t *v, struct target *ret, char **ret_err)
{
	_cleanup_(target_free) struct target t = {.kind = TARGET_NONE};
	struct pctx c = {NULL, 0, ret_err};
	const char *s;
	int r;

	if (!v)
		return failf(&c, "no value");
	switch (json_typeof(v)) {
	case JSON_STRING:
		r = json_str(&c, "the target string", v, &s);
		if (r < 0)
			return r;
		return target_parse(s, ret, ret_err);
	case JSON_NULL:
		/* "path": null is an unset Option in mirrord: targetless. */
		*ret = (struct target){.kind = TARGET_NONE};
		return 0;
	case JSON_OBJECT:
		r = json_object_target(&c, v, &t);
		if (r < 0)
			return r;
		*ret = t;
		t = (struct target){.kind = TARGET_NONE};
		return 0;
	case JSON_ARRAY:
	case JSON_INTEGER:
	case JSON_REAL:
	case JSON_TRUE:
	case JSON_FALSE:
	default:
		return failf(&c, "expected a string or an object, got %s", json_type_str(v));
	}
}

bool target_json_has_kind(const json_t *v)
{
	const char *key;
	size_t klen;
	json_t *val;

	if (!json_is_object(v))
		return false;
	json_object_keylen_foreach((json_t *)v, key, klen, val)
	{
		if (kind_by_json(key, klen))
			return true;
	}
	return false;
}

/* ---- output ---- */

const char *target_kind_name(enum target_kind k)
{
	switch (k) {
	case TARGET_NONE:
	case TARGET_POD:
	case TARGET_DEPLOYMENT:
	case TARGET_ROLLOUT:
	case TARGET_STATEFULSET:
	case TARGET_JOB:
	case TARGET_CRONJOB:
	case TARGET_REPLICASET:
	case TARGET_SERVICE:
	case TARGET_LABEL:
		return kinds[k].path;
	default:
		return NULL;
	}
}

json_t *target_to_json(const struct target *t)
{
	json_t *o;

	if (t->kind == TARGET_NONE)
		return json_string("targetless");
	o = json_object();
	if (t->kind == TARGET_LABEL) {
		json_t *labels = json_object();
		for (size_t i = 0; i < t->nlabels; i++)
			json_object_set_new(labels, t->labels[i].key,
			                    json_string(t->labels[i].value));
		json_object_set_new(o, kinds[TARGET_LABEL].json, labels);
		/* mirrord's LabelTarget skips an unset container; the
		 * others write null. */
		if (t->container)
			json_object_set_new(o, "container", json_string(t->container));
		return o;
	}
	json_object_set_new(o, kinds[t->kind].json, json_string(t->name));
	json_object_set_new(o, "container", t->container ? json_string(t->container) : json_null());
	return o;
}

static char *put(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

char *target_to_string(const struct target *t)
{
	const char *kind = target_kind_name(t->kind);
	size_t n = 0;
	char *buf, *p;

	if (!kind || t->kind == TARGET_NONE)
		return xstrdup("targetless");
	/* Two passes over the same pieces: measure, then copy. */
	n += strlen(kind) + 1;
	if (t->kind == TARGET_LABEL)
		for (size_t i = 0; i < t->nlabels; i++)
			n += strlen(t->labels[i].key) + 1 + strlen(t->labels[i].value) + 1;
	else
		n += t->name ? strlen(t->name) : 0;
	if (t->container)
		n += strlen("/container/") + strlen(t->container);

	p = buf = xmalloc(n + 1);
	p = put(p, kind);
	*p++ = '/';
	if (t->kind == TARGET_LABEL) {
		for (size_t i = 0; i < t->nlabels; i++) {
			if (i > 0)
				*p++ = ',';
			p = put(p, t->labels[i].key);
			*p++ = '=';
			p = put(p, t->labels[i].value);
		}
	} else if (t->name) {
		p = put(p, t->name);
	}
	if (t->container) {
		p = put(p, "/container/");
		p = put(p, t->container);
	}
	*p = '\0';
	return buf;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool target_equal(const struct target *a, const struct target *b)
{
	if (a->kind != b->kind || !str_eq(a->name, b->name) ||
	    !str_eq(a->container, b->container) || a->nlabels != b->nlabels)
		return false;
	for (size_t i = 0; i < a->nlabels; i++)
		if (!str_eq(a->labels[i].key, b->labels[i].key) ||
		    !str_eq(a->labels[i].value, b->labels[i].value))
			return false;
	return true;
}
