/*
 * Unix socket addresses for paths longer than sun_path (108 bytes). The state directory
 * holds each container's sockets, and podman's 64-character ids under a long --root make
 * those paths too long to bind or connect. runc has no such limit, so neither may we: a path
 * that does not fit is reached through an O_PATH descriptor of its directory, as
 * /proc/self/fd/N/NAME, which the kernel resolves through the descriptor.
 */
#ifndef STRATUS_RUNTIME_UNIX_PATH_H
#define STRATUS_RUNTIME_UNIX_PATH_H

#include <stddef.h>
#include <sys/un.h>

/*
 * Put path into addr. If it is too long, open its directory (O_PATH) into *dirfd and use the
 * /proc/self/fd form; the caller closes *dirfd (-1 when none was needed) once bind or
 * connect is done, or keeps it open for as long as the short form must stay valid.
 * 0, or a negative errno (-ENAMETOOLONG when even the short form does not fit).
 */
int unix_addr_fill(struct sockaddr_un *addr, const char *path, int *dirfd);

/*
 * The short form of path for a process that keeps *dirfd open (the monitor hands it to
 * libvmm, which binds it): path itself when it fits, else /proc/self/fd/N/NAME in buf.
 */
int unix_path_short(const char *path, char *buf, size_t len, int *dirfd);

#endif
