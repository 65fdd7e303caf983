/*
 * stratus create [--bundle DIR] [--pid-file F] [--console-socket S] ID, and the flags of
 * create that run shares (run.c): container_create() does the work.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stratus_cli.h"
#include "container.h"

enum {
	OPT_BUNDLE = 'b',
	OPT_DETACH = 'd',
	OPT_PID_FILE = 256,
	OPT_CONSOLE_SOCKET,
	OPT_NO_PIVOT,
	OPT_NO_KEYRING,
	OPT_PRESERVE_FDS,
	OPT_KEEP,
	OPT_NO_SUBREAPER
};

int cli_create_parse(int argc, char **argv, bool run, struct cli_create_args *a, struct error *err)
{
	static const struct option opts[] = {
		{ "bundle", required_argument, NULL, OPT_BUNDLE },
		{ "pid-file", required_argument, NULL, OPT_PID_FILE },
		{ "console-socket", required_argument, NULL, OPT_CONSOLE_SOCKET },
		{ "no-pivot", no_argument, NULL, OPT_NO_PIVOT },
		{ "no-new-keyring", no_argument, NULL, OPT_NO_KEYRING },
		{ "preserve-fds", required_argument, NULL, OPT_PRESERVE_FDS },
		{ "detach", no_argument, NULL, OPT_DETACH },
		{ "keep", no_argument, NULL, OPT_KEEP },
		{ "no-subreaper", no_argument, NULL, OPT_NO_SUBREAPER },
		{ NULL, 0, NULL, 0 },
	};
	const char *verb = run ? "run" : "create";
	char *end;
	int c;

	memset(a, 0, sizeof(*a));
	a->bundle = ".";
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, run ? "+:b:d" : "+:b:", opts, NULL)) != -1) {
		switch (c) {
		case OPT_BUNDLE:
			a->bundle = optarg;
			break;
		case OPT_PID_FILE:
			a->pid_file = optarg;
			break;
		case OPT_CONSOLE_SOCKET:
			a->console_socket = optarg;
			break;
		case OPT_NO_PIVOT:
		case OPT_NO_KEYRING:
		case OPT_NO_SUBREAPER:
			/* The guest always pivots and has its own keyrings; we reap in the VM. */
			break;
		case OPT_PRESERVE_FDS:
			if (strtoul(optarg, &end, 10) != 0 || *end || !optarg[0])
				return error_set(err, -EINVAL,
						 "%s: --preserve-fds: host file descriptors cannot "
						 "be passed into a VM (only 0 is accepted)",
						 verb);
			break;
		case OPT_DETACH:
			if (!run)
				goto unknown;
			a->detach = true;
			break;
		case OPT_KEEP:
			if (!run)
				goto unknown;
			a->keep = true;
			break;
		case ':':
			return error_set(err, -EINVAL, "%s: %s: needs a value", verb,
					 argv[optind - 1]);
		default:
		unknown:
			return cli_unknown_flag(verb, argv, err);
		}
	}
	if (cli_need_args(verb, argc - optind, 1, 1, err) < 0)
		return -EINVAL;
	a->id = argv[optind];
	if (!a->bundle[0])
		return error_set(err, -EINVAL, "%s: --bundle: must not be empty", verb);
	return 0;
}

int cli_create(struct cli_global *g)
{
	struct cli_create_args a;
	struct error err = { 0 };
	struct container_create_opts o = { 0 };

	if (cli_create_parse(g->argc, g->argv, false, &a, &err) < 0)
		return cli_fail(g, &err);
	o.root = g->root;
	o.id = a.id;
	o.bundle = a.bundle;
	o.pid_file = a.pid_file;
	o.console_socket = a.console_socket;
	o.debug = g->debug;
	o.cgroup_manager = g->cgroup_manager;
	if (container_create(&o, &err) < 0)
		return cli_fail(g, &err);
	return 0;
}
