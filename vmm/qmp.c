/*
 * The QMP protocol layer (see qmp.h): framing, the rate limit, yajl parsing, the commands
 * and their replies. Framing follows QEMU's streaming parser closely enough for real
 * clients: a message is one JSON object (or array) however it is split or concatenated,
 * found by counting brackets outside strings; anything else is a message up to the next
 * newline (and gets a GenericError). Replies are built with yajl_gen, so every string the
 * client sent comes back escaped.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "qmp.h"
#include "util.h"

struct qmp_named_fd {
	char name[QMP_FDNAME_MAX];
	int fd; /* -1: free slot */
};

struct qmp_session {
	const struct qmp_ops *ops;
	void *opaque;
	char version[32];
	bool negotiated;
	bool end_announced;
	/* input: buf[0..len), scanned up to scan; one spare byte for the parser's NUL */
	char buf[QMP_LINE_MAX + 1];
	size_t len, scan;
	unsigned int depth;
	bool in_string, escape, to_newline, skipping;
	/* rate limit: a token bucket in thousandths of a command */
	uint64_t tokens, last_ns;
	int pending_fd;
	struct qmp_named_fd fds[QMP_FDS_MAX];
};

struct qmp_reply {
	yajl_gen gen;
	const char *error_class; /* set by a command that fails */
	char desc[256];
	void (*after)(void *opaque); /* run once the reply is out (quit, reset) */
	const char *deleted;	     /* device_del: DEVICE_DELETED for it after the reply */
};

static uint64_t qmp_now_ns(struct qmp_session *s)
{
	struct timespec ts;

	if (s->ops->now_ns)
		return s->ops->now_ns(s->opaque);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int qmp_session_create(const struct qmp_ops *ops, void *opaque, const char *version,
		       struct qmp_session **out)
{
	struct qmp_session *s = calloc(1, sizeof(*s));
	unsigned int i;

	if (!s)
		return -ENOMEM;
	s->ops = ops;
	s->opaque = opaque;
	snprintf(s->version, sizeof(s->version), "%s", version);
	s->pending_fd = -1;
	for (i = 0; i < QMP_FDS_MAX; i++)
		s->fds[i].fd = -1;
	s->tokens = QMP_BURST * 1000ULL;
	s->last_ns = qmp_now_ns(s);
	*out = s;
	return 0;
}

void qmp_session_destroy(struct qmp_session *s)
{
	unsigned int i;

	if (!s)
		return;
	if (s->pending_fd >= 0)
		close(s->pending_fd);
	for (i = 0; i < QMP_FDS_MAX; i++)
		if (s->fds[i].fd >= 0)
			close(s->fds[i].fd);
	free(s);
}

static void qmp_send(struct qmp_session *s, const char *data, size_t len)
{
	s->ops->write(s->opaque, data, len);
	s->ops->write(s->opaque, "\r\n", 2);
}

void qmp_session_greet(struct qmp_session *s)
{
	char line[256];
	int n = snprintf(line, sizeof(line),
			 "{\"QMP\":{\"version\":{\"qemu\":{\"micro\":1,\"minor\":0,\"major\":5},"
			 "\"package\":\"stratus-%s\"},\"capabilities\":[]}}",
			 s->version);

	qmp_send(s, line, (size_t)n);
}

static void gen_str(yajl_gen g, const char *text)
{
	yajl_gen_string(g, (const unsigned char *)text, strlen(text));
}

static void gen_int(yajl_gen g, const char *key, long long value)
{
	gen_str(g, key);
	yajl_gen_integer(g, value);
}

static void gen_bool(yajl_gen g, const char *key, bool value)
{
	gen_str(g, key);
	yajl_gen_bool(g, value);
}

static void gen_kv(yajl_gen g, const char *key, const char *value)
{
	gen_str(g, key);
	gen_str(g, value);
}

/* Echo a parsed value (the id); depth is bounded by the framing. */
static void gen_value(yajl_gen g, yajl_val v)
{
	size_t i;

	if (YAJL_IS_STRING(v)) {
		gen_str(g, v->u.string);
	} else if (YAJL_IS_NUMBER(v)) {
		yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
	} else if (YAJL_IS_OBJECT(v)) {
		yajl_gen_map_open(g);
		for (i = 0; i < v->u.object.len; i++) {
			gen_str(g, v->u.object.keys[i]);
			gen_value(g, v->u.object.values[i]);
		}
		yajl_gen_map_close(g);
	} else if (YAJL_IS_ARRAY(v)) {
		yajl_gen_array_open(g);
		for (i = 0; i < v->u.array.len; i++)
			gen_value(g, v->u.array.values[i]);
		yajl_gen_array_close(g);
	} else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
		yajl_gen_bool(g, YAJL_IS_TRUE(v));
	} else {
		yajl_gen_null(g);
	}
}

static void qmp_send_gen(struct qmp_session *s, yajl_gen g)
{
	const unsigned char *out;
	size_t len;

	if (yajl_gen_get_buf(g, &out, &len) == yajl_gen_status_ok)
		qmp_send(s, (const char *)out, len);
}

static void qmp_send_error(struct qmp_session *s, const char *cls, const char *desc, yajl_val id)
{
	yajl_gen g = yajl_gen_alloc(NULL);

	if (!g)
		return;
	yajl_gen_map_open(g);
	gen_str(g, "error");
	yajl_gen_map_open(g);
	gen_kv(g, "class", cls);
	gen_kv(g, "desc", desc);
	yajl_gen_map_close(g);
	if (id) {
		gen_str(g, "id");
		gen_value(g, id);
	}
	yajl_gen_map_close(g);
	qmp_send_gen(s, g);
	yajl_gen_free(g);
}

void qmp_session_event(struct qmp_session *s, const char *name, const char *data_json)
{
	char line[512];
	struct timeval tv;
	int n;

	if (!s->negotiated)
		return;
	gettimeofday(&tv, NULL);
	n = snprintf(
		line, sizeof(line),
		"{\"timestamp\":{\"seconds\":%lld,\"microseconds\":%lld},\"event\":\"%s\"%s%s}",
		(long long)tv.tv_sec, (long long)tv.tv_usec, name, data_json ? ",\"data\":" : "",
		data_json ? data_json : "");
	if (n > 0 && (size_t)n < sizeof(line))
		qmp_send(s, line, (size_t)n);
}

bool qmp_session_end_announced(const struct qmp_session *s)
{
	return s->end_announced;
}

static int qmp_fail(struct qmp_reply *r, const char *cls, const char *fmt, const char *arg)
{
	r->error_class = cls;
	snprintf(r->desc, sizeof(r->desc), fmt, arg);
	return -1;
}

/* ---- commands: each writes its "return" value into r->gen, or fails ---- */

static int cmd_empty(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	(void)s;
	(void)args;
	yajl_gen_map_open(r->gen);
	yajl_gen_map_close(r->gen);
	return 0;
}

static int cmd_query_status(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	bool running = s->ops->running(s->opaque);

	(void)args;
	yajl_gen_map_open(r->gen);
	gen_kv(r->gen, "status", running ? "running" : "paused");
	gen_bool(r->gen, "singlestep", false);
	gen_bool(r->gen, "running", running);
	yajl_gen_map_close(r->gen);
	return 0;
}

static int cmd_stop(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	if (s->ops->running(s->opaque)) {
		if (s->ops->stop(s->opaque) < 0)
			return qmp_fail(r, "GenericError", "%s", "cannot pause the vCPUs");
		qmp_session_event(s, "STOP", NULL);
	}
	return cmd_empty(s, args, r);
}

static int cmd_cont(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	if (!s->ops->running(s->opaque)) {
		if (s->ops->cont(s->opaque) < 0)
			return qmp_fail(r, "GenericError", "%s", "cannot resume the vCPUs");
		qmp_session_event(s, "RESUME", NULL);
	}
	return cmd_empty(s, args, r);
}

/* The reply goes first, then the event, then the VM ends (QEMU's order for quit). */
static int cmd_quit(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	r->after = s->ops->quit;
	return cmd_empty(s, args, r);
}

static int cmd_system_powerdown(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	r->after = s->ops->powerdown;
	return cmd_empty(s, args, r);
}

static int cmd_system_reset(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	r->after = s->ops->reset;
	return cmd_empty(s, args, r);
}

static void gen_version(struct qmp_session *s, yajl_gen g)
{
	char package[48];

	snprintf(package, sizeof(package), "stratus-%s", s->version);
	yajl_gen_map_open(g);
	gen_str(g, "qemu");
	yajl_gen_map_open(g);
	gen_int(g, "micro", 1);
	gen_int(g, "minor", 0);
	gen_int(g, "major", 5);
	yajl_gen_map_close(g);
	gen_kv(g, "package", package);
	yajl_gen_map_close(g);
}

static int cmd_query_version(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	(void)args;
	gen_version(s, r->gen);
	return 0;
}

static void gen_cpu_props(yajl_gen g, unsigned int index)
{
	gen_str(g, "props");
	yajl_gen_map_open(g);
	gen_int(g, "core-id", index);
	gen_int(g, "thread-id", 0);
	gen_int(g, "socket-id", 0);
	yajl_gen_map_close(g);
}

static void gen_qom_path(yajl_gen g, unsigned int index)
{
	char path[64];

	snprintf(path, sizeof(path), "/machine/unattached/device[%u]", index);
	gen_kv(g, "qom-path", path);
}

/* QEMU 5's CpuInfoFast. */
static int cmd_query_cpus_fast(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	unsigned int i, n = s->ops->nr_cpus(s->opaque);

	(void)args;
	yajl_gen_array_open(r->gen);
	for (i = 0; i < n; i++) {
		yajl_gen_map_open(r->gen);
		gen_int(r->gen, "cpu-index", i);
		gen_int(r->gen, "thread-id", s->ops->cpu_thread_id(s->opaque, i));
		gen_cpu_props(r->gen, i);
		gen_qom_path(r->gen, i);
		gen_kv(r->gen, "arch", "x86");
		gen_kv(r->gen, "target", "x86_64");
		yajl_gen_map_close(r->gen);
	}
	yajl_gen_array_close(r->gen);
	return 0;
}

/* QEMU 5's (deprecated) CpuInfo; pc is not read from the vCPU (it would need a pause). */
static int cmd_query_cpus(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	unsigned int i, n = s->ops->nr_cpus(s->opaque);

	(void)args;
	yajl_gen_array_open(r->gen);
	for (i = 0; i < n; i++) {
		yajl_gen_map_open(r->gen);
		gen_int(r->gen, "CPU", i);
		gen_bool(r->gen, "current", i == 0);
		gen_bool(r->gen, "halted", false);
		gen_qom_path(r->gen, i);
		gen_int(r->gen, "thread_id", s->ops->cpu_thread_id(s->opaque, i));
		gen_cpu_props(r->gen, i);
		gen_kv(r->gen, "arch", "x86");
		gen_kv(r->gen, "target", "x86_64");
		gen_int(r->gen, "pc", 0);
		yajl_gen_map_close(r->gen);
	}
	yajl_gen_array_close(r->gen);
	return 0;
}

/* Every vCPU is present from boot; none can be added yet. */
static int cmd_query_hotpluggable_cpus(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	unsigned int i, n = s->ops->nr_cpus(s->opaque);

	(void)args;
	yajl_gen_array_open(r->gen);
	for (i = 0; i < n; i++) {
		yajl_gen_map_open(r->gen);
		gen_kv(r->gen, "type", "host-x86_64-cpu");
		gen_int(r->gen, "vcpus-count", 1);
		gen_cpu_props(r->gen, i);
		gen_qom_path(r->gen, i);
		yajl_gen_map_close(r->gen);
	}
	yajl_gen_array_close(r->gen);
	return 0;
}

static const char *qmp_arg_string(yajl_val args, const char *key)
{
	const char *path[] = { key, NULL };
	yajl_val v = args ? yajl_tree_get(args, path, yajl_t_string) : NULL;

	return v ? v->u.string : NULL;
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

static struct qmp_named_fd *qmp_find_fd(struct qmp_session *s, const char *name)
{
	unsigned int i;

	for (i = 0; i < QMP_FDS_MAX; i++)
		if (s->fds[i].fd >= 0 && !strcmp(s->fds[i].name, name))
			return &s->fds[i];
	return NULL;
}

static int cmd_getfd(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	struct qmp_named_fd *slot;
	const char *name;
	unsigned int i;

	if (qmp_fdname_arg(args, r, &name) < 0)
		return -1;
	if (s->pending_fd < 0)
		return qmp_fail(r, "GenericError", "%s",
				"No file descriptor supplied via SCM_RIGHTS");
	slot = qmp_find_fd(s, name);
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
	return cmd_empty(s, args, r);
}

static int cmd_closefd(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	struct qmp_named_fd *slot;
	const char *name;

	if (qmp_fdname_arg(args, r, &name) < 0)
		return -1;
	slot = qmp_find_fd(s, name);
	if (!slot)
		return qmp_fail(r, "GenericError", "File descriptor named '%s' not found", name);
	close(slot->fd);
	slot->fd = -1;
	return cmd_empty(s, args, r);
}

static int cmd_not_yet(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	(void)s;
	(void)args;
	return qmp_fail(r, "GenericError", "%s",
			"not supported yet: stratus-vmm has no device hotplug");
}

/*
 * migrate {"uri":"file:PATH"}: a snapshot (docs/snapshots.md). As QEMU does, the VM is
 * stopped (STOP event) and stays stopped afterwards; "cont" resumes it. The reply comes
 * once the file is written; query-migrate then says "completed" or "failed".
 */
static int cmd_migrate(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
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
	return cmd_empty(s, args, r);
}

static int cmd_query_migrate(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	const char *status = NULL, *why = NULL;
	uint64_t total_ms = 0;

	(void)args;
	if (s->ops->migrate_status)
		status = s->ops->migrate_status(s->opaque, &total_ms, &why);
	yajl_gen_map_open(r->gen);
	if (status) {
		gen_kv(r->gen, "status", status);
		gen_int(r->gen, "total-time", (long long)total_ms);
		if (why)
			gen_kv(r->gen, "error-desc", why);
	}
	yajl_gen_map_close(r->gen);
	return 0;
}

/* blockdev-add, blockdev-del, device_add, device_del: hotplug.c, through ops->hotplug. */
static int qmp_hotplug(struct qmp_session *s, const char *command, yajl_val args,
		       struct qmp_reply *r)
{
	struct error err = { 0 };

	if (!s->ops->hotplug)
		return cmd_not_yet(s, args, r);
	if (s->ops->hotplug(s->opaque, command, args, &err) < 0)
		return qmp_fail(r, "GenericError", "%.250s", err.msg);
	if (!strcmp(command, "device_del"))
		r->deleted = qmp_arg_string(args, "id");
	return cmd_empty(s, args, r);
}

static int cmd_blockdev_add(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	return qmp_hotplug(s, "blockdev-add", args, r);
}

static int cmd_blockdev_del(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	return qmp_hotplug(s, "blockdev-del", args, r);
}

static int cmd_device_add(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	return qmp_hotplug(s, "device_add", args, r);
}

static int cmd_device_del(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	return qmp_hotplug(s, "device_del", args, r);
}

/* QEMU's DEVICE_DELETED: {"device":ID,"path":"/machine/peripheral/ID"}. */
static void qmp_device_deleted(struct qmp_session *s, const char *id)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *data;
	char path[128];
	size_t len;

	if (!g)
		return;
	snprintf(path, sizeof(path), "/machine/peripheral/%s", id);
	yajl_gen_map_open(g);
	gen_kv(g, "device", id);
	gen_kv(g, "path", path);
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &data, &len) == yajl_gen_status_ok)
		qmp_session_event(s, "DEVICE_DELETED", (const char *)data);
	yajl_gen_free(g);
}

static int cmd_query_commands(struct qmp_session *s, yajl_val args, struct qmp_reply *r);

struct qmp_command {
	const char *name;
	int (*fn)(struct qmp_session *s, yajl_val args, struct qmp_reply *r);
	bool listed; /* in query-commands */
};

static const struct qmp_command qmp_commands[] = {
	{ "qmp_capabilities", cmd_empty, true },
	{ "query-status", cmd_query_status, true },
	{ "stop", cmd_stop, true },
	{ "cont", cmd_cont, true },
	{ "quit", cmd_quit, true },
	{ "system_powerdown", cmd_system_powerdown, true },
	{ "system_reset", cmd_system_reset, true },
	{ "query-version", cmd_query_version, true },
	{ "query-commands", cmd_query_commands, true },
	{ "query-cpus", cmd_query_cpus, true },
	{ "query-cpus-fast", cmd_query_cpus_fast, true },
	{ "query-hotpluggable-cpus", cmd_query_hotpluggable_cpus, true },
	{ "getfd", cmd_getfd, true },
	{ "closefd", cmd_closefd, true },
	{ "migrate", cmd_migrate, true },
	{ "query-migrate", cmd_query_migrate, true },
	{ "blockdev-add", cmd_blockdev_add, true },
	{ "blockdev-del", cmd_blockdev_del, true },
	{ "device_add", cmd_device_add, true },
	{ "device_del", cmd_device_del, true },
	{ "netdev_add", cmd_not_yet, false },
	{ "netdev_del", cmd_not_yet, false },
};

static int cmd_query_commands(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	unsigned int i;

	(void)s;
	(void)args;
	yajl_gen_array_open(r->gen);
	for (i = 0; i < ARRAY_SIZE(qmp_commands); i++) {
		if (!qmp_commands[i].listed)
			continue;
		yajl_gen_map_open(r->gen);
		gen_kv(r->gen, "name", qmp_commands[i].name);
		yajl_gen_map_close(r->gen);
	}
	yajl_gen_array_close(r->gen);
	return 0;
}

static const struct qmp_command *qmp_find_command(const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(qmp_commands); i++)
		if (!strcmp(qmp_commands[i].name, name))
			return &qmp_commands[i];
	return NULL;
}

/* The announcement of a VM that ends because QMP asked (before the callback ends it). */
static void qmp_announce_end(struct qmp_session *s, const struct qmp_command *cmd)
{
	if (!strcmp(cmd->name, "system_reset"))
		qmp_session_event(s, "RESET",
				  "{\"guest\":false,\"reason\":\"host-qmp-system-reset\"}");
	else if (!strcmp(cmd->name, "system_powerdown"))
		qmp_session_event(s, "POWERDOWN", NULL);
	if (strcmp(cmd->name, "system_reset"))
		qmp_session_event(s, "SHUTDOWN", "{\"guest\":false,\"reason\":\"host-qmp-quit\"}");
	s->end_announced = true;
}

static void qmp_run_command(struct qmp_session *s, const struct qmp_command *cmd, yajl_val args,
			    yajl_val id)
{
	struct qmp_reply r = { .gen = yajl_gen_alloc(NULL) };

	if (!r.gen)
		return;
	yajl_gen_map_open(r.gen);
	gen_str(r.gen, "return");
	if (cmd->fn(s, args, &r) < 0) {
		qmp_send_error(s, r.error_class, r.desc, id);
	} else {
		if (id) {
			gen_str(r.gen, "id");
			gen_value(r.gen, id);
		}
		yajl_gen_map_close(r.gen);
		qmp_send_gen(s, r.gen);
		if (!strcmp(cmd->name, "qmp_capabilities"))
			s->negotiated = true;
	}
	yajl_gen_free(r.gen);
	if (r.deleted)
		qmp_device_deleted(s, r.deleted);
	if (r.after) {
		qmp_announce_end(s, cmd);
		r.after(s->opaque);
	}
}

static void qmp_dispatch(struct qmp_session *s, yajl_val msg)
{
	const char *path_execute[] = { "execute", NULL }, *path_id[] = { "id", NULL },
		   *path_args[] = { "arguments", NULL };
	yajl_val execute, id, args;
	const struct qmp_command *cmd;
	char desc[160];

	if (!YAJL_IS_OBJECT(msg))
		return qmp_send_error(s, "GenericError", "QMP input must be a JSON object", NULL);
	id = yajl_tree_get(msg, path_id, yajl_t_any);
	execute = yajl_tree_get(msg, path_execute, yajl_t_any);
	args = yajl_tree_get(msg, path_args, yajl_t_any);
	if (!execute)
		return qmp_send_error(s, "GenericError", "QMP input lacks member 'execute'", id);
	if (!YAJL_IS_STRING(execute))
		return qmp_send_error(s, "GenericError",
				      "QMP input member 'execute' must be a string", id);
	if (args && !YAJL_IS_OBJECT(args))
		return qmp_send_error(s, "GenericError",
				      "QMP input member 'arguments' must be an object", id);
	if (!s->negotiated && strcmp(execute->u.string, "qmp_capabilities"))
		return qmp_send_error(s, "CommandNotFound",
				      "Expecting capabilities negotiation with 'qmp_capabilities'",
				      id);
	if (s->negotiated && !strcmp(execute->u.string, "qmp_capabilities"))
		return qmp_send_error(s, "CommandNotFound",
				      "Capabilities negotiation is already complete, command "
				      "ignored",
				      id);
	cmd = qmp_find_command(execute->u.string);
	if (!cmd) {
		snprintf(desc, sizeof(desc), "The command %.100s has not been found",
			 execute->u.string);
		return qmp_send_error(s, "CommandNotFound", desc, id);
	}
	qmp_run_command(s, cmd, args, id);
}

static void qmp_handle_message(struct qmp_session *s, char *text)
{
	char errbuf[128], desc[160];
	yajl_val msg;

	errbuf[0] = '\0';
	msg = yajl_tree_parse(text, errbuf, sizeof(errbuf));
	if (!msg) {
		errbuf[strcspn(errbuf, "\r\n")] = '\0';
		snprintf(desc, sizeof(desc), "JSON parse error, %s",
			 errbuf[0] ? errbuf : "invalid");
		qmp_send_error(s, "GenericError", desc, NULL);
		return;
	}
	qmp_dispatch(s, msg);
	yajl_tree_free(msg);
}

size_t qmp_session_room(const struct qmp_session *s)
{
	return QMP_LINE_MAX - s->len;
}

void qmp_session_push_fd(struct qmp_session *s, int fd)
{
	if (s->pending_fd >= 0)
		close(s->pending_fd); /* QEMU too keeps only the latest unclaimed fd */
	s->pending_fd = fd;
}

int qmp_session_lookup_fd(const struct qmp_session *s, const char *name)
{
	unsigned int i;

	for (i = 0; i < QMP_FDS_MAX; i++)
		if (s->fds[i].fd >= 0 && !strcmp(s->fds[i].name, name))
			return s->fds[i].fd;
	return -1;
}

static void qmp_reset_scan(struct qmp_session *s)
{
	s->scan = 0;
	s->depth = 0;
	s->in_string = s->escape = s->to_newline = false;
}

/* Drop the first n bytes (a message handled, or junk). */
static void qmp_consume(struct qmp_session *s, size_t n)
{
	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
	qmp_reset_scan(s);
}

/* Advance the scan; returns the length of the first complete message, 0 if none yet. */
static size_t qmp_scan(struct qmp_session *s)
{
	for (; s->scan < s->len; s->scan++) {
		char c = s->buf[s->scan];

		if (s->to_newline) {
			if (c == '\n')
				return s->scan + 1;
		} else if (s->in_string) {
			if (s->escape)
				s->escape = false;
			else if (c == '\\')
				s->escape = true;
			else if (c == '"')
				s->in_string = false;
		} else if (c == '"') {
			s->in_string = true;
		} else if (c == '{' || c == '[') {
			if (++s->depth > QMP_DEPTH_MAX)
				return s->scan + 1; /* the parser will object */
		} else if (c == '}' || c == ']') {
			if (s->depth == 0 || --s->depth == 0)
				return s->scan + 1;
		} else if (s->depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			s->to_newline = true; /* not an object: a bad message up to the newline */
		}
	}
	return 0;
}

/* Leading whitespace between messages is not a message. */
static void qmp_skip_blank(struct qmp_session *s)
{
	size_t n = 0;

	while (n < s->len && strchr(" \t\r\n", s->buf[n]) && s->buf[n])
		n++;
	if (n)
		qmp_consume(s, n);
}

size_t qmp_session_feed(struct qmp_session *s, const char *data, size_t len)
{
	size_t taken = 0, n;

	while (s->skipping && taken < len) /* the rest of an over-long message */
		if (data[taken++] == '\n')
			s->skipping = false;
	n = MIN(len - taken, qmp_session_room(s));
	memcpy(s->buf + s->len, data + taken, n);
	s->len += n;
	if (s->len == QMP_LINE_MAX && !qmp_scan(s)) {
		qmp_send_error(s, "GenericError",
			       "Message too long (at most 65536 bytes); dropped up to the next "
			       "newline",
			       NULL);
		s->len = 0;
		qmp_reset_scan(s);
		s->skipping = true;
		return taken + n + qmp_session_feed(s, data + taken + n, len - taken - n);
	}
	return taken + n;
}

static bool qmp_take_token(struct qmp_session *s, int *wait_ms)
{
	uint64_t now = qmp_now_ns(s), cap = QMP_BURST * 1000ULL;

	if (now > s->last_ns) {
		uint64_t add = (now - s->last_ns) / (1000000ULL / QMP_RATE);

		s->tokens = MIN(cap, s->tokens + add);
		if (add)
			s->last_ns = now;
	}
	if (s->tokens >= 1000) {
		s->tokens -= 1000;
		return true;
	}
	*wait_ms = (int)((1000 - s->tokens) / QMP_RATE) + 1;
	return false;
}

int qmp_session_process(struct qmp_session *s)
{
	size_t n;
	int wait_ms = 0;
	char saved;

	for (;;) {
		qmp_skip_blank(s);
		n = qmp_scan(s);
		if (!n)
			return 0;
		if (!qmp_take_token(s, &wait_ms))
			return wait_ms;
		saved = s->buf[n];
		s->buf[n] = '\0';
		if (s->depth > QMP_DEPTH_MAX)
			qmp_send_error(s, "GenericError", "JSON nested too deeply (at most 32)",
				       NULL);
		else
			qmp_handle_message(s, s->buf);
		s->buf[n] = saved;
		if (s->depth > QMP_DEPTH_MAX && !memchr(s->buf + n, '\n', s->len - n)) {
			s->len = n; /* drop the rest of the deep message up to its newline */
			s->skipping = true;
		} else if (s->depth > QMP_DEPTH_MAX) {
			n = (size_t)((char *)memchr(s->buf + n, '\n', s->len - n) - s->buf) + 1;
		}
		qmp_consume(s, n);
	}
}
