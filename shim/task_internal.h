/*
 * The shim's one task (one container per VM, docs/shim.md "Tasks"): what the Task handlers of
 * task_container.c keep about it, and the host-side helpers of task_io.c (rootfs mounts from
 * CreateTaskRequest, containerd's stdio FIFOs).
 */
#ifndef STRATUS_SHIM_TASK_INTERNAL_H
#define STRATUS_SHIM_TASK_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "common/error.h"
#include "containerd/types/mount.pb-c.h"
#include "publish.h"
#include "ttrpc.h"

#define TASK_WAITERS_MAX 64

struct shim_task {
	char *id, *bundle, *rootfs; /* rootfs: where we mounted the request's mounts, or NULL */
	char *stdin_path, *stdout_path, *stderr_path;
	bool terminal;
	pid_t pid; /* the monitor (our child); 0 before Create */
	int pidfd;
	int stdin_keep; /* our write end of the stdin FIFO: closed by CloseIO or at exit */
	bool started, exited;
	int exit_status;
	struct timespec exited_at;
	struct ttrpc_call *waiters[TASK_WAITERS_MAX];
	unsigned int n_waiters;
};

struct task_method {
	struct task_service *ts;
	const ProtobufCMethodDescriptor *desc;
};

struct task_service {
	struct ttrpc_server *srv;
	char *id;
	char *root; /* libstratus state root */
	struct shim_publisher *publisher;
	unsigned int containers; /* tasks this shim serves (0 or 1: one container per VM) */
	bool shutdown;
	struct shim_task task;
	struct task_method methods[];
};

/* task_container.c: the container methods; true if name was one of them (call answered). */
bool task_container_dispatch(struct task_service *ts, const char *name, struct ttrpc_call *call,
			     const ProtobufCMessage *in);
/* Kill and reap a task still running when the shim stops; unmount its rootfs. */
void task_container_cleanup(struct task_service *ts);
void task_reply_message(struct ttrpc_call *call, const ProtobufCMessage *msg);

/*
 * Mount the request's rootfs mounts on target (created if missing), in order, as runc's shim
 * does; on failure nothing stays mounted. 0 mounts: nothing to do.
 */
int task_rootfs_mount(Containerd__Types__Mount **mounts, size_t n, const char *target,
		      struct error *err);
/* Unmount everything stacked on target (lazy, so a busy mount does not fail delete). */
void task_rootfs_unmount(const char *target);

/*
 * containerd's FIFOs as the monitor's fds 0/1/2: fds[i] is the FIFO opened for the monitor's
 * side ("" paths: /dev/null), *stdin_keep a write end the shim keeps so the container's stdin
 * sees EOF only after CloseIO (or -1 when there is no stdin FIFO).
 */
int task_stdio_open(const char *in, const char *out, const char *errp, int fds[3], int *stdin_keep,
		    struct error *err);

#endif
