/*
 * QMP migrate and query-migrate: a snapshot of the paused VM written to a file through
 * qmp_ops.migrate (snapshot.c, docs/snapshots.md), and the status of the last one.
 */
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "qmp.h"
#include "qmp_internal.h"

/*
 * migrate {"uri":"file:PATH"}: a snapshot (docs/snapshots.md). As QEMU does, the VM is
 * stopped (STOP event) and stays stopped afterwards; "cont" resumes it. The reply comes
 * once the file is written; query-migrate then says "completed" or "failed".
 */
int qmp_cmd_migrate(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	const char *uri = qmp_arg_string(args, "uri");
	struct error err = { 0 };

	if (!uri)
		return qmp_fail(r, "GenericError", "%s", "Parameter 'uri' is missing");
	if (!s->ops->migrate)
		return qmp_fail(r, "GenericError", "%s", "not supported: no snapshots here");
	if (strncmp(uri, "file:", 5) || !uri[5])
		return qmp_fail(r, "GenericError", "%s",
				"Parameter 'uri': only file:PATH is supported");
	if (s->ops->running(s->opaque)) {
		if (s->ops->stop(s->opaque) < 0)
			return qmp_fail(r, "GenericError", "%s", "cannot pause the vCPUs");
		qmp_session_event(s, "STOP", NULL);
	}
	if (s->ops->migrate(s->opaque, uri + 5, &err) < 0) {
		char why[200]; /* the reply's description holds 256 */

		snprintf(why, sizeof(why), "%.199s", err.msg);
		return qmp_fail(r, "GenericError", "%s", why);
	}
	return qmp_cmd_empty(s, args, r);
}

int qmp_cmd_query_migrate(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	const char *status = NULL, *why = NULL;
	uint64_t total_ms = 0;

	(void)args;
	if (s->ops->migrate_status)
		status = s->ops->migrate_status(s->opaque, &total_ms, &why);
	yajl_gen_map_open(r->gen);
	if (status) {
		qmp_gen_kv(r->gen, "status", status);
		qmp_gen_int(r->gen, "total-time", (long long)total_ms);
		if (why)
			qmp_gen_kv(r->gen, "error-desc", why);
	}
	yajl_gen_map_close(r->gen);
	return 0;
}
