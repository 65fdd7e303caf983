/*
 * The host cgroup of a container's monitor (docs/runtime.md "Host cgroup"): where on the
 * host's cgroup hierarchies the process that runs the VM lives, so the caller's accounting (a
 * pod's cgroup, a systemd scope) includes the VM. linux.cgroupsPath is resolved as runc
 * resolves it, for the cgroupfs or the systemd manager, and joined in every mounted hierarchy
 * as runc's cgroupfs manager does: the cgroup v2 one on a unified host; every v1 hierarchy
 * (named ones like name=systemd included) and the v2 one on a hybrid host. The hierarchies
 * come from mountinfo; the directories are written directly (no D-Bus). Nothing is enabled or
 * limited here: the container's resources apply in the guest.
 *
 * Nothing here prints: warnings (a hierarchy that refuses us) go to the caller's warn
 * function, which must write to the runtime's log, never to a stream of the container's.
 */
#ifndef STRATUS_RUNTIME_HOST_CGROUP_H
#define STRATUS_RUNTIME_HOST_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

#define HOST_CGROUP_MOUNTINFO "/proc/self/mountinfo"
#define HOST_CGROUP_SELF      "/proc/self/cgroup"
/* how long delete retries a directory still busy (a dead monitor's share processes leaving) */
#define HOST_CGROUP_REMOVE_WAIT_MS 5000

enum host_cgroup_manager {
	HOST_CGROUP_CGROUPFS,
	HOST_CGROUP_SYSTEMD,
	HOST_CGROUP_DISABLED, /* --cgroup-manager disabled: linux.cgroupsPath is not used */
	HOST_CGROUP_AUTO,     /* the shim without options: systemd for slice:prefix:name */
};

/* A warning for the runtime's log (one line, no newline). */
typedef void host_cgroup_warn_fn(const char *msg);

/* One mounted cgroup hierarchy. */
struct host_cgroup_hierarchy {
	char *mount;	   /* its mount point: "/sys/fs/cgroup/memory" */
	char *controllers; /* "memory", "cpu,cpuacct", "name=systemd"; "" for cgroup v2 */
	char *own;	   /* our cgroup in it, below the mount ("/" or "/x"); NULL: unknown */
	bool v2;
	bool cpuset; /* v1 cpuset: a new cgroup needs cpus and mems before it takes a task */
};

/* The host's cgroup hierarchies, each once (a hierarchy mounted twice: the first mount). */
struct host_cgroup_layout {
	struct host_cgroup_hierarchy *h;
	size_t n;
	bool unified; /* cgroup v2 only (no v1 hierarchy): runc's fs2 rules */
};

/* Where a monitor goes: one directory per hierarchy. */
struct host_cgroup_dir {
	char *path;	  /* the directory joined: a mount point + the resolved path */
	char *created;	  /* the top-most directory of path that create made; NULL: none */
	size_t mount_len; /* plan: the mount point is path's first mount_len characters */
	bool cpuset;	  /* plan: a v1 cpuset hierarchy */
};

struct host_cgroup {
	struct host_cgroup_dir *dirs;
	size_t n;
};

/*
 * The hierarchies mounted per mountinfo (HOST_CGROUP_MOUNTINFO), our own cgroup in each per
 * self_cgroup (HOST_CGROUP_SELF); both are parameters so tests can use a fake tree.
 */
int host_cgroup_layout_load(const char *mountinfo, const char *self_cgroup,
			    struct host_cgroup_layout *out, struct error *err);
void host_cgroup_layout_free(struct host_cgroup_layout *l);

/* "x.slice:prefix:name" or ":prefix:name" (CRI's form for a systemd cgroup driver)? */
bool host_cgroup_is_systemd_form(const char *cgroups_path);

/*
 * linux.cgroupsPath as a path below a hierarchy's root ("/a/b", malloc'd into *out).
 * cgroupfs: an absolute path is below the root; a relative one below own (our own cgroup in
 * that hierarchy), or below own's parent when parent_of_own (runc's rule on a unified host);
 * ".." never climbs above the root or that base; a colon is an ordinary character, as for
 * runc. systemd: "slice:prefix:name" is <slice expanded>/<prefix>-<name>.scope (an empty
 * slice is system.slice; a name ending in .slice is used as is). A bad form is -EINVAL naming
 * linux.cgroupsPath.
 */
int host_cgroup_resolve(const char *cgroups_path, enum host_cgroup_manager manager, const char *own,
			bool parent_of_own, char **out, struct error *err);

/* systemd's expansion of a slice name: "a-b.slice" -> "/a.slice/a-b.slice"; "-.slice" -> "". */
int host_cgroup_expand_slice(const char *slice, char **out);

/*
 * linux.cgroupsPath resolved in every hierarchy of l into *out (out->n == 0: nowhere, the
 * monitor stays in the caller's cgroup: no path, the disabled manager, or no hierarchy). A
 * hierarchy where a relative path cannot be resolved (our own cgroup unknown) is skipped with
 * a warning. Nothing is made.
 */
int host_cgroup_plan(const struct host_cgroup_layout *l, const char *cgroups_path,
		     enum host_cgroup_manager manager, struct host_cgroup *out,
		     host_cgroup_warn_fn *warn, struct error *err);

/*
 * Make the missing directories of every hc->dirs[i].path (0755), noting the top-most one
 * made; a new v1 cpuset cgroup gets its parent's cpus and mems. A hierarchy that refuses us
 * (EACCES, EPERM, EROFS) is dropped from hc with a warning; any other failure is an error
 * naming linux.cgroupsPath and nothing made is left.
 */
int host_cgroup_create(struct host_cgroup *hc, host_cgroup_warn_fn *warn, struct error *err);

/*
 * Move pid (0: the caller) into every directory of hc; on failure *failed is the directory
 * that refused. No allocation: safe in a child forked by a threaded process.
 */
int host_cgroup_enter(const struct host_cgroup *hc, pid_t pid, const char **failed);

/*
 * Remove what create made (rmdir, deepest first), retrying a busy directory until wait_ms
 * have passed (all hierarchies together), then leaving it with a warning. With l, only
 * directories below a mount point of l are touched (hc may come from state.json).
 */
int host_cgroup_remove(const struct host_cgroup *hc, const struct host_cgroup_layout *l,
		       int wait_ms, host_cgroup_warn_fn *warn);

/*
 * Move pid into the existing cgroup path (below each hierarchy's root, as containerd's runc
 * shim reads ShimCgroup) in every hierarchy of l where it exists; what refuses us, or where
 * it does not exist, is a warning. Not found anywhere is an error naming what (e.g.
 * "ShimCgroup").
 */
int host_cgroup_join(const struct host_cgroup_layout *l, const char *what, const char *path,
		     pid_t pid, host_cgroup_warn_fn *warn, struct error *err);

/* hc's directories, deep copies (dst is cleared first), and freeing. */
int host_cgroup_copy(struct host_cgroup *dst, const struct host_cgroup *src);
void host_cgroup_clear(struct host_cgroup *hc);

/* A path state.json may name: absolute, no empty, "." or ".." component, not "/". */
bool host_cgroup_path_valid(const char *path);

#endif
