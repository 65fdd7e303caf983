/*
 * Where the guest kernel and the production initramfs (stratus-agent as /init) are
 * (docs/runtime.md "Guest kernel and initramfs"), in this order: the STRATUS_KERNEL and
 * STRATUS_INITRAMFS environment variables; next to the stratus binary (a build tree:
 * build/stratus, build/vmlinux, build/stratus-initramfs.cpio); the install prefix
 * (<prefix>/bin/stratus, <prefix>/share/stratus/{vmlinux,stratus-initramfs.cpio}).
 */
#ifndef STRATUS_RUNTIME_GUEST_ASSETS_H
#define STRATUS_RUNTIME_GUEST_ASSETS_H

#include "common/error.h"

#define GUEST_KERNEL_ENV     "STRATUS_KERNEL"
#define GUEST_INITRAMFS_ENV  "STRATUS_INITRAMFS"
#define GUEST_KERNEL_FILE    "vmlinux"
#define GUEST_INITRAMFS_FILE "stratus-initramfs.cpio"

struct guest_assets {
	char *kernel, *initramfs;
};

/* exe_dir: the directory of the running binary (NULL: from /proc/self/exe). */
int guest_assets_find(const char *exe_dir, struct guest_assets *out, struct error *err);
void guest_assets_destroy(struct guest_assets *a);

#endif
