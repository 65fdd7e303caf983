/*
 * config.json's "process": what the agent will exec in the guest. Checked here so create fails
 * before a VM starts: args non-empty, env "KEY=VALUE", cwd absolute, user ids in range, only
 * capability and rlimit names the kernel knows, no duplicate rlimit, oomScoreAdj in range.
 */
#include <string.h>
#include <sys/resource.h>

#include "oci_json.h"
#include "common/rlimit.h"

static const char *const cap_names[OCI_CAP_LAST + 1] = {
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

const char *oci_capability_name(unsigned int cap)
{
	return cap <= OCI_CAP_LAST ? cap_names[cap] : "?";
}

static int parse_cap_set(struct oci_parser *p, yajl_val caps, const char *key, uint64_t *mask)
{
	char path[OCI_PATH_MAX];
	struct oci_strv names = { 0 };
	int r = oci_get_strv(p, caps, "process.capabilities", key, false, NULL, &names);

	if (r)
		return r;
	oci_path_key(path, "process.capabilities", key);
	for (size_t i = 0; i < names.n; i++) {
		int cap = oci_lookup(cap_names, ARRAY_SIZE(cap_names), names.v[i]);
		char item[OCI_PATH_MAX];

		if (cap < 0)
			return oci_fail(p, oci_path_index(item, path, i),
					"unknown capability \"%.64s\"", names.v[i]);
		*mask |= 1ull << cap;
	}
	return 0;
}

static int parse_capabilities(struct oci_parser *p, yajl_val proc, struct oci_capabilities *caps)
{
	yajl_val v = NULL;
	int r = oci_get_object(p, proc, "process", "capabilities", false, &v);

	if (r || !v)
		return r;
	r = parse_cap_set(p, v, "bounding", &caps->bounding);
	r = r ?: parse_cap_set(p, v, "effective", &caps->effective);
	r = r ?: parse_cap_set(p, v, "inheritable", &caps->inheritable);
	r = r ?: parse_cap_set(p, v, "permitted", &caps->permitted);
	return r ?: parse_cap_set(p, v, "ambient", &caps->ambient);
}

static int parse_rlimit(struct oci_parser *p, yajl_val v, const char *path, struct oci_rlimit *rl)
{
	char *type = NULL;
	char sub[OCI_PATH_MAX];
	int t, r;

	if (!YAJL_IS_OBJECT(v))
		return oci_fail(p, path, "must be an object");
	r = oci_get_string(p, v, path, "type", true, &type);
	r = r ?: oci_get_u64(p, v, path, "hard", UINT64_MAX, true, &rl->hard, NULL);
	r = r ?: oci_get_u64(p, v, path, "soft", UINT64_MAX, true, &rl->soft, NULL);
	if (r)
		return r;
	t = rlimit_from_name(type);
	if (t < 0)
		return oci_fail(p, oci_path_key(sub, path, "type"), "unknown rlimit \"%.64s\"",
				type);
	rl->type = t;
	if (rl->soft > rl->hard)
		return oci_fail(p, oci_path_key(sub, path, "soft"), "must not exceed hard");
	return 0;
}

static int parse_rlimits(struct oci_parser *p, yajl_val proc, struct oci_process *out)
{
	char path[OCI_PATH_MAX];
	yajl_val a = NULL;
	int r = oci_get_array(p, proc, "process", "rlimits", false, &a);

	if (r || !a)
		return r;
	out->rlimits = oci_arena_alloc(p->arena, a->u.array.len, sizeof(*out->rlimits));
	if (!out->rlimits && a->u.array.len)
		return oci_nomem(p, "process.rlimits");
	for (size_t i = 0; i < a->u.array.len; i++) {
		oci_path_index(path, "process.rlimits", i);
		r = parse_rlimit(p, a->u.array.values[i], path, &out->rlimits[i]);
		if (r)
			return r;
		for (size_t j = 0; j < i; j++)
			if (out->rlimits[j].type == out->rlimits[i].type)
				return oci_fail(p, path, "duplicate rlimit type");
	}
	out->n_rlimits = a->u.array.len;
	return 0;
}

static int parse_user(struct oci_parser *p, yajl_val proc, struct oci_user *user)
{
	char path[OCI_PATH_MAX];
	yajl_val v = NULL, gids = NULL;
	uint64_t umask = 0;
	int r = oci_get_object(p, proc, "process", "user", true, &v);

	r = r ?: oci_get_u32(p, v, "process.user", "uid", true, &user->uid, NULL);
	r = r ?: oci_get_u32(p, v, "process.user", "gid", true, &user->gid, NULL);
	r = r ?: oci_get_u64(p, v, "process.user", "umask", 0777, false, &umask, &user->has_umask);
	r = r ?: oci_get_array(p, v, "process.user", "additionalGids", false, &gids);
	if (r || !gids)
		return r;
	user->umask = (uint32_t)umask;
	user->additional_gids = oci_arena_alloc(p->arena, gids->u.array.len, sizeof(uint32_t));
	if (!user->additional_gids && gids->u.array.len)
		return oci_nomem(p, "process.user.additionalGids");
	for (size_t i = 0; i < gids->u.array.len; i++) {
		uint64_t gid;

		oci_path_index(path, "process.user.additionalGids", i);
		r = oci_value_u64(p, gids->u.array.values[i], path, UINT32_MAX, &gid);
		if (r)
			return r;
		user->additional_gids[i] = (uint32_t)gid;
	}
	user->n_additional_gids = gids->u.array.len;
	return 0;
}

static int parse_console(struct oci_parser *p, yajl_val proc, struct oci_process *out)
{
	yajl_val v = NULL;
	int r = oci_get_object(p, proc, "process", "consoleSize", false, &v);

	if (r || !v)
		return r;
	out->has_console_size = true;
	r = oci_get_u32(p, v, "process.consoleSize", "height", true, &out->console_height, NULL);
	return r
		       ?: oci_get_u32(p, v, "process.consoleSize", "width", true,
				      &out->console_width, NULL);
}

static const char *check_arg(const char *s)
{
	return s ? NULL : "must be a string";
}

int oci_parse_process(struct oci_parser *p, yajl_val root, struct oci_process *out)
{
	yajl_val proc = NULL, args;
	int64_t oom = 0;
	int r = oci_get_object(p, root, "", "process", true, &proc);

	r = r ?: oci_get_bool(p, proc, "process", "terminal", &out->terminal);
	r = r ?: parse_console(p, proc, out);
	r = r ?: parse_user(p, proc, &out->user);
	args = r ? NULL : oci_member(proc, "args");
	if (!r && args && !YAJL_IS_ARRAY(args))
		r = oci_fail(p, "process.args", "must be a non-empty array of strings");
	r = r ?: oci_get_strv(p, proc, "process", "args", true, check_arg, &out->args);
	if (!r && !out->args.n)
		r = oci_fail(p, "process.args", "must be a non-empty array of strings");
	r = r ?: oci_get_strv(p, proc, "process", "env", false, oci_check_env, &out->env);
	r = r ?: oci_get_string(p, proc, "process", "cwd", true, &out->cwd);
	if (!r && out->cwd[0] != '/')
		r = oci_fail(p, "process.cwd", "must be an absolute path");
	r = r ?: parse_capabilities(p, proc, &out->caps);
	r = r ?: parse_rlimits(p, proc, out);
	r = r ?: oci_get_bool(p, proc, "process", "noNewPrivileges", &out->no_new_privileges);
	r = r
		    ?: oci_get_i64(p, proc, "process", "oomScoreAdj", -1000, 1000, false, &oom,
				   &out->has_oom_score_adj);
	r = r
		    ?: oci_get_string(p, proc, "process", "apparmorProfile", false,
				      &out->apparmor_profile);
	r = r ?: oci_get_string(p, proc, "process", "selinuxLabel", false, &out->selinux_label);
	out->oom_score_adj = (int)oom;
	return r;
}
