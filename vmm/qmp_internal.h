/*
 * What the QMP files share (qmp.h is the public side): the session and a reply as the
 * commands see them, the reply-building helpers and the table's commands. qmp.c holds the
 * protocol (framing, rate limit, dispatch, the command table); the commands are in
 * qmp_commands.c (run state, CPUs, fds), qmp_hotplug.c (device hotplug) and qmp_migrate.c
 * (snapshots).
 */
#ifndef STRATUS_VMM_QMP_INTERNAL_H
#define STRATUS_VMM_QMP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "qmp.h"

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

/* Reply building (qmp.c): a key and its value into an open map; gen_value echoes any value. */
void qmp_gen_str(yajl_gen g, const char *text);
void qmp_gen_int(yajl_gen g, const char *key, long long value);
void qmp_gen_bool(yajl_gen g, const char *key, bool value);
void qmp_gen_kv(yajl_gen g, const char *key, const char *value);
void qmp_gen_value(yajl_gen g, yajl_val v);

/* Fail the command with class cls and a description (fmt has one %s, arg); returns -1. */
int qmp_fail(struct qmp_reply *r, const char *cls, const char *fmt, const char *arg);
/* The string argument key, or NULL if absent or not a string. */
const char *qmp_arg_string(yajl_val args, const char *key);

/* QEMU's DEVICE_DELETED event for id (qmp_hotplug.c). */
void qmp_event_device_deleted(struct qmp_session *s, const char *id);

/* The commands: each writes its "return" value into r->gen (0), or fails (-1). */
#define QMP_COMMAND(name) \
	int qmp_cmd_##name(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
QMP_COMMAND(empty); /* {} (qmp_capabilities) */
QMP_COMMAND(query_status);
QMP_COMMAND(stop);
QMP_COMMAND(cont);
QMP_COMMAND(quit);
QMP_COMMAND(system_powerdown);
QMP_COMMAND(system_reset);
QMP_COMMAND(query_version);
QMP_COMMAND(query_cpus);
QMP_COMMAND(query_cpus_fast);
QMP_COMMAND(query_hotpluggable_cpus);
QMP_COMMAND(getfd);
QMP_COMMAND(closefd);
QMP_COMMAND(migrate);
QMP_COMMAND(query_migrate);
QMP_COMMAND(blockdev_add);
QMP_COMMAND(blockdev_del);
QMP_COMMAND(device_add);
QMP_COMMAND(device_del);
QMP_COMMAND(not_yet); /* a command known but not supported */
#undef QMP_COMMAND

#endif
