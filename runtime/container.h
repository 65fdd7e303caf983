/*
 * libstratus's container lifecycle, one function per OCI verb (docs/runtime.md): what the
 * `stratus` CLI's verb files call, and what the containerd shim will call. Every function
 * takes the state root (--root) and the container ID, returns 0 or a negative errno, and on
 * failure fills err with one line naming what failed. Warnings that do not fail the verb
 * (a poststart hook, an unsupported mount skipped) go to the logger set here.
 */
#ifndef STRATUS_RUNTIME_CONTAINER_H
#define STRATUS_RUNTIME_CONTAINER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent_client.h"
#include "host_cgroup.h"
#include "state.h"

#define CONTAINER_AGENT_TIMEOUT_ENV "STRATUS_AGENT_TIMEOUT"
#define CONTAINER_AGENT_TIMEOUT_S   120

/*
 * Where warnings go (the CLI: stderr and --log; the shim: its log); NULL drops them. Never a
 * stream of a container's: the shim runs create with the container's stdio as fds 0-2.
 */
void container_set_warn(void (*warn)(const char *msg));
void container_warn(const char *fmt, ...) _printf_(1, 2);

struct container_create_opts {
	const char *root, *id, *bundle;
	const char *pid_file;	    /* NULL: none */
	const char *console_socket; /* NULL: none */
	bool foreground;	    /* `run` without --detach: the terminal is our fds 0/1 */
	bool debug;
	/* where linux.cgroupsPath puts the monitor on the host (docs/runtime.md "Host cgroup") */
	enum host_cgroup_manager cgroup_manager;
	const struct host_cgroup *host_cgroup; /* internal: its directories, or NULL */
	pid_t monitor_pid;		       /* out: the monitor (the caller's child) */
	bool terminal;			       /* out: process.terminal */
};

int container_create(struct container_create_opts *opts, struct error *err);
int container_start(const char *root, const char *id, struct error *err);
int container_kill(const char *root, const char *id, int signal, bool all, struct error *err);
int container_delete(const char *root, const char *id, bool force, struct error *err);
int container_pause(const char *root, const char *id, struct error *err);
int container_resume(const char *root, const char *id, struct error *err);
/* resources: a linux.resources JSON object (container_update.c says what a VM refuses). */
int container_update(const char *root, const char *id, const char *resources, struct error *err);

/* The state JSON as `stratus state` prints it (live status), malloc'd into *json. */
int container_state_json(const char *root, const char *id, struct error *err, char **json);

/* The state with its live status, for `list` and the other verbs. */
int container_load(const char *root, const char *id, struct container_state *st, struct error *err);
/*
 * container_load as `state`, `list` and the shim's State show it: a running pod member whose
 * sandbox is paused shows paused (docs/pods.md). Verbs decide on container_load's status.
 */
int container_load_shown(const char *root, const char *id, struct container_state *st,
			 struct error *err);

/* IDs of the containers under root, sorted; *ids is a NULL-terminated malloc'd array. */
int container_list(const char *root, char ***ids, size_t *n, struct error *err);
void container_list_free(char **ids);

/* A control connection to the container's agent (running, created or paused). */
int container_agent_connect(const char *root, const char *id, struct agent_client *c,
			    struct error *err);

int container_ps(const char *root, const char *id, struct agent_ps *out, struct error *err);
void container_ps_free(struct agent_ps *ps);
int container_stats(const char *root, const char *id, struct agent_stats *out, struct error *err);

struct container_exec_opts {
	const char *root, *id;
	const char *process_file; /* --process: the OCI process JSON; else built from below */
	char *const *args;	  /* NULL-terminated */
	const char *cwd;
	char *const *env;  /* extra KEY=VALUE, NULL-terminated */
	char *const *caps; /* extra capabilities (CAP_X), NULL-terminated */
	bool has_user;
	uint32_t uid, gid;
	bool tty, tty_set, no_new_privs;
	bool detach;
	const char *console_socket;
	const char *pid_file;
	int exit_status; /* out: the process's, when not detached */
};

/* `stratus exec`: run a process in the container, relay its stdio, wait (unless detached). */
int container_exec(struct container_exec_opts *opts, struct error *err);

/*
 * The non-blocking exec (the containerd shim's; container_exec is built on it): validate the
 * runtime-spec Process JSON, EXEC it in the running container under exec_id, and fork a relay
 * child (the caller's child, in its own session, holding no other fd of the caller) that moves
 * bytes between the caller's fds and the process's streams. The child exits once the agent
 * reported the exit and every byte of output reached stdio[1]/[2], with the process's status
 * (its code, or 128+signal; MONITOR_EXIT_VM_LOST when the VM went away first): the caller
 * watches it (pidfd, waitpid) on its own loop. A terminal process uses stdio[0] (input) and
 * stdio[1] (the pty's output). The process's stdin ends when stdio[0] reads EOF, so the
 * caller closes stdin by closing its write end. Fails with -EBUSY on a paused container,
 * -ESRCH on a stopped one, the agent's errno when EXEC fails (a missing binary: -ENOENT).
 */
struct container_exec_start_opts {
	const char *root, *id;
	const char *exec_id; /* 1 to AGENT_MAX_ID bytes, unique among the container's */
	const char *process; /* runtime-spec Process JSON */
	size_t process_len;
	int stdio[3]; /* the relay's fds; -1: /dev/null */
};

struct container_exec_handle {
	pid_t relay_pid; /* the relay child */
	uint32_t pid;	 /* the process in the guest (container_ps's pid namespace) */
	bool terminal;
};

int container_exec_start(const struct container_exec_start_opts *o, struct container_exec_handle *h,
			 struct error *err);
/* Window size of a process's terminal (exec_id "" or NULL: the container's init). */
int container_exec_resize(const char *root, const char *id, const char *exec_id, uint32_t rows,
			  uint32_t cols, struct error *err);
/* A signal to one exec'd process (container_kill signals the init). */
int container_exec_kill(const char *root, const char *id, const char *exec_id, int signal,
			struct error *err);

/* The agent timeout: STRATUS_AGENT_TIMEOUT seconds, else CONTAINER_AGENT_TIMEOUT_S. */
int container_agent_timeout_ms(void);

/* Remove a directory tree (the state directory), never across a mount: what is mounted below
 * it is unmounted (lazily) first; -EBUSY if a mount stays. */
int container_remove_tree(const char *path);

#endif
