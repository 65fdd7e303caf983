/*
 * stratus ps [--format table|json] ID: the container's processes from the agent. json is the
 * list of PIDs, as runc prints it (guest PIDs: the processes live in the VM).
 */
#include <stdio.h>

#include "stratus_cli.h"
#include "container.h"

int cli_ps(struct cli_global *g)
{
	struct cli_format_args a;
	struct error err = { 0 };
	struct agent_ps ps;

	if (cli_format_parse("ps", g->argc, g->argv, true, &a, &err) < 0 ||
	    container_ps(g->root, a.id, &ps, &err) < 0)
		return cli_fail(g, &err);
	if (a.json) {
		printf("[");
		for (uint32_t i = 0; i < ps.procs.n; i++)
			printf("%s%u", i ? "," : "", ps.procs.v[i].pid);
		printf("]\n");
	} else {
		printf("%-8s %-8s %-8s %s\n", "UID", "PID", "PPID", "CMD");
		for (uint32_t i = 0; i < ps.procs.n; i++)
			printf("%-8u %-8u %-8u %s\n", ps.procs.v[i].uid, ps.procs.v[i].pid,
			       ps.procs.v[i].ppid, ps.procs.v[i].command);
	}
	container_ps_free(&ps);
	return 0;
}
