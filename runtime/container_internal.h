/* Shared by the container_*.c files of libstratus, not part of its API (container.h). */
#ifndef STRATUS_RUNTIME_CONTAINER_INTERNAL_H
#define STRATUS_RUNTIME_CONTAINER_INTERNAL_H

#include "container.h"
#include "oci_spec.h"

/* The hooks of kind, given the state JSON with status in place of st's. */
int container_run_hooks(const struct oci_spec *spec, enum oci_hook_kind kind,
			const struct container_state *st, enum container_status status,
			struct error *err);

/*
 * <root>/<vm>/vsock.sock of the VM container id lives in (its own, or its pod sandbox's),
 * into buf; the container must exist.
 */
int container_vsock_path(const char *root, const char *id, char *buf, size_t len,
			 struct error *err);

/* A control connection to the agent behind vsock (errors name container id). */
int container_agent_connect_path(const char *vsock, const char *id, struct agent_client *c,
				 struct error *err);

/*
 * One guest process's host side (container_exec.c): the control connection and stdio streams
 * to the agent, and the relay of host fds until the agent reports the exit. Used by exec (an
 * exec_id of its own) and by a pod member's create (exec_id "": the member's init).
 */
struct exec_session {
	const char *root, *id;
	char exec_id[AGENT_MAX_ID + 1];
	char vsock[4200];
	struct agent_client agent;
	int streams[AGENT_STREAM_NR];
	int stdio[3];  /* the host side of the relay: in, out, err */
	int pty_slave; /* with --console-socket */
	bool terminal;
	bool cli_tty;	 /* stdio is the CLI's own terminal: raw mode, its size, SIGWINCH */
	bool member;	 /* a pod member's init: exec_become_member_relay (container_exec.c) */
	int lost_status; /* when the VM or agent goes before the exit (MONITOR_EXIT_VM_LOST) */
	bool exited;
	int status;
};

void exec_session_init(struct exec_session *s, const char *root, const char *id);
void exec_session_close(struct exec_session *s);
/* Attach the process's stdio streams (s->exec_id of s->id, through s->vsock); CREATE's or
 * EXEC's stdio mask into *mask. */
int exec_open_stdio(struct exec_session *s, uint32_t *mask, struct error *err);
/* --console-socket: a pty (rows x cols, 0: unset) whose master goes to path; its slave
 * becomes the relay's stdio. */
int exec_console_socket(struct exec_session *s, const char *path, uint32_t rows, uint32_t cols,
			struct error *err);
/* Relay until the exit is reported and the output drained; the process's status. */
int exec_relay(struct exec_session *s, bool forward_signals);
/* Fork the relay child (setsid, only the session's fds); it exits with the status. */
int exec_fork_relay(struct exec_session *s, pid_t *child, struct error *err);

/* Pod members (container_member.c); the lock of st is held. */
int member_create(struct container_create_opts *o, const struct oci_spec *spec, const char *bundle,
		  const char *sandbox, struct error *err);
int member_delete(const char *root, const struct container_state *st, bool force,
		  struct error *err);
int member_pause(const char *root, struct container_state *st, bool pause, struct error *err);

/* container_create.c, for member_create: config.json's text; state, hooks, pid file. */
int container_read_config(const char *bundle, char **out, struct error *err);
int container_create_finish(struct container_create_opts *o, const struct oci_spec *spec,
			    const char *bundle, const char *dir, unsigned int vcpus,
			    uint64_t mem_mib, const char *sandbox, const char *pod_share,
			    struct error *err);

#endif
