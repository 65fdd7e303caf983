/*
 * Helpers shared by the host-side libraries that must not depend on each other (runtime/ never
 * includes vmm/ headers): cleanup attributes for locals that own memory or a file descriptor,
 * array sizing and ownership hand-off. Header-only, so a binary that links libvmm and libstratus
 * together (the monitor) gets no duplicate symbols. vmm/util.h holds the same macros today; it
 * can become an include of this file.
 */
#ifndef STRATUS_COMMON_UTIL_H
#define STRATUS_COMMON_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#ifndef MIB
#define KIB(x) ((uint64_t)(x) << 10)
#define MIB(x) ((uint64_t)(x) << 20)
#define GIB(x) ((uint64_t)(x) << 30)
#endif

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

#define _cleanup_(f)	__attribute__((cleanup(f)))
#define _cleanup_free_	_cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _unused_	__attribute__((unused))
#define _printf_(a, b)	__attribute__((format(printf, a, b)))

static inline void *ptr_steal(void *pp)
{
	void *r = *(void **)pp;

	*(void **)pp = NULL;
	return r;
}

#endif
