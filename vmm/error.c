/*
 * struct error: the one-line, first-failure-wins error record used across libvmm.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

static int error_vset(struct error *err, int code, bool with_errno, const char *fmt, va_list ap)
{
	int n;

	if (code >= 0)
		code = -EINVAL;
	if (!err || err->code)
		return code;
	err->code = code;
	n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (with_errno && n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(-code));
	return code;
}

int error_set(struct error *err, int code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = error_vset(err, code, false, fmt, ap);
	va_end(ap);
	return r;
}

int error_set_errno(struct error *err, int code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = error_vset(err, code, true, fmt, ap);
	va_end(ap);
	return r;
}
