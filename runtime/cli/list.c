/* stratus list [--format table|json] [-q]: the containers under --root, as runc lists them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "stratus_cli.h"
#include "container.h"

static void print_json(const struct cli_global *g, char **ids)
{
	struct container_state st;
	bool first = true;

	printf("[");
	for (size_t i = 0; ids[i]; i++) {
		struct error err = { 0 };
		char *json;

		if (container_load_shown(g->root, ids[i], &st, &err) < 0)
			continue;
		if (state_to_json(&st, false, &json) == 0) {
			printf("%s%s", first ? "" : ",", json);
			first = false;
			free(json);
		}
		state_clear(&st);
	}
	printf("]\n");
}

static void print_table(const struct cli_global *g, char **ids)
{
	struct container_state st;

	printf("%-12s %-10s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
	       "OWNER");
	for (size_t i = 0; ids[i]; i++) {
		struct error err = { 0 };

		if (container_load_shown(g->root, ids[i], &st, &err) < 0)
			continue;
		printf("%-12s %-10d %-10s %-40s %-30s %s\n", st.id,
		       st.status == CONTAINER_STOPPED ? 0 : (int)st.pid,
		       container_status_name(st.status), st.bundle, st.created,
		       st.owner[0] ? st.owner : "root");
		state_clear(&st);
	}
}

int cli_list(struct cli_global *g)
{
	struct cli_format_args a;
	struct error err = { 0 };
	char **ids;
	size_t n;

	if (cli_format_parse("list", g->argc, g->argv, false, &a, &err) < 0 ||
	    container_list(g->root, &ids, &n, &err) < 0)
		return cli_fail(g, &err);
	if (a.quiet) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", ids[i]);
	} else if (a.json) {
		print_json(g, ids);
	} else {
		print_table(g, ids);
	}
	container_list_free(ids);
	return 0;
}
