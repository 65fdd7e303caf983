/*
 * QMP device hotplug: blockdev-add, blockdev-del, device_add and device_del go to
 * hotplug.c through qmp_ops.hotplug; a device_del that worked is followed by QEMU's
 * DEVICE_DELETED event. Without the callback (and for netdev_add/netdev_del) the command
 * fails with a GenericError that says so.
 */
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "qmp.h"
#include "qmp_internal.h"

int qmp_cmd_not_yet(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	(void)s;
	(void)args;
	return qmp_fail(r, "GenericError", "%s",
			"not supported yet: stratus-vmm has no device hotplug");
}

/* blockdev-add, blockdev-del, device_add, device_del: hotplug.c, through ops->hotplug. */
static int qmp_hotplug(struct qmp_session *s, const char *command, yajl_val args,
		       struct qmp_reply *r)
{
	struct error err = { 0 };

	if (!s->ops->hotplug)
		return qmp_cmd_not_yet(s, args, r);
	if (s->ops->hotplug(s->opaque, command, args, &err) < 0)
		return qmp_fail(r, "GenericError", "%.250s", err.msg);
	if (!strcmp(command, "device_del"))
		r->deleted = qmp_arg_string(args, "id");
	return qmp_cmd_empty(s, args, r);
}

int qmp_cmd_blockdev_add(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	return qmp_hotplug(s, "blockdev-add", args, r);
}

int qmp_cmd_blockdev_del(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	return qmp_hotplug(s, "blockdev-del", args, r);
}

int qmp_cmd_device_add(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	return qmp_hotplug(s, "device_add", args, r);
}

int qmp_cmd_device_del(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	return qmp_hotplug(s, "device_del", args, r);
}

/* QEMU's DEVICE_DELETED: {"device":ID,"path":"/machine/peripheral/ID"}. */
void qmp_event_device_deleted(struct qmp_session *s, const char *id)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *data;
	char path[128];
	size_t len;

	if (!g)
		return;
	snprintf(path, sizeof(path), "/machine/peripheral/%s", id);
	yajl_gen_map_open(g);
	qmp_gen_kv(g, "device", id);
	qmp_gen_kv(g, "path", path);
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &data, &len) == yajl_gen_status_ok)
		qmp_session_event(s, "DEVICE_DELETED", (const char *)data);
	yajl_gen_free(g);
}
