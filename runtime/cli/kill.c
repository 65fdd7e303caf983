/* stratus kill [--all] ID [SIGNAL]: a signal (name or number, default TERM) to the process. */
#include <getopt.h>
#include <signal.h>
#include <string.h>

#include "stratus_cli.h"
#include "container.h"
#include "signal_name.h"

int cli_kill_parse(int argc, char **argv, struct cli_kill_args *a, struct error *err)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->signal = SIGTERM;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:a", opts, NULL)) != -1) {
		if (c == 'a')
			a->all = true;
		else
			return cli_unknown_flag("kill", argv, err);
	}
	if (cli_need_args("kill", argc - optind, 1, 2, err) < 0)
		return -EINVAL;
	a->id = argv[optind];
	if (argc - optind == 2 && signal_parse(argv[optind + 1], &a->signal, err) < 0)
		return -EINVAL;
	return 0;
}

int cli_kill(struct cli_global *g)
{
	struct cli_kill_args a;
	struct error err = { 0 };

	if (cli_kill_parse(g->argc, g->argv, &a, &err) < 0 ||
	    container_kill(g->root, a.id, a.signal, a.all, &err) < 0)
		return cli_fail(g, &err);
	return 0;
}
