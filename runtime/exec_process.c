/*
 * The OCI process object `stratus exec` sends the agent when no --process file is given
 * (see exec_process.h): config.json's process as the template, as runc does, with the
 * command line's args, cwd, user, terminal, noNewPrivileges and capabilities in place of the
 * template's, and --env entries replacing the template's entries of the same name. Keys we
 * do not override are copied as they are, so everything the agent understands in
 * config.json's process applies to an exec too. exec_process_check() validates a process
 * object that arrives whole (containerd's Exec) with config.json's own process parser.
 */
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "agent_proto.h"
#include "exec_process.h"
#include "oci_json.h"

#define S(g, s) yajl_gen_string(g, (const unsigned char *)(s), strlen(s))

static yajl_val member(yajl_val obj, const char *key)
{
	if (!obj || !YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (!strcmp(obj->u.object.keys[i], key))
			return obj->u.object.values[i];
	return NULL;
}

static bool env_overridden(const char *entry, char *const *extra)
{
	size_t key = strcspn(entry, "=");

	for (; extra && *extra; extra++)
		if (!strncmp(*extra, entry, key) && (*extra)[key] == '=')
			return true;
	return false;
}

static void gen_env(yajl_gen g, yajl_val base, char *const *extra)
{
	S(g, "env");
	yajl_gen_array_open(g);
	for (size_t i = 0; base && YAJL_IS_ARRAY(base) && i < base->u.array.len; i++) {
		yajl_val e = base->u.array.values[i];

		if (YAJL_IS_STRING(e) && !env_overridden(e->u.string, extra))
			S(g, e->u.string);
	}
	for (; extra && *extra; extra++)
		S(g, *extra);
	yajl_gen_array_close(g);
}

static const char *const cap_sets[] = { "bounding", "effective", "permitted" };

/* The template's sets, with the --cap ones added to bounding, effective and permitted. */
static void gen_caps(yajl_gen g, yajl_val base, char *const *extra)
{
	S(g, "capabilities");
	yajl_gen_map_open(g);
	for (size_t i = 0; base && YAJL_IS_OBJECT(base) && i < base->u.object.len; i++) {
		bool grow = false;

		for (unsigned int s = 0; s < ARRAY_SIZE(cap_sets); s++)
			grow = grow || !strcmp(base->u.object.keys[i], cap_sets[s]);
		if (grow)
			continue;
		S(g, base->u.object.keys[i]);
		oci_json_gen(g, base->u.object.values[i], 1);
	}
	for (unsigned int s = 0; s < ARRAY_SIZE(cap_sets); s++) {
		yajl_val set = member(base, cap_sets[s]);

		S(g, cap_sets[s]);
		yajl_gen_array_open(g);
		for (size_t i = 0; set && YAJL_IS_ARRAY(set) && i < set->u.array.len; i++)
			oci_json_gen(g, set->u.array.values[i], 1);
		for (char *const *c = extra; c && *c; c++)
			S(g, *c);
		yajl_gen_array_close(g);
	}
	yajl_gen_map_close(g);
}

static void gen_user(yajl_gen g, yajl_val base, uint32_t uid, uint32_t gid)
{
	S(g, "user");
	yajl_gen_map_open(g);
	for (size_t i = 0; base && YAJL_IS_OBJECT(base) && i < base->u.object.len; i++) {
		const char *key = base->u.object.keys[i];

		if (!strcmp(key, "uid") || !strcmp(key, "gid") || !strcmp(key, "username"))
			continue;
		S(g, key);
		oci_json_gen(g, base->u.object.values[i], 1);
	}
	S(g, "uid");
	yajl_gen_integer(g, uid);
	S(g, "gid");
	yajl_gen_integer(g, gid);
	yajl_gen_map_close(g);
}

static bool overridden(const char *key, const struct exec_process_opts *o)
{
	return !strcmp(key, "args") || !strcmp(key, "terminal") || !strcmp(key, "env") ||
	       !strcmp(key, "consoleSize") || (o->cwd && !strcmp(key, "cwd")) ||
	       (o->has_user && !strcmp(key, "user")) ||
	       (o->caps && o->caps[0] && !strcmp(key, "capabilities")) ||
	       (o->no_new_privs && !strcmp(key, "noNewPrivileges"));
}

static void gen_process(yajl_gen g, yajl_val process, const struct exec_process_opts *o)
{
	yajl_gen_map_open(g);
	for (size_t i = 0; process && i < process->u.object.len; i++) {
		if (overridden(process->u.object.keys[i], o))
			continue;
		S(g, process->u.object.keys[i]);
		oci_json_gen(g, process->u.object.values[i], 1);
	}
	S(g, "terminal");
	yajl_gen_bool(g, o->terminal);
	S(g, "args");
	yajl_gen_array_open(g);
	for (char *const *a = o->args; *a; a++)
		S(g, *a);
	yajl_gen_array_close(g);
	gen_env(g, member(process, "env"), o->env);
	if (o->cwd) {
		S(g, "cwd");
		S(g, o->cwd);
	}
	if (o->has_user)
		gen_user(g, member(process, "user"), o->uid, o->gid);
	if (o->caps && o->caps[0])
		gen_caps(g, member(process, "capabilities"), o->caps);
	if (o->no_new_privs) {
		S(g, "noNewPrivileges");
		yajl_gen_bool(g, 1);
	}
	yajl_gen_map_close(g);
}

int exec_process_json(const char *config_json, const struct exec_process_opts *o, char **out,
		      struct error *err)
{
	const unsigned char *buf;
	char msg[256];
	yajl_val root, process;
	yajl_gen g;
	size_t len;
	int r = 0;

	if (!o->args || !o->args[0])
		return error_set(err, -EINVAL,
				 "exec: no command: give one after the ID, or "
				 "--process");
	root = yajl_tree_parse(config_json, msg, sizeof(msg));
	if (!root)
		return error_set(err, -EINVAL, "config.json: not valid JSON");
	process = member(root, "process");
	if (process && !YAJL_IS_OBJECT(process))
		process = NULL;
	g = yajl_gen_alloc(NULL);
	if (!g) {
		yajl_tree_free(root);
		return error_set(err, -ENOMEM, "out of memory");
	}
	gen_process(g, process, o);
	if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
		r = error_set(err, -EINVAL, "exec: cannot encode the process");
	else if (!(*out = strndup((const char *)buf, len)))
		r = error_set(err, -ENOMEM, "out of memory");
	yajl_gen_free(g);
	yajl_tree_free(root);
	return r;
}

/* "config.json: process.x: ..." from oci_spec's parser, told as "WHAT: process.x: ...". */
static int check_fail(struct error *err, const char *what, int r)
{
	static const char prefix[] = "config.json: ";
	char msg[sizeof(err->msg)];
	const char *rest = err->msg;

	if (!strncmp(rest, prefix, sizeof(prefix) - 1))
		rest += sizeof(prefix) - 1;
	snprintf(msg, sizeof(msg), "%s", rest);
	error_clear(err);
	return error_set(err, r, "%s: %s", what, msg);
}

int exec_process_check(const char *what, const char *json, size_t len, bool *terminal,
		       struct error *err)
{
	const char *keys[] = { "process" };
	struct oci_process proc = { 0 };
	struct oci_parser p = { .err = err };
	struct yajl_val_s root = { .type = yajl_t_object };
	_cleanup_free_ char *text = NULL;
	yajl_val tree, values[1];
	char yerr[256] = "";
	int r;

	if (len > AGENT_MAX_PROCESS)
		return error_set(err, -EFBIG, "%s: the process is larger than %u KiB", what,
				 (unsigned int)(AGENT_MAX_PROCESS >> 10));
	if (!len || memchr(json, '\0', len))
		return error_set(err, -EINVAL, "%s: the process is not JSON text", what);
	r = oci_json_prescan(json, len, err);
	if (r)
		return check_fail(err, what, r);
	text = strndup(json, len);
	if (!text)
		return error_set(err, -ENOMEM, "out of memory");
	tree = yajl_tree_parse(text, yerr, sizeof(yerr));
	if (!tree)
		return error_set(err, -EINVAL, "%s: the process is not valid JSON", what);
	if (!YAJL_IS_OBJECT(tree)) {
		yajl_tree_free(tree);
		return error_set(err, -EINVAL, "%s: the process is not a JSON object", what);
	}
	/* the parser reads config.json's "process" member: give it {"process": tree} */
	values[0] = tree;
	root.u.object.keys = keys;
	root.u.object.values = values;
	root.u.object.len = 1;
	p.arena = oci_arena_new();
	if (!p.arena) {
		yajl_tree_free(tree);
		return error_set(err, -ENOMEM, "out of memory");
	}
	r = oci_json_check_duplicates(&p, &root, "", 0);
	r = r ?: oci_parse_process(&p, &root, &proc);
	*terminal = proc.terminal;
	oci_arena_free(p.arena);
	yajl_tree_free(tree);
	return r ? check_fail(err, what, r) : 0;
}
