/* Long Unix socket paths through a directory descriptor (unix_path.h). */
#include "unix_path.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int unix_path_short(const char *path, char *buf, size_t len, int *dirfd)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	int fd, n;

	*dirfd = -1;
	if (strlen(path) < sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
		n = snprintf(buf, len, "%s", path);
		return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	if (!slash || slash == path || (size_t)(slash - path) >= sizeof(dir) || !slash[1])
		return -ENAMETOOLONG;
	memcpy(dir, path, slash - path);
	dir[slash - path] = '\0';
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, len, "/proc/self/fd/%d/%s", fd, slash + 1);
	if (n < 0 || (size_t)n >= len ||
	    (size_t)n >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
		close(fd);
		return -ENAMETOOLONG;
	}
	*dirfd = fd;
	return 0;
}

int unix_addr_fill(struct sockaddr_un *addr, const char *path, int *dirfd)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	return unix_path_short(path, addr->sun_path, sizeof(addr->sun_path), dirfd);
}
