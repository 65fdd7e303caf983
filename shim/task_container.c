/*
 * The life-cycle methods of containerd.task.v2.Task for the shim's tasks (task_table.c): each
 * Create runs libstratus's container_create() with the container's own id and bundle, as
 * `stratus create` does. A container with a VM of its own gets a monitor; a pod member (its
 * sandbox-id annotation names another container, docs/pods.md) gets a relay that libstratus
 * runs against the sandbox's VM. Either is our child and exits with the init's status after
 * draining its output: its pidfd sits on the ttrpc loop, and when it exits we reap it, publish
 * TaskExit with the task's id and answer the task's kept Waits. Requests naming an exec go to
 * task_exec.c, State/Pids/Stats/Update to task_inspect.c. The libstratus part of Create,
 * Start, Kill, Delete, Pause and Resume runs in a worker (task_worker.c): each is a check on
 * the loop, a run() in the worker and a done() back on the loop. docs/shim.md "Tasks",
 * "Threading".
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container.h"
#include "containerd/cgroups/v2/metrics.pb-c.h"
#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "containerd/types/task.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "shim.h"
#include "shim_options.h"
#include "task_internal.h"
#include "task_service.h"

int task_code_of(int r)
{
	switch (r) {
	case -ENOENT:
	case -ESRCH:
		return TTRPC_NOT_FOUND;
	case -EEXIST:
		return TTRPC_ALREADY_EXISTS;
	case -EINVAL:
		return TTRPC_INVALID_ARGUMENT;
	case -EBUSY:
	case -EAGAIN:
		return TTRPC_FAILED_PRECONDITION;
	case -ENOSPC:
		return TTRPC_RESOURCE_EXHAUSTED;
	default:
		return TTRPC_UNKNOWN;
	}
}

void task_fail_err(struct ttrpc_call *call, const struct error *err, int r)
{
	ttrpc_call_fail(call, task_code_of(r), "%s", err->msg[0] ? err->msg : strerror(-r));
}

/*
 * libstratus's warnings, to the shim's log (its stderr, the bundle's log FIFO). Never to fd 2
 * while create runs: that is the container's stderr then (create_with_stdio), so the log is
 * the fd it saved.
 */
static _Atomic int warn_fd = STDERR_FILENO;
/* fds 0-2 are the process's: one Create at a time swaps them (workers run Creates). */
static pthread_mutex_t create_stdio_lock = PTHREAD_MUTEX_INITIALIZER;

static void warn_log(const char *msg)
{
	dprintf(warn_fd, "%s: %s\n", SHIM_NAME, msg);
}

void task_reply_empty(struct ttrpc_call *call)
{
	Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;

	task_reply_message(call, &empty.base);
}

void task_publish(struct task_service *ts, const char *topic, const ProtobufCMessage *ev)
{
	if (ts->publisher && shim_publisher_publish(ts->publisher, topic, ev) < 0)
		fprintf(stderr, "%s: event %s dropped: queue full\n", SHIM_NAME, topic);
}

/* The request names our task (its id) and no exec (task_exec.c serves those). */
/* The request's task, naming no exec (task_exec.c serves those); else the call is answered. */
static struct shim_task *check_task(struct task_service *ts, struct ttrpc_call *call,
				    const char *id, const char *exec_id)
{
	struct shim_task *t = task_lookup(ts, call, id);

	if (t && exec_id && exec_id[0]) {
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "exec %s of task %s: not found", exec_id,
				id);
		return NULL;
	}
	return t;
}

void task_timestamp_set(Google__Protobuf__Timestamp *ts, const struct timespec *t)
{
	ts->seconds = t->tv_sec;
	ts->nanos = (int32_t)t->tv_nsec;
}

/* The init exited with status (its monitor's or relay's): record it, TaskExit, answer Waits. */
static void task_exited(struct shim_task *t, int status)
{
	struct task_service *ts = t->ts;
	struct shim_task *vm = task_vm_owner(ts, t);
	Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
	Containerd__Task__V2__WaitResponse resp = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

	t->exited = true;
	t->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	clock_gettime(CLOCK_REALTIME, &t->exited_at);
	if (t->pidfd >= 0) {
		ttrpc_server_remove_fd(ts->srv, t->pidfd);
		task_fd_close(&t->pidfd);
	}
	task_fd_close(&t->stdin_keep);
	/* an OOM event still buffered comes before the exit; the VM's connection ends with it */
	if (vm == t)
		task_events_close(t);
	else if (vm)
		task_events_drain(vm);
	task_timestamp_set(&at, &t->exited_at);
	ev.container_id = t->id;
	ev.id = t->id;
	ev.pid = (uint32_t)t->pid;
	ev.exit_status = (uint32_t)t->exit_status;
	ev.exited_at = &at;
	task_publish(ts, "/tasks/exit", &ev.base);
	resp.exit_status = (uint32_t)t->exit_status;
	resp.exited_at = &at;
	for (unsigned int i = 0; i < t->n_waiters; i++)
		task_reply_message(t->waiters[i], &resp.base);
	t->n_waiters = 0;
}

static void on_init_exit(int fd, uint32_t events, void *opaque)
{
	struct shim_task *t = opaque;
	int status;
	pid_t p;

	(void)fd;
	(void)events;
	p = waitpid(t->pid, &status, WNOHANG);
	if (p < 0 && errno == ECHILD)
		status = 255 << 8; /* reaped elsewhere: status lost */
	else if (p != t->pid)
		return;
	if (t->starting) {
		/* its Start is in a worker: TaskExit comes after TaskStart (start_done) */
		ttrpc_server_remove_fd(t->ts->srv, t->pidfd);
		task_fd_close(&t->pidfd);
		t->exit_deferred = true;
		t->deferred_status = status;
		return;
	}
	task_exited(t, status);
}

static void task_watch(struct task_service *ts, struct shim_task *t)
{
	t->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (t->pidfd < 0 || ttrpc_server_add_fd(ts->srv, t->pidfd, EPOLLIN, on_init_exit, t) < 0)
		fprintf(stderr, "%s: task %s: cannot watch its process (pid %d): %s\n", SHIM_NAME,
			t->id, (int)t->pid, strerror(errno));
}

int task_adopt(struct task_service *ts, struct shim_task *t)
{
	int r = task_table_insert(ts, t);

	if (r < 0)
		return r;
	task_watch(ts, t);
	return 0;
}

static int dup_std(int fds[3])
{
	for (int i = 0; i < 3; i++) {
		fds[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
		if (fds[i] < 0)
			return -errno;
	}
	return 0;
}

/* container_create with fds 0/1/2 = the FIFOs, which the monitor (or relay) inherits. */
static int create_with_stdio(const struct task_lib *lib, struct container_create_opts *o,
			     const int stdio[3], struct error *err)
{
	int saved[3] = { -1, -1, -1 }, r;

	pthread_mutex_lock(&create_stdio_lock);
	r = dup_std(saved);
	if (r < 0) {
		error_set_errno(err, r, "cannot save stdio");
		goto out;
	}
	fflush(stderr);
	warn_fd = saved[2];
	for (int i = 0; i < 3; i++)
		dup2(stdio[i], i);
	r = lib->create(o, err);
	for (int i = 0; i < 3; i++)
		dup2(saved[i], i);
	warn_fd = STDERR_FILENO;
out:
	for (int i = 0; i < 3; i++) {
		if (saved[i] >= 0)
			close(saved[i]);
	}
	pthread_mutex_unlock(&create_stdio_lock);
	return r;
}

static int task_strdup_paths(struct shim_task *t, const Containerd__Task__V2__CreateTaskRequest *q)
{
	t->id = strdup(q->id);
	t->bundle = strdup(q->bundle);
	t->stdin_path = strdup(q->stdin);
	t->stdout_path = strdup(q->stdout);
	t->stderr_path = strdup(q->stderr);
	if (q->n_rootfs && asprintf(&t->rootfs, "%s/rootfs", q->bundle) < 0)
		t->rootfs = NULL;
	if (!t->id || !t->bundle || !t->stdin_path || !t->stdout_path || !t->stderr_path ||
	    (q->n_rootfs && !t->rootfs))
		return -ENOMEM;
	t->terminal = q->terminal;
	return 0;
}

/*
 * A pod member names its sandbox in the bundle's annotation (docs/pods.md "Who is what"),
 * libstratus having checked that the sandbox exists; read after a successful create, so a
 * config.json it refused never gets here.
 */
static int task_set_sandbox(struct shim_task *t)
{
	char sandbox[STATE_ID_MAX + 1];
	struct error err = { 0 };

	if (shim_sandbox_id(t->bundle, sandbox, sizeof(sandbox), &err) < 0 || !sandbox[0] ||
	    !strcmp(sandbox, t->id))
		return 0;
	t->sandbox = strdup(sandbox);
	return t->sandbox ? 0 : -ENOMEM;
}

static void publish_create(struct task_service *ts, struct shim_task *t,
			   const Containerd__Task__V2__CreateTaskRequest *q)
{
	Containerd__Events__TaskCreate ev = CONTAINERD__EVENTS__TASK_CREATE__INIT;
	Containerd__Events__TaskIO io = CONTAINERD__EVENTS__TASK_IO__INIT;

	io.stdin = q->stdin;
	io.stdout = q->stdout;
	io.stderr = q->stderr;
	io.terminal = q->terminal;
	ev.container_id = q->id;
	ev.bundle = q->bundle;
	ev.n_rootfs = q->n_rootfs;
	ev.rootfs = q->rootfs;
	ev.io = &io;
	ev.checkpoint = q->checkpoint;
	ev.pid = (uint32_t)t->pid;
	task_publish(ts, "/tasks/create", &ev.base);
}

/* What Create refuses before touching anything; false when the call was answered. */
static bool create_check(struct task_service *ts, struct ttrpc_call *call,
			 const Containerd__Task__V2__CreateTaskRequest *q)
{
	if (!q->id[0] || !q->bundle[0]) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "%s: empty",
				q->id[0] ? "bundle" : "id");
		return false;
	}
	if (task_table_find(ts, q->id)) {
		ttrpc_call_fail(call, TTRPC_ALREADY_EXISTS, "container %s: already exists", q->id);
		return false;
	}
	if (ts->n_tasks == TASK_TABLE_MAX) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED,
				"container %s: this shim already serves %d containers", q->id,
				TASK_TABLE_MAX);
		return false;
	}
	if (q->checkpoint[0]) {
		ttrpc_call_fail(call, TTRPC_UNIMPLEMENTED,
				"checkpoint: restoring a task from a checkpoint is not supported");
		return false;
	}
	return true;
}

/*
 * The manager for linux.cgroupsPath: containerd.runc.v1.Options' SystemdCgroup when Create's
 * options are those, else the path's form says (host_cgroup.h, HOST_CGROUP_AUTO).
 */
static int task_cgroup_manager(const Google__Protobuf__Any *options,
			       enum host_cgroup_manager *manager, struct error *err)
{
	struct shim_runc_options ro;
	int r;

	*manager = HOST_CGROUP_AUTO;
	if (!options)
		return 0;
	r = shim_runc_options_from_any("options", options->type_url, options->value.data,
				       options->value.len, &ro, err);
	if (r == 0 && ro.present)
		*manager = ro.systemd_cgroup ? HOST_CGROUP_SYSTEMD : HOST_CGROUP_CGROUPFS;
	shim_runc_options_clear(&ro);
	return r;
}

struct create_job {
	struct task_job job;
	struct container_create_opts o;
	int stdio[3];
};

/* In a worker: the VM boots (or the member is created in its sandbox's). */
static void create_run(struct task_job *job)
{
	struct create_job *cj = container_of(job, struct create_job, job);

	job->r = create_with_stdio(job->ts->lib, &cj->o, cj->stdio, &job->err);
}

/* The task leaves the table; what it held back is dispatched again (NotFound, ...). */
static void task_leave(struct task_service *ts, struct shim_task *t)
{
	struct task_deferred *held = task_deferred_take(t);

	task_table_remove(ts, t);
	task_deferred_dispatch(ts, held);
}

static void create_done(struct task_job *job)
{
	struct create_job *cj = container_of(job, struct create_job, job);
	const Containerd__Task__V2__CreateTaskRequest *q = (const void *)job->in;
	Containerd__Task__V2__CreateTaskResponse resp =
		CONTAINERD__TASK__V2__CREATE_TASK_RESPONSE__INIT;
	struct task_service *ts = job->ts;
	struct shim_task *t = job->t;
	int r = job->r;

	for (int i = 0; i < 3; i++)
		close(cj->stdio[i]);
	t->creating = false;
	if (r < 0)
		goto fail;
	t->pid = cj->o.monitor_pid;
	if (task_set_sandbox(t) < 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
		ts->lib->delete (ts->root, t->id, true, &job->err);
		r = error_set(&job->err, -ENOMEM, "out of memory");
		goto fail;
	}
	task_watch(ts, t);
	ts->n_created++;
	publish_create(ts, t, q);
	if (!t->sandbox)
		task_events_open(t); /* one per VM: a member's events come on its sandbox's */
	resp.pid = (uint32_t)t->pid;
	task_reply_message(job->call, &resp.base);
	task_job_free(job);
	task_release(t);
	return;
fail:
	if (t->rootfs)
		task_rootfs_unmount(t->rootfs);
	task_fd_close(&t->stdin_keep);
	task_fail_err(job->call, &job->err, r);
	task_job_free(job);
	task_leave(ts, t);
}

static void task_create(struct task_service *ts, struct ttrpc_call *call,
			const Containerd__Task__V2__CreateTaskRequest *q)
{
	struct create_job *cj;
	struct shim_task *t;
	struct error err = { 0 };
	int r;

	if (!create_check(ts, call, q))
		return;
	cj = calloc(1, sizeof(*cj));
	if (!cj) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	cj->o = (struct container_create_opts){ .root = ts->root,
						.id = q->id,
						.bundle = q->bundle };
	r = task_cgroup_manager(q->options, &cj->o.cgroup_manager, &err);
	if (r < 0) {
		free(cj);
		task_fail_err(call, &err, r);
		return;
	}
	t = task_new(ts);
	if (!t || task_strdup_paths(t, q) < 0) {
		task_free(t);
		free(cj);
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	r = task_rootfs_mount(q->rootfs, q->n_rootfs, t->rootfs ? t->rootfs : "", &err);
	if (r < 0) {
		free(t->rootfs);
		t->rootfs = NULL;
		goto fail;
	}
	r = task_stdio_open(q->stdin, q->stdout, q->stderr, cj->stdio, &t->stdin_keep, &err);
	if (r < 0)
		goto fail;
	/* in the table from now on, so a second Create of the id is AlreadyExists and the
	 * task's other calls wait for this one (task_defer_maybe) */
	t->creating = true;
	r = task_table_insert(ts, t);
	if (r < 0) {
		for (int i = 0; i < 3; i++)
			close(cj->stdio[i]);
		error_set(&err, r, "container %s: cannot be added", q->id);
		goto fail;
	}
	/* A terminal: the monitor relays fds 0/1 to the guest's pty (stdout carries it all). */
	cj->o.foreground = q->terminal;
	cj->job.ts = ts;
	cj->job.call = call;
	cj->job.t = t;
	cj->job.in = task_request_take(ts);
	cj->job.method = ts->request_method;
	cj->job.run = create_run;
	cj->job.done = create_done;
	task_job_submit(&cj->job);
	return;
fail:
	if (t->rootfs)
		task_rootfs_unmount(t->rootfs);
	task_fd_close(&t->stdin_keep);
	task_free(t);
	free(cj);
	task_fail_err(call, &err, r);
}

static void start_run(struct task_job *job)
{
	const Containerd__Task__V2__StartRequest *q = (const void *)job->in;

	job->r = job->ts->lib->start(job->ts->root, q->id, &job->err);
}

static void start_done(struct task_job *job)
{
	Containerd__Task__V2__StartResponse resp = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
	Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
	struct shim_task *t = job->t;

	t->starting = false;
	if (job->r < 0) {
		task_fail_err(job->call, &job->err, job->r);
	} else {
		t->started = true;
		ev.container_id = t->id;
		ev.pid = (uint32_t)t->pid;
		task_publish(job->ts, "/tasks/start", &ev.base);
		resp.pid = (uint32_t)t->pid;
		task_reply_message(job->call, &resp.base);
	}
	if (t->exit_deferred) {
		t->exit_deferred = false;
		task_exited(t, t->deferred_status);
	}
	task_job_free(job);
	task_release(t);
}

static void task_start(struct task_service *ts, struct ttrpc_call *call,
		       const Containerd__Task__V2__StartRequest *q)
{
	struct shim_task *t = check_task(ts, call, q->id, q->exec_id);
	struct task_job *job;

	if (!t)
		return;
	if (t->exited || t->started || t->starting) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "task %s: already %s", t->id,
				t->exited ? "stopped" : "started");
		return;
	}
	job = task_job_new(ts, call, t, sizeof(*job), start_run, start_done);
	if (!job)
		return;
	t->starting = true;
	task_job_submit(job);
}

static void kill_run(struct task_job *job)
{
	const Containerd__Task__V2__KillRequest *q = (const void *)job->in;

	job->r = job->ts->lib->kill(job->ts->root, q->id, (int)q->signal, q->all, &job->err);
}

static void task_kill(struct task_service *ts, struct ttrpc_call *call,
		      const Containerd__Task__V2__KillRequest *q)
{
	struct shim_task *t = check_task(ts, call, q->id, q->exec_id);
	struct task_job *job;

	if (!t)
		return;
	if (q->signal == 0 || q->signal >= 65) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "signal: %u is not a signal",
				q->signal);
		return;
	}
	if (t->exited) {
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "task %s: process already finished", t->id);
		return;
	}
	job = task_job_new(ts, call, t, sizeof(*job), kill_run, task_job_done_empty);
	if (job)
		task_job_submit(job);
}

/* A task that was never started, or that must go now: kill its process and reap it. */
static void task_reap_now(struct shim_task *t)
{
	int status;

	if (t->exited || !t->pid)
		return;
	kill(t->pid, SIGKILL);
	while (waitpid(t->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 255 << 8; /* reaped elsewhere: status lost */
			break;
		}
	}
	task_exited(t, status);
}

/*
 * After its container went: the task's rootfs and fds go, and it leaves the table; returns
 * what it held back, for the caller to dispatch once it answered.
 */
static struct task_deferred *task_destroy_finish(struct task_service *ts, struct shim_task *t)
{
	struct task_deferred *held;

	if (t->rootfs)
		task_rootfs_unmount(t->rootfs);
	if (t->pidfd >= 0) {
		ttrpc_server_remove_fd(ts->srv, t->pidfd);
		task_fd_close(&t->pidfd);
	}
	task_fd_close(&t->stdin_keep);
	task_events_close(t);
	held = task_deferred_take(t);
	task_table_remove(ts, t);
	return held;
}

static void delete_log(struct shim_task *t, const struct error *err, int r)
{
	if (r < 0 && r != -ENOENT)
		fprintf(stderr, "%s: task %s: delete: %s\n", SHIM_NAME, t->id, err->msg);
}

/* The task's container, rootfs and fds go; the task leaves the table (here: shim exit). */
static void task_destroy(struct task_service *ts, struct shim_task *t)
{
	struct error err = { 0 };
	uint64_t lib_start = task_now_ns();
	int r;

	task_deferred_fail(t, "the shim is stopping");
	task_exec_cleanup(t);
	task_reap_now(t); /* created, never started (as runc, delete kills it), or shim exit */
	r = ts->lib->delete (ts->root, t->id, true, &err);
	ts->lib_ns += task_now_ns() - lib_start;
	delete_log(t, &err, r);
	task_deferred_dispatch(ts, task_destroy_finish(ts, t));
}

struct delete_job {
	struct task_job job;
	Containerd__Task__V2__DeleteResponse resp;
	Google__Protobuf__Timestamp at;
};

static void delete_run(struct task_job *job)
{
	job->r = job->ts->lib->delete (job->ts->root, job->t->id, true, &job->err);
}

static void delete_done(struct task_job *job)
{
	struct delete_job *dj = container_of(job, struct delete_job, job);
	Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
	const Containerd__Task__V2__DeleteRequest *q = (const void *)job->in;
	struct task_service *ts = job->ts;
	struct shim_task *t = job->t;
	struct task_deferred *held;

	delete_log(t, &job->err, job->r);
	/* the container and its mounts are gone before containerd hears it (it then removes
	 * the bundle) */
	t->deleting = false;
	held = task_destroy_finish(ts, t);
	dj->resp.exited_at = ev.exited_at = &dj->at;
	ev.pid = dj->resp.pid;
	ev.exit_status = dj->resp.exit_status;
	ev.container_id = ev.id = q->id;
	task_publish(ts, "/tasks/delete", &ev.base);
	task_reply_message(job->call, &dj->resp.base);
	task_job_free(job);
	task_deferred_dispatch(ts, held);
}

static void task_delete(struct task_service *ts, struct ttrpc_call *call,
			const Containerd__Task__V2__DeleteRequest *q)
{
	struct shim_task *t = check_task(ts, call, q->id, q->exec_id);
	struct delete_job *dj;

	if (!t)
		return;
	if (t->started && !t->exited) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION,
				"task %s: must be stopped before deletion: running", t->id);
		return;
	}
	/* (no call of the task is in a worker: task_defer_maybe held this one back till then) */
	dj = (struct delete_job *)task_job_new(ts, call, t, sizeof(*dj), delete_run, delete_done);
	if (!dj)
		return;
	task_reap_now(t); /* first, so the answer carries its status */
	containerd__task__v2__delete_response__init(&dj->resp);
	google__protobuf__timestamp__init(&dj->at);
	task_timestamp_set(&dj->at, &t->exited_at);
	dj->resp.pid = (uint32_t)t->pid;
	dj->resp.exit_status = (uint32_t)t->exit_status;
	t->deleting = true; /* the task's later calls wait, then find it gone */
	task_exec_cleanup(t);
	task_job_submit(&dj->job);
}

static void task_wait(struct task_service *ts, struct ttrpc_call *call,
		      const Containerd__Task__V2__WaitRequest *q)
{
	Containerd__Task__V2__WaitResponse resp = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	struct shim_task *t = check_task(ts, call, q->id, q->exec_id);

	if (!t)
		return;
	if (!t->exited) {
		if (t->n_waiters == TASK_WAITERS_MAX) {
			ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED,
					"task %s: %d Waits already pending", t->id,
					TASK_WAITERS_MAX);
			return;
		}
		t->waiters[t->n_waiters++] = call; /* answered by task_exited */
		return;
	}
	task_timestamp_set(&at, &t->exited_at);
	resp.exit_status = (uint32_t)t->exit_status;
	resp.exited_at = &at;
	task_reply_message(call, &resp.base);
}

struct pause_job {
	struct task_job job;
	bool pause;
};

static void pause_run(struct task_job *job)
{
	struct pause_job *pj = container_of(job, struct pause_job, job);
	const struct task_lib *lib = job->ts->lib;

	job->r = (pj->pause ? lib->pause : lib->resume)(job->ts->root, job->t->id, &job->err);
}

static void pause_done(struct task_job *job)
{
	struct pause_job *pj = container_of(job, struct pause_job, job);
	Containerd__Events__TaskPaused paused = CONTAINERD__EVENTS__TASK_PAUSED__INIT;
	Containerd__Events__TaskResumed resumed = CONTAINERD__EVENTS__TASK_RESUMED__INIT;
	struct shim_task *t = job->t;

	if (job->r < 0) {
		task_fail_err(job->call, &job->err, job->r);
	} else {
		paused.container_id = resumed.container_id = t->id;
		if (pj->pause)
			task_publish(job->ts, "/tasks/paused", &paused.base);
		else
			task_publish(job->ts, "/tasks/resumed", &resumed.base);
		task_reply_empty(job->call);
	}
	task_job_free(job);
	task_release(t);
}

static void task_pause_resume(struct task_service *ts, struct ttrpc_call *call, const char *id,
			      bool pause)
{
	struct shim_task *t = check_task(ts, call, id, NULL);
	struct pause_job *pj;

	if (!t)
		return;
	if (t->exited) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "task %s: stopped", id);
		return;
	}
	pj = (struct pause_job *)task_job_new(ts, call, t, sizeof(*pj), pause_run, pause_done);
	if (!pj)
		return;
	pj->pause = pause;
	task_job_submit(&pj->job);
}

static void task_close_io(struct task_service *ts, struct ttrpc_call *call,
			  const Containerd__Task__V2__CloseIORequest *q)
{
	struct shim_task *t = check_task(ts, call, q->id, q->exec_id);

	if (!t)
		return;
	if (q->stdin)
		task_fd_close(&t->stdin_keep);
	task_reply_empty(call);
}

bool task_container_dispatch(struct task_service *ts, const char *name, struct ttrpc_call *call,
			     const ProtobufCMessage *in)
{
	static bool warn_set;

	if (!ts->root) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION,
				"%s/%s: the shim has no state root (task_service_set_root)",
				TASK_SERVICE_NAME, name);
		return true;
	}
	if (!warn_set) {
		/* once, before any worker runs: they read it */
		container_set_warn(warn_log);
		warn_set = true;
	}
	if (task_defer_maybe(ts, name, call, in))
		return true;
	if (task_exec_dispatch(ts, name, call, in) || task_inspect_dispatch(ts, name, call, in))
		return true;
	if (!strcmp(name, "Create"))
		task_create(ts, call, (const void *)in);
	else if (!strcmp(name, "Start"))
		task_start(ts, call, (const void *)in);
	else if (!strcmp(name, "Kill"))
		task_kill(ts, call, (const void *)in);
	else if (!strcmp(name, "Delete"))
		task_delete(ts, call, (const void *)in);
	else if (!strcmp(name, "Wait"))
		task_wait(ts, call, (const void *)in);
	else if (!strcmp(name, "Pause"))
		task_pause_resume(ts, call, ((const Containerd__Task__V2__PauseRequest *)in)->id,
				  true);
	else if (!strcmp(name, "Resume"))
		task_pause_resume(ts, call, ((const Containerd__Task__V2__ResumeRequest *)in)->id,
				  false);
	else if (!strcmp(name, "CloseIO"))
		task_close_io(ts, call, (const void *)in);
	else
		return false;
	return true;
}

void task_container_cleanup(struct task_service *ts)
{
	/* pod members first: their sandbox's VM still answers their agent DELETE */
	for (unsigned int i = ts->n_tasks; i-- > 0;) {
		if (i < ts->n_tasks && ts->tasks[i]->sandbox)
			task_destroy(ts, ts->tasks[i]);
	}
	while (ts->n_tasks)
		task_destroy(ts, ts->tasks[ts->n_tasks - 1]);
}
