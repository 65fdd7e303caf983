/*
 * stratus update --resources FILE|- ID: a runtime-spec linux.resources object (JSON) applied
 * to the container's cgroup in the guest (the agent's UPDATE). The JSON is checked to be an
 * object here; the agent validates its fields.
 */
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "stratus_cli.h"
#include "container.h"

#define UPDATE_MAX_BYTES (64u << 10)

static int read_resources(const char *path, char **out, struct error *err)
{
	_cleanup_close_ int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : dup(0);
	_cleanup_free_ char *buf = malloc(UPDATE_MAX_BYTES + 1);
	size_t have = 0;
	ssize_t n;
	yajl_val v;
	char msg[128];

	if (!buf)
		return error_set(err, -ENOMEM, "out of memory");
	if (fd < 0)
		return error_set_errno(err, -errno, "update: --resources: cannot open %s", path);
	while ((n = read(fd, buf + have, UPDATE_MAX_BYTES + 1 - have)) > 0)
		have += (size_t)n;
	if (n < 0)
		return error_set_errno(err, -errno, "update: --resources: cannot read %s", path);
	if (have > UPDATE_MAX_BYTES)
		return error_set(err, -E2BIG, "update: --resources: larger than %u KiB",
				 UPDATE_MAX_BYTES >> 10);
	buf[have] = '\0';
	v = yajl_tree_parse(buf, msg, sizeof(msg));
	if (!v || !YAJL_IS_OBJECT(v)) {
		yajl_tree_free(v);
		return error_set(err, -EINVAL, "update: --resources: %s: must be a JSON object",
				 path);
	}
	yajl_tree_free(v);
	*out = ptr_steal(&buf);
	return 0;
}

int cli_update(struct cli_global *g)
{
	static const struct option opts[] = {
		{ "resources", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	_cleanup_free_ char *resources = NULL;
	const char *path = NULL;
	struct error err = { 0 };
	struct agent_client c;
	int ch, r;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(g->argc, g->argv, "+:r:", opts, NULL)) != -1) {
		if (ch == 'r')
			path = optarg;
		else if (ch == ':')
			error_set(&err, -EINVAL, "update: %s: needs a value", g->argv[optind - 1]);
		else
			cli_unknown_flag("update", g->argv, &err);
		if (err.code)
			return cli_fail(g, &err);
	}
	if (cli_need_args("update", g->argc - optind, 1, 1, &err) < 0)
		return cli_fail(g, &err);
	if (!path) {
		error_set(&err, -EINVAL, "update: --resources FILE|- is required");
		return cli_fail(g, &err);
	}
	if (read_resources(path, &resources, &err) < 0 ||
	    container_agent_connect(g->root, g->argv[optind], &c, &err) < 0)
		return cli_fail(g, &err);
	r = agent_client_update(&c, g->argv[optind], resources);
	if (r < 0)
		error_set(&err, r, "update: agent: %s", c.err);
	agent_client_destroy(&c);
	return r < 0 ? cli_fail(g, &err) : 0;
}
