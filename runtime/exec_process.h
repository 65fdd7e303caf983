/*
 * Building the OCI process object for `stratus exec` from config.json's process and the
 * command line (runc's rules; see exec_process.c). Pure: no I/O, unit-tested.
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

#endif
