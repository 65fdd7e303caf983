/*
 * Exec'd processes of the shim's tasks (containerd.task.v2.Task with an exec_id), and
 * ResizePty. Each task has its own execs (a pod member's too: libstratus reaches its
 * sandbox's VM). Exec registers a process (runtime-spec Process JSON inside an Any, validated
 * with config.json's process parser) and publishes TaskExecAdded; Start runs it through
 * libstratus's container_exec_start(): the agent EXECs it and a relay child (ours) moves its
 * stdio between containerd's FIFOs and the guest, then exits with the process's status once
 * every byte of output is in the FIFOs. The relay's pidfd sits on the ttrpc loop, so the exit
 * (TaskExit with the exec id, kept Waits) is reported after the output, and the loop never
 * blocks on a guest. An exec's pid is its pid in the guest, as Pids reports. docs/shim.md
 * "Exec".
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
#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "containerd/types/task.pb-c.h"
#include "exec_process.h"
#include "google/protobuf/empty.pb-c.h"
#include "shim.h"
#include "task_internal.h"
#include "task_service.h"

static struct shim_exec *exec_find(struct shim_task *t, const char *exec_id)
{
	for (struct shim_exec *e = t->execs; e; e = e->next)
		if (!strcmp(e->id, exec_id))
			return e;
	return NULL;
}

/* The task is ours and the exec exists; else the call is answered (NotFound). */
static struct shim_exec *exec_lookup(struct task_service *ts, struct ttrpc_call *call,
				     const char *id, const char *exec_id)
{
	struct shim_task *t = task_lookup(ts, call, id);
	struct shim_exec *e;

	if (!t)
		return NULL;
	e = exec_find(t, exec_id);
	if (!e)
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "exec %s of task %s: not found", exec_id,
				id);
	return e;
}

static void exec_free(struct shim_exec *e)
{
	free(e->id);
	free(e->process);
	free(e->stdin_path);
	free(e->stdout_path);
	free(e->stderr_path);
	free(e);
}

/* Waits kept for an exec that goes without having run (Start failed, then Delete). */
static void exec_fail_waiters(struct shim_exec *e, const char *why)
{
	for (unsigned int i = 0; i < e->n_waiters; i++)
		ttrpc_call_fail(e->waiters[i], TTRPC_NOT_FOUND, "exec %s: %s", e->id, why);
	e->n_waiters = 0;
}

static void exec_unlink(struct shim_task *t, struct shim_exec *e)
{
	for (struct shim_exec **p = &t->execs; *p; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			t->n_execs--;
			return;
		}
	}
}

/* The relay exited with status: record it, publish TaskExit, answer every Wait. */
static void exec_exited(struct shim_exec *e, int status)
{
	struct task_service *ts = e->task->ts;
	Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
	Containerd__Task__V2__WaitResponse resp = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

	e->exited = true;
	e->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	clock_gettime(CLOCK_REALTIME, &e->exited_at);
	if (e->pidfd >= 0) {
		ttrpc_server_remove_fd(ts->srv, e->pidfd);
		close(e->pidfd);
		e->pidfd = -1;
	}
	task_fd_close(&e->stdin_keep);
	task_timestamp_set(&at, &e->exited_at);
	ev.container_id = e->task->id;
	ev.id = e->id;
	ev.pid = e->pid;
	ev.exit_status = (uint32_t)e->exit_status;
	ev.exited_at = &at;
	task_publish(ts, "/tasks/exit", &ev.base);
	resp.exit_status = (uint32_t)e->exit_status;
	resp.exited_at = &at;
	for (unsigned int i = 0; i < e->n_waiters; i++)
		task_reply_message(e->waiters[i], &resp.base);
	e->n_waiters = 0;
}

static void on_relay_exit(int fd, uint32_t events, void *opaque)
{
	struct shim_exec *e = opaque;
	int status;
	pid_t p;

	(void)fd;
	(void)events;
	p = waitpid(e->relay_pid, &status, WNOHANG);
	if (p == e->relay_pid)
		exec_exited(e, status);
	else if (p < 0 && errno == ECHILD)
		exec_exited(e, 255 << 8); /* reaped elsewhere: status lost */
}

static int exec_copy_request(struct shim_exec *e, const Containerd__Task__V2__ExecProcessRequest *q)
{
	e->id = strdup(q->exec_id);
	e->process = malloc(q->spec->value.len + 1);
	e->stdin_path = strdup(q->stdin);
	e->stdout_path = strdup(q->stdout);
	e->stderr_path = strdup(q->stderr);
	if (!e->id || !e->process || !e->stdin_path || !e->stdout_path || !e->stderr_path)
		return -ENOMEM;
	memcpy(e->process, q->spec->value.data, q->spec->value.len);
	e->process[q->spec->value.len] = '\0';
	e->process_len = q->spec->value.len;
	return 0;
}

static void exec_add(struct task_service *ts, struct ttrpc_call *call,
		     const Containerd__Task__V2__ExecProcessRequest *q)
{
	Containerd__Events__TaskExecAdded ev = CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
	struct shim_task *t = task_lookup(ts, call, q->id);
	struct error err = { 0 };
	struct shim_exec *e;
	int r;

	if (!t)
		return;
	if (!q->exec_id[0] || strlen(q->exec_id) > AGENT_MAX_ID) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "exec_id: must be 1 to %d bytes",
				AGENT_MAX_ID);
		return;
	}
	if (exec_find(t, q->exec_id)) {
		ttrpc_call_fail(call, TTRPC_ALREADY_EXISTS, "id %s: already exists", q->exec_id);
		return;
	}
	if (t->exited) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "task %s: stopped", t->id);
		return;
	}
	if (t->n_execs == TASK_EXECS_MAX) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "task %s: %d execs already", t->id,
				TASK_EXECS_MAX);
		return;
	}
	if (!q->spec || !q->spec->value.len) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "spec: missing");
		return;
	}
	e = calloc(1, sizeof(*e));
	if (!e || exec_copy_request(e, q) < 0) {
		if (e)
			exec_free(e);
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	/* containerd marshals the runtime-spec Process as JSON inside the Any */
	r = exec_process_check("exec", e->process, e->process_len, &e->terminal, &err);
	if (r < 0) {
		exec_free(e);
		task_fail_err(call, &err, r);
		return;
	}
	e->task = t;
	e->pidfd = e->stdin_keep = -1;
	e->next = t->execs;
	t->execs = e;
	t->n_execs++;
	ev.container_id = t->id;
	ev.exec_id = e->id;
	task_publish(ts, "/tasks/exec-added", &ev.base);
	task_reply_empty(call);
}

struct exec_start_job {
	struct task_job job;
	struct shim_exec *e; /* its task is busy: neither goes meanwhile */
	struct container_exec_start_opts o;
	struct container_exec_handle h;
};

static void exec_start_run(struct task_job *job)
{
	struct exec_start_job *xj = container_of(job, struct exec_start_job, job);

	job->r = job->ts->lib->exec_start(&xj->o, &xj->h, &job->err);
}

static void exec_start_done(struct task_job *job)
{
	struct exec_start_job *xj = container_of(job, struct exec_start_job, job);
	Containerd__Task__V2__StartResponse resp = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
	Containerd__Events__TaskExecStarted ev = CONTAINERD__EVENTS__TASK_EXEC_STARTED__INIT;
	struct task_service *ts = job->ts;
	struct shim_exec *e = xj->e;
	struct shim_task *t = job->t;

	for (int i = 0; i < 3; i++)
		close(xj->o.stdio[i]); /* the relay child has its own */
	e->starting = false;
	if (job->r < 0) {
		task_fd_close(&e->stdin_keep);
		task_fail_err(job->call, &job->err, job->r);
		goto out;
	}
	e->started = true;
	e->relay_pid = xj->h.relay_pid;
	e->pid = xj->h.pid;
	e->pidfd = (int)syscall(SYS_pidfd_open, e->relay_pid, 0);
	if (e->pidfd < 0 || ttrpc_server_add_fd(ts->srv, e->pidfd, EPOLLIN, on_relay_exit, e) < 0) {
		/* no way to learn the exit: take the relay down now rather than hang a Wait */
		fprintf(stderr, "%s: exec %s: cannot watch its relay (pid %d): %s\n", SHIM_NAME,
			e->id, (int)e->relay_pid, strerror(errno));
		task_fd_close(&e->pidfd);
		kill(e->relay_pid, SIGKILL);
	}
	ev.container_id = t->id;
	ev.exec_id = e->id;
	ev.pid = e->pid;
	task_publish(ts, "/tasks/exec-started", &ev.base);
	resp.pid = e->pid;
	task_reply_message(job->call, &resp.base);
	if (e->pidfd < 0) {
		int status;

		while (waitpid(e->relay_pid, &status, 0) < 0 && errno == EINTR)
			;
		exec_exited(e, status);
	}
out:
	task_job_free(job);
	task_release(t);
}

static void exec_start(struct task_service *ts, struct ttrpc_call *call,
		       const Containerd__Task__V2__StartRequest *q)
{
	struct shim_exec *e = exec_lookup(ts, call, q->id, q->exec_id);
	struct exec_start_job *xj;
	struct error err = { 0 };
	int stdio[3], r;

	if (!e)
		return;
	if (e->started || e->starting) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "exec %s: already %s", e->id,
				e->exited ? "stopped" : "started");
		return;
	}
	if (e->task->exited) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "task %s: stopped", e->task->id);
		return;
	}
	r = task_stdio_open(e->stdin_path, e->stdout_path, e->stderr_path, stdio, &e->stdin_keep,
			    &err);
	if (r < 0) {
		task_fail_err(call, &err, r);
		return;
	}
	xj = (struct exec_start_job *)task_job_new(ts, call, e->task, sizeof(*xj), exec_start_run,
						   exec_start_done);
	if (!xj) {
		for (int i = 0; i < 3; i++)
			close(stdio[i]);
		task_fd_close(&e->stdin_keep);
		return;
	}
	xj->e = e;
	xj->o.root = ts->root;
	xj->o.id = e->task->id;
	xj->o.exec_id = e->id;
	xj->o.process = e->process;
	xj->o.process_len = e->process_len;
	memcpy(xj->o.stdio, stdio, sizeof(stdio));
	e->starting = true;
	task_job_submit(&xj->job);
}

static void exec_kill_run(struct task_job *job)
{
	const Containerd__Task__V2__KillRequest *q = (const void *)job->in;

	job->r = job->ts->lib->exec_kill(job->ts->root, q->id, q->exec_id, (int)q->signal,
					 &job->err);
}

static void exec_kill(struct task_service *ts, struct ttrpc_call *call,
		      const Containerd__Task__V2__KillRequest *q)
{
	struct shim_exec *e = exec_lookup(ts, call, q->id, q->exec_id);
	struct task_job *job;

	if (!e)
		return;
	if (q->signal == 0 || q->signal >= 65) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "signal: %u is not a signal",
				q->signal);
		return;
	}
	if (!e->started || e->exited) {
		ttrpc_call_fail(call, e->exited ? TTRPC_NOT_FOUND : TTRPC_FAILED_PRECONDITION,
				"exec %s: %s", e->id,
				e->exited ? "process already finished" : "not started");
		return;
	}
	job = task_job_new(ts, call, e->task, sizeof(*job), exec_kill_run, task_job_done_empty);
	if (job)
		task_job_submit(job);
}

static void exec_wait(struct task_service *ts, struct ttrpc_call *call,
		      const Containerd__Task__V2__WaitRequest *q)
{
	Containerd__Task__V2__WaitResponse resp = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	struct shim_exec *e = exec_lookup(ts, call, q->id, q->exec_id);

	if (!e)
		return;
	if (!e->exited) {
		if (e->n_waiters == TASK_WAITERS_MAX) {
			ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED,
					"exec %s: %d Waits already pending", e->id,
					TASK_WAITERS_MAX);
			return;
		}
		e->waiters[e->n_waiters++] = call; /* answered by exec_exited */
		return;
	}
	task_timestamp_set(&at, &e->exited_at);
	resp.exit_status = (uint32_t)e->exit_status;
	resp.exited_at = &at;
	task_reply_message(call, &resp.base);
}

static void exec_state(struct task_service *ts, struct ttrpc_call *call,
		       const Containerd__Task__V2__StateRequest *q)
{
	Containerd__Task__V2__StateResponse resp = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	struct shim_exec *e = exec_lookup(ts, call, q->id, q->exec_id);

	if (!e)
		return;
	resp.id = e->id;
	resp.exec_id = e->id;
	resp.bundle = e->task->bundle;
	resp.pid = e->pid;
	resp.status = e->exited	   ? CONTAINERD__V1__TYPES__STATUS__STOPPED
		      : e->started ? CONTAINERD__V1__TYPES__STATUS__RUNNING
				   : CONTAINERD__V1__TYPES__STATUS__CREATED;
	resp.stdin = e->stdin_path;
	resp.stdout = e->stdout_path;
	resp.stderr = e->stderr_path;
	resp.terminal = e->terminal;
	if (e->exited) {
		task_timestamp_set(&at, &e->exited_at);
		resp.exit_status = (uint32_t)e->exit_status;
		resp.exited_at = &at;
	}
	task_reply_message(call, &resp.base);
}

static void exec_delete(struct task_service *ts, struct ttrpc_call *call,
			const Containerd__Task__V2__DeleteRequest *q)
{
	Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	struct shim_exec *e = exec_lookup(ts, call, q->id, q->exec_id);

	if (!e)
		return;
	if (e->started && !e->exited) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION,
				"exec %s: must be stopped before deletion: running", e->id);
		return;
	}
	/* containerd publishes no TaskDelete for an exec (as runc's shim) */
	task_timestamp_set(&at, &e->exited_at);
	resp.pid = e->pid;
	resp.exit_status = (uint32_t)e->exit_status;
	resp.exited_at = &at;
	task_reply_message(call, &resp.base);
	exec_fail_waiters(e, "deleted before it ran");
	task_fd_close(&e->stdin_keep);
	exec_unlink(e->task, e);
	exec_free(e);
}

static void exec_close_io(struct task_service *ts, struct ttrpc_call *call,
			  const Containerd__Task__V2__CloseIORequest *q)
{
	struct shim_exec *e = exec_lookup(ts, call, q->id, q->exec_id);

	if (!e)
		return;
	if (q->stdin)
		task_fd_close(&e->stdin_keep); /* the relay reads EOF: the process's stdin ends */
	task_reply_empty(call);
}

static void resize_run(struct task_job *job)
{
	const Containerd__Task__V2__ResizePtyRequest *q = (const void *)job->in;

	job->r = job->ts->lib->exec_resize(job->ts->root, q->id, q->exec_id, q->height, q->width,
					   &job->err);
}

/* ResizePty: the init's terminal or an exec's; without a terminal nothing to do (as runc). */
static void task_resize(struct task_service *ts, struct ttrpc_call *call,
			const Containerd__Task__V2__ResizePtyRequest *q)
{
	struct shim_task *t = task_lookup(ts, call, q->id);
	struct shim_exec *e = NULL;
	struct task_job *job;
	bool terminal;

	if (!t)
		return;
	if (q->exec_id[0]) {
		e = exec_lookup(ts, call, q->id, q->exec_id);
		if (!e)
			return;
		if (!e->started || e->exited) {
			ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "exec %s: %s", e->id,
					e->exited ? "stopped" : "not started");
			return;
		}
		terminal = e->terminal;
	} else {
		if (t->exited) {
			ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "task %s: stopped", t->id);
			return;
		}
		terminal = t->terminal;
	}
	if (!terminal) {
		task_reply_empty(call);
		return;
	}
	if (q->width > 0xffff || q->height > 0xffff) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT,
				"width, height: %ux%u is not a terminal size", q->width, q->height);
		return;
	}
	job = task_job_new(ts, call, t, sizeof(*job), resize_run, task_job_done_empty);
	if (job)
		task_job_submit(job);
}

/* The exec id of a request that may name one, or NULL. */
static const char *request_exec_id(const char *name, const ProtobufCMessage *in)
{
	if (!strcmp(name, "Start"))
		return ((const Containerd__Task__V2__StartRequest *)in)->exec_id;
	if (!strcmp(name, "Kill"))
		return ((const Containerd__Task__V2__KillRequest *)in)->exec_id;
	if (!strcmp(name, "Wait"))
		return ((const Containerd__Task__V2__WaitRequest *)in)->exec_id;
	if (!strcmp(name, "State"))
		return ((const Containerd__Task__V2__StateRequest *)in)->exec_id;
	if (!strcmp(name, "Delete"))
		return ((const Containerd__Task__V2__DeleteRequest *)in)->exec_id;
	if (!strcmp(name, "CloseIO"))
		return ((const Containerd__Task__V2__CloseIORequest *)in)->exec_id;
	return NULL;
}

bool task_exec_dispatch(struct task_service *ts, const char *name, struct ttrpc_call *call,
			const ProtobufCMessage *in)
{
	const char *exec_id;

	if (!strcmp(name, "Exec")) {
		exec_add(ts, call, (const void *)in);
		return true;
	}
	if (!strcmp(name, "ResizePty")) {
		task_resize(ts, call, (const void *)in);
		return true;
	}
	exec_id = request_exec_id(name, in);
	if (!exec_id || !exec_id[0])
		return false;
	if (!strcmp(name, "Start"))
		exec_start(ts, call, (const void *)in);
	else if (!strcmp(name, "Kill"))
		exec_kill(ts, call, (const void *)in);
	else if (!strcmp(name, "Wait"))
		exec_wait(ts, call, (const void *)in);
	else if (!strcmp(name, "State"))
		exec_state(ts, call, (const void *)in);
	else if (!strcmp(name, "Delete"))
		exec_delete(ts, call, (const void *)in);
	else
		exec_close_io(ts, call, (const void *)in);
	return true;
}

void task_exec_cleanup(struct shim_task *t)
{
	struct shim_exec *e;

	while ((e = t->execs)) {
		if (e->started && !e->exited) {
			int status;

			kill(e->relay_pid, SIGKILL);
			while (waitpid(e->relay_pid, &status, 0) < 0 && errno == EINTR)
				;
			exec_exited(e, status);
		}
		exec_fail_waiters(e, "the task is gone");
		task_fd_close(&e->stdin_keep);
		t->execs = e->next;
		t->n_execs--;
		exec_free(e);
	}
}
