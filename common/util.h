/*
 * Small helpers shared by every part of stratus written in C (vmm/, runtime/, agent/):
 * cleanup attributes for locals that own memory or a file descriptor, array sizing, ownership
 * hand-off, and checked arithmetic for lengths that come from untrusted images, configs or
 * the guest. Header-only, so binaries that link several of our libraries (the monitor links
 * libvmm and libstratus) get no duplicate symbols.
 */
#ifndef STRATUS_COMMON_UTIL_H
#define STRATUS_COMMON_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The struct that embeds member at ptr. */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define ALIGN_UP(x, a)	 (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))

#define KIB(x) ((uint64_t)(x) << 10)
#define MIB(x) ((uint64_t)(x) << 20)
#define GIB(x) ((uint64_t)(x) << 30)

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

/* Hand ownership out of a cleanup-managed local. */
static inline int fd_steal(int *fd)
{
	int r = *fd;

	*fd = -1;
	return r;
}

static inline void *ptr_steal(void *pp)
{
	void *r = *(void **)pp;

	*(void **)pp = NULL;
	return r;
}

/* True if [off, off + len) lies inside [0, size) without overflow. */
static inline bool range_fits(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/*
 * Drop the first done bytes of iov[0 .. *nr) after a short preadv/pwritev; returns the new
 * first element (*nr is decremented for each one used up).
 */
static inline struct iovec *iov_advance(struct iovec *iov, unsigned int *nr, size_t done)
{
	while (*nr && done >= iov->iov_len) {
		done -= iov->iov_len;
		iov++;
		(*nr)--;
	}
	if (*nr) {
		iov->iov_base = (uint8_t *)iov->iov_base + done;
		iov->iov_len -= done;
	}
	return iov;
}

#endif
