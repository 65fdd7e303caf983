/*
 * The fake virtio-fs guest shared by the virtio-fs unit tests (test_virtio_fs.c: the
 * device and each FUSE operation; test_virtio_fs_hostile.c: what a hostile guest tries): a
 * share under /tmp and a device on the fake driver, FUSE requests built and sent one chain
 * at a time, replies parsed. cmocka asserts inside.
 */
#ifndef STRATUS_TESTS_VIRTIO_FS_FAKE_GUEST_H
#define STRATUS_TESTS_VIRTIO_FS_FAKE_GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <linux/fuse.h>
#include <linux/virtio_config.h>
#include <linux/virtio_fs.h>

#include "vm.h"
#include "virtio_fake_driver.h"

#define RAM_SIZE  MIB(16)
#define QSIZE	  64
#define HIPRIO	  0
#define REQUESTQ  1
#define REQ_MAX	  KIB(160)
#define REPLY_MAX (MIB(1) + 4096)
#define F_V1	  (1ULL << VIRTIO_F_VERSION_1)
#define NO_USED	  0xffffffffu

struct fs_test {
	struct fake_driver d;
	char root[64];
	char outside[64]; /* a directory next to the share, for escape attempts */
	uint64_t req_gpa, reply_gpa;
	uint64_t unique;
	int32_t error;	/* the last reply's error */
	uint32_t used;	/* the last used length */
	uint8_t *reply; /* the last reply's data (after the out header) */
	uint32_t len;	/* its length */
};

/* One piece of a request's arguments. */
struct part {
	const void *p;
	size_t len;
};

#define NAME(s) ((struct part){ (s), strlen(s) + 1 })
#define ARG(x)	((struct part){ &(x), sizeof(x) })

void host_path(struct fs_test *t, const char *rel, char *out, size_t size);
void write_host_file(struct fs_test *t, const char *rel, const char *text);
void bring_up(struct fs_test *t);
uint32_t submit(struct fs_test *t, unsigned int q, const struct fake_buf *bufs, unsigned int n);
uint32_t build(struct fs_test *t, uint32_t opcode, uint64_t nodeid, const struct part *parts,
	       unsigned int n);
void collect(struct fs_test *t, uint32_t used);
int32_t call_room(struct fs_test *t, uint32_t opcode, uint64_t nodeid, const struct part *parts,
		  unsigned int n, uint32_t reply_room);
int32_t call(struct fs_test *t, uint32_t opcode, uint64_t nodeid, const struct part *parts,
	     unsigned int n);
void init_fuse(struct fs_test *t, uint32_t minor);
int fs_setup_opts(void **state, bool readonly, enum vm_fs_cache cache);
int setup(void **state);
int setup_ro(void **state);
int setup_uninit(void **state);
int teardown(void **state);
struct fuse_entry_out lookup(struct fs_test *t, uint64_t parent, const char *name);
uint64_t open_file(struct fs_test *t, uint64_t node, uint32_t flags);
struct fuse_entry_out create(struct fs_test *t, uint64_t parent, const char *name, uint32_t mode,
			     uint64_t *fh);
int32_t fs_write(struct fs_test *t, uint64_t node, uint64_t fh, uint64_t off, const void *data,
		 uint32_t len);
int32_t fs_read(struct fs_test *t, uint64_t node, uint64_t fh, uint64_t off, uint32_t size);
void release(struct fs_test *t, uint64_t node, uint64_t fh, bool dir);
void forget(struct fs_test *t, uint64_t node, uint64_t n);

#endif
