/*
 * config.json → struct oci_spec: reading the bundle's file (bounded), the pre-parse guards
 * (size, NUL bytes, nesting depth), yajl_tree, the duplicate-key check, then the top-level
 * sections: ociVersion, root, mounts, hostname, annotations, hooks. process and linux live in
 * oci_spec_process.c and oci_spec_linux.c; the accessors in oci_json.c.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "oci_json.h"

static const char *const hook_names[OCI_HOOK_KINDS] = {
	[OCI_HOOK_PRESTART] = "prestart",
	[OCI_HOOK_CREATE_RUNTIME] = "createRuntime",
	[OCI_HOOK_CREATE_CONTAINER] = "createContainer",
	[OCI_HOOK_START_CONTAINER] = "startContainer",
	[OCI_HOOK_POSTSTART] = "poststart",
	[OCI_HOOK_POSTSTOP] = "poststop",
};

const char *oci_hook_kind_name(enum oci_hook_kind kind)
{
	return kind < OCI_HOOK_KINDS ? hook_names[kind] : "?";
}

/* "1.N.P" with an optional "-suffix" ("1.0.2-dev", "1.1.0-rc.1"); 1.0 through 1.3 accepted. */
static int parse_version(struct oci_parser *p, yajl_val root, struct oci_spec *spec)
{
	unsigned int major, minor, patch;
	int end = 0;
	int r = oci_get_string(p, root, "", "ociVersion", true, &spec->oci_version);

	if (r)
		return r;
	if (sscanf(spec->oci_version, "%u.%u.%u%n", &major, &minor, &patch, &end) != 3 ||
	    (spec->oci_version[end] && spec->oci_version[end] != '-') ||
	    !strchr("0123456789", spec->oci_version[0]))
		return oci_fail(p, "ociVersion", "\"%.64s\" is not a version (MAJOR.MINOR.PATCH)",
				spec->oci_version);
	if (major != 1 || minor > 3)
		return oci_fail(
			p, "ociVersion",
			"unsupported version \"%.64s\" (stratus accepts 1.0.x through 1.3.x)",
			spec->oci_version);
	spec->version_minor = minor;
	return 0;
}

static int parse_root(struct oci_parser *p, yajl_val json, const char *bundle,
		      struct oci_spec *spec)
{
	yajl_val root = NULL;
	char *path = NULL;
	struct stat st;
	int r = oci_get_object(p, json, "", "root", true, &root);

	r = r ?: oci_get_string(p, root, "root", "path", true, &path);
	r = r ?: oci_get_bool(p, root, "root", "readonly", &spec->root_readonly);
	if (r)
		return r;
	if (!*path)
		return oci_fail(p, "root.path", "must not be empty");
	if (path[0] != '/' && bundle) {
		size_t n = strlen(bundle) + strlen(path) + 2;

		spec->root_path = oci_arena_alloc(p->arena, 1, n);
		if (!spec->root_path)
			return oci_nomem(p, "root.path");
		snprintf(spec->root_path, n, "%s/%s", bundle, path);
	} else {
		spec->root_path = path;
	}
	if (!bundle)
		return 0;
	if (stat(spec->root_path, &st) < 0)
		return error_set_errno(p->err, -errno, "config.json: root.path: \"%.200s\"",
				       spec->root_path);
	if (!S_ISDIR(st.st_mode))
		return oci_fail(p, "root.path", "\"%.200s\" is not a directory", spec->root_path);
	return 0;
}

static int parse_mounts(struct oci_parser *p, yajl_val json, struct oci_spec *spec)
{
	char path[OCI_PATH_MAX], sub[OCI_PATH_MAX];
	yajl_val a = NULL;
	int r = oci_get_array(p, json, "", "mounts", false, &a);

	if (r || !a)
		return r;
	spec->mounts = oci_arena_alloc(p->arena, a->u.array.len, sizeof(*spec->mounts));
	if (!spec->mounts && a->u.array.len)
		return oci_nomem(p, "mounts");
	for (size_t i = 0; i < a->u.array.len; i++) {
		struct oci_mount *m = &spec->mounts[i];
		yajl_val v = a->u.array.values[i];

		oci_path_index(path, "mounts", i);
		if (!YAJL_IS_OBJECT(v))
			return oci_fail(p, path, "must be an object");
		r = oci_get_string(p, v, path, "destination", true, &m->destination);
		r = r ?: oci_get_string(p, v, path, "type", false, &m->type);
		r = r ?: oci_get_string(p, v, path, "source", false, &m->source);
		r = r ?: oci_get_strv(p, v, path, "options", false, NULL, &m->options);
		if (r)
			return r;
		if (!*m->destination)
			return oci_fail(p, oci_path_key(sub, path, "destination"),
					"must not be empty");
	}
	spec->n_mounts = a->u.array.len;
	return 0;
}

static int parse_hook(struct oci_parser *p, yajl_val v, const char *path, struct oci_hook *hook)
{
	uint64_t timeout = 0;
	bool has_timeout = false;
	char sub[OCI_PATH_MAX];
	int r;

	if (!YAJL_IS_OBJECT(v))
		return oci_fail(p, path, "must be an object");
	r = oci_get_string(p, v, path, "path", true, &hook->path);
	r = r ?: oci_get_strv(p, v, path, "args", false, NULL, &hook->args);
	r = r ?: oci_get_strv(p, v, path, "env", false, oci_check_env, &hook->env);
	r = r ?: oci_get_u64(p, v, path, "timeout", INT32_MAX, false, &timeout, &has_timeout);
	if (r)
		return r;
	if (hook->path[0] != '/')
		return oci_fail(p, oci_path_key(sub, path, "path"), "must be an absolute path");
	if (has_timeout && !timeout)
		return oci_fail(p, oci_path_key(sub, path, "timeout"), "must be greater than zero");
	hook->timeout = (unsigned int)timeout;
	return 0;
}

static int parse_hooks(struct oci_parser *p, yajl_val json, struct oci_spec *spec)
{
	char path[OCI_PATH_MAX], item[OCI_PATH_MAX];
	yajl_val hooks = NULL;
	int r = oci_get_object(p, json, "", "hooks", false, &hooks);

	if (r || !hooks)
		return r;
	for (int kind = 0; kind < OCI_HOOK_KINDS; kind++) {
		struct oci_hook_list *list = &spec->hooks[kind];
		yajl_val a = NULL;

		r = oci_get_array(p, hooks, "hooks", hook_names[kind], false, &a);
		if (r)
			return r;
		if (!a || !a->u.array.len)
			continue;
		oci_path_key(path, "hooks", hook_names[kind]);
		list->hooks = oci_arena_alloc(p->arena, a->u.array.len, sizeof(*list->hooks));
		if (!list->hooks)
			return oci_nomem(p, path);
		for (size_t i = 0; i < a->u.array.len; i++) {
			r = parse_hook(p, a->u.array.values[i], oci_path_index(item, path, i),
				       &list->hooks[i]);
			if (r)
				return r;
		}
		list->n = a->u.array.len;
	}
	return 0;
}

static int parse_tree(struct oci_parser *p, yajl_val json, const char *bundle,
		      struct oci_spec *spec)
{
	int r;

	if (!YAJL_IS_OBJECT(json))
		return error_set(p->err, -EINVAL, "config.json: must be a JSON object");
	r = oci_json_check_duplicates(p, json, "", 0);
	r = r ?: parse_version(p, json, spec);
	r = r ?: parse_root(p, json, bundle, spec);
	r = r ?: parse_mounts(p, json, spec);
	r = r ?: oci_parse_process(p, json, &spec->process);
	r = r ?: oci_get_string(p, json, "", "hostname", false, &spec->hostname);
	r = r ?: oci_get_string(p, json, "", "domainname", false, &spec->domainname);
	r = r ?: oci_get_map(p, json, "", "annotations", &spec->annotations);
	r = r ?: parse_hooks(p, json, spec);
	if (r)
		return r;
	spec->has_linux = oci_member(json, "linux") != NULL;
	return oci_parse_linux(p, json, &spec->linux_);
}

/* yajl's message, first line only, without its trailing blanks. */
static int parse_error(struct error *err, const char *msg)
{
	char line[256];
	size_t n = strcspn(msg, "\n");

	n = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
	memcpy(line, msg, n);
	while (n && (line[n - 1] == ' ' || line[n - 1] == '.'))
		n--;
	line[n] = '\0';
	return error_set(err, -EINVAL, "config.json: not valid JSON: %s", line);
}

int oci_spec_parse(const char *json, size_t len, const char *bundle_dir, struct oci_spec **out,
		   struct error *err)
{
	_cleanup_free_ char *text = NULL;
	struct oci_spec *spec;
	struct oci_parser p = { .err = err };
	char yerr[256] = "";
	yajl_val tree;
	int r;

	*out = NULL;
	if (len > OCI_SPEC_MAX_BYTES)
		return error_set(err, -EFBIG, "config.json: larger than %u bytes",
				 OCI_SPEC_MAX_BYTES);
	if (memchr(json, '\0', len))
		return error_set(err, -EINVAL, "config.json: not valid JSON: contains a NUL byte");
	r = oci_json_prescan(json, len, err);
	if (r)
		return r;
	text = malloc(len + 1);
	if (!text)
		return error_set(err, -ENOMEM, "config.json: out of memory");
	memcpy(text, json, len);
	text[len] = '\0';
	tree = yajl_tree_parse(text, yerr, sizeof(yerr));
	if (!tree)
		return parse_error(err, *yerr ? yerr : "parse error");
	spec = calloc(1, sizeof(*spec));
	p.arena = spec ? oci_arena_new() : NULL;
	if (!p.arena) {
		free(spec);
		yajl_tree_free(tree);
		return error_set(err, -ENOMEM, "config.json: out of memory");
	}
	spec->arena = p.arena;
	r = parse_tree(&p, tree, bundle_dir, spec);
	yajl_tree_free(tree);
	if (r) {
		oci_spec_free(spec);
		return r;
	}
	*out = spec;
	return 0;
}

static int read_config(int dir_fd, const char *bundle, char **buf, size_t *len, struct error *err)
{
	_cleanup_close_ int fd = openat(dir_fd, "config.json", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	_cleanup_free_ char *data = NULL;
	size_t got = 0;
	ssize_t n;

	if (fd < 0)
		return error_set_errno(err, -errno, "%.200s/config.json", bundle);
	/* One byte over the limit tells "too big" without trusting st_size (a pipe, /proc). */
	data = malloc(OCI_SPEC_MAX_BYTES + 1);
	if (!data)
		return error_set(err, -ENOMEM, "config.json: out of memory");
	while (got <= OCI_SPEC_MAX_BYTES) {
		n = read(fd, data + got, OCI_SPEC_MAX_BYTES + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_set_errno(err, -errno, "%.200s/config.json", bundle);
		if (!n)
			break;
		got += (size_t)n;
	}
	if (got > OCI_SPEC_MAX_BYTES)
		return error_set(err, -EFBIG, "config.json: larger than %u bytes",
				 OCI_SPEC_MAX_BYTES);
	*buf = ptr_steal(&data);
	*len = got;
	return 0;
}

int oci_spec_load(const char *bundle_dir, struct oci_spec **out, struct error *err)
{
	_cleanup_close_ int dir_fd = -1;
	_cleanup_free_ char *data = NULL;
	_cleanup_free_ char *abs = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	/* root.path is resolved against an absolute bundle, so later chdirs don't move it. */
	abs = realpath(bundle_dir, NULL);
	if (!abs)
		return error_set_errno(err, -errno, "bundle %.200s", bundle_dir);
	dir_fd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return error_set_errno(err, -errno, "bundle %.200s", bundle_dir);
	r = read_config(dir_fd, bundle_dir, &data, &len, err);
	if (r)
		return r;
	return oci_spec_parse(data, len, abs, out, err);
}

void oci_spec_free(struct oci_spec *spec)
{
	if (!spec)
		return;
	oci_arena_free(spec->arena);
	free(spec);
}

const char *oci_spec_annotation(const struct oci_spec *spec, const char *key)
{
	for (size_t i = 0; i < spec->annotations.n; i++)
		if (!strcmp(spec->annotations.kv[i].key, key))
			return spec->annotations.kv[i].value;
	return NULL;
}
