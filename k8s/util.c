/* File reading, YAML to JSON, base64 and RFC 3339 times for the k8s module. */
#include "k8s/internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <yaml.h>

int k8s_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	size_t cap = 4096, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max + 1)
				return -EFBIG;
			char *n = realloc(buf, cap * 2);
			if (!n)
				return -ENOMEM;
			buf = n;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EFBIG;
	}
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	*ret = TAKE_PTR(buf);
	return 0;
}

/* Aliases make a YAML document a DAG; converting it to a tree can blow up
 * exponentially ("billion laughs"), so the conversion counts nodes. */
#define YAML_DEPTH_MAX 64
#define YAML_NODES_MAX 200000

static int yaml_node_to_json(yaml_document_t *doc, yaml_node_t *node, int depth, size_t *budget,
                             json_t **ret)
{
	if (!node || depth > YAML_DEPTH_MAX || (*budget)-- == 0)
		return -E2BIG;
	switch (node->type) {
	case YAML_SCALAR_NODE: {
		const char *v = (const char *)node->data.scalar.value;
		size_t n = node->data.scalar.length;
		json_t *j;
		if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")))
			j = json_true();
		else if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		         (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")))
			j = json_false();
		else if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		         (n == 0 || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null")))
			j = json_null();
		else
			j = json_stringn(v, n);
		if (!j)
			return -ENOMEM;
		*ret = j;
		return 0;
	}
	case YAML_SEQUENCE_NODE: {
		_cleanup_json_ json_t *a = json_array();
		if (!a)
			return -ENOMEM;
		for (yaml_node_item_t *it = node->data.sequence.items.start;
		     it < node->data.sequence.items.top; it++) {
			json_t *c = NULL;
			int r = yaml_node_to_json(doc, yaml_document_get_node(doc, *it), depth + 1,
			                          budget, &c);
			if (r < 0)
				return r;
			if (json_array_append_new(a, c) < 0)
				return -ENOMEM;
		}
		*ret = TAKE_PTR(a);
		return 0;
	}
	case YAML_MAPPING_NODE: {
		_cleanup_json_ json_t *o = json_object();
		if (!o)
			return -ENOMEM;
		for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
		     p < node->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			if (!k || k->type != YAML_SCALAR_NODE)
				return -EINVAL;
			json_t *c = NULL;
			int r = yaml_node_to_json(doc, yaml_document_get_node(doc, p->value),
			                          depth + 1, budget, &c);
			if (r < 0)
				return r;
			/* Duplicate keys: the last one wins, as in sigs.k8s.io/yaml. */
			if (json_object_setn_new(o, (const char *)k->data.scalar.value,
			                         k->data.scalar.length, c) < 0)
				return -ENOMEM;
		}
		*ret = TAKE_PTR(o);
		return 0;
	}
	case YAML_NO_NODE:
	default:
		return -EINVAL;
	}
}

int k8s_yaml_to_json(const char *buf, size_t len, const char *name, json_t **ret,
                     struct k8s_error *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		int r = k8s_errorf(err, -EINVAL, 0, NULL,
		                   "error loading config file \"%s\": %s at line %zu", name,
		                   parser.problem ? parser.problem : "invalid YAML",
		                   parser.problem_mark.line + 1);
		yaml_parser_delete(&parser);
		return r;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	int r;
	json_t *j = NULL;
	if (!root) {
		/* An empty file is an empty config (client-go). */
		j = json_object();
		r = j ? 0 : -ENOMEM;
	} else {
		size_t budget = YAML_NODES_MAX;
		r = yaml_node_to_json(&doc, root, 0, &budget, &j);
		if (r == -E2BIG || r == -EINVAL)
			r = k8s_errorf(err, -EINVAL, 0, NULL,
			               "error loading config file \"%s\": %s", name,
			               r == -E2BIG ? "document too deep or too large"
			                           : "mapping keys must be strings");
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (r < 0)
		return r;
	*ret = j;
	return 0;
}

static const char b64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of a base64 character, or -1. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

void k8s_base64_encode_to(const void *in, size_t len, char *out)
{
	const uint8_t *p = in;
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*out++ = b64_alphabet[v >> 18];
		*out++ = b64_alphabet[(v >> 12) & 63];
		*out++ = b64_alphabet[(v >> 6) & 63];
		*out++ = b64_alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
		*out++ = b64_alphabet[v >> 18];
		*out++ = b64_alphabet[(v >> 12) & 63];
		*out++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		*out++ = '=';
	}
	*out = '\0';
}

/* Standard base64 (RFC 4648 §4) with padding; whitespace anywhere is
 * ignored (kubeconfig data fields are sometimes wrapped). Anything else
 * that is not the alphabet, or padding before the end, is -EINVAL. */
int k8s_base64_decode(const char *in, char **ret, size_t *ret_len)
{
	size_t n = strlen(in);
	_cleanup_free_ char *out = malloc(n / 4 * 3 + 3);
	if (!out)
		return -ENOMEM;
	size_t outlen = 0, quad = 0, pad = 0;
	uint32_t v = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (isspace(c))
			continue;
		int d = c == '=' ? 0 : b64_value(c);
		if (d < 0 || (pad && c != '='))
			return -EINVAL;
		if (c == '=' && ++pad > 2)
			return -EINVAL;
		v = v << 6 | (uint32_t)d;
		if (++quad == 4) {
			out[outlen++] = (char)(v >> 16);
			out[outlen++] = (char)(v >> 8);
			out[outlen++] = (char)v;
			outlen -= pad;
			quad = 0;
			v = 0;
			if (pad)
				pad = 3; /* nothing may follow a padded group */
		}
	}
	if (quad != 0 || (pad && pad != 3))
		return -EINVAL;
	out[outlen] = '\0';
	*ret_len = outlen;
	*ret = TAKE_PTR(out);
	return 0;
}

int k8s_base64_encode(const void *in, size_t len, char **ret)
{
	if (len > (1u << 28))
		return -E2BIG;
	char *out = malloc((len + 2) / 3 * 4 + 1);
	if (!out)
		return -ENOMEM;
	k8s_base64_encode_to(in, len, out);
	*ret = out;
	return 0;
}

int k8s_parse_time(const char *s, long long *ret)
{
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	if (*p == '.') /* fraction: ignored, expiry has second precision */
		for (p++; isdigit((unsigned char)*p); p++)
			;
	long long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) || p[3] != ':' ||
		    !isdigit((unsigned char)p[4]) || !isdigit((unsigned char)p[5]))
			return -EINVAL;
		off = sign * (((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
		              ((p[4] - '0') * 10 + (p[5] - '0')) * 60);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	*ret = (long long)timegm(&tm) - off;
	return 0;
}
