/* stratus delete [--force] ID: tear the VM down if needed, poststop hooks, remove the state. */
#include <getopt.h>
#include <string.h>

#include "stratus_cli.h"
#include "container.h"

int cli_delete_parse(int argc, char **argv, struct cli_delete_args *a, struct error *err)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:f", opts, NULL)) != -1) {
		if (c == 'f')
			a->force = true;
		else
			return cli_unknown_flag("delete", argv, err);
	}
	if (cli_need_args("delete", argc - optind, 1, 1, err) < 0)
		return -EINVAL;
	a->id = argv[optind];
	return 0;
}

int cli_delete(struct cli_global *g)
{
	struct cli_delete_args a;
	struct error err = { 0 };

	if (cli_delete_parse(g->argc, g->argv, &a, &err) < 0 ||
	    container_delete(g->root, a.id, a.force, &err) < 0)
		return cli_fail(g, &err);
	return 0;
}
