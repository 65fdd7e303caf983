/* stratus state ID: the OCI state JSON (runtime-spec "State"), with the live status. */
#include <stdio.h>
#include <stdlib.h>

#include "stratus_cli.h"
#include "container.h"

int cli_state(struct cli_global *g)
{
	struct error err = { 0 };
	char *json = NULL;

	if (cli_need_args("state", g->argc - 1, 1, 1, &err) < 0 ||
	    container_state_json(g->root, g->argv[1], &err, &json) < 0)
		return cli_fail(g, &err);
	printf("%s\n", json);
	free(json);
	return 0;
}
