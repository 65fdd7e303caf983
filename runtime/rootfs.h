/*
 * How a container's root.path reaches the guest (docs/runtime.md "Rootfs"). The one
 * implementation today is interim, until virtio-fs lands: an ext4 image built from root.path
 * with `mkfs.ext4 -d` into the state directory, attached as a virtio-blk disk and mounted by
 * the agent as rootfs kind 2 (/dev/vda, ext4). Read-only when root.readonly is true; otherwise
 * the container writes into the image and its changes stay there (not in root.path). Callers
 * only see struct rootfs, so virtio-fs can replace the image without touching them.
 */
#ifndef STRATUS_RUNTIME_ROOTFS_H
#define STRATUS_RUNTIME_ROOTFS_H

#include <stdbool.h>
#include <stdint.h>

#include "oci_spec.h"

#define ROOTFS_IMAGE	    "rootfs.ext4"
#define ROOTFS_GUEST_DEVICE "/dev/vda"
#define ROOTFS_FSTYPE	    "ext4"
/* Free space a writable image gets beyond its contents (sparse: costs no disk until used). */
#define ROOTFS_RW_HEADROOM (512ull << 20)

struct rootfs {
	char *image;	     /* the host file to attach as virtio-blk */
	bool readonly;	     /* attach read-only */
	uint32_t kind;	     /* AGENT_ROOTFS_* */
	const char *source;  /* in the guest */
	const char *fstype;  /* in the guest */
	const char *options; /* mount options in the guest ("ro": mount(8) style) */
};

/* Image size for a tree of `bytes` in `inodes` files (pure: unit-tested). */
uint64_t rootfs_image_size(uint64_t bytes, uint64_t inodes, bool readonly);

/* Build the rootfs of spec inside state_dir. On failure nothing is left in state_dir. */
int rootfs_prepare(const struct oci_spec *spec, const char *state_dir, struct rootfs *out,
		   struct error *err);
void rootfs_destroy(struct rootfs *rootfs);

#endif
