/*
 * The OCI process object (runtime-spec config.md "process"), as CREATE (inside config.json)
 * and EXEC (the object alone) carry it: parsed with yajl's tree API into a process_spec:
 * args, env, cwd, terminal, consoleSize, user (uid, gid, additionalGids, umask), rlimits,
 * capabilities (names resolved with libcap-ng into one mask per set), noNewPrivileges and
 * oomScoreAdj. Everything is checked here, in the agent, so the child that applies it can
 * only fail on what the kernel refuses. The input is bounded by the protocol's caps
 * (AGENT_MAX_OCI, AGENT_MAX_PROCESS) before it gets here.
 */
#include <cap-ng.h>
#include <errno.h>
#include <stdio.h>
#include <strings.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "agent_internal.h"
#include "common/rlimit.h"

#define SPEC_MAX_ARGS	 4096
#define SPEC_MAX_GROUPS	 65536
#define SPEC_MAX_RLIMITS 64

static int spec_fail(char *err, size_t err_len, const char *prefix, const char *what)
{
	snprintf(err, err_len, "%sprocess%s%s", prefix, what[0] == ':' ? "" : ".", what);
	return -EINVAL;
}

/* A JSON array of strings into a NULL-terminated vector. */
static int strv_from_json(yajl_val v, bool non_empty, char ***out)
{
	size_t n, i;
	char **strv;

	if (!YAJL_IS_ARRAY(v))
		return -EINVAL;
	n = v->u.array.len;
	if ((non_empty && n == 0) || n > SPEC_MAX_ARGS)
		return -EINVAL;
	strv = calloc(n + 1, sizeof(*strv));
	if (!strv)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		yajl_val s = v->u.array.values[i];

		if (!YAJL_IS_STRING(s) || !(strv[i] = strdup(s->u.string))) {
			for (size_t j = 0; j < i; j++)
				free(strv[j]);
			free(strv);
			return YAJL_IS_STRING(s) ? -ENOMEM : -EINVAL;
		}
	}
	*out = strv;
	return 0;
}

static int console_size(yajl_val proc, struct process_spec *s)
{
	static const char *h_path[] = { "consoleSize", "height", NULL };
	static const char *w_path[] = { "consoleSize", "width", NULL };
	yajl_val h = yajl_tree_get(proc, h_path, yajl_t_number);
	yajl_val w = yajl_tree_get(proc, w_path, yajl_t_number);

	if (!h && !w)
		return 0;
	if (!h || !w || !YAJL_IS_INTEGER(h) || !YAJL_IS_INTEGER(w))
		return -EINVAL;
	if (YAJL_GET_INTEGER(h) < 0 || YAJL_GET_INTEGER(h) > 65535 || YAJL_GET_INTEGER(w) < 0 ||
	    YAJL_GET_INTEGER(w) > 65535)
		return -EINVAL;
	s->rows = (uint32_t)YAJL_GET_INTEGER(h);
	s->cols = (uint32_t)YAJL_GET_INTEGER(w);
	return 0;
}

static bool json_u32(yajl_val v, uint32_t *out)
{
	if (!v || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0 ||
	    YAJL_GET_INTEGER(v) > UINT32_MAX)
		return false;
	*out = (uint32_t)YAJL_GET_INTEGER(v);
	return true;
}

static int spec_user(yajl_val proc, const char *prefix, struct process_spec *s, char *err,
		     size_t err_len)
{
	static const char *user_path[] = { "user", NULL };
	static const char *uid_path[] = { "uid", NULL }, *gid_path[] = { "gid", NULL };
	static const char *groups_path[] = { "additionalGids", NULL };
	static const char *umask_path[] = { "umask", NULL };
	yajl_val user = yajl_tree_get(proc, user_path, yajl_t_any), v;

	if (!user)
		return 0;
	if (!YAJL_IS_OBJECT(user))
		return spec_fail(err, err_len, prefix, "user: must be an object");
	s->has_user = true;
	if (!json_u32(yajl_tree_get(user, uid_path, yajl_t_any), &s->uid))
		return spec_fail(err, err_len, prefix,
				 "user.uid: must be an integer 0..4294967295");
	if (!json_u32(yajl_tree_get(user, gid_path, yajl_t_any), &s->gid))
		return spec_fail(err, err_len, prefix,
				 "user.gid: must be an integer 0..4294967295");
	v = yajl_tree_get(user, groups_path, yajl_t_any);
	if (v) {
		if (!YAJL_IS_ARRAY(v) || v->u.array.len > SPEC_MAX_GROUPS)
			return spec_fail(err, err_len, prefix,
					 "user.additionalGids: must be an array of gids");
		s->groups = calloc(v->u.array.len + 1, sizeof(*s->groups));
		if (!s->groups)
			return -ENOMEM;
		for (size_t i = 0; i < v->u.array.len; i++)
			if (!json_u32(v->u.array.values[i], &s->groups[s->ngroups++]))
				return spec_fail(err, err_len, prefix,
						 "user.additionalGids: must be an array of gids");
	}
	v = yajl_tree_get(user, umask_path, yajl_t_any);
	if (v) {
		if (!json_u32(v, &s->umask) || s->umask > 0777)
			return spec_fail(err, err_len, prefix, "user.umask: must be 0..0777");
		s->has_umask = true;
	}
	return 0;
}

static bool json_u64(yajl_val v, uint64_t *out)
{
	/* yajl keeps integers as long long: a limit past that (e.g. 2^64-1) is a double. */
	if (v && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) >= 0) {
		*out = (uint64_t)YAJL_GET_INTEGER(v);
		return true;
	}
	if (v && YAJL_IS_DOUBLE(v) && YAJL_GET_DOUBLE(v) >= 0) {
		*out = YAJL_GET_DOUBLE(v) >= 1.8446744073709552e19 ? UINT64_MAX
								   : (uint64_t)YAJL_GET_DOUBLE(v);
		return true;
	}
	return false;
}

static int spec_rlimits(yajl_val proc, const char *prefix, struct process_spec *s, char *err,
			size_t err_len)
{
	static const char *rl_path[] = { "rlimits", NULL }, *type_path[] = { "type", NULL };
	static const char *soft_path[] = { "soft", NULL }, *hard_path[] = { "hard", NULL };
	yajl_val v = yajl_tree_get(proc, rl_path, yajl_t_any);
	char what[128];

	if (!v)
		return 0;
	if (!YAJL_IS_ARRAY(v) || v->u.array.len > SPEC_MAX_RLIMITS)
		return spec_fail(err, err_len, prefix, "rlimits: must be an array");
	s->rlimits = calloc(v->u.array.len + 1, sizeof(*s->rlimits));
	if (!s->rlimits)
		return -ENOMEM;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];
		yajl_val t = yajl_tree_get(e, type_path, yajl_t_string);
		struct rlimit_spec *r = &s->rlimits[s->nrlimits++];
		int resource = rlimit_from_name(t ? t->u.string : NULL);

		if (resource < 0) {
			snprintf(what, sizeof(what), "rlimits[%zu].type: unknown rlimit %.40s", i,
				 t ? t->u.string : "(missing)");
			return spec_fail(err, err_len, prefix, what);
		}
		r->resource = resource;
		if (!json_u64(yajl_tree_get(e, soft_path, yajl_t_any), &r->soft) ||
		    !json_u64(yajl_tree_get(e, hard_path, yajl_t_any), &r->hard) ||
		    r->soft > r->hard) {
			snprintf(what, sizeof(what),
				 "rlimits[%zu]: soft and hard must be integers, soft <= hard", i);
			return spec_fail(err, err_len, prefix, what);
		}
	}
	return 0;
}

/* "CAP_SYS_ADMIN" (any case) to its number, or -1. */
static int cap_from_name(const char *name)
{
	if (strncasecmp(name, "CAP_", 4))
		return -1;
	return capng_name_to_capability(name + 4);
}

static int spec_caps(yajl_val proc, const char *prefix, struct process_spec *s, char *err,
		     size_t err_len)
{
	static const char *caps_path[] = { "capabilities", NULL };
	static const char *names[CAP_NR] = { "bounding", "effective", "permitted", "inheritable",
					     "ambient" };
	yajl_val caps = yajl_tree_get(proc, caps_path, yajl_t_any);
	char what[160];

	if (!caps)
		return 0;
	if (!YAJL_IS_OBJECT(caps))
		return spec_fail(err, err_len, prefix, "capabilities: must be an object");
	s->has_caps = true;
	for (int set = 0; set < CAP_NR; set++) {
		const char *path[] = { names[set], NULL };
		yajl_val v = yajl_tree_get(caps, path, yajl_t_any);

		if (!v)
			continue;
		if (!YAJL_IS_ARRAY(v)) {
			snprintf(what, sizeof(what), "capabilities.%s: must be an array",
				 names[set]);
			return spec_fail(err, err_len, prefix, what);
		}
		for (size_t i = 0; i < v->u.array.len; i++) {
			yajl_val n = v->u.array.values[i];
			int cap = YAJL_IS_STRING(n) ? cap_from_name(n->u.string) : -1;

			if (cap < 0 || cap > 63) {
				snprintf(what, sizeof(what),
					 "capabilities.%s: unknown capability %.60s", names[set],
					 YAJL_IS_STRING(n) ? n->u.string : "(not a string)");
				return spec_fail(err, err_len, prefix, what);
			}
			s->caps[set] |= 1ull << cap;
		}
	}
	return 0;
}

static int spec_misc(yajl_val proc, const char *prefix, struct process_spec *s, char *err,
		     size_t err_len)
{
	static const char *nnp_path[] = { "noNewPrivileges", NULL };
	static const char *oom_path[] = { "oomScoreAdj", NULL };
	yajl_val v = yajl_tree_get(proc, nnp_path, yajl_t_any);

	if (v && !YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return spec_fail(err, err_len, prefix, "noNewPrivileges: must be a boolean");
	s->no_new_privs = v && YAJL_IS_TRUE(v);
	v = yajl_tree_get(proc, oom_path, yajl_t_any);
	if (v) {
		if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < -1000 ||
		    YAJL_GET_INTEGER(v) > 1000)
			return spec_fail(err, err_len, prefix,
					 "oomScoreAdj: must be an integer -1000..1000");
		s->has_oom_score_adj = true;
		s->oom_score_adj = (int)YAJL_GET_INTEGER(v);
	}
	return 0;
}

static int spec_from_tree(yajl_val proc, const char *prefix, struct process_spec *s, char *err,
			  size_t err_len)
{
	int r;

	static const char *args_path[] = { "args", NULL }, *env_path[] = { "env", NULL };
	static const char *cwd_path[] = { "cwd", NULL }, *term_path[] = { "terminal", NULL };
	yajl_val v;

	if (!YAJL_IS_OBJECT(proc))
		return spec_fail(err, err_len, prefix, ": must be an object");
	v = yajl_tree_get(proc, args_path, yajl_t_any);
	if (!v || strv_from_json(v, true, &s->args) < 0)
		return spec_fail(err, err_len, prefix,
				 "args: must be a non-empty array of strings");
	v = yajl_tree_get(proc, env_path, yajl_t_any);
	if (v && strv_from_json(v, false, &s->env) < 0)
		return spec_fail(err, err_len, prefix, "env: must be an array of strings");
	if (!v && !(s->env = calloc(1, sizeof(char *))))
		return -ENOMEM;
	v = yajl_tree_get(proc, cwd_path, yajl_t_any);
	if (!v || !YAJL_IS_STRING(v) || v->u.string[0] != '/')
		return spec_fail(err, err_len, prefix, "cwd: must be an absolute path");
	if (!(s->cwd = strdup(v->u.string)))
		return -ENOMEM;
	v = yajl_tree_get(proc, term_path, yajl_t_any);
	if (v && !YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return spec_fail(err, err_len, prefix, "terminal: must be a boolean");
	s->terminal = v && YAJL_IS_TRUE(v);
	if (console_size(proc, s) < 0)
		return spec_fail(err, err_len, prefix,
				 "consoleSize: must be {height, width} within 0..65535");
	if ((r = spec_user(proc, prefix, s, err, err_len)) < 0 ||
	    (r = spec_rlimits(proc, prefix, s, err, err_len)) < 0 ||
	    (r = spec_caps(proc, prefix, s, err, err_len)) < 0)
		return r;
	return spec_misc(proc, prefix, s, err, err_len);
}

int spec_parse_process(const char *json, bool in_config, struct process_spec *out, char *err,
		       size_t err_len)
{
	static const char *proc_path[] = { "process", NULL };
	const char *prefix = in_config ? "config.json: " : "process: ";
	char yerr[256] = "";
	yajl_val root = yajl_tree_parse(json, yerr, sizeof(yerr));
	yajl_val proc;
	int r;

	memset(out, 0, sizeof(*out));
	if (!root) {
		snprintf(err, err_len, "%sinvalid JSON: %.200s", prefix, yerr);
		return -EINVAL;
	}
	proc = in_config ? yajl_tree_get(root, proc_path, yajl_t_object) : root;
	if (!proc)
		r = spec_fail(err, err_len, prefix, ": missing");
	else
		r = spec_from_tree(proc, prefix, out, err, err_len);
	yajl_tree_free(root);
	if (r < 0)
		spec_free(out);
	return r;
}

void spec_free(struct process_spec *s)
{
	for (char **p = s->args; p && *p; p++)
		free(*p);
	for (char **p = s->env; p && *p; p++)
		free(*p);
	free(s->args);
	free(s->env);
	free(s->cwd);
	free(s->groups);
	free(s->rlimits);
	memset(s, 0, sizeof(*s));
}
