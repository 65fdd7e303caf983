/*
 * The host cgroup of a container's monitor (docs/runtime.md "Host cgroup"): where on the
 * host's cgroup v2 hierarchy the process that runs the VM lives, so the caller's accounting
 * (a pod's cgroup, a systemd scope) includes the VM. linux.cgroupsPath is resolved as runc
 * resolves it, for the cgroupfs or the systemd manager; the directories are written directly
 * (no D-Bus). Nothing is enabled or limited here: the container's resources apply in the guest.
 */
#ifndef STRATUS_RUNTIME_HOST_CGROUP_H
#define STRATUS_RUNTIME_HOST_CGROUP_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

#define HOST_CGROUP_ROOT "/sys/fs/cgroup"
/* a test's other cgroup v2 mount (a hybrid host's unified one); every verb must see the same */
#define HOST_CGROUP_ROOT_ENV "STRATUS_HOST_CGROUP_ROOT"

/* The cgroup v2 mount used: $STRATUS_HOST_CGROUP_ROOT, else HOST_CGROUP_ROOT. */
const char *host_cgroup_root(void);

enum host_cgroup_manager {
	HOST_CGROUP_CGROUPFS,
	HOST_CGROUP_SYSTEMD,
	HOST_CGROUP_DISABLED, /* --cgroup-manager disabled: linux.cgroupsPath is not used */
	HOST_CGROUP_AUTO,     /* the shim: systemd for the slice:prefix:name form, else cgroupfs */
};

/* "x.slice:prefix:name" or ":prefix:name" (CRI's form for a systemd cgroup driver)? */
bool host_cgroup_is_systemd_form(const char *cgroups_path);

/*
 * linux.cgroupsPath as a path below the cgroup root ("/a/b", malloc'd into *out). cgroupfs:
 * an absolute path is below the root, a relative one below the parent of own (our own
 * cgroup, "/..."), ".." never climbs above the root; a colon is an ordinary character there,
 * as for runc. systemd: "slice:prefix:name" is
 * <slice expanded>/<prefix>-<name>.scope (an empty slice is system.slice; a name ending in
 * .slice is used as is). A bad form is -EINVAL naming linux.cgroupsPath.
 */
int host_cgroup_resolve(const char *cgroups_path, enum host_cgroup_manager manager, const char *own,
			char **out, struct error *err);

/* systemd's expansion of a slice name: "a-b.slice" -> "/a.slice/a-b.slice"; "-.slice" -> "". */
int host_cgroup_expand_slice(const char *slice, char **out);

/* Our own cgroup v2 path ("0::/x" in /proc/self/cgroup) into *out. */
int host_cgroup_own(char **out);

/* Is root a cgroup v2 (unified) mount? */
bool host_cgroup_is_v2(const char *root);

/*
 * Create root/path and its missing parents (0755); *created is the top-most directory made
 * (a path like path, or NULL when all existed). On failure nothing made is left.
 */
int host_cgroup_create(const char *root, const char *path, char **created, struct error *err);

/* Move pid (0: the caller) into root/path. */
int host_cgroup_enter(const char *root, const char *path, pid_t pid);

/*
 * Remove root/path and its parents up to created (rmdir, deepest first); stops at a directory
 * still in use (-EBUSY, -ENOTEMPTY), returned so the caller can warn.
 */
int host_cgroup_remove(const char *root, const char *path, const char *created);

/*
 * host_cgroup_remove, retried for up to 5 s while busy: a dead monitor's share processes
 * leave the cgroup as they see the VM gone, not at once.
 */
int host_cgroup_remove_wait(const char *root, const char *path, const char *created);

#endif
