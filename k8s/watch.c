/* The watch-stream parser: a stream of JSON objects, newline-terminated by
 * the apiserver but split at arbitrary byte boundaries by chunking, TLS
 * records and proxies (k8s-wire.md §2.4). json_loadb with
 * A small scanner finds where each top-level object ends (strings and
 * escapes respected); only complete objects reach jansson, and a partial
 * tail is kept for the next feed. */
#include <string.h>

#include "k8s/internal.h"
#include "k8s/rest.h"

void k8s_watch_parser_init(struct k8s_watch_parser *p, k8s_watch_fn fn, void *userdata,
                           struct k8s_error *err)
{
	*p = (struct k8s_watch_parser){.fn = fn, .userdata = userdata, .err = err};
}

void k8s_watch_parser_free(struct k8s_watch_parser *p)
{
	free(p->buf);
	p->buf = NULL;
	p->len = p->cap = 0;
}

static int dispatch(struct k8s_watch_parser *p, json_t *ev)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	json_t *obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj))
		return k8s_errorf(p->err, -EPROTO, 0, NULL,
		                  "malformed watch event: needs \"type\" and \"object\"");
	if (!strcmp(type, "ERROR")) {
		json_int_t code = json_integer_value(json_object_get(obj, "code"));
		return k8s_status_error("GET", "/watch", code ? (long)code : 500, obj, NULL,
		                        p->err);
	}
	if (strcmp(type, "ADDED") && strcmp(type, "MODIFIED") && strcmp(type, "DELETED") &&
	    strcmp(type, "BOOKMARK"))
		return k8s_errorf(p->err, -EPROTO, 0, NULL, "unknown watch event type \"%.32s\"",
		                  type);
	return p->fn(p->userdata, type, obj);
}

int k8s_watch_parser_feed(struct k8s_watch_parser *p, const void *data, size_t len)
{
	if (p->stopped)
		return p->stopped;
	if (p->len + len + 1 > K8S_EVENT_MAX)
		return p->stopped = k8s_errorf(p->err, -EMSGSIZE, 0, NULL,
		                               "a watch event is larger than %u MiB",
		                               K8S_EVENT_MAX >> 20);
	if (p->len + len + 1 > p->cap) {
		size_t cap = p->cap ? p->cap : 8192;
		while (cap < p->len + len + 1)
			cap *= 2;
		char *n = realloc(p->buf, cap);
		if (!n)
			return p->stopped = -ENOMEM;
		p->buf = n;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, data, len);
	p->len += len;
	size_t off = 0;
	int r = 0;
	while (r == 0) {
		/* Find where the next top-level object ends. jansson alone cannot
		 * tell a truncated event from a bad one: a cut inside "\u00e9"
		 * reports "invalid escape", not "premature end of input". */
		if (p->depth == 0 && !p->in_str) {
			while (p->scan < p->len && memchr(" \t\r\n", p->buf[p->scan], 4))
				p->scan++;
			off = p->scan;
			if (p->scan == p->len)
				break;
			if (p->buf[p->scan] != '{') {
				r = k8s_errorf(p->err, -EPROTO, 0, NULL,
				               "malformed watch stream: event is not an object");
				break;
			}
		}
		bool done = false;
		for (; p->scan < p->len && !done; p->scan++) {
			char ch = p->buf[p->scan];
			if (p->in_str) {
				if (p->esc)
					p->esc = false;
				else if (ch == '\\')
					p->esc = true;
				else if (ch == '"')
					p->in_str = false;
			} else if (ch == '"') {
				p->in_str = true;
			} else if (ch == '{' || ch == '[') {
				if (++p->depth > 512) {
					r = k8s_errorf(p->err, -EPROTO, 0, NULL,
					               "malformed watch stream: nesting too deep");
					break;
				}
			} else if (ch == '}' || ch == ']') {
				done = --p->depth == 0;
			}
		}
		if (r < 0 || !done)
			break;
		json_error_t je;
		json_t *ev = json_loadb(p->buf + off, p->scan - off, 0, &je);
		off = p->scan;
		if (!ev) {
			r = json_error_code(&je) == json_error_out_of_memory
			            ? -ENOMEM
			            : k8s_errorf(p->err, -EPROTO, 0, NULL,
			                         "malformed watch stream: %s", je.text);
			break;
		}
		r = dispatch(p, ev);
		json_decref(ev);
	}
	memmove(p->buf, p->buf + off, p->len - off);
	p->len -= off;
	p->scan -= off;
	if (r != 0)
		p->stopped = r;
	return r;
}

int k8s_watch_parser_finish(struct k8s_watch_parser *p)
{
	if (p->stopped)
		return p->stopped;
	for (size_t i = 0; i < p->len; i++)
		if (!memchr(" \t\r\n", p->buf[i], 4))
			return k8s_errorf(p->err, -EPROTO, 0, NULL,
			                  "the watch stream ended inside an event (%zu bytes)",
			                  p->len);
	return 0;
}
