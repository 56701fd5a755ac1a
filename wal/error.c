/* SPDX-License-Identifier: MIT */
/*
 * error.c: return-code names and the per-thread failure detail.
 *
 * Every failing statement in the library reads
 *     return lb__fail(LB_EXXX, "what, naming the object", ...);
 * so the detail is always set together with the code. The detail lives in a
 * fixed thread-local buffer: setting it never allocates, so it also works
 * when memory is exhausted, and one thread's failures never touch another's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wal/wal.h"

#define LB__ERRMSG_SIZE 512

static _Thread_local char errmsg[LB__ERRMSG_SIZE];

int lb__fail(int rc, const char *fmt, ...)
{
	char tmp[LB__ERRMSG_SIZE];
	va_list ap;

	/* Format into tmp first: callers may pass lb_errmsg() itself as an
	 * argument, to add context to a detail set further down. Truncation
	 * is fine: the detail is for humans. */
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	memcpy(errmsg, tmp, sizeof errmsg);
	return rc;
}

void lb__clear_error(void)
{
	errmsg[0] = '\0';
}

LB_API const char *lb_errmsg(void)
{
	return errmsg;
}

LB_API const char *lb_strerror(int rc)
{
	switch (rc) {
	case LB_OK:
		return "success";
	case LB_ENOTFOUND:
		return "not found";
	case LB_EINVAL:
		return "invalid argument";
	case LB_EVALIDATION:
		return "validation failed";
	case LB_ECONFLICT:
		return "conflict with a later batch";
	case LB_ECORRUPT:
		return "data is corrupt";
	case LB_EPRUNED:
		return "batch log was pruned";
	case LB_EFULL:
		return "disk full";
	case LB_EBUSY:
		return "resource busy";
	case LB_ENOMEM:
		return "out of memory";
	case LB_EIO:
		return "I/O error";
	case LB_EVERSION:
		return "unsupported newer format version";
	case LB_ETOOBIG:
		return "too big";
	case LB_EEXIST:
		return "already exists";
	default:
		return "unknown error";
	}
}

#define LB__STR_(x) #x
#define LB__STR(x) LB__STR_(x)

LB_API const char *lb_version(int *major, int *minor, int *patch)
{
	if (major)
		*major = LB_VERSION_MAJOR;
	if (minor)
		*minor = LB_VERSION_MINOR;
	if (patch)
		*patch = LB_VERSION_PATCH;
	return LB__STR(LB_VERSION_MAJOR) "." LB__STR(
	        LB_VERSION_MINOR) "." LB__STR(LB_VERSION_PATCH);
}
