/*
 * The shim's one task (one container per VM, docs/shim.md "Tasks"): what the Task handlers of
 * task_container.c keep about it and its execs (task_exec.c), its agent event connection
 * (task_events.c), and the host-side helpers of task_io.c (rootfs mounts from
 * CreateTaskRequest, containerd's stdio FIFOs).
 */
#ifndef STRATUS_SHIM_TASK_INTERNAL_H
#define STRATUS_SHIM_TASK_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "agent_client.h"
#include "common/error.h"
#include "containerd/types/mount.pb-c.h"
#include "publish.h"
#include "ttrpc.h"

#define TASK_WAITERS_MAX 64
#define TASK_EXECS_MAX	 256
#define TASK_METHODS_MAX 32

struct task_service;
struct events_connect;

/* One Exec of the task (task_exec.c): registered by Exec, run by Start through a relay child. */
struct shim_exec {
	struct shim_exec *next;
	struct task_service *ts;
	char *id; /* containerd's exec id, also the agent's */
	char *process;
	size_t process_len;
	char *stdin_path, *stdout_path, *stderr_path;
	bool terminal;
	pid_t relay_pid; /* container_exec_start's relay child: exits with the process's status */
	int pidfd;
	uint32_t pid; /* the guest's */
	int stdin_keep;
	bool started, exited;
	int exit_status;
	struct timespec exited_at;
	struct ttrpc_call *waiters[TASK_WAITERS_MAX];
	unsigned int n_waiters;
};

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
	struct shim_exec *execs;
	unsigned int n_execs;
	struct agent_client *events;	       /* our own agent connection (TaskOOM), or NULL */
	struct events_connect *events_connect; /* its handshake under way (task_events.c) */
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
	/* STRATUS_SHIM_TIMING (tests/bench/shim_run.sh): time in Task handlers, and the part of
	 * it spent in libstratus's create/start/delete (the VM's boot, set-up and teardown) */
	uint64_t busy_ns, lib_ns;
	uint64_t own_ns[TASK_METHODS_MAX]; /* per method (the service's order), libstratus out */
	struct shim_task task;
	struct task_method methods[];
};

/* task_container.c: the container methods; true if name was one of them (call answered). */
bool task_container_dispatch(struct task_service *ts, const char *name, struct ttrpc_call *call,
			     const ProtobufCMessage *in);
/* Kill and reap a task still running when the shim stops; unmount its rootfs. */
void task_container_cleanup(struct task_service *ts);
void task_reply_message(struct ttrpc_call *call, const ProtobufCMessage *msg);
/* CLOCK_MONOTONIC in ns, for the timing above. */
uint64_t task_now_ns(void);
void task_publish(struct task_service *ts, const char *topic, const ProtobufCMessage *ev);
/* A libstratus failure as a ttrpc status (errno → code), with err's message. */
void task_fail_err(struct ttrpc_call *call, const struct error *err, int r);

/*
 * task_exec.c: Exec and the methods given an exec_id; ResizePty for the init too. True if the
 * call was one of them (answered).
 */
bool task_exec_dispatch(struct task_service *ts, const char *name, struct ttrpc_call *call,
			const ProtobufCMessage *in);
/* The task is going (Delete, shim exit): kill every exec's relay, answer its Waits, free. */
void task_exec_cleanup(struct task_service *ts);

/*
 * task_events.c: the shim's own control connection to the task's agent, on the loop, for the
 * events only the agent knows (EVENT_OOM → TaskOOM). Opened after Create; closed (after
 * taking what is still buffered) when the task exits.
 */
void task_events_open(struct task_service *ts);
void task_events_close(struct task_service *ts);

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
