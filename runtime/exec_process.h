/*
 * Building the OCI process object for `stratus exec` from config.json's process and the
 * command line (runc's rules; see exec_process.c), and the validation of a process object that
 * arrives whole (containerd's Exec). Pure: no I/O, unit-tested.
 */
#ifndef STRATUS_RUNTIME_EXEC_PROCESS_H
#define STRATUS_RUNTIME_EXEC_PROCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

struct exec_process_opts {
	char *const *args; /* NULL-terminated, not empty */
	const char *cwd;   /* NULL: the template's */
	char *const *env;  /* KEY=VALUE, NULL-terminated or NULL */
	char *const *caps; /* CAP_X, NULL-terminated or NULL */
	bool has_user;
	uint32_t uid, gid;
	bool terminal;
	bool no_new_privs;
};

/* The process JSON into *out (malloc'd). */
int exec_process_json(const char *config_json, const struct exec_process_opts *o, char **out,
		      struct error *err);

/*
 * Validate a runtime-spec Process object given as JSON text (len bytes, need not be
 * NUL-terminated): containerd's Exec request, a `--process` file. The checks are config.json's
 * `process` checks (oci_spec's parser); a failure is one line naming the field, prefixed with
 * what ("exec: process.args: must be a non-empty array of strings"). *terminal: the process's.
 */
int exec_process_check(const char *what, const char *json, size_t len, bool *terminal,
		       struct error *err);

#endif
