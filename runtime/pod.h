/*
 * Pods (docs/pods.md): several containers in one microVM. Which part a container plays comes
 * from the annotations containerd's CRI plugin writes: the sandbox (its pause container) boots
 * the VM and gets the pod share, a writable virtio-fs share of <its state dir>/pod (a bind
 * mount of itself, MS_SHARED); a member gets no VM: its rootfs and bind-mount sources are bind
 * mounts under <pod>/<member id>/ on the host, and the sandbox's agent creates it from there.
 *
 * This header has the pure parts (pod.c: the role, the member's CREATE mounts and config, unit
 * tested) and the host mounts (pod_mount.c: the share, a member's directory, their removal).
 */
#ifndef STRATUS_RUNTIME_POD_H
#define STRATUS_RUNTIME_POD_H

#include <stdbool.h>
#include <stddef.h>

#include "agent_proto.h"
#include "common/error.h"
#include "oci_spec.h"

#define POD_TYPE_ANNOTATION    "io.kubernetes.cri.container-type"
#define POD_SANDBOX_ANNOTATION "io.kubernetes.cri.sandbox-id"
#define POD_TYPE_SANDBOX       "sandbox"
#define POD_SHARE_DIR	       "pod"	/* in the sandbox's state directory */
#define POD_MEMBER_ROOTFS      "rootfs" /* <pod>/<id>/rootfs */

enum pod_role {
	POD_NONE,    /* one container, one VM */
	POD_SANDBOX, /* boots the VM, gets the pod share */
	POD_MEMBER,  /* created in its sandbox's VM */
};

/*
 * The role of container id from spec's annotations; for a member, *sandbox points into spec
 * (the sandbox's ID, checked as an ID). A sandbox-id naming the container itself is not a
 * member (CRI writes it on the sandbox too).
 */
int pod_role(const struct oci_spec *spec, const char *id, enum pod_role *role, const char **sandbox,
	     struct error *err);

/*
 * A namespace path names a namespace of the host (runc joins /proc/PID/ns/ipc, a CNI netns
 * under /var/run/netns): a container with a VM of its own runs its processes in the guest,
 * which cannot join it, so its config is refused naming linux.namespaces[N].path. A network
 * path is the exception: its interfaces are carried into the VM (netns.h). A member's paths
 * mean something too: they are joined in its sandbox's VM (pod_member_config).
 */
int pod_check_namespaces(const struct oci_spec *spec, enum pod_role role, struct error *err);

/* One bind mount of a member's config, resolved on the host: <pod>/<id>/m<index>. */
struct pod_bind {
	size_t index; /* in spec->mounts */
	char *host;   /* realpath of the source */
	bool dir;     /* a directory (else a regular file) */
	bool ro;      /* its options say ro: read-only on the host too */
};

/* What a member needs on the host and in CREATE (pod_member_plan_destroy releases it). */
struct pod_member_plan {
	struct pod_bind *binds;
	size_t n_binds;
	bool root_readonly;	    /* root.readonly: the rootfs bind is read-only on the host */
	char *rootfs_source;	    /* in the guest: G/<id>/rootfs */
	struct agent_mount *mounts; /* CREATE's mounts */
	uint32_t n_mounts;
	void **owned; /* rootfs_own() */
	size_t n_owned;
};

/*
 * Resolve a member's bind sources (relative ones against bundle, as rootfs_prepare) and refuse
 * what virtio-fs cannot carry, naming mounts[N].source. Nothing is made.
 */
int pod_member_plan(const struct oci_spec *spec, const char *bundle, struct pod_member_plan *out,
		    struct error *err);
/*
 * CREATE's side of the plan, once the pod share's place in the guest (guest_dir, MOUNT_SHARE's
 * answer G) is known: the rootfs is G/<id>/rootfs, a bind mount's source G/<id>/m<N> (fstype
 * bind, its options as given), a bind on /dev/shm a guest tmpfs, other mounts as written.
 */
int pod_member_plan_guest(const struct oci_spec *spec, const char *id, const char *guest_dir,
			  struct pod_member_plan *plan, struct error *err);
void pod_member_plan_destroy(struct pod_member_plan *plan);

/*
 * config.json for a member's CREATE: every linux.namespaces entry with a path (a host path,
 * meaningless in the guest) joins the sandbox's namespace of that type instead
 * ("container:<sandbox>"); everything else as given. A malloc'd string in *out.
 */
int pod_member_config(const char *config, size_t len, const char *sandbox, char **out,
		      struct error *err);

/* ---- host mounts (pod_mount.c) --------------------------------------------------------- */

/* <state_dir>/pod made a bind mount of itself, MS_SHARED; its path into *path. */
int pod_share_create(const char *state_dir, char **path, struct error *err);

/*
 * Lazily unmount (MNT_DETACH) every mount at or below path in our mount namespace; the number
 * left mounted afterwards (0 when all went), or a negative errno if mountinfo is unreadable.
 */
int pod_unmount_below(const char *path);

/*
 * Remove a directory tree, never across a mount: a member's rootfs is the bundle's own
 * directory bind-mounted (same st_dev: FTW_MOUNT would not stop there). What is mounted below
 * path is unmounted first; -EBUSY if a mount stays (then nothing is removed).
 */
int pod_remove_tree(const char *path);

/* Remove the pod share of the sandbox whose state directory is state_dir (unmount, rmdir). */
int pod_share_remove(const char *state_dir);

/*
 * <pod>/<id>/: rootfs (a recursive bind of root) and the plan's binds; the rootfs with
 * root.readonly and each ro bind made read-only on the host (the whole bound tree), so the
 * share's FUSE server refuses their writes whatever the guest kernel does (the guest mounts
 * them ro as well).
 */
int pod_member_mount(const char *pod, const char *id, const char *root,
		     const struct pod_member_plan *plan, struct error *err);

/* Unmount and remove <pod>/<id>/ (nothing when it is not there). */
int pod_member_unmount(const char *pod, const char *id);

#endif
