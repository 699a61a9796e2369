/* HTTP detection for a filtered steal (sniff.h). */
#include "agent/sniff.h"
#include "agent/h2frame.h"

#include <stdbool.h>
#include <string.h>

/* RFC 9110 §5.6.2 token characters. */
static bool is_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c);
}

/* The request line (RFC 9112 §3): method SP request-target SP
 * "HTTP/1." DIGIT, then CRLF or a bare LF; empty lines before it are
 * skipped (§2.2). The target is any run of visible bytes (obs-text
 * included, as lenient servers take it). */
static enum sniff request_line(const uint8_t *p, size_t n)
{
	static const char version[] = "HTTP/1.";
	size_t i = 0, k;

	while (i < n && (p[i] == '\r' || p[i] == '\n'))
		i++;
	for (k = i; k < n && is_tchar(p[k]); k++)
		if (k - i >= SNIFF_MAX_METHOD)
			return SNIFF_OTHER;
	if (k == n)
		return SNIFF_MORE;
	if (k == i || p[k] != ' ')
		return SNIFF_OTHER;
	i = ++k;
	while (k < n && p[k] > ' ' && p[k] != 0x7f)
		k++;
	if (k == n)
		return SNIFF_MORE;
	if (k == i || p[k] != ' ')
		return SNIFF_OTHER;
	k++;
	for (size_t j = 0; j < sizeof(version) - 1; j++, k++) {
		if (k == n)
			return SNIFF_MORE;
		if (p[k] != (uint8_t)version[j])
			return SNIFF_OTHER;
	}
	if (k == n)
		return SNIFF_MORE;
	if (p[k] < '0' || p[k] > '9')
		return SNIFF_OTHER;
	if (++k == n)
		return SNIFF_MORE;
	if (p[k] == '\n')
		return SNIFF_HTTP1;
	if (p[k] != '\r')
		return SNIFF_OTHER;
	if (++k == n)
		return SNIFF_MORE;
	return p[k] == '\n' ? SNIFF_HTTP1 : SNIFF_OTHER;
}

enum sniff sniff_http(const uint8_t *p, size_t n)
{
	size_t k = n < H2F_PREFACE_LEN ? n : H2F_PREFACE_LEN;

	if (n == 0)
		return SNIFF_MORE;
	if (memcmp(p, H2F_PREFACE, k) == 0)
		return k == H2F_PREFACE_LEN ? SNIFF_H2 : SNIFF_MORE;
	return request_line(p, n);
}
