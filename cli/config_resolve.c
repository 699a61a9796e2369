/* Resolving the configuration: read the file (after templating), walk it
 * against the field table, then take each field from flag > variable >
 * file > default, and check what only makes sense across fields. */
#include "cli/config_internal.h"
#include "cli/config_value.h"
#include "cli/env_mapping.h"
#include "cli/target.h"
#include "common/util.h"
#include "syscalls/fs_policy.h"
#include "syscalls/net_filter.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* Objects the walker descends into, and how a non-object value of a
 * "toggleable" section is read (mirrord-behaviour.md §1.1). */
enum toggle { TG_NONE, TG_TARGET, TG_ENV, TG_FS, TG_NET, TG_IN, TG_OUT, TG_DNS };

static const struct section {
	const char *path;
	enum toggle toggle;
} sections[] = {
        {"target", TG_TARGET},
        {"agent", TG_NONE},
        {"agent.dns", TG_NONE},
        {"feature", TG_NONE},
        {"feature.env", TG_ENV},
        {"feature.fs", TG_FS},
        {"feature.network", TG_NET},
        {"feature.network.incoming", TG_IN},
        {"feature.network.incoming.http_filter", TG_NONE},
        {"feature.network.outgoing", TG_OUT},
        {"feature.network.dns", TG_DNS},
        {"mirrord_trace", TG_NONE},
};

/* What the file says about one field. */
struct file_val {
	json_t *v; /* owned reference */
	unsigned line, col;
};

struct resolver {
	const struct config_input *in;
	struct config *cfg;
	struct config_errors *errs;
	struct config_doc doc;
	bool have_doc;
	struct file_val file[CF__COUNT];
	/* Where each resolved value was set, for cross-field messages. */
	char *origin[CF__COUNT];
	unsigned line[CF__COUNT], col[CF__COUNT];
};

static config_kube_namespace_fn kube_namespace_hook;

void config_set_kube_namespace_hook(config_kube_namespace_fn fn)
{
	kube_namespace_hook = fn;
}

const char *config_source_name(enum config_source s)
{
	switch (s) {
	case CONFIG_SRC_FLAG:
		return "flag";
	case CONFIG_SRC_ENV:
		return "env";
	case CONFIG_SRC_FILE:
		return "file";
	case CONFIG_SRC_KUBECONFIG:
		return "kubeconfig";
	case CONFIG_SRC_DEFAULT:
	default:
		return "default";
	}
}

/* ---- variables: flags first (the override map), then the environment -- */

static const char *envp_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);

	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* An empty variable counts as unset (MIRRORD_IMPERSONATED_TARGET= in a CI
 * script must not mean "target the empty string"). */
static const char *lookup(const struct resolver *r, const char *name, enum config_source *src,
                          const char **flag)
{
	const char *v;

	for (size_t i = r->in->noverrides; i-- > 0;)
		if (strcmp(r->in->overrides[i].name, name) == 0) {
			*src = CONFIG_SRC_FLAG;
			*flag = r->in->overrides[i].flag;
			return r->in->overrides[i].value;
		}
	v = envp_get(r->in->envp, name);
	if (v && *v) {
		*src = CONFIG_SRC_ENV;
		*flag = NULL;
		return v;
	}
	return NULL;
}

static const char *tmpl_getenv(void *data, const char *name)
{
	const struct resolver *r = data;
	return envp_get(r->in->envp, name);
}

/* ---- reading the file --------------------------------------------------- */

static int read_all(int fd, char **ret, size_t *ret_len)
{
	size_t cap = 4096, len = 0;
	char *buf = xmalloc(cap);

	for (;;) {
		if (len == cap) {
			if (cap > CONFIG_MAX_FILE) {
				free(buf);
				return -EFBIG;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			free(buf);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > CONFIG_MAX_FILE) {
		free(buf);
		return -EFBIG;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static char *random_key(void)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char raw[10];
	char key[sizeof(raw) + 1];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		for (size_t i = 0; i < sizeof(raw); i++)
			raw[i] = (unsigned char)((now_ns() >> (i * 3)) ^ (uint64_t)getpid());
	for (size_t i = 0; i < sizeof(raw); i++)
		key[i] = alphabet[raw[i] % (sizeof(alphabet) - 1)];
	key[sizeof(raw)] = '\0';
	return xstrdup(key);
}

/* The session key, before the file is rendered: -k / MIRRORD_KEY, else the
 * file's own root `key` (rendered alone first, as mirrord does), else a
 * random one. */
static void resolve_key(struct resolver *r, const char *text, size_t len, enum config_format fmt,
                        const char *name)
{
	const struct config_field_info *f = &config_fields[CF_KEY];
	enum config_source src;
	const char *flag;
	const char *v = lookup(r, f->env, &src, &flag);
	struct config_value *cv = &r->cfg->v[CF_KEY];

	if (v) {
		cv->value = json_string(v);
		cv->source = src;
		return;
	}
	if (text) {
		struct config_errors ignored = {0};
		struct config_doc raw;
		if (config_doc_parse(text, len, fmt, name, &raw, &ignored) == 0) {
			json_t *k = json_object_get(raw.root, "key");
			struct config_template_ctx ctx = {NULL, tmpl_getenv, r,
			                                  r->in->no_git ? NULL : config_git_branch};
			char *out;
			size_t olen;
			if (json_is_string(k) &&
			    config_render(json_string_value(k), json_string_length(k), &ctx, name,
			                  &out, &olen, &ignored) == 0) {
				cv->value = json_stringn(out, olen);
				cv->source = CONFIG_SRC_FILE;
				free(out);
			}
		}
		config_doc_free(&raw);
		config_errors_clear(&ignored);
		if (cv->value)
			return;
	}
	char *k = random_key();
	cv->value = json_string(k);
	cv->source = CONFIG_SRC_DEFAULT;
	free(k);
}

/* Render the templates, then parse. */
static int load_text(struct resolver *r, const char *text, size_t len, enum config_format fmt,
                     const char *name)
{
	_cleanup_free_ char *rendered = NULL;
	size_t rlen = 0;
	int e;

	resolve_key(r, text, len, fmt, name);
	struct config_template_ctx ctx = {json_string_value(r->cfg->v[CF_KEY].value), tmpl_getenv,
	                                  r, r->in->no_git ? NULL : config_git_branch};
	e = config_render(text, len, &ctx, name, &rendered, &rlen, r->errs);
	if (e < 0)
		return e;
	e = config_doc_parse(rendered, rlen, fmt, name, &r->doc, r->errs);
	r->have_doc = true;
	return e;
}

static int load_file(struct resolver *r)
{
	enum config_source src;
	const char *flag;
	const char *path = lookup(r, "MIRRORD_CONFIG_FILE", &src, &flag);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	enum config_format fmt = CONFIG_FMT_JSON;
	bool from_stdin;
	int e;

	if (!path) {
		resolve_key(r, NULL, 0, fmt, NULL);
		return 0;
	}
	r->cfg->v[CF_CONFIG_FILE] = (struct config_value){json_string(path), src};
	from_stdin = strcmp(path, "-") == 0;
	const char *name = from_stdin ? "<stdin>" : path;
	r->cfg->file = xstrdup(name);
	if (!from_stdin && config_format_from_path(path, &fmt) < 0) {
		config_errors_add(r->errs, NULL, name, 0, 0, NULL,
		                  "unsupported config file extension; use .json, .yaml, .yml or "
		                  ".toml (no extension means JSON)");
		resolve_key(r, NULL, 0, fmt, NULL);
		return -EINVAL;
	}
	if (from_stdin) {
		e = read_all(STDIN_FILENO, &text, &len);
	} else {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		e = fd < 0 ? -errno : read_all(fd, &text, &len);
		if (fd >= 0)
			close(fd);
	}
	if (e < 0) {
		config_errors_add(r->errs, NULL, name, 0, 0, NULL,
		                  "cannot read the config file: %s",
		                  e == -EFBIG ? "larger than 1 MiB" : strerror(-e));
		resolve_key(r, NULL, 0, fmt, NULL);
		return e;
	}
	return load_text(r, text, len, fmt, name);
}

/* ---- walking the file ----------------------------------------------------- */

static void set_file(struct resolver *r, enum config_field f, json_t *v, const char *at)
{
	struct file_val *fv = &r->file[f];

	json_decref(fv->v);
	fv->v = v;
	config_doc_locate(&r->doc, at, &fv->line, &fv->col);
}

static void file_error(struct resolver *r, const char *path, const char *msg)
{
	unsigned line, col;

	config_doc_locate(&r->doc, path, &line, &col);
	config_errors_add(r->errs, path, r->doc.name, line, col, NULL, "%s", msg);
}

/* A toggleable section written as a scalar: true/false or a mode string. */
static void apply_toggle(struct resolver *r, enum toggle t, json_t *v, const char *path)
{
	bool is_bool = json_is_boolean(v), on = json_is_true(v);

	switch (t) {
	case TG_TARGET:
		/* "target": "pod/x" is target.path. */
		if (json_is_string(v) || json_is_null(v)) {
			set_file(r, CF_TARGET_PATH, json_incref(v), path);
			return;
		}
		break;
	case TG_ENV:
		/* feature.env: false is exclude = "*": nothing fetched. */
		if (is_bool) {
			if (!on)
				set_file(r, CF_ENV_EXCLUDE, json_pack("[s]", "*"), path);
			return;
		}
		break;
	case TG_FS:
		if (is_bool || json_is_string(v)) {
			set_file(r, CF_FS_MODE,
			         is_bool ? json_string(on ? "read" : "local") : json_incref(v),
			         path);
			return;
		}
		break;
	case TG_NET:
		if (is_bool) {
			if (!on) {
				set_file(r, CF_IN_MODE, json_string("off"), path);
				set_file(r, CF_OUT_TCP, json_false(), path);
				set_file(r, CF_OUT_UDP, json_false(), path);
				set_file(r, CF_DNS_ENABLED, json_false(), path);
			}
			return;
		}
		break;
	case TG_IN:
		if (is_bool || json_is_string(v)) {
			set_file(r, CF_IN_MODE,
			         is_bool ? json_string(on ? "mirror" : "off") : json_incref(v),
			         path);
			return;
		}
		break;
	case TG_OUT:
		if (is_bool) {
			set_file(r, CF_OUT_TCP, json_boolean(on), path);
			set_file(r, CF_OUT_UDP, json_boolean(on), path);
			return;
		}
		break;
	case TG_DNS:
		if (is_bool) {
			set_file(r, CF_DNS_ENABLED, json_boolean(on), path);
			return;
		}
		break;
	case TG_NONE:
	default:
		break;
	}
	_cleanup_free_ char *msg =
	        xasprintf("expected %s, got %s",
	                  t == TG_NONE     ? "an object"
	                  : t == TG_TARGET ? "a target path string or an object {path, namespace}"
	                  : t == TG_FS     ? "true, false, a mode string or an object"
	                  : t == TG_IN ? "true, false, \"mirror\", \"steal\", \"off\" or an object"
	                               : "true, false or an object",
	                  json_is_object(v)   ? "an object"
	                  : json_is_array(v)  ? "an array"
	                  : json_is_string(v) ? "a string"
	                  : json_is_number(v) ? "a number"
	                  : json_is_null(v)   ? "null"
	                                      : "a boolean");
	file_error(r, path, msg);
}

static const struct section *find_section(const char *path)
{
	for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
		if (strcmp(sections[i].path, path) == 0)
			return &sections[i];
	return NULL;
}

static void walk(struct resolver *r, json_t *obj, const char *prefix)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v)
	{
		_cleanup_free_ char *path =
		        *prefix ? xasprintf("%s.%s", prefix, key) : xstrdup(key);
		const struct section *s;
		int f;

		/* Editors' schema hint: metadata, not a mirrord field. */
		if (!*prefix && strcmp(key, "$schema") == 0 && json_is_string(v))
			continue;
		/* {"target": {"pod": "x", "container": "c"}}: mirrord's
		 * TargetFileConfig is untagged, so a target object without
		 * path and namespace is read as the path itself. */
		if (!*prefix && strcmp(key, "target") == 0 && target_json_has_kind(v) &&
		    !json_object_get(v, "path") && !json_object_get(v, "namespace")) {
			set_file(r, CF_TARGET_PATH, json_incref(v), path);
			continue;
		}
		f = config_field_by_path(path);
		if (f >= 0 && f != CF_CONFIG_FILE) {
			set_file(r, (enum config_field)f, json_incref(v), path);
			continue;
		}
		s = find_section(path);
		if (!s) {
			file_error(r, path, "unknown field");
			continue;
		}
		if (json_is_object(v))
			walk(r, v, path);
		else
			apply_toggle(r, s->toggle, v, path);
	}
}

/* ---- per-field resolution ------------------------------------------------- */

static void resolve_field(struct resolver *r, enum config_field id)
{
	const struct config_field_info *f = &config_fields[id];
	struct config_value *cv = &r->cfg->v[id];
	enum config_source src = CONFIG_SRC_DEFAULT;
	const char *flag = NULL, *s = f->env ? lookup(r, f->env, &src, &flag) : NULL;
	_cleanup_free_ char *err = NULL;
	json_t *val = NULL;

	if (id == CF_KEY || id == CF_CONFIG_FILE)
		return; /* resolved before the file was read */
	if (s) {
		free(r->origin[id]);
		/* Flags are spelled as given ("-t") or by long name ("--target"). */
		r->origin[id] = !flag            ? xasprintf("%s (environment)", f->env)
		                : flag[0] == '-' ? xstrdup(flag)
		                                 : xasprintf("--%s", flag);
		if (config_value_from_string(f, s, &val, &err) < 0) {
			config_errors_add(r->errs, f->path, NULL, 0, 0, r->origin[id], "%s", err);
			return;
		}
		*cv = (struct config_value){val, src};
		return;
	}
	if (r->file[id].v) {
		r->line[id] = r->file[id].line;
		r->col[id] = r->file[id].col;
		if (config_value_from_json(f, r->file[id].v, &val, &err) < 0) {
			config_errors_add(r->errs, f->path, r->doc.name, r->line[id], r->col[id],
			                  NULL, "%s", err);
			return;
		}
		*cv = (struct config_value){val, CONFIG_SRC_FILE};
		return;
	}
	cv->value = f->def ? json_loads(f->def, JSON_DECODE_ANY, NULL) : NULL;
	cv->source = CONFIG_SRC_DEFAULT;
}

/* A problem with a field, added to list where the field was set. */
MT_PRINTF(4, 0)
static void field_report(struct resolver *r, struct config_errors *list, enum config_field id,
                         const char *fmt, va_list ap)
{
	_cleanup_free_ char *msg = NULL;
	bool file = r->cfg->v[id].source == CONFIG_SRC_FILE;

	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	config_errors_add(list, config_fields[id].path, file ? r->doc.name : NULL,
	                  file ? r->line[id] : 0, file ? r->col[id] : 0,
	                  file ? NULL : r->origin[id], "%s", msg);
}

/* A cross-field problem, reported where the field was set. */
MT_PRINTF(3, 4)
static void field_error(struct resolver *r, enum config_field id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	field_report(r, r->errs, id, fmt, ap);
	va_end(ap);
}

/* The same, as a warning. */
MT_PRINTF(3, 4)
static void field_warn(struct resolver *r, enum config_field id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	field_report(r, &r->cfg->warnings, id, fmt, ap);
	va_end(ap);
}

static bool is_set(const struct config *c, enum config_field id)
{
	return c->v[id].value && !json_is_null(c->v[id].value) &&
	       c->v[id].source != CONFIG_SRC_DEFAULT;
}

static char *default_namespace(const struct config *c, enum config_source *src)
{
	char *ns = NULL;

	if (kube_namespace_hook)
		ns = kube_namespace_hook(config_str(c, CF_KUBECONFIG),
		                         config_str(c, CF_KUBE_CONTEXT));
	if (ns) {
		*src = CONFIG_SRC_KUBECONFIG;
		return ns;
	}
	*src = CONFIG_SRC_DEFAULT;
	return xstrdup("default");
}

static char *join_list(const json_t *arr)
{
	char *s = NULL;
	size_t i;
	json_t *x;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return NULL;
	json_array_foreach(arr, i, x)
	{
		char *n = xasprintf("%s%s%s", s ? s : "", s ? ";" : "", json_string_value(x));
		free(s);
		s = n;
	}
	return s;
}

static void check_filter_object(struct resolver *r, enum config_field id)
{
	json_t *v = r->cfg->v[id].value, *x;
	const char *k;
	size_t n = 0;

	if (!json_is_object(v))
		return;
	json_object_foreach(v, k, x)
	{
		if (strcmp(k, "local") != 0 && strcmp(k, "remote") != 0) {
			field_error(r, id, "unknown field \"%s\" (expected local or remote)", k);
			return;
		}
		if (!json_is_array(x) && !json_is_string(x)) {
			field_error(r, id, "\"%s\" must be a string or an array of strings", k);
			return;
		}
		n++;
	}
	if (n != 1)
		field_error(r, id, "give exactly one of local or remote");
}

/* feature.network.incoming across its fields (mirrord-behaviour §1.7). */
static void check_incoming(struct resolver *r)
{
	struct config *c = r->cfg;
	static const enum config_field lists[] = {CF_IN_ALL_OF, CF_IN_ANY_OF};
	static const enum config_field pairs[] = {CF_IN_PORT_MAPPING, CF_IN_LISTEN_PORTS};
	const char *mode = config_str(c, CF_IN_MODE);
	json_t *x;
	size_t i;

	/* With --agent-addr the agent's own mode decides (a targetless agent
	 * refuses steal, and then listen() stays local with a notice). */
	if (c->targetless && !config_str(c, CF_MT_AGENT_ADDR) && mode && strcmp(mode, "steal") == 0)
		field_error(r, CF_IN_MODE,
		            "steal needs a target: a targetless session has no pod traffic to "
		            "take (use mirror, off, or set a target)");
	for (size_t k = 0; k < ARRAY_SIZE(lists); k++) {
		json_t *v = c->v[lists[k]].value;
		if (!json_is_array(v))
			continue;
		if (json_array_size(v) > 16 /* AP_MAX_FILTER_RULES */)
			field_error(r, lists[k], "at most %d rules", 16 /* AP_MAX_FILTER_RULES */);
		json_array_foreach(v, i, x)
		{
			const char *key;
			json_t *pat;
			size_t n = 0;
			bool ok = json_is_object(x);
			json_object_foreach(ok ? x : NULL, key, pat)
			{
				n++;
				if ((strcmp(key, "header") && strcmp(key, "path") &&
				     strcmp(key, "method")) ||
				    !json_is_string(pat) || json_string_length(pat) == 0)
					ok = false;
			}
			if (!ok || n != 1)
				field_error(r, lists[k],
				            "element %zu must be one of {\"header\": REGEX}, "
				            "{\"path\": REGEX} or {\"method\": NAME}",
				            i);
		}
	}
	/* port_mapping is a bimap, listen_ports a map: no port twice. */
	for (size_t k = 0; k < ARRAY_SIZE(pairs); k++) {
		json_t *v = c->v[pairs[k]].value;
		for (size_t a = 0; json_is_array(v) && a < json_array_size(v); a++) {
			for (size_t b = a + 1; b < json_array_size(v); b++) {
				json_t *pa = json_array_get(v, a), *pb = json_array_get(v, b);
				for (int col = 0; col < (pairs[k] == CF_IN_PORT_MAPPING ? 2 : 1);
				     col++)
					if (json_integer_value(json_array_get(pa, col)) ==
					    json_integer_value(json_array_get(pb, col)))
						field_error(r, pairs[k], "port %lld appears twice",
						            (long long)json_integer_value(
						                    json_array_get(pa, col)));
			}
		}
	}
}

/* A {local|remote: [...]} filter (after check_filter_object) in the
 * outgoing filter's grammar: a bad entry is an error naming it. NULL when
 * the field is unset or not one list. */
static struct net_filter *parse_filter(struct resolver *r, enum config_field id)
{
	json_t *v = r->cfg->v[id].value, *list, *x;
	struct net_filter *f = NULL;
	const char *side;
	size_t i;

	if (!json_is_object(v) || json_object_size(v) != 1)
		return NULL;
	json_object_foreach(v, side, list)
	{
		json_t *one = json_is_string(list) ? json_pack("[O]", list) : json_incref(list);
		f = xcalloc(1, sizeof(*f));
		f->remote = strcmp(side, "remote") == 0;
		json_array_foreach(one, i, x)
		{
			if (!json_is_string(x) || net_filter_add(f, json_string_value(x)) < 0)
				field_error(r, id,
				            "%s entry %zu (%s) is not [tcp://|udp://|any://]"
				            "[name|IPv4|[IPv6]][/prefix][:port]",
				            side, i + 1,
				            json_is_string(x) ? json_string_value(x)
				                              : "not a string");
		}
		json_decref(one);
	}
	return f;
}

/* feature.network.outgoing.filter into c->out_filter: a host name entry is
 * kept but can never match, which a warning says. */
static void parse_out_filter(struct resolver *r)
{
	struct net_filter *f = parse_filter(r, CF_OUT_FILTER);
	const char *name = f ? net_filter_has_names(f) : NULL;

	if (name)
		field_warn(r, CF_OUT_FILTER,
		           "host name entries (\"%s\") never match: mirrord-trace does not "
		           "see which name the program resolved; give the addresses or "
		           "subnets",
		           name);
	r->cfg->out_filter = f;
}

/* feature.network.dns.filter into c->dns_filter. The local DNS relays
 * apply it per query (session/dns_local.c), which decides what can be
 * checked: a warning (one each) for a filter that cannot act (DNS not
 * remote, an empty list), for addresses (numeric names are never looked
 * up) and for ports (a query does not say which port the program will
 * connect to: such a name entry matches on every port). */
static void parse_dns_filter(struct resolver *r)
{
	struct config *c = r->cfg;
	struct net_filter *f = parse_filter(r, CF_DNS_FILTER);
	const struct net_filter_rule *addr = NULL, *port = NULL;
	const char *side;

	if (!f)
		return;
	side = f->remote ? "remote" : "local";
	if (!config_bool(c, CF_DNS_ENABLED))
		field_warn(r, CF_DNS_FILTER,
		           "has no effect: names are resolved locally anyway "
		           "(feature.network.dns.enabled is false, or --no-remote-dns)");
	if (f->n == 0)
		field_warn(r, CF_DNS_FILTER, "the %s list is empty: every name is resolved %s",
		           side, f->remote ? "locally" : "by the pod");
	for (size_t i = 0; i < f->n; i++) {
		if (f->rules[i].family && !addr)
			addr = &f->rules[i];
		if (f->rules[i].port && !f->rules[i].family && !port)
			port = &f->rules[i];
	}
	if (addr)
		field_warn(r, CF_DNS_FILTER,
		           "%s entry %zu is an address or subnet: numeric names are never looked "
		           "up, so it never matches",
		           side, (size_t)(addr - f->rules) + 1);
	if (port)
		field_warn(r, CF_DNS_FILTER,
		           "%s entry %zu (\"%s:%u\") has a port: a DNS query does not say which "
		           "port the program will use, so it matches %s on every port",
		           side, (size_t)(port - f->rules) + 1, port->name ? port->name : "",
		           port->port, port->name ? "the name" : "every name");
	c->dns_filter = f;
}

/* The feature.fs patterns compile (PCRE2, as fs_policy.c uses them): one
 * error per bad pattern, before the program starts. */
static void check_fs_patterns(struct resolver *r)
{
	static const enum config_field lists[] = {CF_FS_READ_WRITE, CF_FS_READ_ONLY, CF_FS_LOCAL,
	                                          CF_FS_NOT_FOUND, CF_FS_MAPPING};
	json_t *v, *x;
	const char *key;
	size_t i;

	for (size_t k = 0; k < ARRAY_SIZE(lists); k++) {
		v = r->cfg->v[lists[k]].value;
		json_t *pats = json_is_object(v)   ? json_array() /* the keys */
		               : json_is_string(v) ? json_pack("[O]", v)
		               : json_is_array(v)  ? json_incref(v)
		                                   : NULL;
		json_object_foreach(json_is_object(v) ? v : NULL, key, x)
		        json_array_append_new(pats, json_string(key));
		json_array_foreach(pats, i, x)
		{
			_cleanup_free_ char *why = NULL;
			if (json_is_string(x) && fs_pattern_check(json_string_value(x), &why) < 0)
				field_error(r, lists[k],
				            "%s; give a PCRE2 regex (a backslash makes ( ) [ ] { } "
				            ". * + ? | ^ $ literal)",
				            why);
		}
		json_decref(pats);
	}
}

/* feature.env.mapping's patterns compile as cli/env_mapping.c uses them. */
static void check_env_mapping(struct resolver *r)
{
	struct env_mapping *m = NULL;
	_cleanup_free_ char *why = NULL;

	if (env_mapping_new(r->cfg->v[CF_ENV_MAPPING].value, &m, &why) < 0)
		field_error(
		        r, CF_ENV_MAPPING,
		        "%s; give a PCRE2 regex of variable names (a backslash makes ( ) [ ] { } "
		        ". * + ? | ^ $ literal)",
		        why);
	env_mapping_free(m);
}

static void check_cross(struct resolver *r)
{
	struct config *c = r->cfg;
	static const enum config_field http_kinds[] = {
	        CF_IN_HEADER_FILTER, CF_IN_PATH_FILTER, CF_IN_METHOD_FILTER, CF_IN_HEADER_FILTER_JQ,
	        CF_IN_BODY_FILTER,   CF_IN_ALL_OF,      CF_IN_ANY_OF,
	};
	size_t nhttp = 0;

	if (is_set(c, CF_ENV_INCLUDE) && is_set(c, CF_ENV_EXCLUDE))
		field_error(r, CF_ENV_INCLUDE,
		            "include and exclude cannot be used together (also -s/"
		            "--override-env-vars-include and -x/--override-env-vars-exclude); keep "
		            "one of them");
	for (size_t i = 0; i < ARRAY_SIZE(http_kinds); i++) {
		json_t *v = c->v[http_kinds[i]].value;
		if (!is_set(c, http_kinds[i]))
			continue;
		nhttp++;
		if ((json_is_array(v) && json_array_size(v) == 0) ||
		    (json_is_string(v) && json_string_length(v) == 0))
			field_error(r, http_kinds[i], "must not be empty");
		if (nhttp == 2)
			field_error(
			        r, http_kinds[i],
			        "http_filter takes exactly one of header_filter, path_filter, "
			        "method_filter, header_filter_jq, body_filter, all_of and any_of");
	}
	if (is_set(c, CF_IN_PORTS) && is_set(c, CF_IN_IGNORE_PORTS))
		field_error(r, CF_IN_PORTS, "ports and ignore_ports cannot be used together");
	check_incoming(r);
	check_filter_object(r, CF_OUT_FILTER);
	parse_out_filter(r);
	check_filter_object(r, CF_DNS_FILTER);
	parse_dns_filter(r);
	check_fs_patterns(r);
	check_env_mapping(r);
	if (is_set(c, CF_AGENT_HTTP_DETECTION_TIMEOUT)) {
		json_int_t t = json_integer_value(c->v[CF_AGENT_HTTP_DETECTION_TIMEOUT].value);
		if (t < 1 || t > 3600)
			field_error(
			        r, CF_AGENT_HTTP_DETECTION_TIMEOUT,
			        "must be 1 to 3600 seconds (the agent's wait for the first HTTP "
			        "request head on a filtered port)");
	}
	if (json_is_true(c->v[CF_OPERATOR].value))
		field_error(r, CF_OPERATOR,
		            "mirrord-trace has no operator; remove the field or set it to false");
	if (c->targetless && json_is_true(c->v[CF_AGENT_EPHEMERAL].value))
		field_error(r, CF_AGENT_EPHEMERAL,
		            "an ephemeral agent needs a target; it cannot be used targetless");
}

static void warn_unimplemented(struct resolver *r)
{
	struct config *c = r->cfg;

	for (int id = 0; id < CF__COUNT; id++) {
		const struct config_field_info *f = &config_fields[id];
		const struct config_value *cv = &c->v[id];
		json_t *quiet;
		bool file = cv->source == CONFIG_SRC_FILE;

		if (f->impl == IMPL_YES || cv->source == CONFIG_SRC_DEFAULT ||
		    cv->source == CONFIG_SRC_KUBECONFIG || !cv->value)
			continue;
		/* TRACEPARENT and BAGGAGE are set by whatever traces the
		 * caller (a CI job, an instrumented shell): read, shown by
		 * verify-config, but nobody asked us for them. */
		if (cv->source == CONFIG_SRC_ENV && strncmp(f->env, "MIRRORD_", 8) != 0)
			continue;
		quiet = f->quiet ? json_loads(f->quiet, JSON_DECODE_ANY, NULL) : NULL;
		bool same = quiet && json_equal(quiet, cv->value);
		json_decref(quiet);
		if (same)
			continue;
		config_errors_add(
		        &c->warnings, f->path, file ? r->doc.name : NULL, file ? r->line[id] : 0,
		        file ? r->col[id] : 0, file ? NULL : r->origin[id], "%s: %s",
		        f->impl == IMPL_LATER ? "accepted but not implemented yet"
		                              : "accepted but has no effect in mirrord-trace",
		        f->note);
	}
}

/* agent.image (mirrord-behaviour.md §1.4): MIRRORD_AGENT_IMAGE or -i >
 * the file ("repo:tag", or {registry, tag}) > MIRRORD_AGENT_IMAGE_REGISTRY
 * and MIRRORD_AGENT_IMAGE_TAG > default. The two variables fill in only
 * the parts a {registry, tag} file value leaves out; the value then counts
 * as coming from the environment. */
static void image_parts_from_env(struct resolver *r)
{
	static const struct {
		const char *key, *env;
	} parts[] = {
	        {"registry", "MIRRORD_AGENT_IMAGE_REGISTRY"},
	        {"tag", "MIRRORD_AGENT_IMAGE_TAG"},
	};
	struct config_value *cv = &r->cfg->v[CF_AGENT_IMAGE];
	json_t *img;
	bool added = false;

	if (cv->source >= CONFIG_SRC_ENV || json_is_string(cv->value))
		return;
	img = json_is_object(cv->value) ? json_copy(cv->value) : json_object();
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		enum config_source src;
		const char *flag, *v = lookup(r, parts[i].env, &src, &flag);

		if (!v || json_object_get(img, parts[i].key))
			continue;
		_cleanup_free_ char *origin = xasprintf("%s (environment)", parts[i].env);
		json_t *part = json_string(v);
		if (!part) {
			config_errors_add(r->errs, config_fields[CF_AGENT_IMAGE].path, NULL, 0, 0,
			                  origin, "not valid UTF-8");
			continue;
		}
		json_object_set_new(img, parts[i].key, part);
		if (!added) {
			free(r->origin[CF_AGENT_IMAGE]);
			r->origin[CF_AGENT_IMAGE] = TAKE_PTR(origin);
		}
		added = true;
	}
	if (!added) {
		json_decref(img);
		return;
	}
	json_decref(cv->value);
	*cv = (struct config_value){img, CONFIG_SRC_ENV};
}

static void derive(struct resolver *r)
{
	struct config *c = r->cfg;
	const char *tp = config_str(c, CF_TARGET_PATH);
	enum config_source src;

	/* The target: no path, "targetless", or only a namespace → targetless. */
	c->targetless = true;
	if (tp && strcmp(tp, "targetless") != 0) {
		struct target t;
		if (target_parse(tp, &t, NULL) == 0) {
			c->target = xmalloc(sizeof(*c->target));
			*c->target = t;
			c->targetless = t.kind == TARGET_NONE;
		}
	}
	if (!c->v[CF_TARGET_NAMESPACE].value) {
		char *ns = default_namespace(c, &src);
		c->v[CF_TARGET_NAMESPACE] = (struct config_value){json_string(ns), src};
		free(ns);
	}
	c->target_namespace = config_str(c, CF_TARGET_NAMESPACE);
	bool ephemeral = json_is_true(c->v[CF_AGENT_EPHEMERAL].value);
	if (c->targetless || ephemeral) {
		/* The agent runs in the target namespace then (§1.4), or in
		 * the target pod itself. */
		if (is_set(c, CF_AGENT_NAMESPACE))
			field_warn(r, CF_AGENT_NAMESPACE,
			           "ignored for %s: the agent runs in the target namespace \"%s\"",
			           c->targetless ? "a targetless session" : "an ephemeral agent",
			           c->target_namespace);
		c->agent_namespace = c->target_namespace;
	} else {
		if (!c->v[CF_AGENT_NAMESPACE].value) {
			char *ns = default_namespace(c, &src);
			c->v[CF_AGENT_NAMESPACE] = (struct config_value){json_string(ns), src};
			free(ns);
		}
		c->agent_namespace = config_str(c, CF_AGENT_NAMESPACE);
	}

	image_parts_from_env(r);

	/* mirrord's legacy switches, weaker than MIRRORD_FILE_MODE and
	 * stronger than the file: OPS=true is write, RO_OPS=true read, both
	 * false local. */
	if (c->v[CF_FS_MODE].source < CONFIG_SRC_ENV) {
		const char *ops = envp_get(r->in->envp, "MIRRORD_FILE_OPS");
		const char *ro = envp_get(r->in->envp, "MIRRORD_FILE_RO_OPS");
		bool b_ops = false, b_ro = false;
		bool has_ops = ops && parse_bool(ops, &b_ops) == 0;
		bool has_ro = ro && parse_bool(ro, &b_ro) == 0;
		const char *m = b_ops                 ? "write"
		                : b_ro                ? "read"
		                : (has_ops || has_ro) ? "local"
		                                      : NULL;

		if (m) {
			json_decref(c->v[CF_FS_MODE].value);
			c->v[CF_FS_MODE] = (struct config_value){json_string(m), CONFIG_SRC_ENV};
		}
	}
	c->env_include_buf = join_list(c->v[CF_ENV_INCLUDE].value);
	c->env_exclude_buf = join_list(c->v[CF_ENV_EXCLUDE].value);
	c->env_include = c->env_include_buf;
	c->env_exclude = c->env_exclude_buf;
	c->outgoing_tcp = config_bool(c, CF_OUT_TCP);
	c->outgoing_udp = config_bool(c, CF_OUT_UDP);
	c->remote_dns = config_bool(c, CF_DNS_ENABLED);
	c->ignore_localhost = config_bool(c, CF_OUT_IGNORE_LOCALHOST);
	c->agent_addr = config_str(c, CF_MT_AGENT_ADDR);
	c->connect_timeout_ms = (int)json_integer_value(c->v[CF_MT_CONNECT_TIMEOUT].value) * 1000;
	if (log_parse_level(config_str(c, CF_MT_LOG_LEVEL), &c->log_level) < 0)
		c->log_level = LOG_WARN;
	c->trace_stacks = config_bool(c, CF_MT_TRACE_STACKS);
	/* mirrord's own switch for its progress output is honoured too. */
	const char *pm = envp_get(r->in->envp, "MIRRORD_PROGRESS_MODE");
	c->quiet = config_bool(c, CF_MT_QUIET) || (pm && !strcmp(pm, "off"));
	c->trace = config_bool(c, CF_MT_TRACE) || c->trace_stacks || c->log_level == LOG_TRACE;
	c->key = config_str(c, CF_KEY);
}

/* Messages in file order (jansson objects iterate in hash order), those
 * without a position (variables, flags) after them; stable. */
static void sort_errors(struct config_errors *l, size_t from)
{
	for (size_t i = from + 1; i < l->n; i++) {
		struct config_error e = l->v[i];
		uint64_t ke = e.line ? ((uint64_t)e.line << 32 | e.col) : UINT64_MAX;
		size_t j = i;
		while (j > from) {
			const struct config_error *p = &l->v[j - 1];
			uint64_t kp = p->line ? ((uint64_t)p->line << 32 | p->col) : UINT64_MAX;
			if (kp <= ke)
				break;
			l->v[j] = l->v[j - 1];
			j--;
		}
		l->v[j] = e;
	}
}

static int resolve(const struct config_input *in, const char *text, size_t len,
                   enum config_format fmt, struct config **ret, struct config_errors *errs)
{
	struct resolver r = {.in = in, .errs = errs};
	size_t nerr0 = errs->n;
	int e;

	r.cfg = xcalloc(1, sizeof(*r.cfg));
	if (text) {
		r.cfg->file = xstrdup("<text>");
		e = load_text(&r, text, len, fmt, "<text>");
	} else {
		e = load_file(&r);
	}
	if (e == 0 && r.doc.root)
		walk(&r, r.doc.root, "");
	for (int id = 0; id < CF__COUNT; id++)
		resolve_field(&r, (enum config_field)id);
	derive(&r);
	check_cross(&r);
	warn_unimplemented(&r);

	for (int id = 0; id < CF__COUNT; id++) {
		json_decref(r.file[id].v);
		free(r.origin[id]);
	}
	config_doc_free(&r.doc);
	sort_errors(errs, nerr0);
	sort_errors(&r.cfg->warnings, 0);
	if (errs->n > nerr0) {
		config_free(r.cfg);
		return -EINVAL;
	}
	*ret = r.cfg;
	return 0;
}

int config_resolve(const struct config_input *in, struct config **ret, struct config_errors *errs)
{
	return resolve(in, NULL, 0, CONFIG_FMT_JSON, ret, errs);
}

int config_resolve_text(const struct config_input *in, const char *text, size_t len,
                        enum config_format fmt, struct config **ret, struct config_errors *errs)
{
	return resolve(in, text, len, fmt, ret, errs);
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (int id = 0; id < CF__COUNT; id++)
		json_decref(c->v[id].value);
	if (c->target) {
		target_free(c->target);
		free(c->target);
	}
	net_filter_free(c->out_filter);
	free(c->out_filter);
	net_filter_free(c->dns_filter);
	free(c->dns_filter);
	free(c->env_include_buf);
	free(c->env_exclude_buf);
	free(c->file);
	config_errors_clear(&c->warnings);
	free(c);
}

json_t *config_get(const struct config *c, enum config_field f)
{
	return c->v[f].value;
}

const char *config_str(const struct config *c, enum config_field f)
{
	return json_string_value(c->v[f].value);
}

bool config_bool(const struct config *c, enum config_field f)
{
	return json_is_true(c->v[f].value);
}
