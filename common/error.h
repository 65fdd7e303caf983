/*
 * Errors a person will read, for every part of stratus: functions return 0 or a negative
 * errno and, where the failure comes from something a user wrote (a flag, a kernel image, a
 * bundle, config.json), fill a struct error with one line naming what is wrong. The first
 * failure wins, so the innermost, most precise message survives. Header-only, so it never
 * clashes in a binary that links several of our libraries.
 */
#ifndef STRATUS_COMMON_ERROR_H
#define STRATUS_COMMON_ERROR_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define ERROR_MSG_MAX 512

struct error {
	int code; /* negative errno, 0 when unset */
	char msg[ERROR_MSG_MAX];
};

static inline int error_vset(struct error *err, int code, bool with_errno, const char *fmt,
			     va_list ap)
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

/* Record the first failure and return the negative errno to pass up. err may be NULL. */
static inline _printf_(3, 4) int error_set(struct error *err, int code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = error_vset(err, code, false, fmt, ap);
	va_end(ap);
	return r;
}

/* Like error_set, appending ": strerror(-code)". */
static inline _printf_(3, 4) int error_set_errno(struct error *err, int code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = error_vset(err, code, true, fmt, ap);
	va_end(ap);
	return r;
}

static inline void error_clear(struct error *err)
{
	err->code = 0;
	err->msg[0] = '\0';
}

#endif
