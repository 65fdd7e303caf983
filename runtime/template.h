/*
 * VM templates (docs/runtime.md "Templates"): a snapshot of a guest booted to the point where
 * the agent answers, with no container and no share yet, taken once per (kernel, initramfs,
 * stratus version, vCPUs, memory, device layout) and restored by every monitor that fits it
 * instead of a cold boot. The template VM's devices are the vsock and ROOTFS_MAX_SHARES
 * virtio-fs slots tagged as rootfs.h names shares ("rootfs", "m0", "m1", ...) with no
 * directory behind them; a restore puts the container's shares into their slots and leaves
 * the rest empty (the VMM's rule: the same device types in the same order, the same tags).
 *
 * On disk, under template_root(): <key>/snapshot (the VMM's file) and <key>/template.json
 * (the inputs, when and how long it took), where key is a hash of the inputs; a lock file
 * .lock serialises builders (concurrent creates wait for one) and removals. A directory
 * appears by rename() only once complete. Templates of the same kernel and initramfs paths
 * and VM size under another key (an input changed) are removed when a new one is built.
 */
#ifndef STRATUS_RUNTIME_TEMPLATE_H
#define STRATUS_RUNTIME_TEMPLATE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "guest_assets.h"
#include "oci_spec.h"
#include "rootfs.h"

struct vm_config;

#define TEMPLATE_ENV		"STRATUS_TEMPLATE"     /* "0": always cold-boot */
#define TEMPLATE_DIR_ENV	"STRATUS_TEMPLATE_DIR" /* where templates live */
#define TEMPLATE_DEFAULT_DIR	"/run/stratus/templates"
#define TEMPLATE_ANNOTATION	"io.stratus.vm.template" /* "false": cold-boot this one */
#define TEMPLATE_SNAPSHOT	"snapshot"
#define TEMPLATE_META		"template.json"
#define TEMPLATE_KEY_LEN	16 /* hex digits */
#define TEMPLATE_LOCK_TIMEOUT_S 300
/*
 * Bump when the template VM's devices or command line change: the key changes with it, so
 * templates of the old layout are never restored with the new one.
 */
#define TEMPLATE_LAYOUT_VERSION 1

/* One template, as template.json describes it. */
struct template_info {
	char key[TEMPLATE_KEY_LEN + 1];
	char *dir;		  /* <root>/<key> */
	char *kernel, *initramfs; /* the paths it was built from */
	unsigned int vcpus;
	uint64_t mem_mib;
	uint64_t disk_bytes; /* what its files take on disk */
	char created[64];    /* RFC 3339 */
	uint64_t build_ms;
};

void template_info_clear(struct template_info *t);

/* $STRATUS_TEMPLATE_DIR, or TEMPLATE_DEFAULT_DIR. */
const char *template_root(void);

/* False when $STRATUS_TEMPLATE is "0" or spec's TEMPLATE_ANNOTATION is "false". */
bool template_wanted(const struct oci_spec *spec);

/* The cache key of these inputs (stat of both assets). */
int template_key(const struct guest_assets *assets, unsigned int vcpus, uint64_t mem_mib,
		 char key[TEMPLATE_KEY_LEN + 1], struct error *err);

/*
 * The template's devices in vc (which has everything else): the vsock at vsock_path, then
 * the slots. rootfs: the container's shares go into the slots of their tags (NULL: all
 * empty, for building the template). -E2BIG if rootfs has a share no slot takes, -ENOTSUP
 * if it has a block device.
 */
int template_layout(struct vm_config *vc, const char *vsock_path, const struct rootfs *rootfs);

/* Whether a container with rootfs can be restored from a template. */
bool template_fits(const struct rootfs *rootfs);

/*
 * The snapshot of the template for these inputs, built now if there is none (or if rebuild):
 * its path in *snapshot (free it) and the template's description in info (NULL: not
 * wanted). Waits at most TEMPLATE_LOCK_TIMEOUT_S for another builder. Returns 1 if it built
 * the template, 0 if it was there.
 */
int template_get(const struct guest_assets *assets, unsigned int vcpus, uint64_t mem_mib,
		 bool rebuild, char **snapshot, struct template_info *info, struct error *err);

/* A template that failed to restore: remove its directory (the snapshot's). */
void template_discard(const char *snapshot);

/* Every template under template_root(), sorted by key; *n of them. */
int template_list(struct template_info **out, size_t *n, struct error *err);
void template_list_free(struct template_info *v, size_t n);

/* Remove the template key (a unique prefix is enough), or all when key is NULL. */
int template_remove(const char *key, unsigned int *removed, struct error *err);

#endif
