/*
 * The QMP commands that need nothing but the qmp_ops callbacks (qmp_internal.h): the run
 * state (qmp_capabilities, query-status, stop, cont, quit, system_powerdown, system_reset),
 * query-version, the CPU queries Kata's driver sends, and the named fds (getfd, closefd and
 * the session side of them: qmp_session_push_fd, qmp_session_lookup_fd).
 * Each writes its "return" value into r->gen or fails with qmp_fail().
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "qmp.h"
#include "qmp_internal.h"

int qmp_cmd_empty(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	(void)s;
	(void)args;
	yajl_gen_map_open(r->gen);
	yajl_gen_map_close(r->gen);
	return 0;
}

int qmp_cmd_query_status(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	bool running = s->ops->running(s->opaque);

	(void)args;
	yajl_gen_map_open(r->gen);
	qmp_gen_kv(r->gen, "status", running ? "running" : "paused");
	qmp_gen_bool(r->gen, "singlestep", false);
	qmp_gen_bool(r->gen, "running", running);
	yajl_gen_map_close(r->gen);
	return 0;
}

int qmp_cmd_stop(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	if (s->ops->running(s->opaque)) {
		if (s->ops->stop(s->opaque) < 0)
			return qmp_fail(r, "GenericError", "%s", "cannot pause the vCPUs");
		qmp_session_event(s, "STOP", NULL);
	}
	return qmp_cmd_empty(s, args, r);
}

int qmp_cmd_cont(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	if (!s->ops->running(s->opaque)) {
		if (s->ops->cont(s->opaque) < 0)
			return qmp_fail(r, "GenericError", "%s", "cannot resume the vCPUs");
		qmp_session_event(s, "RESUME", NULL);
	}
	return qmp_cmd_empty(s, args, r);
}

/* The reply goes first, then the event, then the VM ends (QEMU's order for quit). */
int qmp_cmd_quit(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	r->after = s->ops->quit;
	return qmp_cmd_empty(s, args, r);
}

int qmp_cmd_system_powerdown(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	r->after = s->ops->powerdown;
	return qmp_cmd_empty(s, args, r);
}

int qmp_cmd_system_reset(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	r->after = s->ops->reset;
	return qmp_cmd_empty(s, args, r);
}

static void gen_version(struct qmp_session *s, yajl_gen g)
{
	char package[48];

	snprintf(package, sizeof(package), "stratus-%s", s->version);
	yajl_gen_map_open(g);
	qmp_gen_str(g, "qemu");
	yajl_gen_map_open(g);
	qmp_gen_int(g, "micro", 1);
	qmp_gen_int(g, "minor", 0);
	qmp_gen_int(g, "major", 5);
	yajl_gen_map_close(g);
	qmp_gen_kv(g, "package", package);
	yajl_gen_map_close(g);
}

int qmp_cmd_query_version(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	(void)args;
	gen_version(s, r->gen);
	return 0;
}

static void gen_cpu_props(yajl_gen g, unsigned int index)
{
	qmp_gen_str(g, "props");
	yajl_gen_map_open(g);
	qmp_gen_int(g, "core-id", index);
	qmp_gen_int(g, "thread-id", 0);
	qmp_gen_int(g, "socket-id", 0);
	yajl_gen_map_close(g);
}

static void gen_qom_path(yajl_gen g, unsigned int index)
{
	char path[64];

	snprintf(path, sizeof(path), "/machine/unattached/device[%u]", index);
	qmp_gen_kv(g, "qom-path", path);
}

/* QEMU 5's CpuInfoFast. */
int qmp_cmd_query_cpus_fast(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	unsigned int i, n = s->ops->nr_cpus(s->opaque);

	(void)args;
	yajl_gen_array_open(r->gen);
	for (i = 0; i < n; i++) {
		yajl_gen_map_open(r->gen);
		qmp_gen_int(r->gen, "cpu-index", i);
		qmp_gen_int(r->gen, "thread-id", s->ops->cpu_thread_id(s->opaque, i));
		gen_cpu_props(r->gen, i);
		gen_qom_path(r->gen, i);
		qmp_gen_kv(r->gen, "arch", "x86");
		qmp_gen_kv(r->gen, "target", "x86_64");
		yajl_gen_map_close(r->gen);
	}
	yajl_gen_array_close(r->gen);
	return 0;
}

/* QEMU 5's (deprecated) CpuInfo; pc is not read from the vCPU (it would need a pause). */
int qmp_cmd_query_cpus(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	unsigned int i, n = s->ops->nr_cpus(s->opaque);

	(void)args;
	yajl_gen_array_open(r->gen);
	for (i = 0; i < n; i++) {
		yajl_gen_map_open(r->gen);
		qmp_gen_int(r->gen, "CPU", i);
		qmp_gen_bool(r->gen, "current", i == 0);
		qmp_gen_bool(r->gen, "halted", false);
		gen_qom_path(r->gen, i);
		qmp_gen_int(r->gen, "thread_id", s->ops->cpu_thread_id(s->opaque, i));
		gen_cpu_props(r->gen, i);
		qmp_gen_kv(r->gen, "arch", "x86");
		qmp_gen_kv(r->gen, "target", "x86_64");
		qmp_gen_int(r->gen, "pc", 0);
		yajl_gen_map_close(r->gen);
	}
	yajl_gen_array_close(r->gen);
	return 0;
}

/* Every vCPU is present from boot; none can be added yet. */
int qmp_cmd_query_hotpluggable_cpus(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	unsigned int i, n = s->ops->nr_cpus(s->opaque);

	(void)args;
	yajl_gen_array_open(r->gen);
	for (i = 0; i < n; i++) {
		yajl_gen_map_open(r->gen);
		qmp_gen_kv(r->gen, "type", "host-x86_64-cpu");
		qmp_gen_int(r->gen, "vcpus-count", 1);
		gen_cpu_props(r->gen, i);
		gen_qom_path(r->gen, i);
		yajl_gen_map_close(r->gen);
	}
	yajl_gen_array_close(r->gen);
	return 0;
}

static int qmp_fdname_arg(yajl_val args, struct qmp_reply *r, const char **name)
{
	*name = qmp_arg_string(args, "fdname");
	if (!*name)
		return qmp_fail(r, "GenericError", "%s", "Parameter 'fdname' is missing");
	if (!**name || strlen(*name) >= QMP_FDNAME_MAX || (**name >= '0' && **name <= '9'))
		return qmp_fail(r, "GenericError", "%s",
				"Parameter 'fdname' expects a name of 1 to 63 characters, "
				"not starting with a digit");
	return 0;
}

/* The slot getfd filled under name, or -1. */
static int qmp_fd_slot(const struct qmp_session *s, const char *name)
{
	unsigned int i;

	for (i = 0; i < QMP_FDS_MAX; i++)
		if (s->fds[i].fd >= 0 && !strcmp(s->fds[i].name, name))
			return (int)i;
	return -1;
}

void qmp_session_push_fd(struct qmp_session *s, int fd)
{
	if (s->pending_fd >= 0)
		close(s->pending_fd); /* QEMU too keeps only the latest unclaimed fd */
	s->pending_fd = fd;
}

int qmp_session_lookup_fd(const struct qmp_session *s, const char *name)
{
	int i = qmp_fd_slot(s, name);

	return i < 0 ? -1 : s->fds[i].fd;
}

int qmp_cmd_getfd(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	struct qmp_named_fd *slot;
	const char *name;
	unsigned int i;
	int found;

	if (qmp_fdname_arg(args, r, &name) < 0)
		return -1;
	if (s->pending_fd < 0)
		return qmp_fail(r, "GenericError", "%s",
				"No file descriptor supplied via SCM_RIGHTS");
	found = qmp_fd_slot(s, name);
	slot = found >= 0 ? &s->fds[found] : NULL; /* getfd again replaces the fd */
	for (i = 0; !slot && i < QMP_FDS_MAX; i++)
		if (s->fds[i].fd < 0)
			slot = &s->fds[i];
	if (!slot)
		return qmp_fail(r, "GenericError", "%s", "Too many file descriptors (at most 16)");
	if (slot->fd >= 0)
		close(slot->fd);
	snprintf(slot->name, sizeof(slot->name), "%s", name);
	slot->fd = s->pending_fd;
	s->pending_fd = -1;
	return qmp_cmd_empty(s, args, r);
}

int qmp_cmd_closefd(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	const char *name;
	int i;

	if (qmp_fdname_arg(args, r, &name) < 0)
		return -1;
	i = qmp_fd_slot(s, name);
	if (i < 0)
		return qmp_fail(r, "GenericError", "File descriptor named '%s' not found", name);
	close(s->fds[i].fd);
	s->fds[i].fd = -1;
	return qmp_cmd_empty(s, args, r);
}
