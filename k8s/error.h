/* The one error object of the k8s module. Every k8s function returns an int
 * (>= 0 success, -errno failure) and, on failure, may fill a struct
 * k8s_error with what errno cannot say: the HTTP status, the API Status
 * reason and a one-line message that tells the user what to do. After
 * -ENOMEM the message may be NULL. The module never logs; the caller prints
 * err.message once. */
#pragma once

#include "common/util.h"

struct k8s_error {
	int code;      /* HTTP status, or 0 for a local error */
	char *reason;  /* Status.reason ("Forbidden", "NotFound"...), or NULL */
	char *message; /* one line, or NULL */
};

/* Free the fields and zero *e. Accepts NULL. */
void k8s_error_clear(struct k8s_error *e);

/* Replace *e (may be NULL) with a formatted message and return r, so that
 * `return k8s_errorf(err, -EINVAL, 0, NULL, "...")` reads as one line. */
MT_PRINTF(5, 6)
int k8s_errorf(struct k8s_error *e, int r, int code, const char *reason, const char *fmt, ...);

/* The negative errno for an HTTP status (404 -> -ENOENT, 403 -> -EPERM,
 * 401 -> -EACCES, 409 -> -EEXIST, 5xx -> -EIO, 504 -> -ETIMEDOUT, ...). */
int k8s_errno_from_http(long code);
