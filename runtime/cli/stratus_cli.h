/*
 * The stratus CLI (runc's command line): main.c parses the global flags and dispatches to one
 * file per verb (create.c, start.c, ...), each of which parses its own flags into a struct
 * (cli_<verb>_parse, unit-tested without a VM) and calls one libstratus function
 * (container_<verb>). Errors are one line "stratus: <what failed>" on stderr (and in --log),
 * exit status 1, as runc does.
 */
#ifndef STRATUS_RUNTIME_CLI_H
#define STRATUS_RUNTIME_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "host_cgroup.h"

#define CLI_MAX_LIST 256 /* --env, --cap entries */

enum cli_log_format {
	CLI_LOG_TEXT,
	CLI_LOG_JSON
};

struct cli_global {
	const char *root;
	const char *log_path;
	enum cli_log_format log_format;
	bool debug;
	bool systemd_cgroup;
	enum host_cgroup_manager
		cgroup_manager; /* the last of --systemd-cgroup, --cgroup-manager */
	bool version, help;
	const char *command;
	int argc; /* the verb's arguments, argv[0] being the verb */
	char **argv;
};

int cli_global_parse(int argc, char **argv, struct cli_global *g, struct error *err);

/* Report an error (stderr and --log) and return the exit status 1. */
int cli_fail(const struct cli_global *g, const struct error *err);
void cli_log(const struct cli_global *g, const char *level, const char *msg);

/* After getopt_long returned '?': "<verb>: unknown flag --x". */
int cli_unknown_flag(const char *verb, char **argv, struct error *err);

/* A positional argument count check: "<verb>: requires exactly N argument(s)". */
int cli_need_args(const char *verb, int have, int min, int max, struct error *err);

struct cli_create_args {
	const char *bundle, *pid_file, *console_socket, *id;
	bool detach, keep; /* run */
};
int cli_create_parse(int argc, char **argv, bool run, struct cli_create_args *a, struct error *err);

struct cli_kill_args {
	const char *id;
	int signal;
	bool all;
};
int cli_kill_parse(int argc, char **argv, struct cli_kill_args *a, struct error *err);

struct cli_delete_args {
	const char *id;
	bool force;
};
int cli_delete_parse(int argc, char **argv, struct cli_delete_args *a, struct error *err);

struct cli_format_args {
	const char *id; /* ps */
	bool json, quiet;
};
int cli_format_parse(const char *verb, int argc, char **argv, bool want_id,
		     struct cli_format_args *a, struct error *err);

struct cli_exec_args {
	const char *id, *process_file, *cwd, *console_socket, *pid_file;
	char *env[CLI_MAX_LIST + 1], *caps[CLI_MAX_LIST + 1];
	unsigned int n_env, n_caps;
	bool has_user, tty, tty_set, detach, no_new_privs;
	uint32_t uid, gid;
	char **args; /* NULL-terminated, after ID */
};
int cli_exec_parse(int argc, char **argv, struct cli_exec_args *a, struct error *err);

struct cli_events_args {
	const char *id;
	bool stats;
	unsigned int interval_ms;
};
int cli_events_parse(int argc, char **argv, struct cli_events_args *a, struct error *err);

#define CLI_UPDATE_MAX_FIELDS 16

/* A linux.resources field set by one of update's flags (--memory: memory.limit). */
struct cli_update_field {
	const char *section, *name, *flag;
	long long num;
	const char *str; /* cpu.cpus, cpu.mems; NULL for numbers */
};

struct cli_update_args {
	const char *id, *resources; /* --resources FILE|-, or NULL */
	struct cli_update_field set[CLI_UPDATE_MAX_FIELDS];
	unsigned int n_set;
	long long blkio_weight; /* as cgroup v2's io.weight; 0: not given */
};
int cli_update_parse(int argc, char **argv, struct cli_update_args *a, struct error *err);

/* The resources JSON to send: file_text (NULL: none) with the flags' fields in place. */
int cli_update_json(const char *file_text, const struct cli_update_args *a, char **out,
		    struct error *err);

/* stratus template create|list|rm (not a runc verb). */
struct cli_template_args {
	const char *command; /* "create", "list" or "rm" (delete) */
	unsigned int vcpus;  /* create */
	uint64_t mem_mib;    /* create */
	const char *key;     /* rm; NULL with all */
	bool all, json, quiet, help;
};
int cli_template_parse(int argc, char **argv, struct cli_template_args *a, struct error *err);

/* A memory value as runc takes it: -1, or a size with an optional k/m/g/t/p suffix. */
int cli_parse_memory(const char *s, long long *out);

/* Verbs: argv[0] is the verb's name. */
int cli_create(struct cli_global *g);
int cli_run(struct cli_global *g);
int cli_start(struct cli_global *g);
int cli_state(struct cli_global *g);
int cli_kill(struct cli_global *g);
int cli_delete(struct cli_global *g);
int cli_exec(struct cli_global *g);
int cli_ps(struct cli_global *g);
int cli_list(struct cli_global *g);
int cli_pause(struct cli_global *g);
int cli_resume(struct cli_global *g);
int cli_spec(struct cli_global *g);
int cli_features(struct cli_global *g);
int cli_events(struct cli_global *g);
int cli_update(struct cli_global *g);
int cli_template(struct cli_global *g);

#endif
