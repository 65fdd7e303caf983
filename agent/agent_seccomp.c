/*
 * linux.seccomp (runtime-spec config-linux.md "Seccomp") compiled with libseccomp. The filter
 * is built in the agent when CREATE arrives, so every mistake in it (an unknown action,
 * architecture or operator) is CREATE's error reply naming the JSON path; the container's
 * processes (init and every EXEC) only load it, last, right before execve. Syscall names the
 * running libseccomp does not know are skipped, as runc and crun do: profiles list syscalls of
 * newer kernels. libseccomp must not set no_new_privs on its own (SCMP_FLTATR_CTL_NNP off):
 * process.noNewPrivileges decides that.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_tree.h>

#include "agent_internal.h"

#define SECCOMP_MAX_ARGS 6

static int sc_fail(char *err, size_t err_len, const char *what, const char *arg)
{
	snprintf(err, err_len, "config.json: linux.seccomp.%s%.80s", what, arg);
	return -EINVAL;
}

/* An OCI action name (and its errnoRet) to a libseccomp action; false if unknown. */
static bool sc_action(yajl_val action, yajl_val errno_ret, uint32_t *out)
{
	uint32_t ret = 0;

	if (!action || !YAJL_IS_STRING(action))
		return false;
	if (errno_ret) {
		if (!YAJL_IS_INTEGER(errno_ret) || YAJL_GET_INTEGER(errno_ret) < 0 ||
		    YAJL_GET_INTEGER(errno_ret) > 4095)
			return false;
		ret = (uint32_t)YAJL_GET_INTEGER(errno_ret);
	}
	const char *a = action->u.string;

	if (!strcmp(a, "SCMP_ACT_ALLOW"))
		*out = SCMP_ACT_ALLOW;
	else if (!strcmp(a, "SCMP_ACT_ERRNO"))
		*out = SCMP_ACT_ERRNO(errno_ret ? ret : EPERM);
	else if (!strcmp(a, "SCMP_ACT_KILL") || !strcmp(a, "SCMP_ACT_KILL_THREAD"))
		*out = SCMP_ACT_KILL_THREAD;
	else if (!strcmp(a, "SCMP_ACT_KILL_PROCESS"))
		*out = SCMP_ACT_KILL_PROCESS;
	else if (!strcmp(a, "SCMP_ACT_TRAP"))
		*out = SCMP_ACT_TRAP;
	else if (!strcmp(a, "SCMP_ACT_TRACE"))
		*out = SCMP_ACT_TRACE(errno_ret ? ret : EPERM);
	else if (!strcmp(a, "SCMP_ACT_LOG"))
		*out = SCMP_ACT_LOG;
	else
		return false;
	return true;
}

static bool sc_op(const char *name, enum scmp_compare *out)
{
	static const struct {
		const char *name;
		enum scmp_compare op;
	} ops[] = {
		{ "SCMP_CMP_NE", SCMP_CMP_NE },
		{ "SCMP_CMP_LT", SCMP_CMP_LT },
		{ "SCMP_CMP_LE", SCMP_CMP_LE },
		{ "SCMP_CMP_EQ", SCMP_CMP_EQ },
		{ "SCMP_CMP_GE", SCMP_CMP_GE },
		{ "SCMP_CMP_GT", SCMP_CMP_GT },
		{ "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
	};

	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		if (!strcmp(ops[i].name, name)) {
			*out = ops[i].op;
			return true;
		}
	}
	return false;
}

static bool json_u64_val(yajl_val v, uint64_t *out)
{
	if (!v) {
		*out = 0;
		return true;
	}
	if (YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) >= 0) {
		*out = (uint64_t)YAJL_GET_INTEGER(v);
		return true;
	}
	if (YAJL_IS_DOUBLE(v) && YAJL_GET_DOUBLE(v) >= 0 &&
	    YAJL_GET_DOUBLE(v) < 1.8446744073709552e19) {
		*out = (uint64_t)YAJL_GET_DOUBLE(v);
		return true;
	}
	return false;
}

static int sc_args(yajl_val args, struct scmp_arg_cmp *cmp, unsigned int *n, size_t rule, char *err,
		   size_t err_len)
{
	static const char *index_path[] = { "index", NULL }, *value_path[] = { "value", NULL };
	static const char *two_path[] = { "valueTwo", NULL }, *op_path[] = { "op", NULL };
	char what[64];

	*n = 0;
	if (!args)
		return 0;
	snprintf(what, sizeof(what), "syscalls[%zu].args", rule);
	if (!YAJL_IS_ARRAY(args) || args->u.array.len > SECCOMP_MAX_ARGS)
		return sc_fail(err, err_len, what, ": must be an array of at most 6 conditions");
	for (size_t i = 0; i < args->u.array.len; i++) {
		yajl_val a = args->u.array.values[i];
		yajl_val idx = yajl_tree_get(a, index_path, yajl_t_any);
		yajl_val op = yajl_tree_get(a, op_path, yajl_t_string);
		uint64_t value, two;
		enum scmp_compare c;

		if (!idx || !YAJL_IS_INTEGER(idx) || YAJL_GET_INTEGER(idx) < 0 ||
		    YAJL_GET_INTEGER(idx) >= SECCOMP_MAX_ARGS)
			return sc_fail(err, err_len, what, ": index must be 0..5");
		if (!op || !sc_op(op->u.string, &c))
			return sc_fail(err, err_len, what, ": unknown op");
		if (!json_u64_val(yajl_tree_get(a, value_path, yajl_t_any), &value) ||
		    !json_u64_val(yajl_tree_get(a, two_path, yajl_t_any), &two))
			return sc_fail(err, err_len, what, ": value must be an unsigned integer");
		cmp[(*n)++] =
			(struct scmp_arg_cmp){ (unsigned int)YAJL_GET_INTEGER(idx), c, value, two };
	}
	return 0;
}

static int sc_rule(scmp_filter_ctx ctx, uint32_t def, yajl_val rule, size_t i, char *err,
		   size_t err_len)
{
	static const char *names_path[] = { "names", NULL }, *act_path[] = { "action", NULL };
	static const char *ret_path[] = { "errnoRet", NULL }, *args_path[] = { "args", NULL };
	yajl_val names = yajl_tree_get(rule, names_path, yajl_t_any);
	struct scmp_arg_cmp cmp[SECCOMP_MAX_ARGS];
	unsigned int ncmp;
	uint32_t action;
	char what[64];
	int r;

	snprintf(what, sizeof(what), "syscalls[%zu]", i);
	if (!names || !YAJL_IS_ARRAY(names))
		return sc_fail(err, err_len, what, ".names: must be an array of syscall names");
	if (!sc_action(yajl_tree_get(rule, act_path, yajl_t_any),
		       yajl_tree_get(rule, ret_path, yajl_t_any), &action))
		return sc_fail(err, err_len, what, ".action: unknown action or bad errnoRet");
	r = sc_args(yajl_tree_get(rule, args_path, yajl_t_any), cmp, &ncmp, i, err, err_len);
	if (r < 0)
		return r;
	if (action == def)
		return 0; /* libseccomp refuses a rule that does what the default does */
	for (size_t k = 0; k < names->u.array.len; k++) {
		yajl_val n = names->u.array.values[k];
		int nr;

		if (!YAJL_IS_STRING(n))
			return sc_fail(err, err_len, what, ".names: must be strings");
		nr = seccomp_syscall_resolve_name(n->u.string);
		if (nr == __NR_SCMP_ERROR)
			continue;
		r = seccomp_rule_add_array(ctx, action, nr, ncmp, cmp);
		if (r < 0) {
			snprintf(err, err_len, "config.json: linux.seccomp.%s: %s: %s", what,
				 n->u.string, strerror(-r));
			return -EINVAL;
		}
	}
	return 0;
}

static int sc_arches(scmp_filter_ctx ctx, yajl_val arches, char *err, size_t err_len)
{
	for (size_t i = 0; arches && YAJL_IS_ARRAY(arches) && i < arches->u.array.len; i++) {
		yajl_val a = arches->u.array.values[i];
		char name[32];
		uint32_t arch;
		int r;

		if (!YAJL_IS_STRING(a) || strncmp(a->u.string, "SCMP_ARCH_", 10) ||
		    strlen(a->u.string) >= sizeof(name) + 10)
			return sc_fail(err, err_len, "architectures: unknown ",
				       YAJL_IS_STRING(a) ? a->u.string : "(not a string)");
		for (size_t k = 0; k <= strlen(a->u.string + 10); k++) {
			char ch = a->u.string[10 + k];

			name[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
		}
		arch = seccomp_arch_resolve_name(name);
		if (!arch)
			return sc_fail(err, err_len, "architectures: unknown ", a->u.string);
		r = seccomp_arch_add(ctx, arch);
		if (r < 0 && r != -EEXIST)
			return sc_fail(err, err_len, "architectures: cannot add ", a->u.string);
	}
	if (arches && !YAJL_IS_ARRAY(arches))
		return sc_fail(err, err_len, "architectures: must be an array", "");
	return 0;
}

static int sc_flags(scmp_filter_ctx ctx, yajl_val flags, char *err, size_t err_len)
{
	for (size_t i = 0; flags && YAJL_IS_ARRAY(flags) && i < flags->u.array.len; i++) {
		yajl_val f = flags->u.array.values[i];
		const char *s = YAJL_IS_STRING(f) ? f->u.string : "";

		if (!strcmp(s, "SECCOMP_FILTER_FLAG_LOG"))
			seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
		else if (!strcmp(s, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"))
			seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
		else if (strcmp(s, "SECCOMP_FILTER_FLAG_TSYNC"))
			return sc_fail(err, err_len, "flags: unknown flag ",
				       YAJL_IS_STRING(f) ? s : "(not a string)");
	}
	if (flags && !YAJL_IS_ARRAY(flags))
		return sc_fail(err, err_len, "flags: must be an array", "");
	return 0;
}

int seccomp_parse(const void *yajl_seccomp, void **out, char *err, size_t err_len)
{
	static const char *def_path[] = { "defaultAction", NULL };
	static const char *def_ret_path[] = { "defaultErrnoRet", NULL };
	static const char *arch_path[] = { "architectures", NULL };
	static const char *flags_path[] = { "flags", NULL }, *sys_path[] = { "syscalls", NULL };
	yajl_val sc = (yajl_val)yajl_seccomp, syscalls;
	scmp_filter_ctx ctx;
	uint32_t def;
	int r;

	*out = NULL;
	if (!YAJL_IS_OBJECT(sc))
		return sc_fail(err, err_len, "", ": must be an object");
	if (!sc_action(yajl_tree_get(sc, def_path, yajl_t_any),
		       yajl_tree_get(sc, def_ret_path, yajl_t_any), &def))
		return sc_fail(err, err_len, "defaultAction: unknown action or bad defaultErrnoRet",
			       "");
	ctx = seccomp_init(def);
	if (!ctx)
		return -ENOMEM;
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	r = sc_arches(ctx, yajl_tree_get(sc, arch_path, yajl_t_any), err, err_len);
	if (r == 0)
		r = sc_flags(ctx, yajl_tree_get(sc, flags_path, yajl_t_any), err, err_len);
	syscalls = yajl_tree_get(sc, sys_path, yajl_t_any);
	if (r == 0 && syscalls && !YAJL_IS_ARRAY(syscalls))
		r = sc_fail(err, err_len, "syscalls: must be an array", "");
	for (size_t i = 0; r == 0 && syscalls && i < syscalls->u.array.len; i++)
		r = sc_rule(ctx, def, syscalls->u.array.values[i], i, err, err_len);
	if (r < 0) {
		seccomp_release(ctx);
		return r;
	}
	*out = ctx;
	return 0;
}

void seccomp_free(void *filter)
{
	if (filter)
		seccomp_release(filter);
}

int seccomp_apply(void *filter)
{
	return filter ? seccomp_load(filter) : 0;
}
