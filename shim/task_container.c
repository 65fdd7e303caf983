/*
 * The container methods of containerd.task.v2.Task for the shim's one task (one container per
 * VM: each Create makes its own VM through libstratus, as `stratus create` does). The monitor
 * libstratus forks is our child: its pidfd sits on the ttrpc loop, and when it exits (after
 * draining the container's output) we reap it, publish TaskExit and answer the kept Waits.
 * Requests naming an exec go to task_exec.c. docs/shim.md "Tasks".
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
#include "task_internal.h"
#include "task_service.h"

static int code_of(int r)
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
	default:
		return TTRPC_UNKNOWN;
	}
}

void task_fail_err(struct ttrpc_call *call, const struct error *err, int r)
{
	ttrpc_call_fail(call, code_of(r), "%s", err->msg[0] ? err->msg : strerror(-r));
}

static void warn_log(const char *msg)
{
	fprintf(stderr, "%s: %s\n", SHIM_NAME, msg);
}

static void empty_reply(struct ttrpc_call *call)
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
static bool check_task(struct task_service *ts, struct ttrpc_call *call, const char *id,
		       const char *exec_id, bool need_created)
{
	struct shim_task *t = &ts->task;

	if (need_created && (!t->pid || strcmp(id, t->id))) {
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "task %s: not found", id);
		return false;
	}
	if (exec_id && exec_id[0]) {
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "exec %s of task %s: not found", exec_id,
				id);
		return false;
	}
	return true;
}

static void timestamp_set(Google__Protobuf__Timestamp *ts, const struct timespec *t)
{
	ts->seconds = t->tv_sec;
	ts->nanos = (int32_t)t->tv_nsec;
}

static void task_free_fields(struct shim_task *t)
{
	free(t->id);
	free(t->bundle);
	free(t->rootfs);
	free(t->stdin_path);
	free(t->stdout_path);
	free(t->stderr_path);
	memset(t, 0, sizeof(*t));
	t->pidfd = t->stdin_keep = -1;
}

/* The monitor exited with status: record it, publish TaskExit, answer every Wait. */
static void task_exited(struct task_service *ts, int status)
{
	struct shim_task *t = &ts->task;
	Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
	Containerd__Task__V2__WaitResponse resp = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

	t->exited = true;
	t->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	clock_gettime(CLOCK_REALTIME, &t->exited_at);
	if (t->pidfd >= 0) {
		ttrpc_server_remove_fd(ts->srv, t->pidfd);
		close(t->pidfd);
		t->pidfd = -1;
	}
	if (t->stdin_keep >= 0) {
		close(t->stdin_keep);
		t->stdin_keep = -1;
	}
	task_events_close(ts); /* takes an OOM event still buffered: it comes before the exit */
	timestamp_set(&at, &t->exited_at);
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

static void on_monitor_exit(int fd, uint32_t events, void *opaque)
{
	struct task_service *ts = opaque;
	int status;
	pid_t p;

	(void)fd;
	(void)events;
	p = waitpid(ts->task.pid, &status, WNOHANG);
	if (p == ts->task.pid)
		task_exited(ts, status);
	else if (p < 0 && errno == ECHILD)
		task_exited(ts, 255 << 8); /* reaped elsewhere: status lost */
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

/* container_create with fds 0/1/2 = the FIFOs, which the monitor inherits and relays. */
static int create_with_stdio(struct container_create_opts *o, const int stdio[3], struct error *err)
{
	int saved[3] = { -1, -1, -1 }, r;

	r = dup_std(saved);
	if (r < 0) {
		error_set_errno(err, r, "cannot save stdio");
		goto out;
	}
	for (int i = 0; i < 3; i++)
		dup2(stdio[i], i);
	r = container_create(o, err);
	for (int i = 0; i < 3; i++)
		dup2(saved[i], i);
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

static void publish_create(struct task_service *ts,
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
	ev.pid = (uint32_t)ts->task.pid;
	task_publish(ts, "/tasks/create", &ev.base);
}

static void task_create(struct task_service *ts, struct ttrpc_call *call,
			const Containerd__Task__V2__CreateTaskRequest *q)
{
	Containerd__Task__V2__CreateTaskResponse resp =
		CONTAINERD__TASK__V2__CREATE_TASK_RESPONSE__INIT;
	struct container_create_opts o = { .root = ts->root, .id = q->id, .bundle = q->bundle };
	struct shim_task *t = &ts->task;
	struct error err = { 0 };
	int stdio[3] = { -1, -1, -1 }, r;
	uint64_t lib_start;

	if (t->pid) {
		ttrpc_call_fail(call, TTRPC_ALREADY_EXISTS,
				"task %s: this shim already runs %s (one container per VM; pods "
				"sharing a VM are not supported yet)",
				q->id, t->id);
		return;
	}
	if (!q->id[0] || !q->bundle[0]) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "%s: empty",
				q->id[0] ? "bundle" : "id");
		return;
	}
	if (q->checkpoint[0]) {
		ttrpc_call_fail(call, TTRPC_UNIMPLEMENTED,
				"checkpoint: restoring a task from a checkpoint is not supported");
		return;
	}
	task_free_fields(t);
	if (task_strdup_paths(t, q) < 0) {
		task_free_fields(t);
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
	t->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (t->pidfd < 0 ||
	    ttrpc_server_add_fd(ts->srv, t->pidfd, EPOLLIN, on_monitor_exit, ts) < 0)
		fprintf(stderr, "%s: task %s: cannot watch the monitor (pid %d): %s\n", SHIM_NAME,
			t->id, (int)t->pid, strerror(errno));
	ts->containers = 1;
	publish_create(ts, q);
	task_events_open(ts);
	resp.pid = (uint32_t)t->pid;
	task_reply_message(call, &resp.base);
	return;
fail:
	if (t->rootfs)
		task_rootfs_unmount(t->rootfs);
	if (t->stdin_keep >= 0)
		close(t->stdin_keep);
	task_free_fields(t);
	task_fail_err(call, &err, r);
}

static void task_start(struct task_service *ts, struct ttrpc_call *call,
		       const Containerd__Task__V2__StartRequest *q)
{
	Containerd__Task__V2__StartResponse resp = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
	Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
	struct shim_task *t = &ts->task;
	struct error err = { 0 };
	uint64_t lib_start;
	int r;

	if (!check_task(ts, call, q->id, q->exec_id, true))
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
	struct shim_task *t = &ts->task;
	struct error err = { 0 };
	int r;

	if (!check_task(ts, call, q->id, q->exec_id, true))
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
	empty_reply(call);
}

/* A task that was never started, or whose VM must go: kill the monitor and reap it. */
static void task_reap_now(struct task_service *ts)
{
	struct shim_task *t = &ts->task;
	int status;

	if (t->exited || !t->pid)
		return;
	kill(t->pid, SIGKILL);
	while (waitpid(t->pid, &status, 0) < 0 && errno == EINTR)
		;
	task_exited(ts, status);
}

static void task_delete(struct task_service *ts, struct ttrpc_call *call,
			const Containerd__Task__V2__DeleteRequest *q)
{
	Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
	Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	struct shim_task *t = &ts->task;
	struct error err = { 0 };
	uint64_t lib_start;
	int r;

	if (!check_task(ts, call, q->id, q->exec_id, true))
		return;
	if (t->started && !t->exited) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION,
				"task %s: must be stopped before deletion: running", t->id);
		return;
	}
	task_reap_now(ts); /* created, never started: as runc, delete kills it */
	task_exec_cleanup(ts);
	lib_start = task_now_ns();
	r = container_delete(ts->root, t->id, true, &err);
	ts->lib_ns += task_now_ns() - lib_start;
	if (r < 0 && r != -ENOENT)
		fprintf(stderr, "%s: task %s: delete: %s\n", SHIM_NAME, t->id, err.msg);
	if (t->rootfs)
		task_rootfs_unmount(t->rootfs);
	timestamp_set(&at, &t->exited_at);
	resp.pid = ev.pid = (uint32_t)t->pid;
	resp.exit_status = ev.exit_status = (uint32_t)t->exit_status;
	resp.exited_at = ev.exited_at = &at;
	ev.container_id = ev.id = t->id;
	task_publish(ts, "/tasks/delete", &ev.base);
	task_reply_message(call, &resp.base);
	task_free_fields(t);
	ts->containers = 0;
}

static void task_wait(struct task_service *ts, struct ttrpc_call *call,
		      const Containerd__Task__V2__WaitRequest *q)
{
	Containerd__Task__V2__WaitResponse resp = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	struct shim_task *t = &ts->task;

	if (!check_task(ts, call, q->id, q->exec_id, true))
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
	timestamp_set(&at, &t->exited_at);
	resp.exit_status = (uint32_t)t->exit_status;
	resp.exited_at = &at;
	task_reply_message(call, &resp.base);
}

static Containerd__V1__Types__Status status_of(struct task_service *ts)
{
	struct shim_task *t = &ts->task;
	struct container_state st;
	struct error err = { 0 };
	Containerd__V1__Types__Status s = CONTAINERD__V1__TYPES__STATUS__UNKNOWN;

	if (t->exited)
		return CONTAINERD__V1__TYPES__STATUS__STOPPED;
	if (container_load(ts->root, t->id, &st, &err) < 0)
		return s;
	switch (st.status) {
	case CONTAINER_CREATING:
	case CONTAINER_CREATED:
		s = CONTAINERD__V1__TYPES__STATUS__CREATED;
		break;
	case CONTAINER_RUNNING:
		s = CONTAINERD__V1__TYPES__STATUS__RUNNING;
		break;
	case CONTAINER_PAUSED:
		s = CONTAINERD__V1__TYPES__STATUS__PAUSED;
		break;
	case CONTAINER_STOPPED:
		s = CONTAINERD__V1__TYPES__STATUS__STOPPED;
		break;
	}
	state_clear(&st);
	return s;
}

static void task_state(struct task_service *ts, struct ttrpc_call *call,
		       const Containerd__Task__V2__StateRequest *q)
{
	Containerd__Task__V2__StateResponse resp = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	struct shim_task *t = &ts->task;

	if (!check_task(ts, call, q->id, q->exec_id, true))
		return;
	resp.id = t->id;
	resp.bundle = t->bundle;
	resp.pid = (uint32_t)t->pid;
	resp.status = status_of(ts);
	resp.stdin = t->stdin_path;
	resp.stdout = t->stdout_path;
	resp.stderr = t->stderr_path;
	resp.terminal = t->terminal;
	if (t->exited) {
		timestamp_set(&at, &t->exited_at);
		resp.exit_status = (uint32_t)t->exit_status;
		resp.exited_at = &at;
	}
	task_reply_message(call, &resp.base);
}

static void task_pause_resume(struct task_service *ts, struct ttrpc_call *call, const char *id,
			      bool pause)
{
	Containerd__Events__TaskPaused paused = CONTAINERD__EVENTS__TASK_PAUSED__INIT;
	Containerd__Events__TaskResumed resumed = CONTAINERD__EVENTS__TASK_RESUMED__INIT;
	struct error err = { 0 };
	int r;

	if (!check_task(ts, call, id, NULL, true))
		return;
	if (ts->task.exited) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "task %s: stopped", id);
		return;
	}
	r = pause ? container_pause(ts->root, id, &err) : container_resume(ts->root, id, &err);
	if (r < 0) {
		task_fail_err(call, &err, r);
		return;
	}
	paused.container_id = resumed.container_id = ts->task.id;
	if (pause)
		task_publish(ts, "/tasks/paused", &paused.base);
	else
		task_publish(ts, "/tasks/resumed", &resumed.base);
	empty_reply(call);
}

static void task_pids(struct task_service *ts, struct ttrpc_call *call,
		      const Containerd__Task__V2__PidsRequest *q)
{
	Containerd__Task__V2__PidsResponse resp = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
	_cleanup_free_ Containerd__V1__Types__ProcessInfo *infos = NULL;
	_cleanup_free_ Containerd__V1__Types__ProcessInfo **ptrs = NULL;
	struct agent_ps ps = { 0 };
	struct error err = { 0 };
	int r;

	if (!check_task(ts, call, q->id, NULL, true))
		return;
	if (ts->task.exited) {
		task_reply_message(call, &resp.base);
		return;
	}
	r = container_ps(ts->root, q->id, &ps, &err);
	if (r < 0) {
		task_fail_err(call, &err, r);
		return;
	}
	infos = calloc(ps.procs.n + 1, sizeof(*infos));
	ptrs = calloc(ps.procs.n + 1, sizeof(*ptrs));
	if (!infos || !ptrs) {
		container_ps_free(&ps);
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	for (uint32_t i = 0; i < ps.procs.n; i++) {
		containerd__v1__types__process_info__init(&infos[i]);
		infos[i].pid = ps.procs.v[i].pid; /* the guest's pid namespace */
		ptrs[i] = &infos[i];
	}
	resp.n_processes = ps.procs.n;
	resp.processes = ptrs;
	task_reply_message(call, &resp.base);
	container_ps_free(&ps);
}

static void task_stats(struct task_service *ts, struct ttrpc_call *call,
		       const Containerd__Task__V2__StatsRequest *q)
{
	Containerd__Task__V2__StatsResponse resp = CONTAINERD__TASK__V2__STATS_RESPONSE__INIT;
	Io__Containerd__Cgroups__V2__Metrics m = IO__CONTAINERD__CGROUPS__V2__METRICS__INIT;
	Io__Containerd__Cgroups__V2__PidsStat pids = IO__CONTAINERD__CGROUPS__V2__PIDS_STAT__INIT;
	Io__Containerd__Cgroups__V2__CPUStat cpu = IO__CONTAINERD__CGROUPS__V2__CPUSTAT__INIT;
	Io__Containerd__Cgroups__V2__MemoryStat mem =
		IO__CONTAINERD__CGROUPS__V2__MEMORY_STAT__INIT;
	Io__Containerd__Cgroups__V2__MemoryEvents ev =
		IO__CONTAINERD__CGROUPS__V2__MEMORY_EVENTS__INIT;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	_cleanup_free_ uint8_t *buf = NULL;
	struct agent_stats s = { 0 };
	struct error err = { 0 };
	int r;

	if (!check_task(ts, call, q->id, NULL, true))
		return;
	if (ts->task.exited) {
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "task %s: stopped", q->id);
		return;
	}
	r = container_stats(ts->root, q->id, &s, &err);
	if (r < 0) {
		task_fail_err(call, &err, r);
		return;
	}
	pids.current = s.pids_current;
	pids.limit = s.pids_limit == AGENT_STATS_NO_LIMIT ? 0 : s.pids_limit;
	cpu.usage_usec = s.cpu_usage_us;
	cpu.user_usec = s.cpu_user_us;
	cpu.system_usec = s.cpu_system_us;
	cpu.nr_periods = s.cpu_nr_periods;
	cpu.nr_throttled = s.cpu_nr_throttled;
	cpu.throttled_usec = s.cpu_throttled_us;
	mem.usage = s.mem_usage;
	mem.usage_limit = s.mem_limit == AGENT_STATS_NO_LIMIT ? UINT64_MAX : s.mem_limit;
	mem.swap_usage = s.mem_swap_usage;
	ev.oom = s.mem_oom;
	ev.oom_kill = s.mem_oom_kill;
	m.pids = &pids;
	m.cpu = &cpu;
	m.memory = &mem;
	m.memory_events = &ev;
	any.type_url = (char *)m.base.descriptor->name;
	any.value.len = protobuf_c_message_get_packed_size(&m.base);
	buf = malloc(any.value.len ? any.value.len : 1);
	if (!buf) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	protobuf_c_message_pack(&m.base, buf);
	any.value.data = buf;
	resp.stats = &any;
	task_reply_message(call, &resp.base);
}

static void task_close_io(struct task_service *ts, struct ttrpc_call *call,
			  const Containerd__Task__V2__CloseIORequest *q)
{
	struct shim_task *t = &ts->task;

	if (!check_task(ts, call, q->id, q->exec_id, true))
		return;
	if (q->stdin && t->stdin_keep >= 0) {
		close(t->stdin_keep);
		t->stdin_keep = -1;
	}
	empty_reply(call);
}

static void task_update(struct task_service *ts, struct ttrpc_call *call,
			const Containerd__Task__V2__UpdateTaskRequest *q)
{
	struct agent_client c;
	struct error err = { 0 };
	_cleanup_free_ char *json = NULL;
	int r;

	if (!check_task(ts, call, q->id, NULL, true))
		return;
	if (!q->resources || !q->resources->value.len) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "resources: missing");
		return;
	}
	/* containerd marshals runtime-spec types (LinuxResources) as JSON inside the Any. */
	json = strndup((const char *)q->resources->value.data, q->resources->value.len);
	if (!json || memchr(q->resources->value.data, 0, q->resources->value.len)) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "resources: not JSON text");
		return;
	}
	r = container_agent_connect(ts->root, q->id, &c, &err);
	if (r < 0) {
		task_fail_err(call, &err, r);
		return;
	}
	r = agent_client_update(&c, q->id, json);
	if (r < 0)
		ttrpc_call_fail(call, code_of(r), "update: %s", c.err);
	else
		empty_reply(call);
	agent_client_destroy(&c);
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
	if (task_exec_dispatch(ts, name, call, in))
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
	else if (!strcmp(name, "State"))
		task_state(ts, call, (const void *)in);
	else if (!strcmp(name, "Pause"))
		task_pause_resume(ts, call, ((const Containerd__Task__V2__PauseRequest *)in)->id,
				  true);
	else if (!strcmp(name, "Resume"))
		task_pause_resume(ts, call, ((const Containerd__Task__V2__ResumeRequest *)in)->id,
				  false);
	else if (!strcmp(name, "Pids"))
		task_pids(ts, call, (const void *)in);
	else if (!strcmp(name, "Stats"))
		task_stats(ts, call, (const void *)in);
	else if (!strcmp(name, "CloseIO"))
		task_close_io(ts, call, (const void *)in);
	else if (!strcmp(name, "Update"))
		task_update(ts, call, (const void *)in);
	else
		return false;
	return true;
}

void task_container_cleanup(struct task_service *ts)
{
	struct shim_task *t = &ts->task;
	struct error err = { 0 };

	for (unsigned int i = 0; i < t->n_waiters; i++)
		ttrpc_call_fail(t->waiters[i], TTRPC_UNAVAILABLE, "the shim is exiting");
	t->n_waiters = 0;
	task_exec_cleanup(ts);
	if (t->pid && !t->exited) {
		task_reap_now(ts);
		container_delete(ts->root, t->id, true, &err);
	}
	if (t->rootfs)
		task_rootfs_unmount(t->rootfs);
	if (t->pidfd >= 0)
		close(t->pidfd);
	if (t->stdin_keep >= 0)
		close(t->stdin_keep);
	task_events_close(ts);
	task_free_fields(t);
}
