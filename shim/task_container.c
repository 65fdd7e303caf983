/*
 * The life-cycle methods of containerd.task.v2.Task for the shim's tasks (task_table.c): each
 * Create runs libstratus's container_create() with the container's own id and bundle, as
 * `stratus create` does. A container with a VM of its own gets a monitor; a pod member (its
 * sandbox-id annotation names another container, docs/pods.md) gets a relay that libstratus
 * runs against the sandbox's VM. Either is our child and exits with the init's status after
 * draining its output: its pidfd sits on the ttrpc loop, and when it exits we reap it, publish
 * TaskExit with the task's id and answer the task's kept Waits. Requests naming an exec go to
 * task_exec.c, State/Pids/Stats/Update to task_inspect.c. docs/shim.md "Tasks".
 */
#include <fcntl.h>
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
static int warn_fd = STDERR_FILENO;

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
		closep(&t->pidfd);
	}
	closep(&t->stdin_keep);
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
	if (p == t->pid)
		task_exited(t, status);
	else if (p < 0 && errno == ECHILD)
		task_exited(t, 255 << 8); /* reaped elsewhere: status lost */
}

int task_adopt(struct task_service *ts, struct shim_task *t)
{
	int r = task_table_insert(ts, t);

	if (r < 0)
		return r;
	t->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (t->pidfd < 0 || ttrpc_server_add_fd(ts->srv, t->pidfd, EPOLLIN, on_init_exit, t) < 0)
		fprintf(stderr, "%s: task %s: cannot watch its process (pid %d): %s\n", SHIM_NAME,
			t->id, (int)t->pid, strerror(errno));
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
static int create_with_stdio(struct container_create_opts *o, const int stdio[3], struct error *err)
{
	int saved[3] = { -1, -1, -1 }, r;

	r = dup_std(saved);
	if (r < 0) {
		error_set_errno(err, r, "cannot save stdio");
		goto out;
	}
	fflush(stderr);
	warn_fd = saved[2];
	for (int i = 0; i < 3; i++)
		dup2(stdio[i], i);
	r = container_create(o, err);
	for (int i = 0; i < 3; i++)
		dup2(saved[i], i);
	warn_fd = STDERR_FILENO;
out:
	for (int i = 0; i < 3; i++) {
		if (saved[i] >= 0)
			close(saved[i]);
	}
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

static void task_create(struct task_service *ts, struct ttrpc_call *call,
			const Containerd__Task__V2__CreateTaskRequest *q)
{
	Containerd__Task__V2__CreateTaskResponse resp =
		CONTAINERD__TASK__V2__CREATE_TASK_RESPONSE__INIT;
	struct container_create_opts o = { .root = ts->root, .id = q->id, .bundle = q->bundle };
	struct shim_task *t;
	struct error err = { 0 };
	int stdio[3] = { -1, -1, -1 }, r;
	uint64_t lib_start;

	if (!create_check(ts, call, q))
		return;
	r = task_cgroup_manager(q->options, &o.cgroup_manager, &err);
	if (r < 0) {
		task_fail_err(call, &err, r);
		return;
	}
	t = task_new(ts);
	if (!t || task_strdup_paths(t, q) < 0) {
		task_free(t);
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	r = task_rootfs_mount(q->rootfs, q->n_rootfs, t->rootfs ? t->rootfs : "", &err);
	if (r < 0) {
		free(t->rootfs);
		t->rootfs = NULL;
		goto fail;
	}
	r = task_stdio_open(q->stdin, q->stdout, q->stderr, stdio, &t->stdin_keep, &err);
	if (r < 0)
		goto fail;
	/* A terminal: the monitor relays fds 0/1 to the guest's pty (stdout carries it all). */
	o.foreground = q->terminal;
	lib_start = task_now_ns();
	r = create_with_stdio(&o, stdio, &err);
	ts->lib_ns += task_now_ns() - lib_start;
	for (int i = 0; i < 3; i++)
		close(stdio[i]);
	if (r < 0)
		goto fail;
	t->pid = o.monitor_pid;
	if (task_set_sandbox(t) < 0 || task_adopt(ts, t) < 0) {
		/* checked above, and the loop runs one call at a time: only memory can fail */
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
		container_delete(ts->root, t->id, true, &err);
		r = error_set(&err, -ENOMEM, "out of memory");
		goto fail;
	}
	ts->n_created++;
	publish_create(ts, t, q);
	if (!t->sandbox)
		task_events_open(t); /* one per VM: a member's events come on its sandbox's */
	resp.pid = (uint32_t)t->pid;
	task_reply_message(call, &resp.base);
	return;
fail:
	if (t->rootfs)
		task_rootfs_unmount(t->rootfs);
	closep(&t->stdin_keep);
	task_free(t);
	task_fail_err(call, &err, r);
}

static void task_start(struct task_service *ts, struct ttrpc_call *call,
		       const Containerd__Task__V2__StartRequest *q)
{
	Containerd__Task__V2__StartResponse resp = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
	Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
	struct shim_task *t = check_task(ts, call, q->id, q->exec_id);
	struct error err = { 0 };
	uint64_t lib_start;
	int r;

	if (!t)
		return;
	if (t->exited || t->started) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "task %s: already %s", t->id,
				t->exited ? "stopped" : "started");
		return;
	}
	lib_start = task_now_ns();
	r = container_start(ts->root, t->id, &err);
	ts->lib_ns += task_now_ns() - lib_start;
	if (r < 0) {
		task_fail_err(call, &err, r);
		return;
	}
	t->started = true;
	ev.container_id = t->id;
	ev.pid = (uint32_t)t->pid;
	task_publish(ts, "/tasks/start", &ev.base);
	resp.pid = (uint32_t)t->pid;
	task_reply_message(call, &resp.base);
}

static void task_kill(struct task_service *ts, struct ttrpc_call *call,
		      const Containerd__Task__V2__KillRequest *q)
{
	struct shim_task *t = check_task(ts, call, q->id, q->exec_id);
	struct error err = { 0 };
	int r;

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
	r = container_kill(ts->root, t->id, (int)q->signal, q->all, &err);
	if (r < 0) {
		task_fail_err(call, &err, r);
		return;
	}
	task_reply_empty(call);
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

/* The task's container, rootfs and fds go; the task leaves the table. */
static void task_destroy(struct task_service *ts, struct shim_task *t)
{
	struct error err = { 0 };
	uint64_t lib_start = task_now_ns();
	int r;

	task_exec_cleanup(t);
	task_reap_now(t); /* created, never started (as runc, delete kills it), or shim exit */
	r = container_delete(ts->root, t->id, true, &err);
	ts->lib_ns += task_now_ns() - lib_start;
	if (r < 0 && r != -ENOENT)
		fprintf(stderr, "%s: task %s: delete: %s\n", SHIM_NAME, t->id, err.msg);
	if (t->rootfs)
		task_rootfs_unmount(t->rootfs);
	if (t->pidfd >= 0) {
		ttrpc_server_remove_fd(ts->srv, t->pidfd);
		closep(&t->pidfd);
	}
	closep(&t->stdin_keep);
	task_events_close(t);
	task_table_remove(ts, t);
}

static void task_delete(struct task_service *ts, struct ttrpc_call *call,
			const Containerd__Task__V2__DeleteRequest *q)
{
	Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
	Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	struct shim_task *t = check_task(ts, call, q->id, q->exec_id);

	if (!t)
		return;
	if (t->started && !t->exited) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION,
				"task %s: must be stopped before deletion: running", t->id);
		return;
	}
	task_reap_now(t); /* first, so the answer carries its status */
	task_timestamp_set(&at, &t->exited_at);
	resp.pid = ev.pid = (uint32_t)t->pid;
	resp.exit_status = ev.exit_status = (uint32_t)t->exit_status;
	/* the container and its mounts are gone before containerd hears it (it then removes
	 * the bundle) */
	task_destroy(ts, t);
	resp.exited_at = ev.exited_at = &at;
	ev.container_id = ev.id = q->id;
	task_publish(ts, "/tasks/delete", &ev.base);
	task_reply_message(call, &resp.base);
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

static void task_pause_resume(struct task_service *ts, struct ttrpc_call *call, const char *id,
			      bool pause)
{
	Containerd__Events__TaskPaused paused = CONTAINERD__EVENTS__TASK_PAUSED__INIT;
	Containerd__Events__TaskResumed resumed = CONTAINERD__EVENTS__TASK_RESUMED__INIT;
	struct shim_task *t = check_task(ts, call, id, NULL);
	struct error err = { 0 };
	int r;

	if (!t)
		return;
	if (t->exited) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "task %s: stopped", id);
		return;
	}
	r = pause ? container_pause(ts->root, id, &err) : container_resume(ts->root, id, &err);
	if (r < 0) {
		task_fail_err(call, &err, r);
		return;
	}
	paused.container_id = resumed.container_id = t->id;
	if (pause)
		task_publish(ts, "/tasks/paused", &paused.base);
	else
		task_publish(ts, "/tasks/resumed", &resumed.base);
	task_reply_empty(call);
}

static void task_close_io(struct task_service *ts, struct ttrpc_call *call,
			  const Containerd__Task__V2__CloseIORequest *q)
{
	struct shim_task *t = check_task(ts, call, q->id, q->exec_id);

	if (!t)
		return;
	if (q->stdin)
		closep(&t->stdin_keep);
	task_reply_empty(call);
}

bool task_container_dispatch(struct task_service *ts, const char *name, struct ttrpc_call *call,
			     const ProtobufCMessage *in)
{
	if (!ts->root) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION,
				"%s/%s: the shim has no state root (task_service_set_root)",
				TASK_SERVICE_NAME, name);
		return true;
	}
	container_set_warn(warn_log);
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
