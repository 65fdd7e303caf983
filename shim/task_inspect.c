/*
 * The Task methods that look at a task or tune it without changing its life: State (the live
 * libstratus status), Pids (the guest's processes of the container), Stats (its cgroup v2
 * counters from the agent) and Update (its resources). Each names its task by id in the
 * shim's table (task_table.c); a pod member answers for itself, libstratus reaching it
 * through its sandbox's VM (docs/pods.md). docs/shim.md "Tasks".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "container.h"
#include "containerd/cgroups/v2/metrics.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "containerd/types/task.pb-c.h"
#include "task_internal.h"
#include "task_service.h"

static Containerd__V1__Types__Status status_of(struct task_service *ts, struct shim_task *t)
{
	struct container_state st;
	struct error err = { 0 };
	Containerd__V1__Types__Status s = CONTAINERD__V1__TYPES__STATUS__UNKNOWN;

	if (t->exited)
		return CONTAINERD__V1__TYPES__STATUS__STOPPED;
	if (container_load_shown(ts->root, t->id, &st, &err) < 0)
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
	struct shim_task *t = task_lookup(ts, call, q->id);

	if (!t)
		return;
	resp.id = t->id;
	resp.bundle = t->bundle;
	resp.pid = (uint32_t)t->pid;
	resp.status = status_of(ts, t);
	resp.stdin = t->stdin_path;
	resp.stdout = t->stdout_path;
	resp.stderr = t->stderr_path;
	resp.terminal = t->terminal;
	if (t->exited) {
		task_timestamp_set(&at, &t->exited_at);
		resp.exit_status = (uint32_t)t->exit_status;
		resp.exited_at = &at;
	}
	task_reply_message(call, &resp.base);
}

struct pids_job {
	struct task_job job;
	struct agent_ps ps;
};

static void pids_run(struct task_job *job)
{
	struct pids_job *pj = container_of(job, struct pids_job, job);

	job->r = job->ts->lib->ps(job->ts->root, job->t->id, &pj->ps, &job->err);
}

static void pids_done(struct task_job *job)
{
	struct pids_job *pj = container_of(job, struct pids_job, job);
	Containerd__Task__V2__PidsResponse resp = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
	_cleanup_free_ Containerd__V1__Types__ProcessInfo *infos = NULL;
	_cleanup_free_ Containerd__V1__Types__ProcessInfo **ptrs = NULL;
	struct shim_task *t = job->t;

	if (job->r < 0) {
		task_fail_err(job->call, &job->err, job->r);
		goto out;
	}
	infos = calloc(pj->ps.procs.n + 1, sizeof(*infos));
	ptrs = calloc(pj->ps.procs.n + 1, sizeof(*ptrs));
	if (!infos || !ptrs) {
		container_ps_free(&pj->ps);
		ttrpc_call_fail(job->call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < pj->ps.procs.n; i++) {
		containerd__v1__types__process_info__init(&infos[i]);
		infos[i].pid = pj->ps.procs.v[i].pid; /* the guest's pid namespace */
		ptrs[i] = &infos[i];
	}
	resp.n_processes = pj->ps.procs.n;
	resp.processes = ptrs;
	task_reply_message(job->call, &resp.base);
	container_ps_free(&pj->ps);
out:
	task_job_free(job);
	task_release(t);
}

static void task_pids(struct task_service *ts, struct ttrpc_call *call,
		      const Containerd__Task__V2__PidsRequest *q)
{
	Containerd__Task__V2__PidsResponse resp = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
	struct shim_task *t = task_lookup(ts, call, q->id);
	struct task_job *job;

	if (!t)
		return;
	if (t->exited) {
		task_reply_message(call, &resp.base);
		return;
	}
	job = task_job_new(ts, call, t, sizeof(struct pids_job), pids_run, pids_done);
	if (job)
		task_job_submit(job);
}

struct stats_job {
	struct task_job job;
	struct agent_stats s;
};

static void stats_run(struct task_job *job)
{
	struct stats_job *sj = container_of(job, struct stats_job, job);

	job->r = job->ts->lib->stats(job->ts->root, job->t->id, &sj->s, &job->err);
}

static void stats_reply(struct ttrpc_call *call, const struct agent_stats *s)
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

	pids.current = s->pids_current;
	pids.limit = s->pids_limit == AGENT_STATS_NO_LIMIT ? 0 : s->pids_limit;
	cpu.usage_usec = s->cpu_usage_us;
	cpu.user_usec = s->cpu_user_us;
	cpu.system_usec = s->cpu_system_us;
	cpu.nr_periods = s->cpu_nr_periods;
	cpu.nr_throttled = s->cpu_nr_throttled;
	cpu.throttled_usec = s->cpu_throttled_us;
	mem.usage = s->mem_usage;
	mem.usage_limit = s->mem_limit == AGENT_STATS_NO_LIMIT ? UINT64_MAX : s->mem_limit;
	mem.swap_usage = s->mem_swap_usage;
	ev.oom = s->mem_oom;
	ev.oom_kill = s->mem_oom_kill;
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

static void stats_done(struct task_job *job)
{
	struct stats_job *sj = container_of(job, struct stats_job, job);
	struct shim_task *t = job->t;

	if (job->r < 0)
		task_fail_err(job->call, &job->err, job->r);
	else
		stats_reply(job->call, &sj->s);
	task_job_free(job);
	task_release(t);
}

static void task_stats(struct task_service *ts, struct ttrpc_call *call,
		       const Containerd__Task__V2__StatsRequest *q)
{
	struct shim_task *t = task_lookup(ts, call, q->id);
	struct task_job *job;

	if (!t)
		return;
	if (t->exited) {
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "task %s: stopped", q->id);
		return;
	}
	job = task_job_new(ts, call, t, sizeof(struct stats_job), stats_run, stats_done);
	if (job)
		task_job_submit(job);
}

struct update_job {
	struct task_job job;
	char *json;
};

static void update_run(struct task_job *job)
{
	struct update_job *uj = container_of(job, struct update_job, job);

	job->r = job->ts->lib->update(job->ts->root, job->t->id, uj->json, &job->err);
}

static void update_done(struct task_job *job)
{
	struct update_job *uj = container_of(job, struct update_job, job);
	struct shim_task *t = job->t;

	if (job->r < 0)
		task_fail_err(job->call, &job->err, job->r);
	else
		task_reply_empty(job->call);
	free(uj->json);
	task_job_free(job);
	task_release(t);
}

static void task_update(struct task_service *ts, struct ttrpc_call *call,
			const Containerd__Task__V2__UpdateTaskRequest *q)
{
	struct shim_task *t = task_lookup(ts, call, q->id);
	_cleanup_free_ char *json = NULL;
	struct update_job *uj;

	if (!t)
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
	uj = (struct update_job *)task_job_new(ts, call, t, sizeof(*uj), update_run, update_done);
	if (!uj)
		return;
	uj->json = ptr_steal(&json);
	task_job_submit(&uj->job);
}

bool task_inspect_dispatch(struct task_service *ts, const char *name, struct ttrpc_call *call,
			   const ProtobufCMessage *in)
{
	if (!strcmp(name, "State"))
		task_state(ts, call, (const void *)in);
	else if (!strcmp(name, "Pids"))
		task_pids(ts, call, (const void *)in);
	else if (!strcmp(name, "Stats"))
		task_stats(ts, call, (const void *)in);
	else if (!strcmp(name, "Update"))
		task_update(ts, call, (const void *)in);
	else
		return false;
	return true;
}
