/*
 * Errors a person will read. Library functions return 0 or a negative errno; where the failure
 * comes from something a user wrote (a flag, a kernel image, a config file) they also fill a
 * struct error with one line that names what is wrong.
 */
#ifndef STRATUS_VMM_ERROR_H
#define STRATUS_VMM_ERROR_H

#include "util.h"

#define ERROR_MSG_MAX 512

struct error {
	int code; /* negative errno, 0 when unset */
	char msg[ERROR_MSG_MAX];
};

/*
 * Record the first failure (later calls do not overwrite it, so the innermost, most precise
 * message wins) and return the negative errno to pass up. err may be NULL.
 */
int error_set(struct error *err, int code, const char *fmt, ...) _printf_(3, 4);

/* Like error_set, appending ": strerror(-code)". */
int error_set_errno(struct error *err, int code, const char *fmt, ...) _printf_(3, 4);

static inline void error_clear(struct error *err)
{
	err->code = 0;
	err->msg[0] = '\0';
}

#endif
