/*
 * A minimal QMP client for the monitor's <dir>/qmp.sock (libvmm's QMP server): the greeting,
 * qmp_capabilities, one command (without arguments: "stop", "cont", "query-status"; or with
 * them: "migrate"), and its reply; events on the way are skipped. Used by `stratus pause` and
 * `resume`, and to snapshot a template VM (template.c).
 */
#ifndef STRATUS_RUNTIME_QMP_CLIENT_H
#define STRATUS_RUNTIME_QMP_CLIENT_H

#include "common/error.h"

#define QMP_CLIENT_LINE_MAX 65536

/* 0 when the reply is {"return": ...}; an error reply is -EIO with its desc in err. */
int qmp_client_command(const char *path, const char *command, int timeout_ms, struct error *err);

/* The same with "arguments": args_json (a JSON object, at most ~8 KiB; NULL: none). */
int qmp_client_execute(const char *path, const char *command, const char *args_json, int timeout_ms,
		       struct error *err);

#endif
