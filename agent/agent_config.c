/*
 * The container-level part of CREATE's config.json (runtime-spec config.md and
 * config-linux.md): linux.namespaces, hostname, domainname, linux.sysctl, linux.maskedPaths,
 * linux.readonlyPaths, root.readonly, linux.rootfsPropagation, linux.uidMappings and
 * gidMappings, linux.devices (agent_devices.c), linux.resources (agent_cgroup.c) and linux.seccomp (agent_seccomp.c), parsed
 * with yajl into a container_spec. root.path and mounts are the host's business: CREATE
 * carries the rootfs and the translated mounts as typed fields. Every error names its JSON
 * path, so the host can show it as is.
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <yajl/yajl_tree.h>

#include "agent_internal.h"

#define CONFIG_MAX_PATHS  1024
#define CONFIG_MAX_SYSCTL 1024

static int config_fail(char *err, size_t err_len, const char *fmt, const char *arg)
{
	char what[256];

	snprintf(what, sizeof(what), fmt, arg);
	snprintf(err, err_len, "config.json: %s", what);
	return -EINVAL;
}

#define CONTAINER_PREFIX "container:" /* a path naming another container's namespace (1.3) */

static const struct {
	const char *type, *proc; /* OCI's name, /proc/PID/ns/'s */
	int flag;
} ns_types[] = {
	{ "pid", "pid", CLONE_NEWPID },		 { "network", "net", CLONE_NEWNET },
	{ "mount", "mnt", CLONE_NEWNS },	 { "ipc", "ipc", CLONE_NEWIPC },
	{ "uts", "uts", CLONE_NEWUTS },		 { "user", "user", CLONE_NEWUSER },
	{ "cgroup", "cgroup", CLONE_NEWCGROUP },
};

bool ns_joined(const struct container_spec *cs, int type)
{
	for (int i = 0; i < cs->njoin; i++)
		if (cs->join_type[i] == type)
			return true;
	return false;
}

static int config_namespaces(yajl_val lx, struct container_spec *cs, char *err, size_t err_len)
{
	static const char *ns_path[] = { "namespaces", NULL }, *type_path[] = { "type", NULL };
	static const char *path_path[] = { "path", NULL };
	yajl_val v = lx ? yajl_tree_get(lx, ns_path, yajl_t_any) : NULL;

	if (v && !YAJL_IS_ARRAY(v))
		return config_fail(err, err_len, "linux.namespaces: must be an array%s", "");
	for (size_t i = 0; v && i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];
		yajl_val t = yajl_tree_get(e, type_path, yajl_t_string);
		yajl_val p = yajl_tree_get(e, path_path, yajl_t_any);
		size_t k = 0;

		while (t && k < ARRAY_SIZE(ns_types) && strcmp(ns_types[k].type, t->u.string))
			k++;
		if (!t || k == ARRAY_SIZE(ns_types))
			return config_fail(err, err_len, "linux.namespaces: unknown type %.40s",
					   t ? t->u.string : "(missing)");
		if (p && (!YAJL_IS_STRING(p) ||
			  (p->u.string[0] && p->u.string[0] != '/' &&
			   strncmp(p->u.string, CONTAINER_PREFIX, strlen(CONTAINER_PREFIX)))))
			return config_fail(err, err_len,
					   "linux.namespaces: %.40s: path must be absolute or "
					   "container:<id>",
					   t->u.string);
		if (p && p->u.string[0]) {
			/* Joined, not created: a pod's namespaces, shared with its first container. */
			int flag = ns_types[k].flag;

			for (int j = 0; j < cs->njoin; j++)
				if (cs->join_type[j] == flag)
					return config_fail(err, err_len,
							   "linux.namespaces: %.40s: joined twice",
							   t->u.string);
			if (!(cs->join_path[cs->njoin] = strdup(p->u.string)))
				return -ENOMEM;
			cs->join_index[cs->njoin] = (int)i;
			cs->join_type[cs->njoin++] = flag;
			continue;
		}
		if (ns_types[k].flag == CLONE_NEWCGROUP)
			cs->cgroup_ns = true;
		else
			cs->clone_flags |= ns_types[k].flag;
	}
	for (int j = 0; j < cs->njoin; j++) {
		int f = cs->join_type[j];

		size_t k = 0;

		while (k < ARRAY_SIZE(ns_types) - 1 && ns_types[k].flag != f)
			k++;
		if ((cs->clone_flags & f) || (f == CLONE_NEWCGROUP && cs->cgroup_ns))
			return config_fail(err, err_len,
					   "linux.namespaces: %s: both created and joined",
					   ns_types[k].type);
		if (f == CLONE_NEWUSER && (cs->clone_flags & CLONE_NEWPID)) {
			/* Its proc could not be mounted: the pid ns would be the agent's userns's. */
			snprintf(err, err_len,
				 "config.json: linux.namespaces: a new pid namespace in a joined "
				 "user namespace is not supported: join the pod's pid namespace "
				 "too");
			return -EOPNOTSUPP;
		}
	}
	if (!(cs->clone_flags & CLONE_NEWNS) && !ns_joined(cs, CLONE_NEWNS))
		return config_fail(err, err_len,
				   "linux.namespaces: a mount namespace is required%s", "");
	return 0;
}

/*
 * "container:<id>" (a pod member naming its sandbox, docs/pods.md): the namespace of that
 * type of the container's init, which must exist and run. The agent is the init's parent and
 * reaps it only in its own loop, so the pid cannot be reused before setup_spawn() opens it.
 */
int config_resolve_containers(struct agent *a, struct container_spec *cs, char *err, size_t err_len)
{
	size_t plen = strlen(CONTAINER_PREFIX);

	for (int i = 0; i < cs->njoin; i++) {
		const char *id = cs->join_path[i] + plen, *why = NULL;
		struct process *init;
		char path[64], *copy;
		size_t k = 0;
		int e = ENOENT;

		if (strncmp(cs->join_path[i], CONTAINER_PREFIX, plen))
			continue;
		init = proc_find(a, id, "");
		if (!container_find(a, id) || !init) {
			why = "no such container";
		} else if (init->state == PROC_SETUP) {
			why = "it is being set up";
			e = EBUSY;
		} else if ((init->state != PROC_CREATED && init->state != PROC_RUNNING) ||
			   init->pid <= 0) {
			why = "its init has exited";
		}
		if (why) {
			snprintf(err, err_len, "config.json: linux.namespaces[%d].path: %.300s: %s",
				 cs->join_index[i], cs->join_path[i], why);
			return -e;
		}
		while (k < ARRAY_SIZE(ns_types) - 1 && ns_types[k].flag != cs->join_type[i])
			k++;
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)init->pid, ns_types[k].proc);
		if (!(copy = strdup(path)))
			return -ENOMEM;
		free(cs->join_path[i]);
		cs->join_path[i] = copy;
	}
	return 0;
}

/* A JSON array of strings (paths) into a NULL-terminated vector. */
static int config_paths(yajl_val lx, const char *key, char ***out, char *err, size_t err_len)
{
	const char *path[] = { key, NULL };
	yajl_val v = lx ? yajl_tree_get(lx, path, yajl_t_any) : NULL;

	*out = calloc(v && YAJL_IS_ARRAY(v) ? v->u.array.len + 1 : 1, sizeof(char *));
	if (!*out)
		return -ENOMEM;
	if (!v)
		return 0;
	if (!YAJL_IS_ARRAY(v) || v->u.array.len > CONFIG_MAX_PATHS)
		return config_fail(err, err_len, "linux.%s: must be an array of absolute paths",
				   key);
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val s = v->u.array.values[i];

		if (!YAJL_IS_STRING(s) || s->u.string[0] != '/')
			return config_fail(err, err_len,
					   "linux.%s: must be an array of absolute paths", key);
		if (!((*out)[i] = strdup(s->u.string)))
			return -ENOMEM;
	}
	return 0;
}

static int config_sysctl(yajl_val lx, struct container_spec *cs, char *err, size_t err_len)
{
	static const char *path[] = { "sysctl", NULL };
	yajl_val v = lx ? yajl_tree_get(lx, path, yajl_t_any) : NULL;
	size_t n = v && YAJL_IS_OBJECT(v) ? v->u.object.len : 0;

	if (v && (!YAJL_IS_OBJECT(v) || n > CONFIG_MAX_SYSCTL))
		return config_fail(err, err_len, "linux.sysctl: must be an object of strings%s",
				   "");
	cs->sysctl = calloc(2 * n + 1, sizeof(char *));
	if (!cs->sysctl)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *key = v->u.object.keys[i];
		yajl_val val = v->u.object.values[i];

		/* The key becomes /proc/sys/<a/b/c>: no way out of /proc/sys. */
		if (!key[0] || key[0] == '.' || strstr(key, "..") || strchr(key, '/') ||
		    !YAJL_IS_STRING(val))
			return config_fail(err, err_len, "linux.sysctl: bad entry %.60s", key);
		if (!(cs->sysctl[2 * i] = strdup(key)) ||
		    !(cs->sysctl[2 * i + 1] = strdup(val->u.string)))
			return -ENOMEM;
	}
	return 0;
}

static int config_id_maps(yajl_val lx, const char *key, struct id_map *maps, unsigned int *n,
			  char *err, size_t err_len)
{
	static const char *c_path[] = { "containerID", NULL }, *h_path[] = { "hostID", NULL };
	static const char *s_path[] = { "size", NULL };
	const char *path[] = { key, NULL };
	yajl_val v = lx ? yajl_tree_get(lx, path, yajl_t_any) : NULL;

	if (!v)
		return 0;
	if (!YAJL_IS_ARRAY(v) || v->u.array.len > SPEC_MAX_ID_MAPS)
		return config_fail(err, err_len, "linux.%s: must be an array of at most 5 mappings",
				   key);
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];
		yajl_val c = yajl_tree_get(e, c_path, yajl_t_number);
		yajl_val h = yajl_tree_get(e, h_path, yajl_t_number);
		yajl_val s = yajl_tree_get(e, s_path, yajl_t_number);

		if (!c || !h || !s || !YAJL_IS_INTEGER(c) || !YAJL_IS_INTEGER(h) ||
		    !YAJL_IS_INTEGER(s) || YAJL_GET_INTEGER(c) < 0 ||
		    YAJL_GET_INTEGER(c) > UINT32_MAX || YAJL_GET_INTEGER(h) < 0 ||
		    YAJL_GET_INTEGER(h) > UINT32_MAX || YAJL_GET_INTEGER(s) < 1 ||
		    YAJL_GET_INTEGER(s) > UINT32_MAX)
			return config_fail(err, err_len,
					   "linux.%s: containerID, hostID and size must be "
					   "32-bit integers, size > 0",
					   key);
		maps[*n] = (struct id_map){ (uint32_t)YAJL_GET_INTEGER(c),
					    (uint32_t)YAJL_GET_INTEGER(h),
					    (uint32_t)YAJL_GET_INTEGER(s) };
		(*n)++;
	}
	return 0;
}

static int config_propagation(yajl_val lx, struct container_spec *cs, char *err, size_t err_len)
{
	static const char *path[] = { "rootfsPropagation", NULL };
	static const struct {
		const char *name;
		unsigned long flags;
	} kinds[] = {
		{ "private", MS_PRIVATE },	 { "rprivate", MS_PRIVATE | MS_REC },
		{ "slave", MS_SLAVE },		 { "rslave", MS_SLAVE | MS_REC },
		{ "shared", MS_SHARED },	 { "rshared", MS_SHARED | MS_REC },
		{ "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
	};
	yajl_val v = lx ? yajl_tree_get(lx, path, yajl_t_any) : NULL;

	cs->rootfs_propagation = MS_PRIVATE | MS_REC;
	if (!v)
		return 0;
	for (size_t i = 0; YAJL_IS_STRING(v) && i < ARRAY_SIZE(kinds); i++) {
		if (!strcmp(kinds[i].name, v->u.string)) {
			cs->rootfs_propagation = kinds[i].flags;
			return 0;
		}
	}
	return config_fail(err, err_len, "linux.rootfsPropagation: unknown value %.40s",
			   YAJL_IS_STRING(v) ? v->u.string : "(not a string)");
}

static int config_string(yajl_val root, const char *key, char **out, char *err, size_t err_len)
{
	const char *path[] = { key, NULL };
	yajl_val v = yajl_tree_get(root, path, yajl_t_any);

	if (!v)
		return 0;
	if (!YAJL_IS_STRING(v) || strlen(v->u.string) > 64)
		return config_fail(err, err_len, "%s: must be a string of at most 64 bytes", key);
	*out = strdup(v->u.string);
	return *out ? 0 : -ENOMEM;
}

static int config_from_tree(yajl_val root, struct container_spec *cs, char *err, size_t err_len)
{
	static const char *linux_path[] = { "linux", NULL };
	static const char *ro_path[] = { "root", "readonly", NULL };
	static const char *res_path[] = { "resources", NULL };
	static const char *sc_path[] = { "seccomp", NULL };
	yajl_val lx = yajl_tree_get(root, linux_path, yajl_t_any), v;
	int r;

	if (lx && !YAJL_IS_OBJECT(lx))
		return config_fail(err, err_len, "linux: must be an object%s", "");
	if ((r = config_namespaces(lx, cs, err, err_len)) < 0 ||
	    (r = config_string(root, "hostname", &cs->hostname, err, err_len)) < 0 ||
	    (r = config_string(root, "domainname", &cs->domainname, err, err_len)) < 0 ||
	    (r = config_sysctl(lx, cs, err, err_len)) < 0 ||
	    (r = config_paths(lx, "maskedPaths", &cs->masked, err, err_len)) < 0 ||
	    (r = config_paths(lx, "readonlyPaths", &cs->readonly, err, err_len)) < 0 ||
	    (r = config_propagation(lx, cs, err, err_len)) < 0 ||
	    (r = config_id_maps(lx, "uidMappings", cs->uid_map, &cs->nuid_map, err, err_len)) < 0 ||
	    (r = config_id_maps(lx, "gidMappings", cs->gid_map, &cs->ngid_map, err, err_len)) < 0 ||
	    (r = devices_parse(lx, cs, err, err_len)) < 0)
		return r;
	if ((cs->hostname || cs->domainname) && !(cs->clone_flags & CLONE_NEWUTS) &&
	    !ns_joined(cs, CLONE_NEWUTS))
		return config_fail(err, err_len,
				   "hostname: needs a uts namespace in linux.namespaces%s", "");
	if ((cs->clone_flags & CLONE_NEWUSER) && (!cs->nuid_map || !cs->ngid_map))
		return config_fail(err, err_len,
				   "linux.uidMappings: a user namespace needs uid and gid "
				   "mappings%s",
				   "");
	v = yajl_tree_get(root, ro_path, yajl_t_any);
	if (v && !YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return config_fail(err, err_len, "root.readonly: must be a boolean%s", "");
	cs->root_readonly = v && YAJL_IS_TRUE(v);
	v = lx ? yajl_tree_get(lx, res_path, yajl_t_any) : NULL;
	if (v && (r = cgroup_limits_parse(v, "config.json: linux.resources", &cs->limits, err,
					  err_len)) < 0)
		return r;
	v = lx ? yajl_tree_get(lx, sc_path, yajl_t_any) : NULL;
	if (v && (r = seccomp_parse(v, &cs->seccomp, err, err_len)) < 0)
		return r;
	return 0;
}

int config_parse(const char *json, struct container_spec *out, char *err, size_t err_len)
{
	char yerr[256] = "";
	yajl_val root = yajl_tree_parse(json, yerr, sizeof(yerr));
	int r;

	memset(out, 0, sizeof(*out));
	if (!root) {
		snprintf(err, err_len, "config.json: invalid JSON: %.200s", yerr);
		return -EINVAL;
	}
	r = YAJL_IS_OBJECT(root) ? config_from_tree(root, out, err, err_len)
				 : config_fail(err, err_len, "must be an object%s", "");
	yajl_tree_free(root);
	if (r < 0)
		config_free(out);
	return r;
}

static void strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

void config_free(struct container_spec *cs)
{
	free(cs->hostname);
	free(cs->domainname);
	strv_free(cs->sysctl);
	strv_free(cs->masked);
	strv_free(cs->readonly);
	cgroup_limits_free(&cs->limits);
	seccomp_free(cs->seccomp);
	for (int i = 0; i < cs->njoin; i++)
		free(cs->join_path[i]);
	devices_free(cs);
	memset(cs, 0, sizeof(*cs));
}

/*
 * A new network namespace costs the guest kernel the per-net set-up of every protocol
 * (~150-400 ms here, more than any other step of CREATE). In a VM whose only interface is
 * lo, the agent's own namespace already is what a new one would be: private to the VM, only
 * lo (up, as runc gives it), nothing listening (the agent speaks vsock, which no network
 * namespace scopes). So the first container that asks for a new one gets that namespace
 * instead, once per VM (a later one, or one of a VM with a NIC, gets a new one: no two
 * containers share a network they did not ask to share). Not with a user namespace: a
 * container root there must own its network namespace to configure it. docs/agent-protocol.md
 * "Container set-up" has the reasoning.
 */
void config_lend_vm_network(struct agent *a, struct container_spec *cs)
{
	struct if_nameindex *ifs;
	bool only_lo = true;

	if (!a->vm_net || !(cs->clone_flags & CLONE_NEWNET) || (cs->clone_flags & CLONE_NEWUSER) ||
	    ns_joined(cs, CLONE_NEWUSER))
		return;
	ifs = if_nameindex();
	if (!ifs)
		return;
	for (struct if_nameindex *i = ifs; i->if_index; i++)
		only_lo &= !strcmp(i->if_name, "lo");
	if_freenameindex(ifs);
	if (!only_lo)
		return;
	cs->clone_flags &= ~CLONE_NEWNET;
	a->vm_net = false;
}
