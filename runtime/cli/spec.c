/*
 * stratus spec [--bundle DIR] [--rootless]: write runc's default config.json into the
 * bundle (default: the current directory), refusing to overwrite one.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stratus_cli.h"
#include "oci_spec.h"

int cli_spec(struct cli_global *g)
{
	static const struct option opts[] = {
		{ "bundle", required_argument, NULL, 'b' },
		{ "rootless", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	_cleanup_free_ char *json = NULL, *path = NULL;
	_cleanup_close_ int fd = -1;
	const char *bundle = ".";
	struct error err = { 0 };
	bool rootless = false;
	size_t len;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(g->argc, g->argv, "+:b:", opts, NULL)) != -1) {
		if (c == 'b') {
			bundle = optarg;
		} else if (c == 'r') {
			rootless = true;
		} else if (c == ':') {
			error_set(&err, -EINVAL, "spec: %s: needs a value", g->argv[optind - 1]);
			return cli_fail(g, &err);
		} else {
			cli_unknown_flag("spec", g->argv, &err);
			return cli_fail(g, &err);
		}
	}
	if (cli_need_args("spec", g->argc - optind, 0, 0, &err) < 0)
		return cli_fail(g, &err);
	if (oci_spec_default_json(rootless, &json) < 0 ||
	    asprintf(&path, "%s/config.json", bundle) < 0) {
		error_set(&err, -ENOMEM, "out of memory");
		return cli_fail(g, &err);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (errno == EEXIST)
			error_set(&err, -EEXIST, "spec: %s already exists: remove it first", path);
		else
			error_set_errno(&err, -errno, "spec: cannot create %s", path);
		return cli_fail(g, &err);
	}
	len = strlen(json);
	if (write(fd, json, len) != (ssize_t)len) {
		error_set_errno(&err, -errno, "spec: cannot write %s", path);
		unlink(path);
		return cli_fail(g, &err);
	}
	return 0;
}
