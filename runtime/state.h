/*
 * A container's state on the host (docs/runtime.md): the directory <root>/<id>/ and its
 * state.json, which holds the OCI state (runtime-spec "State": ociVersion, id, status, pid,
 * bundle, annotations) plus what stratus itself needs to find the container again (the
 * monitor's start time, so a recycled PID is never mistaken for it; the rootfs; created).
 * state.json is written atomically (temp file, fsync, rename, fsync of the directory), so a
 * reader sees the old or the new state and never half of one.
 *
 * The status on disk is what the runtime last did (created, running, paused); the status a
 * caller sees also takes the monitor's liveness into account: a container whose monitor is
 * gone is stopped.
 */
#ifndef STRATUS_RUNTIME_STATE_H
#define STRATUS_RUNTIME_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "host_cgroup.h"

#define STATE_FILE	     "state.json"
#define STATE_ID_MAX	     255
#define STATE_DEFAULT_ROOT   "/run/stratus"
#define STATE_OCI_VERSION    "1.2.0"
#define STATE_MAX_BYTES	     (1u << 20)
#define STATE_MAX_ANNOTATION 4096 /* entries */

enum container_status {
	CONTAINER_CREATING,
	CONTAINER_CREATED,
	CONTAINER_RUNNING,
	CONTAINER_PAUSED,
	CONTAINER_STOPPED,
};

struct state_annotation {
	char *key, *value;
};

struct container_state {
	char *oci_version;
	char *id;
	enum container_status status;
	pid_t pid;		 /* the monitor */
	uint64_t pid_start_time; /* /proc/<pid>/stat field 22, to detect PID reuse */
	unsigned int vm_vcpus;	 /* the VM's size, fixed at create (0: not recorded) */
	uint64_t vm_mem_mib;
	char *bundle;  /* absolute */
	char *rootfs;  /* root.path, absolute */
	char *created; /* RFC 3339, UTC, nanoseconds */
	char *owner;   /* "" */
	size_t n_annotations;
	struct state_annotation *annotations;
	char *pod_share; /* a pod's sandbox: the tag of its pod share (docs/pods.md); or NULL */
	char *sandbox;	 /* a pod's member: its sandbox's ID; or NULL (pid is then the relay) */
	/* the monitor's (a member: its relay's) host cgroup directories (docs/runtime.md) */
	struct host_cgroup host_cgroup;
};

const char *container_status_name(enum container_status status);

/* A container ID as runc accepts it: 1..255 of [A-Za-z0-9_+.-], not "." or "..". */
int state_id_check(const char *id, struct error *err);

/* <root>/<id> into a malloc'd string. */
int state_dir_path(const char *root, const char *id, char **out);

/*
 * Locks between racing stratus commands (state_lock.c, docs/runtime.md "Locking"): every verb
 * that changes a container holds <root>/<id>/lock (flock) for its whole run; --root itself is
 * locked exclusively only while a container's directory is made or removed. Waits are bounded
 * by STRATUS_LOCK_TIMEOUT seconds (default STATE_LOCK_TIMEOUT_S), then fail with one line.
 */
#define STATE_LOCK_FILE	       "lock"
#define STATE_LOCK_TIMEOUT_ENV "STRATUS_LOCK_TIMEOUT"
#define STATE_LOCK_TIMEOUT_S   300

int state_lock_timeout_ms(void);

/* flock(op) on the --root directory into *fd (close it to unlock). */
int state_lock_root(const char *root, int op, int *fd, struct error *err);

/*
 * create: make <root>/<id>/ (the root must exist) and hold its lock in *fd; -EEXIST
 * ("container ... already exists") when the directory is there, made by a rival create.
 */
int state_lock_create(const char *root, const char *id, int *fd, struct error *err);

/*
 * The container's lock into *fd, waiting for another holder; -ENOENT ("container ... does
 * not exist") when there is no such container, or it was deleted while we waited.
 */
int state_lock(const char *root, const char *id, int *fd, struct error *err);

/* Remove <root>/<id>/ with remove_tree, --root locked exclusively meanwhile. */
int state_remove_dir(const char *root, const char *id, int (*remove_tree)(const char *path),
		     struct error *err);

void state_unlock(int fd);

/* Write <dir>/state.json atomically. */
int state_write(const char *dir, const struct container_state *st, struct error *err);

/*
 * Read <dir>/state.json into *st (release with state_clear). -ENOENT when there is none; a
 * file that is not a state of ours is -EINVAL with the field named.
 */
int state_read(const char *dir, struct container_state *st, struct error *err);
int state_parse(const char *json, size_t len, struct container_state *st, struct error *err);

void state_clear(struct container_state *st);

/*
 * The state as a caller sees it (`stratus state`, the hooks' stdin): the OCI fields plus
 * rootfs, created and owner as runc prints them; private fields left out. Pretty-printed
 * when pretty. A malloc'd string in *out.
 */
int state_to_json(const struct container_state *st, bool pretty, char **out);

/* Now as RFC 3339 with nanoseconds ("2024-05-01T10:00:00.123456789Z"). */
int state_timestamp(char *buf, size_t len);

/*
 * The start time of pid (clock ticks since boot), 0 and *start, or -ESRCH when there is no
 * such process or it is a zombie (it exited; only its parent's wait is left).
 */
int process_start_time(pid_t pid, uint64_t *start);

/* Is the process that st->pid named when the state was written still alive? */
bool state_monitor_alive(const struct container_state *st);

/* The status a caller sees: st->status, or stopped when the monitor is gone. */
enum container_status state_live_status(const struct container_state *st);

#endif
