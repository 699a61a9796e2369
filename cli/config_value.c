/* One field's value: checking and converting what a file, a variable or a
 * flag says into the canonical JSON value that the resolved config holds.
 * Pure: no I/O. */
#include "cli/config_value.h"
#include "cli/target.h"
#include "common/util.h"

#include <string.h>
#include <sys/socket.h>

const struct config_field_info config_fields[CF__COUNT] = {
#define CONFIG_FIELD_INFO(id, path, type, env, def, impl, quiet, note) \
	[CF_##id] = {path, type, env, def, impl, quiet, note},
        CONFIG_FIELDS(CONFIG_FIELD_INFO)
#undef CONFIG_FIELD_INFO
};

int config_field_by_path(const char *path)
{
	for (int i = 0; i < CF__COUNT; i++)
		if (strcmp(config_fields[i].path, path) == 0)
			return i;
	return -1;
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
	default:
		return "null";
	}
}

static const char *const fs_modes[] = {"read", "write", "local", "localwithoverrides", NULL};
static const char *const in_modes[] = {"mirror", "steal", "off", NULL};
static const char *const pulls[] = {"IfNotPresent", "Always", "Never", NULL};
static const char *const concurrents[] = {"abort", "continue", "override", NULL};
static const char *const levels[] = {"error", "warn", "info", "debug", "trace", NULL};

static const char *const *choices(enum config_type t)
{
	switch (t) {
	case CT_FS_MODE:
		return fs_modes;
	case CT_IN_MODE:
		return in_modes;
	case CT_PULL:
		return pulls;
	case CT_CONCURRENT:
		return concurrents;
	case CT_LOG_LEVEL:
		return levels;
	case CT_BOOL:
	case CT_OBOOL:
	case CT_STR:
	case CT_U16:
	case CT_U32:
	case CT_STRLIST:
	case CT_PORTS:
	case CT_PAIRS:
	case CT_STRMAP:
	case CT_OBJ:
	case CT_ARR:
	case CT_ANY:
	case CT_TARGET:
	case CT_IMAGE:
	case CT_HOSTPORT:
	case CT_TIMEOUT:
	case CT_NSNAME:
	default:
		return NULL;
	}
}

static char *choice_list(const char *const *c)
{
	char *s = xstrdup("");
	for (size_t i = 0; c[i]; i++) {
		char *n = xasprintf("%s%s%s", s, i ? (c[i + 1] ? ", " : " or ") : "", c[i]);
		free(s);
		s = n;
	}
	return s;
}

static int check_choice(enum config_type t, const char *s, json_t **ret, char **err)
{
	const char *const *c = choices(t);

	for (size_t i = 0; c[i]; i++)
		if (strcmp(c[i], s) == 0) {
			*ret = json_string(s);
			return 0;
		}
	_cleanup_free_ char *list = choice_list(c);
	*err = xasprintf("\"%s\" is not one of %s", s, list);
	return -EINVAL;
}

/* DNS-1123 label: what Kubernetes accepts as a namespace name. */
static bool nsname_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && i > 0 && i < n - 1))
			return false;
	}
	return true;
}

static int check_port(json_int_t p, char **err)
{
	if (p < 0 || p > 65535) {
		*err = xasprintf("%lld is not a port (0-65535)", (long long)p);
		return -EINVAL;
	}
	return 0;
}

/* "A;B;;C" → ["A","B","C"] */
static json_t *split_list(const char *s)
{
	json_t *arr = json_array();

	for (const char *p = s; p && *p;) {
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len)
			json_array_append_new(arr, json_stringn(p, len));
		p = end ? end + 1 : NULL;
	}
	return arr;
}

static int target_value(const json_t *v, const char *s, json_t **ret, char **err)
{
	struct target t;
	int e = s ? target_parse(s, &t, err) : target_from_json(v, &t, err);

	if (e < 0)
		return e;
	char *canon = target_to_string(&t);
	*ret = json_string(canon);
	free(canon);
	target_free(&t);
	return 0;
}

int config_value_from_json(const struct config_field_info *f, json_t *v, json_t **ret, char **err)
{
	json_t *x;
	size_t i;
	const char *k;

	*ret = NULL;
	/* null is "unset" for optional values, as serde's Option reads it. */
	if (json_is_null(v) && f->type != CT_BOOL && f->type != CT_U16 && f->type != CT_U32 &&
	    f->type != CT_TIMEOUT)
		return 0;
	switch (f->type) {
	case CT_BOOL:
	case CT_OBOOL:
		if (!json_is_boolean(v))
			goto mismatch;
		*ret = json_incref(v);
		return 0;
	case CT_STR:
		if (!json_is_string(v))
			goto mismatch;
		*ret = json_incref(v);
		return 0;
	case CT_U16:
	case CT_U32:
	case CT_TIMEOUT: {
		json_int_t max = f->type == CT_U16   ? 65535
		                 : f->type == CT_U32 ? 4294967295LL
		                                     : 3600;
		json_int_t min = f->type == CT_TIMEOUT ? 1 : 0;
		if (!json_is_integer(v))
			goto mismatch;
		if (json_integer_value(v) < min || json_integer_value(v) > max) {
			*err = xasprintf("%lld is out of range (%lld-%lld)",
			                 (long long)json_integer_value(v), (long long)min,
			                 (long long)max);
			return -EINVAL;
		}
		*ret = json_incref(v);
		return 0;
	}
	case CT_STRLIST:
		if (json_is_string(v)) {
			*ret = split_list(json_string_value(v));
			return 0;
		}
		if (!json_is_array(v))
			goto mismatch;
		json_array_foreach(v, i, x) if (!json_is_string(x))
		{
			*err = xasprintf("element %zu is %s, expected a string", i, json_kind(x));
			return -EINVAL;
		}
		*ret = json_incref(v);
		return 0;
	case CT_PORTS:
		if (json_is_integer(v)) {
			if (check_port(json_integer_value(v), err) < 0)
				return -EINVAL;
			*ret = json_pack("[O]", v);
			return 0;
		}
		if (!json_is_array(v))
			goto mismatch;
		json_array_foreach(v, i, x)
		{
			if (!json_is_integer(x)) {
				*err = xasprintf("element %zu is %s, expected a port number", i,
				                 json_kind(x));
				return -EINVAL;
			}
			if (check_port(json_integer_value(x), err) < 0)
				return -EINVAL;
		}
		*ret = json_incref(v);
		return 0;
	case CT_PAIRS:
		if (!json_is_array(v))
			goto mismatch;
		json_array_foreach(v, i, x)
		{
			if (!json_is_array(x) || json_array_size(x) != 2 ||
			    !json_is_integer(json_array_get(x, 0)) ||
			    !json_is_integer(json_array_get(x, 1))) {
				*err = xasprintf("element %zu is not a [port, port] pair", i);
				return -EINVAL;
			}
			if (check_port(json_integer_value(json_array_get(x, 0)), err) < 0 ||
			    check_port(json_integer_value(json_array_get(x, 1)), err) < 0)
				return -EINVAL;
		}
		*ret = json_incref(v);
		return 0;
	case CT_STRMAP:
		if (!json_is_object(v))
			goto mismatch;
		json_object_foreach(v, k, x) if (!json_is_string(x))
		{
			*err = xasprintf("\"%s\" is %s, expected a string", k, json_kind(x));
			return -EINVAL;
		}
		*ret = json_incref(v);
		return 0;
	case CT_OBJ:
		if (!json_is_object(v))
			goto mismatch;
		*ret = json_incref(v);
		return 0;
	case CT_ARR:
		if (!json_is_array(v))
			goto mismatch;
		*ret = json_incref(v);
		return 0;
	case CT_ANY:
		*ret = json_incref(v);
		return 0;
	case CT_TARGET:
		return target_value(v, NULL, ret, err);
	case CT_IMAGE:
		if (json_is_string(v)) {
			*ret = json_incref(v);
			return 0;
		}
		if (!json_is_object(v))
			goto mismatch;
		json_object_foreach(v, k, x)
		{
			if (strcmp(k, "registry") != 0 && strcmp(k, "tag") != 0) {
				*err = xasprintf("unknown field \"%s\" (expected registry and tag)",
				                 k);
				return -EINVAL;
			}
			if (!json_is_string(x)) {
				*err = xasprintf("\"%s\" is %s, expected a string", k,
				                 json_kind(x));
				return -EINVAL;
			}
		}
		*ret = json_incref(v);
		return 0;
	case CT_FS_MODE:
	case CT_IN_MODE:
	case CT_PULL:
	case CT_CONCURRENT:
	case CT_LOG_LEVEL:
		if (!json_is_string(v))
			goto mismatch;
		return check_choice(f->type, json_string_value(v), ret, err);
	case CT_HOSTPORT:
	case CT_NSNAME:
		if (!json_is_string(v))
			goto mismatch;
		return config_value_from_string(f, json_string_value(v), ret, err);
	default:
		break;
	}
mismatch:
	*err = xasprintf("expected %s, got %s", config_type_desc(f->type), json_kind(v));
	return -EINVAL;
}

int config_value_from_string(const struct config_field_info *f, const char *s, json_t **ret,
                             char **err)
{
	bool b;
	uint64_t u;

	*ret = NULL;
	switch (f->type) {
	case CT_BOOL:
	case CT_OBOOL:
		if (parse_bool(s, &b) < 0) {
			*err = xasprintf("\"%s\" is not a boolean; use true or false", s);
			return -EINVAL;
		}
		*ret = json_boolean(b);
		return 0;
	case CT_STR:
	case CT_IMAGE:
		*ret = json_string(s);
		return *ret ? 0 : (*err = xstrdup("not valid UTF-8"), -EINVAL);
	case CT_U16:
	case CT_U32:
	case CT_TIMEOUT: {
		uint64_t max = f->type == CT_U16 ? 65535 : f->type == CT_U32 ? 4294967295ULL : 3600;
		if (parse_u64(s, max, &u) < 0 || (f->type == CT_TIMEOUT && u < 1)) {
			*err = xasprintf("\"%s\" is not a number between %d and %llu", s,
			                 f->type == CT_TIMEOUT ? 1 : 0, (unsigned long long)max);
			return -EINVAL;
		}
		*ret = json_integer((json_int_t)u);
		return 0;
	}
	case CT_STRLIST:
		*ret = split_list(s);
		return 0;
	case CT_PORTS: {
		json_t *arr = split_list(s), *x, *out = json_array();
		size_t i;
		json_array_foreach(arr, i, x)
		{
			if (parse_u64(json_string_value(x), 65535, &u) < 0) {
				*err = xasprintf("\"%s\" is not a port (0-65535)",
				                 json_string_value(x));
				json_decref(arr);
				json_decref(out);
				return -EINVAL;
			}
			json_array_append_new(out, json_integer((json_int_t)u));
		}
		json_decref(arr);
		*ret = out;
		return 0;
	}
	case CT_TARGET:
		return target_value(NULL, s, ret, err);
	case CT_FS_MODE:
		/* The flag is kebab-case (clap), the field is not. */
		if (strcmp(s, "local-with-overrides") == 0)
			s = "localwithoverrides";
		return check_choice(f->type, s, ret, err);
	case CT_IN_MODE:
		/* MIRRORD_AGENT_TCP_STEAL_TRAFFIC: true = steal, false = off. */
		if (strcmp(s, "true") == 0)
			s = "steal";
		else if (strcmp(s, "false") == 0)
			s = "off";
		return check_choice(f->type, s, ret, err);
	case CT_PULL:
	case CT_CONCURRENT:
	case CT_LOG_LEVEL:
		return check_choice(f->type, s, ret, err);
	case CT_HOSTPORT: {
		struct sockaddr_storage ss;
		unsigned len;
		if (parse_hostport(s, &ss, &len) < 0) {
			*err = xasprintf("\"%s\" is not HOST:PORT with a numeric IPv4 or [IPv6] "
			                 "address and a port 1-65535",
			                 s);
			return -EINVAL;
		}
		*ret = json_string(s);
		return 0;
	}
	case CT_NSNAME:
		if (!nsname_ok(s)) {
			*err = xasprintf("\"%s\" is not a valid namespace name (lowercase letters, "
			                 "digits and '-', at most 63, starting and ending with a "
			                 "letter or digit)",
			                 s);
			return -EINVAL;
		}
		*ret = json_string(s);
		return 0;
	case CT_PAIRS:
	case CT_STRMAP:
	case CT_OBJ:
	case CT_ARR:
	case CT_ANY:
	default:
		*err = xasprintf("cannot be set from a variable or flag");
		return -EINVAL;
	}
}

const char *config_type_desc(enum config_type t)
{
	switch (t) {
	case CT_BOOL:
		return "a boolean (true or false)";
	case CT_OBOOL:
		return "a boolean (true or false) or null";
	case CT_STR:
	case CT_HOSTPORT:
	case CT_NSNAME:
	case CT_FS_MODE:
	case CT_IN_MODE:
	case CT_PULL:
	case CT_CONCURRENT:
	case CT_LOG_LEVEL:
		return "a string";
	case CT_U16:
		return "an integer (0-65535)";
	case CT_U32:
		return "an integer";
	case CT_TIMEOUT:
		return "a number of seconds (1-3600)";
	case CT_STRLIST:
		return "a string or an array of strings";
	case CT_PORTS:
		return "a port or an array of ports";
	case CT_PAIRS:
		return "an array of [port, port] pairs";
	case CT_STRMAP:
		return "an object of strings";
	case CT_OBJ:
		return "an object";
	case CT_ARR:
		return "an array";
	case CT_TARGET:
		return "a target path string or a target object";
	case CT_IMAGE:
		return "a string or an object {registry, tag}";
	case CT_ANY:
	default:
		return "a value";
	}
}
