/*
 * How a container's root.path and its bind mounts reach the guest (docs/runtime.md "Rootfs
 * and mounts"): as virtio-fs shares served by the monitor's VMM. root.path is the share
 * tagged "rootfs", sent to the agent as rootfs kind 1 (virtio-fs) and read-only in the share
 * when root.readonly is true; the container's writes land in root.path on the host. Every
 * bind mount of a host path becomes a share too: a directory is its own share ("m0", "m1",
 * ...) that the agent mounts (fstype virtiofs) straight on the destination. Regular files
 * are grouped by their parent directory, but the guest never sees that directory: the
 * monitor, in a mount namespace of its own, bind-mounts exactly those files into a small
 * read-only tmpfs at <state_dir>/files-<tag> (rootfs_stage_files) and shares that. In the
 * guest the share is mounted on a staging directory in the container's /dev tmpfs, the agent
 * bind-mounts each file from there, and a tmpfs covers the staging directory last. Other
 * mounts (proc, tmpfs, ...) go to the agent as written. rootfs_prepare() is pure host work
 * (stat, realpath): no VM, unit-tested.
 */
#ifndef STRATUS_RUNTIME_ROOTFS_H
#define STRATUS_RUNTIME_ROOTFS_H

#include <stdbool.h>
#include <stdint.h>

#include "agent_proto.h"
#include "oci_spec.h"

#define ROOTFS_TAG "rootfs"
/* At most VM_MAX_DEVICES (16) devices per VM: one is the vsock; the rest can be shares. */
#define ROOTFS_MAX_SHARES 15
#define ROOTFS_TAG_MAX	  16
/* Where the agent mounts a container's rootfs in the guest (agent.h AGENT_DEFAULT_RUN_DIR,
 * docs/agent-protocol.md "Filesystem"): bind sources name paths below it. */
#define ROOTFS_GUEST_RUN_DIR "/run/stratus"
/* Inside the container's /dev (a tmpfs): where the parents of single files are mounted. */
#define ROOTFS_STAGING "/dev/.stratus-shares"
/*
 * A block-device rootfs on request: the annotation names a disk image (or block device) that
 * is attached as virtio-blk and mounted as rootfs kind 2 instead of sharing root.path; its
 * filesystem type is the second annotation's (default ext4). Bind mounts stay shares.
 */
#define ROOTFS_BLOCK_ANNOTATION	       "io.stratus.rootfs.block"
#define ROOTFS_BLOCK_FSTYPE_ANNOTATION "io.stratus.rootfs.block.fstype"
#define ROOTFS_GUEST_DEVICE	       "/dev/vda"

/* In the state directory: the host side of a share of single files (files-<tag>). */
#define ROOTFS_FILES_PREFIX "files-"

struct rootfs_file {
	char *host; /* the resolved host file */
	char *name; /* its name in the share */
	bool readonly;
};

struct rootfs_share {
	char tag[ROOTFS_TAG_MAX];
	char *path; /* the host directory; for files, <state_dir>/files-<tag> */
	bool readonly;
	struct rootfs_file *files; /* bound into path by rootfs_stage_files() */
	uint32_t n_files;
};

struct rootfs {
	struct rootfs_share shares[ROOTFS_MAX_SHARES]; /* [0] is the rootfs, unless block */
	uint32_t n_shares;
	char *block; /* ROOTFS_BLOCK_ANNOTATION's image, attached as virtio-blk; or NULL */
	bool block_readonly;
	uint32_t kind;		    /* AGENT_ROOTFS_* for CREATE */
	const char *source;	    /* in the guest: the tag */
	const char *fstype;	    /* unused for virtio-fs */
	const char *options;	    /* unused for virtio-fs */
	struct agent_mount *mounts; /* CREATE's mounts, sources translated for the guest */
	uint32_t n_mounts;
	void **owned; /* the strings and option arrays of mounts */
	size_t n_owned;
};

/*
 * Translate spec's root and mounts for container id whose state directory is state_dir;
 * relative bind sources are relative to bundle (as the runtime spec says). Errors name the
 * field: `mounts[N].source: ...`. On failure out holds nothing.
 */
int rootfs_prepare(const struct oci_spec *spec, const char *bundle, const char *id,
		   const char *state_dir, struct rootfs *out, struct error *err);
void rootfs_destroy(struct rootfs *rootfs);

/* A bind mount (type bind, or a bind/rbind option); its ro (the last of ro/rw wins). */
bool rootfs_mount_is_bind(const struct oci_mount *m);
bool rootfs_mount_is_ro(const struct oci_mount *m);
/*
 * The source of bind mount mounts[i] resolved on the host (realpath; a relative one against
 * bundle) into *path (malloc'd), *dir for a directory; anything but a directory or a regular
 * file is refused, naming mounts[i].source.
 */
int rootfs_bind_source(const struct oci_mount *m, size_t i, const char *bundle, char **path,
		       bool *dir, struct error *err);
/* Strings and arrays a translation owns: p appended to *owned (NULL, p freed, on failure). */
void *rootfs_own(void ***owned, size_t *n, void *p);
char *rootfs_own_printf(void ***owned, size_t *n, const char *fmt, ...) _printf_(3, 4);
/* A bind on /dev/shm as the guest makes it: a tmpfs of its own (static strings, m's target). */
void rootfs_shm_mount(const struct oci_mount *m, struct agent_mount *out);

/*
 * In the monitor, before the VM is built: enter a mount namespace of its own (nothing is
 * mounted on the host's) and fill each files share: a tmpfs at its path with exactly its
 * files bind-mounted (read-only ones remounted so), then the tmpfs made read-only.
 */
int rootfs_stage_files(const struct rootfs *rootfs, struct error *err);

#endif
