/*
 * Read-only mappings of input files (kernel, initrd), with errors that name the file.
 */
#ifndef STRATUS_VMM_FILE_H
#define STRATUS_VMM_FILE_H

#include <stddef.h>

#include "error.h"

struct file_map {
	void *data;
	size_t size;
};

/* what names the file's role in messages ("kernel", "initrd"). Empty files are refused. */
int file_map_open(struct file_map *map, const char *path, const char *what, struct error *err);
void file_map_close(struct file_map *map);

#endif
