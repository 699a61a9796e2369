/* feature.network.dns.filter: the query's question and the matching
 * (dns_filter.h). */
#include "session/dns_filter.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DNS_HEADER 12
#define DNS_WIRE_NAME_MAX 255 /* RFC 1035 §3.1, length octets included */

int dns_query_question(const uint8_t *msg, size_t len, char ret_name[DNS_NAME_TEXT_MAX],
                       uint16_t *ret_qtype, size_t *ret_end)
{
	char name[DNS_NAME_TEXT_MAX];
	size_t off = DNS_HEADER, out = 0;

	if (len < DNS_HEADER)
		return -EINVAL;
	/* QR clear and opcode QUERY (0): anything else (a NOTIFY, an UPDATE)
	 * goes the default way without a look at its name. */
	if ((msg[2] & 0xf8) != 0 || msg[4] != 0 || msg[5] != 1)
		return -EINVAL;
	for (;;) {
		if (off >= len)
			return -EINVAL;
		uint8_t l = msg[off++];
		if (l == 0)
			break;
		/* 0xc0: a compression pointer, 0x40/0x80: reserved label types.
		 * A question is the first name in the message, so there is
		 * nothing earlier a pointer could legitimately refer to. */
		if (l & 0xc0)
			return -EINVAL;
		/* The wire form so far (off - DNS_HEADER) plus this label and
		 * the root's zero octet must stay within 255. */
		if (off - DNS_HEADER + l + 1 > DNS_WIRE_NAME_MAX || len - off < l)
			return -EINVAL;
		if (out)
			name[out++] = '.';
		for (uint8_t i = 0; i < l; i++) {
			uint8_t c = msg[off + i];
			/* A dot inside a label would read as two labels. */
			if (c <= 0x20 || c >= 0x7f || c == '.')
				return -EINVAL;
			name[out++] = (char)tolower(c);
		}
		off += l;
	}
	/* 255 wire octets hold at most 253 characters of text, so out stays
	 * below DNS_NAME_TEXT_MAX. */
	name[out] = '\0';
	if (len - off < 4)
		return -EINVAL;
	memcpy(ret_name, name, out + 1);
	*ret_qtype = (uint16_t)(msg[off] << 8 | msg[off + 1]);
	*ret_end = off + 4;
	return 0;
}

/* name, lowercased, without a trailing dot (malloc'd). */
static char *canonical(const char *name, size_t len)
{
	while (len && name[len - 1] == '.')
		len--;
	char *s = xstrndup(name, len);
	for (char *p = s; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

void dns_filter_add_name(struct dns_filter *f, const char *name)
{
	f->names = xrealloc(f->names, (f->nnames + 1) * sizeof(*f->names));
	f->names[f->nnames++] = canonical(name, strlen(name));
}

void dns_filter_set_search(struct dns_filter *f, const char *conf)
{
	for (const char *line = conf; line && *line;) {
		const char *end = strchr(line, '\n'), *p = line;
		const char *eol = end ? end : line + strlen(line);
		line = end ? end + 1 : NULL;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		size_t kw = strncmp(p, "search", 6) == 0 ? 6 : strncmp(p, "domain", 6) == 0 ? 6 : 0;
		if (!kw || p + kw >= eol || (p[kw] != ' ' && p[kw] != '\t'))
			continue;
		for (size_t i = 0; i < f->nsearch; i++)
			free(f->search[i]);
		f->nsearch = 0;
		for (p += kw; p < eol && f->nsearch < DNS_SEARCH_MAX;) {
			while (p < eol && isspace((unsigned char)*p))
				p++;
			const char *w = p;
			while (p < eol && !isspace((unsigned char)*p))
				p++;
			/* "search ." (or a bare "."): the root, adding nothing. */
			if (p > w && !(p - w == 1 && *w == '.'))
				f->search[f->nsearch++] = canonical(w, (size_t)(p - w));
		}
	}
}

/* qname is entry, or entry + "." + a search domain. */
static bool name_matches(const struct dns_filter *f, const char *entry, const char *qname)
{
	size_t el = strlen(entry);

	if (strcmp(entry, qname) == 0)
		return true;
	if (strncmp(entry, qname, el) != 0 || qname[el] != '.')
		return false;
	for (size_t i = 0; i < f->nsearch; i++)
		if (strcmp(qname + el + 1, f->search[i]) == 0)
			return true;
	return false;
}

const char *dns_filter_match(const struct dns_filter *f, const char *qname)
{
	if (f->all)
		return "";
	for (size_t i = 0; i < f->nnames; i++)
		if (name_matches(f, f->names[i], qname))
			return f->names[i];
	return NULL;
}

bool dns_filter_local(const struct dns_filter *f, const char *qname, const char **ret_entry)
{
	const char *m = dns_filter_match(f, qname);

	*ret_entry = m;
	return f->remote ? m == NULL : m != NULL;
}

size_t dns_servfail(const uint8_t *msg, size_t qend, uint8_t *out)
{
	memcpy(out, msg, qend);
	out[2] = (uint8_t)(0x80 | (msg[2] & 0x79)); /* QR, opcode and RD kept, AA/TC clear */
	out[3] = 0x80 | 2;                          /* RA, rcode SERVFAIL */
	memset(out + 6, 0, 6);                      /* no answer, authority or additional */
	return qend;
}

/* The next blank-separated word of [*p, end): its start, *ret_len, and *p
 * moved past it; NULL when there is none. */
static const char *next_word(const char **p, const char *end, size_t *ret_len)
{
	const char *w = *p;

	while (w < end && (*w == ' ' || *w == '\t' || *w == '\r'))
		w++;
	const char *e = w;
	while (e < end && *e != ' ' && *e != '\t' && *e != '\r')
		e++;
	*p = e;
	*ret_len = (size_t)(e - w);
	return e > w ? w : NULL;
}

int dns_hosts_lookup(const char *hosts, const char *name, int family, uint8_t (*out)[16],
                     size_t max)
{
	size_t nlen = strlen(name), n = 0, wl;
	bool found = false;

	for (const char *line = hosts; line && *line;) {
		const char *nl = strchr(line, '\n');
		const char *end = nl ? nl : line + strlen(line), *p = line, *w;
		char a[INET6_ADDRSTRLEN];
		uint8_t addr[16];
		int af = 0;

		line = nl ? nl + 1 : NULL;
		if (end - p >= 1024)
			continue;
		/* A comment runs to the end of the line. */
		const char *hash = memchr(p, '#', (size_t)(end - p));
		if (hash)
			end = hash;
		if (!(w = next_word(&p, end, &wl)) || wl >= sizeof(a))
			continue;
		memcpy(a, w, wl);
		a[wl] = '\0';
		if (inet_pton(AF_INET, a, addr) == 1)
			af = AF_INET;
		else if (inet_pton(AF_INET6, a, addr) == 1)
			af = AF_INET6;
		else
			continue;
		while ((w = next_word(&p, end, &wl))) {
			if (wl != nlen || strncasecmp(w, name, nlen) != 0)
				continue;
			found = true;
			if (af == family && n < max)
				memcpy(out[n++], addr, af == AF_INET ? 4 : 16);
			break;
		}
	}
	return found ? (int)n : -ENOENT;
}

size_t dns_hosts_answer(const uint8_t *msg, size_t qend, const uint8_t (*addrs)[16], size_t n,
                        uint8_t *out, size_t cap)
{
	uint16_t qtype = (uint16_t)(msg[qend - 4] << 8 | msg[qend - 3]);
	size_t alen = qtype == 28 ? 16 : 4, len = qend;

	if (qend + n * (12 + alen) > cap || n > 0xffff)
		return 0;
	memcpy(out, msg, qend);
	out[2] = (uint8_t)(0x80 | (msg[2] & 0x79)); /* QR, opcode and RD kept */
	out[3] = 0x80;                              /* RA, NOERROR */
	out[6] = (uint8_t)(n >> 8);
	out[7] = (uint8_t)n;
	memset(out + 8, 0, 4); /* no authority or additional records */
	for (size_t i = 0; i < n; i++) {
		/* 0xc00c: the question's name, right after the header. */
		const uint8_t rr[10] = {
		        0xc0, 0x0c, (uint8_t)(qtype >> 8), (uint8_t)qtype, 0, 1, 0, 0, 0, 0};
		memcpy(out + len, rr, sizeof(rr));
		len += sizeof(rr);
		out[len++] = 0;
		out[len++] = (uint8_t)alen;
		memcpy(out + len, addrs[i], alen);
		len += alen;
	}
	return len;
}

const char *dns_type_name(uint16_t t)
{
	static const struct {
		uint16_t t;
		const char *name;
	} names[] = {
	        {1, "A"},    {2, "NS"},    {5, "CNAME"}, {6, "SOA"},   {12, "PTR"},   {15, "MX"},
	        {16, "TXT"}, {28, "AAAA"}, {33, "SRV"},  {64, "SVCB"}, {65, "HTTPS"}, {255, "ANY"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].t == t)
			return names[i].name;
	return NULL;
}

void dns_filter_free(struct dns_filter *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nnames; i++)
		free(f->names[i]);
	free(f->names);
	for (size_t i = 0; i < f->nsearch; i++)
		free(f->search[i]);
	memset(f, 0, sizeof(*f));
}
