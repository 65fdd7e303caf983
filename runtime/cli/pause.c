/* stratus pause ID / resume ID: the VM's vCPUs stopped and restarted (QMP stop / cont). */
#include "stratus_cli.h"
#include "container.h"

int cli_pause(struct cli_global *g)
{
	struct error err = { 0 };

	if (cli_need_args("pause", g->argc - 1, 1, 1, &err) < 0 ||
	    container_pause(g->root, g->argv[1], &err) < 0)
		return cli_fail(g, &err);
	return 0;
}

int cli_resume(struct cli_global *g)
{
	struct error err = { 0 };

	if (cli_need_args("resume", g->argc - 1, 1, 1, &err) < 0 ||
	    container_resume(g->root, g->argv[1], &err) < 0)
		return cli_fail(g, &err);
	return 0;
}
