/*
 * The shim's tasks (docs/shim.md "Tasks"): a table of containers keyed by id (task_table.c):
 * one container with a VM of its own, or a pod: the sandbox, which has the VM, and the members
 * libstratus creates inside it (docs/pods.md). What the Task handlers of task_container.c and
 * task_inspect.c keep about each task and its execs (task_exec.c), the agent event connection
 * of each VM (task_events.c), and the host-side helpers of task_io.c (rootfs mounts from
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
#include "google/protobuf/timestamp.pb-c.h"
#include "publish.h"
#include "ttrpc.h"

#define TASK_WAITERS_MAX 64
#define TASK_EXECS_MAX	 256
#define TASK_METHODS_MAX 32
/* Containers per shim: a pod's sandbox and its members (more: ResourceExhausted at Create). */
#define TASK_TABLE_MAX 64

struct task_service;
struct events_connect;

/* One Exec of a task (task_exec.c): registered by Exec, run by Start through a relay child. */
struct shim_exec {
	struct shim_exec *next;
	struct shim_task *task;
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
	struct task_service *ts;
	char *id, *bundle, *rootfs; /* rootfs: where we mounted the request's mounts, or NULL */
	/* A pod member: the id of the sandbox whose VM runs it; NULL: the task has its own VM. */
	char *sandbox;
	char *stdin_path, *stdout_path, *stderr_path;
	bool terminal;
	/* Our child that exits with the init's status: the VM's monitor, or a member's relay. */
	pid_t pid;
	int pidfd;
	int stdin_keep; /* our write end of the stdin FIFO: closed by CloseIO or at exit */
	bool started, exited;
	int exit_status;
	struct timespec exited_at;
	struct ttrpc_call *waiters[TASK_WAITERS_MAX];
	unsigned int n_waiters;
	struct shim_exec *execs;
	unsigned int n_execs;
	/* A task with a VM: our own agent connection (TaskOOM of it and its members), or NULL */
	struct agent_client *events;
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
	/* the containers this shim serves, in Create order (task_table.c) */
	struct shim_task *tasks[TASK_TABLE_MAX];
	unsigned int n_tasks;
	unsigned int n_created; /* Creates that succeeded over the shim's life (timing line) */
	bool shutdown;
	/* STRATUS_SHIM_TIMING (tests/bench/shim_run.sh): time in Task handlers, and the part of
	 * it spent in libstratus's create/start/delete (the VM's boot, set-up and teardown) */
	uint64_t busy_ns, lib_ns;
	uint64_t own_ns[TASK_METHODS_MAX]; /* per method (the service's order), libstratus out */
	struct task_method methods[];
};

/*
 * task_table.c: the table. A new task has no fds (-1); task_table_insert fails with -EEXIST
 * (the id is taken) or -ENOSPC (TASK_TABLE_MAX tasks); task_table_remove takes it out and
 * frees it (the caller closed what it held). task_lookup answers the call NotFound
 * ("container ID: not found") when id has no task.
 */
struct shim_task *task_new(struct task_service *ts);
void task_free(struct shim_task *t);
struct shim_task *task_table_find(const struct task_service *ts, const char *id);
struct shim_task *task_lookup(struct task_service *ts, struct ttrpc_call *call, const char *id);
int task_table_insert(struct task_service *ts, struct shim_task *t);
void task_table_remove(struct task_service *ts, struct shim_task *t);
/* The task whose VM runs t: t itself, or its pod's sandbox (NULL if not in the table). */
struct shim_task *task_vm_owner(struct task_service *ts, struct shim_task *t);

/* task_container.c: the container methods; true if name was one of them (call answered). */
bool task_container_dispatch(struct task_service *ts, const char *name, struct ttrpc_call *call,
			     const ProtobufCMessage *in);
/*
 * t (its id, bundle and t->pid, our child that exits with the init's status, set) joins the
 * table, its exit watched on the loop: what Create does once libstratus created it.
 */
int task_adopt(struct task_service *ts, struct shim_task *t);
/* Kill and reap every task still running when the shim stops (pod members before their
 * sandbox), remove its container, unmount its rootfs; the table ends empty. */
void task_container_cleanup(struct task_service *ts);

/* task_inspect.c: State, Pids, Stats, Update; true if name was one of them (call answered). */
bool task_inspect_dispatch(struct task_service *ts, const char *name, struct ttrpc_call *call,
			   const ProtobufCMessage *in);

void task_reply_message(struct ttrpc_call *call, const ProtobufCMessage *msg);
void task_reply_empty(struct ttrpc_call *call);
void task_timestamp_set(Google__Protobuf__Timestamp *ts, const struct timespec *t);
/* CLOCK_MONOTONIC in ns, for the timing above. */
uint64_t task_now_ns(void);
void task_publish(struct task_service *ts, const char *topic, const ProtobufCMessage *ev);
/* A libstratus failure as a ttrpc status (errno → code), with err's message. */
void task_fail_err(struct ttrpc_call *call, const struct error *err, int r);
int task_code_of(int r);

/*
 * task_exec.c: Exec and the methods given an exec_id; ResizePty for the init too. True if the
 * call was one of them (answered).
 */
bool task_exec_dispatch(struct task_service *ts, const char *name, struct ttrpc_call *call,
			const ProtobufCMessage *in);
/* The task is going (Delete, shim exit): kill every exec's relay, answer its Waits, free. */
void task_exec_cleanup(struct shim_task *t);

/*
 * task_events.c: the shim's own control connection to a VM's agent, on the loop, for the
 * events only the agent knows (EVENT_OOM → TaskOOM, for the VM's task or a pod member of it).
 * Opened after the Create of a task with a VM (one per VM, not per member); closed (after
 * taking what is still buffered) when that task exits. task_events_drain takes what is
 * buffered now, so an OOM kill of a member is published before the member's exit.
 */
void task_events_open(struct shim_task *t);
void task_events_drain(struct shim_task *vm);
void task_events_close(struct shim_task *t);

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
