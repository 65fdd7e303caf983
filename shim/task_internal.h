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

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "agent_client.h"
#include "common/error.h"
#include "container.h"
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
struct task_deferred;

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
	bool starting; /* its Start is in a worker */
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
	/*
	 * Its calls off the loop (task_worker.c): busy counts the jobs in a worker; creating
	 * and deleting hold every other call of the task back, a busy task holds a Delete back
	 * (deferred, re-dispatched in order once it is idle). An exit seen while a Start is in
	 * a worker is reported after it (exit_deferred), so TaskExit follows TaskStart.
	 */
	unsigned int busy;
	bool creating, deleting, starting;
	bool exit_deferred;
	int deferred_status;
	struct task_deferred *deferred;
	unsigned int n_deferred;
};

struct task_method {
	struct task_service *ts;
	const ProtobufCMethodDescriptor *desc;
};

/*
 * The libstratus calls the Task handlers make off the loop, as a table so the unit tests can
 * put slow or failing fakes in (task_service_set_lib); task_lib_stratus is libstratus's.
 */
struct task_lib {
	int (*create)(struct container_create_opts *o, struct error *err);
	int (*start)(const char *root, const char *id, struct error *err);
	int (*kill)(const char *root, const char *id, int signal, bool all, struct error *err);
	int (*delete)(const char *root, const char *id, bool force, struct error *err);
	int (*pause)(const char *root, const char *id, struct error *err);
	int (*resume)(const char *root, const char *id, struct error *err);
	int (*ps)(const char *root, const char *id, struct agent_ps *out, struct error *err);
	int (*stats)(const char *root, const char *id, struct agent_stats *out, struct error *err);
	int (*update)(const char *root, const char *id, const char *json, struct error *err);
	int (*exec_start)(const struct container_exec_start_opts *o,
			  struct container_exec_handle *h, struct error *err);
	int (*exec_kill)(const char *root, const char *id, const char *exec_id, int signal,
			 struct error *err);
	int (*exec_resize)(const char *root, const char *id, const char *exec_id, uint32_t rows,
			   uint32_t cols, struct error *err);
};
extern const struct task_lib task_lib_stratus;

/*
 * One call whose libstratus part runs in a worker (task_worker.c): run() in a worker thread
 * touches only what the job holds (copied strings, its own outputs), never the table; done()
 * runs on the loop thread afterwards, updates the task, publishes, answers the call and frees
 * the job (and its request, through task_job_free). A module embeds it in its own job.
 */
struct task_job {
	struct task_service *ts;
	struct ttrpc_call *call;
	struct shim_task *t;  /* busy while the job is out: never freed under it */
	ProtobufCMessage *in; /* the request, owned */
	unsigned int method;  /* index in ts->methods, for the timing */
	void (*run)(struct task_job *job);
	void (*done)(struct task_job *job);
	int r;
	struct error err;
	uint64_t lib_ns;
	struct task_job *next;
};

#define TASK_WORKERS 4

struct task_pool {
	pthread_mutex_t lock;
	pthread_cond_t work, idle;
	struct task_job *queue, **queue_tail;
	struct task_job *done, **done_tail;
	unsigned int out;	 /* submitted, done() not yet run */
	unsigned int in_workers; /* queued or running in a worker */
	bool stopping;
	pthread_t threads[TASK_WORKERS];
	unsigned int n_threads;
	int event_fd; /* a worker's "done" wakes the loop */
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
	const struct task_lib *lib;
	struct task_pool pool;
	/* The request being dispatched (loop only): a handler that keeps it takes it. */
	ProtobufCMessage *request;
	unsigned int request_method;
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

/*
 * task_worker.c: the pool. task_job_submit hands job (t->busy counted) to a worker, or runs
 * it inline when no worker can be started; task_pool_drain (owner thread, loop stopped) waits
 * for every job and runs its done(). task_request_take takes the request being dispatched.
 * task_defer_maybe keeps a call back while its task is creating or deleting, or a Delete
 * while the task is busy (true: kept); task_release re-dispatches what was kept once the
 * task allows it; task_deferred_fail answers what is kept for a task that goes.
 */
int task_pool_init(struct task_service *ts);
void task_pool_drain(struct task_service *ts);
void task_pool_destroy(struct task_service *ts);
/*
 * A job (size bytes: a module's struct that embeds it first) on task t for the call being
 * dispatched, taking its request; NULL (the call answered) without memory.
 */
struct task_job *task_job_new(struct task_service *ts, struct ttrpc_call *call, struct shim_task *t,
			      size_t size, void (*run)(struct task_job *),
			      void (*done)(struct task_job *));
/* done() of a job that only answers: OK (empty) or libstratus's error. */
void task_job_done_empty(struct task_job *job);
void task_job_submit(struct task_job *job);
void task_job_free(struct task_job *job);
ProtobufCMessage *task_request_take(struct task_service *ts);
bool task_defer_maybe(struct task_service *ts, const char *name, struct ttrpc_call *call,
		      const ProtobufCMessage *in);
void task_release(struct shim_task *t);
/* A task that leaves the table detaches what it held back, then dispatches it again. */
struct task_deferred *task_deferred_take(struct shim_task *t);
void task_deferred_dispatch(struct task_service *ts, struct task_deferred *list);
void task_deferred_fail(struct shim_task *t, const char *why);
/* Dispatch a Task call whose request the caller owns (freed unless a handler takes it). */
void task_dispatch_owned(struct task_service *ts, unsigned int method, struct ttrpc_call *call,
			 ProtobufCMessage *in);
void task_service_set_lib(struct task_service *ts, const struct task_lib *lib);

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

/*
 * Close a kept fd and forget it (-1): closep does not reset it, and a number closed twice
 * may by then be another connection's or another task's (workers open fds meanwhile).
 */
static inline void task_fd_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

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
