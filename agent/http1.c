/* HTTP/1.x messages and the HTTP filter (http1.h). */
#include "agent/http1.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

struct http_filter {
	uint8_t op;
	unsigned n;
	struct {
		uint8_t kind;
		pcre2_code *re;                         /* HEADER, PATH */
		char method[AP_MAX_FILTER_PATTERN + 1]; /* METHOD */
	} rules[AP_MAX_FILTER_RULES];
	pcre2_match_data *md;
};

/* ---- filter ---- */

int http_filter_new(const struct ap_msg *m, struct http_filter **ret, char *err, size_t errcap)
{
	struct http_filter *f = xcalloc(1, sizeof(*f));

	f->op = m->u.port_sub.filter_op;
	for (unsigned i = 0; i < m->u.port_sub.rule_count; i++) {
		const struct ap_filter_rule *r = &m->u.port_sub.rules[i];
		int code;
		PCRE2_SIZE off;

		f->rules[i].kind = r->kind;
		f->n = i + 1;
		if (r->kind == AP_FILTER_METHOD) {
			(void)ap_bytes_to_str(&r->pattern, f->rules[i].method,
			                      sizeof(f->rules[i].method));
			continue;
		}
		f->rules[i].re = pcre2_compile(r->pattern.ptr, r->pattern.len, PCRE2_CASELESS,
		                               &code, &off, NULL);
		if (!f->rules[i].re) {
			char msg[128];
			pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof(msg));
			snprintf(err, errcap, "rule %u: %s at offset %zu", i + 1, msg, (size_t)off);
			http_filter_free(f);
			return -EINVAL;
		}
	}
	f->md = pcre2_match_data_create(1, NULL);
	*ret = f;
	return 0;
}

void http_filter_free(struct http_filter *f)
{
	if (!f)
		return;
	for (unsigned i = 0; i < f->n; i++)
		pcre2_code_free(f->rules[i].re);
	pcre2_match_data_free(f->md);
	free(f);
}

static bool re_match(const struct http_filter *f, pcre2_code *re, const char *s, size_t n)
{
	return pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, f->md, NULL) >= 0;
}

static bool rule_match(const struct http_filter *f, unsigned i, const struct http_req_view *v)
{
	char line[HTTP_MAX_HEAD + 2];

	switch (f->rules[i].kind) {
	case AP_FILTER_METHOD:
		return strlen(f->rules[i].method) == v->method_len &&
		       !strncasecmp(f->rules[i].method, v->method, v->method_len);
	case AP_FILTER_PATH: {
		size_t plen = 0;
		while (plen < v->target_len && !strchr("? \r", v->target[plen]))
			plen++;
		return re_match(f, f->rules[i].re, v->target, plen) ||
		       (plen < v->target_len &&
		        re_match(f, f->rules[i].re, v->target, v->target_len));
	}
	case AP_FILTER_HEADER:
		/* "name: value" with the name in lowercase, as mirrord's
		 * HTTP stack presents headers to the same patterns. */
		for (size_t k = 0; k < v->nfields; k++) {
			const char *name, *value;
			size_t name_len, value_len, n = 0;
			v->field(v->ctx, k, &name, &name_len, &value, &value_len);
			/* Bounded by the head (HTTP/1.x) or the header list
			 * (HTTP/2) limit; a longer field cannot match. */
			if (name_len + 2 + value_len > sizeof(line))
				continue;
			for (size_t j = 0; j < name_len; j++)
				line[n++] = (char)tolower((unsigned char)name[j]);
			line[n++] = ':';
			line[n++] = ' ';
			memcpy(line + n, value, value_len);
			n += value_len;
			if (re_match(f, f->rules[i].re, line, n))
				return true;
		}
		return false;
	default:
		return false;
	}
}

bool http_filter_match(const struct http_filter *f, const struct http_req_view *v)
{
	for (unsigned i = 0; i < f->n; i++) {
		bool m = rule_match(f, i, v);
		if (f->op == AP_FILTER_ANY_OF && m)
			return true;
		if (f->op == AP_FILTER_ALL_OF && !m)
			return false;
	}
	return f->op == AP_FILTER_ALL_OF;
}

static void head_field(const void *ctx, size_t k, const char **name, size_t *name_len,
                       const char **value, size_t *value_len)
{
	const struct http1_head *hd = ctx;
	*name = hd->h[k].name;
	*name_len = hd->h[k].name_len;
	*value = hd->h[k].value;
	*value_len = hd->h[k].value_len;
}

bool http1_filter_match(const struct http_filter *f, const struct http1_head *hd)
{
	const struct http_req_view v = {.method = hd->method,
	                                .method_len = hd->method_len,
	                                .target = hd->target,
	                                .target_len = hd->target_len,
	                                .nfields = hd->nh,
	                                .field = head_field,
	                                .ctx = hd};
	return http_filter_match(f, &v);
}

/* ---- parsing ---- */

size_t http1_empty_lines(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && (p[i] == '\r' || p[i] == '\n'))
		i++;
	return i;
}

/* Length of the head (through the blank line) in p[0..n), 0 if not
 * complete yet. Lines end with LF, a CR before it optional (RFC 9112
 * §2.2, as sniff.c detects them). */
size_t http1_head_len(const uint8_t *p, size_t n, size_t *scanned)
{
	/* A blank line that began before *scanned ends at most 2 bytes
	 * before it ("\n\r" seen, "\n" to come). */
	size_t i = *scanned > n ? 0 : *scanned >= 2 ? *scanned - 2 : 0;

	for (; i + 1 < n; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n')
			return i + 2;
		if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
			return i + 3;
	}
	*scanned = n;
	return 0;
}

bool http1_hdr_is(const struct http1_head *hd, unsigned k, const char *name)
{
	return hd->h[k].name_len == strlen(name) && !strncasecmp(hd->h[k].name, name, strlen(name));
}

/* The end of the line that starts at l (its LF at nl): before a CR. A
 * CR elsewhere in a line is refused (RFC 9112 §2.2): the agent and the
 * app behind it must not disagree on where a line ends. */
static const char *line_end(const char *l, const char *nl)
{
	const char *le = nl > l && nl[-1] == '\r' ? nl - 1 : nl;

	return memchr(l, '\r', (size_t)(le - l)) ? NULL : le;
}

/* Parse a head of len bytes (http1_head_len()). request: "M T V", else
 * "V S R". -EBADMSG if malformed. */
int http1_parse_head(const char *p, size_t len, bool request, struct http1_head *hd)
{
	const char *end = p + len, *nl = memchr(p, '\n', len), *eol;
	const char *sp1, *sp2;

	memset(hd, 0, sizeof(*hd));
	if (!nl || !(eol = line_end(p, nl)))
		return -EBADMSG;
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	if (!sp1)
		return -EBADMSG;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (request) {
		if (!sp2 || eol - sp2 < 9 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
			return -EBADMSG;
		hd->method = p;
		hd->method_len = (size_t)(sp1 - p);
		hd->target = sp1 + 1;
		hd->target_len = (size_t)(sp2 - sp1 - 1);
	} else {
		if (strncmp(p, "HTTP/1.", 7) != 0 || eol - sp1 < 4)
			return -EBADMSG;
		hd->status = (unsigned)(sp1[1] - '0') * 100 + (unsigned)(sp1[2] - '0') * 10 +
		             (unsigned)(sp1[3] - '0');
		if (!isdigit((unsigned char)sp1[1]) || !isdigit((unsigned char)sp1[2]) ||
		    !isdigit((unsigned char)sp1[3]))
			return -EBADMSG;
	}
	for (const char *l = nl + 1; l < end; l = nl + 1) {
		const char *le, *colon;
		nl = memchr(l, '\n', (size_t)(end - l));
		if (!nl || !(le = line_end(l, nl)))
			return -EBADMSG;
		if (le == l)
			break; /* the blank line */
		colon = memchr(l, ':', (size_t)(le - l));
		if (!colon || colon == l || hd->nh >= HTTP_MAX_HEADERS)
			return -EBADMSG;
		const char *v = colon + 1, *ve = le;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		hd->h[hd->nh].name = l;
		hd->h[hd->nh].name_len = (size_t)(colon - l);
		hd->h[hd->nh].value = v;
		hd->h[hd->nh].value_len = (size_t)(ve - v);
		hd->nh++;
	}
	return 0;
}

/* Body framing from the headers (RFC 9112 §6.3). */
int http1_body_framing(const struct http1_head *hd, bool request, struct http1_framer *fr)
{
	bool te = false, chunked = false, cl = false;
	uint64_t len = 0;

	memset(fr, 0, sizeof(*fr));
	for (unsigned k = 0; k < hd->nh; k++) {
		const char *v = hd->h[k].value;
		size_t n = hd->h[k].value_len;
		if (http1_hdr_is(hd, k, "transfer-encoding")) {
			/* The codings of every field, in order: what counts
			 * is the last one ("gzip, chunked"). */
			size_t i = n;
			while (i > 0 && v[i - 1] != ',')
				i--;
			while (i < n && (v[i] == ' ' || v[i] == '\t'))
				i++;
			te = true;
			chunked = n - i == 7 && !strncasecmp(v + i, "chunked", 7);
		} else if (http1_hdr_is(hd, k, "content-length")) {
			char num[24];
			uint64_t l;
			if (n == 0 || n >= sizeof(num))
				return -EBADMSG;
			memcpy(num, v, n);
			num[n] = 0;
			if (parse_u64(num, UINT64_MAX, &l) < 0 || (cl && l != len))
				return -EBADMSG;
			cl = true;
			len = l;
		}
	}
	if (te) {
		/* RFC 9112 §6.1, §6.3: Transfer-Encoding overrides
		 * Content-Length, and a request with both "ought to be
		 * handled as an error": the agent forwards bytes as they
		 * came, so the app behind it could frame them by the other
		 * field (request smuggling). A request whose last coding is
		 * not chunked cannot be framed; such a response runs to the
		 * close. */
		if (request && (cl || !chunked))
			return -EBADMSG;
		fr->kind = chunked ? HTTP1_FR_CHUNKED : HTTP1_FR_EOF;
		return 0;
	}
	if (cl) {
		fr->kind = len ? HTTP1_FR_LENGTH : HTTP1_FR_NONE;
		fr->left = len;
	} else {
		fr->kind = request ? HTTP1_FR_NONE : HTTP1_FR_EOF;
	}
	fr->done = fr->kind == HTTP1_FR_NONE;
	return 0;
}

/* How many of p[0..n) belong to the body; sets fr->done at its end.
 * -EBADMSG for a broken chunked encoding. */
ssize_t http1_framer_feed(struct http1_framer *fr, const uint8_t *p, size_t n)
{
	size_t i = 0;

	if (fr->done)
		return 0;
	if (fr->kind == HTTP1_FR_EOF)
		return (ssize_t)n;
	if (fr->kind == HTTP1_FR_LENGTH) {
		size_t k = n < fr->left ? n : (size_t)fr->left;
		fr->left -= k;
		fr->done = fr->left == 0;
		return (ssize_t)k;
	}
	while (i < n && !fr->done) {
		uint8_t c = p[i];
		switch (fr->cs) {
		case HTTP1_CH_SIZE:
			if (isxdigit(c)) {
				if (fr->left >> 56)
					return -EBADMSG;
				fr->left =
				        fr->left * 16 +
				        (uint64_t)(isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10));
				fr->size_seen = true;
			} else if (c == '\r' && fr->size_seen) {
				fr->cs = HTTP1_CH_SIZE_LF;
			} else if ((c == ';' || c == ' ' || c == '\t') && fr->size_seen) {
				fr->cs = HTTP1_CH_EXT;
			} else {
				return -EBADMSG;
			}
			i++;
			break;
		case HTTP1_CH_EXT:
			if (c == '\r')
				fr->cs = HTTP1_CH_SIZE_LF;
			i++;
			break;
		case HTTP1_CH_SIZE_LF:
			if (c != '\n')
				return -EBADMSG;
			i++;
			fr->size_seen = false;
			if (fr->left == 0) {
				fr->cs = HTTP1_CH_TRAILER;
				fr->line = 0;
			} else {
				fr->cs = HTTP1_CH_DATA;
			}
			break;
		case HTTP1_CH_DATA: {
			size_t k = n - i < fr->left ? n - i : (size_t)fr->left;
			i += k;
			fr->left -= k;
			if (!fr->left)
				fr->cs = HTTP1_CH_DATA_CR;
			break;
		}
		case HTTP1_CH_DATA_CR:
			if (c != '\r')
				return -EBADMSG;
			fr->cs = HTTP1_CH_DATA_LF;
			i++;
			break;
		case HTTP1_CH_DATA_LF:
			if (c != '\n')
				return -EBADMSG;
			fr->cs = HTTP1_CH_SIZE;
			i++;
			break;
		case HTTP1_CH_TRAILER:
			/* Trailer lines until an empty one. */
			i++;
			if (c == '\n') {
				if (fr->line <= 1)
					fr->done = true;
				fr->line = 0;
			} else if (++fr->line > HTTP_MAX_HEAD) {
				return -EBADMSG;
			}
			break;
		}
	}
	return (ssize_t)i;
}
