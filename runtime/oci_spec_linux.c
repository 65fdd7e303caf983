/*
 * config.json's "linux": namespaces, id mappings, sysctl, the resources that size the VM
 * (memory, cpu, pids), seccomp (action, operator and architecture names checked against what
 * libseccomp knows, so the agent never meets a name it cannot apply), masked and read-only
 * paths, devices, mount label and rootfs propagation.
 */
#include <stdio.h>
#include <string.h>

#include "oci_json.h"

static const char *const ns_names[OCI_NS_TYPES] = {
	[OCI_NS_PID] = "pid",	    [OCI_NS_NETWORK] = "network", [OCI_NS_MOUNT] = "mount",
	[OCI_NS_IPC] = "ipc",	    [OCI_NS_UTS] = "uts",	  [OCI_NS_USER] = "user",
	[OCI_NS_CGROUP] = "cgroup", [OCI_NS_TIME] = "time",
};

const char *oci_namespace_name(enum oci_namespace_type type)
{
	return type < OCI_NS_TYPES ? ns_names[type] : "?";
}

static const char *const seccomp_actions[] = {
	[OCI_SECCOMP_KILL] = "SCMP_ACT_KILL",
	[OCI_SECCOMP_KILL_PROCESS] = "SCMP_ACT_KILL_PROCESS",
	[OCI_SECCOMP_KILL_THREAD] = "SCMP_ACT_KILL_THREAD",
	[OCI_SECCOMP_TRAP] = "SCMP_ACT_TRAP",
	[OCI_SECCOMP_ERRNO] = "SCMP_ACT_ERRNO",
	[OCI_SECCOMP_TRACE] = "SCMP_ACT_TRACE",
	[OCI_SECCOMP_ALLOW] = "SCMP_ACT_ALLOW",
	[OCI_SECCOMP_LOG] = "SCMP_ACT_LOG",
	[OCI_SECCOMP_NOTIFY] = "SCMP_ACT_NOTIFY",
};

static const char *const seccomp_ops[] = {
	[OCI_SECCOMP_NE] = "SCMP_CMP_NE",
	[OCI_SECCOMP_LT] = "SCMP_CMP_LT",
	[OCI_SECCOMP_LE] = "SCMP_CMP_LE",
	[OCI_SECCOMP_EQ] = "SCMP_CMP_EQ",
	[OCI_SECCOMP_GE] = "SCMP_CMP_GE",
	[OCI_SECCOMP_GT] = "SCMP_CMP_GT",
	[OCI_SECCOMP_MASKED_EQ] = "SCMP_CMP_MASKED_EQ",
};

static const char *check_seccomp_arch(const char *s)
{
	static const char *const archs[] = {
		"SCMP_ARCH_X86",      "SCMP_ARCH_X86_64",      "SCMP_ARCH_X32",
		"SCMP_ARCH_ARM",      "SCMP_ARCH_AARCH64",     "SCMP_ARCH_MIPS",
		"SCMP_ARCH_MIPS64",   "SCMP_ARCH_MIPS64N32",   "SCMP_ARCH_MIPSEL",
		"SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
		"SCMP_ARCH_PPC64",    "SCMP_ARCH_PPC64LE",     "SCMP_ARCH_S390",
		"SCMP_ARCH_S390X",    "SCMP_ARCH_PARISC",      "SCMP_ARCH_PARISC64",
		"SCMP_ARCH_RISCV64",  "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K",
		"SCMP_ARCH_SH",	      "SCMP_ARCH_SHEB",
	};

	if (!s)
		return "must be a string";
	return oci_lookup(archs, ARRAY_SIZE(archs), s) < 0 ? "unknown seccomp architecture" : NULL;
}

static const char *check_seccomp_flag(const char *s)
{
	static const char *const flags[] = {
		"SECCOMP_FILTER_FLAG_TSYNC",
		"SECCOMP_FILTER_FLAG_LOG",
		"SECCOMP_FILTER_FLAG_SPEC_ALLOW",
		"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
	};

	if (!s)
		return "must be a string";
	return oci_lookup(flags, ARRAY_SIZE(flags), s) < 0 ? "unknown seccomp flag" : NULL;
}

static const char *check_nonempty(const char *s)
{
	return s && *s ? NULL : "must be a non-empty string";
}

/* A string member that must be one of names[]: its index in *out. */
static int get_enum(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		    const char *const *names, size_t n, const char *what, int *out)
{
	char path[OCI_PATH_MAX];
	char *s = NULL;
	int r = oci_get_string(p, obj, parent, key, true, &s);

	if (r)
		return r;
	*out = oci_lookup(names, n, s);
	if (*out < 0)
		return oci_fail(p, oci_path_key(path, parent, key), "unknown %s \"%.64s\"", what,
				s);
	return 0;
}

/* An array member of objects: its elements and count (0 when absent), storage allocated. */
static int get_objects(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		       size_t size, void **items, size_t *n, yajl_val *array)
{
	char path[OCI_PATH_MAX], item[OCI_PATH_MAX];
	int r = oci_get_array(p, obj, parent, key, false, array);

	*n = 0;
	if (r || !*array)
		return r;
	oci_path_key(path, parent, key);
	for (size_t i = 0; i < (*array)->u.array.len; i++)
		if (!YAJL_IS_OBJECT((*array)->u.array.values[i]))
			return oci_fail(p, oci_path_index(item, path, i), "must be an object");
	*items = oci_arena_alloc(p->arena, (*array)->u.array.len, size);
	if (!*items && (*array)->u.array.len)
		return oci_nomem(p, path);
	*n = (*array)->u.array.len;
	return 0;
}

static int parse_namespaces(struct oci_parser *p, yajl_val lnx, struct oci_linux *out)
{
	char path[OCI_PATH_MAX], sub[OCI_PATH_MAX];
	yajl_val a = NULL;
	bool seen[OCI_NS_TYPES] = { 0 };
	int r = get_objects(p, lnx, "linux", "namespaces", sizeof(*out->namespaces),
			    (void **)&out->namespaces, &out->n_namespaces, &a);

	for (size_t i = 0; !r && i < out->n_namespaces; i++) {
		struct oci_namespace *ns = &out->namespaces[i];
		int type = 0;

		oci_path_index(path, "linux.namespaces", i);
		r = get_enum(p, a->u.array.values[i], path, "type", ns_names, OCI_NS_TYPES,
			     "namespace type", &type);
		r = r ?: oci_get_string(p, a->u.array.values[i], path, "path", false, &ns->path);
		if (r)
			break;
		if (seen[type])
			return oci_fail(p, path, "duplicate namespace type \"%s\"", ns_names[type]);
		seen[type] = true;
		ns->type = (enum oci_namespace_type)type;
		if (ns->path && ns->path[0] != '/')
			return oci_fail(p, oci_path_key(sub, path, "path"),
					"must be an absolute path");
	}
	return r;
}

static int parse_mappings(struct oci_parser *p, yajl_val lnx, const char *key,
			  struct oci_id_mapping **maps, size_t *n)
{
	char parent[OCI_PATH_MAX], path[OCI_PATH_MAX];
	yajl_val a = NULL;
	int r = get_objects(p, lnx, "linux", key, sizeof(**maps), (void **)maps, n, &a);

	oci_path_key(parent, "linux", key);
	for (size_t i = 0; !r && i < *n; i++) {
		yajl_val v = a->u.array.values[i];
		struct oci_id_mapping *m = &(*maps)[i];

		oci_path_index(path, parent, i);
		r = oci_get_u32(p, v, path, "containerID", true, &m->container_id, NULL);
		r = r ?: oci_get_u32(p, v, path, "hostID", true, &m->host_id, NULL);
		r = r ?: oci_get_u32(p, v, path, "size", true, &m->size, NULL);
	}
	return r;
}

static int parse_resources(struct oci_parser *p, yajl_val lnx, struct oci_resources *res)
{
	const char *mem = "linux.resources.memory", *cpu = "linux.resources.cpu";
	yajl_val v = NULL, m = NULL, c = NULL, pids = NULL;
	int r = oci_get_object(p, lnx, "linux", "resources", false, &v);

	if (r || !v)
		return r;
	r = oci_get_object(p, v, "linux.resources", "memory", false, &m);
	r = r ?: oci_get_object(p, v, "linux.resources", "cpu", false, &c);
	r = r ?: oci_get_object(p, v, "linux.resources", "pids", false, &pids);
	if (!r && m) {
		r = oci_get_i64(p, m, mem, "limit", -1, INT64_MAX, false, &res->memory_limit,
				&res->has_memory_limit);
		r = r
			    ?: oci_get_i64(p, m, mem, "reservation", -1, INT64_MAX, false,
					   &res->memory_reservation, &res->has_memory_reservation);
		r = r
			    ?: oci_get_i64(p, m, mem, "swap", -1, INT64_MAX, false,
					   &res->memory_swap, &res->has_memory_swap);
	}
	if (!r && c) {
		r = oci_get_u64(p, c, cpu, "shares", UINT64_MAX, false, &res->cpu_shares,
				&res->has_cpu_shares);
		r = r
			    ?: oci_get_i64(p, c, cpu, "quota", -1, INT64_MAX, false,
					   &res->cpu_quota, &res->has_cpu_quota);
		r = r
			    ?: oci_get_u64(p, c, cpu, "period", UINT64_MAX, false, &res->cpu_period,
					   &res->has_cpu_period);
		r = r ?: oci_get_string(p, c, cpu, "cpus", false, &res->cpu_cpus);
		r = r ?: oci_get_string(p, c, cpu, "mems", false, &res->cpu_mems);
	}
	if (!r && pids)
		r = oci_get_i64(p, pids, "linux.resources.pids", "limit", -1, INT64_MAX, true,
				&res->pids_limit, &res->has_pids_limit);
	return r;
}

static int parse_seccomp_args(struct oci_parser *p, yajl_val rule, const char *parent,
			      struct oci_seccomp_rule *out)
{
	char path[OCI_PATH_MAX];
	yajl_val a = NULL;
	int r = get_objects(p, rule, parent, "args", sizeof(*out->args), (void **)&out->args,
			    &out->n_args, &a);

	for (size_t i = 0; !r && i < out->n_args; i++) {
		yajl_val v = a->u.array.values[i];
		struct oci_seccomp_arg *arg = &out->args[i];
		uint64_t index = 0;
		int op = 0;

		char args_path[OCI_PATH_MAX];

		oci_path_index(path, oci_path_key(args_path, parent, "args"), i);
		r = oci_get_u64(p, v, path, "index", 5, true, &index, NULL);
		r = r ?: oci_get_u64(p, v, path, "value", UINT64_MAX, true, &arg->value, NULL);
		r = r
			    ?: oci_get_u64(p, v, path, "valueTwo", UINT64_MAX, false,
					   &arg->value_two, NULL);
		r = r
			    ?: get_enum(p, v, path, "op", seccomp_ops, ARRAY_SIZE(seccomp_ops),
					"seccomp operator", &op);
		arg->index = (unsigned int)index;
		arg->op = (enum oci_seccomp_op)op;
	}
	return r;
}

static int parse_seccomp_rules(struct oci_parser *p, yajl_val sc, struct oci_seccomp *out)
{
	char path[OCI_PATH_MAX];
	yajl_val a = NULL;
	int r = get_objects(p, sc, "linux.seccomp", "syscalls", sizeof(*out->rules),
			    (void **)&out->rules, &out->n_rules, &a);

	for (size_t i = 0; !r && i < out->n_rules; i++) {
		yajl_val v = a->u.array.values[i];
		struct oci_seccomp_rule *rule = &out->rules[i];
		int action = 0;

		oci_path_index(path, "linux.seccomp.syscalls", i);
		r = oci_get_strv(p, v, path, "names", true, check_nonempty, &rule->names);
		r = r
			    ?: get_enum(p, v, path, "action", seccomp_actions,
					ARRAY_SIZE(seccomp_actions), "seccomp action", &action);
		r = r
			    ?: oci_get_u32(p, v, path, "errnoRet", false, &rule->errno_ret,
					   &rule->has_errno_ret);
		r = r ?: parse_seccomp_args(p, v, path, rule);
		rule->action = (enum oci_seccomp_action)action;
	}
	return r;
}

static int parse_seccomp(struct oci_parser *p, yajl_val lnx, struct oci_linux *out)
{
	const char *path = "linux.seccomp";
	yajl_val sc = NULL;
	int action = 0, r = oci_get_object(p, lnx, "linux", "seccomp", false, &sc);

	if (r || !sc)
		return r;
	out->seccomp = oci_arena_alloc(p->arena, 1, sizeof(*out->seccomp));
	if (!out->seccomp)
		return oci_nomem(p, path);
	r = get_enum(p, sc, path, "defaultAction", seccomp_actions, ARRAY_SIZE(seccomp_actions),
		     "seccomp action", &action);
	r = r
		    ?: oci_get_u32(p, sc, path, "defaultErrnoRet", false,
				   &out->seccomp->default_errno_ret,
				   &out->seccomp->has_default_errno_ret);
	r = r
		    ?: oci_get_strv(p, sc, path, "architectures", false, check_seccomp_arch,
				    &out->seccomp->architectures);
	r = r
		    ?: oci_get_strv(p, sc, path, "flags", false, check_seccomp_flag,
				    &out->seccomp->flags);
	r = r ?: parse_seccomp_rules(p, sc, out->seccomp);
	out->seccomp->default_action = (enum oci_seccomp_action)action;
	return r;
}

static int parse_devices(struct oci_parser *p, yajl_val lnx, struct oci_linux *out)
{
	char path[OCI_PATH_MAX], sub[OCI_PATH_MAX];
	yajl_val a = NULL;
	int r = get_objects(p, lnx, "linux", "devices", sizeof(*out->devices),
			    (void **)&out->devices, &out->n_devices, &a);

	for (size_t i = 0; !r && i < out->n_devices; i++) {
		yajl_val v = a->u.array.values[i];
		struct oci_device *d = &out->devices[i];
		char *type = NULL;

		oci_path_index(path, "linux.devices", i);
		r = oci_get_string(p, v, path, "type", true, &type);
		r = r ?: oci_get_string(p, v, path, "path", true, &d->path);
		r = r ?: oci_get_i64(p, v, path, "major", 0, UINT32_MAX, false, &d->major, NULL);
		r = r ?: oci_get_i64(p, v, path, "minor", 0, UINT32_MAX, false, &d->minor, NULL);
		r = r
			    ?: oci_get_u32(p, v, path, "fileMode", false, &d->file_mode,
					   &d->has_file_mode);
		r = r ?: oci_get_u32(p, v, path, "uid", false, &d->uid, &d->has_uid);
		r = r ?: oci_get_u32(p, v, path, "gid", false, &d->gid, &d->has_gid);
		if (r)
			break;
		if (strlen(type) != 1 || !strchr("cbup", type[0]))
			return oci_fail(p, oci_path_key(sub, path, "type"),
					"must be one of \"c\", \"b\", \"u\", \"p\"");
		d->type = type[0];
		if (d->path[0] != '/')
			return oci_fail(p, oci_path_key(sub, path, "path"),
					"must be an absolute path");
	}
	return r;
}

static int check_propagation(struct oci_parser *p, const char *s)
{
	static const char *const modes[] = {
		"",	   "shared", "slave",	 "private",	"unbindable",
		"rshared", "rslave", "rprivate", "runbindable",
	};

	if (s && oci_lookup(modes, ARRAY_SIZE(modes), s) < 0)
		return oci_fail(p, "linux.rootfsPropagation", "unknown propagation \"%.64s\"", s);
	return 0;
}

int oci_parse_linux(struct oci_parser *p, yajl_val root, struct oci_linux *out)
{
	yajl_val lnx = NULL;
	int r = oci_get_object(p, root, "", "linux", false, &lnx);

	if (r || !lnx)
		return r;
	r = parse_namespaces(p, lnx, out);
	r = r ?: parse_mappings(p, lnx, "uidMappings", &out->uid_mappings, &out->n_uid_mappings);
	r = r ?: parse_mappings(p, lnx, "gidMappings", &out->gid_mappings, &out->n_gid_mappings);
	r = r ?: oci_get_map(p, lnx, "linux", "sysctl", &out->sysctl);
	r = r ?: parse_resources(p, lnx, &out->resources);
	r = r ?: oci_get_string(p, lnx, "linux", "cgroupsPath", false, &out->cgroups_path);
	r = r ?: parse_seccomp(p, lnx, out);
	r = r
		    ?: oci_get_strv(p, lnx, "linux", "maskedPaths", false, oci_check_absolute,
				    &out->masked_paths);
	r = r
		    ?: oci_get_strv(p, lnx, "linux", "readonlyPaths", false, oci_check_absolute,
				    &out->readonly_paths);
	r = r ?: parse_devices(p, lnx, out);
	r = r ?: oci_get_string(p, lnx, "linux", "mountLabel", false, &out->mount_label);
	r = r
		    ?: oci_get_string(p, lnx, "linux", "rootfsPropagation", false,
				      &out->rootfs_propagation);
	return r ?: check_propagation(p, out->rootfs_propagation);
}
