/*
 * A minimal QMP client for the monitor's <dir>/qmp.sock (libvmm's QMP server): the greeting,
 * qmp_capabilities, one command without arguments ("stop", "cont", "query-status"), and its
 * reply; events on the way are skipped. Used by `stratus pause` and `resume`.
 */
#ifndef STRATUS_RUNTIME_QMP_CLIENT_H
#define STRATUS_RUNTIME_QMP_CLIENT_H

#include "common/error.h"

#define QMP_CLIENT_LINE_MAX 65536

/* 0 when the reply is {"return": ...}; an error reply is -EIO with its desc in err. */
int qmp_client_command(const char *path, const char *command, int timeout_ms, struct error *err);

#endif
