/* The k8s error object (error.h). */
#include "k8s/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void k8s_error_clear(struct k8s_error *e)
{
	if (!e)
		return;
	free(e->reason);
	free(e->message);
	*e = (struct k8s_error){0};
}

int k8s_errorf(struct k8s_error *e, int r, int code, const char *reason, const char *fmt, ...)
{
	if (!e)
		return r;
	k8s_error_clear(e);
	e->code = code;
	/* Out of memory here leaves the fields NULL: the caller still has r. */
	if (reason)
		e->reason = strdup(reason);
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&e->message, fmt, ap) < 0)
		e->message = NULL;
	va_end(ap);
	return r;
}

int k8s_errno_from_http(long code)
{
	switch (code) {
	case 400:
	case 422:
		return -EINVAL;
	case 401:
		return -EACCES;
	case 403:
		return -EPERM;
	case 404:
		return -ENOENT;
	case 405:
		return -EOPNOTSUPP;
	case 409:
		return -EEXIST;
	case 410:
		return -ESTALE;
	case 413:
		return -EMSGSIZE;
	case 415:
		return -EPROTO;
	case 429:
		return -EAGAIN;
	case 504:
		return -ETIMEDOUT;
	default:
		return code >= 500 ? -EIO : -EPROTO;
	}
}
