/*
 * Read-only file mappings (see file.h).
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "file.h"

int file_map_open(struct file_map *map, const char *path, const char *what, struct error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	map->data = NULL;
	map->size = 0;
	if (fd < 0)
		return error_set_errno(err, -errno, "%s: cannot open %s", what, path);
	if (fstat(fd, &st) < 0)
		return error_set_errno(err, -errno, "%s: cannot stat %s", what, path);
	if (!S_ISREG(st.st_mode))
		return error_set(err, -EINVAL, "%s: %s is not a regular file", what, path);
	if (st.st_size == 0)
		return error_set(err, -ENOEXEC, "%s: %s is empty", what, path);
	map->data = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map->data == MAP_FAILED) {
		map->data = NULL;
		return error_set_errno(err, -errno, "%s: cannot map %s", what, path);
	}
	map->size = st.st_size;
	return 0;
}

void file_map_close(struct file_map *map)
{
	if (map->data)
		munmap(map->data, map->size);
	map->data = NULL;
	map->size = 0;
}
