/*
 * `stratus update` (container_update, see container.h): new linux.resources for a running or
 * created container, applied by the agent to the container's cgroup in the guest (UPDATE).
 * What a cgroup cannot give inside a VM is refused here, before the guest is asked: more
 * memory than the VM has (its size is fixed at create), CPUs the VM does not have, memory
 * nodes other than the guest's one, and any update while the VM's vCPUs are paused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "container.h"

static yajl_val field(yajl_val res, const char *section, const char *name)
{
	const char *path[] = { section, name, NULL };

	return yajl_tree_get(res, path, yajl_t_any);
}

/* memory.<name> must fit in the VM's memory. */
static int check_memory(yajl_val res, const char *name, const struct container_state *st,
			struct error *err)
{
	yajl_val v = field(res, "memory", name);
	long long mib;

	if (!v || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) <= 0 || !st->vm_mem_mib)
		return 0; /* the agent checks the types; -1 and 0 mean no limit */
	if ((unsigned long long)YAJL_GET_INTEGER(v) <= st->vm_mem_mib << 20)
		return 0;
	mib = (YAJL_GET_INTEGER(v) + (1 << 20) - 1) >> 20;
	return error_set(err, -EINVAL,
			 "update: memory.%s: %lld MiB is more than the VM's %llu MiB (a VM's "
			 "memory is fixed at create: size it with a larger limit or the "
			 "io.stratus.vm.memory_mb annotation)",
			 name, mib, (unsigned long long)st->vm_mem_mib);
}

/* The highest number in a cpuset list ("0-2,4"), or -1 if the list is malformed. */
static long cpuset_max(const char *list)
{
	long max = -1;
	const char *p = list;

	while (*p) {
		char *end;
		long a = strtol(p, &end, 10), b = a;

		if (end == p || a < 0)
			return -1;
		if (*end == '-') {
			p = end + 1;
			b = strtol(p, &end, 10);
			if (end == p || b < a)
				return -1;
		}
		if (b > max)
			max = b;
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		p = end;
	}
	return max;
}

static int check_cpuset(yajl_val res, const struct container_state *st, struct error *err)
{
	yajl_val cpus = field(res, "cpu", "cpus"), mems = field(res, "cpu", "mems");
	long max;

	if (cpus && YAJL_IS_STRING(cpus) && cpus->u.string[0] && st->vm_vcpus) {
		max = cpuset_max(cpus->u.string);
		if (max < 0)
			return error_set(err, -EINVAL,
					 "update: cpu.cpus: \"%s\" is not a CPU list (like 0-2,4)",
					 cpus->u.string);
		if (max >= (long)st->vm_vcpus)
			return error_set(err, -EINVAL,
					 "update: cpu.cpus: CPU %ld: the VM has %u vCPU(s), 0-%u "
					 "(fixed at create: io.stratus.vm.vcpus sizes it)",
					 max, st->vm_vcpus, st->vm_vcpus - 1);
	}
	if (mems && YAJL_IS_STRING(mems) && mems->u.string[0]) {
		max = cpuset_max(mems->u.string);
		if (max != 0)
			return error_set(err, -EINVAL,
					 "update: cpu.mems: \"%s\": the VM has one memory node, 0",
					 mems->u.string);
	}
	return 0;
}

static int update_check(const struct container_state *st, const char *resources, struct error *err)
{
	char msg[128];
	yajl_val res = yajl_tree_parse(resources, msg, sizeof(msg));
	int r;

	if (!res || !YAJL_IS_OBJECT(res)) {
		yajl_tree_free(res);
		return error_set(err, -EINVAL, "update: resources: must be a JSON object");
	}
	r = check_memory(res, "limit", st, err);
	r = r ?: check_memory(res, "reservation", st, err);
	r = r ?: check_cpuset(res, st, err);
	yajl_tree_free(res);
	return r;
}

int container_update(const char *root, const char *id, const char *resources, struct error *err)
{
	struct container_state st = { 0 };
	struct agent_client c;
	int r, lock;

	r = state_id_check(id, err);
	r = r ?: state_lock(root, id, &lock, err);
	if (r < 0)
		return r;
	r = container_load(root, id, &st, err);
	if (r < 0)
		goto out;
	/* a paused pod member is a frozen cgroup: its agent still answers (docs/pods.md) */
	if (st.status == CONTAINER_STOPPED || (st.status == CONTAINER_PAUSED && !st.sandbox)) {
		r = error_set(err, st.status == CONTAINER_PAUSED ? -EBUSY : -ESRCH,
			      "update: container \"%s\" is %s%s", id,
			      container_status_name(st.status),
			      st.status == CONTAINER_PAUSED
				      ? " (its VM's vCPUs are stopped): resume it first"
				      : "");
		goto out;
	}
	r = update_check(&st, resources, err);
	r = r ?: container_agent_connect(root, id, &c, err);
	if (r < 0)
		goto out;
	r = agent_client_update(&c, id, resources);
	if (r < 0)
		error_set(err, r, "update: %s", c.err);
	agent_client_destroy(&c);
out:
	state_clear(&st);
	state_unlock(lock);
	return r;
}
