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

static void task_pids(struct task_service *ts, struct ttrpc_call *call,
		      const Containerd__Task__V2__PidsRequest *q)
{
	Containerd__Task__V2__PidsResponse resp = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
	_cleanup_free_ Containerd__V1__Types__ProcessInfo *infos = NULL;
	_cleanup_free_ Containerd__V1__Types__ProcessInfo **ptrs = NULL;
	struct shim_task *t = task_lookup(ts, call, q->id);
	struct agent_ps ps = { 0 };
	struct error err = { 0 };
	int r;

	if (!t)
		return;
	if (t->exited) {
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
	struct shim_task *t = task_lookup(ts, call, q->id);
	struct agent_stats s = { 0 };
	struct error err = { 0 };
	int r;

	if (!t)
		return;
	if (t->exited) {
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

static void task_update(struct task_service *ts, struct ttrpc_call *call,
			const Containerd__Task__V2__UpdateTaskRequest *q)
{
	struct agent_client c;
	struct error err = { 0 };
	_cleanup_free_ char *json = NULL;
	int r;

	if (!task_lookup(ts, call, q->id))
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
		ttrpc_call_fail(call, task_code_of(r), "update: %s", c.err);
	else
		task_reply_empty(call);
	agent_client_destroy(&c);
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
