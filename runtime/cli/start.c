/* stratus start ID: the agent execs the created container's process (container_start). */
#include "stratus_cli.h"
#include "container.h"

int cli_start(struct cli_global *g)
{
	struct error err = { 0 };

	if (cli_need_args("start", g->argc - 1, 1, 1, &err) < 0 ||
	    container_start(g->root, g->argv[1], &err) < 0)
		return cli_fail(g, &err);
	return 0;
}
