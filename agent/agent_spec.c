/*
 * The OCI process object (runtime-spec config.md "process"), as CREATE (inside config.json)
 * and EXEC (the object alone) carry it: parsed with yajl's tree API. This slice reads what a
 * process needs without isolation: args, env, cwd, terminal and consoleSize. user, rlimits,
 * capabilities and the rest come with the container set-up. The input is bounded by the
 * protocol's caps (AGENT_MAX_OCI, AGENT_MAX_PROCESS) before it gets here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "agent_internal.h"

#define SPEC_MAX_ARGS 4096

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

static int spec_from_tree(yajl_val proc, const char *prefix, struct process_spec *s, char *err,
			  size_t err_len)
{
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
	return 0;
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
	memset(s, 0, sizeof(*s));
}
