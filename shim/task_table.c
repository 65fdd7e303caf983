/*
 * The shim's table of tasks, keyed by container id (docs/shim.md "Tasks"): one container with
 * a VM of its own, or a pod's sandbox and the members libstratus runs in its VM
 * (docs/pods.md). At most TASK_TABLE_MAX; kept in Create order, so a pod's sandbox comes
 * before its members. Every Task method naming an id finds its task here, and a missing one
 * is NotFound as containerd's runc shim answers it. The Task handlers own what a task holds
 * (fds, execs, the events connection); the table only frees its strings and itself.
 */
#include <stdlib.h>
#include <string.h>

#include "task_internal.h"
#include "task_service.h"

struct shim_task *task_new(struct task_service *ts)
{
	struct shim_task *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ts = ts;
	t->pidfd = t->stdin_keep = -1;
	return t;
}

void task_free(struct shim_task *t)
{
	if (!t)
		return;
	free(t->id);
	free(t->bundle);
	free(t->rootfs);
	free(t->sandbox);
	free(t->stdin_path);
	free(t->stdout_path);
	free(t->stderr_path);
	free(t);
}

struct shim_task *task_table_find(const struct task_service *ts, const char *id)
{
	for (unsigned int i = 0; i < ts->n_tasks; i++) {
		if (!strcmp(ts->tasks[i]->id, id))
			return ts->tasks[i];
	}
	return NULL;
}

struct shim_task *task_lookup(struct task_service *ts, struct ttrpc_call *call, const char *id)
{
	struct shim_task *t = task_table_find(ts, id);

	if (!t)
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "container %s: not found", id);
	return t;
}

int task_table_insert(struct task_service *ts, struct shim_task *t)
{
	if (!t->id || task_table_find(ts, t->id))
		return -EEXIST;
	if (ts->n_tasks == TASK_TABLE_MAX)
		return -ENOSPC;
	ts->tasks[ts->n_tasks++] = t;
	return 0;
}

void task_table_remove(struct task_service *ts, struct shim_task *t)
{
	for (unsigned int i = 0; i < ts->n_tasks; i++) {
		if (ts->tasks[i] != t)
			continue;
		memmove(&ts->tasks[i], &ts->tasks[i + 1], (ts->n_tasks - i - 1) * sizeof(t));
		ts->n_tasks--;
		break;
	}
	task_free(t);
}

struct shim_task *task_vm_owner(struct task_service *ts, struct shim_task *t)
{
	return t->sandbox ? task_table_find(ts, t->sandbox) : t;
}
